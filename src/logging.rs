//! Log events: plain text or JSON lines on stderr, GitLab collapsible
//! sections, redaction of secret-looking fields (docs/cli.md, "Logging").
//!
//! Code logs through `tracing`'s macros with the event name as the message
//! and every detail as a field:
//!
//! ```
//! tracing::info!(container = "debian", attempt = 1, "sync_container_start");
//! ```
//!
//! The layer installed by [`init`] prints that as one line on stderr:
//!
//! ```text
//! 2026-06-03 12:00:00 INFO     mirrorer::stages::sync: sync_container_start container=debian attempt=1
//! ```
//!
//! - the local time, the level padded to 8 columns (Python's level names:
//!   DEBUG, INFO, WARNING, ERROR, CRITICAL), the target (the module path),
//!   the event name, then `key=value` per field in the order given;
//! - a value that is empty or holds blanks, quotes, `=`, `\` or control
//!   characters is written as a JSON string, so one event is one line;
//!   JSON's escapes are used for every control character (C0, DEL, C1)
//!   and for the Unicode line separators and bidi overrides;
//! - the free text of an event (the message, e.g. a container's output
//!   line) and the `caused by:` lines of an error have their control
//!   characters escaped ([`escape_text`]: `\r`, `\n`, `\x1b`, `\u{9b}`),
//!   so output from a container or a server cannot move the cursor,
//!   recolour, overwrite or hide a line, or forge a GitLab section marker
//!   (which needs a raw ESC and CR); the only raw control characters on
//!   stderr are those of [`section`]'s own markers;
//! - a field whose key looks secret ([`crate::redact::is_secret_name`]:
//!   `password`, `passwd`, `secret`, `token`, `key`, `credential`, ...) is
//!   written as `***`, and the password of any URL in a value or in free
//!   text as `***` ([`crate::redact::text`]);
//! - with JSON logs on, each event is one JSON object with the keys
//!   `timestamp`, `level`, `target`, `event` and `fields` (the same
//!   masking; every control character JSON-escaped).
//!
//! Stdout is never written here: it carries only a command's data.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::Write as _;
use std::str::FromStr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// A log level, with Python's names and order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    /// Details for debugging.
    Debug = 10,
    /// Normal progress.
    Info = 20,
    /// Something unexpected that the command worked around.
    Warning = 30,
    /// A failure.
    Error = 40,
    /// Only the most severe messages.
    Critical = 50,
}

impl Level {
    /// The Python-style name: `DEBUG`, `INFO`, `WARNING`, `ERROR`, `CRITICAL`.
    pub fn name(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warning => "WARNING",
            Level::Error => "ERROR",
            Level::Critical => "CRITICAL",
        }
    }

    fn from_u8(v: u8) -> Level {
        match v {
            0..=10 => Level::Debug,
            11..=20 => Level::Info,
            21..=30 => Level::Warning,
            31..=40 => Level::Error,
            _ => Level::Critical,
        }
    }

    fn from_tracing(level: &tracing::Level) -> Level {
        match *level {
            tracing::Level::TRACE | tracing::Level::DEBUG => Level::Debug,
            tracing::Level::INFO => Level::Info,
            tracing::Level::WARN => Level::Warning,
            tracing::Level::ERROR => Level::Error,
        }
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A level name that is not one of DEBUG, INFO, WARNING, ERROR, CRITICAL.
#[derive(Debug, thiserror::Error)]
#[error("unknown log level {0:?}: expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL")]
pub struct UnknownLevel(pub String);

impl FromStr for Level {
    type Err = UnknownLevel;

    /// Parses a level name, trimmed and in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_uppercase().as_str() {
            "DEBUG" => Ok(Level::Debug),
            "INFO" => Ok(Level::Info),
            "WARNING" => Ok(Level::Warning),
            "ERROR" => Ok(Level::Error),
            "CRITICAL" => Ok(Level::Critical),
            _ => Err(UnknownLevel(s.to_owned())),
        }
    }
}

static THRESHOLD: AtomicU8 = AtomicU8::new(Level::Info as u8);
static JSON: AtomicBool = AtomicBool::new(false);
static SECTIONS: AtomicBool = AtomicBool::new(false);
static INSTALLED: OnceLock<()> = OnceLock::new();

