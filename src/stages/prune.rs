//! `mirrorer prune [--force]` (docs/stages.md, "prune"): retention of the
//! ZFS snapshots and their publications, with protections.
//!
//! Without a `retention` section nothing is pruned (`prune_no_retention`,
//! exit 0). Otherwise:
//!
//! 1. **Plan.** The snapshots are `zfs list`'s of the dataset. Protected,
//!    whatever the policy (the first that applies is reported):
//!    `promoted` (`state/promoted.txt`), `served_by_current` (the target of
//!    `<workdir>/repo/current`), `current_snapshot` (`state/current_snapshot.txt`),
//!    `newest_verified` (the newest snapshot whose `verify.json` is ok),
//!    `keep_list` (`retention.keep`), `zfs_hold` (any ZFS user hold, e.g.
//!    `mirrorer pin`'s: `zfs get userrefs` above 0), and `not_made_by_mirrorer` (names that are not
//!    `YYYYmmdd-HHMMSS`). The rest is decided by [`crate::retention::plan`].
//!    One line per snapshot, oldest first: `prune_keep snapshot= why=` or
//!    `prune_destroy snapshot= why=no_rule`.
//! 2. **Guard.** More than `retention.max_prune_per_run` to destroy: exit 1
//!    (`--dry-run` included) unless `--force`.
//! 3. **Journal.** The names to destroy are written to
//!    `state/prune_journal.txt` first; a run killed in the middle leaves
//!    it, and the next `prune` finishes those names (that are not
//!    protected by then) before anything else, even the ones ZFS no longer
//!    lists (their replica snapshot may still exist).
//! 4. **Per snapshot, oldest first**, each step safe to repeat: remove
//!    `<workdir>/repo/snapshots/<snap>` locally, then on the replica (`rm
//!    -rf` over ssh), then `<workdir>/metadata/snapshots/<snap>/`, then
//!    `zfs destroy -- <dataset>@<snap>` (only if zfs still lists it), then
//!    on the replica `zfs destroy -- <replica_dataset>@<snap>` over ssh,
//!    only if the replica lists it (through `sudo` unless `ssh_user` is
//!    root, as syncoid does).
//! 5. **Inventory.** `metadata/inventory.json` is rewritten
//!    ([`super::publish_inventory::inventory_step`]) and the journal
//!    removed.
//!
//! The replica steps run when remote is in effect and `retention.replica`
//! is true. The replica's snapshot is destroyed with `zfs destroy` over
//! ssh, not with `syncoid --delete-target-snapshots`: syncoid would destroy
//! every replica snapshot the source no longer has at the next `replicate`,
//! including ones pinned or made by others on the replica, and only then;
//! one named `zfs destroy` per pruned snapshot keeps the replica in step
//! with this plan and its protections, and can be repeated after a crash.
//!
//! `--dry-run`: the plan, the guard and every step are logged; nothing
//! changes.

use std::collections::BTreeMap;

use super::lifecycle::{self, Replica, failed, sh_quote};
use super::{Options, Plan, StageContext, StageDef, Step, run_stage};
use crate::backends::zfs;
use crate::config::Retention;
use crate::domain::validate_snapshot_name;
use crate::error::Result;
use crate::process::Tool;
use crate::retention::{self, Action};

/// The journal of the names being destroyed: `<workdir>/state/prune_journal.txt`.
pub const JOURNAL_FILE: &str = "prune_journal.txt";

/// The largest journal read, in bytes.
const MAX_JOURNAL_BYTES: u64 = 1024 * 1024;

/// How many snapshots one `zfs get userrefs` call names.
const HOLDS_CHUNK: usize = 100;

/// Options of `prune`.
#[derive(Debug, Clone, Default)]
pub struct PruneOptions {
    /// `--force`: destroy more than `max_prune_per_run`.
    pub force: bool,
}

