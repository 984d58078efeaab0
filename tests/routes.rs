//! Conditional routes: only the chosen arm runs, the report says which arm
//! was taken and which steps were skipped, keys produced by every arm are
//! used after the route, arm-local keys come back as `Option`.

use std::time::Duration;

use prompt_chain::prelude::*;
use prompt_chain::{llm::ScriptedReply, report::StepStatus};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Category {
    Technical,
    Billing,
    General,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Reply {
    team: String,
    text: String,
}

#[step]
async fn classify(cx: &StepCx, ticket: &str) -> StepResult<Category> {
    Ok(cx.llm().json(format!("Classify: {ticket}")).await?)
}

#[step]
async fn diagnose(_cx: &StepCx, ticket: &str) -> StepResult<String> {
    Ok(format!("diagnosis of {ticket}"))
}

#[step]
async fn technical_support(_cx: &StepCx, diagnosis: &str) -> StepResult<Reply> {
    Ok(Reply {
        team: "tech".into(),
        text: diagnosis.to_owned(),
    })
}

#[step]
async fn handle_billing(_cx: &StepCx, ticket: &str) -> StepResult<Reply> {
    Ok(Reply {
        team: "billing".into(),
        text: format!("refund for {ticket}"),
    })
}

#[step]
async fn general_inquiry(cx: &StepCx, ticket: &str) -> StepResult<Reply> {
    let text = cx.llm().text(format!("Answer: {ticket}")).await?;
    Ok(Reply {
        team: "general".into(),
        text,
    })
}

#[step]
async fn sign(_cx: &StepCx, reply: &Reply) -> StepResult<String> {
    Ok(format!("[{}] {}", reply.team, reply.text))
}

#[chain]
async fn support_router(ticket: String) -> String {
    step!(category = classify(ticket));
    route!(category {
        Category::Technical => {
            step!(diagnosis = diagnose(ticket));
            step!(reply = technical_support(diagnosis));
        }
        Category::Billing => step!(reply = handle_billing(ticket)),
        Category::General => step!(reply = general_inquiry(ticket)),
    });
    step!(signed = sign(reply));
    signed
}

fn model() -> ScriptedModel {
    ScriptedModel::new()
        .on_prompt("Classify: printer", "\"technical\"")
        .on_prompt("Classify: invoice", "\"billing\"")
        .on_prompt("Classify:", "\"general\"")
        .on_step("general_inquiry", "We open at nine.")
}

async fn route(ticket: &str) -> prompt_chain::Outcome<support_router::Output> {
    let rt = Runtime::builder().model(model()).build();
    support_router::execute(
        &rt,
        support_router::Input {
            ticket: ticket.into(),
        },
    )
    .await
}

#[tokio::test]
async fn every_arm_is_taken_for_its_tickets() {
    let tech = route("printer on fire").await;
    assert_eq!(
        tech.report.route_taken("category"),
        Some("Category::Technical")
    );
    let out = tech.result.expect("runs");
    assert_eq!(out.signed, "[tech] diagnosis of printer on fire");
    assert_eq!(out.category, Category::Technical);
    // `diagnosis` exists only in the technical arm: an Option in the outputs.
    assert_eq!(
        out.diagnosis.as_deref(),
        Some("diagnosis of printer on fire")
    );

    let billing = route("invoice is wrong").await;
    assert_eq!(
        billing.report.route_taken("category"),
        Some("Category::Billing")
    );
    let out = billing.result.expect("runs");
    assert_eq!(out.signed, "[billing] refund for invoice is wrong");
    assert_eq!(out.diagnosis, None);

    let general = route("when do you open?").await;
    assert_eq!(
        general.report.route_taken("category"),
        Some("Category::General")
    );
    assert_eq!(
        general.result.expect("runs").signed,
        "[general] We open at nine."
    );
}

#[tokio::test]
async fn only_the_chosen_arm_runs_and_the_others_are_skipped() {
    let model = model();
    let rt = Runtime::builder().model(model.clone()).build();
    let outcome = support_router::execute(
        &rt,
        support_router::Input {
            ticket: "invoice x".into(),
        },
    )
    .await;
    let report = outcome.report;
    let status = |name: &str| report.step(name).map(|s| s.status);
    assert_eq!(status("classify"), Some(StepStatus::Succeeded));
    assert_eq!(status("handle_billing"), Some(StepStatus::Succeeded));
    assert_eq!(status("diagnose"), Some(StepStatus::Skipped));
    assert_eq!(status("technical_support"), Some(StepStatus::Skipped));
    assert_eq!(status("general_inquiry"), Some(StepStatus::Skipped));
    assert_eq!(status("sign"), Some(StepStatus::Succeeded));
    assert_eq!(model.calls_for("general_inquiry"), 0);
    assert!(
        report
            .to_string()
            .contains("route on `category`: Category::Billing")
    );
    let def = support_router::definition();
    assert_eq!(def.routes.len(), 1);
    assert_eq!(def.routes[0].arms[0].pattern, "Category::Technical");
    assert_eq!(def.routes[0].arms[0].steps, [1, 2]);
}

/// Routes on a chain input, nested routes, or-patterns, wildcards, data variants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Plan {
    Free,
    Pro { seats: u32 },
    Enterprise(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Urgency {
    Low,
    High,
}

#[step]
async fn urgency(_cx: &StepCx, text: &str) -> StepResult<Urgency> {
    Ok(if text.contains('!') {
        Urgency::High
    } else {
        Urgency::Low
    })
}

#[step]
async fn queue(_cx: &StepCx, text: &str) -> StepResult<String> {
    Ok(format!("queued: {text}"))
}

#[step]
async fn page_on_call(_cx: &StepCx, text: &str) -> StepResult<String> {
    Ok(format!("paged: {text}"))
}

#[step]
async fn account_manager(_cx: &StepCx, plan: &Plan) -> StepResult<String> {
    Ok(format!("manager for {plan:?}"))
}

#[chain]
async fn escalation(plan: Plan, text: String) -> String {
    route!(plan {
        Plan::Free | Plan::Pro { .. } => {
            step!(level = urgency(text));
            route!(level {
                Urgency::High => step!(handled = page_on_call(text)),
                Urgency::Low => step!(handled = queue(text)),
            });
        }
        Plan::Enterprise(_) => step!(handled = account_manager(plan)),
    });
    handled
}

#[tokio::test]
async fn nested_routes_and_patterns() {
    let rt = Runtime::default();
    let run = |plan: Plan, text: &str| {
        let rt = rt.clone();
        let text = text.to_owned();
        async move { escalation::execute(&rt, escalation::Input { plan, text }).await }
    };
    let free_low = run(Plan::Free, "slow page").await;
    assert_eq!(free_low.result.expect("runs").handled, "queued: slow page");
    assert_eq!(free_low.report.route_taken("level"), Some("Urgency::Low"));

    let pro_high = run(Plan::Pro { seats: 5 }, "down!").await;
    assert_eq!(
        pro_high.report.route_taken("plan"),
        Some("Plan::Free | Plan::Pro { .. }")
    );
    assert_eq!(pro_high.result.expect("runs").handled, "paged: down!");

    let enterprise = run(Plan::Enterprise("acme".into()), "x").await;
    assert_eq!(
        enterprise.report.route_taken("plan"),
        Some("Plan::Enterprise(_)")
    );
    assert_eq!(
        enterprise.report.route_taken("level"),
        None,
        "the inner route never ran"
    );
    assert_eq!(
        enterprise.report.step("urgency").map(|s| s.status),
        Some(StepStatus::Skipped)
    );
    assert_eq!(
        enterprise.result.expect("runs").handled,
        "manager for Enterprise(\"acme\")"
    );
}

/// A sub-chain as an arm; a failure inside it names the whole path.
#[step]
async fn search_kb(_cx: &StepCx, diagnosis: &str) -> StepResult<String> {
    Err(StepError::msg(format!("knowledge base unavailable for {diagnosis}")).permanent())
}

#[chain]
async fn technical_chain(ticket: String) -> Reply {
    step!(diagnosis = diagnose(ticket));
    step!(article = search_kb(diagnosis));
    step!(reply = technical_support(article));
    reply
}

#[chain]
async fn router_with_sub_chains(ticket: String) -> Reply {
    step!(category = classify(ticket));
    route!(category {
        Category::Technical => step!(reply = technical_chain(ticket)),
        _ => step!(reply = handle_billing(ticket)),
    });
    reply
}

#[tokio::test]
async fn failures_inside_a_sub_chain_arm_name_the_path() {
    let rt = Runtime::builder().model(model()).build();
    let error = router_with_sub_chains::run(
        &rt,
        router_with_sub_chains::Input {
            ticket: "printer jam".into(),
        },
    )
    .await
    .expect_err("the knowledge base fails");
    assert_eq!(
        error.path(),
        vec!["router_with_sub_chains", "technical_chain", "search_kb"]
    );
    assert!(
        error.to_string().starts_with(
            "step `router_with_sub_chains › technical_chain › search_kb` (#1) failed on attempt 1"
        ),
        "{error}"
    );
    // The route's decision is part of the error context.
    assert_eq!(
        error.completed().get("category"),
        Some(&serde_json::json!("technical"))
    );

    let ok = router_with_sub_chains::run(
        &rt,
        router_with_sub_chains::Input {
            ticket: "hello".into(),
        },
    )
    .await;
    assert_eq!(ok.expect("the wildcard arm runs").team, "billing");
}

/// Arms overlap with independent steps outside the route.
#[step]
async fn slow_audit(cx: &StepCx, ticket: &str) -> StepResult<String> {
    Ok(cx.llm().text(format!("audit {ticket}")).await?)
}

#[step]
async fn combine(_cx: &StepCx, reply: &Reply, audit: &str) -> StepResult<String> {
    Ok(format!("{} / {audit}", reply.text))
}

#[chain]
async fn audited(ticket: String) -> String {
    step!(audit = slow_audit(ticket));
    step!(category = classify(ticket));
    route!(category {
        Category::Technical => step!(reply = technical_support(ticket)),
        Category::Billing | Category::General => step!(reply = general_inquiry(ticket)),
    });
    step!(both = combine(reply, audit));
    both
}

#[tokio::test(start_paused = true)]
async fn a_route_runs_alongside_independent_steps() {
    let model = ScriptedModel::new()
        .on_step(
            "slow_audit",
            ScriptedReply::text("ok").after(Duration::from_millis(500)),
        )
        .on_step(
            "classify",
            ScriptedReply::text("\"general\"").after(Duration::from_millis(100)),
        )
        .on_step(
            "general_inquiry",
            ScriptedReply::text("hi").after(Duration::from_millis(300)),
        );
    let rt = Runtime::builder().model(model).build();
    let outcome = audited::execute(&rt, audited::Input { ticket: "t".into() }).await;
    assert_eq!(outcome.result.expect("runs").both, "hi / ok");
    // audit 500 ∥ (classify 100 → general 300): the route does not wait for the audit.
    assert_eq!(outcome.report.duration, Duration::from_millis(500));
    let decided = outcome.report.routes[0].decided_at;
    assert_eq!(decided, Some(Duration::from_millis(100)));
}
