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
//! `base`. A directory that cannot be opened or listed (other than a
//! missing or non-directory symlink target) is a warning
//! `cannot read directory: <reason>` for each walk that would have entered
//! it. A symlink (or an entry of unknown type) is entered only when the
//! directory it opens is inside the canonical scan root
//! ([`super::confine`]); otherwise it is the warning
//! [`super::confine::OUTSIDE_MESSAGE`]. Real directories cost no such check,
//! and file entries still cost no system call.
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
use std::io::{self, Read};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use rustix::fs::{FileType, Mode, OFlags, RawDir};
use sha2::{Digest, Sha256};

use super::confine::{Confine, OUTSIDE_MESSAGE, OpenError};
use super::model::Warning;

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
    /// Unreadable directories and symlinks out of the root met by the RPM walk.
    pub rpm_warnings: Vec<Warning>,
    /// The same for the apt-rpm walks.
    pub aptrpm_warnings: Vec<Warning>,
}

/// What the walk needs to know about the root.
struct Ctx<'a> {
    /// The root as given (normalised), for the paths in warning texts.
    root: &'a Path,
    confine: &'a Confine,
}

struct Walker<'a> {
    ctx: &'a Ctx<'a>,
    rpm_visited: HashSet<DirKey>,
    ar_visited: HashSet<DirKey>,
    out: WalkOutput,
    prefix: Vec<u8>,
    buf: Vec<MaybeUninit<u8>>,
    /// Per device: may a directory listing end at a short batch?
    fs_short_batch: HashMap<u64, bool>,
}

fn open_dir_at<Fd: AsFd>(dir: Fd, name: &[u8]) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        dir,
        OsStr::from_bytes(name),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
    )?)
}

