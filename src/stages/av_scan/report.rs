//! The end of a scan: the threat report, the `done` marker, the compacted
//! journal, and the verdict (exit 5 for threats with `fail_on_threats`);
//! also the verdict of a scan found already done (module docs of
//! [`super`], "Batches and threats").

use super::journal::{Finding, Journal};
use super::list::FileList;
use super::scan::Stats;
use super::{Paths, START_TIME_FORMAT, TARGET, failed};
use crate::backends::antivirus::{self, Engine};
use crate::error::{Error, Result};
use crate::stages::{Executor, StageContext};

/// The report, the `done` marker, the compaction, and the verdict.
#[allow(clippy::too_many_arguments)]
pub(super) fn finish(
    ctx: &StageContext,
    exec: &Executor,
    engine: &Engine,
    paths: &Paths,
    list: &FileList,
    journal: &Journal,
    start_time: &str,
    stats: &Stats,
) -> Result<()> {
    let mut report = String::new();
    match engine {
        Engine::Kesl => {
            let answer = antivirus::kesl_threat_query(&ctx.tools, start_time).map_err(failed)?;
            if !answer.trim().is_empty() {
                report = answer;
                if !report.ends_with('\n') {
                    report.push('\n');
                }
            }
        }
        Engine::Clamav { .. } => {
            let mut findings: Vec<&Finding> = journal.findings.iter().collect();
            findings.sort();
            findings.dedup();
            for f in findings {
                match f.kind {
                    "FOUND" => report.push_str(&format!("{}: {} FOUND\n", f.path, f.detail)),
                    _ => report.push_str(&format!("{}: NOT SCANNED ({})\n", f.path, f.detail)),
                }
            }
        }
    }
    let report_path = (!report.is_empty()).then(|| {
        paths.results.join(format!(
            "av_report_{}.txt",
            chrono::Local::now().format("%Y%m%d-%H%M%S")
        ))
    });
    if let Some(p) = &report_path {
        exec.write(p, report.as_bytes(), 0o644)?;
        tracing::warn!(target: TARGET, path = %p.display(), lines = report.lines().count(), engine = engine.name(), "av_threats_reported");
    }
    let threats = report_path.is_some() || journal.threat_batches > 0;
    let report_text = report_path
        .as_ref()
        .map_or_else(|| "-".to_owned(), |p| p.display().to_string());
    let done = format!(
        "finished={} files={} threats={threats} report={report_text}\n",
        chrono::Local::now().format(START_TIME_FORMAT),
        list.len()
    );
    exec.write(&paths.done, done.as_bytes(), 0o644)?;
    // Compaction: the header, the findings, one range for the whole list.
    exec.write(&paths.journal, &journal.compacted(list), 0o644)?;
    tracing::info!(
        target: TARGET,
        files = list.len(),
        scanned_this_run = stats.files_scanned,
        batches_this_run = stats.batches,
        checkpoints = stats.checkpoints,
        checkpoint_s = (stats.checkpoint_time.as_secs_f64() * 1000.0).round() / 1000.0,
        threat_batches = journal.threat_batches,
        threats = threats,
        report = %report_text,
        "av_scan_finished"
    );
    // Findings: ClamAV one report line each, KESL one event each.
    let findings = match engine {
        Engine::Kesl => report
            .lines()
            .filter(|l| l.starts_with("EventType="))
            .count(),
        Engine::Clamav { .. } => report.lines().count(),
    };
    exec.note_status(crate::status::Note::AvScan {
        threats: if threats { (findings as u64).max(1) } else { 0 },
        files: list.len() as u64,
    });
    verdict(ctx, threats, &report_text, journal.threat_batches)
}

fn verdict(ctx: &StageContext, threats: bool, report: &str, threat_batches: usize) -> Result<()> {
    if !threats {
        return Ok(());
    }
    tracing::warn!(target: TARGET, report = %report, threat_batches = threat_batches, fail_on_threats = ctx.fail_on_threats, "av_threats_found");
    if ctx.fail_on_threats {
        return Err(Error::Threats(format!(
            "antivirus threats found (report: {report}); fail_on_threats is on (--allow-threats to continue)"
        )));
    }
    Ok(())
}

/// A complete scan: nothing is repeated, the recorded outcome decides.
pub(super) fn already_done(ctx: &StageContext, paths: &Paths, done: &str) -> Result<()> {
    let field = |key: &str| {
        done.split_whitespace()
            .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
            .unwrap_or("")
            .to_owned()
    };
    // Anything but an explicit `threats=false` counts as threats: a
    // damaged marker must not let a pipeline pass.
    let threats = field("threats") != "false";
    let report = done
        .split_once(" report=")
        .map(|(_, r)| r.trim().to_owned())
        .unwrap_or_else(|| "-".to_owned());
    tracing::info!(target: TARGET, path = %paths.done.display(), finished = %field("finished"), files = %field("files"), threats = threats, report = %report, "av_scan_already_done");
    verdict(ctx, threats, &report, 0)
}
