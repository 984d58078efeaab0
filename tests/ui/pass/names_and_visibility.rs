// Generated modules must not capture user names: a user type called `Input`,
// steps called `run` and `execute`, private types, public chains in modules.
use prompt_chain::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Input {
    text: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Output(usize);

#[step]
async fn run(_cx: &StepCx, input: Input) -> StepResult<Output> {
    Ok(Output(input.text.len()))
}

#[step]
async fn execute(_cx: &StepCx, out: &Output) -> StepResult<Vec<Output>> {
    Ok(vec![out.clone()])
}

#[chain]
async fn weird_names(input: Input) -> Vec<Output> {
    step!(measured = run(input));
    step!(listed = execute(measured));
    listed
}

pub mod api {
    use prompt_chain::prelude::*;

    /// A public step.
    #[step]
    pub async fn greet(_cx: &StepCx, name: &str) -> StepResult<String> {
        Ok(format!("hello {name}"))
    }

    /// A crate-visible chain.
    #[chain]
    pub(crate) async fn greeting(name: String) -> String {
        step!(greeted = greet(name));
        greeted
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let rt = Runtime::default();
    let out = weird_names::run(&rt, weird_names::Input { input: Input { text: "abc".into() } })
        .await
        .unwrap();
    assert_eq!(out[0].0, 3);
    let hello = api::greeting::run(&rt, api::greeting::Input { name: "ada".into() }).await.unwrap();
    assert_eq!(hello, "hello ada");
}
