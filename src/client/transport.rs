//! The MCP Streamable HTTP client, dual-era: it first asks `server/discover` in protocol
//! 2026-07-28 (stateless: `_meta` on every request, `Mcp-Method`/`Mcp-Name`/`Mcp-Param-*`
//! headers, no session) and, when the answer is not a recognized modern one, falls back to the
//! handshake (initialize → initialized → requests → DELETE, session ids, `MCP-Protocol-Version`
//! after initialize, one re-initialize when the server forgets the session). JSON or SSE replies,
//! and typed failures that map to the CLI's exit codes. `debug` traces every exchange (through
//! `logging::trace`) with credentials redacted. The era logic is in `era`; the raw exchanges a
//! relay (`client::bridge`) builds on are in `raw`.

use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::client::challenge;
use crate::client::oauth::OAuthProvider;
use crate::client::param_headers::{self, ParamHeaders};
use crate::client::sse;
use crate::logging::trace;
use crate::mcp::jsonrpc::{Id, Message};
use crate::mcp::messages::{CallToolParams, CallToolResult, Implementation, ListPromptsResult};
use crate::mcp::messages::{ListToolsResult, PageParams, Tool};
use crate::mcp::{self, method};
use crate::net;
use crate::validate::printable;

mod era;
mod raw;

use era::with_meta;
pub(crate) use era::{falls_back, with_meta_of};
pub use raw::{MAX_RAW_REPLY_BYTES, RawRequest};

/// Largest reply body accepted.
const MAX_REPLY_BYTES: usize = 16 * 1024 * 1024;
/// Longest `Retry-After` the client waits out (once) before retrying a 429; a longer one fails
/// with exit code 6.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(5);
/// Most pages followed in one listing...
const MAX_PAGES: usize = 1_000;
/// ...and most items gathered.
const MAX_LISTED: usize = 10_000;
/// ...and most reply bytes read for one listing (each page is capped on its own, but a hostile
/// server could send a thousand large pages).
const MAX_LISTED_BYTES: usize = 64 * 1024 * 1024;

/// Why a call failed, in the classes the CLI's exit codes distinguish.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// 401/403 from the server, with what its challenge said.
    #[error("HTTP {status} {}", describe_refusal(.error, .description, .scope))]
    Refused { status: u16, error: Option<String>, description: Option<String>, scope: Option<String>, metadata: Option<String> },
    /// Connection refused, DNS, TLS or timeout.
    #[error("cannot reach {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// The server answered with a JSON-RPC error.
    #[error("{} (JSON-RPC error {code})", printable(.message))]
    Rpc { code: i64, message: String },
    /// The OAuth token endpoint refused our client credentials.
    #[error("token endpoint {url} refused the client credentials: HTTP {status} {}", describe_refusal(.error, .description, &None))]
    TokenEndpoint { url: String, status: u16, error: Option<String>, description: Option<String> },
    /// 429 from the server's rate limit, with its `Retry-After` (seconds) when it sent one.
    #[error("the server's rate limit refused the request (HTTP 429{})", .retry_after.map(|d| format!(", retry after {} s", d.as_secs())).unwrap_or_default())]
    RateLimited { retry_after: Option<Duration> },
    /// An HTTP status the protocol gives no meaning to here (no JSON-RPC error in the body).
    #[error("the server answered HTTP {status}")]
    Status { status: u16 },
    /// The server no longer knows our session (404 to a request that carried one).
    #[error("the server does not know the session (404)")]
    SessionGone,
    /// Anything else the server did that the protocol does not allow.
    #[error("{0}")]
    Protocol(String),
}

fn describe_refusal(error: &Option<String>, description: &Option<String>, scope: &Option<String>) -> String {
    let mut out = error.as_deref().map(printable).unwrap_or_else(|| "unauthorized".into());
    if let Some(d) = description {
        out.push_str(&format!(" ({})", printable(d)));
    }
    if let Some(s) = scope {
        out.push_str(&format!("; needs scope {}", printable(s)));
    }
    out
}

/// What a request was already retried for (see `McpClient::retry_once`).
#[derive(Default)]
struct Retried {
    rate_limit: bool,
    token: bool,
}

