//! `mirrorer verify`, standalone form (docs/stages.md, "verify"): needs no
//! config file; runs only `gpgv` (with `--keyring`).
//!
//! ```text
//! mirrorer verify --root-dir DIR [--format apt|rpm|apt-rpm]... [--deep none|all]
//!     [--previous FILE] [--allow-shrink] [--max-shrink-percent N]
//!     [--output FILE] [--junit FILE] [--keyring PREFIX=FILE]...
//! ```
//!
//! Output: the report (`verify.json`) to FILE atomically (mode 0644) with
//! `--output`, else to stdout; with `--junit` also a JUnit XML file. Exit 0
//! when every repository is ok, 6 when problems were found, 2 for usage
//! errors, 1 when the tool itself failed.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;

use super::{Deep, VerifyOptions, log_problems, render, shrink, verify_tree};
use crate::catalog::{CatalogError, Format};
use crate::error::Error;

/// Flags of `mirrorer verify`. Two forms share the subcommand: with
/// `--root-dir` the standalone form (no config); without it the stage form
/// (the config's snapshot trees; `--snapshot`, default the current
/// snapshot). `--root-dir` and `--snapshot` exclude each other.
#[derive(clap::Args, Debug, Clone)]
pub struct VerifyArgs {
    /// Tree to verify (an existing directory); no config is read.
    #[arg(long, value_name = "DIR", conflicts_with = "snapshot")]
    pub root_dir: Option<PathBuf>,
    /// Stage form: verify this ZFS snapshot through repo.paths (default: the
    /// current snapshot) and write WORKDIR/metadata/snapshots/NAME/verify.json.
    #[arg(long, value_name = "NAME")]
    pub snapshot: Option<String>,
    /// Repository format to check: apt, rpm or apt-rpm (case-insensitive).
    /// Repeat for several; default: all three.
    #[arg(long = "format", value_name = "FORMAT")]
    pub formats: Vec<String>,
    /// Which package files are hashed: none (existence and sizes only), all,
    /// or changed (stage form only: the files zfs diff lists since the
    /// previous verified snapshot). Default: none standalone, changed in the stage.
    #[arg(long, value_name = "none|changed|all")]
    pub deep: Option<String>,
    /// An earlier verify.json: a repository that disappeared or lost more
    /// than --max-shrink-percent of its packages is a problem `shrunk`.
    #[arg(long, value_name = "FILE")]
    pub previous: Option<PathBuf>,
    /// Do not report shrunk repositories (also env MIRRORER_ALLOW_SHRINK=true).
    #[arg(long, env = "MIRRORER_ALLOW_SHRINK", value_parser = clap::builder::FalseyValueParser::new())]
    pub allow_shrink: bool,
    /// How many percent of its packages a repository may lose (default:
    /// verify.max_shrink_percent in the stage form, else 20).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(0..=100))]
    pub max_shrink_percent: Option<u64>,
    /// Write verify.json to FILE (atomically) instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Also write a JUnit XML report (one test case per repository) to FILE.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Check the APT Release signatures under PREFIX with gpgv against the
    /// keyring FILE. Repeatable.
    #[arg(long = "keyring", value_name = "PREFIX=FILE")]
    pub keyrings: Vec<String>,
}

fn usage(text: String) -> Error {
    Error::Usage(text)
}

/// Parses `PREFIX=FILE`.
///
/// # Errors
/// [`Error::Usage`] without `=`, with an empty side, or a prefix holding `/`.
pub fn parse_keyring(value: &str) -> Result<(String, PathBuf), Error> {
    match value.split_once('=') {
        Some((prefix, file)) if !prefix.is_empty() && !file.is_empty() && !prefix.contains('/') => {
            let file = std::path::absolute(file)
                .map_err(|e| usage(format!("invalid value for --keyring: {e}")))?;
            if !file.is_file() {
                return Err(usage(format!(
                    "invalid value for --keyring: keyring {} is not a file",
                    file.display()
                )));
            }
            Ok((prefix.to_owned(), file))
        }
        _ => Err(usage(format!(
            "invalid value for --keyring: {value:?} (expected PREFIX=FILE)"
        ))),
    }
}

