//! The container runtime through its CLI (`tools.docker`, default `docker`;
//! `podman` is a drop-in), for the syncer containers of `sync`
//! (docs/stages.md, "sync").
//!
//! The subcommands and flags used are those of the Docker CLI reference
//! (docs.docker.com/reference/cli/docker/container/): `rm -f`, `run -d`,
//! `logs --follow`, `wait`, `stop -t`. Podman accepts the same ones
//! (docs.podman.io, podman-run(1) etc.).
//!
//! # Secrets
//!
//! A container's environment never appears on a command line (visible to
//! every user in `ps` and `/proc/<pid>/cmdline`) nor in a log: the `run`
//! command carries `-e KEY` without a value, and the value is set in the
//! runtime client's own environment with [`Cmd::env_hidden`], from where
//! `docker`/`podman` copy it into the container. A caveat of that design: a
//! key the client itself reads (`PATH`, `HOME`, `DOCKER_HOST`,
//! `CONTAINERS_CONF`, ...) also changes the client's behaviour. To keep a
//! container `PATH` from changing where the client is looked up, the
//! program is resolved to an absolute path first.

use std::time::Duration;

use crate::config::Syncer;
use crate::process::{Cmd, ProcessError, Tool, Tools, find_program};

/// How long `docker stop` / `docker rm -f` may take beyond the container's
/// own stop grace period before the client is killed.
pub const CLIENT_MARGIN: Duration = Duration::from_secs(60);

/// Grace period for stopping a runtime *client* process (`docker wait`,
/// `docker logs --follow`), not a container.
pub const CLIENT_STOP_GRACE: Duration = Duration::from_secs(2);

/// Why a container operation failed. Every variant names the container.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// A runtime command failed or could not be started.
    #[error("container {name}: could not {action}")]
    Process {
        /// The container name.
        name: String,
        /// What was being done ("start the container").
        action: &'static str,
        /// The failed command (carries the command line and output tail).
        #[source]
        source: Box<ProcessError>,
    },
    /// `docker wait` printed something that is not an exit code.
    #[error("container {name}: `docker wait` printed {output:?}, expected an exit code")]
    BadWaitOutput {
        /// The container name.
        name: String,
        /// What it printed.
        output: String,
    },
    /// A volume cannot be written as `-v host:bind:mode` (a `:` in a path).
    #[error(
        "container {name}: volume {host} -> {bind} contains ':', which `-v host:bind:mode` cannot express"
    )]
    BadVolume {
        /// The container name.
        name: String,
        /// Host path.
        host: String,
        /// Container path.
        bind: String,
    },
}

impl ContainerError {
    /// Whether the operation was cut short because this process received
    /// SIGINT/SIGTERM.
    pub fn interrupted(&self) -> bool {
        match self {
            ContainerError::Process { source, .. } => {
                matches!(**source, ProcessError::Interrupted { .. })
            }
            _ => false,
        }
    }
}

fn process_err(name: &str, action: &'static str) -> impl FnOnce(ProcessError) -> ContainerError {
    let name = name.to_owned();
    move |source| ContainerError::Process {
        name,
        action,
        source: Box::new(source),
    }
}

/// A runtime command for `tools.docker`, with the program resolved to an
/// absolute path when it can be found (so a hidden `PATH` does not change
/// which client runs).
fn docker(tools: &Tools, purpose: impl Into<String>) -> Cmd {
    let program = tools.program(Tool::Docker);
    match find_program(program) {
        Some(path) if !program.contains('/') => Cmd::new(path, purpose),
        _ => tools.cmd(Tool::Docker, purpose),
    }
}

/// `docker rm -f NAME`: removes the container whether it runs or not.
/// Finishes even when this process received a signal (cleanup), within
/// [`CLIENT_MARGIN`]. Its status is checked by [`remove`].
pub fn remove_cmd(tools: &Tools, name: &str) -> Cmd {
    docker(tools, "remove the syncer container")
        .args(["rm", "-f", name])
        .any_status()
        .stop_on_signal(false)
        .timeout(CLIENT_MARGIN)
}

/// Runs [`remove_cmd`]. "No such container" (older Docker exits 1 with
/// `Error: No such container: NAME`; podman and newer Docker exit 0) is
/// success.
///
/// # Errors
/// [`ContainerError::Process`] if the client cannot be run or fails for
/// another reason.
pub fn remove(tools: &Tools, name: &str) -> Result<(), ContainerError> {
    let cmd = remove_cmd(tools, name);
    let finished = cmd
        .run()
        .map_err(process_err(name, "remove the container"))?;
    if finished.exit.code() == Some(0)
        || finished
            .tail
            .to_ascii_lowercase()
            .contains("no such container")
    {
        return Ok(());
    }
    Err(ContainerError::Process {
        name: name.to_owned(),
        action: "remove the container",
        source: Box::new(ProcessError::Status {
            command: cmd.display(),
            purpose: cmd.purpose().to_owned(),
            exit: finished.exit,
            tail: finished.tail,
        }),
    })
}

