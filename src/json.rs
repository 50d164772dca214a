//! The JSON rendering shared by every document this tool writes
//! (docs/metadata.md, "JSON rendering").
//!
//! Object keys sorted by code point at every level (serde_json's map is a
//! `BTreeMap`, whose byte order of UTF-8 keys is code-point order), 2-space
//! indentation, `": "` between key and value, non-ASCII written as UTF-8,
//! empty containers as `[]` and `{}`, and one trailing newline.

use serde::Serialize;

/// Renders `value` as the canonical pretty JSON text described in the module
/// docs, ending with one newline.
///
/// # Errors
/// Fails only if `value`'s `Serialize` implementation fails (for example a
/// map with non-string keys).
pub fn to_pretty_string<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    // Going through `Value` sorts the keys of structs as well as of maps.
    let value = serde_json::to_value(value)?;
    let mut text = serde_json::to_string_pretty(&value)?;
    text.push('\n');
    Ok(text)
}

/// Renders `value` as canonical JSON on one line (sorted keys, `", "` and
/// `": "` separators as Python's `json.dumps` writes them), without newline.
///
/// # Errors
/// As [`to_pretty_string`].
pub fn to_line_string<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    let value = serde_json::to_value(value)?;
    let mut out = String::new();
    write_line(&value, &mut out);
    Ok(out)
}

fn write_line(value: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match value {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_line(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push_str(": ");
                write_line(item, out);
            }
            out.push('}');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pretty_sorts_keys_and_keeps_utf8() {
        let value = serde_json::json!({"b": [], "a": {"é": 1, "c": {}}});
        assert_eq!(
            to_pretty_string(&value).unwrap(),
            "{\n  \"a\": {\n    \"c\": {},\n    \"é\": 1\n  },\n  \"b\": []\n}\n"
        );
    }

    #[test]
    fn line_form_matches_python_dumps() {
        let value = serde_json::json!({"warnings_count": 0, "formats": ["apt", "rpm"]});
        assert_eq!(
            to_line_string(&value).unwrap(),
            r#"{"formats": ["apt", "rpm"], "warnings_count": 0}"#
        );
    }
}
