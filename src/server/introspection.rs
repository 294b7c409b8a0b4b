//! RFC 7662 token introspection for opaque access tokens (`introspection_endpoint`, in
//! `mode: "oauth"`): a token that is not a JWT is POSTed as `token=…` to the identity provider,
//! the server authenticating with `client_secret_basic` (its `client_id`/`client_secret`,
//! form-encoded as RFC 6749 §2.3.1 asks), and the answer decides: `active` must be `true`;
//! `exp`/`nbf` are checked with the usual leeway; `aud`, when present, must include the server's
//! audience; `iss`, when present and an issuer is configured, must equal it; `scope` gives the
//! caller's scopes.
//!
//! The endpoint is remote and may be slow, hostile or down: every request has the shared HTTP
//! policy's timeout and no redirects, and the reply is read with a size cap. Answers are cached
//! for at most [`CACHE_TTL`] (never past the token's `exp`), keyed by the SHA-256 of the token
//! so the cache holds no token, in a table of at most [`CACHE_CAPACITY`] entries; transport
//! failures are not cached. A revoked token is therefore refused within `CACHE_TTL`. Neither
//! the token nor the client secret ever appears in an error or a log line. (Concurrent first
//! uses of one token each ask the endpoint: there is no single flight here.)

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::token::{MAX_LEEWAY_SECS, format_time};

/// Longest an introspection answer (active or not) is reused.
pub const CACHE_TTL: Duration = Duration::from_secs(5);
/// Most answers kept; the table is emptied when full (a flood of distinct tokens costs the
/// flooder a request each, never our memory).
pub const CACHE_CAPACITY: usize = 10_000;
/// Largest introspection reply read.
pub const MAX_REPLY_BYTES: usize = 64 * 1024;
/// Whole exchange with the introspection endpoint.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// What an active token says about its caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Introspected {
    pub client_id: String,
    pub scopes: Vec<String>,
    /// `exp`, when the endpoint gave one.
    pub exp: Option<i64>,
}

/// What the token must satisfy besides being active.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    pub audience: Option<&'a str>,
    pub issuer: Option<&'a str>,
    pub now: i64,
}

pub struct Introspector {
    pub endpoint: String,
    client_id: Option<String>,
    client_secret: Option<String>,
    client: Result<reqwest::Client, String>,
    cache: Mutex<HashMap<[u8; 32], (Instant, Answer)>>,
}

/// An endpoint's verdict on one token: the caller, or why not.
type Answer = Result<Introspected, String>;

impl std::fmt::Debug for Introspector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Introspector").field("endpoint", &self.endpoint).field("client_id", &self.client_id).finish_non_exhaustive()
    }
}

/// Whether `token` is a JWT (`token::is_jwt`); anything else is opaque and goes to
/// introspection.
pub use crate::token::is_jwt;

impl Introspector {
    pub fn new(endpoint: String, client_id: Option<String>, client_secret: Option<String>) -> Self {
        let client = crate::net::Policy::new(TIMEOUT, crate::net::is_https(&endpoint)).client().map_err(|e| crate::net::describe(&e));
        Introspector { endpoint, client_id, client_secret, client, cache: Mutex::new(HashMap::new()) }
    }

    /// Whether this introspector was built from these settings (a reload keeps it, and its cache).
    pub fn same(&self, endpoint: &str, client_id: Option<&str>, client_secret: Option<&str>) -> bool {
        self.endpoint == endpoint && self.client_id.as_deref() == client_id && self.client_secret.as_deref() == client_secret
    }

    /// The caller behind an opaque `token`, or why it is refused (a message without the token).
    pub async fn check(&self, token: &str, expect: &Expect<'_>) -> Result<Introspected, String> {
        // The answer was judged against `expect`: a reload that changes the audience or issuer
        // must not find it, so they are part of the key.
        let mut hasher = Sha256::new();
        for part in [Some(token), expect.audience, expect.issuer] {
            hasher.update(part.unwrap_or("").as_bytes());
            hasher.update([0]);
        }
        let key: [u8; 32] = hasher.finalize().into();
        let cached = self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(&key).filter(|(until, _)| Instant::now() < *until).cloned();
        let answer = match cached {
            Some((_, answer)) => answer,
            None => {
                let answer = self.ask(token, expect).await;
                let ttl = match &answer {
                    Ok(Introspected { exp: Some(exp), .. }) => {
                        CACHE_TTL.min(Duration::from_secs(u64::try_from(exp.saturating_sub(expect.now)).unwrap_or(0)))
                    }
                    _ => CACHE_TTL,
                };
                let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
                if cache.len() >= CACHE_CAPACITY {
                    cache.clear();
                }
                // A transport failure is not cached: the next request asks again.
                if !ttl.is_zero() && !answer.as_ref().is_err_and(|e| e.starts_with("introspection failed")) {
                    cache.insert(key, (Instant::now() + ttl, answer.clone()));
                }
                answer
            }
        };
        // Expiry is checked on every use, cached or not.
        let introspected = answer?;
        if let Some(exp) = introspected.exp
            && expect.now > exp.saturating_add(MAX_LEEWAY_SECS)
        {
            return Err(format!("token expired at {}", format_time(exp)));
        }
        Ok(introspected)
    }

