//! The MCP Streamable HTTP client: initialize → initialized → requests → DELETE, JSON or SSE
//! replies, session ids, `MCP-Protocol-Version` on every request after initialize, one
//! re-initialize when the server forgets the session (404), and typed failures that map to the
//! CLI's exit codes. `debug` traces every exchange on stderr with credentials redacted.

use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};

use crate::mcp::jsonrpc::{self, LATEST_VERSION, Message};
use crate::mcp::oauth::OAuthProvider;
use crate::mcp::sse;
use crate::mcp::tools::describe_reqwest;

/// Largest reply body accepted.
const MAX_REPLY_BYTES: usize = 16 * 1024 * 1024;

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
    #[error("{message} (JSON-RPC error {code})")]
    Rpc { code: i64, message: String },
    /// Anything else the server did that the protocol does not allow.
    #[error("{0}")]
    Protocol(String),
}

fn describe_refusal(error: &Option<String>, description: &Option<String>, scope: &Option<String>) -> String {
    let mut out = error.clone().unwrap_or_else(|| "unauthorized".into());
    if let Some(d) = description {
        out.push_str(&format!(" ({})", crate::validate::printable(d)));
    }
    if let Some(s) = scope {
        out.push_str(&format!("; needs scope {}", crate::validate::printable(s)));
    }
    out
}

/// One header the client sends on every request; `secret` values are redacted in debug output.
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
    next_id: u64,
    debug: bool,
    pub server_info: Value,
    pub capabilities: Value,
}

impl McpClient {
    pub fn new(
        url: &str,
        headers: Vec<ExtraHeader>,
        oauth: Option<OAuthProvider>,
        timeout: Duration,
        debug: bool,
    ) -> Result<Self, ClientError> {
        crate::mcp::init_tls();
        // No redirects: reqwest would forward the service-account header (and -H values) to
        // whatever host a redirect names.
        let mut builder = reqwest::Client::builder().timeout(timeout).connect_timeout(timeout).redirect(reqwest::redirect::Policy::none());
        // Loading the system's root certificates costs about a third of a short run; plain http
        // (the usual loopback case) needs none.
        let tls_needed = url.starts_with("https:") || oauth.as_ref().is_some_and(|o| o.token_url().starts_with("https:"));
        if !tls_needed {
            builder = builder.tls_certs_only(Vec::new());
        }
        let http = builder.build().map_err(|e| ClientError::Protocol(format!("cannot build the HTTP client: {e}")))?;
        Ok(McpClient {
            http,
            url: url.to_owned(),
            headers,
            oauth,
            session: None,
            version: None,
            next_id: 1,
            debug,
            server_info: Value::Null,
            capabilities: Value::Null,
        })
    }

