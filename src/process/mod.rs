//! The one wrapper every external program goes through (docs/architecture.md, practices 4–6).
//!
//! No other module of `src/` starts a program (children are created in
//! `child.rs`, not with the standard library's `Command`). Everything a
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
//!   the child's one reader thread, in order per stream) and stdout is not
//!   collected. A line longer than [`output::MAX_LINE`] (64 KiB) is handed
//!   on in pieces of that size. The last [`TAIL_LINES`] lines of both
//!   streams are always kept for errors.
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
//!   (`PR_SET_PDEATHSIG`; all children are created by one long-lived
//!   thread, with `clone(CLONE_VM | CLONE_VFORK)` as `posix_spawn` does,
//!   not a full `fork`: see `src/process/child.rs`).
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
//!
//! # Layout
//!
//! | file | what |
//! |---|---|
//! | `tools.rs` | [`Tool`] (the one list of external programs, [`Tool::ALL`]), [`Tools`], [`MissingTools`], [`find_program`] |
//! | `command.rs` | the builder [`Cmd`], its redacted display, [`shell_quote`] |
//! | `running.rs` | [`Cmd::run`], [`Cmd::spawn`], [`Running`], [`Finished`], [`Exit`] |
//! | `output.rs` | the one reader thread per child: lines of both pipes, tail, collected stdout, [`output::MAX_LINE`] |
//! | `child.rs` | the spawner thread that creates every child (vfork-style clone, death signal) |
//! | `error.rs` | [`ProcessError`] |

mod child;
mod command;
mod error;
pub mod output;
mod running;
mod tools;

use std::time::Duration;

pub use command::{Cmd, LineHandler, Stream, shell_quote};
pub use error::ProcessError;
pub use running::{Exit, Finished, Running};
pub use tools::{MissingTools, Tool, ToolSource, Tools, find_program};

/// How many lines of a program's output (stdout and stderr interleaved) an
/// error keeps.
pub const TAIL_LINES: usize = 20;

/// Default grace period between SIGTERM and SIGKILL when a child is stopped.
pub const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(10);

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
}
