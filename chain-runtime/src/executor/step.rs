//! Running one step to its output: the light path (no store, no fallback, no
//! deadline) and the full one (restore, cache, deadline, fallbacks, save).

use std::future::Future;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::attempt::{Attempted, Attempts};
use super::cache::CacheEntry;
use super::policy::{Fallback, fallback};
use super::run::RunCx;
use crate::context::StepCx;
use crate::definition::StepDef;
use crate::error::{ChainError, FailureKind, StepResult};
use crate::events::EventKind;
use crate::llm::Usage;
use crate::report::{StepRecord, StepStatus};

/// What `StepFinished` says, read from the step's record.
pub(super) struct Finished {
    step: &'static str,
    attempts: u32,
    duration: Duration,
    output_bytes: Option<u64>,
    usage: Usage,
    cost_usd: Option<f64>,
}

impl Finished {
    pub(super) fn of(record: &StepRecord) -> Self {
        Self {
            step: record.name,
            attempts: record.attempts,
            duration: record.duration().unwrap_or_default(),
            output_bytes: record.output_bytes,
            usage: record.usage,
            cost_usd: record.cost_usd,
        }
    }

    pub(super) fn event(self, index: usize) -> EventKind {
        EventKind::StepFinished {
            step: self.step,
            index,
            attempts: self.attempts,
            duration: self.duration,
            output_bytes: self.output_bytes,
            usage: self.usage,
            cost_usd: self.cost_usd,
        }
    }
}

impl RunCx {
    /// Runs step `index` to completion: every attempt calls `call` with a fresh
    /// [`StepCx`]; the output must pass `validate` and the runtime's hooks.
    pub async fn step<T, F, Fut, V, D>(
        &self,
        index: usize,
        inputs: Option<u64>,
        call: F,
        validate: V,
        fallback: Option<D>,
    ) -> Result<T, ChainError>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
        D: FnOnce() -> T,
        F: FnMut(StepCx) -> Fut,
        Fut: Future<Output = StepResult<T>>,
        V: Fn(&T) -> Result<(), String>,
    {
        // Executing until it returns (for suspension: see `join_steps`).
        let _active = self.shared.activity.begin();
        let def = self.step_def(index)?;
        // Tests only: a stub answers instead of the step (`testing`).
        if self.shared.runtime.has_stubs()
            && let Some(answer) = self.stub_for::<T>(index)?
        {
            let call = move |cx: StepCx| std::future::ready(answer(&cx));
            return self
                .boxed_full(def, index, inputs, call, validate, fallback)
                .await;
        }
        // Checkpoints, caches, fallbacks and deadlines take the full path,
        // boxed: their state would otherwise enlarge every step of every run.
        let light = self.store().is_none()
            && fallback.is_none()
            && def.options.fallback_model.is_none()
            && def.options.deadline.is_none();
        if !light {
            return Box::pin(self.step_full(def, index, inputs, call, validate, fallback)).await;
        }
        let measure = self.shared.runtime.observation().measure_outputs();
        let what = Attempts {
            def,
            index,
            iteration: 1,
            model_override: None,
            finishes: true,
            measure,
            started_at: None,
            element: false,
        };
        match self.attempts(what, call, &validate).await {
            Ok(done) => Ok(done.value),
            Err(error) => {
                self.end_by(index, &error);
                Err(error)
            }
        }
    }

