//! The command line: clap definitions, logging set-up, dispatch, and the
//! mapping of every outcome to an exit code (docs/cli.md).
//!
//! The stage subcommands' own flags are in `stage_args.rs`; the summary
//! `config check` prints is in `config_check.rs`.

use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config::{self, ConfigError};
use crate::domain::non_blank;
use crate::error::{EXIT_CODE_TABLE, Error, Result};
use crate::logging::{self, Level};
use crate::pipeline::{self, mode};
use crate::stages::{self, Options, load_config};

mod config_check;
mod lifecycle_args;
mod stage_args;
mod values;

pub use config_check::config_summary;
pub use lifecycle_args::{PinArgs, PromoteArgs, PruneArgs};
pub use stage_args::{
    PublishCatalogArgs, PublishSnapshotArgs, SnapshotArgs, SnapshotFlag, SyncArgs,
};
pub use values::{MAX_SECONDS, parse_seconds};
use values::{parse_config_path, parse_duration, parse_level};

fn exit_code_help() -> String {
    let mut text = String::from("Exit codes:\n");
    for (code, meaning) in EXIT_CODE_TABLE {
        text.push_str(&format!("  {code:>3}  {meaning}\n"));
    }
    text
}

/// `mirrorer`: the shard-host tool of dist-mirror and the generator of its
/// GitLab child pipeline.
#[derive(Debug, Parser)]
#[command(name = "mirrorer", version, about, long_about = None)]
pub struct Cli {
    /// Configuration file (dist-mirror.yaml).
    #[arg(short = 'c', long, env = "MIRRORER_CONFIG", value_name = "PATH", default_value = config::DEFAULT_CONFIG_PATH, value_parser = parse_config_path)]
    pub config: PathBuf,

    /// Log level: DEBUG, INFO, WARNING or ERROR (any case); overrides log.log_level.
    #[arg(long, value_name = "LEVEL", value_parser = parse_level)]
    pub log_level: Option<Level>,

    /// Print one JSON object per log line instead of plain text.
    #[arg(long, overrides_with = "no_json_logs")]
    pub json_logs: bool,
    /// Print plain-text log lines (the default).
    #[arg(long, overrides_with = "json_logs")]
    pub no_json_logs: bool,

    /// Skip replication and remote publication (overrides replication.skip_remote).
    #[arg(long, overrides_with = "no_skip_remote")]
    pub skip_remote: bool,
    /// Do replication and remote publication when configured (overrides replication.skip_remote).
    #[arg(long, overrides_with = "skip_remote")]
    pub no_skip_remote: bool,

    /// Exit 5 when antivirus threats are found (overrides antivirus.fail_on_threats).
    #[arg(long, overrides_with = "allow_threats")]
    pub fail_on_threats: bool,
    /// Report threats but exit 0 (overrides antivirus.fail_on_threats).
    #[arg(long, overrides_with = "fail_on_threats")]
    pub allow_threats: bool,

    /// Log every external command and file write a mutating command would make, and make none.
    #[arg(long)]
    pub dry_run: bool,

