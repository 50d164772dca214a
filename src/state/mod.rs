//! The state directory, its lock, and the files this tool writes.
//!
//! # Atomic writes
//!
//! Every state, metadata and output file is written the same way
//! (docs/metadata.md, "JSON rendering"): a temp file in the target's own
//! directory named `.<name>.<random>.tmp`, written, fsynced, given its final
//! mode, then renamed over the target, and the directory fsynced. A failed
//! write leaves the previous file intact and no temp file behind
//! ([`write_atomic`]). A process killed between create and rename leaves its
//! temp file; the next exclusive [`StateDir::lock`] removes such stale
//! `.*.tmp` files under the state directory ([`StateLock::remove_stale_temp_files`]
//! does the same for other directories, e.g. `metadata/`).
//!
//! # The state directory and its lock
//!
//! `<workdir>/state/` (docs/stages.md, "The state directory") holds:
//!
//! | path | what |
//! |---|---|
//! | `pipeline.lock` | the flock; its content names the holder(s) |
//! | `sync-<name>.lock` | per-syncer exclusive lock taken by `sync` |
//! | `current_snapshot.txt` | the snapshot name and a newline |
//! | `av_state/` | the resumable antivirus scan |
//! | `av_results/` | `av_report_<YYYYmmdd-HHMMSS>.txt` threat reports |
//!
//! [`StateDir::lock`] takes `pipeline.lock` shared (only `sync`) or
//! exclusive (every other stage) with `flock(2)` (std `File::lock`), waiting
//! as long as [`LockRequest::timeout`] allows and logging
//! `state_lock_waiting holder=...` at once and every 30 s. The holder writes
//! one line `pid=<pid> stage=<stage> mode=<shared|exclusive> since=<time>
//! [job_url=<CI_JOB_URL>]` into the file (an exclusive holder replaces the
//! content, a shared one appends; lines of dead pids are ignored when the
//! holder is reported). The lock is released when the [`StateLock`] is
//! dropped or the process dies (flock), so a killed run never leaves a stale
//! lock.
//!
//! Writes to state go through the guard (docs/architecture.md, practice 11): the methods of
//! [`StateLock`] are the only way this crate changes files under `state/`
//! and `metadata/`; their existence proves the lock is held.
//!
//! # Nothing is followed out of the workdir
//!
//! Lock and state files are opened without following symlinks and must be
//! regular files of bounded size ([`files`]); `state/` and its `av_state/`,
//! `av_results/` must be real directories, and the guard creates
//! directories below the workdir one level at a time, refusing symlinks
//! ([`files::create_dirs_below`]). A lock file unlinked while held admits no
//! second holder (`acquire.rs`). Under `--dry-run` the lock file is opened
//! read-only and taken shared, nothing is created or written.
//!
//! # Layout
//!
//! | file | what |
//! |---|---|
//! | `dir.rs` | [`StateDir`]: the paths and read-only queries |
//! | `lock.rs` | [`LockMode`], [`LockRequest`], [`StateDir::lock`] and the guard [`StateLock`] |
//! | `acquire.rs` | taking a lock file with `flock(2)`, naming its holders |
//! | `atomic.rs` | [`write_atomic`] |
//! | `files.rs` | opening and reading workdir files without following links |

mod acquire;
mod atomic;
mod dir;
pub mod files;
mod lock;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use atomic::{WriteError, write_atomic};
pub use dir::StateDir;
pub use lock::{Appender, LockMode, LockRequest, StateLock};

/// Name of the lock file in the state directory.
pub const LOCK_FILE: &str = "pipeline.lock";
/// Name of the current-snapshot file in the state directory.
pub const CURRENT_SNAPSHOT_FILE: &str = "current_snapshot.txt";
/// Name of the antivirus scan state directory.
pub const AV_STATE_DIR: &str = "av_state";
/// Name of the antivirus reports directory.
pub const AV_RESULTS_DIR: &str = "av_results";
/// The marker `sync` leaves in `av_state/` when it changes the mirror.
pub const MIRROR_CHANGED_FILE: &str = "mirror_changed";
/// The legacy state file of older versions, removed by `cleanup-state`.
pub const LEGACY_RUN_STATE_FILE: &str = "run_state.json";
/// How often a waiter logs who holds the lock.
pub const LOCK_REPORT_EVERY: Duration = Duration::from_secs(30);

/// Why the state lock (or a state file) could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// A file or directory of the state could not be created, opened, read
    /// or removed.
    #[error("could not {action} {}", path.display())]
    Io {
        /// What was being done ("open the lock file").
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The lock was still held after the timeout (exit 4).
    #[error("state lock {} is held by {holder}; gave up after {waited_s:.1}s (--lock-timeout)", path.display())]
    LockTimeout {
        /// The lock file.
        path: PathBuf,
        /// Who holds it, as written in the lock file.
        holder: String,
        /// Seconds waited.
        waited_s: f64,
    },
    /// SIGINT/SIGTERM arrived while waiting for the lock.
    #[error("stopped by {} while waiting for the state lock {}", crate::signals::name(*signal), path.display())]
    Interrupted {
        /// The lock file.
        path: PathBuf,
        /// The signal number.
        signal: i32,
    },
    /// A state file holds something unusable.
    #[error("{} is invalid: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// An atomic write failed.
    #[error(transparent)]
    Write(#[from] WriteError),
    /// A path of the workdir is not what it must be: a lock or state file
    /// that is a symlink or not a regular file (FIFO, device), too large, or
    /// a root directory that is a symlink. Nothing was done through it.
    #[error("refusing to use {}: {message}", path.display())]
    Refused {
        /// The path.
        path: PathBuf,
        /// What it is and why that is refused.
        message: String,
    },
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StateError + use<> {
    let path = path.to_path_buf();
    move |source| StateError::Io {
        action,
        path,
        source,
    }
}
