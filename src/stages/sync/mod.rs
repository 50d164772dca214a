//! `mirrorer sync [--syncer NAME_OR_PREFIX]...` (docs/stages.md, "sync"):
//! every selected syncer runs as a container, all at the same time, each up
//! to [`MAX_ATTEMPTS`] attempts.
//!
//! # Selection and locks
//!
//! `--syncer` (alias `--prefix`, repeatable) picks the syncers whose name or
//! prefix equals one of the values ([`crate::domain::select_syncers`];
//! none given: all). A value that matches nothing is a usage error (exit 2,
//! `no syncer matches name or prefix: X`), reported before any lock is
//! waited for ([`super::run_stage_checked`]). The stage holds
//! `state/pipeline.lock` shared and, for each selected syncer, the exclusive
//! `state/sync-<name>.lock` (taken in config order, so two runs with
//! overlapping selections cannot deadlock), so the per-prefix `sync:` jobs of
//! one child pipeline run together while `snapshot` and the publish stages,
//! which take `pipeline.lock` exclusive, wait for all of them.
//!
//! # One syncer
//!
//! Its `log_file` is opened for appending first (parent directories
//! created); if that fails, one warning `sync_log_file_unavailable
//! container= path= error=` names the file and the error, and the syncer
//! runs anyway with its output in the job log only, as in mirrorer 0.1.0
//! (the `output` module). Then, per attempt (each step through
//! [`crate::backends::container`]):
//!
//! 1. `docker rm -f -- NAME` removes a stale container of the same name;
//! 2. `sync_container_start container= image= attempt= max_attempts=
//!    env_vars=` (the keys only), then `docker run -d --name=NAME --user=U
//!    --volume=H:B:M ... --env-file=F IMAGE ARGS...` (the environment in a
//!    private file removed right after, see the backend);
//! 3. `docker logs --follow NAME` streams the output: each line of both
//!    streams is logged as `[<name>] <line>` (INFO) and appended, without
//!    the prefix, to the log file, which also gets one `--- mirrorer: ...`
//!    line when an attempt starts and ends. The values of environment keys
//!    that look secret ([`crate::logging::is_secret_key`]) and the secret
//!    values of `command_args` ([`crate::redact::secret_values`]) that have
//!    at least [`MIN_REDACTED_LEN`] characters are replaced by `***` in both. With
//!    `CI=true` and one selected syncer (the child pipeline's case), the
//!    output of each attempt is wrapped in a GitLab collapsible section;
//!    the interleaved output of several syncers in one job is not;
//! 4. `docker wait NAME` gives the exit code;
//! 5. `docker stop -t 30 NAME` and `docker rm -f NAME`, whatever happened.
//!
//! Exit code 0 ends the syncer; anything else (or a runtime failure, e.g.
//! an image that cannot be pulled) is logged as `sync_container_retry
//! container= attempt= exit_code= next_attempt=` and retried, or after the
//! last attempt as `sync_container_failed`. At the end every syncer gets a
//! `sync_summary container= status=ok|failed|interrupted attempts=
//! exit_codes=` line (exit codes comma-separated in attempt order, `error`
//! where the runtime failed before the container exited), and the stage
//! fails (exit 1) naming the syncers that failed all attempts, once all
//! others have finished. A container that could not be removed also fails
//! the stage.
//!
//! # Signals
//!
//! On SIGTERM/SIGINT no new attempt starts; each running attempt stops its
//! `docker wait`, stops the container with a 30 s grace period
//! ([`CONTAINER_STOP_GRACE`]) and removes it; the stage then exits 143/130.
//! The cleanup commands are not interrupted by the signal.
//!
//! # Dry run
//!
//! `--dry-run` logs, per selected syncer, the commands of one attempt and
//! runs nothing, takes no per-syncer lock and opens no log file.
//!
//! A [`Plan`] cannot describe this stage: the syncers run concurrently and
//! whether an attempt is retried depends on the container's exit code. So
//! the stage runs its containers itself (through [`crate::process`]) and
//! only its state changes (the per-syncer locks, the `mirror_changed`
//! marker) go through the [`super::Executor`]. The commands of an attempt
//! are built in one place, [`Attempt`]: the real run executes them and the
//! dry run logs the same values as a plan, so the two cannot drift (the
//! one difference: a real attempt starts the container through
//! [`container::start`], which writes the private env file and passes its
//! real path where the dry run shows [`container::env_file_placeholder`]).

mod report;

pub use report::{AttemptEnd, SyncerReport};

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Options, Plan, StageDef, Step, run_stage_checked};
use crate::backends::container::{self, ContainerError};
use crate::config::Syncer;
use crate::error::{Error, Result, chain};
use crate::process::{Cmd, Running, Stream, Tool, Tools};
use crate::state::LockMode;
use report::finish;

