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
use crate::keys::PublicKey;
use crate::mcp::jwks::JwksSource;
use crate::mcp::tools::{Backend, ToolSet};
use crate::openapi::Spec;
use crate::store::{self, Access};
use crate::token::TrustedKey;
use crate::{fsx, profile};

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
    /// The profile's port and the configured bind address (read at start only).
    pub port: u16,
    pub host: String,
    pub sa: ServiceAccount,
    pub authorization: Authorization,
    pub keys: Vec<TrustedKey>,
    pub revoked: HashSet<String>,
    pub tools: ToolSet,
    pub jwks: Option<Arc<JwksSource>>,
    pub allowed_origins: Vec<String>,
    pub scopes_supported: Vec<String>,
    pub cache: TokenCache,
    /// The files this snapshot was read from, to notice changes.
    pub watched: Vec<PathBuf>,
    /// When the first retired key's grace period ends: the snapshot is rebuilt then, even if no
    /// file changed, so the key (and tokens cached under it) stop being accepted.
    pub renew_at: Option<DateTime<Utc>>,
}

impl Live {
    /// Read the profile. `previous` lends its JWKS cache when the URI is unchanged.
    pub fn load(source: &Source, previous: Option<&Live>) -> Result<Live> {
        let session = store::open(&source.root, &source.profile, Access::Read)?;
        let layout = &session.layout;
        let watched = watched_files(layout.dir.as_path(), &session.profile);
        let config = ServerConfig::load(&layout.server_config())?;
        let sa = config.security.authentication.service_account.effective();

        let mut keys = Vec::new();
        if let Some(pem) = sa.public_key.as_deref().filter(|p| !p.trim().is_empty()) {
            let key =
                PublicKey::from_pem(pem).with_context(|| format!("{}: service_account.public_key", layout.server_config().display()))?;
            keys.push(TrustedKey::new(key));
        }
        let now = profile::now();
        for retired in session.profile.retired_keys.iter().filter(|k| k.accept_until > now) {
            keys.push(TrustedKey::new(PublicKey::from_x(&retired.x).with_context(|| format!("retired key {}", retired.kid))?));
        }
        let renew_at = session.profile.retired_keys.iter().map(|k| k.accept_until).filter(|t| *t > now).min();
        let revoked = session.profile.revoked.iter().map(|r| r.jti.clone()).collect();

        let spec = match &config.openapi.spec {
            Some(file) => {
                let path = layout.file(file);
                Spec::parse(&fsx::read_text(&path)?, &path.display().to_string())?
            }
            None => Spec::sample(),
        };
        let timeout = Duration::from_secs_f64(config.openapi.timeout_seconds.clamp(0.1, 600.0));
        let downstream = source.downstream.clone().or(config.openapi.downstream.clone()).or(session.profile.downstream.clone());
        let mock = source.mock || config.openapi.mock == Some(true);
        let backend = match downstream.or_else(|| if config.openapi.mock == Some(false) { spec.server_url() } else { None }) {
            Some(url) if !mock => Backend::downstream(&url, timeout).with_context(|| format!("downstream URL {url:?}"))?,
            _ => Backend::Mock,
        };
        let tools = ToolSet::new(&spec, &config.routing.allowed_methods, backend);

        let jwks = sa.jwks_uri.clone().map(|uri| match previous.and_then(|p| p.jwks.clone()) {
            Some(existing) if existing.uri == uri => existing,
            _ => Arc::new(JwksSource::new(uri)),
        });
        let mut scopes_supported: Vec<String> = sa.required_scopes.clone();
        for scopes in config.security.authorization.tools.values() {
            for scope in scopes {
                if !scopes_supported.contains(scope) {
                    scopes_supported.push(scope.clone());
                }
            }
        }
        scopes_supported.sort();
        Ok(Live {
            profile: session.profile.name.clone(),
            port: session.profile.port,
            host: config.server.host.clone(),
            sa,
            authorization: config.security.authorization,
            keys,
            revoked,
            tools,
            jwks,
            allowed_origins: config.server.allowed_origins,
            scopes_supported,
            cache: TokenCache::default(),
            watched,
            renew_at,
        })
    }
}

fn watched_files(dir: &Path, profile: &crate::profile::Profile) -> Vec<PathBuf> {
    let mut files = vec![dir.join(profile::PROFILE_JSON), dir.join(profile::SERVER_CONFIG), dir.join(profile::PUBLIC_PEM)];
    if let Some(spec) = &profile.spec {
        files.push(dir.join(spec));
    }
    files
}

/// Identity of a set of files: inode, size and modification time of each. Atomic renames give
/// a new inode, so even a same-second rewrite is noticed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fingerprint(Vec<Option<(u64, u64, i64, i64)>>);

impl Fingerprint {
    pub fn of(files: &[PathBuf]) -> Fingerprint {
        Fingerprint(files.iter().map(|f| std::fs::metadata(f).ok().map(|m| (m.ino(), m.len(), m.mtime(), m.mtime_nsec()))).collect())
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
        let (live, seen) = Self::first_load(&source)?;
        Ok(Arc::new(Shared { current: RwLock::new(Arc::new(live)), seen: Mutex::new(seen), source }))
    }

    fn first_load(source: &Source) -> Result<(Live, Fingerprint)> {
        // Two reads: the first learns which files to watch, the fingerprint is taken, and the
        // second read is the one served (so nothing changed between stamp and read goes unseen).
        let probe = Live::load(source, None)?;
        let seen = Fingerprint::of(&probe.watched);
        let live = Live::load(source, None)?;
        Ok((live, seen))
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
        match Live::load(&self.source, Some(&self.get())) {
            Ok(next) => {
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(next);
                log_line(&format!("reloaded profile {} (configuration, keys, revocations, tools)", self.source.profile));
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

/// One log line on stderr with a UTC timestamp.
pub fn log_line(text: &str) {
    eprintln!("{} {text}", profile::now().format("%Y-%m-%dT%H:%M:%SZ"));
}
