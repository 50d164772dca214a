//! The checkpoint journal `state/av_state/journal`: the one type that reads
//! and writes its format (module docs of [`super`], "The journal"): the
//! header that ties it to the list, the `F` and `B` lines of each finished
//! batch, and the compacted journal of a complete scan.

use std::collections::VecDeque;
use std::path::Path;

use super::TARGET;
use super::list::FileList;

/// The format of the journal ("mirrorer-av-journal 1 ...").
pub const JOURNAL_MAGIC: &str = "mirrorer-av-journal 1";

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

/// Which lines of the list are done: one bit per line (a list of millions
/// of lines costs a few hundred KiB).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DoneLines {
    bits: Vec<u64>,
    len: usize,
}

impl DoneLines {
    /// `len` lines, none done.
    pub fn new(len: usize) -> DoneLines {
        DoneLines {
            bits: vec![0; len.div_ceil(64)],
            len,
        }
    }

    /// The number of lines.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there is no line.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether line `i` is done (`false` past the end).
    pub fn get(&self, i: usize) -> bool {
        i < self.len && self.bits[i / 64] >> (i % 64) & 1 == 1
    }

    /// Marks lines `start..end` done (clamped to the list); returns how
    /// many of them were not done before.
    pub fn set_range(&mut self, start: usize, end: usize) -> usize {
        let mut newly = 0;
        for i in start..end.min(self.len) {
            let (word, bit) = (i / 64, 1u64 << (i % 64));
            if self.bits[word] & bit == 0 {
                self.bits[word] |= bit;
                newly += 1;
            }
        }
        newly
    }

    /// One flag per line (for tests and small lists).
    pub fn to_vec(&self) -> Vec<bool> {
        (0..self.len).map(|i| self.get(i)).collect()
    }
}

/// What the journal says.
#[derive(Debug, Default)]
pub struct Journal {
    /// Per line of the list: done.
    pub done: DoneLines,
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

impl Journal {
    /// The header line (with its newline) of a journal for `list`:
    /// `mirrorer-av-journal 1 lines=<n> bytes=<size of the list>`.
    pub fn header(list: &FileList) -> String {
        format!(
            "{JOURNAL_MAGIC} lines={} bytes={}\n",
            list.len(),
            list.byte_len()
        )
    }

    /// Reads `journal` text for `list` (see the module docs); `path` names it
    /// in warnings.
    pub fn read(bytes: &[u8], list: &FileList, path: &Path) -> Journal {
        let n = list.len();
        let header = Journal::header(list);
        let mut j = Journal {
            done: DoneLines::new(n),
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
                    j.done_count += j.done.set_range(s, e);
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

    /// Records the finished batch `start..end` (line numbers, `end`
    /// exclusive): marks its lines done, keeps its `findings`, counts a
    /// `threat` status, and appends its journal lines to `out` (the finding
    /// lines, then the `B` line, so one write carries the whole batch).
    pub fn record(
        &mut self,
        start: usize,
        end: usize,
        threat: bool,
        findings: Vec<Finding>,
        out: &mut Vec<u8>,
    ) {
        for finding in &findings {
            out.extend_from_slice(
                format!(
                    "F\t{}\t{}\t{}\n",
                    finding.kind, finding.path, finding.detail
                )
                .as_bytes(),
            );
        }
        let status = if threat { "threat" } else { "clean" };
        if threat {
            self.threat_batches += 1;
        }
        out.extend_from_slice(format!("B\t{start}\t{end}\t{status}\n").as_bytes());
        self.done_count += self.done.set_range(start, end);
        self.findings.extend(findings);
    }

    /// The journal of a complete scan of `list`: the header, every finding,
    /// and one `B` line for the whole list.
    pub fn compacted(&self, list: &FileList) -> Vec<u8> {
        let mut compact = Journal::header(list).into_bytes();
        for f in &self.findings {
            compact
                .extend_from_slice(format!("F\t{}\t{}\t{}\n", f.kind, f.path, f.detail).as_bytes());
        }
        let status = if self.threat_batches > 0 {
            "threat"
        } else {
            "clean"
        };
        compact.extend_from_slice(format!("B\t0\t{}\t{status}\n", list.len()).as_bytes());
        compact
    }
}

/// The consecutive runs of lines not done, cut into batches of at most
/// `batch_size` lines: `(start, end)` with `end` exclusive.
pub fn pending_batches(done: &DoneLines, batch_size: usize) -> VecDeque<(usize, usize)> {
    let batch_size = batch_size.max(1);
    let mut out = VecDeque::new();
    let mut i = 0;
    while i < done.len() {
        if done.get(i) {
            i += 1;
            continue;
        }
        let start = i;
        while i < done.len() && !done.get(i) && i - start < batch_size {
            i += 1;
        }
        out.push_back((start, i));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::av_scan::list::FileList;

    #[test]
    fn journal_marks_ranges_and_ignores_cut_or_foreign_lines() {
        let list = FileList::from_bytes(b"/a\n/b\n/c\n/d\n/e\n").unwrap();
        let mut j = Journal::header(&list).into_bytes();
        j.extend_from_slice(b"F\tFOUND\t/b\tEicar\nB\t0\t2\tthreat\n");
        j.extend_from_slice(b"B\t3\t9\tclean\n"); // beyond the list
        j.extend_from_slice(b"F\tNOT_SCANNED\t/e\tbig\nB\t4\t5\tcl"); // cut
        let read = Journal::read(&j, &list, Path::new("journal"));
        assert_eq!(read.done.to_vec(), vec![true, true, false, false, false]);
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
        let other = FileList::from_bytes(b"/x\n").unwrap();
        let read = Journal::read(&j, &other, Path::new("journal"));
        assert_eq!(read.done.to_vec(), vec![false]);
        assert_eq!(read.rewrite.unwrap(), Journal::header(&other).into_bytes());
    }
}
