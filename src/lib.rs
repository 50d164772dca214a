//! `mirrorer`: the shard-host tool of dist-mirror, a fleet of Linux package
//! mirrors (Debian/Ubuntu, RPM distributions, SUSE, ALT Linux) on ZFS shard
//! hosts, and the generator of the GitLab child pipeline that runs it.
//!
//! The binary is a thin shell around [`cli::run`]. Modules:
//!
//! - [`catalog`]: APT, RPM and ALT apt-rpm repository discovery and
//!   `repo_catalog.json` (spec/metadata.md); a public library.
//! - [`config`]: loads and validates `dist-mirror.yaml` (spec/config.md).
//! - [`pipeline`]: run modes, the job plan and the rendered child pipeline
//!   (spec/pipeline.md).
//! - [`logging`]: plain-text and JSON log events, GitLab sections, redaction.
//! - [`state`]: atomic file writes.
//! - [`json`]: the canonical JSON rendering of every document written.
//! - [`error`]: error kinds and the exit-code table.

pub mod catalog;
pub mod cli;
pub mod config;
pub mod error;
pub mod json;
pub mod logging;
pub mod pipeline;
pub mod state;
