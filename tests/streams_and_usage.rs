//! Prompt-cache usage and stream timing, against fakes that send what
//! llama.cpp's `llama-server` was seen to send (the usage objects below are
//! copied from its replies): cached tokens counted and priced for both
//! providers; a stream timed by its start and its idle gaps, never cut while
//! it keeps sending; a stalled stream's partial text kept.

#[allow(dead_code)]
#[path = "support/fake_server.rs"]
mod fake_server;

use std::time::Duration;

use fake_server::{FakeServer, Reply, json};
use prompt_chain::llm::{
    Anthropic, ChatRequest, LanguageModel, LlmError, OpenAiCompatible, PriceTable, Usage,
};
use prompt_chain::prelude::*;
use serde_json::json as j;

/// llama-server's second identical OpenAI request: 51 of 52 prompt tokens cached.
fn openai_cached_reply() -> Reply {
    json(
        200,
        j!({
            "choices": [{"finish_reason": "stop", "index": 0, "message": {"role": "assistant", "content": "Hello"}}],
            "object": "chat.completion",
            "usage": {"completion_tokens": 20, "prompt_tokens": 52, "total_tokens": 72, "prompt_tokens_details": {"cached_tokens": 51}},
            "timings": {"cache_n": 51, "prompt_n": 1}
        }),
    )
}

fn sse(data: &serde_json::Value) -> String {
    format!("data: {data}\n\n")
}

fn anthropic_sse(event: &str, data: &serde_json::Value) -> String {
    format!("event: {event}\ndata: {data}\n\n")
}

/// An Anthropic stream as llama-server sends it: the cache counts in
/// `message_start`, only `output_tokens` in `message_delta`.
fn anthropic_cached_stream() -> Vec<String> {
    vec![
        anthropic_sse(
            "message_start",
            &j!({"type": "message_start", "message": {"id": "m", "type": "message", "role": "assistant", "content": [], "stop_reason": null, "usage": {"cache_read_input_tokens": 51, "input_tokens": 1, "output_tokens": 0}}}),
        ),
        anthropic_sse(
            "content_block_delta",
            &j!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Once"}}),
        ),
        anthropic_sse(
            "message_delta",
            &j!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": 5}}),
        ),
        anthropic_sse("message_stop", &j!({"type": "message_stop"})),
    ]
}

#[tokio::test]
async fn cached_prompt_tokens_are_counted_for_both_providers() {
    let expected = Usage::new(52, 20).with_cache(51, 0);
    let server = FakeServer::start(vec![openai_cached_reply()]).await;
    let model = OpenAiCompatible::new(format!("{}/v1", server.url), "m");
    let usage = model
        .complete(&ChatRequest::user("hi"))
        .await
        .expect("ok")
        .usage;
    assert_eq!(usage, expected);

    // Streamed: the usage arrives in the last chunk, with no choices.
    let server = FakeServer::start(vec![Reply::Stream(
        vec![
            sse(&j!({"choices": [{"index": 0, "delta": {"content": "Hello"}, "finish_reason": "stop"}]})),
            sse(&j!({"choices": [], "usage": {"completion_tokens": 20, "prompt_tokens": 52, "total_tokens": 72, "prompt_tokens_details": {"cached_tokens": 51}}})),
            "data: [DONE]\n\n".to_owned(),
        ],
        false,
    )])
    .await;
    let model = OpenAiCompatible::new(format!("{}/v1", server.url), "m").streaming(true);
    let usage = model
        .complete(&ChatRequest::user("hi"))
        .await
        .expect("ok")
        .usage;
    assert_eq!(usage, expected);

    // Anthropic's `input_tokens` leaves the cached tokens out: they are added back.
    let server = FakeServer::start(vec![json(
        200,
        j!({"type": "message", "role": "assistant", "content": [{"type": "text", "text": "Hi"}], "stop_reason": "end_turn",
            "usage": {"cache_read_input_tokens": 51, "cache_creation_input_tokens": 7, "input_tokens": 1, "output_tokens": 20}}),
    )])
    .await;
    let model = Anthropic::new("m", "k").base_url(server.url.clone());
    let usage = model
        .complete(&ChatRequest::user("hi"))
        .await
        .expect("ok")
        .usage;
    assert_eq!(usage, Usage::new(59, 20).with_cache(51, 7));

    let server = FakeServer::start(vec![Reply::Stream(anthropic_cached_stream(), false)]).await;
    let model = Anthropic::new("m", "k")
        .base_url(server.url.clone())
        .streaming(true);
    let usage = model
        .complete(&ChatRequest::user("hi"))
        .await
        .expect("ok")
        .usage;
    assert_eq!(usage, Usage::new(52, 5).with_cache(51, 0));
}

