//! The one harness of the integration tests: a temp work directory, files
//! and fake programs in it, and the real `mirrorer` binary run with a clean
//! environment (no CI=true, no MIRRORER_* variables from the caller).

#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The repository root (where Cargo.toml is).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A temp work directory that is removed at the end of the test.
pub struct Work {
    pub dir: tempfile::TempDir,
}

impl Work {
    pub fn new() -> Work {
        Work {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// `rel` inside the work directory.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes `content` to `rel` (parents created) and returns its path.
    pub fn write(&self, rel: &str, content: &str) -> PathBuf {
        let path = self.path(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent");
        }
        std::fs::write(&path, content).expect("write file");
        path
    }

    /// Writes an executable script to `rel` and returns its path.
    pub fn write_executable(&self, rel: &str, content: &str) -> PathBuf {
        let path = self.write(rel, content);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }

    /// The real binary, started in the work directory with a clean environment.
    pub fn mirrorer(&self) -> assert_cmd::Command {
        let mut cmd = mirrorer();
        cmd.current_dir(self.dir.path());
        cmd
    }
}

/// Variables the binary reads that a caller's environment must not leak in.
pub const CLEARED_VARIABLES: &[&str] = &[
    "CI",
    "CI_JOB_URL",
    "GITLAB_CI",
    "MIRRORER_CONFIG",
    "MIRRORER_SYNCERS",
    "MIRRORER_SNAPSHOT",
    "MIRRORER_PUBLISH_ALL",
    "MIRRORER_CATALOG_REBUILD",
    "MIRRORER_SKIP_REMOTE",
    "MIRRORER_DRY_RUN",
    "DIST_MIRROR_SHARD",
    "DIST_MIRROR_REPO_CATALOG_SHARD",
];

/// The real binary with a clean environment, started in the repository root.
pub fn mirrorer() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("mirrorer").expect("binary");
    for var in CLEARED_VARIABLES {
        cmd.env_remove(var);
    }
    for (key, _) in std::env::vars() {
        if key.starts_with("MIRRORER_TOOL_") {
            cmd.env_remove(key);
        }
    }
    cmd.current_dir(repo_root());
    cmd
}

/// stdout of a finished command as text.
pub fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// stderr of a finished command as text.
pub fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
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
