//! `mcpgen client` end to end: the real binary against the real `mcpgen serve` (a child on
//! `127.0.0.1:0`) and against fake servers written here (axum, in-process) where a test needs a
//! server to misbehave in a precise way — SSE framing, forgotten sessions, pagination, hostile
//! tool descriptions, OAuth2 token endpoints. Every flag and every exit code (0–5) is covered.
//!
//! Which token the real server saw is read from its request log on stderr (`client=<client_id>`);
//! "nothing was sent" is checked by running a marker client afterwards and finding only the
//! marker's requests in the log.

mod support;

use std::time::Instant;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{Value, json};
use support::*;

const P: &str = "p";

/// A profile `p` (primary `default`, client `svc-p`, scopes orders.read products.read) and its
/// server in mock mode.
fn served() -> (Env, Server) {
    let env = Env::with_profile(P);
    let served = env.serve(P, &["--mock"]);
    (env, served)
}

fn names(listing: &Value) -> Vec<String> {
    listing["tools"].as_array().expect("tools array").iter().map(|t| t["name"].as_str().unwrap().to_owned()).collect()
}

// ---------------------------------------------------------------------------------------------
// Listing and calling against the real server

#[test]
fn lists_tools_visible_to_the_primary_token() {
    let (env, server) = served();
    let from = server.log.len();
    let run = env.client().args([P, "--url", &server.url]).run();
    run.expect(0);
    assert_eq!(
        run.stdout,
        "Tools: 3 | Prompts: 0\nToolNames:\n\
         - getOrders: List orders. Lists recent orders, optionally filtered by status.\n\
         - getOrder: Get one order\n\
         - getProducts: List products. Lists the product catalogue.\n"
    );
    // getCustomers needs customers.read, which the primary lacks: hidden.
    assert!(!run.stdout.contains("getCustomers"));
    let log = server.requests_until(from, "tools/list");
    assert!(clients_in(&log).iter().all(|c| c == "svc-p"), "{log:?}");
    assert!(log.iter().any(|l| l.contains("tools/list")), "{log:?}");
}

#[test]
fn calls_a_tool_as_a_named_token() {
    let (env, server) = served();
    env.mint(P, "ci-bot", &["orders.read"]);
    let from = server.log.len();
    let run = env.client().args([P, "--url", &server.url, "--sa-token", "ci-bot", "--tool", "getOrders", "--args", "{}"]).run();
    run.expect(0);
    let orders: Value = serde_json::from_str(&run.stdout).expect("JSON result");
    assert_eq!(orders[0]["id"], "ord-1001");
    assert_eq!(orders.as_array().unwrap().len(), 2);
    // Pretty-printed for people.
    assert!(run.stdout.starts_with("[\n  {\n"), "{}", run.stdout);
    let log = server.requests_until(from, "tools/call");
    assert!(log.iter().any(|l| l.contains("tools/call getOrders") && l.contains("client=ci-bot") && l.contains(" 200 ")), "{log:?}");
    assert!(clients_in(&log).iter().all(|c| c == "ci-bot"), "{log:?}");
}

#[test]
fn tool_without_args_sends_an_empty_object() {
    let env = Env::with_profile(P);
    let fake = FakeMcp::default().start();
    let run = env.client().args([P, "--url", &fake.url, "--tool", "echo"]).run();
    run.expect(0);
    // The default echo tool sends its arguments back.
    assert_eq!(run.stdout, "{}\n");
    let call = fake.requests().into_iter().find(|r| r.rpc() == "tools/call").expect("tools/call");
    assert_eq!(call.json()["params"], json!({"name": "echo", "arguments": {}}));
}

#[test]
fn token_choice_flag_then_env_then_client_env_then_mcp_json() {
    let (env, server) = served();
    env.mint(P, "ci-bot", &["orders.read"]);
    let env_jwt = env.mint(P, "from-env", &["orders.read"]);
    let file_jwt = env.mint(P, "from-file", &["orders.read"]);
    let client_env = env.profile_dir(P).join("client/client.env");
    std::fs::write(&client_env, format!("SERVICE_ACCOUNT_JWT={file_jwt}\n")).unwrap();

    let seen = |extra: &[&str], variable: Option<&str>| -> Vec<String> {
        let from = server.log.len();
        let mut cmd = env.client().args([P, "--url", &server.url]).args(extra);
        if let Some(jwt) = variable {
            cmd = cmd.env("SERVICE_ACCOUNT_JWT", jwt);
        }
        cmd.run().expect(0);
        let mut clients = clients_in(&server.requests_until(from, "tools/list"));
        clients.dedup();
        clients
    };
    // --sa-token beats everything.
    assert_eq!(seen(&["--sa-token", "ci-bot"], Some(&env_jwt)), ["ci-bot"]);
    // Then $SERVICE_ACCOUNT_JWT beats client/client.env.
    assert_eq!(seen(&[], Some(&env_jwt)), ["from-env"]);
    // An empty variable counts as unset.
    assert_eq!(seen(&[], Some("  ")), ["from-file"]);
    // Then client/client.env beats client/mcp.json.
    assert_eq!(seen(&[], None), ["from-file"]);
    // Without client.env: the primary in client/mcp.json.
    std::fs::remove_file(&client_env).unwrap();
    assert_eq!(seen(&[], None), ["svc-p"]);
}

