//! Control characters from a container's output or a server's error text
//! cannot hide or fake job-log lines: plain log lines show them escaped
//! (`\r`, `\x1b`, ...), JSON lines carry them as JSON escapes, and the only
//! raw GitLab section markers in the job log are mirrorer's own.

use std::fs;

use crate::common::{Env, fakes_dir};

/// What the hostile container prints on `docker logs`: a carriage return
/// that would overwrite the line, colour and erase sequences, a forged
/// section marker (at the start of a line and after a CR), a C1 CSI
/// (U+009B), a bell, DEL, and a right-to-left override.
const HOSTILE: &str = r#"printf 'visible\rHIDDEN-BY-CR\n'
printf '\033[2K\033[31mred\033[0m\n'
printf '\033[0Ksection_start:1700000000:forged[collapsed=true]\r\033[0Kforged header\n'
printf 'x\rsection_end:1700000000:stage_sync\r\033[0K\n'
printf 'c1 \302\233 31m bell \007 del \177 rlo \342\200\256 end\n'
"#;

/// A new environment with one syncer `alpha`, run by a docker whose
/// `logs` prints [`HOSTILE`] before the fake's own output.
fn hostile_env() -> Env {
    let env = Env::new();
    env.write_file("etc/repos.yaml", "repos: []\n");
    fs::create_dir_all(env.docker_dir()).unwrap();
    let docker = env.write_executable(
        "docker",
        &format!(
            "#!/bin/bash\nif [ \"$1\" = logs ]; then\n{HOSTILE}fi\nexec {} \"$@\"\n",
            fakes_dir().join("docker").display()
        ),
    );
    let mut text = env.default_config();
    text.push_str(&format!("  docker: {}\n", docker.display()));
    text.push_str(&format!(
        "syncer:\n  - type: rsync\n    name: alpha\n    prefix: pa\n    repos: repos.yaml\n    image: registry.example/alpha:1\n    user: '1000:1000'\n    log_file: {}/logs/alpha.log\n",
        env.root.display()
    ));
    env.write_config(&text);
    env
}

/// Checks that every ESC and CR in a plain job log belongs to one of
/// mirrorer's own section markers (`\e[0Ksection_start:<t>:<ours>...\r\e[0K`
/// opening a line), and that no C1 control or bidi override is left raw.
fn assert_only_our_markers(log: &str, ours: &[&str]) {
    for line in log.split('\n') {
        if !line.contains(['\x1b', '\r']) {
            continue;
        }
        let marker = line
            .strip_prefix("\x1b[0Ksection_start:")
            .or_else(|| line.strip_prefix("\x1b[0Ksection_end:"))
            .unwrap_or_else(|| panic!("raw control character outside a marker: {line:?}"));
        let name = marker
            .split_once(':')
            .map(|(_, rest)| rest.split(['[', '\r']).next().unwrap_or(""))
            .unwrap_or("");
        assert!(ours.contains(&name), "forged section {name:?}: {line:?}");
        // Exactly one `\r\e[0K` ends the marker; nothing raw after it.
        assert_eq!(line.matches('\r').count(), 1, "{line:?}");
        assert_eq!(line.matches('\x1b').count(), 2, "{line:?}");
    }
    for c in log.chars() {
        assert!(
            !('\u{80}'..='\u{9f}').contains(&c) && c != '\u{202e}' && c != '\u{7f}' && c != '\u{7}',
            "raw {c:?} in the log:\n{log}"
        );
    }
}

#[test]
fn container_output_is_escaped_in_plain_logs_and_sections_still_work() {
    let env = hostile_env();
    let log = env.ci_sync_stderr("alpha");
    assert_only_our_markers(&log, &["stage_sync", "sync_alpha_attempt_1"]);
    // Our own sections are there, around the output.
    let start = log
        .find("\x1b[0Ksection_start:")
        .and_then(|_| log.find(":sync_alpha_attempt_1\r\x1b[0K[alpha] container output"))
        .expect(&log);
    let line = log.find("[alpha] alpha says hello").expect(&log);
    let end = log.find(":sync_alpha_attempt_1\r\x1b[0K\n").expect(&log);
    assert!(start < line && line < end, "{log}");
    // The hostile bytes are shown, escaped.
    for shown in [
        r"[alpha] visible\rHIDDEN-BY-CR",
        r"[alpha] \x1b[2K\x1b[31mred\x1b[0m",
        r"[alpha] \x1b[0Ksection_start:1700000000:forged[collapsed=true]\r\x1b[0Kforged header",
        r"[alpha] x\rsection_end:1700000000:stage_sync\r\x1b[0K",
        r"[alpha] c1 \u{9b} 31m bell \x07 del \x7f rlo \u{202e} end",
    ] {
        assert!(log.contains(shown), "{shown} missing:\n{log}");
    }
    // The syncer's own log file keeps the output as it was.
    let file = fs::read_to_string(env.root.join("logs/alpha.log")).unwrap();
    assert!(file.contains("visible\rHIDDEN-BY-CR"), "{file:?}");
}

#[test]
fn json_logs_escape_every_control_character() {
    let env = hostile_env();
    let log = env
        .sync_run()
        .args(["--json-logs", "sync"])
        .success()
        .run()
        .stderr;
    assert_only_our_markers(&log, &[]);
    let events: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    // JSON carries the text exactly; readers decide how to show it.
    let c1 = events
        .iter()
        .filter_map(|e| e["event"].as_str())
        .find(|e| e.starts_with("[alpha] c1"))
        .expect(&log);
    assert_eq!(
        c1,
        "[alpha] c1 \u{9b} 31m bell \u{7} del \u{7f} rlo \u{202e} end"
    );
}

#[cfg(feature = "gitlab")]
#[test]
fn a_server_error_text_is_escaped() {
    use httpmock::Method::POST;
    use httpmock::MockServer;

    let server = MockServer::start();
    let message =
        "\u{1b}[2K\rall good\n\u{1b}[0Ksection_start:1700000000:forged\r\u{1b}[0Kfake \u{9b}1m";
    server.mock(|when, then| {
        when.method(POST)
            .path("/api/v4/projects/42/trigger/pipeline");
        then.status(400)
            .json_body(serde_json::json!({ "message": message }));
    });
    let log = crate::trigger::trigger_run_url(&server.base_url())
        .env("CI", "true")
        .args(["--project", "42", "--trigger-token", "glptt-x"])
        .code(1)
        .stderr_has(
            r"\x1b[2K\rall good\n\x1b[0Ksection_start:1700000000:forged\r\x1b[0Kfake \u{9b}1m",
        )
        .run()
        .stderr;
    assert_only_our_markers(&log, &[]);
    // Every line is mirrorer's: a timestamped event or an indented cause.
    for line in log.lines() {
        assert!(
            line.starts_with("    caused by: ")
                || line.as_bytes().first().is_some_and(u8::is_ascii_digit),
            "{line:?}"
        );
    }
}
