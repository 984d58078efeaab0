//! The [`Runtime`]: models, dependencies, policies, limits, durability and
//! observation shared by every run, and the [`RuntimeBuilder`] that stacks them.

mod builder;
mod parts;

use std::fmt;
use std::sync::Arc;

pub use builder::RuntimeBuilder;
pub(crate) use parts::{Checkpointing, Dependencies, Limits, Models, Observation, Policies};

use crate::ids::RunId;
use crate::llm::{LanguageModel, PriceTable};
use crate::report::ExecutionReport;

/// What every run of every chain shares: the models, the user's dependencies
/// (a database pool, an HTTP client, a knowledge base), validation hooks and
/// default policies. Cheap to clone; build it once with [`Runtime::builder`].
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<RuntimeInner>,
    /// This handle's durability mode (a clone may use another).
    durability: crate::store::Durability,
}

#[derive(Default)]
struct RuntimeInner {
    models: Models,
    deps: Dependencies,
    policies: Policies,
    limits: Limits,
    durability: Checkpointing,
    observation: Observation,
    /// Steps replaced for tests, by (chain, key).
    stubs: Vec<crate::testing::Stub>,
}

impl Runtime {
    /// Starts building a runtime.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder::default()
    }

    /// The default model, if any.
    pub fn model(&self) -> Option<&Arc<dyn LanguageModel>> {
        self.inner.models.default_model()
    }

    /// The model registered under `name`, if any.
    pub fn named_model(&self, name: &str) -> Option<&Arc<dyn LanguageModel>> {
        self.inner.models.named(name)
    }

    /// The report of a recent run, by id (the runtime keeps the last
    /// [`RuntimeBuilder::history`] runs, 100 by default).
    pub fn report(&self, run_id: RunId) -> Option<Arc<ExecutionReport>> {
        self.inner.observation.report(run_id)
    }

    /// The reports of recent runs, oldest first.
    pub fn recent_reports(&self) -> Vec<Arc<ExecutionReport>> {
        self.inner.observation.recent()
    }

    /// The price table, if one was set.
    pub fn prices(&self) -> Option<&PriceTable> {
        self.inner.observation.prices()
    }

    /// The checkpoint store runs are journaled in, if any: list its runs
    /// (`rt.store()?.list_runs(&RunQuery::all())`) to find what to resume.
    pub fn store(&self) -> Option<&Arc<dyn crate::store::CheckpointStore>> {
        self.inner.durability.store()
    }

    /// This runtime for runs in another durability `mode`: the same models,
    /// store and everything else, shared; only how promptly the runs started
    /// through it (and their sub-chains) write their outputs differs.
    ///
    /// ```
    /// # use prompt_chain_runtime as prompt_chain;
    /// use prompt_chain::{Runtime, store::{Durability, MemoryStore}};
    /// let rt = Runtime::builder().checkpoints(MemoryStore::new()).build();
    /// let quick = rt.with_durability(Durability::Exit);
    /// assert_eq!(quick.durability_mode(), Durability::Exit);
    /// assert_eq!(rt.durability_mode(), Durability::Sync);
    /// ```
    #[must_use]
    pub fn with_durability(&self, mode: crate::store::Durability) -> Runtime {
        Runtime {
            inner: Arc::clone(&self.inner),
            durability: mode,
        }
    }

    /// How promptly runs started through this handle write their outputs.
    pub fn durability_mode(&self) -> crate::store::Durability {
        self.durability
    }

    /// Every question suspended runs in this runtime's store wait for
    /// (human steps), oldest first: found again after a restart, since a
    /// suspended run lives only in the store.
    pub async fn waiting(&self) -> Result<Vec<crate::human::Waiting>, crate::store::StoreError> {
        crate::human::waiting(self, None).await
    }

    /// The dependency of type `T`, if one was added.
    pub fn dependency<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.inner.deps.get::<T>()
    }

    /// Retries, timeouts, re-asks and validation hooks.
    pub(crate) fn policies(&self) -> &Policies {
        &self.inner.policies
    }

    /// Call limits, the run budget and the run deadline.
    pub(crate) fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// The checkpoint store, if runs are durable.
    pub(crate) fn checkpointing(&self) -> &Checkpointing {
        &self.inner.durability
    }

    /// Whether a test gave this runtime stubs.
    #[inline]
    pub(crate) fn has_stubs(&self) -> bool {
        !self.inner.stubs.is_empty()
    }

    /// The stub replacing step `key` of chain `chain`, if a test gave one.
    #[inline]
    pub(crate) fn stub(&self, chain: &str, key: &str) -> Option<&crate::testing::Stub> {
        if self.inner.stubs.is_empty() {
            return None;
        }
        self.inner
            .stubs
            .iter()
            .find(|stub| stub.chain == chain && stub.key == key)
    }

    /// Observers, prices, output sizes and the report history.
    pub(crate) fn observation(&self) -> &Observation {
        &self.inner.observation
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
        let inner = &self.inner;
        f.debug_struct("Runtime")
            .field("model", &inner.models.default_model().map(|m| m.name()))
            .field("named_models", &inner.models.names())
            .field("dependencies", &inner.deps.by_type.len())
            .field("policies", &inner.policies)
            .field("durable", &inner.durability.store().is_some())
            .field("durability", &self.durability)
            .field("observers", &inner.observation.observers().len())
            .field("history_capacity", &inner.observation.history_capacity)
            .finish()
    }
}
