//! Map steps (`step!(key = f(each list))`): the step runs once per element
//! of a list, at most `concurrency` at a time, each element its own unit of
//! work (its own attempts and policies, its own journal entry, its own
//! address for sub-chains); the key holds the results in input order.

use std::future::Future;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::attempt::{Attempted, Attempts};
use super::run::RunCx;
use crate::context::StepCx;
use crate::error::{ChainError, StepResult};
use crate::events::EventKind;
use crate::looping::ItemError;
use crate::report::{ItemRecord, StepStatus};

/// Items in flight when a map step sets no `concurrency = N`.
pub(crate) const DEFAULT_CONCURRENCY: u32 = 8;

impl RunCx {
    /// Runs map step `index` over `items`: `call` runs once per element
    /// (each with the step's attempts, validation and re-asks, under its
    /// own unit address: element `i` is iteration `i + 1`), at most the
    /// step's `concurrency` at a time; the results come back in input
    /// order. Elements saved by an earlier execution of the run are
    /// restored, not run. The first element that fails for good stops the
    /// map (the others in flight are cancelled): the error names it, and
    /// its context holds the finished elements (`null` for the others).
    pub async fn map<'a, E, T, F, Fut, V>(
        &self,
        index: usize,
        items: &'a [E],
        call: F,
        validate: V,
    ) -> Result<Vec<T>, ChainError>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
        F: Fn(StepCx, &'a E) -> Fut,
        Fut: Future<Output = StepResult<T>>,
        V: Fn(&T) -> Result<(), String>,
    {
        let results = self.map_units(index, items, call, validate, false).await?;
        Ok(results.into_iter().filter_map(Result::ok).collect())
    }

    /// [`RunCx::map`] for `on_error = collect`: an element that fails for
    /// good is an [`ItemError`] in its place, and the others go on. Failed
    /// elements are not journaled, so a resumed run tries them again.
    pub async fn map_collect<'a, E, T, F, Fut, V>(
        &self,
        index: usize,
        items: &'a [E],
        call: F,
        validate: V,
    ) -> Result<Vec<Result<T, ItemError>>, ChainError>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
        F: Fn(StepCx, &'a E) -> Fut,
        Fut: Future<Output = StepResult<T>>,
        V: Fn(&T) -> Result<(), String>,
    {
        self.map_units(index, items, call, validate, true).await
    }

    /// The map itself; with `collect`, a failed element is kept as an
    /// [`ItemError`] instead of stopping the map.
    async fn map_units<'a, E, T, F, Fut, V>(
        &self,
        index: usize,
        items: &'a [E],
        call: F,
        validate: V,
        collect: bool,
    ) -> Result<Vec<Result<T, ItemError>>, ChainError>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
        F: Fn(StepCx, &'a E) -> Fut,
        Fut: Future<Output = StepResult<T>>,
        V: Fn(&T) -> Result<(), String>,
    {
        let def = self.step_def(index)?;
        let concurrency = def
            .options
            .concurrency
            .unwrap_or(DEFAULT_CONCURRENCY)
            .max(1) as usize;
        let mut results: Vec<Option<Result<T, ItemError>>> = Vec::with_capacity(items.len());
        for item in 0..items.len() {
            results.push(self.restore::<T>(def, index, unit(item))?.map(Ok));
        }
        let measure = self.shared.runtime.observation().measure_outputs() && self.store().is_none();
        let started = self.now();
        self.shared.record(index, |record| {
            record.ready_at.get_or_insert(started);
            record.started_at.get_or_insert(started);
            record.items = (0..items.len())
                .map(|item| {
                    let mut row = ItemRecord::new(item);
                    if results[item].is_some() {
                        row.status = StepStatus::Restored;
                    }
                    row
                })
                .collect();
        });
        // One element's attempts; its future exists only while it runs.
        let run_item = |item: usize, started_at: Duration| {
            let what = Attempts {
                def,
                index,
                iteration: unit(item),
                model_override: None,
                finishes: false,
                measure,
                started_at: Some(started_at),
                element: true,
            };
            let element = &items[item];
            let call = &call;
            let validate = &validate;
            async move {
                let attempted = self
                    .attempts(what, move |cx| call(cx, element), validate)
                    .await;
                (item, attempted)
            }
        };
        let missing: Vec<usize> = (0..items.len())
            .filter(|&item| results[item].is_none())
            .collect();
        let mut waiting = missing.into_iter();
        // Only the elements that woke are polled.
        let mut running = FuturesUnordered::new();
        loop {
            while running.len() < concurrency {
                match waiting.next() {
                    Some(item) => {
                        let now = self.now();
                        self.item(index, item, |row| {
                            row.started_at = Some(now);
                            row.status = StepStatus::Running;
                        });
                        // Boxed: the element's state moves into the set once,
                        // as a pointer.
                        running.push(Box::pin(run_item(item, now)));
                    }
                    None => break,
                }
            }
            let Some((item, attempted)) = running.next().await else {
                break;
            };
            let (attempts, finished_at) = match &attempted {
                Ok(done) => (done.attempts, done.finished_at),
                Err(error) => (error.attempt(), self.now()),
            };
            let ended = Ended {
                ok: attempted.is_ok(),
                attempts,
                finished_at,
            };
            self.item_ended(def.name, index, item, ended);
            let saved = match attempted {
                Ok(Attempted { value, .. }) => self.save(def, index, unit(item), &value).await.map(
                    // The first output recorded for the unit wins.
                    |recorded| recorded.unwrap_or(value),
                ),
                Err(error) => Err(error.with_item(item)),
            };
            match saved {
                Ok(value) => results[item] = Some(Ok(value)),
                // A failed element is an outcome; a failed save is not.
                Err(error) if collect && error.item().is_some() => {
                    results[item] = Some(Err(ItemError {
                        item,
                        attempts: error.attempt(),
                        message: error.kind().to_string(),
                        retryable: error.is_retryable(),
                    }));
                }
                Err(error) => {
                    drop(running);
                    self.end(index, false, None);
                    return Err(error.with_completed(finished(def.key, &results)));
                }
            }
        }
        self.end(index, true, None);
        Ok(results.into_iter().flatten().collect())
    }
}

