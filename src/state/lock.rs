//! The state lock: how it is asked for (`LockMode`, `LockRequest`), taken
//! (`StateDir::lock`), and the guard `StateLock` whose methods are the only
//! way this crate changes files under `state/` and `metadata/`
//! (docs/architecture.md, practice 11).

use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use super::acquire::acquire;
use super::files::{check_real_dir, create_dirs_below};
use super::{LOCK_REPORT_EVERY, StateDir, StateError, io_err, write_atomic};

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

impl StateDir {
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
        check_real_dir(self.path(), "the state directory")?;
        if !request.read_only {
            fs::create_dir_all(self.workdir())
                .map_err(io_err("create the workdir", self.workdir()))?;
            create_dirs_below(self.workdir(), self.path())?;
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
            lock.remove_stale_temp_files(self.path())?;
            for dir in [self.av_state_dir(), self.av_results_dir()] {
                create_dirs_below(self.path(), &dir)?;
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

    /// Installs the written temp file `tmp` (in `path`'s directory) as
    /// `path` atomically with `mode` (`state::atomic::install_atomic`);
    /// below the workdir no parent may be a symlink.
    ///
    /// # Errors
    /// As [`StateLock::write_file`].
    pub fn install_file(
        &self,
        tmp: tempfile::NamedTempFile,
        path: &Path,
        mode: u32,
    ) -> Result<(), StateError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            create_dirs_below(self.state.workdir(), parent)?;
        }
        super::atomic::install_atomic(tmp, path, mode)?;
        Ok(())
    }

    /// Appends `bytes` to `path` (created with mode 0644 if missing) and
    /// fsyncs it: constant-cost checkpoints instead of rewriting a whole
    /// list. A crash can leave a partial last line; readers should ignore a
    /// last line without its newline. For many appends to one file, see
    /// [`StateLock::appender`].
    ///
    /// # Errors
    /// [`StateError::Io`] naming the file; [`StateError::Refused`] if it is
    /// a symlink or not a regular file.
    pub fn append(&self, path: &Path, bytes: &[u8]) -> Result<(), StateError> {
        let mut file = self.appender(path)?;
        file.write(bytes)?;
        file.sync()
    }

    /// Opens `path` for appending (created with mode 0644 if missing), for
    /// a series of checkpoints to one file (`av-scan`'s journal): each
    /// [`Appender::write`] reaches the file at once, so a killed process
    /// loses nothing it wrote; [`Appender::sync`] (`fdatasync(2)`) makes
    /// what was written survive a power loss. The handle borrows the lock,
    /// so it cannot outlive it.
    ///
    /// # Errors
    /// [`StateError::Io`] naming the file; [`StateError::Refused`] if it is
    /// a symlink or not a regular file.
    pub fn appender<'a>(&'a self, path: &'a Path) -> Result<Appender<'a>, StateError> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = fs::OpenOptions::new()
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
        if !file.metadata().is_ok_and(|m| m.is_file()) {
            return Err(StateError::Refused {
                path: path.to_path_buf(),
                message: "it is not a regular file".to_owned(),
            });
        }
        Ok(Appender {
            file,
            path,
            _lock: self,
        })
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
    /// symlink ([`files::create_dirs_below`](super::files::create_dirs_below)).
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

/// A file opened for appending through the held lock ([`StateLock::appender`]).
#[derive(Debug)]
pub struct Appender<'a> {
    file: fs::File,
    path: &'a Path,
    _lock: &'a StateLock,
}

impl Appender<'_> {
    /// Appends `bytes` with one `write(2)` call where the kernel takes them
    /// whole (a regular file does), without syncing.
    ///
    /// # Errors
    /// [`StateError::Io`] naming the file.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), StateError> {
        self.file
            .write_all(bytes)
            .map_err(io_err("append to", self.path))
    }

    /// Makes what was written durable (`fdatasync(2)`).
    ///
    /// # Errors
    /// [`StateError::Io`] naming the file.
    pub fn sync(&mut self) -> Result<(), StateError> {
        self.file.sync_data().map_err(io_err("sync", self.path))
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

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
}
