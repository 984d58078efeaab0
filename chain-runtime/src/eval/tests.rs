use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};

use super::{Case, Eval, ExactMatch, Judge, Score, load_cases, scorer_fn};
use crate::error::{ChainError, FailureKind};
use crate::ids::RunId;
use crate::llm::{ScriptedModel, ScriptedReply};
use crate::report::{ExecutionReport, Outcome, RunStatus};
use crate::runtime::Runtime;

/// A stand-in for a chain: doubles `n` into `double`, and says whether it
/// is even under `parity`; case 3 fails after computing `double`.
async fn fake_chain(n: i64) -> Outcome<Value> {
    // One step that used 10 tokens.
    let report = |status| {
        let mut step = crate::report::StepRecord::new(0, "double", "double");
        step.usage = crate::llm::Usage::new(6, 4);
        Arc::new(ExecutionReport::new(
            RunId::new(),
            None,
            "fake",
            status,
            std::time::Duration::from_millis(n as u64),
            vec![step],
            Vec::new(),
        ))
    };
    if n == 3 {
        let mut completed = serde_json::Map::new();
        completed.insert("double".into(), json!(6));
        let error = ChainError::run_failed(
            "fake",
            FailureKind::Internal {
                message: "boom".into(),
            },
        )
        .with_completed(completed);
        return Outcome {
            result: Err(error),
            report: report(RunStatus::Failed),
        };
    }
    let parity = if n % 2 == 0 { "even" } else { "odd" };
    Outcome {
        result: Ok(json!({ "n": n, "double": n * 2, "parity": parity })),
        report: report(RunStatus::Completed),
    }
}

fn cases() -> Vec<Case<i64>> {
    // Case 4's label is wrong on purpose: 4 is even.
    [
        (1, 2, "odd"),
        (2, 4, "even"),
        (3, 6, "odd"),
        (4, 8, "odd"),
        (5, 10, "ODD "),
    ]
    .into_iter()
    .map(|(n, double, parity)| Case {
        id: format!("c{n}"),
        input: n,
        expected: serde_json::from_value(json!({ "double": double, "parity": parity }))
            .expect("a map"),
    })
    .collect()
}

async fn evaluate(name: &str) -> super::EvalReport {
    Eval::new(name)
        .metric("double", ExactMatch::new())
        .metric("parity", ExactMatch::ignoring_case())
        .metric(
            "double",
            scorer_fn("close", |expected, actual| {
                match (
                    expected.and_then(Value::as_f64),
                    actual.and_then(Value::as_f64),
                ) {
                    (Some(e), Some(a)) => Score::new(1.0 - ((e - a).abs() / e.abs().max(1.0))),
                    _ => Score::new(0.0),
                }
            }),
        )
        .concurrency(2)
        .progress(false)
        .run(&Runtime::default(), &cases(), |_, n| fake_chain(n))
        .await
}

#[tokio::test]
async fn metrics_per_key_and_end_to_end_are_right_on_known_answers() {
    let report = evaluate("v1").await;
    assert_eq!(
        (report.cases_total, report.cases_run, report.completed),
        (5, 5, 4)
    );
    // c1, c2, c5 pass; c3 failed its run; c4's label is wrong.
    assert_eq!(report.passed, 3);
    assert!((report.accuracy - 0.6).abs() < 1e-9);
    let double = report.metric("double").expect("a metric");
    // The failed run is graded on the key it finished.
    assert_eq!((double.passed, double.graded), (5, 5));
    let parity = &report.metrics[1];
    assert_eq!(parity.key, "parity");
    // c3 has no parity (failed), c4 is wrong; "ODD " matches loosely.
    assert_eq!(parity.passed, 3);
    assert!(
        report
            .case("c3")
            .is_some_and(|c| c.error.as_deref().is_some_and(|e| e.contains("boom")))
    );
    let table = report.table();
    assert!(table.contains("3/5 cases passed (60.0 %)"), "{table}");
    assert!(
        table.contains("c4: `parity` expected \"odd\", got \"even\""),
        "{table}"
    );
    let json: Value = serde_json::from_str(&report.to_json()).expect("JSON");
    assert_eq!(json["passed"], 3);
    assert_eq!(json["cases"][3]["scores"][1]["actual"], "even");
    let html = report.html();
    assert!(
        html.contains("<tr class=\"fail\"><td><code>c4</code>"),
        "{html}"
    );
    assert!(html.starts_with("<!DOCTYPE html>"));
}

#[tokio::test]
async fn two_runs_compare_case_by_case() {
    let before = evaluate("v1").await;
    let mut after_cases = cases();
    // The label fixed: c4 now passes.
    after_cases[3]
        .expected
        .insert("parity".into(), json!("even"));
    let after = Eval::new("v2")
        .metric("double", ExactMatch::new())
        .metric("parity", ExactMatch::ignoring_case())
        .progress(false)
        .run(&Runtime::default(), &after_cases, |_, n| fake_chain(n))
        .await;
    // The earlier run, as CI kept it.
    let before = super::EvalReport::from_json(&before.to_json()).expect("read back");
    assert!(after.compare(&after).regressions.is_empty());
    let comparison = after.compare(&before);
    assert!(comparison.no_regressions());
    assert_eq!(comparison.fixes.len(), 1);
    assert_eq!(comparison.fixes[0].id, "c4");
    let table = comparison.table();
    assert!(
        table.contains("accuracy 60.0 % → 80.0 % (+20.0 points)"),
        "{table}"
    );
    assert!(table.contains("fixes (1):\n  c4"), "{table}");
}

