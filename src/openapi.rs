//! OpenAPI 3.0/3.1 documents (JSON or YAML) turned into MCP tools.
//!
//! One tool per operation whose method the routing allows. The tool's `inputSchema` is an object
//! whose properties are the operation's path, query and header parameters plus `body` for a JSON
//! request body; local `$ref`s (`#/...`) are resolved with a depth limit so cyclic schemas cannot
//! loop. Scopes come from the operation's (or the document's) `security` requirements.
//!
//! A spec is untrusted input that every reload parses again, so its cost is bounded: at most
//! [`MAX_SPEC_BYTES`], nesting bounded (see `crate::document`), and `$ref` inlining at most [`MAX_INLINED_PER_TOOL`] nodes per tool
//! and [`MAX_INLINED_TOTAL`] per spec (references that fan out, each level naming the previous
//! one many times, grow exponentially); past the budget a schema becomes `{}` (any value).

use std::collections::BTreeSet;

use anyhow::{Result, bail};
use serde_json::{Map, Value, json};

/// The sample served when a profile has no spec of its own.
pub const SAMPLE_YAML: &str = include_str!("sample_openapi.yaml");
/// Scopes of the `default` token of a profile made from the sample: everything but
/// `customers.read`, so the demo can show a refusal.
pub const SAMPLE_DEFAULT_SCOPES: [&str; 2] = ["orders.read", "products.read"];

const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
/// Deepest `$ref` chain followed; deeper (or cyclic) references become `{}` (any value).
const MAX_REF_DEPTH: usize = 32;
/// Largest spec, in bytes.
pub const MAX_SPEC_BYTES: usize = 8 * 1024 * 1024;
/// JSON nodes `$ref` inlining may produce for one tool (its input schema and example)...
pub const MAX_INLINED_PER_TOOL: usize = 20_000;
/// ...and for all tools of a spec together.
pub const MAX_INLINED_TOTAL: usize = 250_000;

/// A parsed OpenAPI document.
#[derive(Debug, Clone)]
pub struct Spec {
    doc: Value,
}

/// Where a parameter goes in the HTTP request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    Path,
    Query,
    Header,
}

#[derive(Debug, Clone)]
pub struct Param {
    pub name: String,
    pub location: Location,
    pub required: bool,
}

/// One operation, ready to be a tool.
#[derive(Debug, Clone)]
pub struct Operation {
    pub name: String,
    pub method: String,
    pub path: String,
    pub description: String,
    pub input_schema: Value,
    pub params: Vec<Param>,
    pub has_body: bool,
    pub scopes: Vec<String>,
    /// The first example of a 2xx JSON response, for mock mode.
    pub example: Option<Value>,
    /// The named `examples` of that response (name, value), at most [`MAX_NAMED_EXAMPLES`]:
    /// mock mode answers with the one named after a path argument's value.
    pub named_examples: Vec<(String, Value)>,
}

/// Named examples kept per operation.
pub const MAX_NAMED_EXAMPLES: usize = 100;

