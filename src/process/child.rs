//! Child set-up of the process wrapper: no external program outlives
//! mirrorer.
//!
//! A stage killed with SIGKILL (an OOM kill, a CI runner giving up) runs no
//! clean-up, so its children must be told by the kernel: every child gets
//! `prctl(PR_SET_PDEATHSIG, SIGTERM)` between fork and exec ([`spawn`]).
//! SIGTERM rather than SIGKILL because the programs we run clean up their
//! own helpers on SIGTERM: a local `rsync --delete` is three processes, and
//! on SIGTERM the top one stops its generator (SIGUSR1), while on SIGKILL
//! the generator keeps deleting in the published tree until it next writes
//! to its dead peer (measured with rsync 3.x on a tree of 90 000 files: all
//! deleted after SIGKILL, most kept after SIGTERM). A grandchild that a
//! child does not stop itself is not reached.
//!
//! The death signal fires when the *thread* that forked the child exits,
//! not the process. Stages spawn from short-lived worker threads (`sync`
//! runs one per syncer), and a [`super::Running`] may be handed to another
//! thread, so every child is forked by one spawner thread that lives as
//! long as the process. If mirrorer dies between fork and `prctl`, the
//! child sees a different parent (`getppid`) and does not run the program.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::OnceLock;
use std::sync::mpsc;

/// The signal each child receives when mirrorer dies (see the module docs).
pub const DEATH_SIGNAL: i32 = libc::SIGTERM;

type Request = (Command, mpsc::Sender<io::Result<Child>>);

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
                    for (mut command, reply) in rx {
                        let _ = reply.send(command.spawn());
                    }
                })
                .ok()
                .map(|_| tx)
        })
        .as_ref()
        .ok_or_else(|| io::Error::other("could not start the thread that starts programs"))
}

/// Adds the death signal to `command` (run in the child after fork).
fn set_death_signal(command: &mut Command) {
    let parent = libc::pid_t::try_from(std::process::id()).unwrap_or(0);
    // SAFETY: the closure runs between fork and exec and only calls the
    // async-signal-safe prctl(2) and getppid(2); it allocates nothing
    // (`last_os_error` and `from_raw_os_error` build an `Os` variant).
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                DEATH_SIGNAL as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            // Mirrorer died before prctl: nobody would stop this child.
            if libc::getppid() != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

/// Starts `command` on the spawner thread with the death signal set.
///
/// # Errors
/// The error of [`Command::spawn`], or an error if the spawner thread could
/// not be started.
pub(super) fn spawn(mut command: Command) -> io::Result<Child> {
    set_death_signal(&mut command);
    let gone = || io::Error::other("the thread that starts programs has stopped");
    let (tx, rx) = mpsc::channel();
    spawner()?.send((command, tx)).map_err(|_| gone())?;
    rx.recv().map_err(|_| gone())?
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
}
