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
//! second holder ([`acquire`]). Under `--dry-run` the lock file is opened
//! read-only and taken shared, nothing is created or written.

mod acquire;
pub mod files;

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use acquire::{acquire, describe_holder};
use files::{MAX_CURRENT_SNAPSHOT_BYTES, check_real_dir, create_dirs_below, read_regular};

/// A failed atomic write, naming the target file.
#[derive(Debug, thiserror::Error)]
#[error("could not write {}", path.display())]
pub struct WriteError {
    /// The file that was to be written.
    pub path: PathBuf,
    /// What went wrong.
    #[source]
    pub source: std::io::Error,
}

/// Replaces the content of `path` with `bytes` atomically, with permission
/// bits `mode` (e.g. `0o644`). The parent directory must exist.
///
/// # Errors
/// [`WriteError`] naming `path` if the temp file cannot be created, written,
/// synced or renamed; the previous content of `path` is then untouched and
/// the temp file is removed.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), WriteError> {
    let fail = |source| WriteError {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".to_owned());
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(fail)?;
    tmp.write_all(bytes).map_err(fail)?;
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(mode))
        .map_err(fail)?;
    tmp.as_file().sync_all().map_err(fail)?;
    // On error `persist` hands the temp file back; dropping it removes it.
    tmp.persist(path).map_err(|e| fail(e.error))?;
    if let Ok(d) = fs::File::open(dir) {
        // Makes the rename durable; a failure here cannot be undone, and the
        // new content is already in place, so it is not reported.
        let _ = d.sync_all();
    }
    Ok(())
}

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

/// How the state lock is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// Shared: several holders at once (the per-syncer `sync` jobs).
    Shared,
    /// Exclusive: the only holder (every other stage).
    Exclusive,
}

impl LockMode {
    /// `shared` or `exclusive`.
    pub fn name(self) -> &'static str {
        match self {
            LockMode::Shared => "shared",
            LockMode::Exclusive => "exclusive",
        }
    }
}

/// What to ask of [`StateDir::lock`].
#[derive(Debug, Clone)]
pub struct LockRequest {
    /// Shared or exclusive.
    pub mode: LockMode,
    /// The stage taking it (written into the lock file).
    pub stage: String,
    /// Give up after this long (`--lock-timeout`); `None` waits forever.
    pub timeout: Option<Duration>,
    /// `CI_JOB_URL`, written into the lock file when set.
    pub job_url: Option<String>,
    /// How often the waiter logs the holder ([`LOCK_REPORT_EVERY`]).
    pub report_every: Duration,
    /// `--dry-run`: open the lock file read-only and take it shared, write
    /// no holder line, create nothing (a missing state directory or lock
    /// file is [`StateError::Io`] with `NotFound`), remove no stale temp
    /// file.
    pub read_only: bool,
}

impl LockRequest {
    /// A request for `stage` in `mode`, waiting forever, with `CI_JOB_URL`
    /// from the environment.
    pub fn new(mode: LockMode, stage: impl Into<String>) -> LockRequest {
        LockRequest {
            mode,
            stage: stage.into(),
            timeout: None,
            job_url: std::env::var("CI_JOB_URL").ok().filter(|v| !v.is_empty()),
            report_every: LOCK_REPORT_EVERY,
            read_only: false,
        }
    }
}

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

/// `<workdir>/state`: paths and read-only queries. Changes go through the
/// [`StateLock`] returned by [`StateDir::lock`].
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
    /// changes the mirror ([`StateLock::mark_mirror_changed`]).
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
    /// [`files::MAX_CURRENT_SNAPSHOT_BYTES`].
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

    /// Creates the state directory if needed, opens `pipeline.lock` and
    /// takes it in `request.mode`, waiting as the request allows; then
    /// writes the holder line. An exclusive holder also removes stale
    /// `.*.tmp` files under the state directory, and makes sure
    /// `av_state/` and `av_results/` exist.
    ///
    /// # Errors
    /// [`StateError::LockTimeout`] (exit 4, names the holder),
    /// [`StateError::Interrupted`] on SIGINT/SIGTERM while waiting,
    /// [`StateError::Io`] if the directory or file cannot be created or
    /// locked; [`StateError::Refused`] if the state directory (or
    /// `av_state/`, `av_results/`) is a symlink or the lock file is not a
    /// regular file.
    pub fn lock(&self, request: &LockRequest) -> Result<StateLock, StateError> {
        check_real_dir(&self.root, "the state directory")?;
        if !request.read_only {
            fs::create_dir_all(self.workdir())
                .map_err(io_err("create the workdir", self.workdir()))?;
            create_dirs_below(self.workdir(), &self.root)?;
        }
        let path = self.lock_path();
        let file = acquire(&path, request)?;
        let lock = StateLock {
            state: self.clone(),
            file,
            mode: request.mode,
            read_only: request.read_only,
            stage: request.stage.clone(),
            syncer_locks: Vec::new(),
        };
        if request.read_only {
            return Ok(lock);
        }
        lock.write_holder(request)?;
        if request.mode == LockMode::Exclusive {
            lock.remove_stale_temp_files(&self.root)?;
            for dir in [self.av_state_dir(), self.av_results_dir()] {
                create_dirs_below(&self.root, &dir)?;
            }
        }
        Ok(lock)
    }
}

