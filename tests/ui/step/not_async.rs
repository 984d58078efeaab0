use prompt_chain::prelude::*;

#[step]
fn analyze(_cx: &StepCx, text: &str) -> StepResult<String> {
    Ok(text.to_owned())
}

fn main() {}
