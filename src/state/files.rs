//! Opening and reading the files of the workdir without following anything
//! planted there out of it (issue 10, "Hardening").
//!
//! - Lock and state files are opened with `O_NOFOLLOW | O_NONBLOCK` and must
//!   be regular files ([`open_regular`]): a symlink (even to `/dev/zero`), a
//!   FIFO or a device is refused with [`StateError::Refused`] naming it, at
//!   once (`O_NONBLOCK` keeps the open of a FIFO from waiting for a writer).
//! - State files are read whole only up to a bound ([`read_regular`]).
//! - The roots `<workdir>/state`, `<workdir>/repo` and `<workdir>/metadata`
//!   must be real directories, not symlinks ([`check_real_dir`]), and
//!   directories below them are created one level at a time, refusing any
//!   symlink on the way ([`create_dirs_below`]).
//!
//! The checks look at the path when the file is used; someone who can
//! rename entries in the workdir between the check and the use can still
//! race them. They stop planted links and special files, which is what a
//! stale or hostile workdir holds.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::StateError;

/// The largest `current_snapshot.txt` read (bytes): a name and a newline.
pub const MAX_CURRENT_SNAPSHOT_BYTES: u64 = 4096;
/// The largest lock file read when naming its holders (bytes).
pub const MAX_LOCK_FILE_BYTES: u64 = 64 * 1024;

