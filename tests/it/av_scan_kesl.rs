//! `av-scan` with the KESL engine (the fake `kesl-control`) and the fake
//! `zfs`: what is listed, the batch and query command lines, the state
//! files, threats and exit 5, a scanner failure and the resume after it.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;

use crate::common::{EICAR_ANSWER, Env, assert_has, fakes_dir};

const SCAN_PREFIX: &str = "kesl-control --scan-file --action DisinfectInformIfNotPossible ";

/// The file arguments of every batch call in `fake.log` (paths without
/// blanks only).
fn batches(env: &Env) -> Vec<Vec<String>> {
    env.log_of("kesl-control")
        .iter()
        .filter_map(|l| l.strip_prefix(SCAN_PREFIX))
        .map(|rest| rest.split(' ').map(str::to_owned).collect())
        .collect()
}

/// How often each file was passed to a batch call.
fn scan_counts(env: &Env) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for batch in batches(env) {
        for f in batch {
            *counts.entry(f).or_insert(0) += 1;
        }
    }
    counts
}

fn start_time(env: &Env) -> String {
    fs::read_to_string(env.av_state("scan_start_time.txt"))
        .expect("scan_start_time.txt")
        .trim_end()
        .to_owned()
}

/// Asserts that no kesl-control ran and no list of files to scan was
/// written.
#[track_caller]
fn assert_nothing_scanned(env: &Env) {
    assert!(env.log_of("kesl-control").is_empty());
    assert!(!env.av_state("files_to_scan.txt").exists());
}

#[test]
fn scans_what_zfs_diff_reports_as_added_or_modified_regular_files() {
    let env = Env::with_av_config(2, 2, "");
    env.make_snapshot("20260101-000000");
    let m = env.mount();
    let m = m.display();
    env.write_file(
        "mirror/apt/mirror/deb.debian.org/debian/pool/main/h/hello.deb",
        "deb v2",
    );
    env.write_file("mirror/new/added.rpm", "rpm");
    env.write_file("mirror/new/with space.deb", "deb");
    let odd_names: [&[u8]; 2] = [b"nl\nname", b"\xff.bin"];
    for name in odd_names {
        let path = env.mount().join("new").join(OsStr::from_bytes(name));
        fs::write(&path, "x").expect("write odd name");
    }
    fs::remove_file(
        env.mount()
            .join("dnf/repos/centos/9/BaseOS/x86_64/os/repodata/repomd.xml"),
    )
    .expect("remove");
    std::os::unix::fs::symlink("new/added.rpm", env.mount().join("link")).expect("symlink");
    // Lines a plain directory cannot produce: a rename onto an unchanged
    // file, an extended attribute, a modified file that is gone, a
    // "file" that is a directory now.
    let extra = format!(
        "R\tF\t{m}/old-Release\t{m}/apt/mirror/deb.debian.org/debian/dists/bookworm/Release\n\
         +\tF\t{m}/new/added.rpm/<xattrdir>/user.checksum\n\
         M\tF\t{m}/gone.deb\n\
         M\tF\t{m}/new"
    );
    env.run()
        .env("FAKE_ZFS_DIFF_EXTRA", &extra)
        .arg("av-scan")
        .success()
        .stderr_has("av_checkpoint_saved scanned=")
        .stderr_has("av_scan_finished")
        .stderr_lacks("av_threats_found")
        .run();

    // The list: the fake prints in byte order of the relative paths;
    // special bytes are escaped, a non-UTF-8 byte is kept as is.
    let mut expected = Vec::new();
    for rel in [
        &b"apt/mirror/deb.debian.org/debian/pool/main/h/hello.deb"[..],
        b"new/added.rpm",
        b"new/nl\\012name",
        b"new/with space.deb",
        b"new/\xff.bin",
    ] {
        expected.extend_from_slice(format!("{m}/").as_bytes());
        expected.extend_from_slice(rel);
        expected.push(b'\n');
    }
    env.assert_scan_list(&expected);

    // Commands: the newest snapshot's diff, 3 batches of at most 2 files
    // with the real (unescaped) paths, then the threat query.
    assert_eq!(
        env.log_of("zfs"),
        vec![
            "zfs list -t snapshot -o name -H",
            "zfs diff -H -F -- tank/mirror@20260101-000000"
        ]
    );
    let log = fs::read(env.log_path()).expect("log");
    let text = String::from_utf8_lossy(&log);
    assert_eq!(text.matches(SCAN_PREFIX).count(), 3, "{text}");
    for rel in [
        &b"new/nl\nname"[..],
        b"new/with space.deb",
        b"new/\xff.bin",
        b"hello.deb",
    ] {
        assert!(
            log.windows(rel.len()).any(|w| w == rel),
            "{} not scanned:\n{text}",
            String::from_utf8_lossy(rel)
        );
    }
    assert!(!text.contains("Release"), "{text}");
    assert!(!text.contains("xattrdir"), "{text}");
    assert!(!text.contains("gone.deb"), "{text}");
    let start = start_time(&env);
    assert!(chrono_like(&start), "scan_start_time.txt holds {start:?}");
    let query =
        format!("kesl-control -E --query EventType == 'ThreatDetected' and Date > '{start}'");
    assert_eq!(text.lines().last(), Some(query.as_str()), "{text}");

    // State: done, a compacted journal, no report.
    let done = fs::read_to_string(env.av_state("done")).expect("done");
    assert_has(&done, "files=5 threats=false report=-");
    let journal = fs::read_to_string(env.av_state("journal")).expect("journal");
    assert_eq!(
        journal,
        format!(
            "mirrorer-av-journal 1 lines=5 bytes={}\nB\t0\t5\tclean\n",
            expected.len()
        )
    );
    assert!(env.av_reports().is_empty());

    // A finished scan is not repeated ...
    let calls = env.log_of("kesl-control").len();
    env.run()
        .arg("av-scan")
        .success()
        .stderr_has("av_scan_already_done")
        .run();
    assert_eq!(env.log_of("kesl-control").len(), calls);

    // ... until cleanup-state.
    env.run().arg("cleanup-state").success().run();
    assert_eq!(
        fs::read_dir(env.state().join("av_state"))
            .expect("av_state")
            .count(),
        0
    );
    env.run().arg("av-scan").success().run();
    assert_eq!(batches(&env).len(), 6);
}

