//! A stage's plan: the plain list of changes it will make (docs/architecture.md,
//! practice 10). A stage computes its [`Plan`] first (reading whatever it needs,
//! running read-only commands such as `zfs list`), then hands it to
//! [`crate::stages::Executor::execute`], which either performs it or,
//! under `--dry-run`, logs every step (`dry_run_command`, `dry_run_write`,
//! ...) and changes nothing.
//!
//! Steps run in order; the first failure stops the plan. File changes go
//! through the [`crate::state::StateLock`] guard. Scratch directories
//! ([`Step::ScratchDir`]) are removed when the plan ends, also on failure.

use std::fmt;
use std::path::PathBuf;

use crate::process::Cmd;

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

impl Plan {
    /// An empty plan.
    pub fn new() -> Plan {
        Plan::default()
    }

    /// Appends a step.
    pub fn push(&mut self, step: Step) {
        self.steps.push(step);
    }
}
