//! Reading a refusal: the auth-params of a `WWW-Authenticate: Bearer …` challenge (RFC 6750
//! §3, RFC 9728 `resource_metadata`) and the JSON error body some servers send instead.

use reqwest::header::HeaderMap;
use serde_json::Value;

use crate::client::ClientError;

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

/// A 401/403 as [`ClientError::Refused`]: the challenge's parameters, else the body's.
pub fn refused(status: u16, headers: &HeaderMap, body: &[u8]) -> ClientError {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
