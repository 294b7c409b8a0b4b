//! A profile folder is untrusted input (issue 7, items 1, 2 and the `list` part of 5): planted
//! journals, symlinks, hard links and loose permissions inside a profile must never make mcpgen
//! write, delete or send anything outside it; a killed `up` leaves no private key behind; a
//! revoked or replaced token's pre-rotation copy is refused everywhere; `list` redacts
//! credentials and escapes what it echoes. Every test runs the real binary on a temporary tree.

mod support;

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};

use serde_json::{Value, json};
use support::*;

/// An `outside` folder beside the root, with one file in it.
fn outside(env: &Env) -> std::path::PathBuf {
    let dir = env.dir.path().join("outside");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("victim"), "precious\n").unwrap();
    fs::set_permissions(dir.join("victim"), fs::Permissions::from_mode(0o644)).unwrap();
    dir
}

/// Plant a journal (the serialized form of an interrupted change) in profile `p`.
fn plant_journal(env: &Env, writes: Value, removes: Value) {
    let doc = json!({"writes": writes, "removes": removes});
    write_secret(&env.file("p", ".journal"), doc.to_string().as_bytes());
}

#[test]
fn planted_journal_through_a_symlinked_folder_writes_nothing_outside() {
    let env = Env::new();
    env.up("p");
    let out_dir = outside(&env);
    // `sa/` replaced by a link to the outside folder, and a journal that "finishes" a change.
    fs::rename(env.file("p", "sa"), env.dir.path().join("sa-real")).unwrap();
    symlink(&out_dir, env.file("p", "sa")).unwrap();
    plant_journal(&env, json!({"sa/evil.jwt": [0o600, "owned"], "sa/public.pem": [0o644, "x"]}), json!(["sa/old.jwt"]));
    for args in [&["sa-tokens", "p"][..], &["sa-verify", "p"][..]] {
        let out = assert_refused_unchanged(&env, args, 1, &["sa"]);
        assert!(out.stderr.contains("symbolic link"), "{}", out.stderr);
    }
    let before = snapshot(env.dir.path());
    let list = env.run(&["list"]);
    assert_ne!(list.code, 0, "list must report the refused profile");
    assert_same_tree(&before, &snapshot(env.dir.path()), "list");
    assert_eq!(fs::read_to_string(out_dir.join("victim")).unwrap(), "precious\n");
    assert!(!out_dir.join("evil.jwt").exists());
}

#[test]
fn planted_journal_naming_foreign_files_or_modes_is_refused_and_nothing_applied() {
    for (writes, removes, mention) in [
        (json!({"profile.json": [0o600, "{}"], "sa/evil.sh": [0o4755, "#!/bin/sh\n"]}), json!([]), "sa/evil.sh"),
        (json!({"profile.json": [0o600, "{}"], "sa/x.jwt": [0o4755, "x"]}), json!([]), "mode"),
        (json!({"profile.json": [0o600, "{}"], "../x": [0o600, "x"]}), json!([]), "../x"),
        (json!({"profile.json": [0o600, "{}"]}), json!([".lock"]), ".lock"),
        (json!({"profile.json": [0o600, "{}"], "client/run.sh": [0o600, "x"]}), json!([]), "client/run.sh"),
        (json!({"profile.json": [0o600, "{}"], "sa/private.pem": [0o644, "x"]}), json!([]), "mode 0644"),
    ] {
        let env = Env::new();
        env.up("p");
        plant_journal(&env, writes, removes);
        assert_refused_unchanged(&env, &["sa-tokens", "p"], 1, &[".journal", mention]);
        assert!(!env.dir.path().join("x").exists());
    }
}

