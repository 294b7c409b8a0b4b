//! The MCP server `mcpgen serve` runs. A request passes through: `listener` (accept loop and
//! connection limits) → `router` (Streamable HTTP on `/mcp`; `wellknown` documents beside it)
//! → `auth` (service-account tokens, with the remote keys of `jwks`, the RFC 7662
//! `introspection` of opaque tokens and the `token_cache`) →
//! `tools` (the catalogue) → `downstream` (the REST API, or mock answers). Each request reads
//! one `snapshot` of the profile, built from its `settings`, keys and revocations and replaced
//! whole by `watch` when the profile's files change; `sessions` signs and checks the
//! handshake-era session ids (any replica accepts any replica's); `stateless` serves protocol
//! 2026-07-28 beside them; `access_log` is the one way the server logs (one line per request,
//! and the `metrics` of each); `health` answers the platform's probes and `/metrics`;
//! `rate_limit` keeps the per-client buckets; `tls` serves HTTPS with a certificate reloaded
//! when its files change.

pub mod access_log;
pub mod auth;
pub mod downstream;
pub mod health;
pub mod introspection;
pub mod jwks;
pub mod listener;
pub mod methods;
pub mod metrics;
pub mod rate_limit;
pub mod router;
pub mod sessions;
pub mod settings;
pub mod snapshot;
pub mod stateless;
pub mod tls;
pub mod token_cache;
pub mod tools;
pub mod watch;
pub mod wellknown;

pub use listener::Server;
pub use snapshot::{Live, Source};
pub use watch::Shared;
