//! Service-account operations: mint one entry, issue (create or replace) a named token in a
//! profile, and stage the files derived from the profile (server config key, client files).

use anyhow::{Context, Result};
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use crate::config::{ServerConfig, patch_service_account};
use crate::error::Failure;
use crate::fsx::{self, Dir};
use crate::keys::PublicKey;
use crate::profile::{CLIENT_ENV, CLIENT_MCP, DEFAULT_TOKEN, PUBLIC_PEM, Profile, SERVER_CONFIG, TokenEntry, token_filename};
use crate::store::{Session, Txn};
use crate::token::{Claims, Minter, new_jti};

/// The stored metadata of a token, before it is minted.
#[derive(Debug, Clone)]
pub struct TokenSpec {
    pub name: String,
    pub client_id: String,
    pub issuer: String,
    pub scopes: Vec<String>,
    pub days: u32,
    pub primary: bool,
}

impl From<&TokenEntry> for TokenSpec {
    fn from(e: &TokenEntry) -> Self {
        TokenSpec {
            name: e.name.clone(),
            client_id: e.client_id.clone(),
            issuer: e.issuer.clone(),
            scopes: e.scopes.clone(),
            days: e.days,
            primary: e.primary,
        }
    }
}

/// Mint `spec` for `profile` at `now`: the new entry and its JWT.
pub fn mint(minter: &Minter, profile: &Profile, spec: TokenSpec, now: DateTime<Utc>) -> Result<(TokenEntry, String)> {
    let iat = now.timestamp();
    let expires_at = DateTime::from_timestamp(iat, 0).context("clock out of range")? + Duration::days(spec.days as i64);
    let claims = Claims {
        iss: spec.issuer.clone(),
        sub: spec.client_id.clone(),
        client_id: spec.client_id.clone(),
        scope: spec.scopes.join(" "),
        aud: profile.server_url.clone(),
        iat,
        nbf: iat,
        exp: expires_at.timestamp(),
        jti: new_jti(),
    };
    let jwt = minter.mint(&claims)?;
    let entry = TokenEntry {
        filename: token_filename(&spec.name),
        name: spec.name,
        client_id: spec.client_id,
        issuer: spec.issuer,
        scopes: spec.scopes,
        days: spec.days,
        primary: spec.primary,
        jti: claims.jti,
        issued_at: DateTime::from_timestamp(iat, 0).context("clock out of range")?,
        expires_at,
        previous_jtis: Vec::new(),
    };
    Ok((entry, jwt))
}

/// What `sa-token` asks for: a token name and the fields to set (`None` keeps a replaced
/// token's stored value, else the default).
#[derive(Debug, Clone, Default)]
pub struct TokenRequest {
    pub name: String,
    pub scopes: Option<Vec<String>>,
    pub client_id: Option<String>,
    pub days: Option<u32>,
    pub issuer: Option<String>,
    pub primary: bool,
}

/// A token just issued.
pub struct Issued {
    pub entry: TokenEntry,
    pub jwt: String,
    /// Whether a token of that name was replaced (its old jti is now revoked).
    pub replaced: bool,
    /// The issuer the profile's server expects (differs from the token's when `--issuer` said so).
    pub served_issuer: String,
}

/// Create or replace one named token in an open profile and commit: the entry, its file, the
/// revocation of the replaced token (and its pre-rotation copies), and the client files when it
/// is the primary.
pub fn issue(session: &mut Session, request: &TokenRequest) -> Result<Issued> {
    let key = session.private_key()?;
    let now = crate::profile::now();
    let profile = &session.profile;
    let name = &request.name;
    let existing = profile.token(name).cloned();
    let spec = TokenSpec {
        name: name.clone(),
        client_id: request
            .client_id
            .clone()
            .or_else(|| existing.as_ref().map(|e| e.client_id.clone()))
            .unwrap_or_else(|| if name == DEFAULT_TOKEN { format!("svc-{}", profile.name) } else { name.clone() }),
        issuer: request.issuer.clone().or_else(|| existing.as_ref().map(|e| e.issuer.clone())).unwrap_or_else(|| profile.issuer.clone()),
        scopes: request.scopes.clone().or_else(|| existing.as_ref().map(|e| e.scopes.clone())).unwrap_or_default(),
        days: request.days.or(existing.as_ref().map(|e| e.days)).unwrap_or(365),
        primary: request.primary || existing.as_ref().is_some_and(|e| e.primary),
    };
    let (entry, jwt) = mint(&Minter::new(&key)?, profile, spec, now)?;
    let mut txn = Txn::new();
    stage_token(&mut txn, &entry, jwt.clone());
    let profile = &mut session.profile;
    if let Some(old) = &existing {
        profile.revoked.extend(old.revocations(now));
    }
    if entry.primary {
        for other in profile.sa_tokens.iter_mut() {
            other.primary = false;
        }
    }
    match profile.sa_tokens.iter_mut().find(|t| t.name == entry.name) {
        Some(slot) => *slot = entry.clone(),
        None => profile.sa_tokens.push(entry.clone()),
    }
    profile.prune(now);
    if entry.primary {
        stage_client_files(&mut txn, &session.dir, &session.profile)?;
    }
    let served_issuer = ServerConfig::load(&session.dir)
        .ok()
        .and_then(|c| c.security.authentication.service_account.issuer)
        .unwrap_or_else(|| session.profile.issuer.clone());
    session.save(txn)?;
    Ok(Issued { entry, jwt, replaced: existing.is_some(), served_issuer })
}

