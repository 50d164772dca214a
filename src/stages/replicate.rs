//! `mirrorer replicate` (hidden alias `replication`; spec/stages.md,
//! "replicate").
//!
//! Skipped, with success, when skip_remote is in effect
//! (`replication_skipped_by_flag source=flag|config`) or no `replica_host`
//! is set (`replication_skipped_no_host`). Otherwise `ssh_user` is required
//! and the plan is one command: `syncoid --sshkey <ssh_key> --no-sync-snap
//! --recursive --force-delete <dataset> <ssh_user>@<replica_host>:<dataset>`.

use super::{Options, Plan, StageDef, Step, run_stage};
use crate::backends::syncoid;
use crate::error::{Error, Result};
use crate::process::Tool;
use crate::state::LockMode;

/// Runs the stage.
///
/// # Errors
/// Missing `ssh_user`, syncoid failing (exit 1); the runner's errors.
pub fn run(options: &Options) -> Result<()> {
    let def = StageDef {
        name: "replicate",
        lock: LockMode::Exclusive,
    };
    run_stage(
        options,
        def,
        |ctx| {
            if ctx.remote_in_effect() {
                vec![Tool::Syncoid]
            } else {
                Vec::new()
            }
        },
        |ctx, exec| {
            let r = &ctx.config.replication;
            if ctx.skip_remote {
                tracing::info!(
                    source = ctx.skip_remote_source,
                    "replication_skipped_by_flag"
                );
                return Ok(());
            }
            let Some(host) = r.replica_host.as_deref() else {
                tracing::info!("replication_skipped_no_host");
                return Ok(());
            };
            let user = r.ssh_user.as_deref().ok_or_else(|| {
                Error::Failed(anyhow::anyhow!(
                    "replication.ssh_user is required to replicate to replication.replica_host {host} (config {})",
                    ctx.config.path.display()
                ))
            })?;
            let dataset = &ctx.config.mirror.zfs_mirror_dataset;
            let mut plan = Plan::new();
            plan.push(Step::Run(syncoid::replicate_cmd(
                &ctx.tools, &r.ssh_key, dataset, user, host,
            )));
            exec.execute(&plan)?;
            tracing::info!(dataset = %dataset, host = host, dry_run = ctx.dry_run, "zfs_replication_completed");
            Ok(())
        },
    )
}
