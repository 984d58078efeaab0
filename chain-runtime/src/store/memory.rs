//! [`MemoryStore`]: checkpoints in memory, for tests and for resuming runs
//! that failed without the process dying.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::{
    BoxFuture, CheckpointStore, Claim, Lease, NewRun, RunQuery, RunSummary, Saved, SavedRun,
    StoreError, StoredStatus,
};
use crate::ids::{RunId, unix_ms};

/// A store in memory: for tests, and for resuming runs that failed without
/// the process dying. It keeps every run until [`MemoryStore::clear`] or
/// [`MemoryStore::forget_finished`].
#[derive(Default)]
pub struct MemoryStore {
    runs: Mutex<HashMap<RunId, Entry>>,
    cache: Mutex<HashMap<String, (Vec<u8>, u64)>>,
}

struct Entry {
    run: SavedRun,
    owner: Option<String>,
    lease_until: u64,
    /// How each start of the run ended (JSON), oldest first.
    outcomes: Vec<Vec<u8>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets every run and cache entry.
    pub fn clear(&self) {
        self.runs().clear();
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Forgets the runs that are no longer running; returns how many.
    pub fn forget_finished(&self) -> usize {
        let mut runs = self.runs();
        let before = runs.len();
        runs.retain(|_, entry| entry.run.status == StoredStatus::Running);
        before - runs.len()
    }

    fn runs(&self) -> MutexGuard<'_, HashMap<RunId, Entry>> {
        self.runs.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("runs", &self.runs().len())
            .finish_non_exhaustive()
    }
}

impl CheckpointStore for MemoryStore {
    fn start_run<'a>(&'a self, run: NewRun<'a>) -> BoxFuture<'a, Result<(), StoreError>> {
        self.runs().entry(run.run_id).or_insert_with(|| Entry {
            run: SavedRun {
                chain: run.chain.to_owned(),
                parent: run.parent,
                fingerprint: run.fingerprint,
                input: run.input.to_vec(),
                status: StoredStatus::Running,
                started_unix_ms: run.started_unix_ms,
                updated_unix_ms: run.started_unix_ms,
                steps: HashMap::new(),
            },
            owner: run.lease.map(|lease| lease.owner.to_owned()),
            lease_until: run.lease.map_or(0, |lease| lease.until_unix_ms),
            outcomes: Vec::new(),
        });
        Box::pin(async { Ok(()) })
    }

    fn claim_run<'a>(
        &'a self,
        run_id: RunId,
        lease: Lease<'a>,
        now_unix_ms: u64,
    ) -> BoxFuture<'a, Result<Claim, StoreError>> {
        let claim = match self.runs().get_mut(&run_id) {
            None => Claim::Missing,
            Some(entry) => {
                let free = entry
                    .owner
                    .as_deref()
                    .is_none_or(|owner| owner == lease.owner)
                    || entry.lease_until <= now_unix_ms
                    || entry.run.status != StoredStatus::Running;
                if free {
                    entry.owner = Some(lease.owner.to_owned());
                    entry.lease_until = lease.until_unix_ms;
                    entry.run.status = StoredStatus::Running;
                    Claim::Owned
                } else {
                    Claim::Busy {
                        until_unix_ms: entry.lease_until,
                    }
                }
            }
        };
        Box::pin(async { Ok(claim) })
    }

    fn load_run(&self, run_id: RunId) -> BoxFuture<'_, Result<Option<SavedRun>, StoreError>> {
        let run = self.runs().get(&run_id).map(|entry| entry.run.clone());
        Box::pin(async { Ok(run) })
    }

    fn list_runs<'a>(
        &'a self,
        query: &'a RunQuery,
    ) -> BoxFuture<'a, Result<Vec<RunSummary>, StoreError>> {
        let mut listed: Vec<RunSummary> = self
            .runs()
            .iter()
            .map(|(&run_id, entry)| RunSummary {
                run_id,
                parent: entry.run.parent,
                chain: entry.run.chain.clone(),
                status: entry.run.status,
                started_unix_ms: entry.run.started_unix_ms,
                updated_unix_ms: entry.run.updated_unix_ms,
                units: entry.run.steps.len() as u64,
            })
            .filter(|run| query.matches(run))
            .collect();
        listed.sort_by(|a, b| {
            b.started_unix_ms
                .cmp(&a.started_unix_ms)
                .then(a.run_id.cmp(&b.run_id))
        });
        listed.truncate(query.limit.unwrap_or(usize::MAX));
        Box::pin(async { Ok(listed) })
    }

    fn save_step<'a>(
        &'a self,
        run_id: RunId,
        key: &'a str,
        iteration: u32,
        output: &'a [u8],
    ) -> BoxFuture<'a, Result<Saved, StoreError>> {
        let result = match self.runs().get_mut(&run_id) {
            Some(entry) => {
                entry.run.updated_unix_ms = unix_ms();
                match entry.run.steps.get(&(key.to_owned(), iteration)) {
                    Some(existing) => Ok(Saved::Existing(existing.clone())),
                    None => {
                        entry
                            .run
                            .steps
                            .insert((key.to_owned(), iteration), output.to_vec());
                        Ok(Saved::Recorded)
                    }
                }
            }
            None => Err(StoreError::NotFound { run_id }),
        };
        Box::pin(async { result })
    }

    fn record_outcome<'a>(
        &'a self,
        run_id: RunId,
        outcome: &'a [u8],
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        if let Some(entry) = self.runs().get_mut(&run_id) {
            entry.outcomes.push(outcome.to_vec());
        }
        Box::pin(async { Ok(()) })
    }

    fn outcomes(&self, run_id: RunId) -> BoxFuture<'_, Result<Vec<Vec<u8>>, StoreError>> {
        let outcomes = self
            .runs()
            .get(&run_id)
            .map(|entry| entry.outcomes.clone())
            .unwrap_or_default();
        Box::pin(async { Ok(outcomes) })
    }

    fn finish_run(
        &self,
        run_id: RunId,
        status: StoredStatus,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        if let Some(entry) = self.runs().get_mut(&run_id) {
            entry.run.status = status;
            entry.run.updated_unix_ms = unix_ms();
            entry.owner = None;
            entry.lease_until = 0;
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

#[cfg(test)]
mod tests {
    use super::{CheckpointStore, MemoryStore, NewRun, StoredStatus};
    use crate::ids::RunId;

    #[tokio::test]
    async fn finished_runs_can_be_forgotten_and_running_ones_are_kept() {
        let store = MemoryStore::new();
        for n in 0..3 {
            let new = NewRun {
                run_id: RunId::from_u64(n),
                parent: None,
                chain: "c",
                fingerprint: 1,
                input: b"{}",
                started_unix_ms: n,
                lease: None,
            };
            store.start_run(new).await.expect("starts");
        }
        store
            .finish_run(RunId::from_u64(0), StoredStatus::Completed)
            .await
            .expect("finishes");
        store
            .finish_run(RunId::from_u64(1), StoredStatus::Cancelled)
            .await
            .expect("finishes");
        assert_eq!(store.forget_finished(), 2);
        let kept = store.load_run(RunId::from_u64(2)).await.expect("loads");
        assert!(kept.is_some(), "the running run is kept");
        store.clear();
        assert!(
            store
                .load_run(RunId::from_u64(2))
                .await
                .expect("loads")
                .is_none()
        );
    }
}
