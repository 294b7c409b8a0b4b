//! Probes and metrics for the platform that runs the server, beside `/mcp` and without
//! authentication (they carry no token, client id or file content):
//! - `GET /healthz`: 200 while the process serves requests at all (liveness).
//! - `GET /readyz`: 200 when the configuration and keys are loaded — in `mode: "oauth"` with a
//!   `jwks_uri`, when the last JWKS fetch succeeded (one is made if the keys are stale) — and
//!   no drain has begun; 503 otherwise, with the reasons in the body.
//! - `GET /metrics`: the Prometheus text exposition of `metrics` when `server.metrics.enabled`
//!   is on; 404 when it is off.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::config::Mode;
use crate::server::router::{AppState, json_response};

pub async fn healthz() -> Response {
    json_response(StatusCode::OK, &json!({"status": "ok"}))
}

pub async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let live = state.shared.get();
    let sa = &live.settings.sa;
    let mut problems: Vec<String> = Vec::new();
    if state.shared.draining.load(Ordering::Relaxed) {
        problems.push("draining".into());
    }
    if sa.enabled {
        match (&live.jwks, sa.mode) {
            (Some(jwks), Mode::Oauth) => {
                // Stale keys are fetched again here (at most once a second).
                let keys = jwks.keys().await;
                if !jwks.reachable() {
                    problems.push("the JWKS is not reachable".into());
                } else if keys.is_empty() && live.keys.is_empty() {
                    problems.push("the JWKS has no usable key".into());
                }
            }
            _ if live.keys.is_empty() && live.introspection.is_none() => problems.push("no verification key is loaded".into()),
            _ => {}
        }
    }
    if problems.is_empty() {
        json_response(StatusCode::OK, &json!({"status": "ready"}))
    } else {
        json_response(StatusCode::SERVICE_UNAVAILABLE, &json!({"status": "not ready", "reasons": problems}))
    }
}

pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let live = state.shared.get();
    if !live.settings.metrics.enabled {
        return json_response(StatusCode::NOT_FOUND, &json!({"error": "not found"}));
    }
    let body = crate::server::metrics::render(&live.settings.metrics.expose);
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response()
}
