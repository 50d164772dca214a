//! The nightly sequence on a plain directory standing in for the dataset:
//! `snapshot`, `replicate`, `publish-snapshot` (current, then `--all`),
//! `publish-inventory`, `cleanup-state`, with the fake zfs and syncoid, the
//! real rsync and the ssh stand-in. The result: the published symlink tree
//! (local and replica) and an inventory.json identical to mirrorer 0.1.0's
//! (tests/fixtures/inventory/sequence.golden.json).

use std::fs;

use crate::common::{DATASET, Entry, Env, fixture, temp_files, tree};

#[test]
fn the_nightly_sequence_publishes_the_tree_and_the_reference_inventory() {
    let env = Env::with_default_config();
    let dotenv = env.root.join("mirrorer-snapshot.env");

    env.run()
        .args(["snapshot", "--dotenv"])
        .arg(&dotenv)
        .success()
        .run();
    let name = fs::read_to_string(env.state().join("current_snapshot.txt"))
        .unwrap()
        .trim_end()
        .to_owned();
    assert_eq!(
        fs::read_to_string(&dotenv).unwrap(),
        format!("MIRRORER_SNAPSHOT={name}\n")
    );
    // What `verify --snapshot` writes for a clean snapshot (publish-snapshot's gate).
    env.mark_verified(&name);

    env.run().arg("replicate").success().run();
    env.run()
        .args(["publish-snapshot", "--snapshot", &name])
        .success()
        .run();
    env.run().arg("publish-snapshot").success().run();
    env.run()
        .args(["publish-snapshot", "--all"])
        .success()
        .run();
    env.run().arg("publish-inventory").success().run();
    env.run().arg("cleanup-state").success().run();

    // The external commands, in order.
    let log: Vec<String> = env
        .log()
        .into_iter()
        .filter(|l| !l.starts_with("ssh-remote "))
        .map(|l| {
            // Keep the argv of ssh up to the rsync server's flags.
            if l.starts_with("ssh ") {
                l.split(" --server").next().unwrap_or(&l).to_owned()
            } else {
                l
            }
        })
        .collect();
    assert_eq!(
        log,
        vec![
            format!("zfs snapshot -- {DATASET}@{name}"),
            format!(
                "syncoid --sshkey {}/id_rsa --no-sync-snap --recursive --force-delete -- {DATASET} mirror@replica.example:{DATASET}",
                env.root.display()
            ),
            "ssh -l mirror replica.example rsync".to_owned(),
            "ssh -l mirror replica.example rsync".to_owned(),
            "zfs list -t snapshot -o name -H".to_owned(),
            "ssh -l mirror replica.example rsync".to_owned(),
            // --all: the snapshots ZFS no longer has are pruned.
            "ssh -l mirror replica.example rsync".to_owned(),
        ]
    );

    // The published tree: one snapshot, two symlinks into it.
    let repo = env.workdir().join("repo");
    let snap_root = env.mount().join(".zfs/snapshot").join(&name);
    let want = vec![
        ("snapshots".to_owned(), Entry::Dir(0o755)),
        (format!("snapshots/{name}"), Entry::Dir(0o755)),
        (
            format!("snapshots/{name}/centos"),
            Entry::Link(snap_root.join("dnf/repos/centos")),
        ),
        (
            format!("snapshots/{name}/debian"),
            Entry::Link(snap_root.join("apt/mirror/deb.debian.org/debian")),
        ),
    ];
    let local = tree(&repo);
    assert_eq!(local.clone().into_iter().collect::<Vec<_>>(), want);
    assert_eq!(tree(&env.replica_path(&repo)), local);
    assert!(
        repo.join(format!(
            "snapshots/{name}/centos/9/BaseOS/x86_64/os/repodata/repomd.xml"
        ))
        .is_file()
    );

    // inventory.json, byte for byte as mirrorer 0.1.0 writes it for this tree.
    let golden = fs::read_to_string(fixture("inventory/sequence.golden.json"))
        .unwrap()
        .replace("20260101-000000", &name);
    assert_eq!(
        fs::read_to_string(env.workdir().join("metadata/inventory.json")).unwrap(),
        golden
    );

    // cleanup-state ran last.
    assert!(!env.state().join("current_snapshot.txt").exists());
    assert!(env.state().join("av_state").is_dir());
    assert_eq!(temp_files(&env.workdir()), Vec::<String>::new());
    assert_eq!(fs::read_dir(env.root.join("tmp")).unwrap().count(), 0);
}
