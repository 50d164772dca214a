//! Syncers and the containers derived from them (docs/config.md, `syncer`
//! and the legacy `containers` list).

use std::path::{Path, PathBuf};

use marked_yaml::Node;
use marked_yaml::types::MarkedMappingNode;

use super::Mirror;
use super::reader::{Position, Reader, join, kind};

/// The kinds of syncer, each with its own image and volume layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncerType {
    /// apt-mirror of Debian/Ubuntu archives.
    Apt,
    /// rsync of whole trees.
    Rsync,
    /// dnf reposync of RPM repositories.
    Dnf,
    /// SUSE Repository Mirroring Tool.
    Rmt,
}

impl SyncerType {
    /// The type's name as written in the config: `apt`, `rsync`, `dnf`, `rmt`.
    pub fn name(self) -> &'static str {
        match self {
            SyncerType::Apt => "apt",
            SyncerType::Rsync => "rsync",
            SyncerType::Dnf => "dnf",
            SyncerType::Rmt => "rmt",
        }
    }

    /// The image used when `image` is not set.
    pub fn default_image(self) -> &'static str {
        match self {
            SyncerType::Apt => "docker-registry.d.postgrespro.ru/mirror/aptmirror/apt-mirror2:slim",
            SyncerType::Rsync => "docker-registry.d.postgrespro.ru/infra/rsync_syncer:1.1.3",
            SyncerType::Dnf => "docker-registry.d.postgrespro.ru/infra/dnf_syncer:1.1.2",
            SyncerType::Rmt => "docker-registry.d.postgrespro.ru/infra/rmt_syncer:1.1.10",
        }
    }

    /// Whether `config` and `repos` are required (`Some(true)`) or
    /// forbidden (`Some(false)`) for this type.
    fn files(self) -> (bool, bool) {
        match self {
            SyncerType::Apt => (true, false),
            SyncerType::Rsync => (false, true),
            SyncerType::Dnf | SyncerType::Rmt => (true, true),
        }
    }

    fn parse(text: &str) -> Option<SyncerType> {
        match text.trim().to_ascii_lowercase().as_str() {
            "apt" => Some(SyncerType::Apt),
            "rsync" => Some(SyncerType::Rsync),
            "dnf" => Some(SyncerType::Dnf),
            "rmt" => Some(SyncerType::Rmt),
            _ => None,
        }
    }
}

/// A bind mount of a syncer container.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Volume {
    /// Path on the host.
    pub host: PathBuf,
    /// Path inside the container.
    pub bind: String,
    /// `false` for `rw`, `true` for `ro`.
    pub read_only: bool,
}

impl Volume {
    /// `rw` or `ro`.
    pub fn mode(&self) -> &'static str {
        if self.read_only { "ro" } else { "rw" }
    }
}

/// One syncer with everything needed to run its container.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Syncer {
    /// The syncer type; `None` for an entry of the legacy `containers` list.
    pub kind: Option<SyncerType>,
    /// Container name; unique across syncers.
    pub name: String,
    /// Prefix of the mirror tree this syncer fills; unique across syncers.
    pub prefix: String,
    /// Container image.
    pub image: String,
    /// Container user, `uid:gid` or a name.
    pub user: String,
    /// `config`, relative to `mirror.syncer_dir`.
    pub config: Option<String>,
    /// `repos`, relative to `mirror.syncer_dir`.
    pub repos: Option<String>,
    /// `dest`, relative to `mirror.zfs_mirror_dir`.
    pub dest: Option<String>,
    /// Container environment in file order; values are secrets for logging.
    #[serde(skip)]
    pub environment: Vec<(String, String)>,
    /// Arguments appended to the container's command.
    pub command_args: Vec<String>,
    /// Bind mounts.
    pub volumes: Vec<Volume>,
    /// File the container's output is appended to.
    pub log_file: PathBuf,
}

