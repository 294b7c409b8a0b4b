//! One module per subcommand. Each `run` takes resolved settings and returns the exit code.

pub mod client;
pub mod completions;
pub mod demo;
pub mod list;
pub mod remint_all;
pub mod sa_revoke;
pub mod sa_token;
pub mod sa_tokens;
pub mod sa_verify;
pub mod serve;
pub mod up;

use crate::error::Failure;
use crate::validate;

/// Parse `--days`-style numbers ourselves so every bad value gets the same one-line message.
pub(crate) fn parse_days(flag: &str, raw: &str) -> anyhow::Result<u32> {
    let value: i64 = raw.trim().parse().map_err(|_| {
        Failure::usage(format!("{flag}: {:?} is not a whole number", validate::printable(raw)))
            .hint(format!("{flag} takes a number of days from 1 to {}", validate::MAX_DAYS))
    })?;
    validate::days(value).map_err(|e| {
        Failure::usage(format!("{flag}: {e}")).hint(format!("{flag} takes a number of days from 1 to {}", validate::MAX_DAYS)).into()
    })
}

/// Validate a flag value with a `validate` function, naming the flag on failure.
pub(crate) fn check<T>(flag: &str, result: Result<T, String>) -> anyhow::Result<T> {
    result.map_err(|e| Failure::usage(format!("{flag}: {e}")).into())
}
