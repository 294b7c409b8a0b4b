//! The Model Context Protocol as types, shared by the client (`crate::client`) and the server
//! (`crate::server`): the JSON-RPC 2.0 envelope, ids and error codes (`jsonrpc`), the MCP
//! messages mcpgen sends and receives (`messages`), and the Streamable HTTP constants below.
//!
//! Own serde types rather than `rmcp::model`: mcpgen needs about a dozen messages, must accept
//! what other implementations send (unknown fields kept, not refused), and the rmcp crate would
//! tie the binary's wire format to that SDK's release cadence and bring its dependency tree into
//! the release build (measured in the house issue's note); rmcp stays a dev-dependency, used by
//! the interop tests as the independent peer.

pub mod jsonrpc;
pub mod messages;

/// Handshake-era ("legacy") protocol versions mcpgen speaks, oldest first; the last is proposed
/// by the client's `initialize` and is the server's answer to a version it does not know.
pub const SUPPORTED_VERSIONS: [&str; 3] = ["2025-03-26", "2025-06-18", "2025-11-25"];
pub const LATEST_VERSION: &str = "2025-11-25";
/// Stateless ("modern") versions: no handshake, no session; every request carries its version
/// and capabilities in `_meta` and mirrors method and name into headers.
pub const MODERN_VERSIONS: [&str; 1] = ["2026-07-28"];
pub const MODERN_VERSION: &str = "2026-07-28";
/// The first version without JSON-RPC batching and with `structuredContent`.
pub const STRUCTURED_SINCE: &str = "2025-06-18";

/// Streamable HTTP headers (lower case, as `http` stores them).
pub const SESSION_HEADER: &str = "mcp-session-id";
pub const VERSION_HEADER: &str = "mcp-protocol-version";
pub const METHOD_HEADER: &str = "mcp-method";
pub const NAME_HEADER: &str = "mcp-name";

/// The reserved `_meta` keys of a modern request.
pub mod meta {
    pub const PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
    pub const CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
    pub const CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
    pub const SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
}

pub fn is_supported(version: &str) -> bool {
    SUPPORTED_VERSIONS.contains(&version)
}

pub fn is_modern(version: &str) -> bool {
    MODERN_VERSIONS.contains(&version)
}

/// Every version mcpgen speaks, newest first (what `server/discover` and
/// `UnsupportedProtocolVersion` list).
pub fn all_versions() -> Vec<&'static str> {
    MODERN_VERSIONS.iter().chain(SUPPORTED_VERSIONS.iter().rev()).copied().collect()
}

/// Method names.
pub mod method {
    pub const INITIALIZE: &str = "initialize";
    pub const INITIALIZED: &str = "notifications/initialized";
    pub const PING: &str = "ping";
    pub const TOOLS_LIST: &str = "tools/list";
    pub const TOOLS_CALL: &str = "tools/call";
    pub const PROMPTS_LIST: &str = "prompts/list";
    pub const DISCOVER: &str = "server/discover";
}
