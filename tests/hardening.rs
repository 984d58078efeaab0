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
    let big = Usage::new(1 << 63, 1 << 63).with_cache(1 << 63, 0);
    assert_eq!((big + big).input_tokens, u64::MAX);
    assert_eq!((big + big).cache_read_tokens, u64::MAX);
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

/// A small deterministic generator (xorshift): the fuzz cases below are
/// reproducible from their seed. `PROMPT_CHAIN_FUZZ_CASES` runs more of them.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Text mixing ASCII, JSON-significant characters, fences and characters
    /// of 2, 3 and 4 bytes in UTF-8.
    fn text(&mut self, max: u64) -> String {
        const PIECES: &[&str] = &[
            "a", "Z", " ", "{", "}", "[", "]", "\"", "\\", ":", ",", "é", "ß", "☕", "€", "𝄞",
            "🙂", "```", "```json", "\n", "\t", "data: ", "[DONE]",
        ];
        let n = self.below(max) + 1;
        (0..n)
            .map(|_| PIECES[self.below(PIECES.len() as u64) as usize])
            .collect()
    }
}

fn fuzz_cases(default: usize) -> usize {
    std::env::var("PROMPT_CHAIN_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

#[test]
fn extract_json_finds_every_generated_value_in_fences_and_prose() {
    let mut generator = Gen(0x5EED_F00D);
    for case in 0..fuzz_cases(2_000) {
        let value = j!({
            "summary": generator.text(12),
            "items": [generator.text(6), generator.text(6)],
            "n": generator.below(1000),
        });
        let json = value.to_string();
        let wrapped = match case % 4 {
            0 => format!("```json\n{json}\n```"),
            1 => format!("Here you go:\n```\n{json}\n```\nAnything else?"),
            2 => format!("The answer is {json} as asked."),
            _ => json.clone(),
        };
        let parsed: serde_json::Value = prompt_chain::llm::parse_reply(&wrapped)
            .unwrap_or_else(|e| panic!("case {case}: {e}\n{wrapped}"));
        assert_eq!(parsed, value, "case {case}: {wrapped}");
    }
}

fn openai_stream(parts: &[String]) -> String {
    let mut stream = String::new();
    for part in parts {
        let chunk =
            j!({"choices": [{"index": 0, "delta": {"content": part}, "finish_reason": null}]});
        stream.push_str(&format!("data: {chunk}\n\n"));
    }
    stream.push_str("data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2}}\n\ndata: [DONE]\n\n");
    stream
}

fn anthropic_stream(parts: &[String]) -> String {
    let mut stream = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n".to_owned();
    for part in parts {
        let delta = j!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": part}});
        stream.push_str(&format!(
            "event: content_block_delta\r\ndata: {delta}\r\n\r\n"
        ));
    }
    stream.push_str("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":2}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    stream
}

/// Streams of generated text, each split into two reads at every byte: both
/// providers give back exactly the text that was sent.
#[tokio::test]
async fn streams_decode_exactly_when_split_at_every_byte() {
    let mut generator = Gen(0xC0FFEE);
    for case in 0..fuzz_cases(3) {
        let parts: Vec<String> = (0..3).map(|_| generator.text(8)).collect();
        let expected: String = parts.concat();
        for (provider, stream) in [
            ("openai", openai_stream(&parts)),
            ("anthropic", anthropic_stream(&parts)),
        ] {
            let bytes = stream.as_bytes();
            // A split inside a UTF-8 character cannot be a `String`: the
            // server writes raw bytes, so split the bytes themselves.
            let replies: Vec<Reply> = (1..bytes.len())
                .map(|at| Reply::Bytes(vec![bytes[..at].to_vec(), bytes[at..].to_vec()]))
                .collect();
            let count = replies.len();
            let server = FakeServer::start(replies).await;
            for at in 1..=count {
                let completion = match provider {
                    "openai" => {
                        OpenAiCompatible::new(format!("{}/v1", server.url), "m")
                            .streaming(true)
                            .complete(&ChatRequest::user("hi"))
                            .await
                    }
                    _ => {
                        Anthropic::new("m", KEY)
                            .base_url(server.url.clone())
                            .streaming(true)
                            .complete(&ChatRequest::user("hi"))
                            .await
                    }
                };
                let completion = completion
                    .unwrap_or_else(|e| panic!("{provider} case {case}, split at {at}: {e}"));
                assert_eq!(
                    completion.text, expected,
                    "{provider} case {case}, split at {at}"
                );
            }
        }
    }
}

#[prompt_chain::step]
async fn ask(cx: &prompt_chain::StepCx, question: &str) -> prompt_chain::StepResult<String> {
    Ok(cx.llm().text(question).await?)
}

#[prompt_chain::chain]
async fn asking(question: String) -> String {
    step!(answer = ask(question));
    answer
}

/// A stream cut after `message_start` had already reported its input tokens:
/// they count in the failed step's usage (the provider bills them).
#[tokio::test]
async fn tokens_reported_before_a_stream_is_cut_are_counted() {
    let cut = vec![
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":11,\"output_tokens\":1}}}\n\n".to_owned(),
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hel\"}}\n\n".to_owned(),
    ];
    let server = FakeServer::start(vec![Reply::Stream(cut, true)]).await;
    let model = Anthropic::new("m", KEY)
        .base_url(server.url.clone())
        .streaming(true);
    let rt = prompt_chain::Runtime::builder().model(model).build();
    let outcome = asking::execute(
        &rt,
        asking::Input {
            question: "hi".into(),
        },
    )
    .await;
    let error = outcome.result.expect_err("the stream was cut");
    assert!(error.to_string().contains("connection"), "{error}");
    let step = outcome.report.step("answer").expect("recorded");
    assert_eq!(step.usage.input_tokens, 11);
    assert_eq!(outcome.report.usage.input_tokens, 11);
}

/// A server that fails mid-stream sends `data: {"error": …}`: the call fails
/// with that error instead of reading it as an empty chunk.
#[tokio::test]
async fn an_error_inside_an_openai_stream_is_surfaced() {
    let events = vec![
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n".to_owned(),
        "data: {\"error\":{\"code\":500,\"message\":\"slot crashed\",\"type\":\"server_error\"}}\n\n".to_owned(),
    ];
    let server = FakeServer::start(vec![Reply::Stream(events, false)]).await;
    let model = OpenAiCompatible::new(format!("{}/v1", server.url), "m").streaming(true);
    let error = model
        .complete(&ChatRequest::user("hi"))
        .await
        .expect_err("failed mid-stream");
    assert!(
        matches!(error, LlmError::Overloaded { status: 500, .. }),
        "{error}"
    );
    assert!(error.to_string().contains("slot crashed"), "{error}");
}

/// llama.cpp's server advertises keep-alive but closes the connection after
/// a streamed reply; the next call (a re-ask, at once) must not go out on
/// that dead connection.
#[tokio::test]
async fn a_stream_closed_despite_keep_alive_does_not_break_the_next_call() {
    let events = vec![
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"ok\"},\"finish_reason\":\"stop\"}]}\n\n".to_owned(),
        "data: [DONE]\n\n".to_owned(),
    ];
    let server = FakeServer::start(vec![Reply::StreamThenClose(events)]).await;
    let model = OpenAiCompatible::new(format!("{}/v1", server.url), "m").streaming(true);
    for call in 0..5 {
        let completion = model
            .complete(&ChatRequest::user("hi"))
            .await
            .unwrap_or_else(|e| panic!("call {call}: {e}"));
        assert_eq!(completion.text, "ok");
    }
}

#[prompt_chain::step]
async fn broken(_cx: &prompt_chain::StepCx, question: &str) -> prompt_chain::StepResult<String> {
    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    Err(prompt_chain::StepError::msg(format!("cannot answer {question}")).permanent())
}

#[prompt_chain::step]
async fn pair(
    _cx: &prompt_chain::StepCx,
    left: &str,
    right: &str,
) -> prompt_chain::StepResult<String> {
    Ok(format!("{left} {right}"))
}

/// `answer` asks a slow model while `oops` fails: the run stops.
#[prompt_chain::chain]
async fn half_broken(question: String) -> String {
    step!(answer = ask(question));
    step!(oops = broken(question));
    step!(both = pair(answer, oops));
    both
}

/// The same, with the slow call inside a sub-chain.
#[prompt_chain::chain]
async fn half_broken_nested(question: String) -> String {
    step!(answer = asking(question));
    step!(oops = broken(question));
    step!(both = pair(answer, oops));
    both
}

fn slow_model() -> prompt_chain::llm::ScriptedModel {
    prompt_chain::llm::ScriptedModel::new().on_step(
        "ask",
        prompt_chain::llm::ScriptedReply::text("word ".repeat(200))
            .after(std::time::Duration::from_millis(100)),
    )
}

/// A failing step cancels its siblings, but their model calls go on (the
/// provider bills them): the failed run waits for them, for a grace
/// period, and their tokens reach the report and the budget, once, in the
/// step that made them (or, from a cancelled sub-chain, the step calling it).
#[tokio::test(start_paused = true)]
async fn tokens_of_calls_in_flight_when_a_sibling_fails_are_counted() {
    let rt = prompt_chain::Runtime::builder().model(slow_model()).build();
    let outcome = half_broken::execute(
        &rt,
        half_broken::Input {
            question: "q".into(),
        },
    )
    .await;
    let error = outcome.result.expect_err("`oops` fails");
    assert_eq!(error.step(), Some("broken"));
    let answer = outcome.report.step("answer").expect("recorded");
    assert_eq!(answer.usage.output_tokens, 250, "{answer:?}");
    assert_eq!(outcome.report.usage, answer.usage);
    assert!(outcome.report.duration >= std::time::Duration::from_millis(100));

    let outcome = half_broken_nested::execute(
        &rt,
        half_broken_nested::Input {
            question: "q".into(),
        },
    )
    .await;
    assert!(outcome.result.is_err());
    let answer = outcome.report.step("answer").expect("recorded");
    assert_eq!(answer.usage.output_tokens, 250, "{answer:?}");
    assert_eq!(outcome.report.usage, answer.usage, "counted once");

    // Without a grace period the run fails at once, and the tokens miss the report.
    let rt = prompt_chain::Runtime::builder()
        .model(slow_model())
        .in_flight_grace(std::time::Duration::ZERO)
        .build();
    let outcome = half_broken::execute(
        &rt,
        half_broken::Input {
            question: "q".into(),
        },
    )
    .await;
    assert!(outcome.result.is_err());
    assert_eq!(outcome.report.usage.total(), 0);
    assert!(outcome.report.duration < std::time::Duration::from_millis(100));
}
