//! The stage executors and the runner they share (docs/stages.md, "Shared
//! behaviour").
//!
//! # The boundary
//!
//! Data flows one way, and each step owns one thing:
//!
//! ```text
//! cli (clap structs, value parsers)
//!   -> Options + per-stage options (plain values, already checked)
//!   -> run_stage: config, StageContext (effective options), tools, signals
//!   -> Executor (takes and owns the state lock)
//!   -> stage body: reads, then plans (Plan: plain data)
//!   -> Executor: performs the plan, or logs it under --dry-run
//!   -> backends (zfs, syncoid, rsync, container, antivirus) through process
//!   -> state files and metadata, through the lock the executor holds
//! ```
//!
//! - **Flags stop at the CLI.** `cli` turns the flags into [`Options`] (config
//!   path, `--dry-run`, the `--x`/`--no-x` overrides as `Option<bool>`,
//!   `--lock-timeout` as a `Duration`) and one plain options struct per
//!   stage (e.g. [`publish_snapshot::PublishSnapshotOptions`]); every value
//!   is checked by a clap value parser before any work. Nothing here
//!   imports the CLI.
//! - **Domain rules** (snapshot names, syncer selection, the dotenv
//!   variable) come from [`crate::domain`], shared with [`crate::pipeline`].
//! - **One executor owns the lock.** The runner takes `state/pipeline.lock`
//!   into an [`Executor`] and hands it to the body beside the read-only
//!   [`StageContext`]. Every change goes through it: [`Executor::execute`]
//!   (a [`Plan`]: commands, atomic writes, directories, symlinks),
//!   [`Executor::write`], [`Executor::append`] (checkpoints),
//!   [`Executor::lock_syncers`], [`Executor::mark_mirror_changed`]. Under
//!   `--dry-run` it holds the lock read-only (or none) and only logs.
//! - **Where a plan cannot describe the work** (`sync`'s concurrent
//!   containers and retries, `av-scan`'s parallel scanner batches) the
//!   stage drives those commands itself through [`crate::process`], and its
//!   state changes still go through the executor.
//!
//! # The runner
//!
//! Every stage (all commands except `catalog`, `config` and `pipeline`) is a
//! function `run(options, stage_options) -> Result<()>` that calls
//! [`run_stage`] with a [`StageDef`] (name, lock mode), a function listing
//! the external programs it will run, and its body. [`run_stage`]:
//!
//! 1. loads and validates the config (exit 3 on failure) and resolves the
//!    effective options ([`StageContext`]: `--skip-remote`/`--no-skip-remote`
//!    over `replication.skip_remote`, `--fail-on-threats`/`--allow-threats`
//!    over `antivirus.fail_on_threats`, `--dry-run`, `--lock-timeout`);
//! 2. resolves [`Tools`] and checks every program the stage needs, reporting
//!    all missing ones in one error (exit 1);
//! 3. installs the SIGINT/SIGTERM handlers ([`crate::signals`]);
//! 4. opens a GitLab collapsible section `stage_<name>` (only with `CI=true`);
//! 5. takes the state lock `<workdir>/state/pipeline.lock` in the stage's
//!    mode into the [`Executor`] (exit 4 after `--lock-timeout`, naming the
//!    holder); an exclusive holder removes stale `.*.tmp` files under
//!    `state/` and `metadata/` (not through a symlinked `metadata/`:
//!    warning `stale_temp_files_not_cleaned`). Under `--dry-run` the lock is
//!    taken only if the lock file exists, read-only and shared (a dry run
//!    changes nothing, so it only waits for an exclusive holder and writes
//!    no holder line), and nothing is created or cleaned, so a dry run works
//!    on a read-only workdir;
//! 6. logs `stage_start stage=<name>` and runs the body with the
//!    [`StageContext`] and the [`Executor`];
//! 7. records the stage's end in `<workdir>/metadata/status.json` (and the
//!    Prometheus textfile) while it still holds the lock, success or
//!    failure, not under `--dry-run` ([`crate::status::record`], through
//!    [`Executor::record_status`]; problems there are warnings);
//! 8. releases the lock, then logs `stage_ok stage=<name> duration_s=<f>`
//!    (seconds since `stage_start`, 3 decimals), or `stage_failed
//!    stage=<name> error="..." exit_code=<n>` (also for a lock timeout) and
//!    returns the error. Any failure after SIGINT/SIGTERM becomes
//!    [`Error::Signal`] (exit 130/143); a signal that arrives while the body
//!    succeeds still ends the stage with that code.
//!
//! Stages: [`sync`], [`av_scan`], [`snapshot`], [`replicate`],
//! [`publish_snapshot`], [`publish_inventory`], [`publish_catalog`],
//! [`cleanup_state`].
//!
//! # Adding a stage
//!
//! A new stage is a module here with a `run` function, a clap variant in
//! `cli::Command` (its flags in `cli`, turned into a plain options struct
//! here) and one dispatch line. Its shape:
//!
//! ```ignore
//! pub fn run(options: &Options) -> Result<()> {
//!     let def = StageDef::exclusive("cleanup-state");
//!     run_stage(options, def, |_ctx| Vec::new(), |ctx, exec| {
//!         let state = ctx.state();
//!         let mut plan = Plan::new();
//!         plan.push(Step::RemoveFile(state.current_snapshot_path()));
//!         exec.execute(&plan)?;                // or only logged under --dry-run
//!         tracing::info!(dry_run = ctx.dry_run, "state_cleaned");
//!         Ok(())
//!     })
//! }
//! ```
//!
//! [`run_exclusive_stage`] is that call for an exclusive stage that runs no
//! external program of its own (`|_ctx| Vec::new()`).
//!
//! Use [`run_stage_checked`] when the options must be checked against the
//! config before the lock is waited for (`sync --syncer`). Run commands
//! directly only where a plan cannot describe the work (retries, parallel
//! processes), and then build them once for both the real run and the
//! dry-run plan (as `sync`'s [`sync::Attempt`] does). `?` converts
//! [`crate::process::ProcessError`], [`crate::state::StateError`] and
//! [`crate::signals::Interrupted`] into [`Error`] (crate::error). Return
//! [`Error::Threats`] for exit 5; any error after a signal becomes
//! [`Error::Signal`] by itself.

