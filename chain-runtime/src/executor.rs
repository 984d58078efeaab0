//! Runs one step of a run: attempts, timeout, retries with backoff, panics
//! caught, validation, records. Called by the code `#[chain]` generates.

use std::any::Any;
use std::future::{Future, poll_fn};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::pin;
use std::sync::{Arc, PoisonError};
use std::task::Poll;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use tracing::Instrument;

use crate::checkpoint::{NewRun, StoreError, StoredStatus};
use crate::context::{RunOptions, RunShared, StepCx};
use crate::definition::{ChainDef, StepDef};
use crate::error::{ChainError, FailureKind, StepResult};
use crate::events::EventKind;
use crate::ids::{splitmix64, unix_ms};
use crate::looping::{Loop, LoopStop};
use crate::report::{
    AttemptOutcome, AttemptRecord, ExecutionReport, IterationRecord, Outcome, RunStatus, StepStatus,
};
use crate::retry::RetryContext;
use crate::runtime::Runtime;
use crate::slot::Slot;
use crate::validate::StepOutput;

/// One run of a chain, from the generated code's side. Dropping it before
/// [`RunCx::finish`] or [`RunCx::fail`] means the run was cancelled.
#[doc(hidden)]
pub struct RunCx {
    shared: Arc<RunShared>,
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

enum AttemptError {
    Step(crate::error::StepError),
    Panicked(String),
    TimedOut(Duration),
}

impl RunCx {
    /// Starts a run of `chain`: a new one, or, with a checkpoint store, a
    /// resumed one (`options.resume`, or a sub-chain whose step ran before).
    /// A store failure or a changed definition ends the run at once.
    pub async fn start<I: Serialize, O>(
        runtime: &Runtime,
        chain: &'static ChainDef,
        options: RunOptions<'_>,
        input: &I,
    ) -> Result<Self, Outcome<O>> {
        let resume = options.resume;
        let shared = Arc::new(RunShared::new(runtime.clone(), chain, options));
        shared.emit(|| EventKind::RunStarted);
        let run = Self {
            shared,
            ended: false,
        };
        let Some(store) = runtime.inner.checkpoints.clone() else {
            return Ok(run);
        };
        let id = run.shared.id;
        let fail = |run: Self, kind: FailureKind| -> Outcome<O> {
            run.fail_now(ChainError::run_failed(chain.name, kind))
        };
        match store.load_run(id).await {
            Ok(Some(saved)) => {
                if saved.chain != chain.name || saved.fingerprint != chain.fingerprint {
                    return Err(fail(
                        run,
                        FailureKind::DefinitionChanged {
                            run_id: id,
                            chain: chain.name.to_owned(),
                            stored: saved.fingerprint,
                            current: chain.fingerprint,
                        },
                    ));
                }
                *run.shared
                    .restored
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = saved.steps;
                Ok(run)
            }
            Ok(None) if resume.is_some() => Err(fail(
                run,
                FailureKind::Checkpoint(StoreError::Io(format!(
                    "the store has no run {id} of chain `{}`",
                    chain.name
                ))),
            )),
            Ok(None) => {
                let input = match serde_json::to_vec(input) {
                    Ok(input) => input,
                    Err(error) => {
                        return Err(fail(
                            run,
                            FailureKind::Checkpoint(StoreError::Io(error.to_string())),
                        ));
                    }
                };
                let new = NewRun {
                    run_id: id,
                    chain: chain.name,
                    fingerprint: chain.fingerprint,
                    input: &input,
                };
                match store.start_run(new).await {
                    Ok(()) => Ok(run),
                    Err(error) => Err(fail(run, FailureKind::Checkpoint(error))),
                }
            }
            Err(error) => Err(fail(run, FailureKind::Checkpoint(error))),
        }
    }

    /// Ends the run with `error` before any step ran.
    fn fail_now<O>(mut self, error: ChainError) -> Outcome<O> {
        Outcome {
            report: self.end_run(RunStatus::Failed),
            result: Err(error),
        }
    }

    fn checkpoint_error(
        &self,
        def: &'static StepDef,
        index: usize,
        error: StoreError,
    ) -> ChainError {
        ChainError::step_failed(
            self.shared.chain.name,
            def.name,
            def.key,
            index,
            0,
            FailureKind::Checkpoint(error),
        )
    }

