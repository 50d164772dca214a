//! The full walk of a first scan (no snapshot yet): every regular file under
//! the mirror directory, written to the list as it is found (module docs of
//! [`super`], "What is scanned").
//!
//! Rules (those of the scan, not of the catalog): symlinks are neither
//! followed nor listed, only regular files are listed, the root's own `.zfs`
//! directory is skipped, and the list is in byte order of the whole paths,
//! as a sort of every path would give. That order comes without a sort of
//! the list: each directory's entries are sorted with a directory's name
//! compared as if it ended in `/`, so a depth-first walk emits the paths in
//! sorted order.
//!
//! How it is made fast: directories are read with `getdents64` through the
//! catalog's reader ([`crate::catalog::walk::for_each_entry`], with its
//! short-batch end on ext4/XFS/Btrfs/ZFS/tmpfs), opened relative to their
//! parent (`openat`, `O_NOFOLLOW`), and a file entry costs no system call
//! (its `d_type`; only a `DT_UNKNOWN` entry costs one `fstatat`). The
//! root's entries are walked in parallel (rayon, all cores), each into its
//! own anonymous temp file, which are appended to the list in order, a
//! bounded number at a time. Memory holds the stack of open directories
//! with the sorted names of each (one listing per depth level), never a
//! list of files or a set of paths; it grows with the largest directory,
//! not with the tree.

use std::cmp::Ordering;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufWriter, Seek, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use super::list::escape_path;
use crate::catalog::walk::{for_each_entry, short_batch_is_end};

/// How many of the root's entries are walked at once (each holds one temp
/// file open until its turn to be appended).
const UNITS_AT_ONCE: usize = 256;
/// The `getdents64` buffer of each walking thread.
const DIRENT_BUF: usize = 64 * 1024;
/// The write buffer of each temp file.
const WRITE_BUF: usize = 256 * 1024;

/// A directory that could not be opened or read.
#[derive(Debug)]
pub(super) struct WalkError {
    /// The directory.
    pub path: PathBuf,
    /// Why.
    pub source: io::Error,
}

/// The entries of one directory worth keeping: names in one arena.
#[derive(Default)]
struct Listing {
    names: Vec<u8>,
    /// (start in `names`, length, is a directory).
    entries: Vec<(usize, usize, bool)>,
}

impl Listing {
    fn name(&self, e: (usize, usize, bool)) -> &[u8] {
        &self.names[e.0..e.0 + e.1]
    }

    /// Sorts the entries by name, a directory's name as if it ended in `/`.
    fn sort(&mut self) {
        let names = &self.names;
        self.entries.sort_unstable_by(|a, b| {
            let (x, y) = (&names[a.0..a.0 + a.1], &names[b.0..b.0 + b.1]);
            let n = x.len().min(y.len());
            match x[..n].cmp(&y[..n]) {
                Ordering::Equal => {}
                o => return o,
            }
            let next = |name: &[u8], dir: bool| name.get(n).copied().or(dir.then_some(b'/'));
            next(x, a.2).cmp(&next(y, b.2))
        });
    }
}

fn open_dir_at<Fd: AsFd>(dir: Fd, name: &[u8]) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        dir,
        OsStr::from_bytes(name),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NOFOLLOW,
        Mode::empty(),
    )?)
}

/// Lists the directory `fd`: its regular files and directories (symlinks
/// and other types left out; a `DT_UNKNOWN` entry is looked up without
/// following it), sorted (see [`Listing::sort`]).
fn list(fd: &OwnedFd, buf: &mut [MaybeUninit<u8>]) -> io::Result<Listing> {
    let short = short_batch_is_end(fd);
    let mut listing = Listing::default();
    let error = for_each_entry(fd, buf, short, |name, file_type| {
        let file_type = match file_type {
            FileType::Unknown => {
                match rustix::fs::statat(fd, OsStr::from_bytes(name), AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) => FileType::from_raw_mode(st.st_mode),
                    Err(_) => return,
                }
            }
            t => t,
        };
        let dir = match file_type {
            FileType::Directory => true,
            FileType::RegularFile => false,
            _ => return,
        };
        listing.entries.push((listing.names.len(), name.len(), dir));
        listing.names.extend_from_slice(name);
    });
    if let Some(e) = error {
        return Err(e);
    }
    listing.sort();
    Ok(listing)
}

/// One walking thread's output and buffers.
struct Sink {
    out: BufWriter<File>,
    buf: Vec<MaybeUninit<u8>>,
    files: u64,
}

impl Sink {
    fn new(file: File) -> Sink {
        Sink {
            out: BufWriter::with_capacity(WRITE_BUF, file),
            buf: vec![MaybeUninit::uninit(); DIRENT_BUF],
            files: 0,
        }
    }

