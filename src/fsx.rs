//! File-system primitives: atomic writes with an explicit mode, directory creation with a mode,
//! durability helpers, and [`Dir`] — every read and write under a profile folder.
//!
//! A file mcpgen writes on its own goes through a `write_atomic`: a temporary file in the same
//! folder, created with its final mode (secrets are never world-readable, not even for an
//! instant), fsync-ed, renamed over the target, and the folder fsync-ed. Large batches whose
//! bytes are already in a committed journal use [`Dir::overwrite_in_place`] and one
//! [`Dir::sync_filesystem`] instead (see `store`).
//!
//! A profile folder is untrusted input (it is committed to git, copied, unpacked), so [`Dir`]
//! works relative to an open folder descriptor (`openat`), one path component at a time:
//! - **No symbolic link inside a profile is ever followed**, neither the profile folder itself,
//!   nor `sa/` / `client/`, nor a file that is read, rewritten in place, or the lock file
//!   (`O_NOFOLLOW`, refused with a hint). A rename or an unlink replaces or removes a link
//!   itself, never its target. A file rewritten in place that is not a plain file with a single
//!   link (a hard link could point anywhere on the file system) is replaced by rename instead.
//! - **Ownership and permissions, as OpenSSH's StrictModes for `~/.ssh`:** every folder opened
//!   (the profile, `sa/`, `client/`) and every file read must be owned by the current effective
//!   user or by root, and must not be writable by group or others (`mode & 0o022 == 0`);
//!   otherwise the command is refused naming the path, with a `chown`/`chmod go-w` hint.
//!   Being *readable* by others is allowed (a `git clone` under umask 022 makes `0644`).
//!   The check is one `fstat` of a descriptor we open anyway.
//! - Files read are plain files (a FIFO or device is refused, and opening never blocks) and at
//!   most [`MAX_READ`] bytes.

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;

use crate::error::Failure;

/// Mode for private keys, tokens and anything that embeds them.
pub const SECRET: u32 = 0o600;
/// Mode for public material.
pub const PUBLIC: u32 = 0o644;
/// Mode for the folders mcpgen creates.
pub const DIR: u32 = 0o700;
/// The largest file [`Dir::read`] accepts (a journal of a re-mint of many thousand tokens fits).
pub const MAX_READ: u64 = 256 << 20;

const S_IFMT: u32 = 0o170000;
const S_IFREG: u32 = 0o100000;

/// Write `data` to `path` atomically with permission bits `mode` (for files outside profiles).
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let tmp = temp_sibling(path);
    let result = (|| -> std::io::Result<()> {
        let mut file = OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp)?;
        file.write_all(data)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        sync_dir(dir)?;
        Ok(())
    })();
    if let Err(err) = result {
        let _ = fs::remove_file(&tmp);
        return Err(err).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(())
}

/// A unique temporary name beside `path`; dot-prefixed so listings skip it.
fn temp_sibling(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(temp_name(&name))
}

fn temp_name(name: &str) -> String {
    let suffix: u64 = rand::random();
    format!(".{name}.{suffix:016x}.tmp")
}

/// fsync a folder so renames and creations inside it are durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Create `dir` and any missing parents with mode [`DIR`].
pub fn create_dir_all(dir: &Path) -> Result<()> {
    fs::DirBuilder::new().recursive(true).mode(DIR).create(dir).with_context(|| format!("cannot create folder {}", dir.display()))
}

