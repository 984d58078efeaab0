use prompt_chain::prelude::*;

#[step]
async fn technical_support(_cx: &StepCx, ticket: &str) -> StepResult<String> {
    Ok(ticket.to_owned())
}

#[step]
async fn handle_billing(_cx: &StepCx, ticket: &str) -> StepResult<String> {
    Ok(ticket.to_owned())
}

#[chain]
async fn support(ticket: String) -> String {
    step!(reply = technical_support(ticket));
    step!(reply = handle_billing(ticket));
    reply
}

fn main() {}
