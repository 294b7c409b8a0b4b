//! YAML and JSON documents from files that may be hostile (OpenAPI specs, `--oauth` files):
//! their size is capped and their nesting measured before the parser sees them. The YAML
//! parser is quadratic in nesting depth (400 KB of `[[[…]]]` took minutes and blocked every
//! reload, revocations included), so depth is checked with a linear pre-scan; serde_json stops
//! at a recursion depth of 128 on its own.

use anyhow::{Result, bail};
use serde_json::Value;

/// Deepest nesting of collections accepted.
pub const MAX_NESTING: usize = 64;

/// Parse `text` as JSON (when it starts with `{`) or YAML; `origin` names the file in errors.
pub fn parse(text: &str, origin: &str, max_bytes: usize) -> Result<Value> {
    if text.len() > max_bytes {
        bail!("{origin}: larger than {max_bytes} bytes");
    }
    if text.trim_start().starts_with('{') {
        return serde_json::from_str(text).map_err(|e| anyhow::anyhow!("{origin}: invalid JSON ({e})"));
    }
    if yaml_nesting(text) > MAX_NESTING {
        bail!("{origin}: nested more than {MAX_NESTING} levels deep");
    }
    serde_norway::from_str(text).map_err(|e| anyhow::anyhow!("{origin}: invalid YAML ({e})"))
}

/// How deeply a YAML text nests, over-estimated: block levels by indentation (and `- - x`
/// sequences on one line) plus open flow brackets. Quotes are honoured inside flow collections,
/// where a bracket is always an indicator; in block context a bracket opens a flow collection
/// only where a value starts. Linear, so it can run before the (quadratic) parser.
fn yaml_nesting(text: &str) -> usize {
    let mut deepest = 0;
    let mut indents: Vec<usize> = Vec::new();
    let mut flow = 0usize;
    let mut quote: Option<char> = None;
    for line in text.lines() {
        let trimmed = line.trim_start_matches(' ');
        let mut dashes = 0;
        if flow == 0 && quote.is_none() {
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let indent = line.len() - trimmed.len();
            while indents.last().is_some_and(|&i| i >= indent) {
                indents.pop();
            }
            indents.push(indent);
            let mut rest = trimmed;
            while let Some(r) = rest.strip_prefix("- ") {
                dashes += 1;
                rest = r.trim_start_matches(' ');
            }
        }
        let mut last = ' '; // last character that was not a space
        let mut prev = ' ';
        let mut escaped = false;
        for c in line.chars() {
            match quote {
                Some('"') if escaped => escaped = false,
                Some('"') if c == '\\' => escaped = true,
                Some(q) if c == q => quote = None,
                Some(_) => {}
                None => match c {
                    '#' if prev == ' ' || prev == '\t' => break,
                    // A quoted scalar begins after an indicator (in flow or block context alike).
                    '"' | '\'' if matches!(last, '[' | '{' | ',' | ':' | ' ' | '-' | '?') => quote = Some(c),
                    // Also after a tag or an anchor (`!!seq [`, `&a {`): any bracket after a
                    // blank counts — counting one too many only refuses sooner.
                    '[' | '{' if flow > 0 || prev == ' ' || prev == '\t' || matches!(last, ' ' | ':' | '-' | '?' | ',') => flow += 1,
                    ']' | '}' if flow > 0 => flow -= 1,
                    _ => {}
                },
            }
            deepest = deepest.max(indents.len() + dashes + flow);
            if c != ' ' && c != '\t' {
                last = c;
            }
            prev = c;
        }
        deepest = deepest.max(indents.len() + dashes + flow);
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openapi::{SAMPLE_YAML, Spec};

    #[test]
    fn nesting_is_measured_before_parsing() {
        assert!(yaml_nesting(SAMPLE_YAML) < 20, "{}", yaml_nesting(SAMPLE_YAML));
        assert_eq!(yaml_nesting("a: [[[1]]]\n"), 4);
        assert_eq!(yaml_nesting("a: 'x [[[[' # [[[[\nb: \"[[[[\"\n"), 1);
        assert_eq!(yaml_nesting("a:\n  b:\n    - - c\n"), 5);
        let deep = format!("openapi: 3.0.0\npaths: {{}}\nx: {}{}\n", "[".repeat(100), "]".repeat(100));
        let e = Spec::parse(&deep, "deep.yaml").unwrap_err().to_string();
        assert!(e.contains("nested more than 64"), "{e}");
    }

    #[test]
    fn deep_documents_are_refused_before_parsing() {
        let deep = format!("a: {}1{}\n", "[".repeat(200), "]".repeat(200));
        assert!(parse(&deep, "x.yaml", 1 << 20).unwrap_err().to_string().contains("nested more than"));
        assert!(parse("{\"a\": 1}", "x.json", 1 << 20).is_ok());
        assert!(parse("a: 1\n", "x.yaml", 2).unwrap_err().to_string().contains("larger than"));
        // Behind a tag or an anchor the brackets count too: the pre-scan refuses it (the parser,
        // quadratic in depth, took 21 s on this and then failed with another message).
        for prefix in ["!!seq ", "&a ", "!custom "] {
            let deep = format!("a: {prefix}{}{}\n", "[".repeat(60_000), "]".repeat(60_000));
            assert!(parse(&deep, "x.yaml", 1 << 20).unwrap_err().to_string().contains("nested more than"), "{prefix}");
        }
        assert_eq!(yaml_nesting("a: !!seq [[1]]\n"), 3);
    }
}
