//! Protocol 2026-07-28 (stateless Streamable HTTP) on the real `mcpgen serve`, beside the
//! handshake era: `server/discover`, per-request `_meta`, the mirrored `Mcp-Method`/`Mcp-Name`
//! headers checked against the body, the revision's error codes, 405 for GET and DELETE — and
//! the official Rust SDK (rmcp) as a modern client, with its `server/discover` lifecycle.

mod support;

use std::collections::HashMap;

use reqwest::header::{HeaderName, HeaderValue};
use rmcp::model::{CallToolRequestParams, ClientConfig, ProtocolVersion};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};
use support::*;

fn error_code(reply: &Reply) -> i64 {
    reply.json()["error"]["code"].as_i64().unwrap_or_else(|| panic!("no JSON-RPC error: {reply:?}"))
}

#[tokio::test]
async fn discover_list_and_call_without_a_handshake_or_session() {
    let p = Profile::sample();
    let s = p.serve(&[]);
    let auth = Auth::sa(&p.token());

    let discover = s.modern(&auth, "server/discover", json!({})).await;
    assert_eq!(discover.status, 200, "{discover:?}");
    assert_eq!(discover.header("mcp-session-id"), None, "no session in the stateless revision");
    let result = &discover.json()["result"];
    assert_eq!(result["resultType"], "complete");
    assert_eq!(result["supportedVersions"][0], MODERN);
    assert!(result["supportedVersions"].as_array().unwrap().contains(&json!("2025-11-25")), "dual-era: {result}");
    assert_eq!(result["serverInfo"]["name"], "mcpgen");
    assert!(result["capabilities"]["tools"].is_object());

    let list = s.modern(&auth, "tools/list", json!({})).await;
    assert_eq!(list.status, 200, "{list:?}");
    let list = list.json();
    assert_eq!(list["result"]["resultType"], "complete");
    let names: Vec<&str> = list["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["getOrders", "getOrder", "getProducts"], "scopes decide, as in the handshake era");

    let call = s.modern(&auth, "tools/call", json!({"name": "getOrder", "arguments": {"orderId": "ord-1001"}})).await;
    assert_eq!(call.status, 200, "{call:?}");
    let result = &call.json()["result"];
    assert_eq!((result["resultType"].as_str(), result["isError"].as_bool()), (Some("complete"), Some(false)));
    assert_eq!(result["structuredContent"]["id"], "ord-1001");

    // A session id sent by an older client is ignored, not checked.
    let body = modern_body("tools/list", json!({}));
    let with_stale_session = send(s.modern_post(&auth, &body).header("mcp-session-id", "made-up")).await;
    assert_eq!(with_stale_session.status, 200, "{with_stale_session:?}");

    // Authentication and scopes are unchanged.
    assert_eq!(s.modern(&Auth::none(), "tools/list", json!({})).await.status, 401);
    assert_eq!(s.modern(&auth, "tools/call", json!({"name": "getCustomers", "arguments": {}})).await.status, 403);

    s.wait_for_stderr("POST /mcp tools/call getOrder client=svc-p 200").await;
    s.assert_never_logged(&[&p.token()]);
}

#[tokio::test]
async fn headers_that_disagree_with_the_body_are_refused_with_header_mismatch() {
    let p = Profile::sample();
    let s = p.serve(&[]);
    let auth = Auth::sa(&p.token());
    let call = modern_body("tools/call", json!({"name": "getOrder", "arguments": {"orderId": "ord-1001"}}));

    // The three headers as given (None: left out), the body fixed.
    let post = |version: Option<&str>, method: Option<&str>, name: Option<&str>| {
        let mut builder = auth.apply(s.post());
        for (header, value) in [("mcp-protocol-version", version), ("mcp-method", method), ("mcp-name", name)] {
            if let Some(value) = value {
                builder = builder.header(header, value);
            }
        }
        send(builder.json(&call))
    };
    let right = post(Some(MODERN), Some("tools/call"), Some("getOrder")).await;
    assert_eq!(right.status, 200, "{right:?}");

    let wrong_name = post(Some(MODERN), Some("tools/call"), Some("getOrders")).await;
    assert_eq!((wrong_name.status, error_code(&wrong_name)), (400, -32020), "{wrong_name:?}");
    assert!(wrong_name.body.contains("Mcp-Name"), "{}", wrong_name.body);
    let wrong_method = post(Some(MODERN), Some("tools/list"), Some("getOrder")).await;
    assert_eq!((wrong_method.status, error_code(&wrong_method)), (400, -32020));
    for (version, method, name) in
        [(None, Some("tools/call"), Some("getOrder")), (Some(MODERN), None, Some("getOrder")), (Some(MODERN), Some("tools/call"), None)]
    {
        let reply = post(version, method, name).await;
        assert_eq!((reply.status, error_code(&reply)), (400, -32020), "{version:?} {method:?} {name:?}: {reply:?}");
    }
    // A header sent twice is not trusted, even when one of its values matches.
    let twice = send(s.modern_post(&auth, &call).header("mcp-name", "getOrders")).await;
    assert_eq!((twice.status, error_code(&twice)), (400, -32020), "{twice:?}");
    // Whatever the body says: no text stands in for the duplicated header.
    let mut named = call.clone();
    named["params"]["name"] = json!("(sent more than once)");
    let twice = send(s.modern_post(&auth, &named).header("mcp-name", "(sent more than once)")).await;
    assert_eq!((twice.status, error_code(&twice)), (400, -32020), "{twice:?}");

    // The header says one version, `_meta` another.
    let mut other = call.clone();
    other["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] = json!("2026-01-01");
    let disagree = send(s.modern_post(&auth, &other)).await;
    assert_eq!((disagree.status, error_code(&disagree)), (400, -32020));

    // A name in the base64 sentinel form is decoded before the comparison.
    let encoded = post(Some(MODERN), Some("tools/call"), Some("=?base64?Z2V0T3JkZXI=?=")).await;
    assert_eq!(encoded.status, 200, "{encoded:?}");
}

#[tokio::test]
async fn versions_methods_and_verbs_the_revision_does_not_serve() {
    let p = Profile::sample();
    let s = p.serve(&[]);
    let auth = Auth::sa(&p.token());

    // An unknown version: 400 with UnsupportedProtocolVersion listing what is served.
    let mut future = modern_body("tools/list", json!({}));
    future["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] = json!("2099-01-01");
    let reply =
        send(auth.apply(s.post()).header("mcp-protocol-version", "2099-01-01").header("mcp-method", "tools/list").json(&future)).await;
    assert_eq!((reply.status, error_code(&reply)), (400, -32022), "{reply:?}");
    let data = &reply.json()["error"]["data"];
    assert_eq!(data["requested"], "2099-01-01");
    assert_eq!(data["supported"][0], MODERN);

    // A method the revision removed (ping) or never had: 404 with -32601.
    for method in ["ping", "resources/list"] {
        let reply = s.modern(&auth, method, json!({})).await;
        assert_eq!((reply.status, error_code(&reply)), (404, -32601), "{method}: {reply:?}");
    }

    // `_meta` without the client capabilities the revision requires.
    let mut bare = modern_body("tools/list", json!({}));
    bare["params"]["_meta"].as_object_mut().unwrap().remove("io.modelcontextprotocol/clientCapabilities");
    let reply = send(s.modern_post(&auth, &bare)).await;
    assert_eq!((reply.status, error_code(&reply)), (400, -32602), "{reply:?}");

    // No batches.
    let batch = json!([modern_body("tools/list", json!({})), modern_body("tools/list", json!({}))]);
    let reply = send(auth.apply(s.post()).header("mcp-protocol-version", MODERN).header("mcp-method", "tools/list").json(&batch)).await;
    assert_eq!(reply.status, 400, "{reply:?}");

    // GET and DELETE: 405.
    let get = send(auth.apply(s.http.get(&s.url)).header("accept", "text/event-stream").header("mcp-protocol-version", MODERN)).await;
    assert_eq!(get.status, 405);
    let delete = send(auth.apply(s.http.delete(&s.url)).header("mcp-protocol-version", MODERN).header("mcp-session-id", "x")).await;
    assert_eq!(delete.status, 405);

    // The handshake era is untouched on the same endpoint.
    let session = s.session(&auth).await;
    assert_eq!(s.rpc(&session, "tools/list", json!({})).await["result"].get("resultType"), None);
}

fn rmcp_transport(url: &str, token: &str) -> StreamableHttpClientTransport<reqwest::Client> {
    lib::init_tls();
    let headers = HashMap::from([(HeaderName::from_static("x-oemcp-serviceaccount"), HeaderValue::from_str(token).unwrap())]);
    StreamableHttpClientTransport::from_config(StreamableHttpClientTransportConfig::with_uri(url).custom_headers(headers))
}

#[tokio::test]
async fn rmcp_client_in_discover_mode_speaks_the_stateless_revision() {
    let p = Profile::sample();
    let s = p.serve(&[]);
    let lifecycle = ClientLifecycleMode::Discover { preferred_versions: vec![ProtocolVersion::V_2026_07_28] };
    let client = ClientConfig::default().serve_with_lifecycle(rmcp_transport(&s.url, &p.token()), lifecycle).await.expect("rmcp discover");
    let info = client.peer_info().expect("server info from server/discover");
    assert_eq!(info.protocol_version, ProtocolVersion::V_2026_07_28);
    assert_eq!(info.server_info.as_ref().map(|i| i.name.as_str()), Some("mcpgen"));

    let tools = client.list_all_tools().await.expect("tools/list");
    assert_eq!(tools.len(), 3, "{tools:?}");
    let args = json!({"orderId": "ord-1001"}).as_object().cloned().unwrap();
    let result = client.call_tool(CallToolRequestParams::new("getOrder").with_arguments(args)).await.expect("tools/call");
    assert_eq!(result.structured_content.as_ref().map(|v| v["id"].clone()), Some(Value::from("ord-1001")));
    client.cancel().await.expect("close");

    // rmcp sent the revision's headers, so the server saw modern requests and no initialize.
    let log = s.stop();
    assert!(log.contains("POST /mcp server/discover"), "{log}");
    assert!(log.contains("POST /mcp tools/call getOrder client=svc-p 200"), "{log}");
    assert!(!log.contains("initialize"), "{log}");
}

#[test]
fn mcpgen_client_speaks_the_stateless_revision_to_mcpgen_serve() {
    let p = Profile::sample();
    let s = p.serve(&[]);
    let from = s.log.len();
    let run = p.env.cmd(&["client", "p", "--url", &s.url, "--tool", "getOrder", "--args", r#"{"orderId":"ord-1001"}"#]).run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let log = s.requests_until(from, "tools/call");
    let rpcs: Vec<&str> = log.iter().filter_map(|l| l.split_whitespace().nth(3)).collect();
    assert_eq!(rpcs, ["server/discover", "tools/list", "tools/call"], "{log:?}");
    assert!(log.iter().all(|l| l.contains(" 200 ")), "{log:?}");
}

#[test]
fn the_client_mirrors_name_and_annotated_arguments_into_headers() {
    let env = Env::with_profile("p");
    let fake = modern_fake();
    let run = env.cmd(&["client", "p", "--url", &fake.url]).run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("- query") && !run.stdout.contains("broken"), "{}", run.stdout);
    assert!(run.stderr.contains("leaving out tool broken"), "{}", run.stderr);

    let run =
        env.cmd(&["client", "p", "--url", &fake.url, "--tool", "query", "--args", r#"{"region": "Zürich", "sql": "select 1"}"#]).run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let requests = fake.requests();
    assert!(requests.iter().all(|r| r.method == "POST" && r.header("mcp-session-id").is_none()), "no session, no DELETE");
    let call = requests.iter().find(|r| r.rpc() == "tools/call").expect("tools/call");
    assert_eq!(call.header("mcp-protocol-version").as_deref(), Some(MODERN));
    assert_eq!(call.header("mcp-method").as_deref(), Some("tools/call"));
    assert_eq!(call.header("mcp-name").as_deref(), Some("query"));
    assert_eq!(call.header("mcp-param-region").as_deref(), Some("=?base64?WsO8cmljaA==?="), "non-ASCII is base64");
    let meta = &call.json()["params"]["_meta"];
    assert_eq!(meta["io.modelcontextprotocol/protocolVersion"], MODERN);
    assert!(meta["io.modelcontextprotocol/clientCapabilities"].is_object());
}
