//! Merging one server entry into a host's existing configuration file, keeping every other
//! entry (and, for Codex's TOML, every comment and the layout, through `toml_edit`), written
//! atomically (temporary file beside it, then rename) with the file's permission bits kept. A
//! link is followed to the file it names, so dotfiles kept elsewhere stay linked.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_json::{Map, Value};

use crate::error::Failure;
use crate::fsx;
use crate::hosts::{Format, Host};

/// Largest host configuration file read.
const MAX_FILE_BYTES: u64 = 4 << 20;

/// Whether the entry was new or replaced one of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merged {
    Added,
    Replaced,
}

/// The text of a file holding only this entry (what `hosts` prints without `--write`).
pub fn render_alone(host: Host, name: &str, entry: &Value) -> Result<String> {
    merge_text(host, None, name, entry).map(|(text, _)| text)
}

/// Merge the entry into `path` (created, with its folder, if missing); the path written.
pub fn merge_into(host: Host, path: &Path, name: &str, entry: &Value, secret: bool) -> Result<(PathBuf, Merged)> {
    let target = resolve_link(path)?;
    let existing = match std::fs::metadata(&target) {
        Ok(meta) if !meta.is_file() => return Err(Failure::usage(format!("{} is not a regular file", target.display())).into()),
        Ok(meta) if meta.len() > MAX_FILE_BYTES => {
            return Err(
                Failure::usage(format!("{} is larger than {MAX_FILE_BYTES} bytes; not a host configuration", target.display())).into()
            );
        }
        Ok(meta) => Some((fsx::read_text(&target)?, meta.permissions().mode() & 0o7777)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(anyhow::Error::from(e).context(format!("cannot read {}", target.display()))),
    };
    let (text, merged) = merge_text(host, existing.as_ref().map(|(t, _)| t.as_str()), name, entry).map_err(|e| {
        Failure::usage(format!("{}: {e:#}", target.display()))
            .hint(format!("fix the file, or print the entry with `mcpgen hosts {name} --for {}` and paste it", host.name()))
    })?;
    // A file that will hold a token is private; otherwise it keeps its mode (new: 0644).
    let mode = match (&existing, secret) {
        (_, true) => fsx::SECRET,
        (Some((_, mode)), false) => *mode,
        (None, false) => fsx::PUBLIC,
    };
    if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty())
        && !parent.exists()
    {
        fsx::create_dir_all(parent)?;
    }
    fsx::write_atomic(&target, text.as_bytes(), mode)?;
    Ok((target, merged))
}

/// Follow links (at most a few) to the file they name, relative links from their folder.
fn resolve_link(path: &Path) -> Result<PathBuf> {
    let mut current = path.to_path_buf();
    for _ in 0..8 {
        match std::fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let next = std::fs::read_link(&current)?;
                current = match current.parent() {
                    Some(parent) if next.is_relative() => parent.join(next),
                    _ => next,
                };
            }
            _ => return Ok(current),
        }
    }
    Err(Failure::usage(format!("{}: too many levels of links", path.display())).into())
}

/// The new text of a file with `existing` content (or none) once the entry is in.
fn merge_text(host: Host, existing: Option<&str>, name: &str, entry: &Value) -> Result<(String, Merged)> {
    match host.format() {
        Format::Json => merge_json(host, existing, name, entry),
        Format::Toml => merge_toml(host, existing, name, entry),
    }
}

fn merge_json(host: Host, existing: Option<&str>, name: &str, entry: &Value) -> Result<(String, Merged)> {
    let mut doc: Map<String, Value> = match existing.filter(|t| !t.trim().is_empty()) {
        Some(text) => match serde_json::from_str(text) {
            Ok(Value::Object(map)) => map,
            Ok(_) => anyhow::bail!("not a JSON object"),
            Err(e) => anyhow::bail!("not plain JSON ({e}); comments and trailing commas cannot be kept by a merge"),
        },
        None => {
            let mut map = Map::new();
            if host == Host::Opencode {
                map.insert("$schema".into(), Value::from("https://opencode.ai/config.json"));
            }
            map
        }
    };
    let servers = doc.entry(host.servers_key()).or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(servers) = servers else { anyhow::bail!("{:?} is not an object", host.servers_key()) };
    let merged = if servers.insert(name.to_owned(), entry.clone()).is_some() { Merged::Replaced } else { Merged::Added };
    Ok((serde_json::to_string_pretty(&Value::Object(doc))? + "\n", merged))
}

