// A human step runs no code: retries, timeouts and the like mean nothing for it.
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

#[chain]
async fn refund(ticket: String) -> Approval {
    step!(plan = plan_refund(ticket));
    step!(approval: Approval = human(plan), retry = 2, timeout = 10s);
    approval
}

fn main() {}
