//! The embedded default checkpoint store: one SQLite file.

mod batch;
mod housekeeping;
mod outcomes;
mod questions;
mod schema;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use super::{
    BoxFuture, CheckpointStore, Claim, Lease, NewRun, RunQuery, RunSummary, Saved, SavedRun,
    StoreError, StoredStatus, UnitOutput,
};
use crate::ids::RunId;
pub use housekeeping::{Deleted, StoreSize};
use schema::checksum;

/// Checkpoints in a SQLite database file (WAL journal, `synchronous=FULL`:
/// a saved step survives the process being killed and the machine losing
/// power). Every record carries a checksum, checked on load; each run counts
/// its records, so a record that went missing is an error, never a re-run.
///
/// Calls run on tokio's blocking pool, one at a time per store. Step outputs
/// saved at the same moment (by many runs, by a map's elements) share one
/// transaction and one fsync: each save returns once its transaction is
/// committed. Files written by earlier versions are upgraded when opened.
#[derive(Clone)]
pub struct SqliteStore {
    connection: Arc<Mutex<Connection>>,
    /// Step outputs waiting for the next group commit.
    batcher: Arc<batch::Batcher>,
    path: PathBuf,
    lock_timeout: Duration,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

/// A SQLite error as a store error: a database locked by another process
/// is [`StoreError::Busy`] (waited out asynchronously), anything else I/O.
fn io(error: rusqlite::Error) -> StoreError {
    let busy = matches!(
        error.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    );
    if busy {
        StoreError::Busy(error.to_string())
    } else {
        StoreError::Io(error.to_string())
    }
}

/// A stored run id, read back.
fn parse_run_id(text: &str) -> Result<RunId, StoreError> {
    RunId::named(text).map_err(|error| StoreError::Corrupt(format!("a run id: {error}")))
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let mut connection = Connection::open(&path).map_err(io)?;
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 PRAGMA synchronous = FULL;
                 PRAGMA busy_timeout = 5000;",
            )
            .map_err(io)?;
        schema::prepare(&mut connection, &path.display().to_string())?;
        // From now on a lock held elsewhere is waited out asynchronously
        // (see `with`), each try blocking the connection only briefly.
        connection
            .execute_batch("PRAGMA busy_timeout = 20;")
            .map_err(io)?;
        Ok(Self {
            connection: Arc::new(Mutex::new(connection)),
            batcher: Arc::default(),
            path,
            lock_timeout: Duration::from_secs(5),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How long an operation waits for a database another process holds
    /// locked before it fails with [`StoreError::Busy`] (default 5 s). The
    /// wait is asynchronous: it does not hold this store's connection, so
    /// many runs waiting on one lock wait at the same time, not in turn.
    #[must_use]
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// Queues `write` for the next group commit (`batch.rs`) and returns once
    /// its transaction is committed; while the file is locked elsewhere,
    /// tries again until the lock timeout.
    async fn write(&self, write: batch::Write) -> Result<Saved, StoreError> {
        let started = tokio::time::Instant::now();
        let mut pause = Duration::from_millis(5);
        loop {
            let (reply, answer) = tokio::sync::oneshot::channel();
            let pending = batch::Pending {
                write: write.clone(),
                reply,
            };
            self.batcher.submit(&self.connection, pending);
            let result = answer.await.unwrap_or_else(|_| Err(writer_stopped()));
            match result {
                Err(StoreError::Busy(_)) if started.elapsed() < self.lock_timeout => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(100));
                }
                other => return other,
            }
        }
    }

