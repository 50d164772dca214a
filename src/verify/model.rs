//! The data model of `verify.json` (schema `dist-mirror.verify.v1`,
//! docs/metadata.md, "verify.json"): the [`Report`], one [`RepoReport`] per
//! repository, and the [`Problem`]s found.

use serde::{Deserialize, Serialize};

/// The schema name written in [`Report::schema`].
pub const SCHEMA: &str = "dist-mirror.verify.v1";

/// At most this many problems are listed per repository (`problems_count`
/// keeps the full count).
pub const MAX_LISTED_PROBLEMS: usize = 1000;

/// What kind of problem a [`Problem`] is (its `problem` key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// A file listed by the metadata does not exist (or is not a regular file).
    Missing,
    /// A file has another size than the metadata says.
    SizeMismatch,
    /// A file has another checksum than the metadata says.
    ChecksumMismatch,
    /// An index the metadata needs (a `Packages` variant, a repomd `data`
    /// file, a pkglist) is missing.
    IndexMissing,
    /// A signature is missing or does not verify against the keyring.
    SignatureInvalid,
    /// A file could not be read or parsed.
    Unreadable,
    /// A path from the metadata leaves the repository (or uses `xml:base`);
    /// it was never read.
    OutsideTree,
    /// The repository disappeared or lost too many packages since the
    /// previous report.
    Shrunk,
}

impl ProblemKind {
    /// The name as written in the report (`size_mismatch`).
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::Missing => "missing",
            ProblemKind::SizeMismatch => "size_mismatch",
            ProblemKind::ChecksumMismatch => "checksum_mismatch",
            ProblemKind::IndexMissing => "index_missing",
            ProblemKind::SignatureInvalid => "signature_invalid",
            ProblemKind::Unreadable => "unreadable",
            ProblemKind::OutsideTree => "outside_tree",
            ProblemKind::Shrunk => "shrunk",
        }
    }
}

/// One problem: `{path, problem, expected, actual}`. `path` is relative to
/// the scan root (or, for a path that leaves the repository, as written in
/// the metadata); `expected`/`actual` are texts (sizes in bytes, checksums
/// as `TYPE:hex`), `null` when not applicable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// The file concerned.
    pub path: String,
    /// The kind.
    pub problem: ProblemKind,
    /// What the metadata says.
    pub expected: Option<String>,
    /// What was found.
    pub actual: Option<String>,
}

impl Problem {
    /// `unreadable` at `path`, the error text as its `actual`.
    pub fn unreadable(path: impl Into<String>, why: impl std::fmt::Display) -> Problem {
        Problem::new(path, ProblemKind::Unreadable, None, Some(why.to_string()))
    }

    /// A problem with optional expected/actual texts.
    pub fn new(
        path: impl Into<String>,
        problem: ProblemKind,
        expected: Option<String>,
        actual: Option<String>,
    ) -> Problem {
        Problem {
            path: path.into(),
            problem,
            expected,
            actual,
        }
    }
}

/// The result for one repository (a catalog entry: same `id`, `type`, `prefix`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RepoReport {
    /// The catalog's id.
    pub id: String,
    /// `apt`, `rpm` or `apt-rpm`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Top-level directory.
    pub prefix: String,
    /// `ok` or `failed`.
    pub status: String,
    /// Packages listed by the index.
    pub packages: u64,
    /// Files whose existence and size were checked (packages and indexes).
    pub files_checked: u64,
    /// Bytes read to compute checksums of package files.
    pub bytes_hashed: u64,
    /// The first [`MAX_LISTED_PROBLEMS`] problems.
    pub problems: Vec<Problem>,
    /// How many problems there were in all.
    pub problems_count: u64,
}

impl RepoReport {
    /// An empty, ok report for a repository.
    pub fn new(id: &str, kind: &str, prefix: &str) -> RepoReport {
        RepoReport {
            id: id.to_owned(),
            kind: kind.to_owned(),
            prefix: prefix.to_owned(),
            status: "ok".to_owned(),
            packages: 0,
            files_checked: 0,
            bytes_hashed: 0,
            problems: Vec::new(),
            problems_count: 0,
        }
    }

    /// Records a problem (listed while fewer than [`MAX_LISTED_PROBLEMS`]).
    pub fn add(&mut self, problem: Problem) {
        self.problems_count += 1;
        self.status = "failed".to_owned();
        if self.problems.len() < MAX_LISTED_PROBLEMS {
            self.problems.push(problem);
        }
    }
}

/// Sums over every repository.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Totals {
    /// Repositories checked (and disappeared ones).
    pub repositories: u64,
    /// Of them, with at least one problem.
    pub repositories_failed: u64,
    /// Packages listed.
    pub packages: u64,
    /// Files checked.
    pub files_checked: u64,
    /// Bytes hashed.
    pub bytes_hashed: u64,
    /// Problems in all.
    pub problems: u64,
}

/// The whole `verify.json` document.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// UTC time, as the catalog writes `generated_at`.
    pub generated_at: String,
    /// The scan root as given (normalised as the catalog does).
    pub scan_root: String,
    /// `none`, `changed` or `all`.
    pub deep: String,
    /// `ok` when no repository has a problem, else `failed`.
    pub status: String,
    /// Signature checks: `checked` (some prefix had a keyring) or
    /// `not_checked` (no keyring given).
    pub signatures: String,
    /// Sums.
    pub totals: Totals,
    /// One entry per repository, sorted by id.
    pub repositories: Vec<RepoReport>,
}

impl Report {
    /// Recomputes `totals` and `status` from the repositories.
    pub fn finish(&mut self) {
        let mut t = Totals::default();
        for r in &self.repositories {
            t.repositories += 1;
            t.repositories_failed += u64::from(r.status != "ok");
            t.packages += r.packages;
            t.files_checked += r.files_checked;
            t.bytes_hashed += r.bytes_hashed;
            t.problems += r.problems_count;
        }
        self.status = if t.repositories_failed == 0 {
            "ok"
        } else {
            "failed"
        }
        .to_owned();
        self.totals = t;
    }
}
