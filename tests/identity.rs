//! Every unit of work has one durable address: run / step key / iteration /
//! call ordinal. A step that calls one sub-chain several times makes several
//! units, and turning durability on never changes an answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use prompt_chain::llm::ScriptedReply;
use prompt_chain::prelude::*;
use prompt_chain::store::{MemoryStore, SqliteStore};
use prompt_chain::{FailureKind, RunId};

/// Classifies one item: a sub-chain with one model call.
#[chain]
async fn classify_one(item: String) -> String {
    step!(label = label(item));
    label
}

#[step]
async fn label(cx: &StepCx, item: &str) -> StepResult<String> {
    Ok(cx.llm().text(format!("label: {item}")).await?)
}

/// Calls `classify_one` once per item, in order, inside one step.
#[step]
async fn classify_each(cx: &StepCx, items: &[String]) -> StepResult<Vec<String>> {
    let mut labels = Vec::with_capacity(items.len());
    for item in items {
        if cx
            .dep::<Arc<AtomicBool>>()
            .is_some_and(|stop| stop.load(Ordering::SeqCst))
            && labels.len() == 3
        {
            return Err(StepError::msg("the step stops after three calls").permanent());
        }
        labels.push(classify_one(cx, item.clone()).await?);
    }
    Ok(labels)
}

#[chain]
async fn batch(items: Vec<String>) -> Vec<String> {
    step!(labels = classify_each(items));
    labels
}

fn items() -> Vec<String> {
    ["apple", "brick", "cloud", "daisy", "eagle"]
        .map(String::from)
        .to_vec()
}

/// A model that labels each item by its prompt, counting every call.
fn model() -> ScriptedModel {
    let mut model = ScriptedModel::new();
    for item in items() {
        model = model.on_prompt(
            format!("label: {item}"),
            ScriptedReply::text(item.to_uppercase()),
        );
    }
    model
}

#[tokio::test]
async fn a_sub_chain_called_five_times_gives_five_answers_with_any_store() {
    let expected: Vec<String> = items().iter().map(|i| i.to_uppercase()).collect();
    let dir = tempfile::tempdir().expect("a temporary directory");
    for name in ["none", "memory", "sqlite"] {
        let model = model();
        let builder = Runtime::builder().model(model.clone());
        let rt = match name {
            "memory" => builder.checkpoints(MemoryStore::new()).build(),
            "sqlite" => builder
                .checkpoints(SqliteStore::open(dir.path().join("runs.db")).expect("opens"))
                .build(),
            _ => builder.build(),
        };
        let outcome = batch::execute(&rt, batch::Input { items: items() }).await;
        let labels = outcome.result.expect("the batch completes").labels;
        assert_eq!(labels, expected, "store {name}");
        assert_eq!(model.calls().len(), 5, "five model calls with store {name}");
        // The sub-chains' tokens count in the calling step and in the run:
        // each call is "label: xxxxx" (3 tokens in) and "XXXXX" (2 out).
        let step = outcome.report.step("labels").expect("recorded");
        assert_eq!(step.usage.input_tokens, 15, "store {name}");
        assert_eq!(step.usage.output_tokens, 10, "store {name}");
        assert_eq!(outcome.report.usage, step.usage, "store {name}");
    }
}

#[tokio::test]
async fn a_resumed_step_restores_the_calls_it_made_and_makes_the_rest() {
    let model = model();
    let stop = Arc::new(AtomicBool::new(true));
    let rt = Runtime::builder()
        .model(model.clone())
        .checkpoints(MemoryStore::new())
        .dependency(Arc::clone(&stop))
        .build();
    let failed = batch::execute(&rt, batch::Input { items: items() }).await;
    assert!(failed.result.is_err(), "the step stops after three calls");
    assert_eq!(model.calls().len(), 3);
    stop.store(false, Ordering::SeqCst);
    let resumed = batch::resume(&rt, failed.report.run_id).await;
    let labels = resumed.result.expect("the resumed batch completes").labels;
    assert_eq!(labels, ["APPLE", "BRICK", "CLOUD", "DAISY", "EAGLE"]);
    assert_eq!(
        model.calls().len(),
        5,
        "the three recorded calls were restored, the two others made"
    );
}

/// Calls its sub-chain on the items in the order a flag says.
#[step]
async fn classify_in_some_order(cx: &StepCx, items: &[String]) -> StepResult<Vec<String>> {
    let reversed = cx
        .dep::<Arc<AtomicBool>>()
        .is_some_and(|r| r.load(Ordering::SeqCst));
    let mut labels = Vec::new();
    let order: Vec<&String> = if reversed {
        items.iter().rev().collect()
    } else {
        items.iter().collect()
    };
    for item in order {
        labels.push(classify_one(cx, item.clone()).await?);
    }
    if !reversed {
        return Err(StepError::msg("fails after its calls, to be resumed").permanent());
    }
    Ok(labels)
}

#[chain]
async fn unstable(items: Vec<String>) -> Vec<String> {
    step!(labels = classify_in_some_order(items));
    labels
}

