use prompt_chain::prelude::*;

/// Looks a customer up.
async fn lookup(_cx: &ToolCx, id: String) -> StepResult<String> {
    Ok(id)
}

#[step]
async fn answer(cx: &StepCx, question: &str) -> StepResult<String> {
    // A plain function, not a `#[tool]`: it has no `Tool` to give.
    Ok(cx.llm().tool(lookup).text(question).await?)
}

fn main() {}
