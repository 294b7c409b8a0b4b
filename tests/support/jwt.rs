//! The one JWT helper: decode a token's header or claims without any check (tests only look),
//! forge a token with any header and claims signed by a given Ed25519 key (for hostile
//! variants), and verify a token in-process against a profile's public key.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use serde_json::Value;

use super::lib::{self, PrivateKey, PublicKey};
use super::run::Env;
use super::tree::read_text;

/// Decode one JWT segment (0 = header, 1 = claims) without any check.
#[track_caller]
pub fn jwt_part(jwt: &str, index: usize) -> Value {
    let segment = jwt.split('.').nth(index).unwrap_or_else(|| panic!("JWT has no segment {index}: {jwt}"));
    let bytes = B64URL.decode(segment).expect("JWT segment is base64url");
    serde_json::from_slice(&bytes).expect("JWT segment is JSON")
}

#[track_caller]
pub fn jwt_header(jwt: &str) -> Value {
    jwt_part(jwt, 0)
}

#[track_caller]
pub fn jwt_claims(jwt: &str) -> Value {
    jwt_part(jwt, 1)
}

/// Compact JWS of arbitrary JSON header and claims, EdDSA-signed with `key`.
pub fn sign(key: &PrivateKey, header: &Value, claims: &Value) -> String {
    let input = format!("{}.{}", B64URL.encode(header.to_string()), B64URL.encode(claims.to_string()));
    let der = key.to_der().expect("der");
    let signature =
        jsonwebtoken::crypto::sign(input.as_bytes(), &jsonwebtoken::EncodingKey::from_ed_der(&der), jsonwebtoken::Algorithm::EdDSA)
            .expect("sign");
    format!("{input}.{signature}")
}

/// A profile's current private key from `sa/private.pem`.
pub fn private_key(env: &Env, profile: &str) -> PrivateKey {
    PrivateKey::from_pem(&read_text(&env.file(profile, "sa/private.pem"))).expect("sa/private.pem parses")
}

/// A profile's current public key from `sa/public.pem`.
pub fn public_key(env: &Env, profile: &str) -> PublicKey {
    PublicKey::from_pem(&read_text(&env.file(profile, "sa/public.pem"))).expect("sa/public.pem parses")
}

/// Verify a JWT's signature (and expiry, audience, issuer) in-process against one public key.
pub fn verify_with(jwt: &str, key: PublicKey, issuer: &str, audience: &str) -> Result<(), lib::TokenError> {
    let expect =
        lib::Expect { issuer: Some(issuer), audience: Some(audience), now: now(), leeway: 60, revoked: None, ..Default::default() };
    lib::verify(jwt, &[lib::TrustedKey::new(key)], &expect).map(|_| ())
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Parse an RFC 3339 timestamp from JSON.
#[track_caller]
pub fn time(value: &Value) -> chrono::DateTime<chrono::Utc> {
    let text = value.as_str().unwrap_or_else(|| panic!("not a timestamp string: {value}"));
    chrono::DateTime::parse_from_rfc3339(text).unwrap_or_else(|e| panic!("{text:?} is not RFC 3339: {e}")).with_timezone(&chrono::Utc)
}
