//! `av-scan` with the real ClamAV (Debian packages `clamav`,
//! `clamav-daemon`, `clamdscan`): a custom signature database (an MD5
//! `.hdb` signature of a test file, no download), `clamscan -d <db>` and
//! `clamdscan` against a `clamd` started here on a local socket with that
//! database. Checks detections, files not scanned (size limit, vanished),
//! the report, exit 5, and an engine failure.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::common::{Env, assert_has, wait_for};

const PAYLOAD: &str = "mirrorer av-scan test payload: not a virus\n";
const SIGNATURE: &str = "Mirrorer.Test.Payload";

/// `<root>/clamdb/test.hdb`: the MD5 signature of [`PAYLOAD`]
/// (`md5:size:name`, the ClamAV hash signature format).
fn write_db(env: &Env) -> PathBuf {
    let md5 = Command::new("md5sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin
                .take()
                .expect("stdin")
                .write_all(PAYLOAD.as_bytes())?;
            c.wait_with_output()
        })
        .expect("md5sum");
    let md5 = String::from_utf8_lossy(&md5.stdout)
        .split_whitespace()
        .next()
        .expect("md5")
        .to_owned();
    env.write_file(
        "clamdb/test.hdb",
        &format!("{md5}:{}:{SIGNATURE}\n", PAYLOAD.len()),
    )
}

/// The mirror: the default clean files, the payload, and a file over the
/// 1 KiB size limit the tests set.
fn write_mirror(env: &Env) {
    env.write_file("mirror/pool/evil.deb", PAYLOAD);
    env.write_file("mirror/pool/big.iso", &"x".repeat(5000));
}

/// The test database ([`write_db`]) and the config scanning with
/// `clamscan -d <db>` and `fail_on_threats: true`.
fn write_clamscan_failing_on_threats(env: &Env) {
    let db = write_db(env);
    let args = vec!["-d".to_owned(), db.display().to_string()];
    env.write_config(&clamav_config(
        env,
        "clamscan",
        &args,
        "  fail_on_threats: true\n",
    ));
}

fn clamav_config(env: &Env, command: &str, args: &[String], extra: &str) -> String {
    let args = args
        .iter()
        .map(|a| format!("\"{a}\""))
        .collect::<Vec<_>>()
        .join(", ");
    env.av_config(
        2,
        2,
        &format!("  engine: clamav\n  clamav_command: {command}\n  clamav_args: [{args}]\n{extra}"),
    )
}

fn expected_report(env: &Env) -> String {
    let m = env.mount();
    format!(
        "{m}/pool/evil.deb: {SIGNATURE}.UNOFFICIAL FOUND\n\
         {m}/pool/big.iso: NOT SCANNED (scan limit exceeded: Heuristics.Limits.Exceeded.MaxFileSize)\n",
        m = m.display()
    )
}

#[test]
fn clamscan_detects_reports_and_exits_5_only_when_asked() {
    let env = Env::new();
    let db = write_db(&env);
    write_mirror(&env);
    let args = vec![
        "-d".to_owned(),
        db.display().to_string(),
        "--max-filesize=1k".to_owned(),
    ];
    env.write_config(&clamav_config(&env, "clamscan", &args, ""));
    env.run()
        .arg("av-scan")
        .success()
        .stderr_has("av_threat_found")
        .stderr_has(format!("signature={SIGNATURE}.UNOFFICIAL"))
        .stderr_has("av_file_not_scanned")
        .stderr_has("av_threats_found")
        .run();
    let reports = env.av_reports();
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(
        fs::read_to_string(&reports[0]).expect("report"),
        expected_report(&env)
    );
    let done = fs::read_to_string(env.av_state("done")).expect("done");
    assert_has(&done, "files=5 threats=true report=");

    // Rerun: nothing is scanned again; the recorded threats give exit 5
    // when asked for.
    env.run()
        .arg("--fail-on-threats")
        .arg("av-scan")
        .code(5)
        .stderr_has("av_scan_already_done")
        .run();

    // A clean mirror with the same engine: exit 0 even with fail_on_threats.
    let env = Env::new();
    write_clamscan_failing_on_threats(&env);
    env.run().arg("av-scan").success().run();
    assert!(env.av_reports().is_empty());
    let done = fs::read_to_string(env.av_state("done")).expect("done");
    assert_has(&done, "files=3 threats=false report=-");
}

