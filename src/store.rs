//! Locked, transactional access to a profile folder.
//!
//! A command that changes a profile takes an exclusive `flock` on `<profile>/.lock`, stages every
//! file it will write in a [`Txn`], and commits: the whole change is first written to
//! `<profile>/.journal` (fsync-ed, renamed into place — the commit point), then applied file by
//! file with atomic renames, flushed, and the journal removed. A process killed at any instant
//! leaves either no journal (nothing applied: the old state) or a complete journal, which the
//! next command on the profile replays before it does anything else (the new state). Readers take
//! a shared lock, so they never see a half-applied change.
//!
//! A profile folder is untrusted input: every file goes through `fsx::Dir` (no link followed,
//! owner and permissions checked), and a journal may only name the files mcpgen writes
//! (`profile.json`, `mcp_server_config.json`, the spec copy, `sa/*.pem`, `sa/<name>.jwt`,
//! `client/mcp.json`, `client/client.env`) with the mode mcpgen gives each (0644 for public
//! material, 0600 otherwise). Anything else refuses the whole journal before a byte is applied.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::error::Failure;
use crate::fsx::{self, Dir};
use crate::keys::PrivateKey;
use crate::profile::{Layout, PROFILE_JSON, Profile};
use crate::validate;

/// Above this many files a commit rewrites files in place and flushes the file system once
/// instead of replacing and fsync-ing each file.
const FSYNC_EACH_LIMIT: usize = 32;

/// The journal's name in the profile folder.
const JOURNAL: &str = ".journal";

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
    pub fn commit(self, dir: &Dir) -> Result<()> {
        if self.is_empty() {
            return Ok(());
        }
        self.check()
            .map_err(|what| Failure::error(format!("refusing to write {what}")).hint("this is a bug in mcpgen; nothing was changed"))?;
        let folders = self.preflight(dir)?;
        let journal = serde_json::to_vec(&self).context("cannot encode journal")?;
        // The journal holds private keys and tokens: 0600 like them.
        dir.write_atomic(JOURNAL, &journal, fsx::SECRET)?;
        self.apply(dir, folders)?;
        dir.remove(JOURNAL)
    }

    /// Write every file into a folder nobody else can see yet (a profile being created), without
    /// a journal: the folder's rename is the commit point.
    pub fn apply_fresh(&self, dir: &Dir) -> Result<()> {
        self.check().map_err(|what| Failure::error(format!("refusing to write {what}")).hint("this is a bug in mcpgen"))?;
        let folders = self.preflight(dir)?;
        self.apply(dir, folders)
    }

    /// Every path is one mcpgen itself writes, with the mode it gives that file (see
    /// [`mode_of`]); the error names the first that is not.
    fn check(&self) -> Result<(), String> {
        for (relative, (mode, _)) in &self.writes {
            let Some(expected) = mode_of(relative) else {
                return Err(format!("{:?}, which is not a file mcpgen writes", validate::printable(relative)));
            };
            if *mode != expected {
                return Err(format!("{:?} with mode {mode:04o} (mcpgen gives it {expected:04o})", validate::printable(relative)));
            }
        }
        if let Some(relative) = self.removes.iter().find(|r| mode_of(r).is_none()) {
            return Err(format!("{:?} (removal), which is not a file mcpgen writes", validate::printable(relative)));
        }
        Ok(())
    }

    /// Open (creating them) the folders the change writes into, before anything is written: a
    /// folder that is a link or has loose permissions refuses the whole change.
    fn preflight(&self, dir: &Dir) -> Result<HashMap<String, Dir>> {
        let mut folders = HashMap::new();
        folders.insert(String::new(), dir.try_clone()?);
        for relative in self.writes.keys().chain(&self.removes) {
            let folder = relative.rsplit_once('/').map(|(f, _)| f).unwrap_or("");
            if !folders.contains_key(folder) {
                let create = self.writes.contains_key(relative);
                if let Some((sub, _)) = dir.parent_of(relative, create)? {
                    folders.insert(folder.to_owned(), sub);
                }
            }
        }
        Ok(folders)
    }

    fn apply(&self, dir: &Dir, folders: HashMap<String, Dir>) -> Result<()> {
        // Small changes: each file replaced atomically and fsync-ed. Batches (remint-all): token
        // files rewritten in place and flushed once — the journal already holds every byte, so
        // a crash mid-batch is finished by the replay.
        let each = self.len() <= FSYNC_EACH_LIMIT;
        let split = |relative: &str| -> Option<(&Dir, String)> {
            let (folder, name) = relative.rsplit_once('/').unwrap_or(("", relative));
            folders.get(folder).map(|d| (d, name.to_owned()))
        };
        for (relative, (mode, content)) in &self.writes {
            let (folder, name) = split(relative).context("internal error: a folder was not prepared")?;
            // Only token files are rewritten in place; keys, configuration and client files are
            // always replaced atomically, as other programs read them without our lock.
            if each || !relative.ends_with(".jwt") {
                folder.write_atomic(&name, content.as_bytes(), *mode)?;
            } else {
                folder.overwrite_in_place(&name, content.as_bytes(), *mode)?;
            }
        }
        for relative in &self.removes {
            // A missing folder holds nothing to remove.
            if let Some((folder, name)) = split(relative) {
                folder.remove(&name)?;
            }
        }
        if !each {
            dir.sync_filesystem()?;
        }
        Ok(())
    }
}

