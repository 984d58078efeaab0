//! What an evaluation found: each case, each metric, each step, and the
//! totals; as a terminal table or JSON.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::scorer::{Score, ScoreCost, Scorer};
use crate::report::{ExecutionReport, RunStatus, StepStatus};

/// One metric's grade of one case.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyScore {
    /// The key graded.
    pub key: String,
    /// The scorer's name.
    pub scorer: String,
    /// The grade (`None` if grading failed: see `error`).
    pub score: Option<Score>,
    /// Whether the grade reached the scorer's threshold (true when not graded).
    pub passed: bool,
    /// Whether the case was graded on this key (not when it gives no
    /// expected value and the scorer needs one).
    #[serde(default = "yes")]
    pub graded: bool,
    /// Why grading failed, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The expected value.
    pub expected: Option<Value>,
    /// The value the run produced.
    pub actual: Option<Value>,
    #[serde(skip)]
    pub(super) cost: ScoreCost,
}

impl KeyScore {
    pub(super) fn new(
        key: &str,
        scorer: &dyn Scorer,
        graded: Result<(Score, ScoreCost), String>,
        expected: Option<&Value>,
        actual: Option<&Value>,
    ) -> Self {
        let (score, error, cost) = match graded {
            Ok((score, cost)) => (Some(score), None, cost),
            Err(error) => (None, Some(error), ScoreCost::default()),
        };
        Self {
            key: key.to_owned(),
            scorer: scorer.name().to_owned(),
            graded: true,
            passed: score
                .as_ref()
                .is_some_and(|score| score.value >= scorer.threshold()),
            score,
            error,
            expected: expected.cloned(),
            actual: actual.cloned(),
            cost,
        }
    }
}

impl KeyScore {
    /// A key the case is not graded on.
    pub(super) fn not_graded(key: &str, scorer: &dyn Scorer, actual: Option<&Value>) -> Self {
        Self {
            key: key.to_owned(),
            scorer: scorer.name().to_owned(),
            score: None,
            passed: true,
            graded: false,
            error: None,
            expected: None,
            actual: actual.cloned(),
            cost: ScoreCost::default(),
        }
    }
}

fn yes() -> bool {
    true
}

/// How one case went.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaseResult {
    /// The case's id.
    pub id: String,
    /// How its run ended (`None`: not run, the budget was spent).
    pub status: Option<RunStatus>,
    /// The run's error, if it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Whether the run completed and every metric passed.
    pub passed: bool,
    /// Each metric's grade.
    pub scores: Vec<KeyScore>,
    /// The run's wall time.
    pub duration_ms: u64,
    /// The run's tokens.
    pub tokens: u64,
    /// The run's cost, if the runtime has prices.
    pub cost_usd: Option<f64>,
    /// The judges' tokens.
    pub judge_tokens: u64,
    /// The judges' cost, if priced.
    pub judge_cost_usd: Option<f64>,
    /// Each step's status, attempts, tokens and cost in this run.
    #[serde(skip)]
    pub(super) steps: Vec<(&'static str, StepStatus, u32, u64, Option<f64>)>,
}

impl CaseResult {
    pub(super) fn new(
        id: &str,
        report: &ExecutionReport,
        error: Option<String>,
        took: Duration,
        scores: Vec<KeyScore>,
    ) -> Self {
        let judge_tokens = scores.iter().map(|s| s.cost.usage.total()).sum();
        let judge_cost_usd = scores
            .iter()
            .filter_map(|s| s.cost.cost_usd)
            .reduce(|a, b| a + b);
        Self {
            id: id.to_owned(),
            status: Some(report.status),
            passed: super::completed(report) && scores.iter().all(|s| s.passed),
            error,
            scores,
            duration_ms: took.as_millis() as u64,
            tokens: report.usage.total(),
            cost_usd: report.cost_usd,
            judge_tokens,
            judge_cost_usd,
            steps: report
                .steps
                .iter()
                .map(|s| (s.name, s.status, s.attempts, s.usage.total(), s.cost_usd))
                .collect(),
        }
    }

    pub(super) fn not_run(id: &str, why: Option<&str>) -> Self {
        Self {
            id: id.to_owned(),
            status: None,
            error: Some(why.unwrap_or("not run").to_owned()),
            passed: false,
            scores: Vec::new(),
            duration_ms: 0,
            tokens: 0,
            cost_usd: None,
            judge_tokens: 0,
            judge_cost_usd: None,
            steps: Vec::new(),
        }
    }
}

/// One metric over every case run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MetricSummary {
    /// The key graded.
    pub key: String,
    /// The scorer.
    pub scorer: String,
    /// Cases graded (run, with or without a value).
    pub graded: usize,
    /// Cases that passed.
    pub passed: usize,
    /// `passed / graded`.
    pub accuracy: f64,
    /// The mean grade.
    pub mean_score: f64,
}

/// One step over every case run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepSummary {
    /// The step.
    pub step: String,
    /// Runs in which it ran or was reached.
    pub runs: usize,
    /// Runs in which it produced its output.
    pub succeeded: usize,
    /// Runs in which it failed.
    pub failed: usize,
    /// Attempts over all runs.
    pub attempts: u32,
    /// Tokens over all runs.
    pub tokens: u64,
    /// Cost over all runs, if priced.
    pub cost_usd: Option<f64>,
}

