//! The job plan of a child pipeline: which jobs exist, their stages, needs,
//! arguments, timeouts, retries and resource groups (spec/pipeline.md,
//! "Child pipeline contract"). Plain data, rendered by [`super::render`].

use serde::Serialize;

use super::mode::{Mode, RunMode};
use crate::config::{Config, Retry, Syncer};

/// The child pipeline's `stages:`, in order.
pub const STAGES: &[&str] = &[
    "sync",
    "scan",
    "snapshot",
    "replicate",
    "publish",
    "cleanup",
];

/// Name of the dotenv report the `snapshot` job writes
/// (`artifacts:reports:dotenv`, docs.gitlab.com/ci/yaml/artifacts_reports/).
pub const SNAPSHOT_DOTENV: &str = "mirrorer-snapshot.env";

/// The variable the dotenv report carries to later jobs.
pub const SNAPSHOT_VARIABLE: &str = "MIRRORER_SNAPSHOT";

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
    /// `timeout:`.
    pub timeout: Option<String>,
    /// `retry:`.
    pub retry: Option<Retry>,
    /// `resource_group:`.
    pub resource_group: Option<String>,
    /// For the no-op job: why there is nothing to do (the job only echoes it).
    pub noop_reason: Option<String>,
}

/// Everything the template needs.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
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

/// A selection that names no configured syncer. Exit 2.
#[derive(Debug, thiserror::Error)]
#[error("no syncer matches name or prefix: {0}")]
pub struct UnknownSyncer(pub String);

/// Picks the syncers whose name or prefix equals one of `wanted` (all when
/// `wanted` is empty), in config order.
///
/// # Errors
/// [`UnknownSyncer`] naming the first value that matches no syncer.
pub fn select_syncers<'a>(
    syncers: &'a [Syncer],
    wanted: &[String],
) -> Result<Vec<&'a Syncer>, UnknownSyncer> {
    if let Some(missing) = wanted
        .iter()
        .find(|w| !syncers.iter().any(|s| &s.name == *w || &s.prefix == *w))
    {
        return Err(UnknownSyncer(missing.clone()));
    }
    Ok(syncers
        .iter()
        .filter(|s| wanted.is_empty() || wanted.iter().any(|w| *w == s.name || *w == s.prefix))
        .collect())
}

struct Builder<'a> {
    config: &'a Config,
    jobs: Vec<Job>,
}

impl Builder<'_> {
    fn add(
        &mut self,
        name: &str,
        stage: &'static str,
        settings_stage: &str,
        needs: &[&str],
        args: Vec<Arg>,
    ) {
        let settings = &self.config.pipeline;
        let needs = needs
            .iter()
            .filter(|n| self.jobs.iter().any(|j| j.name == **n))
            .map(|n| (*n).to_owned())
            .collect();
        self.jobs.push(Job {
            name: name.to_owned(),
            stage,
            needs,
            args,
            dotenv: None,
            timeout: settings.timeout_for(settings_stage).map(str::to_owned),
            retry: settings.retry_for(settings_stage).cloned(),
            resource_group: settings.resource_group.clone(),
            noop_reason: None,
        });
    }
}

