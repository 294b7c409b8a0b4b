//! Service-account authentication for every MCP request, as seed 001 describes: find the token
//! (configured header, optional prefix, query parameter only when `bearer_methods_supported`
//! lists it), verify it (static Ed25519 keys first, then the JWKS), check issuer, audience,
//! revocation and `required_scopes`, and build the RFC 6750 / RFC 9728 challenges (each
//! carrying the reason for the access log, see `access_log::Refused`). Opaque tokens go to the
//! RFC 7662 `introspection` endpoint when one is configured.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::server::access_log::Refused;
use crate::server::snapshot::Live;
use crate::server::token_cache::{CachedCaller, JWKS_VERIFIED_SECS};
use crate::token::{self, Expect, MAX_LEEWAY_SECS, MAX_TOKEN_BYTES, TokenError};

/// Who is calling.
#[derive(Debug, Clone)]
pub struct Caller {
    pub client_id: String,
    pub scopes: Vec<String>,
    pub authenticated: bool,
    /// Authentication is disabled: there are no scopes to check, every tool is open.
    pub unrestricted: bool,
}

impl Caller {
    /// No token where none is required: only tools that need no scopes.
    pub fn anonymous() -> Self {
        Caller { client_id: "-".into(), scopes: Vec::new(), authenticated: false, unrestricted: false }
    }

    /// `enabled: false`: per-tool scopes cannot apply to callers nobody identifies.
    pub fn unrestricted() -> Self {
        Caller { unrestricted: true, ..Caller::anonymous() }
    }

    pub fn has_all(&self, needed: &[String]) -> bool {
        self.unrestricted || needed.iter().all(|s| self.scopes.contains(s))
    }
}

/// Why a request is refused.
#[derive(Debug, Clone)]
pub enum Refusal {
    /// No token where one is required: 401 without an error code (RFC 6750 §3.1).
    Missing,
    /// A token was presented and rejected: 401 `invalid_token`.
    Invalid(String),
    /// Valid token without the needed scopes: 403 `insufficient_scope`.
    InsufficientScope(Vec<String>),
}

/// Authenticate one request. `query` is the raw query string.
pub async fn authenticate(live: &Live, headers: &HeaderMap, query: Option<&str>) -> Result<Caller, Refusal> {
    let sa = &live.settings.sa;
    if !sa.enabled {
        return Ok(Caller::unrestricted());
    }
    let Some(raw) = find_token(live, headers, query)? else {
        return if sa.required { Err(Refusal::Missing) } else { Ok(Caller::anonymous()) };
    };
    let now = chrono::Utc::now().timestamp();
    let opaque = live.introspection.as_ref().filter(|_| !crate::server::introspection::is_jwt(&raw));
    // A cached entry counts only while it may be trusted (see `token_cache`).
    let cached = opaque.is_none().then(|| live.cache.get(&raw)).flatten().filter(|cached| {
        cached.exp + MAX_LEEWAY_SECS >= now
            && cached.nbf <= now + MAX_LEEWAY_SECS
            && cached.jwks.is_none_or(|(generation, until)| {
                now < until && live.jwks.as_ref().is_some_and(|j| j.generation() == generation && j.is_fresh())
            })
    });
    if opaque.is_none() {
        crate::server::metrics::token_cache(cached.is_some());
    }
    let caller = match (opaque, cached) {
        // Not a JWT and an introspection endpoint is configured: the IdP decides (RFC 7662).
        (Some(introspector), _) => {
            let expect = crate::server::introspection::Expect { audience: sa.audience.as_deref(), issuer: sa.issuer.as_deref(), now };
            let found = introspector.check(&raw, &expect).await.map_err(Refusal::Invalid)?;
            Caller { client_id: found.client_id, scopes: found.scopes, authenticated: true, unrestricted: false }
        }
        (None, Some(cached)) => Caller { client_id: cached.client_id, scopes: cached.scopes, authenticated: true, unrestricted: false },
        _ => {
            // Taken before verifying: a fetch during the check leaves the entry conservatively old.
            let generation = live.jwks.as_ref().map(|j| j.generation());
            let (verified, by_static_key) = verify(live, &raw, now).await.map_err(|e| Refusal::Invalid(e.to_string()))?;
            let caller =
                Caller { client_id: verified.client_id().to_owned(), scopes: verified.scopes(), authenticated: true, unrestricted: false };
            // Static keys change with the files, which empties the cache; a JWKS key can leave
            // the remote set at any time, so its tokens are trusted for a short while only.
            let nbf = verified.claims.get("nbf").and_then(|v| v.as_i64()).unwrap_or(i64::MIN);
            let jwks = match (&live.jwks, by_static_key) {
                (Some(_), false) => generation.map(|g| (g, now + JWKS_VERIFIED_SECS)),
                _ => None,
            };
            live.cache.put(
                &raw,
                CachedCaller { client_id: caller.client_id.clone(), scopes: caller.scopes.clone(), exp: verified.exp(), nbf, jwks },
            );
            caller
        }
    };
    if !caller.has_all(&sa.required_scopes) {
        return Err(Refusal::InsufficientScope(sa.required_scopes.clone()));
    }
    Ok(caller)
}

