//! The peers the tests provision for themselves work, before any mcpgen feature leans on them:
//! a real nginx round-robins between loopback backends, and panva's oidc-provider (installed by
//! `npm ci` with mcp-remote) issues a JWT access token to a client-credentials client.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};
use support::peers::{self, Nginx, OidcProvider};
use support::*;

/// A backend that answers every request with `name` as its body and counts the requests; it
/// runs until the test process ends.
fn backend(name: &'static str) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let count = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&count);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(30)));
            let mut reader = BufReader::new(&stream);
            let mut line = String::new();
            // The request head ends with an empty line.
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                line.clear();
            }
            counter.fetch_add(1, Ordering::SeqCst);
            let _ = (&stream).write_all(
                format!("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{name}", name.len())
                    .as_bytes(),
            );
        }
    });
    (addr, count)
}

#[test]
fn nginx_round_robins_between_two_loopback_backends() {
    let (a, a_count) = backend("A");
    let (b, b_count) = backend("B");
    let nginx = Nginx::round_robin_on_free_port(&[a, b]);
    let proxy = SocketAddr::from(([127, 0, 0, 1], nginx.port));
    let bodies: Vec<String> = (0..6)
        .map(|_| {
            let (status, body) = peers::http_get(proxy, "/");
            assert_eq!(status, 200, "{body}; nginx log:\n{}", nginx.log.text());
            body
        })
        .collect();
    assert!(bodies.windows(2).all(|w| w[0] != w[1]), "not round-robin: {bodies:?}");
    assert_eq!(bodies.iter().filter(|b| *b == "A").count(), 3, "{bodies:?}");
    assert_eq!((a_count.load(Ordering::SeqCst), b_count.load(Ordering::SeqCst)), (3, 3));
}

#[tokio::test]
async fn oidc_provider_issues_jwt_access_tokens_for_a_resource() {
    let modules = tokio::task::spawn_blocking(peers::node_modules).await.unwrap();
    assert!(modules.join("mcp-remote/package.json").is_file(), "npm ci installed mcp-remote");
    let config = json!({"clients": [{"client_id": "svc-robot", "client_secret": "robot-s3cret"}]});
    let idp = tokio::task::spawn_blocking(move || OidcProvider::start(&config)).await.unwrap();
    let http = http_client();

    let discovery: Value = http.get(format!("{}/.well-known/openid-configuration", idp.issuer)).send().await.unwrap().json().await.unwrap();
    assert_eq!(discovery["issuer"], idp.issuer);
    let token_endpoint = discovery["token_endpoint"].as_str().expect("token_endpoint").to_owned();
    assert!(discovery["grant_types_supported"].as_array().unwrap().contains(&json!("client_credentials")), "{discovery}");
    assert!(discovery["introspection_endpoint"].is_string() && discovery["revocation_endpoint"].is_string(), "{discovery}");

    let jwks: Value = http.get(discovery["jwks_uri"].as_str().unwrap()).send().await.unwrap().json().await.unwrap();
    let mut algs: Vec<&str> = jwks["keys"].as_array().unwrap().iter().map(|k| k["alg"].as_str().unwrap()).collect();
    algs.sort();
    assert_eq!(algs, ["ES256", "EdDSA", "RS256"]);
    assert!(jwks["keys"].as_array().unwrap().iter().all(|k| k.get("d").is_none()), "private parts published: {jwks}");

    let resource = "http://127.0.0.1:8000/mcp";
    let reply = http
        .post(&token_endpoint)
        .basic_auth("svc-robot", Some("robot-s3cret"))
        .form(&[("grant_type", "client_credentials"), ("scope", "orders.read"), ("resource", resource)])
        .send()
        .await
        .unwrap();
    let status = reply.status();
    let body: Value = reply.json().await.unwrap();
    assert_eq!(status, 200, "{body}; provider log:\n{}", idp.log.text());
    assert_eq!(body["token_type"], "Bearer");
    let token = body["access_token"].as_str().expect("access_token");
    assert_eq!(token.split('.').count(), 3, "a JWT access token: {token}");
    assert_eq!(jwt_header(token)["alg"], "RS256");
    let claims = jwt_claims(token);
    assert_eq!(claims["aud"], resource);
    assert_eq!(claims["iss"], idp.issuer);
    assert_eq!(claims["client_id"], "svc-robot");
    assert_eq!(claims["scope"], "orders.read");
}
