//! Entry point: parse, run, print the error chain once, map it to an exit code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Keep panics (which would be bugs) to one line without a backtrace, even with
    // RUST_BACKTRACE=1 set in the environment.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("error: internal error: {info}");
        eprintln!("hint: this is a bug in mcpgen; please report it with the command you ran");
    }));
    // `MCPGEN_COMPLETE=<shell> mcpgen -- …` (what the completion script runs at each <TAB>):
    // answer and exit before anything else.
    clap_complete::CompleteEnv::with_factory(<mcpgen::cli::Cli as clap::CommandFactory>::command)
        .var(mcpgen::commands::completions::COMPLETE_VAR)
        .complete();
    let cli = match mcpgen::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) if err.use_stderr() && std::env::args_os().any(|a| a == "--json-errors") => {
            // Scripts that asked for JSON errors get one for a bad command line too.
            let first = err.render().to_string();
            let message = first.lines().next().unwrap_or("invalid command line").trim_start_matches("error: ");
            let message = mcpgen::validate::escape_controls(message);
            eprintln!("{}", serde_json::json!({"error": message, "hint": "see --help", "exit_code": 2}));
            return ExitCode::from(2);
        }
        Err(err) if err.use_stderr() => {
            // One `error:` line and one `hint:` line, like every other error.
            // clap quotes the offending value as given: escape it before the terminal sees it.
            let rendered = err.render().to_string();
            let escaped: Vec<String> = rendered.lines().map(|l| mcpgen::validate::escape_controls(l.trim())).collect();
            let lines: Vec<&str> = escaped.iter().map(String::as_str).filter(|l| !l.is_empty()).collect();
            let message: Vec<&str> = lines
                .iter()
                .take_while(|l| !l.starts_with("tip:") && !l.starts_with("Usage:") && !l.starts_with("For more information"))
                .copied()
                .collect();
            let tip = lines.iter().find_map(|l| l.strip_prefix("tip: ")).map(str::to_owned);
            eprintln!("{}", if message.is_empty() { "error: invalid command line".to_owned() } else { message.join(" ") });
            eprintln!("hint: {}", tip.unwrap_or_else(|| "see `mcpgen --help`, or `mcpgen COMMAND --help`".into()));
            return ExitCode::from(2);
        }
        Err(err) => {
            let _ = err.print();
            return ExitCode::SUCCESS;
        }
    };
    mcpgen::run(cli)
}
