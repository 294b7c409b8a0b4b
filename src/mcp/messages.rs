//! The MCP messages mcpgen sends and receives: `initialize`, `tools/list`, `tools/call` and
//! their results. Fields other peers may add are kept (`extra`), so a tool list read by the
//! client and printed with `--list-json` loses nothing, and nothing a newer peer sends is
//! refused for being unknown.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `clientInfo` / `serverInfo`.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct Implementation {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default)]
    pub version: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct InitializeParams {
    #[serde(default)]
    pub protocol_version: String,
    #[serde(default)]
    pub capabilities: Map<String, Value>,
    #[serde(default)]
    pub client_info: Implementation,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct InitializeResult {
    #[serde(default)]
    pub protocol_version: String,
    #[serde(default)]
    pub capabilities: Map<String, Value>,
    #[serde(default)]
    pub server_info: Implementation,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
}

/// The result of `server/discover` (protocol 2026-07-28): what `initialize` told in the
/// handshake era, asked for instead of negotiated.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DiscoverResult {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_type: Option<String>,
    #[serde(default)]
    pub supported_versions: Vec<String>,
    #[serde(default)]
    pub capabilities: Map<String, Value>,
    #[serde(default)]
    pub server_info: Implementation,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    /// How long the client may consider this fresh (cacheable results must say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_ms: Option<u64>,
    /// `public` or `private` (whether one caller's answer may be reused for another).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_scope: Option<String>,
    /// Result metadata; the revision names the server in `io.modelcontextprotocol/serverInfo`.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Map<String, Value>>,
}

/// `params` of `tools/list` and `prompts/list`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct PageParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// One tool as `tools/list` describes it.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Tool {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default = "empty_object_schema")]
    pub input_schema: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn empty_object_schema() -> Value {
    serde_json::json!({"type": "object"})
}

/// A page of a listing: `tools` or `prompts` (kept as JSON; mcpgen only counts prompts).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ListToolsResult {
    #[serde(default)]
    pub tools: Vec<Tool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ListPromptsResult {
    #[serde(default)]
    pub prompts: Vec<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct CallToolParams {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<Value>,
}

/// One content block of a tool result. Only `text` is interpreted; other kinds (image, audio,
/// resource…) keep their members in `extra`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Content {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Content {
    pub fn text(text: impl Into<String>) -> Self {
        Content { kind: "text".into(), text: Some(text.into()), mime_type: None, extra: Map::new() }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CallToolResult {
    #[serde(default)]
    pub content: Vec<Content>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub structured_content: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_error: Option<bool>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl CallToolResult {
    /// A successful result: pretty JSON text plus, when `structured`, `structuredContent`
    /// (objects as they are, other values wrapped as `{"result": …}`: MCP requires an object).
    pub fn success(value: Value, structured: bool) -> Self {
        let text = serde_json::to_string_pretty(&value).unwrap_or_default();
        let structured_content = structured.then(|| if value.is_object() { value } else { serde_json::json!({"result": value}) });
        CallToolResult { content: vec![Content::text(text)], structured_content, is_error: Some(false), extra: Map::new() }
    }

    /// A tool-level failure the model can read (`isError: true`).
    pub fn failure(message: impl Into<String>) -> Self {
        CallToolResult { content: vec![Content::text(message)], structured_content: None, is_error: Some(true), extra: Map::new() }
    }

    pub fn is_error(&self) -> bool {
        self.is_error == Some(true)
    }

    /// The text blocks, in order.
    pub fn texts(&self) -> impl Iterator<Item = &str> {
        self.content.iter().filter(|c| c.kind == "text").filter_map(|c| c.text.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_fields_survive_a_round_trip() {
        let tool = json!({"name": "t", "inputSchema": {"type": "object"}, "icons": [{"src": "x"}], "_meta": {"k": 1}});
        let parsed: Tool = serde_json::from_value(tool.clone()).unwrap();
        assert_eq!(serde_json::to_value(&parsed).unwrap(), tool);
        let result = json!({"content": [{"type": "image", "data": "AAAA", "mimeType": "image/png"}], "isError": false});
        let parsed: CallToolResult = serde_json::from_value(result.clone()).unwrap();
        assert_eq!(serde_json::to_value(&parsed).unwrap(), result);
    }

    #[test]
    fn success_wraps_non_objects() {
        let r = CallToolResult::success(json!([1, 2]), true);
        assert_eq!(r.structured_content, Some(json!({"result": [1, 2]})));
        assert_eq!(r.texts().collect::<Vec<_>>(), vec!["[\n  1,\n  2\n]"]);
        assert!(CallToolResult::success(json!({"a": 1}), false).structured_content.is_none());
        assert!(CallToolResult::failure("x").is_error());
    }
}
