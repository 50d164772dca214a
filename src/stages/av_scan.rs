//! `mirrorer av-scan` (spec/stages.md, "av-scan"): a resumable, batched
//! antivirus scan of the files that changed since the newest ZFS snapshot.
//!
//! # What is scanned
//!
//! With no list in `state/av_state/` (a fresh scan, after `cleanup-state`):
//! if the dataset has snapshots, every path `zfs diff -H -F
//! <dataset>@<newest>` reports with change `+` or `M` and type `F`, not under
//! a `<xattrdir>` component, that is still a regular file (not following
//! symlinks); renames (`R`) and removals (`-`) are not scanned. Paths are
//! unescaped to their raw bytes ([`crate::backends::zfs::parse_diff_line`]).
//! With no snapshot, every regular file under `zfs_mirror_dir` (top-level
//! `.zfs` skipped), in name order. Duplicates are dropped. An empty list logs
//! `av_scan_skipped_no_files` and writes nothing.
//!
//! # On-disk format (`state/av_state/`)
//!
//! | file | written | content |
//! |---|---|---|
//! | `scan_start_time.txt` | once per list, atomically, before the list | local time `%Y-%m-%d %H:%M:%S` and a newline |
//! | `files_to_scan.txt` | once, atomically | one path per line, [escaped](escape_path) |
//! | `journal` | header atomically, then appended and fsynced per checkpoint | see below |
//! | `done` | atomically when the scan is complete | `finished=<time> files=<n> threats=<true\|false> report=<path\|->` |
//! | `mirror_changed` | by `sync`, atomically, before its containers run | `syncers=<names> at=<time>` |
//!
//! **A sync outdates the list.** `sync` writes `mirror_changed` before it
//! changes the mirror ([`crate::state::StateLock::mark_mirror_changed`]). A list (finished or not)
//! found together with that marker was made before the mirror changed, so
//! it no longer holds every changed file: `av-scan` logs
//! `av_scan_list_outdated`, drops the list, its journal and `done`, and makes
//! a new list; the marker is removed once the new list is written. Without
//! this a pipeline that failed after `av-scan` would leave a finished scan
//! behind, and the next night's `sync` could add files that no scan ever
//! saw. Within one pipeline (a retried `av-scan` job) no sync runs, so the
//! scan resumes.
//!
//! **Path escaping** ([`escape_path`] / [`unescape_path`]): a path is
//! written as its raw bytes (it need not be UTF-8), except that `\`, every
//! control byte (below 0x20, and 0x7f) — so newline, carriage return and tab
//! — are written as `\` and three octal digits (`\134`, `\012`, `\011`). One
//! line is then always one path, a `\` always starts an escape, and plain
//! paths (a list from the previous tool) read back unchanged.
//!
//! **The journal** is the checkpoint. Its first line ties it to the list:
//! `mirrorer-av-journal 1 lines=<n> bytes=<size of files_to_scan.txt>`; a
//! journal whose header does not match the list is discarded (everything is
//! rescanned). Then, per finished batch, zero or more finding lines and one
//! batch line (fields separated by a tab):
//!
//! ```text
//! F<TAB>FOUND<TAB><escaped path><TAB><signature>
//! F<TAB>NOT_SCANNED<TAB><escaped path><TAB><reason>
//! B<TAB><first line><TAB><end line, exclusive><TAB><clean|threat>
//! ```
//!
//! Line numbers count from 0 in `files_to_scan.txt`, so the journal stays
//! valid if `antivirus.batch_size` changes between a crash and the resume.
//! The finding lines of a batch are written in the same `write(2)` as its
//! `B` line and belong to the next `B` line; finding lines with no `B` line
//! after them (a crash cut the write) are ignored. The batches that end
//! while others run are written together: one append and one `fdatasync`
//! per poll of the running scanners (a checkpoint), so its cost does not
//! depend on the length of the list ([`crate::state::StateLock::append`]).
//! On resume everything after the last accepted `B` line (a line cut by a
//! crash, finding lines whose `B` line was cut) is dropped — the journal is
//! rewritten once without it — so a later append cannot attach stale
//! findings to another batch; a malformed line is ignored with a warning.
//!
//! `scan_start_time.txt` is written for every new list (a stale journal is
//! removed first) and reused on resume; a list without a valid
//! start time (written by the previous tool, or by hand) gets the list's
//! modification time, recorded then.
//!
//! Crash safety: a batch is in the journal only after its scanner ended
//! with an accepted status, and the journal is fsynced before new batches
//! start. After SIGKILL at any moment the rerun rescans exactly the
//! batches that were running (or had ended but were not yet written) —
//! at most `kesl_max_workers` batches — and never skips a line that is not
//! in a `B` range.
//!
//! At the end (all lines done): the threat report (below), then `done`, then
//! the journal is compacted atomically to its header, the finding lines and
//! one `B 0 <n> <status>` line. With `done` present a rerun repeats nothing
//! (`av_scan_already_done`) but reports the recorded outcome again,
//! including exit 5 for threats with `fail_on_threats`, until
//! `cleanup-state` removes `av_state/`.
//!
//! # Batches and threats
//!
//! The lines not yet done are cut into batches of `antivirus.batch_size`
//! consecutive lines; up to `mirror.kesl_max_workers` run at once
//! ([`crate::backends::antivirus`] for each engine's command and verdicts).
//! A batch that fails (KESL: exit other than 0/72; ClamAV: see its docs)
//! stops new batches; the running ones are waited for and checkpointed, and
//! the stage fails (exit 1) with the command and its output. SIGINT/SIGTERM
//! stops the running scanners and exits 130/143; their batches are rescanned
//! on resume.
//!
//! Report (`state/av_results/av_report_<YYYYmmdd-HHMMSS>.txt`, logged as a
//! warning `av_threats_reported`): KESL — the non-empty answer of the threat
//! query for events after `scan_start_time.txt`; ClamAV — one line per
//! detection `<path>: <signature> FOUND` and per file not scanned
//! `<path>: NOT SCANNED (<reason>)`. A file that no longer exists when it
//! could not be scanned is not reported (`av_file_vanished`). Threats = a
//! non-empty report or any batch with a threat status (KESL exit 72,
//! ClamAV exit 1); with `fail_on_threats` the stage exits 5.
//!
//! # Progress
//!
//! `av_scan_start` (files, done, batches, workers, engine),
//! `av_checkpoint_saved scanned=<lines done> remaining=<lines left>
//! percent=<done, 0.1 %> rate_files_s=<files per second this run>
//! eta_s=<seconds>` at INFO for the first checkpoint, then at most every
//! 10 s, and for the last (DEBUG otherwise), and `av_scan_finished` with the
//! number of checkpoints and the time spent writing them.

