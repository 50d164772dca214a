//! Stage logs and error messages, snapshot-tested with insta (docs/architecture.md,
//! practice 8) with timestamps, temp paths, pids and durations filtered:
//! the dry-run plan of `publish-snapshot --all`, a lock timeout, missing
//! programs, a failed command.

mod common;

use common::{Env, fakes_dir, stderr};

fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if "\\.+*?()|[]{}^$".contains(c) {
                vec!['\\', c]
            } else {
                vec![c]
            }
        })
        .collect()
}

macro_rules! snapshot {
    ($env:expr, $name:expr, $text:expr) => {
        let root = regex_escape(&$env.root.display().to_string());
        let fakes = regex_escape(&fakes_dir().display().to_string());
        insta::with_settings!({
            filters => vec![
                (fakes.as_str(), "[FAKES]"),
                (root.as_str(), "[ROOT]"),
                (r"(?m)^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ", "[TIME] "),
                (r"mirrorer-publish-\d+-\d+", "mirrorer-publish-[ID]"),
                (r"(waited_s|duration_s)=[0-9.e-]+", "$1=[S]"),
                (r"gave up after [0-9.]+s", "gave up after [S]s"),
                (r"pid=\d+", "pid=[PID]"),
                (r"since=\S+", "since=[SINCE]"),
                (r"\d{8}-\d{6}", "[SNAPSHOT]"),
            ],
            prepend_module_to_snapshot => false,
        }, {
            insta::assert_snapshot!($name, $text);
        })
    };
}

#[test]
fn dry_run_plan_of_publish_all() {
    let env = Env::new();
    env.write_config(
        &env.default_config()
            .replace("log_level: DEBUG", "log_level: INFO"),
    );
    env.make_snapshot("20260101-000000");
    env.make_snapshot("20260102-000000");
    env.write_file("work/state/pipeline.lock", "");
    let out = env
        .cmd()
        .args(["--dry-run", "publish-snapshot", "--all"])
        .assert()
        .success()
        .get_output()
        .clone();
    snapshot!(env, "stages_dry_run_publish_all", stderr(&out));
}

#[test]
fn lock_timeout_names_the_holder() {
    let env = Env::new();
    env.write_config(
        &env.default_config()
            .replace("log_level: DEBUG", "log_level: INFO"),
    );
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
        .cmd()
        .args(["--lock-timeout", "0.2", "snapshot"])
        .assert()
        .code(4)
        .get_output()
        .clone();
    file.unlock().unwrap();
    snapshot!(env, "stages_lock_timeout", stderr(&out));
}

#[test]
fn missing_programs() {
    let env = Env::new();
    env.write_config(&env.default_config());
    let out = env
        .cmd()
        .env("MIRRORER_TOOL_RSYNC", "no-such-rsync")
        .env("MIRRORER_TOOL_ZFS", "/nonexistent/zfs")
        .args(["publish-snapshot", "--all"])
        .assert()
        .code(1)
        .get_output()
        .clone();
    snapshot!(env, "stages_missing_programs", stderr(&out));
}

#[test]
fn failed_command() {
    let env = Env::new();
    env.write_config(
        &env.default_config()
            .replace("log_level: DEBUG", "log_level: INFO"),
    );
    let out = env
        .cmd()
        .env("FAKE_SYNCOID_EXIT", "3")
        .arg("replicate")
        .assert()
        .code(1)
        .get_output()
        .clone();
    snapshot!(env, "stages_failed_command", stderr(&out));
}
