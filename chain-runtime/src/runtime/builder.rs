//! [`RuntimeBuilder`]: each method stacks one part of a [`Runtime`].

use std::any::{Any, TypeId};
use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Runtime, RuntimeInner};
use crate::events::Observer;
use crate::limits::{CallLimits, RateLimiter, RunBudget};
use crate::llm::{LanguageModel, PriceTable};
use crate::retry::{Backoff, RetryPolicy};
use crate::store::{CheckpointStore, Durability};
use crate::validate::Validate;

/// Builds a [`Runtime`]; each method adds one part.
#[derive(Default)]
pub struct RuntimeBuilder {
    parts: RuntimeInner,
    max_concurrent_calls: Option<usize>,
    rate: Option<(u32, Duration)>,
    durability: Durability,
}

impl fmt::Debug for RuntimeBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuntimeBuilder").finish_non_exhaustive()
    }
}

impl RuntimeBuilder {
    /// The model steps use by default (`cx.llm()`).
    #[must_use]
    pub fn model(self, model: impl LanguageModel) -> Self {
        self.shared_model(Arc::new(model))
    }

    /// The default model, already shared.
    #[must_use]
    pub fn shared_model(mut self, model: Arc<dyn LanguageModel>) -> Self {
        self.parts.models.default = Some(model);
        self
    }

    /// A model steps can pick by name (`cx.llm_named("fast")`).
    #[must_use]
    pub fn named_model(mut self, name: impl Into<String>, model: impl LanguageModel) -> Self {
        self.parts.models.named.insert(name.into(), Arc::new(model));
        self
    }

