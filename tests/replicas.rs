//! Several `mcpgen serve` processes of one profile folder behind a real round-robin reverse
//! proxy (nginx, provisioned by `support::peers`) behave as one server: a session created on
//! one replica is accepted by the others (signed session ids), `mcpgen client` and the official
//! MCP Python SDK work through the proxy without sticky sessions, and `sa-revoke` and
//! `remint-all` on the shared folder reach every replica without a restart.

mod support;

use std::net::SocketAddr;

use serde_json::{Value, json};
use support::peers::{Nginx, run_python};
use support::*;

fn addr(server: &Server) -> SocketAddr {
    server.base.trim_start_matches("http://").parse().expect("server address")
}

/// How many requests to `/mcp` a replica logged.
fn mcp_requests(server: &Server) -> usize {
    server.stderr().lines().filter(|l| l.contains(" /mcp ")).count()
}

#[tokio::test]
async fn a_session_made_on_one_replica_is_accepted_by_the_others() {
    let p = Profile::sample();
    let (a, b) = (p.serve(&[]), p.serve(&[]));
    let auth = Auth::sa(&p.token());

    let session = a.session(&auth).await;
    assert_eq!(b.tool_names(&session).await, ["getOrders", "getOrder", "getProducts"]);
    let call = b.call(&session, "getOrder", json!({"orderId": "ord-1001"})).await;
    assert_eq!(call.status, 200, "{call:?}");

    // Bound to the client it was issued to, on every replica.
    let mut claims = p.claims();
    claims["client_id"] = json!("someone-else");
    let other = Session { auth: Auth::sa(&p.forge_claims(claims)), ..session.clone() };
    assert_eq!(b.request(&other, "tools/list", json!({})).await.status, 404);

    // DELETE ends it on the replica that received it; the others hear nothing and keep
    // accepting it until it expires (documented: it grants nothing the token does not).
    assert_eq!(a.delete_session(&session).await, 204);
    assert_eq!(a.request(&session, "tools/list", json!({})).await.status, 404);
    assert_eq!(b.request(&session, "tools/list", json!({})).await.status, 200);
}

