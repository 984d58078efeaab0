//! The [`Runtime`]: models, dependencies, hooks and defaults shared by runs.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::llm::LanguageModel;
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
}

/// Retry defaults for steps that say nothing else.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryDefaults {
    pub(crate) retries: u32,
    pub(crate) base_delay: Duration,
    pub(crate) max_delay: Duration,
}

impl Default for RetryDefaults {
    fn default() -> Self {
        Self {
            retries: 0,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
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
            .finish()
    }
}

/// Builds a [`Runtime`]; each method adds one part.
#[derive(Default)]
pub struct RuntimeBuilder {
    model: Option<Arc<dyn LanguageModel>>,
    named_models: HashMap<String, Arc<dyn LanguageModel>>,
    deps: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
    validators: Vec<Arc<dyn Validate>>,
    retry: RetryDefaults,
    timeout: Option<Duration>,
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

    /// Backoff between retries: full jitter over `base · 2^(attempt-1)`, capped at `max`.
    #[must_use]
    pub fn backoff(mut self, base: Duration, max: Duration) -> Self {
        self.retry.base_delay = base;
        self.retry.max_delay = max;
        self
    }

    /// Per-attempt timeout for steps that do not say `timeout = ...` (default none).
    #[must_use]
    pub fn default_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
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
            }),
        }
    }
}
