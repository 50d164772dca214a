//! A hostile workdir, through the real binary: nothing planted under
//! `<workdir>` is followed out of it. Lock files that are symlinks are
//! refused (their targets untouched); a lock file unlinked while held
//! admits no second holder; `repo/` and `metadata/` must be real
//! directories in every stage that writes there; a state file that is a
//! FIFO or a device fails at once instead of hanging; `--dry-run` works on
//! a read-only workdir.

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::{Env, Run, wait_for};

/// A file outside the workdir that must survive every run.
fn victim(env: &Env, rel: &str) -> PathBuf {
    env.write_file(&format!("outside/{rel}"), "precious\n")
}

fn assert_intact(path: &Path) {
    assert_eq!(
        fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
        "precious\n",
        "{} was changed through a symlink",
        path.display()
    );
}

/// `run` killed after 20 s (a hang fails the test instead of blocking it),
/// with its address space bounded.
fn bounded(run: Run) -> Run {
    use std::os::unix::process::CommandExt;
    // Today's code reads /dev/zero to the end: bound its memory so a
    // failing run ends in an allocation failure, not a swapping machine.
    run.deadline(20).command_mut(|cmd| {
        // SAFETY: setrlimit is async-signal-safe and touches no Rust state.
        unsafe {
            cmd.pre_exec(|| {
                let limit = libc::rlimit {
                    rlim_cur: 2 << 30,
                    rlim_max: 2 << 30,
                };
                libc::setrlimit(libc::RLIMIT_AS, &limit);
                Ok(())
            });
        }
    })
}

/// An environment with one snapshot published locally
/// (`--skip-remote publish-snapshot --all`).
fn published_locally() -> Env {
    let env = Env::with_default_config();
    env.make_snapshot("20260101-000000");
    env.run()
        .args(["--skip-remote", "publish-snapshot", "--all"])
        .success()
        .run();
    env
}

#[test]
fn a_symlinked_pipeline_lock_is_refused_and_its_target_untouched() {
    let env = Env::with_default_config();
    let target = victim(&env, "victim.txt");
    fs::create_dir_all(env.state()).unwrap();
    symlink(&target, env.state().join("pipeline.lock")).unwrap();
    for args in [
        &["snapshot"][..],
        &["cleanup-state"],
        &["--dry-run", "snapshot"],
    ] {
        env.run()
            .args(args)
            .code(1)
            .stderr_has("state/pipeline.lock")
            .stderr_has("symlink")
            .run();
        assert_intact(&target);
    }
    assert!(env.log_of("zfs").is_empty(), "{:?}", env.log());
}

#[test]
fn a_symlinked_syncer_lock_is_refused_and_its_target_untouched() {
    let env = Env::new();
    let docker_dir = env.docker_dir();
    let mut config = env.sync_config_head();
    config.push_str(&format!(
        "  - type: rsync\n    name: alpha\n    prefix: alpha\n    repos: repos.yaml\n    image: registry.example/alpha:1\n    log_file: {}/logs/alpha.log\n",
        env.root.display()
    ));
    env.write_config(&config);
    let target = victim(&env, "victim.txt");
    fs::create_dir_all(env.state()).unwrap();
    symlink(&target, env.state().join("sync-alpha.lock")).unwrap();
    env.run()
        .env("FAKE_DOCKER_DIR", &docker_dir)
        .args(["sync", "--syncer", "alpha"])
        .code(1)
        .stderr_has("state/sync-alpha.lock")
        .stderr_has("symlink")
        .run();
    assert_intact(&target);
    assert!(
        !env.log_of("docker").iter().any(|l| l.contains(" run ")),
        "{:?}",
        env.log()
    );
}

/// Stderr of a background run, collected by a thread.
struct Collected {
    child: Child,
    text: Arc<Mutex<String>>,
}

