//! The deferred durability modes ([`Durability::Batched`] and
//! [`Durability::Exit`]): a run's outputs wait here in the order they were
//! produced and reach the store in that order — in the background within
//! `max_delay`, or when the run ends. Batches are written one after another,
//! so what a crash keeps is a prefix of what the run produced.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::ids::RunId;
use crate::store::{CheckpointStore, Durability, Saved, StoreError, UnitOutput};

/// One run's outputs not yet written. Cheap to clone (a handle).
#[derive(Clone)]
pub(crate) struct Journal {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn CheckpointStore>,
    run_id: RunId,
    /// How long an output may wait (batched mode); `None`: until the end.
    max_delay: Option<Duration>,
    state: Mutex<State>,
    /// Held while a batch is written, so batches land in order.
    writing: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct State {
    pending: Vec<UnitOutput>,
    /// Whether a background write is scheduled (batched mode).
    scheduled: bool,
    /// The first failed write: every later unit, and the run's end, fail with it.
    failed: Option<StoreError>,
}

impl Journal {
    /// The journal of run `run_id` in `mode`; `None` in the sync mode, where
    /// every output is written at once.
    pub(crate) fn new(
        mode: Durability,
        store: &Arc<dyn CheckpointStore>,
        run_id: RunId,
    ) -> Option<Self> {
        let max_delay = match mode {
            Durability::Batched { max_delay } => Some(max_delay),
            Durability::Exit => None,
            Durability::Sync => return None,
        };
        Some(Self {
            inner: Arc::new(Inner {
                store: Arc::clone(store),
                run_id,
                max_delay,
                state: Mutex::new(State::default()),
                writing: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// Queues a unit's output (in batched mode, a write within `max_delay`
    /// is scheduled); fails if an earlier write of this run failed.
    pub(crate) fn defer(&self, key: &str, iteration: u32, output: &[u8]) -> Result<(), StoreError> {
        let schedule = {
            let mut state = self.inner.state();
            if let Some(error) = &state.failed {
                return Err(error.clone());
            }
            state.pending.push(UnitOutput {
                key: key.to_owned(),
                iteration,
                output: output.to_vec(),
            });
            self.inner.max_delay.is_some() && !std::mem::replace(&mut state.scheduled, true)
        };
        if let (true, Some(delay)) = (schedule, self.inner.max_delay) {
            match tokio::runtime::Handle::try_current() {
                Ok(handle) => {
                    let inner = Arc::clone(&self.inner);
                    drop(handle.spawn(async move {
                        tokio::time::sleep(delay).await;
                        inner.flush().await;
                    }));
                }
                // No tokio runtime to write in the background: the outputs
                // are written when the run ends.
                Err(_) => self.inner.state().scheduled = false,
            }
        }
        Ok(())
    }

    /// Writes every queued output now, then reports this run's first failed
    /// write, if any.
    pub(crate) async fn drain(&self) -> Result<(), StoreError> {
        self.inner.flush().await;
        self.inner.state().failed.clone().map_or(Ok(()), Err)
    }
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes what is queued as one batch (after the batch being written,
    /// if any); a failure is kept for the run to fail with.
    async fn flush(&self) {
        let _writing = self.writing.lock().await;
        let units = {
            let mut state = self.state();
            state.scheduled = false;
            if state.failed.is_some() {
                return;
            }
            std::mem::take(&mut state.pending)
        };
        if units.is_empty() {
            return;
        }
        let failure = match self.store.save_steps(self.run_id, &units).await {
            Err(error) => Some(error),
            // Another writer recorded a different output for one of these
            // units first (this run's lease was lost): the run stops, so it
            // is driven once and never on two histories.
            Ok(saved) => saved
                .iter()
                .zip(&units)
                .any(|(saved, unit)| matches!(saved, Saved::Existing(first) if *first != unit.output))
                .then_some(StoreError::LeaseLost {
                    run_id: self.run_id,
                }),
        };
        if let Some(error) = failure {
            tracing::warn!(run_id = %self.run_id, %error, "writing the run's deferred outputs failed");
            self.state().failed.get_or_insert(error);
        }
    }
}
