//! Remote JWKS (`jwks_uri`) for `mode: "oauth"`: fetched on first use, cached for the
//! `Cache-Control: max-age` the server sends (default five minutes), and re-fetched early when a
//! token names a `kid` we do not know — at most once per [`REFETCH_INTERVAL`], so a stream of
//! forged kids cannot turn the server into a request amplifier. Keys are parsed by `crate::jwk`.

use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::Mutex;

use crate::token::TrustedKey;

/// Minimum time between two fetches triggered by unknown kids.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(10);
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(300);
const MAX_MAX_AGE: Duration = Duration::from_secs(86_400);
const MAX_JWKS_BYTES: usize = 256 * 1024;

pub struct JwksSource {
    pub uri: String,
    client: reqwest::Client,
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    keys: Vec<TrustedKey>,
    expires: Option<Instant>,
    last_fetch: Option<Instant>,
}

impl JwksSource {
    pub fn new(uri: String) -> Self {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap_or_default();
        JwksSource { uri, client, cache: Mutex::new(Cache::default()) }
    }

    /// The cached keys, fetched again when the cache is stale.
    pub async fn keys(&self) -> Vec<TrustedKey> {
        let mut cache = self.cache.lock().await;
        let stale = cache.expires.is_none_or(|t| Instant::now() >= t);
        if stale && cache.last_fetch.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
            self.fetch_into(&mut cache).await;
        }
        cache.keys.clone()
    }

    /// Fetch again because a token names an unknown kid (rate-limited).
    pub async fn refresh(&self) -> Vec<TrustedKey> {
        let mut cache = self.cache.lock().await;
        if cache.last_fetch.is_none_or(|t| t.elapsed() >= REFETCH_INTERVAL) {
            self.fetch_into(&mut cache).await;
        }
        cache.keys.clone()
    }

    async fn fetch_into(&self, cache: &mut Cache) {
        cache.last_fetch = Some(Instant::now());
        match self.fetch().await {
            Ok((keys, max_age)) => {
                cache.keys = keys;
                cache.expires = Some(Instant::now() + max_age);
            }
            Err(e) => {
                // Keep serving the keys we had; try again after the rate limit.
                tracing::warn!("warning: cannot fetch JWKS from {}: {e}", crate::net::redact_url(&self.uri));
                cache.expires = Some(Instant::now() + REFETCH_INTERVAL);
            }
        }
    }

    async fn fetch(&self) -> anyhow::Result<(Vec<TrustedKey>, Duration)> {
        let response = self.client.get(&self.uri).header("accept", "application/json").send().await?;
        if !response.status().is_success() {
            anyhow::bail!("HTTP {}", response.status());
        }
        let max_age = response.headers().get("cache-control").and_then(|v| v.to_str().ok()).map(parse_max_age).unwrap_or(DEFAULT_MAX_AGE);
        let body = response.bytes().await?;
        if body.len() > MAX_JWKS_BYTES {
            anyhow::bail!("JWKS larger than {MAX_JWKS_BYTES} bytes");
        }
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
