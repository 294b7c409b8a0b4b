//! `mcpgen bridge`: a stdio MCP server for hosts, relaying to the profile's server over
//! Streamable HTTP (see `client::bridge`). Exit 0 at EOF; a bad flag or profile exits at once.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;

use crate::client::bridge::{self, Options};
use crate::client::target::Request;

pub fn run(root: &Path, args: crate::cli::BridgeArgs) -> Result<ExitCode> {
    crate::logging::init(if args.debug { tracing::Level::DEBUG } else { tracing::Level::WARN });
    let request = Request { profile: args.profile, sa_token: args.sa_token, url: args.url, headers: args.headers, oauth: args.oauth };
    bridge::run(root, Options { request, timeout: Duration::from_secs_f64(args.timeout), debug: args.debug })?;
    Ok(ExitCode::SUCCESS)
}
