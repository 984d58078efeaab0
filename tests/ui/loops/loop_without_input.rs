use prompt_chain::prelude::*;

#[step]
async fn draft(_cx: &StepCx, topic: &str) -> StepResult<String> {
    Ok(topic.to_owned())
}

#[step]
async fn refine(_cx: &StepCx, text: &str) -> StepResult<String> {
    Ok(format!("{text}!"))
}

fn good(text: &String) -> bool {
    text.len() > 10
}

#[step]
async fn roll(_cx: &StepCx) -> StepResult<u32> {
    Ok(4)
}

#[chain]
async fn dice() -> u32 {
    step!(value = roll(), max = 3);
    value
}

fn main() {}
