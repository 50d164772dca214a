//! Keeping the catalog inside its scan root: the tree is untrusted input,
//! so a path read from a file, and every symlink on the way, must resolve
//! inside the root before anything is opened there.
//!
//! Two layers:
//! - [`lexically_inside`]: a path read from metadata (a Release checksum
//!   line, a repomd.xml `location@href`) is joined to the repository's base
//!   and normalised by text alone; an absolute path, or one whose `..`
//!   components climb above the base, is refused without touching the disk.
//! - [`Confine`]: a file or directory that is opened is checked where it
//!   really is (inside the scan root, or inside the target of one of the
//!   root's top-level symlinks, which is how a published snapshot is made): it is opened with `O_PATH` (symlinks followed, nothing read),
//!   its real path is read back from `/proc/self/fd/N` (the kernel's answer,
//!   so no race with a symlink that changes) and compared, component by
//!   component, with the canonical scan root; only then is it opened for
//!   reading through that same descriptor. Without `/proc`, the path is
//!   resolved with `realpath(3)` instead.

use std::cell::RefCell;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

/// Identities of [`Confine`] values, so a per-thread cache never carries a
/// verdict from one scan root to another.
static NEXT_CONFINE_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// The directory [`Confine::file_size`] resolved last on this thread:
    /// the confine's id, the directory's path, and its `O_PATH` descriptor
    /// when it is a directory inside the roots (`None` otherwise). Package
    /// files are listed directory by directory, so most lookups hit it.
    static LAST_DIR: RefCell<Option<(u64, PathBuf, Option<OwnedFd>)>> = const { RefCell::new(None) };
}

/// Why a file under the root was not opened.
#[derive(Debug)]
pub(crate) enum OpenError {
    /// The path resolves outside the scan root (through a symlink).
    Outside,
    /// The path could not be opened, or is not a regular file.
    Io(io::Error),
}

impl From<io::Error> for OpenError {
    fn from(e: io::Error) -> Self {
        OpenError::Io(e)
    }
}

/// The text of the warning for a symlink that leads out of the scan root
/// (out of every directory of [`Confine`]).
pub(crate) const OUTSIDE_MESSAGE: &str = "symlink leads out of the scan root; not followed";

/// The directories the catalog may read: the canonical scan root, plus the
/// canonical target of each top-level entry of the root that is a symlink to
/// a directory. A published snapshot is made of such links
/// (`repo/snapshots/<snap>/<prefix>` -> `<zfs_mirror_dir>/.zfs/snapshot/...`,
/// docs/stages.md, "publish-snapshot"), written by this tool from its config,
/// not synced; everything below a prefix is synced content and must stay
/// inside one of these directories. A top-level link whose target contains
/// the scan root itself (`/`, a parent) adds nothing.
#[derive(Debug, Clone)]
pub(crate) struct Confine {
    roots: Vec<PathBuf>,
    id: u64,
}

