//! `mcpgen serve` as operators run it: the access log (text and JSON, every request), the
//! health and readiness probes, Prometheus metrics, per-client rate limits (server and
//! `client`), the drain on SIGTERM, and TLS with a certificate reloaded from disk. The real
//! binary on `127.0.0.1:0`, spoken to with reqwest (and the `client` command).

mod support;

use serde_json::{Value, json};
use support::*;

/// The access lines (JSON objects with a `status`) of a JSON-format log.
fn json_lines(server: &Server) -> Vec<Value> {
    server.log.lines().iter().filter_map(|l| serde_json::from_str::<Value>(l).ok()).collect()
}

#[tokio::test]
async fn every_request_is_logged_with_client_info_and_never_a_token() {
    let p = Profile::sample();
    let s = p.serve(&[]);
    let token = p.token();
    let auth = Auth::sa(&token);
    let session = s.session(&auth).await;
    let reply = s.call(&session, "getOrders", json!({})).await;
    assert_eq!(reply.status, 200);
    assert_eq!(s.get("/.well-known/oauth-protected-resource/mcp").await.status, 200);
    assert_eq!(s.get("/no/such/thing").await.status, 404);
    let bad = Auth::sa("not-a-token");
    assert_eq!(s.auth_status(&bad).await, 401);

    let line = s.log.wait_for(0, |l| l.contains("tools/call getOrders"));
    let line = line.last().unwrap();
    assert!(line.contains("POST /mcp tools/call getOrders client=svc-p 200 "), "{line}");
    assert!(line.contains(" client_info=serve-tests/0"), "the session's clientInfo: {line}");
    s.log.wait_for(0, |l| l.contains("GET /.well-known/oauth-protected-resource/mcp - - client=- 200 "));
    s.log.wait_for(0, |l| l.contains("GET /no/such/thing - - client=- 404 "));
    let refused = s.log.wait_for(0, |l| l.contains("refused=invalid_token"));
    // The body of a refused request is never read: no JSON-RPC method.
    assert!(refused.last().unwrap().contains("POST /mcp - - client=- 401 "), "{refused:?}");
    s.assert_never_logged(&[&token, "not-a-token"]);
}

#[tokio::test]
async fn json_log_format_has_one_object_per_request() {
    let p = Profile::sample();
    let s = p.serve(&["--log-format", "json"]);
    let auth = Auth::sa(&p.token());
    let session = s.session(&auth).await;
    assert_eq!(s.call(&session, "getOrder", json!({"id": "1"})).await.status, 200);
    assert_eq!(s.get("/healthz").await.status, 200);
    s.log.wait_for(0, |l| l.contains("\"/healthz\""));
    let lines = json_lines(&s);
    let call = lines.iter().find(|l| l["rpc"] == "tools/call").unwrap_or_else(|| panic!("{lines:?}"));
    assert_eq!(call["method"], "POST");
    assert_eq!(call["path"], "/mcp");
    assert_eq!(call["tool"], "getOrder");
    assert_eq!(call["client_id"], "svc-p");
    assert_eq!(call["client_name"], "serve-tests");
    assert_eq!(call["client_version"], "0");
    assert_eq!(call["status"], 200);
    assert!(call["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0), "{call}");
    assert!(call["refused"].is_null());
    assert!(call["time"].as_str().is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok()), "{call}");
    let health = lines.iter().find(|l| l["path"] == "/healthz").unwrap();
    assert!(health["rpc"].is_null() && health["client_id"].is_null(), "{health}");
    // Every line is JSON, the start-up notes included.
    for line in s.log.lines() {
        assert!(serde_json::from_str::<Value>(&line).is_ok_and(|v| v["time"].is_string()), "not a JSON line: {line}");
    }
}

#[tokio::test]
async fn client_info_in_meta_is_logged_for_stateless_requests_and_escaped() {
    let p = Profile::sample();
    let s = p.serve(&["--log-format", "json"]);
    let auth = Auth::sa(&p.token());
    let session = s.session(&auth).await;
    let meta = json!({"io.modelcontextprotocol/clientInfo": {"name": "inspector\u{1b}[2J", "version": "9.9"}});
    let reply = s.request(&session, "tools/list", json!({"_meta": meta})).await;
    assert_eq!(reply.status, 200);
    let line = s.log.wait_for(0, |l| l.contains("inspector"));
    let line = line.last().unwrap();
    assert!(!line.contains('\u{1b}'), "escaped: {line}");
    let v: Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["client_name"], "inspector\u{1b}[2J", "the JSON escape keeps the value: {line}");
    assert_eq!(v["client_version"], "9.9");
}

