//! `snapshot`, `publish-snapshot --all` and `replicate` against real ZFS
//! (zfs-fuse, file-backed pools: tests/zfs_pool/mod.rs) and the real
//! syncoid (Debian's sanoid package), with no fake zfs or syncoid on the
//! binary's PATH. ci/test.sh installs both and starts the zfs-fuse daemon;
//! without it these tests fail and say why (they never skip).
//!
//! The replica is a second pool of the same zfs-fuse, reached through the
//! ssh stand-in (tests/fakes/ssh), which runs the remote command here with
//! tests/fakes/replica/ first on its PATH: a `sudo` that only runs its
//! command (the ssh user is not root, so syncoid uses sudo on the target)
//! and an adapter that gives zfs-fuse's `zfs get` the OpenZFS `-t snapshot`
//! form syncoid needs (tests/fakes/README.md).
//!
//! What zfs-fuse lacks (`.zfs/snapshot/<name>`, `zfs diff`) stays with the
//! fakes: here publish-snapshot reads a plain directory standing in for the
//! snapshot directory; what is proved is the snapshot listing.

use std::fs;
use std::path::Path;

use crate::common::{Env, Run, assert_has, assert_has_all, fakes_dir, stderr};
use crate::zfs_pool::{Pool, program, run, snapshot, snapshots_of};

/// The config: the real zfs and syncoid, `dataset` as the mirror dataset
/// mounted at `mirror_dir`, the replica `replica.example` as `mirror` with
/// `replication.replica_dataset: replica_dataset`.
fn real_config(env: &Env, dataset: &str, mirror_dir: &Path, replica_dataset: &str) -> String {
    format!(
        "log:\n  log_level: DEBUG\n\
         mirror:\n  workdir: {work}\n  syncer_dir: {root}/etc\n  zfs_mirror_dataset: {dataset}\n  zfs_mirror_dir: {mirror}\n\
         replication:\n  replica_host: replica.example\n  ssh_user: mirror\n  ssh_key: {root}/id_rsa\n  replica_dataset: {replica_dataset}\n\
         repo:\n  paths:\n    apt/mirror:\n      deb.debian.org/debian: debian\n\
         tools:\n  zfs: {zfs}\n  syncoid: {syncoid}\n  ssh: {fakes}/ssh\n",
        work = env.workdir().display(),
        root = env.root.display(),
        mirror = mirror_dir.display(),
        zfs = program("zfs").display(),
        syncoid = program("syncoid").display(),
        fakes = fakes_dir().display(),
    )
}

/// [`Env::run`] with `<root>/bin` (only `ssh`, the stand-in) first on PATH
/// for syncoid, and the replica's programs for the ssh stand-in.
fn real_run(env: &Env) -> Run {
    env.write_executable(
        "ssh",
        &format!("#!/bin/sh\nexec {}/ssh \"$@\"\n", fakes_dir().display()),
    );
    let path = std::env::var("PATH").unwrap_or_default();
    env.run()
        .env("PATH", format!("{}/bin:{path}", env.root.display()))
        .env("FAKE_SSH_REMOTE_PATH", fakes_dir().join("replica"))
}

/// `mirrorer snapshot`, then the name it wrote to the state.
fn take_snapshot(env: &Env) -> String {
    real_run(env).arg("snapshot").success().run();
    let name = fs::read_to_string(env.state().join("current_snapshot.txt")).expect("state");
    name.trim_end().to_owned()
}

/// Waits for the next wall-clock second: snapshot names have seconds.
fn next_second() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock");
    std::thread::sleep(std::time::Duration::from_nanos(
        u64::from(1_000_000_000 - now.subsec_nanos()) + 20_000_000,
    ));
}

fn guid(dataset: &str) -> String {
    run("zfs", &["get", "-Hp", "-o", "value", "guid", dataset])
        .trim()
        .to_owned()
}