/// One header the client sends on every request; values are redacted in debug output.
#[derive(Debug, Clone)]
pub struct ExtraHeader {
    pub name: HeaderName,
    pub value: HeaderValue,
}

pub struct McpClient {
    http: reqwest::Client,
    url: String,
    headers: Vec<ExtraHeader>,
    oauth: Option<OAuthProvider>,
    session: Option<String>,
    version: Option<String>,
    /// The server answered `server/discover`: every request is stateless (protocol 2026-07-28).
    modern: bool,
    /// The server is known to speak only the handshake era: do not probe again.
    legacy_only: bool,
    /// `x-mcp-header` parameters of each listed tool, mirrored into headers on a modern call.
    param_headers: std::collections::HashMap<String, ParamHeaders>,
    next_id: i64,
    debug: bool,
    /// Reply bytes read so far (what a listing's byte cap counts).
    received: std::sync::atomic::AtomicUsize,
    pub server_info: Implementation,
    pub capabilities: Map<String, Value>,
}

impl McpClient {
    pub fn new(
        url: &str,
        headers: Vec<ExtraHeader>,
        oauth: Option<OAuthProvider>,
        timeout: Duration,
        debug: bool,
    ) -> Result<Self, ClientError> {
        let tls = net::is_https(url) || oauth.as_ref().is_some_and(|o| o.needs_tls());
        let http = net::Policy::new(timeout, tls)
            .client()
            .map_err(|e| ClientError::Protocol(format!("cannot build the HTTP client: {}", net::describe(&e))))?;
        Ok(McpClient {
            http,
            url: url.to_owned(),
            headers,
            oauth,
            session: None,
            version: None,
            modern: false,
            legacy_only: false,
            param_headers: Default::default(),
            next_id: 1,
            debug,
            received: Default::default(),
            server_info: Implementation::default(),
            capabilities: Map::new(),
        })
    }

    /// A request and its typed result; a 404 (session gone) re-initializes once and retries.
    pub async fn request<T: DeserializeOwned>(&mut self, method: &str, params: Option<Value>) -> Result<T, ClientError> {
        let params = if self.modern { Some(with_meta(params)) } else { params };
        let id = self.take_id();
        match self.exchange(&Message::request(id.clone(), method, params.clone()), Some(&id)).await {
            Err(ClientError::SessionGone) => {
                self.initialize().await?;
                let id = self.take_id();
                let (reply, _) = self.exchange(&Message::request(id.clone(), method, params), Some(&id)).await?;
                rpc_result(reply)
            }
            Err(e) => Err(e),
            Ok((reply, _)) => rpc_result(reply),
        }
    }

    /// Every tool, following `nextCursor`.
    pub async fn list_tools(&mut self) -> Result<Vec<Tool>, ClientError> {
        let tools = self.list_all(method::TOOLS_LIST, |page: ListToolsResult| (page.tools, page.next_cursor)).await?;
        if !self.modern {
            return Ok(tools);
        }
        // The revision: a tool whose `x-mcp-header` annotations are invalid is left out, with a
        // warning; the others' annotations are kept to mirror their arguments on a call.
        let mut kept = Vec::with_capacity(tools.len());
        for tool in tools {
            match param_headers::of_schema(&tool.input_schema) {
                Ok(headers) => {
                    self.param_headers.insert(tool.name.clone(), headers);
                    kept.push(tool);
                }
                Err(why) => tracing::warn!("leaving out tool {}: {}", printable(&tool.name), printable(&why)),
            }
        }
        Ok(kept)
    }

    /// Every prompt, when the server has the prompts capability.
    pub async fn list_prompts(&mut self) -> Result<Vec<Value>, ClientError> {
        if !self.capabilities.contains_key("prompts") {
            return Ok(Vec::new());
        }
        self.list_all(method::PROMPTS_LIST, |page: ListPromptsResult| (page.prompts, page.next_cursor)).await
    }

