//! The repository catalog: discovers the APT, RPM and ALT apt-rpm
//! repositories of a published snapshot tree and describes them in
//! `repo_catalog.json` (docs/metadata.md, "repo_catalog.json").
//!
//! Entry points: [`build_catalog`] scans a tree into a [`Catalog`]; [`render`]
//! writes it as the canonical JSON text. The `mirrorer catalog` command is in
//! [`command`]; the `publish-catalog` stage calls the library directly.
//!
//! Modules: [`model`] (the document's types), [`apt`] (Release/InRelease,
//! Debian's repository format), [`rpm`] (repomd.xml, the createrepo format),
//! [`aptrpm`] (ALT's apt-rpm layout), [`ids`] (id, path and text helpers),
//! `walk` (the single parallel walk of the tree, hashing), `confine`
//! (keeping every path and symlink inside the scan root), [`xml`] (XML
//! parsing with bounded entity expansion).
//!
//! The tree is untrusted input. Symlinks are followed only while they
//! resolve inside the canonical scan root; a path read from metadata (a
//! Release checksum line, a repomd.xml `location@href`) is used only when,
//! joined lexically to its repository's base, it stays inside that base;
//! only regular files are opened for reading; XML entity expansion is
//! bounded by the file's size. Each refusal, and each directory that cannot
//! be read, is a [`Warning`]; nothing in the tree makes the catalog fail.
//!
//! Non-UTF-8 file names: every byte of a name that is not part of valid UTF-8
//! is written as U+FFFD (REPLACEMENT CHARACTER) in paths, and as `_` in ids;
//! the files are still read through their real names.

pub mod apt;
pub mod aptrpm;
pub mod command;
pub(crate) mod confine;
pub mod ids;
pub mod model;
pub mod rpm;
pub(crate) mod walk;
pub mod xml;

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

pub use model::{
    AptRelease, AptRepository, AptRpmRepository, Catalog, Format, Repository, RpmMetadata,
    RpmRepository, SCHEMA, UnsupportedFormats, Warning,
};

/// The largest metadata file read whole, in bytes (64 MiB): Release,
/// InRelease and repomd.xml. A larger one is a catalog warning (and a verify
/// problem `unreadable`), never read into memory.
pub const MAX_METADATA_FILE: u64 = 64 << 20;

