//! A stage's plan: the plain list of changes it will make (docs/architecture.md,
//! practice 10). A stage computes its [`Plan`] first (reading whatever it needs,
//! running read-only commands such as `zfs list`), then hands it to
//! [`crate::stages::StageContext::execute`], which either performs it or,
//! under `--dry-run`, logs every step (`dry_run_command`, `dry_run_write`,
//! ...) and changes nothing. This is the one place `--dry-run` is honoured
//! for changes.
//!
//! Steps run in order; the first failure stops the plan. File changes go
//! through the [`StateLock`] guard. Scratch directories
//! ([`Step::ScratchDir`]) are removed when the plan ends, also on failure.

use std::fmt;
use std::path::{Component, Path, PathBuf};

use crate::process::Cmd;
use crate::state::StateLock;

/// One change a stage makes.
#[derive(Debug, Clone)]
pub enum Step {
    /// Run a command that changes something (its status is checked).
    Run(Cmd),
    /// Write `contents` to `path` atomically with permission bits `mode`
    /// (parents created).
    Write {
        /// The file.
        path: PathBuf,
        /// Its new content.
        contents: Vec<u8>,
        /// Permission bits, e.g. `0o644`.
        mode: u32,
    },
    /// Create a directory and its parents.
    CreateDir(PathBuf),
    /// Remove a file if it exists.
    RemoveFile(PathBuf),
    /// Remove a directory and its content if it exists.
    RemoveDirAll(PathBuf),
    /// Create this new, empty directory (mode 0755; it must not exist), hold
    /// its flock, and remove it with its content when the plan ends
    /// ([`super::scratch`]; one left by a killed run is removed by a later
    /// one).
    ScratchDir(PathBuf),
    /// Create the symlink `root/link` pointing to `target`. `link` must be
    /// relative without `..`, and no existing part of it below `root` may be
    /// a symlink, so the link is always created inside `root`; missing
    /// parent directories are created.
    Symlink {
        /// The tree the link belongs to (a scratch directory).
        root: PathBuf,
        /// The link's path relative to `root`.
        link: PathBuf,
        /// What it points to (written as is).
        target: PathBuf,
    },
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Run(cmd) => write!(f, "run {}", cmd.display()),
            Step::Write { path, contents, .. } => {
                write!(f, "write {} ({} bytes)", path.display(), contents.len())
            }
            Step::CreateDir(p) => write!(f, "mkdir -p {}", p.display()),
            Step::RemoveFile(p) => write!(f, "rm -f {}", p.display()),
            Step::RemoveDirAll(p) => write!(f, "rm -rf {}", p.display()),
            Step::ScratchDir(p) => write!(f, "scratch dir {}", p.display()),
            Step::Symlink { root, link, target } => write!(
                f,
                "ln -s {} {}",
                target.display(),
                root.join(link).display()
            ),
        }
    }
}

/// The ordered steps of a stage.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// The steps, in execution order.
    pub steps: Vec<Step>,
}

/// A step of a plan failed.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A command failed (could not start, bad status, timeout, signal).
    #[error(transparent)]
    Process(#[from] crate::process::ProcessError),
    /// SIGINT/SIGTERM arrived between steps.
    #[error(transparent)]
    Interrupted(#[from] crate::signals::Interrupted),
    /// A state or file change failed.
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    /// A symlink would leave its root, or a file operation failed.
    #[error("could not {action} {}", path.display())]
    Fs {
        /// What was being done.
        action: String,
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
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
    /// An empty plan.
    pub fn new() -> Plan {
        Plan::default()
    }

    /// Appends a step.
    pub fn push(&mut self, step: Step) {
        self.steps.push(step);
    }

    /// Logs every step as a `dry_run_*` event (INFO), then `dry_run_plan
    /// steps=N`.
    pub fn log_dry_run(&self, stage: &str) {
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
    pub fn execute(&self, lock: &StateLock) -> Result<(), PlanError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_never_created_through_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        make_link(&root, Path::new("a/b"), &outside).unwrap();
        assert_eq!(std::fs::read_link(root.join("a/b")).unwrap(), outside);
        let err = make_link(&root, Path::new("a/b/c"), Path::new("/x")).unwrap_err();
        assert!(err.to_string().contains("a/b is a symlink"), "{err}");
        assert!(!outside.join("c").exists());
        assert!(make_link(&root, Path::new("../x"), Path::new("/x")).is_err());
        assert!(make_link(&root, Path::new("/abs"), Path::new("/x")).is_err());
    }
}
