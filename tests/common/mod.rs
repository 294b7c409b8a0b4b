//! Shared helpers for the real-binary tests: run `mcpgen` on a temporary root, snapshot a profile
//! tree to prove a refused command changed nothing, check the one-line error format, read and
//! hand-edit `profile.json`, decode JWTs, and verify token files in-process.
//!
//! Every test binary compiles this module on its own and uses a different part of it, hence the
//! `dead_code` allowance.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use serde_json::Value;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_mcpgen");

/// What one run of the binary left behind.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// Parse stdout as JSON (never string-compare JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

/// A command line for the binary: `RUST_BACKTRACE=1` (to prove no backtrace ever shows),
/// `MCPGEN_ROOT` and token variables removed, working directory `cwd`.
pub fn command(cwd: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(cwd)
        .env("RUST_BACKTRACE", "1")
        .env_remove("MCPGEN_ROOT")
        .env_remove("SERVICE_ACCOUNT_JWT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Wait for a child and collect its output.
pub fn finish(child: Child) -> Out {
    let output = child.wait_with_output().expect("wait for mcpgen");
    let code = output.status.code().unwrap_or_else(|| panic!("mcpgen died from a signal: {:?}", output.status));
    Out { code, stdout: String::from_utf8_lossy(&output.stdout).into_owned(), stderr: String::from_utf8_lossy(&output.stderr).into_owned() }
}

/// A temporary root holding profiles. Dropped with the test.
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Default for Env {
    fn default() -> Self {
        Self::new()
    }
}

impl Env {
    pub fn new() -> Self {
        Env { dir: tempfile::Builder::new().prefix("mcpgen-test-").tempdir().expect("tempdir") }
    }

    /// The folder passed as `--root`.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("generated")
    }

    /// `<root>/<profile>`.
    pub fn profile_dir(&self, profile: &str) -> PathBuf {
        self.root().join(profile)
    }

    /// `<root>/<profile>/<relative>`.
    pub fn file(&self, profile: &str, relative: &str) -> PathBuf {
        self.profile_dir(profile).join(relative)
    }

    /// A command line with `--root` set, not yet started.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = command(self.dir.path());
        cmd.arg("--root").arg(self.root()).args(args);
        cmd
    }

    /// Run `mcpgen --root <root> ARGS`.
    pub fn run(&self, args: &[&str]) -> Out {
        finish(self.cmd(args).spawn().expect("spawn mcpgen"))
    }

    /// Run with `stdin` fed to the process.
    pub fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Out {
        let mut child = self.cmd(args).stdin(Stdio::piped()).spawn().expect("spawn mcpgen");
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        finish(child)
    }

    /// Run and insist on exit 0 with nothing that looks like an error.
    pub fn ok(&self, args: &[&str]) -> Out {
        let out = self.run(args);
        assert_eq!(out.code, 0, "mcpgen {args:?} failed:\nstdout: {}\nstderr: {}", out.stdout, out.stderr);
        assert_clean_stderr(&out.stderr);
        assert!(!out.stderr.contains("error:"), "mcpgen {args:?} succeeded but printed an error:\n{}", out.stderr);
        out
    }

    /// `up --instance NAME`, insisting on success.
    pub fn up(&self, profile: &str) {
        self.ok(&["up", "--instance", profile]);
    }

    /// `sa-tokens PROFILE --json` parsed, as the array of entries.
    pub fn tokens(&self, profile: &str) -> Vec<Value> {
        let out = self.ok(&["sa-tokens", profile, "--json"]);
        out.json()["sa_tokens"].as_array().expect("sa_tokens is an array").clone()
    }

    /// One entry of `sa-tokens --json` by name.
    pub fn token_entry(&self, profile: &str, name: &str) -> Value {
        self.tokens(profile).into_iter().find(|t| t["name"] == name).unwrap_or_else(|| panic!("no token {name} in {profile}"))
    }

    /// The JWT stored for a token (read from the file named by its entry).
    pub fn jwt(&self, profile: &str, name: &str) -> String {
        let entry = self.token_entry(profile, name);
        read_text(&self.file(profile, entry["filename"].as_str().unwrap())).trim().to_owned()
    }

    /// `profile.json` parsed.
    pub fn profile_json(&self, profile: &str) -> Value {
        serde_json::from_str(&read_text(&self.file(profile, "profile.json"))).expect("profile.json is JSON")
    }

    /// Hand-edit `profile.json` (the file keeps its mode).
    pub fn edit_profile(&self, profile: &str, edit: impl FnOnce(&mut Value)) {
        let mut doc = self.profile_json(profile);
        edit(&mut doc);
        self.write_raw(profile, "profile.json", serde_json::to_string_pretty(&doc).unwrap().as_bytes());
    }

    /// Overwrite a file in the profile with raw bytes, keeping an existing file's mode.
    pub fn write_raw(&self, profile: &str, relative: &str, bytes: &[u8]) {
        fs::write(self.file(profile, relative), bytes).expect("write file");
    }

    /// Add `count` tokens named `bulk-00000`… by hand: entries cloned from `default` with distinct
    /// names, client ids and jtis, each with a copy of the default token's file. `remint-all`
    /// re-mints from metadata, so this is a valid starting state, and much faster than `count`
    /// runs of `sa-token`.
    pub fn add_bulk_tokens(&self, profile: &str, count: usize) {
        let source = self.file(profile, "sa/token.jwt");
        let jwt = fs::read(&source).expect("read default token");
        let mut entries = Vec::with_capacity(count);
        {
            let doc = self.profile_json(profile);
            let template = doc["sa_tokens"].as_array().unwrap().iter().find(|t| t["name"] == "default").expect("default token").clone();
            for i in 0..count {
                let name = format!("bulk-{i:05}");
                let filename = format!("sa/{name}.jwt");
                let mut entry = template.clone();
                entry["name"] = Value::from(name.clone());
                entry["filename"] = Value::from(filename.clone());
                entry["client_id"] = Value::from(name);
                entry["primary"] = Value::from(false);
                entry["jti"] = Value::from(format!("bulk-jti-{i:05}"));
                write_secret(&self.file(profile, &filename), &jwt);
                entries.push(entry);
            }
        }
        self.edit_profile(profile, |doc| doc["sa_tokens"].as_array_mut().unwrap().extend(entries));
    }
}

