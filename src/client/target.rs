//! Where `mcpgen client` connects and with which credentials. Token choice (first that
//! applies): `--sa-token NAME` > `$SERVICE_ACCOUNT_JWT` > `client/client.env` > the primary in
//! `client/mcp.json`; the header name and prefix come from the profile's server configuration.
//! A token that has expired or was revoked is refused here, before anything is sent.

use std::path::{Path, PathBuf};

use anyhow::Result;
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::Value;

use crate::client::oauth::{OAuthConfig, OAuthProvider};
use crate::client::{ExtraHeader, Hints};
use crate::config::{DEFAULT_HEADER, ServerConfig};
use crate::error::{Failure, Kind};
use crate::profile::Profile;
use crate::store::{self, Access};
use crate::{token, validate};

/// What the caller asked for: `client`'s flags, or what `demo` builds.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub profile: Option<String>,
    pub sa_token: Option<String>,
    pub url: Option<String>,
    /// `-H "Name: value"` as given.
    pub headers: Vec<String>,
    pub oauth: Option<PathBuf>,
}

/// Where to connect and what to send.
pub struct Target {
    pub url: String,
    pub headers: Vec<ExtraHeader>,
    pub oauth: Option<OAuthProvider>,
    /// What error hints mention: the profile and which token was chosen.
    pub hints: Hints,
}

/// Work out URL, headers and credentials from the flags, the environment and the profile.
pub fn resolve_target(root: &Path, args: &Request, env: &dyn Fn(&str) -> Option<String>) -> Result<Target> {
    let Headers { url, headers, hints } = resolve_headers(root, args, env)?;
    let oauth = args.oauth.as_deref().map(|path| oauth_provider(path, &url, env)).transpose()?;
    Ok(Target { url, headers, oauth, hints })
}

/// The OAuth client-credentials provider of an `--oauth` file, for the MCP endpoint `url`.
pub fn oauth_provider(path: &Path, url: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<OAuthProvider> {
    let config = OAuthConfig::load(path, env).map_err(|e| {
        Failure::usage(format!("--oauth: {e:#}")).hint("see the README's OAuth2 client-credentials section for the file's fields")
    })?;
    Ok(OAuthProvider::new(config, url))
}

/// What [`resolve_headers`] found: everything but the OAuth provider.
pub struct Headers {
    pub url: String,
    pub headers: Vec<ExtraHeader>,
    pub hints: Hints,
}

/// URL and headers (the service-account token and `-H`), without loading `--oauth`: what a
/// long-running caller (`bridge`) works out again when the profile's files change.
pub fn resolve_headers(root: &Path, args: &Request, env: &dyn Fn(&str) -> Option<String>) -> Result<Headers> {
    let mut headers: Vec<ExtraHeader> = Vec::new();
    let mut url = args.url.clone();
    if let Some(u) = &url {
        validate::http_url(u).map_err(|e| Failure::usage(format!("--url: {e}")))?;
    }
    let mut token_source = None;
    let profile_name = args.profile.clone();
    let use_sa = args.oauth.is_none() || args.sa_token.is_some();
    match &args.profile {
        Some(name) => {
            let session = store::open(root, name, Access::Read)?;
            let config = ServerConfig::load(&session.dir)?;
            let sa = config.security.authentication.service_account.effective();
            url.get_or_insert_with(|| session.profile.server_url.clone());
            if use_sa && let Some((token, source)) = choose_token(&session, &sa.header, &sa.client_prefix(), args.sa_token.as_deref(), env)?
            {
                check_token_locally(&token, &source, Some(&session.profile), args.sa_token.as_deref())?;
                if let Some(target) = &args.url {
                    warn_if_not_audience(&token, &source, target);
                }
                headers.push(header(&sa.header, &format!("{}{}", sa.client_prefix(), token), "the service-account header")?);
                token_source = Some(source);
            }
        }
        None => {
            if args.sa_token.is_some() {
                return Err(Failure::usage("--sa-token needs a profile")
                    .hint("run `mcpgen client PROFILE --sa-token NAME`, or pass the JWT in $SERVICE_ACCOUNT_JWT with --url")
                    .into());
            }
            if url.is_none() {
                return Err(Failure::usage("no server to call: give a profile or --url")
                    .hint("e.g. `mcpgen client myprof` or `mcpgen client --url http://127.0.0.1:8000/mcp`")
                    .into());
            }
            if use_sa && let Some(token) = env("SERVICE_ACCOUNT_JWT").filter(|t| !t.trim().is_empty()) {
                let source = "$SERVICE_ACCOUNT_JWT".to_owned();
                check_token_locally(token.trim(), &source, None, None)?;
                headers.push(header(DEFAULT_HEADER, token.trim(), "$SERVICE_ACCOUNT_JWT")?);
                token_source = Some(source);
            }
        }
    }
    for raw in &args.headers {
        let (name, value) =
            raw.split_once(':').ok_or_else(|| Failure::usage(format!("-H: {:?} is not \"Name: value\"", validate::printable(raw))))?;
        let extra = header(name.trim(), value.trim(), "-H")?;
        // An explicit -H replaces a header of the same name chosen above.
        headers.retain(|h| h.name != extra.name);
        headers.push(extra);
    }
    let url = url.unwrap_or_default();
    Ok(Headers { url, headers, hints: Hints { profile: profile_name, token_source } })
}

/// A token given to a server it was not minted for can be replayed by that server against the
/// one it was: say so when `--url` is on another host than the token's audience (another port
/// of the same host is the usual `serve --port 0` case).
fn warn_if_not_audience(jwt: &str, source: &str, url: &str) {
    let host = |u: &str| url::Url::parse(u).ok().and_then(|u| u.host_str().map(str::to_ascii_lowercase));
    let Some((_, claims)) = token::decode_unverified(jwt) else { return };
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => return,
    };
    if !audiences.iter().any(|a| host(a) == host(url)) {
        crate::output::note(format!(
            "warning: {source} is meant for {}, not {}; that server receives it and could use it there",
            audiences.iter().map(|a| crate::net::redact_url(a)).collect::<Vec<_>>().join(", "),
            crate::net::redact_url(url)
        ));
    }
}

