//! Regressions against mirrorer 0.1.0 (issue 10, "Hardening"), each
//! through the real binary; each behaviour was checked on 0.1.0 first:
//!
//! 1. a syncer's `environment` reaches the container only, never the
//!    environment or the command line of the `docker` client;
//! 2. remote publication honours `RSYNC_RSH`, and `replication.ssh_options`
//!    reaches ssh (through rsync) and syncoid;
//! 3. a snapshot holding none of the `repo.paths` sources is never
//!    published;
//! 4. a syncer whose `log_file` cannot be opened still runs;
//! 5. publishing keeps the mode and owner of an existing `repo/snapshots`;
//! 6. no config value becomes an option of docker, rsync, syncoid or ssh.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::common::{
    DATASET, Env, assert_has, assert_starts_with, assert_symlink, fakes_dir, tree,
};

const S1: &str = "20260101-000000";
const S2: &str = "20260102-000000";

/// The default config plus the fake docker and one rsync-type syncer
/// `alpha` with `environment` (YAML lines, indented by 6) and `log_file`.
fn sync_config(env: &Env, environment: &str, log_file: &Path) -> String {
    env.write_file("etc/repos.yaml", "repos: []\n");
    fs::create_dir_all(env.docker_dir()).unwrap();
    format!(
        "{}  docker: {}\nsyncer:\n  - type: rsync\n    name: alpha\n    repos: repos.yaml\n    image: registry.example/alpha:1\n    log_file: {}\n    environment:\n{environment}",
        env.default_config(),
        fakes_dir().join("docker").display(),
        log_file.display(),
    )
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// 1. The environment of a syncer.

/// Values the client must never see, and one that tests literal passing.
const TOKEN: &str = " tok 'single' \"double\" = $HOME ${PATH} \\n end ";
const SYNCER_PATH: &str = "/nonexistent-syncer-bin:/usr/bin:/bin";
const SYNCER_HOME: &str = "/nonexistent-syncer-home";
const SYNCER_DOCKER_HOST: &str = "tcp://127.0.0.1:9";

fn environment_yaml() -> String {
    format!(
        "      API_TOKEN: {}\n      PATH: {SYNCER_PATH}\n      HOME: {SYNCER_HOME}\n      DOCKER_HOST: '{SYNCER_DOCKER_HOST}'\n",
        serde_json::to_string(TOKEN).unwrap()
    )
}

#[test]
fn syncer_environment_reaches_the_container_but_not_the_docker_client() {
    let env = Env::new();
    let log_file = env.root.join("logs/alpha.log");
    env.write_config(&sync_config(&env, &environment_yaml(), &log_file));
    env.sync_run()
        .env("HOME", "/root-of-the-runner")
        .arg("sync")
        .success()
        .run();
    // The container got every value, literally.
    assert_eq!(
        read(&env.docker_dir().join("alpha.env")),
        format!(
            "API_TOKEN={TOKEN}\nPATH={SYNCER_PATH}\nHOME={SYNCER_HOME}\nDOCKER_HOST={SYNCER_DOCKER_HOST}\n"
        )
    );
    // The client ran with mirrorer's own environment.
    let client = read(&env.docker_dir().join("alpha.client-env"));
    let client: Vec<&str> = client.lines().collect();
    assert!(client.contains(&"HOME=/root-of-the-runner"), "{client:?}");
    for leaked in [
        format!("PATH={SYNCER_PATH}"),
        format!("HOME={SYNCER_HOME}"),
        format!("DOCKER_HOST={SYNCER_DOCKER_HOST}"),
    ] {
        assert!(
            !client.contains(&leaked.as_str()),
            "{leaked} reached the client"
        );
    }
    assert!(
        !client.iter().any(|l| l.starts_with("API_TOKEN=")),
        "{client:?}"
    );
    // Through a private env file, gone after the run; no value on argv.
    let envfile = read(&env.docker_dir().join("alpha.envfile"));
    assert_starts_with(&envfile, "600 700 ");
    let envfile_path = envfile.trim().splitn(3, ' ').nth(2).unwrap().to_owned();
    assert!(envfile_path.starts_with(&env.root.join("tmp").display().to_string()));
    assert!(!Path::new(&envfile_path).exists());
    assert_eq!(fs::read_dir(env.root.join("tmp")).unwrap().count(), 0);
    let argv = read(&env.log_path());
    for value in [SYNCER_PATH, SYNCER_HOME, SYNCER_DOCKER_HOST, "single"] {
        assert!(!argv.contains(value), "{value} on a command line:\n{argv}");
    }
}

#[test]
fn an_environment_value_an_env_file_cannot_carry_is_a_config_error() {
    let env = Env::new();
    let log_file = env.root.join("logs/alpha.log");
    env.write_config(&sync_config(
        &env,
        "      MULTI_LINE: \"a\\nb\"\n",
        &log_file,
    ));
    env.sync_run()
        .arg("sync")
        .code(3)
        .stderr_has("syncer[0].environment.MULTI_LINE")
        .stderr_has("line break")
        .run();
    assert!(env.log_of("docker").is_empty());
}

/// podman, when installed (tests/sync_podman.rs requires it; here it only
/// adds a check with a real runtime).
fn podman() -> Option<PathBuf> {
    mirrorer::process::find_program("podman")
}

#[test]
fn with_real_podman_the_environment_changes_the_container_not_the_client() {
    let Some(podman) = podman() else {
        eprintln!("podman is not installed; tests/sync_podman.rs reports that");
        return;
    };
    let conf = crate::common::fixture("podman/containers.conf");
    let image = "localhost/mirrorer-test-busybox:1";
    let built = std::process::Command::new("sh")
        .arg(crate::common::fixture("podman/build-image.sh"))
        .arg(image)
        .env("PODMAN", &podman)
        .env("CONTAINERS_CONF", &conf)
        .status()
        .unwrap();
    assert!(built.success(), "building {image} failed");
    let env = Env::new();
    let name = format!("mirrorer-test-{}-regr-env", std::process::id());
    env.write_file("etc/repos.yaml", "repos: []\n");
    let script = "echo \"conf=[$CONTAINERS_CONF]\"; echo \"tok=[$API_TOKEN]\"";
    env.write_config(&format!(
        "{}  docker: {}\nsyncer:\n  - type: rsync\n    name: {name}\n    repos: repos.yaml\n    image: {image}\n    log_file: {}\n    environment:\n      CONTAINERS_CONF: /nonexistent/containers.conf\n      API_TOKEN: {}\n    command_args: [/bin/sh, -c, {}]\n",
        env.default_config(),
        podman.display(),
        env.root.join("logs/podman.log").display(),
        serde_json::to_string(TOKEN).unwrap(),
        serde_json::to_string(script).unwrap(),
    ));
    env.run()
        .env("CONTAINERS_CONF", &conf)
        .arg("sync")
        .success()
        .run();
    let log = read(&env.root.join("logs/podman.log"));
    assert_has(&log, "conf=[/nonexistent/containers.conf]");
    // The secret is masked in the log file; the job log shows it arrived
    // whole (masked as one piece).
    assert_has(&log, "tok=[***]");
    assert_eq!(fs::read_dir(env.root.join("tmp")).unwrap().count(), 0);
}

// 2. RSYNC_RSH and replication.ssh_options.

/// The one call of the argv-logging ssh ([`argv_logging_ssh`]) in the fake
/// log; fails when there is not exactly one.
fn only_ssh_call(env: &Env) -> String {
    let calls = env.log_of("argv-ssh");
    assert_eq!(calls.len(), 1, "{calls:?}");
    calls[0].clone()
}

/// A remote shell that logs its argv as `<name> [arg][arg]...` and then
/// runs the ssh stand-in.
fn argv_logging_ssh(env: &Env, rel: &str) -> PathBuf {
    let path = env.root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(
        &path,
        format!(
            "#!/bin/bash\n{{ printf 'argv-ssh '; printf '[%s]' \"$@\"; printf '\\n'; }} >> \"$FAKE_LOG\"\nexec {} \"$@\"\n",
            fakes_dir().join("ssh").display()
        ),
    )
    .unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn without_tools_ssh(env: &Env) -> String {
    let line = format!("  ssh: {}/ssh\n", fakes_dir().display());
    let config = env.default_config();
    assert!(config.contains(&line));
    config.replace(&line, "")
}

fn replica_repo(env: &Env) -> PathBuf {
    env.replica_path(&env.workdir().join("repo"))
}

#[test]
fn remote_publication_honours_rsync_rsh() {
    let env = Env::new();
    env.write_config(&without_tools_ssh(&env));
    env.make_snapshot(S1);
    let shell = argv_logging_ssh(&env, "bin dir/my ssh");
    env.run()
        .env(
            "RSYNC_RSH",
            format!("'{}' -o 'SetEnv=A=x y'", shell.display()),
        )
        .args(["publish-snapshot", "--snapshot", S1])
        .success()
        .run();
    assert_starts_with(
        &only_ssh_call(&env),
        "argv-ssh [-o][SetEnv=A=x y][-l][mirror][replica.example][rsync]",
    );
    assert_symlink(&replica_repo(&env).join(format!("snapshots/{S1}/debian")));
}

#[test]
fn ssh_options_reach_ssh_through_rsync_quoted_and_syncoid_as_flags() {
    let env = Env::new();
    let shell = argv_logging_ssh(&env, "bin/ssh");
    let key = env.root.join("my key");
    let config = env
        .default_config()
        .replace(
            &format!("  ssh: {}/ssh\n", fakes_dir().display()),
            &format!("  ssh: {}\n", shell.display()),
        )
        .replace(
            "  skip_remote: false\n",
            &format!(
                "  skip_remote: false\n  ssh_options: [-i, '{}', -o, \"ProxyJump=it's\", -o, StrictHostKeyChecking=yes]\n",
                key.display()
            ),
        );
    env.write_config(&config);
    env.make_snapshot(S1);
    env.run()
        // Set, but overridden by the configured ssh options.
        .env("RSYNC_RSH", "/nonexistent/rsh")
        .args(["publish-snapshot", "--snapshot", S1])
        .success()
        .run();
    assert_starts_with(
        &only_ssh_call(&env),
        &format!(
            "argv-ssh [-i][{}][-o][ProxyJump=it's][-o][StrictHostKeyChecking=yes][-l][mirror][replica.example][rsync]",
            key.display()
        ),
    );
    // syncoid cannot pass a key path with a blank (it uses a shell).
    env.run()
        .arg("replicate")
        .code(1)
        .stderr_has("replication.ssh_options")
        .stderr_has("through a shell")
        .run();
    assert!(env.log_of("syncoid").is_empty());
    // Options it can take become its flags; the key replaces ssh_key.
    env.write_config(&config.replace(
        &format!("[-i, '{}', -o, \"ProxyJump=it's\", ", key.display()),
        "[-i, /etc/mirror/key, -p, '2222', ",
    ));
    env.run().arg("replicate").success().run();
    assert_eq!(
        env.log_of("syncoid"),
        vec![format!(
            "syncoid --sshkey /etc/mirror/key --sshport 2222 --sshoption StrictHostKeyChecking=yes --no-sync-snap --recursive --force-delete -- {DATASET} mirror@replica.example:{DATASET}"
        )]
    );
}

#[test]
fn ssh_options_must_be_a_list_of_plain_strings() {
    let env = Env::new();
    for (value, needle) in [
        ("-i /k", "must be a list"),
        ("[-i, '']", "replication.ssh_options[1]"),
        ("[-o, \"A=b\\nc\"]", "line break"),
    ] {
        env.write_config(&env.default_config().replace(
            "  skip_remote: false\n",
            &format!("  skip_remote: false\n  ssh_options: {value}\n"),
        ));
        let text = env.run().arg("replicate").code(3).run().stderr;
        assert!(text.contains(needle), "{value}: {text}");
    }
}

// 3. Snapshots without sources.

/// A snapshot directory that holds none of the mapped sources.
fn make_empty_snapshot(env: &Env, name: &str) {
    env.write_file(&format!("mirror/.zfs/snapshot/{name}/other/file"), "x");
    // Past the verification gate, so that the emptiness check is what refuses it.
    env.mark_verified(name);
}

#[test]
fn a_snapshot_without_sources_is_never_published() {
    let env = Env::with_default_config();
    make_empty_snapshot(&env, S1);
    let repo = env.workdir().join("repo");
    // The current snapshot and --snapshot: nothing left, exit 1.
    env.write_file("work/state/current_snapshot.txt", &format!("{S1}\n"));
    for args in [
        &["publish-snapshot"][..],
        &["publish-snapshot", "--snapshot", S1],
    ] {
        env.run()
            .args(args)
            .code(1)
            .stderr_has(format!(
                "WARNING  mirrorer::stages::publish_snapshot: publish_snapshot_empty snapshot={S1}"
            ))
            .stderr_has("nothing to publish")
            .run();
        assert!(!repo.join("snapshots").join(S1).exists());
        assert!(!replica_repo(&env).join("snapshots").join(S1).exists());
    }
    // --all: the empty one is skipped, the other published.
    env.make_snapshot(S2);
    env.run()
        .args(["publish-snapshot", "--all"])
        .success()
        .run();
    let names: Vec<String> = tree(&repo.join("snapshots"))
        .into_keys()
        .filter(|k| !k.contains('/'))
        .collect();
    assert_eq!(names, vec![S2.to_owned()]);
    assert_eq!(tree(&replica_repo(&env)), tree(&repo));
    // --all with nothing but empty snapshots fails and keeps the tree.
    fs::remove_dir_all(env.mount().join(".zfs/snapshot").join(S2)).unwrap();
    let before = tree(&repo);
    env.run()
        .env("FAKE_ZFS_EXTRA_LIST", format!("{DATASET}@{S2}"))
        .args(["publish-snapshot", "--all"])
        .code(1)
        .run();
    assert_eq!(tree(&repo), before);
}

// 4. A log file that cannot be opened.

#[test]
fn a_syncer_whose_log_file_cannot_be_opened_still_runs() {
    let env = Env::new();
    env.write_file("logs", "a file, not a directory");
    let log_file = env.root.join("logs/sub/alpha.log");
    env.write_config(&sync_config(&env, "      MIRROR: x\n", &log_file));
    let text = env
        .sync_run()
        .arg("sync")
        .success()
        .stderr_has("[alpha] alpha says hello (attempt 1)")
        .stderr_has("sync_summary container=alpha status=ok")
        .run()
        .stderr;
    let warnings: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("sync_log_file_unavailable"))
        .collect();
    assert_eq!(warnings.len(), 1, "{text}");
    assert!(
        warnings[0].contains(&format!("path={}", log_file.display()))
            && warnings[0].contains("error=")
            && warnings[0].contains("Not a directory"),
        "{text}"
    );
    assert_eq!(read(&env.docker_dir().join("alpha.attempts")).trim(), "1");
}

// 5. Mode and owner of repo/snapshots.

fn mode_and_owner(path: &Path) -> (u32, u32) {
    let meta = fs::metadata(path).unwrap();
    (meta.permissions().mode() & 0o7777, meta.uid())
}

#[test]
fn publishing_keeps_mode_and_owner_of_repo_snapshots_on_both_sides() {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let owner = if root {
        65534
    } else {
        unsafe { libc::geteuid() }
    };
    let env = Env::with_default_config();
    env.make_snapshot(S1);
    env.make_snapshot(S2);
    let local = env.workdir().join("repo");
    let sides = [local.clone(), replica_repo(&env)];
    for repo in &sides {
        fs::create_dir_all(repo.join("snapshots")).unwrap();
        fs::set_permissions(repo, fs::Permissions::from_mode(0o711)).unwrap();
        fs::set_permissions(repo.join("snapshots"), fs::Permissions::from_mode(0o750)).unwrap();
        if root {
            std::os::unix::fs::chown(repo.join("snapshots"), Some(owner), Some(owner)).unwrap();
        }
    }
    for args in [
        &["publish-snapshot", "--snapshot", S1][..],
        &["publish-snapshot", "--all"][..],
    ] {
        env.run().args(args).success().run();
        for repo in &sides {
            assert_eq!(mode_and_owner(repo).0, 0o711, "{args:?} {}", repo.display());
            assert_eq!(
                mode_and_owner(&repo.join("snapshots")),
                (0o750, owner),
                "{args:?} {}",
                repo.display()
            );
            assert!(repo.join("snapshots").join(S2).join("debian").is_symlink() || args.len() == 3);
            // The published snapshot directories themselves are 0755.
            assert_eq!(mode_and_owner(&repo.join("snapshots").join(S1)).0, 0o755);
        }
    }
}

// 6. No config value becomes an option.

#[test]
fn a_replica_host_or_user_that_looks_like_an_option_is_a_config_error() {
    let env = Env::new();
    for (from, to, key) in [
        (
            "replica_host: replica.example",
            "replica_host: -oProxyCommand=touch /tmp/pwned",
            "replication.replica_host",
        ),
        (
            "ssh_user: mirror",
            "ssh_user: '-lroot'",
            "replication.ssh_user",
        ),
        (
            "ssh_user: mirror",
            "ssh_user: 'a;b'",
            "replication.ssh_user",
        ),
    ] {
        env.write_config(&env.default_config().replace(from, to));
        let text = env.run().arg("replicate").code(3).run().stderr;
        assert!(
            text.contains(key) && text.contains("not start with '-'"),
            "{text}"
        );
        assert!(env.log().is_empty());
    }
}

#[test]
fn an_image_that_looks_like_an_option_is_a_config_error_and_names_follow_a_double_dash() {
    let env = Env::new();
    let log_file = env.root.join("logs/alpha.log");
    let config = sync_config(&env, "      MIRROR: x\n", &log_file);
    env.write_config(&config.replace("image: registry.example/alpha:1", "image: --privileged"));
    env.sync_run()
        .arg("sync")
        .code(3)
        .stderr_has("syncer[0].image")
        .stderr_has("--privileged")
        .stderr_has("starts with `-`")
        .run();
    assert!(env.log_of("docker").is_empty());
    env.write_config(&config);
    env.sync_run().arg("sync").success().run();
    let calls = env.log_of("docker");
    assert!(
        calls.iter().any(|c| c == "docker rm -f -- alpha"),
        "{calls:?}"
    );
    assert!(
        calls.iter().any(|c| c == "docker wait -- alpha"),
        "{calls:?}"
    );
    assert!(
        calls
            .iter()
            .any(|c| c.starts_with("docker run -d --name=alpha --user=")),
        "{calls:?}"
    );
}
