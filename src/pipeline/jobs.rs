//! The job plan of a child pipeline: which jobs exist, their stages, needs,
//! arguments, timeouts, retries and resource groups (docs/pipelines.md,
//! "The child pipeline"). Plain data, rendered by [`super::render`].

use serde::Serialize;

use super::mode::{Mode, RunMode};
use crate::config::{Config, Environment, Retry};
use crate::domain::{SNAPSHOT_DOTENV, SNAPSHOT_VARIABLE, SelectError, select_syncers_excluding};

/// The child pipeline's `stages:`, in order.
pub const STAGES: &[&str] = &[
    "sync",
    "scan",
    "snapshot",
    "verify",
    "replicate",
    "publish",
    "cleanup",
];

/// The JUnit file the `verify` job writes (`artifacts:reports:junit`).
pub const VERIFY_JUNIT: &str = "mirrorer-verify.xml";

/// One word of a job's command line after the global options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Arg {
    /// A literal word, shell-quoted when rendered.
    Word(String),
    /// A CI variable, rendered as `"$NAME"` (expanded by the job's shell).
    Var {
        /// The variable's name (`[A-Z_][A-Z0-9_]*`).
        var: &'static str,
    },
}

fn word(s: &str) -> Arg {
    Arg::Word(s.to_owned())
}

/// One job of the child pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Job {
    /// The job name, e.g. `sync:debian` or `publish-snapshot`.
    pub name: String,
    /// One of [`STAGES`].
    pub stage: &'static str,
    /// Names of the jobs this one needs (`needs: []` when empty).
    pub needs: Vec<String>,
    /// The `mirrorer` subcommand and its arguments.
    pub args: Vec<Arg>,
    /// `artifacts:reports:dotenv` file, if the job writes one.
    pub dotenv: Option<&'static str>,
    /// `artifacts:reports:junit` file (kept `when: always`), if the job writes one.
    pub junit: Option<&'static str>,
    /// `timeout:`.
    pub timeout: Option<String>,
    /// `retry:`.
    pub retry: Option<Retry>,
    /// `resource_group:`.
    pub resource_group: Option<String>,
    /// For the no-op job: why there is nothing to do (the job only echoes it).
    pub noop_reason: Option<String>,
    /// `environment:` (`action: start`) of the `promote` job, from
    /// `pipeline.environment`.
    pub environment: Option<Environment>,
}

/// The job graph of one child pipeline: everything the template needs.
#[derive(Debug, Clone, Serialize)]
pub struct JobGraph {
    /// Generator version, for the header comment.
    pub version: &'static str,
    /// The config file the plan was made from, for the header comment.
    pub source_config: String,
    /// A one-line description of the run mode, for the header comment.
    pub mode_summary: String,
    /// `stages:`.
    pub stages: &'static [&'static str],
    /// `default: tags:`.
    pub runner_tags: Vec<String>,
    /// `variables: MIRRORER_CONFIG:`.
    pub config_path: String,
    /// The words that start `mirrorer` in every script.
    pub command: Vec<String>,
    /// Global options every job passes before its subcommand.
    pub global_flags: Vec<String>,
    /// The jobs, in order.
    pub jobs: Vec<Job>,
}

struct Builder<'a> {
    config: &'a Config,
    jobs: Vec<Job>,
}

/// The child-pipeline stage of a `mirrorer` subcommand's job.
fn ci_stage(command: &str) -> &'static str {
    match command {
        "sync" => "sync",
        "av-scan" => "scan",
        "snapshot" => "snapshot",
        "verify" => "verify",
        "replicate" => "replicate",
        "cleanup-state" | "prune" => "cleanup",
        _ => "publish",
    }
}

