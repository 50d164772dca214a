//! The one walk of the scan root that finds RPM `repodata/` and apt-rpm
//! `base/` directories (docs/metadata.md, "RPM" and "APT-RPM"), plus the file
//! helpers (hashing, type checks) the discoveries share.
//!
//! Semantics (those of the reference implementation): depth-first, children
//! in byte order of their names, symlinks followed, each directory (device,
//! inode) visited once, first visit wins. The RPM walk starts at the root with
//! one visited set and skips `.git`, `__pycache__`, `.repo_catalogs`; it does
//! not descend into `repodata`. The apt-rpm walk runs once per prefix with its
//! own visited set, also skips `.dist-mirror`, and does not descend into
//! `base`. Unreadable directories are skipped silently.
//!
//! How it is made fast: the walks run together (a directory is read once for
//! every walk that wants it; each walk keeps its own visited set), and the
//! top-level entries of the root are walked in parallel (rayon), each with a
//! local RPM visited set. Merging in sorted order then reproduces the
//! sequential result exactly: a subtree whose visited directories do not meet
//! those of the subtrees before it behaves as in a sequential walk; a subtree
//! that does meet them (a symlink into an earlier subtree) is walked again,
//! for RPM only, with the global set. Directories are opened relative to their
//! parent (`openat`) and read with `getdents64` into one reused buffer; file
//! entries cost no system call, and on file systems that fill the buffer to
//! the end of the directory (ext4, XFS, Btrfs, ZFS, tmpfs) a short batch ends
//! the listing without the final empty call. Memory holds one directory listing per depth
//! level and the visited (device, inode) sets, never a list of files.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use rustix::fs::{FileType, Mode, OFlags, RawDir};
use sha2::{Digest, Sha256};

/// Directory names neither walk enters.
const IGNORED: [&[u8]; 3] = [b".git", b"__pycache__", b".repo_catalogs"];

type DirKey = (u64, u64);

/// A `repodata/` directory holding a `repomd.xml` file.
#[derive(Debug, Clone)]
pub(crate) struct RpmFind {
    /// The parent of `repodata/`, relative to the root, as raw bytes (`.` for the root).
    pub rel: Vec<u8>,
}

/// A pkglist candidate file in an apt-rpm `base/` directory.
#[derive(Debug, Clone)]
pub(crate) struct PkglistFind {
    /// The prefix whose walk found it (raw bytes).
    pub prefix: Vec<u8>,
    /// The parent of `base/`, relative to the root, as raw bytes.
    pub rel: Vec<u8>,
    /// The file name (raw bytes).
    pub file: Vec<u8>,
    /// The component (text between `pkglist.` and the compression suffix).
    pub component: String,
    /// Compression suffix: `xz`, `gz`, `bz2` or `none`.
    pub compression: &'static str,
}

/// What the walk found, in walk order.
#[derive(Debug, Default)]
pub(crate) struct WalkOutput {
    pub rpm: Vec<RpmFind>,
    pub pkglists: Vec<PkglistFind>,
}

struct Walker {
    rpm_visited: HashSet<DirKey>,
    ar_visited: HashSet<DirKey>,
    out: WalkOutput,
    prefix: Vec<u8>,
    buf: Vec<MaybeUninit<u8>>,
    /// Per device: may a directory listing end at a short batch?
    fs_short_batch: HashMap<u64, bool>,
}

fn open_dir_at<Fd: AsFd>(dir: Fd, name: &[u8]) -> Option<OwnedFd> {
    rustix::fs::openat(
        dir,
        OsStr::from_bytes(name),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
    )
    .ok()
}

fn dir_key<Fd: AsFd>(fd: Fd) -> Option<DirKey> {
    let st = rustix::fs::fstat(fd).ok()?;
    Some((st.st_dev, st.st_ino))
}

fn is_file_at<Fd: AsFd>(dir: Fd, name: &[u8]) -> bool {
    rustix::fs::statat(dir, OsStr::from_bytes(name), rustix::fs::AtFlags::empty())
        .map(|st| FileType::from_raw_mode(st.st_mode) == FileType::RegularFile)
        .unwrap_or(false)
}

/// The space a `linux_dirent64` record with a name of `len` bytes takes in a
/// `getdents64` buffer (`ALIGN(offsetof(d_name) + len + 1, 8)`).
fn dirent_reclen(len: usize) -> usize {
    (19 + len + 1 + 7) & !7
}

