//! The shard's health as data: `<workdir>/metadata/status.json` (schema
//! [`SCHEMA`], docs/metadata.md, "status.json"), the Prometheus textfile
//! `mirrorer.prom` ([`prom`]) and the monitoring plugin `mirrorer check`
//! ([`check`]).
//!
//! # Who writes what
//!
//! Every stage updates its own part when it ends, success or failure
//! ([`record`], called once by [`crate::stages::run_stage`] through the
//! executor): its entry under `stages`, plus what the stage noted on the way
//! ([`Note`]: `sync` its syncers, `replicate` the replicated snapshot,
//! `av-scan` its result). The parts read from the workdir (`snapshot`,
//! `snapshots_count`, `verify`, `promoted`) are recomputed at every write
//! ([`mod@derive`]). Nothing is written under `--dry-run`, nor when the stage
//! never got the state lock (config error, lock timeout).
//!
//! # Concurrency
//!
//! The update is a read-modify-write of the whole file, done under the
//! state lock the stage holds *and* the exclusive flock of
//! `state/status.lock` (opened like every state file: no symlink followed,
//! regular file only): concurrent `sync` jobs hold `pipeline.lock` shared,
//! and this second lock keeps one from losing the other's syncer parts. The
//! file is replaced atomically ([`crate::state::write_atomic`]), so a reader
//! over HTTP sees the old or the new document, never a mix.
//!
//! # Failure is not fatal
//!
//! A missing, oversized or unparsable `status.json` is rebuilt from what
//! this stage knows plus the derived parts (warning `status_rebuilt`); a
//! status that cannot be written is a warning (`status_not_written`), never
//! the stage's failure: monitoring must not break the mirror.

pub mod check;
pub mod derive;
pub mod duration;
pub mod fetch;
pub mod prom;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::Config;
pub(crate) use crate::error::chain;
use crate::state::StateLock;
use crate::state::files::{Access, open_regular, read_regular};

const TARGET: &str = "mirrorer::status";

/// The `schema` value of `status.json`.
pub const SCHEMA: &str = "dist-mirror.status.v1";
/// The file name under `<workdir>/metadata/`.
pub const STATUS_FILE: &str = "status.json";
/// The lock file under `<workdir>/state/` held around the read-modify-write.
pub const STATUS_LOCK_FILE: &str = "status.lock";
/// The largest `status.json` read (bytes); a larger one is rebuilt.
pub const MAX_STATUS_BYTES: u64 = 4 * 1024 * 1024;
/// How long a stage waits for `status.lock` before it gives up writing the
/// status (a warning): holders keep it for milliseconds.
pub const STATUS_LOCK_WAIT: Duration = Duration::from_secs(60);

/// The `status.json` document (docs/metadata.md, "status.json"). Every
/// field is always written (`null` when unknown), so readers (the `fleet`
/// command, `mirrorer check --url`) can rely on the keys; unknown keys of
/// a newer writer are dropped on the next update.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Status {
    /// [`SCHEMA`].
    pub schema: String,
    /// The shard's name ([`crate::catalog::default_shard`]: `DIST_MIRROR_SHARD`
    /// or the host name).
    pub shard: String,
    /// When this document was written (UTC, ISO 8601, `Z`).
    pub generated_at: Option<String>,
    /// Per syncer (container name).
    pub syncers: BTreeMap<String, SyncerStatus>,
    /// Per stage (command name, `publish-snapshot`).
    pub stages: BTreeMap<String, StageStatus>,
    /// The newest published snapshot.
    pub snapshot: Option<SnapshotInfo>,
    /// The verification of the newest published snapshot, if one was made.
    pub verify: Option<VerifyInfo>,
    /// The promoted snapshot, if any.
    pub promoted: Option<PromotedInfo>,
    /// The last successful replication.
    pub replica: Option<ReplicaInfo>,
    /// The last finished antivirus scan.
    pub av_scan: Option<AvScanInfo>,
    /// How many snapshots are published.
    pub snapshots_count: u64,
}

/// One syncer's last run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SyncerStatus {
    /// When its last run started (UTC).
    pub last_attempt_at: Option<String>,
    /// When a run last ended with a successful attempt (UTC); kept across
    /// failed runs.
    pub last_success_at: Option<String>,
    /// Seconds the last run took (all its attempts), 3 decimals.
    pub last_duration_s: Option<f64>,
    /// Attempts of the last run.
    pub attempts: u64,
    /// How each attempt of the last run ended, in order: the exit code as
    /// text, `error` (the runtime failed before the container exited) or
    /// `interrupted`, as in the `sync_summary` log line.
    pub exit_codes: Vec<String>,
    /// `ok`, `failed` or `interrupted`.
    pub status: String,
}

