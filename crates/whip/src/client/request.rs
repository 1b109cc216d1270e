//! One WHIP request: the parts of its reply the machine reads.

use http::header;

use crate::machine::{HttpFailure, HttpReply};

/// Sends a request and collects the parts the machine reads. Errors never
/// carry the URL (WHIP URLs hold a pre-signed token).
pub(super) async fn send(builder: reqwest::RequestBuilder) -> Result<HttpReply, HttpFailure> {
    let failure = |e: reqwest::Error| {
        if e.is_timeout() {
            HttpFailure::Timeout
        } else {
            HttpFailure::Unreachable(e.without_url().to_string())
        }
    };
    let response = builder.send().await.map_err(failure)?;
    let headers = response.headers();
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let mut reply = HttpReply {
        status: response.status().as_u16(),
        location: text(header::LOCATION),
        link: headers.get_all(header::LINK).iter().filter_map(|v| v.to_str().ok()).map(str::to_owned).collect(),
        etag: text(header::ETAG),
        content_type: text(header::CONTENT_TYPE),
        body: String::new(),
    };
    reply.body = response.text().await.map_err(failure)?;
    Ok(reply)
}
