//! The providers against in-process HTTP servers speaking their wire
//! formats: requests as sent, plain and streamed replies (one cut mid-way),
//! 429 with Retry-After, 5xx and 529, malformed and fenced JSON, truncated
//! replies, slow responses, structured output and re-asking.

#[allow(dead_code)]
#[path = "support/fake_server.rs"]
mod fake_server;

use std::time::Duration;

use fake_server::{FakeServer, Reply, json};
use prompt_chain::llm::{
    Anthropic, ChatRequest, FinishReason, LanguageModel, LlmError, Message, OpenAiCompatible,
    model_from_vars,
};
use prompt_chain::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json as j;

fn openai_reply(text: &str, finish: &str) -> Reply {
    json(
        200,
        j!({
            "id": "chatcmpl-1",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}
        }),
    )
}

fn request() -> ChatRequest {
    ChatRequest::user("Classify: refund please").with_system("You route tickets.")
}

#[tokio::test]
async fn openai_plain_request_and_reply() {
    let server = FakeServer::start(vec![openai_reply("billing", "stop")]).await;
    let model =
        OpenAiCompatible::new(format!("{}/v1", server.url), "gpt-test").api_key("sk-test-1");
    let completion = model.complete(&request()).await.expect("a completion");
    assert_eq!(completion.text, "billing");
    assert_eq!(completion.finish_reason, FinishReason::Stop);
    assert_eq!(
        (
            completion.usage.input_tokens,
            completion.usage.output_tokens
        ),
        (12, 5)
    );
    let sent = &server.received()[0];
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(sent.header("authorization"), Some("Bearer sk-test-1"));
    assert_eq!(sent.body["model"], "gpt-test");
    assert_eq!(
        sent.body["messages"],
        j!([{"role": "system", "content": "You route tickets."}, {"role": "user", "content": "Classify: refund please"}])
    );
    assert!(sent.body.get("stream").is_none());
}

#[tokio::test]
async fn openai_streamed_reply_and_a_stream_cut_mid_way() {
    let events = vec![
        "data: {\"choices\":[{\"delta\":{\"content\":\"bil\"},\"finish_reason\":null}]}\n\n"
            .to_owned(),
        "data: {\"choices\":[{\"delta\":{\"content\":\"ling\"},\"finish_reason\":\"stop\"}]}\n\n"
            .to_owned(),
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2}}\n\n"
            .to_owned(),
        "data: [DONE]\n\n".to_owned(),
    ];
    let cut = vec![events[0].clone()];
    let server =
        FakeServer::start(vec![Reply::Stream(events, false), Reply::Stream(cut, true)]).await;
    let model = OpenAiCompatible::new(server.url.clone(), "gpt-test").streaming(true);
    let completion = model
        .complete(&request())
        .await
        .expect("a streamed completion");
    assert_eq!(completion.text, "billing");
    assert_eq!(
        (
            completion.usage.input_tokens,
            completion.usage.output_tokens
        ),
        (9, 2)
    );
    assert_eq!(server.received()[0].body["stream"], true);
    assert_eq!(
        server.received()[0].body["stream_options"]["include_usage"],
        true
    );

    let error = model
        .complete(&request())
        .await
        .expect_err("the stream was cut");
    match &error {
        LlmError::Transport { partial, .. } => assert_eq!(partial, "bil"),
        other => panic!("expected a transport error, got {other:?}"),
    }
    assert!(error.is_retryable());
}

