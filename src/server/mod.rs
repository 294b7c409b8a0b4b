//! The MCP server `mcpgen serve` runs: Streamable HTTP routes and the accept loop (`router`),
//! service-account authentication (`auth`) with its remote key source (`jwks`), the profile
//! snapshot that hot-reloads configuration, keys, revocations and tools (`live`), and the tool
//! catalogue with its downstream proxy (`tools`).

pub mod auth;
pub mod jwks;
pub mod live;
pub mod router;
pub mod tools;

pub use router::Server;
