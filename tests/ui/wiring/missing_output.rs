use prompt_chain::prelude::*;

#[step]
async fn summarize(_cx: &StepCx, diff: &str) -> StepResult<String> {
    Ok(diff.to_owned())
}

#[chain]
async fn code_review(diff: String) -> String {
    step!(final_review = summarize(diff));
}

fn main() {}
