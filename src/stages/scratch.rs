//! Scratch directories in TMPDIR (`mirrorer-publish-<pid>-<n>/`, the
//! symlink tree `publish-snapshot` builds), and the removal of those a
//! killed run left behind.
//!
//! A scratch directory is created new (mode 0755, never an existing one)
//! and held with an exclusive `flock(2)` on the directory for as long as it
//! is in use ([`create`]); the plan removes it when it ends. A run killed
//! with SIGKILL cannot remove it: the next `publish-snapshot` does
//! ([`remove_stale`]), taking only directories whose name carries a pid
//! that is not alive, that are owned by this user, are not symlinks, and
//! whose flock it can take (so a directory in use by a run in another pid
//! namespace sharing TMPDIR is left alone).

use std::fs;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The name prefix of scratch directories in TMPDIR.
pub const SCRATCH_PREFIX: &str = "mirrorer-publish-";

const TARGET: &str = "mirrorer::stages";

/// A new scratch directory path: `<TMPDIR>/mirrorer-publish-<pid>-<n>`
/// (`n`: the sub-second nanoseconds of the clock, so that two plans of one
/// process differ).
pub fn scratch_path() -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    std::env::temp_dir().join(format!("{SCRATCH_PREFIX}{}-{nanos}", std::process::id()))
}

/// A scratch directory in use: its flock is held until this is dropped.
#[derive(Debug)]
pub struct Held {
    /// The directory.
    pub path: PathBuf,
    _lock: fs::File,
}

fn open_dir(path: &Path) -> std::io::Result<fs::File> {
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(path)
}

/// Creates the new directory `path` (mode 0755; it must not exist) and
/// takes its flock.
///
/// # Errors
/// The I/O error of `mkdir`, `open` or `flock` (the directory is removed
/// again if it was created).
pub fn create(path: &Path) -> std::io::Result<Held> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new().mode(0o755).create(path)?;
    let held = open_dir(path).and_then(|f| f.try_lock().map_err(std::io::Error::from).map(|()| f));
    match held {
        Ok(f) => Ok(Held {
            path: path.to_path_buf(),
            _lock: f,
        }),
        Err(e) => {
            let _ = fs::remove_dir_all(path);
            Err(e)
        }
    }
}

fn pid_alive(pid: i32) -> bool {
    // SAFETY: kill(2) with signal 0 only checks that the process exists.
    pid > 0
        && (unsafe { libc::kill(pid, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM))
}

/// The pid in a scratch directory name, if it is one.
fn pid_of(name: &str) -> Option<i32> {
    let rest = name.strip_prefix(SCRATCH_PREFIX)?;
    let (pid, n) = rest.split_once('-')?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// Removes the scratch directories in `tmp` left by runs that are gone (see
/// the module docs); logs `stale_scratch_dir_removed path=...` for each, and
/// a warning for one that cannot be removed. Returns how many were removed.
/// Never fails: a leftover directory only costs space.
pub fn remove_stale(tmp: &Path) -> usize {
    let Ok(entries) = fs::read_dir(tmp) else {
        return 0;
    };
    // SAFETY: geteuid(2) cannot fail.
    let uid = unsafe { libc::geteuid() };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(pid_of) else {
            continue;
        };
        if pid == std::process::id() as i32 || pid_alive(pid) {
            continue;
        }
        let path = entry.path();
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if !meta.is_dir() || meta.uid() != uid {
            continue;
        }
        // In use by a process we cannot see (another pid namespace)?
        let Ok(dir) = open_dir(&path) else { continue };
        if dir.try_lock().is_err() {
            continue;
        }
        match fs::remove_dir_all(&path) {
            Ok(()) => {
                tracing::warn!(target: TARGET, path = %path.display(), pid, "stale_scratch_dir_removed");
                removed += 1;
            }
            Err(e) => {
                tracing::warn!(target: TARGET, path = %path.display(), error = %e, "stale_scratch_dir_not_removed");
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_scratch_directories() {
        assert_eq!(pid_of("mirrorer-publish-123-456"), Some(123));
        assert_eq!(pid_of("mirrorer-publish-123-"), None);
        assert_eq!(pid_of("mirrorer-publish-notes"), None);
        assert_eq!(pid_of("other-123-456"), None);
    }

    #[test]
    fn a_held_directory_is_not_removed_a_dead_ones_is() {
        let tmp = tempfile::tempdir().unwrap();
        // Above any pid_max: never alive.
        let dead = i32::MAX;
        let stale = tmp.path().join(format!("{SCRATCH_PREFIX}{dead}-1"));
        fs::create_dir_all(stale.join("snapshots/a")).unwrap();
        let ours = create(
            &tmp.path()
                .join(format!("{SCRATCH_PREFIX}{}-2", std::process::id())),
        )
        .unwrap();
        assert_eq!(remove_stale(tmp.path()), 1);
        assert!(!stale.exists());
        assert!(ours.path.is_dir());
    }
}
