//! `prune` through the real binary with the fake zfs (local and, through
//! the ssh stand-in, a replica with its own fake dataset): every
//! protection, the guard, `--dry-run`, a run killed between steps, a run
//! that failed on the replica, and no `retention` section.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::common::{
    DATASET, Env, Run, assert_has, fakes_dir, kill, list_dir, read_pid, tree, wait_for,
};

fn day(d: u32) -> String {
    format!("202601{d:02}-020000")
}

fn repo(env: &Env) -> PathBuf {
    env.workdir().join("repo")
}

fn replica_mount(env: &Env) -> PathBuf {
    env.root.join("replica-zfs")
}

/// The snapshots `zfs list` shows in `mount`, sorted.
fn listed(mount: &Path) -> Vec<String> {
    list_dir(&mount.join(".zfs/snapshot"))
}

/// `names` as ZFS snapshots here and on the replica, all published
/// (locally and on the replica), each with a metadata directory; the
/// replica's `zfs` (a wrapper around the fake with the replica's mount,
/// logging to `replica-zfs.log`, failing `destroy` when the file
/// `replica-fail` exists) and `sudo` on the ssh stand-in's PATH.
fn setup(names: &[String], retention: &str) -> Env {
    let env = Env::new();
    env.write_config(&format!("{}{retention}", env.default_config()));
    fs::create_dir_all(replica_mount(&env)).unwrap();
    let zfs = fakes_dir().join("zfs");
    env.write_executable(
        "zfs",
        &format!(
            "#!/bin/sh\n[ -e {root}/replica-fail ] && [ \"$1\" = destroy ] && {{ echo replica destroy failing >&2; exit 1; }}\nFAKE_LOG={root}/replica-zfs.log FAKE_ZFS_MOUNT={mount} FAKE_ZFS_DATASET={DATASET} exec {zfs} \"$@\"\n",
            root = env.root.display(),
            mount = replica_mount(&env).display(),
            zfs = zfs.display()
        ),
    );
    for n in names {
        env.make_snapshot(n);
        let status = std::process::Command::new(&zfs)
            .args(["snapshot", &format!("{DATASET}@{n}")])
            .env("FAKE_ZFS_DATASET", DATASET)
            .env("FAKE_ZFS_MOUNT", replica_mount(&env))
            .status()
            .unwrap();
        assert!(status.success());
        env.write_file(
            &format!("work/metadata/snapshots/{n}/repo_catalog.json"),
            "{}\n",
        );
    }
    replica_run(&env)
        .args(["publish-snapshot", "--all"])
        .success()
        .run();
    replica_run(&env)
        .args(["publish-inventory"])
        .success()
        .run();
    // make_snapshot marked every snapshot verified for publish-snapshot's
    // gate; each test decides which are verified.
    for n in names {
        fs::remove_file(
            env.workdir()
                .join(format!("metadata/snapshots/{n}/verify.json")),
        )
        .unwrap();
    }
    env
}

/// [`Env::run`] with the replica's `zfs` and `sudo` on the ssh stand-in's
/// PATH (see [`setup`]).
fn replica_run(env: &Env) -> Run {
    env.run().env(
        "FAKE_SSH_REMOTE_PATH",
        format!(
            "{}:{}",
            env.root.join("bin").display(),
            fakes_dir().join("replica").display()
        ),
    )
}

/// The snapshots published below `dir`, sorted.
fn published(dir: &Path) -> Vec<String> {
    list_dir(&dir.join("snapshots"))
}

