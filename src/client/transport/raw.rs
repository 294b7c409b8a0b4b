//! Raw exchanges for a relay (`client::bridge`): the caller owns the session and protocol
//! version and decodes the reply itself; [`McpClient::send_raw`] adds the credentials and the
//! same 401, 404 and 429 handling as the client's own requests.

use std::time::{Duration, Instant};

use reqwest::header::{HeaderName, HeaderValue};

use super::{ClientError, MAX_REPLY_BYTES, McpClient, Retried, rate_limited, redact_header, unreachable};
use crate::client::challenge;
use crate::logging::trace;
use crate::mcp;
use crate::net;

/// Raw exchanges for a relay (`client::bridge`): the caller owns the session and protocol
/// version and decodes the reply itself; this adds the credentials (the fixed headers, `extra`
/// ones the caller chose for this request, a fresh OAuth token) and retries as the client's own
/// requests do (a short rate limit, a refused OAuth token).
impl McpClient {
    /// The MCP endpoint.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Send `method` (POST with a JSON body, GET for the server's stream, DELETE to end a
    /// session); a 401 or 403 comes back as [`ClientError::Refused`], a 404 to a request that
    /// carried a session as [`ClientError::SessionGone`], anything else as the response.
    /// `timeout` replaces the client's for this request (the GET stream lives long).
    pub async fn send_raw(&self, raw: &RawRequest<'_>, extra: &[(HeaderName, HeaderValue)]) -> Result<reqwest::Response, ClientError> {
        let mut retried = Retried::default();
        loop {
            match self.send_raw_once(raw, extra).await {
                Err(e) if self.retry_once(&e, &mut retried).await => continue,
                other => return other,
            }
        }
    }

    async fn send_raw_once(&self, raw: &RawRequest<'_>, extra: &[(HeaderName, HeaderValue)]) -> Result<reqwest::Response, ClientError> {
        let mut request = self.http.request(raw.method.clone(), &self.url);
        request = match raw.body {
            Some(body) => request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(reqwest::header::ACCEPT, "application/json, text/event-stream")
                .body(body.to_owned()),
            None if raw.method == reqwest::Method::GET => request.header(reqwest::header::ACCEPT, "text/event-stream"),
            None => request,
        };
        let mut auth = self.auth_headers().await?;
        auth.extend(extra.iter().cloned());
        for (name, value) in &auth {
            request = request.header(name.clone(), value.clone());
        }
        if let Some(session) = raw.session {
            request = request.header(mcp::SESSION_HEADER, session);
        }
        if let Some(version) = raw.version {
            request = request.header(mcp::VERSION_HEADER, version);
        }
        if let Some(event) = raw.last_event_id {
            request = request.header("last-event-id", event);
        }
        if let Some(timeout) = raw.timeout {
            request = request.timeout(timeout);
        }
        let request = request.build().map_err(|e| ClientError::Protocol(format!("cannot build request: {e}")))?;
        if self.debug {
            trace(">", &format!("{} {}", request.method(), net::redact_url(request.url().as_str())));
            for (name, value) in request.headers() {
                trace(">", &format!("{name}: {}", redact_header(name, value, &auth)));
            }
            if let Some(body) = raw.body {
                trace(">", body);
            }
        }
        let started = Instant::now();
        let response = self.http.execute(request).await.map_err(|e| unreachable(&self.url, &e))?;
        let status = response.status();
        if self.debug {
            trace("<", &format!("{status} ({:.1} ms)", started.elapsed().as_secs_f64() * 1000.0));
            for (name, value) in response.headers() {
                trace("<", &format!("{name}: {}", redact_header(name, value, &[])));
            }
        }
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            let headers = response.headers().clone();
            let text = self.read_body(response).await.unwrap_or_default();
            return Err(challenge::refused(status.as_u16(), &headers, &text));
        }
        if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(rate_limited(response.headers()));
        }
        if status == reqwest::StatusCode::NOT_FOUND && raw.session.is_some() {
            return Err(ClientError::SessionGone);
        }
        Ok(response)
    }

    /// A whole reply body, capped at the client's limit.
    pub async fn read_raw_body(&self, response: reqwest::Response) -> Result<Vec<u8>, ClientError> {
        self.read_body(response).await
    }

    /// The error for a transport failure while reading a reply.
    pub fn unreachable_error(&self, e: &reqwest::Error) -> ClientError {
        unreachable(&self.url, e)
    }
}

/// One raw exchange: see [`McpClient::send_raw`].
#[derive(Debug, Clone)]
pub struct RawRequest<'a> {
    pub method: reqwest::Method,
    pub body: Option<&'a str>,
    pub session: Option<&'a str>,
    pub version: Option<&'a str>,
    pub last_event_id: Option<&'a str>,
    pub timeout: Option<Duration>,
}

/// Largest reply body (JSON) or SSE stream accepted from the server.
pub const MAX_RAW_REPLY_BYTES: usize = MAX_REPLY_BYTES;