#[test]
fn clamscan_with_fail_on_threats_exits_5() {
    let env = Env::new();
    write_clamscan_failing_on_threats(&env);
    env.write_file("mirror/pool/evil.deb", PAYLOAD);
    env.run()
        .arg("av-scan")
        .code(5)
        .stderr_has("antivirus threats found")
        .run();
    let report = fs::read_to_string(&env.av_reports()[0]).expect("report");
    assert_eq!(
        report,
        format!(
            "{}/pool/evil.deb: {SIGNATURE}.UNOFFICIAL FOUND\n",
            env.mount().display()
        )
    );
}

#[test]
fn a_vanished_file_is_not_a_finding_and_a_broken_engine_fails_the_stage() {
    // A list resumed as is (written by hand, as the previous tool did):
    // one clean file, one that no longer exists.
    let env = Env::new();
    write_clamscan_failing_on_threats(&env);
    let clean = env
        .mount()
        .join("apt/mirror/deb.debian.org/debian/pool/main/h/hello.deb");
    env.write_file(
        "work/state/av_state/files_to_scan.txt",
        &format!("{}\n{}/gone.deb\n", clean.display(), env.mount().display()),
    );
    env.run()
        .arg("av-scan")
        .success()
        .stderr_has("av_file_vanished")
        .stderr_has("av_scan_start_time_from_list")
        .run();
    assert!(env.av_reports().is_empty());

    // A database that cannot be loaded: exit 2 and no result line.
    let env = Env::new();
    let args = vec![
        "-d".to_owned(),
        env.root.join("no-db").display().to_string(),
    ];
    env.write_config(&clamav_config(&env, "clamscan", &args, ""));
    env.run()
        .arg("av-scan")
        .code(1)
        .stderr_has("exited with 2")
        .stderr_has("clamscan --no-summary --alert-exceeds-max=yes -d")
        .run();
    assert!(!env.av_state("done").exists());
}

/// A `clamd` on a local socket under the test's root; stopped on drop.
struct Clamd {
    child: Child,
    conf: PathBuf,
}

impl Drop for Clamd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_clamd(env: &Env, db: &Path) -> Clamd {
    let dbdir = env.root.join("clamd-db");
    fs::create_dir_all(&dbdir).expect("db dir");
    fs::copy(db, dbdir.join("test.hdb")).expect("copy db");
    let socket = env.root.join("clamd.sock");
    let conf = env.write_file(
        "clamd.conf",
        &format!(
            "Foreground yes\nLocalSocket {}\nDatabaseDirectory {}\nTemporaryDirectory {}\n\
             LogFile {}\nMaxFileSize 1K\nAlertExceedsMax yes\n",
            socket.display(),
            dbdir.display(),
            env.root.join("tmp").display(),
            env.root.join("clamd.log").display(),
        ),
    );
    let program = ["/usr/sbin/clamd", "/usr/local/sbin/clamd"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("clamd");
    let child = Command::new(program)
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start clamd (Debian package clamav-daemon)");
    let clamd = Clamd { child, conf };
    wait_for(&format!("clamd to open {}", socket.display()), 60, || {
        socket.exists()
    });
    clamd
}

#[test]
fn clamdscan_against_a_local_clamd() {
    let env = Env::new();
    let db = write_db(&env);
    write_mirror(&env);
    let clamd = start_clamd(&env, &db);
    let args = vec![format!("--config-file={}", clamd.conf.display())];
    env.write_config(&clamav_config(
        &env,
        "clamdscan",
        &args,
        "  fail_on_threats: true\n",
    ));
    env.run().arg("av-scan").code(5).run();
    let reports = env.av_reports();
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(
        fs::read_to_string(&reports[0]).expect("report"),
        expected_report(&env)
    );
    drop(clamd);

    // The daemon is gone: exit 2 without results fails the stage, and the
    // scan resumes later.
    let env = Env::new();
    let args = vec![format!(
        "--config-file={}",
        env.root.join("clamd.conf").display()
    )];
    env.write_file(
        "clamd.conf",
        &format!("LocalSocket {}\n", env.root.join("nobody.sock").display()),
    );
    env.write_config(&clamav_config(&env, "clamdscan", &args, ""));
    env.run()
        .arg("av-scan")
        .code(1)
        .stderr_has("Could not connect to clamd")
        .run();
    assert!(env.av_state("files_to_scan.txt").exists());
}
