// `on_error` takes `stop` or `collect`.
use prompt_chain::prelude::*;

#[step]
async fn classify(_cx: &StepCx, issue: &str) -> StepResult<String> {
    Ok(issue.to_owned())
}

#[chain]
async fn sentiments(issues: Vec<String>) -> Vec<String> {
    step!(labels = classify(each issues), on_error = skip);
    labels
}

fn main() {}
