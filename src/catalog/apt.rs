//! APT discovery (docs/metadata.md, "APT"): Release/InRelease files of
//! `<prefix>/dists/<suite>/` and the binary Packages indexes they list.
//!
//! The Release format is Debian's repository format
//! (<https://wiki.debian.org/DebianRepository/Format>, "Release files"): RFC 822
//! style `Key: value` fields, continuation lines starting with a blank, and
//! checksum fields (`MD5Sum`, `SHA1`, `SHA256`, `SHA512`) whose continuation
//! lines are `checksum size path`. An InRelease file is the same text
//! clearsigned with OpenPGP; parsing stops at its signature block.

use std::collections::HashMap;
use std::io;
use std::path::Path;

use rayon::prelude::*;

use super::confine::{Confine, OUTSIDE_MESSAGE, OpenError, lexically_inside};
use super::ids::{
    decode_backslashreplace, lossy_name, pathlib_join, py_int, py_split, py_splitlines, py_strip,
    safe_id,
};
use super::model::{AptRelease, AptRepository, Repository, Warning};
use super::walk::{hash_file, is_dir, is_file, join, os_error_text, path_text};

/// Checksum fields in order of preference.
const CHECKSUM_FIELDS: [&str; 4] = ["SHA256", "SHA512", "SHA1", "MD5Sum"];

/// One `checksum size path` line of a Release checksum field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChecksumEntry {
    /// The checksum, as written.
    pub checksum: String,
    /// The size in bytes, as written.
    pub size: i64,
    /// The path relative to the suite directory.
    pub path: String,
}

/// A parsed Release/InRelease file.
#[derive(Debug, Clone, Default)]
pub struct ReleaseFile {
    /// Plain fields by key (continuations joined with one space).
    pub fields: HashMap<String, String>,
    /// Checksum lists by field (`SHA256`, `SHA512`, `SHA1`, `MD5Sum`), for the
    /// fields present.
    pub checksums: HashMap<&'static str, Vec<ChecksumEntry>>,
}

impl ReleaseFile {
    /// Parses Release text (docs/metadata.md, APT step 2). Lines are split as
    /// Python's `str.splitlines()`; parsing stops at a line starting with
    /// `-----BEGIN PGP SIGNATURE-----`.
    pub fn parse(text: &str) -> ReleaseFile {
        enum Current {
            None,
            Field(String),
            Sums(&'static str),
        }
        let mut release = ReleaseFile::default();
        let mut current = Current::None;
        for line in py_splitlines(text) {
            if line.starts_with("-----BEGIN PGP SIGNATURE-----") {
                break;
            }
            if let Some(key) = field_key(line) {
                let value = py_strip(&line[key.len() + 1..]);
                if let Some(sum) = CHECKSUM_FIELDS.iter().find(|f| **f == key) {
                    release.checksums.insert(sum, Vec::new());
                    current = Current::Sums(sum);
                } else {
                    release.fields.insert(key.to_owned(), value.to_owned());
                    current = Current::Field(key.to_owned());
                }
            } else if line.starts_with([' ', '\t']) {
                match &current {
                    Current::Sums(sum) => {
                        let parts: Vec<&str> = py_split(line).collect();
                        if let [checksum, size, path] = parts[..]
                            && let Some(size) = py_int(size)
                            && let Some(list) = release.checksums.get_mut(sum)
                        {
                            list.push(ChecksumEntry {
                                checksum: checksum.to_owned(),
                                size,
                                path: path.to_owned(),
                            });
                        }
                    }
                    Current::Field(key) => {
                        let more = py_strip(line);
                        if !more.is_empty()
                            && let Some(value) = release.fields.get_mut(key)
                        {
                            if !value.is_empty() {
                                value.push(' ');
                            }
                            value.push_str(more);
                        }
                    }
                    Current::None => {}
                }
            }
        }
        release
    }

    /// True when the file held no field and no checksum entry at all.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.checksums.values().all(Vec::is_empty)
    }

    /// The preferred checksum field with entries: the first of `SHA256`,
    /// `SHA512`, `SHA1`, `MD5Sum` that has any.
    pub fn best_checksums(&self) -> Option<(&'static str, &[ChecksumEntry])> {
        CHECKSUM_FIELDS.iter().find_map(|f| {
            self.checksums
                .get(f)
                .filter(|list| !list.is_empty())
                .map(|list| (*f, list.as_slice()))
        })
    }

