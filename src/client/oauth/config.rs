//! The `--oauth` file: OAuth2 client credentials as seed 003 configures them. Either the seed's
//! workflow YAML (`authentication: {name: {_type: mcp_service_account, …}}`) or just that
//! provider block, in YAML or JSON, with `${VAR}` replaced from the environment:
//!
//! - `client_id`; `token_endpoint_auth_method` (RFC 7591 names): `client_secret_basic` (the
//!   default) or `client_secret_post` with `client_secret`, or `private_key_jwt` (RFC 7523) with
//!   `private_key` (PEM text, typically `${VAR}`) or `private_key_file`, signed with
//!   `token_endpoint_auth_signing_alg` (default from the key: EdDSA, RS256 or ES256);
//! - `token_url` (optional: discovered from the MCP server's metadata when absent — from the
//!   authorization server named by `issuer`, or for a client secret only one on the MCP server's
//!   own origin, so a hostile MCP server cannot collect the secret), `scopes`
//!   (list or space-delimited string), `resource` (RFC 8707; default the MCP server's URL),
//!   `token_cache_buffer_seconds` (default 300);
//! - `service_token`: a second header, from `token` or from a `command` (argv list) whose
//!   standard output is the token, like kubectl's exec credentials.
//!
//! Secrets (the client secret, the private key, static service tokens) never appear in
//! `Debug` output or error messages.

use std::path::Path;
use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use jsonwebtoken::{Algorithm, EncodingKey};
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::Value;

pub const DEFAULT_BUFFER_SECS: u64 = 300;
/// Largest `--oauth` file (or `private_key_file`) read.
const MAX_FILE_BYTES: u64 = 256 * 1024;
/// Longest a `service_token.command` may run, unless the file says otherwise.
const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// How the client authenticates at the token endpoint.
#[derive(Clone)]
pub enum ClientAuth {
    /// `client_secret_basic`: HTTP Basic with the form-encoded id and secret (RFC 6749 §2.3.1).
    Basic(String),
    /// `client_secret_post`: id and secret in the form body.
    Post(String),
    /// `private_key_jwt`: a short-lived assertion signed with the client's key (RFC 7523).
    PrivateKeyJwt { key: EncodingKey, alg: Algorithm, kid: Option<String> },
}

impl ClientAuth {
    pub fn method(&self) -> &'static str {
        match self {
            ClientAuth::Basic(_) => "client_secret_basic",
            ClientAuth::Post(_) => "client_secret_post",
            ClientAuth::PrivateKeyJwt { .. } => "private_key_jwt",
        }
    }
}

/// The second header of seed 003's dual-header pattern.
#[derive(Clone)]
pub enum ServiceToken {
    Static { header: HeaderName, value: HeaderValue },
    Command { header: HeaderName, argv: Vec<String>, timeout: Duration },
}

#[derive(Clone)]
pub struct OAuthConfig {
    pub client_id: String,
    pub auth: ClientAuth,
    pub token_url: Option<String>,
    /// The authorization server discovery may use (its RFC 8414 `issuer`); without it, only one
    /// on the MCP server's own origin gets a client secret.
    pub issuer: Option<String>,
    pub scopes: Vec<String>,
    /// RFC 8707 resource indicator; `None` means the MCP server's URL.
    pub resource: Option<String>,
    pub buffer: Duration,
    pub service_token: Option<ServiceToken>,
}

impl std::fmt::Debug for OAuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let service_token = self.service_token.as_ref().map(|st| match st {
            ServiceToken::Static { header, .. } => format!("{header}: <redacted>"),
            ServiceToken::Command { header, argv, .. } => format!("{header}: from command {:?}", argv.first()),
        });
        f.debug_struct("OAuthConfig")
            .field("client_id", &self.client_id)
            .field("auth", &format!("{} <redacted>", self.auth.method()))
            .field("token_url", &self.token_url)
            .field("issuer", &self.issuer)
            .field("scopes", &self.scopes)
            .field("resource", &self.resource)
            .field("buffer", &self.buffer)
            .field("service_token", &service_token)
            .finish()
    }
}

impl OAuthConfig {
    /// Read a YAML or JSON file; `env` resolves `${VAR}`.
    pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<OAuthConfig> {
        let text = read_small(path)?;
        let doc = crate::document::parse(&text, &path.display().to_string(), MAX_FILE_BYTES as usize)?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::from_value(&doc, base, env).map_err(|e| anyhow!("{}: {e:#}", path.display()))
    }

