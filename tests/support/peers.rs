//! The third-party peers the interop tests run — software nobody here wrote: Python with PyJWT,
//! `cryptography` and the official MCP SDK ([`python`]), Node with panva's `oidc-provider` and
//! `mcp-remote` ([`node_modules`], [`OidcProvider`]), and a real nginx ([`nginx`], [`Nginx`]).
//!
//! Each is provisioned on first use from pins committed under `tests/peers/` (a hash-locked
//! `requirements.txt`, a `package-lock.json`, an exact Debian version) into the cargo target
//! folder, `<target>/peers/`, so a fresh clone needs nothing but `cargo test`. Many test binaries
//! and threads may ask at once: provisioning holds an exclusive `flock` on `<target>/peers/.lock`,
//! and a finished install writes a stamp with the hash of its pinned inputs, so changed pins
//! provision again and unchanged ones cost one lock and one read. When a peer cannot be had the
//! test panics with what failed, the command, the end of its output and how to fix it — a peer is
//! never skipped, since a skipped interop test proves nothing.

use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, mpsc};
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::run::WAIT;
use super::serve::{Log, eventually_blocking};

/// The Debian package nginx is taken from, pinned to one version of the archive.
const NGINX_VERSION: &str = "1.22.1-9+deb12u7";

/// `tests/peers/`: the pinned inputs, committed.
pub fn inputs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers")
}

/// `<target>/peers/`: the installed peers, never committed. The target folder is
/// `CARGO_TARGET_DIR` when the tests were built with it set, else `target/` in the package.
pub fn cache_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = option_env!("CARGO_TARGET_DIR").map_or_else(|| manifest.join("target"), |dir| manifest.join(dir));
    target.join("peers")
}

/// The virtual environment's Python interpreter, with PyJWT, `cryptography` and the official MCP
/// SDK (`mcp`, with httpx, pydantic, starlette, uvicorn, …) installed from
/// `tests/peers/requirements.txt`: every package pinned with `==` and its hashes, no resolver.
pub fn python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            const FIX: &str = "install Python 3 with its venv module (Debian: `apt-get install python3-venv`) and let pip reach PyPI; \
                               to change a pin, see tests/peers/README.md";
            let requirements = inputs_dir().join("requirements.txt");
            let version = step(
                "python",
                "asking python3 for its version",
                Command::new("python3").args(["-c", "import sys; print(sys.version)"]),
                FIX,
            );
            let mut pins = b"venv v1\n".to_vec();
            pins.extend(version.stdout);
            pins.extend(read(&requirements));
            let venv = cache_dir().join("venv");
            let interpreter = venv.join("bin/python");
            provision("python", &venv, &pins, |venv| {
                step("python", "creating the virtual environment", Command::new("python3").arg("-m").arg("venv").arg(venv), FIX);
                step(
                    "python",
                    "installing tests/peers/requirements.txt",
                    Command::new(&interpreter)
                        .args(["-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--require-hashes"])
                        .args(["--no-deps", "--only-binary=:all:", "-r"])
                        .arg(&requirements),
                    FIX,
                );
                step(
                    "python",
                    "importing the installed packages",
                    Command::new(&interpreter)
                        .args(["-c", "import jwt, cryptography, mcp, mcp.client.stdio, mcp.client.streamable_http, mcp.server.fastmcp"]),
                    FIX,
                );
            });
            interpreter
        })
        .clone()
}

/// `node_modules` with `oidc-provider` and `mcp-remote`, installed by `npm ci` from the
/// committed `tests/peers/node/package.json` and `package-lock.json` (exact versions and
/// integrity hashes of the whole tree).
pub fn node_modules() -> PathBuf {
    static NODE_MODULES: OnceLock<PathBuf> = OnceLock::new();
    NODE_MODULES
        .get_or_init(|| {
            const FIX: &str = "install Node.js 20.18 or later with npm (Debian: NodeSource's nodejs package) and let npm reach its registry; \
                               to change a pin, see tests/peers/README.md";
            let inputs = inputs_dir().join("node");
            let version = step("node", "asking node for its version", Command::new("node").arg("--version"), FIX);
            let mut pins = b"node v1\n".to_vec();
            pins.extend(version.stdout);
            for file in ["package.json", "package-lock.json"] {
                pins.extend(read(&inputs.join(file)));
            }
            let dir = cache_dir().join("node");
            provision("node", &dir, &pins, |dir| {
                for file in ["package.json", "package-lock.json"] {
                    fs::copy(inputs.join(file), dir.join(file)).unwrap_or_else(|e| panic!("cannot copy {file} into {}: {e}", dir.display()));
                }
                step(
                    "node",
                    "npm ci",
                    Command::new("npm")
                        .args(["ci", "--no-audit", "--no-fund", "--no-update-notifier"])
                        .current_dir(dir)
                        .env("npm_config_loglevel", "warn"),
                    FIX,
                );
                step(
                    "node",
                    "importing oidc-provider",
                    Command::new("node").args(["--input-type=module", "-e", "await import('oidc-provider')"]).current_dir(dir),
                    FIX,
                );
                let bin = dir.join("node_modules/.bin/mcp-remote");
                assert!(bin.exists(), "npm ci did not install mcp-remote: {} is missing", bin.display());
            });
            dir.join("node_modules")
        })
        .clone()
}

