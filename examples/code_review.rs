//! Code review of a diff in five steps. Three of them (correctness,
//! performance, security) need nothing from each other, so they run at the
//! same time; the summary starts the moment the last of them finishes.
//!
//! ```text
//! cargo run --example code_review
//! cargo run --example code_review -- --timeline review.html   # and an HTML timeline
//! ```
//!
//! Runs offline on the scripted model (replies and latencies below).

use std::time::Duration;

use prompt_chain::prelude::*;
use prompt_chain::schemars::JsonSchema;
use prompt_chain::{Outcome, llm::ScriptedReply};
use serde::{Deserialize, Serialize};

/// What the diff changes. The bounds go into the schema sent to the model
/// (structured output), so a reply cannot run on.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(crate = "prompt_chain::schemars")]
pub(crate) struct Changes {
    #[schemars(length(min = 1, max = 10), inner(length(max = 100)))]
    files: Vec<String>,
    #[schemars(length(max = 200))]
    summary: String,
}

/// One reviewer's findings.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(crate = "prompt_chain::schemars")]
pub(crate) struct Finding {
    severity: Severity,
    #[schemars(length(max = 5), inner(length(max = 200)))]
    issues: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(crate = "prompt_chain::schemars")]
#[serde(rename_all = "lowercase")]
pub(crate) enum Severity {
    None,
    Minor,
    Major,
}

/// The final review.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(crate = "prompt_chain::schemars")]
pub(crate) struct Review {
    #[schemars(length(max = 40))]
    verdict: String,
    #[schemars(length(max = 6), inner(length(max = 200)))]
    comments: Vec<String>,
}

#[step]
async fn extract_changes(cx: &StepCx, diff: &str) -> StepResult<Changes> {
    Ok(cx
        .llm()
        .structured(format!(
            "List the files this diff touches and summarize the change in one sentence. \
             Answer as JSON {{\"files\": [...], \"summary\": \"...\"}}.\n\n{diff}"
        ))
        .await?)
}

fn has_files(changes: &Changes) -> Result<(), String> {
    if changes.files.is_empty() {
        Err("the change summary names no file".into())
    } else {
        Ok(())
    }
}

#[step]
async fn check_correctness(
    cx: &StepCx,
    changes: &Changes,
    original_code: &str,
    new_code: &str,
) -> StepResult<Finding> {
    Ok(cx
        .llm()
        .structured(format!(
            "Change: {}\nBefore:\n{original_code}\nAfter:\n{new_code}\n\
             Does the new code still do what the old code did? \
             Answer as JSON {{\"severity\": \"none|minor|major\", \"issues\": [...]}}.",
            changes.summary
        ))
        .await?)
}

#[step]
async fn check_performance(cx: &StepCx, new_code: &str) -> StepResult<Finding> {
    Ok(cx
        .llm()
        .structured(format!(
            "Review this code for performance problems. \
             Answer as JSON {{\"severity\": \"none|minor|major\", \"issues\": [...]}}.\n{new_code}"
        ))
        .await?)
}

#[step]
async fn check_security(cx: &StepCx, new_code: &str) -> StepResult<Finding> {
    Ok(cx
        .llm()
        .structured(format!(
            "Review this code for security problems. \
             Answer as JSON {{\"severity\": \"none|minor|major\", \"issues\": [...]}}.\n{new_code}"
        ))
        .await?)
}

#[step]
async fn summarize(
    cx: &StepCx,
    changes: &Changes,
    correctness: &Finding,
    performance: &Finding,
    security: &Finding,
) -> StepResult<Review> {
    let findings = serde_json::json!({
        "change": changes.summary,
        "correctness": correctness,
        "performance": performance,
        "security": security,
    });
    Ok(cx
        .llm()
        .structured(format!(
            "Write the review of this change from the findings below. \
             Answer as JSON {{\"verdict\": \"...\", \"comments\": [...]}}.\n{findings}"
        ))
        .await?)
}

#[chain]
pub(crate) async fn code_review(diff: String, original_code: String, new_code: String) -> Review {
    step!(
        changes_summary = extract_changes(diff),
        validate = has_files,
        max_tokens = 300
    );
    step!(
        correctness_check = check_correctness(changes_summary, original_code, new_code),
        max_tokens = 400
    );
    step!(
        performance_check = check_performance(new_code),
        max_tokens = 400
    );
    step!(
        security_check = check_security(new_code),
        retry = 2,
        timeout = 60s,
        max_tokens = 400
    );
    step!(
        final_review = summarize(
            changes_summary,
            correctness_check,
            performance_check,
            security_check
        ),
        max_tokens = 500
    );
    final_review
}

const ORIGINAL: &str = r#"fn find_user(users: &[User], name: &str) -> Option<&User> {
    users.iter().find(|u| u.name == name)
}"#;

