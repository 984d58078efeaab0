// Options that make no sense per item: a map step cannot also be a loop.
use prompt_chain::prelude::*;

#[step]
async fn classify(_cx: &StepCx, issue: &str) -> StepResult<String> {
    Ok(issue.to_owned())
}

fn done(_label: &String) -> bool {
    true
}

#[chain]
async fn sentiments(issues: Vec<String>) -> Vec<String> {
    step!(labels = classify(each issues), until = done, max = 3);
    labels
}

fn main() {}
