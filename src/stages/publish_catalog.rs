//! `mirrorer publish-catalog [--snapshot NAME | --rebuild]` (docs/stages.md):
//! writes `<workdir>/metadata/snapshots/<snap>/repo_catalog.json`, the
//! repository catalog (formats apt, rpm, apt-rpm; docs/metadata.md) of each
//! selected published snapshot `<workdir>/repo/snapshots/<snap>`.
//!
//! Selection: `--rebuild`: every published snapshot directory (sorted by
//! name); else `--snapshot NAME`; else the current snapshot
//! (`state/current_snapshot.txt`). None: the stage fails with `no published
//! snapshots selected for catalog generation`. Each selected snapshot
//! directory must exist; that is checked for all of them before any catalog
//! is written. The shard written in each catalog is env
//! `DIST_MIRROR_REPO_CATALOG_SHARD` when set, else the catalog's default
//! (env `DIST_MIRROR_SHARD`, else the host name).
//!
//! Catalogs are built and written one snapshot at a time, so memory holds
//! at most one catalog. Each catalog warning is logged (`catalog_warning`).

use std::path::{Path, PathBuf};

use super::{Options, StageContext, failed_with, run_exclusive_stage};
use crate::catalog::{self, Format};
use crate::domain::validate_snapshot_name;
use crate::error::{Error, Result};

/// The catalog's file name inside `metadata/snapshots/<snap>/`.
pub const CATALOG_FILE: &str = "repo_catalog.json";

/// The environment variable whose value, when set, is the shard written in
/// every catalog.
pub const SHARD_VARIABLE: &str = "DIST_MIRROR_REPO_CATALOG_SHARD";

/// Options of `publish-catalog`: which published snapshots to catalog (at
/// most one of the two; neither: the current snapshot).
#[derive(Debug, Clone, Default)]
pub struct PublishCatalogOptions {
    /// Catalog this published snapshot (checked by the CLI, and again here).
    pub snapshot: Option<String>,
    /// Catalog every published snapshot under WORKDIR/repo/snapshots/.
    pub rebuild: bool,
}

/// The published snapshot directories under `snapshots_dir` (directories or
/// symlinks to directories), sorted by name; none if it does not exist.
fn published_snapshots(snapshots_dir: &Path) -> Result<Vec<String>> {
    let entries = match std::fs::read_dir(snapshots_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(Error::Failed(anyhow::Error::new(e).context(format!(
                "cannot list published snapshots in {}",
                snapshots_dir.display()
            ))));
        }
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| {
            Error::Failed(
                anyhow::Error::new(e).context(format!("cannot list {}", snapshots_dir.display())),
            )
        })?;
        if !entry.path().is_dir() {
            continue;
        }
        match entry.file_name().into_string() {
            Ok(name) if validate_snapshot_name(&name).is_ok() => names.push(name),
            Ok(name) => tracing::warn!(snapshot = %name, "publish_catalog_name_invalid"),
            Err(name) => {
                tracing::warn!(snapshot = %name.to_string_lossy(), "publish_catalog_name_invalid")
            }
        }
    }
    names.sort();
    Ok(names)
}

fn select(
    ctx: &StageContext,
    args: &PublishCatalogOptions,
    snapshots_dir: &Path,
) -> Result<Vec<String>> {
    let names = if args.rebuild {
        published_snapshots(snapshots_dir)?
    } else if let Some(name) = &args.snapshot {
        vec![name.clone()]
    } else {
        let state = ctx.state();
        let current = state
            .current_snapshot()
            .map_err(|e| Error::Failed(e.into()))?;
        if let Some(name) = &current {
            validate_snapshot_name(name).map_err(|e| {
                failed_with(format!(
                    "invalid snapshot name in {}: {e}",
                    state.current_snapshot_path().display()
                ))
            })?;
        }
        current.into_iter().collect()
    };
    if names.is_empty() {
        return Err(failed_with(
            "no published snapshots selected for catalog generation".to_owned(),
        ));
    }
    let missing: Vec<PathBuf> = names
        .iter()
        .map(|n| snapshots_dir.join(n))
        .filter(|dir| !dir.is_dir())
        .collect();
    if !missing.is_empty() {
        let list: Vec<String> = missing.iter().map(|d| d.display().to_string()).collect();
        return Err(failed_with(format!(
            "published snapshot directory not found: {} (run publish-snapshot first)",
            list.join(", ")
        )));
    }
    Ok(names)
}

/// Runs the stage.
///
/// # Errors
/// [`Error::Usage`] for an invalid `--snapshot`; [`Error::Failed`] when no
/// snapshot is selected, a snapshot directory is missing, or a catalog
/// cannot be built or written; the runner's errors.
pub fn run(options: &Options, args: &PublishCatalogOptions) -> Result<()> {
    if let Some(name) = &args.snapshot {
        validate_snapshot_name(name).map_err(|e| Error::Usage(format!("--snapshot: {e}")))?;
    }
    run_exclusive_stage(options, "publish-catalog", |ctx, exec| {
        super::require_publication_roots(&ctx.config.mirror)?;
        let snapshots_dir = ctx.config.mirror.repo_dir().join("snapshots");
        let names = select(ctx, args, &snapshots_dir)?;
        let shard = std::env::var(SHARD_VARIABLE)
            .ok()
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(catalog::default_shard);
        let metadata = ctx.config.mirror.metadata_dir().join("snapshots");
        for name in &names {
            let root = snapshots_dir.join(name);
            let catalog = catalog::build_catalog(&root, &Format::ALL, &shard)
                .map_err(|e| Error::Failed(anyhow::Error::new(e)))?;
            for w in &catalog.warnings {
                tracing::warn!(
                    snapshot = %name,
                    format = w.format,
                    prefix = %w.prefix,
                    path = %w.path,
                    warning = %w.message,
                    "catalog_warning"
                );
            }
            let text = catalog::render(&catalog).map_err(|e| Error::Failed(e.into()))?;
            let path = metadata.join(name).join(CATALOG_FILE);
            super::write_metadata(exec, &path, text)?;
            tracing::info!(
                snapshot = %name,
                path = %path.display(),
                shard = %shard,
                repositories_count = catalog.repositories.len(),
                warnings_count = catalog.warnings.len(),
                dry_run = ctx.dry_run,
                "repo_catalog_written"
            );
        }
        Ok(())
    })
}
