//! Rules of the mirror's domain that the pipeline generator ([`crate::pipeline`])
//! and the stages ([`crate::stages`]) both apply, so neither borrows them
//! from the other:
//!
//! - snapshot names: the name `snapshot` gives ([`snapshot_name`]) and the
//!   names every other command accepts ([`validate_snapshot_name`]);
//! - syncer selection by name or prefix ([`select_syncers`]), and by
//!   exclusion ([`select_syncers_excluding`]), for `sync --syncer` /
//!   `--exclude-syncer` and the `sync:<prefix>` jobs;
//! - the dotenv report that carries the snapshot name from the `snapshot`
//!   job to the later jobs of a child pipeline ([`SNAPSHOT_DOTENV`],
//!   [`SNAPSHOT_VARIABLE`], [`snapshot_dotenv`]).

use crate::config::Syncer;

/// Longest accepted snapshot name, in bytes.
pub const MAX_SNAPSHOT_NAME_LEN: usize = 200;

/// The snapshot name for local time `now`: `%Y%m%d-%H%M%S`.
pub fn snapshot_name(now: chrono::DateTime<chrono::Local>) -> String {
    now.format("%Y%m%d-%H%M%S").to_string()
}

/// Checks a snapshot name: only `[A-Za-z0-9_.:-]`, not starting with `-` or
/// `.`, 1 to 200 bytes. This keeps a name usable as a ZFS snapshot name and
/// as one path component (no `/`, no `..`).
///
/// # Errors
/// A sentence saying what is wrong with `name`.
pub fn validate_snapshot_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a snapshot name must not be empty".to_owned());
    }
    if name.len() > MAX_SNAPSHOT_NAME_LEN {
        return Err(format!(
            "snapshot name is {} bytes long; at most {MAX_SNAPSHOT_NAME_LEN} are allowed",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-')))
    {
        return Err(format!(
            "snapshot name {name:?} contains {c:?}; only letters, digits and `_.:-` are allowed"
        ));
    }
    if name.starts_with(['-', '.']) {
        return Err(format!(
            "snapshot name {name:?} must not start with `-` or `.`"
        ));
    }
    Ok(())
}

/// `values` without the empty or blank ones: an empty value of a
/// repeatable flag or variable means "not given" (as in mirrorer 0.1.0).
pub fn non_blank(values: &[String]) -> Vec<String> {
    values
        .iter()
        .filter(|s| !s.trim().is_empty())
        .cloned()
        .collect()
}

/// Name of the dotenv report the `snapshot` job writes
/// (`artifacts:reports:dotenv`, docs.gitlab.com/ci/yaml/artifacts_reports/).
pub const SNAPSHOT_DOTENV: &str = "mirrorer-snapshot.env";

/// The variable the dotenv report carries to later jobs.
pub const SNAPSHOT_VARIABLE: &str = "MIRRORER_SNAPSHOT";

/// The content of the dotenv report for snapshot `name`:
/// `MIRRORER_SNAPSHOT=<name>` and a newline (GitLab's dotenv format, one
/// `KEY=VALUE` per line).
pub fn snapshot_dotenv(name: &str) -> String {
    format!("{SNAPSHOT_VARIABLE}={name}\n")
}

/// A selection that names no configured syncer. Exit 2.
#[derive(Debug, thiserror::Error)]
#[error("no syncer matches name or prefix: {0}")]
pub struct UnknownSyncer(pub String);

/// Picks the syncers whose name or prefix equals one of `wanted` (all when
/// `wanted` is empty), in config order.
///
/// # Errors
/// [`UnknownSyncer`] naming the first value that matches no syncer.
pub fn select_syncers<'a>(
    syncers: &'a [Syncer],
    wanted: &[String],
) -> Result<Vec<&'a Syncer>, UnknownSyncer> {
    if let Some(missing) = wanted
        .iter()
        .find(|w| !syncers.iter().any(|s| &s.name == *w || &s.prefix == *w))
    {
        return Err(UnknownSyncer(missing.clone()));
    }
    Ok(syncers
        .iter()
        .filter(|s| wanted.is_empty() || wanted.iter().any(|w| *w == s.name || *w == s.prefix))
        .collect())
}

/// A syncer selection that cannot be applied. Exit 2.
#[derive(Debug, thiserror::Error)]
pub enum SelectError {
    /// A selected name or prefix matches no syncer.
    #[error(transparent)]
    Unknown(#[from] UnknownSyncer),
    /// An excluded name or prefix matches no syncer.
    #[error("no syncer matches excluded name or prefix: {0}")]
    UnknownExcluded(String),
    /// Both a selection and an exclusion were given.
    #[error(
        "--syncer cannot be combined with --exclude-syncer: select syncers or exclude them, not both"
    )]
    Both,
}

/// The syncer selection rule of `sync` and of the `sync:<prefix>` jobs:
/// with `wanted` non-empty, the syncers [`select_syncers`] picks; with
/// `excluded` non-empty, every syncer whose name and prefix both differ from
/// each excluded value; with neither, all. In config order.
///
/// Excluding every syncer is allowed (the selection is then empty).
///
/// # Errors
/// [`SelectError::Both`] when both lists are non-empty (as deckhouse's
/// `d8 mirror` refuses `--include-*` with `--exclude-*`);
/// [`SelectError::Unknown`] / [`SelectError::UnknownExcluded`] naming the
/// first value that matches no syncer.
pub fn select_syncers_excluding<'a>(
    syncers: &'a [Syncer],
    wanted: &[String],
    excluded: &[String],
) -> Result<Vec<&'a Syncer>, SelectError> {
    if excluded.is_empty() {
        return Ok(select_syncers(syncers, wanted)?);
    }
    if !wanted.is_empty() {
        return Err(SelectError::Both);
    }
    let matches = |s: &Syncer, w: &String| *w == s.name || *w == s.prefix;
    if let Some(missing) = excluded
        .iter()
        .find(|w| !syncers.iter().any(|s| matches(s, w)))
    {
        return Err(SelectError::UnknownExcluded(missing.clone()));
    }
    Ok(syncers
        .iter()
        .filter(|s| !excluded.iter().any(|w| matches(s, w)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_names() {
        assert!(validate_snapshot_name("20260603-120000").is_ok());
        assert!(validate_snapshot_name("a:b.c_d-e").is_ok());
        for bad in [
            "",
            "../x",
            "a/b",
            "-x",
            ".x",
            "a b",
            "x\n",
            &"a".repeat(201),
        ] {
            assert!(validate_snapshot_name(bad).is_err(), "{bad:?}");
        }
        assert!(validate_snapshot_name(&"a".repeat(200)).is_ok());
    }

    #[test]
    fn the_dotenv_line_carries_the_snapshot_variable() {
        assert_eq!(
            snapshot_dotenv("20260603-120000"),
            "MIRRORER_SNAPSHOT=20260603-120000\n"
        );
    }
}
