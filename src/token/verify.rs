//! Verification of a JWS compact token against trusted keys and an [`Expect`]ation, strict in
//! the ways `token`'s header explains: the algorithm must be accepted and fit the key, hostile
//! header parameters refuse the token, the signature is checked before any claim is trusted,
//! and time is the caller's clock.

use std::collections::HashSet;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use ed25519_dalek::Signature;
use serde_json::{Map, Value};

use super::{Alg, MAX_LEEWAY_SECS, MAX_TOKEN_BYTES, TrustedKey, format_time};

/// Why a token was refused. Messages are short and never contain the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token is larger than {MAX_TOKEN_BYTES} bytes")]
    TooLarge,
    #[error("token is malformed: {0}")]
    Malformed(&'static str),
    #[error("algorithm {0:?} is not accepted")]
    Algorithm(String),
    #[error("header parameter {0:?} is not accepted")]
    ForbiddenHeader(String),
    #[error("no configured key has kid {0:?}")]
    UnknownKid(String),
    #[error("no signing key is configured")]
    NoKeys,
    #[error("signature does not verify")]
    BadSignature,
    #[error("claim {0:?} is missing or has the wrong type")]
    Claim(&'static str),
    #[error("token expired at {0}")]
    Expired(String),
    #[error("token is not valid before {0}")]
    NotYetValid(String),
    #[error("issuer {0:?} is not the expected issuer")]
    Issuer(String),
    #[error("audience does not include {0:?}")]
    Audience(String),
    #[error("token has been revoked")]
    Revoked,
}

/// What a verified token must satisfy. `now` is the caller's clock (seconds since the epoch).
#[derive(Debug, Clone, Default)]
pub struct Expect<'a> {
    pub issuer: Option<&'a str>,
    pub audience: Option<&'a str>,
    pub now: i64,
    pub leeway: i64,
    pub revoked: Option<&'a HashSet<String>>,
    /// Accepted algorithms; empty means EdDSA only (the profile's own tokens).
    pub algorithms: &'a [Alg],
}

impl Expect<'_> {
    fn accepts(&self, alg: Alg) -> bool {
        if self.algorithms.is_empty() { alg == Alg::EdDSA } else { self.algorithms.contains(&alg) }
    }
}

/// A verified token's parts.
#[derive(Debug, Clone)]
pub struct Verified {
    pub header: Map<String, Value>,
    pub claims: Map<String, Value>,
    pub kid: String,
}

impl Verified {
    pub fn claim_str(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    /// Scopes from `scope` (space-delimited) or `scp` (array), as OAuth servers vary.
    pub fn scopes(&self) -> Vec<String> {
        match (self.claims.get("scope"), self.claims.get("scp")) {
            (Some(Value::String(s)), _) => s.split_whitespace().map(str::to_owned).collect(),
            (_, Some(Value::Array(items))) => items.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
            (_, Some(Value::String(s))) => s.split_whitespace().map(str::to_owned).collect(),
            _ => Vec::new(),
        }
    }

    /// The calling client: `client_id`, else `azp`, else `sub`.
    pub fn client_id(&self) -> &str {
        self.claim_str("client_id").or_else(|| self.claim_str("azp")).or_else(|| self.claim_str("sub")).unwrap_or("-")
    }

    pub fn exp(&self) -> i64 {
        self.claims.get("exp").and_then(Value::as_i64).unwrap_or(0)
    }
}

/// Header and claims decoded without any check, for display of a token that failed.
pub fn decode_unverified(token: &str) -> Option<(Map<String, Value>, Map<String, Value>)> {
    if token.len() > MAX_TOKEN_BYTES {
        return None;
    }
    let mut parts = token.split('.');
    let header = decode_json_segment(parts.next()?).ok()?;
    let claims = decode_json_segment(parts.next()?).ok()?;
    Some((header, claims))
}

fn decode_json_segment(segment: &str) -> Result<Map<String, Value>, TokenError> {
    let bytes = B64URL.decode(segment).map_err(|_| TokenError::Malformed("segment is not base64url"))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(TokenError::Malformed("segment is not a JSON object")),
    }
}

/// Header parameters that would let a token choose its own key or require extensions we do not
/// implement; any of them refuses the token (RFC 7515 §4.1.3–4.1.6, §4.1.11; RFC 8725 §3.10).
const FORBIDDEN_HEADERS: [&str; 6] = ["crit", "jwk", "jku", "x5u", "x5c", "b64"];

