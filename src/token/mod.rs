//! Service-account JWTs: the claims and minting here, verification with the clock as an
//! argument in `verify`.
//!
//! Why the JWT layer is ours and where `jsonwebtoken` serves: a generic JOSE library decides
//! policy (which algorithms, which header parameters, how claims are checked, which clock) that
//! mcpgen must decide itself — refuse anything but the configured algorithms and keys, any
//! `crit`, embedded keys or key URLs, oversized or malformed input, check the signature before
//! trusting any claim, take the clock as an argument, and use `verify_strict` for Ed25519. So
//! minting and verifying are written here on top of signature primitives: Ed25519 from
//! `ed25519-dalek` directly (its `SigningKey` is `Sync`, so one [`Minter`] serves every thread
//! of `remint-all`, with no PKCS#8 round trip). `jsonwebtoken` is the independent
//! implementation the tests cross-check against (the RFC 8037 A.4 vector), and the place for
//! what an identity provider's tokens need: JWK parsing and the RSA/ECDSA signature
//! primitives.

use anyhow::{Context, Result};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use serde::{Deserialize, Serialize};

pub use crate::jwk::{Alg, TrustedKey};
use crate::keys::PrivateKey;

mod verify;
pub use verify::{Expect, TokenError, Verified, decode_unverified, verify};

/// Largest token accepted anywhere (header value, file or flag).
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Largest clock skew tolerated for `nbf`, `iat` and `exp`.
pub const MAX_LEEWAY_SECS: i64 = 60;

/// The claims mcpgen mints. `sub` equals `client_id`; `scope` is space-delimited (RFC 8693 §4.2).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub client_id: String,
    pub scope: String,
    pub aud: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: String,
}

/// 128 random bits, base64url: the `jti` of a new token.
pub fn new_jti() -> String {
    let bytes: [u8; 16] = rand::random();
    B64URL.encode(bytes)
}

/// A key ready to sign many tokens, with the header (`{"alg":"EdDSA","typ":"JWT","kid":…}`)
/// encoded once. `Sync`: threads share one.
pub struct Minter {
    key: PrivateKey,
    header_b64: String,
}

impl Minter {
    pub fn new(private: &PrivateKey) -> Result<Self> {
        let kid = private.public().thumbprint();
        let header = serde_json::json!({"alg": "EdDSA", "typ": "JWT", "kid": kid});
        Ok(Minter { key: private.clone(), header_b64: B64URL.encode(header.to_string()) })
    }

    /// The compact JWS for `claims`.
    pub fn mint(&self, claims: &Claims) -> Result<String> {
        let payload = serde_json::to_vec(claims).context("cannot encode claims")?;
        let signing_input = format!("{}.{}", self.header_b64, B64URL.encode(payload));
        let signature = self.key.sign(signing_input.as_bytes());
        Ok(format!("{signing_input}.{}", B64URL.encode(signature)))
    }
}

/// RFC 3339 UTC for messages.
pub fn format_time(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| secs.to_string())
}

/// Whether `token` looks like a JWS compact serialization: three non-empty base64url segments
/// (no blank, control character or anything else a terminal or a header would interpret).
pub fn is_jwt(token: &str) -> bool {
    let segments: Vec<&str> = token.split('.').collect();
    segments.len() == 3 && segments.iter().all(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
}

#[cfg(test)]
mod tests;
