//! Helpers for the unit tests of `src/` (compiled only for `cargo test`).

use std::fmt::Debug;
use std::fs;
use std::path::{Path, PathBuf};

/// Table test: asserts `f(input) == expected` for every `(input, expected)`
/// row, naming the input of a row that fails.
#[track_caller]
pub(crate) fn assert_cases<I, O, E>(f: impl Fn(I) -> O, cases: &[(I, E)])
where
    I: Debug + Clone,
    O: Debug + PartialEq<E>,
    E: Debug,
{
    for (input, expected) in cases {
        let got = f(input.clone());
        assert!(
            got == *expected,
            "for {input:?}: got {got:?}, expected {expected:?}"
        );
    }
}

/// A temporary directory tree for a unit test, removed when dropped.
/// Paths are given relative to its top; parents are created as needed.
pub(crate) struct TempTree {
    dir: tempfile::TempDir,
}

impl TempTree {
    /// A new empty tree.
    pub(crate) fn new() -> TempTree {
        TempTree {
            dir: tempfile::tempdir().expect("temporary directory"),
        }
    }

    /// The path of `rel` in the tree (`""`: its top); nothing is created.
    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Creates the directory `rel` and its parents.
    pub(crate) fn dir(&self, rel: &str) -> PathBuf {
        let path = self.path(rel);
        fs::create_dir_all(&path).expect("create directory");
        path
    }

    /// Writes the file `rel`, creating its parents.
    pub(crate) fn file(&self, rel: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("create parent directory");
        }
        fs::write(&path, content).expect("write file");
        path
    }

    /// Makes `rel` a symlink to `target` (taken as written).
    pub(crate) fn symlink(&self, target: impl AsRef<Path>, rel: &str) -> PathBuf {
        let path = self.path(rel);
        std::os::unix::fs::symlink(target, &path).expect("symlink");
        path
    }
}
