//! Durable runs: the [`CheckpointStore`] trait, what it stores, and an
//! in-memory store. The SQLite store (feature `sqlite`, on by default) is
//! [`SqliteStore`](crate::SqliteStore).
//!
//! The executor's unit of durability is *one step attempt whose typed output
//! is recorded once*: when a step succeeds, its output is serialized and saved
//! under (run id, step key, iteration) **before** any other step can read it.
//! Resuming a run restores every saved output instead of running its step, so
//! a step whose output was saved is never run again, and a step that was in
//! flight when the process died runs at most once more. Another backend (a
//! durable-execution engine's journal) implements the same trait.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, PoisonError};

use crate::ids::RunId;
use crate::llm::BoxFuture;

/// How a run stands in a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredStatus {
    /// Started and not finished (it may have crashed).
    Running,
    /// Finished with its output.
    Completed,
    /// Stopped by a failed step.
    Failed,
    /// Its future was dropped.
    Cancelled,
}

impl StoredStatus {
    /// The status's name in stores.
    pub fn as_str(self) -> &'static str {
        match self {
            StoredStatus::Running => "running",
            StoredStatus::Completed => "completed",
            StoredStatus::Failed => "failed",
            StoredStatus::Cancelled => "cancelled",
        }
    }

    /// The status from its name.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "running" => StoredStatus::Running,
            "completed" => StoredStatus::Completed,
            "failed" => StoredStatus::Failed,
            "cancelled" => StoredStatus::Cancelled,
            _ => return None,
        })
    }
}

/// A run as it is first recorded.
#[derive(Debug, Clone, Copy)]
pub struct NewRun<'a> {
    /// Its id.
    pub run_id: RunId,
    /// The chain's name.
    pub chain: &'a str,
    /// The fingerprint of the chain's definition when the run started.
    pub fingerprint: u64,
    /// The run's input, as JSON.
    pub input: &'a [u8],
}

/// A run read back from a store.
#[derive(Debug, Clone)]
pub struct SavedRun {
    /// The chain's name.
    pub chain: String,
    /// The fingerprint of the chain's definition when the run started.
    pub fingerprint: u64,
    /// The run's input, as JSON.
    pub input: Vec<u8>,
    /// How it stands.
    pub status: StoredStatus,
    /// Saved step outputs (JSON) by (step key, iteration); iteration 0 is a
    /// step's final output, 1.. a loop step's iterations.
    pub steps: HashMap<(String, u32), Vec<u8>>,
}

/// What went wrong with a store; a run never proceeds on a value it could not
/// read back intact.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store could not be read or written.
    #[error("checkpoint store I/O failed: {0}")]
    Io(String),
    /// A record failed its integrity check, or is not what it claims.
    #[error("checkpoint store holds a corrupt record ({0}); it was not loaded")]
    Corrupt(String),
}

/// Where checkpoints live. Object-safe: a [`Runtime`](crate::Runtime) holds
/// one as `Arc<dyn CheckpointStore>`.
pub trait CheckpointStore: Send + Sync + 'static {
    /// Records a new run.
    fn start_run<'a>(&'a self, run: NewRun<'a>) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Reads a run and its saved outputs; `None` if the store has no such run.
    fn load_run(&self, run_id: RunId) -> BoxFuture<'_, Result<Option<SavedRun>, StoreError>>;

    /// Saves one step output. It is durable when the future completes.
    fn save_step<'a>(
        &'a self,
        run_id: RunId,
        key: &'a str,
        iteration: u32,
        output: &'a [u8],
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Records how the run ended.
    fn finish_run(
        &self,
        run_id: RunId,
        status: StoredStatus,
    ) -> BoxFuture<'_, Result<(), StoreError>>;

    /// A cached step output, if one is stored under `key` and not expired at `now_unix_ms`.
    fn cache_get<'a>(
        &'a self,
        key: &'a str,
        now_unix_ms: u64,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>>;

    /// Caches a step output under `key` until `expires_unix_ms`.
    fn cache_put<'a>(
        &'a self,
        key: &'a str,
        output: &'a [u8],
        expires_unix_ms: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>>;
}

#[cfg(test)]
const _: Option<&dyn CheckpointStore> = None;

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
            None => Err(StoreError::Io(format!("no run {run_id} in the store"))),
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

/// FNV-1a, 64 bits: checksums of stored records and hashes of step inputs.
pub(crate) fn fnv1a(bytes: &[u8], seed: u64) -> u64 {
    let mut hash = seed ^ 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}
