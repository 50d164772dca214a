//! `status.json` through the real binary (issue 14): every stage's part,
//! per-syncer parts (also from concurrent `sync` jobs), a failing stage
//! beside the others, the derived parts (snapshot, verify, promoted), a
//! corrupt file rebuilt, and a dry run writing nothing.

use std::fs;
use std::path::PathBuf;

use crate::common::{Env, Expect};
use serde_json::Value;

/// The default config plus the fake docker and one rsync syncer per name.
fn config(env: &Env, syncers: &[&str]) -> String {
    let mut text = env.sync_config_head();
    for name in syncers {
        text.push_str(&format!(
            "  - type: rsync\n    name: {name}\n    prefix: {name}\n    repos: repos.yaml\n    image: registry.example/{name}:1\n    user: '1000:1000'\n    log_file: {log}\n",
            log = env.root.join(format!("logs/{name}.log")).display(),
        ));
    }
    text
}

fn control(env: &Env, file: &str, content: &str) {
    fs::write(env.docker_dir().join(file), content).unwrap();
}

fn status_path(env: &Env) -> PathBuf {
    env.workdir().join("metadata/status.json")
}

fn status(env: &Env) -> Value {
    let text = fs::read_to_string(status_path(env)).expect("status.json written");
    serde_json::from_str(&text).expect("status.json is JSON")
}

fn is_utc(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(s).is_ok())
}

#[test]
fn sync_records_each_syncer_and_a_failing_stage_keeps_the_other_parts() {
    let env = Env::new();
    env.write_config(&config(&env, &["alpha", "beta"]));
    control(&env, "alpha.exits", "1 0");
    control(&env, "beta.exits", "2");
    env.sync_run().arg("sync").code(1).run();
    let s = status(&env);
    assert_eq!(s["schema"], "dist-mirror.status.v1");
    assert!(s["shard"].as_str().is_some_and(|v| !v.is_empty()));
    assert!(is_utc(&s["generated_at"]), "{s}");
    let alpha = &s["syncers"]["alpha"];
    assert_eq!(alpha["status"], "ok");
    assert_eq!(alpha["attempts"], 2);
    assert_eq!(alpha["exit_codes"], serde_json::json!(["1", "0"]));
    assert!(is_utc(&alpha["last_attempt_at"]) && is_utc(&alpha["last_success_at"]));
    assert!(alpha["last_duration_s"].as_f64().is_some());
    let beta = &s["syncers"]["beta"];
    assert_eq!(beta["status"], "failed");
    assert_eq!(beta["exit_codes"], serde_json::json!(["2", "2", "2"]));
    assert_eq!(beta["last_success_at"], Value::Null);
    assert_eq!(s["stages"]["sync"]["status"], "failed");
    assert_eq!(s["stages"]["sync"]["exit_code"], 1);
    assert_eq!(s["stages"]["sync"]["last_success_at"], Value::Null);

    // Another stage succeeds: its part is added, sync's stays as it was.
    env.run().arg("snapshot").success().run();
    let s2 = status(&env);
    assert_eq!(s2["stages"]["snapshot"]["status"], "ok");
    assert!(is_utc(&s2["stages"]["snapshot"]["last_success_at"]));
    assert_eq!(s2["stages"]["sync"], s["stages"]["sync"]);
    assert_eq!(s2["syncers"], s["syncers"]);

    // beta now succeeds alone: alpha's part stays, beta's success is kept.
    control(&env, "beta.exits", "0");
    env.sync_run()
        .args(["sync", "--syncer", "beta"])
        .success()
        .run();
    let s3 = status(&env);
    assert_eq!(s3["syncers"]["alpha"], s["syncers"]["alpha"]);
    assert_eq!(s3["syncers"]["beta"]["status"], "ok");
    assert_eq!(s3["syncers"]["beta"]["attempts"], 1);
    assert!(is_utc(&s3["syncers"]["beta"]["last_success_at"]));
    assert_eq!(s3["stages"]["sync"]["status"], "ok");
    assert_eq!(s3["stages"]["snapshot"], s2["stages"]["snapshot"]);

    // A later failure keeps the time of the last success.
    control(&env, "beta.exits", "3");
    env.sync_run()
        .args(["sync", "--syncer", "beta"])
        .code(1)
        .run();
    let s4 = status(&env);
    assert_eq!(s4["syncers"]["beta"]["status"], "failed");
    assert_eq!(
        s4["syncers"]["beta"]["last_success_at"],
        s3["syncers"]["beta"]["last_success_at"]
    );
    assert_eq!(
        s4["stages"]["sync"]["last_success_at"],
        s3["stages"]["sync"]["last_success_at"]
    );
}

#[test]
fn concurrent_sync_jobs_keep_each_others_syncer_parts() {
    // Without state/status.lock about every other round loses a part.
    for _ in 0..4 {
        concurrent_round();
    }
}

