//! The data model of `repo_catalog.json` (schema `dist-mirror.repo-catalog.v1`,
//! docs/metadata.md): the top-level [`Catalog`], its APT releases, the three
//! kinds of [`Repository`] entries and the [`Warning`]s.
//!
//! Optional keys are `Option`s that are left out of the JSON when `None`; keys
//! that the contract writes as `null` are `Option<Option<_>>` (outer `None`:
//! key absent; `Some(None)`: `null`). All paths are relative to the scan root
//! with `/` separators; sizes are bytes; `sha256` values are lower-case hex.

use serde::{Serialize, Serializer};

/// The schema name written in [`Catalog::schema`].
pub const SCHEMA: &str = "dist-mirror.repo-catalog.v1";

/// A repository format the catalog can discover.
///
/// Ordered (and serialised) by its name: `apt` < `apt-rpm` < `rpm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Format {
    /// Debian/Ubuntu archives: `<prefix>/dists/<suite>/{InRelease,Release}`.
    Apt,
    /// ALT Linux apt-rpm trees: `.../base/pkglist.<component>[.xz|.gz|.bz2]`.
    AptRpm,
    /// createrepo trees: `.../repodata/repomd.xml`.
    Rpm,
}

impl Format {
    /// All formats, in their sorted order (the default selection).
    pub const ALL: [Format; 3] = [Format::Apt, Format::AptRpm, Format::Rpm];

