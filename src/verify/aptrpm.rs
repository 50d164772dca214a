//! ALT apt-rpm checks: a pkglist is a sequence of RPM header structures
//! (magic `8e ad e8 01`, 4 reserved bytes, index count and data size as
//! big-endian u32, then 16-byte index entries and the data store; RPM file
//! format, "Header structure"). Each header names a package with
//! `CRPMTAG_FILENAME` (1000000), `CRPMTAG_FILESIZE` (1000001) and
//! `CRPMTAG_MD5` (1000005), as ALT's genpkglist writes them; without
//! `CRPMTAG_FILENAME` the name is `NAME-VERSION-RELEASE.ARCH.rpm` from the
//! header's own tags. The file must exist in `<base>/RPMS.<component>/`.
//! Headers are read one at a time (each bounded in size).

use std::io::{self, Read};

use super::Context;
use super::files::{Algo, BATCH, Expected, open_index};
use super::model::{Problem, ProblemKind, RepoReport};
use crate::catalog::AptRpmRepository;
use crate::catalog::confine::OpenError;

const MAGIC: [u8; 4] = [0x8e, 0xad, 0xe8, 0x01];
/// The largest index count and data store of one header (rpm's own limits).
const MAX_INDEX: u32 = 0xffff;
const MAX_DATA: u32 = 256 << 20;

const TAG_NAME: u32 = 1000;
const TAG_VERSION: u32 = 1001;
const TAG_RELEASE: u32 = 1002;
const TAG_ARCH: u32 = 1022;
const CRPMTAG_FILENAME: u32 = 1_000_000;
const CRPMTAG_FILESIZE: u32 = 1_000_001;
const CRPMTAG_MD5: u32 = 1_000_005;

/// The package a pkglist header describes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PkglistEntry {
    /// The file name (no directory).
    pub filename: String,
    /// `CRPMTAG_FILESIZE`, when present.
    pub size: Option<u64>,
    /// `CRPMTAG_MD5` (hex), when present.
    pub md5: Option<String>,
}

/// Reads the next header; `Ok(None)` at a clean end of the stream.
///
/// # Errors
/// A read error, a bad magic, a header over the limits, or one naming no file.
pub fn next_entry(reader: &mut dyn Read) -> io::Result<Option<PkglistEntry>> {
    let mut intro = [0u8; 16];
    let mut got = 0;
    while got < intro.len() {
        match reader.read(&mut intro[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "truncated header",
                ));
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_owned());
    if intro[..4] != MAGIC {
        return Err(bad("bad header magic"));
    }
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let (il, dl) = (be(&intro[8..12]), be(&intro[12..16]));
    if il > MAX_INDEX || dl > MAX_DATA {
        return Err(bad("header larger than rpm allows"));
    }
    // Grown as bytes arrive: a header that only claims a large size costs nothing.
    let want = u64::from(il) * 16 + u64::from(dl);
    let mut body = Vec::new();
    reader.take(want).read_to_end(&mut body)?;
    if body.len() as u64 != want {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "truncated header",
        ));
    }
    let (index, data) = body.split_at(il as usize * 16);
    let string_at = |offset: u32| -> Option<String> {
        let rest = data.get(offset as usize..)?;
        let end = rest.iter().position(|b| *b == 0)?;
        Some(String::from_utf8_lossy(&rest[..end]).into_owned())
    };
    let mut tags: std::collections::HashMap<u32, (u32, u32)> = Default::default();
    for e in index.chunks_exact(16) {
        tags.insert(be(&e[0..4]), (be(&e[4..8]), be(&e[8..12])));
    }
    let string = |tag: u32| tags.get(&tag).and_then(|(_, off)| string_at(*off));
    let size = tags.get(&CRPMTAG_FILESIZE).and_then(|(ty, off)| {
        let b = data.get(*off as usize..*off as usize + 4)?;
        (*ty == 4).then(|| u64::from(be(b)))
    });
    let filename = match string(CRPMTAG_FILENAME) {
        Some(f) => f,
        None => {
            let (n, v, r, a) = (
                string(TAG_NAME),
                string(TAG_VERSION),
                string(TAG_RELEASE),
                string(TAG_ARCH),
            );
            match (n, v, r, a) {
                (Some(n), Some(v), Some(r), Some(a)) => format!("{n}-{v}-{r}.{a}.rpm"),
                _ => return Err(bad("header names no package file")),
            }
        }
    };
    Ok(Some(PkglistEntry {
        filename,
        size,
        md5: string(CRPMTAG_MD5),
    }))
}