/// After a complete prune of `gone`: nothing of them is left anywhere, the
/// rest is untouched, and inventory.json is what publish-inventory writes.
fn assert_pruned(env: &Env, gone: &[String], kept: &[String]) {
    for (what, names) in [
        ("zfs", listed(&env.mount())),
        ("replica zfs", listed(&replica_mount(env))),
        ("local tree", published(&repo(env))),
        ("replica tree", published(&env.replica_path(&repo(env)))),
    ] {
        let want: Vec<String> = kept.to_vec();
        assert_eq!(names, want, "{what}");
    }
    for n in gone {
        assert!(
            !env.workdir()
                .join(format!("metadata/snapshots/{n}"))
                .exists()
        );
    }
    for n in kept {
        assert!(
            env.workdir()
                .join(format!("metadata/snapshots/{n}"))
                .exists()
        );
    }
    assert!(!env.state().join("prune_journal.txt").exists());
    let written = fs::read(env.workdir().join("metadata/inventory.json")).unwrap();
    replica_run(env).args(["publish-inventory"]).success().run();
    assert_eq!(
        fs::read(env.workdir().join("metadata/inventory.json")).unwrap(),
        written,
        "prune's inventory.json is publish-inventory's"
    );
}

#[test]
fn every_protection_is_kept_and_the_rest_is_destroyed_everywhere() {
    let mut names: Vec<String> = (1..=9).map(day).collect();
    names.push("manual-1".to_owned());
    let env = setup(
        &names,
        &format!("retention:\n  keep_last: 1\n  keep: [{}]\n", day(5)),
    );
    // promoted: d1 (verified); newest verified: d3; current served: d2;
    // state's current snapshot: d4; keep list: d5; hold: d6.
    env.mark_verified(&day(1));
    env.mark_verified(&day(3));
    replica_run(&env)
        .args(["promote", "--snapshot", &day(1)])
        .success()
        .run();
    std::os::unix::fs::symlink(format!("snapshots/{}", day(2)), repo(&env).join("c.tmp")).unwrap();
    fs::rename(repo(&env).join("c.tmp"), repo(&env).join("current")).unwrap();
    env.write_file("work/state/current_snapshot.txt", &format!("{}\n", day(4)));
    replica_run(&env).args(["pin", &day(6)]).success().run();

    let err = replica_run(&env).args(["prune"]).success().run().stderr;
    for (snap, why) in [
        (day(1), "promoted"),
        (day(2), "served_by_current"),
        (day(3), "newest_verified"),
        (day(4), "current_snapshot"),
        (day(5), "keep_list"),
        (day(6), "zfs_hold"),
        (day(9), "keep_last"),
        ("manual-1".to_owned(), "not_made_by_mirrorer"),
    ] {
        assert!(
            err.contains(&format!("prune_keep snapshot={snap} why={why}")),
            "{snap} {why}: {err}"
        );
    }
    for snap in [day(7), day(8)] {
        assert_has(&err, &format!("prune_destroy snapshot={snap} why=no_rule"));
    }
    let mut kept: Vec<String> = [1, 2, 3, 4, 5, 6, 9].into_iter().map(day).collect();
    kept.push("manual-1".to_owned());
    kept.sort();
    let zfs_kept = kept.clone();
    assert_eq!(listed(&env.mount()), zfs_kept);
    assert_eq!(listed(&replica_mount(&env)), zfs_kept);
    assert_pruned(&env, &[day(7), day(8)], &kept);
    // The destroy commands, with `--` before the operand.
    let log = env.log_of("zfs");
    assert!(
        log.contains(&format!("zfs destroy -- {DATASET}@{}", day(7))),
        "{log:?}"
    );
    let replica_log = fs::read_to_string(env.root.join("replica-zfs.log")).unwrap();
    assert_has(
        &replica_log,
        &format!("zfs destroy -- {DATASET}@{}", day(8)),
    );
    // current is untouched.
    assert_eq!(
        fs::read_link(repo(&env).join("current")).unwrap(),
        PathBuf::from(format!("snapshots/{}", day(2)))
    );
    // A second run has nothing to do.
    replica_run(&env)
        .args(["prune"])
        .success()
        .stderr_lacks("prune_destroy")
        .run();
}

