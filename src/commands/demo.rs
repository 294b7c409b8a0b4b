//! `mcpgen demo`: the whole product in one command. It creates a throw-away profile from the
//! built-in sample (in a temporary folder unless `--root` is given), mints a limited token,
//! serves the profile in-process on a free loopback port in mock mode, lists and calls tools as
//! the primary token, shows the limited token being refused a tool outside its scopes, and stops.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::json;

use crate::client::target::{self, Request};
use crate::client::{ClientError, ExtraHeader, McpClient, render};
use crate::create::{self, NewProfile};
use crate::openapi::{SAMPLE_DEFAULT_SCOPES, Spec};
use crate::output;
use crate::profile::{DEFAULT_ISSUER, DEFAULT_PORT};
use crate::sa::{self, TokenRequest};
use crate::server::Server;
use crate::server::{Shared, Source};
use crate::store::{self, Access};

const LIMITED: &str = "dashboard";

pub fn run(root: Option<PathBuf>, args: crate::cli::DemoArgs) -> Result<ExitCode> {
    let started = Instant::now();
    let temp;
    let explicit = root.is_some();
    let root = match root {
        Some(root) => root,
        None => {
            temp = tempfile::Builder::new().prefix("mcpgen-demo-").tempdir().context("cannot create a temporary folder")?;
            temp.path().to_path_buf()
        }
    };
    let name = args.instance.clone();
    // A root the user chose (--root or $MCPGEN_ROOT) holds real profiles: never replace one.
    if explicit && std::fs::symlink_metadata(crate::profile::Layout::new(&root, &name).dir).is_ok() {
        return Err(crate::error::Failure::usage(format!("profile {name:?} already exists under {}", root.display()))
            .hint("the demo would replace it: pass another --instance, or run the demo without --root (and $MCPGEN_ROOT) to use a temporary folder")
            .into());
    }
    let is_temp = if explicit { "" } else { " (a temporary folder, removed when the demo ends)" };
    let mut say = |line: String| {
        let _ = output::emit(&format!("{line}\n"));
    };

    say(format!("1. Create profile {name} from the built-in orders-and-products spec (Ed25519 keypair + `default` primary token)"));
    let new = NewProfile {
        name: name.clone(),
        issuer: DEFAULT_ISSUER.to_owned(),
        port: DEFAULT_PORT,
        downstream: None,
        scopes: SAMPLE_DEFAULT_SCOPES.iter().map(|s| s.to_string()).collect(),
        spec: Spec::sample(),
        spec_copy: None,
        no_sa: false,
        force: false,
    };
    create::create(&root, &new)?;
    say(format!("   -> {}{is_temp}", root.join(&name).display()));

    say(format!("2. Mint a limited token `{LIMITED}` with only products.read, valid 30 days"));
    let request =
        TokenRequest { name: LIMITED.into(), scopes: Some(vec!["products.read".into()]), days: Some(30), ..TokenRequest::default() };
    sa::issue(&mut store::open(&root, &name, Access::Write)?, &request)?;

    crate::net::init_tls();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let code = runtime.block_on(tour(&root, &name, &mut say))?;
    say(format!(
        "Done in {:.0} ms. Next: `mcpgen up --instance myprof`, `mcpgen serve myprof`, `mcpgen client myprof`.",
        started.elapsed().as_secs_f64() * 1000.0
    ));
    Ok(code)
}

async fn tour(root: &Path, name: &str, say: &mut impl FnMut(String)) -> Result<ExitCode> {
    let shared = Shared::new(Source { root: root.to_path_buf(), profile: name.to_owned(), mock: true, downstream: None })?;
    let server = Server::bind(shared, SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), false, None).await?;
    let url = server.url();
    say(format!("3. Serve it (mock mode, answers from the spec's examples) at {url}"));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run(async move {
        let _ = stop_rx.await;
    }));

    // The same token choice and header as `mcpgen client PROFILE --sa-token NAME --url URL`.
    let token_of = |token: &str| -> Result<Vec<ExtraHeader>> {
        let request =
            Request { profile: Some(name.to_owned()), sa_token: Some(token.to_owned()), url: Some(url.clone()), ..Request::default() };
        Ok(target::resolve_target(root, &request, &|_| None)?.headers)
    };

    let result = async {
        let mut primary = McpClient::new(&url, token_of("default")?, None, Duration::from_secs(10), false)?;
        primary.initialize().await?;
        let tools = primary.list_tools().await?;
        say(format!("4. List tools as the primary token (scopes orders.read products.read): {} visible", tools.len()));
        let refs: Vec<_> = tools.iter().collect();
        for line in render::listing(&refs, 0).lines() {
            say(format!("   {line}"));
        }
        say("5. Call getOrder {\"orderId\": \"ord-1001\"} as the primary token".into());
        let result = primary.call_tool("getOrder", json!({"orderId": "ord-1001"})).await?;
        for line in render::result(&result, false).lines() {
            say(format!("   {line}"));
        }
        primary.close().await;

        let mut limited = McpClient::new(&url, token_of(LIMITED)?, None, Duration::from_secs(10), false)?;
        limited.initialize().await?;
        let visible = limited.list_tools().await?.len();
        say(format!("6. As `{LIMITED}` (products.read only): {visible} tool visible; calling getOrders needs orders.read"));
        match limited.call_tool("getOrders", json!({})).await {
            Err(ClientError::Refused { status, error, scope, .. }) => say(format!(
                "   refused as expected: HTTP {status} {}, needed scope {}",
                error.unwrap_or_default(),
                scope.unwrap_or_default()
            )),
            Err(e) => bail!("the limited token failed in an unexpected way: {e}"),
            Ok(_) => bail!("the limited token was allowed a tool outside its scopes"),
        }
        limited.close().await;
        anyhow::Ok(())
    }
    .await;
    let _ = stop_tx.send(());
    let _ = running.await;
    result?;
    Ok(ExitCode::SUCCESS)
}
