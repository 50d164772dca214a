//! `publish-snapshot` with the fake zfs, the real rsync, and remote
//! publication through the ssh stand-in (tests/fakes/ssh), whose "replica"
//! tree is checked file by file.

use std::fs;
use std::path::PathBuf;

use crate::common::{
    DATASET, Entry, Env, assert_has, assert_has_all, assert_symlink, stderr, tree,
};

const S1: &str = "20260101-000000";
const S2: &str = "20260102-000000";

fn link_target(env: &Env, snap: &str, source: &str) -> Entry {
    Entry::Link(env.mount().join(".zfs/snapshot").join(snap).join(source))
}

/// The published tree expected for `snap` with the default mappings.
fn expected_snapshot(env: &Env, snap: &str) -> Vec<(String, Entry)> {
    vec![
        (format!("snapshots/{snap}"), Entry::Dir(0o755)),
        (
            format!("snapshots/{snap}/centos"),
            link_target(env, snap, "dnf/repos/centos"),
        ),
        (
            format!("snapshots/{snap}/debian"),
            link_target(env, snap, "apt/mirror/deb.debian.org/debian"),
        ),
    ]
}

fn repo(env: &Env) -> PathBuf {
    env.workdir().join("repo")
}

fn replica_repo(env: &Env) -> PathBuf {
    env.replica_path(&repo(env))
}

/// Asserts that the local tree is `snapshots/` with exactly the links of
/// S1 and S2 ([`expected_snapshot`]) and the replica holds the same.
#[track_caller]
fn assert_published_s1_and_s2(env: &Env) {
    let mut want: Vec<(String, Entry)> = vec![("snapshots".to_owned(), Entry::Dir(0o755))];
    want.extend(expected_snapshot(env, S1));
    want.extend(expected_snapshot(env, S2));
    let local = tree(&repo(env));
    assert_eq!(local.clone().into_iter().collect::<Vec<_>>(), want);
    assert_eq!(tree(&replica_repo(env)), local);
}

fn assert_no_scratch_left(env: &Env) {
    assert_eq!(
        fs::read_dir(env.root.join("tmp")).unwrap().count(),
        0,
        "scratch trees left in TMPDIR"
    );
}

#[test]
fn publish_current_snapshot_locally_and_on_the_replica() {
    let env = Env::with_default_config();
    env.make_snapshot(S1);
    env.write_file("work/state/current_snapshot.txt", &format!("{S1}\n"));
    let out = env.run().arg("publish-snapshot").success().run();
    let mut want: Vec<(String, Entry)> = vec![("snapshots".to_owned(), Entry::Dir(0o755))];
    want.extend(expected_snapshot(&env, S1));
    let local = tree(&repo(&env));
    assert_eq!(local.clone().into_iter().collect::<Vec<_>>(), want);
    // The replica got the same tree, file by file, although its workdir
    // did not exist before (a fresh replica).
    assert_eq!(tree(&replica_repo(&env)), local);
    // rsync reached the replica through the configured ssh as ssh_user.
    let ssh = env.log_of("ssh");
    assert_eq!(ssh.len(), 1, "{ssh:?}");
    assert!(
        ssh[0].starts_with("ssh -l mirror replica.example rsync --server"),
        "{ssh:?}"
    );
    assert!(
        ssh[0].ends_with(&format!(" {}/", repo(&env).display())),
        "{ssh:?}"
    );
    // The links resolve into the snapshot.
    assert!(
        repo(&env)
            .join(format!("snapshots/{S1}/debian/dists/bookworm/Release"))
            .is_file()
    );
    assert_no_scratch_left(&env);
    let stderr = stderr(&out);
    assert_has_all(
        &stderr,
        &[
            "--archive --delete --links --chmod=D755,F644",
            "publish_snapshots_completed",
        ],
    );
}

#[test]
fn publish_a_named_snapshot_keeps_the_others() {
    let env = Env::with_default_config();
    env.make_snapshot(S1);
    env.make_snapshot(S2);
    env.write_file("work/state/current_snapshot.txt", &format!("{S2}\n"));
    env.run().arg("publish-snapshot").success().run();
    env.run()
        .args(["publish-snapshot", "--snapshot", S1])
        .success()
        .run();
    assert_published_s1_and_s2(&env);
}