#[tokio::test]
async fn health_and_readiness_answer_without_a_token() {
    let p = Profile::sample();
    let s = p.serve(&[]);
    let health = s.get("/healthz").await;
    assert_eq!((health.status, health.json()["status"].clone()), (200, json!("ok")));
    let ready = s.get("/readyz").await;
    assert_eq!((ready.status, ready.json()["status"].clone()), (200, json!("ready")), "{ready:?}");
}

#[tokio::test]
async fn readyz_is_503_while_the_jwks_is_unreachable_in_oauth_mode() {
    let p = Profile::sample();
    let port = closed_port();
    p.edit_sa(|sa| {
        sa.insert("mode".into(), json!("oauth"));
        sa.insert("jwks_uri".into(), json!(format!("http://127.0.0.1:{port}/jwks")));
        sa.insert("public_key".into(), Value::Null);
    });
    let s = p.serve(&[]);
    let ready = s.get("/readyz").await;
    assert_eq!(ready.status, 503, "{ready:?}");
    assert!(ready.json()["reasons"].to_string().contains("JWKS"), "{ready:?}");
    assert_eq!(s.get("/healthz").await.status, 200, "alive all the same");
}

#[tokio::test]
async fn metrics_are_off_by_default_and_count_requests_refusals_tools_and_the_cache() {
    let p = Profile::sample();
    let s = p.serve(&[]);
    assert_eq!(s.get("/metrics").await.status, 404);
    drop(s);
    p.edit_config(|doc| doc["server"]["metrics"] = json!({"enabled": true}));
    let s = p.serve(&[]);
    let auth = Auth::sa(&p.token());
    let session = s.session(&auth).await;
    for _ in 0..3 {
        assert_eq!(s.call(&session, "getOrders", json!({})).await.status, 200);
    }
    assert_eq!(s.auth_status(&Auth::sa("garbage")).await, 401);
    assert_eq!(s.auth_status(&Auth::none()).await, 401);
    let reply = s.call(&session, "getCustomers", json!({})).await;
    assert_eq!(reply.status, 403);
    let metrics = s.get("/metrics").await;
    assert_eq!(metrics.status, 200);
    assert!(metrics.header("content-type").unwrap().starts_with("text/plain; version=0.0.4"));
    let text = metrics.body;
    for expected in [
        "mcpgen_http_requests_total{method=\"POST\",rpc=\"tools/call\",status=\"200\"} 3",
        "mcpgen_http_requests_total{method=\"POST\",rpc=\"-\",status=\"401\"} 2",
        "mcpgen_http_requests_total{method=\"POST\",rpc=\"notifications/initialized\",status=\"202\"} 1",
        "mcpgen_auth_failures_total{reason=\"invalid_token\"} 1",
        "mcpgen_auth_failures_total{reason=\"missing_token\"} 1",
        "mcpgen_auth_failures_total{reason=\"insufficient_scope\"} 1",
        "mcpgen_tool_calls_total{tool=\"getOrders\",outcome=\"ok\"} 3",
        "mcpgen_sessions_created_total 1",
        "mcpgen_sessions_ended_total 0",
        "# TYPE mcpgen_http_request_duration_seconds histogram",
        "mcpgen_jwks_fetches_total{outcome=\"ok\"} 0",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    let count = |name: &str| -> u64 {
        text.lines().find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok())).unwrap_or_else(|| panic!("{name}:\n{text}"))
    };
    // initialize, initialized, 3 calls and the 403 present one token: one miss, the rest hits;
    // "garbage" is a miss too.
    assert_eq!(count("mcpgen_token_cache_misses_total "), 2, "{text}");
    assert_eq!(count("mcpgen_token_cache_hits_total "), 5, "{text}");
    let observed = count("mcpgen_http_request_duration_seconds_count ");
    assert!(observed >= 8, "{text}");
    let inf = text.lines().find_map(|l| l.strip_prefix("mcpgen_http_request_duration_seconds_bucket{le=\"+Inf\"} ")).unwrap();
    assert_eq!(inf.parse::<u64>().unwrap(), observed);

    // Families can be left out, and a typo is an error naming the file.
    p.edit_config(|doc| doc["server"]["metrics"] = json!({"enabled": true, "expose": ["requests"]}));
    eventually("metrics without the other families", RELOAD_DEADLINE, || async {
        let text = s.get("/metrics").await.body;
        if text.contains("mcpgen_http_requests_total") && !text.contains("mcpgen_tool_calls_total") { Ok(()) } else { Err(text) }
    })
    .await;
    drop(s);
    p.edit_config(|doc| doc["server"]["metrics"] = json!({"enabled": true, "expose": ["requets"]}));
    let out = p.env.cmd(&["serve", "p", "--port", "0"]).run();
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("mcp_server_config.json") && out.stderr.contains("\"requets\""), "{}", out.stderr);
}

