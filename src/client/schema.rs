//! A small JSON Schema check for tool arguments before a call: types, `required`, `enum`,
//! `const`, numeric bounds, string lengths, array items and `additionalProperties: false`,
//! recursively. It covers what OpenAPI-derived and typical MCP tool schemas use, so a typo in
//! `--args` is reported with the field's path instead of as a server error. Keywords it does not
//! know are ignored (never a false refusal).

use serde_json::Value;

/// `Err("body.items[0].quantity: expected integer, got string")` for the first problem found.
pub fn check(schema: &Value, value: &Value) -> Result<(), String> {
    check_at(schema, value, "")
}

fn check_at(schema: &Value, value: &Value, path: &str) -> Result<(), String> {
    let Some(schema) = schema.as_object() else { return Ok(()) };
    let here = |msg: String| if path.is_empty() { msg } else { format!("{path}: {msg}") };
    if let Some(expected) = schema.get("type") {
        let types: Vec<&str> = match expected {
            Value::String(t) => vec![t.as_str()],
            Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !types.is_empty() && !types.iter().any(|t| is_type(value, t)) {
            return Err(here(format!("expected {}, got {}", types.join(" or "), type_name(value))));
        }
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array)
        && !options.contains(value)
    {
        let shown: Vec<String> = options.iter().map(Value::to_string).collect();
        return Err(here(format!("{value} is not one of {}", shown.join(", "))));
    }
    if let Some(constant) = schema.get("const")
        && constant != value
    {
        return Err(here(format!("must be {constant}")));
    }
    if let Some(n) = value.as_f64() {
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
            && n < min
        {
            return Err(here(format!("{value} is less than the minimum {min}")));
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
            && n > max
        {
            return Err(here(format!("{value} is more than the maximum {max}")));
        }
    }
    if let Some(s) = value.as_str() {
        let len = s.chars().count() as u64;
        if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
            && len < min
        {
            return Err(here(format!("shorter than {min} characters")));
        }
        if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
            && len > max
        {
            return Err(here(format!("longer than {max} characters")));
        }
    }
    if let Some(object) = value.as_object() {
        let properties = schema.get("properties").and_then(Value::as_object);
        for name in schema.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
            if !object.contains_key(name) {
                return Err(format!("{}: required field is missing", join(path, name)));
            }
        }
        for (name, item) in object {
            match properties.and_then(|p| p.get(name)) {
                Some(sub) => check_at(sub, item, &join(path, name))?,
                None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    return Err(format!("{}: unknown field", join(path, name)));
                }
                None => {
                    if let Some(extra) = schema.get("additionalProperties").filter(|v| v.is_object()) {
                        check_at(extra, item, &join(path, name))?;
                    }
                }
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (i, item) in array.iter().enumerate() {
            check_at(items, item, &format!("{path}[{i}]"))?;
        }
    }
    Ok(())
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() { name.to_owned() } else { format!("{path}.{name}") }
}

fn is_type(value: &Value, t: &str) -> bool {
    match t {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        "number" => value.is_number(),
        "integer" => value.as_i64().is_some() || value.as_u64().is_some() || value.as_f64().is_some_and(|f| f.fract() == 0.0),
        _ => true,
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reports_the_field() {
        let schema = json!({"type": "object", "required": ["orderId"], "properties": {
            "orderId": {"type": "string"},
            "limit": {"type": "integer", "minimum": 1, "maximum": 100},
            "body": {"type": "object", "properties": {"items": {"type": "array", "items": {"type": "object", "properties": {"quantity": {"type": "integer"}}}}}}
        }});
        assert!(check(&schema, &json!({"orderId": "a", "limit": 5})).is_ok());
        assert_eq!(check(&schema, &json!({})).unwrap_err(), "orderId: required field is missing");
        assert_eq!(check(&schema, &json!({"orderId": 1})).unwrap_err(), "orderId: expected string, got integer");
        assert_eq!(check(&schema, &json!({"orderId": "a", "limit": 0})).unwrap_err(), "limit: 0 is less than the minimum 1");
        assert_eq!(
            check(&schema, &json!({"orderId": "a", "body": {"items": [{"quantity": "x"}]}})).unwrap_err(),
            "body.items[0].quantity: expected integer, got string"
        );
        assert!(check(&json!({"enum": ["a"]}), &json!("b")).is_err());
        assert!(check(&json!({"type": "object", "additionalProperties": false}), &json!({"x": 1})).is_err());
    }
}
