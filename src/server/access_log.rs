//! The access log: one line per `/mcp` request on stderr — method, JSON-RPC method, tool,
//! client, status, latency and, for a 401/403, why (`refused=invalid_token: token expired at …`,
//! from the [`Refused`] extension that `auth` and the Origin check put on the response) — and
//! the one function every server diagnostic goes through.
//! Everything taken from a request or a file is escaped here, so no input can forge a line or
//! drive the terminal reading the log; tokens are never part of a line.

use std::time::Instant;

use axum::response::Response;

/// Why a request was refused, as the operator reads it: the OAuth error code and what was
/// wrong, never the token. Carried on the 401/403 response as an extension.
#[derive(Debug, Clone)]
pub struct Refused(pub String);

/// Per-request facts for the access log.
pub struct LogLine {
    started: Instant,
    method: &'static str,
    pub rpc: String,
    pub tool: String,
    pub client: String,
}

impl LogLine {
    pub fn new(method: &'static str) -> Self {
        LogLine { started: Instant::now(), method, rpc: "-".into(), tool: "-".into(), client: "-".into() }
    }

    /// Log the request (when `enabled`) and pass its response on.
    pub fn finish(self, enabled: bool, response: Response) -> Response {
        if enabled {
            let refused = match response.extensions().get::<Refused>() {
                Some(Refused(why)) => format!(" refused={}", crate::validate::printable(why)),
                None => String::new(),
            };
            log_line(&format!(
                "{} /mcp {} {} client={} {} {:.2}ms{refused}",
                self.method,
                crate::validate::printable(&self.rpc),
                crate::validate::printable(&self.tool),
                crate::validate::printable(&self.client),
                response.status().as_u16(),
                self.started.elapsed().as_secs_f64() * 1000.0
            ));
        }
        response
    }
}

/// One log line on stderr with a UTC timestamp. Control and bidirectional characters are
/// escaped here, whatever the caller built the line from (request fields, file contents quoted
/// in parse errors), so no input can forge a line or drive the terminal reading the log.
pub fn log_line(text: &str) {
    tracing::info!("{}", crate::validate::escape_controls(text));
}