    /// The output saved for (`def.key`, `iteration`), if the run was resumed
    /// and has one; a record that does not read back as `T` is an error.
    fn restore<T: DeserializeOwned>(
        &self,
        def: &'static StepDef,
        index: usize,
        iteration: u32,
    ) -> Result<Option<T>, ChainError> {
        if self.shared.runtime.inner.checkpoints.is_none() {
            return Ok(None);
        }
        let restored = self
            .shared
            .restored
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if restored.is_empty() {
            return Ok(None);
        }
        let Some(bytes) = restored.get(&(def.key.to_owned(), iteration)) else {
            return Ok(None);
        };
        serde_json::from_slice(bytes).map(Some).map_err(|error| {
            self.checkpoint_error(
                def,
                index,
                StoreError::Corrupt(format!(
                    "the saved output of step `{}` does not read back as its type: {error}",
                    def.name
                )),
            )
        })
    }

    /// Saves an output before anyone else can see it (no-op without a store).
    async fn save<T: Serialize>(
        &self,
        def: &'static StepDef,
        index: usize,
        iteration: u32,
        value: &T,
    ) -> Result<(), ChainError> {
        let Some(store) = &self.shared.runtime.inner.checkpoints else {
            return Ok(());
        };
        let bytes = serde_json::to_vec(value).map_err(|error| {
            self.checkpoint_error(def, index, StoreError::Io(error.to_string()))
        })?;
        store
            .save_step(self.shared.id, def.key, iteration, &bytes)
            .await
            .map_err(|error| self.checkpoint_error(def, index, error))
    }

