//! `mirrorer promote [--snapshot NAME]` (docs/stages.md, "promote"): points
//! the stable path `<workdir>/repo/current` at `snapshots/<snap>`.
//!
//! 1. The snapshot: `--snapshot NAME`, else `state/current_snapshot.txt`.
//!    With `CI=true` a missing or empty `--snapshot` is refused (exit 2):
//!    a re-run `promote` job of an old pipeline (GitLab's rollback) must
//!    promote that pipeline's snapshot, never fall back to today's.
//! 2. It must be published (`<workdir>/repo/snapshots/<snap>` a real
//!    directory) and verified (`<workdir>/metadata/snapshots/<snap>/verify.json`
//!    with `"status": "ok"`, [`super::lifecycle::verify_verdict`]); else
//!    exit 1 naming why.
//! 3. Locally: a new symlink `repo/.current.tmp -> snapshots/<snap>`
//!    renamed over `repo/current` (one rename(2): a client sees the old
//!    tree or the new one, never none).
//! 4. When remote is in effect, the same on the replica through ssh
//!    ([`super::lifecycle::remote_switch_line`]; it fails if the replica
//!    has no `snapshots/<snap>` directory).
//! 5. Records the name in `state/promoted.txt` and prepends
//!    `{snapshot, promoted_at, pipeline_url, job_url}` (from
//!    `CI_PIPELINE_URL`, `CI_JOB_URL`; `null` when unset) to
//!    `metadata/promotions.json` (schema `dist-mirror.promotions.v1`, newest
//!    first, at most [`MAX_PROMOTIONS`] entries; an unreadable history is a
//!    warning `promotions_history_reset` and starts a new one).
//!
//! Under `--dry-run` the checks run and the changes are only logged.

use serde::{Deserialize, Serialize};

use super::lifecycle::{self, Verdict, failed};
use super::{Executor, Options, StageContext, StageDef, run_stage};
use crate::domain::validate_snapshot_name;
use crate::error::{Error, Result};
use crate::process::Tool;

/// The history file in the metadata directory.
pub const PROMOTIONS_FILE: &str = "promotions.json";

/// The schema of [`PROMOTIONS_FILE`].
pub const PROMOTIONS_SCHEMA: &str = "dist-mirror.promotions.v1";

/// Most entries kept in the history.
pub const MAX_PROMOTIONS: usize = 100;

/// The largest history read, in bytes.
const MAX_PROMOTIONS_BYTES: u64 = 4 * 1024 * 1024;

/// Options of `promote`.
#[derive(Debug, Clone, Default)]
pub struct PromoteOptions {
    /// `--snapshot` as given: `None` not given, `Some("")` given empty.
    pub snapshot: Option<String>,
}

/// One promotion in `promotions.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Promotion {
    /// The snapshot promoted.
    pub snapshot: String,
    /// When, UTC, `YYYY-mm-ddTHH:MM:SSZ`.
    pub promoted_at: String,
    /// `CI_PIPELINE_URL`, if set.
    pub pipeline_url: Option<String>,
    /// `CI_JOB_URL`, if set.
    pub job_url: Option<String>,
}

/// The `promotions.json` document.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Promotions {
    /// Newest first.
    pub promotions: Vec<Promotion>,
    /// [`PROMOTIONS_SCHEMA`].
    pub schema: String,
}

/// Runs the command.
///
/// # Errors
/// Exit 2 for an empty or missing `--snapshot` under CI; exit 1 for an
/// unpublished or unverified snapshot, a failed switch; the runner's errors.
pub fn run(options: &Options, args: &PromoteOptions) -> Result<()> {
    let def = StageDef::exclusive("promote");
    run_stage(
        options,
        def,
        |ctx| ctx.remote_tools(&[Tool::Ssh]),
        |ctx, exec| body(ctx, exec, args),
    )
}

fn select(ctx: &StageContext, args: &PromoteOptions) -> Result<String> {
    let given = args.snapshot.as_deref().map(str::trim);
    match given {
        Some(name) if !name.is_empty() => {
            validate_snapshot_name(name).map_err(|e| Error::Usage(format!("--snapshot: {e}")))?;
            Ok(name.to_owned())
        }
        _ if ctx.ci => Err(Error::Usage(
            "promote needs a non-empty --snapshot in CI (CI=true): a re-run job must promote its own pipeline's snapshot, not fall back to the state's current one (is MIRRORER_SNAPSHOT set by the snapshot job's dotenv report?)".to_owned(),
        )),
        _ => {
            let name = ctx.state().current_snapshot()?.ok_or_else(|| {
                failed(format!(
                    "no --snapshot given and {} is missing or empty",
                    ctx.state().current_snapshot_path().display()
                ))
            })?;
            validate_snapshot_name(&name).map_err(|e| {
                failed(format!(
                    "invalid snapshot name in {}: {e}",
                    ctx.state().current_snapshot_path().display()
                ))
            })?;
            Ok(name)
        }
    }
}

