// One mistake in the chain, one error: code using the chain's generated
// interface (`Input`, `run`, the function itself) still type-checks.
use prompt_chain::prelude::*;

#[step]
async fn analyze(_cx: &StepCx, text: &str) -> StepResult<String> {
    Ok(text.to_owned())
}

#[chain]
async fn review(text: String) -> String {
    step!(analysis = analyze(txet));
    analysis
}

#[chain]
async fn outer(text: String) -> String {
    step!(inner = review(text));
    inner
}

async fn use_it(rt: &Runtime) -> Result<String, ChainError> {
    let direct = review::run(rt, review::Input { text: "t".into() }).await?;
    let _ = outer::run(rt, outer::Input { text: direct }).await?;
    let _: fn(&review::Output) = |_| ();
    Ok(String::new())
}

fn main() {
    let _ = use_it;
}
