//! One bridge session seen from the server's side: each message from the host is POSTed to the
//! MCP endpoint with the current credentials, and whatever the server sends back — a JSON body,
//! or an SSE stream with notifications and requests before the response — is written to the
//! host. The relay keeps the session id and protocol version the server gave `initialize`,
//! replays the host's `initialize` when the server forgets the session (404), listens on the
//! server's GET stream when it offers one, and ends the session with a DELETE.
//!
//! Against a server of the stateless revision 2026-07-28 the relay works as `stateless`
//! describes (the era is found at the host's `initialize`).

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use reqwest::header::{HeaderName, HeaderValue};

use crate::client::bridge::credentials::{Credentials, Refusal};
use crate::client::sse;
use crate::client::transport::{MAX_RAW_REPLY_BYTES, RawRequest, falls_back};
use crate::client::{ClientError, McpClient, client_error};
use crate::error;
use crate::mcp::{self, jsonrpc::INTERNAL_ERROR};
use crate::output::note;
use crate::validate::escape_controls;

mod stateless;

use stateless::{Modern, keep_valid_tools};

/// How long the GET stream may stay open before it is opened again.
const STREAM_LIFETIME: Duration = Duration::from_secs(3600);
/// GET stream failures in a row after which the bridge stops listening.
const STREAM_ATTEMPTS: u32 = 5;
/// Id of the `initialize` the bridge replays itself; its reply never reaches the host.
const REPLAY_ID_PREFIX: &str = "mcpgen-bridge-reinitialize-";

#[derive(Debug, Clone, Default)]
struct Session {
    id: Option<String>,
    version: Option<String>,
    /// Bumped at every (re-)initialize, so concurrent 404s replay `initialize` once.
    generation: u64,
}

/// Why a message could not be relayed, worded for the host.
struct Failed {
    message: String,
    hint: Option<String>,
    /// To a `server/discover` probe: an answer that means "not a modern server".
    falls_back: bool,
}

impl From<Refusal> for Failed {
    fn from(r: Refusal) -> Failed {
        Failed { message: r.message, hint: r.hint, falls_back: false }
    }
}

pub struct Relay {
    client: McpClient,
    credentials: Credentials,
    /// Lines for the host's stdin, written in order by one task.
    out: mpsc::Sender<String>,
    session: RwLock<Session>,
    /// Set when the server speaks the stateless revision.
    modern: RwLock<Option<Arc<Modern>>>,
    /// The server answered `server/discover` with no modern answer: do not ask again.
    legacy_only: std::sync::atomic::AtomicBool,
    /// The host's `initialize` request, replayed when the server forgets the session.
    initialize: Mutex<Option<Value>>,
    reinitializing: tokio::sync::Mutex<()>,
    stream: Mutex<Option<JoinHandle<()>>>,
    /// The last diagnostic printed, so a failing token is reported once, not per request.
    last_note: Mutex<Option<String>>,
    debug: bool,
}

impl Relay {
    pub fn new(client: McpClient, credentials: Credentials, out: mpsc::Sender<String>, debug: bool) -> Arc<Relay> {
        Arc::new(Relay {
            client,
            credentials,
            out,
            session: RwLock::new(Session::default()),
            modern: RwLock::new(None),
            legacy_only: std::sync::atomic::AtomicBool::new(false),
            initialize: Mutex::new(None),
            reinitializing: tokio::sync::Mutex::new(()),
            stream: Mutex::new(None),
            last_note: Mutex::new(None),
            debug,
        })
    }