use std::collections::{HashSet, VecDeque};
use std::ffi::OsString;
use std::fs;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Executor, Options, Plan, StageContext, StageDef, Step, run_stage};
use crate::backends::antivirus::{self, BatchResult, Engine, FileVerdict};
use crate::backends::zfs;
use crate::error::{Error, Result};
use crate::process::{Cmd, Running, Tool};
use crate::state::{LockMode, MIRROR_CHANGED_FILE, StateError};

const TARGET: &str = "mirrorer::stages::av_scan";

/// The list of files to scan, in `state/av_state/`.
pub const LIST_FILE: &str = "files_to_scan.txt";
/// The recorded start time, in `state/av_state/`.
pub const START_TIME_FILE: &str = "scan_start_time.txt";
/// The checkpoint journal, in `state/av_state/`.
pub const JOURNAL_FILE: &str = "journal";
/// The marker of a complete scan, in `state/av_state/`.
pub const DONE_FILE: &str = "done";
/// The format of [`JOURNAL_FILE`] ("mirrorer-av-journal 1 ...").
pub const JOURNAL_MAGIC: &str = "mirrorer-av-journal 1";
/// The format of `scan_start_time.txt` (local time).
pub const START_TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";
/// How often a progress event is logged at INFO.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);
/// Longest pause between two polls of the running scanners.
const MAX_POLL: Duration = Duration::from_millis(25);

