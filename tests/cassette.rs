//! Cassettes under a whole chain: a run recorded against a model replays
//! offline with the same outputs and the same report (statuses, attempts,
//! tokens, cost, streamed pieces), and a changed prompt is a miss naming
//! its step.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use prompt_chain::events::{Event, EventKind};
use prompt_chain::llm::{Cassette, LanguageModel, PriceTable, ScriptedReply};
use prompt_chain::prelude::*;
use prompt_chain::report::ExecutionReport;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Ticket {
    product: String,
    issues: Vec<String>,
}

#[step]
async fn extract(cx: &StepCx, text: &str) -> StepResult<Ticket> {
    Ok(cx
        .llm()
        .json(format!("Extract the product and issues: {text}"))
        .await?)
}

#[step]
async fn issues_of(_cx: &StepCx, ticket: &Ticket) -> StepResult<Vec<String>> {
    Ok(ticket.issues.clone())
}

#[step]
async fn label(cx: &StepCx, issue: &str) -> StepResult<String> {
    Ok(cx.llm().text(format!("Label this issue: {issue}")).await?)
}

#[step]
async fn answer(cx: &StepCx, ticket: &Ticket, labels: &[String]) -> StepResult<String> {
    let prompt = format!(
        "Write a reply about {} covering: {}",
        ticket.product,
        labels.join(", ")
    );
    Ok(cx.llm().text(prompt).await?)
}

#[chain]
async fn triage(text: String) -> String {
    step!(ticket = extract(text));
    step!(issues = issues_of(ticket));
    step!(labels = label(each issues), concurrency = 4);
    step!(reply = answer(ticket, labels));
    reply
}

fn live_model() -> ScriptedModel {
    ScriptedModel::new()
        .named("openai-compatible:smol")
        .on_step(
            "extract",
            ScriptedReply::sequence([
                // A reply the step rejects first: the model re-ask is recorded too.
                ScriptedReply::text("not json"),
                ScriptedReply::text(
                    r#"{"product": "Acme Sync", "issues": ["crashes", "slow", "no export"]}"#,
                ),
            ]),
        )
        .on_step(
            "label",
            ScriptedReply::from_fn(|r| format!("label for {}", r.prompt().len())),
        )
        .on_step("answer", "Thanks for writing about Acme Sync.")
}

fn prices() -> PriceTable {
    PriceTable::new().model("openai-compatible:smol", 0.5, 1.5)
}

fn cassette(name: &str) -> PathBuf {
    std::env::temp_dir()
        .join(format!("prompt-chain-tests-{}", std::process::id()))
        .join(format!("{name}.jsonl"))
}

fn runtime(model: impl LanguageModel, pieces: Arc<Mutex<Vec<String>>>) -> Runtime {
    Runtime::builder()
        .model(model)
        .prices(prices())
        .stream_tokens(true)
        .observer(move |event: &Event| {
            if let EventKind::TokenDelta { step, text, .. } = &event.kind {
                pieces.lock().expect("lock").push(format!("{step}:{text}"));
            }
        })
        .build()
}

/// What a report says that a replay must reproduce (not its timings).
fn essentials(report: &ExecutionReport) -> Vec<String> {
    report
        .steps
        .iter()
        .map(|step| {
            format!(
                "{} {:?} attempts={} model_reasks={} usage={:?} cost={:?} items={}",
                step.name,
                step.status,
                step.attempts,
                step.model_reasks,
                step.usage,
                step.cost_usd,
                step.items.len()
            )
        })
        .collect()
}

fn input() -> triage::Input {
    triage::Input {
        text: "Acme Sync crashes, is slow and cannot export".into(),
    }
}

#[tokio::test]
async fn a_recorded_run_replays_with_the_same_outputs_report_and_stream() {
    let path = cassette("triage");
    let live_pieces = Arc::default();
    let recorder = Cassette::record(&path, live_model()).expect("recording");
    let live = triage::execute(&runtime(recorder, Arc::clone(&live_pieces)), input()).await;
    let live_out = live.result.expect("the live run completes");

    let replay_pieces = Arc::default();
    let replay = Cassette::replay(&path).expect("the cassette");
    // extract twice (a re-ask), three labels, one answer.
    assert_eq!(replay.len(), 6);
    let again = triage::execute(&runtime(replay, Arc::clone(&replay_pieces)), input()).await;
    let again_out = again.result.expect("the replayed run completes");

    assert_eq!(again_out.reply, live_out.reply);
    assert_eq!(again_out.ticket, live_out.ticket);
    assert_eq!(again_out.labels, live_out.labels);
    assert_eq!(essentials(&again.report), essentials(&live.report));
    assert!(again.report.cost_usd.is_some_and(|cost| cost > 0.0));
    let mut live_pieces = live_pieces.lock().expect("lock").clone();
    let mut replay_pieces = replay_pieces.lock().expect("lock").clone();
    // Map elements stream side by side: compare what each step streamed.
    live_pieces.sort();
    replay_pieces.sort();
    assert!(!live_pieces.is_empty());
    assert_eq!(replay_pieces, live_pieces);
}

#[tokio::test]
async fn a_changed_prompt_fails_the_step_with_a_miss_and_no_retry() {
    let path = cassette("changed");
    let recorder = Cassette::record(&path, live_model()).expect("recording");
    let live = triage::execute(&runtime(recorder, Arc::default()), input()).await;
    live.result.expect("the live run completes");

    let replay = Cassette::replay(&path).expect("the cassette");
    let changed = triage::Input {
        text: "Acme Sync crashes, is slow and cannot export PDFs".into(),
    };
    let outcome = triage::execute(&runtime(replay, Arc::default()), changed).await;
    let error = outcome.result.expect_err("a miss");
    let message = format!("{error:#}");
    assert!(message.contains("step `extract`"), "{message}");
    assert!(
        message.contains("no recorded reply in the cassette"),
        "{message}"
    );
    assert!(message.contains("cannot export PDFs"), "{message}");
    let extract = &outcome.report.steps[0];
    assert_eq!(extract.attempts, 1, "a miss is not retried");
}
