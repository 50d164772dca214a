//! `sync` with a real container runtime: podman standing in for docker
//! (`tools.docker`), running busybox containers that write into the mounted
//! mirror directory, fail and retry, print output, and are gone afterwards,
//! also after SIGTERM.
//!
//! Needs the Debian packages `podman runc netavark busybox-static` (ci/test.sh
//! installs them). The test never skips: without podman it fails saying how
//! to install it. `CONTAINERS_CONF` points at
//! `tests/fixtures/podman/containers.conf` (runc, modest ulimits; see the
//! file for why), and the image is built once by
//! `tests/fixtures/podman/build-image.sh`.

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::common::{
    Env, Expect, Run, assert_has, assert_has_lines, fixture, kill, output_ok, wait_for,
    wait_with_deadline,
};

const IMAGE: &str = "localhost/mirrorer-test-busybox:1";
const TOKEN: &str = "podman-S3CRET-token-991";

/// podman's path; panics with the install command when it is missing.
fn podman() -> PathBuf {
    mirrorer::process::find_program("podman").unwrap_or_else(|| {
        panic!(
            "podman is not installed, but this test needs a real container runtime: \
             apt-get install -y --no-install-recommends podman runc netavark busybox-static"
        )
    })
}

fn containers_conf() -> PathBuf {
    fixture("podman/containers.conf")
}

fn podman_cmd() -> Command {
    let mut cmd = Command::new(podman());
    cmd.env("CONTAINERS_CONF", containers_conf());
    cmd
}

/// Builds the busybox image once per test process (the script is
/// idempotent across processes).
fn image() -> &'static str {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        output_ok(
            Command::new("sh")
                .arg(fixture("podman/build-image.sh"))
                .arg(IMAGE)
                .env("PODMAN", podman())
                .env("CONTAINERS_CONF", containers_conf()),
            &format!("building {IMAGE} (is busybox-static installed?)"),
        );
    });
    IMAGE
}

/// The names of the containers (running or not) whose name starts with
/// `prefix`.
fn containers_named(prefix: &str) -> Vec<String> {
    let out = output_ok(
        podman_cmd().args(["ps", "-a", "--format", "{{.Names}}"]),
        "podman ps -a",
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|n| n.starts_with(prefix))
        .map(str::to_owned)
        .collect()
}

/// A unique container-name prefix for one test.
fn prefix(test: &str) -> String {
    format!("mirrorer-test-{}-{test}", std::process::id())
}

/// A config with rsync-type syncers running `script` (busybox sh) each,
/// podman as the docker tool; `/distpool/mirror` is the test's mirror dir.
fn config(env: &Env, syncers: &[(&str, &str)]) -> String {
    env.write_file("etc/repos.yaml", "repos: []\n");
    let mut text = env.default_config();
    text.push_str(&format!("  docker: {}\n", podman().display()));
    text.push_str("syncer:\n");
    for (name, script) in syncers {
        let script = serde_json::to_string(script).unwrap();
        text.push_str(&format!(
            "  - type: rsync\n    name: {name}\n    repos: repos.yaml\n    image: {image}\n    log_file: {log}\n    environment:\n      API_TOKEN: {TOKEN}\n    command_args: [/bin/sh, -c, {script}]\n",
            image = image(),
            log = env.root.join(format!("logs/{name}.log")).display(),
        ));
    }
    text
}

fn sync_run(env: &Env) -> Run {
    env.run().env("CONTAINERS_CONF", containers_conf())
}

