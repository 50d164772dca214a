//! `mirrorer verify [--snapshot NAME]` with a config, the stage form
//! (docs/stages.md, "verify"): verifies the trees a snapshot exposes through
//! `repo.paths` (exactly those `publish-snapshot` would link,
//! [`super::publish_snapshot::mapped_sources`]) and writes
//! `<workdir>/metadata/snapshots/<snap>/verify.json` through the executor.
//!
//! - Snapshot: `--snapshot NAME`, else the current snapshot
//!   (`state/current_snapshot.txt`).
//! - The tree: a temporary directory of symlinks `<public_prefix>` ->
//!   `<zfs_mirror_dir>/.zfs/snapshot/<snap>/<source_base>/<source_name>`
//!   (read-only work, removed at the end); the catalog's rules trust these
//!   top-level links, so ids are those of the published snapshot's catalog.
//!   A snapshot in which none of the mapped sources exists fails (exit 1).
//! - Previous report: the newest snapshot name sorting before this one whose
//!   `verify.json` has `status: ok`; the shrink guard compares with it.
//! - `--deep changed` (default here): the package files that `zfs diff`
//!   lists as added or modified between the previous verified snapshot and
//!   this one are hashed; without a previous verified snapshot, every file.
//! - Exit 6 when problems were found (the report is written first).

use std::collections::HashSet;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::{Options, Plan, StageContext, StageDef, Step, failed_with, run_stage};
use crate::backends::zfs;
use crate::domain::validate_snapshot_name;
use crate::error::{Error, Result};
use crate::process::Tool;
use crate::state::LockMode;
use crate::verify::{self, Deep, Report, VerifyOptions, shrink};

/// The report's file name inside `metadata/snapshots/<snap>/`; `promote`,
/// `prune` and the publish gate read it and treat `status == "ok"` as verified.
pub const VERIFY_FILE: &str = "verify.json";

/// `none`, `changed` or `all`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeepMode {
    /// Sizes only.
    None,
    /// Files changed since the previous verified snapshot.
    #[default]
    Changed,
    /// Every file.
    All,
}

/// Options of the stage form.
#[derive(Debug, Clone, Default)]
pub struct VerifyStageOptions {
    /// The snapshot (default: the current snapshot).
    pub snapshot: Option<String>,
    /// Which package files are hashed.
    pub deep: DeepMode,
    /// Do not report shrunk repositories.
    pub allow_shrink: bool,
    /// How many percent of its packages a repository may lose (`None`:
    /// `verify.max_shrink_percent` of the config).
    pub max_shrink_percent: Option<u64>,
    /// `(prefix, keyring)` for gpgv, on top of (and winning over)
    /// `verify.keyrings` of the config.
    pub keyrings: Vec<(String, PathBuf)>,
    /// Also write a JUnit XML file here.
    pub junit: Option<PathBuf>,
}

/// The report of `snap` under `metadata_dir/snapshots`, if it exists and parses.
pub fn read_snapshot_report(metadata_dir: &Path, snap: &str) -> Option<Report> {
    let path = report_path(metadata_dir, snap);
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

/// `<metadata_dir>/snapshots/<snap>/verify.json`.
pub fn report_path(metadata_dir: &Path, snap: &str) -> PathBuf {
    metadata_dir.join("snapshots").join(snap).join(VERIFY_FILE)
}

/// Why `snap` does not count as verified (its report is missing, unreadable
/// or failed, naming the report and up to 3 problems), or `None` when its
/// `verify.json` has `status: ok`.
pub fn unverified_reason(metadata_dir: &Path, snap: &str) -> Option<String> {
    let path = report_path(metadata_dir, snap);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Some(format!("verify report {} is missing", path.display()));
        }
        Err(e) => {
            return Some(format!(
                "verify report {} cannot be read: {e}",
                path.display()
            ));
        }
    };
    let report: Report = match serde_json::from_str(&text) {
        Ok(r) => r,
        Err(e) => {
            return Some(format!(
                "verify report {} is not valid: {e}",
                path.display()
            ));
        }
    };
    if report.status == "ok" {
        return None;
    }
    let first: Vec<String> = report
        .repositories
        .iter()
        .flat_map(|r| r.problems.iter())
        .take(3)
        .map(|p| format!("{} {}", p.problem.as_str(), p.path))
        .collect();
    Some(format!(
        "verify report {} has status {} ({} problem(s); first: {})",
        path.display(),
        report.status,
        report.totals.problems,
        first.join(", ")
    ))
}

