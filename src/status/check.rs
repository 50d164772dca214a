//! `mirrorer check`: a monitoring plugin in the Nagios/Icinga convention
//! (the Monitoring Plugins development guidelines) over `status.json`
//! (docs/cli.md, "check").
//!
//! It prints one line, `MIRRORER <STATE> - <summary> | <perfdata>`, and
//! exits with the plugin's code: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN
//! (not the table of docs/cli.md, "Exit codes"). The status comes from
//! `--status FILE`, `--url URL` (a shard's `/metadata/status.json` over
//! HTTP(S), [`super::fetch`]) or the config's
//! `<workdir>/metadata/status.json`.
//!
//! Rules, the worst wins:
//!
//! - the status cannot be read, is not JSON or not schema
//!   `dist-mirror.status.v1`, or the config cannot be loaded: UNKNOWN;
//! - the age of the promoted snapshot (else the newest published one), from
//!   the time its name stands for: over `--crit-age` CRITICAL, over
//!   `--warn-age` WARNING; no published snapshot: CRITICAL;
//! - the same for each syncer's last success; a syncer that never
//!   succeeded: CRITICAL;
//! - `verify` failed: CRITICAL (unreadable: WARNING);
//! - threats in the last antivirus scan: CRITICAL.
//!
//! Perfdata (`label=value[UOM];warn;crit;min`): `snapshot_age` (s),
//! `snapshots`, `syncers_failed`, `verify_problems`, `av_threats`, and
//! `syncer_<name>_age` (s) per syncer. Text from the status (a remote,
//! possibly hostile document) is reduced to printable characters without
//! `|`, and labels to `[A-Za-z0-9_.-]`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::duration::{self, human};
use super::{Status, parse_timestamp};

/// The options of `mirrorer check`.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    /// Read this status.json instead of the config's WORKDIR/metadata/status.json.
    #[arg(long, value_name = "FILE", conflicts_with = "url")]
    pub status: Option<PathBuf>,

    /// Read a shard's status over HTTP(S), e.g.
    /// `https://shard1.example/metadata/status.json`.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,

    /// WARNING when the promoted (else newest) snapshot or a syncer's last
    /// success is older than this (GitLab duration: 26h, 1d 2h, 90m).
    #[arg(long, value_name = "DURATION", default_value = "26h")]
    pub warn_age: String,

    /// CRITICAL when older than this (GitLab duration).
    #[arg(long, value_name = "DURATION", default_value = "50h")]
    pub crit_age: String,

    /// Give up reading --url after this long (GitLab duration).
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub timeout: String,
}

// The durations are parsed by `run`, not by clap: a plugin reports a bad
// argument as UNKNOWN (exit 3), where clap would exit 2 (CRITICAL).
fn parse_duration(flag: &str, text: &str) -> Result<Duration, String> {
    duration::parse(text).map_err(|e| format!("{flag}: {e}"))
}

/// A plugin state. The order (OK < WARNING < CRITICAL) picks the worst
/// finding; UNKNOWN is only reported when the status could not be judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum State {
    /// 0.
    Ok,
    /// 1.
    Warning,
    /// 2.
    Critical,
    /// 3.
    Unknown,
}

impl State {
    /// `OK`, `WARNING`, `CRITICAL`, `UNKNOWN`.
    pub fn name(self) -> &'static str {
        match self {
            State::Ok => "OK",
            State::Warning => "WARNING",
            State::Critical => "CRITICAL",
            State::Unknown => "UNKNOWN",
        }
    }

    /// The plugin exit code.
    pub fn code(self) -> u8 {
        match self {
            State::Ok => 0,
            State::Warning => 1,
            State::Critical => 2,
            State::Unknown => 3,
        }
    }
}

/// Printable text from the status: no control characters, no `|` (the
/// perfdata separator), at most 80 characters.
fn clean(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .map(|c| if c == '|' { '/' } else { c })
        .take(80)
        .collect()
}

/// A perfdata label: `[A-Za-z0-9_.-]`, others as `_`, at most 60.
fn label(text: &str) -> String {
    crate::text::safe_chars(text).take(60).collect()
}

