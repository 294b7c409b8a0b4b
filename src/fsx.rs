//! File-system primitives: atomic writes with an explicit mode, directory creation with a mode,
//! and durability helpers.
//!
//! A file mcpgen writes on its own goes through [`write_atomic`]: a temporary file in the same
//! folder, created with its final mode (secrets are never world-readable, not even for an
//! instant), fsync-ed, renamed over the target, and the folder fsync-ed. Large batches whose
//! bytes are already in a committed journal use [`overwrite_in_place`] and one
//! [`sync_filesystem`] instead (see `store`).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Mode for private keys, tokens and anything that embeds them.
pub const SECRET: u32 = 0o600;
/// Mode for public material.
pub const PUBLIC: u32 = 0o644;
/// Mode for the folders mcpgen creates.
pub const DIR: u32 = 0o700;

/// Write `data` to `path` atomically with permission bits `mode`.
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

/// Rewrite `path` in place (create it if missing) with `mode`, without a temporary file or
/// fsync. Only for batches whose complete content is already in a committed journal: a crash
/// mid-write is repaired by the replay. Replacing a file by rename costs ~0.2 ms on ext4 and
/// creating one more; rewriting a same-sized token in place costs ~10 µs.
pub fn overwrite_in_place(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    (|| -> std::io::Result<()> {
        let mut file = OpenOptions::new().write(true).create(true).truncate(false).mode(mode).open(path)?;
        let meta = file.metadata()?;
        if meta.permissions().mode() & 0o7777 != mode {
            file.set_permissions(fs::Permissions::from_mode(mode))?;
        }
        file.write_all(data)?;
        if meta.len() > data.len() as u64 {
            file.set_len(data.len() as u64)?;
        }
        Ok(())
    })()
    .with_context(|| format!("cannot write {}", path.display()))
}

/// A unique temporary name beside `path`; dot-prefixed so listings skip it.
fn temp_sibling(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let suffix: u64 = rand::random();
    path.with_file_name(format!(".{name}.{suffix:016x}.tmp"))
}

/// fsync a folder so renames and creations inside it are durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Flush every dirty page of the file system holding `path` (one call instead of thousands of
/// fsyncs after a batch of [`overwrite_in_place`] writes).
pub fn sync_filesystem(path: &Path) -> Result<()> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    rustix::fs::syncfs(&file).with_context(|| format!("cannot sync {}", path.display()))?;
    Ok(())
}

/// Create `dir` and any missing parents with mode [`DIR`].
pub fn create_dir_all(dir: &Path) -> Result<()> {
    fs::DirBuilder::new().recursive(true).mode(DIR).create(dir).with_context(|| format!("cannot create folder {}", dir.display()))
}

/// Read a file as UTF-8 text, naming the file on failure.
pub fn read_text(path: &Path) -> Result<String> {
    fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}
