//! File checks shared by the formats: opening indexes (decompressed as a
//! stream), checking that a package file exists with its size, hashing it.
//!
//! Every path comes from metadata and is first joined lexically to the
//! repository's base ([`crate::catalog::confine::lexically_inside`]); the file
//! is then opened only through [`Confine`], so neither a `..` nor a symlink
//! leads out of the scan root.

use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use digest::Digest;

use super::model::{Problem, ProblemKind, RepoReport};
use crate::catalog::confine::{Confine, OpenError, lexically_inside};
use crate::catalog::walk::read_blocks;

/// The longest line (or text) an index may have; longer ones make the index
/// [`ProblemKind::Unreadable`].
pub const MAX_LINE: u64 = 1 << 20;

/// A checksum algorithm named by metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algo {
    /// SHA-256.
    Sha256,
    /// SHA-512.
    Sha512,
    /// SHA-1.
    Sha1,
    /// MD5.
    Md5,
}

impl Algo {
    /// The algorithm of a name as metadata writes it (`SHA256`, `sha256`,
    /// `sha`, `MD5Sum`, `md5`), any case.
    pub fn from_name(name: &str) -> Option<Algo> {
        match name.to_ascii_lowercase().as_str() {
            "sha256" => Some(Algo::Sha256),
            "sha512" => Some(Algo::Sha512),
            "sha1" | "sha" => Some(Algo::Sha1),
            "md5" | "md5sum" => Some(Algo::Md5),
            _ => None,
        }
    }

    /// The name as the report writes it (`sha256`).
    pub fn name(self) -> &'static str {
        match self {
            Algo::Sha256 => "sha256",
            Algo::Sha512 => "sha512",
            Algo::Sha1 => "sha1",
            Algo::Md5 => "md5",
        }
    }
}

enum Hasher {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
    Sha1(sha1::Sha1),
    Md5(md5::Md5),
}

impl Hasher {
    fn new(algo: Algo) -> Hasher {
        match algo {
            Algo::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            Algo::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
            Algo::Sha1 => Hasher::Sha1(sha1::Sha1::new()),
            Algo::Md5 => Hasher::Md5(md5::Md5::new()),
        }
    }
    fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha512(h) => h.update(bytes),
            Hasher::Sha1(h) => h.update(bytes),
            Hasher::Md5(h) => h.update(bytes),
        }
    }
    fn hex(self) -> String {
        let bytes: Vec<u8> = match self {
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Sha512(h) => h.finalize().to_vec(),
            Hasher::Sha1(h) => h.finalize().to_vec(),
            Hasher::Md5(h) => h.finalize().to_vec(),
        };
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The lower-case hex digest and size of an open file, read in 1 MiB blocks.
///
/// # Errors
/// A read error.
pub fn hash_reader(file: impl Read, algo: Algo) -> io::Result<(String, u64)> {
    let mut hasher = Hasher::new(algo);
    let size = read_blocks(file, |block| hasher.update(block))?;
    Ok((hasher.hex(), size))
}

/// Opens `rel` (relative to the scan root) as an index, decompressed by its
/// name's suffix (`.gz`, `.xz`, `.bz2`, `.zst`; anything else is read as is),
/// as a buffered stream.
///
/// # Errors
/// [`OpenError::Outside`] when it resolves outside the root; [`OpenError::Io`]
/// when it cannot be opened or the decompressor cannot start.
pub fn open_index(
    root: &Path,
    confine: &Confine,
    rel: &str,
) -> Result<Box<dyn BufRead + Send>, OpenError> {
    let file = confine.open_file(&root.join(rel))?;
    let reader: Box<dyn Read + Send> = if rel.ends_with(".gz") {
        Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(file)))
    } else if rel.ends_with(".xz") {
        Box::new(liblzma::read::XzDecoder::new_multi_decoder(BufReader::new(
            file,
        )))
    } else if rel.ends_with(".bz2") {
        Box::new(bzip2::read::MultiBzDecoder::new(BufReader::new(file)))
    } else if rel.ends_with(".zst") {
        let decoder = ruzstd::decoding::StreamingDecoder::new(BufReader::new(file))
            .map_err(|e| OpenError::Io(io::Error::other(e.to_string())))?;
        Box::new(decoder)
    } else {
        Box::new(file)
    };
    Ok(Box::new(BufReader::with_capacity(1 << 16, reader)))
}

/// Reads one line (without its `\n`) into `line`; `Ok(false)` at the end.
///
/// # Errors
/// A read error, or a line longer than [`MAX_LINE`] (`InvalidData`).
pub fn read_line(reader: &mut dyn BufRead, line: &mut Vec<u8>) -> io::Result<bool> {
    line.clear();
    let n = reader.take(MAX_LINE).read_until(b'\n', line)?;
    if n == 0 {
        return Ok(false);
    }
    if line.last() == Some(&b'\n') {
        line.pop();
    } else if n as u64 >= MAX_LINE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("line longer than {MAX_LINE} bytes"),
        ));
    }
    Ok(true)
}

