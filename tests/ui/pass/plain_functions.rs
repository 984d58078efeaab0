// Functions without #[step] are steps too, when the key names its type.
use prompt_chain::prelude::*;

async fn shout(_cx: &StepCx, text: &str) -> StepResult<String> {
    Ok(text.to_uppercase())
}

async fn measure(_cx: &StepCx, text: &String) -> StepResult<usize> {
    Ok(text.len())
}

#[chain]
async fn loud(text: String) -> (String, usize) {
    step!(upper: String = shout(text));
    step!(length: usize = measure(upper));
    step!(both: (String, usize) = pair(upper, length));
    both
}

async fn pair(_cx: &StepCx, text: &str, length: &usize) -> StepResult<(String, usize)> {
    Ok((text.to_owned(), *length))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let out = loud::run(&Runtime::default(), loud::Input { text: "hey".into() }).await.unwrap();
    assert_eq!(out, ("HEY".to_owned(), 3));
}
