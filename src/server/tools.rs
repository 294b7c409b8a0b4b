//! The server's tool catalogue: OpenAPI operations as MCP tools (their `tools/list` entries),
//! the check of a call's arguments, and its execution through the `downstream` backend. Every
//! failure becomes a tool result with `isError: true`.
//!
//! Text from the spec (names, descriptions, titles) is untrusted: control, C1 and bidirectional
//! formatting characters in it are escaped when the descriptors are built, so a client that
//! prints them cannot be driven or misled. Path parameters that are dot segments are refused
//! as invalid arguments (see `downstream`).

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use crate::mcp::messages::{CallToolResult, Tool as Descriptor};
use crate::openapi::{Location, Operation, Spec};
use crate::server::downstream::{self, Backend, is_dot_segment, scalar};

pub struct Tool {
    pub op: Operation,
    /// The `tools/list` entry.
    pub descriptor: Descriptor,
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
                let descriptor = Descriptor {
                    name: crate::validate::escape_controls(&op.name),
                    description: Some(crate::validate::escape_controls(&op.description)),
                    input_schema: escape_descriptions(&op.input_schema),
                    annotations: Some(json!({"readOnlyHint": op.method == "GET", "openWorldHint": true})),
                    ..Descriptor::default()
                };
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
    pub async fn call(&self, tool: &Tool, args: &Map<String, Value>, structured: bool) -> CallToolResult {
        if let Err(message) = check_arguments(&tool.op, args) {
            return CallToolResult::failure(message);
        }
        match &self.backend {
            Backend::Mock => match self.mock_example(tool, args) {
                Some(example) => CallToolResult::success(example.clone(), structured),
                None => CallToolResult::success(
                    json!({"mock": true, "message": format!("the spec has no example response for {}", tool.op.name)}),
                    structured,
                ),
            },
            Backend::Downstream { base, client } => match downstream::call(client, base, &tool.op, args).await {
                Ok(value) => CallToolResult::success(value, structured),
                Err(message) => CallToolResult::failure(message),
            },
        }
    }
}

impl ToolSet {
    /// The example mock mode answers with: for a path argument's value, the named example of
    /// that name, else an example object whose `id` (or a field named like the parameter)
    /// holds it — this tool's, or an item of another tool's list example (`getOrder` finds the
    /// order in `getOrders`'s example); else the first example.
    fn mock_example<'a>(&'a self, tool: &'a Tool, args: &Map<String, Value>) -> Option<&'a Value> {
        let keys: Vec<(&str, String)> = tool
            .op
            .params
            .iter()
            .filter(|p| p.location == Location::Path)
            .filter_map(|p| args.get(&p.name).map(|v| (p.name.as_str(), scalar(v))))
            .collect();
        if keys.is_empty() {
            return tool.op.example.as_ref();
        }
        let matches = |value: &Value| {
            keys.iter().any(|(name, key)| {
                [*name, "id"].iter().any(|field| value.get(*field).is_some_and(|v| !v.is_object() && !v.is_array() && scalar(v) == *key))
            })
        };
        if let Some((_, value)) = tool.op.named_examples.iter().find(|(name, _)| keys.iter().any(|(_, key)| name == key)) {
            return Some(value);
        }
        let own = tool.op.example.iter().chain(tool.op.named_examples.iter().map(|(_, v)| v));
        if let Some(found) = own.clone().find(|v| matches(v)) {
            return Some(found);
        }
        // An item of a list example, for a tool that answers one object.
        if own.clone().all(Value::is_object) {
            let lists = self
                .tools
                .iter()
                .filter(|t| t.op.method == "GET")
                .flat_map(|t| t.op.example.iter().chain(t.op.named_examples.iter().map(|(_, v)| v)));
            if let Some(found) = lists.filter_map(Value::as_array).flatten().find(|v| matches(v)) {
                return Some(found);
            }
        }
        tool.op.example.as_ref()
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
