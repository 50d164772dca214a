//! The YAML layer of the config loader: text in, a marked tree out, with
//! every limit that keeps a hostile file from costing unbounded time,
//! memory or stack.
//!
//! The tree is `marked-yaml`'s ([`Node`]: every scalar is its source text
//! with a line and column), but it is built here from `yaml-rust2`'s event
//! parser, because `marked-yaml` 0.8 refuses anchors, aliases and tags
//! outright (`LoadError::UnexpectedAnchor`, `UnexpectedTag`). On top of
//! YAML 1.2 as `yaml-rust2` reads it, this layer:
//!
//! - skips one UTF-8 byte-order mark at the start; refuses a character that
//!   YAML does not allow in a stream (C0 controls but tab and line breaks,
//!   DEL, C1 controls but U+0085, U+FFFE, U+FFFF, a BOM after the start),
//!   naming its line and column (the file is never read only up to a NUL);
//! - expands aliases (`*name`) by copying the anchored node (positions in
//!   the copy are those of the anchored original), and refuses a
//!   file whose aliases would add more than [`MAX_ALIAS_NODES`] nodes or
//!   [`MAX_ALIAS_BYTES`] bytes of text (a "billion laughs" file fails after
//!   at most that much work);
//! - applies merge keys (`<<: *defaults`, `<<: [*a, *b]`) as the YAML 1.1
//!   merge-key type says (yaml.org/type/merge.html): a key written in the
//!   mapping itself wins over a merged one, and an earlier merged mapping
//!   wins over a later one; a key written twice in one mapping is an error;
//! - accepts the standard tags of yaml.org/type (`!!str`, `!!int`,
//!   `!!float`, `!!bool`, `!!null`, `!!timestamp`, `!!binary`, `!!map`,
//!   `!!seq`, `!!merge`) and the non-specific `!`, checking that the value
//!   fits the tag; any other tag is an error;
//! - refuses nesting deeper than [`MAX_DEPTH`] and a tree of more than
//!   [`MAX_NODES`] nodes, and a second document (`---`) in the file.
//!
//! Scalars stay text: the typed reading (none-like strings, booleans,
//! integers) is the job of the config reader (`config::reader::Reader`).

use std::collections::HashMap;

use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode, MarkedSequenceNode};
use marked_yaml::{Marker, Node, Span};
use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::{Marker as ScanMarker, TScalarStyle};

use super::reader::{Position, is_none_like, parse_bool};

/// Largest configuration file read, in bytes (4 MiB; the documented example
/// is under 1 KiB, a config with 20,000 `repo.paths` entries about 700 KiB).
pub const MAX_FILE_BYTES: u64 = 4 << 20;

/// Deepest nesting of mappings and lists (the config itself needs 4).
pub const MAX_DEPTH: usize = 64;

/// Most nodes (scalars, mappings, lists) in the tree, aliases expanded.
pub const MAX_NODES: u64 = 500_000;

/// Most nodes that alias expansion may add to the tree.
pub const MAX_ALIAS_NODES: u64 = 100_000;

/// Most bytes of scalar text that alias expansion may add to the tree.
pub const MAX_ALIAS_BYTES: u64 = 4 << 20;

/// Most bytes of scalar text held while reading, counting the copies that
/// anchors and aliases make.
pub const MAX_TEXT_BYTES: u64 = 32 << 20;

/// Why the text is not a usable YAML tree: where, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// Where the problem is (1-based line and column).
    pub position: Position,
    /// What is wrong.
    pub message: String,
}

/// The prefix of the standard tags (`!!x` is `tag:yaml.org,2002:x`).
const STANDARD: &str = "tag:yaml.org,2002:";

/// How big a node is: its nodes and the bytes of its scalars (keys too).
#[derive(Debug, Clone, Copy, Default)]
struct Weight {
    nodes: u64,
    bytes: u64,
}

impl Weight {
    fn add(&mut self, other: Weight) {
        self.nodes = self.nodes.saturating_add(other.nodes);
        self.bytes = self.bytes.saturating_add(other.bytes);
    }
}

