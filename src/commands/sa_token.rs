//! `mcpgen sa-token`: create or replace one named token (see `sa::issue`). Flags left out on a
//! replace keep the entry's stored values; a replaced token's old `jti` (and those of its
//! pre-rotation copies still accepted under a retired key) is revoked so the superseded JWT
//! stops working anywhere.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use super::check;
use crate::output::{self, note};
use crate::sa::{self, TokenRequest};
use crate::store::{self, Access};
use crate::validate;

pub fn run(root: &Path, args: crate::cli::SaTokenArgs) -> Result<ExitCode> {
    // Every flag is checked before the profile is touched.
    let scopes = args.scopes.as_deref().map(|s| check("--scopes", validate::scopes(s))).transpose()?;
    if let Some(id) = &args.client_id {
        check("--client-id", validate::identifier("client id", id))?;
    }
    if let Some(iss) = &args.issuer {
        check("--issuer", validate::identifier("issuer", iss))?;
    }
    let request = TokenRequest {
        name: args.name.clone(),
        scopes,
        client_id: args.client_id.clone(),
        days: args.days,
        issuer: args.issuer.clone(),
        primary: args.primary,
    };
    let mut session = store::open(root, &args.profile, Access::Write)?;
    let issued = sa::issue(&mut session, &request)?;
    let entry = &issued.entry;
    note(format!(
        "{} token {} of {} (client_id {}, scopes {}, {}expires {}) -> {}",
        if issued.replaced { "replaced" } else { "created" },
        entry.name,
        session.profile.name,
        entry.client_id,
        if entry.scopes.is_empty() { "-".to_owned() } else { entry.scopes.join(" ") },
        if entry.primary { "primary, " } else { "" },
        entry.expires_at.format("%Y-%m-%d"),
        session.layout.file(&entry.filename).display()
    ));
    if entry.issuer != issued.served_issuer {
        note(format!(
            "note: the token's issuer is {:?}; `mcpgen serve {}` expects {:?} and will refuse it",
            entry.issuer, args.profile, issued.served_issuer
        ));
    }
    if args.print {
        output::emit(&format!("{}\n", issued.jwt))?;
    }
    Ok(ExitCode::SUCCESS)
}
