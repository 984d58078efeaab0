use prompt_chain::prelude::*;

#[step]
async fn draft(_cx: &StepCx, topic: &str, feedback: &str) -> StepResult<String> {
    Ok(format!("{topic}{feedback}"))
}

#[step]
async fn critique(_cx: &StepCx, text: &str) -> StepResult<String> {
    Ok(text.to_owned())
}

#[step]
async fn polish(_cx: &StepCx, notes: &str) -> StepResult<String> {
    Ok(notes.to_owned())
}

#[chain]
async fn writer(topic: String) -> String {
    step!(text = draft(topic, feedback));
    step!(notes = critique(text));
    step!(feedback = polish(notes));
    text
}

fn main() {}
