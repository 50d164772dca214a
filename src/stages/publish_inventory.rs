//! `mirrorer publish-inventory` (docs/stages.md): writes
//! `<workdir>/metadata/inventory.json` from `<workdir>/repo`
//! ([`crate::inventory`]), atomically, mode 0644. Both `repo/` and
//! `metadata/` must be real directories (or missing), not symlinks.

use super::{Options, StageDef, run_stage};
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
            super::require_publication_roots(&ctx.config.mirror)?;
            let root = ctx.config.mirror.repo_dir();
            let inv = inventory::build(&root).map_err(|e| Error::Failed(e.into()))?;
            let text = inventory::render(&inv).map_err(|e| Error::Failed(e.into()))?;
            let path = ctx.config.mirror.metadata_dir().join(INVENTORY_FILE);
            super::write_metadata(exec, &path, text)?;
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