#[test]
fn the_guard_refuses_more_than_max_prune_per_run_unless_forced() {
    let names: Vec<String> = (1..=4).map(day).collect();
    let env = setup(
        &names,
        "retention:\n  keep_last: 1\n  max_prune_per_run: 2\n",
    );
    let before = tree(&env.root.join("work"));
    replica_run(&env)
        .args(["prune"])
        .code(1)
        .stderr_has("would destroy 3 snapshots, more than retention.max_prune_per_run (2)")
        .run();
    assert_eq!(listed(&env.mount()), names);
    // Nothing changed but the lock file and the stage's own status part
    // (status.json records the failed prune).
    let mut after = tree(&env.root.join("work"));
    let mut before = before;
    for changed in ["state/pipeline.lock", "metadata/status.json"] {
        after.remove(changed);
        before.remove(changed);
    }
    assert_eq!(after, before);
    replica_run(&env).args(["prune", "--force"]).success().run();
    assert_pruned(&env, &names[..3], &names[3..]);
}

#[test]
fn dry_run_shows_the_plan_and_changes_nothing() {
    let names: Vec<String> = (1..=3).map(day).collect();
    let env = setup(&names, "retention:\n  keep_last: 1\n");
    let before = tree(&env.root);
    replica_run(&env)
        .args(["--dry-run", "prune"])
        .success()
        .stderr_has(format!("prune_destroy snapshot={}", day(1)))
        .stderr_has(format!("zfs destroy -- {DATASET}@{}", day(2)))
        .stderr_has("dry_run_remove")
        .stderr_has("dry_run_plan")
        .run();
    let mut after = tree(&env.root);
    after.remove("fake.log");
    let mut before = before;
    before.remove("fake.log");
    assert_eq!(after, before);
}

#[test]
fn no_retention_section_prunes_nothing() {
    let names: Vec<String> = (1..=3).map(day).collect();
    let env = setup(&names, "");
    replica_run(&env)
        .args(["prune"])
        .success()
        .stderr_has("prune_no_retention")
        .run();
    assert_eq!(listed(&env.mount()), names);
}

#[test]
fn a_run_killed_between_steps_is_finished_by_the_next() {
    let names: Vec<String> = (1..=3).map(day).collect();
    let env = setup(&names, "retention:\n  keep_last: 1\n");
    let pidfile = env.root.join("zfs.pid");
    let mut child = replica_run(&env)
        .env("FAKE_ZFS_DESTROY_SLEEP", "60")
        .env("FAKE_ZFS_PIDFILE", &pidfile)
        .arg("prune")
        .spawn(Stdio::null());
    // The fake writes its pid (`echo $$ > file`) before it sleeps.
    wait_for("zfs destroy to start", 60, || {
        fs::read_to_string(&pidfile).is_ok_and(|pid| pid.ends_with('\n'))
    });
    // The first snapshot's trees are gone, its ZFS snapshot not yet.
    assert!(!repo(&env).join(format!("snapshots/{}", day(1))).exists());
    assert!(
        !env.replica_path(&repo(&env))
            .join(format!("snapshots/{}", day(1)))
            .exists()
    );
    assert!(listed(&env.mount()).contains(&day(1)));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    kill(read_pid(&pidfile), libc::SIGKILL);
    assert!(env.state().join("prune_journal.txt").exists());

    replica_run(&env).args(["prune"]).success().run();
    assert_pruned(&env, &names[..2], &names[2..]);
}

#[test]
fn a_run_that_failed_on_the_replica_is_finished_by_the_next() {
    let names: Vec<String> = (1..=3).map(day).collect();
    let env = setup(&names, "retention:\n  keep_last: 1\n");
    env.write_file("replica-fail", "");
    replica_run(&env).args(["prune"]).code(1).run();
    // The local snapshot is destroyed, the replica's is not.
    assert!(!listed(&env.mount()).contains(&day(1)));
    assert!(listed(&replica_mount(&env)).contains(&day(1)));
    fs::remove_file(env.root.join("replica-fail")).unwrap();
    replica_run(&env)
        .args(["prune"])
        .success()
        .stderr_has(format!(
            "prune_destroy snapshot={} why=unfinished_run",
            day(1)
        ))
        .run();
    assert_pruned(&env, &names[..2], &names[2..]);
}
