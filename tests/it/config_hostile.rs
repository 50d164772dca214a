//! Configs written by people (issue 10, "Hardening"): YAML features people
//! use, bytes they paste by mistake, files built to hurt, values a program
//! would misread, and empty or absurd flag values. Every case runs the real
//! binary; a config problem exits 3 naming the key, line and column.

use std::time::{Duration, Instant};

use crate::common::{Env, Expect, Ran, Run, Work, assert_has_all, stderr, stdout};

/// Runs `config check` on `text` written as a file.
fn check(text: &[u8]) -> Ran {
    let w = Work::new();
    let path = w.path("dm.yaml");
    std::fs::write(&path, text).unwrap();
    Run::bare()
        .config_file(&path)
        .args(["config", "check"])
        .run()
}

/// Asserts exit 3 and that stderr names every one of `wants`.
fn assert_config_error(out: &std::process::Output, wants: &[&str]) {
    let expect = Expect::new().code(3).stderr_lacks("panicked");
    let expect = wants.iter().fold(expect, |e, want| e.stderr_has(*want));
    expect.check("mirrorer (config error)", out.clone());
}

/// The largest resident set of any child this test process has waited for,
/// in bytes (Linux reports KiB).
fn max_child_rss() -> u64 {
    // SAFETY: getrusage writes into the zeroed struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    assert_eq!(rc, 0);
    u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024
}

const SHARED_DEFAULTS: &str = "\
log:
  log_level: !!str INFO
mirror:
  kesl_max_workers: !!int 8
replication:
  skip_remote: !!bool yes
