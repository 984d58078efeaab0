// Two mapped inputs: a map runs over one list.
use prompt_chain::prelude::*;

#[step]
async fn pair(_cx: &StepCx, left: &str, right: &str) -> StepResult<String> {
    Ok(format!("{left}{right}"))
}

#[chain]
async fn pairs(lefts: Vec<String>, rights: Vec<String>) -> Vec<String> {
    step!(paired = pair(each lefts, each rights));
    paired
}

fn main() {}
