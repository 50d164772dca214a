//! `mirrorer check` through the real binary (issue 14): the plugin line
//! and exit code (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN) at each
//! threshold, from `--status FILE`, from the config's workdir, and from a
//! local HTTP server with `--url`.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::{Env, Run};
use chrono::{Duration as Age, Utc};
use httpmock::Method::GET;
use httpmock::MockServer;
use serde_json::{Value, json};

fn ago(hours: f64) -> String {
    let t = Utc::now() - Age::seconds((hours * 3600.0) as i64);
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A healthy status: newest snapshot 1 h old, two syncers that succeeded
/// 1 h ago, a passed verify, a clean scan.
fn healthy() -> Value {
    json!({
        "schema": "dist-mirror.status.v1",
        "shard": "shard1",
        "generated_at": ago(0.0),
        "syncers": {
            "alpha": {"last_attempt_at": ago(1.5), "last_success_at": ago(1.0), "last_duration_s": 60.0,
                      "attempts": 1, "exit_codes": ["0"], "status": "ok"},
            "beta": {"last_attempt_at": ago(1.5), "last_success_at": ago(1.0), "last_duration_s": 60.0,
                     "attempts": 1, "exit_codes": ["0"], "status": "ok"}
        },
        "stages": {},
        "snapshot": {"name": "20260101-000000", "created_at": ago(1.0)},
        "verify": {"snapshot": "20260101-000000", "status": "ok", "problems": 0, "repositories": {}},
        "promoted": null,
        "replica": null,
        "av_scan": {"at": ago(1.0), "result": "clean", "threats": 0, "files": 10},
        "snapshots_count": 3
    })
}

/// The plugin's exit code and its one output line.
struct Check {
    code: i32,
    line: String,
}

fn check_file(dir: &Path, status: &Value, args: &[&str]) -> Check {
    let path = dir.join("status.json");
    fs::write(&path, serde_json::to_string(status).unwrap()).unwrap();
    run(Run::bare()
        .arg("check")
        .arg("--status")
        .arg(&path)
        .args(args))
}

fn run(run: Run) -> Check {
    let out = run.run();
    let stdout = String::from_utf8(out.output.stdout).expect("UTF-8 stdout");
    assert_eq!(stdout.lines().count(), 1, "one line: {stdout:?}");
    Check {
        code: out.output.status.code().expect("an exit code"),
        line: stdout.trim_end().to_owned(),
    }
}

/// [`expect`] of [`check_file`]`(dir, status, &[])`: the default
/// thresholds.
fn expect_default(dir: &Path, status: &Value, code: i32, state: &str, needles: &[&str]) {
    expect(&check_file(dir, status, &[]), code, state, needles);
}

fn expect(run: &Check, code: i32, state: &str, needles: &[&str]) {
    assert_eq!(run.code, code, "{}", run.line);
    assert!(
        run.line.starts_with(&format!("MIRRORER {state} - ")),
        "{}",
        run.line
    );
    for n in needles {
        assert!(run.line.contains(n), "{n:?} not in {}", run.line);
    }
}

#[test]
fn ok_has_summary_and_perfdata() {
    let dir = tempfile::tempdir().unwrap();
    let r = check_file(dir.path(), &healthy(), &[]);
    expect(
        &r,
        0,
        "OK",
        &[
            "shard shard1",
            " | ",
            "snapshot_age=3600s;93600;180000;0",
            "snapshots=3;;;0",
            "syncers_failed=0;;;0",
            "syncer_alpha_age=3600s;93600;180000;0",
        ],
    );
}

#[test]
fn snapshot_age_at_each_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = healthy();
    // Default thresholds 26h / 50h.
    s["snapshot"]["created_at"] = json!(ago(25.0));
    expect_default(dir.path(), &s, 0, "OK", &[]);
    s["snapshot"]["created_at"] = json!(ago(27.0));
    expect_default(
        dir.path(),
        &s,
        1,
        "WARNING",
        &["newest snapshot 20260101-000000 is 1d3h old"],
    );
    s["snapshot"]["created_at"] = json!(ago(51.0));
    expect_default(dir.path(), &s, 2, "CRITICAL", &["is 2d3h old"]);
    // GitLab duration syntax for the thresholds.
    let limits = ["--warn-age", "90m", "--crit-age", "1d 2h"];
    s["snapshot"]["created_at"] = json!(ago(1.0));
    expect(
        &check_file(dir.path(), &s, &limits),
        0,
        "OK",
        &["snapshot_age=3600s;5400;93600;0"],
    );
    s["snapshot"]["created_at"] = json!(ago(2.0));
    expect(&check_file(dir.path(), &s, &limits), 1, "WARNING", &[]);
    s["snapshot"]["created_at"] = json!(ago(27.0));
    expect(&check_file(dir.path(), &s, &limits), 2, "CRITICAL", &[]);
    // No published snapshot at all.
    s["snapshot"] = Value::Null;
    expect_default(dir.path(), &s, 2, "CRITICAL", &["no published snapshot"]);
}

