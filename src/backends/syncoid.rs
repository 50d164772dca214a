//! `syncoid` (from sanoid; `tools.syncoid`, default `/sbin/syncoid`):
//! replication of the mirror dataset to the replica.
//!
//! syncoid reads its options with Perl's Getopt::Long, so `--` ends them:
//! the dataset and the target always follow it, and the value of a flag
//! (`--sshkey FILE`) is taken as a value even when it starts with `-`, so
//! no config value is read as an option.

use crate::process::{Cmd, Tool, Tools};

/// `syncoid <ssh_args...> --no-sync-snap --recursive --force-delete --
/// <dataset> <user>@<host>:<replica_dataset>` (docs/stages.md, "replicate";
/// `replica_dataset` is `replication.replica_dataset`, by default the
/// source's dataset name). `ssh_args` are syncoid's ssh flags (`--sshkey
/// FILE`, `--sshoption OPTION`, ...: [`crate::backends::ssh::syncoid_args`]).
/// Every flag is one of syncoid 2.1.0's (`syncoid --help`).
pub fn replicate_cmd(
    tools: &Tools,
    ssh_args: &[String],
    dataset: &str,
    user: &str,
    host: &str,
    replica_dataset: &str,
) -> Cmd {
    tools
        .cmd(Tool::Syncoid, "replicate the mirror dataset to the replica")
        .args(ssh_args)
        .args(["--no-sync-snap", "--recursive", "--force-delete", "--"])
        .arg(dataset)
        .arg(format!("{user}@{host}:{replica_dataset}"))
}
