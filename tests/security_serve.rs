//! Resource bounds and output hygiene of `mcpgen serve` (security review, issue 7 items 3–5),
//! end to end against the real binary on `127.0.0.1:0`: body read timeout, connection cap and
//! accept back-off, JSON-RPC batch limits and up-front authorization, per-client session quota,
//! dot-segment path parameters, nested YAML specs, hostile JWKS endpoints, and escaping of
//! untrusted text in the access log and tool descriptors.
//!
//! Server processes are found through `/proc` (their command line names the test's temporary
//! root), to read their memory high-water mark, CPU time and open descriptors. Every wait is a
//! poll with a deadline, never a fixed sleep used as synchronisation.

mod serve_support;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Path as UrlPath;
use axum::routing::get;
use mcpgen::keys::PrivateKey;
use serde_json::{Value, json};
use serve_support::*;
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
// Untrusted text in logs and descriptors
// ---------------------------------------------------------------------------------------------

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
