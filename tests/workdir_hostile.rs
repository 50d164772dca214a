//! A hostile workdir, through the real binary: nothing planted under
//! `<workdir>` is followed out of it. Lock files that are symlinks are
//! refused (their targets untouched); a lock file unlinked while held
//! admits no second holder; `repo/` and `metadata/` must be real
//! directories in every stage that writes there; a state file that is a
//! FIFO or a device fails at once instead of hanging; `--dry-run` works on
//! a read-only workdir.

mod common;

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Env, fakes_dir, in_mount_namespace, stderr};

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

/// Runs `cmd`, killing it after `secs` (a hang fails the test instead of
/// blocking it). Returns the output and how long it took.
fn run_bounded(mut cmd: std::process::Command, secs: u64) -> (std::process::Output, Duration) {
    use std::os::unix::process::CommandExt;
    // Today's code reads /dev/zero to the end: bound its memory so a
    // failing run ends in an allocation failure, not a swapping machine.
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
    let started = Instant::now();
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mirrorer");
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(out) => (out.expect("wait for mirrorer"), started.elapsed()),
        Err(_) => {
            // SAFETY: kill(2) has no memory-safety preconditions.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("mirrorer hung for {secs}s (killed)");
        }
    }
}

#[test]
fn a_symlinked_pipeline_lock_is_refused_and_its_target_untouched() {
    let env = Env::new();
    env.write_config(&env.default_config());
    let target = victim(&env, "victim.txt");
    fs::create_dir_all(env.state()).unwrap();
    symlink(&target, env.state().join("pipeline.lock")).unwrap();
    for args in [
        &["snapshot"][..],
        &["cleanup-state"],
        &["--dry-run", "snapshot"],
    ] {
        let out = env.cmd().args(args).output().unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("state/pipeline.lock"), "{args:?}: {err}");
        assert!(err.contains("symlink"), "{args:?}: {err}");
        assert_intact(&target);
    }
    assert!(env.log_of("zfs").is_empty(), "{:?}", env.log());
}

#[test]
fn a_symlinked_syncer_lock_is_refused_and_its_target_untouched() {
    let env = Env::new();
    env.write_file("etc/repos.yaml", "repos: []\n");
    let docker_dir = env.root.join("docker");
    fs::create_dir_all(&docker_dir).unwrap();
    let mut config = env.default_config();
    config.push_str(&format!(
        "  docker: {}\nsyncer:\n  - type: rsync\n    name: alpha\n    prefix: alpha\n    repos: repos.yaml\n    image: registry.example/alpha:1\n    log_file: {}/logs/alpha.log\n",
        fakes_dir().join("docker").display(),
        env.root.display()
    ));
    env.write_config(&config);
    let target = victim(&env, "victim.txt");
    fs::create_dir_all(env.state()).unwrap();
    symlink(&target, env.state().join("sync-alpha.lock")).unwrap();
    let out = env
        .cmd()
        .env("FAKE_DOCKER_DIR", &docker_dir)
        .args(["sync", "--syncer", "alpha"])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("state/sync-alpha.lock"), "{err}");
    assert!(err.contains("symlink"), "{err}");
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
        .std_cmd()
        .env("FAKE_ZFS_SLEEP", sleep_s.to_string())
        .env("FAKE_ZFS_PIDFILE", env.root.join(pidfile))
        .args(extra)
        .arg("snapshot")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mirrorer");
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

fn wait_for(what: &str, secs: u64, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_lock_file_unlinked_while_held_admits_no_second_holder() {
    let env = Env::new();
    env.write_config(&env.default_config());
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
    let env = Env::new();
    env.write_config(&env.default_config());
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
        let out = env.cmd().args(args).output().unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("work/repo"), "{args:?}: {err}");
        assert!(err.contains("symlink"), "{args:?}: {err}");
        assert_intact(&kept);
        assert_eq!(
            common::list_dir(&env.root.join("outside/published")),
            ["keep.txt"],
            "{args:?}"
        );
    }
}