/// Verifies one apt-rpm component.
pub(super) fn verify(ctx: &Context, repo: &AptRpmRepository) -> RepoReport {
    let mut report = RepoReport::new(&repo.id, "apt-rpm", &repo.prefix);
    report.files_checked += 1;
    let mut reader = match open_index(&ctx.root, &ctx.confine, &repo.metadata_path) {
        Ok(r) => r,
        Err(e) => {
            let (kind, why) = match e {
                OpenError::Outside => (ProblemKind::OutsideTree, None),
                OpenError::Io(e) => (ProblemKind::Unreadable, Some(e.to_string())),
            };
            report.add(Problem::new(repo.metadata_path.clone(), kind, None, why));
            return report;
        }
    };
    let rpms = format!("RPMS.{}", repo.component);
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        match next_entry(&mut reader) {
            Ok(Some(entry)) => {
                report.packages += 1;
                if entry.filename.contains('/') {
                    report.add(Problem::new(
                        entry.filename,
                        ProblemKind::OutsideTree,
                        Some(format!("a file name in {}/{rpms}", repo.base_path)),
                        None,
                    ));
                    continue;
                }
                batch.push(Expected {
                    href: format!("{rpms}/{}", entry.filename),
                    size: entry.size,
                    checksum: entry.md5.map(|m| (Algo::Md5, m)),
                });
                if batch.len() >= BATCH {
                    ctx.check(&repo.base_path, &mut batch, &mut report);
                }
            }
            Ok(None) => break,
            Err(e) => {
                report.add(Problem::unreadable(repo.metadata_path.clone(), e));
                break;
            }
        }
    }
    ctx.check(&repo.base_path, &mut batch, &mut report);
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(entries: &[(u32, u32, &[u8])]) -> Vec<u8> {
        let (mut index, mut data) = (Vec::new(), Vec::new());
        for (tag, ty, bytes) in entries {
            for v in [*tag, *ty, data.len() as u32, 1] {
                index.extend_from_slice(&v.to_be_bytes());
            }
            data.extend_from_slice(bytes);
        }
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend(index);
        out.extend(data);
        out
    }

    #[test]
    fn pkglist_headers_name_their_files() {
        let mut bytes = header(&[
            (CRPMTAG_FILESIZE, 4, &7u32.to_be_bytes()),
            (CRPMTAG_FILENAME, 6, b"a-1-1.noarch.rpm\0"),
            (CRPMTAG_MD5, 6, b"00ff\0"),
        ]);
        bytes.extend(header(&[
            (TAG_NAME, 6, b"b\0"),
            (TAG_VERSION, 6, b"2\0"),
            (TAG_RELEASE, 6, b"alt1\0"),
            (TAG_ARCH, 6, b"x86_64\0"),
        ]));
        let mut reader = bytes.as_slice();
        let first = next_entry(&mut reader).ok().flatten();
        assert_eq!(
            first,
            Some(PkglistEntry {
                filename: "a-1-1.noarch.rpm".into(),
                size: Some(7),
                md5: Some("00ff".into())
            })
        );
        let second = next_entry(&mut reader).ok().flatten();
        assert_eq!(
            second.map(|e| e.filename),
            Some("b-2-alt1.x86_64.rpm".into())
        );
        assert!(matches!(next_entry(&mut reader), Ok(None)));
    }

    #[test]
    fn hostile_headers_are_errors_not_allocations() {
        // A huge declared data size is refused before anything is allocated.
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&[0; 4]);
        bytes.extend_from_slice(&1u32.to_be_bytes());
        bytes.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(next_entry(&mut bytes.as_slice()).is_err());
        assert!(next_entry(&mut &b"not a header at all"[..]).is_err());
        // Truncated after the intro.
        let whole = header(&[(CRPMTAG_FILENAME, 6, b"x.rpm\0")]);
        assert!(next_entry(&mut &whole[..whole.len() - 2]).is_err());
        // An offset past the data store names no file.
        let bad = header(&[(CRPMTAG_FILENAME, 6, b"")]);
        assert!(next_entry(&mut bad.as_slice()).is_err());
    }
}
