//! The one way tests start `mcpgen serve`: [`Server`] runs the real binary on `127.0.0.1:0`,
//! is ready once it prints its URL, collects its stderr (the access log) line by line, and is
//! killed when dropped. It speaks MCP with reqwest ([`Auth`], [`Session`], [`Reply`]).
//! [`Profile`] is a profile in its own temporary root with the edits the server tests make.
//! [`eventually`] is the one way to wait for a change a running server picks up by itself.

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::Child;
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};

use super::jwt::{self, now, sign};
use super::lib::{PrivateKey, init_tls};
use super::run::{Cmd, Env, Out, WAIT};

/// The service-account header of a default profile.
pub const SA_HEADER: &str = "X-OEMCP-SERVICEACCOUNT";
/// How long a hot-reloaded change may take to show (the server polls every 100 ms; a loaded
/// 2-core CI machine running every test binary at once needs far more slack than that).
pub const RELOAD_DEADLINE: Duration = Duration::from_secs(10);
/// How often [`eventually`] probes.
const POLL_EVERY: Duration = Duration::from_millis(20);

/// Probe until `probe` answers `Ok`, every 20 ms, failing after `deadline` with the last `Err`
/// it gave (what it saw instead). The one way a test waits for a change it cannot be told about.
#[track_caller]
pub fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut probe: F) -> impl Future<Output = T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let caller = std::panic::Location::caller();
    async move {
        let until = Instant::now() + deadline;
        loop {
            match probe().await {
                Ok(value) => return value,
                Err(last) if Instant::now() >= until => {
                    panic!("{caller}: timed out after {deadline:?} waiting for {what}; last seen: {last}")
                }
                Err(_) => tokio::time::sleep(POLL_EVERY).await,
            }
        }
    }
}

/// [`eventually`] for code outside an async runtime.
#[track_caller]
pub fn eventually_blocking<T>(what: &str, deadline: Duration, mut probe: impl FnMut() -> Result<T, String>) -> T {
    let until = Instant::now() + deadline;
    loop {
        match probe() {
            Ok(value) => return value,
            Err(last) if Instant::now() >= until => panic!("timed out after {deadline:?} waiting for {what}; last seen: {last}"),
            Err(_) => std::thread::sleep(POLL_EVERY),
        }
    }
}

/// A reqwest client for loopback tests: no proxy, bounded.
pub fn http_client() -> reqwest::Client {
    init_tls();
    reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(30)).build().expect("reqwest client")
}

/// Lines a child process wrote to stderr, as they arrive.
#[derive(Default)]
pub struct Log {
    lines: Mutex<Vec<String>>,
    changed: Condvar,
}

impl Log {
    /// Collect `pipe` line by line on a thread of its own until it closes.
    pub fn collect(pipe: impl std::io::Read + Send + 'static) -> (Arc<Log>, JoinHandle<()>) {
        let log = Arc::new(Log::default());
        let sink = Arc::clone(&log);
        let reader = std::thread::spawn(move || {
            let mut pipe = BufReader::new(pipe);
            let mut line = Vec::new();
            while pipe.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
                let text = String::from_utf8_lossy(&line);
                sink.push(text.trim_end_matches(['\n', '\r']).to_owned());
                line.clear();
            }
        });
        (log, reader)
    }

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

    /// Everything so far, one line each.
    pub fn text(&self) -> String {
        self.lines().iter().map(|l| format!("{l}\n")).collect()
    }

    /// Lines from index `from` up to and including the first one after `from` that matches,
    /// woken by each new line (no polling).
    #[track_caller]
    pub fn wait_for(&self, from: usize, what: impl Fn(&str) -> bool) -> Vec<String> {
        let deadline = Instant::now() + WAIT;
        let mut lines = self.lines.lock().unwrap();
        loop {
            if let Some(i) = lines.iter().skip(from).position(|l| what(l)) {
                return lines[from..=from + i].to_vec();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no matching log line after line {from}; the log:\n{}", lines.join("\n"));
            lines = self.changed.wait_timeout(lines, left).unwrap().0;
        }
    }
}

