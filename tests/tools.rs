//! Tools: `#[tool]` functions a model calls from inside a step. A turn's
//! calls run at once; a tool's error or malformed arguments go back to the
//! model; `max_turns` bounds the loop; and every turn and call is recorded,
//! so a resumed or retried step never calls a completed tool again.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prompt_chain::events::EventKind;
use prompt_chain::llm::{ChatRequest, LlmError, Role, ScriptedReply};
use prompt_chain::prelude::*;
use prompt_chain::store::SqliteStore;
use prompt_chain::tools::Tool;
use prompt_chain::{FailureKind, RunId};
use serde::Serialize;
use serde_json::json;

/// How many times each tool ran, on which arguments, across runtimes.
#[derive(Clone, Default)]
struct Calls(Arc<Mutex<BTreeMap<String, u32>>>);

impl Calls {
    fn count(&self, what: String) {
        if let Ok(mut calls) = self.0.lock() {
            *calls.entry(what).or_default() += 1;
        }
    }

    fn all(&self) -> BTreeMap<String, u32> {
        self.0.lock().map(|calls| calls.clone()).unwrap_or_default()
    }
}

#[derive(Debug, Serialize)]
struct Account {
    customer: String,
    plan: String,
}

/// Looks up a customer's account by their id (`C-` and digits).
#[tool]
async fn lookup_account(cx: &ToolCx, customer: String) -> StepResult<Account> {
    cx.require::<Calls>()?
        .count(format!("lookup_account({customer})"));
    tokio::time::sleep(Duration::from_millis(50)).await;
    if !customer.starts_with("C-") {
        return Err(StepError::msg(format!(
            "no customer `{customer}`: ids look like C-123"
        )));
    }
    Ok(Account {
        plan: "pro".into(),
        customer,
    })
}

/// Searches the knowledge base; returns the titles of at most `limit` articles.
#[tool]
async fn search_kb(cx: &ToolCx, query: &str, limit: u32) -> StepResult<Vec<String>> {
    cx.require::<Calls>()?.count(format!("search_kb({query})"));
    tokio::time::sleep(Duration::from_millis(50)).await;
    if cx.dep::<Blocking>().is_some() {
        std::future::pending::<()>().await;
    }
    Ok((1..=limit).map(|i| format!("{query} #{i}")).collect())
}

/// Makes `search_kb` hang (the process "dies" while it runs).
struct Blocking;

#[step]
async fn answer(cx: &StepCx, question: &str) -> StepResult<String> {
    let reply = cx
        .llm()
        .tool(lookup_account::Tool)
        .tool(search_kb::Tool)
        .max_turns(4)
        .text(question)
        .await?;
    Ok(reply)
}

#[chain]
async fn support(question: String) -> String {
    step!(reply = answer(question));
    reply
}

#[chain]
async fn patient_support(question: String) -> String {
    step!(reply = answer(question), retry = 2);
    reply
}

/// The tool results the model was sent, in order.
fn tool_results(request: &ChatRequest) -> Vec<String> {
    request
        .messages
        .iter()
        .filter(|message| message.role == Role::Tool)
        .map(|message| message.content.clone())
        .collect()
}

/// First turn: both tools at once; then an answer quoting their results.
fn two_tools_then_answer() -> ScriptedModel {
    ScriptedModel::new().on_step(
        "answer",
        ScriptedReply::sequence([
            ScriptedReply::tool_calls([
                ("lookup_account", json!({ "customer": "C-7" })),
                ("search_kb", json!({ "query": "refunds", "limit": 2 })),
            ]),
            ScriptedReply::from_fn(|request| tool_results(request).join(" | ")),
        ]),
    )
}

fn runtime(model: ScriptedModel, calls: &Calls) -> Runtime {
    Runtime::builder()
        .model(model)
        .dependency(calls.clone())
        .build()
}

fn question() -> support::Input {
    support::Input {
        question: "Can C-7 get a refund?".into(),
    }
}

