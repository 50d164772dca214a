//! Stand-ins for HTTP servers (httpmock) the binary talks to.

use httpmock::{Mock, MockServer};
use serde_json::Value;

/// A mock on `server` that answers every request with `status` and, when
/// given, the JSON `body`; its `assert_calls` tells how often it was hit.
pub fn answer_any(server: &MockServer, status: u16, body: Option<Value>) -> Mock<'_> {
    server.mock(|when, then| {
        when.any_request();
        let then = then.status(status);
        if let Some(body) = body {
            then.json_body(body);
        }
    })
}
