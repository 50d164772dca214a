//! `mirrorer pipeline trigger`: starts a parent pipeline through the GitLab
//! REST API (docs/pipelines.md), with the run mode sent as the pipeline
//! variables that `pipeline generate` reads.
//!
//! Two ways to authenticate:
//! - a pipeline trigger token: `POST /projects/:id/trigger/pipeline` with the
//!   form fields `token`, `ref` and `variables[NAME]`
//!   (docs.gitlab.com/api/pipeline_triggers/#trigger-a-pipeline-with-a-token);
//! - a personal, project or group access token (`PRIVATE-TOKEN` header):
//!   `POST /projects/:id/pipeline` with `ref` and `variables[][key|value]`
//!   (docs.gitlab.com/api/pipelines/#create-a-new-pipeline).
//!
//! Following a pipeline (`--wait`) reads `GET /projects/:id/pipelines/:id`,
//! which needs an access token. Tokens are held in [`Secret`], whose `Debug`
//! and `Display` print `***`; no token is ever logged or printed.
//!
//! Requests go through [`super::client::Client`], which follows a redirect
//! only within the GitLab URL's origin: a redirect elsewhere fails the
//! command naming its target, and no token is sent there. A URL with a
//! user or password is refused, and shown with its password masked.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use gitlab::api::Query;
use gitlab::api::common::NameOrId;
use gitlab::api::endpoint_prelude::{BodyError, Endpoint, FormParams, Method};
use gitlab::api::projects::pipelines::{CreatePipeline, Pipeline, PipelineVariable};

use super::client::{Client, ClientError};
use super::mode::{Mode, ModeFlags, RunMode};

/// A token: never shown.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// How the API is authenticated.
#[derive(Debug, Clone)]
pub enum Auth {
    /// A pipeline trigger token, plus an access token to follow the
    /// pipeline with `--wait` (if given).
    TriggerToken {
        /// The trigger token.
        token: Secret,
        /// An access token for reading the pipeline's status.
        read_token: Option<Secret>,
    },
    /// A personal, project or group access token.
    AccessToken(Secret),
}

/// Where and what to trigger.
#[derive(Debug, Clone)]
pub struct TriggerRequest {
    /// GitLab's base URL, `https://gitlab.example.org` (a path prefix such as
    /// `/gitlab` is kept; `http://` is allowed for tests and private set-ups).
    pub url: String,
    /// Project id (`42`) or full path (`infra/dist-mirror-shard01`).
    pub project: String,
    /// Branch or tag to run the pipeline for.
    pub git_ref: String,
    /// Pipeline variables, in order.
    pub variables: Vec<(String, String)>,
    /// Credentials.
    pub auth: Auth,
}

/// The pipeline GitLab created, as its API reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct PipelineInfo {
    /// Pipeline id.
    pub id: u64,
    /// `created`, `pending`, `running`, `success`, `failed`, `canceled`,
    /// `skipped`, `manual`, `scheduled`, ...
    pub status: String,
    /// The pipeline's page.
    #[serde(default)]
    pub web_url: String,
}

impl PipelineInfo {
    /// Whether the status is final: `success`, `failed`, `canceled`,
    /// `skipped`, or `manual` (waiting for a person, which this tool does
    /// not do).
    pub fn is_finished(&self) -> bool {
        matches!(
            self.status.as_str(),
            "success" | "failed" | "canceled" | "skipped" | "manual"
        )
    }
}

/// A failed trigger or wait.
#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    /// The URL is not usable.
    #[error("invalid GitLab URL {url:?}: {reason}")]
    Url {
        /// The URL as given.
        url: String,
        /// Why it is refused.
        reason: String,
    },
    /// The API call failed (connection, authentication, HTTP error).
    #[error("GitLab API call failed: {action}")]
    Api {
        /// What was being done.
        action: String,
        /// The client's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// `--wait` without an access token to read the pipeline.
    #[error(
        "--wait needs an access token (GITLAB_TOKEN) to read the pipeline's status; a trigger token cannot"
    )]
    NoReadToken,
    /// The pipeline ended without success.
    #[error("pipeline {} ended with status {}: {}", .0.id, .0.status, .0.web_url)]
    Unsuccessful(PipelineInfo),
    /// `--wait-timeout` passed.
    #[error("pipeline {} still {} after {}s: {}", .0.id, .0.status, .1.as_secs(), .0.web_url)]
    WaitTimeout(PipelineInfo, Duration),
}

