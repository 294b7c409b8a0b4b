//! `mcpgen client`: list or call an MCP server's tools as a service account. Credentials are
//! chosen by `client::target`; exit codes: 2 usage or bad `--args`, 3 refused (401/403), 4
//! unreachable or timed out, 5 the tool failed or does not exist.

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use serde_json::{Value, json};

use crate::client::target::{self, Request};
use crate::client::{ClientError, Hints, McpClient, client_error, render, schema};
use crate::error::{Failure, Kind};
use crate::mcp::jsonrpc::INVALID_PARAMS;
use crate::mcp::messages::Tool;
use crate::{output, validate};

pub fn run(root: &Path, args: crate::cli::ClientArgs) -> Result<ExitCode> {
    crate::logging::init(if args.debug { tracing::Level::DEBUG } else { tracing::Level::WARN });
    let arguments = match (&args.tool, &args.args) {
        (Some(_), Some(raw)) => parse_args(raw)?,
        _ => json!({}),
    };
    let request = Request {
        profile: args.profile.clone(),
        sa_token: args.sa_token.clone(),
        url: args.url.clone(),
        headers: args.headers.clone(),
        oauth: args.oauth.clone(),
    };
    let target = target::resolve_target(root, &request, &|name| std::env::var(name).ok())?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let target::Target { url, headers, oauth, hints } = target;
    runtime.block_on(async {
        let mut client =
            McpClient::new(&url, headers, oauth, Duration::from_secs_f64(args.timeout), args.debug).map_err(|e| client_error(e, &hints))?;
        let outcome = session(root, &mut client, &args, arguments, &hints).await;
        client.close().await;
        outcome
    })
}

async fn session(root: &Path, client: &mut McpClient, args: &crate::cli::ClientArgs, arguments: Value, hints: &Hints) -> Result<ExitCode> {
    client.initialize().await.map_err(|e| initialize_error(e, args.url.as_deref(), hints))?;
    let tools = client.list_tools().await.map_err(|e| client_error(e, hints))?;
    let listing = args.tool.is_none() || args.list_json || args.list_details;
    if listing {
        let selected: Vec<&Tool> = match &args.tool {
            Some(name) => vec![tools.iter().find(|t| &t.name == name).ok_or_else(|| no_such_tool(name, &tools))?],
            None => tools.iter().collect(),
        };
        let prompts = if args.tool.is_none() { client.list_prompts().await.map_err(|e| client_error(e, hints))? } else { Vec::new() };
        if args.tool.is_none() {
            note_hidden_tools(root, args, tools.len());
        }
        let text = if args.list_json || args.json {
            output::json(&json!({"tools": selected, "prompts": prompts}))?
        } else if args.list_details {
            render::details(&selected)
        } else {
            render::listing(&selected, prompts.len())
        };
        output::emit(&text)?;
        return Ok(ExitCode::SUCCESS);
    }

    let name = args.tool.as_deref().unwrap_or_default();
    // Check the arguments against the schema when the tool is visible; a tool we cannot see
    // is still called, so the server can say why (unknown, or a scope we lack).
    let listed = tools.iter().find(|t| t.name == name);
    if let Some(tool) = listed {
        schema::check(&tool.input_schema, &arguments).map_err(|e| {
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
    if args.json {
        // The whole result, `isError` always present, so scripts need one parser.
        let mut doc = serde_json::to_value(&result)?;
        doc["isError"] = json!(result.is_error());
        output::emit(&output::json(&doc)?)?;
    }
    if result.is_error() {
        let text = result.texts().collect::<Vec<_>>().join("\n");
        return Err(Failure::new(
            Kind::Tool,
            format!("tool {} reported an error: {}", validate::printable(name), validate::printable(text.trim())),
        )
        .into());
    }
    if !args.json {
        output::emit(&render::result(&result, args.raw))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// On stderr: how many of the profile's tools this token cannot see (its scopes lack theirs).
/// Only for the profile's own server (no `--url`), where the tool set is known.
fn note_hidden_tools(root: &Path, args: &crate::cli::ClientArgs, listed: usize) {
    let (Some(profile), None) = (&args.profile, &args.url) else { return };
    let Ok(session) = crate::store::open(root, profile, crate::store::Access::Read) else { return };
    let Ok(served) = crate::scopes::ServedScopes::load(&session.dir) else { return };
    let hidden = served.tools.len().saturating_sub(listed);
    if hidden > 0 {
        output::note(format!(
            "note: {hidden} of the {} tools of {profile} {} hidden from this token (it lacks their scopes; `mcpgen sa-tokens {profile}` shows each token's scopes)",
            served.tools.len(),
            if hidden == 1 { "is" } else { "are" }
        ));
    }
}

/// A `--url` that answers 404 to the first request usually lacks the `/mcp` path.
fn initialize_error(e: ClientError, url: Option<&str>, hints: &Hints) -> anyhow::Error {
    let not_found = matches!(&e, ClientError::Status { status: 404 });
    let endpoint = url.and_then(|u| url::Url::parse(u).ok());
    match endpoint {
        Some(endpoint) if not_found && !endpoint.path().trim_end_matches('/').ends_with("/mcp") => {
            let mut suggested = endpoint.clone();
            suggested.set_path(&format!("{}/mcp", endpoint.path().trim_end_matches('/')));
            Failure::error(format!("MCP error: {}", validate::escape_controls(&e.to_string())))
                .hint(format!(
                    "no MCP endpoint at that path; mcpgen serves it at /mcp: --url {}",
                    validate::printable(&crate::net::redact_url(suggested.as_str()))
                ))
                .into()
        }
        _ => client_error(e, hints),
    }
}

fn no_such_tool(name: &str, tools: &[Tool]) -> anyhow::Error {
    let names: Vec<String> = tools.iter().take(20).map(|t| validate::printable(&t.name)).collect();
    let mut hint =
        if names.is_empty() { "this token sees no tools".to_owned() } else { format!("tools this token sees: {}", names.join(", ")) };
    if let Some(close) = closest(name, tools.iter().map(|t| t.name.as_str())) {
        hint.push_str(&format!("; did you mean {}?", validate::printable(close)));
    }
    Failure::new(Kind::Tool, format!("no tool named {:?} on the server", validate::printable(name))).hint(hint).into()
}

/// The name in `candidates` nearest to `typed` (case-insensitive edit distance), if it is near
/// enough to be a typo: at most a third of the name's length, and at least 2, edits away.
fn closest<'a>(typed: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let typed = typed.to_lowercase();
    let limit = (typed.chars().count() / 3).max(2);
    candidates
        .map(|c| (strsim::levenshtein(&typed, &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
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
