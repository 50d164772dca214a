//! `dist-mirror.yaml`: loading, validation and the effective configuration
//! (docs/config.md).
//!
//! [`load`] reads the file, checks every rule, and returns a [`Config`] with
//! every default applied and every syncer turned into its container
//! ([`Syncer`]). All problems of a file are reported together in one
//! [`ConfigError::Invalid`], each naming its key path (`syncer[2].config`),
//! line and column. Unknown keys are accepted and listed in
//! [`Config::warnings`].

mod checks;
mod environment;
pub mod metrics;
mod pipeline;
mod reader;
mod replication;
mod retention;
mod syncer;
pub mod verify;
pub mod yaml;

use std::path::{Path, PathBuf};

use marked_yaml::Node;

pub use environment::Environment;
pub use pipeline::{PipelineSettings, RETRY_WHEN_VALUES, Retry, STAGE_NAMES};
pub use reader::{Finding, Position, Reader, check_relative, is_none_like, join, parse_bool};
pub use retention::Retention;
pub use syncer::{Syncer, SyncerType, Volume, safe_name};

use crate::logging::Level;
use crate::process::Tool;

/// The config path used when neither `--config` nor `MIRRORER_CONFIG` is given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/dist-mirror/dist-mirror.yaml";

/// The effective configuration: every default applied, every rule checked.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this was loaded from, as given.
    pub path: PathBuf,
    /// `log.log_level`.
    pub log_level: Level,
    /// `mirror`.
    pub mirror: Mirror,
    /// `replication`.
    pub replication: Replication,
    /// `antivirus`.
    pub antivirus: Antivirus,
    /// `repo.paths`, flattened in file order.
    pub repo_paths: Vec<RepoPath>,
    /// The syncers, each with its container: from `syncer`, or from the
    /// legacy `containers` list when `syncer` is empty.
    pub syncers: Vec<Syncer>,
    /// `pipeline`: how the child pipeline is rendered.
    pub pipeline: PipelineSettings,
    /// `retention`: what `prune` keeps; `None`: nothing is pruned.
    pub retention: Option<Retention>,
    /// `verify`: settings of the `verify` stage.
    pub verify: verify::VerifySettings,
    /// `tools`: external program name -> path, as written in the file
    /// (defaults and `MIRRORER_TOOL_<NAME>` overrides are applied where the
    /// programs are run).
    pub tools: Vec<(String, String)>,
    /// `metrics`: the Prometheus textfile ([`metrics`]).
    pub metrics: metrics::Metrics,
    /// Unknown keys and ignored sections, one finding each.
    pub warnings: Vec<Finding>,
}

/// `mirror`: where the mirror and this tool's files live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    /// `workdir` (default `/opt/dist-mirror`): holds `state/`, `repo/` and `metadata/`.
    pub workdir: PathBuf,
    /// `syncer_dir` (default `/etc/dist-mirror`): the syncers' config files.
    pub syncer_dir: PathBuf,
    /// `zfs_mirror_dataset` (default `distpool/mirror`): a ZFS dataset name (no `@`).
    pub zfs_mirror_dataset: String,
    /// `zfs_mirror_dir` (default `/distpool/mirror`): the dataset's mountpoint.
    pub zfs_mirror_dir: PathBuf,
    /// `kesl_max_workers` (default 4): parallel antivirus batches, 1..=64.
    pub kesl_max_workers: u32,
}

impl Mirror {
    /// `<workdir>/state`: the lock, the current snapshot, antivirus state.
    pub fn state_dir(&self) -> PathBuf {
        self.workdir.join("state")
    }

    /// `<workdir>/repo`: the published tree.
    pub fn repo_dir(&self) -> PathBuf {
        self.workdir.join("repo")
    }

    /// `<workdir>/metadata`: inventory and catalogs.
    pub fn metadata_dir(&self) -> PathBuf {
        self.workdir.join("metadata")
    }
}

/// `replication`: where snapshots are replicated and published remotely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replication {
    /// `replica_host`: host name of the replica; none means no remote side.
    pub replica_host: Option<String>,
    /// `ssh_user`: required when a remote side is used.
    pub ssh_user: Option<String>,
    /// `ssh_key` (default `<workdir>/.ssh/id_rsa`).
    pub ssh_key: PathBuf,
    /// `skip_remote` (default `false`).
    pub skip_remote: bool,
    /// `replica_dataset` (default: `mirror.zfs_mirror_dataset`): the
    /// dataset on the replica that `replicate` sends to, a ZFS dataset
    /// name ([`check_dataset_name`]).
    pub replica_dataset: String,
    /// `ssh_options` (default none): ssh(1) arguments for syncoid and the
    /// remote rsync, e.g. `[-i, /root/.ssh/key, -o, StrictHostKeyChecking=yes]`
    /// (see [`crate::backends::ssh`] for what syncoid can take).
    pub ssh_options: Vec<String>,
}

