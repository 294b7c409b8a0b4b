//! `mcpgen up`: resolve the flags (spec, name, issuer, port, scopes) and create the profile
//! (see `crate::create`). Without `--port`, a port no other profile under the root uses.

use std::fs;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use serde_json::json;

use super::check;
use crate::config::ServerConfig;
use crate::create::{self, NewProfile};
use crate::error::Failure;
use crate::openapi::{MAX_SPEC_BYTES, SAMPLE_DEFAULT_SCOPES, Spec};
use crate::output::note;
use crate::profile::{DEFAULT_ISSUER, DEFAULT_PORT, Layout};
use crate::store::{self, Access};
use crate::validate;

pub fn run(root: &Path, args: crate::cli::UpArgs) -> Result<ExitCode> {
    let (spec, spec_copy) = match &args.spec {
        Some(path) => {
            let text = read_spec(path)?;
            let spec = Spec::parse(&text, &path.display().to_string())
                .map_err(|e| Failure::usage(format!("--spec: {e}")).hint("pass an OpenAPI 3.0 or 3.1 document in JSON or YAML"))?;
            let ext = if text.trim_start().starts_with('{') { "json" } else { "yaml" };
            (spec, Some((format!("openapi.{ext}"), text)))
        }
        None => (Spec::sample(), None),
    };
    let name = match &args.instance {
        Some(name) => name.clone(),
        None => derive_name(&spec, args.spec.as_deref()),
    };
    check("--instance", validate::name(&name))?;
    let issuer = args.issuer.clone().unwrap_or_else(|| DEFAULT_ISSUER.to_owned());
    check("--issuer", validate::identifier("issuer", &issuer))?;
    if let Some(url) = &args.downstream {
        check("--downstream", validate::http_url(url))?;
    }
    let port = match args.port {
        Some(port) => port,
        None => free_port(root, &name),
    };
    let scopes = match &args.scopes {
        Some(scopes) => check("--scopes", validate::scopes(scopes))?,
        None if spec_copy.is_none() => SAMPLE_DEFAULT_SCOPES.iter().map(|s| s.to_string()).collect(),
        None => {
            let mut all: Vec<String> = Vec::new();
            for op in spec.operations(&ServerConfig::default().routing.allowed_methods) {
                for scope in op.scopes {
                    if !all.contains(&scope) {
                        all.push(scope);
                    }
                }
            }
            all
        }
    };

    let new = NewProfile {
        name: name.clone(),
        issuer,
        port,
        downstream: args.downstream.clone(),
        scopes,
        spec,
        spec_copy,
        no_sa: args.no_sa,
        force: args.force,
    };
    let summary = create::create(root, &new)?;
    let dir = Layout::new(root, &name).dir;
    note(format!("created profile {name} in {}", dir.display()));
    note(summary);
    note(format!(
        "hint: connect an MCP host with `mcpgen hosts {name} --for claude-code|claude-desktop|cursor|vscode|gemini|codex|opencode`"
    ));
    if args.port.is_none() && port != DEFAULT_PORT {
        note(format!("port {port}: the ports before it belong to other profiles under {} (choose one with --port)", root.display()));
    }
    if args.json {
        let session = store::open(root, &name, Access::Read)?;
        let p = &session.profile;
        let doc = json!({
            "name": p.name,
            "path": std::path::absolute(&dir).unwrap_or(dir),
            "server_url": p.server_url,
            "port": p.port,
            "issuer": p.issuer,
            "key_id": p.key_id,
            "spec": p.spec,
            "downstream": p.downstream.as_deref().map(crate::net::redact_url),
            "sa_tokens": p.sa_tokens,
        });
        crate::output::emit(&crate::output::json(&doc)?)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The first port from [`DEFAULT_PORT`] on that no other profile under `root` uses, so each
/// profile's `client` reaches its own server (`name` itself is left out: `--force` replaces it).
fn free_port(root: &Path, name: &str) -> u16 {
    let taken: std::collections::HashSet<u16> = store::profile_names(root)
        .unwrap_or_default()
        .iter()
        .filter(|other| other.as_str() != name)
        .filter_map(|other| store::open(root, other, Access::Read).ok().map(|s| s.profile.port))
        .collect();
    (DEFAULT_PORT..=u16::MAX).find(|p| !taken.contains(p)).unwrap_or(DEFAULT_PORT)
}

/// The `--spec` file, refused past [`MAX_SPEC_BYTES`] without reading more (it may be
/// `/dev/zero` or a pipe that never ends).
fn read_spec(path: &Path) -> Result<String> {
    use std::io::Read;
    let cannot = |e: std::io::Error| {
        Failure::usage(format!("--spec: cannot read {} ({e})", path.display())).hint("pass the path of an OpenAPI 3.0 or 3.1 file")
    };
    let mut bytes = Vec::new();
    fs::File::open(path).and_then(|f| f.take(MAX_SPEC_BYTES as u64 + 1).read_to_end(&mut bytes)).map_err(cannot)?;
    if bytes.len() > MAX_SPEC_BYTES {
        return Err(Failure::usage(format!("--spec: {} is larger than {MAX_SPEC_BYTES} bytes", path.display())).into());
    }
    String::from_utf8(bytes).map_err(|_| Failure::usage(format!("--spec: {} is not UTF-8 text", path.display())).into())
}

/// Profile name from the spec's title (or file stem), else `demo`.
fn derive_name(spec: &Spec, path: Option<&Path>) -> String {
    let candidates = [spec.title().map(str::to_owned), path.and_then(|p| p.file_stem()).map(|s| s.to_string_lossy().into_owned())];
    for candidate in candidates.into_iter().flatten() {
        let slug: String = candidate
            .to_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect::<String>()
            .split('-')
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("-");
        let slug: String = slug.chars().take(validate::MAX_NAME).collect();
        if validate::name(&slug).is_ok() && (path.is_some() || spec.title() != Spec::sample().title()) {
            return slug;
        }
    }
    "demo".to_owned()
}
