//! The one integration-test harness (docs/architecture.md, practices 8 and
//! 14): the real binary run through [`Run`] with a clean environment
//! ([`clear_environment`]), in a temp directory with fakes of the programs
//! that cannot run here.
//!
//! - [`env`]: [`Env`] (a stage environment: a workdir, a plain directory
//!   standing in for the ZFS dataset, a config, the fake programs of
//!   `tests/fakes/`) and [`Work`] (a bare temp directory, for `config` and
//!   `pipeline`), and [`binary`], the one way to start the binary;
//! - [`run`]: the builder [`Run`]
//!   (`.config(..).args(..).code(1).stderr_has(..).run()`) and [`Expect`],
//!   the same checks for the output of a run the test spawned itself;
//! - [`process`]: kill, wait with a deadline, poll, live children, mount
//!   namespaces, [`output_ok`] for a helper program that must succeed;
//! - [`files`]: trees the binary wrote ([`tree`], [`temp_files`],
//!   [`assert_symlink`]);
//! - [`gitlab`]: GitLab's CI schema and [`check_pipeline`];
//! - [`http`]: HTTP servers the binary talks to ([`answer_any`]);
//! - [`text`]: stdout/stderr as text, [`regex_escape`], [`assert_snapshot`],
//!   and the text assertions [`assert_has`], [`assert_has_all`],
//!   [`assert_has_lines`], [`assert_starts_with`] (each failure shows the
//!   text).
//!
//! Layout under [`Env::root`]:
//!
//! ```text
//! work/          mirror.workdir (state/, repo/, metadata/)
//! mirror/        mirror.zfs_mirror_dir, the "dataset" tank/mirror
//! replica/       where the ssh stand-in puts the replica's files
//!                (replica/<root>/work/repo/...)
//! tmp/           TMPDIR of the binary (scratch trees)
//! fake.log       argv of every fake call, one line each
//! config.yaml    written by Env::write_config or Run::config
//! ```
//!
//! Use: `let env = Env::new();
//! env.run().config(&env.default_config()).arg("snapshot").success().run();`

#![allow(dead_code)]

pub mod env;
pub mod files;
pub mod gitlab;
pub mod http;
pub mod process;
pub mod run;
pub mod text;

pub use env::*;
pub use files::*;
pub use gitlab::*;
pub use http::*;
pub use process::*;
pub use run::{Expect, Ran, Run};
pub use text::*;
