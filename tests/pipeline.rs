//! `mirrorer pipeline generate` through the real binary: every run mode on
//! the example config, snapshot-tested; each output validated against
//! GitLab's CI JSON schema (tests/schema/gitlab-ci.json) and checked for
//! declared stages and `needs` that name jobs of the same pipeline.

mod common;

use std::collections::BTreeSet;

use common::{Work, mirrorer, repo_root, stderr, stdout};
use serde_json::Value;

const EXAMPLE: &str = "examples/dist-mirror.yaml";

/// Runs `pipeline generate` on the example with extra args and env, expects
/// success, and returns the YAML text.
fn generate(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut cmd = mirrorer();
    cmd.args(["--config", EXAMPLE, "pipeline", "generate"])
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    check_pipeline(&text);
    text
}

fn schema_validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("tests/schema/gitlab-ci.json")).unwrap(),
    )
    .unwrap();
    jsonschema::validator_for(&schema).expect("GitLab CI schema compiles")
}

/// Schema-valid, every job's stage declared, every `needs` a job of the
/// same pipeline, every job with one script line. Returns the parsed doc.
fn check_pipeline(text: &str) -> Value {
    let doc: Value = serde_yaml::from_str(text).unwrap_or_else(|e| panic!("not YAML: {e}\n{text}"));
    let validator = schema_validator();
    let errors: Vec<String> = validator
        .iter_errors(&doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "schema errors: {errors:#?}\n{text}");
    let top = doc.as_object().unwrap();
    let stages: Vec<&str> = top["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(
        stages,
        [
            "sync",
            "scan",
            "snapshot",
            "replicate",
            "publish",
            "cleanup"
        ]
    );
    let reserved = ["stages", "workflow", "default", "variables"];
    let jobs: BTreeSet<&str> = top
        .keys()
        .map(String::as_str)
        .filter(|k| !reserved.contains(k))
        .collect();
    assert!(!jobs.is_empty(), "GitLab refuses an empty child pipeline");
    for job in &jobs {
        let j = &top[*job];
        let stage = j["stage"].as_str().unwrap();
        assert!(stages.contains(&stage), "{job}: undeclared stage {stage}");
        for need in j["needs"].as_array().unwrap() {
            let need = need.as_str().unwrap();
            assert!(
                jobs.contains(need),
                "{job} needs {need}, not in the pipeline"
            );
            let need_stage = top[need]["stage"].as_str().unwrap();
            let pos = |s: &str| stages.iter().position(|x| *x == s).unwrap();
            assert!(
                pos(need_stage) <= pos(stage),
                "{job} needs the later job {need}"
            );
        }
        assert_eq!(j["script"].as_array().map(Vec::len), Some(1), "{job}");
    }
    assert_eq!(top["workflow"]["rules"][0]["when"], "always");
    assert_eq!(top["default"]["interruptible"], false);
    assert_eq!(top["variables"]["GIT_STRATEGY"], "none");
    assert_eq!(top["variables"]["MIRRORER_CONFIG"]["expand"], false);
    doc
}

fn job_names(text: &str) -> Vec<String> {
    let doc: serde_yaml::Mapping = serde_yaml::from_str(text).unwrap();
    doc.keys()
        .filter_map(|k| k.as_str())
        .filter(|k| !["stages", "workflow", "default", "variables"].contains(k))
        .map(str::to_owned)
        .collect()
}

fn script(text: &str, job: &str) -> String {
    let doc: Value = serde_yaml::from_str(text).unwrap();
    doc[job]["script"][0].as_str().unwrap().to_owned()
}

fn needs(text: &str, job: &str) -> Vec<String> {
    let doc: Value = serde_yaml::from_str(text).unwrap();
    doc[job]["needs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_owned())
        .collect()
}

macro_rules! snapshot {
    ($name:expr, $text:expr) => {
        insta::with_settings!({
            filters => vec![(regex_escape(&repo_root().display().to_string()).as_str(), "[REPO]")],
            prepend_module_to_snapshot => false,
        }, {
            insta::assert_snapshot!($name, $text);
        })
    };
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if "\\.+*?()|[]{}^$".contains(c) {
                vec!['\\', c]
            } else {
                vec![c]
            }
        })
        .collect()
}