impl Confine {
    /// Resolves `root` (which must exist) and the targets of its top-level
    /// symlinks to their canonical paths.
    ///
    /// # Errors
    /// `realpath(3)` fails on `root`.
    pub(crate) fn new(root: &Path) -> io::Result<Confine> {
        let canonical = std::fs::canonicalize(root)?;
        let mut roots = vec![canonical.clone()];
        if let Ok(entries) = std::fs::read_dir(root) {
            for entry in entries.flatten() {
                if !entry.file_type().is_ok_and(|t| t.is_symlink()) {
                    continue;
                }
                let Ok(target) = std::fs::canonicalize(entry.path()) else {
                    continue;
                };
                let useful = target.is_dir()
                    && !canonical.starts_with(&target)
                    && !roots.iter().any(|r| target.starts_with(r));
                if useful {
                    roots.push(target);
                }
            }
        }
        Ok(Confine {
            roots,
            id: NEXT_CONFINE_ID.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// True when the open descriptor `fd` (a directory or an `O_PATH`
    /// descriptor) is at or below the root. `path` is where it was opened
    /// from, used only when `/proc` is not available.
    pub(crate) fn fd_inside<Fd: AsFd>(&self, fd: Fd, path: &Path) -> bool {
        let link = format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd());
        let real = match std::fs::read_link(link) {
            Ok(real) => real,
            Err(_) => match std::fs::canonicalize(path) {
                Ok(real) => real,
                Err(_) => return false,
            },
        };
        self.roots.iter().any(|root| real.starts_with(root))
    }

    /// True when `path` (symlinks followed) is a directory at or below the
    /// root; false when it is outside, missing or not a directory.
    pub(crate) fn dir_inside(&self, path: &Path) -> bool {
        match open_path(path, true) {
            Ok(fd) => self.fd_inside(&fd, path),
            Err(_) => false,
        }
    }

    /// Reads the whole regular file `path` ([`Confine::open_file`]), at most
    /// `max` bytes of it: metadata read whole (Release, InRelease,
    /// repomd.xml) is a few hundred KiB, and a synced tree must not make
    /// this process hold gigabytes.
    ///
    /// # Errors
    /// As [`Confine::open_file`]; [`OpenError::Io`] (`InvalidData`, "larger
    /// than N bytes") when the file holds more than `max` bytes.
    pub(crate) fn read_file(&self, path: &Path, max: u64) -> Result<Vec<u8>, OpenError> {
        let file = self.open_file(path)?;
        let mut bytes = Vec::new();
        io::Read::read_to_end(&mut io::Read::take(file, max.saturating_add(1)), &mut bytes)
            .map_err(OpenError::Io)?;
        if bytes.len() as u64 > max {
            return Err(OpenError::Io(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("larger than {max} bytes"),
            )));
        }
        Ok(bytes)
    }

    /// Opens the regular file `path` for reading, if it resolves inside the
    /// root. A FIFO or device is refused before it is opened for reading (no
    /// blocking open).
    ///
    /// # Errors
    /// [`OpenError::Outside`] when it resolves outside the root;
    /// [`OpenError::Io`] when it cannot be opened or is not a regular file.
    pub(crate) fn open_file(&self, path: &Path) -> Result<File, OpenError> {
        // Below a directory that is inside, one component opened without
        // following a symlink cannot lead out (`O_NONBLOCK`: a FIFO does not
        // block the open, and is refused below). A symlink (`ELOOP`), or a
        // directory that is missing or outside, takes the full check.
        if let (Some(parent), Some(name)) = (path.parent(), path.file_name()) {
            let flags = OFlags::RDONLY
                | OFlags::CLOEXEC
                | OFlags::NOCTTY
                | OFlags::NOFOLLOW
                | OFlags::NONBLOCK;
            let opened = self.in_dir(parent, |dir| {
                rustix::fs::openat(dir, name, flags, Mode::empty())
            });
            match opened {
                Some(Ok(fd)) => {
                    let stat = rustix::fs::fstat(&fd).map_err(io::Error::from)?;
                    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
                        return Err(OpenError::Io(io::Error::other("not a regular file")));
                    }
                    return Ok(File::from(fd));
                }
                Some(Err(e)) if e != rustix::io::Errno::LOOP => {
                    return Err(OpenError::Io(e.into()));
                }
                _ => {}
            }
        }
        self.open_file_resolved(path)
    }

    /// [`Confine::open_file`] by resolving the whole path: an `O_PATH` open,
    /// the real path compared with the roots, then the file opened for
    /// reading through that descriptor.
    fn open_file_resolved(&self, path: &Path) -> Result<File, OpenError> {
        let (fd, _stat) = self.regular_resolved(path)?;
        let reopen = format!("/proc/self/fd/{}", fd.as_raw_fd());
        match rustix::fs::open(
            reopen.as_str(),
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY,
            Mode::empty(),
        ) {
            Ok(file) => Ok(File::from(file)),
            // No /proc: open the path again (checked by realpath above).
            Err(_) => Ok(File::open(path)?),
        }
    }

