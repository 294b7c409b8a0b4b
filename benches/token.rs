//! Criterion benchmarks of the token hot paths: minting one token with [`Minter::mint`] and
//! verifying one with [`token::verify`], next to bare `ed25519_dalek` sign and verify of the same
//! signing input, so the JWT overhead (JSON, base64, header checks) shows against the curve
//! arithmetic, and a hit in the server's verified-token cache (what a client reusing its token
//! costs `serve`). Run with `cargo bench --bench token`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use ed25519_dalek::{Signer, SigningKey};
use mcpgen::keys::PrivateKey;
use mcpgen::server::token_cache::{CachedCaller, TokenCache};
use mcpgen::token::{self, Claims, Expect, Minter, TrustedKey};

/// A fixed key (RFC 8037 A.1's seed would do as well; any fixed bytes keep runs comparable).
const SEED: [u8; 32] = [7; 32];
const NOW: i64 = 1_800_000_000;
const AUDIENCE: &str = "http://127.0.0.1:8000/mcp";

fn claims() -> Claims {
    Claims {
        iss: "oemcp-local".into(),
        sub: "ci-bot".into(),
        client_id: "ci-bot".into(),
        scope: "orders.read products.read".into(),
        aud: AUDIENCE.into(),
        iat: NOW,
        nbf: NOW,
        exp: NOW + 365 * 86_400,
        jti: token::new_jti(),
    }
}

fn bench_tokens(c: &mut Criterion) {
    let key = PrivateKey::from_seed(&SEED);
    let minter = Minter::new(&key).expect("minter");
    let claims = claims();
    let jwt = minter.mint(&claims).expect("mint");
    let keys = [TrustedKey::new(key.public())];
    // A realistic revocation list: a few hundred revoked jtis.
    let revoked: std::collections::HashSet<String> = (0..500).map(|_| token::new_jti()).collect();
    let expect = Expect {
        issuer: Some("oemcp-local"),
        audience: Some(AUDIENCE),
        now: NOW + 10,
        leeway: 60,
        revoked: Some(&revoked),
        ..Default::default()
    };
    token::verify(&jwt, &keys, &expect).expect("the benchmark token verifies");

    let mut group = c.benchmark_group("token");
    group.bench_function("mint (Minter::mint)", |b| b.iter(|| minter.mint(black_box(&claims)).unwrap()));
    group.bench_function("verify (token::verify)", |b| b.iter(|| token::verify(black_box(&jwt), &keys, &expect).unwrap()));

    // The same signing input, signed and verified by ed25519-dalek directly.
    let dalek = SigningKey::from_bytes(&SEED);
    let verifying = dalek.verifying_key();
    let (signing_input, _) = jwt.rsplit_once('.').unwrap();
    let signature = dalek.sign(signing_input.as_bytes());
    group.bench_function("bare ed25519-dalek sign", |b| b.iter(|| dalek.sign(black_box(signing_input.as_bytes()))));
    group.bench_function("bare ed25519-dalek verify_strict", |b| {
        b.iter(|| verifying.verify_strict(black_box(signing_input.as_bytes()), black_box(&signature)).unwrap())
    });
    group.bench_function("bare ed25519-dalek verify", |b| {
        b.iter(|| ed25519_dalek::Verifier::verify(&verifying, black_box(signing_input.as_bytes()), black_box(&signature)).unwrap())
    });

    // What `serve` pays for a client that reuses its token: a hit in the verified-token cache.
    let cache = TokenCache::default();
    cache.put(
        &jwt,
        CachedCaller { client_id: "ci-bot".into(), scopes: vec!["orders.read".into()], exp: NOW + 86_400, nbf: NOW, jwks: None },
    );
    group.bench_function("serve's verified-token cache hit", |b| b.iter(|| cache.get(black_box(&jwt))));
    group.finish();
}

criterion_group!(benches, bench_tokens);
criterion_main!(benches);