/// Escapes a path for one line of `files_to_scan.txt` or the journal:
/// `\`, control bytes (< 0x20) and DEL as `\` + three octal digits; every
/// other byte (also non-UTF-8) as is.
pub fn escape_path(path: &[u8], out: &mut Vec<u8>) {
    for &b in path {
        if b == b'\\' || b < 0x20 || b == 0x7f {
            out.extend_from_slice(format!("\\{b:03o}").as_bytes());
        } else {
            out.push(b);
        }
    }
}

/// Undoes [`escape_path`]: `\` + three octal digits (value up to 0o377) is
/// that byte; any other byte, also a `\` that does not start such an
/// escape, is itself.
pub fn unescape_path(line: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.len());
    let mut i = 0;
    while i < line.len() {
        if line[i] == b'\\'
            && let Some(d) = line.get(i + 1..i + 4)
            && d.iter().all(|b| (b'0'..=b'7').contains(b))
            && let Ok(v) = u8::try_from(d.iter().fold(0u32, |a, b| a * 8 + u32::from(b - b'0')))
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(line[i]);
        i += 1;
    }
    out
}

fn escaped(path: &[u8]) -> String {
    let mut out = Vec::new();
    escape_path(path, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// `files_to_scan.txt` in memory: the file's bytes and where each line
/// starts (lines are decoded only when their batch runs).
#[derive(Debug, Default)]
pub struct FileList {
    data: Vec<u8>,
    /// Start offset of each line, plus a final entry one past the end.
    starts: Vec<usize>,
}

impl FileList {
    /// Splits `data` into lines (a last line without a newline counts).
    pub fn from_bytes(data: Vec<u8>) -> FileList {
        let mut starts = vec![0];
        for (i, &b) in data.iter().enumerate() {
            if b == b'\n' {
                starts.push(i + 1);
            }
        }
        if data.last().is_some_and(|&b| b != b'\n') {
            starts.push(data.len() + 1);
        }
        FileList { data, starts }
    }

    /// The number of lines.
    pub fn len(&self) -> usize {
        self.starts.len() - 1
    }

    /// Whether there is no line.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The size of the file in bytes.
    pub fn byte_len(&self) -> usize {
        self.data.len()
    }

    /// The decoded path of line `i` (`None` for a blank line).
    pub fn path(&self, i: usize) -> Option<PathBuf> {
        let line = self.data.get(self.starts[i]..self.starts[i + 1] - 1)?;
        (!line.is_empty()).then(|| PathBuf::from(OsString::from_vec(unescape_path(line))))
    }

    /// The journal header for this list.
    fn journal_header(&self) -> String {
        format!(
            "{JOURNAL_MAGIC} lines={} bytes={}\n",
            self.len(),
            self.byte_len()
        )
    }
}

/// Encodes `paths` as the content of `files_to_scan.txt`.
pub fn encode_list(paths: &[PathBuf]) -> Vec<u8> {
    let mut out = Vec::with_capacity(paths.len() * 64);
    for p in paths {
        escape_path(p.as_os_str().as_bytes(), &mut out);
        out.push(b'\n');
    }
    out
}

/// A finding kept in the journal.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Finding {
    /// `FOUND` or `NOT_SCANNED`.
    pub kind: &'static str,
    /// The escaped path.
    pub path: String,
    /// The signature or the reason.
    pub detail: String,
}

/// What the journal says.
#[derive(Debug, Default)]
pub struct Journal {
    /// Per line of the list: done.
    pub done: Vec<bool>,
    /// How many lines are done.
    pub done_count: usize,
    /// Batches with a threat status.
    pub threat_batches: usize,
    /// Findings of the done batches.
    pub findings: Vec<Finding>,
    /// The valid prefix of the file, when it must be rewritten (a cut last
    /// line, a header that does not match the list).
    pub rewrite: Option<Vec<u8>>,
}

/// Reads `journal` text for `list` (see the module docs); `path` names it
/// in warnings.
pub fn read_journal(bytes: &[u8], list: &FileList, path: &Path) -> Journal {
    let n = list.len();
    let header = list.journal_header();
    let mut j = Journal {
        done: vec![false; n],
        ..Journal::default()
    };
    if !bytes.starts_with(header.as_bytes()) {
        if !bytes.is_empty() {
            tracing::warn!(target: TARGET, path = %path.display(), expected = %header.trim_end(), "av_journal_mismatch");
        }
        j.rewrite = Some(header.into_bytes());
        return j;
    }
    let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
    // Everything after the last accepted `B` line (a cut line, finding
    // lines of a batch whose `B` line was cut) is dropped, so that the next
    // append cannot attach them to another batch.
    let mut valid_end = header.len();
    let mut pending: Vec<Finding> = Vec::new();
    let mut offset = header.len();
    let mut line_no = 1;
    while offset < complete {
        let end = bytes[offset..complete]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(complete, |p| offset + p);
        let line = &bytes[offset..end];
        offset = end + 1;
        line_no += 1;
        if line.is_empty() {
            continue;
        }
        let text = String::from_utf8_lossy(line);
        let fields: Vec<&str> = text.split('\t').collect();
        match fields.as_slice() {
            ["F", kind @ ("FOUND" | "NOT_SCANNED"), p, detail] => pending.push(Finding {
                kind: if *kind == "FOUND" {
                    "FOUND"
                } else {
                    "NOT_SCANNED"
                },
                path: (*p).to_owned(),
                detail: (*detail).to_owned(),
            }),
            ["B", start, end, status @ ("clean" | "threat")]
                if let (Ok(s), Ok(e)) = (start.parse::<usize>(), end.parse::<usize>())
                    && s < e
                    && e <= n =>
            {
                for d in &mut j.done[s..e] {
                    if !*d {
                        *d = true;
                        j.done_count += 1;
                    }
                }
                if *status == "threat" {
                    j.threat_batches += 1;
                }
                j.findings.append(&mut pending);
                valid_end = offset;
            }
            _ => {
                tracing::warn!(target: TARGET, path = %path.display(), line = line_no, "av_journal_line_ignored");
                pending.clear();
            }
        }
    }
    if valid_end < bytes.len() {
        tracing::warn!(target: TARGET, path = %path.display(), bytes = bytes.len() - valid_end, "av_journal_tail_dropped");
        j.rewrite = Some(bytes[..valid_end].to_vec());
    }
    j
}

/// The consecutive runs of lines not done, cut into batches of at most
/// `batch_size` lines: `(start, end)` with `end` exclusive.
pub fn pending_batches(done: &[bool], batch_size: usize) -> VecDeque<(usize, usize)> {
    let batch_size = batch_size.max(1);
    let mut out = VecDeque::new();
    let mut i = 0;
    while i < done.len() {
        if done[i] {
            i += 1;
            continue;
        }
        let start = i;
        while i < done.len() && !done[i] && i - start < batch_size {
            i += 1;
        }
        out.push_back((start, i));
    }
    out
}

/// The state files of the scan.
struct Paths {
    list: PathBuf,
    start_time: PathBuf,
    journal: PathBuf,
    done: PathBuf,
    changed: PathBuf,
    results: PathBuf,
}

impl Paths {
    fn of(ctx: &StageContext) -> Paths {
        let state = ctx.state();
        let dir = state.av_state_dir();
        Paths {
            list: dir.join(LIST_FILE),
            start_time: dir.join(START_TIME_FILE),
            journal: dir.join(JOURNAL_FILE),
            done: dir.join(DONE_FILE),
            changed: dir.join(MIRROR_CHANGED_FILE),
            results: state.av_results_dir(),
        }
    }
}

fn failed(e: impl Into<anyhow::Error>) -> Error {
    Error::Failed(e.into())
}

fn read_state(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(failed(StateError::Io {
            action: "read",
            path: path.to_path_buf(),
            source,
        })),
    }
}

