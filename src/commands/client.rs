//! `mcpgen client`: list or call an MCP server's tools as a service account.
//!
//! Token choice (first that applies): `--sa-token NAME` > `$SERVICE_ACCOUNT_JWT` >
//! `client/client.env` > the primary in `client/mcp.json`; the header name and prefix come from
//! the profile's server configuration. A token that has expired or was revoked is reported
//! before anything is sent. Exit codes: 2 usage or bad `--args`, 3 refused (401/403), 4
//! unreachable or timed out, 5 the tool failed or does not exist.

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::{Value, json};

use crate::config::{DEFAULT_HEADER, ServerConfig};
use crate::error::{Failure, Kind};
use crate::mcp::client::{ClientError, ExtraHeader, McpClient};
use crate::mcp::jsonrpc::INVALID_PARAMS;
use crate::mcp::oauth::{OAuthConfig, OAuthProvider};
use crate::output;
use crate::profile::Profile;
use crate::store::{self, Access};
use crate::{token, validate};

pub fn run(root: &Path, args: crate::cli::ClientArgs) -> Result<ExitCode> {
    let json_errors = args.json_errors;
    match run_client(root, args) {
        Err(e) if json_errors => Ok(crate::report_error(&e, true)),
        other => other,
    }
}

/// Where to connect and what to send.
pub struct Target {
    pub url: String,
    pub headers: Vec<ExtraHeader>,
    pub oauth: Option<OAuthProvider>,
    /// What error hints mention: the profile and which token was chosen.
    pub hints: Hints,
}

fn run_client(root: &Path, args: crate::cli::ClientArgs) -> Result<ExitCode> {
    if !(args.timeout.is_finite() && args.timeout > 0.0 && args.timeout <= 3600.0) {
        return Err(Failure::usage(format!("--timeout: {} is not between 0 and 3600 seconds", args.timeout)).into());
    }
    let arguments = match (&args.tool, &args.args) {
        (Some(_), Some(raw)) => parse_args(raw)?,
        _ => json!({}),
    };
    let target = resolve_target(root, &args, &|name| std::env::var(name).ok())?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let Target { url, headers, oauth, hints } = target;
    runtime.block_on(async {
        let mut client =
            McpClient::new(&url, headers, oauth, Duration::from_secs_f64(args.timeout), args.debug).map_err(|e| client_error(e, &hints))?;
        let outcome = session(&mut client, &args, arguments, &hints).await;
        client.close().await;
        outcome
    })
}

/// What the error hints need to know.
pub struct Hints {
    pub profile: Option<String>,
    /// Which token was chosen ("token ci-bot", "$SERVICE_ACCOUNT_JWT").
    pub token_source: Option<String>,
}

