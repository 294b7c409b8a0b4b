//! `mcpgen bridge`, the stdio server MCP hosts launch: the official MCP Python SDK's stdio
//! client drives it against `mcpgen serve` and against a server built with the same SDK (JSON
//! and SSE replies, log notifications and a server request in the middle of a call, a
//! notification on the server's GET stream); a session
//! keeps working through `remint-all`, answers a revoked token with a JSON-RPC error and
//! recovers once a new one is minted, re-initializes when the server forgets the session, and
//! delivers every reply still in flight at EOF before ending the session. With OAuth client
//! credentials from a real authorization server (oidc-provider) issuing short-lived tokens, it
//! asks for about one token per lifetime and one for 20 concurrent calls.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::peers::{OidcProvider, free_port, python, run_python};
use support::*;

/// A running `mcpgen bridge`, spoken to as a host would: one JSON-RPC message per line.
struct Bridge {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<Value>,
    /// Messages read while waiting for another.
    early: Vec<Value>,
    log: Arc<Log>,
    /// The thread reading stderr: joined before the log is read whole.
    stderr_reader: Option<std::thread::JoinHandle<()>>,
}

impl Bridge {
    fn start(cmd: Cmd) -> Bridge {
        let mut child = cmd.spawn_piped();
        let stdin = child.stdin.take();
        let (log, stderr_reader) = Log::collect(child.stderr.take().expect("stderr"));
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("stdout carries only JSON-RPC ({e}): {line:?}"));
                if tx.send(value).is_err() {
                    return;
                }
            }
        });
        Bridge { child, stdin, lines, early: Vec::new(), log, stderr_reader: Some(stderr_reader) }
    }

    fn send(&mut self, message: Value) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{message}").expect("write to the bridge");
        stdin.flush().expect("flush");
    }

    /// The reply to request `id` (other messages are kept).
    #[track_caller]
    fn reply(&mut self, id: i64) -> Value {
        if let Some(i) = self.early.iter().position(|m| m["id"] == id && m.get("method").is_none()) {
            return self.early.remove(i);
        }
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let message = self.lines.recv_timeout(left).unwrap_or_else(|e| panic!("no reply to {id} ({e}); stderr:\n{}", self.log.text()));
            if message["id"] == id && message.get("method").is_none() {
                return message;
            }
            self.early.push(message);
        }
    }

    #[track_caller]
    fn request(&mut self, id: i64, method: &str, params: Value) -> Value {
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        self.reply(id)
    }

    #[track_caller]
    fn initialize(&mut self) -> Value {
        let reply = self.request(
            0,
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test-host", "version": "1"}}),
        );
        assert!(reply.get("result").is_some(), "{reply}; stderr:\n{}", self.log.text());
        self.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        reply
    }

    /// tools/call getOrder ord-1001 as request `id`.
    #[track_caller]
    fn call(&mut self, id: i64) -> Value {
        self.request(id, "tools/call", json!({"name": "getOrder", "arguments": {"orderId": "ord-1001"}}))
    }

    #[track_caller]
    fn assert_call_works(&mut self, id: i64) {
        let reply = self.call(id);
        assert_eq!(reply["result"]["structuredContent"]["id"], "ord-1001", "{reply}; stderr:\n{}", self.log.text());
    }

    /// Close stdin; the exit code and everything on stderr.
    fn finish(mut self) -> (Option<i32>, String, Vec<Value>) {
        drop(self.stdin.take());
        let status = self.child.wait().expect("wait for the bridge");
        // The process has exited, but its last stderr lines may still be on their way to the
        // reader: read to the end before looking.
        if let Some(reader) = self.stderr_reader.take() {
            let _ = reader.join();
        }
        let rest: Vec<Value> = self.early.drain(..).chain(self.lines.iter()).collect();
        (status.code(), self.log.text(), rest)
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `mcpgen --root ROOT bridge ARGS…` for the profile of `p`.
fn bridge(p: &Profile, args: &[&str]) -> Bridge {
    Bridge::start(p.env.cmd(&["bridge"]).args(args))
}

/// A server built with the MCP Python SDK (`tests/peers/mcp_server.py`), killed when dropped.
struct SdkServer {
    child: Child,
    url: String,
    /// Its stderr (the SDK logs each request, and a traceback when a session ends with its
    /// GET stream open — the SDK's own noise).
    _log: Arc<Log>,
}

impl SdkServer {
    fn start(mode: &str) -> SdkServer {
        let script = support::peers::inputs_dir().join("mcp_server.py");
        let mut child = std::process::Command::new(python())
            .arg(&script)
            .arg(mode)
            .env("NO_PROXY", "*")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start mcp_server.py");
        let (log, _) = Log::collect(child.stderr.take().expect("stderr"));
        let url = first_line(child.stdout.take().expect("stdout")).filter(|l| l.starts_with("http://127.0.0.1:"));
        let Some(url) = url else {
            let _ = child.kill();
            panic!("mcp_server.py printed no URL; stderr:\n{}", log.text());
        };
        SdkServer { child, url, _log: log }
    }
}

impl Drop for SdkServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Python SDK's stdio client launching `mcpgen bridge ARGS…` and calling `tool`.
async fn sdk_through_bridge(env: &Env, tool: &str, arguments: Value, args: &[&str]) -> Value {
    let mut argv: Vec<String> = vec![tool.into(), arguments.to_string(), BIN.into(), "--root".into(), env.root().display().to_string()];
    argv.push("bridge".into());
    argv.extend(args.iter().map(|a| a.to_string()));
    tokio::task::spawn_blocking(move || {
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        run_python("mcp_stdio_client.py", &argv)
    })
    .await
    .expect("python client")
}

#[tokio::test]
async fn the_python_sdk_stdio_client_calls_serve_through_the_bridge() {
    let p = Profile::sample();
    let s = p.serve(&[]);
    let report = sdk_through_bridge(&p.env, "getOrder", json!({"orderId": "ord-1001"}), &["p", "--url", &s.url]).await;
    assert_eq!(report["server_name"], "mcpgen");
    assert_eq!(report["tools"], json!(["getOrders", "getOrder", "getProducts"]), "{report}");
    assert_eq!(report["call"]["is_error"], false, "{report}");
    assert_eq!(report["call"]["structured"]["id"], "ord-1001", "{report}");
    // mcpgen serve speaks protocol 2026-07-28: the bridge answered the SDK's initialize from
    // server/discover and relayed the rest statelessly — no handshake, no session to end.
    let lines = s.requests_until(0, "tools/call");
    let joined = lines.join("\n");
    assert!(joined.contains("server/discover"), "{joined}");
    assert!(joined.contains("tools/call getOrder client=svc-p 200"), "{joined}");
    assert!(!joined.contains("initialize"), "{joined}");
    s.assert_never_logged(&[&p.token()]);
}

#[tokio::test]
async fn the_python_sdk_stdio_client_reaches_an_sdk_server_with_json_replies() {
    let server = SdkServer::start("json");
    let env = Env::new();
    let report = sdk_through_bridge(&env, "echo", json!({"text": "hello"}), &["--url", &server.url]).await;
    assert_eq!(report["server_name"], "sdk-server");
    assert_eq!(report["tools"], json!(["echo", "chatty", "announce"]));
    assert_eq!(report["call"]["text"], json!(["hello"]), "{report}");
    let report = sdk_through_bridge(&env, "chatty", json!({}), &["--url", &server.url]).await;
    assert_eq!(report["call"]["text"], json!(["no roots in json mode"]), "{report}");
}

#[tokio::test]
async fn sse_replies_carry_notifications_and_a_server_request_to_the_host() {
    let server = SdkServer::start("sse");
    let env = Env::new();
    let report = sdk_through_bridge(&env, "chatty", json!({}), &["--url", &server.url, "-H", "X-Test: yes"]).await;
    assert_eq!(report["call"]["is_error"], false, "{report}");
    assert_eq!(report["logs"], json!(["working"]), "the log notification before the result reached the host: {report}");
    assert_eq!(report["roots_asked"], 1, "the server's roots/list request reached the host: {report}");
    assert_eq!(report["call"]["text"], json!(["project"]), "the host's answer reached the server: {report}");
    // A notification outside any request travels on the server's GET stream.
    let report = sdk_through_bridge(&env, "announce", json!({}), &["--url", &server.url]).await;
    assert_eq!(report["list_changed"], true, "{report}");
}

#[tokio::test]
async fn a_session_survives_remint_all_and_recovers_after_a_revocation() {
    let p = Profile::sample();
    let s = p.serve(&[]);
    p.mint("bot", &["orders.read"]);
    let mut b = bridge(&p, &["p", "--url", &s.url, "--sa-token", "bot"]);
    b.initialize();
    b.assert_call_works(1);

    // Rotation with no grace: the old key stops working at once in serve.
    let old = p.token_named("bot");
    p.run_ok(&["remint-all", "p"]);
    s.wait_for_status(&Auth::sa(&old), 401, "the pre-rotation token").await;
    b.assert_call_works(2);
    assert_ne!(p.token_named("bot"), old);

    // Revoked mid-session: a JSON-RPC error that says so, and the bridge stays up.
    p.run_ok(&["sa-revoke", "p", "--name", "bot"]);
    let reply = b.call(3);
    let message = reply["error"]["message"].as_str().unwrap_or_else(|| panic!("an error reply: {reply}"));
    assert!(message.contains("bot") && (message.contains("revoked") || message.contains("no token")), "{message}");
    let reply = b.request(4, "tools/list", json!({}));
    assert!(reply["error"]["message"].is_string(), "{reply}");

    // A new token under the same name: the same session goes on.
    p.mint("bot", &["orders.read"]);
    b.assert_call_works(5);
    let (code, stderr, _) = b.finish();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("hint: "), "a hint on stderr: {stderr}");
    assert!(stderr.contains("requests go through again"), "{stderr}");
    assert_clean_stderr(&stderr);
    s.assert_never_logged(&[&old]);
}