/// The largest `linux_dirent64` record (a 255-byte name).
const MAX_RECLEN: usize = 280;

/// File systems whose `getdents64` fills the buffer until the end of the
/// directory, so that a batch leaving room for another record is the last one
/// (ext4, XFS, Btrfs, ZFS, tmpfs). Elsewhere (NFS, FUSE, ...) the end is only
/// known from an empty batch.
const SHORT_BATCH_IS_END: [i128; 5] = [0xEF53, 0x5846_5342, 0x9123_683E, 0x2FC1_2FC1, 0x0102_1994];

/// Whether a directory's file system is one of [`SHORT_BATCH_IS_END`].
fn short_batch_is_end<Fd: AsFd>(fd: Fd) -> bool {
    rustix::fs::fstatfs(fd)
        .map(|st| SHORT_BATCH_IS_END.contains(&i128::from(st.f_type)))
        .unwrap_or(false)
}

/// Reads the entries of a directory (without `.` and `..`), sorted by name
/// bytes. Without `with_files`, entries known to be neither directories nor
/// symlinks are left out (most of a mirror: no copy, no sort for them). With
/// `short_batch_ends`, a `getdents64` batch that left room for another record
/// ends the listing (saves the final empty call; see [`SHORT_BATCH_IS_END`]).
fn read_entries(
    fd: &OwnedFd,
    buf: &mut [MaybeUninit<u8>],
    with_files: bool,
    short_batch_ends: bool,
) -> Vec<(Vec<u8>, FileType)> {
    // RawDir may skip up to 7 bytes to align the buffer.
    let capacity = buf.len().saturating_sub(8);
    let mut entries = Vec::new();
    let mut dir = RawDir::new(fd, buf);
    let mut batch_bytes = 0;
    while let Some(entry) = dir.next() {
        let Ok(entry) = entry else { break };
        let name = entry.file_name().to_bytes();
        batch_bytes += dirent_reclen(name.len());
        let file_type = entry.file_type();
        let wanted = name != b"."
            && name != b".."
            && (with_files
                || matches!(
                    file_type,
                    FileType::Directory | FileType::Symlink | FileType::Unknown
                ));
        if wanted {
            entries.push((name.to_vec(), file_type));
        }
        if dir.is_buffer_empty() {
            if short_batch_ends && batch_bytes + MAX_RECLEN <= capacity {
                break;
            }
            batch_bytes = 0;
        }
    }
    entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    entries
}

/// Parses `pkglist.<component>[.xz|.gz|.bz2]` (`^pkglist\.([^.]+)(\.(xz|gz|bz2))?$`).
pub(crate) fn parse_pkglist_name(name: &str) -> Option<(String, &'static str)> {
    let rest = name.strip_prefix("pkglist.")?;
    let (component, compression) = match rest.split_once('.') {
        None => (rest, "none"),
        Some((component, "xz")) => (component, "xz"),
        Some((component, "gz")) => (component, "gz"),
        Some((component, "bz2")) => (component, "bz2"),
        Some(_) => return None,
    };
    if component.is_empty() {
        return None;
    }
    Some((component.to_owned(), compression))
}

impl Walker {
    fn new(prefix: Vec<u8>) -> Self {
        Walker {
            rpm_visited: HashSet::new(),
            ar_visited: HashSet::new(),
            out: WalkOutput::default(),
            prefix,
            buf: vec![MaybeUninit::uninit(); 64 * 1024],
            fs_short_batch: HashMap::new(),
        }
    }

