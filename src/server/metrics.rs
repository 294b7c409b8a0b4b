//! The server's metrics, rendered in the Prometheus text exposition format (0.0.4) by
//! `GET /metrics` when `server.metrics.enabled` is on. Counters are process-wide atomics (one
//! server per process); nothing is recorded while metrics are off.
//!
//! Families (each can be left out with `server.metrics.expose`):
//! - `requests`: `mcpgen_http_requests_total{method,rpc,status}`
//! - `latency`: `mcpgen_http_request_duration_seconds` (histogram)
//! - `auth_failures`: `mcpgen_auth_failures_total{reason}`
//! - `rate_limited`: `mcpgen_rate_limited_total`
//! - `tool_calls`: `mcpgen_tool_calls_total{tool,outcome}`
//! - `token_cache`: `mcpgen_token_cache_hits_total`, `mcpgen_token_cache_misses_total`
//! - `jwks_fetches`: `mcpgen_jwks_fetches_total{outcome}`
//! - `sessions`: `mcpgen_sessions_created_total`, `mcpgen_sessions_ended_total` (session ids
//!   are signed, not stored: what is open across replicas is the sum of created minus ended,
//!   less those past their 24 h lifetime)
//!
//! Label values never come from a client unchecked: the HTTP and JSON-RPC methods are mapped
//! onto fixed sets (anything else is `other`), statuses are numbers, refusal reasons are the
//! server's own codes, and tool names are counted only for tools of the loaded spec.
//!
//! Hand-written rather than the `prometheus` or `metrics` crates: a dozen counters and one
//! histogram need no registry, and the text format is a few lines.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// Every family, as `server.metrics.expose` names them.
pub const FAMILIES: [&str; 8] =
    ["requests", "latency", "auth_failures", "rate_limited", "tool_calls", "token_cache", "jwks_fetches", "sessions"];

/// JSON-RPC methods counted by name; any other is `other`, a request without one `-`.
const RPC_METHODS: [&str; 9] = [
    "initialize",
    "notifications/initialized",
    "ping",
    "tools/list",
    "tools/call",
    "server/discover",
    "notifications/cancelled",
    "prompts/list",
    "resources/list",
];
const HTTP_METHODS: [&str; 5] = ["GET", "POST", "DELETE", "HEAD", "OPTIONS"];
/// Refusal reasons the server gives (the part of `Refused` before `:`).
const REASONS: [&str; 4] = ["invalid_token", "insufficient_scope", "missing_token", "origin_not_allowed"];
/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

static ON: AtomicBool = AtomicBool::new(false);
static METRICS: std::sync::LazyLock<Metrics> = std::sync::LazyLock::new(Metrics::default);

#[derive(Default)]
struct Metrics {
    requests: RwLock<HashMap<(&'static str, &'static str, u16), AtomicU64>>,
    latency_buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
    auth_failures: [AtomicU64; REASONS.len() + 1],
    rate_limited: AtomicU64,
    tool_calls: RwLock<HashMap<(String, bool), AtomicU64>>,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    jwks_ok: AtomicU64,
    jwks_failed: AtomicU64,
    sessions_created: AtomicU64,
    sessions_ended: AtomicU64,
}

/// Turn recording on or off (from the configuration, at start and at every reload).
pub fn set_enabled(on: bool) {
    ON.store(on, Ordering::Relaxed);
}

fn on() -> bool {
    ON.load(Ordering::Relaxed)
}

