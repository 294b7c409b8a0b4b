//! MCP hosts and the configuration each needs to reach a profile's server (`mcpgen hosts`):
//! which transport the host gets (Streamable HTTP with the token from the host's environment
//! expansion, HTTP with the token pasted, or `mcpgen bridge` over stdio), the entry in the host's
//! own format (`entry`), and its standard file. `file` merges an entry into an existing file.

pub mod file;

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

/// The environment variable hosts expand to the service-account token.
pub const TOKEN_VAR: &str = "SERVICE_ACCOUNT_JWT";

/// The hosts `mcpgen hosts --for` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Host {
    ClaudeCode,
    ClaudeDesktop,
    Cursor,
    Vscode,
    Gemini,
    Codex,
    Opencode,
}

/// How the host reaches the server.
#[derive(Debug, Clone, PartialEq)]
pub enum Transport {
    /// Streamable HTTP; `auth` is the credential header, if the server wants one.
    Http { url: String, auth: Option<Auth> },
    /// `command args…` over stdio: `mcpgen bridge`.
    Stdio { command: String, args: Vec<String> },
}

/// The service-account header and where its value comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct Auth {
    pub header: String,
    pub prefix: String,
    pub value: AuthValue,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AuthValue {
    /// The host expands [`TOKEN_VAR`] from its environment.
    FromEnv,
    /// The token itself, pasted into the file (`--embed-token`).
    Pasted(String),
}

/// The config file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Toml,
}