#[tokio::test]
async fn http_errors_are_classified_and_keep_status_and_body() {
    let server = FakeServer::start(vec![
        Reply::Full(429, vec![("retry-after", "2".into())], "{\"error\":{\"type\":\"rate_limit\"}}".into()),
        Reply::Full(429, vec![("retry-after-ms", "1500".into())], "{\"error\":\"slow down\"}".into()),
        json(429, j!({"error": {"code": "insufficient_quota", "message": "You exceeded your current quota"}})),
        json(500, j!({"error": "boom"})),
        json(503, j!({"error": "unavailable"})),
        json(401, j!({"error": "invalid api key"})),
        json(400, j!({"error": "bad model"})),
        Reply::Full(200, Vec::new(), "{not json".into()),
    ])
    .await;
    let model = OpenAiCompatible::new(server.url.clone(), "gpt-test");
    let mut errors = Vec::new();
    for _ in 0..8 {
        errors.push(model.complete(&request()).await.expect_err("an error"));
    }
    assert!(
        matches!(&errors[0], LlmError::RateLimited { status: 429, retry_after: Some(d), .. } if *d == Duration::from_secs(2))
    );
    assert_eq!(errors[0].retry_after(), Some(Duration::from_secs(2)));
    assert_eq!(errors[1].retry_after(), Some(Duration::from_millis(1500)));
    assert!(
        matches!(&errors[2], LlmError::QuotaExhausted { status: 429, body } if body.contains("insufficient_quota"))
    );
    assert!(matches!(
        &errors[3],
        LlmError::Overloaded { status: 500, .. }
    ));
    assert!(matches!(
        &errors[4],
        LlmError::Overloaded { status: 503, .. }
    ));
    assert!(matches!(&errors[5], LlmError::Auth { status: 401, .. }));
    assert!(
        matches!(&errors[6], LlmError::BadRequest { status: 400, body } if body.contains("bad model"))
    );
    assert!(matches!(&errors[7], LlmError::Decode { .. }));
    let retryable: Vec<bool> = errors.iter().map(LlmError::is_retryable).collect();
    assert_eq!(
        retryable,
        [true, true, false, true, true, false, false, true]
    );
}

#[tokio::test(start_paused = true)]
async fn a_slow_response_times_out() {
    let server = FakeServer::start(vec![Reply::Slow(
        Duration::from_secs(30),
        Box::new(openai_reply("late", "stop")),
    )])
    .await;
    let model =
        OpenAiCompatible::new(server.url.clone(), "gpt-test").timeout(Duration::from_millis(500));
    let error = model.complete(&request()).await.expect_err("too slow");
    assert!(
        matches!(error, LlmError::Timeout { after: Some(after), idle: false, .. } if after == Duration::from_millis(500)),
        "{error:?}"
    );
    assert!(error.to_string().contains("0.5 s"), "{error}");
    assert!(error.is_retryable());
}

#[derive(Debug, Serialize, Deserialize, PartialEq, prompt_chain::schemars::JsonSchema)]
#[schemars(crate = "prompt_chain::schemars")]
struct Ticket {
    category: String,
    urgent: bool,
}

#[tokio::test]
async fn structured_output_sends_the_schema_and_tolerates_fences() {
    let server = FakeServer::start(vec![openai_reply(
        "Sure:\n```json\n{\"category\": \"billing\", \"urgent\": true}\n```",
        "stop",
    )])
    .await;
    let rt = Runtime::builder()
        .model(OpenAiCompatible::new(server.url.clone(), "gpt-test"))
        .build();
    let cx = StepCx::detached(&rt, "classify");
    let ticket: Ticket = cx
        .llm()
        .structured("Classify this ticket")
        .await
        .expect("parsed");
    assert_eq!(
        ticket,
        Ticket {
            category: "billing".into(),
            urgent: true
        }
    );
    let format = &server.received()[0].body["response_format"];
    assert_eq!(format["type"], "json_schema");
    assert_eq!(format["json_schema"]["name"], "Ticket");
    assert_eq!(
        format["json_schema"]["schema"]["properties"]["urgent"]["type"],
        "boolean"
    );
}