fn bounded(value: &str, set: &[&'static str]) -> &'static str {
    set.iter().find(|m| **m == value).copied().unwrap_or("other")
}

/// One request: its HTTP method, JSON-RPC method (if any), status and latency, and the reason
/// it was refused (if it was).
pub fn request(http_method: &str, rpc: Option<&str>, status: u16, elapsed: Duration, refused: Option<&str>) {
    if !on() {
        return;
    }
    let m = &*METRICS;
    let rpc = match rpc {
        None | Some("-") => "-",
        Some(name) => bounded(name, &RPC_METHODS),
        // (a batch is logged under its last method)
    };
    let status = if (100..=599).contains(&status) { status } else { 0 };
    let key = (bounded(http_method, &HTTP_METHODS), rpc, status);
    let counted = m.requests.read().ok().and_then(|map| map.get(&key).map(|c| c.fetch_add(1, Ordering::Relaxed))).is_some();
    if !counted && let Ok(mut map) = m.requests.write() {
        map.entry(key).or_default().fetch_add(1, Ordering::Relaxed);
    }
    let seconds = elapsed.as_secs_f64();
    if let Some(i) = BUCKETS.iter().position(|b| seconds <= *b) {
        m.latency_buckets[i].fetch_add(1, Ordering::Relaxed);
    }
    m.latency_count.fetch_add(1, Ordering::Relaxed);
    m.latency_sum_micros.fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    if let Some(why) = refused {
        let code = why.split(':').next().unwrap_or("").trim();
        if code == "rate_limited" {
            m.rate_limited.fetch_add(1, Ordering::Relaxed);
        } else {
            let i = REASONS.iter().position(|r| *r == code).unwrap_or(REASONS.len());
            m.auth_failures[i].fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One `tools/call` of a tool of the loaded spec (callers check that first: the label set is
/// the spec's tools), and whether it succeeded.
pub fn tool_call(tool: &str, ok: bool) {
    if !on() {
        return;
    }
    let m = &*METRICS;
    let counted =
        m.tool_calls.read().ok().and_then(|map| map.get(&(tool.to_owned(), ok)).map(|c| c.fetch_add(1, Ordering::Relaxed))).is_some();
    if !counted && let Ok(mut map) = m.tool_calls.write() {
        map.entry((tool.to_owned(), ok)).or_default().fetch_add(1, Ordering::Relaxed);
    }
}

/// A token looked up in the token cache.
pub fn token_cache(hit: bool) {
    if on() {
        let m = &*METRICS;
        if hit { &m.cache_hits } else { &m.cache_misses }.fetch_add(1, Ordering::Relaxed);
    }
}

/// A JWKS fetch and whether it succeeded.
pub fn jwks_fetch(ok: bool) {
    if on() {
        let m = &*METRICS;
        if ok { &m.jwks_ok } else { &m.jwks_failed }.fetch_add(1, Ordering::Relaxed);
    }
}

/// A session created (`initialize` answered with an id) or ended (`DELETE` answered 204).
pub fn session(created: bool) {
    if on() {
        let m = &*METRICS;
        if created { &m.sessions_created } else { &m.sessions_ended }.fetch_add(1, Ordering::Relaxed);
    }
}

/// A label value in the exposition format: backslash, quote and newline escaped.
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The text exposition of the families in `expose`.
pub fn render(expose: &[String]) -> String {
    let m = &*METRICS;
    let shown = |family: &str| expose.iter().any(|f| f == family);
    let mut out = String::new();
    let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
    if shown("requests") {
        out.push_str("# HELP mcpgen_http_requests_total HTTP requests by method, JSON-RPC method and status.\n");
        out.push_str("# TYPE mcpgen_http_requests_total counter\n");
        let map = m.requests.read().unwrap_or_else(|p| p.into_inner());
        let mut rows: Vec<_> = map.iter().map(|(k, v)| (*k, read(v))).collect();
        rows.sort();
        for ((method, rpc, status), n) in rows {
            let _ = writeln!(out, "mcpgen_http_requests_total{{method=\"{method}\",rpc=\"{}\",status=\"{status}\"}} {n}", label(rpc));
        }
    }
    if shown("latency") {
        out.push_str("# HELP mcpgen_http_request_duration_seconds Time from request head to response head.\n");
        out.push_str("# TYPE mcpgen_http_request_duration_seconds histogram\n");
        let mut cumulative = 0;
        for (i, bound) in BUCKETS.iter().enumerate() {
            cumulative += read(&m.latency_buckets[i]);
            let _ = writeln!(out, "mcpgen_http_request_duration_seconds_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let count = read(&m.latency_count);
        let _ = writeln!(out, "mcpgen_http_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "mcpgen_http_request_duration_seconds_sum {}", read(&m.latency_sum_micros) as f64 / 1e6);
        let _ = writeln!(out, "mcpgen_http_request_duration_seconds_count {count}");
    }
    if shown("auth_failures") {
        out.push_str("# HELP mcpgen_auth_failures_total Requests refused (401/403) by reason.\n");
        out.push_str("# TYPE mcpgen_auth_failures_total counter\n");
        for (i, reason) in REASONS.iter().chain(["other"].iter()).enumerate() {
            let _ = writeln!(out, "mcpgen_auth_failures_total{{reason=\"{reason}\"}} {}", read(&m.auth_failures[i]));
        }
    }
    if shown("rate_limited") {
        out.push_str("# HELP mcpgen_rate_limited_total Requests refused with 429 by the per-client rate limit.\n");
        out.push_str("# TYPE mcpgen_rate_limited_total counter\n");
        let _ = writeln!(out, "mcpgen_rate_limited_total {}", read(&m.rate_limited));
    }
    if shown("tool_calls") {
        out.push_str("# HELP mcpgen_tool_calls_total tools/call by tool and outcome (error: the result has isError).\n");
        out.push_str("# TYPE mcpgen_tool_calls_total counter\n");
        let map = m.tool_calls.read().unwrap_or_else(|p| p.into_inner());
        let mut rows: Vec<_> = map.iter().map(|(k, v)| (k.clone(), read(v))).collect();
        rows.sort();
        for ((tool, ok), n) in rows {
            let _ =
                writeln!(out, "mcpgen_tool_calls_total{{tool=\"{}\",outcome=\"{}\"}} {n}", label(&tool), if ok { "ok" } else { "error" });
        }
    }
    if shown("token_cache") {
        out.push_str("# HELP mcpgen_token_cache_hits_total Tokens found verified in the token cache.\n");
        out.push_str("# TYPE mcpgen_token_cache_hits_total counter\n");
        let _ = writeln!(out, "mcpgen_token_cache_hits_total {}", read(&m.cache_hits));
        out.push_str("# HELP mcpgen_token_cache_misses_total Tokens verified in full (not in the token cache).\n");
        out.push_str("# TYPE mcpgen_token_cache_misses_total counter\n");
        let _ = writeln!(out, "mcpgen_token_cache_misses_total {}", read(&m.cache_misses));
    }
    if shown("jwks_fetches") {
        out.push_str("# HELP mcpgen_jwks_fetches_total Fetches of the JWKS by outcome.\n");
        out.push_str("# TYPE mcpgen_jwks_fetches_total counter\n");
        let _ = writeln!(out, "mcpgen_jwks_fetches_total{{outcome=\"ok\"}} {}", read(&m.jwks_ok));
        let _ = writeln!(out, "mcpgen_jwks_fetches_total{{outcome=\"error\"}} {}", read(&m.jwks_failed));
    }
    if shown("sessions") {
        out.push_str("# HELP mcpgen_sessions_created_total Sessions this process opened (initialize).\n");
        out.push_str("# TYPE mcpgen_sessions_created_total counter\n");
        let _ = writeln!(out, "mcpgen_sessions_created_total {}", read(&m.sessions_created));
        out.push_str("# HELP mcpgen_sessions_ended_total Sessions ended here (DELETE).\n");
        out.push_str("# TYPE mcpgen_sessions_ended_total counter\n");
        let _ = writeln!(out, "mcpgen_sessions_ended_total {}", read(&m.sessions_ended));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_bounded_and_escaped() {
        assert_eq!(bounded("tools/call", &RPC_METHODS), "tools/call");
        assert_eq!(bounded("evil\"}\n", &RPC_METHODS), "other");
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