#[test]
fn full_chain_has_every_job_wired_as_specified() {
    let text = generate(&[], &[]);
    assert_eq!(
        job_names(&text),
        [
            "sync:debian",
            "sync:epel",
            "sync:rpm",
            "sync:sles-x86_64",
            "av-scan",
            "snapshot",
            "replicate",
            "publish-snapshot",
            "publish-inventory",
            "publish-catalog",
            "cleanup-state"
        ]
    );
    for job in ["sync:debian", "sync:epel", "sync:rpm", "sync:sles-x86_64"] {
        assert!(needs(&text, job).is_empty());
    }
    assert_eq!(
        needs(&text, "av-scan"),
        ["sync:debian", "sync:epel", "sync:rpm", "sync:sles-x86_64"]
    );
    assert_eq!(needs(&text, "snapshot"), ["av-scan"]);
    assert_eq!(needs(&text, "replicate"), ["snapshot"]);
    assert_eq!(needs(&text, "publish-snapshot"), ["snapshot", "replicate"]);
    assert_eq!(needs(&text, "publish-inventory"), ["publish-snapshot"]);
    assert_eq!(
        needs(&text, "publish-catalog"),
        ["publish-snapshot", "snapshot"]
    );
    assert_eq!(
        needs(&text, "cleanup-state"),
        ["publish-inventory", "publish-catalog"]
    );
    assert_eq!(
        script(&text, "sync:sles-x86_64"),
        r#"mirrorer --config "$MIRRORER_CONFIG" sync --syncer sles-x86_64"#
    );
    assert_eq!(
        script(&text, "publish-snapshot"),
        r#"mirrorer --config "$MIRRORER_CONFIG" publish-snapshot --snapshot "$MIRRORER_SNAPSHOT""#
    );
    let doc: Value = serde_yaml::from_str(&text).unwrap();
    assert_eq!(
        doc["snapshot"]["artifacts"]["reports"]["dotenv"],
        "mirrorer-snapshot.env"
    );
    assert!(script(&text, "snapshot").ends_with("snapshot --dotenv mirrorer-snapshot.env"));
    assert!(
        doc["snapshot"].get("retry").is_none(),
        "a second snapshot is not a safe retry"
    );
    assert_eq!(
        doc["replicate"]["retry"]["when"][0],
        "runner_system_failure"
    );
    assert!(text.starts_with(&format!(
        "# Generated by mirrorer \"{}\" from \"{EXAMPLE}\"; do not edit.\n",
        env!("CARGO_PKG_VERSION")
    )));
    snapshot!("full", text);
}

#[test]
fn output_is_byte_identical_for_the_same_input() {
    let a = generate(&["--syncer", "rpm"], &[]);
    let b = generate(&["--syncer", "rpm"], &[]);
    assert_eq!(a, b);
}

#[test]
fn syncer_selection_by_name_or_prefix() {
    let text = generate(&["--syncer", "debian", "--prefix", "sles-x86_64"], &[]);
    assert_eq!(job_names(&text)[..2], ["sync:debian", "sync:sles-x86_64"]);
    assert_eq!(needs(&text, "av-scan"), ["sync:debian", "sync:sles-x86_64"]);
    assert_eq!(job_names(&text).len(), 9);
    snapshot!("syncers", text);
    let from_var = generate(&[], &[("MIRRORER_SYNCERS", " debian, sles-x86_64 ")]);
    assert_eq!(from_var, text);
}

#[test]
fn republish_mode() {
    let text = generate(&["--snapshot", "20260603-120000"], &[]);
    assert_eq!(
        job_names(&text),
        ["publish-snapshot", "publish-inventory", "publish-catalog"]
    );
    assert!(needs(&text, "publish-snapshot").is_empty());
    assert_eq!(needs(&text, "publish-catalog"), ["publish-snapshot"]);
    assert!(
        script(&text, "publish-snapshot").ends_with("publish-snapshot --snapshot 20260603-120000")
    );
    assert!(
        script(&text, "publish-catalog").ends_with("publish-catalog --snapshot 20260603-120000")
    );
    snapshot!("republish", text);
    assert_eq!(
        generate(&[], &[("MIRRORER_SNAPSHOT", "20260603-120000")]),
        text
    );
}

#[test]
fn publish_all_mode() {
    let text = generate(&["--publish-all"], &[]);
    assert_eq!(
        job_names(&text),
        ["publish-snapshot", "publish-inventory", "publish-catalog"]
    );
    assert!(script(&text, "publish-snapshot").ends_with("publish-snapshot --all"));
    assert!(script(&text, "publish-catalog").ends_with("publish-catalog --rebuild"));
    snapshot!("publish_all", text);
    assert_eq!(generate(&[], &[("MIRRORER_PUBLISH_ALL", "true")]), text);
}