fn merge_toml(host: Host, existing: Option<&str>, name: &str, entry: &Value) -> Result<(String, Merged)> {
    let mut doc: toml_edit::DocumentMut =
        existing.unwrap_or("").parse().map_err(|e: toml_edit::TomlError| anyhow::anyhow!("not valid TOML: {}", e.message()))?;
    let servers = doc.entry(host.servers_key()).or_insert_with(|| {
        let mut table = toml_edit::Table::new();
        table.set_implicit(true);
        toml_edit::Item::Table(table)
    });
    let Some(servers) = servers.as_table_like_mut() else { anyhow::bail!("{:?} is not a table", host.servers_key()) };
    let mut table = toml_edit::Table::new();
    let Value::Object(fields) = entry else { anyhow::bail!("an entry is an object") };
    for (key, value) in fields {
        table.insert(key, toml_edit::Item::Value(toml_value(value)?));
    }
    let merged = if servers.insert(name, toml_edit::Item::Table(table)).is_some() { Merged::Replaced } else { Merged::Added };
    Ok((doc.to_string(), merged))
}

/// A JSON value of an entry (strings, booleans, arrays and objects of them) as TOML.
fn toml_value(value: &Value) -> Result<toml_edit::Value> {
    Ok(match value {
        Value::String(s) => s.as_str().into(),
        Value::Bool(b) => (*b).into(),
        Value::Number(n) => n.as_i64().ok_or_else(|| anyhow::anyhow!("a number TOML cannot hold"))?.into(),
        Value::Array(items) => {
            let mut array = toml_edit::Array::new();
            for item in items {
                array.push(toml_value(item)?);
            }
            toml_edit::Value::Array(array)
        }
        Value::Object(map) => {
            let mut table = toml_edit::InlineTable::new();
            for (k, v) in map {
                table.insert(k, toml_value(v)?);
            }
            toml_edit::Value::InlineTable(table)
        }
        Value::Null => anyhow::bail!("null has no TOML form"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn toml_merge_keeps_comments_and_other_servers() {
        let existing = "# my codex\nmodel = \"o3\"\n\n[mcp_servers.other]\ncommand = \"npx\" # keep me\nargs = [\"-y\", \"x\"]\n";
        let (text, merged) =
            merge_toml(Host::Codex, Some(existing), "p", &json!({"url": "http://h/mcp", "env_http_headers": {"X-A": "V"}})).unwrap();
        assert_eq!(merged, Merged::Added);
        assert!(text.starts_with(existing), "{text}");
        assert!(text.contains("[mcp_servers.p]\nurl = \"http://h/mcp\"\nenv_http_headers = { X-A = \"V\" }\n"), "{text}");
        let (again, merged) = merge_toml(Host::Codex, Some(&text), "p", &json!({"command": "c", "args": ["a"]})).unwrap();
        assert_eq!(merged, Merged::Replaced);
        assert!(again.contains("# keep me") && !again.contains("http://h/mcp"), "{again}");
    }

    #[test]
    fn json_merge_refuses_comments_and_non_objects() {
        assert!(merge_json(Host::Vscode, Some("// c\n{}"), "p", &json!({})).is_err());
        assert!(merge_json(Host::Vscode, Some("[]"), "p", &json!({})).is_err());
        assert!(merge_json(Host::Vscode, Some("{\"servers\": 3}"), "p", &json!({})).is_err());
        let (text, _) = merge_json(Host::Opencode, None, "p", &json!({"type": "local"})).unwrap();
        assert!(text.starts_with("{\n  \"$schema\""), "{text}");
    }
}
