//! Criterion benchmarks of the signed session ids `serve` issues and checks (issue 11): what a
//! handshake-era request pays to have its `Mcp-Session-Id` verified by any replica, against one
//! key and against two (right after a key rotation, when the previous key is still accepted and
//! a session issued under it is checked against the new one first). Run with
//! `cargo bench --bench session`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use mcpgen::server::sessions::{SessionKey, Sessions};

fn bench(c: &mut Criterion) {
    let sessions = Sessions::default();
    let (current, previous) = (SessionKey::derive(b"current key material"), SessionKey::derive(b"previous key material"));
    let id = sessions.issue(&current, "2025-11-25", "ci-bot");
    let old = sessions.issue(&previous, "2025-11-25", "ci-bot");
    c.bench_function("session/issue", |b| b.iter(|| sessions.issue(black_box(&current), "2025-11-25", black_box("ci-bot"))));
    c.bench_function("session/check", |b| b.iter(|| sessions.check(black_box(std::slice::from_ref(&current)), black_box(&id), "ci-bot")));
    let both = [current.clone(), previous.clone()];
    c.bench_function("session/check_previous_key", |b| b.iter(|| sessions.check(black_box(&both), black_box(&old), "ci-bot")));
    c.bench_function("session/refuse_forged", |b| {
        b.iter(|| sessions.check(black_box(&both), black_box("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), "ci-bot"))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
