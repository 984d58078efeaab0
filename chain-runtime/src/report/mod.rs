//! What a run did: per-step timings, attempts, tokens, cost and routes; the
//! [`Outcome`] a run returns; and [`html_timeline`], a page drawing runs.

mod attempt_log;
mod items;
mod outcome;
mod query;
mod text;
mod timeline;

pub use attempt_log::AttemptLog;
pub use items::{ItemRecord, ItemSummary};
pub use outcome::{RunOutcome, StepOutcome};
pub(crate) use timeline::escape;
pub use timeline::html_timeline;

use std::time::Duration;

use serde::Serialize;

use crate::error::ChainError;
use crate::ids::RunId;
use crate::llm::{Usage, add_cost};

/// The result of a run together with its [`ExecutionReport`].
#[derive(Debug)]
pub struct Outcome<O> {
    /// The chain's outputs (every key), or the error that stopped the run.
    pub result: Result<O, ChainError>,
    /// What happened during the run, success or failure (the same report the
    /// runtime's history keeps, shared rather than copied).
    pub report: std::sync::Arc<ExecutionReport>,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Every step finished and the output was produced.
    Completed,
    /// A step failed and the run stopped.
    Failed,
    /// The run's future was dropped before it ended.
    Cancelled,
    /// The run waits for input from outside (a human step): it ended here,
    /// holding no task, and an answer resumes it.
    Suspended,
}

/// Where a step got to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Its inputs never all arrived (the run stopped first).
    Pending,
    /// It was running when the run stopped (cancelled).
    Running,
    /// It produced its output.
    Succeeded,
    /// It failed (after its retries).
    Failed,
    /// It sits in a route arm that was not taken.
    Skipped,
    /// Its output was restored from a checkpoint (a resumed run): it did not run.
    Restored,
    /// Its output came from the step-result cache: it did not run.
    Cached,
    /// A human step waiting for its answer (the run suspended).
    Waiting,
}

/// How one attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// It produced an output that passed validation.
    Succeeded,
    /// The step returned an error.
    Failed,
    /// Validation rejected the output.
    Rejected,
    /// It ran past its timeout.
    TimedOut,
    /// It panicked.
    Panicked,
    /// It waits for an answer: a sub-chain it called suspended on a human
    /// step.
    Suspended,
}

/// What an [`AttemptRecord`] stands for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AttemptKind {
    /// The step's function ran: its first attempt, a retry, or a re-run
    /// after validation rejected its output (`reask = N`).
    #[default]
    Run,
    /// Inside a running attempt, a model reply was rejected and the model
    /// was asked again (the attempt went on): `cx.llm().json()` and
    /// `structured()` do this, up to the runtime's `reask_budget`.
    ModelReask(ReaskReason),
}

/// Why a model reply was asked for again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ReaskReason {
    /// It was not valid JSON for the expected type.
    InvalidJson,
    /// It was cut off at the token limit.
    CutOff,
}

impl std::fmt::Display for ReaskReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ReaskReason::InvalidJson => "not valid JSON for the expected type",
            ReaskReason::CutOff => "cut off at the token limit",
        })
    }
}

/// One tool call a model made from a step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolCallRecord {
    /// The tool.
    pub tool: String,
    /// The call's address within the step (`ordinal.turn.call`).
    pub call: String,
    /// Since the run started.
    pub started_at: Duration,
    /// Since the run started (equal to `started_at` when restored).
    pub finished_at: Duration,
    /// Bytes of arguments the model sent.
    pub argument_bytes: usize,
    /// What went back to the model instead of a result, if the call failed.
    pub error: Option<String>,
    /// Whether the result came from the step's record (it completed before).
    pub restored: bool,
    /// Tokens of the model turn that asked for this call (shared by the
    /// turn's calls; counted once into the step's usage).
    pub turn_usage: Usage,
    /// What that turn cost, with a price table.
    pub turn_cost_usd: Option<f64>,
}

/// One attempt of a step, or one re-asked model reply inside an attempt
/// (see [`AttemptKind`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttemptRecord {
    /// A run of the step, or a model re-ask inside one.
    pub kind: AttemptKind,
    /// The attempt, from 1 (counted per iteration).
    pub attempt: u32,
    /// The loop iteration it belongs to, from 1.
    pub iteration: u32,
    /// When it started, from the start of the run.
    pub started_at: Duration,
    /// When it ended, from the start of the run.
    pub finished_at: Duration,
    /// How it ended.
    pub outcome: AttemptOutcome,
}

