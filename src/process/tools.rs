//! The external programs (`Tool`) and where each one's program comes from
//! (`Tools`): `tools:` in the config, `MIRRORER_TOOL_<NAME>`, or the
//! production default (docs/architecture.md, practice 6; docs/config.md,
//! "tools").

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::Cmd;

/// An external program this tool runs. [`Tool::ALL`] is the one list of
/// them: the config checks the names under `tools:` against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tool {
    /// The container runtime CLI (`docker`; podman is a drop-in).
    Docker,
    /// ZFS administration (`/sbin/zfs`).
    Zfs,
    /// Replication of ZFS datasets (`/sbin/syncoid`, from sanoid).
    Syncoid,
    /// File-tree synchronisation (`rsync`).
    Rsync,
    /// The remote shell rsync uses for remote publication (`ssh`).
    Ssh,
    /// Kaspersky Endpoint Security for Linux control (`kesl-control`).
    KeslControl,
    /// ClamAV daemon client (`clamdscan`).
    Clamdscan,
    /// ClamAV standalone scanner (`clamscan`).
    Clamscan,
    /// OpenPGP signature check of APT Release files (`gpgv`), by `verify`.
    Gpgv,
}

impl Tool {
    /// Every tool, in a fixed order.
    pub const ALL: [Tool; 9] = [
        Tool::Docker,
        Tool::Zfs,
        Tool::Syncoid,
        Tool::Rsync,
        Tool::Ssh,
        Tool::KeslControl,
        Tool::Clamdscan,
        Tool::Clamscan,
        Tool::Gpgv,
    ];

    /// The key under `tools:` in the config (`kesl_control`).
    pub fn name(self) -> &'static str {
        match self {
            Tool::Docker => "docker",
            Tool::Zfs => "zfs",
            Tool::Syncoid => "syncoid",
            Tool::Rsync => "rsync",
            Tool::Ssh => "ssh",
            Tool::KeslControl => "kesl_control",
            Tool::Clamdscan => "clamdscan",
            Tool::Clamscan => "clamscan",
            Tool::Gpgv => "gpgv",
        }
    }

    /// The environment variable that overrides the path:
    /// `MIRRORER_TOOL_<NAME>` (`MIRRORER_TOOL_KESL_CONTROL`).
    pub fn env_var(self) -> String {
        format!("MIRRORER_TOOL_{}", self.name().to_ascii_uppercase())
    }

    /// The production default: an absolute path or a name looked up on PATH.
    pub fn default_program(self) -> &'static str {
        match self {
            Tool::Docker => "docker",
            Tool::Zfs => "/sbin/zfs",
            Tool::Syncoid => "/sbin/syncoid",
            Tool::Rsync => "rsync",
            Tool::Ssh => "ssh",
            Tool::KeslControl => "kesl-control",
            Tool::Clamdscan => "clamdscan",
            Tool::Clamscan => "clamscan",
            Tool::Gpgv => "gpgv",
        }
    }

    /// A name under `tools:` as the config keys it: trimmed, lower case,
    /// `-` read as `_` (`Kesl-Control` -> `kesl_control`).
    pub fn config_key(name: &str) -> String {
        name.trim().replace('-', "_").to_ascii_lowercase()
    }

    /// The tool whose config key is `name` (`-` and `_` alike, any case;
    /// [`Tool::config_key`]).
    pub fn from_name(name: &str) -> Option<Tool> {
        let name = Tool::config_key(name);
        Tool::ALL.into_iter().find(|t| t.name() == name)
    }
}

impl fmt::Display for Tool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a tool's program came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolSource {
    /// [`Tool::default_program`].
    Default,
    /// `tools.<name>` in the config.
    Config,
    /// The `MIRRORER_TOOL_<NAME>` environment variable.
    Env,
}

/// The resolved program of every [`Tool`]; built once per run.
#[derive(Debug, Clone)]
pub struct Tools {
    programs: BTreeMap<Tool, (String, ToolSource)>,
}

/// One or more programs a stage needs do not exist.
#[derive(Debug, thiserror::Error)]
#[error("missing external program{}: {}", if missing.len() == 1 { "" } else { "s" }, render_missing(missing))]
pub struct MissingTools {
    /// `(tool, program as configured, where that came from)`, in the order asked.
    pub missing: Vec<(Tool, String, ToolSource)>,
}

