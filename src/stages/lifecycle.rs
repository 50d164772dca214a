//! What `promote`, `pin` and `prune` share (docs/stages.md, "promote",
//! "prune"): where a snapshot is published, whether its verify report is
//! ok, the promoted name, and the commands that reach the replica.
//!
//! # The replica
//!
//! The replica is reached like `publish-snapshot` reaches it: `<tools.ssh>
//! <replication.ssh_options...> -- <ssh_user>@<replica_host> <command>`,
//! where `<command>` is one line of POSIX shell built here from fixed words
//! and single-quoted values ([`sh_quote`]), so no config value or snapshot
//! name becomes shell code or an option (every path follows `--`).

use std::path::{Path, PathBuf};

use super::StageContext;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::process::{Cmd, Tool};
use crate::state::files::read_regular;

/// The name of the stable link in `<workdir>/repo`.
pub const CURRENT_LINK: &str = "current";

/// The temporary name the new link gets before it is renamed over
/// [`CURRENT_LINK`] (in `<workdir>/repo`, so the rename stays on one file
/// system).
pub const CURRENT_TMP: &str = ".current.tmp";

/// The verify report of a snapshot: `<workdir>/metadata/snapshots/<snap>/verify.json`.
pub const VERIFY_FILE: &str = "verify.json";

/// The schema of the verify report (written by `verify`).
pub const VERIFY_SCHEMA: &str = "dist-mirror.verify.v1";

/// The promoted snapshot's name: `<workdir>/state/promoted.txt`.
pub const PROMOTED_FILE: &str = "promoted.txt";

/// The largest verify report read, in bytes.
pub const MAX_VERIFY_BYTES: u64 = 16 * 1024 * 1024;

/// `Error::Failed` with `message`.
pub fn failed(message: String) -> Error {
    Error::Failed(anyhow::anyhow!(message))
}

/// `<workdir>/repo/snapshots/<snap>`.
pub fn published_dir(config: &Config, snap: &str) -> PathBuf {
    config.mirror.repo_dir().join("snapshots").join(snap)
}

/// `<workdir>/metadata/snapshots/<snap>`.
pub fn metadata_dir(config: &Config, snap: &str) -> PathBuf {
    config.mirror.metadata_dir().join("snapshots").join(snap)
}

/// `<workdir>/state/promoted.txt`.
pub fn promoted_path(config: &Config) -> PathBuf {
    config.mirror.state_dir().join(PROMOTED_FILE)
}

/// Whether `snap` is published locally: `<workdir>/repo/snapshots/<snap>`
/// is a real directory (not a symlink).
pub fn is_published(config: &Config, snap: &str) -> bool {
    std::fs::symlink_metadata(published_dir(config, snap)).is_ok_and(|m| m.is_dir())
}

/// Why a snapshot's verify report does not allow promotion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The report exists, parses and says `"status": "ok"`.
    Ok,
    /// Anything else, as a sentence naming the file.
    Not(String),
}

/// Reads `<workdir>/metadata/snapshots/<snap>/verify.json` (a regular file,
/// not followed through a symlink, at most [`MAX_VERIFY_BYTES`]) and says
/// whether it is an ok report: a JSON object whose `status` is `"ok"` and
/// whose `schema`, if present, is [`VERIFY_SCHEMA`].
pub fn verify_verdict(config: &Config, snap: &str) -> Verdict {
    let path = metadata_dir(config, snap).join(VERIFY_FILE);
    let bytes = match read_regular(&path, MAX_VERIFY_BYTES) {
        Ok(Some(b)) => b,
        Ok(None) => {
            return Verdict::Not(format!(
                "its verify report {} does not exist (run `mirrorer verify`)",
                path.display()
            ));
        }
        Err(e) => return Verdict::Not(format!("its verify report cannot be read: {e}")),
    };
    let value: serde_json::Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => {
            return Verdict::Not(format!(
                "its verify report {} is not valid JSON: {e}",
                path.display()
            ));
        }
    };
    if let Some(schema) = value.get("schema")
        && schema.as_str() != Some(VERIFY_SCHEMA)
    {
        return Verdict::Not(format!(
            "its verify report {} has schema {schema}, expected {VERIFY_SCHEMA:?}",
            path.display()
        ));
    }
    match value.get("status").and_then(|s| s.as_str()) {
        Some("ok") => Verdict::Ok,
        Some(other) => Verdict::Not(format!(
            "its verify report {} has status {other:?}, not \"ok\"",
            path.display()
        )),
        None => Verdict::Not(format!(
            "its verify report {} has no string \"status\"",
            path.display()
        )),
    }
}

/// The promoted snapshot recorded in `state/promoted.txt` (first line,
/// trimmed), if any and valid.
///
/// # Errors
/// The file is a symlink, not a regular file or too large (exit 1).
pub fn promoted(config: &Config) -> Result<Option<String>> {
    let path = promoted_path(config);
    let bytes = read_regular(&path, crate::state::files::MAX_CURRENT_SNAPSHOT_BYTES)
        .map_err(Error::from)?;
    Ok(bytes.and_then(|b| {
        String::from_utf8_lossy(&b)
            .lines()
            .next()
            .map(|l| l.trim().to_owned())
            .filter(|l| crate::domain::validate_snapshot_name(l).is_ok())
    }))
}

