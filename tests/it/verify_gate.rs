//! publish-snapshot's verification gate: a snapshot is published only when
//! `<workdir>/metadata/snapshots/<snap>/verify.json` says `status: ok`
//! (the real binary, the fake zfs, the real rsync, the ssh stand-in).

use std::fs;

use crate::common::{Env, Run};

const S1: &str = "20260101-000000";
const S2: &str = "20260102-000000";

fn report_path(env: &Env, snap: &str) -> std::path::PathBuf {
    env.workdir()
        .join("metadata/snapshots")
        .join(snap)
        .join("verify.json")
}

fn fail_report(env: &Env, snap: &str) {
    let path = report_path(env, snap);
    let mut report: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&path).expect("read")).expect("json");
    report["status"] = "failed".into();
    report["totals"]["problems"] = 1.into();
    report["repositories"] = serde_json::json!([{
        "id": "debian__bookworm__main__amd64", "type": "apt", "prefix": "debian",
        "status": "failed", "packages": 1, "files_checked": 1, "bytes_hashed": 0,
        "problems_count": 1,
        "problems": [{"path": "debian/pool/main/h/hello.deb", "problem": "missing",
                      "expected": null, "actual": null}]
    }]);
    fs::write(&path, report.to_string()).expect("write");
}

/// `--skip-remote publish-snapshot` with `args`.
fn publish(env: &Env, args: &[&str]) -> Run {
    env.run()
        .args(["--skip-remote", "publish-snapshot"])
        .args(args)
}

fn published(env: &Env) -> Vec<String> {
    let dir = env.workdir().join("repo/snapshots");
    if !dir.exists() {
        return Vec::new();
    }
    crate::common::list_dir(&dir)
}

#[test]
fn a_missing_or_failed_report_stops_publication_unless_unverified() {
    let env = Env::with_default_config();
    env.make_snapshot(S1);
    fs::remove_file(report_path(&env, S1)).expect("rm report");
    publish(&env, &["--snapshot", S1])
        .code(1)
        .stderr_has(report_path(&env, S1).display().to_string())
        .stderr_has("is missing")
        .run();
    assert!(published(&env).is_empty());

    // A failed report: named with its first problem.
    env.mark_verified(S1);
    fail_report(&env, S1);
    publish(&env, &["--snapshot", S1])
        .code(1)
        .stderr_has("has status failed")
        .stderr_has("missing debian/pool/main/h/hello.deb")
        .run();
    assert!(published(&env).is_empty());

    // --unverified: published, with a warning.
    publish(&env, &["--snapshot", S1, "--unverified"])
        .success()
        .stderr_has(format!("publish_snapshot_unverified snapshot={S1}"))
        .run();
    assert_eq!(published(&env), [S1]);
}

#[test]
fn publish_all_keeps_what_is_published_and_skips_unverified_new_snapshots() {
    let env = Env::with_default_config();
    env.make_snapshot(S1);
    publish(&env, &["--all"]).success().run();
    assert_eq!(published(&env), [S1]);
    // S1's report goes bad after publication; S2 is new and unverified.
    fail_report(&env, S1);
    env.make_snapshot(S2);
    fs::remove_file(report_path(&env, S2)).expect("rm report");
    publish(&env, &["--all"])
        .success()
        .stderr_has(format!("publish_snapshot_skipped_unverified snapshot={S2}"))
        .run();
    assert_eq!(published(&env), [S1], "S1 kept, S2 not published");
    // Verified: S2 comes in.
    env.mark_verified(S2);
    publish(&env, &["--all"]).success().run();
    assert_eq!(published(&env), [S1, S2]);
}

#[test]
fn the_verify_stage_opens_the_gate() {
    // verify --snapshot writes the report publish-snapshot reads.
    let env = Env::with_default_config();
    fs::remove_dir_all(env.mount().join("dnf")).expect("rm dnf"); // a bare <repomd/> fails verify
    env.make_snapshot(S1);
    fs::remove_file(report_path(&env, S1)).expect("rm report");
    env.run().args(["verify", "--snapshot", S1]).success().run();
    publish(&env, &["--snapshot", S1]).success().run();
    assert_eq!(published(&env), [S1]);
}
