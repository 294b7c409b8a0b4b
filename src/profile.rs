//! The profile: `profile.json`'s schema, its validation, and the on-disk layout of
//! `generated/<profile>/`.
//!
//! `profile.json` is the single source of truth; every other file in the folder is derived from
//! it and the keys (`sa` stages them). Loading validates everything a hand edit could break —
//! types, names, the `filename` of each token (never trusted as a path), duplicates, two
//! primaries — and reports the file and the entry.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Failure;
use crate::validate;

/// Default `iss` of a new profile (the original product's).
pub const DEFAULT_ISSUER: &str = "oemcp-local";
/// Default server port of a new profile.
pub const DEFAULT_PORT: u16 = 8000;
/// The reserved name of the token `up` creates.
pub const DEFAULT_TOKEN: &str = "default";

/// Paths inside one profile folder.
#[derive(Debug, Clone)]
pub struct Layout {
    pub dir: PathBuf,
}

impl Layout {
    pub fn new(root: &Path, name: &str) -> Self {
        Layout { dir: root.join(name) }
    }
    pub fn profile_json(&self) -> PathBuf {
        self.dir.join("profile.json")
    }
    pub fn private_pem(&self) -> PathBuf {
        self.dir.join("sa/private.pem")
    }
    pub fn public_pem(&self) -> PathBuf {
        self.dir.join("sa/public.pem")
    }
    pub fn server_config(&self) -> PathBuf {
        self.dir.join(SERVER_CONFIG)
    }
    pub fn client_mcp(&self) -> PathBuf {
        self.dir.join(CLIENT_MCP)
    }
    pub fn client_env(&self) -> PathBuf {
        self.dir.join(CLIENT_ENV)
    }
    pub fn lock_file(&self) -> PathBuf {
        self.dir.join(".lock")
    }
    pub fn journal(&self) -> PathBuf {
        self.dir.join(".journal")
    }
    pub fn file(&self, relative: &str) -> PathBuf {
        self.dir.join(relative)
    }
}

pub const PROFILE_JSON: &str = "profile.json";
pub const PRIVATE_PEM: &str = "sa/private.pem";
pub const PUBLIC_PEM: &str = "sa/public.pem";
pub const SERVER_CONFIG: &str = "mcp_server_config.json";
pub const CLIENT_MCP: &str = "client/mcp.json";
pub const CLIENT_ENV: &str = "client/client.env";
/// The names of the profile's copy of its OpenAPI document.
pub const SPEC_FILES: [&str; 2] = ["openapi.json", "openapi.yaml"];

/// The current time, to the second: what profile.json stores and tokens carry.
pub fn now() -> DateTime<Utc> {
    use chrono::SubsecRound;
    Utc::now().trunc_subsecs(0)
}

/// The relative file of a token: `sa/token.jwt` for `default`, else `sa/<name>.jwt`.
pub fn token_filename(name: &str) -> String {
    if name == DEFAULT_TOKEN { "sa/token.jwt".to_owned() } else { format!("sa/{name}.jwt") }
}

/// `generated/<profile>/profile.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Schema version of this file.
    #[serde(default = "schema_version")]
    pub version: u32,
    pub name: String,
    pub issuer: String,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    /// The MCP endpoint clients call; also the `aud` of every token.
    pub server_url: String,
    pub port: u16,
    /// RFC 7638 thumbprint of the current public key; `None` for a profile made with `--no-sa`.
    pub key_id: Option<String>,
    /// The OpenAPI document inside the profile folder (`openapi.json` / `openapi.yaml`), or
    /// `None` for the built-in sample.
    #[serde(default)]
    pub spec: Option<String>,
    /// Base URL of the REST API the tools call; `None` answers from the spec's examples.
    #[serde(default)]
    pub downstream: Option<String>,
    pub sa_tokens: Vec<TokenEntry>,
    /// Token ids refused by `serve` until they would have expired anyway.
    #[serde(default)]
    pub revoked: Vec<Revocation>,
    /// Public keys replaced by `remint-all --grace-days`, still accepted until `accept_until`.
    #[serde(default)]
    pub retired_keys: Vec<RetiredKey>,
}

fn schema_version() -> u32 {
    1
}

/// One named service-account token. The first seven fields are the seed's.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    pub name: String,
    pub filename: String,
    pub client_id: String,
    pub issuer: String,
    pub scopes: Vec<String>,
    pub days: u32,
    pub primary: bool,
    pub jti: String,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// Copies of this token minted before a `remint-all --grace-days`: signed by a retired key
    /// that is still accepted, so revoking or replacing the token must revoke them too. Kept
    /// only while that key is in grace and the copy unexpired (see [`Profile::prune`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub previous_jtis: Vec<PreviousJti>,
}

/// One pre-rotation copy of a token: its `jti`, the key that signed it, and its expiry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PreviousJti {
    pub jti: String,
    pub kid: String,
    pub expires_at: DateTime<Utc>,
}

