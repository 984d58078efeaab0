use prompt_chain::prelude::*;

#[step]
async fn draft(_cx: &StepCx, topic: &str) -> StepResult<String> {
    Ok(topic.to_owned())
}

#[step]
async fn refine(_cx: &StepCx, text: &str) -> StepResult<String> {
    Ok(format!("{text}!"))
}

fn good(text: &String) -> bool {
    text.len() > 10
}

#[chain]
async fn writer(topic: String) -> String {
    step!(first = draft(topic));
    step!(better = refine(first), until = good);
    better
}

fn main() {}
