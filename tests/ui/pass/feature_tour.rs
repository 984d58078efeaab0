// Every parameter form a step accepts, independent steps, and a typed run.
use prompt_chain::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Changes {
    files: Vec<String>,
}

#[step]
async fn extract_changes(cx: &StepCx, diff: &str) -> StepResult<Changes> {
    Ok(cx.llm().json(format!("Which files does this diff touch?\n{diff}")).await?)
}

#[step]
async fn check_correctness(_cx: &StepCx, changes: &Changes, original: &str, new: &str) -> StepResult<bool> {
    Ok(!changes.files.is_empty() && original != new)
}

#[step]
async fn check_performance(_cx: &StepCx, new: String) -> StepResult<usize> {
    Ok(new.len())
}

#[step]
async fn list_files(_cx: &StepCx, files: &[String]) -> StepResult<String> {
    Ok(files.join(","))
}

#[step]
async fn file_names(_cx: &StepCx, changes: Changes) -> StepResult<Vec<String>> {
    Ok(changes.files)
}

#[step]
async fn summarize(_cx: &StepCx, ok: &bool, cost: usize, listed: &str) -> StepResult<String> {
    Ok(format!("ok={ok} cost={cost} files={listed}"))
}

#[chain]
async fn code_review(diff: String, original_code: String, new_code: String) -> String {
    step!(changes = extract_changes(diff));
    step!(correct = check_correctness(changes, original_code, new_code));
    step!(cost = check_performance(new_code));
    step!(names = file_names(changes));
    step!(listed = list_files(names));
    step!(review = summarize(correct, cost, listed));
    review
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let model = ScriptedModel::new().on_step("extract_changes", r#"{"files": ["a.rs", "b.rs"]}"#);
    let rt = Runtime::builder().model(model).build();
    let input = code_review::Input {
        diff: "+x".into(),
        original_code: "a".into(),
        new_code: "b".into(),
    };
    let review: String = code_review::run(&rt, input).await.unwrap();
    assert_eq!(review, "ok=true cost=1 files=a.rs,b.rs");
    let _typed: fn(code_review::Output) -> (Changes, bool, usize, Vec<String>) =
        |o| (o.changes, o.correct, o.cost, o.names);
}
