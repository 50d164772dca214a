//! `pipeline.environment` (docs/pipelines.md, "promote"): the GitLab
//! environment the child pipeline's `promote` job deploys to, so GitLab
//! lists every promotion as a deployment and offers rollback.
//!
//! ```yaml
//! pipeline:
//!   environment:
//!     name: mirror/shard01              # required
//!     url: https://shard01.example/repo/current/   # optional
//! ```
//!
//! `name`: 1 to 255 characters, letters, digits, blank and `-_/.` (a subset
//! of what GitLab accepts, without `$`, `{`, `}`, so GitLab expands no
//! variable in it); not starting or ending with `/`. `url`: `http://` or
//! `https://`, at most 2048 bytes, no blank, control character or `$`.

use marked_yaml::Node;

use super::reader::{Reader, join};

/// The effective `pipeline.environment`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Environment {
    /// `name`.
    pub name: String,
    /// `url`, if given.
    pub url: Option<String>,
}

/// Reads `pipeline.environment` (`node` is its value); `None` when absent.
pub(super) fn read(r: &mut Reader, node: Option<&Node>) -> Option<Environment> {
    let path = "pipeline.environment";
    let m = r.section(node, path, &["name", "url"])?;
    let name = match r.opt_str(Some(m), "name", path) {
        None => {
            r.error(path, node?.span(), "needs a name (name: mirror/shard01)");
            return None;
        }
        Some((text, span)) => {
            let ok = (1..=255).contains(&text.len())
                && text
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || " -_/.".contains(c))
                && !text.starts_with('/')
                && !text.ends_with('/')
                && !text.trim().is_empty();
            if !ok {
                r.error(
                    &join(path, "name"),
                    &span,
                    format!(
                        "must be 1 to 255 letters, digits, blanks and -_/. (not starting or ending with /), found {text:?}"
                    ),
                );
                return None;
            }
            text
        }
    };
    let url = match r.opt_str(Some(m), "url", path) {
        None => None,
        Some((text, span)) => {
            let ok = (text.starts_with("https://") || text.starts_with("http://"))
                && text.len() <= 2048
                && !text
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || c == '$');
            if !ok {
                r.error(
                    &join(path, "url"),
                    &span,
                    format!(
                        "must be an http:// or https:// URL of at most 2048 bytes without blanks or $, found {text:?}"
                    ),
                );
                return None;
            }
            Some(text)
        }
    };
    Some(Environment { name, url })
}
