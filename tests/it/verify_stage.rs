//! Integration tests of the stage form `mirrorer verify [--snapshot NAME]`
//! (with a config): the real binary, the fake zfs (tests/fakes/zfs: snapshots
//! are copies under <mount>/.zfs/snapshot), the APT fixture tree of the
//! catalog as the synced content, `repo.paths` mapping it to `debian`.

use std::fs;
use std::path::PathBuf;

use crate::common::{Env, Run};
use serde_json::Value;

/// An Env whose mount holds the fixture's debian tree at
/// apt/mirror/deb.debian.org/debian (and no dnf tree), and its config path.
fn setup() -> (Env, PathBuf) {
    let env = Env::new();
    let target = env.mount().join("apt/mirror/deb.debian.org/debian");
    fs::remove_dir_all(&target).expect("rm");
    fs::remove_dir_all(env.mount().join("dnf")).expect("rm dnf");
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(crate::common::repo_root().join("tests/fixtures/catalog/trees/apt/debian"))
        .arg(&target)
        .status()
        .expect("cp");
    assert!(status.success());
    let config = env.write_config(&env.default_config());
    (env, config)
}

fn debian(env: &Env) -> PathBuf {
    env.mount().join("apt/mirror/deb.debian.org/debian")
}

fn report_of(env: &Env, snap: &str) -> Value {
    let path = env
        .workdir()
        .join("metadata/snapshots")
        .join(snap)
        .join("verify.json");
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("verify.json is JSON")
}

/// `verify` with `args` in the stage environment.
fn verify(env: &Env, args: &[&str]) -> Run {
    env.run().arg("verify").args(args)
}

fn has(report: &Value, problem: &str, path: &str) -> bool {
    report["repositories"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|r| {
            r["problems"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|p| p["problem"] == problem && p["path"] == path)
        })
}

#[test]
fn the_stage_verifies_the_mapped_trees_and_hashes_only_changed_files() {
    let (env, _config) = setup();
    env.make_snapshot("20260101-000000");
    fs::create_dir_all(env.state()).expect("mkdir");
    fs::write(
        env.state().join("current_snapshot.txt"),
        "20260101-000000\n",
    )
    .expect("write");
    // Default: the current snapshot, --deep changed; no previous: every file hashed.
    verify(&env, &[]).success().run();
    let r = report_of(&env, "20260101-000000");
    assert_eq!(r["status"], "ok");
    assert_eq!(r["deep"], "changed");
    assert_eq!(
        r["scan_root"],
        format!("{}@20260101-000000", crate::common::DATASET)
    );
    assert!(r["totals"]["bytes_hashed"].as_u64().unwrap_or(0) > 0);
    assert!(
        r["repositories"]
            .as_array()
            .expect("repos")
            .iter()
            .all(|x| x["prefix"] == "debian"),
        "the ids are those of the published tree: {r}"
    );

    // A same-size change after the first snapshot: only the changed file is
    // hashed, and that finds it.
    let deb = debian(&env).join("pool/main/netbase_6.4_all.deb");
    let mut bytes = fs::read(&deb).expect("read");
    bytes[500] ^= 1;
    fs::write(&deb, bytes).expect("write");
    env.make_snapshot("20260102-000000");
    let junit = env.workdir().join("junit.xml");
    verify(
        &env,
        &[
            "--snapshot",
            "20260102-000000",
            "--junit",
            junit.to_str().unwrap_or_default(),
        ],
    )
    .code(6)
    .stderr_has("verify_problem")
    .run();
    let r = report_of(&env, "20260102-000000");
    assert!(
        has(
            &r,
            "checksum_mismatch",
            "debian/pool/main/netbase_6.4_all.deb"
        ),
        "{r}"
    );
    let hashed = r["totals"]["bytes_hashed"].as_u64().unwrap_or(0);
    assert_eq!(
        hashed % 12800,
        0,
        "only netbase (12800 bytes) is hashed, once per index: {hashed}"
    );
    assert!(
        fs::read_to_string(&junit)
            .expect("junit")
            .contains("netbase_6.4_all.deb")
    );

    // A removed suite: shrunk against the newest *verified* snapshot (the first).
    fs::write(&deb, fs::read(env.mount().join(".zfs/snapshot/20260101-000000/apt/mirror/deb.debian.org/debian/pool/main/netbase_6.4_all.deb")).expect("read")).expect("restore");
    fs::remove_dir_all(debian(&env).join("dists/trixie")).expect("rm");
    env.make_snapshot("20260103-000000");
    verify(&env, &["--snapshot", "20260103-000000"])
        .code(6)
        .run();
    let r = report_of(&env, "20260103-000000");
    assert!(has(&r, "shrunk", "debian__trixie__main__amd64"), "{r}");
    verify(&env, &["--snapshot", "20260103-000000", "--allow-shrink"])
        .success()
        .run();
    assert_eq!(report_of(&env, "20260103-000000")["status"], "ok");
}