/// Builds the plan for `config` in `run_mode`; `config_path` is the
/// `MIRRORER_CONFIG` the jobs will use.
///
/// # Errors
/// [`UnknownSyncer`] when a selected syncer does not exist.
pub fn build(
    config: &Config,
    run_mode: &RunMode,
    config_path: &str,
) -> Result<Plan, UnknownSyncer> {
    let mut b = Builder {
        config,
        jobs: Vec::new(),
    };
    let mode_summary;
    match &run_mode.mode {
        Mode::Full { syncers } => {
            let selected = select_syncers(&config.syncers, syncers)?;
            mode_summary = if syncers.is_empty() {
                "full chain, every syncer".to_owned()
            } else {
                format!(
                    "full chain, syncers: {}",
                    selected
                        .iter()
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            let mut sync_jobs = Vec::new();
            for s in &selected {
                let name = format!("sync:{}", s.prefix);
                b.add(
                    &name,
                    "sync",
                    "sync",
                    &[],
                    vec![word("sync"), word("--syncer"), Arg::Word(s.name.clone())],
                );
                if let (Some(group), Some(job)) =
                    (&config.pipeline.resource_group, b.jobs.last_mut())
                {
                    job.resource_group = Some(format!("{group}:sync:{}", s.prefix));
                }
                sync_jobs.push(name);
            }
            if !sync_jobs.is_empty() {
                let needs: Vec<&str> = sync_jobs.iter().map(String::as_str).collect();
                b.add("av-scan", "scan", "av-scan", &needs, vec![word("av-scan")]);
                b.add(
                    "snapshot",
                    "snapshot",
                    "snapshot",
                    &["av-scan"],
                    vec![word("snapshot"), word("--dotenv"), word(SNAPSHOT_DOTENV)],
                );
                if let Some(job) = b.jobs.last_mut() {
                    job.dotenv = Some(SNAPSHOT_DOTENV);
                }
                b.add(
                    "replicate",
                    "replicate",
                    "replicate",
                    &["snapshot"],
                    vec![word("replicate")],
                );
                let snap = Arg::Var {
                    var: SNAPSHOT_VARIABLE,
                };
                b.add(
                    "publish-snapshot",
                    "publish",
                    "publish-snapshot",
                    &["snapshot", "replicate"],
                    vec![word("publish-snapshot"), word("--snapshot"), snap.clone()],
                );
                b.add(
                    "publish-inventory",
                    "publish",
                    "publish-inventory",
                    &["publish-snapshot"],
                    vec![word("publish-inventory")],
                );
                b.add(
                    "publish-catalog",
                    "publish",
                    "publish-catalog",
                    &["publish-snapshot", "snapshot"],
                    vec![word("publish-catalog"), word("--snapshot"), snap],
                );
                b.add(
                    "cleanup-state",
                    "cleanup",
                    "cleanup-state",
                    &["publish-inventory", "publish-catalog"],
                    vec![word("cleanup-state")],
                );
            }
        }
        Mode::Republish { snapshot } => {
            mode_summary = format!("republish snapshot {snapshot}");
            b.add(
                "publish-snapshot",
                "publish",
                "publish-snapshot",
                &[],
                vec![word("publish-snapshot"), word("--snapshot"), word(snapshot)],
            );
            b.add(
                "publish-inventory",
                "publish",
                "publish-inventory",
                &["publish-snapshot"],
                vec![word("publish-inventory")],
            );
            b.add(
                "publish-catalog",
                "publish",
                "publish-catalog",
                &["publish-snapshot"],
                vec![word("publish-catalog"), word("--snapshot"), word(snapshot)],
            );
        }
        Mode::PublishAll => {
            mode_summary = "publish every snapshot, rebuild every catalog".to_owned();
            b.add(
                "publish-snapshot",
                "publish",
                "publish-snapshot",
                &[],
                vec![word("publish-snapshot"), word("--all")],
            );
            b.add(
                "publish-inventory",
                "publish",
                "publish-inventory",
                &["publish-snapshot"],
                vec![word("publish-inventory")],
            );
            b.add(
                "publish-catalog",
                "publish",
                "publish-catalog",
                &["publish-snapshot"],
                vec![word("publish-catalog"), word("--rebuild")],
            );
        }
        Mode::CatalogRebuild => {
            mode_summary = "rebuild the inventory and every catalog".to_owned();
            b.add(
                "publish-inventory",
                "publish",
                "publish-inventory",
                &[],
                vec![word("publish-inventory")],
            );
            b.add(
                "publish-catalog",
                "publish",
                "publish-catalog",
                &[],
                vec![word("publish-catalog"), word("--rebuild")],
            );
        }
    }
    let mut jobs = b.jobs;
    if jobs.is_empty() {
        let reason = format!(
            "nothing to do: {} configures no syncer, so the {mode_summary} has no job",
            config.path.display()
        );
        jobs.push(Job {
            name: "mirrorer:nothing-to-do".to_owned(),
            stage: "sync",
            needs: Vec::new(),
            args: Vec::new(),
            dotenv: None,
            timeout: None,
            retry: None,
            resource_group: None,
            noop_reason: Some(reason),
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
    Ok(Plan {
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