/// The files mcpgen writes in a profile, relative to it — the only ones a journal may name —
/// and the mode of each: public material 0644, everything else 0600.
fn mode_of(relative: &str) -> Option<u32> {
    use crate::profile::{CLIENT_ENV, CLIENT_MCP, PRIVATE_PEM, PUBLIC_PEM, SERVER_CONFIG, SPEC_FILES};
    if relative == PUBLIC_PEM || SPEC_FILES.contains(&relative) {
        return Some(fsx::PUBLIC);
    }
    let token = relative.strip_prefix("sa/").and_then(|f| f.strip_suffix(".jwt")).is_some_and(|name| validate::name(name).is_ok());
    (token || [PROFILE_JSON, SERVER_CONFIG, PRIVATE_PEM, CLIENT_MCP, CLIENT_ENV].contains(&relative)).then_some(fsx::SECRET)
}

/// Finish an interrupted commit (replay its journal) and delete temporary files a killed write
/// left behind. Call with the exclusive lock held. A journal naming a file mcpgen never writes,
/// or a mode it never uses, or a folder that is a link, is refused and nothing is applied.
fn recover(dir: &Dir) -> Result<()> {
    let journal = dir.join(JOURNAL);
    if let Some(bytes) = dir.read(JOURNAL)? {
        let txn: Txn = serde_json::from_slice(&bytes).map_err(|e| {
            Failure::error(format!("{}: unreadable journal of an interrupted change ({e})", journal.display()))
                .hint("the change it records cannot be finished; move the file away to keep the profile as it is on disk")
        })?;
        txn.check().map_err(|what| {
            Failure::error(format!("{}: the interrupted change it records would write {what}; nothing was applied", journal.display()))
                .hint("mcpgen did not write this journal; move it away to keep the profile as it is on disk")
        })?;
        let folders = txn.preflight(dir)?;
        txn.apply(dir, folders)?;
        dir.remove(JOURNAL)?;
        for sub in ["sa", "client"] {
            if let Ok(Some(sub)) = dir.sub(sub, false) {
                sub.remove_temp_files();
            }
        }
    }
    dir.remove_temp_files();
    Ok(())
}

/// How a session holds its profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// An open profile: its lock (held until drop), its folder, its layout and its parsed
/// `profile.json`. Read the profile's files through [`Session::read`] (see `fsx::Dir`).
pub struct Session {
    _lock: File,
    pub dir: Dir,
    pub layout: Layout,
    pub profile: Profile,
}

/// Check the profile name, lock its folder, finish any interrupted change and load it.
pub fn open(root: &Path, name: &str, access: Access) -> Result<Session> {
    validate::name(name).map_err(|e| Failure::usage(format!("profile: {e}")))?;
    let layout = Layout::new(root, name);
    let profile_path = layout.profile_json();
    if std::fs::symlink_metadata(&layout.dir).is_err() || std::fs::symlink_metadata(&profile_path).is_err() {
        return Err(unknown_profile(root, name));
    }
    let (lock, dir) = lock(&layout, access)?;
    let text = dir.read_text(PROFILE_JSON)?;
    let profile = Profile::parse(&text, &profile_path, name)?;
    Ok(Session { _lock: lock, dir, layout, profile })
}

fn lock(layout: &Layout, access: Access) -> Result<(File, Dir)> {
    // `up --force` may replace the whole folder while we wait: a lock on the old folder's file
    // would protect nothing, so lock until the file we hold is the one at the path.
    let (file, dir) = loop {
        let dir = Dir::open(&layout.dir)?;
        let file = dir.lock_file(".lock")?;
        match access {
            Access::Read => file.lock_shared(),
            Access::Write => file.lock(),
        }
        .with_context(|| format!("cannot lock {}", layout.lock_file().display()))?;
        let held = file.metadata().map(|m| m.ino()).ok();
        let current = std::fs::symlink_metadata(layout.lock_file()).map(|m| m.ino()).ok();
        if held.is_some() && held == current {
            break (file, dir);
        }
        if current.is_none() && !layout.profile_json().is_file() {
            return Err(unknown_profile(
                layout.dir.parent().unwrap_or(Path::new(".")),
                &layout.dir.file_name().unwrap_or_default().to_string_lossy(),
            ));
        }
    };
    if access == Access::Read {
        if dir.inode_of(JOURNAL).is_none() {
            return Ok((file, dir));
        }
        file.unlock().ok();
    }
    file.lock().with_context(|| format!("cannot lock {}", layout.lock_file().display()))?;
    recover(&dir)?;
    Ok((file, dir))
}

