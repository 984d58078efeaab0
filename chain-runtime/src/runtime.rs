//! The [`Runtime`]: models, dependencies, hooks and defaults shared by runs.

use std::any::{Any, TypeId};
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::checkpoint::CheckpointStore;
use crate::events::Observer;
use crate::ids::RunId;
use crate::llm::LanguageModel;
use crate::pricing::PriceTable;
use crate::report::ExecutionReport;
use crate::validate::Validate;

/// What every run of every chain shares: the models, the user's dependencies
/// (a database pool, an HTTP client, a knowledge base), validation hooks and
/// default policies. Cheap to clone; build it once with [`Runtime::builder`].
#[derive(Clone)]
pub struct Runtime {
    pub(crate) inner: Arc<RuntimeInner>,
}

pub(crate) struct RuntimeInner {
    pub(crate) model: Option<Arc<dyn LanguageModel>>,
    pub(crate) named_models: HashMap<String, Arc<dyn LanguageModel>>,
    pub(crate) deps: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
    pub(crate) validators: Vec<Arc<dyn Validate>>,
    pub(crate) retry: RetryDefaults,
    pub(crate) timeout: Option<Duration>,
    pub(crate) observers: Vec<Arc<dyn Observer>>,
    pub(crate) prices: Option<PriceTable>,
    pub(crate) measure_outputs: bool,
    pub(crate) checkpoints: Option<Arc<dyn CheckpointStore>>,
    pub(crate) reask_budget: u32,
    pub(crate) call_limits: Option<crate::limits::CallLimits>,
    pub(crate) run_budget: Option<crate::limits::RunBudget>,
    pub(crate) run_deadline: Option<Duration>,
    history: Mutex<VecDeque<Arc<ExecutionReport>>>,
    history_capacity: usize,
}

/// Retry defaults for steps that say nothing else.
#[derive(Clone)]
pub(crate) struct RetryDefaults {
    pub(crate) retries: u32,
    pub(crate) policy: Arc<dyn crate::retry::RetryPolicy>,
}

impl fmt::Debug for RetryDefaults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryDefaults")
            .field("retries", &self.retries)
            .finish_non_exhaustive()
    }
}

impl Default for RetryDefaults {
    fn default() -> Self {
        Self {
            retries: 0,
            policy: Arc::new(crate::retry::Backoff::default()),
        }
    }
}

impl Runtime {
    /// Starts building a runtime.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder::default()
    }

    /// The default model, if any.
    pub fn model(&self) -> Option<&Arc<dyn LanguageModel>> {
        self.inner.model.as_ref()
    }

    /// The model registered under `name`, if any.
    pub fn named_model(&self, name: &str) -> Option<&Arc<dyn LanguageModel>> {
        self.inner.named_models.get(name)
    }

    /// The report of a recent run, by id (the runtime keeps the last
    /// [`RuntimeBuilder::history`] runs, 100 by default).
    pub fn report(&self, run_id: RunId) -> Option<Arc<ExecutionReport>> {
        self.inner
            .history
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|report| report.run_id == run_id)
            .cloned()
    }

    /// The reports of recent runs, oldest first.
    pub fn recent_reports(&self) -> Vec<Arc<ExecutionReport>> {
        self.inner
            .history
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }

    /// Keeps a finished run's report in the history.
    pub(crate) fn remember(&self, report: &Arc<ExecutionReport>) {
        if self.inner.history_capacity == 0 {
            return;
        }
        let mut history = self
            .inner
            .history
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if history.len() == self.inner.history_capacity {
            history.pop_front();
        }
        history.push_back(Arc::clone(report));
    }

    /// The price table, if one was set.
    pub fn prices(&self) -> Option<&PriceTable> {
        self.inner.prices.as_ref()
    }

    /// The dependency of type `T`, if one was added.
    pub fn dependency<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.inner
            .deps
            .get(&TypeId::of::<T>())
            .and_then(|dep| dep.downcast_ref::<T>())
    }
}

