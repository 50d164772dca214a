//! Exclude selection (issue 16) through the real binary, in every place:
//! `pipeline generate --exclude-syncer` and `MIRRORER_SYNCERS_EXCLUDE`,
//! the include's `exclude_syncers` input, `sync --exclude-syncer` (with the
//! fake docker) and `pipeline trigger` forwarding it as a variable.
//! Include and exclude together are a usage error naming both; an excluded
//! name that matches no syncer is a usage error naming it.

use std::fs;

use crate::common::{Env, Ran, Run, assert_has, assert_has_all, check_pipeline, stderr, stdout};
use serde_json::Value;

const EXAMPLE: &str = "examples/dist-mirror.yaml";

/// `pipeline generate` of the example config with `args` and the
/// variables `env`, run (the callers check its exit code).
fn generate_cmd(args: &[&str], env: &[(&str, &str)]) -> Ran {
    Run::bare()
        .args(["--config", EXAMPLE, "pipeline", "generate"])
        .args(args)
        .envs(env.iter().copied())
        .run()
}

fn sync_jobs(text: &str) -> Vec<String> {
    let doc: serde_yaml::Mapping = serde_yaml::from_str(text).unwrap();
    doc.keys()
        .filter_map(|k| k.as_str())
        .filter(|k| k.starts_with("sync:"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn generate_excludes_by_flag_or_variable() {
    let out = generate_cmd(
        &["--exclude-syncer", "debian", "--exclude-syncer", "rpm"],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let doc = check_pipeline(&text);
    assert_eq!(sync_jobs(&text), ["sync:epel", "sync:sles-x86_64"]);
    let needs: Vec<&str> = doc["av-scan"]["needs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert_eq!(needs, ["sync:epel", "sync:sles-x86_64"]);
    // A prefix works as well as a name, and the variable gives the same bytes.
    let from_var = generate_cmd(&[], &[("MIRRORER_SYNCERS_EXCLUDE", " debian , rpm ")]);
    assert_eq!(from_var.status.code(), Some(0), "{}", stderr(&from_var));
    assert_eq!(stdout(&from_var), text);
    // Flags win over the variable.
    let flag_wins = generate_cmd(
        &["--exclude-syncer", "epel"],
        &[("MIRRORER_SYNCERS_EXCLUDE", "debian")],
    );
    assert_eq!(
        sync_jobs(&stdout(&flag_wins)),
        ["sync:debian", "sync:rpm", "sync:sles-x86_64"]
    );
}

#[test]
fn excluding_every_syncer_gives_the_noop_job() {
    let out = generate_cmd(
        &[
            "--exclude-syncer",
            "debian",
            "--exclude-syncer",
            "epel",
            "--exclude-syncer",
            "rpm",
            "--exclude-syncer",
            "sles-x86_64",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let doc = check_pipeline(&text);
    let script = doc["mirrorer:nothing-to-do"]["script"][0]
        .as_str()
        .unwrap()
        .to_owned();
    assert_has(&script, "leaves no syncer");
}

fn usage_error(out: &std::process::Output) -> String {
    assert_eq!(out.status.code(), Some(2), "{}", stderr(out));
    assert!(stdout(out).is_empty());
    stderr(out)
}

#[test]
fn include_and_exclude_together_name_both() {
    let err = usage_error(&generate_cmd(
        &["--syncer", "debian", "--exclude-syncer", "rpm"],
        &[],
    ));
    assert_has_all(&err, &["--syncer", "--exclude-syncer"]);
    let err = usage_error(&generate_cmd(
        &[],
        &[
            ("MIRRORER_SYNCERS", "debian"),
            ("MIRRORER_SYNCERS_EXCLUDE", "rpm"),
        ],
    ));
    assert_has_all(&err, &["MIRRORER_SYNCERS ", "MIRRORER_SYNCERS_EXCLUDE"]);
    let err = usage_error(&generate_cmd(
        &["--exclude-syncer", "rpm", "--snapshot", "20260603-120000"],
        &[],
    ));
    assert_has_all(&err, &["--snapshot", "--exclude-syncer"]);
}

#[test]
fn an_excluded_name_matching_no_syncer_is_named() {
    let err = usage_error(&generate_cmd(
        &["--exclude-syncer", "debian", "--exclude-syncer", "nosuch"],
        &[],
    ));
    assert_has(&err, "no syncer matches excluded name or prefix: nosuch");
    let err = usage_error(&generate_cmd(
        &[],
        &[("MIRRORER_SYNCERS_EXCLUDE", "nosuch")],
    ));
    assert_has(&err, "nosuch");
}

// ---- sync --exclude-syncer, with the fake docker ----

/// The default config, the fake docker and three rsync syncers.
fn sync_config(env: &Env) -> String {
    let mut text = env.sync_config_head();
    for (name, prefix) in [("alpha", "pa"), ("beta", "pb"), ("gamma", "pg")] {
        text.push_str(&format!(
            "  - type: rsync\n    name: {name}\n    prefix: {prefix}\n    repos: repos.yaml\n    image: registry.example/{name}:1\n    user: '1000:1000'\n    log_file: {log}\n",
            log = env.root.join(format!("logs/{name}.log")).display(),
        ));
    }
    text
}

fn started(env: &Env) -> Vec<String> {
    let mut names: Vec<String> = ["alpha", "beta", "gamma"]
        .into_iter()
        .filter(|n| env.docker_dir().join(format!("{n}.attempts")).exists())
        .map(str::to_owned)
        .collect();
    names.sort();
    names
}

/// `sync` with `args` and the fake docker, run (the callers check its
/// exit code).
fn sync(env: &Env, args: &[&str]) -> Ran {
    env.sync_run().arg("sync").args(args).run()
}

#[test]
fn sync_runs_every_syncer_but_the_excluded() {
    let env = Env::new();
    env.write_config(&sync_config(&env));
    let out = sync(
        &env,
        &["--exclude-syncer", "alpha", "--exclude-syncer", "pg"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(started(&env), ["beta"]);
}

#[test]
fn sync_refuses_both_and_unknown_exclusions_before_running_anything() {
    let env = Env::new();
    env.write_config(&sync_config(&env));
    let out = sync(&env, &["--syncer", "alpha", "--exclude-syncer", "beta"]);
    let err = usage_error(&out);
    assert_has_all(&err, &["--syncer", "--exclude-syncer"]);
    let out = sync(&env, &["--exclude-syncer", "nosuch"]);
    let err = usage_error(&out);
    assert_has(&err, "no syncer matches excluded name or prefix: nosuch");
    assert!(started(&env).is_empty());
    assert!(env.log_of("docker").is_empty());
}

// ---- the include's exclude_syncers input ----

#[test]
fn include_input_exclude_syncers_reaches_the_generator() {
    let text =
        fs::read_to_string(crate::common::repo_root().join("ci/mirrorer.gitlab-ci.yml")).unwrap();
    let docs: Vec<Value> = serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    assert_eq!(
        docs[0]["spec"]["inputs"]["exclude_syncers"]["default"],
        Value::String(String::new())
    );
    let job = crate::common::job_starting_with(&docs[1], "mirrorer:generate");
    let work = crate::common::Work::new();
    let config = crate::common::repo_root().join(EXAMPLE);
    let mut cmd = crate::common::job_script_command(&job, work.dir.path(), |value| match value {
        "$[[ inputs.config ]]" => config.display().to_string(),
        "$[[ inputs.mirrorer ]]" => env!("CARGO_BIN_EXE_mirrorer").to_owned(),
        "$[[ inputs.exclude_syncers ]]" => "debian, rpm".to_owned(),
        v if v.starts_with("$[[ inputs.") && v.contains("syncers") => String::new(),
        v if v.starts_with("$[[ inputs.") && v.contains("snapshot") => String::new(),
        v if v.starts_with("$[[ inputs.") => "false".to_owned(),
        v => v.to_owned(),
    });
    let status = cmd.status().unwrap();
    assert!(status.success());
    let child = fs::read_to_string(work.path("mirrorer-child.yml")).unwrap();
    check_pipeline(&child);
    assert_eq!(sync_jobs(&child), ["sync:epel", "sync:sles-x86_64"]);
}

// ---- pipeline trigger forwards the exclusion ----

#[cfg(feature = "gitlab")]
#[test]
fn trigger_forwards_the_exclusion_as_a_variable() {
    use httpmock::Method::POST;
    use httpmock::MockServer;
    let server = MockServer::start();
    let created = server.mock(|when, then| {
        when.method(POST)
            .path("/api/v4/projects/infra%2Fdist-mirror/trigger/pipeline")
            .form_urlencoded_tuple("variables[MIRRORER_SYNCERS_EXCLUDE]", "debian,rpm")
            .form_urlencoded_tuple_missing("variables[MIRRORER_SYNCERS]");
        then.status(201).json_body(serde_json::json!({
            "id": 7, "status": "created",
            "web_url": "https://gitlab.example.org/infra/dist-mirror/-/pipelines/7"
        }));
    });
    let trigger = |extra: &[&str]| {
        Run::bare()
            .env_remove("GITLAB_TOKEN")
            .env_remove("CI_SERVER_URL")
            .env_remove("CI_PROJECT_ID")
            .env("MIRRORER_TRIGGER_TOKEN", "glptt-EXCLUDETEST0123")
            .args(["pipeline", "trigger", "--url"])
            .arg(server.base_url())
            .args(["--ref", "main", "--project", "infra/dist-mirror"])
            .args(extra)
            .run()
    };
    let out = trigger(&["--exclude-syncer", "debian", "--exclude-syncer", "rpm"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    created.assert_calls(1);
    let err = usage_error(&trigger(&["--syncer", "epel", "--exclude-syncer", "rpm"]));
    assert_has_all(&err, &["--syncer", "--exclude-syncer"]);
    let err = usage_error(&trigger(&["--exclude-syncer", "a,b"]));
    assert_has(&err, "MIRRORER_SYNCERS_EXCLUDE");
    created.assert_calls(1);
}
