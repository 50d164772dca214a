//! Typed reading of a YAML tree that remembers where every value came from.
//!
//! The file is parsed with `marked-yaml`, which keeps every scalar as its
//! source text with a line and column. The [`Reader`] turns nodes into typed
//! values by the shared rules of docs/config.md (none-like strings, boolean
//! strings, relative paths) and collects every problem and unknown key
//! instead of stopping at the first, so one run reports all of them.

use marked_yaml::types::MarkedMappingNode;
use marked_yaml::{Node, Span};

/// A position in the configuration file: 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Position {
    /// Line, counted from 1.
    pub line: usize,
    /// Column, counted from 1.
    pub column: usize,
}

impl Position {
    /// The start of `span`, or line 1 column 1 if the parser gave none.
    pub fn of(span: &Span) -> Position {
        span.start()
            .map(|m| Position {
                line: m.line(),
                column: m.column(),
            })
            .unwrap_or(Position { line: 1, column: 1 })
    }
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// One finding about the file: the key path (`syncer[2].config`), where it
/// is, and what is wrong. Used for errors and for warnings.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// Dotted key path with list indexes, e.g. `syncer[2].config`.
    pub key: String,
    /// Where the offending value (or key) starts.
    pub position: Position,
    /// What is wrong, in a few words.
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.key, self.position, self.message)
    }
}

/// Collects findings while typed values are read from the tree.
#[derive(Debug, Default)]
pub struct Reader {
    /// Problems that make the file invalid.
    pub errors: Vec<Finding>,
    /// Things worth a warning (unknown keys, ignored sections).
    pub warnings: Vec<Finding>,
}

/// Joins a key path and a mapping key: `mirror` + `workdir` = `mirror.workdir`.
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Whether a scalar's text means "not set": empty, `none`, `null`, `~`
/// (any case, surrounding blanks ignored).
pub fn is_none_like(text: &str) -> bool {
    let t = text.trim();
    t.is_empty() || t == "~" || t.eq_ignore_ascii_case("none") || t.eq_ignore_ascii_case("null")
}

/// Parses the boolean spellings of docs/config.md: `true/false`, `1/0`,
/// `yes/no`, `on/off`, any case, blanks ignored.
pub fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Describes a node's kind for messages.
pub fn kind(node: &Node) -> &'static str {
    match node {
        Node::Scalar(_) => "a scalar",
        Node::Mapping(_) => "a mapping",
        Node::Sequence(_) => "a list",
    }
}

/// Checks a relative path: not absolute, no `..` component, not empty.
/// Returns the reason it is rejected.
pub fn check_relative(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if path.starts_with('/') {
        return Err(format!(
            "must be a relative path, not the absolute path {path:?}"
        ));
    }
    if path.split('/').any(|c| c == "..") {
        return Err(format!("must not contain a `..` component: {path:?}"));
    }
    Ok(())
}

impl Reader {
    /// Records an error at `span`.
    pub fn error(&mut self, key: &str, span: &Span, message: impl Into<String>) {
        self.errors.push(Finding {
            key: key.to_owned(),
            position: Position::of(span),
            message: message.into(),
        });
    }

    /// Records a warning at `span`.
    pub fn warn(&mut self, key: &str, span: &Span, message: impl Into<String>) {
        self.warnings.push(Finding {
            key: key.to_owned(),
            position: Position::of(span),
            message: message.into(),
        });
    }

