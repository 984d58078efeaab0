use prompt_chain::prelude::*;

#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
enum Lane {
    Fast,
    Slow,
}

#[step]
async fn pick(_cx: &StepCx, text: &str) -> StepResult<Lane> {
    Ok(if text.len() > 3 { Lane::Slow } else { Lane::Fast })
}

// A plain `async fn`, not a `#[chain]`: nothing reads its `route!`.
async fn lanes(lane: Lane) {
    route!(lane {
        Lane::Fast => step!(out = pick(text)),
        Lane::Slow => step!(out = pick(text)),
    });
}

fn main() {}
