//! The clap definitions of the stage subcommands' own flags, and their
//! conversion into the plain option values of [`crate::stages`].

use std::path::PathBuf;

use clap::Args;

use crate::stages;

/// `--snapshot` of a stage: a valid snapshot name
/// ([`crate::domain::validate_snapshot_name`]), or an empty (blank) value,
/// which means "not given" as in mirrorer 0.1.0 and is dropped by
/// `drop_empty_values` in `cli`; except for `promote`, which keeps it (an
/// empty value is refused in CI by the command itself).
pub(super) fn parse_snapshot_name(s: &str) -> std::result::Result<String, String> {
    if s.trim().is_empty() {
        return Ok(String::new());
    }
    crate::domain::validate_snapshot_name(s).map(|()| s.to_owned())
}

/// Options of `sync`.
#[derive(Debug, Clone, Args)]
pub struct SyncArgs {
    /// Only the syncers with this name or prefix (repeatable; default: all).
    #[arg(
        long = "syncer",
        visible_alias = "prefix",
        value_name = "NAME_OR_PREFIX",
        allow_hyphen_values = true
    )]
    pub syncers: Vec<String>,

    /// Every syncer but those with this name or prefix (repeatable; not
    /// with --syncer).
    #[arg(
        long = "exclude-syncer",
        value_name = "NAME_OR_PREFIX",
        allow_hyphen_values = true
    )]
    pub exclude_syncers: Vec<String>,
}

impl SyncArgs {
    pub(super) fn options(&self) -> stages::sync::SyncOptions {
        stages::sync::SyncOptions {
            syncers: self.syncers.clone(),
            exclude_syncers: self.exclude_syncers.clone(),
        }
    }
}

/// Options of `snapshot`.
#[derive(Debug, Clone, Args)]
pub struct SnapshotArgs {
    /// Also write `MIRRORER_SNAPSHOT=<name>` to FILE (GitLab dotenv report);
    /// default with CI=true: mirrorer-snapshot.env.
    #[arg(long, value_name = "FILE")]
    pub dotenv: Option<PathBuf>,
}

impl SnapshotArgs {
    pub(super) fn options(&self) -> stages::snapshot::SnapshotOptions {
        stages::snapshot::SnapshotOptions {
            dotenv: self.dotenv.clone(),
        }
    }
}

/// `--snapshot NAME` of `publish-snapshot`, `publish-catalog` and
/// `promote` (a valid snapshot name, or empty: `parse_snapshot_name`);
/// each words its own help (`mut_arg("snapshot", ...)` on its options).
#[derive(Debug, Clone, Args)]
pub struct SnapshotFlag {
    /// The snapshot NAME.
    #[arg(
        long,
        value_name = "NAME",
        allow_hyphen_values = true,
        value_parser = parse_snapshot_name
    )]
    pub snapshot: Option<String>,
}

/// Options of `publish-snapshot`.
#[derive(Debug, Clone, Args)]
#[command(mut_arg("snapshot", |a| a.help(
    "Publish snapshot NAME [default: the one in state/current_snapshot.txt]. \
     Not with --all; an empty NAME counts as not given"
)))]
pub struct PublishSnapshotArgs {
    /// `--snapshot`.
    #[command(flatten)]
    pub flag: SnapshotFlag,
    /// Publish every ZFS snapshot of the dataset (the published tree becomes
    /// exactly that set).
    #[arg(long)]
    pub all: bool,
    /// Publish even a snapshot whose verify.json is missing or failed (a
    /// warning per snapshot).
    #[arg(long)]
    pub unverified: bool,
}

impl PublishSnapshotArgs {
    pub(super) fn options(&self) -> stages::publish_snapshot::PublishSnapshotOptions {
        stages::publish_snapshot::PublishSnapshotOptions {
            snapshot: self.flag.snapshot.clone(),
            all: self.all,
            unverified: self.unverified,
        }
    }
}

/// Flags of `mirrorer publish-catalog`.
#[derive(Args, Debug, Clone)]
#[command(mut_arg("snapshot", |a| a.help(
    "Catalog the published snapshot NAME [default: the one in state/current_snapshot.txt]. \
     Not with --rebuild; an empty NAME counts as not given"
)))]
pub struct PublishCatalogArgs {
    /// `--snapshot`.
    #[command(flatten)]
    pub flag: SnapshotFlag,
    /// Catalog every published snapshot under WORKDIR/repo/snapshots/.
    #[arg(long)]
    pub rebuild: bool,
}

impl PublishCatalogArgs {
    pub(super) fn options(&self) -> stages::publish_catalog::PublishCatalogOptions {
        stages::publish_catalog::PublishCatalogOptions {
            snapshot: self.flag.snapshot.clone(),
            rebuild: self.rebuild,
        }
    }
}