#[tokio::test(start_paused = true)]
async fn the_calls_of_one_turn_run_at_once_and_their_results_reach_the_model() {
    let calls = Calls::default();
    let rt = runtime(two_tools_then_answer(), &calls);
    let (mut events, run) = support::execute_with_events(&rt, question());
    let outcome = run.await;
    let reply = outcome.result.expect("answered").reply;
    assert_eq!(
        reply,
        r#"{"customer":"C-7","plan":"pro"} | ["refunds #1","refunds #2"]"#
    );
    let step = outcome.report.step("reply").expect("recorded");
    assert_eq!(step.tool_calls.len(), 2);
    assert!(
        step.tool_calls
            .iter()
            .all(|call| !call.restored && call.error.is_none())
    );
    let html = outcome.report.to_html();
    assert!(
        html.contains("answer: tool search_kb"),
        "the timeline draws each call"
    );
    // Two 50 ms tools in one turn take 50 ms, not 100.
    assert_eq!(step.duration(), Some(Duration::from_millis(50)));
    let mut called = Vec::new();
    while let Some(event) = events.next().await {
        if let EventKind::ToolCalled {
            tool,
            restored,
            error,
            ..
        } = event.kind
        {
            called.push((tool, restored, error));
        }
    }
    called.sort();
    assert_eq!(
        called,
        [
            ("lookup_account".to_owned(), false, None),
            ("search_kb".to_owned(), false, None)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_tool_error_and_malformed_arguments_go_back_to_the_model_which_then_succeeds() {
    let calls = Calls::default();
    let model = ScriptedModel::new().on_step(
        "answer",
        ScriptedReply::sequence([
            ScriptedReply::tool_calls([
                ("lookup_account", json!({ "customer": "seven" })),
                ("search_kb", json!("{\"query\": ")),
                ("no_such_tool", json!({})),
            ]),
            ScriptedReply::tool_calls([("lookup_account", json!({ "customer": "C-7" }))]),
            ScriptedReply::from_fn(|request| tool_results(request).join("\n")),
        ]),
    );
    let rt = runtime(model, &calls);
    let outcome = support::execute(&rt, question()).await;
    let reply = outcome.result.expect("answered after the errors").reply;
    let lines: Vec<&str> = reply.lines().collect();
    assert_eq!(lines.len(), 4, "{reply}");
    assert!(
        lines[0].starts_with("Error: no customer `seven`"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].starts_with("Error: invalid arguments"),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].contains("no tool named `no_such_tool`")
            && lines[2].contains("`lookup_account`, `search_kb`"),
        "{}",
        lines[2]
    );
    assert_eq!(lines[3], r#"{"customer":"C-7","plan":"pro"}"#);
    assert_eq!(outcome.report.step("reply").map(|s| s.attempts), Some(1));
}

#[tokio::test(start_paused = true)]
async fn a_model_that_keeps_calling_tools_stops_at_max_turns_with_an_error_naming_the_step() {
    let calls = Calls::default();
    let model = ScriptedModel::new().on_step(
        "answer",
        ScriptedReply::tool_calls([("lookup_account", json!({ "customer": "C-1" }))]),
    );
    let rt = runtime(model.clone(), &calls);
    let outcome = support::execute(&rt, question()).await;
    let error = outcome.result.expect_err("never answers");
    let FailureKind::Failed { source, retryable } = error.kind() else {
        panic!("{error:?}");
    };
    assert!(!retryable);
    let llm = source.downcast_ref::<LlmError>().expect("a model error");
    assert!(
        matches!(
            llm,
            LlmError::ToolTurns {
                step: "answer",
                max_turns: 4
            }
        ),
        "{llm:?}"
    );
    assert!(error.to_string().contains("after 4 turns"), "{error}");
    assert_eq!(model.calls_for("answer"), 4);
}

#[tokio::test(start_paused = true)]
async fn a_retried_step_replays_its_tool_calls_instead_of_making_them_again() {
    let calls = Calls::default();
    // The answer after the tools fails once (a transient error), then works.
    let model = ScriptedModel::new().on_step(
        "answer",
        ScriptedReply::sequence([
            ScriptedReply::tool_calls([
                ("lookup_account", json!({ "customer": "C-7" })),
                ("search_kb", json!({ "query": "refunds", "limit": 1 })),
            ]),
            ScriptedReply::error("overloaded", true),
            ScriptedReply::from_fn(|request| tool_results(request).join(" | ")),
        ]),
    );
    let rt = runtime(model.clone(), &calls);
    let input = patient_support::Input {
        question: "Can C-7 get a refund?".into(),
    };
    let outcome = patient_support::execute(&rt, input).await;
    assert!(outcome.result.is_ok(), "{:?}", outcome.result.err());
    assert_eq!(outcome.report.step("reply").map(|s| s.attempts), Some(2));
    assert_eq!(
        calls.all().into_values().collect::<Vec<_>>(),
        [1, 1],
        "{:?}",
        calls.all()
    );
    // The first turn was not sent again either: 3 model calls in all.
    assert_eq!(model.calls_for("answer"), 3);
}

#[tokio::test]
async fn a_crash_between_two_tool_calls_resumes_without_calling_the_finished_one_again() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let db = dir.path().join("runs.db");
    let calls = Calls::default();
    let run_id = RunId::new();
    {
        // `search_kb` hangs: the process dies while it runs, after
        // `lookup_account` finished.
        let rt = Runtime::builder()
            .model(two_tools_then_answer())
            .checkpoints(SqliteStore::open(&db).expect("open"))
            .dependency(calls.clone())
            .dependency(Blocking)
            .build();
        let run = support::execute_as(&rt, run_id, question());
        let cut = tokio::time::timeout(Duration::from_millis(400), run).await;
        assert!(cut.is_err(), "the run was still going");
    }
    assert_eq!(calls.all().get("lookup_account(C-7)"), Some(&1));
    // The model's first turn is restored: the new process's model is asked
    // only for the answer.
    let answers = ScriptedModel::new().on_step(
        "answer",
        ScriptedReply::from_fn(|request| tool_results(request).join(" | ")),
    );
    let rt = Runtime::builder()
        .model(answers.clone())
        .checkpoints(SqliteStore::open(&db).expect("reopen"))
        .dependency(calls.clone())
        .build();
    let outcome = support::resume(&rt, run_id).await;
    let reply = outcome.result.expect("resumed to the end").reply;
    assert!(reply.contains("\"plan\":\"pro\""), "{reply}");
    let all = calls.all();
    assert_eq!(all.get("lookup_account(C-7)"), Some(&1), "{all:?}");
    assert_eq!(
        all.get("search_kb(refunds)"),
        Some(&2),
        "it never finished: {all:?}"
    );
    assert_eq!(answers.calls_for("answer"), 1);
}

#[test]
fn a_tool_describes_itself_from_its_code() {
    let spec = search_kb::Tool.spec();
    assert_eq!(spec.name, "search_kb");
    assert_eq!(
        spec.description,
        "Searches the knowledge base; returns the titles of at most `limit` articles."
    );
    assert_eq!(spec.parameters["type"], "object");
    assert_eq!(spec.parameters["properties"]["query"]["type"], "string");
    assert_eq!(spec.parameters["properties"]["limit"]["type"], "integer");
    assert_eq!(spec.parameters["required"], json!(["query", "limit"]));
    assert!(spec.parameters.get("$schema").is_none());
}
