//! The routes of the MCP Streamable HTTP server: `/mcp` (POST messages, GET for a stream we do
//! not offer, DELETE to end a session) and the documents of `wellknown`.
//!
//! Order of checks on `/mcp`: Origin (403), authentication (401/403), `Accept` (406), body
//! (400), session (400 missing / 404 unknown), `MCP-Protocol-Version` (400), then the method
//! (answered in `methods`; a protocol 2026-07-28 request goes to `stateless` instead).
//!
//! Everything an unauthenticated or hostile client can hold is bounded:
//! - connections: see `listener`; a body is read only once the caller is authenticated, and
//!   one that does not arrive within `server.body_timeout_seconds` (default 10) is a 408.
//! - batches: at most [`MAX_BATCH`] messages, none at all from protocol 2025-06-18 on (that
//!   version dropped JSON-RPC batching), every `tools/call` authorized before any runs, and the
//!   replies of one batch at most [`MAX_BATCH_REPLY_BYTES`] (later requests get an error each).
//! - sessions: see `sessions`.
//! - the access log escapes everything taken from the request (method, tool, client).

// Early returns carry a ready `Response`; boxing it would only add an allocation per refusal.
#![allow(clippy::result_large_err)]

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::mcp::jsonrpc::{INVALID_PARAMS, INVALID_REQUEST, Id, Kind, METHOD_NOT_FOUND, Message, PARSE_ERROR};
use crate::mcp::messages::{InitializeParams, InitializeResult};
use crate::mcp::{self, LATEST_VERSION, STRUCTURED_SINCE, method};
use crate::server::access_log::LogLine;
use crate::server::auth::{self, Caller};
use crate::server::methods::{self, answer, authorize_calls, encode};
use crate::server::sessions::Sessions;
use crate::server::snapshot::Live;
use crate::server::stateless;
use crate::server::watch::Shared;
use crate::server::wellknown;

/// Largest request body.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Messages in one JSON-RPC batch at most (protocol versions before 2025-06-18).
pub const MAX_BATCH: usize = 32;
/// Bytes of replies one batch may produce; requests past it get an error each, so a batch of
/// `tools/list` over a large spec cannot multiply the catalogue in memory.
pub const MAX_BATCH_REPLY_BYTES: usize = 4 * 1024 * 1024;

pub struct AppState {
    pub shared: Arc<Shared>,
    /// Signs and checks session ids (no per-session memory).
    pub sessions: Sessions,
    /// `http://host:port` as clients reach us.
    pub base_url: String,
    pub path: String,
    /// Whether requests are logged.
    pub log: bool,
}

impl AppState {
    /// Origin and path of the endpoint as clients reach it: `server.public_url`, else the
    /// address `serve` listens on.
    pub fn public<'a>(&'a self, live: &'a Live) -> (&'a str, &'a str) {
        match &live.settings.public_url {
            Some((origin, path)) => (origin, path),
            None => (&self.base_url, &self.path),
        }
    }

    pub fn metadata_url(&self, live: &Live) -> String {
        let (origin, path) = self.public(live);
        format!("{origin}/.well-known/oauth-protected-resource{path}")
    }

    pub fn resource(&self, live: &Live) -> String {
        let (origin, path) = self.public(live);
        format!("{origin}{path}")
    }

    /// The endpoint on the address `serve` listens on.
    pub fn listening_url(&self) -> String {
        format!("{}{}", self.base_url, self.path)
    }
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/mcp", get(handle_get).post(handle_post).delete(handle_delete))
        .route("/.well-known/oauth-protected-resource", get(wellknown::metadata))
        .route("/.well-known/oauth-protected-resource/mcp", get(wellknown::metadata))
        .route("/.well-known/jwks.json", get(wellknown::jwks))
        .route("/healthz", get(crate::server::health::healthz))
        .route("/readyz", get(crate::server::health::readyz))
        .route("/metrics", get(crate::server::health::metrics))
        .fallback(|| async { (StatusCode::NOT_FOUND, axum::Json(json!({"error": "not found"}))) })
        .layer(axum::middleware::from_fn_with_state(Arc::clone(&state), crate::server::access_log::layer))
        .with_state(state)
}

pub fn json_response(status: StatusCode, value: &Value) -> Response {
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], value.to_string()).into_response()
}