/// Whether a failure to open a directory entry as a directory is worth a
/// warning: not when the entry is no directory at all (a file, a dangling
/// symlink, a symlink to a file, a symlink loop).
fn is_unreadable(err: &io::Error) -> bool {
    !matches!(
        err.raw_os_error(),
        Some(libc::ENOENT | libc::ENOTDIR | libc::ELOOP)
    )
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
pub(crate) fn short_batch_is_end<Fd: AsFd>(fd: Fd) -> bool {
    rustix::fs::fstatfs(fd)
        .map(|st| SHORT_BATCH_IS_END.contains(&i128::from(st.f_type)))
        .unwrap_or(false)
}

/// Reads the entries of a directory (without `.` and `..`), sorted by name
/// bytes. Without `with_files`, entries known to be neither directories nor
/// symlinks are left out (most of a mirror: no copy, no sort for them). With
/// `short_batch_ends`, a `getdents64` batch that left room for another record
/// ends the listing (saves the final empty call; see [`SHORT_BATCH_IS_END`]).
/// A read error ends the listing: the entries read so far and the error.
fn read_entries(
    fd: &OwnedFd,
    buf: &mut [MaybeUninit<u8>],
    with_files: bool,
    short_batch_ends: bool,
) -> (Vec<(Vec<u8>, FileType)>, Option<io::Error>) {
    let mut entries = Vec::new();
    let error = for_each_entry(fd, buf, short_batch_ends, |name, file_type| {
        let wanted = with_files
            || matches!(
                file_type,
                FileType::Directory | FileType::Symlink | FileType::Unknown
            );
        if wanted {
            entries.push((name.to_vec(), file_type));
        }
    });
    entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    (entries, error)
}

/// Calls `visit(name, type)` for every entry of the directory `fd` (without
/// `.` and `..`), in the order `getdents64` returns them, reading into `buf`
/// (64 KiB is plenty). The type is the `d_type` of the entry
/// ([`FileType::Unknown`] on file systems that do not fill it in). With
/// `short_batch_ends` (the directory's file system is one of
/// [`SHORT_BATCH_IS_END`], see [`short_batch_is_end`]), a batch that left
/// room for another record ends the listing. Returns the read error that
/// ended the listing early, if any (the entries before it were visited).
/// Nothing is kept: memory does not grow with the directory.
pub(crate) fn for_each_entry<Fd: AsFd>(
    fd: Fd,
    buf: &mut [MaybeUninit<u8>],
    short_batch_ends: bool,
    mut visit: impl FnMut(&[u8], FileType),
) -> Option<io::Error> {
    // RawDir may skip up to 7 bytes to align the buffer.
    let capacity = buf.len().saturating_sub(8);
    let mut dir = RawDir::new(fd, buf);
    let mut batch_bytes = 0;
    while let Some(entry) = dir.next() {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => return Some(io::Error::from(e)),
        };
        let name = entry.file_name().to_bytes();
        batch_bytes += dirent_reclen(name.len());
        if name != b"." && name != b".." {
            visit(name, entry.file_type());
        }
        if dir.is_buffer_empty() {
            if short_batch_ends && batch_bytes + MAX_RECLEN <= capacity {
                break;
            }
            batch_bytes = 0;
        }
    }
    None
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

/// How entering one directory entry went.
enum Enter {
    /// Opened, inside the root: the descriptor and its (device, inode).
    Open(OwnedFd, DirKey),
    /// Not a directory (or gone): nothing to say.
    Skip,
    /// Unreadable or outside the root: the warning message.
    Warn(String),
}

impl<'a> Walker<'a> {
    fn new(ctx: &'a Ctx<'a>, prefix: Vec<u8>) -> Self {
        Walker {
            ctx,
            rpm_visited: HashSet::new(),
            ar_visited: HashSet::new(),
            out: WalkOutput::default(),
            prefix,
            buf: vec![MaybeUninit::uninit(); 64 * 1024],
            fs_short_batch: HashMap::new(),
        }
    }

    /// Opens the entry `name` of `dir` (at `rel`, the entry's own relative
    /// path) as a directory. Entries that may be symlinks (`checked`) must
    /// open a directory inside the root.
    fn enter<Fd: AsFd>(&self, dir: Fd, name: &[u8], rel: &[u8], checked: bool) -> Enter {
        let child = match open_dir_at(dir, name) {
            Ok(child) => child,
            Err(e) if is_unreadable(&e) => {
                let path = join(self.ctx.root, rel);
                return Enter::Warn(format!(
                    "cannot read directory: {}",
                    os_error_text(&e, &path)
                ));
            }
            Err(_) => return Enter::Skip,
        };
        if checked
            && !self
                .ctx
                .confine
                .fd_inside(&child, &join(self.ctx.root, rel))
        {
            return Enter::Warn(OUTSIDE_MESSAGE.to_owned());
        }
        match dir_key(&child) {
            Some(key) => Enter::Open(child, key),
            None => Enter::Skip,
        }
    }

    /// Records a warning about the directory `rel` for the active walks.
    fn warn(&mut self, rel: &[u8], message: String, rpm: bool, ar: bool) {
        let path = super::ids::lossy_name(rel);
        let prefix = path.split('/').next().unwrap_or("").to_owned();
        if rpm {
            self.out.rpm_warnings.push(Warning {
                format: "rpm",
                prefix: prefix.clone(),
                path: path.clone(),
                message: message.clone(),
            });
        }
        if ar {
            self.out.aptrpm_warnings.push(Warning {
                format: "apt-rpm",
                prefix: super::ids::lossy_name(&self.prefix),
                path,
                message,
            });
        }
    }

    /// Lists a directory (see [`read_entries`]); a read error is a warning
    /// for the active walks.
    fn list(
        &mut self,
        fd: &OwnedFd,
        dev: u64,
        rel: &[u8],
        with_files: bool,
        walks: (bool, bool),
    ) -> Vec<(Vec<u8>, FileType)> {
        let short_batch_ends = self.short_batch_ends(fd, dev);
        let (entries, error) = read_entries(fd, &mut self.buf, with_files, short_batch_ends);
        if let Some(e) = error {
            let path = join(self.ctx.root, rel);
            let message = format!("cannot read directory: {}", os_error_text(&e, &path));
            self.warn(rel, message, walks.0, walks.1);
        }
        entries
    }

    /// Visits the children of the directory `fd` (at `rel`), for the walks
    /// that are active there.
    fn visit(&mut self, fd: &OwnedFd, dev: u64, rel: &mut Vec<u8>, rpm: bool, ar: bool) {
        let entries = self.list(fd, dev, rel, false, (rpm, ar));
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
            let parent_len = rel.len();
            if !rel.is_empty() {
                rel.push(b'/');
            }
            rel.extend_from_slice(&name);
            let checked = file_type != FileType::Directory;
            let (child, key) = match self.enter(fd, &name, rel, checked) {
                Enter::Open(child, key) => (child, key),
                Enter::Skip => {
                    rel.truncate(parent_len);
                    continue;
                }
                Enter::Warn(message) => {
                    self.warn(rel, message, rpm, child_ar);
                    rel.truncate(parent_len);
                    continue;
                }
            };
            rel.truncate(parent_len);
            let take_rpm = rpm && self.rpm_visited.insert(key);
            let take_ar = child_ar && self.ar_visited.insert(key);
            if !take_rpm && !take_ar {
                continue;
            }
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
                self.scan_base(&child, key.0, rel, &name);
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

    fn scan_base(&mut self, fd: &OwnedFd, dev: u64, parent_rel: &[u8], name: &[u8]) {
        let mut base_rel = parent_rel.to_vec();
        if !base_rel.is_empty() {
            base_rel.push(b'/');
        }
        base_rel.extend_from_slice(name);
        for (name, file_type) in self.list(fd, dev, &base_rel, true, (false, true)) {
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
    /// Not known to be a real directory (a symlink, or unknown type).
    checked: bool,
    rpm: bool,
    ar: bool,
}

/// Walks `root` once for the RPM walk (when `rpm`) and the apt-rpm walks
/// (when `apt_rpm`), in parallel over the root's top-level directories.
/// `root` is the root as given (for warning texts); `confine` its canonical
/// form.
///
/// # Errors
/// The root itself cannot be opened as a directory.
pub(crate) fn walk(
    root: &Path,
    confine: &Confine,
    rpm: bool,
    apt_rpm: bool,
) -> io::Result<WalkOutput> {
    let ctx = Ctx { root, confine };
    let root_fd = rustix::fs::open(
        root,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let root_key =
        dir_key(&root_fd).ok_or_else(|| io::Error::other("cannot stat the scan root"))?;
    let mut buf = vec![MaybeUninit::uninit(); 64 * 1024];
    let (entries, error) = read_entries(&root_fd, &mut buf, false, false);
    if let Some(e) = error {
        return Err(e);
    }
    let tops: Vec<TopEntry> = entries
        .into_iter()
        .filter(|(_, t)| {
            matches!(
                t,
                FileType::Directory | FileType::Symlink | FileType::Unknown
            )
        })
        .map(|(name, t)| TopEntry {
            rpm: rpm && !IGNORED.contains(&name.as_slice()),
            ar: apt_rpm && !name.starts_with(b"."),
            checked: t != FileType::Directory,
            name,
        })
        .filter(|t| t.rpm || t.ar)
        .collect();

    // Speculative parallel pass: each subtree with a local RPM visited set.
    let results: Vec<Walker> = tops
        .par_iter()
        .map(|top| walk_top(&ctx, &root_fd, root_key, top, top.rpm, top.ar, None))
        .collect();

    let mut out = WalkOutput::default();
    let mut global: HashSet<DirKey> = HashSet::from([root_key]);
    for (top, result) in tops.iter().zip(results) {
        let walker = result;
        out.pkglists.extend(walker.out.pkglists);
        out.aptrpm_warnings.extend(walker.out.aptrpm_warnings);
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
            out.rpm_warnings.extend(walker.out.rpm_warnings);
        } else {
            let visited = std::mem::take(&mut global);
            let rewalk = walk_top(&ctx, &root_fd, root_key, top, true, false, Some(visited));
            global = rewalk.rpm_visited;
            out.rpm.extend(rewalk.out.rpm);
            out.rpm_warnings.extend(rewalk.out.rpm_warnings);
        }
    }
    Ok(out)
}

/// Walks one top-level entry. `rpm_visited`: the global RPM set to continue
/// with (re-walk), else a fresh local set holding the root.
fn walk_top<'a>(
    ctx: &'a Ctx<'a>,
    root_fd: &OwnedFd,
    root_key: DirKey,
    top: &TopEntry,
    rpm: bool,
    ar: bool,
    rpm_visited: Option<HashSet<DirKey>>,
) -> Walker<'a> {
    let mut walker = Walker::new(ctx, top.name.clone());
    walker.rpm_visited = rpm_visited.unwrap_or_else(|| HashSet::from([root_key]));
    let (fd, key) = match walker.enter(root_fd, &top.name, &top.name, top.checked) {
        Enter::Open(fd, key) => (fd, key),
        Enter::Skip => return walker,
        Enter::Warn(message) => {
            walker.warn(&top.name, message, rpm, ar);
            return walker;
        }
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

/// The SHA-256 (lower-case hex) and size in bytes of the regular file
/// `path`, opened only if it resolves inside the root
/// ([`Confine::open_file`]), read in 1 MiB blocks into a per-thread buffer
/// (memory does not grow with the file or the number of files).
///
/// # Errors
/// [`OpenError::Outside`] for a file outside the root; [`OpenError::Io`]
/// when it cannot be opened or read.
pub(crate) fn hash_file(confine: &Confine, path: &Path) -> Result<(String, u64), OpenError> {
    let file = confine.open_file(path)?;
    let mut hasher = Sha256::new();
    let size = read_blocks(file, |block| hasher.update(block))?;
    Ok((hex(&hasher.finalize()), size))
}

/// Feeds everything `reader` yields to `consume`, in blocks of at most
/// 1 MiB read into one buffer per thread (not one allocation per file),
/// retrying interrupted reads; returns the number of bytes read.
/// `consume` must not call this function again (the buffer is borrowed).
///
/// # Errors
/// A read error other than [`io::ErrorKind::Interrupted`].
pub(crate) fn read_blocks(
    mut reader: impl Read,
    mut consume: impl FnMut(&[u8]),
) -> io::Result<u64> {
    thread_local! {
        static BUFFER: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; 1 << 20]);
    }
    BUFFER.with(|buffer| {
        let mut buf = buffer.borrow_mut();
        let mut size = 0u64;
        loop {
            match reader.read(&mut buf) {
                Ok(0) => return Ok(size),
                Ok(n) => {
                    consume(&buf[..n]);
                    size += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
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
