//! The Prometheus textfile `<metrics.textfile_dir>/mirrorer.prom`
//! (docs/config.md, `metrics`; README, "Monitoring"), for node_exporter's
//! textfile collector: written from the same [`Status`] as `status.json`,
//! atomically (a temp file `.mirrorer.prom.<random>.tmp` in the same
//! directory, then renamed: the collector only reads `*.prom`, so it never
//! sees a half-written file). A temp file of ours left by a killed run is
//! removed at the next write (writes happen under `state/status.lock`, so
//! no other writer of ours is using it); other files of the directory,
//! which node_exporter's other collectors share, are never touched.
//!
//! The metrics, all gauges (`# HELP` and `# TYPE` lines from the encoder):
//!
//! | metric | labels | value |
//! |---|---|---|
//! | `mirrorer_syncer_last_success_timestamp_seconds` | `syncer` | Unix time of the last successful run |
//! | `mirrorer_syncer_last_duration_seconds` | `syncer` | seconds of the last run |
//! | `mirrorer_syncer_up` | `syncer` | 1 if the last run succeeded, else 0 |
//! | `mirrorer_stage_last_success_timestamp_seconds` | `stage` | Unix time of the last success |
//! | `mirrorer_stage_last_duration_seconds` | `stage` | seconds of the last run |
//! | `mirrorer_snapshots` | | published snapshots |
//! | `mirrorer_promoted_snapshot_timestamp_seconds` | | Unix time the promoted snapshot's name stands for |
//! | `mirrorer_verify_problems` | `repository` | problems `verify` found (`repository=""`: the total, when no repository is listed) |
//! | `mirrorer_av_threats` | | findings of the last antivirus scan (0: clean) |
//!
//! A series is present only once its value is known (no syncer that never
//! succeeded gets a success timestamp of 0).
//!
//! The encoder is the `prometheus-client` crate (the Prometheus project's
//! Rust client; no HTTP server), through
//! [`prometheus_client::encoding::text::encode_registry`]: the OpenMetrics
//! text of gauges without the final `# EOF`, which is also the classic text
//! format node_exporter reads. That encoder writes label values as given,
//! so [`label`] escapes them (`\`, `"`, newline) first: repository ids come
//! from `verify.json`, which describes a hostile tree.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode_registry;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::{Status, parse_timestamp};
use crate::state::{WriteError, write_atomic};

/// The file name in the textfile directory.
pub const PROM_FILE: &str = "mirrorer.prom";

type Labels = Vec<(String, String)>;
type FloatGauge = Gauge<f64, AtomicU64>;

/// A label value escaped for the text format (`\\`, `\"`, `\n`).
pub fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn unix(ts: Option<&String>) -> Option<f64> {
    ts.and_then(|t| parse_timestamp(t))
        .map(|t| t.timestamp() as f64)
}

fn family() -> Family<Labels, FloatGauge> {
    Family::default()
}

fn set(f: &Family<Labels, FloatGauge>, key: &str, value: &str, v: f64) {
    f.get_or_create(&vec![(key.to_owned(), label(value))])
        .set(v);
}

/// The last success (Unix time) and last duration (seconds) of the syncer or
/// stage `name` into its `[success, duration]` families, each where known.
fn set_last_run(
    [success, duration]: [&Family<Labels, FloatGauge>; 2],
    key: &str,
    name: &str,
    (last_success_at, last_duration_s): (Option<&String>, Option<f64>),
) {
    if let Some(t) = unix(last_success_at) {
        set(success, key, name, t);
    }
    if let Some(d) = last_duration_s {
        set(duration, key, name, d);
    }
}