#[test]
fn header_name_and_prefix_come_from_the_server_configuration() {
    let env = Env::with_profile(P);
    let config_path = env.profile_dir(P).join("mcp_server_config.json");
    let mut config: Value = serde_json::from_str(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
    let sa = &mut config["security"]["authentication"]["service_account"];
    sa["header"] = json!("X-Robot-Token");
    sa["prefix"] = json!("Token ");
    std::fs::write(&config_path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
    let jwt = std::fs::read_to_string(env.profile_dir(P).join("sa/token.jwt")).unwrap().trim().to_owned();

    let fake = FakeMcp::default().start();
    let run = env.client().args([P, "--url", &fake.url, "--debug"]).run();
    run.expect(0);
    for request in fake.requests() {
        assert_eq!(request.header("x-robot-token"), Some(format!("Token {jwt}")));
        assert_eq!(request.header(SA_HEADER), None);
    }
    assert!(run.stderr.contains("> x-robot-token: <redacted>"), "{}", run.stderr);
    assert!(!run.stderr.contains(&jwt));

    // The real server, reading the same configuration, accepts it.
    let server = env.serve(P, &["--mock"]);
    let from = server.log.len();
    env.client().args([P, "--url", &server.url, "--tool", "getOrders"]).run().expect(0);
    assert!(clients_in(&server.requests_until(from, "tools/list")).iter().all(|c| c == "svc-p"));
}

#[test]
fn list_json_is_parseable_and_complete() {
    let (env, server) = served();
    let run = env.client().args([P, "--url", &server.url, "--list-json"]).run();
    run.expect(0);
    let listing: Value = serde_json::from_str(&run.stdout).expect("--list-json prints JSON");
    assert_eq!(names(&listing), ["getOrders", "getOrder", "getProducts"]);
    assert_eq!(listing["prompts"], json!([]));
    let get_order = &listing["tools"][1];
    assert_eq!(get_order["inputSchema"]["required"], json!(["orderId"]));

    // With --tool: that tool only.
    let run = env.client().args([P, "--url", &server.url, "--list-json", "--tool", "getOrder"]).run();
    run.expect(0);
    let listing: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(names(&listing), ["getOrder"]);
}

#[test]
fn list_details_shows_input_schemas() {
    let (env, server) = served();
    let run = env.client().args([P, "--url", &server.url, "--list-details"]).run();
    run.expect(0);
    assert_eq!(run.stdout.matches("  inputSchema:\n").count(), 3, "{}", run.stdout);
    assert!(run.stdout.contains("- getOrder: Get one order\n  inputSchema:\n    {\n"), "{}", run.stdout);
    assert!(run.stdout.contains("\"orderId\""), "{}", run.stdout);
    assert!(run.stdout.contains("annotations: {\"readOnlyHint\":true"), "{}", run.stdout);

    let run = env.client().args([P, "--url", &server.url, "--list-details", "--tool", "getOrder"]).run();
    run.expect(0);
    assert!(run.stdout.starts_with("- getOrder: Get one order\n  inputSchema:\n"), "{}", run.stdout);
    assert_eq!(run.stdout.matches("inputSchema:").count(), 1, "{}", run.stdout);
    assert!(!run.stdout.contains("getOrders"), "{}", run.stdout);

    // A tool this token cannot see: exit 5 naming what it can see.
    let run = env.client().args([P, "--url", &server.url, "--list-details", "--tool", "getCustomers"]).run();
    run.expect(5);
    assert!(run.stderr.contains("getCustomers") && run.stderr.contains("getOrders"), "{}", run.stderr);
}

#[test]
fn args_from_inline_json_file_and_stdin() {
    let (env, server) = served();
    let file = env.dir.path().join("args.json");
    std::fs::write(&file, r#"{"orderId": "ord-1001"}"#).unwrap();
    let at_file = format!("@{}", file.display());
    for run in [
        env.client().args([P, "--url", &server.url, "--tool", "getOrder", "--args", r#"{"orderId":"ord-1001"}"#]).run(),
        env.client().args([P, "--url", &server.url, "--tool", "getOrder", "--args", &at_file]).run(),
        env.client().args([P, "--url", &server.url, "--tool", "getOrder", "--args", "-"]).stdin(r#"{"orderId": "ord-1001"}"#).run(),
    ] {
        run.expect(0);
        let order: Value = serde_json::from_str(&run.stdout).expect("JSON result");
        assert_eq!(order["id"], "ord-1001");
    }
}

#[test]
fn args_are_checked_against_the_tool_schema_before_the_call() {
    let (env, server) = served();
    let cases = [
        ("getOrder", "{}", "orderId: required field is missing"),
        ("getOrder", r#"{"orderId": 7}"#, "orderId: expected string, got integer"),
        ("getOrders", r#"{"limit": 0}"#, "limit: 0 is less than the minimum 1"),
        ("getOrders", r#"{"status": "lost"}"#, "status: \"lost\" is not one of"),
    ];
    for (tool, args, message) in cases {
        let from = server.log.len();
        let run = env.client().args([P, "--url", &server.url, "--tool", tool, "--args", args]).run();
        run.expect(2);
        assert!(run.stderr.contains(&format!("error: --args: {message}")), "{args}: {}", run.stderr);
        assert!(run.stderr.contains(&format!("--tool {tool} --list-details")), "{}", run.stderr);
        // The session ends without the call ever being made.
        let log = server.requests_until(from, "tools/list");
        assert!(!log.iter().any(|l| l.contains("tools/call")), "{log:?}");
    }
}

#[test]
fn bad_args_json_is_a_usage_error_before_any_request() {
    let env = Env::with_profile(P);
    // A closed port: had the client tried to connect, it would exit 4, not 2.
    let url = format!("http://127.0.0.1:{}/mcp", closed_port());
    let missing = format!("@{}", env.dir.path().join("missing.json").display());
    let cases: [(&str, Option<&str>, &str); 5] = [
        ("{orderId:", None, "--args: invalid JSON"),
        ("[1, 2]", None, "--args: must be a JSON object"),
        ("\"text\"", None, "--args: must be a JSON object"),
        (&missing, None, "--args: cannot read"),
        ("-", Some("not json"), "--args: invalid JSON"),
    ];
    for (args, stdin, message) in cases {
        let mut cmd = env.client().args([P, "--url", &url, "--tool", "getOrder", "--args", args]);
        if let Some(input) = stdin {
            cmd = cmd.stdin(input);
        }
        let run = cmd.run();
        run.expect(2);
        assert!(run.stderr.contains(message), "{args}: {}", run.stderr);
        assert!(run.stdout.is_empty());
    }
}

// ---------------------------------------------------------------------------------------------
// Refusals (exit 3), tool failures (exit 5)

#[test]
fn scope_refusal_exits_3_with_error_description_scope_and_metadata() {
    let (env, server) = served();
    let run = env.client().args([P, "--url", &server.url, "--tool", "getCustomers", "--args", "{}"]).run();
    run.expect(3);
    assert!(run.stdout.is_empty());
    let stderr = &run.stderr;
    assert!(stderr.contains("HTTP 403 insufficient_scope"), "{stderr}");
    assert!(stderr.contains("the token lacks a required scope"), "{stderr}");
    assert!(stderr.contains("needs scope customers.read"), "{stderr}");
    assert!(stderr.contains(&format!("{}/.well-known/oauth-protected-resource/mcp", server.base)), "{stderr}");
    assert!(stderr.contains("mcpgen sa-token p --name NAME --scopes customers.read"), "{stderr}");
}

#[test]
fn invalid_token_exits_3_with_invalid_token() {
    let (env, server) = served();
    // -H replaces the service-account header the profile would have sent.
    let run = env.client().args([P, "--url", &server.url, "-H", "X-OEMCP-SERVICEACCOUNT: not-a-jwt"]).run();
    run.expect(3);
    assert!(run.stderr.contains("HTTP 401 invalid_token"), "{}", run.stderr);
    assert!(run.stderr.contains("/.well-known/oauth-protected-resource/mcp"), "{}", run.stderr);
}

#[test]
fn no_token_at_all_exits_3_with_a_hint() {
    let (env, server) = served();
    // No profile: only $SERVICE_ACCOUNT_JWT could supply a token, and it is unset.
    let run = env.client().args(["--url", &server.url]).run();
    run.expect(3);
    assert!(run.stderr.contains("HTTP 401"), "{}", run.stderr);
    assert!(run.stderr.contains("a service-account token is required"), "{}", run.stderr);
    assert!(run.stderr.contains("hint: pass a token"), "{}", run.stderr);

    // The same, with the token in the environment: works without a profile.
    let jwt = std::fs::read_to_string(env.profile_dir(P).join("sa/token.jwt")).unwrap();
    let run = env.client().args(["--url", &server.url, "--tool", "getOrders"]).env("SERVICE_ACCOUNT_JWT", jwt.trim()).run();
    run.expect(0);
    assert!(run.stdout.contains("ord-1002"));
}

#[test]
fn unknown_tool_exits_5() {
    let (env, server) = served();
    let run = env.client().args([P, "--url", &server.url, "--tool", "noSuchTool", "--args", "{}"]).run();
    run.expect(5);
    assert!(run.stderr.contains("no tool named \"noSuchTool\""), "{}", run.stderr);
    assert!(run.stderr.contains("hint: tools this token sees: getOrders, getOrder, getProducts"), "{}", run.stderr);
    assert!(!run.stderr.contains("did you mean"), "{}", run.stderr);
    // A typo gets the nearest name.
    let run = env.client().args([P, "--url", &server.url, "--tool", "getordres"]).run();
    run.expect(5);
    assert!(run.stderr.contains("did you mean getOrders?"), "{}", run.stderr);
}

#[test]
fn downstream_failure_is_a_tool_error_exit_5() {
    let env = Env::with_profile(P);
    let downstream = format!("http://127.0.0.1:{}", closed_port());
    let server = env.serve(P, &["--downstream", &downstream]);
    let run = env.client().args([P, "--url", &server.url, "--tool", "getOrders", "--args", "{}"]).run();
    run.expect(5);
    assert!(run.stderr.contains("tool getOrders reported an error"), "{}", run.stderr);
    assert!(run.stdout.is_empty());
}

#[test]
fn expired_token_is_refused_locally_and_nothing_is_sent() {
    let (env, server) = served();
    let dir = env.profile_dir(P);
    let key = private_key(&env, P);
    let minter = lib::Minter::new(&key).unwrap();
    let template = jwt_claims(std::fs::read_to_string(dir.join("sa/token.jwt")).unwrap().trim());
    let now = chrono::Utc::now().timestamp();
    let mint = |exp: i64| {
        minter
            .mint(&lib::Claims {
                iss: template["iss"].as_str().unwrap().into(),
                sub: "old-bot".into(),
                client_id: "old-bot".into(),
                scope: "orders.read".into(),
                aud: template["aud"].as_str().unwrap().into(),
                iat: now - 7200,
                nbf: now - 7200,
                exp,
                jti: lib::new_jti(),
            })
            .unwrap()
    };

    // Control: the same token, still valid, is accepted (so the refusal below is the expiry).
    let from = server.log.len();
    env.client().args([P, "--url", &server.url]).env("SERVICE_ACCOUNT_JWT", mint(now + 3600)).run().expect(0);
    assert_eq!(clients_in(&server.requests_until(from, "tools/list")).first().map(String::as_str), Some("old-bot"));

    let expired = mint(now - 3600);
    for args in [vec![P, "--url", &server.url], vec!["--url", &server.url]] {
        let from = server.log.len();
        let run = env.client().args(&args).env("SERVICE_ACCOUNT_JWT", &expired).run();
        run.expect(3);
        assert!(run.stderr.contains("$SERVICE_ACCOUNT_JWT expired at"), "{}", run.stderr);
        assert!(run.stderr.contains("nothing was sent"), "{}", run.stderr);
        assert!(!run.stderr.contains(&expired), "the token leaked: {}", run.stderr);
        // The marker run's requests are the only ones the server saw since.
        env.client().args([P, "--url", &server.url]).run().expect(0);
        let log = server.requests_until(from, "tools/list");
        assert!(clients_in(&log).iter().all(|c| c == "svc-p"), "the expired token reached the server: {log:?}");
    }
}

#[test]
fn revoked_token_is_refused_locally_and_nothing_is_sent() {
    let (env, server) = served();
    let jwt = env.mint(P, "ci-bot", &["orders.read"]);
    // Control: before revocation it works.
    env.client().args([P, "--url", &server.url]).env("SERVICE_ACCOUNT_JWT", &jwt).run().expect(0);
    env.ok(&["sa-revoke", P, "--name", "ci-bot"]);

    let from = server.log.len();
    let run = env.client().args([P, "--url", &server.url, "--tool", "getOrders"]).env("SERVICE_ACCOUNT_JWT", &jwt).run();
    run.expect(3);
    assert!(run.stderr.contains("$SERVICE_ACCOUNT_JWT has been revoked; nothing was sent"), "{}", run.stderr);
    assert!(run.stderr.contains("hint: unset SERVICE_ACCOUNT_JWT (it may belong to another profile)"), "{}", run.stderr);
    env.client().args([P, "--url", &server.url]).run().expect(0);
    let log = server.requests_until(from, "tools/list");
    assert!(clients_in(&log).iter().all(|c| c == "svc-p"), "the revoked token reached the server: {log:?}");

    // The token is gone from the profile, so naming it is a usage error.
    let run = env.client().args([P, "--url", &server.url, "--sa-token", "ci-bot"]).run();
    run.expect(2);
    assert!(run.stderr.contains("ci-bot"), "{}", run.stderr);
}

// ---------------------------------------------------------------------------------------------
// Unreachable (exit 4), usage (exit 2), other failures (exit 1)

#[test]
fn closed_port_exits_4() {
    let env = Env::with_profile(P);
    let url = format!("http://127.0.0.1:{}/mcp", closed_port());
    let run = env.client().args([P, "--url", &url]).run();
    run.expect(4);
    assert!(run.stderr.contains(&format!("cannot reach {url}")), "{}", run.stderr);
    assert!(run.stderr.contains("hint: is the server running? start it with `mcpgen serve p`"), "{}", run.stderr);
}

#[test]
fn silent_server_times_out_exit_4() {
    let env = Env::with_profile(P);
    // Bound and never accepted: the kernel completes the handshake, nobody ever answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}/mcp", listener.local_addr().unwrap().port());
    let started = Instant::now();
    let run = env.client().args([P, "--url", &url, "--timeout", "0.5"]).run();
    let elapsed = started.elapsed();
    run.expect(4);
    assert!(run.stderr.contains("timed out"), "{}", run.stderr);
    assert!(elapsed.as_secs_f64() >= 0.5, "gave up after {elapsed:?}, before the timeout");
    assert!(elapsed.as_secs() < 20, "--timeout 0.5 took {elapsed:?}");
    drop(listener);
}

#[test]
fn invalid_flags_and_values_exit_2() {
    let env = Env::with_profile(P);
    let url = format!("http://127.0.0.1:{}/mcp", closed_port());
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec![P, "--url", &url, "--timeout", "0"], "--timeout"),
        (vec![P, "--url", &url, "--timeout=-1"], "--timeout"),
        (vec![P, "--url", &url, "--timeout", "NaN"], "--timeout"),
        (vec![P, "--url", &url, "--timeout", "5000"], "--timeout"),
        (vec![P, "--url", &url, "--timeout", "soon"], "--timeout"),
        (vec![P, "--url", &url, "--args", "{}"], "--tool"),
        (vec![P, "--url", &url, "--list-json", "--list-details"], "--list-details"),
        (vec![P, "--url", &url, "-H", "no colon here"], "-H"),
        (vec![P, "--url", &url, "-H", "Bad Name: x"], "not a valid header name"),
        (vec![P, "--url", "ftp://example.com/mcp"], "--url"),
        (vec![P, "--url", &url, "--sa-token", "nobody"], "nobody"),
        (vec!["--sa-token", "ci-bot", "--url", &url], "--sa-token needs a profile"),
        (vec![], "no server to call"),
        (vec!["no-such-profile", "--url", &url], "no-such-profile"),
        (vec![P, "--url", &url, "--oauth", "/nonexistent/oauth.yaml"], "--oauth"),
    ];
    for (args, needle) in cases {
        let run = env.client().args(&args).run();
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(needle), "{args:?}: expected {needle:?} in {}", run.stderr);
    }
}

#[test]
fn http_error_without_json_rpc_exits_1() {
    let env = Env::with_profile(P);
    let fake = Fake::start(|_| (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response());
    let run = env.client().args([P, "--url", &fake.url]).run();
    run.expect(1);
    assert!(run.stderr.contains("HTTP 500"), "{}", run.stderr);
}

#[test]
fn unsupported_protocol_version_exits_1() {
    let env = Env::with_profile(P);
    let fake = FakeMcp { version: Some("1999-01-01".into()), ..FakeMcp::default() }.start();
    let run = env.client().args([P, "--url", &fake.url]).run();
    run.expect(1);
    assert!(run.stderr.contains("\"1999-01-01\""), "{}", run.stderr);
    assert!(run.stderr.contains("2025-06-18"), "{}", run.stderr);
    // Nothing after the failed initialize.
    assert_eq!(fake.requests().iter().filter(|r| r.rpc() == "tools/list").count(), 0);
}

#[test]
fn json_errors_prints_one_json_object_with_the_exit_code() {
    let (env, server) = served();
    let closed = format!("http://127.0.0.1:{}/mcp", closed_port());
    let cases: Vec<(Vec<&str>, i64, &str)> = vec![
        (vec![P, "--url", &server.url, "--tool", "getOrder", "--args", "{}"], 2, "orderId"),
        (vec![P, "--url", &server.url, "--tool", "getCustomers"], 3, "insufficient_scope"),
        (vec![P, "--url", &closed], 4, "cannot reach"),
        (vec![P, "--url", &server.url, "--tool", "nope"], 5, "no tool named"),
    ];
    for (args, code, needle) in cases {
        let run = env.client().args(&args).arg("--json-errors").run();
        run.expect(code as i32);
        let error = run.error_json();
        assert_eq!(error["exit_code"], code, "{error}");
        assert!(error["error"].as_str().unwrap().contains(needle), "{error}");
        assert!(error["hint"].is_string(), "{error}");
        assert!(!run.stderr.contains("error: "), "plain error line next to the JSON: {}", run.stderr);
    }
}

// ---------------------------------------------------------------------------------------------
// Flags seen on the wire (fake server)

#[test]
fn url_and_headers_reach_the_server() {
    let env = Env::with_profile(P);
    let fake = FakeMcp::default().start();
    let primary = std::fs::read_to_string(env.profile_dir(P).join("sa/token.jwt")).unwrap().trim().to_owned();
    let run = env.client().args([P, "--url", &fake.url, "-H", "X-Team: blue", "--header", "X-Trace:  abc 123 "]).run();
    run.expect(0);
    assert!(run.stdout.starts_with("Tools: 1 | Prompts: 0\nToolNames:\n- echo: Echo the arguments back\n"), "{}", run.stdout);
    let requests = fake.requests();
    let posts: Vec<_> = requests.iter().filter(|r| r.method == "POST").collect();
    // The stateless revision first (refused by this handshake-era server), then the handshake.
    assert_eq!(
        posts.iter().map(|r| r.rpc()).collect::<Vec<_>>(),
        ["server/discover", "initialize", "notifications/initialized", "tools/list"]
    );
    assert_eq!(posts[0].header("mcp-protocol-version").as_deref(), Some("2026-07-28"));
    assert_eq!(posts[0].header("mcp-method").as_deref(), Some("server/discover"));
    for request in &requests {
        assert_eq!(request.header(SA_HEADER).as_deref(), Some(primary.as_str()), "{} {}", request.method, request.rpc());
        assert_eq!(request.header("x-team").as_deref(), Some("blue"));
        assert_eq!(request.header("x-trace").as_deref(), Some("abc 123"));
    }
    // The session ends with a DELETE carrying the session id.
    let last = requests.last().unwrap();
    assert_eq!((last.method.as_str(), last.header("mcp-session-id").as_deref()), ("DELETE", Some("session-1")));

    // -H with the service-account header's name replaces the token, not adds a second one.
    let fake = FakeMcp::default().start();
    env.client().args([P, "--url", &fake.url, "-H", "x-oemcp-serviceaccount: override"]).run().expect(0);
    for request in fake.requests() {
        let values: Vec<_> = request.headers.get_all(SA_HEADER).iter().collect();
        assert_eq!(values, ["override"]);
    }
}

#[test]
fn sessions_and_protocol_version_are_sent_after_initialize() {
    let env = Env::with_profile(P);
    let fake = FakeMcp { version: Some("2025-03-26".into()), ..FakeMcp::default() }.start();
    env.client().args([P, "--url", &fake.url, "--tool", "echo", "--args", r#"{"x": 1}"#]).run().expect(0);
    let requests = fake.requests();
    assert_eq!(requests[0].rpc(), "server/discover");
    let requests = &requests[1..];
    let init = &requests[0];
    assert_eq!(init.rpc(), "initialize");
    assert_eq!(init.header("mcp-session-id"), None);
    assert!(init.header("accept").unwrap().contains("text/event-stream"));
    assert!(init.header("accept").unwrap().contains("application/json"));
    for later in &requests[1..] {
        assert_eq!(later.header("mcp-session-id").as_deref(), Some("session-1"), "{}", later.rpc());
        // The version the server chose, not the one we asked for.
        assert_eq!(later.header("mcp-protocol-version").as_deref(), Some("2025-03-26"), "{}", later.rpc());
    }
    let call = requests.iter().find(|r| r.rpc() == "tools/call").expect("tools/call");
    assert_eq!(call.json()["params"], json!({"name": "echo", "arguments": {"x": 1}}));
}

#[test]
fn sse_replies_with_priming_event_split_chunks_and_notifications() {
    let env = Env::with_profile(P);
    let fake =
        FakeMcp { sse: true, pages: vec![vec![tool("echo", "Echo over SSE"), tool("second", "Another")]], ..FakeMcp::default() }.start();
    let run = env.client().args([P, "--url", &fake.url]).run();
    run.expect(0);
    assert_eq!(run.stdout, "Tools: 2 | Prompts: 0\nToolNames:\n- echo: Echo over SSE\n- second: Another\n");

    let run = env.client().args([P, "--url", &fake.url, "--tool", "echo", "--args", r#"{"word": "ünïcode"}"#]).run();
    run.expect(0);
    let echoed: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(echoed, json!({"word": "ünïcode"}));
}

#[test]
fn sse_stream_ending_without_the_response_exits_1() {
    let env = Env::with_profile(P);
    let fake = Fake::start(|_| sse_chunks(vec!["id: 0\ndata:\n\n".into(), ": nothing more\n\n".into()]));
    let run = env.client().args([P, "--url", &fake.url]).run();
    run.expect(1);
    assert!(run.stderr.contains("SSE stream ended without a response"), "{}", run.stderr);
}

#[test]
fn forgotten_session_is_initialized_again_once() {
    let env = Env::with_profile(P);
    let fake = FakeMcp { forget_session_once: true, ..FakeMcp::default() }.start();
    let run = env.client().args([P, "--url", &fake.url]).run();
    run.expect(0);
    assert!(run.stdout.contains("- echo: "), "{}", run.stdout);
    let seen: Vec<(String, String, Option<String>)> =
        fake.requests().iter().map(|r| (r.method.clone(), r.rpc(), r.header("mcp-session-id"))).collect();
    let s = |n: u8| Some(format!("session-{n}"));
    assert_eq!(
        seen,
        [
            ("POST".into(), "server/discover".into(), None),
            ("POST".into(), "initialize".into(), None),
            ("POST".into(), "notifications/initialized".into(), s(1)),
            ("POST".into(), "tools/list".into(), s(1)),
            // The era is known: the re-initialize does not probe again.
            ("POST".into(), "initialize".into(), None),
            ("POST".into(), "notifications/initialized".into(), s(2)),
            ("POST".into(), "tools/list".into(), s(2)),
            ("DELETE".into(), "".into(), s(2)),
        ]
    );
}

#[test]
fn session_that_keeps_vanishing_is_not_retried_forever() {
    let env = Env::with_profile(P);
    // initialize works; every request after it gets 404, again and again.
    let fake = Fake::start(|req| match req.rpc().as_str() {
        "initialize" | "notifications/initialized" | "" => minimal_mcp(req),
        _ => (StatusCode::NOT_FOUND, "gone").into_response(),
    });
    let run = env.client().args([P, "--url", &fake.url]).run();
    run.expect(1);
    assert!(run.stderr.contains("does not know the session"), "{}", run.stderr);
    let initializes = fake.requests().iter().filter(|r| r.rpc() == "initialize").count();
    assert_eq!(initializes, 2, "one re-initialize, no more");
}

/// Just enough MCP to get through initialize (JSON replies, session `s`).
fn minimal_mcp(req: &Recorded) -> axum::response::Response {
    match req.json().get("id") {
        _ if req.method != "POST" => StatusCode::NO_CONTENT.into_response(),
        None => StatusCode::ACCEPTED.into_response(),
        Some(id) => {
            let mut response = json_reply(
                StatusCode::OK,
                &rpc_result(id, json!({"protocolVersion": "2025-06-18", "capabilities": {"tools": {}}, "serverInfo": {"name": "x"}})),
            );
            response.headers_mut().insert("mcp-session-id", "s".parse().unwrap());
            response
        }
    }
}

#[test]
fn tools_list_follows_next_cursor() {
    let env = Env::with_profile(P);
    let fake = FakeMcp {
        pages: vec![vec![tool("a", "first"), tool("b", "second")], vec![tool("c", "third")], vec![tool("d", "fourth"), tool("e", "fifth")]],
        ..FakeMcp::default()
    }
    .start();
    let run = env.client().args([P, "--url", &fake.url, "--list-json"]).run();
    run.expect(0);
    let listing: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(names(&listing), ["a", "b", "c", "d", "e"]);
    let cursors: Vec<Value> =
        fake.requests().iter().filter(|r| r.rpc() == "tools/list").map(|r| r.json()["params"]["cursor"].clone()).collect();
    assert_eq!(cursors, [Value::Null, json!("page-1"), json!("page-2")]);
}

#[test]
fn prompts_are_counted_when_the_server_has_them() {
    let env = Env::with_profile(P);
    let prompts = Some(vec![json!({"name": "summarize"}), json!({"name": "triage"})]);
    let fake = FakeMcp { prompts, ..FakeMcp::default() }.start();
    let run = env.client().args([P, "--url", &fake.url]).run();
    run.expect(0);
    assert!(run.stdout.starts_with("Tools: 1 | Prompts: 2\nToolNames:\n"), "{}", run.stdout);
    let run = env.client().args([P, "--url", &fake.url, "--list-json"]).run();
    let listing: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(listing["prompts"][1]["name"], "triage");
}

#[test]
fn control_characters_from_the_server_are_escaped() {
    let env = Env::with_profile(P);
    let fake = FakeMcp {
        pages: vec![vec![
            tool("evil", "Looks fine\u{1b}[2J\u{1b}[31m red\u{7}\nsecond line\ttab"),
            tool("sneaky\u{1b}]0;title\u{7}", "named badly"),
        ]],
        call: std::sync::Arc::new(|_| text_result("plain \u{1b}[31mred\u{1b}[0m text")),
        ..FakeMcp::default()
    }
    .start();
    let run = env.client().args([P, "--url", &fake.url]).run();
    run.expect(0);
    assert!(!run.stdout.chars().any(|c| c.is_control() && c != '\n'), "raw control characters: {:?}", run.stdout);
    assert!(run.stdout.contains("- evil: Looks fine\\u{1b}[2J\\u{1b}[31m red\\u{7} second line tab\n"), "{:?}", run.stdout);
    assert!(run.stdout.contains("- sneaky\\u{1b}]0;title\\u{7}: named badly\n"), "{:?}", run.stdout);

    let run = env.client().args([P, "--url", &fake.url, "--list-details"]).run();
    run.expect(0);
    assert!(!run.stdout.chars().any(|c| c.is_control() && c != '\n'), "raw control characters: {:?}", run.stdout);

    // Tool names in the hint of an unknown tool.
    let run = env.client().args([P, "--url", &fake.url, "--list-details", "--tool", "\u{1b}[31mnope"]).run();
    run.expect(5);
    assert!(!run.stderr.chars().any(|c| c.is_control() && c != '\n'), "raw control characters: {:?}", run.stderr);
    assert!(run.stderr.contains("sneaky\\u{1b}]0;title\\u{7}"), "{:?}", run.stderr);

    // A non-JSON text result is escaped too, unless --raw asks for it untouched.
    let run = env.client().args([P, "--url", &fake.url, "--tool", "evil"]).run();
    run.expect(0);
    assert_eq!(run.stdout, "plain \\u{1b}[31mred\\u{1b}[0m text\n");
    let run = env.client().args([P, "--url", &fake.url, "--tool", "evil", "--raw"]).run();
    run.expect(0);
    assert_eq!(run.stdout, "plain \u{1b}[31mred\u{1b}[0m text\n");
}

#[test]
fn server_error_messages_are_escaped() {
    let env = Env::with_profile(P);
    let fake = Fake::start(|req| {
        if req.rpc() == "tools/list" {
            let id = req.json()["id"].clone();
            let error = json!({"code": -32603, "message": "internal \u{1b}[2J\u{1b}]0;pwned\u{7} failure"});
            return json_reply(StatusCode::OK, &json!({"jsonrpc": "2.0", "id": id, "error": error}));
        }
        minimal_mcp(req)
    });
    let run = env.client().args([P, "--url", &fake.url]).run();
    run.expect(1);
    assert!(run.stderr.contains("internal \\u{1b}[2J"), "{:?}", run.stderr);
    assert!(!run.stderr.chars().any(|c| c.is_control() && c != '\n'), "raw control characters: {:?}", run.stderr);
}

#[test]
fn raw_prints_the_text_as_sent() {
    let env = Env::with_profile(P);
    let fake = FakeMcp {
        call: std::sync::Arc::new(
            |_| json!({"content": [{"type": "text", "text": "{\"b\":[1,2],\"a\":\"x\"}"}], "structuredContent": {"b": [1, 2], "a": "x"}}),
        ),
        ..FakeMcp::default()
    }
    .start();
    let pretty = env.client().args([P, "--url", &fake.url, "--tool", "echo"]).run();
    pretty.expect(0);
    assert_eq!(pretty.stdout, "{\n  \"b\": [\n    1,\n    2\n  ],\n  \"a\": \"x\"\n}\n");
    let raw = env.client().args([P, "--url", &fake.url, "--tool", "echo", "--raw"]).run();
    raw.expect(0);
    assert_eq!(raw.stdout, "{\"b\":[1,2],\"a\":\"x\"}\n");
}

#[test]
fn tool_error_result_exits_5() {
    let env = Env::with_profile(P);
    let fake = FakeMcp {
        call: std::sync::Arc::new(|_| json!({"content": [{"type": "text", "text": "database is on fire"}], "isError": true})),
        ..FakeMcp::default()
    }
    .start();
    let run = env.client().args([P, "--url", &fake.url, "--tool", "echo", "--args", "{}"]).run();
    run.expect(5);
    assert!(run.stderr.contains("tool echo reported an error: database is on fire"), "{}", run.stderr);
    assert!(run.stdout.is_empty());
}

#[test]
fn json_rpc_error_from_a_call_exits_5() {
    let env = Env::with_profile(P);
    let server = Fake::start(|req| {
        if req.rpc() == "tools/call" {
            let id = req.json()["id"].clone();
            return json_reply(
                StatusCode::OK,
                &json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32000, "message": "backend offline"}}),
            );
        }
        minimal_mcp(req)
    });
    let run = env.client().args([P, "--url", &server.url, "--tool", "anything"]).run();
    run.expect(5);
    assert!(run.stderr.contains("tool anything failed: backend offline (JSON-RPC error -32000)"), "{}", run.stderr);
}

#[test]
fn debug_traces_http_with_credentials_redacted() {
    let (env, server) = served();
    let jwt = std::fs::read_to_string(env.profile_dir(P).join("sa/token.jwt")).unwrap().trim().to_owned();
    let run = env
        .client()
        .args([P, "--url", &server.url, "--debug", "--tool", "getOrders"])
        .args(["-H", "X-Api-Key: hunter2-very-secret", "-H", "Authorization: Bearer bearer-secret-42"])
        .run();
    run.expect(0);
    let stderr = &run.stderr;
    assert!(stderr.contains(&format!("> POST {}", server.url)), "{stderr}");
    assert!(stderr.contains("\"method\":\"server/discover\""), "{stderr}");
    assert!(stderr.contains("> mcp-protocol-version: 2026-07-28"), "{stderr}");
    assert!(stderr.contains("< 200 OK"), "{stderr}");
    assert!(stderr.contains("> x-oemcp-serviceaccount: <redacted>"), "{stderr}");
    assert!(stderr.contains("> x-api-key: <redacted>"), "{stderr}");
    assert!(stderr.contains("> authorization: <redacted>"), "{stderr}");
    for secret in [jwt.as_str(), jwt.rsplit('.').next().unwrap(), "hunter2-very-secret", "bearer-secret-42"] {
        assert!(!stderr.contains(secret), "--debug leaked {secret:?}:\n{stderr}");
    }
    // The result still goes to stdout, the trace only to stderr.
    assert!(run.stdout.starts_with('['), "{}", run.stdout);
    assert!(!run.stdout.contains("> POST"));
}

#[test]
fn debug_redacts_cookies_the_server_sets() {
    let env = Env::with_profile(P);
    let fake = Fake::start(|req| {
        let mut response = minimal_mcp(req);
        response.headers_mut().insert("set-cookie", "sid=cookie-s3cret; HttpOnly".parse().unwrap());
        response
    });
    let run = env.client().args([P, "--url", &fake.url, "--debug"]).run();
    run.expect(0);
    assert!(run.stderr.contains("< set-cookie: <redacted>"), "{}", run.stderr);
    assert!(!run.stderr.contains("cookie-s3cret"), "{}", run.stderr);
}

#[test]
fn passwords_in_the_url_stay_out_of_traces_and_errors() {
    let env = Env::with_profile(P);
    let fake = FakeMcp::default().start();
    let url = fake.url.replace("http://", "http://alice:pw-s3cret@");
    let run = env.client().args([P, "--url", &url, "--debug"]).run();
    run.expect(0);
    assert!(run.stderr.contains("DELETE http://alice:redacted@127.0.0.1:"), "{}", run.stderr);
    assert!(!run.stderr.contains("pw-s3cret"), "{}", run.stderr);

    let closed = format!("http://alice:pw-s3cret@127.0.0.1:{}/mcp", closed_port());
    let run = env.client().args([P, "--url", &closed]).run();
    run.expect(4);
    assert!(run.stderr.contains("cannot reach http://alice:redacted@127.0.0.1:"), "{}", run.stderr);
    assert!(!run.stderr.contains("pw-s3cret"), "{}", run.stderr);
}

// ---------------------------------------------------------------------------------------------
// OAuth2 client credentials (seed 003)

/// A fake MCP server plus a token endpoint at `/token` answering `status` and `body`.
fn oauth_fake(status: StatusCode, body: Value) -> Fake {
    FakeMcp { other: Some(std::sync::Arc::new(move |_req: &Recorded| json_reply(status, &body))), ..FakeMcp::default() }.start()
}

fn write_oauth(env: &Env, text: &str) -> String {
    let path = env.dir.path().join("oauth.yaml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

const SEED_003_YAML: &str = "\
authentication:
  my_service_account:
    _type: mcp_service_account
    client_id: ${MCPGEN_T_CLIENT_ID}
    client_secret: ${MCPGEN_T_CLIENT_SECRET}
    token_url: ${MCPGEN_T_TOKEN_URL}
    scopes: ${MCPGEN_T_SCOPES}
    token_cache_buffer_seconds: 60
    service_token:
      token: ${MCPGEN_T_SERVICE_TOKEN}
      header: X-Service-Account-Token
";

#[test]
fn oauth_client_credentials_fetches_once_and_sends_both_headers() {
    let env = Env::new();
    let fake = oauth_fake(StatusCode::OK, json!({"access_token": "at-5ecret-token", "token_type": "Bearer", "expires_in": 3600}));
    let file = write_oauth(&env, SEED_003_YAML);
    let run = env
        .client()
        .args(["--url", &fake.url, "--oauth", &file, "--tool", "echo", "--args", r#"{"q": 1}"#, "--debug"])
        .env("MCPGEN_T_CLIENT_ID", "svc-robot")
        .env("MCPGEN_T_CLIENT_SECRET", "cl1ent-s3cret")
        .env("MCPGEN_T_TOKEN_URL", format!("{}/token", fake.base))
        .env("MCPGEN_T_SCOPES", "orders.read products.read")
        .env("MCPGEN_T_SERVICE_TOKEN", "jira-svc-t0ken")
        .run();
    run.expect(0);
    assert_eq!(serde_json::from_str::<Value>(&run.stdout).unwrap(), json!({"q": 1}));

    // One token request for the whole run: client credentials, basic auth, scopes joined.
    let token_requests = fake.requests_to("/token");
    assert_eq!(token_requests.len(), 1, "the token was not reused");
    let t = &token_requests[0];
    assert_eq!(t.method, "POST");
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode("svc-robot:cl1ent-s3cret");
    assert_eq!(t.header("authorization"), Some(format!("Basic {basic}")));
    assert!(t.header("content-type").unwrap().starts_with("application/x-www-form-urlencoded"));
    let form: std::collections::HashMap<String, String> = url::form_urlencoded::parse(&t.body).into_owned().collect();
    assert_eq!(form.get("grant_type").map(String::as_str), Some("client_credentials"));
    assert_eq!(form.get("scope").map(String::as_str), Some("orders.read products.read"));

    // Every MCP request carries the bearer token and the service token.
    let mcp = fake.requests_to("/mcp");
    assert!(mcp.len() >= 4, "{mcp:?}");
    for request in &mcp {
        assert_eq!(request.header("authorization").as_deref(), Some("Bearer at-5ecret-token"), "{} {}", request.method, request.rpc());
        assert_eq!(request.header("x-service-account-token").as_deref(), Some("jira-svc-t0ken"));
        assert_eq!(request.header(SA_HEADER), None);
    }
    // --debug shows the exchange, never the secrets.
    assert!(run.stderr.contains("client credentials for svc-robot"), "{}", run.stderr);
    for secret in ["at-5ecret-token", "cl1ent-s3cret", "jira-svc-t0ken", basic.as_str()] {
        assert!(!run.stderr.contains(secret), "--debug leaked {secret:?}:\n{}", run.stderr);
    }
}

#[test]
fn oauth_plain_block_with_scope_list() {
    let env = Env::new();
    let fake = oauth_fake(StatusCode::OK, json!({"access_token": "tok-2", "expires_in": 600}));
    let file = write_oauth(
        &env,
        &format!(
            "{{\"client_id\": \"a\", \"client_secret\": \"b\", \"token_url\": \"{}/token\", \"scopes\": [\"x.read\", \"y.write\"]}}",
            fake.base
        ),
    );
    env.client().args(["--url", &fake.url, "--oauth", &file]).run().expect(0);
    let token_requests = fake.requests_to("/token");
    assert_eq!(token_requests.len(), 1);
    let form: std::collections::HashMap<String, String> = url::form_urlencoded::parse(&token_requests[0].body).into_owned().collect();
    assert_eq!(form.get("scope").map(String::as_str), Some("x.read y.write"));
    assert!(fake.requests_to("/mcp").iter().all(|r| r.header("authorization").as_deref() == Some("Bearer tok-2")));
}

#[test]
fn oauth_token_endpoint_refusal_exits_3() {
    let env = Env::new();
    let fake = oauth_fake(StatusCode::UNAUTHORIZED, json!({"error": "invalid_client", "error_description": "bad secret"}));
    let file = write_oauth(&env, &format!("client_id: a\nclient_secret: b\ntoken_url: {}/token\nscopes: s.read\n", fake.base));
    let run = env.client().args(["--url", &fake.url, "--oauth", &file]).run();
    run.expect(3);
    assert!(run.stderr.contains("invalid_client"), "{}", run.stderr);
    assert!(run.stderr.contains("bad secret"), "{}", run.stderr);
    assert!(fake.requests_to("/mcp").is_empty(), "the MCP server was called without a token");
}

#[test]
fn oauth_configuration_errors_exit_2_and_name_the_problem() {
    let env = Env::new();
    let url = format!("http://127.0.0.1:{}/mcp", closed_port());
    let file = write_oauth(&env, SEED_003_YAML);
    let run = env.client().args(["--url", &url, "--oauth", &file]).env("MCPGEN_T_CLIENT_ID", "x").run();
    run.expect(2);
    assert!(run.stderr.contains("MCPGEN_T_CLIENT_SECRET"), "{}", run.stderr);

    let file = write_oauth(&env, "client_id: a\ntoken_url: http://127.0.0.1:1/token\n");
    let run = env.client().args(["--url", &url, "--oauth", &file]).run();
    run.expect(2);
    assert!(run.stderr.contains("client_secret is required"), "{}", run.stderr);
}

#[test]
fn oauth_token_endpoint_unreachable_exits_4() {
    let env = Env::new();
    let fake = FakeMcp::default().start();
    let file = write_oauth(&env, &format!("client_id: a\nclient_secret: b\ntoken_url: http://127.0.0.1:{}/token\n", closed_port()));
    let run = env.client().args(["--url", &fake.url, "--oauth", &file]).run();
    run.expect(4);
    assert!(run.stderr.contains("/token"), "{}", run.stderr);
    assert!(fake.requests().is_empty());
}

#[test]
fn redirects_are_not_followed_so_the_token_stays_home() {
    let env = Env::with_profile("p");
    let elsewhere = Fake::start(|_| json_reply(StatusCode::OK, &json!({})));
    let location = format!("{}/mcp", elsewhere.base);
    let redirecting =
        Fake::start(move |_| (StatusCode::TEMPORARY_REDIRECT, [(axum::http::header::LOCATION, location.clone())]).into_response());
    let run = env.client().args(["p", "--url", &redirecting.url]).run();
    run.expect(1);
    assert!(run.stderr.contains("307"), "{}", run.stderr);
    assert_eq!(redirecting.requests().len(), 1);
    assert!(redirecting.requests()[0].header(SA_HEADER).is_some(), "the first request carries the token");
    assert!(elsewhere.requests().is_empty(), "the redirect target received a request (and the token)");
}

#[test]
fn a_huge_expires_in_from_the_token_endpoint_is_not_a_crash() {
    let env = Env::new();
    let fake = oauth_fake(StatusCode::OK, json!({"access_token": "tok-3", "expires_in": u64::MAX}));
    let file = write_oauth(&env, &format!("client_id: a\nclient_secret: b\ntoken_url: {}/token\n", fake.base));
    let run = env.client().args(["--url", &fake.url, "--oauth", &file]).run();
    run.expect(0);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert_eq!(fake.requests_to("/token").len(), 1);
}

// ---------------------------------------------------------------------------------------------
// OAuth discovery: the MCP server names the authorization server, but does not decide where a
// client secret goes.

/// A path and the JSON document served there, built from the server's own base URL.
type Document = (&'static str, fn(&str) -> Value);

/// A fake answering the documents of `paths`.
fn documents(paths: Vec<Document>) -> Fake {
    let base = std::sync::Arc::new(std::sync::OnceLock::<String>::new());
    let own = std::sync::Arc::clone(&base);
    let fake = Fake::start(move |req| {
        let base = own.get().cloned().unwrap_or_default();
        match paths.iter().find(|(p, _)| *p == req.path) {
            Some((_, doc)) => json_reply(StatusCode::OK, &doc(&base)),
            None => json_reply(StatusCode::NOT_FOUND, &json!({"error": "not found"})),
        }
    });
    base.set(fake.base.clone()).unwrap();
    fake
}

fn as_metadata(base: &str) -> Value {
    json!({"issuer": base, "token_endpoint": format!("{base}/token"), "token_endpoint_auth_methods_supported": ["client_secret_basic"]})
}

#[test]
fn discovery_never_sends_a_client_secret_to_an_authorization_server_on_another_origin() {
    let root = Env::new();
    let thief = documents(vec![
        ("/.well-known/oauth-authorization-server", as_metadata),
        ("/token", |_| json!({"access_token": "stolen", "expires_in": 60})),
    ]);
    let thief_base = thief.base.clone();
    let mcp = FakeMcp {
        other: Some(std::sync::Arc::new(move |_req: &Recorded| {
            json_reply(StatusCode::OK, &json!({"resource": "x", "authorization_servers": [thief_base.clone()]}))
        })),
        ..FakeMcp::default()
    }
    .start();
    let file = root.dir.path().join("oauth.json");
    std::fs::write(&file, r#"{"client_id": "victim-app", "client_secret": "TOP-SECRET-123"}"#).unwrap();
    let run = root.client().args(["--url", &mcp.url, "--oauth", file.to_str().unwrap()]).run();
    assert_ne!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("another origin") && run.stderr.contains("issuer"), "{}", run.stderr);
    assert!(thief.requests_to("/token").is_empty(), "the client secret went to a server the user never named");
    assert!(!run.stderr.contains("TOP-SECRET-123"));

    // Naming that server as the issuer in the file is the user's consent.
    std::fs::write(&file, format!(r#"{{"client_id": "victim-app", "client_secret": "TOP-SECRET-123", "issuer": "{}"}}"#, thief.base))
        .unwrap();
    root.client().args(["--url", &mcp.url, "--oauth", file.to_str().unwrap()]).run().expect(0);
    assert_eq!(thief.requests_to("/token").len(), 1);
}

#[test]
fn discovery_on_the_servers_own_origin_finds_the_token_endpoint_and_sends_the_resource() {
    let root = Env::new();
    let own = std::sync::Arc::new(std::sync::OnceLock::<String>::new());
    let base = std::sync::Arc::clone(&own);
    let mcp = FakeMcp {
        other: Some(std::sync::Arc::new(move |req: &Recorded| {
            let base = base.get().cloned().unwrap_or_default();
            match req.path.as_str() {
                "/.well-known/oauth-protected-resource/mcp" => {
                    json_reply(StatusCode::OK, &json!({"resource": format!("{base}/mcp"), "authorization_servers": [base]}))
                }
                "/.well-known/oauth-authorization-server" => json_reply(StatusCode::OK, &as_metadata(&base)),
                "/token" => json_reply(StatusCode::OK, &json!({"access_token": "tok-d", "expires_in": 600})),
                _ => json_reply(StatusCode::NOT_FOUND, &json!({})),
            }
        })),
        ..FakeMcp::default()
    }
    .start();
    own.set(mcp.base.clone()).unwrap();
    let file = root.dir.path().join("oauth.yaml");
    std::fs::write(&file, "client_id: robot\nclient_secret: 'a+b/c=d'\nscopes: x.read\n").unwrap();
    root.client().args(["--url", &mcp.url, "--oauth", file.to_str().unwrap()]).run().expect(0);
    let token = mcp.requests_to("/token");
    assert_eq!(token.len(), 1);
    use base64::Engine;
    // RFC 6749 §2.3.1: the secret is form-encoded before Basic encoding.
    let basic = base64::engine::general_purpose::STANDARD.encode("robot:a%2Bb%2Fc%3Dd");
    assert_eq!(token[0].header("authorization"), Some(format!("Basic {basic}")));
    let form: std::collections::HashMap<String, String> = url::form_urlencoded::parse(&token[0].body).into_owned().collect();
    assert_eq!(form.get("resource"), Some(&mcp.url), "RFC 8707 resource is the MCP URL");
    assert!(mcp.requests_to("/mcp").iter().all(|r| r.header("authorization").as_deref() == Some("Bearer tok-d")));
}

#[test]
fn json_results_reach_the_terminal_without_bidi_c1_or_invisible_characters() {
    let root = Env::new();
    let hostile = "{\"a\": \"x\u{202e}evil\u{9b}2J\u{85}\u{200b}\"}";
    let fake = FakeMcp { call: std::sync::Arc::new(move |_| text_result(hostile)), ..FakeMcp::default() }.start();
    let run = root.client().args(["--url", &fake.url, "--tool", "echo"]).run();
    run.expect(0);
    for c in ['\u{202e}', '\u{9b}', '\u{85}', '\u{200b}'] {
        assert!(!run.stdout.contains(c), "{c:?} reached the terminal: {:?}", run.stdout);
    }
    // Still JSON, and still the same value.
    let shown: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(shown, serde_json::from_str::<Value>(hostile).unwrap());
    // --raw is the one way to get the text exactly as sent.
    let raw = root.client().args(["--url", &fake.url, "--tool", "echo", "--raw"]).run();
    assert!(raw.stdout.contains('\u{202e}'));
}

#[test]
fn a_profile_token_sent_to_another_url_is_called_out() {
    let root = Env::with_profile("p");
    let fake = FakeMcp::default().start();
    let elsewhere = fake.url.replace("127.0.0.1", "localhost");
    let run = root.client().args(["p", "--url", &elsewhere]).run();
    run.expect(0);
    assert!(run.stderr.contains("warning:") && run.stderr.contains("is meant for http://127.0.0.1:8000/mcp"), "{}", run.stderr);
    // Another port of the audience's host (`serve --port 0`) is not called out.
    let run = root.client().args(["p", "--url", &fake.url]).run();
    assert!(!run.stderr.contains("warning:"), "{}", run.stderr);
}

#[test]
fn a_server_that_pages_forever_is_cut_off() {
    let root = Env::new();
    // Every tools/list page names a next cursor, alternating two: a listing that never ends.
    let fake = Fake::start(|req| {
        if req.method != "POST" {
            return StatusCode::NO_CONTENT.into_response();
        }
        let message = req.json();
        let Some(id) = message.get("id").cloned() else { return StatusCode::ACCEPTED.into_response() };
        match message["method"].as_str() {
            Some("initialize") => json_reply(
                StatusCode::OK,
                &rpc_result(
                    &id,
                    json!({"protocolVersion": "2025-06-18", "capabilities": {"tools": {}}, "serverInfo": {"name": "x", "version": "0"}}),
                ),
            ),
            _ => {
                let next = if message["params"]["cursor"] == "a" { "b" } else { "a" };
                json_reply(StatusCode::OK, &rpc_result(&id, json!({"tools": [tool("t", "d")], "nextCursor": next})))
            }
        }
    });
    let run = root.client().args(["--url", &fake.url]).run();
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("repeated a cursor"), "{}", run.stderr);
    assert!(fake.requests_to("/mcp").len() < 10, "the client kept paging");
}

#[test]
fn a_listing_of_many_large_pages_stops_at_its_byte_cap() {
    let root = Env::new();
    // Each page one tool with a 5 MB description and a new cursor: under every per-page and
    // item cap, but a listing that would fill the client's memory.
    let description = std::sync::Arc::new("x".repeat(5 * 1024 * 1024));
    let fake = Fake::start(move |req| {
        if req.method != "POST" {
            return StatusCode::NO_CONTENT.into_response();
        }
        let message = req.json();
        let Some(id) = message.get("id").cloned() else { return StatusCode::ACCEPTED.into_response() };
        match message["method"].as_str() {
            Some("initialize") => json_reply(
                StatusCode::OK,
                &rpc_result(&id, json!({"protocolVersion": "2025-06-18", "capabilities": {"tools": {}}, "serverInfo": {"name": "x"}})),
            ),
            Some("tools/list") => {
                let page = message["params"]["cursor"].as_str().and_then(|c| c.parse::<u32>().ok()).unwrap_or(0);
                let tools = json!([tool(&format!("t{page}"), &description)]);
                json_reply(StatusCode::OK, &rpc_result(&id, json!({"tools": tools, "nextCursor": (page + 1).to_string()})))
            }
            _ => json_reply(StatusCode::BAD_REQUEST, &json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32600, "message": "no"}})),
        }
    });
    let run = root.client().args(["--url", &fake.url]).run();
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("tools/list sent more than 64 MiB"), "{}", run.stderr);
    let pages = fake.requests().iter().filter(|r| r.rpc() == "tools/list").count();
    assert!((13..=15).contains(&pages), "{pages} pages");
}
