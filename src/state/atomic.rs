//! Atomic replacement of a file (docs/metadata.md, "JSON rendering"): a
//! temp file `.<name>.<random>.tmp` in the target's directory, written,
//! fsynced, given its mode, renamed over the target, the directory fsynced.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A failed atomic write, naming the target file.
#[derive(Debug, thiserror::Error)]
#[error("could not write {}", path.display())]
pub struct WriteError {
    /// The file that was to be written.
    pub path: PathBuf,
    /// What went wrong.
    #[source]
    pub source: std::io::Error,
}

/// Replaces the content of `path` with `bytes` atomically, with permission
/// bits `mode` (e.g. `0o644`). The parent directory must exist.
///
/// # Errors
/// [`WriteError`] naming `path` if the temp file cannot be created, written,
/// synced or renamed; the previous content of `path` is then untouched and
/// the temp file is removed.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), WriteError> {
    let fail = |source| WriteError {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".to_owned());
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(fail)?;
    tmp.write_all(bytes).map_err(fail)?;
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(mode))
        .map_err(fail)?;
    tmp.as_file().sync_all().map_err(fail)?;
    // On error `persist` hands the temp file back; dropping it removes it.
    tmp.persist(path).map_err(|e| fail(e.error))?;
    if let Ok(d) = fs::File::open(dir) {
        // Makes the rename durable; a failure here cannot be undone, and the
        // new content is already in place, so it is not reported.
        let _ = d.sync_all();
    }
    Ok(())
}

/// Installs the already written temp file `tmp` as `path` atomically: gives
/// it permission bits `mode`, fsyncs it, renames it over `path` and fsyncs
/// the directory, as [`write_atomic`] does for content in memory (for
/// content streamed to disk, e.g. a list of millions of paths). `tmp` must
/// be in `path`'s directory (a rename does not cross file systems).
///
/// # Errors
/// [`WriteError`] naming `path`; the previous content of `path` is then
/// untouched and the temp file is removed.
pub fn install_atomic(
    tmp: tempfile::NamedTempFile,
    path: &Path,
    mode: u32,
) -> Result<(), WriteError> {
    let fail = |source| WriteError {
        path: path.to_path_buf(),
        source,
    };
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(mode))
        .map_err(fail)?;
    tmp.as_file().sync_all().map_err(fail)?;
    tmp.persist(path).map_err(|e| fail(e.error))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempTree;

    #[test]
    fn replaces_content_and_leaves_no_temp_file() {
        let t = TempTree::new();
        let target = t.file("out.json", "old");
        write_atomic(&target, b"new\n", 0o644).unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "new\n");
        let mode = fs::metadata(&target).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        let names: Vec<_> = fs::read_dir(t.path(""))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("out.json")]);
    }

    #[test]
    fn missing_directory_is_an_error_naming_the_path() {
        let target = TempTree::new().path("nope/out.json");
        let err = write_atomic(&target, b"x", 0o644).unwrap_err();
        assert!(err.to_string().contains("nope/out.json"), "{err}");
    }
}
