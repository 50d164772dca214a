//! The antivirus engines `av-scan` drives, through [`crate::process`]: what
//! one batch call looks like, and how its exit status and output are judged.
//!
//! # KESL (`antivirus.engine: kesl`, the default)
//!
//! Kaspersky Endpoint Security for Linux, `tools.kesl_control` (default
//! `kesl-control`):
//!
//! - a batch: `kesl-control --scan-file --action DisinfectInformIfNotPossible
//!   FILE...`; exit 0 is clean, 72 means a threat was seen (and handled as
//!   the action says), anything else is a failure;
//! - at the end of a scan, the threat events since the scan started:
//!   `kesl-control -E --query "EventType == 'ThreatDetected' and Date >
//!   '<%Y-%m-%d %H:%M:%S>'"` ([`kesl_threat_query`]); a non-empty answer is the
//!   report.
//!
//! # ClamAV (`antivirus.engine: clamav`)
//!
//! `antivirus.clamav_command` picks the program: `clamdscan` (default; the
//! client of a running `clamd`, which keeps the signatures loaded) or
//! `clamscan` (standalone; loads the signature database on every call, so
//! only for small scans and tests). A batch is `clamdscan --no-summary
//! [clamav_args...] FILE...` or `clamscan --no-summary --alert-exceeds-max=yes
//! [clamav_args...] FILE...` (clamscan(1), clamdscan(1)); `clamav_args` from
//! the config come before the files (`--config-file=/etc/clamav/clamd.conf`,
//! `--fdpass`, `--max-filesize=...`, `-d DB`).
//!
//! Both print one result line per file (the `-i`/`--infected` option would
//! hide the clean ones and must not be given):
//!
//! ```text
//! /distpool/mirror/a.deb: OK
//! /distpool/mirror/b.rpm: Win.Test.EICAR_HDB-1 FOUND
//! /distpool/mirror/c.iso: Heuristics.Limits.Exceeded.MaxFileSize FOUND
//! /distpool/mirror/d.tar: Can't open file or directory ERROR
//! /distpool/mirror/e: Access denied
//! ```
//!
//! Exit status: 0 nothing found, 1 something found, 2 an error occurred.
//! [`Engine::judge`] reads the result line of every file of the batch
//! ([`parse_clamav_output`]): `OK` (or `Empty file`) is clean, `<name> FOUND`
//! is a detection — except `Heuristics.Limits.Exceeded.*`, which means the
//! file was too large or too deep to scan —, anything else (`... ERROR`,
//! `Access denied`, `Excluded`, a file with no result line at all) means the
//! file was not scanned. A file that was not scanned is reported, never
//! counted as clean. Exit 2 with no result line for any file of the batch
//! (the daemon is unreachable, the database cannot be loaded) fails the
//! batch; so does any status other than 0, 1 and 2.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::config::{Antivirus, AvEngine, ClamavCommand};
use crate::process::{Cmd, Exit, Finished, ProcessError, Running, Tool, Tools};

/// The exit code of `kesl-control --scan-file` when a threat was seen.
pub const KESL_THREAT_EXIT: i32 = 72;

/// The ClamAV signature prefix of "the file exceeds a scan limit" alerts
/// (`--alert-exceeds-max`, `AlertExceedsMax` in clamd.conf): the file was
/// not (fully) scanned.
pub const CLAMAV_LIMITS_PREFIX: &str = "Heuristics.Limits.Exceeded";

/// The engine `av-scan` runs, from `antivirus` in the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Engine {
    /// `kesl-control`.
    Kesl,
    /// `clamdscan` or `clamscan`, with extra arguments.
    Clamav {
        /// Which program.
        command: ClamavCommand,
        /// `antivirus.clamav_args`, put before the files.
        args: Vec<String>,
    },
}

/// What one file's scan said, when it was not simply clean.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileVerdict {
    /// A detection: the signature or threat name.
    Found(String),
    /// The engine did not scan the file (fully): the reason as printed.
    NotScanned(String),
}

/// The judged result of one batch that ran to an accepted end.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchResult {
    /// The engine signalled a threat (kesl exit 72, clamav exit 1).
    pub threat: bool,
    /// The files that were not clean: (index in the batch, verdict).
    pub verdicts: Vec<(usize, FileVerdict)>,
}

impl Engine {
    /// The engine configured in `antivirus`.
    pub fn from_config(av: &Antivirus) -> Engine {
        match av.engine {
            AvEngine::Kesl => Engine::Kesl,
            AvEngine::Clamav => Engine::Clamav {
                command: av.clamav_command,
                args: av.clamav_args.clone(),
            },
        }
    }