    /// The size in bytes of the regular file `path`, if it resolves inside
    /// the root: the checks of [`Confine::open_file`] without opening the
    /// file for reading, for callers that need only its existence and size.
    ///
    /// The directory of `path` is resolved and checked once (and kept for
    /// the next call on this thread); the file itself is then one
    /// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)`: a single component below a
    /// directory that is inside cannot lead out, and a symlink there takes
    /// the full check of [`Confine::open_file`]'s kind.
    ///
    /// # Errors
    /// As [`Confine::open_file`].
    pub(crate) fn file_size(&self, path: &Path) -> Result<u64, OpenError> {
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return self.file_size_resolved(path);
        };
        let stat = self.in_dir(parent, |dir| {
            rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
        });
        match stat {
            Some(Ok(st)) => match FileType::from_raw_mode(st.st_mode) {
                FileType::RegularFile => Ok(u64::try_from(st.st_size).unwrap_or(0)),
                FileType::Symlink => self.file_size_resolved(path),
                _ => Err(OpenError::Io(io::Error::other("not a regular file"))),
            },
            Some(Err(e)) => Err(OpenError::Io(e.into())),
            // The directory is missing, not a directory, or outside: the
            // full check says which.
            None => self.file_size_resolved(path),
        }
    }

    /// Runs `f` on the `O_PATH` descriptor of the directory `parent` when it
    /// is a directory inside the roots (`None` otherwise). The directory is
    /// resolved and checked once and kept for the next call on this thread
    /// (`LAST_DIR`): package and index files are read directory by directory.
    fn in_dir<R>(&self, parent: &Path, f: impl FnOnce(&OwnedFd) -> R) -> Option<R> {
        LAST_DIR.with(|cell| {
            let mut cache = cell.borrow_mut();
            let hit = matches!(&*cache, Some((id, dir, _)) if *id == self.id && dir == parent);
            if !hit {
                let fd = open_path(parent, true)
                    .ok()
                    .filter(|fd| self.fd_inside(fd, parent));
                *cache = Some((self.id, parent.to_path_buf(), fd));
            }
            match &*cache {
                Some((_, _, Some(dir))) => Some(f(dir)),
                _ => None,
            }
        })
    }

    /// The full check of [`Confine::open_file`] and [`Confine::file_size`]:
    /// an `O_PATH` open of `path`, its real path compared with the roots,
    /// an `fstat` that must show a regular file.
    fn regular_resolved(&self, path: &Path) -> Result<(OwnedFd, rustix::fs::Stat), OpenError> {
        let fd = open_path(path, false)?;
        if !self.fd_inside(&fd, path) {
            return Err(OpenError::Outside);
        }
        let stat = rustix::fs::fstat(&fd).map_err(io::Error::from)?;
        if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
            return Err(OpenError::Io(io::Error::other("not a regular file")));
        }
        Ok((fd, stat))
    }

    /// [`Confine::file_size`] by resolving the whole path: one `O_PATH`
    /// open, the real path compared with the roots, an `fstat`.
    fn file_size_resolved(&self, path: &Path) -> Result<u64, OpenError> {
        let (_fd, stat) = self.regular_resolved(path)?;
        Ok(u64::try_from(stat.st_size).unwrap_or(0))
    }

    /// Whether `path` is a regular file inside the root: `Ok(true)`,
    /// `Ok(false)` when missing or not a regular file, `Err(Outside)` when
    /// it resolves outside the root.
    pub(crate) fn is_file(&self, path: &Path) -> Result<bool, OpenError> {
        let Ok(fd) = open_path(path, false) else {
            return Ok(false);
        };
        if !self.fd_inside(&fd, path) {
            return Err(OpenError::Outside);
        }
        Ok(rustix::fs::fstat(&fd)
            .map(|st| FileType::from_raw_mode(st.st_mode) == FileType::RegularFile)
            .unwrap_or(false))
    }
}

/// `open(path, O_PATH)`, symlinks followed; `dir`: must be a directory.
fn open_path(path: &Path, dir: bool) -> io::Result<OwnedFd> {
    let mut flags = OFlags::PATH | OFlags::CLOEXEC;
    if dir {
        flags |= OFlags::DIRECTORY;
    }
    Ok(rustix::fs::open(path, flags, Mode::empty())?)
}

