//! Stage logs and error messages, snapshot-tested with insta (docs/architecture.md,
//! practice 8) with timestamps, temp paths, pids and durations filtered:
//! the dry-run plan of `publish-snapshot --all`, a lock timeout, missing
//! programs, a failed command.

use crate::common::{Env, assert_snapshot, fakes_dir, regex_escape, stderr};

/// The snapshot `tests/snapshots/<name>.snap` of a run in `env`, with
/// paths, times, pids and durations filtered.
fn snapshot(env: &Env, name: &str, text: impl AsRef<str>) {
    let root = regex_escape(&env.root.display().to_string());
    let fakes = regex_escape(&fakes_dir().display().to_string());
    let fixed = |r: &str| r.to_owned();
    assert_snapshot(
        name,
        text.as_ref(),
        vec![
            (fakes, "[FAKES]"),
            (root, "[ROOT]"),
            (fixed(r"(?m)^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d "), "[TIME] "),
            (fixed(r"mirrorer-publish-\d+-\d+"), "mirrorer-publish-[ID]"),
            (fixed(r"(waited_s|duration_s)=[0-9.e-]+"), "$1=[S]"),
            (fixed(r"gave up after [0-9.]+s"), "gave up after [S]s"),
            (fixed(r"pid=\d+"), "pid=[PID]"),
            (fixed(r"since=\S+"), "since=[SINCE]"),
            (fixed(r"\d{8}-\d{6}"), "[SNAPSHOT]"),
        ],
    );
}

/// An environment with [`Env::default_config`] at log level INFO (the
/// level the snapshots show).
fn info_env() -> Env {
    let env = Env::new();
    env.write_config(
        &env.default_config()
            .replace("log_level: DEBUG", "log_level: INFO"),
    );
    env
}

#[test]
fn dry_run_plan_of_publish_all() {
    let env = info_env();
    env.make_snapshot("20260101-000000");
    env.make_snapshot("20260102-000000");
    env.write_file("work/state/pipeline.lock", "");
    let out = env
        .run()
        .args(["--dry-run", "publish-snapshot", "--all"])
        .success()
        .run();
    snapshot(&env, "stages_dry_run_publish_all", stderr(&out));
}

#[test]
fn lock_timeout_names_the_holder() {
    let env = info_env();
    let state = env.state();
    std::fs::create_dir_all(&state).unwrap();
    // Hold the lock from this test process, as a running stage would.
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(state.join("pipeline.lock"))
        .unwrap();
    file.lock().unwrap();
    std::fs::write(
        state.join("pipeline.lock"),
        format!(
            "pid={} stage=av-scan mode=exclusive since=2026-06-03T12:00:00+00:00 job_url=https://gitlab.example/job/9\n",
            std::process::id()
        ),
    )
    .unwrap();
    let out = env
        .run()
        .args(["--lock-timeout", "0.2", "snapshot"])
        .code(4)
        .run();
    file.unlock().unwrap();
    snapshot(&env, "stages_lock_timeout", stderr(&out));
}

#[test]
fn missing_programs() {
    let env = Env::with_default_config();
    let out = env
        .run()
        .env("MIRRORER_TOOL_RSYNC", "no-such-rsync")
        .env("MIRRORER_TOOL_ZFS", "/nonexistent/zfs")
        .args(["publish-snapshot", "--all"])
        .code(1)
        .run();
    snapshot(&env, "stages_missing_programs", stderr(&out));
}

#[test]
fn failed_command() {
    let env = info_env();
    let out = env
        .run()
        .env("FAKE_SYNCOID_EXIT", "3")
        .arg("replicate")
        .code(1)
        .run();
    snapshot(&env, "stages_failed_command", stderr(&out));
}
