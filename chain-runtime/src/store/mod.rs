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

mod fork;
mod memory;
mod mode;
mod query;
#[cfg(feature = "sqlite")]
mod sqlite;

use std::collections::HashMap;

pub use crate::future::BoxFuture;
use crate::ids::RunId;
pub use fork::{UnitEdit, downstream_of, fork_run};
pub use memory::MemoryStore;
pub use mode::Durability;
pub use query::{RunQuery, RunSummary};

#[cfg(feature = "sqlite")]
pub use sqlite::{Deleted, SqliteStore, StoreSize};

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
    /// It waits for input from outside (a human step), holding no task.
    Suspended,
}

impl StoredStatus {
    /// The status's name in stores.
    pub fn as_str(self) -> &'static str {
        match self {
            StoredStatus::Running => "running",
            StoredStatus::Completed => "completed",
            StoredStatus::Failed => "failed",
            StoredStatus::Cancelled => "cancelled",
            StoredStatus::Suspended => "suspended",
        }
    }

    /// The status from its name.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "running" => StoredStatus::Running,
            "completed" => StoredStatus::Completed,
            "failed" => StoredStatus::Failed,
            "cancelled" => StoredStatus::Cancelled,
            "suspended" => StoredStatus::Suspended,
            _ => return None,
        })
    }
}

/// A run as it is first recorded.
#[derive(Debug, Clone, Copy)]
pub struct NewRun<'a> {
    /// Its id.
    pub run_id: RunId,
    /// The run that called this one as a sub-chain, if any.
    pub parent: Option<RunId>,
    /// The chain's name.
    pub chain: &'a str,
    /// The fingerprint of the chain's definition when the run started.
    pub fingerprint: u64,
    /// The run's input, as JSON.
    pub input: &'a [u8],
    /// When it started, in milliseconds since the Unix epoch.
    pub started_unix_ms: u64,
    /// Who drives it, and until when (`None` for a sub-chain, which its
    /// parent's owner drives).
    pub lease: Option<Lease<'a>>,
}

/// Ownership of a run: only the owner runs its units, until the lease
/// expires (a crashed owner's lease simply runs out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease<'a> {
    /// A token naming the owner (one per start of a run).
    pub owner: &'a str,
    /// When the lease ends, in milliseconds since the Unix epoch.
    pub until_unix_ms: u64,
}

/// The answer to [`CheckpointStore::claim_run`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Claim {
    /// The caller owns the run now (it was free, expired, finished, or
    /// already the caller's).
    Owned,
    /// Another owner holds an unexpired lease on a running run.
    Busy {
        /// When its lease ends, in milliseconds since the Unix epoch.
        until_unix_ms: u64,
    },
    /// The store has no such run.
    Missing,
}

/// Whether a unit's output was recorded, or another writer's was already.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Saved {
    /// This output is the unit's record now.
    Recorded,
    /// The unit already had a record, which stays (the first write wins):
    /// here are its bytes, to be used instead.
    Existing(Vec<u8>),
}

/// One unit's output in a batch ([`CheckpointStore::save_steps`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitOutput {
    /// The unit's key (a step key, or a unit within a step).
    pub key: String,
    /// Its iteration (0: a step's final output; 1..: a loop's iterations
    /// or a map's elements).
    pub iteration: u32,
    /// The output, as JSON.
    pub output: Vec<u8>,
}

/// A question a suspended run waits for, as the store holds it: the asking
/// run and the recorded question (a JSON [`Waiting`](crate::human::Waiting)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenQuestion {
    /// The run that asked.
    pub run_id: RunId,
    /// The question, as recorded.
    pub question: Vec<u8>,
}

/// A run read back from a store.
#[derive(Debug, Clone)]
pub struct SavedRun {
    /// The chain's name.
    pub chain: String,
    /// The run that called this one as a sub-chain, if any.
    pub parent: Option<RunId>,
    /// The fingerprint of the chain's definition when the run started.
    pub fingerprint: u64,
    /// The run's input, as JSON.
    pub input: Vec<u8>,
    /// How it stands.
    pub status: StoredStatus,
    /// When it started, in milliseconds since the Unix epoch.
    pub started_unix_ms: u64,
    /// When it was last written, in milliseconds since the Unix epoch.
    pub updated_unix_ms: u64,
    /// Saved step outputs (JSON) by (step key, iteration); iteration 0 is a
    /// step's final output, 1.. a loop step's iterations.
    pub steps: HashMap<(String, u32), Vec<u8>>,
}