    /// A value steps can borrow by type (`cx.dep::<T>()`); one per type.
    #[must_use]
    pub fn dependency<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        let value: Arc<dyn Any + Send + Sync> = Arc::new(value);
        self.parts.deps.by_type.insert(TypeId::of::<T>(), value);
        self
    }

    /// Replaces one step of one chain with a stub, for a test: made by the
    /// chain's `stub` module (`my_chain::stub::classify(Category::Billing)`);
    /// the other steps run as written. A later stub for the same step wins.
    /// See [`testing`](crate::testing).
    #[must_use]
    pub fn stub(mut self, stub: crate::testing::Stub) -> Self {
        self.parts
            .stubs
            .retain(|old| (old.chain, old.key) != (stub.chain, stub.key));
        self.parts.stubs.push(stub);
        self
    }

    /// A hook that sees every step's output, in every chain.
    #[must_use]
    pub fn validator(mut self, hook: impl Validate) -> Self {
        self.parts.policies.validators.push(Arc::new(hook));
        self
    }

    /// Retries for steps that do not say `retry = N` (default 0).
    #[must_use]
    pub fn default_retries(mut self, retries: u32) -> Self {
        self.parts.policies.retries = retries;
        self
    }

    /// Backoff between retries: full jitter over `base · 2^(attempt-1)`, each
    /// delay capped at `max`, at most a minute of backoff per step (see [`Backoff`]).
    #[must_use]
    pub fn backoff(self, base: Duration, max: Duration) -> Self {
        self.retry_policy(Backoff {
            base,
            max_delay: max,
            ..Backoff::default()
        })
    }

    /// The policy deciding retry delays (default [`Backoff`]).
    #[must_use]
    pub fn retry_policy(mut self, policy: impl RetryPolicy) -> Self {
        self.parts.policies.retry_policy = Arc::new(policy);
        self
    }

    /// Per-attempt timeout for steps that do not say `timeout = ...` (default none).
    #[must_use]
    pub fn default_timeout(mut self, timeout: Duration) -> Self {
        self.parts.policies.timeout = Some(timeout);
        self
    }

    /// How many times `cx.llm().json(...)` shows the model its invalid JSON
    /// and asks again before failing (default 2).
    #[must_use]
    pub fn reask_budget(mut self, times: u32) -> Self {
        self.parts.policies.reask_budget = times;
        self
    }

    /// An observer that sees every event of every run (see [`Observer`]).
    #[must_use]
    pub fn observer(mut self, observer: impl Observer) -> Self {
        self.parts.observation.observers.push(Arc::new(observer));
        self
    }

    /// Prices per model, so reports and events carry the cost of each step.
    #[must_use]
    pub fn prices(mut self, prices: PriceTable) -> Self {
        self.parts.observation.prices = Some(prices);
        self
    }

    /// How many recent run reports to keep for [`Runtime::report`] (default
    /// 100; 0 keeps none).
    #[must_use]
    pub fn history(mut self, capacity: usize) -> Self {
        self.parts.observation.history_capacity = capacity;
        self
    }

    /// Whether to measure each output's JSON size for reports and events
    /// (default on; it costs one serialization pass per step, none when
    /// the output is checkpointed: the saved bytes are measured).
    #[must_use]
    pub fn measure_output_size(mut self, measure: bool) -> Self {
        self.parts.observation.measure_outputs = measure;
        self
    }

    /// Sends each model call's text to the run's listeners as it arrives
    /// (default off): a [`TokenDelta`](crate::events::EventKind::TokenDelta)
    /// event per piece, and for `structured`/`json` calls a
    /// [`PartialOutput`](crate::events::EventKind::PartialOutput) with the
    /// JSON parsed so far (read it typed with
    /// [`Partial`](crate::events::Partial)). A streaming provider sends many
    /// pieces; a plain one, the whole reply at once.
    #[must_use]
    pub fn stream_tokens(mut self, stream: bool) -> Self {
        self.parts.observation.stream_tokens = stream;
        self
    }

    /// Where runs save each step's output as it completes, so a failed or
    /// crashed run can be resumed (`<chain>::resume`) without running finished
    /// steps again; also holds the step-result cache (`cache = 1h` in `step!`).
    #[must_use]
    pub fn checkpoints(mut self, store: impl CheckpointStore) -> Self {
        self.parts.durability.store = Some(Arc::new(store));
        self
    }

    /// How long the owner of a durable run holds it without renewing
    /// (default 30 s; renewed every third of that while the run is alive).
    /// Another process starting or resuming the same run waits until the
    /// run ends or the lease runs out (the owner crashed).
    #[must_use]
    pub fn lease(mut self, lease: Duration) -> Self {
        self.parts.durability.lease = lease.max(Duration::from_millis(30));
        self
    }

    /// How promptly runs write their outputs to the store, and so what a
    /// crash can lose: [`Durability::Sync`] (the default: every output is
    /// durable before another step reads it), [`Durability::Batched`] or
    /// [`Durability::Exit`]. Some runs can use another mode with
    /// [`Runtime::with_durability`].
    #[must_use]
    pub fn durability(mut self, mode: Durability) -> Self {
        self.durability = mode;
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

    /// A cap on each run's tokens and/or cost (see [`RunBudget`]).
    #[must_use]
    pub fn run_budget(mut self, budget: RunBudget) -> Self {
        self.parts.limits.run_budget = Some(budget);
        self
    }

    /// The longest a run may take; past it the run stops with
    /// [`FailureKind::DeadlineExceeded`](crate::FailureKind::DeadlineExceeded)
    /// and its steps in flight are cancelled.
    #[must_use]
    pub fn run_deadline(mut self, deadline: Duration) -> Self {
        self.parts.limits.run_deadline = Some(deadline);
        self
    }

    /// How long a failed run waits for model calls still in flight, in
    /// the steps its failure cancelled, so the tokens their providers
    /// report reach the report and the budget (the provider bills them
    /// either way). Default 30 s; never past the run's deadline, and not at
    /// all when the run failed on a timeout or deadline (it keeps its time
    /// limit). Zero does not wait: such tokens then count only toward the
    /// budget. A run dropped by its caller does not wait either.
    #[must_use]
    pub fn in_flight_grace(mut self, grace: Duration) -> Self {
        self.parts.limits.in_flight_grace = Some(grace);
        self
    }

    /// The model named by the environment (see
    /// [`model_from_env`](crate::llm::model_from_env)), or `fallback` when
    /// `PROMPT_CHAIN_MODEL` is not set; says which on stderr.
    #[cfg(feature = "providers")]
    pub fn model_from_env_or(
        self,
        fallback: impl LanguageModel,
    ) -> Result<Self, crate::llm::ModelConfigError> {
        match crate::llm::model_from_env()? {
            Some(model) => {
                let cassette = std::env::var("PROMPT_CHAIN_CASSETTE").unwrap_or_default();
                let recording = crate::llm::recording_requested();
                match (cassette.trim().is_empty(), recording) {
                    (true, _) => eprintln!(
                        "prompt-chain: using {} (from PROMPT_CHAIN_MODEL)",
                        model.name()
                    ),
                    (false, true) => eprintln!(
                        "prompt-chain: using {} (from PROMPT_CHAIN_MODEL), recording its calls into {cassette}",
                        model.name()
                    ),
                    (false, false) => eprintln!(
                        "prompt-chain: replaying {}'s calls from {cassette} (offline)",
                        model.name()
                    ),
                }
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
    pub fn build(mut self) -> Runtime {
        if self.max_concurrent_calls.is_some() || self.rate.is_some() {
            self.parts.limits.calls = Some(CallLimits {
                concurrent: self
                    .max_concurrent_calls
                    .map(|n| Arc::new(tokio::sync::Semaphore::new(n))),
                rate: self
                    .rate
                    .map(|(calls, interval)| RateLimiter::new(calls, interval)),
            });
        }
        let capacity = self.parts.observation.history_capacity.min(1024);
        self.parts.observation.history = Mutex::new(VecDeque::with_capacity(capacity));
        Runtime {
            inner: Arc::new(self.parts),
            durability: self.durability,
        }
    }
}
