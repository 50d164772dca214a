//! The one executor of every stage: it owns the state lock and makes the
//! changes a stage planned (docs/architecture.md, practices 10 and 11).
//!
//! The runner ([`super::run_stage`]) takes the lock and hands the body an
//! [`Executor`]. Under `--dry-run` the executor holds the lock read-only (or
//! none when the lock file does not exist) and only logs: each step of a
//! [`Plan`] as a `dry_run_*` event (`dry_run_command`, `dry_run_write`,
//! `dry_run_mkdir`, `dry_run_remove`, `dry_run_scratch_dir`,
//! `dry_run_symlink`), then `dry_run_plan stage= steps=`. Otherwise it
//! performs the steps in order through the [`StateLock`] guard: commands
//! through [`crate::process`], atomic writes, appends (the checkpoints of
//! `av-scan`), directories, symlinks; the first failure stops the plan, and
//! scratch directories ([`Step::ScratchDir`]) are removed when the plan
//! ends, also on failure. This is the one place `--dry-run` is honoured for
//! changes.
//!
//! Work a plan cannot describe runs beside it: `sync`'s containers run
//! concurrently with retries that depend on exit codes, and `av-scan`'s
//! scanners run in parallel batches; both are spawned through
//! [`crate::process`], and their state changes (per-syncer locks, the
//! `mirror_changed` marker, journal checkpoints, reports) still go through
//! the executor.

use std::path::{Component, Path};
use std::time::Duration;

use super::failed;
use super::plan::{Plan, PlanError, Step};
use crate::error::{Error, Result};
use crate::state::files::check_real_dir;
use crate::state::{LockMode, LockRequest, StateDir, StateError, StateLock};

const TARGET: &str = "mirrorer::stages";

/// How the executor may change things.
#[derive(Debug)]
enum Access {
    /// `--dry-run`: nothing is changed; the lock is held read-only when its
    /// file existed, so a dry run still waits for a running stage.
    DryRun {
        /// Held only to wait for and block writers; never written through.
        _guard: Option<StateLock>,
    },
    /// The held lock every change goes through.
    Locked(StateLock),
}

/// Runs a stage's plans and state changes through the state lock it holds
/// (released when dropped).
#[derive(Debug)]
pub struct Executor {
    stage: &'static str,
    state: StateDir,
    lock_timeout: Option<Duration>,
    access: Access,
    /// What the stage noted for its part of `status.json` ([`crate::status`]).
    notes: std::sync::Mutex<Vec<crate::status::Note>>,
}

pub(super) fn state_error(e: StateError) -> Error {
    Error::from(e)
}

