//! What `config check` prints: the effective configuration, secrets
//! redacted (docs/cli.md, "`config check`").

use crate::config::{self, Config};

/// The text `config check` prints: the effective configuration, with every
/// environment value of a syncer, the secrets of its `command_args` and the
/// password of any URL shown as `***` ([`crate::redact`]).
pub fn config_summary(config: &Config) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let m = &config.mirror;
    let r = &config.replication;
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "(not set)".to_owned());
    let _ = writeln!(s, "config: {} (valid)", config.path.display());
    let _ = writeln!(s, "log_level: {}", config.log_level);
    let _ = writeln!(s, "paths:");
    let _ = writeln!(s, "  workdir: {}", m.workdir.display());
    let _ = writeln!(s, "    state: {}", m.state_dir().display());
    let _ = writeln!(s, "    repo: {}", m.repo_dir().display());
    let _ = writeln!(s, "    metadata: {}", m.metadata_dir().display());
    let _ = writeln!(s, "  syncer_dir: {}", m.syncer_dir.display());
    let _ = writeln!(s, "  zfs_mirror_dataset: {}", m.zfs_mirror_dataset);
    let _ = writeln!(s, "  zfs_mirror_dir: {}", m.zfs_mirror_dir.display());
    let _ = writeln!(s, "replication:");
    let _ = writeln!(s, "  replica_host: {}", opt(&r.replica_host));
    let _ = writeln!(s, "  ssh_user: {}", opt(&r.ssh_user));
    let _ = writeln!(s, "  ssh_key: {}", r.ssh_key.display());
    let _ = writeln!(s, "  skip_remote: {}", r.skip_remote);
    let _ = writeln!(s, "  replica_dataset: {}", r.replica_dataset);
    let _ = writeln!(
        s,
        "  ssh_options: {:?}",
        crate::redact::args(&r.ssh_options)
    );
    let _ = writeln!(s, "antivirus:");
    let _ = writeln!(s, "  fail_on_threats: {}", config.antivirus.fail_on_threats);
    let _ = writeln!(s, "  batch_size: {}", config.antivirus.batch_size);
    let _ = writeln!(s, "  engine: {}", config.antivirus.engine.name());
    if config.antivirus.engine == config::AvEngine::Clamav {
        let _ = writeln!(
            s,
            "  clamav_command: {}",
            config.antivirus.clamav_command.name()
        );
        let args = crate::redact::args(&config.antivirus.clamav_args);
        let _ = writeln!(s, "  clamav_args: {args:?}");
    }
    let _ = writeln!(s, "  kesl_max_workers: {}", m.kesl_max_workers);
    let _ = writeln!(
        s,
        "repo.paths:{}",
        if config.repo_paths.is_empty() {
            " (none)"
        } else {
            ""
        }
    );
    for p in &config.repo_paths {
        let _ = writeln!(
            s,
            "  {}/{} -> {}",
            p.source_base, p.source_name, p.public_prefix
        );
    }
    let _ = writeln!(s, "syncers: {}", config.syncers.len());
    for sy in &config.syncers {
        let kind = sy.kind.map(|k| k.name()).unwrap_or("container");
        let _ = writeln!(s, "  - name: {}", sy.name);
        let _ = writeln!(s, "    type: {kind}");
        let _ = writeln!(s, "    prefix: {}", sy.prefix);
        let _ = writeln!(s, "    container: {}", sy.name);
        let _ = writeln!(s, "    image: {}", sy.image);
        let _ = writeln!(s, "    user: {}", sy.user);
        let _ = writeln!(s, "    volumes:");
        for v in &sy.volumes {
            let _ = writeln!(
                s,
                "      - {} -> {} ({})",
                v.host.display(),
                v.bind,
                v.mode()
            );
        }
        if !sy.environment.is_empty() {
            let _ = writeln!(s, "    environment:");
            for (k, _) in &sy.environment {
                let _ = writeln!(s, "      {k}: ***");
            }
        }
        if !sy.command_args.is_empty() {
            let shown = crate::redact::args(&sy.command_args);
            let _ = writeln!(s, "    command_args: {shown:?}");
        }
        let _ = writeln!(s, "    log_file: {}", sy.log_file.display());
    }
    let p = &config.pipeline;
    let _ = writeln!(s, "pipeline:");
    let _ = writeln!(s, "  runner_tags: {:?}", p.runner_tags);
    let _ = writeln!(s, "  command: {:?}", p.command);
    let _ = writeln!(s, "  config_path: {}", opt(&p.config_path));
    let _ = writeln!(s, "  resource_group: {}", opt(&p.resource_group));
    match &p.environment {
        None => {
            let _ = writeln!(s, "  environment: (not set)");
        }
        Some(e) => {
            let _ = writeln!(s, "  environment: {} (url: {})", e.name, opt(&e.url));
        }
    }
    write_map(
        &mut s,
        "  timeouts",
        Some("(none: GitLab's job timeout)"),
        &p.timeouts,
    );
    let retry = |r: &config::Retry| format!("max {} when {:?}", r.max, r.when);
    let _ = writeln!(
        s,
        "  retry: {} (snapshot: none unless set)",
        retry(&p.default_retry)
    );
    for (stage, r) in &p.retries {
        let _ = writeln!(s, "  retry.{stage}: {}", retry(r));
    }
    lifecycle_sections(&mut s, config);
    write_map(
        &mut s,
        "tools",
        None,
        config.tools.iter().map(|(k, v)| (k, v)),
    );
    crate::redact::text(&s).into_owned()
}

