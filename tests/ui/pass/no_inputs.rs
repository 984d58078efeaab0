// A chain without inputs, and steps without parameters.
use prompt_chain::prelude::*;

#[step]
async fn today(_cx: &StepCx) -> StepResult<String> {
    Ok("monday".into())
}

#[chain]
async fn calendar() -> String {
    step!(day = today());
    day
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let day = calendar::run(&Runtime::default(), calendar::Input {}).await.unwrap();
    assert_eq!(day, "monday");
}
