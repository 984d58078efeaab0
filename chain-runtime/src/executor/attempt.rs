//! One attempt of a step: a fresh [`StepCx`], the step's future under panic
//! capture and its timeout, then validation; and the loop of attempts that
//! asks the [policy](super::policy) what follows a failure.

use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use serde::Serialize;

use super::policy::{Budgets, Decision, Failure};
use super::run::RunCx;
use crate::context::{RunShared, StepCx};
use crate::definition::StepDef;
use crate::error::{ChainError, FailureKind, StepError, StepResult};
use crate::events::EventKind;
use crate::ids::splitmix64;
use crate::llm::LlmError;
use crate::report::{AttemptKind, AttemptOutcome, AttemptRecord, StepRecord, StepStatus};
use crate::validate::StepOutput;

/// How one attempt went wrong, before classification.
enum AttemptError {
    Step(StepError),
    Panicked(String),
    TimedOut(Duration),
}

/// What the attempts of one run of a step are about.
#[derive(Clone, Copy)]
pub(super) struct Attempts {
    pub(super) def: &'static StepDef,
    pub(super) index: usize,
    /// The loop iteration, from 1 (1 for steps that are not loops).
    pub(super) iteration: u32,
    /// The model answering instead of the default one (a fallback model).
    pub(super) model_override: Option<&'static str>,
    /// Whether a successful attempt finishes the step (its record and its
    /// `StepFinished` event), saving a second visit to the record.
    pub(super) finishes: bool,
    /// Whether to measure the output's JSON size into the record.
    pub(super) measure: bool,
    /// When the first attempt starts, if the caller has just read the
    /// clock (the attempts read it otherwise).
    pub(super) started_at: Option<Duration>,
    /// Whether this is one element of a map step: its output's size adds
    /// to the step's (the key holds all elements) instead of replacing it.
    pub(super) element: bool,
}

/// A successful run of the attempts.
pub(super) struct Attempted<T> {
    pub(super) value: T,
    pub(super) attempts: u32,
    pub(super) finished_at: Duration,
}

