use prompt_chain::prelude::*;

#[step]
async fn analyze(_cx: &StepCx, text: &str) -> String {
    text.to_owned()
}

fn main() {}
