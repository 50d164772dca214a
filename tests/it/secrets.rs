//! Secrets in a syncer's `command_args` and in GitLab URLs never show in
//! any output of the real binary (`config check`, a `sync --dry-run` plan,
//! the error of a failed `sync`, the container's output, `pipeline
//! trigger`), while the program still gets them unchanged; and `pipeline
//! trigger` never takes a token to another origin through a redirect.

use std::fs;
use std::path::PathBuf;

use crate::common::{Env, Run, assert_has, assert_has_all, fakes_dir, stderr, stdout};

/// Every secret of the test config: none may appear in any output.
const SECRETS: &[&str] = &[
    "PW1-hunter2",
    "PW2-passwd",
    "TOK3-token",
    "SEC4-secret",
    "PW5-rsyncurl",
    "PW6-httpsurl",
    "KEY7-apikey",
];

/// `command_args` holding each secret in one of the forms a syncer takes.
const ARGS: &str = "[--verbose, --password, PW1-hunter2, --passwd=PW2-passwd, --token, TOK3-token, \
     --client-secret, SEC4-secret, 'rsync://mirror:PW5-rsyncurl@rsync.example/debian/', \
     '--source=https://user:PW6-httpsurl@mirror.example/x', --api-key, KEY7-apikey, --port, '873']";

fn log_file(env: &Env) -> PathBuf {
    env.root.join("logs/alpha.log")
}

/// The default config with one rsync syncer `alpha` whose `command_args`
/// are [`ARGS`], run by `docker`.
fn config(env: &Env, docker: &std::path::Path) -> String {
    env.write_file("etc/repos.yaml", "repos: []\n");
    fs::create_dir_all(env.docker_dir()).unwrap();
    let mut text = env.default_config();
    text.push_str(&format!("  docker: {}\n", docker.display()));
    text.push_str(&format!(
        "syncer:\n  - type: rsync\n    name: alpha\n    prefix: pa\n    repos: repos.yaml\n    image: registry.example/alpha:1\n    user: '1000:1000'\n    log_file: {}\n    command_args: {ARGS}\n",
        log_file(env).display()
    ));
    text
}

fn assert_no_secret(what: &str, text: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "{what}: secret {s} leaked:\n{text}");
    }
}

fn all_output(out: &std::process::Output) -> String {
    stdout(out) + &stderr(out)
}

/// stdout and stderr of `out` ([`all_output`]), asserted to hold no
/// secret ([`assert_no_secret`], `what` naming the run).
#[track_caller]
fn no_secret_in(what: &str, out: &std::process::Output) -> String {
    let text = all_output(out);
    assert_no_secret(what, &text);
    text
}

/// A new environment with [`config`] run by the fake docker.
fn fake_docker_env() -> Env {
    let env = Env::new();
    env.write_config(&config(&env, &fakes_dir().join("docker")));
    env
}

#[test]
fn config_check_masks_passwords_in_command_args() {
    let env = fake_docker_env();
    let out = env.run().args(["config", "check"]).success().run();
    let text = no_secret_in("config check", &out);
    // The shape stays readable: which option, which host.
    for shown in [
        "\"--password\", \"***\"",
        "\"--passwd=***\"",
        "\"--token\", \"***\"",
        "\"--client-secret\", \"***\"",
        "rsync://mirror:***@rsync.example/debian/",
        "--source=https://user:***@mirror.example/x",
        "\"--api-key\", \"***\"",
        "\"--port\", \"873\"",
    ] {
        assert!(text.contains(shown), "{shown} missing:\n{text}");
    }
}

#[test]
fn sync_dry_run_plan_masks_passwords() {
    let env = fake_docker_env();
    let out = env.sync_run().args(["--dry-run", "sync"]).success().run();
    let text = no_secret_in("sync --dry-run", &out);
    assert_has_all(
        &text,
        &[
            "registry.example/alpha:1 --verbose --password '***' '--passwd=***' --token '***'",
            "rsync://mirror:***@rsync.example/debian/",
        ],
    );
    assert!(env.log_of("docker").is_empty());
}

#[test]
fn failed_sync_error_masks_passwords_but_docker_gets_them() {
    let env = fake_docker_env();
    // `docker run` fails (exit 125): the error renders the command line.
    fs::write(env.docker_dir().join("alpha.runfail"), "").unwrap();
    let out = env.sync_run().arg("sync").code(1).run();
    let text = no_secret_in("failed sync", &out);
    assert_has_all(&text, &["--password '***'", "exited with 125"]);
    // The values reached docker unchanged.
    let run = env
        .log_of("docker")
        .into_iter()
        .find(|l| l.starts_with("docker run "))
        .expect("docker run called");
    assert_has(
        &run,
        "--password PW1-hunter2 --passwd=PW2-passwd --token TOK3-token --client-secret SEC4-secret rsync://mirror:PW5-rsyncurl@rsync.example/debian/",
    );
}