    /// Request pages of a listing until the server gives no new cursor.
    async fn list_all<P: DeserializeOwned, T>(
        &mut self,
        method: &str,
        split: fn(P) -> (Vec<T>, Option<String>),
    ) -> Result<Vec<T>, ClientError> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        // A server that repeats a cursor (even alternating two) or never stops listing must not
        // hold the client for good, nor fill its memory.
        let mut seen = std::collections::HashSet::new();
        let start = self.received.load(std::sync::atomic::Ordering::Relaxed);
        for _ in 0..MAX_PAGES {
            let params = cursor.as_ref().map(|c| to_value(&PageParams { cursor: Some(c.clone()) })).transpose()?;
            let (items, next) = split(self.request(method, params).await?);
            out.extend(items);
            if out.len() > MAX_LISTED {
                return Err(ClientError::Protocol(format!("{method} listed more than {MAX_LISTED} items")));
            }
            if self.received.load(std::sync::atomic::Ordering::Relaxed) - start > MAX_LISTED_BYTES {
                return Err(ClientError::Protocol(format!("{method} sent more than {} MiB", MAX_LISTED_BYTES >> 20)));
            }
            match next {
                Some(next) if seen.insert(next.clone()) => cursor = Some(next),
                Some(_) => return Err(ClientError::Protocol(format!("{method} repeated a cursor"))),
                None => return Ok(out),
            }
        }
        Err(ClientError::Protocol(format!("{method} did not end after {MAX_PAGES} pages")))
    }

    pub async fn call_tool(&mut self, name: &str, arguments: Value) -> Result<CallToolResult, ClientError> {
        let params = CallToolParams { name: name.to_owned(), arguments: Some(arguments) };
        self.request(method::TOOLS_CALL, Some(to_value(&params)?)).await
    }

    /// End the session (DELETE); a server that does not allow it is fine.
    pub async fn close(&mut self) {
        let Some(session) = self.session.take() else { return };
        let mut request = self.http.delete(&self.url);
        for (name, value) in self.auth_headers().await.unwrap_or_default() {
            request = request.header(name, value);
        }
        request = request.header(mcp::SESSION_HEADER, session);
        if let Some(v) = &self.version {
            request = request.header(mcp::VERSION_HEADER, v.as_str());
        }
        if self.debug {
            trace(">", &format!("DELETE {}", net::redact_url(&self.url)));
        }
        let started = Instant::now();
        if let Ok(response) = request.send().await
            && self.debug
        {
            trace("<", &format!("{} ({:.1} ms)", response.status(), started.elapsed().as_secs_f64() * 1000.0));
        }
    }

    fn take_id(&mut self) -> Id {
        let id = self.next_id;
        self.next_id += 1;
        Id::Number(id)
    }

    /// Headers that carry credentials: the fixed ones and a fresh OAuth token.
    async fn auth_headers(&self) -> Result<Vec<(HeaderName, HeaderValue)>, ClientError> {
        let mut out: Vec<(HeaderName, HeaderValue)> = self.headers.iter().map(|h| (h.name.clone(), h.value.clone())).collect();
        if let Some(oauth) = &self.oauth {
            out.extend(oauth.headers(&self.http, self.debug).await?);
        }
        Ok(out)
    }

    /// POST one message; for a request, the matching response (JSON body or SSE event). An
    /// OAuth access token the server refuses (401) is replaced by a freshly minted one, once.
    async fn exchange(&mut self, message: &Message, expect_id: Option<&Id>) -> Result<(Option<Message>, HeaderMap), ClientError> {
        let mut retried = Retried::default();
        loop {
            match self.exchange_once(message, expect_id).await {
                Err(e) if self.retry_once(&e, &mut retried).await => continue,
                other => return other,
            }
        }
    }

    /// Whether a failed attempt gets one more, after doing what makes it worth it: a rate limit
    /// that asks for a short pause is waited out, a refused OAuth access token is replaced by a
    /// fresh one. Each at most once per request (`retried`); shared with the relay's `send_raw`.
    async fn retry_once(&self, e: &ClientError, retried: &mut Retried) -> bool {
        match e {
            ClientError::RateLimited { retry_after: Some(wait) } if *wait <= MAX_RETRY_AFTER && !retried.rate_limit => {
                retried.rate_limit = true;
                if self.debug {
                    trace("!", &format!("rate limited; retrying once after {} s", wait.as_secs()));
                }
                tokio::time::sleep(*wait).await;
                true
            }
            ClientError::Refused { status: 401, .. } if !retried.token => {
                let Some(oauth) = &self.oauth else { return false };
                retried.token = true;
                oauth.invalidate().await;
                if self.debug {
                    trace("!", "the server refused the access token; minting a new one and retrying once");
                }
                true
            }
            _ => false,
        }
    }

    async fn exchange_once(&mut self, message: &Message, expect_id: Option<&Id>) -> Result<(Option<Message>, HeaderMap), ClientError> {
        let body = serde_json::to_string(message).map_err(|e| ClientError::Protocol(e.to_string()))?;
        let modern_headers = if self.modern { self.modern_headers(message)? } else { Vec::new() };
        let mut request = self
            .http
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::ACCEPT, "application/json, text/event-stream");
        let auth = self.auth_headers().await?;
        for (name, value) in &auth {
            request = request.header(name.clone(), value.clone());
        }
        if let Some(session) = &self.session {
            request = request.header(mcp::SESSION_HEADER, session.as_str());
        }
        if let Some(version) = &self.version {
            request = request.header(mcp::VERSION_HEADER, version.as_str());
        }
        for (name, value) in modern_headers {
            request = request.header(name, value);
        }
        let request = request.body(body.clone()).build().map_err(|e| ClientError::Protocol(format!("cannot build request: {e}")))?;
        if self.debug {
            trace(">", &format!("POST {}", net::redact_url(request.url().as_str())));
            for (name, value) in request.headers() {
                trace(">", &format!("{name}: {}", redact_header(name, value, &auth)));
            }
            trace(">", &body);
        }
        let started = Instant::now();
        let response = self.http.execute(request).await.map_err(|e| unreachable(&self.url, &e))?;
        let status = response.status();
        let headers = response.headers().clone();
        if self.debug {
            trace("<", &format!("{status} ({:.1} ms)", started.elapsed().as_secs_f64() * 1000.0));
            for (name, value) in &headers {
                trace("<", &format!("{name}: {}", redact_header(name, value, &[])));
            }
        }
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            let text = self.read_body(response).await.unwrap_or_default();
            return Err(challenge::refused(status.as_u16(), &headers, &text));
        }
        if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(rate_limited(&headers));
        }
        if status == reqwest::StatusCode::NOT_FOUND && self.session.is_some() {
            return Err(ClientError::SessionGone);
        }
        if status == reqwest::StatusCode::ACCEPTED || (expect_id.is_none() && status.is_success()) {
            return Ok((None, headers));
        }
        let content_type = headers.get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
        if !status.is_success() {
            let text = self.read_body(response).await.unwrap_or_default();
            // A JSON-RPC error body explains more than the status.
            if let Ok(m) = serde_json::from_slice::<Message>(&text)
                && let Some(e) = m.error
            {
                return Err(ClientError::Rpc { code: e.code, message: format!("HTTP {status}: {}", e.message) });
            }
            return Err(ClientError::Status { status: status.as_u16() });
        }
        let reply = if content_type.starts_with("text/event-stream") {
            self.read_sse(response, expect_id).await?
        } else {
            let text = self.read_body(response).await?;
            let value: Value = serde_json::from_slice(&text).map_err(|e| {
                ClientError::Protocol(format!("the server sent invalid JSON ({e}) with content type {:?}", printable(&content_type)))
            })?;
            find_reply(value, expect_id)?
        };
        Ok((reply, headers))
    }

    /// A whole (non-SSE) body, capped, traced when debugging.
    async fn read_body(&self, response: reqwest::Response) -> Result<Vec<u8>, ClientError> {
        let text = net::read_capped(response, MAX_REPLY_BYTES).await.map_err(|e| match e {
            net::ReadError::Transport(e) => unreachable(&self.url, &e),
            too_large => ClientError::Protocol(too_large.to_string()),
        })?;
        self.received.fetch_add(text.len(), std::sync::atomic::Ordering::Relaxed);
        if self.debug {
            trace("<", &String::from_utf8_lossy(&text));
        }
        Ok(text)
    }

    /// Read SSE events until the response to `expect_id` arrives.
    async fn read_sse(&self, mut response: reqwest::Response, expect_id: Option<&Id>) -> Result<Option<Message>, ClientError> {
        let mut parser = sse::Parser::new();
        let mut total = 0usize;
        loop {
            let chunk = response.chunk().await.map_err(|e| unreachable(&self.url, &e))?;
            let events = match &chunk {
                Some(bytes) => {
                    total += bytes.len();
                    self.received.fetch_add(bytes.len(), std::sync::atomic::Ordering::Relaxed);
                    if total > MAX_REPLY_BYTES {
                        return Err(ClientError::Protocol(format!("SSE reply larger than {MAX_REPLY_BYTES} bytes")));
                    }
                    parser.push(bytes)
                }
                None => parser.finish().into_iter().collect(),
            };
            for event in events {
                if self.debug {
                    trace("<", &format!("event: {} data: {}", event.event, event.data));
                }
                if event.event != "message" {
                    continue;
                }
                let value: Value =
                    serde_json::from_str(&event.data).map_err(|e| ClientError::Protocol(format!("invalid JSON in an SSE event ({e})")))?;
                // Server requests and notifications may come first; wait for our response.
                if let Ok(Some(reply)) = find_reply(value, expect_id) {
                    return Ok(Some(reply));
                }
            }
            if chunk.is_none() {
                return Err(ClientError::Protocol("the SSE stream ended without a response".into()));
            }
        }
    }
}

