//! Property tests of the catalog's parsers on random and mutated input
//! (issue 10, "Hardening"): Release/InRelease text, repomd.xml, primary.xml
//! (plain and gzip) and ALT pkglists, seeded from the real fixtures in
//! tests/fixtures/catalog/trees and mutated (bytes flipped, inserted,
//! deleted, duplicated, spliced, truncated), or generated from scratch
//! (random bytes, XML documents declaring entities of random sizes).
//!
//! Properties: no parser panics; XML entity expansion stays within
//! `xml::expansion_budget` (the parsed document's text is bounded by the
//! input's size); `build_catalog` on a tree of such files succeeds, reports
//! the true sha256 and size of every file it hashes, and opens nothing
//! outside the tree; the process's peak RSS stays bounded.
//!
//! Default: 256 cases per property (about 10 s on 2 cores). Longer run:
//!
//! ```text
//! PROPTEST_CASES=20000 cargo test --release --test parser_props
//! ```

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use mirrorer::catalog::apt::{ReleaseFile, parse_index_path};
use mirrorer::catalog::ids::decode_backslashreplace;
use mirrorer::catalog::{Format, Repository, build_catalog, xml};
use proptest::prelude::*;
use sha2::{Digest, Sha256};

const TREES: &str = "tests/fixtures/catalog/trees";

/// Seed files of the fixtures, by kind.
struct Seeds {
    releases: Vec<Vec<u8>>,
    repomds: Vec<Vec<u8>>,
    primaries_gz: Vec<Vec<u8>>,
    pkglists: Vec<Vec<u8>>,
}

/// Collects the fixture files (symlinks not followed).
fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            collect(&path, out);
        } else if meta.is_file() {
            out.push(path);
        }
    }
}

fn seeds() -> &'static Seeds {
    static SEEDS: OnceLock<Seeds> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let mut files = Vec::new();
        collect(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join(TREES),
            &mut files,
        );
        files.sort();
        let mut seeds = Seeds {
            releases: Vec::new(),
            repomds: Vec::new(),
            primaries_gz: Vec::new(),
            pkglists: Vec::new(),
        };
        for path in files {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let Ok(bytes) = fs::read(&path) else { continue };
            if name == "Release" || name == "InRelease" {
                seeds.releases.push(bytes);
            } else if name == "repomd.xml" {
                seeds.repomds.push(bytes);
            } else if name.ends_with("primary.xml.gz") {
                seeds.primaries_gz.push(bytes);
            } else if name.starts_with("pkglist.") {
                seeds.pkglists.push(bytes);
            }
        }
        for (kind, list) in [
            ("Release", &seeds.releases),
            ("repomd.xml", &seeds.repomds),
            ("primary.xml.gz", &seeds.primaries_gz),
            ("pkglist", &seeds.pkglists),
        ] {
            assert!(!list.is_empty(), "no {kind} fixture under {TREES}");
        }
        seeds
    })
}

/// One edit of a byte string (positions are taken modulo its length).
#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Duplicate(usize, usize, u8),
    Truncate(usize),
    /// Inserts a fragment that means something to the format.
    Token(usize, usize),
}

/// Fragments of Release and XML syntax, to make mutations reach deeper.
const TOKENS: &[&str] = &[
    "\n",
    "\r\n",
    " ",
    "\t",
    ":",
    "SHA256:\n",
    "MD5Sum:\n",
    " 00 1 main/binary-amd64/Packages\n",
    " 00 -1 ../../x/binary-i386/Packages.gz\n",
    " 00 99999999999999999999 /etc/binary-amd64/Packages\n",
    "-----BEGIN PGP SIGNATURE-----\n",
    "\u{2028}",
    "\u{85}",
    "\u{fffd}",
    "<",
    ">",
    "&",
    "&amp;",
    "&e;",
    "<![CDATA[",
    "]]>",
    "<!DOCTYPE r [<!ENTITY e \"xxxxxxxxxxxxxxxx\">]>",
    "<data type=\"primary\">",
    "</data>",
    "<location href=\"/etc/passwd\"/>",
    "<location href=\"../../../../etc/passwd\"/>",
    "<location xml:base=\"/\" href=\"etc/passwd\"/>",
    "<checksum type=\"sha256\">",
    "</checksum>",
    "<size>",
    "</size>",
    "xmlns:x=\"u\"",
    "\u{0}",
    "\u{1f}",
];

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(p, b)| Mutation::Flip(p, b)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(p, v)| Mutation::Insert(p, v)),
        (any::<usize>(), 1usize..64).prop_map(|(p, n)| Mutation::Delete(p, n)),
        (any::<usize>(), 1usize..256, 1u8..8).prop_map(|(p, n, k)| Mutation::Duplicate(p, n, k)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<usize>()).prop_map(|(p, t)| Mutation::Token(p, t)),
    ]
}

