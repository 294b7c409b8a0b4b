//! `mcpgen serve`: run the profile's MCP server until SIGINT or SIGTERM. The first line on
//! stdout is the endpoint URL (with the real port when `--port 0`), so scripts and tests can
//! wait for it.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::error::Failure;
use crate::output::{self, note};
use crate::server::Server;
use crate::server::{Shared, Source};
use crate::validate;

pub fn run(root: &Path, args: crate::cli::ServeArgs) -> Result<ExitCode> {
    crate::logging::init_with(tracing::Level::INFO, args.log_format);
    crate::net::init_tls();
    if let Some(url) = &args.downstream {
        super::check("--downstream", validate::http_url(url))?;
    }
    let source = Source { root: root.to_path_buf(), profile: args.profile.clone(), mock: args.mock, downstream: args.downstream.clone() };
    let shared = Shared::new(source)?;
    let ip: IpAddr = match args.bind {
        Some(ip) => ip,
        None => {
            let host = shared.get().settings.host.clone();
            host.parse().map_err(|_| {
                Failure::usage(format!("server.host: {:?} is not an IP address", validate::printable(&host)))
                    .hint("set server.host in mcp_server_config.json to e.g. 127.0.0.1 or 0.0.0.0, or pass --bind")
            })?
        }
    };
    let port = args.port.unwrap_or(shared.get().port);
    // Flags name files relative to the working directory; server.tls relative to the profile.
    let tls_files = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
        _ => shared.get().settings.tls.clone(),
    };
    let certificates = match &tls_files {
        Some((cert, key)) => Some(crate::server::tls::Certificates::load(cert, key).map_err(|e| {
            Failure::usage(format!("TLS: {}", crate::error::one_line(&e)))
                .hint("give a PEM certificate chain and its PEM private key (--tls-cert/--tls-key or server.tls)")
        })?),
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let addr = SocketAddr::new(ip, port);
        let server = Server::bind(shared.clone(), addr, true, certificates).await.map_err(|e| {
            Failure::error(format!("cannot listen on {addr} ({e})"))
                .hint("another process may hold the port; pick another with --port, or --port 0 for any free one")
        })?;
        output::emit(&format!("{}\n", server.url()))?;
        let live = shared.get();
        let sa = &live.settings.sa;
        let auth = if !sa.enabled {
            "authentication disabled".to_owned()
        } else {
            format!(
                "{} mode, header {}{}, {} key{}{}",
                format!("{:?}", sa.mode).to_lowercase(),
                sa.header,
                if sa.required { "" } else { " (optional)" },
                live.keys.len(),
                if live.keys.len() == 1 { "" } else { "s" },
                sa.jwks_uri.as_deref().map(|u| format!(" + JWKS {u}")).unwrap_or_default()
            )
        };
        say(format!(
            "serving profile {} on {}: {} tool{} -> {}; {auth}",
            live.profile,
            server.url(),
            live.tools.tools.len(),
            if live.tools.tools.len() == 1 { "" } else { "s" },
            live.tools.backend().describe()
        ));
        let listening = url::Url::parse(&server.url()).ok().and_then(|u| u.port());
        if listening != Some(live.port) {
            // Tokens stay valid (their audience is the profile's URL), but the client files and
            // `mcpgen client` still call the profile's port.
            say(format!(
                "warning: listening on port {} but profile {} says {}: client/mcp.json and `mcpgen client {}` call that port; reach this server with `mcpgen client {} --url {}`",
                listening.map(|p| p.to_string()).unwrap_or_else(|| "?".into()),
                live.profile,
                live.port,
                live.profile,
                live.profile,
                server.url()
            ));
        }
        if !ip.is_loopback() && tls_files.is_none() {
            say("warning: listening beyond loopback without TLS; pass --tls-cert/--tls-key or put TLS in front of it before exposing tokens to a network");
        }
        drop(live);
        server.run(shutdown_signal()).await?;
        say("server stopped");
        Ok(ExitCode::SUCCESS)
    })
}

/// A note on stderr: a plain line, or a JSON log line with `--log-format json` (so every line a
/// log platform reads parses).
fn say(text: impl AsRef<str>) {
    match crate::logging::format() {
        crate::logging::Format::Json => crate::server::access_log::log_line(text.as_ref()),
        crate::logging::Format::Text => note(text),
    }
}

/// SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
}