    fn field(&self, key: &str) -> Option<String> {
        self.fields.get(key).filter(|v| !v.is_empty()).cloned()
    }

    fn list_field(&self, key: &str) -> Option<Vec<String>> {
        let items: Vec<String> = self
            .fields
            .get(key)
            .map(|v| py_split(v).map(str::to_owned).collect())?;
        (!items.is_empty()).then_some(items)
    }
}

/// `^[A-Za-z][A-Za-z0-9-]*:` → the key.
fn field_key(line: &str) -> Option<&str> {
    let bytes = line.as_bytes();
    if !bytes.first()?.is_ascii_alphabetic() {
        return None;
    }
    let end = bytes
        .iter()
        .position(|b| !(b.is_ascii_alphanumeric() || *b == b'-'))?;
    (bytes[end] == b':').then(|| &line[..end])
}

/// A binary index path from a Release file:
/// `^(.+)/binary-([^/]+)/Packages(\.(gz|xz|zst|bz2))?$` → (component, arch, compression).
pub fn parse_index_path(path: &str) -> Option<(&str, &str, &'static str)> {
    let (head, file) = path.rsplit_once('/')?;
    let compression = match file {
        "Packages" => "plain",
        "Packages.xz" => "xz",
        "Packages.gz" => "gz",
        "Packages.bz2" => "bz2",
        "Packages.zst" => "zst",
        _ => return None,
    };
    let (component, dir) = head.rsplit_once('/')?;
    let arch = dir.strip_prefix("binary-")?;
    if component.is_empty() || arch.is_empty() {
        return None;
    }
    Some((component, arch, compression))
}

fn compression_rank(compression: &str) -> u8 {
    match compression {
        "xz" => 0,
        "gz" => 1,
        "bz2" => 2,
        "plain" => 3,
        _ => 4,
    }
}

/// A suite directory to look at.
struct Suite {
    prefix_raw: Vec<u8>,
    prefix: String,
    suite_raw: Vec<u8>,
    suite: String,
}

/// The sorted directory entries of `dir` that are directories (symlinks
/// followed), as raw names.
///
/// # Errors
/// `dir` cannot be listed.
pub(crate) fn sorted_subdirs(dir: &Path) -> io::Result<Vec<Vec<u8>>> {
    use std::os::unix::ffi::OsStrExt;
    let mut names: Vec<Vec<u8>> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .filter(|e| is_dir(&e.path()))
        .map(|e| e.file_name().as_bytes().to_vec())
        .collect();
    names.sort();
    Ok(names)
}

/// An index file listed in a Release file, with its compression.
type Candidate<'a> = (&'a ChecksumEntry, &'static str);

/// Result of one suite.
type SuiteResult = (Option<AptRelease>, Vec<Repository>, Vec<Warning>);

/// Discovers the APT releases and indexes under `root`.
///
/// `prefixes`: the scan root's prefix directories (raw names, sorted).
/// Directories and files are used only inside the scan root (`confine`);
/// index paths from a Release file only inside the prefix. A `dists`
/// directory that cannot be listed, or that resolves outside the root, is
/// a warning.
pub(crate) fn discover(
    root: &Path,
    confine: &Confine,
    prefixes: &[Vec<u8>],
) -> (Vec<AptRelease>, Vec<Repository>, Vec<Warning>) {
    let mut suites = Vec::new();
    let mut warnings = Vec::new();
    for prefix_raw in prefixes {
        let dists = join(root, prefix_raw).join("dists");
        let prefix = lossy_name(prefix_raw);
        let warn = |message: String| Warning {
            format: "apt",
            prefix: prefix.clone(),
            path: format!("{prefix}/dists"),
            message,
        };
        match std::fs::metadata(&dists) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ENOENT | libc::ENOTDIR | libc::ELOOP)
                ) =>
            {
                continue;
            }
            Err(e) => {
                warnings.push(warn(format!(
                    "cannot read directory: {}",
                    os_error_text(&e, &dists)
                )));
                continue;
            }
        }
        if !confine.dir_inside(&dists) {
            warnings.push(warn(OUTSIDE_MESSAGE.to_owned()));
            continue;
        }
        let suite_names = match sorted_subdirs(&dists) {
            Ok(names) => names,
            Err(e) => {
                warnings.push(warn(format!(
                    "cannot read directory: {}",
                    os_error_text(&e, &dists)
                )));
                continue;
            }
        };
        for suite_raw in suite_names {
            suites.push(Suite {
                prefix: lossy_name(prefix_raw),
                prefix_raw: prefix_raw.clone(),
                suite: lossy_name(&suite_raw),
                suite_raw,
            });
        }
    }
    let results: Vec<SuiteResult> = suites
        .par_iter()
        .map(|s| discover_suite(root, confine, s))
        .collect();
    let mut releases = Vec::new();
    let mut repos = Vec::new();
    for (release, r, w) in results {
        releases.extend(release);
        repos.extend(r);
        warnings.extend(w);
    }
    (releases, repos, warnings)
}

