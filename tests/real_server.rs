//! The real-server suite: the examples and the providers against llama.cpp's
//! `llama-server` with SmolLM2-135M-Instruct, as a new user would run them.
//! Runs with `PROMPT_CHAIN_REAL_SERVER=1` after
//! `../shared/tools/llm-server/build.sh`; `.ci/run` does both. Without it,
//! each test says it is skipped and passes.
//!
//! Quality is not tested (a 135M model classifies poorly): the plumbing is.
//! Every example completes through the OpenAI-compatible endpoint, plain and
//! streaming, where the server's grammar enforces the schema. Through the
//! Anthropic-compatible endpoint, which sends no schema the server enforces
//! (it ignores `output_format`, `response_format` and forced tools), every
//! example ends cleanly: completed, or a readable error, its timeline and
//! exit status 1.

// The lock only keeps one server at a time; each test has its own runtime,
// so holding it across awaits blocks nothing else.
#![allow(clippy::await_holding_lock)]

#[allow(dead_code)]
#[path = "support/llama.rs"]
mod llama;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use llama::{LlamaServer, ONE_AT_A_TIME, binaries};
use prompt_chain::llm::{
    Anthropic, ChatRequest, LanguageModel, LlmError, Message, OpenAiCompatible, ToolCall, ToolSpec,
};
use prompt_chain::prelude::*;
use prompt_chain::schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How an example was run.
struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Runs the built example `name` with the model the environment names.
fn example(name: &str, env: &[(&str, String)], args: &[&str]) -> Run {
    let dir: PathBuf = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.join("examples")))
        .expect("target directory");
    let binary = dir.join(name);
    assert!(
        binary.is_file(),
        "{} is not built: run `cargo build --examples` first",
        binary.display()
    );
    let started = Instant::now();
    let output = Command::new(&binary)
        .args(args)
        .env_remove("PROMPT_CHAIN_STREAM")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env(
            "TMPDIR",
            std::env::temp_dir().join(format!("prompt-chain-real-{name}")),
        )
        .output()
        .expect("the example runs");
    let run = Run {
        ok: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    eprintln!(
        "real_server: {name} {args:?} {:?}: {} in {:.1} s",
        env.iter()
            .filter(|(k, _)| *k != "PROMPT_CHAIN_API_KEY")
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>(),
        if run.ok { "completed" } else { "failed" },
        started.elapsed().as_secs_f64()
    );
    run
}

/// What each example prints when it completes.
const EXAMPLES: [(&str, &str); 4] = [
    ("feedback_analysis", "Reply:"),
    ("parallel_analysis", "Recommendation:"),
    ("code_review", "Verdict:"),
    ("support_router", "tickets in"),
];

fn openai_env(server: &LlamaServer, stream: bool) -> Vec<(&'static str, String)> {
    vec![
        ("PROMPT_CHAIN_MODEL", "openai-compatible:smollm2".to_owned()),
        ("PROMPT_CHAIN_BASE_URL", server.openai_url()),
        (
            "PROMPT_CHAIN_STREAM",
            if stream { "1" } else { "0" }.to_owned(),
        ),
    ]
}

fn anthropic_env(server: &LlamaServer, stream: bool) -> Vec<(&'static str, String)> {
    vec![
        ("PROMPT_CHAIN_MODEL", "anthropic:smollm2".to_owned()),
        ("PROMPT_CHAIN_BASE_URL", server.anthropic_url()),
        ("PROMPT_CHAIN_API_KEY", "any-key".to_owned()),
        (
            "PROMPT_CHAIN_STREAM",
            if stream { "1" } else { "0" }.to_owned(),
        ),
    ]
}

/// The support router's sample tickets in a short run: one of each kind.
const SOME_TICKETS: &[&str] = &["--only", "T-1001,T-1002,T-1003"];

/// Runs the four examples one after another (at once, their requests
/// queue on the server past the request timeout on two cores).
fn all_examples(
    env: &[(&str, String)],
    router_args: &[&str],
) -> Vec<(&'static str, &'static str, Run)> {
    EXAMPLES
        .iter()
        .map(|&(name, marker)| {
            let args = if name == "support_router" {
                router_args
            } else {
                &[]
            };
            (name, marker, example(name, env, args))
        })
        .collect()
}

#[test]
fn every_example_completes_through_the_openai_endpoint_plain_and_streaming() {
    let Some(binaries) = binaries() else { return };
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let server = LlamaServer::start(&binaries, 4);
    for stream in [false, true] {
        // Every ticket once; a short run of the router when streaming.
        let router_args = if stream { SOME_TICKETS } else { &[] };
        for (name, marker, run) in all_examples(&openai_env(&server, stream), router_args) {
            assert!(
                run.ok && run.stdout.contains(marker),
                "{name} (stream: {stream}) did not complete:\n{}\n{}",
                run.stdout,
                run.stderr
            );
        }
    }
}

/// What a run of an example printed, without its timings (the run id, the
/// time it took, the timeline's milliseconds).
fn without_timings(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .take_while(|line| !line.starts_with("Run "))
        .collect()
}

