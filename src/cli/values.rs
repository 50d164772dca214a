//! The value parsers of the global flags: every value is checked by clap
//! before any work (docs/architecture.md, practice 13), so a bad one is a
//! usage error (exit 2) naming the flag.

use std::path::PathBuf;
use std::time::Duration;

use crate::config;
use crate::logging::Level;

/// `--log-level`: `DEBUG`, `INFO`, `WARNING` or `ERROR`, any case.
pub(super) fn parse_level(s: &str) -> std::result::Result<Level, String> {
    match s.parse::<Level>() {
        Ok(Level::Critical) | Err(_) => {
            Err(format!("{s:?} is not one of DEBUG, INFO, WARNING, ERROR"))
        }
        Ok(level) => Ok(level),
    }
}

/// Longest wait a seconds flag accepts: 10^9 s (about 31 years). Larger
/// values would overflow a `Duration` or the deadline computed from it.
pub const MAX_SECONDS: f64 = 1e9;

/// Parses a number of seconds: a finite decimal number in `0..=MAX_SECONDS`
/// (`1.5`, `0`, `3e3`); `NaN`, `inf`, negative and larger values are
/// refused with a sentence saying so (clap exits 2).
pub fn parse_seconds(s: &str) -> std::result::Result<f64, String> {
    let t = s.trim();
    let v: f64 = t
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !v.is_finite() || !(0.0..=MAX_SECONDS).contains(&v) {
        return Err(format!(
            "{s:?} is out of range: expected a number of seconds from 0 to {MAX_SECONDS:e}"
        ));
    }
    Ok(v)
}

/// Parses `--config`/`MIRRORER_CONFIG`: an empty or blank value means "not
/// given", i.e. [`config::DEFAULT_CONFIG_PATH`] (as mirrorer 0.1.0 did with
/// an empty `MIRRORER_CONFIG`).
pub(super) fn parse_config_path(s: &str) -> std::result::Result<PathBuf, String> {
    if s.trim().is_empty() {
        Ok(PathBuf::from(config::DEFAULT_CONFIG_PATH))
    } else {
        Ok(PathBuf::from(s))
    }
}

/// `--lock-timeout`: [`parse_seconds`] as a [`Duration`].
pub(super) fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    parse_seconds(s).map(Duration::from_secs_f64)
}
