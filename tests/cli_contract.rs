//! The CLI as operators and scripts use it (issue 12): no silent destruction of the primary
//! token, reading a stored token without minting one, scopes checked against the profile's
//! tools, ports that reach the right server, one JSON contract (`--json` on every command that
//! prints a result), and messages that say what to do. The real binary on temporary trees.

mod support;

use serde_json::Value;
use support::*;

/// `up --instance p` plus a `ci-bot` token with `orders.read`.
fn profile_with_ci_bot() -> Env {
    let env = Env::new();
    env.up("p");
    env.ok(&["sa-token", "p", "--name", "ci-bot", "--scopes", "orders.read"]);
    env
}

#[test]
fn sa_token_needs_a_name_and_force_to_replace_the_primary() {
    let env = Env::new();
    env.up("p");
    let primary = env.jwt("p", "default");
    let mcp_json = read_text(&env.file("p", "client/mcp.json"));

    // No --name: refused, nothing touched (the primary is not silently replaced).
    assert_refused_unchanged(&env, &["sa-token", "p", "--scopes", "orders.read"], 2, &["--name is required", "--name ci-bot"]);
    // A positional token name hints at --name.
    assert_refused_unchanged(&env, &["sa-token", "p", "ci-bot"], 2, &["ci-bot", "--name ci-bot"]);
    // Replacing the primary (here also narrowing it) needs --force; the message names the
    // dropped scope and the client file every host holds.
    let out = assert_refused_unchanged(&env, &["sa-token", "p", "--name", "default", "--scopes", "orders.read"], 2, &["--force"]);
    assert!(out.stderr.contains("products.read") && out.stderr.contains("client/mcp.json"), "{}", out.stderr);
    assert_eq!(env.jwt("p", "default"), primary);

    // A new name is created; replacing it says so.
    let out = env.ok(&["sa-token", "p", "--name", "ci-bot", "--scopes", "orders.read"]);
    assert!(out.stderr.contains("created token ci-bot"), "{}", out.stderr);
    let first = env.jwt("p", "ci-bot");
    let out = env.ok(&["sa-token", "p", "--name", "ci-bot", "--days", "5"]);
    assert!(out.stderr.contains("replaced token ci-bot") && out.stderr.contains("is revoked"), "{}", out.stderr);
    assert_ne!(env.jwt("p", "ci-bot"), first);
    assert_eq!(read_text(&env.file("p", "client/mcp.json")), mcp_json, "a non-primary token leaves the client files alone");

    // --force replaces the primary and rewrites the client files.
    let out = env.ok(&["sa-token", "p", "--name", "default", "--scopes", "orders.read", "--force"]);
    assert!(out.stderr.contains("client/mcp.json"), "{}", out.stderr);
    let new_primary = env.jwt("p", "default");
    assert_ne!(new_primary, primary);
    assert!(read_text(&env.file("p", "client/mcp.json")).contains(&new_primary));
}

#[test]
fn sa_revoke_ignore_not_found_is_idempotent() {
    let env = profile_with_ci_bot();
    let out = env.ok(&["sa-revoke", "p", "--name", "ci-bot", "--json"]);
    let doc = out.json();
    assert_eq!(doc["revoked"]["name"], "ci-bot");
    assert_eq!(doc["revoked"]["primary"], false);
    assert!(doc["revoked"]["jti"].as_str().is_some_and(|j| !j.is_empty()));
    // The second run: an error without the flag, a success with it.
    assert_refused_unchanged(&env, &["sa-revoke", "p", "--name", "ci-bot"], 2, &["ci-bot"]);
    let out = env.ok(&["sa-revoke", "p", "--name", "ci-bot", "--ignore-not-found", "--json"]);
    assert_eq!(out.json()["revoked"], Value::Null);
    let out = env.ok(&["sa-revoke", "p", "--name", "ci-bot", "--ignore-not-found"]);
    assert_eq!(out.stdout, "");
    assert!(out.stderr.contains("nothing to revoke"), "{}", out.stderr);
}