pub mod av_scan;
pub mod cleanup_state;
pub mod executor;
pub mod lifecycle;
pub mod options;
pub mod pin;
pub mod plan;
pub mod promote;
pub mod prune;
pub mod publish_catalog;
pub mod publish_inventory;
pub mod publish_snapshot;
pub mod replicate;
pub mod scratch;
pub mod snapshot;
pub mod sync;
pub mod verify;

use std::time::{Duration, Instant};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::process::{Tool, Tools};
use crate::state::files::check_real_dir;
use crate::state::{LockMode, StateDir};

pub use executor::Executor;
pub use options::{Options, load_config};
pub use plan::{Plan, PlanError, Step};

const TARGET: &str = "mirrorer::stages";

/// What the runner needs to know about a stage.
#[derive(Debug, Clone, Copy)]
pub struct StageDef {
    /// The stage name as on the command line (`publish-snapshot`).
    pub name: &'static str,
    /// How it takes `pipeline.lock`: `sync` shared, every other exclusive.
    pub lock: LockMode,
}

impl StageDef {
    /// A stage named `name` that takes `pipeline.lock` exclusively (every
    /// stage but `sync`).
    pub const fn exclusive(name: &'static str) -> StageDef {
        StageDef {
            name,
            lock: LockMode::Exclusive,
        }
    }
}

/// What a stage body reads: the config, the resolved tools and the
/// effective options. Changes go through the [`Executor`] it gets beside.
#[derive(Debug)]
pub struct StageContext {
    /// The stage name.
    pub stage: &'static str,
    /// The validated config.
    pub config: Config,
    /// The resolved external programs.
    pub tools: Tools,
    /// `--dry-run`: log the plan, change nothing.
    pub dry_run: bool,
    /// Effective skip_remote (flag over config).
    pub skip_remote: bool,
    /// Whether skip_remote came from the command line (`flag`) or the config.
    pub skip_remote_source: &'static str,
    /// Effective fail_on_threats (flag over config).
    pub fail_on_threats: bool,
    /// `--lock-timeout`, also for the per-syncer locks of `sync`.
    pub lock_timeout: Option<Duration>,
    /// `CI=true` in the environment (GitLab).
    pub ci: bool,
}

