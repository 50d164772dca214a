//! The state lock, signals and crash safety of the stage runner, through
//! the real binary: contention (exit 4 naming the holder), SIGTERM (exit
//! 143, child stopped), SIGKILL mid-stage (no stale lock, no temp file, no
//! half-written state after the next run).

use std::fs;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::common::{
    Env, Expect, assert_has, assert_has_all, assert_starts_with, kill, read_pid, stderr,
    temp_files, wait_for,
};

/// Starts `snapshot` with the fake zfs sleeping `secs` (pid in `zfs.pid`)
/// and waits until the fake runs, i.e. the lock is held.
fn start_slow_snapshot(env: &Env, secs: u32) -> Child {
    let pidfile = env.root.join("zfs.pid");
    let child = env
        .run()
        .env("FAKE_ZFS_SLEEP", secs.to_string())
        .env("FAKE_ZFS_PIDFILE", &pidfile)
        .env("CI_JOB_URL", "https://gitlab.example/job/1")
        .arg("snapshot")
        .spawn(Stdio::piped());
    wait_for("the fake zfs never started", 20, || pidfile.exists());
    std::thread::sleep(Duration::from_millis(50));
    child
}

fn fake_zfs_pid(env: &Env) -> i32 {
    read_pid(&env.root.join("zfs.pid"))
}

fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks existence.
    unsafe { libc::kill(pid, 0) == 0 }
}

#[test]
fn a_second_exclusive_stage_waits_then_exits_4_naming_the_holder() {
    let env = Env::with_default_config();
    let mut holder = start_slow_snapshot(&env, 30);
    let lock_text = fs::read_to_string(env.state().join("pipeline.lock")).unwrap();
    assert_starts_with(
        &lock_text,
        &format!("pid={} stage=snapshot mode=exclusive since=", holder.id()),
    );
    let started = Instant::now();
    let out = env
        .run()
        .env("CI_JOB_URL", "https://gitlab.example/job/2")
        .args(["--lock-timeout", "1.5", "cleanup-state"])
        .code(4)
        .run();
    assert!(started.elapsed() >= Duration::from_millis(1500));
    let stderr = stderr(&out);
    assert_has(&stderr, "state_lock_waiting");
    assert_has(
        &stderr,
        &format!(
            "is held by pid={} stage=snapshot mode=exclusive",
            holder.id()
        ),
    );
    assert_has_all(
        &stderr,
        &[
            "job_url=https://gitlab.example/job/1; gave up after",
            "stage_failed stage=cleanup-state",
        ],
    );
    assert!(!stderr.contains("stage_start"), "{stderr}");
    // The holder is undisturbed; stop it.
    kill(holder.id() as i32, libc::SIGKILL);
    let _ = holder.wait();
    kill(fake_zfs_pid(&env), libc::SIGKILL);
}

#[test]
fn sigterm_and_sigint_stop_the_child_and_exit_143_and_130() {
    for (signal, code) in [(libc::SIGTERM, 143), (libc::SIGINT, 130)] {
        let env = Env::with_default_config();
        let holder = start_slow_snapshot(&env, 30);
        let zfs = fake_zfs_pid(&env);
        let started = Instant::now();
        kill(holder.id() as i32, signal);
        let out = holder.wait_with_output().unwrap();
        let took = started.elapsed();
        let stderr = Expect::new()
            .code(code)
            .stderr_has("stage_failed stage=snapshot")
            .stderr_has("command_stop")
            .check("mirrorer snapshot", out)
            .stderr;
        assert!(took < Duration::from_secs(15));
        assert_has_all(
            &stderr,
            &[
                "stage_interrupted stage=snapshot",
                "was stopped because mirrorer received SIG",
            ],
        );
        // The fake zfs (the child's process group) was stopped.
        wait_for(&format!("the fake zfs {zfs} to stop"), 5, || !alive(zfs));
        assert!(!env.state().join("current_snapshot.txt").exists());
        // The lock is free.
        env.run()
            .args(["--lock-timeout", "0", "cleanup-state"])
            .success()
            .run();
    }
}

#[test]
fn sigkill_mid_stage_leaves_no_stale_lock_temp_file_or_half_written_state() {
    let env = Env::with_default_config();
    env.write_file("work/state/current_snapshot.txt", "20200101-000000\n");
    let mut holder = start_slow_snapshot(&env, 30);
    // What a kill between "temp file written" and "renamed" leaves behind
    // (write_atomic's naming): half-written temp files next to the targets.
    env.write_file("work/state/.current_snapshot.txt.Ab12Cd.tmp", "2026");
    env.write_file("work/metadata/.inventory.json.Xy34Zz.tmp", "{\n  \"lat");
    env.write_file("work/state/av_state/.files_done.txt.Qq99Rr.tmp", "/a");
    kill(holder.id() as i32, libc::SIGKILL);
    let _ = holder.wait();
    kill(fake_zfs_pid(&env), libc::SIGKILL);
    // The previous content is intact: the rename never happened.
    assert_eq!(
        fs::read_to_string(env.state().join("current_snapshot.txt")).unwrap(),
        "20200101-000000\n"
    );
    // The next run gets the lock at once and removes the stale temp files.
    env.run()
        .args(["--lock-timeout", "0", "publish-inventory"])
        .success()
        .stderr_has("stale_temp_file_removed")
        .run();
    assert_eq!(temp_files(&env.workdir()), Vec::<String>::new());
    assert_eq!(
        fs::read_to_string(env.state().join("current_snapshot.txt")).unwrap(),
        "20200101-000000\n"
    );
    assert!(Path::new(&env.workdir().join("metadata/inventory.json")).is_file());
}

#[test]
fn a_bad_lock_timeout_is_a_usage_error() {
    let env = Env::with_default_config();
    env.assert_usage_error(&["--lock-timeout", "-1", "cleanup-state"]);
}

#[test]
fn sigterm_while_waiting_for_the_lock_exits_143() {
    let env = Env::with_default_config();
    let mut holder = start_slow_snapshot(&env, 30);
    let waiter = env.run().arg("cleanup-state").spawn(Stdio::piped());
    std::thread::sleep(Duration::from_millis(500));
    kill(waiter.id() as i32, libc::SIGTERM);
    Expect::new()
        .code(143)
        .stderr_has("state_lock_waiting")
        .stderr_has("stage_failed stage=cleanup-state")
        .check("mirrorer", waiter.wait_with_output().unwrap());
    kill(holder.id() as i32, libc::SIGKILL);
    let _ = holder.wait();
    kill(fake_zfs_pid(&env), libc::SIGKILL);
}
