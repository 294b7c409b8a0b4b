//! Minting and verification together: RFC 8037 vectors, the documented header and claims,
//! time, issuer, audience and revocation checks, hostile and malformed tokens, and the
//! identity-provider algorithms against fixed throw-away keys.

use super::*;
use std::collections::HashSet;

use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::Value;

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
    let sig = jsonwebtoken::crypto::sign(input.as_bytes(), &EncodingKey::from_ed_der(&key().to_der().unwrap()), Algorithm::EdDSA).unwrap();
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
    let fixtures: Value = serde_json::from_str(include_str!("../testdata/jose_keys.json")).unwrap();
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
    let rsa_jwk: Value = serde_json::from_str::<Value>(include_str!("../testdata/jose_keys.json")).unwrap()["rsa"]["jwk"].clone();
    let secret = EncodingKey::from_secret(rsa_jwk["n"].as_str().unwrap().as_bytes());
    let token = forge_with(&secret, Algorithm::HS256, serde_json::json!({"alg": "HS256", "kid": "rsa"}));
    assert_eq!(verify(&token, &[rsa_key], &all).unwrap_err(), TokenError::Algorithm("HS256".into()));
}