/// The run mode as pipeline variables: the names `pipeline generate` reads
/// (`MIRRORER_SYNCERS`, `MIRRORER_SYNCERS_EXCLUDE`, `MIRRORER_SNAPSHOT`, `MIRRORER_PUBLISH_ALL`,
/// `MIRRORER_CATALOG_REBUILD`, `MIRRORER_SKIP_REMOTE`, `MIRRORER_DRY_RUN`),
/// only those that are set.
pub fn mode_variables(run_mode: &RunMode) -> Vec<(String, String)> {
    let mut vars = Vec::new();
    let mut set = |k: &str, v: String| vars.push((k.to_owned(), v));
    match &run_mode.mode {
        Mode::Full { syncers, exclude } if syncers.is_empty() && exclude.is_empty() => {}
        Mode::Full { syncers, exclude } if syncers.is_empty() => {
            set("MIRRORER_SYNCERS_EXCLUDE", exclude.join(","));
        }
        Mode::Full { syncers, .. } => set("MIRRORER_SYNCERS", syncers.join(",")),
        Mode::Republish { snapshot } => set("MIRRORER_SNAPSHOT", snapshot.clone()),
        Mode::PublishAll => set("MIRRORER_PUBLISH_ALL", "true".to_owned()),
        Mode::CatalogRebuild => set("MIRRORER_CATALOG_REBUILD", "true".to_owned()),
    }
    if run_mode.skip_remote {
        set("MIRRORER_SKIP_REMOTE", "true".to_owned());
    }
    if run_mode.dry_run {
        set("MIRRORER_DRY_RUN", "true".to_owned());
    }
    vars
}

/// Checks the run-mode flags for `trigger` the way `generate` will read
/// them: the same validation, and no syncer name that a comma list cannot
/// carry.
///
/// # Errors
/// A message naming the bad flag (a usage error).
pub fn validate_flags(flags: &ModeFlags) -> Result<RunMode, String> {
    for (values, flag, var) in [
        (&flags.syncers, "--syncer", "MIRRORER_SYNCERS"),
        (
            &flags.exclude_syncers,
            "--exclude-syncer",
            "MIRRORER_SYNCERS_EXCLUDE",
        ),
    ] {
        if let Some(bad) = values
            .iter()
            .find(|s| s.contains(',') || s.trim() != s.as_str())
        {
            return Err(format!(
                "{flag} {bad:?}: a syncer sent as {var} must not contain a comma or surrounding blanks"
            ));
        }
    }
    super::mode::resolve(flags, |_| None).map_err(|e| e.to_string())
}

/// `(protocol is https, host with port and path prefix)` of a GitLab URL.
fn split_url(url: &str) -> Result<(bool, String), TriggerError> {
    let bad = |reason: &str| TriggerError::Url {
        url: crate::redact::text(url).into_owned(),
        reason: reason.to_owned(),
    };
    let (https, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else if url.contains("://") {
        return Err(bad("only http:// and https:// URLs are supported"));
    } else {
        (true, url)
    };
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() || rest.starts_with('/') {
        return Err(bad("no host name"));
    }
    if rest.contains(['?', '#', '@', ' ']) {
        return Err(bad(
            "the URL must be GitLab's base URL, without user, query or fragment",
        ));
    }
    Ok((https, rest.to_owned()))
}

fn api_error<E: std::error::Error + Send + Sync + 'static>(
    action: impl Into<String>,
) -> impl FnOnce(E) -> TriggerError {
    let action = action.into();
    move |e| TriggerError::Api {
        action,
        source: Box::new(e),
    }
}

/// Like [`api_error`] for the client's errors, without the `gitlab` crate's
/// `client error: ...` wrapper that would repeat the message as its cause.
fn query_error(
    action: impl Into<String>,
) -> impl FnOnce(gitlab::api::ApiError<ClientError>) -> TriggerError {
    let action = action.into();
    move |e| TriggerError::Api {
        action,
        source: match e {
            gitlab::api::ApiError::Client { source } => Box::new(source),
            other => Box::new(other),
        },
    }
}

fn client(url: &str, token: Option<&Secret>) -> Result<Client, TriggerError> {
    let (https, host) = split_url(url)?;
    Client::new(https, &host, token.map(|t| t.0.as_str())).map_err(query_error(format!(
        "connect to {}",
        crate::redact::text(url)
    )))
}

/// `POST /projects/:id/trigger/pipeline`, which the `gitlab` crate does not
/// provide.
struct TriggerPipeline<'a> {
    project: NameOrId<'a>,
    token: &'a Secret,
    git_ref: &'a str,
    variables: &'a [(String, String)],
}

