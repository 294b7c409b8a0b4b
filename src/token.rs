//! Service-account JWTs: the claims, minting, and verification with the clock as an argument.
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

use std::collections::HashSet;

use anyhow::{Context, Result};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use ed25519_dalek::Signature;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use crate::jwk::{Alg, TrustedKey};
use crate::keys::PrivateKey;

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

/// RFC 3339 UTC for messages.
pub fn format_time(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| secs.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{Algorithm, EncodingKey};

    const D: &str = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
    const NOW: i64 = 1_800_000_000;

    fn key() -> PrivateKey {
        let seed: [u8; 32] = B64URL.decode(D).unwrap().try_into().unwrap();
        PrivateKey::from_seed(&seed)
    }

    fn claims() -> Claims {
        Claims {
            iss: "oemcp-local".into(),
            sub: "ci-bot".into(),
            client_id: "ci-bot".into(),
            scope: "orders.read products.read".into(),
            aud: "http://127.0.0.1:8000/mcp".into(),
            iat: NOW,
            nbf: NOW,
            exp: NOW + 86400,
            jti: new_jti(),
        }
    }

    fn expect() -> Expect<'static> {
        Expect {
            issuer: Some("oemcp-local"),
            audience: Some("http://127.0.0.1:8000/mcp"),
            now: NOW + 10,
            leeway: 60,
            revoked: None,
            algorithms: &[],
        }
    }

    fn keys() -> Vec<TrustedKey> {
        vec![TrustedKey::new(key().public())]
    }

    /// Re-sign arbitrary header and claims with the test key.
    fn forge(header: Value, claims: Value) -> String {
        let input = format!("{}.{}", B64URL.encode(header.to_string()), B64URL.encode(claims.to_string()));
        let sig =
            jsonwebtoken::crypto::sign(input.as_bytes(), &EncodingKey::from_ed_der(&key().to_der().unwrap()), Algorithm::EdDSA).unwrap();
        format!("{input}.{sig}")
    }

    #[test]
    fn minter_matches_jsonwebtoken_byte_for_byte() {
        let token = Minter::new(&key()).unwrap().mint(&claims()).unwrap();
        let (input, sig) = token.rsplit_once('.').unwrap();
        let theirs =
            jsonwebtoken::crypto::sign(input.as_bytes(), &EncodingKey::from_ed_der(&key().to_der().unwrap()), Algorithm::EdDSA).unwrap();
        assert_eq!(sig, theirs);
    }

    #[test]
    fn rfc8037_a4_signature() {
        let signer = EncodingKey::from_ed_der(&key().to_der().unwrap());
        let input = format!("{}.{}", B64URL.encode(r#"{"alg":"EdDSA"}"#), B64URL.encode("Example of Ed25519 signing"));
        assert_eq!(input, "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc");
        let sig = jsonwebtoken::crypto::sign(input.as_bytes(), &signer, Algorithm::EdDSA).unwrap();
        assert_eq!(sig, "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg");
    }

    #[test]
    fn minted_token_has_the_documented_header_and_claims() {
        let c = claims();
        let token = Minter::new(&key()).unwrap().mint(&c).unwrap();
        let v = verify(&token, &keys(), &expect()).unwrap();
        assert_eq!(v.header.get("alg").unwrap(), "EdDSA");
        assert_eq!(v.header.get("typ").unwrap(), "JWT");
        assert_eq!(v.header.get("kid").unwrap(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
        assert_eq!(serde_json::from_value::<Claims>(Value::Object(v.claims.clone())).unwrap(), c);
        assert_eq!(v.scopes(), vec!["orders.read", "products.read"]);
        assert_eq!(v.client_id(), "ci-bot");
        assert!(c.jti.len() >= 22);
    }

    #[test]
    fn time_checks_use_the_given_clock() {
        let token = Minter::new(&key()).unwrap().mint(&claims()).unwrap();
        let late = Expect { now: NOW + 86400 + 61, ..expect() };
        assert!(matches!(verify(&token, &keys(), &late), Err(TokenError::Expired(_))));
        let within_leeway = Expect { now: NOW + 86400 + 59, ..expect() };
        assert!(verify(&token, &keys(), &within_leeway).is_ok());
        let early = Expect { now: NOW - 120, ..expect() };
        assert!(matches!(verify(&token, &keys(), &early), Err(TokenError::NotYetValid(_))));
        // A huge leeway is clamped to 60 s.
        let greedy = Expect { now: NOW + 86400 + 3600, leeway: 100_000, ..expect() };
        assert!(matches!(verify(&token, &keys(), &greedy), Err(TokenError::Expired(_))));
    }

    #[test]
    fn issuer_audience_and_revocation() {
        let c = claims();
        let token = Minter::new(&key()).unwrap().mint(&c).unwrap();
        assert_eq!(
            verify(&token, &keys(), &Expect { issuer: Some("other"), ..expect() }).unwrap_err(),
            TokenError::Issuer("oemcp-local".into())
        );
        assert!(matches!(verify(&token, &keys(), &Expect { audience: Some("http://x/mcp"), ..expect() }), Err(TokenError::Audience(_))));
        let revoked: HashSet<String> = [c.jti.clone()].into();
        assert_eq!(verify(&token, &keys(), &Expect { revoked: Some(&revoked), ..expect() }).unwrap_err(), TokenError::Revoked);
    }

    #[test]
    fn hostile_tokens_are_refused() {
        let good_claims = serde_json::to_value(claims()).unwrap();
        let kid = key().public().thumbprint();
        let cases: Vec<(Value, TokenError)> = vec![
            (serde_json::json!({"alg": "none", "kid": kid}), TokenError::Algorithm("none".into())),
            (serde_json::json!({"alg": "HS256", "kid": kid}), TokenError::Algorithm("HS256".into())),
            (serde_json::json!({"alg": "EdDSA", "kid": kid, "crit": ["exp"]}), TokenError::ForbiddenHeader("crit".into())),
            (serde_json::json!({"alg": "EdDSA", "kid": kid, "jwk": key().public().jwk()}), TokenError::ForbiddenHeader("jwk".into())),
            (serde_json::json!({"alg": "EdDSA", "kid": kid, "jku": "http://evil/jwks"}), TokenError::ForbiddenHeader("jku".into())),
            (serde_json::json!({"alg": "EdDSA", "kid": kid, "x5u": "http://evil/cert"}), TokenError::ForbiddenHeader("x5u".into())),
            (serde_json::json!({"alg": "EdDSA", "kid": kid, "x5c": ["AAAA"]}), TokenError::ForbiddenHeader("x5c".into())),
            (serde_json::json!({"alg": "EdDSA", "kid": "someone-else"}), TokenError::UnknownKid("someone-else".into())),
        ];
        for (header, want) in cases {
            let token = forge(header.clone(), good_claims.clone());
            assert_eq!(verify(&token, &keys(), &expect()).unwrap_err(), want, "header {header}");
        }
        // No exp at all.
        let mut no_exp = good_claims.clone();
        no_exp.as_object_mut().unwrap().remove("exp");
        let token = forge(serde_json::json!({"alg": "EdDSA"}), no_exp);
        assert_eq!(verify(&token, &keys(), &expect()).unwrap_err(), TokenError::Claim("exp"));
    }

    #[test]
    fn malformed_and_tampered_tokens_are_refused() {
        let token = Minter::new(&key()).unwrap().mint(&claims()).unwrap();
        let (h, rest) = token.split_once('.').unwrap();
        let (_, s) = rest.split_once('.').unwrap();
        let mut other = claims();
        other.scope = "admin".into();
        let tampered = format!("{h}.{}.{s}", B64URL.encode(serde_json::to_vec(&other).unwrap()));
        assert_eq!(verify(&tampered, &keys(), &expect()).unwrap_err(), TokenError::BadSignature);
        for bad in ["", "a.b", "a.b.c.d", "!!!.e30.AAAA", &format!("{h}.{rest}x")] {
            assert!(verify(bad, &keys(), &expect()).is_err(), "{bad:?}");
        }
        let huge = format!("{h}.{}.{s}", "A".repeat(MAX_TOKEN_BYTES));
        assert_eq!(verify(&huge, &keys(), &expect()).unwrap_err(), TokenError::TooLarge);
        let not_json = format!("{}.{}.{s}", B64URL.encode("[1]"), rest.split_once('.').unwrap().0);
        assert!(matches!(verify(&not_json, &keys(), &expect()), Err(TokenError::Malformed(_))));
        let other_key = TrustedKey::new(PrivateKey::generate().public());
        let mut wrong = other_key.clone();
        wrong.kid = key().public().thumbprint();
        assert_eq!(verify(&token, &[wrong], &expect()).unwrap_err(), TokenError::BadSignature);
    }

    /// Throw-away RSA 2048, P-256 and P-384 keys: private PKCS#8 PEM and public JWK.
    fn jose_key(name: &str) -> (EncodingKey, TrustedKey) {
        let fixtures: Value = serde_json::from_str(include_str!("testdata/jose_keys.json")).unwrap();
        let pem = fixtures[name]["private_pem"].as_str().unwrap().as_bytes();
        let encoding = if name == "rsa" { EncodingKey::from_rsa_pem(pem) } else { EncodingKey::from_ec_pem(pem) }.unwrap();
        let mut jwk = fixtures[name]["jwk"].clone();
        jwk["kid"] = Value::String(name.into());
        let keys = crate::jwk::parse_set(&serde_json::json!({"keys": [jwk]}));
        (encoding, keys.into_iter().next().expect("the fixture key parses"))
    }

    fn forge_with(key: &EncodingKey, alg: Algorithm, header: Value) -> String {
        let input = format!("{}.{}", B64URL.encode(header.to_string()), B64URL.encode(serde_json::to_vec(&claims()).unwrap()));
        format!("{input}.{}", jsonwebtoken::crypto::sign(input.as_bytes(), key, alg).unwrap())
    }

    #[test]
    fn identity_provider_algorithms_verify_with_their_keys_only() {
        let all = Expect { algorithms: &Alg::ASYMMETRIC, ..expect() };
        for (name, alg, typ) in [
            ("rsa", Algorithm::RS256, "JWT"),
            ("rsa", Algorithm::RS512, "at+jwt"),
            ("rsa", Algorithm::PS256, "at+jwt"),
            ("p256", Algorithm::ES256, "at+jwt"),
            ("p384", Algorithm::ES384, "JWT"),
        ] {
            let (signing, trusted) = jose_key(name);
            let header = serde_json::json!({"alg": format!("{alg:?}"), "typ": typ, "kid": name});
            let token = forge_with(&signing, alg, header);
            let keys = vec![trusted.clone(), TrustedKey::new(key().public())];
            assert!(verify(&token, &keys, &all).is_ok(), "{name} {alg:?}");
            // Not accepted unless listed: the profile's own expectations are EdDSA only.
            assert_eq!(verify(&token, &keys, &expect()).unwrap_err(), TokenError::Algorithm(format!("{alg:?}")));
            let pinned = Expect { algorithms: &[Alg::EdDSA, Alg::ES384], ..expect() };
            if alg != Algorithm::ES384 {
                assert!(matches!(verify(&token, &keys, &pinned), Err(TokenError::Algorithm(_))), "{name} {alg:?} pinned out");
            }
            // Tampered claims fail.
            let (h, rest) = token.split_once('.').unwrap();
            let (_, sig) = rest.split_once('.').unwrap();
            let mut other = claims();
            other.scope = "admin".into();
            let tampered = format!("{h}.{}.{sig}", B64URL.encode(serde_json::to_vec(&other).unwrap()));
            assert_eq!(verify(&tampered, &keys, &all).unwrap_err(), TokenError::BadSignature, "{name} {alg:?}");
        }
    }

    #[test]
    fn keys_are_never_used_across_algorithm_families() {
        let all = Expect { algorithms: &Alg::ASYMMETRIC, ..expect() };
        let (p256, p256_key) = jose_key("p256");
        let (_, p384_key) = jose_key("p384");
        let (_, rsa_key) = jose_key("rsa");
        // An ES256 token naming the P-384 key's kid, or the RSA key's: no usable key of that kid.
        for kid in ["p384", "rsa"] {
            let token = forge_with(&p256, Algorithm::ES256, serde_json::json!({"alg": "ES256", "kid": kid}));
            let keys = vec![p256_key.clone(), p384_key.clone(), rsa_key.clone()];
            assert_eq!(verify(&token, &keys, &all).unwrap_err(), TokenError::UnknownKid(kid.into()));
        }
        // HMAC with a public key as the secret (algorithm confusion) is not an algorithm here.
        let rsa_jwk: Value = serde_json::from_str::<Value>(include_str!("testdata/jose_keys.json")).unwrap()["rsa"]["jwk"].clone();
        let secret = EncodingKey::from_secret(rsa_jwk["n"].as_str().unwrap().as_bytes());
        let token = forge_with(&secret, Algorithm::HS256, serde_json::json!({"alg": "HS256", "kid": "rsa"}));
        assert_eq!(verify(&token, &[rsa_key], &all).unwrap_err(), TokenError::Algorithm("HS256".into()));
    }
}
