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

// A condition says yes or no: it returns `bool`.
fn short(text: &str) -> Result<(), String> {
    if text.len() < 5 { Ok(()) } else { Err("too long".into()) }
}

#[chain]
async fn writer(topic: String) -> prompt_chain::Loop<String> {
    step!(first = draft(topic));
    step!(better = refine(first), until = short, max = 3);
    better
}

fn main() {}
