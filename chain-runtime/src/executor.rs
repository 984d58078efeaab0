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
use serde_json::{Map, Value};
use tokio::time::Instant;

use crate::context::{RunShared, StepCx};
use crate::definition::{ChainDef, StepDef};
use crate::error::{ChainError, FailureKind, StepResult};
use crate::ids::splitmix64;
use crate::looping::{Loop, LoopStop};
use crate::report::{ExecutionReport, IterationRecord, Outcome, RunStatus, StepStatus};
use crate::runtime::Runtime;
use crate::slot::Slot;
use crate::validate::StepOutput;

/// One run of a chain, from the generated code's side.
#[doc(hidden)]
pub struct RunCx {
    shared: Arc<RunShared>,
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
    /// Starts a run of `chain`; `parent` is the step calling it, for a sub-chain.
    pub fn start(runtime: &Runtime, chain: &'static ChainDef, parent: Option<&StepCx>) -> Self {
        Self {
            shared: Arc::new(RunShared::new(
                runtime.clone(),
                chain,
                parent.map(StepCx::run_id),
            )),
        }
    }

    fn now(&self) -> Duration {
        Instant::now().saturating_duration_since(self.shared.started)
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
    pub async fn step<T, F, Fut, V>(
        &self,
        index: usize,
        call: F,
        validate: V,
    ) -> Result<T, ChainError>
    where
        T: Serialize + Send + Sync + 'static,
        F: FnMut(StepCx) -> Fut,
        Fut: Future<Output = StepResult<T>>,
        V: Fn(&T) -> Result<(), String>,
    {
        let def = self.step_def(index)?;
        self.begin(index);
        let result = self.attempts(def, index, 1, call, &validate).await;
        self.end(index, result.is_ok());
        result.map(|(value, _)| value)
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
        T: Serialize + Send + Sync + 'static,
        F: FnMut(StepCx, Option<Arc<T>>) -> Fut,
        Fut: Future<Output = StepResult<T>>,
        V: Fn(&T) -> Result<(), String>,
        U: Fn(&T) -> bool,
    {
        let def = self.step_def(index)?;
        let max = def.options.max_iterations.unwrap_or(1).max(1);
        self.begin(index);
        let mut previous: Option<Arc<T>> = None;
        let mut iteration = 0u32;
        loop {
            iteration += 1;
            let started_at = self.now();
            let attempted = self
                .attempts(
                    def,
                    index,
                    iteration,
                    |cx| call(cx, previous.clone()),
                    &validate,
                )
                .await;
            let (value, attempts) = match attempted {
                Ok(done) => done,
                Err(error) => {
                    self.end(index, false);
                    return Err(error);
                }
            };
            let converged = until(&value);
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
                self.end(index, true);
                let stop = if converged {
                    LoopStop::Converged
                } else {
                    LoopStop::MaxIterations
                };
                return Ok(Loop {
                    value,
                    iterations: iteration,
                    stop,
                });
            }
            previous = Some(Arc::new(value));
        }
    }

    fn begin(&self, index: usize) {
        let ready = self.now();
        self.shared.record(index, |record| {
            record.ready_at = Some(ready);
            record.started_at = Some(ready);
            record.status = StepStatus::Running;
        });
    }

    fn end(&self, index: usize, succeeded: bool) {
        let finished = self.now();
        self.shared.record(index, |record| {
            record.finished_at = Some(finished);
            record.status = if succeeded {
                StepStatus::Succeeded
            } else {
                StepStatus::Failed
            };
        });
    }

    /// The attempts of one run of a step (one iteration of a loop): retries
    /// retryable failures with backoff; returns the value and the attempts used.
    async fn attempts<T, F, Fut, V>(
        &self,
        def: &'static StepDef,
        index: usize,
        iteration: u32,
        mut call: F,
        validate: &V,
    ) -> Result<(T, u32), ChainError>
    where
        T: Serialize + Send + Sync + 'static,
        F: FnMut(StepCx) -> Fut,
        Fut: Future<Output = StepResult<T>>,
        V: Fn(&T) -> Result<(), String>,
    {
        let runtime = &self.shared.runtime.inner;
        let retries = def.options.retries.unwrap_or(runtime.retry.retries);
        let timeout = def.options.timeout.or(runtime.timeout);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            self.shared.record(index, |record| record.attempts += 1);
            let cx = StepCx {
                run: Arc::clone(&self.shared),
                index,
                name: def.name,
                key: def.key,
                attempt,
                iteration,
            };
            let (kind, retryable) = match run_attempt(call(cx), timeout).await {
                Ok(value) => match self.check(def, attempt, &value, validate) {
                    Ok(()) => return Ok((value, attempt)),
                    Err(message) => (FailureKind::Validation { message }, false),
                },
                Err(AttemptError::Step(error)) => {
                    let retryable = error.is_retryable();
                    let source = error.into_source();
                    (FailureKind::Failed { source, retryable }, retryable)
                }
                Err(AttemptError::Panicked(message)) => (FailureKind::Panicked { message }, false),
                Err(AttemptError::TimedOut(after)) => (FailureKind::TimedOut { after }, true),
            };
            if retryable && attempt <= retries {
                tokio::time::sleep(self.backoff(index, attempt)).await;
                continue;
            }
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

    /// Full jitter: uniform in `[0, min(max, base · 2^(attempt-1))]`, seeded by
    /// run, step and attempt so a run's delays are reproducible.
    fn backoff(&self, index: usize, attempt: u32) -> Duration {
        let retry = self.shared.runtime.inner.retry;
        let exp = retry
            .base_delay
            .saturating_mul(1u32 << (attempt - 1).min(20))
            .min(retry.max_delay);
        let seed = self.shared.id.as_u64() ^ ((index as u64) << 32) ^ u64::from(attempt);
        let fraction = (splitmix64(seed) >> 11) as f64 / (1u64 << 53) as f64;
        exp.mul_f64(fraction)
    }

    fn report(&self, status: RunStatus) -> ExecutionReport {
        let steps = self
            .shared
            .records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let routes = self
            .shared
            .routes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        ExecutionReport {
            run_id: self.shared.id,
            chain: self.shared.chain.name,
            status,
            duration: self.now(),
            steps,
            routes,
        }
    }

    /// Records that route `index` took arm `arm`; the steps of every other arm
    /// are marked skipped.
    pub fn route(&self, index: usize, arm: usize) {
        let Some(route) = self.shared.chain.routes.get(index) else {
            return;
        };
        let decided = self.now();
        if let Some(record) = self
            .shared
            .routes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(index)
        {
            record.arm = route.arms.get(arm).map(|a| a.pattern);
            record.decided_at = Some(decided);
        }
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
                }
            }
        }
    }

    /// Ends a successful run.
    pub fn finish<O>(self, output: O) -> Outcome<O> {
        Outcome {
            report: self.report(RunStatus::Completed),
            result: Ok(output),
        }
    }

    /// Ends a run whose join succeeded but left a key without a value: a broken
    /// invariant, reported as an internal error rather than a panic.
    pub fn missing<O>(self, key: &'static str) -> Outcome<O> {
        let error = ChainError::run_failed(
            self.shared.chain.name,
            FailureKind::Internal {
                message: format!("key `{key}` has no value after every step finished"),
            },
        );
        Outcome {
            report: self.report(RunStatus::Failed),
            result: Err(error),
        }
    }

    /// Ends a failed run, attaching every key that has a value to the error.
    pub fn fail<O>(
        self,
        error: ChainError,
        keys: &[(&'static str, &dyn ContextValue)],
    ) -> Outcome<O> {
        let mut completed = Map::new();
        for (key, value) in keys {
            if let Some(json) = value.context_json() {
                completed.insert((*key).to_owned(), json);
            }
        }
        Outcome {
            report: self.report(RunStatus::Failed),
            result: Err(error.with_completed(completed)),
        }
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
        Some(after) => tokio::time::timeout(after, guarded)
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