/// The token from the configured header (prefix stripped when present) or, when allowed, the
/// `access_token` query parameter. Two different places at once is refused (RFC 6750 §2).
fn find_token(live: &Live, headers: &HeaderMap, query: Option<&str>) -> Result<Option<String>, Refusal> {
    let sa = &live.settings.sa;
    let mut found: Option<String> = None;
    let mut values = headers.get_all(sa.header.as_str()).iter();
    if let Some(value) = values.next() {
        if values.next().is_some() {
            return Err(Refusal::Invalid(format!("more than one {} header", sa.header)));
        }
        let text = value.to_str().map_err(|_| Refusal::Invalid("header is not visible ASCII".into()))?.trim();
        let prefix = sa.prefix.as_deref().unwrap_or("").trim();
        let bare = strip_scheme(text, prefix);
        if !bare.is_empty() {
            found = Some(bare.to_owned());
        }
    }
    if sa.bearer_methods_supported.iter().any(|m| m == "query")
        && let Some(q) = query
    {
        for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
            if k == "access_token" {
                if found.is_some() {
                    return Err(Refusal::Invalid("token presented in more than one place".into()));
                }
                found = Some(v.into_owned());
            }
        }
    }
    if let Some(token) = &found
        && token.len() > MAX_TOKEN_BYTES
    {
        return Err(Refusal::Invalid(TokenError::TooLarge.to_string()));
    }
    Ok(found)
}

/// The RFC 6750 scheme word a client may put before the token whatever `prefix` says.
const BEARER: &str = "Bearer ";

fn starts_with_ignore_case(text: &str, start: &str) -> bool {
    text.len() >= start.len() && text.as_bytes()[..start.len()].eq_ignore_ascii_case(start.as_bytes())
}

/// The token in a header value: the configured `prefix` stripped when present, and an RFC 6750
/// `Bearer ` scheme word too (a token has no spaces, so the word is never part of one).
fn strip_scheme<'a>(text: &'a str, prefix: &str) -> &'a str {
    let mut bare = text;
    for word in [prefix, BEARER.trim_end()] {
        if !word.is_empty() && bare.len() > word.len() && starts_with_ignore_case(bare, word) {
            let rest = &bare[word.len()..];
            // A scheme word is followed by a space; a prefix may end in its own separator.
            if word == prefix || rest.starts_with(' ') {
                bare = rest.trim_start();
            }
        }
    }
    bare
}