/// The first line a child prints on `pipe` (`None` if it prints none within the harness's
/// wait); the rest is drained so the child never blocks on a full pipe.
pub fn first_line(pipe: impl std::io::Read + Send + 'static) -> Option<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(pipe).lines();
        let _ = tx.send(lines.next().and_then(Result::ok));
        for _ in lines {}
    });
    rx.recv_timeout(WAIT).ok().flatten()
}

/// A running `mcpgen serve`, killed when dropped.
pub struct Server {
    child: Child,
    /// The MCP endpoint, e.g. `http://127.0.0.1:41234/mcp`.
    pub url: String,
    /// `http://127.0.0.1:41234`.
    pub base: String,
    /// Its stderr: warnings and the access log.
    pub log: Arc<Log>,
    stderr_reader: Option<JoinHandle<()>>,
    pub http: reqwest::Client,
}

impl Server {
    /// Start `cmd` (an `mcpgen serve` command line) and wait for the URL on its first stdout line.
    pub fn start(cmd: Cmd) -> Server {
        let mut child = cmd.spawn();
        let (log, stderr_reader) = Log::collect(child.stderr.take().expect("stderr pipe"));
        let first = first_line(child.stdout.take().expect("stdout pipe"));
        let Some(url) =
            first.filter(|l| (l.starts_with("http://127.0.0.1:") || l.starts_with("https://127.0.0.1:")) && l.ends_with("/mcp"))
        else {
            let _ = child.kill();
            let _ = child.wait();
            let _ = stderr_reader.join();
            panic!("mcpgen serve did not print its URL http://127.0.0.1:PORT/mcp; stderr:\n{}", log.text());
        };
        let base = url.trim_end_matches("/mcp").to_owned();
        Server { child, url, base, log, stderr_reader: Some(stderr_reader), http: http_client() }
    }

