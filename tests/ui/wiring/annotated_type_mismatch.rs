use prompt_chain::prelude::*;

async fn summarize(_cx: &StepCx, diff: &str) -> StepResult<String> {
    Ok(diff.to_owned())
}

#[chain]
async fn review(diff: String) -> u32 {
    step!(summary: u32 = summarize(diff));
    summary
}

fn main() {}
