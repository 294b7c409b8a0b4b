//! Real-binary tests of the happy paths: every command, every flag of the seed's `sa-token`, the
//! table and JSON formats, primary handling, rotation, revocation, verification, file modes,
//! closed pipes, `--help` and completions.

mod support;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};

use base64::Engine;
use serde_json::Value;
use support::*;

const DAY: i64 = 86_400;

/// Split an aligned table into cells using the header words' start columns.
fn parse_table(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut lines = text.lines();
    let header_line = lines.next().expect("table has a header");
    let mut starts = Vec::new();
    let mut previous = ' ';
    for (i, c) in header_line.char_indices() {
        if c != ' ' && previous == ' ' {
            starts.push(i);
        }
        previous = c;
    }
    let header: Vec<String> = header_line.split_whitespace().map(str::to_owned).collect();
    assert_eq!(header.len(), starts.len());
    let rows = lines
        .map(|line| {
            (0..starts.len())
                .map(|i| {
                    let end = starts.get(i + 1).copied().unwrap_or(line.len()).min(line.len());
                    line.get(starts[i]..end).unwrap_or("").trim().to_owned()
                })
                .collect()
        })
        .collect();
    (header, rows)
}

fn date(value: &Value) -> String {
    time(value).format("%Y-%m-%d").to_string()
}

fn keys_of(value: &Value) -> BTreeSet<String> {
    value.as_object().expect("an object").keys().cloned().collect()
}

#[test]
fn up_creates_every_documented_file_with_its_mode() {
    let env = Env::new();
    let out = env.ok(&["up", "--instance", "p"]);
    assert_eq!(out.stdout, "", "up prints diagnostics on stderr only");
    assert!(out.stderr.contains("created profile p"), "{}", out.stderr);
    assert!(out.stderr.contains("hint: connect an MCP host with `mcpgen hosts p --for "), "{}", out.stderr);

    for (relative, want) in [
        ("profile.json", 0o600),
        ("sa/private.pem", 0o600),
        ("sa/public.pem", 0o644),
        ("sa/token.jwt", 0o600),
        ("mcp_server_config.json", 0o600),
        ("client/mcp.json", 0o600),
        ("client/client.env", 0o600),
        (".lock", 0o600),
    ] {
        assert_eq!(mode(&env.file("p", relative)), want, "mode of {relative}");
    }

    // PKCS#8 v1 (RFC 8410): version 0, no embedded public key, 48 bytes of DER.
    let private = read_text(&env.file("p", "sa/private.pem"));
    assert!(private.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{private}");
    let body: String = private.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD.decode(body).unwrap();
    assert_eq!(der.len(), 48);
    assert_eq!(&der[..5], &[0x30, 0x2e, 0x02, 0x01, 0x00]);
    let public_pem = read_text(&env.file("p", "sa/public.pem"));
    assert!(public_pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));

    let profile = env.profile_json("p");
    assert_eq!(profile["name"], "p");
    assert_eq!(profile["issuer"], "oemcp-local");
    assert_eq!(profile["server_url"], "http://127.0.0.1:8000/mcp");
    let key_id = profile["key_id"].as_str().unwrap().to_owned();
    assert_eq!(key_id, public_key(&env, "p").thumbprint());
    let tokens = profile["sa_tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 1);
    let default = &tokens[0];
    assert_eq!(default["name"], "default");
    assert_eq!(default["filename"], "sa/token.jwt");
    assert_eq!(default["client_id"], "svc-p");
    assert_eq!(default["issuer"], "oemcp-local");
    assert_eq!(default["days"], 365);
    assert_eq!(default["primary"], true);
    assert_eq!(default["scopes"], serde_json::json!(["orders.read", "products.read"]));

    let config: Value = serde_json::from_str(&read_text(&env.file("p", "mcp_server_config.json"))).unwrap();
    assert_eq!(config["security"]["authentication"]["service_account"]["public_key"], Value::from(public_pem));

    // The token: header, claims, and the client files carrying it.
    let jwt = read_text(&env.file("p", "sa/token.jwt")).trim().to_owned();
    let header = jwt_header(&jwt);
    assert_eq!(header, serde_json::json!({"alg": "EdDSA", "typ": "JWT", "kid": key_id}));
    let claims = jwt_claims(&jwt);
    assert_eq!(claims["iss"], "oemcp-local");
    assert_eq!(claims["sub"], "svc-p");
    assert_eq!(claims["client_id"], "svc-p");
    assert_eq!(claims["scope"], "orders.read products.read");
    assert_eq!(claims["aud"], "http://127.0.0.1:8000/mcp");
    assert_eq!(claims["nbf"], claims["iat"]);
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 365 * DAY);
    assert_eq!(claims["jti"], default["jti"]);
    assert!(claims["jti"].as_str().unwrap().len() >= 22, "jti carries at least 128 bits");
    verify_with(&jwt, public_key(&env, "p"), "oemcp-local", "http://127.0.0.1:8000/mcp").unwrap();
    assert_client_files_carry(&env, "p", &jwt);
}