#[test]
fn catalog_rebuild_mode() {
    let text = generate(&["--catalog-rebuild"], &[]);
    assert_eq!(job_names(&text), ["publish-inventory", "publish-catalog"]);
    assert!(needs(&text, "publish-catalog").is_empty());
    snapshot!("catalog_rebuild", text);
    assert_eq!(generate(&[], &[("MIRRORER_CATALOG_REBUILD", "yes")]), text);
}

#[test]
fn skip_remote_and_dry_run_reach_every_job() {
    let text = generate(&["--skip-remote", "--dry-run"], &[]);
    for job in job_names(&text) {
        assert!(
            script(&text, &job)
                .starts_with(r#"mirrorer --config "$MIRRORER_CONFIG" --skip-remote --dry-run "#),
            "{job}"
        );
    }
    snapshot!("skip_remote_dry_run", text);
    let from_vars = generate(
        &[],
        &[("MIRRORER_SKIP_REMOTE", "1"), ("MIRRORER_DRY_RUN", "on")],
    );
    assert_eq!(from_vars, text);
}

#[test]
fn pipeline_settings_shape_the_jobs() {
    let w = Work::new();
    let cfg = w.write(
        "dm.yaml",
        "syncer:\n  - {type: apt, name: debian, config: a.list}\n  - {type: rsync, name: epel, repos: r.yaml}\n\
         pipeline:\n  runner_tags: [dist-mirror-shard01]\n  command: [sudo, -n, /usr/local/bin/mirrorer]\n\
         \x20 config_path: /etc/dist-mirror/dist-mirror.yaml\n  resource_group: dist-mirror-shard01\n\
         \x20 timeout: 2h\n  retry: 1\n  jobs:\n    sync: {timeout: 12h}\n    av-scan: {timeout: 1 day, retry: {max: 2, when: [runner_system_failure, stuck_or_timeout_failure]}}\n",
    );
    let out = w
        .mirrorer()
        .arg("-c")
        .arg(&cfg)
        .args(["pipeline", "generate"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let doc = check_pipeline(&text);
    assert_eq!(doc["default"]["tags"][0], "dist-mirror-shard01");
    assert_eq!(
        doc["variables"]["MIRRORER_CONFIG"]["value"],
        "/etc/dist-mirror/dist-mirror.yaml"
    );
    assert_eq!(doc["sync:epel"]["timeout"], "12h");
    assert_eq!(
        doc["sync:epel"]["resource_group"],
        "dist-mirror-shard01:sync:epel"
    );
    assert_eq!(doc["snapshot"]["resource_group"], "dist-mirror-shard01");
    assert_eq!(doc["snapshot"]["timeout"], "2h");
    assert_eq!(doc["av-scan"]["timeout"], "1 day");
    assert_eq!(doc["av-scan"]["retry"]["max"], 2);
    assert_eq!(doc["replicate"]["retry"]["max"], 1);
    assert_eq!(
        script(&text, "sync:debian"),
        r#"sudo -n /usr/local/bin/mirrorer --config "$MIRRORER_CONFIG" sync --syncer debian"#
    );
    assert!(!stderr(&out).contains("pipeline_no_runner_tags"));
    snapshot!(
        "pipeline_settings",
        text.replace(&cfg.display().to_string(), "[CONFIG]")
    );
}

#[test]
fn an_empty_selection_gives_one_noop_job_that_says_why() {
    let w = Work::new();
    let cfg = w.write("dm.yaml", "mirror:\n  workdir: /opt/dist-mirror\n");
    let out = w
        .mirrorer()
        .arg("-c")
        .arg(&cfg)
        .args(["pipeline", "generate"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    check_pipeline(&text);
    assert_eq!(job_names(&text), ["mirrorer:nothing-to-do"]);
    let line = script(&text, "mirrorer:nothing-to-do");
    assert!(line.starts_with("echo 'nothing to do: "), "{line}");
    assert!(line.contains("configures no syncer"), "{line}");
}

#[test]
fn output_file_is_written_atomically() {
    let w = Work::new();
    let target = w.path("child.yml");
    std::fs::write(&target, "old").unwrap();
    let out = mirrorer()
        .args(["--config", EXAMPLE, "pipeline", "generate", "--output"])
        .arg(&target)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).is_empty());
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        generate(&[], &[])
    );
    assert_eq!(common::list_dir(w.dir.path()), ["child.yml"]);
    // A target in a missing directory fails and leaves nothing behind.
    let out = mirrorer()
        .args(["--config", EXAMPLE, "pipeline", "generate", "--output"])
        .arg(w.path("missing/child.yml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("missing/child.yml"));
    assert_eq!(common::list_dir(w.dir.path()), ["child.yml"]);
    // With the global --dry-run nothing is written.
    let out = mirrorer()
        .args([
            "--config",
            EXAMPLE,
            "--dry-run",
            "pipeline",
            "generate",
            "--output",
        ])
        .arg(w.path("dry.yml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("pipeline_write_skipped_dry_run"));
    assert_eq!(common::list_dir(w.dir.path()), ["child.yml"]);
}

fn usage_error(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut cmd = mirrorer();
    cmd.args(["--config", EXAMPLE, "pipeline", "generate"])
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{args:?} {env:?}: {}",
        stderr(&out)
    );
    assert!(stdout(&out).is_empty());
    stderr(&out)
}

#[test]
fn invalid_values_are_refused_before_anything_is_rendered() {
    let err = usage_error(&["--snapshot", "../etc"], &[]);
    assert!(err.contains("--snapshot") && err.contains("'/'"), "{err}");
    let err = usage_error(&[], &[("MIRRORER_SNAPSHOT", "../etc")]);
    assert!(err.contains("MIRRORER_SNAPSHOT"), "{err}");
    for bad in ["-rf", ".hidden", "a b", "x;id", &"9".repeat(201)] {
        usage_error(&["--snapshot", bad], &[]);
    }
    let err = usage_error(&["--syncer", "nope"], &[]);
    assert!(
        err.contains("no syncer matches name or prefix: nope"),
        "{err}"
    );
    let err = usage_error(&[], &[("MIRRORER_SYNCERS", "debian,nope")]);
    assert!(
        err.contains("no syncer matches name or prefix: nope"),
        "{err}"
    );
    let err = usage_error(&[], &[("MIRRORER_PUBLISH_ALL", "sure")]);
    assert!(err.contains("MIRRORER_PUBLISH_ALL"), "{err}");
}

#[test]
fn conflicting_modes_are_a_usage_error_naming_them() {
    let err = usage_error(&["--snapshot", "20260603-120000", "--publish-all"], &[]);
    assert!(
        err.contains("--snapshot cannot be combined with --publish-all"),
        "{err}"
    );
    let err = usage_error(&["--syncer", "debian", "--catalog-rebuild"], &[]);
    assert!(
        err.contains("--syncer cannot be combined with --catalog-rebuild"),
        "{err}"
    );
    let err = usage_error(
        &[],
        &[
            ("MIRRORER_SNAPSHOT", "x"),
            ("MIRRORER_CATALOG_REBUILD", "true"),
        ],
    );
    assert!(
        err.contains("MIRRORER_SNAPSHOT cannot be combined with MIRRORER_CATALOG_REBUILD"),
        "{err}"
    );
}

#[test]
fn flags_win_over_variables() {
    let text = generate(
        &["--catalog-rebuild"],
        &[("MIRRORER_SNAPSHOT", "20260603-120000")],
    );
    assert_eq!(job_names(&text), ["publish-inventory", "publish-catalog"]);
}

#[test]
fn invalid_config_exits_3() {
    let w = Work::new();
    let cfg = w.write(
        "dm.yaml",
        "syncer:\n  - {type: apt, name: d, repos: r.yaml}\n",
    );
    let out = w
        .mirrorer()
        .arg("-c")
        .arg(&cfg)
        .args(["pipeline", "generate"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(stdout(&out).is_empty());
}

#[test]
fn the_schema_check_rejects_what_gitlab_rejects() {
    // Proves the validator is not vacuous: GitLab refuses these.
    let validator = schema_validator();
    let good: Value = serde_yaml::from_str(&generate(&["--catalog-rebuild"], &[])).unwrap();
    assert!(validator.is_valid(&good));
    for (what, patch) in [
        ("unknown job keyword", serde_json::json!({"scriptt": ["x"]})),
        ("retry above 2", serde_json::json!({"retry": {"max": 3}})),
        ("needs not a list", serde_json::json!({"needs": 5})),
        (
            "unknown retry condition",
            serde_json::json!({"retry": {"max": 1, "when": ["sometimes"]}}),
        ),
    ] {
        let mut bad = good.clone();
        let job = bad["publish-inventory"].as_object_mut().unwrap();
        for (k, v) in patch.as_object().unwrap() {
            job.insert(k.clone(), v.clone());
        }
        assert!(!validator.is_valid(&bad), "{what} was accepted");
    }
}