fn render_missing(missing: &[(Tool, String, ToolSource)]) -> String {
    missing
        .iter()
        .map(|(tool, program, source)| {
            let from = match source {
                ToolSource::Default => {
                    format!("default; set tools.{} or {}", tool.name(), tool.env_var())
                }
                ToolSource::Config => format!("from tools.{}", tool.name()),
                ToolSource::Env => format!("from {}", tool.env_var()),
            };
            let kind = if program.contains('/') {
                "does not exist"
            } else {
                "not found on PATH"
            };
            format!("{tool} ({program}: {kind}; {from})")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl Tools {
    /// Resolves every tool: `env("MIRRORER_TOOL_<NAME>")` if set and
    /// non-empty, else `tools.<name>` from `config_tools` (name -> path as
    /// in [`crate::config::Config::tools`]), else the default.
    pub fn resolve(
        config_tools: &[(String, String)],
        env: impl Fn(&str) -> Option<String>,
    ) -> Tools {
        let mut programs = BTreeMap::new();
        for tool in Tool::ALL {
            let from_env = env(&tool.env_var()).filter(|v| !v.trim().is_empty());
            let from_config = config_tools
                .iter()
                .rev()
                .find(|(name, _)| Tool::from_name(name) == Some(tool))
                .map(|(_, path)| path.clone())
                .filter(|v| !v.trim().is_empty());
            let entry = match (from_env, from_config) {
                (Some(p), _) => (p, ToolSource::Env),
                (None, Some(p)) => (p, ToolSource::Config),
                (None, None) => (tool.default_program().to_owned(), ToolSource::Default),
            };
            programs.insert(tool, entry);
        }
        Tools { programs }
    }

    /// [`Tools::resolve`] with the process environment.
    pub fn from_env(config_tools: &[(String, String)]) -> Tools {
        Tools::resolve(config_tools, |name| std::env::var(name).ok())
    }

    /// The program of `tool`, as configured (a path or a bare name).
    pub fn program(&self, tool: Tool) -> &str {
        self.programs
            .get(&tool)
            .map(|(p, _)| p.as_str())
            .unwrap_or_else(|| tool.default_program())
    }

    /// Where the program of `tool` came from.
    pub fn source(&self, tool: Tool) -> ToolSource {
        self.programs
            .get(&tool)
            .map(|(_, s)| s.clone())
            .unwrap_or(ToolSource::Default)
    }

    /// Checks that every tool in `needed` exists: a program with a `/` must
    /// be an existing file (relative to the current directory if relative),
    /// a bare name must be an executable file in a `PATH` directory.
    ///
    /// # Errors
    /// [`MissingTools`] listing every missing one.
    pub fn check(&self, needed: &[Tool]) -> Result<(), MissingTools> {
        let mut missing = Vec::new();
        for &tool in needed {
            let program = self.program(tool);
            if find_program(program).is_none() && !missing.iter().any(|(t, _, _)| *t == tool) {
                missing.push((tool, program.to_owned(), self.source(tool)));
            }
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(MissingTools { missing })
        }
    }

    /// A new command running `tool`, with its one-line `purpose` (logged).
    pub fn cmd(&self, tool: Tool, purpose: impl Into<String>) -> Cmd {
        Cmd::new(self.program(tool), purpose)
    }
}

/// The file `program` runs: itself if it has a `/`, else the first
/// executable file of that name in `PATH`.
pub fn find_program(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let is_exec = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if program.is_empty() {
        return None;
    }
    if program.contains('/') {
        let p = PathBuf::from(program);
        return is_exec(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| is_exec(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tools_resolve_env_over_config_over_default() {
        let config = vec![
            ("zfs".to_owned(), "/opt/zfs".to_owned()),
            ("kesl-control".to_owned(), "/opt/kesl".to_owned()),
        ];
        let tools = Tools::resolve(&config, |k| {
            (k == "MIRRORER_TOOL_ZFS").then(|| "/env/zfs".to_owned())
        });
        assert_eq!(tools.program(Tool::Zfs), "/env/zfs");
        assert_eq!(tools.source(Tool::Zfs), ToolSource::Env);
        assert_eq!(tools.program(Tool::KeslControl), "/opt/kesl");
        assert_eq!(tools.program(Tool::Syncoid), "/sbin/syncoid");
        assert_eq!(Tool::KeslControl.env_var(), "MIRRORER_TOOL_KESL_CONTROL");
    }

    #[test]
    fn missing_tools_are_reported_together() {
        let config = vec![
            ("zfs".to_owned(), "/nonexistent/zfs".to_owned()),
            ("syncoid".to_owned(), "no-such-program-xyz".to_owned()),
        ];
        let tools = Tools::resolve(&config, |_| None);
        let err = tools.check(&[Tool::Zfs, Tool::Syncoid]).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("zfs (/nonexistent/zfs: does not exist; from tools.zfs)"),
            "{text}"
        );
        assert!(
            text.contains("syncoid (no-such-program-xyz: not found on PATH"),
            "{text}"
        );
    }
}
