//! One module per subcommand. Each `run` takes resolved settings and returns the exit code.

pub mod bridge;
pub mod client;
pub mod completions;
pub mod demo;
pub mod hosts;
pub mod list;
pub mod remint_all;
pub mod sa_revoke;
pub mod sa_token;
pub mod sa_tokens;
pub mod sa_verify;
pub mod serve;
pub mod up;

use crate::error::Failure;

/// Validate a flag value with a `validate` function, naming the flag on failure.
pub(crate) fn check<T>(flag: &str, result: Result<T, String>) -> anyhow::Result<T> {
    result.map_err(|e| Failure::usage(format!("{flag}: {e}")).into())
}
