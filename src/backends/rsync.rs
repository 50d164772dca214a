//! `rsync` (`tools.rsync`): publication of the snapshot trees to a local or
//! remote `<workdir>/repo` (docs/stages.md, "publish-snapshot").
//!
//! # Commands
//!
//! [`publish_cmd`]: `rsync --archive --delete --links --chmod=D755,F644
//! --mkpath --relative --no-implied-dirs [-e SHELL] --
//! <root>/./snapshots/<snap>/... <dest>/`. Each `snapshots/<snap>/` named
//! (the `/./` marks where the path kept on the destination starts) becomes
//! an exact copy at `<dest>/snapshots/<snap>/`; the other snapshots are left
//! alone. `--no-implied-dirs` keeps `<dest>/snapshots` (and `<dest>`) out
//! of the transfer: an existing one keeps its mode, owner and times, as in
//! mirrorer 0.1.0, which synced into `snapshots/<snap>/` only; a missing
//! one is created with the receiver's defaults (`--mkpath` creates `<dest>`
//! like `mkdir -p`, e.g. on a fresh replica; rsync >= 3.2.3 on both ends).
//!
//! [`prune_cmd`] (`publish-snapshot --all`): `rsync --dirs --delete
//! --existing --ignore-existing [-e SHELL] -- <root>/snapshots/
//! <dest>/snapshots/`: deletes every entry of `<dest>/snapshots` that is
//! not in `<root>/snapshots` and nothing else: `--dirs` without
//! `--recursive` only looks at that one directory, `--existing
//! --ignore-existing` create and update nothing, and without `--perms
//! --owner --group --times` the directory's own attributes are not touched.
//!
//! Every path follows `--`, so none is read as an option.
//!
//! # Remote shell
//!
//! A remote destination is `<user>@<host>:<path>`, reached through the
//! remote shell of [`Dest::Remote`]: `-e SHELL` ([`remote_shell`]: the
//! program of `tools.ssh` and `replication.ssh_options`, quoted for rsync's
//! own splitting, see [`crate::backends::ssh`]), or no `-e` at all when
//! `RSYNC_RSH` is set in mirrorer's environment and neither `tools.ssh` nor
//! `ssh_options` is configured: rsync then uses `RSYNC_RSH` itself, as
//! mirrorer 0.1.0 let it (sites chose the ssh key that way).

use std::ffi::OsString;
use std::path::Path;

use crate::process::{Cmd, Tool, ToolSource, Tools};

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
        /// The `-e` value; `None`: rsync's own choice (`RSYNC_RSH`).
        shell: Option<&'a str>,
    },
}

/// The `-e` value for remote publication (module docs): `None` when
/// `rsync_rsh` (the value of `RSYNC_RSH`) is set and not empty and neither
/// `tools.ssh` (config or `MIRRORER_TOOL_SSH`) nor `ssh_options` is given.
pub fn remote_shell(
    tools: &Tools,
    ssh_options: &[String],
    rsync_rsh: Option<&str>,
) -> Option<String> {
    let rsh_set = rsync_rsh.is_some_and(|v| !v.trim().is_empty());
    if rsh_set && ssh_options.is_empty() && tools.source(Tool::Ssh) == ToolSource::Default {
        None
    } else {
        Some(crate::backends::ssh::rsync_remote_shell(
            tools.program(Tool::Ssh),
            ssh_options,
        ))
    }
}

fn with_slash(path: &Path) -> OsString {
    let mut s = path.as_os_str().to_os_string();
    if !s.to_string_lossy().ends_with('/') {
        s.push("/");
    }
    s
}

