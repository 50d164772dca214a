//! The scheduler: runs the pending batches, up to `kesl_max_workers` at
//! once, records each finished batch in the journal and checkpoints
//! through the executor (module docs of [`super`], "Batches and threats",
//! "Progress").

use std::collections::VecDeque;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::journal::{Finding, Journal};
use super::list::{FileList, ListReader, escaped};
use super::{TARGET, failed};
use crate::backends::antivirus::{self, BatchResult, Engine, FileVerdict};
use crate::error::{Error, Result};
use crate::process::{Cmd, Running};
use crate::stages::{Executor, StageContext};
use crate::state::StateError;

/// How often a progress event is logged at INFO.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);
/// Longest pause between two polls of the running scanners.
const MAX_POLL: Duration = Duration::from_millis(25);
/// Longest time between two syncs of the journal: checkpoints are written
/// at once (a killed process loses none), made durable at most this often
/// and when the scan stops, so a power loss costs at most this much
/// rescanning (module docs of [`super`], "Crash safety").
const SYNC_EVERY: Duration = Duration::from_secs(1);

/// Counters of one run.
#[derive(Debug, Default)]
pub(super) struct Stats {
    pub(super) files_scanned: usize,
    pub(super) batches: usize,
    pub(super) checkpoints: usize,
    pub(super) checkpoint_time: Duration,
    pub(super) threat_batches: usize,
}

struct InFlight {
    start: usize,
    end: usize,
    files: Vec<PathBuf>,
    running: Running,
    output: Option<Arc<Mutex<Vec<String>>>>,
}

pub(super) struct Scan<'a> {
    pub(super) ctx: &'a StageContext,
    pub(super) exec: &'a Executor,
    pub(super) engine: &'a Engine,
    pub(super) list: &'a FileList,
    /// Reads the batches' paths from the list, in order.
    pub(super) reader: ListReader,
    /// The list's path, for errors.
    pub(super) list_path: &'a Path,
    pub(super) journal_path: &'a Path,
    pub(super) journal: &'a mut Journal,
    pub(super) workers: usize,
    pub(super) stats: Stats,
}

