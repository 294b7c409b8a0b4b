//! The methods both protocol eras answer alike, for `router` (handshake era) and `stateless`
//! (2026-07-28): `tools/list` (a page of the tools the caller's scopes allow) and `tools/call`,
//! the up-front scope check of every call in a message, and the server's identity and
//! capabilities that `initialize` and `server/discover` report.

// Refusals are ready `Response`s, as in `router`.
#![allow(clippy::result_large_err)]

use axum::response::Response;
use serde_json::{Value, json};

use crate::mcp::jsonrpc::{INVALID_PARAMS, Id, Message};
use crate::mcp::messages::{CallToolParams, Implementation, PageParams, Tool};
use crate::mcp::method;
use crate::server::access_log::LogLine;
use crate::server::auth::{self, Caller, Refusal};
use crate::server::router::AppState;
use crate::server::snapshot::Live;
use crate::server::stateless;

/// Tools per `tools/list` page.
pub const PAGE_SIZE: usize = 100;

/// What this server offers: tools, a list that does not change while a client holds it.
pub(crate) fn capabilities() -> serde_json::Map<String, Value> {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("tools".into(), json!({"listChanged": false}));
    capabilities
}

pub(crate) fn server_info(live: &Live) -> Implementation {
    Implementation { name: "mcpgen".into(), title: Some(format!("mcpgen {}", live.profile)), version: env!("CARGO_PKG_VERSION").into() }
}

pub(crate) fn instructions(live: &Live) -> String {
    format!("Tools of the {} API. Service-account scopes decide which tools you see.", live.profile)
}

/// Authorization of every call first: a refusal must not come after earlier calls of the same
/// batch already reached the downstream.
pub(crate) fn authorize_calls(
    state: &AppState,
    live: &Live,
    caller: &Caller,
    messages: &[Message],
    log: &mut LogLine,
) -> Result<(), Response> {
    for message in messages.iter().filter(|m| m.is_request() && m.method.as_deref() == Some(method::TOOLS_CALL)) {
        let name = message.params.as_ref().and_then(|p| p.get("name")).and_then(Value::as_str).unwrap_or("");
        if live.tools.get(name).is_some() {
            let needed = live.settings.authorization.scopes_for(name);
            if !caller.has_all(needed) {
                log.rpc = method::TOOLS_CALL.into();
                log.tool = name.to_owned();
                return Err(auth::refusal_response(live, &Refusal::InsufficientScope(needed.to_vec()), &state.metadata_url(live)));
            }
        }
    }
    Ok(())
}

/// The encoded reply to a `tools/list` or `tools/call` request, the methods both protocol eras
/// share; `None` for any other method. `modern` adds the `resultType` the stateless revision
/// requires on every result.
pub(crate) async fn answer(
    live: &Live,
    caller: &Caller,
    message: &Message,
    structured: bool,
    modern: bool,
    log: &mut LogLine,
) -> Option<String> {
    let id = message.id.clone().unwrap_or(Id::Null);
    let encoded = match message.method.as_deref().unwrap_or("") {
        method::TOOLS_LIST => list_tools(live, caller, id, message, modern),
        method::TOOLS_CALL => {
            let params: CallToolParams = match message.params_as() {
                Ok(p) => p,
                Err(e) => return Some(encode(&Message::error(id, INVALID_PARAMS, format!("invalid tools/call params: {e}")))),
            };
            log.tool = params.name.clone();
            let Some(tool) = live.tools.get(&params.name) else {
                return Some(encode(&Message::error(
                    id,
                    INVALID_PARAMS,
                    format!("Unknown tool: {}", crate::validate::printable(&params.name)),
                )));
            };
            let args = match params.arguments {
                None | Some(Value::Null) => serde_json::Map::new(),
                Some(Value::Object(map)) => map,
                Some(_) => return Some(encode(&Message::error(id, INVALID_PARAMS, "arguments must be an object"))),
            };
            let mut result = live.tools.call(tool, &args, structured).await;
            crate::server::metrics::tool_call(&tool.op.name, result.is_error != Some(true));
            if modern {
                result.extra.insert("resultType".into(), json!("complete"));
            }
            encode(&Message::result(id, result))
        }
        _ => return None,
    };
    Some(encoded)
}

pub(crate) fn encode(message: &Message) -> String {
    serde_json::to_string(message).unwrap_or_default()
}

/// `tools/list`: the tools the caller has the scopes for, a page at a time; the encoded reply,
/// serialized straight from the descriptors (no copy of the page as a JSON tree).
fn list_tools(live: &Live, caller: &Caller, id: Id, message: &Message, modern: bool) -> String {
    let invalid = |id| encode(&Message::error(id, INVALID_PARAMS, "invalid cursor"));
    let start = match message.params_as::<PageParams>() {
        Ok(PageParams { cursor: None }) => 0,
        Ok(PageParams { cursor: Some(c) }) => match c.parse::<usize>() {
            Ok(n) => n,
            Err(_) => return invalid(id),
        },
        Err(_) => return invalid(id),
    };
    let visible: Vec<&Tool> = live
        .tools
        .tools
        .iter()
        .filter(|t| caller.has_all(live.settings.authorization.scopes_for(&t.op.name)))
        .map(|t| &t.descriptor)
        .collect();
    if start > visible.len() {
        return invalid(id);
    }
    let end = (start + PAGE_SIZE).min(visible.len());

    #[derive(serde::Serialize)]
    struct Page<'a> {
        #[serde(rename = "resultType", skip_serializing_if = "Option::is_none")]
        result_type: Option<&'static str>,
        #[serde(rename = "ttlMs", skip_serializing_if = "Option::is_none")]
        ttl_ms: Option<u64>,
        #[serde(rename = "cacheScope", skip_serializing_if = "Option::is_none")]
        cache_scope: Option<&'static str>,
        tools: &'a [&'a Tool],
        #[serde(rename = "nextCursor", skip_serializing_if = "Option::is_none")]
        next_cursor: Option<String>,
    }
    let page = Page {
        result_type: modern.then_some("complete"),
        ttl_ms: modern.then_some(stateless::TOOLS_LIST_TTL_MS),
        cache_scope: modern.then_some("private"),
        tools: &visible[start..end],
        next_cursor: (end < visible.len()).then(|| end.to_string()),
    };
    encode(&Message::result(id, page))
}
