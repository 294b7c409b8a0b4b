//! Interoperability with the Python software the original product's users have, installed by
//! the tests themselves (`support::peers::python`, pinned in `tests/peers/requirements.txt`):
//! PyJWT verifies a minted token with `sa/public.pem` and `cryptography` loads `sa/private.pem`;
//! the official MCP Python SDK's Streamable HTTP client lists and calls tools on `mcpgen serve`
//! as a service account.

mod support;

use serde_json::{Value, json};
use support::peers::run_python;
use support::*;

#[test]
fn pyjwt_verifies_tokens_and_cryptography_loads_the_private_key() {
    let env = Env::new();
    env.ok(&["up", "--instance", "py", "--port", "8123", "--issuer", "py-issuer"]);
    env.ok(&["sa-token", "py", "--name", "ci-bot", "--scopes", "orders.read", "products.read", "--days", "30"]);
    // A token signed by a different key: another profile's.
    env.up("other");
    let path = |profile: &str, file: &str| env.file(profile, file).display().to_string();

    let report = run_python(
        "pyjwt_check.py",
        &[
            &path("py", "sa/ci-bot.jwt"),
            &path("py", "sa/public.pem"),
            &path("py", "sa/private.pem"),
            "http://127.0.0.1:8123/mcp",
            "py-issuer",
            &path("other", "sa/token.jwt"),
        ],
    );
    let entry = env.token_entry("py", "ci-bot");
    assert_eq!(report["claims"]["jti"], entry["jti"]);
    assert_eq!(report["claims"]["client_id"], "ci-bot");
    assert_eq!(report["claims"]["scope"], "orders.read products.read");
    assert_eq!(report["header"]["alg"], "EdDSA");
    assert_eq!(report["header"]["kid"], env.profile_json("py")["key_id"]);
    assert_eq!(report["same_key"], true, "sa/private.pem and sa/public.pem are one keypair");
    assert_eq!(report["refused"], json!(["audience", "signature"]));
}

#[tokio::test]
async fn the_mcp_python_sdk_lists_and_calls_tools_with_the_sa_header() {
    let p = Profile::sample();
    let s = p.serve(&[]);
    let token = p.token();
    let (url, header) = (s.url.clone(), SA_HEADER.to_owned());
    let sdk_token = token.clone();
    let report = tokio::task::spawn_blocking(move || run_python("mcp_client.py", &[&url, &header, &sdk_token])).await.unwrap();

    assert_eq!(report["server_name"], "mcpgen");
    assert!(
        ["2025-03-26", "2025-06-18", "2025-11-25"].contains(&report["protocol_version"].as_str().unwrap()),
        "{}",
        report["protocol_version"]
    );
    assert_eq!(report["has_session"], true, "the SDK kept the Mcp-Session-Id");
    assert_eq!(report["tools"], json!(["getOrders", "getOrder", "getProducts"]), "getCustomers (customers.read) is hidden");
    assert_eq!(report["schemas"]["getOrder"]["required"], json!(["orderId"]));

    let call = &report["call"];
    assert_eq!(call["is_error"], false, "{call}");
    let orders = &call["structured"]["result"];
    assert_eq!(orders[0]["id"], "ord-1001", "{call}");
    let text: Value = serde_json::from_str(call["text"][0].as_str().expect("a text block")).expect("the text is JSON");
    assert_eq!(&text, orders, "text and structuredContent agree");

    s.wait_for_stderr("tools/call getOrders client=svc-p 200").await;
    s.assert_never_logged(&[&token]);
}