    /// Give up waiting for the state lock after SECONDS (exit 4); default: wait.
    #[arg(long, value_name = "SECONDS", value_parser = parse_duration, allow_negative_numbers = true)]
    pub lock_timeout: Option<Duration>,

    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the configuration file and print the effective configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Generate or trigger the GitLab child pipeline.
    #[command(subcommand)]
    Pipeline(PipelineCommand),
    /// Run the syncer containers (all, or those named by --syncer) in
    /// parallel, each up to 3 attempts.
    Sync(SyncArgs),
    /// Take the ZFS snapshot of the mirror dataset and record it as current.
    Snapshot(SnapshotArgs),
    /// Replicate the dataset to the replica with syncoid (skipped without
    /// replica_host or with skip_remote).
    #[command(alias = "replication")]
    Replicate,
    /// Publish snapshots as a tree of symlinks under WORKDIR/repo (and on
    /// the replica).
    PublishSnapshot(PublishSnapshotArgs),
    /// Write WORKDIR/metadata/inventory.json from the published tree.
    PublishInventory,
    /// Write the repository catalog of published snapshots to
    /// WORKDIR/metadata/snapshots/SNAPSHOT/repo_catalog.json.
    PublishCatalog(PublishCatalogArgs),
    /// Scan the files changed since the newest ZFS snapshot with the
    /// antivirus engine (resumable; exit 5 on threats with fail_on_threats).
    AvScan,
    /// Reset the pipeline state: av_state/, current_snapshot.txt.
    CleanupState,
    /// Scan a snapshot tree and write its repository catalog JSON (no config needed).
    Catalog(crate::catalog::command::CatalogArgs),
    /// Monitoring plugin (Nagios/Icinga): judge status.json, print one line,
    /// exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
    Check(crate::status::check::CheckArgs),
    /// The fleet view: collect every shard's metadata into fleet.json and
    /// index.html (no config needed).
    #[cfg(feature = "fleet")]
    #[command(subcommand)]
    Fleet(crate::fleet::command::FleetCommand),
    /// Point WORKDIR/repo/current at a published, verified snapshot
    /// (atomically; also on the replica).
    Promote(PromoteArgs),
    /// Place the ZFS hold mirrorer:pin on snapshot NAME: never pruned.
    Pin(PinArgs),
    /// Release the ZFS hold mirrorer:pin of snapshot NAME.
    Unpin(PinArgs),
    /// Destroy the snapshots the retention policy does not keep (with their
    /// published trees and metadata; also on the replica).
    Prune(PruneArgs),
    /// Verify a tree against its own repository metadata (no config needed);
    /// exit 6 when problems were found.
    Verify(crate::verify::command::VerifyArgs),
}

impl Cli {
    /// The global flags as the plain [`Options`] every stage runs with:
    /// each `--x`/`--no-x` pair becomes one `Option<bool>` (the last flag
    /// given wins; none: the config decides).
    pub fn options(&self) -> Options {
        let pair = |on: bool, off: bool| match (on, off) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        };
        Options {
            config: self.config.clone(),
            log_level: self.log_level,
            dry_run: self.dry_run,
            skip_remote: pair(self.skip_remote, self.no_skip_remote),
            fail_on_threats: pair(self.fail_on_threats, self.allow_threats),
            lock_timeout: self.lock_timeout,
        }
    }
}

/// `mirrorer config ...`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration and print a short summary of the effective
    /// configuration (every default applied; secrets shown as ***).
    Check,
}

/// `mirrorer pipeline ...`
#[derive(Debug, Subcommand)]
pub enum PipelineCommand {
    /// Print the child pipeline YAML for the config and run mode.
    ///
    /// Run-mode options may also come from the parent pipeline's variables
    /// (MIRRORER_SYNCERS, MIRRORER_SYNCERS_EXCLUDE, MIRRORER_SNAPSHOT, MIRRORER_PUBLISH_ALL,
    /// MIRRORER_CATALOG_REBUILD, MIRRORER_SKIP_REMOTE, MIRRORER_DRY_RUN);
    /// flags win. Two modes at once are a usage error (exit 2).
    Generate(GenerateArgs),
    /// Start the parent pipeline through the GitLab API, with the run mode
    /// as pipeline variables; print its id and web URL as JSON on stdout.
    ///
    /// Authentication: --trigger-token (env MIRRORER_TRIGGER_TOKEN), or an
    /// access token in env GITLAB_TOKEN. Tokens are never printed.
    #[cfg(feature = "gitlab")]
    Trigger(TriggerArgs),
}

