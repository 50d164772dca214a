//! `publish-catalog` through the real binary: the catalog of each selected
//! published snapshot, written where docs/stages.md says, with the same
//! bytes (but `generated_at`) as `mirrorer catalog` on that directory,
//! which is itself checked against mirrorer 0.1.0 (tests/catalog*.rs).

use std::fs;
use std::path::{Path, PathBuf};

use crate::common::{Env, assert_has_all, fixture, stderr, temp_files};

/// Publishes `snap` by hand: `repo/snapshots/<snap>/<prefix>` symlinks to
/// copies of the catalog fixture trees (APT and RPM repositories).
fn publish(env: &Env, snap: &str) -> PathBuf {
    let src = env.root.join("sources").join(snap);
    fs::create_dir_all(&src).unwrap();
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(fixture("catalog/trees/apt/debian"))
        .arg(fixture("catalog/trees/rpm/centos"))
        .arg(&src)
        .status()
        .unwrap();
    assert!(status.success());
    let dir = env.workdir().join("repo/snapshots").join(snap);
    fs::create_dir_all(&dir).unwrap();
    for prefix in ["debian", "centos"] {
        std::os::unix::fs::symlink(src.join(prefix), dir.join(prefix)).unwrap();
    }
    dir
}

fn catalog_path(env: &Env, snap: &str) -> PathBuf {
    env.workdir()
        .join("metadata/snapshots")
        .join(snap)
        .join("repo_catalog.json")
}

/// The catalog without its `generated_at` line.
fn without_clock(text: &str) -> String {
    text.lines()
        .filter(|l| !l.trim_start().starts_with("\"generated_at\""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What `mirrorer catalog` writes for `dir` with `shard`.
fn standalone(env: &Env, dir: &Path, shard: &str) -> String {
    let out = env
        .run()
        .args(["catalog", "--shard", shard, "--root-dir"])
        .arg(dir)
        .success()
        .run();
    String::from_utf8(out.output.stdout).unwrap()
}

#[test]
fn one_snapshot_is_cataloged_like_the_catalog_command() {
    let env = Env::with_default_config();
    let dir = publish(&env, "20260601-120000");
    let out = env
        .run()
        .env("DIST_MIRROR_REPO_CATALOG_SHARD", "shard07")
        .args(["publish-catalog", "--snapshot", "20260601-120000"])
        .success()
        .run();
    let got = fs::read_to_string(catalog_path(&env, "20260601-120000")).unwrap();
    assert!(got.contains("\"shard\": \"shard07\""));
    assert!(got.contains("\"type\": \"apt\"") && got.contains("\"type\": \"rpm\""));
    assert_eq!(
        without_clock(&got),
        without_clock(&standalone(&env, &dir, "shard07"))
    );
    let err = stderr(&out);
    assert_has_all(
        &err,
        &[
            "repo_catalog_written snapshot=20260601-120000",
            "shard=shard07",
        ],
    );
    assert_eq!(temp_files(&env.workdir()), Vec::<String>::new());
}

#[test]
fn rebuild_catalogs_every_published_snapshot_and_current_is_the_default() {
    let env = Env::with_default_config();
    publish(&env, "20260601-120000");
    publish(&env, "20260602-120000");
    // Not a snapshot directory: ignored.
    fs::write(env.workdir().join("repo/snapshots/README"), "x").unwrap();
    env.run()
        .args(["publish-catalog", "--rebuild"])
        .success()
        .run();
    for snap in ["20260601-120000", "20260602-120000"] {
        assert!(catalog_path(&env, snap).is_file(), "{snap}");
    }
    let metadata = env.workdir().join("metadata/snapshots");
    assert_eq!(
        crate::common::list_dir(&metadata),
        ["20260601-120000", "20260602-120000"]
    );

    fs::remove_dir_all(&metadata).unwrap();
    fs::create_dir_all(env.state()).unwrap();
    fs::write(
        env.state().join("current_snapshot.txt"),
        "20260602-120000\n",
    )
    .unwrap();
    env.run().arg("publish-catalog").success().run();
    assert_eq!(crate::common::list_dir(&metadata), ["20260602-120000"]);
}

#[test]
fn nothing_selected_or_missing_directories_fail_and_write_nothing() {
    let env = Env::with_default_config();
    env.run()
        .arg("publish-catalog")
        .code(1)
        .stderr_has("no published snapshots selected for catalog generation")
        .run();
    env.run()
        .args(["publish-catalog", "--rebuild"])
        .code(1)
        .stderr_has("no published snapshots selected")
        .run();
    env.run()
        .args(["publish-catalog", "--snapshot", "20260601-120000"])
        .code(1)
        .stderr_has("published snapshot directory not found")
        .stderr_has("repo/snapshots/20260601-120000")
        .run();
    assert!(!env.workdir().join("metadata/snapshots").exists());
}

#[test]
fn bad_snapshot_names_are_usage_errors() {
    let env = Env::with_default_config();
    for bad in ["../x", "-x", "a/b"] {
        env.assert_usage_error(&["publish-catalog", "--snapshot", bad]);
    }
    env.assert_usage_error(&["publish-catalog", "--snapshot", "x", "--rebuild"]);
}

#[test]
fn dry_run_writes_nothing() {
    let env = Env::with_default_config();
    publish(&env, "20260601-120000");
    env.run()
        .args(["--dry-run", "publish-catalog", "--rebuild"])
        .success()
        .stderr_has("dry_run_write")
        .run();
    assert!(!env.workdir().join("metadata").exists());
}