#[tokio::test]
async fn sigterm_drains_a_slow_call_in_flight_then_exits_0() {
    use std::sync::Arc;
    // A downstream that holds its answer until the test lets it go.
    let release = Arc::new(tokio::sync::Notify::new());
    let arrived = Arc::new(tokio::sync::Notify::new());
    let (r, a) = (Arc::clone(&release), Arc::clone(&arrived));
    let app = axum::Router::new().fallback(move || {
        let (r, a) = (Arc::clone(&r), Arc::clone(&a));
        async move {
            a.notify_one();
            r.notified().await;
            axum::Json(json!([{"id": "1"}]))
        }
    });
    let downstream = Fake::app(app);
    let p = Profile::sample();
    let s = p.serve(&["--downstream", &downstream.base]);
    let auth = Auth::sa(&p.token());
    let session = s.session(&auth).await;
    let in_flight = {
        let request = s
            .in_session(&session)
            .json(&json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "getOrders", "arguments": {}}}));
        tokio::spawn(send(request))
    };
    tokio::time::timeout(WAIT, arrived.notified()).await.expect("the call reached the downstream");
    s.sigterm();
    s.wait_for_stderr("draining: ").await;
    // No new connections while draining.
    let port: u16 = s.base.rsplit(':').next().unwrap().parse().unwrap();
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "the listener is closed during the drain");
    release.notify_one();
    let reply = in_flight.await.unwrap();
    assert_eq!(reply.status, 200, "the call in flight finished: {reply:?}");
    assert_eq!(reply.json()["id"], 7);
    let (code, log) = s.wait_exit();
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("drained: every request in flight finished"), "{log}");
    assert!(log.contains("tools/call getOrders client=svc-p 200"), "{log}");
}

#[tokio::test]
async fn a_drain_that_outlasts_its_grace_period_still_exits_0() {
    use std::sync::Arc;
    // A downstream that never answers (until the test ends).
    let release = Arc::new(tokio::sync::Notify::new());
    let arrived = Arc::new(tokio::sync::Notify::new());
    let (r, a) = (Arc::clone(&release), Arc::clone(&arrived));
    let app = axum::Router::new().fallback(move || {
        let (r, a) = (Arc::clone(&r), Arc::clone(&a));
        async move {
            a.notify_one();
            r.notified().await;
            "never"
        }
    });
    let downstream = Fake::app(app);
    let p = Profile::sample();
    p.edit_config(|doc| doc["server"]["drain_seconds"] = json!(0.2));
    let s = p.serve(&["--downstream", &downstream.base]);
    let auth = Auth::sa(&p.token());
    let session = s.session(&auth).await;
    let request = s
        .in_session(&session)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "getOrders", "arguments": {}}}));
    let in_flight = tokio::spawn(request.send());
    tokio::time::timeout(WAIT, arrived.notified()).await.expect("the call reached the downstream");
    s.sigterm();
    let (code, log) = s.wait_exit();
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("still busy after 0.2 s"), "{log}");
    assert!(in_flight.await.unwrap().is_err(), "the connection was closed");
    release.notify_waiters();
}

#[tokio::test]
async fn rate_limit_answers_429_per_client_and_leaves_others_alone() {
    let p = Profile::sample();
    p.edit_config(|doc| {
        doc["security"]["rate_limit"] =
            json!({"requests_per_minute": 6, "burst": 3, "overrides": {"vip": {"requests_per_minute": 6000, "burst": 50}}});
    });
    let vip = p.mint("vip", &["orders.read"]);
    let other = p.mint("other", &["orders.read"]);
    let s = p.serve(&[]);
    let auth = Auth::sa(&p.token());
    let session = s.session(&auth).await; // 2 requests
    assert_eq!(s.call(&session, "getOrders", json!({})).await.status, 200); // 3rd
    let limited = s.call(&session, "getOrders", json!({})).await;
    assert_eq!(limited.status, 429, "{limited:?}");
    let retry: u64 = limited.header("retry-after").expect("Retry-After").parse().unwrap();
    assert!((1..=10).contains(&retry), "6 a minute: one every 10 s: {retry}");
    assert!(limited.json()["error"]["message"].as_str().unwrap().contains("rate limit"), "{limited:?}");
    // Another client has its own bucket; an override lifts the limit for one client.
    let other_session = s.session(&Auth::sa(&other)).await;
    assert_eq!(s.call(&other_session, "getOrders", json!({})).await.status, 200);
    let vip_session = s.session(&Auth::sa(&vip)).await;
    for _ in 0..10 {
        assert_eq!(s.call(&vip_session, "getOrders", json!({})).await.status, 200);
    }
    let line = s.log.wait_for(0, |l| l.contains(" 429 "));
    assert!(
        line.last().unwrap().contains("client=svc-p 429")
            && line.last().unwrap().contains("refused=rate_limited: 6 requests per minute, burst 3"),
        "{line:?}"
    );
}