#[tokio::test]
async fn a_budget_stops_new_cases_once_spent() {
    // Each run uses 10 tokens: after two, 20 >= 15 and no new case starts.
    let report = Eval::new("budget")
        .metric("double", ExactMatch::new())
        .concurrency(1)
        .max_tokens(15)
        .progress(false)
        .run(&Runtime::default(), &cases(), |_, n| fake_chain(n))
        .await;
    assert_eq!(
        (report.cases_run, report.cases_total, report.tokens),
        (2, 5, 20)
    );
    let stopped = report.stopped.as_deref().unwrap_or_default();
    assert!(
        stopped.contains("the budget of 15 tokens was spent (20)"),
        "{stopped}"
    );
    assert!(
        report
            .case("c3")
            .is_some_and(|c| c.status.is_none() && !c.passed)
    );
    assert!(report.table().contains("stopped early"));
}

#[tokio::test]
async fn no_more_cases_run_at_once_than_the_concurrency() {
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (r, m) = (Arc::clone(&running), Arc::clone(&most));
    let all = Eval::new("bounded")
        .concurrency(2)
        .progress(false)
        .run(&Runtime::default(), &cases(), move |_, n| {
            let (r, m) = (Arc::clone(&r), Arc::clone(&m));
            async move {
                let now = r.fetch_add(1, Ordering::SeqCst) + 1;
                m.fetch_max(now, Ordering::SeqCst);
                tokio::task::yield_now().await;
                r.fetch_sub(1, Ordering::SeqCst);
                fake_chain(n).await
            }
        })
        .await;
    assert_eq!(all.cases_run, 5);
    assert_eq!(most.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_judge_grades_with_a_model_and_its_reason_is_kept() {
    let judge = ScriptedModel::new().otherwise(ScriptedReply::from_fn(|request| {
        if request.prompt().contains("\"even\"") || request.prompt().contains("\neven\n") {
            r#"{"score": 0.9, "reason": "states the parity"}"#.to_owned()
        } else {
            r#"```json
{"score": 0.2, "reason": "wrong parity"}
```"#
                .to_owned()
        }
    }));
    let report = Eval::new("judged")
        .metric("parity", Judge::new(judge, "The parity is even."))
        .progress(false)
        .run(&Runtime::default(), &cases()[..2], |_, n| fake_chain(n))
        .await;
    let c2 = report.case("c2").expect("c2");
    assert!(c2.passed);
    assert_eq!(
        c2.scores[0]
            .score
            .as_ref()
            .and_then(|s| s.reason.as_deref()),
        Some("states the parity")
    );
    let c1 = report.case("c1").expect("c1");
    assert!(!c1.passed);
    assert!(report.judge_tokens > 0);
}

#[tokio::test]
async fn a_case_without_an_expected_value_is_not_graded_on_that_key() {
    let mut cases = cases();
    for case in &mut cases[..2] {
        case.expected.remove("parity");
    }
    let report = Eval::new("partial")
        .metric("parity", ExactMatch::ignoring_case())
        .progress(false)
        .run(&Runtime::default(), &cases, |_, n| fake_chain(n))
        .await;
    let parity = report.metric("parity").expect("a metric");
    // c1 and c2 have no label: c3 (no value), c4 (wrong) and c5 are graded.
    assert_eq!((parity.passed, parity.graded), (1, 3));
    assert!(
        report
            .case("c1")
            .is_some_and(|c| c.passed && !c.scores[0].graded)
    );
}

#[test]
fn a_dotted_key_reads_a_field_of_a_key() {
    let map: serde_json::Map<String, Value> =
        serde_json::from_value(json!({"details": {"issue": "refund", "lines": [1, 2]}, "a.b": 7}))
            .expect("a map");
    assert_eq!(super::lookup(&map, "details.issue"), Some(&json!("refund")));
    assert_eq!(super::lookup(&map, "details.lines.1"), Some(&json!(2)));
    assert_eq!(
        super::lookup(&map, "a.b"),
        Some(&json!(7)),
        "a literal key wins"
    );
    assert_eq!(super::lookup(&map, "details.missing"), None);
}

#[test]
fn a_dataset_is_read_with_clear_errors() {
    let dir = std::env::temp_dir().join(format!("prompt-chain-eval-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a folder");
    let path = dir.join("cases.jsonl");
    std::fs::write(
        &path,
        "// a comment\n{\"id\": \"a\", \"input\": 1, \"expected\": {\"double\": 2}}\n\n{\"id\": \"b\", \"input\": 2}\n",
    )
    .expect("written");
    let cases = load_cases::<i64>(&path).expect("cases");
    assert_eq!(cases.len(), 2);
    assert!(cases[1].expected.is_empty());
    std::fs::write(&path, "{\"id\": \"a\", \"input\": \"x\"}\n").expect("written");
    let error = load_cases::<i64>(&path)
        .expect_err("a string is not an i64")
        .to_string();
    assert!(error.contains("line 1 of the dataset"), "{error}");
    std::fs::write(
        &path,
        "{\"id\": \"a\", \"input\": 1}\n{\"id\": \"a\", \"input\": 2}\n",
    )
    .expect("written");
    let error = load_cases::<i64>(&path).expect_err("duplicate").to_string();
    assert!(error.contains("two cases with the id `a`"), "{error}");
}