#[test]
fn a_snapshot_without_any_mapped_source_fails_and_flags_are_checked() {
    let (env, _config) = setup();
    fs::create_dir_all(env.mount().join(".zfs/snapshot/20260101-000000")).expect("mkdir");
    verify(&env, &["--snapshot", "20260101-000000", "--deep", "none"])
        .code(1)
        .stderr_has("nothing to verify")
        .run();
    for args in [
        vec!["--snapshot", "x", "--root-dir", "/tmp"],
        vec!["--snapshot", "../x"],
        vec!["--snapshot", "x", "--output", "/tmp/x.json"],
        vec!["--snapshot", "x", "--deep", "some"],
    ] {
        verify(&env, &args).code(2).run();
    }
}

#[test]
fn the_verify_section_of_the_config_sets_keyrings_and_is_checked() {
    let (env, _config) = setup();
    env.make_snapshot("20260101-000000");
    // Invalid values: exit 3, naming the key.
    for (section, key) in [
        (
            "verify:\n  max_shrink_percent: 101\n",
            "verify.max_shrink_percent",
        ),
        (
            "verify:\n  keyrings:\n    debian: relative.gpg\n",
            "verify.keyrings.debian",
        ),
        (
            "verify:\n  keyrings:\n    a/b: /k.gpg\n",
            "verify.keyrings.a/b",
        ),
    ] {
        env.write_config(&format!("{}{section}", env.default_config()));
        verify(&env, &["--snapshot", "20260101-000000", "--deep", "none"])
            .code(3)
            .stderr_has(key)
            .run();
    }
    // A keyring that does not exist: the stage fails (exit 1) naming it.
    env.write_config(&format!(
        "{}verify:\n  keyrings:\n    debian: /nonexistent/keyring.gpg\n",
        env.default_config()
    ));
    verify(&env, &["--snapshot", "20260101-000000", "--deep", "none"])
        .code(1)
        .stderr_has("/nonexistent/keyring.gpg")
        .run();
    // A real keyring: the releases are checked with gpgv; trixie has no
    // signature at all, the fixture's bookworm InRelease is signed by a key
    // that is not in this keyring.
    let (_home, keyring) = crate::verify::gpg_key(&env.root, "k");
    env.write_config(&format!(
        "{}verify:\n  keyrings:\n    debian: {}\n",
        env.default_config(),
        keyring.display()
    ));
    verify(&env, &["--snapshot", "20260101-000000", "--deep", "none"])
        .code(6)
        .run();
    let r = report_of(&env, "20260101-000000");
    assert_eq!(r["signatures"], "checked");
    assert!(
        has(&r, "signature_invalid", "debian/dists/trixie/InRelease"),
        "{r}"
    );
    assert!(
        has(&r, "signature_invalid", "debian/dists/bookworm/InRelease"),
        "{r}"
    );
}