const NEW: &str = r#"fn find_user(db: &Db, name: &str) -> Option<User> {
    let query = format!("SELECT * FROM users WHERE name = '{name}'");
    db.query(&query).ok()?.into_iter().next()
}"#;

const DIFF: &str = r#"--- a/src/users.rs
+++ b/src/users.rs
-fn find_user(users: &[User], name: &str) -> Option<&User> {
-    users.iter().find(|u| u.name == name)
+fn find_user(db: &Db, name: &str) -> Option<User> {
+    let query = format!("SELECT * FROM users WHERE name = '{name}'");
+    db.query(&query).ok()?.into_iter().next()
 }"#;

/// The scripted model: what a real model answered for this diff, with
/// latencies in the range real calls take.
/// The offline model.
pub(crate) fn scripted_model() -> ScriptedModel {
    let ms = Duration::from_millis;
    ScriptedModel::new()
        .on_step(
            "extract_changes",
            ScriptedReply::text(
                r#"{"files": ["src/users.rs"], "summary": "find_user now queries the database instead of scanning a slice"}"#,
            )
            .after(ms(180)),
        )
        .on_step(
            "check_correctness",
            ScriptedReply::text(
                "```json\n{\"severity\": \"minor\", \"issues\": [\"a failed query is now indistinguishable from a missing user\"]}\n```",
            )
            .after(ms(420)),
        )
        .on_step(
            "check_performance",
            ScriptedReply::text(
                r#"{"severity": "minor", "issues": ["SELECT * fetches every column; select the ones used"]}"#,
            )
            .after(ms(260)),
        )
        .on_step(
            "check_security",
            ScriptedReply::text(
                r#"Here is my assessment: {"severity": "major", "issues": ["SQL injection: `name` is interpolated into the query; use a bound parameter"]}"#,
            )
            .after(ms(350)),
        )
        .on_step(
            "summarize",
            ScriptedReply::text(
                r#"{"verdict": "changes requested", "comments": ["Use a parameterized query: `name` reaches SQL unescaped.", "Return a Result so callers can tell a database error from a missing user.", "Select only the columns you read."]}"#,
            )
            .after(ms(240)),
        )
}

/// The runtime the tests use: always the scripted model.
#[allow(dead_code)] // used by tests/examples.rs
pub(crate) fn runtime() -> Runtime {
    Runtime::builder().model(scripted_model()).build()
}

/// The runtime `main` uses: the model `PROMPT_CHAIN_MODEL` names, or the scripted one.
fn runtime_from_env() -> Result<Runtime, Box<dyn std::error::Error>> {
    Ok(Runtime::builder()
        .model_from_env_or(scripted_model())?
        .build())
}

/// Runs the chain on the sample diff.
pub(crate) async fn demo(rt: &Runtime) -> Outcome<code_review::Output> {
    let input = code_review::Input {
        diff: DIFF.to_owned(),
        original_code: ORIGINAL.to_owned(),
        new_code: NEW.to_owned(),
    };
    code_review::execute(rt, input).await
}

/// What `main` does, with its arguments: `--timeline FILE` also writes the
/// run's timeline as an HTML page.
pub(crate) async fn cli(
    args: impl IntoIterator<Item = String>,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut timeline = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--timeline" => timeline = Some(args.next().ok_or("--timeline needs a file name")?),
            other => {
                return Err(format!(
                    "unknown argument `{other}`; the only option is --timeline FILE"
                )
                .into());
            }
        }
    }
    let outcome = demo(&runtime_from_env()?).await;
    let report = outcome.report;
    let outputs = match outcome.result {
        Ok(outputs) => outputs,
        Err(error) => {
            // What ran, and when, up to the failure; `main` prints the error.
            eprint!("{}", report.timeline(40));
            if let Some(path) = timeline {
                std::fs::write(&path, report.to_html())?;
                eprintln!("Timeline written to {path}");
            }
            return Err(error.into());
        }
    };
    println!("Change: {}", outputs.changes_summary.summary);
    println!("Verdict: {}", outputs.final_review.verdict);
    for comment in &outputs.final_review.comments {
        println!("  - {comment}");
    }
    println!();
    println!(
        "Run {} took {} ms; the same steps one after another take {} ms.",
        report.run_id,
        report.duration.as_millis(),
        report.sequential_time().as_millis()
    );
    print!("{}", report.timeline(40));
    println!("Overlapping steps:");
    for (a, b) in report.overlapping() {
        println!("  {a} ∥ {b}");
    }
    if let Some(path) = timeline {
        std::fs::write(&path, report.to_html())?;
        println!("Timeline written to {path}");
    }
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match cli(std::env::args().skip(1)).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
