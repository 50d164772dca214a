//! Reading a remote shard's `status.json` over HTTP(S) for `mirrorer check
//! --url` (cargo feature `gitlab`, which brings the blocking `reqwest`
//! client the crate already uses; without it `--url` is refused).
//!
//! Bounded: one timeout for the whole request ([`FETCH_TIMEOUT`] or the
//! caller's), at most 3 redirects, a body of at most
//! [`super::MAX_STATUS_BYTES`]. Only `http` and `https` URLs. Credentials
//! in the URL (`https://user:pass@host/...`) are sent as HTTP basic
//! authentication but never shown: [`display_url`] drops them and errors
//! are reported without their URL.

use std::time::Duration;

/// The default timeout of the whole request.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// `url` as it may be shown: user name, password, query and fragment
/// dropped (they may hold credentials or tokens). A URL that does not
/// parse is shown as `<invalid URL>`.
pub fn display_url(url: &str) -> String {
    match split_url(url) {
        Some((scheme, host_path)) => format!("{scheme}://{host_path}"),
        None => "<invalid URL>".to_owned(),
    }
}

/// `(scheme, host and path without userinfo, query or fragment)`.
fn split_url(url: &str) -> Option<(&str, String)> {
    let (scheme, rest) = url.split_once("://")?;
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    let rest = &rest[..end];
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let clean = format!("{host}{path}");
    if clean.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return None;
    }
    Some((scheme, clean))
}

/// Fetches `url` and returns its body (at most
/// [`super::MAX_STATUS_BYTES`] bytes).
///
/// # Errors
/// A sentence without the URL's credentials: a URL that is not http(s),
/// a connection failure or timeout, a status other than 200, a body too
/// large.
#[cfg(feature = "gitlab")]
pub fn fetch(url: &str, timeout: Duration) -> Result<Vec<u8>, String> {
    use std::io::Read as _;
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("invalid URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "the URL must be http:// or https://, found {}://",
            parsed.scheme()
        ));
    }
    let client = reqwest::blocking::Client::builder()
        .user_agent(concat!("mirrorer/", env!("CARGO_PKG_VERSION"), " check"))
        .redirect(reqwest::redirect::Policy::limited(3))
        .timeout(timeout)
        .build()
        .map_err(|e| e.without_url().to_string())?;
    let response = client
        .get(parsed)
        .send()
        .map_err(|e| super::chain(&e.without_url()))?;
    let status = response.status();
    if status != reqwest::StatusCode::OK {
        return Err(format!("HTTP status {status}"));
    }
    let max = super::MAX_STATUS_BYTES;
    let mut body = Vec::new();
    response
        .take(max + 1)
        .read_to_end(&mut body)
        .map_err(|e| format!("reading the body: {e}"))?;
    if body.len() as u64 > max {
        return Err(format!("the body is larger than {max} bytes"));
    }
    Ok(body)
}

/// Without the `gitlab` feature there is no HTTP client.
///
/// # Errors
/// Always: a sentence saying so.
#[cfg(not(feature = "gitlab"))]
pub fn fetch(_url: &str, _timeout: Duration) -> Result<Vec<u8>, String> {
    Err("this mirrorer was built without HTTP support (cargo feature `gitlab`)".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_never_shown() {
        assert_eq!(
            display_url("https://u:secret@shard1.example/metadata/status.json?token=x#f"),
            "https://shard1.example/metadata/status.json"
        );
        assert_eq!(display_url("not a url"), "<invalid URL>");
    }
}
