//! ZFS through the `zfs` CLI (`tools.zfs`, default `/sbin/zfs`); see
//! zfs-snapshot(8), zfs-list(8), zfs-diff(8), zfs-hold(8) and zfs-destroy(8) of OpenZFS. zfs reads each
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

/// The user hold `mirrorer pin` places on a snapshot (zfs-hold(8)); a held
/// snapshot cannot be destroyed, and `prune` never plans to.
pub const PIN_TAG: &str = "mirrorer:pin";

/// `zfs hold -- <tag> <dataset>@<name>` (mutating; for a plan).
pub fn hold_cmd(tools: &Tools, tag: &str, dataset: &str, name: &str) -> Cmd {
    tools
        .cmd(Tool::Zfs, "place a hold on the snapshot")
        .args(["hold", "--", tag])
        .arg(format!("{dataset}@{name}"))
}

/// `zfs release -- <tag> <dataset>@<name>` (mutating; for a plan).
pub fn release_cmd(tools: &Tools, tag: &str, dataset: &str, name: &str) -> Cmd {
    tools
        .cmd(Tool::Zfs, "release the hold on the snapshot")
        .args(["release", "--", tag])
        .arg(format!("{dataset}@{name}"))
}

/// `zfs destroy -- <dataset>@<name>` (mutating; for a plan). zfs refuses a
/// held snapshot ("dataset is busy").
pub fn destroy_cmd(tools: &Tools, dataset: &str, name: &str) -> Cmd {
    tools
        .cmd(Tool::Zfs, "destroy the snapshot")
        .args(["destroy", "--"])
        .arg(format!("{dataset}@{name}"))
}

/// Runs the read-only `zfs <args> <dataset>@<name>...` for `purpose`
/// (quiet, also under `--dry-run`) and returns its stdout; runs nothing
/// and returns an empty text for an empty `names`.
fn query_snapshots(
    tools: &Tools,
    purpose: &str,
    args: &[&str],
    dataset: &str,
    names: &[String],
) -> Result<String, ProcessError> {
    if names.is_empty() {
        return Ok(String::new());
    }
    let out = tools
        .cmd(Tool::Zfs, purpose)
        .args(args)
        .args(names.iter().map(|n| format!("{dataset}@{n}")))
        .quiet()
        .run()?;
    Ok(out.stdout)
}

/// Runs `zfs holds -H -- <dataset>@<name>...` (read-only, also under
/// `--dry-run`; nothing runs for an empty `names`) and returns `(snapshot
/// name, tag)` pairs of `dataset` (zfs-holds(8): `NAME<TAB>TAG<TAB>TIMESTAMP`
/// per hold).
///
/// # Errors
/// [`ProcessError`] if zfs cannot be run or fails (e.g. a snapshot that
/// does not exist).
pub fn holds(
    tools: &Tools,
    dataset: &str,
    names: &[String],
) -> Result<Vec<(String, String)>, ProcessError> {
    let purpose = "list the holds on the snapshots";
    let out = query_snapshots(tools, purpose, &["holds", "-H", "--"], dataset, names)?;
    Ok(parse_holds(&out, dataset))
}

/// Runs `zfs get -H -p -o name,value userrefs -- <dataset>@<name>...`
/// (read-only, also under `--dry-run`; nothing runs for an empty `names`)
/// and returns the names whose number of user holds (zfsprops(7),
/// `userrefs`) is above 0. Unlike `zfs holds` this needs no tag and works
/// on every ZFS with user holds (zfs-fuse's `zfs holds` is a Python helper
/// that may be missing).
///
/// # Errors
/// [`ProcessError`] if zfs cannot be run or fails.
pub fn held_snapshots(
    tools: &Tools,
    dataset: &str,
    names: &[String],
) -> Result<Vec<String>, ProcessError> {
    let purpose = "count the holds on the snapshots";
    let args = ["get", "-H", "-p", "-o", "name,value", "userrefs", "--"];
    let out = query_snapshots(tools, purpose, &args, dataset, names)?;
    Ok(parse_userrefs(&out, dataset))
}

/// The snapshot names of `dataset` with a `userrefs` above 0 in the output
/// of `zfs get -H -p -o name,value userrefs` (`NAME<TAB>COUNT` per line).
pub fn parse_userrefs(stdout: &str, dataset: &str) -> Vec<String> {
    let prefix = format!("{dataset}@");
    stdout
        .lines()
        .filter_map(|l| {
            let (name, count) = l.split_once('\t')?;
            let name = name.trim().strip_prefix(&prefix)?;
            let held = count.trim().parse::<u64>().is_ok_and(|c| c > 0);
            (held && !name.is_empty()).then(|| name.to_owned())
        })
        .collect()
}

/// The `(snapshot name, tag)` pairs of `dataset` in the output of `zfs
/// holds -H`.
pub fn parse_holds(stdout: &str, dataset: &str) -> Vec<(String, String)> {
    let prefix = format!("{dataset}@");
    stdout
        .lines()
        .filter_map(|l| {
            let mut parts = l.split('\t');
            let name = parts.next()?.trim().strip_prefix(&prefix)?;
            let tag = parts.next()?.trim();
            (!name.is_empty() && !tag.is_empty()).then(|| (name.to_owned(), tag.to_owned()))
        })
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
    unescape_octal(path.as_bytes(), &[4, 3])
}

/// The raw bytes of `escaped`, in which `\` followed by `n` octal digits
/// with a value up to 0o377 is that byte, `n` tried in the order of
/// `widths`; any other byte, also a `\` that starts no such escape, is
/// itself. `zfs diff` paths use `[4, 3]` ([`unescape_diff_path`]), the
/// lists of av-scan `[3]` (`stages::av_scan::unescape_path`).
pub fn unescape_octal(escaped: &[u8], widths: &[usize]) -> Vec<u8> {
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
    let mut out = Vec::with_capacity(escaped.len());
    let mut i = 0;
    while i < escaped.len() {
        if escaped[i] == b'\\'
            && let Some((b, n)) = widths.iter().find_map(|&n| {
                let digits = escaped.get(i + 1..i + 1 + n)?;
                octal(digits).map(|b| (b, n))
            })
        {
            out.push(b);
            i += 1 + n;
            continue;
        }
        out.push(escaped[i]);
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
    fn holds_keep_only_the_dataset() {
        let out =
            "pool/m@a\tmirrorer:pin\tWed Dec  2 13:00 2026\npool/mx@b\tt\tx\npool/m@c\tother\tx\n";
        assert_eq!(
            parse_holds(out, "pool/m"),
            vec![
                ("a".to_owned(), "mirrorer:pin".to_owned()),
                ("c".to_owned(), "other".to_owned())
            ]
        );
    }

    #[test]
    fn userrefs_above_zero_are_held() {
        let out = "pool/m@a\t1\npool/m@b\t0\npool/mx@c\t2\npool/m@d\t-\n";
        assert_eq!(parse_userrefs(out, "pool/m"), vec!["a".to_owned()]);
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
