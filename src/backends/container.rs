//! The container runtime through its CLI (`tools.docker`, default `docker`;
//! `podman` is a drop-in), for the syncer containers of `sync`
//! (docs/stages.md, "sync").
//!
//! The subcommands and flags used are those of the Docker CLI reference
//! (docs.docker.com/reference/cli/docker/container/): `rm -f`, `run -d`,
//! `logs --follow`, `wait`, `stop -t`. Podman accepts the same ones
//! (docs.podman.io, podman-run(1) etc.).
//!
//! # Secrets and the client's environment
//!
//! A container's environment never appears on a command line (visible to
//! every user in `ps` and `/proc/<pid>/cmdline`), in a log, nor in the
//! environment of the runtime client: a key the client itself reads
//! (`PATH`, `HOME`, `DOCKER_HOST`, `DOCKER_CONFIG`, `CONTAINERS_CONF`, ...)
//! would otherwise change which program runs, which daemon it talks to and
//! which credentials it uses (mirrorer 0.1.0 spoke to the daemon's API, so a
//! syncer's environment only ever reached the container). [`start`] writes
//! the values to an env file ([`EnvFile`]: `KEY=VALUE` lines, mode 0600, in
//! a private mode-0700 directory under `TMPDIR`), passes `--env-file=PATH`,
//! and removes the file as soon as `run -d` returned, whether it succeeded
//! or not (also when the run was interrupted by SIGTERM/SIGINT; only a
//! second signal, which ends mirrorer at once, leaves it behind).
//!
//! Docker (`docker/cli`, `kvfile`) and podman (`pkg/env`) read that file
//! the same way: one variable per line, split at the first `=`, the value
//! taken literally (no quotes, no escapes, no expansion; leading and
//! trailing blanks kept), lines read with Go's `bufio.Scanner`, which drops
//! a trailing `\r` and fails on lines of 64 KiB or more. So a value with a
//! line break (`\n`, `\r`) or NUL, or a line of [`MAX_ENV_LINE`] bytes or
//! more, cannot be passed and is refused ([`check_env_value`]; the config
//! refuses it too, naming the key).
//!
//! # Options
//!
//! No config value becomes an option of the client: option values are
//! attached (`--name=NAME`, `--user=USER`, `--volume=H:B:M`), the container
//! name follows `--` in `rm`, `logs`, `wait` and `stop`, and an image name
//! starting with `-` is refused (the options of `run` end at the image).

