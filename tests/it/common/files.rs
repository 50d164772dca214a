//! Reading trees the binary wrote: every entry with mode and content, the
//! temp files it left behind, directory listings, symlink checks.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// One entry of a tree listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A directory, with its permission bits.
    Dir(u32),
    /// A regular file, with its permission bits and content.
    File(u32, String),
    /// A symlink and its target.
    Link(PathBuf),
}

/// Every entry under `dir` (not following symlinks), by path relative to
/// `dir`. Empty if `dir` does not exist.
pub fn tree(dir: &Path) -> BTreeMap<String, Entry> {
    let mut out = BTreeMap::new();
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, Entry>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for e in entries {
            let e = e.expect("entry");
            let path = e.path();
            let rel = path
                .strip_prefix(base)
                .expect("below base")
                .to_string_lossy()
                .into_owned();
            let meta = fs::symlink_metadata(&path).expect("metadata");
            let mode = meta.permissions().mode() & 0o7777;
            if meta.file_type().is_symlink() {
                out.insert(rel, Entry::Link(fs::read_link(&path).expect("readlink")));
            } else if meta.is_dir() {
                out.insert(rel, Entry::Dir(mode));
                walk(base, &path, out);
            } else {
                let content = fs::read_to_string(&path).unwrap_or_else(|_| "<binary>".to_owned());
                out.insert(rel, Entry::File(mode, content));
            }
        }
    }
    walk(dir, dir, &mut out);
    out
}

/// The names of `.*.tmp` files anywhere under `dir`.
pub fn temp_files(dir: &Path) -> Vec<String> {
    tree(dir)
        .into_keys()
        .filter(|p| {
            let name = p.rsplit('/').next().unwrap_or(p);
            name.starts_with('.') && name.ends_with(".tmp")
        })
        .collect()
}

/// Names of the entries of `dir`, sorted.
pub fn list_dir(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Asserts that `path` is a symlink (not followed); the failure names it.
#[track_caller]
pub fn assert_symlink(path: &Path) {
    assert!(path.is_symlink(), "{} is not a symlink", path.display());
}
