//! Evaluating a chain over a labelled dataset: metrics per key (per step)
//! and end to end, with bounded concurrency and a budget; a terminal table,
//! JSON for CI, an HTML report, and two runs compared case by case.
//!
//! ```no_run
//! # use prompt_chain_runtime::{Runtime, Outcome};
//! # use prompt_chain_runtime::eval::{Eval, ExactMatch, load_cases};
//! # #[derive(Clone, serde::Serialize, serde::Deserialize)] struct Input { text: String }
//! # async fn execute(rt: &Runtime, input: Input) -> Outcome<serde_json::Value> { unimplemented!() }
//! # async fn demo(rt: Runtime) -> Result<(), Box<dyn std::error::Error>> {
//! // One JSON object a line: {"id": "...", "input": {...}, "expected": {"category": "billing"}}
//! let cases = load_cases::<Input>("evals/router.jsonl")?;
//! let report = Eval::new("router")
//!     .metric("category", ExactMatch::new())
//!     .concurrency(4)
//!     .max_cost_usd(0.50)
//!     .run(&rt, &cases, |rt, input| async move { execute(&rt, input).await })
//!     .await;
//! println!("{}", report.table());
//! std::fs::write("eval.json", report.to_json())?;
//! # Ok(()) }
//! ```
//!
//! Expected values are keyed by the chain's keys (its `Output`'s fields),
//! or by a dotted path into one (`details.issue`): a metric on a key grades
//! that step; a case passes end to end when its run
//! completed and every metric passed. A failed run is still graded on the
//! keys it finished.

mod compare;
mod html;
mod progress;
mod report;
mod scorer;
mod table;

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

pub use compare::{CaseChange, Comparison, KeyChange};
pub use report::{CaseResult, EvalReport, KeyScore, MetricSummary, StepSummary};
pub use scorer::{ExactMatch, Judge, Score, ScoreCost, ScoreInput, Scorer, scorer_fn};

use crate::report::{ExecutionReport, Outcome, RunStatus};
use crate::runtime::Runtime;

/// One labelled example: the chain's input and the values expected under
/// some of its keys.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Case<I> {
    /// A stable name for the case (compared across runs).
    pub id: String,
    /// The chain's input.
    pub input: I,
    /// Expected values, by key.
    #[serde(default)]
    pub expected: Map<String, Value>,
}

/// A dataset that could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DatasetError {
    /// The file could not be read.
    #[error("could not read the dataset {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A line is not a case.
    #[error(
        "line {line} of the dataset {path} is not a case (`{{\"id\", \"input\", \"expected\"}}`): {message}"
    )]
    Line {
        /// The file.
        path: String,
        /// The line, from 1.
        line: usize,
        /// The parser's message.
        message: String,
    },
    /// Two cases share an id.
    #[error("the dataset {path} has two cases with the id `{id}`")]
    DuplicateId {
        /// The file.
        path: String,
        /// The id.
        id: String,
    },
}

/// Reads a JSON Lines dataset (blank lines and lines starting with `//`
/// are skipped).
pub fn load_cases<I: DeserializeOwned>(
    path: impl AsRef<Path>,
) -> Result<Vec<Case<I>>, DatasetError> {
    let path = path.as_ref();
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| DatasetError::Read {
        path: shown.clone(),
        source,
    })?;
    let mut cases: Vec<Case<I>> = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with("//") {
            continue;
        }
        let case: Case<I> = serde_json::from_str(line).map_err(|error| DatasetError::Line {
            path: shown.clone(),
            line: number + 1,
            message: error.to_string(),
        })?;
        if cases.iter().any(|other| other.id == case.id) {
            return Err(DatasetError::DuplicateId {
                path: shown,
                id: case.id,
            });
        }
        cases.push(case);
    }
    Ok(cases)
}

/// An evaluation: metrics by key, concurrency, a budget. Run it with
/// [`Eval::run`].
pub struct Eval {
    name: String,
    metrics: Vec<(String, Arc<dyn Scorer>)>,
    concurrency: usize,
    max_cost_usd: Option<f64>,
    max_tokens: Option<u64>,
    progress: bool,
}

impl std::fmt::Debug for Eval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Eval")
            .field("name", &self.name)
            .field(
                "metrics",
                &self
                    .metrics
                    .iter()
                    .map(|(k, s)| (k, s.name()))
                    .collect::<Vec<_>>(),
            )
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