/// What the metadata says about one package file.
#[derive(Debug, Clone, Default)]
pub struct Expected {
    /// Path relative to the repository base, as written.
    pub href: String,
    /// Size in bytes, when given.
    pub size: Option<u64>,
    /// Checksum algorithm and lower-case hex value, when given.
    pub checksum: Option<(Algo, String)>,
}

/// The outcome of checking one package file: problems, bytes hashed.
#[derive(Debug, Default)]
pub struct Checked {
    /// Problems found (none when fine).
    pub problems: Vec<Problem>,
    /// Bytes read for the checksum.
    pub bytes_hashed: u64,
}

/// Checks one package file listed by an index of the repository at `base`
/// (relative to the scan root): it must stay inside `base`, exist as a
/// regular file, have the expected size, and (with `deep`) the expected
/// checksum.
pub fn check_package(
    root: &Path,
    confine: &Confine,
    base: &str,
    expected: &Expected,
    deep: bool,
) -> Checked {
    let mut out = Checked::default();
    let Some(rel) = lexically_inside(base, &expected.href) else {
        out.problems.push(Problem::new(
            expected.href.clone(),
            ProblemKind::OutsideTree,
            Some(format!("inside {base}")),
            None,
        ));
        return out;
    };
    let path = root.join(&rel);
    // Without a checksum to compute, the file is never opened for reading:
    // its size comes from the `O_PATH` descriptor the confinement check
    // opens anyway.
    let hash = deep && expected.checksum.is_some();
    let opened = if hash {
        confine.open_file(&path).and_then(|file| {
            let size = file.metadata().map_err(OpenError::Io)?.len();
            Ok((Some(file), size))
        })
    } else {
        confine.file_size(&path).map(|size| (None, size))
    };
    let (file, actual_size) = match opened {
        Ok(v) => v,
        Err(OpenError::Outside) => {
            out.problems.push(Problem::new(
                rel,
                ProblemKind::OutsideTree,
                Some("inside the scan root".into()),
                None,
            ));
            return out;
        }
        Err(OpenError::Io(e)) if e.kind() == io::ErrorKind::NotFound => {
            out.problems
                .push(Problem::new(rel, ProblemKind::Missing, None, None));
            return out;
        }
        Err(OpenError::Io(e)) => {
            let kind = if e.to_string() == "not a regular file" {
                ProblemKind::Missing
            } else {
                ProblemKind::Unreadable
            };
            out.problems
                .push(Problem::new(rel, kind, None, Some(e.to_string())));
            return out;
        }
    };
    if let Some(size) = expected.size
        && size != actual_size
    {
        out.problems.push(Problem::new(
            rel,
            ProblemKind::SizeMismatch,
            Some(size.to_string()),
            Some(actual_size.to_string()),
        ));
        return out;
    }
    if let (Some(file), Some((algo, want))) = (file, &expected.checksum) {
        match hash_reader(file, *algo) {
            Ok((got, n)) => {
                out.bytes_hashed = n;
                if !got.eq_ignore_ascii_case(want) {
                    out.problems.push(Problem::new(
                        rel,
                        ProblemKind::ChecksumMismatch,
                        Some(format!("{}:{}", algo.name(), want.to_ascii_lowercase())),
                        Some(format!("{}:{got}", algo.name())),
                    ));
                }
            }
            Err(e) => out.problems.push(Problem::unreadable(rel, e)),
        }
    }
    out
}

/// How many package checks run together (one batch in memory at a time).
pub const BATCH: usize = 512;

/// Checks a batch of package files in parallel and folds the results into
/// `repo` (in the batch's order). `deep_for(path)`: whether this package is
/// hashed (`--deep all`, or a changed file with `--deep changed`).
pub fn check_batch(
    root: &Path,
    confine: &Confine,
    base: &str,
    batch: &mut Vec<Expected>,
    deep_for: &(dyn Fn(&str) -> bool + Sync),
    repo: &mut RepoReport,
) {
    use rayon::prelude::*;
    let results: Vec<Checked> = batch
        .par_iter()
        .map(|e| {
            let deep = lexically_inside(base, &e.href).is_some_and(|rel| deep_for(&rel));
            check_package(root, confine, base, e, deep)
        })
        .collect();
    for checked in results {
        repo.files_checked += 1;
        repo.bytes_hashed += checked.bytes_hashed;
        for p in checked.problems {
            repo.add(p);
        }
    }
    batch.clear();
}
