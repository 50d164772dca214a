//! Error kinds of the command line and the exit codes they map to.
//!
//! The table (docs/cli.md, "Exit codes"; also in `--help` and the README):
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success (also: nothing to do) |
//! | 1 | the stage failed (an external program failed, a required file is missing, ...) |
//! | 2 | usage error (bad flags or option values) |
//! | 3 | configuration file missing, unreadable or invalid |
//! | 4 | the state lock could not be taken within `--lock-timeout` |
//! | 5 | antivirus threats found and `fail_on_threats` is on |
//! | 6 | verification found problems (`verify`) |
//! | 130 / 143 | stopped by SIGINT / SIGTERM (after cleaning up) |
//!
//! The mapping from error kind to code is the one exhaustive `match` in
//! [`Error::exit_code`].

use crate::config::ConfigError;

/// Exit code: success, or nothing to do.
pub const EXIT_OK: u8 = 0;
/// Exit code: the command or stage failed.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code: bad flags or option values.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: the configuration file is missing, unreadable or invalid.
pub const EXIT_CONFIG: u8 = 3;
/// Exit code: the state lock could not be taken in time.
pub const EXIT_LOCK: u8 = 4;
/// Exit code: antivirus threats were found and `fail_on_threats` is on.
pub const EXIT_THREATS: u8 = 5;
/// Exit code: `verify` found problems in the tree.
pub const EXIT_VERIFY: u8 = 6;
/// Exit code: stopped by SIGINT (128 + 2).
pub const EXIT_SIGINT: u8 = 130;
/// Exit code: stopped by SIGTERM (128 + 15).
pub const EXIT_SIGTERM: u8 = 143;

/// The documented exit-code table, as `(code, meaning)` rows, for `--help`.
pub const EXIT_CODE_TABLE: &[(u8, &str)] = &[
    (EXIT_OK, "success (also: nothing to do)"),
    (EXIT_FAILURE, "the command or stage failed"),
    (EXIT_USAGE, "usage error (bad flags or option values)"),
    (
        EXIT_CONFIG,
        "configuration file missing, unreadable or invalid",
    ),
    (
        EXIT_LOCK,
        "the state lock could not be taken within --lock-timeout",
    ),
    (
        EXIT_THREATS,
        "antivirus threats found and fail_on_threats is on",
    ),
    (EXIT_VERIFY, "verification found problems"),
    (EXIT_SIGINT, "stopped by SIGINT, after cleaning up"),
    (EXIT_SIGTERM, "stopped by SIGTERM, after cleaning up"),
];

/// Every way a command can end other than success.
///
/// Library areas have their own error enums; the CLI folds them into one of
/// these kinds, which decides the exit code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad flags or option values (exit 2). The message names the option.
    #[error("{0}")]
    Usage(String),
    /// The configuration file could not be loaded or is invalid (exit 3).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The state lock was held by someone else for longer than
    /// `--lock-timeout` (exit 4). The message names the holder.
    #[error("{0}")]
    LockTimeout(String),
    /// Antivirus threats were found and `fail_on_threats` is on (exit 5).
    #[error("{0}")]
    Threats(String),
    /// `verify` found problems (exit 6); the message sums them up.
    #[error("{0}")]
    Verification(String),
    /// The process was stopped by a signal (exit 128 + signal number).
    #[error("stopped by signal {0}")]
    Signal(i32),
    /// Any other failure of the command or stage (exit 1), with its cause chain.
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl Error {
    /// The process exit code of this error (see the module table).
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => EXIT_USAGE,
            Error::Config(_) => EXIT_CONFIG,
            Error::LockTimeout(_) => EXIT_LOCK,
            Error::Threats(_) => EXIT_THREATS,
            Error::Verification(_) => EXIT_VERIFY,
            Error::Signal(2) => EXIT_SIGINT,
            Error::Signal(15) => EXIT_SIGTERM,
            Error::Signal(n) => u8::try_from(128 + n).unwrap_or(EXIT_FAILURE),
            Error::Failed(_) => EXIT_FAILURE,
        }
    }

    /// A short name of the error kind, used as the `kind=` field of the
    /// final log event.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Usage(_) => "usage",
            Error::Config(_) => "config",
            Error::LockTimeout(_) => "lock_timeout",
            Error::Threats(_) => "threats",
            Error::Verification(_) => "verification",
            Error::Signal(_) => "signal",
            Error::Failed(_) => "failed",
        }
    }
}

/// Result of a CLI command.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A failed external program: exit 1, except [`crate::process::ProcessError::Interrupted`]
/// (the process received SIGINT/SIGTERM), which is [`Error::Signal`].
impl From<crate::process::ProcessError> for Error {
    fn from(e: crate::process::ProcessError) -> Error {
        match e {
            crate::process::ProcessError::Interrupted { signal, .. } => Error::Signal(signal),
            other => Error::Failed(anyhow::Error::new(other)),
        }
    }
}

/// A state-lock or state-file failure: a lock timeout is exit 4, an
/// interrupted wait [`Error::Signal`], anything else exit 1.
impl From<crate::state::StateError> for Error {
    fn from(e: crate::state::StateError) -> Error {
        match e {
            crate::state::StateError::LockTimeout { .. } => Error::LockTimeout(e.to_string()),
            crate::state::StateError::Interrupted { signal, .. } => Error::Signal(signal),
            other => Error::Failed(anyhow::Error::new(other)),
        }
    }
}

/// SIGINT/SIGTERM seen between units of work: [`Error::Signal`].
impl From<crate::signals::Interrupted> for Error {
    fn from(e: crate::signals::Interrupted) -> Error {
        Error::Signal(e.signal)
    }
}

/// `error` and its causes on one line, `error: cause: cause` (a Display
/// alone often says only the outermost layer, e.g. reqwest's "error sending
/// request"), for logs and status messages.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