impl Executor {
    /// Takes `state/pipeline.lock` for `stage` in `mode`, waiting up to
    /// `lock_timeout`. An exclusive holder then removes stale `.*.tmp` files
    /// under `state/` and `metadata_dir`. Under `dry_run` the lock is taken
    /// read-only, only if the lock file exists, and nothing is created or
    /// cleaned (`state_lock_skipped_dry_run` when there is no lock file).
    ///
    /// # Errors
    /// [`Error::LockTimeout`] (exit 4) and the other lock errors of
    /// [`StateDir::lock`]; a failed clean-up (exit 1).
    pub fn take(
        state: &StateDir,
        stage: &'static str,
        mode: LockMode,
        lock_timeout: Option<Duration>,
        dry_run: bool,
        metadata_dir: &Path,
    ) -> Result<Executor> {
        let mut request = LockRequest::new(mode, stage);
        request.timeout = lock_timeout;
        request.read_only = dry_run;
        // symlink_metadata: a planted symlink is not "missing", it is refused.
        let access = if dry_run && std::fs::symlink_metadata(state.lock_path()).is_err() {
            tracing::info!(target: TARGET, path = %state.lock_path().display(), "state_lock_skipped_dry_run");
            Access::DryRun { _guard: None }
        } else {
            let lock = state.lock(&request).map_err(state_error)?;
            if dry_run {
                Access::DryRun { _guard: Some(lock) }
            } else {
                if mode == LockMode::Exclusive {
                    // Never clean through a symlinked metadata root; the
                    // stages that write there refuse it (require_real_dir).
                    match check_real_dir(metadata_dir, "the metadata root") {
                        Ok(()) => {
                            lock.remove_stale_temp_files(metadata_dir)
                                .map_err(state_error)?;
                        }
                        Err(e) => {
                            tracing::warn!(target: TARGET, path = %metadata_dir.display(), error = %e, "stale_temp_files_not_cleaned");
                        }
                    }
                }
                Access::Locked(lock)
            }
        };
        Ok(Executor {
            stage,
            state: state.clone(),
            lock_timeout,
            access,
            notes: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// Whether this is a dry run (changes are only logged).
    pub fn dry_run(&self) -> bool {
        matches!(self.access, Access::DryRun { .. })
    }

    /// Performs `plan`, or under `--dry-run` logs it.
    ///
    /// # Errors
    /// [`Error::Failed`] with the failing step's [`PlanError`].
    pub fn execute(&self, plan: &Plan) -> Result<()> {
        match &self.access {
            Access::DryRun { .. } => {
                plan.log_dry_run(self.stage);
                Ok(())
            }
            Access::Locked(lock) => plan
                .execute(lock)
                .map_err(|e| Error::Failed(anyhow::Error::new(e))),
        }
    }

    /// Writes `contents` to `path` atomically with permission bits `mode`
    /// (parents created); under `--dry-run` logs `dry_run_write`.
    ///
    /// # Errors
    /// [`Error::Failed`] with the [`StateError`].
    pub fn write(&self, path: &Path, contents: &[u8], mode: u32) -> Result<()> {
        match &self.access {
            Access::DryRun { .. } => {
                tracing::info!(target: TARGET, path = %path.display(), bytes = contents.len(), mode = %format!("{mode:o}"), "dry_run_write");
                Ok(())
            }
            Access::Locked(lock) => lock.write_file(path, contents, mode).map_err(failed),
        }
    }

    /// Installs the written temp file `tmp` as `path` atomically with
    /// permission bits `mode` ([`StateLock::install_file`]; content too
    /// large to hold in memory); under `--dry-run` logs `dry_run_write`
    /// with its size and drops it (removing it).
    ///
    /// # Errors
    /// [`Error::Failed`] with the [`StateError`].
    pub fn install(&self, tmp: tempfile::NamedTempFile, path: &Path, mode: u32) -> Result<()> {
        match &self.access {
            Access::DryRun { .. } => {
                let bytes = tmp.as_file().metadata().map(|m| m.len()).unwrap_or(0);
                tracing::info!(target: TARGET, path = %path.display(), bytes = bytes, mode = %format!("{mode:o}"), "dry_run_write");
                Ok(())
            }
            Access::Locked(lock) => lock.install_file(tmp, path, mode).map_err(failed),
        }
    }

    /// Appends `bytes` to `path` and fsyncs it (a checkpoint,
    /// [`StateLock::append`]); under `--dry-run` logs `dry_run_append`.
    ///
    /// # Errors
    /// [`Error::Failed`] with the [`StateError`].
    pub fn append(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        let mut file = self.appender(path)?;
        file.write(bytes)?;
        file.sync()
    }

    /// Opens `path` for a series of appends ([`StateLock::appender`]);
    /// under `--dry-run` nothing is opened and each write logs
    /// `dry_run_append`.
    ///
    /// # Errors
    /// [`Error::Failed`] with the [`StateError`].
    pub fn appender<'a>(&'a self, path: &'a Path) -> Result<AppendFile<'a>> {
        let file = match &self.access {
            Access::DryRun { .. } => None,
            Access::Locked(lock) => Some(lock.appender(path).map_err(failed)?),
        };
        Ok(AppendFile { path, file })
    }

    /// Notes `note` for the stage's part of `status.json`, recorded when the
    /// stage ends ([`Executor::record_status`]).
    pub fn note_status(&self, note: crate::status::Note) {
        if let Ok(mut notes) = self.notes.lock() {
            notes.push(note);
        }
    }

    /// Records the stage's end in `status.json` (and the Prometheus
    /// textfile) through the held lock ([`crate::status::record`]); under
    /// `--dry-run` nothing. Never fails: problems are warnings.
    pub fn record_status(
        &self,
        config: &crate::config::Config,
        started_at: chrono::DateTime<chrono::Utc>,
        duration: Duration,
        outcome: crate::status::Outcome,
    ) {
        if let Access::Locked(lock) = &self.access {
            let notes = self
                .notes
                .lock()
                .map(|mut n| std::mem::take(&mut *n))
                .unwrap_or_default();
            let end = crate::status::StageEnd {
                stage: self.stage,
                started_at,
                duration,
                outcome,
                notes,
            };
            crate::status::record(lock, config, &end);
        }
    }

    /// Takes the exclusive per-syncer lock `state/sync-<name>.lock` of each
    /// of `syncers`, in the order given, with the stage's lock timeout
    /// ([`StateLock::lock_syncer`]); held until the executor is dropped.
    /// Under `--dry-run` none is taken.
    ///
    /// # Errors
    /// As [`StateLock::lock_syncer`] (exit 4 on timeout).
    pub fn lock_syncers<'a>(&mut self, syncers: impl IntoIterator<Item = &'a str>) -> Result<()> {
        if let Access::Locked(lock) = &mut self.access {
            for name in syncers {
                lock.lock_syncer(name, self.lock_timeout)?;
            }
        }
        Ok(())
    }

    /// Records that the mirror is about to change
    /// ([`StateLock::mark_mirror_changed`]); under `--dry-run` logs
    /// `dry_run_write` for the marker.
    ///
    /// # Errors
    /// [`Error::Failed`] with the [`StateError`].
    pub fn mark_mirror_changed(&self, syncers: &str) -> Result<()> {
        match &self.access {
            Access::DryRun { .. } => {
                let path = self.state.mirror_changed_path();
                tracing::info!(target: TARGET, path = %path.display(), syncers = syncers, "dry_run_write");
                Ok(())
            }
            Access::Locked(lock) => lock.mark_mirror_changed(syncers).map_err(Error::from),
        }
    }
}

fn fs_err(action: impl Into<String>, path: &Path) -> impl FnOnce(std::io::Error) -> PlanError {
    let action = action.into();
    let path = path.to_path_buf();
    move |source| PlanError::Fs {
        action,
        path,
        source,
    }
}

/// Removes the scratch directories when dropped (each is held with its
/// flock until then, see [`super::scratch`]).
struct Scratch(Vec<super::scratch::Held>);

impl Drop for Scratch {
    fn drop(&mut self) {
        for held in self.0.drain(..).rev() {
            if let Err(e) = std::fs::remove_dir_all(&held.path) {
                tracing::warn!(target: "mirrorer::stages", path = %held.path.display(), error = %e, "scratch_dir_not_removed");
            }
        }
    }
}

impl Plan {
    /// Logs every step as a `dry_run_*` event (INFO), then `dry_run_plan
    /// steps=N`.
    fn log_dry_run(&self, stage: &str) {
        for step in &self.steps {
            match step {
                Step::Run(cmd) => {
                    let env = cmd.display_env();
                    if env.is_empty() {
                        tracing::info!(target: "mirrorer::stages", purpose = %cmd.purpose(), command = %cmd.display(), "dry_run_command")
                    } else {
                        tracing::info!(target: "mirrorer::stages", purpose = %cmd.purpose(), command = %cmd.display(), env = %env, "dry_run_command")
                    }
                }
                Step::Write {
                    path,
                    contents,
                    mode,
                } => {
                    tracing::info!(target: "mirrorer::stages", path = %path.display(), bytes = contents.len(), mode = %format!("{mode:o}"), "dry_run_write")
                }
                Step::CreateDir(p) => {
                    tracing::info!(target: "mirrorer::stages", path = %p.display(), "dry_run_mkdir")
                }
                Step::RemoveFile(p) | Step::RemoveDirAll(p) => {
                    tracing::info!(target: "mirrorer::stages", path = %p.display(), "dry_run_remove")
                }
                Step::ScratchDir(p) => {
                    tracing::info!(target: "mirrorer::stages", path = %p.display(), "dry_run_scratch_dir")
                }
                Step::Symlink { root, link, target } => {
                    tracing::info!(target: "mirrorer::stages", link = %root.join(link).display(), target = %target.display(), "dry_run_symlink")
                }
            }
        }
        tracing::info!(target: "mirrorer::stages", stage = stage, steps = self.steps.len(), "dry_run_plan");
    }

    /// Performs every step in order through `lock`.
    ///
    /// # Errors
    /// The first failing step's [`PlanError`]; later steps are not run, and
    /// scratch directories are removed.
    fn execute(&self, lock: &StateLock) -> Result<(), PlanError> {
        let mut scratch = Scratch(Vec::new());
        for step in &self.steps {
            crate::signals::check()?;
            match step {
                Step::Run(cmd) => {
                    cmd.run()?;
                }
                Step::Write {
                    path,
                    contents,
                    mode,
                } => lock.write_file(path, contents, *mode)?,
                Step::CreateDir(p) => lock.create_dir_all(p)?,
                Step::RemoveFile(p) => {
                    lock.remove_file(p)?;
                }
                Step::RemoveDirAll(p) => lock.remove_dir_all(p)?,
                Step::ScratchDir(p) => {
                    let held = super::scratch::create(p)
                        .map_err(fs_err("create the scratch directory", p))?;
                    scratch.0.push(held);
                }
                Step::Symlink { root, link, target } => make_link(root, link, target)?,
            }
        }
        Ok(())
    }
}

/// Creates `root/link -> target`, refusing anything that could place the
/// link (or a directory) outside `root`.
fn make_link(root: &Path, link: &Path, target: &Path) -> Result<(), PlanError> {
    let outside = |why: &str| PlanError::Fs {
        action: format!("create the symlink {} ({why})", link.display()),
        path: root.join(link),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, why.to_owned()),
    };
    if link.as_os_str().is_empty()
        || link
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
    {
        return Err(outside("not a plain relative path"));
    }
    // Walk the parents: each must be a real directory (created if missing),
    // never a symlink, so nothing is created through a link.
    let mut dir = root.to_path_buf();
    let parts: Vec<_> = link.components().collect();
    for part in &parts[..parts.len() - 1] {
        dir.push(part);
        match std::fs::symlink_metadata(&dir) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(outside(&format!(
                    "{} is a symlink; a public prefix nested in another one",
                    dir.strip_prefix(root).unwrap_or(&dir).display()
                )));
            }
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(outside("a parent is not a directory")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                use std::os::unix::fs::DirBuilderExt;
                std::fs::DirBuilder::new()
                    .mode(0o755)
                    .create(&dir)
                    .map_err(fs_err("create", &dir))?;
            }
            Err(e) => return Err(fs_err("inspect", &dir)(e)),
        }
    }
    let path = root.join(link);
    std::os::unix::fs::symlink(target, &path).map_err(fs_err("create the symlink", &path))?;
    tracing::debug!(target: "mirrorer::stages", link = %path.display(), target = %target.display(), "symlink_created");
    Ok(())
}

