//! Customer feedback: extract what the customer says, triage each issue they
//! raise (a map step: one model call per issue, side by side), sum the
//! triage up, write the reply. Each stage needs the previous one's output:
//! the chain is a straight line, widening only inside the map.
//!
//! ```text
//! cargo run --example feedback_analysis
//! ```

use std::process::ExitCode;
use std::time::Duration;

use prompt_chain::prelude::*;
use prompt_chain::schemars::JsonSchema;
use prompt_chain::{Outcome, llm::ScriptedReply};
use serde::{Deserialize, Serialize};

/// What the customer said, structured. The bounds go into the schema sent
/// to the model (structured output), so a reply cannot run on.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(crate = "prompt_chain::schemars")]
pub(crate) struct Feedback {
    #[schemars(length(max = 60))]
    product: String,
    #[schemars(length(max = 5), inner(length(max = 160)))]
    issues: Vec<String>,
    #[schemars(length(max = 5), inner(length(max = 160)))]
    praise: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(crate = "prompt_chain::schemars")]
#[serde(rename_all = "lowercase")]
pub(crate) enum Sentiment {
    Positive,
    Mixed,
    Negative,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[schemars(crate = "prompt_chain::schemars")]
#[serde(rename_all = "lowercase")]
pub(crate) enum Severity {
    Low,
    Medium,
    High,
}

/// How to treat one issue.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(crate = "prompt_chain::schemars")]
pub(crate) struct Triage {
    severity: Severity,
    urgent: bool,
    #[schemars(length(min = 2, max = 40))]
    team: String,
}

/// How to treat the feedback as a whole.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Classification {
    sentiment: Sentiment,
    urgent: bool,
    /// The team of the most severe issue.
    team: String,
}

#[step]
async fn extract_feedback(cx: &StepCx, text: &str) -> StepResult<Feedback> {
    Ok(cx
        .llm()
        .structured(format!(
            "Extract the product, the issues and the praise from this customer feedback. \
             Answer as JSON {{\"product\": \"...\", \"issues\": [...], \"praise\": [...]}}.\n\n{text}"
        ))
        .await?)
}

/// The issues, as a key of their own: a map step runs over a key.
#[step]
async fn issues_of(_cx: &StepCx, feedback: &Feedback) -> StepResult<Vec<String>> {
    Ok(feedback.issues.clone())
}

/// One issue (`cx.item()` says which): its severity, urgency and owner.
#[step]
async fn triage_issue(cx: &StepCx, issue: &str, feedback: &Feedback) -> StepResult<Triage> {
    Ok(cx
        .llm()
        .structured(format!(
            "A customer of the {} reported this issue: \"{issue}\". Rate its severity (low, \
             medium, high), say whether it is urgent, and name the team that owns it. \
             Answer as JSON {{\"severity\": \"...\", \"urgent\": true, \"team\": \"...\"}}.",
            feedback.product
        ))
        .await?)
}

fn names_a_team(triage: &Triage) -> Result<(), String> {
    if triage.team.trim().is_empty() {
        Err("the triage routes the issue to no team".into())
    } else {
        Ok(())
    }
}

/// The feedback as a whole, from its issues' triage: no model call.
#[step]
async fn classify(
    _cx: &StepCx,
    feedback: &Feedback,
    triage: &[Triage],
) -> StepResult<Classification> {
    let sentiment = match (feedback.praise.is_empty(), triage.is_empty()) {
        (false, false) => Sentiment::Mixed,
        (true, false) => Sentiment::Negative,
        _ => Sentiment::Positive,
    };
    let worst = triage.iter().max_by_key(|t| (t.severity, t.urgent));
    Ok(Classification {
        sentiment,
        urgent: triage.iter().any(|t| t.urgent),
        team: worst.map_or_else(|| "customer care".to_owned(), |t| t.team.clone()),
    })
}

#[step]
async fn respond(
    cx: &StepCx,
    feedback: &Feedback,
    classification: &Classification,
) -> StepResult<String> {
    Ok(cx
        .llm()
        .text(format!(
            "Write a short, warm reply to a customer about {}. They reported: {}. \
             They liked: {}. Sentiment: {:?}. Mention that the {} team is on it.",
            feedback.product,
            feedback.issues.join("; "),
            feedback.praise.join("; "),
            classification.sentiment,
            classification.team
        ))
        .await?)
}