#[test]
fn snapshot_creates_a_real_zfs_snapshot_its_state_and_dotenv() {
    let env = Env::new();
    let pool = Pool::new();
    let dataset = pool.dataset("mirror");
    fs::write(pool.mountpoint("mirror").join("Release"), "Suite: stable\n").expect("write");
    env.write_config(&real_config(
        &env,
        &dataset,
        &pool.mountpoint("mirror"),
        &dataset,
    ));
    let dotenv = env.root.join("snapshot.env");
    let out = real_run(&env)
        .arg("snapshot")
        .arg("--dotenv")
        .arg(&dotenv)
        .success()
        .run();
    let name = fs::read_to_string(env.state().join("current_snapshot.txt")).expect("state");
    let name = name.strip_suffix('\n').expect("one line");
    assert_eq!(name.len(), "YYYYmmdd-HHMMSS".len(), "{name}");
    assert_eq!(snapshots_of(&dataset), vec![name.to_owned()]);
    assert_eq!(
        fs::read_to_string(&dotenv).expect("dotenv"),
        format!("MIRRORER_SNAPSHOT={name}\n")
    );
    assert!(
        stderr(&out).contains(&format!("zfs_snapshot_created snapshot={dataset}@{name}")),
        "{}",
        stderr(&out)
    );
}

#[test]
fn publish_all_lists_only_the_datasets_real_snapshots() {
    let env = Env::new();
    let pool = Pool::new();
    let dataset = pool.dataset("mirror");
    let child = pool.dataset("mirror/child");
    let sibling = pool.dataset("mirrorx");
    let ours = ["20240101-000000", "autosnap_2024-01-02_00:00:00_daily"];
    for name in ours {
        snapshot(&dataset, name);
    }
    // Made by other tools: a name we refuse to publish, snapshots of a
    // child dataset and of a dataset whose name starts like ours.
    snapshot(&dataset, "with space");
    snapshot(&child, "20240103-000000");
    snapshot(&sibling, "20240104-000000");
    // zfs-fuse has no .zfs/snapshot directory: a plain directory stands in
    // for it, with a tree for every snapshot name of every dataset, so a
    // wrongly listed snapshot would be published.
    for name in [
        ours[0],
        ours[1],
        "with space",
        "20240103-000000",
        "20240104-000000",
    ] {
        env.write_file(
            &format!("mirror/.zfs/snapshot/{name}/apt/mirror/deb.debian.org/debian/Release"),
            "Suite: stable\n",
        );
        // Past publish-snapshot's verification gate: only the listing decides.
        env.mark_verified(name);
    }
    env.write_config(&real_config(&env, &dataset, &env.mount(), &dataset));
    let out = real_run(&env)
        .args(["--skip-remote", "publish-snapshot", "--all"])
        .success()
        .run();
    let mut published = crate::common::list_dir(&env.workdir().join("repo/snapshots"));
    published.sort();
    let mut want: Vec<String> = ours.iter().map(|s| (*s).to_owned()).collect();
    want.sort();
    assert_eq!(published, want);
    let log = stderr(&out);
    assert_has_all(
        &log,
        &[
            &format!("zfs_snapshots_listed dataset={dataset} count=3"),
            "publish_snapshot_name_invalid snapshot=\"with space\"",
        ],
    );
}