/// One stage's last run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StageStatus {
    /// When its last run started (UTC).
    pub last_run_at: Option<String>,
    /// When it last succeeded (UTC, the end of the run); kept across
    /// failures.
    pub last_success_at: Option<String>,
    /// Seconds the last run took, 3 decimals.
    pub last_duration_s: Option<f64>,
    /// `ok`, `failed` or `interrupted`.
    pub status: String,
    /// The exit code of the last run (docs/cli.md, exit codes).
    pub exit_code: i32,
}

/// A published snapshot.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SnapshotInfo {
    /// Its name (`YYYYmmdd-HHMMSS`, the shard's local time).
    pub name: String,
    /// The time its name stands for, in UTC; `null` for a name that is not
    /// a time.
    pub created_at: Option<String>,
}

/// The result of `verify` for a snapshot (from
/// `metadata/snapshots/<snapshot>/verify.json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VerifyInfo {
    /// The snapshot verified.
    pub snapshot: String,
    /// `ok`, `failed`, or `unreadable` when the file could not be read.
    pub status: String,
    /// Problems found in total.
    pub problems: u64,
    /// Problems per repository id, when the file lists them.
    pub repositories: BTreeMap<String, u64>,
}

/// The promoted snapshot.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PromotedInfo {
    /// Its name.
    pub name: String,
    /// When it was promoted (UTC), if known.
    pub at: Option<String>,
    /// The time its name stands for (UTC), if it is a time.
    pub created_at: Option<String>,
}

/// The last successful replication.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReplicaInfo {
    /// The current snapshot when it was replicated (`state/current_snapshot.txt`).
    pub snapshot: Option<String>,
    /// The replica host.
    pub host: String,
    /// When the replication ended (UTC).
    pub at: Option<String>,
}

/// The last finished antivirus scan.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AvScanInfo {
    /// When it finished (UTC).
    pub at: Option<String>,
    /// `clean` or `threats`.
    pub result: String,
    /// Findings in the threat report (ClamAV: one line per file found
    /// infected or not scanned; KESL: one `EventType=` event each); at
    /// least 1 when threats were found.
    pub threats: u64,
    /// Files in the scan list.
    pub files: u64,
}

/// What a stage noted for its part of the status while it ran.
#[derive(Debug, Clone)]
pub enum Note {
    /// `sync`: one syncer's run.
    Syncer {
        /// The syncer name.
        name: String,
        /// When its run started.
        started_at: DateTime<Utc>,
        /// How long all its attempts took.
        duration: Duration,
        /// How each attempt ended (`0`, `1`, `error`, `interrupted`).
        exit_codes: Vec<String>,
        /// `ok`, `failed` or `interrupted`.
        status: String,
    },
    /// `replicate` succeeded.
    Replica {
        /// The current snapshot, if any.
        snapshot: Option<String>,
        /// The replica host.
        host: String,
    },
    /// `av-scan` finished a scan.
    AvScan {
        /// Findings of the threat report (0: clean; see [`AvScanInfo::threats`]).
        threats: u64,
        /// Files in the list.
        files: u64,
    },
}

/// How a stage ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0.
    Ok,
    /// Failed with this exit code.
    Failed(i32),
    /// Ended by SIGINT/SIGTERM (exit 130/143).
    Interrupted(i32),
}

/// One stage's end, for [`record`].
#[derive(Debug, Clone)]
pub struct StageEnd<'a> {
    /// The stage name.
    pub stage: &'a str,
    /// When the body started (after the lock was taken).
    pub started_at: DateTime<Utc>,
    /// How long it ran (monotonic).
    pub duration: Duration,
    /// How it ended.
    pub outcome: Outcome,
    /// What it noted.
    pub notes: Vec<Note>,
}

