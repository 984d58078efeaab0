use prompt_chain::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Changes {
    files: Vec<String>,
}

#[step]
async fn extract_changes(_cx: &StepCx, diff: &str) -> StepResult<Changes> {
    Ok(Changes { files: vec![diff.to_owned()] })
}

#[step]
async fn check_security(_cx: &StepCx, summary: &str) -> StepResult<String> {
    Ok(summary.to_owned())
}

#[chain]
async fn code_review(diff: String) -> String {
    step!(changes_summary = extract_changes(diff));
    step!(security = check_security(changes_summary));
    security
}

fn main() {}
