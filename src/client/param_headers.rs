//! Protocol 2026-07-28 header mirroring on the client side: the `x-mcp-header` annotations of a
//! tool's input schema (which arguments a server wants to see as `Mcp-Param-{Name}` headers,
//! checked as the revision requires, so an invalid tool can be left out), and the encoding of
//! header values — plain when they are visible ASCII without surrounding blanks, else
//! `=?base64?…?=` (also used for `Mcp-Name`).

use base64::Engine;
use serde_json::Value;

/// The annotated parameters of one tool: header name and the property path of its value.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ParamHeaders(Vec<(String, Vec<String>)>);

const ANNOTATION: &str = "x-mcp-header";

/// RFC 9110 `tchar`.
fn is_token(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The annotations of `schema`, or why the tool must be left out.
pub fn of_schema(schema: &Value) -> Result<ParamHeaders, String> {
    let mut found = Vec::new();
    walk(schema, &mut Vec::new(), true, &mut found)?;
    let mut seen = std::collections::HashSet::new();
    for (name, _) in &found {
        if !seen.insert(name.to_ascii_lowercase()) {
            return Err(format!("{ANNOTATION} {name:?} is used twice"));
        }
    }
    Ok(ParamHeaders(found.into_iter().map(|(name, path)| (format!("Mcp-Param-{name}"), path)).collect()))
}

/// Visit every object of the schema; `reachable` while the chain from the root is made of
/// `properties` keys only (the only place the annotation is allowed).
fn walk(schema: &Value, path: &mut Vec<String>, reachable: bool, found: &mut Vec<(String, Vec<String>)>) -> Result<(), String> {
    match schema {
        Value::Array(items) => items.iter().try_for_each(|item| walk(item, path, false, found)),
        Value::Object(map) => {
            if let Some(annotation) = map.get(ANNOTATION) {
                let where_ = if path.is_empty() { "the schema root".to_owned() } else { path.join(".") };
                let Some(name) = annotation.as_str().filter(|n| is_token(n)) else {
                    return Err(format!("{ANNOTATION} of {where_} is not an HTTP header token"));
                };
                if !reachable || path.is_empty() {
                    return Err(format!("{ANNOTATION} {name:?} is not on a property reachable through `properties` alone"));
                }
                if !matches!(map.get("type").and_then(Value::as_str), Some("string" | "integer" | "boolean")) {
                    return Err(format!("{ANNOTATION} {name:?} is on {where_}, which is not a string, integer or boolean"));
                }
                found.push((name.to_owned(), path.clone()));
            }
            for (key, value) in map {
                match (key.as_str(), value) {
                    (ANNOTATION, _) => {}
                    ("properties", Value::Object(properties)) => {
                        for (property, sub) in properties {
                            path.push(property.clone());
                            let result = walk(sub, path, reachable, found);
                            path.pop();
                            result?;
                        }
                    }
                    _ => walk(value, path, false, found)?,
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Largest integer JavaScript represents exactly; the revision allows no more in a header.
const SAFE_INTEGER: i64 = (1 << 53) - 1;

impl ParamHeaders {
    /// The headers for `arguments`: each annotated value that is present and not null, as text.
    pub fn values(&self, arguments: &Value) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (header, path) in &self.0 {
            let value = path.iter().try_fold(arguments, |v, key| v.get(key));
            let text = match value {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Bool(b)) => b.to_string(),
                Some(Value::Number(n)) => match n.as_i64().filter(|i| i.abs() <= SAFE_INTEGER) {
                    Some(i) => i.to_string(),
                    None => continue,
                },
                _ => continue,
            };
            out.push((header.clone(), encode(&text)));
        }
        out
    }
}

/// A header value: `text` itself when it is visible ASCII or inner spaces, else (and when it
/// would read as the sentinel) `=?base64?<base64 of its UTF-8>?=`.
pub fn encode(text: &str) -> String {
    let visible = text.bytes().all(|b| (0x20..0x7f).contains(&b));
    let padded = text.starts_with([' ', '\t']) || text.ends_with([' ', '\t']);
    let sentinel = text.starts_with("=?base64?") && text.ends_with("?=");
    let plain = visible && !padded && !sentinel;
    if plain { text.to_owned() } else { format!("=?base64?{}?=", base64::engine::general_purpose::STANDARD.encode(text)) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_are_encoded_as_the_revision_shows() {
        assert_eq!(encode("us-west1"), "us-west1");
        assert_eq!(encode("Hello, 世界"), "=?base64?SGVsbG8sIOS4lueVjA==?=");
        assert_eq!(encode(" padded "), "=?base64?IHBhZGRlZCA=?=");
        assert_eq!(encode("line1\nline2"), "=?base64?bGluZTEKbGluZTI=?=");
        assert_eq!(encode("=?base64?literal?="), "=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?=");
    }

    #[test]
    fn annotated_properties_are_mirrored_from_the_arguments() {
        let schema = json!({"type": "object", "properties": {
            "region": {"type": "string", "x-mcp-header": "Region"},
            "filter": {"type": "object", "properties": {"limit": {"type": "integer", "x-mcp-header": "Limit"}}},
            "query": {"type": "string"},
        }});
        let headers = of_schema(&schema).unwrap();
        let values = headers.values(&json!({"region": "eu", "filter": {"limit": 5}, "query": "x"}));
        assert_eq!(values, [("Mcp-Param-Region".into(), "eu".into()), ("Mcp-Param-Limit".into(), "5".into())]);
        assert_eq!(headers.values(&json!({"region": null})), []);
    }

    #[test]
    fn invalid_annotations_leave_the_tool_out() {
        let bad = [
            json!({"properties": {"a": {"type": "number", "x-mcp-header": "A"}}}),
            json!({"properties": {"a": {"type": "string", "x-mcp-header": "has space"}}}),
            json!({"properties": {"a": {"type": "string", "x-mcp-header": ""}}}),
            json!({"properties": {"a": {"type": "string", "x-mcp-header": "X"}, "b": {"type": "string", "x-mcp-header": "x"}}}),
            json!({"properties": {"a": {"type": "array", "items": {"type": "string", "x-mcp-header": "A"}}}}),
            json!({"anyOf": [{"properties": {"a": {"type": "string", "x-mcp-header": "A"}}}]}),
            json!({"type": "object", "x-mcp-header": "Root"}),
        ];
        for schema in bad {
            assert!(of_schema(&schema).is_err(), "{schema}");
        }
        assert_eq!(of_schema(&json!({"type": "object"})).unwrap(), ParamHeaders::default());
    }
}
