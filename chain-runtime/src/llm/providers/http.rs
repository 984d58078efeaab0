//! What both providers share: sending, classifying HTTP errors, reading SSE.

use std::time::Duration;

use reqwest::header::HeaderMap;

use crate::llm::LlmError;

/// Classifies a non-success response; the body is kept, never flattened away.
pub(super) fn classify(status: u16, headers: &HeaderMap, body: String) -> LlmError {
    let lower = body.to_lowercase();
    match status {
        429 if lower.contains("insufficient_quota")
            || lower.contains("quota")
            || lower.contains("credit") =>
        {
            LlmError::QuotaExhausted { status, body }
        }
        429 => LlmError::RateLimited {
            status,
            retry_after: retry_after(headers),
            body,
        },
        401 | 403 => LlmError::Auth { status, body },
        400 | 404 | 413 | 422 => LlmError::BadRequest { status, body },
        408 => LlmError::Timeout,
        500 | 502 | 503 | 504 | 529 => LlmError::Overloaded { status, body },
        _ => LlmError::Http { status, body },
    }
}

/// `retry-after-ms` (milliseconds) or `Retry-After` (seconds).
pub(super) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = header("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        return Some(Duration::from_secs_f64(ms.max(0.0) / 1000.0));
    }
    header("retry-after")
        .and_then(|v| v.parse::<f64>().ok())
        .map(|s| Duration::from_secs_f64(s.max(0.0)))
}

/// A transport failure, with what was received so far.
pub(super) fn transport(error: &reqwest::Error, partial: String) -> LlmError {
    if error.is_timeout() {
        LlmError::Timeout
    } else {
        // reqwest's messages name the URL, never headers: no key can leak here.
        LlmError::Transport {
            message: error.to_string(),
            partial,
        }
    }
}

/// Sends `body` and returns the response, or the classified error.
pub(super) async fn send(
    request: reqwest::RequestBuilder,
    body: Vec<u8>,
) -> Result<reqwest::Response, LlmError> {
    let response = request
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| transport(&e, String::new()))?;
    let status = response.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(response);
    }
    let headers = response.headers().clone();
    let body = response.text().await.unwrap_or_default();
    Err(classify(status, &headers, body))
}

/// Reads a server-sent-events body, calling `on_data` with each event's
/// `data:` payload (and its `event:` name, if any); `on_data` returns `false`
/// to stop. A stream that ends without a proper finish is the caller's to judge.
pub(super) async fn read_sse(
    mut response: reqwest::Response,
    partial: &mut String,
    mut on_data: impl FnMut(Option<&str>, &str, &mut String) -> Result<bool, LlmError>,
) -> Result<(), LlmError> {
    let mut buffer = String::new();
    let mut event: Option<String> = None;
    loop {
        let chunk = match response.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => return Ok(()),
            Err(error) => return Err(transport(&error, partial.clone())),
        };
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find('\n') {
            let line = buffer[..end].trim_end_matches('\r').to_owned();
            buffer.drain(..=end);
            if line.is_empty() {
                event = None;
            } else if let Some(name) = line.strip_prefix("event:") {
                event = Some(name.trim().to_owned());
            } else if let Some(data) = line.strip_prefix("data:")
                && !on_data(event.as_deref(), data.trim(), partial)?
            {
                return Ok(());
            }
        }
    }
}

/// Parses a JSON body, or says it is not what the provider documents.
pub(super) fn decode(body: &str) -> Result<serde_json::Value, LlmError> {
    serde_json::from_str(body).map_err(|error| LlmError::Decode {
        message: error.to_string(),
        body: body.chars().take(2000).collect(),
    })
}

/// A shared client: rustls, a connect timeout, and a whole-request timeout.
pub(super) fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(timeout)
        .build()
        .unwrap_or_default()
}
