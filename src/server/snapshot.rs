//! One consistent snapshot of everything a request needs — settings, trusted keys, revocations,
//! tools, the JWKS source, the introspection endpoint — read from the profile under its shared lock (so a half-applied
//! change is never seen). A part that does not load is kept from the previous snapshot, but
//! keys and revocations always come fresh.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};

use crate::openapi::Spec;
use crate::profile;
use crate::server::downstream::Backend;
use crate::server::introspection::Introspector;
use crate::server::jwks::JwksSource;
use crate::server::sessions::{KeySource, SessionKey};
use crate::server::settings::{Settings, seconds};
use crate::server::token_cache::TokenCache;
use crate::server::tools::ToolSet;
use crate::server::watch::Fingerprint;
use crate::store::{self, Access};
use crate::token::TrustedKey;

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
    /// RFC 7662 introspection of opaque tokens, when `introspection_endpoint` is set.
    pub introspection: Option<Arc<Introspector>>,
    pub cache: TokenCache,
    /// The files this snapshot was read from, to notice changes, and their identity as read.
    pub watched: Vec<PathBuf>,
    pub stamps: Fingerprint,
    /// Keys that sign and check session ids: the current one first, then the one it replaced
    /// (so a rotation does not end every open session at once).
    pub session_keys: Vec<SessionKey>,
    pub session_key_source: KeySource,
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
        let settings = match (Settings::load(&session.dir, profile), previous) {
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
        let tools = match (load_tools(source, &settings, &session.dir, profile), previous) {
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
        // Only `mode: "oauth"` asks the identity provider; in token mode the endpoint is merely
        // advertised in the metadata and nothing a caller sends leaves the server.
        let introspection = sa.introspection_endpoint.clone().filter(|_| sa.mode == crate::config::Mode::Oauth).map(|uri| {
            let (id, secret) = (sa.client_id.as_deref(), sa.client_secret.as_deref());
            match previous.and_then(|p| p.introspection.clone()) {
                Some(existing) if existing.same(&uri, id, secret) => existing,
                _ => Arc::new(Introspector::new(uri, id.map(str::to_owned), secret.map(str::to_owned))),
            }
        });
        let (session_keys, session_key_source) = session_keys(&session, previous, warnings)?;
        Ok(Live {
            session_keys,
            session_key_source,
            profile: profile.name.clone(),
            port: profile.port,
            settings,
            keys,
            revoked,
            tools,
            jwks,
            introspection,
            cache: TokenCache::default(),
            watched,
            stamps,
            renew_at,
        })
    }
}

/// The session key: `MCPGEN_SESSION_SECRET`, else derived from the profile's signing key (so
/// every replica of one folder agrees), else a random key for this process — with a warning,
/// as sessions then do not cross replicas. The previous snapshot's key stays accepted after a
/// change.
fn session_keys(session: &store::Session, previous: Option<&Live>, warnings: &mut Vec<String>) -> Result<(Vec<SessionKey>, KeySource)> {
    use crate::server::sessions::{SECRET_ENV, key_from_env};
    let (key, source) = match key_from_env()? {
        Some(key) => (key, KeySource::Environment),
        None => match session.private_key().and_then(|k| k.to_der()) {
            Ok(der) => (SessionKey::derive(&der), KeySource::Profile),
            Err(_) => match previous.filter(|p| p.session_key_source == KeySource::Process) {
                Some(prev) => (prev.session_keys[0].clone(), KeySource::Process),
                None => {
                    warnings.push(format!(
                        "no signing key in the profile and no {SECRET_ENV}: session ids are signed with a key of this process only, so another replica will not accept them (set {SECRET_ENV} on every replica)"
                    ));
                    (SessionKey::random(), KeySource::Process)
                }
            },
        },
    };
    let mut keys = vec![key];
    if let Some(prev) = previous {
        let kept = if prev.session_keys[0] != keys[0] { prev.session_keys.first() } else { prev.session_keys.get(1) };
        keys.extend(kept.cloned());
    }
    Ok((keys, source))
}

/// The tool catalogue: the profile's spec (read without following links, size-capped) or the
/// built-in sample, and the backend its calls go to.
fn load_tools(source: &Source, settings: &Settings, dir: &crate::fsx::Dir, profile: &crate::profile::Profile) -> Result<ToolSet> {
    let openapi = &settings.openapi;
    let spec = match &openapi.spec {
        Some(file) => {
            let text = dir.read_text_capped(file, crate::openapi::MAX_SPEC_BYTES as u64)?;
            Spec::parse(&text, &dir.join(file).display().to_string())?
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
