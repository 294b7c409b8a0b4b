//! `mcpgen serve` end to end: the real binary on `127.0.0.1:0` over temporary profiles, spoken
//! to with reqwest. Covers the Streamable HTTP transport (versions, sessions, headers, limits),
//! every `service_account` setting of seed 001, hostile tokens, RFC 9728 metadata, the JWKS,
//! live rotation/revocation/reload, `mode: "oauth"` against an in-test JWKS server, and the
//! downstream proxy against an in-test REST API.
//!
//! Changes to a running server's files are observed with `eventually` (polling with a
//! deadline), never by sleeping a fixed time.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use serde_json::{Value, json};
use support::*;

const SUPPORTED: [&str; 3] = ["2025-03-26", "2025-06-18", "2025-11-25"];

/// The sample's tools a `default` token (orders.read products.read) may see, in spec order.
const DEFAULT_VISIBLE: [&str; 3] = ["getOrders", "getOrder", "getProducts"];

fn metadata_url(server: &Server) -> String {
    format!("{}/.well-known/oauth-protected-resource/mcp", server.base)
}

/// A 401 for a presented-and-rejected token, with the RFC 6750/9728 challenge.
fn assert_invalid_token(server: &Server, reply: &Reply, what: &str) {
    assert_eq!(reply.status, 401, "{what}: {reply:?}");
    let challenge = reply.challenge();
    assert!(challenge.starts_with("Bearer "), "{what}: {challenge}");
    assert!(challenge.contains(r#"error="invalid_token""#), "{what}: {challenge}");
    assert!(challenge.contains(&format!(r#"resource_metadata="{}""#, metadata_url(server))), "{what}: {challenge}");
    assert_eq!(reply.json()["error"], "invalid_token", "{what}");
}

fn structured(result: &Value) -> &Value {
    &result["result"]["structuredContent"]
}

fn tool_text(result: &Value) -> &str {
    result["result"]["content"][0]["text"].as_str().unwrap_or_else(|| panic!("no text content: {result}"))
}

// ---------------------------------------------------------------------------------------------
// Transport: versions, sessions, headers, limits
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn initialize_echoes_supported_versions_and_answers_unknown_ones_with_a_supported_one() {
    let p = Profile::sample();
    let s = p.serve(&[]);
    let auth = Auth::sa(&p.token());
    let mut sessions = Vec::new();
    for version in SUPPORTED {
        let reply = s.try_initialize(&auth, version).await;
        assert_eq!(reply.status, 200, "{version}: {reply:?}");
        assert!(reply.header("content-type").unwrap().starts_with("application/json"));
        let body = reply.json();
        assert_eq!(body["jsonrpc"], "2.0");
        assert_eq!(body["id"], 0);
        assert_eq!(body["result"]["protocolVersion"], version);
        assert_eq!(body["result"]["serverInfo"]["name"], "mcpgen");
        assert!(body["result"]["capabilities"]["tools"].is_object(), "{body}");
        let id = reply.header("mcp-session-id").expect("session id").to_owned();
        // Visible ASCII only (transport spec) and unguessable.
        assert!(id.len() >= 32 && id.bytes().all(|b| (0x21..=0x7e).contains(&b)), "{id}");
        sessions.push(id);
    }
    sessions.sort();
    sessions.dedup();
    assert_eq!(sessions.len(), SUPPORTED.len(), "every initialize opens its own session");

    for proposed in ["2026-07-28", "2099-01-01", "not-a-version"] {
        let reply = s.try_initialize(&auth, proposed).await;
        assert_eq!(reply.status, 200, "{proposed}: {reply:?}");
        let answered = reply.json()["result"]["protocolVersion"].as_str().unwrap().to_owned();
        assert_eq!(answered, "2025-11-25", "a version the server does not know is answered with its latest");
    }
    s.assert_never_logged(&[&p.token()]);
}

#[tokio::test]
async fn initialized_notification_is_202_and_ping_answers_empty_result() {
    let p = Profile::sample();
    let s = p.serve(&[]);
    let session = s.session(&Auth::sa(&p.token())).await; // asserts the 202
    let reply = s.in_session(&session).json(&json!({"jsonrpc": "2.0", "id": "ping-7", "method": "ping"})).send().await.unwrap();
    assert_eq!(reply.status().as_u16(), 200);
    let body: Value = reply.json().await.unwrap();
    assert_eq!(body, json!({"jsonrpc": "2.0", "id": "ping-7", "result": {}}));

    // A notification alone, and a response from the client: accepted, nothing to say.
    assert_eq!(s.notify(&session, "notifications/cancelled").await.status, 202);
    let client_response = send(s.in_session(&session).json(&json!({"jsonrpc": "2.0", "id": 5, "result": {}}))).await;
    assert_eq!(client_response.status, 202, "{client_response:?}");

    // A batch answers its requests only, in order (protocol 2025-03-26: later versions have no
    // batches).
    let old = s.session_with(&Auth::sa(&p.token()), "2025-03-26").await;
    let batch = send(s.in_session(&old).json(&json!([
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 1, "method": "ping"},
        {"jsonrpc": "2.0", "id": 2, "method": "no/such/method"},
    ])))
    .await;
    assert_eq!(batch.status, 200);
    let replies = batch.json();
    assert_eq!(replies.as_array().map(Vec::len), Some(2), "{replies}");
    assert_eq!(replies[0]["id"], 1);
    assert_eq!(replies[1]["error"]["code"], -32601);
}

#[tokio::test]
async fn unknown_method_and_unknown_tool_are_json_rpc_errors() {
    let p = Profile::sample();
    let s = p.serve(&[]);
    let session = s.session(&Auth::sa(&p.token())).await;
    let unknown = s.rpc(&session, "resources/list", json!({})).await;
    assert_eq!(unknown["error"]["code"], -32601, "{unknown}");

    let reply = s.call(&session, "dropTables", json!({})).await;
    assert_eq!(reply.status, 200, "an unknown tool is a protocol error, not an HTTP one: {reply:?}");
    let body = reply.json();
    assert_eq!(body["error"]["code"], -32602, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("dropTables"), "{body}");
    assert!(body.get("result").is_none());

    let bad_args = s.request(&session, "tools/call", json!({"name": "getOrders", "arguments": [1, 2]})).await.json();
    assert_eq!(bad_args["error"]["code"], -32602, "{bad_args}");
}

#[tokio::test]
async fn tools_list_hides_tools_without_scopes_and_calling_one_is_403_insufficient_scope() {
    let p = Profile::sample();
    let s = p.serve(&[]);
    let session = s.session(&Auth::sa(&p.token())).await;
    let page = s.rpc(&session, "tools/list", json!({})).await;
    let tools = page["result"]["tools"].as_array().unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, DEFAULT_VISIBLE, "getCustomers needs customers.read and must be hidden");
    assert!(page["result"].get("nextCursor").is_none());
    for tool in tools {
        assert_eq!(tool["inputSchema"]["type"], "object", "{tool}");
        assert!(!tool["description"].as_str().unwrap().is_empty(), "{tool}");
    }
    let get_order = tools.iter().find(|t| t["name"] == "getOrder").unwrap();
    assert_eq!(get_order["inputSchema"]["required"], json!(["orderId"]));

    let refused = s.call(&session, "getCustomers", json!({})).await;
    assert_eq!(refused.status, 403, "{refused:?}");
    let challenge = refused.challenge();
    assert!(challenge.contains(r#"error="insufficient_scope""#), "{challenge}");
    assert!(challenge.contains(r#"scope="customers.read""#), "{challenge}");
    assert!(challenge.contains(&format!(r#"resource_metadata="{}""#, metadata_url(&s))), "{challenge}");
    assert_eq!(refused.json()["scope"], "customers.read");

    // A token with the scope sees and calls it.
    let full = p.mint("full", &["orders.read", "products.read", "customers.read"]);
    let session = s.session(&Auth::sa(&full)).await;
    assert_eq!(s.tool_names(&session).await, ["getOrders", "getOrder", "getProducts", "getCustomers"]);
    let called = s.call(&session, "getCustomers", json!({})).await;
    assert_eq!(called.status, 200, "{called:?}");
    assert_eq!(called.json()["result"]["isError"], false);
}

#[tokio::test]
async fn tools_call_in_mock_mode_answers_from_the_spec_examples() {
    let p = Profile::sample();
    let s = p.serve(&["--mock"]);
    let session = s.session(&Auth::sa(&p.token())).await;

    let order = s.call(&session, "getOrder", json!({"orderId": "ord-1001"})).await;
    assert_eq!(order.status, 200, "{order:?}");
    let order = order.json();
    assert_eq!(order["result"]["isError"], false, "{order}");
    assert_eq!(structured(&order)["id"], "ord-1001", "{order}");
    assert_eq!(order["result"]["content"][0]["type"], "text");
    let text: Value = serde_json::from_str(tool_text(&order)).expect("text content is the JSON");
    assert_eq!(&text, structured(&order));

    // Arrays are wrapped, since structuredContent must be an object.
    let orders = s.call(&session, "getOrders", json!({"limit": 2})).await.json();
    assert!(structured(&orders)["result"].as_array().is_some_and(|a| !a.is_empty()), "{orders}");

    // Argument errors are tool errors the model can read.
    let missing = s.call(&session, "getOrder", json!({})).await.json();
    assert_eq!(missing["result"]["isError"], true, "{missing}");
    assert!(tool_text(&missing).contains("orderId"), "{missing}");
    let unknown = s.call(&session, "getOrders", json!({"nope": 1})).await.json();
    assert_eq!(unknown["result"]["isError"], true, "{unknown}");

    // 2025-03-26 has no structuredContent.
    let old = s.session_with(&Auth::sa(&p.token()), "2025-03-26").await;
    let order = s.call(&old, "getOrder", json!({"orderId": "ord-1001"})).await.json();
    assert_eq!(order["result"]["isError"], false);
    assert!(order["result"].get("structuredContent").is_none(), "{order}");
    assert!(tool_text(&order).contains("ord-1001"));
}

/// A spec with `n` GET operations (and as many POSTs, which are not tools by default).
fn big_spec(n: usize) -> String {
    let mut paths = serde_json::Map::new();
    for i in 0..n {
        let ok = json!({"200": {"description": "ok", "content": {"application/json": {"example": {"i": i}}}}});
        paths.insert(
            format!("/items{i:03}"),
            json!({
                "get": {"operationId": format!("getItem{i:03}"), "summary": format!("Item {i}"), "responses": ok},
                "post": {"operationId": format!("postItem{i:03}"), "summary": format!("New item {i}"), "responses": ok},
            }),
        );
    }
    json!({"openapi": "3.1.0", "info": {"title": "Big", "version": "1"}, "paths": paths}).to_string()
}

#[tokio::test]
async fn tools_list_paginates_with_an_opaque_cursor_and_follows_allowed_methods_live() {
    let spec_dir = tempfile::tempdir().unwrap();
    let spec = spec_dir.path().join("big.json");
    std::fs::write(&spec, big_spec(250)).unwrap();
    let p = Profile::new("big", &["--spec", spec.to_str().unwrap()]);
    let s = p.serve(&[]);
    let session = s.session(&Auth::sa(&p.token())).await;

    let first = s.rpc(&session, "tools/list", json!({})).await;
    assert_eq!(first["result"]["tools"].as_array().unwrap().len(), 100);
    let cursor = first["result"]["nextCursor"].as_str().expect("a first page of 250 has a cursor").to_owned();
    let second = s.rpc(&session, "tools/list", json!({"cursor": cursor})).await;
    assert_eq!(second["result"]["tools"][0]["name"], "getItem100", "{second}");

    let names = s.tool_names(&session).await;
    assert_eq!(names.len(), 250);
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 250, "no tool repeated across pages");
    assert!(names.iter().all(|n| n.starts_with("getItem")), "only GET operations by default");

    for bad in [json!("banana"), json!("999"), json!(3)] {
        let reply = s.rpc(&session, "tools/list", json!({"cursor": bad})).await;
        assert_eq!(reply["error"]["code"], -32602, "cursor {bad}: {reply}");
    }

    // routing.allowed_methods is hot-reloaded: POST operations become tools.
    p.edit_config(|c| c["routing"]["allowed_methods"] = json!(["GET", "POST"]));
    let (s, session) = (&s, &session);
    let names = eventually("the allowed_methods change to apply", RELOAD_DEADLINE, move || async move {
        let names = s.tool_names(session).await;
        if names.len() == 500 { Ok(names) } else { Err(format!("{} tools", names.len())) }
    })
    .await;
    assert!(names.iter().any(|n| n == "postItem249"));
}

#[tokio::test]
async fn delete_ends_the_session_and_unknown_or_missing_sessions_are_refused() {
    let p = Profile::sample();
    let s = p.serve(&[]);
    let auth = Auth::sa(&p.token());
    let session = s.session(&auth).await;
    assert_eq!(s.request(&session, "ping", json!({})).await.status, 200);

    let deleted = send(auth.apply(s.http.delete(&s.url)).header("mcp-session-id", &session.id)).await;
    assert_eq!(deleted.status, 204, "{deleted:?}");
    let after = s.request(&session, "ping", json!({})).await;
    assert_eq!(after.status, 404, "a deleted session is gone: {after:?}");
    let again = send(auth.apply(s.http.delete(&s.url)).header("mcp-session-id", &session.id)).await;
    assert_eq!(again.status, 404);

    let made_up = Session { id: "0123456789abcdef0123456789abcdef".into(), ..session.clone() };
    assert_eq!(s.request(&made_up, "ping", json!({})).await.status, 404);

    let no_session = send(auth.apply(s.post()).json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))).await;
    assert_eq!(no_session.status, 400, "{no_session:?}");

    // A session belongs to the client that opened it.
    let live = s.session(&auth).await;
    let other = Session { auth: Auth::sa(&p.mint("other", &["orders.read"])), ..live.clone() };
    assert_eq!(s.request(&other, "ping", json!({})).await.status, 404);
    assert_eq!(s.request(&live, "ping", json!({})).await.status, 200);

    // No server-initiated stream is offered.
    let get = send(auth.apply(s.http.get(&s.url)).header("accept", "text/event-stream")).await;
    assert_eq!(get.status, 405, "{get:?}");
    s.wait_for_stderr("GET /mcp - - client=svc-p 405").await;
}

#[tokio::test]
async fn mcp_protocol_version_header_must_be_supported() {
    let p = Profile::sample();
    let s = p.serve(&[]);
    let auth = Auth::sa(&p.token());
    let session = s.session(&auth).await;
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    let with_version = |v: &str| auth.apply(s.post()).header("mcp-session-id", &session.id).header("mcp-protocol-version", v).json(&ping);
    for bad in ["1999-01-01", "2026-07-28", "latest"] {
        let reply = send(with_version(bad)).await;
        assert_eq!(reply.status, 400, "MCP-Protocol-Version {bad}: {reply:?}");
    }
    assert_eq!(send(with_version("2025-11-25")).await.status, 200);
    // Absent: assumed 2025-03-26, accepted.
    let absent = send(auth.apply(s.post()).header("mcp-session-id", &session.id).json(&ping)).await;
    assert_eq!(absent.status, 200, "{absent:?}");
}

#[tokio::test]
async fn foreign_origin_is_403_and_localhost_origins_are_accepted() {
    let p = Profile::sample();
    let s = p.serve(&[]);
    let auth = Auth::sa(&p.token());
    for origin in ["https://evil.example", "http://localhost.evil.example", "null"] {
        let reply =
            send(auth.apply(s.post()).header("origin", origin).json(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize"}))).await;
        assert_eq!(reply.status, 403, "Origin {origin}: {reply:?}");
    }
    // Checked before authentication: no token, foreign origin is still 403 (not 401).
    let anonymous = send(s.post().header("origin", "https://evil.example").json(&json!({}))).await;
    assert_eq!(anonymous.status, 403);
    for origin in ["http://localhost:5173", "http://127.0.0.1:3000", "http://[::1]:8080"] {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25"}});
        let reply = send(auth.apply(s.post()).header("origin", origin).json(&body)).await;
        assert_eq!(reply.status, 200, "Origin {origin}: {reply:?}");
    }
}

#[tokio::test]
async fn accept_only_event_stream_gets_an_sse_reply_and_unacceptable_accept_is_406() {
    let p = Profile::sample();
    let s = p.serve(&[]);
    let auth = Auth::sa(&p.token());
    let body = json!({"jsonrpc": "2.0", "id": 9, "method": "initialize", "params": {"protocolVersion": "2025-06-18"}});
    let reply =
        send(auth.apply(s.http.post(&s.url)).header("accept", "text/event-stream").header("content-type", "application/json").json(&body))
            .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(reply.header("content-type").unwrap().starts_with("text/event-stream"), "{reply:?}");
    assert!(reply.header("mcp-session-id").is_some());
    let data: Vec<&str> = reply.body.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
    assert_eq!(data.len(), 1, "one event: {:?}", reply.body);
    let message: Value = serde_json::from_str(data[0]).unwrap();
    assert_eq!(message["id"], 9);
    assert_eq!(message["result"]["protocolVersion"], "2025-06-18");

    let html = send(auth.apply(s.http.post(&s.url)).header("accept", "text/html").json(&body)).await;
    assert_eq!(html.status, 406, "{html:?}");
}

#[tokio::test]
async fn request_body_over_one_mib_is_413_and_just_under_is_served() {
    let p = Profile::sample();
    let s = p.serve(&[]);
    let session = s.session(&Auth::sa(&p.token())).await;
    let padded = |len: usize| {
        let envelope = json!({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"pad": ""}}).to_string();
        let pad = "a".repeat(len - envelope.len());
        json!({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"pad": pad}}).to_string()
    };
    let under = padded(1024 * 1024 - 64);
    let reply = send(s.in_session(&session).body(under)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let over = padded(1024 * 1024 + 1);
    let reply = send(s.in_session(&session).body(over)).await;
    assert_eq!(reply.status, 413, "{}", reply.body);
}

/// Send `head` + `body` in one write on a fresh connection (as a client that pipelines a whole
/// request would); the status code of the reply, or the I/O error.
async fn raw_status(server: &Server, head: &str, body: &str) -> std::io::Result<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = server.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream.write_all(format!("{head}\r\n{body}").as_bytes()).await?;
    let mut reply = Vec::new();
    let mut buf = [0u8; 1024];
    while !reply.windows(2).any(|w| w == b"\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buf)).await??;
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&reply).lines().next().unwrap_or_default().to_owned();
    line.split(' ').nth(1).and_then(|code| code.parse().ok()).ok_or_else(|| std::io::Error::other(format!("no status line: {line:?}")))
}

#[tokio::test]
async fn oversized_request_heads_are_431() {
    let p = Profile::sample();
    let s = p.serve(&[]);
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25"}}).to_string();
    let head = |extra: &str| {
        format!(
            "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n{SA_HEADER}: {}\r\nAccept: application/json\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra}",
            p.token(),
            body.len()
        )
    };
    let pad = |kib: usize| format!("X-Pad: {}\r\n", "a".repeat(kib * 1024));
    // Under the 64 KiB head limit: served.
    assert_eq!(raw_status(&s, &head(&pad(60)), &body).await.unwrap(), 200);
    // Over it (a head that arrives in one piece is the case a buffer-size limit alone misses),
    // far over it, and too many header fields: refused before any handler runs.
    let many: String = (0..150).map(|i| format!("X-H{i}: v\r\n")).collect();
    for (what, extra) in [("70 KiB head", pad(70)), ("100 KiB head", pad(100)), ("1 MiB head", pad(1024)), ("150 header fields", many)] {
        match raw_status(&s, &head(&extra), &body).await {
            Ok(status) => assert_eq!(status, 431, "{what}"),
            // The server may close before the client finished writing: a refusal too.
            Err(e) => assert!(matches!(e.kind(), std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe), "{what}: {e}"),
        }
    }
    // The server is still fine afterwards.
    assert_eq!(s.auth_status(&Auth::sa(&p.token())).await, 200);
}

// ---------------------------------------------------------------------------------------------
// Authentication: hostile tokens and every service_account setting
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn hostile_tokens_are_401_invalid_token_with_resource_metadata() {
    let p = Profile::sample();
    // Revoked before the server starts: on the list it loads.
    let revoked = p.mint("ci", &["orders.read"]);
    p.run_ok(&["sa-revoke", "p", "--name", "ci"]);
    let s = p.serve(&[]);

    let kid = p.kid();
    let key = p.private_key();
    let attacker = PrivateKey::generate();
    let claims = p.claims();
    let with = |patch: Value| {
        let mut c = claims.clone();
        for (k, v) in patch.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    let eddsa = json!({"alg": "EdDSA", "typ": "JWT", "kid": kid});
    let header_plus = |extra: Value| {
        let mut h = eddsa.clone();
        for (k, v) in extra.as_object().unwrap() {
            h[k] = v.clone();
        }
        h
    };
    let b64 = |v: &Value| B64URL.encode(v.to_string());
    let now = now();

    // Controls: a genuine token and one forged with the profile's own key are accepted, so every
    // refusal below is caused by the one thing that differs.
    assert_eq!(s.auth_status(&Auth::sa(&p.token())).await, 200);
    assert_eq!(s.auth_status(&Auth::sa(&p.forge(eddsa.clone(), claims.clone()))).await, 200);
    // nbf 30 s ahead is inside the 60 s clock-skew leeway.
    assert_eq!(s.auth_status(&Auth::sa(&p.forge_claims(with(json!({"nbf": now + 30}))))).await, 200);

    let hmac = |secret: &[u8]| {
        let input = format!("{}.{}", b64(&json!({"alg": "HS256", "typ": "JWT", "kid": kid})), b64(&claims));
        let sig =
            jsonwebtoken::crypto::sign(input.as_bytes(), &jsonwebtoken::EncodingKey::from_secret(secret), jsonwebtoken::Algorithm::HS256)
                .unwrap();
        format!("{input}.{sig}")
    };
    let genuine = p.token();
    let (g_head, g_rest) = genuine.split_once('.').unwrap();
    let (g_claims, g_sig) = g_rest.split_once('.').unwrap();
    let mut tampered_claims = claims.clone();
    tampered_claims["scope"] = json!("orders.read products.read customers.read admin");
    let raw_public = B64URL.decode(p.private_key().public().x()).unwrap();

    let cases: Vec<(&str, String)> = vec![
        ("alg none, empty signature", format!("{}.{}.", b64(&json!({"alg": "none", "typ": "JWT"})), b64(&claims))),
        ("alg none, signed anyway", p.forge(json!({"alg": "none", "kid": kid}), claims.clone())),
        ("alg NONE", p.forge(json!({"alg": "NONE", "kid": kid}), claims.clone())),
        ("HS256 keyed with the public PEM", hmac(p.public_pem().as_bytes())),
        ("HS256 keyed with the raw public key", hmac(&raw_public)),
        ("no alg", p.forge(json!({"typ": "JWT", "kid": kid}), claims.clone())),
        ("crit", p.forge(header_plus(json!({"crit": ["exp"]})), claims.clone())),
        ("embedded jwk of the real key", p.forge(header_plus(json!({"jwk": key.public().jwk()})), claims.clone())),
        (
            "embedded jwk of the attacker's key",
            sign(&attacker, &json!({"alg": "EdDSA", "kid": attacker.public().thumbprint(), "jwk": attacker.public().jwk()}), &claims),
        ),
        ("jku", p.forge(header_plus(json!({"jku": "http://127.0.0.1:9/jwks.json"})), claims.clone())),
        ("x5u", p.forge(header_plus(json!({"x5u": "http://127.0.0.1:9/cert.pem"})), claims.clone())),
        ("x5c", p.forge(header_plus(json!({"x5c": ["MIIBszCCAVmgAwIBAgIUX"]})), claims.clone())),
        ("unknown kid (attacker key)", sign(&attacker, &json!({"alg": "EdDSA", "kid": attacker.public().thumbprint()}), &claims)),
        ("unknown kid (real key)", p.forge(json!({"alg": "EdDSA", "kid": "not-a-known-kid"}), claims.clone())),
        ("no kid, attacker key", sign(&attacker, &json!({"alg": "EdDSA"}), &claims)),
        ("real kid, attacker signature", sign(&attacker, &eddsa, &claims)),
        ("tampered claims", format!("{g_head}.{}.{g_sig}", b64(&tampered_claims))),
        ("expired", p.forge_claims(with(json!({"iat": now - 7200, "nbf": now - 7200, "exp": now - 3600})))),
        ("expired just beyond the leeway", p.forge_claims(with(json!({"iat": now - 7200, "nbf": now - 7200, "exp": now - 120})))),
        ("no exp", {
            let mut c = claims.clone();
            c.as_object_mut().unwrap().remove("exp");
            p.forge_claims(c)
        }),
        ("exp as a string", p.forge_claims(with(json!({"exp": "tomorrow"})))),
        ("nbf 5 minutes ahead", p.forge_claims(with(json!({"nbf": now + 300})))),
        ("iat 5 minutes ahead", p.forge_claims(with(json!({"iat": now + 300})))),
        ("wrong iss", p.forge_claims(with(json!({"iss": "https://evil.example"})))),
        ("no iss", {
            let mut c = claims.clone();
            c.as_object_mut().unwrap().remove("iss");
            p.forge_claims(c)
        }),
        ("wrong aud", p.forge_claims(with(json!({"aud": "http://127.0.0.1:9/mcp"})))),
        ("aud list without us", p.forge_claims(with(json!({"aud": ["http://a/mcp", "http://b/mcp"]})))),
        ("revoked jti", revoked),
        ("over 8 KiB", p.forge_claims(with(json!({"pad": "a".repeat(8 * 1024)})))),
        ("two segments", format!("{g_head}.{g_claims}")),
        ("four segments", format!("{genuine}.{g_sig}")),
        ("one word", "hello".to_owned()),
        ("bad base64 header", format!("!!!{g_head}.{g_claims}.{g_sig}")),
        ("bad base64 signature", format!("{g_head}.{g_claims}.{}*", &g_sig[1..])),
        ("short signature", format!("{g_head}.{g_claims}.{}", &g_sig[..40])),
        ("header not JSON", format!("{}.{g_claims}.{g_sig}", B64URL.encode("not json"))),
        ("claims not JSON", p.forge(eddsa.clone(), json!("just a string"))),
        ("claims a JSON array", p.forge(eddsa.clone(), json!([1, 2, 3]))),
        ("padded base64", format!("{g_head}=.{g_claims}.{g_sig}")),
    ];
    let mut tokens = Vec::new();
    for (what, token) in cases {
        let reply = s.try_initialize(&Auth::sa(&token), "2025-11-25").await;
        assert_invalid_token(&s, &reply, what);
        assert!(reply.header("mcp-session-id").is_none(), "{what}: a refused request opens no session");
        tokens.push(token);
    }
    // The refusals are logged, the tokens are not.
    s.wait_for_stderr(" 401 ").await;
    let genuine = p.token();
    let mut all: Vec<&str> = tokens.iter().map(String::as_str).collect();
    all.push(&genuine);
    s.assert_never_logged(&all);
}

#[tokio::test]
async fn missing_token_is_401_without_error_code_but_with_resource_metadata() {
    let p = Profile::sample();
    let s = p.serve(&[]);
    for auth in [
        Auth::none(),
        Auth::header("X-Other-Header", &p.token()),
        Auth::sa(""),
        Auth::header("Authorization", &format!("Bearer {}", p.token())),
    ] {
        let reply = s.try_initialize(&auth, "2025-11-25").await;
        assert_eq!(reply.status, 401, "{auth:?}: {reply:?}");
        let challenge = reply.challenge();
        // RFC 6750 §3.1: no error code without a token; the description names the header the
        // server reads (a host sending only `Authorization: Bearer` learns why it is refused).
        assert_eq!(
            challenge,
            format!(
                r#"Bearer error_description="a service-account token is required in the X-OEMCP-SERVICEACCOUNT header", resource_metadata="{}""#,
                metadata_url(&s)
            ),
            "{auth:?}"
        );
    }
    // DELETE and GET are gated too.
    assert_eq!(send(s.http.delete(&s.url).header("mcp-session-id", "x")).await.status, 401);
    assert_eq!(send(s.http.get(&s.url)).await.status, 401);
    s.assert_never_logged(&[&p.token()]);
}

#[tokio::test]
async fn require_metadata_on_401_false_drops_resource_metadata() {
    let p = Profile::sample();
    p.edit_sa(|sa| {
        sa.insert("require_metadata_on_401".into(), json!(false));
    });
    let s = p.serve(&[]);
    let missing = s.try_initialize(&Auth::none(), "2025-11-25").await;
    assert_eq!(missing.status, 401);
    assert!(!missing.challenge().contains("resource_metadata"), "{}", missing.challenge());
    assert!(missing.challenge().starts_with("Bearer"));
    let bad = s.try_initialize(&Auth::sa("a.b.c"), "2025-11-25").await;
    assert_eq!(bad.status, 401);
    assert!(bad.challenge().contains(r#"error="invalid_token""#), "{}", bad.challenge());
    assert!(!bad.challenge().contains("resource_metadata"), "{}", bad.challenge());
    assert_eq!(s.auth_status(&Auth::sa(&p.token())).await, 200);
}

#[tokio::test]
async fn required_false_lets_anonymous_callers_in_but_still_refuses_bad_tokens() {
    let p = Profile::sample();
    p.edit_sa(|sa| {
        sa.insert("required".into(), json!(false));
    });
    p.edit_config(|c| c["security"]["authorization"]["tools"]["getProducts"] = json!([]));
    let s = p.serve(&[]);
    let anonymous = s.session(&Auth::none()).await;
    // Anonymous callers have no scopes: only tools that need none.
    assert_eq!(s.tool_names(&anonymous).await, ["getProducts"]);
    assert_eq!(s.call(&anonymous, "getOrders", json!({})).await.status, 403);
    assert_eq!(s.call(&anonymous, "getProducts", json!({})).await.json()["result"]["isError"], false);

    let mut expired = p.claims();
    expired["exp"] = json!(now() - 3600);
    let bad = s.try_initialize(&Auth::sa(&p.forge_claims(expired)), "2025-11-25").await;
    assert_invalid_token(&s, &bad, "expired token with required: false");
    let with_token = s.session(&Auth::sa(&p.token())).await;
    assert_eq!(s.tool_names(&with_token).await, DEFAULT_VISIBLE);
}

#[tokio::test]
async fn enabled_false_needs_no_token_and_opens_every_tool() {
    let p = Profile::new("open", &["--no-sa"]);
    assert_eq!(p.config()["security"]["authentication"]["service_account"]["enabled"], false);
    let s = p.serve(&[]);
    let session = s.session(&Auth::none()).await;
    // Per-tool scopes cannot apply when nobody is identified: every tool is listed and callable.
    assert_eq!(s.tool_names(&session).await, ["getOrders", "getOrder", "getProducts", "getCustomers"]);
    let customers = s.call(&session, "getCustomers", json!({})).await;
    assert_eq!(customers.status, 200, "{customers:?}");
    assert_eq!(customers.json()["result"]["isError"], false);
    // A token, even garbage, is not looked at.
    assert_eq!(s.auth_status(&Auth::sa("garbage")).await, 200);
}

#[tokio::test]
async fn prefix_is_stripped_and_a_bare_token_is_accepted_too() {
    let p = Profile::sample();
    p.edit_sa(|sa| {
        sa.insert("prefix".into(), json!("Bearer "));
    });
    let s = p.serve(&[]);
    let token = p.token();
    for value in [format!("Bearer {token}"), format!("bearer {token}"), format!("Bearer   {token}"), token.clone()] {
        assert_eq!(s.auth_status(&Auth::sa(&value)).await, 200, "{}", value.split('.').next().unwrap());
    }
    let basic = s.try_initialize(&Auth::sa(&format!("Basic {token}")), "2025-11-25").await;
    assert_invalid_token(&s, &basic, "wrong prefix");
    assert_eq!(s.try_initialize(&Auth::sa("Bearer "), "2025-11-25").await.status, 401);
    s.assert_never_logged(&[&token]);
}

#[tokio::test]
async fn sso_mode_reads_authorization_bearer() {
    let p = Profile::sample();
    p.edit_sa(|sa| {
        sa.insert("sso_mode".into(), json!(true));
    });
    let s = p.serve(&[]);
    let token = p.token();
    let bearer = Auth::header("Authorization", &format!("Bearer {token}"));
    let session = s.session(&bearer).await;
    assert_eq!(s.tool_names(&session).await, DEFAULT_VISIBLE);
    // The seed's header is no longer where the token is looked for.
    let old_header = s.try_initialize(&Auth::sa(&token), "2025-11-25").await;
    assert_eq!(old_header.status, 401);
    assert!(!old_header.challenge().contains("error="), "{}", old_header.challenge());
    let bad = s.try_initialize(&Auth::header("Authorization", "Bearer a.b.c"), "2025-11-25").await;
    assert_invalid_token(&s, &bad, "sso bearer garbage");
    s.assert_never_logged(&[&token]);
}

#[tokio::test]
async fn access_token_query_parameter_only_when_bearer_methods_supported_lists_query() {
    let p = Profile::sample();
    let token = p.token();
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25"}});
    {
        let s = p.serve(&[]);
        let reply = send(s.http.post(format!("{}?access_token={token}", s.url)).header("accept", "application/json").json(&init)).await;
        assert_eq!(reply.status, 401, "query tokens are refused by default: {reply:?}");
        assert!(!reply.challenge().contains("error="), "the query is not a place a token is looked for");
    }
    p.edit_sa(|sa| {
        sa.insert("bearer_methods_supported".into(), json!(["header", "query"]));
    });
    let s = p.serve(&[]);
    let reply = send(s.http.post(format!("{}?access_token={token}", s.url)).header("accept", "application/json").json(&init)).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    // Two places at once is refused (RFC 6750 §2).
    let both = send(Auth::sa(&token).apply(s.http.post(format!("{}?access_token={token}", s.url))).json(&init)).await;
    assert_invalid_token(&s, &both, "token in header and query");
    let meta = s.get("/.well-known/oauth-protected-resource").await.json();
    assert_eq!(meta["bearer_methods_supported"], json!(["header", "query"]));
    s.assert_never_logged(&[&token]);
}

#[tokio::test]
async fn required_scopes_gate_every_request_and_are_hot_reloaded() {
    let p = Profile::sample();
    p.edit_sa(|sa| {
        sa.insert("required_scopes".into(), json!(["admin"]));
    });
    let s = p.serve(&[]);
    let auth = Auth::sa(&p.token());
    let refused = s.try_initialize(&auth, "2025-11-25").await;
    assert_eq!(refused.status, 403, "{refused:?}");
    assert!(refused.challenge().contains(r#"error="insufficient_scope""#));
    assert!(refused.challenge().contains(r#"scope="admin""#), "{}", refused.challenge());

    p.edit_sa(|sa| {
        sa.insert("required_scopes".into(), json!(["orders.read"]));
    });
    s.wait_for_status(&auth, 200, "required_scopes relaxed to orders.read").await;
    let products_only = p.mint("products", &["products.read"]);
    let refused = s.try_initialize(&Auth::sa(&products_only), "2025-11-25").await;
    assert_eq!(refused.status, 403);
    assert!(refused.challenge().contains(r#"scope="orders.read""#), "{}", refused.challenge());
}

// ---------------------------------------------------------------------------------------------
// Metadata and keys
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn protected_resource_metadata_lists_configured_urls_and_never_the_client_secret() {
    let p = Profile::sample();
    p.edit_sa(|sa| {
        sa.insert("resource_documentation".into(), json!("https://docs.example/api"));
        sa.insert("resource_policy_uri".into(), json!("https://docs.example/policy"));
        sa.insert("revocation_endpoint".into(), json!("https://auth.example/revoke"));
        sa.insert("introspection_endpoint".into(), json!("https://auth.example/introspect"));
        sa.insert("client_id".into(), json!("mcp-proxy"));
        sa.insert("client_secret".into(), json!("s3cr3t-do-not-publish"));
        sa.insert("authorization_servers".into(), json!(["https://auth.example"]));
    });
    let s = p.serve(&[]);
    let plain = s.get("/.well-known/oauth-protected-resource").await;
    let inserted = s.get("/.well-known/oauth-protected-resource/mcp").await;
    for reply in [&plain, &inserted] {
        assert_eq!(reply.status, 200, "{reply:?}");
        assert!(reply.header("content-type").unwrap().starts_with("application/json"));
        assert!(!reply.body.contains("s3cr3t-do-not-publish"), "{}", reply.body);
        assert!(!reply.body.contains("client_secret"), "{}", reply.body);
        let doc = reply.json();
        assert_eq!(doc["resource"], s.url);
        assert_eq!(doc["jwks_uri"], format!("{}/.well-known/jwks.json", s.base));
        assert_eq!(doc["bearer_methods_supported"], json!(["header"]));
        assert_eq!(doc["resource_documentation"], "https://docs.example/api");
        assert_eq!(doc["resource_policy_uri"], "https://docs.example/policy");
        assert_eq!(doc["revocation_endpoint"], "https://auth.example/revoke");
        assert_eq!(doc["introspection_endpoint"], "https://auth.example/introspect");
        assert_eq!(doc["authorization_servers"], json!(["https://auth.example"]));
        let scopes: Vec<&str> = doc["scopes_supported"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        for scope in ["orders.read", "products.read", "customers.read"] {
            assert!(scopes.contains(&scope), "{scopes:?}");
        }
    }
    assert_eq!(plain.json(), inserted.json());
    // The 401 challenge points at the path-inserted document, which exists.
    let challenge = s.try_initialize(&Auth::none(), "2025-11-25").await.challenge();
    assert!(challenge.contains(&metadata_url(&s)), "{challenge}");
}

#[tokio::test]
async fn jwks_publishes_the_current_key_and_keeps_the_old_one_during_a_grace_period() {
    let p = Profile::sample();
    let s = p.serve(&[]);
    let old_token = p.token();
    let old_kid = p.kid();
    let reply = s.get("/.well-known/jwks.json").await;
    assert_eq!(reply.status, 200);
    let keys = reply.json()["keys"].as_array().unwrap().clone();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let jwk = &keys[0];
    assert_eq!((jwk["kty"].as_str(), jwk["crv"].as_str(), jwk["alg"].as_str()), (Some("OKP"), Some("Ed25519"), Some("EdDSA")));
    assert_eq!(jwk["kid"], old_kid);
    assert_eq!(jwk["x"], p.private_key().public().x());
    assert!(jwk.get("d").is_none(), "never the private part");

    p.run_ok(&["remint-all", "p", "--grace-days", "1"]);
    let new_kid = p.kid();
    assert_ne!(new_kid, old_kid);
    let server = &s;
    let kids = eventually("the JWKS to show both keys", RELOAD_DEADLINE, move || async move {
        let kids: Vec<String> = server.get("/.well-known/jwks.json").await.json()["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect();
        if kids.len() == 2 { Ok(kids) } else { Err(format!("{kids:?}")) }
    })
    .await;
    assert!(kids.contains(&old_kid) && kids.contains(&new_kid), "{kids:?}");
    // Both generations of tokens work during the grace period.
    assert_eq!(s.auth_status(&Auth::sa(&old_token)).await, 200);
    assert_eq!(s.auth_status(&Auth::sa(&p.token())).await, 200);
}

#[tokio::test]
async fn a_retired_key_stops_working_when_its_grace_period_ends_while_serving() {
    use chrono::Timelike;
    let p = Profile::sample();
    let old = Auth::sa(&p.token());
    p.run_ok(&["remint-all", "p", "--grace-days", "1"]);
    let new = Auth::sa(&p.token());
    let jwks_len = |reply: Reply| reply.json()["keys"].as_array().map(Vec::len);
    // As if the day had passed while serving: the grace period ends a few seconds after the
    // server starts, and no file changes after that. Inside the period both keys must work. The
    // answers prove that only if they came back before the period ended, so a machine too slow
    // for that gets a longer period and asks again: the check is never skipped.
    let mut grace = Duration::from_secs(4);
    let (s, grace) = loop {
        let until = (chrono::Utc::now() + chrono::Duration::from_std(grace).unwrap()).with_nanosecond(0).unwrap();
        let mut profile = p.profile_json();
        profile["retired_keys"][0]["accept_until"] = json!(until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        p.write_profile_json(&profile);
        let s = p.serve(&[]);
        let status = s.auth_status(&old).await;
        let published = jwks_len(s.get("/.well-known/jwks.json").await);
        if chrono::Utc::now() < until {
            assert_eq!(status, 200, "inside the grace period");
            assert_eq!(published, Some(2), "inside the grace period");
            break (s, grace);
        }
        assert!(grace < Duration::from_secs(60), "the server never answered twice within {grace:?} of its start");
        grace *= 2;
    };
    let (server, old_ref) = (&s, &old);
    eventually("the retired key to be refused after its grace period", grace + RELOAD_DEADLINE, move || async move {
        match server.auth_status(old_ref).await {
            401 => Ok(()),
            got => Err(format!("status {got}")),
        }
    })
    .await;
    assert_eq!(jwks_len(s.get("/.well-known/jwks.json").await), Some(1), "nor published");
    assert_eq!(s.auth_status(&new).await, 200);
}

#[tokio::test]
async fn remint_all_while_serving_refuses_old_tokens_and_accepts_new_ones_without_restart() {
    let p = Profile::sample();
    let s = p.serve(&[]);
    let old = Auth::sa(&p.token());
    let session = s.session(&old).await;
    assert_eq!(s.request(&session, "ping", json!({})).await.status, 200);

    p.run_ok(&["remint-all", "p"]);
    let new = Auth::sa(&p.token());
    s.wait_for_status(&old, 401, "old token after remint-all").await;
    assert_invalid_token(&s, &s.try_initialize(&old, "2025-11-25").await, "token of the rotated-out key");
    // Also inside an already open session: the cached verification went with the old snapshot.
    assert_eq!(s.request(&session, "ping", json!({})).await.status, 401);
    let fresh = s.session(&new).await;
    assert_eq!(s.tool_names(&fresh).await, DEFAULT_VISIBLE);
    let jwks = s.get("/.well-known/jwks.json").await.json();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    assert_eq!(jwks["keys"][0]["kid"], p.kid());
}

#[tokio::test]
async fn sa_revoke_while_serving_refuses_that_token_only() {
    let p = Profile::sample();
    let s = p.serve(&[]);
    let ci = Auth::sa(&p.mint("ci", &["orders.read"]));
    let session = s.session(&ci).await;
    assert_eq!(s.tool_names(&session).await, ["getOrders", "getOrder"]);

    p.run_ok(&["sa-revoke", "p", "--name", "ci"]);
    s.wait_for_status(&ci, 401, "revoked token").await;
    assert_invalid_token(&s, &s.try_initialize(&ci, "2025-11-25").await, "revoked token");
    assert!(s.try_initialize(&ci, "2025-11-25").await.challenge().contains("revoked"));
    assert_eq!(s.request(&session, "tools/list", json!({})).await.status, 401, "revocation reaches open sessions");
    assert_eq!(s.auth_status(&Auth::sa(&p.token())).await, 200, "other tokens are unaffected");
}

#[tokio::test]
async fn a_broken_spec_keeps_the_tools_but_never_delays_a_revocation() {
    let spec = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(spec.path(), lib::SAMPLE_YAML).unwrap();
    let p = Profile::new("p", &["--spec", spec.path().to_str().unwrap(), "--scopes", "orders.read", "products.read"]);
    let s = p.serve(&[]);
    let ci = Auth::sa(&p.mint("ci", &["orders.read"]));
    let default = Auth::sa(&p.token());
    let session = s.session(&default).await;
    assert_eq!(s.auth_status(&ci).await, 200);

    // The operator breaks the spec, then revokes a leaked token.
    std::fs::write(p.dir().join("openapi.yaml"), "openapi: [this is not a spec").unwrap();
    p.run_ok(&["sa-revoke", "p", "--name", "ci"]);
    s.wait_for_status(&ci, 401, "revocation despite a broken spec").await;
    s.wait_for_stderr("keeping the last good tools").await;
    assert!(s.stderr().contains("openapi.yaml"), "the warning names the file:\n{}", s.stderr());
    assert_eq!(s.call(&session, "getOrder", json!({"orderId": "ord-1001"})).await.json()["result"]["isError"], false);
}

#[tokio::test]
async fn an_invalid_config_edit_keeps_the_last_good_configuration() {
    let p = Profile::sample();
    let s = p.serve(&[]);
    let auth = Auth::sa(&p.token());
    let session = s.session(&auth).await;
    let good = std::fs::read_to_string(p.config_path()).unwrap();

    p.write_config_text("{ \"security\": { this is not JSON");
    s.wait_for_stderr("warning: reload of profile p failed, keeping the last good configuration").await;
    assert!(s.stderr().contains("mcp_server_config.json"), "the warning names the file:\n{}", s.stderr());
    assert_eq!(s.tool_names(&session).await, DEFAULT_VISIBLE);
    assert_eq!(s.auth_status(&auth).await, 200);
    assert_eq!(s.call(&session, "getOrder", json!({"orderId": "ord-1001"})).await.json()["result"]["isError"], false);

    // A valid edit afterwards is picked up again.
    let mut doc: Value = serde_json::from_str(&good).unwrap();
    doc["security"]["authentication"]["service_account"]["required_scopes"] = json!(["admin"]);
    p.write_config_text(&doc.to_string());
    s.wait_for_status(&auth, 403, "valid edit after a broken one").await;
    s.assert_never_logged(&[&p.token()]);
}

// ---------------------------------------------------------------------------------------------
// mode "oauth": remote JWKS
// ---------------------------------------------------------------------------------------------

/// What the JWKS endpoint serves and how often it was asked.
#[derive(Clone, Default)]
struct JwksState {
    doc: Arc<Mutex<Value>>,
    fetches: Arc<AtomicUsize>,
}

/// A JWKS endpoint whose document the test can swap, counting fetches.
struct JwksHost {
    state: JwksState,
    _server: Fake,
}

impl JwksHost {
    fn start(keys: &[&PrivateKey]) -> (JwksHost, String) {
        Self::start_with(keys, "public, max-age=3600")
    }

    /// A host that answers with `cache_control`.
    fn start_with(keys: &[&PrivateKey], cache_control: &'static str) -> (JwksHost, String) {
        let state = JwksState::default();
        let app = Router::new()
            .route(
                "/jwks.json",
                get(move |State(h): State<JwksState>| async move {
                    h.fetches.fetch_add(1, Ordering::SeqCst);
                    let doc = h.doc.lock().unwrap().clone();
                    ([("cache-control", cache_control), ("content-type", "application/json")], doc.to_string())
                }),
            )
            .with_state(state.clone());
        let server = Fake::app(app);
        let uri = format!("{}/jwks.json", server.base);
        let host = JwksHost { state, _server: server };
        host.publish(keys);
        (host, uri)
    }

    fn publish(&self, keys: &[&PrivateKey]) {
        *self.state.doc.lock().unwrap() = json!({"keys": keys.iter().map(|k| k.public().jwk()).collect::<Vec<_>>()});
    }

    fn fetches(&self) -> usize {
        self.state.fetches.load(Ordering::SeqCst)
    }
}

#[tokio::test]
async fn a_key_removed_from_a_no_store_jwks_stops_working_at_the_next_fetch_despite_the_token_cache() {
    let p = Profile::sample();
    let (a, b) = (PrivateKey::generate(), PrivateKey::generate());
    let (host, jwks_uri) = JwksHost::start_with(&[&a, &b], "no-store");
    p.edit_sa(|sa| {
        sa.insert("mode".into(), json!("oauth"));
        sa.insert("public_key".into(), Value::Null);
        sa.insert("jwks_uri".into(), json!(jwks_uri));
    });
    let s = p.serve(&[]);
    let token_a = Auth::sa(&signed_by(&p, &a));
    assert_eq!(s.auth_status(&token_a).await, 200);
    assert_eq!(s.auth_status(&token_a).await, 200, "a second time: from the token cache or a fetch");
    host.publish(&[&b]);
    // The set may not be cached (no-store), so the token cache may not stand in for it either:
    // the next look (the fetch is rate-limited to one a second) refuses the token.
    s.wait_for_status(&token_a, 401, "a token of a key the JWKS no longer has").await;
    assert!(host.fetches() >= 2);
}

fn signed_by(p: &Profile, key: &PrivateKey) -> String {
    sign(key, &json!({"alg": "EdDSA", "typ": "JWT", "kid": key.public().thumbprint()}), &p.claims())
}

#[tokio::test]
async fn oauth_mode_verifies_against_the_jwks_uri_and_refetches_on_an_unknown_kid() {
    let p = Profile::sample();
    let (a, b) = (PrivateKey::generate(), PrivateKey::generate());
    let (host, jwks_uri) = JwksHost::start(&[&a]);
    p.edit_sa(|sa| {
        sa.insert("mode".into(), json!("oauth"));
        sa.insert("public_key".into(), Value::Null);
        sa.insert("jwks_uri".into(), json!(jwks_uri));
    });
    let s = p.serve(&[]);
    assert_eq!(s.get("/.well-known/oauth-protected-resource").await.json()["jwks_uri"], jwks_uri);

    let token_a = Auth::sa(&signed_by(&p, &a));
    let session = s.session(&token_a).await;
    assert_eq!(s.tool_names(&session).await, DEFAULT_VISIBLE);
    assert_eq!(host.fetches(), 1, "one fetch, then the cache (max-age=3600)");
    // The profile's own key is not configured in this mode.
    assert_invalid_token(&s, &s.try_initialize(&Auth::sa(&p.token()), "2025-11-25").await, "static key absent");

    // The issuer rotates. A token with the new kid makes the server fetch again — at most once per
    // rate-limit interval however many such tokens arrive (here: one every 20 ms).
    host.publish(&[&b]);
    let token_b = Auth::sa(&signed_by(&p, &b));
    let started = Instant::now();
    let (server, token) = (&s, &token_b);
    eventually("the new JWKS key to be accepted", Duration::from_secs(30), move || async move {
        match server.auth_status(token).await {
            200 => Ok(()),
            got => Err(format!("status {got}; stderr:\n{}", server.stderr())),
        }
    })
    .await;
    let fetches = host.fetches();
    assert!((2..=3).contains(&fetches), "unknown kids must not trigger a fetch each: {fetches} fetches in {:?}", started.elapsed());
    // The old key left the set.
    assert_invalid_token(&s, &s.try_initialize(&token_a, "2025-11-25").await, "key removed from the JWKS");
    // Issuer and audience still apply to JWKS-verified tokens.
    let mut claims = p.claims();
    claims["iss"] = json!("https://someone-else.example");
    let wrong_iss = sign(&b, &json!({"alg": "EdDSA", "kid": b.public().thumbprint()}), &claims);
    assert_invalid_token(&s, &s.try_initialize(&Auth::sa(&wrong_iss), "2025-11-25").await, "JWKS token, wrong iss");
}

#[tokio::test]
async fn a_jwks_uri_that_redirects_is_not_followed() {
    let p = Profile::sample();
    let key = PrivateKey::generate();
    let (target, target_uri) = JwksHost::start(&[&key]);
    // The configured JWKS URI answers 302 to a set holding the signing key: following it would
    // let whoever controls the redirect choose the keys.
    let redirect = Fake::start(move |_| (StatusCode::FOUND, [(axum::http::header::LOCATION, target_uri.clone())], "").into_response());
    p.edit_sa(|sa| {
        sa.insert("mode".into(), json!("oauth"));
        sa.insert("public_key".into(), Value::Null);
        sa.insert("jwks_uri".into(), json!(format!("{}/jwks.json", redirect.base)));
    });
    let s = p.serve(&[]);
    let reply = s.try_initialize(&Auth::sa(&signed_by(&p, &key)), "2025-11-25").await;
    assert_invalid_token(&s, &reply, "keys only reachable through a redirect");
    s.wait_for_stderr("cannot fetch JWKS").await;
    assert!(s.stderr().contains("HTTP 302"), "{}", s.stderr());
    assert_eq!(target.fetches(), 0, "the redirect was followed");
    assert!(!redirect.requests_to("/jwks.json").is_empty());
}

#[tokio::test]
async fn only_oauth_mode_sends_opaque_tokens_to_the_introspection_endpoint() {
    let p = Profile::sample();
    let idp = Fake::start(|_| json_reply(StatusCode::OK, &json!({"active": true, "client_id": "opaque-svc", "scope": "orders.read"})));
    p.edit_sa(|sa| {
        sa.insert("introspection_endpoint".into(), json!(format!("{}/introspect", idp.base)));
        sa.insert("client_id".into(), json!("rs"));
        sa.insert("client_secret".into(), json!("rs-secret"));
    });
    let s = p.serve(&[]);
    let opaque = Auth::sa("opaque-token-value-123");
    // Token mode: the endpoint is only advertised; the token never leaves the server.
    assert_invalid_token(&s, &s.try_initialize(&opaque, "2025-11-25").await, "opaque token in token mode");
    assert!(idp.requests().is_empty(), "token mode asked the introspection endpoint");
    p.edit_sa(|sa| {
        sa.insert("mode".into(), json!("oauth"));
    });
    s.wait_for_status(&opaque, 200, "the opaque token, introspected in oauth mode").await;
    let asked = idp.requests_to("/introspect");
    let form = String::from_utf8_lossy(&asked[0].body).into_owned();
    assert!(form.contains("token=opaque-token-value-123"), "{form}");
    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("rs:rs-secret"));
    assert_eq!(asked[0].headers.get("authorization").and_then(|v| v.to_str().ok()), Some(basic.as_str()));
    s.wait_for_stderr("client=opaque-svc 200").await;
    s.assert_never_logged(&["opaque-token-value-123", "rs-secret"]);
}

#[tokio::test]
async fn static_public_key_first_then_jwks_when_both_are_configured() {
    let p = Profile::sample();
    let remote = PrivateKey::generate();
    let (host, jwks_uri) = JwksHost::start(&[&remote]);
    p.edit_sa(|sa| {
        sa.insert("jwks_uri".into(), json!(jwks_uri));
    });
    let s = p.serve(&[]);
    assert_eq!(s.auth_status(&Auth::sa(&p.token())).await, 200);
    assert_eq!(host.fetches(), 0, "a token the static key verifies needs no JWKS fetch");
    assert_eq!(s.auth_status(&Auth::sa(&signed_by(&p, &remote))).await, 200);
    assert_eq!(host.fetches(), 1);
    let stranger = PrivateKey::generate();
    assert_invalid_token(&s, &s.try_initialize(&Auth::sa(&signed_by(&p, &stranger)), "2025-11-25").await, "in neither");
}

// ---------------------------------------------------------------------------------------------
// Downstream proxy
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Default)]
struct Downstream {
    /// `(path?query, had an SA or Authorization header)` of every request.
    seen: Arc<Mutex<Vec<(String, bool)>>>,
}

async fn orders(State(d): State<Downstream>, headers: HeaderMap, RawQuery(q): RawQuery) -> impl IntoResponse {
    d.record(&format!("/orders?{}", q.unwrap_or_default()), &headers);
    axum::Json(json!([{"id": "d-1", "status": "shipped"}]))
}

async fn order(State(d): State<Downstream>, headers: HeaderMap, UrlPath(id): UrlPath<String>) -> axum::response::Response {
    d.record(&format!("/orders/{id}"), &headers);
    match id.as_str() {
        "fail" => (StatusCode::SERVICE_UNAVAILABLE, "backend down for maintenance").into_response(),
        "bad" => ([("content-type", "application/json")], "{\"id\": oops").into_response(),
        "slow" => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            axum::Json(json!({"id": "too late"})).into_response()
        }
        _ => axum::Json(json!({"id": id, "status": "shipped"})).into_response(),
    }
}

impl Downstream {
    fn record(&self, what: &str, headers: &HeaderMap) {
        let credentials = headers.contains_key("x-oemcp-serviceaccount") || headers.contains_key("authorization");
        self.seen.lock().unwrap().push((what.to_owned(), credentials));
    }
}

#[tokio::test]
async fn downstream_replies_and_failures_become_tool_results_never_500s() {
    let downstream = Downstream::default();
    let app = Router::new()
        .route("/api/orders", get(orders))
        .route("/api/orders/{id}", get(order))
        .route("/api/products", get(|| async { StatusCode::NO_CONTENT }))
        .with_state(downstream.clone());
    let api = Fake::app(app);
    let base = &api.base;
    let p = Profile::sample();
    p.edit_config(|c| c["openapi"]["timeout_seconds"] = json!(0.5));
    let s = p.serve(&["--downstream", &format!("{base}/api")]);
    s.wait_for_stderr(&format!("-> {base}/api/")).await;
    let session = s.session(&Auth::sa(&p.token())).await;

    let list = s.call(&session, "getOrders", json!({"limit": 5, "status": "shipped"})).await;
    assert_eq!(list.status, 200, "{list:?}");
    let list = list.json();
    assert_eq!(list["result"]["isError"], false, "{list}");
    assert_eq!(structured(&list)["result"][0]["id"], "d-1");

    let one = s.call(&session, "getOrder", json!({"orderId": "A 1/2"})).await.json();
    assert_eq!(one["result"]["isError"], false, "{one}");
    assert_eq!(structured(&one)["id"], "A 1/2", "path parameters are percent-encoded and arrive intact");

    let empty = s.call(&session, "getProducts", json!({})).await.json();
    assert_eq!(empty["result"]["isError"], false, "{empty}");
    assert_eq!(structured(&empty)["status"], 204);

    let failures = [("fail", "503"), ("bad", "invalid JSON"), ("slow", "timed out")];
    for (id, needle) in failures {
        let started = Instant::now();
        let reply = s.call(&session, "getOrder", json!({"orderId": id})).await;
        assert_eq!(reply.status, 200, "{id}: a downstream failure is a tool result, not an HTTP error: {reply:?}");
        let body = reply.json();
        assert_eq!(body["result"]["isError"], true, "{id}: {body}");
        assert!(tool_text(&body).contains(needle), "{id}: {body}");
        assert!(started.elapsed() < Duration::from_secs(20), "{id} took {:?}", started.elapsed());
    }
    assert!(tool_text(&s.call(&session, "getOrder", json!({"orderId": "fail"})).await.json()).contains("backend down"));

    let seen = downstream.seen.lock().unwrap().clone();
    assert!(seen.iter().any(|(path, _)| path == "/orders?limit=5&status=shipped"), "{seen:?}");
    assert!(seen.iter().any(|(path, _)| path == "/orders/A 1/2"), "{seen:?}");
    assert!(seen.iter().all(|(_, credentials)| !credentials), "the caller's token is never forwarded downstream: {seen:?}");
    // The server survived all of it.
    assert_eq!(s.request(&session, "ping", json!({})).await.status, 200);
    s.assert_never_logged(&[&p.token()]);
}

#[tokio::test]
async fn an_unreachable_downstream_is_a_tool_error() {
    let p = Profile::sample();
    let s = p.serve(&["--downstream", &format!("http://127.0.0.1:{}", closed_port())]);
    let session = s.session(&Auth::sa(&p.token())).await;
    let reply = s.call(&session, "getOrders", json!({})).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let body = reply.json();
    assert_eq!(body["result"]["isError"], true, "{body}");
    assert!(tool_text(&body).contains("failed"), "{body}");
}

#[tokio::test]
async fn the_access_log_names_clients_but_never_tokens() {
    let p = Profile::sample();
    p.edit_sa(|sa| {
        sa.insert("bearer_methods_supported".into(), json!(["header", "query"]));
    });
    let s = p.serve(&[]);
    let token = p.token();
    let session = s.session(&Auth::sa(&token)).await;
    s.call(&session, "getOrders", json!({})).await;
    s.call(&session, "getCustomers", json!({})).await;
    let mut claims = p.claims();
    claims["exp"] = json!(now() - 3600);
    let expired = p.forge_claims(claims);
    assert_eq!(s.try_initialize(&Auth::sa(&expired), "2025-11-25").await.status, 401);
    let by_query = send(s.http.post(format!("{}?access_token={token}", s.url)).header("accept", "application/json").json(&json!({}))).await;
    assert_eq!(by_query.status, 400, "authenticated by the query, then refused as not JSON-RPC: {by_query:?}");
    s.wait_for_stderr("tools/call getCustomers client=svc-p 403").await;
    let log = s.stderr();
    assert!(log.contains("tools/call getOrders client=svc-p 200"), "{log}");
    s.assert_never_logged(&[&token, &expired]);
}

#[tokio::test]
async fn a_hostile_kid_still_gets_a_challenge_header() {
    let p = Profile::sample();
    let s = p.serve(&[]);
    for kid in ["k\u{00fc}nstler-\u{2603}", &"x".repeat(4000), "a\"b\\c"] {
        let token = p.forge(json!({"alg": "EdDSA", "typ": "JWT", "kid": kid}), p.claims());
        let reply = s.try_initialize(&Auth::sa(&token), "2025-11-25").await;
        assert_invalid_token(&s, &reply, "hostile kid");
        assert!(reply.challenge().len() < 1000, "the challenge is bounded: {} bytes", reply.challenge().len());
    }
}