/// Runs the stage.
///
/// # Errors
/// [`Error::Threats`] (exit 5) for threats with `fail_on_threats`; a
/// failed scanner, zfs or state write (exit 1); the runner's errors.
pub fn run(options: &Options) -> Result<()> {
    let def = StageDef {
        name: "av-scan",
        lock: LockMode::Exclusive,
    };
    run_stage(
        options,
        def,
        |ctx| {
            let engine = Engine::from_config(&ctx.config.antivirus);
            let paths = Paths::of(ctx);
            let mut tools = vec![engine.tool()];
            if !paths.list.exists() && !paths.done.exists() {
                tools.push(Tool::Zfs);
            }
            tools
        },
        |ctx, exec| body(ctx, exec),
    )
}

fn body(ctx: &StageContext, exec: &Executor) -> Result<()> {
    let engine = Engine::from_config(&ctx.config.antivirus);
    let paths = Paths::of(ctx);
    let changed = read_state(&paths.changed)?;
    let outdated = changed.is_some() && (paths.done.exists() || paths.list.exists());
    if let Some(marker) = changed.as_deref().filter(|_| outdated) {
        tracing::warn!(
            target: TARGET,
            marker = %String::from_utf8_lossy(marker).trim(),
            reason = "the mirror was synced after this list was made",
            dry_run = ctx.dry_run,
            "av_scan_list_outdated"
        );
        let mut plan = Plan::new();
        for file in [&paths.done, &paths.journal, &paths.list, &paths.start_time] {
            plan.push(Step::RemoveFile(file.clone()));
        }
        exec.execute(&plan)?;
    }
    let done = if outdated {
        None
    } else {
        read_state(&paths.done)?
    };
    if let Some(done) = done {
        return already_done(ctx, &paths, &String::from_utf8_lossy(&done));
    }
    let existing = if outdated {
        None
    } else {
        read_state(&paths.list)?
    };
    let (list, start_time) = match existing {
        Some(bytes) => {
            let list = FileList::from_bytes(bytes);
            let start_time = resume_start_time(exec, &paths)?;
            tracing::info!(target: TARGET, path = %paths.list.display(), files = list.len(), scan_start_time = %start_time, "av_scan_resume");
            (list, start_time)
        }
        None => {
            let start_time = chrono::Local::now().format(START_TIME_FORMAT).to_string();
            let files = build_list(ctx)?;
            if files.is_empty() {
                if changed.is_some() {
                    let mut plan = Plan::new();
                    plan.push(Step::RemoveFile(paths.changed.clone()));
                    exec.execute(&plan)?;
                }
                tracing::info!(target: TARGET, "av_scan_skipped_no_files");
                return Ok(());
            }
            let bytes = encode_list(&files);
            let list = FileList::from_bytes(bytes.clone());
            let mut plan = Plan::new();
            plan.push(Step::RemoveFile(paths.journal.clone()));
            plan.push(Step::Write {
                path: paths.start_time.clone(),
                contents: format!("{start_time}\n").into_bytes(),
                mode: 0o644,
            });
            plan.push(Step::Write {
                path: paths.list.clone(),
                contents: bytes,
                mode: 0o644,
            });
            plan.push(Step::Write {
                path: paths.journal.clone(),
                contents: list.journal_header().into_bytes(),
                mode: 0o644,
            });
            // The new list holds every change so far.
            plan.push(Step::RemoveFile(paths.changed.clone()));
            exec.execute(&plan)?;
            tracing::info!(target: TARGET, path = %paths.list.display(), files = list.len(), scan_start_time = %start_time, dry_run = ctx.dry_run, "av_scan_list_written");
            (list, start_time)
        }
    };
    if list.is_empty() {
        tracing::info!(target: TARGET, "av_scan_skipped_no_files");
        return Ok(());
    }
    let journal_bytes = read_state(&paths.journal)?.unwrap_or_default();
    let mut journal = read_journal(&journal_bytes, &list, &paths.journal);
    let batch_size = usize::try_from(ctx.config.antivirus.batch_size).unwrap_or(usize::MAX);
    let workers = usize::try_from(ctx.config.mirror.kesl_max_workers)
        .unwrap_or(1)
        .max(1);
    let pending = pending_batches(&journal.done, batch_size);
    let already = journal.done_count;
    tracing::info!(
        target: TARGET,
        engine = engine.name(),
        files = list.len(),
        done = already,
        remaining = list.len() - already,
        batches = pending.len(),
        batch_size = batch_size,
        workers = workers,
        scan_start_time = %start_time,
        dry_run = ctx.dry_run,
        "av_scan_start"
    );
    if ctx.dry_run {
        if let Some(rewrite) = &journal.rewrite {
            tracing::info!(target: TARGET, path = %paths.journal.display(), bytes = rewrite.len(), "dry_run_write");
        }
        if let Some(&(s, e)) = pending.front() {
            let files: Vec<PathBuf> = (s..e).filter_map(|i| list.path(i)).collect();
            let cmd = engine.batch_cmd(&ctx.tools, &files);
            tracing::info!(target: TARGET, purpose = %cmd.purpose(), command = %cmd.display(), batches = pending.len(), "dry_run_command");
        }
        return Ok(());
    }
    if let Some(rewrite) = journal.rewrite.take() {
        exec.write(&paths.journal, &rewrite, 0o644)?;
    }
    let mut scan = Scan {
        ctx,
        exec,
        engine: &engine,
        list: &list,
        journal_path: &paths.journal,
        journal: &mut journal,
        workers,
        stats: Stats::default(),
    };
    scan.run(pending)?;
    let stats = scan.stats;
    finish(
        ctx,
        exec,
        &engine,
        &paths,
        &list,
        &journal,
        &start_time,
        &stats,
    )
}