/// A sub-chain run called by a step: when it started, in the calling run's
/// time, and its report.
#[derive(Debug, Clone, Serialize)]
pub struct SubRun {
    /// When it started, from the start of the calling run.
    pub started_at: Duration,
    /// What it did.
    pub report: std::sync::Arc<ExecutionReport>,
}

/// Which arm a route took.
#[derive(Debug, Clone, Serialize)]
pub struct RouteRecord {
    /// Index of the route in declaration order.
    pub index: usize,
    /// The key it branched on.
    pub key: &'static str,
    /// The pattern of the arm taken; `None` if the run never reached the route.
    pub arm: Option<&'static str>,
    /// When the decision was made, from the start of the run.
    pub decided_at: Option<Duration>,
}

/// One iteration of a loop step.
#[derive(Debug, Clone, Serialize)]
pub struct IterationRecord {
    /// The iteration, from 1.
    pub iteration: u32,
    /// When it started, from the start of the run.
    pub started_at: Duration,
    /// When it finished, from the start of the run.
    pub finished_at: Duration,
    /// Attempts it took.
    pub attempts: u32,
    /// Whether the `until` condition held on its output.
    pub converged: bool,
}

/// One step of a run.
#[derive(Debug, Clone, Serialize)]
pub struct StepRecord {
    /// Index in declaration order.
    pub index: usize,
    /// The step's name (its function).
    pub name: &'static str,
    /// The key it writes.
    pub key: &'static str,
    /// Where it got to.
    pub status: StepStatus,
    /// Attempts made, over all iterations (1 when it succeeded the first time).
    pub attempts: u32,
    /// When its last input arrived, from the start of the run.
    pub ready_at: Option<Duration>,
    /// When its first attempt started, from the start of the run.
    pub started_at: Option<Duration>,
    /// When it finished (or failed), from the start of the run.
    pub finished_at: Option<Duration>,
    /// Tokens used by its model calls and by the sub-chains it called, over
    /// all attempts.
    pub usage: Usage,
    /// Their cost in US dollars, if the runtime has prices for the models used.
    pub cost_usd: Option<f64>,
    /// Size of its output serialized as JSON.
    pub output_bytes: Option<u64>,
    /// Time its model calls waited for the runtime's concurrency or rate limits.
    pub limit_wait: Duration,
    /// Re-asks after a validation failure (`reask = N`).
    pub reasks: u32,
    /// Model replies rejected and asked for again inside its attempts
    /// (invalid JSON, cut off): each is also in `attempt_log`, as an
    /// [`AttemptKind::ModelReask`].
    pub model_reasks: u32,
    /// Tool calls the model made from this step, in the order they ended
    /// (restored ones included; each is also a
    /// [`ToolCalled`](crate::events::EventKind::ToolCalled) event).
    pub tool_calls: Vec<ToolCallRecord>,
    /// The fallback that produced the output, if one did: `default` or `model:<name>`.
    pub fallback: Option<String>,
    /// Model calls the step made (over all attempts; re-asks and tool-loop
    /// turns count; a sub-chain's calls are in its own report).
    pub model_calls: u32,
    /// Whether a test's stub answered instead of the step's function
    /// ([`testing`](crate::testing)).
    pub stubbed: bool,
    /// Every attempt, in order.
    pub attempt_log: AttemptLog,
    /// For a loop step, one record per iteration (empty for other steps).
    pub iterations: Vec<IterationRecord>,
    /// For a map step, one record per element, in list order (empty for
    /// other steps); [`StepRecord::item_summary`] sums them up.
    pub items: Vec<ItemRecord>,
    /// The runs of the sub-chains this step called, in call order, with
    /// their own reports (their tokens and cost are included in `usage` and
    /// `cost_usd`).
    pub sub_runs: Vec<SubRun>,
}

impl StepRecord {
    pub(crate) fn new(index: usize, name: &'static str, key: &'static str) -> Self {
        Self {
            index,
            name,
            key,
            status: StepStatus::Pending,
            attempts: 0,
            ready_at: None,
            started_at: None,
            finished_at: None,
            usage: Usage::default(),
            cost_usd: None,
            output_bytes: None,
            limit_wait: Duration::ZERO,
            reasks: 0,
            model_reasks: 0,
            tool_calls: Vec::new(),
            fallback: None,
            model_calls: 0,
            stubbed: false,
            attempt_log: AttemptLog::default(),
            iterations: Vec::new(),
            items: Vec::new(),
            sub_runs: Vec::new(),
        }
    }

    /// For a map step, its elements at a glance (counts and percentiles).
    pub fn item_summary(&self) -> Option<ItemSummary> {
        (!self.items.is_empty()).then(|| ItemSummary::of(&self.items))
    }

