//! The fake zfs's `diff -H -F`, read with the parser the av-scan stage will
//! use ([`mirrorer::backends::zfs::parse_diff_line`]): pins the fake's output
//! format for the engineers who reuse it.

use std::fs;
use std::path::{Path, PathBuf};

use crate::common::{DATASET, Env, fakes_dir};
use mirrorer::backends::zfs::parse_diff_line;

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
    // Compared as (change, type, path) so the test holds whether
    // `DiffEntry::path` is a String or a PathBuf.
    let mut got: Vec<(char, char, PathBuf)> = text
        .lines()
        .filter_map(parse_diff_line)
        .map(|e| (e.change, e.kind, Path::new(&e.path).to_path_buf()))
        .collect();
    got.sort_by(|a, b| a.2.cmp(&b.2));
    let m = env.mount();
    assert_eq!(
        got,
        vec![
            ('M', 'F', m.join("change.txt")),
            ('-', 'F', m.join("gone.txt")),
            ('+', '/', m.join("new dir")),
            ('+', 'F', m.join("new dir/added file.txt")),
        ],
        "{text}"
    );
}
