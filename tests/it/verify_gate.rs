//! publish-snapshot's verification gate: a snapshot is published only when
//! `<workdir>/metadata/snapshots/<snap>/verify.json` says `status: ok`
//! (the real binary, the fake zfs, the real rsync, the ssh stand-in).

use std::fs;

use crate::common::{DATASET, Env, stderr};

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

fn published(env: &Env) -> Vec<String> {
    let dir = env.workdir().join("repo/snapshots");
    if !dir.exists() {
        return Vec::new();
    }
    crate::common::list_dir(&dir)
}

#[test]
fn a_missing_or_failed_report_stops_publication_unless_unverified() {
    let env = Env::new();
    env.write_config(&env.default_config());
    env.make_snapshot(S1);
    fs::remove_file(report_path(&env, S1)).expect("rm report");
    let out = assert_cmd::Command::from_std(env.std_cmd())
        .args(["--skip-remote", "publish-snapshot", "--snapshot", S1])
        .output()
        .expect("run");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&report_path(&env, S1).display().to_string()),
        "{err}"
    );
    assert!(err.contains("is missing"), "{err}");
    assert!(published(&env).is_empty());

    // A failed report: named with its first problem.
    env.mark_verified(S1);
    fail_report(&env, S1);
    let out = assert_cmd::Command::from_std(env.std_cmd())
        .args(["--skip-remote", "publish-snapshot", "--snapshot", S1])
        .output()
        .expect("run");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("has status failed"), "{err}");
    assert!(
        err.contains("missing debian/pool/main/h/hello.deb"),
        "{err}"
    );
    assert!(published(&env).is_empty());

    // --unverified: published, with a warning.
    let out = assert_cmd::Command::from_std(env.std_cmd())
        .args([
            "--skip-remote",
            "publish-snapshot",
            "--snapshot",
            S1,
            "--unverified",
        ])
        .output()
        .expect("run");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains(&format!("publish_snapshot_unverified snapshot={S1}")),
        "{err}"
    );
    assert_eq!(published(&env), [S1]);
}

#[test]
fn publish_all_keeps_what_is_published_and_skips_unverified_new_snapshots() {
    let env = Env::new();
    env.write_config(&env.default_config());
    env.make_snapshot(S1);
    assert_cmd::Command::from_std(env.std_cmd())
        .args(["--skip-remote", "publish-snapshot", "--all"])
        .assert()
        .success();
    assert_eq!(published(&env), [S1]);
    // S1's report goes bad after publication; S2 is new and unverified.
    fail_report(&env, S1);
    env.make_snapshot(S2);
    fs::remove_file(report_path(&env, S2)).expect("rm report");
    let out = assert_cmd::Command::from_std(env.std_cmd())
        .args(["--skip-remote", "publish-snapshot", "--all"])
        .output()
        .expect("run");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains(&format!(
            "publish_snapshot_skipped_unverified snapshot={S2}"
        )),
        "{err}"
    );
    assert_eq!(published(&env), [S1], "S1 kept, S2 not published");
    // Verified: S2 comes in.
    env.mark_verified(S2);
    assert_cmd::Command::from_std(env.std_cmd())
        .args(["--skip-remote", "publish-snapshot", "--all"])
        .assert()
        .success();
    assert_eq!(published(&env), [S1, S2]);
    let _ = DATASET;
}

#[test]
fn the_verify_stage_opens_the_gate() {
    // verify --snapshot writes the report publish-snapshot reads.
    let env = Env::new();
    env.write_config(&env.default_config());
    fs::remove_dir_all(env.mount().join("dnf")).expect("rm dnf"); // a bare <repomd/> fails verify
    env.make_snapshot(S1);
    fs::remove_file(report_path(&env, S1)).expect("rm report");
    let out = assert_cmd::Command::from_std(env.std_cmd())
        .args(["verify", "--snapshot", S1])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_cmd::Command::from_std(env.std_cmd())
        .args(["--skip-remote", "publish-snapshot", "--snapshot", S1])
        .assert()
        .success();
    assert_eq!(published(&env), [S1]);
}
