//! `mirrorer pin NAME` and `mirrorer unpin NAME` (docs/stages.md, "pin"):
//! place or release the ZFS user hold [`zfs::PIN_TAG`] (`mirrorer:pin`) on
//! `<dataset>@NAME` through the zfs backend (`zfs hold -- mirrorer:pin
//! <dataset>@NAME`, `zfs release -- ...`). A held snapshot is never pruned
//! (and zfs itself refuses to destroy it). Both are idempotent: pinning a
//! pinned snapshot or unpinning one without the hold logs
//! `snapshot_already_pinned` / `snapshot_not_pinned` and succeeds. The
//! snapshot must exist (`zfs list`; exit 1 otherwise). Only the local
//! dataset is held; the replica's copy is protected by `prune` following
//! the local decision.

use super::lifecycle::failed;
use super::{Options, Plan, StageDef, Step, run_stage};
use crate::backends::zfs;
use crate::error::Result;
use crate::process::Tool;

/// Options of `pin` and `unpin`.
#[derive(Debug, Clone)]
pub struct PinOptions {
    /// The snapshot name (checked by the CLI).
    pub snapshot: String,
    /// `true`: pin; `false`: unpin.
    pub pin: bool,
}

/// Runs `pin` or `unpin`.
///
/// # Errors
/// A snapshot zfs does not list, zfs failing (exit 1); the runner's errors.
pub fn run(options: &Options, args: &PinOptions) -> Result<()> {
    let def = StageDef::exclusive(if args.pin { "pin" } else { "unpin" });
    run_stage(
        options,
        def,
        |_| vec![Tool::Zfs],
        |ctx, exec| {
            let dataset = &ctx.config.mirror.zfs_mirror_dataset;
            let snap = &args.snapshot;
            let names = zfs::list_snapshots(&ctx.tools, dataset)?;
            if !names.contains(snap) {
                return Err(failed(format!("zfs lists no snapshot {dataset}@{snap}")));
            }
            let held = zfs::holds(&ctx.tools, dataset, std::slice::from_ref(snap))?
                .iter()
                .any(|(_, tag)| tag == zfs::PIN_TAG);
            let mut plan = Plan::new();
            match (args.pin, held) {
                (true, true) => {
                    tracing::info!(snapshot = %snap, tag = zfs::PIN_TAG, "snapshot_already_pinned")
                }
                (false, false) => {
                    tracing::info!(snapshot = %snap, tag = zfs::PIN_TAG, "snapshot_not_pinned")
                }
                (true, false) => plan.push(Step::Run(zfs::hold_cmd(
                    &ctx.tools,
                    zfs::PIN_TAG,
                    dataset,
                    snap,
                ))),
                (false, true) => plan.push(Step::Run(zfs::release_cmd(
                    &ctx.tools,
                    zfs::PIN_TAG,
                    dataset,
                    snap,
                ))),
            }
            exec.execute(&plan)?;
            if args.pin {
                tracing::info!(snapshot = %snap, dry_run = ctx.dry_run, "snapshot_pinned");
            } else {
                tracing::info!(snapshot = %snap, dry_run = ctx.dry_run, "snapshot_unpinned");
            }
            Ok(())
        },
    )
}
