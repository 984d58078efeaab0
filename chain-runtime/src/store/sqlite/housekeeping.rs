//! Housekeeping of a SQLite store: retention (deleting finished runs older
//! than an age), vacuum, and a size report.

use std::collections::BTreeMap;

use rusqlite::{Connection, params};

use super::{SqliteStore, io};
use crate::store::StoreError;

/// What [`SqliteStore::delete_finished_before`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deleted {
    /// Top-level runs deleted.
    pub runs: u64,
    /// Their sub-chains' runs, deleted with them.
    pub sub_runs: u64,
    /// Unit outputs deleted with those runs.
    pub units: u64,
    /// Expired entries of the step cache.
    pub cache_entries: u64,
}

/// How big a store is, and what it holds ([`SqliteStore::size`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreSize {
    /// The database file, in bytes.
    pub file_bytes: u64,
    /// Its write-ahead log, in bytes (folded into the file at checkpoints).
    pub wal_bytes: u64,
    /// Bytes of free pages in the file: what [`SqliteStore::vacuum`] gives back.
    pub free_bytes: u64,
    /// Runs by status (`completed`, `failed`, …), sub-chain runs included.
    pub runs: BTreeMap<String, u64>,
    /// Unit outputs recorded.
    pub units: u64,
    /// Their total size, in bytes.
    pub output_bytes: u64,
    /// Entries in the step cache.
    pub cache_entries: u64,
}

impl SqliteStore {
    /// Deletes every top-level run that ended (completed, failed or
    /// cancelled) before `unix_ms` — by when it was last written — with its
    /// units and its sub-chains' runs, and the cache entries expired at
    /// `unix_ms`. Running and suspended runs are kept whatever their age:
    /// they can still be resumed or answered. One transaction.
    pub async fn delete_finished_before(&self, unix_ms: u64) -> Result<Deleted, StoreError> {
        let before = i64::try_from(unix_ms).unwrap_or(i64::MAX);
        self.with(move |connection| delete_finished(connection, before))
            .await
    }

    /// Rebuilds the file without its free pages (after deleting runs).
    /// Blocks other writers of the file while it runs.
    pub async fn vacuum(&self) -> Result<(), StoreError> {
        self.with(|connection| {
            connection
                .execute_batch("VACUUM; PRAGMA wal_checkpoint(TRUNCATE);")
                .map_err(io)
        })
        .await
    }

    /// The file's size and what it holds.
    pub async fn size(&self) -> Result<StoreSize, StoreError> {
        let path = self.path.clone();
        let mut size = self.with(measure).await?;
        let bytes = |path: &std::path::Path| std::fs::metadata(path).map_or(0, |meta| meta.len());
        size.file_bytes = bytes(&path);
        let mut wal = path.into_os_string();
        wal.push("-wal");
        size.wal_bytes = bytes(std::path::Path::new(&wal));
        Ok(size)
    }
}

fn delete_finished(connection: &mut Connection, before: i64) -> Result<Deleted, StoreError> {
    let transaction = connection.transaction().map_err(io)?;
    transaction
        .execute_batch(
            "CREATE TEMP TABLE IF NOT EXISTS doomed (run_id TEXT PRIMARY KEY, top INTEGER NOT NULL);
             DELETE FROM temp.doomed;",
        )
        .map_err(io)?;
    transaction
        .execute(
            "INSERT INTO temp.doomed (run_id, top)
             WITH RECURSIVE tree(run_id, top) AS (
                 SELECT run_id, 1 FROM runs
                 WHERE parent_id IS NULL
                   AND status IN ('completed', 'failed', 'cancelled')
                   AND updated_ms < ?1
                 UNION
                 SELECT runs.run_id, 0 FROM runs JOIN tree ON runs.parent_id = tree.run_id
             )
             SELECT run_id, max(top) FROM tree GROUP BY run_id",
            params![before],
        )
        .map_err(io)?;
    let (runs, sub_runs): (i64, i64) = transaction
        .query_row(
            "SELECT coalesce(sum(top), 0), coalesce(sum(1 - top), 0) FROM temp.doomed",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .map_err(io)?;
    let units = transaction
        .execute(
            "DELETE FROM steps WHERE run_id IN (SELECT run_id FROM temp.doomed)",
            [],
        )
        .map_err(io)?;
    transaction
        .execute(
            "DELETE FROM outcomes WHERE run_id IN (SELECT run_id FROM temp.doomed)",
            [],
        )
        .map_err(io)?;
    transaction
        .execute(
            "DELETE FROM runs WHERE run_id IN (SELECT run_id FROM temp.doomed)",
            [],
        )
        .map_err(io)?;
    let cache_entries = transaction
        .execute("DELETE FROM cache WHERE expires_at <= ?1", params![before])
        .map_err(io)?;
    transaction
        .execute("DELETE FROM temp.doomed", [])
        .map_err(io)?;
    transaction.commit().map_err(io)?;
    Ok(Deleted {
        runs: runs as u64,
        sub_runs: sub_runs as u64,
        units: units as u64,
        cache_entries: cache_entries as u64,
    })
}

fn measure(connection: &mut Connection) -> Result<StoreSize, StoreError> {
    let count = |sql: &str| -> Result<i64, StoreError> {
        connection.query_row(sql, [], |row| row.get(0)).map_err(io)
    };
    let free_pages = count("PRAGMA freelist_count")?;
    let page_size = count("PRAGMA page_size")?;
    let units = count("SELECT count(*) FROM steps")?;
    let output_bytes = count("SELECT coalesce(sum(length(output)), 0) FROM steps")?;
    let cache_entries = count("SELECT count(*) FROM cache")?;
    let mut statement = connection
        .prepare("SELECT status, count(*) FROM runs GROUP BY status")
        .map_err(io)?;
    let runs = statement
        .query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
        })
        .map_err(io)?
        .map(|row| row.map(|(status, n)| (status, n as u64)).map_err(io))
        .collect::<Result<_, _>>()?;
    Ok(StoreSize {
        free_bytes: (free_pages * page_size) as u64,
        runs,
        units: units as u64,
        output_bytes: output_bytes as u64,
        cache_entries: cache_entries as u64,
        ..StoreSize::default()
    })
}
