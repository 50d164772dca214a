//! `mirrorer publish-snapshot [--snapshot NAME | --all]` (docs/stages.md,
//! "publish-snapshot").
//!
//! Selection: `--all`: every ZFS snapshot of the dataset (`zfs list -t
//! snapshot -o name -H`, lines starting `<dataset>@`; runs under `--dry-run`
//! too); `--snapshot NAME`; else `state/current_snapshot.txt`. Every name is
//! checked like a `--snapshot` value ([`validate_snapshot_name`]): a bad
//! `--snapshot` is a usage error (exit 2), a bad current snapshot an error,
//! and a ZFS snapshot with such a name (made by another tool) is left out
//! of `--all` with a warning `publish_snapshot_name_invalid`. An empty
//! selection and an empty `repo.paths` are errors.
//!
//! Plan:
//! 1. a scratch directory `<tmp>/mirrorer-publish-<pid>-<n>/`, removed at
//!    the end (those left by killed runs are removed first,
//!    [`super::scratch`]), holding `snapshots/<snap>/<public_prefix>` symlinks to
//!    `<zfs_mirror_dir>/.zfs/snapshot/<snap>/<source_base>/<source_name>`
//!    for every mapping whose source exists. A snapshot whose directory is
//!    missing is a warning (`publish_snapshot_source_missing`) and is
//!    skipped; a missing `source_base` is skipped silently (DEBUG
//!    `publish_source_base_missing`); a missing source is a warning
//!    (`publish_source_path_missing`). A snapshot that holds none of the
//!    sources is never published (it would be an empty directory, and
//!    `latest` in the inventory): a warning `publish_snapshot_empty` and it
//!    is skipped, as in mirrorer 0.1.0. If no selected snapshot is left,
//!    the stage fails (exit 1) and publishes nothing: with `--all` that
//!    also keeps an unmounted dataset from wiping `<workdir>/repo`. Links
//!    are never created outside the scratch directory; a public prefix
//!    nested in another (`a` and `a/b`) is an error naming both.
//! 2. one `rsync --archive --delete --links --chmod=D755,F644 --mkpath
//!    --relative --no-implied-dirs` of every staged `snapshots/<snap>/` to
//!    `<workdir>/repo/snapshots/<snap>/`; with `--all` then `rsync --dirs
//!    --delete --existing --ignore-existing` of `snapshots/` removes the
//!    published snapshots that ZFS no longer has. An existing
//!    `<workdir>/repo/snapshots` keeps its mode and owner on both sides
//!    (see [`crate::backends::rsync`]).
//! 3. When remote is in effect (not skip_remote, `replica_host` set;
//!    `ssh_user` required) the same to
//!    `<ssh_user>@<replica_host>:<workdir>/repo/...`, through `-e '<tools.ssh>
//!    <replication.ssh_options...>'`, or through `RSYNC_RSH` when that is
//!    set and neither `tools.ssh` nor `ssh_options` is configured
//!    ([`rsync::remote_shell`]).
//!
//! `<workdir>/repo` must be a real directory (or missing): a symlink there
//! is refused before anything runs, so `rsync --delete` never works through
//! it.

use std::path::Path;

use super::{Executor, Options, Plan, StageContext, StageDef, Step, failed_with, run_stage};
use crate::backends::{rsync, zfs};
use crate::config::RepoPath;
use crate::domain::validate_snapshot_name;
use crate::error::{Error, Result};
use crate::process::Tool;
use crate::state::LockMode;

/// Options of `publish-snapshot`: which snapshots to publish (at most one
/// of the two; neither: the current snapshot).
#[derive(Debug, Clone, Default)]
pub struct PublishSnapshotOptions {
    /// Publish this snapshot (checked by the CLI, and again here).
    pub snapshot: Option<String>,
    /// Publish every ZFS snapshot of the dataset (the published tree becomes
    /// exactly that set).
    pub all: bool,
    /// Publish snapshots whose verify report is missing or failed (the
    /// verification gate, [`super::verify`]), with a warning each.
    pub unverified: bool,
}