    /// Visits the children of the directory `fd` (at `rel`), for the walks
    /// that are active there.
    fn visit(&mut self, fd: &OwnedFd, dev: u64, rel: &mut Vec<u8>, rpm: bool, ar: bool) {
        let short_batch_ends = self.short_batch_ends(fd, dev);
        let entries = read_entries(fd, &mut self.buf, false, short_batch_ends);
        for (name, file_type) in entries {
            if !matches!(
                file_type,
                FileType::Directory | FileType::Symlink | FileType::Unknown
            ) {
                continue;
            }
            if IGNORED.contains(&name.as_slice()) {
                continue;
            }
            let child_ar = ar && name != b".dist-mirror";
            if !rpm && !child_ar {
                continue;
            }
            let Some(child) = open_dir_at(fd, &name) else {
                continue;
            };
            let Some(key) = dir_key(&child) else { continue };
            let take_rpm = rpm && self.rpm_visited.insert(key);
            let take_ar = child_ar && self.ar_visited.insert(key);
            if !take_rpm && !take_ar {
                continue;
            }
            let parent_len = rel.len();
            let mut descend_rpm = take_rpm;
            let mut descend_ar = take_ar;
            if take_rpm && name == b"repodata" {
                descend_rpm = false;
                if is_file_at(&child, b"repomd.xml") {
                    let base = if rel.is_empty() {
                        b".".to_vec()
                    } else {
                        rel.clone()
                    };
                    self.out.rpm.push(RpmFind { rel: base });
                }
            }
            if take_ar && name == b"base" {
                descend_ar = false;
                self.scan_base(&child, key.0, rel);
            }
            if descend_rpm || descend_ar {
                if !rel.is_empty() {
                    rel.push(b'/');
                }
                rel.extend_from_slice(&name);
                self.visit(&child, key.0, rel, descend_rpm, descend_ar);
                rel.truncate(parent_len);
            }
        }
    }

    /// Whether listings on device `dev` may end at a short batch (cached per device).
    fn short_batch_ends(&mut self, fd: &OwnedFd, dev: u64) -> bool {
        *self
            .fs_short_batch
            .entry(dev)
            .or_insert_with(|| short_batch_is_end(fd))
    }

    fn scan_base(&mut self, fd: &OwnedFd, dev: u64, parent_rel: &[u8]) {
        let short_batch_ends = self.short_batch_ends(fd, dev);
        for (name, file_type) in read_entries(fd, &mut self.buf, true, short_batch_ends) {
            let text = super::ids::lossy_name(&name);
            let Some((component, compression)) = parse_pkglist_name(&text) else {
                continue;
            };
            let is_file = match file_type {
                FileType::RegularFile => true,
                FileType::Symlink | FileType::Unknown => is_file_at(fd, &name),
                _ => false,
            };
            if is_file {
                self.out.pkglists.push(PkglistFind {
                    prefix: self.prefix.clone(),
                    rel: parent_rel.to_vec(),
                    file: name,
                    component,
                    compression,
                });
            }
        }
    }
}

/// One top-level entry of the root that is a directory.
struct TopEntry {
    name: Vec<u8>,
    rpm: bool,
    ar: bool,
}