/// `client/mcp.json` and `client/client.env` carry exactly `jwt` as the primary token.
fn assert_client_files_carry(env: &Env, profile: &str, jwt: &str) {
    let mcp: Value = serde_json::from_str(&read_text(&env.file(profile, "client/mcp.json"))).unwrap();
    let server = &mcp["mcpServers"][profile];
    assert_eq!(server["type"], "http");
    assert_eq!(server["url"], env.profile_json(profile)["server_url"]);
    assert_eq!(server["headers"]["X-OEMCP-SERVICEACCOUNT"], Value::from(jwt), "client/mcp.json header");
    let envfile = read_text(&env.file(profile, "client/client.env"));
    assert!(envfile.lines().any(|l| l == format!("SERVICE_ACCOUNT_JWT={jwt}")), "client/client.env:\n{envfile}");
    assert_eq!(mode(&env.file(profile, "client/mcp.json")), 0o600);
    assert_eq!(mode(&env.file(profile, "client/client.env")), 0o600);
}

#[test]
fn up_flags_port_issuer_downstream_scopes_spec_no_sa_force() {
    let env = Env::new();
    env.ok(&[
        "up",
        "--instance",
        "q",
        "--port",
        "9001",
        "--issuer",
        "my-iss",
        "--downstream",
        "http://127.0.0.1:1/api",
        "--scopes",
        "a.read",
        "b.write",
    ]);
    let profile = env.profile_json("q");
    assert_eq!(profile["port"], 9001);
    assert_eq!(profile["issuer"], "my-iss");
    assert_eq!(profile["server_url"], "http://127.0.0.1:9001/mcp");
    assert_eq!(profile["downstream"], "http://127.0.0.1:1/api");
    let claims = jwt_claims(&env.jwt("q", "default"));
    assert_eq!(claims["iss"], "my-iss");
    assert_eq!(claims["aud"], "http://127.0.0.1:9001/mcp");
    assert_eq!(claims["scope"], "a.read b.write");
    let config: Value = serde_json::from_str(&read_text(&env.file("q", "mcp_server_config.json"))).unwrap();
    assert_eq!(config["security"]["authentication"]["service_account"]["issuer"], "my-iss");
    env.ok(&["sa-verify", "q"]);

    // --spec: the name derives from the title, the default token gets the spec's scopes.
    let spec = serde_json::json!({
        "openapi": "3.0.3",
        "info": {"title": "Pet Store", "version": "1"},
        "paths": {"/pets": {"get": {"operationId": "listPets", "security": [{"oauth": ["pets.read"]}],
            "responses": {"200": {"description": "ok"}}}}}
    });
    let spec_path = env.dir.path().join("pets.json");
    std::fs::write(&spec_path, spec.to_string()).unwrap();
    env.ok(&["up", "--spec", spec_path.to_str().unwrap()]);
    let pets = env.profile_json("pet-store");
    assert_eq!(pets["spec"], "openapi.json");
    assert!(env.file("pet-store", "openapi.json").is_file());
    assert_eq!(env.token_entry("pet-store", "default")["scopes"], serde_json::json!(["pets.read"]));

    // --no-sa: no keys, no tokens, client files without a token.
    env.ok(&["up", "--instance", "plain", "--no-sa"]);
    assert!(!env.file("plain", "sa").exists());
    assert!(env.tokens("plain").is_empty());
    assert!(!read_text(&env.file("plain", "client/client.env")).contains("SERVICE_ACCOUNT_JWT="));
    let mcp: Value = serde_json::from_str(&read_text(&env.file("plain", "client/mcp.json"))).unwrap();
    assert!(mcp["mcpServers"]["plain"].get("headers").is_none(), "{mcp}");

    // --force replaces the profile: new key, new token.
    let old_kid = env.profile_json("q")["key_id"].clone();
    let old_jwt = env.jwt("q", "default");
    env.ok(&["up", "--instance", "q", "--force"]);
    assert_ne!(env.profile_json("q")["key_id"], old_kid);
    assert_ne!(env.jwt("q", "default"), old_jwt);
    // --force starts from scratch: q's old --port 9001 is not kept; without --port it gets the
    // first port no other profile under the root uses (pet-store has 8000, plain 8001).
    assert_eq!(env.profile_json("pet-store")["port"], 8000);
    assert_eq!(env.profile_json("plain")["port"], 8001);
    assert_eq!(env.profile_json("q")["port"], 8002, "--force starts from scratch, on a port of its own");
    assert_eq!(env.profile_json("q")["server_url"], "http://127.0.0.1:8002/mcp");
}

#[test]
fn root_comes_from_flag_env_or_default_folder() {
    let env = Env::new();
    // MCPGEN_ROOT.
    let from_env = env.dir.path().join("from-env");
    let out = env.command().env("MCPGEN_ROOT", &from_env).args(["up", "--instance", "e"]).run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(from_env.join("e/profile.json").is_file());
    // Default: ./generated under the working directory.
    let out = env.command().args(["up", "--instance", "d"]).run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(env.dir.path().join("generated/d/profile.json").is_file());
    // --root wins over MCPGEN_ROOT.
    let out = env.command().env("MCPGEN_ROOT", &from_env).arg("--root").arg(env.root()).args(["list", "--profiles"]).run();
    assert_eq!(out.stdout, "d\n");
}

