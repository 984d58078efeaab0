// Three mistakes, three errors, one build.
use prompt_chain::prelude::*;

#[step]
async fn combine(_cx: &StepCx, a: &str, b: &str) -> StepResult<String> {
    Ok(format!("{a}{b}"))
}

#[chain]
async fn many(first: String, second: String) -> String {
    step!(one = combine(frist, second));
    step!(two = combine(one, secnd));
    step!(three = combine(two, nothing_like_it));
    three
}

fn main() {}
