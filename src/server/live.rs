//! The server's hot-reloadable state: configuration, trusted keys, revocations and tools, read
//! from the profile under its shared lock (so a half-applied change is never seen) and swapped
//! in whole. A watcher re-reads it when any of its files change; a change that does not load
//! keeps the last good state and logs why.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};

use crate::config::{Authorization, ServerConfig, ServiceAccount};
use crate::openapi::Spec;
use crate::profile;
use crate::server::jwks::JwksSource;
use crate::server::tools::{Backend, ToolSet};
use crate::store::{self, Access};
use crate::token::TrustedKey;

/// How often the watcher looks at the profile's files.
pub const WATCH_INTERVAL: Duration = Duration::from_millis(100);

/// What `serve` was asked to run, beyond the profile's own files.
#[derive(Debug, Clone)]
pub struct Source {
    pub root: PathBuf,
    pub profile: String,
    pub mock: bool,
    pub downstream: Option<String>,
}

/// One consistent snapshot of everything a request needs.
pub struct Live {
    pub profile: String,
    /// The profile's port (read at start only).
    pub port: u16,
    pub settings: Settings,
    pub keys: Vec<TrustedKey>,
    pub revoked: HashSet<String>,
    pub tools: Arc<ToolSet>,
    pub jwks: Option<Arc<JwksSource>>,
    pub cache: TokenCache,
    /// The files this snapshot was read from, to notice changes, and their identity as read.
    pub watched: Vec<PathBuf>,
    pub stamps: Fingerprint,
    /// When the first retired key's grace period ends: the snapshot is rebuilt then, even if no
    /// file changed, so the key (and tokens cached under it) stop being accepted.
    pub renew_at: Option<DateTime<Utc>>,
}

impl Live {
    /// Read the profile. With a `previous` snapshot, a part that does not load (the server
    /// configuration, or the spec and tools) is kept from it and the reason pushed on
    /// `warnings` — but keys from a valid configuration and the revocations of profile.json
    /// always come fresh, so a bad edit elsewhere never delays a revocation or a rotation.
    pub fn load(source: &Source, previous: Option<&Live>, warnings: &mut Vec<String>) -> Result<Live> {
        // Each file is stamped before it is read, so a change made during this load is seen at
        // the watcher's next look.
        let paths = crate::profile::Layout::new(&source.root, &source.profile);
        let mut watched = vec![paths.profile_json(), paths.server_config(), paths.public_pem()];
        let mut stamps = Fingerprint::of(&watched);
        let session = store::open(&source.root, &source.profile, Access::Read)?;
        let layout = &session.layout;
        let profile = &session.profile;
        let config_path = layout.server_config();
        let settings = match (Settings::load(&config_path, profile), previous) {
            (Ok(settings), _) => settings,
            (Err(e), Some(prev)) => {
                warnings.push(format!("keeping the last good configuration: {}", crate::error::one_line(&e)));
                prev.settings.clone()
            }
            (Err(e), None) => return Err(e),
        };
        let sa = &settings.sa;

        let now = profile::now();
        let keys = crate::trust::static_keys(sa, profile, &config_path, now)?;
        let renew_at = profile.retired_keys.iter().map(|k| k.accept_until).filter(|t| *t > now).min();
        let revoked = profile.revoked.iter().map(|r| r.jti.clone()).collect();

        if let Some(spec) = &settings.openapi.spec {
            let path = layout.file(spec);
            stamps.add(&path);
            watched.push(path);
        }
        let tools = match (load_tools(source, &settings, layout, profile), previous) {
            (Ok(tools), _) => Arc::new(tools),
            (Err(e), Some(prev)) => {
                warnings.push(format!("keeping the last good tools: {}", crate::error::one_line(&e)));
                Arc::clone(&prev.tools)
            }
            (Err(e), None) => return Err(e),
        };
        let jwks = sa.jwks_uri.clone().map(|uri| match previous.and_then(|p| p.jwks.clone()) {
            Some(existing) if existing.uri == uri => existing,
            _ => Arc::new(JwksSource::new(uri)),
        });
        Ok(Live {
            profile: profile.name.clone(),
            port: profile.port,
            settings,
            keys,
            revoked,
            tools,
            jwks,
            cache: TokenCache::default(),
            watched,
            stamps,
            renew_at,
        })
    }
}

