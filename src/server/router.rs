//! The MCP Streamable HTTP server: `/mcp` (POST messages, GET for a stream we do not offer,
//! DELETE to end a session), the RFC 9728 protected-resource metadata, and the JWKS.
//!
//! Order of checks on `/mcp`: Origin (403), authentication (401/403), `Accept` (406), body
//! (400), session (400 missing / 404 unknown), `MCP-Protocol-Version` (400), then the method.
//!
//! Everything an unauthenticated or hostile client can hold is bounded:
//! - connections: at most `server.max_connections` (default 1024, read at start) are served at
//!   once — the rest wait in the kernel's accept queue; a connection that sends no request head
//!   for `server.idle_timeout_seconds` (default 30, also between kept-alive requests) is closed;
//!   a body is read only once the caller is authenticated, and one that does not arrive within
//!   `server.body_timeout_seconds` (default 10) is a 408.
//!   Accept errors (out of descriptors) back off from 10 ms to 1 s and are logged once a burst.
//! - batches: at most [`MAX_BATCH`] messages, none at all from protocol 2025-06-18 on (that
//!   version dropped JSON-RPC batching), every `tools/call` authorized before any runs, and the
//!   replies of one batch at most [`MAX_BATCH_REPLY_BYTES`] (later requests get an error each).
//! - sessions: [`MAX_SESSIONS`] in all and [`MAX_SESSIONS_PER_CLIENT`] per `client_id` (a
//!   client's own oldest goes first), idle ones forgotten after an hour, all in O(log n).
//! - the access log escapes everything taken from the request (method, tool, client).

// Early returns carry a ready `Response`; boxing it would only add an allocation per refusal.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::mcp::jsonrpc::{INVALID_PARAMS, INVALID_REQUEST, Id, METHOD_NOT_FOUND, Message, PARSE_ERROR};
use crate::mcp::{self as jsonrpc, LATEST_VERSION};
use crate::server::auth::{self, Caller, Refusal};
use crate::server::live::{Live, Shared, log_line};

/// Largest request body.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Largest request head (request line plus headers).
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Tools per `tools/list` page.
pub const PAGE_SIZE: usize = 100;
/// Sessions kept at most; the least recently used goes first.
pub const MAX_SESSIONS: usize = 10_000;
/// Sessions one `client_id` keeps at most; its own least recently used goes first, so one
/// token opening sessions in a loop never evicts anyone else's.
pub const MAX_SESSIONS_PER_CLIENT: usize = 100;
/// A session unused this long is forgotten.
const SESSION_IDLE: Duration = Duration::from_secs(3600);
/// Messages in one JSON-RPC batch at most (protocol versions before 2025-06-18).
pub const MAX_BATCH: usize = 32;
/// Bytes of replies one batch may produce; requests past it get an error each, so a batch of
/// `tools/list` over a large spec cannot multiply the catalogue in memory.
pub const MAX_BATCH_REPLY_BYTES: usize = 4 * 1024 * 1024;
/// First and longest pause after a failed `accept` (descriptors exhausted, …).
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

struct SessionInfo {
    version: String,
    client_id: String,
    last_seen: Instant,
    /// Position in the recency orders: bumped on every use.
    tick: u64,
}

/// Sessions by id, plus recency orders (global and per client) keyed by a use counter, so
/// eviction and expiry take the first entry instead of scanning under the lock.
#[derive(Default)]
struct Sessions {
    by_id: HashMap<String, SessionInfo>,
    by_tick: BTreeMap<u64, String>,
    per_client: HashMap<String, BTreeMap<u64, String>>,
    next_tick: u64,
}

impl Sessions {
    fn remove(&mut self, id: &str) {
        let Some(info) = self.by_id.remove(id) else { return };
        self.by_tick.remove(&info.tick);
        if let Some(own) = self.per_client.get_mut(&info.client_id) {
            own.remove(&info.tick);
            if own.is_empty() {
                self.per_client.remove(&info.client_id);
            }
        }
    }