/// The start time recorded for the list, or (missing or invalid: a list
/// of the previous tool, a hand-edited file) the list's modification time,
/// which is then recorded.
fn resume_start_time(exec: &Executor, paths: &Paths) -> Result<String> {
    if let Some(bytes) = read_state(&paths.start_time)? {
        let text = String::from_utf8_lossy(&bytes);
        let text = text.lines().next().unwrap_or("").trim();
        if chrono::NaiveDateTime::parse_from_str(text, START_TIME_FORMAT).is_ok() {
            return Ok(text.to_owned());
        }
        tracing::warn!(target: TARGET, path = %paths.start_time.display(), content = %text, "av_scan_start_time_invalid");
    }
    let modified = fs::metadata(&paths.list)
        .and_then(|m| m.modified())
        .map_err(|source| {
            failed(StateError::Io {
                action: "read the modification time of",
                path: paths.list.clone(),
                source,
            })
        })?;
    let time = chrono::DateTime::<chrono::Local>::from(modified)
        .format(START_TIME_FORMAT)
        .to_string();
    tracing::warn!(target: TARGET, path = %paths.start_time.display(), scan_start_time = %time, "av_scan_start_time_from_list");
    let mut plan = Plan::new();
    plan.push(Step::Write {
        path: paths.start_time.clone(),
        contents: format!("{time}\n").into_bytes(),
        mode: 0o644,
    });
    exec.execute(&plan)?;
    Ok(time)
}