impl Scan<'_> {
    fn spawn(&mut self, start: usize, end: usize) -> Result<Option<InFlight>> {
        let files = self.reader.paths(start, end).map_err(|source| {
            failed(StateError::Io {
                action: "read the list of files to scan",
                path: self.list_path.to_path_buf(),
                source,
            })
        })?;
        if files.is_empty() {
            return Ok(None);
        }
        let mut cmd: Cmd = self.engine.batch_cmd(&self.ctx.tools, &files);
        let output = self.engine.needs_output().then(|| {
            let sink = Arc::new(Mutex::new(Vec::new()));
            let s = Arc::clone(&sink);
            cmd = cmd.clone().on_line(move |_, line| {
                if let Ok(mut v) = s.lock() {
                    v.push(line.to_owned());
                }
            });
            sink
        });
        let running = cmd.spawn().map_err(failed)?;
        Ok(Some(InFlight {
            start,
            end,
            files,
            running,
            output,
        }))
    }

    /// Runs the batches; returns when all are done, or with the first
    /// failure after the running ones ended.
    pub(super) fn run(&mut self, mut pending: VecDeque<(usize, usize)>) -> Result<()> {
        let started = Instant::now();
        let mut last_info: Option<Instant> = None;
        let mut running: Vec<InFlight> = Vec::new();
        let mut failure: Option<Error> = None;
        let mut pause = Duration::from_micros(100);
        let mut journal = self.exec.appender(self.journal_path)?;
        let mut synced = Instant::now();
        loop {
            if let Some(signal) = crate::signals::received() {
                for mut f in running.drain(..) {
                    let _ = f.running.stop(crate::process::DEFAULT_STOP_GRACE);
                }
                let _ = journal.sync();
                return Err(Error::Signal(signal));
            }
            let mut record = Vec::new();
            while failure.is_none() && running.len() < self.workers {
                let Some((s, e)) = pending.pop_front() else {
                    break;
                };
                match self.spawn(s, e) {
                    Ok(Some(f)) => running.push(f),
                    // Only blank lines: done without a scanner.
                    Ok(None) => self.record(s, e, &BatchResult::default(), &[], &mut record),
                    Err(err) => failure = Some(err),
                }
            }
            if running.is_empty() && record.is_empty() {
                break;
            }
            let mut i = 0;
            while i < running.len() {
                match running[i].running.try_wait() {
                    Ok(None) => i += 1,
                    Ok(Some(finished)) => {
                        let f = running.swap_remove(i);
                        let output = f
                            .output
                            .as_ref()
                            .and_then(|o| o.lock().ok().map(|v| v.clone()))
                            .unwrap_or_default();
                        match self
                            .engine
                            .judge(f.running.cmd(), finished, &f.files, &output)
                        {
                            Ok(result) => {
                                self.stats.files_scanned += f.files.len();
                                self.record(f.start, f.end, &result, &f.files, &mut record)
                            }
                            Err(e) => {
                                tracing::error!(target: TARGET, first_line = f.start, end_line = f.end, error = %e, "av_batch_failed");
                                if failure.is_none() {
                                    failure = Some(failed(e));
                                }
                            }
                        }
                    }
                    Err(e) => {
                        running.swap_remove(i);
                        if failure.is_none() {
                            failure = Some(failed(e));
                        }
                    }
                }
            }
            if record.is_empty() {
                std::thread::sleep(pause);
                pause = (pause * 2).min(MAX_POLL);
                continue;
            }
            pause = Duration::from_micros(100);
            let t = Instant::now();
            journal.write(&record)?;
            if synced.elapsed() >= SYNC_EVERY {
                journal.sync()?;
                synced = Instant::now();
            }
            self.stats.checkpoint_time += t.elapsed();
            self.stats.checkpoints += 1;
            self.progress(
                started,
                &mut last_info,
                pending.is_empty() && running.is_empty(),
            );
        }
        let t = Instant::now();
        let synced = journal.sync();
        self.stats.checkpoint_time += t.elapsed();
        match failure {
            Some(e) => Err(e),
            None => synced,
        }
    }

    /// Marks a finished batch done in memory and adds its journal lines.
    fn record(
        &mut self,
        start: usize,
        end: usize,
        result: &BatchResult,
        files: &[PathBuf],
        out: &mut Vec<u8>,
    ) {
        let mut findings = Vec::new();
        for (i, verdict) in &result.verdicts {
            let Some(path) = files.get(*i) else { continue };
            let (kind, detail) = match verdict {
                FileVerdict::Found(name) => {
                    tracing::warn!(target: TARGET, path = %path.display(), signature = %name, "av_threat_found");
                    ("FOUND", name.as_str())
                }
                FileVerdict::NotScanned(_) if antivirus::vanished(path) => {
                    tracing::warn!(target: TARGET, path = %path.display(), "av_file_vanished");
                    continue;
                }
                FileVerdict::NotScanned(reason) => {
                    tracing::warn!(target: TARGET, path = %path.display(), reason = %reason, "av_file_not_scanned");
                    ("NOT_SCANNED", reason.as_str())
                }
            };
            let finding = Finding {
                kind,
                path: escaped(path.as_os_str().as_bytes()),
                detail: detail.replace(['\t', '\n', '\r'], " "),
            };
            findings.push(finding);
        }
        if result.threat {
            self.stats.threat_batches += 1;
            tracing::warn!(target: TARGET, first_line = start, end_line = end, engine = self.engine.name(), "av_batch_threat");
        }
        self.journal
            .record(start, end, result.threat, findings, out);
        self.stats.batches += 1;
    }

    fn progress(&self, started: Instant, last_info: &mut Option<Instant>, last: bool) {
        let scanned = self.journal.done_count;
        let remaining = self.list.len() - scanned;
        let secs = started.elapsed().as_secs_f64();
        let rate = if secs > 0.0 {
            self.stats.files_scanned as f64 / secs
        } else {
            0.0
        };
        let eta = if rate > 0.0 {
            remaining as f64 / rate
        } else {
            0.0
        };
        let percent = (scanned as f64 * 1000.0 / self.list.len().max(1) as f64).round() / 10.0;
        let info = last || last_info.is_none_or(|t| t.elapsed() >= PROGRESS_EVERY);
        let rate = (rate * 10.0).round() / 10.0;
        let eta = eta.round();
        if info {
            *last_info = Some(Instant::now());
            tracing::info!(target: TARGET, scanned = scanned, remaining = remaining, percent = percent, rate_files_s = rate, eta_s = eta, "av_checkpoint_saved");
        } else {
            tracing::debug!(target: TARGET, scanned = scanned, remaining = remaining, percent = percent, rate_files_s = rate, eta_s = eta, "av_checkpoint_saved");
        }
    }
}
