//! Durability: recording a run in the checkpoint store, restoring a resumed
//! run's saved outputs, and saving each output before anyone can read it.

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::run::{RunCx, RunOptions};
use crate::context::Parent;
use crate::definition::{ChainDef, StepDef};
use crate::error::{ChainError, FailureKind};
use crate::ids::RunId;
use crate::report::Outcome;
use crate::runtime::Runtime;
use crate::store::{CheckpointStore, NewRun, SavedRun, StoreError, StoredStatus};

impl RunCx {
    /// The store, if this run is durable.
    pub(super) fn store(&self) -> Option<&Arc<dyn CheckpointStore>> {
        self.shared.runtime.durability().store()
    }

    /// Records a new run in the store, or loads a resumed one (its saved
    /// outputs become restorable); without a store, nothing.
    pub(super) async fn open<I: Serialize>(
        &self,
        resume: bool,
        input: &I,
    ) -> Result<(), FailureKind> {
        let Some(store) = self.store() else {
            return Ok(());
        };
        let (id, chain) = (self.shared.id, self.shared.chain);
        match store.load_run(id).await.map_err(FailureKind::Checkpoint)? {
            Some(saved) => {
                if let Some(parent) = &self.shared.parent_link {
                    replayed_call(parent, &saved, chain.name, input)?;
                }
                if saved.chain != chain.name || saved.fingerprint != chain.fingerprint {
                    return Err(FailureKind::DefinitionChanged {
                        run_id: id,
                        chain: chain.name.to_owned(),
                        stored: saved.fingerprint,
                        current: chain.fingerprint,
                    });
                }
                *self.shared.restored() = saved.steps;
                Ok(())
            }
            None if resume => Err(FailureKind::Checkpoint(StoreError::NotFound { run_id: id })),
            None => {
                let input = serde_json::to_vec(input).map_err(|error| {
                    FailureKind::Checkpoint(StoreError::Encode(error.to_string()))
                })?;
                let new = NewRun {
                    run_id: id,
                    chain: chain.name,
                    fingerprint: chain.fingerprint,
                    input: &input,
                };
                store.start_run(new).await.map_err(FailureKind::Checkpoint)
            }
        }
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

    /// Saves an output's bytes; it is durable when this returns `Ok`.
    pub(super) async fn save_bytes(
        &self,
        def: &'static StepDef,
        index: usize,
        iteration: u32,
        bytes: &[u8],
    ) -> Result<(), ChainError> {
        let Some(store) = self.store() else {
            return Ok(());
        };
        store
            .save_step(self.shared.id, def.key, iteration, bytes)
            .await
            .map_err(|error| self.checkpoint_error(def, index, error))
    }

    /// Saves an output before anyone else can see it (no-op without a store).
    pub(super) async fn save<T: Serialize>(
        &self,
        def: &'static StepDef,
        index: usize,
        iteration: u32,
        value: &T,
    ) -> Result<(), ChainError> {
        if self.store().is_none() {
            return Ok(());
        }
        let bytes = self.encode(def, index, value)?;
        self.save_bytes(def, index, iteration, &bytes).await
    }

    /// Records the run's end in the store (best effort: the outputs that
    /// matter are saved already).
    pub(super) async fn store_status(&self, status: StoredStatus) {
        if let Some(store) = self.store()
            && let Err(error) = store.finish_run(self.shared.id, status).await
        {
            tracing::warn!(parent: &self.shared.span, %error, "recording the run's end failed");
        }
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
    let now = serde_json::to_value(input).ok();
    let recorded = serde_json::from_slice::<serde_json::Value>(&saved.input).ok();
    if saved.chain == chain && now.is_some() && now == recorded {
        return Ok(());
    }
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
    let Some(store) = runtime.durability().store() else {
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
