//! The command tree: clap definitions only, one `///` sentence per flag (it becomes `--help`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use clap_complete::ArgValueCompleter;

use crate::commands::completions;

/// Machine identity for MCP servers: profiles, Ed25519 service-account JWTs, an MCP server that
/// verifies them, and a client that calls tools as them.
#[derive(Debug, Parser)]
#[command(name = "mcpgen", version = VERSION, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    /// Folder holding the profiles [default: ./generated; `demo` uses a temporary folder].
    #[arg(long, global = true, env = "MCPGEN_ROOT", value_name = "DIR")]
    pub root: Option<PathBuf>,

    /// Print errors as one JSON object on stderr: {"error", "hint", "exit_code"}.
    #[arg(long, global = true)]
    pub json_errors: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a profile: keypair, `default` primary token, server and client configuration.
    Up(UpArgs),
    /// List the profiles under the root.
    List(ListArgs),
    /// Create or replace one named service-account token.
    #[command(name = "sa-token")]
    SaToken(SaTokenArgs),
    /// List a profile's service-account tokens.
    #[command(name = "sa-tokens")]
    SaTokens(SaTokensArgs),
    /// Rotate the keypair and re-mint every token (all or nothing).
    #[command(name = "remint-all")]
    RemintAll(RemintAllArgs),
    /// Remove a token and refuse it in `serve` until it would have expired.
    #[command(name = "sa-revoke")]
    SaRevoke(SaRevokeArgs),
    /// Verify a token against the profile's keys and print its header and claims.
    #[command(name = "sa-verify")]
    SaVerify(SaVerifyArgs),
    /// Run the profile's MCP server (Streamable HTTP).
    Serve(ServeArgs),
    /// Call an MCP server's tools as a service account.
    Client(ClientArgs),
    /// Relay an MCP host's stdio to the server over Streamable HTTP, as a service account.
    Bridge(BridgeArgs),
    /// Print (or merge into its file) an MCP host's configuration for a profile's server.
    Hosts(HostsArgs),
    /// Create a throw-away profile, serve it and call it: a tour in one command.
    Demo(DemoArgs),
    /// Print shell completions.
    Completions(CompletionsArgs),
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Profile name (default: derived from the spec's title, else `demo`).
    #[arg(long, value_name = "NAME", value_parser = parse_name)]
    pub instance: Option<String>,
    /// OpenAPI 3.0/3.1 document (JSON or YAML) whose operations become tools (default: a built-in
    /// orders-and-products sample).
    #[arg(long, value_name = "FILE")]
    pub spec: Option<PathBuf>,
    /// Port the server listens on and the client calls (default: 8000, or the next port no other
    /// profile under the root uses).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,
    /// Issuer (`iss`) of the profile's tokens.
    #[arg(long, value_name = "ISS")]
    pub issuer: Option<String>,
    /// Base URL of the REST API the tools call (default: none, so `serve` answers from the spec's
    /// examples; `openapi.mock: false` in the server configuration calls the spec's servers[0]).
    #[arg(long, value_name = "URL")]
    pub downstream: Option<String>,
    /// Scopes of the `default` token (default: every scope the spec's tools need; for the
    /// built-in sample, orders.read products.read).
    #[arg(long, value_name = "SCOPE", num_args = 1.., value_parser = parse_scopes)]
    pub scopes: Option<Vec<String>>,
    /// Create the profile without service-account authentication (no keys, no tokens).
    #[arg(long)]
    pub no_sa: bool,
    /// Replace an existing profile of the same name.
    #[arg(long)]
    pub force: bool,
    /// Print the new profile as JSON (see the README for the schema).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print JSON: {"profiles": [...]}.
    #[arg(long, conflicts_with = "profiles")]
    pub json: bool,
    /// Print the profile names only, one per line.
    #[arg(long)]
    pub profiles: bool,
    /// Add the key id, spec, downstream and update time columns.
    #[arg(long)]
    pub wide: bool,
}

