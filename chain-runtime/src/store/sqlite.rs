//! The embedded default checkpoint store: one SQLite file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::{Connection, OptionalExtension, params};

use super::{BoxFuture, CheckpointStore, NewRun, SavedRun, StoreError, StoredStatus, fnv1a};
use crate::ids::RunId;

/// Checkpoints in a SQLite database file (WAL journal, `synchronous=FULL`:
/// a saved step survives the process being killed and the machine losing
/// power). Every record carries a checksum, checked on load.
///
/// Calls run on tokio's blocking pool, one at a time per store.
#[derive(Clone)]
pub struct SqliteStore {
    connection: Arc<Mutex<Connection>>,
    path: PathBuf,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

fn io(error: impl std::fmt::Display) -> StoreError {
    StoreError::Io(error.to_string())
}

/// The checksum of a record's bytes, bound to where it lives so a record
/// copied to another key does not pass either.
fn checksum(run_id: i64, key: &str, iteration: i64, output: &[u8]) -> i64 {
    let place = fnv1a(format!("{run_id}/{key}/{iteration}").as_bytes(), 0);
    fnv1a(output, place) as i64
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let connection = Connection::open(&path).map_err(io)?;
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 PRAGMA synchronous = FULL;
                 PRAGMA busy_timeout = 5000;
                 CREATE TABLE IF NOT EXISTS runs (
                     run_id INTEGER PRIMARY KEY,
                     chain TEXT NOT NULL,
                     fingerprint INTEGER NOT NULL,
                     input BLOB NOT NULL,
                     input_checksum INTEGER NOT NULL,
                     status TEXT NOT NULL
                 );
                 CREATE TABLE IF NOT EXISTS steps (
                     run_id INTEGER NOT NULL,
                     key TEXT NOT NULL,
                     iteration INTEGER NOT NULL,
                     output BLOB NOT NULL,
                     checksum INTEGER NOT NULL,
                     PRIMARY KEY (run_id, key, iteration)
                 );
                 CREATE TABLE IF NOT EXISTS cache (
                     key TEXT PRIMARY KEY,
                     output BLOB NOT NULL,
                     checksum INTEGER NOT NULL,
                     expires_at INTEGER NOT NULL
                 );",
            )
            .map_err(io)?;
        Ok(Self {
            connection: Arc::new(Mutex::new(connection)),
            path,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `work` with the connection on the blocking pool.
    fn with<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> BoxFuture<'static, Result<T, StoreError>> {
        let connection = Arc::clone(&self.connection);
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let mut connection = connection.lock().unwrap_or_else(PoisonError::into_inner);
                work(&mut connection)
            })
            .await
            .map_err(io)?
        })
    }
}

impl CheckpointStore for SqliteStore {
    fn start_run<'a>(&'a self, run: NewRun<'a>) -> BoxFuture<'a, Result<(), StoreError>> {
        let run_id = run.run_id.as_u64() as i64;
        let chain = run.chain.to_owned();
        let fingerprint = run.fingerprint as i64;
        let input = run.input.to_vec();
        let input_checksum = checksum(run_id, "<input>", 0, &input);
        self.with(move |connection| {
            connection
                .execute(
                    "INSERT OR IGNORE INTO runs (run_id, chain, fingerprint, input, input_checksum, status)
                     VALUES (?1, ?2, ?3, ?4, ?5, 'running')",
                    params![run_id, chain, fingerprint, input, input_checksum],
                )
                .map_err(io)?;
            Ok(())
        })
    }

    fn load_run(&self, run_id: RunId) -> BoxFuture<'_, Result<Option<SavedRun>, StoreError>> {
        let id = run_id.as_u64() as i64;
        self.with(move |connection| {
            let row = connection
                .query_row(
                    "SELECT chain, fingerprint, input, input_checksum, status FROM runs WHERE run_id = ?1",
                    params![id],
                    |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, i64>(1)?,
                            row.get::<_, Vec<u8>>(2)?,
                            row.get::<_, i64>(3)?,
                            row.get::<_, String>(4)?,
                        ))
                    },
                )
                .optional()
                .map_err(io)?;
            let Some((chain, fingerprint, input, input_checksum, status)) = row else {
                return Ok(None);
            };
            if checksum(id, "<input>", 0, &input) != input_checksum {
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
                if checksum(id, &key, iteration, &output) != sum {
                    return Err(StoreError::Corrupt(format!(
                        "the output of step `{key}` (iteration {iteration}) of run {run_id}"
                    )));
                }
                steps.insert((key, u32::try_from(iteration).unwrap_or(0)), output);
            }
            Ok(Some(SavedRun {
                chain,
                fingerprint: fingerprint as u64,
                input,
                status,
                steps,
            }))
        })
    }

    fn save_step<'a>(
        &'a self,
        run_id: RunId,
        key: &'a str,
        iteration: u32,
        output: &'a [u8],
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let id = run_id.as_u64() as i64;
        let key = key.to_owned();
        let iteration = i64::from(iteration);
        let output = output.to_vec();
        self.with(move |connection| {
            let sum = checksum(id, &key, iteration, &output);
            connection
                .execute(
                    "INSERT OR REPLACE INTO steps (run_id, key, iteration, output, checksum)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![id, key, iteration, output, sum],
                )
                .map_err(io)?;
            Ok(())
        })
    }

    fn finish_run(
        &self,
        run_id: RunId,
        status: StoredStatus,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        let id = run_id.as_u64() as i64;
        self.with(move |connection| {
            connection
                .execute(
                    "UPDATE runs SET status = ?2 WHERE run_id = ?1",
                    params![id, status.as_str()],
                )
                .map_err(io)?;
            Ok(())
        })
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
                    if checksum(0, &key, 0, &output) != sum {
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
            let sum = checksum(0, &key, 0, &output);
            connection
                .execute(
                    "INSERT OR REPLACE INTO cache (key, output, checksum, expires_at) VALUES (?1, ?2, ?3, ?4)",
                    params![key, output, sum, expires_unix_ms as i64],
                )
                .map_err(io)?;
            Ok(())
        })
    }
}