#[tokio::test]
async fn an_expired_token_at_start_is_answered_not_fatal() {
    let p = Profile::sample();
    let s = p.serve(&[]);
    // The primary's claims say it expired an hour ago.
    let mut claims = p.claims();
    claims["exp"] = json!(now() - 3600);
    let expired = p.forge_claims(claims);
    std::fs::write(p.dir().join("sa/token.jwt"), &expired).unwrap();
    let mut b = bridge(&p, &["p", "--url", &s.url, "--sa-token", "default"]);
    let reply = b.request(
        0,
        "initialize",
        json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "h", "version": "1"}}),
    );
    let message = reply["error"]["message"].as_str().unwrap_or_else(|| panic!("an error reply: {reply}"));
    assert!(message.contains("expired"), "{message}");
    p.run_ok(&["sa-token", "p", "--name", "default", "--force"]);
    b.initialize();
    b.assert_call_works(1);
    let (code, stderr, _) = b.finish();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains(&expired), "{stderr}");
}

#[tokio::test]
async fn a_forgotten_session_is_initialized_again_transparently() {
    // A handshake-era server (refusing the stateless probe) that forgets the session at the
    // first request after initialize.
    let p = Profile::sample();
    let fake = FakeMcp { forget_session_once: true, ..FakeMcp::default() }.start();
    let mut b = bridge(&p, &["p", "--url", &fake.url]);
    let init = b.initialize();
    assert_eq!(init["result"]["serverInfo"]["name"], "fake", "{init}");
    let reply = b.request(1, "tools/call", json!({"name": "echo", "arguments": {"x": 1}}));
    assert_eq!(reply["result"]["content"][0]["text"], r#"{"x":1}"#, "{reply}");
    let (code, stderr, rest) = b.finish();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("forgot the session"), "{stderr}");
    assert!(rest.iter().all(|m| m["id"] != init["id"] || m == &init), "the replayed initialize's reply is not passed on: {rest:?}");
    // (The GET streams the bridge tries after each initialize come at no fixed place.)
    let seen: Vec<(String, String, Option<String>)> =
        fake.requests().iter().filter(|r| r.method != "GET").map(|r| (r.method.clone(), r.rpc(), r.header("mcp-session-id"))).collect();
    let s = |n: u8| Some(format!("session-{n}"));
    assert_eq!(
        seen,
        [
            ("POST".into(), "server/discover".into(), None),
            ("POST".into(), "initialize".into(), None),
            ("POST".into(), "notifications/initialized".into(), s(1)),
            ("POST".into(), "tools/call".into(), s(1)),
            ("POST".into(), "initialize".into(), None),
            ("POST".into(), "notifications/initialized".into(), s(2)),
            ("POST".into(), "tools/call".into(), s(2)),
            // EOF ends the session.
            ("DELETE".into(), "".into(), s(2)),
        ],
        "{seen:?}"
    );
}

