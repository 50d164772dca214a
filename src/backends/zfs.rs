//! ZFS through the `zfs` CLI (`tools.zfs`, default `/sbin/zfs`); see
//! zfs-snapshot(8), zfs-list(8) and zfs-diff(8) of OpenZFS.

use crate::process::{Cmd, ProcessError, Tool, Tools};

/// `zfs snapshot <dataset>@<name>`: takes a snapshot (mutating; for a plan).
pub fn snapshot_cmd(tools: &Tools, dataset: &str, name: &str) -> Cmd {
    tools
        .cmd(Tool::Zfs, "take the snapshot of the mirror dataset")
        .arg("snapshot")
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

/// `zfs diff -H -F <dataset>@<snapshot>`: the changes since that snapshot,
/// for the antivirus scan (read-only). Parse its output with
/// [`parse_diff_line`].
pub fn diff_cmd(tools: &Tools, dataset: &str, snapshot: &str) -> Cmd {
    tools
        .cmd(Tool::Zfs, "list the files changed since the last snapshot")
        .args(["diff", "-H", "-F"])
        .arg(format!("{dataset}@{snapshot}"))
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
    /// The path (after a rename: the new path), unescaped.
    pub path: String,
}

/// Parses `change<TAB>type<TAB>path[<TAB>new path]`; `zfs diff` escapes
/// unprintable bytes and blanks in paths as `\oooo` (4 octal digits), which is undone
/// here. `None` for a malformed line.
pub fn parse_diff_line(line: &str) -> Option<DiffEntry> {
    let mut parts = line.split('\t');
    let change = parts.next()?.chars().next()?;
    let kind = parts.next()?.chars().next()?;
    let first = parts.next()?;
    let path = parts.next().unwrap_or(first);
    Some(DiffEntry {
        change,
        kind,
        path: unescape(path),
    })
}

fn unescape(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 5)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match octal {
            Some(digits) => {
                let v = digits
                    .iter()
                    .fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
                out.push(u8::try_from(v).unwrap_or(b'?'));
                i += 5;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
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
                path: "/pool/m/a b".to_owned()
            })
        );
        assert_eq!(
            parse_diff_line("R\tF\t/pool/m/old\t/pool/m/new").map(|e| e.path),
            Some("/pool/m/new".to_owned())
        );
        assert_eq!(parse_diff_line("garbage"), None);
    }
}
