//! A run's lifecycle, from the generated code's side: start (new or resumed),
//! then finish, fail or be dropped (cancelled); the report and the run's last
//! event are made here.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::join::RunDeadline;
use crate::context::{Parent, RunShared, StepCx};
use crate::definition::{ChainDef, StepDef};
use crate::error::{ChainError, FailureKind};
use crate::events::{EventKind, EventSink};
use crate::ids::RunId;
use crate::report::{ExecutionReport, Outcome, RunStatus, SubRun};
use crate::runtime::Runtime;
use crate::store::StoredStatus;

/// How the generated code starts a run: as a sub-chain of a step, with an
/// event stream, or resuming a stored run. Not a public API.
#[doc(hidden)]
#[derive(Debug, Default)]
pub struct RunOptions<'a> {
    /// The step running this chain as a sub-chain.
    pub parent: Option<&'a StepCx>,
    /// Where to send this run's events, besides the runtime's observers.
    pub events: Option<EventSink>,
    /// Resume this run from the runtime's checkpoint store.
    pub resume: Option<RunId>,
    /// Start this run under this id, or attach to it if the store has it.
    pub run_id: Option<RunId>,
}

/// How a run is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Start {
    /// A new run under a fresh id: nobody else can hold it.
    Fresh,
    /// A run under the caller's id: started, or attached to if it exists.
    Named,
    /// An existing run, resumed.
    Resume,
}

/// One run of a chain, from the generated code's side. Dropping it before
/// [`RunCx::finish`] or [`RunCx::fail`] means the run was cancelled.
#[doc(hidden)]
pub struct RunCx {
    pub(super) shared: Arc<RunShared>,
    /// This start's owner token, while it holds the run's lease.
    pub(super) owner: Option<Arc<str>>,
    /// Whether the run's end is written to the store (not when it only
    /// attached to a completed run).
    pub(super) record_end: bool,
    ended: bool,
}

impl std::fmt::Debug for RunCx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunCx")
            .field("run_id", &self.shared.id)
            .field("chain", &self.shared.chain.name)
            .finish()
    }
}

impl RunCx {
    /// The run described by `options`, not yet recorded anywhere.
    pub(super) fn new(
        runtime: &Runtime,
        chain: &'static ChainDef,
        options: RunOptions<'_>,
    ) -> Self {
        let parent = options.parent.map(|cx| Parent {
            run: Arc::clone(&cx.run),
            index: cx.index,
            iteration: cx.iteration,
            ordinal: cx.run.next_call(cx.index, cx.iteration, cx.attempt),
        });
        // A sub-chain's run id is derived from its address (the calling
        // step, its iteration and the call's ordinal), so resuming the parent
        // finds each call's run again, and two calls are two runs.
        let id = match (options.resume.or(options.run_id), &parent) {
            (Some(id), _) => id,
            (None, Some(parent)) => sub_run_id(parent),
            (None, None) => RunId::new(),
        };
        let shared = RunShared::new(runtime.clone(), chain, id, parent.as_ref(), options.events);
        Self {
            shared: Arc::new(shared),
            owner: None,
            record_end: true,
            ended: false,
        }
    }

    /// Starts a run of `chain`: a new one, or, with a checkpoint store, a
    /// resumed one (`options.resume`, or a sub-chain whose step ran before).
    /// A store failure or a changed definition ends the run at once.
    pub async fn start<I: Serialize, O>(
        runtime: &Runtime,
        chain: &'static ChainDef,
        options: RunOptions<'_>,
        input: &I,
    ) -> Result<Self, Outcome<O>> {
        let start = match (options.resume, options.run_id) {
            (Some(_), _) => Start::Resume,
            (None, Some(_)) => Start::Named,
            (None, None) => Start::Fresh,
        };
        let mut run = Self::new(runtime, chain, options);
        run.shared.emit(|| EventKind::RunStarted);
        match run.open(start, input).await {
            Ok(()) => Ok(run),
            Err(kind) => Err(run.fail_now(ChainError::run_failed(chain.name, kind))),
        }
    }

    /// Ends the run with `error` before any step ran.
    pub(super) fn fail_now<O>(mut self, error: ChainError) -> Outcome<O> {
        Outcome {
            report: self.end_run(RunStatus::Failed),
            result: Err(error),
        }
    }

    /// What the top-level join watches besides the steps: the run's
    /// deadline, if the runtime sets one, and the renewal of the run's lease.
    pub fn deadline(&self) -> Option<RunDeadline> {
        let after = self.shared.runtime.limits().run_deadline();
        let keeper = self.lease_keeper();
        if after.is_none() && keeper.is_none() {
            return None;
        }
        Some(RunDeadline {
            sleep: after
                .map(|after| Box::pin(tokio::time::sleep(after.saturating_sub(self.now())))),
            chain: self.shared.chain.name,
            after: after.unwrap_or_default(),
            lease: keeper,
        })
    }

    /// Time since the run started.
    pub(super) fn now(&self) -> Duration {
        self.shared.elapsed()
    }

