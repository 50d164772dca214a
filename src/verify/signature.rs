//! Release signatures: `gpgv` (through the process wrapper, [`Tool::Gpgv`])
//! checks `InRelease`, else `Release` with `Release.gpg`, against the keyring
//! given for the prefix (`--keyring PREFIX=FILE`).

use std::time::Duration;

use super::Context;
use super::model::{Problem, ProblemKind};
use crate::process::{Exit, Tool};

/// How long one `gpgv` may run.
const GPGV_TIMEOUT: Duration = Duration::from_secs(120);

/// Checks the signature of the suite at `suite_rel` (relative to the scan
/// root) with `keyring`; `None` when it verifies, else the problem
/// (`signature_invalid`: no signed file, or gpgv refused it).
pub(super) fn check_release(
    ctx: &Context,
    suite_rel: &str,
    keyring: &std::path::Path,
) -> Option<Problem> {
    let dir = ctx.root.join(suite_rel);
    let inside = |name: &str| matches!(ctx.confine.is_file(&dir.join(name)), Ok(true));
    let (path, args): (String, Vec<std::path::PathBuf>) = if inside("InRelease") {
        (
            format!("{suite_rel}/InRelease"),
            vec![dir.join("InRelease")],
        )
    } else if inside("Release") && inside("Release.gpg") {
        (
            format!("{suite_rel}/Release.gpg"),
            vec![dir.join("Release.gpg"), dir.join("Release")],
        )
    } else {
        return Some(Problem::new(
            format!("{suite_rel}/InRelease"),
            ProblemKind::SignatureInvalid,
            Some("InRelease, or Release with Release.gpg".into()),
            Some("missing".into()),
        ));
    };
    let cmd = ctx
        .tools
        .cmd(Tool::Gpgv, format!("check the signature of {path}"))
        .arg("--keyring")
        .arg(keyring.as_os_str())
        .arg("--")
        .args(args.iter().map(|p| p.as_os_str()))
        .timeout(GPGV_TIMEOUT)
        .any_status()
        .quiet();
    match cmd.run() {
        Ok(finished) if finished.exit == Exit::Code(0) => None,
        Ok(finished) => Some(Problem::new(
            path,
            ProblemKind::SignatureInvalid,
            Some(format!("signed by a key of {}", keyring.display())),
            Some(format!("gpgv {}", finished.exit)),
        )),
        Err(e) => Some(Problem::new(
            path,
            ProblemKind::SignatureInvalid,
            None,
            Some(format!("gpgv did not run: {e}")),
        )),
    }
}
