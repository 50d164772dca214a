//! Checks across the whole configuration that keep a value from being
//! misread where it is used (issue 10, "configs are written by people"):
//!
//! - syncer identities: two syncers may not share a name, a prefix, or the
//!   lock file `state/sync-<safe(name)>.lock` (and default log file) that
//!   their names map to; a name may not be another syncer's prefix, since
//!   `sync --syncer X` selects by name or prefix and would run both;
//! - option-like values: a value that a program takes as an argument
//!   (syncer name = container name, image and user; ZFS dataset; replica
//!   host and user; the ssh key; the mirror paths, which end up in rsync
//!   and zfs arguments; the config path the jobs pass to `--config`) may
//!   not start with `-`, or the program would read it as an option (a
//!   prefix may: it only selects syncers and names jobs);
//! - characters: no value or key may contain NUL (no program argument,
//!   environment value or path can), and the values printed into the GitLab
//!   child pipeline (syncer names and prefixes, runner tags, the command,
//!   the config path, the resource group) may not contain a noncharacter
//!   (U+FFFE, U+FFFF, U+FDD0..U+FDEF, the last two of every plane), which
//!   YAML readers and GitLab refuse.
//!
//! Every problem is reported with its key path, line and column.

use std::collections::HashMap;

use marked_yaml::Node;
use marked_yaml::types::MarkedMappingNode;

use super::reader::{Finding, Position, Reader, is_none_like, join};
use super::syncer::{Syncer, safe_name};
use super::yaml::describe_char;

/// A syncer as read, with its key path and where its name and prefix are.
pub(super) type Entry = (Syncer, String, Position, Position);

fn push(r: &mut Reader, key: String, position: Position, message: String) {
    r.errors.push(Finding {
        key,
        position,
        message,
    });
}

/// Reports that the `field` of the syncer at `path` (`value`, at `at`) is
/// the `other` field of the earlier syncer at `b_path` (at `b_at`), so that
/// `sync --syncer value` would select both.
fn selects_both(
    r: &mut Reader,
    path: &str,
    (field, at, value): (&str, Position, &str),
    (other, b_path, b_at): (&str, &str, &Position),
) {
    push(
        r,
        format!("{path}.{field}"),
        at,
        format!(
            "syncer {field} {value:?} is also the {other} of {b_path} (line {}): \
             `sync --syncer {value}` would select both",
            b_at.line
        ),
    );
}

/// Checks that syncers do not share a name, prefix or lock file, and that
/// no name is another syncer's prefix. Each clash is reported once, at the
/// later entry, naming the earlier one.
pub(super) fn unique_syncers(r: &mut Reader, entries: &[Entry]) {
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut prefixes: HashMap<&str, usize> = HashMap::new();
    let mut locks: HashMap<String, usize> = HashMap::new();
    for (i, (s, path, name_at, prefix_at)) in entries.iter().enumerate() {
        let lock = safe_name(&s.name);
        match names.get(s.name.as_str()) {
            Some(&j) => {
                let (_, b_path, b_name, _) = &entries[j];
                push(
                    r,
                    format!("{path}.name"),
                    *name_at,
                    format!(
                        "duplicate syncer name {:?}: also {b_path}.name (line {})",
                        s.name, b_name.line
                    ),
                );
            }
            None => {
                if let Some(&j) = locks.get(&lock) {
                    let (b, b_path, b_name, _) = &entries[j];
                    push(
                        r,
                        format!("{path}.name"),
                        *name_at,
                        format!(
                            "syncer name {:?} and the name {:?} of {b_path} (line {}) map to the same \
                             lock file state/sync-{lock}.lock and log file /var/log/syncer/{lock}.log; \
                             names must differ in their letters, digits and `_.-`",
                            s.name, b.name, b_name.line
                        ),
                    );
                }
            }
        }
        if let Some(&j) = prefixes.get(s.prefix.as_str()) {
            let (_, b_path, _, b_prefix) = &entries[j];
            push(
                r,
                format!("{path}.prefix"),
                *prefix_at,
                format!(
                    "duplicate syncer prefix {:?}: also {b_path}.prefix (line {})",
                    s.prefix, b_prefix.line
                ),
            );
        }
        // A name equal to an earlier syncer's prefix, or a prefix equal to
        // an earlier syncer's name (unless that clash is a duplicate name or
        // prefix, reported above).
        if let Some(&j) = prefixes.get(s.name.as_str())
            && entries[j].0.name != s.name
        {
            let (_, b_path, _, b_prefix) = &entries[j];
            selects_both(
                r,
                path,
                ("name", *name_at, &s.name),
                ("prefix", b_path, b_prefix),
            );
        }
        if let Some(&j) = names.get(s.prefix.as_str())
            && s.prefix != s.name
            && entries[j].0.prefix != s.prefix
        {
            let (_, b_path, b_name, _) = &entries[j];
            selects_both(
                r,
                path,
                ("prefix", *prefix_at, &s.prefix),
                ("name", b_path, b_name),
            );
        }
        names.entry(s.name.as_str()).or_insert(i);
        prefixes.entry(s.prefix.as_str()).or_insert(i);
        locks.entry(lock).or_insert(i);
    }
}

/// Whether `c` is a Unicode noncharacter (U+FDD0..U+FDEF, U+xFFFE, U+xFFFF).
pub fn is_noncharacter(c: char) -> bool {
    let u = c as u32;
    (0xfdd0..=0xfdef).contains(&u) || (u & 0xfffe) == 0xfffe
}

