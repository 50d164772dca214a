//! The command builder `Cmd`: program, arguments, environment, how to run
//! it, and how its command line is shown (shell-quoted, secrets redacted)
//! in logs and errors. Running it is in `running.rs`.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::DEFAULT_STOP_GRACE;
use crate::redact;

/// Which output stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// The child's stdout.
    Stdout,
    /// The child's stderr.
    Stderr,
}

/// A handler for the output lines of a child: `(stream, line without its
/// newline)`. Called from the child's reader thread, hence `Send + Sync`; use interior
/// mutability (a `Mutex`) to collect.
pub type LineHandler = Arc<dyn Fn(Stream, &str) + Send + Sync>;

#[derive(Clone)]
pub(super) struct Arg {
    pub(super) value: OsString,
    secret: bool,
}

#[derive(Clone)]
pub(super) struct EnvVar {
    pub(super) key: String,
    pub(super) value: String,
    hidden: bool,
}

/// An external command: program, arguments, environment and how to run it.
/// Build with [`Tools::cmd`](super::Tools::cmd) (or [`Cmd::new`] for a program that is not a
/// [`Tool`](super::Tool)); cheap to clone (for retries).
#[derive(Clone)]
pub struct Cmd {
    pub(super) program: OsString,
    pub(super) purpose: String,
    pub(super) args: Vec<Arg>,
    pub(super) env: Vec<EnvVar>,
    pub(super) cwd: Option<PathBuf>,
    pub(super) timeout: Option<Duration>,
    pub(super) ok_codes: Option<Vec<i32>>,
    pub(super) on_line: Option<LineHandler>,
    pub(super) stop_grace: Duration,
    pub(super) stop_on_signal: bool,
    pub(super) quiet: bool,
}

impl fmt::Debug for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cmd")
            .field("command", &self.display())
            .field("purpose", &self.purpose)
            .finish_non_exhaustive()
    }
}

impl Cmd {
    /// A command running `program` (a path, or a name looked up on PATH) for
    /// `purpose`, a short phrase logged with it ("take the nightly snapshot").
    pub fn new(program: impl Into<OsString>, purpose: impl Into<String>) -> Cmd {
        Cmd {
            program: program.into(),
            purpose: purpose.into(),
            args: Vec::new(),
            env: Vec::new(),
            cwd: None,
            timeout: None,
            ok_codes: Some(vec![0]),
            on_line: None,
            stop_grace: DEFAULT_STOP_GRACE,
            stop_on_signal: true,
            quiet: false,
        }
    }

