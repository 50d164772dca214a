//! `sync` through the real binary with the fake `docker` of `tests/fakes/`:
//! selection, parallel syncers, retries, streamed and logged output, the
//! summary, secrets, locks, CI sections, dry run, and SIGTERM/SIGINT.

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::common::{
    Env, Expect, assert_has, assert_has_all, assert_starts_with, fakes_dir, kill, stderr, wait_for,
    wait_with_deadline,
};

/// The secret values of the test config: none may appear on a command line
/// or in a log.
const TOKEN: &str = "tok-S3CRET-4711";
const PASSWORD: &str = "pw-hunter2-xyz";
/// A value of a key that does not look secret: it may be logged, but must
/// not be on a command line either.
const PLAIN_VALUE: &str = "plain-value-on-no-cmdline";

/// One syncer of the test config: name, prefix.
struct S(&'static str, &'static str);

fn log_file(env: &Env, name: &str) -> PathBuf {
    env.root.join(format!("logs/sub/{name}.log"))
}

/// The default config plus the fake docker and rsync-type syncers whose
/// environment holds the secrets above.
fn config(env: &Env, syncers: &[S]) -> String {
    env.write_file("etc/repos.yaml", "repos: []\n");
    fs::create_dir_all(env.docker_dir()).unwrap();
    let mut text = env.default_config();
    text.push_str(&format!(
        "  docker: {}\n",
        fakes_dir().join("docker").display()
    ));
    text.push_str("syncer:\n");
    for S(name, prefix) in syncers {
        text.push_str(&format!(
            "  - type: rsync\n    name: {name}\n    prefix: {prefix}\n    repos: repos.yaml\n    image: registry.example/{name}:1\n    user: '1000:1000'\n    log_file: {log}\n    environment:\n      API_TOKEN: {TOKEN}\n      DB_PASSWORD: {PASSWORD}\n      MIRROR_NAME: {PLAIN_VALUE}\n    command_args: [--verbose, '--name={name}']\n",
            log = log_file(env, name).display(),
        ));
    }
    text
}

/// Writes a control file of the fake docker (`<name>.exits`, ...).
/// A new environment whose config ([`config`]) has `syncers`.
fn env_with(syncers: &[S]) -> Env {
    let env = Env::new();
    env.write_config(&config(&env, syncers));
    env
}

/// [`env_with`] the one syncer `alpha` (prefix `pa`).
fn alpha_env() -> Env {
    env_with(&[S("alpha", "pa")])
}

fn control(env: &Env, file: &str, content: &str) {
    fs::write(env.docker_dir().join(file), content).unwrap();
}

fn attempts(env: &Env, name: &str) -> u32 {
    fs::read_to_string(env.docker_dir().join(format!("{name}.attempts")))
        .map(|s| s.trim().parse().unwrap())
        .unwrap_or(0)
}

/// The containers the fake docker still has.
fn containers(env: &Env) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(env.docker_dir().join("containers"))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The fake-log lines of `docker <sub> ... <name>` calls for container `name`.
fn calls_for(env: &Env, name: &str) -> Vec<String> {
    env.log_of("docker")
        .into_iter()
        .filter(|l| l.rsplit(' ').next() == Some(name) || l.contains(&format!(" --name={name} ")))
        .collect()
}

/// The command lines of one attempt of `name`, except `docker logs
/// --follow`, which runs alongside `wait` and `stop` (see [`without_logs`]).
fn one_attempt(name: &str) -> Vec<String> {
    vec![
        format!("docker rm -f -- {name}"),
        format!(
            "docker run -d --name={name} --user=1000:1000 --volume=MOUNT:/distpool/mirror:rw --volume=ROOT/etc/repos.yaml:/app/repos.yaml:ro --env-file=ROOT/tmp/mirrorer-env-XXXXXX/env registry.example/{name}:1 --verbose --name={name}"
        ),
        format!("docker wait -- {name}"),
        format!("docker stop -t 30 -- {name}"),
        format!("docker rm -f -- {name}"),
    ]
}

/// Temp paths replaced by `MOUNT` / `ROOT`, the random part of the env
/// file's directory by `XXXXXX`.
fn normalise(env: &Env, lines: Vec<String>) -> Vec<String> {
    let mount = env.mount().display().to_string();
    let root = env.root.display().to_string();
    lines
        .into_iter()
        .map(|l| {
            let l = l.replace(&mount, "MOUNT").replace(&root, "ROOT");
            match l.split_once("/mirrorer-env-") {
                Some((head, tail)) => {
                    let rest = tail.split_once('/').map_or("", |(_, r)| r);
                    format!("{head}/mirrorer-env-XXXXXX/{rest}")
                }
                None => l,
            }
        })
        .collect()
}

