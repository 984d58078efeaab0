// `concurrency` on a step that maps over nothing.
use prompt_chain::prelude::*;

#[step]
async fn classify(_cx: &StepCx, issue: &str) -> StepResult<String> {
    Ok(issue.to_owned())
}

#[chain]
async fn sentiment(issue: String) -> String {
    step!(label = classify(issue), concurrency = 8);
    label
}

fn main() {}