/// A real nginx binary (`usr/sbin/nginx` of Debian's `nginx` package, unpacked with
/// `dpkg-deb -x`; no root needed to run it).
pub fn nginx() -> PathBuf {
    static NGINX: OnceLock<PathBuf> = OnceLock::new();
    NGINX
        .get_or_init(|| {
            const FIX: &str = "this needs a Debian-like system with apt-get and dpkg-deb whose package lists know nginx \
                               (`apt-get update` as root), and the libraries the nginx package depends on \
                               (`apt-get install libpcre2-8-0 libssl3 zlib1g libcrypt1`)";
            let pins = format!("nginx v1\n{NGINX_VERSION}\n{}\n", std::env::consts::ARCH);
            let dir = cache_dir().join("nginx");
            let binary = dir.join("root/usr/sbin/nginx");
            provision("nginx", &dir, pins.as_bytes(), |dir| {
                download_nginx(dir, FIX);
                let deb = fs::read_dir(dir)
                    .expect("read the nginx folder")
                    .flatten()
                    .map(|e| e.path())
                    .find(|p| p.extension().is_some_and(|x| x == "deb"))
                    .expect("apt-get download left no .deb");
                let sha256 = hex(&Sha256::digest(read(&deb)));
                fs::write(dir.join("SHA256SUMS"), format!("{sha256}  {}\n", deb.file_name().unwrap().to_string_lossy()))
                    .expect("write SHA256SUMS");
                step("nginx", "unpacking the package", Command::new("dpkg-deb").arg("-x").arg(&deb).arg(dir.join("root")), FIX);
                step("nginx", "running nginx -v", Command::new(&binary).arg("-v"), FIX);
            });
            binary
        })
        .clone()
}

/// `apt-get download nginx=VERSION` into `dir`. Package lists that do not know the package are
/// refreshed once; a pinned version the archive has since replaced (a security update) gives way
/// to the archive's current one, loudly, since apt still verifies it against the signed index.
fn download_nginx(dir: &Path, fix: &str) {
    let pinned = format!("nginx={NGINX_VERSION}");
    let download = |package: &str| Command::new("apt-get").args(["download", "-q", package]).current_dir(dir).stdin(Stdio::null()).output();
    if download(&pinned).is_ok_and(|o| o.status.success()) {
        return;
    }
    eprintln!("peers: apt-get download {pinned} failed; refreshing the package lists once (apt-get update)");
    let _ = Command::new("apt-get").args(["update", "-qq"]).stdin(Stdio::null()).output();
    if download(&pinned).is_ok_and(|o| o.status.success()) {
        return;
    }
    eprintln!(
        "peers: WARNING: the archive no longer has nginx {NGINX_VERSION}; using its current version instead \
         (update NGINX_VERSION in tests/support/peers.rs)"
    );
    step("nginx", "apt-get download nginx", Command::new("apt-get").args(["download", "-q", "nginx"]).current_dir(dir), fix);
}

/// Run `install` into a fresh `dir` under the lock on `<target>/peers/.lock`, unless the stamp in
/// `dir` already holds the hash of `pins`.
fn provision(peer: &str, dir: &Path, pins: &[u8], install: impl FnOnce(&Path)) {
    let cache = cache_dir();
    fs::create_dir_all(&cache).unwrap_or_else(|e| panic!("cannot create {}: {e}", cache.display()));
    let lock_path = cache.join(".lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", lock_path.display()));
    lock.lock().unwrap_or_else(|e| panic!("cannot lock {}: {e}", lock_path.display()));
    let stamp = dir.join(".stamp");
    let want = hex(&Sha256::digest(pins));
    if fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == want) {
        return;
    }
    eprintln!("peers: provisioning {peer} in {} (first use, or its pins changed)", dir.display());
    let started = Instant::now();
    if dir.exists() {
        fs::remove_dir_all(dir).unwrap_or_else(|e| panic!("cannot remove the stale {}: {e}", dir.display()));
    }
    fs::create_dir_all(dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    install(dir);
    fs::write(&stamp, format!("{want}\n")).unwrap_or_else(|e| panic!("cannot write {}: {e}", stamp.display()));
    eprintln!("peers: {peer} ready after {:.1?}", started.elapsed());
    // The lock goes with `lock`.
}