/// `lines` without the `docker logs --follow <name>` calls, after checking
/// that each attempt (from `docker run` to the `docker rm -f` after it) has
/// exactly one. `logs` starts right after `run` but its fake may log its
/// argv after `wait` or `stop` did.
fn without_logs(lines: Vec<String>, name: &str) -> Vec<String> {
    let follow = format!("docker logs --follow -- {name}");
    let mut in_attempt = false;
    let mut seen = 0;
    for l in &lines {
        if l.starts_with("docker run ") {
            assert!(!in_attempt, "{lines:?}");
            in_attempt = true;
            seen = 0;
        } else if *l == follow {
            assert!(in_attempt, "logs outside an attempt: {lines:?}");
            seen += 1;
        } else if l.starts_with("docker rm -f ") && in_attempt {
            assert_eq!(seen, 1, "one `logs` per attempt: {lines:?}");
            in_attempt = false;
        }
    }
    lines.into_iter().filter(|l| *l != follow).collect()
}

#[test]
fn retries_until_success_and_a_failing_syncer_does_not_stop_the_others() {
    let env = env_with(&[S("alpha", "pa"), S("beta", "pb"), S("gamma", "pc")]);
    control(&env, "alpha.exits", "1 1 0");
    control(&env, "beta.exits", "1 2 3");
    // gamma cannot finish before beta and alpha have started: they run at
    // the same time (a sequential run would fail with 99).
    control(&env, "gamma.rendezvous", "beta");
    control(&env, "beta.rendezvous", "alpha");
    let stderr = env.sync_run().arg("sync").code(1).run().stderr;

    assert_eq!(
        (
            attempts(&env, "alpha"),
            attempts(&env, "beta"),
            attempts(&env, "gamma")
        ),
        (3, 3, 1)
    );
    let mut expected = one_attempt("alpha");
    expected.extend(one_attempt("alpha"));
    expected.extend(one_attempt("alpha"));
    assert_eq!(
        without_logs(normalise(&env, calls_for(&env, "alpha")), "alpha"),
        expected
    );
    assert!(containers(&env).is_empty(), "{:?}", containers(&env));

    for line in [
        "sync_container_start container=alpha image=registry.example/alpha:1 attempt=1 max_attempts=3 env_vars=API_TOKEN,DB_PASSWORD,MIRROR_NAME",
        "sync_container_retry container=alpha attempt=1 exit_code=1 next_attempt=2",
        "sync_container_retry container=alpha attempt=2 exit_code=1 next_attempt=3",
        "sync_container_start container=alpha image=registry.example/alpha:1 attempt=3 max_attempts=3",
        "sync_container_ok container=alpha attempt=3",
        "sync_container_retry container=beta attempt=2 exit_code=2 next_attempt=3",
        "sync_container_failed container=beta attempt=3 exit_code=3",
        "sync_container_ok container=gamma attempt=1",
        "INFO     mirrorer::stages::sync: sync_summary container=alpha status=ok attempts=3 exit_codes=1,1,0",
        "ERROR    mirrorer::stages::sync: sync_summary container=beta status=failed attempts=3 exit_codes=1,2,3",
        "INFO     mirrorer::stages::sync: sync_summary container=gamma status=ok attempts=1 exit_codes=0",
        "stage_failed stage=sync error=\"1 of 3 syncers failed: beta (3 attempts, exit codes 1,2,3)\" exit_code=1",
        // Streamed output, prefixed, from both streams.
        "INFO     mirrorer::stages::sync: [alpha] alpha says hello (attempt 1)",
        "INFO     mirrorer::stages::sync: [alpha] alpha warns on stderr (attempt 2)",
        "INFO     mirrorer::stages::sync: [gamma] gamma says goodbye (attempt 1)",
    ] {
        assert!(stderr.contains(line), "missing {line:?} in:\n{stderr}");
    }
    // The summary comes after every syncer finished.
    let last_run = stderr
        .rfind("sync_container_failed container=beta")
        .unwrap();
    assert!(stderr.find("sync_summary").unwrap() > last_run);

    // The log file: every line of every attempt, without the prefix, with
    // a marker per attempt start and end.
    let log = fs::read_to_string(log_file(&env, "alpha")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 3 * 8, "{log}");
    assert!(
        lines[0].starts_with("--- mirrorer: ")
            && lines[0].ends_with(" container alpha attempt 1/3 starting ---"),
        "{log}"
    );
    for want in [
        "alpha says hello (attempt 1)",
        "alpha warns on stderr (attempt 1)",
        "alpha says goodbye (attempt 3)",
        "env API_TOKEN=***",
        "env DB_PASSWORD=***",
        &format!("env MIRROR_NAME={PLAIN_VALUE}"),
    ] {
        assert!(lines.contains(&want), "missing {want:?} in {log}");
    }
    assert!(
        lines[23].ends_with(" container alpha attempt 3/3 ended: exit code 0 ---"),
        "{log}"
    );
}

