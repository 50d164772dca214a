//! The one wrapper every external program goes through (docs/architecture.md, practices 4–6).
//!
//! No other module of `src/` uses `std::process::Command`. Everything a
//! stage runs — `zfs`, `syncoid`, `rsync`, the container runtime, antivirus
//! scanners — is a [`Cmd`] built from [`Tools`].
//!
//! # Tools
//!
//! [`Tools`] is built once per run ([`Tools::resolve`]) from `tools:` in the
//! config and `MIRRORER_TOOL_<NAME>` environment overrides (the env wins),
//! over the production defaults of [`Tool::default_program`]. Names are the
//! config keys (`kesl_control`; `kesl-control` in the file is the same key),
//! env names are upper-cased (`MIRRORER_TOOL_KESL_CONTROL`).
//! [`Tools::check`] reports every missing program of a stage in one error.
//!
//! # Building and running a command
//!
//! ```no_run
//! # use mirrorer::process::{Tools, Tool};
//! # let tools = Tools::resolve(&[], |_| None);
//! let out = tools
//!     .cmd(Tool::Zfs, "list the snapshots of the mirror dataset")
//!     .args(["list", "-t", "snapshot", "-o", "name", "-H"])
//!     .run()?; // logs `command_run`, checks the exit status
//! for line in out.stdout.lines() { /* ... */ }
//! # Ok::<(), mirrorer::process::ProcessError>(())
//! ```
//!
//! - **Logging.** Every start is an INFO event `command_run purpose="..."
//!   command="..."` (DEBUG with [`Cmd::quiet`]); the end is a DEBUG event
//!   `command_exit`. The command line is rendered shell-quoted
//!   ([`Cmd::display`]): arguments added with [`Cmd::secret_arg`] show as
//!   `***`, and so do the values [`crate::redact::args`] masks: a secret
//!   option's value (`--password X`, `--token=X`), a secret `NAME=VALUE`,
//!   a URL's password (`rsync://user:***@host/`). Errors carry this form.
//! - **Environment.** [`Cmd::env`] passes a variable and logs it as
//!   `env="K=V ..."` (secret-looking keys as `K=***`); [`Cmd::env_hidden`]
//!   passes it and never logs its value (only the key, in `env_hidden=`).
//!   Neither ever appears on the command line. To give a container a secret,
//!   pass it with `env_hidden` to the `docker` process and put only
//!   `--env KEY` (no value) on its command line: docker copies the value from
//!   its own environment.
//! - **Status.** [`Cmd::run`] / [`Running::wait`] fail with
//!   [`ProcessError::Status`] unless the exit code is in [`Cmd::ok_codes`]
//!   (default `[0]`); use `ok_codes(&[0, 72])` for kesl-control or
//!   [`Cmd::any_status`] and inspect [`Finished::exit`] yourself (clamdscan:
//!   0 clean, 1 found, 2 error). "Could not start" is
//!   [`ProcessError::Start`]; both carry the rendered command line, and
//!   `Status` carries the tail of the program's output.
//! - **Output.** Without a line handler, stdout is collected into
//!   [`Finished::stdout`] and stderr lines are logged at DEBUG. With
//!   [`Cmd::on_line`], every line of both streams goes to the handler (on
//!   reader threads, in order per stream) and stdout is not collected. The
//!   last [`TAIL_LINES`] lines of both streams are always kept for errors.
//!   Stdin is `/dev/null`. Output still written by a grandchild more than
//!   2 s after the child exited is not waited for
//!   (`command_output_still_open`).
//! - **Timeout and signals.** [`Cmd::timeout`] bounds the run
//!   ([`ProcessError::Timeout`]). While waiting, SIGINT/SIGTERM received by
//!   this process ([`crate::signals`]) stops the child and yields
//!   [`ProcessError::Interrupted`]. Stopping = SIGTERM to the child's process
//!   group (every child runs in its own group), then SIGKILL after the grace
//!   period ([`Cmd::stop_grace`], default 10 s).
//! - **Death.** No child outlives this process, also when it is killed with
//!   SIGKILL: each child gets SIGTERM from the kernel when mirrorer dies
//!   (`PR_SET_PDEATHSIG`; all children are forked by one long-lived
//!   thread, see `src/process/child.rs`).
//! - **Background.** [`Cmd::spawn`] returns a [`Running`] handle: poll it
//!   with [`Running::try_wait`], wait with [`Running::wait`], or stop it with
//!   [`Running::stop`]. Dropping a `Running` that has not finished kills its
//!   process group, so no child outlives an early return.
//!
//! A background child with streamed output, as `sync` needs it:
//!
//! ```no_run
//! # use std::time::Duration;
//! # use mirrorer::process::{Tools, Tool, Stream};
//! # let tools = Tools::resolve(&[], |_| None);
//! let name = "debian".to_owned();
//! let mut running = tools
//!     .cmd(Tool::Docker, "follow the syncer container's output")
//!     .args(["logs", "--follow", "debian"])
//!     .on_line(move |_stream: Stream, line: &str| {
//!         tracing::info!("[{name}] {line}");
//!     })
//!     .spawn()?;
//! // ... later, or on a signal (mirrorer::signals::received()):
//! let finished = running.stop(Duration::from_secs(30))?;
//! # Ok::<(), mirrorer::process::ProcessError>(())
//! ```
//!
//! Parallel batches (av-scan): clone the [`Cmd`] or build one per batch,
//! [`Cmd::spawn`] up to N of them and poll each with [`Running::try_wait`]
//! (then [`Running::check`] against the ok codes), or [`Cmd::run`] each on
//! its own thread (`std::thread::scope`); [`Tools`], [`Cmd`] are
//! `Send + Sync`, [`Running`] is `Send`.
//!
//! - **Dry run** is not handled here: stages put mutating commands into their
//!   plan ([`crate::stages::plan`]), which prints instead of running them
//!   under `--dry-run`. Read-only commands (`zfs list`) simply run.