#[test]
fn publish_all_mirrors_exactly_the_zfs_snapshots() {
    let env = Env::with_default_config();
    env.make_snapshot(S1);
    env.make_snapshot(S2);
    // Published earlier, gone from ZFS since: --all removes it.
    env.write_file("work/repo/snapshots/20250101-000000/debian/x", "old");
    fs::create_dir_all(replica_repo(&env).join("snapshots/20250101-000000")).unwrap();
    let out = env
        .run()
        // Other datasets' snapshots must be ignored, and a snapshot name
        // that cannot be published is left out.
        .env(
            "FAKE_ZFS_EXTRA_LIST",
            "tank/mirror2@20990101-000000\ntank/mirror/child@20990101-000000\ntank/mirror@bad%name",
        )
        .args(["publish-snapshot", "--all"])
        .success()
        .run();
    assert_published_s1_and_s2(&env);
    assert_eq!(env.log_of("zfs"), vec!["zfs list -t snapshot -o name -H"]);
    // Per side one rsync of the snapshots and one that prunes the others.
    let ssh = env.log_of("ssh");
    assert_eq!(ssh.len(), 2, "{ssh:?}");
    assert!(
        ssh[0].ends_with(&format!(" {}/", repo(&env).display())),
        "{ssh:?}"
    );
    assert!(
        ssh[1].ends_with(&format!(" {}/snapshots/", repo(&env).display())),
        "{ssh:?}"
    );
    assert_no_scratch_left(&env);
    let stderr = stderr(&out);
    assert_has_all(
        &stderr,
        &[
            &format!("snapshots={S1},{S2}"),
            "publish_snapshot_name_invalid snapshot=bad%name",
        ],
    );
}

#[test]
fn missing_sources_warn_and_are_skipped() {
    let env = Env::new();
    let config = env.default_config().replace(
        "    dnf/repos:\n      centos: centos\n",
        "    dnf/repos:\n      centos: centos\n      rocky: rocky\n    no/such/base:\n      thing: thing\n",
    );
    env.write_config(&config);
    env.make_snapshot(S1);
    env.mark_verified("20260103-000000");
    let stderr = env
        .run()
        .env("FAKE_ZFS_EXTRA_LIST", format!("{DATASET}@20260103-000000"))
        .args(["--skip-remote", "publish-snapshot", "--all"])
        .success()
        .stderr_has("publish_snapshot_source_missing snapshot=20260103-000000")
        .stderr_lacks("WARNING  mirrorer::stages::publish_snapshot: publish_source_base_missing")
        .stderr_has("DEBUG    mirrorer::stages::publish_snapshot: publish_source_base_missing")
        .run()
        .stderr;
    // A missing source path: a warning naming it.
    assert_has(
        &stderr,
        &format!(
            "WARNING  mirrorer::stages::publish_snapshot: publish_source_path_missing snapshot={S1} source={} prefix=rocky",
            env.mount()
                .join(".zfs/snapshot")
                .join(S1)
                .join("dnf/repos/rocky")
                .display()
        ),
    );
    // A snapshot listed by zfs whose directory is missing: a warning.
    // A missing source_base: skipped silently (DEBUG only).
    let mut want: Vec<(String, Entry)> = vec![("snapshots".to_owned(), Entry::Dir(0o755))];
    want.extend(expected_snapshot(&env, S1));
    assert_eq!(tree(&repo(&env)).into_iter().collect::<Vec<_>>(), want);
}

#[test]
fn a_selected_snapshot_without_a_directory_warns_publishes_nothing_and_fails() {
    let env = Env::with_default_config();
    env.write_file("work/repo/snapshots/20250101-000000/debian/x", "kept");
    env.mark_verified(S1);
    let before = tree(&repo(&env));
    env.run()
        .args(["publish-snapshot", "--snapshot", S1])
        .code(1)
        .stderr_has(format!("publish_snapshot_source_missing snapshot={S1}"))
        .stderr_has("nothing to publish")
        .run();
    assert_eq!(tree(&repo(&env)), before);
    assert!(env.log_of("ssh").is_empty());
    assert_no_scratch_left(&env);
}

#[test]
fn publish_all_refuses_to_empty_the_published_tree() {
    // zfs lists a snapshot, but its directory is missing (dataset not
    // mounted): syncing the empty scratch tree would delete everything.
    let env = Env::with_default_config();
    env.write_file("work/repo/snapshots/20250101-000000/debian/x", "kept");
    let before = tree(&repo(&env));
    env.run()
        .env("FAKE_ZFS_EXTRA_LIST", format!("{DATASET}@{S1}"))
        .args(["publish-snapshot", "--all"])
        .code(1)
        .stderr_has("refusing to replace the published tree with an empty one")
        .run();
    assert_eq!(tree(&repo(&env)), before);
    assert_no_scratch_left(&env);
}

#[test]
fn empty_repo_paths_fail() {
    let env = Env::new();
    let config = env.default_config();
    let start = config.find("repo:\n").unwrap();
    let end = config.find("tools:\n").unwrap();
    env.write_config(&format!("{}{}", &config[..start], &config[end..]));
    refused_before_publishing(&env, "repo.paths is empty in");
}

