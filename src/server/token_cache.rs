//! Verified tokens, so a client that sends the same token on every request pays for one
//! signature check per snapshot. Only tokens verified by static keys are cached (they change
//! with the profile's files, which build a new snapshot and so an empty cache); a JWKS key can
//! leave the remote set at any time.

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
}

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