mod child;

use std::collections::{BTreeMap, VecDeque};
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::redact;

/// How many lines of a program's output (stdout and stderr interleaved) an
/// error keeps.
pub const TAIL_LINES: usize = 20;

/// Default grace period between SIGTERM and SIGKILL when a child is stopped.
pub const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(10);

/// How long after the child's exit its output readers may take to reach
/// end of file (a grandchild may still hold the pipes).
const READER_GRACE: Duration = Duration::from_secs(2);

/// How often a waiting loop checks the child, the timeout and the signal flag.
const POLL: Duration = Duration::from_millis(25);

/// An external program this tool runs. The list matches
/// [`crate::config::KNOWN_TOOLS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tool {
    /// The container runtime CLI (`docker`; podman is a drop-in).
    Docker,
    /// ZFS administration (`/sbin/zfs`).
    Zfs,
    /// Replication of ZFS datasets (`/sbin/syncoid`, from sanoid).
    Syncoid,
    /// File-tree synchronisation (`rsync`).
    Rsync,
    /// The remote shell rsync uses for remote publication (`ssh`).
    Ssh,
    /// Kaspersky Endpoint Security for Linux control (`kesl-control`).
    KeslControl,
    /// ClamAV daemon client (`clamdscan`).
    Clamdscan,
    /// ClamAV standalone scanner (`clamscan`).
    Clamscan,
    /// OpenPGP signature check of APT Release files (`gpgv`), by `verify`.
    Gpgv,
}

impl Tool {
    /// Every tool, in a fixed order.
    pub const ALL: [Tool; 9] = [
        Tool::Docker,
        Tool::Zfs,
        Tool::Syncoid,
        Tool::Rsync,
        Tool::Ssh,
        Tool::KeslControl,
        Tool::Clamdscan,
        Tool::Clamscan,
        Tool::Gpgv,
    ];

    /// The key under `tools:` in the config (`kesl_control`).
    pub fn name(self) -> &'static str {
        match self {
            Tool::Docker => "docker",
            Tool::Zfs => "zfs",
            Tool::Syncoid => "syncoid",
            Tool::Rsync => "rsync",
            Tool::Ssh => "ssh",
            Tool::KeslControl => "kesl_control",
            Tool::Clamdscan => "clamdscan",
            Tool::Clamscan => "clamscan",
            Tool::Gpgv => "gpgv",
        }
    }

    /// The environment variable that overrides the path:
    /// `MIRRORER_TOOL_<NAME>` (`MIRRORER_TOOL_KESL_CONTROL`).
    pub fn env_var(self) -> String {
        format!("MIRRORER_TOOL_{}", self.name().to_ascii_uppercase())
    }

    /// The production default: an absolute path or a name looked up on PATH.
    pub fn default_program(self) -> &'static str {
        match self {
            Tool::Docker => "docker",
            Tool::Zfs => "/sbin/zfs",
            Tool::Syncoid => "/sbin/syncoid",
            Tool::Rsync => "rsync",
            Tool::Ssh => "ssh",
            Tool::KeslControl => "kesl-control",
            Tool::Clamdscan => "clamdscan",
            Tool::Clamscan => "clamscan",
            Tool::Gpgv => "gpgv",
        }
    }

    /// The tool whose config key is `name` (`-` and `_` alike, any case).
    pub fn from_name(name: &str) -> Option<Tool> {
        let name = name.trim().replace('-', "_").to_ascii_lowercase();
        Tool::ALL.into_iter().find(|t| t.name() == name)
    }
}

