//! Real-binary tests of every class of refused input and damaged file. Each one checks the exit
//! code, that stderr is exactly one `error:` line (plus at most one `hint:` line) naming the flag
//! or file, that nothing panicked or printed a backtrace (RUST_BACKTRACE=1 is set), and that the
//! whole folder is byte-identical afterwards.

mod support;

use serde_json::{Value, json};
use support::*;

/// Names outside `[A-Za-z0-9._-]{1,64}` or starting with `.`.
fn bad_names() -> Vec<String> {
    let mut names: Vec<String> =
        ["", ".hidden", ".", "..", "../x", "../../etc/passwd", "a/b", "/abs", "a b", "é", "tab\there", "esc\u{1b}[31mred", "a:b", "*"]
            .map(String::from)
            .into();
    names.push("x".repeat(65));
    names
}

/// A fresh profile `p` with a second, non-primary token `ci-bot`.
fn profile_env() -> Env {
    let env = Env::new();
    env.up("p");
    env.ok(&["sa-token", "p", "--name", "ci-bot", "--scopes", "orders.read"]);
    env
}

#[test]
fn bad_names_are_refused_everywhere() {
    let env = profile_env();
    for bad in bad_names() {
        let b = bad.as_str();
        for (args, flag) in [
            (vec!["sa-token", "p", "--name", b], "--name"),
            (vec!["sa-token", "p", "--name", b, "--primary"], "--name"),
            (vec!["sa-revoke", "p", "--name", b], "--name"),
            (vec!["sa-revoke", "p", "--name", b, "--force"], "--name"),
            (vec!["up", "--instance", b], "--instance"),
            (vec!["up", "--instance", b, "--force"], "--instance"),
            (vec!["sa-token", b], "profile"),
            (vec!["sa-token", b, "--name", "x"], "profile"),
            (vec!["sa-tokens", b], "profile"),
            (vec!["sa-tokens", b, "--json"], "profile"),
            (vec!["remint-all", b], "profile"),
            (vec!["sa-revoke", b, "--name", "ci-bot"], "profile"),
            (vec!["sa-verify", b], "profile"),
        ] {
            let out = assert_refused_unchanged(&env, &args, 2, &[flag]);
            assert!(
                !out.stderr.contains('\u{1b}') && !out.stderr.contains('\t'),
                "control characters reach the terminal: {:?}",
                out.stderr
            );
        }
        // sa-verify --name looks the name up among the stored tokens.
        assert_refused_unchanged(&env, &["sa-verify", "p", "--name", b], 2, &["no token named"]);
    }
    // The longest allowed name works (64 characters).
    let longest = "n".repeat(64);
    env.ok(&["sa-token", "p", "--name", &longest]);
    assert!(env.file("p", &format!("sa/{longest}.jwt")).is_file());
}

#[test]
fn invalid_scope_tokens_are_refused() {
    let env = profile_env();
    for bad in ["a\"b", "é", "a\\b", "", " ", "tab\tx", "ü.read", "nul\0"] {
        if bad.contains('\0') {
            continue; // cannot be passed as an argument
        }
        assert_refused_unchanged(&env, &["sa-token", "p", "--name", "ci-bot", "--scopes", bad], 2, &["--scopes"]);
        assert_refused_unchanged(&env, &["sa-token", "p", "--name", "new", "--scopes", "ok.read", bad], 2, &["--scopes"]);
        assert_refused_unchanged(&env, &["up", "--instance", "fresh", "--scopes", bad], 2, &["--scopes"]);
    }
    assert!(!env.profile_dir("fresh").exists());
}

#[test]
fn days_out_of_range_or_not_a_number_are_refused() {
    let env = profile_env();
    for bad in ["0", "-1", "36501", "abc", "1.5", "", "1e3", "99999999999999999999"] {
        assert_refused_unchanged(&env, &["sa-token", "p", "--name", "ci-bot", "--days", bad], 2, &["--days"]);
        assert_refused_unchanged(&env, &["sa-token", "p", "--name", "new", "--days", bad], 2, &["--days"]);
    }
    for bad in ["-1", "3651", "x", ""] {
        assert_refused_unchanged(&env, &["remint-all", "p", "--grace-days", bad], 2, &["--grace-days"]);
    }
    // The bounds themselves are accepted.
    env.ok(&["sa-token", "p", "--name", "one", "--days", "1"]);
    env.ok(&["sa-token", "p", "--name", "max", "--days", "36500"]);
}

