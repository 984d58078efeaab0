//! Map steps: `step!(key = f(each list), concurrency = N)` runs the step
//! once per element, at most N at a time, each element its own unit (its
//! own attempts, journal entry and address); the key holds the results in
//! input order.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use prompt_chain::llm::ScriptedReply;
use prompt_chain::prelude::*;
use prompt_chain::store::MemoryStore;
use prompt_chain::{RunId, report::StepStatus};

const MS: Duration = Duration::from_millis(1);

#[step]
async fn split(_cx: &StepCx, text: &str) -> StepResult<Vec<String>> {
    Ok(text.split(',').map(str::to_owned).collect())
}

/// Asks the model about one issue; the reply is the issue's sentiment.
#[step]
async fn classify(cx: &StepCx, issue: &str, tone: &str) -> StepResult<String> {
    // In a map step, the element's position; in a sub-chain mapped by its
    // caller, the step itself is not a map.
    let item = cx.item().map_or("-".to_owned(), |item| item.to_string());
    let reply = cx
        .llm()
        .text(format!("{tone}: classify #{item} {issue}"))
        .await?;
    Ok(reply)
}

#[step]
async fn count(_cx: &StepCx, sentiments: &[String]) -> StepResult<usize> {
    Ok(sentiments.len())
}

#[chain]
async fn sentiments(text: String, tone: String) -> usize {
    step!(issues = split(text));
    step!(labels = classify(each issues, tone), concurrency = 16, retry = 1);
    step!(total = count(labels));
    total
}