/// `antivirus`: the scan of changed files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Antivirus {
    /// `fail_on_threats` (default `false`): exit 5 when threats are found.
    pub fail_on_threats: bool,
    /// `batch_size` (default `100`): files per scanner call, >= 1.
    pub batch_size: u64,
    /// `engine` (default `kesl`): which scanner `av-scan` drives.
    pub engine: AvEngine,
    /// `clamav_command` (default `clamdscan`): the ClamAV program (engine `clamav`).
    pub clamav_command: ClamavCommand,
    /// `clamav_args` (default: none): extra arguments put before the files of every
    /// ClamAV call (`--config-file=...`, `--max-filesize=...`), as written.
    pub clamav_args: Vec<String>,
}

/// `antivirus.engine`: the antivirus engine of `av-scan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AvEngine {
    /// Kaspersky Endpoint Security for Linux through `kesl-control`.
    Kesl,
    /// ClamAV through `clamdscan` or `clamscan` ([`ClamavCommand`]).
    Clamav,
}

impl AvEngine {
    /// The config value: `kesl` or `clamav`.
    pub fn name(self) -> &'static str {
        match self {
            AvEngine::Kesl => "kesl",
            AvEngine::Clamav => "clamav",
        }
    }
}

/// `antivirus.clamav_command`: which ClamAV scanner runs the batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClamavCommand {
    /// `clamdscan`: the client of a running `clamd` (signatures loaded once;
    /// the production choice).
    Clamdscan,
    /// `clamscan`: standalone; loads the signature database on every call.
    Clamscan,
}

impl ClamavCommand {
    /// The config value: `clamdscan` or `clamscan`.
    pub fn name(self) -> &'static str {
        match self {
            ClamavCommand::Clamdscan => "clamdscan",
            ClamavCommand::Clamscan => "clamscan",
        }
    }
}

/// One mapping of `repo.paths`: `<source_base>/<source_name>` of a snapshot
/// is published as `<public_prefix>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoPath {
    /// Relative to a snapshot root.
    pub source_base: String,
    /// Relative to `source_base`.
    pub source_name: String,
    /// The entry's name in the published snapshot.
    pub public_prefix: String,
}

/// Why a configuration file could not be used. Every variant exits 3.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file is missing or unreadable.
    #[error("could not read configuration file {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid YAML, or breaks a rule of the YAML layer
    /// ([`yaml`]: a duplicate key, a forbidden character, an unknown tag,
    /// too deep, too many aliases).
    #[error("configuration file {} is not valid YAML at {position}: {message}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// Where the parser stopped.
        position: Position,
        /// The parser's message.
        message: String,
    },
    /// The file is YAML but breaks rules of docs/config.md.
    #[error("configuration file {} is invalid ({} problem{})", path.display(), problems.len(), if problems.len() == 1 { "" } else { "s" })]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Every problem found, in file order.
        problems: Vec<Finding>,
        /// Warnings found on the way (unknown keys).
        warnings: Vec<Finding>,
    },
}

/// Loads and validates the configuration file at `path`.
///
/// # Errors
/// [`ConfigError::Read`] if the file cannot be read, [`ConfigError::Syntax`]
/// if it is not YAML, [`ConfigError::Invalid`] with every problem otherwise.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let bytes = read_bounded(path, "; a configuration file is expected to be far smaller")?;
    let text = yaml::decode(&bytes).map_err(|e| syntax(path, e))?;
    from_str(text, path)
}

/// The bytes of the YAML file at `path` (`dist-mirror.yaml`, `fleet.yaml`),
/// at most [`yaml::MAX_FILE_BYTES`]: at most one byte over the limit is
/// read, so a huge file or a device that never ends costs bounded memory.
///
/// # Errors
/// [`ConfigError::Read`] when the file cannot be read or is over the limit
/// (the message "the file is larger than N MiB" followed by `too_large`).
pub(crate) fn read_bounded(path: &Path, too_large: &str) -> Result<Vec<u8>, ConfigError> {
    use std::io::Read as _;
    let read_error = |source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(yaml::MAX_FILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(read_error)?;
    if bytes.len() as u64 > yaml::MAX_FILE_BYTES {
        return Err(read_error(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "the file is larger than {} MiB{too_large}",
                yaml::MAX_FILE_BYTES >> 20
            ),
        )));
    }
    Ok(bytes)
}