#[test]
fn other_invalid_flag_values_are_refused() {
    let env = profile_env();
    assert_refused_unchanged(&env, &["sa-token", "p", "--name", "x", "--client-id", "a b"], 2, &["--client-id"]);
    assert_refused_unchanged(&env, &["sa-token", "p", "--name", "x", "--client-id", ""], 2, &["--client-id"]);
    assert_refused_unchanged(&env, &["sa-token", "p", "--name", "x", "--issuer", ""], 2, &["--issuer"]);
    assert_refused_unchanged(&env, &["sa-token", "p", "--name", "x", "--issuer", "é"], 2, &["--issuer"]);
    assert_refused_unchanged(&env, &["up", "--instance", "q", "--downstream", "ftp://example.com"], 2, &["--downstream"]);
    assert_refused_unchanged(&env, &["up", "--instance", "q", "--issuer", "a b"], 2, &["--issuer"]);
    let missing = env.dir.path().join("missing.yaml");
    assert_refused_unchanged(&env, &["up", "--instance", "q", "--spec", missing.to_str().unwrap()], 2, &["--spec", "missing.yaml"]);
    let not_openapi = env.dir.path().join("not-openapi.json");
    std::fs::write(&not_openapi, "{\"hello\": 1}").unwrap();
    assert_refused_unchanged(&env, &["up", "--instance", "q", "--spec", not_openapi.to_str().unwrap()], 2, &["--spec"]);
    let missing_token = env.dir.path().join("no-such.jwt");
    assert_refused_unchanged(&env, &["sa-verify", "p", "--file", missing_token.to_str().unwrap()], 2, &["--file", "no-such.jwt"]);
    assert!(!env.profile_dir("q").exists());
}

#[test]
fn unknown_profile_is_a_usage_error_with_a_hint() {
    let env = Env::new();
    // No profiles at all: the hint says how to create one.
    let out = assert_refused_unchanged(&env, &["sa-tokens", "nope"], 2, &["nope"]);
    assert!(out.stderr.contains("hint: ") && out.stderr.contains("mcpgen up --instance nope"), "{}", out.stderr);
    env.up("p");
    for args in [
        vec!["sa-token", "nope", "--name", "x"],
        vec!["sa-token", "nope", "--name", "x", "--primary"],
        vec!["sa-tokens", "nope"],
        vec!["sa-tokens", "nope", "--json"],
        vec!["remint-all", "nope"],
        vec!["sa-revoke", "nope", "--name", "x"],
        vec!["sa-verify", "nope"],
        vec!["sa-verify", "nope", "--token", "a.b.c"],
    ] {
        let out = assert_refused_unchanged(&env, &args, 2, &["nope"]);
        assert!(out.stderr.lines().nth(1).is_some_and(|hint| hint.contains("p")), "the hint lists the profiles: {}", out.stderr);
    }
    // A folder that exists but holds no profile.json is not a profile either.
    std::fs::create_dir_all(env.root().join("empty")).unwrap();
    assert_refused_unchanged(&env, &["sa-tokens", "empty"], 2, &["empty"]);
}

#[test]
fn unknown_token_name_is_a_usage_error() {
    let env = profile_env();
    for args in [
        vec!["sa-revoke", "p", "--name", "ghost"],
        vec!["sa-revoke", "p", "--name", "ghost", "--force"],
        vec!["sa-verify", "p", "--name", "ghost"],
    ] {
        let out = assert_refused_unchanged(&env, &args, 2, &["ghost"]);
        assert!(out.stderr.contains("hint: known tokens: default, ci-bot"), "{}", out.stderr);
    }
}

#[test]
fn refused_commands_right_after_up_leave_the_profile_untouched() {
    // Nothing has opened the profile yet, so not even its lock file may appear.
    let env = Env::new();
    env.up("p");
    assert_refused_unchanged(&env, &["sa-revoke", "p", "--name", "default"], 2, &["--force"]);
    assert_refused_unchanged(&env, &["sa-revoke", "p", "--name", "ghost"], 2, &["ghost"]);
    assert_refused_unchanged(&env, &["sa-verify", "p", "--name", "ghost"], 2, &["ghost"]);
    std::fs::remove_file(env.file("p", "sa/private.pem")).unwrap();
    assert_refused_unchanged(&env, &["sa-token", "p", "--name", "x"], 1, &["sa/private.pem"]);
}