/// `base/rel` normalised by text (`.` and empty components dropped, `..`
/// removing the previous component), if it ends at or below `base`:
/// `None` when `rel` is absolute, climbs above the scan root at any point,
/// or ends outside `base` (`../base/x` from `base` is `base/x`). `base` is a
/// relative path from the scan root (`.` for the root itself).
///
/// ```text
/// lexically_inside("debian", "dists/s/../s/main/binary-amd64/Packages") = Some("debian/dists/s/main/binary-amd64/Packages")
/// lexically_inside("debian", "../etc/passwd") = None
/// lexically_inside("debian", "/etc/passwd")   = None
/// ```
pub(crate) fn lexically_inside(base: &str, rel: &str) -> Option<String> {
    if rel.starts_with('/') {
        return None;
    }
    let base_parts: Vec<&str> = base
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    let mut parts = base_parts.clone();
    for c in rel.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    if !parts.starts_with(&base_parts) {
        return None;
    }
    Some(if parts.is_empty() {
        ".".to_owned()
    } else {
        parts.join("/")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempTree;

    #[test]
    fn file_size_stays_inside_through_the_cached_directory() {
        let t = TempTree::new();
        let root = t.path("root");
        let pool = t.path("root/pool");
        t.file("root/pool/a.deb", "12345");
        let secret = t.file("secret", "outside");
        t.symlink(&secret, "root/pool/out.deb");
        t.symlink("a.deb", "root/pool/in.deb");
        t.dir("root/pool/dir.deb");
        let confine = Confine::new(&root).unwrap();
        // The first call caches pool/; the others use it.
        assert_eq!(confine.file_size(&pool.join("a.deb")).unwrap(), 5);
        assert!(matches!(
            confine.file_size(&pool.join("out.deb")),
            Err(OpenError::Outside)
        ));
        assert_eq!(confine.file_size(&pool.join("in.deb")).unwrap(), 5);
        assert!(matches!(
            confine.file_size(&pool.join("missing.deb")),
            Err(OpenError::Io(e)) if e.kind() == io::ErrorKind::NotFound
        ));
        assert!(matches!(
            confine.file_size(&pool.join("dir.deb")),
            Err(OpenError::Io(e)) if e.to_string() == "not a regular file"
        ));
        // A directory that is itself a symlink out of the root.
        t.symlink(t.path(""), "root/pool/up");
        assert!(matches!(
            confine.file_size(&root.join("pool/up/secret")),
            Err(OpenError::Outside)
        ));
        // open_file goes through the same cached directory.
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut confine.open_file(&pool.join("in.deb")).unwrap(),
            &mut text,
        )
        .unwrap();
        assert_eq!(text, "12345");
        assert!(matches!(
            confine.open_file(&pool.join("out.deb")),
            Err(OpenError::Outside)
        ));
        assert!(matches!(
            confine.open_file(&pool.join("dir.deb")),
            Err(OpenError::Io(e)) if e.to_string() == "not a regular file"
        ));
        rustix::fs::mknodat(
            rustix::fs::CWD,
            pool.join("fifo.deb"),
            FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        assert!(matches!(
            confine.open_file(&pool.join("fifo.deb")),
            Err(OpenError::Io(e)) if e.to_string() == "not a regular file"
        ));
        // Another root does not reuse this thread's cached verdict.
        let other = Confine::new(&pool).unwrap();
        assert_eq!(other.file_size(&pool.join("a.deb")).unwrap(), 5);
    }

    #[test]
    fn lexical_containment() {
        assert_eq!(
            lexically_inside("debian/dists/s", "../s/main/x").as_deref(),
            Some("debian/dists/s/main/x")
        );
        assert_eq!(
            lexically_inside("debian", "dists/s/../../../etc"),
            None,
            "climbs above the base"
        );
        assert_eq!(lexically_inside("debian", "/etc/passwd"), None);
        assert_eq!(lexically_inside(".", "a/../b").as_deref(), Some("b"));
        assert_eq!(lexically_inside(".", "../b"), None);
        assert_eq!(
            lexically_inside("o/r", "../r/repodata/x").as_deref(),
            Some("o/r/repodata/x")
        );
        assert_eq!(lexically_inside("o/r", "../s/x"), None);
        assert_eq!(lexically_inside("o/r", "../../../o/r/x"), None);
        assert_eq!(lexically_inside("a", "").as_deref(), Some("a"));
        assert_eq!(lexically_inside("a", "./b//c").as_deref(), Some("a/b/c"));
    }

    #[test]
    fn confine_refuses_links_out_of_the_root() {
        let t = TempTree::new();
        let root = t.path("root");
        let secret = t.file("secret", "s");
        t.file("root/d/f", "f");
        t.symlink(&secret, "root/out");
        t.symlink("d/f", "root/in");
        t.symlink("..", "root/up");
        t.dir("published/x");
        t.symlink(t.path("published"), "root/pub");
        t.symlink(t.dir("other"), "root/d/esc");
        let confine = Confine::new(&root).expect("confine");
        // A top-level link is a published prefix; a deeper one is synced content.
        assert!(confine.dir_inside(&root.join("pub/x")));
        assert!(!confine.dir_inside(&root.join("d/esc")));
        assert!(matches!(
            confine.open_file(&root.join("out")),
            Err(OpenError::Outside)
        ));
        assert!(confine.open_file(&root.join("in")).is_ok());
        assert!(matches!(
            confine.open_file(&root.join("d")),
            Err(OpenError::Io(_))
        ));
        assert!(confine.dir_inside(&root.join("d")));
        assert!(!confine.dir_inside(&root.join("up")));
        assert!(confine.dir_inside(&root));
        assert!(matches!(confine.is_file(&root.join("in")), Ok(true)));
        assert!(matches!(confine.is_file(&root.join("nope")), Ok(false)));
        assert!(matches!(
            confine.is_file(&root.join("out")),
            Err(OpenError::Outside)
        ));
    }
}