    /// The process id (of the program started: `serve`, or a shell that `exec`s it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.log.text()
    }

    /// Wait until a line of stderr contains `needle`.
    pub async fn wait_for_stderr(&self, needle: &str) {
        let log = Arc::clone(&self.log);
        let needle = needle.to_owned();
        if let Err(e) = tokio::task::spawn_blocking(move || log.wait_for(0, |l| l.contains(&needle))).await {
            std::panic::resume_unwind(e.into_panic());
        }
    }

    /// The request lines (method, rpc, tool, client, status) of the log from line `from` up to
    /// the first that names `rpc` (e.g. the `tools/list` or `tools/call` that ends a client run:
    /// against this server the client speaks the stateless revision, with no DELETE at the end).
    #[track_caller]
    pub fn requests_until(&self, from: usize, rpc: &str) -> Vec<String> {
        let needle = format!(" {rpc} ");
        self.log.wait_for(from, |l| l.contains(&needle))
    }

    /// Send SIGTERM (what a platform does to stop a service).
    pub fn sigterm(&self) {
        let status = std::process::Command::new("kill").args(["-TERM", &self.pid().to_string()]).status().expect("kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Wait for the server to exit by itself (after [`sigterm`](Self::sigterm)); its exit code
    /// and everything it wrote to stderr.
    pub fn wait_exit(mut self) -> (Option<i32>, String) {
        let child = &mut self.child;
        let status = eventually_blocking("the server to exit", WAIT, || match child.try_wait() {
            Ok(Some(status)) => Ok(status),
            Ok(None) => Err("still running".into()),
            Err(e) => Err(e.to_string()),
        });
        if let Some(reader) = self.stderr_reader.take() {
            let _ = reader.join();
        }
        (status.code(), self.stderr())
    }

    /// Stop the server and return everything it wrote to stderr (read to the end).
    pub fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.stderr_reader.take() {
            let _ = reader.join();
        }
        self.stderr()
    }

    /// Stop the server; none of `tokens` (nor a token's signature alone) may be in its output.
    pub fn assert_never_logged(self, tokens: &[&str]) {
        let log = self.stop();
        for token in tokens {
            assert!(!log.contains(token), "the server logged a token:\n{log}");
            if let Some((_, signature)) = token.rsplit_once('.')
                && signature.len() > 16
            {
                assert!(!log.contains(signature), "the server logged a token signature:\n{log}");
            }
        }
    }

    /// A POST to `/mcp` accepting JSON or SSE, as the transport spec asks of clients.
    pub fn post(&self) -> reqwest::RequestBuilder {
        self.http.post(&self.url).header("accept", "application/json, text/event-stream").header("content-type", "application/json")
    }

    /// `initialize` with `auth` headers, proposing `version`; the raw reply.
    pub async fn try_initialize(&self, auth: &Auth, version: &str) -> Reply {
        let body = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": version,
            "capabilities": {},
            "clientInfo": {"name": "serve-tests", "version": "0"},
        }});
        send(auth.apply(self.post()).json(&body)).await
    }

    /// `initialize` that must succeed, then `notifications/initialized`.
    pub async fn session(&self, auth: &Auth) -> Session {
        self.session_with(auth, "2025-11-25").await
    }

    pub async fn session_with(&self, auth: &Auth, version: &str) -> Session {
        let reply = self.try_initialize(auth, version).await;
        assert_eq!(reply.status, 200, "initialize: {reply:?}");
        let id = reply.header("mcp-session-id").expect("Mcp-Session-Id on initialize").to_owned();
        let negotiated = reply.json()["result"]["protocolVersion"].as_str().expect("protocolVersion").to_owned();
        let session = Session { id, version: negotiated, auth: auth.clone() };
        let done = self.notify(&session, "notifications/initialized").await;
        assert_eq!(done.status, 202, "notifications/initialized: {done:?}");
        session
    }

    /// A POST inside `session` with its headers.
    pub fn in_session(&self, session: &Session) -> reqwest::RequestBuilder {
        session.auth.apply(self.post()).header("mcp-session-id", &session.id).header("mcp-protocol-version", &session.version)
    }

    pub async fn notify(&self, session: &Session, method: &str) -> Reply {
        send(self.in_session(session).json(&json!({"jsonrpc": "2.0", "method": method}))).await
    }

    /// One JSON-RPC request in `session`; the raw reply.
    pub async fn request(&self, session: &Session, method: &str, params: Value) -> Reply {
        let id = rand::random::<u32>();
        send(self.in_session(session).json(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))).await
    }

    /// One JSON-RPC request that must get HTTP 200; the JSON-RPC response.
    pub async fn rpc(&self, session: &Session, method: &str, params: Value) -> Value {
        let reply = self.request(session, method, params).await;
        assert_eq!(reply.status, 200, "{method}: {reply:?}");
        reply.json()
    }

    /// `tools/call`; the HTTP reply.
    pub async fn call(&self, session: &Session, tool: &str, args: Value) -> Reply {
        self.request(session, "tools/call", json!({"name": tool, "arguments": args})).await
    }

    /// `tools/list` of every page; the tool names.
    pub async fn tool_names(&self, session: &Session) -> Vec<String> {
        let mut names = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let params = match &cursor {
                Some(c) => json!({"cursor": c}),
                None => json!({}),
            };
            let page = self.rpc(session, "tools/list", params).await;
            let tools = page["result"]["tools"].as_array().unwrap_or_else(|| panic!("tools/list: {page}"));
            names.extend(tools.iter().map(|t| t["name"].as_str().expect("tool name").to_owned()));
            match page["result"].get("nextCursor").and_then(Value::as_str) {
                Some(next) => cursor = Some(next.to_owned()),
                None => return names,
            }
        }
    }

    /// DELETE of `session`; the status.
    pub async fn delete_session(&self, session: &Session) -> u16 {
        send(session.auth.apply(self.http.delete(&self.url)).header("mcp-session-id", &session.id)).await.status
    }

    /// A protocol 2026-07-28 POST: `MCP-Protocol-Version`, `Mcp-Method` and, for `tools/call`,
    /// `Mcp-Name` mirrored from `body` (use [`modern_body`] to build it).
    pub fn modern_post(&self, auth: &Auth, body: &Value) -> reqwest::RequestBuilder {
        let mut builder =
            auth.apply(self.post()).header("mcp-protocol-version", MODERN).header("mcp-method", body["method"].as_str().unwrap_or(""));
        if let Some(name) = body["params"]["name"].as_str() {
            builder = builder.header("mcp-name", name);
        }
        builder.json(body)
    }

    /// One protocol 2026-07-28 request; the raw reply.
    pub async fn modern(&self, auth: &Auth, method: &str, params: Value) -> Reply {
        send(self.modern_post(auth, &modern_body(method, params))).await
    }

    /// Status of an `initialize` with `auth`: the cheapest probe of authentication.
    pub async fn auth_status(&self, auth: &Auth) -> u16 {
        self.try_initialize(auth, "2025-11-25").await.status
    }

    /// Wait until `initialize` with `auth` answers `status`.
    pub async fn wait_for_status(&self, auth: &Auth, status: u16, what: &str) {
        eventually(&format!("{what}: status {status}"), RELOAD_DEADLINE, || async {
            match self.auth_status(auth).await {
                got if got == status => Ok(()),
                got => Err(format!("status {got}; stderr:\n{}", self.stderr())),
            }
        })
        .await
    }

    /// GET `path` on the server's base URL.
    pub async fn get(&self, path: &str) -> Reply {
        send(self.http.get(format!("{}{path}", self.base))).await
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The stateless protocol revision.
pub const MODERN: &str = "2026-07-28";

/// A protocol 2026-07-28 request body: `params` plus the `_meta` every request carries.
pub fn modern_body(method: &str, params: Value) -> Value {
    let mut params = params;
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "serve-tests", "version": "0"},
    });
    json!({"jsonrpc": "2.0", "id": rand::random::<u32>(), "method": method, "params": params})
}

