//! [`Run`]: the one builder for running the real binary and asserting on
//! what it did, in the shape of just's `Test` and ripgrep's `TestCommand`:
//!
//! ```text
//! let out = Run::new(&env)            // or env.run(), work.run(), Run::bare(),
//!                                     // Run::bare_with_config(text)
//!     .config(&env.default_config())  // writes the config the run reads
//!     .args(["snapshot", "--dry-run"])
//!     .env("FAKE_ZFS_EXIT", "1")
//!     .code(1)                        // the exit code it must have
//!     .stderr_has("zfs snapshot")     // text stderr must contain
//!     .stdout_is("")                  // and what stdout must be
//!     .run();                         // runs, asserts, returns the output
//! assert!(out.stderr.contains(..));   // for checks beyond these
//! ```
//!
//! Every start goes through [`super::binary`], so the environment is
//! cleared the one way ([`super::clear_environment`]). A failed expectation
//! panics with the command line, the exit status, stdout and stderr.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use super::{Env, Work, binary};

/// One run of the binary being set up (see the module docs).
#[must_use = "a Run does nothing until .run()"]
pub struct Run {
    cmd: std::process::Command,
    /// Where [`Run::config`] writes the config text.
    config_path: Option<PathBuf>,
    /// Whether [`Run::config`] must also pass `-c <config_path>` (the
    /// [`Env`] command already passes `--config`).
    config_flag: bool,
    stdin: Option<Vec<u8>>,
    deadline: Option<u64>,
    expect: Expect,
    /// The temp directory of [`Run::bare_with_config`]'s config file,
    /// kept until the run is done.
    _scratch: Option<Work>,
}

/// What a finished run must show: its exit code and text its stdout and
/// stderr must (not) contain. [`Run`] checks one after running; for a run
/// the test spawned, signalled and waited for itself, [`Expect::check`]
/// checks its output.
#[derive(Default)]
#[must_use = "an Expect checks nothing until .check()"]
pub struct Expect {
    code: Option<i32>,
    stdout_is: Option<String>,
    stdout_has: Vec<String>,
    stdout_lacks: Vec<String>,
    stderr_has: Vec<String>,
    stderr_lacks: Vec<String>,
}

/// The methods that set an expectation, on [`Expect`] and (delegating)
/// on [`Run`].
macro_rules! expectations {
    ($ty:ty, $set:ident) => {
        impl $ty {
            /// The exit code the run must end with.
            pub fn code(self, code: i32) -> $ty {
                $set!(self, e => e.code = Some(code))
            }

            /// The run must exit 0.
            pub fn success(self) -> $ty {
                self.code(0)
            }

            /// stdout must be exactly `text`.
            pub fn stdout_is(self, text: impl Into<String>) -> $ty {
                $set!(self, e => e.stdout_is = Some(text.into()))
            }

            /// stdout must contain `text`.
            pub fn stdout_has(self, text: impl Into<String>) -> $ty {
                $set!(self, e => e.stdout_has.push(text.into()))
            }

            /// stdout must not contain `text`.
            pub fn stdout_lacks(self, text: impl Into<String>) -> $ty {
                $set!(self, e => e.stdout_lacks.push(text.into()))
            }

            /// stderr must contain `text`.
            pub fn stderr_has(self, text: impl Into<String>) -> $ty {
                $set!(self, e => e.stderr_has.push(text.into()))
            }

            /// stderr must not contain `text`.
            pub fn stderr_lacks(self, text: impl Into<String>) -> $ty {
                $set!(self, e => e.stderr_lacks.push(text.into()))
            }
        }
    };
}

macro_rules! set_on_expect {
    ($self:ident, $e:ident => $change:expr) => {{
        let mut $e = $self;
        $change;
        $e
    }};
}

macro_rules! set_on_run {
    ($self:ident, $e:ident => $change:expr) => {{
        let mut run = $self;
        let $e = &mut run.expect;
        $change;
        run
    }};
}

