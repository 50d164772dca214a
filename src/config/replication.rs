//! Rules of the `replication` section that keep its values from becoming
//! options or shell code of ssh, rsync and syncoid (docs/config.md,
//! `replication`).
//!
//! - `replica_host`: letters, digits and `.-_:[]` (an IPv6 address in
//!   brackets), not starting with `-` (ssh would read it as an option;
//!   syncoid pastes it into a shell command).
//! - `ssh_user`: letters, digits and `._-`, not starting with `-`.
//! - `ssh_options`: a list of strings, none empty, none with a NUL or a
//!   line break. Whether syncoid can take them
//!   ([`crate::backends::ssh::syncoid_args`]) is checked by `replicate`, so
//!   that options only rsync can carry (a key path with a blank) still
//!   serve `publish-snapshot`.

use marked_yaml::Node;
use marked_yaml::types::MarkedMappingNode;

use super::reader::{Reader, is_none_like, join, kind};

/// Checks `replica_host` / `ssh_user` (module docs); `None` if refused.
pub(super) fn checked_name(
    r: &mut Reader,
    map: Option<&MarkedMappingNode>,
    key: &str,
) -> Option<String> {
    let (text, span) = r.opt_str(map, key, "replication")?;
    let extra: &str = if key == "replica_host" {
        ".-_:[]"
    } else {
        ".-_"
    };
    let ok = !text.starts_with('-')
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || extra.contains(c));
    if ok {
        Some(text)
    } else {
        r.error(
            &join("replication", key),
            &span,
            format!(
                "must hold only letters, digits and {extra} and not start with '-', found {text:?}"
            ),
        );
        None
    }
}

/// Reads `replication.ssh_options` (module docs).
pub(super) fn ssh_options(r: &mut Reader, map: Option<&MarkedMappingNode>) -> Vec<String> {
    let path = join("replication", "ssh_options");
    let Some(node) = map.and_then(|m| m.get_node("ssh_options")) else {
        return Vec::new();
    };
    let items = match node {
        Node::Sequence(items) => items,
        Node::Scalar(s) if is_none_like(s.as_str()) => return Vec::new(),
        other => {
            r.error(
                &path,
                other.span(),
                format!(
                    "must be a list of ssh arguments ([-i, /root/.ssh/key]), found {}",
                    kind(node)
                ),
            );
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let key = format!("{path}[{i}]");
        let Node::Scalar(s) = item else {
            r.error(
                &key,
                item.span(),
                format!("must be a single value, found {}", kind(item)),
            );
            continue;
        };
        let text = s.as_str();
        let why = if text.is_empty() {
            Some("must not be empty")
        } else if text.contains(['\n', '\r']) {
            Some("must not contain a line break")
        } else if text.contains('\0') {
            Some("must not contain a NUL byte")
        } else {
            None
        };
        if let Some(why) = why {
            r.error(&key, s.span(), why);
            continue;
        }
        out.push(text.to_owned());
    }
    out
}
