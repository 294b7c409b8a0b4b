//! Resource bounds and output hygiene of `mcpgen serve` (security review, issue 7 items 3–5),
//! end to end against the real binary on `127.0.0.1:0`: body read timeout, connection cap and
//! accept back-off, JSON-RPC batch limits and up-front authorization, signed session ids,
//! dot-segment path parameters, nested YAML specs, hostile JWKS endpoints, and escaping of
//! untrusted text in the access log and tool descriptors.
//!
//! Server processes are found through `/proc` (their command line names the test's temporary
//! root), to read their memory high-water mark, CPU time and open descriptors. Every wait is a
//! poll with a deadline, never a fixed sleep used as synchronisation.

mod support;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Path as UrlPath;
use axum::routing::get;
use mcpgen::keys::PrivateKey;
use serde_json::{Value, json};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Spawn an axum app on 127.0.0.1:0 inside the test's runtime; its base URL.
async fn spawn_app(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

/// The pid of the `mcpgen serve` whose command line names `root`.
fn server_pid(root: &Path) -> u32 {
    let root = root.to_str().expect("utf-8 root");
    for entry in std::fs::read_dir("/proc").expect("/proc") {
        let entry = entry.expect("proc entry");
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let args: Vec<String> = cmdline.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        if args.iter().any(|a| a == root) && args.iter().any(|a| a == "serve") && args[0].ends_with("mcpgen") {
            return pid;
        }
    }
    panic!("no mcpgen serve process for {root}");
}

/// A `/proc/PID/status` field in kB (`VmHWM`, `VmRSS`).
fn status_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let line = status.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("no {field}"));
    line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect("kB value")
}

/// User plus system CPU time of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let after = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

fn addr(server: &Server) -> String {
    server.base.trim_start_matches("http://").to_owned()
}

/// A spec of `n` GET operations, each with a description of `pad` bytes.
fn padded_spec(n: usize, pad: usize) -> String {
    let mut paths = serde_json::Map::new();
    for i in 0..n {
        paths.insert(
            format!("/items{i:03}"),
            json!({"get": {"operationId": format!("getItem{i:03}"), "description": "d".repeat(pad),
                "responses": {"200": {"description": "ok", "content": {"application/json": {"example": {"i": i}}}}}}}),
        );
    }
    json!({"openapi": "3.1.0", "info": {"title": "Padded", "version": "1"}, "paths": paths}).to_string()
}

fn write_temp(text: &str, suffix: &str) -> tempfile::NamedTempFile {
    let file = tempfile::Builder::new().suffix(suffix).tempfile().expect("temp file");
    std::fs::write(file.path(), text).expect("write temp");
    file
}

// ---------------------------------------------------------------------------------------------
// Connections: body read timeout, connection cap, accept back-off
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_request_whose_body_never_arrives_is_answered_408_within_the_body_timeout() {
    let p = Profile::sample();
    p.edit_config(|c| c["server"]["body_timeout_seconds"] = json!(1));
    let s = p.serve(&[]);
    let mut stream = tokio::net::TcpStream::connect(addr(&s)).await.unwrap();
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAccept: application/json\r\n{SA_HEADER}: {}\r\nContent-Length: 100\r\n\r\n",
        p.token()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let mut reply = Vec::new();
    let mut buf = [0u8; 1024];
    // Read until the server answers or closes; today it holds the connection forever.
    let read = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => reply.extend_from_slice(&buf[..n]),
            }
            if reply.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server held a body-less request for 15 s");
    let text = String::from_utf8_lossy(&reply);
    assert!(text.starts_with("HTTP/1.1 408"), "expected 408: {text:?}");
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    // The server is fine afterwards.
    assert_eq!(s.auth_status(&Auth::sa(&p.token())).await, 200);
}

#[tokio::test]
async fn hundreds_of_idle_sockets_do_not_keep_a_legitimate_client_out() {
    let p = Profile::sample();
    // All on one address here, so the per-address share is lifted (it has a test of its own).
    p.edit_config(|c| c["server"]["max_connections_per_client"] = json!(1024));
    let s = p.serve(&[]);
    let mut idle = Vec::new();
    for _ in 0..300 {
        idle.push(tokio::net::TcpStream::connect(addr(&s)).await.unwrap());
    }
    let started = Instant::now();
    let session = s.session(&Auth::sa(&p.token())).await;
    assert_eq!(s.request(&session, "ping", json!({})).await.status, 200);
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    drop(idle);
}

