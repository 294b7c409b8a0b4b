//! `mcpgen list`: the profiles under the root, found by scanning `*/profile.json`. Credentials in
//! URLs are shown redacted and text from the files escaped; stale `up` staging folders are
//! removed on the way.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use serde_json::json;

use crate::net::redact_url;
use crate::output::{self, note};
use crate::profile::Profile;
use crate::store::{self, Access};
use crate::validate;

pub fn run(root: &Path, args: crate::cli::ListArgs) -> Result<ExitCode> {
    let names = store::profile_names(root)?;
    // A killed `up` may have left a staging folder holding a private key.
    crate::create::remove_stale_staging(root);
    if args.profiles {
        output::emit(&names.iter().map(|n| format!("{n}\n")).collect::<String>())?;
        return Ok(ExitCode::SUCCESS);
    }
    let now = crate::profile::now();
    let mut failed = 0;
    let mut rows = Vec::new();
    let mut objects = Vec::new();
    for name in &names {
        match store::open(root, name, Access::Read) {
            Ok(session) => {
                let p: &Profile = &session.profile;
                // Downstream URLs may carry credentials (user:password@, ?api_key=): shown
                // redacted, as `serve` logs them; free text from the file is escaped.
                let downstream = p.downstream.as_deref().map(|d| validate::printable(&redact_url(d)));
                let server_url = validate::printable(&redact_url(&p.server_url));
                let spec = p.spec.as_deref().map(validate::printable);
                let primary = p.primary().map(|t| t.name.clone()).unwrap_or_else(|| "-".into());
                let expired = p.sa_tokens.iter().filter(|t| t.expired(now)).count();
                let tokens = if expired > 0 { format!("{} ({expired} expired)", p.sa_tokens.len()) } else { p.sa_tokens.len().to_string() };
                let mut row = vec![
                    p.name.clone(),
                    p.issuer.clone(),
                    server_url.clone(),
                    tokens,
                    primary.clone(),
                    p.created.format("%Y-%m-%d").to_string(),
                ];
                if args.wide {
                    row.extend([
                        p.key_id.clone().unwrap_or_else(|| "-".into()),
                        spec.clone().unwrap_or_else(|| "(sample)".into()),
                        downstream.clone().unwrap_or_else(|| "-".into()),
                        p.updated.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                    ]);
                }
                rows.push(row);
                objects.push(json!({
                    "name": p.name, "issuer": p.issuer, "server_url": server_url, "port": p.port,
                    "key_id": p.key_id, "spec": spec, "downstream": downstream,
                    "tokens": p.sa_tokens.len(), "expired_tokens": expired, "primary": p.primary().map(|t| &t.name),
                    "created": p.created, "updated": p.updated,
                    "path": std::path::absolute(&session.layout.dir).unwrap_or_else(|_| session.layout.dir.clone()),
                }));
            }
            Err(err) => {
                failed += 1;
                note(format!("error: {}", crate::error::one_line(&err)));
                rows.push(vec![name.clone(), "(unreadable)".into(), "-".into(), "-".into(), "-".into(), "-".into()]);
                objects.push(json!({"name": name, "error": crate::error::one_line(&err)}));
            }
        }
    }
    if args.json {
        output::emit(&output::json(&json!({"profiles": objects}))?)?;
    } else if names.is_empty() {
        note(format!("no profiles under {}; create one with `mcpgen up --instance NAME`", root.display()));
    } else {
        let mut header = vec!["NAME", "ISSUER", "URL", "TOKENS", "PRIMARY", "CREATED"];
        if args.wide {
            header.extend(["KEY_ID", "SPEC", "DOWNSTREAM", "UPDATED"]);
            for row in rows.iter_mut().filter(|r| r.len() < header.len()) {
                row.resize(header.len(), "-".into());
            }
        }
        output::emit(&output::table(&header, &rows))?;
    }
    Ok(if failed > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
