// Every accepted route form: single-step and block arms, or-patterns,
// wildcards, a nested route, a route on a chain input, an arm-local key.
use prompt_chain::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
enum Category {
    Technical,
    Billing,
    General,
}

#[step]
async fn classify(_cx: &StepCx, ticket: &str) -> StepResult<Category> {
    let _ = ticket;
    Ok(Category::General)
}

#[step]
async fn technical_support(_cx: &StepCx, ticket: &str) -> StepResult<String> {
    Ok(ticket.to_owned())
}

#[step]
async fn handle_billing(_cx: &StepCx, ticket: &str) -> StepResult<String> {
    Ok(ticket.to_owned())
}

#[step]
async fn general_inquiry(_cx: &StepCx, ticket: &str) -> StepResult<String> {
    Ok(ticket.to_owned())
}

#[step]
async fn sign(_cx: &StepCx, reply: &str) -> StepResult<String> {
    Ok(format!("signed: {reply}"))
}

#[chain]
async fn support_router(ticket: String, vip: bool) -> String {
    step!(category = classify(ticket));
    route!(category {
        Category::Technical => {
            step!(draft = technical_support(ticket));
            step!(reply = sign(draft));
        }
        Category::Billing | Category::General => {
            route!(vip {
                true => step!(reply = handle_billing(ticket)),
                false => step!(reply = general_inquiry(ticket)),
            });
        }
    });
    reply
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let rt = Runtime::default();
    let outcome = support_router::execute(
        &rt,
        support_router::Input { ticket: "t".into(), vip: true },
    )
    .await;
    let out = outcome.result.unwrap();
    assert_eq!(out.reply, "t");
    let _arm_local: Option<String> = out.draft;
    assert_eq!(outcome.report.route_taken("vip"), Some("true"));
}
