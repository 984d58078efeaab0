//! Observability: the event sequence of a run, the report's numbers under
//! paused time, the history, cancelled runs and tracing spans.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use prompt_chain::prelude::*;
use prompt_chain::{
    events::{Event, EventKind},
    llm::{PriceTable, ScriptedReply},
    report::{AttemptOutcome, RunStatus, StepStatus},
};

const MS: Duration = Duration::from_millis(1);

#[path = "support/desk.rs"]
mod desk_chain;

use desk_chain::{desk, model};

/// Events as short labels, to compare sequences.
fn label(event: &Event) -> String {
    match &event.kind {
        EventKind::RunStarted => "run started".into(),
        EventKind::StepStarted { step, attempt, .. } => format!("{step} started #{attempt}"),
        EventKind::StepRetried { step, attempt, .. } => format!("{step} retried after #{attempt}"),
        EventKind::StepFinished { step, attempts, .. } => format!("{step} finished in {attempts}"),
        EventKind::StepFailed { step, attempt, .. } => format!("{step} failed #{attempt}"),
        EventKind::StepSkipped { step, .. } => format!("{step} skipped"),
        EventKind::RouteTaken { key, arm } => format!("{key} → {arm}"),
        EventKind::LoopIteration {
            step, iteration, ..
        } => format!("{step} iteration {iteration}"),
        EventKind::RunFinished { status, .. } => format!("run {status:?}"),
        other => format!("{other:?}"),
    }
}

fn recorder() -> (
    Arc<Mutex<Vec<Event>>>,
    impl Fn(&Event) + Send + Sync + 'static,
) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    (events, move |event: &Event| {
        sink.lock().expect("lock").push(event.clone())
    })
}

