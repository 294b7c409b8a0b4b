//! Protocol 2026-07-28, the stateless revision, served beside the handshake era on the same
//! `/mcp` endpoint (a "dual-era" server in the specification's words).
//!
//! A POST is modern when its body's `_meta` names a protocol version, or its
//! `MCP-Protocol-Version` header names one that is not a handshake-era version (and the body is
//! not `initialize`). A modern request must then carry, and agree with:
//! - `MCP-Protocol-Version` = `_meta["io.modelcontextprotocol/protocolVersion"]`, a version we
//!   serve — else 400 with `UnsupportedProtocolVersion` (-32022) listing the versions we serve;
//! - `Mcp-Method` = `method`, and for `tools/call` `Mcp-Name` = `params.name` (decoded from the
//!   `=?base64?…?=` form) — else 400 with `HeaderMismatch` (-32020);
//! - `_meta["io.modelcontextprotocol/clientCapabilities"]` — else 400 with -32602.
//!
//! Methods: `server/discover`, `tools/list`, `tools/call`; any other is 404 with -32601, as the
//! transport requires. Results carry `resultType: "complete"`, and the cacheable ones (`server/discover`,
//! `tools/list`) `ttlMs` and `cacheScope`. No session is read or issued,
//! and GET and DELETE are 405. Authentication and scopes are exactly those of the handshake era.

// Refusals are ready `Response`s, as in `router`.
#![allow(clippy::result_large_err)]

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};

use crate::mcp::jsonrpc::{HEADER_MISMATCH, INVALID_PARAMS, Id, Kind, METHOD_NOT_FOUND, Message, UNSUPPORTED_PROTOCOL_VERSION};
use crate::mcp::messages::DiscoverResult;
use crate::mcp::{self, meta, method};
use crate::server::access_log::LogLine;
use crate::server::auth::Caller;
use crate::server::methods::{self, encode};
use crate::server::router::{AppState, json_response, reply};
use crate::server::snapshot::Live;

/// How long a `server/discover` answer stays fresh: it changes only with the server's version.
pub const DISCOVER_TTL_MS: u64 = 300_000;
/// How long a `tools/list` page stays fresh: the catalogue changes when the profile is edited,
/// and which tools a caller sees depends on its token (so the scope is `private`).
pub const TOOLS_LIST_TTL_MS: u64 = 60_000;

/// A header's one value (`None`: absent); a header sent twice or not visible ASCII is an
/// error naming it — never a text a body value could equal.
fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, String> {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else { return Ok(None) };
    if values.next().is_some() {
        return Err(format!("the {name} header is sent more than once"));
    }
    first.to_str().map(Some).map_err(|_| format!("the {name} header is not visible ASCII"))
}

/// The `MCP-Protocol-Version` header names a stateless version (for GET and DELETE, which have
/// no body to look at).
pub fn is_modern_header(headers: &HeaderMap) -> bool {
    header(headers, mcp::VERSION_HEADER).is_ok_and(|v| v.is_some_and(mcp::is_modern))
}

fn meta_version(message: &Message) -> Option<&Value> {
    message.params.as_ref()?.get("_meta")?.get(meta::PROTOCOL_VERSION)
}

/// Whether a POST speaks the stateless revision (see the module header).
pub fn is_modern(headers: &HeaderMap, messages: &[Message]) -> bool {
    if messages.iter().any(|m| m.method.as_deref() == Some(method::INITIALIZE)) {
        return false;
    }
    if messages.iter().any(|m| meta_version(m).is_some()) {
        return true;
    }
    // An unusable version header (twice, not ASCII) is refused by the stateless checks.
    header(headers, mcp::VERSION_HEADER).map_or(true, |v| v.is_some_and(|v| !mcp::is_supported(v)))
}

/// `Mcp-Name` as sent: plain, or the `=?base64?…?=` form for names that are not plain ASCII.
fn decode_name(value: &str) -> Option<String> {
    match value.strip_prefix("=?base64?").and_then(|rest| rest.strip_suffix("?=")) {
        Some(encoded) => String::from_utf8(base64::engine::general_purpose::STANDARD.decode(encoded).ok()?).ok(),
        None => Some(value.to_owned()),
    }
}

fn refuse(status: StatusCode, id: Id, code: i64, message: String, data: Option<Value>) -> Response {
    let message = match data {
        Some(data) => Message::error_with_data(id, code, message, data),
        None => Message::error(id, code, message),
    };
    json_response(status, &serde_json::to_value(message).unwrap_or_default())
}

fn mismatch(id: &Id, what: String) -> Response {
    refuse(StatusCode::BAD_REQUEST, id.clone(), HEADER_MISMATCH, format!("Header mismatch: {what}"), None)
}