/// Stage a token's file.
pub fn stage_token(txn: &mut Txn, entry: &TokenEntry, jwt: String) {
    txn.write(&entry.filename, fsx::SECRET, jwt);
}

/// Stage a new keypair's public PEM and the server config's `public_key` and `issuer`.
pub fn stage_public_key(txn: &mut Txn, dir: &Dir, profile: &Profile, public: &PublicKey) -> Result<()> {
    let pem = public.to_pem()?;
    txn.write(PUBLIC_PEM, fsx::PUBLIC, pem.clone());
    let mut doc = current_config_doc(txn, dir)?;
    patch_service_account(&mut doc, "public_key", Value::String(pem));
    patch_service_account(&mut doc, "issuer", Value::String(profile.issuer.clone()));
    txn.write(SERVER_CONFIG, fsx::SECRET, serde_json::to_string_pretty(&doc)? + "\n");
    Ok(())
}

/// The server config document as this transaction will leave it.
fn current_config_doc(txn: &Txn, dir: &Dir) -> Result<Value> {
    let path = dir.join(SERVER_CONFIG);
    let text = match txn.staged(SERVER_CONFIG) {
        Some(text) => text.to_owned(),
        None => dir.read_text(SERVER_CONFIG)?,
    };
    serde_json::from_str(&text).map_err(|e| {
        Failure::error(format!("{}: invalid JSON ({e})", path.display())).hint("fix the JSON by hand; nothing was changed").into()
    })
}

/// Stage `client/mcp.json` and `client/client.env` for the profile's current primary token.
pub fn stage_client_files(txn: &mut Txn, dir: &Dir, profile: &Profile) -> Result<()> {
    let doc = current_config_doc(txn, dir)?;
    let config: ServerConfig = ServerConfig::parse(&doc.to_string(), &dir.join(SERVER_CONFIG))?;
    let sa = config.security.authentication.service_account.effective();
    let primary_jwt = match profile.primary() {
        Some(entry) => Some(match txn.staged(&entry.filename) {
            Some(jwt) => jwt.to_owned(),
            None => {
                let path = dir.join(&entry.filename);
                let hint = format!("re-mint it with `mcpgen sa-token {} --name {}`", profile.name, entry.name);
                match crate::store::read_text_at(dir, &entry.filename) {
                    Ok(Some(text)) => text.trim().to_owned(),
                    Ok(None) => {
                        let e = std::io::Error::from(std::io::ErrorKind::NotFound);
                        return Err(Failure::error(format!("cannot read the primary token {} ({e})", path.display())).hint(hint).into());
                    }
                    Err(e) if e.downcast_ref::<Failure>().is_some() => return Err(e),
                    Err(e) => {
                        return Err(Failure::error(format!("cannot read the primary token {} ({e:#})", path.display())).hint(hint).into());
                    }
                }
            }
        }),
        None => None,
    };
    let mut server = json!({"type": "http", "url": profile.server_url});
    if let Some(jwt) = &primary_jwt {
        server["headers"] = json!({ sa.header.clone(): format!("{}{}", sa.prefix.clone().unwrap_or_default(), jwt) });
    }
    let mcp = json!({"mcpServers": { profile.name.clone(): server }});
    txn.write(CLIENT_MCP, fsx::SECRET, serde_json::to_string_pretty(&mcp)? + "\n");
    let env = match &primary_jwt {
        Some(jwt) => format!("SERVICE_ACCOUNT_JWT={jwt}\n"),
        None => "# no primary token: mark one with `mcpgen sa-token <profile> --name NAME --primary`\n".to_owned(),
    };
    txn.write(CLIENT_ENV, fsx::SECRET, env);
    Ok(())
}