/// The held state lock: released when dropped. Every change to `state/`
/// (and to `metadata/`) goes through its methods.
#[derive(Debug)]
pub struct StateLock {
    state: StateDir,
    file: fs::File,
    mode: LockMode,
    /// Taken by a dry run: read-only and shared, nothing to clear on drop.
    read_only: bool,
    stage: String,
    syncer_locks: Vec<(String, fs::File)>,
}

impl StateLock {
    /// The state directory.
    pub fn state(&self) -> &StateDir {
        &self.state
    }

    /// The mode it is held in.
    pub fn mode(&self) -> LockMode {
        self.mode
    }

    /// The stage holding it.
    pub fn stage(&self) -> &str {
        &self.stage
    }

    fn write_holder(&self, request: &LockRequest) -> Result<(), StateError> {
        use std::io::{Seek, SeekFrom};
        let mut line = format!(
            "pid={} stage={} mode={} since={}",
            std::process::id(),
            request.stage,
            request.mode.name(),
            chrono::Local::now().format("%Y-%m-%dT%H:%M:%S%:z")
        );
        if let Some(url) = &request.job_url {
            line.push_str(&format!(" job_url={url}"));
        }
        line.push('\n');
        let path = self.state.lock_path();
        let mut f = &self.file;
        let result = match self.mode {
            LockMode::Exclusive => f
                .set_len(0)
                .and_then(|()| f.seek(SeekFrom::Start(0)).map(|_| ()))
                .and_then(|()| f.write_all(line.as_bytes())),
            LockMode::Shared => f
                .seek(SeekFrom::End(0))
                .and_then(|_| f.write_all(line.as_bytes())),
        };
        result.map_err(io_err("write the holder into", &path))
    }

    /// Takes the exclusive per-syncer lock `state/sync-<name>.lock` (held
    /// with this guard, released with it), waiting up to `timeout`; writes
    /// the holder line into it.
    ///
    /// # Errors
    /// As [`StateDir::lock`].
    pub fn lock_syncer(
        &mut self,
        syncer: &str,
        timeout: Option<Duration>,
    ) -> Result<(), StateError> {
        let path = self.state.syncer_lock_path(syncer);
        let mut request = LockRequest::new(LockMode::Exclusive, format!("{}:{syncer}", self.stage));
        request.timeout = timeout;
        let file = acquire(&path, &request)?;
        let line = format!(
            "pid={} stage={} mode=exclusive\n",
            std::process::id(),
            request.stage
        );
        file.set_len(0)
            .and_then(|()| (&file).write_all(line.as_bytes()))
            .map_err(io_err("write the holder into", &path))?;
        self.syncer_locks.push((syncer.to_owned(), file));
        Ok(())
    }

