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
use super::cache::CacheEntry;
use super::run::RunCx;
use crate::context::StepCx;
use crate::error::{ChainError, StepResult};
use crate::events::EventKind;
use crate::looping::ItemError;
use crate::report::{ItemRecord, StepStatus};

/// Items in flight when a map step sets no `concurrency = N`.
pub(crate) const DEFAULT_CONCURRENCY: u32 = 8;

/// What happens to each element besides its attempts: its cache key (the
/// hash of its inputs, with `cache = ...`) and its fallback (`fallback = f`).
struct PerElement<H, D> {
    inputs: Option<H>,
    fallback: Option<D>,
    collect: bool,
}

/// How one element's run ended, before it is saved.
enum Ran<T> {
    /// Its attempts (or a fallback) answered, or it failed for good.
    Attempted {
        attempted: Result<Attempted<T>, ChainError>,
        fell_back: Option<String>,
        cache: Option<CacheEntry>,
    },
    /// The step-result cache answered.
    Cached(T),
}

impl RunCx {
    /// Runs map step `index` over `items`: `call` runs once per element
    /// (each with the step's attempts, validation and re-asks, deadline,
    /// fallbacks and cache, under its own unit address: element `i` is
    /// iteration `i + 1`), at most the step's `concurrency` at a time; the
    /// results come back in input order. `inputs` hashes an element with
    /// the shared inputs for the cache; `fallback` answers for an element
    /// whose retries are spent. Elements saved by an earlier execution of
    /// the run are restored, not run. The first element that fails for good
    /// stops the map (the others in flight are cancelled): the error names
    /// it, and its context holds the finished elements (`null` for the
    /// others).
    pub async fn map<'a, E, T, F, Fut, V, H, D>(
        &self,
        index: usize,
        items: &'a [E],
        call: F,
        validate: V,
        inputs: Option<H>,
        fallback: Option<D>,
    ) -> Result<Vec<T>, ChainError>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
        F: Fn(StepCx, &'a E) -> Fut,
        Fut: Future<Output = StepResult<T>>,
        V: Fn(&T) -> Result<(), String>,
        H: Fn(&E) -> u64,
        D: Fn() -> T,
    {
        let each = PerElement {
            inputs,
            fallback,
            collect: false,
        };
        if let Some(answer) = self.stub_for::<T>(index)? {
            let call = move |cx: StepCx, _: &'a E| std::future::ready(answer(&cx));
            let results = Box::pin(self.map_units(index, items, call, validate, each)).await?;
            return Ok(results.into_iter().filter_map(Result::ok).collect());
        }
        let results = self.map_units(index, items, call, validate, each).await?;
        Ok(results.into_iter().filter_map(Result::ok).collect())
    }

    /// [`RunCx::map`] for `on_error = collect`: an element that fails for
    /// good is an [`ItemError`] in its place, and the others go on. Failed
    /// elements are not journaled, so a resumed run tries them again.
    pub async fn map_collect<'a, E, T, F, Fut, V, H, D>(
        &self,
        index: usize,
        items: &'a [E],
        call: F,
        validate: V,
        inputs: Option<H>,
        fallback: Option<D>,
    ) -> Result<Vec<Result<T, ItemError>>, ChainError>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
        F: Fn(StepCx, &'a E) -> Fut,
        Fut: Future<Output = StepResult<T>>,
        V: Fn(&T) -> Result<(), String>,
        H: Fn(&E) -> u64,
        D: Fn() -> T,
    {
        let each = PerElement {
            inputs,
            fallback,
            collect: true,
        };
        if let Some(answer) = self.stub_for::<T>(index)? {
            let call = move |cx: StepCx, _: &'a E| std::future::ready(answer(&cx));
            return Box::pin(self.map_units(index, items, call, validate, each)).await;
        }
        self.map_units(index, items, call, validate, each).await
    }

    /// The map itself; with `collect`, a failed element is kept as an
    /// [`ItemError`] instead of stopping the map.
    async fn map_units<'a, E, T, F, Fut, V, H, D>(
        &self,
        index: usize,
        items: &'a [E],
        call: F,
        validate: V,
        each: PerElement<H, D>,
    ) -> Result<Vec<Result<T, ItemError>>, ChainError>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
        F: Fn(StepCx, &'a E) -> Fut,
        Fut: Future<Output = StepResult<T>>,
        V: Fn(&T) -> Result<(), String>,
        H: Fn(&E) -> u64,
        D: Fn() -> T,
    {
        // Executing until it returns (for suspension: see `join_steps`).
        let _active = self.shared.activity.begin();
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
        let measure_outputs = self.shared.runtime.observation().measure_outputs();
        // With a store the saved bytes are measured, not the value.
        let measure = measure_outputs && self.store().is_none();
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
        // One element's run; its future exists only while it runs.
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
            let (call, validate, each) = (&call, &validate, &each);
            async move {
                let cache = each
                    .inputs
                    .as_ref()
                    .and_then(|hash| self.cache_for(def, Some(hash(element))));
                if let Some(entry) = &cache {
                    match self.cache_get::<T>(def, index, entry).await {
                        Ok(Some(value)) => return (item, Ran::Cached(value)),
                        Ok(None) => {}
                        Err(error) => {
                            let ran = Ran::Attempted {
                                attempted: Err(error),
                                fell_back: None,
                                cache: None,
                            };
                            return (item, ran);
                        }
                    }
                }
                let default = each.fallback.as_ref().map(|default| move || default());
                let mut call = move |cx| call(cx, element);
                let (attempted, fell_back) = self.settle(what, &mut call, validate, default).await;
                let ran = Ran::Attempted {
                    attempted,
                    fell_back,
                    cache,
                };
                (item, ran)
            }
        };
        let missing: Vec<usize> = (0..items.len())
            .filter(|&item| results[item].is_none())
            .collect();
        let mut waiting = missing.into_iter();
        // Only the elements that woke are polled.
        let mut running = FuturesUnordered::new();
        let mut suspended: Option<ChainError> = None;
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
            let Some((item, ran)) = running.next().await else {
                break;
            };
            let (attempted, fell_back, cache, status) = match ran {
                Ran::Attempted {
                    attempted,
                    fell_back,
                    cache,
                } => (attempted, fell_back, cache, StepStatus::Succeeded),
                Ran::Cached(value) => {
                    let cached = Attempted {
                        value,
                        attempts: 0,
                        finished_at: self.now(),
                    };
                    (Ok(cached), None, None, StepStatus::Cached)
                }
            };
            let (attempts, finished_at) = match &attempted {
                Ok(done) => (done.attempts, done.finished_at),
                Err(error) => (error.attempt(), self.now()),
            };
            let saved = match attempted {
                Ok(done) => self
                    .persist(def, index, unit(item), done.value, cache.as_ref())
                    .await
                    .map(|(value, size)| {
                        if measure_outputs && let Some(size) = size {
                            self.element_size(index, size);
                        }
                        value
                    }),
                Err(error) => Err(error.with_item(item)),
            };
            // An element whose sub-chain suspended waits; the others go on,
            // and the map suspends with every question once they are done.
            let saved = match saved {
                Err(error) if error.is_suspension() => {
                    self.item(index, item, |row| row.status = StepStatus::Waiting);
                    suspended = Some(match suspended.take() {
                        Some(first) => first.merge_suspension(error),
                        None => error,
                    });
                    continue;
                }
                saved => saved,
            };
            let ended = Ended {
                status: if saved.is_ok() {
                    status
                } else {
                    StepStatus::Failed
                },
                attempts,
                finished_at,
                fallback: fell_back,
            };
            self.item_ended(def.name, index, item, ended);
            match saved {
                Ok(value) => results[item] = Some(Ok(value)),
                // A failed element is an outcome; a failed save is not.
                Err(error) if each.collect && error.item().is_some() => {
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
        if let Some(error) = suspended {
            self.end_by(index, &error);
            return Err(error);
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

    /// Adds element output of `bytes` to map step `index`'s output size.
    fn element_size(&self, index: usize, bytes: u64) {
        self.shared.record(index, |record| {
            record.output_bytes = Some(with_element(record.output_bytes, bytes));
        });
    }

    /// Records how element `item` ended, and tells listeners.
    fn item_ended(&self, step: &'static str, index: usize, item: usize, how: Ended) {
        let Ended {
            status,
            attempts,
            finished_at,
            fallback,
        } = how;
        let mut ended = None;
        self.item(index, item, |row| {
            row.finished_at = Some(finished_at);
            row.attempts = attempts;
            row.status = status;
            row.fallback.clone_from(&fallback);
            ended = Some((row.usage, row.cost_usd));
        });
        if let Some((usage, cost_usd)) = ended {
            self.shared.emit(|| EventKind::ItemFinished {
                step,
                index,
                item,
                succeeded: status != StepStatus::Failed,
                cached: status == StepStatus::Cached,
                fallback: fallback.clone(),
                attempts,
                usage,
                cost_usd,
            });
        }
    }
}

/// How one element ended.
struct Ended {
    status: StepStatus,
    attempts: u32,
    finished_at: Duration,
    fallback: Option<String>,
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

/// A map step's output size (`so_far`, `None` before its first element)
/// with one more element of `bytes`: `[a,b]` is each element, its separator
/// or opening bracket, and the closing bracket counted with the first.
pub(super) fn with_element(so_far: Option<u64>, bytes: u64) -> u64 {
    so_far.unwrap_or(1) + bytes + 1
}

/// The unit (iteration) of element `item`: elements count from 1, as
/// iterations do; 0 is the step's whole output.
fn unit(item: usize) -> u32 {
    u32::try_from(item).map_or(u32::MAX, |item| item.saturating_add(1))
}
