// A loop feeds each output back in as its first input: the types must fit.
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

#[step]
async fn measure(_cx: &StepCx, text: &str) -> StepResult<usize> {
    Ok(text.len())
}

#[chain]
async fn writer(topic: String) -> prompt_chain::Loop<usize> {
    step!(first = draft(topic));
    step!(length = measure(first), max = 3);
    length
}

fn main() {}
