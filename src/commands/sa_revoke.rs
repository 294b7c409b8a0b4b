//! `mcpgen sa-revoke`: remove a token — its entry, its file — and put its `jti`, and the `jti`
//! of every pre-rotation copy still accepted under a retired key, on the profile's revocation
//! list, which `serve`, `sa-verify` and `client` honour until the token would have expired.
//! `--ignore-not-found` makes a missing token a success, for scripts that may run twice.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use serde_json::json;

use crate::error::Failure;
use crate::output::{self, note};
use crate::sa;
use crate::store::{self, Access, Txn};

pub fn run(root: &Path, args: crate::cli::SaRevokeArgs) -> Result<ExitCode> {
    let mut session = store::open(root, &args.profile, Access::Write)?;
    let profile = &mut session.profile;
    let Some(index) = profile.sa_tokens.iter().position(|t| t.name == args.name) else {
        if !args.ignore_not_found {
            return Err(profile.unknown_token(&args.name));
        }
        note(format!("profile {}: no token named {}; nothing to revoke", profile.name, args.name));
        if args.json {
            output::emit(&output::json(&json!({"profile": profile.name, "revoked": null}))?)?;
        }
        return Ok(ExitCode::SUCCESS);
    };
    let entry = profile.sa_tokens[index].clone();
    if entry.primary && !args.force {
        return Err(Failure::usage(format!("token {} is the primary token of {}", entry.name, profile.name))
            .hint(format!(
                "mark another token primary first (`mcpgen sa-token {} --name OTHER --primary`), or pass --force to leave the profile without one",
                profile.name
            ))
            .into());
    }
    let now = crate::profile::now();
    profile.sa_tokens.remove(index);
    // The current jti and every pre-rotation copy still accepted under a retired key.
    profile.revoked.extend(entry.revocations(now));
    profile.prune(now);
    let mut txn = Txn::new();
    txn.remove(&entry.filename);
    if entry.primary {
        sa::stage_client_files(&mut txn, &session.dir, &session.profile)?;
    }
    session.save(txn)?;
    note(format!(
        "revoked token {} of {} (jti {}); serve refuses it until {}",
        entry.name,
        args.profile,
        entry.jti,
        entry.expires_at.format("%Y-%m-%d")
    ));
    if entry.primary {
        note(format!("hint: {} has no primary token now; the client files carry no token", args.profile));
    }
    if args.json {
        let revoked = json!({"name": entry.name, "jti": entry.jti, "primary": entry.primary, "expires_at": entry.expires_at});
        output::emit(&output::json(&json!({"profile": args.profile, "revoked": revoked}))?)?;
    }
    Ok(ExitCode::SUCCESS)
}
