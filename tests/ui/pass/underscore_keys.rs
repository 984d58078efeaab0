// A key nobody reads warns; a leading underscore says it is intentional.
#![deny(warnings)]
use prompt_chain::prelude::*;

#[step]
async fn analyze(_cx: &StepCx, text: &str) -> StepResult<String> {
    Ok(text.to_owned())
}

#[chain]
async fn review(text: String) -> String {
    step!(analysis = analyze(text));
    step!(_audit_copy = analyze(text));
    analysis
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let outcome = review::execute(&Runtime::default(), review::Input { text: "t".into() }).await;
    assert_eq!(outcome.result.unwrap()._audit_copy, "t");
}
