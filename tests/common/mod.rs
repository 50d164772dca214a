//! The one harness of the integration tests: a temp work directory, files
//! and fake programs in it, and the real `mirrorer` binary run with a clean
//! environment (no CI=true, no MIRRORER_* variables from the caller).

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;

use serde_json::Value;
use std::path::{Path, PathBuf};

/// The repository root (where Cargo.toml is).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A temp work directory that is removed at the end of the test.
pub struct Work {
    pub dir: tempfile::TempDir,
}

impl Work {
    pub fn new() -> Work {
        Work {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// `rel` inside the work directory.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes `content` to `rel` (parents created) and returns its path.
    pub fn write(&self, rel: &str, content: &str) -> PathBuf {
        let path = self.path(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent");
        }
        std::fs::write(&path, content).expect("write file");
        path
    }

    /// Writes an executable script to `rel` and returns its path.
    pub fn write_executable(&self, rel: &str, content: &str) -> PathBuf {
        let path = self.write(rel, content);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }

    /// The real binary, started in the work directory with a clean environment.
    pub fn mirrorer(&self) -> assert_cmd::Command {
        let mut cmd = mirrorer();
        cmd.current_dir(self.dir.path());
        cmd
    }
}

/// Variables the binary reads that a caller's environment must not leak in.
pub const CLEARED_VARIABLES: &[&str] = &[
    "CI",
    "CI_JOB_URL",
    "GITLAB_CI",
    "MIRRORER_CONFIG",
    "MIRRORER_SYNCERS",
    "MIRRORER_SNAPSHOT",
    "MIRRORER_PUBLISH_ALL",
    "MIRRORER_CATALOG_REBUILD",
    "MIRRORER_SKIP_REMOTE",
    "MIRRORER_DRY_RUN",
    "DIST_MIRROR_SHARD",
    "DIST_MIRROR_REPO_CATALOG_SHARD",
];

/// The real binary with a clean environment, started in the repository root.
pub fn mirrorer() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("mirrorer").expect("binary");
    for var in CLEARED_VARIABLES {
        cmd.env_remove(var);
    }
    for (key, _) in std::env::vars() {
        if key.starts_with("MIRRORER_TOOL_") {
            cmd.env_remove(key);
        }
    }
    cmd.current_dir(repo_root());
    cmd
}

/// stdout of a finished command as text.
pub fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// stderr of a finished command as text.
pub fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Names of the entries of `dir`, sorted.
pub fn list_dir(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

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