#[test]
fn remint_all_in_place_never_writes_through_a_symlink_or_hard_link() {
    let env = Env::new();
    env.up("p");
    env.add_bulk_tokens("p", 40); // more than the in-place threshold
    let out_dir = outside(&env);
    fs::write(out_dir.join("linked"), "hard\n").unwrap();
    fs::remove_file(env.file("p", "sa/bulk-00001.jwt")).unwrap();
    symlink(out_dir.join("victim"), env.file("p", "sa/bulk-00001.jwt")).unwrap();
    fs::remove_file(env.file("p", "sa/bulk-00002.jwt")).unwrap();
    fs::hard_link(out_dir.join("linked"), env.file("p", "sa/bulk-00002.jwt")).unwrap();
    let out = env.run(&["remint-all", "p"]);
    assert_clean_stderr(&out.stderr);
    assert_eq!(fs::read_to_string(out_dir.join("victim")).unwrap(), "precious\n");
    assert_eq!(mode(&out_dir.join("victim")), 0o644);
    assert_eq!(fs::read_to_string(out_dir.join("linked")).unwrap(), "hard\n");
    if out.code == 0 {
        for name in ["bulk-00001", "bulk-00002"] {
            let path = env.file("p", &format!("sa/{name}.jwt"));
            assert!(fs::symlink_metadata(&path).unwrap().file_type().is_file());
            assert_eq!(read_text(&path).trim(), env.jwt("p", name));
        }
    }
}

#[test]
fn a_dangling_lock_symlink_is_refused_and_its_target_never_created() {
    let env = Env::new();
    env.up("p");
    let out_dir = outside(&env);
    fs::remove_file(env.file("p", ".lock")).unwrap();
    symlink(out_dir.join("created"), env.file("p", ".lock")).unwrap();
    for args in [&["sa-tokens", "p"][..], &["sa-token", "p", "--name", "ci"][..]] {
        assert_refused_unchanged(&env, args, 1, &[".lock", "symbolic link"]);
    }
    assert!(!out_dir.join("created").exists());
    // `up --force` repairs it without creating the target either.
    env.ok(&["up", "--instance", "p", "--force"]);
    assert!(!out_dir.join("created").exists());
    assert!(fs::symlink_metadata(env.file("p", ".lock")).unwrap().is_file());
    // A profile folder that is a link is refused, and `up --force` replaces the link itself.
    fs::rename(env.profile_dir("p"), out_dir.join("p")).unwrap();
    symlink(out_dir.join("p"), env.profile_dir("p")).unwrap();
    let before = snapshot(&out_dir);
    assert_refused_unchanged(&env, &["sa-tokens", "p"], 1, &["symbolic link"]);
    env.ok(&["up", "--instance", "p", "--force"]);
    assert!(fs::symlink_metadata(env.profile_dir("p")).unwrap().is_dir());
    assert_same_tree(&before, &snapshot(&out_dir), "up --force over a linked profile folder");
}

#[test]
fn client_never_sends_a_token_read_through_a_symlink() {
    let env = Env::new();
    env.up("p");
    env.ok(&["sa-token", "p", "--name", "ci"]);
    let jwt = env.jwt("p", "ci");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    env.edit_profile("p", |doc| doc["server_url"] = Value::from(format!("http://127.0.0.1:{port}/mcp")));
    let out_dir = outside(&env);
    write_secret(&out_dir.join("stolen.jwt"), jwt.as_bytes());
    fs::remove_file(env.file("p", "sa/ci.jwt")).unwrap();
    symlink(out_dir.join("stolen.jwt"), env.file("p", "sa/ci.jwt")).unwrap();
    let out = env.run(&["client", "p", "--sa-token", "ci", "--timeout", "2"]);
    assert_refused(&out, 1, &["sa/ci.jwt", "symbolic link"]);
    assert!(listener.accept().is_err(), "the client connected to the server");
    // client.env as a link is refused too (the default token source).
    fs::remove_file(env.file("p", "client/client.env")).unwrap();
    fs::write(out_dir.join("env"), format!("SERVICE_ACCOUNT_JWT={jwt}\n")).unwrap();
    symlink(out_dir.join("env"), env.file("p", "client/client.env")).unwrap();
    let out = env.run(&["client", "p", "--timeout", "2"]);
    assert_refused(&out, 1, &["client.env", "symbolic link"]);
    assert!(listener.accept().is_err(), "the client connected to the server");
}