#[step]
async fn greet(cx: &StepCx, name: &str) -> StepResult<String> {
    Ok(cx.llm().text(format!("Greet {name}")).await?)
}

#[chain]
async fn greeting(name: String) -> String {
    step!(text = greet(name));
    text
}

#[tokio::test]
async fn cached_tokens_are_priced_at_their_own_price_in_the_report() {
    let server = FakeServer::start(vec![openai_cached_reply()]).await;
    let rt = Runtime::builder()
        .model(OpenAiCompatible::new(format!("{}/v1", server.url), "m"))
        .prices(
            PriceTable::new()
                .model("m", 1.0, 4.0)
                .cache_prices("m", 0.5, None),
        )
        .build();
    let outcome = greeting::execute(&rt, greeting::Input { name: "Ann".into() }).await;
    assert_eq!(outcome.result.expect("ok").text, "Hello");
    let report = &outcome.report;
    assert_eq!(report.usage().cache_read_tokens, 51);
    // 1 uncached input token at $1/M, 51 cached at $0.5/M, 20 output at $4/M.
    let expected = (1.0 + 51.0 * 0.5 + 20.0 * 4.0) / 1e6;
    let cost = report.cost_usd.expect("priced");
    assert!((cost - expected).abs() < 1e-15, "{cost} vs {expected}");
}

fn chunk(text: &str) -> String {
    sse(&j!({"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}]}))
}

#[tokio::test]
async fn a_stream_that_keeps_sending_outlives_the_request_timeout() {
    let mut events: Vec<String> = (0..6).map(|i| chunk(&format!("w{i} "))).collect();
    events.push(sse(
        &j!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
    ));
    events.push("data: [DONE]\n\n".to_owned());
    let server = FakeServer::start(vec![Reply::Paced {
        every: Duration::from_millis(100),
        events,
        stall: false,
    }])
    .await;
    // 0.8 s of tokens against a 0.3 s timeout to the stream's start.
    let model = OpenAiCompatible::new(format!("{}/v1", server.url), "m")
        .streaming(true)
        .timeout(Duration::from_millis(300))
        .idle_timeout(Duration::from_secs(5));
    let completion = model
        .complete(&ChatRequest::user("hi"))
        .await
        .expect("whole");
    assert_eq!(completion.text, "w0 w1 w2 w3 w4 w5 ");
}

#[tokio::test]
async fn a_stalled_stream_times_out_idle_and_keeps_its_partial_text() {
    let server = FakeServer::start(vec![Reply::Paced {
        every: Duration::from_millis(20),
        events: vec![chunk("The answer"), chunk(" is")],
        stall: true,
    }])
    .await;
    let model = OpenAiCompatible::new(format!("{}/v1", server.url), "m")
        .streaming(true)
        .idle_timeout(Duration::from_millis(300));
    let error = model
        .complete(&ChatRequest::user("hi"))
        .await
        .expect_err("stalled");
    assert!(
        matches!(&error, LlmError::Timeout { idle: true, partial, after: Some(after), .. }
            if partial == "The answer is" && *after == Duration::from_millis(300)),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("sent nothing for 0.3 s") && message.contains("13 characters"),
        "{message}"
    );
    assert!(error.is_retryable());

    // Anthropic: the input tokens of `message_start` survive the timeout.
    let mut events = anthropic_cached_stream();
    events.truncate(2);
    let server = FakeServer::start(vec![Reply::Paced {
        every: Duration::from_millis(20),
        events,
        stall: true,
    }])
    .await;
    let model = Anthropic::new("m", "k")
        .base_url(server.url.clone())
        .streaming(true)
        .idle_timeout(Duration::from_millis(300));
    let error = model
        .complete(&ChatRequest::user("hi"))
        .await
        .expect_err("stalled");
    assert!(
        matches!(&error, LlmError::Timeout { idle: true, partial, .. } if partial == "Once"),
        "{error:?}"
    );
    assert_eq!(error.usage(), Some(Usage::new(52, 0).with_cache(51, 0)));
}

#[tokio::test]
async fn a_stream_that_never_starts_times_out_on_the_request_timeout() {
    let server = FakeServer::start(vec![Reply::Slow(
        Duration::from_secs(30),
        Box::new(Reply::Stream(vec![chunk("late")], false)),
    )])
    .await;
    let model = OpenAiCompatible::new(format!("{}/v1", server.url), "m")
        .streaming(true)
        .timeout(Duration::from_millis(300));
    let error = model
        .complete(&ChatRequest::user("hi"))
        .await
        .expect_err("slow");
    assert!(
        matches!(&error, LlmError::Timeout { idle: false, after: Some(after), .. } if *after == Duration::from_millis(300)),
        "{error:?}"
    );
    assert!(error.to_string().contains("timeout of 0.3 s"), "{error}");
}