/// Create a file with mode 0600 (as mcpgen would) and `bytes`.
pub fn write_secret(path: &Path, bytes: &[u8]) {
    let mut file = fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path).expect("create file");
    file.write_all(bytes).expect("write file");
}

pub fn read_text(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Permission bits of a path.
pub fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap_or_else(|e| panic!("stat {}: {e}", path.display())).permissions().mode() & 0o7777
}

/// One entry of a tree snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Dir { mode: u32 },
    File { mode: u32, bytes: Vec<u8> },
    Symlink { target: PathBuf },
}

/// Every path under `dir` (relative) with its kind, mode and bytes.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Node> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Node>) {
        let mut entries: Vec<_> = fs::read_dir(dir).unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display())).flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let relative = path.strip_prefix(base).unwrap().to_path_buf();
            let meta = fs::symlink_metadata(&path).unwrap();
            let mode = meta.permissions().mode() & 0o7777;
            if meta.file_type().is_symlink() {
                out.insert(relative, Node::Symlink { target: fs::read_link(&path).unwrap() });
            } else if meta.is_dir() {
                out.insert(relative, Node::Dir { mode });
                walk(base, &path, out);
            } else {
                out.insert(relative, Node::File { mode, bytes: fs::read(&path).unwrap() });
            }
        }
    }
    let mut out = BTreeMap::new();
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out
}

/// Assert two snapshots are identical, naming every path that differs.
pub fn assert_same_tree(before: &BTreeMap<PathBuf, Node>, after: &BTreeMap<PathBuf, Node>, what: &str) {
    if before == after {
        return;
    }
    let mut diffs = Vec::new();
    for (path, node) in before {
        match after.get(path) {
            None => diffs.push(format!("removed {}", path.display())),
            Some(other) if other != node => diffs.push(format!("changed {}", path.display())),
            _ => {}
        }
    }
    for path in after.keys().filter(|p| !before.contains_key(*p)) {
        diffs.push(format!("added {}", path.display()));
    }
    panic!("{what}: the tree changed:\n  {}", diffs.join("\n  "));
}

