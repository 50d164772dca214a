//! `files_to_scan.txt`: which files a fresh scan covers (module docs of
//! [`super`], "What is scanned"), how a path is written on one line
//! ([`escape_path`] / [`unescape_path`]), and the list read back
//! ([`FileList`]).

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::{TARGET, failed, walk};
use crate::backends::zfs;
use crate::error::Result;
use crate::process::Stream;
use crate::stages::StageContext;
use crate::state::StateError;
use crate::state::files::{Access, open_regular};

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
    zfs::unescape_octal(line, &[3])
}

pub(super) fn escaped(path: &[u8]) -> String {
    let mut out = Vec::new();
    escape_path(path, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// `files_to_scan.txt` on disk: the open file, its number of lines and its
/// size. Lines are read in order, a batch at a time ([`ListReader`]), and
/// decoded only when their batch runs: memory does not grow with the list.
#[derive(Debug)]
pub struct FileList {
    file: File,
    lines: usize,
    bytes: u64,
}

impl FileList {
    /// Opens the list at `path` (a regular file, not followed through a
    /// symlink; `None` if it does not exist) and counts its lines (a last
    /// line without a newline counts). Refuses a file over `max_bytes`.
    ///
    /// # Errors
    /// [`StateError`] naming the file.
    pub fn open(path: &Path, max_bytes: u64) -> std::result::Result<Option<FileList>, StateError> {
        let file = match open_regular(path, Access::Read, "read") {
            Ok(f) => f,
            Err(StateError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let io_err = |source| StateError::Io {
            action: "read",
            path: path.to_path_buf(),
            source,
        };
        let size = file.metadata().map_err(io_err)?.len();
        if size > max_bytes {
            return Err(StateError::Refused {
                path: path.to_path_buf(),
                message: format!(
                    "it is larger than {max_bytes} bytes, more than this state file can hold"
                ),
            });
        }
        FileList::from_file(file).map(Some).map_err(io_err)
    }

    /// Counts the lines of the open `file` (from its start).
    ///
    /// # Errors
    /// The file cannot be read.
    pub fn from_file(mut file: File) -> io::Result<FileList> {
        file.rewind()?;
        let mut buf = vec![0u8; 1 << 20];
        let (mut lines, mut bytes, mut last) = (0usize, 0u64, b'\n');
        loop {
            let n = match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            lines += buf[..n].iter().filter(|&&b| b == b'\n').count();
            bytes += n as u64;
            last = buf[n - 1];
        }
        if last != b'\n' {
            lines += 1;
        }
        file.rewind()?;
        Ok(FileList { file, lines, bytes })
    }

    /// A list holding `data` (in an anonymous temp file).
    ///
    /// # Errors
    /// The temp file cannot be written.
    pub fn from_bytes(data: &[u8]) -> io::Result<FileList> {
        let mut file = tempfile::tempfile()?;
        file.write_all(data)?;
        FileList::from_file(file)
    }

    /// The number of lines.
    pub fn len(&self) -> usize {
        self.lines
    }

    /// Whether there is no line.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The size of the file in bytes.
    pub fn byte_len(&self) -> u64 {
        self.bytes
    }

    /// A reader of the lines from the first one (one at a time: readers
    /// share the file offset).
    ///
    /// # Errors
    /// The file cannot be duplicated or rewound.
    pub fn reader(&self) -> io::Result<ListReader> {
        let mut file = self.file.try_clone()?;
        file.rewind()?;
        Ok(ListReader {
            inner: BufReader::with_capacity(256 * 1024, file),
            next: 0,
        })
    }
}

/// Reads the paths of line ranges of a [`FileList`], best in ascending
/// order (a range before the current line rewinds to the start).
#[derive(Debug)]
pub struct ListReader {
    inner: BufReader<File>,
    /// The number of the next line to read.
    next: usize,
}

impl ListReader {
    /// The decoded paths of lines `start..end` (`end` exclusive), blank
    /// lines left out.
    ///
    /// # Errors
    /// The file cannot be read.
    pub fn paths(&mut self, start: usize, end: usize) -> io::Result<Vec<PathBuf>> {
        if start < self.next {
            self.inner.rewind()?;
            self.next = 0;
        }
        while self.next < start {
            if self.inner.skip_until(b'\n')? == 0 {
                return Ok(Vec::new());
            }
            self.next += 1;
        }
        let mut paths = Vec::with_capacity(end - start);
        let mut line = Vec::new();
        while self.next < end {
            line.clear();
            if self.inner.read_until(b'\n', &mut line)? == 0 {
                break;
            }
            self.next += 1;
            if line.last() == Some(&b'\n') {
                line.pop();
            }
            if !line.is_empty() {
                paths.push(PathBuf::from(OsString::from_vec(unescape_path(&line))));
            }
        }
        Ok(paths)
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

/// Where the temp files of a new list go: the state directory, or under
/// `--dry-run` (which writes nothing there) the system's temp directory.
pub(super) fn scratch_dir(ctx: &StageContext) -> PathBuf {
    if ctx.dry_run {
        std::env::temp_dir()
    } else {
        ctx.state().av_state_dir()
    }
}

/// Writes the list of a fresh scan (module docs, "What is scanned") to
/// `out` as it is found; anonymous temp files of the walk go to `scratch`.
/// Returns the number of lines.
pub(super) fn build_list(ctx: &StageContext, out: &mut File, scratch: &Path) -> Result<u64> {
    let dataset = &ctx.config.mirror.zfs_mirror_dataset;
    let mount = std::path::absolute(&ctx.config.mirror.zfs_mirror_dir)
        .unwrap_or_else(|_| ctx.config.mirror.zfs_mirror_dir.clone());
    let snapshots = zfs::list_snapshots(&ctx.tools, dataset).map_err(failed)?;
    let Some(newest) = snapshots.last() else {
        tracing::info!(target: TARGET, dataset = %dataset, mirror_dir = %mount.display(), "av_scan_no_snapshot_full_scan");
        let scratch_file = || tempfile::tempfile_in(scratch);
        let files = walk::walk(&mount, out, &scratch_file).map_err(|e| {
            failed(StateError::Io {
                action: "list the mirror directory",
                path: e.path,
                source: e.source,
            })
        })?;
        tracing::info!(target: TARGET, files = files, "av_scan_mirror_listed");
        return Ok(files);
    };
    let list_err = |source| {
        failed(StateError::Io {
            action: "write the list of changed files to",
            path: scratch.to_path_buf(),
            source,
        })
    };
    let state = Arc::new(Mutex::new(DiffState::new(
        out.try_clone().map_err(list_err)?,
    )));
    let handler_state = Arc::clone(&state);
    zfs::diff_cmd(&ctx.tools, dataset, newest)
        .on_line(move |stream, line| {
            if stream == Stream::Stdout
                && let Ok(mut s) = handler_state.lock()
            {
                s.line(line);
            }
        })
        .run()
        .map_err(failed)?;
    let mut s = state.lock().map_err(|_| {
        failed(StateError::Io {
            action: "collect the output of zfs diff for",
            path: scratch.to_path_buf(),
            source: io::Error::other("the output reader panicked"),
        })
    })?;
    if let Some(e) = s.error.take() {
        return Err(list_err(e));
    }
    s.out.flush().map_err(list_err)?;
    tracing::info!(target: TARGET, snapshot = %format!("{dataset}@{newest}"), diff_lines = s.lines, files = s.files, skipped = s.skipped, "av_scan_changes_listed");
    Ok(s.files)
}

/// The list of changed files while `zfs diff` prints it.
struct DiffState {
    out: BufWriter<File>,
    /// The previous path listed (a path printed twice in a row is listed once).
    last: Vec<u8>,
    line: Vec<u8>,
    lines: u64,
    files: u64,
    skipped: u64,
    error: Option<io::Error>,
}

impl DiffState {
    fn new(out: File) -> DiffState {
        DiffState {
            out: BufWriter::with_capacity(256 * 1024, out),
            last: Vec::new(),
            line: Vec::new(),
            lines: 0,
            files: 0,
            skipped: 0,
            error: None,
        }
    }

    /// Takes one line of `zfs diff -H -F` output (rules in the module docs).
    fn line(&mut self, line: &str) {
        self.lines += 1;
        let Some(entry) = zfs::parse_diff_line(line) else {
            tracing::warn!(target: TARGET, line = %line, "zfs_diff_line_ignored");
            return;
        };
        let wanted = matches!(entry.change, '+' | 'M')
            && entry.kind == 'F'
            && !entry
                .path
                .components()
                .any(|c| c.as_os_str() == "<xattrdir>");
        let path = entry.path.as_os_str().as_bytes();
        let regular =
            wanted && fs::symlink_metadata(&entry.path).is_ok_and(|m| m.file_type().is_file());
        if !regular || path == self.last.as_slice() {
            self.skipped += 1;
            return;
        }
        self.last.clear();
        self.last.extend_from_slice(path);
        self.line.clear();
        escape_path(path, &mut self.line);
        self.line.push(b'\n');
        if self.error.is_none()
            && let Err(e) = self.out.write_all(&self.line)
        {
            self.error = Some(e);
        }
        self.files += 1;
    }
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
        let list = FileList::from_bytes(&bytes).unwrap();
        assert_eq!(list.len(), raw.len());
        assert_eq!(list.byte_len(), bytes.len() as u64);
        let mut reader = list.reader().unwrap();
        assert_eq!(reader.paths(0, raw.len()).unwrap(), paths);
        // Ranges in order, and a range before the current line (rewinds).
        assert_eq!(reader.paths(0, 2).unwrap(), paths[0..2].to_vec());
        assert_eq!(reader.paths(3, 5).unwrap(), paths[3..5].to_vec());
        assert_eq!(reader.paths(1, 2).unwrap(), paths[1..2].to_vec());
        // A plain list of the previous tool, without a final newline.
        let legacy = FileList::from_bytes(b"/a b\n\n/c").unwrap();
        assert_eq!(legacy.len(), 3);
        let mut reader = legacy.reader().unwrap();
        assert_eq!(reader.paths(0, 1).unwrap(), vec![PathBuf::from("/a b")]);
        assert_eq!(reader.paths(1, 2).unwrap(), Vec::<PathBuf>::new());
        assert_eq!(reader.paths(2, 3).unwrap(), vec![PathBuf::from("/c")]);
        assert!(FileList::from_bytes(b"").unwrap().is_empty());
    }

    #[test]
    fn escaped_paths_read_back_as_their_bytes() {
        let raw: &[u8] = b"/m/a\\b\nc3\x7f\xff\x1f d";
        let mut line = Vec::new();
        escape_path(raw, &mut line);
        assert_eq!(line, b"/m/a\\134b\\012c3\\177\xff\\037 d".to_vec());
        assert_eq!(unescape_path(&line), raw.to_vec());
        // Three digits only: `\0123` is a line break and `3`.
        assert_eq!(unescape_path(b"\\0123"), b"\n3".to_vec());
        // A `\` that starts no escape, or one over 0o377, is itself.
        assert_eq!(unescape_path(b"\\9z\\400"), b"\\9z\\400".to_vec());
    }
}