impl TokenEntry {
    pub fn expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at <= now
    }

    /// Revocations of this token: its current `jti` and every pre-rotation copy still valid.
    pub fn revocations(&self, now: DateTime<Utc>) -> Vec<Revocation> {
        let current = std::iter::once((&self.jti, self.expires_at));
        current
            .chain(self.previous_jtis.iter().map(|p| (&p.jti, p.expires_at)))
            .filter(|(_, expires_at)| *expires_at > now)
            .map(|(jti, expires_at)| Revocation { jti: jti.clone(), name: self.name.clone(), revoked_at: now, expires_at })
            .collect()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Revocation {
    pub jti: String,
    pub name: String,
    pub revoked_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RetiredKey {
    pub kid: String,
    /// base64url raw public key (JWK `x`).
    pub x: String,
    pub retired_at: DateTime<Utc>,
    pub accept_until: DateTime<Utc>,
}

impl Profile {
    /// Parse and validate `profile.json` text; `path` and `dir_name` are for messages and the
    /// name check.
    pub fn parse(text: &str, path: &Path, dir_name: &str) -> Result<Profile> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let profile: Profile = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
            let at = e.path().to_string();
            let what = if at == "." { e.inner().to_string() } else { format!("{at}: {}", e.inner()) };
            corrupt(path, &format!("invalid profile ({what})"))
        })?;
        deserializer.end().map_err(|e| corrupt(path, &format!("invalid profile ({e})")))?;
        profile.check(path, dir_name)?;
        Ok(profile)
    }

    fn check(&self, path: &Path, dir_name: &str) -> Result<()> {
        if self.version != 1 {
            return Err(corrupt(path, &format!("schema version {} is not supported (this mcpgen reads version 1)", self.version)));
        }
        if self.name != dir_name {
            return Err(corrupt(path, &format!("\"name\" is {:?} but the folder is {:?}", validate::printable(&self.name), dir_name)));
        }
        validate::identifier("issuer", &self.issuer).map_err(|e| corrupt(path, &e))?;
        validate::http_url(&self.server_url).map_err(|e| corrupt(path, &format!("server_url: {e}")))?;
        if let Some(url) = &self.downstream {
            validate::http_url(url).map_err(|e| corrupt(path, &format!("downstream: {e}")))?;
        }
        // The spec copy is read from the folder: only the names `up` writes, never a path.
        if let Some(spec) = self.spec.as_deref().filter(|s| !SPEC_FILES.contains(s)) {
            return Err(corrupt(path, &format!("spec {:?} is not one of {}", validate::printable(spec), SPEC_FILES.join(", "))));
        }
        let mut primaries = Vec::new();
        // A set, not a scan of the earlier entries: that was quadratic, and dominated every
        // command on a profile with thousands of tokens.
        let mut seen = HashSet::with_capacity(self.sa_tokens.len());
        for (i, entry) in self.sa_tokens.iter().enumerate() {
            let at = |msg: String| corrupt(path, &format!("sa_tokens[{i}]: {msg}"));
            validate::name(&entry.name).map_err(at)?;
            if entry.filename != token_filename(&entry.name) {
                return Err(at(format!(
                    "filename {:?} does not match the token name (expected {:?})",
                    validate::printable(&entry.filename),
                    token_filename(&entry.name)
                )));
            }
            if !seen.insert(entry.name.as_str()) {
                return Err(at(format!("duplicate token name {:?}", entry.name)));
            }
            validate::identifier("client_id", &entry.client_id).map_err(at)?;
            validate::identifier("issuer", &entry.issuer).map_err(at)?;
            validate::scopes(&entry.scopes).map_err(at)?;
            validate::days(entry.days as i64).map_err(|e| at(format!("days: {e}")))?;
            if entry.primary {
                primaries.push(entry.name.as_str());
            }
        }
        if primaries.len() > 1 {
            return Err(corrupt(path, &format!("more than one primary token ({})", primaries.join(", "))));
        }
        if !self.sa_tokens.is_empty() && self.key_id.is_none() {
            return Err(corrupt(path, "tokens are listed but \"key_id\" is null"));
        }
        Ok(())
    }

    /// Keys retired by `remint-all --grace-days` that are still accepted at `now`.
    pub fn keys_in_grace(&self, now: DateTime<Utc>) -> Result<Vec<crate::token::TrustedKey>> {
        self.retired_keys
            .iter()
            .filter(|k| k.accept_until > now)
            .map(|k| {
                let key = crate::keys::PublicKey::from_x(&k.x).map_err(|e| anyhow::anyhow!("retired key {}: {e}", k.kid))?;
                Ok(crate::token::TrustedKey::new(key))
            })
            .collect()
    }

    pub fn token(&self, name: &str) -> Option<&TokenEntry> {
        self.sa_tokens.iter().find(|t| t.name == name)
    }

    pub fn primary(&self) -> Option<&TokenEntry> {
        self.sa_tokens.iter().find(|t| t.primary)
    }

    /// Drop revocations and retired keys that can no longer matter.
    pub fn prune(&mut self, now: DateTime<Utc>) {
        // `serve` accepts a token until exp plus the clock leeway: keep its revocation as long.
        let leeway = chrono::Duration::seconds(crate::token::MAX_LEEWAY_SECS);
        self.revoked.retain(|r| r.expires_at + leeway > now);
        self.retired_keys.retain(|k| k.accept_until > now);
        let in_grace: HashSet<&str> = self.retired_keys.iter().map(|k| k.kid.as_str()).collect();
        for entry in &mut self.sa_tokens {
            entry.previous_jtis.retain(|p| p.expires_at + leeway > now && in_grace.contains(p.kid.as_str()));
        }
    }

    /// A token name that does not exist, as a usage error with the names that do.
    pub fn unknown_token(&self, name: &str) -> anyhow::Error {
        let known: Vec<&str> = self.sa_tokens.iter().map(|t| t.name.as_str()).take(10).collect();
        let hint = if known.is_empty() {
            format!("profile {} has no tokens; create one with `mcpgen sa-token {} --name {}`", self.name, self.name, name)
        } else {
            format!("known tokens: {}; list them all with `mcpgen sa-tokens {}`", known.join(", "), self.name)
        };
        Failure::usage(format!("profile {}: no token named {:?}", self.name, validate::printable(name))).hint(hint).into()
    }
}

