//! `files_to_scan.txt`: which files a fresh scan covers (module docs of
//! [`super`], "What is scanned"), how a path is written on one line
//! ([`escape_path`] / [`unescape_path`]), and the list read back
//! ([`FileList`]).

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use super::{TARGET, failed};
use crate::backends::zfs;
use crate::error::Result;
use crate::stages::StageContext;
use crate::state::StateError;

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

/// The files to scan for a fresh scan (module docs, "What is scanned").
pub(super) fn build_list(ctx: &StageContext) -> Result<Vec<PathBuf>> {
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
