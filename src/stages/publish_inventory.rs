//! `mirrorer publish-inventory` (docs/stages.md): writes
//! `<workdir>/metadata/inventory.json` from `<workdir>/repo`
//! ([`crate::inventory`]), atomically, mode 0644. Both `repo/` and
//! `metadata/` must be real directories (or missing), not symlinks.

use super::{Options, Plan, StageDef, Step, run_stage};
use crate::error::{Error, Result};
use crate::inventory;
use crate::state::LockMode;

/// The file name of the inventory in the metadata directory.
pub const INVENTORY_FILE: &str = "inventory.json";

/// Runs the stage.
///
/// # Errors
/// An unreadable published tree or a failed write (exit 1); the runner's
/// errors.
pub fn run(options: &Options) -> Result<()> {
    let def = StageDef {
        name: "publish-inventory",
        lock: LockMode::Exclusive,
    };
    run_stage(
        options,
        def,
        |_| Vec::new(),
        |ctx, exec| {
            let root = ctx.config.mirror.repo_dir();
            super::require_real_dir(&root, "the publication root")?;
            super::require_real_dir(&ctx.config.mirror.metadata_dir(), "the metadata root")?;
            let inv = inventory::build(&root).map_err(|e| Error::Failed(e.into()))?;
            let text = inventory::render(&inv).map_err(|e| Error::Failed(e.into()))?;
            let path = ctx.config.mirror.metadata_dir().join(INVENTORY_FILE);
            let mut plan = Plan::new();
            plan.push(Step::Write {
                path: path.clone(),
                contents: text.into_bytes(),
                mode: 0o644,
            });
            exec.execute(&plan)?;
            tracing::info!(
                path = %path.display(),
                snapshots_count = inv.prefixes_by_snapshot.len(),
                latest = %inv.latest.as_deref().unwrap_or(""),
                dry_run = ctx.dry_run,
                "inventory_written"
            );
            Ok(())
        },
    )
}