/// A 429 as an error, with its `Retry-After` in delay-seconds (RFC 9110 §10.2.3; an HTTP date
/// counts as "long": the client does not wait for it).
fn rate_limited(headers: &HeaderMap) -> ClientError {
    let retry_after = headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    ClientError::RateLimited { retry_after }
}

fn to_value(value: &impl serde::Serialize) -> Result<Value, ClientError> {
    serde_json::to_value(value).map_err(|e| ClientError::Protocol(format!("cannot encode a request: {e}")))
}

fn unreachable(url: &str, e: &reqwest::Error) -> ClientError {
    ClientError::Unreachable { url: net::redact_url(url), reason: net::describe(e) }
}

/// The response with id `expect_id` in a single message or a batch.
fn find_reply(value: Value, expect_id: Option<&Id>) -> Result<Option<Message>, ClientError> {
    let messages: Vec<Message> = match value {
        Value::Array(items) => items.into_iter().filter_map(|v| serde_json::from_value(v).ok()).collect(),
        single => vec![serde_json::from_value(single).map_err(|e| ClientError::Protocol(format!("not a JSON-RPC message ({e})")))?],
    };
    let Some(id) = expect_id else { return Ok(None) };
    messages
        .into_iter()
        .find(|m| m.method.is_none() && m.id.as_ref() == Some(id))
        .map(Some)
        .ok_or_else(|| ClientError::Protocol(format!("no response with id {} in the reply", json!(id))))
}

