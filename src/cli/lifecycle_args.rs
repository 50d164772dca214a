//! The clap definitions of the publication lifecycle commands (`promote`,
//! `pin`, `unpin`, `prune`) and their conversion into the plain option
//! values of [`crate::stages`].

use clap::Args;

use super::stage_args::SnapshotFlag;
use crate::stages;

/// Options of `promote`.
#[derive(Debug, Clone, Args)]
#[command(mut_arg("snapshot", |a| a.help(
    "Promote snapshot NAME [default: the one in state/current_snapshot.txt; \
     with CI=true NAME is required and must not be empty]"
)))]
pub struct PromoteArgs {
    /// `--snapshot`.
    #[command(flatten)]
    pub flag: SnapshotFlag,
}

impl PromoteArgs {
    pub(super) fn options(&self) -> stages::promote::PromoteOptions {
        stages::promote::PromoteOptions {
            snapshot: self.flag.snapshot.clone(),
        }
    }
}

/// `NAME` of `pin` and `unpin`: a valid snapshot name.
fn parse_name(s: &str) -> std::result::Result<String, String> {
    crate::domain::validate_snapshot_name(s).map(|()| s.to_owned())
}

/// Options of `pin` and `unpin`.
#[derive(Debug, Clone, Args)]
pub struct PinArgs {
    /// The snapshot of the mirror dataset.
    #[arg(value_name = "NAME", allow_hyphen_values = true, value_parser = parse_name)]
    pub snapshot: String,
}

impl PinArgs {
    pub(super) fn options(&self, pin: bool) -> stages::pin::PinOptions {
        stages::pin::PinOptions {
            snapshot: self.snapshot.clone(),
            pin,
        }
    }
}

/// Options of `prune`.
#[derive(Debug, Clone, Args)]
pub struct PruneArgs {
    /// Destroy more snapshots than retention.max_prune_per_run allows.
    #[arg(long)]
    pub force: bool,
}

impl PruneArgs {
    pub(super) fn options(&self) -> stages::prune::PruneOptions {
        stages::prune::PruneOptions { force: self.force }
    }
}