/// The `client=` field of each server log line.
pub fn clients_in(lines: &[String]) -> Vec<String> {
    lines.iter().filter_map(|l| l.split_whitespace().find_map(|w| w.strip_prefix("client=")).map(str::to_owned)).collect()
}

/// How a request authenticates: extra headers, or none.
#[derive(Debug, Clone, Default)]
pub struct Auth(pub Vec<(String, String)>);

impl Auth {
    pub fn none() -> Auth {
        Auth(Vec::new())
    }

    /// The default SA header with a bare token.
    pub fn sa(token: &str) -> Auth {
        Auth::header(SA_HEADER, token)
    }

    pub fn header(name: &str, value: &str) -> Auth {
        Auth(vec![(name.to_owned(), value.to_owned())])
    }

    pub fn apply(&self, mut builder: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        for (name, value) in &self.0 {
            builder = builder.header(name.as_str(), value.as_str());
        }
        builder
    }
}

#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    /// The negotiated protocol version.
    pub version: String,
    pub auth: Auth,
}

/// An HTTP reply read in full.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `WWW-Authenticate` challenge (must be present).
    #[track_caller]
    pub fn challenge(&self) -> String {
        self.header("www-authenticate").unwrap_or_else(|| panic!("no WWW-Authenticate: {self:?}")).to_owned()
    }
}

pub async fn send(builder: reqwest::RequestBuilder) -> Reply {
    let response = builder.send().await.expect("HTTP request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.text().await.expect("HTTP body");
    Reply { status, headers, body }
}

/// Header map from `(name, value)` pairs, for clients that take one.
pub fn header_map(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.insert(HeaderName::from_bytes(name.as_bytes()).expect("header name"), HeaderValue::from_str(value).expect("header value"));
    }
    map
}

/// A profile made by `mcpgen up` in its own temporary root, with the edits server tests make.
pub struct Profile {
    pub env: Env,
    pub name: String,
}

impl Profile {
    /// `mcpgen up --instance NAME EXTRA…` (the built-in sample spec unless EXTRA has `--spec`).
    pub fn new(name: &str, extra: &[&str]) -> Profile {
        let env = Env::new();
        let mut args = vec!["up", "--instance", name];
        args.extend_from_slice(extra);
        env.ok(&args);
        Profile { env, name: name.to_owned() }
    }