#[test]
fn sa_tokens_jwt_reads_without_minting_and_refuses_expired_or_revoked() {
    let env = profile_with_ci_bot();
    let before = env.profile_json("p");
    let stored = env.jwt("p", "ci-bot");
    for _ in 0..2 {
        let out = env.ok(&["sa-tokens", "p", "--name", "ci-bot", "--jwt"]);
        assert_eq!(out.stdout, format!("{stored}\n"));
    }
    assert_eq!(env.profile_json("p"), before, "reading a token changes nothing");
    // --jwt needs --name.
    assert_eq!(env.run(&["sa-tokens", "p", "--jwt"]).code, 2);
    // Unknown: exit 2.
    assert_refused(&env.run(&["sa-tokens", "p", "--name", "ghost", "--jwt"]), 2, &["ghost"]);
    // A planted file: the right token followed by terminal escapes and a second line is not
    // printed (it would reach the terminal, or a script's $(…), as is).
    env.replace("p", "sa/ci-bot.jwt", format!("{stored}\u{1b}]0;PWNED\u{7}\n$(id)\n").as_bytes());
    assert_refused(&env.run(&["sa-tokens", "p", "--name", "ci-bot", "--jwt"]), 1, &["does not hold the token"]);
    env.replace("p", "sa/ci-bot.jwt", stored.as_bytes());

    // Expired: exit 3 with a hint to mint a new one.
    env.edit_profile("p", |doc| {
        let tokens = doc["sa_tokens"].as_array_mut().unwrap();
        let entry = tokens.iter_mut().find(|t| t["name"] == "ci-bot").unwrap();
        entry["expires_at"] = Value::from("2020-01-01T00:00:00Z");
    });
    assert_refused(&env.run(&["sa-tokens", "p", "--name", "ci-bot", "--jwt"]), 3, &["expired", "mcpgen sa-token p --name ci-bot"]);

    // Revoked: exit 3, and --all lists it with its revocation time.
    env.ok(&["sa-token", "p", "--name", "ci-bot", "--days", "5"]);
    env.ok(&["sa-revoke", "p", "--name", "ci-bot"]);
    assert_refused(&env.run(&["sa-tokens", "p", "--name", "ci-bot", "--jwt"]), 3, &["revoked at"]);
    let listing = env.ok(&["sa-tokens", "p", "--all", "--json"]).json();
    let revoked = listing["revoked"].as_array().expect("--all adds revoked");
    assert!(revoked.iter().any(|r| r["name"] == "ci-bot" && r["revoked_at"].is_string()), "{listing}");
    assert!(env.ok(&["sa-tokens", "p", "--json"]).json().get("revoked").is_none(), "only with --all");
    let table = env.ok(&["sa-tokens", "p", "--all"]).stdout;
    let header = table.lines().next().unwrap();
    assert!(header.ends_with("REVOKED"), "{table}");
    assert!(table.lines().any(|l| l.starts_with("ci-bot") && l.contains('T') && l.ends_with('Z')), "{table}");

    // A token file that does not hold the listed token is refused, not printed.
    env.ok(&["sa-token", "p", "--name", "other"]);
    env.write_raw("p", "sa/other.jwt", stored.as_bytes());
    assert_refused(&env.run(&["sa-tokens", "p", "--name", "other", "--jwt"]), 1, &["sa/other.jwt", "jti"]);
}