/// Validates configuration text; `path` is used in messages and as
/// [`Config::path`]. A leading byte-order mark is skipped.
///
/// # Errors
/// As [`load`], without the read error.
pub fn from_str(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let root = parse(text, path)?;
    let mut r = Reader::default();
    let root_map = r.mapping(root.as_ref(), "(top level)");
    if let Some(m) = root_map {
        r.unknown_keys(
            m,
            "",
            &[
                "log",
                "mirror",
                "replication",
                "antivirus",
                "repo",
                "syncer",
                "containers",
                "pipeline",
                "retention",
                "tools",
                "metrics",
                "verify",
            ],
        );
    }
    let get = |key: &str| root_map.and_then(|m| m.get_node(key));

    let log = r.section(get("log"), "log", &["log_level"]);
    let log_level = match r.opt_str(log, "log_level", "log") {
        None => Level::Info,
        Some((text, span)) => match text.parse::<Level>() {
            Ok(level) => level,
            Err(_) => {
                r.error(
                    "log.log_level",
                    &span,
                    format!("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, found {text:?}"),
                );
                Level::Info
            }
        },
    };

    let mirror = read_mirror(&mut r, get("mirror"));
    let replication = read_replication(&mut r, get("replication"), &mirror);
    let antivirus = read_antivirus(&mut r, get("antivirus"));
    let repo = r.section(get("repo"), "repo", &["paths"]);
    let repo_paths = read_repo_paths(&mut r, repo.and_then(|m| m.get_node("paths")));
    let syncers = syncer::read_syncers(&mut r, get("syncer"), get("containers"), &mirror);
    let pipeline = pipeline::read(&mut r, get("pipeline"));
    let retention = retention::read(&mut r, get("retention"));
    let tools = read_tools(&mut r, get("tools"));
    let metrics = metrics::read(&mut r, get("metrics"));
    let verify = verify::read(&mut r, get("verify"));
    if let Some(m) = root_map {
        checks::values(&mut r, m);
    }

    if r.errors.is_empty() {
        Ok(Config {
            path: path.to_path_buf(),
            log_level,
            mirror,
            replication,
            antivirus,
            repo_paths,
            syncers,
            pipeline,
            retention,
            tools,
            metrics,
            verify,
            warnings: r.warnings,
        })
    } else {
        r.errors
            .sort_by_key(|f| (f.position.line, f.position.column));
        Err(ConfigError::Invalid {
            path: path.to_path_buf(),
            problems: r.errors,
            warnings: r.warnings,
        })
    }
}

fn parse(text: &str, path: &Path) -> Result<Option<Node>, ConfigError> {
    let root = yaml::parse(text).map_err(|e| syntax(path, e))?;
    match &root {
        Some(node @ Node::Sequence(_)) => Err(syntax(
            path,
            yaml::SyntaxError {
                position: Position::of(node.span()),
                message: "the top level must be a mapping".to_owned(),
            },
        )),
        _ => Ok(root),
    }
}

/// The [`ConfigError::Syntax`] of the YAML file at `path`.
pub(crate) fn syntax(path: &Path, e: yaml::SyntaxError) -> ConfigError {
    ConfigError::Syntax {
        path: path.to_path_buf(),
        position: e.position,
        message: e.message,
    }
}

fn read_mirror(r: &mut Reader, node: Option<&Node>) -> Mirror {
    let m = r.section(
        node,
        "mirror",
        &[
            "workdir",
            "syncer_dir",
            "zfs_mirror_dataset",
            "zfs_mirror_dir",
            "kesl_max_workers",
        ],
    );
    let dataset = match r.opt_str(m, "zfs_mirror_dataset", "mirror") {
        None => "distpool/mirror".to_owned(),
        Some((text, span)) => {
            if text.contains('@') {
                r.error(
                    "mirror.zfs_mirror_dataset",
                    &span,
                    format!("must name a dataset, not a snapshot (no `@`): {text:?}"),
                );
            }
            text
        }
    };
    Mirror {
        workdir: PathBuf::from(r.string(m, "workdir", "mirror", "/opt/dist-mirror")),
        syncer_dir: PathBuf::from(r.string(m, "syncer_dir", "mirror", "/etc/dist-mirror")),
        zfs_mirror_dataset: dataset,
        zfs_mirror_dir: PathBuf::from(r.string(m, "zfs_mirror_dir", "mirror", "/distpool/mirror")),
        kesl_max_workers: u32::try_from(r.integer(m, "kesl_max_workers", "mirror", 4, (1, 64)))
            .unwrap_or(4),
    }
}

