use prompt_chain::prelude::*;

#[step]
async fn normalize(_cx: &StepCx, diff: &str) -> StepResult<String> {
    Ok(diff.trim().to_owned())
}

#[chain]
async fn review(diff: String) -> String {
    step!(diff = normalize(diff));
    diff
}

fn main() {}
