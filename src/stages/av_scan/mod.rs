//! `mirrorer av-scan` (docs/stages.md, "av-scan"): a resumable, batched
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
//! `.zfs` skipped, symlinks neither followed nor listed), in byte order of
//! the whole paths (the parallel walk of the `walk` module). A path `zfs diff` prints
//! twice in a row is listed once. An empty list logs
//! `av_scan_skipped_no_files` and writes nothing.
//!
//! The list is streamed: written as it is found to a temp file in
//! `av_state/` (`$TMPDIR` under `--dry-run`) and installed atomically
//! ([`Executor::install`]); batches read it in order ([`ListReader`]).
//! Nothing holds the whole list or a set of its paths: memory is one batch,
//! one bit per line (the journal's done flags, [`DoneLines`]), the findings, and during a
//! full walk one directory listing per depth level.
//!
//! # On-disk format (`state/av_state/`)
//!
//! | file | written | content |
//! |---|---|---|
//! | `scan_start_time.txt` | once per list, atomically, before the list | local time `%Y-%m-%d %H:%M:%S` and a newline |
//! | `files_to_scan.txt` | once, atomically (streamed to a temp file, then renamed) | one path per line, [escaped](escape_path) |
//! | `journal` | header atomically, then appended per checkpoint, synced at most once a second | see below |
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
//! while others run are written together: one `write(2)` per poll of the
//! running scanners (a checkpoint) to the journal, opened once per run, so
//! its cost does not depend on the length of the list; an `fdatasync`
//! follows at most once a second and when the scan stops
//! ([`crate::state::StateLock::appender`]). Syncing every checkpoint cost
//! 3.2 s of a 25 s scan of 1,000,000 files in `bench/av-scan.sh`.
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
//! with an accepted status, and it is written to the journal before new
//! batches start. After SIGKILL at any moment (the written journal is in
//! the kernel's page cache, whatever happens to the process) the rerun
//! rescans exactly the batches that were running (or had ended but were
//! not yet written) — at most `kesl_max_workers` batches — and never skips
//! a line that is not in a `B` range. After a power loss or a kernel crash,
//! also the batches written in the last second (since the last sync) are
//! scanned again.
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
//!
//! # Code
//!
//! This module runs the stage (what to do with the state found); `list`
//! builds, writes and reads `files_to_scan.txt` ([`FileList`]), `walk` is
//! the full walk of a first scan, `journal`
//! is the one type that reads and writes the journal format ([`Journal`]),
//! `scan` schedules the batches and checkpoints through the
//! [`Executor`], and `report` writes the report and `done` and decides
//! the verdict.

mod journal;
mod list;
mod report;
mod scan;
mod walk;

use std::fs;
use std::path::{Path, PathBuf};

pub use journal::{DoneLines, Finding, JOURNAL_MAGIC, Journal, pending_batches};
pub use list::{FileList, ListReader, encode_list, escape_path, unescape_path};

use super::{Executor, Options, Plan, StageContext, StageDef, Step, failed, run_stage};
use crate::backends::antivirus::Engine;
use crate::error::Result;
use crate::process::Tool;
use crate::state::{MIRROR_CHANGED_FILE, StateError};
use list::build_list;
use report::{already_done, finish};
use scan::{Scan, Stats};

const TARGET: &str = "mirrorer::stages::av_scan";

/// The list of files to scan, in `state/av_state/`.
pub const LIST_FILE: &str = "files_to_scan.txt";
/// The recorded start time, in `state/av_state/`.
pub const START_TIME_FILE: &str = "scan_start_time.txt";
/// The checkpoint journal, in `state/av_state/`.
pub const JOURNAL_FILE: &str = "journal";
/// The marker of a complete scan, in `state/av_state/`.
pub const DONE_FILE: &str = "done";
/// The format of `scan_start_time.txt` (local time).
pub const START_TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

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

/// The largest file of `av_state/` read (bytes): far above any scan list,
/// a bound on memory for a hostile or corrupt file.
const MAX_STATE_FILE_BYTES: u64 = 4 << 30;

