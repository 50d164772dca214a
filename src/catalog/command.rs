//! `mirrorer catalog`: the standalone catalog command (docs/stages.md,
//! "catalog"). It needs no config file and runs no external program.
//!
//! ```text
//! mirrorer catalog --root-dir DIR [--output FILE] [--format apt|rpm|apt-rpm]... [--shard NAME] [--summary-json]
//! ```
//!
//! Output: with `--output` the catalog is written atomically to FILE (mode
//! 0644); with `--summary-json` one line `{"formats": [...],
//! "repositories_count": N, "warnings_count": M}` goes to stdout; with
//! neither, the catalog JSON goes to stdout. Each catalog warning is also
//! logged (`catalog_warning`, level WARNING) on stderr.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;

use super::{CatalogError, Format, build_catalog, default_shard, render};
use crate::error::Error;

/// Flags of `mirrorer catalog`.
#[derive(clap::Args, Debug, Clone)]
pub struct CatalogArgs {
    /// Snapshot tree to scan (an existing directory).
    #[arg(long, value_name = "DIR")]
    pub root_dir: PathBuf,
    /// Write the catalog JSON to FILE (atomically) instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Repository format to scan: apt, rpm or apt-rpm (case-insensitive).
    /// Repeat for several; default: all three.
    #[arg(long = "format", value_name = "FORMAT")]
    pub formats: Vec<String>,
    /// Shard name written in the catalog (default: env DIST_MIRROR_SHARD, else the host name).
    #[arg(long, value_name = "NAME")]
    pub shard: Option<String>,
    /// Print a one-line JSON summary (formats, repositories_count,
    /// warnings_count) instead of the catalog.
    #[arg(long)]
    pub summary_json: bool,
}

/// Runs `mirrorer catalog`.
///
/// `log_level_given`: whether the user passed `--log-level`; when not, and
/// `--summary-json` is on, only warnings and errors are logged.
///
/// # Errors
/// [`Error::Usage`] (exit 2) for an unsupported format or a root that is
/// missing or not a directory; [`Error::Failed`] (exit 1) when the root cannot
/// be read or the output cannot be written.
pub fn run(args: &CatalogArgs, log_level_given: bool) -> Result<(), Error> {
    if args.summary_json && !log_level_given {
        crate::logging::set_level(crate::logging::Level::Warning);
    }
    let formats = Format::parse_list(&args.formats).map_err(|e| Error::Usage(e.to_string()))?;
    let shard = args.shard.clone().unwrap_or_else(default_shard);
    let catalog = match build_catalog(&args.root_dir, &formats, &shard) {
        Ok(catalog) => catalog,
        Err(e @ (CatalogError::RootMissing { .. } | CatalogError::RootNotDirectory { .. })) => {
            return Err(Error::Usage(format!("invalid value for --root-dir: {e}")));
        }
        Err(e) => return Err(Error::Failed(anyhow::Error::new(e))),
    };
    for w in &catalog.warnings {
        tracing::warn!(
            format = w.format,
            prefix = %w.prefix,
            path = %w.path,
            warning = %w.message,
            "catalog_warning"
        );
    }
    let text = render(&catalog).context("rendering the catalog as JSON")?;
    if let Some(output) = &args.output {
        crate::state::write_atomic(output, text.as_bytes(), 0o644)
            .with_context(|| format!("writing the catalog to {}", output.display()))?;
        tracing::info!(
            path = %output.display(),
            repositories_count = catalog.repositories.len(),
            warnings_count = catalog.warnings.len(),
            "repo_catalog_written"
        );
    }
    let stdout_text = if args.summary_json {
        let summary = serde_json::json!({
            "formats": catalog.formats,
            "repositories_count": catalog.repositories.len(),
            "warnings_count": catalog.warnings.len(),
        });
        let mut line = crate::json::to_line_string(&summary).context("rendering the summary")?;
        line.push('\n');
        Some(line)
    } else if args.output.is_none() {
        Some(text)
    } else {
        None
    };
    if let Some(out) = stdout_text {
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(out.as_bytes())
            .and_then(|()| stdout.flush())
            .context("writing to stdout")?;
    }
    Ok(())
}