/// The files to scan for a fresh scan (module docs, "What is scanned").
fn build_list(ctx: &StageContext) -> Result<Vec<PathBuf>> {
    let dataset = &ctx.config.mirror.zfs_mirror_dataset;
    let mount = std::path::absolute(&ctx.config.mirror.zfs_mirror_dir)
        .unwrap_or_else(|_| ctx.config.mirror.zfs_mirror_dir.clone());
    let snapshots = zfs::list_snapshots(&ctx.tools, dataset).map_err(failed)?;
    let Some(newest) = snapshots.last() else {
        tracing::info!(target: TARGET, dataset = %dataset, mirror_dir = %mount.display(), "av_scan_no_snapshot_full_scan");
        return walk_regular_files(&mount);
    };
    let out = zfs::diff_cmd(&ctx.tools, dataset, newest)
        .run()
        .map_err(failed)?;
    let mut seen = HashSet::new();
    let mut files = Vec::new();
    let (mut lines, mut skipped) = (0usize, 0usize);
    for line in out.stdout.lines() {
        lines += 1;
        let Some(entry) = zfs::parse_diff_line(line) else {
            tracing::warn!(target: TARGET, line = %line, "zfs_diff_line_ignored");
            continue;
        };
        let wanted = matches!(entry.change, '+' | 'M')
            && entry.kind == 'F'
            && !entry
                .path
                .components()
                .any(|c| c.as_os_str() == "<xattrdir>");
        let regular =
            wanted && fs::symlink_metadata(&entry.path).is_ok_and(|m| m.file_type().is_file());
        if regular && seen.insert(entry.path.clone()) {
            files.push(entry.path);
        } else {
            skipped += 1;
        }
    }
    tracing::info!(target: TARGET, snapshot = %format!("{dataset}@{newest}"), diff_lines = lines, files = files.len(), skipped = skipped, "av_scan_changes_listed");
    Ok(files)
}