/// What went wrong with a store; a run never proceeds on a value it could not
/// read back intact.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store could not be read or written.
    #[error("checkpoint store I/O failed: {0}")]
    Io(String),
    /// Another process held the store locked for longer than the store's
    /// lock timeout.
    #[error("the checkpoint store stayed locked by another process: {0}")]
    Busy(String),
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
    /// Another owner took the run over: this one's lease ran out (it was
    /// presumed dead). The run stops here so it is driven once.
    #[error(
        "another process took run {run_id} over after this one's lease ran out; this one stops so the run is driven once"
    )]
    LeaseLost {
        /// The run.
        run_id: RunId,
    },
    /// A value could not be serialized for the store.
    #[error("a value could not be serialized for the checkpoint store: {0}")]
    Encode(String),
    /// A record failed its integrity check, or is not what it claims.
    #[error("checkpoint store holds a corrupt record ({0}); it was not loaded")]
    Corrupt(String),
}

/// Where checkpoints live: the journal of every run's units. Object-safe: a
/// [`Runtime`](crate::Runtime) holds one as `Arc<dyn CheckpointStore>`.
///
/// The guarantees the executor builds on: a unit's output is durable when
/// [`save_step`](CheckpointStore::save_step) returns, and the first output
/// recorded for a unit wins; only the owner of a run's lease drives it.
pub trait CheckpointStore: Send + Sync + 'static {
    /// Records a new run (owned by `run.lease`, if given). A run that exists
    /// already is left as it is.
    fn start_run<'a>(&'a self, run: NewRun<'a>) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Takes (or renews) the lease on a run: granted when the run is free,
    /// its lease expired at `now_unix_ms`, it is no longer running, or the
    /// lease is already `lease.owner`'s.
    fn claim_run<'a>(
        &'a self,
        run_id: RunId,
        lease: Lease<'a>,
        now_unix_ms: u64,
    ) -> BoxFuture<'a, Result<Claim, StoreError>>;

    /// Reads a run and its saved outputs; `None` if the store has no such run.
    fn load_run(&self, run_id: RunId) -> BoxFuture<'_, Result<Option<SavedRun>, StoreError>>;

    /// Lists runs, newest first.
    fn list_runs<'a>(
        &'a self,
        query: &'a RunQuery,
    ) -> BoxFuture<'a, Result<Vec<RunSummary>, StoreError>>;

    /// Records one unit's output, durable when the future completes. If the
    /// unit has a record already, that record stays and is returned.
    fn save_step<'a>(
        &'a self,
        run_id: RunId,
        key: &'a str,
        iteration: u32,
        output: &'a [u8],
    ) -> BoxFuture<'a, Result<Saved, StoreError>>;

    /// Records several units' outputs of one run, in order (the batches of
    /// the deferred [`Durability`] modes), answering for each as
    /// [`save_step`](CheckpointStore::save_step) would. What a crash keeps of
    /// a batch must be a prefix of it. The default saves them one after
    /// another; a store that can write them in one transaction should.
    fn save_steps<'a>(
        &'a self,
        run_id: RunId,
        units: &'a [UnitOutput],
    ) -> BoxFuture<'a, Result<Vec<Saved>, StoreError>> {
        Box::pin(async move {
            let mut saved = Vec::with_capacity(units.len());
            for unit in units {
                saved.push(
                    self.save_step(run_id, &unit.key, unit.iteration, &unit.output)
                        .await?,
                );
            }
            Ok(saved)
        })
    }

    /// Records how the run ended, and frees its lease.
    fn finish_run(
        &self,
        run_id: RunId,
        status: StoredStatus,
    ) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Records how one start of a run ended (a JSON
    /// [`RunOutcome`](crate::report::RunOutcome): status, time, tokens, cost,
    /// error, per step), after its units and before its status; a resumed
    /// run records one per start. Best effort: the default keeps nothing.
    fn record_outcome<'a>(
        &'a self,
        run_id: RunId,
        outcome: &'a [u8],
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let _ = (run_id, outcome);
        Box::pin(async { Ok(()) })
    }

    /// The outcomes recorded for a run, oldest first (none by default).
    fn outcomes(&self, run_id: RunId) -> BoxFuture<'_, Result<Vec<Vec<u8>>, StoreError>> {
        let _ = run_id;
        Box::pin(async { Ok(Vec::new()) })
    }

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

    /// The open questions of suspended runs (sub-chains' runs included):
    /// every unit `?key` (iteration 0) of a run recorded
    /// [`Suspended`](StoredStatus::Suspended) that has no unit `key` yet,
    /// with its run. The default reads every suspended run; a store that can
    /// ask for them in one query should.
    fn open_questions(&self) -> BoxFuture<'_, Result<Vec<OpenQuestion>, StoreError>> {
        Box::pin(async move {
            let query = RunQuery::all()
                .status(StoredStatus::Suspended)
                .with_sub_runs();
            let mut questions = Vec::new();
            for summary in self.list_runs(&query).await? {
                let Some(run) = self.load_run(summary.run_id).await? else {
                    continue;
                };
                for ((unit, iteration), bytes) in &run.steps {
                    let Some(key) = unit.strip_prefix('?') else {
                        continue;
                    };
                    if *iteration == 0 && !run.steps.contains_key(&(key.to_owned(), 0)) {
                        questions.push(OpenQuestion {
                            run_id: summary.run_id,
                            question: bytes.clone(),
                        });
                    }
                }
            }
            Ok(questions)
        })
    }
}