/// A mapping or list being read. At most [`MAX_DEPTH`] exist at once, so
/// the size of the larger variant does not matter.
#[allow(clippy::large_enum_variant)]
enum Frame {
    Map {
        start: Marker,
        anchor: usize,
        map: MarkedMappingNode,
        /// The key read whose value comes next, and whether it is the
        /// merge key `<<`.
        key: Option<(MarkedScalarNode, bool)>,
        /// The merge key's values, in order, and where the key was.
        merges: Vec<Node>,
        merge_at: Option<Marker>,
        weight: Weight,
    },
    Seq {
        start: Marker,
        anchor: usize,
        items: Vec<Node>,
        weight: Weight,
    },
}

struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, (Node, Weight)>,
    root: Option<Node>,
    /// Everything held: the tree, anchor copies, alias copies.
    held: Weight,
    alias: Weight,
}

fn marker(m: ScanMarker) -> Marker {
    Marker::new(0, m.index(), m.line(), m.col() + 1)
}

fn at(m: &Marker) -> Position {
    Position {
        line: m.line(),
        column: m.column(),
    }
}

fn err<T>(m: &Marker, message: impl Into<String>) -> Result<T, SyntaxError> {
    Err(SyntaxError {
        position: at(m),
        message: message.into(),
    })
}

/// Whether YAML allows `c` in a character stream (YAML 1.2 `c-printable`).
fn printable(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{7e}' | '\u{85}' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
}

/// A name for a character in messages: `U+0000 (NUL)`.
pub fn describe_char(c: char) -> String {
    let name = match c {
        '\0' => " (NUL)",
        '\u{7f}' => " (DEL)",
        '\u{feff}' => " (byte-order mark)",
        c if c.is_control() => " (a control character)",
        _ => " (a noncharacter)",
    };
    format!("U+{:04X}{name}", c as u32)
}

/// Finds the first character YAML forbids (or a BOM after the start) and
/// says where it is. `text` has its leading BOM removed already.
fn check_characters(text: &str) -> Result<(), SyntaxError> {
    let Some((offset, c)) = text
        .char_indices()
        .find(|&(_, c)| !printable(c) || c == '\u{feff}')
    else {
        return Ok(());
    };
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = text[line_start..offset].chars().count() + 1;
    let what = if c == '\u{feff}' {
        "a byte-order mark is allowed only at the start of the file".to_owned()
    } else {
        "YAML does not allow this character in a file (write it as an escape in a double-quoted string if it is meant)".to_owned()
    };
    Err(SyntaxError {
        position: Position { line, column },
        message: format!("{}: {what}", describe_char(c)),
    })
}

/// Reads the bytes of a configuration file as text: one leading UTF-8 BOM
/// skipped, the position of the first byte that is not UTF-8 reported.
///
/// # Errors
/// [`SyntaxError`] at the first invalid byte.
pub fn decode(bytes: &[u8]) -> Result<&str, SyntaxError> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|e| {
        let good = &bytes[..e.valid_up_to()];
        let line = good.iter().filter(|b| **b == b'\n').count() + 1;
        let line_start = good.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let column = String::from_utf8_lossy(&good[line_start..]).chars().count() + 1;
        SyntaxError {
            position: Position { line, column },
            message: format!(
                "byte 0x{:02X} is not UTF-8 text",
                bytes.get(e.valid_up_to()).copied().unwrap_or(0)
            ),
        }
    })
}

/// The tag as written, for messages: `!!int`, `!foo`, `!<tag:x>`.
fn tag_name(tag: &Tag) -> String {
    if tag.handle == STANDARD {
        format!("!!{}", tag.suffix)
    } else if tag.handle.is_empty() && tag.suffix == "!" {
        "!".to_owned()
    } else if tag.handle.is_empty() {
        format!("!<{}>", tag.suffix)
    } else {
        format!("{}{}", tag.handle, tag.suffix)
    }
}

