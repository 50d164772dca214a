//! A killed run leaves nothing running and nothing behind, through the real
//! binary: after `kill -9` of a stage its external programs are gone (also
//! those started by worker threads), the next run removes the scratch
//! directories it left in TMPDIR, and a disk-full error after `zfs
//! snapshot` names the snapshot that exists but is not recorded.

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::common::{Env, assert_has_all, children_of, kill, process_alive, read_pid, wait_for};

/// A fake rsync that writes its pid to `<root>/rsync.pid` and sleeps (as
/// the same process) for two minutes.
fn slow_rsync(env: &Env) -> PathBuf {
    env.write_executable(
        "rsync",
        &format!(
            "#!/bin/sh\necho $$ > '{}/rsync.pid'\nexec sleep 120\n",
            env.root.display()
        ),
    )
}

/// Starts `publish-snapshot --all` with the slow fake rsync and waits until
/// the fake runs.
fn start_publish(env: &Env) -> Child {
    let rsync = slow_rsync(env);
    let child = env
        .run()
        .env("MIRRORER_TOOL_RSYNC", &rsync)
        .args(["--skip-remote", "publish-snapshot", "--all"])
        .spawn(Stdio::null());
    wait_for("the fake rsync", 20, || env.root.join("rsync.pid").exists());
    std::thread::sleep(Duration::from_millis(50));
    child
}

/// Waits up to `secs` for every pid to be gone; returns those still alive
/// (and kills them, so a failing test leaves nothing behind).
fn survivors(pids: &[i32], secs: u64) -> Vec<i32> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline && pids.iter().any(|p| process_alive(*p)) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let alive: Vec<i32> = pids.iter().copied().filter(|p| process_alive(*p)).collect();
    for p in &alive {
        kill(*p, libc::SIGKILL);
    }
    alive
}

/// Kills `run` (SIGKILL), reaps it, and asserts that the processes `pids`
/// (`what`, for the message) are gone within 5 s.
#[track_caller]
fn kill_and_assert_gone(mut run: Child, pids: &[i32], what: &str) {
    kill(run.id() as i32, libc::SIGKILL);
    let _ = run.wait();
    let left = survivors(pids, 5);
    assert!(
        left.is_empty(),
        "{what} {left:?} (of {pids:?}) outlived the killed stage"
    );
}

#[test]
fn a_killed_publish_snapshot_leaves_no_rsync_running() {
    let env = Env::with_default_config();
    env.make_snapshot("20260101-000000");
    let run = start_publish(&env);
    let rsync = read_pid(&env.root.join("rsync.pid"));
    assert!(process_alive(rsync));
    kill_and_assert_gone(run, &[rsync], "rsync");
}

#[test]
fn programs_started_by_worker_threads_die_with_a_killed_sync() {
    let env = Env::new();
    let mut config = env.sync_config_head();
    let docker_dir = env.docker_dir();
    for name in ["alpha", "beta"] {
        config.push_str(&format!(
            "  - type: rsync\n    name: {name}\n    prefix: {name}\n    repos: repos.yaml\n    image: registry.example/{name}:1\n    log_file: {}/logs/{name}.log\n",
            env.root.display()
        ));
        fs::write(docker_dir.join(format!("{name}.hold")), "").unwrap();
    }
    env.write_config(&config);
    let run = env
        .run()
        .env("FAKE_DOCKER_DIR", &docker_dir)
        .arg("sync")
        .spawn(Stdio::null());
    wait_for("both containers", 30, || {
        let log = env.log_of("docker");
        ["alpha", "beta"]
            .iter()
            .all(|n| log.contains(&format!("docker wait -- {n}")))
    });
    std::thread::sleep(Duration::from_millis(100));
    // `docker logs --follow` and `docker wait` of each syncer, spawned by
    // the syncers' worker threads.
    let children = children_of(run.id() as i32);
    assert!(children.len() >= 2, "children: {children:?}");
    kill_and_assert_gone(run, &children, "docker processes");
}

#[test]
fn scratch_directories_of_a_killed_run_are_removed_by_the_next() {
    let env = Env::with_default_config();
    env.make_snapshot("20260101-000000");
    let tmp = env.root.join("tmp");
    let mut run = start_publish(&env);
    let killed_pid = run.id();
    kill(killed_pid as i32, libc::SIGKILL);
    let _ = run.wait();
    let _ = survivors(&[read_pid(&env.root.join("rsync.pid"))], 5);
    let left: Vec<String> = crate::common::list_dir(&tmp)
        .into_iter()
        .filter(|n| n.starts_with(&format!("mirrorer-publish-{killed_pid}-")))
        .collect();
    assert_eq!(left.len(), 1, "the killed run's scratch dir: {left:?}");
    // One in use by a live process (this test), and one that is not ours.
    let live = tmp.join(format!("mirrorer-publish-{}-1", std::process::id()));
    fs::create_dir_all(live.join("snapshots")).unwrap();
    fs::create_dir_all(tmp.join("mirrorer-publish-notes")).unwrap();
    env.run()
        .args(["--skip-remote", "publish-snapshot", "--all"])
        .success()
        .stderr_has("stale_scratch_dir_removed")
        .run();
    let now = crate::common::list_dir(&tmp);
    assert!(!now.contains(&left[0]), "{now:?}");
    assert!(live.join("snapshots").is_dir(), "{now:?}");
    assert!(
        now.contains(&"mirrorer-publish-notes".to_owned()),
        "{now:?}"
    );
    // The run removed its own scratch directory too.
    assert_eq!(now.len(), 2, "{now:?}");
    assert!(
        env.workdir()
            .join("repo/snapshots/20260101-000000/debian")
            .exists()
    );
}

#[test]
fn disk_full_after_zfs_snapshot_names_the_unrecorded_snapshot() {
    let env = Env::with_default_config();
    let state = env.state();
    fs::create_dir_all(&state).unwrap();
    // The state directory is a small tmpfs filled to the last page: the
    // lock file keeps its page (the holder line fits), the new
    // current_snapshot.txt finds none.
    let setup = format!(
        "mount -t tmpfs -o size=64k tmpfs '{s}'\n\
         mkdir '{s}/av_state' '{s}/av_results'\n\
         printf 'x\\n' > '{s}/pipeline.lock'\n\
         dd if=/dev/zero of='{s}/filler' bs=4096 2>/dev/null || true",
        s = state.display()
    );
    let err = env
        .run()
        .arg("snapshot")
        .in_mount_namespace(&setup)
        .code(1)
        .stderr_has("No space left on device")
        .run()
        .stderr;
    // zfs made the snapshot.
    let made = crate::common::list_dir(&env.mount().join(".zfs/snapshot"));
    assert_eq!(made.len(), 1, "{made:?}");
    let snapshot = format!("{}@{}", crate::common::DATASET, made[0]);
    let failed = err
        .lines()
        .find(|l| l.contains("stage_failed"))
        .unwrap_or_else(|| panic!("no stage_failed: {err}"));
    assert_has_all(failed, &[&snapshot, "current_snapshot.txt"]);
    assert!(
        err.lines()
            .any(|l| l.contains("snapshot_not_recorded") && l.contains(&snapshot)),
        "{err}"
    );
}