#[chain]
pub(crate) async fn feedback_analysis(text: String) -> String {
    step!(feedback = extract_feedback(text), max_tokens = 400);
    step!(issues = issues_of(feedback));
    // One model call per issue, at most four at a time; each is validated
    // (and re-asked) on its own.
    step!(
        triage = triage_issue(each issues, feedback),
        concurrency = 4,
        validate = names_a_team,
        max_tokens = 100
    );
    step!(classification = classify(feedback, triage));
    // A written answer can run past its token limit (small models ramble):
    // it is asked again twice, then the step is retried.
    step!(
        reply = respond(feedback, classification),
        max_tokens = 800,
        retry = 2
    );
    reply
}

const FEEDBACK: &str = "I love how fast the new Lumen desk lamp charges, and the warm light \
mode is perfect for reading. But the touch dimmer stopped responding after two weeks and the \
app keeps logging me out. I'd like a replacement before my exams next week.";

/// The scripted model: answers a real model gave for the sample feedback.
/// The offline model.
pub(crate) fn scripted_model() -> ScriptedModel {
    let ms = Duration::from_millis;
    ScriptedModel::new()
        .on_step(
            "extract_feedback",
            ScriptedReply::text(
                r#"{"product": "Lumen desk lamp", "issues": ["touch dimmer stopped responding after two weeks", "app keeps logging the user out"], "praise": ["fast charging", "warm light mode for reading"]}"#,
            )
            .after(ms(210)),
        )
        .on_step(
            "triage_issue",
            ScriptedReply::from_fn(|request| {
                if request.prompt().contains("dimmer") {
                    r#"{"severity": "high", "urgent": true, "team": "hardware support"}"#
                } else {
                    r#"{"severity": "medium", "urgent": false, "team": "app"}"#
                }
                .to_owned()
            })
            .after(ms(150)),
        )
        .on_step(
            "respond",
            ScriptedReply::text(
                "Thank you for writing, and we're glad the fast charging and warm light mode work \
                 well for your reading! We're sorry the touch dimmer stopped responding and that the \
                 app keeps logging you out. Our hardware support team is arranging a replacement \
                 lamp now so it reaches you before your exams.",
            )
            .after(ms(320)),
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

/// Runs the chain on the sample feedback.
pub(crate) async fn demo(rt: &Runtime) -> Outcome<feedback_analysis::Output> {
    feedback_analysis::execute(
        rt,
        feedback_analysis::Input {
            text: FEEDBACK.to_owned(),
        },
    )
    .await
}

#[tokio::main]
async fn main() -> ExitCode {
    let rt = match runtime_from_env() {
        Ok(rt) => rt,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let outcome = demo(&rt).await;
    let report = outcome.report;
    let outputs = match outcome.result {
        Ok(outputs) => outputs,
        Err(error) => {
            // What ran, and when, up to the failure.
            eprintln!("error: {error}");
            eprint!("{}", report.timeline(40));
            return ExitCode::FAILURE;
        }
    };
    println!("Product: {}", outputs.feedback.product);
    for (issue, triage) in outputs.issues.iter().zip(&outputs.triage) {
        println!(
            "Issue: {issue} ({:?}{}, {})",
            triage.severity,
            if triage.urgent { ", urgent" } else { "" },
            triage.team
        );
    }
    println!(
        "Sentiment: {:?}, urgent: {}, team: {}",
        outputs.classification.sentiment,
        outputs.classification.urgent,
        outputs.classification.team
    );
    println!("Reply:\n  {}", outputs.reply);
    println!();
    println!(
        "Run {} took {} ms.",
        report.run_id,
        report.duration.as_millis()
    );
    print!("{}", report.timeline(40));
    let overlapping = report.overlapping();
    if overlapping.is_empty() {
        println!(
            "No steps overlapped: each one needs the previous one's output \
             (the issues were triaged side by side, inside one map step)."
        );
    }
    for (a, b) in overlapping {
        println!("  {a} ∥ {b}");
    }
    ExitCode::SUCCESS
}
