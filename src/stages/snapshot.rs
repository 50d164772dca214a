//! `mirrorer snapshot [--dotenv FILE]` (docs/stages.md, "snapshot").
//!
//! Name = local time `%Y%m%d-%H%M%S`. Plan: `zfs snapshot
//! <dataset>@<name>`, then `state/current_snapshot.txt` (the name and a
//! newline). With `--dotenv FILE`, or with `CI=true` by default
//! [`crate::domain::SNAPSHOT_DOTENV`] (`mirrorer-snapshot.env`),
//! also `MIRRORER_SNAPSHOT=<name>\n` to FILE, for GitLab's
//! `artifacts:reports:dotenv`.
//!
//! If the state write fails after `zfs snapshot` succeeded (a full disk),
//! the error and the ERROR event `snapshot_not_recorded snapshot=<ds>@<name>`
//! name the snapshot that now exists unrecorded, and how to recover.
//!
//! Under `--dry-run` the zfs command and the state write are only logged,
//! but the dotenv file IS written, with the planned name (event
//! `snapshot_dotenv_written dry_run=true`): it is a job artifact in the job's
//! directory, not mirror state, and the later jobs of a dry-run child
//! pipeline receive `--snapshot "$MIRRORER_SNAPSHOT"`, which must be a
//! valid name for them to show their own plans.

use std::path::PathBuf;

use super::{Options, Plan, StageDef, Step, run_stage};
use crate::backends::zfs;
use crate::domain;
use crate::error::{Error, Result};
use crate::process::Tool;

/// Options of `snapshot`.
#[derive(Debug, Clone, Default)]
pub struct SnapshotOptions {
    /// Also write the dotenv report ([`domain::snapshot_dotenv`]) to this
    /// file; `None`: [`domain::SNAPSHOT_DOTENV`] with `CI=true`, else none.
    pub dotenv: Option<PathBuf>,
}

/// The error (and ERROR event `snapshot_not_recorded`) for a snapshot that
/// zfs made but whose name could not be written to
/// `state/current_snapshot.txt`: it names the snapshot and how to recover.
fn not_recorded(ctx: &super::StageContext, snapshot: &str, name: &str, e: Error) -> Error {
    let path = ctx.state().current_snapshot_path();
    tracing::error!(snapshot = %snapshot, path = %path.display(), error = %e, "snapshot_not_recorded");
    match e {
        Error::Failed(cause) => Error::Failed(cause.context(format!(
            "ZFS snapshot {snapshot} was created but is not recorded in {}: free space, then write \"{name}\" into it (or pass --snapshot {name} to the later stages), or destroy the snapshot",
            path.display()
        ))),
        other => other,
    }
}

/// Runs the stage.
///
/// # Errors
/// zfs failing, state or dotenv writes failing (exit 1); the runner's errors.
pub fn run(options: &Options, args: &SnapshotOptions) -> Result<()> {
    let def = StageDef::exclusive("snapshot");
    run_stage(
        options,
        def,
        |_| vec![Tool::Zfs],
        |ctx, exec| {
            let name = domain::snapshot_name(chrono::Local::now());
            let dataset = &ctx.config.mirror.zfs_mirror_dataset;
            let dotenv = args
                .dotenv
                .clone()
                .or_else(|| ctx.ci.then(|| PathBuf::from(domain::SNAPSHOT_DOTENV)));
            let zfs_step = Step::Run(zfs::snapshot_cmd(&ctx.tools, dataset, &name));
            let write_step = Step::Write {
                path: ctx.state().current_snapshot_path(),
                contents: format!("{name}\n").into_bytes(),
                mode: 0o644,
            };
            if ctx.dry_run {
                exec.execute(&Plan {
                    steps: vec![zfs_step, write_step],
                })?;
            } else {
                exec.execute(&Plan {
                    steps: vec![zfs_step],
                })?;
                // The snapshot exists now: a failure to record it (disk
                // full) must say which one, so the operator can recover.
                exec.execute(&Plan {
                    steps: vec![write_step],
                })
                .map_err(|e| not_recorded(ctx, &format!("{dataset}@{name}"), &name, e))?;
            }
            tracing::info!(snapshot = %format!("{dataset}@{name}"), dry_run = ctx.dry_run, "zfs_snapshot_created");
            tracing::info!(snapshot = %name, path = %ctx.state().current_snapshot_path().display(), dry_run = ctx.dry_run, "current_snapshot_written");
            if let Some(path) = dotenv {
                let text = domain::snapshot_dotenv(&name);
                crate::state::write_atomic(&path, text.as_bytes(), 0o644).map_err(|e| {
                    Error::Failed(anyhow::Error::new(e).context(format!(
                        "ZFS snapshot {dataset}@{name} was created and recorded in state, but not in the dotenv file"
                    )))
                })?;
                tracing::info!(path = %path.display(), snapshot = %name, dry_run = ctx.dry_run, "snapshot_dotenv_written");
            }
            Ok(())
        },
    )
}