fn chrono_like(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 19
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b' ',
            13 | 16 => *c == b':',
            _ => c.is_ascii_digit(),
        })
}

#[test]
fn without_a_snapshot_every_regular_file_is_scanned() {
    let env = Env::with_av_config(1, 100, "");
    std::os::unix::fs::symlink("/etc/passwd", env.mount().join("link")).expect("symlink");
    env.run().arg("av-scan").success().run();
    let m = env.mount();
    let m = m.display();
    assert_eq!(
        batches(&env),
        vec![vec![
            format!("{m}/apt/mirror/deb.debian.org/debian/dists/bookworm/Release"),
            format!("{m}/apt/mirror/deb.debian.org/debian/pool/main/h/hello.deb"),
            format!("{m}/dnf/repos/centos/9/BaseOS/x86_64/os/repodata/repomd.xml"),
        ]]
    );
    assert_eq!(env.log_of("zfs"), vec!["zfs list -t snapshot -o name -H"]);
}

#[test]
fn no_change_since_the_snapshot_is_nothing_to_do() {
    let env = Env::with_av_config(2, 10, "");
    env.make_snapshot("20260101-000000");
    env.run()
        .arg("av-scan")
        .success()
        .stderr_has("av_scan_skipped_no_files")
        .run();
    assert_nothing_scanned(&env);
}

#[test]
fn exit_72_and_a_query_answer_are_threats_exit_5_only_when_asked() {
    // Exit 72 and an answer: a report; exit 0 without fail_on_threats.
    let env = Env::new();
    env.av_scan_finding_eicar()
        .success()
        .stderr_has("WARNING  mirrorer::stages::av_scan: av_batch_threat")
        .stderr_has("av_threats_reported")
        .stderr_has("av_threats_found")
        .run();
    let reports = env.av_reports();
    assert_eq!(reports.len(), 1, "{reports:?}");
    let name = reports[0]
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    assert!(
        name.starts_with("av_report_") && name.ends_with(".txt") && name.len() == 29,
        "{name}"
    );
    assert_eq!(
        fs::read_to_string(&reports[0]).expect("report"),
        format!("{EICAR_ANSWER}\n")
    );
    // The recorded outcome decides a rerun: exit 5 when asked for.
    env.run()
        .arg("--fail-on-threats")
        .arg("av-scan")
        .code(5)
        .stderr_has("av_scan_already_done")
        .stderr_has("stage_failed")
        .run();

    // Exit 72 with an empty answer is still a threat; config on, flag off.
    let env = Env::with_av_config(2, 1, "  fail_on_threats: true\n");
    env.run()
        .env("FAKE_KESL_THREAT_MATCH", "repomd.xml")
        .arg("av-scan")
        .code(5)
        .run();
    assert!(env.av_reports().is_empty());
    env.run()
        .arg("--allow-threats")
        .arg("av-scan")
        .success()
        .run();

    // An answer without any exit 72 is a threat too.
    let env = Env::with_av_config(2, 1, "  fail_on_threats: true\n");
    env.run()
        .env("FAKE_KESL_QUERY_OUTPUT", EICAR_ANSWER)
        .arg("av-scan")
        .code(5)
        .run();
    assert_eq!(env.av_reports().len(), 1);

    // Clean: exit 0 even with fail_on_threats.
    let env = Env::with_av_config(2, 1, "  fail_on_threats: true\n");
    env.run().arg("av-scan").success().run();
}

