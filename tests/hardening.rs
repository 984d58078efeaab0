//! Defects found under fuzzing, fault injection and hostile servers, each
//! reproduced against an in-process HTTP server: redirects never carry the
//! key away, error bodies are bounded and redacted, a `Retry-After` of `inf`
//! is a rate limit (not a panic), absurd token counts are decode errors.

#[allow(dead_code)]
#[path = "support/fake_server.rs"]
mod fake_server;

use fake_server::{FakeServer, Reply, json};
use prompt_chain::llm::{Anthropic, ChatRequest, LanguageModel, LlmError, OpenAiCompatible, Usage};
use serde_json::json as j;

const KEY: &str = "sk-canary-7f3a9";

fn models(base: &str) -> Vec<Box<dyn LanguageModel>> {
    vec![
        Box::new(OpenAiCompatible::new(format!("{base}/v1"), "m").api_key(KEY)),
        Box::new(Anthropic::new("m", KEY).base_url(base)),
    ]
}

#[tokio::test]
async fn redirects_are_not_followed_and_the_key_stays_home() {
    for code in [301u16, 302, 303, 307, 308] {
        let elsewhere = FakeServer::start(vec![json(200, j!({}))]).await;
        let redirecting = FakeServer::start(vec![Reply::Full(
            code,
            vec![("location", format!("{}/steal?x=1", elsewhere.url))],
            String::new(),
        )])
        .await;
        for model in models(&redirecting.url) {
            let error = model
                .complete(&ChatRequest::user("hi"))
                .await
                .expect_err("a redirect is an error");
            assert!(
                matches!(&error, LlmError::Http { status, .. } if *status == code),
                "{code}: {error}"
            );
            assert!(
                error.to_string().contains("redirects are not followed"),
                "{error}"
            );
            assert!(!error.is_retryable());
        }
        assert!(
            elsewhere.received().is_empty(),
            "nothing reached the redirect's target after a {code}"
        );
    }
}

#[tokio::test]
async fn error_bodies_are_bounded_and_an_echoed_key_is_redacted() {
    let echo = format!(
        "{{\"error\": \"invalid key {KEY}\", \"pad\": \"{}\"}}",
        "x".repeat(200_000)
    );
    let server = FakeServer::start(vec![Reply::Full(401, Vec::new(), echo)]).await;
    for model in models(&server.url) {
        let error = model
            .complete(&ChatRequest::user("hi"))
            .await
            .expect_err("refused");
        let text = error.to_string();
        assert!(!text.contains(KEY), "the key leaked: {}", &text[..200]);
        assert!(text.len() < 8_000, "{} bytes kept", text.len());
        assert!(!format!("{error:?}").contains(KEY));
    }
}

#[tokio::test]
async fn credentials_in_the_base_url_never_show() {
    let model = OpenAiCompatible::new("http://user:hunter2@127.0.0.1:9/v1?key=sk-url", "m");
    let debug = format!("{model:?}");
    assert!(
        !debug.contains("hunter2") && !debug.contains("sk-url"),
        "{debug}"
    );
    let error = model
        .complete(&ChatRequest::user("hi"))
        .await
        .expect_err("nothing listens");
    let text = format!("{error} {error:?}");
    assert!(
        !text.contains("hunter2") && !text.contains("sk-url"),
        "{text}"
    );
}

#[tokio::test]
async fn an_infinite_retry_after_is_a_rate_limit_not_a_panic() {
    for value in ["inf", "1e400", "NaN", "1e20"] {
        let server = FakeServer::start(vec![Reply::Full(
            429,
            vec![("retry-after", value.to_owned())],
            "{}".to_owned(),
        )])
        .await;
        for model in models(&server.url) {
            let error = model
                .complete(&ChatRequest::user("hi"))
                .await
                .expect_err("limited");
            assert!(
                matches!(error, LlmError::RateLimited { .. }),
                "{value}: {error}"
            );
            assert!(
                error.retry_after().is_none_or(|d| d.as_secs() <= 600),
                "{value}"
            );
        }
    }
}

#[tokio::test]
async fn absurd_token_counts_are_decode_errors_and_sums_saturate() {
    let reply = j!({
        "choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": u64::MAX, "completion_tokens": 1}
    });
    let server = FakeServer::start(vec![json(200, reply)]).await;
    let model = OpenAiCompatible::new(format!("{}/v1", server.url), "m");
    let error = model
        .complete(&ChatRequest::user("hi"))
        .await
        .expect_err("absurd");
    assert!(matches!(error, LlmError::Decode { .. }), "{error}");
    let big = Usage {
        input_tokens: 1 << 63,
        output_tokens: 1 << 63,
    };
    assert_eq!((big + big).input_tokens, u64::MAX);
    assert_eq!(big.total(), u64::MAX);
}

#[tokio::test]
async fn a_malformed_base_url_is_a_configuration_error_that_is_not_retried() {
    let model = OpenAiCompatible::new("not a url at all", "m");
    let error = model
        .complete(&ChatRequest::user("hi"))
        .await
        .expect_err("malformed");
    assert!(matches!(error, LlmError::Config { .. }), "{error}");
    assert!(!error.is_retryable());
}
