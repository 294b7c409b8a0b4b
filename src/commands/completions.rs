//! `mcpgen completions <shell>`: shell completion scripts from the clap definition.

use std::process::ExitCode;

use anyhow::Result;
use clap::CommandFactory;

pub fn run(args: crate::cli::CompletionsArgs) -> Result<ExitCode> {
    let mut command = crate::cli::Cli::command();
    let mut buffer = Vec::new();
    clap_complete::generate(args.shell, &mut command, "mcpgen", &mut buffer);
    crate::output::emit(&String::from_utf8_lossy(&buffer))?;
    Ok(ExitCode::SUCCESS)
}
