//! `mcpgen sa-revoke`: remove a token — its entry, its file — and put its `jti`, and the `jti`
//! of every pre-rotation copy still accepted under a retired key, on the profile's revocation
//! list, which `serve`, `sa-verify` and `client` honour until the token would have expired.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use crate::error::Failure;
use crate::output::note;
use crate::sa;
use crate::store::{self, Access, Txn};

pub fn run(root: &Path, args: crate::cli::SaRevokeArgs) -> Result<ExitCode> {
    let mut session = store::open(root, &args.profile, Access::Write)?;
    let profile = &mut session.profile;
    let Some(index) = profile.sa_tokens.iter().position(|t| t.name == args.name) else {
        return Err(profile.unknown_token(&args.name));
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
    Ok(ExitCode::SUCCESS)
}
