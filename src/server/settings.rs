//! What the server configuration (`mcp_server_config.json`) decides, with the profile's
//! defaults filled in and every value that is printed, used as a header or fetched checked
//! first: the header name, the JWKS and introspection URLs, the spec path, and the
//! `algorithms` list of `mode: "oauth"` (only asymmetric JWS algorithms; `none`, HMAC or an
//! unknown name refuses the whole configuration, naming the file and the value).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;

use crate::config::{Authorization, Mode, ServerConfig, ServiceAccount};
use crate::jwk::Alg;

/// What the server configuration decides, with the profile's defaults filled in.
#[derive(Clone)]
pub struct Settings {
    pub sa: ServiceAccount,
    /// What a token's `alg` may be: EdDSA only in `mode: "token"`; in `mode: "oauth"` the
    /// `algorithms` list, every asymmetric algorithm when it is empty.
    pub algorithms: Vec<Alg>,
    pub authorization: Authorization,
    pub allowed_origins: Vec<String>,
    /// `server.public_url`: where clients reach `/mcp` (origin and path), checked.
    pub public_url: Option<(String, String)>,
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
    /// `server.drain_seconds`, clamped to 0.1 s–1 h (read at start only).
    pub drain: Duration,
    /// `server.metrics`, its `expose` list checked against the known families.
    pub metrics: crate::config::MetricsSection,
    /// `server.tls`: certificate and key paths, resolved against the profile folder.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// `security.rate_limit`, checked.
    pub rate_limit: Option<crate::server::rate_limit::Limits>,
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
        // Keys and introspection answers decide who gets in (and introspection carries the
        // client secret and callers' tokens): https, unless the endpoint is on this machine.
        if let Some(uri) = &sa.jwks_uri {
            sa.jwks_uri = Some(trusted_endpoint(uri, "jwks_uri", path)?);
        }
        if let Some(uri) = &sa.introspection_endpoint {
            sa.introspection_endpoint = Some(trusted_endpoint(uri, "introspection_endpoint", path)?);
        }
        let algorithms = algorithms(&sa, path)?;
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
        for family in &config.server.metrics.expose {
            if !crate::server::metrics::FAMILIES.contains(&family.as_str()) {
                anyhow::bail!(
                    "{}: server.metrics.expose: {:?} is not a metrics family (known: {})",
                    path.display(),
                    crate::validate::printable(family),
                    crate::server::metrics::FAMILIES.join(", ")
                );
            }
        }
        let public_url = match &config.server.public_url {
            None => None,
            Some(text) => Some(public_url(text).map_err(|why| {
                anyhow::anyhow!(
                    "{}: server.public_url {:?} {why}",
                    path.display(),
                    crate::validate::printable(&crate::net::redact_url(text))
                )
            })?),
        };
        // A relative path stays inside the profile folder (which may come from a clone); an
        // operator's certificate elsewhere (e.g. certbot's `live/`) is named by an absolute path.
        if let Some(t) = &config.server.tls {
            for (key, file) in [("cert", &t.cert), ("key", &t.key)] {
                let p = Path::new(file);
                let inside = p.components().all(|c| matches!(c, std::path::Component::Normal(_)));
                if file.is_empty() || !(p.is_absolute() || inside) {
                    anyhow::bail!(
                        "{}: server.tls.{key} {:?} must be a file inside the profile folder or an absolute path",
                        path.display(),
                        crate::validate::printable(file)
                    );
                }
            }
        }
        let tls = config.server.tls.as_ref().map(|t| (dir.join(&t.cert), dir.join(&t.key)));
        let rate_limit = match &config.security.rate_limit {
            Some(limit) => Some(
                crate::server::rate_limit::Limits::new(limit).map_err(|e| anyhow::anyhow!("{}: security.rate_limit{e}", path.display()))?,
            ),
            None => None,
        };
        Ok(Settings {
            sa,
            algorithms,
            authorization: config.security.authorization,
            allowed_origins: config.server.allowed_origins,
            public_url,
            scopes_supported,
            host: config.server.host,
            openapi: config.openapi,
            allowed_methods: config.routing.allowed_methods,
            max_connections: config.server.max_connections.max(1),
            max_connections_per_client: config.server.max_connections_per_client.max(1),
            body_timeout: seconds(config.server.body_timeout_seconds),
            idle_timeout: seconds(config.server.idle_timeout_seconds),
            drain: seconds(config.server.drain_seconds),
            metrics: config.server.metrics,
            tls,
            rate_limit,
        })
    }
}