#[test]
fn revoking_the_primary_needs_force() {
    let env = profile_env();
    let out = assert_refused_unchanged(&env, &["sa-revoke", "p", "--name", "default"], 2, &["primary", "--force"]);
    assert!(out.stderr.lines().next().unwrap().contains("default"));
    // After moving the primary, the same token goes without --force.
    env.ok(&["sa-token", "p", "--name", "ci-bot", "--primary"]);
    assert_refused_unchanged(&env, &["sa-revoke", "p", "--name", "ci-bot"], 2, &["primary", "--force"]);
    env.ok(&["sa-revoke", "p", "--name", "default"]);
    // With no primary left, sa-verify without --name has nothing to check.
    env.ok(&["sa-revoke", "p", "--name", "ci-bot", "--force"]);
    assert_refused_unchanged(&env, &["sa-verify", "p"], 2, &["primary", "--name"]);
}

#[test]
fn up_over_an_existing_profile_needs_force() {
    let env = profile_env();
    assert_refused_unchanged(&env, &["up", "--instance", "p"], 2, &["already exists", "--force"]);
    assert_refused_unchanged(&env, &["up", "--instance", "p", "--no-sa", "--port", "9000"], 2, &["already exists", "--force"]);
    // A non-profile folder of that name is not overwritten either.
    std::fs::create_dir_all(env.root().join("stuff")).unwrap();
    std::fs::write(env.root().join("stuff/keep.txt"), "mine").unwrap();
    assert_refused_unchanged(&env, &["up", "--instance", "stuff"], 2, &["already exists", "--force"]);
}

#[test]
fn no_sa_profiles_refuse_token_commands() {
    let env = Env::new();
    env.ok(&["up", "--instance", "plain", "--no-sa"]);
    assert_refused_unchanged(&env, &["sa-token", "plain", "--name", "x"], 2, &["--no-sa"]);
    assert_refused_unchanged(&env, &["sa-token", "plain", "--name", "x", "--primary"], 2, &["--no-sa"]);
    assert_refused_unchanged(&env, &["remint-all", "plain"], 2, &["--no-sa"]);
    assert_refused_unchanged(&env, &["sa-verify", "plain"], 2, &["primary"]);
}

/// Hand edits that make `profile.json` invalid, each with the text to expect in the message: a
/// value of the wrong type is reported with the path of the field.
fn corruptions(valid: &Value) -> Vec<(&'static str, String, &'static str)> {
    let edit = |f: &dyn Fn(&mut Value)| {
        let mut doc = valid.clone();
        f(&mut doc);
        serde_json::to_string_pretty(&doc).unwrap()
    };
    let second = |doc: &mut Value| doc["sa_tokens"][1].clone();
    vec![
        ("truncated JSON", "{".to_owned(), "profile.json"),
        ("empty file", String::new(), "profile.json"),
        ("not JSON", "hello".to_owned(), "profile.json"),
        ("an array", "[]".to_owned(), "profile.json"),
        ("days is a string", edit(&|d| d["sa_tokens"][0]["days"] = json!("x")), "sa_tokens[0].days"),
        ("scopes is a string", edit(&|d| d["sa_tokens"][0]["scopes"] = json!("a b")), "sa_tokens[0].scopes"),
        ("primary is a string", edit(&|d| d["sa_tokens"][0]["primary"] = json!("yes")), "sa_tokens[0].primary"),
        ("sa_tokens is an object", edit(&|d| d["sa_tokens"] = json!({})), "sa_tokens"),
        ("a missing jti", edit(&|d| _ = d["sa_tokens"][1].as_object_mut().unwrap().remove("jti")), "jti"),
        ("an unknown field", edit(&|d| d["sa_tokens"][1]["extra"] = json!(1)), "extra"),
        ("a bad timestamp", edit(&|d| d["sa_tokens"][1]["expires_at"] = json!("tomorrow")), "profile.json"),
        (
            "duplicate names",
            edit(&|d| {
                let mut copy = second(d);
                copy["jti"] = json!("other");
                d["sa_tokens"].as_array_mut().unwrap().push(copy);
            }),
            "duplicate",
        ),
        ("two primaries", edit(&|d| d["sa_tokens"][1]["primary"] = json!(true)), "more than one primary"),
        ("filename ../../x", edit(&|d| d["sa_tokens"][1]["filename"] = json!("../../x")), "filename"),
        ("filename of another token", edit(&|d| d["sa_tokens"][1]["filename"] = json!("sa/token.jwt")), "filename"),
        ("absolute filename", edit(&|d| d["sa_tokens"][1]["filename"] = json!("/etc/passwd")), "filename"),
        (
            "a traversing name",
            edit(&|d| {
                d["sa_tokens"][1]["name"] = json!("../evil");
                d["sa_tokens"][1]["filename"] = json!("sa/../evil.jwt");
            }),
            "sa_tokens[1]",
        ),
        ("days 0", edit(&|d| d["sa_tokens"][1]["days"] = json!(0)), "days"),
        ("days 36501", edit(&|d| d["sa_tokens"][1]["days"] = json!(36501)), "days"),
        ("negative days", edit(&|d| d["sa_tokens"][1]["days"] = json!(-1)), "profile.json"),
        ("a bad scope", edit(&|d| d["sa_tokens"][1]["scopes"] = json!(["a\"b"])), "scope"),
        ("an empty client_id", edit(&|d| d["sa_tokens"][1]["client_id"] = json!("")), "client_id"),
        ("another profile's name", edit(&|d| d["name"] = json!("other")), "name"),
        ("schema version 2", edit(&|d| d["version"] = json!(2)), "version"),
        ("tokens without key_id", edit(&|d| d["key_id"] = Value::Null), "key_id"),
        ("a bad server_url", edit(&|d| d["server_url"] = json!("not a url")), "server_url"),
    ]
}