/// Installs the event layer as the global `tracing` subscriber (once per
/// process; later calls do nothing) and turns GitLab sections on when the
/// environment has `CI=true`.
pub fn init() {
    INSTALLED.get_or_init(|| {
        let subscriber = tracing_subscriber::registry().with(EventLayer);
        // Fails only if another subscriber is already installed (a test
        // harness); events then go there, which is acceptable.
        let _ = tracing::subscriber::set_global_default(subscriber);
    });
    let ci = std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    SECTIONS.store(ci, Ordering::Relaxed);
}

/// Sets the lowest level that is printed.
pub fn set_level(level: Level) {
    THRESHOLD.store(level as u8, Ordering::Relaxed);
}

/// The lowest level that is printed.
pub fn level() -> Level {
    Level::from_u8(THRESHOLD.load(Ordering::Relaxed))
}

/// Switches between plain-text lines (`false`) and JSON lines (`true`).
pub fn set_json(json: bool) {
    JSON.store(json, Ordering::Relaxed);
}

/// Whether GitLab collapsible sections are written (`CI=true`, plain text).
pub fn sections_enabled() -> bool {
    SECTIONS.load(Ordering::Relaxed) && !JSON.load(Ordering::Relaxed)
}

/// Whether a field with this key is shown as `***` (the rule of
/// [`crate::redact::is_secret_name`]).
pub fn is_secret_key(key: &str) -> bool {
    crate::redact::is_secret_name(key)
}

/// Whether `c` must not reach a log raw: a control character other than
/// tab (C0, DEL, C1), a Unicode line or paragraph separator, or a
/// bidirectional formatting character (which can reorder what a reader
/// sees).
fn is_unsafe_char(c: char) -> bool {
    (c.is_control() && c != '\t')
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// `text` with every unsafe character (control characters but tab, line
/// separators, bidi controls) written as an escape: `\r`, `\n`, `\x1b`
/// and `\xNN` below U+0080, `\u{NNNN}` above (`\u{9b}`, `\u{202e}`).
/// Backslashes are left as they are. Borrowed when nothing needs escaping.
pub fn escape_text(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            c if is_unsafe_char(c) && (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if is_unsafe_char(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// `json` (serialized JSON) with the unsafe characters serde_json leaves
/// raw (DEL, C1, line separators, bidi controls) as `\uNNNN` escapes:
/// still valid JSON with the same value, since such characters can only
/// occur inside strings.
fn json_escape_rest(json: String) -> String {
    if !json.chars().any(is_unsafe_char) {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 8);
    for c in json.chars() {
        if is_unsafe_char(c) {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// Writes `value` as a log field value: as is when it is a plain word, else
/// as a JSON string (every control character escaped, see the module docs).
pub fn quote_value(value: &str) -> String {
    let needs_quotes = value.is_empty()
        || value.chars().any(|c| {
            c.is_whitespace() || is_unsafe_char(c) || matches!(c, '"' | '\'' | '=' | '\\')
        });
    if needs_quotes {
        json_escape_rest(serde_json::Value::String(value.to_owned()).to_string())
    } else {
        value.to_owned()
    }
}

/// One event, ready to print.
struct Record<'a> {
    level: Level,
    target: &'a str,
    event: String,
    fields: Vec<(String, String)>,
}

fn timestamp_plain() -> String {
    chrono::Local::now().format("%Y-%m-%d %H:%M:%S").to_string()
}

fn render(record: &Record<'_>) -> String {
    let fields = record
        .fields
        .iter()
        .map(|(k, v)| {
            let v = if is_secret_key(k) {
                Cow::Borrowed(crate::redact::MASK)
            } else {
                crate::redact::text(v)
            };
            (k.as_str(), v)
        })
        .collect::<Vec<_>>();
    let event = crate::redact::text(&record.event);
    if JSON.load(Ordering::Relaxed) {
        let map: serde_json::Map<String, serde_json::Value> = fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), serde_json::Value::String(v.to_string())))
            .collect();
        let line = serde_json::json!({
            "timestamp": chrono::Local::now().format("%Y-%m-%dT%H:%M:%S%.3f%:z").to_string(),
            "level": record.level.name(),
            "target": record.target,
            "event": event,
            "fields": map,
        });
        let mut text = json_escape_rest(line.to_string());
        text.push('\n');
        text
    } else {
        let mut text = format!(
            "{} {:<8} {}: {}",
            timestamp_plain(),
            record.level.name(),
            escape_text(record.target),
            escape_text(&event)
        );
        for (k, v) in fields {
            let _ = write!(text, " {}={}", escape_text(k), quote_value(&v));
        }
        text.push('\n');
        text
    }
}

fn write_stderr(text: &str) {
    let mut err = std::io::stderr().lock();
    // Nothing sensible can be done when stderr is gone.
    let _ = err.write_all(text.as_bytes());
    let _ = err.flush();
}

struct EventLayer;

#[derive(Default)]
struct FieldVisitor {
    event: Option<String>,
    fields: Vec<(String, String)>,
}

impl Visit for FieldVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.push(field, format!("{value:?}"));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, value.to_string());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field, value.to_string());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, value.to_string());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push(field, value.to_string());
    }
}