/// A file a stage appends checkpoints to ([`Executor::appender`]): each
/// [`AppendFile::write`] reaches the file at once (nothing written is lost
/// when the process is killed); [`AppendFile::sync`] makes it survive a
/// power loss. Under `--dry-run`, writes are logged and nothing changes.
#[derive(Debug)]
pub struct AppendFile<'a> {
    path: &'a Path,
    /// `None` under `--dry-run`.
    file: Option<crate::state::Appender<'a>>,
}

impl AppendFile<'_> {
    /// Appends `bytes` (no sync); under `--dry-run` logs `dry_run_append`.
    ///
    /// # Errors
    /// [`Error::Failed`] with the [`StateError`].
    pub fn write(&mut self, bytes: &[u8]) -> Result<()> {
        match &mut self.file {
            None => {
                tracing::info!(target: TARGET, path = %self.path.display(), bytes = bytes.len(), "dry_run_append");
                Ok(())
            }
            Some(file) => file.write(bytes).map_err(failed),
        }
    }

    /// Makes what was written durable (`fdatasync(2)`); nothing under
    /// `--dry-run`.
    ///
    /// # Errors
    /// [`Error::Failed`] with the [`StateError`].
    pub fn sync(&mut self) -> Result<()> {
        match &mut self.file {
            None => Ok(()),
            Some(file) => file.sync().map_err(failed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempTree;

    #[test]
    fn links_are_never_created_through_a_symlink() {
        let t = TempTree::new();
        let root = t.dir("root");
        let outside = t.dir("outside");
        make_link(&root, Path::new("a/b"), &outside).unwrap();
        assert_eq!(std::fs::read_link(root.join("a/b")).unwrap(), outside);
        let err = make_link(&root, Path::new("a/b/c"), Path::new("/x")).unwrap_err();
        assert!(err.to_string().contains("a/b is a symlink"), "{err}");
        assert!(!outside.join("c").exists());
        assert!(make_link(&root, Path::new("../x"), Path::new("/x")).is_err());
        assert!(make_link(&root, Path::new("/abs"), Path::new("/x")).is_err());
    }
}