fn start_snapshot(env: &Env, sleep_s: u32, pidfile: &str, extra: &[&str]) -> Collected {
    let mut child = env
        .run()
        .env("FAKE_ZFS_SLEEP", sleep_s.to_string())
        .env("FAKE_ZFS_PIDFILE", env.root.join(pidfile))
        .args(extra)
        .arg("snapshot")
        .spawn(Stdio::piped());
    let text = Arc::new(Mutex::new(String::new()));
    let pipe = child.stderr.take().unwrap();
    let sink = Arc::clone(&text);
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            let mut t = sink.lock().unwrap();
            t.push_str(&line);
            t.push('\n');
        }
    });
    Collected { child, text }
}

#[test]
fn a_lock_file_unlinked_while_held_admits_no_second_holder() {
    let env = Env::with_default_config();
    // A holds the lock (its zfs sleeps 3 s); B waits on the same inode.
    let mut a = start_snapshot(&env, 3, "a.pid", &[]);
    wait_for("A's zfs", 20, || env.root.join("a.pid").exists());
    let mut b = start_snapshot(&env, 0, "b.pid", &["--lock-timeout", "10"]);
    wait_for("B waiting", 20, || {
        b.text.lock().unwrap().contains("state_lock_waiting")
    });
    // Someone removes the "stale" lock file; C creates a new one and holds
    // it for a long time.
    fs::remove_file(env.state().join("pipeline.lock")).unwrap();
    let mut c = start_snapshot(&env, 30, "c.pid", &[]);
    wait_for("C's zfs", 20, || env.root.join("c.pid").exists());
    // A finishes and releases the old inode. B must not take it as the lock
    // while C holds the current one: it waits for C and times out.
    let a_status = a.child.wait().unwrap();
    assert!(a_status.success(), "{}", a.text.lock().unwrap());
    let b_status = b.child.wait().unwrap();
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe { libc::kill(c.child.id() as i32, libc::SIGTERM) };
    let _ = c.child.wait();
    let b_text = b.text.lock().unwrap().clone();
    assert_eq!(b_status.code(), Some(4), "{b_text}");
    assert!(
        b_text.contains(&format!("pid={}", c.child.id())),
        "B must name C as the holder: {b_text}"
    );
    assert!(!env.root.join("b.pid").exists(), "B ran its zfs");
}

#[test]
fn a_symlinked_publication_root_is_refused_by_every_stage_using_it() {
    let env = Env::with_default_config();
    env.make_snapshot("20260101-000000");
    let kept = victim(&env, "published/keep.txt");
    symlink(
        env.root.join("outside/published"),
        env.workdir().join("repo"),
    )
    .unwrap();
    for args in [
        &["--skip-remote", "publish-snapshot", "--all"][..],
        &[
            "--skip-remote",
            "publish-snapshot",
            "--snapshot",
            "20260101-000000",
        ],
        &["publish-inventory"],
        &["publish-catalog", "--rebuild"],
    ] {
        env.run()
            .args(args)
            .code(1)
            .stderr_has("work/repo")
            .stderr_has("symlink")
            .run();
        assert_intact(&kept);
        assert_eq!(
            crate::common::list_dir(&env.root.join("outside/published")),
            ["keep.txt"],
            "{args:?}"
        );
    }
}

#[test]
fn a_symlinked_metadata_root_is_refused_and_its_temp_files_kept() {
    let env = published_locally();
    let stale = victim(&env, "meta/.someone.else.tmp");
    // publish-snapshot wrote metadata/status.json (issue 14): replace the
    // real metadata root by the planted link.
    // (make_snapshot's verify.json made the real directory too.)
    fs::remove_dir_all(env.workdir().join("metadata")).unwrap();
    symlink(
        env.root.join("outside/meta"),
        env.workdir().join("metadata"),
    )
    .unwrap();
    for args in [
        &["publish-inventory"][..],
        &["publish-catalog", "--snapshot", "20260101-000000"],
    ] {
        env.run()
            .args(args)
            .code(1)
            .stderr_has("work/metadata")
            .stderr_has("symlink")
            .run();
        assert_intact(&stale);
        assert_eq!(
            crate::common::list_dir(&env.root.join("outside/meta")),
            [".someone.else.tmp"],
            "{args:?}"
        );
    }
    // A stage that does not write metadata still runs, but its temp-file
    // cleanup does not reach through the link.
    env.run().arg("cleanup-state").success().run();
    assert_intact(&stale);
}

