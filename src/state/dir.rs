//! `StateDir`: the paths of the state directory and its read-only queries
//! (the current snapshot, the lock holder). Taking the lock is in
//! `lock.rs`.

use std::path::{Path, PathBuf};

use super::acquire::describe_holder;
use super::files::{MAX_CURRENT_SNAPSHOT_BYTES, read_regular};
use super::{
    AV_RESULTS_DIR, AV_STATE_DIR, CURRENT_SNAPSHOT_FILE, LOCK_FILE, MIRROR_CHANGED_FILE, StateError,
};

/// `<workdir>/state`: paths and read-only queries. Changes go through the
/// [`StateLock`](super::StateLock) returned by [`StateDir::lock`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    /// The state directory at `root` (usually `config.mirror.state_dir()`).
    pub fn new(root: impl Into<PathBuf>) -> StateDir {
        StateDir { root: root.into() }
    }

    /// The directory itself.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// `state/pipeline.lock`.
    pub fn lock_path(&self) -> PathBuf {
        self.root.join(LOCK_FILE)
    }

    /// `state/current_snapshot.txt`.
    pub fn current_snapshot_path(&self) -> PathBuf {
        self.root.join(CURRENT_SNAPSHOT_FILE)
    }

    /// `state/av_state/`.
    pub fn av_state_dir(&self) -> PathBuf {
        self.root.join(AV_STATE_DIR)
    }

    /// `state/av_state/mirror_changed`: the marker `sync` leaves before it
    /// changes the mirror ([`StateLock::mark_mirror_changed`](super::StateLock::mark_mirror_changed)).
    pub fn mirror_changed_path(&self) -> PathBuf {
        self.av_state_dir().join(MIRROR_CHANGED_FILE)
    }

    /// `state/av_results/`.
    pub fn av_results_dir(&self) -> PathBuf {
        self.root.join(AV_RESULTS_DIR)
    }

    /// `state/sync-<name>.lock`.
    pub fn syncer_lock_path(&self, syncer: &str) -> PathBuf {
        self.root
            .join(format!("sync-{}.lock", crate::config::safe_name(syncer)))
    }

    /// The current snapshot name: the first line of `current_snapshot.txt`,
    /// trimmed; `None` if the file does not exist or is blank.
    ///
    /// # Errors
    /// [`StateError::Io`] if the file exists but cannot be read;
    /// [`StateError::Refused`] if it is a symlink, not a regular file (a
    /// FIFO fails at once, it is never waited on), or over
    /// [`files::MAX_CURRENT_SNAPSHOT_BYTES`](super::files::MAX_CURRENT_SNAPSHOT_BYTES).
    pub fn current_snapshot(&self) -> Result<Option<String>, StateError> {
        let path = self.current_snapshot_path();
        Ok(
            read_regular(&path, MAX_CURRENT_SNAPSHOT_BYTES)?.and_then(|bytes| {
                String::from_utf8_lossy(&bytes)
                    .lines()
                    .next()
                    .map(|l| l.trim().to_owned())
                    .filter(|l| !l.is_empty())
            }),
        )
    }

    /// The workdir: the parent of the state directory (below which the
    /// guard never follows a symlink).
    pub fn workdir(&self) -> &Path {
        self.root.parent().unwrap_or(&self.root)
    }

    /// Who holds `pipeline.lock`, as written in it: the lines of live pids
    /// joined with `; ` (`unknown` if none is readable).
    pub fn lock_holder(&self) -> String {
        describe_holder(&self.lock_path())
    }
}