/// A UTC time as written in the status: `2026-06-03T12:00:00Z`.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Parses a time written by [`timestamp`] (any RFC 3339 time is accepted).
pub fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn seconds(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

/// `<workdir>/metadata/status.json` of `config`.
pub fn status_path(config: &Config) -> PathBuf {
    config.mirror.metadata_dir().join(STATUS_FILE)
}

/// Parses a `status.json` text.
///
/// # Errors
/// The parser's message when it is not JSON of this shape or its schema is
/// not [`SCHEMA`].
pub fn parse(bytes: &[u8]) -> Result<Status, String> {
    let status: Status = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if status.schema != SCHEMA {
        return Err(format!(
            "schema is {:?}, expected {SCHEMA:?}",
            status.schema
        ));
    }
    Ok(status)
}

/// Applies one stage's end to `status` (its `stages` entry and its notes).
pub fn apply(status: &mut Status, end: &StageEnd<'_>, ended_at: DateTime<Utc>) {
    let entry = status.stages.entry(end.stage.to_owned()).or_default();
    entry.last_run_at = Some(timestamp(end.started_at));
    entry.last_duration_s = Some(seconds(end.duration));
    let (state, code) = match end.outcome {
        Outcome::Ok => ("ok", 0),
        Outcome::Failed(c) => ("failed", c),
        Outcome::Interrupted(c) => ("interrupted", c),
    };
    entry.status = state.to_owned();
    entry.exit_code = code;
    if end.outcome == Outcome::Ok {
        entry.last_success_at = Some(timestamp(ended_at));
    }
    for note in &end.notes {
        match note {
            Note::Syncer {
                name,
                started_at,
                duration,
                exit_codes,
                status: state,
            } => {
                let s = status.syncers.entry(name.clone()).or_default();
                s.last_attempt_at = Some(timestamp(*started_at));
                s.last_duration_s = Some(seconds(*duration));
                s.attempts = exit_codes.len() as u64;
                s.exit_codes = exit_codes.clone();
                s.status = state.clone();
                if state == "ok" {
                    let end =
                        *started_at + chrono::Duration::from_std(*duration).unwrap_or_default();
                    s.last_success_at = Some(timestamp(end));
                }
            }
            Note::Replica { snapshot, host } => {
                status.replica = Some(ReplicaInfo {
                    snapshot: snapshot.clone(),
                    host: host.clone(),
                    at: Some(timestamp(ended_at)),
                });
            }
            Note::AvScan { threats, files } => {
                status.av_scan = Some(AvScanInfo {
                    at: Some(timestamp(ended_at)),
                    result: if *threats > 0 { "threats" } else { "clean" }.to_owned(),
                    threats: *threats,
                    files: *files,
                });
            }
        }
    }
}

/// Records a stage's end: under `state/status.lock`, reads `status.json`,
/// applies `end` ([`apply`]), recomputes the derived parts
/// ([`derive::refresh`]), writes it back atomically through `lock`, then
/// writes the Prometheus textfile when `metrics.textfile_dir` is set
/// ([`prom::write`]). Every failure is logged as a warning
/// (`status_not_written`, `metrics_not_written`), never returned.
pub fn record(lock: &StateLock, config: &Config, end: &StageEnd<'_>) {
    let path = status_path(config);
    let lock_path = lock.state().path().join(STATUS_LOCK_FILE);
    let _status_lock = match take_status_lock(&lock_path) {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(target: TARGET, path = %lock_path.display(), error = %e, "status_not_written");
            return;
        }
    };
    let mut status = load_or_rebuild(&path);
    apply(&mut status, end, Utc::now());
    derive::refresh(&mut status, config, lock.state());
    status.schema = SCHEMA.to_owned();
    status.shard = crate::catalog::default_shard();
    status.generated_at = Some(timestamp(Utc::now()));
    let text = match crate::json::to_pretty_string(&status) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(target: TARGET, path = %path.display(), error = %e, "status_not_written");
            return;
        }
    };
    if let Err(e) = lock.write_file(&path, text.as_bytes(), 0o644) {
        tracing::warn!(target: TARGET, path = %path.display(), error = %chain(&e), "status_not_written");
        return;
    }
    tracing::debug!(target: TARGET, path = %path.display(), stage = end.stage, "status_written");
    if let Some(dir) = &config.metrics.textfile_dir {
        match prom::write(dir, &status) {
            Ok(p) => tracing::debug!(target: TARGET, path = %p.display(), "metrics_written"),
            Err(e) => {
                tracing::warn!(target: TARGET, dir = %dir.display(), error = %chain(&e), "metrics_not_written")
            }
        }
    }
}

/// Reads `path`; a missing, oversized, unreadable or unparsable file gives
/// an empty status (warning `status_rebuilt` unless it was only missing).
fn load_or_rebuild(path: &Path) -> Status {
    match read_regular(path, MAX_STATUS_BYTES) {
        Ok(None) => Status::default(),
        Ok(Some(bytes)) => parse(&bytes).unwrap_or_else(|why| {
            tracing::warn!(target: TARGET, path = %path.display(), error = %why, "status_rebuilt");
            Status::default()
        }),
        Err(e) => {
            tracing::warn!(target: TARGET, path = %path.display(), error = %e, "status_rebuilt");
            Status::default()
        }
    }
}

/// Opens `state/status.lock` (no symlink followed, regular file only) and
/// takes its exclusive flock, waiting up to [`STATUS_LOCK_WAIT`].
fn take_status_lock(path: &Path) -> Result<std::fs::File, String> {
    let file = open_regular(path, Access::ReadWriteCreate, "open the status lock")
        .map_err(|e| chain(&e))?;
    let deadline = Instant::now() + STATUS_LOCK_WAIT;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(format!(
                    "still locked by another process after {} s",
                    STATUS_LOCK_WAIT.as_secs()
                ));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e.to_string()),
        }
    }
}