    /// The built-in sample: tools getOrders, getOrder, getProducts, getCustomers; the default
    /// token has orders.read and products.read only.
    pub fn sample() -> Profile {
        Profile::new("p", &[])
    }

    pub fn dir(&self) -> PathBuf {
        self.env.profile_dir(&self.name)
    }

    /// `mcpgen --root ROOT ARGS…`, which must succeed.
    pub fn run_ok(&self, args: &[&str]) -> Out {
        self.env.ok(args)
    }

    /// The stored JWT of token `name`.
    pub fn token_named(&self, name: &str) -> String {
        let file = if name == "default" { "sa/token.jwt".to_owned() } else { format!("sa/{name}.jwt") };
        std::fs::read_to_string(self.dir().join(file)).expect("token file").trim().to_owned()
    }

    /// The `default` token (scopes orders.read products.read for the sample).
    pub fn token(&self) -> String {
        self.token_named("default")
    }

    /// Mint (or replace) token `name` with `scopes`; its JWT.
    pub fn mint(&self, name: &str, scopes: &[&str]) -> String {
        self.env.mint(&self.name, name, scopes)
    }

    pub fn private_key(&self) -> PrivateKey {
        jwt::private_key(&self.env, &self.name)
    }

    pub fn public_pem(&self) -> String {
        std::fs::read_to_string(self.dir().join("sa/public.pem")).expect("public key")
    }

    pub fn profile_json(&self) -> Value {
        self.env.profile_json(&self.name)
    }

    /// Replace `profile.json` atomically (a hand edit; mcpgen itself goes through its journal).
    pub fn write_profile_json(&self, doc: &Value) {
        self.env.replace(&self.name, "profile.json", serde_json::to_string_pretty(doc).expect("encode profile").as_bytes());
    }

    pub fn config(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.config_path()).expect("config")).expect("config JSON")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir().join("mcp_server_config.json")
    }

    /// Replace `mcp_server_config.json` atomically, so a running server never reads half a file.
    pub fn write_config_text(&self, text: &str) {
        self.env.replace(&self.name, "mcp_server_config.json", text.as_bytes());
    }

    pub fn edit_config(&self, edit: impl FnOnce(&mut Value)) {
        let mut doc = self.config();
        edit(&mut doc);
        self.write_config_text(&serde_json::to_string_pretty(&doc).expect("encode config"));
    }

    /// Edit `security.authentication.service_account`.
    pub fn edit_sa(&self, edit: impl FnOnce(&mut serde_json::Map<String, Value>)) {
        self.edit_config(|doc| {
            let sa = doc.pointer_mut("/security/authentication/service_account").and_then(Value::as_object_mut).expect("service_account");
            edit(sa);
        });
    }

    /// Claims a token of this profile would carry, valid now, for forging variants.
    pub fn claims(&self) -> Value {
        let profile = self.profile_json();
        let now = now();
        json!({
            "iss": profile["issuer"],
            "sub": "forger",
            "client_id": "forger",
            "scope": "orders.read products.read",
            "aud": profile["server_url"],
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "jti": format!("jti-{}", rand::random::<u64>()),
        })
    }

    /// The kid of the profile's current key.
    pub fn kid(&self) -> String {
        self.private_key().public().thumbprint()
    }

    /// `header.claims` signed with the profile's own private key.
    pub fn forge(&self, header: Value, claims: Value) -> String {
        sign(&self.private_key(), &header, &claims)
    }

    /// A well-formed EdDSA token of this profile with these claims.
    pub fn forge_claims(&self, claims: Value) -> String {
        self.forge(json!({"alg": "EdDSA", "typ": "JWT", "kid": self.kid()}), claims)
    }

    /// `mcpgen serve NAME --bind 127.0.0.1 --port 0 EXTRA…`.
    pub fn serve(&self, extra: &[&str]) -> Server {
        self.env.serve(&self.name, extra)
    }
}
