//! Durability: recording a run in the checkpoint store, restoring a resumed
//! run's saved outputs, and saving each output before anyone can read it.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::lease::LeaseKeeper;
use super::run::{RunCx, RunOptions, Start};
use crate::context::Parent;
use crate::definition::{ChainDef, StepDef};
use crate::error::{ChainError, FailureKind};
use crate::ids::{RunId, unix_ms};
use crate::report::{Outcome, RunOutcome};
use crate::runtime::Runtime;
use crate::store::{
    CheckpointStore, Claim, Lease, NewRun, Saved, SavedRun, StoreError, StoredStatus,
};

impl RunCx {
    /// The store, if this run is durable.
    pub(super) fn store(&self) -> Option<&Arc<dyn CheckpointStore>> {
        self.shared.runtime.checkpointing().store()
    }

    /// Records the run in the store, or finds it there: a fresh run is
    /// recorded as ours; a named or resumed one is claimed (waiting while
    /// another owner's lease is alive) and its recorded units become
    /// restorable. A sub-chain is driven by its parent's owner. Without a
    /// store, nothing.
    pub(super) async fn open<I: Serialize>(
        &mut self,
        start: Start,
        input: &I,
    ) -> Result<(), FailureKind> {
        let Some(store) = self.store().cloned() else {
            return Ok(());
        };
        let (id, chain) = (self.shared.id, self.shared.chain);
        let encode = || {
            serde_json::to_vec(input)
                .map_err(|error| FailureKind::Checkpoint(StoreError::Encode(error.to_string())))
        };
        let lease_for = self.shared.runtime.checkpointing().lease();
        let lease_ms = u64::try_from(lease_for.as_millis()).unwrap_or(u64::MAX);
        if let Some(parent) = &self.shared.parent_link {
            let saved = store.load_run(id).await.map_err(FailureKind::Checkpoint)?;
            if let Some(saved) = saved {
                replayed_call(parent, &saved, chain.name, input)?;
                return self.restore_from(saved);
            }
            let input = encode()?;
            let new = NewRun {
                run_id: id,
                parent: Some(parent.run.id),
                chain: chain.name,
                fingerprint: chain.fingerprint,
                input: &input,
                started_unix_ms: unix_ms(),
                lease: None,
            };
            return store.start_run(new).await.map_err(FailureKind::Checkpoint);
        }
        let owner: Arc<str> = Arc::from(format!(
            "{}:{:016x}",
            std::process::id(),
            RunId::new().hash64()
        ));
        self.owner = Some(Arc::clone(&owner));
        if start == Start::Fresh {
            // A fresh id is nobody else's: record it as ours in one write.
            let input = encode()?;
            let now = unix_ms();
            let new = NewRun {
                run_id: id,
                parent: None,
                chain: chain.name,
                fingerprint: chain.fingerprint,
                input: &input,
                started_unix_ms: now,
                lease: Some(Lease {
                    owner: &owner,
                    until_unix_ms: now.saturating_add(lease_ms),
                }),
            };
            return store.start_run(new).await.map_err(FailureKind::Checkpoint);
        }
        // Refuse a changed definition or input before taking the run, so a
        // refused start leaves the run as it was (and free).
        let known = store.load_run(id).await.map_err(FailureKind::Checkpoint)?;
        if let Some(saved) = &known {
            self.check_definition(saved)?;
            if start == Start::Named && !inputs(input, saved).same() {
                return Err(FailureKind::InputChanged { run_id: id });
            }
        } else if start == Start::Resume {
            return Err(FailureKind::Checkpoint(StoreError::NotFound { run_id: id }));
        }
        // A completed run has every unit its output needs: attaching to it
        // restores them and writes nothing, so it needs no lease.
        if let Some(saved) = known
            && saved.status == StoredStatus::Completed
        {
            self.owner = None;
            self.record_end = false;
            return self.restore_from(saved);
        }
        let mut waited = Duration::from_millis(10);
        loop {
            let now = unix_ms();
            let lease = Lease {
                owner: &owner,
                until_unix_ms: now.saturating_add(lease_ms),
            };
            match store
                .claim_run(id, lease, now)
                .await
                .map_err(FailureKind::Checkpoint)?
            {
                Claim::Owned => break,
                Claim::Missing if start == Start::Resume => {
                    return Err(FailureKind::Checkpoint(StoreError::NotFound { run_id: id }));
                }
                Claim::Missing => {
                    // Recorded as ours; another starter racing us may have
                    // recorded it first, so the claim decides.
                    let input = encode()?;
                    let new = NewRun {
                        run_id: id,
                        parent: None,
                        chain: chain.name,
                        fingerprint: chain.fingerprint,
                        input: &input,
                        started_unix_ms: now,
                        lease: Some(lease),
                    };
                    store
                        .start_run(new)
                        .await
                        .map_err(FailureKind::Checkpoint)?;
                }
                // Another owner drives it: wait for it to end, or for its
                // lease to run out, then attach.
                Claim::Busy { until_unix_ms } => {
                    let until = Duration::from_millis(until_unix_ms.saturating_sub(now));
                    tokio::time::sleep(waited.min(until).max(Duration::from_millis(1))).await;
                    waited = (waited * 2).min(Duration::from_millis(200));
                }
            }
        }
        let saved = store
            .load_run(id)
            .await
            .map_err(FailureKind::Checkpoint)?
            .ok_or(FailureKind::Checkpoint(StoreError::NotFound { run_id: id }))?;
        self.restore_from(saved)
    }