    /// Time from its first attempt's start to its end.
    pub fn duration(&self) -> Option<Duration> {
        Some(self.finished_at?.saturating_sub(self.started_at?))
    }

    /// Time spent queueing: from its last input arriving to its first attempt,
    /// plus what its model calls waited for the runtime's limits.
    pub fn queue_time(&self) -> Option<Duration> {
        Some(self.started_at?.saturating_sub(self.ready_at?) + self.limit_wait)
    }

    /// Whether this step and `other` were running at the same moment.
    pub fn overlaps(&self, other: &StepRecord) -> bool {
        match (
            self.started_at,
            self.finished_at,
            other.started_at,
            other.finished_at,
        ) {
            (Some(a0), Some(a1), Some(b0), Some(b1)) => a0 < b1 && b0 < a1,
            _ => false,
        }
    }
}

/// What a run did, returned with every run and kept in the runtime's history.
#[derive(Debug, Clone, Serialize)]
pub struct ExecutionReport {
    /// The run's id.
    pub run_id: RunId,
    /// The run of the chain that called this one as a step, for a sub-chain.
    pub parent_run_id: Option<RunId>,
    /// The chain that ran.
    pub chain: &'static str,
    /// How it ended.
    pub status: RunStatus,
    /// Wall time from start to end.
    pub duration: Duration,
    /// Steps that have their output (run, restored from a checkpoint, or cached).
    pub steps_completed: usize,
    /// Steps that failed.
    pub steps_failed: usize,
    /// Steps in route arms that were not taken.
    pub steps_skipped: usize,
    /// Tokens used by the whole run.
    pub usage: Usage,
    /// Their cost in US dollars, if known.
    pub cost_usd: Option<f64>,
    /// One record per step, in declaration order.
    pub steps: Vec<StepRecord>,
    /// One record per route, in declaration order.
    pub routes: Vec<RouteRecord>,
}

impl ExecutionReport {
    pub(crate) fn new(
        run_id: RunId,
        parent_run_id: Option<RunId>,
        chain: &'static str,
        status: RunStatus,
        duration: Duration,
        steps: Vec<StepRecord>,
        routes: Vec<RouteRecord>,
    ) -> Self {
        // One pass over the records: this runs at the end of every run.
        let (mut completed, mut failed, mut skipped) = (0, 0, 0);
        let mut usage = Usage::default();
        let mut cost_usd = None;
        for step in &steps {
            match step.status {
                StepStatus::Succeeded | StepStatus::Restored | StepStatus::Cached => completed += 1,
                StepStatus::Failed => failed += 1,
                StepStatus::Skipped => skipped += 1,
                StepStatus::Pending | StepStatus::Running | StepStatus::Waiting => {}
            }
            usage = usage + step.usage;
            cost_usd = add_cost(cost_usd, step.cost_usd);
        }
        Self {
            run_id,
            parent_run_id,
            chain,
            status,
            duration,
            steps_completed: completed,
            steps_failed: failed,
            steps_skipped: skipped,
            usage,
            cost_usd,
            steps,
            routes,
        }
    }

    /// Pairs of steps that ran at the same time, by name.
    ///
    /// It compares the steps' recorded start and end times, which are wall
    /// clock: two steps that finish in microseconds may or may not overlap
    /// on a busy machine. A test that asserts on it should run under
    /// paused time (`#[tokio::test(start_paused = true)]`, with model
    /// latencies from `ScriptedReply::after`), where the times are exact.
    pub fn overlapping(&self) -> Vec<(&'static str, &'static str)> {
        let mut pairs = Vec::new();
        for (i, a) in self.steps.iter().enumerate() {
            for b in &self.steps[i + 1..] {
                if a.overlaps(b) {
                    pairs.push((a.name, b.name));
                }
            }
        }
        pairs
    }

    /// Tokens used by the whole run.
    pub fn usage(&self) -> Usage {
        self.usage
    }

    /// The sum of the step durations (a map step's: the sum of its
    /// elements'): what a one-call-at-a-time runner would take.
    pub fn sequential_time(&self) -> Duration {
        self.steps
            .iter()
            .map(|step| {
                if step.items.is_empty() {
                    step.duration().unwrap_or_default()
                } else {
                    step.items.iter().filter_map(ItemRecord::duration).sum()
                }
            })
            .sum()
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self)
            .unwrap_or_else(|error| format!("{{\"error\": \"{error}\"}}"))
    }
}

impl AsRef<ExecutionReport> for ExecutionReport {
    fn as_ref(&self) -> &ExecutionReport {
        self
    }
}