#[test]
fn the_promoted_snapshot_is_judged_before_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = healthy();
    s["promoted"] = json!({"name": "20251201-000000", "at": ago(1.0), "created_at": ago(60.0)});
    expect_default(
        dir.path(),
        &s,
        2,
        "CRITICAL",
        &["promoted snapshot 20251201-000000"],
    );
    s["promoted"]["created_at"] = json!(ago(2.0));
    expect_default(
        dir.path(),
        &s,
        0,
        "OK",
        &["promoted snapshot 20251201-000000"],
    );
}

#[test]
fn syncers_verify_and_threats() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = healthy();
    s["syncers"]["beta"]["last_success_at"] = json!(ago(30.0));
    s["syncers"]["beta"]["status"] = json!("failed");
    expect_default(
        dir.path(),
        &s,
        1,
        "WARNING",
        &[
            "syncer beta last succeeded 1d6h ago",
            "syncers_failed=1;;;0",
        ],
    );
    s["syncers"]["beta"]["last_success_at"] = json!(ago(55.0));
    expect_default(dir.path(), &s, 2, "CRITICAL", &["syncer beta"]);
    s["syncers"]["beta"]["last_success_at"] = Value::Null;
    expect_default(
        dir.path(),
        &s,
        2,
        "CRITICAL",
        &["syncer beta never succeeded"],
    );

    let mut s = healthy();
    s["verify"]["status"] = json!("failed");
    s["verify"]["problems"] = json!(4);
    expect_default(
        dir.path(),
        &s,
        2,
        "CRITICAL",
        &[
            "verify of 20260101-000000 failed (4 problems)",
            "verify_problems=4;;;0",
        ],
    );

    let mut s = healthy();
    s["av_scan"]["threats"] = json!(2);
    s["av_scan"]["result"] = json!("threats");
    expect_default(
        dir.path(),
        &s,
        2,
        "CRITICAL",
        &["antivirus found 2 threats", "av_threats=2;;0;0"],
    );
}

#[test]
fn hostile_text_cannot_break_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = healthy();
    s["shard"] = json!("evil|shard\nMIRRORER OK");
    s["syncers"]["bad name|x"] = s["syncers"]["alpha"].clone();
    s["syncers"]["bad name|x"]["last_success_at"] = json!(ago(30.0));
    let r = check_file(dir.path(), &s, &[]);
    expect(
        &r,
        1,
        "WARNING",
        &[
            "shard evil/shard",
            "syncer_bad_name_x_age=108000s",
            "syncer bad name/x last succeeded",
        ],
    );
    assert_eq!(r.line.matches('|').count(), 1, "{}", r.line);
}

