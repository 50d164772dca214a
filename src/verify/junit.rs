//! The JUnit XML form of a report (the format GitLab reads with
//! `artifacts:reports:junit`): one `<testsuite name="mirrorer verify">` with
//! one `<testcase classname="TYPE" name="ID">` per repository; a repository
//! with problems has one `<failure>` whose text lists them, one per line
//! (`problem path expected=... actual=...`).

use super::model::Report;

fn escape(text: &str) -> String {
    crate::text::escape(text, |c| match c {
        '\'' => Some("&apos;"),
        // Characters XML 1.0 cannot carry.
        c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => Some("\u{FFFD}"),
        _ => None,
    })
}

/// Renders `report` as a JUnit XML document (UTF-8, trailing newline).
pub fn render(report: &Report) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let tests = report.repositories.len();
    let failures = report.totals.repositories_failed;
    out.push_str(&format!(
        "<testsuites name=\"mirrorer verify\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\">\n"
    ));
    out.push_str(&format!(
        "  <testsuite name=\"mirrorer verify\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\" timestamp=\"{}\">\n",
        escape(&report.generated_at)
    ));
    for repo in &report.repositories {
        let head = format!(
            "    <testcase classname=\"{}\" name=\"{}\"",
            escape(&repo.kind),
            escape(&repo.id)
        );
        if repo.problems_count == 0 {
            out.push_str(&head);
            out.push_str("/>\n");
            continue;
        }
        out.push_str(&head);
        out.push_str(">\n");
        let mut text = String::new();
        for p in &repo.problems {
            text.push_str(&format!(
                "{} {} expected={} actual={}\n",
                p.problem.as_str(),
                p.path,
                p.expected.as_deref().unwrap_or("-"),
                p.actual.as_deref().unwrap_or("-")
            ));
        }
        if repo.problems_count > repo.problems.len() as u64 {
            text.push_str(&format!(
                "... {} more\n",
                repo.problems_count - repo.problems.len() as u64
            ));
        }
        out.push_str(&format!(
            "      <failure type=\"verify\" message=\"{} problem(s) in {}\">{}</failure>\n",
            repo.problems_count,
            escape(&repo.id),
            escape(&text)
        ));
        out.push_str("    </testcase>\n");
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}