impl Spec {
    /// Parse JSON or YAML text and check it is OpenAPI 3.x. `origin` names the file in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Spec> {
        let doc = crate::document::parse(text, origin, MAX_SPEC_BYTES)?;
        let version = doc.get("openapi").and_then(Value::as_str).unwrap_or("");
        if !(version.starts_with("3.0") || version.starts_with("3.1")) {
            bail!("{origin}: not an OpenAPI 3.0 or 3.1 document (\"openapi\" is {:?})", doc.get("openapi").cloned().unwrap_or(Value::Null));
        }
        if !doc.get("paths").is_none_or(Value::is_object) {
            bail!("{origin}: \"paths\" is not an object");
        }
        Ok(Spec { doc })
    }

    pub fn sample() -> Spec {
        Spec::parse(SAMPLE_YAML, "built-in sample").expect("the built-in sample is valid")
    }

    pub fn title(&self) -> Option<&str> {
        self.doc.pointer("/info/title").and_then(Value::as_str)
    }

    /// `servers[0].url`, when it is absolute.
    pub fn server_url(&self) -> Option<String> {
        let url = self.doc.pointer("/servers/0/url")?.as_str()?;
        (url.starts_with("http://") || url.starts_with("https://")).then(|| url.to_owned())
    }

    /// Every operation whose method is in `allowed` (case-insensitive), in document order.
    pub fn operations(&self, allowed: &[String]) -> Vec<Operation> {
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        let mut total = MAX_INLINED_TOTAL;
        let Some(paths) = self.doc.get("paths").and_then(Value::as_object) else { return out };
        for (path, item) in paths {
            let item = self.resolve(item, 0);
            let Some(item) = item.as_object() else { continue };
            for method in METHODS {
                if !allowed.iter().any(|m| m.eq_ignore_ascii_case(method)) {
                    continue;
                }
                let Some(op) = item.get(method).and_then(Value::as_object) else { continue };
                let mut budget = MAX_INLINED_PER_TOOL.min(total);
                let mut operation = self.operation(path, method, item, op, &mut budget);
                total -= MAX_INLINED_PER_TOOL.min(total) - budget;
                // Names must be unique: a duplicate operationId gets a numeric suffix.
                let base = operation.name.clone();
                let mut n = 2;
                while !seen.insert(operation.name.clone()) {
                    operation.name = format!("{base}_{n}");
                    n += 1;
                }
                out.push(operation);
            }
        }
        out
    }

    fn operation(&self, path: &str, method: &str, item: &Map<String, Value>, op: &Map<String, Value>, budget: &mut usize) -> Operation {
        let name = op
            .get("operationId")
            .and_then(Value::as_str)
            .map(sanitize_name)
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| derived_name(method, path));
        let summary = op.get("summary").and_then(Value::as_str).unwrap_or("").trim();
        let detail = op.get("description").and_then(Value::as_str).unwrap_or("").trim();
        let description = match (summary.is_empty(), detail.is_empty()) {
            (false, false) if detail.starts_with(summary) => detail.to_owned(),
            (false, false) => format!("{summary}. {detail}"),
            (false, true) => summary.to_owned(),
            (true, false) => detail.to_owned(),
            (true, true) => format!("{} {path}", method.to_uppercase()),
        };

        // Operation parameters override path-item ones with the same name and location.
        let mut raw_params: Vec<Value> = Vec::new();
        for source in [item.get("parameters"), op.get("parameters")].into_iter().flatten() {
            for p in source.as_array().into_iter().flatten() {
                let p = self.resolve(p, 0);
                let key = (p.get("name").cloned(), p.get("in").cloned());
                raw_params.retain(|q| (q.get("name").cloned(), q.get("in").cloned()) != key);
                raw_params.push(p);
            }
        }
        let mut properties = Map::new();
        let mut required = Vec::new();
        let mut params = Vec::new();
        for p in raw_params {
            let (Some(pname), Some(location)) = (p.get("name").and_then(Value::as_str), p.get("in").and_then(Value::as_str)) else {
                continue;
            };
            let location = match location {
                "path" => Location::Path,
                "query" => Location::Query,
                "header" => Location::Header,
                _ => continue,
            };
            let is_required = location == Location::Path || p.get("required").and_then(Value::as_bool).unwrap_or(false);
            let mut schema = p.get("schema").map(|s| self.inline(s, 0, budget)).unwrap_or_else(|| json!({"type": "string"}));
            if let (Some(d), Some(obj)) = (p.get("description").and_then(Value::as_str), schema.as_object_mut()) {
                obj.entry("description").or_insert_with(|| Value::String(d.to_owned()));
            }
            if is_required {
                required.push(Value::String(pname.to_owned()));
            }
            properties.insert(pname.to_owned(), schema);
            params.push(Param { name: pname.to_owned(), location, required: is_required });
        }
        let mut has_body = false;
        if let Some(body) = op.get("requestBody").map(|b| self.resolve(b, 0))
            && let Some(schema) = json_media(&body).and_then(|m| m.get("schema"))
        {
            has_body = true;
            properties.insert("body".into(), self.inline(schema, 0, budget));
            if body.get("required").and_then(Value::as_bool).unwrap_or(false) {
                required.push("body".into());
            }
        }
        let mut input_schema = json!({"type": "object", "properties": properties});
        if !required.is_empty() {
            input_schema["required"] = Value::Array(required);
        }
        let scopes = op.get("security").or_else(|| self.doc.get("security")).map(security_scopes).unwrap_or_default();
        Operation {
            name,
            method: method.to_uppercase(),
            path: path.to_owned(),
            description,
            input_schema,
            params,
            has_body,
            scopes,
            example: self.example(op, budget),
            named_examples: self.named_examples(op),
        }
    }

    /// The first example of the first 2xx response with JSON content.
    fn example(&self, op: &Map<String, Value>, budget: &mut usize) -> Option<Value> {
        let responses = op.get("responses")?.as_object()?;
        for (status, response) in responses {
            if !status.starts_with('2') {
                continue;
            }
            let response = self.resolve(response, 0);
            let Some(media) = json_media(&response) else { continue };
            if let Some(example) = media.get("example") {
                return Some(self.inline(example, 0, budget));
            }
            if let Some(first) = media.get("examples").and_then(Value::as_object).and_then(|e| e.values().next()) {
                let first = self.resolve(first, 0);
                if let Some(value) = first.get("value") {
                    return Some(value.clone());
                }
            }
            if let Some(example) = media.get("schema").map(|s| self.resolve(s, 0)).and_then(|s| s.get("example").cloned()) {
                return Some(example);
            }
        }
        None
    }

    /// The named `examples` of the first 2xx response with JSON content that has any.
    fn named_examples(&self, op: &Map<String, Value>) -> Vec<(String, Value)> {
        let Some(responses) = op.get("responses").and_then(Value::as_object) else { return Vec::new() };
        for (status, response) in responses {
            if !status.starts_with('2') {
                continue;
            }
            let response = self.resolve(response, 0);
            let Some(examples) = json_media(&response).and_then(|m| m.get("examples")).and_then(Value::as_object) else { continue };
            return examples
                .iter()
                .take(MAX_NAMED_EXAMPLES)
                .filter_map(|(name, example)| self.resolve(example, 0).get("value").cloned().map(|v| (name.clone(), v)))
                .collect();
        }
        Vec::new()
    }

    /// Follow a top-level `$ref` (not nested ones).
    fn resolve(&self, value: &Value, depth: usize) -> Value {
        match value.get("$ref").and_then(Value::as_str) {
            Some(reference) if depth < MAX_REF_DEPTH => match self.lookup(reference) {
                Some(target) => self.resolve(target, depth + 1),
                None => json!({}),
            },
            Some(_) => json!({}),
            None => value.clone(),
        }
    }

    /// Resolve every local `$ref` inside `value`, recursively, producing at most `budget` nodes.
    fn inline(&self, value: &Value, depth: usize, budget: &mut usize) -> Value {
        if depth >= MAX_REF_DEPTH || *budget == 0 {
            return json!({});
        }
        *budget -= 1;
        match value {
            Value::Object(map) => {
                if let Some(reference) = map.get("$ref").and_then(Value::as_str) {
                    return match self.lookup(reference) {
                        Some(target) => self.inline(target, depth + 1, budget),
                        None => json!({}),
                    };
                }
                Value::Object(map.iter().map(|(k, v)| (k.clone(), self.inline(v, depth + 1, budget))).collect())
            }
            Value::Array(items) => Value::Array(items.iter().map(|v| self.inline(v, depth + 1, budget)).collect()),
            other => other.clone(),
        }
    }

    /// A local reference `#/a/b` as a JSON pointer; remote references are not followed.
    fn lookup(&self, reference: &str) -> Option<&Value> {
        self.doc.pointer(reference.strip_prefix('#')?)
    }
}