/// Every regular file under `root` (not following symlinks; `root/.zfs`
/// skipped), in name order.
fn walk_regular_files(root: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let list_err = |source| {
            failed(StateError::Io {
                action: "list the mirror directory",
                path: dir.clone(),
                source,
            })
        };
        let mut entries = Vec::new();
        for entry in fs::read_dir(&dir).map_err(list_err)? {
            let entry = entry.map_err(list_err)?;
            let kind = entry.file_type().map_err(list_err)?;
            entries.push((entry.file_name(), kind));
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut subdirs = Vec::new();
        for (name, kind) in entries {
            let path = dir.join(&name);
            if kind.is_dir() {
                if !(dir == root && name == ".zfs") {
                    subdirs.push(path);
                }
            } else if kind.is_file() {
                files.push(path);
            }
        }
        // Depth first, in name order.
        stack.extend(subdirs.into_iter().rev());
    }
    files.sort_by(|a, b| a.as_os_str().as_bytes().cmp(b.as_os_str().as_bytes()));
    Ok(files)
}

/// Counters of one run.
#[derive(Debug, Default)]
struct Stats {
    files_scanned: usize,
    batches: usize,
    checkpoints: usize,
    checkpoint_time: Duration,
    threat_batches: usize,
}

struct InFlight {
    start: usize,
    end: usize,
    files: Vec<PathBuf>,
    running: Running,
    output: Option<Arc<Mutex<Vec<String>>>>,
}

struct Scan<'a> {
    ctx: &'a StageContext,
    exec: &'a Executor,
    engine: &'a Engine,
    list: &'a FileList,
    journal_path: &'a Path,
    journal: &'a mut Journal,
    workers: usize,
    stats: Stats,
}