/// Runs `mirrorer verify`: the standalone form with `--root-dir`, else the
/// stage form ([`crate::stages::verify`]) with the global `options`.
///
/// # Errors
/// [`Error::Usage`] (exit 2) for bad flags or a root that is missing or not a
/// directory; [`Error::Verification`] (exit 6) when problems were found
/// (after writing the reports); [`Error::Failed`] (exit 1) when the root
/// cannot be read, `--previous` cannot be read, or an output cannot be written.
pub fn run(args: &VerifyArgs, options: &crate::stages::Options) -> Result<(), Error> {
    let keyrings = args
        .keyrings
        .iter()
        .map(|k| parse_keyring(k))
        .collect::<Result<Vec<_>, _>>()?;
    let Some(root_dir) = &args.root_dir else {
        for (flag, given) in [
            ("--format", !args.formats.is_empty()),
            ("--previous", args.previous.is_some()),
            ("--output", args.output.is_some()),
        ] {
            if given {
                return Err(usage(format!(
                    "{flag} goes with --root-dir; the stage form writes WORKDIR/metadata/snapshots/NAME/verify.json"
                )));
            }
        }
        use crate::stages::verify::{DeepMode, VerifyStageOptions};
        let deep = match args.deep.as_deref() {
            None | Some("changed") => DeepMode::Changed,
            Some("none") => DeepMode::None,
            Some("all") => DeepMode::All,
            Some(other) => {
                return Err(usage(format!(
                    "invalid value for --deep: {other:?} (none, changed, all)"
                )));
            }
        };
        let stage = VerifyStageOptions {
            snapshot: args.snapshot.clone().filter(|s| !s.trim().is_empty()),
            deep,
            allow_shrink: args.allow_shrink,
            max_shrink_percent: args.max_shrink_percent,
            keyrings,
            junit: args
                .junit
                .as_ref()
                .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone())),
        };
        return crate::stages::verify::run(options, &stage);
    };
    let formats = Format::parse_list(&args.formats).map_err(|e| usage(e.to_string()))?;
    let deep = match args.deep.as_deref().unwrap_or("none") {
        "none" => Deep::None,
        "all" => Deep::All,
        "changed" => {
            return Err(usage(
                "invalid value for --deep: 'changed' needs --snapshot (the stage form)".into(),
            ));
        }
        other => {
            return Err(usage(format!(
                "invalid value for --deep: {other:?} (none, all)"
            )));
        }
    };
    let previous = match &args.previous {
        Some(path) => Some(read_report(path)?),
        None => None,
    };
    let tools = crate::process::Tools::from_env(&[]);
    if !keyrings.is_empty() {
        tools
            .check(&[crate::process::Tool::Gpgv])
            .map_err(|e| Error::Failed(anyhow::Error::new(e)))?;
    }
    let options = VerifyOptions {
        formats,
        deep,
        keyrings,
    };
    let mut report = match verify_tree(root_dir, &options, &tools) {
        Ok(report) => report,
        Err(e @ (CatalogError::RootMissing { .. } | CatalogError::RootNotDirectory { .. })) => {
            return Err(usage(format!("invalid value for --root-dir: {e}")));
        }
        Err(e) => return Err(Error::Failed(anyhow::Error::new(e))),
    };
    if let Some(previous) = &previous {
        shrink::apply(
            &mut report,
            previous,
            args.max_shrink_percent
                .unwrap_or(shrink::DEFAULT_MAX_SHRINK_PERCENT),
            args.allow_shrink,
        );
    }
    finish(&report, args.output.as_deref(), args.junit.as_deref())
}

/// Reads an earlier `verify.json`.
///
/// # Errors
/// [`Error::Failed`] when it cannot be read or is not a verify report.
pub fn read_report(path: &std::path::Path) -> Result<super::Report, Error> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the previous report {}", path.display()))?;
    let report: super::Report = serde_json::from_str(&text)
        .with_context(|| format!("parsing the previous report {}", path.display()))?;
    if report.schema != super::model::SCHEMA {
        return Err(Error::Failed(anyhow::anyhow!(
            "{} is not a {} report (schema {:?})",
            path.display(),
            super::model::SCHEMA,
            report.schema
        )));
    }
    Ok(report)
}

/// Logs the problems, writes the report (to `output`, else stdout) and the
/// JUnit file, and turns a failed report into exit 6.
///
/// # Errors
/// [`Error::Failed`] when a file cannot be written; [`Error::Verification`]
/// when the report has problems.
pub fn finish(
    report: &super::Report,
    output: Option<&std::path::Path>,
    junit: Option<&std::path::Path>,
) -> Result<(), Error> {
    log_problems(report);
    let text = render(report).context("rendering the verify report")?;
    match output {
        Some(path) => {
            crate::state::write_atomic(path, text.as_bytes(), 0o644)
                .with_context(|| format!("writing the verify report to {}", path.display()))?;
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(text.as_bytes())
                .and_then(|()| stdout.flush())
                .context("writing to stdout")?;
        }
    }
    if let Some(path) = junit {
        crate::state::write_atomic(path, super::junit::render(report).as_bytes(), 0o644)
            .with_context(|| format!("writing the JUnit report to {}", path.display()))?;
    }
    tracing::info!(
        status = %report.status,
        repositories = report.totals.repositories,
        repositories_failed = report.totals.repositories_failed,
        packages = report.totals.packages,
        problems = report.totals.problems,
        bytes_hashed = report.totals.bytes_hashed,
        "verify_done"
    );
    if report.status != "ok" {
        return Err(Error::Verification(format!(
            "verification found {} problem(s) in {} of {} repositories",
            report.totals.problems, report.totals.repositories_failed, report.totals.repositories
        )));
    }
    Ok(())
}
