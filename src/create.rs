//! Creating a profile: keypair, `default` primary token, server configuration and client
//! files, written into a staging folder `<root>/.up-<name>-<random>` that is renamed into place
//! (or exchanged with the old profile, for `--force`), so a profile is either complete or
//! absent. The staging folder's lock is held until then; a staging folder whose lock nobody
//! holds (a killed `up`, possibly holding a private key) is removed by the next `up` or `list`.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::Path;

use anyhow::{Context, Result};

use crate::config::{ServerConfig, ServiceAccount};
use crate::error::Failure;
use crate::fsx::{self, Dir};
use crate::keys::PrivateKey;
use crate::openapi::Spec;
use crate::profile::{DEFAULT_TOKEN, Layout, PRIVATE_PEM, PROFILE_JSON, Profile, SERVER_CONFIG};
use crate::sa::{self, TokenSpec};
use crate::store::Txn;
use crate::token::Minter;

/// Everything a new profile is made from, already validated.
pub struct NewProfile {
    pub name: String,
    pub issuer: String,
    pub port: u16,
    pub downstream: Option<String>,
    /// Scopes of the `default` token.
    pub scopes: Vec<String>,
    pub spec: Spec,
    /// The spec file copied into the profile (`openapi.json`/`openapi.yaml`) and its text;
    /// `None` for the built-in sample.
    pub spec_copy: Option<(String, String)>,
    /// No keys, no tokens: service-account authentication disabled.
    pub no_sa: bool,
    /// Replace a profile of the same name.
    pub force: bool,
}

/// Create `new` under `root`; the summary line of its `default` token.
pub fn create(root: &Path, new: &NewProfile) -> Result<String> {
    let layout = Layout::new(root, &new.name);
    if fs::symlink_metadata(&layout.dir).is_ok() && !new.force {
        return Err(Failure::usage(format!("profile {:?} already exists at {}", new.name, layout.dir.display()))
            .hint("pass --force to replace it (its keys and tokens are lost), or choose another --instance")
            .into());
    }
    fsx::create_dir_all(root)?;
    remove_stale_staging(root);
    let staging = root.join(format!("{STAGING_PREFIX}{}-{:016x}", new.name, rand::random::<u64>()));
    fs::DirBuilder::new().mode(fsx::DIR).create(&staging).with_context(|| format!("cannot create folder {}", staging.display()))?;
    let result = (|| {
        let dir = Dir::open(&staging)?;
        // The lock file is part of a complete profile (otherwise the first command to open the
        // profile creates it, even one that is then refused and must leave the folder
        // untouched). Held until the folder is in place: a staging folder whose lock nobody
        // holds was left by a killed `up`, and the next `up` or `list` removes it.
        let lock = dir.lock_file(".lock")?;
        lock.lock().with_context(|| format!("cannot lock {}", dir.join(".lock").display()))?;
        let summary = build(&dir, &layout.dir, new)?;
        replace_dir(&staging, &layout.dir)?;
        Ok::<_, anyhow::Error>(summary)
    })();
    if result.is_err() {
        let _ = fs::remove_dir_all(&staging);
    }
    result
}

