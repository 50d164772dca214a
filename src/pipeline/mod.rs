//! The GitLab side of mirrorer (docs/pipelines.md): run modes, the job plan
//! of the child pipeline and its rendering.
//!
//! `pipeline` reads the config and renders text; it never runs a stage.

#[cfg(feature = "gitlab")]
pub mod client;
pub mod jobs;
pub mod mode;
pub mod render;
#[cfg(feature = "gitlab")]
pub mod trigger;

use crate::config::Config;

/// A failure of `pipeline generate`.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// A selected syncer does not exist (usage error).
    #[error(transparent)]
    UnknownSyncer(#[from] crate::domain::SelectError),
    /// The template failed or produced an invalid pipeline (a bug).
    #[error(transparent)]
    Render(#[from] render::RenderError),
}

/// A rendered child pipeline.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The YAML text, ending with a newline.
    pub text: String,
    /// The job names, in order.
    pub jobs: Vec<String>,
}

/// Renders the child pipeline of `config` in `run_mode`; the jobs will read
/// their config from `config_path` (`MIRRORER_CONFIG`).
///
/// The same inputs always give the same bytes.
///
/// # Errors
/// [`GenerateError`].
pub fn generate(
    config: &Config,
    run_mode: &mode::RunMode,
    config_path: &str,
) -> Result<Generated, GenerateError> {
    let graph = jobs::build(config, run_mode, config_path)?;
    let text = render::render(&graph)?;
    Ok(Generated {
        text,
        jobs: graph.jobs.into_iter().map(|j| j.name).collect(),
    })
}
