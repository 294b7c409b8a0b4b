//! `mcpgen completions <shell>`: shell completion. The default script asks the binary itself at
//! each <TAB> (clap_complete's dynamic completion, `MCPGEN_COMPLETE=<shell> mcpgen`), so it completes
//! data as well as flags: profile names under the root, a profile's token names (`--name`,
//! `--sa-token`) and its tool names (`--tool`), read from the files without a server. `--static`
//! prints the classic script that knows the flags only.
//!
//! A completer sees only the word being completed, so the root and the profile come from the
//! command line being completed (`--root`, `$MCPGEN_ROOT`, the first positional argument).

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::CommandFactory;
use clap_complete::CompletionCandidate;

use crate::store::{self, Access};

/// The variable that makes `mcpgen` answer a completion request instead of running (named for
/// mcpgen, so a stray `COMPLETE` in someone's environment never hijacks a command).
pub const COMPLETE_VAR: &str = "MCPGEN_COMPLETE";

pub fn run(args: crate::cli::CompletionsArgs) -> Result<ExitCode> {
    let mut command = crate::cli::Cli::command();
    let mut buffer = Vec::new();
    if args.r#static {
        clap_complete::generate(args.shell, &mut command, "mcpgen", &mut buffer);
    } else {
        let shell: &dyn clap_complete::env::EnvCompleter = match args.shell {
            clap_complete::Shell::Bash => &clap_complete::env::Bash,
            clap_complete::Shell::Zsh => &clap_complete::env::Zsh,
            clap_complete::Shell::Fish => &clap_complete::env::Fish,
            clap_complete::Shell::Elvish => &clap_complete::env::Elvish,
            clap_complete::Shell::PowerShell => &clap_complete::env::Powershell,
            _ => {
                clap_complete::generate(args.shell, &mut command, "mcpgen", &mut buffer);
                crate::output::emit(&String::from_utf8_lossy(&buffer))?;
                return Ok(ExitCode::SUCCESS);
            }
        };
        shell.write_registration(COMPLETE_VAR, "mcpgen", "mcpgen", "mcpgen", &mut buffer)?;
    }
    crate::output::emit(&String::from_utf8_lossy(&buffer))?;
    Ok(ExitCode::SUCCESS)
}

/// Flags whose next word is their value (so it is not the profile).
const VALUE_FLAGS: [&str; 22] = [
    "--root",
    "--name",
    "--sa-token",
    "--tool",
    "--args",
    "--url",
    "-H",
    "--header",
    "--timeout",
    "--oauth",
    "--client-id",
    "--days",
    "--issuer",
    "--port",
    "--bind",
    "--downstream",
    "--grace-days",
    "--token",
    "--file",
    "--spec",
    "--instance",
    "--scopes",
];

/// The words of the command line being completed (after `--`), without the program name.
fn words() -> Vec<String> {
    let args: Vec<OsString> = std::env::args_os().collect();
    let start = args.iter().position(|a| a == "--").map(|i| i + 2).unwrap_or(args.len());
    args.get(start..).unwrap_or_default().iter().map(|a| a.to_string_lossy().into_owned()).collect()
}

/// `--root` from the line, else `$MCPGEN_ROOT`, else `./generated`.
fn root(words: &[String]) -> PathBuf {
    let mut found = None;
    for (i, word) in words.iter().enumerate() {
        if word == "--root" {
            found = words.get(i + 1).cloned();
        } else if let Some(value) = word.strip_prefix("--root=") {
            found = Some(value.to_owned());
        }
    }
    found.or_else(|| std::env::var("MCPGEN_ROOT").ok()).map(PathBuf::from).unwrap_or_else(|| PathBuf::from("generated"))
}

/// The profile named on the line: the first positional word after the subcommand.
fn profile(words: &[String]) -> Option<String> {
    let names: Vec<String> = crate::cli::Cli::command().get_subcommands().map(|c| c.get_name().to_owned()).collect();
    let mut iter = words.iter().enumerate().skip_while(|(_, w)| !names.contains(w)).skip(1);
    while let Some((i, word)) = iter.next() {
        if word.starts_with('-') {
            if VALUE_FLAGS.contains(&word.as_str()) && !word.contains('=') {
                iter.next();
            }
            continue;
        }
        // The word being completed is not a profile yet.
        if i + 1 < words.len() {
            return Some(word.clone());
        }
    }
    None
}

fn candidates(current: &OsStr, values: impl IntoIterator<Item = String>) -> Vec<CompletionCandidate> {
    let prefix = current.to_string_lossy();
    values.into_iter().filter(|v| v.starts_with(prefix.as_ref())).map(CompletionCandidate::new).collect()
}

/// Profile names under the root.
pub fn profiles(current: &OsStr) -> Vec<CompletionCandidate> {
    candidates(current, store::profile_names(&root(&words())).unwrap_or_default())
}

/// Token names of the profile on the line.
pub fn tokens(current: &OsStr) -> Vec<CompletionCandidate> {
    let words = words();
    let Some(profile) = profile(&words) else { return Vec::new() };
    let Ok(session) = store::open(&root(&words), &profile, Access::Read) else { return Vec::new() };
    candidates(current, session.profile.sa_tokens.iter().map(|t| t.name.clone()))
}

/// Tool names of the profile on the line (from its spec and configuration).
pub fn tools(current: &OsStr) -> Vec<CompletionCandidate> {
    let words = words();
    let Some(profile) = profile(&words) else { return Vec::new() };
    let Ok(session) = store::open(&root(&words), &profile, Access::Read) else { return Vec::new() };
    let Ok(served) = crate::scopes::ServedScopes::load(&session.dir) else { return Vec::new() };
    candidates(current, served.tools.into_iter().map(|(name, _)| name))
}