/// Static keys first; then the JWKS for key errors (and once more after a refresh for an
/// unknown kid). The flag tells whether a static key verified it.
async fn verify(live: &Live, raw: &str, now: i64) -> Result<(token::Verified, bool), TokenError> {
    let expect = Expect {
        issuer: live.settings.sa.issuer.as_deref(),
        audience: live.settings.sa.audience.as_deref(),
        now,
        leeway: MAX_LEEWAY_SECS,
        revoked: Some(&live.revoked),
        // Identity providers sign with RSA and ECDSA too (pinned by `algorithms`); the
        // profile's own tokens are EdDSA.
        algorithms: &live.settings.algorithms,
    };
    let key_error = |e: &TokenError| matches!(e, TokenError::UnknownKid(_) | TokenError::BadSignature | TokenError::NoKeys);
    let first = token::verify(raw, &live.keys, &expect);
    let Some(jwks) = &live.jwks else { return first.map(|v| (v, true)) };
    match first {
        Err(e) if key_error(&e) => {}
        other => return other.map(|v| (v, true)),
    }
    let keys = jwks.keys().await;
    let remote = match token::verify(raw, &keys, &expect) {
        Err(TokenError::UnknownKid(_)) | Err(TokenError::NoKeys) => token::verify(raw, &jwks.refresh().await, &expect),
        other => other,
    };
    remote.map(|v| (v, false))
}

/// Quote a value for an auth-param (RFC 9110 §5.6.4): no quotes, backslashes or controls.
/// Only printable ASCII survives (a header value must be), at most 200 characters.
fn quoted(value: &str) -> String {
    value.chars().filter(|c| matches!(c, ' '..='~') && *c != '"' && *c != '\\').take(200).collect()
}

/// The 401/403 response with its `WWW-Authenticate` challenge.
pub fn refusal_response(live: &Live, refusal: &Refusal, metadata_url: &str) -> Response {
    let mut params: Vec<String> = Vec::new();
    let (status, error, description) = match refusal {
        Refusal::Missing => {
            (StatusCode::UNAUTHORIZED, None, format!("a service-account token is required in the {} header", live.settings.sa.header))
        }
        Refusal::Invalid(why) => (StatusCode::UNAUTHORIZED, Some("invalid_token"), why.clone()),
        Refusal::InsufficientScope(_) => (StatusCode::FORBIDDEN, Some("insufficient_scope"), "the token lacks a required scope".to_owned()),
    };
    if let Some(error) = error {
        params.push(format!("error=\"{error}\""));
    }
    // Without a token there is no error code (RFC 6750 §3.1), but the description says which
    // header the server reads: a host that only knows `Authorization: Bearer` learns why.
    params.push(format!("error_description=\"{}\"", quoted(&description)));
    if let Refusal::InsufficientScope(scopes) = refusal {
        params.push(format!("scope=\"{}\"", quoted(&scopes.join(" "))));
    }
    if live.settings.sa.require_metadata_on_401 || status == StatusCode::FORBIDDEN {
        params.push(format!("resource_metadata=\"{}\"", quoted(metadata_url)));
    }
    let challenge = if params.is_empty() { "Bearer".to_owned() } else { format!("Bearer {}", params.join(", ")) };
    let mut body = json!({"error": error.unwrap_or("unauthorized"), "error_description": description});
    if let Refusal::InsufficientScope(scopes) = refusal {
        body["scope"] = json!(scopes.join(" "));
    }
    let mut response = (status, axum::Json(body)).into_response();
    let reason = match refusal {
        Refusal::Missing => "missing_token".to_owned(),
        Refusal::Invalid(why) => format!("invalid_token: {why}"),
        Refusal::InsufficientScope(scopes) => format!("insufficient_scope: needs {}", scopes.join(" ")),
    };
    response.extensions_mut().insert(Refused(reason));
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::strip_scheme;

    #[test]
    fn a_bearer_scheme_word_is_stripped_whatever_the_prefix() {
        assert_eq!(strip_scheme("eyJ.a.b", ""), "eyJ.a.b");
        assert_eq!(strip_scheme("Bearer eyJ.a.b", ""), "eyJ.a.b");
        assert_eq!(strip_scheme("bearer   eyJ.a.b", ""), "eyJ.a.b");
        assert_eq!(strip_scheme("Bearer eyJ.a.b", "Bearer"), "eyJ.a.b");
        assert_eq!(strip_scheme("Token eyJ.a.b", "Token"), "eyJ.a.b");
        assert_eq!(strip_scheme("Token Bearer eyJ.a.b", "Token"), "eyJ.a.b");
        // Not a scheme word: a token that merely starts with the letters.
        assert_eq!(strip_scheme("BearerX.a.b", ""), "BearerX.a.b");
    }
}
