//! `fleet.yaml`, the list of shards `mirrorer fleet collect` reads
//! (docs/fleet.md, "fleet.yaml"). Loaded with the configuration's YAML layer
//! ([`crate::config::yaml`]: bounded size, duplicate keys refused) and its
//! [`Reader`], so errors name the key, line and column exactly as for
//! `dist-mirror.yaml`, with exit 3.

use std::path::Path;
use std::time::Duration;

use marked_yaml::Node;

use crate::config::{self, ConfigError, Reader, is_none_like, join, yaml};

/// Longest shard name, in bytes.
pub const MAX_SHARD_NAME_LEN: usize = 64;
/// Most shards one file may list.
pub const MAX_SHARDS: usize = 1000;

/// One shard of the fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    /// Its name: `[A-Za-z0-9_.-]`, 1 to 64 bytes, unique in the file.
    pub name: String,
    /// The URL of its `/metadata/` directory, `http://` or `https://`,
    /// without query or fragment, ending with `/` (added when missing).
    /// May carry `user:password@`; the password is never logged or written.
    pub metadata_url: String,
}

/// The whole `fleet.yaml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fleet {
    /// The shards, in file order.
    pub shards: Vec<Shard>,
    /// A snapshot or syncer success older than this is stale
    /// (`freshness.snapshot_max_age_hours`, default 26 h).
    pub snapshot_max_age: Duration,
    /// A syncer whose last success is older than this is stale
    /// (`freshness.syncer_max_age_hours`, default 26 h).
    pub syncer_max_age: Duration,
    /// Timeout of one HTTP request (`fetch.timeout_seconds`, default 20 s).
    pub timeout: Duration,
    /// Retries of a request that failed to connect or got a 5xx answer
    /// (`fetch.retries`, default 2).
    pub retries: u32,
}

const HOUR: u64 = 3600;

/// Reads and validates `fleet.yaml` at `path`.
///
/// # Errors
/// [`ConfigError::Read`] (missing, unreadable or over the size limit),
/// [`ConfigError::Syntax`] (not YAML), [`ConfigError::Invalid`] with every
/// problem (line and column), all exit 3.
pub fn load(path: &Path) -> Result<Fleet, ConfigError> {
    let bytes = config::read_bounded(path, "")?;
    let text = yaml::decode(&bytes).map_err(|e| config::syntax(path, e))?;
    from_str(text.strip_prefix('\u{feff}').unwrap_or(text), path)
}

/// Validates `fleet.yaml` text; `path` is used in messages.
///
/// # Errors
/// As [`load`], without the read error.
pub fn from_str(text: &str, path: &Path) -> Result<Fleet, ConfigError> {
    let syntax = |e: yaml::SyntaxError| ConfigError::Syntax {
        path: path.to_path_buf(),
        position: e.position,
        message: e.message,
    };
    let root = yaml::parse(text).map_err(syntax)?;
    let mut r = Reader::default();
    let top = match &root {
        Some(Node::Mapping(m)) => Some(m),
        Some(Node::Scalar(s)) if is_none_like(s.as_str()) => None,
        Some(other) => {
            r.error("(top level)", other.span(), "must be a mapping");
            None
        }
        None => None,
    };
    if let Some(m) = top {
        r.unknown_keys(m, "", &["shards", "freshness", "fetch"]);
    }
    let shards = read_shards(&mut r, top);
    let fresh = r.section(
        top.and_then(|m| m.get_node("freshness")),
        "freshness",
        &["snapshot_max_age_hours", "syncer_max_age_hours"],
    );
    let snapshot_hours = r.integer(
        fresh,
        "snapshot_max_age_hours",
        "freshness",
        26,
        (1, 24 * 366),
    );
    let syncer_hours = r.integer(
        fresh,
        "syncer_max_age_hours",
        "freshness",
        26,
        (1, 24 * 366),
    );
    let fetch = r.section(
        top.and_then(|m| m.get_node("fetch")),
        "fetch",
        &["timeout_seconds", "retries"],
    );
    let timeout = r.integer(fetch, "timeout_seconds", "fetch", 20, (1, 600));
    let retries = r.integer(fetch, "retries", "fetch", 2, (0, 10));
    if !r.errors.is_empty() {
        return Err(ConfigError::Invalid {
            path: path.to_path_buf(),
            problems: r.errors,
            warnings: r.warnings,
        });
    }
    for w in &r.warnings {
        tracing::warn!(target: "mirrorer::fleet", setting = %w.key, line = w.position.line, column = w.position.column, message = %w.message, "fleet_config_warning");
    }
    Ok(Fleet {
        shards,
        snapshot_max_age: Duration::from_secs(snapshot_hours * HOUR),
        syncer_max_age: Duration::from_secs(syncer_hours * HOUR),
        timeout: Duration::from_secs(timeout),
        retries: u32::try_from(retries).unwrap_or(2),
    })
}

