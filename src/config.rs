//! `mcp_server_config.json`: the server's configuration, including
//! `security.authentication.service_account` exactly as seed 001 lists it.
//!
//! Reading is lenient (every key has the seed's default, unknown keys are kept by callers that
//! rewrite the file); mcpgen itself only ever patches the keys it owns — the public key and the
//! issuer — so an operator's edits survive `remint-all`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Failure;

pub const DEFAULT_HEADER: &str = "X-OEMCP-SERVICEACCOUNT";

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ServerConfig {
    pub server: ServerSection,
    pub openapi: OpenApiSection,
    pub routing: Routing,
    pub security: Security,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerSection {
    pub name: String,
    /// Address `serve` binds when --bind is not given. (The port is the profile's: it is part of
    /// the server URL every token names as its audience.)
    pub host: String,
    /// Origins allowed besides loopback ones (DNS-rebinding protection, MCP transport spec).
    pub allowed_origins: Vec<String>,
    /// The MCP endpoint's URL as clients reach it (behind a reverse proxy or load balancer),
    /// e.g. `https://mcp.example.com/mcp`: what the RFC 9728 metadata, its link in a 401
    /// challenge and the JWKS link name. `null`: the address `serve` listens on.
    pub public_url: Option<String>,
    /// Connections served at once (read at start); more wait in the kernel's accept queue.
    pub max_connections: usize,
    /// Connections one client address may hold at once (read at start); more are closed at
    /// once. Raise it when every request comes through one reverse proxy.
    pub max_connections_per_client: usize,
    /// Time a request may take to send its body once its head is in; then 408.
    pub body_timeout_seconds: f64,
    /// Time a connection may take to send a request head, including the wait between two
    /// requests on a kept-alive connection; then it is closed.
    pub idle_timeout_seconds: f64,
    /// On SIGTERM or SIGINT: how long requests in flight may take to finish before the server
    /// exits anyway (read at start).
    pub drain_seconds: f64,
    /// `GET /metrics` (Prometheus text format): off unless enabled.
    pub metrics: MetricsSection,
    /// Serve HTTPS with this certificate and key (PEM files; relative paths are inside the
    /// profile folder); `--tls-cert`/`--tls-key` override it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSection>,
}

/// `server.metrics`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSection {
    pub enabled: bool,
    /// Families shown (default: all of `server::metrics::FAMILIES`).
    pub expose: Vec<String>,
}

impl Default for MetricsSection {
    fn default() -> Self {
        MetricsSection { enabled: false, expose: crate::server::metrics::FAMILIES.iter().map(|f| f.to_string()).collect() }
    }
}

/// `server.tls`: PEM certificate chain and private key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    pub cert: String,
    pub key: String,
}

/// `security.rate_limit`: a token bucket per client.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    pub requests_per_minute: f64,
    /// Requests a client may send at once on top of the rate (default: a second's worth, at
    /// least 1).
    #[serde(default)]
    pub burst: Option<f64>,
    /// Other limits for some clients, by `client_id`.
    #[serde(default)]
    pub overrides: BTreeMap<String, RateLimitOverride>,
}

/// One client's own rate and burst.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitOverride {
    pub requests_per_minute: f64,
    #[serde(default)]
    pub burst: Option<f64>,
}

/// Default of `server.max_connections`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Default of `server.max_connections_per_client`: a quarter of all, so one address cannot
/// take every slot.
pub const DEFAULT_MAX_CONNECTIONS_PER_CLIENT: usize = 256;
/// Default of `server.body_timeout_seconds`.
pub const DEFAULT_BODY_TIMEOUT_SECONDS: f64 = 10.0;
/// Default of `server.idle_timeout_seconds`.
pub const DEFAULT_IDLE_TIMEOUT_SECONDS: f64 = 30.0;
/// Default of `server.drain_seconds`.
pub const DEFAULT_DRAIN_SECONDS: f64 = 30.0;
/// Largest `mcp_server_config.json` read: it is a few kilobytes; a huge one is a mistake or an
/// attack, and every reload would parse it again.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            name: "mcpgen".into(),
            host: "127.0.0.1".into(),
            allowed_origins: Vec::new(),
            public_url: None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_client: DEFAULT_MAX_CONNECTIONS_PER_CLIENT,
            body_timeout_seconds: DEFAULT_BODY_TIMEOUT_SECONDS,
            idle_timeout_seconds: DEFAULT_IDLE_TIMEOUT_SECONDS,
            drain_seconds: DEFAULT_DRAIN_SECONDS,
            metrics: MetricsSection::default(),
            tls: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct OpenApiSection {
    /// The spec file, relative to the profile folder; `null` = the built-in sample.
    pub spec: Option<String>,
    /// Downstream base URL; `null` = the spec's `servers[0]`, or mock mode if none.
    pub downstream: Option<String>,
    /// Force mock mode on or off; `null` = mock only when there is no downstream.
    pub mock: Option<bool>,
    pub timeout_seconds: f64,
}

