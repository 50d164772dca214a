//! `mirrorer config check` and config errors through the real binary.

use crate::common::{Run, assert_has_all, assert_has_lines};

#[test]
fn example_config_checks_and_prints_the_effective_config() {
    let text = Run::bare()
        .args(["--config", "examples/dist-mirror.yaml", "config", "check"])
        .success()
        .run()
        .stdout;
    assert_has_lines(
        &text,
        &[
            "config: examples/dist-mirror.yaml (valid)",
            "  workdir: /opt/dist-mirror",
            "    state: /opt/dist-mirror/state",
            "  zfs_mirror_dataset: distpool/mirror",
            "  apt/mirror/debian.mirror.example -> debian",
            "syncers: 4",
            "  - name: sles-x86_64",
            "    image: docker-registry.d.postgrespro.ru/infra/rmt_syncer:1.1.10",
            "      - /distpool/mirror/rmt_x86_64/storage/public/repo -> /var/lib/rmt/public/repo (rw)",
            "      - /etc/dist-mirror/syncer.yaml -> /etc/apt/mirror.list (ro)",
            "    log_file: /var/log/syncer/epel.log",
        ],
    );
}

#[test]
fn secrets_are_shown_as_stars() {
    let out = Run::bare_with_config("syncer:\n  - {type: apt, name: a, config: c, environment: {MIRROR_PASSWORD: hunter2, PLAIN: visible-value}}\n")
        .args(["config", "check"])
        .success()
        .run();
    let text = out.stdout + &out.stderr;
    assert_has_all(&text, &["MIRROR_PASSWORD: ***", "PLAIN: ***"]);
    assert!(
        !text.contains("hunter2") && !text.contains("visible-value"),
        "{text}"
    );
}

#[test]
fn bad_log_level_exits_3_naming_the_key_and_line() {
    Run::bare_with_config("mirror:\n  workdir: /x\nlog:\n  log_level: NOPE\n")
        .args(["config", "check"])
        .code(3)
        .stderr_has("config_error setting=log.log_level line=4 column=14")
        .stderr_has("NOPE")
        .stdout_is("")
        .run();
}

#[test]
fn every_problem_of_a_file_is_reported_at_once() {
    Run::bare_with_config("log:\n  log_level: NOPE\nsyncer:\n  - {type: apt, name: debian, config: a.yaml, repos: r.yaml}\n  - {type: rsync, name: debian, repos: r.yaml}\n")
        .args(["config", "check"])
        .code(3)
        .stderr_has("setting=log.log_level line=2")
        .stderr_has("setting=syncer[0].repos line=4")
        // the apt syncer is named
        .stderr_has("syncer \\\"debian\\\"")
        .stderr_has("setting=syncer[1].name line=5")
        .stderr_has("is invalid (4 problems)")
        .run();
}

#[test]
fn missing_config_exits_3_and_names_the_file() {
    Run::bare()
        .args([
            "--config",
            "/nonexistent/dist-mirror.yaml",
            "config",
            "check",
        ])
        .code(3)
        .stderr_has("/nonexistent/dist-mirror.yaml")
        .stderr_has("caused by: No such file or directory")
        .run();
}

#[test]
fn config_path_comes_from_the_environment() {
    Run::bare()
        .env("MIRRORER_CONFIG", "examples/dist-mirror.yaml")
        .args(["config", "check"])
        .success()
        .run();
}

#[test]
fn unknown_keys_are_logged_as_warnings() {
    Run::bare_with_config("mirror:\n  workdri: /x\n")
        .args(["config", "check"])
        .success()
        .stderr_has(
            "WARNING  mirrorer::config: config_warning setting=mirror.workdri line=2 column=3",
        )
        .run();
}

#[test]
fn bad_flags_are_usage_errors() {
    Run::bare()
        .args(["--log-level", "LOUD", "config", "check"])
        .code(2)
        .stderr_has("LOUD")
        .run();
    Run::bare().arg("frobnicate").code(2).run();
}