fn concurrent_round() {
    let env = Env::new();
    let names = ["s1", "s2", "s3", "s4"];
    env.write_config(&config(&env, &names));
    // Each waits until the next one has started: the four jobs overlap.
    for (i, name) in names.iter().enumerate() {
        control(
            &env,
            &format!("{name}.rendezvous"),
            names[(i + 1) % names.len()],
        );
    }
    let children: Vec<_> = names
        .iter()
        .map(|name| {
            env.sync_run()
                .args(["sync", "--syncer", name])
                .spawn(std::process::Stdio::piped())
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().expect("wait for sync");
        Expect::new().success().check("sync --syncer", out);
    }
    let s = status(&env);
    for name in names {
        assert_eq!(s["syncers"][name]["status"], "ok", "{name}: {s}");
    }
    assert!(
        !env.state().join("status.lock").is_symlink(),
        "the status lock is a plain file"
    );
}

#[test]
fn derived_parts_come_from_the_workdir() {
    let env = Env::new();
    env.write_config(&env.default_config());
    env.write_published_workdir(2);
    env.run().arg("cleanup-state").success().run();
    let s = status(&env);
    assert_eq!(s["snapshots_count"], 2);
    assert_eq!(s["snapshot"]["name"], "20260102-000000");
    assert!(is_utc(&s["snapshot"]["created_at"]));
    assert_eq!(s["verify"]["status"], "failed");
    assert_eq!(s["verify"]["problems"], 2);
    assert_eq!(s["verify"]["repositories"]["debian/bookworm"], 2);
    assert_eq!(s["promoted"]["name"], "20260101-000000");
    assert!(is_utc(&s["promoted"]["at"]) && is_utc(&s["promoted"]["created_at"]));
    assert_eq!(s["replica"], Value::Null);
    assert_eq!(s["av_scan"], Value::Null);
    assert_eq!(s["stages"]["cleanup-state"]["status"], "ok");

    // promote's history (newest first) gives the time of the promotion;
    // verify's shortened problem lists are counted by problems_count.
    env.write_file(
        "work/metadata/promotions.json",
        r#"{"schema": "dist-mirror.promotions.v1", "promotions": [
            {"snapshot": "20260101-000000", "promoted_at": "2026-01-03T08:00:00Z", "pipeline_url": null, "job_url": null},
            {"snapshot": "20260101-000000", "promoted_at": "2026-01-01T08:00:00Z", "pipeline_url": null, "job_url": null}]}"#,
    );
    env.write_file(
        "work/metadata/snapshots/20260102-000000/verify.json",
        r#"{"status": "failed", "totals": {"problems": 9}, "repositories": [{"id": "epel", "problems": [{"path": "a"}], "problems_count": 9}]}"#,
    );
    env.run().arg("cleanup-state").success().run();
    let s = status(&env);
    assert_eq!(s["promoted"]["at"], "2026-01-03T08:00:00Z");
    assert_eq!(s["verify"]["problems"], 9);
    assert_eq!(s["verify"]["repositories"]["epel"], 9);
}

#[test]
fn replicate_records_the_replicated_snapshot() {
    let env = Env::new();
    env.write_config(&env.default_config());
    env.run().arg("snapshot").success().run();
    let current = fs::read_to_string(env.state().join("current_snapshot.txt")).unwrap();
    env.run().arg("replicate").success().run();
    let s = status(&env);
    assert_eq!(s["replica"]["snapshot"], current.trim());
    assert_eq!(s["replica"]["host"], "replica.example");
    assert!(is_utc(&s["replica"]["at"]));
    assert_eq!(s["stages"]["replicate"]["status"], "ok");

    // A failing replicate: its stage part says so, the last replica and
    // the other stages' parts stay.
    env.run()
        .env("FAKE_SYNCOID_EXIT", "2")
        .arg("replicate")
        .code(1)
        .run();
    let s2 = status(&env);
    let r = &s2["stages"]["replicate"];
    assert_eq!(r["status"], "failed");
    assert_eq!(r["exit_code"], 1);
    assert_eq!(
        r["last_success_at"],
        s["stages"]["replicate"]["last_success_at"]
    );
    assert_eq!(s2["replica"], s["replica"]);
    assert_eq!(s2["stages"]["snapshot"], s["stages"]["snapshot"]);
}

#[test]
fn a_corrupt_status_is_rebuilt_and_a_dry_run_writes_nothing() {
    let env = Env::new();
    env.write_config(&env.default_config());
    env.write_file("work/metadata/status.json", "{not json");
    env.run()
        .arg("cleanup-state")
        .success()
        .stderr_has("status_rebuilt")
        .run();
    assert_eq!(status(&env)["stages"]["cleanup-state"]["status"], "ok");

    let before = fs::read(status_path(&env)).unwrap();
    env.dry_run("snapshot");
    assert_eq!(fs::read(status_path(&env)).unwrap(), before);
    let other = Env::new();
    other.write_config(&other.default_config());
    other.dry_run("cleanup-state");
    assert!(!status_path(&other).exists());
    assert!(!other.state().join("status.lock").exists());
}

#[test]
fn a_symlinked_status_lock_is_refused_and_the_stage_still_succeeds() {
    let env = Env::new();
    env.write_config(&env.default_config());
    fs::create_dir_all(env.state()).unwrap();
    let target = env.root.join("elsewhere");
    fs::write(&target, "keep").unwrap();
    std::os::unix::fs::symlink(&target, env.state().join("status.lock")).unwrap();
    env.run()
        .arg("cleanup-state")
        .success()
        .stderr_has("status_not_written")
        .run();
    assert_eq!(fs::read_to_string(&target).unwrap(), "keep");
    assert!(!status_path(&env).exists());
}

#[test]
fn av_scan_records_its_result() {
    let env = Env::new();
    env.av_scan_finding_eicar().success().run();
    let s = status(&env);
    assert_eq!(s["av_scan"]["result"], "threats");
    assert_eq!(s["av_scan"]["threats"], 1);
    assert_eq!(s["av_scan"]["files"], 3);
    assert!(is_utc(&s["av_scan"]["at"]));

    // A clean scan after a change replaces it.
    env.run().arg("cleanup-state").success().run();
    env.run().arg("av-scan").success().run();
    let s = status(&env);
    assert_eq!(s["av_scan"]["result"], "clean");
    assert_eq!(s["av_scan"]["threats"], 0);
}
