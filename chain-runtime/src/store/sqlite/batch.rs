//! Group commit: step outputs saved (and runs started or ended) while a
//! transaction is being written wait, then go together in the next one —
//! one transaction and one fsync for all of them. Each write still returns
//! only once its transaction is committed, so the guarantee is unchanged:
//! an output is durable before anything reads it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::oneshot;

use super::io;
use super::schema::checksum;
use crate::ids::{RunId, unix_ms};
use crate::store::{Saved, StoreError};

/// A write that can share a transaction with others.
#[derive(Clone)]
pub(super) enum Write {
    /// A unit's output.
    Save {
        run_id: RunId,
        key: String,
        iteration: i64,
        output: Vec<u8>,
    },
    /// A new run (`INSERT OR IGNORE`: a run that exists is left alone).
    Start {
        id: String,
        parent: Option<String>,
        chain: String,
        fingerprint: i64,
        input: Vec<u8>,
        input_checksum: i64,
        started: i64,
        owner: Option<String>,
        lease_until: i64,
    },
    /// A run's end (or suspension): its status, its lease released.
    Finish { id: String, status: &'static str },
    /// How one start of a run ended (JSON), kept beside the run.
    Outcome { id: String, outcome: Vec<u8> },
}

/// One write waiting, and who waits for it.
pub(super) struct Pending {
    pub(super) write: Write,
    pub(super) reply: oneshot::Sender<Result<Saved, StoreError>>,
}

/// The saves waiting, and whether a writer is at work.
#[derive(Default)]
pub(super) struct Batcher {
    queue: Mutex<Queue>,
    /// Transactions written (for tests of the batching itself).
    #[cfg(test)]
    batches: std::sync::atomic::AtomicUsize,
}

#[derive(Default)]
struct Queue {
    pending: Vec<Pending>,
    writing: bool,
}

impl Batcher {
    /// Queues `save`; starts a writer on the blocking pool unless one is
    /// at work (it takes this save with its next batch).
    pub(super) fn submit(self: &Arc<Self>, connection: &Arc<Mutex<Connection>>, save: Pending) {
        self.submit_all(connection, std::iter::once(save));
    }

    /// Queues `saves` together, in order (so one writer's batch takes them
    /// all); starts a writer unless one is at work.
    pub(super) fn submit_all(
        self: &Arc<Self>,
        connection: &Arc<Mutex<Connection>>,
        saves: impl IntoIterator<Item = Pending>,
    ) {
        let start = {
            let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            queue.pending.extend(saves);
            !std::mem::replace(&mut queue.writing, true)
        };
        if start {
            let (batcher, connection) = (Arc::clone(self), Arc::clone(connection));
            tokio::task::spawn_blocking(move || batcher.write_until_empty(&connection));
        }
    }

    /// Writes batches until no save is waiting.
    fn write_until_empty(&self, connection: &Mutex<Connection>) {
        // A panic below must not leave the queue marked as being written.
        let _stop = WriterStop(self);
        loop {
            let batch = {
                let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
                if queue.pending.is_empty() {
                    queue.writing = false;
                    return;
                }
                std::mem::take(&mut queue.pending)
            };
            let mut connection = connection.lock().unwrap_or_else(PoisonError::into_inner);
            let results = write_batch(&mut connection, &batch);
            #[cfg(test)]
            self.batches
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(connection);
            for (save, result) in batch.into_iter().zip(results) {
                // A caller that stopped waiting (cancelled) needs no answer.
                let _ = save.reply.send(result);
            }
        }
    }
}

/// On a writer's panic: the saves still queued fail, and a later save
/// starts a new writer.
struct WriterStop<'a>(&'a Batcher);

impl Drop for WriterStop<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut queue = self.0.queue.lock().unwrap_or_else(PoisonError::into_inner);
            queue.writing = false;
            for save in queue.pending.drain(..) {
                let _ = save.reply.send(Err(StoreError::Io(
                    "the checkpoint store's writer stopped".to_owned(),
                )));
            }
        }
    }
}

