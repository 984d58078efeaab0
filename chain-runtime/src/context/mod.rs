//! [`StepCx`]: what a step knows about its run and what it can reach; the
//! state a run shares with its steps; the metered model handle [`Llm`].

mod activity;
mod detach;
mod journal;
mod llm;
mod run_state;
mod tool_loop;

use std::any::type_name;
use std::sync::Arc;

pub use llm::Llm;
pub(crate) use run_state::{Parent, RunShared, add_usage};

use crate::definition::ChainDef;
use crate::error::StepError;
use crate::ids::RunId;

use crate::report::StepRecord;
use crate::runtime::Runtime;

/// The context a step runs in: its run, its name, its attempt, the models and
/// the dependencies of the [`Runtime`].
///
/// Every step function takes `cx: &StepCx` first. It is cheap to clone and
/// `'static`, so a step may move a clone into a spawned task.
#[derive(Clone)]
pub struct StepCx {
    pub(crate) run: Arc<RunShared>,
    pub(crate) index: usize,
    pub(crate) name: &'static str,
    pub(crate) key: &'static str,
    pub(crate) attempt: u32,
    pub(crate) iteration: u32,
    /// Why the previous output was rejected, on a re-ask.
    pub(crate) feedback: Option<Arc<str>>,
    /// The model that answers instead of the default one (a fallback).
    pub(crate) model_override: Option<&'static str>,
}

static DETACHED: ChainDef = ChainDef {
    name: "(detached)",
    inputs: &[],
    steps: &[],
    routes: &[],
    output: "",
    fingerprint: 0,
};

impl StepCx {
    /// A context for calling a step on its own, outside any chain (unit tests,
    /// one-off calls): a fresh run id, attempt 1.
    pub fn detached(runtime: &Runtime, step: &'static str) -> Self {
        let run = RunShared::new(runtime.clone(), &DETACHED, RunId::new(), None, None);
        run.records().push(StepRecord::new(0, step, step));
        Self {
            run: Arc::new(run),
            index: 0,
            name: step,
            key: step,
            attempt: 1,
            iteration: 1,
            feedback: None,
            model_override: None,
        }
    }

    /// The run this step belongs to.
    pub fn run_id(&self) -> RunId {
        self.run.id
    }

    /// The run of the chain that called this chain as a step, if any.
    pub fn parent_run_id(&self) -> Option<RunId> {
        self.run.parent
    }

