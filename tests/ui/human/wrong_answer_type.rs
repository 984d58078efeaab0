// An answer of another type than the human step's does not compile.
use prompt_chain::prelude::*;
use prompt_chain::schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(crate = "prompt_chain::schemars")]
struct Approval {
    approved: bool,
}

#[step]
async fn plan_refund(_cx: &StepCx, ticket: &str) -> StepResult<String> {
    Ok(ticket.to_owned())
}

#[step]
async fn issue(_cx: &StepCx, plan: &str, approval: &Approval) -> StepResult<String> {
    Ok(format!("{plan}: {}", approval.approved))
}

#[chain]
async fn refund(ticket: String) -> String {
    step!(plan = plan_refund(ticket));
    step!(approval: Approval = human(plan), wait = 48h);
    step!(outcome = issue(plan, approval));
    outcome
}

async fn approve(rt: &Runtime, run: prompt_chain::RunId) {
    let _ = refund::answer::approval(rt, run, "yes").await;
}

fn main() {}
