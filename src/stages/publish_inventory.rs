//! `mirrorer publish-inventory` (docs/stages.md): writes
//! `<workdir>/metadata/inventory.json` from `<workdir>/repo`
//! ([`crate::inventory`]), atomically, mode 0644. Both `repo/` and
//! `metadata/` must be real directories (or missing), not symlinks.

use super::{Options, Plan, Step, run_exclusive_stage};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::inventory;

/// The file name of the inventory in the metadata directory.
pub const INVENTORY_FILE: &str = "inventory.json";

/// The step that writes `<workdir>/metadata/inventory.json` from
/// `<workdir>/repo` as it is now, less the snapshots in `removed` (`prune`
/// plans the write before it removes their trees), and the inventory. Both
/// roots must be real directories (or missing).
///
/// # Errors
/// A symlinked root, an unreadable published tree (exit 1).
pub fn inventory_step(config: &Config, removed: &[String]) -> Result<(Step, inventory::Inventory)> {
    super::require_publication_roots(&config.mirror)?;
    let root = config.mirror.repo_dir();
    let mut inv = inventory::build(&root).map_err(|e| Error::Failed(e.into()))?;
    if !removed.is_empty() {
        inv.prefixes_by_snapshot
            .retain(|name, _| !removed.contains(name));
        inv.latest = inv.prefixes_by_snapshot.keys().next_back().cloned();
    }
    let text = inventory::render(&inv).map_err(|e| Error::Failed(e.into()))?;
    let step = Step::Write {
        path: config.mirror.metadata_dir().join(INVENTORY_FILE),
        contents: text.into_bytes(),
        mode: 0o644,
    };
    Ok((step, inv))
}

/// Runs the stage.
///
/// # Errors
/// An unreadable published tree or a failed write (exit 1); the runner's
/// errors.
pub fn run(options: &Options) -> Result<()> {
    run_exclusive_stage(options, "publish-inventory", |ctx, exec| {
        let (step, inv) = inventory_step(&ctx.config, &[])?;
        let path = ctx.config.mirror.metadata_dir().join(INVENTORY_FILE);
        let mut plan = Plan::new();
        plan.push(step);
        exec.execute(&plan)?;
        tracing::info!(
            path = %path.display(),
            snapshots_count = inv.prefixes_by_snapshot.len(),
            latest = %inv.latest.as_deref().unwrap_or(""),
            dry_run = ctx.dry_run,
            "inventory_written"
        );
        Ok(())
    })
}
