//! The `verify` section (docs/config.md, `verify`): settings of the
//! `mirrorer verify` stage.
//!
//! ```yaml
//! verify:
//!   max_shrink_percent: 20          # 0..=100
//!   keyrings:                       # public prefix -> OpenPGP keyring for gpgv
//!     debian: /usr/share/keyrings/debian-archive-keyring.gpg
//! ```

use marked_yaml::Node;

use super::reader::{Reader, join};

/// `verify`: how snapshots are verified before publication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifySettings {
    /// `max_shrink_percent` (default 20): how many percent of its packages a
    /// repository may lose between two verified snapshots.
    pub max_shrink_percent: u64,
    /// `keyrings`: `(public prefix, keyring path)`, in file order; the APT
    /// releases under that prefix are checked with gpgv. A prefix is one
    /// path component; a keyring path must be absolute.
    pub keyrings: Vec<(String, String)>,
}

impl Default for VerifySettings {
    fn default() -> Self {
        VerifySettings {
            max_shrink_percent: 20,
            keyrings: Vec::new(),
        }
    }
}

/// Reads the `verify` section (missing: the defaults).
pub(super) fn read(r: &mut Reader, node: Option<&Node>) -> VerifySettings {
    let m = r.section(node, "verify", &["max_shrink_percent", "keyrings"]);
    let max_shrink_percent = r.integer(m, "max_shrink_percent", "verify", 20, (0, 100));
    let mut keyrings = Vec::new();
    let spans: Vec<_> = m
        .and_then(|m| m.get_node("keyrings"))
        .and_then(|n| n.as_mapping())
        .map(|k| {
            k.iter()
                .map(|(key, v)| (key.as_str().to_owned(), *v.span()))
                .collect()
        })
        .unwrap_or_default();
    for (prefix, path) in r.string_map(m, "keyrings", "verify") {
        let key = join("verify.keyrings", &prefix);
        let span = spans.iter().find(|(k, _)| *k == prefix).map(|(_, s)| *s);
        let bad = if prefix.is_empty() || prefix.contains('/') || prefix.starts_with('.') {
            Some("the prefix must be one path component (a top-level directory of the tree)")
        } else if !path.starts_with('/') || path.contains('\0') {
            Some("the keyring must be an absolute path")
        } else {
            None
        };
        match (bad, span) {
            (Some(why), Some(span)) => r.error(&key, &span, why),
            _ => keyrings.push((prefix, path)),
        }
    }
    VerifySettings {
        max_shrink_percent,
        keyrings,
    }
}
