//! `prune` (and the hold commands of `pin`/`unpin`) against real ZFS (zfs-fuse, a file-backed
//! pool: tests/zfs_pool/mod.rs), with no fake zfs: the hold, release,
//! holds and destroy command lines (`--` before the operands) are the ones
//! a real zfs accepts, a held snapshot survives prune, and zfs itself
//! refuses to destroy it. ci/test.sh starts the zfs-fuse daemon; without it
//! this test fails and says why.

use crate::common::Env;
use crate::zfs_pool::{Pool, program, run, snapshot, snapshots_of};

fn day(d: u32) -> String {
    format!("202601{d:02}-020000")
}

#[test]
fn pin_and_prune_with_real_zfs() {
    let pool = Pool::new();
    let dataset = pool.dataset("mirror");
    for d in 1..=4 {
        snapshot(&dataset, &day(d));
    }
    let env = Env::new();
    env.write_config(&format!(
        "mirror:\n  workdir: {work}\n  syncer_dir: {root}/etc\n  zfs_mirror_dataset: {dataset}\n  zfs_mirror_dir: {mount}\n\
         replication:\n  skip_remote: true\n\
         retention:\n  keep_last: 1\n\
         tools:\n  zfs: {zfs}\n",
        work = env.workdir().display(),
        root = env.root.display(),
        mount = pool.mountpoint("mirror").display(),
        zfs = program("zfs").display(),
    ));
    // pin's command line (zfs-fuse's `zfs holds`, which `pin` reads first,
    // is a Python helper missing here, so the hold is placed directly).
    let target = format!("{dataset}@{}", day(2));
    run("zfs", &["hold", "--", "mirrorer:pin", &target]);
    let refs = run(
        "zfs",
        &[
            "get",
            "-H",
            "-p",
            "-o",
            "name,value",
            "userrefs",
            "--",
            &target,
        ],
    );
    assert_eq!(refs.trim(), format!("{target}\t1"));
    // zfs itself refuses to destroy a held snapshot.
    let refused = std::process::Command::new(program("zfs"))
        .args(["destroy", &format!("{dataset}@{}", day(2))])
        .output()
        .unwrap();
    assert!(!refused.status.success());

    env.run()
        .arg("prune")
        .success()
        .stderr_has(format!("prune_keep snapshot={} why=zfs_hold", day(2)))
        .run();
    assert_eq!(snapshots_of(&dataset), vec![day(2), day(4)]);

    run("zfs", &["release", "--", "mirrorer:pin", &target]);
    env.run().arg("prune").success().run();
    assert_eq!(snapshots_of(&dataset), vec![day(4)]);
}
