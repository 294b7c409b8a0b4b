//! `mcpgen hosts`: for each host, `--write` merges the profile's entry into an existing file
//! that keeps every other entry (and Codex's comments), and the result parses with Python's own
//! `json` and `tomllib`; no token is in the file unless `--embed-token` (then the file is 0600
//! and a warning says so); a file that cannot be merged is left as it was; a link stays a link;
//! and the `mcpgen bridge` command line a stdio host is given reaches the server through the
//! official MCP Python SDK's stdio client.

mod support;

use std::path::Path;

use serde_json::{Value, json};
use support::peers::{free_port, run_python};
use support::*;

/// What the file holds, as Python's parsers read it.
fn parsed(path: &Path) -> Value {
    run_python("parse_config.py", &[&path.display().to_string()])
}

/// A host's file with another server (and, for TOML, comments) in it already.
fn existing(host: &str) -> (&'static str, String) {
    match host {
        "codex" => (
            "config.toml",
            "# my settings\nmodel = \"o3\"\n\n[mcp_servers.other]\ncommand = \"npx\" # keep\nargs = [\"-y\", \"other\"]\n".into(),
        ),
        "vscode" => ("mcp.json", json!({"servers": {"other": {"type": "stdio", "command": "npx"}}, "inputs": []}).to_string()),
        "opencode" => (
            "opencode.json",
            json!({"$schema": "https://opencode.ai/config.json", "theme": "dark", "mcp": {"other": {"type": "local", "command": ["npx"]}}})
                .to_string(),
        ),
        _ => ("config.json", json!({"theme": "dark", "mcpServers": {"other": {"command": "npx", "args": ["-y", "other"]}}}).to_string()),
    }
}

const HOSTS: [&str; 7] = ["claude-code", "claude-desktop", "cursor", "vscode", "gemini", "codex", "opencode"];

#[test]
fn write_merges_into_each_hosts_file_and_keeps_everything_else() {
    let env = Env::new();
    env.up("p");
    let token = env.jwt("p", "default");
    for host in HOSTS {
        let (name, text) = existing(host);
        let path = env.dir.path().join(host).join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &text).unwrap();
        let out = env.ok(&["hosts", "p", "--for", host, "--write", "--file", &path.display().to_string()]);
        assert!(out.stdout.starts_with("added p in "), "{host}: {out:?}");
        let doc = parsed(&path);
        let key = match host {
            "vscode" => "servers",
            "opencode" => "mcp",
            "codex" => "mcp_servers",
            _ => "mcpServers",
        };
        assert!(doc[key]["other"].is_object(), "{host}: the other server is kept: {doc}");
        let entry = &doc[key]["p"];
        assert!(entry.is_object(), "{host}: {doc}");
        let written = std::fs::read_to_string(&path).unwrap();
        assert!(!written.contains(&token), "{host}: no token in the file by default");
        match host {
            "claude-code" | "gemini" => assert_eq!(entry["headers"]["X-OEMCP-SERVICEACCOUNT"], "${SERVICE_ACCOUNT_JWT}", "{host}: {entry}"),
            "cursor" => assert_eq!(entry["headers"]["X-OEMCP-SERVICEACCOUNT"], "${env:SERVICE_ACCOUNT_JWT}", "{entry}"),
            "codex" => {
                assert_eq!(entry["env_http_headers"]["X-OEMCP-SERVICEACCOUNT"], "SERVICE_ACCOUNT_JWT", "{entry}");
                assert!(written.starts_with(&text), "comments and layout kept:\n{written}");
                assert_eq!(doc["model"], "o3");
            }
            "opencode" => assert_eq!(entry["command"][3], "bridge", "{entry}"),
            _ => assert_eq!(entry["args"][2], "bridge", "{host}: {entry}"),
        }
        if host != "codex" && host != "vscode" {
            assert_eq!(doc["theme"], "dark", "{host}: other settings kept");
        }
        // Again: the entry is replaced, not duplicated.
        let again = env.ok(&["hosts", "p", "--for", host, "--write", "--file", &path.display().to_string(), "--bridge"]);
        assert!(again.stdout.starts_with("updated p in "), "{host}: {again:?}");
        let doc = parsed(&path);
        assert!(doc[key]["other"].is_object() && doc[key]["p"].is_object(), "{host}: {doc}");
    }
}