impl fmt::Display for Tool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a tool's program came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolSource {
    /// [`Tool::default_program`].
    Default,
    /// `tools.<name>` in the config.
    Config,
    /// The `MIRRORER_TOOL_<NAME>` environment variable.
    Env,
}

/// The resolved program of every [`Tool`]; built once per run.
#[derive(Debug, Clone)]
pub struct Tools {
    programs: BTreeMap<Tool, (String, ToolSource)>,
}

/// One or more programs a stage needs do not exist.
#[derive(Debug, thiserror::Error)]
#[error("missing external program{}: {}", if missing.len() == 1 { "" } else { "s" }, render_missing(missing))]
pub struct MissingTools {
    /// `(tool, program as configured, where that came from)`, in the order asked.
    pub missing: Vec<(Tool, String, ToolSource)>,
}

fn render_missing(missing: &[(Tool, String, ToolSource)]) -> String {
    missing
        .iter()
        .map(|(tool, program, source)| {
            let from = match source {
                ToolSource::Default => {
                    format!("default; set tools.{} or {}", tool.name(), tool.env_var())
                }
                ToolSource::Config => format!("from tools.{}", tool.name()),
                ToolSource::Env => format!("from {}", tool.env_var()),
            };
            let kind = if program.contains('/') {
                "does not exist"
            } else {
                "not found on PATH"
            };
            format!("{tool} ({program}: {kind}; {from})")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl Tools {
    /// Resolves every tool: `env("MIRRORER_TOOL_<NAME>")` if set and
    /// non-empty, else `tools.<name>` from `config_tools` (name -> path as
    /// in [`crate::config::Config::tools`]), else the default.
    pub fn resolve(
        config_tools: &[(String, String)],
        env: impl Fn(&str) -> Option<String>,
    ) -> Tools {
        let mut programs = BTreeMap::new();
        for tool in Tool::ALL {
            let from_env = env(&tool.env_var()).filter(|v| !v.trim().is_empty());
            let from_config = config_tools
                .iter()
                .rev()
                .find(|(name, _)| Tool::from_name(name) == Some(tool))
                .map(|(_, path)| path.clone())
                .filter(|v| !v.trim().is_empty());
            let entry = match (from_env, from_config) {
                (Some(p), _) => (p, ToolSource::Env),
                (None, Some(p)) => (p, ToolSource::Config),
                (None, None) => (tool.default_program().to_owned(), ToolSource::Default),
            };
            programs.insert(tool, entry);
        }
        Tools { programs }
    }

    /// [`Tools::resolve`] with the process environment.
    pub fn from_env(config_tools: &[(String, String)]) -> Tools {
        Tools::resolve(config_tools, |name| std::env::var(name).ok())
    }

    /// The program of `tool`, as configured (a path or a bare name).
    pub fn program(&self, tool: Tool) -> &str {
        self.programs
            .get(&tool)
            .map(|(p, _)| p.as_str())
            .unwrap_or_else(|| tool.default_program())
    }

    /// Where the program of `tool` came from.
    pub fn source(&self, tool: Tool) -> ToolSource {
        self.programs
            .get(&tool)
            .map(|(_, s)| s.clone())
            .unwrap_or(ToolSource::Default)
    }

    /// Checks that every tool in `needed` exists: a program with a `/` must
    /// be an existing file (relative to the current directory if relative),
    /// a bare name must be an executable file in a `PATH` directory.
    ///
    /// # Errors
    /// [`MissingTools`] listing every missing one.
    pub fn check(&self, needed: &[Tool]) -> Result<(), MissingTools> {
        let mut missing = Vec::new();
        for &tool in needed {
            let program = self.program(tool);
            if find_program(program).is_none() && !missing.iter().any(|(t, _, _)| *t == tool) {
                missing.push((tool, program.to_owned(), self.source(tool)));
            }
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(MissingTools { missing })
        }
    }

    /// A new command running `tool`, with its one-line `purpose` (logged).
    pub fn cmd(&self, tool: Tool, purpose: impl Into<String>) -> Cmd {
        Cmd::new(self.program(tool), purpose)
    }
}

/// The file `program` runs: itself if it has a `/`, else the first
/// executable file of that name in `PATH`.
pub fn find_program(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let is_exec = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if program.is_empty() {
        return None;
    }
    if program.contains('/') {
        let p = PathBuf::from(program);
        return is_exec(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| is_exec(p))
}

/// Which output stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// The child's stdout.
    Stdout,
    /// The child's stderr.
    Stderr,
}

/// A handler for the output lines of a child: `(stream, line without its
/// newline)`. Called from reader threads, hence `Send + Sync`; use interior
/// mutability (a `Mutex`) to collect.
pub type LineHandler = Arc<dyn Fn(Stream, &str) + Send + Sync>;

#[derive(Clone)]
struct Arg {
    value: OsString,
    secret: bool,
}

#[derive(Clone)]
struct EnvVar {
    key: String,
    value: String,
    hidden: bool,
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this code.
    Code(i32),
    /// It was killed by this signal.
    Signal(i32),
}

impl Exit {
    /// The exit code, if it exited normally.
    pub fn code(self) -> Option<i32> {
        match self {
            Exit::Code(c) => Some(c),
            Exit::Signal(_) => None,
        }
    }

    fn from_status(status: std::process::ExitStatus) -> Exit {
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(c), _) => Exit::Code(c),
            (None, Some(s)) => Exit::Signal(s),
            (None, None) => Exit::Code(-1),
        }
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exited with {c}"),
            Exit::Signal(s) => write!(f, "was killed by {}", crate::signals::name(*s)),
        }
    }
}

