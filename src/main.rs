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