#[cfg(test)]
const _: Option<&dyn CheckpointStore> = None;

/// A shared store is a store: a runtime and a tool listing its runs can hold
/// the same one.
impl<S: CheckpointStore + ?Sized> CheckpointStore for std::sync::Arc<S> {
    fn start_run<'a>(&'a self, run: NewRun<'a>) -> BoxFuture<'a, Result<(), StoreError>> {
        (**self).start_run(run)
    }

    fn claim_run<'a>(
        &'a self,
        run_id: RunId,
        lease: Lease<'a>,
        now_unix_ms: u64,
    ) -> BoxFuture<'a, Result<Claim, StoreError>> {
        (**self).claim_run(run_id, lease, now_unix_ms)
    }

    fn load_run(&self, run_id: RunId) -> BoxFuture<'_, Result<Option<SavedRun>, StoreError>> {
        (**self).load_run(run_id)
    }

    fn list_runs<'a>(
        &'a self,
        query: &'a RunQuery,
    ) -> BoxFuture<'a, Result<Vec<RunSummary>, StoreError>> {
        (**self).list_runs(query)
    }

    fn save_step<'a>(
        &'a self,
        run_id: RunId,
        key: &'a str,
        iteration: u32,
        output: &'a [u8],
    ) -> BoxFuture<'a, Result<Saved, StoreError>> {
        (**self).save_step(run_id, key, iteration, output)
    }

    fn save_steps<'a>(
        &'a self,
        run_id: RunId,
        units: &'a [UnitOutput],
    ) -> BoxFuture<'a, Result<Vec<Saved>, StoreError>> {
        (**self).save_steps(run_id, units)
    }

    fn finish_run(
        &self,
        run_id: RunId,
        status: StoredStatus,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        (**self).finish_run(run_id, status)
    }

    fn record_outcome<'a>(
        &'a self,
        run_id: RunId,
        outcome: &'a [u8],
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        (**self).record_outcome(run_id, outcome)
    }

    fn outcomes(&self, run_id: RunId) -> BoxFuture<'_, Result<Vec<Vec<u8>>, StoreError>> {
        (**self).outcomes(run_id)
    }

    fn cache_get<'a>(
        &'a self,
        key: &'a str,
        now_unix_ms: u64,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        (**self).cache_get(key, now_unix_ms)
    }

    fn cache_put<'a>(
        &'a self,
        key: &'a str,
        output: &'a [u8],
        expires_unix_ms: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        (**self).cache_put(key, output, expires_unix_ms)
    }

    fn open_questions(&self) -> BoxFuture<'_, Result<Vec<OpenQuestion>, StoreError>> {
        (**self).open_questions()
    }
}