/// `safe(s)` of docs/config.md: each run of characters outside
/// `[A-Za-z0-9_.-]` becomes `-`, then `-` is trimmed at both ends; an empty
/// result is `default`.
pub fn safe_name(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_run = false;
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
            out.push(c);
            in_run = false;
        } else if !in_run {
            out.push('-');
            in_run = true;
        }
    }
    let trimmed = out.trim_matches('-');
    if trimmed.is_empty() {
        "default".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// The invoking user as `uid:gid`, the default container user.
fn invoking_user() -> String {
    // SAFETY: getuid and getgid cannot fail and touch no memory.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    format!("{uid}:{gid}")
}

fn default_log_file(name: &str) -> PathBuf {
    PathBuf::from(format!("/var/log/syncer/{}.log", safe_name(name)))
}

fn valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn check_environment(
    r: &mut Reader,
    map: Option<&MarkedMappingNode>,
    path: &str,
    env: &[(String, String)],
) {
    let Some(env_map) = map.and_then(|m| m.get_mapping("environment")) else {
        return;
    };
    for key in env_map.keys() {
        if !env.iter().any(|(k, _)| k == key.as_str()) {
            continue;
        }
        if !valid_env_name(key.as_str()) {
            r.error(
                &format!("{path}.environment.{}", key.as_str()),
                key.span(),
                "must be an environment variable name ([A-Za-z_][A-Za-z0-9_]*)",
            );
        }
        // The value goes to the container through an env file.
        if let Some((_, value)) = env.iter().find(|(k, _)| k == key.as_str())
            && let Err(why) = crate::backends::container::check_env_value(key.as_str(), value)
        {
            r.error(
                &format!("{path}.environment.{}", key.as_str()),
                key.span(),
                format!("value {why}"),
            );
        }
    }
}

const SYNCER_KEYS: &[&str] = &[
    "type",
    "image",
    "config",
    "repos",
    "dest",
    "name",
    "prefix",
    "user",
    "environment",
    "command_args",
    "log_file",
];

const CONTAINER_KEYS: &[&str] = &[
    "name",
    "image",
    "prefix",
    "user",
    "environment",
    "volumes",
    "command_args",
    "log_file",
];

/// Reads `syncer` (or, when it is empty, the legacy `containers`), derives
/// every container and checks that names, prefixes and lock files are
/// unique ([`super::checks::unique_syncers`]).
pub(super) fn read_syncers(
    r: &mut Reader,
    syncer_node: Option<&Node>,
    containers_node: Option<&Node>,
    mirror: &Mirror,
) -> Vec<Syncer> {
    let syncer_items = list(r, syncer_node, "syncer");
    let container_items = list(r, containers_node, "containers");
    let mut out: Vec<(Syncer, String, Position, Position)> = Vec::new();
    if !syncer_items.is_empty() {
        if let Some(node) = containers_node.filter(|_| !container_items.is_empty()) {
            r.warn(
                "containers",
                node.span(),
                "ignored: the legacy containers list is used only when syncer is empty",
            );
        }
        for (i, item) in syncer_items.iter().enumerate() {
            let path = format!("syncer[{i}]");
            if let Some(s) = read_syncer(r, item, &path, mirror) {
                out.push(s);
            }
        }
    } else {
        for (i, item) in container_items.iter().enumerate() {
            let path = format!("containers[{i}]");
            if let Some(s) = read_container(r, item, &path) {
                out.push(s);
            }
        }
    }
    super::checks::unique_syncers(r, &out);
    out.into_iter().map(|(s, ..)| s).collect()
}

fn list<'a>(r: &mut Reader, node: Option<&'a Node>, path: &str) -> Vec<&'a Node> {
    match node {
        None => Vec::new(),
        Some(Node::Sequence(items)) => items.iter().collect(),
        Some(Node::Scalar(s)) if super::is_none_like(s.as_str()) => Vec::new(),
        Some(other) => {
            r.error(
                path,
                other.span(),
                format!("must be a list, found {}", kind(other)),
            );
            Vec::new()
        }
    }
}

/// Where a key (or, when absent, its mapping) starts.
fn pos_of(map: &MarkedMappingNode, key: &str) -> Position {
    map.get_node(key)
        .map(|n| Position::of(n.span()))
        .unwrap_or_else(|| Position::of(map.span()))
}

