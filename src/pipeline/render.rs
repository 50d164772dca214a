//! Rendering of the child pipeline from `templates/child-pipeline.yml.j2`
//! with minijinja, and the check of the rendered text.
//!
//! Two filters do all quoting:
//! - `yaml` ([`yaml_quote`]): a string becomes a YAML double-quoted scalar
//!   with every character that could end or fold it escaped (YAML 1.2
//!   §7.3.1; also read correctly by YAML 1.1 parsers, so `yes`, `on`,
//!   `null`, `1e3` stay strings), numbers and booleans stay plain;
//! - `sh` ([`shell_word`]): a string becomes exactly one POSIX shell word.
//!
//! The environment is strict: an undefined value is an error, and the
//! formatter refuses to print any value that did not go through `yaml`, so
//! no config value can reach the output unquoted. The rendered text is
//! parsed back and checked ([`check_rendered`]) before anyone sees it.

use std::collections::BTreeSet;

use minijinja::value::{Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind, UndefinedBehavior};

use super::jobs::JobGraph;

/// The child-pipeline template, embedded at build time.
pub const TEMPLATE: &str = include_str!("../../templates/child-pipeline.yml.j2");

const TEMPLATE_NAME: &str = "child-pipeline.yml.j2";

/// A rendering failure: a template error or rendered text that does not
/// parse back as the planned pipeline (both are bugs, reported with detail).
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The template could not be rendered.
    #[error("could not render the child pipeline template")]
    Template(#[source] minijinja::Error),
    /// The rendered text is not the planned pipeline.
    #[error("the rendered child pipeline is invalid: {0}")]
    Invalid(String),
}

/// Writes `s` as a YAML double-quoted scalar.
///
/// `\` and `"` are escaped, and so is every character outside YAML's
/// printable set or that a reader would treat as a line break or BOM
/// (C0 and C1 controls, DEL, U+2028, U+2029, U+FEFF): such characters are
/// written as `\xXX` or `\uXXXX`. Everything else is written as is (UTF-8).
pub fn yaml_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || (0x7f..=0x9f).contains(&(c as u32)) => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            '\u{2028}' | '\u{2029}' | '\u{feff}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Writes `s` as one POSIX shell word: unchanged when it is non-empty and
/// made only of `[A-Za-z0-9_./:@%+,-]`, else in single quotes with each `'`
/// written as `'\''`. The shell passes the word on as exactly `s`.
pub fn shell_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '_' | '.' | '/' | ':' | '@' | '%' | '+' | ',' | '-')
        });
    if plain {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

fn is_var_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_uppercase() || c == '_')
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

fn yaml_filter(value: Value) -> Result<Value, Error> {
    let text = match value.kind() {
        ValueKind::String => yaml_quote(value.as_str().unwrap_or_default()),
        ValueKind::Number | ValueKind::Bool => value.to_string(),
        other => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("the yaml filter takes a string, number or boolean, not {other}"),
            ));
        }
    };
    Ok(Value::from_safe_string(text))
}

fn sh_filter(value: Value) -> Result<String, Error> {
    match value.kind() {
        ValueKind::String => Ok(shell_word(value.as_str().unwrap_or_default())),
        ValueKind::Map => {
            let var = value.get_attr("var")?;
            match var.as_str() {
                Some(name) if is_var_name(name) => Ok(format!("\"${name}\"")),
                _ => Err(Error::new(
                    ErrorKind::InvalidOperation,
                    format!("the sh filter takes a string or {{var: NAME}}, got {value}"),
                )),
            }
        }
        other => Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("the sh filter takes a string, not {other}"),
        )),
    }
}

fn environment() -> Result<Environment<'static>, Error> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_syntax(
        minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(true)
            .build()?,
    );
    env.add_filter("yaml", yaml_filter);
    env.add_filter("sh", sh_filter);
    // `safe` would let a value skip quoting; there is no use for it here.
    env.remove_filter("safe");
    env.set_formatter(|out, _state, value| {
        if value.is_safe() {
            out.write_str(value.as_str().unwrap_or_default())
                .map_err(|e| Error::new(ErrorKind::WriteFailure, e.to_string()))
        } else {
            Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("value {value:?} printed without the yaml filter"),
            ))
        }
    });
    env.add_template(TEMPLATE_NAME, TEMPLATE)?;
    Ok(env)
}

