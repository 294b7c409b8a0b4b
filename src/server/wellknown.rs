//! The documents next to `/mcp`: RFC 9728 protected-resource metadata (how a client learns
//! which authorization server and scopes apply) and the profile's public keys as a JWKS.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use crate::server::router::{AppState, json_response};

/// RFC 9728 protected-resource metadata.
pub async fn metadata(State(state): State<Arc<AppState>>) -> Response {
    let live = state.shared.get();
    let sa = &live.settings.sa;
    let mut doc = json!({
        "resource": state.resource(&live),
        "bearer_methods_supported": sa.bearer_methods_supported,
        "scopes_supported": live.settings.scopes_supported,
        "resource_name": format!("mcpgen {}", live.profile),
    });
    let jwks_uri = match (&sa.jwks_uri, sa.mode) {
        (Some(uri), crate::config::Mode::Oauth) => uri.clone(),
        _ => format!("{}/.well-known/jwks.json", state.public(&live).0),
    };
    doc["jwks_uri"] = json!(jwks_uri);
    let mut servers = sa.authorization_servers.clone();
    if servers.is_empty()
        && let Some(iss) = sa.issuer.as_deref().filter(|i| i.starts_with("https://") || i.starts_with("http://"))
    {
        servers.push(iss.to_owned());
    }
    if !servers.is_empty() {
        doc["authorization_servers"] = json!(servers);
    }
    for (key, value) in [
        ("resource_documentation", &sa.resource_documentation),
        ("resource_policy_uri", &sa.resource_policy_uri),
        ("revocation_endpoint", &sa.revocation_endpoint),
        ("introspection_endpoint", &sa.introspection_endpoint),
        ("client_id", &sa.client_id),
    ] {
        if let Some(value) = value {
            doc[key] = json!(value);
        }
    }
    // client_secret is configuration for the proxy, never published.
    json_response(StatusCode::OK, &doc)
}

/// The profile's public keys: current and those still in a grace period.
pub async fn jwks(State(state): State<Arc<AppState>>) -> Response {
    let live = state.shared.get();
    let keys: Vec<Value> = live.keys.iter().filter_map(|k| k.ed25519().map(|key| key.jwk())).collect();
    let mut response = json_response(StatusCode::OK, &json!({"keys": keys}));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=60"));
    response
}