fn read_syncer(
    r: &mut Reader,
    item: &Node,
    path: &str,
    mirror: &Mirror,
) -> Option<(Syncer, String, Position, Position)> {
    let map = r.required_mapping(item, path)?;
    r.unknown_keys(map, path, SYNCER_KEYS);
    let m = Some(map);
    let kind = match r.opt_str(m, "type", path) {
        None => {
            r.error(
                &join(path, "type"),
                map.span(),
                "is required: one of apt, rsync, dnf, rmt",
            );
            None
        }
        Some((text, span)) => {
            let t = SyncerType::parse(&text);
            if t.is_none() {
                r.error(
                    &join(path, "type"),
                    &span,
                    format!("must be one of apt, rsync, dnf, rmt, found {text:?}"),
                );
            }
            t
        }
    };
    let config = r.rel_path(m, "config", path, false);
    let repos = r.rel_path(m, "repos", path, false);
    let dest = r.rel_path(m, "dest", path, true);
    let explicit_name = r.opt_str(m, "name", path).map(|(s, _)| s);
    let name = explicit_name.clone().unwrap_or_else(|| {
        let stem_source = dest
            .as_deref()
            .or(config.as_deref())
            .or(repos.as_deref())
            .map(|p| {
                Path::new(p)
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default()
            });
        let type_name = kind.map(SyncerType::name).unwrap_or("unknown");
        let stem = stem_source.unwrap_or_else(|| type_name.to_owned());
        format!("{type_name}-syncer-{}", safe_name(&stem))
    });
    let prefix = r
        .opt_str(m, "prefix", path)
        .map(|(s, _)| s)
        .unwrap_or_else(|| name.clone());
    let who = format!(
        "{} syncer {name:?}",
        kind.map(SyncerType::name).unwrap_or("a")
    );
    if let Some(kind) = kind {
        let (need_config, need_repos) = kind.files();
        for (key, need) in [("config", need_config), ("repos", need_repos)] {
            let present = m.and_then(|m| m.get_node(key)).is_some_and(|n| match n {
                Node::Scalar(s) => !super::is_none_like(s.as_str()),
                _ => true,
            });
            if need && !present {
                r.error(
                    &join(path, key),
                    map.span(),
                    format!("is required for the {who} (a file under mirror.syncer_dir)"),
                );
            } else if !need && present {
                r.error(
                    &join(path, key),
                    &pos_span(map, key),
                    format!(
                        "is not allowed for the {who}: {} syncers take only `{}`",
                        kind.name(),
                        if need_config { "config" } else { "repos" }
                    ),
                );
            }
        }
    }
    let environment = r.string_map(m, "environment", path);
    check_environment(r, m, path, &environment);
    let command_args = r.string_list(m, "command_args", path);
    let user = r
        .opt_str(m, "user", path)
        .map(|(s, _)| s)
        .unwrap_or_else(invoking_user);
    let log_file = r
        .opt_str(m, "log_file", path)
        .map(|(s, _)| PathBuf::from(s))
        .unwrap_or_else(|| default_log_file(&name));
    let kind = kind?;
    let image = r
        .opt_str(m, "image", path)
        .map(|(s, _)| s)
        .unwrap_or_else(|| kind.default_image().to_owned());
    let volumes = derive_volumes(
        kind,
        mirror,
        config.as_deref(),
        repos.as_deref(),
        dest.as_deref(),
    );
    let syncer = Syncer {
        kind: Some(kind),
        name,
        prefix,
        image,
        user,
        config,
        repos,
        dest,
        environment,
        command_args,
        volumes,
        log_file,
    };
    Some((
        syncer,
        path.to_owned(),
        pos_of(map, "name"),
        pos_of(map, "prefix"),
    ))
}

fn pos_span(map: &MarkedMappingNode, key: &str) -> marked_yaml::Span {
    map.get_node(key).map(|n| *n.span()).unwrap_or(*map.span())
}

/// The volume table of docs/config.md.
fn derive_volumes(
    kind: SyncerType,
    mirror: &Mirror,
    config: Option<&str>,
    repos: Option<&str>,
    dest: Option<&str>,
) -> Vec<Volume> {
    let vol = |host: PathBuf, bind: &str, read_only: bool| Volume {
        host,
        bind: bind.to_owned(),
        read_only,
    };
    let mirror_dir = || match dest {
        Some(d) => mirror.zfs_mirror_dir.join(d),
        None => mirror.zfs_mirror_dir.clone(),
    };
    let file = |f: Option<&str>| mirror.syncer_dir.join(f.unwrap_or_default());
    match kind {
        SyncerType::Apt => vec![
            vol(mirror.zfs_mirror_dir.clone(), "/distpool/mirror", false),
            vol(file(config), "/etc/apt/mirror.list", true),
        ],
        SyncerType::Rsync => vec![
            vol(mirror.zfs_mirror_dir.clone(), "/distpool/mirror", false),
            vol(file(repos), "/app/repos.yaml", true),
        ],
        SyncerType::Dnf => vec![
            vol(mirror_dir(), "/distpool/mirror/dnf", false),
            vol(file(repos), "/app/repos.yaml", true),
            vol(file(config), "/app/dnf_mirror.conf", true),
        ],
        SyncerType::Rmt => vec![
            vol(mirror_dir(), "/var/lib/rmt/public/repo", false),
            vol(file(repos), "/etc/repos.yaml", true),
            vol(file(config), "/etc/rmt.conf", true),
        ],
    }
}