    /// Relay one message from the host (`line` is its text, `message` the parsed value).
    pub async fn relay(self: &Arc<Self>, line: &str, message: &Value) {
        let method = message.get("method").and_then(Value::as_str);
        let id = message.get("id").filter(|_| method.is_some()).cloned();
        if method == Some(mcp::method::INITIALIZE) {
            *lock(&self.initialize) = Some(message.clone());
            *self.session.write().unwrap_or_else(|p| p.into_inner()) = Session::default();
            *self.modern.write().unwrap_or_else(|p| p.into_inner()) = None;
            if !self.legacy_only.load(std::sync::atomic::Ordering::Relaxed) {
                match self.discover(message).await {
                    Ok(true) => return,
                    Ok(false) => self.legacy_only.store(true, std::sync::atomic::Ordering::Relaxed),
                    Err(failed) => {
                        self.note(&failed);
                        if let Some(id) = id {
                            self.reply_error(id, &failed.message).await;
                        }
                        return;
                    }
                }
            }
        }
        let modern = self.modern.read().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(modern) = modern {
            return self.relay_modern(&modern, message, id).await;
        }
        match self.exchange(line, id.as_ref(), true, &[]).await {
            Ok(reply) => {
                self.clear_note();
                if method == Some(mcp::method::INITIALIZE)
                    && let Some((reply, session)) = reply
                {
                    let version = reply.pointer("/result/protocolVersion").and_then(Value::as_str).map(str::to_owned);
                    let mut s = self.session.write().unwrap_or_else(|p| p.into_inner());
                    s.generation += 1;
                    s.id = session;
                    s.version = version;
                }
                if method == Some(mcp::method::INITIALIZED) {
                    self.listen();
                }
            }
            Err(failed) => {
                self.note(&failed);
                if let Some(id) = id {
                    self.reply_error(id, &failed.message).await;
                }
            }
        }
    }

    /// End the session: stop listening, DELETE it (a server that does not allow it is fine).
    pub async fn close(&self) {
        if let Some(task) = lock(&self.stream).take() {
            task.abort();
        }
        let session = self.session.read().unwrap_or_else(|p| p.into_inner()).clone();
        let Some(id) = session.id.as_deref() else { return };
        let Ok(headers) = self.credentials.current() else { return };
        let raw = RawRequest {
            method: Method::DELETE,
            body: None,
            session: Some(id),
            version: session.version.as_deref(),
            last_event_id: None,
            timeout: Some(Duration::from_secs(5)),
        };
        let _ = self.client.send_raw(&raw, &headers).await;
    }

    /// A JSON-RPC error for the host's request `id`.
    pub async fn reply_error(&self, id: Value, message: &str) {
        let reply = json!({"jsonrpc": "2.0", "id": id, "error": {"code": INTERNAL_ERROR, "message": format!("mcpgen bridge: {message}")}});
        let _ = self.out.send(reply.to_string()).await;
    }