/// The standard type a tag names (`str`, `map`, ...), `Some("")` for the
/// non-specific `!`, `None` for any other tag.
fn standard_type(tag: &Tag) -> Option<&str> {
    let full = format!("{}{}", tag.handle, tag.suffix);
    if full == "!" {
        return Some("");
    }
    let t = full.strip_prefix(STANDARD)?;
    [
        "str",
        "int",
        "float",
        "bool",
        "null",
        "timestamp",
        "binary",
        "map",
        "seq",
        "merge",
    ]
    .into_iter()
    .find(|s| *s == t)
}

fn is_int(text: &str) -> bool {
    let t = text.trim();
    let t = t.strip_prefix(['-', '+']).unwrap_or(t);
    let digits =
        |s: &str, ok: fn(char) -> bool| !s.is_empty() && s.chars().all(|c| ok(c) || c == '_');
    if let Some(h) = t.strip_prefix("0x") {
        digits(h, |c| c.is_ascii_hexdigit())
    } else if let Some(o) = t.strip_prefix("0o") {
        digits(o, |c| matches!(c, '0'..='7'))
    } else {
        digits(t, |c| c.is_ascii_digit())
    }
}

fn is_float(text: &str) -> bool {
    let t = text.trim();
    let bare = t.strip_prefix(['-', '+']).unwrap_or(t);
    matches!(bare, ".inf" | ".Inf" | ".INF")
        || matches!(t, ".nan" | ".NaN" | ".NAN")
        || (t.parse::<f64>().is_ok() && !bare.starts_with(['i', 'I', 'n', 'N']))
}

/// Checks a tag against the node it is on.
fn check_tag(
    tag: Option<&Tag>,
    kind: &str,
    scalar: Option<&str>,
    m: &Marker,
) -> Result<(), SyntaxError> {
    let Some(tag) = tag else { return Ok(()) };
    let name = tag_name(tag);
    let Some(t) = standard_type(tag) else {
        return err(
            m,
            format!(
                "unsupported tag {name} (only the standard tags such as !!str, !!int, !!map are allowed)"
            ),
        );
    };
    let fits = match (t, scalar) {
        ("", _) => true,
        ("map", _) => kind == "mapping",
        ("seq", _) => kind == "list",
        (_, None) => false,
        ("int", Some(v)) => is_int(v),
        ("float", Some(v)) => is_float(v),
        ("bool", Some(v)) => parse_bool(v).is_some(),
        ("null", Some(v)) => is_none_like(v),
        (_, Some(_)) => true,
    };
    if fits {
        Ok(())
    } else if let Some(v) = scalar.filter(|_| kind == "scalar") {
        err(m, format!("the value {v:?} does not fit its tag {name}"))
    } else {
        err(m, format!("the tag {name} does not fit a {kind}"))
    }
}

impl Builder {
    fn count(&mut self, w: Weight, m: &Marker) -> Result<(), SyntaxError> {
        self.held.add(w);
        if self.held.nodes > MAX_NODES || self.held.bytes > MAX_TEXT_BYTES {
            return err(
                m,
                format!(
                    "the file holds more than {MAX_NODES} values or {} MiB of text (aliases expanded)",
                    MAX_TEXT_BYTES >> 20
                ),
            );
        }
        Ok(())
    }

    fn open(&mut self, frame: Frame, m: &Marker) -> Result<(), SyntaxError> {
        if self.stack.len() >= MAX_DEPTH {
            return err(
                m,
                format!("mappings and lists are nested more than {MAX_DEPTH} deep"),
            );
        }
        if let Some(Frame::Map { key: None, .. }) = self.stack.last() {
            return err(
                m,
                "mapping keys must be plain values, not a mapping or a list",
            );
        }
        self.count(Weight { nodes: 1, bytes: 0 }, m)?;
        self.stack.push(frame);
        Ok(())
    }

