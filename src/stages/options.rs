//! The plain option values a stage runs with, built once by the command line
//! module from the flags (docs/architecture.md, practice 13: flags stop at the CLI), and
//! the config loading every stage starts with.
//!
//! Values arrive here already checked (by clap value parsers), so nothing
//! below the CLI parses or re-checks a flag.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{self, Config};
use crate::error::Result;
use crate::logging::{self, Level};

/// The global options of a stage command.
#[derive(Debug, Clone)]
pub struct Options {
    /// The configuration file (`--config`, env `MIRRORER_CONFIG`).
    pub config: PathBuf,
    /// `--log-level`, if given: it wins over `log.log_level` of the config.
    pub log_level: Option<Level>,
    /// `--dry-run`: log the plan, change nothing.
    pub dry_run: bool,
    /// `--skip-remote` (`Some(true)`) or `--no-skip-remote` (`Some(false)`);
    /// `None`: `replication.skip_remote` of the config decides.
    pub skip_remote: Option<bool>,
    /// `--fail-on-threats` (`Some(true)`) or `--allow-threats`
    /// (`Some(false)`); `None`: `antivirus.fail_on_threats` decides.
    pub fail_on_threats: Option<bool>,
    /// `--lock-timeout`: how long to wait for a state lock; `None`: wait.
    pub lock_timeout: Option<Duration>,
}

impl Options {
    /// The defaults for config file `config`: no flag given.
    pub fn new(config: impl Into<PathBuf>) -> Options {
        Options {
            config: config.into(),
            log_level: None,
            dry_run: false,
            skip_remote: None,
            fail_on_threats: None,
            lock_timeout: None,
        }
    }
}

/// Loads the config at `path`, logs its warnings, and applies its log level
/// unless `log_level` (from `--log-level`) was given.
///
/// # Errors
/// [`crate::error::Error::Config`] (exit 3).
pub fn load_config(path: &Path, log_level: Option<Level>) -> Result<Config> {
    let config = config::load(path)?;
    if log_level.is_none() {
        logging::set_level(config.log_level);
    }
    for w in &config.warnings {
        tracing::warn!(
            target: "mirrorer::config",
            setting = %w.key,
            line = w.position.line,
            column = w.position.column,
            warning = %w.message,
            "config_warning"
        );
    }
    Ok(config)
}
