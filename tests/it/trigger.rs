//! `mirrorer pipeline trigger` against a local HTTP server standing in for
//! the GitLab API (httpmock): the exact requests for both kinds of token,
//! the run mode as variables, `--wait`, and no token in any output.

use crate::common::{Expect, Run, answer_any, assert_has_all, stderr, stdout, wait_for};
use httpmock::Method::{GET, POST};
use httpmock::MockServer;
use serde_json::json;

const TRIGGER_TOKEN: &str = "glptt-TRIGGERSECRET0123";
const ACCESS_TOKEN: &str = "glpat-ACCESSSECRET4567";

/// `pipeline trigger --url <url> --ref main` (no token in the environment).
pub(crate) fn trigger_run_url(url: &str) -> Run {
    Run::bare()
        .args(["pipeline", "trigger", "--url", url])
        .args(["--ref", "main"])
}

fn trigger_run(server: &MockServer) -> Run {
    trigger_run_url(&server.base_url())
}

fn assert_no_token(out: &std::process::Output) {
    let all = stdout(out) + &stderr(out);
    assert!(!all.contains("SECRET"), "a token leaked:\n{all}");
}

#[test]
fn trigger_token_sends_form_with_run_mode_variables() {
    let server = MockServer::start();
    let created = server.mock(|when, then| {
        when.method(POST)
            .path("/api/v4/projects/infra%2Fdist-mirror/trigger/pipeline")
            .header("content-type", "application/x-www-form-urlencoded")
            .header_missing("private-token")
            .form_urlencoded_tuple("token", TRIGGER_TOKEN)
            .form_urlencoded_tuple("ref", "main")
            .form_urlencoded_tuple("variables[MIRRORER_SNAPSHOT]", "20260603-120000")
            .form_urlencoded_tuple("variables[MIRRORER_SKIP_REMOTE]", "true")
            .form_urlencoded_tuple_missing("variables[MIRRORER_DRY_RUN]");
        then.status(201).json_body(json!({
            "id": 4711, "status": "created",
            "web_url": "https://gitlab.example.org/infra/dist-mirror/-/pipelines/4711"
        }));
    });
    let out = trigger_run(&server)
        .args([
            "--project",
            "infra/dist-mirror",
            "--snapshot",
            "20260603-120000",
            "--skip-remote",
        ])
        .env("MIRRORER_TRIGGER_TOKEN", TRIGGER_TOKEN)
        .success()
        .run();
    created.assert_calls(1);
    assert_eq!(
        stdout(&out),
        "{\"id\": 4711, \"status\": \"created\", \"web_url\": \"https://gitlab.example.org/infra/dist-mirror/-/pipelines/4711\"}\n"
    );
    assert!(
        stderr(&out).contains("pipeline_created id=4711"),
        "{}",
        stderr(&out)
    );
    assert_no_token(&out);
}

#[test]
fn access_token_creates_a_pipeline_with_variables() {
    let server = MockServer::start();
    let user = server.mock(|when, then| {
        when.method(GET)
            .path("/api/v4/user")
            .header("private-token", ACCESS_TOKEN);
        then.status(200)
            .json_body(json!({"id": 1, "username": "bot"}));
    });
    let created = server.mock(|when, then| {
        when.method(POST)
            .path("/api/v4/projects/42/pipeline")
            .header("private-token", ACCESS_TOKEN)
            .form_urlencoded_tuple("ref", "main")
            .form_urlencoded_tuple("variables[][key]", "MIRRORER_SYNCERS")
            .form_urlencoded_tuple("variables[][value]", "debian,rpm")
            .form_urlencoded_tuple("variables[][variable_type]", "env_var");
        then.status(201)
            .json_body(json!({"id": 7, "status": "pending", "web_url": "http://gl/p/7"}));
    });
    let out = trigger_run(&server)
        .args(["--project", "42", "--syncer", "debian", "--prefix", "rpm"])
        .env("GITLAB_TOKEN", ACCESS_TOKEN)
        .success()
        .run();
    user.assert_calls(1);
    created.assert_calls(1);
    assert!(stdout(&out).contains("\"id\": 7"));
    assert_no_token(&out);
}

#[test]
fn each_mode_is_sent_as_the_variable_generate_reads() {
    for (args, var, value) in [
        (vec!["--publish-all"], "MIRRORER_PUBLISH_ALL", "true"),
        (
            vec!["--catalog-rebuild"],
            "MIRRORER_CATALOG_REBUILD",
            "true",
        ),
        (vec!["--dry-run"], "MIRRORER_DRY_RUN", "true"),
    ] {
        let server = MockServer::start();
        let created = server.mock(|when, then| {
            when.method(POST)
                .path("/api/v4/projects/42/trigger/pipeline")
                .form_urlencoded_tuple(format!("variables[{var}]"), value);
            then.status(201)
                .json_body(json!({"id": 1, "status": "created", "web_url": "u"}));
        });
        let out = trigger_run(&server)
            .args(["--project", "42", "--trigger-token", TRIGGER_TOKEN])
            .args(&args)
            .success()
            .run();
        created.assert_calls(1);
        assert_no_token(&out);
    }
}