impl Scan<'_> {
    fn spawn(&self, start: usize, end: usize) -> Result<Option<InFlight>> {
        let files: Vec<PathBuf> = (start..end).filter_map(|i| self.list.path(i)).collect();
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
    fn run(&mut self, mut pending: VecDeque<(usize, usize)>) -> Result<()> {
        let started = Instant::now();
        let mut last_info: Option<Instant> = None;
        let mut running: Vec<InFlight> = Vec::new();
        let mut failure: Option<Error> = None;
        let mut pause = Duration::from_micros(100);
        loop {
            if let Some(signal) = crate::signals::received() {
                for mut f in running.drain(..) {
                    let _ = f.running.stop(crate::process::DEFAULT_STOP_GRACE);
                }
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
            self.exec.append(self.journal_path, &record)?;
            self.stats.checkpoint_time += t.elapsed();
            self.stats.checkpoints += 1;
            self.progress(
                started,
                &mut last_info,
                pending.is_empty() && running.is_empty(),
            );
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
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
            out.extend_from_slice(
                format!(
                    "F\t{}\t{}\t{}\n",
                    finding.kind, finding.path, finding.detail
                )
                .as_bytes(),
            );
            findings.push(finding);
        }
        let status = if result.threat { "threat" } else { "clean" };
        if result.threat {
            self.stats.threat_batches += 1;
            self.journal.threat_batches += 1;
            tracing::warn!(target: TARGET, first_line = start, end_line = end, engine = self.engine.name(), "av_batch_threat");
        }
        out.extend_from_slice(format!("B\t{start}\t{end}\t{status}\n").as_bytes());
        for d in &mut self.journal.done[start..end] {
            if !*d {
                *d = true;
                self.journal.done_count += 1;
            }
        }
        self.journal.findings.extend(findings);
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

/// The report, the `done` marker, the compaction, and the verdict.
#[allow(clippy::too_many_arguments)]
fn finish(
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
    let mut compact = list.journal_header().into_bytes();
    for f in &journal.findings {
        compact.extend_from_slice(format!("F\t{}\t{}\t{}\n", f.kind, f.path, f.detail).as_bytes());
    }
    let status = if journal.threat_batches > 0 {
        "threat"
    } else {
        "clean"
    };
    compact.extend_from_slice(format!("B\t0\t{}\t{status}\n", list.len()).as_bytes());
    exec.write(&paths.journal, &compact, 0o644)?;
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
fn already_done(ctx: &StageContext, paths: &Paths, done: &str) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_round_trip_through_the_list() {
        let raw: Vec<&[u8]> = vec![
            b"/m/plain",
            b"/m/new\nline",
            b"/m/back\\slash\\012",
            b"/m/\xff\xfe not utf-8",
            b"/m/tab\there",
            "/m/é".as_bytes(),
        ];
        let paths: Vec<PathBuf> = raw
            .iter()
            .map(|b| PathBuf::from(OsString::from_vec(b.to_vec())))
            .collect();
        let bytes = encode_list(&paths);
        assert_eq!(bytes.iter().filter(|&&b| b == b'\n').count(), raw.len());
        let list = FileList::from_bytes(bytes);
        assert_eq!(list.len(), raw.len());
        for (i, p) in paths.iter().enumerate() {
            assert_eq!(list.path(i).as_ref(), Some(p));
        }
        // A plain list of the previous tool, without a final newline.
        let legacy = FileList::from_bytes(b"/a b\n\n/c".to_vec());
        assert_eq!(legacy.len(), 3);
        assert_eq!(legacy.path(0), Some(PathBuf::from("/a b")));
        assert_eq!(legacy.path(1), None);
        assert_eq!(legacy.path(2), Some(PathBuf::from("/c")));
    }

    #[test]
    fn journal_marks_ranges_and_ignores_cut_or_foreign_lines() {
        let list = FileList::from_bytes(b"/a\n/b\n/c\n/d\n/e\n".to_vec());
        let mut j = list.journal_header().into_bytes();
        j.extend_from_slice(b"F\tFOUND\t/b\tEicar\nB\t0\t2\tthreat\n");
        j.extend_from_slice(b"B\t3\t9\tclean\n"); // beyond the list
        j.extend_from_slice(b"F\tNOT_SCANNED\t/e\tbig\nB\t4\t5\tcl"); // cut
        let read = read_journal(&j, &list, Path::new("journal"));
        assert_eq!(read.done, vec![true, true, false, false, false]);
        assert_eq!(read.threat_batches, 1);
        assert_eq!(read.findings.len(), 1);
        assert_eq!(read.findings[0].path, "/b");
        // The cut batch and its finding line are dropped; the ignored
        // out-of-range line is kept (it is after the last accepted line,
        // so it goes too).
        let rewrite = read.rewrite.unwrap();
        assert!(rewrite.ends_with(b"B\t0\t2\tthreat\n"), "{rewrite:?}");
        assert_eq!(read.done_count, 2);
        assert_eq!(
            pending_batches(&read.done, 2),
            VecDeque::from(vec![(2, 4), (4, 5)])
        );
        // A journal of another list is discarded.
        let other = FileList::from_bytes(b"/x\n".to_vec());
        let read = read_journal(&j, &other, Path::new("journal"));
        assert_eq!(read.done, vec![false]);
        assert_eq!(read.rewrite.unwrap(), other.journal_header().into_bytes());
    }
}
