//! Model re-asks inside a step: a reply that is not valid JSON, or is cut off
//! at the token limit, is asked for again; each re-ask is an attempt of its
//! own kind in the report, an event, and counted in the final error.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use prompt_chain::prelude::*;
use prompt_chain::{
    events::{Event, EventKind},
    llm::{LlmError, ScriptedReply},
    report::{AttemptKind, AttemptOutcome, ReaskReason},
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Verdict {
    score: u8,
}

#[step]
async fn judge(cx: &StepCx, text: &str) -> StepResult<Verdict> {
    Ok(cx.llm().json(format!("Score: {text}")).await?)
}

#[chain]
async fn judging(text: String) -> Verdict {
    step!(verdict = judge(text));
    verdict
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

const MS: Duration = Duration::from_millis(1);

#[tokio::test(start_paused = true)]
async fn reasks_are_attempts_of_their_own_kind_in_the_report_and_the_events() {
    let (events, observer) = recorder();
    let model = ScriptedModel::new().on_step(
        "judge",
        ScriptedReply::sequence([
            ScriptedReply::text("a score of seven").after(MS * 10),
            ScriptedReply::truncated("{\"score\": ").after(MS * 20),
            ScriptedReply::text("{\"score\": 7}").after(MS * 30),
        ]),
    );
    let rt = Runtime::builder()
        .model(model.clone())
        .observer(observer)
        .build();
    let outcome = judging::execute(&rt, judging::Input { text: "ok".into() }).await;
    assert_eq!(
        outcome
            .result
            .expect("the third reply parses")
            .verdict
            .score,
        7
    );
    assert_eq!(model.call_count(), 3);

    let record = &outcome.report.steps[0];
    assert_eq!(record.attempts, 1, "the step ran once");
    assert_eq!(record.model_reasks, 2);
    let log: Vec<_> = record
        .attempt_log
        .iter()
        .map(|a| (a.kind, a.attempt, a.outcome, a.started_at, a.finished_at))
        .collect();
    assert_eq!(
        log,
        vec![
            (
                AttemptKind::ModelReask(ReaskReason::InvalidJson),
                1,
                AttemptOutcome::Rejected,
                Duration::ZERO,
                MS * 10
            ),
            (
                AttemptKind::ModelReask(ReaskReason::CutOff),
                1,
                AttemptOutcome::Rejected,
                MS * 10,
                MS * 30
            ),
            (
                AttemptKind::Run,
                1,
                AttemptOutcome::Succeeded,
                Duration::ZERO,
                MS * 60
            ),
        ]
    );
    // The model saw what was wrong each time.
    let calls = model.calls();
    assert!(
        calls[1].prompt().contains("not valid JSON"),
        "{:?}",
        calls[1]
    );
    assert!(calls[2].prompt().contains("cut off"), "{:?}", calls[2]);
    // The invalid reply and its correction stay; the cut-off one is not shown.
    assert_eq!(calls[2].messages.len(), 3);
    assert_eq!(calls[2].messages[1].content, "a score of seven");

    let reasked: Vec<_> = events
        .lock()
        .expect("lock")
        .iter()
        .filter_map(|event| match &event.kind {
            EventKind::ModelReasked {
                step,
                attempt,
                reask,
                reason,
                ..
            } => Some((*step, *attempt, *reask, *reason)),
            _ => None,
        })
        .collect();
    assert_eq!(
        reasked,
        vec![
            ("judge", 1, 1, ReaskReason::InvalidJson),
            ("judge", 1, 2, ReaskReason::CutOff),
        ]
    );
    // The timeline draws the re-asks.
    let page = prompt_chain::report::html_timeline([&*outcome.report]);
    assert!(page.contains("a model reply cut off at the token limit, asked again"));
}

#[tokio::test]
async fn an_error_after_re_asks_says_how_many_calls_it_took() {
    let model = ScriptedModel::new().on_step("judge", ScriptedReply::truncated("{\"sco"));
    let rt = Runtime::builder()
        .model(model.clone())
        .default_retries(0)
        .build();
    let outcome = judging::execute(&rt, judging::Input { text: "ok".into() }).await;
    let error = outcome.result.expect_err("always cut off");
    let message = error.to_string();
    assert!(
        message.contains("failed on attempt 1")
            && message.contains("cut off at the token limit (after 2 re-asks)"),
        "{message}"
    );
    assert!(matches!(
        error.llm_error(),
        Some(LlmError::Truncated { reasks: 2, .. })
    ));
    assert_eq!(
        model.call_count(),
        3,
        "one call and the default two re-asks"
    );
    assert_eq!(outcome.report.steps[0].model_reasks, 2);
}

#[step]
async fn write(cx: &StepCx, topic: &str) -> StepResult<String> {
    Ok(cx.llm().text(format!("Write about {topic}")).await?)
}

#[chain]
async fn writing(topic: String) -> String {
    step!(text = write(topic));
    text
}

#[tokio::test]
async fn a_cut_off_text_reply_is_asked_for_again_more_briefly() {
    let model = ScriptedModel::new().on_step(
        "write",
        ScriptedReply::sequence([
            ScriptedReply::truncated("Once upon a time, in a land far"),
            ScriptedReply::text("A short tale."),
        ]),
    );
    let rt = Runtime::builder().model(model.clone()).build();
    let outcome = writing::execute(&rt, writing::Input { topic: "x".into() }).await;
    assert_eq!(
        outcome.result.expect("the re-ask completes").text,
        "A short tale."
    );
    let calls = model.calls();
    assert_eq!(calls.len(), 2);
    // The prompt is asked afresh, with a request to be brief (the rambling
    // reply is not shown again).
    assert_eq!(calls[1].messages.len(), 1);
    assert!(
        calls[1].prompt().starts_with("Write about x")
            && calls[1].prompt().contains("more briefly"),
        "{:?}",
        calls[1]
    );
    assert_eq!(outcome.report.steps[0].model_reasks, 1);
}
