//! `mirrorer fleet collect --fleet FILE --output-dir DIR` (docs/fleet.md).
//! Needs no `dist-mirror.yaml`; runs no external program.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use super::{config, fetch, html};
use crate::error::Error;

const TARGET: &str = "mirrorer::fleet";

/// `mirrorer fleet ...`
#[derive(Debug, Subcommand)]
pub enum FleetCommand {
    /// Fetch every shard's /metadata/inventory.json and status.json and
    /// write DIR/fleet.json and DIR/index.html (exit 1 only if no shard
    /// answered).
    Collect(CollectArgs),
}

/// Flags of `fleet collect`.
#[derive(Debug, Clone, Args)]
pub struct CollectArgs {
    /// The fleet file (docs/fleet.md).
    #[arg(long, value_name = "FILE")]
    pub fleet: PathBuf,
    /// Where fleet.json and index.html are written (created if missing).
    #[arg(long, value_name = "DIR")]
    pub output_dir: PathBuf,
}

/// Runs a `fleet` subcommand.
///
/// # Errors
/// A bad `fleet.yaml` (exit 3); an output that cannot be written, or no
/// shard that answered (exit 1).
pub fn run(command: &FleetCommand) -> Result<(), Error> {
    match command {
        FleetCommand::Collect(args) => collect(args),
    }
}

fn failed(message: String) -> Error {
    Error::Failed(anyhow::anyhow!(message))
}

fn write(dir: &Path, name: &str, text: &str) -> Result<(), Error> {
    crate::state::write_atomic(&dir.join(name), text.as_bytes(), 0o644)
        .map_err(|e| Error::Failed(anyhow::Error::new(e)))
}

fn collect(args: &CollectArgs) -> Result<(), Error> {
    let fleet = config::load(&args.fleet)?;
    let fetcher = fetch::Fetcher::new(fleet.timeout, fleet.retries)
        .map_err(|e| failed(format!("could not set up the HTTP client: {e}")))?;
    std::fs::create_dir_all(&args.output_dir).map_err(|e| {
        Error::Failed(anyhow::Error::new(e).context(format!(
            "could not create the output directory {}",
            args.output_dir.display()
        )))
    })?;
    let now = chrono::Utc::now();
    let report = super::collect(&fleet, &fetcher, now);
    for s in &report.shards {
        if s.answered {
            tracing::info!(target: TARGET, shard = %s.name, state = s.state, inventory = s.inventory.state, status = s.status.state, "fleet_shard");
        } else {
            tracing::warn!(target: TARGET, shard = %s.name, state = s.state, inventory = s.inventory.state, error = %s.inventory.error.as_deref().unwrap_or(""), url = %s.inventory.url, "fleet_shard_down");
        }
    }
    let json =
        crate::json::to_pretty_string(&report).map_err(|e| Error::Failed(anyhow::Error::new(e)))?;
    write(&args.output_dir, "fleet.json", &json)?;
    write(&args.output_dir, "index.html", &html::render(&report))?;
    tracing::info!(target: TARGET, shards = report.summary.shards, answered = report.summary.answered, fresh = report.summary.fresh, output_dir = %args.output_dir.display(), "fleet_collected");
    if report.summary.answered == 0 {
        return Err(failed(format!(
            "no shard answered ({} listed in {})",
            report.summary.shards,
            args.fleet.display()
        )));
    }
    Ok(())
}
