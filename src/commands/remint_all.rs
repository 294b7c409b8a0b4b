//! `mcpgen remint-all`: a new keypair and every token re-minted from its stored metadata, in one
//! transaction (see `store`): after a crash at any instant either every token verifies against
//! the old key or every token against the new one. `--grace-days` keeps the old public key
//! accepted and published for a while (each entry remembers its pre-rotation `jti`, so revoking
//! or replacing the token refuses that copy too); the default (0) drops it at once.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use chrono::{Duration, Utc};

use crate::error::Failure;
use crate::fsx;
use crate::keys::{PrivateKey, PublicKey};
use crate::output::note;
use crate::profile::{PRIVATE_PEM, PreviousJti, RetiredKey, TokenEntry};
use crate::sa::{self, TokenSpec};
use crate::store::{self, Access, Txn};
use crate::token::Minter;

pub fn run(root: &Path, args: crate::cli::RemintAllArgs) -> Result<ExitCode> {
    let grace = i64::from(args.grace_days);

    let mut session = store::open(root, &args.profile, Access::Write)?;
    let name = session.profile.name.clone();
    let Some(old_kid) = session.profile.key_id.clone() else {
        return Err(Failure::usage(format!("profile {name} was created with --no-sa and has no keys to rotate"))
            .hint(format!("recreate it with service accounts: `mcpgen up --instance {name} --force`"))
            .into());
    };
    // The old key is only needed to keep accepting it; a lost private key is exactly when
    // remint-all must still work.
    let old_public = if grace > 0 { Some(old_public_key(&session, &old_kid)?) } else { None };

    let now = crate::profile::now();
    let key = PrivateKey::generate();
    let profile = &session.profile;
    let results = mint_all(&key, profile, now);
    let failures: Vec<String> = results.iter().filter_map(|r| r.as_ref().err().cloned()).collect();
    if !failures.is_empty() {
        for f in &failures {
            note(format!("error: {f}"));
        }
        return Err(
            Failure::error(format!("{} of {} tokens could not be re-minted; nothing was changed", failures.len(), results.len())).into()
        );
    }

    let mut txn = Txn::new();
    txn.write(PRIVATE_PEM, fsx::SECRET, key.to_pem()?);
    let mut entries = Vec::with_capacity(results.len());
    for ((mut entry, jwt), old) in results.into_iter().flatten().zip(&session.profile.sa_tokens) {
        sa::stage_token(&mut txn, &entry, jwt);
        // The pre-rotation copy stays valid while the old key is in grace (and older copies
        // while theirs are): remember their jtis so revoking or replacing the token refuses
        // them too. `prune` drops them when their key leaves grace.
        entry.previous_jtis = old.previous_jtis.clone();
        if old.expires_at > now {
            entry.previous_jtis.push(PreviousJti { jti: old.jti.clone(), kid: old_kid.clone(), expires_at: old.expires_at });
        }
        entries.push(entry);
    }
    let profile = &mut session.profile;
    profile.sa_tokens = entries;
    profile.key_id = Some(key.public().thumbprint());
    if let Some(old) = old_public {
        profile.retired_keys.retain(|k| k.kid != old_kid);
        profile.retired_keys.push(RetiredKey {
            kid: old_kid.clone(),
            x: old.x(),
            retired_at: now,
            accept_until: now + Duration::days(grace),
        });
    } else {
        // An immediate rotation is the emergency one: no earlier key stays accepted either.
        profile.retired_keys.clear();
    }
    profile.prune(now);
    sa::stage_public_key(&mut txn, &session.dir, &session.profile, &key.public())?;
    sa::stage_client_files(&mut txn, &session.dir, &session.profile)?;
    let count = session.profile.sa_tokens.len();
    let listed: Vec<String> = session.profile.sa_tokens.iter().take(20).map(|t| t.name.clone()).collect();
    session.save(txn)?;

    note(format!("rotated the key of {name}: {old_kid} -> {}", key.public().thumbprint()));
    note(format!(
        "re-minted {count} token{}{}",
        if count == 1 { "" } else { "s" },
        if listed.is_empty() {
            String::new()
        } else {
            format!(": {}{}", listed.join(", "), if count > listed.len() { ", …" } else { "" })
        }
    ));
    if grace > 0 {
        note(format!("the previous key stays accepted for {grace} day{}", if grace == 1 { "" } else { "s" }));
    } else {
        note("tokens signed with any previous key are no longer accepted");
    }
    note(format!(
        "hint: hosts given a pasted token need it again; `mcpgen hosts {name} --for HOST` shows configurations that follow rotation"
    ));
    if args.json {
        let doc = serde_json::json!({
            "profile": name,
            "key_id": key.public().thumbprint(),
            "previous_key_id": old_kid,
            "previous_key_accepted_until": (grace > 0).then(|| now + Duration::days(grace)),
            "tokens": session.profile.sa_tokens.iter().map(|t| &t.name).collect::<Vec<_>>(),
        });
        crate::output::emit(&crate::output::json(&doc)?)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn old_public_key(session: &store::Session, kid: &str) -> Result<PublicKey> {
    let path = session.layout.public_pem();
    let key = session.dir.read_text(crate::profile::PUBLIC_PEM).and_then(|pem| PublicKey::from_pem(&pem)).map_err(|e| {
        Failure::error(format!("--grace-days needs the current public key: {}: {e:#}", path.display()))
            .hint("restore sa/public.pem, or rotate without a grace period (--grace-days 0)")
    })?;
    if key.thumbprint() != kid {
        return Err(Failure::error(format!("{}: does not match key_id {kid} in profile.json", path.display()))
            .hint("restore the matching sa/public.pem, or rotate without a grace period (--grace-days 0)")
            .into());
    }
    Ok(key)
}

/// Mint every token, split over the available cores (one `Minter` shared by all threads); one
/// result per token, in order.
fn mint_all(key: &PrivateKey, profile: &crate::profile::Profile, now: chrono::DateTime<Utc>) -> Vec<Result<(TokenEntry, String), String>> {
    let tokens = &profile.sa_tokens;
    let minter = match Minter::new(key) {
        Ok(m) => m,
        Err(e) => return vec![Err(format!("{e:#}"))],
    };
    let minter = &minter;
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(8);
    let chunk = tokens.len().div_ceil(threads).max(256);
    std::thread::scope(|scope| {
        let handles: Vec<_> = tokens
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|t| sa::mint(minter, profile, TokenSpec::from(t), now).map_err(|e| format!("token {}: {e:#}", t.name)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_else(|_| vec![Err("minting thread failed".into())])).collect()
    })
}