#[tokio::test]
async fn invalid_json_is_shown_to_the_model_and_asked_again_within_a_budget() {
    let server = FakeServer::start(vec![
        openai_reply("category: billing", "stop"),
        openai_reply("{\"category\": \"billing\", \"urgent\": false}", "stop"),
    ])
    .await;
    let rt = Runtime::builder()
        .model(OpenAiCompatible::new(server.url.clone(), "gpt-test"))
        .build();
    let cx = StepCx::detached(&rt, "classify");
    let ticket: Ticket = cx
        .llm()
        .json("Classify")
        .await
        .expect("the re-ask succeeds");
    assert!(!ticket.urgent);
    let second = &server.received()[1].body["messages"];
    assert_eq!(
        second[1],
        j!({"role": "assistant", "content": "category: billing"})
    );
    assert!(
        second[2]["content"]
            .as_str()
            .is_some_and(|m| m.contains("not valid JSON")),
        "{second}"
    );

    // With no budget left, the error carries the raw reply.
    let server = FakeServer::start(vec![openai_reply("still not json", "stop")]).await;
    let rt = Runtime::builder()
        .model(OpenAiCompatible::new(server.url.clone(), "gpt-test"))
        .reask_budget(1)
        .build();
    let cx = StepCx::detached(&rt, "classify");
    let error = cx
        .llm()
        .json::<Ticket>("Classify")
        .await
        .expect_err("never valid");
    assert!(
        matches!(&error, LlmError::Parse { raw, reasks: 1, .. } if raw == "still not json"),
        "{error:?}"
    );
    assert!(error.to_string().contains("(after 1 re-ask)"), "{error}");
    assert_eq!(server.received().len(), 2, "one call and one re-ask");
}

#[tokio::test]
async fn truncated_and_filtered_replies_are_errors() {
    let server = FakeServer::start(vec![
        openai_reply("The answer is", "length"),
        openai_reply("", "content_filter"),
    ])
    .await;
    // No re-asks: a cut-off reply is an error at once (tests/reasks.rs
    // has the re-asks).
    let rt = Runtime::builder()
        .model(OpenAiCompatible::new(server.url.clone(), "gpt-test"))
        .reask_budget(0)
        .build();
    let cx = StepCx::detached(&rt, "answer");
    let error = cx.llm().text("Explain").await.expect_err("cut off");
    assert!(matches!(&error, LlmError::Truncated { partial, .. } if partial == "The answer is"));
    let error = cx.llm().text("Explain").await.expect_err("filtered");
    assert!(matches!(error, LlmError::Refused { .. }));
    assert!(!error.is_retryable());
}

fn anthropic_reply(text: &str, stop: &str) -> Reply {
    json(
        200,
        j!({
            "id": "msg_1", "type": "message", "role": "assistant",
            "content": [{"type": "text", "text": text}],
            "stop_reason": stop,
            "usage": {"input_tokens": 20, "output_tokens": 3}
        }),
    )
}

#[tokio::test]
async fn anthropic_plain_request_and_reply() {
    let server = FakeServer::start(vec![
        anthropic_reply("billing", "end_turn"),
        anthropic_reply("half", "max_tokens"),
    ])
    .await;
    let model = Anthropic::new("claude-test", "sk-ant-test").base_url(server.url.clone());
    let completion = model.complete(&request()).await.expect("a completion");
    assert_eq!(completion.text, "billing");
    assert_eq!(
        (
            completion.usage.input_tokens,
            completion.usage.output_tokens
        ),
        (20, 3)
    );
    let sent = &server.received()[0];
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.header("x-api-key"), Some("sk-ant-test"));
    assert_eq!(sent.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(sent.body["system"], "You route tickets.");
    assert_eq!(
        sent.body["messages"],
        j!([{"role": "user", "content": "Classify: refund please"}])
    );
    assert_eq!(sent.body["max_tokens"], 4096);
    let truncated = model.complete(&request()).await.expect("a completion");
    assert_eq!(truncated.finish_reason, FinishReason::Length);
}

