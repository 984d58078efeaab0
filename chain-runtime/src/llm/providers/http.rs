//! What both providers share: sending, classifying HTTP errors, reading SSE.

use std::time::Duration;

use reqwest::header::HeaderMap;

use crate::llm::LlmError;

/// The most of an error body kept in an error (and so in logs and events).
const MAX_ERROR_BODY: usize = 4096;

/// The longest `Retry-After` honoured: a provider asking for more gets a
/// retry after this long (and may ask again).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

/// How long a model call may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Timeouts {
    /// A reply that is not streamed, whole; for a stream, until its response
    /// starts (the status line and headers).
    pub(super) request: Duration,
    /// A stream that sends nothing for this long is cut; while tokens keep
    /// coming, a stream has no overall limit (`max_tokens` bounds it).
    pub(super) idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            request: Duration::from_secs(120),
            idle: Duration::from_secs(60),
        }
    }
}

/// The longest SSE line read; a longer one is an error, not a growing buffer.
const MAX_SSE_LINE: usize = 16 * 1024 * 1024;

/// An error body as errors keep it: at most [`MAX_ERROR_BODY`] bytes, with
/// the API key (some servers echo it) replaced by `***`.
pub(super) fn error_body(body: &str, secret: Option<&str>) -> String {
    let mut kept = match body.char_indices().nth(MAX_ERROR_BODY) {
        Some((end, _)) => format!("{}… ({} bytes in all)", &body[..end], body.len()),
        None => body.to_owned(),
    };
    if let Some(secret) = secret.filter(|s| s.len() >= 4) {
        kept = kept.replace(secret, "***");
    }
    kept
}

/// A URL as errors and `Debug` show it: userinfo and the query string, where
/// credentials hide, are replaced by `***`.
pub(crate) fn redact_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let host = match authority.rsplit_once('@') {
        Some((_, host)) => format!("***@{host}"),
        None => authority.to_owned(),
    };
    let path = match path.split_once('?') {
        Some((path, _)) => format!("{path}?***"),
        None => path.to_owned(),
    };
    if scheme.is_empty() {
        format!("{host}{path}")
    } else {
        format!("{scheme}://{host}{path}")
    }
}

/// The URL of `path` under `base`: a query string on the base URL (Azure's
/// `?api-version=…`) stays at the end, after the path.
pub(super) fn endpoint(base: &str, path: &str) -> String {
    match base.split_once('?') {
        Some((base, query)) => format!("{}{path}?{query}", base.trim_end_matches('/')),
        None => format!("{}{path}", base.trim_end_matches('/')),
    }
}

/// Classifies a non-success response; the body is kept (bounded, with the
/// key redacted), never flattened away.
pub(super) fn classify(status: u16, headers: &HeaderMap, body: String) -> LlmError {
    let lower = body.to_lowercase();
    match status {
        300..=399 => LlmError::Http {
            status,
            body: format!(
                "the provider answered with a redirect to {}; redirects are not followed, so credentials never reach another address: set the base URL to the final address",
                headers
                    .get("location")
                    .and_then(|v| v.to_str().ok())
                    .map_or_else(|| "(no location)".to_owned(), redact_url)
            ),
        },
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
        408 => LlmError::timeout(None, false, String::new()),
        500 | 502 | 503 | 504 | 529 => LlmError::Overloaded { status, body },
        _ => LlmError::Http { status, body },
    }
}

/// `retry-after-ms` (milliseconds) or `Retry-After` (seconds), at most
/// [`MAX_RETRY_AFTER`]; values that are not finite non-negative numbers are
/// ignored (a server's `inf` must not panic a step).
pub(super) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .and_then(|v| v.parse::<f64>().ok())
    };
    let seconds = match header("retry-after-ms") {
        Some(ms) => ms / 1000.0,
        None => header("retry-after")?,
    };
    if !seconds.is_finite() || seconds < 0.0 {
        return None;
    }
    Some(Duration::try_from_secs_f64(seconds).map_or(MAX_RETRY_AFTER, |d| d.min(MAX_RETRY_AFTER)))
}

