//! Child set-up of the process wrapper: no external program outlives
//! mirrorer, and starting one costs what `posix_spawn(3)` costs.
//!
//! A stage killed with SIGKILL (an OOM kill, a CI runner giving up) runs no
//! clean-up, so its children must be told by the kernel: every child gets
//! `prctl(PR_SET_PDEATHSIG, SIGTERM)` before it executes the program.
//! SIGTERM rather than SIGKILL because the programs we run clean up their
//! own helpers on SIGTERM: a local `rsync --delete` is three processes, and
//! on SIGTERM the top one stops its generator (SIGUSR1), while on SIGKILL
//! the generator keeps deleting in the published tree until it next writes
//! to its dead peer (measured with rsync 3.x on a tree of 90 000 files: all
//! deleted after SIGKILL, most kept after SIGTERM). A grandchild that a
//! child does not stop itself is not reached.
//!
//! The death signal fires when the *thread* that created the child exits,
//! not the process. Stages spawn from short-lived worker threads (`sync`
//! runs one per syncer), and a [`super::Running`] may be handed to another
//! thread, so every child is created by one spawner thread that lives as
//! long as the process. If mirrorer dies before the `prctl`, the child sees
//! a different parent (`getppid`) and does not run the program.
//!
//! **How.** The standard library's `Command` runs code in the child only after a
//! full `fork(2)`, which copies the page tables of this multi-threaded
//! process and then takes a copy-on-write fault, with a TLB shoot-down to
//! every core, on each page any thread writes until the child executes:
//! with one scanner per 100-file batch, half the time of an `av-scan` of a
//! million files went there (`bench/av-scan.sh`). So the child is created
//! as glibc's `posix_spawn` creates it: `clone(CLONE_VM | CLONE_VFORK)` on
//! a stack of its own, the spawner thread suspended until the child has
//! executed the program or failed. The child shares this process's memory,
//! so it only makes system calls on data prepared before the clone: it
//! resets every caught signal to its default (SIGPIPE too, as `std` does),
//! starts its own process group, sets the death signal, checks its parent,
//! puts `/dev/null` and two pipes on 0, 1 and 2, changes directory, clears
//! the signal mask and calls `execvpe(3)` (the program is looked up on
//! this process's `PATH`, as `std` looks it up). A failure before the
//! program runs is reported back through shared memory as the `errno` and
//! becomes the error of [`spawn`], as with `std`.

use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::mpsc;

/// The signal each child receives when mirrorer dies (see the module docs).
pub const DEATH_SIGNAL: i32 = libc::SIGTERM;

/// Stack of the child between `clone` and `execvpe` (glibc's `execvpe`
/// keeps the `PATH` candidate on the stack).
const CHILD_STACK: usize = 256 * 1024;

/// What to start: the program (a path, or a name looked up on `PATH`), its
/// arguments, the variables to set on top of this process's environment,
/// and the working directory.
#[derive(Debug, Clone)]
pub(super) struct Spec {
    pub(super) program: OsString,
    pub(super) args: Vec<OsString>,
    pub(super) env: Vec<(OsString, OsString)>,
    pub(super) cwd: Option<PathBuf>,
}

/// The C strings of a [`Spec`], made before the clone (the child may not
/// allocate).
struct Prepared {
    program: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
    cwd: Option<CString>,
}

fn c_string(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "nul byte found in provided data",
        )
    })
}

impl Spec {
    fn prepare(&self) -> io::Result<Prepared> {
        let program = c_string(self.program.as_bytes())?;
        let mut argv = vec![program.clone()];
        for a in &self.args {
            argv.push(c_string(a.as_bytes())?);
        }
        let set = |key: &OsStr| self.env.iter().any(|(k, _)| k == key);
        let mut envp = Vec::new();
        for (k, v) in std::env::vars_os().filter(|(k, _)| !set(k)) {
            envp.push(c_string(&[k.as_bytes(), b"=", v.as_bytes()].concat())?);
        }
        for (k, v) in &self.env {
            envp.push(c_string(&[k.as_bytes(), b"=", v.as_bytes()].concat())?);
        }
        let cwd = match &self.cwd {
            Some(dir) => Some(c_string(dir.as_os_str().as_bytes())?),
            None => None,
        };
        Ok(Prepared {
            program,
            argv,
            envp,
            cwd,
        })
    }
}

/// A started child: its pid (also its process group id) and the read ends
/// of its standard output and error.
#[derive(Debug)]
pub(super) struct Child {
    pid: libc::pid_t,
    /// Set once the child was reaped, so its pid is never waited for twice.
    status: Option<ExitStatus>,
    pub(super) stdout: Option<File>,
    pub(super) stderr: Option<File>,
}

impl Child {
    /// The child's pid.
    pub(super) fn id(&self) -> u32 {
        u32::try_from(self.pid).unwrap_or(0)
    }

