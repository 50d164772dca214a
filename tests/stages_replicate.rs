//! `replicate` (and its hidden alias `replication`) with the fake syncoid.

mod common;

use common::{DATASET, Env, stderr};

fn syncoid_line(env: &Env) -> String {
    format!(
        "syncoid --sshkey {}/id_rsa --no-sync-snap --recursive --force-delete -- {DATASET} mirror@replica.example:{DATASET}",
        env.root.display()
    )
}

#[test]
fn replicate_runs_syncoid_to_the_replica() {
    let env = Env::new();
    env.write_config(&env.default_config());
    let out = env
        .cmd()
        .arg("replicate")
        .assert()
        .success()
        .get_output()
        .clone();
    assert_eq!(env.log(), vec![syncoid_line(&env)]);
    assert!(
        stderr(&out).contains("zfs_replication_completed dataset=tank/mirror host=replica.example")
    );
}

#[test]
fn replication_is_a_hidden_alias() {
    let env = Env::new();
    env.write_config(&env.default_config());
    env.cmd().arg("replication").assert().success();
    assert_eq!(env.log(), vec![syncoid_line(&env)]);
    let help = env
        .cmd()
        .arg("--help")
        .assert()
        .success()
        .get_output()
        .clone();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("\n  replicate ") && !help.contains("\n  replication "),
        "{help}"
    );
}

#[test]
fn skip_remote_from_the_flag_or_the_config_skips() {
    let env = Env::new();
    env.write_config(&env.default_config());
    let out = env
        .cmd()
        .args(["--skip-remote", "replicate"])
        .assert()
        .success()
        .get_output()
        .clone();
    let stderr = stderr(&out);
    assert!(
        stderr.contains("replication_skipped_by_flag source=flag"),
        "{stderr}"
    );
    assert!(env.log().is_empty());

    env.write_config(
        &env.default_config()
            .replace("skip_remote: false", "skip_remote: true"),
    );
    let out = env
        .cmd()
        .arg("replicate")
        .assert()
        .success()
        .get_output()
        .clone();
    assert!(common::stderr(&out).contains("replication_skipped_by_flag source=config"));
    assert!(env.log().is_empty());
    // --no-skip-remote overrides the config.
    env.cmd()
        .args(["--no-skip-remote", "replicate"])
        .assert()
        .success();
    assert_eq!(env.log(), vec![syncoid_line(&env)]);
}

#[test]
fn no_replica_host_skips_without_needing_syncoid() {
    let env = Env::new();
    env.write_config(
        &env.default_config()
            .replace("  replica_host: replica.example\n", ""),
    );
    let out = env
        .cmd()
        .env("MIRRORER_TOOL_SYNCOID", "/nonexistent/syncoid")
        .arg("replicate")
        .assert()
        .success()
        .get_output()
        .clone();
    assert!(stderr(&out).contains("replication_skipped_no_host"));
}

#[test]
fn ssh_user_is_required() {
    let env = Env::new();
    env.write_config(&env.default_config().replace("  ssh_user: mirror\n", ""));
    let out = env
        .cmd()
        .arg("replicate")
        .assert()
        .code(1)
        .get_output()
        .clone();
    let stderr = stderr(&out);
    assert!(
        stderr.contains("replication.ssh_user is required"),
        "{stderr}"
    );
    assert!(env.log().is_empty());
}

#[test]
fn syncoid_failure_fails_the_stage() {
    let env = Env::new();
    env.write_config(&env.default_config());
    let out = env
        .cmd()
        .env("FAKE_SYNCOID_EXIT", "2")
        .arg("replicate")
        .assert()
        .code(1)
        .get_output()
        .clone();
    let stderr = stderr(&out);
    assert!(stderr.contains("exited with 2"), "{stderr}");
    assert!(stderr.contains("stage_failed stage=replicate"), "{stderr}");
}

#[test]
fn replicate_dry_run_prints_the_command_only() {
    let env = Env::new();
    env.write_config(&env.default_config());
    let out = env
        .cmd()
        .args(["--dry-run", "replicate"])
        .assert()
        .success()
        .get_output()
        .clone();
    assert!(env.log().is_empty());
    let stderr = stderr(&out);
    assert!(stderr.contains("dry_run_command"), "{stderr}");
    assert!(stderr.contains("--no-sync-snap --recursive --force-delete -- tank/mirror mirror@replica.example:tank/mirror"), "{stderr}");
}