fn header(name: &str, value: &str, what: &str) -> Result<ExtraHeader> {
    let name = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| Failure::usage(format!("{what}: {:?} is not a valid header name", validate::printable(name))))?;
    let mut value =
        HeaderValue::from_str(value).map_err(|_| Failure::usage(format!("{what}: the value of {name} is not a valid header value")))?;
    value.set_sensitive(true);
    Ok(ExtraHeader { name, value })
}

/// The token and where it came from, in the documented order of precedence.
fn choose_token(
    session: &store::Session,
    header: &str,
    prefix: &str,
    named: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<(String, String)>> {
    let profile = &session.profile;
    if let Some(name) = named {
        let entry = profile.token(name).ok_or_else(|| profile.unknown_token(name))?;
        // Never through a link or a file others can write (see fsx::Dir): its content is sent.
        let jwt = session.dir.read_text(&entry.filename).map_err(|e| match e.downcast::<Failure>() {
            Ok(refused) => anyhow::Error::from(refused),
            Err(e) => {
                Failure::error(format!("{e:#}")).hint(format!("re-mint it with `mcpgen sa-token {} --name {name}`", profile.name)).into()
            }
        })?;
        return Ok(Some((jwt.trim().to_owned(), format!("token {name}"))));
    }
    if let Some(jwt) = env("SERVICE_ACCOUNT_JWT").filter(|t| !t.trim().is_empty()) {
        return Ok(Some((jwt.trim().to_owned(), "$SERVICE_ACCOUNT_JWT".into())));
    }
    if let Some(text) = session.read(crate::profile::CLIENT_ENV)? {
        for line in text.lines() {
            if let Some(jwt) = line.trim().strip_prefix("SERVICE_ACCOUNT_JWT=") {
                let jwt = jwt.trim().trim_matches('"').trim_matches('\'');
                if !jwt.is_empty() {
                    return Ok(Some((jwt.to_owned(), "client/client.env".into())));
                }
            }
        }
    }
    if let Some(text) = session.read(crate::profile::CLIENT_MCP)?
        && let Ok(doc) = serde_json::from_str::<Value>(&text)
        && let Some(value) = doc
            .pointer(&format!("/mcpServers/{}/headers", profile.name))
            .and_then(|h| h.as_object().and_then(|m| m.iter().find(|(k, _)| k.eq_ignore_ascii_case(header)).map(|(_, v)| v.clone())))
        && let Some(value) = value.as_str()
    {
        let jwt = value.strip_prefix(prefix).unwrap_or(value).trim();
        if !jwt.is_empty() {
            return Ok(Some((jwt.to_owned(), "client/mcp.json".into())));
        }
    }
    Ok(None)
}

/// Refuse locally what the server would refuse anyway: an expired or revoked token.
fn check_token_locally(jwt: &str, source: &str, profile: Option<&Profile>, named: Option<&str>) -> Result<()> {
    let Some((_, claims)) = token::decode_unverified(jwt) else { return Ok(()) };
    let remint = match (profile, named) {
        (Some(p), Some(n)) => format!("re-mint it with `mcpgen sa-token {} --name {n}`", p.name),
        (Some(p), None) if source.starts_with('$') => format!(
            "unset {} (it may belong to another profile) to use {}'s own token, or pick one with --sa-token",
            source.trim_start_matches('$'),
            p.name
        ),
        (Some(p), None) => {
            format!("re-mint the primary with `mcpgen sa-token {} --name default --force`, or pick a token with --sa-token", p.name)
        }
        _ => "mint a new token and pass it again".to_owned(),
    };
    if let Some(exp) = claims.get("exp").and_then(Value::as_i64)
        && exp + token::MAX_LEEWAY_SECS < chrono::Utc::now().timestamp()
    {
        return Err(Failure::new(Kind::Auth, format!("{source} expired at {}; nothing was sent", token::format_time(exp)))
            .hint(remint)
            .into());
    }
    if let (Some(p), Some(jti)) = (profile, claims.get("jti").and_then(Value::as_str))
        && p.revoked.iter().any(|r| r.jti == jti)
    {
        return Err(Failure::new(Kind::Auth, format!("{source} has been revoked; nothing was sent")).hint(remint).into());
    }
    Ok(())
}
