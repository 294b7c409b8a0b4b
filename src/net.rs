//! What the client and the server share about HTTP: one policy for every outgoing request (the
//! MCP client, the OAuth token endpoint, the JWKS fetch, the downstream REST API), URL redaction,
//! error descriptions, and reading a peer's body with a size cap applied while reading.
//!
//! The policy: a total timeout and a connect timeout on every request, no redirects (a redirect
//! would carry the service-account header or a client secret to whatever host it names; a 3xx
//! is reported as such), and the system's root certificates loaded only when an `https` peer
//! is expected (loading them costs about a third of a short `client` run).

use std::time::Duration;

/// Install the process-wide TLS provider (ring) once; reqwest is built without one so the
/// binary does not carry two crypto stacks.
pub fn init_tls() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// How one outgoing HTTP client behaves.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Whole exchange: connect, send, and the response head and body.
    pub timeout: Duration,
    /// Whether an `https` peer is expected (loads the system's root certificates).
    pub tls: bool,
}

impl Policy {
    pub fn new(timeout: Duration, tls: bool) -> Self {
        Policy { timeout, tls }
    }

    /// The client for this policy. Building fails only when the TLS stack cannot start; the
    /// caller reports that instead of silently falling back to a client without timeouts.
    pub fn client(&self) -> Result<reqwest::Client, reqwest::Error> {
        init_tls();
        let mut builder = reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("mcpgen/", env!("CARGO_PKG_VERSION")));
        if !self.tls {
            builder = builder.tls_certs_only(Vec::new());
        }
        builder.build()
    }
}

/// Whether `url` needs TLS.
pub fn is_https(url: &str) -> bool {
    url.get(..6).is_some_and(|s| s.eq_ignore_ascii_case("https:"))
}

/// Whether `url` names this machine (`localhost` or a loopback address).
pub fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// The URL with its credentials replaced, for messages, logs and traces: the password — or the
/// user name when it stands alone, which is how tokens ride in URLs (`https://ghp_…@host/`) —
/// and every query parameter whose name suggests a secret. A text that does not parse as a URL
/// is not shown at all.
pub fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else { return "<not a URL>".to_owned() };
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some("redacted"));
    } else if !parsed.username().is_empty() {
        let _ = parsed.set_username("redacted");
    }
    // Implicit-flow style fragments (`#access_token=…`) carry credentials too.
    if parsed.fragment().is_some_and(|f| f.contains('=')) {
        parsed.set_fragment(Some("redacted"));
    }
    if parsed.query_pairs().any(|(k, _)| secret_parameter(&k)) {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| (k.to_string(), if secret_parameter(&k) { "redacted".to_owned() } else { v.into_owned() }))
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    crate::validate::escape_controls(parsed.as_str())
}

/// Query parameter names that carry credentials: tokens, secrets, keys, signatures, passwords,
/// authorization codes (`access_token`, `apikey`, `X-Amz-Signature`, `sig`, `code`, …).
fn secret_parameter(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["token", "secret", "key", "sig", "pass", "auth", "credential", "session"].iter().any(|s| name.contains(s)) || name == "code"
}

/// The innermost cause of a reqwest error ("connection refused", not just "error sending
/// request"), with any URL in it redacted; "timed out" for a timeout.
pub fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "timed out".to_owned();
    }
    let mut source: &dyn std::error::Error = e;
    while let Some(next) = source.source() {
        source = next;
    }
    let inner = source.to_string();
    let outer = e.to_string();
    let text = if inner == outer { inner } else { format!("{outer}: {inner}") };
    let text = match e.url() {
        Some(url) => text.replace(url.as_str(), &redact_url(url.as_str())),
        None => text,
    };
    crate::validate::escape_controls(&text)
}

/// Why a body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("reply larger than {0} bytes")]
    TooLarge(usize),
    #[error("{}", describe(.0))]
    Transport(reqwest::Error),
}

/// Read a whole body, refusing it as soon as it grows past `cap` bytes (a hostile peer cannot
/// make us buffer more than `cap`, whatever its `Content-Length` says).
pub async fn read_capped(mut response: reqwest::Response, cap: usize) -> Result<Vec<u8>, ReadError> {
    if response.content_length().is_some_and(|n| n > cap as u64) {
        return Err(ReadError::TooLarge(cap));
    }
    let mut out = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(ReadError::Transport)? {
        if out.len() + chunk.len() > cap {
            return Err(ReadError::TooLarge(cap));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_passwords_and_token_parameters() {
        assert_eq!(redact_url("http://u:pw@h/mcp?access_token=abc&x=1"), "http://u:redacted@h/mcp?access_token=redacted&x=1");
        assert_eq!(redact_url("http://alice:s3cret@127.0.0.1:1/mcp"), "http://alice:redacted@127.0.0.1:1/mcp");
        assert_eq!(redact_url("http://127.0.0.1:8000/mcp"), "http://127.0.0.1:8000/mcp");
        assert_eq!(redact_url("not a url \u{1b}[2J"), "<not a URL>");
        assert_eq!(redact_url("http://h/mcp#access_token=FRAG"), "http://h/mcp#redacted");
        assert_eq!(
            redact_url("https://ghp_SECRET@api.example/v1?apikey=AK&X-Amz-Signature=SIG&sig=S&code=C&page=2"),
            "https://redacted@api.example/v1?apikey=redacted&X-Amz-Signature=redacted&sig=redacted&code=redacted&page=2"
        );
    }

    #[test]
    fn https_detection() {
        assert!(is_https("HTTPS://x"));
        assert!(!is_https("http://x"));
        assert!(!is_https("htt"));
    }
}
