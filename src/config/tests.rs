//! Unit tests of every rule of docs/config.md.

use std::path::{Path, PathBuf};

use super::*;

const EXAMPLE: &str = include_str!("../../examples/dist-mirror.yaml");

fn load(text: &str) -> Config {
    match from_str(text, Path::new("test.yaml")) {
        Ok(c) => c,
        Err(e) => panic!("expected a valid config, got {e}: {e:?}"),
    }
}

fn problems(text: &str) -> Vec<Finding> {
    match from_str(text, Path::new("test.yaml")) {
        Err(ConfigError::Invalid { problems, .. }) => problems,
        other => panic!("expected an invalid config, got {other:?}"),
    }
}

fn one_problem(text: &str) -> Finding {
    let mut p = problems(text);
    assert_eq!(p.len(), 1, "{p:#?}");
    p.remove(0)
}

/// Each config text has exactly one problem, at the key given.
#[track_caller]
fn assert_problem_keys(cases: &[(&str, &str)]) {
    crate::testing::assert_cases(|text| one_problem(text).key, cases);
}

#[test]
fn example_loads_with_its_values() {
    let c = load(EXAMPLE);
    assert_eq!(c.log_level, Level::Info);
    assert_eq!(c.mirror.workdir, PathBuf::from("/opt/dist-mirror"));
    assert_eq!(c.mirror.zfs_mirror_dataset, "distpool/mirror");
    assert_eq!(c.mirror.kesl_max_workers, 4);
    assert_eq!(
        c.replication.replica_host.as_deref(),
        Some("shard-replica01.example.org")
    );
    assert_eq!(c.replication.ssh_user.as_deref(), Some("tech_dist-mirror"));
    assert_eq!(
        c.replication.ssh_key,
        PathBuf::from("/opt/dist-mirror/.ssh/id_rsa")
    );
    assert!(!c.replication.skip_remote);
    let names: Vec<_> = c
        .syncers
        .iter()
        .map(|s| (s.name.as_str(), s.prefix.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("debian", "debian"),
            ("epel", "epel"),
            ("rpm", "rpm"),
            ("sles-x86_64", "sles-x86_64")
        ]
    );
    assert_eq!(
        c.repo_paths,
        vec![
            RepoPath {
                source_base: "apt/mirror".into(),
                source_name: "debian.mirror.example".into(),
                public_prefix: "debian".into()
            },
            RepoPath {
                source_base: "dnf/repos".into(),
                source_name: "centos".into(),
                public_prefix: "centos".into()
            },
        ]
    );
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn empty_file_gives_every_default() {
    let c = load("");
    assert_eq!(c.log_level, Level::Info);
    assert_eq!(
        c.mirror,
        Mirror {
            workdir: "/opt/dist-mirror".into(),
            syncer_dir: "/etc/dist-mirror".into(),
            zfs_mirror_dataset: "distpool/mirror".into(),
            zfs_mirror_dir: "/distpool/mirror".into(),
            kesl_max_workers: 4,
        }
    );
    assert_eq!(
        c.antivirus,
        Antivirus {
            fail_on_threats: false,
            batch_size: 100,
            engine: AvEngine::Kesl,
            clamav_command: ClamavCommand::Clamdscan,
            clamav_args: Vec::new(),
        }
    );
    assert_eq!(c.replication.replica_host, None);
    assert!(c.syncers.is_empty() && c.repo_paths.is_empty());
    assert_eq!(c.pipeline.command, vec!["mirrorer".to_owned()]);
}

#[test]
fn none_like_strings_are_unset_and_mean_the_default() {
    let c = load(
        "replication:\n  replica_host: ' None '\n  ssh_user: NULL\n  ssh_key: ''\n  skip_remote: none\n\
         mirror:\n  workdir: ~\n  kesl_max_workers: null\nantivirus:\n  batch_size: ''\n",
    );
    assert_eq!(c.replication.replica_host, None);
    assert_eq!(c.replication.ssh_user, None);
    assert_eq!(
        c.replication.ssh_key,
        PathBuf::from("/opt/dist-mirror/.ssh/id_rsa")
    );
    assert!(!c.replication.skip_remote);
    assert_eq!(c.mirror.workdir, PathBuf::from("/opt/dist-mirror"));
    assert_eq!(c.mirror.kesl_max_workers, 4);
    assert_eq!(c.antivirus.batch_size, 100);
}

#[test]
fn boolean_strings_become_booleans() {
    for (text, want) in [
        ("true", true),
        ("'TRUE'", true),
        ("yes", true),
        ("On", true),
        ("'1'", true),
        ("1", true),
        ("false", false),
        ("No", false),
        ("OFF", false),
        ("0", false),
    ] {
        let c = load(&format!(
            "replication:\n  skip_remote: {text}\nantivirus:\n  fail_on_threats: {text}\n"
        ));
        assert_eq!(c.replication.skip_remote, want, "{text}");
        assert_eq!(c.antivirus.fail_on_threats, want, "{text}");
    }
    let p = one_problem("replication:\n  skip_remote: maybe\n");
    assert_eq!(p.key, "replication.skip_remote");
    assert_eq!(
        p.position,
        Position {
            line: 2,
            column: 16
        }
    );
}

#[test]
fn antivirus_engine_and_clamav_settings() {
    let c = load(
        "antivirus:\n  engine: ' ClamAV '\n  clamav_command: CLAMSCAN\n  clamav_args: [-d, /db, 1]\n",
    );
    assert_eq!(c.antivirus.engine, AvEngine::Clamav);
    assert_eq!(c.antivirus.clamav_command, ClamavCommand::Clamscan);
    assert_eq!(c.antivirus.clamav_args, vec!["-d", "/db", "1"]);
    let c = load("antivirus:\n  engine: none\n  clamav_command: ''\n");
    assert_eq!(c.antivirus.engine, AvEngine::Kesl);
    assert_eq!(c.antivirus.clamav_command, ClamavCommand::Clamdscan);
    let p = problems("antivirus:\n  engine: sophos\n  clamav_command: clamd\n");
    assert_eq!(p.len(), 2, "{p:#?}");
    assert_eq!(p[0].key, "antivirus.engine");
    assert_eq!((p[0].position.line, p[0].position.column), (2, 11));
    assert!(p[0].message.contains("kesl, clamav"), "{}", p[0].message);
    assert_eq!(p[1].key, "antivirus.clamav_command");
    let p = one_problem("antivirus:\n  clamav_args: -d\n");
    assert_eq!(p.key, "antivirus.clamav_args");
    assert!(p.message.contains("must be a list"), "{}", p.message);
}

#[test]
fn log_level_is_trimmed_and_upper_cased() {
    assert_eq!(
        load("log:\n  log_level: ' debug '\n").log_level,
        Level::Debug
    );
    assert_eq!(
        load("log:\n  log_level: critical\n").log_level,
        Level::Critical
    );
    let p = one_problem("log:\n  log_level: NOPE\n");
    assert_eq!(p.key, "log.log_level");
    assert_eq!(p.position.line, 2);
    assert!(p.message.contains("NOPE"), "{}", p.message);
}

#[test]
fn mirror_rules() {
    let p = one_problem("mirror:\n  zfs_mirror_dataset: distpool/mirror@snap\n");
    assert_eq!(p.key, "mirror.zfs_mirror_dataset");
    for bad in ["0", "65", "four", "-1"] {
        let p = one_problem(&format!("mirror:\n  kesl_max_workers: {bad}\n"));
        assert_eq!(p.key, "mirror.kesl_max_workers", "{bad}");
    }
    assert_eq!(
        load("mirror:\n  kesl_max_workers: '64'\n")
            .mirror
            .kesl_max_workers,
        64
    );
    assert_eq!(
        one_problem("antivirus:\n  batch_size: 0\n").key,
        "antivirus.batch_size"
    );
    assert_eq!(
        load("antivirus:\n  batch_size: 7\n").antivirus.batch_size,
        7
    );
}

#[test]
fn repo_paths_are_trimmed_and_checked() {
    let c = load(
        "repo:\n  paths:\n    ' /apt/mirror/ ':\n      '/debian.mirror.example/': ' /debian/ '\n    empty:\n",
    );
    assert_eq!(
        c.repo_paths,
        vec![RepoPath {
            source_base: "apt/mirror".into(),
            source_name: "debian.mirror.example".into(),
            public_prefix: "debian".into()
        }]
    );
    let p = one_problem("repo:\n  paths:\n    apt/../x:\n      a: b\n");
    assert!(p.message.contains(".."), "{}", p.message);
    let p = one_problem("repo:\n  paths:\n    apt:\n      a: ''\n");
    assert_eq!(p.key, "repo.paths.apt.a");
    let p = one_problem("repo:\n  paths:\n    apt:\n      a: pub\n      b: pub/x\n");
    assert_eq!(p.key, "repo.paths.apt.b");
    assert!(p.message.contains("nests"), "{}", p.message);
    let p = one_problem("repo:\n  paths:\n    apt:\n      a: pub\n    dnf:\n      b: pub\n");
    assert_eq!(p.key, "repo.paths.dnf.b");
}

#[test]
fn apt_syncer_with_repos_is_rejected_naming_the_syncer() {
    let p = one_problem("syncer:\n  - {type: apt, name: debian, config: a.yaml, repos: r.yaml}\n");
    assert_eq!(p.key, "syncer[0].repos");
    assert!(p.message.contains("\"debian\""), "{}", p.message);
    assert_eq!(p.position.line, 2);
}

#[test]
fn required_and_forbidden_files_per_type() {
    assert_problem_keys(&[
        (
            "syncer:\n  - {type: rsync, name: e, config: c.yaml, repos: r.yaml}\n",
            "syncer[0].config",
        ),
        (
            "syncer:\n  - {type: dnf, name: d, config: c.yaml}\n",
            "syncer[0].repos",
        ),
        (
            "syncer:\n  - {type: rmt, name: r, repos: r.yaml}\n",
            "syncer[0].config",
        ),
        ("syncer:\n  - {type: apt, name: a}\n", "syncer[0].config"),
        ("syncer:\n  - {type: ftp, name: a}\n", "syncer[0].type"),
        ("syncer:\n  - {name: a}\n", "syncer[0].type"),
    ]);
    assert_eq!(
        load("syncer:\n  - {type: ' APT ', config: c.yaml}\n").syncers[0].kind,
        Some(SyncerType::Apt)
    );
}

#[test]
fn relative_paths_reject_absolute_and_dotdot() {
    assert_problem_keys(&[
        (
            "syncer:\n  - {type: apt, config: /etc/x.yaml}\n",
            "syncer[0].config",
        ),
        (
            "syncer:\n  - {type: rsync, repos: a/../../x.yaml}\n",
            "syncer[0].repos",
        ),
        (
            "syncer:\n  - {type: dnf, config: c, repos: r, dest: a/../b}\n",
            "syncer[0].dest",
        ),
    ]);
    let c = load(
        "syncer:\n  - {type: dnf, config: c, repos: r, dest: /dnf/repos/}\n  - {type: dnf, config: c2, repos: r, dest: '/'}\n",
    );
    assert_eq!(c.syncers[0].dest.as_deref(), Some("dnf/repos"));
    assert_eq!(c.syncers[1].dest, None);
}

#[test]
fn names_are_derived_from_dest_config_repos_or_type() {
    let c = load(
        "syncer:\n\
         \x20 - {type: rmt, config: c.yaml, repos: r.yaml, dest: rmt_x86_64/storage/public/repo}\n\
         \x20 - {type: apt, config: 'my mirror.list'}\n\
         \x20 - {type: rsync, repos: sub/epel.repos.yaml}\n\
         \x20 - {type: dnf, config: c.yaml, repos: r.yaml, dest: 'dnf/@@@'}\n",
    );
    let names: Vec<_> = c.syncers.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "rmt-syncer-repo",
            "apt-syncer-my-mirror",
            "rsync-syncer-epel.repos",
            "dnf-syncer-default"
        ]
    );
    assert_eq!(c.syncers[0].prefix, "rmt-syncer-repo");
    assert_eq!(
        c.syncers[0].log_file,
        PathBuf::from("/var/log/syncer/rmt-syncer-repo.log")
    );
}

