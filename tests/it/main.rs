//! The one integration-test crate (docs/architecture.md, practice 14): every
//! integration test is a module of this binary (`it`), as just, ripgrep and
//! nextest do, so the binary links once and the helpers exist once
//! (`common/`). `cargo test --test it` runs them all; `cargo test --test it
//! <module>::` runs one module (e.g. `cargo test --test it stages_lock::`).
//!
//! To add a test file: create `tests/it/<name>.rs`, add `mod <name>;` below
//! (alphabetical), and start it with `use crate::common::{Env, Run, ...};`
//! (a file written for the old layout, `tests/<name>.rs` with `mod common;`
//! and `use common::...`, moves here by deleting its `mod common;` line and
//! writing `crate::common::` for `common::`; a file that declared other
//! modules, like `mod zfs_pool;`, finds them as `crate::zfs_pool`). Run the
//! binary through [`common::Run`] (`env.run().config(..).args(..).code(1)
//! .stderr_has(..).run()`, or `Run::bare()`, `work.run()`), a spawned one
//! through `Run::spawn` and check its output with [`common::Expect`]; never
//! through `std::process::Command` or `assert_cmd` directly, so every run
//! gets the one clean environment. Insta snapshots stay in
//! `tests/snapshots/` ([`common::assert_snapshot`]).

mod common;
#[path = "../zfs_pool/mod.rs"]
mod zfs_pool;

mod av_scan_clamav;
mod av_scan_config;
mod av_scan_kesl;
mod av_scan_kill;
mod av_scan_stream;
mod catalog;
mod catalog_hostile;
mod ci_include;
mod cli_config;
mod config_hostile;
mod config_props;
mod exclude_syncers;
mod fleet_collect;
mod health_check;
mod health_metrics;
mod health_status;
mod hostile;
mod killed_runs;
mod lifecycle_pin;
mod lifecycle_pipeline;
mod lifecycle_promote;
mod lifecycle_prune;
mod lifecycle_zfs_real;
mod log_escaping;
mod parser_props;
mod pipeline;
mod regressions;
mod secrets;
mod stages_fakes;
mod stages_inventory;
mod stages_lock;
mod stages_messages;
mod stages_publish;
mod stages_publish_catalog;
mod stages_replicate;
mod stages_sequence;
mod stages_snapshot;
mod sync_fake;
mod sync_podman;
#[cfg(feature = "gitlab")]
mod trigger;
mod verify;
mod verify_gate;
mod verify_stage;
mod workdir_hostile;
mod zfs_real;