#[tokio::test]
async fn client_and_python_sdk_work_through_round_robin_nginx() {
    let p = Profile::sample();
    let (a, b) = (p.serve(&[]), p.serve(&[]));
    let nginx = Nginx::round_robin_on_free_port(&[addr(&a), addr(&b)]);
    let url = format!("{}/mcp", nginx.base);

    // Each `client` run is initialize, notifications/initialized, tools/list, tools/call and
    // DELETE: five requests, so every session spans both replicas.
    for _ in 0..3 {
        let run = p.env.cmd(&["client", "p", "--url", &url, "--tool", "getOrder", "--args", r#"{"orderId":"ord-1001"}"#]).run();
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(serde_json::from_str::<Value>(&run.stdout).unwrap()["id"], "ord-1001", "{}", run.stdout);
    }

    let (sdk_url, token) = (url.clone(), p.token());
    let report = tokio::task::spawn_blocking(move || run_python("mcp_client.py", &[&sdk_url, SA_HEADER, &token])).await.unwrap();
    assert_eq!(report["server_name"], "mcpgen");
    assert_eq!(report["has_session"], true);
    assert_eq!(report["tools"], json!(["getOrders", "getOrder", "getProducts"]));
    assert_eq!(report["call"]["is_error"], false, "{report}");

    // The proxy really spread the work.
    let (on_a, on_b) = (mcp_requests(&a), mcp_requests(&b));
    assert!(on_a >= 5 && on_b >= 5, "requests per replica: {on_a} and {on_b}\nA:\n{}\nB:\n{}", a.stderr(), b.stderr());
    // (Request lines only: a 404 inside a port number of a warning is no refused session.)
    let not_found = |s: &Server| s.stderr().lines().any(|l| l.contains(" /mcp ") && l.contains(" 404 "));
    assert!(!not_found(&a) && !not_found(&b), "a replica did not know a session:\n{}\n{}", a.stderr(), b.stderr());
}

#[tokio::test]
async fn revocation_and_rotation_on_the_shared_folder_reach_every_replica() {
    let p = Profile::sample();
    let replicas = [p.serve(&[]), p.serve(&[])];
    let bot = p.mint("ci-bot", &["orders.read"]);
    for s in &replicas {
        s.wait_for_status(&Auth::sa(&bot), 200, "ci-bot accepted").await;
    }
    p.run_ok(&["sa-revoke", "p", "--name", "ci-bot"]);
    for s in &replicas {
        s.wait_for_status(&Auth::sa(&bot), 401, "ci-bot revoked on every replica").await;
    }

    // A rotation changes the signing key, and with it the session key: a session opened before
    // stays valid on every replica (the previous key is still accepted), with the new token.
    let old = Auth::sa(&p.token());
    let session = replicas[0].session(&old).await;
    p.run_ok(&["remint-all", "p", "--grace-days", "1"]);
    let new = Auth::sa(&p.token());
    for s in &replicas {
        s.wait_for_status(&new, 200, "the re-minted token accepted").await;
        let continued = Session { auth: new.clone(), ..session.clone() };
        assert_eq!(s.request(&continued, "tools/list", json!({})).await.status, 200, "{}", s.stderr());
    }
}

#[tokio::test]
async fn a_session_secret_from_the_environment_decides_which_replicas_agree() {
    let p = Profile::sample();
    let auth = Auth::sa(&p.token());
    let serve =
        |secret: &str| Server::start(p.env.cmd(&["serve", "p", "--bind", "127.0.0.1", "--port", "0"]).env("MCPGEN_SESSION_SECRET", secret));
    let (a, b, c) = (serve(&"1".repeat(32)), serve(&"1".repeat(32)), serve(&"2".repeat(32)));
    let session = a.session(&auth).await;
    assert_eq!(b.request(&session, "tools/list", json!({})).await.status, 200, "same secret, same sessions");
    assert_eq!(c.request(&session, "tools/list", json!({})).await.status, 404, "another secret, another cluster");

    let short = p.env.cmd(&["serve", "p", "--bind", "127.0.0.1", "--port", "0"]).env("MCPGEN_SESSION_SECRET", "too-short").run();
    assert_refused(&short, 2, &["MCPGEN_SESSION_SECRET", "32 bytes"]);
}

#[tokio::test]
async fn behind_a_proxy_the_metadata_names_the_public_url() {
    let p = Profile::sample();
    let (a, b) = (p.serve(&[]), p.serve(&[]));
    let nginx = Nginx::round_robin_on_free_port(&[addr(&a), addr(&b)]);
    let public = format!("{}/mcp", nginx.base);
    p.edit_config(|c| c["server"]["public_url"] = json!(public));
    let http = reqwest::Client::new();
    // Each replica reloads the configuration; then a 401 through the proxy links the metadata
    // at the proxy, and the metadata names the proxy's URL as the resource.
    let expected = format!("resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\"", nginx.base);
    for s in [&a, &b] {
        eventually("the public URL in the challenge", RELOAD_DEADLINE, || async {
            let reply = send(s.post().json(&modern_body("tools/list", json!({})))).await;
            let challenge = reply.header("www-authenticate").unwrap_or_default().to_owned();
            if challenge.contains(&expected) { Ok(()) } else { Err(challenge) }
        })
        .await;
    }
    let metadata = send(http.get(format!("{}/.well-known/oauth-protected-resource/mcp", nginx.base))).await.json();
    assert_eq!(metadata["resource"], public.as_str());
    assert_eq!(metadata["jwks_uri"], format!("{}/.well-known/jwks.json", nginx.base));

    // A URL that is not one is refused at start, naming the file and the key.
    p.edit_config(|c| c["server"]["public_url"] = json!("ftp://user:pw@example.com/mcp"));
    let run = p.env.cmd(&["serve", "p", "--bind", "127.0.0.1", "--port", "0"]).run();
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("mcp_server_config.json") && run.stderr.contains("server.public_url"), "{}", run.stderr);
    assert!(!run.stderr.contains("pw@"), "{}", run.stderr);
}