/// Checks that no public prefix equals or lies inside another (`a`, `a/b`):
/// the inner link would have to be created through the outer one.
///
/// # Errors
/// A message naming both mappings.
pub fn check_prefixes(paths: &[RepoPath]) -> std::result::Result<(), String> {
    // Sorted by components, every path that starts with `p` comes right
    // after `p`, so comparing neighbours finds every clash in n log n.
    let mut order: Vec<(Vec<std::path::Component<'_>>, usize)> = paths
        .iter()
        .enumerate()
        .map(|(i, p)| (Path::new(&p.public_prefix).components().collect(), i))
        .collect();
    order.sort();
    for pair in order.windows(2) {
        let ((pa, ia), (pb, ib)) = (&pair[0], &pair[1]);
        if pb.starts_with(pa) {
            let (a, b) = (&paths[*ia.min(ib)], &paths[*ia.max(ib)]);
            return Err(format!(
                "repo.paths: public prefix {:?} ({}/{}) and {:?} ({}/{}) are nested or equal; each public prefix must be its own entry",
                a.public_prefix,
                a.source_base,
                a.source_name,
                b.public_prefix,
                b.source_base,
                b.source_name
            ));
        }
    }
    Ok(())
}

/// The verification gate: a snapshot is published only when
/// `<metadata>/snapshots/<snap>/verify.json` exists with `status: ok`.
/// `--unverified`: published anyway (warning `publish_snapshot_unverified`).
/// `--all`: an unverified snapshot already published stays; one not yet
/// published is skipped (warning `publish_snapshot_skipped_unverified`).
/// Otherwise an unverified snapshot is an error naming the report and its
/// first problems.
fn gate(
    ctx: &StageContext,
    args: &PublishSnapshotOptions,
    names: Vec<String>,
) -> Result<Vec<String>> {
    let metadata = ctx.config.mirror.metadata_dir();
    let published = ctx.config.mirror.repo_dir().join("snapshots");
    let mut out = Vec::new();
    for snap in names {
        let Some(why) = super::verify::unverified_reason(&metadata, &snap) else {
            out.push(snap);
            continue;
        };
        if args.unverified {
            tracing::warn!(snapshot = %snap, reason = %why, "publish_snapshot_unverified");
            out.push(snap);
        } else if args.all {
            if published.join(&snap).is_dir() {
                out.push(snap);
            } else {
                tracing::warn!(snapshot = %snap, reason = %why, "publish_snapshot_skipped_unverified");
            }
        } else {
            return Err(failed_with(format!(
                "refusing to publish snapshot {snap}: {why}; run `mirrorer verify --snapshot {snap}` first, or pass --unverified"
            )));
        }
    }
    Ok(out)
}

/// The trees a snapshot exposes through `repo.paths`: `(public_prefix,
/// <snap_root>/<source_base>/<source_name>)` for every mapping whose source
/// exists, in config order. A missing `source_base` is skipped silently
/// (DEBUG `publish_source_base_missing`), a missing source with a warning
/// (`publish_source_path_missing`). `snap_root` is
/// `<zfs_mirror_dir>/.zfs/snapshot/<snap>`. Shared with `verify`, which
/// checks exactly the trees publish-snapshot would expose.
pub fn mapped_sources(
    paths: &[RepoPath],
    snap_root: &Path,
    snap: &str,
) -> Vec<(String, std::path::PathBuf)> {
    let mut out = Vec::new();
    for m in paths {
        let base = snap_root.join(&m.source_base);
        if !base.is_dir() {
            tracing::debug!(snapshot = %snap, path = %base.display(), "publish_source_base_missing");
            continue;
        }
        let source = base.join(&m.source_name);
        if std::fs::symlink_metadata(&source).is_err() {
            tracing::warn!(snapshot = %snap, source = %source.display(), prefix = %m.public_prefix, "publish_source_path_missing");
            continue;
        }
        out.push((m.public_prefix.clone(), source));
    }
    out
}

fn select(ctx: &StageContext, args: &PublishSnapshotOptions) -> Result<Vec<String>> {
    let names = if args.all {
        let dataset = &ctx.config.mirror.zfs_mirror_dataset;
        let names = zfs::list_snapshots(&ctx.tools, dataset)?;
        tracing::info!(dataset = %dataset, count = names.len(), "zfs_snapshots_listed");
        names
    } else if let Some(name) = &args.snapshot {
        vec![name.clone()]
    } else {
        ctx.state().current_snapshot()?.into_iter().collect()
    };
    let mut names = names;
    if args.all {
        // Snapshots made by other tools may have names we cannot publish
        // safely; they are left out, not fatal.
        names.retain(|name| match validate_snapshot_name(name) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(snapshot = %name, error = %e, "publish_snapshot_name_invalid");
                false
            }
        });
    }
    for name in &names {
        validate_snapshot_name(name).map_err(|e| {
            if args.snapshot.is_some() {
                Error::Usage(format!("--snapshot: {e}"))
            } else {
                failed_with(format!(
                    "invalid snapshot name in {}: {e}",
                    ctx.state().current_snapshot_path().display()
                ))
            }
        })?;
    }
    if names.is_empty() {
        let why = if args.all {
            format!(
                "zfs lists no snapshot of dataset {}",
                ctx.config.mirror.zfs_mirror_dataset
            )
        } else {
            format!(
                "no --snapshot given and {} is missing or empty",
                ctx.state().current_snapshot_path().display()
            )
        };
        return Err(failed_with(format!(
            "no snapshots selected for publication: {why}"
        )));
    }
    Ok(names)
}

/// Runs the stage.
///
/// # Errors
/// Empty `repo.paths` or selection, nested prefixes, missing `ssh_user`,
/// rsync failing (exit 1); a bad `--snapshot` (exit 2); the runner's errors.
pub fn run(options: &Options, args: &PublishSnapshotOptions) -> Result<()> {
    let def = StageDef {
        name: "publish-snapshot",
        lock: LockMode::Exclusive,
    };
    run_stage(
        options,
        def,
        |ctx| {
            let mut tools = vec![Tool::Rsync];
            if args.all {
                tools.push(Tool::Zfs);
            }
            if ctx.remote_in_effect() && remote_shell(ctx).is_some() {
                tools.push(Tool::Ssh);
            }
            tools
        },
        |ctx, exec| body(ctx, exec, args),
    )
}

