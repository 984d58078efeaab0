//! The runtime's configuration, grouped by concern: models, step policies,
//! limits, durability and observation. Each part is read through methods;
//! no other module reaches into its fields.

use std::any::{Any, TypeId};
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::definition::StepOptions;
use crate::events::Observer;
use crate::limits::{CallLimits, RunBudget};
use crate::llm::{LanguageModel, PriceTable};
use crate::report::ExecutionReport;
use crate::retry::{Backoff, RetryPolicy};
use crate::store::CheckpointStore;
use crate::validate::Validate;

/// The default model and the named ones.
#[derive(Default)]
pub(crate) struct Models {
    pub(super) default: Option<Arc<dyn LanguageModel>>,
    pub(super) named: HashMap<String, Arc<dyn LanguageModel>>,
}

impl Models {
    /// The default model, if any.
    pub(crate) fn default_model(&self) -> Option<&Arc<dyn LanguageModel>> {
        self.default.as_ref()
    }

    /// The model registered under `name`, if any.
    pub(crate) fn named(&self, name: &str) -> Option<&Arc<dyn LanguageModel>> {
        self.named.get(name)
    }

    /// The names of the named models, sorted.
    pub(super) fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.named.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }
}

/// The user's dependencies, one per type.
#[derive(Default)]
pub(crate) struct Dependencies {
    pub(super) by_type: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
}

impl Dependencies {
    /// The dependency of type `T`, if one was added.
    pub(crate) fn get<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.by_type
            .get(&TypeId::of::<T>())
            .and_then(|dep| dep.downcast_ref::<T>())
    }
}

/// What decides how a step's attempts go: retries, timeouts, re-asks and
/// the runtime-wide validation hooks.
pub(crate) struct Policies {
    pub(super) retries: u32,
    pub(super) retry_policy: Arc<dyn RetryPolicy>,
    pub(super) timeout: Option<Duration>,
    pub(super) reask_budget: u32,
    pub(super) validators: Vec<Arc<dyn Validate>>,
}

impl Default for Policies {
    fn default() -> Self {
        Self {
            retries: 0,
            retry_policy: Arc::new(Backoff::default()),
            timeout: None,
            reask_budget: 2,
            validators: Vec::new(),
        }
    }
}

impl Policies {
    /// How many retries a step with `options` gets.
    pub(crate) fn retries(&self, options: &StepOptions) -> u32 {
        options.retries.unwrap_or(self.retries)
    }

    /// The per-attempt timeout of a step with `options`.
    pub(crate) fn timeout(&self, options: &StepOptions) -> Option<Duration> {
        options.timeout.or(self.timeout)
    }

    /// The policy deciding retry delays.
    pub(crate) fn retry_policy(&self) -> &dyn RetryPolicy {
        &*self.retry_policy
    }

    /// How often a model's unparseable JSON is shown to it and asked again.
    pub(crate) fn reask_budget(&self) -> u32 {
        self.reask_budget
    }

    /// The hooks that see every step's output.
    pub(crate) fn validators(&self) -> &[Arc<dyn Validate>] {
        &self.validators
    }
}

impl fmt::Debug for Policies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policies")
            .field("retries", &self.retries)
            .field("timeout", &self.timeout)
            .field("reask_budget", &self.reask_budget)
            .field("validators", &self.validators.len())
            .finish_non_exhaustive()
    }
}

/// Caps shared by every run (model calls) or applied to each run (budget,
/// deadline).
#[derive(Debug, Default)]
pub(crate) struct Limits {
    pub(super) calls: Option<CallLimits>,
    pub(super) run_budget: Option<RunBudget>,
    pub(super) run_deadline: Option<Duration>,
    pub(super) in_flight_grace: Option<Duration>,
}

impl Limits {
    /// The concurrency and rate limits on model calls, if any.
    pub(crate) fn calls(&self) -> Option<&CallLimits> {
        self.calls.as_ref()
    }

    /// Each run's token and cost cap, if any.
    pub(crate) fn run_budget(&self) -> Option<RunBudget> {
        self.run_budget
    }

    /// How long a failed run waits for its model calls still in flight.
    pub(crate) fn in_flight_grace(&self) -> Duration {
        self.in_flight_grace.unwrap_or(Duration::from_secs(30))
    }

    /// The longest a run may take, if capped.
    pub(crate) fn run_deadline(&self) -> Option<Duration> {
        self.run_deadline
    }
}

/// Where runs journal their units (none: runs are not durable), and how
/// long a run's owner holds it without renewing.
pub(crate) struct Checkpointing {
    pub(super) store: Option<Arc<dyn CheckpointStore>>,
    pub(super) lease: Duration,
}

impl Default for Checkpointing {
    fn default() -> Self {
        Self {
            store: None,
            lease: Duration::from_secs(30),
        }
    }
}

impl Checkpointing {
    /// The store, if runs are durable.
    pub(crate) fn store(&self) -> Option<&Arc<dyn CheckpointStore>> {
        self.store.as_ref()
    }

    /// How long a run's lease lasts; it is renewed at a third of that.
    pub(crate) fn lease(&self) -> Duration {
        self.lease
    }
}

/// Who watches runs: observers, prices, output sizes, the report history.
pub(crate) struct Observation {
    pub(super) observers: Vec<Arc<dyn Observer>>,
    pub(super) prices: Option<PriceTable>,
    pub(super) measure_outputs: bool,
    pub(super) stream_tokens: bool,
    pub(super) history: Mutex<VecDeque<Arc<ExecutionReport>>>,
    pub(super) history_capacity: usize,
}

impl Default for Observation {
    fn default() -> Self {
        Self {
            observers: Vec::new(),
            prices: None,
            measure_outputs: true,
            stream_tokens: false,
            history: Mutex::new(VecDeque::new()),
            history_capacity: 100,
        }
    }
}

impl Observation {
    /// The runtime-wide observers.
    pub(crate) fn observers(&self) -> &[Arc<dyn Observer>] {
        &self.observers
    }

    /// The price table, if one was set.
    pub(crate) fn prices(&self) -> Option<&PriceTable> {
        self.prices.as_ref()
    }

    /// Whether each output's JSON size is measured.
    pub(crate) fn measure_outputs(&self) -> bool {
        self.measure_outputs
    }

    /// Whether model calls send their text as it arrives (`TokenDelta`,
    /// `PartialOutput` events).
    pub(crate) fn stream_tokens(&self) -> bool {
        self.stream_tokens
    }

    /// The report of a recent run, by id.
    pub(crate) fn report(&self, run_id: crate::ids::RunId) -> Option<Arc<ExecutionReport>> {
        self.history()
            .iter()
            .find(|report| report.run_id == run_id)
            .cloned()
    }

    /// The reports of recent runs, oldest first.
    pub(crate) fn recent(&self) -> Vec<Arc<ExecutionReport>> {
        self.history().iter().cloned().collect()
    }

    /// Keeps a finished run's report in the history.
    pub(crate) fn remember(&self, report: &Arc<ExecutionReport>) {
        if self.history_capacity == 0 {
            return;
        }
        let mut history = self.history();
        if history.len() == self.history_capacity {
            history.pop_front();
        }
        history.push_back(Arc::clone(report));
    }

    fn history(&self) -> std::sync::MutexGuard<'_, VecDeque<Arc<ExecutionReport>>> {
        self.history.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
