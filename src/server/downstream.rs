//! Where tool calls go: the downstream REST API (a call becomes one HTTP request, with the
//! shared outgoing policy of `crate::net`: timeouts, no redirects, a size cap while reading)
//! or, in mock mode, the spec's examples. Every downstream failure — status, timeout, size,
//! invalid JSON — is a message for the tool result, never a server error.
//!
//! Path parameters that are dot segments (`.`, `..`, also percent-encoded) never reach the
//! URL: encoded or not, a resolver or the downstream treats them as "this" or "parent" folder,
//! leaving the tool's path.

use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::net;
use crate::openapi::{Location, Operation};

/// What is encoded in a path parameter's value: everything but RFC 3986 §2.3's unreserved
/// characters (`A-Z a-z 0-9 - . _ ~`), so `/` and `?` cannot change the path and servers that
/// do not normalise encodings still match their routes. (Dot segments are refused before.)
const PATH_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Largest downstream body read into a result.
const MAX_DOWNSTREAM_BYTES: usize = 4 * 1024 * 1024;

/// Where tool calls go.
#[derive(Clone)]
pub enum Backend {
    /// Answer from the spec's response examples.
    Mock,
    /// Call the REST API at `base`.
    Downstream { base: url::Url, client: reqwest::Client },
}

impl Backend {
    pub fn downstream(base: &str, timeout: Duration) -> anyhow::Result<Backend> {
        let mut base = url::Url::parse(base)?;
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        // The shared policy: timeouts, and no redirects (a 3xx is reported as the tool's error).
        let client = net::Policy::new(timeout, net::is_https(base.as_str())).client()?;
        Ok(Backend::Downstream { base, client })
    }

    pub fn describe(&self) -> String {
        match self {
            Backend::Mock => "mock (spec examples)".into(),
            Backend::Downstream { base, .. } => crate::net::redact_url(base.as_str()),
        }
    }
}

/// `.` or `..` once percent-decoded (up to three times, for downstreams that decode again).
pub fn is_dot_segment(value: &str) -> bool {
    let mut text = value.to_owned();
    for _ in 0..4 {
        if text == "." || text == ".." {
            return true;
        }
        let decoded = percent_encoding::percent_decode_str(&text).decode_utf8_lossy().into_owned();
        if decoded == text {
            return false;
        }
        text = decoded;
    }
    false
}

/// A scalar as it goes into a path, query or header.
pub fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The HTTP request a call becomes, and its JSON reply (or why there is none).
pub async fn call(client: &reqwest::Client, base: &url::Url, op: &Operation, args: &Map<String, Value>) -> Result<Value, String> {
    let mut path = String::new();
    for segment in op.path.trim_start_matches('/').split('/') {
        if !path.is_empty() {
            path.push('/');
        }
        let mut rendered = segment.to_owned();
        for param in op.params.iter().filter(|p| p.location == Location::Path) {
            let placeholder = format!("{{{}}}", param.name);
            if rendered.contains(&placeholder) {
                let value = args.get(&param.name).map(scalar).unwrap_or_default();
                let encoded = percent_encoding::utf8_percent_encode(&value, PATH_VALUE).to_string();
                rendered = rendered.replace(&placeholder, &encoded);
            }
        }
        // Two parameters in one segment can still make a dot segment together.
        if rendered != segment && is_dot_segment(&rendered) {
            return Err(format!("path segment {:?} of {} is a dot segment", crate::validate::printable(&rendered), op.path));
        }
        path.push_str(&rendered);
    }
    let mut url = base.join(&path).map_err(|e| format!("cannot build the downstream URL: {e}"))?;
    {
        let mut pairs = url.query_pairs_mut();
        for param in op.params.iter().filter(|p| p.location == Location::Query) {
            match args.get(&param.name) {
                Some(Value::Array(items)) => {
                    for item in items {
                        pairs.append_pair(&param.name, &scalar(item));
                    }
                }
                Some(Value::Null) | None => {}
                Some(value) => {
                    pairs.append_pair(&param.name, &scalar(value));
                }
            }
        }
    }
    if url.query() == Some("") {
        url.set_query(None);
    }
    let method = reqwest::Method::from_bytes(op.method.as_bytes()).map_err(|_| format!("unsupported method {}", op.method))?;
    let mut request = client.request(method.clone(), url.clone()).header("accept", "application/json");
    for param in op.params.iter().filter(|p| p.location == Location::Header) {
        if let Some(value) = args.get(&param.name) {
            request = request.header(param.name.as_str(), scalar(value));
        }
    }
    if let Some(body) = args.get("body") {
        request = request.json(body);
    }
    let response = request.send().await.map_err(|e| match e.is_timeout() {
        true => format!("downstream {method} {} timed out", url.path()),
        false => format!("downstream {method} {} failed: {}", url.path(), net::describe(&e)),
    })?;
    let status = response.status();
    let bytes = net::read_capped(response, MAX_DOWNSTREAM_BYTES).await.map_err(|e| format!("downstream {method} {}: {e}", url.path()))?;
    if !status.is_success() {
        let snippet: String = String::from_utf8_lossy(&bytes).chars().take(500).collect();
        return Err(format!("downstream {method} {} returned {status}: {}", url.path(), crate::validate::printable(snippet.trim())));
    }
    if bytes.is_empty() {
        return Ok(json!({"status": status.as_u16()}));
    }
    serde_json::from_slice(&bytes).map_err(|e| format!("downstream {method} {} replied with invalid JSON ({e})", url.path()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_values_keep_unreserved_characters_and_encode_the_rest() {
        let encoded = percent_encoding::utf8_percent_encode("ord-1001_a.b~c/../x?y=1 %", PATH_VALUE).to_string();
        assert_eq!(encoded, "ord-1001_a.b~c%2F..%2Fx%3Fy%3D1%20%25");
        assert!(is_dot_segment("%2e%2E") && is_dot_segment("%252e") && !is_dot_segment("a.b"));
    }
}
