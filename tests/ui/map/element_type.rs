// The list's elements are not what the step takes.
use prompt_chain::prelude::*;

#[step]
async fn split(_cx: &StepCx, text: &str) -> StepResult<Vec<u32>> {
    Ok(vec![text.len() as u32])
}

#[step]
async fn classify(_cx: &StepCx, issue: &str) -> StepResult<String> {
    Ok(issue.to_owned())
}

#[chain]
async fn sentiments(text: String) -> Vec<String> {
    step!(issues = split(text));
    step!(labels = classify(each issues));
    labels
}

fn main() {}
