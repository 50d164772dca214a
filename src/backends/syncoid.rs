//! `syncoid` (from sanoid; `tools.syncoid`, default `/sbin/syncoid`):
//! replication of the mirror dataset to the replica.

use std::path::Path;

use crate::process::{Cmd, Tool, Tools};

/// `syncoid --sshkey <ssh_key> --no-sync-snap --recursive --force-delete
/// <dataset> <ssh_user>@<replica_host>:<replica_dataset>` (docs/stages.md,
/// "replicate"; `replica_dataset` is `replication.replica_dataset`, by
/// default the source's dataset name). Every flag is one of syncoid 2.1.0's
/// (`syncoid --help`).
pub fn replicate_cmd(
    tools: &Tools,
    ssh_key: &Path,
    dataset: &str,
    user: &str,
    host: &str,
    replica_dataset: &str,
) -> Cmd {
    tools
        .cmd(Tool::Syncoid, "replicate the mirror dataset to the replica")
        .arg("--sshkey")
        .arg(ssh_key)
        .args(["--no-sync-snap", "--recursive", "--force-delete"])
        .arg(dataset)
        .arg(format!("{user}@{host}:{replica_dataset}"))
}
