//! `mirrorer cleanup-state` (docs/stages.md, "cleanup-state"): run at the
//! end of a successful pipeline. Plan: remove `state/av_state/` and create
//! it empty, remove `state/current_snapshot.txt` and the legacy
//! `state/run_state.json`. Missing files are fine.

use super::{Options, Plan, Step, run_exclusive_stage};
use crate::error::Result;
use crate::state::LEGACY_RUN_STATE_FILE;

/// Runs the stage.
///
/// # Errors
/// A file or directory that cannot be removed or created (exit 1); the
/// runner's errors.
pub fn run(options: &Options) -> Result<()> {
    run_exclusive_stage(options, "cleanup-state", |ctx, exec| {
        let state = ctx.state();
        let mut plan = Plan::new();
        plan.push(Step::RemoveDirAll(state.av_state_dir()));
        plan.push(Step::CreateDir(state.av_state_dir()));
        plan.push(Step::RemoveFile(state.current_snapshot_path()));
        plan.push(Step::RemoveFile(state.path().join(LEGACY_RUN_STATE_FILE)));
        exec.execute(&plan)?;
        tracing::info!(state_root = %state.path().display(), dry_run = ctx.dry_run, "state_cleaned");
        Ok(())
    })
}
