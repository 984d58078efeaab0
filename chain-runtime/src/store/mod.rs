//! Durable runs: the [`CheckpointStore`] trait, what it stores, the
//! in-memory [`MemoryStore`] and (feature `sqlite`, on by default) the
//! embedded `SqliteStore`.
//!
//! The executor's unit of durability is *one step attempt whose typed output
//! is recorded once*: when a step succeeds, its output is serialized and saved
//! under (run id, step key, iteration) **before** any other step can read it.
//! Resuming a run restores every saved output instead of running its step, so
//! a step whose output was saved is never run again, and a step that was in
//! flight when the process died runs at most once more. Another backend (a
//! durable-execution engine's journal) implements the same trait.

mod memory;
#[cfg(feature = "sqlite")]
mod sqlite;

use std::collections::HashMap;

pub use crate::future::BoxFuture;
use crate::ids::RunId;
pub use memory::MemoryStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;

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
    /// The store has no run with this id (resuming a run that never started
    /// here, or was deleted).
    #[error("the checkpoint store has no run {run_id}")]
    NotFound {
        /// The run asked for.
        run_id: RunId,
    },
    /// The runtime has no store, so runs cannot be resumed.
    #[error(
        "this runtime has no checkpoint store; add one with `Runtime::builder().checkpoints(...)`"
    )]
    NoStore,
    /// A value could not be serialized for the store.
    #[error("a value could not be serialized for the checkpoint store: {0}")]
    Encode(String),
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

/// FNV-1a, 64 bits: checksums of stored records and hashes of step inputs.
pub(crate) fn fnv1a(bytes: &[u8], seed: u64) -> u64 {
    let mut hash = seed ^ 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}
