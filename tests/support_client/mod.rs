//! Helpers for the `mcpgen client` tests: a temporary profile root, the real binary run as a
//! child process, `mcpgen serve --port 0` as a child (ready once it prints its URL, killed on
//! drop, its request log collected), and small in-process fake HTTP servers (axum on
//! `127.0.0.1:0`, own runtime on a background thread) that record every request and answer with
//! whatever a test needs — JSON or SSE replies, sessions that vanish, paginated lists.
//!
//! Named `support_client` so it cannot collide with other test helper modules in `tests/`.

#![allow(dead_code)]

use std::convert::Infallible;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_mcpgen");
/// The longest any test waits for a child or a log line (a slow, busy CI machine).
pub const WAIT: Duration = Duration::from_secs(60);
/// The service-account header of a default profile.
pub const SA_HEADER: &str = "x-oemcp-serviceaccount";

/// What a finished process left behind.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Panics with the whole output unless the exit code is `code`.
    #[track_caller]
    pub fn expect(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "expected exit code {code}\n--- stdout:\n{}\n--- stderr:\n{}", self.stdout, self.stderr);
        self
    }

    /// stderr as the one JSON object `--json-errors` prints.
    #[track_caller]
    pub fn error_json(&self) -> Value {
        let lines: Vec<&str> = self.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "expected one line of JSON on stderr, got:\n{}", self.stderr);
        serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("stderr is not JSON ({e}):\n{}", self.stderr))
    }
}

/// A command line for the binary, with an environment that does not leak from the test runner.
pub struct Cmd {
    command: Command,
    stdin: Option<Vec<u8>>,
}

impl Cmd {
    pub fn new(root: &Path) -> Cmd {
        let mut command = Command::new(BIN);
        command.arg("--root").arg(root);
        for var in ["SERVICE_ACCOUNT_JWT", "MCPGEN_ROOT", "RUST_LOG", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"] {
            command.env_remove(var);
        }
        // Loopback must never go through a proxy the runner may have configured.
        command.env("NO_PROXY", "*").env("no_proxy", "*");
        command.current_dir(root);
        Cmd { command, stdin: None }
    }

    pub fn arg(mut self, arg: impl AsRef<std::ffi::OsStr>) -> Cmd {
        self.command.arg(arg);
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.command.args(args);
        self
    }

    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Cmd {
        self.command.env(key, value);
        self
    }

    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Cmd {
        self.stdin = Some(input.into());
        self
    }