/// Runs the command.
///
/// # Errors
/// The guard (exit 1 without `--force`), zfs/ssh failures (exit 1); the
/// runner's errors.
pub fn run(options: &Options, args: &PruneOptions) -> Result<()> {
    let def = StageDef::exclusive("prune");
    run_stage(
        options,
        def,
        |ctx| {
            let mut tools = Vec::new();
            if let Some(r) = &ctx.config.retention {
                tools.push(Tool::Zfs);
                if r.replica && ctx.remote_in_effect() {
                    tools.push(Tool::Ssh);
                }
            }
            tools
        },
        |ctx, exec| match &ctx.config.retention {
            None => {
                tracing::info!("prune_no_retention");
                Ok(())
            }
            Some(retention) => {
                let plan = build(ctx, retention, args)?;
                exec.execute(&plan)
            }
        },
    )
}

/// The protections of `names` (module docs), first one wins.
fn protections(
    ctx: &StageContext,
    retention: &Retention,
    names: &[String],
) -> Result<BTreeMap<String, String>> {
    let config = &ctx.config;
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    let mut protect = |name: Option<String>, why: &str| {
        if let Some(name) = name {
            out.entry(name).or_insert_with(|| why.to_owned());
        }
    };
    protect(lifecycle::promoted(config)?, "promoted");
    let served = std::fs::read_link(config.mirror.repo_dir().join(lifecycle::CURRENT_LINK))
        .ok()
        .and_then(|t| {
            t.strip_prefix("snapshots")
                .ok()
                .map(|s| s.to_string_lossy().into_owned())
        });
    protect(served, "served_by_current");
    protect(ctx.state().current_snapshot()?, "current_snapshot");
    let mut dated: Vec<&String> = names
        .iter()
        .filter(|n| retention::parse_name(n).is_some())
        .collect();
    dated.sort();
    let newest_ok = dated
        .iter()
        .rev()
        .find(|n| lifecycle::verify_verdict(config, n) == lifecycle::Verdict::Ok);
    protect(newest_ok.map(|n| (*n).clone()), "newest_verified");
    for name in &retention.keep {
        protect(Some(name.clone()), "keep_list");
    }
    let dataset = &config.mirror.zfs_mirror_dataset;
    let owned: Vec<String> = dated.iter().map(|n| (*n).clone()).collect();
    for chunk in owned.chunks(HOLDS_CHUNK) {
        for name in zfs::held_snapshots(&ctx.tools, dataset, chunk)? {
            protect(Some(name), "zfs_hold");
        }
    }
    Ok(out)
}