    /// One POST to the endpoint, judged.
    async fn ask(&self, token: &str, expect: &Expect<'_>) -> Result<Introspected, String> {
        let client = self.client.as_ref().map_err(|e| format!("introspection failed: {e}"))?;
        let mut request = client.post(&self.endpoint).header("accept", "application/json");
        if let Some(id) = &self.client_id {
            // RFC 6749 §2.3.1: both halves form-encoded before Basic, which a secret with
            // `+ / = :` needs.
            let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            request = request.basic_auth(encode(id), self.client_secret.as_deref().map(encode));
        }
        let response = request
            .form(&[("token", token), ("token_type_hint", "access_token")])
            .send()
            .await
            .map_err(|e| format!("introspection failed: {}", crate::net::describe(&e)))?;
        let status = response.status();
        let body = crate::net::read_capped(response, MAX_REPLY_BYTES).await.map_err(|e| format!("introspection failed: {e}"))?;
        if !status.is_success() {
            return Err(format!("introspection failed: the endpoint answered HTTP {}", status.as_u16()));
        }
        let doc: Value = serde_json::from_slice(&body).map_err(|_| "introspection failed: the reply is not JSON".to_owned())?;
        judge(&doc, expect)
    }
}

/// Decide on an RFC 7662 reply.
pub fn judge(doc: &Value, expect: &Expect<'_>) -> Result<Introspected, String> {
    let Some(fields) = doc.as_object() else { return Err("introspection failed: the reply is not a JSON object".into()) };
    if fields.get("active") != Some(&Value::Bool(true)) {
        return Err("token is not active (introspection)".into());
    }
    let number = |name: &str| fields.get(name).and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)));
    let exp = number("exp");
    if let Some(exp) = exp
        && expect.now > exp.saturating_add(MAX_LEEWAY_SECS)
    {
        return Err(format!("token expired at {}", format_time(exp)));
    }
    if let Some(nbf) = number("nbf")
        && nbf > expect.now.saturating_add(MAX_LEEWAY_SECS)
    {
        return Err(format!("token is not valid before {}", format_time(nbf)));
    }
    if let (Some(audience), Some(aud)) = (expect.audience, fields.get("aud")) {
        let ok = match aud {
            Value::String(a) => a == audience,
            Value::Array(items) => items.iter().any(|v| v.as_str() == Some(audience)),
            _ => false,
        };
        if !ok {
            return Err(format!("audience does not include {audience:?}"));
        }
    }
    if let (Some(issuer), Some(iss)) = (expect.issuer, fields.get("iss"))
        && iss.as_str() != Some(issuer)
    {
        return Err(format!("issuer {:?} is not the expected issuer", crate::validate::printable(&iss.to_string())));
    }
    let text = |name: &str| fields.get(name).and_then(Value::as_str);
    let scopes = text("scope").map(|s| s.split_whitespace().map(str::to_owned).collect()).unwrap_or_default();
    let client_id = text("client_id").or_else(|| text("sub")).unwrap_or("-").to_owned();
    Ok(Introspected { client_id, scopes, exp })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;
    const AUD: &str = "http://127.0.0.1:8000/mcp";

    fn expect() -> Expect<'static> {
        Expect { audience: Some(AUD), issuer: Some("https://idp.example"), now: NOW }
    }

    #[test]
    fn jwt_shape() {
        assert!(is_jwt("eyJh.eyJz.c2ln"));
        for opaque in ["abc", "a.b", "a..c", "a.b.c.d", "a+b.c.d", "pLr9xK3-_abc"] {
            assert!(!is_jwt(opaque), "{opaque}");
        }
    }

    #[test]
    fn active_token_gives_client_and_scopes() {
        let doc =
            json!({"active": true, "client_id": "svc", "scope": "a b", "exp": NOW + 60, "aud": [AUD, "x"], "iss": "https://idp.example"});
        assert_eq!(
            judge(&doc, &expect()).unwrap(),
            Introspected { client_id: "svc".into(), scopes: vec!["a".into(), "b".into()], exp: Some(NOW + 60) }
        );
        // No aud, no iss, no exp: nothing to contradict.
        assert_eq!(judge(&json!({"active": true, "sub": "s"}), &expect()).unwrap().client_id, "s");
    }

    #[test]
    fn refusals() {
        let cases = [
            (json!({"active": false}), "not active"),
            (json!({"active": "true"}), "not active"),
            (json!([]), "not a JSON object"),
            (json!({"active": true, "exp": NOW - 61}), "expired"),
            (json!({"active": true, "nbf": NOW + 61}), "not valid before"),
            (json!({"active": true, "aud": "http://other/mcp"}), "audience"),
            (json!({"active": true, "aud": ["http://other/mcp"]}), "audience"),
            (json!({"active": true, "iss": "https://evil.example"}), "issuer"),
        ];
        for (doc, want) in cases {
            let e = judge(&doc, &expect()).unwrap_err();
            assert!(e.contains(want), "{doc}: {e}");
        }
    }
}
