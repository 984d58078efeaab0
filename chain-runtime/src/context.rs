//! [`StepCx`]: what a step knows about its run and what it can reach; and the
//! state a run shares with its steps.

use std::any::type_name;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::definition::ChainDef;
use crate::error::StepError;
use crate::events::{Event, EventKind, EventSink};
use crate::ids::{RunId, unix_ms};
use crate::llm::{Llm, Usage};
use crate::pricing::add_cost;
use crate::report::{RouteRecord, StepRecord};
use crate::runtime::Runtime;

/// How the generated code starts a run: as a sub-chain of a step, with an
/// event stream. Not a public API.
#[doc(hidden)]
#[derive(Debug, Default)]
pub struct RunOptions<'a> {
    /// The step running this chain as a sub-chain.
    pub parent: Option<&'a StepCx>,
    /// Where to send this run's events, besides the runtime's observers.
    pub events: Option<EventSink>,
    /// Resume this run from the runtime's checkpoint store.
    pub resume: Option<RunId>,
}

/// The state of one run, shared by its steps.
pub(crate) struct RunShared {
    pub(crate) id: RunId,
    pub(crate) runtime: Runtime,
    pub(crate) chain: &'static ChainDef,
    pub(crate) parent: Option<RunId>,
    parent_path: Option<Arc<str>>,
    path: OnceLock<Arc<str>>,
    pub(crate) started: Instant,
    started_unix_ms: u64,
    pub(crate) records: Mutex<Vec<StepRecord>>,
    pub(crate) routes: Mutex<Vec<RouteRecord>>,
    sink: Option<EventSink>,
    /// Whether anyone listens: events are only built when true.
    observed: bool,
    pub(crate) span: tracing::Span,
    /// Step outputs read back from the checkpoint store, by (key, iteration).
    pub(crate) restored: Mutex<HashMap<(String, u32), Vec<u8>>>,
    /// Tokens and cost spent, shared with sub-chains (for the run budget).
    pub(crate) spent: Arc<crate::limits::Spent>,
}

impl RunShared {
    pub(crate) fn new(runtime: Runtime, chain: &'static ChainDef, options: RunOptions<'_>) -> Self {
        let records = chain
            .steps
            .iter()
            .enumerate()
            .map(|(index, step)| StepRecord::new(index, step.name, step.key))
            .collect();
        let routes = chain
            .routes
            .iter()
            .enumerate()
            .map(|(index, route)| RouteRecord {
                index,
                key: route.key,
                arm: None,
                decided_at: None,
            })
            .collect();
        let parent = options.parent.map(|cx| cx.run.id);
        let spent = options
            .parent
            .map_or_else(Default::default, |cx| Arc::clone(&cx.run.spent));
        let parent_path = options.parent.map(|cx| cx.run.path());
        let sink = options
            .events
            .or_else(|| options.parent.and_then(|cx| cx.run.sink.clone()));
        let observed = sink.is_some() || !runtime.inner.observers.is_empty();
        // A sub-chain's run id is derived from the step running it, so
        // resuming the parent resumes the sub-chain where it stopped.
        let id = match (options.resume, options.parent) {
            (Some(id), _) => id,
            (None, Some(cx)) => RunId::from_u64(crate::ids::splitmix64(
                cx.run.id.as_u64() ^ ((cx.index as u64) << 40) ^ (u64::from(cx.iteration) << 20),
            )),
            (None, None) => RunId::new(),
        };
        let span = tracing::info_span!(
            "prompt_chain.run",
            run_id = %id,
            chain = chain.name,
            parent_run_id = parent.map(tracing::field::display),
        );
        Self {
            id,
            runtime,
            chain,
            parent,
            parent_path,
            path: OnceLock::new(),
            started: Instant::now(),
            started_unix_ms: unix_ms(),
            records: Mutex::new(records),
            routes: Mutex::new(routes),
            sink,
            observed,
            span,
            restored: Mutex::new(HashMap::new()),
            spent,
        }
    }

    /// The chain path: `support_router › technical_support` for a sub-chain.
    pub(crate) fn path(&self) -> Arc<str> {
        Arc::clone(self.path.get_or_init(|| match &self.parent_path {
            Some(parent) => Arc::from(format!("{parent} › {}", self.chain.name)),
            None => Arc::from(self.chain.name),
        }))
    }

    /// Time since the run started.
    pub(crate) fn elapsed(&self) -> Duration {
        Instant::now().saturating_duration_since(self.started)
    }

    /// Whether events are wanted at all.
    pub(crate) fn observed(&self) -> bool {
        self.observed
    }

    /// Sends an event to the runtime's observers and the run's stream; the
    /// event is only built when someone listens.
    pub(crate) fn emit(&self, kind: impl FnOnce() -> EventKind) {
        if !self.observed {
            return;
        }
        let elapsed = self.elapsed();
        let event = Event {
            run_id: self.id,
            parent_run_id: self.parent,
            chain_path: self.path(),
            elapsed,
            unix_ms: self.started_unix_ms + elapsed.as_millis() as u64,
            kind: kind(),
        };
        for observer in &self.runtime.inner.observers {
            observer.on_event(&event);
        }
        if let Some(sink) = &self.sink {
            sink.send(&event);
        }
    }

    /// Updates the record of step `index` (ignored for an unknown index).
    pub(crate) fn record<R>(
        &self,
        index: usize,
        update: impl FnOnce(&mut StepRecord) -> R,
    ) -> Option<R> {
        let mut records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        records.get_mut(index).map(update)
    }
}

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
        let run = RunShared::new(runtime.clone(), &DETACHED, RunOptions::default());
        if let Ok(mut records) = run.records.lock() {
            records.push(StepRecord::new(0, step, step));
        }
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

    /// The current iteration of a loop step, from 1 (always 1 for other steps).
    pub fn iteration(&self) -> u32 {
        self.iteration
    }

    /// A key naming this attempt of this step in this run, for providers and
    /// services that deduplicate requests (`run-…/key/iteration/attempt`).
    pub fn idempotency_key(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.run.id, self.key, self.iteration, self.attempt
        )
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
            None => Llm::new(self, self.run.runtime.inner.model.as_ref(), None),
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

    /// Adds time spent waiting for a concurrency or rate limit.
    pub(crate) fn add_limit_wait(&self, waited: std::time::Duration) {
        self.run
            .record(self.index, |record| record.limit_wait += waited);
    }

    /// Counts a model call's tokens (and their cost, when priced) into this step.
    pub(crate) fn add_usage(&self, usage: Usage, cost_usd: Option<f64>) {
        self.run.record(self.index, |record| {
            record.usage = record.usage + usage;
            record.cost_usd = add_cost(record.cost_usd, cost_usd);
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