    /// Forget sessions idle too long: they are the oldest, at the front of the order.
    fn expire(&mut self) {
        while let Some((_, id)) = self.by_tick.first_key_value() {
            let expired = self.by_id.get(id).is_none_or(|s| s.last_seen.elapsed() >= SESSION_IDLE);
            if !expired {
                break;
            }
            let id = id.clone();
            self.remove(&id);
        }
    }

    fn insert(&mut self, id: String, version: &str, client_id: &str) {
        self.expire();
        if let Some(oldest) =
            self.per_client.get(client_id).filter(|own| own.len() >= MAX_SESSIONS_PER_CLIENT).and_then(|own| own.first_key_value())
        {
            let oldest = oldest.1.clone();
            self.remove(&oldest);
        }
        if self.by_id.len() >= MAX_SESSIONS
            && let Some((_, oldest)) = self.by_tick.first_key_value()
        {
            let oldest = oldest.clone();
            self.remove(&oldest);
        }
        let tick = self.bump();
        self.by_tick.insert(tick, id.clone());
        self.per_client.entry(client_id.to_owned()).or_default().insert(tick, id.clone());
        self.by_id
            .insert(id, SessionInfo { version: version.to_owned(), client_id: client_id.to_owned(), last_seen: Instant::now(), tick });
    }

    /// The session's version if it exists, belongs to `client_id` and is not idle; marks it used.
    fn touch(&mut self, id: &str, client_id: &str) -> Option<String> {
        let session = self.by_id.get(id)?;
        // A session belongs to the client that created it.
        if session.client_id != client_id || session.last_seen.elapsed() >= SESSION_IDLE {
            return None;
        }
        let old = session.tick;
        let tick = self.bump();
        self.by_tick.remove(&old);
        self.by_tick.insert(tick, id.to_owned());
        if let Some(own) = self.per_client.get_mut(client_id) {
            own.remove(&old);
            own.insert(tick, id.to_owned());
        }
        let session = self.by_id.get_mut(id)?;
        session.tick = tick;
        session.last_seen = Instant::now();
        Some(session.version.clone())
    }

    fn bump(&mut self) -> u64 {
        self.next_tick += 1;
        self.next_tick
    }
}

pub struct AppState {
    shared: Arc<Shared>,
    sessions: Mutex<Sessions>,
    /// `http://host:port` as clients reach us.
    base_url: String,
    path: String,
    log: bool,
}

impl AppState {
    fn metadata_url(&self) -> String {
        format!("{}/.well-known/oauth-protected-resource{}", self.base_url, self.path)
    }

    fn resource(&self) -> String {
        format!("{}{}", self.base_url, self.path)
    }
}

/// A bound server, ready to run.
pub struct Server {
    listener: TcpListener,
    state: Arc<AppState>,
    pub addr: SocketAddr,
}

