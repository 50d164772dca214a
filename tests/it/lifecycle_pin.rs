//! `pin` / `unpin` through the real binary and the fake zfs: the hold
//! `mirrorer:pin` is placed and released with `--` before the operands,
//! both are idempotent, and a snapshot zfs does not list is refused.

use crate::common::{DATASET, Env, stderr};

const S1: &str = "20260101-000000";

fn holds(env: &Env) -> String {
    std::fs::read_to_string(env.mount().join(format!(".zfs/holds/{S1}"))).unwrap_or_default()
}

#[test]
fn pin_and_unpin_place_and_release_the_hold() {
    let env = Env::new();
    env.write_config(&env.default_config());
    env.make_snapshot(S1);
    assert_cmd::Command::from_std(env.std_cmd())
        .args(["pin", S1])
        .assert()
        .success();
    assert_eq!(holds(&env), "mirrorer:pin\n");
    assert!(
        env.log_of("zfs")
            .contains(&format!("zfs hold -- mirrorer:pin {DATASET}@{S1}")),
        "{:?}",
        env.log()
    );
    // Pinning again changes nothing and succeeds.
    let out = assert_cmd::Command::from_std(env.std_cmd())
        .args(["pin", S1])
        .assert()
        .success();
    assert!(stderr(out.get_output()).contains("snapshot_already_pinned"));
    assert_eq!(holds(&env), "mirrorer:pin\n");

    // --dry-run logs the release and keeps the hold.
    let out = assert_cmd::Command::from_std(env.std_cmd())
        .args(["--dry-run", "unpin", S1])
        .assert()
        .success();
    assert!(stderr(out.get_output()).contains("dry_run_command"));
    assert_eq!(holds(&env), "mirrorer:pin\n");

    assert_cmd::Command::from_std(env.std_cmd())
        .args(["unpin", S1])
        .assert()
        .success();
    assert_eq!(holds(&env), "");
    assert!(
        env.log_of("zfs")
            .contains(&format!("zfs release -- mirrorer:pin {DATASET}@{S1}"))
    );
    let out = assert_cmd::Command::from_std(env.std_cmd())
        .args(["unpin", S1])
        .assert()
        .success();
    assert!(stderr(out.get_output()).contains("snapshot_not_pinned"));
}

#[test]
fn pin_refuses_unknown_and_invalid_snapshots() {
    let env = Env::new();
    env.write_config(&env.default_config());
    let out = assert_cmd::Command::from_std(env.std_cmd())
        .args(["pin", S1])
        .assert()
        .code(1);
    assert!(stderr(out.get_output()).contains(&format!("zfs lists no snapshot {DATASET}@{S1}")));
    assert_cmd::Command::from_std(env.std_cmd())
        .args(["pin", "../x"])
        .assert()
        .code(2);
    assert_cmd::Command::from_std(env.std_cmd())
        .args(["pin", "-rf"])
        .assert()
        .code(2);
}
