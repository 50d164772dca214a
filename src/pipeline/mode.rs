//! Run modes of the child pipeline (docs/pipelines.md, "Run modes"), from
//! `pipeline generate` flags or the parent pipeline's variables.
//!
//! | flag | variable | child pipeline |
//! |---|---|---|
//! | (none) | (none) | the full chain |
//! | `--syncer X` (repeatable) | `MIRRORER_SYNCERS` (comma list) | only those sync jobs, then the rest of the chain |
//! | `--exclude-syncer X` (repeatable) | `MIRRORER_SYNCERS_EXCLUDE` (comma list) | every sync job but those, then the rest of the chain |
//! | `--snapshot NAME` | `MIRRORER_SNAPSHOT` | publish-snapshot, publish-inventory, publish-catalog for NAME |
//! | `--publish-all` | `MIRRORER_PUBLISH_ALL=true` | publish-snapshot --all, publish-inventory, publish-catalog --rebuild |
//! | `--catalog-rebuild` | `MIRRORER_CATALOG_REBUILD=true` | publish-inventory, publish-catalog --rebuild |
//! | `--skip-remote` | `MIRRORER_SKIP_REMOTE=true` | every job gets `--skip-remote` |
//! | `--dry-run` | `MIRRORER_DRY_RUN=true` | every job gets `--dry-run` |
//! | `--promote` | `MIRRORER_PROMOTE=true` | the republish mode also promotes its snapshot (a `promote` job); ignored by the other modes (the full chain always promotes) |
//! | `--allow-shrink` | `MIRRORER_ALLOW_SHRINK=true` | the `verify` job gets `--allow-shrink` |
//!
//! Flags win: when any mode flag (`--syncer`, `--exclude-syncer`,
//! `--snapshot`, `--publish-all`, `--catalog-rebuild`) is given, the mode variables are not read; the two
//! modifiers are taken one by one, flag first. Two modes at once are a
//! usage error that names both.

use crate::config::{is_none_like, parse_bool};
use crate::domain::{non_blank, validate_snapshot_name};

/// What the child pipeline does.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Mode {
    /// Sync (all syncers, or the selected names/prefixes), scan, snapshot,
    /// replicate, publish, clean up.
    Full {
        /// Selected syncer names or prefixes; empty means all.
        syncers: Vec<String>,
        /// Excluded syncer names or prefixes (only when `syncers` is
        /// empty); empty means none.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        exclude: Vec<String>,
    },
    /// Publish one existing snapshot again, with its inventory and catalog.
    Republish {
        /// The snapshot name (validated).
        snapshot: String,
    },
    /// Publish every snapshot of the dataset and rebuild every catalog.
    PublishAll,
    /// Rebuild the inventory and every catalog of what is published.
    CatalogRebuild,
}

/// The run mode plus the modifiers every job gets.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RunMode {
    /// What the pipeline does.
    pub mode: Mode,
    /// Every job gets `--skip-remote`.
    pub skip_remote: bool,
    /// Every job gets `--dry-run`.
    pub dry_run: bool,
    /// The republish mode also promotes (`--promote`, `MIRRORER_PROMOTE`).
    pub promote: bool,
    /// The `verify` job gets `--allow-shrink` (a repository may shrink).
    #[serde(default)]
    pub allow_shrink: bool,
}

impl std::fmt::Display for RunMode {
    /// A short description: `full`, `full syncers=a,b`, `republish
    /// snapshot=NAME`, `publish-all` or `catalog-rebuild`, then
    /// ` skip-remote` and ` dry-run` when on.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.mode {
            Mode::Full { syncers, exclude } if syncers.is_empty() && exclude.is_empty() => {
                f.write_str("full")?;
            }
            Mode::Full { syncers, exclude } if syncers.is_empty() => {
                write!(f, "full exclude={}", exclude.join(","))?;
            }
            Mode::Full { syncers, .. } => write!(f, "full syncers={}", syncers.join(","))?,
            Mode::Republish { snapshot } => write!(f, "republish snapshot={snapshot}")?,
            Mode::PublishAll => f.write_str("publish-all")?,
            Mode::CatalogRebuild => f.write_str("catalog-rebuild")?,
        }
        if self.skip_remote {
            f.write_str(" skip-remote")?;
        }
        if self.dry_run {
            f.write_str(" dry-run")?;
        }
        if self.promote && matches!(self.mode, Mode::Republish { .. }) {
            f.write_str(" promote")?;
        }
        if self.allow_shrink {
            f.write_str(" allow-shrink")?;
        }
        Ok(())
    }
}

/// The run-mode inputs as given on the command line.
#[derive(Debug, Clone, Default)]
pub struct ModeFlags {
    /// `--syncer` values.
    pub syncers: Vec<String>,
    /// `--exclude-syncer` values.
    pub exclude_syncers: Vec<String>,
    /// `--snapshot`.
    pub snapshot: Option<String>,
    /// `--publish-all`.
    pub publish_all: bool,
    /// `--catalog-rebuild`.
    pub catalog_rebuild: bool,
    /// `--skip-remote`.
    pub skip_remote: bool,
    /// `--dry-run`.
    pub dry_run: bool,
    /// `--promote`.
    pub promote: bool,
    /// `--allow-shrink`.
    pub allow_shrink: bool,
}

