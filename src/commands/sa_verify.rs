//! `mcpgen sa-verify`: check one token against the profile's keys exactly as `serve` would
//! (signature, issuer, audience, expiry, revocation) and print its header and claims.
//! Exit 0 only when the token is valid.

use std::collections::HashSet;
use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use serde_json::{Value, json};

use crate::config::ServerConfig;
use crate::error::Failure;
use crate::output::{self, note};
use crate::profile::PUBLIC_PEM;
use crate::store::{self, Access};
use crate::token::{self, Expect, MAX_LEEWAY_SECS, MAX_TOKEN_BYTES};
use crate::validate;

pub fn run(root: &Path, args: crate::cli::SaVerifyArgs) -> Result<ExitCode> {
    let session = store::open(root, &args.profile, Access::Read)?;
    let profile = &session.profile;
    let (label, jwt, entry_issuer) = match (&args.token, &args.file) {
        (Some(jwt), _) => ("--token".to_owned(), jwt.trim().to_owned(), None),
        (None, Some(file)) => ("--file".to_owned(), read_token_file(file)?, None),
        (None, None) => {
            let entry = match &args.name {
                Some(name) => profile.token(name).ok_or_else(|| profile.unknown_token(name))?,
                None => profile.primary().ok_or_else(|| {
                    Failure::usage(format!("profile {} has no primary token", profile.name))
                        .hint("name one with --name, or pass --token / --file")
                })?,
            };
            let jwt = session.dir.read_text(&entry.filename).map_err(|e| match e.downcast::<Failure>() {
                Ok(refused) => anyhow::Error::from(refused),
                Err(e) => Failure::error(format!("{e:#}"))
                    .hint(format!("re-mint it with `mcpgen sa-token {} --name {}`", profile.name, entry.name))
                    .into(),
            })?;
            (format!("token {}", entry.name), jwt.trim().to_owned(), Some(entry.issuer.clone()))
        }
    };

    let config_path = session.layout.server_config();
    let config = ServerConfig::load(&session.dir)?;
    let sa = config.security.authentication.service_account.effective();
    check_published_key(&session)?;
    // Exactly the keys `serve` trusts.
    let keys = crate::trust::static_keys(&sa, profile, &config_path, crate::profile::now())?;
    let served_issuer = sa.issuer.clone().unwrap_or_else(|| profile.issuer.clone());
    // A stored token is checked against the issuer it was minted for; say so when this
    // profile's own server expects another one.
    if let Some(minted) = entry_issuer.as_deref().filter(|i| *i != served_issuer) {
        note(format!("note: {label} was minted for issuer {minted:?}; this profile's server expects {served_issuer:?} and refuses it"));
    }
    let issuer = entry_issuer.unwrap_or(served_issuer);
    let audience = sa.audience.unwrap_or_else(|| profile.server_url.clone());
    let revoked: HashSet<String> = profile.revoked.iter().map(|r| r.jti.clone()).collect();
    let expect = Expect {
        issuer: Some(&issuer),
        audience: Some(&audience),
        now: crate::profile::now().timestamp(),
        leeway: MAX_LEEWAY_SECS,
        revoked: Some(&revoked),
        algorithms: &[],
    };
    let result = token::verify(&jwt, &keys, &expect);
    let (header, claims) = token::decode_unverified(&jwt).unwrap_or_default();
    let report = json!({
        "valid": result.is_ok(),
        "error": result.as_ref().err().map(|e| e.to_string()),
        "header": Value::Object(header),
        "claims": Value::Object(claims.clone()),
        "expires_at": claims.get("exp").and_then(Value::as_i64).map(token::format_time),
    });
    output::emit(&output::json(&report)?)?;
    match result {
        Ok(v) => {
            note(format!(
                "valid: {label} (client_id {}, kid {}, expires {})",
                validate::printable(v.client_id()),
                v.kid,
                token::format_time(v.exp())
            ));
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            note(format!("invalid: {label}: {e}"));
            Ok(ExitCode::from(1))
        }
    }
}

/// `sa/public.pem` is what other verifiers are given: a profile whose copy is missing or
/// damaged is reported, even though trust comes from the configuration.
fn check_published_key(session: &store::Session) -> Result<()> {
    if session.profile.key_id.is_none() {
        return Ok(());
    }
    let path = session.layout.public_pem();
    session.dir.read_text(PUBLIC_PEM).and_then(|pem| crate::keys::PublicKey::from_pem(&pem)).map_err(|e| {
        Failure::error(format!("{}: {e:#}", path.display()))
            .hint(format!("restore it, or issue a new keypair with `mcpgen remint-all {}`", session.profile.name))
    })?;
    Ok(())
}

fn read_token_file(file: &Path) -> Result<String> {
    let mut text = String::new();
    let limit = (MAX_TOKEN_BYTES + 2) as u64;
    if file == Path::new("-") {
        std::io::stdin().take(limit).read_to_string(&mut text).context("cannot read the token from stdin")?;
    } else {
        std::fs::File::open(file)
            .and_then(|f| f.take(limit).read_to_string(&mut text))
            .map_err(|e| Failure::usage(format!("--file: cannot read {} ({e})", file.display())))?;
    }
    Ok(text.trim().to_owned())
}
