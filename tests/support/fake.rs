//! Fake HTTP servers on `127.0.0.1:0`, each on its own runtime thread and stopped when dropped:
//! [`Fake::app`] runs any axum router (a JWKS host, a downstream REST API), [`Fake::start`]
//! answers every request with one handler and records them all, and [`FakeMcp`] is an MCP
//! server with knobs — JSON or SSE replies, sessions that vanish, paginated lists — for the
//! client tests that need a server to misbehave in a precise way.

use std::convert::Infallible;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// A port nothing listens on: bound, then released.
pub fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// One request a fake server received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).map(|v| v.to_str().unwrap_or("<binary>").to_owned())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The JSON-RPC method of a POSTed message ("" for anything else).
    pub fn rpc(&self) -> String {
        self.json().get("method").and_then(Value::as_str).unwrap_or("").to_owned()
    }
}

type Handler = dyn Fn(&Recorded) -> Response + Send + Sync;
/// What the fake's one route shares: the request record and the handler.
type FakeState = (Arc<Mutex<Vec<Recorded>>>, Arc<Handler>);

/// An HTTP server on `127.0.0.1:0` on a runtime thread of its own, stopped when dropped.
pub struct Fake {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// `http://127.0.0.1:PORT/mcp`
    pub url: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Fake {
    /// Run `app` on `127.0.0.1:0` (requests are not recorded).
    pub fn app(app: axum::Router) -> Fake {
        Self::serve(app, Arc::new(Mutex::new(Vec::new())))
    }

    /// Answer every request with `handler`, recording each one before it is answered.
    pub fn start(handler: impl Fn(&Recorded) -> Response + Send + Sync + 'static) -> Fake {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let state: FakeState = (Arc::clone(&requests), handler);
        Self::serve(axum::Router::new().fallback(record).with_state(state), requests)
    }

    fn serve(app: axum::Router, requests: Arc<Mutex<Vec<Recorded>>>) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = stopped.await;
                    })
                    .await;
            });
        });
        let base = format!("http://127.0.0.1:{port}");
        Fake { url: format!("{base}/mcp"), base, requests, stop: Some(stop), thread: Some(thread) }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    /// Requests to `path` only.
    pub fn requests_to(&self, path: &str) -> Vec<Recorded> {
        self.requests().into_iter().filter(|r| r.path == path).collect()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // A client may still hold a connection open (an SSE stream); do not wait for it.
        drop(self.thread.take());
    }
}

async fn record(
    axum::extract::State((requests, handler)): axum::extract::State<FakeState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let recorded = Recorded { method: method.to_string(), path: uri.path().to_owned(), headers, body: body.to_vec() };
    // Record before answering: once the client has its answer, the test sees the request.
    requests.lock().unwrap().push(recorded.clone());
    handler(&recorded)
}

/// A JSON reply.
pub fn json_reply(status: StatusCode, value: &Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], value.to_string()).into_response()
}

/// An SSE reply the awkward way real servers send it: an empty priming event (`id: 0`, no
/// data), a comment, a server notification the client must skip, then `message` itself cut
/// into pieces in the middle of a field and of the JSON, with CRLF line ends — each piece a
/// separate body chunk, the stream yielding to the runtime between them so they go out in
/// separate writes.
pub fn sse_reply(message: &Value) -> Response {
    let text = message.to_string();
    let (a, b) = text.split_at(text.len() / 2);
    let chunks: Vec<String> = vec![
        "id: 0\ndata:\n\n".into(),
        ": keep-alive\n\n".into(),
        format!(
            "event: message\ndata: {}\n\n",
            json!({"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": "working"}})
        ),
        "event: mes".into(),
        format!("sage\r\nid: 1\r\ndata: {a}"),
        format!("{b}\r"),
        "\n\r\n".into(),
    ];
    sse_chunks(chunks)
}

