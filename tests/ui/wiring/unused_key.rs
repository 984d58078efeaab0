#![deny(unused_variables)]
use prompt_chain::prelude::*;

#[step]
async fn summarize(_cx: &StepCx, diff: &str) -> StepResult<String> {
    Ok(diff.to_owned())
}

#[step]
async fn count_lines(_cx: &StepCx, diff: &str) -> StepResult<usize> {
    Ok(diff.lines().count())
}

#[chain]
async fn review(diff: String) -> String {
    step!(summary = summarize(diff));
    step!(line_count = count_lines(diff));
    summary
}

fn main() {}