#[test]
fn corrupted_profile_json_is_a_failure_and_changes_nothing() {
    let env = profile_env();
    env.ok(&["sa-tokens", "p"]);
    let valid = env.profile_json("p");
    let original = std::fs::read(env.file("p", "profile.json")).unwrap();
    let mut missing = Vec::new();
    for (what, text, mention) in corruptions(&valid) {
        env.write_raw("p", "profile.json", text.as_bytes());
        for args in [
            vec!["sa-tokens", "p"],
            vec!["sa-tokens", "p", "--json"],
            vec!["sa-token", "p", "--name", "new"],
            vec!["sa-token", "p", "--name", "default", "--primary"],
            vec!["remint-all", "p"],
            vec!["remint-all", "p", "--grace-days", "1"],
            vec!["sa-revoke", "p", "--name", "ci-bot"],
            vec!["sa-revoke", "p", "--name", "default", "--force"],
            vec!["sa-verify", "p"],
            vec!["sa-verify", "p", "--name", "ci-bot"],
        ] {
            let out = assert_refused_unchanged(&env, &args, 1, &["profile.json"]);
            if !out.stderr.contains(mention) {
                missing.push(format!("{what}: `{}` does not mention {mention:?}:\n{}", args.join(" "), out.stderr));
            }
        }
        // list reports the damaged profile, exits 1, and still lists the others.
        let before = snapshot(env.dir.path());
        let out = env.run(&["list", "--profiles"]);
        assert_eq!((out.code, out.stdout.as_str()), (0, "p\n"), "{what}: list --profiles only scans names");
        let out = env.run(&["list"]);
        assert_eq!(out.code, 1, "{what}: list");
        assert!(out.stdout.contains("(unreadable)"), "{what}: {}", out.stdout);
        assert!(out.stderr.starts_with("error: ") && out.stderr.contains("profile.json"), "{what}: {}", out.stderr);
        assert_clean_stderr(&out.stderr);
        let out = env.run(&["list", "--json"]);
        assert_eq!(out.code, 1);
        assert!(out.json()["profiles"][0]["error"].as_str().unwrap().contains("profile.json"));
        assert_same_tree(&before, &snapshot(env.dir.path()), &format!("{what}: list"));
    }
    assert!(missing.is_empty(), "messages that do not say what is wrong:\n{}", missing.join("\n"));
    // Restored, everything works again.
    env.write_raw("p", "profile.json", &original);
    env.ok(&["sa-verify", "p", "--name", "ci-bot"]);
}