#[test]
fn a_symlink_inside_metadata_is_not_written_through() {
    let env = published_locally();
    fs::create_dir_all(env.workdir().join("metadata")).unwrap();
    fs::create_dir_all(env.root.join("outside/snaps")).unwrap();
    fs::remove_dir_all(env.workdir().join("metadata/snapshots")).unwrap();
    symlink(
        env.root.join("outside/snaps"),
        env.workdir().join("metadata/snapshots"),
    )
    .unwrap();
    env.run()
        .args(["publish-catalog", "--snapshot", "20260101-000000"])
        .code(1)
        .stderr_has("metadata/snapshots")
        .stderr_has("symlink")
        .run();
    assert!(
        crate::common::list_dir(&env.root.join("outside/snaps")).is_empty(),
        "a catalog was written outside the workdir"
    );
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo");
}

#[test]
fn a_fifo_or_device_as_a_state_file_fails_at_once() {
    let env = Env::with_av_config(1, 10, "");
    fs::create_dir_all(env.state().join("av_state")).unwrap();
    let current = env.state().join("current_snapshot.txt");
    // A FIFO: opening it for reading blocks until a writer comes.
    mkfifo(&current);
    // Each run fails (exit 1) at once, naming the file and what it is.
    let fails_at_once = |args: &[&str], file: &str, what: &str| {
        let started = Instant::now();
        bounded(env.run().args(args))
            .code(1)
            .stderr_has(file)
            .stderr_has(what)
            .run();
        let took = started.elapsed();
        assert!(took < Duration::from_secs(10), "{args:?} took {took:?}");
    };
    let current_txt = "state/current_snapshot.txt";
    fails_at_once(
        &["--skip-remote", "publish-snapshot"],
        current_txt,
        "not a regular file",
    );
    fails_at_once(&["publish-catalog"], current_txt, "not a regular file");
    // A symlink to an endless device.
    fs::remove_file(&current).unwrap();
    symlink("/dev/zero", &current).unwrap();
    fails_at_once(
        &["--skip-remote", "publish-snapshot"],
        current_txt,
        "symlink",
    );
    // The antivirus scan state is read the same way.
    fs::remove_file(&current).unwrap();
    mkfifo(&env.av_state("mirror_changed"));
    fails_at_once(
        &["av-scan"],
        "av_state/mirror_changed",
        "not a regular file",
    );
}

#[test]
fn dry_run_works_on_a_read_only_workdir() {
    let env = Env::with_default_config();
    env.make_snapshot("20260101-000000");
    // A workdir in normal use: lock file, current snapshot, published tree,
    // metadata.
    for args in [
        &["snapshot"][..],
        &["--skip-remote", "publish-snapshot", "--all"],
        &["publish-inventory"],
    ] {
        env.run().args(args).success().run();
        if args == ["snapshot"] {
            // The snapshot just taken passes publish-snapshot's verification gate.
            let current = fs::read_to_string(env.state().join("current_snapshot.txt")).unwrap();
            env.mark_verified(current.trim());
        }
    }
    let current = fs::read_to_string(env.state().join("current_snapshot.txt")).unwrap();
    let setup = format!(
        "mount --bind '{w}' '{w}'\nmount -o remount,bind,ro '{w}'",
        w = env.workdir().display()
    );
    for args in [
        &["snapshot"][..],
        &["--skip-remote", "publish-snapshot"],
        &["--skip-remote", "publish-snapshot", "--all"],
        &["publish-inventory"],
        &["publish-catalog"],
        &["replicate"],
        &["cleanup-state"],
    ] {
        env.run()
            .arg("--dry-run")
            .args(args)
            .in_mount_namespace(&setup)
            .success()
            .stderr_has("dry_run_plan")
            .stderr_lacks("Read-only file system")
            .run();
    }
    // Nothing changed (the bind mount was read-only anyway; this checks the
    // runs saw the real state).
    assert_eq!(
        fs::read_to_string(env.state().join("current_snapshot.txt")).unwrap(),
        current
    );
}