    /// The chain being run.
    pub fn chain(&self) -> &'static str {
        self.run.chain.name
    }

    /// This step's name (its function's name).
    pub fn step(&self) -> &'static str {
        self.name
    }

    /// The key this step's output is stored under.
    pub fn key(&self) -> &'static str {
        self.key
    }

    /// This step's index in declaration order.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The current attempt, from 1.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// For a map step (`f(each list)`), the position of the element this
    /// run of the step handles, from 0; `None` for other steps.
    pub fn item(&self) -> Option<usize> {
        let step = self.run.chain.steps.get(self.index)?;
        step.options
            .each
            .map(|_| self.iteration.saturating_sub(1) as usize)
    }

    /// The current iteration of a loop step, from 1 (always 1 for other
    /// steps; for a map step, the element's position from 1: each element
    /// is its own unit of work).
    pub fn iteration(&self) -> u32 {
        self.iteration
    }

    /// A key naming this unit of work, for providers and services that
    /// deduplicate requests: `run-…/key/iteration`, derived from the unit's
    /// address (a sub-chain's run id comes from its caller's address and the
    /// call's ordinal). Every attempt of the unit sends the same key, so a
    /// retried or resumed side effect is applied once by a service that
    /// honours it.
    pub fn idempotency_key(&self) -> String {
        format!("{}/{}/{}", self.run.id, self.key, self.iteration)
    }

    /// The runtime the run belongs to.
    pub fn runtime(&self) -> &Runtime {
        &self.run.runtime
    }

    /// On a re-ask (`reask = N` in `step!`), what the validator said about the
    /// previous output: put it in the prompt so the model can fix it. `None` on
    /// a first attempt and on transport retries.
    pub fn feedback(&self) -> Option<&str> {
        self.feedback.as_deref()
    }

    /// The default model, as this step (or the step's fallback model, when the
    /// step is being answered by its `fallback_model`).
    pub fn llm(&self) -> Llm<'_> {
        match self.model_override {
            Some(name) => Llm::new(self, self.run.runtime.named_model(name), Some(name)),
            None => Llm::new(self, self.run.runtime.model(), None),
        }
    }

    /// The model registered under `name`, as this step.
    pub fn llm_named<'a>(&'a self, name: &'a str) -> Llm<'a> {
        Llm::new(self, self.run.runtime.named_model(name), Some(name))
    }

    /// A dependency added with [`RuntimeBuilder::dependency`](crate::RuntimeBuilder::dependency).
    pub fn dep<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.run.runtime.dependency::<T>()
    }

    /// Like [`StepCx::dep`], but a missing dependency is a (permanent) step error
    /// saying how to add it.
    pub fn require<T: Send + Sync + 'static>(&self) -> Result<&T, StepError> {
        self.dep::<T>().ok_or_else(|| {
            StepError::msg(format!(
                "step `{}` needs a dependency of type `{}`; add it with `Runtime::builder().dependency(...)`",
                self.name,
                type_name::<T>()
            ))
            .permanent()
        })
    }

    /// Publishes a progress report of this step to the run's listeners
    /// (a [`Progress`](crate::events::EventKind::Progress) event): "3 of 10
    /// documents read". Free when nobody listens.
    pub fn progress(&self, message: impl Into<String>) {
        self.run.emit(|| crate::events::EventKind::Progress {
            step: self.name,
            index: self.index,
            message: message.into(),
        });
    }

    /// Where a model call of this step sends its text as it arrives, when
    /// the runtime streams tokens and someone listens: `TokenDelta` events,
    /// and with `json`, `PartialOutput` events with the JSON so far (sent
    /// when a piece may have completed a value, and only when it changed).
    pub(crate) fn delta_sink(&self, json: bool) -> Option<crate::llm::DeltaSink> {
        if !self.run.runtime.observation().stream_tokens() || !self.run.observed() {
            return None;
        }
        // Weak: a request can outlive its run (a scripted model logs its
        // requests), and must not keep the run's event stream open.
        let run = Arc::downgrade(&self.run);
        let (step, index) = (self.name, self.index);
        let so_far = Arc::new(std::sync::Mutex::new((
            String::new(),
            serde_json::Value::Null,
        )));
        let restart = Arc::clone(&so_far);
        let sink = crate::llm::DeltaSink::new(move |piece| {
            let Some(run) = run.upgrade() else {
                return;
            };
            run.emit(|| crate::events::EventKind::TokenDelta {
                step,
                index,
                text: piece.to_owned(),
            });
            if !json {
                return;
            }
            let Ok(mut so_far) = so_far.lock() else {
                return;
            };
            so_far.0.push_str(piece);
            if !piece.contains([',', '}', ']', '"', ' ']) {
                return;
            }
            let Some(value) = crate::llm::partial_json(&so_far.0) else {
                return;
            };
            if value != so_far.1 {
                so_far.1 = value.clone();
                run.emit(|| crate::events::EventKind::PartialOutput {
                    step,
                    index,
                    json: value,
                });
            }
        });
        Some(sink.with_restart(move || {
            if let Ok(mut so_far) = restart.lock() {
                *so_far = (String::new(), serde_json::Value::Null);
            }
        }))
    }

    /// Adds time spent waiting for a concurrency or rate limit.
    pub(crate) fn add_limit_wait(&self, waited: std::time::Duration) {
        self.run
            .record(self.index, |record| record.limit_wait += waited);
    }

    /// Logs a model reply rejected and asked for again inside this attempt
    /// (`started_at`: when the rejected call began), and tells listeners.
    pub(crate) fn model_reasked(
        &self,
        started_at: std::time::Duration,
        reask: u32,
        reason: crate::report::ReaskReason,
        error: &str,
    ) {
        let finished_at = self.run.elapsed();
        self.run.record(self.index, |record| {
            record.model_reasks += 1;
            record.attempt_log.push(crate::report::AttemptRecord {
                kind: crate::report::AttemptKind::ModelReask(reason),
                attempt: self.attempt,
                iteration: self.iteration,
                started_at,
                finished_at,
                outcome: crate::report::AttemptOutcome::Rejected,
            });
        });
        self.run.emit(|| crate::events::EventKind::ModelReasked {
            step: self.name,
            index: self.index,
            attempt: self.attempt,
            reask,
            reason,
            error: error.to_owned(),
        });
    }
}

impl std::fmt::Debug for StepCx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepCx")
            .field("run_id", &self.run.id)
            .field("chain", &self.run.chain.name)
            .field("step", &self.name)
            .field("attempt", &self.attempt)
            .field("iteration", &self.iteration)
            .finish()
    }
}