#[tokio::test]
async fn open_connections_are_capped() {
    let p = Profile::sample();
    p.edit_config(|c| c["server"]["max_connections"] = json!(16));
    let s = p.serve(&[]);
    let pid = server_pid(&p.env.root());
    let baseline = open_fds(pid);
    let mut idle = Vec::new();
    for _ in 0..60 {
        idle.push(tokio::net::TcpStream::connect(addr(&s)).await.unwrap());
    }
    // Give the accept loop time to take whatever it will take, then look (a poll: the count only
    // grows while connections are being accepted).
    let mut last = 0;
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        last = last.max(open_fds(pid));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(last <= baseline + 16 + 2, "{last} descriptors open with 60 idle sockets (baseline {baseline}, cap 16)");
    drop(idle);
    // Once they are gone, a client is served again.
    eventually("served after the idle sockets closed", Duration::from_secs(10), || async {
        let served = tokio::time::timeout(Duration::from_secs(2), s.http.get(format!("{}/.well-known/jwks.json", s.base)).send())
            .await
            .is_ok_and(|r| r.is_ok_and(|r| r.status() == 200));
        if served { Ok(()) } else { Err("not served".to_string()) }
    })
    .await;
}

#[tokio::test]
async fn at_the_descriptor_limit_the_accept_loop_backs_off_instead_of_spinning() {
    let p = Profile::sample();
    // The server gets 64 descriptors; 100 sockets exhaust them.
    let bin = BIN;
    let root = &p.env.root().to_str().unwrap().to_owned();
    let script = format!("ulimit -n 64 && exec '{bin}' --root '{root}' serve p --port 0");
    let server = Server::start(Cmd::program("sh", &p.env.root()).args(["-c", &script]));
    let host = server.base.trim_start_matches("http://").to_owned();
    let pid = server.pid();

    let mut idle = Vec::new();
    for _ in 0..100 {
        idle.push(tokio::net::TcpStream::connect(&host).await.unwrap());
    }
    // Wait until the server is at its limit, then measure its CPU use over a second.
    eventually("server at its descriptor limit", Duration::from_secs(10), || async {
        let open = open_fds(pid);
        if open >= 60 { Ok(()) } else { Err(format!("{open} descriptors open")) }
    })
    .await;
    let before = cpu_ticks(pid);
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(1) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let used = cpu_ticks(pid) - before;
    let ticks_per_second = 100; // USER_HZ on Linux
    assert!(used < ticks_per_second / 5, "the accept loop used {used} ticks of CPU in one second at the descriptor limit");
    drop(idle);
    // Descriptors free again: a client is served.
    let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(2)).build().unwrap();
    eventually("served after the idle sockets closed", Duration::from_secs(40), || async {
        let served = http.get(format!("http://{host}/.well-known/jwks.json")).send().await.is_ok_and(|r| r.status() == 200);
        if served { Ok(()) } else { Err("not served".to_string()) }
    })
    .await;
    let log = server.stop();
    assert!(log.lines().filter(|l| l.contains("cannot accept")).count() <= 3, "one warning per burst:\n{log}");
}

// ---------------------------------------------------------------------------------------------
// JSON-RPC batches
// ---------------------------------------------------------------------------------------------

fn pings(n: usize) -> Value {
    Value::Array((0..n).map(|i| json!({"jsonrpc": "2.0", "id": i, "method": "ping"})).collect())
}

#[tokio::test]
async fn batches_are_capped_in_length() {
    let p = Profile::sample();
    let s = p.serve(&[]);
    let session = s.session_with(&Auth::sa(&p.token()), "2025-03-26").await;
    let ok = send(s.in_session(&session).json(&pings(32))).await;
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(ok.json().as_array().map(Vec::len), Some(32));
    let over = send(s.in_session(&session).json(&pings(33))).await;
    assert_eq!(over.status, 400, "{over:?}");
    assert_eq!(over.json()["error"]["code"], -32600, "{over:?}");
    assert!(over.body.contains("32"), "{over:?}");
}