impl Default for Runtime {
    /// A runtime with no model and no hooks (steps that call no model still run).
    fn default() -> Self {
        Runtime::builder().build()
    }
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&String> = self.inner.named_models.keys().collect();
        names.sort();
        f.debug_struct("Runtime")
            .field("model", &self.inner.model.as_ref().map(|m| m.name()))
            .field("named_models", &names)
            .field("dependencies", &self.inner.deps.len())
            .field("validators", &self.inner.validators.len())
            .field("retry", &self.inner.retry)
            .field("timeout", &self.inner.timeout)
            .field("observers", &self.inner.observers.len())
            .field("history_capacity", &self.inner.history_capacity)
            .finish()
    }
}

/// Builds a [`Runtime`]; each method adds one part.
pub struct RuntimeBuilder {
    model: Option<Arc<dyn LanguageModel>>,
    named_models: HashMap<String, Arc<dyn LanguageModel>>,
    deps: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
    validators: Vec<Arc<dyn Validate>>,
    retry: RetryDefaults,
    timeout: Option<Duration>,
    observers: Vec<Arc<dyn Observer>>,
    prices: Option<PriceTable>,
    measure_outputs: bool,
    history_capacity: usize,
    checkpoints: Option<Arc<dyn CheckpointStore>>,
    reask_budget: u32,
    max_concurrent_calls: Option<usize>,
    rate: Option<(u32, Duration)>,
    run_budget: Option<crate::limits::RunBudget>,
    run_deadline: Option<Duration>,
}

impl Default for RuntimeBuilder {
    fn default() -> Self {
        Self {
            model: None,
            named_models: HashMap::new(),
            deps: HashMap::new(),
            validators: Vec::new(),
            retry: RetryDefaults::default(),
            timeout: None,
            observers: Vec::new(),
            prices: None,
            measure_outputs: true,
            history_capacity: 100,
            checkpoints: None,
            reask_budget: 2,
            max_concurrent_calls: None,
            rate: None,
            run_budget: None,
            run_deadline: None,
        }
    }
}

impl fmt::Debug for RuntimeBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuntimeBuilder").finish_non_exhaustive()
    }
}

impl RuntimeBuilder {
    /// The model steps use by default (`cx.llm()`).
    #[must_use]
    pub fn model(mut self, model: impl LanguageModel) -> Self {
        self.model = Some(Arc::new(model));
        self
    }

    /// The default model, already shared.
    #[must_use]
    pub fn shared_model(mut self, model: Arc<dyn LanguageModel>) -> Self {
        self.model = Some(model);
        self
    }

    /// A model steps can pick by name (`cx.llm_named("fast")`).
    #[must_use]
    pub fn named_model(mut self, name: impl Into<String>, model: impl LanguageModel) -> Self {
        self.named_models.insert(name.into(), Arc::new(model));
        self
    }