    /// Keeps a copy of an anchored node for its aliases (the copy counts).
    fn remember(&mut self, anchor: usize, node: &Node, weight: Weight) -> Result<(), SyntaxError> {
        if anchor != 0 {
            let at = node
                .span()
                .start()
                .copied()
                .unwrap_or_else(|| Marker::new(0, 0, 1, 1));
            self.count(weight, &at)?;
            self.anchors.insert(anchor, (node.clone(), weight));
        }
        Ok(())
    }

    /// Puts a finished node where it belongs: the root, a list item, a key,
    /// or the value of the pending key.
    fn place(&mut self, node: Node, weight: Weight, merge_key: bool) -> Result<(), SyntaxError> {
        let start = node
            .span()
            .start()
            .copied()
            .unwrap_or_else(|| Marker::new(0, 0, 1, 1));
        match self.stack.last_mut() {
            None => {
                self.root = Some(node);
                Ok(())
            }
            Some(Frame::Seq {
                items, weight: w, ..
            }) => {
                items.push(node);
                w.add(weight);
                Ok(())
            }
            Some(Frame::Map {
                map,
                key,
                merges,
                merge_at,
                weight: w,
                ..
            }) => {
                w.add(weight);
                match key.take() {
                    None => match node {
                        Node::Scalar(s) => {
                            *key = Some((s, merge_key));
                            Ok(())
                        }
                        _ => err(
                            &start,
                            "mapping keys must be plain values, not a mapping or a list",
                        ),
                    },
                    Some((k, true)) => {
                        let k_at = k.span().start().copied().unwrap_or(start);
                        if let Some(first) = merge_at {
                            return err(
                                &k_at,
                                format!("duplicate key \"<<\" (first at line {})", first.line()),
                            );
                        }
                        let ok = match &node {
                            Node::Mapping(_) => true,
                            Node::Sequence(items) => {
                                items.iter().all(|i| matches!(i, Node::Mapping(_)))
                            }
                            Node::Scalar(_) => false,
                        };
                        if !ok {
                            return err(
                                &start,
                                "the merge key << takes a mapping or a list of mappings (usually aliases: <<: *defaults)",
                            );
                        }
                        *merge_at = Some(k_at);
                        merges.push(node);
                        Ok(())
                    }
                    Some((k, false)) => {
                        if let Some((first, _)) = map.get_key_value(k.as_str()) {
                            let line = first.span().start().map_or(0, |m| m.line());
                            let k_at = k.span().start().copied().unwrap_or(start);
                            return err(
                                &k_at,
                                format!("duplicate key {:?} (first at line {line})", k.as_str()),
                            );
                        }
                        map.insert(k, node);
                        Ok(())
                    }
                }
            }
        }
    }

    fn scalar(
        &mut self,
        value: String,
        style: TScalarStyle,
        anchor: usize,
        tag: Option<Tag>,
        m: Marker,
    ) -> Result<(), SyntaxError> {
        check_tag(tag.as_ref(), "scalar", Some(&value), &m)?;
        let merge_tag = tag.as_ref().and_then(standard_type) == Some("merge");
        let in_key = matches!(self.stack.last(), Some(Frame::Map { key: None, .. }));
        if merge_tag && !(in_key && value == "<<") {
            return err(&m, "the tag !!merge is allowed only on the key <<");
        }
        let merge_key = in_key
            && value == "<<"
            && (merge_tag || (tag.is_none() && style == TScalarStyle::Plain));
        let weight = Weight {
            nodes: 1,
            bytes: value.len() as u64,
        };
        self.count(weight, &m)?;
        let node = Node::Scalar(MarkedScalarNode::new(Span::new_start(m), value));
        self.remember(anchor, &node, weight)?;
        self.place(node, weight, merge_key)
    }

    fn alias(&mut self, id: usize, m: Marker) -> Result<(), SyntaxError> {
        let Some((node, weight)) = self.anchors.get(&id) else {
            return err(&m, "this alias refers to the node that contains it");
        };
        let (node, weight) = (node.clone(), *weight);
        self.alias.add(weight);
        if self.alias.nodes > MAX_ALIAS_NODES || self.alias.bytes > MAX_ALIAS_BYTES {
            return err(
                &m,
                format!(
                    "aliases expand to more than {MAX_ALIAS_NODES} values or {} MiB of text (is an alias repeated inside nested anchors?)",
                    MAX_ALIAS_BYTES >> 20
                ),
            );
        }
        self.count(weight, &m)?;
        self.place(node, weight, false)
    }