fn apply(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let len = bytes.len();
        let at = |p: usize| if len == 0 { 0 } else { p % (len + 1) };
        match m {
            Mutation::Flip(p, b) => {
                if len > 0 {
                    bytes[p % len] ^= b;
                }
            }
            Mutation::Insert(p, v) => {
                let i = at(*p);
                bytes.splice(i..i, v.iter().copied());
            }
            Mutation::Delete(p, n) => {
                let i = at(*p);
                let end = (i + n).min(len);
                bytes.drain(i..end);
            }
            Mutation::Duplicate(p, n, k) => {
                let i = at(*p);
                let end = (i + n).min(len);
                let piece = bytes[i..end].to_vec();
                for _ in 0..*k {
                    bytes.splice(end..end, piece.iter().copied());
                }
            }
            Mutation::Truncate(p) => {
                let i = at(*p);
                bytes.truncate(i);
            }
            Mutation::Token(p, t) => {
                let i = at(*p);
                let token = TOKENS[t % TOKENS.len()].as_bytes();
                bytes.splice(i..i, token.iter().copied());
            }
        }
    }
    bytes
}

/// A fixture of `pick(seeds)` mutated, or random bytes.
fn input(pick: fn(&Seeds) -> &Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => (any::<usize>(), prop::collection::vec(mutation(), 0..12)).prop_map(move |(i, ms)| {
            let list = pick(seeds());
            apply(list[i % list.len()].clone(), &ms)
        }),
        1 => prop::collection::vec(any::<u8>(), 0..2048),
    ]
}

/// A document declaring one entity of `size` bytes (optionally nesting a
/// second) and using it `uses` times, in text or in an attribute.
fn entity_doc() -> impl Strategy<Value = String> {
    (1usize..20_000, 0usize..3_000, any::<bool>(), 0usize..40).prop_map(
        |(size, uses, in_attr, fan)| {
            let value = "y".repeat(size);
            let nested = "&a;".repeat(fan);
            let refs = "&b;".repeat(uses);
            let body = if in_attr {
                format!("<r x=\"{refs}\"/>")
            } else {
                format!("<r>{refs}</r>")
            };
            format!("<!DOCTYPE r [<!ENTITY a \"{value}\"><!ENTITY b \"{nested}z\">]>{body}")
        },
    )
}

