//! OAuth2 client credentials (RFC 6749 §4.4) for the MCP client, as seed 003 configures it
//! (see `config`): the access token is fetched from the token endpoint — found by `discovery`
//! when the file names none — with the configured client authentication and the RFC 8707
//! `resource`, cached in memory, refreshed `token_cache_buffer_seconds` before it expires, and
//! fetched at most once at a time however many requests wait for it. `invalidate` drops it
//! after the MCP server refused it, so the next request mints a new one.

pub mod config;
mod discovery;

use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::Value;
use tokio::sync::Mutex;

pub use config::{ClientAuth, OAuthConfig, ServiceToken};

use crate::client::ClientError;
use crate::logging::trace;
use crate::net::{self, redact_url};

/// Largest token endpoint (or discovery document) response read.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// Lifetime of a `private_key_jwt` assertion.
const ASSERTION_LIFETIME_SECS: i64 = 60;
/// Largest service-token command output read.
const MAX_COMMAND_OUTPUT: usize = 16 * 1024;

struct Cached {
    token: String,
    refresh_at: Instant,
    /// The service-token command's output, fetched with the access token.
    service_token: Option<HeaderValue>,
}

/// Fetches and caches the access token; safe to share between concurrent requests (one fetch
/// at a time, the others wait for its result).
pub struct OAuthProvider {
    config: OAuthConfig,
    /// The MCP endpoint: the default `resource`, and where discovery starts.
    server_url: String,
    cache: Mutex<Option<Cached>>,
    token_url: Mutex<Option<String>>,
}

impl OAuthProvider {
    pub fn new(config: OAuthConfig, server_url: &str) -> Self {
        let token_url = Mutex::new(config.token_url.clone());
        OAuthProvider { config, server_url: server_url.to_owned(), cache: Mutex::new(None), token_url }
    }

    /// Whether any endpoint the provider calls may need TLS.
    pub fn needs_tls(&self) -> bool {
        self.config.token_url.as_deref().is_none_or(net::is_https)
    }