/// What an evaluation found. [`EvalReport::table`] for a terminal,
/// [`EvalReport::to_json`] for CI, [`EvalReport::html`] for a person.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvalReport {
    /// The evaluation's name.
    pub name: String,
    /// Cases in the dataset.
    pub cases_total: usize,
    /// Cases run.
    pub cases_run: usize,
    /// Cases whose run completed.
    pub completed: usize,
    /// Cases that passed end to end (completed, every metric passed).
    pub passed: usize,
    /// `passed / cases_run`.
    pub accuracy: f64,
    /// Each metric.
    pub metrics: Vec<MetricSummary>,
    /// Each step (by name, in the order first seen).
    pub steps: Vec<StepSummary>,
    /// Tokens of every run.
    pub tokens: u64,
    /// Cost of every run, if priced.
    pub cost_usd: Option<f64>,
    /// Tokens of the judges.
    pub judge_tokens: u64,
    /// Cost of the judges, if priced.
    pub judge_cost_usd: Option<f64>,
    /// Median run time.
    pub p50_ms: u64,
    /// 95th-percentile run time.
    pub p95_ms: u64,
    /// Wall time of the whole evaluation.
    pub wall_ms: u64,
    /// Why cases were left unrun, if the budget stopped the evaluation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    /// Every case, in dataset order.
    pub cases: Vec<CaseResult>,
}

impl EvalReport {
    pub(super) fn new(
        name: &str,
        metrics: &[(String, Arc<dyn Scorer>)],
        cases: Vec<CaseResult>,
        wall: Duration,
        stopped: Option<String>,
    ) -> Self {
        let run: Vec<&CaseResult> = cases.iter().filter(|c| c.status.is_some()).collect();
        let metrics = metrics
            .iter()
            .enumerate()
            .map(|(m, (key, scorer))| {
                let scores: Vec<&KeyScore> = run
                    .iter()
                    .filter_map(|c| c.scores.get(m))
                    .filter(|s| s.graded)
                    .collect();
                let passed = scores.iter().filter(|s| s.passed).count();
                let mean = scores
                    .iter()
                    .map(|s| s.score.as_ref().map_or(0.0, |s| s.value))
                    .sum::<f64>();
                MetricSummary {
                    key: key.clone(),
                    scorer: scorer.name().to_owned(),
                    graded: scores.len(),
                    passed,
                    accuracy: ratio(passed, scores.len()),
                    mean_score: if scores.is_empty() {
                        0.0
                    } else {
                        mean / scores.len() as f64
                    },
                }
            })
            .collect();
        let mut durations: Vec<u64> = run.iter().map(|c| c.duration_ms).collect();
        durations.sort_unstable();
        let passed = run.iter().filter(|c| c.passed).count();
        let sum_cost = |f: fn(&CaseResult) -> Option<f64>| {
            run.iter().filter_map(|c| f(c)).reduce(|a, b| a + b)
        };
        Self {
            name: name.to_owned(),
            cases_total: cases.len(),
            cases_run: run.len(),
            completed: run
                .iter()
                .filter(|c| c.status == Some(RunStatus::Completed))
                .count(),
            passed,
            accuracy: ratio(passed, run.len()),
            metrics,
            steps: step_summaries(&run),
            tokens: run.iter().map(|c| c.tokens).sum(),
            cost_usd: sum_cost(|c| c.cost_usd),
            judge_tokens: run.iter().map(|c| c.judge_tokens).sum(),
            judge_cost_usd: sum_cost(|c| c.judge_cost_usd),
            p50_ms: percentile(&durations, 50),
            p95_ms: percentile(&durations, 95),
            wall_ms: wall.as_millis() as u64,
            stopped,
            cases,
        }
    }

    /// The metric on `key` (the first, if several grade it).
    pub fn metric(&self, key: &str) -> Option<&MetricSummary> {
        self.metrics.iter().find(|m| m.key == key)
    }

    /// The case `id`.
    pub fn case(&self, id: &str) -> Option<&CaseResult> {
        self.cases.iter().find(|c| c.id == id)
    }

    /// The report as pretty JSON (for CI to keep and compare).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// A report [`EvalReport::to_json`] wrote, read back (to compare a new
    /// run with it).
    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }
}

fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn percentile(sorted: &[u64], p: usize) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) * p).div_ceil(100).min(sorted.len() - 1)]
}

/// Each step over the runs, in the order steps first appear.
fn step_summaries(run: &[&CaseResult]) -> Vec<StepSummary> {
    let mut order: Vec<&'static str> = Vec::new();
    let mut by_step: BTreeMap<&'static str, StepSummary> = BTreeMap::new();
    for case in run {
        for &(name, status, attempts, tokens, cost) in &case.steps {
            if matches!(status, StepStatus::Pending | StepStatus::Skipped) {
                continue;
            }
            let summary = by_step.entry(name).or_insert_with(|| {
                order.push(name);
                StepSummary {
                    step: name.to_owned(),
                    runs: 0,
                    succeeded: 0,
                    failed: 0,
                    attempts: 0,
                    tokens: 0,
                    cost_usd: None,
                }
            });
            summary.runs += 1;
            summary.succeeded += usize::from(matches!(
                status,
                StepStatus::Succeeded | StepStatus::Restored | StepStatus::Cached
            ));
            summary.failed += usize::from(status == StepStatus::Failed);
            summary.attempts += attempts;
            summary.tokens += tokens;
            summary.cost_usd = match (summary.cost_usd, cost) {
                (Some(a), Some(b)) => Some(a + b),
                (a, b) => a.or(b),
            };
        }
    }
    order
        .into_iter()
        .filter_map(|name| by_step.remove(name))
        .collect()
}
