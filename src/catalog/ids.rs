//! Identifier, path and text helpers of the catalog (docs/metadata.md,
//! "Identifier helpers"), with the exact character classes of the reference
//! implementation: "whitespace" is Python's `str.isspace()` (Unicode
//! `White_Space` plus the separators U+001C..U+001F), integers are parsed as
//! Python's `int()` parses ASCII text.

/// True for the characters Python's `str.isspace()` accepts.
pub fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Trims Python whitespace (see [`is_py_space`]) at both ends, as `str.strip()`.
pub fn py_strip(s: &str) -> &str {
    s.trim_matches(is_py_space)
}

/// Splits on runs of Python whitespace, dropping empty parts, as `str.split()`.
pub fn py_split(s: &str) -> impl Iterator<Item = &str> {
    s.split(is_py_space).filter(|part| !part.is_empty())
}

/// Splits text into lines as Python's `str.splitlines()`: at `\n`, `\r\n`,
/// `\r`, `\v`, `\f`, U+001C..U+001E, U+0085, U+2028 and U+2029; a final line
/// break does not open an empty line.
pub fn py_splitlines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let is_break = matches!(
            c,
            '\n' | '\r'
                | '\u{0b}'
                | '\u{0c}'
                | '\u{1c}'
                | '\u{1d}'
                | '\u{1e}'
                | '\u{85}'
                | '\u{2028}'
                | '\u{2029}'
        );
        if is_break {
            lines.push(&text[start..i]);
            let mut end = i + c.len_utf8();
            if c == '\r'
                && let Some(&(j, '\n')) = chars.peek()
            {
                chars.next();
                end = j + 1;
            }
            start = end;
        }
    }
    if start < text.len() {
        lines.push(&text[start..]);
    }
    lines
}

/// Parses an integer as Python's `int(text)` does for ASCII text: optional
/// surrounding whitespace, optional sign, decimal digits with single `_`
/// between digits. `None` when it is not such an integer or does not fit i64.
pub fn py_int(text: &str) -> Option<i64> {
    let s = py_strip(text);
    let (negative, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return None;
    }
    let mut value: i64 = 0;
    for b in digits.bytes() {
        match b {
            b'_' => continue,
            b'0'..=b'9' => {
                let digit = i64::from(b - b'0');
                value = value.checked_mul(10)?;
                value = if negative {
                    value.checked_sub(digit)?
                } else {
                    value.checked_add(digit)?
                };
            }
            _ => return None,
        }
    }
    Some(value)
}

fn safe_chars(s: &str, slash: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_space = false;
    for c in s.chars() {
        if c == '/' {
            out.push_str(slash);
            in_space = false;
        } else if is_py_space(c) {
            if !in_space {
                out.push('_');
            }
            in_space = true;
        } else {
            in_space = false;
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '_' | '-') {
                out.push(c);
            } else {
                out.push('_');
            }
        }
    }
    out
}

/// `safe_id(s)`: `/` becomes `_`, each run of whitespace `_`, then every
/// character outside `[A-Za-z0-9.+_-]` becomes `_` (one per character).
pub fn safe_id(s: &str) -> String {
    safe_chars(s, "_")
}

/// `safe_path_id(s)`: as [`safe_id`] but `/` becomes `__`.
pub fn safe_path_id(s: &str) -> String {
    safe_chars(s, "__")
}

/// Lexical normalisation of a path as Python's `pathlib.PurePosixPath`
/// renders it: empty and `.` components dropped, `..` kept, no trailing `/`;
/// exactly two leading slashes stay `//`, one or three-plus become `/`; the
/// empty result is `.`. Works on raw bytes (file names need not be UTF-8).
pub fn pathlib_norm(path: &[u8]) -> Vec<u8> {
    let leading: &[u8] = if path.starts_with(b"//") && !path.starts_with(b"///") {
        b"//"
    } else if path.starts_with(b"/") {
        b"/"
    } else {
        b""
    };
    let parts: Vec<&[u8]> = path
        .split(|b| *b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .collect();
    let mut out = leading.to_vec();
    out.extend_from_slice(&parts.join(&b'/'));
    if out.is_empty() {
        out.push(b'.');
    }
    out
}

/// `base / rel` as Python's `pathlib` joins and renders paths: an absolute
/// `rel` replaces `base`; the result is normalised by [`pathlib_norm`] (`.`
/// and empty components dropped, `..` kept).
pub fn pathlib_join(base: &str, rel: &str) -> String {
    let joined = if rel.starts_with('/') {
        rel.to_owned()
    } else {
        format!("{base}/{rel}")
    };
    // Only '/' and '.' bytes are touched, so valid UTF-8 stays valid.
    String::from_utf8_lossy(&pathlib_norm(joined.as_bytes())).into_owned()
}

/// A file name or path from the file system as text: valid UTF-8 is kept, and
/// every byte that is not part of valid UTF-8 becomes one U+FFFD (so ids made
/// from it have one `_` per such byte, as the reference implementation's).
pub fn lossy_name(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for _ in chunk.invalid() {
            out.push('\u{fffd}');
        }
    }
    out
}

/// Decodes file content as UTF-8 with Python's `backslashreplace`: every byte
/// that is not part of valid UTF-8 is written as the four characters `\xNN`
/// (lower-case hex).
pub fn decode_backslashreplace(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::assert_cases;

    #[test]
    fn safe_ids_follow_the_spec() {
        assert_cases(
            safe_id,
            &[
                ("a/b c\t\td", "a_b_c_d"),
                ("x:y+z.é", "x_y+z._"),
                ("p\u{fffd}\u{fffd}", "p__"),
                (" / ", "___"),
            ],
        );
        assert_eq!(safe_path_id("a/b c"), "a__b_c");
    }

    #[test]
    fn pathlib_norm_keeps_dotdot() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"./a//b/./c/", b"a/b/c"),
            (b"a/../a", b"a/../a"),
            (b"//a/", b"//a"),
            (b"///a", b"/a"),
            (b"./", b"."),
            (b"", b"."),
        ];
        assert_cases(pathlib_norm, cases);
    }

    #[test]
    fn pathlib_join_keeps_dotdot_and_absolute() {
        assert_eq!(pathlib_join("r/a", "../a/x"), "r/a/../a/x");
        assert_eq!(pathlib_join("r/a", "/abs/x"), "/abs/x");
        assert_eq!(
            pathlib_join(".", "repodata/repomd.xml"),
            "repodata/repomd.xml"
        );
        assert_eq!(
            pathlib_join("d/dists/s", "./main//binary-amd64/Packages"),
            "d/dists/s/main/binary-amd64/Packages"
        );
    }

    #[test]
    fn py_int_accepts_python_forms() {
        assert_cases(
            py_int,
            &[("1_0", Some(10)), ("+5", Some(5)), ("-5", Some(-5))],
        );
        assert_cases(
            py_int,
            &[("1__0", None), ("_1", None), ("1.5", None), ("", None)],
        );
    }

    #[test]
    fn splitlines_matches_python() {
        assert_eq!(
            py_splitlines("a\r\nb\rc\nd\x0ce\u{85}f\n"),
            ["a", "b", "c", "d", "e", "f"]
        );
        assert_eq!(py_splitlines("a\n\nb"), ["a", "", "b"]);
    }

    #[test]
    fn decoders_replace_per_byte() {
        assert_eq!(lossy_name(b"p\xff\xfe"), "p\u{fffd}\u{fffd}");
        assert_eq!(
            decode_backslashreplace(b"Edge\xff Cases"),
            "Edge\\xff Cases"
        );
    }
}
