//! Shared harness for the loopback server tests (`tests/serve.rs`, `tests/rmcp_interop.rs`):
//! a profile in a temporary root made by the real binary, the real `mcpgen serve` started on
//! `127.0.0.1:0` (ready once it prints its URL), a reqwest client speaking MCP to it, token
//! forging with the profile's own key, and polling with a deadline for hot-reloaded changes.
//!
//! It lives in its own folder (not `tests/common/`) so it never collides with the CLI tests'
//! helpers; each test binary uses a different subset of it.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use mcpgen::keys::PrivateKey;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};

pub const BIN: &str = env!("CARGO_BIN_EXE_mcpgen");
pub const SA_HEADER: &str = "X-OEMCP-SERVICEACCOUNT";
/// How long a hot-reloaded change may take to show (the server polls every 100 ms; a loaded
/// 2-core CI machine running every test binary at once needs far more slack than that).
pub const RELOAD_DEADLINE: Duration = Duration::from_secs(10);
const POLL_EVERY: Duration = Duration::from_millis(20);
const READY_DEADLINE: Duration = Duration::from_secs(60);

/// Run `mcpgen --root ROOT ARGS…`.
pub fn mcpgen(root: &Path, args: &[&str]) -> Output {
    Command::new(BIN).arg("--root").arg(root).args(args).env_remove("MCPGEN_ROOT").output().expect("run mcpgen")
}

/// Like [`mcpgen`], and it must succeed; its stdout.
pub fn mcpgen_ok(root: &Path, args: &[&str]) -> String {
    let out = mcpgen(root, args);
    assert!(
        out.status.success(),
        "mcpgen {args:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A profile made by `mcpgen up` in its own temporary root.
pub struct Profile {
    pub root: tempfile::TempDir,
    pub name: String,
}

impl Profile {
    /// `mcpgen up --instance NAME EXTRA…` (the built-in sample spec unless EXTRA has `--spec`).
    pub fn new(name: &str, extra: &[&str]) -> Profile {
        let root = tempfile::tempdir().expect("temp root");
        let mut args = vec!["up", "--instance", name];
        args.extend_from_slice(extra);
        mcpgen_ok(root.path(), &args);
        Profile { root, name: name.to_owned() }
    }

    /// The built-in sample: tools getOrders, getOrder, getProducts, getCustomers; the default
    /// token has orders.read and products.read only.
    pub fn sample() -> Profile {
        Profile::new("p", &[])
    }

    pub fn dir(&self) -> PathBuf {
        self.root.path().join(&self.name)
    }

    pub fn run(&self, args: &[&str]) -> Output {
        mcpgen(self.root.path(), args)
    }

    pub fn run_ok(&self, args: &[&str]) -> String {
        mcpgen_ok(self.root.path(), args)
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
        let mut args = vec!["sa-token", self.name.as_str(), "--name", name, "--scopes"];
        args.extend_from_slice(scopes);
        self.run_ok(&args);
        self.token_named(name)
    }

    pub fn private_key(&self) -> PrivateKey {
        let pem = std::fs::read_to_string(self.dir().join("sa/private.pem")).expect("private key");
        PrivateKey::from_pem(&pem).expect("private key parses")
    }

    pub fn public_pem(&self) -> String {
        std::fs::read_to_string(self.dir().join("sa/public.pem")).expect("public key")
    }

    pub fn profile_json(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.dir().join("profile.json")).expect("profile.json")).expect("profile JSON")
    }

    /// Replace `profile.json` atomically (a hand edit; mcpgen itself goes through its journal).
    pub fn write_profile_json(&self, doc: &Value) {
        let tmp = self.dir().join(".profile.json.test-tmp");
        std::fs::write(&tmp, serde_json::to_string_pretty(doc).expect("encode profile")).expect("write profile");
        std::fs::rename(&tmp, self.dir().join("profile.json")).expect("rename profile");
    }

    pub fn config(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.config_path()).expect("config")).expect("config JSON")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir().join("mcp_server_config.json")
    }

    /// Replace `mcp_server_config.json` atomically (temporary file and rename, as an editor or
    /// mcpgen itself would), so a running server never reads half a file.
    pub fn write_config_text(&self, text: &str) {
        let tmp = self.dir().join(".mcp_server_config.json.test-tmp");
        std::fs::write(&tmp, text).expect("write config");
        std::fs::rename(&tmp, self.config_path()).expect("rename config");
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

    /// `mcpgen serve NAME --port 0 EXTRA…`.
    pub fn serve(&self, extra: &[&str]) -> Server {
        let mut args: Vec<&str> = vec!["serve", self.name.as_str(), "--port", "0"];
        args.extend_from_slice(extra);
        Server::start(self.root.path(), &args)
    }
}