#[test]
fn selection_by_name_or_prefix_and_unknown_values() {
    let env = env_with(&[S("alpha", "pa"), S("beta", "pb"), S("gamma", "-pc")]);
    let out = env
        .sync_run()
        .args(["sync", "--syncer", "alpha", "--prefix", "pb"])
        .success()
        .run();
    assert_eq!((attempts(&env, "alpha"), attempts(&env, "beta")), (1, 1));
    assert_eq!(attempts(&env, "gamma"), 0);
    assert!(stderr(&out).contains("sync_start syncers=alpha,beta max_attempts=3"));

    // A value starting with '-' is a value, not an option. (A syncer name
    // may not start with '-', the config refuses it; a prefix may.)
    env.sync_run()
        .args(["sync", "--syncer", "-pc"])
        .success()
        .run();
    assert_eq!(attempts(&env, "gamma"), 1);

    fs::remove_file(env.log_path()).unwrap();
    env.sync_run()
        .args(["sync", "--syncer", "alpha", "--syncer", "nope"])
        .code(2)
        .stderr_has("no syncer matches name or prefix: nope")
        .stderr_lacks("stage_start")
        .run();
    // Rejected before the lock or any program: no stage ran.
    assert!(env.log_of("docker").is_empty());
}

#[test]
fn environment_values_appear_on_no_command_line_and_in_no_log() {
    let env = alpha_env();
    control(&env, "alpha.exits", "5 0");
    let out = env
        .sync_run()
        .args(["--log-level", "DEBUG", "sync"])
        .success()
        .run();
    // The container received every value ...
    let received = fs::read_to_string(env.docker_dir().join("alpha.env")).unwrap();
    assert_eq!(
        received,
        format!("API_TOKEN={TOKEN}\nDB_PASSWORD={PASSWORD}\nMIRROR_NAME={PLAIN_VALUE}\n")
    );
    // ... but no value was on any argv (what `ps` and /proc/<pid>/cmdline
    // show): the fake logs every argv it receives.
    let argv = fs::read_to_string(env.log_path()).unwrap();
    assert_has(&argv, " --env-file=");
    for value in [TOKEN, PASSWORD, PLAIN_VALUE] {
        assert!(!argv.contains(value), "{value} on a command line:\n{argv}");
    }
    // No secret in the job log, even at DEBUG, nor in the log file, although
    // the "container" printed them.
    let stderr = stderr(&out);
    let log = fs::read_to_string(log_file(&env, "alpha")).unwrap();
    for value in [TOKEN, PASSWORD] {
        assert!(!stderr.contains(value), "{value} in the job log:\n{stderr}");
        assert!(!log.contains(value), "{value} in the log file:\n{log}");
    }
    assert_has_all(
        &stderr,
        &[
            "[alpha] env API_TOKEN=***",
            "env_vars=API_TOKEN,DB_PASSWORD,MIRROR_NAME",
        ],
    );
}

#[test]
fn a_runtime_error_is_a_failed_attempt() {
    let env = alpha_env();
    control(&env, "alpha.runfail", "");
    env.sync_run()
        .arg("sync")
        .code(1)
        .stderr_has(
            "sync_summary container=alpha status=failed attempts=3 exit_codes=error,error,error",
        )
        .stderr_has("Unable to find image")
        .run();
    assert!(containers(&env).is_empty());
}

#[test]
fn ci_wraps_a_single_syncers_output_in_a_section() {
    let env = alpha_env();
    let stderr = env.ci_sync_stderr("alpha");
    let start = stderr
        .find(":sync_alpha_attempt_1\r\x1b[0K[alpha] container output, attempt 1/3\n")
        .expect(&stderr);
    let line = stderr.find("[alpha] alpha says hello (attempt 1)").unwrap();
    let end = stderr
        .find(":sync_alpha_attempt_1\r\x1b[0K\n")
        .expect(&stderr);
    assert!(start < line && line < end, "{stderr}");
}

#[test]
fn dry_run_logs_the_commands_and_runs_none() {
    let env = alpha_env();
    let stderr = env
        .sync_run()
        .args(["--dry-run", "sync"])
        .success()
        .stderr_has("dry_run_command purpose=\"start the syncer container\"")
        .stderr_has("run -d --name=alpha")
        .run()
        .stderr;
    assert!(env.log_of("docker").is_empty());
    assert!(!log_file(&env, "alpha").exists());
    assert!(!stderr.contains(TOKEN));
}

