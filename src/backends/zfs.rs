//! ZFS through the `zfs` CLI (`tools.zfs`, default `/sbin/zfs`); see
//! zfs-snapshot(8), zfs-list(8) and zfs-diff(8) of OpenZFS. zfs reads each
//! subcommand's options with getopt(3), so `--` ends them: the dataset
//! always follows it and is never read as an option.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

use crate::process::{Cmd, ProcessError, Tool, Tools};

/// `zfs snapshot -- <dataset>@<name>`: takes a snapshot (mutating; for a plan).
pub fn snapshot_cmd(tools: &Tools, dataset: &str, name: &str) -> Cmd {
    tools
        .cmd(Tool::Zfs, "take the snapshot of the mirror dataset")
        .args(["snapshot", "--"])
        .arg(format!("{dataset}@{name}"))
}

/// Runs `zfs list -t snapshot -o name -H` (read-only, also under
/// `--dry-run`) and returns the snapshot names (the part after `@`) of the
/// lines that start with `<dataset>@`, in the order zfs printed them
/// (creation order).
///
/// # Errors
/// [`ProcessError`] if zfs cannot be run or fails.
pub fn list_snapshots(tools: &Tools, dataset: &str) -> Result<Vec<String>, ProcessError> {
    let out = tools
        .cmd(Tool::Zfs, "list the ZFS snapshots")
        .args(["list", "-t", "snapshot", "-o", "name", "-H"])
        .quiet()
        .run()?;
    Ok(parse_snapshot_list(&out.stdout, dataset))
}

/// The snapshot names of `dataset` in the output of `zfs list -t snapshot
/// -o name -H` (one `<dataset>@<name>` per line).
pub fn parse_snapshot_list(stdout: &str, dataset: &str) -> Vec<String> {
    let prefix = format!("{dataset}@");
    stdout
        .lines()
        .map(str::trim)
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `zfs diff -H -F -- <dataset>@<snapshot>`: the changes since that snapshot,
/// for the antivirus scan (read-only). Its output is ASCII (every other
/// byte of a path is escaped). Parse it with
/// [`parse_diff_line`].
pub fn diff_cmd(tools: &Tools, dataset: &str, snapshot: &str) -> Cmd {
    tools
        .cmd(Tool::Zfs, "list the files changed since the last snapshot")
        .args(["diff", "-H", "-F", "--"])
        .arg(format!("{dataset}@{snapshot}"))
        .quiet()
}

/// `zfs diff -H -F -- <dataset>@<from> <dataset>@<to>`: the changes between
/// two snapshots, for `verify --deep changed` (read-only; parse with
/// [`parse_diff_line`]; paths are under the dataset's mountpoint).
pub fn diff_between_cmd(tools: &Tools, dataset: &str, from: &str, to: &str) -> Cmd {
    tools
        .cmd(Tool::Zfs, "list the files changed between two snapshots")
        .args(["diff", "-H", "-F", "--"])
        .arg(format!("{dataset}@{from}"))
        .arg(format!("{dataset}@{to}"))
        .quiet()
}

/// One line of `zfs diff -H -F`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffEntry {
    /// `+` added, `-` removed, `M` modified, `R` renamed.
    pub change: char,
    /// `F` file, `/` directory, `@` symlink, `B` block device, `>` door,
    /// `|` pipe, `=` socket, `P` event port.
    pub kind: char,
    /// The path (after a rename: the new path), unescaped to its raw bytes
    /// (a path need not be UTF-8).
    pub path: PathBuf,
}

/// Parses `change<TAB>type<TAB>path[<TAB>new path]` (zfs-diff(8) with `-H
/// -F`). `zfs diff` prints every byte of a path that is not a printable
/// ASCII character other than blank and `\` as `\` and its value in octal:
/// four digits in OpenZFS (`\0040` for a blank, `\0134` for `\`, `\0303`
/// for a byte of a UTF-8 sequence), three in older releases; both are
/// undone here ([`unescape_diff_path`]). `None` for a malformed line.
pub fn parse_diff_line(line: &str) -> Option<DiffEntry> {
    let mut parts = line.split('\t');
    let change = parts.next()?.chars().next()?;
    let kind = parts.next()?.chars().next()?;
    let first = parts.next()?;
    let path = parts.next().unwrap_or(first);
    if path.is_empty() {
        return None;
    }
    Some(DiffEntry {
        change,
        kind,
        path: PathBuf::from(OsString::from_vec(unescape_diff_path(path))),
    })
}

/// The raw bytes of a path as escaped by `zfs diff`: `\` followed by four
/// octal digits with a value up to 0o377 is that byte, else `\` followed
/// by three octal digits (older releases) is that byte; any other byte is
/// itself.
pub fn unescape_diff_path(path: &str) -> Vec<u8> {
    let bytes = path.as_bytes();
    let octal = |digits: &[u8]| {
        digits
            .iter()
            .all(|b| (b'0'..=b'7').contains(b))
            .then(|| {
                digits
                    .iter()
                    .fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'))
            })
            .and_then(|v| u8::try_from(v).ok())
    };
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            if let Some(b) = bytes.get(i + 1..i + 5).and_then(octal) {
                out.push(b);
                i += 5;
                continue;
            }
            if let Some(b) = bytes.get(i + 1..i + 4).and_then(octal) {
                out.push(b);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_list_keeps_only_the_dataset() {
        let out = "pool/m@a\npool/m/child@b\npool/mx@c\npool/m@b\n";
        assert_eq!(parse_snapshot_list(out, "pool/m"), vec!["a", "b"]);
    }

    #[test]
    fn diff_lines() {
        assert_eq!(
            parse_diff_line("M\tF\t/pool/m/a\\0040b"),
            Some(DiffEntry {
                change: 'M',
                kind: 'F',
                path: PathBuf::from("/pool/m/a b")
            })
        );
        assert_eq!(
            parse_diff_line("R\tF\t/pool/m/old\t/pool/m/new").map(|e| e.path),
            Some(PathBuf::from("/pool/m/new"))
        );
        assert_eq!(parse_diff_line("garbage"), None);
    }

    #[test]
    fn diff_paths_keep_raw_bytes() {
        // A newline, a backslash, a non-UTF-8 byte (0xff), UTF-8 "é" as
        // OpenZFS prints them, and the three-digit form of older releases.
        assert_eq!(
            unescape_diff_path("/m/a\\0012b\\0134c\\0377\\0303\\0251"),
            b"/m/a\nb\\c\xff\xc3\xa9".to_vec()
        );
        assert_eq!(unescape_diff_path("/m/x\\040y"), b"/m/x y".to_vec());
        // Not an escape: kept as written.
        assert_eq!(unescape_diff_path("/m/\\9z"), b"/m/\\9z".to_vec());
    }
}