/// Compact JWS of arbitrary JSON header and claims, EdDSA-signed with `key`.
pub fn sign(key: &PrivateKey, header: &Value, claims: &Value) -> String {
    let input = format!("{}.{}", B64URL.encode(header.to_string()), B64URL.encode(claims.to_string()));
    let der = key.to_der().expect("der");
    let signature =
        jsonwebtoken::crypto::sign(input.as_bytes(), &jsonwebtoken::EncodingKey::from_ed_der(&der), jsonwebtoken::Algorithm::EdDSA)
            .expect("sign");
    format!("{input}.{signature}")
}

/// A running `mcpgen serve`, killed when dropped.
pub struct Server {
    child: Child,
    /// The MCP endpoint, e.g. `http://127.0.0.1:41234/mcp`.
    pub url: String,
    /// `http://127.0.0.1:41234`.
    pub base: String,
    stderr: Arc<Mutex<String>>,
    stderr_reader: Option<std::thread::JoinHandle<()>>,
    pub http: reqwest::Client,
}

impl Server {
    /// Start `mcpgen --root ROOT ARGS…` and wait for the URL on its first stdout line.
    pub fn start(root: &Path, args: &[&str]) -> Server {
        mcpgen::net::init_tls();
        let mut child = Command::new(BIN)
            .arg("--root")
            .arg(root)
            .args(args)
            .env_remove("MCPGEN_ROOT")
            .env_remove("MCPGEN_TOKEN_CACHE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn mcpgen serve");
        let stderr = Arc::new(Mutex::new(String::new()));
        let stderr_reader = {
            let sink = Arc::clone(&stderr);
            let mut pipe = child.stderr.take().expect("stderr pipe");
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            })
        };
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout pipe");
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next().and_then(Result::ok));
            // Keep draining so the server never blocks on a full pipe.
            for _ in lines {}
        });
        let first = rx.recv_timeout(READY_DEADLINE).ok().flatten();
        let Some(url) = first.filter(|l| l.starts_with("http://")) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("mcpgen serve did not print its URL; stderr:\n{}", stderr.lock().unwrap());
        };
        let base = url.trim_end_matches("/mcp").to_owned();
        let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(30)).build().expect("reqwest client");
        Server { child, url, base, stderr, stderr_reader: Some(stderr_reader), http }
    }

    /// Everything the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Wait until stderr contains `needle`.
    pub async fn wait_for_stderr(&self, needle: &str) {
        let deadline = Instant::now() + RELOAD_DEADLINE;
        while !self.stderr().contains(needle) {
            assert!(Instant::now() < deadline, "stderr never contained {needle:?}:\n{}", self.stderr());
            tokio::time::sleep(POLL_EVERY).await;
        }
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

    /// `initialize` with `auth` headers, proposing `version`; the session.
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

    /// Status of an `initialize` with `auth`: the cheapest probe of authentication.
    pub async fn auth_status(&self, auth: &Auth) -> u16 {
        self.try_initialize(auth, "2025-11-25").await.status
    }

    /// Wait until `initialize` with `auth` answers `status`.
    pub async fn wait_for_status(&self, auth: &Auth, status: u16, what: &str) {
        let deadline = Instant::now() + RELOAD_DEADLINE;
        loop {
            let got = self.auth_status(auth).await;
            if got == status {
                return;
            }
            assert!(Instant::now() < deadline, "{what}: still {got}, expected {status}; stderr:\n{}", self.stderr());
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

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
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `WWW-Authenticate` challenge (must be present).
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

/// Poll `probe` every 20 ms until it returns true, failing after `deadline`.
pub async fn eventually<F, Fut>(what: &str, deadline: Duration, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = Instant::now() + deadline;
    loop {
        if probe().await {
            return;
        }
        assert!(Instant::now() < until, "timed out waiting for: {what}");
        tokio::time::sleep(POLL_EVERY).await;
    }
}