#[test]
fn unreadable_status_is_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.json");
    expect(
        &run(Run::bare().arg("check").arg("--status").arg(&missing)),
        3,
        "UNKNOWN",
        &["does not exist"],
    );
    fs::write(dir.path().join("status.json"), "{broken").unwrap();
    let broken = Run::bare()
        .arg("check")
        .arg("--status")
        .arg(dir.path().join("status.json"));
    expect(&run(broken), 3, "UNKNOWN", &["is not a status document"]);
    let mut s = healthy();
    s["schema"] = json!("dist-mirror.other.v9");
    expect_default(dir.path(), &s, 3, "UNKNOWN", &["schema"]);
    expect(
        &check_file(dir.path(), &healthy(), &["--warn-age", "soon"]),
        3,
        "UNKNOWN",
        &["--warn-age"],
    );
    expect(
        &check_file(
            dir.path(),
            &healthy(),
            &["--warn-age", "2d", "--crit-age", "1d"],
        ),
        3,
        "UNKNOWN",
        &["shorter"],
    );
    // A directory planted where the file should be.
    let planted = Run::bare().arg("check").arg("--status").arg(dir.path());
    expect(&run(planted), 3, "UNKNOWN", &[]);
}

#[test]
fn the_configs_workdir_status_written_by_a_stage() {
    let env = Env::new();
    env.write_config(&env.default_config());
    let name = chrono::Local::now().format("%Y%m%d-%H%M%S").to_string();
    fs::create_dir_all(env.workdir().join(format!("repo/snapshots/{name}/debian"))).unwrap();
    env.run().arg("cleanup-state").success().run();
    expect(
        &run(env.run().arg("check")),
        0,
        "OK",
        &[&format!("newest snapshot {name}"), "snapshots=1;;;0"],
    );
    // No config: UNKNOWN, not the config exit code's meaning.
    let no_config = Run::bare().args(["--config", "/nonexistent/dist-mirror.yaml", "check"]);
    expect(&run(no_config), 3, "UNKNOWN", &["cannot load the config"]);
}

fn url_cmd(url: &str, extra: &[&str]) -> Run {
    Run::bare().args(["check", "--url", url]).args(extra)
}

#[test]
fn url_reads_a_remote_shard() {
    let server = MockServer::start();
    let mut s = healthy();
    s["av_scan"]["threats"] = json!(1);
    let ok = server.mock(|when, then| {
        when.method(GET).path("/metadata/status.json");
        then.status(200).json_body(s.clone());
    });
    let missing = server.mock(|when, then| {
        when.method(GET).path("/gone/status.json");
        then.status(404).body("not found");
    });
    let url = server.url("/metadata/status.json");
    expect(
        &run(url_cmd(&url, &[])),
        2,
        "CRITICAL",
        &["antivirus found 1 threats"],
    );
    ok.assert();
    // Credentials in the URL are sent, never shown.
    let with_auth = url.replacen("http://", "http://monitor:pw-S3CRET@", 1);
    let r = run(url_cmd(&with_auth.replace("/metadata/", "/gone/"), &[]));
    expect(&r, 3, "UNKNOWN", &["HTTP status 404"]);
    assert!(
        !r.line.contains("pw-S3CRET") && !r.line.contains("monitor:"),
        "{}",
        r.line
    );
    missing.assert();
    // Not a status document.
    server.mock(|when, then| {
        when.method(GET).path("/html");
        then.status(200).body("<html>");
    });
    expect(
        &run(url_cmd(&server.url("/html"), &[])),
        3,
        "UNKNOWN",
        &["is not a status document"],
    );
    // Only http(s).
    expect(
        &run(url_cmd("file:///etc/passwd", &[])),
        3,
        "UNKNOWN",
        &["http:// or https://"],
    );
}

#[test]
fn url_gives_up_after_the_timeout() {
    let server = MockServer::start();
    server.mock(|when, then| {
        when.method(GET).path("/slow");
        then.status(200)
            .delay(Duration::from_secs(20))
            .json_body(healthy());
    });
    let started = Instant::now();
    let r = run(url_cmd(&server.url("/slow"), &["--timeout", "1s"]));
    expect(&r, 3, "UNKNOWN", &["cannot read"]);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
}
