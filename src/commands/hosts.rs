//! `mcpgen hosts PROFILE --for HOST`: the configuration that lets an MCP host reach the
//! profile's server, printed or (`--write`) merged into the host's standard file. By default no
//! token goes into the file: hosts that expand environment variables in headers get the token
//! from `$SERVICE_ACCOUNT_JWT`, the others launch `mcpgen bridge`, which reads it from the profile
//! (and follows rotation). `--embed-token` pastes it, with a warning.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use crate::cli::HostsArgs;
use crate::config::{Mode, ServerConfig};
use crate::error::Failure;
use crate::hosts::file::{self, Merged};
use crate::hosts::{Auth, AuthValue, TOKEN_VAR, Transport};
use crate::output::{emit, note};
use crate::store::{self, Access};

pub fn run(root: &Path, args: HostsArgs) -> Result<ExitCode> {
    let host = args.host;
    let session = store::open(root, &args.profile, Access::Read)?;
    let config = ServerConfig::load(&session.dir)?;
    let sa = config.security.authentication.service_account.effective();
    let needs_token = sa.enabled && sa.mode == Mode::Token;
    let profile = &session.profile;
    let token = match &args.sa_token {
        Some(name) => Some(profile.token(name).ok_or_else(|| profile.unknown_token(name))?),
        None => profile.primary(),
    };
    if args.embed_token && !host.speaks_http() {
        return Err(Failure::usage(format!("--embed-token: {} launches stdio servers only; its file never needs the token", host.name()))
            .hint(format!("run `mcpgen hosts {} --for {}` (it launches `mcpgen bridge`)", profile.name, host.name()))
            .into());
    }
    if needs_token && token.is_none() && !args.bridge && host.speaks_http() {
        return Err(Failure::usage(format!("profile {} has no primary token", profile.name))
            .hint(format!("pick one with --sa-token NAME, or mark one with `mcpgen sa-token {} --name NAME --primary`", profile.name))
            .into());
    }
    let mut auth = needs_token.then(|| Auth { header: sa.header.clone(), prefix: sa.client_prefix(), value: AuthValue::FromEnv });
    let pasted = args.embed_token && needs_token;
    if pasted && let (Some(auth), Some(entry)) = (auth.as_mut(), token) {
        let jwt = session.dir.read_text(&entry.filename)?;
        auth.value = AuthValue::Pasted(jwt.trim().to_owned());
    }
    let bridge = args.bridge || !host.speaks_http() || auth.as_ref().is_some_and(|a| !pasted && !host.can_expand(a));
    let transport = if bridge {
        let command = std::env::current_exe().map_err(|e| Failure::error(format!("cannot find the mcpgen executable: {e}")))?;
        let root = std::path::absolute(root)?;
        let mut argv = vec!["--root".to_owned(), root.display().to_string(), "bridge".to_owned(), profile.name.clone()];
        if let Some(name) = &args.sa_token {
            argv.extend(["--sa-token".to_owned(), name.clone()]);
        }
        Transport::Stdio { command: command.display().to_string(), args: argv }
    } else {
        Transport::Http { url: profile.server_url.clone(), auth: auth.clone() }
    };
    let entry = host.entry(&transport);

    let mut action = None;
    let written = if args.write {
        let cwd = std::env::current_dir()?;
        let path = match &args.file {
            Some(path) => path.clone(),
            None => host.standard_file(&cwd, &|name| std::env::var(name).ok()).ok_or_else(|| {
                Failure::usage(format!("cannot tell where {}'s file is ($HOME is not set)", host.name())).hint("name it with --file PATH")
            })?,
        };
        let (path, merged) = file::merge_into(host, &path, &profile.name, &entry, pasted)?;
        let verb = if merged == Merged::Added { "added" } else { "updated" };
        if !args.json {
            emit(&format!("{verb} {} in {}\n", profile.name, path.display()))?;
        }
        action = Some(verb);
        Some(path)
    } else {
        if !args.json {
            emit(&file::render_alone(host, &profile.name, &entry)?)?;
        }
        None
    };
    if args.json {
        let doc = serde_json::json!({
            "host": host.name(),
            "name": profile.name,
            "transport": if matches!(transport, Transport::Stdio { .. }) { "stdio" } else { "http" },
            "entry": entry,
            "file": written,
            "action": action,
        });
        emit(&crate::output::json(&doc)?)?;
    }

    let token_name = token.map(|t| t.name.as_str()).unwrap_or("default");
    match (&transport, &auth) {
        (Transport::Stdio { .. }, _) => note(format!(
            "note: {} launches `mcpgen bridge`, which reads the token from the profile and follows `remint-all`; no token is in the file",
            host.name()
        )),
        (Transport::Http { .. }, Some(Auth { value: AuthValue::Pasted(_), .. })) => {
            let expires = token.map(|t| t.expires_at.format("%Y-%m-%d").to_string()).unwrap_or_default();
            let place = written.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "this configuration".into());
            note(format!(
                "warning: {place} holds token {token_name} in clear (valid until {expires}): anyone who reads it can call the server as it, it stops working at the next `remint-all`, and it must never be committed; the default (no --embed-token) keeps it out"
            ));
        }
        (Transport::Http { .. }, Some(_)) => {
            let file = token.map(|t| session.layout.file(&t.filename)).map(|p| std::path::absolute(&p).unwrap_or(p));
            note(format!(
                "note: {} reads the token from ${TOKEN_VAR}: start it with `export {TOKEN_VAR}=\"$(cat {})\"`, and again after `remint-all` (or use --bridge, which follows rotation)",
                host.name(),
                file.map(|p| p.display().to_string()).unwrap_or_else(|| "TOKEN_FILE".into())
            ));
        }
        (Transport::Http { .. }, None) => {}
    }
    Ok(ExitCode::SUCCESS)
}
