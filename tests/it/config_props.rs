//! Property tests of the config loader (`mirrorer::config::from_str`):
//! random text, and the documented example mutated by YAML-shaped edits,
//! never make it panic, hang or grow without bound; whatever it accepts
//! passes its own rules again, and an error always carries a position.
//!
//! The default run (256 cases per property, about 10 s in a debug build)
//! is part of `cargo test`; `PROPTEST_CASES=20000 cargo test --test
//! config_props` runs a longer one.

use std::path::Path;

use mirrorer::config::{self, ConfigError};
use proptest::prelude::*;

const EXAMPLE: &str = include_str!("../../examples/dist-mirror.yaml");

/// Pieces of YAML and of hostile text that edits insert.
const SNIPPETS: &[&str] = &[
    "&a ",
    "*a",
    "&b ",
    "*b",
    "<<: *a\n",
    "<<: [*a, *b]\n",
    "!!str ",
    "!!int ",
    "!!map ",
    "!!seq ",
    "!!bool ",
    "!foo ",
    "! ",
    "[",
    "]",
    "{",
    "}",
    ", ",
    ": ",
    "- ",
    "? ",
    "\n",
    "\n  ",
    "\n    - ",
    "#",
    "---\n",
    "...\n",
    "\"",
    "'",
    "|\n  ",
    ">\n  ",
    "\\0",
    "\"\\0\"",
    "\"\\uFFFE\"",
    "\u{feff}",
    "\0",
    "\u{1}",
    "\u{7f}",
    "\u{85}",
    "\u{fffe}",
    "\t",
    "\r\n",
    "~",
    "null",
    "yes",
    "-x",
    "--help",
    "..",
    "/",
    "@",
    "%",
    "1e20",
    "-1",
    "0x10",
    "name: a\n",
    "prefix: a\n",
    "type: rsync\n",
    "syncer:\n",
    "  - {type: apt, name: a, config: c}\n",
    "[[[[[[[[[[[[[[[[[[[[",
    "- - - - - - - - - - ",
    "&x [*x]",
];

fn snippet() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(SNIPPETS).prop_map(str::to_owned),
        1 => any::<char>().prop_map(String::from),
        1 => "[ -~]{1,12}",
    ]
}

/// One edit of the text: insert a snippet, delete a range, duplicate or
/// drop a line, or repeat a range (positions are taken modulo the length
/// and moved to a character boundary).
#[derive(Debug, Clone)]
enum Edit {
    Insert(usize, String),
    Delete(usize, usize),
    DuplicateLine(usize),
    DropLine(usize),
    Repeat(usize, usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        5 => (any::<usize>(), snippet()).prop_map(|(at, s)| Edit::Insert(at, s)),
        2 => (any::<usize>(), 1..40usize).prop_map(|(at, n)| Edit::Delete(at, n)),
        1 => any::<usize>().prop_map(Edit::DuplicateLine),
        1 => any::<usize>().prop_map(Edit::DropLine),
        1 => (any::<usize>(), 1..30usize, 2..50usize).prop_map(|(at, n, k)| Edit::Repeat(at, n, k)),
    ]
}