mod output;

pub use output::LogFileError;
use output::OutputSink;

const TARGET: &str = "mirrorer::stages::sync";

/// Attempts per syncer.
pub const MAX_ATTEMPTS: u32 = 3;

/// How long a container gets between SIGTERM and SIGKILL when it is stopped
/// (`docker stop -t 30`).
pub const CONTAINER_STOP_GRACE: Duration = Duration::from_secs(30);

/// How long `docker logs --follow` may take to deliver the rest of the
/// output after the container has exited, before it is stopped.
pub const LOGS_DRAIN: Duration = Duration::from_secs(10);

/// Secret environment values shorter than this are not masked in the
/// container output (masking `1` or `yes` would garble every line).
pub const MIN_REDACTED_LEN: usize = 4;

/// Options of `sync`.
#[derive(Debug, Clone, Default)]
pub struct SyncOptions {
    /// Only the syncers with one of these names or prefixes; empty: all.
    pub syncers: Vec<String>,
    /// Every syncer but those with one of these names or prefixes (only
    /// with `syncers` empty).
    pub exclude_syncers: Vec<String>,
}

/// Runs the stage.
///
/// # Errors
/// An unknown `--syncer` or `--exclude-syncer` value, or both flags
/// (exit 2); syncers that failed all attempts
/// or could not be started or removed (exit 1); a signal (exit 130/143);
/// the runner's errors.
pub fn run(options: &Options, args: &SyncOptions) -> Result<()> {
    let def = StageDef {
        name: "sync",
        lock: LockMode::Shared,
    };
    let select = |config: &crate::config::Config| -> Result<Vec<Syncer>> {
        Ok(crate::domain::select_syncers_excluding(
            &config.syncers,
            &args.syncers,
            &args.exclude_syncers,
        )
        .map_err(|e| Error::Usage(e.to_string()))?
        .into_iter()
        .cloned()
        .collect())
    };
    run_stage_checked(
        options,
        def,
        // An unknown --syncer is a usage error before the lock is waited for.
        |ctx| {
            Ok(if select(&ctx.config)?.is_empty() {
                Vec::new()
            } else {
                vec![Tool::Docker]
            })
        },
        |ctx, exec| {
            let selected = select(&ctx.config)?;
            if selected.is_empty() {
                tracing::info!(target: TARGET, "sync_nothing_to_do");
                return Ok(());
            }
            if ctx.dry_run {
                let mut plan = Plan::new();
                for s in &selected {
                    plan.steps.extend(attempt_steps(&ctx.tools, s)?);
                }
                tracing::info!(target: TARGET, syncers = %names(&selected), max_attempts = MAX_ATTEMPTS, "sync_dry_run");
                return exec.execute(&plan);
            }
            exec.lock_syncers(selected.iter().map(|s| s.name.as_str()))?;
            // The mirror is about to change: a scan list made before is no
            // longer complete (av-scan starts a new one).
            exec.mark_mirror_changed(&names(&selected))?;
            tracing::info!(target: TARGET, syncers = %names(&selected), max_attempts = MAX_ATTEMPTS, "sync_start");
            let sections = selected.len() == 1;
            let tools = &ctx.tools;
            let started_at = chrono::Utc::now();
            let reports: Vec<SyncerReport> = std::thread::scope(|scope| {
                let handles: Vec<_> = selected
                    .iter()
                    .map(|s| {
                        let run = move || {
                            let started = Instant::now();
                            let report = run_syncer(tools, s, sections);
                            (report, started.elapsed())
                        };
                        (s, scope.spawn(run))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|(s, h)| {
                        let (report, duration) = h.join().unwrap_or_else(|_| {
                            let report = SyncerReport {
                                name: s.name.clone(),
                                attempts: Vec::new(),
                                setup_error: Some(
                                    "internal error: the syncer's thread panicked".into(),
                                ),
                                cleanup_errors: Vec::new(),
                            };
                            (report, Duration::ZERO)
                        });
                        exec.note_status(crate::status::Note::Syncer {
                            name: report.name.clone(),
                            started_at,
                            duration,
                            exit_codes: report.attempts.iter().map(AttemptEnd::code_text).collect(),
                            status: report.status().to_owned(),
                        });
                        report
                    })
                    .collect()
            });
            finish(&reports)
        },
    )
}

fn names(syncers: &[Syncer]) -> String {
    syncers
        .iter()
        .map(|s| s.name.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// The commands of one attempt of a syncer, built once: an attempt
/// runs them, `--dry-run` logs them ([`Attempt::steps`]). `docker rm -f`
/// and `docker wait` run through [`container::remove`] and
/// [`container::wait`], which check their output and build the same
/// commands ([`container::remove_cmd`], [`container::wait_cmd`]).
#[derive(Debug, Clone)]
pub struct Attempt {
    /// `docker rm -f NAME`, before and after the container runs.
    pub remove: Cmd,
    /// `docker run -d ... --env-file=<placeholder> ...` as the dry run
    /// shows it; a real attempt runs [`container::start`], which builds the
    /// same command with the real private env file.
    pub run: Cmd,
    /// `docker logs --follow NAME` (spawned with a line handler).
    pub logs: Cmd,
    /// `docker wait NAME`.
    pub wait: Cmd,
    /// `docker stop -t 30 NAME`.
    pub stop: Cmd,
}

impl Attempt {
    /// The commands of an attempt of `syncer`.
    ///
    /// # Errors
    /// [`ContainerError::BadVolume`] for a volume `-v` cannot express.
    pub fn new(tools: &Tools, syncer: &Syncer) -> std::result::Result<Attempt, ContainerError> {
        let name = &syncer.name;
        Ok(Attempt {
            remove: container::remove_cmd(tools, name),
            run: container::run_cmd(
                tools,
                syncer,
                (!syncer.environment.is_empty())
                    .then(container::env_file_placeholder)
                    .as_deref(),
            )?,
            logs: container::logs_cmd(tools, name),
            wait: container::wait_cmd(tools, name),
            stop: container::stop_cmd(tools, name, CONTAINER_STOP_GRACE),
        })
    }

    /// The steps of one attempt in the order an attempt runs them.
    pub fn steps(&self) -> Vec<Step> {
        vec![
            Step::Run(self.remove.clone()),
            Step::Run(self.run.clone()),
            Step::Run(self.logs.clone()),
            Step::Run(self.wait.clone()),
            Step::Run(self.stop.clone()),
            Step::Run(self.remove.clone()),
        ]
    }
}

/// The commands of one attempt, for `--dry-run`: the log file's directory,
/// then [`Attempt::steps`].
fn attempt_steps(tools: &Tools, s: &Syncer) -> Result<Vec<Step>> {
    let attempt = Attempt::new(tools, s).map_err(|e| Error::Failed(e.into()))?;
    let mut steps = Vec::new();
    if let Some(parent) = s.log_file.parent() {
        steps.push(Step::CreateDir(parent.to_path_buf()));
    }
    steps.extend(attempt.steps());
    Ok(steps)
}

/// All attempts of one syncer (runs on its own thread).
fn run_syncer(tools: &Tools, syncer: &Syncer, sections: bool) -> SyncerReport {
    let mut report = SyncerReport {
        name: syncer.name.clone(),
        attempts: Vec::new(),
        setup_error: None,
        cleanup_errors: Vec::new(),
    };
    // A syncer whose container cannot be started (bad volume, image or
    // environment value) fails before any attempt.
    let setup = container::check(syncer).and_then(|()| Attempt::new(tools, syncer));
    let commands = match setup {
        Ok(commands) => commands,
        Err(e) => {
            let e = chain(&e);
            tracing::error!(target: TARGET, container = %syncer.name, error = %e, "sync_container_setup_failed");
            report.setup_error = Some(e);
            return report;
        }
    };
    let sink = Arc::new(OutputSink::open_or_warn(syncer));
    let env_vars = syncer
        .environment
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(",");
    for attempt in 1..=MAX_ATTEMPTS {
        if crate::signals::received().is_some() {
            break;
        }
        tracing::info!(
            target: TARGET,
            container = %syncer.name,
            image = %syncer.image,
            attempt,
            max_attempts = MAX_ATTEMPTS,
            env_vars = %env_vars,
            "sync_container_start"
        );
        let started = Instant::now();
        let end = attempt_once(
            tools,
            syncer,
            &commands,
            attempt,
            &sink,
            sections,
            &mut report.cleanup_errors,
        );
        report.attempts.push(end.clone());
        let duration_s = (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
        let (exit_code, error) = match &end {
            AttemptEnd::Exited(0) => {
                tracing::info!(target: TARGET, container = %syncer.name, attempt, duration_s, "sync_container_ok");
                break;
            }
            AttemptEnd::Interrupted => {
                tracing::warn!(target: TARGET, container = %syncer.name, attempt, duration_s, "sync_container_interrupted");
                break;
            }
            AttemptEnd::Exited(c) => (c.to_string(), None),
            AttemptEnd::Error(e) => ("none".to_owned(), Some(e.as_str())),
        };
        let retry = attempt < MAX_ATTEMPTS && crate::signals::received().is_none();
        match (retry, error) {
            (true, None) => {
                tracing::warn!(target: TARGET, container = %syncer.name, attempt, exit_code = %exit_code, next_attempt = attempt + 1, duration_s, "sync_container_retry")
            }
            (true, Some(error)) => {
                tracing::warn!(target: TARGET, container = %syncer.name, attempt, exit_code = %exit_code, error = %error, next_attempt = attempt + 1, duration_s, "sync_container_retry")
            }
            (false, None) => {
                tracing::error!(target: TARGET, container = %syncer.name, attempt, exit_code = %exit_code, duration_s, "sync_container_failed")
            }
            (false, Some(error)) => {
                tracing::error!(target: TARGET, container = %syncer.name, attempt, exit_code = %exit_code, error = %error, duration_s, "sync_container_failed")
            }
        }
    }
    report
}

/// One attempt: remove a stale container, run, stream, wait, stop, remove.
fn attempt_once(
    tools: &Tools,
    syncer: &Syncer,
    commands: &Attempt,
    attempt: u32,
    sink: &Arc<OutputSink>,
    sections: bool,
    cleanup_errors: &mut Vec<String>,
) -> AttemptEnd {
    let name = &syncer.name;
    if let Err(e) = container::remove(tools, name) {
        return AttemptEnd::Error(chain(&e));
    }
    if crate::signals::received().is_some() {
        return AttemptEnd::Interrupted;
    }
    sink.marker(&format!("attempt {attempt}/{MAX_ATTEMPTS} starting"));
    let (end, stopped) = match container::start(tools, syncer) {
        Err(e) if e.interrupted() => (AttemptEnd::Interrupted, false),
        Err(e) => (AttemptEnd::Error(chain(&e)), false),
        Ok(_) => {
            let _section = sections.then(|| {
                crate::logging::section(
                    &format!("sync_{name}_attempt_{attempt}"),
                    &format!("[{name}] container output, attempt {attempt}/{MAX_ATTEMPTS}"),
                    false,
                )
            });
            let handler_sink = Arc::clone(sink);
            let follower = commands
                .logs
                .clone()
                .on_line(move |_: Stream, line: &str| handler_sink.line(line))
                .spawn();
            let mut follower = match follower {
                Ok(f) => Some(f),
                Err(e) => {
                    tracing::warn!(target: TARGET, container = %name, error = %chain(&e), "sync_container_logs_failed");
                    None
                }
            };
            let end = match container::wait(tools, name) {
                Ok(code) => AttemptEnd::Exited(code),
                Err(e) if e.interrupted() => AttemptEnd::Interrupted,
                Err(e) => AttemptEnd::Error(chain(&e)),
            };
            // Stop first (a no-op once it exited), so that after a signal
            // or a failed `wait` the container's last words are streamed.
            stop(&commands.stop, name);
            if let Some(f) = follower.as_mut() {
                drain(f, name);
            }
            (end, true)
        }
    };
    if !stopped {
        // `run` failed or was interrupted: a container may exist anyway.
        stop(&commands.stop, name);
    }
    if let Err(e) = container::remove(tools, name) {
        let e = chain(&e);
        tracing::error!(target: TARGET, container = %name, error = %e, "sync_container_remove_failed");
        cleanup_errors.push(e);
    }
    sink.marker(&format!(
        "attempt {attempt}/{MAX_ATTEMPTS} ended: {}",
        match &end {
            AttemptEnd::Exited(c) => format!("exit code {c}"),
            AttemptEnd::Error(_) => "runtime error".to_owned(),
            AttemptEnd::Interrupted => "interrupted".to_owned(),
        }
    ));
    end
}

/// `docker stop -t 30 NAME`. A failure is only a warning: `docker rm -f`
/// follows and kills and removes the container anyway; only a failed
/// removal leaves it behind.
fn stop(cmd: &Cmd, name: &str) {
    if let Err(e) = cmd.run() {
        tracing::warn!(target: TARGET, container = %name, error = %chain(&e), "sync_container_stop_failed");
    }
}

/// Lets `docker logs --follow` deliver the rest of the output, then stops it.
fn drain(follower: &mut Running, name: &str) {
    let deadline = Instant::now() + LOGS_DRAIN;
    loop {
        match follower.try_wait() {
            Ok(Some(_)) => return,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(25)),
            Ok(None) | Err(_) => break,
        }
    }
    tracing::debug!(target: TARGET, container = %name, "sync_container_logs_stopped");
    let _ = follower.stop(container::CLIENT_STOP_GRACE);
}
