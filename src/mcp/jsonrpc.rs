//! JSON-RPC 2.0 envelopes and the MCP constants both ends agree on.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Protocol versions mcpgen speaks, oldest first; the last is proposed by the client and is the
/// server's answer to a version it does not know.
pub const SUPPORTED_VERSIONS: [&str; 3] = ["2025-03-26", "2025-06-18", "2025-11-25"];
pub const LATEST_VERSION: &str = "2025-11-25";
/// Assumed when a request carries no `MCP-Protocol-Version` header (transport spec).
pub const DEFAULT_VERSION: &str = "2025-03-26";

pub const SESSION_HEADER: &str = "mcp-session-id";
pub const VERSION_HEADER: &str = "mcp-protocol-version";

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INTERNAL_ERROR: i64 = -32603;

pub fn is_supported(version: &str) -> bool {
    SUPPORTED_VERSIONS.contains(&version)
}

/// Any JSON-RPC message: request (id + method), notification (method only) or response.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Message {
    #[serde(default)]
    pub jsonrpc: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RpcError>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl Message {
    pub fn request(id: Value, method: &str, params: Option<Value>) -> Self {
        Message { jsonrpc: "2.0".into(), id: Some(id), method: Some(method.into()), params, ..Default::default() }
    }

    pub fn notification(method: &str) -> Self {
        Message { jsonrpc: "2.0".into(), method: Some(method.into()), ..Default::default() }
    }

    pub fn result(id: Value, result: Value) -> Self {
        Message { jsonrpc: "2.0".into(), id: Some(id), result: Some(result), ..Default::default() }
    }

    pub fn error(id: Value, code: i64, message: impl Into<String>) -> Self {
        Message {
            jsonrpc: "2.0".into(),
            id: Some(id),
            error: Some(RpcError { code, message: message.into(), data: None }),
            ..Default::default()
        }
    }

    /// A request expects a response; notifications and responses do not.
    pub fn is_request(&self) -> bool {
        self.method.is_some() && self.id.is_some()
    }
}