/// Read a file as UTF-8 text, naming the file on failure (for files outside profiles).
pub fn read_text(path: &Path) -> Result<String> {
    fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// The refusal for a symbolic link inside a profile.
fn symlink_refused(path: &Path) -> anyhow::Error {
    Failure::error(format!("{} is a symbolic link; mcpgen never follows links inside a profile", path.display()))
        .hint("replace the link with the real file or folder (or recreate the profile with `mcpgen up --instance NAME --force`)")
        .into()
}

/// The StrictModes check of a descriptor just opened (see the module header).
fn check_stat(stat: &rustix::fs::Stat, path: &Path) -> Result<()> {
    let me = rustix::process::geteuid().as_raw();
    if stat.st_uid != me && stat.st_uid != 0 {
        return Err(Failure::error(format!(
            "{} is owned by another user (uid {}); mcpgen only uses profile files you own",
            path.display(),
            stat.st_uid
        ))
        .hint(format!("check where the profile came from; if it is yours, `chown -R {me} {}`", path.display()))
        .into());
    }
    let mode = stat.st_mode & 0o7777;
    if mode & 0o022 != 0 {
        return Err(Failure::error(format!("{} is writable by other users (mode {mode:04o})", path.display()))
            .hint(format!("check nobody changed it, then `chmod go-w {}`", path.display()))
            .into());
    }
    Ok(())
}

/// One open folder of a profile: every operation is relative to its descriptor and never
/// follows a symbolic link (see the module header).
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

impl Dir {
    /// Open the folder at `path` (the profile folder itself): not a link, owned by us or root,
    /// not writable by others.
    pub fn open(path: &Path) -> Result<Dir> {
        let fd = match rustix::fs::open(path, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::LOOP) | Err(Errno::NOTDIR) if fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) => {
                return Err(symlink_refused(path));
            }
            Err(e) => return Err(std::io::Error::from(e)).with_context(|| format!("cannot open folder {}", path.display())),
        };
        Self::checked(fd, path.to_path_buf())
    }

    fn checked(fd: OwnedFd, path: PathBuf) -> Result<Dir> {
        let stat = rustix::fs::fstat(&fd).map_err(std::io::Error::from).with_context(|| format!("cannot stat {}", path.display()))?;
        check_stat(&stat, &path)?;
        Ok(Dir { fd, path })
    }

    /// The folder's path, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of `name` inside this folder, for messages.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Another handle on the same folder.
    pub fn try_clone(&self) -> Result<Dir> {
        Ok(Dir { fd: self.fd.try_clone().context("cannot duplicate a folder descriptor")?, path: self.path.clone() })
    }

    fn is_link(&self, name: &str) -> bool {
        rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW).is_ok_and(|s| s.st_mode & S_IFMT == 0o120000)
    }

    /// The sub-folder `name` (one component); `None` when it does not exist and `create` is
    /// false, else created with mode [`DIR`].
    pub fn sub(&self, name: &str, create: bool) -> Result<Option<Dir>> {
        let path = self.join(name);
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = match rustix::fs::openat(&self.fd, name, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) if create => {
                match rustix::fs::mkdirat(&self.fd, name, Mode::from_raw_mode(DIR)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(std::io::Error::from(e)).with_context(|| format!("cannot create folder {}", path.display())),
                }
                return self.sub(name, false);
            }
            Err(Errno::NOENT) => return Ok(None),
            Err(Errno::LOOP) | Err(Errno::NOTDIR) if self.is_link(name) => return Err(symlink_refused(&path)),
            Err(e) => return Err(std::io::Error::from(e)).with_context(|| format!("cannot open folder {}", path.display())),
        };
        Self::checked(fd, path).map(Some)
    }

    /// The folder holding `relative` (`a/b/file` → `a/b`) and the file's name; `None` when a
    /// folder on the way is missing and `create` is false.
    pub fn parent_of<'a>(&self, relative: &'a str, create: bool) -> Result<Option<(Dir, &'a str)>> {
        let mut parts: Vec<&str> = relative.split('/').collect();
        let name = parts.pop().unwrap_or_default();
        let mut dir = self.try_clone()?;
        for part in parts {
            match dir.sub(part, create)? {
                Some(sub) => dir = sub,
                None => return Ok(None),
            }
        }
        Ok(Some((dir, name)))
    }

    /// Open the plain file `name` for reading: never through a link, never blocking on a FIFO;
    /// `None` if it does not exist.
    fn open_file(&self, name: &str) -> Result<Option<(File, rustix::fs::Stat)>> {
        let path = self.join(name);
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
        let fd = match rustix::fs::openat(&self.fd, name, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(None),
            Err(Errno::LOOP) => return Err(symlink_refused(&path)),
            Err(e) => return Err(std::io::Error::from(e)).with_context(|| format!("cannot read {}", path.display())),
        };
        let stat = rustix::fs::fstat(&fd).map_err(std::io::Error::from).with_context(|| format!("cannot stat {}", path.display()))?;
        if stat.st_mode & S_IFMT != S_IFREG {
            return Err(Failure::error(format!("{} is not a regular file", path.display()))
                .hint("replace it with the file mcpgen wrote, or recreate the profile with `mcpgen up --instance NAME --force`")
                .into());
        }
        check_stat(&stat, &path)?;
        Ok(Some((File::from(fd), stat)))
    }

    /// The bytes of `relative` (checked as the module header says); `None` if it (or a folder
    /// on the way) does not exist.
    pub fn read(&self, relative: &str) -> Result<Option<Vec<u8>>> {
        self.read_capped(relative, MAX_READ)
    }

    /// Like [`Dir::read`], refusing a file larger than `cap` bytes (it may grow while read).
    pub fn read_capped(&self, relative: &str, cap: u64) -> Result<Option<Vec<u8>>> {
        let Some((dir, name)) = self.parent_of(relative, false)? else { return Ok(None) };
        let Some((file, stat)) = dir.open_file(name)? else { return Ok(None) };
        let path = self.join(relative);
        let too_large = || Failure::error(format!("{} is larger than {cap} bytes", path.display()));
        if stat.st_size as u64 > cap {
            return Err(too_large().into());
        }
        let mut bytes = Vec::with_capacity(stat.st_size as usize);
        file.take(cap + 1).read_to_end(&mut bytes).with_context(|| format!("cannot read {}", path.display()))?;
        if bytes.len() as u64 > cap {
            return Err(too_large().into());
        }
        Ok(Some(bytes))
    }

    /// `relative` as UTF-8 text; a missing file is an error naming it.
    pub fn read_text(&self, relative: &str) -> Result<String> {
        self.read_text_capped(relative, MAX_READ)
    }

    /// `relative` as UTF-8 text of at most `cap` bytes; a missing file is an error naming it.
    pub fn read_text_capped(&self, relative: &str, cap: u64) -> Result<String> {
        let path = self.join(relative);
        let bytes = self.read_capped(relative, cap)?.ok_or_else(|| {
            anyhow::Error::from(std::io::Error::from(std::io::ErrorKind::NotFound)).context(format!("cannot read {}", path.display()))
        })?;
        String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("cannot read {}: not UTF-8 text", path.display()))
    }

    /// Replace `name` atomically (temporary file, fsync, rename, fsync of the folder) with
    /// `data` and exactly `mode`. The rename replaces a link rather than following it.
    pub fn write_atomic(&self, name: &str, data: &[u8], mode: u32) -> Result<()> {
        let tmp = temp_name(name);
        let result = (|| -> std::io::Result<()> {
            let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            let fd = rustix::fs::openat(&self.fd, tmp.as_str(), flags, Mode::from_raw_mode(mode))?;
            // Exactly `mode`, whatever the umask.
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))?;
            let mut file = File::from(fd);
            file.write_all(data)?;
            file.sync_all()?;
            drop(file);
            rustix::fs::renameat(&self.fd, tmp.as_str(), &self.fd, name)?;
            rustix::fs::fsync(&self.fd)?;
            Ok(())
        })();
        if let Err(err) = result {
            let _ = rustix::fs::unlinkat(&self.fd, tmp.as_str(), AtFlags::empty());
            return Err(err).with_context(|| format!("cannot write {}", self.join(name).display()));
        }
        Ok(())
    }

    /// Rewrite `name` in place (create it if missing) with `mode`, without a temporary file or
    /// fsync. Only for batches whose complete content is already in a committed journal: a crash
    /// mid-write is repaired by the replay. Replacing a file by rename costs ~0.2 ms on ext4 and
    /// creating one more; rewriting a same-sized token in place costs ~10 µs. Anything but a
    /// plain file with one link that we own (a link, a hard link, a FIFO) is replaced by
    /// [`Dir::write_atomic`] instead, so nothing outside the profile is ever written.
    pub fn overwrite_in_place(&self, name: &str, data: &[u8], mode: u32) -> Result<()> {
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
        let fd = match rustix::fs::openat(&self.fd, name, flags, Mode::from_raw_mode(mode)) {
            Ok(fd) => fd,
            Err(Errno::LOOP) | Err(Errno::NXIO) | Err(Errno::ISDIR) => return self.write_atomic(name, data, mode),
            Err(e) => return Err(std::io::Error::from(e)).with_context(|| format!("cannot write {}", self.join(name).display())),
        };
        let result = (|| -> std::io::Result<bool> {
            let stat = rustix::fs::fstat(&fd)?;
            let me = rustix::process::geteuid().as_raw();
            if stat.st_mode & S_IFMT != S_IFREG || stat.st_nlink != 1 || stat.st_uid != me {
                return Ok(false);
            }
            if stat.st_mode & 0o7777 != mode {
                rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))?;
            }
            let mut file = File::from(fd);
            file.write_all(data)?;
            if stat.st_size as u64 > data.len() as u64 {
                file.set_len(data.len() as u64)?;
            }
            Ok(true)
        })()
        .with_context(|| format!("cannot write {}", self.join(name).display()))?;
        if result { Ok(()) } else { self.write_atomic(name, data, mode) }
    }

    /// Remove `name` (a link is removed itself); a missing file is fine.
    pub fn remove(&self, name: &str) -> Result<()> {
        match rustix::fs::unlinkat(&self.fd, name, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(std::io::Error::from(e)).with_context(|| format!("cannot remove {}", self.join(name).display())),
        }
    }

    /// Open (creating it with mode [`SECRET`] if needed) the lock file `name`: never through a
    /// link, a plain file we own.
    pub fn lock_file(&self, name: &str) -> Result<File> {
        let path = self.join(name);
        let flags = OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
        let fd = match rustix::fs::openat(&self.fd, name, flags, Mode::from_raw_mode(SECRET)) {
            Ok(fd) => fd,
            Err(Errno::LOOP) => return Err(symlink_refused(&path)),
            Err(e) => return Err(std::io::Error::from(e)).with_context(|| format!("cannot open lock file {}", path.display())),
        };
        let stat = rustix::fs::fstat(&fd).map_err(std::io::Error::from).with_context(|| format!("cannot stat {}", path.display()))?;
        if stat.st_mode & S_IFMT != S_IFREG {
            return Err(Failure::error(format!("{} is not a regular file", path.display())).hint("remove it; mcpgen recreates it").into());
        }
        check_stat(&stat, &path)?;
        Ok(File::from(fd))
    }

    /// The inode of `name` in this folder, not following a link.
    pub fn inode_of(&self, name: &str) -> Option<u64> {
        rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW).ok().map(|s| s.st_ino)
    }

    /// Remove `.*.tmp` files left by writes that were killed before their rename (unlinked by
    /// name in this folder: nothing is followed).
    pub fn remove_temp_files(&self) {
        let Ok(entries) = rustix::fs::Dir::read_from(&self.fd) else { return };
        for entry in entries.flatten() {
            let name = entry.file_name().to_bytes();
            if name.starts_with(b".") && name.ends_with(b".tmp") {
                let _ = rustix::fs::unlinkat(&self.fd, OsStr::from_bytes(name), AtFlags::empty());
            }
        }
    }

    /// Flush every dirty page of the file system holding this folder (one call instead of
    /// thousands of fsyncs after a batch of [`Dir::overwrite_in_place`] writes).
    pub fn sync_filesystem(&self) -> Result<()> {
        rustix::fs::syncfs(self.fd.as_fd()).map_err(std::io::Error::from).with_context(|| format!("cannot sync {}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    #[test]
    fn links_are_refused_or_replaced_never_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let profile = tmp.path().join("p");
        create_dir_all(&profile.join("sa")).unwrap();
        fs::write(tmp.path().join("target"), "outside").unwrap();
        symlink(tmp.path().join("target"), profile.join("sa/x.jwt")).unwrap();
        symlink(tmp.path(), profile.join("client")).unwrap();
        let dir = Dir::open(&profile).unwrap();
        assert!(dir.read("sa/x.jwt").unwrap_err().to_string().contains("symbolic link"));
        assert!(dir.read("client/mcp.json").unwrap_err().to_string().contains("symbolic link"));
        assert!(dir.parent_of("client/mcp.json", true).is_err());
        let (sa, name) = dir.parent_of("sa/x.jwt", false).unwrap().unwrap();
        sa.overwrite_in_place(name, b"new", SECRET).unwrap();
        assert_eq!(fs::read_to_string(tmp.path().join("target")).unwrap(), "outside");
        assert_eq!(fs::read_to_string(profile.join("sa/x.jwt")).unwrap(), "new");
        assert!(Dir::open(&profile.join("client")).is_err());
        fs::set_permissions(&profile, fs::Permissions::from_mode(0o777)).unwrap();
        assert!(Dir::open(&profile).unwrap_err().to_string().contains("writable by other users"));
    }
}