async fn session(client: &mut McpClient, args: &crate::cli::ClientArgs, arguments: Value, hints: &Hints) -> Result<ExitCode> {
    client.initialize().await.map_err(|e| client_error(e, hints))?;
    let tools = client.list_tools().await.map_err(|e| client_error(e, hints))?;
    let listing = args.tool.is_none() || args.list_json || args.list_details;
    if listing {
        let selected: Vec<&Value> = match &args.tool {
            Some(name) => {
                let tool =
                    tools.iter().find(|t| t.get("name").and_then(Value::as_str) == Some(name)).ok_or_else(|| no_such_tool(name, &tools))?;
                vec![tool]
            }
            None => tools.iter().collect(),
        };
        let prompts = if args.tool.is_none() { client.list_prompts().await.map_err(|e| client_error(e, hints))? } else { Vec::new() };
        let text = if args.list_json {
            output::json(&json!({"tools": selected, "prompts": prompts}))?
        } else if args.list_details {
            render_details(&selected)
        } else {
            render_listing(&selected, prompts.len())
        };
        output::emit(&text)?;
        return Ok(ExitCode::SUCCESS);
    }

    let name = args.tool.as_deref().unwrap_or_default();
    // Check the arguments against the schema when the tool is visible; a tool we cannot see
    // is still called, so the server can say why (unknown, or a scope we lack).
    let listed = tools.iter().find(|t| t.get("name").and_then(Value::as_str) == Some(name));
    if let Some(tool) = listed
        && let Some(schema) = tool.get("inputSchema")
    {
        crate::mcp::schema::check(schema, &arguments).map_err(|e| {
            Failure::usage(format!("--args: {e}")).hint(format!("see the tool's input schema with `--tool {name} --list-details`"))
        })?;
    }
    let result = match client.call_tool(name, arguments).await {
        // Servers word it differently ("Unknown tool: x", rmcp's "tool not found"); invalid
        // params for a tool the list did not show means the same.
        Err(ClientError::Rpc { code, message })
            if code == INVALID_PARAMS && (listed.is_none() || message.to_ascii_lowercase().contains("unknown tool")) =>
        {
            return Err(no_such_tool(name, &tools));
        }
        Err(ClientError::Rpc { code, message }) => {
            return Err(Failure::new(
                Kind::Tool,
                format!("tool {} failed: {} (JSON-RPC error {code})", validate::printable(name), validate::printable(&message)),
            )
            .into());
        }
        Err(e) => return Err(client_error(e, hints)),
        Ok(result) => result,
    };
    if result.get("isError").and_then(Value::as_bool) == Some(true) {
        let text = text_blocks(&result).join("\n");
        return Err(Failure::new(
            Kind::Tool,
            format!("tool {} reported an error: {}", validate::printable(name), validate::printable(text.trim())),
        )
        .into());
    }
    output::emit(&render_result(&result, args.raw))?;
    Ok(ExitCode::SUCCESS)
}

fn no_such_tool(name: &str, tools: &[Value]) -> anyhow::Error {
    let names: Vec<String> = tools.iter().filter_map(|t| t.get("name").and_then(Value::as_str)).take(20).map(validate::printable).collect();
    let hint =
        if names.is_empty() { "this token sees no tools".to_owned() } else { format!("tools this token sees: {}", names.join(", ")) };
    Failure::new(Kind::Tool, format!("no tool named {:?} on the server", validate::printable(name))).hint(hint).into()
}

/// `Tools: N | Prompts: M`, `ToolNames:`, then `- name: description` lines.
pub fn render_listing(tools: &[&Value], prompts: usize) -> String {
    let mut out = format!("Tools: {} | Prompts: {prompts}\nToolNames:\n", tools.len());
    for tool in tools {
        out.push_str(&format!("- {}: {}\n", one_line(&field(tool, "name")), one_line(&field(tool, "description"))));
    }
    out
}

fn render_details(tools: &[&Value]) -> String {
    let mut out = String::new();
    for tool in tools {
        out.push_str(&format!("- {}: {}\n", one_line(&field(tool, "name")), one_line(&field(tool, "description"))));
        let schema = serde_json::to_string_pretty(tool.get("inputSchema").unwrap_or(&Value::Null)).unwrap_or_default();
        out.push_str("  inputSchema:\n");
        for line in schema.lines() {
            out.push_str(&format!("    {}\n", validate::escape_controls(line)));
        }
        if let Some(annotations) = tool.get("annotations") {
            out.push_str(&format!("  annotations: {}\n", validate::printable(&annotations.to_string())));
        }
    }
    out
}

fn field(value: &Value, key: &str) -> String {
    value.get(key).and_then(Value::as_str).unwrap_or("").to_owned()
}

/// Whitespace runs (newlines included) become one space; other control characters are escaped.
fn one_line(text: &str) -> String {
    validate::escape_controls(&text.split_whitespace().collect::<Vec<_>>().join(" "))
}