/// The typed result of a response, or its error.
fn rpc_result<T: DeserializeOwned>(reply: Option<Message>) -> Result<T, ClientError> {
    let reply = reply.ok_or_else(|| ClientError::Protocol("the server sent no response".into()))?;
    if let Some(error) = reply.error {
        return Err(ClientError::Rpc { code: error.code, message: error.message });
    }
    // Protocol 2026-07-28: `input_required` asks the client for input (MRTR), which mcpgen does
    // not provide; a missing `resultType` is `complete`.
    if let Some(kind) = reply.result.as_ref().and_then(|r| r.get("resultType")).and_then(Value::as_str)
        && kind != "complete"
    {
        return Err(ClientError::Protocol(format!(
            "the server answered with resultType {:?}, which mcpgen does not handle",
            printable(kind)
        )));
    }
    serde_json::from_value(reply.result.unwrap_or(Value::Null))
        .map_err(|e| ClientError::Protocol(format!("the server sent a malformed result ({})", printable(&e.to_string()))))
}

/// Credential headers are shown as `<redacted>`; so is any header the caller marked secret.
fn redact_header(name: &HeaderName, value: &HeaderValue, secrets: &[(HeaderName, HeaderValue)]) -> String {
    use reqwest::header::{AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION, SET_COOKIE};
    if secrets.iter().any(|(n, _)| n == name) || [AUTHORIZATION, PROXY_AUTHORIZATION, COOKIE, SET_COOKIE].contains(name) {
        return "<redacted>".into();
    }
    value.to_str().unwrap_or("<binary>").to_owned()
}