/// A damaged file: exit 1 with a hint to restore or recreate.
pub fn corrupt(path: &Path, what: &str) -> anyhow::Error {
    Failure::error(format!("{}: {what}", path.display()))
        .hint("fix the file by hand, restore it from a backup, or recreate the profile with `mcpgen up --instance NAME --force`")
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Profile {
        let now = Utc::now();
        Profile {
            version: 1,
            name: "p".into(),
            issuer: DEFAULT_ISSUER.into(),
            created: now,
            updated: now,
            server_url: "http://127.0.0.1:8000/mcp".into(),
            port: 8000,
            key_id: Some("kid".into()),
            spec: None,
            downstream: None,
            sa_tokens: vec![TokenEntry {
                name: "default".into(),
                filename: "sa/token.jwt".into(),
                client_id: "svc-p".into(),
                issuer: DEFAULT_ISSUER.into(),
                scopes: vec!["a.read".into()],
                days: 365,
                primary: true,
                jti: "j".into(),
                issued_at: now,
                expires_at: now,
                previous_jtis: vec![],
            }],
            revoked: vec![],
            retired_keys: vec![],
        }
    }

    fn reparse(p: &Profile) -> Result<Profile> {
        Profile::parse(&serde_json::to_string(p).unwrap(), Path::new("x/profile.json"), "p")
    }

    #[test]
    fn round_trip() {
        let p = sample();
        assert_eq!(reparse(&p).unwrap(), p);
    }

    #[test]
    fn revocations_outlive_expiry_by_the_clock_leeway() {
        let mut p = sample();
        let exp = p.created;
        p.revoked.push(Revocation { jti: "j".into(), name: "x".into(), revoked_at: exp, expires_at: exp });
        p.prune(exp + chrono::Duration::seconds(30));
        assert_eq!(p.revoked.len(), 1, "serve still accepts the token 30 s after exp");
        p.prune(exp + chrono::Duration::seconds(61));
        assert!(p.revoked.is_empty());
    }

    #[test]
    fn pre_rotation_jtis_are_revoked_with_the_token_and_kept_only_while_their_key_is_in_grace() {
        let mut p = sample();
        let now = p.created;
        p.sa_tokens[0].expires_at = now + chrono::Duration::days(30);
        let old = PreviousJti { jti: "old".into(), kid: "k1".into(), expires_at: now + chrono::Duration::days(30) };
        p.sa_tokens[0].previous_jtis.push(old);
        let revoked: Vec<String> = p.sa_tokens[0].revocations(now).into_iter().map(|r| r.jti).collect();
        assert_eq!(revoked, ["j", "old"]);
        let x = String::new();
        p.retired_keys.push(RetiredKey { kid: "k1".into(), x, retired_at: now, accept_until: now + chrono::Duration::days(1) });
        p.prune(now);
        assert_eq!(p.sa_tokens[0].previous_jtis.len(), 1, "k1 is still accepted");
        p.prune(now + chrono::Duration::days(2));
        assert!(p.sa_tokens[0].previous_jtis.is_empty(), "k1 left its grace period");
        assert_eq!(reparse(&p).unwrap(), p);
    }

    #[test]
    fn hand_edits_are_caught() {
        let mut p = sample();
        p.sa_tokens[0].filename = "../../etc/passwd".into();
        assert!(reparse(&p).unwrap_err().to_string().contains("filename"));
        let mut p = sample();
        p.sa_tokens.push(p.sa_tokens[0].clone());
        assert!(reparse(&p).unwrap_err().to_string().contains("duplicate"));
        let mut p = sample();
        let mut second = p.sa_tokens[0].clone();
        second.name = "b".into();
        second.filename = "sa/b.jwt".into();
        p.sa_tokens.push(second);
        assert!(reparse(&p).unwrap_err().to_string().contains("more than one primary"));
        let mut p = sample();
        p.name = "other".into();
        assert!(reparse(&p).is_err());
        assert!(Profile::parse("{", Path::new("x"), "p").is_err());
        assert!(Profile::parse(r#"{"name": 3}"#, Path::new("x"), "p").is_err());
    }
}