/// The names of an unfinished run (the journal), valid ones only.
fn journal(ctx: &StageContext) -> Result<Vec<String>> {
    let path = ctx.config.mirror.state_dir().join(JOURNAL_FILE);
    let bytes = crate::state::files::read_regular(&path, MAX_JOURNAL_BYTES)
        .map_err(crate::error::Error::from)?;
    Ok(bytes
        .map(|b| {
            String::from_utf8_lossy(&b)
                .lines()
                .map(str::trim)
                .filter(|l| validate_snapshot_name(l).is_ok())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default())
}

fn build(ctx: &StageContext, retention: &Retention, args: &PruneOptions) -> Result<Plan> {
    let config = &ctx.config;
    let repo = config.mirror.repo_dir();
    super::require_real_dir(&repo, "the publication root")?;
    super::require_real_dir(&config.mirror.metadata_dir(), "the metadata root")?;
    // The trees are removed below these: never through a symlink.
    super::require_real_dir(&repo.join("snapshots"), "the published snapshots directory")?;
    super::require_real_dir(
        &config.mirror.metadata_dir().join("snapshots"),
        "the snapshot metadata directory",
    )?;
    let replica = if retention.replica {
        lifecycle::replica(ctx)?
    } else {
        None
    };
    let dataset = &config.mirror.zfs_mirror_dataset;
    let names = zfs::list_snapshots(&ctx.tools, dataset)?;
    let protected = protections(ctx, retention, &names)?;
    let decisions = retention::plan(&names, &retention.policy, &protected);
    let mut destroy = Vec::new();
    for d in &decisions {
        match d.action {
            Action::Keep => tracing::info!(snapshot = %d.name, why = %d.why, "prune_keep"),
            Action::Destroy => {
                tracing::info!(snapshot = %d.name, why = %d.why, "prune_destroy");
                destroy.push(d.name.clone());
            }
        }
    }
    // An unfinished run's names come first (oldest first among them).
    let mut pending = journal(ctx)?;
    let had_journal =
        std::fs::symlink_metadata(ctx.config.mirror.state_dir().join(JOURNAL_FILE)).is_ok();
    pending.retain(|n| !destroy.contains(n));
    pending.retain(|n| match protected.get(n) {
        Some(why) => {
            tracing::warn!(snapshot = %n, why = %why, "prune_pending_now_protected");
            false
        }
        None => {
            tracing::info!(snapshot = %n, why = "unfinished_run", "prune_destroy");
            true
        }
    });
    pending.sort();
    pending.dedup();
    let all: Vec<String> = pending.into_iter().chain(destroy).collect();
    let limit = retention.max_prune_per_run;
    tracing::info!(
        destroy = all.len(),
        keep = decisions.len().saturating_sub(all.len()),
        max_prune_per_run = limit,
        force = args.force,
        "prune_plan"
    );
    if all.len() as u64 > limit && !args.force {
        return Err(failed(format!(
            "prune would destroy {} snapshots, more than retention.max_prune_per_run ({limit}) in {}; check the plan above and run `mirrorer prune --force` to proceed",
            all.len(),
            config.path.display()
        )));
    }
    let mut plan = Plan::new();
    let journal_path = config.mirror.state_dir().join(JOURNAL_FILE);
    if all.is_empty() {
        // A journal whose names are all protected by now is done with.
        if had_journal {
            plan.push(Step::RemoveFile(journal_path));
        }
        return Ok(plan);
    }
    plan.push(Step::Write {
        path: journal_path.clone(),
        contents: all
            .iter()
            .map(|n| format!("{n}\n"))
            .collect::<String>()
            .into_bytes(),
        mode: 0o644,
    });
    for snap in &all {
        steps_for(ctx, &mut plan, replica.as_ref(), &names, snap);
    }
    let (step, _) = super::publish_inventory::inventory_step(config, &all)?;
    plan.push(step);
    plan.push(Step::RemoveFile(journal_path));
    Ok(plan)
}

/// The steps that remove `snap` everywhere (module docs, step 4).
fn steps_for(
    ctx: &StageContext,
    plan: &mut Plan,
    replica: Option<&Replica>,
    listed: &[String],
    snap: &str,
) {
    let config = &ctx.config;
    plan.push(Step::RemoveDirAll(lifecycle::published_dir(config, snap)));
    if let Some(r) = replica {
        let tree = lifecycle::published_dir(config, snap);
        plan.push(Step::Run(lifecycle::ssh_cmd(
            ctx,
            r,
            "remove the published snapshot tree on the replica",
            format!("rm -rf -- {}", sh_quote(&tree.to_string_lossy())),
        )));
    }
    plan.push(Step::RemoveDirAll(lifecycle::metadata_dir(config, snap)));
    if listed.iter().any(|n| n == snap) {
        plan.push(Step::Run(zfs::destroy_cmd(
            &ctx.tools,
            &config.mirror.zfs_mirror_dataset,
            snap,
        )));
    }
    if let Some(r) = replica {
        let target = sh_quote(&format!("{}@{snap}", config.replication.replica_dataset));
        let zfs = if r.user == "root" { "zfs" } else { "sudo zfs" };
        plan.push(Step::Run(lifecycle::ssh_cmd(
            ctx,
            r,
            "destroy the snapshot on the replica",
            format!(
                "if {zfs} list -H -o name -t snapshot -- {target} >/dev/null 2>&1; then {zfs} destroy -- {target}; fi"
            ),
        )));
    }
}