#[test]
fn help_documents_the_exit_codes() {
    let text = Run::bare().arg("--help").success().run().stdout;
    for code in ["0", "1", "2", "3", "4", "5", "130", "143"] {
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with(&format!("{code} "))),
            "exit {code}:\n{text}"
        );
    }
}

#[test]
fn json_logs_are_one_object_per_line_with_redaction() {
    let err = Run::bare_with_config("mirror:\n  workdri: /x\nlog:\n  log_level: warning\n")
        .args(["--json-logs", "config", "check"])
        .success()
        .run()
        .stderr;
    let lines: Vec<serde_json::Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(lines.len(), 1, "{err}");
    let event = &lines[0];
    assert_eq!(event["level"], "WARNING");
    assert_eq!(event["event"], "config_warning");
    assert_eq!(event["target"], "mirrorer::config");
    assert_eq!(event["fields"]["setting"], "mirror.workdri");
    assert_eq!(event["fields"]["line"], "2");
    assert!(event["timestamp"].as_str().is_some());
}

#[test]
fn log_level_from_flag_beats_the_config() {
    let out = Run::bare_with_config("mirror:\n  workdri: /x\nlog:\n  log_level: DEBUG\n")
        .args(["--log-level", "error", "config", "check"])
        .success()
        .run();
    assert_eq!(out.stderr, "", "warnings are below ERROR");
}

#[test]
fn the_lifecycle_sections_and_pipeline_settings_are_shown_with_secrets_masked() {
    let text = config_check(
        "replication:\n  replica_host: r.example\n  ssh_options: [-o, 'ProxyCommand=ssh -W %h:%p jump', --password, hunter2]\n\
         pipeline:\n  timeout: 3h\n  retry: 1\n  jobs:\n    sync: {timeout: 12h, retry: {max: 2, when: [always]}}\n  \
         environment: {name: mirror/shard01, url: 'https://shard01.example/repo/current/'}\n\
         verify:\n  max_shrink_percent: 5\n  keyrings: {debian: /etc/apt/keyrings/debian.gpg}\n\
         retention:\n  keep_last: 7\n  keep_monthly: 12\n  keep: [20260101-020000]\n\
         metrics:\n  textfile_dir: /var/lib/prometheus/node-exporter\n",
    );
    assert_has_lines(
        &text,
        &[
            r#"  ssh_options: ["-o", "ProxyCommand=ssh -W %h:%p jump", "--password", "***"]"#,
            "  environment: mirror/shard01 (url: https://shard01.example/repo/current/)",
            "  timeouts:",
            "    av-scan: 3h",
            "    sync: 12h",
            r#"  retry: max 1 when ["runner_system_failure"] (snapshot: none unless set)"#,
            r#"  retry.sync: max 2 when ["always"]"#,
            "verify:",
            "  max_shrink_percent: 5",
            "    debian: /etc/apt/keyrings/debian.gpg",
            "retention:",
            "  keep_last: 7",
            "  keep_daily: 0",
            "  keep_monthly: 12",
            r#"  keep: ["20260101-020000"]"#,
            "  max_prune_per_run: 10",
            "  replica: true",
            "  textfile_dir: /var/lib/prometheus/node-exporter",
        ],
    );
    assert!(!text.contains("hunter2"), "{text}");
}

#[test]
fn unset_lifecycle_sections_say_what_that_means() {
    let text = config_check("mirror:\n  workdir: /x\n");
    assert_has_lines(
        &text,
        &[
            "  ssh_options: []",
            "  environment: (not set)",
            "  timeouts: (none: GitLab's job timeout)",
            "  keyrings: (none: signatures are not checked)",
            "retention: (not set: prune keeps every snapshot)",
            "  textfile_dir: (not set)",
        ],
    );
}

/// The stdout of a successful `config check` of `yaml`.
fn config_check(yaml: &str) -> String {
    Run::bare_with_config(yaml)
        .args(["config", "check"])
        .success()
        .run()
        .stdout
}
