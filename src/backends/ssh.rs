//! The ssh options of remote replication and publication
//! (`replication.ssh_options`), and the remote shell of `rsync`.
//!
//! `replication.ssh_options` is a list of ssh(1) arguments (`[-i,
//! /root/.ssh/key, -o, StrictHostKeyChecking=yes, -p, 2222]`) used by both
//! remote programs:
//!
//! - `syncoid` takes ssh options only as `--sshkey FILE` (`-i`),
//!   `--sshport PORT` (`-p`), `--sshcipher CIPHER` (`-c`) and
//!   `--sshoption OPTION` (`-o`, repeatable), and pastes them into a shell
//!   command line unquoted (sanoid's `syncoid` script). Its Getopt::Long
//!   takes the word after such a flag as its value even when it starts
//!   with `-`. So
//!   [`syncoid_args`] accepts exactly `-i`, `-p`, `-c`, `-o` (value
//!   separate or attached: `-oX=Y`), and only values made of
//!   `[A-Za-z0-9_@%+=:,./-]` (no blank, quote or other shell character);
//!   every other option is refused with a message saying to write it as
//!   `-o Option=value` (ssh_config(5) has a keyword for each).
//! - `rsync` gets `-e '<ssh> <options...>'` ([`rsync_remote_shell`]).
//!   rsync splits that string itself (rsync(1), `-e`; main.c `do_cmd`):
//!   words are separated by blanks, single quotes keep everything up to the
//!   next single quote literal, double quotes the same except that `\"`
//!   and `\\` are escapes, and a backslash outside quotes is literal. Each
//!   word is therefore written bare when it holds no blank, quote or
//!   backslash, else in single quotes, with each `'` in it written as
//!   `'"'"'`; so a key path with blanks reaches ssh as one argument.

/// Characters a value may hold when syncoid pastes it into a shell command.
fn shell_plain(word: &str) -> bool {
    !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c))
}

/// The ssh key and the other syncoid flags for `options`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncoidSsh {
    /// Whether the options name a key (`-i`): then `replication.ssh_key` is
    /// not passed.
    pub has_key: bool,
    /// The flags and their values (`--sshoption`, `StrictHostKeyChecking=yes`).
    pub args: Vec<String>,
}

/// Translates `replication.ssh_options` into syncoid's flags (module docs).
///
/// # Errors
/// A message naming the option that syncoid cannot take, or the value it
/// cannot pass safely.
pub fn syncoid_args(options: &[String]) -> Result<SyncoidSsh, String> {
    let mut out = SyncoidSsh::default();
    let mut it = options.iter();
    while let Some(opt) = it.next() {
        let (flag, attached) = match opt.as_str() {
            o if o.starts_with('-') && !o.starts_with("--") && o.is_char_boundary(2) => {
                o.split_at(2)
            }
            _ => ("", ""),
        };
        let name = match flag {
            "-i" => "sshkey",
            "-p" => "sshport",
            "-c" => "sshcipher",
            "-o" => "sshoption",
            _ => {
                return Err(format!(
                    "ssh option {opt:?} cannot be passed to syncoid, which takes only -i, -p, -c and -o; write it as -o Option=value (see ssh_config(5))"
                ));
            }
        };
        let value = if attached.is_empty() {
            it.next()
                .ok_or_else(|| format!("ssh option {opt:?} needs a value after it"))?
                .as_str()
        } else {
            attached
        };
        if !shell_plain(value) {
            return Err(format!(
                "the value {value:?} of ssh option {flag} may only hold letters, digits and _@%+=:,./- (syncoid passes it through a shell)"
            ));
        }
        if name == "sshport" && value.parse::<u16>().is_err() {
            return Err(format!(
                "ssh option -p needs a port number, found {value:?}"
            ));
        }
        out.has_key |= name == "sshkey";
        out.args.push(format!("--{name}"));
        out.args.push(value.to_owned());
    }
    Ok(out)
}

/// One word for rsync's `-e` string (module docs).
pub fn rsync_quote(word: &str) -> String {
    let bare = !word.is_empty()
        && !word
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '\'' | '"' | '\\'));
    if bare {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\"'\"'"))
    }
}

/// The `-e` value for rsync: `ssh` (the program, `tools.ssh`) and
/// `options`, each quoted with [`rsync_quote`].
pub fn rsync_remote_shell(ssh: &str, options: &[String]) -> String {
    std::iter::once(ssh)
        .chain(options.iter().map(String::as_str))
        .map(rsync_quote)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn syncoid_flags() {
        let got = syncoid_args(&strings(&[
            "-i",
            "/root/.ssh/key",
            "-o",
            "StrictHostKeyChecking=yes",
            "-oConnectTimeout=10",
            "-p",
            "2222",
            "-c",
            "aes128-ctr",
        ]))
        .unwrap();
        assert!(got.has_key);
        assert_eq!(
            got.args,
            strings(&[
                "--sshkey",
                "/root/.ssh/key",
                "--sshoption",
                "StrictHostKeyChecking=yes",
                "--sshoption",
                "ConnectTimeout=10",
                "--sshport",
                "2222",
                "--sshcipher",
                "aes128-ctr"
            ])
        );
        assert_eq!(syncoid_args(&[]).unwrap(), SyncoidSsh::default());
    }

    #[test]
    fn what_syncoid_cannot_take_is_refused() {
        for (opts, needle) in [
            (&["-F", "/etc/ssh/x"][..], "\"-F\""),
            (&["-4"][..], "\"-4\""),
            (&["--", "x"][..], "\"--\""),
            (&["-i"][..], "needs a value"),
            (&["-i", "/root/my key"][..], "through a shell"),
            (&["-o", "ProxyCommand=nc %h;rm"][..], "through a shell"),
            (&["-p", "ssh"][..], "port number"),
        ] {
            let err = syncoid_args(&strings(opts)).unwrap_err();
            assert!(err.contains(needle), "{opts:?}: {err}");
        }
    }

    #[test]
    fn rsync_words_survive_rsyncs_splitting() {
        assert_eq!(
            rsync_remote_shell(
                "/usr/bin/ssh",
                &strings(&["-i", "/k/my key", "-o", "A=it's", "", "a\\b\"c"])
            ),
            r#"/usr/bin/ssh -i '/k/my key' -o 'A=it'"'"'s' '' 'a\b"c'"#
        );
    }
}
