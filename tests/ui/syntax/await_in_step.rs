use prompt_chain::prelude::*;

#[step]
async fn shout(_cx: &StepCx, text: &str) -> StepResult<String> {
    Ok(text.to_uppercase())
}

#[chain]
async fn loud(text: String) -> String {
    step!(out = shout(text).await);
    out
}

fn main() {}