fn refused(path: &Path, message: impl Into<String>) -> StateError {
    StateError::Refused {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// What a file that is not regular is, for messages (`a FIFO`, ...).
fn kind_of(meta: &fs::Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_symlink() {
        "a symlink"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "a special file"
    }
}

/// How a file is opened by [`open_regular`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read only; the file must exist.
    Read,
    /// Read and write; created (mode 0644) if missing.
    ReadWriteCreate,
}

/// Opens `path` without following a symlink and checks that it is a
/// regular file. `action` names what was being done, for errors ("open the
/// lock file").
///
/// # Errors
/// [`StateError::Refused`] if `path` is a symlink or not a regular file
/// (FIFO, device, directory, socket); [`StateError::Io`] for other failures
/// (`NotFound` with [`Access::Read`] and a missing file).
pub fn open_regular(
    path: &Path,
    access: Access,
    action: &'static str,
) -> Result<fs::File, StateError> {
    let mut options = fs::OpenOptions::new();
    options.read(true);
    if access == Access::ReadWriteCreate {
        options.write(true).create(true).mode(0o644);
    }
    options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY);
    let file = match options.open(path) {
        Ok(f) => f,
        // O_NOFOLLOW on a symlink: ELOOP.
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(refused(
                path,
                "it is a symlink; files under the workdir are never followed out of it",
            ));
        }
        Err(source) => {
            return Err(StateError::Io {
                action,
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let meta = file.metadata().map_err(|source| StateError::Io {
        action: "inspect",
        path: path.to_path_buf(),
        source,
    })?;
    if !meta.is_file() {
        return Err(refused(
            path,
            format!("it is {}, not a regular file", kind_of(&meta)),
        ));
    }
    Ok(file)
}

/// Reads the regular file `path` (not following a symlink) whole, if it is
/// at most `max_bytes` long; `None` if it does not exist.
///
/// # Errors
/// As [`open_regular`]; [`StateError::Refused`] for a larger file;
/// [`StateError::Io`] if it cannot be read.
pub fn read_regular(path: &Path, max_bytes: u64) -> Result<Option<Vec<u8>>, StateError> {
    let file = match open_regular(path, Access::Read, "read") {
        Ok(f) => f,
        Err(StateError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let mut bytes = Vec::new();
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|source| StateError::Io {
            action: "read",
            path: path.to_path_buf(),
            source,
        })?;
    if bytes.len() as u64 > max_bytes {
        return Err(refused(
            path,
            format!("it is larger than {max_bytes} bytes, more than this state file can hold"),
        ));
    }
    Ok(Some(bytes))
}

/// Whether `file` (open) and `path` (now) are the same inode: a lock file
/// that was unlinked or replaced while we waited for it is no longer the
/// lock. `false` also if `path` is gone or is a symlink.
pub fn same_inode(file: &fs::File, path: &Path) -> bool {
    match (file.metadata(), fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Checks that `dir` (a root of the workdir: `state/`, `repo/`,
/// `metadata/`, described by `what`, e.g. "the publication root") is a real
/// directory, not a symlink; a missing one is fine (it is created as a real
/// directory when needed).
///
/// # Errors
/// [`StateError::Refused`] naming `dir` if it is a symlink or not a
/// directory; [`StateError::Io`] if it cannot be inspected.
pub fn check_real_dir(dir: &Path, what: &str) -> Result<(), StateError> {
    match fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_symlink() => {
            let target = fs::read_link(dir)
                .map(|t| format!(" (to {})", t.display()))
                .unwrap_or_default();
            Err(refused(
                dir,
                format!(
                    "{what} is a symlink{target}; it must be a real directory, files under the workdir are never followed out of it"
                ),
            ))
        }
        Ok(m) if m.is_dir() => Ok(()),
        Ok(m) => Err(refused(
            dir,
            format!("{what} is {}, not a directory", kind_of(&m)),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(StateError::Io {
            action: "inspect",
            path: dir.to_path_buf(),
            source,
        }),
    }
}

/// Makes sure every directory from `root` (exclusive; itself checked with
/// [`check_real_dir`]) down to `dir` (inclusive) is a real directory,
/// creating missing ones (mode 0755 before umask) one level at a time.
/// `dir` must lie below `root`; if it does not, nothing is checked (the
/// caller's path is outside the workdir, e.g. a job artifact).
///
/// # Errors
/// [`StateError::Refused`] naming the first symlink or non-directory on the
/// way; [`StateError::Io`] if one cannot be created or inspected.
pub fn create_dirs_below(root: &Path, dir: &Path) -> Result<(), StateError> {
    let Ok(rel) = dir.strip_prefix(root) else {
        return fs::create_dir_all(dir).map_err(|source| StateError::Io {
            action: "create",
            path: dir.to_path_buf(),
            source,
        });
    };
    let mut at: PathBuf = root.to_path_buf();
    for part in rel.components() {
        at.push(part);
        match fs::symlink_metadata(&at) {
            Ok(m) if m.is_dir() => continue,
            Ok(_) => return check_real_dir(&at, "a directory of the workdir"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                match fs::create_dir(&at) {
                    Ok(()) => {}
                    // Created meanwhile by someone else: check it again.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        check_real_dir(&at, "a directory of the workdir")?;
                    }
                    Err(source) => {
                        return Err(StateError::Io {
                            action: "create",
                            path: at,
                            source,
                        });
                    }
                }
            }
            Err(source) => {
                return Err(StateError::Io {
                    action: "inspect",
                    path: at,
                    source,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempTree;

    #[test]
    fn symlinks_fifos_and_large_files_are_refused() {
        let t = TempTree::new();
        let real = t.file("real", "x\n");
        assert_eq!(read_regular(&real, 10).unwrap().unwrap(), b"x\n");
        assert!(read_regular(&t.path("missing"), 10).unwrap().is_none());
        let err = read_regular(&real, 1).unwrap_err().to_string();
        assert!(err.contains("larger than 1 bytes"), "{err}");
        let link = t.symlink("/dev/zero", "link");
        let err = read_regular(&link, 10).unwrap_err().to_string();
        assert!(err.contains("symlink") && err.contains("link"), "{err}");
        let err = open_regular(&link, Access::ReadWriteCreate, "open")
            .unwrap_err()
            .to_string();
        assert!(err.contains("symlink"), "{err}");
        let err = read_regular(&t.path(""), 10).unwrap_err().to_string();
        assert!(err.contains("a directory, not a regular file"), "{err}");
    }

    #[test]
    fn directories_are_never_created_through_a_symlink() {
        let t = TempTree::new();
        let root = t.dir("work");
        let outside = t.dir("outside");
        create_dirs_below(&root, &root.join("metadata/snapshots/a")).unwrap();
        assert!(root.join("metadata/snapshots/a").is_dir());
        t.symlink(&outside, "work/metadata/link");
        let err = create_dirs_below(&root, &root.join("metadata/link/b"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("metadata/link") && err.contains("symlink"),
            "{err}"
        );
        assert!(!outside.join("b").exists());
        assert!(check_real_dir(&root.join("metadata/link"), "x").is_err());
        assert!(check_real_dir(&root.join("nope"), "x").is_ok());
    }
}
