//! What the server configuration (`mcp_server_config.json`) decides, with the profile's
//! defaults filled in and every value that is printed or used as a header checked first.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;

use crate::config::{Authorization, ServerConfig, ServiceAccount};

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
    /// `server.max_connections_per_client` (at least 1; read at start only).
    pub max_connections_per_client: usize,
    /// `server.body_timeout_seconds` and `server.idle_timeout_seconds`, clamped to 0.1 s–1 h.
    pub body_timeout: Duration,
    pub idle_timeout: Duration,
}

impl Settings {
    pub fn load(dir: &crate::fsx::Dir, profile: &crate::profile::Profile) -> Result<Settings> {
        let config = ServerConfig::load(dir)?;
        let path = &dir.join(crate::profile::SERVER_CONFIG);
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
            max_connections_per_client: config.server.max_connections_per_client.max(1),
            body_timeout: seconds(config.server.body_timeout_seconds),
            idle_timeout: seconds(config.server.idle_timeout_seconds),
        })
    }
}

/// A configured number of seconds, clamped to 0.1 s–1 h (NaN and negatives included).
pub fn seconds(value: f64) -> Duration {
    Duration::from_secs_f64(if value.is_finite() { value.clamp(0.1, 3600.0) } else { 3600.0 })
}
