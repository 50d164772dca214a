//! `mirrorer`: the shard-host tool of dist-mirror, a fleet of Linux package
//! mirrors (Debian/Ubuntu, RPM distributions, SUSE, ALT Linux) on ZFS shard
//! hosts, and the generator of the GitLab child pipeline that runs it.
//!
//! The binary is a thin shell around [`cli::run`]. Modules:
//!
//! - [`catalog`]: APT, RPM and ALT apt-rpm repository discovery and
//!   `repo_catalog.json` (docs/metadata.md); a public library.
//! - [`config`]: loads and validates `dist-mirror.yaml` (docs/config.md).
//! - [`pipeline`]: run modes, the job plan and the rendered child pipeline
//!   (docs/pipelines.md).
//! - [`logging`]: plain-text and JSON log events, GitLab sections, redaction.
//! - [`state`]: the state directory, its lock guard, atomic file writes.
//! - [`process`]: the one wrapper every external program goes through.
//! - [`signals`]: SIGINT/SIGTERM as a flag checked by long-running work.
//! - [`stages`]: the shared stage runner, plans, and the stage executors.
//! - [`backends`]: command builders for zfs, syncoid, rsync.
//! - [`inventory`]: `inventory.json` of the published tree.
//! - [`json`]: the canonical JSON rendering of every document written.
//! - [`error`]: error kinds and the exit-code table.
//! - [`domain`]: snapshot names, syncer selection, the dotenv variable
//!   that the pipeline and the stages share.

pub mod backends;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod domain;
pub mod error;
#[cfg(feature = "fleet")]
pub mod fleet;
pub mod inventory;
pub mod json;
pub mod logging;
pub mod pipeline;
pub mod process;
pub mod redact;
pub mod retention;
pub mod signals;
pub mod stages;
pub mod state;
pub mod status;
#[cfg(test)]
mod testing;
mod text;
pub mod verify;
