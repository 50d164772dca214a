//! `mirrorer snapshot [--dotenv FILE]` (spec/stages.md, "snapshot").
//!
//! Name = local time `%Y%m%d-%H%M%S`. Plan: `zfs snapshot
//! <dataset>@<name>`, then `state/current_snapshot.txt` (the name and a
//! newline). With `--dotenv FILE`, or with `CI=true` by default
//! [`crate::domain::SNAPSHOT_DOTENV`] (`mirrorer-snapshot.env`),
//! also `MIRRORER_SNAPSHOT=<name>\n` to FILE, for GitLab's
//! `artifacts:reports:dotenv`.
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
use crate::state::LockMode;

/// Options of `snapshot`.
#[derive(Debug, Clone, Default)]
pub struct SnapshotOptions {
    /// Also write the dotenv report ([`domain::snapshot_dotenv`]) to this
    /// file; `None`: [`domain::SNAPSHOT_DOTENV`] with `CI=true`, else none.
    pub dotenv: Option<PathBuf>,
}

/// Runs the stage.
///
/// # Errors
/// zfs failing, state or dotenv writes failing (exit 1); the runner's errors.
pub fn run(options: &Options, args: &SnapshotOptions) -> Result<()> {
    let def = StageDef {
        name: "snapshot",
        lock: LockMode::Exclusive,
    };
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
            let mut plan = Plan::new();
            plan.push(Step::Run(zfs::snapshot_cmd(&ctx.tools, dataset, &name)));
            plan.push(Step::Write {
                path: ctx.state().current_snapshot_path(),
                contents: format!("{name}\n").into_bytes(),
                mode: 0o644,
            });
            exec.execute(&plan)?;
            tracing::info!(snapshot = %format!("{dataset}@{name}"), dry_run = ctx.dry_run, "zfs_snapshot_created");
            tracing::info!(snapshot = %name, path = %ctx.state().current_snapshot_path().display(), dry_run = ctx.dry_run, "current_snapshot_written");
            if let Some(path) = dotenv {
                let text = domain::snapshot_dotenv(&name);
                crate::state::write_atomic(&path, text.as_bytes(), 0o644)
                    .map_err(|e| Error::Failed(e.into()))?;
                tracing::info!(path = %path.display(), snapshot = %name, dry_run = ctx.dry_run, "snapshot_dotenv_written");
            }
            Ok(())
        },
    )
}
