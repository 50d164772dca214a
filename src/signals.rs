//! SIGINT / SIGTERM handling: a process-wide flag that stages, the lock
//! waiter and the process wrapper check (docs/cli.md, "Exit codes": 130/143).
//!
//! [`install`] registers handlers (signal-hook) that only record the signal
//! number. Nothing is interrupted asynchronously: long-running loops call
//! [`received`] (or [`check`]) and wind down. [`crate::process`] does this
//! while it waits for a child: on a signal it stops the child (SIGTERM to its
//! process group, SIGKILL after the grace period) and returns
//! [`crate::process::ProcessError::Interrupted`]. The stage runner turns any
//! failure that happened after a signal into [`crate::error::Error::Signal`]
//! (exit 128 + n).
//!
//! A second SIGINT or SIGTERM while the first is being handled terminates the
//! process at once with the default action (the person at the terminal
//! insists).

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use signal_hook::consts::{SIGINT, SIGTERM};

/// The signal number received (0: none yet).
static RECEIVED: OnceLock<Arc<AtomicUsize>> = OnceLock::new();
static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();

fn flag() -> &'static Arc<AtomicUsize> {
    RECEIVED.get_or_init(|| Arc::new(AtomicUsize::new(0)))
}

/// Registers the SIGINT and SIGTERM handlers (once per process; later calls
/// return the first result).
///
/// # Errors
/// The message of the OS error if a handler could not be registered.
pub fn install() -> Result<(), String> {
    INSTALLED
        .get_or_init(|| {
            let seen = Arc::new(AtomicBool::new(false));
            for sig in [SIGINT, SIGTERM] {
                // Order matters (signal-hook docs): the conditional default
                // action is registered first, so it sees the flag as it was
                // before this delivery.
                signal_hook::flag::register_conditional_default(sig, Arc::clone(&seen))
                    .and_then(|_| signal_hook::flag::register(sig, Arc::clone(&seen)))
                    .and_then(|_| {
                        signal_hook::flag::register_usize(sig, Arc::clone(flag()), sig as usize)
                    })
                    .map_err(|e| format!("could not install handler for signal {sig}: {e}"))?;
            }
            Ok(())
        })
        .clone()
}

/// The signal received so far (2 = SIGINT, 15 = SIGTERM), if any.
pub fn received() -> Option<i32> {
    match flag().load(Ordering::SeqCst) {
        0 => None,
        n => i32::try_from(n).ok(),
    }
}

/// The name of a signal number, for messages (`SIGTERM`, else `signal N`).
pub fn name(signal: i32) -> String {
    match signal {
        SIGINT => "SIGINT".to_owned(),
        SIGTERM => "SIGTERM".to_owned(),
        libc::SIGKILL => "SIGKILL".to_owned(),
        libc::SIGHUP => "SIGHUP".to_owned(),
        n => format!("signal {n}"),
    }
}

/// A signal asked the process to stop.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("stopped by {}", name(*.signal))]
pub struct Interrupted {
    /// The signal number (2 or 15).
    pub signal: i32,
}

/// `Err(Interrupted)` once SIGINT or SIGTERM was received; call it between
/// units of work (batches, attempts, files).
///
/// # Errors
/// [`Interrupted`] with the signal number.
pub fn check() -> Result<(), Interrupted> {
    match received() {
        Some(signal) => Err(Interrupted { signal }),
        None => Ok(()),
    }
}