impl Server {
    /// Bind `addr` and prepare the routes. The watcher that reloads the profile starts with [`run`].
    pub async fn bind(shared: Arc<Shared>, addr: SocketAddr, log: bool) -> anyhow::Result<Server> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let host = match addr {
            SocketAddr::V4(a) if a.ip().is_unspecified() => "127.0.0.1".to_owned(),
            SocketAddr::V4(a) => a.ip().to_string(),
            SocketAddr::V6(a) if a.ip().is_unspecified() => "[::1]".to_owned(),
            SocketAddr::V6(a) => format!("[{}]", a.ip()),
        };
        let state = Arc::new(AppState {
            shared,
            sessions: Mutex::new(Sessions::default()),
            base_url: format!("http://{host}:{}", addr.port()),
            path: "/mcp".into(),
            log,
        });
        Ok(Server { listener, state, addr })
    }

    /// The MCP endpoint URL.
    pub fn url(&self) -> String {
        self.state.resource()
    }

    /// Serve until `shutdown` completes; in-flight requests get a few seconds to finish.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        self.state.shared.spawn_watcher();
        let app = router(Arc::clone(&self.state));
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });
        let mut connections = tokio::task::JoinSet::new();
        let mut stop = stop_rx.clone();
        let permits = Arc::new(tokio::sync::Semaphore::new(self.state.shared.get().settings.max_connections));
        let mut backoff = ACCEPT_BACKOFF_MIN;
        let mut failing = false;
        loop {
            // A permit first: at the cap, new connections wait in the kernel's queue instead of
            // costing a descriptor and a task each.
            let permit = tokio::select! {
                permit = Arc::clone(&permits).acquire_owned() => match permit { Ok(p) => p, Err(_) => break },
                _ = stopped(&mut stop) => break,
            };
            let accepted = tokio::select! {
                accepted = self.listener.accept() => accepted,
                _ = stopped(&mut stop) => break,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // EMFILE and friends: retrying at once would spin; pause, longer each time,
                    // and say so once per burst.
                    if !failing {
                        log_line(&format!("warning: cannot accept connections ({e}); backing off"));
                        failing = true;
                    }
                    drop(permit);
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stopped(&mut stop) => break,
                    }
                    backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                    continue;
                }
            };
            if failing {
                log_line("accepting connections again");
                failing = false;
            }
            backoff = ACCEPT_BACKOFF_MIN;
            let _ = stream.set_nodelay(true);
            let service = hyper_util::service::TowerToHyperService::new(app.clone());
            let mut stop = stop_rx.clone();
            let idle_timeout = self.state.shared.get().settings.idle_timeout;
            connections.spawn(async move {
                let _permit = permit;
                let mut builder = hyper::server::conn::http1::Builder::new();
                // max_buf_size alone is a soft limit: a head that arrives in one large read is
                // parsed whole, so the head size is also capped where it is parsed. (hyper's
                // default of 100 headers stays: setting it moves them to the heap.) The head
                // timeout also runs while a kept-alive connection waits for its next request,
                // so it is the idle timeout too.
                builder
                    .max_buf_size(MAX_HEAD_BYTES)
                    .max_header_size(MAX_HEAD_BYTES)
                    .header_read_timeout(idle_timeout)
                    .timer(hyper_util::rt::TokioTimer::new());
                let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                tokio::pin!(conn);
                tokio::select! {
                    _ = conn.as_mut() => {}
                    _ = stopped(&mut stop) => {
                        conn.as_mut().graceful_shutdown();
                        let _ = conn.await;
                    }
                }
            });
            // Reap finished connection tasks so the set does not grow.
            while connections.try_join_next().is_some() {}
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), async { while connections.join_next().await.is_some() {} }).await;
        Ok(())
    }
}

/// Completes once the stop flag is set (or its sender is gone).
async fn stopped(rx: &mut tokio::sync::watch::Receiver<bool>) {
    while !*rx.borrow_and_update() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/mcp", get(handle_get).post(handle_post).delete(handle_delete))
        .route("/.well-known/oauth-protected-resource", get(metadata))
        .route("/.well-known/oauth-protected-resource/mcp", get(metadata))
        .route("/.well-known/jwks.json", get(jwks))
        .fallback(|| async { (StatusCode::NOT_FOUND, axum::Json(json!({"error": "not found"}))) })
        .with_state(state)
}

/// RFC 9728 protected-resource metadata.
async fn metadata(State(state): State<Arc<AppState>>) -> Response {
    let live = state.shared.get();
    let sa = &live.settings.sa;
    let mut doc = json!({
        "resource": state.resource(),
        "bearer_methods_supported": sa.bearer_methods_supported,
        "scopes_supported": live.settings.scopes_supported,
        "resource_name": format!("mcpgen {}", live.profile),
    });
    let jwks_uri = match (&sa.jwks_uri, sa.mode) {
        (Some(uri), crate::config::Mode::Oauth) => uri.clone(),
        _ => format!("{}/.well-known/jwks.json", state.base_url),
    };
    doc["jwks_uri"] = json!(jwks_uri);
    let mut servers = sa.authorization_servers.clone();
    if servers.is_empty()
        && let Some(iss) = sa.issuer.as_deref().filter(|i| i.starts_with("https://") || i.starts_with("http://"))
    {
        servers.push(iss.to_owned());
    }
    if !servers.is_empty() {
        doc["authorization_servers"] = json!(servers);
    }
    for (key, value) in [
        ("resource_documentation", &sa.resource_documentation),
        ("resource_policy_uri", &sa.resource_policy_uri),
        ("revocation_endpoint", &sa.revocation_endpoint),
        ("introspection_endpoint", &sa.introspection_endpoint),
        ("client_id", &sa.client_id),
    ] {
        if let Some(value) = value {
            doc[key] = json!(value);
        }
    }
    // client_secret is configuration for the proxy, never published.
    json_response(StatusCode::OK, &doc)
}