/// The newest snapshot sorting before `snap` with an ok report.
fn previous_verified(metadata_dir: &Path, snap: &str) -> Option<(String, Report)> {
    let entries = std::fs::read_dir(metadata_dir.join("snapshots")).ok()?;
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.as_str() < snap && validate_snapshot_name(n).is_ok())
        .collect();
    names.sort();
    names.into_iter().rev().find_map(|n| {
        read_snapshot_report(metadata_dir, &n)
            .filter(|r| r.status == "ok")
            .map(|r| (n, r))
    })
}

/// Runs the stage.
///
/// # Errors
/// [`Error::Verification`] (exit 6) when problems were found; exit 1 when
/// no snapshot is selected, none of its sources exists, or zfs fails; the
/// runner's errors.
pub fn run(options: &Options, args: &VerifyStageOptions) -> Result<()> {
    if let Some(name) = &args.snapshot {
        validate_snapshot_name(name).map_err(|e| Error::Usage(format!("--snapshot: {e}")))?;
    }
    let def = StageDef {
        name: "verify",
        lock: LockMode::Exclusive,
    };
    run_stage(
        options,
        def,
        |ctx| {
            let mut tools = Vec::new();
            if args.deep == DeepMode::Changed {
                tools.push(Tool::Zfs);
            }
            if !args.keyrings.is_empty() || !ctx.config.verify.keyrings.is_empty() {
                tools.push(Tool::Gpgv);
            }
            tools
        },
        |ctx, exec| {
            let (report, path) = body(ctx, args)?;
            let text = verify::render(&report).map_err(|e| Error::Failed(e.into()))?;
            let mut plan = Plan::new();
            plan.push(Step::Write {
                path: path.clone(),
                contents: text.into_bytes(),
                mode: 0o644,
            });
            if let Some(junit) = &args.junit {
                plan.push(Step::Write {
                    path: junit.clone(),
                    contents: verify::junit::render(&report).into_bytes(),
                    mode: 0o644,
                });
            }
            exec.execute(&plan)?;
            verify::log_problems(&report);
            tracing::info!(
                path = %path.display(),
                status = %report.status,
                repositories = report.totals.repositories,
                problems = report.totals.problems,
                packages = report.totals.packages,
                bytes_hashed = report.totals.bytes_hashed,
                dry_run = ctx.dry_run,
                "verify_report_written"
            );
            if report.status != "ok" {
                return Err(Error::Verification(format!(
                    "snapshot verification found {} problem(s) in {} of {} repositories; report: {}",
                    report.totals.problems,
                    report.totals.repositories_failed,
                    report.totals.repositories,
                    path.display()
                )));
            }
            Ok(())
        },
    )
}