fn read_container(
    r: &mut Reader,
    item: &Node,
    path: &str,
) -> Option<(Syncer, String, Position, Position)> {
    let map = r.required_mapping(item, path)?;
    r.unknown_keys(map, path, CONTAINER_KEYS);
    let m = Some(map);
    let [name, image] = ["name", "image"].map(|key| {
        let value = r.opt_str(m, key, path).map(|(s, _)| s);
        if value.is_none() {
            r.error(&join(path, key), map.span(), "is required for a container");
        }
        value
    });
    let prefix = r.opt_str(m, "prefix", path).map(|(s, _)| s);
    let user = r
        .opt_str(m, "user", path)
        .map(|(s, _)| s)
        .unwrap_or_else(invoking_user);
    let environment = r.string_map(m, "environment", path);
    check_environment(r, m, path, &environment);
    let command_args = r.string_list(m, "command_args", path);
    let log_file = r
        .opt_str(m, "log_file", path)
        .map(|(s, _)| PathBuf::from(s));
    let volumes = read_volumes(r, map.get_node("volumes"), &join(path, "volumes"));
    let name = name?;
    let syncer = Syncer {
        kind: None,
        prefix: prefix.unwrap_or_else(|| name.clone()),
        image: image?,
        user,
        config: None,
        repos: None,
        dest: None,
        environment,
        command_args,
        volumes,
        log_file: log_file.unwrap_or_else(|| default_log_file(&name)),
        name,
    };
    Some((
        syncer,
        path.to_owned(),
        pos_of(map, "name"),
        pos_of(map, "prefix"),
    ))
}

fn parse_mode(r: &mut Reader, text: &str, key: &str, span: &marked_yaml::Span) -> bool {
    match text.trim().to_ascii_lowercase().as_str() {
        "" | "rw" => false,
        "ro" => true,
        other => {
            r.error(
                key,
                span,
                format!("volume mode must be rw or ro, found {other:?}"),
            );
            false
        }
    }
}

/// `volumes`: a mapping `host -> {bind, mode [rw]}` or a list of
/// `host:bind[:mode]` strings.
fn read_volumes(r: &mut Reader, node: Option<&Node>, path: &str) -> Vec<Volume> {
    let mut out = Vec::new();
    match node {
        None => {}
        Some(Node::Scalar(s)) if super::is_none_like(s.as_str()) => {}
        Some(Node::Mapping(map)) => {
            for (host, spec) in map.iter() {
                let key = join(path, host.as_str());
                let Some(spec_map) = r.mapping(Some(spec), &key) else {
                    r.error(
                        &key,
                        spec.span(),
                        "must be a mapping with `bind` and optional `mode`",
                    );
                    continue;
                };
                r.unknown_keys(spec_map, &key, &["bind", "mode"]);
                let Some((bind, _)) = r.opt_str(Some(spec_map), "bind", &key) else {
                    r.error(&join(&key, "bind"), spec.span(), "is required");
                    continue;
                };
                let read_only = match r.opt_str(Some(spec_map), "mode", &key) {
                    Some((mode, span)) => parse_mode(r, &mode, &join(&key, "mode"), &span),
                    None => false,
                };
                out.push(Volume {
                    host: PathBuf::from(host.as_str().trim()),
                    bind,
                    read_only,
                });
            }
        }
        Some(Node::Sequence(items)) => {
            for (i, item) in items.iter().enumerate() {
                let key = format!("{path}[{i}]");
                let Some((text, span)) = r.scalar_of(item, &key) else {
                    continue;
                };
                let parts: Vec<&str> = text.split(':').collect();
                match parts.as_slice() {
                    [host, bind] if !host.is_empty() && !bind.is_empty() => out.push(Volume {
                        host: PathBuf::from(host),
                        bind: (*bind).to_owned(),
                        read_only: false,
                    }),
                    [host, bind, mode] if !host.is_empty() && !bind.is_empty() => {
                        let read_only = parse_mode(r, mode, &key, &span);
                        out.push(Volume {
                            host: PathBuf::from(host),
                            bind: (*bind).to_owned(),
                            read_only,
                        });
                    }
                    _ => r.error(
                        &key,
                        &span,
                        format!("must be host:bind[:mode], found {text:?}"),
                    ),
                }
            }
        }
        Some(other) => r.error(
            path,
            other.span(),
            format!("must be a mapping or a list, found {}", kind(other)),
        ),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::safe_name;
    use crate::testing::assert_cases;

    #[test]
    fn safe_replaces_runs_and_trims() {
        assert_cases(
            safe_name,
            &[
                ("repo", "repo"),
                ("a b//c", "a-b-c"),
                ("//", "default"),
                ("-x-", "x"),
                ("päkete", "p-kete"),
            ],
        );
    }
}
