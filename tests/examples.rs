//! The examples, run by the test suite: each example file is compiled here as
//! a module and its `demo` is run on its own scripted model under paused time,
//! so the timings below are exact.

use std::time::Duration;

use prompt_chain::report::{RunStatus, StepStatus};
use serde_json::Value;

#[allow(dead_code, private_interfaces)]
#[path = "../examples/code_review.rs"]
mod code_review_example;

#[allow(dead_code, private_interfaces)]
#[path = "../examples/feedback_analysis.rs"]
mod feedback_analysis_example;

#[allow(dead_code, private_interfaces)]
#[path = "../examples/parallel_analysis.rs"]
mod parallel_analysis_example;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn to_json(value: &impl serde::Serialize) -> Value {
    serde_json::to_value(value).expect("outputs serialize")
}

#[tokio::test(start_paused = true)]
async fn code_review_overlaps_its_three_checks() {
    let outcome = code_review_example::demo(&code_review_example::runtime()).await;
    let report = outcome.report;
    let out = to_json(&outcome.result.expect("the review completes"));
    assert_eq!(out["final_review"]["verdict"], "changes requested");
    assert_eq!(out["security_check"]["severity"], "major");
    assert_eq!(out["changes_summary"]["files"][0], "src/users.rs");
    // extract 180 → correctness 420 (performance 260 and security 350 run
    // alongside from the start) → summarize 240.
    assert_eq!(report.duration, ms(180 + 420 + 240));
    assert_eq!(report.sequential_time(), ms(180 + 420 + 260 + 350 + 240));
    let overlapping = report.overlapping();
    for pair in [
        ("check_correctness", "check_performance"),
        ("check_correctness", "check_security"),
        ("check_performance", "check_security"),
    ] {
        assert!(overlapping.contains(&pair), "{pair:?} in {overlapping:?}");
    }
    assert!(
        report
            .steps
            .iter()
            .all(|s| s.status == StepStatus::Succeeded)
    );
}

#[tokio::test(start_paused = true)]
async fn feedback_analysis_is_a_straight_line() {
    let outcome = feedback_analysis_example::demo(&feedback_analysis_example::runtime()).await;
    let report = outcome.report;
    let out = to_json(&outcome.result.expect("the analysis completes"));
    assert_eq!(out["classification"]["sentiment"], "mixed");
    assert_eq!(out["classification"]["team"], "hardware support");
    // The two issues were triaged side by side, each its own element.
    assert_eq!(out["triage"][0]["severity"], "high");
    assert_eq!(out["triage"][1]["team"], "app");
    let triage = report.step("triage").expect("the map ran");
    assert_eq!(triage.items.len(), 2);
    assert_eq!(triage.duration(), Some(ms(150)));
    assert!(
        out["reply"]
            .as_str()
            .is_some_and(|r| r.contains("replacement"))
    );
    assert_eq!(report.duration, ms(210 + 150 + 320));
    assert!(report.overlapping().is_empty());
    assert_eq!(report.status, RunStatus::Completed);
}

#[tokio::test(start_paused = true)]
async fn parallel_analysis_takes_its_slowest_branch_plus_synthesis() {
    let outcome = parallel_analysis_example::demo(&parallel_analysis_example::runtime()).await;
    let report = outcome.report;
    let out = to_json(&outcome.result.expect("the analysis completes"));
    assert_eq!(out["financial"]["headline"], "Margins depend on logistics");
    assert!(
        out["recommendation"]
            .as_str()
            .is_some_and(|r| r.starts_with("Proceed"))
    );
    assert_eq!(report.duration, ms(460 + 200));
    assert_eq!(
        report.overlapping().len(),
        10,
        "the four analyses and the map over the evidence overlap pairwise"
    );
    assert_eq!(out["findings"].as_array().map(Vec::len), Some(3));
    assert_eq!(out["findings"][1]["supports_proposal"], false);
    let findings = report.step("findings").expect("the map ran");
    assert_eq!(
        findings.duration(),
        Some(ms(300)),
        "three documents side by side"
    );
    // One call at a time: every analysis, every document, the synthesis.
    assert_eq!(
        report.sequential_time(),
        ms(380 + 250 + 460 + 300 + 3 * 300 + 200)
    );
    assert!(report.timeline(40).contains("(3 elements)"));
    let synth = report.step("synthesize").expect("synthesize ran");
    assert_eq!(synth.started_at, Some(ms(460)));
}