#[tokio::test]
async fn eof_delivers_every_reply_in_flight_before_exiting() {
    let p = Profile::sample();
    let s = p.serve(&[]);
    let mut b = bridge(&p, &["p", "--url", &s.url]);
    b.initialize();
    for id in 1..=20 {
        b.send(json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "getOrders", "arguments": {}}}));
    }
    b.send(json!("not a message"));
    let (code, stderr, rest) = b.finish();
    assert_eq!(code, Some(0), "{stderr}");
    let mut ids: Vec<i64> = rest.iter().filter(|m| m.get("result").is_some()).filter_map(|m| m["id"].as_i64()).collect();
    ids.sort();
    assert_eq!(ids, (1..=20).collect::<Vec<_>>(), "{rest:?}");
    assert!(rest.iter().any(|m| m["id"].is_null() && m["error"]["code"] == -32600), "{rest:?}");
    // Every call reached the server (statelessly: there is no session for EOF to end).
    let calls = s.stop().lines().filter(|l| l.contains("tools/call getOrders") && l.contains(" 200 ")).count();
    assert_eq!(calls, 20);
}

#[test]
fn bad_flags_and_profiles_fail_at_once() {
    let env = Env::new();
    assert_refused(&env.run(&["bridge", "nope"]), 2, &["nope"]);
    assert_refused(&env.run(&["bridge"]), 2, &["--url"]);
    assert_refused(&env.run(&["bridge", "--url", "ftp://x"]), 2, &["--url"]);
}