/// Origin must be loopback or configured (DNS-rebinding protection; transport spec §Security).
fn origin_allowed(live: &Live, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else { return true };
    let Ok(origin) = origin.to_str() else { return false };
    if live.settings.allowed_origins.iter().any(|o| o == "*" || o.eq_ignore_ascii_case(origin)) {
        return true;
    }
    match url::Url::parse(origin) {
        Ok(url) => {
            matches!(url.host(), Some(url::Host::Domain("localhost")))
                || matches!(url.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
                || matches!(url.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
        }
        Err(_) => false,
    }
}

pub(crate) fn plain_error(status: StatusCode, id: Id, code: i64, message: &str) -> Response {
    json_response(status, &serde_json::to_value(Message::error(id, code, message)).unwrap_or_default())
}

/// Common gate for every `/mcp` request: Origin, then authentication.
async fn gate(state: &AppState, live: &Live, headers: &HeaderMap, query: Option<&str>) -> Result<Caller, Response> {
    if !origin_allowed(live, headers) {
        let mut response = plain_error(StatusCode::FORBIDDEN, Id::Null, INVALID_REQUEST, "Origin not allowed");
        response.extensions_mut().insert(crate::server::access_log::Refused("origin_not_allowed".into()));
        return Err(response);
    }
    let caller = auth::authenticate(live, headers, query)
        .await
        .map_err(|refusal| auth::refusal_response(live, &refusal, &state.metadata_url(live)))?;
    crate::server::rate_limit::admit(&state.shared.limiter, live.settings.rate_limit.as_ref(), &caller)?;
    Ok(caller)
}

/// Check the session of a non-initialize request: signed by a key of this profile, for this
/// caller, not expired or ended here.
fn check_session(state: &AppState, live: &Live, headers: &HeaderMap, owner: &str) -> Result<(String, &'static str), Response> {
    let Some(id) = headers.get(mcp::SESSION_HEADER).and_then(|v| v.to_str().ok()) else {
        return Err(plain_error(
            StatusCode::BAD_REQUEST,
            Id::Null,
            INVALID_REQUEST,
            "missing Mcp-Session-Id header; send initialize first",
        ));
    };
    match state.sessions.check(&live.session_keys, id, owner) {
        Some(version) => Ok((id.to_owned(), version)),
        None => Err(plain_error(StatusCode::NOT_FOUND, Id::Null, INVALID_REQUEST, "unknown or expired session; initialize again")),
    }
}

fn accepts(headers: &HeaderMap) -> (bool, bool) {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("*/*").to_ascii_lowercase();
    let any = accept.contains("*/*");
    (any || accept.contains("application/json") || accept.contains("application/*"), any || accept.contains("text/event-stream"))
}

async fn handle_get(State(state): State<Arc<AppState>>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let live = state.shared.get();
    let mut log = LogLine::new("GET");
    let response = match gate(&state, &live, &headers, query.as_deref()).await {
        Err(r) => r,
        // We never send server-initiated messages, so there is no stream to offer.
        Ok(caller) => {
            log.client = caller.client_id;
            (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "POST, DELETE")]).into_response()
        }
    };
    log.finish(state.log, response)
}

async fn handle_delete(State(state): State<Arc<AppState>>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let live = state.shared.get();
    let mut log = LogLine::new("DELETE");
    let response = match gate(&state, &live, &headers, query.as_deref()).await {
        Err(r) => r,
        // The stateless revision has no sessions to end.
        Ok(_) if stateless::is_modern_header(&headers) => (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "POST")]).into_response(),
        Ok(caller) => {
            log.client = caller.client_id.clone();
            match check_session(&state, &live, &headers, &caller.client_id) {
                Err(r) => r,
                Ok((id, _)) => {
                    state.sessions.end(&id);
                    StatusCode::NO_CONTENT.into_response()
                }
            }
        }
    };
    log.finish(state.log, response)
}

async fn handle_post(State(state): State<Arc<AppState>>, headers: HeaderMap, RawQuery(query): RawQuery, body: Body) -> Response {
    let live = state.shared.get();
    let mut log = LogLine::new("POST");
    let response = post(&state, &live, &headers, query.as_deref(), body, &mut log).await;
    log.finish(state.log, response)
}

