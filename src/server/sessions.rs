//! Handshake-era sessions (`Mcp-Session-Id`) that need no shared memory: the id itself carries
//! the negotiated protocol version and when it was issued, and an HMAC-SHA256 tag over that and
//! the owner (the caller's `client_id`). Every replica that holds the same session key — derived
//! from the profile's signing key, or `MCPGEN_SESSION_SECRET` — accepts a session any other
//! replica created, so replicas behind a round-robin load balancer behave as one server.
//!
//! A session costs no memory until it is ended: `DELETE` remembers the id (bounded, oldest
//! forgotten first) so this replica answers 404 to it afterwards. Another replica does not hear
//! of it and accepts the id until it expires — which grants nothing the caller's token does not:
//! every request is authenticated on its own, and the id is bound to the caller's `client_id`.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::mcp;

/// A session is accepted this long after `initialize`; then the client initializes again (404).
pub const SESSION_LIFETIME_SECS: u64 = 24 * 3600;
/// Ended (`DELETE`d) session ids this replica remembers at most.
pub const MAX_ENDED: usize = 10_000;
/// The environment variable that sets the session key for replicas without the profile's
/// signing key (at least 32 bytes of secret, any encoding).
pub const SECRET_ENV: &str = "MCPGEN_SESSION_SECRET";

const DOMAIN: &[u8] = b"mcpgen session id v1\0";
const NONCE_BYTES: usize = 12;
const TAG_BYTES: usize = 16;
/// version index (1) + issued-at seconds (8) + nonce.
const PAYLOAD_BYTES: usize = 1 + 8 + NONCE_BYTES;

type HmacSha256 = Hmac<Sha256>;

/// A 256-bit key that signs session ids. Redacts itself.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionKey([u8; 32]);

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(<redacted>)")
    }
}

/// Where the session key came from: operators need to know whether replicas agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// `MCPGEN_SESSION_SECRET`.
    Environment,
    /// Derived from the profile's signing key (shared by every replica of the folder).
    Profile,
    /// Random, this process only (no signing key and no secret): sessions do not cross replicas.
    Process,
}

impl SessionKey {
    /// A key derived from secret material under a fixed label (HMAC-SHA256 as a KDF), so the
    /// session key reveals nothing of the signing key it comes from.
    pub fn derive(secret: &[u8]) -> Self {
        let mut mac = HmacSha256::new_from_slice(b"mcpgen/session-key/v1").expect("HMAC takes any key length");
        mac.update(secret);
        SessionKey(mac.finalize().into_bytes().into())
    }

    pub fn random() -> Self {
        SessionKey(rand::random())
    }

    fn tag(&self, payload: &[u8], owner: &str) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(DOMAIN);
        mac.update(payload);
        mac.update(owner.as_bytes());
        mac
    }
}

/// The key from `MCPGEN_SESSION_SECRET` when set (refused when shorter than 32 bytes).
pub fn key_from_env() -> anyhow::Result<Option<SessionKey>> {
    match std::env::var_os(SECRET_ENV) {
        None => Ok(None),
        Some(value) if value.len() < 32 => Err(crate::error::Failure::usage(format!("{SECRET_ENV} is shorter than 32 bytes"))
            .hint("generate one with `openssl rand -hex 32`, and give every replica the same value")
            .into()),
        Some(value) => Ok(Some(SessionKey::derive(value.as_encoded_bytes()))),
    }
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Signs new session ids and checks presented ones.
pub struct Sessions {
    ended: Mutex<Ended>,
}

#[derive(Default)]
struct Ended {
    ids: HashSet<String>,
    order: VecDeque<String>,
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions { ended: Mutex::new(Ended::default()) }
    }
}

