//! [`MemoryStore`]: checkpoints in memory, for tests and for resuming runs
//! that failed without the process dying.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, PoisonError};

use super::{BoxFuture, CheckpointStore, NewRun, SavedRun, StoreError, StoredStatus};
use crate::ids::RunId;

/// A store in memory: for tests, and for resuming runs that failed without
/// the process dying.
#[derive(Default)]
pub struct MemoryStore {
    runs: Mutex<HashMap<RunId, SavedRun>>,
    cache: Mutex<HashMap<String, (Vec<u8>, u64)>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let runs = self
            .runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        f.debug_struct("MemoryStore")
            .field("runs", &runs)
            .finish_non_exhaustive()
    }
}

impl CheckpointStore for MemoryStore {
    fn start_run<'a>(&'a self, run: NewRun<'a>) -> BoxFuture<'a, Result<(), StoreError>> {
        let mut runs = self.runs.lock().unwrap_or_else(PoisonError::into_inner);
        runs.entry(run.run_id).or_insert_with(|| SavedRun {
            chain: run.chain.to_owned(),
            fingerprint: run.fingerprint,
            input: run.input.to_vec(),
            status: StoredStatus::Running,
            steps: HashMap::new(),
        });
        Box::pin(async { Ok(()) })
    }

    fn load_run(&self, run_id: RunId) -> BoxFuture<'_, Result<Option<SavedRun>, StoreError>> {
        let run = self
            .runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&run_id)
            .cloned();
        Box::pin(async { Ok(run) })
    }

    fn save_step<'a>(
        &'a self,
        run_id: RunId,
        key: &'a str,
        iteration: u32,
        output: &'a [u8],
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let mut runs = self.runs.lock().unwrap_or_else(PoisonError::into_inner);
        let result = match runs.get_mut(&run_id) {
            Some(run) => {
                run.steps
                    .insert((key.to_owned(), iteration), output.to_vec());
                Ok(())
            }
            None => Err(StoreError::NotFound { run_id }),
        };
        Box::pin(async { result })
    }

    fn finish_run(
        &self,
        run_id: RunId,
        status: StoredStatus,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        if let Some(run) = self
            .runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(&run_id)
        {
            run.status = status;
        }
        Box::pin(async { Ok(()) })
    }

    fn cache_get<'a>(
        &'a self,
        key: &'a str,
        now_unix_ms: u64,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        let hit = self
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .filter(|(_, expires)| *expires > now_unix_ms)
            .map(|(output, _)| output.clone());
        Box::pin(async { Ok(hit) })
    }

    fn cache_put<'a>(
        &'a self,
        key: &'a str,
        output: &'a [u8],
        expires_unix_ms: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.to_owned(), (output.to_vec(), expires_unix_ms));
        Box::pin(async { Ok(()) })
    }
}