/// `server.public_url` as origin (`https://host[:port]`) and path: an http(s) URL without
/// credentials, query or fragment.
fn public_url(text: &str) -> std::result::Result<(String, String), &'static str> {
    let url = url::Url::parse(text).map_err(|_| "is not a URL")?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err("is not an http(s) URL with a host");
    }
    if !url.username().is_empty() || url.password().is_some() || url.query().is_some() || url.fragment().is_some() {
        return Err("must not carry credentials, a query or a fragment");
    }
    let path = url.path().trim_end_matches('/');
    Ok((url.origin().ascii_serialization(), if path.is_empty() { "/mcp".to_owned() } else { path.to_owned() }))
}

/// The algorithms a token may be signed with. Each `algorithms` entry must name an asymmetric
/// JWS algorithm (RFC 7518 / RFC 8037 names, or `Ed25519`); anything else — `none`, `HS256`, a
/// typo — is an error rather than silently ignored, since a list that quietly shrinks or grows
/// changes who gets in.
fn algorithms(sa: &ServiceAccount, path: &Path) -> Result<Vec<Alg>> {
    let mut out = Vec::new();
    for name in &sa.algorithms {
        let Some(alg) = Alg::parse(name) else {
            anyhow::bail!(
                "{}: service_account.algorithms: {:?} is not an accepted algorithm (use asymmetric ones: {})",
                path.display(),
                crate::validate::printable(name),
                Alg::ASYMMETRIC.iter().map(|a| a.name()).collect::<Vec<_>>().join(", ")
            );
        };
        if !out.contains(&alg) {
            out.push(alg);
        }
    }
    Ok(match sa.mode {
        // The profile's own tokens are EdDSA; `algorithms` is about identity providers.
        Mode::Token => vec![Alg::EdDSA],
        Mode::Oauth if out.is_empty() => Alg::ASYMMETRIC.to_vec(),
        Mode::Oauth => out,
    })
}

/// An http(s) URL the server trusts for keys or token answers: https, or http on loopback.
fn trusted_endpoint(uri: &str, key: &str, path: &Path) -> Result<String> {
    let url = crate::validate::http_url(uri).map_err(|e| anyhow::anyhow!("{}: service_account.{key}: {e}", path.display()))?;
    if url.scheme() != "https" && !crate::net::is_loopback(&url) {
        anyhow::bail!(
            "{}: service_account.{key} {} must be https (plain http only on loopback)",
            path.display(),
            crate::net::redact_url(uri)
        );
    }
    Ok(url.to_string())
}

/// A configured number of seconds, clamped to 0.1 s–1 h (NaN and negatives included).
pub fn seconds(value: f64) -> Duration {
    Duration::from_secs_f64(if value.is_finite() { value.clamp(0.1, 3600.0) } else { 3600.0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(mode: Mode, names: &[&str]) -> ServiceAccount {
        ServiceAccount { mode, algorithms: names.iter().map(|s| s.to_string()).collect(), ..Default::default() }
    }

    #[test]
    fn algorithms_default_pin_and_refuse() {
        let path = Path::new("/p/mcp_server_config.json");
        assert_eq!(algorithms(&sa(Mode::Oauth, &[]), path).unwrap(), Alg::ASYMMETRIC.to_vec());
        assert_eq!(algorithms(&sa(Mode::Oauth, &["RS256", "Ed25519", "EdDSA"]), path).unwrap(), vec![Alg::RS256, Alg::EdDSA]);
        assert_eq!(algorithms(&sa(Mode::Token, &["RS256"]), path).unwrap(), vec![Alg::EdDSA]);
        for bad in ["none", "HS256", "RS257", "rs256"] {
            let e = algorithms(&sa(Mode::Oauth, &["RS256", bad]), path).unwrap_err().to_string();
            assert!(e.contains("/p/mcp_server_config.json") && e.contains(&format!("{bad:?}")), "{e}");
        }
    }
}