/// Verify `token` against `keys` and `expect`. Checks run cheapest-first and the signature is
/// checked before any claim is trusted.
pub fn verify(token: &str, keys: &[TrustedKey], expect: &Expect) -> Result<Verified, TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::TooLarge);
    }
    let mut parts = token.splitn(4, '.');
    let (Some(h64), Some(c64), Some(s64), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(TokenError::Malformed("expected three dot-separated segments"));
    };
    let header = decode_json_segment(h64)?;
    let alg = match header.get("alg") {
        Some(Value::String(name)) => match Alg::parse(name) {
            Some(alg) if expect.accepts(alg) => alg,
            _ => return Err(TokenError::Algorithm(name.chars().take(32).collect())),
        },
        _ => return Err(TokenError::Malformed("header has no alg")),
    };
    if let Some(name) = FORBIDDEN_HEADERS.iter().find(|name| header.contains_key(**name)) {
        return Err(TokenError::ForbiddenHeader((*name).to_owned()));
    }
    if let Some(typ) = header.get("typ")
        && !matches!(typ.as_str(), Some(t) if t.eq_ignore_ascii_case("JWT") || t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt"))
    {
        return Err(TokenError::Malformed("typ is not JWT"));
    }
    let usable = || keys.iter().filter(|k| k.allows(alg));
    let key = match header.get("kid") {
        Some(Value::String(kid)) => {
            usable().find(|k| &k.kid == kid).ok_or_else(|| TokenError::UnknownKid(kid.chars().take(128).collect()))?
        }
        Some(_) => return Err(TokenError::Malformed("kid is not a string")),
        None => match usable().count() {
            0 => return Err(TokenError::NoKeys),
            1 => usable().next().ok_or(TokenError::NoKeys)?,
            _ => usable().find(|k| check_signature(k, alg, h64, c64, s64).is_ok()).ok_or(TokenError::BadSignature)?,
        },
    };
    check_signature(key, alg, h64, c64, s64)?;
    let claims = decode_json_segment(c64)?;
    check_claims(&claims, expect)?;
    Ok(Verified { header, claims, kid: key.kid.clone() })
}

fn check_signature(key: &TrustedKey, alg: Alg, h64: &str, c64: &str, s64: &str) -> Result<(), TokenError> {
    let mut message = Vec::with_capacity(h64.len() + 1 + c64.len());
    message.extend_from_slice(h64.as_bytes());
    message.push(b'.');
    message.extend_from_slice(c64.as_bytes());
    match key.ed25519() {
        Some(public) => {
            let raw = B64URL.decode(s64).map_err(|_| TokenError::Malformed("signature is not base64url"))?;
            let signature = Signature::from_slice(&raw).map_err(|_| TokenError::Malformed("signature is not 64 bytes"))?;
            public.verifying_key().verify_strict(&message, &signature).map_err(|_| TokenError::BadSignature)
        }
        None if key.verify_jose(alg, &message, s64) => Ok(()),
        None => Err(TokenError::BadSignature),
    }
}

fn numeric(claims: &Map<String, Value>, name: &'static str) -> Result<Option<i64>, TokenError> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)).map(Some).ok_or(TokenError::Claim(name)),
    }
}

fn check_claims(claims: &Map<String, Value>, expect: &Expect) -> Result<(), TokenError> {
    let leeway = expect.leeway.clamp(0, MAX_LEEWAY_SECS);
    let exp = numeric(claims, "exp")?.ok_or(TokenError::Claim("exp"))?;
    if expect.now > exp.saturating_add(leeway) {
        return Err(TokenError::Expired(format_time(exp)));
    }
    if let Some(nbf) = numeric(claims, "nbf")?
        && nbf > expect.now.saturating_add(leeway)
    {
        return Err(TokenError::NotYetValid(format_time(nbf)));
    }
    if let Some(iat) = numeric(claims, "iat")?
        && iat > expect.now.saturating_add(leeway)
    {
        return Err(TokenError::NotYetValid(format_time(iat)));
    }
    if let Some(issuer) = expect.issuer {
        match claims.get("iss") {
            Some(Value::String(iss)) if iss == issuer => {}
            Some(Value::String(iss)) => return Err(TokenError::Issuer(iss.clone())),
            _ => return Err(TokenError::Claim("iss")),
        }
    }
    if let Some(audience) = expect.audience {
        let ok = match claims.get("aud") {
            Some(Value::String(aud)) => aud == audience,
            Some(Value::Array(items)) => items.iter().any(|v| v.as_str() == Some(audience)),
            _ => false,
        };
        if !ok {
            return Err(TokenError::Audience(audience.to_owned()));
        }
    }
    if let Some(revoked) = expect.revoked
        && let Some(Value::String(jti)) = claims.get("jti")
        && revoked.contains(jti)
    {
        return Err(TokenError::Revoked);
    }
    Ok(())
}