/// The request body: at most [`MAX_BODY_BYTES`] (413), complete within `timeout` (408 — hyper's
/// head timeout stops at the head, and a client that announces a body and never sends it
/// would otherwise hold the connection and its task for good).
async fn read_body(body: Body, timeout: Duration) -> Result<bytes::Bytes, Response> {
    use http_body_util::BodyExt;
    let limited = http_body_util::Limited::new(body, MAX_BODY_BYTES);
    match tokio::time::timeout(timeout, limited.collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            Err(plain_error(StatusCode::PAYLOAD_TOO_LARGE, Id::Null, INVALID_REQUEST, &format!("body larger than {MAX_BODY_BYTES} bytes")))
        }
        Ok(Err(_)) => Err(plain_error(StatusCode::BAD_REQUEST, Id::Null, INVALID_REQUEST, "cannot read the request body")),
        Err(_) => {
            let mut r = plain_error(StatusCode::REQUEST_TIMEOUT, Id::Null, INVALID_REQUEST, "the request body did not arrive in time");
            r.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            Err(r)
        }
    }
}

async fn post(state: &AppState, live: &Live, headers: &HeaderMap, query: Option<&str>, body: Body, log: &mut LogLine) -> Response {
    let caller = match gate(state, live, headers, query).await {
        Ok(caller) => caller,
        Err(r) => return r,
    };
    log.client = caller.client_id.clone();
    let (json_ok, sse_ok) = accepts(headers);
    if !json_ok && !sse_ok {
        return plain_error(
            StatusCode::NOT_ACCEPTABLE,
            Id::Null,
            INVALID_REQUEST,
            "Accept must include application/json or text/event-stream",
        );
    }
    // Only now the body: a caller that is refused above never makes us buffer (or wait for) it.
    let body = match read_body(body, live.settings.body_timeout).await {
        Ok(body) => body,
        Err(r) => return r,
    };
    let use_sse = sse_ok && !json_ok;
    let parsed: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return plain_error(StatusCode::BAD_REQUEST, Id::Null, PARSE_ERROR, &format!("invalid JSON: {e}")),
    };
    let batch = parsed.is_array();
    let raw_messages = match parsed {
        Value::Array(items) if items.len() > MAX_BATCH => {
            return plain_error(
                StatusCode::BAD_REQUEST,
                Id::Null,
                INVALID_REQUEST,
                &format!("batch of {} messages; at most {MAX_BATCH} are allowed", items.len()),
            );
        }
        Value::Array(items) if !items.is_empty() => items,
        Value::Array(_) => return plain_error(StatusCode::BAD_REQUEST, Id::Null, INVALID_REQUEST, "empty batch"),
        single => vec![single],
    };
    let mut messages = Vec::with_capacity(raw_messages.len());
    for raw in raw_messages {
        let message = match serde_json::from_value::<Message>(raw) {
            Ok(m) => m,
            Err(_) => return plain_error(StatusCode::BAD_REQUEST, Id::Null, INVALID_REQUEST, "not a JSON-RPC 2.0 message"),
        };
        if let Kind::Invalid(why) = message.kind() {
            return plain_error(StatusCode::BAD_REQUEST, Id::Null, INVALID_REQUEST, why);
        }
        messages.push(message);
    }

    // Protocol 2026-07-28: one message, no session, version and capabilities in `_meta`.
    if stateless::is_modern(headers, &messages) {
        if batch {
            return plain_error(
                StatusCode::BAD_REQUEST,
                Id::Null,
                INVALID_REQUEST,
                "batching is not supported in protocol version 2026-07-28",
            );
        }
        let message = messages.into_iter().next().unwrap_or_default();
        return stateless::serve(state, live, &caller, headers, message, use_sse, log).await;
    }

    // initialize: alone, no session yet.
    if let Some(init) = messages.iter().find(|m| m.method.as_deref() == Some(method::INITIALIZE)) {
        log.rpc = method::INITIALIZE.into();
        if batch {
            return plain_error(StatusCode::BAD_REQUEST, Id::Null, INVALID_REQUEST, "initialize must not be part of a batch");
        }
        let Some(id) = init.id.clone().filter(|_| init.kind() == Kind::Request) else {
            return plain_error(StatusCode::BAD_REQUEST, Id::Null, INVALID_REQUEST, "initialize must be a request");
        };
        let params: InitializeParams = match init.params_as() {
            Ok(p) => p,
            Err(e) => {
                return reply(vec![encode(&Message::error(id, INVALID_PARAMS, format!("invalid initialize params: {e}")))], false, use_sse);
            }
        };
        log.note_client_info(init.params.as_ref().and_then(|p| p.get("clientInfo")));
        let version = if mcp::is_supported(&params.protocol_version) { params.protocol_version.as_str() } else { LATEST_VERSION };
        let session_id = state.sessions.issue(&live.session_keys[0], version, &caller.client_id);
        let result = InitializeResult {
            protocol_version: version.to_owned(),
            capabilities: methods::capabilities(),
            server_info: methods::server_info(live),
            instructions: Some(methods::instructions(live)),
        };
        let mut response = reply(vec![encode(&Message::result(id, result))], false, use_sse);
        if let Ok(v) = HeaderValue::from_str(&session_id) {
            response.headers_mut().insert(mcp::SESSION_HEADER, v);
        }
        return response;
    }

    let (_, session_version) = match check_session(state, live, headers, &caller.client_id) {
        Ok(s) => s,
        Err(r) => return r,
    };
    if let Some(v) = headers.get(mcp::VERSION_HEADER) {
        match v.to_str() {
            Ok(v) if mcp::is_supported(v) => {}
            _ => return plain_error(StatusCode::BAD_REQUEST, Id::Null, INVALID_REQUEST, "unsupported MCP-Protocol-Version"),
        }
    }
    // Versions compare as dates.
    if batch && session_version >= STRUCTURED_SINCE {
        return plain_error(
            StatusCode::BAD_REQUEST,
            Id::Null,
            INVALID_REQUEST,
            &format!("batching is not supported in protocol version {session_version}"),
        );
    }
    if let Err(refusal) = authorize_calls(state, live, &caller, &messages, log) {
        return refusal;
    }
    let structured = session_version >= STRUCTURED_SINCE;
    // Replies are kept encoded: their size is what the budget counts, and a `tools/list` page
    // never exists as a second, cloned tree.
    let mut replies: Vec<String> = Vec::new();
    let mut reply_bytes = 0;
    for message in messages {
        if !message.is_request() {
            if let Some(method) = &message.method {
                log.rpc = method.clone();
            }
            continue; // notifications and responses: accepted, nothing to say
        }
        let id = message.id.clone().unwrap_or(Id::Null);
        let method = message.method.as_deref().unwrap_or("");
        log.rpc = method.to_owned();
        log.note_meta(message.params.as_ref());
        if reply_bytes > MAX_BATCH_REPLY_BYTES {
            replies.push(encode(&Message::error(
                id,
                INVALID_REQUEST,
                format!("batch reply too large (over {MAX_BATCH_REPLY_BYTES} bytes); send this request on its own"),
            )));
            continue;
        }
        let encoded = match method {
            method::PING => encode(&Message::result(id, json!({}))),
            _ => match answer(live, &caller, &message, structured, false, log).await {
                Some(encoded) => encoded,
                None => encode(&Message::error(id, METHOD_NOT_FOUND, format!("Method not found: {}", crate::validate::printable(method)))),
            },
        };
        reply_bytes += encoded.len();
        replies.push(encoded);
    }
    if replies.is_empty() {
        return StatusCode::ACCEPTED.into_response();
    }
    reply(replies, batch, use_sse)
}

/// A JSON body (one message, or an array for a batch), or one SSE event per message.
pub(crate) fn reply(messages: Vec<String>, batch: bool, sse: bool) -> Response {
    if sse {
        let mut body = String::new();
        for m in &messages {
            body.push_str("event: message\ndata: ");
            body.push_str(m);
            body.push_str("\n\n");
        }
        return (StatusCode::OK, [(header::CONTENT_TYPE, "text/event-stream"), (header::CACHE_CONTROL, "no-cache")], body).into_response();
    }
    let payload = if batch { format!("[{}]", messages.join(",")) } else { messages.into_iter().next().unwrap_or_default() };
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], payload).into_response()
}
