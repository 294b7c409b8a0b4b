//! The bridge against a server of the stateless revision 2026-07-28. Hosts speak the handshake
//! era on stdio; when the server answers `server/discover`, the bridge answers the host's
//! `initialize` itself and relays every later request statelessly: the host's capabilities and
//! identity in each request's `_meta`, the method, name and annotated arguments in headers;
//! `ping` is answered here, notifications stay here (the revision has none over HTTP), and a
//! tool whose `x-mcp-header` annotations are invalid is left out of `tools/list`.

use std::sync::{Arc, Mutex};

use reqwest::header::{HeaderName, HeaderValue};
use serde_json::{Value, json};

use super::{Failed, REPLAY_ID_PREFIX, Relay, lock};
use crate::client::param_headers::{self, ParamHeaders};
use crate::client::transport::with_meta_of;
use crate::mcp;
use crate::output::note;
use crate::validate::escape_controls;

/// The stateless revision, once the server answered `server/discover`: what each request's
/// `_meta` carries for the host, and the header annotations of the tools listed so far.
pub(super) struct Modern {
    capabilities: Value,
    client_info: Value,
    param_headers: Mutex<std::collections::HashMap<String, ParamHeaders>>,
}

impl Relay {
    /// Ask the server `server/discover` in the stateless revision. A modern answer makes the
    /// relay modern and answers the host's `initialize` here (true); an answer that is not a
    /// recognized modern one means the handshake era (false); a refusal or an unreachable
    /// server is reported.
    pub(super) async fn discover(self: &Arc<Self>, initialize: &Value) -> Result<bool, Failed> {
        let params = initialize.get("params");
        let modern = Arc::new(Modern {
            capabilities: params.and_then(|p| p.get("capabilities")).cloned().unwrap_or_else(|| json!({})),
            client_info: params.and_then(|p| p.get("clientInfo")).cloned().unwrap_or_else(|| json!({"name": "mcpgen-bridge"})),
            param_headers: Mutex::new(Default::default()),
        });
        let probe_id = json!(format!("{REPLAY_ID_PREFIX}discover"));
        let body = json!({"jsonrpc": "2.0", "id": probe_id, "method": mcp::method::DISCOVER,
            "params": with_meta_of(None, modern.capabilities.clone(), modern.client_info.clone())});
        let headers = modern_headers(&body, None)?;
        let reply = match self.exchange(&body.to_string(), Some(&probe_id), false, &headers).await {
            Ok(Some((reply, _))) => reply,
            Ok(None) => return Ok(false),
            Err(failed) if failed.falls_back => return Ok(false),
            Err(failed) => return Err(failed),
        };
        let result = match reply.get("result") {
            Some(result) if result["supportedVersions"].as_array().is_some_and(|v| v.iter().any(|v| v == mcp::MODERN_VERSION)) => result,
            _ => return Ok(false),
        };
        if self.debug {
            note("mcpgen bridge: the server speaks protocol 2026-07-28; relaying statelessly");
        }
        let asked = params.and_then(|p| p.get("protocolVersion")).and_then(Value::as_str).unwrap_or("");
        let version = if mcp::is_supported(asked) { asked } else { mcp::LATEST_VERSION };
        let server_info = result
            .pointer(&format!("/_meta/{}", mcp::meta::SERVER_INFO.replace('/', "~1")))
            .or_else(|| result.get("serverInfo"))
            .cloned()
            .unwrap_or_else(|| json!({"name": "unknown", "version": ""}));
        let mut answer = json!({"protocolVersion": version, "capabilities": result.get("capabilities").cloned().unwrap_or_else(|| json!({})),
            "serverInfo": server_info});
        if let Some(instructions) = result.get("instructions") {
            answer["instructions"] = instructions.clone();
        }
        *self.modern.write().unwrap_or_else(|p| p.into_inner()) = Some(modern);
        if let Some(id) = initialize.get("id") {
            let _ = self.out.send(json!({"jsonrpc": "2.0", "id": id, "result": answer}).to_string()).await;
        }
        Ok(true)
    }

    /// One host message in the stateless revision.
    pub(super) async fn relay_modern(self: &Arc<Self>, modern: &Modern, message: &Value, id: Option<Value>) {
        let method = message.get("method").and_then(Value::as_str).unwrap_or("");
        let Some(id) = id else { return }; // notifications and responses stay here
        if method == mcp::method::PING {
            let _ = self.out.send(json!({"jsonrpc": "2.0", "id": id, "result": {}}).to_string()).await;
            return;
        }
        let mut body = message.clone();
        body["params"] = with_meta_of(message.get("params").cloned(), modern.capabilities.clone(), modern.client_info.clone());
        let annotated =
            message.pointer("/params/name").and_then(Value::as_str).and_then(|name| lock(&modern.param_headers).get(name).cloned());
        let result = match modern_headers(&body, annotated.as_ref()) {
            Ok(headers) => self.exchange(&body.to_string(), Some(&id), true, &headers).await,
            Err(failed) => Err(failed),
        };
        match result {
            Ok(_) => self.clear_note(),
            Err(failed) => {
                self.note(&failed);
                self.reply_error(id, &failed.message).await;
            }
        }
    }
}

/// The headers a stateless request mirrors from `body`: version, method, the name (tool,
/// prompt or resource URI) and the tool's annotated arguments.
fn modern_headers(body: &Value, annotated: Option<&ParamHeaders>) -> Result<Vec<(HeaderName, HeaderValue)>, Failed> {
    let bad = |what: &str| Failed { message: format!("{what} cannot be sent as a header"), hint: None, falls_back: false };
    let value = |text: &str| HeaderValue::from_str(text).map_err(|_| bad(text));
    let method = body.get("method").and_then(Value::as_str).unwrap_or("");
    let mut out = vec![
        (HeaderName::from_static(mcp::VERSION_HEADER), HeaderValue::from_static(mcp::MODERN_VERSION)),
        (HeaderName::from_static(mcp::METHOD_HEADER), value(method)?),
    ];
    let name = match method {
        "tools/call" | "prompts/get" => body.pointer("/params/name"),
        "resources/read" => body.pointer("/params/uri"),
        _ => None,
    };
    if let Some(name) = name.and_then(Value::as_str) {
        out.push((HeaderName::from_static(mcp::NAME_HEADER), value(&param_headers::encode(name))?));
    }
    if let (Some(annotated), Some(arguments)) = (annotated, body.pointer("/params/arguments")) {
        for (header, text) in annotated.values(arguments) {
            out.push((HeaderName::from_bytes(header.as_bytes()).map_err(|_| bad(&header))?, value(&text)?));
        }
    }
    Ok(out)
}

/// A `tools/list` reply without the tools whose `x-mcp-header` annotations are invalid (the
/// revision requires leaving them out); the others' annotations are kept for their calls.
pub(super) fn keep_valid_tools(modern: &Modern, mut message: Value) -> Value {
    if let Some(tools) = message.pointer_mut("/result/tools").and_then(Value::as_array_mut) {
        let mut annotations = lock(&modern.param_headers);
        tools.retain(|tool| {
            let name = tool.get("name").and_then(Value::as_str).unwrap_or("").to_owned();
            match param_headers::of_schema(tool.get("inputSchema").unwrap_or(&Value::Null)) {
                Ok(headers) => {
                    annotations.insert(name, headers);
                    true
                }
                Err(why) => {
                    note(format!("mcpgen bridge: leaving out tool {}: {}", escape_controls(&name), escape_controls(&why)));
                    false
                }
            }
        });
    }
    message
}