/// One transaction for the whole batch. Each write is one statement that
/// SQLite applies whole or not at all, so one write's failure (its run is
/// gone) leaves the others and no savepoint is needed. Saves insert their
/// rows as they come; each run's count of units is then raised once for
/// the batch (one `UPDATE` per run, not per save), and the rows of a run
/// that is not there are taken out again.
fn write_batch(connection: &mut Connection, batch: &[Pending]) -> Vec<Result<Saved, StoreError>> {
    let all = |error: &StoreError| batch.iter().map(|_| Err(copy(error))).collect();
    let transaction = match connection.transaction() {
        Ok(transaction) => transaction,
        Err(error) => return all(&io(error)),
    };
    let now = unix_ms() as i64;
    let mut results = Vec::with_capacity(batch.len());
    // Per run: the indices of the saves that inserted a row (a map: a batch
    // can hold the saves of thousands of runs).
    let mut inserted: HashMap<RunId, Vec<usize>> = HashMap::new();
    for (index, save) in batch.iter().enumerate() {
        let result = match &save.write {
            Write::Save { run_id, .. } => {
                let result = insert_one(&transaction, &save.write);
                if matches!(result, Ok(Saved::Recorded)) {
                    inserted.entry(*run_id).or_default().push(index);
                }
                result
            }
            other => apply(&transaction, other, now).map(|()| Saved::Recorded),
        };
        results.push(result);
    }
    for (run_id, indices) in inserted {
        if let Err(error) = count_units(&transaction, run_id, &indices, batch, now) {
            for &index in &indices {
                results[index] = Err(error.clone());
            }
        }
    }
    match transaction.commit() {
        Ok(()) => results,
        Err(error) => all(&io(error)),
    }
}

/// Raises `run_id`'s count of units by the saves at `indices`; if the run
/// is not there, takes their rows out again and says so.
fn count_units(
    connection: &Connection,
    run_id: RunId,
    indices: &[usize],
    batch: &[Pending],
    now: i64,
) -> Result<(), StoreError> {
    let id = run_id.to_string();
    let counted = connection
        .prepare_cached("UPDATE runs SET units = units + ?2, updated_ms = ?3 WHERE run_id = ?1")
        .and_then(|mut statement| statement.execute(params![id, indices.len() as i64, now]))
        .map_err(io)?;
    if counted > 0 {
        return Ok(());
    }
    for &index in indices {
        if let Write::Save { key, iteration, .. } = &batch[index].write {
            connection
                .prepare_cached(
                    "DELETE FROM steps WHERE run_id = ?1 AND key = ?2 AND iteration = ?3",
                )
                .and_then(|mut statement| statement.execute(params![id, key, iteration]))
                .map_err(io)?;
        }
    }
    Err(StoreError::NotFound { run_id })
}

/// A run's start or end, in the open transaction.
fn apply(connection: &Connection, write: &Write, now: i64) -> Result<(), StoreError> {
    match write {
        Write::Start {
            id,
            parent,
            chain,
            fingerprint,
            input,
            input_checksum,
            started,
            owner,
            lease_until,
        } => connection
            .prepare_cached(
                "INSERT OR IGNORE INTO runs (run_id, parent_id, chain, fingerprint, input, input_checksum, status, started_ms, updated_ms, owner, lease_until)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'running', ?7, ?7, ?8, ?9)",
            )
            .and_then(|mut statement| {
                statement.execute(params![id, parent, chain, fingerprint, input, input_checksum, started, owner, lease_until])
            }),
        Write::Finish { id, status } => connection
            .prepare_cached(
                "UPDATE runs SET status = ?2, owner = NULL, lease_until = 0, updated_ms = ?3 WHERE run_id = ?1",
            )
            .and_then(|mut statement| statement.execute(params![id, status, now])),
        Write::Outcome { id, outcome } => connection
            .prepare_cached("INSERT INTO outcomes (run_id, ended_ms, outcome) VALUES (?1, ?2, ?3)")
            .and_then(|mut statement| statement.execute(params![id, now, outcome])),
        Write::Save { .. } => Ok(0),
    }
    .map(|_| ())
    .map_err(io)
}