fn read_shards(r: &mut Reader, top: Option<&marked_yaml::types::MarkedMappingNode>) -> Vec<Shard> {
    let node = top.and_then(|m| m.get_node("shards"));
    let Some(Node::Sequence(items)) = node else {
        let span = node.map_or_else(marked_yaml::Span::new_blank, |n| *n.span());
        r.error(
            "shards",
            &span,
            "must be a list of {name, metadata_url}, with at least one shard",
        );
        return Vec::new();
    };
    if items.is_empty() {
        r.error("shards", items.span(), "must list at least one shard");
    }
    if items.len() > MAX_SHARDS {
        r.error(
            "shards",
            items.span(),
            format!(
                "lists {} shards; at most {MAX_SHARDS} are allowed",
                items.len()
            ),
        );
        return Vec::new();
    }
    let mut out: Vec<Shard> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("shards[{i}]");
        let Some(m) = r.section(Some(item), &path, &["name", "metadata_url"]) else {
            if !matches!(item, Node::Mapping(_)) {
                // none-like: `mapping` reported nothing
                r.error(&path, item.span(), "must be a mapping {name, metadata_url}");
            }
            continue;
        };
        let name = r.opt_str(Some(m), "name", &path);
        let url = r.opt_str(Some(m), "metadata_url", &path);
        let name = match name {
            None => {
                r.error(&join(&path, "name"), m.span(), "is required");
                None
            }
            Some((n, span)) => match check_name(&n) {
                Err(e) => {
                    r.error(&join(&path, "name"), &span, e);
                    None
                }
                Ok(()) if out.iter().any(|s| s.name == n) => {
                    r.error(
                        &join(&path, "name"),
                        &span,
                        format!("shard {n:?} is listed twice"),
                    );
                    None
                }
                Ok(()) => Some(n),
            },
        };
        let url = match url {
            None => {
                r.error(&join(&path, "metadata_url"), m.span(), "is required");
                None
            }
            Some((u, span)) => match check_url(&u) {
                Ok(u) => Some(u),
                Err(e) => {
                    r.error(&join(&path, "metadata_url"), &span, e);
                    None
                }
            },
        };
        if let (Some(name), Some(metadata_url)) = (name, url) {
            out.push(Shard { name, metadata_url });
        }
    }
    out
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_SHARD_NAME_LEN {
        return Err(format!("must be 1 to {MAX_SHARD_NAME_LEN} bytes long"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(format!(
            "{:?} contains {c:?}; only letters, digits and `_.-` are allowed",
            crate::redact::text(name)
        ));
    }
    Ok(())
}

/// Checks a metadata URL and returns it ending with `/`.
fn check_url(url: &str) -> Result<String, String> {
    let shown = crate::redact::text(url);
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("{shown:?} must start with http:// or https://"))?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err(format!("{shown:?} has no host name"));
    }
    if url.contains(['?', '#']) || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{shown:?} must not contain a query, a fragment, blanks or control characters"
        ));
    }
    Ok(if url.ends_with('/') {
        url.to_owned()
    } else {
        format!("{url}/")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            check_url("http://a/metadata").unwrap(),
            "http://a/metadata/"
        );
        assert!(check_url("ftp://a/").is_err());
        assert!(check_url("http://a/?x").is_err());
        assert!(check_url("https:///x").is_err());
        let err = check_url("file://u:SECRETPW@h/").unwrap_err();
        assert!(!err.contains("SECRETPW"), "{err}");
    }
}
