//! Bounded loops: a step repeated on its previous output until `until` holds
//! or `max` iterations ran; each iteration is saved, so a resumed loop goes
//! on after its last saved iteration.

use std::future::Future;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::attempt::Attempts;
use super::run::RunCx;
use crate::context::StepCx;
use crate::error::{ChainError, StepResult};
use crate::events::EventKind;
use crate::looping::{Loop, LoopStop};
use crate::report::{IterationRecord, StepStatus};

impl RunCx {
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
        // Executing until it returns (for suspension: see `join_steps`).
        let _active = self.shared.activity.begin();
        let def = self.step_def(index)?;
        let max = def.options.max_iterations.unwrap_or(1).max(1);
        if let Some(value) = self.restore::<Loop<T>>(def, index, 0)? {
            self.skip_run(index, StepStatus::Restored);
            return Ok(value);
        }
        let stop = |value: &T, iteration: u32| {
            if until(value) {
                Some(LoopStop::Converged)
            } else {
                (iteration >= max).then_some(LoopStop::MaxIterations)
            }
        };
        let mut previous: Option<Arc<T>> = None;
        let mut iteration = 0u32;
        // A resumed loop continues after its last saved iteration.
        let last_saved = (1..=max)
            .rev()
            .find_map(|i| self.restore::<T>(def, index, i).transpose().map(|v| (i, v)));
        if let Some((saved_iteration, value)) = last_saved {
            let value = value?;
            iteration = saved_iteration;
            if let Some(stop) = stop(&value, saved_iteration) {
                let done = Loop {
                    value,
                    iterations: saved_iteration,
                    stop,
                };
                let done = self.save(def, index, 0, &done).await?.unwrap_or(done);
                self.skip_run(index, StepStatus::Restored);
                return Ok(done);
            }
            previous = Some(Arc::new(value));
        }
        let measure = self.shared.runtime.observation().measure_outputs();
        loop {
            iteration += 1;
            let started_at = self.now();
            let what = Attempts {
                def,
                index,
                iteration,
                model_override: None,
                finishes: false,
                measure,
                started_at: Some(started_at),
                element: false,
            };
            let attempted = self
                .attempts(what, |cx| call(cx, previous.clone()), &validate)
                .await;
            let mut done = match attempted {
                Ok(done) => done,
                Err(error) => {
                    self.end_by(index, &error);
                    return Err(error);
                }
            };
            match self.save(def, index, iteration, &done.value).await {
                Ok(Some(recorded)) => done.value = recorded,
                Ok(None) => {}
                Err(error) => {
                    self.end(index, false, None);
                    return Err(error);
                }
            }
            let stopped = stop(&done.value, iteration);
            let converged = stopped == Some(LoopStop::Converged);
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
                    attempts: done.attempts,
                    converged,
                });
            });
            if let Some(stop) = stopped {
                let finished = Loop {
                    value: done.value,
                    iterations: iteration,
                    stop,
                };
                let finished = match self.save(def, index, 0, &finished).await {
                    Ok(recorded) => recorded.unwrap_or(finished),
                    Err(error) => {
                        self.end(index, false, None);
                        return Err(error);
                    }
                };
                self.end(index, true, Some(finished_at));
                return Ok(finished);
            }
            previous = Some(Arc::new(done.value));
        }
    }
}