#[test]
fn a_symlinked_metadata_root_is_refused_and_its_temp_files_kept() {
    let env = Env::new();
    env.write_config(&env.default_config());
    env.make_snapshot("20260101-000000");
    env.cmd()
        .args(["--skip-remote", "publish-snapshot", "--all"])
        .assert()
        .success();
    let stale = victim(&env, "meta/.someone.else.tmp");
    // (make_snapshot's verify.json made the real directory; the link replaces it.)
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
        let out = env.cmd().args(args).output().unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("work/metadata"), "{args:?}: {err}");
        assert!(err.contains("symlink"), "{args:?}: {err}");
        assert_intact(&stale);
        assert_eq!(
            common::list_dir(&env.root.join("outside/meta")),
            [".someone.else.tmp"],
            "{args:?}"
        );
    }
    // A stage that does not write metadata still runs, but its temp-file
    // cleanup does not reach through the link.
    let out = env.cmd().arg("cleanup-state").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_intact(&stale);
}

#[test]
fn a_symlink_inside_metadata_is_not_written_through() {
    let env = Env::new();
    env.write_config(&env.default_config());
    env.make_snapshot("20260101-000000");
    env.cmd()
        .args(["--skip-remote", "publish-snapshot", "--all"])
        .assert()
        .success();
    fs::create_dir_all(env.workdir().join("metadata")).unwrap();
    fs::create_dir_all(env.root.join("outside/snaps")).unwrap();
    fs::remove_dir_all(env.workdir().join("metadata/snapshots")).unwrap();
    symlink(
        env.root.join("outside/snaps"),
        env.workdir().join("metadata/snapshots"),
    )
    .unwrap();
    let out = env
        .cmd()
        .args(["publish-catalog", "--snapshot", "20260101-000000"])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("metadata/snapshots"), "{err}");
    assert!(err.contains("symlink"), "{err}");
    assert!(
        common::list_dir(&env.root.join("outside/snaps")).is_empty(),
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
    let env = Env::new();
    env.write_config(&env.av_config(1, 10, ""));
    fs::create_dir_all(env.state().join("av_state")).unwrap();
    let current = env.state().join("current_snapshot.txt");
    // A FIFO: opening it for reading blocks until a writer comes.
    mkfifo(&current);
    for args in [
        &["--skip-remote", "publish-snapshot"][..],
        &["publish-catalog"],
    ] {
        let mut cmd = env.std_cmd();
        cmd.args(args);
        let (out, took) = run_bounded(cmd, 20);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("state/current_snapshot.txt"),
            "{args:?}: {err}"
        );
        assert!(err.contains("not a regular file"), "{args:?}: {err}");
        assert!(took < Duration::from_secs(10), "{args:?} took {took:?}");
    }
    // A symlink to an endless device.
    fs::remove_file(&current).unwrap();
    symlink("/dev/zero", &current).unwrap();
    let mut cmd = env.std_cmd();
    cmd.args(["--skip-remote", "publish-snapshot"]);
    let (out, took) = run_bounded(cmd, 20);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("state/current_snapshot.txt"), "{err}");
    assert!(err.contains("symlink"), "{err}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    // The antivirus scan state is read the same way.
    fs::remove_file(&current).unwrap();
    let marker = env.av_state("mirror_changed");
    mkfifo(&marker);
    let mut cmd = env.std_cmd();
    cmd.arg("av-scan");
    let (out, took) = run_bounded(cmd, 20);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("av_state/mirror_changed"), "{err}");
    assert!(err.contains("not a regular file"), "{err}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

#[test]
fn dry_run_works_on_a_read_only_workdir() {
    let env = Env::new();
    env.write_config(&env.default_config());
    env.make_snapshot("20260101-000000");
    // A workdir in normal use: lock file, current snapshot, published tree,
    // metadata.
    for args in [
        &["snapshot"][..],
        &["--skip-remote", "publish-snapshot", "--all"],
        &["publish-inventory"],
    ] {
        let out = env.cmd().args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
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
        let mut cmd = env.std_cmd();
        cmd.arg("--dry-run").args(args);
        let out = in_mount_namespace(&cmd, &setup).output().unwrap();
        let err = stderr(&out);
        assert!(out.status.success(), "--dry-run {args:?}: {err}");
        assert!(err.contains("dry_run_plan"), "--dry-run {args:?}: {err}");
        assert!(!err.contains("Read-only file system"), "{args:?}: {err}");
    }
    // Nothing changed (the bind mount was read-only anyway; this checks the
    // runs saw the real state).
    assert_eq!(
        fs::read_to_string(env.state().join("current_snapshot.txt")).unwrap(),
        current
    );
}
