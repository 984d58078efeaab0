use prompt_chain::prelude::*;

#[step]
async fn analyze(text: &str) -> StepResult<String> {
    Ok(text.to_owned())
}

fn main() {}