/// The run-mode options shared by `pipeline generate` and `pipeline trigger`
/// (docs/pipelines.md, "Run modes"). `--syncer` and `--exclude-syncer` are
/// those of `sync` ([`SyncArgs`]), reworded for a whole pipeline, with
/// `--prefix` a hidden alias here.
#[derive(Debug, Clone, Args)]
#[command(
    mut_arg("syncers", |a| a
        .help("Only these syncers (name or prefix; repeatable), then the rest of the chain")
        .visible_alias(None)
        .alias("prefix")),
    mut_arg("exclude_syncers", |a| a.help(
        "Every syncer but these (name or prefix; repeatable), then the rest of the chain. \
         Not with --syncer"
    )),
)]
pub struct RunModeArgs {
    /// `--syncer` and `--exclude-syncer`.
    #[command(flatten)]
    pub selection: SyncArgs,

    /// Republish snapshot NAME: publish-snapshot, publish-inventory, publish-catalog.
    #[arg(long, value_name = "NAME", allow_hyphen_values = true)]
    pub snapshot: Option<String>,

    /// Publish every snapshot and rebuild every catalog.
    #[arg(long)]
    pub publish_all: bool,

    /// Rebuild the inventory and every catalog of what is published.
    #[arg(long)]
    pub catalog_rebuild: bool,

    /// Every job gets --skip-remote.
    #[arg(long)]
    pub skip_remote: bool,

    /// Every job gets --dry-run.
    #[arg(long)]
    pub dry_run: bool,

    /// With --snapshot: also promote the snapshot (a `promote` job).
    #[arg(long)]
    pub promote: bool,
    /// The verify job gets --allow-shrink (repositories may shrink).
    #[arg(long)]
    pub allow_shrink: bool,
}

impl RunModeArgs {
    /// The run-mode inputs; empty values count as not given.
    fn flags(&self) -> mode::ModeFlags {
        mode::ModeFlags {
            syncers: non_blank(&self.selection.syncers),
            exclude_syncers: non_blank(&self.selection.exclude_syncers),
            snapshot: self.snapshot.clone().filter(|s| !s.trim().is_empty()),
            publish_all: self.publish_all,
            catalog_rebuild: self.catalog_rebuild,
            skip_remote: self.skip_remote,
            dry_run: self.dry_run,
            promote: self.promote,
            allow_shrink: self.allow_shrink,
        }
    }
}

/// Options of `pipeline generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Write the pipeline to FILE (atomically) instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// The run mode.
    #[command(flatten)]
    pub mode: RunModeArgs,

    /// The MIRRORER_CONFIG the jobs use [default: pipeline.config_path, else
    /// the absolute path of --config].
    #[arg(long, value_name = "PATH")]
    pub job_config: Option<String>,
}

/// Options of `pipeline trigger`.
#[cfg(feature = "gitlab")]
#[derive(Debug, Args)]
pub struct TriggerArgs {
    /// GitLab's base URL, e.g. `https://gitlab.example.org`.
    #[arg(long, env = "CI_SERVER_URL", value_name = "URL")]
    pub url: String,

    /// The project that holds the parent pipeline: numeric id or full path.
    #[arg(long, env = "CI_PROJECT_ID", value_name = "ID_OR_PATH")]
    pub project: String,

    /// Branch or tag to run the pipeline for.
    #[arg(long = "ref", value_name = "REF")]
    pub git_ref: String,

    /// Authenticate with a pipeline trigger token (else env GITLAB_TOKEN, an
    /// access token, is used).
    #[arg(
        long,
        env = "MIRRORER_TRIGGER_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub trigger_token: Option<String>,

    /// The run mode, sent as the pipeline variables `pipeline generate` reads.
    #[command(flatten)]
    pub mode: RunModeArgs,

    /// Follow the pipeline to its end; exit 1 unless it succeeds (needs GITLAB_TOKEN).
    #[arg(long)]
    pub wait: bool,

    /// Seconds between two status reads with --wait.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0, value_parser = parse_seconds, allow_negative_numbers = true)]
    pub poll_interval: f64,

    /// Give up waiting after SECONDS (exit 1); default: wait until it ends.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds, allow_negative_numbers = true)]
    pub wait_timeout: Option<f64>,
}