impl Endpoint for TriggerPipeline<'_> {
    fn method(&self) -> Method {
        Method::POST
    }

    fn endpoint(&self) -> Cow<'static, str> {
        format!("projects/{}/trigger/pipeline", self.project).into()
    }

    fn body(&self) -> Result<Option<(&'static str, Vec<u8>)>, BodyError> {
        let mut params = FormParams::default();
        params.push("token", self.token.0.as_str());
        params.push("ref", self.git_ref);
        for (k, v) in self.variables {
            params.push(format!("variables[{k}]"), v.as_str());
        }
        params.into_body()
    }
}

fn project_id(project: &str) -> NameOrId<'_> {
    match project.parse::<u64>() {
        Ok(id) => NameOrId::Id(id),
        Err(_) => NameOrId::Name(project.into()),
    }
}

/// Creates the pipeline and returns what GitLab reports.
///
/// # Errors
/// [`TriggerError::Url`] or [`TriggerError::Api`].
pub fn trigger(req: &TriggerRequest) -> Result<PipelineInfo, TriggerError> {
    let action = format!("create a pipeline for {} at {}", req.project, req.git_ref);
    match &req.auth {
        Auth::TriggerToken { token, .. } => {
            let api = client(&req.url, None)?;
            let endpoint = TriggerPipeline {
                project: project_id(&req.project),
                token,
                git_ref: &req.git_ref,
                variables: &req.variables,
            };
            endpoint.query(&api).map_err(query_error(action))
        }
        Auth::AccessToken(token) => {
            let api = client(&req.url, Some(token))?;
            let mut variables = Vec::with_capacity(req.variables.len());
            for (k, v) in &req.variables {
                let variable = PipelineVariable::builder()
                    .key(k.as_str())
                    .value(v.as_str())
                    .build()
                    .map_err(api_error(action.clone()))?;
                variables.push(variable);
            }
            let endpoint = CreatePipeline::builder()
                .project(project_id(&req.project))
                .ref_(req.git_ref.as_str())
                .variables(variables.into_iter())
                .build()
                .map_err(|e| TriggerError::Api {
                    action: action.clone(),
                    source: Box::new(e),
                })?;
            endpoint.query(&api).map_err(query_error(action))
        }
    }
}

/// Follows pipeline `info` until it finishes, calling `on_status` whenever
/// its status changes; polls every `poll`, gives up after `timeout`.
///
/// # Errors
/// [`TriggerError::NoReadToken`] without an access token,
/// [`TriggerError::Unsuccessful`] if it ends other than `success`,
/// [`TriggerError::WaitTimeout`], or an API error.
pub fn wait(
    req: &TriggerRequest,
    mut info: PipelineInfo,
    poll: Duration,
    timeout: Option<Duration>,
    mut on_status: impl FnMut(&PipelineInfo),
) -> Result<PipelineInfo, TriggerError> {
    let token = match &req.auth {
        Auth::AccessToken(t) => t,
        Auth::TriggerToken {
            read_token: Some(t),
            ..
        } => t,
        Auth::TriggerToken {
            read_token: None, ..
        } => return Err(TriggerError::NoReadToken),
    };
    let api = client(&req.url, Some(token))?;
    let started = Instant::now();
    loop {
        if info.is_finished() {
            return if info.status == "success" {
                Ok(info)
            } else {
                Err(TriggerError::Unsuccessful(info))
            };
        }
        if let Some(limit) = timeout
            && started.elapsed() >= limit
        {
            return Err(TriggerError::WaitTimeout(info, limit));
        }
        std::thread::sleep(poll);
        let endpoint = Pipeline::builder()
            .project(project_id(&req.project))
            .pipeline(info.id)
            .build()
            .map_err(|e| TriggerError::Api {
                action: format!("read pipeline {}", info.id),
                source: Box::new(e),
            })?;
        let next: PipelineInfo = endpoint
            .query(&api)
            .map_err(query_error(format!("read pipeline {}", info.id)))?;
        if next.status != info.status {
            on_status(&next);
        }
        info = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            split_url("https://gitlab.example.org/").unwrap(),
            (true, "gitlab.example.org".into())
        );
        assert_eq!(
            split_url("http://127.0.0.1:8080").unwrap(),
            (false, "127.0.0.1:8080".into())
        );
        assert_eq!(
            split_url("gitlab.example.org/gitlab").unwrap(),
            (true, "gitlab.example.org/gitlab".into())
        );
        assert!(split_url("ftp://x").is_err());
        assert!(split_url("https://").is_err());
        assert!(split_url("https://user:pw@host").is_err());
    }

    #[test]
    fn secrets_do_not_show() {
        let s = Secret("glpat-123".into());
        assert_eq!(format!("{s} {s:?}"), "*** ***");
        let auth = Auth::TriggerToken {
            token: s.clone(),
            read_token: Some(s),
        };
        assert!(!format!("{auth:?}").contains("glpat"));
    }
}
