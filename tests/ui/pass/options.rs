// Every option form: validate (plain and generic error type), retry, timeout
// in each unit, several options and a trailing comma.
use prompt_chain::prelude::*;

#[step]
async fn analyze(_cx: &StepCx, text: &str) -> StepResult<String> {
    Ok(text.to_owned())
}

fn not_empty(text: &String) -> Result<(), String> {
    if text.is_empty() { Err("empty".into()) } else { Ok(()) }
}

mod checks {
    pub fn short(text: &String) -> Result<(), &'static str> {
        if text.len() < 100 { Ok(()) } else { Err("too long") }
    }
}

#[chain]
async fn review(text: String) -> String {
    step!(a = analyze(text), validate = not_empty);
    step!(b = analyze(a), validate = checks::short, retry = 3);
    step!(c = analyze(b), timeout = 500ms);
    step!(d = analyze(c), timeout = 30s, retry = 0,);
    step!(e = analyze(d), timeout = 2m, validate = self::not_empty);
    step!(f = analyze(e), timeout = 1h, max_tokens = 300);
    f
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let out = review::run(&Runtime::default(), review::Input { text: "t".into() }).await.unwrap();
    assert_eq!(out, "t");
    let def = review::definition();
    assert_eq!(def.steps[1].options.retries, Some(3));
    assert_eq!(def.steps[2].options.timeout, Some(std::time::Duration::from_millis(500)));
    assert_eq!(def.steps[4].options.timeout, Some(std::time::Duration::from_secs(120)));
    assert!(def.steps[0].options.validated);
    assert_eq!(def.steps[5].options.max_tokens, Some(300));
}

// Hooks may take a view of the key (`&str` for a `String` key).
fn short_enough(text: &str) -> Result<(), String> {
    if text.len() < 1000 { Ok(()) } else { Err("too long".into()) }
}

fn done(text: &str) -> bool {
    text.len() > 3
}

#[chain]
async fn views(text: String) -> prompt_chain::Loop<String> {
    step!(checked = analyze(text), validate = short_enough);
    step!(grown = analyze(checked), until = done, max = 2, validate = short_enough);
    grown
}

// Policies: re-ask, fallbacks, a step deadline, a cache.
fn fallback_text() -> String {
    "default".to_owned()
}

#[chain]
async fn policies(text: String) -> String {
    step!(a = analyze(text), validate = short_enough, reask = 2, retry = 3, timeout = 10s, deadline = 1m);
    step!(b = analyze(a), fallback = fallback_text, fallback_model = "fast", cache = 1h);
    b
}
