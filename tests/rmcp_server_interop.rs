//! Interop: the real `mcpgen client` binary against a server built with the official Rust MCP
//! SDK (`rmcp`), mounted in axum on `127.0.0.1:0` on a background runtime. rmcp answers
//! requests over SSE and starts every stream with an empty priming event, negotiates its own
//! protocol version and checks `Host` — a second implementation of the transport that mcpgen's
//! own server cannot stand in for.

mod support;

use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ServerHandler, schemars, tool, tool_handler, tool_router};
use serde_json::{Value, json};
use support::*;

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct SumRequest {
    /// The left-hand side.
    a: i64,
    /// The right-hand side.
    b: i64,
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct DivideRequest {
    dividend: i64,
    divisor: i64,
}

/// Two tools; `#[tool_handler]` routes calls through `Self::tool_router()`.
#[derive(Debug, Clone)]
struct Calculator;

#[tool_router]
impl Calculator {
    #[tool(description = "Add two integers")]
    fn sum(&self, Parameters(SumRequest { a, b }): Parameters<SumRequest>) -> String {
        json!({"sum": a + b}).to_string()
    }

    #[tool(description = "Divide two integers; dividing by zero is a tool error")]
    fn divide(&self, Parameters(DivideRequest { dividend, divisor }): Parameters<DivideRequest>) -> CallToolResult {
        match dividend.checked_div(divisor) {
            Some(q) => CallToolResult::success(vec![ContentBlock::text(q.to_string())]),
            None => CallToolResult::error(vec![ContentBlock::text("division by zero")]),
        }
    }
}

#[tool_handler]
impl ServerHandler for Calculator {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build()).with_instructions("A calculator for interop tests")
    }
}

/// The rmcp server, mounted in axum at `/mcp` on a fake server's runtime; stopped when dropped.
struct RmcpServer {
    url: String,
    _server: Fake,
}

impl RmcpServer {
    /// rmcp's defaults: sessions, SSE replies with a priming event.
    fn start() -> RmcpServer {
        Self::with_config(StreamableHttpServerConfig::default().with_sse_keep_alive(None))
    }

    fn with_config(config: StreamableHttpServerConfig) -> RmcpServer {
        let service: StreamableHttpService<Calculator, LocalSessionManager> =
            StreamableHttpService::new(|| Ok(Calculator), Default::default(), config);
        let server = Fake::app(axum::Router::new().nest_service("/mcp", service));
        RmcpServer { url: server.url.clone(), _server: server }
    }
}

#[test]
fn lists_rmcp_tools() {
    let server = RmcpServer::start();
    let env = Env::new();
    let run = env.client().args(["--url", &server.url]).run();
    run.expect(0);
    let mut lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.drain(..2).collect::<Vec<_>>(), ["Tools: 2 | Prompts: 0", "ToolNames:"], "{}", run.stdout);
    lines.sort();
    assert_eq!(lines, ["- divide: Divide two integers; dividing by zero is a tool error", "- sum: Add two integers"]);
}

#[test]
fn rmcp_schemas_come_through_list_json() {
    let server = RmcpServer::start();
    let env = Env::new();
    let run = env.client().args(["--url", &server.url, "--list-json", "--tool", "sum"]).run();
    run.expect(0);
    let listing: Value = serde_json::from_str(&run.stdout).unwrap();
    let schema = &listing["tools"][0]["inputSchema"];
    assert_eq!(listing["tools"][0]["name"], "sum");
    assert_eq!(schema["properties"]["a"]["type"], "integer", "{schema}");
    let mut required: Vec<&str> = schema["required"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    required.sort();
    assert_eq!(required, ["a", "b"]);
}

#[test]
fn calls_an_rmcp_tool_over_sse() {
    let server = RmcpServer::start();
    let env = Env::new();
    let run = env.client().args(["--url", &server.url, "--tool", "sum", "--args", r#"{"a": 40, "b": 2}"#, "--debug"]).run();
    run.expect(0);
    assert_eq!(serde_json::from_str::<Value>(&run.stdout).unwrap(), json!({"sum": 42}));
    // The reply really came as an event stream.
    assert!(run.stderr.contains("< content-type: text/event-stream"), "{}", run.stderr);
    let raw = env.client().args(["--url", &server.url, "--tool", "sum", "--args", r#"{"a": 1, "b": 2}"#, "--raw"]).run();
    raw.expect(0);
    assert_eq!(raw.stdout, "{\"sum\":3}\n");
}

#[test]
fn rmcp_tool_error_and_schema_check() {
    let server = RmcpServer::start();
    let env = Env::new();
    let run = env.client().args(["--url", &server.url, "--tool", "divide", "--args", r#"{"dividend": 1, "divisor": 0}"#]).run();
    run.expect(5);
    assert!(run.stderr.contains("division by zero"), "{}", run.stderr);

    // rmcp's schema (from schemars) is enforced before the call.
    let run = env.client().args(["--url", &server.url, "--tool", "divide", "--args", r#"{"dividend": "ten", "divisor": 2}"#]).run();
    run.expect(2);
    assert!(run.stderr.contains("dividend: expected integer, got string"), "{}", run.stderr);

    let run = env.client().args(["--url", &server.url, "--tool", "nope"]).run();
    run.expect(5);
    assert!(run.stderr.contains("no tool named \"nope\""), "{}", run.stderr);
    assert!(run.stderr.contains("hint: tools this token sees: ") && run.stderr.contains("sum"), "{}", run.stderr);
}

#[test]
fn stateless_rmcp_with_json_replies() {
    let mut config = StreamableHttpServerConfig::default().with_sse_keep_alive(None);
    config.legacy_session_mode = false;
    config.json_response = true;
    let server = RmcpServer::with_config(config);
    let env = Env::new();
    let run = env.client().args(["--url", &server.url, "--tool", "sum", "--args", r#"{"a": -5, "b": 2}"#, "--debug"]).run();
    run.expect(0);
    assert_eq!(serde_json::from_str::<Value>(&run.stdout).unwrap(), json!({"sum": -3}));
    assert!(run.stderr.contains("< content-type: application/json"), "{}", run.stderr);
    assert!(!run.stderr.contains("mcp-session-id"), "a stateless server gave a session: {}", run.stderr);
}

#[test]
fn rmcp_really_sends_a_priming_event_first() {
    // The premise of the SSE tests above: rmcp's reply to initialize is an event stream that
    // opens with an event carrying no data.
    let server = RmcpServer::start();
    let body = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
        let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "probe", "version": "0"}}});
        let response = http_client()
            .post(&server.url)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .body(init.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        let mut response = response;
        // The stream may stay open; the first two events are enough.
        let mut text = String::new();
        while text.matches("\n\n").count() < 2 {
            let chunk = response.chunk().await.unwrap().expect("stream ended early");
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
        text
    });
    let first = body.split("\n\n").next().unwrap();
    assert!(first.lines().any(|l| l.starts_with("id:")), "{body:?}");
    assert!(first.lines().filter(|l| l.starts_with("data:")).all(|l| l.trim_end() == "data:"), "{body:?}");
    assert!(body.contains("\"protocolVersion\""), "{body:?}");
}