    /// `base` resolves a relative `private_key_file`.
    pub fn from_value(doc: &Value, base: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<OAuthConfig> {
        let block = find_block(doc).ok_or_else(|| {
            anyhow!("no OAuth client here: expected client_id at the top level, or a provider with `_type: mcp_service_account` under `authentication:`")
        })?;
        let field = |name: &str| -> Result<Option<String>> {
            match block.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(substitute(s, env)?)),
                Some(Value::Number(n)) => Ok(Some(n.to_string())),
                Some(_) => bail!("{name} must be a string"),
            }
        };
        let present = |name: &str| -> Result<Option<String>> { Ok(field(name)?.filter(|v| !v.trim().is_empty())) };
        let client_id = present("client_id")?.ok_or_else(|| anyhow!("client_id is required"))?;
        let method = present("token_endpoint_auth_method")?;
        let auth = match method.as_deref() {
            None | Some("client_secret_basic") => {
                ClientAuth::Basic(present("client_secret")?.ok_or_else(|| anyhow!("client_secret is required"))?)
            }
            Some("client_secret_post") => ClientAuth::Post(present("client_secret")?.ok_or_else(|| anyhow!("client_secret is required"))?),
            Some("private_key_jwt") => {
                let pem = match (present("private_key")?, present("private_key_file")?) {
                    (Some(pem), None) => pem,
                    (None, Some(file)) => read_small(&base.join(file))?,
                    (Some(_), Some(_)) => bail!("give private_key or private_key_file, not both"),
                    (None, None) => bail!("private_key_jwt needs private_key (PEM) or private_key_file"),
                };
                let alg = present("token_endpoint_auth_signing_alg")?;
                let (key, alg) = signing_key(&pem, alg.as_deref())?;
                ClientAuth::PrivateKeyJwt { key, alg, kid: present("private_key_id")? }
            }
            Some(other) => bail!(
                "token_endpoint_auth_method {:?} is not supported (client_secret_basic, client_secret_post or private_key_jwt)",
                crate::validate::printable(other)
            ),
        };
        let token_url = present("token_url")?;
        if let Some(url) = &token_url {
            crate::validate::http_url(url).map_err(|e| anyhow!("token_url: {e}"))?;
        }
        let issuer = present("issuer")?;
        if let Some(url) = &issuer {
            crate::validate::http_url(url).map_err(|e| anyhow!("issuer: {e}"))?;
        }
        let resource = present("resource")?;
        if let Some(url) = &resource {
            crate::validate::http_url(url).map_err(|e| anyhow!("resource: {e}"))?;
        }
        let scopes = match block.get("scopes") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => substitute(s, env)?.split_whitespace().map(str::to_owned).collect(),
            Some(Value::Array(items)) => {
                let mut out = Vec::new();
                for item in items {
                    let s = item.as_str().ok_or_else(|| anyhow!("scopes must be strings"))?;
                    out.extend(substitute(s, env)?.split_whitespace().map(str::to_owned));
                }
                out
            }
            Some(_) => bail!("scopes must be a list or a space-delimited string"),
        };
        crate::validate::scopes(&scopes).map_err(|e| anyhow!("scopes: {e}"))?;
        let buffer = match block.get("token_cache_buffer_seconds") {
            None | Some(Value::Null) => DEFAULT_BUFFER_SECS,
            Some(v) => v.as_u64().ok_or_else(|| anyhow!("token_cache_buffer_seconds must be a whole number of seconds"))?,
        };
        let service_token = match block.get("service_token") {
            None | Some(Value::Null) => None,
            Some(st) => Some(service_token(st, env)?),
        };
        Ok(OAuthConfig { client_id, auth, token_url, issuer, scopes, resource, buffer: Duration::from_secs(buffer), service_token })
    }
}

