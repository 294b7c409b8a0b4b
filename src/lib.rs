//! mcpgen: machine identity for MCP servers.
//!
//! Data flows one way: `cli` (parsed flags) → `commands::*` (one file per subcommand) →
//! `client` / `server` (the MCP client and server) → the domain (`create`, `profile`/`store`,
//! `sa`, `trust`, `config`, `openapi`) → `token` / `keys` → `fsx`. `mcp` holds the wire protocol both sides
//! speak, `net` what they share about HTTP, `logging` the one way to log, `output` renders.

pub mod cli;
pub mod client;
pub mod commands;
pub mod config;
pub mod create;
pub mod document;
pub mod error;
pub mod fsx;
pub mod hosts;
pub mod jwk;
pub mod keys;
pub mod logging;
pub mod mcp;
pub mod net;
pub mod openapi;
pub mod output;
pub mod profile;
pub mod sa;
pub mod scopes;
pub mod server;
pub mod store;
pub mod token;
pub mod trust;
pub mod validate;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use cli::{Cli, Command};

/// Run one parsed command line; an error is reported here (as text, or JSON with
/// `--json-errors`) and becomes the exit code of its class.
pub fn run(cli: Cli) -> ExitCode {
    let json_errors = cli.json_errors;
    match dispatch(cli) {
        Ok(code) => code,
        Err(err) => report_error(&err, json_errors),
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let explicit_root = cli.root.clone();
    let root = cli.root.unwrap_or_else(|| PathBuf::from("generated"));
    match cli.command {
        Command::Up(args) => commands::up::run(&root, args),
        Command::List(args) => commands::list::run(&root, args),
        Command::SaToken(args) => commands::sa_token::run(&root, args),
        Command::SaTokens(args) => commands::sa_tokens::run(&root, args),
        Command::RemintAll(args) => commands::remint_all::run(&root, args),
        Command::SaRevoke(args) => commands::sa_revoke::run(&root, args),
        Command::SaVerify(args) => commands::sa_verify::run(&root, args),
        Command::Serve(args) => commands::serve::run(&root, args),
        Command::Client(args) => commands::client::run(&root, args),
        Command::Bridge(args) => commands::bridge::run(&root, args),
        Command::Hosts(args) => commands::hosts::run(&root, args),
        Command::Demo(args) => commands::demo::run(explicit_root, args),
        Command::Completions(args) => commands::completions::run(args),
    }
}

/// Print an error as one `error:` line (plus a `hint:` line when there is one) or, for scripts,
/// one JSON object; return the exit code of its class.
pub fn report_error(err: &anyhow::Error, json: bool) -> ExitCode {
    let (kind, hint) = error::classify(err);
    let message = error::one_line(err);
    let mut stderr = std::io::stderr().lock();
    if json {
        let obj = serde_json::json!({"error": message, "hint": hint, "exit_code": kind.exit_code()});
        let _ = writeln!(stderr, "{obj}");
    } else {
        let _ = writeln!(stderr, "error: {message}");
        if let Some(hint) = hint {
            let _ = writeln!(stderr, "hint: {hint}");
        }
    }
    ExitCode::from(kind.exit_code())
}
