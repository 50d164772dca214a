//! Running a `Cmd`: the child in its own process group, one reader thread
//! for its output (`output.rs`), waiting with timeout and signal checks,
//! stopping (SIGTERM, then SIGKILL), and how it ended (`Exit`, `Finished`).
//! Creating the child itself is in `child.rs`.

use std::fmt;

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::child::{self, Child};
use super::output::{self, Collected};
use super::{Cmd, ProcessError};

/// How long after the child's exit its output readers may take to reach
/// end of file (a grandchild may still hold the pipes).
const READER_GRACE: Duration = Duration::from_secs(2);

/// How often a waiting loop checks the child, the timeout and the signal flag.
const POLL: Duration = Duration::from_millis(25);

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
    /// The last [`TAIL_LINES`](super::TAIL_LINES) lines of stdout and stderr, newline-separated.
    pub tail: String,
    /// Wall time from start to exit.
    pub duration: Duration,
}

impl Cmd {
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
        self.log_start();
        let spec = child::Spec {
            program: self.program.clone(),
            args: self.args.iter().map(|a| a.value.clone()).collect(),
            env: self
                .env
                .iter()
                .map(|e| (e.key.clone().into(), e.value.clone().into()))
                .collect(),
            cwd: self.cwd.clone(),
        };
        // Stdin from /dev/null, stdout and stderr to pipes, its own process
        // group, and death with this process (PR_SET_PDEATHSIG, child.rs).
        let mut child = child::spawn(&spec).map_err(|source| ProcessError::Start {
            command: self.display(),
            purpose: self.purpose.clone(),
            source,
        })?;
        let collected = Arc::new(Mutex::new(Collected::default()));
        let reader = output::spawn_reader(
            child.stdout.take(),
            child.stderr.take(),
            self.on_line.clone(),
            Arc::clone(&collected),
        );
        Ok(Running {
            child: Some(child),
            cmd: self.clone(),
            reader: Some(reader),
            collected,
            started: Instant::now(),
            done: None,
        })
    }
}

/// A child started by [`Cmd::spawn`]. `Send`, so it can be waited for on
/// another thread. Dropping it while the child runs kills the child's
/// process group (SIGKILL) and reaps it.
pub struct Running {
    child: Option<Child>,
    cmd: Cmd,
    reader: Option<JoinHandle<()>>,
    collected: Arc<Mutex<Collected>>,
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
        // The reader ends at EOF, which comes when every process holding
        // the pipes is gone. A grandchild left running (a daemon the child
        // started) would block a plain join forever: wait a little, then
        // leave the reader to finish on its own.
        // It almost always finishes within microseconds of the exit, so the
        // pause starts short and doubles up to 5 ms.
        if let Some(reader) = self.reader.take() {
            let deadline = Instant::now() + READER_GRACE;
            let mut pause = Duration::from_micros(20);
            while !reader.is_finished() && Instant::now() < deadline {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(5));
            }
            if reader.is_finished() {
                let _ = reader.join();
            } else {
                tracing::warn!(
                    target: "mirrorer::process",
                    command = %self.cmd.display(),
                    "command_output_still_open"
                );
            }
        }
        let (tail, stdout) = self
            .collected
            .lock()
            .map(|mut c| {
                let stdout = String::from_utf8_lossy(&std::mem::take(&mut c.stdout)).into_owned();
                (c.tail_text(), stdout)
            })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::Stream;

    /// `/bin/sh -c SCRIPT`, for `purpose`.
    fn sh(purpose: &str, script: &str) -> Cmd {
        Cmd::new("/bin/sh", purpose).args(["-c", script])
    }

    #[test]
    fn start_and_status_errors_differ_and_carry_the_command() {
        let err = Cmd::new("/nonexistent/prog", "try")
            .arg("x")
            .run()
            .unwrap_err();
        assert!(matches!(err, ProcessError::Start { .. }), "{err}");
        assert!(err.to_string().contains("/nonexistent/prog x"), "{err}");

        let err = sh("fail", "echo out; echo err >&2; exit 3")
            .run()
            .unwrap_err();
        assert_eq!(err.exit(), Some(Exit::Code(3)));
        let text = err.to_string();
        assert!(text.contains("exited with 3"), "{text}");
        assert!(text.contains("out") && text.contains("err"), "{text}");
    }

    #[test]
    fn env_reaches_the_child_and_stdout_is_collected() {
        let out = sh("env", "printf '%s|%s' \"$A\" \"$B\"")
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
        let out = sh("lines", "echo one; echo two >&2; exit 72")
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
        let err = sh("sleep", "sleep 30")
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
        let out = sh("leave a daemon", "sleep 20 & echo started")
            .run()
            .unwrap();
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_eq!(out.exit, Exit::Code(0));
    }

    #[test]
    fn wait_after_try_wait_returns_the_result() {
        let mut running = sh("exit 3", "echo hi; exit 3").spawn().unwrap();
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
        let mut running = sh("ignore term", "trap '' TERM; echo ready; sleep 30")
            .spawn()
            .unwrap();
        assert!(running.pid() > 0);
        std::thread::sleep(Duration::from_millis(200));
        assert!(running.try_wait().unwrap().is_none());
        let finished = running.stop(Duration::from_millis(300)).unwrap();
        assert_eq!(finished.exit, Exit::Signal(libc::SIGKILL));
    }
}
