// A step that is not `async`, used in a chain: one error, on the step.
use prompt_chain::prelude::*;

#[step]
fn analyze(_cx: &StepCx, text: &str) -> StepResult<String> {
    Ok(text.to_owned())
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
