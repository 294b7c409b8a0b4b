//! Many processes on one profile, and processes killed mid-change: the profile lock must lose
//! nothing, and the journal must leave every token signed by one and the same key whenever a
//! `remint-all` is killed — before its commit point, between the commit and the end of the
//! apply (the next command replays the journal), or after.

mod support;

use std::collections::BTreeSet;
use std::fs;
use std::mem::MaybeUninit;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

#[test]
fn fifty_concurrent_sa_token_processes_lose_nothing() {
    let env = Env::new();
    env.up("p");
    let names: Vec<String> = (0..50).map(|i| format!("worker-{i:02}")).collect();
    let mut writers = Vec::new();
    let mut readers = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let days = (i + 1).to_string();
        let scope = format!("scope.{i}");
        writers.push(env.cmd(&["sa-token", "p", "--name", name, "--days", &days, "--scopes", &scope]).spawn());
        if i % 5 == 0 {
            readers.push(env.cmd(&["sa-tokens", "p", "--json"]).spawn());
        }
    }
    for (name, child) in names.iter().zip(writers) {
        let out = finish(child);
        assert_eq!(out.code, 0, "sa-token {name}: {}", out.stderr);
        assert_clean_stderr(&out.stderr);
    }
    // Readers never see a half-written profile.
    for child in readers {
        let out = finish(child);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let tokens = out.json()["sa_tokens"].as_array().unwrap().len();
        assert!((1..=51).contains(&tokens), "{tokens}");
    }

    let tokens = env.tokens("p");
    let listed: BTreeSet<String> = tokens.iter().map(|t| t["name"].as_str().unwrap().to_owned()).collect();
    let mut want: BTreeSet<String> = names.iter().cloned().collect();
    want.insert("default".into());
    assert_eq!(listed, want);
    assert_eq!(tokens.len(), 51, "no duplicates");

    let key = public_key(&env, "p");
    for (i, name) in names.iter().enumerate() {
        let entry = tokens.iter().find(|t| t["name"] == name.as_str()).unwrap();
        assert_eq!(entry["days"], (i + 1) as u64);
        assert_eq!(entry["scopes"], serde_json::json!([format!("scope.{i}")]));
    }
    // Every file exists, matches its entry and verifies, in-process and with sa-verify.
    let verifiers: Vec<_> = tokens
        .iter()
        .map(|t| {
            let name = t["name"].as_str().unwrap();
            let path = env.file("p", t["filename"].as_str().unwrap());
            let jwt = read_text(&path).trim().to_owned();
            assert_eq!(jwt_claims(&jwt)["jti"], t["jti"], "{name}");
            verify_with(&jwt, key, "oemcp-local", "http://127.0.0.1:8000/mcp").unwrap_or_else(|e| panic!("{name}: {e}"));
            (name.to_owned(), env.cmd(&["sa-verify", "p", "--name", name]).spawn())
        })
        .collect();
    for (name, child) in verifiers {
        let out = finish(child);
        assert_eq!(out.code, 0, "sa-verify {name}: {}", out.stderr);
        assert_eq!(out.json()["valid"], true);
    }
    let jtis: BTreeSet<&str> = tokens.iter().map(|t| t["jti"].as_str().unwrap()).collect();
    assert_eq!(jtis.len(), 51, "every jti is distinct");
    assert!(!env.file("p", ".journal").exists());
}

/// Temporary files (`.<name>.<hex>.tmp`) anywhere under `dir`.
fn temp_files(dir: &Path) -> Vec<String> {
    snapshot(dir).keys().map(|p| p.display().to_string()).filter(|p| p.ends_with(".tmp")).collect()
}