/// The `verify`, `retention` and `metrics` sections (effective values).
fn lifecycle_sections(s: &mut String, config: &Config) {
    use std::fmt::Write as _;
    let v = &config.verify;
    let _ = writeln!(s, "verify:");
    let _ = writeln!(s, "  max_shrink_percent: {}", v.max_shrink_percent);
    write_map(
        s,
        "  keyrings",
        Some("(none: signatures are not checked)"),
        v.keyrings.iter().map(|(k, v)| (k, v)),
    );
    match &config.retention {
        None => {
            let _ = writeln!(s, "retention: (not set: prune keeps every snapshot)");
        }
        Some(r) => {
            let p = &r.policy;
            let _ = writeln!(s, "retention:");
            let _ = writeln!(s, "  keep_last: {}", p.keep_last);
            let _ = writeln!(s, "  keep_daily: {}", p.keep_daily);
            let _ = writeln!(s, "  keep_weekly: {}", p.keep_weekly);
            let _ = writeln!(s, "  keep_monthly: {}", p.keep_monthly);
            let _ = writeln!(s, "  keep: {:?}", r.keep);
            let _ = writeln!(s, "  max_prune_per_run: {}", r.max_prune_per_run);
            let _ = writeln!(s, "  replica: {}", r.replica);
        }
    }
    let dir = config.metrics.textfile_dir.as_ref();
    let _ = writeln!(s, "metrics:");
    let _ = writeln!(
        s,
        "  textfile_dir: {}",
        dir.map_or_else(|| "(not set)".to_owned(), |d| d.display().to_string())
    );
}

/// `LABEL:` and a `KEY: VALUE` line per row, indented two more than the
/// label; without rows, `LABEL: EMPTY` (nothing when `empty` is `None`).
fn write_map<K, V>(
    s: &mut String,
    label: &str,
    empty: Option<&str>,
    rows: impl IntoIterator<Item = (K, V)>,
) where
    K: std::fmt::Display,
    V: std::fmt::Display,
{
    use std::fmt::Write as _;
    let indent = label.len() - label.trim_start().len() + 2;
    let mut rows = rows.into_iter().peekable();
    match (rows.peek().is_some(), empty) {
        (false, None) => {}
        (false, Some(note)) => {
            let _ = writeln!(s, "{label}: {note}");
        }
        (true, _) => {
            let _ = writeln!(s, "{label}:");
            for (k, v) in rows {
                let _ = writeln!(s, "{:indent$}{k}: {v}", "");
            }
        }
    }
}
