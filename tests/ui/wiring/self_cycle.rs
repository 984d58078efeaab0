use prompt_chain::prelude::*;

#[step]
async fn refine(_cx: &StepCx, topic: &str, previous: &str) -> StepResult<String> {
    Ok(format!("{topic}{previous}"))
}

#[chain]
async fn writer(topic: String) -> String {
    step!(text = refine(topic, text));
    text
}

fn main() {}
