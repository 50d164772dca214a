//! Fetching a shard's metadata documents over HTTP(S): reqwest's blocking
//! client (the one `pipeline trigger` uses; cargo feature `fleet`, on by
//! default, pulls it in with rustls), a timeout per request, a bounded body,
//! retries of connection failures and 5xx answers, and no credentials in any
//! message (URLs pass through [`crate::redact::text`]).

use std::io::Read as _;
use std::time::Duration;

use super::Doc;

/// What one GET gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// 2xx with a body of at most the limit.
    Body(Vec<u8>),
    /// An HTTP status outside 2xx (after redirects).
    Status(u16),
    /// No answer: connection refused, DNS, TLS, timeout, a body over the
    /// limit or cut short. The message is redacted.
    Unreachable(String),
}

/// An HTTP client for the fleet.
#[derive(Debug)]
pub struct Fetcher {
    client: reqwest::blocking::Client,
    retries: u32,
}

impl Fetcher {
    /// A client with `timeout` per request (connect and whole answer) that
    /// retries `retries` times.
    ///
    /// # Errors
    /// reqwest's builder error (no TLS backend), redacted.
    pub fn new(timeout: Duration, retries: u32) -> Result<Fetcher, String> {
        let client = reqwest::blocking::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::limited(5))
            .user_agent(concat!("mirrorer/", env!("CARGO_PKG_VERSION"), " fleet"))
            .build()
            .map_err(|e| crate::redact::text(&e.to_string()).into_owned())?;
        Ok(Fetcher { client, retries })
    }

    /// GETs `url`, reading at most `max_bytes` of body; retries a failure to
    /// answer and a 5xx status, waiting 0.5 s, 1 s, ... in between.
    pub fn get(&self, url: &str, max_bytes: u64) -> Fetched {
        let mut attempt = 0;
        loop {
            let result = self.once(url, max_bytes);
            let retry = match &result {
                Fetched::Unreachable(_) => true,
                Fetched::Status(code) => *code >= 500,
                Fetched::Body(_) => false,
            };
            if !retry || attempt >= self.retries {
                return result;
            }
            attempt += 1;
            tracing::debug!(target: "mirrorer::fleet", url = %crate::redact::text(url), attempt, "fleet_fetch_retry");
            std::thread::sleep(Duration::from_millis(500) * attempt);
        }
    }

    fn once(&self, url: &str, max_bytes: u64) -> Fetched {
        let redacted = |e: &dyn std::fmt::Display| {
            let mut text = crate::redact::text(&e.to_string()).into_owned();
            text.truncate(300);
            text
        };
        let response = match self.client.get(url).send() {
            Ok(r) => r,
            Err(e) => return Fetched::Unreachable(redacted(&crate::error::chain(&e))),
        };
        let status = response.status();
        if !status.is_success() {
            return Fetched::Status(status.as_u16());
        }
        let mut body = Vec::new();
        match response.take(max_bytes + 1).read_to_end(&mut body) {
            Ok(_) if body.len() as u64 > max_bytes => {
                Fetched::Unreachable(format!("the answer is larger than {max_bytes} bytes"))
            }
            Ok(_) => Fetched::Body(body),
            Err(e) => Fetched::Unreachable(redacted(&e)),
        }
    }
}

/// The [`Doc`] outcome of a fetch, given how to parse a body.
pub(super) fn outcome<T>(
    url: &str,
    fetched: Fetched,
    missing_ok: bool,
    parse: impl FnOnce(&[u8]) -> Result<T, String>,
) -> (Doc, Option<T>) {
    let url = crate::redact::text(url).into_owned();
    match fetched {
        Fetched::Body(bytes) => match parse(&bytes) {
            Ok(v) => (Doc::new(url, "ok", None, None), Some(v)),
            Err(e) => (Doc::new(url, "invalid", None, Some(e)), None),
        },
        Fetched::Status(404) if missing_ok => (Doc::new(url, "missing", Some(404), None), None),
        Fetched::Status(code) => (
            Doc::new(
                url,
                "http_error",
                Some(code),
                Some(format!("HTTP status {code}")),
            ),
            None,
        ),
        Fetched::Unreachable(e) => (Doc::new(url, "unreachable", None, Some(e)), None),
    }
}
