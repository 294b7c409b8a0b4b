//! Interoperability with the official Rust MCP SDK: rmcp's Streamable HTTP client initializes,
//! lists and calls tools on the real `mcpgen serve`, authenticated as a service account — with
//! the seed's custom header, and with `Authorization: Bearer` when the profile is in `sso_mode`.

mod support;

use std::collections::HashMap;

use reqwest::header::{HeaderName, HeaderValue};
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, ClientConfig};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};
use support::*;

fn transport(config: StreamableHttpClientTransportConfig) -> StreamableHttpClientTransport<reqwest::Client> {
    lib::init_tls();
    StreamableHttpClientTransport::from_config(config)
}

fn with_sa_header(url: &str, token: &str) -> StreamableHttpClientTransportConfig {
    let headers = HashMap::from([(HeaderName::from_static("x-oemcp-serviceaccount"), HeaderValue::from_str(token).unwrap())]);
    StreamableHttpClientTransportConfig::with_uri(url).custom_headers(headers)
}

fn args(value: Value) -> serde_json::Map<String, Value> {
    value.as_object().cloned().expect("object")
}

#[tokio::test]
async fn rmcp_client_lists_and_calls_tools_with_the_sa_header() {
    let p = Profile::sample();
    let s = p.serve(&[]);
    let client = ClientConfig::default().serve(transport(with_sa_header(&s.url, &p.token()))).await.expect("rmcp initialize");

    let info = client.peer_info().expect("server info after initialize");
    assert_eq!(info.server_info.as_ref().map(|i| i.name.as_str()), Some("mcpgen"));
    assert!(
        ["2025-03-26", "2025-06-18", "2025-11-25"].contains(&info.protocol_version.to_string().as_str()),
        "{:?}",
        info.protocol_version
    );
    assert!(info.capabilities.tools.is_some());

    let tools = client.list_all_tools().await.expect("tools/list");
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(names, ["getOrders", "getOrder", "getProducts"], "getCustomers (customers.read) is hidden from this token");
    let get_order = tools.iter().find(|t| t.name == "getOrder").unwrap();
    assert_eq!(get_order.input_schema.get("required"), Some(&json!(["orderId"])));
    assert!(get_order.description.as_deref().is_some_and(|d| !d.is_empty()));

    let result = client
        .call_tool(CallToolRequestParams::new("getOrder").with_arguments(args(json!({"orderId": "ord-1001"}))))
        .await
        .expect("tools/call");
    assert_eq!(result.is_error, Some(false));
    let structured = result.structured_content.clone().expect("structuredContent");
    assert_eq!(structured["id"], "ord-1001");
    let text = result.content.first().and_then(|c| c.as_text()).map(|t| t.text.clone()).expect("text content");
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), structured);

    let tool_error = client.call_tool(CallToolRequestParams::new("getOrder").with_arguments(args(json!({})))).await.expect("tools/call");
    assert_eq!(tool_error.is_error, Some(true), "a missing argument is a tool error: {tool_error:?}");

    assert!(client.call_tool(CallToolRequestParams::new("noSuchTool")).await.is_err(), "unknown tool is a JSON-RPC error");
    assert!(client.call_tool(CallToolRequestParams::new("getCustomers")).await.is_err(), "403 insufficient_scope reaches the client");

    client.cancel().await.expect("close");
    s.wait_for_stderr("tools/call getOrder client=svc-p 200").await;
    s.wait_for_stderr("DELETE /mcp - - client=svc-p 204").await;
    s.assert_never_logged(&[&p.token()]);
}

#[tokio::test]
async fn rmcp_client_without_the_token_cannot_initialize() {
    let p = Profile::sample();
    let s = p.serve(&[]);
    let refused = ClientConfig::default().serve(transport(StreamableHttpClientTransportConfig::with_uri(s.url.as_str()))).await;
    assert!(refused.is_err(), "the server requires a service-account token");
    let forged = ClientConfig::default().serve(transport(with_sa_header(&s.url, "a.b.c"))).await;
    assert!(forged.is_err(), "an invalid token is refused");
    s.wait_for_stderr("client=- 401").await;
}

#[tokio::test]
async fn rmcp_bearer_auth_header_works_in_sso_mode() {
    let p = Profile::sample();
    p.edit_sa(|sa| {
        sa.insert("sso_mode".into(), json!(true));
    });
    let s = p.serve(&[]);
    let config = StreamableHttpClientTransportConfig::with_uri(s.url.as_str()).auth_header(p.token());
    let client = ClientConfig::default().serve(transport(config)).await.expect("rmcp initialize with Authorization: Bearer");
    let names: Vec<String> = client.list_all_tools().await.expect("tools/list").into_iter().map(|t| t.name.into_owned()).collect();
    assert_eq!(names, ["getOrders", "getOrder", "getProducts"]);
    let result = client.call_tool(CallToolRequestParams::new("getProducts")).await.expect("tools/call");
    assert_eq!(result.is_error, Some(false));
    assert!(result.structured_content.is_some_and(|v| v["result"].is_array()));
    client.cancel().await.expect("close");
}