    /// POST `body`; when `expect` is a request id, the response to it (and the session id the
    /// server gave), once every message before it was passed on (when `forward`).
    async fn exchange(
        self: &Arc<Self>,
        body: &str,
        expect: Option<&Value>,
        forward: bool,
        extra: &[(HeaderName, HeaderValue)],
    ) -> Result<Option<(Value, Option<String>)>, Failed> {
        let (mut replayed, mut reloaded) = (false, false);
        loop {
            let current = self.credentials.current()?;
            let headers: std::borrow::Cow<'_, [(HeaderName, HeaderValue)]> = if extra.is_empty() {
                std::borrow::Cow::Borrowed(&current[..])
            } else {
                std::borrow::Cow::Owned(current.iter().chain(extra).cloned().collect())
            };
            let session = self.session.read().unwrap_or_else(|p| p.into_inner()).clone();
            let raw = RawRequest {
                method: Method::POST,
                body: Some(body),
                session: session.id.as_deref(),
                version: session.version.as_deref(),
                last_event_id: None,
                timeout: None,
            };
            match self.client.send_raw(&raw, &headers).await {
                Err(ClientError::SessionGone) if !replayed && session.id.is_some() => {
                    replayed = true;
                    self.reinitialize(session.generation).await?;
                }
                // The token may have changed since it was read (a rotation within the same
                // clock tick): read it again once.
                Err(ClientError::Refused { status: 401, .. }) if !reloaded && self.credentials.reload() => reloaded = true,
                Err(e) => return Err(self.failed(e)),
                Ok(response) => {
                    let session_id = response.headers().get(mcp::SESSION_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned);
                    let reply = self.deliver(response, expect, forward).await.map_err(|e| self.failed(e))?;
                    return Ok(reply.map(|r| (r, session_id)));
                }
            }
        }
    }

    /// Pass the server's reply on; the response to `expect`, if that is a request.
    async fn deliver(&self, response: reqwest::Response, expect: Option<&Value>, forward: bool) -> Result<Option<Value>, ClientError> {
        let status = response.status();
        if status == reqwest::StatusCode::ACCEPTED || (expect.is_none() && status.is_success()) {
            return Ok(None);
        }
        let content_type =
            response.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
        if status.is_success() && content_type.starts_with("text/event-stream") {
            return self.pump(response, expect, forward).await;
        }
        let body = self.client.read_raw_body(response).await?;
        let value: Option<Value> = serde_json::from_slice(&body).ok();
        if !status.is_success() {
            // A JSON-RPC error body explains more than the status; it may not carry our id.
            if let Some(error) = value.as_ref().and_then(|v| v.get("error")).and_then(|e| e.get("message")).and_then(Value::as_str) {
                let code = value.as_ref().and_then(|v| v.pointer("/error/code")).and_then(Value::as_i64).unwrap_or(INTERNAL_ERROR);
                return Err(ClientError::Rpc { code, message: format!("HTTP {status}: {error}") });
            }
            return Err(ClientError::Protocol(format!("the server answered HTTP {status}")));
        }
        let value = value.ok_or_else(|| {
            ClientError::Protocol(format!("the server sent invalid JSON with content type {:?}", escape_controls(&content_type)))
        })?;
        let messages = match value {
            Value::Array(items) => items,
            single => vec![single],
        };
        let mut found = None;
        for message in messages {
            if is_response_to(&message, expect) {
                found = Some(message.clone());
            }
            if forward {
                self.send(&message).await;
            }
        }
        match (expect, found) {
            (Some(id), None) => Err(ClientError::Protocol(format!("no response with id {id} in the reply"))),
            (_, found) => Ok(found),
        }
    }

    /// Forward SSE message events until the response to `expect` (or, for the GET stream, the
    /// end of the stream); the id of the last event seen goes into `last_event`.
    async fn pump(&self, mut response: reqwest::Response, expect: Option<&Value>, forward: bool) -> Result<Option<Value>, ClientError> {
        let mut parser = sse::Parser::new();
        let mut pending = 0usize;
        loop {
            let chunk = response.chunk().await.map_err(|e| self.client.unreachable_error(&e))?;
            let events = match &chunk {
                Some(bytes) => {
                    pending += bytes.len();
                    parser.push(bytes)
                }
                None => parser.finish().into_iter().collect(),
            };
            if events.is_empty() && pending > MAX_RAW_REPLY_BYTES {
                return Err(ClientError::Protocol(format!("an SSE event larger than {MAX_RAW_REPLY_BYTES} bytes")));
            }
            for event in events {
                pending = 0;
                if self.debug {
                    crate::logging::trace("<", &format!("event: {} data: {}", event.event, event.data));
                }
                if event.event != "message" {
                    continue;
                }
                let Ok(message) = serde_json::from_str::<Value>(&event.data) else {
                    if self.debug {
                        note("mcpgen bridge: skipped an SSE event that is not JSON");
                    }
                    continue;
                };
                let answer = is_response_to(&message, expect);
                if forward {
                    self.send(&message).await;
                }
                if answer {
                    return Ok(Some(message));
                }
            }
            if chunk.is_none() {
                return match expect {
                    Some(_) => Err(ClientError::Protocol("the SSE stream ended without a response".into())),
                    None => Ok(None),
                };
            }
        }
    }

    /// Replay the host's `initialize` (under the bridge's own id) and `initialized`, unless
    /// another request already did since `seen` (the generation that got the 404).
    async fn reinitialize(self: &Arc<Self>, seen: u64) -> Result<(), Failed> {
        let _one_at_a_time = self.reinitializing.lock().await;
        if self.session.read().unwrap_or_else(|p| p.into_inner()).generation != seen {
            return Ok(());
        }
        let Some(mut initialize) = lock(&self.initialize).clone() else {
            return Err(Failed {
                message: "the server forgot the session before it was initialized".into(),
                hint: None,
                falls_back: false,
            });
        };
        note("mcpgen bridge: the server forgot the session (404); initializing a new one");
        initialize["id"] = json!(format!("{REPLAY_ID_PREFIX}{}", seen + 1));
        let id = initialize["id"].clone();
        *self.session.write().unwrap_or_else(|p| p.into_inner()) = Session { generation: seen, ..Session::default() };
        let reply = Box::pin(self.exchange(&initialize.to_string(), Some(&id), false, &[])).await?;
        let Some((reply, session)) = reply else { unreachable!("a request always has a reply") };
        if let Some(error) = reply.get("error") {
            return Err(Failed { message: format!("the server refused to initialize again: {error}"), hint: None, falls_back: false });
        }
        let version = reply.pointer("/result/protocolVersion").and_then(Value::as_str).map(str::to_owned);
        *self.session.write().unwrap_or_else(|p| p.into_inner()) = Session { id: session, version, generation: seen + 1 };
        let initialized = json!({"jsonrpc": "2.0", "method": mcp::method::INITIALIZED}).to_string();
        Box::pin(self.exchange(&initialized, None, false, &[])).await?;
        self.listen();
        Ok(())
    }

    /// Open the server's GET stream in the background (replacing any earlier one).
    fn listen(self: &Arc<Self>) {
        let relay = Arc::clone(self);
        let generation = self.session.read().unwrap_or_else(|p| p.into_inner()).generation;
        let task = tokio::spawn(async move { relay.stream(generation).await });
        if let Some(old) = lock(&self.stream).replace(task) {
            old.abort();
        }
    }

    /// Listen for server messages outside any request until the server says it offers no
    /// stream (405), forgets the session, or fails [`STREAM_ATTEMPTS`] times in a row.
    async fn stream(self: Arc<Self>, generation: u64) {
        let mut failures = 0;
        while failures < STREAM_ATTEMPTS {
            let session = self.session.read().unwrap_or_else(|p| p.into_inner()).clone();
            if session.generation != generation {
                return;
            }
            let Ok(headers) = self.credentials.current() else { return };
            let raw = RawRequest {
                method: Method::GET,
                body: None,
                session: session.id.as_deref(),
                version: session.version.as_deref(),
                last_event_id: None,
                timeout: Some(STREAM_LIFETIME),
            };
            match self.client.send_raw(&raw, &headers).await {
                Ok(response) if response.status().is_success() => {
                    let is_sse = response
                        .headers()
                        .get(reqwest::header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .is_some_and(|t| t.to_ascii_lowercase().starts_with("text/event-stream"));
                    if !is_sse {
                        return;
                    }
                    failures = match self.pump(response, None, true).await {
                        Ok(_) => 0,
                        Err(_) => failures + 1,
                    };
                }
                Ok(response) if response.status() == reqwest::StatusCode::METHOD_NOT_ALLOWED => return,
                Err(ClientError::SessionGone) | Err(ClientError::Refused { .. }) => return,
                _ => failures += 1,
            }
            tokio::time::sleep(Duration::from_millis(500 * u64::from(failures.max(1)))).await;
        }
    }

    /// One message to the host, as one line.
    async fn send(&self, message: &Value) {
        if message.get("id").and_then(Value::as_str).is_some_and(|id| id.starts_with(REPLAY_ID_PREFIX)) {
            return;
        }
        let modern = self.modern.read().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(modern) = modern
            && message.pointer("/result/tools").is_some_and(Value::is_array)
        {
            let _ = self.out.send(keep_valid_tools(&modern, message.clone()).to_string()).await;
            return;
        }
        let _ = self.out.send(message.to_string()).await;
    }

    fn failed(&self, e: ClientError) -> Failed {
        let falls_back = falls_back(&e);
        let err = client_error(e, &self.credentials.hints());
        Failed { message: error::one_line(&err), hint: error::classify(&err).1, falls_back }
    }

    /// The failure on stderr (where hosts keep a server's log), once while it lasts.
    fn note(&self, failed: &Failed) {
        let mut last = lock(&self.last_note);
        if last.as_deref() == Some(failed.message.as_str()) {
            return;
        }
        *last = Some(failed.message.clone());
        note(format!("mcpgen bridge: error: {}", escape_controls(&failed.message)));
        if let Some(hint) = &failed.hint {
            note(format!("mcpgen bridge: hint: {}", escape_controls(hint)));
        }
    }

    fn clear_note(&self) {
        let mut last = lock(&self.last_note);
        if last.take().is_some() {
            note("mcpgen bridge: requests go through again");
        }
    }
}

fn is_response_to(message: &Value, expect: Option<&Value>) -> bool {
    expect.is_some_and(|id| message.get("method").is_none() && message.get("id") == Some(id))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