    /// Writes `bytes` to `path` atomically with `mode` ([`write_atomic`]),
    /// creating missing parent directories; below the workdir none of them
    /// may be a symlink (a symlink at `path` itself is replaced, not
    /// followed).
    ///
    /// # Errors
    /// [`StateError::Io`] for a parent that cannot be created,
    /// [`StateError::Refused`] for a symlink on the way,
    /// [`StateError::Write`] otherwise.
    pub fn write_file(&self, path: &Path, bytes: &[u8], mode: u32) -> Result<(), StateError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            create_dirs_below(self.state.workdir(), parent)?;
        }
        write_atomic(path, bytes, mode)?;
        Ok(())
    }

    /// Appends `bytes` to `path` (created with mode 0644 if missing) and
    /// fsyncs it: constant-cost checkpoints (e.g. the files of a finished
    /// antivirus batch) instead of rewriting a whole list. A crash can leave
    /// a partial last line; readers should ignore a last line without its
    /// newline.
    ///
    /// # Errors
    /// [`StateError::Io`] naming the file; [`StateError::Refused`] if it is
    /// a symlink or not a regular file.
    pub fn append(&self, path: &Path, bytes: &[u8]) -> Result<(), StateError> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(path)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ELOOP) => StateError::Refused {
                    path: path.to_path_buf(),
                    message:
                        "it is a symlink; files under the workdir are never followed out of it"
                            .to_owned(),
                },
                _ => io_err("open for appending", path)(e),
            })?;
        if !f.metadata().is_ok_and(|m| m.is_file()) {
            return Err(StateError::Refused {
                path: path.to_path_buf(),
                message: "it is not a regular file".to_owned(),
            });
        }
        f.write_all(bytes)
            .and_then(|()| f.sync_data())
            .map_err(io_err("append to", path))
    }

    /// Records that the mirror is about to change (called by `sync` before
    /// any container runs): writes [`StateDir::mirror_changed_path`] as
    /// `syncers=<syncers> at=<local time %Y-%m-%d %H:%M:%S>` and a newline,
    /// which makes the next `av-scan` start a new list
    /// ([`crate::stages::av_scan`]).
    ///
    /// # Errors
    /// As [`StateLock::write_file`].
    pub fn mark_mirror_changed(&self, syncers: &str) -> Result<(), StateError> {
        let at = chrono::Local::now().format("%Y-%m-%d %H:%M:%S");
        let text = format!("syncers={syncers} at={at}\n");
        self.write_file(&self.state.mirror_changed_path(), text.as_bytes(), 0o644)
    }

    /// Writes `state/current_snapshot.txt`: `name` and a newline.
    ///
    /// # Errors
    /// As [`StateLock::write_file`].
    pub fn set_current_snapshot(&self, name: &str) -> Result<(), StateError> {
        self.write_file(
            &self.state.current_snapshot_path(),
            format!("{name}\n").as_bytes(),
            0o644,
        )
    }

    /// Removes a file if it exists; returns whether it existed.
    ///
    /// # Errors
    /// [`StateError::Io`] if it exists and cannot be removed.
    pub fn remove_file(&self, path: &Path) -> Result<bool, StateError> {
        match fs::remove_file(path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err("remove", path)(e)),
        }
    }

    /// Removes a directory with its content if it exists.
    ///
    /// # Errors
    /// [`StateError::Io`] naming the directory.
    pub fn remove_dir_all(&self, dir: &Path) -> Result<(), StateError> {
        match fs::remove_dir_all(dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove", dir)(e)),
        }
    }

    /// Removes `state/av_state/` with its content and creates it empty.
    ///
    /// # Errors
    /// [`StateError::Io`] naming the directory.
    pub fn reset_av_state(&self) -> Result<(), StateError> {
        let dir = self.state.av_state_dir();
        match fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("remove", &dir)(e)),
        }
        create_dirs_below(self.state.workdir(), &dir)
    }

    /// Creates `dir` and its parents; below the workdir none may be a
    /// symlink ([`files::create_dirs_below`]).
    ///
    /// # Errors
    /// [`StateError::Io`] naming the directory; [`StateError::Refused`] for
    /// a symlink on the way.
    pub fn create_dir_all(&self, dir: &Path) -> Result<(), StateError> {
        create_dirs_below(self.state.workdir(), dir)
    }

    /// Removes, recursively under `dir` (not following symlinks), every file
    /// named `.<something>.tmp`: temp files of [`write_atomic`] left by a
    /// killed run. Returns how many were removed. Only called under the
    /// exclusive lock, so no writer can be using them.
    ///
    /// # Errors
    /// [`StateError::Io`] if a directory cannot be listed or a file removed.
    pub fn remove_stale_temp_files(&self, dir: &Path) -> Result<usize, StateError> {
        let mut removed = 0;
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(io_err("list", dir)(e)),
        };
        for entry in entries {
            let entry = entry.map_err(io_err("list", dir))?;
            let path = entry.path();
            let kind = entry.file_type().map_err(io_err("inspect", &path))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if kind.is_dir() {
                removed += self.remove_stale_temp_files(&path)?;
            } else if kind.is_file()
                && name.starts_with('.')
                && name.ends_with(".tmp")
                && name.len() > 5
            {
                fs::remove_file(&path).map_err(io_err("remove the stale temp file", &path))?;
                tracing::warn!(target: "mirrorer::state", path = %path.display(), "stale_temp_file_removed");
                removed += 1;
            }
        }
        Ok(removed)
    }
}