    /// Makes a stored run's units restorable, if it is a run of this chain's
    /// definition.
    fn restore_from(&self, saved: SavedRun) -> Result<(), FailureKind> {
        self.check_definition(&saved)?;
        *self.shared.restored() = saved.steps;
        Ok(())
    }

    /// Whether a stored run was started by this chain's definition.
    fn check_definition(&self, saved: &SavedRun) -> Result<(), FailureKind> {
        let chain = self.shared.chain;
        if saved.chain != chain.name || saved.fingerprint != chain.fingerprint {
            return Err(FailureKind::DefinitionChanged {
                run_id: self.shared.id,
                chain: chain.name.to_owned(),
                stored: saved.fingerprint,
                current: chain.fingerprint,
            });
        }
        Ok(())
    }

    /// What keeps this run's lease alive while it runs, if it holds one.
    pub(super) fn lease_keeper(&self) -> Option<LeaseKeeper> {
        let store = Arc::clone(self.store()?);
        let owner = Arc::clone(self.owner.as_ref()?);
        Some(LeaseKeeper::new(
            store,
            self.shared.id,
            owner,
            self.shared.runtime.checkpointing().lease(),
            self.shared.chain.name,
        ))
    }

    /// An error of step `index` caused by the store.
    pub(super) fn checkpoint_error(
        &self,
        def: &'static StepDef,
        index: usize,
        error: StoreError,
    ) -> ChainError {
        self.step_error(def, index, FailureKind::Checkpoint(error))
    }

    /// The output saved for (`def.key`, `iteration`), if the run was resumed
    /// and has one; a record that does not read back as `T` is an error.
    pub(super) fn restore<T: DeserializeOwned>(
        &self,
        def: &'static StepDef,
        index: usize,
        iteration: u32,
    ) -> Result<Option<T>, ChainError> {
        if self.store().is_none() {
            return Ok(None);
        }
        let restored = self.shared.restored();
        let Some(bytes) = restored.get(&(def.key.to_owned(), iteration)) else {
            return Ok(None);
        };
        self.decode(def, index, bytes).map(Some)
    }

    /// Serializes an output for the store (once: the bytes are also the
    /// output's size and the cache's record).
    pub(super) fn encode<T: Serialize>(
        &self,
        def: &'static StepDef,
        index: usize,
        value: &T,
    ) -> Result<Vec<u8>, ChainError> {
        serde_json::to_vec(value).map_err(|error| {
            self.checkpoint_error(def, index, StoreError::Encode(error.to_string()))
        })
    }

    /// Saves an output's bytes; it is durable when this returns `Ok`. When
    /// the unit had a record already (another owner got there first), that
    /// record wins and its bytes are returned, to be used instead.
    pub(super) async fn save_bytes(
        &self,
        def: &'static StepDef,
        index: usize,
        iteration: u32,
        bytes: &[u8],
    ) -> Result<Option<Vec<u8>>, ChainError> {
        let Some(store) = self.store() else {
            return Ok(None);
        };
        match self
            .shared
            .save_unit(store.as_ref(), def.key, iteration, bytes)
            .await
        {
            Ok(Saved::Existing(existing)) if existing != bytes => Ok(Some(existing)),
            Ok(_) => Ok(None),
            Err(error) => Err(self.checkpoint_error(def, index, error)),
        }
    }

    /// Saves an output before anyone else can see it (no-op without a
    /// store); returns the unit's recorded value if another writer's won.
    pub(super) async fn save<T: Serialize + DeserializeOwned>(
        &self,
        def: &'static StepDef,
        index: usize,
        iteration: u32,
        value: &T,
    ) -> Result<Option<T>, ChainError> {
        if self.store().is_none() {
            return Ok(None);
        }
        let bytes = self.encode(def, index, value)?;
        match self.save_bytes(def, index, iteration, &bytes).await? {
            Some(winner) => self.decode(def, index, &winner).map(Some),
            None => Ok(None),
        }
    }