#[test]
fn a_run_recorded_against_the_server_replays_offline_with_the_same_output() {
    let Some(binaries) = binaries() else { return };
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let server = LlamaServer::start(&binaries, 4);
    let cassette = std::env::temp_dir().join(format!(
        "prompt-chain-real-cassette-{}.jsonl",
        std::process::id()
    ));
    for stream in [false, true] {
        let mut env = openai_env(&server, stream);
        env.push(("PROMPT_CHAIN_CASSETTE", cassette.display().to_string()));
        env.push(("PROMPT_CHAIN_RECORD", "1".to_owned()));
        let live = example("feedback_analysis", &env, &[]);
        assert!(
            live.ok,
            "the recorded run completes:\n{}\n{}",
            live.stdout, live.stderr
        );
        // Offline: no model named, no server needed.
        let offline = [("PROMPT_CHAIN_CASSETTE", cassette.display().to_string())];
        let replayed = example("feedback_analysis", &offline, &[]);
        assert!(
            replayed.ok && replayed.stderr.contains("(offline)"),
            "the replay completes offline:\n{}\n{}",
            replayed.stdout,
            replayed.stderr
        );
        assert_eq!(
            without_timings(&replayed.stdout),
            without_timings(&live.stdout),
            "stream: {stream}"
        );
        assert!(
            without_timings(&live.stdout)
                .iter()
                .any(|l| l.starts_with("Reply:"))
        );
    }
    let _ = std::fs::remove_file(cassette);
}

#[test]
fn every_example_ends_cleanly_through_the_anthropic_endpoint() {
    let Some(binaries) = binaries() else { return };
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let server = LlamaServer::start(&binaries, 4);
    let mut completed = 0;
    for stream in [false, true] {
        for (name, marker, run) in all_examples(&anthropic_env(&server, stream), SOME_TICKETS) {
            let all = format!("{}{}", run.stdout, run.stderr);
            if run.ok {
                assert!(run.stdout.contains(marker), "{name}: {all}");
                completed += 1;
            } else {
                // A readable error (never a Debug dump), and the timeline
                // of what ran.
                // (A map step's error names the element: "failed on item 1, attempt 2".)
                assert!(
                    (all.contains("failed on attempt") || all.contains("failed on item"))
                        && !all.contains("ChainError {"),
                    "{name} (stream: {stream}) did not fail cleanly:\n{all}"
                );
                assert!(all.contains(" ms →"), "{name}: no timeline:\n{all}");
            }
        }
    }
    eprintln!(
        "real_server: {completed} of 8 example runs completed through the Anthropic endpoint"
    );
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(crate = "prompt_chain::schemars")]
#[serde(rename_all = "lowercase")]
enum Mood {
    Happy,
    Sad,
    Neutral,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(crate = "prompt_chain::schemars")]
struct Reading {
    mood: Mood,
    #[schemars(length(max = 60))]
    reason: String,
    #[schemars(range(min = 1, max = 10))]
    intensity: u8,
}

#[step]
async fn read_mood(cx: &StepCx, text: &str) -> StepResult<Reading> {
    Ok(cx
        .llm()
        .max_tokens(120)
        .structured(format!("Read the mood of this text: {text}"))
        .await?)
}

#[step]
async fn comment(cx: &StepCx, reading: &Reading) -> StepResult<String> {
    Ok(cx
        .llm()
        .max_tokens(60)
        .text(format!(
            "In one sentence, comment on a {:?} mood: {}",
            reading.mood, reading.reason
        ))
        .await?)
}

#[chain]
async fn mood(text: String) -> String {
    step!(reading = read_mood(text));
    step!(remark = comment(reading), retry = 1);
    remark
}

