//! `promote` through the real binary: the atomic `current` link locally and
//! on the replica (ssh stand-in), the refusals (unpublished, unverified,
//! empty `--snapshot` in CI), the records (`state/promoted.txt`,
//! `metadata/promotions.json`), rollback, and that `publish-snapshot`
//! keeps `current` (locally and on the replica) while `inventory.json`
//! ignores it.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::common::Env;
use serde_json::Value;

const S1: &str = "20260101-000000";
const S2: &str = "20260102-000000";

fn repo(env: &Env) -> PathBuf {
    env.workdir().join("repo")
}

/// Two snapshots published (locally and on the replica) and verified ok.
fn published_env() -> Env {
    let env = Env::with_default_config();
    env.make_snapshot(S1);
    env.make_snapshot(S2);
    env.run()
        .args(["publish-snapshot", "--all"])
        .success()
        .run();
    env.write_verify_report(S1, "ok");
    env.write_verify_report(S2, "ok");
    env
}

fn current(dir: &Path) -> PathBuf {
    fs::read_link(dir.join("current")).expect("current is a symlink")
}

/// Asserts that no promotion happened: no `current` link, no
/// `promoted.txt`, no `promotions.json`.
#[track_caller]
fn assert_nothing_promoted(env: &Env) {
    assert!(fs::symlink_metadata(repo(env).join("current")).is_err());
    assert!(!env.state().join("promoted.txt").exists());
    assert!(!env.workdir().join("metadata/promotions.json").exists());
}

