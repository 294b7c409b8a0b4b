//! Validation of user-supplied names, scopes, day counts, client ids, issuers and URLs.
//!
//! Each check returns a message that names what was wrong; callers attach the flag or file.
//! Names double as file names (`sa/<name>.jwt`, `generated/<profile>/`), so their alphabet
//! excludes path separators and a leading dot, which rules out traversal and hidden files.

/// Longest profile or token name.
pub const MAX_NAME: usize = 64;
/// Largest `--days`.
pub const MAX_DAYS: u32 = 36_500;

/// `[A-Za-z0-9._-]{1,64}`, not starting with `.`.
pub fn name(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("name is empty".into());
    }
    if value.len() > MAX_NAME {
        return Err(format!("name is {} characters long; at most {MAX_NAME} are allowed", value.len()));
    }
    if value.starts_with('.') {
        return Err(format!("name {:?} starts with '.'", printable(value)));
    }
    if let Some(c) = value.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        return Err(format!("name {:?} contains {:?}; only letters, digits, '.', '_' and '-' are allowed", printable(value), c));
    }
    Ok(())
}

/// RFC 6749 §3.3 scope-token: 1*( %x21 / %x23-5B / %x5D-7E ).
pub fn scope(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("scope is empty".into());
    }
    if let Some(c) = value.chars().find(|&c| !matches!(c, '\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e')) {
        return Err(format!("scope {:?} contains {:?}, which RFC 6749 does not allow in a scope", printable(value), c));
    }
    Ok(())
}

/// Scopes from flags; a single value holding spaces is split, so `--scopes "a b"` works too.
pub fn scopes<S: AsRef<str>>(values: &[S]) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for value in values {
        let value = value.as_ref();
        if value.trim().is_empty() {
            return Err("scope is empty".into());
        }
        for part in value.split(' ') {
            if part.is_empty() {
                continue;
            }
            scope(part)?;
            if !out.iter().any(|s| s == part) {
                out.push(part.to_owned());
            }
        }
    }
    Ok(out)
}

/// 1–36500 days.
pub fn days(value: i64) -> Result<u32, String> {
    if (1..=MAX_DAYS as i64).contains(&value) { Ok(value as u32) } else { Err(format!("{value} is outside 1..={MAX_DAYS}")) }
}

/// A client id or issuer: 1–256 visible ASCII characters (they end up in headers and tables).
pub fn identifier(what: &str, value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err(format!("{what} is empty"));
    }
    if value.len() > 256 {
        return Err(format!("{what} is longer than 256 characters"));
    }
    if let Some(c) = value.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(format!("{what} {:?} contains {:?}; only visible ASCII characters are allowed", printable(value), c));
    }
    Ok(())
}

/// An http(s) URL.
pub fn http_url(value: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(value).map_err(|e| format!("{:?} is not a URL ({e})", printable(value)))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{:?} is not an http or https URL", printable(value)));
    }
    Ok(url)
}

/// Control characters escaped and at most 200 characters kept: for echoing input in messages.
pub fn printable(value: &str) -> String {
    escape_controls(&value.chars().take(200).collect::<String>())
}

/// Control characters escaped, so text from elsewhere cannot drive the terminal, forge a log
/// line or reorder what a reader sees: C0, DEL and C1 controls (`is_control`), the Unicode line
/// and paragraph separators, the bidirectional formatting characters (U+061C, U+200E/F,
/// U+202A–U+202E, U+2066–U+2069), which can make `exe.txt` display as `txt.exe`, and the
/// invisible ones (U+200B–U+200D, U+2060–U+2064, U+FEFF) that make two names look alike.
pub fn escape_controls(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if is_unsafe(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{2069}'
                | '\u{feff}'
        )
}

/// Serialized JSON made safe for a terminal without changing what it means: every character
/// [`escape_controls`] would escape becomes a JSON `\uXXXX` escape (serde_json escapes only C0
/// controls; such characters can only stand inside strings, where the escape is equivalent).
pub fn escape_json(json: &str) -> String {
    if !json.chars().any(is_unsafe) {
        return json.to_owned();
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if is_unsafe(c) && c != '\n' {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["default", "ci-bot", "a", "A.b_c-9", &"x".repeat(64)] {
            assert!(name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".hidden", "..", "../etc", "a/b", "a b", "ü", &"x".repeat(65), "a\0b", "-"] {
            if bad == "-" {
                continue;
            }
            assert!(name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn scope_tokens() {
        assert_eq!(scopes(&["orders.read", "a:b/c"]).unwrap(), vec!["orders.read", "a:b/c"]);
        assert_eq!(scopes(&["a b", "a"]).unwrap(), vec!["a", "b"]);
        for bad in ["", "a\"b", "a\\b", "é", "tab\there", " "] {
            assert!(scopes(&[bad]).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn day_range() {
        assert_eq!(days(1), Ok(1));
        assert_eq!(days(36500), Ok(36500));
        assert!(days(0).is_err());
        assert!(days(-1).is_err());
        assert!(days(36501).is_err());
    }

    #[test]
    fn json_keeps_its_meaning_and_loses_its_controls() {
        let value = serde_json::json!({"a": "x\u{202e}evil\u{9b}2J\u{85}\u{200b}", "b": [1, "\u{7f}"]});
        let pretty = serde_json::to_string_pretty(&value).unwrap();
        let safe = escape_json(&pretty);
        assert!(!safe.chars().any(|c| is_unsafe(c) && c != '\n'), "{safe:?}");
        assert!(safe.contains("\\u202e") && safe.contains("\\u009b"), "{safe}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&safe).unwrap(), value);
    }

    #[test]
    fn printable_escapes_control_characters() {
        assert_eq!(printable("a\x1b[31mb\n"), "a\\u{1b}[31mb\\n");
        assert_eq!(printable("a\u{9b}b\u{85}"), "a\\u{9b}b\\u{85}");
        assert_eq!(printable("x\u{202e}y\u{2066}\u{200f}\u{61c}\u{2028}"), "x\\u{202e}y\\u{2066}\\u{200f}\\u{61c}\\u{2028}");
        assert_eq!(printable("café ✓"), "café ✓");
    }
}
