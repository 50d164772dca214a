//! `av-scan` with its list streamed to and from disk (issue 17): the full
//! walk of a first scan (the parallel getdents64 walk) lists exactly what a
//! sort of every regular file's path gives, symlinks and the root's `.zfs`
//! left out; a dry run leaves no temp file; `zfs diff` output taken line by
//! line drops a path printed twice in a row.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::common::Env;

const SCAN_PREFIX: &str = "kesl-control --scan-file --action DisinfectInformIfNotPossible ";

/// The list's escaping: `\`, control bytes and DEL as `\` + three octal digits.
fn escape(path: &[u8], out: &mut Vec<u8>) {
    for &b in path {
        if b == b'\\' || b < 0x20 || b == 0x7f {
            out.extend_from_slice(format!("\\{b:03o}").as_bytes());
        } else {
            out.push(b);
        }
    }
}

/// Every regular file under `dir` (not following symlinks), the root's
/// `.zfs` left out: the rule of the full scan, computed the plain way.
fn regular_files(root: &Path, dir: &Path, out: &mut Vec<Vec<u8>>) {
    for entry in fs::read_dir(dir).expect("read_dir") {
        let entry = entry.expect("entry");
        let kind = entry.file_type().expect("file type");
        if kind.is_dir() {
            if !(dir == root && entry.file_name() == ".zfs") {
                regular_files(root, &entry.path(), out);
            }
        } else if kind.is_file() {
            out.push(entry.path().as_os_str().as_bytes().to_vec());
        }
    }
}

fn make_file(root: &Path, rel: &[u8]) {
    let path = root.join(OsStr::from_bytes(rel));
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    fs::write(&path, "x").expect("write");
}

#[test]
fn a_full_walk_lists_every_regular_file_in_byte_order_of_the_paths() {
    let env = Env::with_av_config(2, 7, "");
    let m = env.mount();
    // Names whose order differs between "each directory in name order" and
    // "the whole paths in byte order" ('-' < '.' < '/' < '0'), odd bytes,
    // many top-level entries (walked in parallel) with files between them.
    for rel in [
        &b"a-"[..],
        b"a.txt",
        b"a/b",
        b"a/c/d",
        b"a0",
        b"a0dir/x",
        b"b/nl\nname",
        b"b/back\\slash",
        b"b/\xff\xfe.bin",
        b"b/tab\tand del\x7f",
        b"sub/.zfs/kept",
        b".zfs/shares/skipped",
        b"zz top",
    ] {
        make_file(&m, rel);
    }
    for i in 0..40 {
        make_file(&m, format!("top{i:02}/pool/f{i}").as_bytes());
        make_file(&m, format!("top{i:02}.deb").as_bytes());
    }
    std::os::unix::fs::symlink("a.txt", m.join("link-to-file")).expect("symlink");
    std::os::unix::fs::symlink("a", m.join("link-to-dir")).expect("symlink");
    std::os::unix::fs::symlink("/etc", m.join("b/out")).expect("symlink");
    env.run()
        .arg("av-scan")
        .success()
        .stderr_has("av_scan_no_snapshot_full_scan")
        .stderr_has("av_scan_finished")
        .run();

    let mut paths = Vec::new();
    regular_files(&m, &m, &mut paths);
    paths.sort();
    let mut expected = Vec::new();
    for p in &paths {
        escape(p, &mut expected);
        expected.push(b'\n');
    }
    let list = env.assert_scan_list(&expected);
    let text = String::from_utf8_lossy(&list);
    let at = |rel: &str| {
        text.find(&format!("{}/{rel}\n", m.display()))
            .unwrap_or_else(|| panic!("{rel} not listed:\n{text}"))
    };
    assert!(at("a-") < at("a.txt") && at("a.txt") < at("a/b") && at("a/c/d") < at("a0"));
    assert!(at("a0") < at("a0dir/x"));
    at("sub/.zfs/kept");
    for gone in ["skipped", "link-to", "b/out"] {
        assert!(!text.contains(gone), "{gone} listed:\n{text}");
    }
    // Every listed file was scanned once, in batches of at most 7.
    let log = env.log_of("kesl-control");
    let batches: Vec<&String> = log.iter().filter(|l| l.starts_with(SCAN_PREFIX)).collect();
    assert_eq!(batches.len(), paths.len().div_ceil(7), "{log:?}");
    let journal = fs::read_to_string(env.av_state("journal")).expect("journal");
    assert!(
        journal.ends_with(&format!("B\t0\t{}\tclean\n", paths.len())),
        "{journal}"
    );
    // Nothing but the state files is left in av_state/ (no temp file).
    let mut names: Vec<String> = fs::read_dir(env.av_state(""))
        .expect("av_state")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "done",
            "files_to_scan.txt",
            "journal",
            "scan_start_time.txt"
        ]
    );
}

#[test]
fn a_dry_run_walks_but_leaves_no_list_and_no_temp_file() {
    let env = Env::with_av_config(2, 2, "");
    let tmp = tempfile::tempdir().expect("tmp");
    env.run()
        .env("TMPDIR", tmp.path())
        .arg("--dry-run")
        .arg("av-scan")
        .success()
        .stderr_has("av_scan_no_snapshot_full_scan")
        .stderr_has("dry_run_write")
        .stderr_has("files_to_scan.txt")
        .stderr_has("dry_run_command")
        .run();
    assert!(env.log_of("kesl-control").is_empty());
    assert!(!env.av_state("files_to_scan.txt").exists());
    let left: Vec<_> = fs::read_dir(tmp.path()).expect("tmp").collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_path_printed_twice_in_a_row_by_zfs_diff_is_listed_once() {
    let env = Env::with_av_config(1, 10, "");
    env.write_file("mirror/twice.deb", "deb");
    env.make_snapshot("20260101-000000");
    let m = env.mount();
    let extra = format!("M\tF\t{m}/twice.deb\nM\tF\t{m}/twice.deb", m = m.display());
    env.run()
        .env("FAKE_ZFS_DIFF_EXTRA", &extra)
        .arg("av-scan")
        .success()
        .stderr_has("av_scan_changes_listed")
        .run();
    let list = fs::read_to_string(env.av_state("files_to_scan.txt")).expect("list");
    assert_eq!(list, format!("{}/twice.deb\n", m.display()));
}