#[test]
fn folders_and_secrets_others_can_write_are_refused_with_a_hint() {
    let env = Env::new();
    env.up("p");
    let dir = env.profile_dir("p");
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
    let out = assert_refused_unchanged(&env, &["sa-tokens", "p"], 1, &["writable by other users", "chmod go-w"]);
    assert!(out.stderr.contains("hint: "), "{}", out.stderr);
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    env.ok(&["sa-tokens", "p"]);
    fs::set_permissions(env.file("p", "sa/token.jwt"), fs::Permissions::from_mode(0o666)).unwrap();
    assert_refused_unchanged(&env, &["sa-verify", "p"], 1, &["sa/token.jwt", "writable by other users"]);
    fs::set_permissions(env.file("p", "sa/token.jwt"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::set_permissions(env.file("p", "sa"), fs::Permissions::from_mode(0o770)).unwrap();
    assert_refused_unchanged(&env, &["sa-token", "p", "--name", "ci"], 1, &["sa", "writable by other users"]);
    fs::set_permissions(env.file("p", "sa"), fs::Permissions::from_mode(0o700)).unwrap();
    fs::set_permissions(env.file("p", "profile.json"), fs::Permissions::from_mode(0o646)).unwrap();
    assert_refused_unchanged(&env, &["sa-tokens", "p"], 1, &["profile.json", "writable by other users"]);
}

#[test]
fn files_another_user_owns_are_refused() {
    // Only root can give a file away; elsewhere the check is covered by the modes test.
    if !fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0) {
        return;
    }
    let env = Env::new();
    env.up("p");
    std::os::unix::fs::chown(env.file("p", "sa/token.jwt"), Some(65534), None).unwrap();
    assert_refused_unchanged(&env, &["sa-verify", "p"], 1, &["sa/token.jwt", "owned by another user", "hint"]);
    std::os::unix::fs::chown(env.profile_dir("p"), Some(65534), None).unwrap();
    assert_refused_unchanged(&env, &["sa-tokens", "p"], 1, &["owned by another user"]);
}

#[test]
fn a_killed_up_leaves_no_private_key_behind() {
    let env = Env::new();
    env.up("p");
    // What a `kill -9` during `up` leaves: a staging folder with a key, its lock not held.
    let stale = env.root().join(".up-q-0123456789abcdef");
    fs::create_dir_all(stale.join("sa")).unwrap();
    write_secret(&stale.join("sa/private.pem"), b"-----BEGIN PRIVATE KEY-----\n");
    write_secret(&stale.join(".lock"), b"");
    env.ok(&["list"]);
    assert!(!stale.exists(), "list left the stale staging folder");
    fs::create_dir_all(stale.join("sa")).unwrap();
    write_secret(&stale.join("sa/private.pem"), b"-----BEGIN PRIVATE KEY-----\n");
    write_secret(&stale.join(".lock"), b"");
    env.up("r");
    assert!(!stale.exists(), "up left the stale staging folder");
    // A link named like a staging folder is never followed.
    let out_dir = outside(&env);
    symlink(&out_dir, env.root().join(".up-z-0123456789abcdef")).unwrap();
    env.ok(&["list"]);
    assert_eq!(fs::read_to_string(out_dir.join("victim")).unwrap(), "precious\n");
    let leftovers: Vec<_> =
        fs::read_dir(env.root()).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().starts_with(".up-q")).collect();
    assert!(leftovers.is_empty());
}

/// `sa-verify --file` of a leaked copy: exit code.
fn verify_file(env: &Env, jwt: &str) -> i32 {
    let file = env.dir.path().join("leaked.jwt");
    fs::write(&file, jwt).unwrap();
    env.run(&["sa-verify", "p", "--file", file.to_str().unwrap()]).code
}

