//! Locked, transactional access to a profile folder.
//!
//! A command that changes a profile takes an exclusive `flock` on `<profile>/.lock`, stages every
//! file it will write in a [`Txn`], and commits: the whole change is first written to
//! `<profile>/.journal` (fsync-ed, renamed into place — the commit point), then applied file by
//! file with atomic renames, flushed, and the journal removed. A process killed at any instant
//! leaves either no journal (nothing applied: the old state) or a complete journal, which the
//! next command on the profile replays before it does anything else (the new state). Readers take
//! a shared lock, so they never see a half-applied change.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Component, Path};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::error::Failure;
use crate::fsx;
use crate::keys::PrivateKey;
use crate::profile::{Layout, PROFILE_JSON, Profile};
use crate::validate;

/// Above this many files a commit rewrites files in place and flushes the file system once
/// instead of replacing and fsync-ing each file.
const FSYNC_EACH_LIMIT: usize = 32;

/// A set of file writes and removals applied all together or not at all.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Txn {
    /// Relative path → (mode, content). A BTreeMap so a later write of the same path wins.
    writes: BTreeMap<String, (u32, String)>,
    removes: Vec<String>,
}

impl Txn {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn write(&mut self, relative: &str, mode: u32, content: String) {
        self.removes.retain(|r| r != relative);
        self.writes.insert(relative.to_owned(), (mode, content));
    }

    pub fn remove(&mut self, relative: &str) {
        self.writes.remove(relative);
        self.removes.push(relative.to_owned());
    }

    /// The content this transaction will write at `relative`, if any.
    pub fn staged(&self, relative: &str) -> Option<&str> {
        self.writes.get(relative).map(|(_, c)| c.as_str())
    }

    pub fn len(&self) -> usize {
        self.writes.len() + self.removes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Journal, apply, flush, forget.
    pub fn commit(self, layout: &Layout) -> Result<()> {
        if self.is_empty() {
            return Ok(());
        }
        for relative in self.writes.keys().chain(&self.removes) {
            checked_path(layout, relative)?;
        }
        let journal = serde_json::to_vec(&self).context("cannot encode journal")?;
        // The journal holds private keys and tokens: 0600 like them.
        fsx::write_atomic(&layout.journal(), &journal, fsx::SECRET)?;
        self.apply(layout)?;
        remove_if_exists(&layout.journal())
    }

    /// Write every file into a folder nobody else can see yet (a profile being created), without
    /// a journal: the folder's rename is the commit point.
    pub fn apply_fresh(&self, dir: &Path) -> Result<()> {
        self.apply(&Layout { dir: dir.to_path_buf() })
    }

    fn apply(&self, layout: &Layout) -> Result<()> {
        // Small changes: each file replaced atomically and fsync-ed. Batches (remint-all): token
        // files rewritten in place and flushed once — the journal already holds every byte, so
        // a crash mid-batch is finished by the replay.
        let each = self.len() <= FSYNC_EACH_LIMIT;
        let mut made = std::collections::HashSet::new();
        for (relative, (mode, content)) in &self.writes {
            let path = checked_path(layout, relative)?;
            if let Some(parent) = path.parent()
                && made.insert(parent.to_path_buf())
            {
                fsx::create_dir_all(parent)?;
            }
            // Only token files are rewritten in place; keys, configuration and client files are
            // always replaced atomically, as other programs read them without our lock.
            if each || !relative.ends_with(".jwt") {
                fsx::write_atomic(&path, content.as_bytes(), *mode)?;
            } else {
                fsx::overwrite_in_place(&path, content.as_bytes(), *mode)?;
            }
        }
        for relative in &self.removes {
            remove_if_exists(&checked_path(layout, relative)?)?;
        }
        if !each {
            fsx::sync_filesystem(&layout.dir)?;
        }
        Ok(())
    }
}

/// A journal path must stay inside the profile: relative, no `..`, no root.
fn checked_path(layout: &Layout, relative: &str) -> Result<std::path::PathBuf> {
    let path = Path::new(relative);
    let ok = !relative.is_empty() && path.components().all(|c| matches!(c, Component::Normal(_)));
    if !ok {
        return Err(crate::profile::corrupt(
            &layout.journal(),
            &format!("path {:?} leaves the profile folder", validate::printable(relative)),
        ));
    }
    Ok(layout.dir.join(path))
}

fn remove_if_exists(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(e).with_context(|| format!("cannot remove {}", path.display())),
        _ => Ok(()),
    }
}

