//! `mcpgen bridge`: a stdio MCP server for hosts that launch commands (newline-delimited
//! JSON-RPC on stdin and stdout, diagnostics on stderr), relaying every message to an MCP server
//! over Streamable HTTP (`relay`) with credentials that follow the profile's files
//! (`credentials`). Messages from the host are relayed concurrently (at most
//! [`MAX_IN_FLIGHT`] at a time); EOF on stdin waits for the replies still in flight, ends the
//! session and returns.

pub mod credentials;
mod relay;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use serde_json::{Value, json};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{Semaphore, mpsc};

use crate::client::McpClient;
use crate::client::target::{self, Request};
use crate::error::Failure;
use crate::mcp::jsonrpc::{INVALID_REQUEST, PARSE_ERROR};
use crate::output::note;
use crate::{net, store, validate};

pub use credentials::{Credentials, Refusal};
use relay::Relay;

/// Largest message accepted from the host.
pub const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;
/// Host messages relayed at once; more wait (the host's writes block) until one finishes.
pub const MAX_IN_FLIGHT: usize = 64;
/// Lines waiting for stdout.
const OUT_QUEUE: usize = 256;

/// What `mcpgen bridge` was asked for.
pub struct Options {
    pub request: Request,
    pub timeout: Duration,
    pub debug: bool,
}

