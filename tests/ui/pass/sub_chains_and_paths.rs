// Steps from other modules, `self::` paths, and a chain used as a step.
use prompt_chain::prelude::*;

mod steps {
    use prompt_chain::prelude::*;

    #[step]
    pub async fn trim(_cx: &StepCx, text: &str) -> StepResult<String> {
        Ok(text.trim().to_owned())
    }

    pub mod nested {
        use prompt_chain::prelude::*;

        #[step]
        pub async fn exclaim(_cx: &StepCx, text: &str) -> StepResult<String> {
            Ok(format!("{text}!"))
        }
    }
}

#[step]
async fn double(_cx: &StepCx, text: &str) -> StepResult<String> {
    Ok(format!("{text}{text}"))
}

#[chain]
async fn clean(raw: String) -> String {
    step!(trimmed = steps::trim(raw));
    step!(loud = self::steps::nested::exclaim(trimmed));
    loud
}

#[chain]
async fn outer(raw: String) -> String {
    step!(cleaned = clean(raw));
    step!(doubled = crate::double(cleaned));
    doubled
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let out = outer::run(&Runtime::default(), outer::Input { raw: "  hi ".into() }).await.unwrap();
    assert_eq!(out, "hi!hi!");
}
