//! The HTTP client `pipeline trigger` sends the `gitlab` crate's endpoints
//! through: a `reqwest` blocking client that never takes a token to
//! another origin.
//!
//! The `gitlab` crate's own client follows up to 10 redirects (reqwest's
//! default policy), and reqwest then re-sends a 307/308 request's body (the
//! trigger token is a form field) and every header but `Authorization` and
//! cookies (the access token is the `PRIVATE-TOKEN` header) to wherever the
//! `Location` points. This client follows a redirect only within the origin
//! of the GitLab URL (same scheme, host and port; at most
//! [`MAX_REDIRECTS`]); any other redirect ends the call with
//! [`ClientError::Redirect`], which names the target (its password masked,
//! [`crate::redact::text`]) and has sent nothing there.
//!
//! Response bodies are read up to [`MAX_BODY`] bytes; requests time out
//! after [`TIMEOUT`].

use std::io::Read as _;
use std::time::Duration;

use bytes::Bytes;
use gitlab::api::{ApiError, RestClient};
use reqwest::Url;
use reqwest::redirect::Policy;

/// Same-origin redirects followed per request.
pub const MAX_REDIRECTS: usize = 5;

/// The largest response body read (bytes); a larger one is an error.
pub const MAX_BODY: u64 = 16 * 1024 * 1024;

/// Time limit of one request, connection to last byte.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// Why a request failed before GitLab's answer could be read.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server redirected to another origin (or more than
    /// [`MAX_REDIRECTS`] times); nothing was sent to the target.
    #[error(
        "GitLab answered {status} with a redirect to {location}, which is not followed: it leaves the origin of the GitLab URL (no token is sent elsewhere) or is more than {MAX_REDIRECTS} in a row; pass the final GitLab URL with --url"
    )]
    Redirect {
        /// The HTTP status (`307 Temporary Redirect`).
        status: String,
        /// The absolute target, its password masked.
        location: String,
    },
    /// The request could not be sent or the answer not read.
    #[error("communication with GitLab failed")]
    Http(#[from] reqwest::Error),
    /// The request could not be built.
    #[error("could not build the request")]
    Request(#[from] http::Error),
    /// An endpoint of the `gitlab` crate could not be built.
    #[error("could not build the request: {0}")]
    Endpoint(String),
    /// The answer's body could not be read or exceeds [`MAX_BODY`].
    #[error("could not read GitLab's answer")]
    Body(#[source] std::io::Error),
}

/// A GitLab REST client (API v4 under `base`) with an optional access token
/// sent as `PRIVATE-TOKEN`.
pub struct Client {
    http: reqwest::blocking::Client,
    rest_url: Url,
    token: Option<String>,
}

fn origin(url: &Url) -> (String, Option<String>, Option<u16>) {
    (
        url.scheme().to_owned(),
        url.host_str().map(str::to_owned),
        url.port_or_known_default(),
    )
}

impl Client {
    /// A client for `protocol://host/api/v4/` (`host` may carry a port and a
    /// path prefix); with a token, the token is checked with `GET /user`
    /// as the `gitlab` crate does.
    ///
    /// # Errors
    /// A bad URL, a client that cannot be built, or the failed check.
    pub fn new(
        https: bool,
        host: &str,
        token: Option<&str>,
    ) -> Result<Client, ApiError<ClientError>> {
        let protocol = if https { "https" } else { "http" };
        let rest_url = Url::parse(&format!("{protocol}://{host}/api/v4/"))?;
        let home = origin(&rest_url);
        let policy = Policy::custom(move |attempt| {
            if attempt.previous().len() <= MAX_REDIRECTS && origin(attempt.url()) == home {
                attempt.follow()
            } else {
                attempt.stop()
            }
        });
        let http = reqwest::blocking::Client::builder()
            .user_agent(concat!("mirrorer/", env!("CARGO_PKG_VERSION")))
            .redirect(policy)
            .timeout(TIMEOUT)
            .build()
            .map_err(|e| ApiError::client(ClientError::Http(e)))?;
        let client = Client {
            http,
            rest_url,
            token: token.map(str::to_owned),
        };
        if client.token.is_some() {
            use gitlab::api::Query as _;
            let user = gitlab::api::users::CurrentUser::builder()
                .build()
                .map_err(|e| ApiError::client(ClientError::Endpoint(e.to_string())))?;
            gitlab::api::ignore(user).query(&client)?;
        }
        Ok(client)
    }

    fn send(
        &self,
        mut request: http::request::Builder,
        body: Vec<u8>,
    ) -> Result<http::Response<Bytes>, ClientError> {
        if let (Some(token), Some(headers)) = (&self.token, request.headers_mut()) {
            let mut value =
                http::HeaderValue::from_str(token).map_err(|e| ClientError::Request(e.into()))?;
            value.set_sensitive(true);
            headers.insert("PRIVATE-TOKEN", value);
        }
        let request: reqwest::blocking::Request = request.body(body)?.try_into()?;
        let rsp = self.http.execute(request)?;
        let status = rsp.status();
        if status.is_redirection()
            && let Some(location) = rsp.headers().get(http::header::LOCATION)
        {
            let location = String::from_utf8_lossy(location.as_bytes());
            let target = rsp
                .url()
                .join(&location)
                .map_or_else(|_| location.into_owned(), |u| u.to_string());
            return Err(ClientError::Redirect {
                status: status.to_string(),
                location: crate::redact::text(&target).into_owned(),
            });
        }
        let mut out = http::Response::builder()
            .status(status)
            .version(rsp.version());
        if let Some(headers) = out.headers_mut() {
            for (key, value) in rsp.headers() {
                headers.insert(key, value.clone());
            }
        }
        let mut data = Vec::new();
        rsp.take(MAX_BODY + 1)
            .read_to_end(&mut data)
            .map_err(ClientError::Body)?;
        if data.len() as u64 > MAX_BODY {
            return Err(ClientError::Body(std::io::Error::other(format!(
                "the answer is larger than {MAX_BODY} bytes"
            ))));
        }
        Ok(out.body(Bytes::from(data))?)
    }
}

impl RestClient for Client {
    type Error = ClientError;

    fn rest_endpoint(&self, endpoint: &str) -> Result<Url, ApiError<ClientError>> {
        Ok(self.rest_url.join(endpoint)?)
    }
}

impl gitlab::api::Client for Client {
    fn rest(
        &self,
        request: http::request::Builder,
        body: Vec<u8>,
    ) -> Result<http::Response<Bytes>, ApiError<ClientError>> {
        self.send(request, body).map_err(ApiError::client)
    }
}