fn service_token(st: &Value, env: &dyn Fn(&str) -> Option<String>) -> Result<ServiceToken> {
    if st.get("function").is_some() {
        bail!("service_token.function names a Python function, which mcpgen cannot call; use service_token.command (argv list) or token");
    }
    let header = st.get("header").and_then(Value::as_str).unwrap_or("X-Service-Account-Token");
    let header = HeaderName::from_bytes(header.as_bytes())
        .map_err(|_| anyhow!("service_token.header {:?} is not a header name", crate::validate::printable(header)))?;
    match (st.get("token"), st.get("command")) {
        (Some(token), None) => {
            let token = substitute(token.as_str().ok_or_else(|| anyhow!("service_token.token must be a string"))?, env)?;
            let mut value = HeaderValue::from_str(&token).map_err(|_| anyhow!("service_token.token is not a valid header value"))?;
            value.set_sensitive(true);
            Ok(ServiceToken::Static { header, value })
        }
        (None, Some(Value::Array(items))) if !items.is_empty() => {
            let argv = items
                .iter()
                .map(|v| v.as_str().map(|s| substitute(s, env)).ok_or_else(|| anyhow!("service_token.command must list strings"))?)
                .collect::<Result<Vec<_>>>()?;
            let timeout = match st.get("timeout_seconds") {
                None | Some(Value::Null) => DEFAULT_COMMAND_TIMEOUT,
                Some(v) => Duration::from_secs(
                    v.as_u64()
                        .filter(|n| (1..=300).contains(n))
                        .ok_or_else(|| anyhow!("service_token.timeout_seconds must be 1 to 300"))?,
                ),
            };
            Ok(ServiceToken::Command { header, argv, timeout })
        }
        (None, Some(_)) => bail!("service_token.command must be a non-empty list: the program and its arguments"),
        (Some(_), Some(_)) => bail!("give service_token.token or service_token.command, not both"),
        (None, None) => bail!("service_token needs token or command"),
    }
}

/// The signing key of `private_key_jwt` and its algorithm: EdDSA for Ed25519, RS256 for RSA,
/// ES256 for P-256 unless `alg` says otherwise (and fits the key).
fn signing_key(pem: &str, alg: Option<&str>) -> Result<(EncodingKey, Algorithm)> {
    let bad = || anyhow!("private_key is not an Ed25519, RSA or EC private key in PEM (PKCS#8, or PKCS#1/SEC1)");
    let kind = if let Ok(k) = EncodingKey::from_ed_pem(pem.as_bytes()) {
        (k, Algorithm::EdDSA, &[Algorithm::EdDSA][..])
    } else if let Ok(k) = EncodingKey::from_rsa_pem(pem.as_bytes()) {
        (
            k,
            Algorithm::RS256,
            &[Algorithm::RS256, Algorithm::RS384, Algorithm::RS512, Algorithm::PS256, Algorithm::PS384, Algorithm::PS512][..],
        )
    } else if let Ok(k) = EncodingKey::from_ec_pem(pem.as_bytes()) {
        (k, Algorithm::ES256, &[Algorithm::ES256, Algorithm::ES384][..])
    } else {
        return Err(bad());
    };
    let (key, default, allowed) = kind;
    let alg = match alg {
        None => default,
        Some(name) => {
            let parsed = crate::jwk::Alg::parse(name).map(crate::jwk::Alg::jose);
            parsed.filter(|a| allowed.contains(a)).ok_or_else(|| {
                anyhow!("token_endpoint_auth_signing_alg {:?} does not fit the private key", crate::validate::printable(name))
            })?
        }
    };
    Ok((key, alg))
}

fn read_small(path: &Path) -> Result<String> {
    use std::io::Read;
    let mut text = String::new();
    let file = std::fs::File::open(path).map_err(|e| anyhow!("cannot read {} ({e})", path.display()))?;
    file.take(MAX_FILE_BYTES + 1).read_to_string(&mut text).map_err(|e| anyhow!("cannot read {} ({e})", path.display()))?;
    if text.len() as u64 > MAX_FILE_BYTES {
        bail!("{} is larger than {MAX_FILE_BYTES} bytes", path.display());
    }
    Ok(text)
}

fn find_block(doc: &Value) -> Option<&Value> {
    if ["client_id", "client_secret", "token_url", "private_key", "private_key_file"].iter().any(|k| doc.get(k).is_some()) {
        return Some(doc);
    }
    let providers = doc.get("authentication")?.as_object()?;
    providers.values().find(|p| p.get("_type").and_then(Value::as_str) == Some("mcp_service_account"))
}

/// Replace `${VAR}` with the environment's value; an unset variable is an error naming it.
pub fn substitute(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or_else(|| anyhow!("unterminated ${{ in a value"))?;
        let name = &after[..end];
        let value = env(name).ok_or_else(|| anyhow!("environment variable {} is not set", crate::validate::printable(name)))?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}
