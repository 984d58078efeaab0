//! Four independent analyses of a proposal and a summary of each supporting
//! document (a map step over a list known only at run time), then a
//! synthesis. All of them run at the same time, so the run takes as long as
//! the slowest of them plus the synthesis, not the sum.
//!
//! ```text
//! cargo run --example parallel_analysis
//! ```

use std::process::ExitCode;
use std::time::Duration;

use prompt_chain::Outcome;
use prompt_chain::llm::ScriptedReply;
use prompt_chain::prelude::*;
use prompt_chain::schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One analysis: a headline and the points behind it. The bounds go into
/// the schema sent to the model (structured output), so a reply cannot run on.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(crate = "prompt_chain::schemars")]
pub(crate) struct Analysis {
    #[schemars(length(max = 100))]
    headline: String,
    #[schemars(length(max = 4), inner(length(max = 200)))]
    points: Vec<String>,
}

async fn analyze(cx: &StepCx, angle: &str, document: &str) -> StepResult<Analysis> {
    Ok(cx
        .llm()
        .max_tokens(400)
        .structured(format!(
            "Analyze the document below for its {angle}. \
             Answer as JSON {{\"headline\": \"...\", \"points\": [...]}}.\n\n{document}"
        ))
        .await?)
}

#[step]
async fn market_analysis(cx: &StepCx, document: &str) -> StepResult<Analysis> {
    analyze(cx, "market opportunity", document).await
}

#[step]
async fn technical_analysis(cx: &StepCx, document: &str) -> StepResult<Analysis> {
    analyze(cx, "technical feasibility", document).await
}

#[step]
async fn financial_analysis(cx: &StepCx, document: &str) -> StepResult<Analysis> {
    analyze(cx, "financial outlook", document).await
}

#[step]
async fn risk_analysis(cx: &StepCx, document: &str) -> StepResult<Analysis> {
    analyze(cx, "main risks", document).await
}

/// What one supporting document says about the proposal.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(crate = "prompt_chain::schemars")]
pub(crate) struct Evidence {
    #[schemars(length(max = 200))]
    takeaway: String,
    supports_proposal: bool,
}

/// One supporting document, read against the proposal.
#[step]
async fn read_evidence(cx: &StepCx, evidence: &str, document: &str) -> StepResult<Evidence> {
    Ok(cx
        .llm()
        .structured(format!(
            "Here is a proposal:\n{document}\n\nAnd a supporting document:\n{evidence}\n\n\
             In one sentence, what does the supporting document say about the proposal, and \
             does it support it? Answer as JSON {{\"takeaway\": \"...\", \"supports_proposal\": true}}."
        ))
        .await?)
}

#[step]
async fn synthesize(
    cx: &StepCx,
    market: &Analysis,
    technical: &Analysis,
    financial: &Analysis,
    risk: &Analysis,
    findings: &[Evidence],
) -> StepResult<String> {
    let analyses = serde_json::to_string_pretty(&[market, technical, financial, risk])?;
    let findings = serde_json::to_string_pretty(findings)?;
    Ok(cx
        .llm()
        .max_tokens(600)
        .text(format!(
            "Write a three-sentence recommendation from these four analyses:\n{analyses}\n\
             and what the supporting documents say:\n{findings}"
        ))
        .await?)
}

#[chain]
pub(crate) async fn parallel_analysis(document: String, evidence: Vec<String>) -> String {
    step!(market = market_analysis(document));
    step!(technical = technical_analysis(document));
    step!(financial = financial_analysis(document));
    step!(risk = risk_analysis(document), retry = 1);
    // However many supporting documents there are, at most four at a time,
    // beside the four analyses; `findings` holds them in input order.
    step!(
        findings = read_evidence(each evidence, document),
        concurrency = 4,
        max_tokens = 200,
        retry = 1
    );
    step!(
        recommendation = synthesize(market, technical, financial, risk, findings),
        retry = 2
    );
    recommendation
}

const DOCUMENT: &str = "Proposal: a subscription service delivering refurbished office \
furniture to small companies, with quarterly swaps. Pilot in two cities with 40 customers \
showed 92% retention; logistics costs were 31% of revenue. Competitors sell new furniture \
on 36-month leases.";

/// The supporting documents: as many as there are, known only at run time.
const EVIDENCE: [&str; 3] = [
    "Pilot survey: 34 of 40 customers rated the quarterly swap as the main reason to stay; \
     6 asked for monthly swaps.",
    "Operations log: 11% of swapped chairs arrived scratched; two delivery routes served \
     70% of pilot customers.",
    "Competitor brochure: new desks on 36-month leases, credit check required, no swaps.",
];

/// The scripted model, with uneven latencies so the overlap is visible.
/// The offline model.
pub(crate) fn scripted_model() -> ScriptedModel {
    let ms = Duration::from_millis;
    let reply = |headline: &str, points: &[&str], latency: u64| {
        let json = serde_json::json!({ "headline": headline, "points": points });
        ScriptedReply::text(json.to_string()).after(ms(latency))
    };
    ScriptedModel::new()
        .on_step(
            "market_analysis",
            reply(
                "Underserved segment",
                &["small companies rarely qualify for leases", "92% pilot retention signals fit"],
                380,
            ),
        )
        .on_step(
            "technical_analysis",
            reply(
                "Feasible with existing refurbishers",
                &["swap logistics is the hard part", "inventory tracking needs a system"],
                250,
            ),
        )
        .on_step(
            "financial_analysis",
            reply(
                "Margins depend on logistics",
                &["logistics at 31% of revenue must fall below 20%", "refurbished stock halves capital cost"],
                460,
            ),
        )
        .on_step(
            "risk_analysis",
            reply(
                "Logistics and damage",
                &["quarterly swaps multiply damage risk", "competitors can add refurbished lines"],
                300,
            ),
        )
        .on_step(
            "read_evidence",
            ScriptedReply::from_fn(|request| {
                let prompt = request.prompt();
                let (takeaway, supports) = if prompt.contains("Pilot survey") {
                    ("Customers stay for the swaps themselves.", true)
                } else if prompt.contains("Operations log") {
                    ("Damage in transit is real; dense routes help.", false)
                } else {
                    ("Competitors exclude companies that fail credit checks.", true)
                };
                serde_json::json!({ "takeaway": takeaway, "supports_proposal": supports })
                    .to_string()
            })
            .after(ms(300)),
        )
        .on_step(
            "synthesize",
            ScriptedReply::text(
                "Proceed to a third city: retention shows real demand from companies that leases \
                 ignore. Make route density the first goal, because logistics at 31% of revenue is \
                 what stands between this and a profitable business. Track damage per swap from day one.",
            )
            .after(ms(200)),
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

/// Runs the chain on the sample proposal.
pub(crate) async fn demo(rt: &Runtime) -> Outcome<parallel_analysis::Output> {
    parallel_analysis::execute(
        rt,
        parallel_analysis::Input {
            document: DOCUMENT.to_owned(),
            evidence: EVIDENCE.iter().map(|text| (*text).to_owned()).collect(),
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
    for (name, analysis) in [
        ("market", &outputs.market),
        ("technical", &outputs.technical),
        ("financial", &outputs.financial),
        ("risk", &outputs.risk),
    ] {
        println!("{name:>9}: {}", analysis.headline);
    }
    for (n, finding) in outputs.findings.iter().enumerate() {
        let stance = if finding.supports_proposal {
            "supports"
        } else {
            "warns"
        };
        println!("evidence {}: {stance}: {}", n + 1, finding.takeaway);
    }
    println!("\nRecommendation:\n  {}\n", outputs.recommendation);
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
    ExitCode::SUCCESS
}