/// A transport failure, with what was received so far. A request that could
/// not even be built (a malformed URL, a key with a newline) is a
/// configuration error, which no retry can fix. The message names the cause
/// chain, never the URL (it may carry credentials). A timeout is the
/// client's whole-request timeout, `after`.
pub(super) fn transport(error: reqwest::Error, partial: String, after: Duration) -> LlmError {
    if error.is_timeout() {
        return LlmError::timeout(Some(after), false, partial);
    }
    let builder = error.is_builder();
    let error = error.without_url();
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    if builder {
        LlmError::Config { message }
    } else {
        LlmError::Transport {
            message,
            partial,
            usage: crate::llm::Usage::default(),
        }
    }
}

/// Sends `body` and returns the response, or the classified error (whose
/// body never holds `secret`). A stream's response must start within
/// `timeouts.request` (the client times out a plain call as a whole).
pub(super) async fn send(
    request: reqwest::RequestBuilder,
    body: Vec<u8>,
    secret: Option<&str>,
    timeouts: Timeouts,
    streaming: bool,
) -> Result<reqwest::Response, LlmError> {
    let sent = request
        .header("content-type", "application/json")
        .body(body)
        .send();
    let sent = if streaming {
        match tokio::time::timeout(timeouts.request, sent).await {
            Ok(sent) => sent,
            Err(_) => {
                return Err(LlmError::timeout(
                    Some(timeouts.request),
                    false,
                    String::new(),
                ));
            }
        }
    } else {
        sent.await
    };
    let response = sent.map_err(|e| transport(e, String::new(), timeouts.request))?;
    let status = response.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(response);
    }
    let headers = response.headers().clone();
    let body = response.text().await.unwrap_or_default();
    Err(classify(status, &headers, error_body(&body, secret)))
}

/// Reads a server-sent-events body, calling `on_data` with each event's
/// `data:` payload (and its `event:` name, if any); `on_data` returns `false`
/// to stop. A stream quiet for `timeouts.idle` ends in a timeout that keeps
/// the text so far. A stream that ends without a proper finish is the
/// caller's to judge.
pub(super) async fn read_sse(
    mut response: reqwest::Response,
    partial: &mut String,
    timeouts: Timeouts,
    mut on_data: impl FnMut(Option<&str>, &str, &mut String) -> Result<bool, LlmError>,
) -> Result<(), LlmError> {
    let mut lines = SseLines::default();
    let mut event: Option<String> = None;
    loop {
        let chunk = match tokio::time::timeout(timeouts.idle, response.chunk()).await {
            Ok(Ok(Some(chunk))) => chunk,
            Ok(Ok(None)) => return Ok(()),
            Ok(Err(error)) => return Err(transport(error, partial.clone(), timeouts.request)),
            Err(_) => {
                return Err(LlmError::timeout(
                    Some(timeouts.idle),
                    true,
                    partial.clone(),
                ));
            }
        };
        let mut stop = false;
        lines.feed(&chunk, |line| {
            if stop {
                return Ok(());
            }
            if line.is_empty() {
                event = None;
            } else if let Some(name) = line.strip_prefix("event:") {
                event = Some(name.trim().to_owned());
            } else if let Some(data) = line.strip_prefix("data:") {
                stop = !on_data(event.as_deref(), data.trim(), partial)?;
            }
            Ok(())
        })?;
        if stop {
            return Ok(());
        }
    }
}

/// Splits a byte stream into lines: bytes are kept until their line is
/// whole, so a character split between two reads arrives intact, and each
/// read is scanned once (no quadratic re-scanning of a long buffer).
#[derive(Debug, Default)]
pub(super) struct SseLines {
    pending: Vec<u8>,
}

impl SseLines {
    /// Adds `bytes` and calls `line` with every line they complete (without
    /// its `\n` or `\r\n`).
    pub(super) fn feed(
        &mut self,
        bytes: &[u8],
        mut line: impl FnMut(&str) -> Result<(), LlmError>,
    ) -> Result<(), LlmError> {
        let mut start = 0;
        for end in memchr_all(bytes) {
            let whole = if self.pending.is_empty() {
                &bytes[start..end]
            } else {
                self.pending.extend_from_slice(&bytes[start..end]);
                &self.pending[..]
            };
            let text = String::from_utf8_lossy(whole);
            line(text.strip_suffix('\r').unwrap_or(&text))?;
            self.pending.clear();
            start = end + 1;
        }
        if self.pending.len() + (bytes.len() - start) > MAX_SSE_LINE {
            return Err(LlmError::Decode {
                message: format!("an event-stream line is longer than {MAX_SSE_LINE} bytes"),
                body: String::new(),
            });
        }
        self.pending.extend_from_slice(&bytes[start..]);
        Ok(())
    }
}