#[test]
fn container_output_echoing_its_arguments_is_masked() {
    let env = Env::new();
    // A syncer that prints its own command line, as rsync -v and many
    // scripts do: the real fake, plus one line per `logs`.
    let docker = env.write_executable(
        "docker",
        &format!(
            "#!/bin/bash\nif [ \"$1\" = logs ]; then echo \"running: rsync --password PW1-hunter2 rsync://mirror:PW5-rsyncurl@rsync.example/debian/\"; fi\nexec {} \"$@\"\n",
            fakes_dir().join("docker").display()
        ),
    );
    env.write_config(&config(&env, &docker));
    let out = env.sync_run().arg("sync").success().run();
    let text = no_secret_in("sync output", &out);
    assert_has(
        &text,
        "[alpha] running: rsync --password *** rsync://mirror:***@rsync.example/debian/",
    );
    let file = fs::read_to_string(log_file(&env)).unwrap();
    assert_no_secret("syncer log file", &file);
}

#[cfg(feature = "gitlab")]
mod trigger {
    use super::*;
    use crate::common::answer_any;
    use httpmock::Method::{GET, POST};
    use httpmock::MockServer;
    use serde_json::json;

    const TRIGGER_TOKEN: &str = "glptt-TRIGGERTOKEN0123";
    const ACCESS_TOKEN: &str = "glpat-ACCESSTOKEN4567";
    const URL_PASSWORD: &str = "URLPASSWORD89";

    fn trigger_run(url: &str) -> Run {
        crate::trigger::trigger_run_url(url).args(["--project", "42"])
    }

    fn assert_clean(out: &std::process::Output) {
        let text = all_output(out);
        for s in [TRIGGER_TOKEN, ACCESS_TOKEN, URL_PASSWORD] {
            assert!(!text.contains(s), "{s} leaked:\n{text}");
        }
    }

    #[test]
    fn a_password_in_the_url_is_masked_everywhere() {
        let server = MockServer::start();
        let any = answer_any(
            &server,
            201,
            Some(json!({"id": 1, "status": "created", "web_url": "u"})),
        );
        let url = format!("http://user:{URL_PASSWORD}@{}", server.address());
        for dry_run in [true, false] {
            let out = trigger_run(&url)
                .args(dry_run.then_some("--dry-run"))
                .args(["--trigger-token", TRIGGER_TOKEN])
                .stderr_has(format!("http://user:***@{}", server.address()))
                .run();
            assert_clean(&out);
            let err = stderr(&out);
            if !dry_run {
                assert_eq!(out.status.code(), Some(1), "{err}");
                assert_has(&err, "invalid GitLab URL");
            }
        }
        any.assert_calls(0);
    }

    #[test]
    fn a_cross_origin_redirect_does_not_carry_the_trigger_token() {
        let other = MockServer::start();
        let stolen = answer_any(
            &other,
            201,
            Some(json!({"id": 666, "status": "created", "web_url": "evil"})),
        );
        let server = MockServer::start();
        let target = format!(
            "http://thief:{URL_PASSWORD}@{}/api/v4/projects/42/trigger/pipeline",
            other.address()
        );
        let redirect = server.mock(|when, then| {
            when.method(POST)
                .path("/api/v4/projects/42/trigger/pipeline");
            then.status(307).header("Location", &target);
        });
        let out = trigger_run(&server.base_url())
            .args(["--trigger-token", TRIGGER_TOKEN])
            .code(1)
            .stderr_has("redirect")
            .stderr_has(format!(
                "http://thief:***@{}/api/v4/projects/42/trigger/pipeline",
                other.address()
            ))
            .run();
        redirect.assert_calls(1);
        stolen.assert_calls(0);
        assert_clean(&out);
    }

    #[test]
    fn a_cross_origin_redirect_does_not_carry_the_access_token() {
        let other = MockServer::start();
        let stolen = answer_any(&other, 200, Some(json!({"id": 1})));
        let server = MockServer::start();
        let target = format!("{}/api/v4/user", other.base_url());
        server.mock(|when, then| {
            when.method(GET).path("/api/v4/user");
            then.status(302).header("Location", &target);
        });
        let out = trigger_run(&server.base_url())
            .env("GITLAB_TOKEN", ACCESS_TOKEN)
            .code(1)
            .stderr_has(&target)
            .run();
        stolen.assert_calls(0);
        assert_clean(&out);
    }

    #[test]
    fn a_same_origin_redirect_is_followed() {
        let server = MockServer::start();
        let target = format!("{}/api/v4/projects/43/trigger/pipeline", server.base_url());
        server.mock(|when, then| {
            when.method(POST)
                .path("/api/v4/projects/42/trigger/pipeline");
            then.status(307).header("Location", &target);
        });
        let created = server.mock(|when, then| {
            when.method(POST)
                .path("/api/v4/projects/43/trigger/pipeline")
                .form_urlencoded_tuple("token", TRIGGER_TOKEN);
            then.status(201)
                .json_body(json!({"id": 5, "status": "created", "web_url": "u"}));
        });
        let out = trigger_run(&server.base_url())
            .args(["--trigger-token", TRIGGER_TOKEN])
            .success()
            .run();
        created.assert_calls(1);
        assert_clean(&out);
    }
}