/// Write every file of `new` into the staging folder `dir`; the summary line of the token.
fn build(dir: &Dir, final_dir: &Path, new: &NewProfile) -> Result<String> {
    let NewProfile { name, issuer, port, downstream, scopes, spec, spec_copy, no_sa, .. } = new;
    let (name, issuer, port) = (name.as_str(), issuer.as_str(), *port);
    let now = crate::profile::now();
    let server_url = format!("http://127.0.0.1:{port}/mcp");
    let key = (!no_sa).then(PrivateKey::generate);
    let mut profile = Profile {
        version: 1,
        name: name.to_owned(),
        issuer: issuer.to_owned(),
        created: now,
        updated: now,
        server_url: server_url.clone(),
        port,
        key_id: key.as_ref().map(|k| k.public().thumbprint()),
        spec: spec_copy.as_ref().map(|(file, _)| file.clone()),
        downstream: downstream.clone(),
        sa_tokens: Vec::new(),
        revoked: Vec::new(),
        retired_keys: Vec::new(),
    };

    let mut config = ServerConfig::default();
    config.server.name = name.to_owned();
    config.openapi.spec = profile.spec.clone();
    config.openapi.downstream = downstream.clone();
    config.security.authentication.service_account =
        ServiceAccount { enabled: !no_sa, issuer: Some(issuer.to_owned()), audience: Some(server_url), ..Default::default() };
    // Scopes of every operation, whatever its method, so allowing more methods later never
    // opens a tool to callers without its scopes.
    let all_methods: Vec<String> = ["GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE"].map(String::from).to_vec();
    for op in spec.operations(&all_methods) {
        if !op.scopes.is_empty() {
            config.security.authorization.tools.insert(op.name, op.scopes);
        }
    }

    let mut txn = Txn::new();
    if let Some((file, text)) = spec_copy {
        txn.write(file, fsx::PUBLIC, text.clone());
    }
    txn.write(SERVER_CONFIG, fsx::SECRET, serde_json::to_string_pretty(&config)? + "\n");
    let summary = match &key {
        Some(key) => {
            txn.write(PRIVATE_PEM, fsx::SECRET, key.to_pem()?);
            sa::stage_public_key(&mut txn, dir, &profile, &key.public())?;
            let spec = TokenSpec {
                name: DEFAULT_TOKEN.to_owned(),
                client_id: format!("svc-{name}"),
                issuer: issuer.to_owned(),
                scopes: scopes.clone(),
                days: 365,
                primary: true,
            };
            let (entry, jwt) = sa::mint(&Minter::new(key)?, &profile, spec, now)?;
            sa::stage_token(&mut txn, &entry, jwt);
            let summary = format!(
                "  token default (client_id {}, scopes {}, expires {}) -> {}",
                entry.client_id,
                if entry.scopes.is_empty() { "-".to_owned() } else { entry.scopes.join(" ") },
                entry.expires_at.format("%Y-%m-%d"),
                final_dir.join(&entry.filename).display()
            );
            profile.sa_tokens.push(entry);
            sa::stage_client_files(&mut txn, dir, &profile)?;
            summary
        }
        None => {
            sa::stage_client_files(&mut txn, dir, &profile)?;
            "  service-account authentication is disabled (--no-sa)".to_owned()
        }
    };
    txn.write(PROFILE_JSON, fsx::SECRET, serde_json::to_string_pretty(&profile)? + "\n");
    txn.apply_fresh(dir)?;
    Ok(summary)
}

/// Move the finished staging folder to `target`, replacing an existing profile (only reached
/// with --force).
fn replace_dir(staging: &Path, target: &Path) -> Result<()> {
    if let Ok(meta) = fs::symlink_metadata(target) {
        // Hold the old profile's lock so no command is half-way through it while it goes; the
        // ones waiting notice the new folder's lock file and lock that instead. A link (the
        // profile folder or its lock file) is replaced, never followed: nothing outside is
        // created.
        let lock = target.join(".lock");
        if fs::symlink_metadata(&lock).is_ok_and(|m| m.file_type().is_symlink()) {
            let _ = fs::remove_file(&lock);
        }
        let _lock = if meta.is_dir() { Some(crate::store::lock_file_at(&lock, crate::store::Access::Write)?) } else { None };
        // One RENAME_EXCHANGE: at every instant the name holds a whole profile, old or new.
        rustix::fs::renameat_with(rustix::fs::CWD, staging, rustix::fs::CWD, target, rustix::fs::RenameFlags::EXCHANGE)
            .map_err(std::io::Error::from)
            .with_context(|| format!("cannot replace {}", target.display()))?;
        // The staging name now holds the old profile (std's remove_dir_all follows no link).
        if fs::remove_dir_all(staging).is_err() {
            let _ = fs::remove_file(staging);
        }
    } else {
        fs::rename(staging, target).with_context(|| format!("cannot create {}", target.display()))?;
    }
    if let Some(parent) = target.parent() {
        fsx::sync_dir(parent).with_context(|| format!("cannot sync {}", parent.display()))?;
    }
    Ok(())
}

/// Staging folders are `<root>/.up-<name>-<random>`.
const STAGING_PREFIX: &str = ".up-";

/// Remove staging folders a killed `up` left under `root` (they may hold a private key): folders
/// (never links) we own whose `.lock` nobody holds — a running `up` holds its staging folder's
/// lock, and `up --force` holds the old profile's while it removes it from the staging name.
/// A staging folder without a lock file is only removed once a minute old (a running `up`
/// creates the lock right after the folder). Best effort: errors are ignored.
pub fn remove_stale_staging(root: &Path) {
    let Ok(entries) = fs::read_dir(root) else { return };
    let me = rustix::process::geteuid().as_raw();
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with(STAGING_PREFIX) {
            continue;
        }
        let path = entry.path();
        let Ok(meta) = fs::symlink_metadata(&path) else { continue };
        if !meta.is_dir() || meta.uid() != me {
            continue;
        }
        let Ok(dir) = Dir::open(&path) else { continue };
        let stale = if dir.inode_of(".lock").is_some() {
            dir.lock_file(".lock").is_ok_and(|lock| lock.try_lock().is_ok())
        } else {
            meta.modified().ok().and_then(|m| m.elapsed().ok()).is_some_and(|age| age.as_secs() > 60)
        };
        if stale {
            // std's remove_dir_all never follows links inside the tree.
            let _ = fs::remove_dir_all(&path);
        }
    }
}
