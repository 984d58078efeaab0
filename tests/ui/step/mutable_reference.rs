use prompt_chain::prelude::*;

#[step]
async fn analyze(_cx: &StepCx, text: &mut String) -> StepResult<String> {
    text.push('!');
    Ok(text.clone())
}

fn main() {}