impl Eval {
    /// An evaluation named `name` (shown in reports and comparisons); 4
    /// cases at a time, no budget, a progress bar on a terminal.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            metrics: Vec::new(),
            concurrency: 4,
            max_cost_usd: None,
            max_tokens: None,
            progress: true,
        }
    }

    /// Grades the value under `key` with `scorer` (several scorers may
    /// grade one key).
    #[must_use]
    pub fn metric(mut self, key: impl Into<String>, scorer: impl Scorer) -> Self {
        self.metrics.push((key.into(), Arc::new(scorer)));
        self
    }

    /// How many cases run at once (at least 1).
    #[must_use]
    pub fn concurrency(mut self, cases: usize) -> Self {
        self.concurrency = cases.max(1);
        self
    }

    /// Starts no new case once the runs (and judges) have cost this much;
    /// the cases left are reported as not run. Needs the runtime's prices.
    #[must_use]
    pub fn max_cost_usd(mut self, dollars: f64) -> Self {
        self.max_cost_usd = Some(dollars);
        self
    }

    /// Starts no new case once the runs (and judges) have used this many tokens.
    #[must_use]
    pub fn max_tokens(mut self, tokens: u64) -> Self {
        self.max_tokens = Some(tokens);
        self
    }

    /// Whether to draw a progress bar on stderr (only ever on a terminal).
    #[must_use]
    pub fn progress(mut self, show: bool) -> Self {
        self.progress = show;
        self
    }

    /// Runs `run` on every case (`run` is the chain: `|rt, input| async
    /// move { my_chain::execute(&rt, input).await }`), grades each, and
    /// sums up.
    pub async fn run<I, O, F, Fut>(&self, rt: &Runtime, cases: &[Case<I>], run: F) -> EvalReport
    where
        I: Clone + Serialize,
        O: Serialize,
        F: Fn(Runtime, I) -> Fut,
        Fut: Future<Output = Outcome<O>>,
    {
        let started = Instant::now();
        let bar = progress::progress_bar(self.progress, cases.len());
        let mut results: Vec<Option<CaseResult>> = (0..cases.len()).map(|_| None).collect();
        let mut in_flight = FuturesUnordered::new();
        let mut next = 0;
        let mut spent = Spent::default();
        let mut stopped = None;
        loop {
            while in_flight.len() < self.concurrency && next < cases.len() && stopped.is_none() {
                if let Some(reason) = self.over_budget(&spent) {
                    stopped = Some(reason);
                    break;
                }
                let case = &cases[next];
                let (position, input) = (next, case.input.clone());
                let run = &run;
                in_flight.push(async move {
                    let began = Instant::now();
                    let outcome = run(rt.clone(), input).await;
                    (position, outcome, began.elapsed())
                });
                next += 1;
            }
            let Some((position, outcome, took)) = in_flight.next().await else {
                break;
            };
            let result = self.grade(&cases[position], outcome, took).await;
            spent.add(&result);
            if let Some(bar) = &bar {
                bar.inc(1);
            }
            results[position] = Some(result);
        }
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        let cases = cases
            .iter()
            .zip(results)
            .map(|(case, result)| {
                result.unwrap_or_else(|| CaseResult::not_run(&case.id, stopped.as_deref()))
            })
            .collect();
        EvalReport::new(&self.name, &self.metrics, cases, started.elapsed(), stopped)
    }

    /// Why no new case may start, if the budget is spent.
    fn over_budget(&self, spent: &Spent) -> Option<String> {
        if let Some(max) = self.max_cost_usd
            && spent.cost_usd >= max
        {
            return Some(format!(
                "the budget of ${max:.4} was spent (${:.4})",
                spent.cost_usd
            ));
        }
        if let Some(max) = self.max_tokens
            && spent.tokens >= max
        {
            return Some(format!(
                "the budget of {max} tokens was spent ({})",
                spent.tokens
            ));
        }
        None
    }

    /// Grades one finished run.
    async fn grade<I: Serialize, O: Serialize>(
        &self,
        case: &Case<I>,
        outcome: Outcome<O>,
        took: Duration,
    ) -> CaseResult {
        let input = serde_json::to_value(&case.input).unwrap_or(Value::Null);
        let (actual, error) = match &outcome.result {
            Ok(output) => (
                match serde_json::to_value(output) {
                    Ok(Value::Object(map)) => map,
                    _ => Map::new(),
                },
                None,
            ),
            // A failed run is graded on the keys it finished.
            Err(error) => (error.completed().clone(), Some(error.to_string())),
        };
        let mut scores = Vec::new();
        for (key, scorer) in &self.metrics {
            let (expected, actual) = (lookup(&case.expected, key), lookup(&actual, key));
            if expected.is_none() && scorer.needs_expected() {
                scores.push(KeyScore::not_graded(key, scorer.as_ref(), actual));
                continue;
            }
            let input = ScoreInput {
                case: &case.id,
                key,
                input: &input,
                expected,
                actual,
            };
            let graded = scorer.score(input).await;
            scores.push(KeyScore::new(
                key,
                scorer.as_ref(),
                graded,
                expected,
                actual,
            ));
        }
        CaseResult::new(&case.id, &outcome.report, error, took, scores)
    }
}

/// The value under `key`: a key of the map, or a dotted path into it
/// (`details.issue`: the field `issue` of the key `details`).
fn lookup<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    if let Some(value) = map.get(key) {
        return Some(value);
    }
    let mut parts = key.split('.');
    let mut value = map.get(parts.next()?)?;
    for part in parts {
        value = match value {
            Value::Object(fields) => fields.get(part)?,
            Value::Array(items) => items.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(value).filter(|value| !value.is_null())
}

/// What the cases run so far cost.
#[derive(Default)]
struct Spent {
    cost_usd: f64,
    tokens: u64,
}

impl Spent {
    fn add(&mut self, result: &CaseResult) {
        self.cost_usd += result.cost_usd.unwrap_or(0.0) + result.judge_cost_usd.unwrap_or(0.0);
        self.tokens += result.tokens + result.judge_tokens;
    }
}

/// Whether a report's run completed.
fn completed(report: &ExecutionReport) -> bool {
    report.status == RunStatus::Completed
}

#[cfg(test)]
mod tests;
