use prompt_chain::prelude::*;

// Not annotated with #[step]: the chain cannot name its output type.
async fn summarize(_cx: &StepCx, diff: &str) -> StepResult<String> {
    Ok(diff.to_owned())
}

#[chain]
async fn review(diff: String) -> String {
    step!(summary = summarize(diff));
    summary
}

fn main() {}