impl Host {
    pub fn name(self) -> &'static str {
        match self {
            Host::ClaudeCode => "claude-code",
            Host::ClaudeDesktop => "claude-desktop",
            Host::Cursor => "cursor",
            Host::Vscode => "vscode",
            Host::Gemini => "gemini",
            Host::Codex => "codex",
            Host::Opencode => "opencode",
        }
    }

    pub fn format(self) -> Format {
        if self == Host::Codex { Format::Toml } else { Format::Json }
    }

    /// Whether the host's configuration can name a Streamable HTTP server at all.
    pub fn speaks_http(self) -> bool {
        self != Host::ClaudeDesktop
    }

    /// Whether the host expands an environment variable inside a header value (or, for Codex,
    /// takes a header's value from a named variable) — so the file need not hold the token.
    pub fn expands_env(self) -> bool {
        matches!(self, Host::ClaudeCode | Host::Cursor | Host::Gemini | Host::Codex)
    }

    /// The host's standard file: the project's (relative to `cwd`) where the host has one,
    /// else the user's (`home`, `$XDG_CONFIG_HOME`, `$CODEX_HOME`).
    pub fn standard_file(self, cwd: &Path, env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
        let home = env("HOME").filter(|h| !h.is_empty()).map(PathBuf::from);
        Some(match self {
            Host::ClaudeCode => cwd.join(".mcp.json"),
            Host::Cursor => cwd.join(".cursor/mcp.json"),
            Host::Vscode => cwd.join(".vscode/mcp.json"),
            Host::Gemini => cwd.join(".gemini/settings.json"),
            Host::Opencode => cwd.join("opencode.json"),
            Host::Codex => match env("CODEX_HOME").filter(|h| !h.is_empty()) {
                Some(dir) => PathBuf::from(dir).join("config.toml"),
                None => home?.join(".codex/config.toml"),
            },
            Host::ClaudeDesktop => {
                if cfg!(target_os = "macos") {
                    home?.join("Library/Application Support/Claude/claude_desktop_config.json")
                } else {
                    let config =
                        env("XDG_CONFIG_HOME").filter(|d| !d.is_empty()).map(PathBuf::from).or_else(|| home.map(|h| h.join(".config")))?;
                    config.join("Claude/claude_desktop_config.json")
                }
            }
        })
    }

    /// The key under which the host lists its servers (a TOML table for Codex).
    pub fn servers_key(self) -> &'static str {
        match self {
            Host::Vscode => "servers",
            Host::Opencode => "mcp",
            Host::Codex => "mcp_servers",
            _ => "mcpServers",
        }
    }

    /// The entry for one server, in the host's JSON shape (Codex's TOML is built from the same
    /// value by `file`).
    pub fn entry(self, transport: &Transport) -> Value {
        match transport {
            Transport::Stdio { command, args } => match self {
                Host::ClaudeCode | Host::Vscode => json!({"type": "stdio", "command": command, "args": args}),
                Host::Opencode => {
                    let mut argv = vec![command.clone()];
                    argv.extend(args.iter().cloned());
                    json!({"type": "local", "command": argv, "enabled": true})
                }
                _ => json!({"command": command, "args": args}),
            },
            Transport::Http { url, auth } => {
                let mut entry = match self {
                    Host::ClaudeCode | Host::Vscode => json!({"type": "http", "url": url}),
                    Host::Gemini => json!({"httpUrl": url}),
                    Host::Opencode => json!({"type": "remote", "url": url, "enabled": true}),
                    _ => json!({"url": url}),
                };
                if let Some(auth) = auth {
                    match (self, &auth.value) {
                        (Host::Codex, AuthValue::FromEnv) if auth.prefix.is_empty() => {
                            entry["env_http_headers"] = json!({ auth.header.clone(): TOKEN_VAR });
                        }
                        (Host::Codex, AuthValue::FromEnv) => entry["bearer_token_env_var"] = json!(TOKEN_VAR),
                        (Host::Codex, AuthValue::Pasted(token)) => {
                            entry["http_headers"] = json!({ auth.header.clone(): format!("{}{token}", auth.prefix) })
                        }
                        (_, value) => {
                            let value = match value {
                                AuthValue::Pasted(token) => token.clone(),
                                AuthValue::FromEnv if self == Host::Cursor => format!("${{env:{TOKEN_VAR}}}"),
                                AuthValue::FromEnv => format!("${{{TOKEN_VAR}}}"),
                            };
                            entry["headers"] = json!({ auth.header.clone(): format!("{}{value}", auth.prefix) });
                        }
                    }
                }
                entry
            }
        }
    }

    /// Whether Codex can take this header from the environment: `env_http_headers` sends the
    /// variable as is, `bearer_token_env_var` only as `Authorization: Bearer …`.
    pub fn can_expand(self, auth: &Auth) -> bool {
        match self {
            Host::Codex => auth.prefix.is_empty() || (auth.header.eq_ignore_ascii_case("authorization") && auth.prefix == "Bearer "),
            _ => self.expands_env(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(value: AuthValue) -> Option<Auth> {
        Some(Auth { header: "X-OEMCP-SERVICEACCOUNT".into(), prefix: String::new(), value })
    }

    #[test]
    fn env_expansion_uses_each_hosts_syntax() {
        let http = Transport::Http { url: "http://127.0.0.1:8000/mcp".into(), auth: auth(AuthValue::FromEnv) };
        assert_eq!(Host::ClaudeCode.entry(&http)["headers"]["X-OEMCP-SERVICEACCOUNT"], "${SERVICE_ACCOUNT_JWT}");
        assert_eq!(Host::Gemini.entry(&http)["httpUrl"], "http://127.0.0.1:8000/mcp");
        assert_eq!(Host::Cursor.entry(&http)["headers"]["X-OEMCP-SERVICEACCOUNT"], "${env:SERVICE_ACCOUNT_JWT}");
        assert_eq!(Host::Codex.entry(&http)["env_http_headers"]["X-OEMCP-SERVICEACCOUNT"], "SERVICE_ACCOUNT_JWT");
        let bearer = Auth { header: "Authorization".into(), prefix: "Bearer ".into(), value: AuthValue::FromEnv };
        assert!(Host::Codex.can_expand(&bearer));
        let http = Transport::Http { url: "u".into(), auth: Some(bearer) };
        assert_eq!(Host::Codex.entry(&http)["bearer_token_env_var"], "SERVICE_ACCOUNT_JWT");
        assert!(!Host::Codex.can_expand(&Auth { header: "X-Key".into(), prefix: "Token ".into(), value: AuthValue::FromEnv }));
    }

    #[test]
    fn stdio_entries_follow_each_hosts_shape() {
        let stdio = Transport::Stdio { command: "/bin/mcpgen".into(), args: vec!["bridge".into(), "p".into()] };
        assert_eq!(Host::Opencode.entry(&stdio)["command"], json!(["/bin/mcpgen", "bridge", "p"]));
        assert_eq!(Host::Vscode.entry(&stdio)["type"], "stdio");
        assert_eq!(Host::ClaudeDesktop.entry(&stdio), json!({"command": "/bin/mcpgen", "args": ["bridge", "p"]}));
    }
}