#[test]
fn rate_limit_config_errors_name_the_file_and_key() {
    let p = Profile::sample();
    p.edit_config(|doc| doc["security"]["rate_limit"] = json!({"requests_per_minute": 0}));
    let out = p.env.cmd(&["serve", "p", "--port", "0"]).run();
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("mcp_server_config.json: security.rate_limit.requests_per_minute"), "{}", out.stderr);
    p.edit_config(|doc| doc["security"]["rate_limit"] = json!({"requests_per_minute": 60, "brust": 3}));
    let out = p.env.cmd(&["serve", "p", "--port", "0"]).run();
    assert!(out.stderr.contains("mcp_server_config.json") && out.stderr.contains("brust"), "{}", out.stderr);
}

#[test]
fn client_waits_out_a_short_retry_after_once_and_fails_with_6_on_a_long_one() {
    let p = Profile::sample();
    // Two a second, burst 1: the first request passes, each later one waits 1 s once and passes.
    p.edit_config(|doc| doc["security"]["rate_limit"] = json!({"requests_per_minute": 120, "burst": 1}));
    let s = p.serve(&[]);
    let out = p.env.cmd(&["client", "p", "--url", &s.url, "--tool", "getOrders"]).run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let log = s.log.wait_for(0, |l| l.contains("tools/call getOrders client=svc-p 200"));
    assert!(log.iter().any(|l| l.contains("client=svc-p 429")), "it was limited first: {log:?}");
    drop(s);

    // One a minute: the wait is too long; exit 6 with a hint.
    p.edit_config(|doc| doc["security"]["rate_limit"] = json!({"requests_per_minute": 1, "burst": 1}));
    let s = p.serve(&[]);
    let out = p.env.cmd(&["client", "p", "--url", &s.url, "--tool", "getOrders"]).run();
    assert_eq!(out.code, 6, "{}", out.stderr);
    assert!(out.stderr.contains("rate limit") && out.stderr.contains("hint:"), "{}", out.stderr);
    assert_clean_stderr(&out.stderr);
}

/// A self-signed certificate for 127.0.0.1 and localhost: (certificate PEM, key PEM).
fn self_signed() -> (String, String) {
    let generated = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).expect("rcgen");
    (generated.cert.pem(), generated.signing_key.serialize_pem())
}

/// An https client that trusts only `cert` and opens a new connection per request (so each
/// request sees the certificate served at that moment).
fn trusting(cert: &str) -> reqwest::Client {
    http_client();
    reqwest::Client::builder()
        .no_proxy()
        .tls_certs_only([reqwest::Certificate::from_pem(cert.as_bytes()).expect("certificate")])
        .pool_max_idle_per_host(0)
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("https client")
}

