//! `snapshot` and `cleanup-state` through the real binary, and the stage
//! runner's shared behaviour (config errors, missing tools, events, CI
//! sections, dry run).

use std::fs;
use std::path::Path;

use crate::common::{DATASET, Env, assert_has, assert_has_all, stderr, tree};

fn snapshot_name_of(env: &Env) -> String {
    let text =
        fs::read_to_string(env.state().join("current_snapshot.txt")).expect("current_snapshot.txt");
    assert!(text.ends_with('\n'), "{text:?}");
    let name = text.trim_end_matches('\n').to_owned();
    assert_eq!(name.len(), 15, "{name:?}");
    assert!(
        chrono::NaiveDateTime::parse_from_str(&name, "%Y%m%d-%H%M%S").is_ok(),
        "{name:?} is not %Y%m%d-%H%M%S"
    );
    name
}

#[test]
fn snapshot_runs_zfs_and_records_the_current_snapshot() {
    let env = Env::with_default_config();
    let out = env.run().arg("snapshot").success().run();
    let name = snapshot_name_of(&env);
    assert_eq!(env.log(), vec![format!("zfs snapshot -- {DATASET}@{name}")]);
    // The fake took the snapshot: a copy of the tree.
    assert!(
        env.mount()
            .join(".zfs/snapshot")
            .join(&name)
            .join("apt/mirror/deb.debian.org/debian/dists/bookworm/Release")
            .is_file()
    );
    let stderr = stderr(&out);
    assert_has_all(
        &stderr,
        &[
            "stage_start stage=snapshot",
            "stage_ok stage=snapshot duration_s=",
            "command_run purpose=",
        ],
    );
    assert!(
        !stderr.contains("section_start"),
        "no sections outside CI: {stderr}"
    );
    // Without CI and --dotenv no dotenv file is written.
    assert!(!env.root.join("mirrorer-snapshot.env").exists());
    assert!(out.stdout.is_empty(), "stdout carries no logs");
    // The lock file is empty again after release; state dirs exist.
    assert_eq!(
        fs::read_to_string(env.state().join("pipeline.lock")).unwrap(),
        ""
    );
    assert!(env.state().join("av_state").is_dir());
    assert!(env.state().join("av_results").is_dir());
}

/// Asserts that the dotenv file `path` is `MIRRORER_SNAPSHOT=<the
/// snapshot the run made>` ([`snapshot_name_of`]).
#[track_caller]
fn assert_dotenv_names_the_snapshot(env: &Env, path: &Path) {
    let name = snapshot_name_of(env);
    assert_eq!(
        fs::read_to_string(path).unwrap(),
        format!("MIRRORER_SNAPSHOT={name}\n")
    );
}

#[test]
fn snapshot_writes_the_dotenv_file() {
    let env = Env::with_default_config();
    let dotenv = env.root.join("out/snap.env");
    fs::create_dir_all(dotenv.parent().unwrap()).unwrap();
    env.run()
        .args(["snapshot", "--dotenv"])
        .arg(&dotenv)
        .success()
        .run();
    assert_dotenv_names_the_snapshot(&env, &dotenv);
}

#[test]
fn in_ci_the_dotenv_file_is_written_by_default_and_the_stage_is_a_section() {
    let env = Env::with_default_config();
    env.run()
        .env("CI", "true")
        .env("CI_JOB_URL", "https://gitlab.example/job/1")
        .arg("snapshot")
        .success()
        .stderr_has("section_start:")
        .stderr_has(":stage_snapshot\r")
        .stderr_has("section_end:")
        .run();
    assert_dotenv_names_the_snapshot(&env, &env.root.join("mirrorer-snapshot.env"));
}

#[test]
fn json_logs_have_no_sections_even_in_ci() {
    let env = Env::with_default_config();
    let stderr = env
        .run()
        .env("CI", "true")
        .args(["--json-logs", "cleanup-state"])
        .success()
        .stderr_lacks("section_start")
        .run()
        .stderr;
    for line in stderr.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("one JSON object per line");
        assert!(v["event"].is_string(), "{line}");
    }
    assert!(
        stderr.contains(r#""event":"stage_ok","fields":{"duration_s":"#),
        "{stderr}"
    );
}

