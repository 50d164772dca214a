//! `mirrorer config check` and config errors through the real binary.

mod common;

use common::{Work, mirrorer, run_with_config, stderr, stdout};

#[test]
fn example_config_checks_and_prints_the_effective_config() {
    let out = mirrorer()
        .args(["--config", "examples/dist-mirror.yaml", "config", "check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    for want in [
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
    ] {
        assert!(
            text.lines().any(|l| l == want),
            "missing line {want:?} in:\n{text}"
        );
    }
}

#[test]
fn secrets_are_shown_as_stars() {
    let w = Work::new();
    let cfg = w.write(
        "c.yaml",
        "syncer:\n  - {type: apt, name: a, config: c, environment: {MIRROR_PASSWORD: hunter2, PLAIN: visible-value}}\n",
    );
    let out = run_with_config(&cfg, &["config", "check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out) + &stderr(&out);
    assert!(
        text.contains("MIRROR_PASSWORD: ***") && text.contains("PLAIN: ***"),
        "{text}"
    );
    assert!(
        !text.contains("hunter2") && !text.contains("visible-value"),
        "{text}"
    );
}

#[test]
fn bad_log_level_exits_3_naming_the_key_and_line() {
    let w = Work::new();
    let cfg = w.write(
        "c.yaml",
        "mirror:\n  workdir: /x\nlog:\n  log_level: NOPE\n",
    );
    let out = run_with_config(&cfg, &["config", "check"]);
    assert_eq!(out.status.code(), Some(3));
    let err = stderr(&out);
    assert!(
        err.contains("config_error setting=log.log_level line=4 column=14"),
        "{err}"
    );
    assert!(err.contains("NOPE"), "{err}");
    assert!(stdout(&out).is_empty());
}

#[test]
fn every_problem_of_a_file_is_reported_at_once() {
    let w = Work::new();
    let cfg = w.write(
        "c.yaml",
        "log:\n  log_level: NOPE\nsyncer:\n  - {type: apt, name: debian, config: a.yaml, repos: r.yaml}\n  - {type: rsync, name: debian, repos: r.yaml}\n",
    );
    let out = run_with_config(&cfg, &["config", "check"]);
    assert_eq!(out.status.code(), Some(3));
    let err = stderr(&out);
    assert!(err.contains("setting=log.log_level line=2"), "{err}");
    assert!(err.contains("setting=syncer[0].repos line=4"), "{err}");
    assert!(
        err.contains("syncer \\\"debian\\\""),
        "the apt syncer is named: {err}"
    );
    assert!(err.contains("setting=syncer[1].name line=5"), "{err}");
    assert!(err.contains("is invalid (4 problems)"), "{err}");
}

#[test]
fn missing_config_exits_3_and_names_the_file() {
    let out = mirrorer()
        .args([
            "--config",
            "/nonexistent/dist-mirror.yaml",
            "config",
            "check",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = stderr(&out);
    assert!(err.contains("/nonexistent/dist-mirror.yaml"), "{err}");
    assert!(
        err.contains("caused by: No such file or directory"),
        "{err}"
    );
}

#[test]
fn config_path_comes_from_the_environment() {
    let out = mirrorer()
        .env("MIRRORER_CONFIG", "examples/dist-mirror.yaml")
        .args(["config", "check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn unknown_keys_are_logged_as_warnings() {
    let w = Work::new();
    let cfg = w.write("c.yaml", "mirror:\n  workdri: /x\n");
    let out = run_with_config(&cfg, &["config", "check"]);
    assert_eq!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(
        err.contains(
            "WARNING  mirrorer::config: config_warning setting=mirror.workdri line=2 column=3"
        ),
        "{err}"
    );
}

#[test]
fn bad_flags_are_usage_errors() {
    let out = mirrorer()
        .args(["--log-level", "LOUD", "config", "check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("LOUD"));
    let out = mirrorer().args(["frobnicate"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn help_documents_the_exit_codes() {
    let out = mirrorer().arg("--help").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
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
    let w = Work::new();
    let cfg = w.write(
        "c.yaml",
        "mirror:\n  workdri: /x\nlog:\n  log_level: warning\n",
    );
    let out = run_with_config(&cfg, &["--json-logs", "config", "check"]);
    assert_eq!(out.status.code(), Some(0));
    let err = stderr(&out);
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
    let w = Work::new();
    let cfg = w.write(
        "c.yaml",
        "mirror:\n  workdri: /x\nlog:\n  log_level: DEBUG\n",
    );
    let out = run_with_config(&cfg, &["--log-level", "error", "config", "check"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stderr(&out), "", "warnings are below ERROR");
}
