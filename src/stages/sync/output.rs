//! Where a syncer's output goes (the `log_file` handling of `sync`): each
//! line to the job log, prefixed `[<name>] `, and appended without the
//! prefix to the syncer's `log_file`, with the values of secret-looking
//! environment keys masked in both.
//!
//! A log file that cannot be opened (its directory cannot be created, a
//! path component is a file, no permission) does not stop the syncer, as in
//! mirrorer 0.1.0: one warning `sync_log_file_unavailable container= path=
//! error=` names the file and the error, and the output goes to the job log
//! only. A write that fails later is one warning `sync_log_file_write_failed`.

use std::fs::{self, File};
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{MIN_REDACTED_LEN, TARGET};
use crate::config::Syncer;

/// The log file of a syncer could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("syncer {name}: could not {action} {}", path.display())]
pub struct LogFileError {
    /// The syncer.
    pub name: String,
    /// What was being done.
    pub action: &'static str,
    /// The path.
    pub path: PathBuf,
    /// The I/O error.
    #[source]
    pub source: std::io::Error,
}

/// Where a syncer's output goes: the job log (prefixed) and its log file
/// (when it could be opened), with secret values masked.
pub(super) struct OutputSink {
    name: String,
    path: PathBuf,
    file: Option<Mutex<File>>,
    secrets: Vec<String>,
    write_failed: AtomicBool,
}

/// Opens `syncer.log_file` for appending (mode 0644 when created), creating
/// its parent directories.
fn open_log_file(syncer: &Syncer) -> Result<File, LogFileError> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = &syncer.log_file;
    let err = |action| {
        move |source| LogFileError {
            name: syncer.name.clone(),
            action,
            path: path.clone(),
            source,
        }
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(err("create the directory of the log file"))?;
    }
    fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o644)
        .open(path)
        .map_err(err("open the log file"))
}

impl OutputSink {
    /// The sink of `syncer`; a log file that cannot be opened is one
    /// warning (module docs) and the output goes to the job log only.
    pub(super) fn open_or_warn(syncer: &Syncer) -> OutputSink {
        let file = match open_log_file(syncer) {
            Ok(f) => Some(Mutex::new(f)),
            Err(e) => {
                let error = match std::error::Error::source(&e) {
                    Some(cause) => format!("{e}: {cause}"),
                    None => e.to_string(),
                };
                tracing::warn!(
                    target: TARGET,
                    container = %syncer.name,
                    path = %syncer.log_file.display(),
                    error = %error,
                    "sync_log_file_unavailable"
                );
                None
            }
        };
        let mut secrets: Vec<String> = syncer
            .environment
            .iter()
            .filter(|(k, v)| crate::logging::is_secret_key(k) && v.len() >= MIN_REDACTED_LEN)
            .map(|(_, v)| v.clone())
            .chain(crate::redact::secret_values(&syncer.command_args))
            .filter(|v| v.len() >= MIN_REDACTED_LEN)
            .collect();
        // Longest first, so a secret containing another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        OutputSink {
            name: syncer.name.clone(),
            path: syncer.log_file.clone(),
            file,
            secrets,
            write_failed: AtomicBool::new(false),
        }
    }

    /// `line` with every secret value replaced by `***`.
    pub(super) fn redact(&self, line: &str) -> String {
        let mut line = line.to_owned();
        for s in &self.secrets {
            if line.contains(s.as_str()) {
                line = line.replace(s.as_str(), "***");
            }
        }
        line
    }

    fn write_file(&self, text: &str) {
        let Some(file) = &self.file else {
            return;
        };
        let result = match file.lock() {
            Ok(mut f) => writeln!(f, "{text}"),
            Err(_) => Ok(()),
        };
        if let Err(e) = result
            && !self.write_failed.swap(true, Ordering::SeqCst)
        {
            tracing::warn!(
                target: TARGET,
                container = %self.name,
                path = %self.path.display(),
                error = %e,
                "sync_log_file_write_failed"
            );
        }
    }

    /// One line of container output.
    pub(super) fn line(&self, line: &str) {
        let line = self.redact(line);
        tracing::info!(target: TARGET, "[{}] {}", self.name, line);
        self.write_file(&line);
    }

    /// A marker line in the log file only.
    pub(super) fn marker(&self, what: &str) {
        self.write_file(&format!(
            "--- mirrorer: {} container {} {what} ---",
            chrono::Local::now().format("%Y-%m-%dT%H:%M:%S%:z"),
            self.name
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn syncer(log_file: PathBuf) -> Syncer {
        Syncer {
            kind: None,
            name: "debian".into(),
            prefix: "debian".into(),
            image: "img".into(),
            user: "0:0".into(),
            config: None,
            repos: None,
            dest: None,
            environment: vec![
                ("API_TOKEN".into(), "abcd".into()),
                ("DB_PASSWORD".into(), "abcdefgh".into()),
                ("SHORT_KEY".into(), "xyz".into()),
                ("MIRROR".into(), "visible".into()),
            ],
            command_args: Vec::new(),
            volumes: Vec::new(),
            log_file,
        }
    }

    #[test]
    fn output_masks_secret_values_longest_first() {
        let dir = tempfile::tempdir().unwrap();
        let syncer = syncer(dir.path().join("a/b/debian.log"));
        let sink = OutputSink::open_or_warn(&syncer);
        assert_eq!(
            sink.redact("pw=abcdefgh tok=abcd k=xyz m=visible"),
            "pw=*** tok=*** k=xyz m=visible"
        );
        sink.line("tok=abcd");
        let written = fs::read_to_string(&syncer.log_file).unwrap();
        assert_eq!(written, "tok=***\n");
    }

    #[test]
    fn a_log_file_that_cannot_be_opened_leaves_the_job_log() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("file"), "x").unwrap();
        let sink = OutputSink::open_or_warn(&syncer(dir.path().join("file/debian.log")));
        assert!(sink.file.is_none());
        sink.line("still logged");
        sink.marker("attempt 1/3 starting");
    }
}
