// `#[step]` on a method: methods cannot be steps.
use prompt_chain::prelude::*;

struct Analyzer;

impl Analyzer {
    #[step]
    async fn analyze(&self, _cx: &StepCx, text: &str) -> StepResult<String> {
        Ok(text.to_owned())
    }
}

fn main() {}
