//! `mirrorer replicate` (hidden alias `replication`; docs/stages.md,
//! "replicate").
//!
//! Skipped, with success, when skip_remote is in effect
//! (`replication_skipped_by_flag source=flag|config`) or no `replica_host`
//! is set (`replication_skipped_no_host`). Otherwise `ssh_user` is required
//! and the plan is one command: `syncoid --sshkey <ssh_key> <ssh flags>
//! --no-sync-snap --recursive --force-delete -- <dataset>
//! <ssh_user>@<replica_host>:<replica_dataset>`, where the ssh flags come
//! from `replication.ssh_options` ([`crate::backends::ssh::syncoid_args`]);
//! an `-i` there replaces `ssh_key`. syncoid pastes the key path into a
//! shell command, so a key path with a blank or another shell character is
//! an error naming `replication.ssh_key`. `replica_dataset` defaults to
//! `<dataset>`. Every line syncoid prints (what it sends, its `WARN:` lines
//! such as a missing resume feature, its fallbacks) is logged at INFO as
//! `syncoid_output stream=stdout|stderr line=...`; only syncoid's exit code
//! decides success.

use super::{Options, Plan, StageDef, Step, run_stage};
use crate::backends::{ssh, syncoid};
use crate::error::{Error, Result};
use crate::process::{Stream, Tool};

/// Runs the stage.
///
/// # Errors
/// Missing `ssh_user`, syncoid failing (exit 1); the runner's errors.
pub fn run(options: &Options) -> Result<()> {
    let def = StageDef::exclusive("replicate");
    run_stage(
        options,
        def,
        |ctx| ctx.remote_tools(&[Tool::Syncoid]),
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
            let failed = |what: &str, why: String| {
                Error::Failed(anyhow::anyhow!(
                    "{what} in {}: {why}",
                    ctx.config.path.display()
                ))
            };
            let ssh_opts = ssh::syncoid_args(&r.ssh_options)
                .map_err(|why| failed("replication.ssh_options", why))?;
            let mut args = Vec::new();
            if !ssh_opts.has_key {
                let key = r.ssh_key.to_string_lossy().into_owned();
                args = ssh::syncoid_args(&["-i".to_owned(), key])
                    .map_err(|why| failed("replication.ssh_key", why))?
                    .args;
            }
            args.extend(ssh_opts.args);
            let dataset = &ctx.config.mirror.zfs_mirror_dataset;
            let mut plan = Plan::new();
            plan.push(Step::Run(
                syncoid::replicate_cmd(&ctx.tools, &args, dataset, user, host, &r.replica_dataset)
                    .on_line(|stream: Stream, line: &str| {
                        let stream = match stream {
                            Stream::Stdout => "stdout",
                            Stream::Stderr => "stderr",
                        };
                        tracing::info!(stream, line, "syncoid_output");
                    }),
            ));
            exec.execute(&plan)?;
            exec.note_status(crate::status::Note::Replica {
                snapshot: ctx.state().current_snapshot().ok().flatten(),
                host: host.to_owned(),
            });
            tracing::info!(dataset = %dataset, host = host, replica_dataset = %r.replica_dataset, dry_run = ctx.dry_run, "zfs_replication_completed");
            Ok(())
        },
    )
}
