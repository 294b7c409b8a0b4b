//! The access log: one line per request on stderr, every request — `/mcp`, the well-known
//! documents, health and metrics, 404s — written by [`layer`] around the whole router: time,
//! HTTP method, path, JSON-RPC method, tool, client (`client_id`), the client's `clientInfo`
//! name and version, status, latency and, for a 401/403/429, why (`refused=invalid_token: token
//! expired at …`, from the [`Refused`] extension that `auth`, the Origin check and the rate
//! limit put on the response). The handlers of `/mcp` fill a [`LogLine`] and hand it over as a
//! response extension ([`LogLine::finish`]). The same layer feeds `metrics`.
//!
//! Text format (`--log-format text`, the default):
//! `<time> POST /mcp tools/call getOrder client=ci-bot 200 1.23ms client_info=name/1.0 refused=…`;
//! JSON format: `{"time":…,"method":…,"path":…,"rpc":…,"tool":…,"client_id":…,"client_name":…,
//! "client_version":…,"status":…,"latency_ms":…,"refused":…}` (absent fields are `null`).
//!
//! Everything taken from a request or a file is escaped here, so no input can forge a line or
//! drive the terminal reading the log; tokens and headers are never part of a line. This module
//! also has the one function every other server diagnostic goes through ([`log_line`]).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::Value;

use crate::server::listener::PeerIp;
use crate::server::metrics;
use crate::server::router::AppState;

/// Why a request was refused, as the operator reads it: the OAuth error code and what was
/// wrong, never the token. Carried on the 401/403/429 response as an extension.
#[derive(Debug, Clone)]
pub struct Refused(pub String);

/// Who a refusal that comes after authentication (the rate limit) was for, when the handler
/// had not noted the caller yet. Carried on the response as an extension.
#[derive(Debug, Clone)]
pub struct RefusedClient(pub String);

/// `_meta` key of the client's identity in protocol 2026-07-28 (sent on every request).
pub const META_CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
/// Longest `clientInfo` name or version logged.
const MAX_CLIENT_INFO_CHARS: usize = 64;
/// Sessions whose `clientInfo` is remembered (for the requests after `initialize`).
const MAX_REMEMBERED: usize = 10_000;

/// Per-request facts the `/mcp` handlers know and the log line needs.
#[derive(Debug, Clone)]
pub struct LogLine {
    pub rpc: String,
    pub tool: String,
    pub client: String,
    /// The client's `clientInfo` (name, version), from `initialize` or the request's `_meta`.
    pub client_info: Option<(String, String)>,
}

impl LogLine {
    pub fn new(_method: &'static str) -> Self {
        LogLine { rpc: "-".into(), tool: "-".into(), client: "-".into(), client_info: None }
    }

    /// Take `clientInfo` (`{"name", "version"}`) from a JSON value: `initialize`'s
    /// `params.clientInfo`, or a request's `params._meta["io.modelcontextprotocol/clientInfo"]`.
    pub fn note_client_info(&mut self, info: Option<&Value>) {
        let Some(info) = info else { return };
        let field = |key: &str| info.get(key).and_then(Value::as_str).map(|s| s.chars().take(MAX_CLIENT_INFO_CHARS).collect::<String>());
        if let Some(name) = field("name") {
            self.client_info = Some((name, field("version").unwrap_or_default()));
        }
    }

    /// `clientInfo` from the `_meta` of a request's params, if it has one.
    pub fn note_meta(&mut self, params: Option<&Value>) {
        self.note_client_info(params.and_then(|p| p.get("_meta")).and_then(|m| m.get(META_CLIENT_INFO)));
    }

    /// Hand the facts to the access-log layer on the response. (`_enabled` is the layer's
    /// business now; the argument stays so call sites need not change.)
    pub fn finish(self, _enabled: bool, mut response: Response) -> Response {
        response.extensions_mut().insert(self);
        response
    }
}

/// `clientInfo` by session id, so the requests after `initialize` are logged with it (in this
/// process: a replica that did not see the `initialize` logs `-` unless the client sends
/// `clientInfo` in `_meta`). Bounded, oldest forgotten first.
#[derive(Default)]
pub struct ClientNames {
    inner: Mutex<Remembered>,
}

/// `clientInfo` by session id, and the ids in the order they came.
type Remembered = (HashMap<String, (String, String)>, VecDeque<String>);

impl ClientNames {
    fn remember(&self, session: &str, info: (String, String)) {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (map, order) = &mut *guard;
        if map.insert(session.to_owned(), info).is_none() {
            order.push_back(session.to_owned());
        }
        while order.len() > MAX_REMEMBERED {
            if let Some(old) = order.pop_front() {
                map.remove(&old);
            }
        }
    }

    fn get(&self, session: &str) -> Option<(String, String)> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).0.get(session).cloned()
    }
}