/// Check a settled profile: one key everywhere. Returns its key id.
fn assert_one_key_everywhere(env: &Env, expected_tokens: usize) -> String {
    // The first command after a kill (a reader here) replays or discards the interrupted change.
    let tokens = env.tokens("p");
    assert_eq!(tokens.len(), expected_tokens);
    assert!(!env.file("p", ".journal").exists(), ".journal left behind");
    let profile = env.profile_json("p");
    let kid = profile["key_id"].as_str().unwrap().to_owned();
    // Private key, public key, server config and every token agree.
    let private = private_key(env, "p");
    assert_eq!(private.public().thumbprint(), kid, "sa/private.pem is not the key of key_id");
    let public = public_key(env, "p");
    assert_eq!(public.thumbprint(), kid, "sa/public.pem is not the key of key_id");
    let config: Value = serde_json::from_str(&read_text(&env.file("p", "mcp_server_config.json"))).unwrap();
    assert_eq!(
        config["security"]["authentication"]["service_account"]["public_key"].as_str().unwrap(),
        read_text(&env.file("p", "sa/public.pem"))
    );
    let mut primary_jwt = None;
    for (i, t) in tokens.iter().enumerate() {
        let jwt = read_text(&env.file("p", t["filename"].as_str().unwrap())).trim().to_owned();
        assert_eq!(jwt_header(&jwt)["kid"].as_str(), Some(kid.as_str()), "token {} is signed by another key", t["name"]);
        assert_eq!(jwt_claims(&jwt)["jti"], t["jti"], "token {} does not match its entry", t["name"]);
        // Full signature checks on a sample (debug-build Ed25519 is slow).
        if i % 97 == 0 || t["primary"] == true {
            verify_with(&jwt, public, "oemcp-local", "http://127.0.0.1:8000/mcp").unwrap_or_else(|e| panic!("{}: {e}", t["name"]));
        }
        if t["primary"] == true {
            primary_jwt = Some(jwt);
        }
    }
    let client_env = read_text(&env.file("p", "client/client.env"));
    assert_eq!(client_env.trim(), format!("SERVICE_ACCOUNT_JWT={}", primary_jwt.expect("a primary")));
    kid
}

/// Where a SIGKILL of `remint-all` is aimed.
#[derive(Debug, Clone, Copy)]
enum Kill {
    /// This long after the start.
    After(Duration),
    /// The moment `.journal` is renamed into place (the commit point), before the files are
    /// applied: watched with inotify, so the kill follows the rename by microseconds, not by
    /// the luck of a timer on a busy machine.
    AtCommit,
}

/// Start `remint-all p`, SIGKILL it as `kill` says and wait for it. Whether it had finished, and
/// whether its journal is still there — seen before any other command can replay it.
fn remint_and_kill(env: &Env, kill: Kill) -> (bool, bool) {
    let mut child = match kill {
        Kill::After(delay) => {
            let child = env.cmd(&["remint-all", "p"]).spawn();
            std::thread::sleep(delay);
            child
        }
        Kill::AtCommit => {
            let (committed, child) = spawn_watching_the_journal(env);
            let started = Instant::now();
            let outcome = committed.recv_timeout(WAIT);
            assert!(matches!(outcome, Ok(Watched::Committed | Watched::Ended)), "no commit and no exit after {:?}", started.elapsed());
            child
        }
    };
    let _ = child.kill(); // SIGKILL; an error only means it already exited
    let status = child.wait().unwrap();
    (status.success(), env.file("p", ".journal").exists())
}

/// What the inotify watch on the profile folder saw first.
enum Watched {
    /// `.journal` was renamed into place.
    Committed,
    /// `.lock` was closed: the process ended without committing.
    Ended,
}