/// The verdict on `status` at `now`: the state, the summary, the perfdata.
pub fn evaluate(
    status: &Status,
    now: DateTime<Utc>,
    warn: Duration,
    crit: Duration,
) -> (State, String, String) {
    let mut problems: Vec<(State, String)> = Vec::new();
    let mut perf = Vec::new();
    let (w, c) = (warn.as_secs(), crit.as_secs());
    let judge = |age: Duration| {
        if age > crit {
            State::Critical
        } else if age > warn {
            State::Warning
        } else {
            State::Ok
        }
    };
    let age_of = |t: Option<&String>| {
        t.and_then(|t| parse_timestamp(t))
            .map(|t| (now - t).to_std().unwrap_or(Duration::ZERO))
    };

    // The snapshot served: the promoted one, else the newest published.
    let (which, snap, time) = match (&status.promoted, &status.snapshot) {
        (Some(p), _) => (
            "promoted",
            Some(p.name.as_str()),
            p.created_at.as_ref().or(p.at.as_ref()),
        ),
        (None, Some(s)) => ("newest", Some(s.name.as_str()), s.created_at.as_ref()),
        (None, None) => ("newest", None, None),
    };
    match (snap, age_of(time)) {
        (None, _) => problems.push((State::Critical, "no published snapshot".to_owned())),
        (Some(name), None) => problems.push((
            State::Warning,
            format!("{which} snapshot {} has no time", clean(name)),
        )),
        (Some(name), Some(age)) => {
            let state = judge(age);
            if state != State::Ok {
                problems.push((
                    state,
                    format!("{which} snapshot {} is {} old", clean(name), human(age)),
                ));
            }
            perf.push(format!("snapshot_age={}s;{w};{c};0", age.as_secs()));
        }
    }
    perf.push(format!("snapshots={};;;0", status.snapshots_count));

    let mut failed = 0;
    let mut syncer_perf = Vec::new();
    for (name, s) in &status.syncers {
        if s.status != "ok" {
            failed += 1;
        }
        match age_of(s.last_success_at.as_ref()) {
            None => problems.push((
                State::Critical,
                format!("syncer {} never succeeded", clean(name)),
            )),
            Some(age) => {
                let state = judge(age);
                if state != State::Ok {
                    problems.push((
                        state,
                        format!("syncer {} last succeeded {} ago", clean(name), human(age)),
                    ));
                }
                syncer_perf.push(format!(
                    "syncer_{}_age={}s;{w};{c};0",
                    label(name),
                    age.as_secs()
                ));
            }
        }
    }
    perf.push(format!("syncers_failed={failed};;;0"));

    let mut verify_problems = 0;
    if let Some(v) = &status.verify {
        verify_problems = v.problems;
        match v.status.as_str() {
            "ok" => {}
            "failed" => problems.push((
                State::Critical,
                format!(
                    "verify of {} failed ({} problems)",
                    clean(&v.snapshot),
                    v.problems
                ),
            )),
            other => problems.push((
                State::Warning,
                format!("verify of {} is {}", clean(&v.snapshot), clean(other)),
            )),
        }
    }
    perf.push(format!("verify_problems={verify_problems};;;0"));
    let threats = status.av_scan.as_ref().map_or(0, |a| a.threats);
    if threats > 0 {
        problems.push((
            State::Critical,
            format!("antivirus found {threats} threats"),
        ));
    }
    perf.push(format!("av_threats={threats};;0;0"));
    perf.extend(syncer_perf);

    problems.sort_by_key(|p| std::cmp::Reverse(p.0));
    let state = problems.first().map_or(State::Ok, |p| p.0);
    let shard = clean(&status.shard);
    let summary = if problems.is_empty() {
        let snap = match (snap, age_of(time)) {
            (Some(n), Some(age)) => format!("{which} snapshot {} ({} old)", clean(n), human(age)),
            _ => String::new(),
        };
        format!(
            "shard {shard}: {snap}, {} syncers ok, {} snapshots",
            status.syncers.len(),
            status.snapshots_count
        )
    } else {
        format!(
            "shard {shard}: {}",
            problems
                .iter()
                .map(|p| p.1.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        )
    };
    (state, summary, perf.join(" "))
}

fn unknown(message: &str) -> ExitCode {
    println!("MIRRORER UNKNOWN - {}", clean_line(message));
    ExitCode::from(State::Unknown.code())
}

/// A message on one line without `|`.
fn clean_line(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '|' => '/',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect()
}

/// Runs `mirrorer check` with `config` (the global `--config`) and returns
/// the plugin exit code; everything goes to stdout on one line.
pub fn run(args: &CheckArgs, config: &std::path::Path) -> ExitCode {
    let durations = parse_duration("--warn-age", &args.warn_age).and_then(|w| {
        Ok((
            w,
            parse_duration("--crit-age", &args.crit_age)?,
            parse_duration("--timeout", &args.timeout)?,
        ))
    });
    let (warn_age, crit_age, timeout) = match durations {
        Ok(d) => d,
        Err(e) => return unknown(&e),
    };
    if crit_age < warn_age {
        return unknown(&format!(
            "--crit-age ({}) is shorter than --warn-age ({})",
            human(crit_age),
            human(warn_age)
        ));
    }
    let (source, bytes) = if let Some(url) = &args.url {
        let shown = super::fetch::display_url(url);
        match super::fetch::fetch(url, timeout) {
            Ok(b) => (shown, b),
            Err(e) => return unknown(&format!("cannot read {shown}: {e}")),
        }
    } else {
        let path = match &args.status {
            Some(p) => p.clone(),
            None => match crate::config::load(config) {
                Ok(c) => super::status_path(&c),
                Err(e) => {
                    return unknown(&format!(
                        "cannot load the config {}: {}",
                        config.display(),
                        super::chain(&e)
                    ));
                }
            },
        };
        match crate::state::files::read_regular(&path, super::MAX_STATUS_BYTES) {
            Ok(Some(b)) => (path.display().to_string(), b),
            Ok(None) => return unknown(&format!("{} does not exist", path.display())),
            Err(e) => return unknown(&super::chain(&e)),
        }
    };
    let status = match super::parse(&bytes) {
        Ok(s) => s,
        Err(e) => return unknown(&format!("{source} is not a status document: {e}")),
    };
    let (state, summary, perf) = evaluate(&status, Utc::now(), warn_age, crit_age);
    println!("MIRRORER {} - {} | {}", state.name(), summary, perf);
    ExitCode::from(state.code())
}