impl Sessions {
    /// A new session id for `owner` at protocol `version`, signed with `key`: 50 URL-safe
    /// characters (visible ASCII, as the transport requires).
    pub fn issue(&self, key: &SessionKey, version: &str, owner: &str) -> String {
        let index = mcp::SUPPORTED_VERSIONS.iter().position(|v| *v == version).unwrap_or(mcp::SUPPORTED_VERSIONS.len() - 1);
        let mut payload = [0u8; PAYLOAD_BYTES];
        payload[0] = index as u8;
        payload[1..9].copy_from_slice(&now_secs().to_be_bytes());
        payload[9..].copy_from_slice(&rand::random::<[u8; NONCE_BYTES]>());
        let tag = key.tag(&payload, owner).finalize().into_bytes();
        let mut raw = [0u8; PAYLOAD_BYTES + TAG_BYTES];
        raw[..PAYLOAD_BYTES].copy_from_slice(&payload);
        raw[PAYLOAD_BYTES..].copy_from_slice(&tag[..TAG_BYTES]);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// The session's protocol version if `id` was issued to `owner` under one of `keys`, is not
    /// past its lifetime, and was not ended here.
    pub fn check(&self, keys: &[SessionKey], id: &str, owner: &str) -> Option<&'static str> {
        // 50 characters exactly: anything else is refused before any decoding or hashing.
        if id.len() != (PAYLOAD_BYTES + TAG_BYTES).div_ceil(3) * 4 - 2 {
            return None;
        }
        let raw = URL_SAFE_NO_PAD.decode(id).ok()?;
        let (payload, tag) = raw.split_at(PAYLOAD_BYTES);
        // Constant-time comparison (`verify_truncated_left`), under each key in turn.
        if !keys.iter().any(|key| key.tag(payload, owner).verify_truncated_left(tag).is_ok()) {
            return None;
        }
        let issued = u64::from_be_bytes(payload[1..9].try_into().ok()?);
        let now = now_secs();
        // A little slack for clocks of replicas that disagree.
        if issued > now + 300 || now.saturating_sub(issued) >= SESSION_LIFETIME_SECS {
            return None;
        }
        let version = mcp::SUPPORTED_VERSIONS.get(usize::from(payload[0]))?;
        if self.ended.lock().unwrap_or_else(|p| p.into_inner()).ids.contains(id) {
            return None;
        }
        Some(version)
    }

    /// `DELETE`: this replica refuses the id from now on (the oldest ended ids are forgotten
    /// past [`MAX_ENDED`]; they expire on their own).
    pub fn end(&self, id: &str) {
        let mut ended = self.ended.lock().unwrap_or_else(|p| p.into_inner());
        if ended.ids.insert(id.to_owned()) {
            ended.order.push_back(id.to_owned());
            while ended.order.len() > MAX_ENDED {
                if let Some(old) = ended.order.pop_front() {
                    ended.ids.remove(&old);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SessionKey {
        SessionKey::derive(&[byte; 32])
    }

    #[test]
    fn an_id_is_accepted_by_any_holder_of_the_key_for_its_owner_only() {
        let (a, b) = (Sessions::default(), Sessions::default());
        let id = a.issue(&key(1), "2025-06-18", "ci-bot");
        assert_eq!(id.len(), 50);
        assert!(id.bytes().all(|c| (0x21..=0x7e).contains(&c)));
        assert_eq!(b.check(&[key(1)], &id, "ci-bot"), Some("2025-06-18"));
        assert_eq!(b.check(&[key(1)], &id, "other-bot"), None);
        assert_eq!(b.check(&[key(2)], &id, "ci-bot"), None);
        assert_eq!(b.check(&[key(2), key(1)], &id, "ci-bot"), Some("2025-06-18"));
    }

    #[test]
    fn tampered_truncated_and_ended_ids_are_refused() {
        let sessions = Sessions::default();
        let id = sessions.issue(&key(1), "2025-11-25", "c");
        let mut raw = URL_SAFE_NO_PAD.decode(&id).unwrap();
        raw[0] = 0; // another version, same tag
        assert_eq!(sessions.check(&[key(1)], &URL_SAFE_NO_PAD.encode(&raw), "c"), None);
        assert_eq!(sessions.check(&[key(1)], &id[..49], "c"), None);
        assert_eq!(sessions.check(&[key(1)], "", "c"), None);
        assert_eq!(sessions.check(&[key(1)], &"!".repeat(50), "c"), None);
        sessions.end(&id);
        assert_eq!(sessions.check(&[key(1)], &id, "c"), None);
    }

    #[test]
    fn an_expired_id_is_refused() {
        let k = key(1);
        let mut payload = [0u8; PAYLOAD_BYTES];
        payload[0] = 2;
        payload[1..9].copy_from_slice(&(now_secs() - SESSION_LIFETIME_SECS).to_be_bytes());
        let tag = k.tag(&payload, "c").finalize().into_bytes();
        let id = URL_SAFE_NO_PAD.encode([&payload[..], &tag[..TAG_BYTES]].concat());
        assert_eq!(Sessions::default().check(&[k], &id, "c"), None);
    }

    #[test]
    fn ended_ids_are_bounded() {
        let sessions = Sessions::default();
        for i in 0..MAX_ENDED + 10 {
            sessions.end(&i.to_string());
        }
        let ended = sessions.ended.lock().unwrap();
        assert_eq!((ended.ids.len(), ended.order.len()), (MAX_ENDED, MAX_ENDED));
        assert!(!ended.ids.contains("0"));
    }
}
