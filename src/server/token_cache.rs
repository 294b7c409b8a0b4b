//! Verified tokens, so a client that sends the same token on every request pays for one
//! signature check per snapshot. A token verified by a static key is kept until it expires (the
//! keys change with the profile's files, which build a new snapshot and so an empty cache); one
//! verified by a JWKS key only while the key set it was checked against is the current one,
//! while that set is within its `max-age`, and for at most [`JWKS_VERIFIED_SECS`]: a key that
//! leaves the remote set stops working at the next fetch, as without this cache.

use std::collections::HashMap;
use std::sync::RwLock;

/// Keyed by the token itself; bounded; emptied by every reload (a rotation or revocation builds
/// a new snapshot with a new cache).
#[derive(Default)]
pub struct TokenCache {
    entries: RwLock<HashMap<Box<str>, CachedCaller>>,
}

#[derive(Clone, Debug)]
pub struct CachedCaller {
    pub client_id: String,
    pub scopes: Vec<String>,
    pub exp: i64,
    pub nbf: i64,
    /// For a JWKS-verified token: the key set's generation and the unix time after which the
    /// entry is not used; `None`: a static key, trusted until `exp`.
    pub jwks: Option<(u64, i64)>,
}

/// How long a token verified by a JWKS key is trusted without checking it again.
pub const JWKS_VERIFIED_SECS: i64 = 30;

const CACHE_CAPACITY: usize = 10_000;

/// `MCPGEN_TOKEN_CACHE=0` turns the cache off, so a benchmark can measure a full verification per
/// request. Read once per process.
fn cache_enabled() -> bool {
    static ENABLED: std::sync::LazyLock<bool> =
        std::sync::LazyLock::new(|| std::env::var_os("MCPGEN_TOKEN_CACHE").is_none_or(|v| v != "0"));
    *ENABLED
}

impl TokenCache {
    pub fn get(&self, token: &str) -> Option<CachedCaller> {
        if !cache_enabled() {
            return None;
        }
        self.entries.read().ok()?.get(token).cloned()
    }

    pub fn put(&self, token: &str, caller: CachedCaller) {
        if !cache_enabled() {
            return;
        }
        if let Ok(mut entries) = self.entries.write() {
            if entries.len() >= CACHE_CAPACITY {
                entries.clear();
            }
            entries.insert(token.into(), caller);
        }
    }
}