#[test]
fn replicate_sends_the_full_stream_then_only_the_increment() {
    let env = Env::new();
    let source = Pool::new();
    let replica = Pool::new();
    let dataset = source.dataset("mirror");
    let replica_dataset = format!("{}/mirror", replica.name);
    let mount = source.mountpoint("mirror");
    env.write_config(&real_config(&env, &dataset, &mount, &replica_dataset));

    fs::write(mount.join("one"), "1\n").expect("write");
    let first = take_snapshot(&env);
    real_run(&env)
        .arg("replicate")
        .success()
        .stderr_has(format!(
            "zfs_replication_completed dataset={dataset} host=replica.example replica_dataset={replica_dataset}"
        ))
        .run();
    assert_eq!(snapshots_of(&replica_dataset), vec![first.clone()]);
    assert_eq!(
        fs::read_to_string(replica.mountpoint("mirror").join("one")).expect("replica file"),
        "1\n"
    );
    let replica_guid = guid(&replica_dataset);

    // Two more snapshots, one of them made by another tool.
    fs::write(mount.join("two"), "2\n").expect("write");
    next_second();
    let second = take_snapshot(&env);
    snapshot(&dataset, "autosnap_manual");
    fs::write(env.log_path(), "").expect("clear log");
    let log = real_run(&env)
        .arg("replicate")
        .success()
        .stderr_has("zfs_replication_completed")
        .stderr_has("ZFS resume feature not available")
        .run()
        .stderr;
    // syncoid's own account, logged line by line: an incremental send
    // from the replica's newest snapshot.
    assert_has(
        &log,
        &format!(
            "syncoid_output stream=stdout line=\"Sending incremental {dataset}@{first} ... autosnap_manual"
        ),
    );
    // syncoid's warnings on zfs-fuse are logged and do not fail the stage.
    // The replica dataset was not destroyed and received again in full.
    assert_eq!(guid(&replica_dataset), replica_guid);
    assert!(
        !env.log().iter().any(|l| l.contains("zfs destroy")),
        "{:#?}",
        env.log()
    );
    assert_eq!(snapshots_of(&replica_dataset), snapshots_of(&dataset));
    assert_eq!(
        snapshots_of(&dataset),
        vec![first, second, "autosnap_manual".to_owned()]
    );
    assert_eq!(
        fs::read_to_string(replica.mountpoint("mirror").join("two")).expect("replica file"),
        "2\n"
    );
    // syncoid ran `sudo zfs receive` on the "replica", through ssh.
    assert!(
        env.log_of("ssh-remote")
            .iter()
            .any(|l| l.contains("sudo zfs receive") && l.contains(&replica_dataset)),
        "{:#?}",
        env.log()
    );
}

#[test]
fn replicate_fails_when_syncoid_fails() {
    let env = Env::new();
    let source = Pool::new();
    let dataset = source.dataset("mirror");
    let mount = source.mountpoint("mirror");
    // A replica pool that does not exist.
    let missing = format!("{}-missing/mirror", source.name);
    env.write_config(&real_config(&env, &dataset, &mount, &missing));
    take_snapshot(&env);
    real_run(&env)
        .arg("replicate")
        .code(1)
        .stderr_lacks("zfs_replication_completed")
        .stderr_has(&missing)
        .run();
}

// `replication.replica_dataset` on its own, with the fake syncoid (no ZFS
// needed).

fn with_replica_dataset(env: &Env, value: &str) -> String {
    env.default_config().replacen(
        "  skip_remote: false\n",
        &format!("  skip_remote: false\n  replica_dataset: {value}\n"),
        1,
    )
}

#[test]
fn replica_dataset_is_the_syncoid_target_and_defaults_to_the_dataset() {
    let env = Env::with_default_config();
    let out = env.run().args(["config", "check"]).success().run();
    let text = String::from_utf8_lossy(&out.output.stdout).into_owned();
    assert_has(
        &text,
        &format!("  replica_dataset: {}\n", crate::common::DATASET),
    );
    env.write_config(&with_replica_dataset(&env, "backup/dist-mirror"));
    let out = env.run().args(["config", "check"]).success().run();
    let text = String::from_utf8_lossy(&out.output.stdout).into_owned();
    assert_has(&text, "  replica_dataset: backup/dist-mirror\n");
    env.run().arg("replicate").success().run();
    let log = env.log_of("syncoid");
    assert_eq!(log.len(), 1, "{log:#?}");
    assert!(
        log[0].ends_with(&format!(
            " {} mirror@replica.example:backup/dist-mirror",
            crate::common::DATASET
        )),
        "{log:#?}"
    );
}

#[test]
fn replica_dataset_must_be_a_dataset_name() {
    let env = Env::new();
    for bad in [
        "-oProxyCommand=x",
        "backup/m@snap",
        "/backup/m",
        "backup//m",
        "backup/m/",
        "backup/../m",
        "'backup/m;true'",
        "'backup/m x'",
        "1backup/m",
    ] {
        env.write_config(&with_replica_dataset(&env, bad));
        env.run()
            .arg("replicate")
            .code(3)
            .stderr_has("replication.replica_dataset")
            .run();
    }
    assert!(env.log_of("syncoid").is_empty(), "{:#?}", env.log());
}
