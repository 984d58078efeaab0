//! Stubs: one step of one chain replaced for one test, typed by the chain's
//! generated `stub` module; the report answers what ran, which arm a route
//! took and how many model calls were made.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use prompt_chain::llm::ScriptedReply;
use prompt_chain::prelude::*;
use prompt_chain::testing::Stub;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Category {
    Billing,
    Technical,
}

#[step]
async fn classify(cx: &StepCx, ticket: &str) -> StepResult<Category> {
    let answer = cx.llm().text(format!("Classify: {ticket}")).await?;
    Ok(if answer.contains("billing") {
        Category::Billing
    } else {
        Category::Technical
    })
}

fn known(category: &Category) -> Result<(), String> {
    match category {
        Category::Billing | Category::Technical => Ok(()),
    }
}

#[step]
async fn refund(cx: &StepCx, ticket: &str) -> StepResult<String> {
    Ok(cx.llm().text(format!("Refund: {ticket}")).await?)
}

#[step]
async fn debug(cx: &StepCx, ticket: &str) -> StepResult<String> {
    Ok(cx.llm().text(format!("Debug: {ticket}")).await?)
}

#[step]
async fn words(_cx: &StepCx, ticket: &str) -> StepResult<Vec<String>> {
    Ok(ticket.split_whitespace().map(str::to_owned).collect())
}

#[step]
async fn shout(cx: &StepCx, word: &str) -> StepResult<String> {
    Ok(cx.llm().text(format!("Shout: {word}")).await?)
}

#[step]
async fn combine(_cx: &StepCx, reply: &str, loud: &[String]) -> StepResult<String> {
    Ok(format!("{reply} ({})", loud.join(" ")))
}

#[chain]
async fn support(ticket: String) -> String {
    step!(category = classify(ticket), retry = 2, validate = known);
    route!(category {
        Category::Billing => step!(reply = refund(ticket)),
        Category::Technical => step!(reply = debug(ticket)),
    });
    step!(parts = words(ticket));
    step!(loud = shout(each parts), concurrency = 2);
    step!(answer = combine(reply, loud));
    answer
}

fn model() -> ScriptedModel {
    ScriptedModel::new()
        .on_step("classify", "billing")
        .on_step("refund", "Your refund is on its way.")
        .on_step("debug", "Try turning it off and on.")
        .on_step(
            "shout",
            ScriptedReply::from_fn(|r| r.prompt().to_uppercase()),
        )
}

fn input() -> support::Input {
    support::Input {
        ticket: "app crashes".into(),
    }
}

#[tokio::test]
async fn a_stubbed_step_answers_its_value_and_only_it_changes() {
    // Without a stub, the model says billing.
    let plain = support::execute(&Runtime::builder().model(model()).build(), input()).await;
    assert_eq!(
        plain.result.expect("completes").reply,
        "Your refund is on its way."
    );
    assert_eq!(
        plain.report.route_taken("category"),
        Some("Category::Billing")
    );
    // classify, refund, and one call per word.
    assert_eq!(plain.report.model_calls(), 4);

    let scripted = model();
    let rt = Runtime::builder()
        .model(scripted.clone())
        .stub(support::stub::category(Category::Technical))
        .build();
    let outcome = support::execute(&rt, input()).await;
    let out = outcome.result.expect("completes");
    assert_eq!(out.category, Category::Technical);
    assert_eq!(out.reply, "Try turning it off and on.");
    assert_eq!(out.loud, ["SHOUT: APP", "SHOUT: CRASHES"]);
    let report = &outcome.report;
    assert_eq!(report.route_taken("category"), Some("Category::Technical"));
    assert!(
        report
            .step("classify")
            .is_some_and(|s| s.stubbed && s.attempts == 1)
    );
    assert!(report.step("debug").is_some_and(|s| !s.stubbed));
    assert!(report.ran("debug") && !report.ran("refund"));
    assert_eq!(
        report.steps_run(),
        ["classify", "debug", "words", "shout", "combine"]
    );
    assert_eq!(
        scripted.calls_for("classify"),
        0,
        "the stubbed step made no model call"
    );
    assert_eq!(report.model_calls(), 3);
}

#[tokio::test]
async fn a_stub_function_runs_under_the_steps_retry_policy() {
    let calls = Arc::new(AtomicU32::new(0));
    let seen = Arc::clone(&calls);
    let rt = Runtime::builder()
        .model(model())
        .stub(support::stub::category_with(move |cx| {
            seen.fetch_add(1, Ordering::SeqCst);
            if cx.attempt() == 1 {
                return Err(StepError::msg("the classifier is down").transient());
            }
            Ok(Category::Technical)
        }))
        .build();
    let outcome = support::execute(&rt, input()).await;
    assert_eq!(
        outcome.result.expect("completes").category,
        Category::Technical
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(outcome.report.step("classify").map(|s| s.attempts), Some(2));
}

#[tokio::test]
async fn a_map_step_stub_answers_each_element_by_position() {
    let rt = Runtime::builder()
        .model(model())
        .stub(support::stub::loud(vec!["ONE".into(), "TWO".into()]))
        .build();
    let outcome = support::execute(&rt, input()).await;
    assert_eq!(outcome.result.expect("completes").loud, ["ONE", "TWO"]);
    let loud = outcome.report.step("shout").expect("a record");
    assert!(loud.stubbed);
    assert_eq!(loud.items.len(), 2);

    // Too few values: the element past the end fails, saying so.
    let short = Runtime::builder()
        .model(model())
        .stub(support::stub::loud(vec!["ONE".into()]))
        .build();
    let error = support::execute(&short, input())
        .await
        .result
        .expect_err("one value for two elements");
    assert!(
        format!("{error:#}").contains("the stub of `loud` has 1 values and no value for element 1"),
        "{error:#}"
    );

    let by_item = Runtime::builder()
        .model(model())
        .stub(support::stub::loud_with(|cx| {
            Ok(format!("#{}", cx.item().unwrap_or(99)))
        }))
        .build();
    let out = support::execute(&by_item, input())
        .await
        .result
        .expect("completes");
    assert_eq!(out.loud, ["#0", "#1"]);
}

#[tokio::test]
async fn a_stub_of_the_wrong_type_made_by_hand_is_a_clear_error() {
    let rt = Runtime::builder()
        .model(model())
        .stub(Stub::output("support", "category", 42u32))
        .build();
    let error = support::execute(&rt, input())
        .await
        .result
        .expect_err("a u32 is not a Category");
    let message = format!("{error:#}");
    assert!(
        message.contains("the stub of step `classify` (key `category`) answers another type"),
        "{message}"
    );
}
