//! What happened to each syncer ([`SyncerReport`]), the `sync_summary`
//! lines, and the stage's result (module docs of [`super`]).

use super::TARGET;
use crate::error::{Error, Result};

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptEnd {
    /// The container ran and exited with this code.
    Exited(i32),
    /// The runtime failed before the container's exit code was known; the
    /// message holds the error and its causes.
    Error(String),
    /// SIGINT/SIGTERM arrived; the container was stopped.
    Interrupted,
}

impl AttemptEnd {
    /// The code for summaries: the exit code, `error` or `interrupted`.
    pub fn code_text(&self) -> String {
        match self {
            AttemptEnd::Exited(c) => c.to_string(),
            AttemptEnd::Error(_) => "error".to_owned(),
            AttemptEnd::Interrupted => "interrupted".to_owned(),
        }
    }
}

/// What happened to one syncer.
#[derive(Debug, Clone)]
pub struct SyncerReport {
    /// The syncer (container) name.
    pub name: String,
    /// How each attempt ended, in order.
    pub attempts: Vec<AttemptEnd>,
    /// Why no attempt could be made (log file, bad volume), if so.
    pub setup_error: Option<String>,
    /// Containers that could not be stopped or removed.
    pub cleanup_errors: Vec<String>,
}

impl SyncerReport {
    /// Whether the last attempt exited 0.
    pub fn succeeded(&self) -> bool {
        self.setup_error.is_none() && self.attempts.last() == Some(&AttemptEnd::Exited(0))
    }

    /// `ok`, `interrupted` or `failed`.
    pub fn status(&self) -> &'static str {
        if self.succeeded() {
            "ok"
        } else if self.attempts.last() == Some(&AttemptEnd::Interrupted) {
            "interrupted"
        } else {
            "failed"
        }
    }

    /// The exit codes in attempt order, comma-separated (`1,1,0`).
    pub fn exit_codes(&self) -> String {
        self.attempts
            .iter()
            .map(AttemptEnd::code_text)
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Logs the summary and turns the reports into the stage's result.
pub(super) fn finish(reports: &[SyncerReport]) -> Result<()> {
    for r in reports {
        if r.succeeded() {
            tracing::info!(target: TARGET, container = %r.name, status = r.status(), attempts = r.attempts.len(), exit_codes = %r.exit_codes(), "sync_summary");
        } else if let Some(error) = &r.setup_error {
            tracing::error!(target: TARGET, container = %r.name, status = r.status(), attempts = r.attempts.len(), exit_codes = %r.exit_codes(), error = %error, "sync_summary");
        } else {
            tracing::error!(target: TARGET, container = %r.name, status = r.status(), attempts = r.attempts.len(), exit_codes = %r.exit_codes(), "sync_summary");
        }
    }
    if let Some(signal) = crate::signals::received() {
        return Err(Error::Signal(signal));
    }
    let mut problems = Vec::new();
    let failed: Vec<&SyncerReport> = reports.iter().filter(|r| !r.succeeded()).collect();
    if !failed.is_empty() {
        let list = failed
            .iter()
            .map(|r| match &r.setup_error {
                Some(e) => format!("{} ({e})", r.name),
                None => format!(
                    "{} ({} attempts, exit codes {})",
                    r.name,
                    r.attempts.len(),
                    r.exit_codes()
                ),
            })
            .collect::<Vec<_>>()
            .join("; ");
        problems.push(format!(
            "{} of {} syncers failed: {list}",
            failed.len(),
            reports.len()
        ));
    }
    let leftovers: Vec<&String> = reports.iter().flat_map(|r| &r.cleanup_errors).collect();
    if !leftovers.is_empty() {
        problems.push(format!(
            "containers may be left behind: {}",
            leftovers
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Failed(anyhow::anyhow!(problems.join("; "))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(attempts: Vec<AttemptEnd>) -> SyncerReport {
        SyncerReport {
            name: "debian".into(),
            attempts,
            setup_error: None,
            cleanup_errors: Vec::new(),
        }
    }

    #[test]
    fn report_status_and_codes() {
        let ok = report(vec![
            AttemptEnd::Exited(1),
            AttemptEnd::Exited(1),
            AttemptEnd::Exited(0),
        ]);
        assert!(ok.succeeded());
        assert_eq!(ok.status(), "ok");
        assert_eq!(ok.exit_codes(), "1,1,0");
        let bad = report(vec![AttemptEnd::Error("x".into()), AttemptEnd::Exited(2)]);
        assert_eq!(bad.status(), "failed");
        assert_eq!(bad.exit_codes(), "error,2");
        let stopped = report(vec![AttemptEnd::Interrupted]);
        assert_eq!(stopped.status(), "interrupted");
    }

    #[test]
    fn failed_syncers_are_named() {
        let mut bad = report(vec![AttemptEnd::Exited(1); 3]);
        bad.name = "epel".into();
        let err = finish(&[report(vec![AttemptEnd::Exited(0)]), bad]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "1 of 2 syncers failed: epel (3 attempts, exit codes 1,1,1)"
        );
    }
}