/// Parses with the catalog's XML parser; the bytes of text and attribute
/// values of the document.
fn parsed_text_len(text: &str) -> Result<usize, String> {
    let doc = xml::parse(text)?;
    Ok(doc
        .descendants()
        .map(|node| {
            node.text().map_or(0, str::len)
                + node.attributes().map(|a| a.value().len()).sum::<usize>()
        })
        .sum())
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Peak resident set size of this process, in KiB.
fn peak_rss_kib() -> i64 {
    // SAFETY: getrusage writes into the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a rusage struct.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    usage.ru_maxrss
}

/// Memory bound of the whole test process (all properties, all threads).
const PEAK_RSS_LIMIT_KIB: i64 = 1 << 20;

proptest! {
    #[test]
    fn release_parser_never_panics(bytes in input(|s| &s.releases)) {
        let release = ReleaseFile::parse(&decode_backslashreplace(&bytes));
        let _ = release.is_empty();
        if let Some((_, entries)) = release.best_checksums() {
            for entry in entries {
                prop_assert!(!entry.path.is_empty());
                let _ = parse_index_path(&entry.path);
            }
        }
        prop_assert!(peak_rss_kib() < PEAK_RSS_LIMIT_KIB);
    }

    #[test]
    fn repomd_parser_is_bounded(bytes in input(|s| &s.repomds)) {
        let text = String::from_utf8_lossy(&bytes);
        if let Ok(len) = parsed_text_len(&text) {
            let bound = text.len() as u128 + xml::expansion_budget(text.len());
            prop_assert!(len as u128 <= bound);
        }
        prop_assert!(peak_rss_kib() < PEAK_RSS_LIMIT_KIB);
    }

    #[test]
    fn entity_expansion_is_bounded(text in entity_doc()) {
        if let Ok(len) = parsed_text_len(&text) {
            let bound = text.len() as u128 + xml::expansion_budget(text.len());
            prop_assert!(len as u128 <= bound,
                "{} bytes of text from {} bytes of input", len, text.len());
        }
        prop_assert!(peak_rss_kib() < PEAK_RSS_LIMIT_KIB);
    }

    #[test]
    fn catalog_of_hostile_files_hashes_exactly_what_it_reads(
        release in input(|s| &s.releases),
        repomd in input(|s| &s.repomds),
        primary_gz in input(|s| &s.primaries_gz),
        primary_plain in prop::collection::vec(any::<u8>(), 0..4096),
        pkglist in input(|s| &s.pkglists),
        gz_pkglist in any::<bool>(),
    ) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().join("root");
        let write = |rel: &str, bytes: &[u8]| {
            let path = root.join(rel);
            fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            fs::write(&path, bytes).expect("write");
        };
        // A file outside the root that hostile paths may name.
        fs::write(tmp.path().join("secret"), b"outside").expect("write");
        let secret = sha256(b"outside");
        write("deb/dists/s/Release", &release);
        write("deb/dists/s/main/binary-amd64/Packages", b"Package: x\n");
        write("rpm/r/repodata/repomd.xml", &repomd);
        let gz_name = "c329d13a72c10794a98ed782ebc5f1a0a5f053829f85b5268cf6aa1eef47d9c4-primary.xml.gz";
        write(&format!("rpm/r/repodata/{gz_name}"), &primary_gz);
        write("rpm/r/repodata/primary.xml", &primary_plain);
        let pkglist_name = if gz_pkglist { "pkglist.classic.gz" } else { "pkglist.classic" };
        write(&format!("alt/x86_64/base/{pkglist_name}"), &pkglist);

        let catalog = build_catalog(&root, &Format::ALL, "props").expect("catalog");
        let text = mirrorer::catalog::render(&catalog).expect("render");
        prop_assert!(!text.contains(&secret), "a file outside the root was hashed");
        let files: Vec<(String, Vec<u8>)> = vec![
            (format!("rpm/r/repodata/{gz_name}"), primary_gz.clone()),
            ("rpm/r/repodata/primary.xml".to_owned(), primary_plain.clone()),
            ("deb/dists/s/main/binary-amd64/Packages".to_owned(), b"Package: x\n".to_vec()),
            (format!("alt/x86_64/base/{pkglist_name}"), pkglist.clone()),
        ];
        let expect = |path: &str, sha: &str, size: u64| -> Result<(), TestCaseError> {
            if let Some((_, bytes)) = files.iter().find(|(p, _)| p == path) {
                prop_assert_eq!(sha, sha256(bytes));
                prop_assert_eq!(size, bytes.len() as u64);
            }
            Ok(())
        };
        for repo in &catalog.repositories {
            match repo {
                Repository::Apt(a) => expect(&a.metadata_path, &a.metadata_sha256, a.metadata_size)?,
                Repository::AptRpm(a) => expect(&a.metadata_path, &a.metadata_sha256, a.metadata_size)?,
                Repository::Rpm(r) => {
                    if let Some(sha) = &r.repomd_sha256 {
                        prop_assert_eq!(sha, &sha256(&repomd));
                    }
                    for item in &r.metadata {
                        if let (Some(path), Some(sha), Some(size)) =
                            (&item.path, &item.metadata_sha256, item.metadata_size)
                        {
                            expect(path, sha, size)?;
                        }
                    }
                }
            }
        }
        prop_assert!(peak_rss_kib() < PEAK_RSS_LIMIT_KIB);
    }
}