impl Builder<'_> {
    /// Adds the job `name` that runs `mirrorer <command> <args>...` after
    /// the jobs of `needs` (those not in this pipeline are left out); its
    /// stage, timeout, retry and resource group follow from `command`.
    fn add(&mut self, name: &str, command: &str, needs: &[&str], args: Vec<Arg>) -> &mut Job {
        let settings = &self.config.pipeline;
        let needs = needs
            .iter()
            .filter(|n| self.jobs.iter().any(|j| j.name == **n))
            .map(|n| (*n).to_owned())
            .collect();
        self.jobs.push(Job {
            name: name.to_owned(),
            stage: ci_stage(command),
            needs,
            args: std::iter::once(word(command)).chain(args).collect(),
            dotenv: None,
            junit: None,
            timeout: settings.timeout_for(command).map(str::to_owned),
            retry: settings.retry_for(command).cloned(),
            resource_group: settings.resource_group.clone(),
            noop_reason: None,
            environment: None,
        });
        let last = self.jobs.len() - 1;
        &mut self.jobs[last]
    }

    /// Adds the job of a stage that is its own job name.
    fn stage(&mut self, command: &str, needs: &[&str], args: Vec<Arg>) -> &mut Job {
        self.add(command, command, needs, args)
    }

    /// Adds the `verify` job for `snapshot_args` (after `after`), keeping its
    /// JUnit report; `--allow-shrink` when the run mode says so.
    fn verify(&mut self, after: &[&str], snapshot_args: Vec<Arg>, allow_shrink: bool) {
        let mut args = snapshot_args;
        args.push(word("--junit"));
        args.push(word(VERIFY_JUNIT));
        if allow_shrink {
            args.push(word("--allow-shrink"));
        }
        self.stage("verify", after, args).junit = Some(VERIFY_JUNIT);
    }

    /// Adds publish-snapshot (after `after`), publish-inventory and
    /// publish-catalog (after publish-snapshot and `catalog_after`).
    fn publish(
        &mut self,
        after: &[&str],
        snapshot_args: Vec<Arg>,
        catalog_after: &[&str],
        catalog_args: Vec<Arg>,
    ) {
        self.stage("publish-snapshot", after, snapshot_args);
        self.stage("publish-inventory", &["publish-snapshot"], Vec::new());
        let catalog_needs: Vec<&str> = std::iter::once("publish-snapshot")
            .chain(catalog_after.iter().copied())
            .collect();
        self.stage("publish-catalog", &catalog_needs, catalog_args);
    }

    /// Adds `promote` with `snapshot_args` after `needs` (a job that gets
    /// `MIRRORER_SNAPSHOT` must need the `snapshot` job, whose dotenv report
    /// sets it), in `pipeline.environment` if configured.
    fn promote(&mut self, needs: &[&str], snapshot_args: Vec<Arg>) {
        let environment = self.config.pipeline.environment.clone();
        self.stage("promote", needs, snapshot_args).environment = environment;
    }
}