/// One word for a POSIX shell: `'...'` with each `'` written as `'\''`.
pub fn sh_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// Where the replica is, when remote is in effect.
#[derive(Debug, Clone)]
pub struct Replica {
    /// `replication.ssh_user`.
    pub user: String,
    /// `replication.replica_host`.
    pub host: String,
}

/// The replica when remote is in effect (not skip_remote, `replica_host`
/// set); `None` otherwise.
///
/// # Errors
/// `ssh_user` missing while remote is in effect (exit 1).
pub fn replica(ctx: &StageContext) -> Result<Option<Replica>> {
    replica_to(ctx, "reach")
}

/// [`replica`] for a stage that needs `ssh_user` to `to` the replica host
/// (e.g. "publish to"), as its error says.
///
/// # Errors
/// `ssh_user` missing while remote is in effect (exit 1).
pub fn replica_to(ctx: &StageContext, to: &str) -> Result<Option<Replica>> {
    if !ctx.remote_in_effect() {
        return Ok(None);
    }
    let config = &ctx.config;
    let host = config.replication.replica_host.clone().unwrap_or_default();
    let user = config.replication.ssh_user.clone().ok_or_else(|| {
        failed(format!(
            "replication.ssh_user is required to {to} replication.replica_host {host} (config {}); or use --skip-remote",
            config.path.display()
        ))
    })?;
    Ok(Some(Replica { user, host }))
}

/// `<tools.ssh> <ssh_options...> -- <user>@<host> <command>` (module docs).
pub fn ssh_cmd(ctx: &StageContext, replica: &Replica, purpose: &str, command: String) -> Cmd {
    ctx.tools
        .cmd(Tool::Ssh, purpose)
        .args(&ctx.config.replication.ssh_options)
        .arg("--")
        .arg(format!("{}@{}", replica.user, replica.host))
        .arg(command)
}

/// The shell line that switches `<repo>/current` to `snapshots/<snap>` on
/// the replica: it fails unless `snapshots/<snap>` is a directory there,
/// then `ln -sfn` to [`CURRENT_TMP`] and `mv -fT` (one rename(2)) over
/// [`CURRENT_LINK`].
pub fn remote_switch_line(repo: &Path, snap: &str) -> String {
    let target = format!("snapshots/{snap}");
    format!(
        "cd -- {repo} && test -d {t} && ln -sfn -- {t} {tmp} && mv -fT -- {tmp} {cur}",
        repo = sh_quote(&repo.to_string_lossy()),
        t = sh_quote(&target),
        tmp = sh_quote(CURRENT_TMP),
        cur = sh_quote(CURRENT_LINK),
    )
}

/// Points `<repo>/current` at `snapshots/<snap>` atomically: a new symlink
/// [`CURRENT_TMP`] (a stale one is removed first), renamed over
/// [`CURRENT_LINK`]. A reader sees the old target or the new one, never
/// no `current` (rename(2)).
///
/// # Errors
/// The symlink or the rename failing (exit 1); `<repo>/current` being a
/// real directory (rename cannot replace it; exit 1).
pub fn switch_current(repo: &Path, snap: &str) -> Result<()> {
    let current = repo.join(CURRENT_LINK);
    if let Ok(m) = std::fs::symlink_metadata(&current)
        && !m.file_type().is_symlink()
    {
        return Err(failed(format!(
            "{} exists and is not a symlink; refusing to replace it",
            current.display()
        )));
    }
    let tmp = repo.join(CURRENT_TMP);
    let io = |action: &str, path: &Path, e: std::io::Error| {
        failed(format!("could not {action} {}: {e}", path.display()))
    };
    match std::fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("remove the stale link", &tmp, e)),
    }
    std::os::unix::fs::symlink(Path::new("snapshots").join(snap), &tmp)
        .map_err(|e| io("create the symlink", &tmp, e))?;
    std::fs::rename(&tmp, &current).map_err(|e| io("rename the new link over", &current, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(sh_quote("a b"), "'a b'");
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
        assert_eq!(
            remote_switch_line(Path::new("/w/re po"), "20260101-000000"),
            "cd -- '/w/re po' && test -d 'snapshots/20260101-000000' && ln -sfn -- 'snapshots/20260101-000000' '.current.tmp' && mv -fT -- '.current.tmp' 'current'"
        );
    }

    #[test]
    fn switch_replaces_the_link() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("snapshots/a")).unwrap();
        std::fs::create_dir_all(dir.path().join("snapshots/b")).unwrap();
        switch_current(dir.path(), "a").unwrap();
        switch_current(dir.path(), "b").unwrap();
        assert_eq!(
            std::fs::read_link(dir.path().join("current")).unwrap(),
            Path::new("snapshots/b")
        );
        std::fs::remove_file(dir.path().join("current")).unwrap();
        std::fs::create_dir(dir.path().join("current")).unwrap();
        assert!(switch_current(dir.path(), "a").is_err());
    }
}