    /// `Authorization: Bearer …` plus the service token header, if configured.
    pub async fn headers(&self, http: &reqwest::Client, debug: bool) -> Result<Vec<(HeaderName, HeaderValue)>, ClientError> {
        let (token, service_token) = self.token(http, debug).await?;
        let mut bearer = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| ClientError::Protocol("the access token is not a valid header value".into()))?;
        bearer.set_sensitive(true);
        let mut out = vec![(reqwest::header::AUTHORIZATION, bearer)];
        match (&self.config.service_token, service_token) {
            (Some(ServiceToken::Static { header, value }), _) => out.push((header.clone(), value.clone())),
            (Some(ServiceToken::Command { header, .. }), Some(value)) => out.push((header.clone(), value)),
            _ => {}
        }
        Ok(out)
    }

    /// Forget the cached token (the server refused it): the next request mints a new one.
    pub async fn invalidate(&self) {
        *self.cache.lock().await = None;
    }

    async fn token(&self, http: &reqwest::Client, debug: bool) -> Result<(String, Option<HeaderValue>), ClientError> {
        let mut cache = self.cache.lock().await;
        if let Some(cached) = cache.as_ref()
            && Instant::now() < cached.refresh_at
        {
            return Ok((cached.token.clone(), cached.service_token.clone()));
        }
        let (token, lifetime) = self.fetch(http, debug).await?;
        let service_token = match &self.config.service_token {
            Some(ServiceToken::Command { argv, timeout, .. }) => Some(run_command(argv, *timeout).await?),
            _ => None,
        };
        // A buffer longer than the token's life would refetch on every request: keep at least
        // half of the lifetime.
        let refresh_at = Instant::now() + lifetime.saturating_sub(self.config.buffer.min(lifetime / 2));
        *cache = Some(Cached { token: token.clone(), refresh_at, service_token: service_token.clone() });
        Ok((token, service_token))
    }

    async fn endpoint(&self, http: &reqwest::Client, debug: bool) -> Result<String, ClientError> {
        let mut known = self.token_url.lock().await;
        if let Some(url) = known.as_ref() {
            return Ok(url.clone());
        }
        let found =
            discovery::token_endpoint(http, &self.server_url, self.config.issuer.as_deref(), self.config.auth.method(), debug).await?;
        *known = Some(found.clone());
        Ok(found)
    }

    async fn fetch(&self, http: &reqwest::Client, debug: bool) -> Result<(String, Duration), ClientError> {
        let c = &self.config;
        let token_url = self.endpoint(http, debug).await?;
        let resource = c.resource.clone().unwrap_or_else(|| self.server_url.clone());
        let mut form = vec![("grant_type", "client_credentials".to_owned()), ("resource", resource)];
        if !c.scopes.is_empty() {
            form.push(("scope", c.scopes.join(" ")));
        }
        let mut request = http.post(&token_url).header(reqwest::header::ACCEPT, "application/json");
        match &c.auth {
            ClientAuth::Basic(secret) => {
                // RFC 6749 §2.3.1: both parts form-encoded before Basic encoding.
                let pair = format!("{}:{}", form_encode(&c.client_id), form_encode(secret));
                let mut value = HeaderValue::from_str(&format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair)))
                    .map_err(|_| ClientError::Protocol("the client credentials are not a valid header value".into()))?;
                value.set_sensitive(true);
                request = request.header(reqwest::header::AUTHORIZATION, value);
            }
            ClientAuth::Post(secret) => {
                form.push(("client_id", c.client_id.clone()));
                form.push(("client_secret", secret.clone()));
            }
            ClientAuth::PrivateKeyJwt { key, alg, kid } => {
                form.push(("client_id", c.client_id.clone()));
                form.push(("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into()));
                form.push(("client_assertion", assertion(&c.client_id, &token_url, key, *alg, kid.as_deref())?));
            }
        }
        if debug {
            let scope = c.scopes.join(" ");
            trace(
                ">",
                &format!("POST {} (client credentials for {}, {}, scope {scope:?})", redact_url(&token_url), c.client_id, c.auth.method()),
            );
        }
        let unreachable = |e: &reqwest::Error| ClientError::Unreachable {
            url: format!("token endpoint {}", redact_url(&token_url)),
            reason: net::describe(e),
        };
        let response = request.form(&form).send().await.map_err(|e| unreachable(&e))?;
        let status = response.status();
        // Capped while reading: a hostile token endpoint cannot make us buffer more.
        let body = net::read_capped(response, MAX_RESPONSE_BYTES).await.map_err(|e| match e {
            net::ReadError::Transport(e) => unreachable(&e),
            too_large => ClientError::Protocol(format!("token endpoint {}: {too_large}", redact_url(&token_url))),
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
        if !status.is_success() {
            return Err(ClientError::TokenEndpoint {
                url: redact_url(&token_url),
                status: status.as_u16(),
                error: body.get("error").and_then(Value::as_str).map(str::to_owned),
                description: body.get("error_description").and_then(Value::as_str).map(str::to_owned),
            });
        }
        let token = body
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ClientError::Protocol(format!("token endpoint {} answered without access_token", redact_url(&token_url))))?;
        // Clamped: a hostile or broken endpoint must not overflow the clock arithmetic.
        let lifetime = Duration::from_secs(body.get("expires_in").and_then(Value::as_u64).unwrap_or(3600).min(86_400));
        Ok((token.to_owned(), lifetime))
    }
}

/// `application/x-www-form-urlencoded` of one value (RFC 6749 Appendix B).
fn form_encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// An RFC 7523 client assertion: iss = sub = client_id, aud = the token endpoint, short-lived,
/// with a random jti.
fn assertion(
    client_id: &str,
    token_url: &str,
    key: &jsonwebtoken::EncodingKey,
    alg: jsonwebtoken::Algorithm,
    kid: Option<&str>,
) -> Result<String, ClientError> {
    let now = chrono::Utc::now().timestamp();
    let claims = serde_json::json!({
        "iss": client_id, "sub": client_id, "aud": token_url,
        "iat": now, "exp": now + ASSERTION_LIFETIME_SECS, "jti": crate::token::new_jti(),
    });
    let mut header = jsonwebtoken::Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, &claims, key).map_err(|e| ClientError::Protocol(format!("cannot sign the client assertion: {e}")))
}