/// Why a catalog could not be built at all (problems inside the tree are
/// [`Warning`]s instead).
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The scan root does not exist.
    #[error("scan root {} does not exist", .path.display())]
    RootMissing {
        /// The root as given.
        path: PathBuf,
    },
    /// The scan root exists but is not a directory.
    #[error("scan root {} is not a directory", .path.display())]
    RootNotDirectory {
        /// The root as given.
        path: PathBuf,
    },
    /// The scan root could not be opened or read.
    #[error("cannot read scan root {}", .path.display())]
    ReadRoot {
        /// The root as given.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

/// Scans `root` for the repositories of `formats` (an empty slice means all)
/// and returns the catalog, stamped with `shard` and the current UTC time.
///
/// The tree is walked once for all formats; walking, parsing and hashing run
/// on rayon's thread pool (all cores). Unreadable files and directories,
/// symlinks and metadata paths that lead out of the root, and XML files
/// whose entity expansion would exceed their bound become warnings (docs/metadata.md); nothing
/// in the tree makes this fail.
///
/// # Errors
/// [`CatalogError`] when `root` is missing, not a directory or unreadable.
pub fn build_catalog(
    root: &Path,
    formats: &[Format],
    shard: &str,
) -> Result<Catalog, CatalogError> {
    // The root as the reference shows it (also in warning texts that name files).
    let normalised = ids::pathlib_norm(root.as_os_str().as_encoded_bytes());
    let root = Path::new(std::ffi::OsStr::from_bytes(&normalised));
    match std::fs::metadata(root) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(CatalogError::RootMissing {
                path: root.to_path_buf(),
            });
        }
        Err(source) => {
            return Err(CatalogError::ReadRoot {
                path: root.to_path_buf(),
                source,
            });
        }
        Ok(meta) if !meta.is_dir() => {
            return Err(CatalogError::RootNotDirectory {
                path: root.to_path_buf(),
            });
        }
        Ok(_) => {}
    }
    let mut formats = if formats.is_empty() {
        Format::ALL.to_vec()
    } else {
        formats.to_vec()
    };
    formats.sort();
    formats.dedup();
    let confine = confine::Confine::new(root).map_err(|source| CatalogError::ReadRoot {
        path: root.to_path_buf(),
        source,
    })?;
    let want = |f: Format| formats.contains(&f);
    let (want_apt, want_rpm, want_aptrpm) =
        (want(Format::Apt), want(Format::Rpm), want(Format::AptRpm));

    let (apt_result, walk_result) = rayon::join(
        || {
            if !want_apt {
                return Default::default();
            }
            let prefixes: Vec<Vec<u8>> = apt::sorted_subdirs(root)
                .unwrap_or_default()
                .into_iter()
                .filter(|name| !name.starts_with(b"."))
                .collect();
            apt::discover(root, &confine, &prefixes)
        },
        || -> io::Result<_> {
            if !want_rpm && !want_aptrpm {
                return Ok(Default::default());
            }
            let found = walk::walk(root, &confine, want_rpm, want_aptrpm)?;
            let ((rpm_repos, mut rpm_warnings), (aptrpm_repos, mut aptrpm_warnings)) = rayon::join(
                || rpm::discover(root, &confine, &found.rpm),
                || aptrpm::discover(root, &confine, found.pkglists),
            );
            rpm_warnings.extend(found.rpm_warnings);
            aptrpm_warnings.extend(found.aptrpm_warnings);
            Ok(((rpm_repos, rpm_warnings), (aptrpm_repos, aptrpm_warnings)))
        },
    );
    let (mut apt_releases, mut repositories, mut warnings) = apt_result;
    let ((rpm_repos, rpm_warnings), (aptrpm_repos, aptrpm_warnings)) =
        walk_result.map_err(|source| CatalogError::ReadRoot {
            path: root.to_path_buf(),
            source,
        })?;
    repositories.extend(rpm_repos);
    repositories.extend(aptrpm_repos);
    warnings.extend(rpm_warnings);
    warnings.extend(aptrpm_warnings);

    apt_releases.sort_by(|a, b| (&a.prefix, &a.suite).cmp(&(&b.prefix, &b.suite)));
    repositories.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    warnings.sort();
    Ok(Catalog {
        schema: SCHEMA,
        formats,
        shard: shard.to_owned(),
        generated_at: generated_at_now(),
        scan_root: ids::lossy_name(&normalised),
        apt_releases,
        repositories,
        warnings,
    })
}

/// Renders a catalog as the canonical JSON text (sorted keys, 2-space
/// indentation, one trailing newline; docs/metadata.md, "JSON rendering").
///
/// # Errors
/// Only if serialisation fails, which the catalog's types do not do.
pub fn render(catalog: &Catalog) -> serde_json::Result<String> {
    crate::json::to_pretty_string(catalog)
}

/// The current UTC time as `generated_at` writes it:
/// `2026-06-03T12:00:00.123456Z`, or `2026-06-03T12:00:00Z` when the
/// microseconds are zero.
pub fn generated_at_now() -> String {
    format_generated_at(chrono::Utc::now())
}

fn format_generated_at(now: chrono::DateTime<chrono::Utc>) -> String {
    use chrono::Timelike;
    let micros = now.nanosecond() % 1_000_000_000 / 1000;
    if micros == 0 {
        now.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        format!("{}.{micros:06}Z", now.format("%Y-%m-%dT%H:%M:%S"))
    }
}

/// The shard name when none is given: env `DIST_MIRROR_SHARD` when set and
/// non-empty, else the host name (`gethostname(2)`), else `unknown`.
pub fn default_shard() -> String {
    match std::env::var("DIST_MIRROR_SHARD") {
        Ok(shard) if !shard.is_empty() => shard,
        _ => hostname().unwrap_or_else(|| "unknown".to_owned()),
    }
}

fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the pointer and length describe `buf`, which outlives the call;
    // gethostname writes at most `len` bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let len = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    Some(String::from_utf8_lossy(&buf[..len]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn generated_at_drops_a_zero_fraction() {
        let t = chrono::Utc
            .with_ymd_and_hms(2026, 6, 3, 12, 0, 0)
            .single()
            .expect("valid time");
        assert_eq!(format_generated_at(t), "2026-06-03T12:00:00Z");
        let t = t + chrono::Duration::microseconds(123_456);
        assert_eq!(format_generated_at(t), "2026-06-03T12:00:00.123456Z");
    }
}
