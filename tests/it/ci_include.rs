//! `ci/mirrorer.gitlab-ci.yml`, the parent-pipeline include: schema-valid,
//! and its `mirrorer:generate` script, with inputs interpolated as GitLab
//! does (`$[[ inputs.NAME ]]` in string values), passes the run-mode inputs
//! to the generator as flags. The script is run with `sh`, first with a
//! fake mirrorer that records its argv, then with the real binary.

use std::collections::BTreeMap;

use crate::common::{
    Work, check_pipeline, job_script_command, job_starting_with, repo_root, schema_validator,
};
use serde_json::Value;

fn documents() -> (Value, Value) {
    let text = std::fs::read_to_string(repo_root().join("ci/mirrorer.gitlab-ci.yml")).unwrap();
    let mut docs = serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect::<Vec<Value>>();
    assert_eq!(docs.len(), 2, "a spec header and the jobs");
    let jobs = docs.pop().unwrap();
    (docs.pop().unwrap(), jobs)
}

/// `s` with every `$[[ inputs.NAME ]]` replaced.
fn interpolate_str(s: &str, inputs: &BTreeMap<String, String>) -> String {
    let mut out = s.to_owned();
    while let Some(start) = out.find("$[[ inputs.") {
        let end = out[start..].find(" ]]").map(|e| start + e).expect("closed");
        let name = &out[start + "$[[ inputs.".len()..end];
        let v = inputs
            .get(name)
            .unwrap_or_else(|| panic!("no input {name}"));
        out.replace_range(start..end + 3, v);
    }
    out
}