#[test]
fn sa_token_takes_every_seed_flag() {
    let env = Env::new();
    env.up("myprof");
    let out = env.ok(&[
        "sa-token",
        "myprof",
        "--name",
        "dashboard",
        "--scopes",
        "products.read",
        "orders.read",
        "--client-id",
        "dash-ui",
        "--days",
        "90",
        "--issuer",
        "other-iss",
    ]);
    assert_eq!(out.stdout, "", "without --print the token is not printed");
    let entry = env.token_entry("myprof", "dashboard");
    assert_eq!(entry["filename"], "sa/dashboard.jwt");
    assert_eq!(entry["client_id"], "dash-ui");
    assert_eq!(entry["issuer"], "other-iss");
    assert_eq!(entry["scopes"], serde_json::json!(["products.read", "orders.read"]));
    assert_eq!(entry["days"], 90);
    assert_eq!(entry["primary"], false);
    assert_eq!((time(&entry["expires_at"]) - time(&entry["issued_at"])).num_seconds(), 90 * DAY);

    let jwt = env.jwt("myprof", "dashboard");
    assert_eq!(mode(&env.file("myprof", "sa/dashboard.jwt")), 0o600);
    let claims = jwt_claims(&jwt);
    assert_eq!(claims["iss"], "other-iss");
    assert_eq!(claims["sub"], "dash-ui");
    assert_eq!(claims["client_id"], "dash-ui");
    assert_eq!(claims["scope"], "products.read orders.read");
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 90 * DAY);
    assert_eq!(claims["jti"], entry["jti"]);
    assert_eq!(time(&entry["issued_at"]).timestamp(), claims["iat"].as_i64().unwrap());
    let verify = env.ok(&["sa-verify", "myprof", "--name", "dashboard"]).json();
    assert_eq!(verify["valid"], true);

    // Defaults: client_id = the name, days 365, issuer = the profile's, no scopes.
    env.ok(&["sa-token", "myprof", "--name", "ci-bot"]);
    let ci = env.token_entry("myprof", "ci-bot");
    assert_eq!(ci["client_id"], "ci-bot");
    assert_eq!(ci["days"], 365);
    assert_eq!(ci["issuer"], "oemcp-local");
    assert_eq!(ci["scopes"], serde_json::json!([]));
    assert_eq!(ci["primary"], false);

    // --print puts exactly the stored token on stdout.
    let printed = env.ok(&["sa-token", "myprof", "--name", "printer", "--print"]);
    assert_eq!(printed.stdout, format!("{}\n", env.jwt("myprof", "printer")));

    // `--scopes "a b"` is split; `--scopes` with no value clears.
    env.ok(&["sa-token", "myprof", "--name", "ci-bot", "--scopes", "x.read y.read"]);
    assert_eq!(env.token_entry("myprof", "ci-bot")["scopes"], serde_json::json!(["x.read", "y.read"]));
    env.ok(&["sa-token", "myprof", "--name", "ci-bot", "--scopes"]);
    assert_eq!(env.token_entry("myprof", "ci-bot")["scopes"], serde_json::json!([]));
    assert_eq!(jwt_claims(&env.jwt("myprof", "ci-bot"))["scope"], "");
}

#[test]
fn replace_keeps_omitted_flags_and_revokes_the_old_jti() {
    let env = Env::new();
    env.up("p");
    env.ok(&["sa-token", "p", "--name", "ci-bot", "--scopes", "orders.read", "--client-id", "ci-id", "--days", "30"]);
    let before = env.token_entry("p", "ci-bot");
    let old_jwt = env.jwt("p", "ci-bot");
    env.ok(&["sa-verify", "p", "--token", &old_jwt]);

    // Only --days given: everything else keeps its stored value.
    env.ok(&["sa-token", "p", "--name", "ci-bot", "--days", "7"]);
    let after = env.token_entry("p", "ci-bot");
    assert_eq!(after["days"], 7);
    for field in ["client_id", "issuer", "scopes", "primary", "filename"] {
        assert_eq!(after[field], before[field], "{field} kept");
    }
    assert_ne!(after["jti"], before["jti"]);
    assert_eq!(env.tokens("p").len(), 2, "replaced, not added");
    let claims = jwt_claims(&env.jwt("p", "ci-bot"));
    assert_eq!(claims["client_id"], "ci-id");
    assert_eq!(claims["scope"], "orders.read");
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 7 * DAY);

    // Only --client-id: days 7 is kept now.
    env.ok(&["sa-token", "p", "--name", "ci-bot", "--client-id", "ci-2"]);
    let third = env.token_entry("p", "ci-bot");
    assert_eq!(third["client_id"], "ci-2");
    assert_eq!(third["days"], 7);
    assert_eq!(third["scopes"], serde_json::json!(["orders.read"]));

    // The superseded token's jti is on the revocation list and sa-verify refuses it.
    let revoked: Vec<Value> = env.profile_json("p")["revoked"].as_array().unwrap().iter().map(|r| r["jti"].clone()).collect();
    assert!(revoked.contains(&before["jti"]), "{revoked:?}");
    let out = env.run(&["sa-verify", "p", "--token", &old_jwt]);
    assert_eq!(out.code, 1);
    let report = out.json();
    assert_eq!(report["valid"], false);
    assert!(report["error"].as_str().unwrap().contains("revoked"), "{report}");
    assert_clean_stderr(&out.stderr);
}

