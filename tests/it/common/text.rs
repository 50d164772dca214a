//! Output as text, assertions on text that show it when they fail, and the
//! insta snapshot settings the tests share.

use std::process::Output;

/// stdout of a finished command as text (lossy UTF-8).
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// stderr of a finished command as text (lossy UTF-8).
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `s` with every regex metacharacter escaped, for insta filters.
pub fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if "\\.+*?()|[]{}^$".contains(c) {
                vec!['\\', c]
            } else {
                vec![c]
            }
        })
        .collect()
}

/// Asserts `text` against the insta snapshot `tests/snapshots/<name>.snap`
/// (no module prefix in the name), after replacing each regex of `filters`
/// by its placeholder.
pub fn assert_snapshot(name: &str, text: &str, filters: Vec<(String, &str)>) {
    let filters: Vec<(&str, &str)> = filters.iter().map(|(r, p)| (r.as_str(), *p)).collect();
    insta::with_settings!({
        filters => filters,
        prepend_module_to_snapshot => false,
        snapshot_path => super::repo_root().join("tests/snapshots"),
    }, {
        insta::assert_snapshot!(name, text);
    })
}

/// Asserts that `text` contains `want`; the failure shows both.
#[track_caller]
pub fn assert_has(text: &str, want: &str) {
    assert!(text.contains(want), "missing {want:?} in:\n{text}");
}

/// Asserts that `text` contains each of `wants` ([`assert_has`]).
#[track_caller]
pub fn assert_has_all(text: &str, wants: &[&str]) {
    for want in wants {
        assert_has(text, want);
    }
}

/// Asserts that `text` starts with `prefix`; the failure shows both.
#[track_caller]
pub fn assert_starts_with(text: &str, prefix: &str) {
    assert!(
        text.starts_with(prefix),
        "{text:?} does not start with {prefix:?}"
    );
}

/// Asserts that each of `lines` is a whole line of `text`; the failure
/// names the missing line and shows `text`.
#[track_caller]
pub fn assert_has_lines(text: &str, lines: &[&str]) {
    for want in lines {
        assert!(
            text.lines().any(|l| l == *want),
            "missing line {want:?} in:\n{text}"
        );
    }
}