#[test]
fn snapshot_dry_run_changes_nothing_but_prints_the_plan_and_the_dotenv() {
    let env = Env::with_default_config();
    // A previous run left state behind; it must stay as is.
    env.write_file("work/state/current_snapshot.txt", "20200101-000000\n");
    env.write_file("work/state/pipeline.lock", "");
    let before_work = tree(&env.workdir());
    let before_mount = tree(&env.mount());
    let stderr = env
        .run()
        .args(["--dry-run", "snapshot", "--dotenv", "snap.env"])
        .success()
        .stderr_has("dry_run_write path=")
        .stderr_has("current_snapshot.txt bytes=16")
        .run()
        .stderr;
    assert_eq!(tree(&env.workdir()), before_work);
    assert_eq!(tree(&env.mount()), before_mount);
    assert!(env.log_of("zfs").is_empty(), "{:?}", env.log());
    assert_has(
        &stderr,
        &format!(
            "dry_run_command purpose=\"take the snapshot of the mirror dataset\" command=\"{}/zfs snapshot -- {DATASET}@",
            crate::common::fakes_dir().display()
        ),
    );
    // The dotenv is a job artifact and is written with the planned name.
    let dotenv = fs::read_to_string(env.root.join("snap.env")).unwrap();
    assert!(
        dotenv.starts_with("MIRRORER_SNAPSHOT=") && dotenv.len() == 34,
        "{dotenv:?}"
    );
}

#[test]
fn dry_run_on_a_fresh_host_creates_no_state_directory() {
    let env = Env::with_default_config();
    let stderr = env.dry_run("cleanup-state").stderr;
    assert!(!env.state().exists(), "{:?}", tree(&env.workdir()));
    assert_has_all(
        &stderr,
        &["state_lock_skipped_dry_run", "dry_run_remove path="],
    );
}

#[test]
fn zfs_failure_fails_the_stage_with_the_command_and_its_output() {
    let env = Env::with_default_config();
    env.run()
        .env("FAKE_ZFS_EXIT", "1")
        .arg("snapshot")
        .code(1)
        .stderr_has("stage_failed stage=snapshot")
        .stderr_has("exited with 1")
        .stderr_has("failing as told (FAKE_ZFS_EXIT=1)")
        .run();
    assert!(!env.state().join("current_snapshot.txt").exists());
}

#[test]
fn missing_programs_are_reported_together_before_anything_runs() {
    let env = Env::with_default_config();
    let stderr = env
        .run()
        .env("MIRRORER_TOOL_ZFS", env.root.join("nope/zfs"))
        .arg("snapshot")
        .code(1)
        .stderr_lacks("stage_start")
        .run()
        .stderr;
    assert_has(
        &stderr,
        &format!(
            "missing external program: zfs ({}/nope/zfs: does not exist; from MIRRORER_TOOL_ZFS)",
            env.root.display()
        ),
    );
    assert!(!env.state().exists());
}

#[test]
fn an_invalid_config_exits_3() {
    let env = Env::new();
    env.write_config("mirror:\n  kesl_max_workers: 1000\n");
    env.run().arg("snapshot").code(3).run();
    let env = Env::new();
    env.run().arg("cleanup-state").code(3).run();
}

#[test]
fn cleanup_state_resets_the_pipeline_state() {
    let env = Env::with_default_config();
    env.write_file("work/state/current_snapshot.txt", "20260101-000000\n");
    env.write_file("work/state/run_state.json", "{}");
    env.write_file("work/state/av_state/files_to_scan.txt", "/a\n");
    env.write_file("work/state/av_state/sub/x", "x");
    env.write_file(
        "work/state/av_results/av_report_20260101-000000.txt",
        "threat",
    );
    env.run().arg("cleanup-state").success().run();
    let state = env.state();
    assert!(!state.join("current_snapshot.txt").exists());
    assert!(!state.join("run_state.json").exists());
    assert!(state.join("av_state").is_dir());
    assert_eq!(fs::read_dir(state.join("av_state")).unwrap().count(), 0);
    // Reports are kept.
    assert!(
        state
            .join("av_results/av_report_20260101-000000.txt")
            .is_file()
    );
    // Nothing to clean is fine too.
    env.run().arg("cleanup-state").success().run();
}