#[test]
fn primary_moves_and_rewrites_the_client_files() {
    let env = Env::new();
    env.up("p");
    assert_client_files_carry(&env, "p", &env.jwt("p", "default"));

    env.ok(&["sa-token", "p", "--name", "dashboard", "--scopes", "products.read", "--client-id", "dashboard", "--days", "90"]);
    // A new non-primary token leaves the client files alone.
    assert_client_files_carry(&env, "p", &env.jwt("p", "default"));

    // Seed step 2: promote with only --primary; the stored values stay.
    env.ok(&["sa-token", "p", "--name", "dashboard", "--primary"]);
    let tokens = env.tokens("p");
    let primaries: Vec<&Value> = tokens.iter().filter(|t| t["primary"] == true).collect();
    assert_eq!(primaries.len(), 1);
    assert_eq!(primaries[0]["name"], "dashboard");
    assert_eq!(primaries[0]["days"], 90);
    assert_eq!(primaries[0]["client_id"], "dashboard");
    assert_eq!(env.token_entry("p", "default")["primary"], false);
    let dashboard_jwt = env.jwt("p", "dashboard");
    assert_client_files_carry(&env, "p", &dashboard_jwt);

    // Re-issuing the primary revokes the JWT every host holds: refused without --force.
    let out = assert_refused_unchanged(&env, &["sa-token", "p", "--name", "dashboard", "--days", "10"], 2, &["primary", "--force"]);
    assert!(out.stderr.contains("client/mcp.json"), "{}", out.stderr);
    // With --force it stays primary and the client files carry the new token.
    let out = env.ok(&["sa-token", "p", "--name", "dashboard", "--days", "10", "--force"]);
    assert!(out.stderr.contains("revoked") && out.stderr.contains("client/mcp.json"), "{}", out.stderr);
    assert_eq!(env.token_entry("p", "dashboard")["primary"], true);
    let reissued = env.jwt("p", "dashboard");
    assert_ne!(reissued, dashboard_jwt);
    assert_client_files_carry(&env, "p", &reissued);

    // Re-issuing a non-primary token does not touch them.
    env.ok(&["sa-token", "p", "--name", "default", "--days", "5"]);
    assert_eq!(env.token_entry("p", "default")["primary"], false);
    assert_client_files_carry(&env, "p", &reissued);

    // sa-verify without --name checks the primary.
    let report = env.ok(&["sa-verify", "p"]).json();
    assert_eq!(report["claims"]["jti"], env.token_entry("p", "dashboard")["jti"]);

    // And back to default.
    env.ok(&["sa-token", "p", "--name", "default", "--primary"]);
    assert_eq!(env.token_entry("p", "dashboard")["primary"], false);
    assert_eq!(env.token_entry("p", "default")["primary"], true);
    assert_client_files_carry(&env, "p", &env.jwt("p", "default"));
}

#[test]
fn sa_tokens_table_matches_the_seed_layout() {
    let env = Env::new();
    env.ok(&["up", "--instance", "myprof", "--scopes", "schema.read", "tags.read"]);
    env.ok(&["sa-token", "myprof", "--name", "ci-bot", "--scopes", "orders.read", "--days", "30"]);
    let tokens = env.tokens("myprof");
    let out = env.ok(&["sa-tokens", "myprof"]);
    let want = format!(
        "NAME     CLIENT_ID   SCOPES                 PRIMARY  EXPIRES\n\
         default  svc-myprof  schema.read tags.read  yes      {}\n\
         ci-bot   ci-bot      orders.read            no       {}\n",
        date(&tokens[0]["expires_at"]),
        date(&tokens[1]["expires_at"])
    );
    assert_eq!(out.stdout, want);
    assert_eq!(out.stderr, "");
}

