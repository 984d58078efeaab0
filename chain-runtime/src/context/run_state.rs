//! The state one run shares with its steps: identity, records for the
//! report, the event sink, what was restored from the store, and what the
//! run has spent.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::definition::ChainDef;
use crate::events::{Event, EventKind, EventSink};
use crate::ids::{RunId, unix_ms};
use crate::limits::Spent;
use crate::llm::{Usage, add_cost};
use crate::report::{RouteRecord, StepRecord};
use crate::runtime::Runtime;
use crate::store::{CheckpointStore, Saved, StoreError};

/// Where a sub-chain's run hangs in its parent: the parent's run, and the
/// step calling it (its index, iteration and the call's ordinal in the step).
#[derive(Clone)]
pub(crate) struct Parent {
    pub(crate) run: Arc<RunShared>,
    /// The calling step's index in the parent chain.
    pub(crate) index: usize,
    /// The calling step's loop iteration.
    pub(crate) iteration: u32,
    /// Which call of the calling step's attempt this is, from 0.
    pub(crate) ordinal: u32,
}

/// The state of one run, shared by its steps.
pub(crate) struct RunShared {
    pub(crate) id: RunId,
    pub(crate) runtime: Runtime,
    pub(crate) chain: &'static ChainDef,
    pub(crate) parent: Option<RunId>,
    /// The step of the parent run this sub-chain's usage rolls up into.
    pub(crate) parent_link: Option<Parent>,
    parent_path: Option<Arc<str>>,
    path: OnceLock<Arc<str>>,
    started: Instant,
    /// The last clock reading (as nanoseconds since the start, plus one),
    /// while only executor code has run since; 0 when none is fresh.
    fresh: AtomicU64,
    started_unix_ms: u64,
    records: Mutex<Vec<StepRecord>>,
    routes: Mutex<Vec<RouteRecord>>,
    sink: Option<EventSink>,
    /// Whether anyone listens: events are only built when true.
    observed: bool,
    pub(crate) span: tracing::Span,
    /// Step outputs read back from the checkpoint store, by (key, iteration).
    restored: Mutex<HashMap<(String, u32), Vec<u8>>>,
    /// Tokens and cost spent, shared with sub-chains (for the run budget).
    pub(crate) spent: Arc<Spent>,
    /// Per unit of a step (its index and iteration or element), the calls
    /// (sub-chains) its current attempt has made: `(attempt, calls)`. Keyed
    /// by unit, because a map's elements run at once.
    calls: Mutex<HashMap<(usize, u32), (u32, u32)>>,
    /// Which steps execute now (for suspension).
    pub(crate) activity: super::activity::Activity,
    /// Outputs not yet written, in a deferred durability mode.
    journal: Option<super::journal::Journal>,
}

impl RunShared {
    /// The state of a new run `id` of `chain`, under `parent` if it is a
    /// sub-chain; events go to the runtime's observers and to `sink` (a
    /// sub-chain without one uses its parent's).
    pub(crate) fn new(
        runtime: Runtime,
        chain: &'static ChainDef,
        id: RunId,
        parent: Option<&Parent>,
        sink: Option<EventSink>,
    ) -> Self {
        let records = chain
            .steps
            .iter()
            .enumerate()
            .map(|(index, step)| StepRecord::new(index, step.name, step.key))
            .collect();
        let routes = chain
            .routes
            .iter()
            .enumerate()
            .map(|(index, route)| RouteRecord {
                index,
                key: route.key,
                arm: None,
                decided_at: None,
            })
            .collect();
        let parent_run = parent.map(|p| &p.run);
        let sink = sink.or_else(|| parent_run.and_then(|run| run.sink.clone()));
        let observed = sink.is_some() || !runtime.observation().observers().is_empty();
        let parent_id = parent_run.map(|run| run.id);
        let journal = runtime
            .checkpointing()
            .store()
            .and_then(|store| super::journal::Journal::new(runtime.durability_mode(), store, id));
        let span = tracing::info_span!(
            "prompt_chain.run",
            run_id = %id,
            chain = chain.name,
            parent_run_id = parent_id.map(tracing::field::display),
        );
        Self {
            id,
            runtime,
            chain,
            parent: parent_id,
            parent_link: parent.cloned(),
            parent_path: parent_run.map(|run| run.path()),
            path: OnceLock::new(),
            started: Instant::now(),
            fresh: AtomicU64::new(0),
            started_unix_ms: unix_ms(),
            records: Mutex::new(records),
            routes: Mutex::new(routes),
            sink,
            observed,
            span,
            restored: Mutex::new(HashMap::new()),
            spent: parent_run.map_or_else(Default::default, |run| Arc::clone(&run.spent)),
            calls: Mutex::new(HashMap::new()),
            activity: super::activity::Activity::default(),
            journal,
        }
    }

    /// Records unit (`key`, `iteration`)'s output in `store` (this run's
    /// store): durable on return in the sync mode; queued in a deferred
    /// mode (no earlier record is seen then: the write happens later).
    pub(crate) async fn save_unit(
        &self,
        store: &dyn CheckpointStore,
        key: &str,
        iteration: u32,
        output: &[u8],
    ) -> Result<Saved, StoreError> {
        match &self.journal {
            Some(journal) => journal
                .defer(key, iteration, output)
                .map(|()| Saved::Recorded),
            None => store.save_step(self.id, key, iteration, output).await,
        }
    }

    /// The outputs this run has not written yet, in a deferred durability mode.
    pub(crate) fn journal(&self) -> Option<&super::journal::Journal> {
        self.journal.as_ref()
    }