/// A finished child.
#[derive(Debug, Clone)]
pub struct Finished {
    /// How it ended.
    pub exit: Exit,
    /// Its whole stdout (lossy UTF-8), unless a line handler was set.
    pub stdout: String,
    /// The last [`TAIL_LINES`] lines of stdout and stderr, newline-separated.
    pub tail: String,
    /// Wall time from start to exit.
    pub duration: Duration,
}

/// Why running a program failed. Every variant names the rendered command
/// line (secrets redacted).
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The program could not be started (not found, not executable, ...).
    #[error("could not start `{command}` ({purpose})")]
    Start {
        /// The rendered command line.
        command: String,
        /// The purpose given to [`Cmd::new`].
        purpose: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// It ran and ended with a status not in its ok codes.
    #[error("`{command}` ({purpose}) {exit}{}", render_tail(tail))]
    Status {
        /// The rendered command line.
        command: String,
        /// The purpose given to [`Cmd::new`].
        purpose: String,
        /// How it ended.
        exit: Exit,
        /// The last lines of its output.
        tail: String,
    },
    /// It did not finish within its timeout and was stopped.
    #[error("`{command}` ({purpose}) did not finish within {}s and was stopped{}", timeout.as_secs_f64(), render_tail(tail))]
    Timeout {
        /// The rendered command line.
        command: String,
        /// The purpose given to [`Cmd::new`].
        purpose: String,
        /// The timeout.
        timeout: Duration,
        /// The last lines of its output.
        tail: String,
    },
    /// This process received SIGINT/SIGTERM while waiting; the child was stopped.
    #[error("`{command}` ({purpose}) was stopped because mirrorer received {}", crate::signals::name(*signal))]
    Interrupted {
        /// The rendered command line.
        command: String,
        /// The purpose given to [`Cmd::new`].
        purpose: String,
        /// The signal this process received.
        signal: i32,
    },
    /// Waiting for the child failed at the OS level.
    #[error("could not wait for `{command}` ({purpose})")]
    Wait {
        /// The rendered command line.
        command: String,
        /// The purpose given to [`Cmd::new`].
        purpose: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

fn render_tail(tail: &str) -> String {
    if tail.trim().is_empty() {
        String::new()
    } else {
        format!("; last output:\n{tail}")
    }
}

impl ProcessError {
    /// The rendered command line of the failed command.
    pub fn command(&self) -> &str {
        match self {
            ProcessError::Start { command, .. }
            | ProcessError::Status { command, .. }
            | ProcessError::Timeout { command, .. }
            | ProcessError::Interrupted { command, .. }
            | ProcessError::Wait { command, .. } => command,
        }
    }

    /// The exit of the program, for [`ProcessError::Status`].
    pub fn exit(&self) -> Option<Exit> {
        match self {
            ProcessError::Status { exit, .. } => Some(*exit),
            _ => None,
        }
    }
}

/// An external command: program, arguments, environment and how to run it.
/// Build with [`Tools::cmd`] (or [`Cmd::new`] for a program that is not a
/// [`Tool`]); cheap to clone (for retries).
#[derive(Clone)]
pub struct Cmd {
    program: OsString,
    purpose: String,
    args: Vec<Arg>,
    env: Vec<EnvVar>,
    cwd: Option<PathBuf>,
    timeout: Option<Duration>,
    ok_codes: Option<Vec<i32>>,
    on_line: Option<LineHandler>,
    stop_grace: Duration,
    stop_on_signal: bool,
    quiet: bool,
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

    /// Stops the child and fails with [`ProcessError::Timeout`] if it runs
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
    /// [`Finished::exit`].
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
    /// (timeout, signal, [`Running::stop`] without an explicit grace).
    pub fn stop_grace(mut self, grace: Duration) -> Cmd {
        self.stop_grace = grace;
        self
    }

    /// Whether [`Running::wait`] stops the child when this process receives
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

    fn log_start(&self) {
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

    /// Runs the command to the end (see the module docs for logging, status,
    /// output, timeout and signals).
    ///
    /// # Errors
    /// [`ProcessError::Start`], [`ProcessError::Status`],
    /// [`ProcessError::Timeout`], [`ProcessError::Interrupted`],
    /// [`ProcessError::Wait`].
    pub fn run(&self) -> Result<Finished, ProcessError> {
        self.spawn()?.wait()
    }

    /// Starts the command in the background (its own process group) and
    /// returns its handle.
    ///
    /// # Errors
    /// [`ProcessError::Start`] if it cannot be started.
    pub fn spawn(&self) -> Result<Running, ProcessError> {
        use std::os::unix::process::CommandExt;
        self.log_start();
        let mut command = Command::new(&self.program);
        command
            .args(self.args.iter().map(|a| &a.value))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        for e in &self.env {
            command.env(&e.key, &e.value);
        }
        if let Some(dir) = &self.cwd {
            command.current_dir(dir);
        }
        // Every child dies with this process (PR_SET_PDEATHSIG, child.rs).
        let mut child = child::spawn(command).map_err(|source| ProcessError::Start {
            command: self.display(),
            purpose: self.purpose.clone(),
            source,
        })?;
        let tail = Arc::new(Mutex::new(VecDeque::with_capacity(TAIL_LINES)));
        let stdout_buf = Arc::new(Mutex::new(String::new()));
        let mut readers = Vec::new();
        if let Some(out) = child.stdout.take() {
            readers.push(spawn_reader(
                out,
                Stream::Stdout,
                self.on_line.clone(),
                Arc::clone(&tail),
                (self.on_line.is_none()).then(|| Arc::clone(&stdout_buf)),
            ));
        }
        if let Some(err) = child.stderr.take() {
            readers.push(spawn_reader(
                err,
                Stream::Stderr,
                self.on_line.clone(),
                Arc::clone(&tail),
                None,
            ));
        }
        Ok(Running {
            child: Some(child),
            cmd: self.clone(),
            readers,
            tail,
            stdout: stdout_buf,
            started: Instant::now(),
            done: None,
        })
    }
}

fn spawn_reader(
    source: impl Read + Send + 'static,
    stream: Stream,
    handler: Option<LineHandler>,
    tail: Arc<Mutex<VecDeque<String>>>,
    collect: Option<Arc<Mutex<String>>>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(source);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let text = String::from_utf8_lossy(&buf);
            if let Some(all) = &collect
                && let Ok(mut all) = all.lock()
            {
                all.push_str(&text);
            }
            let line = text.trim_end_matches(['\n', '\r']);
            if let Ok(mut t) = tail.lock() {
                if t.len() == TAIL_LINES {
                    t.pop_front();
                }
                t.push_back(line.to_owned());
            }
            match &handler {
                Some(h) => h(stream, line),
                None if stream == Stream::Stderr => {
                    tracing::debug!(target: "mirrorer::process", line = %line, "command_stderr");
                }
                None => {}
            }
        }
    })
}

