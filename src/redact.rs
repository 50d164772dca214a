//! What counts as a secret, and how it is masked: the one place that
//! decides, used by the log layer ([`crate::logging`]), command lines
//! ([`crate::process::Cmd::display`]), dry-run plans, error texts,
//! `config check` and the container-output masking of `sync`.
//!
//! The rules (every mask is the three characters `***`):
//!
//! - **Names** ([`is_secret_name`]): a log field, an environment variable
//!   or a `NAME=VALUE` argument whose name contains `password`, `passwd`,
//!   `passphrase`, `secret`, `token`, `credential` or `key` (any case), or
//!   is one of the words `pass`, `pw`, `pwd`, has its value masked.
//! - **Options** ([`is_secret_option`]): a long option (`--name VALUE` or
//!   `--name=VALUE`) whose name contains `password`, `passwd`,
//!   `passphrase`, `secret`, `token` or `credential`, is `--pass`, `--pw`,
//!   `--pwd`, or names an API/access/private/auth key (`--api-key`,
//!   `--access_key`, `--private-key`, `--apikey`), has its value masked. A
//!   bare `key` is not enough for an option: `--sshkey FILE`, `--keyring
//!   FILE`, `--keyserver URL` name files and places, not secrets. Short
//!   options are never masked by name: `-p` is a port for ssh, "preserve
//!   permissions" for rsync and a password only for some database clients.
//! - **URLs** ([`text`]): in any text, the password of a URL's user info
//!   (`scheme://user:PASSWORD@host`) is masked; the user name stays.
//!
//! Masking is for display only: the program always gets the real values.

use std::borrow::Cow;

/// The mask that replaces a secret value.
pub const MASK: &str = "***";

/// Words whose presence anywhere in a name makes its value secret.
const SECRET_WORDS: [&str; 6] = [
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "credential",
];

/// Whole words (between `-`, `_`, `.`) that are a password on their own.
const PASSWORD_WORDS: [&str; 3] = ["pass", "pw", "pwd"];

/// Words that, followed by the word `key` (or joined to it: `apikey`),
/// make an option's value a secret key rather than a key file or key id.
const KEY_QUALIFIERS: [&str; 4] = ["api", "access", "private", "auth"];

fn words(name: &str) -> impl Iterator<Item = &str> {
    name.split(['-', '_', '.']).filter(|w| !w.is_empty())
}

/// Whether a log field, environment variable or `NAME=VALUE` name marks
/// its value as secret (see the module docs; case does not matter).
pub fn is_secret_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    SECRET_WORDS.iter().any(|w| lower.contains(w))
        || lower.contains("key")
        || words(&lower).any(|w| PASSWORD_WORDS.contains(&w))
}

/// Whether the long option `name` (without its leading dashes) takes a
/// secret value (see the module docs; case does not matter).
pub fn is_secret_option(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    if SECRET_WORDS.iter().any(|w| lower.contains(w)) {
        return true;
    }
    let parts: Vec<&str> = words(&lower).collect();
    parts.iter().any(|w| PASSWORD_WORDS.contains(w))
        || parts.iter().enumerate().any(|(i, w)| {
            KEY_QUALIFIERS.iter().any(|q| {
                w.strip_prefix(q)
                    .is_some_and(|rest| rest == "key" || rest == "keys")
                    || (*w == *q
                        && parts
                            .get(i + 1)
                            .is_some_and(|n| *n == "key" || *n == "keys"))
            })
        })
}

/// The long option name of `arg` (`--name` or `--name=...`), if it is one.
fn long_option(arg: &str) -> Option<&str> {
    let name = arg.strip_prefix("--")?;
    let name = name.split_once('=').map_or(name, |(n, _)| n);
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    valid.then_some(name)
}

/// How one argument of a list is shown.
enum Shown<'a> {
    /// As is (after URL masking).
    Plain(&'a str),
    /// `prefix` followed by the mask (`--password=***`, `TOKEN=***`).
    Assignment(&'a str),
    /// Entirely masked: the value after a secret option.
    Masked,
}

/// Classifies each argument of `args` (one pass, so `--password VALUE`
/// masks the word after it).
fn classify<S: AsRef<str>>(args: &[S]) -> Vec<Shown<'_>> {
    let mut out = Vec::with_capacity(args.len());
    let mut value_is_secret = false;
    for arg in args {
        let arg = arg.as_ref();
        if std::mem::take(&mut value_is_secret) {
            out.push(Shown::Masked);
            continue;
        }
        if let Some(name) = long_option(arg) {
            if is_secret_option(name) {
                match arg.find('=') {
                    Some(eq) => out.push(Shown::Assignment(&arg[..=eq])),
                    None => {
                        value_is_secret = true;
                        out.push(Shown::Plain(arg));
                    }
                }
            } else {
                out.push(Shown::Plain(arg));
            }
            continue;
        }
        match arg.split_once('=') {
            Some((name, _))
                if !name.is_empty()
                    && !name.starts_with('-')
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && is_secret_name(name) =>
            {
                out.push(Shown::Assignment(&arg[..=name.len()]));
            }
            _ => out.push(Shown::Plain(arg)),
        }
    }
    out
}

