//! The one way tests run the real binary: [`Cmd`] (a command line with an environment that does
//! not leak from the test runner), [`Out`] (what a finished run left: exit code, stdout, stderr),
//! and [`Env`] (a temporary `--root` with profiles in it, plus the commands every test repeats).
//! The assertions every refusal test shares live here too: one `error:` line, at most one
//! `hint:`, no panic, and a byte-identical folder afterwards.

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::serve::Server;
use super::tree::{assert_same_tree, read_text, snapshot, write_secret};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_mcpgen");

/// The longest any test waits for a child to start or a log line to appear (a slow, busy
/// 2-core CI machine running every test binary at once).
pub const WAIT: Duration = Duration::from_secs(60);

/// What one finished run left behind.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// stdout parsed as JSON (JSON output is parsed, never string-compared).
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }

    /// Panics with the whole output unless the exit code is `code`.
    #[track_caller]
    pub fn expect(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "expected exit code {code}\n--- stdout:\n{}\n--- stderr:\n{}", self.stdout, self.stderr);
        self
    }

    /// stderr as the one JSON object `--json-errors` prints.
    #[track_caller]
    pub fn error_json(&self) -> Value {
        let lines: Vec<&str> = self.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "expected one line of JSON on stderr, got:\n{}", self.stderr);
        serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("stderr is not JSON ({e}):\n{}", self.stderr))
    }
}

/// A command line with a clean environment: `RUST_BACKTRACE=1` (to prove no backtrace ever
/// shows), no `MCPGEN_ROOT`, token, cache or log variables from the runner, and loopback never
/// sent through a proxy the runner may have configured.
pub struct Cmd {
    command: Command,
    stdin: Option<Vec<u8>>,
}

impl Cmd {
    /// The binary under test, run in `cwd`.
    pub fn new(cwd: &Path) -> Cmd {
        Cmd::program(BIN, cwd)
    }