#[test]
fn real_containers_run_in_parallel_retry_stream_and_are_removed() {
    let env = Env::new();
    let p = prefix("run");
    let (alpha, beta) = (format!("{p}-alpha"), format!("{p}-beta"));
    // alpha: waits until beta has started (they run at the same time),
    // writes into the mirror, fails on its first attempt, then succeeds.
    let alpha_script = r#"
        n=$(cat /distpool/mirror/alpha.count 2>/dev/null || echo 0); n=$((n+1)); echo $n > /distpool/mirror/alpha.count
        echo "alpha attempt $n starting"
        i=0; while [ ! -e /distpool/mirror/beta.started ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
        [ -e /distpool/mirror/beta.started ] || { echo "beta never ran alongside"; exit 42; }
        mkdir -p /distpool/mirror/alpha && echo "synced by attempt $n" > /distpool/mirror/alpha/data.txt
        echo "token is $API_TOKEN" > /distpool/mirror/alpha/token.txt
        echo "alpha says token=$API_TOKEN" >&2
        [ $n -ge 2 ] || { echo "alpha attempt $n fails"; exit 3; }
        echo "alpha attempt $n done"
    "#;
    // beta: always fails, leaving a trace of each attempt.
    let beta_script = r#"
        touch /distpool/mirror/beta.started
        echo x >> /distpool/mirror/beta.attempts
        echo "beta tries and fails"
        exit 7
    "#;
    env.write_config(&config(
        &env,
        &[(&alpha, alpha_script), (&beta, beta_script)],
    ));
    let started = Instant::now();
    let stderr = sync_run(&env).arg("sync").code(1).run().stderr;
    let elapsed = started.elapsed();
    eprintln!("sync with podman took {:.1}s", elapsed.as_secs_f64());

    // The containers wrote into the mounted mirror directory.
    let mount = env.mount();
    assert_eq!(
        fs::read_to_string(mount.join("alpha.count")).unwrap(),
        "2\n"
    );
    assert_eq!(
        fs::read_to_string(mount.join("alpha/data.txt")).unwrap(),
        "synced by attempt 2\n"
    );
    // The secret reached the container through the hidden environment.
    assert_eq!(
        fs::read_to_string(mount.join("alpha/token.txt")).unwrap(),
        format!("token is {TOKEN}\n")
    );
    assert_eq!(
        fs::read_to_string(mount.join("beta.attempts")).unwrap(),
        "x\nx\nx\n"
    );

    for line in [
        format!("sync_container_retry container={alpha} attempt=1 exit_code=3 next_attempt=2"),
        format!("sync_container_ok container={alpha} attempt=2"),
        format!("sync_container_failed container={beta} attempt=3 exit_code=7"),
        format!("sync_summary container={alpha} status=ok attempts=2 exit_codes=3,0"),
        format!("sync_summary container={beta} status=failed attempts=3 exit_codes=7,7,7"),
        format!("[{alpha}] alpha attempt 1 fails"),
        format!("[{alpha}] alpha attempt 2 done"),
        format!("[{alpha}] alpha says token=***"),
        format!("[{beta}] beta tries and fails"),
        format!("1 of 2 syncers failed: {beta} (3 attempts, exit codes 7,7,7)"),
    ] {
        assert!(stderr.contains(&line), "missing {line:?} in:\n{stderr}");
    }
    assert!(
        !stderr.contains(TOKEN),
        "the secret is in the log:\n{stderr}"
    );

    let log = fs::read_to_string(env.root.join(format!("logs/{alpha}.log"))).unwrap();
    assert_has_lines(
        &log,
        &[
            "alpha attempt 1 fails",
            "alpha attempt 2 done",
            "alpha says token=***",
        ],
    );
    assert!(!log.contains(TOKEN), "{log}");
    assert!(
        containers_named(&p).is_empty(),
        "{:?}",
        containers_named(&p)
    );
}

#[test]
fn sigterm_stops_and_removes_real_containers() {
    let env = Env::new();
    let p = prefix("term");
    let (one, two) = (format!("{p}-one"), format!("{p}-two"));
    // Each container marks its start, then runs until SIGTERM, which it
    // answers with a last line.
    let script = |name: &str| {
        format!(
            "trap 'echo {name} got TERM; exit 143' TERM; touch /distpool/mirror/{name}.started; \
             echo {name} running; while true; do sleep 0.2; done"
        )
    };
    let (s1, s2) = (script("one"), script("two"));
    env.write_config(&config(&env, &[(&one, &s1), (&two, &s2)]));
    let child = sync_run(&env)
        .arg("sync")
        .command()
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mirrorer");
    wait_for("the containers to start", 60, || {
        env.mount().join("one.started").exists() && env.mount().join("two.started").exists()
    });
    assert_eq!(containers_named(&p).len(), 2);
    std::thread::sleep(Duration::from_millis(300));
    let stopped = Instant::now();
    kill(child.id(), libc::SIGTERM);
    let out = wait_with_deadline(child, 90);
    eprintln!(
        "mirrorer exited {:.1}s after SIGTERM",
        stopped.elapsed().as_secs_f64()
    );
    let stderr = Expect::new().code(143).check("mirrorer sync", out).stderr;
    assert!(
        containers_named(&p).is_empty(),
        "{:?}",
        containers_named(&p)
    );
    for (name, short) in [(&one, "one"), (&two, "two")] {
        assert_has(
            &stderr,
            &format!("sync_summary container={name} status=interrupted attempts=1"),
        );
        let log = fs::read_to_string(env.root.join(format!("logs/{name}.log"))).unwrap();
        assert_has(&log, &format!("{short} got TERM"));
        assert_has(&stderr, &format!("[{name}] {short} got TERM"));
    }
}