/// The text of `mirrorer.prom` for `status`.
///
/// # Errors
/// Only if the encoder fails to format, which writing to a `String` does not.
pub fn render(status: &Status) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::default();
    let syncer_success = family();
    let syncer_duration = family();
    let syncer_up = family();
    for (name, s) in &status.syncers {
        let last = (s.last_success_at.as_ref(), s.last_duration_s);
        set_last_run([&syncer_success, &syncer_duration], "syncer", name, last);
        set(
            &syncer_up,
            "syncer",
            name,
            if s.status == "ok" { 1.0 } else { 0.0 },
        );
    }
    let stage_success = family();
    let stage_duration = family();
    for (name, s) in &status.stages {
        let last = (s.last_success_at.as_ref(), s.last_duration_s);
        set_last_run([&stage_success, &stage_duration], "stage", name, last);
    }
    let verify = family();
    if let Some(v) = &status.verify {
        if v.repositories.is_empty() {
            set(&verify, "repository", "", v.problems as f64);
        }
        for (repo, n) in &v.repositories {
            set(&verify, "repository", repo, *n as f64);
        }
    }
    registry.register(
        "mirrorer_syncer_last_success_timestamp_seconds",
        "Unix time a syncer last succeeded",
        syncer_success,
    );
    registry.register(
        "mirrorer_syncer_last_duration_seconds",
        "Seconds the last run of a syncer took, all attempts",
        syncer_duration,
    );
    registry.register(
        "mirrorer_syncer_up",
        "Whether the last run of a syncer succeeded (1) or not (0)",
        syncer_up,
    );
    registry.register(
        "mirrorer_stage_last_success_timestamp_seconds",
        "Unix time a stage last succeeded",
        stage_success,
    );
    registry.register(
        "mirrorer_stage_last_duration_seconds",
        "Seconds the last run of a stage took",
        stage_duration,
    );
    let snapshots = FloatGauge::default();
    snapshots.set(status.snapshots_count as f64);
    registry.register("mirrorer_snapshots", "Published snapshots", snapshots);
    if let Some(p) = &status.promoted {
        let promoted = FloatGauge::default();
        if let Some(t) = unix(p.created_at.as_ref()).or_else(|| unix(p.at.as_ref())) {
            promoted.set(t);
            registry.register(
                "mirrorer_promoted_snapshot_timestamp_seconds",
                "Unix time the promoted snapshot was taken",
                promoted,
            );
        }
    }
    registry.register(
        "mirrorer_verify_problems",
        "Problems verify found in the newest snapshot, per repository",
        verify,
    );
    if let Some(av) = &status.av_scan {
        let threats = FloatGauge::default();
        threats.set(av.threats as f64);
        registry.register(
            "mirrorer_av_threats",
            "Threats in the report of the last antivirus scan",
            threats,
        );
    }
    let mut text = String::new();
    encode_registry(&mut text, &registry)?;
    Ok(text)
}

/// Writes `<dir>/mirrorer.prom` atomically (mode 0644) and returns its
/// path. `dir` must exist (it belongs to node_exporter's set-up).
///
/// # Errors
/// [`WriteError`] naming the file.
pub fn write(dir: &Path, status: &Status) -> Result<PathBuf, WriteError> {
    let path = dir.join(PROM_FILE);
    let text = render(status).map_err(|e| WriteError {
        path: path.clone(),
        source: std::io::Error::other(e),
    })?;
    remove_stale_temp_files(dir);
    write_atomic(&path, text.as_bytes(), 0o644)?;
    Ok(path)
}

/// Removes `.mirrorer.prom.*.tmp` regular files from `dir` (module docs);
/// failures are logged, never returned.
fn remove_stale_temp_files(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let prefix = format!(".{PROM_FILE}.");
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let ours = name.starts_with(&prefix) && name.ends_with(".tmp");
        // file_type() does not follow a symlink: only our own regular files go.
        if !ours || !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        match std::fs::remove_file(entry.path()) {
            Ok(()) => {
                tracing::info!(target: "mirrorer::status", path = %entry.path().display(), "stale_metrics_temp_file_removed");
            }
            Err(e) => {
                tracing::warn!(target: "mirrorer::status", path = %entry.path().display(), error = %e, "stale_metrics_temp_file_not_removed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_label_values_are_escaped() {
        let mut status = Status::default();
        status.verify = Some(super::super::VerifyInfo {
            snapshot: "s".into(),
            status: "failed".into(),
            problems: 1,
            repositories: [("a\"b\\c\nd".to_owned(), 1)].into_iter().collect(),
        });
        let text = render(&status).unwrap();
        assert!(
            text.contains(r#"mirrorer_verify_problems{repository="a\"b\\c\nd"} 1"#),
            "{text}"
        );
        assert!(text.contains("# TYPE mirrorer_snapshots gauge"), "{text}");
    }
}
