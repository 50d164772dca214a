//! File-backed ZFS pools on the machine's zfs-fuse daemon, for the tests
//! that run the binary against real ZFS and real syncoid
//! (`tests/it/zfs_real.rs`).
//!
//! [`Pool::new`] creates a sparse 64 MiB file in a temp directory
//! (`truncate`), a pool on it with a unique name (`zpool create -m <temp
//! dir>/mnt <name> <file>`), and destroys the pool (`zpool destroy -f`) and
//! the directory when dropped, also when the test panics. Nothing is
//! skipped: without /dev/fuse, the `zfs`/`zpool` programs or a running
//! zfs-fuse daemon, [`require_zfs_fuse`] panics and says what is missing
//! and how `ci/test.sh` provides it.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The smallest vdev ZFS accepts.
const POOL_FILE_SIZE: &str = "64M";

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// The full path of `program` found on PATH, or a panic naming it.
pub fn program(program: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{program}` is not on PATH ({}): install Debian's zfs-fuse and sanoid packages, as ci/test.sh does",
                path.to_string_lossy()
            )
        })
}

/// Runs `program args` and returns its stdout; panics with its stderr
/// when it fails.
pub fn run(program_name: &str, args: &[&str]) -> String {
    let out = Command::new(program(program_name))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program_name}: {e}"));
    assert!(
        out.status.success(),
        "`{program_name} {}` failed ({}): {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Panics, saying why, unless zfs-fuse can be used: /dev/fuse exists,
/// `zpool` is on PATH, and the zfs-fuse daemon answers `zpool list`.
pub fn require_zfs_fuse() {
    assert!(
        Path::new("/dev/fuse").exists(),
        "/dev/fuse is missing: zfs-fuse needs the FUSE device (run the tests as root on a machine or container with /dev/fuse)"
    );
    let zpool = program("zpool");
    let out = Command::new(&zpool)
        .arg("list")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", zpool.display()));
    assert!(
        out.status.success(),
        "the zfs-fuse daemon does not answer (`zpool list` failed: {}): start it as ci/test.sh does (`zfs-fuse --no-kstat-mount -p <pidfile>`)",
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

/// A pool on a file in a temp directory; destroyed when dropped.
pub struct Pool {
    /// The pool's name, unique on this machine (`mrrtest<pid>-<n>`; ZFS reserves names that start with `mirror`).
    pub name: String,
    /// `<temp dir>/mnt`: the pool's mountpoint (its datasets below).
    pub mount: PathBuf,
    dir: tempfile::TempDir,
}

impl Pool {
    /// Creates the pool (see the module doc). Panics, saying why, when
    /// zfs-fuse cannot be used or the pool cannot be created.
    pub fn new() -> Pool {
        require_zfs_fuse();
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().canonicalize().expect("canonical temp dir");
        let name = format!(
            "mrrtest{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let file = root.join("pool.img");
        let mount = root.join("mnt");
        run(
            "truncate",
            &["-s", POOL_FILE_SIZE, file.to_str().expect("UTF-8 path")],
        );
        run(
            "zpool",
            &[
                "create",
                "-m",
                mount.to_str().expect("UTF-8 path"),
                &name,
                file.to_str().expect("UTF-8 path"),
            ],
        );
        Pool { name, mount, dir }
    }

    /// Creates the dataset `<pool>/<rel>` and returns its name.
    pub fn dataset(&self, rel: &str) -> String {
        let name = format!("{}/{rel}", self.name);
        run("zfs", &["create", &name]);
        name
    }

    /// Where `<pool>/<rel>` is mounted.
    pub fn mountpoint(&self, rel: &str) -> PathBuf {
        self.mount.join(rel)
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Not `run`: a panic while unwinding would abort the test binary.
        // zfs-fuse answers "pool is busy" for a moment after the last use
        // of a pool's mounts; retried for up to 10 s.
        let mut last = String::new();
        for _ in 0..40 {
            match Command::new(program("zpool"))
                .args(["destroy", "-f", &self.name])
                .output()
            {
                Ok(out) if out.status.success() => return,
                Ok(out) => last = String::from_utf8_lossy(&out.stderr).into_owned(),
                Err(e) => last = e.to_string(),
            }
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
        eprintln!("zpool destroy -f {} failed: {last}", self.name);
    }
}

/// Takes `<dataset>@<name>` with the real zfs.
pub fn snapshot(dataset: &str, name: &str) {
    run("zfs", &["snapshot", &format!("{dataset}@{name}")]);
}

/// The snapshot names (after `@`) of exactly `dataset`, in the order
/// `zfs list -t snapshot -o name -H` prints them (creation order).
pub fn snapshots_of(dataset: &str) -> Vec<String> {
    let prefix = format!("{dataset}@");
    run("zfs", &["list", "-t", "snapshot", "-o", "name", "-H"])
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .map(str::to_owned)
        .collect()
}