/// Runs the command line `args` (program name first) and returns the exit
/// code to end the process with.
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    logging::init();
    let command = Cli::command().after_help(exit_code_help());
    let mut cli = match command
        .try_get_matches_from(args)
        .and_then(|m| Cli::from_arg_matches(&m))
    {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version end here too, with exit 0.
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    if let Some(level) = cli.log_level {
        logging::set_level(level);
    }
    logging::set_json(cli.json_logs);
    if let Err(err) = drop_empty_values(&mut cli) {
        report(&err);
        return ExitCode::from(err.exit_code());
    }
    // A monitoring plugin: its own exit codes and one line on stdout.
    if let Command::Check(args) = &cli.command {
        return crate::status::check::run(args, &cli.config);
    }
    match dispatch(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            report(&err);
            ExitCode::from(err.exit_code())
        }
    }
}

/// `None` for an empty or blank value.
fn given<T: AsRef<std::ffi::OsStr>>(value: &mut Option<T>) {
    if value
        .as_ref()
        .is_some_and(|v| v.as_ref().to_string_lossy().trim().is_empty())
    {
        *value = None;
    }
}

/// An empty value of a flag means "not given", as in mirrorer 0.1.0
/// (`--syncer ""` syncs every syncer, `--snapshot ""` uses the current
/// snapshot, `--shard ""` the default shard); so does one of a CI variable
/// read through a flag. `--config ""` is handled by its value parser, the
/// run-mode flags by [`RunModeArgs::flags`]. Values that must not be empty
/// (`--log-level`, `--format`, numbers) stay usage errors.
///
/// # Errors
/// [`Error::Usage`] for `--snapshot NAME` with `--all` (publish-snapshot)
/// or `--rebuild` (publish-catalog); an empty NAME goes with either.
fn drop_empty_values(cli: &mut Cli) -> Result<()> {
    let conflict = |other: &str| {
        Err(Error::Usage(format!(
            "the argument '--snapshot <NAME>' cannot be used with '{other}'"
        )))
    };
    match &mut cli.command {
        Command::Sync(a) => {
            a.syncers.retain(|s| !s.trim().is_empty());
            a.exclude_syncers.retain(|s| !s.trim().is_empty());
        }
        Command::Snapshot(a) => given(&mut a.dotenv),
        Command::PublishSnapshot(a) => {
            given(&mut a.flag.snapshot);
            if a.flag.snapshot.is_some() && a.all {
                return conflict("--all");
            }
        }
        Command::PublishCatalog(a) => {
            given(&mut a.flag.snapshot);
            if a.flag.snapshot.is_some() && a.rebuild {
                return conflict("--rebuild");
            }
        }
        Command::Catalog(a) => {
            given(&mut a.output);
            given(&mut a.shard);
        }
        Command::Verify(a) => {
            given(&mut a.root_dir);
            given(&mut a.output);
            given(&mut a.junit);
            given(&mut a.previous);
        }
        Command::Pipeline(PipelineCommand::Generate(a)) => {
            given(&mut a.output);
            given(&mut a.job_config);
        }
        #[cfg(feature = "gitlab")]
        Command::Pipeline(PipelineCommand::Trigger(a)) => given(&mut a.trigger_token),
        #[cfg(feature = "fleet")]
        Command::Fleet(_) => {}
        Command::Config(_)
        | Command::Replicate
        | Command::PublishInventory
        | Command::AvScan
        | Command::CleanupState
        | Command::Check(_)
        | Command::Promote(_)
        | Command::Pin(_)
        | Command::Unpin(_)
        | Command::Prune(_) => {}
    }
    Ok(())
}

fn report(err: &Error) {
    const TARGET: &str = "mirrorer::cli";
    if let Error::Config(ConfigError::Invalid { problems, .. }) = err {
        for p in problems {
            logging::report_error(
                TARGET,
                "config_error",
                &ErrorText(p.message.clone()),
                &[
                    ("setting", p.key.clone()),
                    ("line", p.position.line.to_string()),
                    ("column", p.position.column.to_string()),
                ],
            );
        }
    }
    logging::report_error(
        TARGET,
        "command_failed",
        err,
        &[("exit_code", err.exit_code().to_string())],
    );
}