    /// Reads `node` as an optional mapping section. `None` when absent or
    /// none-like; an error when it is something else. Keys not in `known`
    /// are reported as warnings.
    pub fn section<'a>(
        &mut self,
        node: Option<&'a Node>,
        path: &str,
        known: &[&str],
    ) -> Option<&'a MarkedMappingNode> {
        let map = self.mapping(node, path)?;
        self.unknown_keys(map, path, known);
        Some(map)
    }

    /// Reads `node` as an optional mapping (none-like means absent), without
    /// checking its keys.
    pub fn mapping<'a>(
        &mut self,
        node: Option<&'a Node>,
        path: &str,
    ) -> Option<&'a MarkedMappingNode> {
        match node? {
            Node::Scalar(s) if is_none_like(s.as_str()) => None,
            other => self.required_mapping(other, path),
        }
    }

    /// Reads `node` as a mapping that must be there (a list item): anything
    /// else, none-like values too, is an error `must be a mapping, found
    /// <kind>` at `path`.
    pub fn required_mapping<'a>(
        &mut self,
        node: &'a Node,
        path: &str,
    ) -> Option<&'a MarkedMappingNode> {
        match node {
            Node::Mapping(m) => Some(m),
            other => {
                self.error(
                    path,
                    other.span(),
                    format!("must be a mapping, found {}", kind(other)),
                );
                None
            }
        }
    }

    /// Warns about every key of `map` that is not in `known`.
    pub fn unknown_keys(&mut self, map: &MarkedMappingNode, path: &str, known: &[&str]) {
        for key in map.keys() {
            if !known.contains(&key.as_str()) {
                self.warn(
                    &join(path, key.as_str()),
                    key.span(),
                    "unknown key (ignored)",
                );
            }
        }
    }

    /// Reads an optional scalar string: trimmed; `None` when absent or
    /// none-like; an error when it is a mapping or list.
    pub fn opt_str(
        &mut self,
        map: Option<&MarkedMappingNode>,
        key: &str,
        path: &str,
    ) -> Option<(String, Span)> {
        let node = map?.get_node(key)?;
        let path = join(path, key);
        self.scalar_of(node, &path)
    }

    /// Reads a node as an optional trimmed scalar (see [`Reader::opt_str`]).
    pub fn scalar_of(&mut self, node: &Node, path: &str) -> Option<(String, Span)> {
        match node {
            Node::Scalar(s) if is_none_like(s.as_str()) => None,
            Node::Scalar(s) => Some((s.as_str().trim().to_owned(), *s.span())),
            other => {
                self.error(
                    path,
                    other.span(),
                    format!("must be a single value, found {}", kind(other)),
                );
                None
            }
        }
    }

    /// Reads a string with a default.
    pub fn string(
        &mut self,
        map: Option<&MarkedMappingNode>,
        key: &str,
        path: &str,
        default: &str,
    ) -> String {
        self.opt_str(map, key, path)
            .map(|(s, _)| s)
            .unwrap_or_else(|| default.to_owned())
    }

    /// Reads a boolean with a default (none-like means the default).
    pub fn boolean(
        &mut self,
        map: Option<&MarkedMappingNode>,
        key: &str,
        path: &str,
        default: bool,
    ) -> bool {
        let Some((text, span)) = self.opt_str(map, key, path) else {
            return default;
        };
        match parse_bool(&text) {
            Some(b) => b,
            None => {
                self.error(
                    &join(path, key),
                    &span,
                    format!("must be a boolean (true/false, yes/no, on/off, 1/0), found {text:?}"),
                );
                default
            }
        }
    }

    /// Reads an integer in `min..=max` with a default.
    pub fn integer(
        &mut self,
        map: Option<&MarkedMappingNode>,
        key: &str,
        path: &str,
        default: u64,
        (min, max): (u64, u64),
    ) -> u64 {
        let Some((text, span)) = self.opt_str(map, key, path) else {
            return default;
        };
        match text.parse::<u64>() {
            Ok(v) if (min..=max).contains(&v) => v,
            Ok(v) => {
                let range = if max == u64::MAX {
                    format!(">= {min}")
                } else {
                    format!("in {min}..={max}")
                };
                self.error(
                    &join(path, key),
                    &span,
                    format!("must be an integer {range}, found {v}"),
                );
                default
            }
            Err(_) => {
                self.error(
                    &join(path, key),
                    &span,
                    format!("must be an integer, found {text:?}"),
                );
                default
            }
        }
    }

    /// Reads an optional relative path (see [`check_relative`]), with
    /// surrounding `/` trimmed when `trim_slashes`.
    pub fn rel_path(
        &mut self,
        map: Option<&MarkedMappingNode>,
        key: &str,
        path: &str,
        trim_slashes: bool,
    ) -> Option<String> {
        let (mut text, span) = self.opt_str(map, key, path)?;
        if trim_slashes {
            text = text.trim_matches('/').to_owned();
            if text.is_empty() {
                return None;
            }
        }
        match check_relative(&text) {
            Ok(()) => Some(text),
            Err(why) => {
                self.error(&join(path, key), &span, why);
                None
            }
        }
    }

    /// Reads an optional list of scalars, each stringified (trimmed is not
    /// applied: list items are passed on as written).
    pub fn string_list(
        &mut self,
        map: Option<&MarkedMappingNode>,
        key: &str,
        path: &str,
    ) -> Vec<String> {
        let Some(node) = map.and_then(|m| m.get_node(key)) else {
            return Vec::new();
        };
        let path = join(path, key);
        match node {
            Node::Sequence(items) => items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| match item {
                    Node::Scalar(s) => Some(s.as_str().to_owned()),
                    other => {
                        self.error(
                            &format!("{path}[{i}]"),
                            other.span(),
                            format!("must be a single value, found {}", kind(other)),
                        );
                        None
                    }
                })
                .collect(),
            Node::Scalar(s) if is_none_like(s.as_str()) => Vec::new(),
            other => {
                self.error(
                    &path,
                    other.span(),
                    format!("must be a list, found {}", kind(other)),
                );
                Vec::new()
            }
        }
    }

    /// Reads an optional mapping of scalar values, values stringified as
    /// written, in file order.
    pub fn string_map(
        &mut self,
        map: Option<&MarkedMappingNode>,
        key: &str,
        path: &str,
    ) -> Vec<(String, String)> {
        let path = join(path, key);
        let Some(inner) = self.mapping(map.and_then(|m| m.get_node(key)), &path) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (k, v) in inner.iter() {
            match v {
                Node::Scalar(s) => out.push((k.as_str().to_owned(), s.as_str().to_owned())),
                other => self.error(
                    &join(&path, k.as_str()),
                    other.span(),
                    format!("must be a single value, found {}", kind(other)),
                ),
            }
        }
        out
    }
}