    /// `kesl`, `clamdscan` or `clamscan`: for log events and the report.
    pub fn name(&self) -> &'static str {
        match self {
            Engine::Kesl => "kesl",
            Engine::Clamav { command, .. } => command.name(),
        }
    }

    /// The external program this engine runs.
    pub fn tool(&self) -> Tool {
        match self {
            Engine::Kesl => Tool::KeslControl,
            Engine::Clamav {
                command: ClamavCommand::Clamdscan,
                ..
            } => Tool::Clamdscan,
            Engine::Clamav {
                command: ClamavCommand::Clamscan,
                ..
            } => Tool::Clamscan,
        }
    }

    /// Whether [`Engine::judge`] needs every output line (set a line
    /// handler collecting them on the batch command).
    pub fn needs_output(&self) -> bool {
        matches!(self, Engine::Clamav { .. })
    }

    /// The command scanning `files` (absolute paths). Logged at DEBUG
    /// (batches are many; progress events tell the story). KESL accepts
    /// exit 0 and 72; ClamAV any status (see [`Engine::judge`]).
    pub fn batch_cmd(&self, tools: &Tools, files: &[PathBuf]) -> Cmd {
        let purpose = "scan a batch of changed files";
        let cmd = match self {
            Engine::Kesl => tools
                .cmd(Tool::KeslControl, purpose)
                .args(["--scan-file", "--action", "DisinfectInformIfNotPossible"])
                .ok_codes(&[0, KESL_THREAT_EXIT]),
            Engine::Clamav { command, args } => {
                let mut cmd = tools.cmd(self.tool(), purpose).arg("--no-summary");
                if *command == ClamavCommand::Clamscan {
                    cmd = cmd.arg("--alert-exceeds-max=yes");
                }
                cmd.args(args).any_status()
            }
        };
        cmd.args(files.iter().map(|f| OsString::from(f.as_os_str())))
            .quiet()
    }

    /// Judges a finished batch of `files` run by `cmd`; `output` holds every
    /// output line (both streams) when [`Engine::needs_output`].
    ///
    /// # Errors
    /// [`ProcessError::Status`] (with the command line and output tail) when
    /// the batch failed: KESL with a status other than 0 or 72; ClamAV with a
    /// status other than 0, 1 or 2, or with 2 and no result line for any
    /// file.
    pub fn judge(
        &self,
        cmd: &Cmd,
        finished: Finished,
        files: &[PathBuf],
        output: &[String],
    ) -> Result<BatchResult, ProcessError> {
        match self {
            Engine::Kesl => {
                let finished = Running::check(cmd, finished)?;
                Ok(BatchResult {
                    threat: finished.exit == Exit::Code(KESL_THREAT_EXIT),
                    verdicts: Vec::new(),
                })
            }
            Engine::Clamav { .. } => {
                let fail = |finished: Finished| ProcessError::Status {
                    command: cmd.display(),
                    purpose: cmd.purpose().to_owned(),
                    exit: finished.exit,
                    tail: finished.tail,
                };
                let code = match finished.exit {
                    Exit::Code(c @ 0..=2) => c,
                    _ => return Err(fail(finished)),
                };
                let results = parse_clamav_output(files, output);
                if code == 2 && results.iter().all(Vec::is_empty) {
                    return Err(fail(finished));
                }
                let mut verdicts = Vec::new();
                for (i, lines) in results.into_iter().enumerate() {
                    if lines.is_empty() {
                        verdicts.push((
                            i,
                            FileVerdict::NotScanned(format!(
                                "no result in the {} output (exit {code})",
                                self.name()
                            )),
                        ));
                    }
                    for v in lines.into_iter().flatten() {
                        verdicts.push((i, v));
                    }
                }
                Ok(BatchResult {
                    threat: code == 1
                        || verdicts
                            .iter()
                            .any(|(_, v)| matches!(v, FileVerdict::Found(_))),
                    verdicts,
                })
            }
        }
    }
}

/// The result lines of `clamscan`/`clamdscan` for `files`: per file (same
/// order), one entry per result line: `None` for clean (`OK`, `Empty
/// file`), else its [`FileVerdict`]. A file with no result line has an
/// empty list.
///
/// A result line is `<path>: <result>`; since a path may itself hold `: `,
/// every `: ` of a line is tried from the left until the part before it is
/// one of `files` (compared as lossy UTF-8, as the output is read). Lines
/// that name no file of the batch (warnings, summaries) are ignored.
pub fn parse_clamav_output(files: &[PathBuf], lines: &[String]) -> Vec<Vec<Option<FileVerdict>>> {
    let index: HashMap<String, usize> = files
        .iter()
        .enumerate()
        .map(|(i, f)| (f.to_string_lossy().into_owned(), i))
        .collect();
    let mut out = vec![Vec::new(); files.len()];
    for line in lines {
        let line = line.trim_end();
        let found = line.match_indices(": ").find_map(|(pos, _)| {
            index
                .get(&line[..pos])
                .map(|&i| (i, line[pos + 2..].trim()))
        });
        let Some((i, result)) = found else {
            continue;
        };
        let verdict = if result == "OK" || result == "Empty file" {
            None
        } else if let Some(name) = result.strip_suffix(" FOUND") {
            let name = name.trim();
            if name.starts_with(CLAMAV_LIMITS_PREFIX) {
                Some(FileVerdict::NotScanned(format!(
                    "scan limit exceeded: {name}"
                )))
            } else {
                Some(FileVerdict::Found(name.to_owned()))
            }
        } else {
            let reason = result.strip_suffix("ERROR").unwrap_or(result).trim();
            Some(FileVerdict::NotScanned(if reason.is_empty() {
                "ERROR".to_owned()
            } else {
                reason.to_owned()
            }))
        };
        out[i].push(verdict);
    }
    out
}