#[tokio::test]
async fn anthropic_streams_overloads_and_refusals() {
    let events = vec![
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":11,\"output_tokens\":1}}}\n\n".to_owned(),
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hel\"}}\n\n".to_owned(),
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"lo\"}}\n\n".to_owned(),
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":4}}\n\n".to_owned(),
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n".to_owned(),
    ];
    let overloaded_mid_stream = vec![
        events[0].clone(),
        "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n".to_owned(),
    ];
    let server = FakeServer::start(vec![
        Reply::Stream(events, false),
        Reply::Stream(overloaded_mid_stream, false),
        json(
            529,
            j!({"type": "error", "error": {"type": "overloaded_error"}}),
        ),
        anthropic_reply("", "refusal"),
    ])
    .await;
    let model = Anthropic::new("claude-test", "sk-ant-test")
        .base_url(server.url.clone())
        .streaming(true);
    let completion = model.complete(&request()).await.expect("streamed");
    assert_eq!(completion.text, "Hello");
    assert_eq!(
        (
            completion.usage.input_tokens,
            completion.usage.output_tokens
        ),
        (11, 4)
    );
    assert!(matches!(
        model.complete(&request()).await,
        Err(LlmError::Overloaded { status: 529, .. })
    ));
    assert!(matches!(
        model.complete(&request()).await,
        Err(LlmError::Overloaded { status: 529, .. })
    ));
    let plain = Anthropic::new("claude-test", "k").base_url(server.url.clone());
    assert!(matches!(
        plain.complete(&request()).await,
        Err(LlmError::Refused { .. })
    ));
}

#[test]
fn models_are_chosen_from_the_environment() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        }
    };
    assert!(model_from_vars(&env(&[])).expect("ok").is_none());
    let model = model_from_vars(&env(&[
        ("PROMPT_CHAIN_MODEL", "openai:gpt-4o-mini"),
        ("OPENAI_API_KEY", "sk"),
    ]))
    .expect("ok")
    .expect("a model");
    assert_eq!(model.name(), "gpt-4o-mini");
    let model = model_from_vars(&env(&[
        ("PROMPT_CHAIN_MODEL", "anthropic:claude-x"),
        ("PROMPT_CHAIN_API_KEY", "k"),
    ]))
    .expect("ok")
    .expect("a model");
    assert_eq!(model.name(), "claude-x");
    assert!(
        model_from_vars(&env(&[("PROMPT_CHAIN_MODEL", "ollama:llama3.1")]))
            .expect("no key needed")
            .is_some()
    );
    let missing = model_from_vars(&env(&[("PROMPT_CHAIN_MODEL", "anthropic:claude-x")]));
    assert!(missing.is_err_and(|e| e.to_string().contains("ANTHROPIC_API_KEY")));
    assert!(model_from_vars(&env(&[("PROMPT_CHAIN_MODEL", "gpt-4o")])).is_err());
    assert!(model_from_vars(&env(&[("PROMPT_CHAIN_MODEL", "openai-compatible:m")])).is_err());
}

#[test]
fn a_cassette_named_in_the_environment_replays_offline_or_records() {
    let env = |pairs: Vec<(&'static str, String)>| {
        move |name: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
        }
    };
    let recorded = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/cassettes/feedback_analysis.jsonl"
    );
    // A cassette needs no model and no network: the recorded model answers.
    let model = model_from_vars(&env(vec![("PROMPT_CHAIN_CASSETTE", recorded.to_owned())]))
        .expect("ok")
        .expect("a model");
    assert_eq!(model.name(), "smol");
    let missing = model_from_vars(&env(vec![(
        "PROMPT_CHAIN_CASSETTE",
        "/nonexistent/cassette.jsonl".to_owned(),
    )]));
    assert!(missing.is_err_and(|e| e.to_string().contains("record it first")));
    let no_model = model_from_vars(&env(vec![
        ("PROMPT_CHAIN_CASSETTE", "/tmp/unused.jsonl".to_owned()),
        ("PROMPT_CHAIN_RECORD", "1".to_owned()),
    ]));
    assert!(no_model.is_err_and(|e| e.to_string().contains("set PROMPT_CHAIN_MODEL too")));
    let path = std::env::temp_dir().join(format!("prompt-chain-env-{}.jsonl", std::process::id()));
    let recorder = model_from_vars(&env(vec![
        ("PROMPT_CHAIN_CASSETTE", path.display().to_string()),
        ("PROMPT_CHAIN_RECORD", "1".to_owned()),
        ("PROMPT_CHAIN_MODEL", "ollama:llama3.1".to_owned()),
    ]))
    .expect("ok")
    .expect("a recorder");
    assert_eq!(recorder.name(), "llama3.1");
    assert!(path.exists(), "recording starts a fresh cassette");
    let _ = std::fs::remove_file(path);
}