    pub fn run(mut self) -> Run {
        self.command.stdout(Stdio::piped()).stderr(Stdio::piped());
        self.command.stdin(if self.stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        let mut child = self.command.spawn().expect("cannot start mcpgen");
        if let Some(input) = self.stdin.take() {
            let mut pipe = child.stdin.take().expect("stdin pipe");
            pipe.write_all(&input).expect("cannot write stdin");
        }
        let output = child.wait_with_output().expect("cannot wait for mcpgen");
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// A temporary `--root` with profiles in it.
pub struct Root {
    dir: tempfile::TempDir,
}

impl Root {
    pub fn new() -> Root {
        Root { dir: tempfile::Builder::new().prefix("mcpgen-client-test-").tempdir().expect("tempdir") }
    }

    /// A root holding profile `name` made by `up` (default token scopes orders.read products.read).
    pub fn with_profile(name: &str) -> Root {
        let root = Root::new();
        root.ok(&["up", "--instance", name]);
        root
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn profile_dir(&self, name: &str) -> PathBuf {
        self.path().join(name)
    }

    pub fn cmd(&self) -> Cmd {
        Cmd::new(self.path())
    }

    /// `mcpgen --root ROOT ARGS…`, which must succeed; its stdout.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        let run = self.cmd().args(args).run();
        run.expect(0);
        run.stdout
    }

    /// A named token; its JWT.
    #[track_caller]
    pub fn token(&self, profile: &str, name: &str, scopes: &[&str]) -> String {
        let mut args = vec!["sa-token", profile, "--name", name, "--print"];
        if !scopes.is_empty() {
            args.push("--scopes");
            args.extend_from_slice(scopes);
        }
        let jwt = self.ok(&args).trim().to_owned();
        assert_eq!(jwt.split('.').count(), 3, "sa-token --print did not print a JWT: {jwt:?}");
        jwt
    }

    /// `mcpgen client ARGS…` (the caller adds the profile, if any).
    pub fn client(&self) -> Cmd {
        self.cmd().arg("client")
    }
}

/// The claims of a JWT, unverified (tests only look).
pub fn claims(jwt: &str) -> Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).expect("JWT payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).expect("base64url payload");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

/// A port nothing listens on: bound, then released.
pub fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// Lines a child process wrote to stderr, as they arrive.
#[derive(Default)]
pub struct Log {
    lines: Mutex<Vec<String>>,
    changed: Condvar,
}

impl Log {
    fn push(&self, line: String) {
        self.lines.lock().unwrap().push(line);
        self.changed.notify_all();
    }

    pub fn len(&self) -> usize {
        self.lines.lock().unwrap().len()
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Lines from index `from` up to and including the first one after `from` that matches.
    #[track_caller]
    pub fn wait_for(&self, from: usize, what: impl Fn(&str) -> bool) -> Vec<String> {
        let deadline = Instant::now() + WAIT;
        let mut lines = self.lines.lock().unwrap();
        loop {
            if let Some(i) = lines.iter().skip(from).position(|l| what(l)) {
                return lines[from..=from + i].to_vec();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no matching log line after {from}; the log:\n{}", lines.join("\n"));
            lines = self.changed.wait_timeout(lines, left).unwrap().0;
        }
    }
}

/// `mcpgen serve PROFILE --port 0 …` as a child process, killed on drop.
pub struct Served {
    child: Child,
    pub url: String,
    pub log: Arc<Log>,
}

impl Served {
    pub fn start(root: &Root, profile: &str, extra: &[&str]) -> Served {
        let mut child = Command::new(BIN)
            .arg("--root")
            .arg(root.path())
            .args(["serve", profile, "--bind", "127.0.0.1", "--port", "0"])
            .args(extra)
            .env_remove("MCPGEN_ROOT")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start mcpgen serve");
        let log = Arc::new(Log::default());
        let stderr = child.stderr.take().expect("stderr pipe");
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.push(line);
            }
        });
        let stdout = child.stdout.take().expect("stdout pipe");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next().and_then(Result::ok));
            // Keep draining so the server never blocks on a full pipe.
            for _ in lines {}
        });
        let url = match rx.recv_timeout(WAIT) {
            Ok(Some(url)) => url,
            other => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("mcpgen serve printed no URL ({other:?}); stderr:\n{}", log.lines().join("\n"));
            }
        };
        assert!(url.starts_with("http://127.0.0.1:") && url.ends_with("/mcp"), "unexpected URL line {url:?}");
        Served { child, url, log }
    }

    /// `http://127.0.0.1:PORT` without the path.
    pub fn base(&self) -> String {
        self.url.trim_end_matches("/mcp").to_owned()
    }

    /// The request lines (method, rpc, tool, client, status) of the server's log from `from`
    /// up to the DELETE that ends a client run.
    #[track_caller]
    pub fn requests_until_delete(&self, from: usize) -> Vec<String> {
        self.log.wait_for(from, |l| l.contains(" DELETE /mcp "))
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `client=` field of each server log line.
pub fn clients_in(lines: &[String]) -> Vec<String> {
    lines.iter().filter_map(|l| l.split_whitespace().find_map(|w| w.strip_prefix("client=")).map(str::to_owned)).collect()
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

/// An HTTP server on `127.0.0.1:0` answering every request with `handler`, recording them all.
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
    pub fn start(handler: impl Fn(&Recorded) -> Response + Send + Sync + 'static) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let state: FakeState = (Arc::clone(&requests), handler);
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                let app = axum::Router::new().fallback(record).with_state(state);
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