    /// Reads a recorded output back as `T`.
    pub(super) fn decode<T: DeserializeOwned>(
        &self,
        def: &'static StepDef,
        index: usize,
        bytes: &[u8],
    ) -> Result<T, ChainError> {
        serde_json::from_slice(bytes).map_err(|error| {
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

    /// Records the run's end in the store: first the outputs a deferred
    /// durability mode still holds (their failure is the run's: its result
    /// would not be durable), then how this start went (a
    /// [`RunOutcome`]: tokens, cost, `error`, steps) and the status (best
    /// effort: the outputs that matter are saved already).
    pub(super) async fn store_status(
        &self,
        status: StoredStatus,
        error: Option<&ChainError>,
    ) -> Result<(), StoreError> {
        if !self.record_end {
            return Ok(());
        }
        let Some(store) = self.store() else {
            return Ok(());
        };
        let drained = match self.shared.journal() {
            Some(journal) => journal.drain().await,
            None => Ok(()),
        };
        let (status, error) = match &drained {
            Err(failure) => (StoredStatus::Failed, Some(failure.to_string())),
            Ok(()) => (status, error.map(ToString::to_string)),
        };
        let outcome = {
            let records = self.shared.records();
            RunOutcome::new(status.as_str(), self.now(), &records, error)
        };
        let bytes = serde_json::to_vec(&outcome).unwrap_or_default();
        // Both at once, the outcome first: a store that groups writes
        // commits them together.
        let (recorded, finished) = futures_util::future::join(
            store.record_outcome(self.shared.id, &bytes),
            store.finish_run(self.shared.id, status),
        )
        .await;
        if let Err(error) = recorded {
            tracing::warn!(parent: &self.shared.span, %error, "recording the run's outcome failed");
        }
        if let Err(error) = finished {
            tracing::warn!(parent: &self.shared.span, %error, "recording the run's end failed");
        }
        drained
    }
}

impl RunCx {
    /// Records a dropped run as cancelled and frees its lease, without
    /// waiting: a store that answers at once (memory) is done here, a slower
    /// one finishes on the tokio runtime, if there is one.
    pub(super) fn record_cancelled(&self) {
        let Some(store) = self.store().filter(|_| self.record_end) else {
            return;
        };
        let (store, id) = (Arc::clone(store), self.shared.id);
        let journal = self.shared.journal().cloned();
        let mut write: crate::future::BoxFuture<'static, ()> = Box::pin(async move {
            // A deferred mode writes what the run produced before it was
            // dropped (a failure is logged where it happens).
            if let Some(journal) = journal {
                let _ = journal.drain().await;
            }
            if let Err(error) = store.finish_run(id, StoredStatus::Cancelled).await {
                tracing::warn!(run_id = %id, %error, "recording the cancelled run failed");
            }
        });
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        if write.as_mut().poll(&mut cx).is_pending()
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            drop(handle.spawn(write));
        }
    }
}

/// A run's input now and as the store recorded it, as JSON values (so a map's
/// key order does not make two equal inputs differ).
struct Compared {
    now: Option<serde_json::Value>,
    recorded: Option<serde_json::Value>,
}

impl Compared {
    /// Whether both read and are equal.
    fn same(&self) -> bool {
        self.now.is_some() && self.now == self.recorded
    }
}

/// The input of a run start and the one `saved` recorded, side by side.
fn inputs<I: Serialize>(input: &I, saved: &SavedRun) -> Compared {
    Compared {
        now: serde_json::to_value(input).ok(),
        recorded: serde_json::from_slice(&saved.input).ok(),
    }
}

/// Checks that a sub-chain call replayed at a recorded address is the call
/// the journal holds there: the same chain on the same input. A step that
/// makes its calls in another order, or with other inputs, on re-execution
/// would otherwise be handed another call's result.
fn replayed_call<I: Serialize>(
    parent: &Parent,
    saved: &SavedRun,
    chain: &'static str,
    input: &I,
) -> Result<(), FailureKind> {
    let compared = inputs(input, saved);
    if saved.chain == chain && compared.same() {
        return Ok(());
    }
    let Compared { now, recorded } = compared;
    let describe = |chain: &str, input: Option<&serde_json::Value>| {
        let input = input.map_or_else(|| "(unreadable)".to_owned(), ToString::to_string);
        format!("chain `{chain}` on {}", crate::ids::shorten(&input, 120))
    };
    Err(FailureKind::ReplayMismatch {
        step: parent
            .run
            .chain
            .steps
            .get(parent.index)
            .map_or("?", |step| step.name),
        ordinal: parent.ordinal,
        recorded: describe(&saved.chain, recorded.as_ref()),
        now: describe(chain, now.as_ref()),
    })
}

/// Reads a stored run's input; any problem becomes a failed outcome.
pub(crate) async fn load_input<I: DeserializeOwned, O>(
    runtime: &Runtime,
    chain: &'static ChainDef,
    run_id: RunId,
) -> Result<I, Outcome<O>> {
    let fail = |kind: FailureKind| {
        let options = RunOptions {
            resume: Some(run_id),
            ..RunOptions::default()
        };
        RunCx::new(runtime, chain, options).fail_now(ChainError::run_failed(chain.name, kind))
    };
    let Some(store) = runtime.checkpointing().store() else {
        return Err(fail(FailureKind::Checkpoint(StoreError::NoStore)));
    };
    match store.load_run(run_id).await {
        Ok(Some(saved)) => serde_json::from_slice(&saved.input).map_err(|error| {
            fail(FailureKind::Checkpoint(StoreError::Corrupt(format!(
                "the input of run {run_id} does not read back as chain `{}`'s input: {error}",
                chain.name
            ))))
        }),
        Ok(None) => Err(fail(FailureKind::Checkpoint(StoreError::NotFound {
            run_id,
        }))),
        Err(error) => Err(fail(FailureKind::Checkpoint(error))),
    }
}