/// A plain message as an error value, for [`logging::report_error`].
#[derive(Debug)]
struct ErrorText(String);

impl std::fmt::Display for ErrorText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ErrorText {}

fn dispatch(cli: &Cli) -> Result<()> {
    match &cli.command {
        Command::Config(ConfigCommand::Check) => {
            let config = load_config(&cli.config, cli.log_level)?;
            print_stdout(&config_summary(&config))
        }
        Command::Pipeline(PipelineCommand::Generate(args)) => generate(cli, args),
        #[cfg(feature = "gitlab")]
        Command::Pipeline(PipelineCommand::Trigger(args)) => trigger(cli, args),
        Command::Sync(args) => stages::sync::run(&cli.options(), &args.options()),
        Command::Snapshot(args) => stages::snapshot::run(&cli.options(), &args.options()),
        Command::Replicate => stages::replicate::run(&cli.options()),
        Command::PublishSnapshot(args) => {
            stages::publish_snapshot::run(&cli.options(), &args.options())
        }
        Command::PublishInventory => stages::publish_inventory::run(&cli.options()),
        Command::PublishCatalog(args) => {
            stages::publish_catalog::run(&cli.options(), &args.options())
        }
        Command::AvScan => stages::av_scan::run(&cli.options()),
        Command::CleanupState => stages::cleanup_state::run(&cli.options()),
        Command::Catalog(args) => crate::catalog::command::run(args, cli.log_level.is_some()),
        Command::Promote(args) => stages::promote::run(&cli.options(), &args.options()),
        Command::Pin(args) => stages::pin::run(&cli.options(), &args.options(true)),
        Command::Unpin(args) => stages::pin::run(&cli.options(), &args.options(false)),
        Command::Prune(args) => stages::prune::run(&cli.options(), &args.options()),
        // Handled by `run` before dispatch: it has the plugin's exit codes.
        Command::Check(_) => Ok(()),
        #[cfg(feature = "fleet")]
        Command::Fleet(command) => crate::fleet::command::run(command),
        Command::Verify(args) => crate::verify::command::run(args, &cli.options()),
    }
}

fn print_stdout(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Error::Failed(anyhow::Error::new(e).context("could not write to stdout")))
}