#[test]
fn embed_token_pastes_it_into_a_private_file_with_a_warning() {
    let env = Env::new();
    env.up("p");
    let token = env.jwt("p", "default");
    let path = env.dir.path().join(".mcp.json");
    let out = env.ok(&["hosts", "p", "--for", "claude-code", "--write", "--embed-token", "--file", &path.display().to_string()]);
    assert!(out.stderr.contains("warning:") && out.stderr.contains("never be committed"), "{}", out.stderr);
    assert!(!out.stderr.contains(&token) && !out.stdout.contains(&token));
    assert_eq!(mode(&path), 0o600);
    assert_eq!(parsed(&path)["mcpServers"]["p"]["headers"]["X-OEMCP-SERVICEACCOUNT"], token.as_str());
    // Codex takes the pasted token in http_headers.
    let toml = env.dir.path().join("config.toml");
    env.ok(&["hosts", "p", "--for", "codex", "--write", "--embed-token", "--file", &toml.display().to_string()]);
    assert_eq!(parsed(&toml)["mcp_servers"]["p"]["http_headers"]["X-OEMCP-SERVICEACCOUNT"], token.as_str());
    // --json: what was written where, the token never.
    let doc = env.ok(&["hosts", "p", "--for", "vscode", "--json"]).json();
    assert_eq!(doc["transport"], "stdio");
    assert_eq!(doc["entry"]["args"][2], "bridge", "{doc}");
    assert!(doc["file"].is_null() && doc["action"].is_null(), "{doc}");
    let doc = env.ok(&["hosts", "p", "--for", "codex", "--write", "--json", "--file", &toml.display().to_string()]).json();
    assert_eq!(doc["action"], "updated");
    assert_eq!(doc["file"], toml.display().to_string());
    assert_eq!(doc["entry"]["env_http_headers"]["X-OEMCP-SERVICEACCOUNT"], "SERVICE_ACCOUNT_JWT", "{doc}");
    // Claude Desktop only launches commands: nothing to paste.
    assert_refused(&env.run(&["hosts", "p", "--for", "claude-desktop", "--embed-token"]), 2, &["claude-desktop"]);
}

#[test]
fn a_file_that_cannot_be_merged_is_left_as_it_was_and_links_stay_links() {
    let env = Env::new();
    env.up("p");
    let path = env.dir.path().join("mcp.json");
    let with_comment = "// my servers\n{\"servers\": {}}\n";
    std::fs::write(&path, with_comment).unwrap();
    let out = env.run(&["hosts", "p", "--for", "vscode", "--write", "--file", &path.display().to_string()]);
    assert_refused(&out, 2, &["mcp.json", "comments"]);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), with_comment);
    let toml = env.dir.path().join("config.toml");
    std::fs::write(&toml, "[mcp_servers\n").unwrap();
    assert_refused(&env.run(&["hosts", "p", "--for", "codex", "--write", "--file", &toml.display().to_string()]), 2, &["TOML"]);

    // A dotfile kept elsewhere and linked: the link survives, its target gets the entry.
    let real = env.dir.path().join("dotfiles/gemini.json");
    std::fs::create_dir_all(real.parent().unwrap()).unwrap();
    std::fs::write(&real, "{\"mcpServers\": {\"other\": {\"command\": \"x\"}}}").unwrap();
    let link = env.dir.path().join("settings.json");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    env.ok(&["hosts", "p", "--for", "gemini", "--write", "--file", &link.display().to_string()]);
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    let doc = parsed(&real);
    assert!(doc["mcpServers"]["other"].is_object() && doc["mcpServers"]["p"]["httpUrl"].is_string(), "{doc}");
}

#[test]
fn write_without_file_goes_to_the_hosts_standard_place() {
    let env = Env::new();
    env.up("p");
    let home = env.dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    for (host, relative) in [
        ("claude-code", ".mcp.json"),
        ("cursor", ".cursor/mcp.json"),
        ("vscode", ".vscode/mcp.json"),
        ("gemini", ".gemini/settings.json"),
        ("opencode", "opencode.json"),
        ("codex", "home/.codex/config.toml"),
        ("claude-desktop", "home/.config/Claude/claude_desktop_config.json"),
    ] {
        let out = env.cmd(&["hosts", "p", "--for", host, "--write"]).env("HOME", &home).run();
        assert_eq!(out.code, 0, "{host}: {out:?}");
        let path = env.dir.path().join(relative);
        assert!(out.stdout.contains(&path.display().to_string()), "{host}: {}", out.stdout);
        assert!(parsed(&path).is_object(), "{host}");
    }
}

#[tokio::test]
async fn the_bridge_command_a_stdio_host_is_given_reaches_the_server() {
    let env = Env::new();
    let port = free_port().to_string();
    env.ok(&["up", "--instance", "p", "--port", &port]);
    let s = Server::start(env.cmd(&["serve", "p", "--bind", "127.0.0.1", "--port", &port]));
    let path = env.dir.path().join("claude_desktop_config.json");
    env.ok(&["hosts", "p", "--for", "claude-desktop", "--write", "--file", &path.display().to_string()]);
    let entry = parsed(&path)["mcpServers"]["p"].clone();
    let mut argv = vec!["getOrders".to_owned(), "{}".to_owned(), entry["command"].as_str().unwrap().to_owned()];
    argv.extend(entry["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_owned()));
    let report = tokio::task::spawn_blocking(move || {
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        run_python("mcp_stdio_client.py", &argv)
    })
    .await
    .unwrap();
    assert_eq!(report["call"]["is_error"], false, "{report}");
    s.wait_for_stderr("tools/call getOrders client=svc-p 200").await;
}