#[tokio::test]
async fn calls_replayed_in_another_order_are_a_typed_error_naming_the_step() {
    let reversed = Arc::new(AtomicBool::new(false));
    let rt = Runtime::builder()
        .model(model())
        .checkpoints(MemoryStore::new())
        .dependency(Arc::clone(&reversed))
        .build();
    let failed = unstable::execute(&rt, unstable::Input { items: items() }).await;
    assert!(failed.result.is_err());
    reversed.store(true, Ordering::SeqCst);
    let resumed = unstable::resume(&rt, failed.report.run_id).await;
    let error = resumed
        .result
        .expect_err("the replay differs from the journal");
    assert_eq!(error.step(), Some("classify_in_some_order"));
    let root = error.root_cause();
    assert!(
        matches!(root.kind(), FailureKind::ReplayMismatch { ordinal: 0, .. }),
        "{:?}",
        root.kind()
    );
    let message = error.to_string();
    assert!(message.contains("call #0"), "{message}");
}

#[tokio::test]
async fn resuming_an_unknown_run_says_not_found() {
    let rt = Runtime::builder().checkpoints(MemoryStore::new()).build();
    let outcome = batch::resume(&rt, RunId::new()).await;
    let message = outcome.result.expect_err("no such run").to_string();
    assert!(message.contains("has no run"), "{message}");
    assert!(!message.contains("I/O"), "{message}");
}

/// Wraps a model and adds up the usage of every completion it returned.
#[derive(Debug)]
struct Counting {
    inner: ScriptedModel,
    usage: Arc<std::sync::Mutex<prompt_chain::llm::Usage>>,
}

impl prompt_chain::llm::LanguageModel for Counting {
    fn name(&self) -> &str {
        "counting"
    }

    fn complete<'a>(
        &'a self,
        request: &'a prompt_chain::llm::ChatRequest,
    ) -> prompt_chain::llm::BoxFuture<
        'a,
        Result<prompt_chain::llm::Completion, prompt_chain::llm::LlmError>,
    > {
        Box::pin(async move {
            let completion = self.inner.complete(request).await?;
            let mut usage = self.usage.lock().expect("lock");
            *usage = *usage + completion.usage;
            Ok(completion)
        })
    }
}

#[step]
async fn refine(cx: &StepCx, draft: &str) -> StepResult<String> {
    let better = cx.llm().text(format!("refine: {draft}")).await?;
    Ok(format!("{draft}+{}", better.len()))
}

fn long_enough(text: &str) -> bool {
    text.len() > 24
}

#[chain]
async fn pipeline(items: Vec<String>) -> Loop<String> {
    step!(labels = classify_each(items));
    step!(first: String = join_labels(labels));
    step!(polished = refine(first), until = long_enough, max = 4);
    polished
}

async fn join_labels(_cx: &StepCx, labels: &[String]) -> StepResult<String> {
    Ok(labels.join(","))
}

#[tokio::test]
async fn run_totals_are_every_model_call_sub_chains_and_loops_included() {
    let usage = Arc::new(std::sync::Mutex::new(prompt_chain::llm::Usage::default()));
    let model = Counting {
        inner: model().on_prompt("refine:", "ok"),
        usage: Arc::clone(&usage),
    };
    let rt = Runtime::builder()
        .model(model)
        .prices(prompt_chain::llm::PriceTable::new().model("counting", 1_000.0, 2_000.0))
        .build();
    let outcome = pipeline::execute(&rt, pipeline::Input { items: items() }).await;
    let polished = outcome.result.expect("completes").polished;
    assert!(polished.iterations >= 1);
    let served = *usage.lock().expect("lock");
    assert_eq!(outcome.report.usage, served, "every token the model served");
    let expected_cost =
        (served.input_tokens as f64 * 1_000.0 + served.output_tokens as f64 * 2_000.0) / 1e6;
    let cost = outcome.report.cost_usd.expect("priced");
    assert!(
        (cost - expected_cost).abs() < 1e-9,
        "{cost} vs {expected_cost}"
    );
    // The sub-chain runs hang under the step that called them.
    let labels = outcome.report.step("labels").expect("recorded");
    assert_eq!(labels.sub_runs.len(), 5);
    assert!(
        labels
            .sub_runs
            .iter()
            .all(|sub| sub.report.chain == "classify_one")
    );
    let html = outcome.report.to_html();
    assert_eq!(html.matches("↳ classify_one › label → label").count(), 5);
}

/// Calls `classify_one` per item; its first attempt fails (retryably) after
/// three calls.
#[step]
async fn classify_flaky(cx: &StepCx, items: &[String]) -> StepResult<Vec<String>> {
    let mut labels = Vec::new();
    for item in items {
        if cx.attempt() == 1 && labels.len() == 3 {
            return Err(StepError::msg("a hiccup after three calls").transient());
        }
        labels.push(classify_one(cx, item.clone()).await?);
    }
    Ok(labels)
}

#[chain]
async fn flaky_batch(items: Vec<String>) -> Vec<String> {
    step!(labels = classify_flaky(items), retry = 1);
    labels
}

#[tokio::test(start_paused = true)]
async fn a_retried_attempt_replays_its_calls_from_the_journal() {
    let model = model();
    let rt = Runtime::builder()
        .model(model.clone())
        .checkpoints(MemoryStore::new())
        .build();
    let outcome = flaky_batch::execute(&rt, flaky_batch::Input { items: items() }).await;
    let labels = outcome.result.expect("the retry completes").labels;
    assert_eq!(labels, ["APPLE", "BRICK", "CLOUD", "DAISY", "EAGLE"]);
    assert_eq!(
        model.calls().len(),
        5,
        "the second attempt restored the first attempt's three calls"
    );
    assert_eq!(outcome.report.step("labels").expect("recorded").attempts, 2);
}
