//! Hostile values: config values that try to break out of their YAML scalar
//! or shell word. The generated job scripts are run with `sh` (and `bash`)
//! and a fake `mirrorer` that records its argv; every value must arrive as
//! exactly one unchanged argument, and nothing else may run.

use std::path::Path;

use crate::common::Work;
use serde_json::Value;

/// Values that mean something to YAML or to a shell. `PWNED` is replaced
/// by a path that must never be created. (`null` and `~` are none-like in
/// the config, so they cannot be names; they are tested as runner tags.)
const HOSTILE: &[&str] = &[
    "x'; touch PWNED; echo '",
    "$(touch PWNED)",
    "`touch PWNED`",
    "${HOME}",
    "$HOME",
    "a\nb; touch PWNED",
    "-rf",
    "--help",
    "yes",
    "on",
    "1e3",
    "0o17",
    "NULL_",
    "*",
    "a\"b\\c",
    "#comment",
    "x: y",
    "[x]",
    "{x}",
    "&anchor",
    "!tag",
    "%x",
    "@x",
    "|",
    "> folded",
    "x  y\tz",
    "é\u{2028}\u{85}ü",
    "'",
    "\"",
    "\\",
    "; touch PWNED",
    "| touch PWNED",
    "&& touch PWNED",
    "x\r\ntouch PWNED",
];

/// Writes `s` as a YAML double-quoted scalar with every non-ASCII or
/// control character escaped (how a careful person writes such a config).
fn yaml_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_ascii() && !c.is_ascii_control() => out.push(c),
            c => out.push_str(&format!("\\u{:04x}", c as u32)),
        }
    }
    out.push('"');
    out
}

const FAKE_MIRRORER: &str = r#"#!/bin/sh
# Records one call: each argument followed by a NUL byte, in a fresh file.
f=$(mktemp "$ARGV_DIR/call.XXXXXX")
for a in "$@"; do printf '%s\0' "$a" >> "$f"; done
"#;

struct Setup {
    work: Work,
    pwned: String,
    values: Vec<String>,
}

fn setup() -> Setup {
    let work = Work::new();
    let pwned = work.path("PWNED").display().to_string();
    let values: Vec<String> = HOSTILE.iter().map(|v| v.replace("PWNED", &pwned)).collect();
    std::fs::create_dir_all(work.path("argv")).unwrap();
    Setup {
        work,
        pwned,
        values,
    }
}

/// The hostile name of syncer `i`: the value after its index. Names must
/// not start with `-` (an option to docker) and must map to distinct lock
/// files (`safe(name)`), which the config loader checks; the index keeps
/// `$HOME` and `${HOME}` apart and every value still reaches the job whole.
fn hostile_name(i: usize, v: &str) -> String {
    format!("{i}{v}")
}

fn config_text(s: &Setup, command: &[String]) -> String {
    let mut text = String::from("pipeline:\n  runner_tags: [");
    text.push_str(
        &[
            yaml_str("yes"),
            yaml_str("null"),
            yaml_str("~"),
            yaml_str(&s.values[0]),
        ]
        .join(", "),
    );
    text.push_str("]\n  command: [");
    text.push_str(
        &command
            .iter()
            .map(|c| yaml_str(c))
            .collect::<Vec<_>>()
            .join(", "),
    );
    text.push_str("]\n  resource_group: ");
    text.push_str(&yaml_str(&s.values[0]));
    text.push_str("\nsyncer:\n");
    for (i, v) in s.values.iter().enumerate() {
        // The name holds the hostile value (prefix defaults to it) ...
        text.push_str(&format!(
            "  - {{type: apt, config: c.list, name: {}}}\n",
            yaml_str(&hostile_name(i, v))
        ));
        // ... and a safe name with a hostile prefix.
        text.push_str(&format!(
            "  - {{type: apt, config: c.list, name: safe-{i}, prefix: {}}}\n",
            yaml_str(&format!("P{v}"))
        ));
    }
    text
}

fn read_calls(dir: &Path) -> Vec<Vec<String>> {
    let mut calls = Vec::new();
    for name in crate::common::list_dir(dir) {
        let path = dir.join(&name);
        let bytes = std::fs::read(&path).unwrap();
        let args: Vec<String> = bytes
            .split(|b| *b == 0)
            .filter(|_| true)
            .map(|a| String::from_utf8(a.to_vec()).unwrap())
            .collect();
        // Each argument ends with NUL, so the last split part is empty.
        let mut args = args;
        assert_eq!(
            args.pop().as_deref(),
            Some(""),
            "record of {name} ends with NUL"
        );
        calls.push(args);
        std::fs::remove_file(path).unwrap();
    }
    calls
}

fn generate(s: &Setup, command: &[String], job_config: &str) -> (String, Value) {
    let cfg = s.work.write("dm.yaml", &config_text(s, command));
    let text = s
        .work
        .run()
        .arg("--config")
        .arg(&cfg)
        .args([
            "pipeline",
            "generate",
            "--skip-remote",
            "--job-config",
            job_config,
        ])
        .success()
        .run()
        .stdout;
    let doc: Value = serde_yaml::from_str(&text).unwrap();
    (text, doc)
}