    /// A value steps can borrow by type (`cx.dep::<T>()`); one per type.
    #[must_use]
    pub fn dependency<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.deps.insert(TypeId::of::<T>(), Arc::new(value));
        self
    }

    /// A hook that sees every step's output, in every chain.
    #[must_use]
    pub fn validator(mut self, hook: impl Validate) -> Self {
        self.validators.push(Arc::new(hook));
        self
    }

    /// Retries for steps that do not say `retry = N` (default 0).
    #[must_use]
    pub fn default_retries(mut self, retries: u32) -> Self {
        self.retry.retries = retries;
        self
    }

    /// Backoff between retries: full jitter over `base · 2^(attempt-1)`, each
    /// delay capped at `max`, at most a minute of backoff per step (see [`Backoff`](crate::Backoff)).
    #[must_use]
    pub fn backoff(mut self, base: Duration, max: Duration) -> Self {
        self.retry.policy = Arc::new(crate::retry::Backoff {
            base,
            max_delay: max,
            ..crate::retry::Backoff::default()
        });
        self
    }

    /// The policy deciding retry delays (default [`Backoff`](crate::Backoff)).
    #[must_use]
    pub fn retry_policy(mut self, policy: impl crate::retry::RetryPolicy) -> Self {
        self.retry.policy = Arc::new(policy);
        self
    }

    /// Per-attempt timeout for steps that do not say `timeout = ...` (default none).
    #[must_use]
    pub fn default_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// An observer that sees every event of every run (see [`Observer`]).
    #[must_use]
    pub fn observer(mut self, observer: impl Observer) -> Self {
        self.observers.push(Arc::new(observer));
        self
    }

    /// Prices per model, so reports and events carry the cost of each step.
    #[must_use]
    pub fn prices(mut self, prices: PriceTable) -> Self {
        self.prices = Some(prices);
        self
    }

    /// How many recent run reports to keep for [`Runtime::report`] (default
    /// 100; 0 keeps none).
    #[must_use]
    pub fn history(mut self, capacity: usize) -> Self {
        self.history_capacity = capacity;
        self
    }

    /// Whether to measure each output's JSON size for reports and events
    /// (default on; it costs one serialization pass per step).
    #[must_use]
    pub fn measure_output_size(mut self, measure: bool) -> Self {
        self.measure_outputs = measure;
        self
    }

    /// Where runs save each step's output as it completes, so a failed or
    /// crashed run can be resumed (`<chain>::resume`) without running finished
    /// steps again; also holds the step-result cache (`cache = 1h` in `step!`).
    #[must_use]
    pub fn checkpoints(mut self, store: impl CheckpointStore) -> Self {
        self.checkpoints = Some(Arc::new(store));
        self
    }

    /// At most `n` model calls in flight at once, over every run of this
    /// runtime (a call waits for a slot; the wait shows as queue time).
    #[must_use]
    pub fn max_concurrent_model_calls(mut self, n: usize) -> Self {
        self.max_concurrent_calls = Some(n.max(1));
        self
    }

    /// At most `calls` model calls per `interval`, over every run of this runtime.
    #[must_use]
    pub fn rate_limit(mut self, calls: u32, interval: Duration) -> Self {
        self.rate = Some((calls, interval));
        self
    }

    /// A cap on each run's tokens and/or cost (see [`RunBudget`](crate::RunBudget)).
    #[must_use]
    pub fn run_budget(mut self, budget: crate::limits::RunBudget) -> Self {
        self.run_budget = Some(budget);
        self
    }

    /// The longest a run may take; past it the run stops with
    /// [`FailureKind::DeadlineExceeded`](crate::FailureKind::DeadlineExceeded)
    /// and its steps in flight are cancelled.
    #[must_use]
    pub fn run_deadline(mut self, deadline: Duration) -> Self {
        self.run_deadline = Some(deadline);
        self
    }

    /// How many times `cx.llm().json(...)` shows the model its invalid JSON
    /// and asks again before failing (default 2).
    #[must_use]
    pub fn reask_budget(mut self, times: u32) -> Self {
        self.reask_budget = times;
        self
    }

    /// The model named by the environment (see [`model_from_env`](crate::model_from_env)),
    /// or `fallback` when `PROMPT_CHAIN_MODEL` is not set; says which on stderr.
    #[cfg(feature = "providers")]
    pub fn model_from_env_or(
        self,
        fallback: impl LanguageModel,
    ) -> Result<Self, crate::ModelConfigError> {
        match crate::model_from_env()? {
            Some(model) => {
                eprintln!(
                    "prompt-chain: using {} (from PROMPT_CHAIN_MODEL)",
                    model.name()
                );
                Ok(self.shared_model(model))
            }
            None => {
                eprintln!(
                    "prompt-chain: PROMPT_CHAIN_MODEL is not set; using the offline model `{}`",
                    fallback.name()
                );
                Ok(self.model(fallback))
            }
        }
    }

    /// Finishes the runtime.
    pub fn build(self) -> Runtime {
        Runtime {
            inner: Arc::new(RuntimeInner {
                model: self.model,
                named_models: self.named_models,
                deps: self.deps,
                validators: self.validators,
                retry: self.retry,
                timeout: self.timeout,
                observers: self.observers,
                prices: self.prices,
                measure_outputs: self.measure_outputs,
                checkpoints: self.checkpoints,
                reask_budget: self.reask_budget,
                call_limits: (self.max_concurrent_calls.is_some() || self.rate.is_some()).then(
                    || crate::limits::CallLimits {
                        concurrent: self.max_concurrent_calls.map(tokio::sync::Semaphore::new),
                        rate: self.rate.map(|(calls, interval)| {
                            crate::limits::RateLimiter::new(calls, interval)
                        }),
                    },
                ),
                run_budget: self.run_budget,
                run_deadline: self.run_deadline,
                history: Mutex::new(VecDeque::with_capacity(self.history_capacity.min(1024))),
                history_capacity: self.history_capacity,
            }),
        }
    }
}