impl StageContext {
    /// The state directory `<workdir>/state`.
    pub fn state(&self) -> StateDir {
        StateDir::new(self.config.mirror.state_dir())
    }

    /// Whether the remote side is used: not skip_remote and a
    /// `replica_host` set.
    pub fn remote_in_effect(&self) -> bool {
        !self.skip_remote && self.config.replication.replica_host.is_some()
    }

    /// `tools` when the remote side is used ([`Self::remote_in_effect`]),
    /// none otherwise: the programs of a stage whose only work is remote.
    pub fn remote_tools(&self, tools: &[Tool]) -> Vec<Tool> {
        if self.remote_in_effect() {
            tools.to_vec()
        } else {
            Vec::new()
        }
    }

    /// Why the remote side is not used, the `reason` of the
    /// `*_remote_skipped` events: `skip_remote` (flag or config) or
    /// `no replica_host`.
    pub fn remote_skip_reason(&self) -> &'static str {
        if self.skip_remote {
            "skip_remote"
        } else {
            "no replica_host"
        }
    }
}

/// A flag's value over the config's: `(value, "flag" | "config")`.
fn resolve_flag(flag: Option<bool>, config: bool) -> (bool, &'static str) {
    match flag {
        Some(value) => (value, "flag"),
        None => (config, "config"),
    }
}

/// Builds the context (config, options, tools) without checking tools. Used by [`run_stage`]; public for stage unit tests.
///
/// # Errors
/// [`Error::Config`] (exit 3).
pub fn context(options: &Options, stage: &'static str) -> Result<StageContext> {
    let config = load_config(&options.config, options.log_level)?;
    let (skip_remote, skip_remote_source) =
        resolve_flag(options.skip_remote, config.replication.skip_remote);
    let (fail_on_threats, _) =
        resolve_flag(options.fail_on_threats, config.antivirus.fail_on_threats);
    let tools = Tools::from_env(&config.tools);
    Ok(StageContext {
        stage,
        tools,
        dry_run: options.dry_run,
        skip_remote,
        skip_remote_source,
        fail_on_threats,
        lock_timeout: options.lock_timeout,
        ci: std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true")),
        config,
    })
}

/// Runs a stage with the shared behaviour described in the module docs.
///
/// `needs` lists the external programs the stage will run with these
/// options (checked before the lock is taken); `body` does the work.
///
/// # Errors
/// Whatever the steps return, mapped to the exit-code kinds of
/// [`crate::error::Error`].
pub fn run_stage(
    options: &Options,
    def: StageDef,
    needs: impl FnOnce(&StageContext) -> Vec<Tool>,
    body: impl FnOnce(&StageContext, &mut Executor) -> Result<()>,
) -> Result<()> {
    run_stage_checked(options, def, |ctx| Ok(needs(ctx)), body)
}

/// [`run_stage`] of the exclusive stage `name` (a [`StageDef::exclusive`])
/// that runs no external program of its own.
///
/// # Errors
/// As [`run_stage`].
pub fn run_exclusive_stage(
    options: &Options,
    name: &'static str,
    body: impl FnOnce(&StageContext, &mut Executor) -> Result<()>,
) -> Result<()> {
    run_stage(options, StageDef::exclusive(name), |_| Vec::new(), body)
}

