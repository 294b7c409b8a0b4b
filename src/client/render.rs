//! Tool listings and tool results for people. Everything shown came from a server, so control
//! characters (C0, C1, bidi overrides) are escaped before the terminal sees them; `raw` output
//! is the one place a result's text is printed exactly as sent.

use serde_json::Value;

use crate::mcp::messages::{CallToolResult, Tool};
use crate::validate;

/// `Tools: N | Prompts: M`, `ToolNames:`, then `- name: description` lines.
pub fn listing(tools: &[&Tool], prompts: usize) -> String {
    let mut out = format!("Tools: {} | Prompts: {prompts}\nToolNames:\n", tools.len());
    for tool in tools {
        out.push_str(&format!("- {}: {}\n", one_line(&tool.name), one_line(tool.description.as_deref().unwrap_or(""))));
    }
    out
}

/// Each tool's line, then its input schema and annotations.
pub fn details(tools: &[&Tool]) -> String {
    let mut out = String::new();
    for tool in tools {
        out.push_str(&format!("- {}: {}\n", one_line(&tool.name), one_line(tool.description.as_deref().unwrap_or(""))));
        let schema = validate::escape_json(&serde_json::to_string_pretty(&tool.input_schema).unwrap_or_default());
        out.push_str("  inputSchema:\n");
        for line in schema.lines() {
            out.push_str(&format!("    {}\n", validate::escape_controls(line)));
        }
        if let Some(annotations) = &tool.annotations {
            out.push_str(&format!("  annotations: {}\n", validate::printable(&annotations.to_string())));
        }
    }
    out
}

/// Whitespace runs (newlines included) become one space; other control characters are escaped.
fn one_line(text: &str) -> String {
    validate::escape_controls(&text.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// A tool result: JSON text pretty-printed (else `structuredContent`), other text with control
/// characters escaped; `raw` prints the text blocks exactly as sent.
pub fn result(result: &CallToolResult, raw: bool) -> String {
    let texts: Vec<&str> = result.texts().collect();
    let mut out = String::new();
    if raw {
        if texts.is_empty() {
            out.push_str(&serde_json::to_string(result).unwrap_or_default());
        } else {
            out.push_str(&texts.join("\n"));
        }
        out.push('\n');
        return out;
    }
    for text in &texts {
        match serde_json::from_str::<Value>(text) {
            Ok(value) => out.push_str(&validate::escape_json(&serde_json::to_string_pretty(&value).unwrap_or_default())),
            Err(_) => out.push_str(&text.split('\n').map(validate::escape_controls).collect::<Vec<_>>().join("\n")),
        }
        out.push('\n');
    }
    if texts.is_empty()
        && let Some(structured) = &result.structured_content
    {
        out.push_str(&validate::escape_json(&serde_json::to_string_pretty(structured).unwrap_or_default()));
        out.push('\n');
    }
    for other in result.content.iter().filter(|c| c.kind != "text") {
        let mime = other.mime_type.as_deref().unwrap_or("");
        out.push_str(&format!("[{} {}]\n", validate::printable(&other.kind), validate::printable(mime)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tool(value: Value) -> Tool {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn listing_escapes_control_characters() {
        let t = tool(json!({"name": "evil", "description": "line one\nline two \u{1b}[31mred"}));
        assert_eq!(listing(&[&t], 0), "Tools: 1 | Prompts: 0\nToolNames:\n- evil: line one line two \\u{1b}[31mred\n");
        let t = tool(json!({"name": "bad\u{1b}]0;x\u{7}", "description": "d"}));
        assert_eq!(listing(&[&t], 0), "Tools: 1 | Prompts: 0\nToolNames:\n- bad\\u{1b}]0;x\\u{7}: d\n");
    }

    #[test]
    fn results_prefer_pretty_json_text_and_raw_is_untouched() {
        let r: CallToolResult =
            serde_json::from_value(json!({"content": [{"type": "text", "text": "{\"a\":1}"}], "structuredContent": {"a": 1}})).unwrap();
        assert_eq!(result(&r, false), "{\n  \"a\": 1\n}\n");
        assert_eq!(result(&r, true), "{\"a\":1}\n");
        let structured_only: CallToolResult = serde_json::from_value(json!({"content": [], "structuredContent": {"b": 2}})).unwrap();
        assert_eq!(result(&structured_only, false), "{\n  \"b\": 2\n}\n");
    }
}