    /// Any program with the same environment as the binary gets (a shell around it, say).
    pub fn program(program: impl AsRef<OsStr>, cwd: &Path) -> Cmd {
        let mut command = Command::new(program);
        for var in [
            "MCPGEN_ROOT",
            "SERVICE_ACCOUNT_JWT",
            "MCPGEN_TOKEN_CACHE",
            "RUST_LOG",
            "HTTP_PROXY",
            "http_proxy",
            "HTTPS_PROXY",
            "https_proxy",
            "ALL_PROXY",
            "all_proxy",
        ] {
            command.env_remove(var);
        }
        command.env("RUST_BACKTRACE", "1").env("NO_PROXY", "*").env("no_proxy", "*").current_dir(cwd);
        Cmd { command, stdin: None }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Cmd {
        self.command.arg(arg);
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command.args(args);
        self
    }

    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Cmd {
        self.command.env(key, value);
        self
    }

    /// Feed `input` on stdin (otherwise stdin is `/dev/null`).
    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Cmd {
        self.stdin = Some(input.into());
        self
    }

    /// Start it with stdout and stderr piped (stdin must not have been set).
    pub fn spawn(mut self) -> Child {
        assert!(self.stdin.is_none(), "Cmd::spawn does not feed stdin; use run");
        self.command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("cannot start the command")
    }

    /// Start it with stdin, stdout and stderr piped: a process the test talks to.
    pub fn spawn_piped(mut self) -> Child {
        assert!(self.stdin.is_none(), "Cmd::spawn_piped: write to the child's stdin instead");
        self.command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("cannot start the command")
    }

    /// Run it to the end.
    pub fn run(mut self) -> Out {
        self.command.stdout(Stdio::piped()).stderr(Stdio::piped());
        self.command.stdin(if self.stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        let mut child = self.command.spawn().expect("cannot start the command");
        if let Some(input) = self.stdin.take() {
            let mut pipe = child.stdin.take().expect("stdin pipe");
            pipe.write_all(&input).expect("cannot write stdin");
        }
        finish(child)
    }
}

/// Wait for a child and collect its output; a death by signal is a test failure.
#[track_caller]
pub fn finish(child: Child) -> Out {
    let output = child.wait_with_output().expect("wait for the child");
    let code = output.status.code().unwrap_or_else(|| panic!("the child died from a signal: {:?}", output.status));
    Out { code, stdout: String::from_utf8_lossy(&output.stdout).into_owned(), stderr: String::from_utf8_lossy(&output.stderr).into_owned() }
}

/// A temporary folder holding the profile root `generated/` and whatever a test puts beside it
/// (specs, argument files). Removed with the test.
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Default for Env {
    fn default() -> Self {
        Self::new()
    }
}

impl Env {
    pub fn new() -> Env {
        Env { dir: tempfile::Builder::new().prefix("mcpgen-test-").tempdir().expect("tempdir") }
    }

    /// A root holding profile `name` made by `up` (the built-in sample: default token with
    /// scopes orders.read products.read, client id `svc-<name>`).
    pub fn with_profile(name: &str) -> Env {
        let env = Env::new();
        env.up(name);
        env
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

    /// The binary in the temporary folder, without `--root`.
    pub fn command(&self) -> Cmd {
        Cmd::new(self.dir.path())
    }

    /// `mcpgen --root <root> ARGS…`, not yet run.
    pub fn cmd<S: AsRef<OsStr>>(&self, args: &[S]) -> Cmd {
        self.command().arg("--root").arg(self.root()).args(args)
    }

    /// `mcpgen --root <root> client …` (the caller adds the profile, if any).
    pub fn client(&self) -> Cmd {
        self.cmd(&["client"])
    }

    /// Run `mcpgen --root <root> ARGS…`.
    pub fn run<S: AsRef<OsStr>>(&self, args: &[S]) -> Out {
        self.cmd(args).run()
    }

    /// Run with `stdin` fed to the process.
    pub fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Out {
        self.cmd(args).stdin(stdin).run()
    }

    /// Run and insist on exit 0 with nothing that looks like an error.
    #[track_caller]
    pub fn ok<S: AsRef<OsStr> + std::fmt::Debug>(&self, args: &[S]) -> Out {
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

    /// Create or replace token `name` with `scopes` (none: the stored or empty scopes); its JWT,
    /// as `sa-token --print` prints it.
    #[track_caller]
    pub fn mint(&self, profile: &str, name: &str, scopes: &[&str]) -> String {
        let mut args = vec!["sa-token", profile, "--name", name, "--print"];
        if !scopes.is_empty() {
            args.push("--scopes");
            args.extend_from_slice(scopes);
        }
        let jwt = self.ok(&args).stdout.trim().to_owned();
        assert_eq!(jwt.split('.').count(), 3, "sa-token --print did not print a JWT: {jwt:?}");
        jwt
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
        std::fs::write(self.file(profile, relative), bytes).expect("write file");
    }

    /// Replace a file in the profile atomically (temporary file and rename, as an editor or
    /// mcpgen itself would), so a running server never reads half a file.
    pub fn replace(&self, profile: &str, relative: &str, bytes: &[u8]) {
        let path = self.file(profile, relative);
        let tmp = path.with_file_name(format!(".{}.test-tmp", path.file_name().unwrap().to_string_lossy()));
        std::fs::write(&tmp, bytes).expect("write temporary file");
        std::fs::rename(&tmp, &path).expect("rename into place");
    }

    /// Add `count` tokens named `bulk-00000`… by hand: entries cloned from `default` with distinct
    /// names, client ids and jtis, each with a copy of the default token's file. `remint-all`
    /// re-mints from metadata, so this is a valid starting state, and much faster than `count`
    /// runs of `sa-token`.
    pub fn add_bulk_tokens(&self, profile: &str, count: usize) {
        let jwt = std::fs::read(self.file(profile, "sa/token.jwt")).expect("read default token");
        let doc = self.profile_json(profile);
        let template = doc["sa_tokens"].as_array().unwrap().iter().find(|t| t["name"] == "default").expect("default token").clone();
        let mut entries = Vec::with_capacity(count);
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
        self.edit_profile(profile, |doc| doc["sa_tokens"].as_array_mut().unwrap().extend(entries));
    }

    /// `mcpgen serve PROFILE --bind 127.0.0.1 --port 0 EXTRA…`, ready once it printed its URL.
    pub fn serve(&self, profile: &str, extra: &[&str]) -> Server {
        Server::start(self.cmd(&["serve", profile, "--bind", "127.0.0.1", "--port", "0"]).args(extra))
    }
}

/// No panic message, no backtrace, whatever the exit code.
#[track_caller]
pub fn assert_clean_stderr(stderr: &str) {
    let lower = stderr.to_lowercase();
    for bad in ["panicked", "backtrace", "internal error", "stack backtrace", "rust_backtrace"] {
        assert!(!lower.contains(bad), "stderr contains {bad:?}:\n{stderr}");
    }
}

/// A refused command: exit `code`, nothing on stdout, stderr exactly one `error:` line plus at
/// most one `hint:` line, mentioning every string in `mentions`, and no panic or backtrace.
#[track_caller]
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
#[track_caller]
pub fn assert_refused_unchanged(env: &Env, args: &[&str], code: i32, mentions: &[&str]) -> Out {
    let before = snapshot(env.dir.path());
    let out = env.run(args);
    assert_refused(&out, code, mentions);
    assert_same_tree(&before, &snapshot(env.dir.path()), &format!("after refused `mcpgen {}`", args.join(" ")));
    out
}