use std::io::Write as _;
use std::path::{Path, PathBuf};
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
    /// The image name is empty or starts with `-` (it would be read as an
    /// option of `run`).
    #[error("container {name}: image {image:?} must not be empty or start with '-'")]
    BadImage {
        /// The container name.
        name: String,
        /// The image as configured.
        image: String,
    },
    /// An environment value cannot be written to an env file.
    #[error("container {name}: environment value of {key} {why}")]
    BadEnvValue {
        /// The container name.
        name: String,
        /// The environment key.
        key: String,
        /// What is wrong ([`check_env_value`]).
        why: String,
    },
    /// The env file could not be written.
    #[error("container {name}: could not write the environment file under {}", dir.display())]
    EnvFile {
        /// The container name.
        name: String,
        /// The directory it was written in (`TMPDIR`).
        dir: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
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

/// `docker rm -f -- NAME`: removes the container whether it runs or not.
/// Finishes even when this process received a signal (cleanup), within
/// [`CLIENT_MARGIN`]. Its status is checked by [`remove`].
pub fn remove_cmd(tools: &Tools, name: &str) -> Cmd {
    docker(tools, "remove the syncer container")
        .args(["rm", "-f", "--", name])
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

/// The longest `KEY=VALUE` line (bytes, without the newline) an env file
/// may hold: Go's `bufio.Scanner`, which docker and podman read it with,
/// fails on lines of 64 KiB or more.
pub const MAX_ENV_LINE: usize = 64 * 1024 - 2;

/// Checks that `value` of `key` can go into an env file (module docs): no
/// line break, no NUL, and a `KEY=VALUE` line shorter than
/// [`MAX_ENV_LINE`] bytes.
///
/// # Errors
/// The reason, as a phrase to follow "environment value of KEY".
pub fn check_env_value(key: &str, value: &str) -> Result<(), String> {
    for (c, what) in [
        ('\n', "a line break (\\n)"),
        ('\r', "a carriage return (\\r)"),
        ('\0', "a NUL byte"),
    ] {
        if value.contains(c) {
            return Err(format!(
                "contains {what}, which the container runtime's --env-file cannot carry"
            ));
        }
    }
    if key.len() + 1 + value.len() >= MAX_ENV_LINE {
        return Err(format!(
            "is {} bytes long; KEY=VALUE must stay under {MAX_ENV_LINE} bytes for the container runtime's --env-file",
            value.len()
        ));
    }
    Ok(())
}

/// Checks every environment value of `syncer` ([`check_env_value`]), in
/// file order.
///
/// # Errors
/// [`ContainerError::BadEnvValue`] for the first value that cannot go into
/// an env file.
fn check_environment(syncer: &Syncer) -> Result<(), ContainerError> {
    for (key, value) in &syncer.environment {
        check_env_value(key, value).map_err(|why| ContainerError::BadEnvValue {
            name: syncer.name.clone(),
            key: key.clone(),
            why,
        })?;
    }
    Ok(())
}

/// A syncer's environment in a private env file (module docs); removed
/// when dropped or by [`EnvFile::remove`].
#[derive(Debug)]
pub struct EnvFile {
    dir: tempfile::TempDir,
    path: PathBuf,
}

impl EnvFile {
    /// Writes the environment of `syncer` as `KEY=VALUE` lines to
    /// `<TMPDIR>/mirrorer-env-XXXXXX/env` (directory 0700, file 0600).
    /// `None` when the syncer has no environment.
    ///
    /// # Errors
    /// [`ContainerError::BadEnvValue`], [`ContainerError::EnvFile`].
    pub fn write(syncer: &Syncer) -> Result<Option<EnvFile>, ContainerError> {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        if syncer.environment.is_empty() {
            return Ok(None);
        }
        check_environment(syncer)?;
        let mut text = String::new();
        for (key, value) in &syncer.environment {
            text.push_str(key);
            text.push('=');
            text.push_str(value);
            text.push('\n');
        }
        let tmp = std::env::temp_dir();
        let err = |source| ContainerError::EnvFile {
            name: syncer.name.clone(),
            dir: tmp.clone(),
            source,
        };
        let dir = tempfile::Builder::new()
            .prefix("mirrorer-env-")
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir()
            .map_err(err)?;
        let path = dir.path().join("env");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(err)?;
        file.write_all(text.as_bytes()).map_err(err)?;
        Ok(Some(EnvFile { dir, path }))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the file and its directory.
    ///
    /// # Errors
    /// The I/O error of the removal.
    pub fn remove(self) -> std::io::Result<()> {
        self.dir.close()
    }
}

/// The env file path shown in a dry-run plan (no file is written then).
pub fn env_file_placeholder() -> PathBuf {
    std::env::temp_dir().join("mirrorer-env-XXXXXX/env")
}

/// `docker run -d --name=NAME --user=USER --volume=HOST:BIND:MODE ...
/// [--env-file=ENV_FILE] IMAGE ARGS...` for `syncer`: starts its container
/// in the background. `env_file` holds its environment ([`EnvFile`]; give
/// it when the syncer has one). [`start`] writes the file and runs this.
///
/// # Errors
/// [`ContainerError::BadVolume`] for a path with `:`,
/// [`ContainerError::BadImage`] for an image starting with `-`.
pub fn run_cmd(
    tools: &Tools,
    syncer: &Syncer,
    env_file: Option<&Path>,
) -> Result<Cmd, ContainerError> {
    let name = &syncer.name;
    if syncer.image.is_empty() || syncer.image.starts_with('-') {
        return Err(ContainerError::BadImage {
            name: name.clone(),
            image: syncer.image.clone(),
        });
    }
    let mut cmd = docker(tools, "start the syncer container").args([
        "run".to_owned(),
        "-d".to_owned(),
        format!("--name={name}"),
        format!("--user={}", syncer.user),
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
        cmd = cmd.arg(format!("--volume={host}:{}:{}", v.bind, v.mode()));
    }
    if let Some(path) = env_file {
        let mut arg = std::ffi::OsString::from("--env-file=");
        arg.push(path);
        cmd = cmd.arg(arg);
    }
    Ok(cmd.arg(&syncer.image).args(&syncer.command_args))
}

/// Checks what [`start`] would refuse for every attempt: a volume, image
/// or environment value that cannot be passed.
///
/// # Errors
/// [`ContainerError::BadVolume`], [`ContainerError::BadImage`],
/// [`ContainerError::BadEnvValue`].
pub fn check(syncer: &Syncer) -> Result<(), ContainerError> {
    check_environment(syncer)?;
    run_cmd(&Tools::resolve(&[], |_| None), syncer, None).map(|_| ())
}

/// Starts the container of `syncer`: writes its [`EnvFile`], runs
/// [`run_cmd`] and removes the file again, whatever happened.
///
/// # Errors
/// [`ContainerError::Process`] (see [`ContainerError::interrupted`]) and
/// the errors of [`EnvFile::write`] and [`run_cmd`].
pub fn start(tools: &Tools, syncer: &Syncer) -> Result<(), ContainerError> {
    let env_file = EnvFile::write(syncer)?;
    let result = run_cmd(tools, syncer, env_file.as_ref().map(EnvFile::path)).and_then(|cmd| {
        cmd.run()
            .map(|_| ())
            .map_err(process_err(&syncer.name, "start the container"))
    });
    if let Some(file) = env_file {
        let path = file.path().to_path_buf();
        if let Err(e) = file.remove() {
            tracing::warn!(container = %syncer.name, path = %path.display(), error = %e, "sync_env_file_remove_failed");
        }
    }
    result
}

/// `docker logs --follow -- NAME`: the container's output from its start until
/// it exits (spawn it with a line handler). Stopped quickly when this
/// process receives a signal.
pub fn logs_cmd(tools: &Tools, name: &str) -> Cmd {
    docker(tools, "follow the syncer container's output")
        .args(["logs", "--follow", "--", name])
        .any_status()
        .stop_grace(CLIENT_STOP_GRACE)
        .quiet()
}

/// `docker wait -- NAME`: blocks until the container exits and prints its exit
/// code.
pub fn wait_cmd(tools: &Tools, name: &str) -> Cmd {
    docker(tools, "wait for the syncer container to exit")
        .args(["wait", "--", name])
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

/// `docker stop -t SECONDS -- NAME`: SIGTERM to the container's main process,
/// SIGKILL after `grace` (whole seconds, rounded up). Finishes even when
/// this process received a signal; any status is accepted (the container
/// may already be gone), [`remove`] follows it.
pub fn stop_cmd(tools: &Tools, name: &str, grace: Duration) -> Cmd {
    let secs = grace.as_secs() + u64::from(grace.subsec_nanos() > 0);
    docker(tools, "stop the syncer container")
        .args(["stop", "-t", &secs.to_string(), "--", name])
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
    fn run_command_carries_no_environment_value() {
        let tools = Tools::resolve(&[], |_| Some("/opt/docker".to_owned()));
        let cmd = run_cmd(&tools, &syncer(), Some(Path::new("/tmp/e/env"))).unwrap();
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
                "--name=debian",
                "--user=1000:1000",
                "--volume=/srv/mirror:/distpool/mirror:rw",
                "--env-file=/tmp/e/env",
                "img:1",
                "--verbose"
            ]
        );
        assert!(!cmd.display().contains("s3cr3t"));
        assert!(cmd.display_env().is_empty());
    }

    #[test]
    fn env_file_is_private_and_literal_and_removed() {
        use std::os::unix::fs::PermissionsExt;
        let mut s = syncer();
        s.environment
            .push(("PATH".into(), " a 'b' \"c\" =d $X ".into()));
        let file = EnvFile::write(&s).unwrap().unwrap();
        let path = file.path().to_path_buf();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "API_TOKEN=s3cr3t\nPATH= a 'b' \"c\" =d $X \n"
        );
        file.remove().unwrap();
        assert!(!path.parent().unwrap().exists());
    }

    #[test]
    fn values_an_env_file_cannot_carry_are_refused() {
        for bad in ["a\nb", "a\rb", "a\0b"] {
            let mut s = syncer();
            s.environment = vec![("MULTI".into(), bad.into())];
            let err = EnvFile::write(&s).unwrap_err().to_string();
            assert!(err.contains("MULTI") && err.contains("debian"), "{err}");
        }
        assert!(check_env_value("K", &"x".repeat(MAX_ENV_LINE)).is_err());
        assert!(check_env_value("K", &"x".repeat(1000)).is_ok());
        let mut s = syncer();
        s.environment.clear();
        assert!(EnvFile::write(&s).unwrap().is_none());
    }

    #[test]
    fn an_image_that_looks_like_an_option_is_refused() {
        let mut s = syncer();
        s.image = "--privileged".into();
        let tools = Tools::resolve(&[], |_| None);
        let err = run_cmd(&tools, &s, None).unwrap_err().to_string();
        assert!(err.contains("--privileged"), "{err}");
    }

    #[test]
    fn a_colon_in_a_volume_is_an_error_naming_it() {
        let mut s = syncer();
        s.volumes[0].host = PathBuf::from("/srv/a:b");
        let tools = Tools::resolve(&[], |_| None);
        let err = run_cmd(&tools, &s, None).unwrap_err().to_string();
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
        assert_eq!(cmd.display(), "/opt/docker stop -t 2 -- x");
    }
}
