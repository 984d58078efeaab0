use prompt_chain::prelude::*;

/// Looks a customer up.
#[tool]
async fn lookup(_cx: &StepCx, id: String) -> StepResult<String> {
    Ok(id)
}

fn main() {}