/// `docker run -d --name NAME --user USER -v HOST:BIND:MODE ... -e KEY ...
/// IMAGE ARGS...` for `syncer`: starts its container in the background.
/// Every environment value is passed hidden (module docs).
///
/// # Errors
/// [`ContainerError::BadVolume`] for a path with `:`.
pub fn run_cmd(tools: &Tools, syncer: &Syncer) -> Result<Cmd, ContainerError> {
    let name = &syncer.name;
    let mut cmd = docker(tools, "start the syncer container").args([
        "run",
        "-d",
        "--name",
        name,
        "--user",
        &syncer.user,
    ]);
    for v in &syncer.volumes {
        let host = v.host.to_string_lossy();
        if host.contains(':') || v.bind.contains(':') {
            return Err(ContainerError::BadVolume {
                name: name.clone(),
                host: host.into_owned(),
                bind: v.bind.clone(),
            });
        }
        cmd = cmd.arg("-v").arg(format!("{host}:{}:{}", v.bind, v.mode()));
    }
    for (key, value) in &syncer.environment {
        cmd = cmd.arg("-e").arg(key).env_hidden(key, value);
    }
    Ok(cmd.arg(&syncer.image).args(&syncer.command_args))
}

/// `docker logs --follow NAME`: the container's output from its start until
/// it exits (spawn it with a line handler). Stopped quickly when this
/// process receives a signal.
pub fn logs_cmd(tools: &Tools, name: &str) -> Cmd {
    docker(tools, "follow the syncer container's output")
        .args(["logs", "--follow", name])
        .any_status()
        .stop_grace(CLIENT_STOP_GRACE)
        .quiet()
}

/// `docker wait NAME`: blocks until the container exits and prints its exit
/// code.
pub fn wait_cmd(tools: &Tools, name: &str) -> Cmd {
    docker(tools, "wait for the syncer container to exit")
        .args(["wait", name])
        .stop_grace(CLIENT_STOP_GRACE)
}

/// Runs [`wait_cmd`] and returns the container's exit code (the last
/// non-empty line of its stdout).
///
/// # Errors
/// [`ContainerError::Process`] (also when interrupted by a signal: see
/// [`ContainerError::interrupted`]), [`ContainerError::BadWaitOutput`].
pub fn wait(tools: &Tools, name: &str) -> Result<i32, ContainerError> {
    let out = wait_cmd(tools, name)
        .run()
        .map_err(process_err(name, "wait for the container"))?;
    parse_wait_output(&out.stdout).ok_or_else(|| ContainerError::BadWaitOutput {
        name: name.to_owned(),
        output: out.stdout.trim().to_owned(),
    })
}

/// The exit code in the output of `docker wait`: its last non-empty line.
pub fn parse_wait_output(stdout: &str) -> Option<i32> {
    stdout
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .and_then(|l| l.parse().ok())
}

/// `docker stop -t SECONDS NAME`: SIGTERM to the container's main process,
/// SIGKILL after `grace` (whole seconds, rounded up). Finishes even when
/// this process received a signal; any status is accepted (the container
/// may already be gone), [`remove`] follows it.
pub fn stop_cmd(tools: &Tools, name: &str, grace: Duration) -> Cmd {
    let secs = grace.as_secs() + u64::from(grace.subsec_nanos() > 0);
    docker(tools, "stop the syncer container")
        .args(["stop", "-t", &secs.to_string(), name])
        .any_status()
        .stop_on_signal(false)
        .timeout(grace + CLIENT_MARGIN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Volume;
    use std::path::PathBuf;

    fn syncer() -> Syncer {
        Syncer {
            kind: None,
            name: "debian".into(),
            prefix: "debian".into(),
            image: "img:1".into(),
            user: "1000:1000".into(),
            config: None,
            repos: None,
            dest: None,
            environment: vec![("API_TOKEN".into(), "s3cr3t".into())],
            command_args: vec!["--verbose".into()],
            volumes: vec![Volume {
                host: PathBuf::from("/srv/mirror"),
                bind: "/distpool/mirror".into(),
                read_only: false,
            }],
            log_file: PathBuf::from("/tmp/x.log"),
        }
    }

    #[test]
    fn run_command_carries_keys_but_no_values() {
        let tools = Tools::resolve(&[], |_| Some("/opt/docker".to_owned()));
        let cmd = run_cmd(&tools, &syncer()).unwrap();
        let args: Vec<String> = cmd
            .raw_args()
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            [
                "run",
                "-d",
                "--name",
                "debian",
                "--user",
                "1000:1000",
                "-v",
                "/srv/mirror:/distpool/mirror:rw",
                "-e",
                "API_TOKEN",
                "img:1",
                "--verbose"
            ]
        );
        assert!(!cmd.display().contains("s3cr3t"));
        assert!(!cmd.display_env().contains("s3cr3t"));
    }

    #[test]
    fn a_colon_in_a_volume_is_an_error_naming_it() {
        let mut s = syncer();
        s.volumes[0].host = PathBuf::from("/srv/a:b");
        let tools = Tools::resolve(&[], |_| None);
        let err = run_cmd(&tools, &s).unwrap_err().to_string();
        assert!(err.contains("/srv/a:b") && err.contains("debian"), "{err}");
    }

    #[test]
    fn wait_output_is_the_last_number() {
        assert_eq!(parse_wait_output("0\n"), Some(0));
        assert_eq!(parse_wait_output("noise\n137\n\n"), Some(137));
        assert_eq!(parse_wait_output("nope"), None);
        assert_eq!(parse_wait_output(""), None);
    }

    #[test]
    fn stop_grace_is_rounded_up_to_seconds() {
        let tools = Tools::resolve(&[], |_| Some("/opt/docker".to_owned()));
        let cmd = stop_cmd(&tools, "x", Duration::from_millis(1500));
        assert_eq!(cmd.display(), "/opt/docker stop -t 2 x");
    }
}