#[test]
fn promote_switches_current_locally_and_on_the_replica_and_records_it() {
    let env = published_env();
    env.run()
        .args(["promote", "--snapshot", S2])
        .env("CI_PIPELINE_URL", "https://gitlab.example/p/-/pipelines/7")
        .env("CI_JOB_URL", "https://gitlab.example/p/-/jobs/70")
        .success()
        .run();
    let want = PathBuf::from(format!("snapshots/{S2}"));
    assert_eq!(current(&repo(&env)), want);
    assert!(
        repo(&env)
            .join("current/debian/dists/bookworm/Release")
            .exists()
    );
    let replica = env.replica_path(&repo(&env));
    assert_eq!(current(&replica), want);
    assert!(!repo(&env).join(".current.tmp").exists());
    assert!(!replica.join(".current.tmp").exists());
    // The replica was reached through the configured ssh, as ssh_user.
    let ssh: Vec<_> = env
        .log_of("ssh")
        .into_iter()
        .filter(|l| l.contains("mv -fT"))
        .collect();
    assert_eq!(ssh.len(), 1, "{ssh:?}");
    assert!(
        ssh[0].starts_with("ssh -- mirror@replica.example cd -- '"),
        "{ssh:?}"
    );
    assert_eq!(
        fs::read_to_string(env.state().join("promoted.txt")).unwrap(),
        format!("{S2}\n")
    );
    let history: Value = serde_json::from_str(
        &fs::read_to_string(env.workdir().join("metadata/promotions.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(history["schema"], "dist-mirror.promotions.v1");
    let first = &history["promotions"][0];
    assert_eq!(first["snapshot"], S2);
    assert_eq!(
        first["pipeline_url"],
        "https://gitlab.example/p/-/pipelines/7"
    );
    assert_eq!(first["job_url"], "https://gitlab.example/p/-/jobs/70");
    assert!(first["promoted_at"].as_str().unwrap().ends_with('Z'));

    // Rollback: re-running promote with the older snapshot.
    env.run()
        .args(["promote", "--snapshot", S1])
        .success()
        .run();
    assert_eq!(
        current(&repo(&env)),
        PathBuf::from(format!("snapshots/{S1}"))
    );
    assert_eq!(current(&replica), PathBuf::from(format!("snapshots/{S1}")));
    let history: Value = serde_json::from_str(
        &fs::read_to_string(env.workdir().join("metadata/promotions.json")).unwrap(),
    )
    .unwrap();
    let names: Vec<_> = history["promotions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["snapshot"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, vec![S1, S2]);
    assert_eq!(history["promotions"][0]["pipeline_url"], Value::Null);
}

#[test]
fn promote_defaults_to_the_current_snapshot_outside_ci() {
    let env = published_env();
    env.write_file("work/state/current_snapshot.txt", &format!("{S1}\n"));
    env.run().args(["--skip-remote", "promote"]).success().run();
    assert_eq!(
        current(&repo(&env)),
        PathBuf::from(format!("snapshots/{S1}"))
    );
    // skip_remote: the replica is not touched.
    assert!(!env.replica_path(&repo(&env)).join("current").exists());
}

#[test]
fn promote_refuses_an_empty_or_missing_snapshot_in_ci() {
    let env = published_env();
    env.write_file("work/state/current_snapshot.txt", &format!("{S1}\n"));
    for args in [&["promote", "--snapshot", ""][..], &["promote"][..]] {
        env.run()
            .args(args)
            .env("CI", "true")
            .code(2)
            .stderr_has("non-empty --snapshot in CI")
            .run();
    }
    assert!(fs::symlink_metadata(repo(&env).join("current")).is_err());
    assert!(!env.state().join("promoted.txt").exists());
}

/// Changes the environment before a case.
type Prepare = Box<dyn Fn(&Env)>;

#[test]
fn promote_refuses_unpublished_or_unverified_snapshots() {
    let env = published_env();
    let cases: [(&str, Prepare, &str); 5] = [
        ("20250101-000000", Box::new(|_| {}), "it is not published"),
        (
            S1,
            Box::new(|e| {
                fs::remove_file(
                    e.workdir()
                        .join(format!("metadata/snapshots/{S1}/verify.json")),
                )
                .unwrap()
            }),
            "does not exist",
        ),
        (
            S1,
            Box::new(|e| e.write_verify_report(S1, "failed")),
            "has status",
        ),
        (
            S1,
            Box::new(|e| {
                e.write_file(
                    &format!("work/metadata/snapshots/{S1}/verify.json"),
                    "{not json",
                );
            }),
            "not valid JSON",
        ),
        (
            S1,
            Box::new(|e| {
                e.write_file(
                    &format!("work/metadata/snapshots/{S1}/verify.json"),
                    "{\"schema\": \"other\", \"status\": \"ok\"}",
                );
            }),
            "dist-mirror.verify.v1",
        ),
    ];
    for (snap, prepare, needle) in cases {
        prepare(&env);
        env.run()
            .args(["promote", "--snapshot", snap])
            .code(1)
            .stderr_has(needle)
            .stderr_has(format!("cannot promote snapshot {snap}"))
            .run();
    }
    assert_nothing_promoted(&env);
}

#[test]
fn dry_run_promote_changes_nothing() {
    let env = published_env();
    env.run()
        .args(["--dry-run", "promote", "--snapshot", S1])
        .success()
        .stderr_has("dry_run_symlink")
        .run();
    assert_nothing_promoted(&env);
}

/// Runs `--skip-remote promote --snapshot <snapshot>`, which must exit 0.
fn promote_locally(env: &Env, snapshot: &str) {
    env.run()
        .args(["--skip-remote", "promote", "--snapshot", snapshot])
        .success()
        .run();
}

/// A reader that resolves `current/debian/...` in a loop while 200
/// promotions switch it back and forth never finds the path missing.
#[test]
fn the_switch_is_atomic_for_readers() {
    let env = published_env();
    promote_locally(&env, S1);
    let path = repo(&env).join("current/debian/dists/bookworm/Release");
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let stop = stop.clone();
        let path = path.clone();
        std::thread::spawn(move || {
            let (mut reads, mut missing) = (0u64, 0u64);
            while !stop.load(Ordering::Relaxed) {
                if fs::read(&path).is_err() {
                    missing += 1;
                }
                reads += 1;
            }
            (reads, missing)
        })
    };
    for i in 0..200 {
        let snap = if i % 2 == 0 { S2 } else { S1 };
        promote_locally(&env, snap);
    }
    stop.store(true, Ordering::Relaxed);
    let (reads, missing) = reader.join().unwrap();
    assert!(reads > 200, "the reader ran {reads} times");
    assert_eq!(missing, 0, "{missing} of {reads} reads found no current");
    assert_eq!(
        current(&repo(&env)),
        PathBuf::from(format!("snapshots/{S1}"))
    );
}

/// Every writer of `<workdir>/repo` keeps `current`: a republish of one
/// snapshot and `publish-snapshot --all` (whose prune rsync removes the
/// snapshots ZFS no longer has), locally and on the replica; the inventory
/// does not list it.
#[test]
fn publish_snapshot_keeps_current_and_the_inventory_ignores_it() {
    let env = published_env();
    env.run()
        .args(["promote", "--snapshot", S1])
        .success()
        .run();
    env.run().args(["publish-inventory"]).success().run();
    let inventory_before = fs::read(env.workdir().join("metadata/inventory.json")).unwrap();
    env.run()
        .args(["publish-snapshot", "--snapshot", S1])
        .success()
        .run();
    env.run()
        .args(["publish-snapshot", "--all"])
        .success()
        .run();
    // S2 leaves ZFS; --all prunes it from the published tree, not current.
    fs::remove_dir_all(env.mount().join(format!(".zfs/snapshot/{S2}"))).unwrap();
    env.run()
        .args(["publish-snapshot", "--all"])
        .success()
        .run();
    let replica = env.replica_path(&repo(&env));
    for dir in [repo(&env), replica.clone()] {
        assert_eq!(
            current(&dir),
            PathBuf::from(format!("snapshots/{S1}")),
            "{}",
            dir.display()
        );
        assert!(dir.join("current/debian").exists(), "{}", dir.display());
        assert!(!dir.join(format!("snapshots/{S2}")).exists());
    }
    env.run().args(["publish-inventory"]).success().run();
    let inventory: Value =
        serde_json::from_slice(&fs::read(env.workdir().join("metadata/inventory.json")).unwrap())
            .unwrap();
    assert_eq!(inventory["latest"], S1);
    assert!(inventory["prefixes_by_snapshot"].get("current").is_none());
    let before: Value = serde_json::from_slice(&inventory_before).unwrap();
    assert!(before["prefixes_by_snapshot"].get("current").is_none());
}

/// Hostile workdir contents: a verify report that is a symlink (to an ok
/// report outside) is not followed, and a real directory at `repo/current`
/// is refused, not replaced.
#[test]
fn promote_follows_no_symlinked_report_and_keeps_a_current_directory() {
    let env = published_env();
    let report = env
        .workdir()
        .join(format!("metadata/snapshots/{S1}/verify.json"));
    let outside = env.write_file(
        "outside.json",
        "{\"schema\": \"dist-mirror.verify.v1\", \"status\": \"ok\"}\n",
    );
    fs::remove_file(&report).unwrap();
    std::os::unix::fs::symlink(&outside, &report).unwrap();
    env.run()
        .args(["promote", "--snapshot", S1])
        .code(1)
        .stderr_has("symlink")
        .run();
    assert!(fs::symlink_metadata(repo(&env).join("current")).is_err());

    fs::create_dir(repo(&env).join("current")).unwrap();
    env.write_file("work/repo/current/keep.txt", "x");
    env.run()
        .args(["promote", "--snapshot", S2])
        .code(1)
        .stderr_has("is not a symlink")
        .run();
    assert!(repo(&env).join("current/keep.txt").exists());
    assert!(!env.state().join("promoted.txt").exists());
}