#[test]
fn values_are_validated_before_anything_is_sent() {
    let server = MockServer::start();
    let any = answer_any(&server, 500, None);
    for args in [
        vec!["--snapshot", "../x"],
        vec!["--snapshot", "x", "--publish-all"],
        vec!["--syncer", "a,b"],
        vec!["--poll-interval", "-1", "--wait"],
    ] {
        let out = trigger_run(&server)
            .args(["--project", "42"])
            .args(&args)
            .env("GITLAB_TOKEN", ACCESS_TOKEN)
            .code(2)
            .run();
        assert_no_token(&out);
    }
    // No credentials at all, and --wait with only a trigger token.
    trigger_run(&server)
        .args(["--project", "42"])
        .code(2)
        .stderr_has("GITLAB_TOKEN")
        .run();
    let out = trigger_run(&server)
        .args([
            "--project",
            "42",
            "--wait",
            "--trigger-token",
            TRIGGER_TOKEN,
        ])
        .code(2)
        .run();
    assert_no_token(&out);
    any.assert_calls(0);
}

#[test]
fn api_errors_exit_1_without_leaking_the_token() {
    let server = MockServer::start();
    let denied = server.mock(|when, then| {
        when.method(POST)
            .path("/api/v4/projects/42/trigger/pipeline");
        then.status(404)
            .json_body(json!({"message": "404 Project Not Found"}));
    });
    let out = trigger_run(&server)
        .args(["--project", "42", "--trigger-token", TRIGGER_TOKEN])
        .code(1)
        .run();
    denied.assert_calls(1);
    let err = stderr(&out);
    assert_has_all(
        &err,
        &["create a pipeline for 42 at main", "404 Project Not Found"],
    );
    assert_no_token(&out);
}

#[test]
fn dry_run_sends_nothing() {
    let server = MockServer::start();
    let any = answer_any(&server, 500, None);
    let out = Run::bare()
        .args(["--dry-run", "pipeline", "trigger", "--url"])
        .arg(server.base_url())
        .args([
            "--ref",
            "main",
            "--project",
            "42",
            "--publish-all",
            "--trigger-token",
            TRIGGER_TOKEN,
        ])
        .success()
        .stderr_has("variables=\"MIRRORER_PUBLISH_ALL=true\"")
        .run();
    any.assert_calls(0);
    assert_no_token(&out);
}

/// Runs `trigger --wait`; while it polls, the pipeline goes from `running`
/// to `final_status`. Returns the process output.
fn wait_until(final_status: &str) -> std::process::Output {
    let server = MockServer::start();
    server.mock(|when, then| {
        when.method(GET).path("/api/v4/user");
        then.status(200).json_body(json!({"id": 1}));
    });
    server.mock(|when, then| {
        when.method(POST).path("/api/v4/projects/42/pipeline");
        then.status(201)
            .json_body(json!({"id": 9, "status": "created", "web_url": "http://gl/p/9"}));
    });
    let mut running = server.mock(|when, then| {
        when.method(GET).path("/api/v4/projects/42/pipelines/9");
        then.status(200)
            .json_body(json!({"id": 9, "status": "running", "web_url": "http://gl/p/9"}));
    });
    let child = trigger_run(&server)
        .env("GITLAB_TOKEN", ACCESS_TOKEN)
        .args(["--project", "42", "--wait"])
        .args(["--poll-interval", "0.1", "--wait-timeout", "30"])
        .command()
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("a status read", 20, || running.calls() >= 2);
    running.delete();
    let body = json!({"id": 9, "status": final_status, "web_url": "http://gl/p/9"});
    server.mock(|when, then| {
        when.method(GET).path("/api/v4/projects/42/pipelines/9");
        then.status(200).json_body(body);
    });
    child.wait_with_output().unwrap()
}

#[test]
fn wait_follows_the_pipeline_to_success() {
    let out = Expect::new()
        .success()
        .stderr_has("pipeline_status id=9 status=running")
        .stderr_has("pipeline_succeeded id=9 status=success")
        .check("mirrorer", wait_until("success"));
    assert_no_token(&out);
}

#[test]
fn wait_exits_1_when_the_pipeline_fails() {
    let out = Expect::new()
        .code(1)
        .stderr_has("pipeline 9 ended with status failed: http://gl/p/9")
        .check("mirrorer", wait_until("failed"));
    assert_no_token(&out);
}
