use prompt_chain::prelude::*;

#[step]
async fn count_words(_cx: &StepCx, text: &str) -> StepResult<usize> {
    Ok(text.split_whitespace().count())
}

#[chain]
async fn stats(text: String) -> String {
    step!(words = count_words(text));
    words
}

fn main() {}