/// [`run_stage`] whose `needs` may also reject the options against the
/// loaded config (e.g. `sync --syncer` naming no syncer, exit 2): its error
/// ends the command before any program is checked, the lock is waited for
/// or a stage event is logged, like an invalid config does.
///
/// # Errors
/// The error of `needs`; otherwise as [`run_stage`].
pub fn run_stage_checked(
    options: &Options,
    def: StageDef,
    needs: impl FnOnce(&StageContext) -> Result<Vec<Tool>>,
    body: impl FnOnce(&StageContext, &mut Executor) -> Result<()>,
) -> Result<()> {
    let ctx = context(options, def.name)?;
    let needed = needs(&ctx)?;
    ctx.tools
        .check(&needed)
        .map_err(|e| Error::Failed(anyhow::Error::new(e)))?;
    crate::signals::install().map_err(|e| Error::Failed(anyhow::anyhow!(e)))?;

    let _section = crate::logging::section(
        &format!("stage_{}", def.name),
        &format!("mirrorer {}", def.name),
        false,
    );
    let mut started = Instant::now();
    let mut started_at = chrono::Utc::now();
    let mut executor = None;
    let result = Executor::take(
        &ctx.state(),
        def.name,
        def.lock,
        ctx.lock_timeout,
        ctx.dry_run,
        &ctx.config.mirror.metadata_dir(),
    )
    .and_then(|exec| {
        let exec = executor.insert(exec);
        started = Instant::now();
        started_at = chrono::Utc::now();
        tracing::info!(target: TARGET, stage = def.name, dry_run = ctx.dry_run, "stage_start");
        body(&ctx, exec)
    });
    let result = match (result, crate::signals::received()) {
        (Ok(()), None) => Ok(()),
        (Err(e), None) => Err(e),
        (Err(Error::Signal(n)), _) | (Ok(()), Some(n)) => Err(Error::Signal(n)),
        (Err(e), Some(n)) => {
            // What the signal interrupted, before it becomes exit 128 + n.
            tracing::warn!(target: TARGET, stage = def.name, signal = %crate::signals::name(n), error = %e, "stage_interrupted");
            Err(Error::Signal(n))
        }
    };
    // Its part of status.json, still under the lock (crate::status).
    if let Some(exec) = &executor {
        let outcome = match &result {
            Ok(()) => crate::status::Outcome::Ok,
            Err(e @ Error::Signal(_)) => crate::status::Outcome::Interrupted(e.exit_code().into()),
            Err(e) => crate::status::Outcome::Failed(e.exit_code().into()),
        };
        exec.record_status(&ctx.config, started_at, started.elapsed(), outcome);
    }
    // Release the lock before the final event, so a waiter can proceed.
    drop(executor);
    match &result {
        Ok(()) => tracing::info!(
            target: TARGET,
            stage = def.name,
            duration_s = (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
            "stage_ok"
        ),
        Err(e) => tracing::error!(
            target: TARGET,
            stage = def.name,
            error = %e,
            exit_code = e.exit_code(),
            "stage_failed"
        ),
    }
    result
}

/// Checks that `dir`, a root of the workdir the stage writes to or
/// publishes from (`what`: "the publication root", "the metadata root"), is
/// a real directory or missing ([`check_real_dir`]); done in `--dry-run`
/// too, so a dry run reports what the real run would refuse.
///
/// # Errors
/// [`Error::Failed`] (exit 1) naming `dir` when it is a symlink or not a
/// directory.
pub fn require_real_dir(dir: &std::path::Path, what: &str) -> Result<()> {
    check_real_dir(dir, what).map_err(executor::state_error)
}

/// [`require_real_dir`] for the two roots the metadata stages read and
/// write: `<workdir>/repo` ("the publication root") and `<workdir>/metadata`
/// ("the metadata root"), in that order.
///
/// # Errors
/// As [`require_real_dir`].
pub fn require_publication_roots(mirror: &crate::config::Mirror) -> Result<()> {
    require_real_dir(&mirror.repo_dir(), "the publication root")?;
    require_real_dir(&mirror.metadata_dir(), "the metadata root")
}

/// Writes the metadata document `text` (`inventory.json`, a
/// `repo_catalog.json`) to `path` through a one-step [`Plan`]: atomically,
/// mode 0644, parents created; under `--dry-run` the plan is logged.
///
/// # Errors
/// As [`Executor::execute`].
pub fn write_metadata(exec: &Executor, path: &std::path::Path, text: String) -> Result<()> {
    let mut plan = Plan::new();
    plan.push(Step::Write {
        path: path.to_path_buf(),
        contents: text.into_bytes(),
        mode: 0o644,
    });
    exec.execute(&plan)
}

/// A stage failure (exit 1) caused by an error of another area.
fn failed(e: impl Into<anyhow::Error>) -> Error {
    Error::Failed(e.into())
}

/// A stage failure (exit 1) described by `message`.
fn failed_with(message: String) -> Error {
    Error::Failed(anyhow::Error::msg(message))
}