#[test]
fn revoking_or_replacing_a_token_refuses_its_pre_rotation_copy() {
    for replace in [false, true] {
        let env = Env::new();
        env.up("p");
        env.ok(&["sa-token", "p", "--name", "ci", "--scopes", "orders.read"]);
        let leaked = env.jwt("p", "ci");
        env.ok(&["remint-all", "p", "--grace-days", "7"]);
        env.ok(&["remint-all", "p", "--grace-days", "7"]);
        assert_eq!(verify_file(&env, &leaked), 0, "the old key is still in grace");
        if replace {
            env.ok(&["sa-token", "p", "--name", "ci"]);
        } else {
            env.ok(&["sa-revoke", "p", "--name", "ci"]);
        }
        assert_eq!(verify_file(&env, &leaked), 1, "replace={replace}: the pre-rotation copy still verifies");
        let jti = jwt_claims(&leaked)["jti"].as_str().unwrap().to_owned();
        assert!(env.profile_json("p")["revoked"].as_array().unwrap().iter().any(|r| r["jti"] == jti.as_str()));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_refuses_a_revoked_tokens_pre_rotation_copy() {
    let profile = Profile::sample();
    let leaked = profile.mint("ci", &["orders.read"]);
    profile.run_ok(&["remint-all", "p", "--grace-days", "7"]);
    let server = profile.serve(&[]);
    assert_eq!(server.auth_status(&Auth::sa(&leaked)).await, 200, "the old key is in grace");
    profile.run_ok(&["sa-revoke", "p", "--name", "ci"]);
    server.wait_for_status(&Auth::sa(&leaked), 401, "pre-rotation copy after sa-revoke").await;
}

#[test]
fn list_redacts_downstream_credentials_and_escapes_what_it_echoes() {
    let env = Env::new();
    env.ok(&["up", "--instance", "p", "--downstream", "https://user:hunter2@api.example.com/v1?api_key=s3cret&x=1"]);
    for args in [&["list", "--wide"][..], &["list", "--json"][..]] {
        let out = env.ok(args);
        assert!(!out.stdout.contains("hunter2") && !out.stdout.contains("s3cret"), "{args:?} leaked:\n{}", out.stdout);
        assert!(out.stdout.contains("api.example.com"), "{}", out.stdout);
    }
    env.edit_profile("p", |doc| doc["issuer"] = Value::from("evil\u{202e}\u{1b}[31m"));
    let out = env.run(&["sa-tokens", "p"]);
    assert_refused(&out, 1, &["issuer"]);
    assert!(!out.stderr.contains('\u{202e}') && !out.stderr.contains('\u{1b}'), "{:?}", out.stderr);
    env.edit_profile("p", |doc| {
        doc["issuer"] = Value::from("oemcp-local");
        doc["spec"] = Value::from("../../etc/passwd\u{202e}");
    });
    let out = env.run(&["sa-tokens", "p"]);
    assert_refused(&out, 1, &["spec"]);
    assert!(!out.stderr.contains('\u{202e}'), "{:?}", out.stderr);
}

#[test]
fn an_immediate_rotation_drops_every_key_still_in_grace() {
    let env = Env::with_profile("p");
    let first = env.jwt("p", "default");
    env.ok(&["remint-all", "p", "--grace-days", "1"]);
    let out = env.run(&["sa-verify", "p", "--token", &first]);
    assert_eq!(out.code, 0, "the first key is in its grace period: {}", out.stderr);
    // The emergency rotation: nothing signed by an earlier key is accepted any more.
    env.ok(&["remint-all", "p"]);
    let out = env.run(&["sa-verify", "p", "--token", &first]);
    assert_eq!(out.code, 1, "a key retired with grace survived an immediate rotation: {}", out.stderr);
    assert!(env.profile_json("p")["retired_keys"].as_array().is_none_or(|k| k.is_empty()));
}