/// Run one provisioning command; panic with everything a reader needs when it fails.
fn step(peer: &str, what: &str, command: &mut Command, fix: &str) -> Output {
    let shown = format!("{command:?}");
    match command.stdin(Stdio::null()).output() {
        Ok(output) if output.status.success() => output,
        Ok(output) => fail(peer, what, &shown, &output.status.to_string(), &tail(&output), fix),
        Err(e) => fail(peer, what, &shown, &format!("could not be started: {e}"), "", fix),
    }
}

fn fail(peer: &str, what: &str, command: &str, result: &str, output: &str, fix: &str) -> ! {
    panic!(
        "\ncannot provision the test peer `{peer}`: {what} failed\n  command: {command}\n  result:  {result}\n  output (last lines):\n{output}\n  \
         how to fix: {fix}\n  (interop tests never skip a missing peer; the installed peers live in {})\n",
        cache_dir().display()
    )
}

/// The last 30 lines of a command's stderr (or stdout, when stderr is empty), indented.
fn tail(output: &Output) -> String {
    let text = if output.stderr.iter().any(|b| !b.is_ascii_whitespace()) { &output.stderr } else { &output.stdout };
    let text = String::from_utf8_lossy(text);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].iter().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n")
}

#[track_caller]
fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Run a script of `tests/peers/` with the virtual environment's Python; its stdout parsed as
/// JSON. A failure panics with the script's stderr.
#[track_caller]
pub fn run_python(script: &str, args: &[&str]) -> Value {
    run_python_with_env(script, args, &[])
}

/// [`run_python`] with extra environment variables (e.g. `SSL_CERT_FILE` for a test CA).
pub fn run_python_with_env(script: &str, args: &[&str], env: &[(&str, &str)]) -> Value {
    let path = inputs_dir().join(script);
    let output = Command::new(python())
        .envs(env.iter().copied())
        .arg(&path)
        .args(args)
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy")
        .env("NO_PROXY", "*")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", path.display()));
    assert!(
        output.status.success(),
        "{script} failed ({}):\n--- stdout:\n{}\n--- stderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{script} printed no JSON ({e}):\n{}", String::from_utf8_lossy(&output.stdout)))
}

/// A free loopback port: bound, then released for a child to take.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// A running nginx — one process (`master_process off`), everything it writes inside a
/// temporary folder, its log on stderr — killed when dropped.
pub struct Nginx {
    child: Child,
    /// The loopback port it listens on.
    pub port: u16,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    pub log: Arc<Log>,
    _dir: tempfile::TempDir,
}

impl Nginx {
    /// A round-robin reverse proxy on `127.0.0.1:port` to the loopback `upstreams`, ready once it
    /// accepts a connection.
    pub fn round_robin(port: u16, upstreams: &[SocketAddr]) -> Nginx {
        Nginx::try_round_robin(port, upstreams).unwrap_or_else(|log| panic!("nginx did not start:\n{log}"))
    }

    /// [`Nginx::round_robin`] on a free port (another once, should a race take the port first).
    pub fn round_robin_on_free_port(upstreams: &[SocketAddr]) -> Nginx {
        for _ in 0..3 {
            match Nginx::try_round_robin(free_port(), upstreams) {
                Ok(nginx) => return nginx,
                Err(log) if log.contains("Address already in use") => continue,
                Err(log) => panic!("nginx did not start:\n{log}"),
            }
        }
        panic!("nginx found no free port in 3 tries")
    }