/// What the server configuration decides, with the profile's defaults filled in.
#[derive(Clone)]
pub struct Settings {
    pub sa: ServiceAccount,
    pub authorization: Authorization,
    pub allowed_origins: Vec<String>,
    pub scopes_supported: Vec<String>,
    pub host: String,
    pub openapi: crate::config::OpenApiSection,
    pub allowed_methods: Vec<String>,
    /// `server.max_connections` (at least 1; read by `serve` at start only).
    pub max_connections: usize,
    /// `server.body_timeout_seconds` and `server.idle_timeout_seconds`, clamped to 0.1 s–1 h.
    pub body_timeout: Duration,
    pub idle_timeout: Duration,
}

impl Settings {
    fn load(path: &Path, profile: &crate::profile::Profile) -> Result<Settings> {
        let config = ServerConfig::load(path)?;
        let mut sa = config.security.authentication.service_account.effective();
        // Tokens must be meant for this server: without an explicit audience the profile's
        // server URL is required (a token minted for another service is refused).
        sa.audience.get_or_insert_with(|| profile.server_url.clone());
        if sa.mode == crate::config::Mode::Token {
            sa.issuer.get_or_insert_with(|| profile.issuer.clone());
        }
        // Both are printed when serve starts: a header that is not a header name, or a JWKS URI
        // that is not an http(s) URL, is refused rather than echoed.
        if axum::http::HeaderName::from_bytes(sa.header.as_bytes()).is_err() {
            anyhow::bail!(
                "{}: service_account.header {:?} is not an HTTP header name",
                path.display(),
                crate::validate::printable(&sa.header)
            );
        }
        if let Some(uri) = &sa.jwks_uri {
            let url = crate::validate::http_url(uri).map_err(|e| anyhow::anyhow!("{}: service_account.jwks_uri: {e}", path.display()))?;
            sa.jwks_uri = Some(url.to_string());
        }
        if let Some(spec) = &config.openapi.spec {
            let ok = !spec.is_empty() && Path::new(spec).components().all(|c| matches!(c, std::path::Component::Normal(_)));
            if !ok {
                anyhow::bail!(
                    "{}: openapi.spec {:?} must be a file inside the profile folder",
                    path.display(),
                    crate::validate::printable(spec)
                );
            }
        }
        let mut scopes_supported: Vec<String> = sa.required_scopes.clone();
        for scopes in config.security.authorization.tools.values() {
            for scope in scopes {
                if !scopes_supported.contains(scope) {
                    scopes_supported.push(scope.clone());
                }
            }
        }
        scopes_supported.sort();
        Ok(Settings {
            sa,
            authorization: config.security.authorization,
            allowed_origins: config.server.allowed_origins,
            scopes_supported,
            host: config.server.host,
            openapi: config.openapi,
            allowed_methods: config.routing.allowed_methods,
            max_connections: config.server.max_connections.max(1),
            body_timeout: seconds(config.server.body_timeout_seconds),
            idle_timeout: seconds(config.server.idle_timeout_seconds),
        })
    }
}

/// A configured number of seconds, clamped to 0.1 s–1 h (NaN and negatives included).
fn seconds(value: f64) -> Duration {
    Duration::from_secs_f64(if value.is_finite() { value.clamp(0.1, 3600.0) } else { 3600.0 })
}

fn load_tools(source: &Source, settings: &Settings, layout: &crate::profile::Layout, profile: &crate::profile::Profile) -> Result<ToolSet> {
    let openapi = &settings.openapi;
    let spec = match &openapi.spec {
        Some(file) => {
            let path = layout.file(file);
            Spec::parse(&crate::config::read_capped(&path, crate::openapi::MAX_SPEC_BYTES as u64)?, &path.display().to_string())?
        }
        None => Spec::sample(),
    };
    let timeout = seconds(openapi.timeout_seconds).min(Duration::from_secs(600));
    let downstream = source.downstream.clone().or(openapi.downstream.clone()).or(profile.downstream.clone());
    let mock = source.mock || openapi.mock == Some(true);
    let backend = match downstream.or_else(|| if openapi.mock == Some(false) { spec.server_url() } else { None }) {
        Some(url) if !mock => {
            Backend::downstream(&url, timeout).with_context(|| format!("downstream URL {:?}", crate::net::redact_url(&url)))?
        }
        _ => Backend::Mock,
    };
    Ok(ToolSet::new(&spec, &settings.allowed_methods, backend))
}

/// Identity of a set of files: inode, size and modification time of each. Atomic renames give
/// a new inode, so even a same-second rewrite is noticed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fingerprint(Vec<Option<(u64, u64, i64, i64)>>);

impl Fingerprint {
    pub fn of(files: &[PathBuf]) -> Fingerprint {
        let mut out = Fingerprint::default();
        for file in files {
            out.add(file);
        }
        out
    }

