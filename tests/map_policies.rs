//! A map step's policies apply to each element on its own: a fallback
//! answers for the element whose retries are spent, a fallback model
//! re-runs only that element, the step-result cache keys each element on its
//! own inputs, and a deadline or timeout bounds each element.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use prompt_chain::events::{Event, EventKind, Observer};
use prompt_chain::llm::{ChatRequest, Completion, FinishReason, LlmError, ScriptedReply, Usage};
use prompt_chain::prelude::*;
use prompt_chain::report::StepStatus;
use prompt_chain::store::MemoryStore;

const MS: Duration = Duration::from_millis(1);

#[step]
async fn classify(cx: &StepCx, issue: &str, tone: &str) -> StepResult<String> {
    Ok(cx.llm().text(format!("{tone}: {issue}")).await?)
}

fn unknown() -> String {
    "unknown".to_owned()
}

#[chain]
async fn with_default(issues: Vec<String>, tone: String) -> Vec<String> {
    step!(labels = classify(each issues, tone), retry = 1, fallback = unknown);
    labels
}

#[chain]
async fn with_backup(issues: Vec<String>, tone: String) -> Vec<String> {
    step!(
        labels = classify(each issues, tone),
        fallback_model = "backup"
    );
    labels
}

#[chain]
async fn cached(issues: Vec<String>, tone: String) -> Vec<String> {
    step!(labels = classify(each issues, tone), cache = 1h);
    labels
}

#[chain]
async fn bounded(
    issues: Vec<String>,
    tone: String,
) -> Vec<Result<String, prompt_chain::ItemError>> {
    step!(
        labels = classify(each issues, tone),
        retry = 3,
        deadline = 100ms,
        concurrency = 2,
        on_error = collect
    );
    labels
}

/// Echoes the issue after `after`; fails (retryable) on `bad`, sleeps a
/// minute on `slow`.
fn model(calls: Arc<AtomicUsize>, after: Duration) -> ScriptedModel {
    ScriptedModel::new().otherwise(
        ScriptedReply::from_completion_fn(move |request: &ChatRequest, _| {
            calls.fetch_add(1, Ordering::SeqCst);
            let issue = request.prompt().rsplit(' ').next().unwrap_or_default();
            if issue == "bad" {
                return Err(LlmError::Scripted {
                    message: format!("cannot read {issue}"),
                    retryable: true,
                });
            }
            Ok(Completion {
                tool_calls: Vec::new(),
                text: issue.to_owned(),
                finish_reason: FinishReason::Stop,
                usage: Usage::new(3, 1),
            })
        })
        .after(after),
    )
}

