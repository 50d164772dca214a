//! The `retention` section (docs/config.md, "retention"): which snapshots
//! `prune` keeps. Absent (or none-like): `prune` destroys nothing and
//! `pipeline generate` warns that snapshots accumulate.
//!
//! ```yaml
//! retention:
//!   keep_last: 7          # the N newest snapshots
//!   keep_daily: 14        # the newest of each of the last N days
//!   keep_weekly: 8        # ... ISO weeks
//!   keep_monthly: 12      # ... months
//!   keep: [20260101-020000]   # names kept forever
//!   max_prune_per_run: 10 # prune refuses to destroy more without --force
//!   replica: true         # the replica follows (its tree and snapshots)
//! ```
//!
//! Each `keep_*` is an integer in 0..=100000 (default 0); at least one must
//! be above 0, since a section that keeps nothing by rule would let `prune`
//! destroy every unprotected snapshot. `keep` names must be valid snapshot
//! names ([`crate::domain::validate_snapshot_name`]).
//! `max_prune_per_run`: integer >= 0, default 10. `replica`: boolean,
//! default true. The meaning of the rules: [`crate::retention`].

use marked_yaml::Node;

use super::reader::{Reader, join};
use crate::retention::Policy;

/// The effective `retention` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    /// `keep_last`, `keep_daily`, `keep_weekly`, `keep_monthly`.
    pub policy: Policy,
    /// `keep`: snapshot names never pruned.
    pub keep: Vec<String>,
    /// `max_prune_per_run` (default 10).
    pub max_prune_per_run: u64,
    /// `replica` (default true): remove the published tree and the ZFS
    /// snapshot on the replica too.
    pub replica: bool,
}

const MAX_KEEP: u64 = 100_000;

/// Reads the section; `None` when it is absent or none-like.
pub(super) fn read(r: &mut Reader, node: Option<&Node>) -> Option<Retention> {
    let path = "retention";
    let m = r.section(
        node,
        path,
        &[
            "keep_last",
            "keep_daily",
            "keep_weekly",
            "keep_monthly",
            "keep",
            "max_prune_per_run",
            "replica",
        ],
    )?;
    let count = |r: &mut Reader, key: &str| {
        u32::try_from(r.integer(Some(m), key, path, 0, (0, MAX_KEEP))).unwrap_or(0)
    };
    let policy = Policy {
        keep_last: count(r, "keep_last"),
        keep_daily: count(r, "keep_daily"),
        keep_weekly: count(r, "keep_weekly"),
        keep_monthly: count(r, "keep_monthly"),
    };
    if policy == Policy::default()
        && let Some(node) = node
    {
        r.error(
            path,
            node.span(),
            "keeps nothing by rule: set at least one of keep_last, keep_daily, keep_weekly, keep_monthly above 0 (or remove the section to prune nothing)",
        );
    }
    let mut keep = Vec::new();
    if let Some(Node::Sequence(items)) = m.get_node("keep") {
        for (i, item) in items.iter().enumerate() {
            if let Node::Scalar(s) = item
                && let Err(why) = crate::domain::validate_snapshot_name(s.as_str())
            {
                r.error(&format!("{}[{i}]", join(path, "keep")), s.span(), why);
            }
        }
    }
    for name in r.string_list(Some(m), "keep", path) {
        if crate::domain::validate_snapshot_name(&name).is_ok() {
            keep.push(name);
        }
    }
    Some(Retention {
        policy,
        keep,
        max_prune_per_run: r.integer(Some(m), "max_prune_per_run", path, 10, (0, u64::MAX)),
        replica: r.boolean(Some(m), "replica", path, true),
    })
}