    /// The ordinal of the next call made by `attempt` of step `index`'s
    /// unit `iteration` (iteration and attempt from 1): a new attempt replays
    /// its calls from 0.
    pub(crate) fn next_call(&self, index: usize, iteration: u32, attempt: u32) -> u32 {
        let mut calls = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = calls.entry((index, iteration)).or_insert((attempt, 0));
        if entry.0 != attempt {
            *entry = (attempt, 0);
        }
        entry.1 += 1;
        entry.1 - 1
    }

    /// The chain path: `support_router › technical_support` for a sub-chain.
    pub(crate) fn path(&self) -> Arc<str> {
        Arc::clone(self.path.get_or_init(|| match &self.parent_path {
            Some(parent) => Arc::from(format!("{parent} › {}", self.chain.name)),
            None => Arc::from(self.chain.name),
        }))
    }

    /// The root run this run is a sub-chain of (itself for a root run).
    pub(crate) fn root(&self) -> &RunShared {
        let mut run = self;
        while let Some(parent) = &run.parent_link {
            run = &parent.run;
        }
        run
    }

    /// Time since the run started.
    pub(crate) fn elapsed(&self) -> Duration {
        Instant::now().saturating_duration_since(self.started)
    }

    /// Keeps `at`, a reading just taken, for the next [`RunShared::now_or_fresh`]:
    /// a step that ends and the next one that starts in the same pass of
    /// the join share one reading (only executor code runs between them).
    pub(crate) fn keep_fresh(&self, at: Duration) {
        let nanos = u64::try_from(at.as_nanos()).unwrap_or(u64::MAX - 1);
        self.fresh.store(nanos + 1, Ordering::Relaxed);
    }

    /// Forgets the kept reading: user code is about to run, or the run was
    /// woken (time passed).
    #[inline]
    pub(crate) fn stale(&self) {
        self.fresh.store(0, Ordering::Relaxed);
    }

    /// The kept reading if it is still fresh (taking it), else the clock.
    pub(crate) fn now_or_fresh(&self) -> Duration {
        match self.fresh.swap(0, Ordering::Relaxed) {
            0 => self.elapsed(),
            nanos => Duration::from_nanos(nanos - 1),
        }
    }

    /// Whether events are wanted at all.
    pub(crate) fn observed(&self) -> bool {
        self.observed
    }

    /// Sends an event to the runtime's observers and the run's stream; the
    /// event is only built when someone listens.
    #[inline]
    pub(crate) fn emit(&self, kind: impl FnOnce() -> EventKind) {
        if self.observed {
            self.send(kind());
        }
    }

    /// Stamps and delivers an event (the cold half of [`RunShared::emit`]).
    fn send(&self, kind: EventKind) {
        let elapsed = self.elapsed();
        let event = Event {
            run_id: self.id,
            parent_run_id: self.parent,
            chain_path: self.path(),
            elapsed,
            unix_ms: self.started_unix_ms + elapsed.as_millis() as u64,
            kind,
        };
        for observer in self.runtime.observation().observers() {
            observer.on_event(&event);
        }
        if let Some(sink) = &self.sink {
            sink.send(&event);
        }
        // Observers are user code: the clock reading is no longer fresh.
        self.stale();
    }

    /// Updates the record of step `index` (ignored for an unknown index).
    #[inline]
    pub(crate) fn record<R>(
        &self,
        index: usize,
        update: impl FnOnce(&mut StepRecord) -> R,
    ) -> Option<R> {
        self.records().get_mut(index).map(update)
    }

    /// Counts a model call's tokens (and their cost) into the run's budget
    /// and into the record of step `index`. When this run has ended (a
    /// sub-chain cancelled while the call was in flight), they go to the
    /// step that called it, up the chain of callers: counted once, where
    /// the report still shows them.
    /// For a map step, `unit` is the element's (its iteration): the
    /// element's own record counts them too.
    pub(crate) fn count_usage(&self, index: usize, unit: u32, usage: Usage, cost_usd: Option<f64>) {
        self.spent.add(usage.total(), cost_usd);
        let (mut run, mut index, mut unit) = (self, index, unit);
        loop {
            let counted = run.record(index, |record| add_usage(record, unit, usage, cost_usd));
            match (counted, &run.parent_link) {
                (None, Some(parent)) => {
                    (run, index, unit) = (&parent.run, parent.index, parent.iteration);
                }
                _ => return,
            }
        }
    }

    /// Every step's record, locked.
    pub(crate) fn records(&self) -> MutexGuard<'_, Vec<StepRecord>> {
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every route's record, locked.
    pub(crate) fn routes(&self) -> MutexGuard<'_, Vec<RouteRecord>> {
        self.routes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What a resumed run read back from the store, locked.
    pub(crate) fn restored(&self) -> MutexGuard<'_, HashMap<(String, u32), Vec<u8>>> {
        self.restored.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Adds a model call's tokens to a step's record and, for a map step, to
/// the record of the element running as `unit` (its iteration).
pub(crate) fn add_usage(record: &mut StepRecord, unit: u32, usage: Usage, cost_usd: Option<f64>) {
    record.usage = record.usage + usage;
    record.cost_usd = add_cost(record.cost_usd, cost_usd);
    if let Some(item) = (unit as usize)
        .checked_sub(1)
        .and_then(|item| record.items.get_mut(item))
    {
        item.usage = item.usage + usage;
        item.cost_usd = add_cost(item.cost_usd, cost_usd);
    }
}
