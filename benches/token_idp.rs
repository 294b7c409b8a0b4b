//! Criterion benchmark of what `serve` pays per request in `mode: "oauth"` when the token cache
//! cannot help (JWKS-verified tokens are not cached): [`token::verify`] of an identity
//! provider's access token signed RS256 (RSA 2048), PS256, ES256 (P-256) and ES384 (P-384), next
//! to the profile's own EdDSA token. The keys are the fixed throw-away fixtures of
//! `src/testdata/jose_keys.json` (the ones `token.rs`'s unit tests use), the JWKS parsed by
//! `jwk::parse_set` as the server parses a fetched one, and all four keys plus the Ed25519 one
//! in the set, so key selection by `kid` is part of the measure. Run with
//! `cargo bench --bench token_idp`.

use std::hint::black_box;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{Algorithm, EncodingKey};
use mcpgen::jwk::Alg;
use mcpgen::keys::PrivateKey;
use mcpgen::token::{self, Expect, TrustedKey};
use serde_json::{Value, json};

const NOW: i64 = 1_800_000_000;
const AUDIENCE: &str = "http://127.0.0.1:8000/mcp";
const ISSUER: &str = "http://127.0.0.1:9000";

/// RFC 9068-shaped access-token claims, as oidc-provider issues them.
fn claims() -> Value {
    json!({
        "iss": ISSUER, "sub": "svc-robot", "client_id": "svc-robot", "aud": AUDIENCE,
        "scope": "orders.read products.read", "iat": NOW, "exp": NOW + 600, "jti": token::new_jti(),
    })
}

fn forge(key: &EncodingKey, alg: Algorithm, kid: &str) -> String {
    let header = json!({"alg": format!("{alg:?}"), "typ": "at+jwt", "kid": kid});
    let input = format!("{}.{}", B64URL.encode(header.to_string()), B64URL.encode(claims().to_string()));
    format!("{input}.{}", jsonwebtoken::crypto::sign(input.as_bytes(), key, alg).expect("sign"))
}

fn bench_idp_tokens(c: &mut Criterion) {
    let fixtures: Value = serde_json::from_str(include_str!("../src/testdata/jose_keys.json")).expect("fixtures");
    let encoding = |name: &str| {
        let pem = fixtures[name]["private_pem"].as_str().expect("pem").as_bytes();
        if name == "rsa" { EncodingKey::from_rsa_pem(pem) } else { EncodingKey::from_ec_pem(pem) }.expect("fixture key")
    };
    let ed = PrivateKey::from_seed(&[7; 32]);
    let mut jwks: Vec<Value> = ["rsa", "p256", "p384"]
        .iter()
        .map(|name| {
            let mut jwk = fixtures[*name]["jwk"].clone();
            jwk["kid"] = json!(name);
            jwk
        })
        .collect();
    jwks.push(ed.public().jwk());
    let keys: Vec<TrustedKey> = mcpgen::jwk::parse_set(&json!({"keys": jwks}));
    assert_eq!(keys.len(), 4, "every fixture key parses");

    let ed_kid = ed.public().thumbprint();
    let ed_der = ed.to_der().expect("der");
    let cases = [
        ("RS256", forge(&encoding("rsa"), Algorithm::RS256, "rsa")),
        ("PS256", forge(&encoding("rsa"), Algorithm::PS256, "rsa")),
        ("ES256", forge(&encoding("p256"), Algorithm::ES256, "p256")),
        ("ES384", forge(&encoding("p384"), Algorithm::ES384, "p384")),
        ("EdDSA", forge(&EncodingKey::from_ed_der(&ed_der), Algorithm::EdDSA, &ed_kid)),
    ];
    let expect =
        Expect { issuer: Some(ISSUER), audience: Some(AUDIENCE), now: NOW + 10, leeway: 60, revoked: None, algorithms: &Alg::ASYMMETRIC };
    let mut group = c.benchmark_group("token::verify (oauth mode)");
    for (name, jwt) in &cases {
        token::verify(jwt, &keys, &expect).unwrap_or_else(|e| panic!("the {name} benchmark token verifies: {e}"));
        group.bench_function(*name, |b| b.iter(|| token::verify(black_box(jwt), &keys, &expect).unwrap()));
    }
    group.finish();
}

criterion_group!(benches, bench_idp_tokens);
criterion_main!(benches);