#[tokio::test]
async fn batches_are_refused_from_protocol_2025_06_18_on() {
    let p = Profile::sample();
    let s = p.serve(&[]);
    for version in ["2025-06-18", "2025-11-25"] {
        let session = s.session_with(&Auth::sa(&p.token()), version).await;
        let reply = send(s.in_session(&session).json(&pings(2))).await;
        assert_eq!(reply.status, 400, "{version}: {reply:?}");
        let body = reply.json();
        assert_eq!(body["error"]["code"], -32600, "{body}");
        assert_eq!(body["error"]["message"], format!("batching is not supported in protocol version {version}"));
    }
    let old = s.session_with(&Auth::sa(&p.token()), "2025-03-26").await;
    assert_eq!(send(s.in_session(&old).json(&pings(2))).await.status, 200);
}

#[tokio::test]
async fn every_call_of_a_batch_is_authorized_before_any_runs() {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&hits);
    let app = Router::new().fallback(move || {
        let counter = Arc::clone(&counter);
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            axum::Json(json!({"ok": true}))
        }
    });
    let base = spawn_app(app).await;
    let p = Profile::sample();
    let s = p.serve(&["--downstream", &format!("{base}/api")]);
    let session = s.session_with(&Auth::sa(&p.token()), "2025-03-26").await;
    let batch = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "getOrders", "arguments": {}}},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "getCustomers", "arguments": {}}},
    ]);
    let reply = send(s.in_session(&session).json(&batch)).await;
    assert_eq!(reply.status, 403, "{reply:?}");
    assert_eq!(hits.load(Ordering::SeqCst), 0, "a downstream call ran before the batch was refused");
}

#[tokio::test]
async fn a_batch_of_tools_list_has_a_bounded_reply() {
    // 100 tools of ~10 KB each: one page is ~1 MB, so 32 pages would be ~32 MB.
    let spec = write_temp(&padded_spec(100, 10_000), ".json");
    let p = Profile::new("p", &["--spec", spec.path().to_str().unwrap()]);
    p.edit_config(|c| c["security"]["authorization"]["tools"] = json!({}));
    let s = p.serve(&[]);
    let session = s.session_with(&Auth::sa(&p.token()), "2025-03-26").await;
    let batch = Value::Array((0..32).map(|i| json!({"jsonrpc": "2.0", "id": i, "method": "tools/list"})).collect());
    let reply = send(s.in_session(&session).json(&batch)).await;
    assert_eq!(reply.status, 200, "{}", &reply.body[..reply.body.len().min(500)]);
    assert!(reply.body.len() <= 5 * 1024 * 1024, "a 32-message batch replied with {} bytes", reply.body.len());
    let replies = reply.json();
    let replies = replies.as_array().unwrap();
    assert_eq!(replies.len(), 32, "every request gets an answer");
    assert_eq!(replies[0]["result"]["tools"].as_array().map(Vec::len), Some(100));
    assert!(replies.last().unwrap()["error"]["message"].as_str().unwrap_or("").contains("too large"), "{}", replies.last().unwrap());
}