/// The `-e` value of the remote rsync ([`rsync::remote_shell`]).
fn remote_shell(ctx: &StageContext) -> Option<String> {
    let rsync_rsh = std::env::var("RSYNC_RSH").ok();
    rsync::remote_shell(
        &ctx.tools,
        &ctx.config.replication.ssh_options,
        rsync_rsh.as_deref(),
    )
}

fn body(ctx: &StageContext, exec: &Executor, args: &PublishSnapshotOptions) -> Result<()> {
    let config = &ctx.config;
    if config.repo_paths.is_empty() {
        return Err(failed_with(format!(
            "repo.paths is empty in {}: nothing to publish",
            config.path.display()
        )));
    }
    check_prefixes(&config.repo_paths).map_err(failed_with)?;
    let remote = super::lifecycle::replica_to(ctx, "publish to")?;
    let repo = config.mirror.repo_dir();
    super::require_real_dir(&repo, "the publication root")?;
    let names = gate(ctx, args, select(ctx, args)?)?;

    if !ctx.dry_run {
        super::scratch::remove_stale(&std::env::temp_dir());
    }
    let scratch = super::scratch::scratch_path();
    let mut plan = Plan::new();
    plan.push(Step::ScratchDir(scratch.clone()));
    plan.push(Step::CreateDir(scratch.join("snapshots")));
    let mut staged = Vec::new();
    for snap in &names {
        let snap_root = config
            .mirror
            .zfs_mirror_dir
            .join(".zfs/snapshot")
            .join(snap);
        if !snap_root.is_dir() {
            tracing::warn!(snapshot = %snap, path = %snap_root.display(), "publish_snapshot_source_missing");
            continue;
        }
        let mut links = Vec::new();
        let mut prefixes = Vec::new();
        for (prefix, source) in mapped_sources(&config.repo_paths, &snap_root, snap) {
            links.push(Step::Symlink {
                root: scratch.clone(),
                link: Path::new("snapshots").join(snap).join(&prefix),
                target: source,
            });
            prefixes.push(prefix);
        }
        if links.is_empty() {
            tracing::warn!(snapshot = %snap, path = %snap_root.display(), "publish_snapshot_empty");
            continue;
        }
        plan.push(Step::CreateDir(scratch.join("snapshots").join(snap)));
        plan.steps.extend(links);
        tracing::info!(snapshot = %snap, prefixes = %prefixes.join(","), "publish_snapshot_staged");
        staged.push(snap.clone());
    }
    if staged.is_empty() {
        let root = config.mirror.zfs_mirror_dir.join(".zfs/snapshot");
        let refusing = if args.all {
            "; refusing to replace the published tree with an empty one (is the dataset mounted?)"
        } else {
            ""
        };
        return Err(failed_with(format!(
            "nothing to publish: none of the selected snapshots ({}) has a directory under {} holding a source of repo.paths{refusing}",
            names.join(", "),
            root.display()
        )));
    }

    let shell = remote_shell(ctx);
    let mut dests = vec![rsync::Dest::Local(&repo)];
    if let Some(super::lifecycle::Replica { user, host }) = &remote {
        dests.push(rsync::Dest::Remote {
            user,
            host,
            path: &repo,
            shell: shell.as_deref(),
        });
    }
    for dest in &dests {
        plan.push(Step::Run(rsync::publish_cmd(
            &ctx.tools, &scratch, &staged, dest,
        )));
        if args.all {
            plan.push(Step::Run(rsync::prune_cmd(&ctx.tools, &scratch, dest)));
        }
    }
    if remote.is_none() {
        tracing::info!(reason = ctx.remote_skip_reason(), "publish_remote_skipped");
    }
    exec.execute(&plan)?;
    tracing::info!(
        snapshots = %staged.join(","),
        publication_root = %repo.display(),
        remote = remote.as_ref().map(|r| r.host.as_str()).unwrap_or(""),
        all = args.all,
        dry_run = ctx.dry_run,
        "publish_snapshots_completed"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rp(prefix: &str) -> RepoPath {
        RepoPath {
            source_base: "b".to_owned(),
            source_name: prefix.replace('/', "_"),
            public_prefix: prefix.to_owned(),
        }
    }

    #[test]
    fn nested_prefixes_are_refused() {
        assert!(check_prefixes(&[rp("debian"), rp("ubuntu")]).is_ok());
        assert!(check_prefixes(&[rp("apt/debian"), rp("apt/ubuntu")]).is_ok());
        let err = check_prefixes(&[rp("debian"), rp("debian/security")]).unwrap_err();
        assert!(
            err.contains("\"debian\"") && err.contains("\"debian/security\""),
            "{err}"
        );
        assert!(check_prefixes(&[rp("debian-x"), rp("debian")]).is_ok());
    }
}