#[test]
fn sa_tokens_table_and_json_agree_and_mark_expired_tokens() {
    let env = Env::new();
    env.up("p");
    env.ok(&["sa-token", "p", "--name", "ci-bot", "--scopes", "orders.read", "products.read", "--days", "30"]);
    env.ok(&["sa-token", "p", "--name", "old", "--scopes", "a"]);
    env.ok(&["sa-token", "p", "--name", "late", "--days", "36500"]);
    // A hand edit that is valid: this entry expired in the past.
    env.edit_profile("p", |doc| {
        for t in doc["sa_tokens"].as_array_mut().unwrap() {
            if t["name"] == "old" {
                t["expires_at"] = Value::from("2020-01-02T03:04:05Z");
            }
        }
    });

    let json = env.ok(&["sa-tokens", "p", "--json"]).json();
    assert_eq!(keys_of(&json), BTreeSet::from(["sa_tokens".to_owned()]));
    let tokens = json["sa_tokens"].as_array().unwrap();
    let want_keys: BTreeSet<String> =
        ["name", "filename", "client_id", "issuer", "scopes", "days", "primary", "jti", "issued_at", "expires_at", "expired"]
            .map(String::from)
            .into();
    for t in tokens {
        assert_eq!(keys_of(t), want_keys, "{t}");
        assert!(t["name"].is_string() && t["filename"].is_string() && t["client_id"].is_string() && t["issuer"].is_string());
        assert!(t["scopes"].as_array().unwrap().iter().all(Value::is_string));
        assert!(t["days"].is_u64() && t["primary"].is_boolean() && t["expired"].is_boolean() && t["jti"].is_string());
        time(&t["issued_at"]);
        time(&t["expires_at"]);
        assert_eq!(t["expired"], t["name"] == "old", "{t}");
    }
    let names: Vec<&str> = tokens.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["default", "ci-bot", "old", "late"], "creation order");

    let table = env.ok(&["sa-tokens", "p"]).stdout;
    let (header, rows) = parse_table(&table);
    assert_eq!(header, ["NAME", "CLIENT_ID", "SCOPES", "PRIMARY", "EXPIRES"]);
    assert_eq!(rows.len(), tokens.len());
    for (row, t) in rows.iter().zip(tokens) {
        assert_eq!(row[0], t["name"].as_str().unwrap());
        assert_eq!(row[1], t["client_id"].as_str().unwrap());
        let scopes: Vec<&str> = t["scopes"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
        assert_eq!(row[2], scopes.join(" "));
        assert_eq!(row[3], if t["primary"] == true { "yes" } else { "no" });
        let expires = date(&t["expires_at"]);
        if t["expired"] == true {
            assert_eq!(row[4], format!("{expires} (expired)"));
        } else {
            assert_eq!(row[4], expires);
        }
    }
    assert_eq!(rows[2][4], "2020-01-02 (expired)");

    // list counts the expired token too.
    let list = env.ok(&["list", "--json"]).json();
    assert_eq!(list["profiles"][0]["tokens"], 4);
    assert_eq!(list["profiles"][0]["expired_tokens"], 1);
    let (_, rows) = parse_table(&env.ok(&["list"]).stdout);
    assert_eq!(rows[0][3], "4 (1 expired)");
}

#[test]
fn list_table_json_profiles_and_wide() {
    let env = Env::new();
    // Nothing yet: empty output, exit 0.
    let empty = env.ok(&["list"]);
    assert_eq!(empty.stdout, "");
    assert_eq!(env.ok(&["list", "--json"]).json(), serde_json::json!({"profiles": []}));
    assert_eq!(env.ok(&["list", "--profiles"]).stdout, "");

    env.up("beta");
    env.ok(&["up", "--instance", "alpha", "--port", "9100", "--issuer", "iss-a", "--downstream", "http://127.0.0.1:9/api"]);
    env.ok(&["sa-token", "alpha", "--name", "ci", "--primary"]);
    // A folder without profile.json is not a profile.
    std::fs::create_dir_all(env.root().join("not-a-profile")).unwrap();

    assert_eq!(env.ok(&["list", "--profiles"]).stdout, "alpha\nbeta\n");

    let (header, rows) = parse_table(&env.ok(&["list"]).stdout);
    assert_eq!(header, ["NAME", "ISSUER", "URL", "TOKENS", "PRIMARY", "CREATED"]);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0][..5], ["alpha", "iss-a", "http://127.0.0.1:9100/mcp", "2", "ci"]);
    assert_eq!(rows[1][..5], ["beta", "oemcp-local", "http://127.0.0.1:8000/mcp", "1", "default"]);
    assert_eq!(rows[0][5], date(&env.profile_json("alpha")["created"]));

    let (header, rows) = parse_table(&env.ok(&["list", "--wide"]).stdout);
    assert_eq!(header, ["NAME", "ISSUER", "URL", "TOKENS", "PRIMARY", "CREATED", "KEY_ID", "SPEC", "DOWNSTREAM", "UPDATED"]);
    let alpha = env.profile_json("alpha");
    assert_eq!(rows[0][6], alpha["key_id"].as_str().unwrap());
    assert_eq!(rows[0][7], "(sample)");
    assert_eq!(rows[0][8], "http://127.0.0.1:9/api");
    assert_eq!(rows[1][8], "-");
    assert_eq!(rows[0][9], alpha["updated"].as_str().unwrap());

    let json = env.ok(&["list", "--json"]).json();
    let profiles = json["profiles"].as_array().unwrap();
    assert_eq!(profiles.len(), 2);
    let want_keys: BTreeSet<String> = [
        "name",
        "issuer",
        "server_url",
        "port",
        "key_id",
        "spec",
        "downstream",
        "tokens",
        "expired_tokens",
        "primary",
        "created",
        "updated",
        "path",
    ]
    .map(String::from)
    .into();
    for p in profiles {
        assert_eq!(keys_of(p), want_keys);
    }
    assert_eq!(profiles[0]["name"], "alpha");
    assert_eq!(profiles[0]["port"], 9100);
    assert_eq!(profiles[0]["primary"], "ci");
    assert_eq!(profiles[0]["tokens"], 2);
    assert_eq!(profiles[0]["key_id"], alpha["key_id"]);
    assert_eq!(profiles[0]["downstream"], "http://127.0.0.1:9/api");
    assert_eq!(profiles[1]["downstream"], Value::Null);
    assert_eq!(profiles[1]["path"], Value::from(env.profile_dir("beta").to_str().unwrap()));
}

