//! The Prometheus textfile through the real binary and the real tools
//! (issue 14): `metrics.textfile_dir` makes every stage write
//! `mirrorer.prom` atomically; `promtool check metrics` accepts it; a real
//! `prometheus-node-exporter` started here on a free loopback port with its
//! textfile collector serves the metrics, then is stopped (a drop guard
//! kills it, so no process outlives the test).

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{Env, assert_has, assert_has_all};

fn config(env: &Env, textfile_dir: &Path) -> String {
    let head = env.sync_config_head();
    // The metrics section goes before the syncer list the head ends with.
    let mut text = head.replacen(
        "\nsyncer:\n",
        &format!(
            "\nmetrics:\n  textfile_dir: {}\nsyncer:\n",
            textfile_dir.display()
        ),
        1,
    );
    for name in ["alpha", "beta"] {
        text.push_str(&format!(
            "  - type: rsync\n    name: {name}\n    prefix: {name}\n    repos: repos.yaml\n    image: registry.example/{name}:1\n    user: '1000:1000'\n    log_file: {log}\n",
            log = env.root.join(format!("logs/{name}.log")).display(),
        ));
    }
    text
}

/// A workdir after a sync with one failing syncer, a snapshot, published
/// snapshots, a failed verify, a promotion: every metric has a value.
fn populated() -> (Env, PathBuf) {
    let env = Env::new();
    let dir = env.root.join("textfile");
    fs::create_dir_all(&dir).unwrap();
    env.write_config(&config(&env, &dir));
    fs::write(env.docker_dir().join("beta.exits"), "1").unwrap();
    env.write_published_workdir(3);
    env.sync_run().arg("sync").code(1).run();
    env.run().arg("snapshot").success().run();
    (env, dir)
}

#[test]
fn every_stage_writes_the_textfile_and_promtool_accepts_it() {
    let (_env, dir) = populated();
    let prom = dir.join("mirrorer.prom");
    let text = fs::read_to_string(&prom).expect("mirrorer.prom written");
    for line in [
        "# TYPE mirrorer_syncer_up gauge",
        "mirrorer_syncer_up{syncer=\"alpha\"} 1",
        "mirrorer_syncer_up{syncer=\"beta\"} 0",
        "# HELP mirrorer_snapshots ",
        "mirrorer_snapshots 2",
        "mirrorer_verify_problems{repository=\"debian/bookworm\"} 3",
    ] {
        assert!(text.contains(line), "{line:?} missing in:\n{text}");
    }
    for name in [
        "mirrorer_syncer_last_success_timestamp_seconds{syncer=\"alpha\"}",
        "mirrorer_syncer_last_duration_seconds{syncer=\"beta\"}",
        "mirrorer_stage_last_success_timestamp_seconds{stage=\"snapshot\"}",
        "mirrorer_stage_last_duration_seconds{stage=\"sync\"}",
        "mirrorer_promoted_snapshot_timestamp_seconds ",
    ] {
        assert!(text.contains(name), "{name:?} missing in:\n{text}");
    }
    // beta never succeeded: no success timestamp of 0 for it.
    assert!(!text.contains("mirrorer_syncer_last_success_timestamp_seconds{syncer=\"beta\"}"));
    // Atomic: nothing but the file itself is left in the directory.
    let names: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["mirrorer.prom"]);

    let out = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(fs::File::open(&prom).unwrap())
        .output()
        .expect("promtool (Debian package prometheus) is installed");
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).trim().is_empty()
            && String::from_utf8_lossy(&out.stderr).trim().is_empty(),
        "promtool found problems: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Kills and reaps the exporter when dropped, whatever the test did.
struct Exporter(Child);

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET /metrics` over plain HTTP/1.0; `None` while nothing answers.
fn scrape(port: u16) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .ok()?;
    let mut body = String::new();
    stream.read_to_string(&mut body).ok()?;
    body.starts_with("HTTP/1.0 200").then_some(body)
}

#[test]
fn node_exporter_serves_the_metrics() {
    let (_env, dir) = populated();
    let mut served = None;
    // The port is free when picked; another process could take it before
    // the exporter binds it, so try a few.
    for _ in 0..3 {
        let port = free_port();
        let child = Command::new("prometheus-node-exporter")
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--collector.disable-defaults")
            .arg("--collector.textfile")
            .arg(format!("--collector.textfile.directory={}", dir.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus-node-exporter is installed");
        let mut exporter = Exporter(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(body) = scrape(port) {
                served = Some(body);
                break;
            }
            if exporter.0.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        drop(exporter);
        if served.is_some() {
            break;
        }
    }
    let body = served.expect("node_exporter answered /metrics");
    assert_has_all(
        &body,
        &[
            "mirrorer_syncer_up{syncer=\"alpha\"} 1",
            "mirrorer_snapshots 2",
            "mirrorer_verify_problems{repository=\"debian/bookworm\"} 3",
        ],
    );
    // The collector read the file without error.
    assert_has(&body, "node_textfile_scrape_error 0");
}

#[test]
fn a_missing_textfile_dir_is_a_warning_not_a_failure() {
    let env = Env::new();
    let dir = env.root.join("no-such-dir");
    env.write_config(&config(&env, &dir));
    env.run()
        .arg("cleanup-state")
        .success()
        .stderr_has("metrics_not_written")
        .run();
    assert!(env.workdir().join("metadata/status.json").exists());
}

/// A killed run leaves its temp file; the next write removes it, and only
/// it: other collectors' files and a symlink named like ours stay.
#[test]
fn a_killed_runs_temp_file_is_removed_by_the_next_write() {
    let env = Env::new();
    let dir = env.root.join("textfile");
    fs::create_dir_all(&dir).unwrap();
    env.write_config(&config(&env, &dir));
    let stale = dir.join(".mirrorer.prom.Ab12Cd.tmp");
    fs::write(&stale, "mirrorer_snapshots 1\n").unwrap();
    let other = dir.join(".other.prom.Ab12Cd.tmp");
    fs::write(&other, "x").unwrap();
    let target = env.root.join("keep-me");
    fs::write(&target, "x").unwrap();
    let link = dir.join(".mirrorer.prom.link.tmp");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    env.run()
        .arg("cleanup-state")
        .success()
        .stderr_has("stale_metrics_temp_file_removed")
        .run();
    assert!(!stale.exists());
    assert!(other.exists() && target.exists());
    assert!(
        link.symlink_metadata().is_ok(),
        "the symlink is not ours to remove"
    );
    assert!(dir.join("mirrorer.prom").is_file());
}

#[test]
fn a_relative_textfile_dir_is_a_config_error() {
    let env = Env::new();
    let text = config(&env, Path::new("relative/dir"));
    env.write_config(&text);
    env.run()
        .arg("cleanup-state")
        .code(3)
        .stderr_has("metrics.textfile_dir")
        .run();
}