fn read_antivirus(r: &mut Reader, node: Option<&Node>) -> Antivirus {
    let av = r.section(
        node,
        "antivirus",
        &[
            "fail_on_threats",
            "batch_size",
            "engine",
            "clamav_command",
            "clamav_args",
        ],
    );
    let engine = match r.opt_str(av, "engine", "antivirus") {
        None => AvEngine::Kesl,
        Some((text, span)) => match text.to_ascii_lowercase().as_str() {
            "kesl" => AvEngine::Kesl,
            "clamav" => AvEngine::Clamav,
            _ => {
                r.error(
                    "antivirus.engine",
                    &span,
                    format!("must be one of kesl, clamav, found {text:?}"),
                );
                AvEngine::Kesl
            }
        },
    };
    let clamav_command = match r.opt_str(av, "clamav_command", "antivirus") {
        None => ClamavCommand::Clamdscan,
        Some((text, span)) => match text.to_ascii_lowercase().as_str() {
            "clamdscan" => ClamavCommand::Clamdscan,
            "clamscan" => ClamavCommand::Clamscan,
            _ => {
                r.error(
                    "antivirus.clamav_command",
                    &span,
                    format!("must be one of clamdscan, clamscan, found {text:?}"),
                );
                ClamavCommand::Clamdscan
            }
        },
    };
    Antivirus {
        fail_on_threats: r.boolean(av, "fail_on_threats", "antivirus", false),
        batch_size: r.integer(av, "batch_size", "antivirus", 100, (1, u64::MAX)),
        engine,
        clamav_command,
        clamav_args: r.string_list(av, "clamav_args", "antivirus"),
    }
}

fn read_replication(r: &mut Reader, node: Option<&Node>, mirror: &Mirror) -> Replication {
    let m = r.section(
        node,
        "replication",
        &[
            "replica_host",
            "ssh_user",
            "ssh_key",
            "skip_remote",
            "replica_dataset",
            "ssh_options",
        ],
    );
    let replica_dataset = match r.opt_str(m, "replica_dataset", "replication") {
        None => mirror.zfs_mirror_dataset.clone(),
        Some((text, span)) => {
            if let Err(why) = check_dataset_name(&text) {
                r.error("replication.replica_dataset", &span, why);
            }
            text
        }
    };
    Replication {
        replica_host: replication::checked_name(r, m, "replica_host"),
        ssh_user: replication::checked_name(r, m, "ssh_user"),
        ssh_key: r
            .opt_str(m, "ssh_key", "replication")
            .map(|(s, _)| PathBuf::from(s))
            .unwrap_or_else(|| mirror.workdir.join(".ssh/id_rsa")),
        skip_remote: r.boolean(m, "skip_remote", "replication", false),
        replica_dataset,
        ssh_options: replication::ssh_options(r, m),
    }
}

/// Checks a ZFS dataset name (zfs(8), "ZFS File System Hierarchy"):
/// `/`-separated non-empty components of ASCII letters, digits and
/// `_ - : .`, the pool name (first component) starting with a letter, no
/// `.`/`..` component. Stricter than ZFS (no blanks), so the name can never
/// be read as an option or shell code by a program it is passed to.
///
/// # Errors
/// Why the name is refused, for a config finding.
pub fn check_dataset_name(name: &str) -> std::result::Result<(), String> {
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Err(format!(
            "must be a ZFS dataset name starting with the pool name (a letter first), found {name:?}"
        ));
    }
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ':' | '.');
    for part in name.split('/') {
        if part.is_empty() || part == "." || part == ".." || !part.chars().all(ok_char) {
            return Err(format!(
                "must be a ZFS dataset name (`/`-separated parts of letters, digits, `_-:.`; no `@`), found {name:?}"
            ));
        }
    }
    Ok(())
}