    /// The format's name as written in the catalog: `apt`, `apt-rpm`, `rpm`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Apt => "apt",
            Format::AptRpm => "apt-rpm",
            Format::Rpm => "rpm",
        }
    }

    /// Resolves requested format names: lower-cased, de-duplicated, sorted; no
    /// names selects [`Format::ALL`].
    ///
    /// # Errors
    /// [`UnsupportedFormats`] naming every unknown name (lower-cased, sorted,
    /// de-duplicated).
    pub fn parse_list<S: AsRef<str>>(names: &[S]) -> Result<Vec<Format>, UnsupportedFormats> {
        if names.is_empty() {
            return Ok(Format::ALL.to_vec());
        }
        let mut formats = Vec::new();
        let mut unknown = Vec::new();
        for name in names {
            let lower = name.as_ref().to_lowercase();
            match lower.as_str() {
                "apt" => formats.push(Format::Apt),
                "apt-rpm" => formats.push(Format::AptRpm),
                "rpm" => formats.push(Format::Rpm),
                _ => unknown.push(lower),
            }
        }
        if !unknown.is_empty() {
            unknown.sort();
            unknown.dedup();
            return Err(UnsupportedFormats(unknown));
        }
        formats.sort();
        formats.dedup();
        Ok(formats)
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Format {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Requested format names that are not `apt`, `rpm` or `apt-rpm` (lower-cased,
/// sorted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported catalog formats: {} (supported: apt, apt-rpm, rpm)", .0.join(", "))]
pub struct UnsupportedFormats(pub Vec<String>);

/// The whole `repo_catalog.json` document.
#[derive(Debug, Clone, Serialize)]
pub struct Catalog {
    /// Always [`SCHEMA`].
    pub schema: &'static str,
    /// The enabled formats, sorted.
    pub formats: Vec<Format>,
    /// The shard (host) this catalog describes.
    pub shard: String,
    /// UTC time of generation, ISO 8601 with microseconds and `Z`, the
    /// fraction left out when zero: `2026-06-03T12:00:00.123456Z`.
    pub generated_at: String,
    /// The scan root as given, normalised as Python's `pathlib`
    /// does (no trailing `/`, no `//`, no `.` components; `..` kept).
    pub scan_root: String,
    /// APT releases (suites with at least one index), sorted by (prefix, suite).
    pub apt_releases: Vec<AptRelease>,
    /// All repositories, sorted by [`Repository::sort_key`].
    pub repositories: Vec<Repository>,
    /// Problems found on the way, sorted by (format, prefix, path, message).
    pub warnings: Vec<Warning>,
}

/// A problem met while cataloguing: `{format, prefix, path, message}`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Warning {
    /// `apt`, `apt-rpm` or `rpm`.
    pub format: &'static str,
    /// The top-level directory the problem is in.
    pub prefix: String,
    /// The file or directory concerned, relative to the scan root.
    pub path: String,
    /// What is wrong (stable text; parse errors end with the parser's reason).
    pub message: String,
}

/// An APT release: one suite directory with a usable Release/InRelease file
/// (Debian repository format, <https://wiki.debian.org/DebianRepository/Format>).
#[derive(Debug, Clone, Serialize)]
pub struct AptRelease {
    /// `safe_id(prefix)__safe_id(suite)`.
    pub id: String,
    /// Always `apt-release`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Top-level directory.
    pub prefix: String,
    /// Directory name under `<prefix>/dists/`.
    pub suite: String,
    /// `<prefix>/dists/<suite>/InRelease` or `.../Release`.
    pub release_path: String,
    /// The `Suite` field, when non-empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release_suite: Option<String>,
    /// The `Codename` field, when non-empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub codename: Option<String>,
    /// The `Origin` field, when non-empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// The `Label` field, when non-empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The `Version` field, when non-empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The `Date` field, when non-empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release_date: Option<String>,
    /// The `Architectures` field split on whitespace, when non-empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub architectures: Option<Vec<String>>,
    /// The `Components` field split on whitespace, when non-empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub components: Option<Vec<String>>,
}

/// One catalog entry; serialised as the inner object (its `type` key tells
/// which kind it is).
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Repository {
    /// `type` `apt`: one binary Packages index of an APT suite.
    Apt(AptRepository),
    /// `type` `rpm`: one createrepo repository.
    Rpm(RpmRepository),
    /// `type` `apt-rpm`: one ALT apt-rpm component index.
    AptRpm(AptRpmRepository),
}

impl Repository {
    /// The sort key of `repositories`: (type, prefix, suite, component, arch,
    /// base_path, metadata_path or else repomd_path), a missing key as `""`.
    pub fn sort_key(&self) -> [&str; 7] {
        match self {
            Repository::Apt(r) => [
                r.kind,
                &r.prefix,
                &r.suite,
                &r.component,
                &r.arch,
                &r.base_path,
                &r.metadata_path,
            ],
            Repository::Rpm(r) => [
                r.kind,
                &r.prefix,
                "",
                "",
                r.arch.as_deref().unwrap_or(""),
                &r.base_path,
                &r.repomd_path,
            ],
            Repository::AptRpm(r) => [
                r.kind,
                &r.prefix,
                "",
                &r.component,
                r.arch.as_deref().unwrap_or(""),
                &r.base_path,
                &r.metadata_path,
            ],
        }
    }
}

/// An APT binary index: `<prefix>/dists/<suite>/<component>/binary-<arch>/Packages[.xz|.gz|.bz2]`.
#[derive(Debug, Clone, Serialize)]
pub struct AptRepository {
    /// `safe_id(prefix)__safe_id(suite)__safe_id(component)__safe_id(arch)`.
    pub id: String,
    /// Always `apt`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The id of the [`AptRelease`].
    pub release_id: String,
    /// Top-level directory.
    pub prefix: String,
    /// Directory name under `<prefix>/dists/`.
    pub suite: String,
    /// Component as listed in the Release file (may contain `/`).
    pub component: String,
    /// Architecture from `binary-<arch>`.
    pub arch: String,
    /// Always `binary-packages`.
    pub index_kind: &'static str,
    /// The prefix.
    pub base_path: String,
    /// The Release/InRelease file the entry comes from.
    pub release_path: String,
    /// `<prefix>/dists/<suite>/<path from the Release file>`, normalised as `pathlib` does (`.` dropped, `..` kept).
    pub metadata_path: String,
    /// `xz`, `gz`, `bz2`, `zst` or `plain`.
    pub metadata_compression: &'static str,
    /// `SHA256`, `SHA512`, `SHA1` or `MD5Sum`.
    pub release_checksum_type: &'static str,
    /// Checksum from the Release file.
    pub release_checksum: String,
    /// Size in bytes from the Release file.
    pub release_size: i64,
    /// SHA-256 of the file on disk.
    pub metadata_sha256: String,
    /// Size in bytes of the file on disk.
    pub metadata_size: u64,
    /// Always `ok`.
    pub status: &'static str,
}

/// One `<data>` element of a repomd.xml (createrepo repomd format,
/// <https://github.com/rpm-software-management/createrepo_c>, `repomd.xml`).
#[derive(Debug, Clone, Serialize)]
pub struct RpmMetadata {
    /// The `type` attribute (`primary`, `filelists`, `other`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    /// `ok`, `missing` or `checksum_mismatch`.
    pub status: &'static str,
    /// `location@href`, trimmed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// `base_path/href`, normalised as `pathlib` does (`.` dropped, `..` kept).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// `checksum@type` (`null` when the element has no type attribute).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum_type: Option<Option<String>>,
    /// `checksum` text, trimmed, when non-empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
    /// `open-checksum@type` (`null` when the element has no type attribute).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_checksum_type: Option<Option<String>>,
    /// `open-checksum` text, trimmed, when non-empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_checksum: Option<String>,
    /// `size` in bytes, when an integer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,
    /// `open-size` in bytes, when an integer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_size: Option<i64>,
    /// `timestamp` (seconds since the epoch), when an integer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
    /// Size in bytes of the file on disk, when it exists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata_size: Option<u64>,
    /// SHA-256 of the file on disk, when it exists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata_sha256: Option<String>,
}

/// A createrepo repository: a directory holding `repodata/repomd.xml`.
#[derive(Debug, Clone, Serialize)]
pub struct RpmRepository {
    /// `safe_path_id(base_path)`.
    pub id: String,
    /// Always `rpm`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// First component of `base_path`.
    pub prefix: String,
    /// The directory holding `repodata/` (`.` for the scan root).
    pub base_path: String,
    /// `base_path/repodata/repomd.xml`, normalised as `pathlib` does (`.` dropped, `..` kept).
    pub repomd_path: String,
    /// SHA-256 of repomd.xml (absent only when it could not be read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repomd_sha256: Option<String>,
    /// Size in bytes of repomd.xml (absent only when it could not be read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repomd_size: Option<u64>,
    /// The `<data>` items, sorted by (type, location).
    pub metadata: Vec<RpmMetadata>,
    /// `ok`, `partial`, `missing_primary` or `broken`.
    pub status: &'static str,
    /// Distribution, from the layout table of docs/metadata.md.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distro: Option<String>,
    /// Release, from the layout table.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    /// Repository name, from the layout table.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    /// Architecture, from the layout table.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// The primary item's `path`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary_path: Option<String>,
    /// The primary item's `checksum_type`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary_checksum_type: Option<Option<String>>,
    /// The primary item's `checksum`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary_checksum: Option<String>,
    /// The primary item's `size`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary_size: Option<i64>,
}

/// An ALT Linux apt-rpm component index: `<base_path>/base/pkglist.<component>[.xz|.gz|.bz2]`
/// (apt-rpm repository layout as written by ALT's `genbasedir`).
#[derive(Debug, Clone, Serialize)]
pub struct AptRpmRepository {
    /// `safe_path_id(base_path/component)`.
    pub id: String,
    /// Always `apt-rpm`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Top-level directory.
    pub prefix: String,
    /// The parent of `base/`.
    pub base_path: String,
    /// `base_path/base/pkglist.<component>[...]`.
    pub metadata_path: String,
    /// `xz`, `gz`, `bz2` or `none`.
    pub metadata_compression: &'static str,
    /// SHA-256 of the pkglist file.
    pub metadata_sha256: String,
    /// Size in bytes of the pkglist file.
    pub metadata_size: u64,
    /// Component (`classic`, `gostcrypto`, ...).
    pub component: String,
    /// `[base_path/RPMS.<component>]` when that directory exists, else `[]`.
    pub package_dir_candidates: Vec<String>,
    /// Always `apt-rpm-pkglist`.
    pub index_kind: &'static str,
    /// Always `ok`.
    pub status: &'static str,
    /// `base/release.<component>` if a file, else `base/release` if a file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release_path: Option<String>,
    /// `base/release` when a file and not already `release_path`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release_common_path: Option<String>,
    /// The prefix.
    pub distro: String,
    /// Branch (`p10`, `Sisyphus`, ...), from the layout of `base_path`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// `branch` when the layout has a `branch` directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    /// Architecture, when a known one appears in the layout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
}
