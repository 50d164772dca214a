//! The fake zfs's `diff -H -F`, read with the parser the av-scan stage will
//! use ([`mirrorer::backends::zfs::parse_diff_line`]): pins the fake's output
//! format for the engineers who reuse it.

mod common;

use std::fs;

use common::{DATASET, Env, fakes_dir};
use mirrorer::backends::zfs::{DiffEntry, parse_diff_line};

#[test]
fn fake_zfs_diff_reports_changes_since_a_snapshot() {
    let env = Env::new();
    env.write_file("mirror/keep.txt", "same");
    env.write_file("mirror/change.txt", "old");
    env.write_file("mirror/gone.txt", "x");
    env.make_snapshot("s1");
    env.write_file("mirror/change.txt", "new");
    env.write_file("mirror/new dir/added file.txt", "+");
    fs::remove_file(env.mount().join("gone.txt")).unwrap();
    let out = std::process::Command::new(fakes_dir().join("zfs"))
        .args(["diff", "-H", "-F", &format!("{DATASET}@s1")])
        .env("FAKE_ZFS_DATASET", DATASET)
        .env("FAKE_ZFS_MOUNT", env.mount())
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("new\\0040dir/added\\0040file.txt"), "{text}");
    let mut got: Vec<DiffEntry> = text.lines().filter_map(parse_diff_line).collect();
    got.sort_by(|a, b| a.path.cmp(&b.path));
    let m = env.mount();
    let entry = |change, kind, rel: &str| DiffEntry {
        change,
        kind,
        path: m.join(rel).display().to_string(),
    };
    assert_eq!(
        got,
        vec![
            entry('M', 'F', "change.txt"),
            entry('-', 'F', "gone.txt"),
            entry('+', '/', "new dir"),
            entry('+', 'F', "new dir/added file.txt"),
        ]
    );
}