fn json_media(holder: &Value) -> Option<&Value> {
    let content = holder.get("content")?.as_object()?;
    content.iter().find(|(media, _)| media.starts_with("application/json") || media.ends_with("+json")).map(|(_, v)| v)
}

/// The union of scopes of a `security` requirement list.
fn security_scopes(security: &Value) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for requirement in security.as_array().into_iter().flatten() {
        for scopes in requirement.as_object().into_iter().flat_map(|m| m.values()) {
            for scope in scopes.as_array().into_iter().flatten().filter_map(Value::as_str) {
                if crate::validate::scope(scope).is_ok() && !out.iter().any(|s| s == scope) {
                    out.push(scope.to_owned());
                }
            }
        }
    }
    out
}

/// MCP tool names: `[A-Za-z0-9_.-]`, at most 64 characters.
fn sanitize_name(raw: &str) -> String {
    raw.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') { c } else { '_' }).take(64).collect()
}

/// `get /orders/{id}` → `get_orders_id`.
fn derived_name(method: &str, path: &str) -> String {
    let mut name = method.to_owned();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        name.push('_');
        name.push_str(part.trim_matches(|c| c == '{' || c == '}'));
    }
    sanitize_name(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get() -> Vec<String> {
        vec!["GET".into()]
    }

    #[test]
    fn sample_has_get_tools_with_scopes_and_examples() {
        let ops = Spec::sample().operations(&get());
        let names: Vec<&str> = ops.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["getOrders", "getOrder", "getProducts", "getCustomers"]);
        let get_order = &ops[1];
        assert_eq!(get_order.scopes, ["orders.read"]);
        assert_eq!(get_order.input_schema["required"], json!(["orderId"]));
        assert_eq!(get_order.example.as_ref().unwrap()["id"], "ord-1001");
        // $ref'd parameter resolved.
        assert_eq!(ops[0].input_schema["properties"]["limit"]["type"], "integer");
    }

    #[test]
    fn allowed_methods_add_body_tools() {
        let ops = Spec::sample().operations(&["GET".into(), "POST".into()]);
        let create = ops.iter().find(|o| o.name == "createOrder").unwrap();
        assert!(create.has_body);
        assert_eq!(create.input_schema["required"], json!(["body"]));
        assert_eq!(create.input_schema["properties"]["body"]["required"], json!(["customerId", "items"]));
    }

    #[test]
    fn cyclic_refs_terminate_and_names_are_derived() {
        let doc = r##"{"openapi": "3.1.0", "info": {"title": "t"},
          "components": {"schemas": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/components/schemas/Node"}}}}},
          "paths": {"/a/{id}": {"get": {"parameters": [{"name": "id", "in": "path", "schema": {"$ref": "#/components/schemas/Node"}}],
            "responses": {"200": {"description": "x"}}}}}}"##;
        let ops = Spec::parse(doc, "t.json").unwrap().operations(&get());
        assert_eq!(ops[0].name, "get_a_id");
        assert!(ops[0].input_schema["properties"]["id"].is_object());
    }

    #[test]
    fn rejects_non_openapi() {
        assert!(Spec::parse("swagger: '2.0'", "x.yaml").is_err());
        assert!(Spec::parse("{", "x.json").is_err());
        assert!(Spec::parse("openapi: 3.0.0\npaths: 3", "x.yaml").is_err());
    }
}