fn echo_model() -> ScriptedModel {
    // Each reply is the issue itself, after 50 ms.
    ScriptedModel::new().on_step(
        "classify",
        ScriptedReply::from_fn(|request| {
            request
                .prompt()
                .rsplit(' ')
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .after(MS * 50),
    )
}

fn input(n: usize) -> sentiments::Input {
    sentiments::Input {
        text: (0..n)
            .map(|i| format!("i{i}"))
            .collect::<Vec<_>>()
            .join(","),
        tone: "neutral".into(),
    }
}

#[tokio::test(start_paused = true)]
async fn a_thousand_items_sixteen_at_a_time_take_exactly_ceil_n_over_c_rounds() {
    let model = echo_model();
    let rt = Runtime::builder().model(model.clone()).build();
    let outcome = sentiments::execute(&rt, input(1000)).await;
    let out = outcome.result.expect("every item answers");
    assert_eq!(out.total, 1000);
    // In input order, whatever order they finished in.
    let expected: Vec<String> = (0..1000).map(|i| format!("i{i}")).collect();
    assert_eq!(out.labels, expected);
    // ceil(1000 / 16) = 63 rounds of 50 ms.
    let map = outcome.report.step("labels").expect("recorded");
    assert_eq!(map.duration(), Some(MS * 50 * 63));
    assert_eq!(map.status, StepStatus::Succeeded);
    assert_eq!(map.attempts, 1000);
    assert_eq!(model.call_count(), 1000);
    // One row per element, summed up readably.
    assert_eq!(map.items.len(), 1000);
    let summary = map.item_summary().expect("a map step");
    assert_eq!(
        (summary.total, summary.succeeded, summary.failed),
        (1000, 1000, 0)
    );
    assert_eq!((summary.p50, summary.max), (Some(MS * 50), Some(MS * 50)));
    assert!(map.items.iter().all(|row| row.usage.total() > 0));
    let per_item = map
        .items
        .iter()
        .fold(prompt_chain::llm::Usage::default(), |sum, row| {
            sum + row.usage
        });
    assert_eq!(per_item, map.usage, "every token is in one element's row");
    assert_eq!(map.items[999].started_at, Some(MS * 50 * 62));
    // The key's size is the whole list's, not its last element's.
    let json = serde_json::to_string(&out.labels).expect("strings serialize");
    assert_eq!(map.output_bytes, Some(json.len() as u64));
    // The HTML timeline draws the 1,000 elements as one bar with its summary.
    let page = outcome.report.to_html();
    assert!(
        page.contains("1000 elements: 1000 succeeded, 0 failed"),
        "the summary bar"
    );
    assert!(page.len() < 20_000, "{} bytes", page.len());
    // The shared input reached every item; each item knew its position.
    let calls = model.calls();
    assert!(
        calls
            .iter()
            .all(|c| c.prompt().starts_with("neutral: classify #"))
    );
    assert!(
        calls
            .iter()
            .any(|c| c.prompt() == "neutral: classify #999 i999")
    );
}

fn failing_at(bad: &'static str, calls: Arc<AtomicUsize>) -> ScriptedModel {
    ScriptedModel::new().on_step(
        "classify",
        ScriptedReply::from_completion_fn(move |request, _| {
            calls.fetch_add(1, Ordering::SeqCst);
            let issue = request.prompt().rsplit(' ').next().unwrap_or_default();
            if issue == bad {
                Err(prompt_chain::llm::LlmError::Scripted {
                    message: format!("cannot read {issue}"),
                    retryable: false,
                })
            } else {
                Ok(prompt_chain::llm::Completion {
                    tool_calls: Vec::new(),
                    text: issue.to_owned(),
                    finish_reason: prompt_chain::llm::FinishReason::Stop,
                    usage: prompt_chain::llm::Usage::new(3, 1),
                })
            }
        })
        .after(MS * 10),
    )
}

/// Items 0–4 answer after 2 ms, item 5 fails after 5 ms, the rest answer
/// after 10 ms.
#[derive(Debug)]
struct Staggered {
    calls: Arc<AtomicUsize>,
}

impl prompt_chain::llm::LanguageModel for Staggered {
    fn name(&self) -> &str {
        "staggered"
    }

    fn complete<'a>(
        &'a self,
        request: &'a prompt_chain::llm::ChatRequest,
    ) -> prompt_chain::llm::BoxFuture<
        'a,
        Result<prompt_chain::llm::Completion, prompt_chain::llm::LlmError>,
    > {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let issue = request
            .prompt()
            .rsplit(' ')
            .next()
            .unwrap_or_default()
            .to_owned();
        let n: usize = issue.trim_start_matches('i').parse().unwrap_or(0);
        Box::pin(async move {
            let after = match n {
                0..=4 => 2,
                5 => 5,
                _ => 10,
            };
            tokio::time::sleep(MS * after).await;
            if n == 5 {
                return Err(prompt_chain::llm::LlmError::Scripted {
                    message: format!("cannot read {issue}"),
                    retryable: false,
                });
            }
            Ok(prompt_chain::llm::Completion {
                tool_calls: Vec::new(),
                text: issue,
                finish_reason: prompt_chain::llm::FinishReason::Stop,
                usage: prompt_chain::llm::Usage::new(3, 1),
            })
        })
    }
}

#[tokio::test(start_paused = true)]
async fn the_first_failed_item_stops_the_map_and_is_named_with_the_finished_ones_kept() {
    let calls = Arc::new(AtomicUsize::new(0));
    let rt = Runtime::builder()
        .model(Staggered {
            calls: Arc::clone(&calls),
        })
        .build();
    let outcome = sentiments::execute(&rt, input(40)).await;
    let error = outcome.result.expect_err("item 5 fails");
    assert_eq!(error.item(), Some(5));
    assert_eq!(error.key(), Some("labels"));
    assert!(
        error.to_string().contains("failed on item 5, attempt 1: ")
            && error.to_string().contains("cannot read i5"),
        "{error}"
    );
    // 16 started at once; items 0–4 finished at 2 ms and 5 more started;
    // item 5 failed at 5 ms, cancelling the others; the rest never started.
    assert_eq!(calls.load(Ordering::SeqCst), 21);
    let finished = error.completed().get("labels").expect("the map's context");
    let finished = finished.as_array().expect("one entry per item");
    assert_eq!(finished.len(), 40);
    let kept: Vec<_> = finished
        .iter()
        .enumerate()
        .filter(|(_, value)| !value.is_null())
        .map(|(item, value)| (item, value.as_str().unwrap_or_default().to_owned()))
        .collect();
    let expected: Vec<_> = (0..5).map(|i| (i, format!("i{i}"))).collect();
    assert_eq!(kept, expected);
    // The report's rows: finished, failed, cancelled, never started.
    let rows = &outcome.report.step("labels").expect("recorded").items;
    let status = |item: usize| rows[item].status;
    assert_eq!(status(0), StepStatus::Succeeded);
    assert_eq!(status(5), StepStatus::Failed);
    assert_eq!(status(6), StepStatus::Running, "cancelled in flight");
    assert_eq!(status(30), StepStatus::Pending, "never started");
    let summary = outcome.report.step("labels").and_then(|s| s.item_summary());
    let summary = summary.expect("a map step");
    assert_eq!(
        (summary.succeeded, summary.failed, summary.unfinished),
        (5, 1, 34)
    );
}

#[tokio::test(start_paused = true)]
async fn a_resumed_map_runs_only_the_items_it_had_not_finished() {
    let store = Arc::new(MemoryStore::new());
    let id = RunId::named("map-resume").expect("a valid id");
    // First execution: items 0..16 run at once; i20 fails in the second round.
    let calls = Arc::new(AtomicUsize::new(0));
    let rt = Runtime::builder()
        .model(failing_at("i20", Arc::clone(&calls)))
        .checkpoints(Arc::clone(&store))
        .build();
    let outcome = sentiments::execute_as(&rt, id, input(24)).await;
    assert_eq!(outcome.result.expect_err("i20 fails").item(), Some(20));
    let first = calls.load(Ordering::SeqCst);
    assert_eq!(first, 24, "two rounds: 16, then the last 8");

    // The model is fixed: only the items without a saved output run again.
    let calls = Arc::new(AtomicUsize::new(0));
    let rt = Runtime::builder()
        .model(failing_at("none", Arc::clone(&calls)))
        .checkpoints(Arc::clone(&store))
        .build();
    let outcome = sentiments::execute_as(&rt, id, input(24)).await;
    let out = outcome.result.expect("the rest succeeds");
    assert_eq!(out.total, 24);
    let expected: Vec<String> = (0..24).map(|i| format!("i{i}")).collect();
    assert_eq!(out.labels, expected);
    let rerun = calls.load(Ordering::SeqCst);
    assert!(
        (1..=8).contains(&rerun),
        "only the unfinished items of the second round ran again: {rerun}"
    );
}

#[chain]
async fn classify_one(issue: String, tone: String) -> String {
    step!(label = classify(issue, tone));
    label
}

#[chain]
async fn nested(text: String, tone: String) -> usize {
    step!(issues = split(text));
    step!(labels = classify_one(each issues, tone), concurrency = 4);
    step!(total = count_nested(labels));
    total
}

#[step]
async fn count_nested(_cx: &StepCx, labels: &[String]) -> StepResult<usize> {
    Ok(labels.iter().filter(|label| label.starts_with('i')).count())
}

#[tokio::test(start_paused = true)]
async fn a_sub_chain_can_be_mapped_each_item_its_own_run() {
    let rt = Runtime::builder().model(echo_model()).build();
    let outcome = nested::execute(
        &rt,
        nested::Input {
            text: "i0,i1,i2,i3,i4,i5,i6,i7,i8".into(),
            tone: "calm".into(),
        },
    )
    .await;
    assert_eq!(outcome.result.expect("ok").total, 9);
    let map = outcome.report.step("labels").expect("recorded");
    assert_eq!(map.sub_runs.len(), 9);
    let ids: std::collections::HashSet<_> = map.sub_runs.iter().map(|s| s.report.run_id).collect();
    assert_eq!(ids.len(), 9, "each item has its own sub-run id");
    // ceil(9 / 4) = 3 rounds of 50 ms.
    assert_eq!(map.duration(), Some(MS * 150));
}

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
enum Size {
    Small,
    Large,
}

#[step]
async fn size(_cx: &StepCx, issues: &[String]) -> StepResult<Size> {
    Ok(if issues.len() > 2 {
        Size::Large
    } else {
        Size::Small
    })
}

#[step]
async fn summarize_all(_cx: &StepCx, issues: &[String]) -> StepResult<Vec<String>> {
    Ok(vec![issues.join("+")])
}

#[chain]
async fn routed(text: String, tone: String) -> Vec<String> {
    step!(issues = split(text));
    step!(kind = size(issues));
    route!(kind {
        Size::Large => step!(labels = classify(each issues, tone), concurrency = 2),
        Size::Small => step!(labels = summarize_all(issues)),
    });
    labels
}

#[tokio::test(start_paused = true)]
async fn a_map_runs_inside_a_route_arm() {
    let rt = Runtime::builder().model(echo_model()).build();
    let run = |text: &str| {
        routed::execute(
            &rt,
            routed::Input {
                text: text.into(),
                tone: "dry".into(),
            },
        )
    };
    let outcome = run("i0,i1,i2").await;
    assert_eq!(outcome.result.expect("ok").labels, ["i0", "i1", "i2"]);
    // ceil(3 / 2) = 2 rounds of 50 ms.
    let map = outcome.report.step("labels").expect("recorded");
    assert_eq!(map.duration(), Some(MS * 100));
    let outcome = run("i0,i1").await;
    assert_eq!(outcome.result.expect("ok").labels, ["i0+i1"]);
}

#[chain]
async fn tolerant(text: String, tone: String) -> Vec<Result<String, prompt_chain::ItemError>> {
    step!(issues = split(text));
    step!(labels = classify(each issues, tone), concurrency = 16, on_error = collect);
    labels
}

#[tokio::test(start_paused = true)]
async fn collecting_keeps_going_past_a_bad_item_and_types_each_outcome() {
    let calls = Arc::new(AtomicUsize::new(0));
    let ended = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = Arc::clone(&ended);
    let rt = Runtime::builder()
        .model(Staggered {
            calls: Arc::clone(&calls),
        })
        .observer(move |event: &prompt_chain::events::Event| {
            if let prompt_chain::events::EventKind::ItemFinished {
                item,
                succeeded,
                usage,
                ..
            } = &event.kind
            {
                sink.lock()
                    .expect("lock")
                    .push((*item, *succeeded, usage.total()));
            }
        })
        .build();
    let input = input(40);
    let outcome = tolerant::execute(
        &rt,
        tolerant::Input {
            text: input.text,
            tone: input.tone,
        },
    )
    .await;
    let labels = outcome
        .result
        .expect("one bad item does not sink the batch")
        .labels;
    assert_eq!(labels.len(), 40);
    assert_eq!(calls.load(Ordering::SeqCst), 40);
    for (item, label) in labels.iter().enumerate() {
        match label {
            Ok(label) => assert_eq!(label, &format!("i{item}")),
            Err(error) => {
                assert_eq!(item, 5);
                assert_eq!(error.item, 5);
                assert!(!error.retryable);
                assert!(error.message.contains("cannot read i5"), "{error}");
            }
        }
    }
    assert_eq!(labels.iter().filter(|l| l.is_err()).count(), 1);
    // One event per element, with its outcome and tokens.
    let mut ended = ended.lock().expect("lock").clone();
    ended.sort_unstable();
    assert_eq!(ended.len(), 40);
    assert_eq!(ended[5], (5, false, 0));
    assert!(ended.iter().filter(|e| e.0 != 5).all(|e| e.1 && e.2 == 4));
}

/// The graph pictures draw a map step as its own shape; the snapshot is
/// parsed by Mermaid itself in CI (`tests/render`).
#[test]
fn the_graph_draws_a_map_node() {
    let mermaid = sentiments::graph().mermaid;
    assert!(
        mermaid.contains("[[\"classify → labels (each issues, ≤ 16 at once)\"]]"),
        "{mermaid}"
    );
    if std::env::var_os("PROMPT_CHAIN_WRITE_SNAPSHOTS").is_some() {
        std::fs::write("tests/snapshots/map.mmd", mermaid).expect("write the snapshot");
    }
    assert_eq!(
        mermaid,
        include_str!("snapshots/map.mmd"),
        "regenerate with PROMPT_CHAIN_WRITE_SNAPSHOTS=1 cargo test --test map if the change is intended"
    );
    assert!(sentiments::graph().dot.contains("shape=box3d"));
}

#[chain]
async fn shout_one(word: String) -> String {
    step!(loud = shout_word(word));
    loud
}

#[step]
async fn shout_word(_cx: &StepCx, word: &str) -> StepResult<String> {
    Ok(word.to_uppercase())
}

/// Each element calls the sub-chain twice, waiting between the calls so
/// that the other elements' calls come in between.
#[step]
async fn shout_twice(cx: &StepCx, word: &str) -> StepResult<String> {
    let first = shout_one(cx, format!("{word}-a")).await?;
    tokio::time::sleep(MS * (10 * (word.len() as u32 % 3 + 1))).await;
    let second = shout_one(cx, format!("{word}-b")).await?;
    Ok(format!("{first}+{second}"))
}

#[step]
async fn words(_cx: &StepCx, text: &str) -> StepResult<Vec<String>> {
    Ok(text.split(',').map(str::to_owned).collect())
}

#[chain]
async fn twice(text: String) -> Vec<String> {
    step!(all = words(text));
    step!(shouted = shout_twice(each all), concurrency = 4);
    shouted
}

#[tokio::test(start_paused = true)]
async fn elements_calling_a_sub_chain_twice_each_keep_their_own_call_addresses() {
    // Interleaved elements must not share a call counter: with a store, a
    // second call taking the first one's address would restore its answer.
    let rt = Runtime::builder().checkpoints(MemoryStore::new()).build();
    let input = twice::Input {
        text: "a,bb,ccc,dddd".into(),
    };
    let outcome = twice::execute(&rt, input).await;
    let shouted = outcome.result.expect("every element completes").shouted;
    assert_eq!(
        shouted,
        ["A-A+A-B", "BB-A+BB-B", "CCC-A+CCC-B", "DDDD-A+DDDD-B"]
    );
    let map = outcome.report.step("shouted").expect("recorded");
    let ids: std::collections::HashSet<_> = map.sub_runs.iter().map(|s| s.report.run_id).collect();
    assert_eq!(ids.len(), 8, "eight calls, eight runs");
}