/// A child started by [`Cmd::spawn`]. `Send`, so it can be waited for on
/// another thread. Dropping it while the child runs kills the child's
/// process group (SIGKILL) and reaps it.
pub struct Running {
    child: Option<Child>,
    cmd: Cmd,
    readers: Vec<JoinHandle<()>>,
    tail: Arc<Mutex<VecDeque<String>>>,
    stdout: Arc<Mutex<String>>,
    started: Instant,
    done: Option<Finished>,
}

impl fmt::Debug for Running {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Running")
            .field("command", &self.cmd.display())
            .field("pid", &self.pid())
            .finish_non_exhaustive()
    }
}

impl Running {
    /// The child's pid (also its process group id); 0 once reaped.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// The command this runs.
    pub fn cmd(&self) -> &Cmd {
        &self.cmd
    }

    fn wait_err(&self, source: std::io::Error) -> ProcessError {
        ProcessError::Wait {
            command: self.cmd.display(),
            purpose: self.cmd.purpose.clone(),
            source,
        }
    }

    /// Whether the child has exited, without blocking; once it has, returns
    /// its [`Finished`] (status not checked against the ok codes; use
    /// [`Running::check`]). Later calls return `Ok(None)`; [`Running::wait`]
    /// and [`Running::stop`] still return the result.
    ///
    /// # Errors
    /// [`ProcessError::Wait`].
    pub fn try_wait(&mut self) -> Result<Option<Finished>, ProcessError> {
        let Some(child) = self.child.as_mut() else {
            return Ok(None);
        };
        match child.try_wait() {
            Ok(Some(status)) => {
                self.child = None;
                Ok(Some(self.finish(Exit::from_status(status))))
            }
            Ok(None) => Ok(None),
            Err(e) => Err(self.wait_err(e)),
        }
    }

