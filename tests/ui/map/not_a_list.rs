// `each` over a key that is not a list.
use prompt_chain::prelude::*;

#[step]
async fn classify(_cx: &StepCx, issue: &str) -> StepResult<String> {
    Ok(issue.to_owned())
}

#[chain]
async fn sentiments(text: String) -> Vec<String> {
    step!(labels = classify(each text));
    labels
}

fn main() {}
