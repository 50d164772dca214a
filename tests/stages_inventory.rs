//! `publish-inventory` against goldens produced by mirrorer 0.1.0 (see
//! tests/fixtures/inventory/README.md).

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use common::{Env, fixture, stderr, temp_files};

#[test]
fn inventory_is_byte_identical_to_the_reference() {
    let env = Env::new();
    env.write_config(&env.default_config());
    let status = std::process::Command::new("sh")
        .arg(fixture("inventory/build_tree.sh"))
        .arg(env.workdir())
        .status()
        .expect("run build_tree.sh");
    assert!(status.success());
    let out = env
        .cmd()
        .arg("publish-inventory")
        .assert()
        .success()
        .get_output()
        .clone();
    let path = env.workdir().join("metadata/inventory.json");
    let got = fs::read_to_string(&path).unwrap();
    let want = fs::read_to_string(fixture("inventory/inventory.golden.json")).unwrap();
    assert_eq!(got, want);
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o644
    );
    assert_eq!(temp_files(&env.workdir()), Vec::<String>::new());
    let stderr = stderr(&out);
    assert!(stderr.contains("inventory_written path="), "{stderr}");
    assert!(stderr.contains("latest=Ångström"), "{stderr}");
}

#[test]
fn inventory_without_a_published_tree_is_empty_like_the_reference() {
    let env = Env::new();
    env.write_config(&env.default_config());
    env.cmd().arg("publish-inventory").assert().success();
    let got = fs::read_to_string(env.workdir().join("metadata/inventory.json")).unwrap();
    let want = fs::read_to_string(fixture("inventory/inventory-empty.golden.json")).unwrap();
    assert_eq!(got, want);
}

#[test]
fn inventory_dry_run_writes_nothing() {
    let env = Env::new();
    env.write_config(&env.default_config());
    let out = env
        .cmd()
        .args(["--dry-run", "publish-inventory"])
        .assert()
        .success()
        .get_output()
        .clone();
    assert!(!env.workdir().join("metadata").exists());
    let stderr = stderr(&out);
    assert!(stderr.contains("dry_run_write path="), "{stderr}");
    assert!(
        stderr.contains("metadata/inventory.json bytes=91"),
        "{stderr}"
    );
}