#[test]
fn containers_are_derived_per_type() {
    let c = load(&format!(
        "mirror:\n  syncer_dir: /etc/dm\n  zfs_mirror_dir: /pool/m\n{}",
        "syncer:\n\
         \x20 - {type: apt, name: a, config: apt.list, environment: {PORT: 8080, TOKEN: s3cret}, command_args: [--x, 1]}\n\
         \x20 - {type: rsync, name: r, repos: r.yaml, user: 'mirror:mirror', image: my/img:1}\n\
         \x20 - {type: dnf, name: d, config: d.conf, repos: d.yaml, dest: dnf/repos}\n\
         \x20 - {type: rmt, name: s, config: s.conf, repos: s.yaml, log_file: /tmp/s.log}\n"
    ));
    let vols = |i: usize| -> Vec<(String, String, &str)> {
        c.syncers[i]
            .volumes
            .iter()
            .map(|v| (v.host.display().to_string(), v.bind.clone(), v.mode()))
            .collect()
    };
    let v = |h: &str, b: &str, m| (h.to_owned(), b.to_owned(), m);
    assert_eq!(
        vols(0),
        [
            v("/pool/m", "/distpool/mirror", "rw"),
            v("/etc/dm/apt.list", "/etc/apt/mirror.list", "ro")
        ]
    );
    assert_eq!(
        vols(1),
        [
            v("/pool/m", "/distpool/mirror", "rw"),
            v("/etc/dm/r.yaml", "/app/repos.yaml", "ro")
        ]
    );
    assert_eq!(
        vols(2),
        [
            v("/pool/m/dnf/repos", "/distpool/mirror/dnf", "rw"),
            v("/etc/dm/d.yaml", "/app/repos.yaml", "ro"),
            v("/etc/dm/d.conf", "/app/dnf_mirror.conf", "ro")
        ]
    );
    assert_eq!(
        vols(3),
        [
            v("/pool/m", "/var/lib/rmt/public/repo", "rw"),
            v("/etc/dm/s.yaml", "/etc/repos.yaml", "ro"),
            v("/etc/dm/s.conf", "/etc/rmt.conf", "ro")
        ]
    );
    assert_eq!(c.syncers[0].image, SyncerType::Apt.default_image());
    assert_eq!(c.syncers[1].image, "my/img:1");
    assert_eq!(
        c.syncers[2].image,
        "docker-registry.d.postgrespro.ru/infra/dnf_syncer:1.1.2"
    );
    assert_eq!(
        c.syncers[3].image,
        "docker-registry.d.postgrespro.ru/infra/rmt_syncer:1.1.10"
    );
    assert_eq!(c.syncers[1].user, "mirror:mirror");
    // SAFETY: getuid/getgid cannot fail.
    let me = unsafe { format!("{}:{}", libc::getuid(), libc::getgid()) };
    assert_eq!(c.syncers[0].user, me);
    assert_eq!(
        c.syncers[0].environment,
        vec![
            ("PORT".into(), "8080".into()),
            ("TOKEN".into(), "s3cret".into())
        ]
    );
    assert_eq!(
        c.syncers[0].command_args,
        vec!["--x".to_owned(), "1".to_owned()]
    );
    assert_eq!(c.syncers[3].log_file, PathBuf::from("/tmp/s.log"));
}

