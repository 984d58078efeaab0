use prompt_chain::prelude::*;

struct Opaque;

#[step]
async fn analyze(_cx: &StepCx, text: &str) -> StepResult<Opaque> {
    let _ = text;
    Ok(Opaque)
}

fn main() {}
