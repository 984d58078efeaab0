use prompt_chain::prelude::*;

#[step]
async fn respond(_cx: &StepCx, feedback: &str, sentiment: &str) -> StepResult<String> {
    Ok(format!("{feedback}{sentiment}"))
}

#[chain]
async fn feedback(text: String) -> String {
    step!(reply = respond(text, customer_mood));
    reply
}

fn main() {}
