//! The files a run leaves behind: a snapshot of a whole folder (kind, mode and bytes of every
//! path) to prove a refused command changed nothing, permission bits, and writing a secret the
//! way mcpgen does (mode 0600 from birth).

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Create a file with mode 0600 (as mcpgen would) and `bytes`.
pub fn write_secret(path: &Path, bytes: &[u8]) {
    let mut file = fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path).expect("create file");
    file.write_all(bytes).expect("write file");
}

#[track_caller]
pub fn read_text(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Permission bits of a path.
#[track_caller]
pub fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap_or_else(|e| panic!("stat {}: {e}", path.display())).permissions().mode() & 0o7777
}

/// One entry of a tree snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Dir { mode: u32 },
    File { mode: u32, bytes: Vec<u8> },
    Symlink { target: PathBuf },
}

/// Every path under `dir` (relative) with its kind, mode and bytes.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Node> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Node>) {
        let mut entries: Vec<_> = fs::read_dir(dir).unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display())).flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let relative = path.strip_prefix(base).unwrap().to_path_buf();
            let meta = fs::symlink_metadata(&path).unwrap();
            let mode = meta.permissions().mode() & 0o7777;
            if meta.file_type().is_symlink() {
                out.insert(relative, Node::Symlink { target: fs::read_link(&path).unwrap() });
            } else if meta.is_dir() {
                out.insert(relative, Node::Dir { mode });
                walk(base, &path, out);
            } else {
                out.insert(relative, Node::File { mode, bytes: fs::read(&path).unwrap() });
            }
        }
    }
    let mut out = BTreeMap::new();
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out
}

/// Assert two snapshots are identical, naming every path that differs.
#[track_caller]
pub fn assert_same_tree(before: &BTreeMap<PathBuf, Node>, after: &BTreeMap<PathBuf, Node>, what: &str) {
    if before == after {
        return;
    }
    let mut diffs = Vec::new();
    for (path, node) in before {
        match after.get(path) {
            None => diffs.push(format!("removed {}", path.display())),
            Some(other) if other != node => diffs.push(format!("changed {}", path.display())),
            _ => {}
        }
    }
    for path in after.keys().filter(|p| !before.contains_key(*p)) {
        diffs.push(format!("added {}", path.display()));
    }
    panic!("{what}: the tree changed:\n  {}", diffs.join("\n  "));
}
