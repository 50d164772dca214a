//! Processes the tests start, signal and wait for: kill, wait with a
//! deadline, poll until ready, live children, mount namespaces, a helper
//! program that must succeed.

use std::fs;
use std::process::Child;
use std::time::{Duration, Instant};

/// Sends `signal` to `pid` (an `i32` from `/proc` or a `u32` from
/// [`Child::id`]).
pub fn kill(pid: impl Into<i64>, signal: i32) {
    let pid = i32::try_from(pid.into()).expect("pid fits in pid_t");
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        libc::kill(pid, signal);
    }
}

/// The pid a fake wrote to `path` (one number, as `$$ > file` writes it).
pub fn read_pid(path: &std::path::Path) -> i32 {
    let text =
        fs::read_to_string(path).unwrap_or_else(|e| panic!("pid file {}: {e}", path.display()));
    text.trim()
        .parse()
        .unwrap_or_else(|e| panic!("pid file {}: {e}: {text:?}", path.display()))
}

/// Waits for `child` and collects its output; after `secs` seconds kills it
/// (SIGKILL) and panics.
pub fn wait_with_deadline(child: Child, secs: u64) -> std::process::Output {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(out) => out.expect("wait for mirrorer"),
        Err(_) => {
            kill(pid, libc::SIGKILL);
            panic!("mirrorer did not exit within {secs}s");
        }
    }
}

/// Polls `ready` every 20 ms; panics naming `what` after `secs` seconds.
pub fn wait_for(what: &str, secs: u64, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `cmd` (a [`Env::std_cmd`] or any command) run inside a private mount
/// namespace (`unshare --mount`, root or CAP_SYS_ADMIN) after the shell
/// commands `setup` (e.g. a small tmpfs or a read-only bind mount); the
/// mounts vanish with the namespace. Same environment and working directory
/// as `cmd`. Panics with what is missing when `unshare` is not installed.
pub fn in_mount_namespace(cmd: &std::process::Command, setup: &str) -> std::process::Command {
    let unshare = mirrorer::process::find_program("unshare")
        .unwrap_or_else(|| panic!("this test needs unshare (Debian package util-linux) and root"));
    let mut out = std::process::Command::new(unshare);
    out.args(["--mount", "--propagation", "private", "--", "sh", "-ec"])
        .arg(format!("{setup}\nexec \"$@\""))
        .arg("sh")
        .arg(cmd.get_program());
    same_setup(cmd, &mut out);
    out
}

/// Gives `to` the arguments, environment changes and working directory of
/// `from` (a command wrapped in another, or run from another path).
fn same_setup(from: &std::process::Command, to: &mut std::process::Command) {
    to.args(from.get_args());
    for (key, value) in from.get_envs() {
        match value {
            Some(v) => to.env(key, v),
            None => to.env_remove(key),
        };
    }
    if let Some(dir) = from.get_current_dir() {
        to.current_dir(dir);
    }
}

/// Whether `pid` is a live process: it exists and is not a zombie (a child
/// of a killed process may be re-parented to an init that never reaps it).
pub fn process_alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// The pids of the live children of `pid` (from `/proc/*/stat`).
pub fn children_of(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for entry in fs::read_dir("/proc").expect("read /proc").flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<i32>().ok());
        if ppid == Some(pid) && process_alive(child) {
            out.push(child);
        }
    }
    out
}

/// `cmd` run as the unprivileged user nobody (uid and gid 65534) when the
/// tests run as root, so that permission bits are enforced; the program is
/// copied to `<scratch>/mirrorer` first (nobody may not reach the build
/// directory). Same arguments, environment and working directory as `cmd`.
/// Not root: `cmd` as it is.
pub fn as_nobody(cmd: std::process::Command, scratch: &std::path::Path) -> std::process::Command {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return cmd;
    }
    let copy = scratch.join("mirrorer");
    fs::copy(cmd.get_program(), &copy).expect("copy the binary");
    fs::set_permissions(&copy, fs::Permissions::from_mode(0o755)).expect("chmod");
    let mut out = std::process::Command::new(copy);
    same_setup(&cmd, &mut out);
    out.uid(65534).gid(65534);
    out
}

/// Runs `cmd` to its end and returns its output; panics with `what` and
/// its stderr when it fails to start or exits non-zero.
#[track_caller]
pub fn output_ok(cmd: &mut std::process::Command, what: &str) -> std::process::Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
