//! `pin` / `unpin` through the real binary and the fake zfs: the hold
//! `mirrorer:pin` is placed and released with `--` before the operands,
//! both are idempotent, and a snapshot zfs does not list is refused.

use crate::common::{DATASET, Env};

const S1: &str = "20260101-000000";

fn holds(env: &Env) -> String {
    std::fs::read_to_string(env.mount().join(format!(".zfs/holds/{S1}"))).unwrap_or_default()
}

#[test]
fn pin_and_unpin_place_and_release_the_hold() {
    let env = Env::with_default_config();
    env.make_snapshot(S1);
    env.run().args(["pin", S1]).success().run();
    assert_eq!(holds(&env), "mirrorer:pin\n");
    assert!(
        env.log_of("zfs")
            .contains(&format!("zfs hold -- mirrorer:pin {DATASET}@{S1}")),
        "{:?}",
        env.log()
    );
    // Pinning again changes nothing and succeeds.
    env.run()
        .args(["pin", S1])
        .success()
        .stderr_has("snapshot_already_pinned")
        .run();
    assert_eq!(holds(&env), "mirrorer:pin\n");

    // --dry-run logs the release and keeps the hold.
    env.run()
        .args(["--dry-run", "unpin", S1])
        .success()
        .stderr_has("dry_run_command")
        .run();
    assert_eq!(holds(&env), "mirrorer:pin\n");

    env.run().args(["unpin", S1]).success().run();
    assert_eq!(holds(&env), "");
    assert!(
        env.log_of("zfs")
            .contains(&format!("zfs release -- mirrorer:pin {DATASET}@{S1}"))
    );
    env.run()
        .args(["unpin", S1])
        .success()
        .stderr_has("snapshot_not_pinned")
        .run();
}

#[test]
fn pin_refuses_unknown_and_invalid_snapshots() {
    let env = Env::with_default_config();
    env.run()
        .args(["pin", S1])
        .code(1)
        .stderr_has(format!("zfs lists no snapshot {DATASET}@{S1}"))
        .run();
    env.run().args(["pin", "../x"]).code(2).run();
    env.run().args(["pin", "-rf"]).code(2).run();
}