/// A run-mode input that cannot be used. Exit 2.
#[derive(Debug, thiserror::Error)]
pub enum ModeError {
    /// A value is invalid; the message names the flag or variable.
    #[error("{0}")]
    Invalid(String),
    /// Two modes were asked for at once.
    #[error("conflicting run modes: {0} cannot be combined with {1}")]
    Conflict(String, String),
}

/// Names of the parent-pipeline variables read by [`resolve`].
pub const MODE_VARIABLES: &[&str] = &[
    "MIRRORER_SYNCERS",
    "MIRRORER_SYNCERS_EXCLUDE",
    "MIRRORER_SNAPSHOT",
    "MIRRORER_PUBLISH_ALL",
    "MIRRORER_CATALOG_REBUILD",
    "MIRRORER_SKIP_REMOTE",
    "MIRRORER_DRY_RUN",
    "MIRRORER_PROMOTE",
    "MIRRORER_ALLOW_SHRINK",
];

fn var_bool(name: &str, value: Option<&str>) -> Result<bool, ModeError> {
    match value {
        None => Ok(false),
        Some(v) if is_none_like(v) => Ok(false),
        Some(v) => parse_bool(v).ok_or_else(|| {
            ModeError::Invalid(format!(
                "variable {name}={v:?} is not a boolean (true/false, yes/no, on/off, 1/0)"
            ))
        }),
    }
}

