//! Taking a lock file (`pipeline.lock`, `sync-<name>.lock`) with `flock(2)`
//! and naming its holders.
//!
//! The file is opened without following a symlink and must be a regular
//! file ([`super::files::open_regular`]): a planted symlink is refused, its
//! target never truncated. After the flock is taken, the path must still
//! name the locked inode ([`super::files::same_inode`]): a lock file that
//! was unlinked (or replaced) while we waited is not the lock any more, so
//! the file is opened again and the wait goes on (event
//! `state_lock_file_replaced`); otherwise a waiter on the old inode and the
//! holder of the new file would both run.
//!
//! A read-only request (`--dry-run`) opens the file read-only, never creates
//! it, and takes the flock shared whatever the stage's mode: a dry run
//! changes nothing, so it only has to wait for an exclusive holder to
//! finish its changes; it writes no holder line.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use super::files::{Access, MAX_LOCK_FILE_BYTES, open_regular, read_regular, same_inode};
use super::{LockMode, LockRequest, StateError};

pub(super) fn pid_alive(pid: i32) -> bool {
    // SAFETY: kill(2) with signal 0 only checks that the process exists.
    pid > 0
        && (unsafe { libc::kill(pid, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM))
}

/// The holder lines of the lock file `path` whose pid is alive, joined with
/// `; `; `unknown` if none (or the file is unreadable, not regular, or
/// larger than [`MAX_LOCK_FILE_BYTES`]).
pub(super) fn describe_holder(path: &Path) -> String {
    let bytes = read_regular(path, MAX_LOCK_FILE_BYTES)
        .ok()
        .flatten()
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    let live: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .filter(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("pid="))
                .and_then(|p| p.parse::<i32>().ok())
                .is_none_or(pid_alive)
        })
        .collect();
    if live.is_empty() {
        "unknown".to_owned()
    } else {
        live.join("; ")
    }
}

/// The mode the flock is actually taken in: shared for a read-only request.
pub(super) fn effective_mode(request: &LockRequest) -> LockMode {
    if request.read_only {
        LockMode::Shared
    } else {
        request.mode
    }
}

fn open(path: &Path, request: &LockRequest) -> Result<fs::File, StateError> {
    let access = if request.read_only {
        Access::Read
    } else {
        Access::ReadWriteCreate
    };
    open_regular(path, access, "open the lock file")
}

/// Opens `path` and takes the flock in the request's mode, polling so that
/// the timeout, the 30 s reports and signals are honoured.
pub(super) fn acquire(path: &Path, request: &LockRequest) -> Result<fs::File, StateError> {
    let mode = effective_mode(request);
    let mut file = open(path, request)?;
    let started = Instant::now();
    let mut next_report = Duration::ZERO;
    loop {
        let attempt = match mode {
            LockMode::Shared => file.try_lock_shared(),
            LockMode::Exclusive => file.try_lock(),
        };
        match attempt {
            Ok(()) if same_inode(&file, path) => {
                let waited = started.elapsed();
                tracing::info!(
                    target: "mirrorer::state",
                    path = %path.display(),
                    mode = mode.name(),
                    waited_s = (waited.as_secs_f64() * 1000.0).round() / 1000.0,
                    "state_lock_acquired"
                );
                return Ok(file);
            }
            Ok(()) => {
                // We hold the lock of an inode that is no longer the lock
                // file: let it go and take the file the path names now.
                tracing::warn!(target: "mirrorer::state", path = %path.display(), "state_lock_file_replaced");
                let _ = file.unlock();
                file = open(path, request)?;
                continue;
            }
            Err(fs::TryLockError::WouldBlock) => {}
            Err(fs::TryLockError::Error(e)) => {
                return Err(StateError::Io {
                    action: "lock",
                    path: path.to_path_buf(),
                    source: e,
                });
            }
        }
        let waited = started.elapsed();
        if let Some(signal) = crate::signals::received() {
            return Err(StateError::Interrupted {
                path: path.to_path_buf(),
                signal,
            });
        }
        if let Some(timeout) = request.timeout
            && waited >= timeout
        {
            return Err(StateError::LockTimeout {
                path: path.to_path_buf(),
                holder: describe_holder(path),
                waited_s: waited.as_secs_f64(),
            });
        }
        if waited >= next_report {
            tracing::warn!(
                target: "mirrorer::state",
                path = %path.display(),
                mode = mode.name(),
                holder = %describe_holder(path),
                waited_s = waited.as_secs_f64().round(),
                "state_lock_waiting"
            );
            next_report = waited + request.report_every.max(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