#[test]
fn missing_or_garbage_private_key_is_a_failure() {
    let env = profile_env();
    let pem_path = env.file("p", "sa/private.pem");
    let original = std::fs::read(&pem_path).unwrap();
    let other_key = {
        let other = Env::new();
        other.up("o");
        std::fs::read(other.file("o", "sa/private.pem")).unwrap()
    };
    let garbage: Vec<(&str, Option<Vec<u8>>)> = vec![
        ("missing", None),
        ("empty", Some(Vec::new())),
        ("garbage", Some(b"garbage\n".to_vec())),
        ("bad base64 body", Some(b"-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n".to_vec())),
        ("short DER", Some(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".to_vec())),
        ("binary", Some(vec![0xff, 0x00, 0x9c, 0x80])),
        ("a public key", Some(std::fs::read(env.file("p", "sa/public.pem")).unwrap())),
        ("another profile's key", Some(other_key)),
    ];
    for (what, content) in garbage {
        match &content {
            None => std::fs::remove_file(&pem_path).unwrap(),
            Some(bytes) => write_secret(&pem_path, bytes),
        }
        for args in [
            vec!["sa-token", "p", "--name", "new"],
            vec!["sa-token", "p", "--name", "default", "--force"],
            vec!["sa-token", "p", "--name", "ci-bot", "--primary"],
        ] {
            let out = assert_refused_unchanged(&env, &args, 1, &["sa/private.pem"]);
            assert!(out.stderr.contains("hint: ") && out.stderr.contains("remint-all"), "{what}: {}", out.stderr);
        }
        // Reading and verifying do not need the private key.
        env.ok(&["sa-tokens", "p"]);
        env.ok(&["sa-verify", "p", "--name", "ci-bot"]);
    }
    // remint-all is the way out of a lost key: it does not read the old private key.
    std::fs::remove_file(&pem_path).unwrap();
    env.ok(&["remint-all", "p"]);
    assert_ne!(std::fs::read(&pem_path).unwrap(), original);
    env.ok(&["sa-token", "p", "--name", "after"]);
    for name in ["default", "ci-bot", "after"] {
        env.ok(&["sa-verify", "p", "--name", name]);
    }
}

#[test]
fn missing_or_garbage_public_key_and_config_are_failures() {
    let env = profile_env();
    let public = env.file("p", "sa/public.pem");
    let original = std::fs::read(&public).unwrap();
    std::fs::remove_file(&public).unwrap();
    assert_refused_unchanged(&env, &["sa-verify", "p"], 1, &["sa/public.pem"]);
    assert_refused_unchanged(&env, &["remint-all", "p", "--grace-days", "1"], 1, &["sa/public.pem", "--grace-days"]);
    std::fs::write(&public, "garbage").unwrap();
    assert_refused_unchanged(&env, &["sa-verify", "p", "--name", "ci-bot"], 1, &["sa/public.pem"]);
    assert_refused_unchanged(&env, &["remint-all", "p", "--grace-days", "1"], 1, &["sa/public.pem"]);
    std::fs::write(&public, &original).unwrap();

    let config = env.file("p", "mcp_server_config.json");
    let original = std::fs::read(&config).unwrap();
    std::fs::write(&config, "{ not json").unwrap();
    assert_refused_unchanged(&env, &["sa-token", "p", "--name", "ci-bot", "--primary"], 1, &["mcp_server_config.json"]);
    assert_refused_unchanged(&env, &["sa-token", "p", "--name", "default", "--force"], 1, &["mcp_server_config.json"]);
    assert_refused_unchanged(&env, &["remint-all", "p"], 1, &["mcp_server_config.json"]);
    assert_refused_unchanged(&env, &["sa-verify", "p"], 1, &["mcp_server_config.json"]);
    std::fs::write(&config, &original).unwrap();
    env.ok(&["sa-verify", "p"]);
}

#[test]
fn unreadable_journal_is_a_failure_with_a_hint() {
    let env = profile_env();
    env.write_raw("p", ".journal", b"{ half a journ");
    for args in [vec!["sa-tokens", "p"], vec!["sa-token", "p", "--name", "x"], vec!["remint-all", "p"]] {
        let out = assert_refused_unchanged(&env, &args, 1, &[".journal"]);
        assert!(out.stderr.contains("hint: "), "{}", out.stderr);
    }
    std::fs::remove_file(env.file("p", ".journal")).unwrap();
    env.ok(&["sa-tokens", "p"]);
}

#[test]
fn command_line_errors_exit_2_in_one_line_with_a_hint() {
    let env = profile_env();
    for (args, mention) in [
        (vec!["sa-tokens", "p", "--bogus"], "--bogus"),
        (vec!["sa-tokens", "p", "--jsn"], "--jsn"),
        (vec!["sa-revoke", "p"], "--name"),
        (vec!["sa-token"], "<PROFILE>"),
        (vec!["list", "--json", "--profiles"], "--profiles"),
        (vec!["sa-verify", "p", "--name", "x", "--token", "y"], "--token"),
        (vec!["up", "--port", "0"], "--port"),
        (vec!["up", "--port", "70000"], "--port"),
        (vec!["frobnicate"], "frobnicate"),
        (vec!["no-such-command"], "no-such-command"),
    ] {
        let out = assert_refused_unchanged(&env, &args, 2, &[mention]);
        assert_eq!(out.stderr.lines().count(), 2, "{args:?}: {}", out.stderr);
        assert!(out.stderr.lines().nth(1).unwrap().starts_with("hint: "), "{args:?}: {}", out.stderr);
    }
    // A close match is offered as the hint.
    let out = env.run(&["sa-tokens", "p", "--jsn"]);
    assert!(out.stderr.contains("hint: a similar argument exists: '--json'"), "{}", out.stderr);
}