// ---------------------------------------------------------------------------------------------
// Sessions
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn sessions_are_signed_for_their_client_and_many_of_them_evict_nobody() {
    let p = Profile::sample();
    let s = p.serve(&[]);
    let token_for = |client: &str| {
        let mut claims = p.claims();
        claims["client_id"] = json!(client);
        claims["sub"] = json!(client);
        Auth::sa(&p.forge_claims(claims))
    };
    let victim = token_for("victim");
    let victim_session = s.session(&victim).await;
    let attacker = token_for("attacker");
    let first = s.session(&attacker).await;
    // The old in-memory store kept 10,000 sessions; signed ids keep none, so 10,001 new sessions
    // (32 at a time) leave every earlier one valid.
    let made = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..32 {
        let (http, url, auth, made) = (s.http.clone(), s.url.clone(), attacker.clone(), Arc::clone(&made));
        tasks.spawn(async move {
            while made.fetch_add(1, Ordering::SeqCst) < 10_001 {
                let body = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-11-25"}});
                let r = auth
                    .apply(http.post(&url))
                    .header("accept", "application/json, text/event-stream")
                    .json(&body)
                    .send()
                    .await
                    .expect("initialize");
                assert_eq!(r.status(), 200);
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    assert_eq!(s.request(&victim_session, "ping", json!({})).await.status, 200, "the victim's session was evicted");
    assert_eq!(s.request(&first, "ping", json!({})).await.status, 200, "the attacker's own first session is still valid");

    // A session belongs to the client it was issued to: the attacker cannot use the victim's id.
    let stolen = Session { auth: attacker.clone(), ..victim_session.clone() };
    assert_eq!(s.request(&stolen, "ping", json!({})).await.status, 404);
    // Tampered or made-up ids are unknown sessions.
    let mut tampered = victim_session.id.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    for id in [tampered, "0123456789abcdef0123456789abcdef".into(), "A".repeat(50)] {
        let forged = Session { id: id.clone(), ..victim_session.clone() };
        assert_eq!(s.request(&forged, "ping", json!({})).await.status, 404, "{id}");
    }
    // DELETE ends the session on this server.
    assert_eq!(s.delete_session(&victim_session).await, 204);
    assert_eq!(s.request(&victim_session, "ping", json!({})).await.status, 404);
}

// ---------------------------------------------------------------------------------------------
// Path parameters
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn dot_segment_path_parameters_are_refused_before_the_downstream_sees_them() {
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let record = Arc::clone(&seen);
    let app = Router::new()
        .route("/api/orders/{id}", get(|UrlPath(id): UrlPath<String>| async move { axum::Json(json!({"id": id})) }))
        .fallback(move |uri: axum::http::Uri| {
            let record = Arc::clone(&record);
            async move {
                record.lock().unwrap().push(uri.to_string());
                axum::Json(json!({"escaped": true}))
            }
        });
    let base = spawn_app(app).await;
    let p = Profile::sample();
    let s = p.serve(&["--downstream", &format!("{base}/api")]);
    let session = s.session(&Auth::sa(&p.token())).await;
    for value in ["..", ".", "%2e%2e", "%2E", ".%2e"] {
        let body = s.call(&session, "getOrder", json!({"orderId": value})).await.json();
        assert_eq!(body["result"]["isError"], true, "{value}: {body}");
        let text = body["result"]["content"][0]["text"].as_str().unwrap_or("");
        assert!(text.contains("orderId"), "{value}: the error names the argument: {body}");
    }
    assert!(seen.lock().unwrap().is_empty(), "requests left the tool's path: {:?}", seen.lock().unwrap());
    // Dots inside a value are fine.
    let ok = s.call(&session, "getOrder", json!({"orderId": "a..b"})).await.json();
    assert_eq!(ok["result"]["isError"], false, "{ok}");
}

// ---------------------------------------------------------------------------------------------
// Nested YAML
// ---------------------------------------------------------------------------------------------

/// ~400 KB of flow nesting under an otherwise valid spec.
fn nested_yaml() -> String {
    let n = 200_000;
    format!("openapi: 3.0.0\ninfo: {{title: t, version: '1'}}\npaths: {{}}\nx-deep: {}{}\n", "[".repeat(n), "]".repeat(n))
}

#[tokio::test]
async fn up_refuses_a_deeply_nested_spec_fast() {
    let spec = write_temp(&nested_yaml(), ".yaml");
    let root = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut child = std::process::Command::new(BIN)
        .arg("--root")
        .arg(root.path())
        .args(["up", "--instance", "p", "--spec", spec.path().to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("up --spec with a nested YAML ran for more than 10 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut err = String::new();
    use std::io::Read;
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(!child.wait().unwrap().success());
    assert!(err.contains("nest"), "{err}");
    assert!(err.lines().next().unwrap_or("").len() < 400, "one short line: {err}");
}

#[tokio::test]
async fn a_deeply_nested_spec_on_reload_never_delays_a_revocation() {
    let spec = write_temp(mcpgen::openapi::SAMPLE_YAML, ".yaml");
    let p = Profile::new("p", &["--spec", spec.path().to_str().unwrap()]);
    let s = p.serve(&[]);
    let ci = Auth::sa(&p.mint("ci", &["orders.read"]));
    assert_eq!(s.auth_status(&ci).await, 200);
    std::fs::write(p.dir().join("openapi.yaml"), nested_yaml()).unwrap();
    p.run_ok(&["sa-revoke", "p", "--name", "ci"]);
    s.wait_for_status(&ci, 401, "revocation right after a nested spec").await;
    s.wait_for_stderr("keeping the last good tools").await;
}

#[test]
fn exponential_refs_are_bounded() {
    // Each level refers to the previous one 64 times: 64^12 leaves when fully inlined.
    let mut schemas = serde_json::Map::new();
    schemas.insert("L0".into(), json!({"type": "string"}));
    for i in 1..=12 {
        let prev = format!("#/components/schemas/L{}", i - 1);
        let properties: serde_json::Map<String, Value> = (0..64).map(|k| (format!("p{k}"), json!({"$ref": prev}))).collect();
        schemas.insert(format!("L{i}"), json!({"type": "object", "properties": properties}));
    }
    let doc = json!({"openapi": "3.1.0", "info": {"title": "t", "version": "1"}, "components": {"schemas": schemas},
        "paths": {"/x": {"get": {"parameters": [{"name": "q", "in": "query", "schema": {"$ref": "#/components/schemas/L12"}}],
            "responses": {"200": {"description": "ok"}}}}}});
    let started = Instant::now();
    let spec = mcpgen::openapi::Spec::parse(&doc.to_string(), "t.json").unwrap();
    let ops = spec.operations(&["GET".into()]);
    assert_eq!(ops.len(), 1);
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    assert!(ops[0].input_schema.to_string().len() < 16 * 1024 * 1024);
}

// ---------------------------------------------------------------------------------------------
// Remote JWKS
// ---------------------------------------------------------------------------------------------

/// A JWKS endpoint that `mode` decides: "endless" streams zeros forever, "hang" sends headers and
/// then nothing. Counts requests.
async fn hostile_jwks(mode: &'static str) -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let counter = Arc::clone(&hits);
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else { return };
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n").await;
                if mode == "endless" {
                    let _ = stream.write_all(b"9\r\n{\"keys\":[\r\n").await;
                    let chunk = format!("10000\r\n{}\r\n", " ".repeat(0x10000));
                    while stream.write_all(chunk.as_bytes()).await.is_ok() {}
                } else {
                    tokio::time::sleep(Duration::from_secs(120)).await;
                }
            });
        }
    });
    (format!("http://{addr}/jwks.json"), hits)
}

fn foreign_token(p: &Profile) -> String {
    let key = PrivateKey::generate();
    sign(&key, &json!({"alg": "EdDSA", "typ": "JWT", "kid": key.public().thumbprint()}), &p.claims())
}

#[tokio::test]
async fn an_endless_jwks_is_cut_off_while_reading() {
    let (uri, _hits) = hostile_jwks("endless").await;
    let p = Profile::sample();
    p.edit_sa(|sa| {
        sa.insert("jwks_uri".into(), json!(uri));
    });
    let s = p.serve(&[]);
    let pid = server_pid(&p.env.root());
    let reply = s.try_initialize(&Auth::sa(&foreign_token(&p)), "2025-11-25").await;
    assert_eq!(reply.status, 401, "{reply:?}");
    let hwm_mb = status_kb(pid, "VmHWM") / 1024;
    assert!(hwm_mb < 100, "peak RSS {hwm_mb} MB after an endless JWKS");
    s.wait_for_stderr("cannot fetch JWKS").await;
}

#[tokio::test]
async fn a_hanging_jwks_fetch_does_not_stall_other_requests() {
    let (uri, hits) = hostile_jwks("hang").await;
    let p = Profile::sample();
    p.edit_sa(|sa| {
        sa.insert("jwks_uri".into(), json!(uri));
    });
    let s = p.serve(&[]);
    // The first unknown-key token starts a fetch that hangs (until reqwest's 5 s timeout).
    let first = {
        let (http, url, token) = (s.http.clone(), s.url.clone(), foreign_token(&p));
        tokio::spawn(async move {
            http.post(&url).header(SA_HEADER, token).header("accept", "application/json").body("{}").send().await.map(|r| r.status())
        })
    };
    eventually("the JWKS fetch started", Duration::from_secs(10), || async {
        if hits.load(Ordering::SeqCst) >= 1 { Ok(()) } else { Err("no fetch yet".to_string()) }
    })
    .await;
    // Meanwhile: another JWKS-verified token is answered from the (empty) cache at once, and a
    // token of the static key is not held up either.
    let started = Instant::now();
    assert_eq!(s.auth_status(&Auth::sa(&foreign_token(&p))).await, 401);
    assert!(started.elapsed() < Duration::from_secs(2), "a second token waited {:?} for the hanging fetch", started.elapsed());
    let started = Instant::now();
    assert_eq!(s.auth_status(&Auth::sa(&p.token())).await, 200);
    assert!(started.elapsed() < Duration::from_secs(2), "a static-key token waited {:?}", started.elapsed());
    let _ = first.await;
}

// ---------------------------------------------------------------------------------------------
// Untrusted text in logs and descriptors
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn method_names_are_escaped_in_the_access_log() {
    let p = Profile::sample();
    let s = p.serve(&[]);
    let session = s.session(&Auth::sa(&p.token())).await;
    let evil = "x\n2099-01-01T00:00:00Z POST /mcp forged client=admin 200\u{1b}[2J\u{202e}";
    let reply = s.request(&session, evil, json!({})).await;
    assert_eq!(reply.status, 200);
    s.wait_for_stderr("client=svc-p 200").await;
    eventually("the escaped method is logged", RELOAD_DEADLINE, || async {
        if s.stderr().contains("x\\n2099") { Ok(()) } else { Err(s.stderr()) }
    })
    .await;
    let log = s.stop();
    assert!(!log.lines().any(|l| l.starts_with("2099-01-01")), "a forged log line:\n{log}");
    assert!(!log.contains('\u{1b}') && !log.contains('\u{202e}'), "raw controls in the log:\n{log:?}");
    // Nor a forged field inside the real line: the method's spaces are escaped too.
    assert!(!log.contains(" client=admin 200"), "a forged client field:\n{log}");
    assert!(log.contains("forged\\u{20}client=admin"), "{log}");
}

#[tokio::test]
async fn bidi_and_c1_controls_from_the_spec_are_escaped_in_tool_descriptors() {
    let doc = json!({"openapi": "3.1.0", "info": {"title": "t", "version": "1"}, "paths": {"/x": {"get": {
        "operationId": "getX",
        "summary": "Harmless\u{202e}txt.exe\u{0085}\u{009b}31m",
        "parameters": [{"name": "q", "in": "query", "description": "p\u{2066}q\u{200f}", "schema": {"type": "string"}}],
        "responses": {"200": {"description": "ok"}}}}}});
    let spec = write_temp(&doc.to_string(), ".json");
    let p = Profile::new("p", &["--spec", spec.path().to_str().unwrap()]);
    p.edit_config(|c| c["security"]["authorization"]["tools"] = json!({}));
    let s = p.serve(&[]);
    let session = s.session(&Auth::sa(&p.token())).await;
    let list = s.rpc(&session, "tools/list", json!({})).await;
    let text = list.to_string();
    for c in ['\u{202e}', '\u{0085}', '\u{009b}', '\u{2066}', '\u{200f}'] {
        assert!(!text.contains(c), "{c:?} in {text}");
    }
    let description = list["result"]["tools"][0]["description"].as_str().unwrap();
    assert!(description.contains("\\u{202e}"), "{description}");
}

// ---------------------------------------------------------------------------------------------
// Untrusted text from configuration files
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_config_reload_error_quoting_the_file_is_escaped_in_the_log() {
    let p = Profile::sample();
    let s = p.serve(&[]);
    p.edit_sa(|sa| {
        sa.insert("mode".into(), json!("\u{1b}[2J\n2099-01-01T00:00:00Z forged"));
    });
    s.wait_for_stderr("keeping the last good configuration").await;
    let log = s.stop();
    assert!(!log.contains('\u{1b}'), "raw escape in the log: {log:?}");
    assert!(!log.lines().any(|l| l.starts_with("2099-01-01")), "a forged log line:\n{log}");
}

#[tokio::test]
async fn a_header_name_with_controls_is_refused_not_printed() {
    let p = Profile::sample();
    p.edit_sa(|sa| {
        sa.insert("header".into(), json!("X-\u{1b}]0;pwned\u{7}"));
    });
    let mut child = std::process::Command::new(BIN)
        .arg("--root")
        .arg(p.env.root())
        .args(["serve", "p", "--port", "0"])
        .env_remove("MCPGEN_ROOT")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (text, reader) = Log::collect(child.stderr.take().unwrap());
    // Either it refuses to start, or it prints its start line: decide within the deadline.
    eventually_blocking("serve to start or refuse", Duration::from_secs(30), || {
        let exited = child.try_wait().unwrap().is_some();
        if exited || text.text().contains("serving profile") { Ok(()) } else { Err(text.text()) }
    });
    let _ = child.kill();
    let status = child.wait().unwrap();
    let _ = reader.join();
    let log = text.text();
    assert!(!log.contains('\u{1b}') && !log.contains('\u{7}'), "raw controls on stderr: {log:?}");
    assert!(!status.success() && log.contains("service_account.header"), "refused, naming the key: {log}");
}

#[tokio::test]
async fn an_unauthenticated_request_is_refused_without_waiting_for_its_body() {
    let p = Profile::sample();
    p.edit_config(|c| c["server"]["body_timeout_seconds"] = json!(30));
    let s = p.serve(&[]);
    let mut stream = tokio::net::TcpStream::connect(addr(&s)).await.unwrap();
    let head =
        "POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: 1000000\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut reply = Vec::new();
    let mut buf = [0u8; 1024];
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        while !reply.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => reply.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no answer in 10 s: the server waited for the body of an unauthenticated request");
    let text = String::from_utf8_lossy(&reply);
    assert!(text.starts_with("HTTP/1.1 401"), "{text:?}");
}

/// A client whose connections come from `127.0.0.2` (another address on loopback).
fn from_another_address() -> reqwest::Client {
    reqwest::Client::builder().local_address(std::net::IpAddr::from([127, 0, 0, 2])).no_proxy().build().unwrap()
}

#[tokio::test]
async fn one_address_cannot_hold_every_connection() {
    let p = Profile::sample();
    p.edit_config(|c| c["server"]["max_connections_per_client"] = json!(8));
    let s = p.serve(&[]);
    let mut idle = Vec::new();
    for _ in 0..8 {
        idle.push(tokio::net::TcpStream::connect(addr(&s)).await.unwrap());
    }
    // The ninth from the same address is closed at once (accepted in order, after the eight).
    let mut ninth = tokio::net::TcpStream::connect(addr(&s)).await.unwrap();
    let mut buf = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(20), ninth.read(&mut buf)).await.expect("the ninth connection is closed");
    assert_eq!(read.unwrap_or(0), 0, "the ninth connection was served");
    // Meanwhile another address is served.
    let reply = from_another_address().get(format!("{}/.well-known/jwks.json", s.base)).send().await.unwrap();
    assert_eq!(reply.status(), 200);
}

#[tokio::test]
async fn anonymous_callers_do_not_evict_each_others_sessions() {
    let p = Profile::sample();
    p.edit_config(|c| c["security"]["authentication"]["service_account"]["required"] = json!(false));
    let s = p.serve(&[]);
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "victim", "version": "0"}}});
    let victim = from_another_address();
    let reply = victim.post(&s.url).header("accept", "application/json").json(&init).send().await.unwrap();
    assert_eq!(reply.status(), 200);
    let session = reply.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    // Another anonymous caller opens more sessions than one owner may keep.
    for _ in 0..110 {
        assert_eq!(s.try_initialize(&Auth::none(), "2025-11-25").await.status, 200);
    }
    let ping = victim
        .post(&s.url)
        .header("accept", "application/json")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
        .send()
        .await
        .unwrap();
    assert_eq!(ping.status(), 200, "the anonymous victim's session was evicted");
}

#[test]
fn keys_and_token_answers_come_over_https_unless_on_loopback() {
    for key in ["jwks_uri", "introspection_endpoint"] {
        let p = Profile::sample();
        p.edit_config(|c| {
            let sa = &mut c["security"]["authentication"]["service_account"];
            sa["mode"] = json!("oauth");
            sa[key] = json!("http://idp.example/keys");
        });
        let out = p.env.run(&["serve", "p", "--port", "0"]);
        assert_ne!(out.code, 0, "{key}: {out:?}");
        assert!(out.stderr.contains(key) && out.stderr.contains("must be https"), "{key}: {}", out.stderr);
    }
}