    /// The configuration of a round-robin proxy; every path nginx writes is under `dir`.
    pub fn round_robin_config(dir: &Path, port: u16, upstreams: &[SocketAddr]) -> String {
        let servers: String = upstreams.iter().map(|a| format!("        server {a};\n")).collect();
        let d = dir.display();
        format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log stderr warn;\n\
             events {{\n    worker_connections 256;\n}}\n\
             http {{\n    access_log off;\n\
             \x20   client_body_temp_path {d}/client_body;\n    proxy_temp_path {d}/proxy;\n    fastcgi_temp_path {d}/fastcgi;\n\
             \x20   uwsgi_temp_path {d}/uwsgi;\n    scgi_temp_path {d}/scgi;\n\
             \x20   upstream backends {{\n{servers}    }}\n\
             \x20   server {{\n        listen 127.0.0.1:{port};\n        location / {{\n\
             \x20           proxy_pass http://backends;\n            proxy_http_version 1.1;\n\
             \x20           proxy_set_header Connection \"\";\n            proxy_buffering off;\n\
             \x20           proxy_read_timeout 300s;\n        }}\n    }}\n}}\n"
        )
    }

    fn try_round_robin(port: u16, upstreams: &[SocketAddr]) -> Result<Nginx, String> {
        assert!(upstreams.iter().all(|a| a.ip().is_loopback()), "nginx proxies to loopback only: {upstreams:?}");
        let dir = tempfile::Builder::new().prefix("mcpgen-nginx-").tempdir().expect("tempdir");
        let conf = dir.path().join("nginx.conf");
        let config = Nginx::round_robin_config(dir.path(), port, upstreams);
        fs::write(&conf, &config).expect("write nginx.conf");
        let mut child = Command::new(nginx())
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf)
            .args(["-e", "stderr"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start nginx");
        let (log, reader) = Log::collect(child.stderr.take().expect("stderr pipe"));
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut exited = None;
        eventually_blocking("nginx to accept connections", WAIT, || {
            if let Ok(Some(status)) = child.try_wait() {
                exited = Some(status);
                return Ok(());
            }
            TcpStream::connect_timeout(&addr, Duration::from_secs(1)).map(drop).map_err(|e| e.to_string())
        });
        if let Some(status) = exited {
            // Its stderr closed with it: the reader has the whole log once it ends.
            let _ = reader.join();
            return Err(format!("nginx exited ({status}) with this configuration:\n{config}\nits log:\n{}", log.text()));
        }
        Ok(Nginx { child, port, base: format!("http://127.0.0.1:{port}"), log, _dir: dir })
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// panva's `oidc-provider` (an OpenID Certified authorization server) run by
/// `tests/peers/oidc/start.mjs` on `127.0.0.1:0`: client credentials, JWT access tokens for any
/// `resource`, introspection, revocation, and RS256, ES256 and EdDSA keys in its JWKS. Killed
/// when dropped; it also exits when its stdin closes, should the test process die first.
pub struct OidcProvider {
    /// `http://127.0.0.1:PORT`.
    pub issuer: String,
    child: Child,
    _stdin: ChildStdin,
    pub log: Arc<Log>,
}

impl OidcProvider {
    /// Start it with `config` (see `start.mjs`: `clients`, `scopes`, `access_token_alg`,
    /// `access_token_ttl`), ready once it printed `{"issuer": …}`.
    pub fn start(config: &Value) -> OidcProvider {
        let dir = node_modules().parent().expect("node folder").to_path_buf();
        // The script must sit beside node_modules for `import 'oidc-provider'` to resolve; written
        // under a unique name and renamed, so concurrent starts never see half a file.
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let script = dir.join("oidc-start.mjs");
        let tmp = dir.join(format!(".oidc-start.{}.{}.tmp", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst)));
        fs::write(&tmp, include_str!("../peers/oidc/start.mjs")).expect("write oidc-start.mjs");
        fs::rename(&tmp, &script).expect("rename oidc-start.mjs");

        let mut child = Command::new("node")
            .arg(&script)
            .arg(config.to_string())
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start node: {e}"));
        let stdin = child.stdin.take().expect("stdin pipe");
        let (log, _) = Log::collect(child.stderr.take().expect("stderr pipe"));
        let line = super::first_line(child.stdout.take().expect("stdout pipe"));
        let issuer = line
            .as_deref()
            .and_then(|l| serde_json::from_str::<Value>(l).ok())
            .and_then(|v| v["issuer"].as_str().map(str::to_owned))
            .filter(|i| i.starts_with("http://127.0.0.1:"));
        let Some(issuer) = issuer else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("oidc-provider printed no issuer line (got {line:?}); its stderr:\n{}", log.text());
        };
        OidcProvider { issuer, child, _stdin: stdin, log }
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 GET over a fresh connection (`Connection: close`); status and body. For peers
/// that speak plain HTTP where a whole client would hide what is on the wire.
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("read timeout");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").expect("send request");
    let mut reply = Vec::new();
    stream.take(1 << 20).read_to_end(&mut reply).unwrap_or_else(|e| panic!("read reply from {addr}: {e}"));
    let reply = String::from_utf8_lossy(&reply).into_owned();
    let (head, body) = reply.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no HTTP head from {addr}: {reply:?}"));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status from {addr}: {head:?}"));
    (status, body.to_owned())
}
