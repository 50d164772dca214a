//! The lifecycle in the child pipeline (`pipeline generate` through the real
//! binary, every output checked against GitLab's CI schema): the `promote`
//! job and its GitLab environment, the snapshot job's dotenv report that
//! never expires, republish with `--promote` / `MIRRORER_PROMOTE`, the
//! nightly `prune` job only with a `retention` section (and the warning
//! without one), and the config checks of both sections.

use crate::common::{Run, Work, assert_has, check_pipeline, job_names, job_needs, repo_root};
use serde_json::Value;

const EXAMPLE: &str = "examples/dist-mirror.yaml";

/// The example config plus `extra` top-level YAML, in a temp directory.
fn config(work: &Work, extra: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(repo_root().join(EXAMPLE)).unwrap();
    work.write("dist-mirror.yaml", &format!("{text}\n{extra}"))
}

fn generate(
    work: &Work,
    extra: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> (Value, String, Vec<String>) {
    let out = Run::bare()
        .config_file(config(work, extra))
        .args(["pipeline", "generate"])
        .args(args)
        .envs(env.iter().copied())
        .success()
        .run();
    (
        check_pipeline(&out.stdout),
        out.stderr,
        job_names(&out.stdout),
    )
}

#[test]
fn promote_job_declares_the_environment_and_the_dotenv_never_expires() {
    let work = Work::new();
    let (doc, _, names) = generate(
        &work,
        "pipeline:\n  environment:\n    name: mirror/shard01\n    url: https://shard01.example/repo/current/\n",
        &[],
        &[],
    );
    let promote = &doc["promote"];
    assert_eq!(promote["stage"], "publish");
    assert_eq!(
        job_needs(&doc, "promote"),
        ["snapshot", "publish-snapshot", "verify"]
    );
    assert_eq!(promote["environment"]["name"], "mirror/shard01");
    assert_eq!(
        promote["environment"]["url"],
        "https://shard01.example/repo/current/"
    );
    assert_eq!(promote["environment"]["action"], "start");
    assert!(
        promote["script"][0]
            .as_str()
            .unwrap()
            .ends_with(r#"promote --snapshot "$MIRRORER_SNAPSHOT""#)
    );
    assert_eq!(doc["snapshot"]["artifacts"]["expire_in"], "never");
    // Only promote deploys.
    for job in names {
        if job != "promote" {
            assert!(doc[&job].get("environment").is_none(), "{job}");
        }
    }
}

#[test]
fn prune_runs_last_only_with_retention_and_its_absence_warns() {
    let work = Work::new();
    let (_, err, names) = generate(&work, "", &[], &[]);
    assert!(!names.contains(&"prune".to_owned()));
    assert_has(&err, "pipeline_no_retention");

    let (doc, err, names) = generate(&work, "retention:\n  keep_last: 2\n", &[], &[]);
    assert!(!err.contains("pipeline_no_retention"), "{err}");
    assert_eq!(names.last().unwrap(), "prune");
    assert_eq!(doc["prune"]["stage"], "cleanup");
    assert_eq!(job_needs(&doc, "prune"), ["cleanup-state", "promote"]);
    assert!(
        doc["prune"]["script"][0]
            .as_str()
            .unwrap()
            .ends_with(" prune")
    );
    // Not in the other modes.
    let (_, _, names) = generate(
        &work,
        "retention:\n  keep_last: 2\n",
        &["--publish-all"],
        &[],
    );
    assert!(!names.contains(&"prune".to_owned()));
}

#[test]
fn republish_promotes_only_when_asked() {
    let work = Work::new();
    let snap = "20260603-120000";
    let (_, _, names) = generate(&work, "", &["--snapshot", snap], &[]);
    assert!(!names.contains(&"promote".to_owned()));
    for (args, env) in [
        (&["--snapshot", snap, "--promote"][..], &[][..]),
        (
            &["--snapshot", snap][..],
            &[("MIRRORER_PROMOTE", "true")][..],
        ),
        (
            &[][..],
            &[("MIRRORER_SNAPSHOT", snap), ("MIRRORER_PROMOTE", "yes")][..],
        ),
    ] {
        let (doc, _, names) = generate(&work, "", args, env);
        assert_eq!(
            names,
            [
                "verify",
                "publish-snapshot",
                "publish-inventory",
                "publish-catalog",
                "promote"
            ],
            "{args:?} {env:?}"
        );
        assert_eq!(job_needs(&doc, "promote"), ["publish-snapshot", "verify"]);
        assert!(
            doc["promote"]["script"][0]
                .as_str()
                .unwrap()
                .ends_with(&format!("promote --snapshot {snap}"))
        );
    }
}

#[test]
fn bad_retention_and_environment_are_config_errors() {
    let work = Work::new();
    let environment = |lines: &str| format!("pipeline:\n  environment:\n{lines}");
    for (extra, needle) in [
        ("retention: {}\n".to_owned(), "keeps nothing by rule"),
        (
            "retention:\n  keep_daily: -1\n".to_owned(),
            "retention.keep_daily",
        ),
        (
            "retention:\n  keep_last: 1\n  keep: [../x]\n".to_owned(),
            "retention.keep[0]",
        ),
        (
            "retention:\n  keep_last: 1\n  max_prune_per_run: lots\n".to_owned(),
            "retention.max_prune_per_run",
        ),
        (
            environment("    name: \"$CI_X\"\n"),
            "pipeline.environment.name",
        ),
        (environment("    url: https://x\n"), "needs a name"),
        (
            environment("    name: m\n    url: \"javascript:x\"\n"),
            "pipeline.environment.url",
        ),
    ] {
        Run::bare()
            .config_file(config(&work, &extra))
            .args(["config", "check"])
            .code(3)
            .stderr_has(needle)
            .run();
    }
}