/// Open (never through a link; creating it if needed) and lock the lock file at `path`.
pub fn lock_file_at(path: &Path, access: Access) -> Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(fsx::SECRET)
        .custom_flags((rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32)
        .open(path)
        .with_context(|| format!("cannot open lock file {}", path.display()))?;
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return Err(Failure::error(format!("{} is not a regular file", path.display())).into());
    }
    match access {
        Access::Read => file.lock_shared(),
        Access::Write => file.lock(),
    }
    .with_context(|| format!("cannot lock {}", path.display()))?;
    Ok(file)
}

/// Names of the folders under `root` that hold a `profile.json`, sorted — only names mcpgen
/// accepts for a profile (`validate::name`): a folder from a clone named `p;touch x` or with
/// terminal escapes is no profile, and never reaches a shell completion or a terminal.
pub fn profile_names(root: &Path) -> Result<Vec<String>> {
    let entries = match std::fs::read_dir(root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", root.display())),
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| crate::validate::name(n).is_ok() && root.join(n).join("profile.json").is_file())
        .collect();
    names.sort();
    Ok(names)
}

/// The error for a profile that does not exist, with the ones that do.
pub fn unknown_profile(root: &Path, name: &str) -> anyhow::Error {
    let known = profile_names(root).unwrap_or_default();
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
        txn.commit(&self.dir)
    }

    /// The text of a file in the profile (never through a link, owner and mode checked, see
    /// `fsx::Dir`); `None` if it does not exist.
    pub fn read(&self, relative: &str) -> Result<Option<String>> {
        read_text_at(&self.dir, relative)
    }

    /// The profile's signing key.
    pub fn private_key(&self) -> Result<PrivateKey> {
        let path = self.layout.private_pem();
        if self.profile.key_id.is_none() {
            return Err(Failure::usage(format!("profile {} was created with --no-sa and has no signing key", self.profile.name))
                .hint(format!("recreate it with service accounts: `mcpgen up --instance {} --force`", self.profile.name))
                .into());
        }
        let hint = format!("restore the key, or issue a new one and re-mint every token with `mcpgen remint-all {}`", self.profile.name);
        let pem = match self.read(crate::profile::PRIVATE_PEM) {
            Ok(Some(pem)) => pem,
            Ok(None) => {
                let e = std::io::Error::from(std::io::ErrorKind::NotFound);
                return Err(Failure::error(format!("cannot read {} ({e})", path.display())).hint(hint).into());
            }
            Err(e) if e.downcast_ref::<Failure>().is_some() => return Err(e),
            Err(e) => return Err(Failure::error(format!("{e:#}")).hint(hint).into()),
        };
        let key = PrivateKey::from_pem(&pem).map_err(|e| Failure::error(format!("{}: {e}", path.display())).hint(hint.clone()))?;
        if Some(key.public().thumbprint()) != self.profile.key_id {
            return Err(Failure::error(format!("{}: the key does not match key_id in profile.json", path.display()))
                .hint(format!("restore the matching key, or re-mint every token with `mcpgen remint-all {}`", self.profile.name))
                .into());
        }
        Ok(key)
    }
}

/// `relative` in `dir` as UTF-8 text; `None` if it does not exist.
pub fn read_text_at(dir: &Dir, relative: &str) -> Result<Option<String>> {
    match dir.read(relative)? {
        Some(bytes) => {
            String::from_utf8(bytes).map(Some).map_err(|_| anyhow::anyhow!("cannot read {}: not UTF-8 text", dir.join(relative).display()))
        }
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn journal_replay_finishes_an_interrupted_commit() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout { dir: dir.path().to_path_buf() };
        let folder = Dir::open(dir.path()).unwrap();
        let mut txn = Txn::new();
        txn.write("sa/a.jwt", 0o600, "A".into());
        txn.write("client/mcp.json", 0o600, "X".into());
        fs::write(dir.path().join("mcp_server_config.json"), "old").unwrap();
        txn.remove("mcp_server_config.json");
        // Simulate a kill right after the commit point.
        fsx::write_atomic(&layout.journal(), &serde_json::to_vec(&txn).unwrap(), 0o600).unwrap();
        fs::write(dir.path().join(".junk.tmp"), "").unwrap();
        recover(&folder).unwrap();
        assert_eq!(fs::read_to_string(dir.path().join("sa/a.jwt")).unwrap(), "A");
        assert_eq!(fs::read_to_string(dir.path().join("client/mcp.json")).unwrap(), "X");
        assert!(!dir.path().join("mcp_server_config.json").exists());
        assert!(!layout.journal().exists());
        assert!(!dir.path().join(".junk.tmp").exists());
    }

    #[test]
    fn journal_paths_cannot_escape() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout { dir: dir.path().join("p") };
        fs::create_dir(&layout.dir).unwrap();
        let folder = Dir::open(&layout.dir).unwrap();
        let mut txn = Txn::new();
        txn.write("../escape", 0o600, "x".into());
        assert!(txn.commit(&folder).is_err());
        assert!(!dir.path().join("escape").exists());
        assert!(!layout.journal().exists(), "a refused change must not leave a journal behind");
    }
}