/// Checks that `snap` may be promoted (published and verified ok).
///
/// # Errors
/// Exit 1 naming why not.
pub fn check_promotable(ctx: &StageContext, snap: &str) -> Result<()> {
    let config = &ctx.config;
    if !lifecycle::is_published(config, snap) {
        return Err(failed(format!(
            "cannot promote snapshot {snap}: it is not published ({} is not a directory; was it pruned?)",
            lifecycle::published_dir(config, snap).display()
        )));
    }
    if let Verdict::Not(why) = lifecycle::verify_verdict(config, snap) {
        return Err(failed(format!("cannot promote snapshot {snap}: {why}")));
    }
    Ok(())
}

fn env_url(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The new history: `entry` first, then the old entries, at most
/// [`MAX_PROMOTIONS`].
pub fn prepend(old: Option<Promotions>, entry: Promotion) -> Promotions {
    let mut promotions = vec![entry];
    if let Some(old) = old {
        promotions.extend(old.promotions);
    }
    promotions.truncate(MAX_PROMOTIONS);
    Promotions {
        promotions,
        schema: PROMOTIONS_SCHEMA.to_owned(),
    }
}

fn read_history(path: &std::path::Path) -> Option<Promotions> {
    let bytes = match crate::state::files::read_regular(path, MAX_PROMOTIONS_BYTES) {
        Ok(b) => b?,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "promotions_history_reset");
            return None;
        }
    };
    match serde_json::from_slice::<Promotions>(&bytes) {
        Ok(h) if h.schema == PROMOTIONS_SCHEMA => Some(h),
        Ok(h) => {
            tracing::warn!(path = %path.display(), schema = %h.schema, "promotions_history_reset");
            None
        }
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "promotions_history_reset");
            None
        }
    }
}

fn body(ctx: &StageContext, exec: &Executor, args: &PromoteOptions) -> Result<()> {
    let config = &ctx.config;
    let repo = config.mirror.repo_dir();
    super::require_real_dir(&repo, "the publication root")?;
    super::require_real_dir(&config.mirror.metadata_dir(), "the metadata root")?;
    let replica = lifecycle::replica(ctx)?;
    let snap = select(ctx, args)?;
    check_promotable(ctx, &snap)?;

    let remote = replica.as_ref().map(|r| {
        lifecycle::ssh_cmd(
            ctx,
            r,
            "point current at the snapshot on the replica",
            lifecycle::remote_switch_line(&repo, &snap),
        )
    });
    let entry = Promotion {
        snapshot: snap.clone(),
        promoted_at: chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        pipeline_url: env_url("CI_PIPELINE_URL"),
        job_url: env_url("CI_JOB_URL"),
    };
    let history_path = config.mirror.metadata_dir().join(PROMOTIONS_FILE);
    let history = prepend(read_history(&history_path), entry);
    let text = crate::json::to_pretty_string(&history).map_err(|e| Error::Failed(e.into()))?;

    if exec.dry_run() {
        tracing::info!(link = %repo.join(lifecycle::CURRENT_LINK).display(), target = %format!("snapshots/{snap}"), "dry_run_symlink");
        if let Some(cmd) = &remote {
            tracing::info!(purpose = %cmd.purpose(), command = %cmd.display(), "dry_run_command");
        }
    } else {
        lifecycle::switch_current(&repo, &snap)?;
        tracing::info!(snapshot = %snap, link = %repo.join(lifecycle::CURRENT_LINK).display(), "current_switched");
        if let Some(cmd) = &remote {
            cmd.run()?;
            tracing::info!(snapshot = %snap, host = %replica.as_ref().map(|r| r.host.as_str()).unwrap_or(""), "replica_current_switched");
        }
    }
    if remote.is_none() {
        tracing::info!(reason = ctx.remote_skip_reason(), "promote_remote_skipped");
    }
    exec.write(
        &lifecycle::promoted_path(config),
        format!("{snap}\n").as_bytes(),
        0o644,
    )?;
    exec.write(&history_path, text.as_bytes(), 0o644)?;
    tracing::info!(snapshot = %snap, dry_run = ctx.dry_run, "snapshot_promoted");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: usize) -> Promotion {
        Promotion {
            snapshot: format!("s{n}"),
            promoted_at: "2026-01-01T00:00:00Z".to_owned(),
            pipeline_url: None,
            job_url: None,
        }
    }

    #[test]
    fn history_is_newest_first_and_bounded() {
        let mut h = prepend(None, entry(0));
        for n in 1..150 {
            h = prepend(Some(h), entry(n));
        }
        assert_eq!(h.promotions.len(), MAX_PROMOTIONS);
        assert_eq!(h.promotions[0].snapshot, "s149");
        assert_eq!(h.promotions[99].snapshot, "s50");
    }
}