    /// Runs `work` with the connection on the blocking pool; while the file
    /// is locked elsewhere, tries again (without holding the connection)
    /// until the lock timeout.
    fn with<T: Send + 'static>(
        &self,
        work: impl Fn(&mut Connection) -> Result<T, StoreError> + Send + Sync + 'static,
    ) -> BoxFuture<'static, Result<T, StoreError>> {
        let connection = Arc::clone(&self.connection);
        let work = Arc::new(work);
        let timeout = self.lock_timeout;
        Box::pin(async move {
            let started = tokio::time::Instant::now();
            let mut pause = Duration::from_millis(5);
            loop {
                let (connection, work) = (Arc::clone(&connection), Arc::clone(&work));
                let result = tokio::task::spawn_blocking(move || {
                    let mut connection = connection.lock().unwrap_or_else(PoisonError::into_inner);
                    work(&mut connection)
                })
                .await
                .map_err(|error| StoreError::Io(error.to_string()))?;
                match result {
                    Err(StoreError::Busy(_)) if started.elapsed() < timeout => {
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(Duration::from_millis(100));
                    }
                    other => return other,
                }
            }
        })
    }
}

impl CheckpointStore for SqliteStore {
    fn start_run<'a>(&'a self, run: NewRun<'a>) -> BoxFuture<'a, Result<(), StoreError>> {
        let id = run.run_id.to_string();
        let input = run.input.to_vec();
        let write = batch::Write::Start {
            input_checksum: checksum(&id, "<input>", 0, &input),
            id,
            parent: run.parent.map(|parent| parent.to_string()),
            chain: run.chain.to_owned(),
            fingerprint: run.fingerprint as i64,
            input,
            started: run.started_unix_ms as i64,
            owner: run.lease.map(|lease| lease.owner.to_owned()),
            lease_until: run.lease.map_or(0, |lease| lease.until_unix_ms as i64),
        };
        Box::pin(async move { self.write(write).await.map(|_| ()) })
    }

