//! `mcpgen sa-tokens`: the seed's table (`NAME CLIENT_ID SCOPES PRIMARY EXPIRES`) or
//! `{"sa_tokens": [...]}` with every stored field plus `expired`; `--all` adds the revoked
//! tokens with their revocation time; `--name N --jwt` prints one stored JWT without minting
//! anything (refused, exit 3, for an expired or revoked token).

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;

use crate::error::{Failure, Kind};
use crate::output;
use crate::profile::{Revocation, TokenEntry};
use crate::store::{self, Access, Session};

#[derive(Serialize)]
struct Row<'a> {
    #[serde(flatten)]
    entry: &'a TokenEntry,
    expired: bool,
}

#[derive(Serialize)]
struct Listing<'a> {
    sa_tokens: Vec<Row<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    revoked: Option<Vec<&'a Revocation>>,
}

pub fn run(root: &Path, args: crate::cli::SaTokensArgs) -> Result<ExitCode> {
    let session = store::open(root, &args.profile, Access::Read)?;
    let now = crate::profile::now();
    let profile = &session.profile;
    if args.jwt {
        return print_jwt(&session, args.name.as_deref().unwrap_or_default(), now);
    }
    let tokens: Vec<&TokenEntry> = match &args.name {
        Some(name) => match profile.token(name) {
            Some(entry) => vec![entry],
            None if args.all && profile.revoked.iter().any(|r| &r.name == name) => Vec::new(),
            None => return Err(profile.unknown_token(name)),
        },
        None => profile.sa_tokens.iter().collect(),
    };
    let revoked: Vec<&Revocation> =
        if args.all { profile.revoked.iter().filter(|r| args.name.as_ref().is_none_or(|n| &r.name == n)).collect() } else { Vec::new() };
    if args.json {
        let listing = Listing {
            sa_tokens: tokens.iter().map(|entry| Row { entry, expired: entry.expired(now) }).collect(),
            revoked: args.all.then_some(revoked),
        };
        output::emit(&output::json(&listing)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut rows: Vec<Vec<String>> = tokens
        .iter()
        .map(|t| {
            let mut expires = t.expires_at.format("%Y-%m-%d").to_string();
            if t.expired(now) {
                expires.push_str(" (expired)");
            }
            let mut row =
                vec![t.name.clone(), t.client_id.clone(), t.scopes.join(" "), if t.primary { "yes".into() } else { "no".into() }, expires];
            if args.all {
                row.push("-".into());
            }
            row
        })
        .collect();
    let mut header = vec!["NAME", "CLIENT_ID", "SCOPES", "PRIMARY", "EXPIRES"];
    if args.all {
        header.push("REVOKED");
        rows.extend(revoked.iter().map(|r| {
            vec![
                r.name.clone(),
                "-".into(),
                "-".into(),
                "-".into(),
                r.expires_at.format("%Y-%m-%d").to_string(),
                r.revoked_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            ]
        }));
    }
    output::emit(&output::table(&header, &rows))?;
    Ok(ExitCode::SUCCESS)
}

/// The stored JWT of `name`, exactly as minted; an expired or revoked token, or a file that does
/// not hold the token profile.json lists, is refused.
fn print_jwt(session: &Session, name: &str, now: chrono::DateTime<chrono::Utc>) -> Result<ExitCode> {
    let profile = &session.profile;
    let remint = format!("mint a new one with `mcpgen sa-token {} --name {name}`", profile.name);
    let Some(entry) = profile.token(name) else {
        if let Some(r) = profile.revoked.iter().filter(|r| r.name == name).max_by_key(|r| r.revoked_at) {
            return Err(Failure::new(
                Kind::Auth,
                format!("token {name} of {} was revoked at {}", profile.name, r.revoked_at.format("%Y-%m-%dT%H:%M:%SZ")),
            )
            .hint(remint)
            .into());
        }
        return Err(profile.unknown_token(name));
    };
    if entry.expired(now) {
        return Err(Failure::new(
            Kind::Auth,
            format!("token {name} of {} expired at {}", profile.name, entry.expires_at.format("%Y-%m-%dT%H:%M:%SZ")),
        )
        .hint(remint)
        .into());
    }
    if profile.revoked.iter().any(|r| r.jti == entry.jti) {
        return Err(Failure::new(Kind::Auth, format!("token {name} of {} is revoked", profile.name)).hint(remint).into());
    }
    let path = session.layout.file(&entry.filename);
    let jwt = session.dir.read_text(&entry.filename)?.trim().to_owned();
    let jti = crate::token::decode_unverified(&jwt).and_then(|(_, claims)| claims.get("jti").and_then(|j| j.as_str().map(str::to_owned)));
    // Printed as is, so nothing but the three base64url segments of a JWT (a planted file could
    // hold terminal escapes or a second line after them).
    if !crate::token::is_jwt(&jwt) || jti.as_deref() != Some(entry.jti.as_str()) {
        return Err(Failure::error(format!(
            "{}: does not hold the token profile.json lists for {name} (jti {})",
            path.display(),
            entry.jti
        ))
        .hint(remint)
        .into());
    }
    output::emit(&format!("{jwt}\n"))?;
    Ok(ExitCode::SUCCESS)
}
