//! The server's tool catalogue: OpenAPI operations as MCP tools, and their execution — an HTTP
//! request to the downstream API, or the spec's example in mock mode. Every failure of the
//! downstream (status, timeout, bad JSON) becomes a tool result with `isError: true`.
//!
//! Text from the spec (descriptions, titles) is untrusted: control, C1 and bidirectional
//! formatting characters in it are escaped when the descriptors are built, so a client that
//! prints them cannot be driven or misled. Path parameters that are dot segments (`.`, `..`,
//! also percent-encoded) are refused as invalid arguments: encoded or not, a URL resolver or
//! the downstream treats them as "this" or "parent" folder, leaving the tool's path.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::openapi::{Location, Operation, Spec};

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
        let client = reqwest::Client::builder().timeout(timeout).redirect(reqwest::redirect::Policy::limited(3)).build()?;
        Ok(Backend::Downstream { base, client })
    }

    pub fn describe(&self) -> String {
        match self {
            Backend::Mock => "mock (spec examples)".into(),
            Backend::Downstream { base, .. } => crate::net::redact_url(base.as_str()),
        }
    }
}

pub struct Tool {
    pub op: Operation,
    /// The `tools/list` entry.
    pub descriptor: Value,
}

pub struct ToolSet {
    pub tools: Vec<Tool>,
    index: HashMap<String, usize>,
    backend: Backend,
}

impl ToolSet {
    pub fn new(spec: &Spec, allowed_methods: &[String], backend: Backend) -> ToolSet {
        let tools: Vec<Tool> = spec
            .operations(allowed_methods)
            .into_iter()
            .map(|op| {
                let descriptor = json!({
                    "name": crate::validate::escape_controls(&op.name),
                    "description": crate::validate::escape_controls(&op.description),
                    "inputSchema": escape_descriptions(&op.input_schema),
                    "annotations": {"readOnlyHint": op.method == "GET", "openWorldHint": true},
                });
                Tool { op, descriptor }
            })
            .collect();
        let index = tools.iter().enumerate().map(|(i, t)| (t.op.name.clone(), i)).collect();
        ToolSet { tools, index, backend }
    }

    pub fn get(&self, name: &str) -> Option<&Tool> {
        self.index.get(name).map(|&i| &self.tools[i])
    }

    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// Run a tool; the `CallToolResult`. `structured` adds `structuredContent` (2025-06-18+).
    pub async fn call(&self, tool: &Tool, args: &Map<String, Value>, structured: bool) -> Value {
        if let Err(message) = check_arguments(&tool.op, args) {
            return error_result(message);
        }
        match &self.backend {
            Backend::Mock => match &tool.op.example {
                Some(example) => success_result(example.clone(), structured),
                None => success_result(
                    json!({"mock": true, "message": format!("the spec has no example response for {}", tool.op.name)}),
                    structured,
                ),
            },
            Backend::Downstream { base, client } => match call_downstream(client, base, &tool.op, args).await {
                Ok(value) => success_result(value, structured),
                Err(message) => error_result(message),
            },
        }
    }
}

/// The schema with every `description` and `title` string escaped (other strings — enums,
/// patterns, defaults — are data and stay as they are).
fn escape_descriptions(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::String(text) if k == "description" || k == "title" => Value::String(crate::validate::escape_controls(text)),
                        other => escape_descriptions(other),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(escape_descriptions).collect()),
        other => other.clone(),
    }
}

/// `.` or `..` once percent-decoded (up to three times, for downstreams that decode again).
fn is_dot_segment(value: &str) -> bool {
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

/// Required arguments present, no unknown ones, scalars where parameters are expected, and no
/// path parameter that is a dot segment.
fn check_arguments(op: &Operation, args: &Map<String, Value>) -> Result<(), String> {
    for param in &op.params {
        match args.get(&param.name) {
            None | Some(Value::Null) if param.required => return Err(format!("missing required argument {:?}", param.name)),
            Some(Value::Object(_)) if param.location == Location::Path => {
                return Err(format!("argument {:?} must be a string or number", param.name));
            }
            Some(value) if param.location == Location::Path && is_dot_segment(&scalar(value)) => {
                return Err(format!("argument {:?} must not be \".\" or \"..\" (it would leave the tool's path)", param.name));
            }
            _ => {}
        }
    }
    if op.has_body
        && args.get("body").is_none()
        && op.input_schema.get("required").and_then(Value::as_array).is_some_and(|r| r.iter().any(|v| v == "body"))
    {
        return Err("missing required argument \"body\"".into());
    }
    if let Some(unknown) = args.keys().find(|k| !(op.params.iter().any(|p| &p.name == *k) || (op.has_body && *k == "body"))) {
        return Err(format!("unknown argument {unknown:?}"));
    }
    Ok(())
}

/// A scalar as it goes into a path, query or header.
fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

async fn call_downstream(client: &reqwest::Client, base: &url::Url, op: &Operation, args: &Map<String, Value>) -> Result<Value, String> {
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
                let encoded = percent_encoding::utf8_percent_encode(&value, percent_encoding::NON_ALPHANUMERIC).to_string();
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
    let response = request.send().await.map_err(|e| {
        if e.is_timeout() {
            format!("downstream {method} {} timed out", url.path())
        } else {
            format!("downstream {method} {} failed: {}", url.path(), describe_reqwest(&e))
        }
    })?;
    let status = response.status();
    let bytes = read_limited(response).await.map_err(|e| format!("downstream {method} {}: {e}", url.path()))?;
    if !status.is_success() {
        let snippet: String = String::from_utf8_lossy(&bytes).chars().take(500).collect();
        return Err(format!("downstream {method} {} returned {status}: {}", url.path(), crate::validate::printable(snippet.trim())));
    }
    if bytes.is_empty() {
        return Ok(json!({"status": status.as_u16()}));
    }
    serde_json::from_slice(&bytes).map_err(|e| format!("downstream {method} {} replied with invalid JSON ({e})", url.path()))
}

async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| describe_reqwest(&e))? {
        if out.len() + chunk.len() > MAX_DOWNSTREAM_BYTES {
            return Err(format!("reply larger than {MAX_DOWNSTREAM_BYTES} bytes"));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// The innermost cause of a reqwest error ("connection refused", not just "error sending request").
pub fn describe_reqwest(e: &reqwest::Error) -> String {
    let mut source: &dyn std::error::Error = e;
    while let Some(next) = source.source() {
        source = next;
    }
    let inner = source.to_string();
    let outer = e.to_string();
    let text = if inner == outer { inner } else { format!("{outer}: {inner}") };
    // reqwest names the URL, which may carry credentials.
    match e.url() {
        Some(url) => text.replace(url.as_str(), &crate::net::redact_url(url.as_str())),
        None => text,
    }
}

/// A successful result: pretty JSON text plus `structuredContent` (objects as they are, other
/// values wrapped as `{"result": …}` because MCP requires an object there).
pub fn success_result(value: Value, structured: bool) -> Value {
    let text = serde_json::to_string_pretty(&value).unwrap_or_default();
    let mut result = json!({"content": [{"type": "text", "text": text}], "isError": false});
    if structured {
        result["structuredContent"] = if value.is_object() { value } else { json!({"result": value}) };
    }
    result
}

pub fn error_result(message: String) -> Value {
    json!({"content": [{"type": "text", "text": message}], "isError": true})
}
