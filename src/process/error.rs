//! `ProcessError`: "could not start" and "ran and failed" kept apart
//! (docs/architecture.md, practice 4), each naming the rendered command.

use std::time::Duration;

use super::Exit;

/// Why running a program failed. Every variant names the rendered command
/// line (secrets redacted).
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The program could not be started (not found, not executable, ...).
    #[error("could not start `{command}` ({purpose})")]
    Start {
        /// The rendered command line.
        command: String,
        /// The purpose given to [`Cmd::new`](super::Cmd::new).
        purpose: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// It ran and ended with a status not in its ok codes.
    #[error("`{command}` ({purpose}) {exit}{}", render_tail(tail))]
    Status {
        /// The rendered command line.
        command: String,
        /// The purpose given to [`Cmd::new`](super::Cmd::new).
        purpose: String,
        /// How it ended.
        exit: Exit,
        /// The last lines of its output.
        tail: String,
    },
    /// It did not finish within its timeout and was stopped.
    #[error("`{command}` ({purpose}) did not finish within {}s and was stopped{}", timeout.as_secs_f64(), render_tail(tail))]
    Timeout {
        /// The rendered command line.
        command: String,
        /// The purpose given to [`Cmd::new`](super::Cmd::new).
        purpose: String,
        /// The timeout.
        timeout: Duration,
        /// The last lines of its output.
        tail: String,
    },
    /// This process received SIGINT/SIGTERM while waiting; the child was stopped.
    #[error("`{command}` ({purpose}) was stopped because mirrorer received {}", crate::signals::name(*signal))]
    Interrupted {
        /// The rendered command line.
        command: String,
        /// The purpose given to [`Cmd::new`](super::Cmd::new).
        purpose: String,
        /// The signal this process received.
        signal: i32,
    },
    /// Waiting for the child failed at the OS level.
    #[error("could not wait for `{command}` ({purpose})")]
    Wait {
        /// The rendered command line.
        command: String,
        /// The purpose given to [`Cmd::new`](super::Cmd::new).
        purpose: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

fn render_tail(tail: &str) -> String {
    if tail.trim().is_empty() {
        String::new()
    } else {
        format!("; last output:\n{tail}")
    }
}

impl ProcessError {
    /// The rendered command line of the failed command.
    pub fn command(&self) -> &str {
        match self {
            ProcessError::Start { command, .. }
            | ProcessError::Status { command, .. }
            | ProcessError::Timeout { command, .. }
            | ProcessError::Interrupted { command, .. }
            | ProcessError::Wait { command, .. } => command,
        }
    }

    /// The exit of the program, for [`ProcessError::Status`].
    pub fn exit(&self) -> Option<Exit> {
        match self {
            ProcessError::Status { exit, .. } => Some(*exit),
            _ => None,
        }
    }
}