fn body(ctx: &StageContext, args: &VerifyStageOptions) -> Result<(Report, PathBuf)> {
    let config = &ctx.config;
    let snap = match &args.snapshot {
        Some(s) => s.clone(),
        None => {
            let state = ctx.state();
            let current = state.current_snapshot()?.ok_or_else(|| {
                failed_with(format!(
                    "no --snapshot given and {} is missing or empty",
                    state.current_snapshot_path().display()
                ))
            })?;
            validate_snapshot_name(&current).map_err(|e| {
                failed_with(format!(
                    "invalid snapshot name in {}: {e}",
                    state.current_snapshot_path().display()
                ))
            })?;
            current
        }
    };
    let snap_root = config
        .mirror
        .zfs_mirror_dir
        .join(".zfs/snapshot")
        .join(&snap);
    let sources = super::publish_snapshot::mapped_sources(&config.repo_paths, &snap_root, &snap);
    if sources.is_empty() {
        return Err(failed_with(format!(
            "nothing to verify: snapshot {snap} has no directory under {} holding a source of repo.paths",
            snap_root.display()
        )));
    }
    let tree = tempfile::Builder::new()
        .prefix("mirrorer-verify-")
        .tempdir()
        .map_err(|e| {
            Error::Failed(anyhow::Error::new(e).context("creating the verify link tree"))
        })?;
    for (prefix, source) in &sources {
        let link = tree.path().join(prefix);
        if let Some(parent) = link.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::Failed(anyhow::Error::new(e).context("verify link tree")))?;
        }
        std::os::unix::fs::symlink(source, &link)
            .map_err(|e| Error::Failed(anyhow::Error::new(e).context("verify link tree")))?;
    }
    let metadata = config.mirror.metadata_dir();
    let previous = previous_verified(&metadata, &snap);
    let deep = match args.deep {
        DeepMode::None => Deep::None,
        DeepMode::All => Deep::All,
        DeepMode::Changed => match &previous {
            None => {
                tracing::info!(snapshot = %snap, "verify_no_previous_deep_all");
                Deep::All
            }
            Some((prev, _)) => Deep::Changed(changed_files(ctx, prev, &snap)?),
        },
    };
    if let Some((prev, _)) = &previous {
        tracing::info!(snapshot = %snap, previous = %prev, "verify_previous_report");
    }
    let mut keyrings: Vec<(String, PathBuf)> = config
        .verify
        .keyrings
        .iter()
        .map(|(prefix, path)| (prefix.clone(), PathBuf::from(path)))
        .collect();
    keyrings.extend(args.keyrings.iter().cloned());
    if let Some((prefix, path)) = keyrings.iter().find(|(_, p)| !p.is_file()) {
        return Err(failed_with(format!(
            "keyring {} for prefix {prefix} (verify.keyrings in {}) is not a file",
            path.display(),
            config.path.display()
        )));
    }
    let options = VerifyOptions {
        formats: Vec::new(),
        deep,
        keyrings,
    };
    let mut report = verify::verify_tree(tree.path(), &options, &ctx.tools)
        .map_err(|e| Error::Failed(anyhow::Error::new(e)))?;
    report.scan_root = format!("{}@{snap}", config.mirror.zfs_mirror_dataset);
    if args.deep == DeepMode::Changed {
        report.deep = "changed".to_owned();
    }
    if let Some((_, prev)) = &previous {
        shrink::apply(
            &mut report,
            prev,
            args.max_shrink_percent
                .unwrap_or(config.verify.max_shrink_percent),
            args.allow_shrink,
        );
    }
    Ok((report, report_path(&metadata, &snap)))
}

/// The files added or modified between `prev` and `snap` (`zfs diff`), as
/// paths of the verify tree (`<public_prefix>/<rest>`).
fn changed_files(ctx: &StageContext, prev: &str, snap: &str) -> Result<HashSet<String>> {
    let config = &ctx.config;
    let out = zfs::diff_between_cmd(&ctx.tools, &config.mirror.zfs_mirror_dataset, prev, snap)
        .run()
        .map_err(Error::from)?;
    let mount = std::path::absolute(&config.mirror.zfs_mirror_dir)
        .unwrap_or_else(|_| config.mirror.zfs_mirror_dir.clone());
    let mut set = HashSet::new();
    for line in out.stdout.lines() {
        let Some(entry) = zfs::parse_diff_line(line) else {
            continue;
        };
        if !matches!(entry.change, '+' | 'M' | 'R') || entry.kind != 'F' {
            continue;
        }
        let Ok(rel) = entry.path.strip_prefix(&mount) else {
            continue;
        };
        for m in &config.repo_paths {
            let source = Path::new(&m.source_base).join(&m.source_name);
            if let Ok(rest) = rel.strip_prefix(&source) {
                let text = crate::catalog::ids::lossy_name(rest.as_os_str().as_bytes());
                set.insert(format!("{}/{text}", m.public_prefix));
            }
        }
    }
    tracing::info!(previous = %prev, snapshot = %snap, changed_files = set.len(), "verify_changes_listed");
    Ok(set)
}