/// Keys whose values a program takes as an argument, as
/// `(section, key)`; `syncer` and `containers` are lists of such mappings.
const ARGUMENT_KEYS: &[(&str, &[&str])] = &[
    (
        "mirror",
        &[
            "workdir",
            "syncer_dir",
            "zfs_mirror_dir",
            "zfs_mirror_dataset",
        ],
    ),
    ("replication", &["replica_host", "ssh_user", "ssh_key"]),
    ("syncer", &["name", "image", "user"]),
    ("containers", &["name", "image", "user"]),
    ("pipeline", &["config_path"]),
];

/// Keys whose values are printed into the child pipeline.
const PRINTED_KEYS: &[(&str, &[&str])] = &[
    ("syncer", &["name", "prefix"]),
    ("containers", &["name", "prefix"]),
    (
        "pipeline",
        &["runner_tags", "command", "config_path", "resource_group"],
    ),
];

/// Calls `f(path, node)` for each value of `keys` in `root`: the section's
/// own keys, or the keys of each item of a list section.
fn each_value<'a>(
    root: &'a MarkedMappingNode,
    keys: &[(&str, &[&str])],
    mut f: impl FnMut(String, &'a Node),
) {
    for (section, names) in keys {
        match root.get_node(section) {
            Some(Node::Mapping(m)) => {
                for name in *names {
                    if let Some(v) = m.get_node(name) {
                        f(join(section, name), v);
                    }
                }
            }
            Some(Node::Sequence(items)) => {
                for (i, item) in items.iter().enumerate() {
                    if let Node::Mapping(m) = item {
                        for name in *names {
                            if let Some(v) = m.get_node(name) {
                                f(format!("{section}[{i}].{name}"), v);
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

/// Calls `f(path, text, position)` for each scalar in `node` (list items
/// get `[i]`); keys of nested mappings are not visited.
fn each_scalar(node: &Node, path: &str, f: &mut impl FnMut(&str, &str, Position)) {
    match node {
        Node::Scalar(s) => f(path, s.as_str(), Position::of(s.span())),
        Node::Sequence(items) => {
            for (i, item) in items.iter().enumerate() {
                each_scalar(item, &format!("{path}[{i}]"), f);
            }
        }
        Node::Mapping(m) => {
            for (k, v) in m.iter() {
                each_scalar(v, &join(path, k.as_str()), f);
            }
        }
    }
}

/// Reports every NUL in a key or value of the tree (the YAML layer bounds
/// its depth, so the recursion is bounded too).
fn no_nul(r: &mut Reader, node: &Node, path: &str) {
    match node {
        Node::Scalar(s) => {
            if s.as_str().contains('\0') {
                r.error(
                    path,
                    s.span(),
                    "contains U+0000 (NUL), which no program argument, path or environment value can hold",
                );
            }
        }
        Node::Sequence(items) => {
            for (i, item) in items.iter().enumerate() {
                no_nul(r, item, &format!("{path}[{i}]"));
            }
        }
        Node::Mapping(m) => {
            for (k, v) in m.iter() {
                let key_path = join(path, k.as_str());
                if k.as_str().contains('\0') {
                    r.error(
                        &key_path.replace('\0', "\\0"),
                        k.span(),
                        "this key contains U+0000 (NUL)",
                    );
                    continue;
                }
                no_nul(r, v, &key_path);
            }
        }
    }
}

/// Runs the value checks of this module on the file's top-level mapping.
pub(super) fn values(r: &mut Reader, root: &MarkedMappingNode) {
    let mut found: Vec<Finding> = Vec::new();
    each_value(root, ARGUMENT_KEYS, |path, node| {
        if let Node::Scalar(s) = node {
            let text = s.as_str().trim();
            if text.starts_with('-') && !is_none_like(text) {
                found.push(Finding {
                    position: Position::of(s.span()),
                    message: format!(
                        "{text:?} starts with `-`: the program it is passed to would read it as an option"
                    ),
                    key: path,
                });
            }
        }
    });
    each_value(root, PRINTED_KEYS, |path, node| {
        each_scalar(node, &path, &mut |path, text, position| {
            if let Some(c) = text.chars().find(|c| is_noncharacter(*c)) {
                found.push(Finding {
                    key: path.to_owned(),
                    position,
                    message: format!(
                        "contains {}, which cannot be written into the GitLab pipeline",
                        describe_char(c)
                    ),
                });
            }
        });
    });
    r.errors.extend(found);
    for (k, v) in root.iter() {
        if k.as_str().contains('\0') {
            r.error(
                &k.as_str().replace('\0', "\\0"),
                k.span(),
                "this key contains U+0000 (NUL)",
            );
        } else {
            no_nul(r, v, k.as_str());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_noncharacter;

    #[test]
    fn noncharacters() {
        for c in [
            '\u{fffe}',
            '\u{ffff}',
            '\u{fdd0}',
            '\u{fdef}',
            '\u{1fffe}',
            '\u{10ffff}',
        ] {
            assert!(is_noncharacter(c), "{c:?}");
        }
        for c in [
            'a',
            '\u{fdcf}',
            '\u{fdf0}',
            '\u{fffd}',
            '\u{10000}',
            '\u{feff}',
        ] {
            assert!(!is_noncharacter(c), "{c:?}");
        }
    }
}
