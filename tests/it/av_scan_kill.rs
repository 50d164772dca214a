//! `av-scan` killed with SIGKILL in the middle of a large list, twice, then
//! resumed to the end: no file is skipped, and only the batches that were
//! not yet checkpointed when the process died are scanned again.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::{Env, Expect, kill, wait_for};

const SCAN_PREFIX: &str = "kesl-control --scan-file --action DisinfectInformIfNotPossible ";
const WORKERS: usize = 4;
const BATCH: usize = 4;
const FILES: usize = 400;

fn scan_counts(env: &Env) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for line in env.log_of("kesl-control") {
        if let Some(rest) = line.strip_prefix(SCAN_PREFIX) {
            for f in rest.split(' ') {
                *counts.entry(f.to_owned()).or_insert(0) += 1;
            }
        }
    }
    counts
}

/// The `B` ranges of the journal, as the set of list lines they cover.
fn journaled_lines(env: &Env) -> BTreeSet<usize> {
    let journal = fs::read_to_string(env.av_state("journal")).unwrap_or_default();
    // Only complete lines count (the writer may be cut in the middle).
    let complete = &journal[..journal.rfind('\n').map_or(0, |p| p + 1)];
    let mut done = BTreeSet::new();
    for line in complete.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() == 4 && f[0] == "B" && (f[3] == "clean" || f[3] == "threat") {
            let (s, e): (usize, usize) = (f[1].parse().unwrap(), f[2].parse().unwrap());
            done.extend(s..e);
        }
    }
    done
}

fn list(env: &Env) -> Vec<String> {
    fs::read_to_string(env.av_state("files_to_scan.txt"))
        .expect("list")
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Starts av-scan, waits until the journal covers at least `lines` more
/// lines than `before`, and kills it with SIGKILL.
fn run_and_kill(env: &Env, before: usize, lines: usize) {
    let mut child = env
        .run()
        .env("FAKE_KESL_SLEEP", "0.05")
        .arg("av-scan")
        .spawn(Stdio::null());
    wait_for("progress of the journal", 60, || {
        if journaled_lines(env).len() >= before + lines {
            return true;
        }
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "av-scan ended before it was killed"
        );
        false
    });
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    // Scanners of the killed run (own process group) finish their batch.
    std::thread::sleep(Duration::from_millis(400));
}

#[test]
fn sigkill_then_resume_rescans_only_unjournaled_batches_and_skips_nothing() {
    let env = Env::with_av_config(WORKERS as u32, BATCH as u64, "");
    for i in 0..FILES {
        env.write_file(&format!("mirror/bulk/{:02}/file{i:04}", i % 7), "x");
    }

    let mut dup_budget = 0;
    let mut journaled = 0;
    let mut done_at_first_kill = BTreeSet::new();
    for step in [40, 120] {
        run_and_kill(&env, journaled, step);
        let done = journaled_lines(&env);
        assert!(!env.av_state("done").exists());
        let names = list(&env);
        let counts = scan_counts(&env);
        // Every journaled line was really scanned.
        for &i in &done {
            assert!(
                counts.contains_key(&names[i]),
                "{} journaled, never scanned",
                names[i]
            );
        }
        if done_at_first_kill.is_empty() {
            done_at_first_kill = done.clone();
        }
        journaled = done.len();
        dup_budget += WORKERS * BATCH;
    }

    env.run().arg("av-scan").success().run();
    assert!(env.av_state("done").exists());

    let names = list(&env);
    assert_eq!(names.len(), FILES + 3);
    let counts = scan_counts(&env);
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    for name in &names {
        assert!(counts.contains_key(name), "{name} was never scanned");
    }
    for (name, n) in &twice {
        assert_eq!(**n, 2, "{name} scanned {n} times");
    }
    // What was checkpointed before the first kill was never scanned again.
    for &i in &done_at_first_kill {
        assert_eq!(counts[&names[i]], 1, "{} rescanned", names[i]);
    }
    assert!(
        twice.len() <= dup_budget,
        "{} files scanned twice, more than the {} of the batches in flight at the two kills",
        twice.len(),
        dup_budget
    );
}

#[test]
fn sigterm_stops_the_scanners_and_exits_143_and_the_rerun_finishes() {
    let env = Env::with_av_config(2, 1, "");
    let child = env
        .run()
        .env("FAKE_KESL_SLEEP", "30")
        .arg("av-scan")
        .spawn(Stdio::piped());
    wait_for("the scanners to start", 30, || {
        env.log_of("kesl-control").len() >= 2
    });
    let stopped = Instant::now();
    kill(child.id(), libc::SIGTERM);
    let out = child.wait_with_output().expect("wait");
    let took = stopped.elapsed();
    let err = Expect::new()
        .code(143)
        .stderr_has("command_stop")
        .check("mirrorer av-scan", out)
        .stderr;
    assert!(took < Duration::from_secs(15), "{err}");
    assert!(journaled_lines(&env).is_empty());
    assert!(!env.av_state("done").exists());

    env.run().arg("av-scan").success().run();
    // Two batches were stopped and scanned again, the third once.
    assert_eq!(
        scan_counts(&env).values().copied().collect::<Vec<_>>(),
        vec![2, 2, 1]
    );
}