    fn finish(&mut self, exit: Exit) -> Finished {
        // A reader ends at EOF, which comes when every process holding the
        // pipe is gone. A grandchild left running (a daemon the child
        // started) would block a plain join forever: wait a little, then
        // leave such readers to finish on their own.
        // Readers almost always finish within microseconds of the exit, so
        // the pause starts short and doubles up to 5 ms.
        let deadline = Instant::now() + READER_GRACE;
        let mut pause = Duration::from_micros(20);
        for r in self.readers.drain(..) {
            while !r.is_finished() && Instant::now() < deadline {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(5));
            }
            if r.is_finished() {
                let _ = r.join();
            } else {
                tracing::warn!(
                    target: "mirrorer::process",
                    command = %self.cmd.display(),
                    "command_output_still_open"
                );
            }
        }
        let tail = self
            .tail
            .lock()
            .map(|t| t.iter().cloned().collect::<Vec<_>>().join("\n"))
            .unwrap_or_default();
        let stdout = self
            .stdout
            .lock()
            .map(|mut s| std::mem::take(&mut *s))
            .unwrap_or_default();
        let duration = self.started.elapsed();
        self.done = Some(Finished {
            exit,
            stdout: stdout.clone(),
            tail: tail.clone(),
            duration,
        });
        tracing::debug!(
            target: "mirrorer::process",
            command = %self.cmd.display(),
            exit = %exit,
            duration_s = duration.as_secs_f64(),
            "command_exit"
        );
        Finished {
            exit,
            stdout,
            tail,
            duration,
        }
    }

    /// Checks a finished child's exit against the command's ok codes.
    ///
    /// # Errors
    /// [`ProcessError::Status`] with the command line and output tail.
    pub fn check(cmd: &Cmd, finished: Finished) -> Result<Finished, ProcessError> {
        let ok = match &cmd.ok_codes {
            None => true,
            Some(codes) => matches!(finished.exit, Exit::Code(c) if codes.contains(&c)),
        };
        if ok {
            Ok(finished)
        } else {
            Err(ProcessError::Status {
                command: cmd.display(),
                purpose: cmd.purpose.clone(),
                exit: finished.exit,
                tail: finished.tail,
            })
        }
    }

    /// Waits for the child to exit and checks its status; stops it on the
    /// command's timeout or (unless turned off) when this process receives
    /// SIGINT/SIGTERM.
    ///
    /// # Errors
    /// [`ProcessError::Status`], [`ProcessError::Timeout`],
    /// [`ProcessError::Interrupted`], [`ProcessError::Wait`].
    pub fn wait(mut self) -> Result<Finished, ProcessError> {
        if let Some(finished) = self.done.take() {
            return Running::check(&self.cmd, finished);
        }
        loop {
            if let Some(finished) = self.try_wait()? {
                let cmd = self.cmd.clone();
                return Running::check(&cmd, finished);
            }
            if self.cmd.stop_on_signal
                && let Some(signal) = crate::signals::received()
            {
                let grace = self.cmd.stop_grace;
                let command = self.cmd.display();
                let purpose = self.cmd.purpose.clone();
                self.stop(grace)?;
                return Err(ProcessError::Interrupted {
                    command,
                    purpose,
                    signal,
                });
            }
            if let Some(timeout) = self.cmd.timeout
                && self.started.elapsed() >= timeout
            {
                let grace = self.cmd.stop_grace;
                let finished = self.stop(grace)?;
                return Err(ProcessError::Timeout {
                    command: self.cmd.display(),
                    purpose: self.cmd.purpose.clone(),
                    timeout,
                    tail: finished.tail,
                });
            }
            std::thread::sleep(POLL);
        }
    }

    /// Stops the child: SIGTERM to its process group, then SIGKILL if it has
    /// not exited after `grace`; returns how it ended (not checked). If it
    /// had already exited (or was already reaped), returns at once.
    ///
    /// # Errors
    /// [`ProcessError::Wait`].
    pub fn stop(&mut self, grace: Duration) -> Result<Finished, ProcessError> {
        if let Some(finished) = &self.done {
            return Ok(finished.clone());
        }
        if let Some(f) = self.try_wait()? {
            return Ok(f);
        }
        tracing::info!(
            target: "mirrorer::process",
            command = %self.cmd.display(),
            pid = self.pid(),
            grace_s = grace.as_secs_f64(),
            "command_stop"
        );
        self.signal_group(libc::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Some(f) = self.try_wait()? {
                return Ok(f);
            }
            std::thread::sleep(POLL);
        }
        tracing::warn!(
            target: "mirrorer::process",
            command = %self.cmd.display(),
            pid = self.pid(),
            "command_kill"
        );
        self.signal_group(libc::SIGKILL);
        let status = match self.child.as_mut() {
            Some(child) => child.wait().map_err(|e| self.wait_err(e))?,
            None => return Ok(self.finish(Exit::Signal(libc::SIGKILL))),
        };
        self.child = None;
        Ok(self.finish(Exit::from_status(status)))
    }

    fn signal_group(&self, signal: i32) {
        if let Some(child) = &self.child
            && let Ok(pid) = i32::try_from(child.id())
        {
            // SAFETY: kill(2) has no memory-safety preconditions; a negative
            // pid addresses the child's own process group (process_group(0)).
            unsafe {
                libc::kill(-pid, signal);
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Ok(pid) = i32::try_from(child.id()) {
                // SAFETY: as in `signal_group`.
                unsafe {
                    libc::kill(-pid, libc::SIGKILL);
                }
            }
            let _ = child.wait();
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
    fn handles_can_move_between_threads() {
        fn send_sync<T: Send + Sync>() {}
        fn send<T: Send>() {}
        send_sync::<Cmd>();
        send_sync::<Tools>();
        send::<Running>();
        send_sync::<ProcessError>();
    }

    #[test]
    fn tools_resolve_env_over_config_over_default() {
        let config = vec![
            ("zfs".to_owned(), "/opt/zfs".to_owned()),
            ("kesl-control".to_owned(), "/opt/kesl".to_owned()),
        ];
        let tools = Tools::resolve(&config, |k| {
            (k == "MIRRORER_TOOL_ZFS").then(|| "/env/zfs".to_owned())
        });
        assert_eq!(tools.program(Tool::Zfs), "/env/zfs");
        assert_eq!(tools.source(Tool::Zfs), ToolSource::Env);
        assert_eq!(tools.program(Tool::KeslControl), "/opt/kesl");
        assert_eq!(tools.program(Tool::Syncoid), "/sbin/syncoid");
        assert_eq!(Tool::KeslControl.env_var(), "MIRRORER_TOOL_KESL_CONTROL");
    }

    #[test]
    fn missing_tools_are_reported_together() {
        let config = vec![
            ("zfs".to_owned(), "/nonexistent/zfs".to_owned()),
            ("syncoid".to_owned(), "no-such-program-xyz".to_owned()),
        ];
        let tools = Tools::resolve(&config, |_| None);
        let err = tools.check(&[Tool::Zfs, Tool::Syncoid]).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("zfs (/nonexistent/zfs: does not exist; from tools.zfs)"),
            "{text}"
        );
        assert!(
            text.contains("syncoid (no-such-program-xyz: not found on PATH"),
            "{text}"
        );
    }

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

    #[test]
    fn start_and_status_errors_differ_and_carry_the_command() {
        let err = Cmd::new("/nonexistent/prog", "try")
            .arg("x")
            .run()
            .unwrap_err();
        assert!(matches!(err, ProcessError::Start { .. }), "{err}");
        assert!(err.to_string().contains("/nonexistent/prog x"), "{err}");

        let err = Cmd::new("/bin/sh", "fail")
            .args(["-c", "echo out; echo err >&2; exit 3"])
            .run()
            .unwrap_err();
        assert_eq!(err.exit(), Some(Exit::Code(3)));
        let text = err.to_string();
        assert!(text.contains("exited with 3"), "{text}");
        assert!(text.contains("out") && text.contains("err"), "{text}");
    }

    #[test]
    fn env_reaches_the_child_and_stdout_is_collected() {
        let out = Cmd::new("/bin/sh", "env")
            .args(["-c", "printf '%s|%s' \"$A\" \"$B\""])
            .env("A", "1")
            .env_hidden("B", "2")
            .run()
            .unwrap();
        assert_eq!(out.stdout, "1|2");
        assert_eq!(out.exit, Exit::Code(0));
    }

    #[test]
    fn ok_codes_and_line_handler() {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        let out = Cmd::new("/bin/sh", "lines")
            .args(["-c", "echo one; echo two >&2; exit 72"])
            .ok_codes(&[0, 72])
            .on_line(move |s, l| sink.lock().unwrap().push((s, l.to_owned())))
            .run()
            .unwrap();
        assert_eq!(out.exit, Exit::Code(72));
        assert_eq!(out.stdout, "");
        let mut got = lines.lock().unwrap().clone();
        got.sort_by(|a, b| a.1.cmp(&b.1));
        assert_eq!(
            got,
            vec![
                (Stream::Stdout, "one".to_owned()),
                (Stream::Stderr, "two".to_owned())
            ]
        );
    }

    #[test]
    fn timeout_stops_the_child() {
        let started = Instant::now();
        let err = Cmd::new("/bin/sh", "sleep")
            .args(["-c", "sleep 30"])
            .timeout(Duration::from_millis(200))
            .stop_grace(Duration::from_secs(2))
            .run()
            .unwrap_err();
        assert!(matches!(err, ProcessError::Timeout { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn a_grandchild_holding_the_pipe_does_not_block_the_wait() {
        let started = Instant::now();
        let out = Cmd::new("/bin/sh", "leave a daemon")
            .args(["-c", "sleep 20 & echo started"])
            .run()
            .unwrap();
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_eq!(out.exit, Exit::Code(0));
    }

    #[test]
    fn wait_after_try_wait_returns_the_result() {
        let mut running = Cmd::new("/bin/sh", "exit 3")
            .args(["-c", "echo hi; exit 3"])
            .spawn()
            .unwrap();
        let finished = loop {
            if let Some(f) = running.try_wait().unwrap() {
                break f;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        assert_eq!(finished.exit, Exit::Code(3));
        assert_eq!(finished.stdout, "hi\n");
        assert_eq!(running.stop(Duration::ZERO).unwrap().exit, Exit::Code(3));
        let err = running.wait().unwrap_err();
        assert_eq!(err.exit(), Some(Exit::Code(3)));
    }

    #[test]
    fn background_child_can_be_stopped_and_escalates_to_kill() {
        let mut running = Cmd::new("/bin/sh", "ignore term")
            .args(["-c", "trap '' TERM; echo ready; sleep 30"])
            .spawn()
            .unwrap();
        assert!(running.pid() > 0);
        std::thread::sleep(Duration::from_millis(200));
        assert!(running.try_wait().unwrap().is_none());
        let finished = running.stop(Duration::from_millis(300)).unwrap();
        assert_eq!(finished.exit, Exit::Signal(libc::SIGKILL));
    }
}
