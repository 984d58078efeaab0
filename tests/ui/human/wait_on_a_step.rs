// `wait` and `prompt` belong to human steps.
use prompt_chain::prelude::*;

#[step]
async fn plan_refund(_cx: &StepCx, ticket: &str) -> StepResult<String> {
    Ok(ticket.to_owned())
}

#[chain]
async fn refund(ticket: String) -> String {
    step!(plan = plan_refund(ticket), wait = 1h);
    plan
}

fn main() {}
