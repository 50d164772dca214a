//! `mirrorer fleet collect` through the real binary against local HTTP
//! servers (httpmock): a fresh shard (behind basic auth in its URL), a stale
//! one (with a hostile prefix name), a broken one (invalid JSON, 500), and
//! one that does not answer. `fleet.json` is snapshot-tested (times, ages and
//! ports filtered); the HTML is checked for every shard and prefix and for
//! escaping; no password anywhere; exit 1 only when no shard answered; a bad
//! `fleet.yaml` is exit 3 with line and column.

#![cfg(feature = "fleet")]

use crate::common::{Run, Work, assert_has, assert_has_all};
use chrono::{Duration, Utc};
use httpmock::Method::GET;
use httpmock::MockServer;
use serde_json::{Value, json};

fn iso(ago: Duration) -> String {
    (Utc::now() - ago).format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn inventory(latest: &str, prefixes: &[&str]) -> Value {
    json!({
        "schema": "dist-mirror.inventory.v1",
        "latest": latest,
        "prefixes_by_snapshot": {
            "20200101-000000": ["debian"],
            latest: prefixes,
        }
    })
}

fn status(snapshot: &str, created: &str, syncer_success: &str) -> Value {
    json!({
        "schema": "dist-mirror.status.v1",
        "shard": "whatever",
        "generated_at": created,
        "syncers": {
            "debian": {"last_success_at": syncer_success, "status": "ok", "attempts": 1},
            "epel": {"last_success_at": null, "status": "failed"}
        },
        "stages": {"sync": {"status": "ok"}},
        "snapshot": {"name": snapshot, "created_at": created},
        "promoted": {"name": snapshot, "at": created},
        "a_field_from_the_future": {"x": 1}
    })
}

/// A closed local port: nothing answers there.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

struct Fleet {
    fresh: MockServer,
    stale: MockServer,
    broken: MockServer,
    down_port: u16,
}

fn servers() -> Fleet {
    let fresh = MockServer::start();
    let stale = MockServer::start();
    let broken = MockServer::start();
    let created = iso(Duration::hours(1));
    fresh.mock(|when, then| {
        when.method(GET)
            .path("/metadata/inventory.json")
            .header("authorization", "Basic dXNlcjpTRUNSRVRQVw==");
        then.status(200)
            .json_body(inventory("20260603-120000", &["debian", "epel", "rpm"]));
    });
    fresh.mock(|when, then| {
        when.method(GET)
            .path("/metadata/status.json")
            .header("authorization", "Basic dXNlcjpTRUNSRVRQVw==");
        then.status(200)
            .json_body(status("20260603-120000", &created, &created));
    });
    let old = iso(Duration::days(10));
    stale.mock(|when, then| {
        when.method(GET).path("/metadata/inventory.json");
        then.status(200)
            .json_body(inventory("20260520-120000", &["debian", "<b>x</b>"]));
    });
    stale.mock(|when, then| {
        when.method(GET).path("/metadata/status.json");
        then.status(200)
            .json_body(status("20260520-120000", &old, &old));
    });
    broken.mock(|when, then| {
        when.method(GET).path("/metadata/inventory.json");
        then.status(200)
            .body("{\"schema\": \"dist-mirror.inventory.v1\", ");
    });
    broken.mock(|when, then| {
        when.method(GET).path("/metadata/status.json");
        then.status(500).body("oops");
    });
    Fleet {
        fresh,
        stale,
        broken,
        down_port: closed_port(),
    }
}

fn fleet_yaml(f: &Fleet) -> String {
    format!(
        "shards:\n\
         \x20 - name: fresh01\n    metadata_url: http://user:SECRETPW@127.0.0.1:{}/metadata/\n\
         \x20 - name: stale02\n    metadata_url: {}/metadata\n\
         \x20 - name: broken03\n    metadata_url: {}/metadata/\n\
         \x20 - name: down04\n    metadata_url: http://127.0.0.1:{}/metadata/\n\
         freshness:\n  snapshot_max_age_hours: 26\n  syncer_max_age_hours: 48\n\
         fetch:\n  timeout_seconds: 5\n  retries: 1\n",
        f.fresh.port(),
        f.stale.base_url(),
        f.broken.base_url(),
        f.down_port,
    )
}

/// `fleet collect` of the fleet file `fleet` into `<work>/out`, not yet run
/// (the caller adds the exit code and the stderr it expects).
fn collect(work: &Work, fleet: &str) -> Run {
    let path = work.write("fleet.yaml", fleet);
    Run::bare()
        .args(["fleet", "collect", "--fleet"])
        .arg(path)
        .arg("--output-dir")
        .arg(work.path("out"))
}

#[test]
fn collects_fresh_stale_broken_and_down_shards() {
    let f = servers();
    let work = Work::new();
    let out = collect(&work, &fleet_yaml(&f)).success().run();
    let err = out.stderr.clone();
    let json_text = std::fs::read_to_string(work.path("out/fleet.json")).unwrap();
    let html = std::fs::read_to_string(work.path("out/index.html")).unwrap();
    for text in [&json_text, &html, &err] {
        assert!(!text.contains("SECRETPW"), "a password leaked:\n{text}");
    }
    let doc: Value = serde_json::from_str(&json_text).unwrap();
    let states: Vec<&str> = doc["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["fresh", "stale", "invalid", "down"]);
    assert_eq!(
        doc["prefixes"]["debian"]["shards"],
        json!(["fresh01", "stale02"])
    );
    assert_eq!(doc["prefixes"]["debian"]["fresh"], json!(["fresh01"]));
    crate::common::assert_snapshot(
        "fleet_json",
        &json_text,
        vec![
            (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ".to_owned(), "[TIME]"),
            (r#""age_s": \d+"#.to_owned(), r#""age_s": "[AGE]""#),
            (r"127\.0\.0\.1:\d+".to_owned(), "[HOST]"),
        ],
    );
    // The page: every shard and every prefix, escaped, no script.
    for shard in ["fresh01", "stale02", "broken03", "down04"] {
        assert!(
            html.contains(&format!("<th class=\"shard\">{shard}</th>")),
            "{shard}"
        );
    }
    for prefix in ["debian", "epel", "rpm", "&lt;b&gt;x&lt;/b&gt;"] {
        assert!(
            html.contains(&format!("<th class=\"prefix\">{prefix}</th>")),
            "{prefix}"
        );
    }
    assert!(!html.contains("<b>x</b>"));
    assert!(!html.contains("<script"));
    assert!(html.contains("<td class=\"fresh\" title=\"fresh01: debian\">fresh</td>"));
    assert!(html.contains("<td class=\"stale\" title=\"stale02: debian\">stale</td>"));
    assert!(html.contains("<td class=\"absent\" title=\"fresh01: &lt;b&gt;x&lt;/b&gt;\">-</td>"));
    assert_has(&html, "<td class=\"invalid\">invalid: not JSON");
    assert_has_all(
        &err,
        &[
            "fleet_shard_down shard=down04",
            "fleet_collected shards=4 answered=2 fresh=1",
        ],
    );
    // No temp file left behind.
    assert_eq!(
        crate::common::list_dir(&work.path("out")),
        ["fleet.json", "index.html"]
    );
}

#[test]
fn no_shard_answering_is_exit_1_with_the_files_written() {
    let work = Work::new();
    let port = closed_port();
    collect(
        &work,
        &format!(
            "shards:\n  - {{name: a, metadata_url: 'http://127.0.0.1:{port}/metadata/'}}\nfetch: {{retries: 0}}\n"
        ),
    )
    .code(1)
    .stderr_has("no shard answered")
    .run();
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(work.path("out/fleet.json")).unwrap())
            .unwrap();
    assert_eq!(doc["summary"]["answered"], json!(0));
}

#[test]
fn a_bad_fleet_file_is_exit_3_naming_key_line_and_column() {
    let work = Work::new();
    let out = collect(
        &work,
        "shards:\n  - name: ok1\n    metadata_url: http://h/metadata/\n  - name: 'bad name'\n    metadata_url: ftp://h/\n  - name: ok1\n    metadata_url: http://h/\n",
    )
    .code(3)
    .run();
    let err = out.stderr;
    assert_has_all(
        &err,
        &[
            "shards[1].name",
            "line=4",
            "shards[1].metadata_url",
            "line=5",
            "shards[2].name",
            "listed twice",
        ],
    );
    assert!(!work.path("out").exists());
    collect(&work, "shards: [\n").code(3).run();
    collect(&work, "shards: []\n").code(3).run();
}

#[test]
fn status_json_is_read_leniently() {
    let missing = MockServer::start();
    let odd = MockServer::start();
    for server in [&missing, &odd] {
        server.mock(|when, then| {
            when.method(GET).path("/metadata/inventory.json");
            then.status(200)
                .json_body(inventory("20260603-120000", &["debian"]));
        });
    }
    missing.mock(|when, then| {
        when.method(GET).path("/metadata/status.json");
        then.status(404);
    });
    // Every field of another type, unknown fields, no schema.
    odd.mock(|when, then| {
        when.method(GET).path("/metadata/status.json");
        then.status(200).json_body(json!({
            "generated_at": 12,
            "syncers": {"debian": "ok", "epel": {"last_success_at": "yesterday"}},
            "snapshot": ["20260603-120000"],
            "promoted": {"name": 7},
            "new_in_v2": {"anything": true}
        }));
    });
    let work = Work::new();
    collect(
        &work,
        &format!(
            "shards:\n  - {{name: missing, metadata_url: '{}/metadata/'}}\n  - {{name: odd, metadata_url: '{}/metadata/'}}\n",
            missing.base_url(),
            odd.base_url()
        ),
    )
    .success()
    .run();
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(work.path("out/fleet.json")).unwrap())
            .unwrap();
    let shards = doc["shards"].as_array().unwrap();
    assert_eq!(shards[0]["status"]["state"], "missing");
    assert_eq!(shards[0]["answered"], true);
    assert_eq!(shards[0]["state"], "unknown");
    assert_eq!(shards[0]["prefixes"], json!({"debian": null}));
    assert_eq!(shards[1]["status"]["state"], "ok");
    assert_eq!(shards[1]["state"], "unknown");
    assert_eq!(shards[1]["promoted"], Value::Null);
    assert_eq!(shards[1]["status_generated_at"], Value::Null);
    assert_eq!(
        shards[1]["syncers"]["epel"],
        json!({"age_s": null, "fresh": null, "last_success_at": "yesterday", "status": null})
    );
    assert_eq!(shards[1]["syncers"]["debian"]["status"], Value::Null);
}
