//! `mcpgen sa-token`: create or replace one named token (see `sa::issue`). `--name` is the
//! token's identity and required. Flags left out on a replace keep the entry's stored values; a
//! replaced token's old `jti` (and those of its pre-rotation copies still accepted under a
//! retired key) is revoked so the superseded JWT stops working anywhere — so replacing the
//! primary token, which every host configured from `client/mcp.json` holds, needs `--force` (or
//! a yes on a terminal). Requested scopes are checked against the profile's tools.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use serde_json::json;

use super::check;
use crate::error::Failure;
use crate::output::{self, note};
use crate::profile::TokenEntry;
use crate::sa::{self, TokenRequest};
use crate::scopes::ServedScopes;
use crate::store::{self, Access};
use crate::validate;

pub fn run(root: &Path, args: crate::cli::SaTokenArgs) -> Result<ExitCode> {
    // Every flag is checked before the profile is touched.
    validate::name(&args.profile).map_err(|e| Failure::usage(format!("profile: {e}")))?;
    let name = token_name(&args)?;
    let scopes = args.scopes.as_deref().map(|s| check("--scopes", validate::scopes(s))).transpose()?;
    if let Some(id) = &args.client_id {
        check("--client-id", validate::identifier("client id", id))?;
    }
    if let Some(iss) = &args.issuer {
        check("--issuer", validate::identifier("issuer", iss))?;
    }
    let request = TokenRequest {
        name: name.clone(),
        scopes: scopes.clone(),
        client_id: args.client_id.clone(),
        days: args.days,
        issuer: args.issuer.clone(),
        primary: args.primary,
    };
    let mut session = store::open(root, &args.profile, Access::Write)?;
    let existing = session.profile.token(&name).cloned();
    let effective = scopes.clone().or_else(|| existing.as_ref().map(|e| e.scopes.clone())).unwrap_or_default();
    // Refused now with --strict-scopes; else printed once the token exists.
    let warnings = check_scopes(&session, &effective, args.strict_scopes)?;
    if let Some(old) = &existing
        && let Some(question) = guard_replace(&session.profile.name, old, scopes.as_deref(), args.force)?
    {
        // Ask without holding the profile's lock (other commands and `serve`'s reloads go
        // on meanwhile), then make sure the token is still the one the question was about.
        let jti = old.jti.clone();
        drop(session);
        confirm(&question)?;
        session = store::open(root, &args.profile, Access::Write)?;
        if session.profile.token(&name).map(|t| t.jti.as_str()) != Some(jti.as_str()) {
            return Err(Failure::error(format!("token {name} changed while waiting for an answer; nothing was changed"))
                .hint("run the command again")
                .into());
        }
    }
    let issued = sa::issue(&mut session, &request)?;
    let entry = &issued.entry;
    let path = std::path::absolute(session.layout.file(&entry.filename)).unwrap_or_else(|_| session.layout.file(&entry.filename));
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
    for warning in warnings {
        note(format!("warning: {warning}"));
    }
    if let Some(old) = &existing {
        note(format!("the previous {} token (jti {}) is revoked; hosts holding it must be given the new one", old.name, old.jti));
        if entry.primary {
            note(format!("client/mcp.json and client/client.env of {} now carry the new token", session.profile.name));
        }
    }
    if entry.issuer != issued.served_issuer {
        note(format!(
            "note: the token's issuer is {:?}; `mcpgen serve {}` expects {:?} and will refuse it",
            entry.issuer, args.profile, issued.served_issuer
        ));
    }
    if args.json {
        let mut doc = json!({
            "profile": session.profile.name,
            "token": entry,
            "replaced": issued.replaced,
            "path": path,
        });
        if args.print {
            doc["jwt"] = json!(issued.jwt);
        }
        output::emit(&output::json(&doc)?)?;
    } else if args.print {
        output::emit(&format!("{}\n", issued.jwt))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `--name`, required; a name given as a second positional argument gets a hint.
fn token_name(args: &crate::cli::SaTokenArgs) -> Result<String> {
    match (&args.name, &args.stray) {
        (_, Some(stray)) => {
            let stray = validate::printable(stray);
            Err(Failure::usage(format!("unexpected argument {stray:?}: the token name goes in --name"))
                .hint(format!("`mcpgen sa-token {} --name {stray} …`", validate::printable(&args.profile)))
                .into())
        }
        (Some(name), None) => Ok(name.clone()),
        (None, None) => Err(Failure::usage("--name is required: it is the token's identity")
            .hint(format!(
                "name the token, e.g. `mcpgen sa-token {} --name ci-bot --scopes …`; `--name default` replaces the primary token (with --force)",
                validate::printable(&args.profile)
            ))
            .into()),
    }
}

/// Scopes no tool uses, a comma-joined list, a token that sees nothing: warnings to print, or
/// an error with `--strict-scopes`. A profile whose tools cannot be read is only noted.
fn check_scopes(session: &store::Session, scopes: &[String], strict: bool) -> Result<Vec<String>> {
    let served = match ServedScopes::load(&session.dir) {
        Ok(served) => served,
        Err(e) if strict => {
            return Err(Failure::error(format!("--strict-scopes: cannot read the profile's tools: {}", crate::error::one_line(&e))).into());
        }
        Err(e) => return Ok(vec![format!("scopes not checked: {}", crate::error::one_line(&e))]),
    };
    let problems: Vec<String> = served.problems(scopes).into_iter().map(|p| format!("--scopes: {p}")).collect();
    if strict && !problems.is_empty() {
        return Err(Failure::usage(problems.join("; ")).hint("fix the scopes, or leave out --strict-scopes to mint anyway").into());
    }
    Ok(problems)
}

/// Replacing the primary token breaks every host configured with it: allowed with `--force`;
/// on a terminal, the question to ask (`Some`); else refused.
fn guard_replace(profile: &str, old: &TokenEntry, scopes: Option<&[String]>, force: bool) -> Result<Option<String>> {
    if !old.primary || force {
        return Ok(None);
    }
    let narrowed: Vec<&String> = scopes.map(|new| old.scopes.iter().filter(|s| !new.contains(s)).collect()).unwrap_or_default();
    let what = if narrowed.is_empty() {
        format!("token {} is the primary token of {profile}", old.name)
    } else {
        format!(
            "token {} is the primary token of {profile}, and these scopes would be dropped: {}",
            old.name,
            narrowed.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")
        )
    };
    let consequence = "replacing it revokes the JWT every host using client/mcp.json holds";
    if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
        return Ok(Some(format!("{what}; {consequence}. Replace it? [y/N] ")));
    }
    Err(Failure::usage(format!("{what}; {consequence}"))
        .hint(format!(
            "pass --force to replace it, or mint a separate token instead: `mcpgen sa-token {profile} --name NEW-NAME --scopes …`"
        ))
        .into())
}

/// Ask on the terminal; anything but y/yes refuses.
fn confirm(question: &str) -> Result<()> {
    let mut stderr = std::io::stderr().lock();
    let _ = write!(stderr, "{question}");
    let _ = stderr.flush();
    drop(stderr);
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    if matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        Err(Failure::usage("not replaced: nothing was changed").hint("pass --force to replace it without asking").into())
    }
}