/// `remint-all p`, started once an inotify watch on the profile folder is in place; the
/// receiver hears of the commit (or of the process ending without one).
fn spawn_watching_the_journal(env: &Env) -> (mpsc::Receiver<Watched>, std::process::Child) {
    use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};
    let watch = inotify::init(CreateFlags::CLOEXEC).expect("inotify_init1");
    inotify::add_watch(&watch, env.profile_dir("p"), WatchFlags::MOVED_TO | WatchFlags::CLOSE_WRITE).expect("inotify_add_watch");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [MaybeUninit::uninit(); 4096];
        let mut events = inotify::Reader::new(&watch, &mut buf);
        while let Ok(event) = events.next() {
            let name = event.file_name().map(|n| n.to_bytes());
            let seen = match name {
                Some(b".journal") if event.events().contains(ReadFlags::MOVED_TO) => Watched::Committed,
                // The lock file is open for writing from start to exit in mcpgen only.
                Some(b".lock") if event.events().contains(ReadFlags::CLOSE_WRITE) => Watched::Ended,
                _ => continue,
            };
            let _ = tx.send(seen);
            return;
        }
    });
    (rx, env.cmd(&["remint-all", "p"]).spawn())
}

#[test]
fn sigkill_during_remint_all_leaves_all_old_or_all_new() {
    // Enough tokens that a run takes a while and its apply phase (a thousand token files and a
    // flush) is a window a kill can land in.
    const BULK: usize = 1000;
    let env = Env::new();
    env.up("p");
    env.ok(&["sa-token", "p", "--name", "ci-bot", "--scopes", "orders.read", "--primary"]);
    env.add_bulk_tokens("p", BULK);
    let total = BULK + 2;

    // Undisturbed runs make every bulk token real and measure how long a run takes (the faster
    // of two, as other tests may be loading the machine).
    let full = (0..2)
        .map(|_| {
            let started = Instant::now();
            env.ok(&["remint-all", "p"]);
            started.elapsed()
        })
        .min()
        .unwrap();
    let mut kid = assert_one_key_everywhere(&env, total);

    // Minting is roughly the first third of a run, the commit point follows, then the files are
    // applied: the delays spread over a run and reach past its end. The kills at the commit
    // point itself land between commit and apply however fast or loaded the machine is.
    let fractions = [0.0, 0.1, 0.25, 0.35, 0.45, 0.6, 0.8, 1.2];
    let kills: Vec<Kill> = fractions.iter().map(|f| Kill::After(full.mul_f64(*f))).chain(std::iter::repeat_n(Kill::AtCommit, 3)).collect();
    let (mut before_commit, mut between, mut after_apply, mut finished) = (0, 0, 0, 0);
    for kill in &kills {
        let (succeeded, journal_left) = remint_and_kill(&env, *kill);
        if succeeded {
            finished += 1;
        }

        let new_kid = assert_one_key_everywhere(&env, total);
        if journal_left {
            between += 1;
            assert!(!succeeded, "{kill:?}: the run finished yet left its journal");
            assert_ne!(new_kid, kid, "{kill:?}: a change killed after its commit point must be finished by the next command");
        } else if new_kid == kid {
            before_commit += 1;
        } else {
            after_apply += 1;
        }
        kid = new_kid;
        // Every command still works, and a writer clears leftover temporary files.
        env.ok(&["sa-token", "p", "--name", "ci-bot", "--days", "30", "--force"]);
        env.ok(&["sa-verify", "p", "--name", "ci-bot"]);
        env.ok(&["sa-verify", "p", "--name", "bulk-00999"]);
        assert_eq!(temp_files(&env.profile_dir("p")), Vec::<String>::new(), "temporary files left behind");
    }
    eprintln!(
        "remint-all of {total} tokens took {full:?}; {} kills: {before_commit} before the commit (old key), {between} between \
         commit and apply (replayed: new key), {after_apply} after the apply (new key; {finished} had finished)",
        kills.len()
    );
    assert!(between >= 1, "no kill landed between commit and apply, so the journal replay went untested");
    // A final rotation from whatever state the kills left.
    env.ok(&["remint-all", "p"]);
    assert_ne!(assert_one_key_everywhere(&env, total), kid);
    assert!(fs::read_dir(env.root()).unwrap().flatten().all(|e| !e.file_name().to_string_lossy().starts_with(".up-")));
}
