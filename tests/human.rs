//! Human steps: `step!(approval: Approval = human(plan), wait = 48h)`. A run
//! without the answer records its question and suspends (holding nothing in
//! the process); the typed `answer::approval` records an answer (the first
//! one wins) and resumes the run, which restores what ran before and
//! continues; an expired question takes its fallback or fails.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prompt_chain::human::{Answer, AnswerError};
use prompt_chain::prelude::*;
use prompt_chain::report::{RunStatus, StepStatus};
use prompt_chain::schemars::JsonSchema;
use prompt_chain::store::{MemoryStore, SqliteStore};
use prompt_chain::{FailureKind, RunId};
use serde::{Deserialize, Serialize};

/// How many times each step ran, across runtimes.
#[derive(Clone, Default)]
struct Calls(Arc<Mutex<BTreeMap<String, u32>>>);

impl Calls {
    fn count(&self, cx: &StepCx) {
        if let Ok(mut calls) = self.0.lock() {
            *calls.entry(cx.key().to_owned()).or_default() += 1;
        }
    }

    fn of(&self, key: &str) -> u32 {
        self.0
            .lock()
            .map(|calls| calls.get(key).copied().unwrap_or(0))
            .unwrap_or(0)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Plan {
    amount: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(crate = "prompt_chain::schemars")]
struct Approval {
    approved: bool,
    note: String,
}

#[step]
async fn plan_refund(cx: &StepCx, ticket: &str) -> StepResult<Plan> {
    cx.require::<Calls>()?.count(cx);
    Ok(Plan {
        amount: ticket.len() as u32 * 10,
    })
}

#[step]
async fn acknowledge(cx: &StepCx, ticket: &str) -> StepResult<String> {
    cx.require::<Calls>()?.count(cx);
    Ok(format!("we got {ticket}"))
}

#[step]
async fn issue_refund(
    cx: &StepCx,
    plan: &Plan,
    approval: &Approval,
    ack: &str,
) -> StepResult<String> {
    cx.require::<Calls>()?.count(cx);
    Ok(if approval.approved {
        format!("refunded {} ({ack}; {})", plan.amount, approval.note)
    } else {
        format!("refund refused ({ack}; {})", approval.note)
    })
}

fn reject() -> Approval {
    Approval {
        approved: false,
        note: "nobody answered in time".into(),
    }
}

#[chain]
async fn refund(ticket: String) -> String {
    step!(plan = plan_refund(ticket));
    step!(
        approval: Approval = human(plan),
        prompt = "Approve this refund?",
        wait = 48h
    );
    step!(ack = acknowledge(ticket));
    step!(outcome = issue_refund(plan, approval, ack));
    outcome
}

#[chain]
async fn quick(ticket: String) -> String {
    step!(plan = plan_refund(ticket));
    step!(approval: Approval = human(plan), wait = 50ms, fallback = reject);
    step!(ack = acknowledge(ticket));
    step!(outcome = issue_refund(plan, approval, ack));
    outcome
}

#[chain]
async fn strict(ticket: String) -> String {
    step!(plan = plan_refund(ticket));
    step!(approval: Approval = human(plan), wait = 50ms);
    step!(ack = acknowledge(ticket));
    step!(outcome = issue_refund(plan, approval, ack));
    outcome
}

fn runtime(store: impl prompt_chain::store::CheckpointStore, calls: &Calls) -> Runtime {
    Runtime::builder()
        .checkpoints(store)
        .dependency(calls.clone())
        .build()
}

fn ticket(text: &str) -> refund::Input {
    refund::Input {
        ticket: text.into(),
    }
}

#[tokio::test]
async fn a_run_suspends_survives_a_restart_and_completes_on_its_answer_running_nothing_twice() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let db = dir.path().join("runs.db");
    let calls = Calls::default();
    let run_id = {
        let rt = runtime(SqliteStore::open(&db).expect("open"), &calls);
        let outcome = refund::execute(&rt, ticket("T-1")).await;
        let error = outcome.result.expect_err("the run waits");
        assert!(error.is_suspension(), "{error}");
        assert!(
            error
                .to_string()
                .contains("is suspended: the run waits for an answer to `approval`"),
            "{error}"
        );
        let report = outcome.report;
        assert_eq!(report.status, RunStatus::Suspended);
        // The branch that does not need the answer finished before the run suspended.
        assert_eq!(
            report.step("ack").map(|s| s.status),
            Some(StepStatus::Succeeded)
        );
        assert_eq!(
            report.step("approval").map(|s| s.status),
            Some(StepStatus::Waiting)
        );
        assert_eq!(
            report.step("outcome").map(|s| s.status),
            Some(StepStatus::Pending)
        );
        assert!(
            report
                .to_html()
                .contains("waiting for an answer to `approval`")
        );
        assert!(
            report.timeline(40).contains("waiting"),
            "{}",
            report.timeline(40)
        );
        report.run_id
    };
    // The process holds nothing: a fresh runtime on the same file finds the question.
    let rt = runtime(SqliteStore::open(&db).expect("reopen"), &calls);
    let waiting = rt.waiting().await.expect("listed");
    assert_eq!(waiting.len(), 1);
    let question = &waiting[0];
    assert_eq!(
        (question.run_id, question.key.as_str()),
        (run_id, "approval")
    );
    assert_eq!(question.chain, "refund");
    assert_eq!(question.prompt, "Approve this refund?");
    assert_eq!(question.payload["plan"]["amount"], 30);
    assert_eq!(question.schema["properties"]["approved"]["type"], "boolean");
    let deadline = question.deadline_unix_ms.expect("a 48h wait");
    assert_eq!(deadline - question.asked_unix_ms, 48 * 3600 * 1000);

    let answer = Answer::new(Approval {
        approved: true,
        note: "ok".into(),
    })
    .by("alice");
    let outcome = refund::answer::approval(&rt, run_id, answer)
        .await
        .expect("the answer is taken");
    let out = outcome.result.expect("the run completes");
    assert_eq!(out.outcome, "refunded 30 (we got T-1; ok)");
    assert_eq!(outcome.report.status, RunStatus::Completed);
    // Nothing that ran before the suspension ran again.
    assert_eq!(
        (calls.of("plan"), calls.of("ack"), calls.of("outcome")),
        (1, 1, 1)
    );
    let who = prompt_chain::human::answered(&rt, run_id, "approval")
        .await
        .expect("read");
    assert_eq!(who.and_then(|a| a.author).as_deref(), Some("alice"));
    assert!(rt.waiting().await.expect("listed").is_empty());
}

#[tokio::test]
async fn a_second_answer_and_answers_nobody_asked_for_are_typed_errors() {
    let calls = Calls::default();
    let rt = runtime(MemoryStore::new(), &calls);
    let outcome = refund::execute(&rt, ticket("T-2")).await;
    let run_id = outcome.report.run_id;
    let yes = || Approval {
        approved: true,
        note: "first".into(),
    };
    // Two answers at once: exactly one is taken.
    let (a, b) = tokio::join!(
        refund::answer::approval(&rt, run_id, yes()),
        refund::answer::approval(&rt, run_id, yes()),
    );
    let taken = [a.is_ok(), b.is_ok()].iter().filter(|ok| **ok).count();
    assert_eq!(taken, 1, "exactly one answer is taken");
    let refused = if a.is_ok() { b } else { a };
    assert!(
        matches!(
            refused,
            Err(AnswerError::AlreadyAnswered {
                key: "approval",
                ..
            })
        ),
        "{refused:?}"
    );
    assert_eq!(calls.of("outcome"), 1);
    // Once more, after the run completed.
    let late = refund::answer::approval(&rt, run_id, yes()).await;
    assert!(
        matches!(late, Err(AnswerError::AlreadyAnswered { .. })),
        "{late:?}"
    );
    // A run the store never had.
    let unknown = RunId::named("no-such-run").expect("an id");
    let missing = refund::answer::approval(&rt, unknown, yes()).await;
    assert!(
        matches!(missing, Err(AnswerError::UnknownRun { .. })),
        "{missing:?}"
    );
    // A run of another chain.
    let other = quick::execute(&rt, quick::Input { ticket: "Q".into() }).await;
    let wrong = refund::answer::approval(&rt, other.report.run_id, yes()).await;
    assert!(
        matches!(wrong, Err(AnswerError::WrongChain { .. })),
        "{wrong:?}"
    );
}

#[tokio::test]
async fn past_its_wait_a_question_takes_its_fallback_or_fails() {
    let calls = Calls::default();
    let rt = runtime(MemoryStore::new(), &calls);
    let quick_run = quick::execute(
        &rt,
        quick::Input {
            ticket: "Q-1".into(),
        },
    )
    .await;
    assert!(quick_run.result.expect_err("suspended").is_suspension());
    let strict_run = strict::execute(
        &rt,
        strict::Input {
            ticket: "S-1".into(),
        },
    )
    .await;
    assert!(strict_run.result.expect_err("suspended").is_suspension());
    // Nothing expired yet: a sweep resumes nothing.
    assert!(quick::sweep(&rt).await.expect("swept").is_empty());
    tokio::time::sleep(Duration::from_millis(80)).await;
    // An answer after the deadline is refused and changes nothing.
    let late = quick::answer::approval(
        &rt,
        quick_run.report.run_id,
        Approval {
            approved: true,
            note: "late".into(),
        },
    )
    .await;
    assert!(matches!(late, Err(AnswerError::Expired { .. })), "{late:?}");
    let swept = quick::sweep(&rt).await.expect("swept");
    assert_eq!(swept.len(), 1);
    let out = swept[0].result.as_ref().expect("the fallback answered");
    assert_eq!(
        out.outcome,
        "refund refused (we got Q-1; nobody answered in time)"
    );
    let approval = swept[0].report.step("approval").expect("recorded");
    assert_eq!(approval.fallback.as_deref(), Some("default"));
    // Without a fallback, the step fails, naming the key.
    let swept = strict::sweep(&rt).await.expect("swept");
    let error = swept[0].result.as_ref().expect_err("unanswered");
    assert!(
        matches!(
            error.kind(),
            FailureKind::Unanswered {
                key: "approval",
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(error.key(), Some("approval"));
    assert!(rt.waiting().await.expect("listed").is_empty());
}

#[tokio::test]
async fn without_a_store_a_human_step_fails_clearly() {
    let calls = Calls::default();
    let rt = Runtime::builder().dependency(calls.clone()).build();
    let outcome = refund::execute(&rt, ticket("T-3")).await;
    let error = outcome.result.expect_err("no store");
    assert!(!error.is_suspension());
    assert!(error.to_string().contains("no checkpoint store"), "{error}");
}

#[test]
fn graph_pictures_draw_a_human_step_as_a_hexagon() {
    let graph = refund::graph();
    assert!(
        graph
            .mermaid
            .contains("{{\"waits for a person → approval (≤ 48h)\"}}"),
        "{}",
        graph.mermaid
    );
    assert!(graph.dot.contains("shape=hexagon"), "{}", graph.dot);
}
