//! Command builders for the external programs the stages drive. Each
//! function returns a [`crate::process::Cmd`] (mutating commands, for a
//! stage's plan) or runs a read-only query through [`crate::process`].
//!
//! - [`antivirus`]: the KESL and ClamAV engines of `av-scan`.
//! - [`zfs`]: snapshots, snapshot listing, `zfs diff` parsing.
//! - [`rsync`]: publication of a tree, local or over ssh.
//! - [`ssh`]: `replication.ssh_options` for syncoid and rsync.
//! - [`syncoid`]: replication of the dataset.
//! - [`container`]: the syncer containers, through the `docker` CLI.

pub mod antivirus;
pub mod container;
pub mod rsync;
pub mod ssh;
pub mod syncoid;
pub mod zfs;
