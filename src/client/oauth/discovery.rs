//! Finding the token endpoint when the `--oauth` file names none — the MCP client-credentials
//! flow: the MCP server's RFC 9728 protected-resource metadata names its authorization server;
//! that server's RFC 8414 metadata (or OpenID Connect discovery) names its `token_endpoint` and
//! the client authentication methods it supports. The metadata's `issuer` must be the server
//! we asked (RFC 8414 §3.3), and every document is read with a size cap.
//!
//! The MCP server is not trusted to choose where credentials go: the authorization server it
//! names must be the `issuer` of the `--oauth` file or, when the file names none and a client
//! secret would be sent, be on the MCP server's own origin; and a token endpoint that receives a
//! secret must be https unless it is on loopback. (A `private_key_jwt` assertion names the
//! token endpoint as its audience, so another server cannot replay it.)

use serde_json::Value;

use crate::client::ClientError;
use crate::logging::trace;
use crate::net::{self, redact_url};

const MAX_DOCUMENT_BYTES: usize = 64 * 1024;

/// The token endpoint of the authorization server that protects `server_url`.
pub async fn token_endpoint(
    http: &reqwest::Client,
    server_url: &str,
    expected_issuer: Option<&str>,
    method: &str,
    debug: bool,
) -> Result<String, ClientError> {
    let resource = url::Url::parse(server_url).map_err(|e| ClientError::Protocol(format!("MCP URL: {e}")))?;
    let prm = first_document(http, &well_known(&resource, "oauth-protected-resource"), debug).await.map_err(|why| {
        ClientError::Protocol(format!(
            "no token_url in the --oauth file, and the server's protected-resource metadata could not be read ({why}); set token_url"
        ))
    })?;
    let issuer = prm
        .get("authorization_servers")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(Value::as_str)
        .ok_or_else(|| {
            ClientError::Protocol("the server's protected-resource metadata names no authorization_servers; set token_url".into())
        })?
        .to_owned();
    let issuer_url = crate::validate::http_url(&issuer).map_err(|e| ClientError::Protocol(format!("authorization server: {e}")))?;
    let sends_secret = method != "private_key_jwt";
    match expected_issuer {
        Some(expected) if expected.trim_end_matches('/') != issuer.trim_end_matches('/') => {
            return Err(ClientError::Protocol(format!(
                "the MCP server names authorization server {}, not the issuer {} of the --oauth file; refusing to send credentials there",
                redact_url(&issuer),
                redact_url(expected)
            )));
        }
        None if sends_secret && issuer_url.origin() != resource.origin() => {
            return Err(ClientError::Protocol(format!(
                "the MCP server names authorization server {}, on another origin; set issuer (or token_url) in the --oauth file to trust it with the client secret",
                redact_url(&issuer)
            )));
        }
        _ => {}
    }
    let mut candidates = well_known(&issuer_url, "oauth-authorization-server");
    candidates.extend(well_known(&issuer_url, "openid-configuration"));
    candidates.push(format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/')));
    candidates.dedup();
    let metadata = first_document(http, &candidates, debug).await.map_err(|why| {
        ClientError::Protocol(format!("cannot read the metadata of authorization server {} ({why}); set token_url", redact_url(&issuer)))
    })?;
    if metadata.get("issuer").and_then(Value::as_str).map(|i| i.trim_end_matches('/')) != Some(issuer.trim_end_matches('/')) {
        return Err(ClientError::Protocol(format!(
            "the metadata of authorization server {} names another issuer; refusing it (RFC 8414 §3.3)",
            redact_url(&issuer)
        )));
    }
    if let Some(methods) = metadata.get("token_endpoint_auth_methods_supported").and_then(Value::as_array)
        && !methods.iter().any(|m| m.as_str() == Some(method))
    {
        let offered: Vec<String> = methods.iter().filter_map(Value::as_str).map(crate::validate::printable).collect();
        return Err(ClientError::Protocol(format!(
            "authorization server {} does not accept {method} (it offers {}); set token_endpoint_auth_method",
            redact_url(&issuer),
            offered.join(", ")
        )));
    }
    let endpoint = metadata
        .get("token_endpoint")
        .and_then(Value::as_str)
        .ok_or_else(|| ClientError::Protocol(format!("authorization server {} publishes no token_endpoint", redact_url(&issuer))))?;
    let endpoint_url = crate::validate::http_url(endpoint).map_err(|e| ClientError::Protocol(format!("token_endpoint: {e}")))?;
    if sends_secret && endpoint_url.scheme() != "https" && !crate::net::is_loopback(&endpoint_url) {
        return Err(ClientError::Protocol(format!(
            "the discovered token endpoint {} is not https; refusing to send the client secret in the clear",
            redact_url(endpoint)
        )));
    }
    Ok(endpoint.to_owned())
}

/// `https://host/.well-known/<name>/<path>` (path insertion, RFC 8414 §3.1 and RFC 9728 §3.1),
/// then `https://host/.well-known/<name>` when the URL has a path.
fn well_known(base: &url::Url, name: &str) -> Vec<String> {
    let origin = base.origin().ascii_serialization();
    let path = base.path().trim_end_matches('/');
    let mut out = vec![format!("{origin}/.well-known/{name}{path}")];
    if !path.is_empty() {
        out.push(format!("{origin}/.well-known/{name}"));
    }
    out
}

/// The first of `urls` that answers 200 with a JSON object.
async fn first_document(http: &reqwest::Client, urls: &[String], debug: bool) -> Result<Value, String> {
    let mut last = String::from("no location to try");
    for url in urls {
        if debug {
            trace(">", &format!("GET {}", redact_url(url)));
        }
        let response = match http.get(url).header(reqwest::header::ACCEPT, "application/json").send().await {
            Ok(r) => r,
            Err(e) => {
                last = format!("{}: {}", redact_url(url), net::describe(&e));
                continue;
            }
        };
        let status = response.status();
        if debug {
            trace("<", &status.to_string());
        }
        if !status.is_success() {
            last = format!("{}: HTTP {status}", redact_url(url));
            continue;
        }
        match net::read_capped(response, MAX_DOCUMENT_BYTES).await {
            Ok(body) => match serde_json::from_slice::<Value>(&body) {
                Ok(doc @ Value::Object(_)) => return Ok(doc),
                _ => last = format!("{}: not a JSON object", redact_url(url)),
            },
            Err(e) => last = format!("{}: {e}", redact_url(url)),
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_locations_insert_the_path() {
        let u = url::Url::parse("http://127.0.0.1:8000/mcp").unwrap();
        assert_eq!(
            well_known(&u, "oauth-protected-resource"),
            [
                "http://127.0.0.1:8000/.well-known/oauth-protected-resource/mcp",
                "http://127.0.0.1:8000/.well-known/oauth-protected-resource"
            ]
        );
        let root = url::Url::parse("https://as.example").unwrap();
        assert_eq!(well_known(&root, "oauth-authorization-server"), ["https://as.example/.well-known/oauth-authorization-server"]);
    }
}