#[test]
fn a_failed_batch_stops_the_scan_and_the_rerun_resumes_it() {
    let env = Env::with_av_config(2, 3, "");
    for i in 0..20 {
        env.write_file(&format!("mirror/f/file{i:02}"), "x");
    }
    env.run()
        .env("FAKE_KESL_FAIL_MATCH", "file10")
        .arg("av-scan")
        .code(1)
        .stderr_has("av_batch_failed")
        .stderr_has("fake kesl-control: cannot scan")
        .stderr_has("exited with 1")
        .run();
    assert!(!env.av_state("done").exists());
    let failed: Vec<String> = batches(&env)
        .into_iter()
        .find(|b| b.iter().any(|f| f.ends_with("file10")))
        .expect("the failing batch ran");
    let first_run = batches(&env).len();
    assert!(
        first_run < 8,
        "the scan went on after the failure: {first_run}"
    );

    env.run()
        .arg("av-scan")
        .success()
        .stderr_has("av_scan_resume")
        .run();
    let counts = scan_counts(&env);
    assert_eq!(counts.len(), 23, "{counts:?}");
    for (file, n) in &counts {
        let want = if failed.contains(file) { 2 } else { 1 };
        assert_eq!(*n, want, "{file} scanned {n} times: {counts:?}");
    }
    assert!(env.av_state("done").exists());
}

#[test]
fn dry_run_lists_and_plans_without_scanning_or_writing() {
    let env = Env::with_av_config(2, 2, "");
    env.run()
        .arg("--dry-run")
        .arg("av-scan")
        .success()
        .stderr_has("dry_run_write")
        .stderr_has("files_to_scan.txt")
        .stderr_has("dry_run_command")
        .stderr_has(format!(
            "{}/kesl-control --scan-file",
            fakes_dir().display()
        ))
        .run();
    assert_nothing_scanned(&env);
}

#[test]
fn missing_scanner_is_reported_before_anything_runs() {
    let env = Env::with_av_config(2, 2, "");
    env.run()
        .env("MIRRORER_TOOL_KESL_CONTROL", "/nonexistent/kesl-control")
        .arg("av-scan")
        .code(1)
        .stderr_has("kesl_control (/nonexistent/kesl-control: does not exist; from MIRRORER_TOOL_KESL_CONTROL)")
        .run();
    assert!(env.log().is_empty());
}

/// `sync` with the fake docker (one rsync syncer), as in tests/sync_fake.rs.
fn sync(env: &Env) {
    fs::create_dir_all(env.docker_dir()).expect("docker dir");
    env.sync_run().arg("sync").success().run();
}

#[test]
fn a_sync_outdates_a_finished_or_unfinished_scan() {
    let env = Env::new();
    env.write_file("etc/repos.yaml", "repos: []\n");
    let config = env.av_config(2, 2, "").replacen(
        "tools:\n",
        &format!(
            "syncer:\n  - {{type: rsync, name: epel, repos: repos.yaml, image: e2e/rsync, log_file: {}/epel.log}}\ntools:\n  docker: {}/docker\n",
            env.root.display(),
            fakes_dir().display()
        ),
        1,
    );
    env.write_config(&config);
    env.run().arg("av-scan").success().run();
    let first = scan_counts(&env);
    assert!(!first.is_empty());
    assert!(env.av_state("done").is_file());

    // Rerun without a sync: nothing is scanned again.
    env.run().arg("av-scan").success().run();
    assert_eq!(scan_counts(&env), first);

    // A sync (a failed pipeline's next night) marks the mirror changed; the
    // finished scan is not trusted and a new list is made.
    sync(&env);
    assert!(env.av_state("mirror_changed").is_file());
    env.write_file("mirror/new/after-sync.rpm", "rpm");
    env.run()
        .arg("av-scan")
        .success()
        .stderr_has("av_scan_list_outdated")
        .stderr_lacks("av_scan_already_done")
        .run();
    let counts = scan_counts(&env);
    let new_file = env.mount().join("new/after-sync.rpm").display().to_string();
    assert_eq!(counts.get(&new_file), Some(&1), "the new file was scanned");
    assert!(
        first.keys().all(|f| counts[f] == 2),
        "every file was scanned again"
    );
    assert!(
        !env.av_state("mirror_changed").exists(),
        "the marker is consumed"
    );
    assert!(env.av_state("done").is_file());

    // An unfinished list is outdated by a sync too.
    fs::remove_file(env.av_state("done")).expect("remove done");
    sync(&env);
    env.run().arg("av-scan").success().run();
    let again = scan_counts(&env);
    assert!(counts.iter().all(|(f, n)| again[f] == n + 1), "{again:?}");
}