#[test]
fn remint_all_rotates_the_key_and_every_token() {
    let env = Env::new();
    env.up("p");
    env.ok(&["sa-token", "p", "--name", "ci-bot", "--scopes", "orders.read", "--days", "30", "--client-id", "ci-id"]);
    env.ok(&["sa-token", "p", "--name", "dash", "--issuer", "dash-iss", "--primary"]);
    let before_profile = env.profile_json("p");
    let before_tokens = env.tokens("p");
    let old_jwts: Vec<(String, String)> =
        before_tokens.iter().map(|t| (t["name"].as_str().unwrap().to_owned(), env.jwt("p", t["name"].as_str().unwrap()))).collect();
    let old_private = read_text(&env.file("p", "sa/private.pem"));
    let old_public = read_text(&env.file("p", "sa/public.pem"));

    let out = env.ok(&["remint-all", "p"]);
    assert_eq!(out.stdout, "");
    assert!(out.stderr.contains("re-minted 3 tokens"), "{}", out.stderr);

    let profile = env.profile_json("p");
    let kid = profile["key_id"].as_str().unwrap().to_owned();
    assert_ne!(Value::from(kid.clone()), before_profile["key_id"]);
    assert_ne!(read_text(&env.file("p", "sa/private.pem")), old_private);
    let new_public = read_text(&env.file("p", "sa/public.pem"));
    assert_ne!(new_public, old_public);
    assert_eq!(public_key(&env, "p").thumbprint(), kid);
    assert_eq!(mode(&env.file("p", "sa/private.pem")), 0o600);
    assert_eq!(mode(&env.file("p", "sa/public.pem")), 0o644);
    let config: Value = serde_json::from_str(&read_text(&env.file("p", "mcp_server_config.json"))).unwrap();
    assert_eq!(config["security"]["authentication"]["service_account"]["public_key"], Value::from(new_public));

    let after_tokens = env.tokens("p");
    assert_eq!(after_tokens.len(), before_tokens.len());
    for (old, new) in before_tokens.iter().zip(&after_tokens) {
        for field in ["name", "filename", "client_id", "issuer", "scopes", "days", "primary"] {
            assert_eq!(old[field], new[field], "{field} of {} kept", old["name"]);
        }
        assert_ne!(old["jti"], new["jti"]);
        let name = new["name"].as_str().unwrap();
        let jwt = env.jwt("p", name);
        assert_eq!(jwt_header(&jwt)["kid"], Value::from(kid.clone()));
        assert_eq!(jwt_claims(&jwt)["jti"], new["jti"]);
        assert_eq!(mode(&env.file("p", new["filename"].as_str().unwrap())), 0o600);
        let report = env.ok(&["sa-verify", "p", "--name", name]).json();
        assert_eq!(report["valid"], true, "{name}: {report}");
        assert_eq!(report["header"]["kid"], Value::from(kid.clone()));
    }
    // The primary's new token is in the client files.
    assert_client_files_carry(&env, "p", &env.jwt("p", "dash"));

    // Every old token string is refused now.
    for (name, jwt) in &old_jwts {
        let out = env.run(&["sa-verify", "p", "--token", jwt]);
        assert_eq!(out.code, 1, "old {name} still verifies");
        let report = out.json();
        assert_eq!(report["valid"], false);
        assert!(report["error"].as_str().unwrap().contains("kid"), "{report}");
        assert_clean_stderr(&out.stderr);
    }
}

#[test]
fn remint_all_grace_days_keeps_the_old_key_accepted() {
    let env = Env::new();
    env.up("p");
    env.ok(&["sa-token", "p", "--name", "ci-bot"]);
    let first_kid = env.profile_json("p")["key_id"].clone();
    let first = [env.jwt("p", "default"), env.jwt("p", "ci-bot")];

    env.ok(&["remint-all", "p", "--grace-days", "2"]);
    let profile = env.profile_json("p");
    let retired = profile["retired_keys"].as_array().unwrap();
    assert_eq!(retired.len(), 1);
    assert_eq!(retired[0]["kid"], first_kid);
    assert_eq!((time(&retired[0]["accept_until"]) - time(&retired[0]["retired_at"])).num_seconds(), 2 * DAY);
    for jwt in &first {
        let report = env.ok(&["sa-verify", "p", "--token", jwt]).json();
        assert_eq!(report["valid"], true);
        assert_eq!(report["header"]["kid"], first_kid);
    }
    let second = [env.jwt("p", "default"), env.jwt("p", "ci-bot")];
    for jwt in &second {
        assert_eq!(env.ok(&["sa-verify", "p", "--token", jwt]).json()["valid"], true);
    }

    // A rotation without grace drops the key it replaces at once.
    env.ok(&["remint-all", "p"]);
    for jwt in &second {
        assert_eq!(env.run(&["sa-verify", "p", "--token", jwt]).code, 1);
    }
    for name in ["default", "ci-bot"] {
        env.ok(&["sa-verify", "p", "--name", name]);
    }
}

