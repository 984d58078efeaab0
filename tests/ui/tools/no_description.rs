use prompt_chain::prelude::*;

#[tool]
async fn lookup(_cx: &ToolCx, id: String) -> StepResult<String> {
    Ok(id)
}

fn main() {}
