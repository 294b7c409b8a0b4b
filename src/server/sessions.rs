//! Handshake-era sessions (`Mcp-Session-Id`): which protocol version each negotiated and which
//! client owns it. Bounded in all and per client — a client's own oldest session goes first,
//! so one token opening sessions in a loop never evicts anyone else's — with recency kept in
//! ordered maps, so eviction and expiry never scan under the lock.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// Sessions kept at most; the least recently used goes first.
pub const MAX_SESSIONS: usize = 10_000;
/// Sessions one `client_id` keeps at most; its own least recently used goes first.
pub const MAX_SESSIONS_PER_CLIENT: usize = 100;
/// A session unused this long is forgotten.
const SESSION_IDLE: Duration = Duration::from_secs(3600);

struct SessionInfo {
    version: String,
    client_id: String,
    last_seen: Instant,
    /// Position in the recency orders: bumped on every use.
    tick: u64,
}

/// Sessions by id, plus recency orders (global and per client) keyed by a use counter, so
/// eviction and expiry take the first entry instead of scanning under the lock.
#[derive(Default)]
pub struct Sessions {
    by_id: HashMap<String, SessionInfo>,
    by_tick: BTreeMap<u64, String>,
    per_client: HashMap<String, BTreeMap<u64, String>>,
    next_tick: u64,
}

impl Sessions {
    pub fn remove(&mut self, id: &str) {
        let Some(info) = self.by_id.remove(id) else { return };
        self.by_tick.remove(&info.tick);
        if let Some(own) = self.per_client.get_mut(&info.client_id) {
            own.remove(&info.tick);
            if own.is_empty() {
                self.per_client.remove(&info.client_id);
            }
        }
    }

    /// Forget sessions idle too long: they are the oldest, at the front of the order.
    fn expire(&mut self) {
        while let Some((_, id)) = self.by_tick.first_key_value() {
            let expired = self.by_id.get(id).is_none_or(|s| s.last_seen.elapsed() >= SESSION_IDLE);
            if !expired {
                break;
            }
            let id = id.clone();
            self.remove(&id);
        }
    }

    pub fn insert(&mut self, id: String, version: &str, client_id: &str) {
        self.expire();
        if let Some(oldest) =
            self.per_client.get(client_id).filter(|own| own.len() >= MAX_SESSIONS_PER_CLIENT).and_then(|own| own.first_key_value())
        {
            let oldest = oldest.1.clone();
            self.remove(&oldest);
        }
        if self.by_id.len() >= MAX_SESSIONS
            && let Some((_, oldest)) = self.by_tick.first_key_value()
        {
            let oldest = oldest.clone();
            self.remove(&oldest);
        }
        let tick = self.bump();
        self.by_tick.insert(tick, id.clone());
        self.per_client.entry(client_id.to_owned()).or_default().insert(tick, id.clone());
        self.by_id
            .insert(id, SessionInfo { version: version.to_owned(), client_id: client_id.to_owned(), last_seen: Instant::now(), tick });
    }

    /// The session's version if it exists, belongs to `client_id` and is not idle; marks it used.
    pub fn touch(&mut self, id: &str, client_id: &str) -> Option<String> {
        let session = self.by_id.get(id)?;
        // A session belongs to the client that created it.
        if session.client_id != client_id || session.last_seen.elapsed() >= SESSION_IDLE {
            return None;
        }
        let old = session.tick;
        let tick = self.bump();
        self.by_tick.remove(&old);
        self.by_tick.insert(tick, id.to_owned());
        if let Some(own) = self.per_client.get_mut(client_id) {
            own.remove(&old);
            own.insert(tick, id.to_owned());
        }
        let session = self.by_id.get_mut(id)?;
        session.tick = tick;
        session.last_seen = Instant::now();
        Some(session.version.clone())
    }

    fn bump(&mut self) -> u64 {
        self.next_tick += 1;
        self.next_tick
    }
}