/// Run a service-token command: its trimmed standard output is the token. Bounded in time and
/// size; the output is never logged or echoed.
async fn run_command(argv: &[String], timeout: Duration) -> Result<HeaderValue, ClientError> {
    use tokio::io::AsyncReadExt;
    let program = crate::validate::printable(&argv[0]);
    let fail = |why: String| ClientError::Protocol(format!("service_token.command {program}: {why}"));
    let mut child = tokio::process::Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| fail(format!("cannot start ({e})")))?;
    let mut stdout = child.stdout.take().ok_or_else(|| fail("no output".into()))?;
    let run = async {
        let mut out = Vec::new();
        (&mut stdout).take(MAX_COMMAND_OUTPUT as u64 + 1).read_to_end(&mut out).await.map_err(|e| fail(e.to_string()))?;
        let status = child.wait().await.map_err(|e| fail(e.to_string()))?;
        Ok::<_, ClientError>((out, status))
    };
    let (out, status) =
        tokio::time::timeout(timeout, run).await.map_err(|_| fail(format!("did not finish within {} s", timeout.as_secs())))??;
    if !status.success() {
        return Err(fail(format!("exited with {status}")));
    }
    if out.len() > MAX_COMMAND_OUTPUT {
        return Err(fail(format!("printed more than {MAX_COMMAND_OUTPUT} bytes")));
    }
    let token = String::from_utf8(out).map_err(|_| fail("printed something that is not UTF-8".into()))?;
    let mut value = HeaderValue::from_str(token.trim()).map_err(|_| fail("printed something that is not a header value".into()))?;
    if value.is_empty() {
        return Err(fail("printed nothing".into()));
    }
    value.set_sensitive(true);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::json;

    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "ID" => Some("svc".into()),
            "SECRET" => Some("s3cret".into()),
            "SCOPES" => Some("a.read b.read".into()),
            _ => None,
        }
    }

    fn parse(doc: Value) -> anyhow::Result<OAuthConfig> {
        OAuthConfig::from_value(&doc, Path::new("."), &env)
    }

    #[test]
    fn seed_003_nested_form_with_env_and_string_scopes() {
        let doc: Value = serde_norway::from_str(
            "authentication:\n  my_service_account:\n    _type: mcp_service_account\n    client_id: ${ID}\n    client_secret: ${SECRET}\n    token_url: https://auth.example.com/oauth/token\n    scopes: ${SCOPES}\n    token_cache_buffer_seconds: 600\n    service_token:\n      token: ${SECRET}\n      header: X-Service-Account-Token\n",
        )
        .unwrap();
        let c = parse(doc).unwrap();
        assert_eq!(c.client_id, "svc");
        assert_eq!(c.scopes, vec!["a.read", "b.read"]);
        assert_eq!(c.buffer, Duration::from_secs(600));
        assert!(matches!(&c.service_token, Some(ServiceToken::Static { header, .. }) if header.as_str() == "x-service-account-token"));
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn missing_fields_and_variables_are_named() {
        let err = parse(json!({"client_id": "x", "token_url": "https://t"})).unwrap_err();
        assert_eq!(err.to_string(), "client_secret is required");
        let err = parse(json!({"client_id": "${NOPE}", "client_secret": "s", "token_url": "https://t"})).unwrap_err();
        assert!(err.to_string().contains("NOPE"));
        let c = parse(json!({"client_id": "x", "client_secret": "s", "token_url": "https://t", "scopes": ["a", "b"]})).unwrap();
        assert_eq!(c.buffer, Duration::from_secs(config::DEFAULT_BUFFER_SECS));
        assert_eq!(c.scopes, vec!["a", "b"]);
        assert!(parse(json!({"client_id": "x", "client_secret": "s", "token_endpoint_auth_method": "tls_client_auth"})).is_err());
        let err = parse(json!({"client_id": "x", "token_endpoint_auth_method": "private_key_jwt"})).unwrap_err();
        assert!(err.to_string().contains("private_key"), "{err}");
    }

    #[test]
    fn private_key_jwt_takes_the_algorithm_from_the_key() {
        let pem = crate::keys::PrivateKey::generate().to_pem().unwrap();
        let c = parse(json!({"client_id": "x", "token_endpoint_auth_method": "private_key_jwt", "private_key": pem})).unwrap();
        assert!(matches!(c.auth, ClientAuth::PrivateKeyJwt { alg: jsonwebtoken::Algorithm::EdDSA, .. }));
        assert!(!format!("{c:?}").contains("PRIVATE KEY"));
        let err = parse(json!({"client_id": "x", "token_endpoint_auth_method": "private_key_jwt", "private_key": pem,
            "token_endpoint_auth_signing_alg": "RS256"}))
        .unwrap_err();
        assert!(err.to_string().contains("does not fit"), "{err}");
    }

    #[test]
    fn secrets_are_form_encoded_before_basic() {
        assert_eq!(form_encode("a+b/c=d e"), "a%2Bb%2Fc%3Dd+e");
        assert_eq!(form_encode("svc-robot"), "svc-robot");
    }

    #[tokio::test]
    async fn service_token_commands_are_bounded() {
        let ok = run_command(&["printf".into(), "  t0ken\n".into()], Duration::from_secs(5)).await.unwrap();
        assert_eq!(ok.to_str().unwrap(), "t0ken");
        assert!(run_command(&["false".into()], Duration::from_secs(5)).await.is_err());
        let slow = run_command(&["sleep".into(), "5".into()], Duration::from_millis(200)).await.unwrap_err();
        assert!(slow.to_string().contains("did not finish"), "{slow}");
        assert!(run_command(&["/nonexistent/helper".into()], Duration::from_secs(1)).await.is_err());
    }
}
