//! `publish-inventory` against goldens produced by mirrorer 0.1.0 (see
//! tests/fixtures/inventory/README.md).

use std::fs;
use std::os::unix::fs::PermissionsExt;

use crate::common::{Env, assert_has_all, fixture, stderr, temp_files};

#[test]
fn inventory_is_byte_identical_to_the_reference() {
    let env = Env::with_default_config();
    let status = std::process::Command::new("sh")
        .arg(fixture("inventory/build_tree.sh"))
        .arg(env.workdir())
        .status()
        .expect("run build_tree.sh");
    assert!(status.success());
    let out = env.run().arg("publish-inventory").success().run();
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
    assert_has_all(&stderr, &["inventory_written path=", "latest=Ångström"]);
}

#[test]
fn inventory_without_a_published_tree_is_empty_like_the_reference() {
    let env = Env::with_default_config();
    env.run().arg("publish-inventory").success().run();
    let got = fs::read_to_string(env.workdir().join("metadata/inventory.json")).unwrap();
    let want = fs::read_to_string(fixture("inventory/inventory-empty.golden.json")).unwrap();
    assert_eq!(got, want);
}

#[test]
fn inventory_dry_run_writes_nothing() {
    let env = Env::with_default_config();
    let stderr = env.dry_run("publish-inventory").stderr;
    assert!(!env.workdir().join("metadata").exists());
    assert_has_all(
        &stderr,
        &["dry_run_write path=", "metadata/inventory.json bytes=91"],
    );
}