    pub fn add(&mut self, file: &Path) {
        self.0.push(std::fs::metadata(file).ok().map(|m| (m.ino(), m.len(), m.mtime(), m.mtime_nsec())));
    }
}

/// Verified tokens, so a client that sends the same token on every request pays for one
/// signature check per snapshot. Keyed by the token itself; bounded; emptied by every reload
/// (a rotation or revocation builds a new snapshot with a new cache).
#[derive(Default)]
pub struct TokenCache {
    entries: RwLock<HashMap<Box<str>, CachedCaller>>,
}

#[derive(Clone, Debug)]
pub struct CachedCaller {
    pub client_id: String,
    pub scopes: Vec<String>,
    pub exp: i64,
    pub nbf: i64,
}

const CACHE_CAPACITY: usize = 10_000;

/// `MCPGEN_TOKEN_CACHE=0` turns the cache off, so a benchmark can measure a full verification per
/// request. Read once per process.
fn cache_enabled() -> bool {
    static ENABLED: std::sync::LazyLock<bool> =
        std::sync::LazyLock::new(|| std::env::var_os("MCPGEN_TOKEN_CACHE").is_none_or(|v| v != "0"));
    *ENABLED
}

impl TokenCache {
    pub fn get(&self, token: &str) -> Option<CachedCaller> {
        if !cache_enabled() {
            return None;
        }
        self.entries.read().ok()?.get(token).cloned()
    }

    pub fn put(&self, token: &str, caller: CachedCaller) {
        if !cache_enabled() {
            return;
        }
        if let Ok(mut entries) = self.entries.write() {
            if entries.len() >= CACHE_CAPACITY {
                entries.clear();
            }
            entries.insert(token.into(), caller);
        }
    }
}

/// The current snapshot, replaced atomically by the watcher.
pub struct Shared {
    current: RwLock<Arc<Live>>,
    /// The files' fingerprint when they were last read (taken before reading, so a change
    /// during the read is seen at the next look).
    seen: Mutex<Fingerprint>,
    pub source: Source,
}

impl Shared {
    pub fn new(source: Source) -> Result<Arc<Shared>> {
        let live = Live::load(&source, None, &mut Vec::new())?;
        let seen = Mutex::new(live.stamps.clone());
        Ok(Arc::new(Shared { current: RwLock::new(Arc::new(live)), seen, source }))
    }

    pub fn get(&self) -> Arc<Live> {
        self.current.read().map(|g| g.clone()).unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Reload if any watched file changed or a grace period ended. Returns whether a new
    /// snapshot was installed.
    pub fn reload_if_changed(&self) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.get();
        let now = Fingerprint::of(&current.watched);
        let changed = now != *seen;
        let due = current.renew_at.is_some_and(|t| profile::now() >= t);
        if !changed && !due {
            return false;
        }
        // Remember it first: a bad edit is reported once, not at every interval.
        *seen = now;
        let mut warnings = Vec::new();
        match Live::load(&self.source, Some(&current), &mut warnings) {
            Ok(next) => {
                *seen = next.stamps.clone();
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(next);
                if warnings.is_empty() {
                    log_line(&format!("reloaded profile {} (configuration, keys, revocations, tools)", self.source.profile));
                } else if changed {
                    for w in &warnings {
                        log_line(&format!("warning: reload of profile {} failed, {w}", self.source.profile));
                    }
                    log_line(&format!("reloaded profile {} (keys and revocations; see the warnings above)", self.source.profile));
                }
                true
            }
            // Already reported when the files changed; a due renewal retries at the next look.
            Err(_) if !changed => false,
            Err(e) => {
                log_line(&format!(
                    "warning: reload of profile {} failed, keeping the last good configuration: {}",
                    self.source.profile,
                    crate::error::one_line(&e)
                ));
                false
            }
        }
    }

    /// Poll for changes until the process ends.
    pub fn spawn_watcher(self: &Arc<Self>) {
        let shared = Arc::clone(self);
        tokio::spawn(async move {
            let mut next = Instant::now();
            loop {
                next += WATCH_INTERVAL;
                tokio::time::sleep_until(next.into()).await;
                let s = Arc::clone(&shared);
                let _ = tokio::task::spawn_blocking(move || s.reload_if_changed()).await;
            }
        });
    }
}

/// One log line on stderr with a UTC timestamp. Control and bidirectional characters are
/// escaped here, whatever the caller built the line from (request fields, file contents quoted
/// in parse errors), so no input can forge a line or drive the terminal reading the log.
pub fn log_line(text: &str) {
    tracing::info!("{}", crate::validate::escape_controls(text));
}