impl FieldVisitor {
    fn push(&mut self, field: &Field, value: String) {
        if field.name() == "message" {
            self.event = Some(value);
        } else {
            self.fields.push((field.name().to_owned(), value));
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for EventLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let level = Level::from_tracing(meta.level());
        if level < self::level() {
            return;
        }
        let mut visitor = FieldVisitor::default();
        event.record(&mut visitor);
        let record = Record {
            level,
            target: meta.target(),
            event: visitor.event.unwrap_or_default(),
            fields: visitor.fields,
        };
        write_stderr(&render(&record));
    }
}

/// Logs the error that ends a command, whatever the level threshold: an
/// ERROR event `event` with `error=<message>` and the given fields, then
/// (plain text) one `    caused by: <message>` line per cause, or (JSON) a
/// `causes` field listing them.
pub fn report_error(
    target: &str,
    event: &str,
    error: &(dyn std::error::Error + 'static),
    extra: &[(&str, String)],
) {
    let mut fields: Vec<(String, String)> = extra
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    fields.push(("error".to_owned(), error.to_string()));
    let mut causes = Vec::new();
    let mut source = error.source();
    while let Some(cause) = source {
        causes.push(cause.to_string());
        source = cause.source();
    }
    if JSON.load(Ordering::Relaxed) && !causes.is_empty() {
        fields.push(("causes".to_owned(), causes.join("\n")));
    }
    let record = Record {
        level: Level::Error,
        target,
        event: event.to_owned(),
        fields,
    };
    let mut text = render(&record);
    if !JSON.load(Ordering::Relaxed) {
        for cause in causes {
            let cause = crate::redact::text(&cause);
            let _ = writeln!(text, "    caused by: {}", escape_text(&cause));
        }
    }
    write_stderr(&text);
}

/// A GitLab collapsible section of the job log, closed when dropped.
///
/// Written only when [`sections_enabled`]; the markers follow GitLab's
/// "Custom collapsible sections" (docs.gitlab.com/ci/jobs/job_logs/):
/// `\e[0Ksection_start:<unix time>:<name>[collapsed=true]\r\e[0K<header>`
/// and `\e[0Ksection_end:<unix time>:<name>\r\e[0K`.
#[must_use = "the section ends when this value is dropped"]
pub struct Section {
    name: Option<String>,
}

/// The marker line that opens section `name` with the visible `header`
/// at `unix_time` (characters of `name` outside `[A-Za-z0-9_.-]` become
/// `_`; control characters of `header` are dropped).
pub fn section_start_marker(name: &str, header: &str, collapsed: bool, unix_time: i64) -> String {
    let options = if collapsed { "[collapsed=true]" } else { "" };
    let header: String = header.chars().filter(|c| !c.is_control()).collect();
    format!(
        "\x1b[0Ksection_start:{unix_time}:{}{options}\r\x1b[0K{header}\n",
        section_name(name)
    )
}

/// The marker line that closes section `name` at `unix_time`.
pub fn section_end_marker(name: &str, unix_time: i64) -> String {
    format!(
        "\x1b[0Ksection_end:{unix_time}:{}\r\x1b[0K\n",
        section_name(name)
    )
}

fn section_name(name: &str) -> String {
    crate::text::safe_chars(name).collect()
}

/// Opens a collapsible section named after `name` with the visible
/// `header` (see [`section_start_marker`]); it ends when the returned
/// value is dropped. Does nothing unless [`sections_enabled`].
pub fn section(name: &str, header: &str, collapsed: bool) -> Section {
    if !sections_enabled() {
        return Section { name: None };
    }
    write_stderr(&section_start_marker(
        name,
        header,
        collapsed,
        chrono::Utc::now().timestamp(),
    ));
    Section {
        name: Some(name.to_owned()),
    }
}

impl Drop for Section {
    fn drop(&mut self) {
        if let Some(name) = &self.name {
            write_stderr(&section_end_marker(name, chrono::Utc::now().timestamp()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_names_parse_in_any_case() {
        assert_eq!(" warning ".parse::<Level>().unwrap(), Level::Warning);
        assert_eq!("critical".parse::<Level>().unwrap(), Level::Critical);
        assert!("NOPE".parse::<Level>().is_err());
    }

    #[test]
    fn values_with_blanks_or_quotes_are_quoted() {
        crate::testing::assert_cases(
            quote_value,
            &[
                ("debian", "debian"),
                ("a b", r#""a b""#),
                ("", r#""""#),
                ("line\nbreak", r#""line\nbreak""#),
                ("it's", r#""it's""#),
            ],
        );
    }

    #[test]
    fn plain_lines_redact_secret_fields() {
        let record = Record {
            level: Level::Warning,
            target: "mirrorer::t",
            event: "evt".to_owned(),
            fields: vec![
                ("container".to_owned(), "debian".to_owned()),
                ("api_token".to_owned(), "s3cret".to_owned()),
                ("note".to_owned(), "two words".to_owned()),
            ],
        };
        let line = render(&record);
        assert!(
            line.ends_with(
                " WARNING  mirrorer::t: evt container=debian api_token=*** note=\"two words\"\n"
            ),
            "{line}"
        );
        assert!(!line.contains("s3cret"));
    }

    #[test]
    fn control_characters_are_escaped_in_plain_lines() {
        assert_eq!(
            escape_text("a\rb\x1b[31mc\u{9b}d\u{7f}\u{202e}e\tf\ng"),
            "a\\rb\\x1b[31mc\\u{9b}d\\x7f\\u{202e}e\tf\\ng"
        );
        assert!(matches!(escape_text("plain \\r text"), Cow::Borrowed(_)));
        assert_eq!(quote_value("c1\u{9b}x"), "\"c1\\u009bx\"");
        let record = Record {
            level: Level::Info,
            target: "mirrorer::t",
            event: "[a] \x1b[0Ksection_start:1:x\r\x1b[0Kfake https://u:pw@h/".to_owned(),
            fields: vec![("url".to_owned(), "http://u:pw@h".to_owned())],
        };
        let line = render(&record);
        assert!(
            line.ends_with(
                "[a] \\x1b[0Ksection_start:1:x\\r\\x1b[0Kfake https://u:***@h/ url=http://u:***@h\n"
            ),
            "{line}"
        );
    }

    #[test]
    fn gitlab_section_markers() {
        assert_eq!(
            section_start_marker("sync debian", "sync: debian\n", true, 1_780_000_000),
            "\x1b[0Ksection_start:1780000000:sync_debian[collapsed=true]\r\x1b[0Ksync: debian\n"
        );
        assert_eq!(
            section_end_marker("sync debian", 1_780_000_001),
            "\x1b[0Ksection_end:1780000001:sync_debian\r\x1b[0K\n"
        );
    }

    #[test]
    fn secret_looking_keys_follow_redact() {
        // The rule itself is tested in `redact`; this is its use for fields.
        assert!(is_secret_key("db_passwd"));
        assert!(!is_secret_key("container"));
    }
}
