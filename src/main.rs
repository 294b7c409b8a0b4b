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
    let cli = match mcpgen::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) if err.use_stderr() && std::env::args_os().any(|a| a == "--json-errors") => {
            // Scripts that asked for JSON errors get one for a bad command line too.
            let first = err.render().to_string();
            let message = first.lines().next().unwrap_or("invalid command line").trim_start_matches("error: ").to_owned();
            eprintln!("{}", serde_json::json!({"error": message, "hint": "see --help", "exit_code": 2}));
            return ExitCode::from(2);
        }
        Err(err) => {
            let code = if err.use_stderr() { 2 } else { 0 };
            let _ = err.print();
            return ExitCode::from(code);
        }
    };
    match mcpgen::run(cli) {
        Ok(code) => code,
        Err(err) => mcpgen::report_error(&err, false),
    }
}
