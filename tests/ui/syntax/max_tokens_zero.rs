use prompt_chain::prelude::*;

#[step]
async fn analyze(_cx: &StepCx, text: &str) -> StepResult<String> {
    Ok(text.to_owned())
}

#[chain]
async fn review(text: String) -> String {
    step!(analysis = analyze(text), max_tokens = 0);
    analysis
}

fn main() {}
