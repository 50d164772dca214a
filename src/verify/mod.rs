//! Verification of a tree against its own repository metadata
//! (`mirrorer verify`, docs/stages.md, "verify"; report format in
//! docs/metadata.md, "verify.json").
//!
//! Repositories are found exactly as the catalog finds them
//! ([`crate::catalog::build_catalog`]: same walk, same ids, same symlink
//! rules); each is then checked by its format's module: `apt` (Release
//! indexes, Packages), `rpm` (repomd data, primary), [`aptrpm`] (pkglists).
//! Every index is streamed and package files are checked in bounded batches,
//! so memory does not grow with the tree. Paths from metadata are resolved
//! only inside their repository's base (`catalog::confine`).
//!
//! Entry point: [`verify_tree`]; the report is [`model::Report`], rendered by
//! [`render`], [`junit::render`]; [`shrink::apply`] is the shrink guard.

mod apt;
pub mod aptrpm;
pub mod command;
mod files;
pub mod junit;
pub mod model;
mod rpm;
pub mod shrink;
mod signature;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::catalog::confine::Confine;
use crate::catalog::{CatalogError, Format, Repository};
use crate::process::Tools;
pub use model::{Problem, ProblemKind, RepoReport, Report};

/// How many `verify_problem` log events one repository gets before a count.
pub const LOGGED_PROBLEMS: usize = 20;

/// Which package files are hashed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deep {
    /// None: existence and sizes only.
    None,
    /// Only these paths (relative to the scan root): the files changed since
    /// the previous verified snapshot.
    Changed(HashSet<String>),
    /// Every package file.
    All,
}

impl Deep {
    /// The name written in the report: `none`, `changed`, `all`.
    pub fn name(&self) -> &'static str {
        match self {
            Deep::None => "none",
            Deep::Changed(_) => "changed",
            Deep::All => "all",
        }
    }
}

/// What to verify and how.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// The formats to check (empty: all).
    pub formats: Vec<Format>,
    /// Which package files are hashed.
    pub deep: Deep,
    /// `(prefix, keyring file)`: APT releases under that prefix are checked with gpgv.
    pub keyrings: Vec<(String, PathBuf)>,
}

/// What the format checks share.
pub(crate) struct Context {
    root: PathBuf,
    confine: Confine,
    deep: Deep,
    keyrings: Vec<(String, PathBuf)>,
    tools: Tools,
}

impl Context {
    /// Checks the package files of `batch` under the repository base `base`
    /// with this run's root, confinement and deep rule
    /// ([`files::check_batch`]), folds the results into `report` and empties
    /// the batch.
    fn check(&self, base: &str, batch: &mut Vec<files::Expected>, report: &mut model::RepoReport) {
        files::check_batch(
            &self.root,
            &self.confine,
            base,
            batch,
            &|rel: &str| self.deep_for(rel),
            report,
        );
    }

    fn deep_for(&self, rel: &str) -> bool {
        match &self.deep {
            Deep::None => false,
            Deep::All => true,
            Deep::Changed(set) => set.contains(rel),
        }
    }

    fn keyring_for(&self, prefix: &str) -> Option<&Path> {
        self.keyrings
            .iter()
            .rev()
            .find(|(p, _)| p == prefix)
            .map(|(_, k)| k.as_path())
    }
}

/// Verifies every repository under `root`.
///
/// # Errors
/// [`CatalogError`] when the root is missing, not a directory or unreadable
/// (problems inside the tree are in the report instead).
pub fn verify_tree(
    root: &Path,
    options: &VerifyOptions,
    tools: &Tools,
) -> Result<Report, CatalogError> {
    let catalog = crate::catalog::build_catalog(root, &options.formats, "verify")?;
    let root_path = PathBuf::from(&catalog.scan_root);
    let confine = Confine::new(&root_path).map_err(|source| CatalogError::ReadRoot {
        path: root_path.clone(),
        source,
    })?;
    let ctx = Context {
        root: root_path,
        confine,
        deep: options.deep.clone(),
        keyrings: options.keyrings.clone(),
        tools: tools.clone(),
    };
    let mut repositories = Vec::new();
    for release in &catalog.apt_releases {
        let repos: Vec<_> = catalog
            .repositories
            .iter()
            .filter_map(|r| match r {
                Repository::Apt(a) if a.release_id == release.id => Some(a),
                _ => None,
            })
            .collect();
        repositories.extend(apt::verify_release(&ctx, release, &repos));
    }
    for repo in &catalog.repositories {
        match repo {
            Repository::Apt(_) => {}
            Repository::Rpm(r) => repositories.push(rpm::verify(&ctx, r)),
            Repository::AptRpm(r) => repositories.push(aptrpm::verify(&ctx, r)),
        }
    }
    repositories.sort_by(|a, b| a.id.cmp(&b.id));
    let mut report = Report {
        schema: model::SCHEMA.to_owned(),
        generated_at: crate::catalog::generated_at_now(),
        scan_root: catalog.scan_root.clone(),
        deep: options.deep.name().to_owned(),
        status: String::new(),
        signatures: if options.keyrings.is_empty() {
            "not_checked"
        } else {
            "checked"
        }
        .to_owned(),
        totals: Default::default(),
        repositories,
    };
    report.finish();
    Ok(report)
}

/// Logs each problem as `verify_problem repository=... path=... problem=...`
/// (WARNING), the first [`LOGGED_PROBLEMS`] per repository, then one
/// `verify_problems_more repository=... count=...`.
pub fn log_problems(report: &Report) {
    for repo in &report.repositories {
        for p in repo.problems.iter().take(LOGGED_PROBLEMS) {
            tracing::warn!(
                repository = %repo.id,
                path = %p.path,
                problem = p.problem.as_str(),
                expected = p.expected.as_deref().unwrap_or(""),
                actual = p.actual.as_deref().unwrap_or(""),
                "verify_problem"
            );
        }
        let logged = repo.problems.len().min(LOGGED_PROBLEMS) as u64;
        if repo.problems_count > logged {
            tracing::warn!(
                repository = %repo.id,
                count = repo.problems_count - logged,
                "verify_problems_more"
            );
        }
    }
}

/// Renders the report as the canonical JSON text (sorted keys, 2 spaces,
/// trailing newline; docs/metadata.md, "JSON rendering").
///
/// # Errors
/// Only if serialisation fails, which the report's types do not do.
pub fn render(report: &Report) -> serde_json::Result<String> {
    crate::json::to_pretty_string(report)
}