#[derive(Debug, Args)]
pub struct SaTokenArgs {
    /// Profile name.
    #[arg(add = ArgValueCompleter::new(completions::profiles))]
    pub profile: String,
    /// A token name given without --name (refused with a hint).
    #[arg(hide = true, value_name = "NAME")]
    pub stray: Option<String>,
    /// Token name (required): its identity. `default` is the primary token `up` created;
    /// replacing the primary needs --force.
    #[arg(long, value_name = "NAME", value_parser = parse_name, add = ArgValueCompleter::new(completions::tokens))]
    pub name: Option<String>,
    /// Space-separated scopes; replaces the token's scopes (give none to clear them).
    #[arg(long, value_name = "SCOPE", num_args = 0.., value_parser = parse_scopes)]
    pub scopes: Option<Vec<String>>,
    /// Refuse scopes the profile's tools do not use, and a token that would see no tool.
    #[arg(long)]
    pub strict_scopes: bool,
    /// Replace the primary token (its current JWT is revoked and client/mcp.json rewritten:
    /// every host using it must be given the new one).
    #[arg(long)]
    pub force: bool,
    /// Client identifier (`sub` and `client_id`); default `svc-<profile>` for `default`, else
    /// the token name.
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,
    /// Validity in days (1–36500; default 365).
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = parse_days)]
    pub days: Option<u32>,
    /// Issuer (`iss`); default the profile's.
    #[arg(long, value_name = "ISS")]
    pub issuer: Option<String>,
    /// Make this the primary token (the previous primary is cleared; client files are rewritten).
    #[arg(long)]
    pub primary: bool,
    /// Print the new token on stdout (with --json, as its `jwt` field).
    #[arg(long)]
    pub print: bool,
    /// Print the token's entry as JSON (see the README for the schema).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SaTokensArgs {
    /// Profile name.
    #[arg(add = ArgValueCompleter::new(completions::profiles))]
    pub profile: String,
    /// Print JSON: {"sa_tokens": [...]} with every stored field plus `expired` (and
    /// {"revoked": [...]} with --all).
    #[arg(long)]
    pub json: bool,
    /// Only this token.
    #[arg(long, value_name = "NAME", value_parser = parse_name, add = ArgValueCompleter::new(completions::tokens))]
    pub name: Option<String>,
    /// Print the stored JWT of --name (nothing is minted); refused for an expired or revoked
    /// token.
    #[arg(long, requires = "name", conflicts_with_all = ["json", "all"])]
    pub jwt: bool,
    /// Include revoked tokens (until they would have expired) with their revocation time.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct RemintAllArgs {
    /// Profile name.
    #[arg(add = ArgValueCompleter::new(completions::profiles))]
    pub profile: String,
    /// Keep accepting (and publishing) the previous public key for N days (0–3650; default 0:
    /// a compromised key stops working at once).
    #[arg(long, default_value = "0", value_name = "N", allow_negative_numbers = true, value_parser = parse_grace_days)]
    pub grace_days: u32,
    /// Print the result as JSON (see the README for the schema).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SaRevokeArgs {
    /// Profile name.
    #[arg(add = ArgValueCompleter::new(completions::profiles))]
    pub profile: String,
    /// Token to remove.
    #[arg(long, value_name = "NAME", value_parser = parse_name, add = ArgValueCompleter::new(completions::tokens))]
    pub name: String,
    /// Allow revoking the primary token (the profile is then left without one).
    #[arg(long)]
    pub force: bool,
    /// Succeed (exit 0) when there is no token of that name.
    #[arg(long)]
    pub ignore_not_found: bool,
    /// Print the result as JSON (see the README for the schema).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SaVerifyArgs {
    /// Profile name.
    #[arg(add = ArgValueCompleter::new(completions::profiles))]
    pub profile: String,
    /// Verify the stored token of this name (default: the primary).
    #[arg(long, value_name = "NAME", conflicts_with_all = ["token", "file"], add = ArgValueCompleter::new(completions::tokens))]
    pub name: Option<String>,
    /// Verify this JWT.
    #[arg(long, value_name = "JWT", conflicts_with = "file")]
    pub token: Option<String>,
    /// Verify the JWT in this file (`-` reads stdin).
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Print the report as JSON (the default: sa-verify always prints JSON; accepted so every
    /// command takes --json).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Profile name.
    #[arg(add = ArgValueCompleter::new(completions::profiles))]
    pub profile: String,
    /// Address to listen on [default: server.host of the configuration, 127.0.0.1].
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<std::net::IpAddr>,
    /// Port to listen on (default: the profile's; 0 picks a free port and prints the URL).
    #[arg(long, value_name = "N")]
    pub port: Option<u16>,
    /// Answer tool calls from the spec's examples instead of calling the downstream API.
    #[arg(long)]
    pub mock: bool,
    /// Downstream base URL (overrides the configuration and the spec's servers[0]).
    #[arg(long, value_name = "URL")]
    pub downstream: Option<String>,
    /// How stderr lines are written: `text` (`<time> <message>`) or `json` (one object a line).
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = crate::logging::Format::Text)]
    pub log_format: crate::logging::Format,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key; overrides server.tls).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct ClientArgs {
    /// Profile name (optional with --url).
    #[arg(add = ArgValueCompleter::new(completions::profiles))]
    pub profile: Option<String>,
    /// Authenticate with this named token from the profile.
    #[arg(long, value_name = "NAME", add = ArgValueCompleter::new(completions::tokens))]
    pub sa_token: Option<String>,
    /// Call this tool (without it, list the tools).
    #[arg(long, value_name = "NAME", add = ArgValueCompleter::new(completions::tools))]
    pub tool: Option<String>,
    /// Tool arguments: a JSON object, @FILE, or - for stdin.
    #[arg(long, value_name = "JSON", requires = "tool")]
    pub args: Option<String>,
    /// Print the tool list as JSON.
    #[arg(long, conflicts_with = "list_details")]
    pub list_json: bool,
    /// Print JSON: the tool list ({"tools", "prompts"}) or the whole tool result
    /// (CallToolResult with isError and structuredContent).
    #[arg(long, conflicts_with_all = ["list_details", "raw"])]
    pub json: bool,
    /// Print every tool with its input schema (with --tool, that tool only).
    #[arg(long)]
    pub list_details: bool,
    /// Print the result's text blocks exactly as sent (the default pretty-prints JSON text and
    /// escapes control characters).
    #[arg(long)]
    pub raw: bool,
    /// Show HTTP traffic on stderr, credentials redacted.
    #[arg(long)]
    pub debug: bool,
    /// MCP endpoint to call (default: the profile's server URL).
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Extra request header, "Name: value" (repeatable).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// Seconds to wait for each HTTP exchange (more than 0, at most 3600).
    #[arg(long, default_value = "30", value_name = "S", value_parser = parse_timeout)]
    pub timeout: f64,
    /// OAuth2 client-credentials configuration (YAML or JSON: client_id, client_secret,
    /// token_url, scopes) used instead of a service-account JWT.
    #[arg(long, value_name = "FILE")]
    pub oauth: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BridgeArgs {
    /// Profile name (optional with --url).
    pub profile: Option<String>,
    /// Authenticate with this named token from the profile (re-read when it changes).
    #[arg(long, value_name = "NAME")]
    pub sa_token: Option<String>,
    /// OAuth2 client-credentials configuration (as for `client`) used instead of a
    /// service-account JWT.
    #[arg(long, value_name = "FILE")]
    pub oauth: Option<PathBuf>,
    /// MCP endpoint to relay to (default: the profile's server URL).
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Extra request header, "Name: value" (repeatable).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// Seconds to wait for each HTTP exchange (more than 0, at most 3600).
    #[arg(long, default_value = "60", value_name = "S", value_parser = parse_timeout)]
    pub timeout: f64,
    /// Show HTTP traffic on stderr, credentials redacted.
    #[arg(long)]
    pub debug: bool,
}

#[derive(Debug, Args)]
pub struct HostsArgs {
    /// Profile name.
    pub profile: String,
    /// The MCP host to configure.
    #[arg(long = "for", value_name = "HOST", value_enum)]
    pub host: crate::hosts::Host,
    /// Merge the entry into the host's standard file (atomically, keeping every other entry)
    /// instead of printing it.
    #[arg(long)]
    pub write: bool,
    /// With --write: this file instead of the host's standard one.
    #[arg(long, value_name = "PATH", requires = "write")]
    pub file: Option<PathBuf>,
    /// Launch `mcpgen bridge` over stdio even where the host speaks HTTP.
    #[arg(long, conflicts_with = "embed_token")]
    pub bridge: bool,
    /// Paste the token into the configuration (a warning says why not to).
    #[arg(long)]
    pub embed_token: bool,
    /// Use this named token instead of the primary.
    #[arg(long, value_name = "NAME")]
    pub sa_token: Option<String>,
    /// Print JSON: {"host", "name", "transport", "entry", "file", "action"} (see the README).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Name of the demo profile (with --root, it must not exist there yet).
    #[arg(long, default_value = "demo", value_name = "NAME")]
    pub instance: String,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// Shell to generate completions for.
    pub shell: clap_complete::Shell,
    /// The classic script: flags and subcommands only, no profile, token or tool names (it
    /// does not call mcpgen at each <TAB>).
    #[arg(long = "static")]
    pub r#static: bool,
}

/// `--version`: the package version, the git commit and the build date (see `build.rs`).
pub const VERSION: &str =
    concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("MCPGEN_COMMIT"), ", built ", env!("MCPGEN_BUILD_DATE"), ")");