impl Drop for StateLock {
    fn drop(&mut self) {
        if self.mode == LockMode::Exclusive && !self.read_only {
            // Nobody holds it after us: clear the holder line. Failure only
            // leaves a stale line, which waiters filter by pid.
            let _ = self.file.set_len(0);
        }
        // Unlock explicitly (closing the file would too).
        let _ = self.file.unlock();
        for (_, f) in &self.syncer_locks {
            let _ = f.set_len(0);
            let _ = f.unlock();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_content_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.json");
        fs::write(&target, "old").unwrap();
        write_atomic(&target, b"new\n", 0o644).unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "new\n");
        let mode = fs::metadata(&target).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("out.json")]);
    }

    fn request(mode: LockMode, stage: &str, timeout_ms: u64) -> LockRequest {
        let mut r = LockRequest::new(mode, stage);
        r.timeout = Some(std::time::Duration::from_millis(timeout_ms));
        r.job_url = Some("https://gitlab.example/job/7".to_owned());
        r
    }

    #[test]
    fn shared_holders_coexist_and_exclude_an_exclusive_one() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path().join("state"));
        let a = state.lock(&request(LockMode::Shared, "sync", 0)).unwrap();
        let b = state.lock(&request(LockMode::Shared, "sync", 0)).unwrap();
        let err = state
            .lock(&request(LockMode::Exclusive, "snapshot", 300))
            .unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, StateError::LockTimeout { .. }), "{text}");
        assert!(text.contains("stage=sync mode=shared"), "{text}");
        assert!(
            text.contains("job_url=https://gitlab.example/job/7"),
            "{text}"
        );
        drop(a);
        drop(b);
        let ex = state
            .lock(&request(LockMode::Exclusive, "snapshot", 0))
            .unwrap();
        assert!(state.lock(&request(LockMode::Shared, "sync", 200)).is_err());
        drop(ex);
        assert_eq!(fs::read_to_string(state.lock_path()).unwrap(), "");
    }

    #[test]
    fn syncer_locks_are_exclusive_per_syncer() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path().join("state"));
        let mut a = state.lock(&request(LockMode::Shared, "sync", 0)).unwrap();
        let mut b = state.lock(&request(LockMode::Shared, "sync", 0)).unwrap();
        a.lock_syncer("debian", Some(std::time::Duration::ZERO))
            .unwrap();
        b.lock_syncer("epel", Some(std::time::Duration::ZERO))
            .unwrap();
        let err = b
            .lock_syncer("debian", Some(std::time::Duration::from_millis(200)))
            .unwrap_err();
        assert!(err.to_string().contains("sync-debian.lock"), "{err}");
        drop(a);
        b.lock_syncer("debian", Some(std::time::Duration::ZERO))
            .unwrap();
    }

    #[test]
    fn writes_through_the_guard_and_stale_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path().join("state"));
        fs::create_dir_all(state.av_state_dir()).unwrap();
        fs::write(state.av_state_dir().join(".done.txt.abc.tmp"), "x").unwrap();
        fs::write(state.path().join(".hidden"), "kept").unwrap();
        let lock = state.lock(&request(LockMode::Exclusive, "t", 0)).unwrap();
        assert!(!state.av_state_dir().join(".done.txt.abc.tmp").exists());
        assert!(state.path().join(".hidden").exists());
        assert!(state.av_results_dir().is_dir());
        assert_eq!(state.current_snapshot().unwrap(), None);
        lock.set_current_snapshot("20260101-000000").unwrap();
        assert_eq!(
            fs::read_to_string(state.current_snapshot_path()).unwrap(),
            "20260101-000000\n"
        );
        assert_eq!(
            state.current_snapshot().unwrap().as_deref(),
            Some("20260101-000000")
        );
        let done = state.av_state_dir().join("done.txt");
        lock.append(&done, b"/a\n").unwrap();
        lock.append(&done, b"/b\n").unwrap();
        assert_eq!(fs::read_to_string(&done).unwrap(), "/a\n/b\n");
        lock.reset_av_state().unwrap();
        assert_eq!(fs::read_dir(state.av_state_dir()).unwrap().count(), 0);
        assert!(lock.remove_file(&state.current_snapshot_path()).unwrap());
        assert!(!lock.remove_file(&state.current_snapshot_path()).unwrap());
    }

    #[test]
    fn missing_directory_is_an_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("nope").join("out.json");
        let err = write_atomic(&target, b"x", 0o644).unwrap_err();
        assert!(err.to_string().contains("nope/out.json"), "{err}");
    }
}