fn read_state(path: &Path) -> Result<Option<Vec<u8>>> {
    // Regular files only, never through a symlink (a FIFO fails at once).
    crate::state::files::read_regular(path, MAX_STATE_FILE_BYTES).map_err(failed)
}

/// Runs the stage.
///
/// # Errors
/// [`Error::Threats`](crate::error::Error::Threats) (exit 5) for threats with `fail_on_threats`; a
/// failed scanner, zfs or state write (exit 1); the runner's errors.
pub fn run(options: &Options) -> Result<()> {
    let def = StageDef::exclusive("av-scan");
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
        FileList::open(&paths.list, MAX_STATE_FILE_BYTES).map_err(failed)?
    };
    let (list, start_time) = match existing {
        Some(list) => {
            let start_time = resume_start_time(exec, &paths)?;
            tracing::info!(target: TARGET, path = %paths.list.display(), files = list.len(), scan_start_time = %start_time, "av_scan_resume");
            (list, start_time)
        }
        None => {
            let start_time = chrono::Local::now().format(START_TIME_FORMAT).to_string();
            // The list is written to a temp file as it is found, then
            // installed atomically (under --dry-run: a temp file elsewhere).
            let scratch = list::scratch_dir(ctx);
            let tmp_err = |source| {
                failed(StateError::Io {
                    action: "create a temp file for the list in",
                    path: scratch.clone(),
                    source,
                })
            };
            let mut tmp = tempfile::Builder::new()
                .prefix(&format!(".{LIST_FILE}."))
                .suffix(".tmp")
                .tempfile_in(&scratch)
                .map_err(tmp_err)?;
            let files = build_list(ctx, tmp.as_file_mut(), &scratch)?;
            if files == 0 {
                if changed.is_some() {
                    let mut plan = Plan::new();
                    plan.push(Step::RemoveFile(paths.changed.clone()));
                    exec.execute(&plan)?;
                }
                tracing::info!(target: TARGET, "av_scan_skipped_no_files");
                return Ok(());
            }
            let dry_list = if ctx.dry_run {
                Some(
                    tmp.reopen()
                        .and_then(FileList::from_file)
                        .map_err(tmp_err)?,
                )
            } else {
                None
            };
            let mut plan = Plan::new();
            plan.push(Step::RemoveFile(paths.journal.clone()));
            plan.push(Step::Write {
                path: paths.start_time.clone(),
                contents: format!("{start_time}\n").into_bytes(),
                mode: 0o644,
            });
            exec.execute(&plan)?;
            exec.install(tmp, &paths.list, 0o644)?;
            let list = match dry_list {
                Some(list) => list,
                None => FileList::open(&paths.list, MAX_STATE_FILE_BYTES)
                    .map_err(failed)?
                    .ok_or_else(|| {
                        failed(StateError::Io {
                            action: "read",
                            path: paths.list.clone(),
                            source: std::io::ErrorKind::NotFound.into(),
                        })
                    })?,
            };
            let mut plan = Plan::new();
            plan.push(Step::Write {
                path: paths.journal.clone(),
                contents: Journal::header(&list).into_bytes(),
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
    let mut journal = Journal::read(&journal_bytes, &list, &paths.journal);
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
            let files = list
                .reader()
                .and_then(|mut r| r.paths(s, e))
                .map_err(|source| {
                    failed(StateError::Io {
                        action: "read",
                        path: paths.list.clone(),
                        source,
                    })
                })?;
            let cmd = engine.batch_cmd(&ctx.tools, &files);
            tracing::info!(target: TARGET, purpose = %cmd.purpose(), command = %cmd.display(), batches = pending.len(), "dry_run_command");
        }
        return Ok(());
    }
    if let Some(rewrite) = journal.rewrite.take() {
        exec.write(&paths.journal, &rewrite, 0o644)?;
    }
    let reader = list.reader().map_err(|source| {
        failed(StateError::Io {
            action: "read",
            path: paths.list.clone(),
            source,
        })
    })?;
    let mut scan = Scan {
        ctx,
        exec,
        engine: &engine,
        list: &list,
        reader,
        list_path: &paths.list,
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