/// Largest `--grace-days`.
pub const MAX_GRACE_DAYS: u32 = 3650;

/// A profile or token name (`validate::name`).
fn parse_name(raw: &str) -> Result<String, String> {
    crate::validate::name(raw).map(|_| raw.to_owned())
}

/// One `--scopes` value: scope tokens, several when it holds spaces.
fn parse_scopes(raw: &str) -> Result<String, String> {
    crate::validate::scopes(&[raw]).map(|_| raw.to_owned())
}

/// `--days`: 1–36500.
fn parse_days(raw: &str) -> Result<u32, String> {
    let value: i64 = raw.trim().parse().map_err(|_| format!("{:?} is not a whole number of days", crate::validate::printable(raw)))?;
    crate::validate::days(value)
}

/// `--grace-days`: 0–3650.
fn parse_grace_days(raw: &str) -> Result<u32, String> {
    match raw.trim().parse::<i64>() {
        Ok(n) if (0..=MAX_GRACE_DAYS as i64).contains(&n) => Ok(n as u32),
        _ => Err(format!("{:?} is not a whole number from 0 to {MAX_GRACE_DAYS}", crate::validate::printable(raw))),
    }
}

/// `--timeout`: seconds, more than 0 and at most 3600.
fn parse_timeout(raw: &str) -> Result<f64, String> {
    let value: f64 = raw.trim().parse().map_err(|_| format!("{:?} is not a number of seconds", crate::validate::printable(raw)))?;
    if value.is_finite() && value > 0.0 && value <= 3600.0 {
        Ok(value)
    } else {
        Err(format!(
            "{} seconds is out of range: give more than 0 and at most 3600 (e.g. 0.5 or 30)",
            crate::validate::printable(raw.trim())
        ))
    }
}