    fn close(&mut self, m: Marker) -> Result<(), SyntaxError> {
        let Some(frame) = self.stack.pop() else {
            return err(&m, "unbalanced end of a mapping or list");
        };
        let (node, anchor, mut weight) = match frame {
            Frame::Seq {
                start,
                anchor,
                items,
                weight,
            } => (
                Node::Sequence(MarkedSequenceNode::new(
                    Span::new_with_marks(start, m),
                    items,
                )),
                anchor,
                weight,
            ),
            Frame::Map {
                start,
                anchor,
                mut map,
                key,
                merges,
                weight,
                ..
            } => {
                if key.is_some() {
                    return err(&m, "a mapping ended after a key without its value");
                }
                for source in merges {
                    let sources = match source {
                        Node::Mapping(one) => vec![one],
                        Node::Sequence(list) => list
                            .iter()
                            .filter_map(|n| n.as_mapping().cloned())
                            .collect(),
                        Node::Scalar(_) => Vec::new(),
                    };
                    for one in sources {
                        for (k, v) in one.iter() {
                            if !map.contains_key(k.as_str()) {
                                map.insert(k.clone(), v.clone());
                            }
                        }
                    }
                }
                *map.span_mut() = Span::new_with_marks(start, m);
                (Node::Mapping(map), anchor, weight)
            }
        };
        weight.nodes = weight.nodes.saturating_add(1);
        self.remember(anchor, &node, weight)?;
        self.place(node, weight, false)
    }
}

/// Parses configuration text (BOM already removed, see [`decode`]) into its
/// tree; `None` for a file with no document (empty, or only comments).
///
/// # Errors
/// [`SyntaxError`] for text that is not YAML or breaks a rule or limit of
/// this module.
pub fn parse(text: &str) -> Result<Option<Node>, SyntaxError> {
    check_characters(text)?;
    let mut parser = Parser::new_from_str(text);
    let mut b = Builder {
        stack: Vec::new(),
        anchors: HashMap::new(),
        root: None,
        held: Weight::default(),
        alias: Weight::default(),
    };
    let mut documents = 0;
    loop {
        let (event, mark) = parser.next_token().map_err(|e| SyntaxError {
            position: at(&marker(*e.marker())),
            message: e.info().to_owned(),
        })?;
        let m = marker(mark);
        match event {
            Event::Nothing | Event::StreamStart | Event::DocumentEnd => {}
            Event::StreamEnd => break,
            Event::DocumentStart => {
                documents += 1;
                if documents > 1 {
                    return err(
                        &m,
                        "a second YAML document (after `---`) is not allowed; the file must hold one document",
                    );
                }
            }
            Event::Alias(id) => b.alias(id, m)?,
            Event::Scalar(value, style, anchor, tag) => b.scalar(value, style, anchor, tag, m)?,
            Event::SequenceStart(anchor, tag) => {
                check_tag(tag.as_ref(), "list", None, &m)?;
                b.open(
                    Frame::Seq {
                        start: m,
                        anchor,
                        items: Vec::new(),
                        weight: Weight::default(),
                    },
                    &m,
                )?;
            }
            Event::MappingStart(anchor, tag) => {
                check_tag(tag.as_ref(), "mapping", None, &m)?;
                b.open(
                    Frame::Map {
                        start: m,
                        anchor,
                        map: MarkedMappingNode::new_empty(Span::new_start(m)),
                        key: None,
                        merges: Vec::new(),
                        merge_at: None,
                        weight: Weight::default(),
                    },
                    &m,
                )?;
            }
            Event::SequenceEnd | Event::MappingEnd => b.close(m)?,
        }
    }
    Ok(b.root)
}

#[cfg(test)]
mod tests;