/// Walks `root` once for the RPM walk (when `rpm`) and the apt-rpm walks
/// (when `apt_rpm`), in parallel over the root's top-level directories.
///
/// # Errors
/// The root itself cannot be opened as a directory.
pub(crate) fn walk(root: &Path, rpm: bool, apt_rpm: bool) -> io::Result<WalkOutput> {
    let root_fd = rustix::fs::open(
        root,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let root_key =
        dir_key(&root_fd).ok_or_else(|| io::Error::other("cannot stat the scan root"))?;
    let mut buf = vec![MaybeUninit::uninit(); 64 * 1024];
    let tops: Vec<TopEntry> = read_entries(&root_fd, &mut buf, false, false)
        .into_iter()
        .filter(|(_, t)| {
            matches!(
                t,
                FileType::Directory | FileType::Symlink | FileType::Unknown
            )
        })
        .map(|(name, _)| TopEntry {
            rpm: rpm && !IGNORED.contains(&name.as_slice()),
            ar: apt_rpm && !name.starts_with(b"."),
            name,
        })
        .filter(|t| t.rpm || t.ar)
        .collect();

    // Speculative parallel pass: each subtree with a local RPM visited set.
    let results: Vec<Walker> = tops
        .par_iter()
        .map(|top| walk_top(&root_fd, root_key, top, top.rpm, top.ar, None))
        .collect();

    let mut out = WalkOutput::default();
    let mut global: HashSet<DirKey> = HashSet::from([root_key]);
    for (top, result) in tops.iter().zip(results) {
        let walker = result;
        out.pkglists.extend(walker.out.pkglists);
        if !top.rpm {
            continue;
        }
        let clean = walker
            .rpm_visited
            .iter()
            .all(|key| *key == root_key || !global.contains(key));
        if clean {
            global.extend(walker.rpm_visited);
            out.rpm.extend(walker.out.rpm);
        } else {
            let visited = std::mem::take(&mut global);
            let rewalk = walk_top(&root_fd, root_key, top, true, false, Some(visited));
            global = rewalk.rpm_visited;
            out.rpm.extend(rewalk.out.rpm);
        }
    }
    Ok(out)
}

/// Walks one top-level entry. `rpm_visited`: the global RPM set to continue
/// with (re-walk), else a fresh local set holding the root.
fn walk_top(
    root_fd: &OwnedFd,
    root_key: DirKey,
    top: &TopEntry,
    rpm: bool,
    ar: bool,
    rpm_visited: Option<HashSet<DirKey>>,
) -> Walker {
    let mut walker = Walker::new(top.name.clone());
    walker.rpm_visited = rpm_visited.unwrap_or_else(|| HashSet::from([root_key]));
    let Some(fd) = open_dir_at(root_fd, &top.name) else {
        return walker;
    };
    let Some(key) = dir_key(&fd) else {
        return walker;
    };
    let take_rpm = rpm && walker.rpm_visited.insert(key);
    let take_ar = ar && walker.ar_visited.insert(key);
    let mut descend_rpm = take_rpm;
    if take_rpm && top.name == b"repodata" {
        descend_rpm = false;
        if is_file_at(&fd, b"repomd.xml") {
            walker.out.rpm.push(RpmFind { rel: b".".to_vec() });
        }
    }
    if descend_rpm || take_ar {
        let mut rel = top.name.clone();
        walker.visit(&fd, key.0, &mut rel, descend_rpm, take_ar);
    }
    walker
}

/// `root/rel` for a relative path given as raw bytes.
pub(crate) fn join(root: &Path, rel: &[u8]) -> PathBuf {
    root.join(OsStr::from_bytes(rel))
}

/// True when `path` is a regular file (symlinks followed).
pub(crate) fn is_file(path: &Path) -> bool {
    std::fs::metadata(path)
        .map(|m| m.is_file())
        .unwrap_or(false)
}

/// True when `path` is a directory (symlinks followed).
pub(crate) fn is_dir(path: &Path) -> bool {
    std::fs::metadata(path).map(|m| m.is_dir()).unwrap_or(false)
}

/// The SHA-256 (lower-case hex) and size in bytes of a file, read in 1 MiB
/// blocks into a per-thread buffer (memory does not grow with the file or the
/// number of files).
///
/// # Errors
/// The file cannot be opened or read.
pub(crate) fn hash_file(path: &Path) -> io::Result<(String, u64)> {
    thread_local! {
        static BUFFER: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; 1 << 20]);
    }
    let mut file = File::open(path)?;
    BUFFER.with(|buffer| {
        let mut buf = buffer.borrow_mut();
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        loop {
            let n = match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            hasher.update(&buf[..n]);
            size += n as u64;
        }
        Ok((hex(&hasher.finalize()), size))
    })
}

/// The SHA-256 (lower-case hex) of bytes in memory.
pub(crate) fn hash_bytes(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

/// A path as catalog text (one U+FFFD per byte that is not UTF-8).
pub(crate) fn path_text(path: &Path) -> String {
    super::ids::lossy_name(path.as_os_str().as_encoded_bytes())
}

/// Renders an I/O error as Python's `OSError` does: `[Errno N] text: 'path'`.
pub(crate) fn os_error_text(err: &io::Error, path: &Path) -> String {
    match err.raw_os_error() {
        Some(code) => {
            let text = io::Error::from_raw_os_error(code).to_string();
            let text = text.split(" (os error").next().unwrap_or(&text).to_owned();
            format!("[Errno {code}] {text}: '{}'", path_text(path))
        }
        None => format!("{err}: '{}'", path_text(path)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkglist_names() {
        assert_eq!(
            parse_pkglist_name("pkglist.classic"),
            Some(("classic".into(), "none"))
        );
        assert_eq!(
            parse_pkglist_name("pkglist.classic.xz"),
            Some(("classic".into(), "xz"))
        );
        assert_eq!(parse_pkglist_name("pkglist.classic.zst"), None);
        assert_eq!(parse_pkglist_name("pkglist..xz"), None);
        assert_eq!(parse_pkglist_name("pkglist.a.b.xz"), None);
        assert_eq!(parse_pkglist_name("release.classic"), None);
    }
}