/// Replace `path` atomically with `text`.
fn replace(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[tokio::test]
async fn tls_serves_https_and_new_connections_get_a_renewed_certificate() {
    let p = Profile::sample();
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let (cert1, key1) = self_signed();
    replace(&cert_path, &cert1);
    replace(&key_path, &key1);
    p.edit_config(|doc| doc["server"]["tls"] = json!({"cert": cert_path, "key": key_path}));
    let s = p.serve(&[]);
    assert!(s.url.starts_with("https://127.0.0.1:"), "{}", s.url);
    let token = p.token();
    let old = trusting(&cert1);
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "tls-test", "version": "1"}}});
    let reply = send(Auth::sa(&token).apply(old.post(&s.url)).header("accept", "application/json").json(&init)).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.json()["result"]["serverInfo"]["name"], "mcpgen");
    // Plain HTTP on the TLS port gets no answer.
    assert!(s.http.get(format!("{}/healthz", s.base.replace("https://", "http://"))).send().await.is_err());
    // The resource metadata names the https URL.
    let metadata = send(old.get(format!("{}/.well-known/oauth-protected-resource/mcp", s.base))).await;
    assert_eq!(metadata.json()["resource"], s.url);

    // Renewal: new files, no restart; new connections get the new certificate.
    let (cert2, key2) = self_signed();
    replace(&key_path, &key2);
    replace(&cert_path, &cert2);
    let new = trusting(&cert2);
    eventually("the renewed certificate", RELOAD_DEADLINE, || async {
        match new.get(format!("{}/healthz", s.base)).send().await {
            Ok(r) if r.status() == 200 => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    // (A fresh client: one that connected before may resume its TLS session without a certificate.)
    assert!(trusting(&cert1).get(format!("{}/healthz", s.base)).send().await.is_err(), "the old certificate is no longer served");
    s.wait_for_stderr("reloaded the TLS certificate").await;

    // A broken renewal keeps the last good certificate.
    replace(&cert_path, "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n");
    s.wait_for_stderr("TLS certificate not reloaded, keeping the last good one").await;
    assert_eq!(new.get(format!("{}/healthz", s.base)).send().await.unwrap().status(), 200);

    // mcpgen's own client over https, trusting the certificate through SSL_CERT_FILE.
    replace(&cert_path, &cert2);
    let bundle = dir.path().join("bundle.pem");
    replace(&bundle, &cert2);
    let out = p.env.cmd(&["client", "p", "--url", &s.url, "--tool", "getOrders"]).env("SSL_CERT_FILE", &bundle).run();
    assert_eq!(out.code, 0, "{}", out.stderr);
}

#[test]
fn tls_flags_need_each_other_and_name_a_bad_file() {
    let p = Profile::sample();
    let out = p.env.cmd(&["serve", "p", "--port", "0", "--tls-cert", "c.pem"]).run();
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--tls-key"), "{}", out.stderr);
    let dir = tempfile::tempdir().unwrap();
    let (cert, _) = self_signed();
    let (_, other_key) = self_signed();
    let (cert_path, key_path) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    replace(&cert_path, &cert);
    replace(&key_path, &other_key);
    let out = p.env.cmd(&["serve", "p", "--port", "0", "--tls-cert"]).arg(&cert_path).arg("--tls-key").arg(&key_path).run();
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("k.pem does not belong to") && out.stderr.contains("hint:"), "{}", out.stderr);
    let out = p.env.cmd(&["serve", "p", "--port", "0", "--tls-cert", "/nonexistent/c.pem", "--tls-key"]).arg(&key_path).run();
    assert!(out.stderr.contains("/nonexistent/c.pem"), "{}", out.stderr);
    assert_clean_stderr(&out.stderr);

    // A FIFO planted as the certificate is refused, not waited on (run() returns: no hang).
    let fifo = dir.path().join("fifo.pem");
    rustix::fs::mknodat(rustix::fs::CWD, &fifo, rustix::fs::FileType::Fifo, rustix::fs::Mode::from_raw_mode(0o600), 0).unwrap();
    let out = p.env.cmd(&["serve", "p", "--port", "0", "--tls-cert"]).arg(&fifo).arg("--tls-key").arg(&key_path).run();
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("not a regular file"), "{}", out.stderr);

    // A profile's configuration may not reach out of the folder with a relative path.
    p.edit_config(|c| c["server"]["tls"] = json!({"cert": "../../outside/c.pem", "key": "k.pem"}));
    let out = p.env.cmd(&["serve", "p", "--port", "0"]).run();
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("server.tls.cert") && out.stderr.contains("inside the profile folder"), "{}", out.stderr);
}

#[tokio::test]
async fn the_mcp_python_sdk_calls_tools_over_tls_trusting_the_certificate_through_ssl_cert_file() {
    let p = Profile::sample();
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let (cert, key) = self_signed();
    replace(&cert_path, &cert);
    replace(&key_path, &key);
    let s = p.serve(&["--tls-cert", cert_path.to_str().unwrap(), "--tls-key", key_path.to_str().unwrap()]);
    let token = p.token();
    let (url, bundle) = (s.url.clone(), cert_path.display().to_string());
    let report = tokio::task::spawn_blocking(move || {
        support::peers::run_python_with_env("mcp_client.py", &[&url, SA_HEADER, &token], &[("SSL_CERT_FILE", &bundle)])
    })
    .await
    .unwrap();
    assert_eq!(report["server_name"], "mcpgen");
    assert_eq!(report["call"]["is_error"], false, "{report}");
    s.wait_for_stderr("tools/call getOrders client=svc-p 200").await;
}