#[test]
fn sa_revoke_removes_file_and_entry_and_refuses_the_old_token() {
    let env = Env::new();
    env.up("p");
    env.ok(&["sa-token", "p", "--name", "ci-bot", "--scopes", "orders.read"]);
    let entry = env.token_entry("p", "ci-bot");
    let jwt = env.jwt("p", "ci-bot");
    let client_before = read_text(&env.file("p", "client/mcp.json"));

    let out = env.ok(&["sa-revoke", "p", "--name", "ci-bot"]);
    assert_eq!(out.stdout, "");
    assert!(!env.file("p", "sa/ci-bot.jwt").exists(), "token file removed");
    assert!(env.tokens("p").iter().all(|t| t["name"] != "ci-bot"), "entry removed");
    let revoked = env.profile_json("p")["revoked"].clone();
    let rev = revoked.as_array().unwrap().iter().find(|r| r["jti"] == entry["jti"]).expect("jti on the revocation list");
    assert_eq!(rev["name"], "ci-bot");
    assert_eq!(rev["expires_at"], entry["expires_at"]);
    assert_eq!(read_text(&env.file("p", "client/mcp.json")), client_before, "revoking a non-primary leaves the client files");

    let out = env.run(&["sa-verify", "p", "--token", &jwt]);
    assert_eq!(out.code, 1);
    let report = out.json();
    assert_eq!(report["valid"], false);
    assert_eq!(report["error"], "token has been revoked");
    assert_eq!(report["claims"]["jti"], entry["jti"]);

    // The name can be used again for a fresh token.
    env.ok(&["sa-token", "p", "--name", "ci-bot"]);
    env.ok(&["sa-verify", "p", "--name", "ci-bot"]);

    // The primary goes only with --force, and takes the client files' token with it.
    let default_jwt = env.jwt("p", "default");
    env.ok(&["sa-revoke", "p", "--name", "default", "--force"]);
    assert!(!env.file("p", "sa/token.jwt").exists());
    assert!(env.tokens("p").iter().all(|t| t["primary"] == false));
    let mcp: Value = serde_json::from_str(&read_text(&env.file("p", "client/mcp.json"))).unwrap();
    assert!(mcp["mcpServers"]["p"].get("headers").is_none(), "{mcp}");
    let client_env = read_text(&env.file("p", "client/client.env"));
    assert!(!client_env.contains("SERVICE_ACCOUNT_JWT=") && !client_env.contains(&default_jwt), "{client_env}");
    assert_eq!(env.run(&["sa-verify", "p", "--token", &default_jwt]).json()["error"], "token has been revoked");
}

#[test]
fn sa_verify_reads_name_token_file_and_stdin() {
    let env = Env::new();
    env.up("p");
    env.ok(&["sa-token", "p", "--name", "ci-bot", "--scopes", "orders.read"]);
    let jwt = env.jwt("p", "ci-bot");
    let kid = env.profile_json("p")["key_id"].clone();

    let check = |out: Out| {
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(out.stderr.starts_with("valid: "), "{}", out.stderr);
        let report = out.json();
        assert_eq!(keys_of(&report), ["claims", "error", "expires_at", "header", "valid"].map(String::from).into());
        assert_eq!(report["valid"], true);
        assert_eq!(report["error"], Value::Null);
        assert_eq!(report["header"]["kid"], kid);
        assert_eq!(report["claims"]["client_id"], "ci-bot");
        assert_eq!(report["claims"]["scope"], "orders.read");
        assert_eq!(time(&report["expires_at"]).timestamp(), report["claims"]["exp"].as_i64().unwrap());
    };
    check(env.run(&["sa-verify", "p", "--name", "ci-bot"]));
    check(env.run(&["sa-verify", "p", "--token", &jwt]));
    let file = env.dir.path().join("token.txt");
    std::fs::write(&file, format!("{jwt}\n")).unwrap();
    check(env.run(&["sa-verify", "p", "--file", file.to_str().unwrap()]));
    check(env.run_with_stdin(&["sa-verify", "p", "--file", "-"], &format!("{jwt}\n")));

    // A tampered token: exit 1, valid false, still a JSON report.
    let mut parts: Vec<String> = jwt.split('.').map(str::to_owned).collect();
    let mut claims = jwt_claims(&jwt);
    claims["scope"] = Value::from("admin");
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims.to_string());
    let out = env.run(&["sa-verify", "p", "--token", &parts.join(".")]);
    assert_eq!(out.code, 1);
    assert_eq!(out.json()["error"], "signature does not verify");
    assert!(out.stderr.starts_with("invalid: "), "{}", out.stderr);
    assert_clean_stderr(&out.stderr);

    let out = env.run(&["sa-verify", "p", "--token", "not-a-jwt"]);
    assert_eq!(out.code, 1);
    assert_eq!(out.json()["valid"], false);
}

/// Spawn `args`, read one line of stdout, close the pipe, and expect a quiet exit 0. The output is
/// larger than a pipe buffer, so the process is still writing when the reader goes away.
fn closed_pipe_is_not_an_error(env: &Env, args: &[&str]) {
    let mut child = env.cmd(args).spawn();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(!first.is_empty());
    drop(stdout);
    let out = finish(child);
    assert_eq!(out.code, 0, "{args:?} after a closed pipe: {}", out.stderr);
    assert!(!out.stderr.to_lowercase().contains("error"), "{args:?}: {}", out.stderr);
    assert_clean_stderr(&out.stderr);
}