    fn reap(&mut self, flags: libc::c_int) -> io::Result<Option<ExitStatus>> {
        if let Some(status) = self.status {
            return Ok(Some(status));
        }
        loop {
            let mut raw: libc::c_int = 0;
            // SAFETY: waitpid(2) writes only to `raw`.
            let r = unsafe { libc::waitpid(self.pid, &mut raw, flags) };
            if r == self.pid {
                let status = ExitStatus::from_raw(raw);
                self.status = Some(status);
                return Ok(Some(status));
            }
            if r == 0 {
                return Ok(None);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    /// The exit status if the child has ended, without blocking.
    ///
    /// # Errors
    /// The error of `waitpid(2)`.
    pub(super) fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        self.reap(libc::WNOHANG)
    }

    /// Waits for the child to end.
    ///
    /// # Errors
    /// The error of `waitpid(2)`.
    pub(super) fn wait(&mut self) -> io::Result<ExitStatus> {
        self.reap(0)?
            .ok_or_else(|| io::Error::other("waitpid returned without a status"))
    }
}

type Request = (Prepared, mpsc::Sender<io::Result<Child>>);

/// The spawner thread's queue, started on first use; `None` if the thread
/// could not be started.
fn spawner() -> io::Result<&'static mpsc::Sender<Request>> {
    static SPAWNER: OnceLock<Option<mpsc::Sender<Request>>> = OnceLock::new();
    SPAWNER
        .get_or_init(|| {
            let (tx, rx) = mpsc::channel::<Request>();
            std::thread::Builder::new()
                .name("mirrorer-spawner".to_owned())
                .spawn(move || {
                    // One stack for every child: each is done with it
                    // (executed or exited) before clone returns.
                    let mut stack = vec![0u8; CHILD_STACK];
                    for (prepared, reply) in rx {
                        let _ = reply.send(clone_child(&prepared, &mut stack));
                    }
                })
                .ok()
                .map(|_| tx)
        })
        .as_ref()
        .ok_or_else(|| io::Error::other("could not start the thread that starts programs"))
}

/// Starts `spec` on the spawner thread (see the module docs): stdin from
/// `/dev/null`, stdout and stderr to pipes, its own process group, the
/// death signal set.
///
/// # Errors
/// Why the program could not be started (`NotFound` when it is not on
/// `PATH`, `PermissionDenied`, ...), an error for a NUL byte in an
/// argument, variable or directory, or an error if the spawner thread
/// could not be started.
pub(super) fn spawn(spec: &Spec) -> io::Result<Child> {
    let prepared = spec.prepare()?;
    let gone = || io::Error::other("the thread that starts programs has stopped");
    let (tx, rx) = mpsc::channel();
    spawner()?.send((prepared, tx)).map_err(|_| gone())?;
    rx.recv().map_err(|_| gone())?
}

/// What the child reads: raw pointers into a [`Prepared`] and fds that
/// stay open until the clone returns.
struct ChildArgs {
    program: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    cwd: *const libc::c_char,
    stdin: libc::c_int,
    stdout: libc::c_int,
    stderr: libc::c_int,
    parent: libc::pid_t,
    /// The child's `errno` when it fails before executing the program.
    error: AtomicI32,
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2(2) writes two fds into `fds`, which we then own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both fds are open and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn pointers(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// Creates the child (runs on the spawner thread) on `stack`.
fn clone_child(p: &Prepared, stack: &mut [u8]) -> io::Result<Child> {
    let stdin = File::open("/dev/null").map(OwnedFd::from)?;
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let argv = pointers(&p.argv);
    let envp = pointers(&p.envp);
    let args = ChildArgs {
        program: p.program.as_ptr(),
        argv: argv.as_ptr(),
        envp: envp.as_ptr(),
        cwd: p.cwd.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()),
        stdin: stdin.as_raw_fd(),
        stdout: out_w.as_raw_fd(),
        stderr: err_w.as_raw_fd(),
        parent: libc::pid_t::try_from(std::process::id()).unwrap_or(0),
        error: AtomicI32::new(0),
    };
    // The stack grows down from its 16-byte aligned end.
    let top = {
        let end = stack.as_mut_ptr().wrapping_add(stack.len());
        end.wrapping_sub(end as usize % 16)
    };
    // SAFETY: every signal is blocked on this thread while the child shares
    // its memory, so no handler of ours runs in the child; the child resets
    // the handlers and the mask before executing. `args`, `argv`, `envp`,
    // the strings of `p` and `stack` outlive the child's use of them:
    // CLONE_VFORK suspends this thread until the child has executed the
    // program or exited.
    let pid = unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        let pid = libc::clone(
            child_main,
            top.cast::<libc::c_void>(),
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            std::ptr::from_ref(&args).cast_mut().cast::<libc::c_void>(),
        );
        let clone_error = io::Error::last_os_error();
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        if pid < 0 {
            return Err(clone_error);
        }
        pid
    };
    drop((stdin, out_w, err_w));
    let mut child = Child {
        pid,
        status: None,
        stdout: Some(File::from(out_r)),
        stderr: Some(File::from(err_r)),
    };
    match args.error.load(Ordering::SeqCst) {
        0 => Ok(child),
        errno => {
            let _ = child.wait();
            Err(io::Error::from_raw_os_error(errno))
        }
    }
}

/// The child between `clone` and `execvpe` (see the module docs). Only
/// system calls on prepared data: no allocation, no lock, no unwinding.
extern "C" fn child_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` points to the parent's `ChildArgs`, alive and unchanged
    // while this thread runs (CLONE_VFORK); every call below is a plain
    // system call on pointers prepared by the parent.
    unsafe {
        let a = &*arg.cast::<ChildArgs>();
        let fail = |a: &ChildArgs| -> libc::c_int {
            a.error.store(*libc::__errno_location(), Ordering::SeqCst);
            libc::_exit(127)
        };
        // Caught signals back to their default; ignored ones stay ignored
        // (the convention of exec), but SIGPIPE, which the Rust runtime
        // ignores, goes back to its default, as std::process does.
        let mut default: libc::sigaction = std::mem::zeroed();
        default.sa_sigaction = libc::SIG_DFL;
        for sig in 1..65 {
            if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                continue;
            }
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut old) == 0
                && (old.sa_sigaction != libc::SIG_IGN || sig == libc::SIGPIPE)
                && old.sa_sigaction != libc::SIG_DFL
            {
                libc::sigaction(sig, &default, std::ptr::null_mut());
            }
        }
        if libc::setpgid(0, 0) != 0 {
            return fail(a);
        }
        if libc::prctl(
            libc::PR_SET_PDEATHSIG,
            DEATH_SIGNAL as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        ) != 0
        {
            return fail(a);
        }
        // Mirrorer died before prctl: nobody would stop this child.
        if libc::getppid() != a.parent {
            *libc::__errno_location() = libc::ESRCH;
            return fail(a);
        }
        for (from, to) in [(a.stdin, 0), (a.stdout, 1), (a.stderr, 2)] {
            if libc::dup2(from, to) < 0 {
                return fail(a);
            }
        }
        if !a.cwd.is_null() && libc::chdir(a.cwd) != 0 {
            return fail(a);
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::pthread_sigmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        libc::execvpe(a.program, a.argv, a.envp);
        fail(a)
    }
}

#[cfg(test)]
mod tests {
    use crate::process::{Cmd, Exit};

    #[test]
    fn a_child_outlives_the_thread_that_started_it() {
        // Started by a thread that ends at once, waited for by this one: it
        // must run to its own end, not receive the death signal.
        let running = std::thread::spawn(|| {
            Cmd::new("sh", "sleep, then exit 3")
                .args(["-c", "sleep 0.3; exit 3"])
                .ok_codes(&[3])
                .spawn()
                .unwrap()
        })
        .join()
        .unwrap();
        let finished = running.wait().unwrap();
        assert_eq!(finished.exit, Exit::Code(3));
    }

    #[test]
    fn a_missing_program_is_an_error_of_spawn() {
        let err = Cmd::new("mirrorer-no-such-program", "test")
            .spawn()
            .unwrap_err();
        match err {
            crate::process::ProcessError::Start { source, .. } => {
                assert_eq!(source.kind(), std::io::ErrorKind::NotFound, "{source}");
            }
            other => panic!("not a start error: {other}"),
        }
    }

    #[test]
    fn the_child_gets_the_environment_directory_and_a_default_sigpipe() {
        let dir = tempfile::tempdir().unwrap();
        let out = Cmd::new("sh", "test")
            .args([
                "-c",
                "pwd; echo \"$MIRRORER_CHILD_TEST\"; grep -E '^(SigIgn|SigBlk)' /proc/self/status",
            ])
            .env("MIRRORER_CHILD_TEST", "a b")
            .current_dir(dir.path())
            .run()
            .unwrap();
        let text = out.stdout;
        let real = dir.path().canonicalize().unwrap();
        assert!(text.contains(&*real.to_string_lossy()), "{text}");
        assert!(text.contains("a b"), "{text}");
        // No signal blocked; SIGPIPE (13, bit 12) not ignored.
        assert!(text.contains("SigBlk:\t0000000000000000"), "{text}");
        let ign = text
            .lines()
            .find_map(|l| l.strip_prefix("SigIgn:\t"))
            .unwrap();
        let mask = u64::from_str_radix(ign.trim(), 16).unwrap();
        assert_eq!(mask & (1 << 12), 0, "{text}");
    }
}