    /// [`RunCx::step_full`], boxed and kept out of line (the stubbed path:
    /// its state would otherwise enlarge every step's future).
    #[cold]
    #[inline(never)]
    fn boxed_full<'a, T, F, Fut, V, D>(
        &'a self,
        def: &'static StepDef,
        index: usize,
        inputs: Option<u64>,
        call: F,
        validate: V,
        fallback: Option<D>,
    ) -> std::pin::Pin<Box<impl Future<Output = Result<T, ChainError>> + 'a>>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
        D: FnOnce() -> T + 'a,
        F: FnMut(StepCx) -> Fut + 'a,
        Fut: Future<Output = StepResult<T>> + 'a,
        V: Fn(&T) -> Result<(), String> + 'a,
    {
        Box::pin(self.step_full(def, index, inputs, call, validate, fallback))
    }

    /// [`RunCx::step`] with restore, cache, save, deadline and fallbacks.
    async fn step_full<T, F, Fut, V, D>(
        &self,
        def: &'static StepDef,
        index: usize,
        inputs: Option<u64>,
        mut call: F,
        validate: V,
        default: Option<D>,
    ) -> Result<T, ChainError>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
        D: FnOnce() -> T,
        F: FnMut(StepCx) -> Fut,
        Fut: Future<Output = StepResult<T>>,
        V: Fn(&T) -> Result<(), String>,
    {
        if let Some(value) = self.restore::<T>(def, index, 0)? {
            self.skip_run(index, StepStatus::Restored);
            return Ok(value);
        }
        let cache = self.cache_for(def, inputs);
        if let Some(cache) = &cache
            && let Some(value) = self.cache_get::<T>(def, index, cache).await?
        {
            // A record another owner made first wins over the cached value.
            let value = self.save(def, index, 0, &value).await?.unwrap_or(value);
            self.skip_run(index, StepStatus::Cached);
            return Ok(value);
        }
        let measure = self.shared.runtime.observation().measure_outputs();
        // With a store the saved bytes are measured, not the value.
        let what = Attempts {
            def,
            index,
            iteration: 1,
            model_override: None,
            finishes: false,
            measure: measure && self.store().is_none(),
            started_at: None,
            element: false,
        };
        let (attempted, fell_back) = self.settle(what, &mut call, &validate, default).await;
        if let Some(fallback) = fell_back {
            self.fell_back(index, def, fallback);
        }
        let done = match attempted {
            Ok(done) => done,
            Err(error) => {
                self.end_by(index, &error);
                return Err(error);
            }
        };
        let (value, size) = match self
            .persist(def, index, 0, done.value, cache.as_ref())
            .await
        {
            Ok(kept) => kept,
            Err(error) => {
                self.end(index, false, None);
                return Err(error);
            }
        };
        if measure && let Some(size) = size {
            self.output_size(index, size);
        }
        self.end(index, true, Some(done.finished_at));
        Ok(value)
    }

    /// The attempts of one unit of step `what.def` under its deadline, then
    /// its fallbacks in the policy's order once the retries are spent.
    /// Returns how it went and, if a fallback answered, which one
    /// (`model:<name>` or `default`).
    pub(super) async fn settle<T, F, Fut, V, D>(
        &self,
        what: Attempts,
        call: &mut F,
        validate: &V,
        mut default: Option<D>,
    ) -> (Result<Attempted<T>, ChainError>, Option<String>)
    where
        T: Serialize + Send + Sync + 'static,
        D: FnOnce() -> T,
        F: FnMut(StepCx) -> Fut,
        Fut: Future<Output = StepResult<T>>,
        V: Fn(&T) -> Result<(), String>,
    {
        let Attempts { def, index, .. } = what;
        // Each arm builds its future in place: binding a step's whole state to
        // a variable first would copy it once per step.
        let mut attempted = match def.options.deadline {
            // Boxed: most steps have no deadline, and the timer would make
            // every step's future (so every run in flight) larger.
            Some(after) => Box::pin(tokio::time::timeout(
                after,
                self.attempts(what, &mut *call, validate),
            ))
            .await
            .unwrap_or_else(|_| {
                Err(self.step_error(def, index, FailureKind::StepDeadline { after }))
            }),
            None => self.attempts(what, &mut *call, validate).await,
        };
        // Retries spent: the step's fallbacks, in the policy's order.
        let mut model_tried = false;
        let mut fell_back = None;
        // Attempts spent before a fallback answered.
        let mut spent = 0;
        while let Err(error) = &attempted {
            spent += error.attempt();
            match fallback(
                error.kind(),
                def.options.fallback_model,
                model_tried,
                default.is_some(),
            ) {
                Fallback::Model(model) => {
                    model_tried = true;
                    let what = Attempts {
                        model_override: Some(model),
                        started_at: None,
                        ..what
                    };
                    attempted = self.attempts(what, &mut *call, validate).await;
                    if let Ok(done) = &mut attempted {
                        done.attempts += spent;
                        fell_back = Some(format!("model:{model}"));
                    }
                }
                Fallback::Default => {
                    let Some(default) = default.take() else { break };
                    fell_back = Some("default".to_owned());
                    attempted = Ok(Attempted {
                        value: default(),
                        attempts: spent,
                        finished_at: self.now(),
                    });
                }
                Fallback::None => break,
            }
        }
        (attempted, fell_back)
    }

    /// Saves `value` as unit `unit` of step `index` and puts it in `cache`,
    /// serialized once; returns the value everyone reads (a record another
    /// owner made first wins) and its size in bytes. Without a store, the
    /// value as it is.
    pub(super) async fn persist<T>(
        &self,
        def: &'static StepDef,
        index: usize,
        unit: u32,
        value: T,
        cache: Option<&CacheEntry>,
    ) -> Result<(T, Option<u64>), ChainError>
    where
        T: Serialize + DeserializeOwned,
    {
        if self.store().is_none() {
            return Ok((value, None));
        }
        let bytes = self.encode(def, index, &value)?;
        let value = match self.save_bytes(def, index, unit, &bytes).await? {
            Some(winner) => self.decode(def, index, &winner)?,
            None => value,
        };
        if let Some(cache) = cache {
            self.cache_put(def, cache, &bytes).await;
        }
        Ok((value, Some(bytes.len() as u64)))
    }

    /// Records the size of step `index`'s output.
    pub(super) fn output_size(&self, index: usize, bytes: u64) {
        self.shared
            .record(index, |record| record.output_bytes = Some(bytes));
    }

    /// Marks step `index` finished, at `finished` (now if `None`), and sends
    /// `StepFinished` for a success.
    pub(super) fn end(&self, index: usize, succeeded: bool, finished: Option<Duration>) {
        let finished = finished.unwrap_or_else(|| self.now());
        let summary = self.shared.record(index, |record| {
            record.finished_at = Some(finished);
            record.status = if succeeded {
                StepStatus::Succeeded
            } else {
                StepStatus::Failed
            };
            (succeeded && self.shared.observed()).then(|| Finished::of(record))
        });
        if let Some(Some(finished)) = summary {
            self.shared.emit(|| finished.event(index));
        }
    }

    /// Marks step `index` ended by `error`: waiting for an answer if a
    /// sub-chain it called suspended, failed otherwise.
    pub(super) fn end_by(&self, index: usize, error: &ChainError) {
        if !error.is_suspension() {
            return self.end(index, false, None);
        }
        self.shared
            .record(index, |record| record.status = StepStatus::Waiting);
    }

    /// Records that a fallback produced step `index`'s output.
    fn fell_back(&self, index: usize, def: &'static StepDef, fallback: String) {
        tracing::warn!(parent: &self.shared.span, step = def.name, %fallback, "step answered by its fallback");
        self.shared
            .record(index, |record| record.fallback = Some(fallback.clone()));
        self.shared.emit(|| EventKind::StepFallback {
            step: def.name,
            index,
            fallback,
        });
    }

    /// Marks a step done without running it (restored or cached).
    pub(super) fn skip_run(&self, index: usize, status: StepStatus) {
        let now = self.now();
        let name = self.shared.record(index, |record| {
            record.ready_at = Some(now);
            record.started_at = Some(now);
            record.finished_at = Some(now);
            record.status = status;
            record.name
        });
        if let Some(step) = name {
            self.shared.emit(|| match status {
                StepStatus::Cached => EventKind::StepCached { step, index },
                _ => EventKind::StepRestored { step, index },
            });
        }
    }
}