impl RunCx {
    /// The attempts of one run of a step (one iteration of a loop): retries
    /// and re-asks as the policy decides; returns the value and the attempts used.
    pub(super) async fn attempts<T, F, Fut, V>(
        &self,
        what: Attempts,
        mut call: F,
        validate: &V,
    ) -> Result<Attempted<T>, ChainError>
    where
        T: Serialize + Send + Sync + 'static,
        F: FnMut(StepCx) -> Fut,
        Fut: Future<Output = StepResult<T>>,
        V: Fn(&T) -> Result<(), String>,
    {
        let Attempts {
            def,
            index,
            iteration,
            model_override,
            ..
        } = what;
        let policies = self.shared.runtime.policies();
        let mut budgets = Budgets::new(
            policies.retries(&def.options),
            def.options.reasks.unwrap_or(0),
        );
        let timeout = policies.timeout(&def.options);
        let mut attempt = 0u32;
        let mut feedback: Option<Arc<str>> = None;
        let mut first_started_at = what.started_at;
        loop {
            attempt += 1;
            let started_at = first_started_at
                .take()
                .unwrap_or_else(|| self.shared.now_or_fresh());
            // The record learns of the attempt when it ends, in one visit; an
            // attempt cancelled on the way is recorded by the guard's drop.
            let mut in_flight = InFlight {
                run: &self.shared,
                index,
                started_at,
                armed: true,
            };
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
            let guarded = Guarded {
                future: call(cx),
                span,
                run: &self.shared,
            };
            let attempted = match timeout {
                None => guarded.await,
                // Boxed: the timer would enlarge every step's future.
                Some(after) => Box::pin(tokio::time::timeout(after, guarded))
                    .await
                    .unwrap_or(Err(AttemptError::TimedOut(after))),
            };
            in_flight.armed = false;
            let (kind, retryable, outcome, retry_after) = match attempted {
                Ok(value) => match self.check(def, attempt, &value, validate) {
                    Ok(()) => {
                        let done = Done {
                            outcome: AttemptOutcome::Succeeded,
                            finishes: what.finishes,
                            output_bytes: what.measure.then(|| output_size(&value)),
                            element: what.element,
                        };
                        let finished_at =
                            self.attempt_done(index, attempt, iteration, started_at, done);
                        return Ok(Attempted {
                            value,
                            attempts: attempt,
                            finished_at,
                        });
                    }
                    Err(message) => (
                        FailureKind::Validation { message },
                        false,
                        AttemptOutcome::Rejected,
                        None,
                    ),
                },
                Err(error) => classify(error),
            };
            let done = Done {
                outcome,
                finishes: false,
                output_bytes: None,
                element: what.element,
            };
            self.attempt_done(index, attempt, iteration, started_at, done);
            let failure = Failure {
                step: def.name,
                attempt,
                kind: &kind,
                retryable,
                retry_after,
                jitter: self.jitter(index, attempt),
            };
            match budgets.decide(&failure, policies.retry_policy()) {
                Decision::Reask => {
                    // The validator's message is the next attempt's feedback.
                    let message = match kind {
                        FailureKind::Validation { message } => message,
                        other => other.to_string(),
                    };
                    self.shared.record(index, |record| record.reasks += 1);
                    self.shared.emit(|| EventKind::StepReasked {
                        step: def.name,
                        index,
                        attempt,
                        message: message.clone(),
                    });
                    feedback = Some(Arc::from(message));
                }
                Decision::Retry(delay) => {
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
                    self.shared.stale();
                }
                Decision::Fail if matches!(kind, FailureKind::Suspended { .. }) => {
                    return Err(ChainError::run_failed(self.shared.chain.name, kind));
                }
                Decision::Fail => {
                    tracing::warn!(parent: &self.shared.span, step = def.name, attempt, retryable, error = %kind, "step failed");
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
        }
    }

    /// Logs an attempt (and its output's size); returns when it ended. With
    /// `finishes`, also marks the step succeeded and sends `StepFinished`, in
    /// the same visit to the record.
    fn attempt_done(
        &self,
        index: usize,
        attempt: u32,
        iteration: u32,
        started_at: Duration,
        done: Done,
    ) -> Duration {
        let finished_at = self.now();
        self.shared.keep_fresh(finished_at);
        let Done {
            outcome,
            finishes,
            output_bytes,
            element,
        } = done;
        let finished = self.shared.record(index, |record| {
            started(record, started_at);
            record.attempt_log.push(AttemptRecord {
                kind: AttemptKind::Run,
                attempt,
                iteration,
                started_at,
                finished_at,
                outcome,
            });
            if let Some(bytes) = output_bytes {
                record.output_bytes = Some(if element {
                    super::map::with_element(record.output_bytes, bytes)
                } else {
                    bytes
                });
            }
            if finishes {
                record.finished_at = Some(finished_at);
                record.status = StepStatus::Succeeded;
            }
            // `StepFinished` is only built for someone listening.
            (finishes && self.shared.observed()).then(|| super::step::Finished::of(record))
        });
        if let Some(Some(finished)) = finished {
            self.shared.emit(|| finished.event(index));
        }
        finished_at
    }

    /// The step's own validation, then the runtime's hooks.
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
        let hooks = self.shared.runtime.policies().validators();
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
        let seed = self.shared.id.hash64() ^ ((index as u64) << 32) ^ u64::from(attempt);
        (splitmix64(seed) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// How an attempt ended, for its record.
struct Done {
    outcome: AttemptOutcome,
    finishes: bool,
    output_bytes: Option<u64>,
    element: bool,
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

/// A failed attempt as the policy and the report see it: the failure, whether
/// a retry may help, the attempt's outcome and the provider's `Retry-After`.
fn classify(error: AttemptError) -> (FailureKind, bool, AttemptOutcome, Option<Duration>) {
    match error {
        // A sub-chain that suspended: the step waits with it.
        AttemptError::Step(error)
            if error
                .downcast_ref::<ChainError>()
                .is_some_and(ChainError::is_suspension) =>
        {
            let waiting = error
                .downcast_ref::<ChainError>()
                .map(|chain| chain.waiting().to_vec())
                .unwrap_or_default();
            (
                FailureKind::Suspended { waiting },
                false,
                AttemptOutcome::Suspended,
                None,
            )
        }
        AttemptError::Step(error) => {
            let retryable = error.is_retryable();
            let retry_after = error
                .downcast_ref::<LlmError>()
                .and_then(LlmError::retry_after);
            let source = error.into_source();
            (
                FailureKind::Failed { source, retryable },
                retryable,
                AttemptOutcome::Failed,
                retry_after,
            )
        }
        AttemptError::Panicked(message) => (
            FailureKind::Panicked { message },
            false,
            AttemptOutcome::Panicked,
            None,
        ),
        AttemptError::TimedOut(after) => (
            FailureKind::TimedOut { after },
            true,
            AttemptOutcome::TimedOut,
            None,
        ),
    }
}

/// Counts an attempt into its step's record: the step's start (on its first
/// attempt) and one more attempt.
fn started(record: &mut StepRecord, started_at: Duration) {
    if record.started_at.is_none() {
        record.ready_at = Some(started_at);
        record.started_at = Some(started_at);
        record.status = StepStatus::Running;
    }
    record.attempts += 1;
}

/// An attempt in flight: if its future is dropped (the run was cancelled,
/// or a deadline passed), the record still shows that it started.
struct InFlight<'a> {
    run: &'a RunShared,
    index: usize,
    started_at: Duration,
    armed: bool,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.run
                .record(self.index, |record| started(record, self.started_at));
        }
    }
}

pin_project_lite::pin_project! {
    /// One attempt's future with panics caught, polled inside its span
    /// (entered only when someone collects spans). A struct rather than an
    /// `async fn` so the step's future is not moved once more per attempt.
    struct Guarded<'a, Fut> {
        #[pin]
        future: Fut,
        span: tracing::Span,
        // Its clock reading goes stale: the step's own code runs now.
        run: &'a RunShared,
    }
}

impl<T, Fut: Future<Output = StepResult<T>>> Future for Guarded<'_, Fut> {
    type Output = Result<T, AttemptError>;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        this.run.stale();
        let _entered = (!this.span.is_disabled()).then(|| this.span.enter());
        let future = this.future;
        match catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
            Ok(Poll::Ready(Ok(value))) => Poll::Ready(Ok(value)),
            Ok(Poll::Ready(Err(error))) => Poll::Ready(Err(AttemptError::Step(error))),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Err(AttemptError::Panicked(panic_message(&*payload)))),
        }
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