    /// The definition of step `index`.
    pub(super) fn step_def(&self, index: usize) -> Result<&'static StepDef, ChainError> {
        self.shared.chain.steps.get(index).ok_or_else(|| {
            ChainError::run_failed(
                self.shared.chain.name,
                FailureKind::Internal {
                    message: format!("no step #{index} in the chain's definition"),
                },
            )
        })
    }

    /// An error of step `index` with `kind`, on no particular attempt.
    pub(super) fn step_error(
        &self,
        def: &'static StepDef,
        index: usize,
        kind: FailureKind,
    ) -> ChainError {
        ChainError::step_failed(self.shared.chain.name, def.name, def.key, index, 0, kind)
    }

    /// Builds the report, records it in the runtime's history and sends the
    /// run's last event.
    pub(super) fn end_run(&mut self, status: RunStatus) -> Arc<ExecutionReport> {
        self.ended = true;
        // The run is over: its records move into the report. (A step that
        // spawned a task holding its `StepCx` can still count tokens, into
        // nothing.)
        let steps = std::mem::take(&mut *self.shared.records());
        let routes = std::mem::take(&mut *self.shared.routes());
        let report = Arc::new(ExecutionReport::new(
            self.shared.id,
            self.shared.parent,
            self.shared.chain.name,
            status,
            self.now(),
            steps,
            routes,
        ));
        tracing::info!(
            parent: &self.shared.span,
            status = ?status,
            duration_ms = report.duration.as_millis() as u64,
            input_tokens = report.usage.input_tokens,
            output_tokens = report.usage.output_tokens,
            "run finished"
        );
        self.shared.emit(|| EventKind::RunFinished {
            status,
            duration: report.duration,
            usage: report.usage,
            cost_usd: report.cost_usd,
        });
        match &self.shared.parent_link {
            // A sub-chain's tokens and cost belong to the step that called
            // it, and its report hangs under that step (not in the history).
            Some(parent) => {
                let started_at = parent.run.elapsed().saturating_sub(report.duration);
                parent.run.record(parent.index, |record| {
                    crate::context::add_usage(
                        record,
                        parent.iteration,
                        report.usage,
                        report.cost_usd,
                    );
                    record.sub_runs.push(SubRun {
                        started_at,
                        report: Arc::clone(&report),
                    });
                });
            }
            None => self.shared.runtime.observation().remember(&report),
        }
        report
    }

    /// Ends a successful run.
    pub async fn finish<O>(mut self, output: O) -> Outcome<O> {
        if let Err(error) = self.store_status(StoredStatus::Completed, None).await {
            // A deferred durability mode could not write the run's outputs:
            // its result would not be durable, so it is not returned.
            let error =
                ChainError::run_failed(self.shared.chain.name, FailureKind::Checkpoint(error));
            return Outcome {
                report: self.end_run(RunStatus::Failed),
                result: Err(error),
            };
        }
        Outcome {
            report: self.end_run(RunStatus::Completed),
            result: Ok(output),
        }
    }

    /// Ends a run whose join succeeded but left a key without a value: a broken
    /// invariant, reported as an internal error rather than a panic.
    pub async fn missing<O>(self, key: &'static str) -> Outcome<O> {
        let error = ChainError::run_failed(
            self.shared.chain.name,
            FailureKind::Internal {
                message: format!("key `{key}` has no value after every step finished"),
            },
        );
        self.fail(error).await
    }

    /// Ends a failed run (attach its context first with
    /// [`with_completed`](super::with_completed)).
    pub async fn fail<O>(mut self, error: ChainError) -> Outcome<O> {
        if error.is_suspension() {
            // A sub-chain's run is recorded suspended too: resuming its root
            // re-runs the calling step, which finds it and its answers.
            return self.suspend(error).await;
        }
        if self.shared.parent_link.is_none() {
            // Model calls of the steps the failure cancelled are still
            // running; the provider bills them, so the report waits for
            // their tokens (for a grace period; sub-chains count into it),
            // unless the run failed on a time limit, which it must keep.
            let timed = matches!(
                error.root_cause().kind(),
                FailureKind::TimedOut { .. }
                    | FailureKind::StepDeadline { .. }
                    | FailureKind::DeadlineExceeded { .. }
            );
            let limits = self.shared.runtime.limits();
            let mut grace = limits.in_flight_grace();
            if let Some(deadline) = limits.run_deadline() {
                grace = grace.min(deadline.saturating_sub(self.now()));
            }
            if !timed && !grace.is_zero() {
                self.shared.spent.settle(grace).await;
            }
        }
        // A deferred write's failure is logged; the run's own error stays.
        let _ = self.store_status(StoredStatus::Failed, Some(&error)).await;
        Outcome {
            report: self.end_run(RunStatus::Failed),
            result: Err(error),
        }
    }
}

/// The run id of the sub-chain call at `parent`'s address.
fn sub_run_id(parent: &Parent) -> RunId {
    let key = parent
        .run
        .chain
        .steps
        .get(parent.index)
        .map_or("", |step| step.key);
    let address = format!(
        "{}/{key}/{}/{}",
        parent.run.id, parent.iteration, parent.ordinal
    );
    RunId::from_u64(crate::ids::splitmix64(crate::ids::fnv1a(
        address.as_bytes(),
        0,
    )))
}

impl Drop for RunCx {
    fn drop(&mut self) {
        if !self.ended {
            self.record_cancelled();
            let _ = self.end_run(RunStatus::Cancelled);
        }
    }
}
