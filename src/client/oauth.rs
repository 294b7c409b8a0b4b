//! OAuth2 client credentials (RFC 6749 §4.4) for the client, as seed 003 configures it:
//! `client_id`, `client_secret`, `token_url`, `scopes` (list or space-delimited string),
//! `${VAR}` substitution from the environment, an in-memory token cache refreshed
//! `token_cache_buffer_seconds` (default 300) before expiry, and an optional static
//! `service_token` sent in a second header. The file may be the seed's workflow YAML
//! (`authentication: {name: {_type: mcp_service_account, …}}`) or just that provider block.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::Value;
use tokio::sync::Mutex;

use crate::client::ClientError;
use crate::logging::trace;
use crate::net::{self, redact_url};

pub const DEFAULT_BUFFER_SECS: u64 = 300;
/// Largest token endpoint response read.
const MAX_TOKEN_RESPONSE_BYTES: usize = 64 * 1024;

#[derive(Clone)]
pub struct OAuthConfig {
    pub client_id: String,
    client_secret: String,
    pub token_url: String,
    pub scopes: Vec<String>,
    pub buffer: Duration,
    pub service_token: Option<(HeaderName, HeaderValue)>,
}

impl std::fmt::Debug for OAuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthConfig")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("token_url", &self.token_url)
            .field("scopes", &self.scopes)
            .field("buffer", &self.buffer)
            .field("service_token", &self.service_token.as_ref().map(|(h, _)| (h, "<redacted>")))
            .finish()
    }
}

impl OAuthConfig {
    /// Read a YAML or JSON file; `env` resolves `${VAR}`.
    pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<OAuthConfig> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let doc: Value = serde_norway::from_str(&text).map_err(|e| anyhow!("{}: invalid YAML or JSON ({e})", path.display()))?;
        Self::from_value(&doc, env).with_context(|| format!("{}", path.display()))
    }

    pub fn from_value(doc: &Value, env: &dyn Fn(&str) -> Option<String>) -> Result<OAuthConfig> {
        let block =
            find_block(doc).ok_or_else(|| anyhow!("no mcp_service_account provider (expected client_id, client_secret, token_url)"))?;
        let field = |name: &str| -> Result<Option<String>> {
            match block.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(substitute(s, env)?)),
                Some(other) => Ok(Some(other.to_string())),
            }
        };
        let required =
            |name: &str| -> Result<String> { field(name)?.filter(|v| !v.trim().is_empty()).ok_or_else(|| anyhow!("{name} is required")) };
        let client_id = required("client_id")?;
        let client_secret = required("client_secret")?;
        let token_url = required("token_url")?;
        crate::validate::http_url(&token_url).map_err(|e| anyhow!("token_url: {e}"))?;
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
            Some(st) => {
                if st.get("function").is_some() {
                    bail!(
                        "service_token.function names a Python function, which mcpgen cannot call; use service_token.token with ${{VAR}}"
                    );
                }
                let token = st.get("token").and_then(Value::as_str).ok_or_else(|| anyhow!("service_token.token is required"))?;
                let token = substitute(token, env)?;
                let header = st.get("header").and_then(Value::as_str).unwrap_or("X-Service-Account-Token");
                let name = HeaderName::from_bytes(header.as_bytes())
                    .map_err(|_| anyhow!("service_token.header {header:?} is not a header name"))?;
                let value = HeaderValue::from_str(&token).map_err(|_| anyhow!("service_token.token is not a valid header value"))?;
                Some((name, value))
            }
        };
        Ok(OAuthConfig { client_id, client_secret, token_url, scopes, buffer: Duration::from_secs(buffer), service_token })
    }
}