impl Default for OpenApiSection {
    fn default() -> Self {
        OpenApiSection { spec: None, downstream: None, mock: None, timeout_seconds: 30.0 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Routing {
    /// HTTP methods that become tools.
    pub allowed_methods: Vec<String>,
}

impl Default for Routing {
    fn default() -> Self {
        Routing { allowed_methods: vec!["GET".into()] }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Security {
    pub authentication: Authentication,
    pub authorization: Authorization,
    /// Requests per client; none when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Authentication {
    pub service_account: ServiceAccount,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Authorization {
    /// Tool name (or `default`) → scopes a caller needs to see and call it.
    pub tools: BTreeMap<String, Vec<String>>,
}

impl Authorization {
    /// Scopes needed for `tool`: its own entry, else `default`, else none.
    pub fn scopes_for(&self, tool: &str) -> &[String] {
        self.tools.get(tool).or_else(|| self.tools.get("default")).map(Vec::as_slice).unwrap_or(&[])
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Token,
    Oauth,
}

/// Seed 001's `security.authentication.service_account`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceAccount {
    pub enabled: bool,
    pub required: bool,
    pub mode: Mode,
    pub header: String,
    pub public_key: Option<String>,
    pub jwks_uri: Option<String>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub required_scopes: Vec<String>,
    pub prefix: Option<String>,
    pub sso_mode: bool,
    pub bearer_methods_supported: Vec<String>,
    pub resource_documentation: Option<String>,
    pub resource_policy_uri: Option<String>,
    pub revocation_endpoint: Option<String>,
    pub introspection_endpoint: Option<String>,
    pub require_metadata_on_401: bool,
    /// Authorization servers advertised in the RFC 9728 metadata.
    pub authorization_servers: Vec<String>,
    /// JWS algorithms `mode: "oauth"` accepts (empty: every asymmetric one mcpgen knows);
    /// `none`, HMAC and unknown names make the configuration invalid (see `server::settings`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub algorithms: Vec<String>,
}

impl Default for ServiceAccount {
    fn default() -> Self {
        ServiceAccount {
            enabled: true,
            required: true,
            mode: Mode::Token,
            header: DEFAULT_HEADER.into(),
            public_key: None,
            jwks_uri: None,
            issuer: None,
            audience: None,
            client_id: None,
            client_secret: None,
            required_scopes: Vec::new(),
            prefix: None,
            sso_mode: false,
            bearer_methods_supported: vec!["header".into()],
            resource_documentation: None,
            resource_policy_uri: None,
            revocation_endpoint: None,
            introspection_endpoint: None,
            require_metadata_on_401: true,
            authorization_servers: Vec::new(),
            algorithms: Vec::new(),
        }
    }
}

impl ServiceAccount {
    /// Apply `sso_mode`: mode `oauth`, header `Authorization`, prefix `Bearer `.
    pub fn effective(&self) -> ServiceAccount {
        let mut out = self.clone();
        if out.sso_mode {
            out.mode = Mode::Oauth;
            out.header = "Authorization".into();
            out.prefix = Some("Bearer ".into());
        }
        out
    }

    /// What a client puts before the token in the header.
    pub fn client_prefix(&self) -> String {
        self.effective().prefix.unwrap_or_default()
    }
}

impl ServerConfig {
    /// Read `mcp_server_config.json` from a profile folder (never through a link; see `fsx::Dir`)
    /// and parse it, naming it on failure; larger than [`MAX_CONFIG_BYTES`] is refused without
    /// reading it all. (JSON nesting is bounded by serde_json's recursion limit of 128, which
    /// fails fast.)
    pub fn load(dir: &crate::fsx::Dir) -> Result<ServerConfig> {
        let text = dir.read_text_capped(crate::profile::SERVER_CONFIG, MAX_CONFIG_BYTES)?;
        Self::parse(&text, &dir.join(crate::profile::SERVER_CONFIG))
    }

    pub fn parse(text: &str, path: &Path) -> Result<ServerConfig> {
        serde_json::from_str(text).map_err(|e| {
            Failure::error(format!("{}: invalid server configuration ({e})", path.display()))
                .hint("fix the JSON by hand; `mcpgen up --force` would recreate it with defaults")
                .into()
        })
    }
}

/// Set `security.authentication.service_account.<key>` in a config document, creating the
/// objects on the way, and keeping everything else as it was.
pub fn patch_service_account(doc: &mut Value, key: &str, value: Value) {
    let mut node = doc;
    for part in ["security", "authentication", "service_account"] {
        if !node.is_object() {
            *node = Value::Object(Default::default());
        }
        node = node.as_object_mut().expect("object").entry(part).or_insert_with(|| Value::Object(Default::default()));
    }
    if !node.is_object() {
        *node = Value::Object(Default::default());
    }
    node.as_object_mut().expect("object").insert(key.to_owned(), value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_seed_001() {
        let cfg = ServerConfig::parse("{}", Path::new("x")).unwrap();
        let sa = &cfg.security.authentication.service_account;
        assert!(sa.enabled && sa.required && sa.require_metadata_on_401);
        assert_eq!(sa.mode, Mode::Token);
        assert_eq!(sa.header, "X-OEMCP-SERVICEACCOUNT");
        assert_eq!(sa.bearer_methods_supported, vec!["header"]);
        assert_eq!(cfg.routing.allowed_methods, vec!["GET"]);
    }

    #[test]
    fn sso_mode_forces_oauth_and_bearer() {
        let sa = ServiceAccount { sso_mode: true, ..Default::default() }.effective();
        assert_eq!((sa.mode, sa.header.as_str(), sa.prefix.as_deref()), (Mode::Oauth, "Authorization", Some("Bearer ")));
    }

    #[test]
    fn patch_keeps_other_keys() {
        let mut doc = serde_json::json!({"custom": 1, "security": {"authentication": {"service_account": {"required": false}}}});
        patch_service_account(&mut doc, "public_key", "PEM".into());
        assert_eq!(doc["custom"], 1);
        assert_eq!(doc["security"]["authentication"]["service_account"]["required"], false);
        assert_eq!(doc["security"]["authentication"]["service_account"]["public_key"], "PEM");
    }
}
