//! Remote JWKS (`jwks_uri`) for `mode: "oauth"`: fetched on first use, cached for the
//! `Cache-Control: max-age` the server sends (default five minutes), and re-fetched early when a
//! token names a `kid` we do not know — at most once per [`REFETCH_INTERVAL`], so a stream of
//! forged kids cannot turn the server into a request amplifier. Keys are parsed by `crate::jwk`.
//!
//! The endpoint is remote and may be hostile or down: it is asked with the shared HTTP policy
//! (`net::Policy`: 5 s timeout, no redirects — a 3xx is a failed fetch), and its body is read
//! with `net::read_capped`, dropped past [`MAX_JWKS_BYTES`]. One fetch runs at a time and no
//! lock on the keys is held across it: while it runs, other requests use the cached keys (stale
//! ones too — an IdP outage does not lock everyone out), and only a request that has no keys at
//! all waits for it, at most [`FIRST_FETCH_WAIT`].

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::token::TrustedKey;

/// Minimum time between two fetches triggered by unknown kids.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(10);
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(300);
const MAX_MAX_AGE: Duration = Duration::from_secs(86_400);
/// Longest one fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest JWKS document read.
pub const MAX_JWKS_BYTES: usize = 256 * 1024;
/// How long a request with no cached keys waits for a fetch another request started.
pub const FIRST_FETCH_WAIT: Duration = Duration::from_millis(500);

pub struct JwksSource {
    pub uri: String,
    client: Result<reqwest::Client, String>,
    cache: Mutex<Cache>,
    /// Held for the duration of a fetch (single flight); never while `cache` is locked.
    fetching: tokio::sync::Mutex<()>,
    /// Bumped by every successful fetch: tokens verified under an older generation are
    /// verified again (a key may have left the set).
    generation: std::sync::atomic::AtomicU64,
}

#[derive(Default)]
struct Cache {
    keys: Vec<TrustedKey>,
    expires: Option<Instant>,
    last_fetch: Option<Instant>,
    /// Whether the last fetch succeeded (for `/readyz`).
    reachable: bool,
}

impl JwksSource {
    pub fn new(uri: String) -> Self {
        let client = crate::net::Policy::new(FETCH_TIMEOUT, crate::net::is_https(&uri)).client().map_err(|e| crate::net::describe(&e));
        JwksSource {
            uri,
            client,
            cache: Mutex::new(Cache::default()),
            fetching: tokio::sync::Mutex::new(()),
            generation: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The generation of the current key set (see the field).
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Whether the cached key set is still within its `max-age` (tokens verified with it may be
    /// trusted from the token cache only while it is).
    pub fn is_fresh(&self) -> bool {
        self.cache().expires.is_some_and(|t| Instant::now() < t)
    }

    fn cache(&self) -> MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the last fetch got a key set (false before the first): `/readyz` asks.
    pub fn reachable(&self) -> bool {
        self.cache().reachable
    }

    /// The cached keys, fetched again when the cache is stale.
    pub async fn keys(&self) -> Vec<TrustedKey> {
        let due =
            |c: &Cache| c.expires.is_none_or(|t| Instant::now() >= t) && c.last_fetch.is_none_or(|t| t.elapsed() >= Duration::from_secs(1));
        self.fetch_if(due).await;
        self.cache().keys.clone()
    }

    /// Fetch again because a token names an unknown kid (rate-limited).
    pub async fn refresh(&self) -> Vec<TrustedKey> {
        self.fetch_if(|c: &Cache| c.last_fetch.is_none_or(|t| t.elapsed() >= REFETCH_INTERVAL)).await;
        self.cache().keys.clone()
    }

    /// Fetch when `due` says so and no other fetch is running.
    async fn fetch_if(&self, due: impl Fn(&Cache) -> bool) {
        if !due(&self.cache()) {
            return;
        }
        let Ok(_flight) = self.fetching.try_lock() else {
            // Another request is fetching: use what is cached, or wait a little when nothing is.
            if self.cache().keys.is_empty() {
                let _ = tokio::time::timeout(FIRST_FETCH_WAIT, self.fetching.lock()).await;
            }
            return;
        };
        // Checked again: a fetch may have finished between the first look and the flight lock.
        {
            let mut cache = self.cache();
            if !due(&cache) {
                return;
            }
            cache.last_fetch = Some(Instant::now());
        }
        let fetched = self.fetch().await;
        crate::server::metrics::jwks_fetch(fetched.is_ok());
        let mut cache = self.cache();
        cache.reachable = fetched.is_ok();
        match fetched {
            Ok((keys, max_age)) => {
                cache.keys = keys;
                cache.expires = Some(Instant::now() + max_age);
                self.generation.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
            }
            Err(e) => {
                // Keep serving the keys we had; try again after the rate limit.
                tracing::warn!(
                    "warning: cannot fetch JWKS from {}: {}",
                    crate::validate::printable(&crate::net::redact_url(&self.uri)),
                    crate::validate::printable(&format!("{e:#}"))
                );
                cache.expires = Some(Instant::now() + REFETCH_INTERVAL);
            }
        }
    }

    async fn fetch(&self) -> anyhow::Result<(Vec<TrustedKey>, Duration)> {
        let client = self.client.as_ref().map_err(|e| anyhow::anyhow!("{e}"))?;
        let response = client
            .get(&self.uri)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| anyhow::anyhow!(crate::net::describe(&e)))?;
        if !response.status().is_success() {
            anyhow::bail!("HTTP {}", response.status());
        }
        let max_age = response.headers().get("cache-control").and_then(|v| v.to_str().ok()).map(parse_max_age).unwrap_or(DEFAULT_MAX_AGE);
        // Chunk by chunk: an endless or huge body is dropped at the cap, never held whole.
        let body = crate::net::read_capped(response, MAX_JWKS_BYTES).await?;
        let doc: Value = serde_json::from_slice(&body)?;
        Ok((parse_jwks(&doc), max_age))
    }
}

/// `max-age=N` (clamped to a day); `no-store`/`no-cache` mean "fetch again next time".
pub fn parse_max_age(header: &str) -> Duration {
    let mut age = DEFAULT_MAX_AGE;
    for directive in header.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return Duration::ZERO;
        }
        if let Some(n) = lower.strip_prefix("max-age=").and_then(|n| n.trim_matches('"').parse::<u64>().ok()) {
            age = Duration::from_secs(n).min(MAX_MAX_AGE);
        }
    }
    age
}

/// The signing keys of a JWKS document (see `crate::jwk`).
pub fn parse_jwks(doc: &Value) -> Vec<TrustedKey> {
    crate::jwk::parse_set(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_parsing() {
        assert_eq!(parse_max_age("public, max-age=60"), Duration::from_secs(60));
        assert_eq!(parse_max_age("no-store"), Duration::ZERO);
        assert_eq!(parse_max_age("max-age=99999999"), MAX_MAX_AGE);
        assert_eq!(parse_max_age("private"), DEFAULT_MAX_AGE);
    }
}