struct Requested {
    syncers: (Vec<String>, &'static str),
    exclude: (Vec<String>, &'static str),
    snapshot: (Option<String>, &'static str),
    publish_all: (bool, &'static str),
    catalog_rebuild: (bool, &'static str),
}

fn choose(req: Requested) -> Result<Mode, ModeError> {
    let mut chosen: Vec<(&str, Mode)> = Vec::new();
    if !req.syncers.0.is_empty() {
        chosen.push((
            req.syncers.1,
            Mode::Full {
                syncers: req.syncers.0,
                exclude: Vec::new(),
            },
        ));
    }
    if !req.exclude.0.is_empty() {
        chosen.push((
            req.exclude.1,
            Mode::Full {
                syncers: Vec::new(),
                exclude: req.exclude.0,
            },
        ));
    }
    if let Some(snapshot) = req.snapshot.0 {
        validate_snapshot_name(&snapshot)
            .map_err(|e| ModeError::Invalid(format!("{}: {e}", req.snapshot.1)))?;
        chosen.push((req.snapshot.1, Mode::Republish { snapshot }));
    }
    if req.publish_all.0 {
        chosen.push((req.publish_all.1, Mode::PublishAll));
    }
    if req.catalog_rebuild.0 {
        chosen.push((req.catalog_rebuild.1, Mode::CatalogRebuild));
    }
    match chosen.len() {
        0 => Ok(Mode::Full {
            syncers: Vec::new(),
            exclude: Vec::new(),
        }),
        1 => Ok(chosen.remove(0).1),
        _ => Err(ModeError::Conflict(
            chosen[0].0.to_owned(),
            chosen[1].0.to_owned(),
        )),
    }
}

/// Resolves the run mode from flags and variables (`var` looks a variable
/// up, e.g. `|n| std::env::var(n).ok()`). Empty or blank values, of flags
/// and variables alike, count as not given (as in mirrorer 0.1.0).
///
/// # Errors
/// [`ModeError`] for an invalid snapshot name, a non-boolean variable, or
/// two modes at once.
pub fn resolve(
    flags: &ModeFlags,
    var: impl Fn(&str) -> Option<String>,
) -> Result<RunMode, ModeError> {
    let var = |name: &str| var(name).filter(|v| !v.trim().is_empty());
    // An empty value means "not given" (mirrorer 0.1.0): `--syncer ""` is
    // no selection, `--snapshot ""` no snapshot.
    let flags = ModeFlags {
        syncers: non_blank(&flags.syncers),
        exclude_syncers: non_blank(&flags.exclude_syncers),
        snapshot: flags.snapshot.clone().filter(|s| !s.trim().is_empty()),
        ..flags.clone()
    };
    let any_mode_flag = !flags.syncers.is_empty()
        || !flags.exclude_syncers.is_empty()
        || flags.snapshot.is_some()
        || flags.publish_all
        || flags.catalog_rebuild;
    let mode = if any_mode_flag {
        choose(Requested {
            syncers: (flags.syncers.clone(), "--syncer"),
            exclude: (flags.exclude_syncers.clone(), "--exclude-syncer"),
            snapshot: (flags.snapshot.clone(), "--snapshot"),
            publish_all: (flags.publish_all, "--publish-all"),
            catalog_rebuild: (flags.catalog_rebuild, "--catalog-rebuild"),
        })?
    } else {
        let list = |name: &str| {
            var(name)
                .map(|v| {
                    v.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        };
        let syncers = list("MIRRORER_SYNCERS");
        let exclude = list("MIRRORER_SYNCERS_EXCLUDE");
        let snapshot = var("MIRRORER_SNAPSHOT").map(|s| s.trim().to_owned());
        choose(Requested {
            syncers: (syncers, "MIRRORER_SYNCERS"),
            exclude: (exclude, "MIRRORER_SYNCERS_EXCLUDE"),
            snapshot: (snapshot, "MIRRORER_SNAPSHOT"),
            publish_all: (
                var_bool(
                    "MIRRORER_PUBLISH_ALL",
                    var("MIRRORER_PUBLISH_ALL").as_deref(),
                )?,
                "MIRRORER_PUBLISH_ALL",
            ),
            catalog_rebuild: (
                var_bool(
                    "MIRRORER_CATALOG_REBUILD",
                    var("MIRRORER_CATALOG_REBUILD").as_deref(),
                )?,
                "MIRRORER_CATALOG_REBUILD",
            ),
        })?
    };
    let skip_remote = flags.skip_remote
        || var_bool(
            "MIRRORER_SKIP_REMOTE",
            var("MIRRORER_SKIP_REMOTE").as_deref(),
        )?;
    let dry_run =
        flags.dry_run || var_bool("MIRRORER_DRY_RUN", var("MIRRORER_DRY_RUN").as_deref())?;
    let promote =
        flags.promote || var_bool("MIRRORER_PROMOTE", var("MIRRORER_PROMOTE").as_deref())?;
    let allow_shrink = flags.allow_shrink
        || var_bool(
            "MIRRORER_ALLOW_SHRINK",
            var("MIRRORER_ALLOW_SHRINK").as_deref(),
        )?;
    Ok(RunMode {
        mode,
        skip_remote,
        dry_run,
        promote,
        allow_shrink,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_vars(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn flags_win_over_variables() {
        let flags = ModeFlags {
            publish_all: true,
            ..ModeFlags::default()
        };
        let vars = |n: &str| (n == "MIRRORER_SNAPSHOT").then(|| "20260603-120000".to_owned());
        assert_eq!(resolve(&flags, vars).unwrap().mode, Mode::PublishAll);
        assert_eq!(
            resolve(&ModeFlags::default(), vars).unwrap().mode,
            Mode::Republish {
                snapshot: "20260603-120000".to_owned()
            }
        );
    }

    #[test]
    fn conflicts_name_both_modes() {
        let flags = ModeFlags {
            snapshot: Some("x".to_owned()),
            catalog_rebuild: true,
            ..ModeFlags::default()
        };
        let err = resolve(&flags, no_vars).unwrap_err().to_string();
        assert!(
            err.contains("--snapshot") && err.contains("--catalog-rebuild"),
            "{err}"
        );
        let vars = |n: &str| match n {
            "MIRRORER_SYNCERS" => Some("debian".to_owned()),
            "MIRRORER_PUBLISH_ALL" => Some("yes".to_owned()),
            _ => None,
        };
        let err = resolve(&ModeFlags::default(), vars)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("MIRRORER_SYNCERS") && err.contains("MIRRORER_PUBLISH_ALL"),
            "{err}"
        );
    }

    #[test]
    fn empty_values_are_not_given() {
        let flags = ModeFlags {
            syncers: vec![String::new(), " ".to_owned()],
            snapshot: Some(String::new()),
            ..ModeFlags::default()
        };
        let vars = |n: &str| (n == "MIRRORER_SNAPSHOT").then(|| "snap1".to_owned());
        // Empty flags are no mode flag, so the variables are read.
        assert_eq!(
            resolve(&flags, vars).unwrap().mode,
            Mode::Republish {
                snapshot: "snap1".to_owned()
            }
        );
        let flags = ModeFlags {
            syncers: vec![String::new(), "debian".to_owned()],
            snapshot: Some(" ".to_owned()),
            ..ModeFlags::default()
        };
        assert_eq!(
            resolve(&flags, no_vars).unwrap().mode,
            Mode::Full {
                syncers: vec!["debian".to_owned()],
                exclude: Vec::new(),
            }
        );
        let vars = |n: &str| match n {
            "MIRRORER_SYNCERS" => Some(" , ".to_owned()),
            "MIRRORER_SNAPSHOT" | "MIRRORER_PUBLISH_ALL" => Some(String::new()),
            _ => None,
        };
        assert_eq!(
            resolve(&ModeFlags::default(), vars).unwrap().mode,
            Mode::Full {
                syncers: Vec::new(),
                exclude: Vec::new(),
            }
        );
    }

    #[test]
    fn bad_boolean_variable_is_named() {
        let vars = |n: &str| (n == "MIRRORER_DRY_RUN").then(|| "maybe".to_owned());
        let err = resolve(&ModeFlags::default(), vars)
            .unwrap_err()
            .to_string();
        assert!(err.contains("MIRRORER_DRY_RUN"), "{err}");
    }
}