/// A chain on a real wire format: the scripted model is not special.
#[step]
async fn classify(cx: &StepCx, text: &str) -> StepResult<Ticket> {
    Ok(cx.llm().structured(format!("Classify: {text}")).await?)
}

#[chain]
async fn triage(text: String) -> Ticket {
    step!(ticket = classify(text), retry = 2);
    ticket
}

#[tokio::test]
async fn a_chain_retries_a_rate_limited_provider() {
    let server = FakeServer::start(vec![
        Reply::Full(429, vec![("retry-after-ms", "10".into())], "{}".into()),
        openai_reply("{\"category\":\"tech\",\"urgent\":false}", "stop"),
    ])
    .await;
    let rt = Runtime::builder()
        .model(OpenAiCompatible::new(server.url.clone(), "gpt-test"))
        .backoff(Duration::from_millis(1), Duration::from_millis(5))
        .build();
    let outcome = triage::execute(
        &rt,
        triage::Input {
            text: "crash".into(),
        },
    )
    .await;
    assert_eq!(outcome.result.expect("retried").ticket.category, "tech");
    assert_eq!(outcome.report.step("classify").map(|s| s.attempts), Some(2));
    assert!(
        outcome.report.usage.total() > 0,
        "tokens of the successful call are counted"
    );
    let _ = Message::user("unused");
}

#[step]
async fn short_answer(cx: &StepCx, question: &str) -> StepResult<String> {
    Ok(cx.llm().text(question).await?)
}

#[step]
async fn tuned_answer(cx: &StepCx, question: &str) -> StepResult<String> {
    Ok(cx
        .llm()
        .max_tokens(5)
        .temperature(0.0)
        .seed(7)
        .stop("END")
        .text(question)
        .await?)
}

#[chain]
async fn sampling(question: String) -> String {
    step!(short = short_answer(question), max_tokens = 77);
    step!(tuned = tuned_answer(question), max_tokens = 77);
    step!(both: String = join(short, tuned));
    both
}

async fn join(_cx: &StepCx, short: &str, tuned: &str) -> StepResult<String> {
    Ok(format!("{short}{tuned}"))
}

#[tokio::test]
async fn max_tokens_and_sampling_reach_the_provider_per_step_and_per_call() {
    let server = FakeServer::start(vec![openai_reply("ok", "stop")]).await;
    let model = OpenAiCompatible::new(format!("{}/v1", server.url), "m");
    // Without any setting, the provider's documented default is sent.
    model.complete(&request()).await.expect("answers");
    assert_eq!(server.received()[0].body["max_tokens"], 2048);
    let rt = Runtime::builder().model(model).build();
    let out = sampling::run(
        &rt,
        sampling::Input {
            question: "q".into(),
        },
    )
    .await;
    assert_eq!(out.expect("runs"), "okok");
    let bodies: Vec<serde_json::Value> = server.received()[1..]
        .iter()
        .map(|r| r.body.clone())
        .collect();
    let step = bodies
        .iter()
        .find(|b| b.get("seed").is_none())
        .expect("the step's call");
    assert_eq!(step["max_tokens"], 77, "the step's option");
    let call = bodies
        .iter()
        .find(|b| b.get("seed").is_some())
        .expect("the tuned call");
    assert_eq!(call["max_tokens"], 5, "the call's own setting wins");
    assert_eq!(call["seed"], 7);
    assert_eq!(call["temperature"], 0.0);
    assert_eq!(call["stop"], j!(["END"]));
}