/// The token requests oidc-provider has answered (its `grant.success` log lines).
fn grants(idp: &OidcProvider) -> usize {
    idp.log.lines().iter().filter(|l| l.starts_with("grant.success")).count()
}

#[tokio::test]
async fn oauth_tokens_are_fetched_once_per_lifetime_and_once_for_concurrent_calls() {
    // Tokens live 4 s; the bridge refreshes them at half their life (the buffer is longer).
    let config = json!({"access_token_ttl": 4, "clients": [{"client_id": "bridge-client", "client_secret": "bridge-secret"}]});
    let idp = tokio::task::spawn_blocking(move || OidcProvider::start(&config)).await.unwrap();
    let p = Profile::sample();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/mcp");
    p.edit_sa(|sa| {
        sa.insert("sso_mode".into(), json!(true));
        sa.insert("public_key".into(), Value::Null);
        sa.insert("jwks_uri".into(), json!(format!("{}/jwks", idp.issuer)));
        sa.insert("issuer".into(), json!(idp.issuer));
        sa.insert("audience".into(), json!(url));
    });
    let s = Server::start(p.env.cmd(&["serve", "p", "--bind", "127.0.0.1", "--port", &port.to_string()]));
    let file = p.env.dir.path().join("oauth.yaml");
    std::fs::write(
        &file,
        format!(
            "client_id: bridge-client\nclient_secret: bridge-secret\ntoken_url: {}/token\nscopes: [orders.read, products.read]\ntoken_cache_buffer_seconds: 60\n",
            idp.issuer
        ),
    )
    .unwrap();
    let mut b = Bridge::start(p.env.cmd(&["bridge", "--url", &url, "--oauth", &file.display().to_string()]));
    b.initialize();
    assert_eq!(grants(&idp), 1, "one token for the handshake; provider log:\n{}", idp.log.text());

    // Calls for 6 s, one every 100 ms: tokens are reused until due, not fetched per call.
    let started = Instant::now();
    let mut id = 1;
    while started.elapsed() < Duration::from_secs(6) {
        b.assert_call_works(id);
        id += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    let fetched = grants(&idp);
    assert!(id > 30, "{id} calls");
    assert!((3..=6).contains(&fetched), "{fetched} token requests for {id} calls over 6 s of 4 s tokens refreshed at 2 s");

    // Once the cached token is due, 20 concurrent calls share one new token.
    let before = grants(&idp);
    std::thread::sleep(Duration::from_millis(2100));
    for n in 0..20 {
        b.send(json!({"jsonrpc": "2.0", "id": 1000 + n, "method": "tools/call", "params": {"name": "getOrders", "arguments": {}}}));
    }
    for n in 0..20 {
        let reply = b.reply(1000 + n);
        assert!(reply.get("result").is_some(), "{reply}");
    }
    assert_eq!(grants(&idp) - before, 1, "one token request for 20 concurrent calls");
    let (code, stderr, _) = b.finish();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains("bridge-secret"), "{stderr}");
    drop(s);
}