/// Finish an interrupted commit (replay its journal) and delete temporary files a killed write
/// left in the profile's top folder. Call with the exclusive lock held.
fn recover(layout: &Layout) -> Result<()> {
    let journal = layout.journal();
    match fs::read(&journal) {
        Ok(bytes) => {
            let txn: Txn = serde_json::from_slice(&bytes).map_err(|e| {
                Failure::error(format!("{}: unreadable journal of an interrupted change ({e})", journal.display()))
                    .hint("the change it records cannot be finished; move the file away to keep the profile as it is on disk")
            })?;
            txn.apply(layout)?;
            remove_if_exists(&journal)?;
            for sub in ["sa", "client"] {
                remove_temp_files(&layout.dir.join(sub));
            }
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", journal.display())),
    }
    remove_temp_files(&layout.dir);
    Ok(())
}

/// Remove `.*.tmp` files left by writes that were killed before their rename.
fn remove_temp_files(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.ends_with(".tmp") {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// How a session holds its profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// An open profile: its lock (held until drop), its layout and its parsed `profile.json`.
pub struct Session {
    _lock: File,
    pub layout: Layout,
    pub profile: Profile,
}

/// Check the profile name, lock its folder, finish any interrupted change and load it.
pub fn open(root: &Path, name: &str, access: Access) -> Result<Session> {
    validate::name(name).map_err(|e| Failure::usage(format!("profile: {e}")))?;
    let layout = Layout::new(root, name);
    let profile_path = layout.profile_json();
    if !profile_path.is_file() {
        return Err(unknown_profile(root, name));
    }
    let lock = lock(&layout, access)?;
    let text = fsx::read_text(&profile_path)?;
    let profile = Profile::parse(&text, &profile_path, name)?;
    Ok(Session { _lock: lock, layout, profile })
}

fn lock(layout: &Layout, access: Access) -> Result<File> {
    let path = layout.lock_file();
    // `up --force` may replace the whole folder while we wait: a lock on the old folder's file
    // would protect nothing, so lock until the file we hold is the one at the path.
    let file = loop {
        let file = lock_file_at(&path, access)?;
        let held = file.metadata().map(|m| m.ino()).ok();
        let current = fs::metadata(&path).map(|m| m.ino()).ok();
        if held.is_some() && held == current {
            break file;
        }
        if current.is_none() && !layout.profile_json().is_file() {
            return Err(unknown_profile(
                layout.dir.parent().unwrap_or(Path::new(".")),
                &layout.dir.file_name().unwrap_or_default().to_string_lossy(),
            ));
        }
    };
    if access == Access::Read {
        if !layout.journal().exists() {
            return Ok(file);
        }
        file.unlock().ok();
    }
    file.lock().with_context(|| format!("cannot lock {}", path.display()))?;
    recover(layout)?;
    Ok(file)
}

/// Open (creating it if needed) and lock the lock file at `path`.
pub fn lock_file_at(path: &Path, access: Access) -> Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(fsx::SECRET)
        .open(path)
        .with_context(|| format!("cannot open lock file {}", path.display()))?;
    match access {
        Access::Read => file.lock_shared(),
        Access::Write => file.lock(),
    }
    .with_context(|| format!("cannot lock {}", path.display()))?;
    Ok(file)
}

/// The error for a profile that does not exist, with the ones that do.
pub fn unknown_profile(root: &Path, name: &str) -> anyhow::Error {
    let known = crate::commands::list::profile_names(root).unwrap_or_default();
    let hint = if known.is_empty() {
        format!("no profiles under {}; create one with `mcpgen up --instance {name}` (or pass --root)", root.display())
    } else {
        format!("profiles under {}: {}", root.display(), known.iter().take(10).cloned().collect::<Vec<_>>().join(", "))
    };
    Failure::usage(format!("no profile {name:?} under {}", root.display())).hint(hint).into()
}

impl Session {
    /// Stage `profile.json` (with `updated` set) and commit the transaction.
    pub fn save(&mut self, mut txn: Txn) -> Result<()> {
        self.profile.updated = crate::profile::now();
        let json = serde_json::to_string_pretty(&self.profile).context("cannot encode profile")?;
        txn.write(PROFILE_JSON, fsx::SECRET, json + "\n");
        txn.commit(&self.layout)
    }

    /// The profile's signing key.
    pub fn private_key(&self) -> Result<PrivateKey> {
        let path = self.layout.private_pem();
        if self.profile.key_id.is_none() {
            return Err(Failure::usage(format!("profile {} was created with --no-sa and has no signing key", self.profile.name))
                .hint(format!("recreate it with service accounts: `mcpgen up --instance {} --force`", self.profile.name))
                .into());
        }
        let pem = fs::read_to_string(&path).map_err(|e| {
            Failure::error(format!("cannot read {} ({e})", path.display()))
                .hint(format!("restore the key, or issue a new one and re-mint every token with `mcpgen remint-all {}`", self.profile.name))
        })?;
        let key = PrivateKey::from_pem(&pem).map_err(|e| {
            Failure::error(format!("{}: {e}", path.display()))
                .hint(format!("restore the key, or issue a new one and re-mint every token with `mcpgen remint-all {}`", self.profile.name))
        })?;
        if Some(key.public().thumbprint()) != self.profile.key_id {
            return Err(Failure::error(format!("{}: the key does not match key_id in profile.json", path.display()))
                .hint(format!("restore the matching key, or re-mint every token with `mcpgen remint-all {}`", self.profile.name))
                .into());
        }
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_replay_finishes_an_interrupted_commit() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout { dir: dir.path().to_path_buf() };
        let mut txn = Txn::new();
        txn.write("sa/a.jwt", 0o600, "A".into());
        txn.write("client/x", 0o600, "X".into());
        fs::write(dir.path().join("old"), "old").unwrap();
        txn.remove("old");
        // Simulate a kill right after the commit point.
        fsx::write_atomic(&layout.journal(), &serde_json::to_vec(&txn).unwrap(), 0o600).unwrap();
        fs::write(dir.path().join(".junk.tmp"), "").unwrap();
        recover(&layout).unwrap();
        assert_eq!(fs::read_to_string(dir.path().join("sa/a.jwt")).unwrap(), "A");
        assert_eq!(fs::read_to_string(dir.path().join("client/x")).unwrap(), "X");
        assert!(!dir.path().join("old").exists());
        assert!(!layout.journal().exists());
        assert!(!dir.path().join(".junk.tmp").exists());
    }

    #[test]
    fn journal_paths_cannot_escape() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout { dir: dir.path().join("p") };
        fs::create_dir(&layout.dir).unwrap();
        let mut txn = Txn::new();
        txn.write("../escape", 0o600, "x".into());
        assert!(txn.commit(&layout).is_err());
        assert!(!dir.path().join("escape").exists());
        assert!(!layout.journal().exists(), "a refused change must not leave a journal behind");
    }
}