#[tokio::test(start_paused = true)]
async fn events_of_a_run_with_a_route_a_retry_and_a_failure() {
    let (events, observer) = recorder();
    let publish = ScriptedReply::sequence([
        ScriptedReply::error("overloaded", true).after(MS * 50),
        ScriptedReply::error("quota exhausted", false).after(MS * 50),
    ]);
    let rt = Runtime::builder()
        .model(model(publish))
        .observer(observer)
        .backoff(MS * 10, MS * 10)
        .build();
    let error = desk::run(
        &rt,
        desk::Input {
            text: "broken!".into(),
        },
    )
    .await
    .expect_err("publish fails for good on its second attempt");
    assert_eq!(error.attempt(), 2);
    let labels: Vec<String> = events.lock().expect("lock").iter().map(label).collect();
    assert_eq!(
        labels,
        [
            "run started",
            "classify started #1",
            "classify finished in 1",
            "kind → Kind::Complaint",
            "answer skipped",
            "apologize started #1",
            "apologize finished in 1",
            "publish started #1",
            "publish retried after #1",
            "publish started #2",
            "publish failed #2",
            "run Failed",
        ]
    );
    let events = events.lock().expect("lock");
    let run_id = events[0].run_id;
    assert!(
        events
            .iter()
            .all(|e| e.run_id == run_id && &*e.chain_path == "desk")
    );
    // Timestamps follow the scripted latencies.
    let at = |wanted: &str| {
        events
            .iter()
            .find(|e| label(e) == wanted)
            .map(|e| e.elapsed)
            .expect("event present")
    };
    assert_eq!(at("classify finished in 1"), MS * 100);
    assert_eq!(at("apologize finished in 1"), MS * 300);
    match &events[8].kind {
        EventKind::StepRetried { delay, error, .. } => {
            assert!(*delay <= MS * 10);
            assert!(error.contains("overloaded"), "{error}");
        }
        other => panic!("expected a retry, got {other:?}"),
    }
    match &events[10].kind {
        EventKind::StepFailed {
            retryable, error, ..
        } => {
            assert!(!retryable);
            assert!(error.contains("quota exhausted"), "{error}");
        }
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn the_report_matches_the_scripted_durations() {
    let publish = ScriptedReply::sequence([
        ScriptedReply::error("overloaded", true).after(MS * 50),
        ScriptedReply::text("published").after(MS * 70),
    ]);
    let prices = PriceTable::new().model("scripted", 1.0, 2.0);
    let rt = Runtime::builder()
        .model(model(publish))
        .prices(prices)
        .backoff(MS * 40, MS * 40)
        .build();
    let outcome = desk::execute(
        &rt,
        desk::Input {
            text: "broken!".into(),
        },
    )
    .await;
    let report = outcome.report;
    let out = outcome.result.expect("the retry succeeds");
    assert_eq!(out.published, "published");
    assert_eq!(report.status, RunStatus::Completed);
    assert_eq!(
        (
            report.steps_completed,
            report.steps_failed,
            report.steps_skipped
        ),
        (3, 0, 1)
    );
    assert_eq!(report.route_taken("kind"), Some("Kind::Complaint"));

    let publish = report.step("publish").expect("recorded");
    assert_eq!(publish.attempts, 2);
    assert_eq!(publish.queue_time(), Some(Duration::ZERO));
    assert_eq!(publish.started_at, Some(MS * 300));
    let log: Vec<(AttemptOutcome, Duration, Duration)> = publish
        .attempt_log
        .iter()
        .map(|a| (a.outcome, a.started_at, a.finished_at))
        .collect();
    assert_eq!(log[0], (AttemptOutcome::Failed, MS * 300, MS * 350));
    let (outcome, second_start, second_end) = log[1];
    assert_eq!(outcome, AttemptOutcome::Succeeded);
    let backoff = second_start - MS * 350;
    assert!(backoff <= MS * 40, "{backoff:?}");
    assert_eq!(second_end - second_start, MS * 70);
    assert_eq!(report.duration, second_end);
    assert_eq!(publish.duration(), Some(second_end - MS * 300));

    // Output size is the JSON size; tokens and cost add up.
    let classify = report.step("classify").expect("recorded");
    assert_eq!(classify.output_bytes, Some("\"complaint\"".len() as u64));
    assert_eq!(publish.output_bytes, Some("\"published\"".len() as u64));
    let tokens: u64 = report.steps.iter().map(|s| s.usage.total()).sum();
    assert_eq!(report.usage.total(), tokens);
    assert!(tokens > 0);
    let expected_cost =
        (report.usage.input_tokens as f64 + 2.0 * report.usage.output_tokens as f64) / 1e6;
    let cost = report.cost_usd.expect("priced");
    assert!(
        (cost - expected_cost).abs() < 1e-12,
        "{cost} vs {expected_cost}"
    );

    // JSON and the table carry the same facts.
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).expect("valid JSON");
    assert_eq!(json["status"], "completed");
    assert_eq!(json["steps"][3]["attempts"], 2);
    assert_eq!(json["steps"][1]["status"], "skipped");
    let table = report.to_string();
    assert!(
        table.contains("publish") && table.contains("route on `kind`: Kind::Complaint"),
        "{table}"
    );
    assert_eq!(
        report.step("answer").map(|s| s.status),
        Some(StepStatus::Skipped)
    );
}

#[tokio::test(start_paused = true)]
async fn recent_runs_are_kept_by_id() {
    let rt = Runtime::builder()
        .model(model(ScriptedReply::text("ok")))
        .history(2)
        .build();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let outcome = desk::execute(&rt, desk::Input { text: "x".into() }).await;
        ids.push(outcome.report.run_id);
    }
    assert!(rt.report(ids[0]).is_none(), "the oldest run was evicted");
    let kept = rt.report(ids[2]).expect("the newest run is kept");
    assert_eq!(kept.status, RunStatus::Completed);
    assert_eq!(rt.recent_reports().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_dropped_run_is_reported_cancelled() {
    let (events, observer) = recorder();
    let rt = Runtime::builder()
        .model(model(ScriptedReply::hang()))
        .observer(observer)
        .build();
    let run = desk::run(&rt, desk::Input { text: "x".into() });
    assert!(
        tokio::time::timeout(Duration::from_secs(5), run)
            .await
            .is_err()
    );
    let events = events.lock().expect("lock");
    let last = events.last().expect("events");
    assert!(
        matches!(
            last.kind,
            EventKind::RunFinished {
                status: RunStatus::Cancelled,
                ..
            }
        ),
        "{last:?}"
    );
    let report = rt.report(last.run_id).expect("kept in history");
    assert_eq!(report.status, RunStatus::Cancelled);
    assert_eq!(
        report.step("publish").map(|s| s.status),
        Some(StepStatus::Running)
    );
}

/// A sub-chain's events reach the outer run's stream, with their path.
#[chain]
async fn outer(text: String) -> String {
    step!(inner = desk(text));
    step!(shouted = shout(inner));
    shouted
}

#[step]
async fn shout(_cx: &StepCx, text: &str) -> StepResult<String> {
    Ok(text.to_uppercase())
}

#[tokio::test(start_paused = true)]
async fn the_event_stream_follows_the_run_into_sub_chains() {
    let rt = Runtime::builder()
        .model(model(ScriptedReply::text("done")))
        .build();
    let (mut events, run) = outer::execute_with_events(&rt, outer::Input { text: "x".into() });
    let collect = async {
        let mut seen = Vec::new();
        while let Some(event) = events.next().await {
            seen.push(event);
        }
        seen
    };
    let (outcome, seen) = tokio::join!(run, collect);
    assert_eq!(outcome.result.expect("runs").shouted, "DONE");
    let outer_id = outcome.report.run_id;
    let paths: Vec<&str> = seen.iter().map(|e| &*e.chain_path).collect();
    assert_eq!(paths.first(), Some(&"outer"));
    assert!(paths.contains(&"outer › desk"));
    let inner = seen
        .iter()
        .find(|e| &*e.chain_path == "outer › desk")
        .expect("inner events");
    assert_eq!(inner.parent_run_id, Some(outer_id));
    assert!(matches!(
        seen.last().map(|e| &e.kind),
        Some(EventKind::RunFinished {
            status: RunStatus::Completed,
            ..
        })
    ));
    // The stream ended by itself once the run was over.
    let json = serde_json::to_value(&seen[1]).expect("events serialize");
    assert_eq!(json["event"], "step_started");
}

#[allow(dead_code, private_interfaces)]
#[path = "../examples/code_review.rs"]
mod code_review_example;

/// The code-review chain's Mermaid picture, checked against a snapshot (which
/// CI also runs through Mermaid's own parser, see `tests/render/`).
#[test]
fn the_code_review_graph_matches_its_snapshot() {
    let graph = code_review_example::code_review::graph();
    let snapshot = include_str!("snapshots/code_review.mmd");
    assert_eq!(
        graph.mermaid, snapshot,
        "regenerate tests/snapshots/code_review.mmd if the change is intended"
    );
    assert_eq!(graph.to_string(), graph.mermaid);
    // DOT: every edge joins declared nodes, and braces balance.
    let dot = graph.dot;
    assert!(dot.starts_with("digraph \"code_review\" {") && dot.trim_end().ends_with('}'));
    let declared: Vec<&str> = dot
        .lines()
        .filter(|l| l.contains("[shape="))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        declared.len(),
        3 + 5 + 1,
        "three inputs, five steps, the output"
    );
    for line in dot.lines().filter(|l| l.contains(" -> ")) {
        let mut ends = line.split(" -> ");
        let from = ends.next().map(str::trim).unwrap_or_default();
        let to = ends
            .next()
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_default();
        assert!(declared.contains(&from) && declared.contains(&to), "{line}");
    }
}

#[test]
fn the_support_router_graph_shows_routes_and_alternatives() {
    let graph = desk::graph();
    assert!(
        graph.mermaid.contains("r0{\"route on kind\"}"),
        "{}",
        graph.mermaid
    );
    assert!(
        graph.mermaid.contains("r0 -->|\"Kind::Question\"| s1"),
        "{}",
        graph.mermaid
    );
    assert!(
        graph.mermaid.contains("s2 -. \"reply\" .-> s3"),
        "{}",
        graph.mermaid
    );
    assert!(
        graph
            .dot
            .contains("r0 [shape=diamond, label=\"route on kind\"];"),
        "{}",
        graph.dot
    );
}

#[tokio::test(start_paused = true)]
async fn the_example_writes_an_html_timeline_with_every_step() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("review.html");
    code_review_example::cli(["--timeline".to_owned(), path.display().to_string()])
        .await
        .expect("the example runs");
    let html = std::fs::read_to_string(&path).expect("the timeline was written");
    assert!(html.starts_with("<!doctype html>") && html.contains("<svg"));
    for step in [
        "extract_changes",
        "check_correctness",
        "check_performance",
        "check_security",
        "summarize",
    ] {
        assert!(html.contains(&format!("{step} → ")), "row for {step}");
        assert!(
            html.contains(&format!("<title>{step} attempt 1")),
            "bar for {step}"
        );
    }
    assert_eq!(html.matches("<rect").count(), 5, "one bar per attempt");
    assert!(html.contains("#2e7d32"), "succeeded attempts are green");
}

#[tokio::test(start_paused = true)]
async fn the_timeline_colours_failures_and_marks_routes() {
    let publish = ScriptedReply::sequence([
        ScriptedReply::error("overloaded", true).after(MS * 50),
        ScriptedReply::error("quota exhausted", false).after(MS * 50),
    ]);
    let rt = Runtime::builder()
        .model(model(publish))
        .backoff(MS, MS)
        .build();
    let outcome = desk::execute(&rt, desk::Input { text: "x".into() }).await;
    let html = outcome.report.to_html();
    assert_eq!(
        html.matches("fill=\"#c62828\"").count(),
        2,
        "two failed attempts"
    );
    assert!(html.contains("route on kind took Kind::Complaint"));
    assert!(
        html.contains(">skipped</text>"),
        "the arm not taken is shown skipped"
    );
}

/// The README shows the code-review graph: it must be the real one.
#[test]
fn the_readme_graph_is_the_snapshot() {
    let readme = include_str!("../README.md");
    let block = readme
        .split("```mermaid\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the README has a mermaid block");
    assert_eq!(block, include_str!("snapshots/code_review.mmd"));
}