/// With the config `env` has, publishing S1 fails (exit 1) with `message`
/// on stderr, before anything is published.
fn refused_before_publishing(env: &Env, message: &str) {
    env.make_snapshot(S1);
    env.run()
        .args(["publish-snapshot", "--snapshot", S1])
        .code(1)
        .stderr_has(message)
        .run();
    assert!(!repo(env).exists());
}

#[test]
fn an_empty_selection_fails() {
    let env = Env::with_default_config();
    // No --snapshot and no current snapshot.
    env.run()
        .arg("publish-snapshot")
        .code(1)
        .stderr_has("no snapshots selected for publication: no --snapshot given and")
        .stderr_has("current_snapshot.txt is missing or empty")
        .run();
    // --all with no ZFS snapshot.
    let out = env.run().args(["publish-snapshot", "--all"]).code(1).run();
    let stderr = crate::common::stderr(&out);
    assert_has(&stderr, "zfs lists no snapshot of dataset tank/mirror");
    assert!(!repo(&env).exists());
}

#[test]
fn bad_snapshot_values_are_usage_errors() {
    let env = Env::with_default_config();
    env.assert_usage_error(&["publish-snapshot", "--snapshot", "../etc"]);
    env.assert_usage_error(&["publish-snapshot", "--snapshot", S1, "--all"]);
}

#[test]
fn skip_remote_from_the_flag_and_from_the_config() {
    for (flag, config_skip) in [(true, false), (false, true)] {
        let env = Env::new();
        let mut config = env.default_config();
        if config_skip {
            config = config.replace("skip_remote: false", "skip_remote: true");
        }
        env.write_config(&config);
        env.make_snapshot(S1);
        env.run()
            // A remote side that is skipped needs no ssh.
            .env("MIRRORER_TOOL_SSH", "/nonexistent/ssh")
            .args(flag.then_some("--skip-remote"))
            .args(["publish-snapshot", "--snapshot", S1])
            .success()
            .run();
        assert!(env.log_of("ssh").is_empty());
        assert!(!replica_repo(&env).exists());
        assert_symlink(&repo(&env).join(format!("snapshots/{S1}/debian")));
    }
}

#[test]
fn remote_publication_requires_ssh_user() {
    let env = Env::new();
    env.write_config(&env.default_config().replace("  ssh_user: mirror\n", ""));
    // Checked before anything is published.
    refused_before_publishing(
        &env,
        "replication.ssh_user is required to publish to replication.replica_host replica.example",
    );
}

#[test]
fn an_unreachable_replica_fails_with_the_command_and_its_output() {
    let env = Env::with_default_config();
    env.make_snapshot(S1);
    let stderr = env
        .run()
        .env("FAKE_SSH_EXIT", "255")
        .args(["publish-snapshot", "--snapshot", S1])
        .code(1)
        .stderr_has("publish the snapshot tree on the replica")
        .stderr_has("mirror@replica.example:")
        .stderr_has("failing as told")
        .run()
        .stderr;
    // rsync reports a dead remote shell as 255 or 12, depending on timing.
    assert!(
        stderr.contains("exited with 255") || stderr.contains("exited with 12"),
        "{stderr}"
    );
    // The local side was published before.
    assert_symlink(&repo(&env).join(format!("snapshots/{S1}/debian")));
    assert_no_scratch_left(&env);
}

#[test]
fn publish_dry_run_changes_nothing_and_prints_the_plan() {
    let env = Env::with_default_config();
    env.make_snapshot(S1);
    env.write_file("work/state/pipeline.lock", "");
    let before = tree(&env.root);
    let out = env
        .run()
        .args(["--dry-run", "publish-snapshot", "--all"])
        .success()
        .run();
    let mut after = tree(&env.root);
    // The read-only zfs list ran and was logged by the fake.
    after.remove("fake.log");
    assert_eq!(after, before);
    assert_eq!(env.log(), vec!["zfs list -t snapshot -o name -H"]);
    let stderr = stderr(&out);
    for needle in [
        "dry_run_scratch_dir path=",
        &format!(
            "/snapshots/{S1}/debian target={}",
            env.mount()
                .join(".zfs/snapshot")
                .join(S1)
                .join("apt/mirror/deb.debian.org/debian")
                .display()
        ),
        "dry_run_command purpose=\"publish the snapshot tree locally\" command=\"rsync --archive --delete --links --chmod=D755,F644 ",
        "dry_run_command purpose=\"publish the snapshot tree on the replica\"",
        "mirror@replica.example:",
        "dry_run_plan stage=publish-snapshot",
    ] {
        assert!(stderr.contains(needle), "missing {needle:?} in {stderr}");
    }
}