    fn claim_run<'a>(
        &'a self,
        run_id: RunId,
        lease: Lease<'a>,
        now_unix_ms: u64,
    ) -> BoxFuture<'a, Result<Claim, StoreError>> {
        let id = run_id.to_string();
        let owner = lease.owner.to_owned();
        let until = lease.until_unix_ms as i64;
        let now = now_unix_ms as i64;
        self.with(move |connection| {
            let claimed = connection
                .execute(
                    "UPDATE runs SET owner = ?2, lease_until = ?3, status = 'running', updated_ms = ?4
                     WHERE run_id = ?1
                       AND (owner IS NULL OR owner = ?2 OR lease_until <= ?4 OR status != 'running')",
                    params![id, owner, until, now],
                )
                .map_err(io)?;
            if claimed == 1 {
                return Ok(Claim::Owned);
            }
            let held: Option<i64> = connection
                .query_row(
                    "SELECT lease_until FROM runs WHERE run_id = ?1",
                    params![id],
                    |row| row.get(0),
                )
                .optional()
                .map_err(io)?;
            Ok(match held {
                Some(until) => Claim::Busy {
                    until_unix_ms: until.max(0) as u64,
                },
                None => Claim::Missing,
            })
        })
    }

    fn load_run(&self, run_id: RunId) -> BoxFuture<'_, Result<Option<SavedRun>, StoreError>> {
        let id = run_id.to_string();
        self.with(move |connection| {
            let row = connection
                .query_row(
                    "SELECT chain, fingerprint, input, input_checksum, status, parent_id, started_ms, updated_ms, units
                     FROM runs WHERE run_id = ?1",
                    params![id],
                    |row| {
                        Ok((
                            (row.get::<_, String>(0)?, row.get::<_, i64>(1)?),
                            (row.get::<_, Vec<u8>>(2)?, row.get::<_, i64>(3)?),
                            (row.get::<_, String>(4)?, row.get::<_, Option<String>>(5)?),
                            (row.get::<_, i64>(6)?, row.get::<_, i64>(7)?, row.get::<_, i64>(8)?),
                        ))
                    },
                )
                .optional()
                .map_err(io)?;
            let Some(((chain, fingerprint), (input, input_checksum), (status, parent), (started, updated, units))) = row
            else {
                return Ok(None);
            };
            if checksum(&id, "<input>", 0, &input) != input_checksum {
                return Err(StoreError::Corrupt(format!("the input of run {run_id}")));
            }
            let status = StoredStatus::parse(&status)
                .ok_or_else(|| StoreError::Corrupt(format!("status `{status}` of run {run_id}")))?;
            let mut statement = connection
                .prepare("SELECT key, iteration, output, checksum FROM steps WHERE run_id = ?1")
                .map_err(io)?;
            let rows = statement
                .query_map(params![id], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, i64>(1)?,
                        row.get::<_, Vec<u8>>(2)?,
                        row.get::<_, i64>(3)?,
                    ))
                })
                .map_err(io)?;
            let mut steps = HashMap::new();
            for row in rows {
                let (key, iteration, output, sum) = row.map_err(io)?;
                if checksum(&id, &key, iteration, &output) != sum {
                    return Err(StoreError::Corrupt(format!(
                        "the output of step `{key}` (iteration {iteration}) of run {run_id}"
                    )));
                }
                let iteration = u32::try_from(iteration).map_err(|_| {
                    StoreError::Corrupt(format!("iteration {iteration} of step `{key}` of run {run_id}"))
                })?;
                steps.insert((key, iteration), output);
            }
            // Every record the run counted must be there: a damaged row must
            // not pass for a step that never ran.
            if steps.len() as i64 != units {
                return Err(StoreError::Corrupt(format!(
                    "run {run_id} recorded {units} outputs but {} are readable",
                    steps.len()
                )));
            }
            Ok(Some(SavedRun {
                chain,
                parent: parent.as_deref().map(parse_run_id).transpose()?,
                fingerprint: fingerprint as u64,
                input,
                status,
                started_unix_ms: started.max(0) as u64,
                updated_unix_ms: updated.max(0) as u64,
                steps,
            }))
        })
    }

    fn list_runs<'a>(
        &'a self,
        query: &'a RunQuery,
    ) -> BoxFuture<'a, Result<Vec<RunSummary>, StoreError>> {
        let query = query.clone();
        self.with(move |connection| {
            let mut statement = connection
                .prepare(
                    "SELECT run_id, parent_id, chain, status, started_ms, updated_ms, units FROM runs
                     WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR chain = ?2)
                       AND (?3 IS NULL OR started_ms < ?3) AND (?4 IS NULL OR started_ms >= ?4)
                       AND (?5 OR parent_id IS NULL)
                     ORDER BY started_ms DESC, run_id LIMIT ?6",
                )
                .map_err(io)?;
            let limit = query.limit.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
            let rows = statement
                .query_map(
                    params![
                        query.status.map(StoredStatus::as_str),
                        query.chain,
                        query.started_before_unix_ms.map(|t| t as i64),
                        query.started_after_unix_ms.map(|t| t as i64),
                        query.include_sub_runs,
                        limit
                    ],
                    |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, Option<String>>(1)?,
                            row.get::<_, String>(2)?,
                            row.get::<_, String>(3)?,
                            row.get::<_, i64>(4)?,
                            row.get::<_, i64>(5)?,
                            row.get::<_, i64>(6)?,
                        ))
                    },
                )
                .map_err(io)?;
            let mut listed = Vec::new();
            for row in rows {
                let (id, parent, chain, status, started, updated, units) = row.map_err(io)?;
                listed.push(RunSummary {
                    run_id: parse_run_id(&id)?,
                    parent: parent.as_deref().map(parse_run_id).transpose()?,
                    chain,
                    status: StoredStatus::parse(&status)
                        .ok_or_else(|| StoreError::Corrupt(format!("status `{status}` of run {id}")))?,
                    started_unix_ms: started.max(0) as u64,
                    updated_unix_ms: updated.max(0) as u64,
                    units: units.max(0) as u64,
                });
            }
            Ok(listed)
        })
    }

    fn save_step<'a>(
        &'a self,
        run_id: RunId,
        key: &'a str,
        iteration: u32,
        output: &'a [u8],
    ) -> BoxFuture<'a, Result<Saved, StoreError>> {
        let write = batch::Write::Save {
            run_id,
            key: key.to_owned(),
            iteration: i64::from(iteration),
            output: output.to_vec(),
        };
        Box::pin(self.write(write))
    }

    /// Every unit of the batch is queued at once, in order, so they share
    /// one transaction; a unit refused because the file was locked elsewhere
    /// is written again on its own (`write`'s retries).
    fn save_steps<'a>(
        &'a self,
        run_id: RunId,
        units: &'a [UnitOutput],
    ) -> BoxFuture<'a, Result<Vec<Saved>, StoreError>> {
        Box::pin(async move {
            let write = |unit: &UnitOutput| batch::Write::Save {
                run_id,
                key: unit.key.clone(),
                iteration: i64::from(unit.iteration),
                output: unit.output.clone(),
            };
            let (pending, answers): (Vec<_>, Vec<_>) = units
                .iter()
                .map(|unit| {
                    let (reply, answer) = tokio::sync::oneshot::channel();
                    let write = write(unit);
                    (batch::Pending { write, reply }, answer)
                })
                .unzip();
            self.batcher.submit_all(&self.connection, pending);
            let mut saved = Vec::with_capacity(units.len());
            for (unit, answer) in units.iter().zip(answers) {
                let result = answer.await.unwrap_or_else(|_| Err(writer_stopped()));
                saved.push(match result {
                    Err(StoreError::Busy(_)) => self.write(write(unit)).await?,
                    other => other?,
                });
            }
            Ok(saved)
        })
    }

    fn record_outcome<'a>(
        &'a self,
        run_id: RunId,
        outcome: &'a [u8],
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let write = batch::Write::Outcome {
            id: run_id.to_string(),
            outcome: outcome.to_vec(),
        };
        Box::pin(async move { self.write(write).await.map(|_| ()) })
    }

    fn outcomes(&self, run_id: RunId) -> BoxFuture<'_, Result<Vec<Vec<u8>>, StoreError>> {
        let id = run_id.to_string();
        self.with(move |connection| outcomes::read(connection, &id))
    }

    fn finish_run(
        &self,
        run_id: RunId,
        status: StoredStatus,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        let write = batch::Write::Finish {
            id: run_id.to_string(),
            status: status.as_str(),
        };
        Box::pin(async move { self.write(write).await.map(|_| ()) })
    }

    fn cache_get<'a>(
        &'a self,
        key: &'a str,
        now_unix_ms: u64,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        let key = key.to_owned();
        self.with(move |connection| {
            let row = connection
                .query_row(
                    "SELECT output, checksum, expires_at FROM cache WHERE key = ?1",
                    params![key],
                    |row| {
                        Ok((
                            row.get::<_, Vec<u8>>(0)?,
                            row.get::<_, i64>(1)?,
                            row.get::<_, i64>(2)?,
                        ))
                    },
                )
                .optional()
                .map_err(io)?;
            match row {
                Some((output, sum, expires)) if expires as u64 > now_unix_ms => {
                    if checksum("<cache>", &key, 0, &output) != sum {
                        return Err(StoreError::Corrupt(format!("the cache entry `{key}`")));
                    }
                    Ok(Some(output))
                }
                _ => Ok(None),
            }
        })
    }

    fn cache_put<'a>(
        &'a self,
        key: &'a str,
        output: &'a [u8],
        expires_unix_ms: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let key = key.to_owned();
        let output = output.to_vec();
        self.with(move |connection| {
            let sum = checksum("<cache>", &key, 0, &output);
            connection
                .execute(
                    "INSERT OR REPLACE INTO cache (key, output, checksum, expires_at) VALUES (?1, ?2, ?3, ?4)",
                    params![key, output, sum, expires_unix_ms as i64],
                )
                .map_err(io)?;
            Ok(())
        })
    }

    fn open_questions(&self) -> BoxFuture<'_, Result<Vec<super::OpenQuestion>, StoreError>> {
        self.open_questions_query()
    }
}

/// The answer of a write whose writer went away before answering.
fn writer_stopped() -> StoreError {
    StoreError::Io("the checkpoint store's writer stopped".to_owned())
}
