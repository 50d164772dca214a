//! `replicate` (and its hidden alias `replication`) with the fake syncoid.

use crate::common::{DATASET, Env, assert_has_all, stderr};

fn syncoid_line(env: &Env) -> String {
    format!(
        "syncoid --sshkey {}/id_rsa --no-sync-snap --recursive --force-delete -- {DATASET} mirror@replica.example:{DATASET}",
        env.root.display()
    )
}

#[test]
fn replicate_runs_syncoid_to_the_replica() {
    let env = Env::with_default_config();
    let out = env.run().arg("replicate").success().run();
    assert_eq!(env.log(), vec![syncoid_line(&env)]);
    assert!(
        stderr(&out).contains("zfs_replication_completed dataset=tank/mirror host=replica.example")
    );
}

#[test]
fn replication_is_a_hidden_alias() {
    let env = Env::with_default_config();
    env.run().arg("replication").success().run();
    assert_eq!(env.log(), vec![syncoid_line(&env)]);
    env.run()
        .arg("--help")
        .success()
        .stdout_has("\n  replicate ")
        .stdout_lacks("\n  replication ")
        .run();
}

#[test]
fn skip_remote_from_the_flag_or_the_config_skips() {
    let env = Env::with_default_config();
    env.run()
        .args(["--skip-remote", "replicate"])
        .success()
        .stderr_has("replication_skipped_by_flag source=flag")
        .run();
    assert!(env.log().is_empty());

    env.write_config(
        &env.default_config()
            .replace("skip_remote: false", "skip_remote: true"),
    );
    env.run()
        .arg("replicate")
        .success()
        .stderr_has("replication_skipped_by_flag source=config")
        .run();
    assert!(env.log().is_empty());
    // --no-skip-remote overrides the config.
    env.run()
        .args(["--no-skip-remote", "replicate"])
        .success()
        .run();
    assert_eq!(env.log(), vec![syncoid_line(&env)]);
}

#[test]
fn no_replica_host_skips_without_needing_syncoid() {
    let env = Env::new();
    env.write_config(
        &env.default_config()
            .replace("  replica_host: replica.example\n", ""),
    );
    env.run()
        .env("MIRRORER_TOOL_SYNCOID", "/nonexistent/syncoid")
        .arg("replicate")
        .success()
        .stderr_has("replication_skipped_no_host")
        .run();
}

#[test]
fn ssh_user_is_required() {
    let env = Env::new();
    env.write_config(&env.default_config().replace("  ssh_user: mirror\n", ""));
    env.run()
        .arg("replicate")
        .code(1)
        .stderr_has("replication.ssh_user is required")
        .run();
    assert!(env.log().is_empty());
}

#[test]
fn syncoid_failure_fails_the_stage() {
    let env = Env::with_default_config();
    env.run()
        .env("FAKE_SYNCOID_EXIT", "2")
        .arg("replicate")
        .code(1)
        .stderr_has("exited with 2")
        .stderr_has("stage_failed stage=replicate")
        .run();
}

#[test]
fn replicate_dry_run_prints_the_command_only() {
    let env = Env::with_default_config();
    let out = env.run().args(["--dry-run", "replicate"]).success().run();
    assert!(env.log().is_empty());
    let stderr = stderr(&out);
    assert_has_all(
        &stderr,
        &[
            "dry_run_command",
            "--no-sync-snap --recursive --force-delete -- tank/mirror mirror@replica.example:tank/mirror",
        ],
    );
}