/// The profile's public keys: current and those still in a grace period.
async fn jwks(State(state): State<Arc<AppState>>) -> Response {
    let live = state.shared.get();
    let keys: Vec<Value> = live.keys.iter().filter_map(|k| k.ed25519().map(|key| key.jwk())).collect();
    let mut response = json_response(StatusCode::OK, &json!({"keys": keys}));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=60"));
    response
}

fn json_response(status: StatusCode, value: &Value) -> Response {
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

/// Per-request facts for the access log.
struct LogLine {
    started: Instant,
    method: &'static str,
    rpc: String,
    tool: String,
    client: String,
}

impl LogLine {
    fn new(method: &'static str) -> Self {
        LogLine { started: Instant::now(), method, rpc: "-".into(), tool: "-".into(), client: "-".into() }
    }

    fn finish(self, state: &AppState, response: Response) -> Response {
        if state.log {
            log_line(&format!(
                "{} /mcp {} {} client={} {} {:.2}ms",
                self.method,
                crate::validate::printable(&self.rpc),
                crate::validate::printable(&self.tool),
                crate::validate::printable(&self.client),
                response.status().as_u16(),
                self.started.elapsed().as_secs_f64() * 1000.0
            ));
        }
        response
    }
}

fn plain_error(status: StatusCode, id: Id, code: i64, message: &str) -> Response {
    json_response(status, &serde_json::to_value(Message::error(id, code, message)).unwrap_or_default())
}

/// Common gate for every `/mcp` request: Origin, then authentication.
async fn gate(state: &AppState, live: &Live, headers: &HeaderMap, query: Option<&str>) -> Result<Caller, Response> {
    if !origin_allowed(live, headers) {
        return Err(plain_error(StatusCode::FORBIDDEN, Id::Null, INVALID_REQUEST, "Origin not allowed"));
    }
    auth::authenticate(live, headers, query).await.map_err(|refusal| auth::refusal_response(live, &refusal, &state.metadata_url()))
}

/// Look up the session of a non-initialize request.
fn check_session(state: &AppState, headers: &HeaderMap, caller: &Caller) -> Result<(String, String), Response> {
    let Some(id) = headers.get(jsonrpc::SESSION_HEADER).and_then(|v| v.to_str().ok()) else {
        return Err(plain_error(
            StatusCode::BAD_REQUEST,
            Id::Null,
            INVALID_REQUEST,
            "missing Mcp-Session-Id header; send initialize first",
        ));
    };
    let version = state.sessions.lock().unwrap_or_else(|p| p.into_inner()).touch(id, &caller.client_id);
    match version {
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
    log.finish(&state, response)
}

async fn handle_delete(State(state): State<Arc<AppState>>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let live = state.shared.get();
    let mut log = LogLine::new("DELETE");
    let response = match gate(&state, &live, &headers, query.as_deref()).await {
        Err(r) => r,
        Ok(caller) => {
            log.client = caller.client_id.clone();
            match check_session(&state, &headers, &caller) {
                Err(r) => r,
                Ok((id, _)) => {
                    state.sessions.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
                    StatusCode::NO_CONTENT.into_response()
                }
            }
        }
    };
    log.finish(&state, response)
}

async fn handle_post(State(state): State<Arc<AppState>>, headers: HeaderMap, RawQuery(query): RawQuery, body: Body) -> Response {
    let live = state.shared.get();
    let mut log = LogLine::new("POST");
    let response = post(&state, &live, &headers, query.as_deref(), body, &mut log).await;
    log.finish(&state, response)
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
        match serde_json::from_value::<Message>(raw) {
            Ok(m) if m.jsonrpc == "2.0" => messages.push(m),
            _ => return plain_error(StatusCode::BAD_REQUEST, Id::Null, INVALID_REQUEST, "not a JSON-RPC 2.0 message"),
        }
    }

    // initialize: alone, no session yet.
    if let Some(init) = messages.iter().find(|m| m.method.as_deref() == Some("initialize")) {
        log.rpc = "initialize".into();
        if batch {
            return plain_error(StatusCode::BAD_REQUEST, Id::Null, INVALID_REQUEST, "initialize must not be part of a batch");
        }
        let Some(id) = init.id.clone() else {
            return plain_error(StatusCode::BAD_REQUEST, Id::Null, INVALID_REQUEST, "initialize must be a request");
        };
        let requested = init.params.as_ref().and_then(|p| p.get("protocolVersion")).and_then(Value::as_str).unwrap_or("");
        let version = if jsonrpc::is_supported(requested) { requested } else { LATEST_VERSION };
        let session_id = new_session(state, version, &caller);
        let result = json!({
            "protocolVersion": version,
            "capabilities": {"tools": {"listChanged": false}},
            "serverInfo": {"name": "mcpgen", "title": format!("mcpgen {}", live.profile), "version": env!("CARGO_PKG_VERSION")},
            "instructions": format!("Tools of the {} API. Service-account scopes decide which tools you see.", live.profile),
        });
        let mut response = reply(vec![encode(&Message::result(id, result))], false, use_sse);
        if let Ok(v) = HeaderValue::from_str(&session_id) {
            response.headers_mut().insert(jsonrpc::SESSION_HEADER, v);
        }
        return response;
    }

    let (_, session_version) = match check_session(state, headers, &caller) {
        Ok(s) => s,
        Err(r) => return r,
    };
    if let Some(v) = headers.get(jsonrpc::VERSION_HEADER) {
        match v.to_str() {
            Ok(v) if jsonrpc::is_supported(v) => {}
            _ => return plain_error(StatusCode::BAD_REQUEST, Id::Null, INVALID_REQUEST, "unsupported MCP-Protocol-Version"),
        }
    }
    // Versions compare as dates.
    if batch && session_version.as_str() >= "2025-06-18" {
        return plain_error(
            StatusCode::BAD_REQUEST,
            Id::Null,
            INVALID_REQUEST,
            &format!("batching is not supported in protocol version {session_version}"),
        );
    }
    // Authorization of every call first: a refusal must not come after earlier calls of the
    // same batch already reached the downstream.
    for message in messages.iter().filter(|m| m.is_request() && m.method.as_deref() == Some("tools/call")) {
        let name = message.params.as_ref().and_then(|p| p.get("name")).and_then(Value::as_str).unwrap_or("");
        if live.tools.get(name).is_some() {
            let needed = live.settings.authorization.scopes_for(name);
            if !caller.has_all(needed) {
                log.rpc = "tools/call".into();
                log.tool = name.to_owned();
                return auth::refusal_response(live, &Refusal::InsufficientScope(needed.to_vec()), &state.metadata_url());
            }
        }
    }
    let structured = session_version.as_str() >= "2025-06-18";
    // Replies are kept encoded: their size is what the budget counts, and a `tools/list` page
    // never exists as a second, cloned tree.
    let mut replies: Vec<String> = Vec::new();
    let mut reply_bytes = 0;
    for message in messages {
        if !message.is_request() {
            continue; // notifications and responses: accepted, nothing to say
        }
        let id = message.id.clone().unwrap_or(Id::Null);
        let method = message.method.as_deref().unwrap_or("");
        log.rpc = method.to_owned();
        if reply_bytes > MAX_BATCH_REPLY_BYTES {
            replies.push(encode(&Message::error(
                id,
                INVALID_REQUEST,
                format!("batch reply too large (over {MAX_BATCH_REPLY_BYTES} bytes); send this request on its own"),
            )));
            continue;
        }
        let encoded = match method {
            "ping" => encode(&Message::result(id, json!({}))),
            "tools/list" => list_tools(live, &caller, id, message.params.as_ref()),
            "tools/call" => {
                let params = message.params.unwrap_or(Value::Null);
                let name = params.get("name").and_then(Value::as_str).unwrap_or("");
                log.tool = name.to_owned();
                let Some(tool) = live.tools.get(name) else {
                    replies.push(encode(&Message::error(
                        id,
                        INVALID_PARAMS,
                        format!("Unknown tool: {}", crate::validate::printable(name)),
                    )));
                    continue;
                };
                let args = match params.get("arguments") {
                    None | Some(Value::Null) => serde_json::Map::new(),
                    Some(Value::Object(map)) => map.clone(),
                    Some(_) => {
                        replies.push(encode(&Message::error(id, INVALID_PARAMS, "arguments must be an object")));
                        continue;
                    }
                };
                let result = live.tools.call(tool, &args, structured).await;
                encode(&Message::result(id, result))
            }
            other => encode(&Message::error(id, METHOD_NOT_FOUND, format!("Method not found: {}", crate::validate::printable(other)))),
        };
        reply_bytes += encoded.len();
        replies.push(encoded);
    }
    if replies.is_empty() {
        return StatusCode::ACCEPTED.into_response();
    }
    reply(replies, batch, use_sse)
}

fn encode(message: &Message) -> String {
    serde_json::to_string(message).unwrap_or_default()
}

fn new_session(state: &AppState, version: &str, caller: &Caller) -> String {
    let id = format!("{:032x}", rand::random::<u128>());
    state.sessions.lock().unwrap_or_else(|p| p.into_inner()).insert(id.clone(), version, &caller.client_id);
    id
}

/// `tools/list`: the tools the caller has the scopes for, a page at a time; the encoded reply,
/// serialized straight from the descriptors (no copy of the page as a JSON tree).
fn list_tools(live: &Live, caller: &Caller, id: Id, params: Option<&Value>) -> String {
    let start = match params.and_then(|p| p.get("cursor")) {
        None | Some(Value::Null) => 0,
        Some(Value::String(c)) => match c.parse::<usize>() {
            Ok(n) => n,
            Err(_) => return encode(&Message::error(id, INVALID_PARAMS, "invalid cursor")),
        },
        Some(_) => return encode(&Message::error(id, INVALID_PARAMS, "invalid cursor")),
    };
    let visible: Vec<&Value> = live
        .tools
        .tools
        .iter()
        .filter(|t| caller.has_all(live.settings.authorization.scopes_for(&t.op.name)))
        .map(|t| &t.descriptor)
        .collect();
    if start > visible.len() {
        return encode(&Message::error(id, INVALID_PARAMS, "invalid cursor"));
    }
    let end = (start + PAGE_SIZE).min(visible.len());

    #[derive(serde::Serialize)]
    struct Page<'a> {
        tools: &'a [&'a Value],
        #[serde(rename = "nextCursor", skip_serializing_if = "Option::is_none")]
        next_cursor: Option<String>,
    }
    #[derive(serde::Serialize)]
    struct Envelope<'a> {
        jsonrpc: &'static str,
        id: Id,
        result: Page<'a>,
    }
    let page = Page { tools: &visible[start..end], next_cursor: (end < visible.len()).then(|| end.to_string()) };
    serde_json::to_string(&Envelope { jsonrpc: "2.0", id, result: page }).unwrap_or_default()
}

/// A JSON body (one message, or an array for a batch), or one SSE event per message.
fn reply(messages: Vec<String>, batch: bool, sse: bool) -> Response {
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