#[tokio::test]
async fn a_stateless_server_is_relayed_statelessly() {
    let fake = modern_fake();
    let p = Profile::sample();
    let mut b = bridge(&p, &["p", "--url", &fake.url]);
    let init = b.initialize();
    assert_eq!(init["result"]["serverInfo"]["name"], "modern-fake", "{init}");
    assert_eq!(init["result"]["protocolVersion"], "2025-06-18", "the host's version, answered by the bridge");
    assert_eq!(b.request(1, "ping", json!({}))["result"], json!({}));
    let listed = b.request(2, "tools/list", json!({}));
    let names: Vec<&str> = listed["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["query"], "{listed}");
    let called = b.request(3, "tools/call", json!({"name": "query", "arguments": {"region": "eu-west"}}));
    assert_eq!(called["result"]["content"][0]["text"], "ok", "{called}");
    let (code, stderr, _) = b.finish();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("leaving out tool broken"), "{stderr}");

    let requests = fake.requests();
    let rpcs: Vec<String> = requests.iter().map(|r| format!("{} {}", r.method, r.rpc())).collect();
    assert_eq!(rpcs, ["POST server/discover", "POST tools/list", "POST tools/call"], "no initialize, ping, notification, GET or DELETE");
    let call = &requests[2];
    assert_eq!(call.header("mcp-protocol-version").as_deref(), Some("2026-07-28"));
    assert_eq!((call.header("mcp-method").as_deref(), call.header("mcp-name").as_deref()), (Some("tools/call"), Some("query")));
    assert_eq!(call.header("mcp-param-region").as_deref(), Some("eu-west"));
    let meta = &call.json()["params"]["_meta"];
    assert_eq!(meta["io.modelcontextprotocol/clientInfo"]["name"], "test-host", "the host's identity: {meta}");
    assert_eq!(meta["io.modelcontextprotocol/protocolVersion"], "2026-07-28");
}

#[tokio::test]
async fn a_short_rate_limit_is_waited_out_once_and_a_long_one_answered_with_a_hint() {
    let p = Profile::sample();
    // Two a second, burst 1: the bridge's first request (server/discover) passes, the call
    // waits 1 s and passes.
    p.edit_config(|doc| doc["security"]["rate_limit"] = json!({"requests_per_minute": 120, "burst": 1}));
    let s = p.serve(&[]);
    let mut b = bridge(&p, &["p", "--url", &s.url]);
    b.initialize();
    b.assert_call_works(1);
    let lines = s.log.wait_for(0, |l| l.contains("tools/call getOrder client=svc-p 200"));
    assert!(lines.iter().any(|l| l.contains("client=svc-p 429")), "it was limited first: {lines:?}");
    drop(b);
    drop(s);

    // One a minute: too long to wait; the host gets an error and stderr a hint, the bridge goes on.
    p.edit_config(|doc| doc["security"]["rate_limit"] = json!({"requests_per_minute": 1, "burst": 1}));
    let s = p.serve(&[]);
    let mut b = bridge(&p, &["p", "--url", &s.url]);
    b.initialize();
    let reply = b.call(1);
    let message = reply["error"]["message"].as_str().unwrap_or_else(|| panic!("{reply}"));
    assert!(message.contains("rate limit"), "{reply}");
    let (code, stderr, _) = b.finish();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("hint:") && stderr.contains("security.rate_limit"), "{stderr}");
}
