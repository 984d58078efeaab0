// A step returning a bare type instead of `StepResult<T>`, used in a chain:
// one error, on the return type.
use prompt_chain::prelude::*;

#[step]
async fn analyze(_cx: &StepCx, text: &str) -> String {
    text.to_owned()
}

#[step]
async fn shout(_cx: &StepCx, analysis: &str) -> StepResult<String> {
    Ok(analysis.to_uppercase())
}

#[chain]
async fn pipeline(text: String) -> String {
    step!(analysis = analyze(text));
    step!(loud = shout(analysis));
    loud
}

fn main() {}
