//! `mcpgen sa-token`: create or replace one named token. Flags left out on a replace keep the
//! entry's stored values; a replaced token's old `jti` (and those of its pre-rotation copies
//! still accepted under a retired key) is revoked so the superseded JWT stops working anywhere.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use super::check;
use crate::output::{self, note};
use crate::profile::DEFAULT_TOKEN;
use crate::sa::{self, TokenSpec};
use crate::store::{self, Access, Txn};
use crate::token::Minter;
use crate::validate;

pub fn run(root: &Path, args: crate::cli::SaTokenArgs) -> Result<ExitCode> {
    // Every flag is checked before the profile is touched.
    let scopes = args.scopes.as_deref().map(|s| check("--scopes", validate::scopes(s))).transpose()?;
    let days = args.days;
    if let Some(id) = &args.client_id {
        check("--client-id", validate::identifier("client id", id))?;
    }
    if let Some(iss) = &args.issuer {
        check("--issuer", validate::identifier("issuer", iss))?;
    }

    let mut session = store::open(root, &args.profile, Access::Write)?;
    let key = session.private_key()?;
    let now = crate::profile::now();
    let profile = &session.profile;
    let existing = profile.token(&args.name).cloned();
    let spec = TokenSpec {
        name: args.name.clone(),
        client_id: args
            .client_id
            .clone()
            .or_else(|| existing.as_ref().map(|e| e.client_id.clone()))
            .unwrap_or_else(|| if args.name == DEFAULT_TOKEN { format!("svc-{}", profile.name) } else { args.name.clone() }),
        issuer: args.issuer.clone().or_else(|| existing.as_ref().map(|e| e.issuer.clone())).unwrap_or_else(|| profile.issuer.clone()),
        scopes: scopes.or_else(|| existing.as_ref().map(|e| e.scopes.clone())).unwrap_or_default(),
        days: days.or(existing.as_ref().map(|e| e.days)).unwrap_or(365),
        primary: args.primary || existing.as_ref().is_some_and(|e| e.primary),
    };
    let (entry, jwt) = sa::mint(&Minter::new(&key)?, profile, spec, now)?;
    let token_issuer = entry.issuer.clone();
    let printed = args.print.then(|| jwt.clone());

    let mut txn = Txn::new();
    let touches_client_files = entry.primary;
    sa::stage_token(&mut txn, &entry, jwt);
    let profile = &mut session.profile;
    if let Some(old) = &existing {
        profile.revoked.extend(old.revocations(now));
    }
    if entry.primary {
        for other in profile.sa_tokens.iter_mut() {
            other.primary = false;
        }
    }
    let summary = format!(
        "{} token {} of {} (client_id {}, scopes {}, {}expires {}) -> {}",
        if existing.is_some() { "replaced" } else { "created" },
        entry.name,
        profile.name,
        entry.client_id,
        if entry.scopes.is_empty() { "-".to_owned() } else { entry.scopes.join(" ") },
        if entry.primary { "primary, " } else { "" },
        entry.expires_at.format("%Y-%m-%d"),
        session.layout.file(&entry.filename).display()
    );
    match profile.sa_tokens.iter_mut().find(|t| t.name == entry.name) {
        Some(slot) => *slot = entry,
        None => profile.sa_tokens.push(entry),
    }
    profile.prune(now);
    if touches_client_files {
        sa::stage_client_files(&mut txn, &session.dir, &session.profile)?;
    }
    let served_issuer = crate::config::ServerConfig::load(&session.dir)
        .ok()
        .and_then(|c| c.security.authentication.service_account.issuer)
        .unwrap_or_else(|| session.profile.issuer.clone());
    session.save(txn)?;
    note(summary);
    if token_issuer != served_issuer {
        note(format!(
            "note: the token's issuer is {token_issuer:?}; `mcpgen serve {}` expects {served_issuer:?} and will refuse it",
            args.profile
        ));
    }
    if let Some(jwt) = printed {
        output::emit(&format!("{jwt}\n"))?;
    }
    Ok(ExitCode::SUCCESS)
}
