//! [`StepCx`]: what a step knows about its run and what it can reach.

use std::any::type_name;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::time::Instant;

use crate::definition::ChainDef;
use crate::error::StepError;
use crate::ids::RunId;
use crate::llm::{Llm, Usage};
use crate::report::{RouteRecord, StepRecord};
use crate::runtime::Runtime;

/// The state of one run, shared by its steps.
pub(crate) struct RunShared {
    pub(crate) id: RunId,
    pub(crate) runtime: Runtime,
    pub(crate) chain: &'static ChainDef,
    pub(crate) parent: Option<RunId>,
    pub(crate) started: Instant,
    pub(crate) records: Mutex<Vec<StepRecord>>,
    pub(crate) routes: Mutex<Vec<RouteRecord>>,
}

impl RunShared {
    pub(crate) fn new(runtime: Runtime, chain: &'static ChainDef, parent: Option<RunId>) -> Self {
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
        Self {
            id: RunId::new(),
            runtime,
            chain,
            parent,
            started: Instant::now(),
            records: Mutex::new(records),
            routes: Mutex::new(routes),
        }
    }

    /// Updates the record of step `index` (ignored for an unknown index).
    pub(crate) fn record(&self, index: usize, update: impl FnOnce(&mut StepRecord)) {
        let mut records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(record) = records.get_mut(index) {
            update(record);
        }
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
}

static DETACHED: ChainDef = ChainDef {
    name: "(detached)",
    inputs: &[],
    steps: &[],
    routes: &[],
    output: "",
};

impl StepCx {
    /// A context for calling a step on its own, outside any chain (unit tests,
    /// one-off calls): a fresh run id, attempt 1.
    pub fn detached(runtime: &Runtime, step: &'static str) -> Self {
        let run = RunShared::new(runtime.clone(), &DETACHED, None);
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

    /// The runtime the run belongs to.
    pub fn runtime(&self) -> &Runtime {
        &self.run.runtime
    }

    /// The default model, as this step.
    pub fn llm(&self) -> Llm<'_> {
        Llm::new(self, self.run.runtime.inner.model.as_ref(), None)
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

    pub(crate) fn add_usage(&self, usage: Usage) {
        self.run
            .record(self.index, |record| record.usage = record.usage + usage);
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
