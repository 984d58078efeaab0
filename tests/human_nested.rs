//! Human steps inside sub-chains and inside each element of a map: the
//! sub-chain's run suspends, the calling step waits, and the root run ends
//! `Suspended` with every question. An answer goes through the root chain's
//! `answer_within` with the sub-chain's typed `reply::<key>`, and resumes the
//! root run, which restores everything recorded before and runs nothing twice.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use prompt_chain::human::{AnswerError, Waiting};
use prompt_chain::prelude::*;
use prompt_chain::report::{RunStatus, StepStatus};
use prompt_chain::schemars::JsonSchema;
use prompt_chain::store::{MemoryStore, SqliteStore};
use serde::{Deserialize, Serialize};

/// How many times each step ran for each input, across runtimes.
#[derive(Clone, Default)]
struct Calls(Arc<Mutex<BTreeMap<String, u32>>>);

impl Calls {
    fn count(&self, cx: &StepCx, of: &str) {
        if let Ok(mut calls) = self.0.lock() {
            *calls.entry(format!("{}:{of}", cx.key())).or_default() += 1;
        }
    }

    /// Every (step:input) that ran more than once.
    fn repeated(&self) -> Vec<String> {
        self.0
            .lock()
            .map(|calls| {
                calls
                    .iter()
                    .filter(|(_, n)| **n > 1)
                    .map(|(key, n)| format!("{key} ran {n} times"))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn total(&self) -> u32 {
        self.0.lock().map(|calls| calls.values().sum()).unwrap_or(0)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(crate = "prompt_chain::schemars")]
struct Decision {
    approved: bool,
}

#[step]
async fn assess(cx: &StepCx, ticket: &str) -> StepResult<u32> {
    cx.require::<Calls>()?.count(cx, ticket);
    Ok(ticket.len() as u32 * 10)
}

#[step]
async fn settle(
    cx: &StepCx,
    ticket: &str,
    amount: &u32,
    decision: &Decision,
) -> StepResult<String> {
    cx.require::<Calls>()?.count(cx, ticket);
    Ok(match decision.approved {
        true => format!("{ticket}: refunded {amount}"),
        false => format!("{ticket}: refused"),
    })
}

#[step]
async fn acknowledge(cx: &StepCx, ticket: &str) -> StepResult<String> {
    cx.require::<Calls>()?.count(cx, ticket);
    Ok(format!("ack {ticket}"))
}

#[step]
async fn close(cx: &StepCx, ack: &str, verdict: &str) -> StepResult<String> {
    cx.require::<Calls>()?.count(cx, ack);
    Ok(format!("{ack} / {verdict}"))
}

#[step]
async fn summarize(cx: &StepCx, verdicts: &[String]) -> StepResult<String> {
    cx.require::<Calls>()?.count(cx, "all");
    Ok(verdicts.join("; "))
}

fn refuse() -> Decision {
    Decision { approved: false }
}

/// The sub-chain with the human step.
#[chain]
async fn review(ticket: String) -> String {
    step!(amount = assess(ticket));
    step!(decision: Decision = human(amount), prompt = "Refund it?", wait = 48h);
    step!(verdict = settle(ticket, amount, decision));
    verdict
}

/// The same, with a short wait and a fallback.
#[chain]
async fn quick_review(ticket: String) -> String {
    step!(amount = assess(ticket));
    step!(decision: Decision = human(amount), wait = 50ms, fallback = refuse);
    step!(verdict = settle(ticket, amount, decision));
    verdict
}

/// A root chain calling the sub-chain once, beside a branch that needs no answer.
#[chain]
async fn desk(ticket: String) -> String {
    step!(ack = acknowledge(ticket));
    step!(verdict = review(ticket));
    step!(closed = close(ack, verdict));
    closed
}

/// A root chain mapping the sub-chain over its tickets: every element waits.
#[chain]
async fn batch(tickets: Vec<String>) -> String {
    step!(verdicts = review(each tickets), concurrency = 2);
    step!(summary = summarize(verdicts));
    summary
}

#[chain]
async fn quick_batch(tickets: Vec<String>) -> String {
    step!(verdicts = quick_review(each tickets));
    step!(summary = summarize(verdicts));
    summary
}

fn runtime(store: impl prompt_chain::store::CheckpointStore, calls: &Calls) -> Runtime {
    Runtime::builder()
        .checkpoints(store)
        .dependency(calls.clone())
        .build()
}

fn tickets(names: &[&str]) -> batch::Input {
    batch::Input {
        tickets: names.iter().map(|name| (*name).to_owned()).collect(),
    }
}

#[tokio::test]
async fn a_human_step_in_a_sub_chain_suspends_the_root_and_its_answer_resumes_it() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let db = dir.path().join("runs.db");
    let calls = Calls::default();
    let run_id = {
        let rt = runtime(SqliteStore::open(&db).expect("open"), &calls);
        let input = desk::Input {
            ticket: "T-1".into(),
        };
        let outcome = desk::execute(&rt, input).await;
        let error = outcome.result.expect_err("the run waits");
        assert!(error.is_suspension(), "{error}");
        let report = outcome.report;
        assert_eq!(report.status, RunStatus::Suspended);
        assert_eq!(
            report.step("ack").map(|s| s.status),
            Some(StepStatus::Succeeded)
        );
        let verdict = report.step("verdict").expect("the calling step");
        assert_eq!(verdict.status, StepStatus::Waiting);
        assert_eq!(verdict.attempts, 1, "a wait is not retried");
        let sub = &verdict.sub_runs[0].report;
        assert_eq!(sub.status, RunStatus::Suspended);
        assert_eq!(
            sub.step("decision").map(|s| s.status),
            Some(StepStatus::Waiting)
        );
        report.run_id
    };
    // A fresh process lists the question, naming the root run to resume.
    let rt = runtime(SqliteStore::open(&db).expect("reopen"), &calls);
    let waiting = rt.waiting().await.expect("listed");
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    let question: &Waiting = &waiting[0];
    assert_eq!(
        (question.chain.as_str(), question.key.as_str()),
        ("review", "decision")
    );
    assert_ne!(question.run_id, run_id, "the sub-chain's run asked");
    assert_eq!(question.root_run_id(), run_id);
    assert_eq!(question.root_chain(), "desk");
    assert_eq!(question.payload["amount"], 30);

    // The sub-chain's own `answer` would resume the wrong run: refused, with the way.
    let nested = review::answer::decision(&rt, question.run_id, Decision { approved: true })
        .await
        .expect_err("a nested question");
    assert!(matches!(nested, AnswerError::Nested { .. }), "{nested}");
    assert!(
        nested.to_string().contains("desk::answer_within"),
        "{nested}"
    );
    // Through another root chain: refused.
    let wrong = batch::answer_within(&rt, question.run_id, review::reply::decision(refuse()))
        .await
        .expect_err("not a run of batch");
    assert!(matches!(wrong, AnswerError::WrongChain { .. }), "{wrong}");

    let reply = review::reply::decision(Decision { approved: true }).by("alice");
    let outcome = desk::answer_within(&rt, question.run_id, reply)
        .await
        .expect("the answer is taken");
    assert_eq!(
        outcome.result.expect("the run completes").closed,
        "ack T-1 / T-1: refunded 30"
    );
    assert_eq!(outcome.report.status, RunStatus::Completed);
    assert_eq!(calls.repeated(), Vec::<String>::new());
    let author = prompt_chain::human::answered(&rt, question.run_id, "decision")
        .await
        .expect("read")
        .expect("recorded");
    assert_eq!(author.author.as_deref(), Some("alice"));
    assert!(rt.waiting().await.expect("listed").is_empty());

    // A second answer changes nothing.
    let again = desk::answer_within(&rt, question.run_id, review::reply::decision(refuse()))
        .await
        .expect_err("answered already");
    assert!(
        matches!(
            again,
            AnswerError::AlreadyAnswered { .. } | AnswerError::NotWaiting { .. }
        ),
        "{again}"
    );
}

#[tokio::test]
async fn a_map_whose_elements_each_wait_suspends_once_and_completes_after_the_last_answer() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let db = dir.path().join("runs.db");
    let calls = Calls::default();
    let names = ["A-1", "B-22", "C-333"];
    let run_id = {
        let rt = runtime(SqliteStore::open(&db).expect("open"), &calls);
        let outcome = batch::execute(&rt, tickets(&names)).await;
        let error = outcome.result.expect_err("the run waits");
        assert_eq!(error.waiting().len(), 3, "{error}");
        let report = outcome.report;
        assert_eq!(report.status, RunStatus::Suspended);
        let map = report.step("verdicts").expect("the map");
        assert_eq!(map.status, StepStatus::Waiting);
        assert!(
            map.items
                .iter()
                .all(|item| item.status == StepStatus::Waiting),
            "{:?}",
            map.items
        );
        report.run_id
    };
    let rt = runtime(SqliteStore::open(&db).expect("reopen"), &calls);
    let mut waiting = rt.waiting().await.expect("listed");
    assert_eq!(waiting.len(), 3);
    assert!(waiting.iter().all(|q| q.root_run_id() == run_id));
    let runs: std::collections::BTreeSet<_> = waiting.iter().map(|q| q.run_id).collect();
    assert_eq!(runs.len(), 3, "each element asks in its own run");
    // Answer by payload: approve the small refunds, refuse the big one.
    waiting.sort_by_key(|q| q.payload["amount"].as_u64());
    let mut last = None;
    for question in &waiting {
        let approved = question.payload["amount"].as_u64() < Some(40);
        let reply = review::reply::decision(Decision { approved });
        let outcome = batch::answer_within(&rt, question.run_id, reply)
            .await
            .expect("the answer is taken");
        last = Some(outcome);
    }
    let outcome = last.expect("three answers");
    assert_eq!(outcome.report.status, RunStatus::Completed);
    assert_eq!(
        outcome.result.expect("completed").summary,
        "A-1: refunded 30; B-22: refused; C-333: refused"
    );
    // Each element's steps ran once, whichever resume ran them.
    assert_eq!(calls.repeated(), Vec::<String>::new());
    assert_eq!(calls.total(), 3 + 3 + 1);
}

#[tokio::test]
async fn an_expired_question_in_each_element_takes_its_fallback_on_the_roots_sweep() {
    let calls = Calls::default();
    let rt = runtime(MemoryStore::new(), &calls);
    let input = quick_batch::Input {
        tickets: vec!["A".into(), "B".into()],
    };
    let outcome = quick_batch::execute(&rt, input).await;
    assert_eq!(outcome.report.status, RunStatus::Suspended);
    assert!(quick_batch::sweep(&rt).await.expect("swept").is_empty());
    tokio::time::sleep(std::time::Duration::from_millis(80)).await;
    // The sub-chain has no sweep of its own to find: the root's finds it.
    let outcomes = quick_batch::sweep(&rt).await.expect("swept");
    assert_eq!(outcomes.len(), 1);
    assert_eq!(
        outcomes[0]
            .result
            .as_ref()
            .expect("the fallback answered")
            .summary,
        "A: refused; B: refused"
    );
    assert_eq!(calls.repeated(), Vec::<String>::new());
}

/// An answer recorded but not yet applied (the answering process died before
/// resuming the root) is no longer an open question, in either store.
async fn recorded_answers_close_their_question(rt: &Runtime) {
    let outcome = batch::execute(rt, tickets(&["A", "B"])).await;
    assert_eq!(outcome.report.status, RunStatus::Suspended);
    let waiting = rt.waiting().await.expect("listed");
    assert_eq!(waiting.len(), 2);
    let reply = review::reply::decision(refuse());
    let root = prompt_chain::human::answer_within(rt, "batch", waiting[0].run_id, reply)
        .await
        .expect("recorded, not resumed");
    assert_eq!(root, outcome.report.run_id);
    let left = rt.waiting().await.expect("listed");
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].run_id, waiting[1].run_id);
}

#[tokio::test]
async fn a_recorded_answer_closes_its_question_in_sqlite_and_in_memory() {
    let calls = Calls::default();
    recorded_answers_close_their_question(&runtime(MemoryStore::new(), &calls)).await;
    let dir = tempfile::tempdir().expect("a temp dir");
    let store = SqliteStore::open(dir.path().join("runs.db")).expect("open");
    recorded_answers_close_their_question(&runtime(store, &calls)).await;
}