/// Builds the job graph for `config` in `run_mode`; `config_path` is the
/// `MIRRORER_CONFIG` the jobs will use.
///
/// # Errors
/// [`SelectError`] when a selected or excluded syncer does not exist.
pub fn build(
    config: &Config,
    run_mode: &RunMode,
    config_path: &str,
) -> Result<JobGraph, SelectError> {
    let mut b = Builder {
        config,
        jobs: Vec::new(),
    };
    let mode_summary;
    match &run_mode.mode {
        Mode::Full { syncers, exclude } => {
            let selected = select_syncers_excluding(&config.syncers, syncers, exclude)?;
            mode_summary = if syncers.is_empty() && exclude.is_empty() {
                "full chain, every syncer".to_owned()
            } else if syncers.is_empty() {
                format!("full chain, every syncer but: {}", exclude.join(", "))
            } else {
                let names: Vec<&str> = selected.iter().map(|s| s.name.as_str()).collect();
                format!("full chain, syncers: {}", names.join(", "))
            };
            let mut sync_jobs = Vec::new();
            for s in &selected {
                let name = format!("sync:{}", s.prefix);
                let job = b.add(
                    &name,
                    "sync",
                    &[],
                    vec![word("--syncer"), Arg::Word(s.name.clone())],
                );
                if let Some(group) = &config.pipeline.resource_group {
                    job.resource_group = Some(format!("{group}:sync:{}", s.prefix));
                }
                sync_jobs.push(name);
            }
            if !sync_jobs.is_empty() {
                let needs: Vec<&str> = sync_jobs.iter().map(String::as_str).collect();
                b.stage("av-scan", &needs, Vec::new());
                b.stage(
                    "snapshot",
                    &["av-scan"],
                    vec![word("--dotenv"), word(SNAPSHOT_DOTENV)],
                )
                .dotenv = Some(SNAPSHOT_DOTENV);
                let snap = || {
                    vec![
                        word("--snapshot"),
                        Arg::Var {
                            var: SNAPSHOT_VARIABLE,
                        },
                    ]
                };
                b.verify(&["snapshot"], snap(), run_mode.allow_shrink);
                b.stage("replicate", &["verify"], Vec::new());
                b.publish(&["snapshot", "replicate"], snap(), &["snapshot"], snap());
                // `verify` (when the pipeline has that job) writes the
                // report promote requires.
                b.promote(&["snapshot", "publish-snapshot", "verify"], snap());
                b.stage(
                    "cleanup-state",
                    &["publish-inventory", "publish-catalog"],
                    Vec::new(),
                );
                if config.retention.is_some() {
                    b.stage("prune", &["cleanup-state", "promote"], Vec::new());
                }
            }
        }
        Mode::Republish { snapshot } => {
            mode_summary = if run_mode.promote {
                format!("republish and promote snapshot {snapshot}")
            } else {
                format!("republish snapshot {snapshot}")
            };
            let snap = || vec![word("--snapshot"), word(snapshot)];
            b.verify(&[], snap(), run_mode.allow_shrink);
            b.publish(&["verify"], snap(), &[], snap());
            if run_mode.promote {
                b.promote(&["publish-snapshot", "verify"], snap());
            }
        }
        Mode::PublishAll => {
            mode_summary = "publish every snapshot, rebuild every catalog".to_owned();
            b.publish(&[], vec![word("--all")], &[], vec![word("--rebuild")]);
        }
        Mode::CatalogRebuild => {
            mode_summary = "rebuild the inventory and every catalog".to_owned();
            b.stage("publish-inventory", &[], Vec::new());
            b.stage("publish-catalog", &[], vec![word("--rebuild")]);
        }
    }
    let mut jobs = b.jobs;
    if jobs.is_empty() {
        let reason = if config.syncers.is_empty() {
            format!(
                "nothing to do: {} configures no syncer, so the {mode_summary} has no job",
                config.path.display()
            )
        } else {
            // Only an exclusion of every syncer gets here.
            format!("nothing to do: the {mode_summary} leaves no syncer, so it has no job")
        };
        jobs.push(Job {
            name: "mirrorer:nothing-to-do".to_owned(),
            stage: "sync",
            needs: Vec::new(),
            args: Vec::new(),
            dotenv: None,
            junit: None,
            timeout: None,
            retry: None,
            resource_group: None,
            noop_reason: Some(reason),
            environment: None,
        });
    }
    let mut global_flags = Vec::new();
    if run_mode.skip_remote {
        global_flags.push("--skip-remote".to_owned());
    }
    if run_mode.dry_run {
        global_flags.push("--dry-run".to_owned());
    }
    let mut summary = mode_summary;
    for f in &global_flags {
        summary.push(' ');
        summary.push_str(f);
    }
    if run_mode.allow_shrink {
        summary.push_str(" (verify --allow-shrink)");
    }
    Ok(JobGraph {
        version: env!("CARGO_PKG_VERSION"),
        source_config: config.path.display().to_string(),
        mode_summary: summary,
        stages: STAGES,
        runner_tags: config.pipeline.runner_tags.clone(),
        config_path: config_path.to_owned(),
        command: config.pipeline.command.clone(),
        global_flags,
        jobs,
    })
}
