//! The `pipeline` section: how `pipeline generate` renders the child
//! pipeline (docs/pipelines.md).
//!
//! ```yaml
//! pipeline:
//!   runner_tags: [dist-mirror-shard01]      # default: [] (no default tags)
//!   command: mirrorer                       # or a list of words: [sudo, -n, mirrorer]
//!   config_path: /etc/dist-mirror/dist-mirror.yaml   # default: the file read, absolute
//!   resource_group: dist-mirror-shard01     # optional
//!   timeout: 3h                             # default job timeout (GitLab duration)
//!   retry: {max: 2, when: [runner_system_failure]}   # default for retry-safe jobs
//!   jobs:                                   # per-stage overrides
//!     sync: {timeout: 12h}
//!     snapshot: {retry: {max: 0}}
//! ```

use std::collections::BTreeMap;

use marked_yaml::Node;
use marked_yaml::types::MarkedMappingNode;

use super::reader::{Reader, join, kind};

/// The stages of the child pipeline that run a `mirrorer` command, as named
/// in `pipeline.jobs`.
pub const STAGE_NAMES: &[&str] = &[
    "sync",
    "av-scan",
    "snapshot",
    "verify",
    "replicate",
    "publish-snapshot",
    "publish-inventory",
    "publish-catalog",
    "cleanup-state",
    "promote",
    "prune",
];

/// Values GitLab accepts in `retry:when` (docs.gitlab.com/ci/yaml/#retrywhen).
pub const RETRY_WHEN_VALUES: &[&str] = &[
    "always",
    "unknown_failure",
    "script_failure",
    "api_failure",
    "stuck_or_timeout_failure",
    "runner_system_failure",
    "runner_unsupported",
    "stale_schedule",
    "job_execution_timeout",
    "archived_failure",
    "unmet_prerequisites",
    "scheduler_failure",
    "data_integrity_failure",
];

/// A job's `retry:` (docs.gitlab.com/ci/yaml/#retry).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Retry {
    /// Retries after the first run, 0..=2 (0: no `retry:` is written).
    pub max: u8,
    /// Failure kinds that are retried.
    pub when: Vec<String>,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            max: 2,
            when: vec!["runner_system_failure".to_owned()],
        }
    }
}

/// The effective `pipeline` section.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PipelineSettings {
    /// `default: tags:` of the child pipeline.
    pub runner_tags: Vec<String>,
    /// The words that start `mirrorer` in a job's script [`["mirrorer"]`].
    pub command: Vec<String>,
    /// The `MIRRORER_CONFIG` the jobs use; `None` means the file that
    /// `pipeline generate` read, as an absolute path.
    pub config_path: Option<String>,
    /// `resource_group` of the jobs that take the state lock exclusively;
    /// sync jobs get `<group>:sync:<prefix>`.
    pub resource_group: Option<String>,
    /// Job timeouts by stage name (GitLab duration text).
    pub timeouts: BTreeMap<String, String>,
    /// Explicit retries by stage name.
    pub retries: BTreeMap<String, Retry>,
    /// The retry of retry-safe stages without an explicit one.
    pub default_retry: Retry,
    /// `environment`: the GitLab environment of the `promote` job.
    pub environment: Option<super::environment::Environment>,
}

impl PipelineSettings {
    /// The `retry:` of a stage's jobs: its explicit one, else the default
    /// for stages that can safely run twice (every stage but `snapshot`,
    /// whose rerun would take a second snapshot), else none.
    pub fn retry_for(&self, stage: &str) -> Option<&Retry> {
        let retry = match self.retries.get(stage) {
            Some(r) => r,
            None if stage == "snapshot" => return None,
            None => &self.default_retry,
        };
        (retry.max > 0).then_some(retry)
    }

    /// The `timeout:` of a stage's jobs, if set.
    pub fn timeout_for(&self, stage: &str) -> Option<&str> {
        self.timeouts.get(stage).map(String::as_str)
    }
}

/// Whether `text` looks like a GitLab duration: numbers each followed by an
/// optional unit word, e.g. `3h`, `1h 30m`, `2 days`, `90 minutes`.
pub fn is_duration(text: &str) -> bool {
    let mut saw_number = false;
    for word in text.split_whitespace() {
        let digits = word.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.');
        let has_number = digits.len() < word.len();
        let unit_ok = digits.chars().all(|c| c.is_ascii_alphabetic());
        if has_number {
            saw_number = true;
        } else if !saw_number {
            return false;
        }
        if !unit_ok {
            return false;
        }
    }
    saw_number
}

fn read_timeout(r: &mut Reader, map: Option<&MarkedMappingNode>, path: &str) -> Option<String> {
    let (text, span) = r.opt_str(map, "timeout", path)?;
    if is_duration(&text) {
        Some(text)
    } else {
        r.error(
            &join(path, "timeout"),
            &span,
            format!("must be a GitLab duration such as `3h`, `1h 30m` or `2 days`, found {text:?}"),
        );
        None
    }
}

