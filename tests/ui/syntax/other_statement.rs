use prompt_chain::prelude::*;

#[step]
async fn analyze(_cx: &StepCx, text: &str) -> StepResult<String> {
    Ok(text.to_owned())
}

#[chain]
async fn review(text: String) -> String {
    let trimmed = text.trim().to_owned();
    step!(analysis = analyze(trimmed));
    analysis
}

fn main() {}