expectations!(Expect, set_on_expect);
expectations!(Run, set_on_run);

impl Expect {
    /// No expectation yet.
    pub fn new() -> Expect {
        Expect::default()
    }

    /// Checks `output` (of the command `what`, for the failure message);
    /// panics listing every expectation it misses, with the status, stdout
    /// and stderr. Returns the output with its text.
    pub fn check(self, what: &str, output: Output) -> Ran {
        let ran = Ran {
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            output,
        };
        let mut failures = Vec::new();
        if let Some(code) = self.code
            && ran.code() != Some(code)
        {
            failures.push(format!("exit code {code}, got {}", ran.output.status));
        }
        if let Some(want) = &self.stdout_is
            && &ran.stdout != want
        {
            failures.push(format!("stdout to be exactly {want:?}"));
        }
        for (stream, text, has, lacks) in [
            ("stdout", &ran.stdout, &self.stdout_has, &self.stdout_lacks),
            ("stderr", &ran.stderr, &self.stderr_has, &self.stderr_lacks),
        ] {
            for want in has.iter().filter(|w| !text.contains(w.as_str())) {
                failures.push(format!("{stream} to contain {want:?}"));
            }
            for unwanted in lacks.iter().filter(|w| text.contains(w.as_str())) {
                failures.push(format!("{stream} not to contain {unwanted:?}"));
            }
        }
        assert!(
            failures.is_empty(),
            "{what}\nexpected {}\n--- status: {}\n--- stdout:\n{}\n--- stderr:\n{}",
            failures.join("\nexpected "),
            ran.output.status,
            ran.stdout,
            ran.stderr,
        );
        ran
    }
}

/// What a [`Run`] produced: the raw output (also through `Deref`) and its
/// stdout and stderr as text (lossy UTF-8).
pub struct Ran {
    /// The raw output (status, stdout and stderr bytes).
    pub output: Output,
    /// stdout as text.
    pub stdout: String,
    /// stderr as text.
    pub stderr: String,
}

impl std::ops::Deref for Ran {
    type Target = Output;
    fn deref(&self) -> &Output {
        &self.output
    }
}

impl Ran {
    /// The exit code (`None` when a signal ended the process).
    pub fn code(&self) -> Option<i32> {
        self.output.status.code()
    }
}

impl Run {
    fn with(cmd: std::process::Command, config_path: Option<PathBuf>, config_flag: bool) -> Run {
        Run {
            cmd,
            config_path,
            config_flag,
            stdin: None,
            deadline: None,
            expect: Expect::new(),
            _scratch: None,
        }
    }

    /// The binary in the stage environment `env` ([`Env::std_cmd`]: its
    /// `--config <root>/config.yaml`, the fakes' variables, TMPDIR, the
    /// root as working directory).
    pub fn new(env: &Env) -> Run {
        Run::with(env.std_cmd(), Some(env.root.join("config.yaml")), false)
    }

    /// The binary in the work directory of `work`, with no config unless
    /// [`Run::config`] gives one (then `-c <work>/config.yaml`).
    pub fn in_work(work: &Work) -> Run {
        let mut cmd = binary();
        cmd.current_dir(work.dir.path());
        Run::with(cmd, Some(work.path("config.yaml")), true)
    }

    /// The binary in the repository root, with no config.
    pub fn bare() -> Run {
        Run::with(binary(), None, false)
    }

    /// [`Run::bare`] passing `-c <temp dir>/config.yaml`, a file holding
    /// `text` that lives as long as this run: for [`Run::run`] (with
    /// [`Run::spawn`] or [`Run::command`] it is gone before the binary
    /// reads it).
    pub fn bare_with_config(text: &str) -> Run {
        let work = Work::new();
        let mut run = Run::bare().config_file(work.write("config.yaml", text));
        run._scratch = Some(work);
        run
    }