impl RunCx {
    /// Updates the record of element `item` of map step `index`.
    fn item(&self, index: usize, item: usize, update: impl FnOnce(&mut ItemRecord)) {
        self.shared.record(index, |record| {
            if let Some(row) = record.items.get_mut(item) {
                update(row);
            }
        });
    }

    /// Records how element `item` ended, and tells listeners.
    fn item_ended(&self, step: &'static str, index: usize, item: usize, how: Ended) {
        let Ended {
            ok,
            attempts,
            finished_at,
        } = how;
        let mut ended = None;
        self.item(index, item, |row| {
            row.finished_at = Some(finished_at);
            row.attempts = attempts;
            row.status = if ok {
                StepStatus::Succeeded
            } else {
                StepStatus::Failed
            };
            ended = Some((row.usage, row.cost_usd));
        });
        if let Some((usage, cost_usd)) = ended {
            self.shared.emit(|| EventKind::ItemFinished {
                step,
                index,
                item,
                succeeded: ok,
                attempts,
                usage,
                cost_usd,
            });
        }
    }
}

/// How one element ended.
struct Ended {
    ok: bool,
    attempts: u32,
    finished_at: Duration,
}

/// A failed map's context: its key, with each finished element's output
/// (`null` for the others).
fn finished<T: Serialize>(
    key: &str,
    results: &[Option<Result<T, ItemError>>],
) -> serde_json::Map<String, Value> {
    let values = results
        .iter()
        .map(|value| match value {
            Some(Ok(value)) => serde_json::to_value(value).unwrap_or(Value::Null),
            _ => Value::Null,
        })
        .collect();
    let mut context = serde_json::Map::new();
    context.insert(key.to_owned(), Value::Array(values));
    context
}

/// The unit (iteration) of element `item`: elements count from 1, as
/// iterations do; 0 is the step's whole output.
fn unit(item: usize) -> u32 {
    u32::try_from(item).map_or(u32::MAX, |item| item.saturating_add(1))
}