fn find_block(doc: &Value) -> Option<&Value> {
    if doc.get("token_url").is_some() || doc.get("client_id").is_some() {
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
        let end = after.find('}').ok_or_else(|| anyhow!("unterminated ${{ in {text:?}"))?;
        let name = &after[..end];
        let value = env(name).ok_or_else(|| anyhow!("environment variable {name} is not set"))?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

struct Cached {
    token: String,
    refresh_at: Instant,
}

/// Fetches and caches the access token; safe to share between concurrent requests (one fetch
/// at a time, the others wait for its result).
pub struct OAuthProvider {
    config: OAuthConfig,
    cache: Mutex<Option<Cached>>,
}

impl OAuthProvider {
    pub fn new(config: OAuthConfig) -> Self {
        OAuthProvider { config, cache: Mutex::new(None) }
    }

    pub fn token_url(&self) -> &str {
        &self.config.token_url
    }

    /// `Authorization: Bearer …` plus the service token header, if configured.
    pub async fn headers(&self, http: &reqwest::Client, debug: bool) -> Result<Vec<(HeaderName, HeaderValue)>, ClientError> {
        let token = self.token(http, debug).await?;
        let mut out = vec![(
            reqwest::header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| ClientError::Protocol("the access token is not a valid header value".into()))?,
        )];
        if let Some(st) = &self.config.service_token {
            out.push(st.clone());
        }
        Ok(out)
    }

    pub async fn token(&self, http: &reqwest::Client, debug: bool) -> Result<String, ClientError> {
        let mut cache = self.cache.lock().await;
        if let Some(cached) = cache.as_ref()
            && Instant::now() < cached.refresh_at
        {
            return Ok(cached.token.clone());
        }
        let (token, lifetime) = self.fetch(http, debug).await?;
        // A buffer longer than the token's life would refetch on every request: keep at least
        // half of the lifetime.
        let refresh_at = Instant::now() + lifetime.saturating_sub(self.config.buffer.min(lifetime / 2));
        *cache = Some(Cached { token: token.clone(), refresh_at });
        Ok(token)
    }

    async fn fetch(&self, http: &reqwest::Client, debug: bool) -> Result<(String, Duration), ClientError> {
        let c = &self.config;
        let mut form = vec![("grant_type", "client_credentials".to_owned())];
        if !c.scopes.is_empty() {
            form.push(("scope", c.scopes.join(" ")));
        }
        if debug {
            trace(
                ">",
                &format!("POST {} (client credentials for {}, scope {:?})", redact_url(&c.token_url), c.client_id, c.scopes.join(" ")),
            );
            trace(">", "authorization: <redacted>");
        }
        let response = http
            .post(&c.token_url)
            .basic_auth(&c.client_id, Some(&c.client_secret))
            .form(&form)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| ClientError::Unreachable { url: redact_url(&c.token_url), reason: net::describe(&e) })?;
        let status = response.status();
        // Capped while reading: a hostile token endpoint cannot make us buffer more.
        let body = net::read_capped(response, MAX_TOKEN_RESPONSE_BYTES).await.map_err(|e| match e {
            net::ReadError::Transport(e) => ClientError::Unreachable { url: redact_url(&c.token_url), reason: net::describe(&e) },
            too_large => ClientError::Protocol(format!("token endpoint {}: {too_large}", redact_url(&c.token_url))),
        })?;
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if debug {
            let mut shown = body.clone();
            if let Some(obj) = shown.as_object_mut() {
                for key in ["access_token", "refresh_token", "id_token"] {
                    if obj.contains_key(key) {
                        obj.insert(key.into(), Value::String("<redacted>".into()));
                    }
                }
            }
            trace("<", &format!("{status} {shown}"));
        }
        if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(ClientError::Protocol("service account rate limit exceeded at the token endpoint; wait before retrying".into()));
        }
        if !status.is_success() {
            return Err(ClientError::Refused {
                status: status.as_u16(),
                error: Some(body.get("error").and_then(Value::as_str).unwrap_or("invalid service account credentials").to_owned()),
                description: body.get("error_description").and_then(Value::as_str).map(str::to_owned),
                scope: None,
                metadata: None,
            });
        }
        let token = body
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ClientError::Protocol("the token endpoint answered without access_token".into()))?;
        // Clamped: a hostile or broken endpoint must not overflow the clock arithmetic.
        let lifetime = Duration::from_secs(body.get("expires_in").and_then(Value::as_u64).unwrap_or(3600).min(86_400));
        Ok((token.to_owned(), lifetime))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env(name: &str) -> Option<String> {
        match name {
            "ID" => Some("svc".into()),
            "SECRET" => Some("s3cret".into()),
            "SCOPES" => Some("a.read b.read".into()),
            _ => None,
        }
    }

    #[test]
    fn seed_003_nested_form_with_env_and_string_scopes() {
        let doc: Value = serde_norway::from_str(
            "authentication:\n  my_service_account:\n    _type: mcp_service_account\n    client_id: ${ID}\n    client_secret: ${SECRET}\n    token_url: https://auth.example.com/oauth/token\n    scopes: ${SCOPES}\n    token_cache_buffer_seconds: 600\n    service_token:\n      token: ${SECRET}\n      header: X-Service-Account-Token\n",
        )
        .unwrap();
        let c = OAuthConfig::from_value(&doc, &env).unwrap();
        assert_eq!(c.client_id, "svc");
        assert_eq!(c.scopes, vec!["a.read", "b.read"]);
        assert_eq!(c.buffer, Duration::from_secs(600));
        assert_eq!(c.service_token.as_ref().unwrap().0.as_str(), "x-service-account-token");
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn missing_fields_and_variables_are_named() {
        let err = OAuthConfig::from_value(&json!({"client_id": "x", "token_url": "https://t"}), &env).unwrap_err();
        assert_eq!(err.to_string(), "client_secret is required");
        let err =
            OAuthConfig::from_value(&json!({"client_id": "${NOPE}", "client_secret": "s", "token_url": "https://t"}), &env).unwrap_err();
        assert!(err.to_string().contains("NOPE"));
        let c =
            OAuthConfig::from_value(&json!({"client_id": "x", "client_secret": "s", "token_url": "https://t", "scopes": ["a", "b"]}), &env)
                .unwrap();
        assert_eq!(c.buffer, Duration::from_secs(DEFAULT_BUFFER_SECS));
        assert_eq!(c.scopes, vec!["a", "b"]);
    }
}