    /// Appends one argument.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Cmd {
        self.args.push(Arg {
            value: arg.into(),
            secret: false,
        });
        self
    }

    /// Appends arguments.
    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        for a in args {
            self = self.arg(a);
        }
        self
    }

    /// Appends an argument that is shown as `***` wherever the command line
    /// is logged or put in an error. Prefer [`Cmd::env_hidden`]: arguments
    /// are visible to other users in `ps`.
    pub fn secret_arg(mut self, arg: impl Into<OsString>) -> Cmd {
        self.args.push(Arg {
            value: arg.into(),
            secret: true,
        });
        self
    }

    /// Passes `key=value` in the child's environment (on top of this
    /// process's environment); logged as `K=V`, or `K=***` for a
    /// secret-looking key.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Cmd {
        self.env.push(EnvVar {
            key: key.into(),
            value: value.into(),
            hidden: false,
        });
        self
    }

    /// Passes `key=value` in the child's environment; the value is never
    /// logged (only the key, in `env_hidden=`).
    pub fn env_hidden(mut self, key: impl Into<String>, value: impl Into<String>) -> Cmd {
        self.env.push(EnvVar {
            key: key.into(),
            value: value.into(),
            hidden: true,
        });
        self
    }

    /// Runs the child in `dir`.
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Cmd {
        self.cwd = Some(dir.into());
        self
    }

    /// Stops the child and fails with [`ProcessError::Timeout`](super::ProcessError::Timeout) if it runs
    /// longer than `timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Cmd {
        self.timeout = Some(timeout);
        self
    }

    /// The exit codes that count as success (default `[0]`).
    pub fn ok_codes(mut self, codes: &[i32]) -> Cmd {
        self.ok_codes = Some(codes.to_vec());
        self
    }

    /// Accepts any exit (also death by a signal): the caller inspects
    /// [`Finished::exit`](super::Finished::exit).
    pub fn any_status(mut self) -> Cmd {
        self.ok_codes = None;
        self
    }

    /// Sends every output line to `handler` instead of collecting stdout.
    pub fn on_line(mut self, handler: impl Fn(Stream, &str) + Send + Sync + 'static) -> Cmd {
        self.on_line = Some(Arc::new(handler));
        self
    }

    /// Grace period between SIGTERM and SIGKILL when the child is stopped
    /// (timeout, signal, [`Running::stop`](super::Running::stop) without an explicit grace).
    pub fn stop_grace(mut self, grace: Duration) -> Cmd {
        self.stop_grace = grace;
        self
    }

    /// Whether [`Running::wait`](super::Running::wait) stops the child when this process receives
    /// SIGINT/SIGTERM (default true). Turn off for a cleanup command that
    /// must finish even then (`docker rm -f` after a signal).
    pub fn stop_on_signal(mut self, stop: bool) -> Cmd {
        self.stop_on_signal = stop;
        self
    }

    /// Logs the start at DEBUG instead of INFO (read-only queries).
    pub fn quiet(mut self) -> Cmd {
        self.quiet = true;
        self
    }

    /// The purpose given to [`Cmd::new`].
    pub fn purpose(&self) -> &str {
        &self.purpose
    }

    /// The program, as given.
    pub fn program(&self) -> &OsStr {
        &self.program
    }

    /// The arguments, unredacted (for tests and plans; never log these).
    pub fn raw_args(&self) -> Vec<OsString> {
        self.args.iter().map(|a| a.value.clone()).collect()
    }

    /// The command line, each word shell-quoted when needed, secrets as
    /// `***` ([`Cmd::secret_arg`] and what [`crate::redact::args`] masks).
    pub fn display(&self) -> String {
        let texts: Vec<String> = self
            .args
            .iter()
            .map(|a| a.value.to_string_lossy().into_owned())
            .collect();
        let mut words = vec![shell_quote(&redact::text(&self.program.to_string_lossy()))];
        for (a, shown) in self.args.iter().zip(redact::args(&texts)) {
            words.push(if a.secret {
                redact::MASK.to_owned()
            } else {
                shell_quote(&shown)
            });
        }
        words.join(" ")
    }

    /// The logged form of the environment: `K=V K2=***` (hidden ones left out).
    pub fn display_env(&self) -> String {
        self.env
            .iter()
            .filter(|e| !e.hidden)
            .map(|e| {
                let v = if redact::is_secret_name(&e.key) {
                    redact::MASK.to_owned()
                } else {
                    shell_quote(&redact::text(&e.value))
                };
                format!("{}={v}", e.key)
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    pub(super) fn log_start(&self) {
        // Building the line quotes every argument (a scanner batch has a
        // hundred): not for an event nobody records.
        let enabled = if self.quiet {
            tracing::enabled!(target: "mirrorer::process", tracing::Level::DEBUG)
        } else {
            tracing::enabled!(target: "mirrorer::process", tracing::Level::INFO)
        };
        if !enabled {
            return;
        }
        let env = self.display_env();
        let hidden = self
            .env
            .iter()
            .filter(|e| e.hidden)
            .map(|e| e.key.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let command = self.display();
        // Fields only when they say something: `env=` / `env_hidden=`.
        macro_rules! event {
            ($level:ident) => {
                match (env.is_empty(), hidden.is_empty()) {
                    (true, true) => tracing::$level!(target: "mirrorer::process", purpose = %self.purpose, command = %command, "command_run"),
                    (false, true) => tracing::$level!(target: "mirrorer::process", purpose = %self.purpose, command = %command, env = %env, "command_run"),
                    (true, false) => tracing::$level!(target: "mirrorer::process", purpose = %self.purpose, command = %command, env_hidden = %hidden, "command_run"),
                    (false, false) => tracing::$level!(target: "mirrorer::process", purpose = %self.purpose, command = %command, env = %env, env_hidden = %hidden, "command_run"),
                }
            };
        }
        if self.quiet {
            event!(debug);
        } else {
            event!(info);
        }
    }
}

/// Quotes `word` for a POSIX shell when it holds anything but
/// `[A-Za-z0-9_@%+=:,./-]`.
pub fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_redacts_secrets_and_quotes() {
        let cmd = Cmd::new("/bin/echo", "test")
            .arg("a b")
            .arg("--password=hunter2")
            .arg("API_TOKEN=abc")
            .secret_arg("plain-secret")
            .arg("ok=1")
            .args(["--token", "t0k", "rsync://u:pw@h/m"])
            .env("USER_NAME", "x")
            .env("DB_PASSWORD", "hunter2")
            .env_hidden("OTHER", "invisible");
        let shown = cmd.display();
        assert_eq!(
            shown,
            "/bin/echo 'a b' '--password=***' 'API_TOKEN=***' *** ok=1 --token '***' 'rsync://u:***@h/m'"
        );
        assert_eq!(cmd.display_env(), "USER_NAME=x DB_PASSWORD=***");
    }
}
