//! What authenticating one request costs the server: a full `mcpgen::token::verify` (size
//! check, base64 and JSON of header and claims, header policy, kid lookup, `verify_strict`,
//! claim checks) against the bare Ed25519 signature check it is built on, and a hit in the
//! server's verified-token cache, which is what a client reusing its token pays.
//!
//! `cargo bench --bench auth`

use std::collections::HashSet;
use std::hint::black_box;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use criterion::{Criterion, criterion_group, criterion_main};
use ed25519_dalek::{Signature, SigningKey};
use mcpgen::keys::PrivateKey;
use mcpgen::mcp::live::{CachedCaller, TokenCache};
use mcpgen::token::{self, Claims, Expect, Minter, TrustedKey};

const SEED: [u8; 32] = [7; 32];
const NOW: i64 = 1_800_000_000;
const AUD: &str = "http://127.0.0.1:8000/mcp";

fn claims() -> Claims {
    Claims {
        iss: "oemcp-local".into(),
        sub: "svc-bench".into(),
        client_id: "svc-bench".into(),
        scope: "orders.read products.read".into(),
        aud: AUD.into(),
        iat: NOW,
        nbf: NOW,
        exp: NOW + 365 * 86_400,
        jti: token::new_jti(),
    }
}

fn bench_auth(c: &mut Criterion) {
    let private = PrivateKey::from_seed(&SEED);
    let jwt = Minter::new(&private).expect("minter").mint(&claims()).expect("mint");
    let keys = vec![TrustedKey::new(private.public())];
    // A realistic revocation list: a few hundred revoked jtis.
    let revoked: HashSet<String> = (0..500).map(|_| token::new_jti()).collect();
    let expect = Expect { issuer: Some("oemcp-local"), audience: Some(AUD), now: NOW + 10, leeway: 60, revoked: Some(&revoked) };
    token::verify(&jwt, &keys, &expect).expect("the benchmark token verifies");

    let (signing_input, signature_b64) = jwt.rsplit_once('.').unwrap();
    let signature = Signature::from_slice(&B64URL.decode(signature_b64).unwrap()).unwrap();
    let verifying = SigningKey::from_bytes(&SEED).verifying_key();
    verifying.verify_strict(signing_input.as_bytes(), &signature).expect("bare signature verifies");

    let mut group = c.benchmark_group("auth");
    group.bench_function("token::verify (full)", |b| b.iter(|| token::verify(black_box(&jwt), &keys, &expect).unwrap()));
    group.bench_function("ed25519 verify_strict (bare)", |b| {
        b.iter(|| verifying.verify_strict(black_box(signing_input.as_bytes()), black_box(&signature)).unwrap())
    });
    group.bench_function("ed25519 verify (bare, non-strict)", |b| {
        use ed25519_dalek::Verifier;
        b.iter(|| verifying.verify(black_box(signing_input.as_bytes()), black_box(&signature)).unwrap())
    });

    let cache = TokenCache::default();
    let cached = CachedCaller {
        client_id: "svc-bench".into(),
        scopes: vec!["orders.read".into(), "products.read".into()],
        exp: NOW + 86_400,
        nbf: NOW,
    };
    cache.put(&jwt, cached);
    group.bench_function("verified-token cache hit", |b| b.iter(|| cache.get(black_box(&jwt))));
    group.finish();
}

criterion_group!(benches, bench_auth);
criterion_main!(benches);