/// The layer around every route: times the request, runs it (inside the peer scope the rate
/// limit reads), then counts it in `metrics` and writes its line.
pub async fn layer(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    // The path a client asked for is untrusted: escaped and cut when it is logged.
    let path = request.uri().path().chars().take(200).collect::<String>();
    let session = request.headers().get(crate::mcp::SESSION_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let peer = request.extensions().get::<PeerIp>().map(|p| p.0);
    let mut response = crate::server::rate_limit::PEER.scope(peer, next.run(request)).await;
    let mut facts = response.extensions_mut().remove::<LogLine>();
    if let (Some(f), Some(RefusedClient(client))) = (facts.as_mut(), response.extensions().get::<RefusedClient>())
        && f.client == "-"
    {
        f.client = client.clone();
    }
    let refused = response.extensions().get::<Refused>().map(|r| r.0.clone());
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    let names = &state.shared.client_names;
    let client_info = match &facts {
        Some(LogLine { client_info: Some(info), .. }) => {
            // Only under a session id this server just issued (to an `initialize`): an id a
            // request merely names is the client's text — of any length, checked or not
            // (the stateless revision ignores it) — and must not become memory we keep.
            if let Some(id) = response.headers().get(crate::mcp::SESSION_HEADER).and_then(|v| v.to_str().ok()) {
                names.remember(id, info.clone());
            }
            Some(info.clone())
        }
        _ => session.as_deref().and_then(|id| names.get(id)),
    };
    let rpc = facts.as_ref().map(|f| f.rpc.as_str());
    if rpc == Some(crate::mcp::method::INITIALIZE) && status == 200 && response.headers().contains_key(crate::mcp::SESSION_HEADER) {
        metrics::session(true);
    } else if method == axum::http::Method::DELETE && status == 204 {
        metrics::session(false);
    }
    metrics::request(method.as_str(), facts.as_ref().map(|f| f.rpc.as_str()), status, elapsed, refused.as_deref());
    if state.log {
        let line = Line {
            method: method.as_str(),
            path: &path,
            facts: facts.as_ref(),
            client_info: client_info.as_ref(),
            status,
            latency_ms: elapsed.as_secs_f64() * 1000.0,
            refused: refused.as_deref(),
        };
        line.write();
    }
    response
}

/// One access line, before it is formatted.
struct Line<'a> {
    method: &'a str,
    path: &'a str,
    facts: Option<&'a LogLine>,
    client_info: Option<&'a (String, String)>,
    status: u16,
    latency_ms: f64,
    refused: Option<&'a str>,
}

impl Line<'_> {
    fn write(&self) {
        let (rpc, tool, client) = match self.facts {
            Some(f) => (f.rpc.as_str(), f.tool.as_str(), f.client.as_str()),
            None => ("-", "-", "-"),
        };
        match crate::logging::format() {
            crate::logging::Format::Json => {
                let dash = |s: &str| if s == "-" { Value::Null } else { Value::String(s.to_owned()) };
                let object = serde_json::json!({
                    "method": self.method,
                    "path": self.path,
                    "rpc": dash(rpc),
                    "tool": dash(tool),
                    "client_id": dash(client),
                    "client_name": self.client_info.map(|i| i.0.as_str()),
                    "client_version": self.client_info.map(|i| i.1.as_str()),
                    "status": self.status,
                    "latency_ms": (self.latency_ms * 1000.0).round() / 1000.0,
                    "refused": self.refused,
                });
                // serde_json escapes C0 controls only; the rest of what `escape_controls`
                // catches becomes `\uXXXX` here.
                tracing::info!(target: crate::logging::ACCESS, "{}", crate::validate::escape_json(&object.to_string()));
            }
            crate::logging::Format::Text => {
                let p = crate::validate::printable;
                // A field taken from the request is one word: an escaped space cannot start a
                // forged `client=… 200` inside the line.
                let word = |s: &str| p(s).replace(' ', "\\u{20}");
                let info = match self.client_info {
                    Some((name, version)) => format!(" client_info={}/{}", p(&name.replace(' ', "_")), p(&version.replace(' ', "_"))),
                    None => String::new(),
                };
                let refused = self.refused.map(|why| format!(" refused={}", p(why))).unwrap_or_default();
                log_line(&format!(
                    "{} {} {} {} client={} {} {:.2}ms{info}{refused}",
                    self.method,
                    word(self.path),
                    word(rpc),
                    word(tool),
                    word(client),
                    self.status,
                    self.latency_ms
                ));
            }
        }
    }
}

/// One log line on stderr with a UTC timestamp. Control and bidirectional characters are
/// escaped here, whatever the caller built the line from (request fields, file contents quoted
/// in parse errors), so no input can forge a line or drive the terminal reading the log.
pub fn log_line(text: &str) {
    tracing::info!("{}", crate::validate::escape_controls(text));
}
