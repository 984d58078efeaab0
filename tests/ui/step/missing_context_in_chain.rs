// A step without `cx: &StepCx`, used in a chain: one error, on the parameter.
use prompt_chain::prelude::*;

#[step]
async fn analyze(text: &str) -> StepResult<String> {
    Ok(text.to_owned())
}

#[chain]
async fn pipeline(text: String) -> String {
    step!(analysis = analyze(text));
    analysis
}

fn main() {}