/// Resolve the target, then relay stdin to the server until EOF.
pub fn run(root: &Path, options: Options) -> Result<()> {
    let env = |name: &str| std::env::var(name).ok();
    let (credentials, url) = Credentials::start(root, options.request.clone())?;
    let url = match url {
        Some(url) => url,
        // The token was refused before anything was sent: still start, so the host shows
        // why, and pick up a valid token when one appears.
        None => server_url(root, &options.request)?,
    };
    let oauth = options.request.oauth.as_deref().map(|path| target::oauth_provider(path, &url, &env)).transpose()?;
    let client = McpClient::new(&url, Vec::new(), oauth, options.timeout, options.debug)
        .map_err(|e| Failure::error(format!("cannot start: {e}")))?;
    note(format!("mcpgen bridge: relaying stdio to {}", net::redact_url(&url)));
    if let Err(refusal) = credentials.current() {
        note(format!("mcpgen bridge: error: {}", validate::escape_controls(&refusal.message)));
        if let Some(hint) = refusal.hint {
            note(format!("mcpgen bridge: hint: {}", validate::escape_controls(&hint)));
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(serve(client, credentials, options.timeout, options.debug, BufReader::new(tokio::io::stdin()), tokio::io::stdout()))
}

/// The server URL when the token choice failed: `--url`, else the profile's.
fn server_url(root: &Path, request: &Request) -> Result<String> {
    if let Some(url) = &request.url {
        return Ok(url.clone());
    }
    let name = request.profile.as_deref().ok_or_else(|| Failure::usage("no server to call: give a profile or --url"))?;
    Ok(store::open(root, name, store::Access::Read)?.profile.server_url)
}

/// Relay messages read from `input` until EOF (or SIGTERM/SIGINT), replies going to `output`.
async fn serve(
    client: McpClient,
    credentials: Credentials,
    timeout: Duration,
    debug: bool,
    mut input: impl AsyncBufRead + Unpin,
    output: impl tokio::io::AsyncWrite + Unpin + Send + 'static,
) -> Result<()> {
    let (out, lines) = mpsc::channel::<String>(OUT_QUEUE);
    let writer = tokio::spawn(write_lines(lines, output));
    let relay = Relay::new(client, credentials, out.clone(), debug);
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut buffer = Vec::new();
    let mut stop = Stop::new()?;
    loop {
        let line = tokio::select! {
            line = read_line(&mut input, &mut buffer) => line?,
            _ = stop.requested() => break,
        };
        let Some(too_long) = line else { break };
        if too_long {
            let _ = out.send(error_reply(Value::Null, PARSE_ERROR, &format!("message longer than {MAX_LINE_BYTES} bytes"))).await;
            continue;
        }
        let Ok(text) = std::str::from_utf8(&buffer) else {
            let _ = out.send(error_reply(Value::Null, PARSE_ERROR, "message is not UTF-8")).await;
            continue;
        };
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        let message: Value = match serde_json::from_str(text) {
            Ok(m @ Value::Object(_)) => m,
            Ok(_) => {
                let _ = out.send(error_reply(Value::Null, INVALID_REQUEST, "expected one JSON-RPC message (an object)")).await;
                continue;
            }
            Err(e) => {
                let _ = out.send(error_reply(Value::Null, PARSE_ERROR, &format!("invalid JSON: {e}"))).await;
                continue;
            }
        };
        let method = message.get("method").and_then(Value::as_str);
        // The handshake is relayed in order: the session must exist before anything else.
        if matches!(method, Some(crate::mcp::method::INITIALIZE) | Some(crate::mcp::method::INITIALIZED)) {
            // Wait for everything before it to settle first.
            let all = in_flight.acquire_many(MAX_IN_FLIGHT as u32).await?;
            relay.relay(text, &message).await;
            drop(all);
            continue;
        }
        let permit = Arc::clone(&in_flight).acquire_owned().await?;
        let relay = Arc::clone(&relay);
        let text = text.to_owned();
        tokio::spawn(async move {
            relay.relay(&text, &message).await;
            drop(permit);
        });
    }
    // Replies still in flight reach the host before the session ends; each is bounded by the
    // request timeout, so this wait is too.
    let _ = tokio::time::timeout(timeout + Duration::from_secs(1), in_flight.acquire_many(MAX_IN_FLIGHT as u32)).await;
    relay.close().await;
    drop(relay);
    drop(out);
    let _ = writer.await;
    Ok(())
}

/// SIGTERM or SIGINT: end the session as EOF would.
struct Stop {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Stop {
    fn new() -> Result<Stop> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Stop { term: signal(SignalKind::terminate())?, int: signal(SignalKind::interrupt())? })
    }

    async fn requested(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

/// Write each line and a newline; flush when no more are waiting.
async fn write_lines(mut lines: mpsc::Receiver<String>, mut output: impl tokio::io::AsyncWrite + Unpin) {
    while let Some(line) = lines.recv().await {
        let mut batch = line.into_bytes();
        batch.push(b'\n');
        while let Ok(more) = lines.try_recv() {
            batch.extend_from_slice(more.as_bytes());
            batch.push(b'\n');
        }
        if output.write_all(&batch).await.is_err() || output.flush().await.is_err() {
            // The host closed our stdout: nothing more can reach it.
            return;
        }
    }
}

/// The next line into `buffer` (without its newline): `None` at EOF, `Some(true)` for a line
/// longer than [`MAX_LINE_BYTES`] (skipped whole, never held).
async fn read_line(input: &mut (impl AsyncBufRead + Unpin), buffer: &mut Vec<u8>) -> std::io::Result<Option<bool>> {
    buffer.clear();
    let mut too_long = false;
    loop {
        let available = input.fill_buf().await?;
        if available.is_empty() {
            return Ok(if buffer.is_empty() && !too_long { None } else { Some(too_long) });
        }
        let (take, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (i, true),
            None => (available.len(), false),
        };
        if !too_long {
            buffer.extend_from_slice(&available[..take]);
            if buffer.len() > MAX_LINE_BYTES {
                too_long = true;
                buffer.clear();
            }
        }
        input.consume(if done { take + 1 } else { take });
        if done {
            return Ok(Some(too_long));
        }
    }
}

fn error_reply(id: Value, code: i64, message: &str) -> String {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": format!("mcpgen bridge: {message}")}}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_are_split_bounded_and_end_at_eof() {
        let long = "x".repeat(MAX_LINE_BYTES + 10);
        let input = format!("{{\"a\":1}}\n{long}\nlast");
        let mut reader = BufReader::with_capacity(4096, input.as_bytes());
        let mut buffer = Vec::new();
        assert_eq!(read_line(&mut reader, &mut buffer).await.unwrap(), Some(false));
        assert_eq!(buffer, b"{\"a\":1}");
        assert_eq!(read_line(&mut reader, &mut buffer).await.unwrap(), Some(true));
        assert!(buffer.capacity() <= MAX_LINE_BYTES * 2, "the long line is not kept");
        assert_eq!(read_line(&mut reader, &mut buffer).await.unwrap(), Some(false));
        assert_eq!(buffer, b"last");
        assert_eq!(read_line(&mut reader, &mut buffer).await.unwrap(), None);
    }
}
