// A human step's key needs the answer's type: nothing else could say it.
use prompt_chain::prelude::*;

#[step]
async fn plan_refund(_cx: &StepCx, ticket: &str) -> StepResult<String> {
    Ok(ticket.to_owned())
}

#[chain]
async fn refund(ticket: String) -> String {
    step!(plan = plan_refund(ticket));
    step!(approval = human(plan), wait = 48h);
    approval
}

fn main() {}
