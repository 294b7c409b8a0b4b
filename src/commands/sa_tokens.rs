//! `mcpgen sa-tokens`: the seed's table (`NAME CLIENT_ID SCOPES PRIMARY EXPIRES`) or
//! `{"sa_tokens": [...]}` with every stored field plus `expired`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;

use crate::output;
use crate::profile::TokenEntry;
use crate::store::{self, Access};

#[derive(Serialize)]
struct Row<'a> {
    #[serde(flatten)]
    entry: &'a TokenEntry,
    expired: bool,
}

#[derive(Serialize)]
struct Listing<'a> {
    sa_tokens: Vec<Row<'a>>,
}

pub fn run(root: &Path, args: crate::cli::SaTokensArgs) -> Result<ExitCode> {
    let session = store::open(root, &args.profile, Access::Read)?;
    let now = crate::profile::now();
    let tokens = &session.profile.sa_tokens;
    if args.json {
        let listing = Listing { sa_tokens: tokens.iter().map(|entry| Row { entry, expired: entry.expired(now) }).collect() };
        output::emit(&output::json(&listing)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = tokens
        .iter()
        .map(|t| {
            let mut expires = t.expires_at.format("%Y-%m-%d").to_string();
            if t.expired(now) {
                expires.push_str(" (expired)");
            }
            vec![t.name.clone(), t.client_id.clone(), t.scopes.join(" "), if t.primary { "yes".into() } else { "no".into() }, expires]
        })
        .collect();
    output::emit(&output::table(&["NAME", "CLIENT_ID", "SCOPES", "PRIMARY", "EXPIRES"], &rows))?;
    Ok(ExitCode::SUCCESS)
}