fn text_blocks(result: &Value) -> Vec<String> {
    result
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|c| c.get("type").and_then(Value::as_str) == Some("text"))
        .filter_map(|c| c.get("text").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

/// A tool result for people: JSON text pretty-printed (else `structuredContent`), other text
/// with control characters escaped; `raw` prints the text exactly as sent.
pub fn render_result(result: &Value, raw: bool) -> String {
    let texts = text_blocks(result);
    let mut out = String::new();
    if raw {
        if texts.is_empty() {
            out.push_str(&result.to_string());
        } else {
            out.push_str(&texts.join("\n"));
        }
        out.push('\n');
        return out;
    }
    for text in &texts {
        match serde_json::from_str::<Value>(text) {
            Ok(value) => out.push_str(&serde_json::to_string_pretty(&value).unwrap_or_default()),
            Err(_) => out.push_str(&text.split('\n').map(validate::escape_controls).collect::<Vec<_>>().join("\n")),
        }
        out.push('\n');
    }
    if texts.is_empty()
        && let Some(structured) = result.get("structuredContent")
    {
        out.push_str(&serde_json::to_string_pretty(structured).unwrap_or_default());
        out.push('\n');
    }
    for other in result.get("content").and_then(Value::as_array).into_iter().flatten() {
        let kind = other.get("type").and_then(Value::as_str).unwrap_or("?");
        if kind != "text" {
            let mime = other.get("mimeType").and_then(Value::as_str).unwrap_or("");
            out.push_str(&format!("[{} {}]\n", validate::printable(kind), validate::printable(mime)));
        }
    }
    out
}

/// `--args`: a JSON object, `@file`, or `-` for stdin.
fn parse_args(raw: &str) -> Result<Value> {
    let text = if raw == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map_err(|e| Failure::usage(format!("--args: cannot read stdin ({e})")))?;
        text
    } else if let Some(file) = raw.strip_prefix('@') {
        std::fs::read_to_string(file).map_err(|e| Failure::usage(format!("--args: cannot read {file} ({e})")))?
    } else {
        raw.to_owned()
    };
    let value: Value = serde_json::from_str(&text).map_err(|e| {
        Failure::usage(format!("--args: invalid JSON ({e})"))
            .hint("pass a JSON object, e.g. --args '{\"limit\": 5}', @file.json, or - for stdin")
    })?;
    if !value.is_object() {
        return Err(Failure::usage("--args: must be a JSON object")
            .hint("wrap the values in an object, e.g. --args '{\"orderId\": \"ord-1\"}'")
            .into());
    }
    Ok(value)
}

/// Work out URL, headers and credentials from the flags, the environment and the profile.
pub fn resolve_target(root: &Path, args: &crate::cli::ClientArgs, env: &dyn Fn(&str) -> Option<String>) -> Result<Target> {
    let mut headers: Vec<ExtraHeader> = Vec::new();
    let mut url = args.url.clone();
    if let Some(u) = &url {
        super::check("--url", validate::http_url(u))?;
    }
    let mut token_source = None;
    let profile_name = args.profile.clone();
    let use_sa = args.oauth.is_none() || args.sa_token.is_some();
    match &args.profile {
        Some(name) => {
            let session = store::open(root, name, Access::Read)?;
            let config = ServerConfig::load(&session.layout.server_config())?;
            let sa = config.security.authentication.service_account.effective();
            url.get_or_insert_with(|| session.profile.server_url.clone());
            if use_sa && let Some((token, source)) = choose_token(&session, &sa.header, &sa.client_prefix(), args.sa_token.as_deref(), env)?
            {
                check_token_locally(&token, &source, Some(&session.profile), args.sa_token.as_deref())?;
                headers.push(header(&sa.header, &format!("{}{}", sa.client_prefix(), token), "the service-account header")?);
                token_source = Some(source);
            }
        }
        None => {
            if args.sa_token.is_some() {
                return Err(Failure::usage("--sa-token needs a profile")
                    .hint("run `mcpgen client PROFILE --sa-token NAME`, or pass the JWT in $SERVICE_ACCOUNT_JWT with --url")
                    .into());
            }
            if url.is_none() {
                return Err(Failure::usage("no server to call: give a profile or --url")
                    .hint("e.g. `mcpgen client myprof` or `mcpgen client --url http://127.0.0.1:8000/mcp`")
                    .into());
            }
            if use_sa && let Some(token) = env("SERVICE_ACCOUNT_JWT").filter(|t| !t.trim().is_empty()) {
                let source = "$SERVICE_ACCOUNT_JWT".to_owned();
                check_token_locally(token.trim(), &source, None, None)?;
                headers.push(header(DEFAULT_HEADER, token.trim(), "$SERVICE_ACCOUNT_JWT")?);
                token_source = Some(source);
            }
        }
    }
    for raw in &args.headers {
        let (name, value) =
            raw.split_once(':').ok_or_else(|| Failure::usage(format!("-H: {:?} is not \"Name: value\"", validate::printable(raw))))?;
        let extra = header(name.trim(), value.trim(), "-H")?;
        // An explicit -H replaces a header of the same name chosen above.
        headers.retain(|h| h.name != extra.name);
        headers.push(extra);
    }
    let oauth = match &args.oauth {
        Some(path) => Some(OAuthProvider::new(OAuthConfig::load(path, env).map_err(|e| {
            Failure::usage(format!("--oauth: {e:#}")).hint("see the README's OAuth2 client-credentials section for the file's fields")
        })?)),
        None => None,
    };
    Ok(Target { url: url.unwrap_or_default(), headers, oauth, hints: Hints { profile: profile_name, token_source } })
}

