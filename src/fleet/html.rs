//! `index.html` of the fleet: one static page (no JavaScript, inline CSS)
//! with a table of shards x prefixes coloured by freshness, the time it was
//! built, and links to each shard's metadata. Every value that came from a
//! shard (prefix and snapshot names, states, times) and from `fleet.yaml`
//! is HTML-escaped ([`escape`]).

use std::fmt::Write as _;

use super::FleetReport;

/// `text` with `&`, `<`, `>`, `"` and `'` replaced by entities, safe in
/// element content and in quoted attribute values.
pub fn escape(text: &str) -> String {
    crate::text::escape(text, |c| (c == '\'').then_some("&#39;"))
}

fn age_text(age_s: Option<i64>) -> String {
    match age_s {
        None => "age unknown".to_owned(),
        Some(s) if s < 3600 => format!("{} min", s / 60),
        Some(s) if s < 2 * 86400 => format!("{} h", s / 3600),
        Some(s) => format!("{} d", s / 86400),
    }
}

const STYLE: &str = "body{font-family:sans-serif;margin:1.5em}\
table{border-collapse:collapse}\
th,td{border:1px solid #999;padding:.3em .6em;text-align:left}\
.fresh{background:#b7e4b0}.stale{background:#f7c873}.unknown{background:#ddd}\
.down,.http_error,.invalid{background:#f29c9c}.absent{background:#fff;color:#999}";

/// Renders the page for `report`.
pub fn render(report: &FleetReport) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>dist-mirror fleet</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <h1>dist-mirror fleet</h1>\n\
         <p>Built at <time id=\"generated-at\">{}</time>: {} shards, {} answered, {} fresh. \
         Fresh: snapshot at most {} h old, syncers at most {} h. \
         Data: <a href=\"fleet.json\">fleet.json</a>.</p>\n",
        escape(&report.generated_at),
        report.summary.shards,
        report.summary.answered,
        report.summary.fresh,
        report.thresholds.snapshot_max_age_s / 3600,
        report.thresholds.syncer_max_age_s / 3600,
    );
    h.push_str("<table id=\"fleet\">\n<thead>\n<tr><th>shard</th><th>state</th><th>latest snapshot</th><th>promoted</th><th>metadata</th>");
    for prefix in report.prefixes.keys() {
        let _ = write!(h, "<th class=\"prefix\">{}</th>", escape(prefix));
    }
    h.push_str("</tr>\n</thead>\n<tbody>\n");
    for s in &report.shards {
        let _ = write!(
            h,
            "<tr><th class=\"shard\">{}</th><td class=\"{}\">{}",
            escape(&s.name),
            s.state,
            s.state
        );
        if !s.answered {
            let why = s.inventory.error.as_deref().unwrap_or(s.inventory.state);
            let _ = write!(h, ": {}", escape(why));
        }
        h.push_str("</td>");
        match &s.latest {
            Some(l) => {
                let _ = write!(
                    h,
                    "<td>{} ({})</td>",
                    escape(&l.name),
                    escape(&age_text(l.age_s))
                );
            }
            None => h.push_str("<td>none</td>"),
        }
        match &s.promoted {
            Some(p) => {
                let _ = write!(h, "<td>{}</td>", escape(&p.name));
            }
            None => h.push_str("<td>none</td>"),
        }
        let _ = write!(
            h,
            "<td><a href=\"{}\">inventory.json</a> ({}) <a href=\"{}\">status.json</a> ({})</td>",
            escape(&s.inventory.url),
            escape(s.inventory.state),
            escape(&s.status.url),
            escape(s.status.state),
        );
        for prefix in report.prefixes.keys() {
            let (class, text) = match s.prefixes.get(prefix) {
                None => ("absent", "-"),
                Some(Some(true)) => ("fresh", "fresh"),
                Some(Some(false)) => ("stale", "stale"),
                Some(None) => ("unknown", "unknown"),
            };
            let _ = write!(
                h,
                "<td class=\"{class}\" title=\"{}: {}\">{text}</td>",
                escape(&s.name),
                escape(prefix)
            );
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody>\n</table>\n</body>\n</html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<script>alert('x')&\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;)&amp;&quot;&lt;/script&gt;"
        );
    }
}
