use prompt_chain::prelude::*;

#[step]
async fn extract_changes(_cx: &StepCx, diff: &str) -> StepResult<String> {
    Ok(diff.to_owned())
}

#[step]
async fn check_correctness(_cx: &StepCx, summary: &str, code: &str) -> StepResult<String> {
    Ok(format!("{summary}{code}"))
}

#[chain]
async fn code_review(diff: String, new_code: String) -> String {
    step!(changes_summary = extract_changes(diff));
    step!(correctness = check_correctness(changes_summery, new_code));
    correctness
}

fn main() {}