/// Runs the KESL threat query for events after `since` (local time,
/// `%Y-%m-%d %H:%M:%S`, validated by the caller: it is put inside quotes of
/// the query) and returns its answer (stdout) as is.
///
/// # Errors
/// [`ProcessError`] if `kesl-control` cannot be run or fails.
pub fn kesl_threat_query(tools: &Tools, since: &str) -> Result<String, ProcessError> {
    let out = tools
        .cmd(
            Tool::KeslControl,
            "list the threats detected since the scan started",
        )
        .arg("-E")
        .arg("--query")
        .arg(format!(
            "EventType == 'ThreatDetected' and Date > '{since}'"
        ))
        .run()?;
    Ok(out.stdout)
}

/// Whether `path` is gone (does not exist, not even as a dangling link).
pub fn vanished(path: &Path) -> bool {
    matches!(std::fs::symlink_metadata(path), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> Vec<PathBuf> {
        ["/m/a", "/m/b: c", "/m/d", "/m/e", "/m/f", "/m/g"]
            .iter()
            .map(PathBuf::from)
            .collect()
    }

    #[test]
    fn clamav_results_per_file() {
        let lines: Vec<String> = [
            "/m/a: OK",
            "/m/b: c: Eicar-Signature FOUND",
            "/m/d: Heuristics.Limits.Exceeded.MaxFileSize FOUND",
            "/m/e: Can't open file or directory ERROR",
            "LibClamAV Warning: something",
            "/m/f: Access denied",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let r = parse_clamav_output(&files(), &lines);
        assert_eq!(r[0], vec![None]);
        assert_eq!(
            r[1],
            vec![Some(FileVerdict::Found("Eicar-Signature".to_owned()))]
        );
        assert_eq!(
            r[2],
            vec![Some(FileVerdict::NotScanned(
                "scan limit exceeded: Heuristics.Limits.Exceeded.MaxFileSize".to_owned()
            ))]
        );
        assert_eq!(
            r[3],
            vec![Some(FileVerdict::NotScanned(
                "Can't open file or directory".to_owned()
            ))]
        );
        assert_eq!(
            r[4],
            vec![Some(FileVerdict::NotScanned("Access denied".to_owned()))]
        );
        assert!(r[5].is_empty());
    }

    #[test]
    fn clamav_judge_never_passes_a_file_without_result() {
        let engine = Engine::Clamav {
            command: ClamavCommand::Clamscan,
            args: Vec::new(),
        };
        let tools = Tools::resolve(&[], |_| None);
        let files = files();
        let cmd = engine.batch_cmd(&tools, &files);
        let finished = |code| Finished {
            exit: Exit::Code(code),
            stdout: String::new(),
            tail: "ERROR: Could not connect to clamd".to_owned(),
            duration: std::time::Duration::ZERO,
        };
        let ok: Vec<String> = files
            .iter()
            .take(5)
            .map(|f| format!("{}: OK", f.display()))
            .collect();
        let r = engine.judge(&cmd, finished(0), &files, &ok).unwrap();
        assert!(!r.threat);
        assert_eq!(r.verdicts.len(), 1);
        assert_eq!(r.verdicts[0].0, 5);
        // Exit 2 and not one result line: the batch failed.
        let err = engine.judge(&cmd, finished(2), &files, &[]).unwrap_err();
        assert!(err.to_string().contains("exited with 2"), "{err}");
        assert!(engine.judge(&cmd, finished(3), &files, &ok).is_err());
        let args: Vec<String> = cmd
            .raw_args()
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(&args[..2], ["--no-summary", "--alert-exceeds-max=yes"]);
    }

    #[test]
    fn kesl_exit_codes() {
        let tools = Tools::resolve(&[], |_| None);
        let files = files();
        let cmd = Engine::Kesl.batch_cmd(&tools, &files);
        let finished = |code| Finished {
            exit: Exit::Code(code),
            stdout: String::new(),
            tail: String::new(),
            duration: std::time::Duration::ZERO,
        };
        let judge = |code| Engine::Kesl.judge(&cmd, finished(code), &files, &[]);
        assert!(!judge(0).unwrap().threat);
        assert!(judge(72).unwrap().threat);
        assert!(judge(1).is_err());
    }
}