/// Replaces `$[[ inputs.NAME ]]` in every string and mapping key (job
/// names carry the shard), with the given inputs or the defaults of the
/// spec header.
fn interpolate(value: &Value, inputs: &BTreeMap<String, String>) -> Value {
    match value {
        Value::String(s) => Value::String(interpolate_str(s, inputs)),
        Value::Array(items) => Value::Array(items.iter().map(|i| interpolate(i, inputs)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (interpolate_str(k, inputs), interpolate(v, inputs)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn inputs(header: &Value, given: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (name, spec) in header["spec"]["inputs"].as_object().unwrap() {
        let default = match &spec["default"] {
            Value::String(s) => Some(s.clone()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Null => None,
            other => panic!("{other}"),
        };
        if let Some(d) = default {
            out.insert(name.clone(), d);
        }
    }
    for (k, v) in given {
        out.insert((*k).to_owned(), (*v).to_owned());
    }
    out
}

#[test]
fn include_is_schema_valid_and_wires_generate_to_run() {
    let (header, jobs) = documents();
    let validator = schema_validator();
    for doc in [&header, &jobs] {
        let errors: Vec<String> = validator.iter_errors(doc).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{errors:#?}");
    }
    let jobs = interpolate(
        &jobs,
        &inputs(
            &header,
            &[("shard", "shard01"), ("runner_tag", "dm-shard01")],
        ),
    );
    assert!(validator.is_valid(&jobs));
    let run = &jobs["mirrorer:run:shard01"];
    assert_eq!(run["resource_group"], "dist-mirror-shard01");
    assert_eq!(run["trigger"]["strategy"], "depend");
    assert_eq!(
        run["trigger"]["include"][0]["artifact"],
        "mirrorer-child.yml"
    );
    assert_eq!(
        run["trigger"]["include"][0]["job"],
        "mirrorer:generate:shard01"
    );
    assert_eq!(run["needs"][0], "mirrorer:generate:shard01");
    assert_eq!(run["trigger"]["forward"]["pipeline_variables"], false);
    let generate = &jobs["mirrorer:generate:shard01"];
    assert_eq!(generate["tags"][0], "dm-shard01");
    assert_eq!(generate["artifacts"]["paths"][0], "mirrorer-child.yml");
}

/// A fleet repository includes the file once per shard: the job names
/// carry the shard, so two includes give four distinct jobs, each wired to
/// its own shard, and the merged pipeline is schema-valid.
#[test]
fn include_twice_for_two_shards_gives_distinct_wired_jobs() {
    let (header, jobs) = documents();
    let mut merged = serde_json::Map::new();
    merged.insert("stages".to_owned(), serde_json::json!(["deploy"]));
    for shard in ["shard01", "shard02"] {
        let tag = format!("dm-{shard}");
        let one = interpolate(
            &jobs,
            &inputs(&header, &[("shard", shard), ("runner_tag", &tag)]),
        );
        for (name, job) in one.as_object().unwrap() {
            assert!(
                merged.insert(name.clone(), job.clone()).is_none(),
                "{name} collides"
            );
        }
    }
    let merged = Value::Object(merged);
    let errors: Vec<String> = schema_validator()
        .iter_errors(&merged)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let names: Vec<&str> = merged
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .filter(|k| *k != "stages")
        .collect();
    assert_eq!(
        names,
        [
            "mirrorer:generate:shard01",
            "mirrorer:generate:shard02",
            "mirrorer:run:shard01",
            "mirrorer:run:shard02"
        ]
    );
    for shard in ["shard01", "shard02"] {
        let run = &merged[format!("mirrorer:run:{shard}")];
        let generate = format!("mirrorer:generate:{shard}");
        assert_eq!(run["needs"], serde_json::json!([generate]));
        assert_eq!(run["trigger"]["include"][0]["job"], generate.as_str());
        assert_eq!(run["resource_group"], format!("dist-mirror-{shard}"));
        assert_eq!(merged[&generate]["tags"][0], format!("dm-{shard}"));
        assert_eq!(merged[&generate]["stage"], "deploy");
    }
    // A shard name that cannot be part of a job name is refused by the
    // input's regex.
    let regex = header["spec"]["inputs"]["shard"]["regex"].as_str().unwrap();
    assert_eq!(regex, "^[A-Za-z0-9_.-]{1,64}$");
}

/// Runs the interpolated generate script in `work` with `bin` as the
/// mirrorer program; returns the exit status.
fn run_generate(work: &Work, given: &[(&str, &str)]) -> std::process::ExitStatus {
    let (header, jobs) = documents();
    let jobs = interpolate(&jobs, &inputs(&header, given));
    let job = job_starting_with(&jobs, "mirrorer:generate:");
    let mut cmd = job_script_command(&job, work.dir.path(), str::to_owned);
    cmd.env("ARGV_LOG", work.path("argv"));
    cmd.status().unwrap()
}

fn recorded_argv(work: &Work) -> Vec<String> {
    let bytes = std::fs::read(work.path("argv")).unwrap();
    std::fs::remove_file(work.path("argv")).unwrap();
    let mut args: Vec<String> = bytes
        .split(|b| *b == 0)
        .map(|a| String::from_utf8(a.to_vec()).unwrap())
        .collect();
    assert_eq!(args.pop().as_deref(), Some(""));
    args
}

#[test]
fn run_mode_inputs_reach_the_generator_as_flags() {
    let work = Work::new();
    let fake = work.write_executable(
        "bin/fake mirrorer",
        "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\0' \"$a\" >> \"$ARGV_LOG\"; done\n",
    );
    let fake = fake.display().to_string();
    let base = [
        ("shard", "s1"),
        ("runner_tag", "t1"),
        ("mirrorer", fake.as_str()),
        ("config", "/etc/dm/dm $x.yaml"),
    ];
    let head = [
        "--config",
        "/etc/dm/dm $x.yaml",
        "pipeline",
        "generate",
        "--output",
        "mirrorer-child.yml",
    ];
    type Inputs<'a> = Vec<(&'a str, &'a str)>;
    let cases: Vec<(Inputs, Vec<&str>)> = vec![
        (vec![], vec![]),
        (
            vec![("snapshot", "20260603-120000")],
            vec!["--snapshot", "20260603-120000"],
        ),
        (
            vec![("syncers", "debian, rpm *")],
            vec!["--syncer", "debian", "--syncer", "rpm", "--syncer", "*"],
        ),
        (vec![("publish_all", "true")], vec!["--publish-all"]),
        (vec![("catalog_rebuild", "true")], vec!["--catalog-rebuild"]),
        (
            vec![("skip_remote", "true"), ("dry_run", "true")],
            vec!["--skip-remote", "--dry-run"],
        ),
        (vec![("skip_remote", "false"), ("dry_run", "false")], vec![]),
    ];
    for (given, flags) in cases {
        let all: Vec<(&str, &str)> = base.iter().copied().chain(given.iter().copied()).collect();
        assert!(run_generate(&work, &all).success(), "{given:?}");
        let want: Vec<&str> = head.iter().copied().chain(flags.iter().copied()).collect();
        assert_eq!(recorded_argv(&work), want, "{given:?}");
    }
}

#[test]
fn generate_job_with_the_real_binary_writes_a_valid_child_pipeline() {
    let work = Work::new();
    let bin = assert_cmd::cargo::cargo_bin("mirrorer");
    let config = repo_root().join("examples/dist-mirror.yaml");
    let status = run_generate(
        &work,
        &[
            ("shard", "s1"),
            ("runner_tag", "t1"),
            ("mirrorer", &bin.display().to_string()),
            ("config", &config.display().to_string()),
            ("syncers", "debian,epel"),
            ("skip_remote", "true"),
        ],
    );
    assert!(status.success());
    let text = std::fs::read_to_string(work.path("mirrorer-child.yml")).unwrap();
    let doc = check_pipeline(&text);
    assert!(doc.get("sync:debian").is_some() && doc.get("sync:epel").is_some());
    assert!(doc.get("sync:rpm").is_none());
    assert!(
        doc["replicate"]["script"][0]
            .as_str()
            .unwrap()
            .contains(" --skip-remote replicate")
    );
}

#[test]
fn the_projects_own_gitlab_ci_is_schema_valid() {
    let text = std::fs::read_to_string(repo_root().join(".gitlab-ci.yml")).unwrap();
    let doc: Value = serde_yaml::from_str(&text).unwrap();
    let errors: Vec<String> = schema_validator()
        .iter_errors(&doc)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert!(
        doc["test"]["script"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l == "ci/test.sh")
    );
}