#[test]
fn environment_names_must_be_variable_names() {
    assert_problem_keys(&[(
        "syncer:\n  - {type: apt, config: c, environment: {'BAD NAME': x}}\n",
        "syncer[0].environment.BAD NAME",
    )]);
}

#[test]
fn duplicate_names_and_prefixes_name_both_entries() {
    let p = problems(
        "syncer:\n  - {type: apt, name: a, prefix: p, config: c}\n  - {type: apt, name: a, prefix: p, config: c}\n",
    );
    assert_eq!(p.len(), 2, "{p:#?}");
    assert_eq!(p[0].key, "syncer[1].name");
    assert!(p[0].message.contains("syncer[0].name"), "{}", p[0].message);
    assert_eq!(p[1].key, "syncer[1].prefix");
    assert!(
        p[1].message.contains("syncer[0].prefix"),
        "{}",
        p[1].message
    );
    // A default prefix (the name) counts too.
    let p = one_problem(
        "syncer:\n  - {type: apt, name: a, config: c}\n  - {type: apt, name: b, prefix: a, config: c}\n",
    );
    assert_eq!(p.key, "syncer[1].prefix");
}

#[test]
fn legacy_containers_are_used_only_without_syncers() {
    let c = load(
        "containers:\n\
         \x20 - name: old\n\
         \x20   image: img:1\n\
         \x20   volumes: {/data: {bind: /mnt}, /etc/x: {bind: /x, mode: ro}}\n\
         \x20 - name: old2\n\
         \x20   image: img:2\n\
         \x20   prefix: p2\n\
         \x20   volumes: ['/a:/b', '/c:/d:ro']\n",
    );
    assert_eq!(c.syncers.len(), 2);
    assert_eq!(c.syncers[0].kind, None);
    assert_eq!(c.syncers[0].prefix, "old");
    let binds = |i: usize| -> Vec<(&str, bool)> {
        c.syncers[i]
            .volumes
            .iter()
            .map(|v| (v.bind.as_str(), v.read_only))
            .collect()
    };
    assert_eq!(binds(0), [("/mnt", false), ("/x", true)]);
    assert_eq!(binds(1), [("/b", false), ("/d", true)]);
    let c = load(
        "syncer:\n  - {type: apt, name: a, config: c}\ncontainers:\n  - {name: old, image: i}\n",
    );
    assert_eq!(c.syncers.len(), 1);
    assert_eq!(c.warnings.len(), 1);
    assert_eq!(c.warnings[0].key, "containers");
    assert_problem_keys(&[
        (
            "containers:\n  - {name: x, image: i, volumes: ['/a:/b:rx']}\n",
            "containers[0].volumes[0]",
        ),
        ("containers:\n  - {name: x}\n", "containers[0].image"),
    ]);
}

