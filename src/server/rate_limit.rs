//! Requests per client (`security.rate_limit`): a token bucket per `client_id` — per client
//! address for callers without a token — refilled at `requests_per_minute` and holding at most
//! `burst` requests, with other limits for named clients in `overrides`. A request past the
//! limit gets 429 with `Retry-After` (whole seconds until the bucket holds a request again);
//! other clients are not affected. Checked right after authentication, so the key is the
//! verified identity, never a name the caller merely claims.
//!
//! The buckets live in `watch::Shared` and survive reloads (a new limit applies to the next
//! request). At most [`MAX_BUCKETS`] are kept: past that, buckets that have refilled completely
//! (clients idle long enough to hold a full burst) are dropped, which changes nothing for them.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;

use crate::config::RateLimit;
use crate::server::access_log::{Refused, RefusedClient};
use crate::server::auth::Caller;

/// Buckets kept at most.
pub const MAX_BUCKETS: usize = 100_000;

tokio::task_local! {
    /// The client address of the request being handled, set by the access-log layer.
    pub static PEER: Option<IpAddr>;
}

/// One limit: tokens per second and bucket size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_minute: f64,
    pub burst: f64,
}

impl Rate {
    fn new(per_minute: f64, burst: Option<f64>) -> Result<Rate, String> {
        if !per_minute.is_finite() || per_minute <= 0.0 || per_minute > 1e9 {
            return Err(format!(".requests_per_minute: {per_minute} must be a number above 0"));
        }
        let burst = burst.unwrap_or((per_minute / 60.0).ceil());
        if !burst.is_finite() || !(1.0..=1e9).contains(&burst) {
            return Err(format!(".burst: {burst} must be a number of at least 1"));
        }
        Ok(Rate { per_minute, burst })
    }
}

/// `security.rate_limit`, checked.
#[derive(Debug, Clone)]
pub struct Limits {
    pub default: Rate,
    pub overrides: HashMap<String, Rate>,
}

impl Limits {
    /// Check the configured numbers; the error names the key (`.burst: …`).
    pub fn new(config: &RateLimit) -> Result<Limits, String> {
        let default = Rate::new(config.requests_per_minute, config.burst)?;
        let mut overrides = HashMap::new();
        for (client, o) in &config.overrides {
            let rate =
                Rate::new(o.requests_per_minute, o.burst).map_err(|e| format!(".overrides.{}{e}", crate::validate::printable(client)))?;
            overrides.insert(client.clone(), rate);
        }
        Ok(Limits { default, overrides })
    }

    fn for_client(&self, client_id: Option<&str>) -> Rate {
        client_id.and_then(|c| self.overrides.get(c)).copied().unwrap_or(self.default)
    }
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The buckets of every client.
#[derive(Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

/// The bucket every new client shares while [`MAX_BUCKETS`] clients are being held back.
const OVERFLOW: &str = "\0overflow";

impl RateLimiter {
    /// Take one request from `key`'s bucket; `Err(wait)` when it is empty.
    pub fn take(&self, key: &str, rate: Rate, now: Instant) -> Result<(), Duration> {
        let per_second = rate.per_minute / 60.0;
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let mut key = key;
        if !buckets.contains_key(key) && buckets.len() >= MAX_BUCKETS {
            // Drop the buckets that are full again: their clients lose nothing.
            buckets.retain(|_, b| b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * per_second < rate.burst);
            if buckets.len() >= MAX_BUCKETS {
                // Still full of clients being held back: a new one shares one overflow bucket
                // rather than resetting theirs (which would lift every limit at once).
                key = OVERFLOW;
            }
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket { tokens: rate.burst, at: now });
        bucket.tokens = (bucket.tokens + now.saturating_duration_since(bucket.at).as_secs_f64() * per_second).min(rate.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / per_second))
        }
    }
}

/// Let `caller` through, or answer 429 with `Retry-After`. (The refusal is a ready response,
/// as for the router's other early returns; boxing it would cost an allocation per refusal.)
#[allow(clippy::result_large_err)]
pub fn admit(limiter: &RateLimiter, limits: Option<&Limits>, caller: &Caller) -> Result<(), Response> {
    let Some(limits) = limits else { return Ok(()) };
    let (key, rate) = if caller.authenticated {
        (caller.client_id.clone(), limits.for_client(Some(&caller.client_id)))
    } else {
        // An IPv6 client holds a whole /64: its addresses share one bucket.
        let ip = PEER.try_with(|p| *p).ok().flatten().map(|ip| match ip {
            std::net::IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
            other => other.to_canonical().to_string(),
        });
        (format!("-@{}", ip.unwrap_or_default()), limits.for_client(None))
    };
    let Err(wait) = limiter.take(&key, rate, Instant::now()) else { return Ok(()) };
    let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": {"code": -32000, "message": format!("rate limit exceeded; retry after {seconds} s")},
    });
    let mut response = crate::server::router::json_response(StatusCode::TOO_MANY_REQUESTS, &body);
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response.extensions_mut().insert(RefusedClient(caller.client_id.clone()));
    response.extensions_mut().insert(Refused(format!("rate_limited: {} requests per minute, burst {}", rate.per_minute, rate.burst)));
    Err(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_refills_at_the_rate_and_keys_are_separate() {
        let limiter = RateLimiter::default();
        let rate = Rate { per_minute: 60.0, burst: 2.0 };
        let t0 = Instant::now();
        assert!(limiter.take("a", rate, t0).is_ok());
        assert!(limiter.take("a", rate, t0).is_ok());
        let wait = limiter.take("a", rate, t0).unwrap_err();
        assert!(wait > Duration::from_millis(900) && wait <= Duration::from_secs(1), "{wait:?}");
        assert!(limiter.take("b", rate, t0).is_ok(), "another client is not affected");
        assert!(limiter.take("a", rate, t0 + Duration::from_secs(1)).is_ok(), "refilled after a second");
    }

    #[test]
    fn a_flood_of_new_clients_shares_one_bucket_and_resets_no_one() {
        let limiter = RateLimiter::default();
        let rate = Rate { per_minute: 60.0, burst: 1.0 };
        let t0 = Instant::now();
        // Every bucket held back (empty), the victim's among them.
        for i in 0..MAX_BUCKETS {
            assert!(limiter.take(&i.to_string(), rate, t0).is_ok());
        }
        assert!(limiter.take("0", rate, t0).is_err(), "client 0 is held back");
        assert!(limiter.take("new-1", rate, t0).is_ok(), "the first newcomer gets the overflow bucket's token");
        assert!(limiter.take("new-2", rate, t0).is_err(), "the next shares it");
        assert!(limiter.take("0", rate, t0).is_err(), "client 0 is still held back: nothing was reset");
        assert_eq!(limiter.buckets.lock().unwrap().len(), MAX_BUCKETS + 1);
    }

    #[test]
    fn limits_are_checked() {
        let cfg = |rpm: f64, burst: Option<f64>| RateLimit { requests_per_minute: rpm, burst, overrides: Default::default() };
        assert!(Limits::new(&cfg(0.0, None)).unwrap_err().contains("requests_per_minute"));
        assert!(Limits::new(&cfg(f64::NAN, None)).is_err());
        assert!(Limits::new(&cfg(60.0, Some(0.5))).unwrap_err().contains("burst"));
        assert_eq!(Limits::new(&cfg(600.0, None)).unwrap().default.burst, 10.0);
    }
}