/// Runs every job's script with `shell` and checks the recorded argv.
fn run_jobs(s: &Setup, doc: &Value, shell: &str, path_env: &str, job_config: &str) {
    let argv_dir = s.work.path("argv");
    let top = doc.as_object().unwrap();
    let mut ran = 0;
    for (job, body) in top {
        if ["stages", "workflow", "default", "variables"].contains(&job.as_str()) {
            continue;
        }
        let line = body["script"][0].as_str().unwrap();
        // GitLab sets the pipeline's variables in the job's environment.
        let config_var = doc["variables"]["MIRRORER_CONFIG"]["value"]
            .as_str()
            .unwrap();
        assert_eq!(config_var, job_config);
        let status = std::process::Command::new(shell)
            .arg("-c")
            .arg(line)
            .env("PATH", path_env)
            .env("ARGV_DIR", &argv_dir)
            .env("MIRRORER_CONFIG", config_var)
            .env("MIRRORER_SNAPSHOT", "20260603-120000")
            .status()
            .unwrap();
        assert!(status.success(), "{shell}: job {job:?} failed: {line}");
        let calls = read_calls(&argv_dir);
        assert_eq!(
            calls.len(),
            1,
            "{shell}: job {job:?} called mirrorer {} times",
            calls.len()
        );
        let argv = &calls[0];
        let head = ["--config", job_config, "--skip-remote"];
        assert_eq!(argv[..3], head, "{shell}: job {job:?}");
        let tail: Vec<&str> = argv[3..].iter().map(String::as_str).collect();
        if let Some(prefix) = job.strip_prefix("sync:") {
            let hostile = s
                .values
                .iter()
                .enumerate()
                .map(|(i, v)| hostile_name(i, v))
                .find(|n| n == prefix);
            let name = if let Some(name) = hostile {
                name
            } else {
                let i = s
                    .values
                    .iter()
                    .position(|v| format!("P{v}") == prefix)
                    .unwrap_or_else(|| panic!("job {job:?} matches no configured prefix"));
                format!("safe-{i}")
            };
            assert_eq!(
                tail,
                ["sync", "--syncer", name.as_str()],
                "{shell}: job {job:?}"
            );
        } else {
            let expected: Vec<&str> = match job.as_str() {
                "av-scan" => vec!["av-scan"],
                "snapshot" => vec!["snapshot", "--dotenv", "mirrorer-snapshot.env"],
                "verify" => vec![
                    "verify",
                    "--snapshot",
                    "20260603-120000",
                    "--junit",
                    "mirrorer-verify.xml",
                ],
                "replicate" => vec!["replicate"],
                "publish-snapshot" => vec!["publish-snapshot", "--snapshot", "20260603-120000"],
                "publish-inventory" => vec!["publish-inventory"],
                "publish-catalog" => vec!["publish-catalog", "--snapshot", "20260603-120000"],
                "promote" => vec!["promote", "--snapshot", "20260603-120000"],
                "cleanup-state" => vec!["cleanup-state"],
                other => panic!("unexpected job {other:?}"),
            };
            assert_eq!(tail, expected, "{shell}: job {job:?}");
        }
        ran += 1;
    }
    assert_eq!(ran, 2 * s.values.len() + 9);
    assert!(
        !Path::new(&s.pwned).exists(),
        "{shell}: a hostile value ran a command"
    );
}

fn shells() -> Vec<&'static str> {
    let mut shells = vec!["sh"];
    if Path::new("/bin/bash").exists() {
        shells.push("bash");
    }
    shells
}

#[test]
fn hostile_names_prefixes_and_paths_arrive_as_one_unchanged_argument() {
    let s = setup();
    s.work.write_executable("bin/mirrorer", FAKE_MIRRORER);
    let path_env = format!("{}:/usr/bin:/bin", s.work.path("bin").display());
    let job_config = format!("/etc/dm/$(touch {0}) 'x' \"y\" `touch {0}`.yaml", s.pwned);
    let (text, doc) = generate(&s, &["mirrorer".to_owned()], &job_config);

    // YAML side: every job name and tag reads back unchanged.
    let names: Vec<&str> = doc
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for (i, v) in s.values.iter().enumerate() {
        let name = hostile_name(i, v);
        assert!(
            names.contains(&format!("sync:{name}").as_str()),
            "job for {name:?} missing"
        );
        assert!(
            names.contains(&format!("sync:P{v}").as_str()),
            "job for P{v:?} missing"
        );
    }
    assert_eq!(
        doc["default"]["tags"],
        serde_json::json!(["yes", "null", "~", s.values[0]])
    );
    let yes = format!("sync:{}", hostile_name(8, "yes"));
    assert_eq!(s.values[8], "yes");
    assert_eq!(
        doc[&yes]["resource_group"],
        format!("{}:{yes}", s.values[0])
    );
    // No raw line break of a value made it into the text.
    assert!(!text.contains('\u{2028}') && !text.contains('\u{85}'));

    for shell in shells() {
        run_jobs(&s, &doc, shell, &path_env, &job_config);
    }
}

#[test]
fn a_hostile_command_path_is_one_word_too() {
    let s = setup();
    let fake = s
        .work
        .write_executable("bin dir/it's $(mirrorer)", FAKE_MIRRORER);
    let command = vec![fake.display().to_string()];
    let (_, doc) = generate(&s, &command, "/etc/dist-mirror/dist-mirror.yaml");
    for shell in shells() {
        run_jobs(
            &s,
            &doc,
            shell,
            "/usr/bin:/bin",
            "/etc/dist-mirror/dist-mirror.yaml",
        );
    }
}
