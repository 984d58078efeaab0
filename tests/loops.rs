//! Bounded loops: generate → review → refine until approved or out of rounds.

use std::time::Duration;

use prompt_chain::prelude::*;
use prompt_chain::{Loop, LoopStop, llm::ScriptedReply};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Draft {
    text: String,
    score: u32,
    round: u32,
}

#[step]
async fn write_draft(cx: &StepCx, topic: &str) -> StepResult<Draft> {
    let text = cx.llm().text(format!("Write about {topic}")).await?;
    Ok(Draft {
        text,
        score: 0,
        round: 0,
    })
}

/// One round: the model scores the draft, then rewrites it.
#[step]
async fn review_and_refine(cx: &StepCx, draft: &Draft) -> StepResult<Draft> {
    let score: u32 = cx.llm().json(format!("Score 0-10: {}", draft.text)).await?;
    let text = cx
        .llm()
        .text(format!("Improve (scored {score}): {}", draft.text))
        .await?;
    Ok(Draft {
        text,
        score,
        round: cx.iteration(),
    })
}

fn approved(draft: &Draft) -> bool {
    draft.score >= 8
}

#[step]
async fn publish(_cx: &StepCx, draft: &Draft) -> StepResult<String> {
    Ok(format!(
        "published after round {}: {}",
        draft.round, draft.text
    ))
}

#[chain]
async fn writer(topic: String) -> String {
    step!(first = write_draft(topic));
    step!(
        polished = review_and_refine(first),
        until = approved,
        max = 4
    );
    step!(post = publish(polished));
    post
}

fn model(scores: &[u32]) -> ScriptedModel {
    let scores: Vec<ScriptedReply> = scores
        .iter()
        .map(|s| ScriptedReply::text(s.to_string()).after(Duration::from_millis(100)))
        .collect();
    ScriptedModel::new()
        .on_step("write_draft", "v0")
        .on_prompt("Score", ScriptedReply::sequence(scores))
        .on_prompt(
            "Improve",
            ScriptedReply::from_fn(|request| {
                let previous = request.prompt().rsplit(": ").next().unwrap_or_default();
                format!("{previous}+")
            })
            .after(Duration::from_millis(200)),
        )
}

#[tokio::test(start_paused = true)]
async fn a_loop_stops_when_its_condition_holds() {
    let rt = Runtime::builder().model(model(&[3, 6, 9, 10])).build();
    let outcome = writer::execute(
        &rt,
        writer::Input {
            topic: "rust".into(),
        },
    )
    .await;
    let out = outcome.result.expect("runs");
    let polished: &Loop<Draft> = &out.polished;
    assert_eq!(polished.iterations, 3);
    assert_eq!(polished.stop, LoopStop::Converged);
    assert!(polished.converged());
    // Each round refined the previous round's output, not the first draft.
    assert_eq!(polished.value.text, "v0+++");
    assert_eq!(polished.value.round, 3);
    assert_eq!(out.post, "published after round 3: v0+++");

    let record = outcome.report.step("review_and_refine").expect("recorded");
    let rounds: Vec<(u32, bool, Duration)> = record
        .iterations
        .iter()
        .map(|i| (i.iteration, i.converged, i.finished_at - i.started_at))
        .collect();
    let round = Duration::from_millis(300);
    assert_eq!(
        rounds,
        vec![(1, false, round), (2, false, round), (3, true, round)]
    );
    assert_eq!(record.attempts, 3);
    assert_eq!(outcome.report.duration, round * 3);
}

#[tokio::test(start_paused = true)]
async fn hitting_the_bound_is_a_typed_outcome() {
    let rt = Runtime::builder().model(model(&[1, 2, 3, 4, 5])).build();
    let out = writer::execute(
        &rt,
        writer::Input {
            topic: "rust".into(),
        },
    )
    .await
    .result
    .expect("the bound is not an error");
    assert_eq!(out.polished.iterations, 4);
    assert_eq!(out.polished.stop, LoopStop::MaxIterations);
    assert!(!out.polished.converged());
    assert_eq!(out.polished.value.score, 4);
    assert_eq!(out.post, "published after round 4: v0++++");
}

/// `max` without `until`: a fixed number of rounds; routes can branch on the outcome.
#[step]
async fn double(_cx: &StepCx, n: &u64) -> StepResult<u64> {
    Ok(n * 2)
}

#[step]
async fn seed(_cx: &StepCx) -> StepResult<u64> {
    Ok(1)
}

fn big(n: &u64) -> bool {
    *n > 1000
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Verdict {
    Done,
    GaveUp,
}

#[step]
async fn judge(_cx: &StepCx, result: &Loop<u64>) -> StepResult<Verdict> {
    Ok(if result.converged() {
        Verdict::Done
    } else {
        Verdict::GaveUp
    })
}

#[step]
async fn celebrate(_cx: &StepCx, n: &u64) -> StepResult<String> {
    Ok(format!("reached {n}"))
}

#[step]
async fn apologize(_cx: &StepCx, n: u64) -> StepResult<String> {
    Ok(format!("stopped at {n}"))
}

#[chain]
async fn doubling() -> String {
    step!(start = seed());
    step!(eight = double(start), max = 3);
    step!(grown = double(eight), until = big, max = 5);
    step!(verdict = judge(grown));
    route!(verdict {
        Verdict::Done => step!(message = celebrate(grown)),
        Verdict::GaveUp => step!(message = apologize(grown)),
    });
    message
}

#[tokio::test]
async fn fixed_rounds_and_routing_on_the_outcome() {
    let out = doubling::execute(&Runtime::default(), doubling::Input {})
        .await
        .result
        .expect("runs");
    assert_eq!(out.eight.value, 8);
    assert_eq!(out.eight.stop, LoopStop::MaxIterations);
    // 8 → 16 → 32 → 64 → 128 → 256: five rounds, never above 1000.
    assert_eq!(out.grown.value, 256);
    assert_eq!(out.verdict, Verdict::GaveUp);
    assert_eq!(out.message, "stopped at 256");
}

/// A failed iteration fails the step, with the attempt that failed.
#[step]
async fn flaky_round(cx: &StepCx, n: &u64) -> StepResult<u64> {
    if cx.iteration() == 2 {
        return Err(StepError::msg("round two always fails").permanent());
    }
    Ok(n + 1)
}

#[chain]
async fn fragile_loop(start: u64) -> Loop<u64> {
    step!(counted = flaky_round(start), max = 5);
    counted
}

#[tokio::test]
async fn a_failing_iteration_fails_the_loop() {
    let outcome =
        fragile_loop::execute(&Runtime::default(), fragile_loop::Input { start: 0 }).await;
    let error = outcome.result.expect_err("round two fails");
    assert_eq!(error.step(), Some("flaky_round"));
    assert!(error.to_string().contains("round two always fails"));
    let record = outcome.report.step("flaky_round").expect("recorded");
    assert_eq!(record.iterations.len(), 1, "only the first round finished");
}