fn discover_suite(root: &Path, confine: &Confine, s: &Suite) -> SuiteResult {
    let mut repos = Vec::new();
    let mut warnings = Vec::new();
    let warn = |path: String, message: String| Warning {
        format: "apt",
        prefix: s.prefix.clone(),
        path,
        message,
    };
    let suite_dir = join(&join(root, &s.prefix_raw).join("dists"), &s.suite_raw);
    let suite_rel = format!("{}/dists/{}", s.prefix, s.suite);
    if !confine.dir_inside(&suite_dir) {
        warnings.push(warn(suite_rel, OUTSIDE_MESSAGE.to_owned()));
        return (None, repos, warnings);
    }
    if let Err(e) = std::fs::read_dir(&suite_dir) {
        let reason = os_error_text(&e, &suite_dir);
        warnings.push(warn(suite_rel, format!("cannot read directory: {reason}")));
        return (None, repos, warnings);
    }
    let release_name = if is_file(&suite_dir.join("InRelease")) {
        "InRelease"
    } else if is_file(&suite_dir.join("Release")) {
        "Release"
    } else {
        warnings.push(warn(
            suite_rel,
            "Release/InRelease file not found".to_owned(),
        ));
        return (None, repos, warnings);
    };
    let release_file = suite_dir.join(release_name);
    let release_path = format!("{suite_rel}/{release_name}");
    let bytes = match confine.read_file(&release_file, super::MAX_METADATA_FILE) {
        Ok(bytes) => bytes,
        Err(OpenError::Outside) => {
            warnings.push(warn(release_path, OUTSIDE_MESSAGE.to_owned()));
            return (None, repos, warnings);
        }
        Err(OpenError::Io(e)) => {
            let reason = os_error_text(&e, &release_file);
            warnings.push(warn(
                release_path,
                format!("failed to parse Release/InRelease: {reason}"),
            ));
            return (None, repos, warnings);
        }
    };
    let release = ReleaseFile::parse(&decode_backslashreplace(&bytes));
    if release.is_empty() {
        let message = format!(
            "failed to parse Release/InRelease: Release metadata not found in {}",
            path_text(&release_file)
        );
        warnings.push(warn(release_path, message));
        return (None, repos, warnings);
    }
    let Some((checksum_type, entries)) = release.best_checksums() else {
        warnings.push(warn(
            release_path,
            "no checksum sections found in Release/InRelease".to_owned(),
        ));
        return (None, repos, warnings);
    };

    // Group candidates by (component, arch), in order of first appearance
    // (an index of the groups keeps this linear in the number of lines).
    let mut groups: Vec<((&str, &str), Vec<Candidate>)> = Vec::new();
    let mut group_of: HashMap<(&str, &str), usize> = HashMap::new();
    for entry in entries {
        let Some((component, arch, compression)) = parse_index_path(&entry.path) else {
            continue;
        };
        if component == "debian-installer" || component.ends_with("/debian-installer") {
            continue;
        }
        let from_prefix = format!("dists/{}/{}", s.suite, entry.path);
        if entry.path.starts_with('/') || lexically_inside(&s.prefix, &from_prefix).is_none() {
            warnings.push(warn(
                release_path.clone(),
                format!(
                    "index path leaves the repository, not opened: {}",
                    entry.path
                ),
            ));
            continue;
        }
        match group_of.get(&(component, arch)) {
            Some(&i) => groups[i].1.push((entry, compression)),
            None => {
                group_of.insert((component, arch), groups.len());
                groups.push(((component, arch), vec![(entry, compression)]));
            }
        }
    }
    let release_id = format!("{}__{}", safe_id(&s.prefix), safe_id(&s.suite));
    for ((component, arch), mut candidates) in groups {
        candidates.sort_by(|a, b| {
            (compression_rank(a.1), &a.0.path).cmp(&(compression_rank(b.1), &b.0.path))
        });
        let mut chosen = None;
        for (entry, compression) in candidates {
            if compression == "zst" {
                continue;
            }
            match confine.is_file(&suite_dir.join(&entry.path)) {
                Ok(true) => {
                    chosen = Some((entry, compression));
                    break;
                }
                Ok(false) => {}
                Err(_) => warnings.push(warn(
                    pathlib_join(&suite_rel, &entry.path),
                    OUTSIDE_MESSAGE.to_owned(),
                )),
            }
        }
        let Some((entry, compression)) = chosen else {
            continue;
        };
        let metadata_path = pathlib_join(&suite_rel, &entry.path);
        let file = suite_dir.join(&entry.path);
        let (sha256, size) = match hash_file(confine, &file) {
            Ok(found) => found,
            Err(OpenError::Outside) => {
                warnings.push(warn(metadata_path, OUTSIDE_MESSAGE.to_owned()));
                continue;
            }
            Err(OpenError::Io(e)) => {
                let reason = os_error_text(&e, &file);
                warnings.push(warn(
                    metadata_path,
                    format!("failed to read metadata file: {reason}"),
                ));
                continue;
            }
        };
        repos.push(Repository::Apt(AptRepository {
            id: format!("{release_id}__{}__{}", safe_id(component), safe_id(arch)),
            kind: "apt",
            release_id: release_id.clone(),
            prefix: s.prefix.clone(),
            suite: s.suite.clone(),
            component: component.to_owned(),
            arch: arch.to_owned(),
            index_kind: "binary-packages",
            base_path: s.prefix.clone(),
            release_path: release_path.clone(),
            metadata_path,
            metadata_compression: compression,
            release_checksum_type: checksum_type,
            release_checksum: entry.checksum.clone(),
            release_size: entry.size,
            metadata_sha256: sha256,
            metadata_size: size,
            status: "ok",
        }));
    }
    if repos.is_empty() {
        return (None, repos, warnings);
    }
    let release_entry = AptRelease {
        id: release_id,
        kind: "apt-release",
        prefix: s.prefix.clone(),
        suite: s.suite.clone(),
        release_path,
        release_suite: release.field("Suite"),
        codename: release.field("Codename"),
        origin: release.field("Origin"),
        label: release.field("Label"),
        version: release.field("Version"),
        release_date: release.field("Date"),
        architectures: release.list_field("Architectures"),
        components: release.list_field("Components"),
    };
    (Some(release_entry), repos, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_paths() {
        crate::testing::assert_cases(
            parse_index_path,
            &[
                (
                    "main/binary-amd64/Packages.xz",
                    Some(("main", "amd64", "xz")),
                ),
                (
                    "updates/main/binary-arm64/Packages",
                    Some(("updates/main", "arm64", "plain")),
                ),
                ("/binary-amd64/Packages", None),
                ("main/binary-/Packages", None),
                ("main/binary-amd64/Packages.lz4", None),
                ("main/source/Sources.xz", None),
            ],
        );
    }

    #[test]
    fn release_parsing_follows_the_spec() {
        let text = "Origin: A\nLabel:\n  more\n\n  label\nSHA256:\n 00 1 main/binary-amd64/Packages\n bad line\n 00 x p\nSuite: s\n-----BEGIN PGP SIGNATURE-----\nCodename: no\n";
        let release = ReleaseFile::parse(text);
        assert_eq!(release.field("Label").as_deref(), Some("more label"));
        assert_eq!(release.field("Suite").as_deref(), Some("s"));
        assert_eq!(release.field("Codename"), None);
        let (kind, entries) = release.best_checksums().expect("sha256 entries");
        assert_eq!(kind, "SHA256");
        assert_eq!(entries.len(), 1);
        assert!(ReleaseFile::parse("SHA256:\n").is_empty());
        assert!(ReleaseFile::parse("# c\n  orphan\n").is_empty());
    }
}