    /// initialize, then the initialized notification.
    pub async fn initialize(&mut self) -> Result<(), ClientError> {
        self.session = None;
        self.version = None;
        let params = json!({
            "protocolVersion": LATEST_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "mcpgen", "version": env!("CARGO_PKG_VERSION")},
        });
        let id = self.take_id();
        let (reply, headers) = self.exchange(&Message::request(json!(id), "initialize", Some(params)), Some(id)).await?;
        let result = rpc_result(reply)?;
        let version = result.get("protocolVersion").and_then(Value::as_str).unwrap_or("");
        if !jsonrpc::is_supported(version) {
            return Err(ClientError::Protocol(format!(
                "the server chose protocol version {:?}, which mcpgen does not speak ({})",
                crate::validate::printable(version),
                jsonrpc::SUPPORTED_VERSIONS.join(", ")
            )));
        }
        self.version = Some(version.to_owned());
        self.session = headers.get(jsonrpc::SESSION_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned);
        self.server_info = result.get("serverInfo").cloned().unwrap_or(Value::Null);
        self.capabilities = result.get("capabilities").cloned().unwrap_or(Value::Null);
        self.exchange(&Message::notification("notifications/initialized"), None).await?;
        Ok(())
    }

    /// A request; a 404 (session gone) re-initializes once and retries.
    pub async fn request(&mut self, method: &str, params: Option<Value>) -> Result<Value, ClientError> {
        let id = self.take_id();
        let message = Message::request(json!(id), method, params.clone());
        match self.exchange(&message, Some(id)).await {
            Err(ClientError::Protocol(msg)) if msg == SESSION_GONE && self.session.is_some() => {
                self.initialize().await?;
                let id = self.take_id();
                let (reply, _) = self.exchange(&Message::request(json!(id), method, params), Some(id)).await?;
                rpc_result(reply)
            }
            Err(e) => Err(e),
            Ok((reply, _)) => rpc_result(reply),
        }
    }

    /// Every tool, following `nextCursor`.
    pub async fn list_tools(&mut self) -> Result<Vec<Value>, ClientError> {
        self.list_all("tools/list", "tools").await
    }

    /// Every prompt, when the server has the prompts capability.
    pub async fn list_prompts(&mut self) -> Result<Vec<Value>, ClientError> {
        if self.capabilities.get("prompts").is_none() {
            return Ok(Vec::new());
        }
        self.list_all("prompts/list", "prompts").await
    }

    async fn list_all(&mut self, method: &str, key: &str) -> Result<Vec<Value>, ClientError> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..10_000 {
            let params = cursor.as_ref().map(|c| json!({"cursor": c}));
            let result = self.request(method, params).await?;
            out.extend(result.get(key).and_then(Value::as_array).cloned().unwrap_or_default());
            match result.get("nextCursor").and_then(Value::as_str) {
                Some(next) if Some(next) != cursor.as_deref() => cursor = Some(next.to_owned()),
                _ => return Ok(out),
            }
        }
        Err(ClientError::Protocol(format!("{method} did not end after 10000 pages")))
    }

    pub async fn call_tool(&mut self, name: &str, arguments: Value) -> Result<Value, ClientError> {
        self.request("tools/call", Some(json!({"name": name, "arguments": arguments}))).await
    }

    /// End the session (DELETE); a server that does not allow it is fine.
    pub async fn close(&mut self) {
        let Some(session) = self.session.take() else { return };
        let mut request = self.http.delete(&self.url);
        for (name, value) in self.auth_headers().await.unwrap_or_default() {
            request = request.header(name, value);
        }
        request = request.header(jsonrpc::SESSION_HEADER, session);
        if let Some(v) = &self.version {
            request = request.header(jsonrpc::VERSION_HEADER, v.as_str());
        }
        if self.debug {
            trace(">", &format!("DELETE {}", redact_url(&self.url)));
        }
        let started = Instant::now();
        if let Ok(response) = request.send().await
            && self.debug
        {
            trace("<", &format!("{} ({:.1} ms)", response.status(), started.elapsed().as_secs_f64() * 1000.0));
        }
    }

    fn take_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Headers that carry credentials: the fixed ones and a fresh OAuth token.
    async fn auth_headers(&self) -> Result<Vec<(HeaderName, HeaderValue)>, ClientError> {
        let mut out: Vec<(HeaderName, HeaderValue)> = self.headers.iter().map(|h| (h.name.clone(), h.value.clone())).collect();
        if let Some(oauth) = &self.oauth {
            out.extend(oauth.headers(&self.http, self.debug).await?);
        }
        Ok(out)
    }

    /// POST one message; for a request, the matching response (JSON body or SSE event).
    async fn exchange(&mut self, message: &Message, expect_id: Option<u64>) -> Result<(Option<Message>, HeaderMap), ClientError> {
        let body = serde_json::to_string(message).map_err(|e| ClientError::Protocol(e.to_string()))?;
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
            request = request.header(jsonrpc::SESSION_HEADER, session.as_str());
        }
        if let Some(version) = &self.version {
            request = request.header(jsonrpc::VERSION_HEADER, version.as_str());
        }
        let request = request.body(body.clone()).build().map_err(|e| ClientError::Protocol(format!("cannot build request: {e}")))?;
        if self.debug {
            trace(">", &format!("POST {}", redact_url(request.url().as_str())));
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
            let text = read_body(response, &self.url).await.unwrap_or_default();
            if self.debug {
                trace("<", &String::from_utf8_lossy(&text));
            }
            return Err(refused(status.as_u16(), &headers, &text));
        }
        if status == reqwest::StatusCode::NOT_FOUND && self.session.is_some() {
            return Err(ClientError::Protocol(SESSION_GONE.into()));
        }
        if status == reqwest::StatusCode::ACCEPTED || (expect_id.is_none() && status.is_success()) {
            return Ok((None, headers));
        }
        let content_type = headers.get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
        if !status.is_success() {
            let text = read_body(response, &self.url).await.unwrap_or_default();
            if self.debug {
                trace("<", &String::from_utf8_lossy(&text));
            }
            // A JSON-RPC error body explains more than the status.
            if let Ok(m) = serde_json::from_slice::<Message>(&text)
                && let Some(e) = m.error
            {
                return Err(ClientError::Rpc { code: e.code, message: format!("HTTP {status}: {}", e.message) });
            }
            return Err(ClientError::Protocol(format!("the server answered HTTP {status}")));
        }
        let reply = if content_type.starts_with("text/event-stream") {
            self.read_sse(response, expect_id).await?
        } else {
            let text = read_body(response, &self.url).await?;
            if self.debug {
                trace("<", &String::from_utf8_lossy(&text));
            }
            let value: Value = serde_json::from_slice(&text)
                .map_err(|e| ClientError::Protocol(format!("the server sent invalid JSON ({e}) with content type {content_type:?}")))?;
            find_reply(value, expect_id)?
        };
        Ok((reply, headers))
    }

    /// Read SSE events until the response to `expect_id` arrives.
    async fn read_sse(&self, mut response: reqwest::Response, expect_id: Option<u64>) -> Result<Option<Message>, ClientError> {
        let mut parser = sse::Parser::new();
        let mut total = 0usize;
        loop {
            let chunk = response.chunk().await.map_err(|e| unreachable(&self.url, &e))?;
            let events = match &chunk {
                Some(bytes) => {
                    total += bytes.len();
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

const SESSION_GONE: &str = "the server does not know the session (404)";

fn unreachable(url: &str, e: &reqwest::Error) -> ClientError {
    let reason = if e.is_timeout() { "timed out".to_owned() } else { describe_reqwest(e) };
    ClientError::Unreachable { url: redact_url(url), reason }
}

/// The URL with any password in it replaced, for messages and traces.
pub fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else { return url.to_owned() };
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some("redacted"));
    }
    let secret = |k: &str| matches!(k.to_ascii_lowercase().as_str(), "access_token" | "token" | "id_token" | "client_secret" | "api_key");
    if parsed.query_pairs().any(|(k, _)| secret(&k)) {
        let pairs: Vec<(String, String)> =
            parsed.query_pairs().map(|(k, v)| (k.to_string(), if secret(&k) { "redacted".to_owned() } else { v.into_owned() })).collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

async fn read_body(mut response: reqwest::Response, url: &str) -> Result<Vec<u8>, ClientError> {
    let mut out = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| unreachable(url, &e))? {
        if out.len() + chunk.len() > MAX_REPLY_BYTES {
            return Err(ClientError::Protocol(format!("reply larger than {MAX_REPLY_BYTES} bytes")));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// The response with id `expect_id` in a single message or a batch.
fn find_reply(value: Value, expect_id: Option<u64>) -> Result<Option<Message>, ClientError> {
    let messages: Vec<Message> = match value {
        Value::Array(items) => items.into_iter().filter_map(|v| serde_json::from_value(v).ok()).collect(),
        single => vec![serde_json::from_value(single).map_err(|e| ClientError::Protocol(format!("not a JSON-RPC message ({e})")))?],
    };
    let Some(id) = expect_id else { return Ok(None) };
    messages
        .into_iter()
        .find(|m| m.method.is_none() && m.id.as_ref().and_then(Value::as_u64) == Some(id))
        .map(Some)
        .ok_or_else(|| ClientError::Protocol(format!("no response with id {id} in the reply")))
}

fn rpc_result(reply: Option<Message>) -> Result<Value, ClientError> {
    let reply = reply.ok_or_else(|| ClientError::Protocol("the server sent no response".into()))?;
    if let Some(error) = reply.error {
        return Err(ClientError::Rpc { code: error.code, message: error.message });
    }
    Ok(reply.result.unwrap_or(Value::Null))
}

/// The auth-params of a `WWW-Authenticate: Bearer …` challenge (RFC 6750 §3).
pub fn challenge_params(header: &str) -> Vec<(String, String)> {
    let rest = header.trim();
    let rest = rest.strip_prefix("Bearer").or_else(|| rest.strip_prefix("bearer")).unwrap_or(rest);
    let mut out = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ',' && !c.is_whitespace())).collect();
        if key.is_empty() {
            break;
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next_if_eq(&'=').is_none() {
            continue;
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = std::iter::from_fn(|| chars.next_if(|c| *c != ',')).collect::<String>().trim().to_owned();
        }
        out.push((key.to_ascii_lowercase(), value));
    }
    out
}

fn refused(status: u16, headers: &HeaderMap, body: &[u8]) -> ClientError {
    let params = headers.get(reqwest::header::WWW_AUTHENTICATE).and_then(|v| v.to_str().ok()).map(challenge_params).unwrap_or_default();
    let get = |k: &str| params.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let from_body = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
    ClientError::Refused {
        status,
        error: get("error").or_else(|| from_body("error")),
        description: get("error_description").or_else(|| from_body("error_description")),
        scope: get("scope").or_else(|| from_body("scope")),
        metadata: get("resource_metadata"),
    }
}

/// Credential headers are shown as `<redacted>`; so is any header the caller marked secret.
fn redact_header(name: &HeaderName, value: &HeaderValue, secrets: &[(HeaderName, HeaderValue)]) -> String {
    use reqwest::header::{AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION, SET_COOKIE};
    if secrets.iter().any(|(n, _)| n == name) || [AUTHORIZATION, PROXY_AUTHORIZATION, COOKIE, SET_COOKIE].contains(name) {
        return "<redacted>".into();
    }
    value.to_str().unwrap_or("<binary>").to_owned()
}

/// One debug line on stderr.
pub fn trace(direction: &str, text: &str) {
    for line in text.lines() {
        eprintln!("{direction} {}", crate::validate::escape_controls(line));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_passwords_and_token_parameters() {
        assert_eq!(redact_url("http://u:pw@h/mcp?access_token=abc&x=1"), "http://u:redacted@h/mcp?access_token=redacted&x=1");
        assert_eq!(redact_url("http://127.0.0.1:8000/mcp"), "http://127.0.0.1:8000/mcp");
    }

    #[test]
    fn parses_bearer_challenges() {
        let params = challenge_params(
            r#"Bearer error="insufficient_scope", scope="a b", resource_metadata="http://x/.well-known/oauth-protected-resource/mcp""#,
        );
        assert_eq!(params[0], ("error".into(), "insufficient_scope".into()));
        assert_eq!(params[1], ("scope".into(), "a b".into()));
        assert_eq!(params[2].1, "http://x/.well-known/oauth-protected-resource/mcp");
        assert_eq!(challenge_params("Bearer realm=example"), vec![("realm".to_owned(), "example".to_owned())]);
    }

    #[test]
    fn urls_lose_their_password() {
        assert_eq!(redact_url("http://alice:s3cret@127.0.0.1:1/mcp"), "http://alice:redacted@127.0.0.1:1/mcp");
        assert_eq!(redact_url("http://127.0.0.1:1/mcp"), "http://127.0.0.1:1/mcp");
    }
}