/// Check a modern request's version, headers and `_meta` against its body.
fn validate(headers: &HeaderMap, message: &Message) -> Result<(), Response> {
    let id = message.id.clone().unwrap_or(Id::Null);
    let printable = crate::validate::printable;
    let header_version = header(headers, mcp::VERSION_HEADER).map_err(|why| mismatch(&id, why))?;
    let body_version = match meta_version(message) {
        None => None,
        Some(Value::String(v)) => Some(v.as_str()),
        Some(_) => return Err(mismatch(&id, format!("{} in params._meta is not a string", meta::PROTOCOL_VERSION))),
    };
    let requested = match (header_version, body_version) {
        (Some(h), Some(b)) if h == b => h,
        (None, _) => return Err(mismatch(&id, "the MCP-Protocol-Version header is missing".into())),
        (Some(h), None) => {
            return Err(mismatch(&id, format!("MCP-Protocol-Version {} but no {} in params._meta", printable(h), meta::PROTOCOL_VERSION)));
        }
        (Some(h), Some(b)) => {
            return Err(mismatch(&id, format!("MCP-Protocol-Version header {} does not match body value {}", printable(h), printable(b))));
        }
    };
    if !mcp::is_modern(requested) {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            id,
            UNSUPPORTED_PROTOCOL_VERSION,
            "Unsupported protocol version".into(),
            Some(json!({"supported": mcp::all_versions(), "requested": requested})),
        ));
    }
    if message.kind() != Kind::Request {
        return Ok(()); // a notification: no header rules in this revision
    }
    let method = message.method.as_deref().unwrap_or("");
    match header(headers, mcp::METHOD_HEADER).map_err(|why| mismatch(&id, why))? {
        Some(h) if h == method => {}
        Some(h) => {
            return Err(mismatch(&id, format!("Mcp-Method header {} does not match body value {}", printable(h), printable(method))));
        }
        None => return Err(mismatch(&id, "the Mcp-Method header is missing".into())),
    }
    if method == method::TOOLS_CALL {
        let name = message.params.as_ref().and_then(|p| p.get("name")).and_then(Value::as_str).unwrap_or("");
        match header(headers, mcp::NAME_HEADER).map_err(|why| mismatch(&id, why))?.map(decode_name) {
            Some(Some(h)) if h == name => {}
            Some(Some(h)) => {
                return Err(mismatch(&id, format!("Mcp-Name header {} does not match body value {}", printable(&h), printable(name))));
            }
            Some(None) => return Err(mismatch(&id, "the Mcp-Name header is not valid =?base64?…?= text".into())),
            None => return Err(mismatch(&id, "the Mcp-Name header is missing".into())),
        }
    }
    let capabilities = message.params.as_ref().and_then(|p| p.get("_meta")).and_then(|m| m.get(meta::CLIENT_CAPABILITIES));
    if !capabilities.is_some_and(Value::is_object) {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            id,
            INVALID_PARAMS,
            format!("params._meta needs {} (an object)", meta::CLIENT_CAPABILITIES),
            None,
        ));
    }
    Ok(())
}

/// Answer one modern message (its caller already authenticated by the router).
pub async fn serve(
    state: &AppState,
    live: &Live,
    caller: &Caller,
    headers: &HeaderMap,
    message: Message,
    use_sse: bool,
    log: &mut LogLine,
) -> Response {
    log.rpc = message.method.clone().unwrap_or_default();
    if let Err(refusal) = validate(headers, &message) {
        return refusal;
    }
    log.note_meta(message.params.as_ref());
    if !message.is_request() {
        return StatusCode::ACCEPTED.into_response();
    }
    if let Err(refusal) = methods::authorize_calls(state, live, caller, std::slice::from_ref(&message), log) {
        return refusal;
    }
    let id = message.id.clone().unwrap_or(Id::Null);
    if message.method.as_deref() == Some(method::DISCOVER) {
        let server_info = methods::server_info(live);
        let mut meta = serde_json::Map::new();
        meta.insert(meta::SERVER_INFO.into(), serde_json::to_value(&server_info).unwrap_or_default());
        let result = DiscoverResult {
            result_type: Some("complete".into()),
            supported_versions: mcp::all_versions().into_iter().map(str::to_owned).collect(),
            capabilities: methods::capabilities(),
            // Where the discover page shows it, and in `_meta` where the schema puts it.
            server_info,
            instructions: Some(methods::instructions(live)),
            ttl_ms: Some(DISCOVER_TTL_MS),
            cache_scope: Some("public".into()),
            meta: Some(meta),
        };
        return reply(vec![encode(&Message::result(id, result))], false, use_sse);
    }
    match methods::answer(live, caller, &message, true, true, log).await {
        Some(encoded) => reply(vec![encoded], false, use_sse),
        None => refuse(
            StatusCode::NOT_FOUND,
            id,
            METHOD_NOT_FOUND,
            format!("Method not found: {}", crate::validate::printable(message.method.as_deref().unwrap_or(""))),
            None,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_decode_from_the_base64_sentinel_form() {
        assert_eq!(decode_name("getOrders").as_deref(), Some("getOrders"));
        assert_eq!(decode_name("=?base64?SGVsbG8sIOS4lueVjA==?=").as_deref(), Some("Hello, 世界"));
        assert_eq!(decode_name("=?base64?not base64?="), None);
        assert_eq!(decode_name("=?base64?/w==?="), None); // not UTF-8
    }
}
