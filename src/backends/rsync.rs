//! `rsync` (`tools.rsync`): publication of a local tree to a local or
//! remote directory.
//!
//! Options (docs/stages.md, "publish-snapshot"): `--archive --delete --links
//! --chmod=D755,F644`, plus `--mkpath`, so that a destination whose parents
//! are missing (`<workdir>/repo` on a fresh replica) is created like `mkdir
//! -p` (rsync >= 3.2.3 on both ends: Debian 11 and later). A remote
//! destination is `<user>@<host>:<path>` with `-e <ssh>` (`tools.ssh`;
//! rsync splits that string on blanks, so the path must not contain any),
//! the remote shell rsync starts.
//!
//! One subtree of the tree (`snapshots/<snap>/`) is sent with `--relative`
//! and a `/./` marker: `rsync ... --relative <root>/./snapshots/<snap>/
//! <dest>/`. That updates `<dest>/snapshots/<snap>/` exactly (deleting
//! extraneous files only there), creates `<dest>/snapshots/` when missing,
//! and leaves the other snapshots alone.

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

/// `rsync --archive --delete --links --chmod=D755,F644 --mkpath [-e <ssh>]`,
/// then:
/// - `subtree` `None`: `<root>/ <dest>/`: `dest` becomes an exact copy of
///   the content of `root`;
/// - `subtree` `Some(rel)`: `--relative <root>/./<rel>/ <dest>/`:
///   `dest/rel` becomes an exact copy of `root/rel`, the rest of `dest` is
///   untouched.
///
/// Symlinks are copied as symlinks.
pub fn publish_cmd(tools: &Tools, root: &Path, subtree: Option<&Path>, dest: &Dest<'_>) -> Cmd {
    let purpose = match dest {
        Dest::Local(_) => "publish the snapshot tree locally",
        Dest::Remote { .. } => "publish the snapshot tree on the replica",
    };
    let mut cmd = tools.cmd(Tool::Rsync, purpose).args([
        "--archive",
        "--delete",
        "--links",
        "--chmod=D755,F644",
        "--mkpath",
    ]);
    let src = match subtree {
        None => with_slash(root),
        Some(rel) => {
            cmd = cmd.arg("--relative");
            with_slash(&root.join(".").join(rel))
        }
    };
    match dest {
        Dest::Local(path) => cmd.arg(src).arg(with_slash(path)),
        Dest::Remote { user, host, path } => {
            let mut target = OsString::from(format!("{user}@{host}:"));
            target.push(with_slash(path));
            cmd.arg("-e")
                .arg(tools.program(Tool::Ssh))
                .arg(src)
                .arg(target)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines() {
        let tools = Tools::resolve(&[("ssh".to_owned(), "/usr/bin/ssh".to_owned())], |_| None);
        let cmd = publish_cmd(
            &tools,
            Path::new("/tmp/x"),
            Some(Path::new("snapshots/S1")),
            &Dest::Remote {
                user: "u",
                host: "h",
                path: Path::new("/w/repo"),
            },
        );
        assert_eq!(
            cmd.display(),
            "rsync --archive --delete --links --chmod=D755,F644 --mkpath --relative -e /usr/bin/ssh /tmp/x/./snapshots/S1/ u@h:/w/repo/"
        );
        let cmd = publish_cmd(
            &tools,
            Path::new("/tmp/x"),
            None,
            &Dest::Local(Path::new("/w/repo")),
        );
        assert_eq!(
            cmd.display(),
            "rsync --archive --delete --links --chmod=D755,F644 --mkpath /tmp/x/ /w/repo/"
        );
    }
}