fn issues(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// What an `ItemFinished` event said: element, succeeded, cached, fallback.
type Seen = (usize, bool, bool, Option<String>);

/// Every `ItemFinished` event, in order.
#[derive(Clone, Default)]
struct Items(Arc<std::sync::Mutex<Vec<Seen>>>);

impl Observer for Items {
    fn on_event(&self, event: &Event) {
        if let EventKind::ItemFinished {
            item,
            succeeded,
            cached,
            fallback,
            ..
        } = event.kind.clone()
            && let Ok(mut seen) = self.0.lock()
        {
            seen.push((item, succeeded, cached, fallback.clone()));
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_fallback_answers_for_the_element_that_failed_and_only_for_it() {
    let calls = Arc::new(AtomicUsize::new(0));
    let items = Items::default();
    let rt = Runtime::builder()
        .model(model(Arc::clone(&calls), MS * 10))
        .backoff(MS, MS)
        .observer(items.clone())
        .build();
    let input = with_default::Input {
        issues: issues(&["a", "bad", "c"]),
        tone: "calm".into(),
    };
    let outcome = with_default::execute(&rt, input).await;
    let labels = outcome.result.expect("the fallback answers").labels;
    assert_eq!(labels, issues(&["a", "unknown", "c"]));
    // Two attempts for the bad element (retry = 1), one for each other.
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    let step = outcome.report.step("labels").expect("recorded");
    assert_eq!(step.status, StepStatus::Succeeded);
    let rows = &step.items;
    assert_eq!(rows[1].fallback.as_deref(), Some("default"));
    assert_eq!(rows[1].attempts, 2);
    assert_eq!((rows[0].fallback.as_deref(), rows[0].attempts), (None, 1));
    assert_eq!(step.fallback, None, "the step as a whole did not fall back");
    let summary = step.item_summary().expect("a map step");
    assert_eq!((summary.succeeded, summary.fell_back), (3, 1));
    let seen = items.0.lock().expect("events").clone();
    assert!(
        seen.contains(&(1, true, false, Some("default".into()))),
        "{seen:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_fallback_model_reruns_only_the_failed_element() {
    let primary = Arc::new(AtomicUsize::new(0));
    let backup = Arc::new(AtomicUsize::new(0));
    let backup_model = ScriptedModel::new().otherwise(ScriptedReply::from_completion_fn({
        let backup = Arc::clone(&backup);
        move |_: &ChatRequest, _| {
            backup.fetch_add(1, Ordering::SeqCst);
            Ok(Completion {
                tool_calls: Vec::new(),
                text: "from backup".to_owned(),
                finish_reason: FinishReason::Stop,
                usage: Usage::new(3, 1),
            })
        }
    }));
    let rt = Runtime::builder()
        .model(model(Arc::clone(&primary), MS * 10))
        .named_model("backup", backup_model)
        .build();
    let input = with_backup::Input {
        issues: issues(&["a", "b", "bad", "d"]),
        tone: "calm".into(),
    };
    let outcome = with_backup::execute(&rt, input).await;
    let labels = outcome.result.expect("the backup answers").labels;
    assert_eq!(labels, issues(&["a", "b", "from backup", "d"]));
    assert_eq!(primary.load(Ordering::SeqCst), 4);
    assert_eq!(backup.load(Ordering::SeqCst), 1);
    let rows = &outcome.report.step("labels").expect("recorded").items;
    assert_eq!(rows[2].fallback.as_deref(), Some("model:backup"));
    assert_eq!(rows[2].status, StepStatus::Succeeded);
    assert_eq!(rows[2].attempts, 2, "one on each model");
}

#[tokio::test(start_paused = true)]
async fn the_cache_keys_each_element_on_its_own_inputs() {
    let calls = Arc::new(AtomicUsize::new(0));
    let rt = Runtime::builder()
        .model(model(Arc::clone(&calls), MS * 10))
        .checkpoints(MemoryStore::new())
        .build();
    let run = |list: &[&str], tone: &str| cached::Input {
        issues: issues(list),
        tone: tone.into(),
    };
    let first = cached::execute(&rt, run(&["a", "b", "c"], "calm")).await;
    assert_eq!(first.result.expect("runs").labels, issues(&["a", "b", "c"]));
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    // A new run over a list sharing two elements calls the model for the new one only.
    let second = cached::execute(&rt, run(&["c", "a", "z"], "calm")).await;
    assert_eq!(
        second.result.expect("runs").labels,
        issues(&["c", "a", "z"])
    );
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    let rows = &second.report.step("labels").expect("recorded").items;
    let status: Vec<StepStatus> = rows.iter().map(|row| row.status).collect();
    assert_eq!(
        status,
        [
            StepStatus::Cached,
            StepStatus::Cached,
            StepStatus::Succeeded
        ]
    );
    assert_eq!(rows[0].attempts, 0);
    let step = second.report.step("labels").expect("recorded");
    let summary = step.item_summary().expect("a map step");
    assert_eq!(
        (summary.cached, summary.succeeded, summary.unfinished),
        (2, 1, 0)
    );
    let table = second.report.to_string();
    assert!(
        table.contains("└ 3 elements: 1 succeeded, 2 cached; 1 attempts"),
        "{table}"
    );
    // The shared input is part of each element's key.
    let third = cached::execute(&rt, run(&["a"], "angry")).await;
    assert_eq!(third.result.expect("runs").labels, issues(&["a"]));
    assert_eq!(calls.load(Ordering::SeqCst), 5);
}

#[tokio::test(start_paused = true)]
async fn a_deadline_bounds_each_element_not_the_whole_map() {
    let calls = Arc::new(AtomicUsize::new(0));
    // Each call takes 60 ms: one attempt fits in the 100 ms deadline; the
    // bad element's retry (after 30 ms of backoff) does not. Two at a time,
    // the map takes 220 ms: a deadline of the whole map would have cut it.
    let rt = Runtime::builder()
        .model(model(Arc::clone(&calls), MS * 60))
        .backoff(MS * 30, MS * 30)
        .build();
    let list: Vec<&str> = (0..6).map(|i| if i == 3 { "bad" } else { "ok" }).collect();
    let input = bounded::Input {
        issues: issues(&list),
        tone: "calm".into(),
    };
    let outcome = bounded::execute(&rt, input).await;
    let labels = outcome.result.expect("collects").labels;
    for (item, label) in labels.iter().enumerate() {
        match (item, label) {
            (3, Err(error)) => assert!(error.message.contains("deadline"), "{}", error.message),
            (3, Ok(label)) => panic!("the bad element answered {label}"),
            (_, Ok(label)) => assert_eq!(label, "ok"),
            (_, Err(error)) => panic!("element {item} failed: {}", error.message),
        }
    }
    let step = outcome.report.step("labels").expect("recorded");
    assert_eq!(step.items[3].status, StepStatus::Failed);
    // 0,1: 0–60; 2: 60–120; 3: 60–160 (its deadline); 4: 120–180; 5: 160–220.
    assert_eq!(step.items[3].finished_at, Some(MS * 160));
    assert_eq!(step.duration(), Some(MS * 220));
}