#[test]
fn scopes_are_checked_against_the_profile_tools() {
    let env = Env::new();
    env.up("p");
    // A typo: warned, with the nearest known scope and the list.
    let out = env.ok(&["sa-token", "p", "--name", "typo", "--scopes", "orders.raed"]);
    assert!(out.stderr.contains("warning: --scopes: scope \"orders.raed\""), "{}", out.stderr);
    assert!(out.stderr.contains("did you mean orders.read?") && out.stderr.contains("products.read"), "{}", out.stderr);
    assert!(out.stderr.contains("would see none of the profile's"), "{}", out.stderr);
    // The gh habit: a comma-joined list.
    let out = env.ok(&["sa-token", "p", "--name", "commas", "--scopes", "orders.read,products.read"]);
    assert!(out.stderr.contains("--scopes orders.read products.read"), "{}", out.stderr);
    // Known scopes: no warning.
    let out = env.ok(&["sa-token", "p", "--name", "fine", "--scopes", "orders.read"]);
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
    // --strict-scopes refuses and writes nothing.
    let out = assert_refused_unchanged(
        &env,
        &["sa-token", "p", "--name", "strict", "--scopes", "orders.raed", "--strict-scopes"],
        2,
        &["orders.raed", "--strict-scopes"],
    );
    assert!(out.stderr.contains("did you mean orders.read?"), "{}", out.stderr);
    env.ok(&["sa-token", "p", "--name", "strict", "--scopes", "orders.read", "--strict-scopes"]);
    // A scope only `security.authorization.tools` names is known too.
    let config_path = env.file("p", "mcp_server_config.json");
    let mut config: Value = serde_json::from_str(&read_text(&config_path)).unwrap();
    config["security"]["authorization"]["tools"]["getProducts"] = serde_json::json!(["catalog.admin"]);
    std::fs::write(&config_path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
    env.ok(&["sa-token", "p", "--name", "admin", "--scopes", "catalog.admin", "--strict-scopes"]);
}

#[test]
fn up_picks_a_port_no_other_profile_uses() {
    let env = Env::new();
    env.ok(&["up", "--instance", "a"]);
    env.ok(&["up", "--instance", "b", "--port", "8001"]);
    let out = env.ok(&["up", "--instance", "c", "--json"]);
    let c = out.json();
    assert_eq!(c["port"], 8002, "8000 and 8001 are taken: {c}");
    assert_eq!(c["server_url"], "http://127.0.0.1:8002/mcp");
    assert!(out.stderr.contains("port 8002"), "{}", out.stderr);
    // Every port distinct, and the client file of each points at its own.
    let ports: Vec<u64> = ["a", "b", "c"].iter().map(|p| env.profile_json(p)["port"].as_u64().unwrap()).collect();
    assert_eq!(ports, [8000, 8001, 8002]);
    assert!(read_text(&env.file("c", "client/mcp.json")).contains("127.0.0.1:8002/mcp"));
    // `up --json`: the documented fields, an absolute path, the primary token entry.
    assert!(std::path::Path::new(c["path"].as_str().unwrap()).is_absolute());
    assert_eq!(c["name"], "c");
    assert_eq!(c["sa_tokens"][0]["name"], "default");
    assert!(c["key_id"].is_string());
    // An explicit --port may still be shared (the operator chose it).
    env.ok(&["up", "--instance", "d", "--port", "8000"]);
}

#[test]
fn every_result_has_json() {
    let env = profile_with_ci_bot();
    // sa-token --json: the entry, replaced, an absolute path; the JWT only with --print.
    let doc = env.ok(&["sa-token", "p", "--name", "dash", "--scopes", "products.read", "--json"]).json();
    assert_eq!(doc["profile"], "p");
    assert_eq!(doc["token"]["name"], "dash");
    assert_eq!(doc["token"]["scopes"], serde_json::json!(["products.read"]));
    assert_eq!(doc["replaced"], false);
    assert!(doc.get("jwt").is_none());
    let path = doc["path"].as_str().unwrap();
    assert!(std::path::Path::new(path).is_absolute() && path.ends_with("sa/dash.jwt"), "{doc}");
    let doc = env.ok(&["sa-token", "p", "--name", "dash", "--json", "--print"]).json();
    assert_eq!(doc["replaced"], true);
    assert_eq!(doc["jwt"].as_str().unwrap(), env.jwt("p", "dash"));

    // remint-all --json.
    let old_kid = env.profile_json("p")["key_id"].clone();
    let doc = env.ok(&["remint-all", "p", "--grace-days", "1", "--json"]).json();
    assert_eq!(doc["previous_key_id"], old_kid);
    assert_eq!(doc["key_id"], env.profile_json("p")["key_id"]);
    assert!(doc["previous_key_accepted_until"].is_string());
    let names: Vec<&str> = doc["tokens"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    assert_eq!(names, ["default", "ci-bot", "dash"]);

    // sa-verify --json is its (always JSON) report.
    let doc = env.ok(&["sa-verify", "p", "--name", "ci-bot", "--json"]).json();
    assert_eq!(doc["valid"], true);

    // list --json paths are absolute.
    let doc = env.ok(&["list", "--json"]).json();
    let path = doc["profiles"][0]["path"].as_str().unwrap();
    assert!(std::path::Path::new(path).is_absolute(), "{doc}");

    // --json-errors: one object on stderr for a command's error.
    let out = env.run(&["--json-errors", "sa-token", "p", "--scopes", "x"]);
    assert_eq!(out.code, 2);
    let err = out.error_json();
    assert_eq!(err["exit_code"], 2);
    assert!(err["error"].as_str().unwrap().contains("--name"));
}

#[test]
fn client_json_prints_the_whole_result_and_messages_help() {
    let env = profile_with_ci_bot();
    let server = env.serve("p", &["--mock"]);
    let url = server.url.as_str();

    // A listing as JSON, and the note about hidden tools (the profile's own server only).
    let out = env.client().args(["p", "--url", url, "--sa-token", "ci-bot", "--json"]).run();
    out.expect(0);
    let listing = out.json();
    let tools: Vec<&str> = listing["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(tools, ["getOrders", "getOrder"]);

    // A call as JSON: the whole CallToolResult with isError and structuredContent.
    let out = env.client().args(["p", "--url", url, "--sa-token", "ci-bot", "--tool", "getOrders", "--json"]).run();
    out.expect(0);
    let result = out.json();
    assert_eq!(result["isError"], false);
    assert!(result["structuredContent"].is_object(), "{result}");
    assert_eq!(result["content"][0]["type"], "text");
    // --raw prints the text exactly as sent (tests/client.rs and rmcp_server_interop.rs show
    // it differs from the pretty default for servers that send compact JSON).
    let raw = env.client().args(["p", "--url", url, "--sa-token", "ci-bot", "--tool", "getOrders", "--raw"]).run();
    assert_eq!(raw.stdout, format!("{}\n", result["content"][0]["text"].as_str().unwrap()));
    // Arguments the tool's schema refuses: exit 2, like every other bad argument.
    let out = env.client().args(["p", "--url", url, "--sa-token", "ci-bot", "--tool", "getOrder", "--args", "{}", "--json"]).run();
    assert_eq!(out.code, 2, "--args failing the schema is a usage error: {}", out.stderr);
    assert!(out.stderr.contains("--args"), "{}", out.stderr);

    // A typo in the tool name suggests the right one.
    let out = env.client().args(["p", "--url", url, "--sa-token", "ci-bot", "--tool", "getordres"]).run();
    assert_refused(&out, 5, &["did you mean getOrders?"]);
    // --timeout 0 says what range is allowed.
    assert_refused(&env.client().args(["p", "--timeout", "0"]).run(), 2, &["more than 0 and at most 3600"]);
    // A --url without /mcp: the 404 hints at the path.
    let out = env.client().args(["p", "--url", server.base.as_str(), "--sa-token", "ci-bot"]).run();
    assert_refused(&out, 1, &["404", &format!("--url {}/mcp", server.base)]);
}

#[tokio::test]
async fn serve_on_another_port_says_where_clients_point() {
    let env = Env::new();
    env.up("p");
    let server = env.serve("p", &[]);
    server.wait_for_stderr("warning: listening on port").await;
    let log = server.stderr();
    assert!(log.contains("warning: listening on port") && log.contains("says 8000"), "{log}");
    assert!(log.contains(&format!("--url {}", server.url)), "{log}");
}

#[tokio::test]
async fn the_sa_header_takes_a_bearer_scheme_word_and_a_wrong_header_is_named() {
    let env = Env::new();
    env.up("p");
    let jwt = env.jwt("p", "default");
    let server = env.serve("p", &[]);
    // `X-OEMCP-SERVICEACCOUNT: Bearer <jwt>` (RFC 6750 scheme word) works though prefix is empty.
    let reply = server.try_initialize(&Auth::sa(&format!("Bearer {jwt}")), "2025-11-25").await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let reply = server.try_initialize(&Auth::sa(&format!("bearer  {jwt}")), "2025-11-25").await;
    assert_eq!(reply.status, 200, "{reply:?}");
    // Only `Authorization: Bearer`: 401 whose challenge (and body) names the header the server
    // reads, without an error code (RFC 6750 §3.1).
    let reply = server.try_initialize(&Auth::header("Authorization", &format!("Bearer {jwt}")), "2025-11-25").await;
    assert_eq!(reply.status, 401, "{reply:?}");
    let challenge = reply.challenge();
    assert!(challenge.contains("error_description=") && challenge.contains("X-OEMCP-SERVICEACCOUNT header"), "{challenge}");
    assert!(!challenge.contains("error=\""), "{challenge}");
    assert!(reply.json()["error_description"].as_str().unwrap().contains("X-OEMCP-SERVICEACCOUNT"), "{reply:?}");
    // A bad token after the scheme word is still an invalid token.
    let reply = server.try_initialize(&Auth::sa("Bearer not.a.jwt"), "2025-11-25").await;
    assert_eq!(reply.status, 401);
    assert!(reply.challenge().contains("error=\"invalid_token\""), "{reply:?}");
}

/// What the completion script gets back for the words `line` with the cursor on the last one.
fn complete(env: &Env, line: &[&str]) -> Vec<String> {
    let mut args = vec!["--", "mcpgen"];
    args.extend_from_slice(line);
    let out = Cmd::new(env.dir.path()).env("MCPGEN_COMPLETE", "bash").env("_CLAP_COMPLETE_INDEX", line.len().to_string()).args(&args).run();
    out.expect(0);
    out.stdout.lines().map(str::to_owned).collect()
}

#[test]
fn completion_knows_profiles_tokens_and_tools() {
    let env = profile_with_ci_bot();
    env.up("other");
    let root = env.root();
    let root = root.to_str().unwrap();
    let profiles = complete(&env, &["--root", root, "sa-tokens", ""]);
    assert!(profiles.contains(&"p".to_owned()) && profiles.contains(&"other".to_owned()), "{profiles:?}");
    let profiles = complete(&env, &["--root", root, "client", "ot"]);
    assert_eq!(profiles, ["other"]);
    let tokens = complete(&env, &["--root", root, "sa-revoke", "p", "--name", ""]);
    assert_eq!(tokens, ["default", "ci-bot"]);
    let tokens = complete(&env, &["--root", root, "client", "p", "--sa-token", "ci"]);
    assert_eq!(tokens, ["ci-bot"]);
    let tools = complete(&env, &["--root", root, "client", "p", "--sa-token", "ci-bot", "--tool", "getOrd"]);
    assert_eq!(tools, ["getOrders", "getOrder"]);
    // $MCPGEN_ROOT is honoured like --root; an unknown profile completes nothing.
    let out = Cmd::new(env.dir.path())
        .env("MCPGEN_COMPLETE", "bash")
        .env("_CLAP_COMPLETE_INDEX", "4")
        .env("MCPGEN_ROOT", root)
        .args(["--", "mcpgen", "sa-verify", "p", "--name", ""])
        .run();
    assert_eq!(out.stdout.lines().collect::<Vec<_>>(), ["default", "ci-bot"]);
    assert!(complete(&env, &["--root", root, "sa-revoke", "nope", "--name", ""]).is_empty());

    // A planted folder whose name is no profile name (shell syntax, a terminal escape) holding
    // a profile.json is never offered: the shell would insert it as typed.
    for planted in ["p;touch PWNED;#", "x\u{1b}]0;T\u{7}y"] {
        let dir = env.root().join(planted);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(env.root().join("p/profile.json"), dir.join("profile.json")).unwrap();
    }
    let profiles: Vec<String> = complete(&env, &["--root", root, "sa-tokens", ""]).into_iter().filter(|c| !c.starts_with('-')).collect();
    assert_eq!(profiles, ["other", "p"]);
    let listed = env.ok(&["list", "--json"]).json();
    assert_eq!(listed["profiles"].as_array().map(Vec::len), Some(2), "{listed}");
}

#[test]
fn version_names_the_commit_and_build_date() {
    let env = Env::new();
    let out = env.ok(&["--version"]);
    // "mcpgen 0.1.0 (commit 0123456789ab, built 2026-11-24)" ("unknown" outside a checkout).
    let line = out.stdout.trim();
    let rest = line.strip_prefix(&format!("mcpgen {} (commit ", env!("CARGO_PKG_VERSION"))).unwrap_or_else(|| panic!("{line}"));
    let (commit, date) = rest.strip_suffix(')').and_then(|r| r.split_once(", built ")).unwrap_or_else(|| panic!("{line}"));
    assert!(commit == "unknown" || (commit.len() >= 7 && commit.chars().all(|c| c.is_ascii_hexdigit())), "{line}");
    assert!(chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_ok(), "{line}");
}

#[tokio::test]
async fn mock_mode_answers_with_the_example_the_arguments_name() {
    let env = Env::new();
    let spec = serde_json::json!({
        "openapi": "3.0.3",
        "info": {"title": "pets", "version": "1"},
        "paths": {
            "/pets": {"get": {"operationId": "listPets", "responses": {"200": {"description": "pets", "content": {"application/json": {
                "example": [{"id": 1, "name": "Rex"}, {"id": 2, "name": "Tom"}]
            }}}}}},
            "/pets/{petId}": {"get": {"operationId": "getPet",
                "parameters": [{"name": "petId", "in": "path", "required": true, "schema": {"type": "integer"}}],
                "responses": {"200": {"description": "a pet", "content": {"application/json": {"examples": {
                    "7": {"value": {"id": 7, "name": "Named seven"}},
                    "other": {"value": {"id": 8, "name": "Eight by id"}}
                }}}}}}},
            "/owners/{ownerId}": {"get": {"operationId": "getOwner",
                "parameters": [{"name": "ownerId", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "an owner", "content": {"application/json": {"example": {"ownerId": "o-1", "name": "Ann"}}}}}}}
        }
    });
    let path = env.dir.path().join("pets.json");
    std::fs::write(&path, spec.to_string()).unwrap();
    env.ok(&["up", "--instance", "pets", "--spec", path.to_str().unwrap()]);
    let server = env.serve("pets", &["--mock"]);
    let call = |tool: &str, args: &str| {
        let out = env.client().args(["pets", "--url", server.url.as_str(), "--tool", tool, "--args", args, "--json"]).run();
        out.expect(0);
        out.json()["structuredContent"].clone()
    };
    // The named example whose name is the argument.
    assert_eq!(call("getPet", r#"{"petId": 7}"#)["name"], "Named seven");
    // The example whose id matches.
    assert_eq!(call("getPet", r#"{"petId": 8}"#)["name"], "Eight by id");
    // An item of another tool's list example.
    assert_eq!(call("getPet", r#"{"petId": 2}"#)["name"], "Tom");
    // No match: the first example, as before.
    assert_eq!(call("getPet", r#"{"petId": 99}"#)["name"], "Named seven");
    // A field named like the parameter.
    assert_eq!(call("getOwner", r#"{"ownerId": "o-1"}"#)["name"], "Ann");
    // A list tool ignores arguments it has none to key by.
    assert_eq!(call("listPets", "{}")["result"][1]["name"], "Tom");
}

/// `mcpgen --root ROOT ARGS…` on a pseudo-terminal (util-linux `script`), `input` typed at it.
fn on_a_terminal(env: &Env, args: &str, input: &str) -> Out {
    let line = format!("'{BIN}' --root '{}' {args}", env.root().display());
    Cmd::program("script", env.dir.path()).args(["-qec", &line, "/dev/null"]).stdin(input).run()
}

#[test]
fn replacing_the_primary_asks_on_a_terminal() {
    let env = Env::new();
    env.up("p");
    let before = env.jwt("p", "default");
    let out = on_a_terminal(&env, "sa-token p --name default --days 3", "n\n");
    assert_eq!(out.code, 2, "{}", out.stdout);
    assert!(out.stdout.contains("Replace it? [y/N]") && out.stdout.contains("not replaced"), "{}", out.stdout);
    assert_eq!(env.jwt("p", "default"), before);
    let out = on_a_terminal(&env, "sa-token p --name default --days 3", "y\n");
    assert_eq!(out.code, 0, "{}", out.stdout);
    let after = env.jwt("p", "default");
    assert_ne!(after, before);
    assert!(read_text(&env.file("p", "client/mcp.json")).contains(&after));
}
