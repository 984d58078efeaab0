use prompt_chain::prelude::*;

/// An id the model cannot write: no serde, no JSON Schema.
struct Handle(u64);

/// Looks a customer up.
#[tool]
async fn lookup(_cx: &ToolCx, handle: Handle) -> StepResult<u64> {
    Ok(handle.0)
}

fn main() {}