    /// Writes one list line: the escaped directory prefix and the escaped name.
    fn file(&mut self, escaped_dir: &[u8], name: &[u8], line: &mut Vec<u8>) -> io::Result<()> {
        line.clear();
        line.extend_from_slice(escaped_dir);
        escape_path(name, line);
        line.push(b'\n');
        self.files += 1;
        self.out.write_all(line)
    }

    /// Walks the directory `fd` whose raw path is `raw` and escaped path
    /// (with a trailing `/`) is `escaped`.
    fn dir(
        &mut self,
        fd: &OwnedFd,
        raw: &mut Vec<u8>,
        escaped: &mut Vec<u8>,
    ) -> Result<(), WalkError> {
        let error = |raw: &[u8], source| WalkError {
            path: PathBuf::from(OsStr::from_bytes(raw)),
            source,
        };
        let listing = list(fd, &mut self.buf).map_err(|e| error(raw, e))?;
        let mut line = Vec::new();
        for &entry in &listing.entries {
            let name = listing.name(entry);
            if !entry.2 {
                self.file(escaped, name, &mut line)
                    .map_err(|e| error(raw, e))?;
                continue;
            }
            let (raw_len, esc_len) = (raw.len(), escaped.len());
            raw.push(b'/');
            raw.extend_from_slice(name);
            let child = open_dir_at(fd, name).map_err(|e| error(raw, e))?;
            escape_path(name, escaped);
            escaped.push(b'/');
            self.dir(&child, raw, escaped)?;
            raw.truncate(raw_len);
            escaped.truncate(esc_len);
        }
        Ok(())
    }

    /// The written temp file, rewound.
    fn finish(self) -> io::Result<(File, u64)> {
        let mut file = self.out.into_inner().map_err(|e| e.into_error())?;
        file.rewind()?;
        Ok((file, self.files))
    }
}

/// One unit of parallel work: a run of the root's files, or one of its
/// directories.
enum Unit {
    Files(std::ops::Range<usize>),
    Dir(usize),
}

/// Writes the list line of every regular file under `root` to `out`, in
/// byte order of the paths (see the module docs); the temp files of the
/// parallel walk are made by `scratch` (anonymous files, gone when closed).
/// Returns the number of files.
///
/// # Errors
/// [`WalkError`] naming the directory that could not be opened or read, or
/// the list or temp file that could not be written.
pub(super) fn walk(
    root: &Path,
    out: &mut File,
    scratch: &(dyn Fn() -> io::Result<File> + Sync),
) -> Result<u64, WalkError> {
    let root_err = |source| WalkError {
        path: root.to_path_buf(),
        source,
    };
    // The prefix of every path: `root` joined with a name, as `Path::join` does.
    let mut raw = root.join("x").into_os_string().into_vec();
    raw.pop();
    let mut escaped = Vec::new();
    escape_path(&raw, &mut escaped);
    raw.pop_if(|b| *b == b'/');
    let root_fd = rustix::fs::open(
        root,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
    )
    .map_err(|e| root_err(e.into()))?;
    let mut buf = vec![MaybeUninit::uninit(); DIRENT_BUF];
    let listing = list(&root_fd, &mut buf).map_err(root_err)?;
    let mut units = Vec::new();
    for (i, &entry) in listing.entries.iter().enumerate() {
        if entry.2 {
            if listing.name(entry) != b".zfs" {
                units.push(Unit::Dir(i));
            }
        } else if let Some(Unit::Files(r)) = units.last_mut() {
            r.end = i + 1;
        } else {
            units.push(Unit::Files(i..i + 1));
        }
    }
    let mut total = 0;
    for chunk in units.chunks(UNITS_AT_ONCE) {
        let parts: Vec<(File, u64)> = chunk
            .par_iter()
            .map(|unit| {
                let file = scratch().map_err(root_err)?;
                let mut sink = Sink::new(file);
                match unit {
                    Unit::Files(range) => {
                        let mut line = Vec::new();
                        for &entry in &listing.entries[range.clone()] {
                            sink.file(&escaped, listing.name(entry), &mut line)
                                .map_err(root_err)?;
                        }
                    }
                    Unit::Dir(i) => {
                        let name = listing.name(listing.entries[*i]);
                        let mut raw = raw.clone();
                        raw.push(b'/');
                        raw.extend_from_slice(name);
                        let fd = open_dir_at(&root_fd, name).map_err(|e| WalkError {
                            path: PathBuf::from(OsStr::from_bytes(&raw)),
                            source: e,
                        })?;
                        let mut escaped = escaped.clone();
                        escape_path(name, &mut escaped);
                        escaped.push(b'/');
                        sink.dir(&fd, &mut raw, &mut escaped)?;
                    }
                }
                sink.finish().map_err(root_err)
            })
            .collect::<Result<_, _>>()?;
        for (mut part, files) in parts {
            io::copy(&mut part, out).map_err(root_err)?;
            total += files;
        }
    }
    Ok(total)
}