fn absolute(path: &Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

fn generate(cli: &Cli, args: &GenerateArgs) -> Result<()> {
    let flags = args.mode.flags();
    let run_mode = mode::resolve(&flags, |name| std::env::var(name).ok())
        .map_err(|e| Error::Usage(e.to_string()))?;
    let config = load_config(&cli.config, cli.log_level)?;
    let job_config = args
        .job_config
        .clone()
        .or_else(|| config.pipeline.config_path.clone())
        .unwrap_or_else(|| absolute(&cli.config));
    if config.retention.is_none() {
        tracing::warn!(
            config = %config.path.display(),
            hint = "add a retention section so that prune removes old snapshots; without it every nightly snapshot and its published tree are kept forever",
            "pipeline_no_retention"
        );
    }
    if config.pipeline.runner_tags.is_empty() {
        tracing::warn!(
            config = %config.path.display(),
            hint = "set pipeline.runner_tags so that the jobs run only on the shard's runners",
            "pipeline_no_runner_tags"
        );
    }
    let generated = pipeline::generate(&config, &run_mode, &job_config).map_err(|e| match e {
        pipeline::GenerateError::UnknownSyncer(e) => Error::Usage(e.to_string()),
        other => Error::Failed(anyhow::Error::new(other)),
    })?;
    let text = &generated.text;
    match &args.output {
        None => print_stdout(text)?,
        Some(path) if cli.dry_run => {
            tracing::info!(path = %path.display(), bytes = text.len(), "pipeline_write_skipped_dry_run");
        }
        Some(path) => {
            crate::state::write_atomic(path, text.as_bytes(), 0o644)
                .map_err(|e| Error::Failed(e.into()))?;
            tracing::info!(path = %path.display(), bytes = text.len(), "pipeline_written");
        }
    }
    tracing::info!(
        mode = %run_mode,
        jobs = generated.jobs.len(),
        job_names = %generated.jobs.join(","),
        "pipeline_generated"
    );
    Ok(())
}

#[cfg(feature = "gitlab")]
fn seconds(flag: &str, value: f64) -> Result<std::time::Duration> {
    std::time::Duration::try_from_secs_f64(value)
        .map_err(|_| Error::Usage(format!("{flag} {value}: expected a number of seconds >= 0")))
}

#[cfg(feature = "gitlab")]
fn trigger(cli: &Cli, args: &TriggerArgs) -> Result<()> {
    use crate::pipeline::trigger::{self as t, Auth, Secret};
    for (flag, value) in [
        ("--url (CI_SERVER_URL)", &args.url),
        ("--project (CI_PROJECT_ID)", &args.project),
        ("--ref", &args.git_ref),
    ] {
        if value.trim().is_empty() {
            return Err(Error::Usage(format!("{flag} is empty")));
        }
    }
    let run_mode = t::validate_flags(&args.mode.flags()).map_err(Error::Usage)?;
    let poll = seconds("--poll-interval", args.poll_interval)?;
    let wait_timeout = args
        .wait_timeout
        .map(|s| seconds("--wait-timeout", s))
        .transpose()?;
    let access = std::env::var("GITLAB_TOKEN")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map(Secret);
    let auth = match (
        args.trigger_token.clone().filter(|v| !v.trim().is_empty()),
        access,
    ) {
        (Some(token), read_token) => Auth::TriggerToken {
            token: Secret(token),
            read_token,
        },
        (None, Some(token)) => Auth::AccessToken(token),
        (None, None) => {
            return Err(Error::Usage(
                "no credentials: pass --trigger-token (or env MIRRORER_TRIGGER_TOKEN), or set GITLAB_TOKEN to an access token".to_owned(),
            ));
        }
    };
    if args.wait
        && matches!(
            auth,
            Auth::TriggerToken {
                read_token: None,
                ..
            }
        )
    {
        return Err(Error::Usage(t::TriggerError::NoReadToken.to_string()));
    }
    let req = t::TriggerRequest {
        url: args.url.clone(),
        project: args.project.clone(),
        git_ref: args.git_ref.clone(),
        variables: t::mode_variables(&run_mode),
        auth,
    };
    let variables = req
        .variables
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ");
    let how = match req.auth {
        Auth::TriggerToken { .. } => "trigger_token",
        Auth::AccessToken(_) => "access_token",
    };
    if cli.dry_run {
        tracing::info!(url = %req.url, project = %req.project, git_ref = %req.git_ref, auth = how, variables = %variables, "pipeline_trigger_skipped_dry_run");
        return Ok(());
    }
    tracing::info!(url = %req.url, project = %req.project, git_ref = %req.git_ref, auth = how, variables = %variables, "pipeline_trigger");
    let failed = |e: t::TriggerError| Error::Failed(anyhow::Error::new(e));
    let info = t::trigger(&req).map_err(failed)?;
    tracing::info!(id = info.id, status = %info.status, web_url = %info.web_url, "pipeline_created");
    let line = crate::json::to_line_string(&info).map_err(|e| Error::Failed(e.into()))?;
    print_stdout(&format!("{line}\n"))?;
    if args.wait {
        let done = t::wait(&req, info, poll, wait_timeout, |p| {
            tracing::info!(id = p.id, status = %p.status, web_url = %p.web_url, "pipeline_status");
        })
        .map_err(failed)?;
        tracing::info!(id = done.id, status = %done.status, web_url = %done.web_url, "pipeline_succeeded");
    }
    Ok(())
}
