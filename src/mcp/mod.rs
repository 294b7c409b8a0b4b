//! The Model Context Protocol over Streamable HTTP: wire types shared by both ends, the server
//! (`server`, with its authentication layer `auth`, key sources `jwks`, tool catalogue `tools`
//! and hot-reloaded state `live`), and the client (`client`, `sse`).

pub mod auth;
pub mod client;
pub mod jsonrpc;
pub mod jwks;
pub mod live;
pub mod oauth;
pub mod schema;
pub mod server;
pub mod sse;
pub mod tools;

/// Install the process-wide TLS provider (ring) once; reqwest is built without one so the
/// binary does not carry two crypto stacks.
pub fn init_tls() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