fn runtime(model: impl LanguageModel) -> Runtime {
    Runtime::builder().model(model).build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn structured_output_and_usage_match_the_servers_own_counts() {
    let Some(binaries) = binaries() else { return };
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let server = LlamaServer::start(&binaries, 2);
    let models: Vec<(&str, Runtime)> = vec![
        (
            "openai plain",
            runtime(OpenAiCompatible::new(server.openai_url(), "smollm2")),
        ),
        (
            "openai streaming",
            runtime(OpenAiCompatible::new(server.openai_url(), "smollm2").streaming(true)),
        ),
        (
            "anthropic plain",
            runtime(Anthropic::new("smollm2", "k").base_url(server.anthropic_url())),
        ),
        (
            "anthropic streaming",
            runtime(
                Anthropic::new("smollm2", "k")
                    .base_url(server.anthropic_url())
                    .streaming(true),
            ),
        ),
    ];
    let texts = [
        "I won the race today and everyone cheered!",
        "My cat is sick and the vet is closed.",
        "The bus came at nine, as it does.",
    ];
    for (label, rt) in &models {
        for text in texts {
            let before = server.counters();
            let outcome = mood::execute(
                rt,
                mood::Input {
                    text: text.to_owned(),
                },
            )
            .await;
            let after = server.counters();
            let usage = outcome.report.usage();
            // Every token the server processed or generated is in the
            // report, once: prompt tokens served from its cache are
            // counted as input but not processed again.
            assert_eq!(
                (usage.uncached_input_tokens(), usage.output_tokens),
                (after.0 - before.0, after.1 - before.1),
                "{label}: {usage:?} against the server's counters"
            );
            if label.starts_with("openai") {
                // The server's grammar enforces the schema: always a typed value.
                let out = outcome
                    .result
                    .unwrap_or_else(|e| panic!("{label}: {e}\n{}", outcome.report.timeline(40)));
                assert!(out.reading.reason.chars().count() <= 60);
                assert!((1..=10).contains(&out.reading.intensity));
            }
        }
    }
}

/// A tool conversation's second turn, as the tool loop sends it: the
/// model's turn that called a tool, the tool's result, and the tools.
fn second_turn() -> ChatRequest {
    let mut request = ChatRequest::user("Which plan is customer C-7 on?");
    let call = ToolCall {
        id: "call_1".into(),
        name: "lookup_account".into(),
        arguments: r#"{"customer":"C-7"}"#.into(),
    };
    request.messages.push(Message::tool_calls("", vec![call]));
    request
        .messages
        .push(Message::tool_result("call_1", r#""C-7: plan pro""#));
    request.tools = vec![ToolSpec {
        name: "lookup_account".into(),
        description: "Looks a customer up by id.".into(),
        parameters: serde_json::json!({"type": "object", "properties": {"customer": {"type": "string"}}, "required": ["customer"]}),
    }];
    request.max_tokens = Some(40);
    request
}

/// SmolLM2-135M calls no tools (not even with a tool-calling chat
/// template), so what a real server can check is that it takes a tool
/// conversation in each provider's format, plain and streamed, and answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_conversation_is_accepted_by_both_endpoints_plain_and_streamed() {
    let Some(binaries) = binaries() else { return };
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let server = LlamaServer::start(&binaries, 1);
    let models: Vec<Box<dyn LanguageModel>> = vec![
        Box::new(OpenAiCompatible::new(server.openai_url(), "m")),
        Box::new(OpenAiCompatible::new(server.openai_url(), "m").streaming(true)),
        Box::new(Anthropic::new("m", "k").base_url(server.anthropic_url())),
        Box::new(
            Anthropic::new("m", "k")
                .base_url(server.anthropic_url())
                .streaming(true),
        ),
    ];
    for model in models {
        let completion = model
            .complete(&second_turn())
            .await
            .unwrap_or_else(|error| panic!("{model:?}: {error:?}"));
        // The tool's result is part of the prompt the server processed.
        assert!(
            completion.usage.input_tokens > 20,
            "{model:?}: {completion:?}"
        );
        assert!(!completion.text.is_empty(), "{model:?}: {completion:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prompt_longer_than_the_context_is_a_clear_bad_request() {
    let Some(binaries) = binaries() else { return };
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let server = LlamaServer::start(&binaries, 1);
    let long = "the quick brown fox jumps over the lazy dog ".repeat(400);
    let models: Vec<Box<dyn LanguageModel>> = vec![
        Box::new(OpenAiCompatible::new(server.openai_url(), "m")),
        Box::new(OpenAiCompatible::new(server.openai_url(), "m").streaming(true)),
        Box::new(Anthropic::new("m", "k").base_url(server.anthropic_url())),
    ];
    for model in models {
        let error = model
            .complete(&ChatRequest::user(long.clone()))
            .await
            .expect_err("too long for a 2048-token slot");
        assert!(
            matches!(&error, LlmError::BadRequest { status: 400, body } if body.contains("exceed")),
            "{model:?}: {error:?}"
        );
        assert!(!error.is_retryable());
    }
}

#[step]
async fn ramble(cx: &StepCx, topic: &str) -> StepResult<String> {
    Ok(cx
        .llm()
        .max_tokens(400)
        .text(format!("Write a long story about {topic}."))
        .await?)
}

#[chain]
async fn storytelling(topic: String) -> String {
    step!(story = ramble(topic), retry = 2);
    story
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_run_ends_the_run_with_a_typed_error() {
    let Some(binaries) = binaries() else { return };
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    for stream in [false, true] {
        let mut server = LlamaServer::start(&binaries, 1);
        let rt = Runtime::builder()
            .model(OpenAiCompatible::new(server.openai_url(), "m").streaming(stream))
            .backoff(Duration::from_millis(100), Duration::from_millis(200))
            .build();
        let run = tokio::spawn(async move {
            storytelling::execute(
                &rt,
                storytelling::Input {
                    topic: "a lighthouse".into(),
                },
            )
            .await
        });
        tokio::time::sleep(Duration::from_millis(1500)).await;
        server.kill();
        let outcome = tokio::time::timeout(Duration::from_secs(60), run)
            .await
            .expect("the run ends soon after the server dies")
            .expect("the run's task");
        let error = outcome.result.expect_err("the server is gone");
        assert!(
            matches!(error.llm_error(), Some(LlmError::Transport { .. })),
            "stream {stream}: {error}"
        );
        assert_eq!(error.attempt(), 3, "stream {stream}: {error}");
        assert!(error.to_string().contains("failed on attempt 3"), "{error}");
    }
}