#[test]
fn unknown_keys_are_warnings_with_their_path() {
    let c = load(
        "mirorr: {}\nmirror:\n  workdri: /x\nsyncer:\n  - {type: apt, config: c, imagee: x}\n",
    );
    let keys: Vec<_> = c
        .warnings
        .iter()
        .map(|w| (w.key.as_str(), w.position.line))
        .collect();
    assert_eq!(
        keys,
        [
            ("mirorr", 1),
            ("mirror.workdri", 3),
            ("syncer[0].imagee", 5)
        ]
    );
}

#[test]
fn all_errors_are_reported_together_in_file_order() {
    let p = problems(
        "log:\n  log_level: NOPE\nmirror:\n  kesl_max_workers: 0\nsyncer:\n  - {type: apt, name: d, config: c, repos: r}\n",
    );
    let keys: Vec<_> = p
        .iter()
        .map(|f| (f.key.as_str(), f.position.line))
        .collect();
    assert_eq!(
        keys,
        [
            ("log.log_level", 2),
            ("mirror.kesl_max_workers", 4),
            ("syncer[0].repos", 6)
        ]
    );
}

#[test]
fn syntax_errors_and_duplicate_keys_have_positions() {
    match from_str("mirror:\n  workdir: [unclosed\n", Path::new("t.yaml")) {
        Err(ConfigError::Syntax { position, .. }) => assert!(position.line >= 2, "{position}"),
        other => panic!("{other:?}"),
    }
    match from_str("mirror: {}\nmirror: {}\n", Path::new("t.yaml")) {
        Err(ConfigError::Syntax {
            position, message, ..
        }) => {
            assert_eq!(position.line, 2);
            assert!(message.contains("duplicate key"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    match from_str("- a\n- b\n", Path::new("t.yaml")) {
        Err(ConfigError::Syntax {
            position, message, ..
        }) => {
            assert_eq!(position, Position { line: 1, column: 1 });
            assert!(message.contains("top level must be a mapping"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(one_problem("mirror: [a]\n").key, "mirror");
}

#[test]
fn pipeline_section() {
    let c = load(
        "pipeline:\n  runner_tags: [shard01, zfs]\n  command: [sudo, -n, /usr/local/bin/mirrorer]\n\
         \x20 config_path: /etc/dm.yaml\n  resource_group: dm\n  timeout: 3h\n\
         \x20 retry: {max: 1, when: [runner_system_failure, stuck_or_timeout_failure]}\n\
         \x20 jobs:\n    sync: {timeout: 12h}\n    snapshot: {retry: 1}\n",
    );
    let p = &c.pipeline;
    assert_eq!(p.runner_tags, ["shard01", "zfs"]);
    assert_eq!(p.command, ["sudo", "-n", "/usr/local/bin/mirrorer"]);
    assert_eq!(p.config_path.as_deref(), Some("/etc/dm.yaml"));
    assert_eq!(p.timeout_for("sync"), Some("12h"));
    assert_eq!(p.timeout_for("replicate"), Some("3h"));
    assert_eq!(p.retry_for("av-scan").map(|r| r.max), Some(1));
    assert_eq!(
        p.retry_for("snapshot").map(|r| r.when.clone()),
        Some(vec!["runner_system_failure".to_owned()])
    );
    let d = load("");
    assert_eq!(
        d.pipeline.retry_for("snapshot"),
        None,
        "snapshot is not retried by default"
    );
    assert_eq!(d.pipeline.retry_for("sync").map(|r| r.max), Some(2));
    assert_eq!(d.pipeline.timeout_for("sync"), None);
    assert_problem_keys(&[
        ("pipeline:\n  timeout: forever\n", "pipeline.timeout"),
        ("pipeline:\n  retry: {max: 3}\n", "pipeline.retry.max"),
        (
            "pipeline:\n  retry: {when: [oops]}\n",
            "pipeline.retry.when[0]",
        ),
        ("pipeline:\n  jobs: {synk: {}}\n", "pipeline.jobs.synk"),
        ("pipeline:\n  runner_tags: ['']\n", "pipeline.runner_tags"),
    ]);
}

#[test]
fn tools_section() {
    let c = load(
        "tools:\n  zfs: /usr/sbin/zfs\n  kesl-control: /opt/kesl/bin/kesl-control\n  frobnicate: /x\n",
    );
    assert_eq!(
        c.tools,
        vec![
            ("zfs".to_owned(), "/usr/sbin/zfs".to_owned()),
            (
                "kesl_control".to_owned(),
                "/opt/kesl/bin/kesl-control".to_owned()
            ),
            ("frobnicate".to_owned(), "/x".to_owned()),
        ]
    );
    assert_eq!(c.warnings.len(), 1);
    assert_eq!(c.warnings[0].key, "tools.frobnicate");
    assert_eq!(
        c.warnings[0].message,
        "unknown tool (known: docker, zfs, syncoid, rsync, ssh, kesl_control, clamdscan, clamscan, gpgv)"
    );
}

#[test]
fn list_items_must_be_mappings() {
    let found = |text: &str, key: &str| {
        let p = problems(text);
        p.into_iter()
            .find(|f| f.key == key)
            .unwrap_or_else(|| panic!("no problem at {key} for {text:?}"))
            .message
    };
    assert_eq!(
        found("syncer:\n  - debian\n", "syncer[0]"),
        "must be a mapping, found a scalar"
    );
    // A none-like item is not skipped as an absent section would be.
    assert_eq!(
        found("syncer:\n  - ~\n", "syncer[0]"),
        "must be a mapping, found a scalar"
    );
    assert_eq!(
        found("containers:\n  - [a]\n", "containers[0]"),
        "must be a mapping, found a list"
    );
}

#[test]
fn legacy_containers_need_a_name_and_an_image() {
    let p = problems("containers:\n  - prefix: debian\n");
    let found: Vec<(&str, &str)> = p
        .iter()
        .map(|f| (f.key.as_str(), f.message.as_str()))
        .filter(|(k, _)| k.starts_with("containers[0]"))
        .collect();
    assert_eq!(
        found,
        vec![
            ("containers[0].name", "is required for a container"),
            ("containers[0].image", "is required for a container"),
        ]
    );
}
