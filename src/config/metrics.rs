//! `metrics`: where the Prometheus textfile is written (docs/config.md,
//! `metrics`).
//!
//! ```yaml
//! metrics:
//!   textfile_dir: /var/lib/prometheus/node-exporter   # optional; absolute
//! ```
//!
//! With `textfile_dir` set every stage also writes
//! `<textfile_dir>/mirrorer.prom` for node_exporter's textfile collector
//! ([`crate::status::prom`]); unset, no metrics file is written.

use std::path::PathBuf;

use marked_yaml::Node;

use super::reader::Reader;

/// The `metrics` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metrics {
    /// `metrics.textfile_dir`: the directory of node_exporter's textfile
    /// collector (absolute path), if set.
    pub textfile_dir: Option<PathBuf>,
}

/// Reads the `metrics` section; a relative or empty `textfile_dir` is an
/// error naming the key.
pub(super) fn read(r: &mut Reader, node: Option<&Node>) -> Metrics {
    let m = r.section(node, "metrics", &["textfile_dir"]);
    let textfile_dir = match r.opt_str(m, "textfile_dir", "metrics") {
        None => None,
        Some((text, span)) => {
            let path = PathBuf::from(&text);
            if path.is_absolute() && !text.contains('\n') {
                Some(path)
            } else {
                r.error(
                    "metrics.textfile_dir",
                    &span,
                    format!("must be an absolute directory path, found {text:?}"),
                );
                None
            }
        }
    };
    Metrics { textfile_dir }
}