fn boundary(text: &str, at: usize) -> usize {
    let mut i = if text.is_empty() {
        0
    } else {
        at % (text.len() + 1)
    };
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// `at` clamped to the text, moved back to a character boundary.
fn clamped(text: &str, at: usize) -> usize {
    let mut i = at.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn apply(text: &mut String, e: &Edit) {
    match e {
        Edit::Insert(at, s) => {
            let i = boundary(text, *at);
            text.insert_str(i, s);
        }
        Edit::Delete(at, n) => {
            let i = boundary(text, *at);
            let j = clamped(text, i + n);
            if j > i {
                text.replace_range(i..j, "");
            }
        }
        Edit::DuplicateLine(at) | Edit::DropLine(at) => {
            let lines: Vec<&str> = text.split_inclusive('\n').collect();
            if lines.is_empty() {
                return;
            }
            let k = at % lines.len();
            let mut out = String::new();
            for (i, l) in lines.iter().enumerate() {
                if i != k || matches!(e, Edit::DuplicateLine(_)) {
                    out.push_str(l);
                }
                if i == k && matches!(e, Edit::DuplicateLine(_)) {
                    out.push_str(l);
                }
            }
            *text = out;
        }
        Edit::Repeat(at, n, times) => {
            let i = boundary(text, *at);
            let j = clamped(text, i + n);
            let piece = text[i..j].repeat(*times);
            text.insert_str(j, &piece);
        }
    }
}

/// Loads `text` and checks what the loader promises about any input.
fn check(text: &str) -> Result<(), TestCaseError> {
    let path = Path::new("props.yaml");
    match config::from_str(text, path) {
        Ok(c) => {
            // Accepted: the rules hold on the result.
            for s in &c.syncers {
                prop_assert!(!s.name.starts_with('-'), "{:?}", s.name);
                prop_assert!(!s.name.contains('\0') && !s.prefix.contains('\0'));
            }
            let mut names: Vec<String> = c
                .syncers
                .iter()
                .map(|s| config::safe_name(&s.name))
                .collect();
            names.sort();
            names.dedup();
            prop_assert_eq!(
                names.len(),
                c.syncers.len(),
                "two syncers share a lock file"
            );
            prop_assert!(c.mirror.kesl_max_workers >= 1 && c.mirror.kesl_max_workers <= 64);
        }
        Err(ConfigError::Syntax {
            position, message, ..
        }) => {
            prop_assert!(position.line >= 1, "{message}");
            prop_assert!(!message.is_empty());
        }
        Err(ConfigError::Invalid { problems, .. }) => {
            prop_assert!(!problems.is_empty());
            for p in &problems {
                prop_assert!(p.position.line >= 1 && p.position.column >= 1, "{p}");
                prop_assert!(!p.message.is_empty());
            }
        }
        Err(ConfigError::Read { .. }) => prop_assert!(false, "from_str reads no file"),
    }
    Ok(())
}

proptest! {
    // Cases from PROPTEST_CASES (default 256); failures are printed, not
    // written to a regressions file.
    #![proptest_config(ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn mutated_example_configs_never_panic(edits in prop::collection::vec(edit(), 1..12)) {
        let mut text = EXAMPLE.to_owned();
        for e in &edits {
            apply(&mut text, e);
        }
        check(&text)?;
    }

    #[test]
    fn random_text_never_panics(text in prop::collection::vec(snippet(), 0..60)) {
        check(&text.concat())?;
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        check(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn generated_syncer_lists_never_panic(
        items in prop::collection::vec(
            (
                prop::sample::select(&["apt", "rsync", "dnf", "rmt", "x", ""][..]),
                prop::option::of(snippet()),
                prop::option::of(snippet()),
                prop::option::of("[a-z/. -]{0,10}"),
                any::<bool>(),
            ),
            0..8,
        )
    ) {
        let mut text = String::from("defaults: &d {config: c.list, repos: r.yaml}\nsyncer:\n");
        for (kind, name, prefix, dest, merge) in &items {
            text.push_str(&format!("  - type: {kind:?}\n"));
            if *merge {
                text.push_str("    <<: *d\n");
            }
            for (key, value) in [("name", name), ("prefix", prefix), ("dest", dest)] {
                if let Some(v) = value {
                    text.push_str(&format!("    {key}: {v:?}\n"));
                }
            }
        }
        check(&text)?;
    }
}

/// After all the cases above (and the billion-laughs shapes below) the
/// process stays small: nothing the loader read was kept or exploded.
#[test]
fn hostile_shapes_stay_bounded() {
    let mut laughs = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for level in 1..12u8 {
        let (prev, cur) = ((b'a' + level - 1) as char, (b'a' + level) as char);
        laughs.push_str(&format!(
            "{cur}: &{cur} [{}]\n",
            vec![format!("*{prev}"); 10].join(", ")
        ));
    }
    let mut merges = String::from("a: &a {k0: v}\n");
    for level in 1..20 {
        merges.push_str(&format!(
            "m{level}: &m{level} {{<<: [*a, *a, *a], k{level}: v}}\n"
        ));
    }
    for text in [
        laughs,
        merges,
        "[".repeat(200_000),
        "- ".repeat(200_000),
        "a: b\n".repeat(100_000),
    ] {
        let _ = config::from_str(&text, Path::new("big.yaml"));
    }
    // SAFETY: getrusage writes into the zeroed struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) }, 0);
    let rss = u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024;
    assert!(rss < 1 << 30, "the test process reached {} MiB", rss >> 20);
}