/// Renders `plan` as the child pipeline's YAML text and checks it with
/// [`check_rendered`].
///
/// # Errors
/// [`RenderError`] if the template fails or the text does not parse back
/// as the plan.
pub fn render(plan: &JobGraph) -> Result<String, RenderError> {
    let env = environment().map_err(RenderError::Template)?;
    let template = env
        .get_template(TEMPLATE_NAME)
        .map_err(RenderError::Template)?;
    let mut text = template
        .render(minijinja::value::Serde(plan))
        .map_err(RenderError::Template)?;
    if !text.ends_with('\n') {
        text.push('\n');
    }
    check_rendered(&text, plan)?;
    Ok(text)
}

/// Parses `text` back and checks that it is the pipeline `plan` describes:
/// the declared stages, the `MIRRORER_CONFIG` variable and runner tags,
/// exactly the planned jobs (names read back unchanged), each in a declared
/// stage, each `needs` naming a job of the same pipeline, one script line
/// per job.
///
/// # Errors
/// [`RenderError::Invalid`] naming the first difference.
pub fn check_rendered(text: &str, plan: &JobGraph) -> Result<(), RenderError> {
    use serde_yaml::Value as Y;
    let bad = |m: String| Err(RenderError::Invalid(m));
    let doc: Y =
        serde_yaml::from_str(text).map_err(|e| RenderError::Invalid(format!("not YAML: {e}")))?;
    let Y::Mapping(top) = &doc else {
        return bad("the top level is not a mapping".to_owned());
    };
    /// The strings of a list read back; none when absent or not a list.
    fn strings(node: Option<&Y>) -> Vec<&str> {
        node.and_then(Y::as_sequence)
            .map(|s| s.iter().filter_map(Y::as_str).collect())
            .unwrap_or_default()
    }
    let stages = strings(top.get("stages"));
    if stages != plan.stages {
        return bad(format!("stages read back as {stages:?}"));
    }
    let config = top
        .get("variables")
        .and_then(|v| v.get("MIRRORER_CONFIG"))
        .and_then(|v| v.get("value"))
        .and_then(Y::as_str);
    if config != Some(plan.config_path.as_str()) {
        return bad(format!("MIRRORER_CONFIG read back as {config:?}"));
    }
    let tags = strings(top.get("default").and_then(|d| d.get("tags")));
    if tags != plan.runner_tags {
        return bad(format!("runner tags read back as {tags:?}"));
    }
    let reserved = ["stages", "workflow", "default", "variables"];
    let mut names = BTreeSet::new();
    for (key, _) in top {
        match key.as_str() {
            Some(k) if reserved.contains(&k) => {}
            Some(k) => {
                names.insert(k);
            }
            None => return bad(format!("a job name is not a string: {key:?}")),
        }
    }
    let planned: BTreeSet<&str> = plan.jobs.iter().map(|j| j.name.as_str()).collect();
    if names != planned {
        return bad(format!("jobs read back as {names:?}, planned {planned:?}"));
    }
    for job in &plan.jobs {
        let Some(node) = top.get(job.name.as_str()) else {
            return bad(format!("job {:?} is missing", job.name));
        };
        let stage = node.get("stage").and_then(Y::as_str).unwrap_or_default();
        if !stages.contains(&stage) {
            return bad(format!(
                "job {:?} has the undeclared stage {stage:?}",
                job.name
            ));
        }
        let needs = strings(node.get("needs"));
        if needs != job.needs {
            return bad(format!("job {:?} needs read back as {needs:?}", job.name));
        }
        if let Some(missing) = needs.iter().find(|n| !names.contains(*n)) {
            return bad(format!(
                "job {:?} needs {missing:?}, which is not in the pipeline",
                job.name
            ));
        }
        let script_lines = node.get("script").and_then(Y::as_sequence).map(Vec::len);
        if script_lines != Some(1) {
            return bad(format!("job {:?} has no single script line", job.name));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::assert_cases;

    #[test]
    fn yaml_quote_escapes_breaks_and_quotes() {
        assert_cases(
            yaml_quote,
            &[
                ("yes", r#""yes""#),
                ("a\"b\\c", r#""a\"b\\c""#),
                ("a\nb", r#""a\nb""#),
                ("a\u{2028}b\u{85}", r#""a\u2028b\x85""#),
            ],
        );
        for s in [
            "yes",
            "on",
            "null",
            "1e3",
            "~",
            "a\nb",
            "x'; touch /tmp/p; echo '",
            "- x",
            "#c",
            "été",
        ] {
            let back: String = serde_yaml::from_str(&yaml_quote(s)).unwrap();
            assert_eq!(back, s);
        }
    }

    #[test]
    fn shell_words() {
        assert_cases(
            shell_word,
            &[
                ("debian", "debian"),
                ("", "''"),
                ("it's", r"'it'\''s'"),
                ("$(id)", "'$(id)'"),
                ("-x", "-x"),
            ],
        );
    }
}