/// Starts `sync` with the given args in the background and waits until
/// every named container is running.
fn start_held(env: &Env, args: &[&str], names: &[&str]) -> Child {
    for n in names {
        control(env, &format!("{n}.hold"), "");
    }
    let child = env.sync_run().args(args).spawn(Stdio::piped());
    wait_for("the containers never started", 30, || {
        names.iter().all(|n| {
            env.log_of("docker")
                .contains(&format!("docker wait -- {n}"))
        })
    });
    std::thread::sleep(Duration::from_millis(200));
    child
}

#[test]
fn sigterm_and_sigint_stop_and_remove_every_container() {
    for (signal, code) in [(libc::SIGTERM, 143), (libc::SIGINT, 130)] {
        let env = env_with(&[S("alpha", "pa"), S("beta", "pb")]);
        control(&env, "alpha.exits", "1");
        let child = start_held(&env, &["sync"], &["alpha", "beta"]);
        assert_eq!(containers(&env), ["alpha", "beta"]);
        kill(child.id(), signal);
        let stderr = Expect::new()
            .code(code)
            .check("mirrorer sync", wait_with_deadline(child, 30))
            .stderr;
        assert!(containers(&env).is_empty(), "{:?}", containers(&env));
        for name in ["alpha", "beta"] {
            let calls = without_logs(calls_for(&env, name), name);
            assert_eq!(attempts(&env, name), 1, "a new attempt started: {calls:?}");
            assert_eq!(
                calls[calls.len() - 2..],
                [
                    format!("docker stop -t 30 -- {name}"),
                    format!("docker rm -f -- {name}")
                ],
                "{calls:?}"
            );
            assert_has(
                &stderr,
                &format!(
                    "sync_summary container={name} status=interrupted attempts=1 exit_codes=interrupted"
                ),
            );
            // The container's last words, after the stop, still reach the log.
            assert_has(
                &stderr,
                &format!("[{name}] {name} says goodbye (attempt 1)"),
            );
        }
        assert_has(&stderr, &format!("exit_code={code}"));
    }
}

#[test]
fn syncer_locks_let_other_syncers_run_but_not_the_same_one_or_exclusive_stages() {
    let env = env_with(&[S("alpha", "pa"), S("beta", "pb")]);
    let holder = start_held(&env, &["sync", "--syncer", "alpha"], &["alpha"]);
    let lock = fs::read_to_string(env.state().join("sync-alpha.lock")).unwrap();
    assert_starts_with(
        &lock,
        &format!("pid={} stage=sync:alpha mode=exclusive", holder.id()),
    );
    // Another syncer runs meanwhile (pipeline.lock is shared) ...
    env.sync_run()
        .args(["--lock-timeout", "5", "sync", "--prefix", "pb"])
        .success()
        .run();
    // ... the same syncer waits and gives up (exit 4) ...
    env.sync_run()
        .args(["--lock-timeout", "0.5", "sync", "--syncer", "alpha"])
        .code(4)
        .stderr_has("sync-alpha.lock")
        .run();
    // ... and so does an exclusive stage.
    env.sync_run()
        .args(["--lock-timeout", "0.5", "cleanup-state"])
        .code(4)
        .run();
    assert_eq!(attempts(&env, "alpha"), 1);
    fs::remove_file(env.docker_dir().join("alpha.hold")).unwrap();
    // Let the held container exit: the holder finishes normally.
    fs::write(env.docker_dir().join("containers/alpha"), "exited 0").unwrap();
    Expect::new()
        .success()
        .check("mirrorer", wait_with_deadline(holder, 30));
    assert!(containers(&env).is_empty());
}

#[test]
fn sigterm_while_docker_run_is_still_busy_removes_the_container_too() {
    let env = alpha_env();
    control(&env, "alpha.runsleep", "30");
    let child = env.sync_run().arg("sync").spawn(Stdio::piped());
    wait_for("docker run never started", 30, || {
        !(containers(&env).is_empty())
    });
    std::thread::sleep(Duration::from_millis(100));
    kill(child.id(), libc::SIGTERM);
    let out = Expect::new()
        .code(143)
        .check("mirrorer", wait_with_deadline(child, 30));
    let stderr = stderr(&out);
    assert!(containers(&env).is_empty(), "{:?}", containers(&env));
    let calls = calls_for(&env, "alpha");
    assert_eq!(
        calls[calls.len() - 2..],
        [
            "docker stop -t 30 -- alpha".to_owned(),
            "docker rm -f -- alpha".to_owned()
        ],
        "{calls:?}"
    );
    assert!(
        !calls.iter().any(|c| c.starts_with("docker wait")),
        "{calls:?}"
    );
    assert_has(
        &stderr,
        "sync_summary container=alpha status=interrupted attempts=1 exit_codes=interrupted",
    );
}