fn header(name: &str, value: &str, what: &str) -> Result<ExtraHeader> {
    let name = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| Failure::usage(format!("{what}: {:?} is not a valid header name", validate::printable(name))))?;
    let mut value =
        HeaderValue::from_str(value).map_err(|_| Failure::usage(format!("{what}: the value of {name} is not a valid header value")))?;
    value.set_sensitive(true);
    Ok(ExtraHeader { name, value })
}

/// The token and where it came from, in the documented order of precedence.
fn choose_token(
    session: &store::Session,
    header: &str,
    prefix: &str,
    named: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<(String, String)>> {
    let profile = &session.profile;
    if let Some(name) = named {
        let entry = profile.token(name).ok_or_else(|| profile.unknown_token(name))?;
        // Never through a link or a file others can write (see fsx::Dir): its content is sent.
        let jwt = session.dir.read_text(&entry.filename).map_err(|e| match e.downcast::<Failure>() {
            Ok(refused) => anyhow::Error::from(refused),
            Err(e) => {
                Failure::error(format!("{e:#}")).hint(format!("re-mint it with `mcpgen sa-token {} --name {name}`", profile.name)).into()
            }
        })?;
        return Ok(Some((jwt.trim().to_owned(), format!("token {name}"))));
    }
    if let Some(jwt) = env("SERVICE_ACCOUNT_JWT").filter(|t| !t.trim().is_empty()) {
        return Ok(Some((jwt.trim().to_owned(), "$SERVICE_ACCOUNT_JWT".into())));
    }
    if let Some(text) = session.read(crate::profile::CLIENT_ENV)? {
        for line in text.lines() {
            if let Some(jwt) = line.trim().strip_prefix("SERVICE_ACCOUNT_JWT=") {
                let jwt = jwt.trim().trim_matches('"').trim_matches('\'');
                if !jwt.is_empty() {
                    return Ok(Some((jwt.to_owned(), "client/client.env".into())));
                }
            }
        }
    }
    if let Some(text) = session.read(crate::profile::CLIENT_MCP)?
        && let Ok(doc) = serde_json::from_str::<Value>(&text)
        && let Some(value) = doc
            .pointer(&format!("/mcpServers/{}/headers", profile.name))
            .and_then(|h| h.as_object().and_then(|m| m.iter().find(|(k, _)| k.eq_ignore_ascii_case(header)).map(|(_, v)| v.clone())))
        && let Some(value) = value.as_str()
    {
        let jwt = value.strip_prefix(prefix).unwrap_or(value).trim();
        if !jwt.is_empty() {
            return Ok(Some((jwt.to_owned(), "client/mcp.json".into())));
        }
    }
    Ok(None)
}

/// Refuse locally what the server would refuse anyway: an expired or revoked token.
fn check_token_locally(jwt: &str, source: &str, profile: Option<&Profile>, named: Option<&str>) -> Result<()> {
    let Some((_, claims)) = token::decode_unverified(jwt) else { return Ok(()) };
    let remint = match (profile, named) {
        (Some(p), Some(n)) => format!("re-mint it with `mcpgen sa-token {} --name {n}`", p.name),
        (Some(p), None) => format!("re-mint the primary with `mcpgen sa-token {}`, or pick a token with --sa-token", p.name),
        _ => "mint a new token and pass it again".to_owned(),
    };
    if let Some(exp) = claims.get("exp").and_then(Value::as_i64)
        && exp + token::MAX_LEEWAY_SECS < chrono::Utc::now().timestamp()
    {
        return Err(Failure::new(Kind::Auth, format!("{source} expired at {}; nothing was sent", token::format_time(exp)))
            .hint(remint)
            .into());
    }
    if let (Some(p), Some(jti)) = (profile, claims.get("jti").and_then(Value::as_str))
        && p.revoked.iter().any(|r| r.jti == jti)
    {
        return Err(Failure::new(Kind::Auth, format!("{source} has been revoked; nothing was sent")).hint(remint).into());
    }
    Ok(())
}

/// A client failure as an error of the right class, with a hint where the user can act.
pub fn client_error(e: ClientError, hints: &Hints) -> anyhow::Error {
    let profile = hints.profile.as_deref().unwrap_or("PROFILE");
    match &e {
        ClientError::Refused { status, scope, metadata, .. } => {
            let mut hint = match (status, scope) {
                (403, Some(scope)) => format!("mint a token with that scope: `mcpgen sa-token {profile} --name NAME --scopes {scope}`"),
                (401, _) if hints.token_source.is_none() => {
                    format!("pass a token: --sa-token NAME, $SERVICE_ACCOUNT_JWT, or `mcpgen sa-token {profile} --primary`")
                }
                (401, _) => format!(
                    "{} was refused; check it with `mcpgen sa-verify {profile}`{}",
                    hints.token_source.as_deref().unwrap_or("the token"),
                    if hints.token_source.as_deref().is_some_and(|s| s.starts_with("token ")) { " --name NAME" } else { " --token JWT" }
                ),
                _ => "the server refused the request".to_owned(),
            };
            if let Some(m) = metadata {
                hint.push_str(&format!("; resource metadata: {}", validate::printable(m)));
            }
            Failure::new(Kind::Auth, format!("server refused the request: {e}")).hint(hint).into()
        }
        ClientError::Unreachable { .. } => Failure::new(Kind::Unreachable, e.to_string())
            .hint(match &hints.profile {
                Some(p) => format!("is the server running? start it with `mcpgen serve {p}`, or pass --url"),
                None => "check the URL and that the server is running".to_owned(),
            })
            .into(),
        // The message may quote the server; keep its control characters off the terminal.
        ClientError::Rpc { .. } | ClientError::Protocol(_) => {
            Failure::error(format!("MCP error: {}", validate::escape_controls(&e.to_string()))).into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_escapes_control_characters() {
        let tool = json!({"name": "evil", "description": "line one\nline two \u{1b}[31mred"});
        let text = render_listing(&[&tool], 0);
        assert_eq!(text, "Tools: 1 | Prompts: 0\nToolNames:\n- evil: line one line two \\u{1b}[31mred\n");
        let tool = json!({"name": "bad\u{1b}]0;x\u{7}", "description": "d"});
        assert_eq!(render_listing(&[&tool], 0), "Tools: 1 | Prompts: 0\nToolNames:\n- bad\\u{1b}]0;x\\u{7}: d\n");
    }

    #[test]
    fn results_prefer_pretty_json_text_and_raw_is_untouched() {
        let result = json!({"content": [{"type": "text", "text": "{\"a\":1}"}], "structuredContent": {"a": 1}});
        assert_eq!(render_result(&result, false), "{\n  \"a\": 1\n}\n");
        assert_eq!(render_result(&result, true), "{\"a\":1}\n");
        let structured_only = json!({"content": [], "structuredContent": {"b": 2}});
        assert_eq!(render_result(&structured_only, false), "{\n  \"b\": 2\n}\n");
    }
}