x-note: &name r.yaml
syncer: !!seq
  - &apt {type: apt, name: debian, config: syncer.yaml, user: \"1000:1000\", image: \"reg/apt:1\"}
  - <<: *apt
    name: ubuntu
  - <<: [*apt, {image: \"reg/never:1\", command_args: [--verbose]}]
    name: !!str mint
    image: reg/mint:2
  - !!map {type: rsync, name: epel, repos: *name}
repo:
  paths:
    apt/mirror: &paths {debian: debian}
    apt/other: {x: x}
";

#[test]
fn anchors_merge_keys_and_standard_tags_share_syncer_defaults() {
    let out = check(SHARED_DEFAULTS.as_bytes());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let syncer = |name: &str| {
        let start = text
            .find(&format!("  - name: {name}\n"))
            .unwrap_or_else(|| panic!("no syncer {name} in:\n{text}"));
        let rest = &text[start + 4..];
        rest[..rest.find("  - name:").unwrap_or(rest.len())].to_owned()
    };
    // The merged keys arrive; a key written in the mapping wins over a
    // merged one, and an earlier merged mapping over a later one.
    let ubuntu = syncer("ubuntu");
    assert_has_all(
        &ubuntu,
        &[
            "    user: 1000:1000\n",
            "    image: reg/apt:1\n",
            "/etc/apt/mirror.list (ro)",
        ],
    );
    let mint = syncer("mint");
    assert_has_all(
        &mint,
        &["    image: reg/mint:2\n", "command_args: [\"--verbose\"]"],
    );
    assert!(
        syncer("epel").contains("r.yaml -> /app/repos.yaml"),
        "{text}"
    );
    assert_has_all(&text, &["  kesl_max_workers: 8\n", "  skip_remote: true\n"]);
    // The unknown top-level key that holds an anchor is only a warning.
    assert!(stderr(&out).contains("setting=x-note"), "{}", stderr(&out));

    // The same file drives `pipeline generate`.
    let w = Work::new();
    let cfg = w.write("dm.yaml", SHARED_DEFAULTS);
    let out = Run::bare()
        .config_file(&cfg)
        .args(["pipeline", "generate"])
        .success()
        .run();
    let doc = crate::common::check_pipeline(&stdout(&out));
    for job in ["sync:debian", "sync:ubuntu", "sync:mint", "sync:epel"] {
        assert!(doc.get(job).is_some(), "{job} missing");
    }
}

#[test]
fn duplicate_keys_stay_errors_and_wrong_tags_are_errors() {
    // Written twice in one mapping, next to a merge.
    let out = check(
        b"syncer:\n  - &a {type: apt, name: a, config: c}\n  - <<: *a\n    name: b\n    prefix: p\n    name: c\n",
    );
    assert_config_error(&out, &["line 6, column 5", "duplicate key \\\"name\\\""]);
    for (text, want) in [
        (
            "mirror:\n  kesl_max_workers: !!int four\n",
            "line 2, column 27",
        ),
        ("mirror: !!seq {a: 1}\n", "line 1, column 15"),
        ("mirror:\n  workdir: !python/object x\n", "unsupported tag"),
        ("syncer:\n  - *nowhere\n", "line 2, column 5"),
        ("a: &a [1, *a]\n", "line 1, column 11"),
        ("x: {<<: scalar}\n", "merge key"),
    ] {
        assert_config_error(&check(text.as_bytes()), &[want]);
    }
}

#[test]
fn a_billion_laughs_config_is_a_quick_config_error_in_bounded_memory() {
    let mut text = String::from(
        "a: &a [\"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\"]\n",
    );
    for level in 1..10u8 {
        let prev = (b'a' + level - 1) as char;
        let cur = (b'a' + level) as char;
        let refs = vec![format!("*{prev}"); 10].join(", ");
        text.push_str(&format!("{cur}: &{cur} [{refs}]\n"));
    }
    text.push_str("syncer: *j\n");
    let started = Instant::now();
    let out = check(text.as_bytes());
    let took = started.elapsed();
    assert_config_error(&out, &["aliases expand to more than", "line "]);
    assert!(took < Duration::from_secs(20), "took {took:?}");
    let rss = max_child_rss();
    assert!(rss < 512 << 20, "a child used {} MiB", rss >> 20);
    // A large anchored scalar repeated is bounded the same way.
    let big = "x".repeat(1 << 20);
    let mut text = format!("a: &a \"{big}\"\nb: [");
    text.push_str(&vec!["*a"; 64].join(", "));
    text.push_str("]\n");
    assert_config_error(&check(text.as_bytes()), &["MiB of text"]);
}

#[test]
fn a_leading_bom_is_skipped() {
    let out = check(b"\xef\xbb\xbfmirror:\n  workdir: /srv/dm\n");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("  workdir: /srv/dm\n"),
        "{}",
        stdout(&out)
    );
    assert!(!stderr(&out).contains("unknown key"), "{}", stderr(&out));
}

#[test]
fn nul_and_control_characters_are_config_errors_with_their_line() {
    // A NUL in the middle of the file must not end it there: the bad
    // syncer after it would go unnoticed.
    let out = check(b"mirror:\n  workdir: /x\x00\nsyncer: bad\n");
    assert_config_error(&out, &["line 2, column 14", "U+0000 (NUL)"]);
    for (text, want) in [
        (
            &b"mirror:\n  workdir: \"/x\x01y\"\n"[..],
            "line 2, column 15",
        ),
        (b"mirror:\n  workdir: /x\x7fy\n", "U+007F (DEL)"),
        (b"log:\n  log_level: INFO\xc2\x9b\n", "line 2, column 18"),
        (b"mirror: {}\n\xef\xbb\xbflog: {}\n", "byte-order mark"),
        (b"mirror:\n  workdir: \xff\n", "line 2, column 12"),
    ] {
        assert_config_error(&check(text), &[want]);
    }
    // Escaped in a double-quoted string, a NUL reaches the value: refused
    // by its key.
    let out =
        check(b"syncer:\n  - {type: apt, name: a, config: c, environment: {TOKEN: \"x\\0y\"}}\n");
    assert_config_error(&out, &["setting=syncer[0].environment.TOKEN line=2", "NUL"]);
}

#[test]
fn deep_nesting_is_a_config_error_not_a_stack_overflow() {
    let flow = format!("mirror: {}\n", "[".repeat(100_000));
    assert_config_error(&check(flow.as_bytes()), &["line 1, column"]);
    let block = format!("mirror:\n  {}x\n", "- ".repeat(100_000));
    assert_config_error(&check(block.as_bytes()), &["nested more than 64 deep"]);
    let mut indented = String::from("mirror:\n");
    for depth in 1..2_000 {
        indented.push_str(&" ".repeat(depth));
        indented.push_str("k:\n");
    }
    assert_config_error(
        &check(indented.as_bytes()),
        &["nested more than 64 deep", "line 65"],
    );
}

#[test]
fn syncers_that_share_a_lock_file_or_a_selection_are_config_errors() {
    // `a b` and `a/b` both become state/sync-a-b.lock.
    let out = check(
        b"syncer:\n  - {type: apt, name: a-b, config: c}\n  - {type: apt, name: a b, prefix: p1, config: c}\n  - {type: apt, name: a/b, prefix: p2, config: c}\n",
    );
    assert_config_error(
        &out,
        &[
            "setting=syncer[1].name line=3",
            "setting=syncer[2].name line=4",
            "of syncer[0] (line 2)",
            "sync-a-b.lock",
        ],
    );
    // A name that is another syncer's prefix: `sync --syncer debian`
    // would run both; either order.
    for text in [
        "syncer:\n  - {type: apt, name: debian, prefix: deb, config: c}\n  - {type: apt, name: deb, prefix: other, config: c}\n",
        "syncer:\n  - {type: apt, name: deb, prefix: other, config: c}\n  - {type: apt, name: debian, prefix: deb, config: c}\n",
    ] {
        assert_config_error(
            &check(text.as_bytes()),
            &["setting=syncer[1]", "syncer[0]", "would select both"],
        );
    }
}

#[test]
fn values_a_program_would_read_as_an_option_are_refused() {
    for (text, key) in [
        (
            "syncer:\n  - {type: apt, name: -rf, config: c}\n",
            "syncer[0].name",
        ),
        (
            "syncer:\n  - {type: apt, image: --privileged, config: c}\n",
            "syncer[0].image",
        ),
        (
            "syncer:\n  - {type: apt, user: \" -u0\", config: c}\n",
            "syncer[0].user",
        ),
        (
            "containers:\n  - {name: --rm, image: i}\n",
            "containers[0].name",
        ),
        (
            "mirror:\n  zfs_mirror_dataset: -o mountpoint=/x\n",
            "mirror.zfs_mirror_dataset",
        ),
        ("mirror:\n  workdir: --delete\n", "mirror.workdir"),
        (
            "replication:\n  replica_host: -oProxyCommand=x\n",
            "replication.replica_host",
        ),
        ("replication:\n  ssh_user: -l\n", "replication.ssh_user"),
        ("pipeline:\n  config_path: --help\n", "pipeline.config_path"),
    ] {
        let out = check(text.as_bytes());
        assert_config_error(&out, &[&format!("setting={key} line="), "starts with `-`"]);
    }
    // A stage refuses such a config before it runs anything.
    let env = Env::new();
    let config = env.default_config().replace(
        &format!("zfs_mirror_dataset: {}", crate::common::DATASET),
        "zfs_mirror_dataset: -r",
    );
    env.write_config(&config);
    let out = env.run().arg("snapshot").run();
    assert_config_error(&out, &["setting=mirror.zfs_mirror_dataset"]);
    assert!(env.log().is_empty(), "{:?}", env.log());
}

#[test]
fn characters_gitlab_cannot_take_are_config_errors_not_generate_failures() {
    let text = "pipeline:\n  runner_tags: [ok, \"t\\uFFFF\"]\n  command: [mirrorer, \"x\\U0001FFFE\"]\n  resource_group: \"g\\uFDD0\"\n  config_path: \"/etc/\\uFFFE.yaml\"\nsyncer:\n  - {type: apt, name: \"n\\uFDEF\", prefix: \"p\\uFFFE\", config: c}\n";
    let w = Work::new();
    let cfg = w.write("dm.yaml", text);
    let out = Run::bare()
        .config_file(&cfg)
        .args(["pipeline", "generate"])
        .run();
    assert_config_error(
        &out,
        &[
            "setting=pipeline.runner_tags[1] line=2",
            "setting=pipeline.command[1] line=3",
            "setting=pipeline.resource_group line=4",
            "setting=pipeline.config_path line=5",
            "setting=syncer[0].name line=7",
            "setting=syncer[0].prefix line=7",
            "U+FFFE (a noncharacter)",
        ],
    );
    assert!(stdout(&out).is_empty());
}

#[test]
fn out_of_range_numbers_are_usage_errors_not_panics() {
    let env = Env::with_default_config();
    for value in ["1e20", "1e300", "NaN", "inf", "-inf", "-1", "", "ten"] {
        env.run()
            .arg(format!("--lock-timeout={value}"))
            .arg("cleanup-state")
            .code(2)
            .stderr_has("--lock-timeout")
            .stderr_lacks("panicked")
            .run();
    }
    env.run()
        .args(["--lock-timeout", "1e9", "cleanup-state"])
        .success()
        .run();
    for flag in ["--poll-interval", "--wait-timeout"] {
        for value in ["1e20", "NaN", "-inf", "-0.5"] {
            let err = Run::bare()
                .args([
                    "pipeline",
                    "trigger",
                    "--url",
                    "http://127.0.0.1:9",
                    "--project",
                    "1",
                ])
                .args(["--ref", "main", "--wait", &format!("{flag}={value}")])
                .env("GITLAB_TOKEN", "glpat-unused")
                .code(2)
                .run()
                .stderr;
            assert!(err.contains(flag) && !err.contains("panicked"), "{err}");
        }
    }
}

#[test]
fn empty_flag_and_variable_values_mean_not_given() {
    let env = Env::new();
    let config = format!(
        "{}syncer:\n  - {{type: apt, name: alpha, config: a.list}}\n  - {{type: apt, name: beta, config: b.list}}\n",
        env.default_config()
    );
    env.write_config(&config);
    // `sync --syncer ""`: every syncer (as mirrorer 0.1.0 did).
    env.run()
        .args(["--dry-run", "sync", "--syncer", ""])
        .success()
        .stderr_has("syncers=alpha,beta")
        .run();

    // `pipeline generate` with empty flags and empty variables: the full chain.
    let out = env
        .run()
        .args([
            "pipeline",
            "generate",
            "--syncer",
            "",
            "--snapshot",
            "",
            "--job-config",
            "",
        ])
        .success()
        .run();
    let doc = crate::common::check_pipeline(&stdout(&out));
    assert!(doc.get("sync:alpha").is_some() && doc.get("sync:beta").is_some());
    env.run()
        .args(["pipeline", "generate"])
        .env("MIRRORER_SNAPSHOT", "")
        .env("MIRRORER_SYNCERS", "")
        .env("MIRRORER_PUBLISH_ALL", "")
        .success()
        .stderr_has("mode=full jobs=11")
        .run();

    // `publish-snapshot --snapshot ""`: the current snapshot.
    let snap = "20260101-000000";
    env.make_snapshot(snap);
    env.write_file("work/state/current_snapshot.txt", &format!("{snap}\n"));
    env.run()
        .args(["--skip-remote", "publish-snapshot", "--snapshot", ""])
        .success()
        .run();
    assert!(env.workdir().join("repo/snapshots").join(snap).is_dir());
    env.run()
        .args(["publish-catalog", "--snapshot", ""])
        .success()
        .run();
    assert!(
        env.workdir()
            .join("metadata/snapshots")
            .join(snap)
            .join("repo_catalog.json")
            .is_file()
    );

    // An empty --snapshot goes with --all / --rebuild; a real one does not.
    for (stage, all) in [
        ("publish-snapshot", "--all"),
        ("publish-catalog", "--rebuild"),
    ] {
        env.run()
            .args(["--skip-remote", "--dry-run", stage, "--snapshot", "", all])
            .success()
            .run();
        env.run()
            .args(["--skip-remote", "--dry-run", stage, "--snapshot", snap, all])
            .code(2)
            .stderr_has("cannot be used with")
            .run();
    }

    // `catalog --shard ""`: the default shard.
    Run::bare()
        .args(["catalog", "--root-dir"])
        .arg(env.mount())
        .args(["--shard", ""])
        .env("DIST_MIRROR_SHARD", "shard-from-env")
        .success()
        .stdout_has("\"shard\": \"shard-from-env\"")
        .run();

    // An empty MIRRORER_CONFIG: the default path, not a usage error.
    let out = Run::bare()
        .env("MIRRORER_CONFIG", "")
        .args(["config", "check"])
        .run();
    let err = stderr(&out);
    assert_ne!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("/etc/dist-mirror/dist-mirror.yaml") || out.status.success(),
        "{err}"
    );
}

#[test]
fn twenty_thousand_repo_paths_load_in_linear_time() {
    let mut text = String::from("mirror:\n  workdir: /srv/dm\nrepo:\n  paths:\n");
    for base in 0..200 {
        text.push_str(&format!("    base{base}/x:\n"));
        for name in 0..100 {
            text.push_str(&format!("      name{name}: pub{base}/p{name}\n"));
        }
    }
    // The last one nests with an earlier one: still found.
    text.push_str("    late:\n      n: pub7/p3/inner\n");
    let w = Work::new();
    let cfg = w.write("dm.yaml", &text);
    let started = Instant::now();
    let out = Run::bare()
        .config_file(&cfg)
        .args(["config", "check"])
        .run();
    let took = started.elapsed();
    assert_config_error(
        &out,
        &[
            "setting=repo.paths.late.n",
            "nests with the public prefix \\\"pub7/p3\\\"",
        ],
    );
    // It took 30 to 60 s before the check was made linear; now well under 1 s.
    assert!(took < Duration::from_secs(15), "took {took:?}");
    let cfg = w.write(
        "ok.yaml",
        text.trim_end_matches("    late:\n      n: pub7/p3/inner\n"),
    );
    let started = Instant::now();
    let out = Run::bare()
        .config_file(&cfg)
        .args(["config", "check"])
        .success()
        .run();
    assert_eq!(stdout(&out).matches(" -> pub").count(), 20_000);
    assert!(started.elapsed() < Duration::from_secs(15));
}