fn read_retry(r: &mut Reader, map: Option<&MarkedMappingNode>, path: &str) -> Option<Retry> {
    let node = map?.get_node("retry")?;
    let path = join(path, "retry");
    // `retry: 1` is GitLab's short form.
    if let Node::Scalar(_) = node {
        let (text, span) = r.scalar_of(node, &path)?;
        return match text.parse::<u8>() {
            Ok(max) if max <= 2 => Some(Retry {
                max,
                ..Retry::default()
            }),
            _ => {
                r.error(
                    &path,
                    &span,
                    format!("must be 0, 1 or 2 or a mapping {{max, when}}, found {text:?}"),
                );
                None
            }
        };
    }
    let m = r.section(Some(node), &path, &["max", "when"])?;
    let max = r.integer(Some(m), "max", &path, 2, (0, 2));
    let mut when = r.string_list(Some(m), "when", &path);
    if m.get_node("when").is_none() {
        when = Retry::default().when;
    }
    if let Some(Node::Scalar(s)) = m.get_node("when") {
        // A single value is GitLab's short form too.
        when = vec![s.as_str().trim().to_owned()];
    }
    for (i, w) in when.iter().enumerate() {
        if !RETRY_WHEN_VALUES.contains(&w.as_str()) {
            let span = m.get_node("when").map(|n| *n.span()).unwrap_or(*m.span());
            r.error(
                &format!("{path}.when[{i}]"),
                &span,
                format!(
                    "unknown retry condition {w:?} (GitLab accepts: {})",
                    RETRY_WHEN_VALUES.join(", ")
                ),
            );
        }
    }
    Some(Retry {
        max: u8::try_from(max).unwrap_or(2),
        when,
    })
}

/// Reads the `pipeline` section.
pub(super) fn read(r: &mut Reader, node: Option<&Node>) -> PipelineSettings {
    let p = r.section(
        node,
        "pipeline",
        &[
            "runner_tags",
            "command",
            "config_path",
            "resource_group",
            "timeout",
            "retry",
            "jobs",
            "environment",
        ],
    );
    let runner_tags: Vec<String> = r
        .string_list(p, "runner_tags", "pipeline")
        .into_iter()
        .map(|t| t.trim().to_owned())
        .collect();
    if let Some(node) = p.and_then(|m| m.get_node("runner_tags"))
        && runner_tags.iter().any(String::is_empty)
    {
        r.error(
            "pipeline.runner_tags",
            node.span(),
            "runner tags must not be empty",
        );
    }
    let command = match p.and_then(|m| m.get_node("command")) {
        None => vec!["mirrorer".to_owned()],
        Some(Node::Sequence(_)) => {
            let words = r.string_list(p, "command", "pipeline");
            if words.is_empty() || words[0].trim().is_empty() {
                let span = p
                    .and_then(|m| m.get_node("command"))
                    .map(|n| *n.span())
                    .unwrap_or_else(marked_yaml::Span::new_blank);
                r.error("pipeline.command", &span, "must name a program");
            }
            words
        }
        Some(other @ Node::Scalar(_)) => match r.scalar_of(other, "pipeline.command") {
            Some((text, _)) => vec![text],
            None => vec!["mirrorer".to_owned()],
        },
        Some(other) => {
            r.error(
                "pipeline.command",
                other.span(),
                format!(
                    "must be a program or a list of words, found {}",
                    kind(other)
                ),
            );
            vec!["mirrorer".to_owned()]
        }
    };
    let config_path = r.opt_str(p, "config_path", "pipeline").map(|(s, _)| s);
    let resource_group = r.opt_str(p, "resource_group", "pipeline").map(|(s, _)| s);
    let mut timeouts = BTreeMap::new();
    let default_timeout = read_timeout(r, p, "pipeline");
    let default_retry = read_retry(r, p, "pipeline").unwrap_or_default();
    let mut retries = BTreeMap::new();
    let jobs = r.mapping(p.and_then(|m| m.get_node("jobs")), "pipeline.jobs");
    if let Some(jobs) = jobs {
        for (stage, settings) in jobs.iter() {
            let path = join("pipeline.jobs", stage.as_str());
            if !STAGE_NAMES.contains(&stage.as_str()) {
                r.error(
                    &path,
                    stage.span(),
                    format!("unknown stage (stages: {})", STAGE_NAMES.join(", ")),
                );
                continue;
            }
            let Some(m) = r.section(Some(settings), &path, &["timeout", "retry"]) else {
                continue;
            };
            if let Some(t) = read_timeout(r, Some(m), &path) {
                timeouts.insert(stage.as_str().to_owned(), t);
            }
            if let Some(retry) = read_retry(r, Some(m), &path) {
                retries.insert(stage.as_str().to_owned(), retry);
            }
        }
    }
    if let Some(t) = default_timeout {
        for stage in STAGE_NAMES {
            timeouts
                .entry((*stage).to_owned())
                .or_insert_with(|| t.clone());
        }
    }
    PipelineSettings {
        runner_tags,
        command,
        config_path,
        resource_group,
        timeouts,
        retries,
        default_retry,
        environment: super::environment::read(r, p.and_then(|m| m.get_node("environment"))),
    }
}

#[cfg(test)]
mod tests {
    use super::is_duration;

    #[test]
    fn durations() {
        for ok in ["3h", "1h 30m", "2 days", "90 minutes", "1.5h"] {
            assert!(is_duration(ok), "{ok}");
        }
        for bad in ["", "h", "3h;", "forever", "1h $(id)"] {
            assert!(!is_duration(bad), "{bad}");
        }
    }
}