/// Inserts one output in the open transaction: the first output recorded
/// for a unit wins (a later one gets the recorded one back). The run's
/// count of units is raised by the batch (`count_units`).
fn insert_one(connection: &Connection, write: &Write) -> Result<Saved, StoreError> {
    let Write::Save {
        run_id,
        key,
        iteration,
        output,
    } = write
    else {
        return Ok(Saved::Recorded);
    };
    let iteration = *iteration;
    let id = run_id.to_string();
    let sum = checksum(&id, key, iteration, output);
    let inserted = connection
        .prepare_cached(
            "INSERT OR IGNORE INTO steps (run_id, key, iteration, output, checksum)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .and_then(|mut statement| statement.execute(params![id, key, iteration, output, sum]))
        .map_err(io)?;
    if inserted > 0 {
        return Ok(Saved::Recorded);
    }
    let existing: Option<(Vec<u8>, i64)> = connection
        .query_row(
            "SELECT output, checksum FROM steps WHERE run_id = ?1 AND key = ?2 AND iteration = ?3",
            params![id, key, iteration],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()
        .map_err(io)?;
    match existing {
        Some((existing, existing_sum))
            if checksum(&id, key, iteration, &existing) == existing_sum =>
        {
            Ok(Saved::Existing(existing))
        }
        _ => Err(StoreError::Corrupt(format!(
            "the output of step `{key}` (iteration {iteration}) of run {id}"
        ))),
    }
}

/// The same error for every save of a failed batch.
fn copy(error: &StoreError) -> StoreError {
    match error {
        StoreError::Busy(message) => StoreError::Busy(message.clone()),
        other => StoreError::Io(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use crate::ids::RunId;
    use crate::store::{CheckpointStore, NewRun, Saved, SqliteStore, StoreError, UnitOutput};

    #[tokio::test]
    async fn saves_made_at_once_share_transactions_and_each_is_durable() {
        let dir = std::env::temp_dir().join(format!("prompt-chain-batch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a folder");
        let path = dir.join("runs.db");
        let _ = std::fs::remove_file(&path);
        let store = SqliteStore::open(&path).expect("a store");
        let runs: Vec<RunId> = (0..200).map(|_| RunId::new()).collect();
        for &run_id in &runs {
            store
                .start_run(NewRun {
                    run_id,
                    parent: None,
                    chain: "batch",
                    fingerprint: 1,
                    input: b"{}",
                    started_unix_ms: 0,
                    lease: None,
                })
                .await
                .expect("started");
        }
        let missing = RunId::new();
        let before = store.batcher.batches.load(Ordering::SeqCst);
        let mut saves: Vec<_> = runs
            .iter()
            .map(|&run_id| {
                let store = store.clone();
                tokio::spawn(async move { store.save_step(run_id, "out", 1, b"42").await })
            })
            .collect();
        // A save for a run that is not there fails alone.
        let lost = {
            let store = store.clone();
            tokio::spawn(async move { store.save_step(missing, "out", 1, b"1").await })
        };
        for save in saves.drain(..) {
            assert!(matches!(save.await.expect("joined"), Ok(Saved::Recorded)));
        }
        assert!(matches!(
            lost.await.expect("joined"),
            Err(StoreError::NotFound { .. })
        ));
        let batches = store.batcher.batches.load(Ordering::SeqCst) - before;
        assert!(batches < 201, "201 saves in {batches} transactions");
        // A second save of a unit gets the first one back.
        let again = store
            .save_step(runs[0], "out", 1, b"7")
            .await
            .expect("saved");
        assert!(matches!(again, Saved::Existing(ref bytes) if bytes == b"42"));
        // Every output is there for a fresh reader.
        let reopened = SqliteStore::open(&path).expect("reopened");
        for &run_id in &runs {
            let run = reopened
                .load_run(run_id)
                .await
                .expect("read")
                .expect("a run");
            assert_eq!(
                run.steps.get(&("out".to_owned(), 1)).map(Vec::as_slice),
                Some(&b"42"[..])
            );
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_batch_of_one_run_is_one_transaction_in_order() {
        let dir = std::env::temp_dir().join(format!("prompt-chain-batch1-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a folder");
        let path = dir.join("runs.db");
        let _ = std::fs::remove_file(&path);
        let store = SqliteStore::open(&path).expect("a store");
        let run_id = RunId::new();
        store
            .start_run(NewRun {
                run_id,
                parent: None,
                chain: "batch",
                fingerprint: 1,
                input: b"{}",
                started_unix_ms: 0,
                lease: None,
            })
            .await
            .expect("started");
        let units: Vec<UnitOutput> = (0..50)
            .map(|i| UnitOutput {
                key: "each".to_owned(),
                iteration: i + 1,
                output: i.to_string().into_bytes(),
            })
            .collect();
        let before = store.batcher.batches.load(Ordering::SeqCst);
        let saved = store.save_steps(run_id, &units).await.expect("saved");
        assert_eq!(saved.len(), 50);
        assert!(saved.iter().all(|saved| *saved == Saved::Recorded));
        let batches = store.batcher.batches.load(Ordering::SeqCst) - before;
        assert_eq!(
            batches, 1,
            "50 units of one batch in {batches} transactions"
        );
        let run = store.load_run(run_id).await.expect("read").expect("a run");
        assert_eq!(run.steps.len(), 50);
        let _ = std::fs::remove_dir_all(dir);
    }
}