/// The positions of every `\n` in `bytes`.
fn memchr_all(bytes: &[u8]) -> impl Iterator<Item = usize> + '_ {
    bytes
        .iter()
        .enumerate()
        .filter_map(|(i, &b)| (b == b'\n').then_some(i))
}

/// Parses a JSON body, or says it is not what the provider documents.
pub(super) fn decode(body: &str) -> Result<serde_json::Value, LlmError> {
    serde_json::from_str(body).map_err(|error| LlmError::Decode {
        message: error.to_string(),
        body: body.chars().take(2000).collect(),
    })
}

/// A shared client: rustls, a connect timeout, and no redirects (a redirect
/// would carry the API key to another address). A plain call has a
/// whole-request timeout; a stream is timed by [`send`] and [`read_sse`]
/// (to its start, then idle time), so a long reply that keeps coming is
/// never cut. A streaming client keeps no idle connections: servers such as
/// llama.cpp's advertise keep-alive but close the connection after a
/// streamed reply, and the next request (often a re-ask, at once) would go
/// out on the dead one.
pub(super) fn client(timeouts: Timeouts, streaming: bool) -> reqwest::Client {
    let builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none());
    let builder = if streaming {
        builder.pool_max_idle_per_host(0)
    } else {
        builder.timeout(timeouts.request)
    };
    builder.build().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::{SseLines, error_body, redact_url, retry_after};
    use reqwest::header::{HeaderMap, HeaderValue};
    use std::time::Duration;

    #[test]
    fn a_query_on_the_base_url_stays_at_the_end() {
        assert_eq!(
            super::endpoint("http://h/v1?api-version=2", "/chat/completions"),
            "http://h/v1/chat/completions?api-version=2"
        );
        assert_eq!(
            super::endpoint("http://h/v1/", "/chat/completions"),
            "http://h/v1/chat/completions"
        );
    }

    #[test]
    fn retry_after_never_panics_and_is_capped() {
        for (name, value, expected) in [
            ("retry-after", "inf", None),
            ("retry-after", "1e400", None),
            ("retry-after", "NaN", None),
            ("retry-after", "-3", None),
            ("retry-after", "1e20", Some(Duration::from_secs(600))),
            ("retry-after", "2.5", Some(Duration::from_millis(2500))),
            ("retry-after-ms", "inf", None),
            ("retry-after-ms", "1500", Some(Duration::from_millis(1500))),
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(name, HeaderValue::from_static(value));
            assert_eq!(retry_after(&headers), expected, "{name}: {value}");
        }
    }

    #[test]
    fn error_bodies_are_bounded_and_never_hold_the_key() {
        let echoed = format!("bad key sk-canary-123 {}", "x".repeat(60_000));
        let kept = error_body(&echoed, Some("sk-canary-123"));
        assert!(!kept.contains("sk-canary-123"));
        assert!(kept.len() < 5_000, "{}", kept.len());
        assert_eq!(
            redact_url("https://user:pw@host:8080/v1/x?key=sk-1"),
            "https://***@host:8080/v1/x?***"
        );
        assert_eq!(
            redact_url("http://localhost:8080/v1"),
            "http://localhost:8080/v1"
        );
    }

    /// Every split of a stream into two reads gives the same lines, exactly.
    #[test]
    fn sse_lines_survive_every_split() {
        let stream = "data: {\"t\": \"café ☕ 𝄞\"}\r\n\nevent: x\ndata: ü\n\n".as_bytes();
        let read = |parts: &[&[u8]]| {
            let mut lines = SseLines::default();
            let mut out = Vec::new();
            for part in parts {
                lines
                    .feed(part, |line| {
                        out.push(line.to_owned());
                        Ok(())
                    })
                    .expect("reads");
            }
            out
        };
        let whole = read(&[stream]);
        assert_eq!(whole[0], "data: {\"t\": \"café ☕ 𝄞\"}");
        for split in 0..=stream.len() {
            assert_eq!(
                read(&[&stream[..split], &stream[split..]]),
                whole,
                "split at {split}"
            );
        }
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(read(&bytes), whole, "one byte at a time");
    }
}
