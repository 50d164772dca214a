//! Small text transforms shared by the renderers: escaping for HTML and
//! XML (the fleet page, the JUnit report), and names restricted to a safe
//! set of characters (GitLab section names, perfdata labels).

/// `text` with `&`, `<`, `>` and `"` replaced by their entities, and every
/// other character `c` by `other(c)` where that is `Some`; safe in element
/// content and in double-quoted attribute values.
pub(crate) fn escape(text: &str, other: impl Fn(char) -> Option<&'static str>) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => match other(c) {
                Some(entity) => out.push_str(entity),
                None => out.push(c),
            },
        }
    }
    out
}

/// The characters of `text` with every one outside `[A-Za-z0-9_.-]` as `_`
/// (one output character per input character).
pub(crate) fn safe_chars(text: &str) -> impl Iterator<Item = char> + '_ {
    text.chars().map(|c| {
        if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
            c
        } else {
            '_'
        }
    })
}