/// No panic message, no backtrace, whatever the exit code.
pub fn assert_clean_stderr(stderr: &str) {
    let lower = stderr.to_lowercase();
    for bad in ["panicked", "backtrace", "internal error", "stack backtrace", "rust_backtrace"] {
        assert!(!lower.contains(bad), "stderr contains {bad:?}:\n{stderr}");
    }
}

/// A refused command: exit `code`, nothing on stdout, stderr exactly one `error:` line plus at
/// most one `hint:` line, mentioning every string in `mentions`, and no panic or backtrace.
pub fn assert_refused(out: &Out, code: i32, mentions: &[&str]) {
    assert_eq!(out.code, code, "exit code\nstdout: {}\nstderr: {}", out.stdout, out.stderr);
    assert_eq!(out.stdout, "", "a refused command printed data on stdout");
    assert_clean_stderr(&out.stderr);
    assert!(out.stderr.ends_with('\n'), "stderr does not end with a newline: {:?}", out.stderr);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert!(
        lines.len() == 1 || lines.len() == 2,
        "stderr must be one error line plus at most one hint line, got {} lines:\n{}",
        lines.len(),
        out.stderr
    );
    assert!(lines[0].starts_with("error: ") && lines[0].len() > "error: ".len(), "first line is not `error: ...`: {:?}", lines[0]);
    if let Some(hint) = lines.get(1) {
        assert!(hint.starts_with("hint: ") && hint.len() > "hint: ".len(), "second line is not `hint: ...`: {hint:?}");
    }
    for mention in mentions {
        assert!(out.stderr.contains(mention), "stderr does not mention {mention:?}:\n{}", out.stderr);
    }
}

/// Run `args` (expected to be refused with `code`) and assert the whole temporary folder (the
/// root and everything beside it) is byte-identical afterwards.
pub fn assert_refused_unchanged(env: &Env, args: &[&str], code: i32, mentions: &[&str]) -> Out {
    let before = snapshot(env.dir.path());
    let out = env.run(args);
    assert_refused(&out, code, mentions);
    assert_same_tree(&before, &snapshot(env.dir.path()), &format!("after refused `mcpgen {}`", args.join(" ")));
    out
}

/// Decode one JWT segment (0 = header, 1 = claims) without any check.
pub fn jwt_part(jwt: &str, index: usize) -> Value {
    let segment = jwt.split('.').nth(index).unwrap_or_else(|| panic!("JWT has no segment {index}: {jwt}"));
    let bytes = B64URL.decode(segment).expect("JWT segment is base64url");
    serde_json::from_slice(&bytes).expect("JWT segment is JSON")
}

pub fn jwt_header(jwt: &str) -> Value {
    jwt_part(jwt, 0)
}

pub fn jwt_claims(jwt: &str) -> Value {
    jwt_part(jwt, 1)
}

/// The profile's current public key from `sa/public.pem`.
pub fn public_key(env: &Env, profile: &str) -> mcpgen::keys::PublicKey {
    mcpgen::keys::PublicKey::from_pem(&read_text(&env.file(profile, "sa/public.pem"))).expect("sa/public.pem parses")
}

/// Verify a JWT's signature (and expiry, audience, issuer) in-process against one public key.
pub fn verify_with(jwt: &str, key: mcpgen::keys::PublicKey, issuer: &str, audience: &str) -> Result<(), mcpgen::token::TokenError> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let expect =
        mcpgen::token::Expect { issuer: Some(issuer), audience: Some(audience), now, leeway: 60, revoked: None, ..Default::default() };
    mcpgen::token::verify(jwt, &[mcpgen::token::TrustedKey::new(key)], &expect).map(|_| ())
}

/// Parse an RFC 3339 timestamp from JSON.
pub fn time(value: &Value) -> chrono::DateTime<chrono::Utc> {
    let text = value.as_str().unwrap_or_else(|| panic!("not a timestamp string: {value}"));
    chrono::DateTime::parse_from_rfc3339(text).unwrap_or_else(|e| panic!("{text:?} is not RFC 3339: {e}")).with_timezone(&chrono::Utc)
}