    /// The cache key of a step on inputs hashing to `inputs`.
    fn cache_key(&self, def: &'static StepDef, inputs: u64) -> String {
        let model = self
            .shared
            .runtime
            .inner
            .model
            .as_ref()
            .map_or("-", |model| model.name());
        format!(
            "{}/{}/{model}/{inputs:016x}",
            self.shared.chain.name, def.name
        )
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

    /// The run's deadline, for the top-level join, if the runtime sets one.
    pub fn deadline(&self) -> Option<crate::slot::RunDeadline> {
        let after = self.shared.runtime.inner.run_deadline?;
        Some(crate::slot::RunDeadline {
            sleep: Box::pin(tokio::time::sleep(after.saturating_sub(self.now()))),
            chain: self.shared.chain.name,
            after,
        })
    }

    /// Marks a step done without running it (restored or cached).
    fn skip_run(&self, index: usize, status: StepStatus) {
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

    fn now(&self) -> Duration {
        self.shared.elapsed()
    }

    fn step_def(&self, index: usize) -> Result<&'static StepDef, ChainError> {
        self.shared.chain.steps.get(index).ok_or_else(|| {
            ChainError::run_failed(
                self.shared.chain.name,
                FailureKind::Internal {
                    message: format!("no step #{index} in the chain's definition"),
                },
            )
        })
    }

    /// Runs step `index` to completion: every attempt calls `call` with a fresh
    /// [`StepCx`]; the output must pass `validate` and the runtime's hooks.
    pub async fn step<T, F, Fut, V, D>(
        &self,
        index: usize,
        inputs: Option<u64>,
        mut call: F,
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
        let def = self.step_def(index)?;
        // Checkpoints, caches, fallbacks and deadlines take the full path,
        // boxed: their state would otherwise enlarge every step of every run.
        let light = self.shared.runtime.inner.checkpoints.is_none()
            && fallback.is_none()
            && def.options.fallback_model.is_none()
            && def.options.deadline.is_none();
        if !light {
            return Box::pin(self.step_full(def, index, inputs, call, validate, fallback)).await;
        }
        match self
            .attempts(def, index, 1, None, &mut call, &validate)
            .await
        {
            Ok((value, _, finished_at)) => {
                self.end(index, true, Some(finished_at));
                Ok(value)
            }
            Err(error) => {
                self.end(index, false, None);
                Err(error)
            }
        }
    }

    /// [`RunCx::step`] with restore, cache, save, deadline and fallbacks.
    async fn step_full<T, F, Fut, V, D>(
        &self,
        def: &'static StepDef,
        index: usize,
        inputs: Option<u64>,
        mut call: F,
        validate: V,
        mut fallback: Option<D>,
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
        let cache = match (
            def.options.cache,
            inputs,
            &self.shared.runtime.inner.checkpoints,
        ) {
            (Some(ttl), Some(inputs), Some(store)) => {
                Some((ttl, store, self.cache_key(def, inputs)))
            }
            _ => None,
        };
        if let Some((_, store, key)) = &cache {
            let now = unix_ms();
            let hit = store
                .cache_get(key, now)
                .await
                .map_err(|error| self.checkpoint_error(def, index, error))?;
            if let Some(bytes) = hit
                && let Ok(value) = serde_json::from_slice::<T>(&bytes)
            {
                self.save(def, index, 0, &value).await?;
                self.skip_run(index, StepStatus::Cached);
                return Ok(value);
            }
        }
        // Each arm builds its future in place: binding a step's whole state to
        // a variable first would copy it once per step.
        let first = match def.options.deadline {
            // Boxed: most steps have no deadline, and the timer would make
            // every step's future (so every run in flight) larger.
            Some(after) => Box::pin(tokio::time::timeout(
                after,
                self.attempts(def, index, 1, None, &mut call, &validate),
            ))
            .await
            .unwrap_or_else(|_| {
                Err(ChainError::step_failed(
                    self.shared.chain.name,
                    def.name,
                    def.key,
                    index,
                    0,
                    FailureKind::StepDeadline { after },
                ))
            }),
            None => {
                self.attempts(def, index, 1, None, &mut call, &validate)
                    .await
            }
        };
        let attempted = match first {
            Err(error)
                if !matches!(
                    error.kind(),
                    FailureKind::Panicked { .. } | FailureKind::Checkpoint(_)
                ) =>
            {
                // Retries spent: the step's fallbacks, in order.
                let mut result = Err(error);
                if let Some(model) = def.options.fallback_model {
                    result = self
                        .attempts(def, index, 1, Some(model), &mut call, &validate)
                        .await;
                    if result.is_ok() {
                        self.fell_back(index, def, format!("model:{model}"));
                    }
                }
                if result.is_err()
                    && let Some(default) = fallback.take()
                {
                    let value = default();
                    self.fell_back(index, def, "default".to_owned());
                    result = Ok((value, 0, self.now()));
                }
                result
            }
            other => other,
        };
        match attempted {
            Ok((value, _, finished_at)) => {
                if let Err(error) = self.save(def, index, 0, &value).await {
                    self.end(index, false, None);
                    return Err(error);
                }
                if let Some((ttl, store, key)) = &cache
                    && let Ok(bytes) = serde_json::to_vec(&value)
                {
                    let expires = unix_ms().saturating_add(ttl.as_millis() as u64);
                    // A cache that cannot be written only costs a future call.
                    if let Err(error) = store.cache_put(key, &bytes, expires).await {
                        tracing::warn!(parent: &self.shared.span, step = def.name, %error, "step cache write failed");
                    }
                }
                self.end(index, true, Some(finished_at));
                Ok(value)
            }
            Err(error) => {
                self.end(index, false, None);
                Err(error)
            }
        }
    }

    /// Runs loop step `index`: iteration 1 calls `call` with `None`, every
    /// later one with the previous iteration's output, until `until` holds on
    /// an output or `max_iterations` have run.
    pub async fn repeat<T, F, Fut, V, U>(
        &self,
        index: usize,
        mut call: F,
        validate: V,
        until: U,
    ) -> Result<Loop<T>, ChainError>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
        F: FnMut(StepCx, Option<Arc<T>>) -> Fut,
        Fut: Future<Output = StepResult<T>>,
        V: Fn(&T) -> Result<(), String>,
        U: Fn(&T) -> bool,
    {
        let def = self.step_def(index)?;
        let max = def.options.max_iterations.unwrap_or(1).max(1);
        if let Some(value) = self.restore::<Loop<T>>(def, index, 0)? {
            self.skip_run(index, StepStatus::Restored);
            return Ok(value);
        }
        let mut previous: Option<Arc<T>> = None;
        let mut iteration = 0u32;
        // A resumed loop continues after its last saved iteration.
        let last_saved = (1..=max)
            .rev()
            .find_map(|i| self.restore::<T>(def, index, i).transpose().map(|v| (i, v)));
        if let Some((saved_iteration, value)) = last_saved {
            let value = value?;
            iteration = saved_iteration;
            if until(&value) || saved_iteration >= max {
                let stop = if until(&value) {
                    LoopStop::Converged
                } else {
                    LoopStop::MaxIterations
                };
                let done = Loop {
                    value,
                    iterations: saved_iteration,
                    stop,
                };
                self.save(def, index, 0, &done).await?;
                self.skip_run(index, StepStatus::Restored);
                return Ok(done);
            }
            previous = Some(Arc::new(value));
        }
        loop {
            iteration += 1;
            let started_at = self.now();
            let attempted = self
                .attempts(
                    def,
                    index,
                    iteration,
                    None,
                    |cx| call(cx, previous.clone()),
                    &validate,
                )
                .await;
            let (value, attempts, _) = match attempted {
                Ok(done) => done,
                Err(error) => {
                    self.end(index, false, None);
                    return Err(error);
                }
            };
            if let Err(error) = self.save(def, index, iteration, &value).await {
                self.end(index, false, None);
                return Err(error);
            }
            let converged = until(&value);
            self.shared.emit(|| EventKind::LoopIteration {
                step: def.name,
                index,
                iteration,
                converged,
            });
            let finished_at = self.now();
            self.shared.record(index, |record| {
                record.iterations.push(IterationRecord {
                    iteration,
                    started_at,
                    finished_at,
                    attempts,
                    converged,
                });
            });
            if converged || iteration >= max {
                let stop = if converged {
                    LoopStop::Converged
                } else {
                    LoopStop::MaxIterations
                };
                let done = Loop {
                    value,
                    iterations: iteration,
                    stop,
                };
                if let Err(error) = self.save(def, index, 0, &done).await {
                    self.end(index, false, None);
                    return Err(error);
                }
                self.end(index, true, Some(finished_at));
                return Ok(done);
            }
            previous = Some(Arc::new(value));
        }
    }

    /// Marks step `index` finished, at `finished` (now if `None`), and sends
    /// `StepFinished` for a success.
    fn end(&self, index: usize, succeeded: bool, finished: Option<Duration>) {
        let finished = finished.unwrap_or_else(|| self.now());
        let summary = self.shared.record(index, |record| {
            record.finished_at = Some(finished);
            record.status = if succeeded {
                StepStatus::Succeeded
            } else {
                StepStatus::Failed
            };
            (
                record.name,
                record.attempts,
                record.duration().unwrap_or_default(),
                record.output_bytes,
                record.usage,
                record.cost_usd,
            )
        });
        if let (true, Some((step, attempts, duration, output_bytes, usage, cost_usd))) =
            (succeeded, summary)
        {
            self.shared.emit(|| EventKind::StepFinished {
                step,
                index,
                attempts,
                duration,
                output_bytes,
                usage,
                cost_usd,
            });
        }
    }

    /// The attempts of one run of a step (one iteration of a loop): retries
    /// retryable failures with backoff; returns the value and the attempts used.
    async fn attempts<T, F, Fut, V>(
        &self,
        def: &'static StepDef,
        index: usize,
        iteration: u32,
        model_override: Option<&'static str>,
        mut call: F,
        validate: &V,
    ) -> Result<(T, u32, Duration), ChainError>
    where
        T: Serialize + Send + Sync + 'static,
        F: FnMut(StepCx) -> Fut,
        Fut: Future<Output = StepResult<T>>,
        V: Fn(&T) -> Result<(), String>,
    {
        let runtime = &self.shared.runtime.inner;
        let retries = def.options.retries.unwrap_or(runtime.retry.retries);
        let reasks = def.options.reasks.unwrap_or(0);
        let timeout = def.options.timeout.or(runtime.timeout);
        let mut attempt = 0u32;
        let (mut retried, mut reasked) = (0u32, 0u32);
        let mut waited = Duration::ZERO;
        let mut feedback: Option<Arc<str>> = None;
        loop {
            attempt += 1;
            let mut wait_at_least: Option<Duration> = None;
            let started_at = self.now();
            self.shared.record(index, |record| {
                if record.started_at.is_none() {
                    record.ready_at = Some(started_at);
                    record.started_at = Some(started_at);
                    record.status = StepStatus::Running;
                }
                record.attempts += 1;
            });
            self.shared.emit(|| EventKind::StepStarted {
                step: def.name,
                index,
                attempt,
                iteration,
            });
            let cx = StepCx {
                run: Arc::clone(&self.shared),
                index,
                name: def.name,
                key: def.key,
                attempt,
                iteration,
                feedback: feedback.take(),
                model_override,
            };
            let span = tracing::info_span!(
                parent: &self.shared.span,
                "prompt_chain.step",
                step = def.name,
                key = def.key,
                index,
                attempt,
                iteration,
            );
            let attempted = run_attempt(call(cx), timeout).instrument(span).await;
            let (kind, retryable, outcome) = match attempted {
                Ok(value) => match self.check(def, attempt, &value, validate) {
                    Ok(()) => {
                        let bytes = runtime.measure_outputs.then(|| output_size(&value));
                        let finished_at = self.attempt_done(
                            index,
                            attempt,
                            iteration,
                            started_at,
                            AttemptOutcome::Succeeded,
                            bytes,
                        );
                        return Ok((value, attempt, finished_at));
                    }
                    Err(message) => (
                        FailureKind::Validation { message },
                        false,
                        AttemptOutcome::Rejected,
                    ),
                },
                Err(AttemptError::Step(error)) => {
                    let retryable = error.is_retryable();
                    wait_at_least = error
                        .downcast_ref::<crate::llm::LlmError>()
                        .and_then(crate::llm::LlmError::retry_after);
                    let source = error.into_source();
                    (
                        FailureKind::Failed { source, retryable },
                        retryable,
                        AttemptOutcome::Failed,
                    )
                }
                Err(AttemptError::Panicked(message)) => (
                    FailureKind::Panicked { message },
                    false,
                    AttemptOutcome::Panicked,
                ),
                Err(AttemptError::TimedOut(after)) => (
                    FailureKind::TimedOut { after },
                    true,
                    AttemptOutcome::TimedOut,
                ),
            };
            self.attempt_done(index, attempt, iteration, started_at, outcome, None);
            // A rejected output is re-asked (its own budget), with the
            // validator's message for the step; nothing else becomes feedback.
            if let (FailureKind::Validation { message }, true) = (&kind, reasked < reasks) {
                reasked += 1;
                self.shared.record(index, |record| record.reasks += 1);
                self.shared.emit(|| EventKind::StepReasked {
                    step: def.name,
                    index,
                    attempt,
                    message: message.clone(),
                });
                feedback = Some(Arc::from(message.as_str()));
                continue;
            }
            let delay = (retryable && retried < retries)
                .then(|| {
                    runtime.retry.policy.delay(&RetryContext {
                        step: def.name,
                        attempt,
                        failure: &kind,
                        retry_after: wait_at_least,
                        waited,
                        jitter: self.jitter(index, attempt),
                    })
                })
                .flatten();
            if let Some(delay) = delay {
                retried += 1;
                waited += delay;
                tracing::warn!(
                    parent: &self.shared.span,
                    step = def.name,
                    attempt,
                    delay_ms = delay.as_millis() as u64,
                    error = %kind,
                    "step attempt failed; retrying"
                );
                self.shared.emit(|| EventKind::StepRetried {
                    step: def.name,
                    index,
                    attempt,
                    delay,
                    error: kind.to_string(),
                });
                // Boxed: a retry is the cold path; an inline timer would enlarge every step.
                Box::pin(tokio::time::sleep(delay)).await;
                continue;
            }
            tracing::warn!(
                parent: &self.shared.span,
                step = def.name,
                attempt,
                retryable,
                error = %kind,
                "step failed"
            );
            self.shared.emit(|| EventKind::StepFailed {
                step: def.name,
                index,
                attempt,
                error: kind.to_string(),
                retryable,
            });
            return Err(ChainError::step_failed(
                self.shared.chain.name,
                def.name,
                def.key,
                index,
                attempt,
                kind,
            ));
        }
    }

    /// Logs an attempt (and the output's size, on success); returns when it ended.
    fn attempt_done(
        &self,
        index: usize,
        attempt: u32,
        iteration: u32,
        started_at: Duration,
        outcome: AttemptOutcome,
        output_bytes: Option<u64>,
    ) -> Duration {
        let finished_at = self.now();
        self.shared.record(index, |record| {
            record.attempt_log.push(AttemptRecord {
                attempt,
                iteration,
                started_at,
                finished_at,
                outcome,
            });
            if output_bytes.is_some() {
                record.output_bytes = output_bytes;
            }
        });
        finished_at
    }

    fn check<T, V>(
        &self,
        def: &'static StepDef,
        attempt: u32,
        value: &T,
        validate: &V,
    ) -> Result<(), String>
    where
        T: Serialize + Send + Sync + 'static,
        V: Fn(&T) -> Result<(), String>,
    {
        validate(value)?;
        let hooks = &self.shared.runtime.inner.validators;
        if hooks.is_empty() {
            return Ok(());
        }
        let output = StepOutput {
            chain: self.shared.chain.name,
            step: def.name,
            key: def.key,
            attempt,
            value,
        };
        hooks.iter().try_for_each(|hook| hook.validate(&output))
    }

    /// A uniform number in `[0, 1)` seeded by run, step and attempt.
    fn jitter(&self, index: usize, attempt: u32) -> f64 {
        let seed = self.shared.id.as_u64() ^ ((index as u64) << 32) ^ u64::from(attempt);
        (splitmix64(seed) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Records that route `index` took arm `arm`; the steps of every other arm
    /// are marked skipped.
    pub fn route(&self, index: usize, arm: usize) {
        let Some(route) = self.shared.chain.routes.get(index) else {
            return;
        };
        let decided = self.now();
        let taken = route.arms.get(arm).map(|a| a.pattern);
        if let Some(record) = self
            .shared
            .routes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(index)
        {
            record.arm = taken;
            record.decided_at = Some(decided);
        }
        if let Some(arm_pattern) = taken {
            tracing::debug!(parent: &self.shared.span, key = route.key, arm = arm_pattern, "route taken");
            self.shared.emit(|| EventKind::RouteTaken {
                key: route.key,
                arm: arm_pattern,
            });
        }
        let mut skipped = Vec::new();
        {
            let mut records = self
                .shared
                .records
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            for (other, def) in route.arms.iter().enumerate() {
                if other == arm {
                    continue;
                }
                for &step in def.steps {
                    if let Some(record) = records.get_mut(step) {
                        record.status = StepStatus::Skipped;
                        if self.shared.observed() {
                            skipped.push((step, record.name));
                        }
                    }
                }
            }
        }
        for (index, step) in skipped {
            self.shared.emit(|| EventKind::StepSkipped { step, index });
        }
    }

    /// Builds the report, records it in the runtime's history and sends the
    /// run's last event.
    fn end_run(&mut self, status: RunStatus) -> Arc<ExecutionReport> {
        self.ended = true;
        // The run is over: its records move into the report. (A step that
        // spawned a task holding its `StepCx` can still count tokens, into
        // nothing.)
        let steps = std::mem::take(
            &mut *self
                .shared
                .records
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        let routes = std::mem::take(
            &mut *self
                .shared
                .routes
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
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
        self.shared.runtime.remember(&report);
        report
    }

    /// Records the run's end in the checkpoint store (best effort: the
    /// outputs that matter are saved already).
    async fn store_status(&self, status: StoredStatus) {
        if let Some(store) = &self.shared.runtime.inner.checkpoints
            && let Err(error) = store.finish_run(self.shared.id, status).await
        {
            tracing::warn!(parent: &self.shared.span, %error, "recording the run's end failed");
        }
    }

    /// Ends a successful run.
    pub async fn finish<O>(mut self, output: O) -> Outcome<O> {
        self.store_status(StoredStatus::Completed).await;
        Outcome {
            report: self.end_run(RunStatus::Completed),
            result: Ok(output),
        }
    }

    /// Ends a run whose join succeeded but left a key without a value: a broken
    /// invariant, reported as an internal error rather than a panic.
    pub async fn missing<O>(mut self, key: &'static str) -> Outcome<O> {
        self.store_status(StoredStatus::Failed).await;
        let error = ChainError::run_failed(
            self.shared.chain.name,
            FailureKind::Internal {
                message: format!("key `{key}` has no value after every step finished"),
            },
        );
        Outcome {
            report: self.end_run(RunStatus::Failed),
            result: Err(error),
        }
    }

    /// Ends a failed run (attach its context first with [`with_completed`]).
    pub async fn fail<O>(mut self, error: ChainError) -> Outcome<O> {
        self.store_status(StoredStatus::Failed).await;
        Outcome {
            report: self.end_run(RunStatus::Failed),
            result: Err(error),
        }
    }
}

impl Drop for RunCx {
    fn drop(&mut self) {
        if !self.ended {
            let _ = self.end_run(RunStatus::Cancelled);
        }
    }
}

/// The size of `value` serialized as JSON, counted without building the text.
fn output_size<T: Serialize>(value: &T) -> u64 {
    struct Counter(u64);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len() as u64;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    match serde_json::to_writer(&mut counter, value) {
        Ok(()) => counter.0,
        Err(_) => 0,
    }
}

async fn run_attempt<T, Fut>(future: Fut, timeout: Option<Duration>) -> Result<T, AttemptError>
where
    Fut: Future<Output = StepResult<T>>,
{
    let mut future = pin!(future);
    let guarded = poll_fn(
        |cx| match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
            Ok(Poll::Ready(Ok(value))) => Poll::Ready(Ok(value)),
            Ok(Poll::Ready(Err(error))) => Poll::Ready(Err(AttemptError::Step(error))),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Err(AttemptError::Panicked(panic_message(&*payload)))),
        },
    );
    match timeout {
        Some(after) => Box::pin(tokio::time::timeout(after, guarded))
            .await
            .unwrap_or(Err(AttemptError::TimedOut(after))),
        None => guarded.await,
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "(a non-string panic payload)".to_owned()
    }
}

/// A key's value for the error context, if it has one.
#[doc(hidden)]
pub trait ContextValue {
    /// The value as JSON, or `None` while it has none.
    fn context_json(&self) -> Option<Value>;
}

impl<T: Serialize> ContextValue for Slot<T> {
    fn context_json(&self) -> Option<Value> {
        let value = self.get()?;
        Some(
            serde_json::to_value(value)
                .unwrap_or_else(|error| Value::String(format!("(not serializable: {error})"))),
        )
    }
}

/// Reads a stored run's input; any problem becomes a failed outcome.
pub(crate) async fn load_input<I: DeserializeOwned, O>(
    runtime: &Runtime,
    chain: &'static ChainDef,
    run_id: crate::ids::RunId,
) -> Result<I, Outcome<O>> {
    let fail = |kind: FailureKind| {
        let options = RunOptions {
            resume: Some(run_id),
            ..RunOptions::default()
        };
        let run = RunCx {
            shared: Arc::new(RunShared::new(runtime.clone(), chain, options)),
            ended: false,
        };
        run.fail_now(ChainError::run_failed(chain.name, kind))
    };
    let Some(store) = &runtime.inner.checkpoints else {
        return Err(fail(FailureKind::Checkpoint(StoreError::Io(
            "this runtime has no checkpoint store; add one with `Runtime::builder().checkpoints(...)`".to_owned(),
        ))));
    };
    match store.load_run(run_id).await {
        Ok(Some(saved)) => serde_json::from_slice(&saved.input).map_err(|error| {
            fail(FailureKind::Checkpoint(StoreError::Corrupt(format!(
                "the input of run {run_id} does not read back as chain `{}`'s input: {error}",
                chain.name
            ))))
        }),
        Ok(None) => Err(fail(FailureKind::Checkpoint(StoreError::Io(format!(
            "the store has no run {run_id} of chain `{}`",
            chain.name
        ))))),
        Err(error) => Err(fail(FailureKind::Checkpoint(error))),
    }
}

/// Attaches every key that has a value to a run's error, as JSON.
pub fn with_completed(error: ChainError, keys: &[(&'static str, &dyn ContextValue)]) -> ChainError {
    let mut completed = Map::new();
    for (key, value) in keys {
        if let Some(json) = value.context_json() {
            completed.insert((*key).to_owned(), json);
        }
    }
    error.with_completed(completed)
}