/// The arguments of a command line as they may be shown: the value of a
/// secret option (`--password X`, `--token=X`) or secret assignment
/// (`DB_PASSWORD=X`) and the password of any URL replaced by `***`.
/// Returns one string per argument, in order.
pub fn args<S: AsRef<str>>(args: &[S]) -> Vec<String> {
    classify(args)
        .into_iter()
        .map(|shown| match shown {
            Shown::Plain(a) => text(a).into_owned(),
            Shown::Assignment(prefix) => format!("{prefix}{MASK}"),
            Shown::Masked => MASK.to_owned(),
        })
        .collect()
}

/// The secret values [`args`] masks, for masking the same values in a
/// program's output: whole option values, assignment values and URL
/// passwords, longest first, empty ones left out.
pub fn secret_values<S: AsRef<str>>(list: &[S]) -> Vec<String> {
    let mut values: Vec<String> = Vec::new();
    for (arg, shown) in list.iter().zip(classify(list)) {
        let arg = arg.as_ref();
        match shown {
            Shown::Masked => values.push(arg.to_owned()),
            Shown::Assignment(prefix) => values.push(arg[prefix.len()..].to_owned()),
            Shown::Plain(_) => {}
        }
        for_each_url_password(arg, |_, password| values.push(password.to_owned()));
    }
    values.retain(|v| !v.is_empty());
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    values.dedup();
    values
}

/// Calls `found(start, password)` for the password of every
/// `scheme://user:password@host` in `text` (`start` is its byte offset).
fn for_each_url_password(text: &str, mut found: impl FnMut(usize, &str)) {
    let mut from = 0;
    while let Some(i) = text[from..].find("://") {
        let auth_start = from + i + 3;
        let rest = &text[auth_start..];
        let auth_len = rest
            .find(|c: char| {
                matches!(c, '/' | '?' | '#' | '"' | '\'' | '`' | '<' | '>') || c.is_whitespace()
            })
            .unwrap_or(rest.len());
        let authority = &rest[..auth_len];
        if let Some(at) = authority.rfind('@')
            && let Some(colon) = authority[..at].find(':')
        {
            found(auth_start + colon + 1, &authority[colon + 1..at]);
        }
        from = auth_start + auth_len;
    }
}

/// `text` with the password of every URL (`scheme://user:PASSWORD@host`)
/// replaced by `***`; borrowed when there is none.
pub fn text(text: &str) -> Cow<'_, str> {
    let mut spans = Vec::new();
    for_each_url_password(text, |start, password| {
        spans.push((start, start + password.len()))
    });
    if spans.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (start, end) in spans {
        out.push_str(&text[last..start]);
        out.push_str(MASK);
        last = end;
    }
    out.push_str(&text[last..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for name in [
            "PASSWORD",
            "db_passwd",
            "api_token",
            "ssh_key",
            "Credentials",
            "secret",
            "RSYNC_PASS",
            "PW",
        ] {
            assert!(is_secret_name(name), "{name}");
        }
        for name in ["container", "passive", "path", "compass_dir"] {
            assert!(!is_secret_name(name), "{name}");
        }
    }

    #[test]
    fn options() {
        for name in [
            "password",
            "passwd",
            "token",
            "client-secret",
            "db-password",
            "pass",
            "pw",
            "api-key",
            "apikey",
            "access_key",
            "private-key",
            "auth-token",
            "passphrase",
        ] {
            assert!(is_secret_option(name), "{name}");
        }
        for name in [
            "sshkey",
            "key",
            "keyring",
            "keyserver",
            "recv-keys",
            "passive",
            "compass",
            "port",
            "verbose",
        ] {
            assert!(!is_secret_option(name), "{name}");
        }
    }

    #[test]
    fn argument_lists() {
        let list = [
            "--password",
            "hunter2",
            "--token=abc",
            "DB_PASSWORD=x",
            "--sshkey",
            "/root/id",
            "-p",
            "22",
            "rsync://u:pw@host/m/",
            "--url=https://u:p%40ss@h:8443/x?y",
            "--verbose",
        ];
        assert_eq!(
            args(&list),
            [
                "--password",
                "***",
                "--token=***",
                "DB_PASSWORD=***",
                "--sshkey",
                "/root/id",
                "-p",
                "22",
                "rsync://u:***@host/m/",
                "--url=https://u:***@h:8443/x?y",
                "--verbose",
            ]
        );
        assert_eq!(
            secret_values(&list),
            ["hunter2", "p%40ss", "abc", "pw", "x"]
        );
        // A secret option at the end has no value to mask.
        assert_eq!(args(&["--token"]), ["--token"]);
    }

    #[test]
    fn urls_in_text() {
        assert_eq!(
            text(
                "failed: `curl https://bob:s3cr@t@mirror.example/x` and http://a@b/ and ftp://c:d@e"
            ),
            "failed: `curl https://bob:***@mirror.example/x` and http://a@b/ and ftp://c:***@e"
        );
        assert_eq!(text("\"http://u:p@h\""), "\"http://u:***@h\"");
        assert!(matches!(text("no url here: a:b@c"), Cow::Borrowed(_)));
    }
}
