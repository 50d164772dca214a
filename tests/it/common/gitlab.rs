//! GitLab's CI JSON schema (`tests/schema/`) and the checks every rendered
//! child pipeline passes.

use std::collections::BTreeSet;

use serde_json::Value;

use super::repo_root;

/// GitLab's CI JSON schema (tests/schema/gitlab-ci.json), compiled.
pub fn schema_validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("tests/schema/gitlab-ci.json")).unwrap(),
    )
    .unwrap();
    jsonschema::validator_for(&schema).expect("GitLab CI schema compiles")
}

/// A child pipeline that is schema-valid, every job's stage declared, every `needs` a job of the
/// same pipeline, every job with one script line. Returns the parsed doc.
pub fn check_pipeline(text: &str) -> Value {
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
            "verify",
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

/// The job names of the child pipeline `text`, in file order (every top-level
/// key but `stages`, `workflow`, `default` and `variables`).
pub fn job_names(text: &str) -> Vec<String> {
    let doc: serde_yaml::Mapping = serde_yaml::from_str(text).unwrap();
    doc.keys()
        .filter_map(|k| k.as_str())
        .filter(|k| !["stages", "workflow", "default", "variables"].contains(k))
        .map(str::to_owned)
        .collect()
}

/// The `needs` of `job` in the parsed child pipeline `doc`, in order.
pub fn job_needs(doc: &Value, job: &str) -> Vec<String> {
    doc[job]["needs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_owned())
        .collect()
}

/// The first job of the parsed CI file `jobs` whose name starts with
/// `prefix`; panics when there is none.
pub fn job_starting_with(jobs: &Value, prefix: &str) -> Value {
    jobs.as_object()
        .unwrap()
        .iter()
        .find(|(name, _)| name.starts_with(prefix))
        .map(|(_, job)| job.clone())
        .unwrap_or_else(|| panic!("no job named {prefix}*"))
}

/// `sh -c <first script line of job>` in `dir`, with a clean environment
/// ([`super::clear_environment`]) and each of the job's `variables` set to
/// `value_of(<its value in the CI file>)` (an input placeholder replaced).
pub fn job_script_command(
    job: &Value,
    dir: &std::path::Path,
    value_of: impl Fn(&str) -> String,
) -> std::process::Command {
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg(job["script"][0].as_str().unwrap())
        .current_dir(dir);
    super::clear_environment(&mut cmd);
    for (name, v) in job["variables"].as_object().unwrap() {
        let value = v.get("value").unwrap_or(v).as_str().unwrap();
        cmd.env(name, value_of(value));
    }
    cmd
}
