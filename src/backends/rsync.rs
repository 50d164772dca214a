//! `rsync` (`tools.rsync`): publication of a local tree to a local or
//! remote directory.
//!
//! Options (spec/stages.md, "publish-snapshot"): `--archive --delete --links
//! --chmod=D755,F644`, plus `--mkpath` so that a missing destination parent
//! (`repo/snapshots/` on a fresh replica) is created (rsync >= 3.2.3 on both
//! ends). A remote destination is `<user>@<host>:<path>` with `-e <ssh>`
//! (`tools.ssh`), the remote shell rsync starts.

use std::ffi::OsString;
use std::path::Path;

use crate::process::{Cmd, Tool, Tools};

/// Where a tree goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dest<'a> {
    /// A local directory.
    Local(&'a Path),
    /// A directory on `host`, reached as `user` through ssh.
    Remote {
        /// Login name.
        user: &'a str,
        /// Host name.
        host: &'a str,
        /// Directory on the host.
        path: &'a Path,
    },
}

fn with_slash(path: &Path) -> OsString {
    let mut s = path.as_os_str().to_os_string();
    if !s.to_string_lossy().ends_with('/') {
        s.push("/");
    }
    s
}

/// `rsync --archive --delete --links --chmod=D755,F644 --mkpath [-e <ssh>]
/// <src>/ <dest>/`: makes `dest` an exact copy of the content of `src`
/// (symlinks copied as symlinks).
pub fn publish_cmd(tools: &Tools, src: &Path, dest: &Dest<'_>) -> Cmd {
    let purpose = match dest {
        Dest::Local(_) => "publish the snapshot tree locally",
        Dest::Remote { .. } => "publish the snapshot tree on the replica",
    };
    let cmd = tools.cmd(Tool::Rsync, purpose).args([
        "--archive",
        "--delete",
        "--links",
        "--chmod=D755,F644",
        "--mkpath",
    ]);
    match dest {
        Dest::Local(path) => cmd.arg(with_slash(src)).arg(with_slash(path)),
        Dest::Remote { user, host, path } => {
            let mut target = OsString::from(format!("{user}@{host}:"));
            target.push(with_slash(path));
            cmd.arg("-e")
                .arg(tools.program(Tool::Ssh))
                .arg(with_slash(src))
                .arg(target)
        }
    }
}