/// `text/event-stream` made of these chunks, one write each.
pub fn sse_chunks(chunks: Vec<String>) -> Response {
    use futures_util::StreamExt;
    let stream = futures_util::stream::iter(chunks).then(|chunk| async move {
        tokio::task::yield_now().await;
        Ok::<_, Infallible>(Bytes::from(chunk))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(stream))
        .expect("response")
}

/// A JSON-RPC result for request `id`.
pub fn rpc_result(id: &Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

/// A fake MCP server with knobs; `start` runs it.
#[derive(Clone)]
pub struct FakeMcp {
    /// The protocol version `initialize` answers (None: the one asked for).
    pub version: Option<String>,
    /// `tools/list` pages; page i>0 is asked for with cursor `page-i`.
    pub pages: Vec<Vec<Value>>,
    /// Prompts (and the prompts capability) when set.
    pub prompts: Option<Vec<Value>>,
    /// The `tools/call` result for the call's params.
    pub call: Arc<dyn Fn(&Value) -> Value + Send + Sync>,
    /// Answer requests with SSE instead of JSON.
    pub sse: bool,
    /// Forget the session (404) at the first request after the first `initialize`'s notification.
    pub forget_session_once: bool,
    /// Requests not to the MCP path go here (e.g. a token endpoint).
    pub other: Option<Arc<Handler>>,
}

impl Default for FakeMcp {
    fn default() -> Self {
        FakeMcp {
            version: None,
            pages: vec![vec![tool("echo", "Echo the arguments back")]],
            prompts: None,
            call: Arc::new(|params| text_result(&params.get("arguments").cloned().unwrap_or(json!({})).to_string())),
            sse: false,
            forget_session_once: false,
            other: None,
        }
    }
}

/// A tool descriptor with an object schema.
pub fn tool(name: &str, description: &str) -> Value {
    json!({"name": name, "description": description, "inputSchema": {"type": "object", "properties": {}}})
}

/// A tool result with one text block.
pub fn text_result(text: &str) -> Value {
    json!({"content": [{"type": "text", "text": text}], "isError": false})
}

impl FakeMcp {
    pub fn start(self) -> Fake {
        let sessions = AtomicUsize::new(0);
        let forgot = AtomicBool::new(false);
        Fake::start(move |req| {
            if req.path != "/mcp" {
                return match &self.other {
                    Some(other) => other(req),
                    None => json_reply(StatusCode::NOT_FOUND, &json!({"error": "not found"})),
                };
            }
            match req.method.as_str() {
                "DELETE" => return StatusCode::NO_CONTENT.into_response(),
                "POST" => {}
                _ => return StatusCode::METHOD_NOT_ALLOWED.into_response(),
            }
            let message = req.json();
            let method = message.get("method").and_then(Value::as_str).unwrap_or("");
            let Some(id) = message.get("id").cloned() else {
                return StatusCode::ACCEPTED.into_response();
            };
            if method == "initialize" {
                let n = sessions.fetch_add(1, Ordering::SeqCst) + 1;
                let asked = message.pointer("/params/protocolVersion").and_then(Value::as_str).unwrap_or("");
                let version = self.version.clone().unwrap_or_else(|| asked.to_owned());
                let mut capabilities = json!({"tools": {}});
                if self.prompts.is_some() {
                    capabilities["prompts"] = json!({});
                }
                let reply = rpc_result(
                    &id,
                    json!({"protocolVersion": version, "capabilities": capabilities, "serverInfo": {"name": "fake", "version": "1"}}),
                );
                let mut response = self.reply(&reply);
                response.headers_mut().insert("mcp-session-id", format!("session-{n}").parse().unwrap());
                return response;
            }
            // As the SDKs' handshake-era servers do: no session, no request (this is what a
            // dual-era client's `server/discover` probe meets).
            if req.header("mcp-session-id").is_none() {
                return json_reply(
                    StatusCode::BAD_REQUEST,
                    &json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32600, "message": "Bad Request: No valid session ID provided"}}),
                );
            }
            if self.forget_session_once && !forgot.swap(true, Ordering::SeqCst) {
                return json_reply(
                    StatusCode::NOT_FOUND,
                    &json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32001, "message": "Session not found"}}),
                );
            }
            let params = message.get("params").cloned().unwrap_or(Value::Null);
            let result = match method {
                "tools/list" => {
                    let page = match params.get("cursor").and_then(Value::as_str) {
                        None => 0,
                        Some(c) => c.strip_prefix("page-").and_then(|n| n.parse::<usize>().ok()).unwrap_or(usize::MAX),
                    };
                    let Some(tools) = self.pages.get(page) else {
                        return self.reply(&json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32602, "message": "invalid cursor"}}));
                    };
                    let mut result = json!({"tools": tools});
                    if page + 1 < self.pages.len() {
                        result["nextCursor"] = json!(format!("page-{}", page + 1));
                    }
                    result
                }
                "prompts/list" => json!({"prompts": self.prompts.clone().unwrap_or_default()}),
                "tools/call" => (self.call)(&params),
                other => {
                    return self.reply(
                        &json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": format!("Method not found: {other}")}}),
                    );
                }
            };
            self.reply(&rpc_result(&id, result))
        })
    }

    fn reply(&self, message: &Value) -> Response {
        if self.sse { sse_reply(message) } else { json_reply(StatusCode::OK, message) }
    }
}

/// A protocol 2026-07-28 server (no handshake, no session): `server/discover` (the server named
/// `modern-fake` in the result's `_meta`), `tools/list` with `query` — whose `region` argument
/// is mirrored into an `Mcp-Param-Region` header — and `broken`, whose `x-mcp-header`
/// annotation is invalid (a number), and `tools/call` answering `ok`; any other method is 404.
pub fn modern_fake() -> Fake {
    Fake::start(|req| {
        let id = req.json()["id"].clone();
        let result = match req.rpc().as_str() {
            "server/discover" => json!({"resultType": "complete", "supportedVersions": ["2026-07-28"], "capabilities": {"tools": {}},
                "_meta": {"io.modelcontextprotocol/serverInfo": {"name": "modern-fake", "version": "2"}}, "ttlMs": 0, "cacheScope": "public"}),
            "tools/list" => json!({"resultType": "complete", "ttlMs": 0, "cacheScope": "private", "tools": [
                {"name": "query", "inputSchema": {"type": "object", "properties": {
                    "region": {"type": "string", "x-mcp-header": "Region"}, "sql": {"type": "string"}}}},
                {"name": "broken", "inputSchema": {"type": "object", "properties": {"n": {"type": "number", "x-mcp-header": "N"}}}},
            ]}),
            "tools/call" => json!({"resultType": "complete", "content": [{"type": "text", "text": "ok"}], "isError": false}),
            _ => {
                return json_reply(StatusCode::NOT_FOUND, &json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": "no"}}));
            }
        };
        json_reply(StatusCode::OK, &rpc_result(&id, result))
    })
}
