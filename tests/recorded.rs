//! The examples replayed offline from cassettes recorded against a real
//! model (llama.cpp's `llama-server` with SmolLM2-135M-Instruct): the run
//! must give the outputs and the report the recording run gave.
//!
//! Re-record (a server on 127.0.0.1:8089, see ../shared/tools/llm-server/):
//!
//! ```text
//! PROMPT_CHAIN_RECORD=1 PROMPT_CHAIN_MODEL=openai-compatible:smol \
//!   PROMPT_CHAIN_BASE_URL=http://127.0.0.1:8089/v1 cargo test --test recorded
//! ```
//!
//! Recording rewrites `tests/cassettes/<example>.jsonl` (the calls) and
//! `<example>.snapshot.json` (what the run gave); a replay compares with them.
//! The router evaluation's cassette (`examples/support_router/eval.cassette.jsonl`)
//! is recorded by `cargo run --example router_eval` (see its header); with
//! `PROMPT_CHAIN_RECORD=1` this test then snapshots a replay of it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use prompt_chain::Runtime;
use prompt_chain::events::{Event, EventKind};
use prompt_chain::llm::{Cassette, LanguageModel, model_from_env, recording_requested};
use prompt_chain::report::ExecutionReport;
use serde_json::{Value, json};

#[allow(dead_code, private_interfaces)]
#[path = "../examples/feedback_analysis.rs"]
mod feedback_analysis_example;

#[allow(dead_code, private_interfaces)]
#[path = "../examples/parallel_analysis.rs"]
mod parallel_analysis_example;

fn cassettes() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/cassettes")
}

fn recording() -> bool {
    recording_requested()
}

/// The model for `name`: the real one wrapped in a recorder, or the replay.
fn model(name: &str) -> std::sync::Arc<dyn LanguageModel> {
    let path = cassettes().join(format!("{name}.jsonl"));
    if recording() {
        let real = model_from_env()
            .expect("a model configuration")
            .expect("recording needs PROMPT_CHAIN_MODEL");
        std::sync::Arc::new(Cassette::record(&path, real).expect("a cassette"))
    } else {
        std::sync::Arc::new(Cassette::replay(&path).expect("the recorded cassette"))
    }
}

/// What a replay must reproduce of a report (not its timings).
fn report_essentials(report: &ExecutionReport) -> Value {
    let steps: Vec<Value> = report
        .steps
        .iter()
        .map(|step| {
            json!({
                "step": step.name,
                "status": step.status,
                "attempts": step.attempts,
                "model_reasks": step.model_reasks,
                "usage": step.usage,
                "items": step.items.len(),
            })
        })
        .collect();
    json!({ "status": report.status, "steps": steps, "usage": report.usage })
}

/// Records the snapshot, or checks the replay against it.
fn check(name: &str, snapshot: Value) {
    let path = cassettes().join(format!("{name}.snapshot.json"));
    if recording() {
        let text = serde_json::to_string_pretty(&snapshot).expect("json");
        std::fs::write(&path, text + "\n").expect("the snapshot is written");
        return;
    }
    let recorded: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("the recorded snapshot"))
            .expect("the snapshot is JSON");
    assert_eq!(snapshot, recorded, "the replay differs from the recording");
}

#[tokio::test]
async fn feedback_analysis_replays_a_real_model_run() {
    let rt = Runtime::builder()
        .shared_model(model("feedback_analysis"))
        .build();
    let outcome = feedback_analysis_example::demo(&rt).await;
    let result = match &outcome.result {
        Ok(out) => json!({ "ok": out }),
        Err(error) => json!({ "error": error.to_string() }),
    };
    check(
        "feedback_analysis",
        json!({ "result": result, "report": report_essentials(&outcome.report) }),
    );
}

#[tokio::test]
async fn parallel_analysis_replays_a_real_model_run_streamed() {
    // What each step streamed: pieces and characters (elements of a map
    // stream side by side, so their order is not compared).
    let streamed: Arc<Mutex<BTreeMap<&'static str, (usize, usize)>>> = Arc::default();
    let seen = Arc::clone(&streamed);
    let rt = Runtime::builder()
        .shared_model(model("parallel_analysis"))
        .stream_tokens(true)
        .observer(move |event: &Event| {
            if let EventKind::TokenDelta { step, text, .. } = &event.kind {
                let mut seen = seen.lock().expect("lock");
                let entry = seen.entry(*step).or_default();
                entry.0 += 1;
                entry.1 += text.chars().count();
            }
        })
        .build();
    let outcome = parallel_analysis_example::demo(&rt).await;
    let result = match &outcome.result {
        Ok(out) => json!({ "ok": out }),
        Err(error) => json!({ "error": error.to_string() }),
    };
    let streamed = streamed.lock().expect("lock").clone();
    assert!(!streamed.is_empty(), "the replies were streamed");
    check(
        "parallel_analysis",
        json!({
            "result": result,
            "report": report_essentials(&outcome.report),
            "streamed": streamed,
        }),
    );
}

#[allow(dead_code, unused_imports, private_interfaces)]
#[path = "../examples/support_router/eval.rs"]
mod router_eval_example;

/// `cargo run --example router_eval` offline: the 60 labelled tickets
/// answered from the cassette recorded against llama-server, graded as
/// when it was recorded.
#[tokio::test]
async fn router_eval_replays_its_cassette_with_the_recorded_grades() {
    let cassette = router_eval_example::router::example_dir().join("eval.cassette.jsonl");
    if recording() {
        // `cargo run --example router_eval` records this cassette; the
        // snapshot below is taken from a replay of it.
        assert!(
            cassette.exists(),
            "record the cassette with the example first"
        );
    }
    let replay = std::sync::Arc::new(Cassette::replay(&cassette).expect("the cassette"));
    let report = router_eval_example::evaluate_with(replay, false)
        .await
        .expect("the evaluation runs");
    assert_eq!(report.cases_run, 60);
    assert!(report.cost_usd.is_some_and(|cost| cost > 0.0));
    let metrics: Vec<Value> = report
        .metrics
        .iter()
        .map(|m| json!({ "key": m.key, "passed": m.passed, "graded": m.graded }))
        .collect();
    let steps: Vec<Value> = report
        .steps
        .iter()
        .map(|s| json!({ "step": s.step, "runs": s.runs, "succeeded": s.succeeded, "tokens": s.tokens }))
        .collect();
    check(
        "router_eval",
        json!({
            "passed": report.passed,
            "completed": report.completed,
            "tokens": report.tokens,
            "metrics": metrics,
            "steps": steps,
        }),
    );
}