#[test]
fn closed_stdout_pipe_is_not_an_error() {
    let env = Env::new();
    env.up("p");
    env.add_bulk_tokens("p", 2500);
    assert!(env.ok(&["sa-tokens", "p"]).stdout.len() > 128 * 1024, "the table must overflow a pipe buffer");
    closed_pipe_is_not_an_error(&env, &["sa-tokens", "p"]);
    closed_pipe_is_not_an_error(&env, &["sa-tokens", "p", "--json"]);

    // The literal shell form, with pipefail so mcpgen's own status counts.
    let full = env.ok(&["sa-tokens", "p"]).stdout;
    let script = format!("set -o pipefail; '{BIN}' --root '{}' sa-tokens p | head -1", env.root().display());
    let out = shell(&env, &script);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, full.lines().next().unwrap().to_owned() + "\n");
    assert_eq!(out.stderr, "");
}

/// Run a bash script with the same environment as the binary gets.
fn shell(env: &Env, script: &str) -> Out {
    Cmd::program("bash", env.dir.path()).args(["-c", script]).run()
}

/// The subcommands `mcpgen --help` lists (every one the binary has), without `help` itself.
fn subcommands(top_help: &str) -> Vec<String> {
    let section = top_help.split("Commands:\n").nth(1).expect("a Commands: section");
    section
        .lines()
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

#[test]
fn help_of_every_subcommand_exits_zero_and_documents_the_flags() {
    let env = Env::new();
    let top = env.run(&["--help"]);
    assert_eq!(top.code, 0);
    assert_eq!(top.stderr, "");
    let listed = subcommands(&top.stdout);
    for sub in [
        "up",
        "list",
        "sa-token",
        "sa-tokens",
        "remint-all",
        "sa-revoke",
        "sa-verify",
        "serve",
        "client",
        "bridge",
        "hosts",
        "demo",
        "completions",
    ] {
        assert!(listed.iter().any(|l| l == sub), "top-level help lists {sub}:\n{}", top.stdout);
    }
    // Every subcommand the binary has, not a list kept by hand.
    for sub in &listed {
        for args in [vec![sub.as_str(), "--help"], vec![sub.as_str(), "-h"], vec!["help", sub.as_str()]] {
            let out = env.run(&args);
            assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
            assert!(out.stdout.contains(&format!("Usage: mcpgen {sub}")), "{args:?}:\n{}", out.stdout);
            assert_eq!(out.stderr, "", "{args:?}");
        }
    }
    let sa_token = env.run(&["sa-token", "--help"]).stdout;
    for flag in ["--name", "--scopes", "--client-id", "--days", "--issuer", "--primary", "--print"] {
        assert!(sa_token.contains(flag), "sa-token --help documents {flag}");
    }
    let client = env.run(&["client", "--help"]).stdout;
    for flag in [
        "--sa-token",
        "--tool",
        "--args",
        "--list-json",
        "--list-details",
        "--raw",
        "--debug",
        "--url",
        "--header",
        "-H",
        "--timeout",
        "--json-errors",
        "--oauth",
    ] {
        assert!(client.contains(flag), "client --help lacks {flag}:\n{client}");
    }
    let version = env.run(&["--version"]);
    assert_eq!(version.code, 0);
    assert!(version.stdout.starts_with("mcpgen "), "{}", version.stdout);
    // No subcommand is a usage error.
    assert_eq!(env.run::<&str>(&[]).code, 2);
}

#[test]
fn completions_for_each_shell() {
    let env = Env::new();
    // --static: the classic script that knows every flag.
    let bash = env.ok(&["completions", "bash", "--static"]).stdout;
    assert!(bash.contains("_mcpgen()") && bash.contains("complete") && bash.contains("sa-token"), "{bash}");
    assert!(bash.contains("--client-id") && bash.contains("--grace-days"));
    // The default asks mcpgen at each <TAB> (so it knows names too; tests/cli_contract.rs).
    let dynamic = env.ok(&["completions", "bash"]).stdout;
    assert!(dynamic.contains("MCPGEN_COMPLETE=\"bash\"") && dynamic.contains("complete -o nospace"), "{dynamic}");
    // Both scripts are valid bash.
    for (name, script) in [("static", &bash), ("dynamic", &dynamic)] {
        let path = env.dir.path().join(format!("mcpgen-{name}.bash"));
        std::fs::write(&path, script).unwrap();
        let status = std::process::Command::new("bash").arg("-n").arg(&path).status().unwrap();
        assert!(status.success(), "bash -n rejects the {name} completion script");
    }
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let out = env.ok(&["completions", shell, "--static"]);
        assert!(out.stdout.contains("sa-token"), "{shell}");
        let out = env.ok(&["completions", shell]);
        assert!(out.stdout.contains("MCPGEN_COMPLETE"), "{shell}: {}", out.stdout);
    }
    let bad = env.run(&["completions", "tcsh"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("tcsh"));
}