    /// Writes `text` as the config this run reads (for [`Run::in_work`],
    /// also passes `-c <path>`; call it before the subcommand's args).
    pub fn config(mut self, text: &str) -> Run {
        let path = self
            .config_path
            .clone()
            .expect("Run::bare has no config file: use Run::config_file");
        std::fs::write(&path, text).expect("write config");
        if self.config_flag {
            self.cmd.arg("-c").arg(&path);
            self.config_flag = false;
        }
        self
    }

    /// Passes `-c <path>`: an existing config file.
    pub fn config_file(mut self, path: impl AsRef<Path>) -> Run {
        self.cmd.arg("-c").arg(path.as_ref());
        self
    }

    /// One more argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Run {
        self.cmd.arg(arg);
        self
    }

    /// More arguments.
    pub fn args<I, S>(mut self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd.args(args);
        self
    }

    /// Sets a variable of the binary's environment.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Run {
        self.cmd.env(key, value);
        self
    }

    /// Sets variables of the binary's environment.
    pub fn envs<I, K, V>(mut self, vars: I) -> Run
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        self.cmd.envs(vars);
        self
    }

    /// Removes a variable from the binary's environment.
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Run {
        self.cmd.env_remove(key);
        self
    }

    /// The working directory of the binary.
    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Run {
        self.cmd.current_dir(dir);
        self
    }

    /// Bytes written to the binary's stdin (otherwise stdin is empty).
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Run {
        self.stdin = Some(bytes.into());
        self
    }

    /// Kills the binary (SIGKILL) and fails the test when it runs longer
    /// than `secs` seconds ([`super::wait_with_deadline`]); stdin is then
    /// empty.
    pub fn deadline(mut self, secs: u64) -> Run {
        self.deadline = Some(secs);
        self
    }

    /// Runs the command inside a private mount namespace after the shell
    /// commands `setup` ([`super::in_mount_namespace`]).
    pub fn in_mount_namespace(mut self, setup: &str) -> Run {
        self.cmd = super::in_mount_namespace(&self.cmd, setup);
        self
    }

    /// Changes the underlying command (a `pre_exec` hook, a uid; see
    /// [`super::as_nobody`] for running as nobody).
    pub fn command_mut(mut self, change: impl FnOnce(&mut std::process::Command)) -> Run {
        change(&mut self.cmd);
        self
    }

    /// Runs as nobody when the tests run as root ([`super::as_nobody`],
    /// a copy of the binary in `scratch`).
    pub fn unprivileged(mut self, scratch: &Path) -> Run {
        self.cmd = super::as_nobody(self.cmd, scratch);
        self
    }

    /// Starts the binary and returns at once (a run to signal or to race),
    /// stdin and stdout null, stderr as `stderr`; expectations set on the
    /// builder are not checked (see [`Expect::check`]).
    pub fn spawn(self, stderr: Stdio) -> std::process::Child {
        let mut cmd = self.cmd;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start mirrorer")
    }

    /// The command as set up so far, to spawn it (a run to signal or to
    /// race); expectations set on the builder are not checked.
    pub fn command(self) -> std::process::Command {
        self.cmd
    }

    /// Runs the binary to its end, checks every expectation, and returns
    /// the output.
    pub fn run(self) -> Ran {
        let line = command_line(&self.cmd);
        let output = match self.deadline {
            Some(secs) => {
                assert!(self.stdin.is_none(), "Run: stdin with a deadline");
                let mut cmd = self.cmd;
                let child = cmd
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("start mirrorer");
                super::wait_with_deadline(child, secs)
            }
            None => {
                let mut cmd = assert_cmd::Command::from_std(self.cmd);
                if let Some(stdin) = self.stdin {
                    cmd.write_stdin(stdin);
                }
                cmd.output().expect("run mirrorer")
            }
        };
        self.expect.check(&line, output)
    }
}

/// `program arg arg ...` for failure messages.
fn command_line(cmd: &std::process::Command) -> String {
    let mut parts: Vec<OsString> = vec![cmd.get_program().to_owned()];
    parts.extend(cmd.get_args().map(OsStr::to_owned));
    parts
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}