/// Trims blanks and `/` and checks a `repo.paths` key or value.
fn repo_path_part(
    r: &mut Reader,
    text: &str,
    key: &str,
    span: &marked_yaml::Span,
) -> Option<String> {
    let t = text.trim().trim_matches('/').trim();
    match check_relative(t) {
        Ok(()) => Some(t.to_owned()),
        Err(why) => {
            r.error(key, span, why);
            None
        }
    }
}

/// The public prefixes seen so far, for a check in time linear in their
/// length: `full` holds each prefix, `inner` each proper leading part of
/// one (`a` and `a/b` for `a/b/c`), both by their `/`-separated components
/// (empty and `.` components dropped, as `Path` compares them).
#[derive(Default)]
struct PrefixIndex {
    full: std::collections::HashMap<String, usize>,
    inner: std::collections::HashMap<String, usize>,
}

impl PrefixIndex {
    /// Whether `prefix` equals or nests with an earlier one: how, and the
    /// index of that one. Otherwise records it as entry `index`.
    fn clash(&mut self, prefix: &str, index: usize) -> Option<(&'static str, usize)> {
        let parts: Vec<&str> = prefix
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .collect();
        let whole = parts.join("/");
        if let Some(&at) = self.full.get(&whole) {
            return Some(("is also", at));
        }
        if let Some(&at) = self.inner.get(&whole) {
            return Some(("nests with", at));
        }
        let mut lead = String::new();
        let mut leads = Vec::with_capacity(parts.len());
        for part in &parts[..parts.len().saturating_sub(1)] {
            if !lead.is_empty() {
                lead.push('/');
            }
            lead.push_str(part);
            if let Some(&at) = self.full.get(&lead) {
                return Some(("nests with", at));
            }
            leads.push(lead.clone());
        }
        for lead in leads {
            self.inner.entry(lead).or_insert(index);
        }
        self.full.insert(whole, index);
        None
    }
}

fn read_repo_paths(r: &mut Reader, node: Option<&Node>) -> Vec<RepoPath> {
    let Some(bases) = r.mapping(node, "repo.paths") else {
        return Vec::new();
    };
    let mut out: Vec<(RepoPath, Position)> = Vec::new();
    let mut prefixes = PrefixIndex::default();
    for (base_key, inner) in bases.iter() {
        let base_path = join("repo.paths", base_key.as_str());
        let base = repo_path_part(r, base_key.as_str(), &base_path, base_key.span());
        let Some(names) = r.mapping(Some(inner), &base_path) else {
            continue;
        };
        for (name_key, value) in names.iter() {
            let key = join(&base_path, name_key.as_str());
            let name = repo_path_part(r, name_key.as_str(), &key, name_key.span());
            let prefix = match value {
                Node::Scalar(s) => repo_path_part(r, s.as_str(), &key, s.span()),
                other => {
                    r.error(
                        &key,
                        other.span(),
                        format!("must be a public prefix, found {}", reader::kind(other)),
                    );
                    None
                }
            };
            if let (Some(base), Some(name), Some(prefix)) = (&base, name, prefix) {
                let position = Position::of(value.span());
                if let Some((how, at)) = prefixes.clash(&prefix, out.len()) {
                    let (clash, at_pos): &(RepoPath, Position) = &out[at];
                    r.error(
                        &key,
                        value.span(),
                        format!(
                            "public prefix {prefix:?} {how} the public prefix {:?} of {}/{} (line {})",
                            clash.public_prefix, clash.source_base, clash.source_name, at_pos.line
                        ),
                    );
                    continue;
                }
                out.push((
                    RepoPath {
                        source_base: base.clone(),
                        source_name: name,
                        public_prefix: prefix,
                    },
                    position,
                ));
            }
        }
    }
    out.into_iter().map(|(p, _)| p).collect()
}

fn read_tools(r: &mut Reader, node: Option<&Node>) -> Vec<(String, String)> {
    let Some(map) = r.mapping(node, "tools") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (key, value) in map.iter() {
        let path = join("tools", key.as_str());
        let name = Tool::config_key(key.as_str());
        if Tool::from_name(&name).is_none() {
            let known = Tool::ALL.map(Tool::name).join(", ");
            r.warn(&path, key.span(), format!("unknown tool (known: {known})"));
        }
        if let Some((text, _)) = r.scalar_of(value, &path) {
            out.push((name, text));
        }
    }
    out
}

#[cfg(test)]
mod tests;