fn purpose(dest: &Dest<'_>, local: &'static str, remote: &'static str) -> &'static str {
    match dest {
        Dest::Local(_) => local,
        Dest::Remote { .. } => remote,
    }
}

/// `[-e SHELL] -- <sources...> <dest>/<sub>/`.
fn finish(mut cmd: Cmd, sources: Vec<OsString>, dest: &Dest<'_>, sub: Option<&str>) -> Cmd {
    let target = match dest {
        Dest::Local(path) => {
            let path = sub.map_or_else(|| path.to_path_buf(), |s| path.join(s));
            with_slash(&path)
        }
        Dest::Remote {
            user,
            host,
            path,
            shell,
        } => {
            if let Some(shell) = shell {
                cmd = cmd.arg("-e").arg(shell);
            }
            let path = sub.map_or_else(|| path.to_path_buf(), |s| path.join(s));
            let mut target = OsString::from(format!("{user}@{host}:"));
            target.push(with_slash(&path));
            target
        }
    };
    cmd.arg("--").args(sources).arg(target)
}

/// `rsync --archive --delete --links --chmod=D755,F644 --mkpath --relative
/// --no-implied-dirs [-e SHELL] -- <root>/./snapshots/<snap>/...
/// <dest>/` (module docs): each of `snapshots` becomes an exact copy of
/// `root/snapshots/<snap>` at `dest/snapshots/<snap>`. Symlinks are copied
/// as symlinks.
pub fn publish_cmd(tools: &Tools, root: &Path, snapshots: &[String], dest: &Dest<'_>) -> Cmd {
    let cmd = tools
        .cmd(
            Tool::Rsync,
            purpose(
                dest,
                "publish the snapshot tree locally",
                "publish the snapshot tree on the replica",
            ),
        )
        .args([
            "--archive",
            "--delete",
            "--links",
            "--chmod=D755,F644",
            "--mkpath",
            "--relative",
            "--no-implied-dirs",
        ]);
    let sources = snapshots
        .iter()
        .map(|s| with_slash(&root.join(".").join("snapshots").join(s)))
        .collect();
    finish(cmd, sources, dest, None)
}

/// `rsync --dirs --delete --existing --ignore-existing [-e SHELL] --
/// <root>/snapshots/ <dest>/snapshots/` (module docs): removes the
/// published snapshots that `root/snapshots` does not hold.
pub fn prune_cmd(tools: &Tools, root: &Path, dest: &Dest<'_>) -> Cmd {
    let cmd = tools
        .cmd(
            Tool::Rsync,
            purpose(
                dest,
                "remove snapshots no longer in ZFS from the local tree",
                "remove snapshots no longer in ZFS from the replica",
            ),
        )
        .args(["--dirs", "--delete", "--existing", "--ignore-existing"]);
    finish(
        cmd,
        vec![with_slash(&root.join("snapshots"))],
        dest,
        Some("snapshots"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines() {
        let tools = Tools::resolve(&[("ssh".to_owned(), "/usr/bin/ssh".to_owned())], |_| None);
        let shell = remote_shell(&tools, &["-i".to_owned(), "/k/a b".to_owned()], None);
        let remote = Dest::Remote {
            user: "u",
            host: "h",
            path: Path::new("/w/repo"),
            shell: shell.as_deref(),
        };
        let cmd = publish_cmd(
            &tools,
            Path::new("/tmp/x"),
            &["S1".to_owned(), "S2".to_owned()],
            &remote,
        );
        assert_eq!(
            cmd.display(),
            "rsync --archive --delete --links --chmod=D755,F644 --mkpath --relative --no-implied-dirs -e '/usr/bin/ssh -i '\\''/k/a b'\\''' -- /tmp/x/./snapshots/S1/ /tmp/x/./snapshots/S2/ u@h:/w/repo/"
        );
        let local = Dest::Local(Path::new("/w/repo"));
        let cmd = publish_cmd(&tools, Path::new("/tmp/x"), &["S1".to_owned()], &local);
        assert_eq!(
            cmd.display(),
            "rsync --archive --delete --links --chmod=D755,F644 --mkpath --relative --no-implied-dirs -- /tmp/x/./snapshots/S1/ /w/repo/"
        );
        assert_eq!(
            prune_cmd(&tools, Path::new("/tmp/x"), &local).display(),
            "rsync --dirs --delete --existing --ignore-existing -- /tmp/x/snapshots/ /w/repo/snapshots/"
        );
    }

    #[test]
    fn rsync_rsh_is_honoured_unless_ssh_is_configured() {
        let default = Tools::resolve(&[], |_| None);
        assert_eq!(remote_shell(&default, &[], Some("ssh -i k")), None);
        assert_eq!(
            remote_shell(&default, &[], Some(" ")).as_deref(),
            Some("ssh")
        );
        assert_eq!(remote_shell(&default, &[], None).as_deref(), Some("ssh"));
        assert_eq!(
            remote_shell(&default, &["-p".to_owned(), "22".to_owned()], Some("x")).as_deref(),
            Some("ssh -p 22")
        );
        let configured = Tools::resolve(&[("ssh".to_owned(), "/opt/ssh".to_owned())], |_| None);
        assert_eq!(
            remote_shell(&configured, &[], Some("ssh -i k")).as_deref(),
            Some("/opt/ssh")
        );
    }
}
