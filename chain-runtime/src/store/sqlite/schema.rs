//! The SQLite store's schema, its record checksums, and the migration of
//! files written by earlier versions.
//!
//! Version 2 (this one): run ids are text (named runs), runs carry their
//! parent, start and update times, an owner's lease and a count of recorded
//! units (so a step row that went missing is noticed, never re-run).
//! Version 1 (`user_version` 0, integer run ids) is migrated on open, inside
//! one transaction; a file from a newer version is refused.

use rusqlite::{Connection, params};

use super::super::StoreError;
use crate::ids::{RunId, fnv1a};

/// The schema version this code writes.
pub(super) const VERSION: i64 = 2;

const CREATE: &str = "
    CREATE TABLE IF NOT EXISTS runs (
        run_id TEXT PRIMARY KEY,
        parent_id TEXT,
        chain TEXT NOT NULL,
        fingerprint INTEGER NOT NULL,
        input BLOB NOT NULL,
        input_checksum INTEGER NOT NULL,
        status TEXT NOT NULL,
        started_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL,
        owner TEXT,
        lease_until INTEGER NOT NULL DEFAULT 0,
        units INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX IF NOT EXISTS runs_by_start ON runs (started_ms);
    CREATE TABLE IF NOT EXISTS steps (
        run_id TEXT NOT NULL,
        key TEXT NOT NULL,
        iteration INTEGER NOT NULL,
        output BLOB NOT NULL,
        checksum INTEGER NOT NULL,
        PRIMARY KEY (run_id, key, iteration)
    );
    CREATE TABLE IF NOT EXISTS outcomes (
        run_id TEXT NOT NULL,
        ended_ms INTEGER NOT NULL,
        outcome BLOB NOT NULL
    );
    CREATE INDEX IF NOT EXISTS outcomes_by_run ON outcomes (run_id);
    CREATE TABLE IF NOT EXISTS cache (
        key TEXT PRIMARY KEY,
        output BLOB NOT NULL,
        checksum INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
    );";

fn io(error: impl std::fmt::Display) -> StoreError {
    StoreError::Io(error.to_string())
}

/// The checksum of a record's bytes, bound to where it lives so a record
/// copied to another run, key or iteration does not pass.
pub(super) fn checksum(run_id: &str, key: &str, iteration: i64, output: &[u8]) -> i64 {
    let place = fnv1a(format!("{run_id}/{key}/{iteration}").as_bytes(), 0);
    fnv1a(output, place) as i64
}

/// Creates the schema, or migrates an earlier one, or refuses a later one.
pub(super) fn prepare(connection: &mut Connection, path: &str) -> Result<(), StoreError> {
    let version: i64 = connection
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(io)?;
    if version > VERSION {
        return Err(StoreError::Io(format!(
            "the checkpoint store {path} was written by a newer prompt-chain (schema {version}, this one reads up to {VERSION}); open it with that version, or start a new file"
        )));
    }
    let has_runs: bool = connection
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'runs'",
            [],
            |row| row.get::<_, i64>(0),
        )
        .map_err(io)?
        > 0;
    if version < VERSION && has_runs {
        migrate_v1(connection, path)?;
    }
    connection.execute_batch(CREATE).map_err(io)?;
    connection
        .execute_batch(&format!("PRAGMA user_version = {VERSION};"))
        .map_err(io)
}

/// Rewrites a version-1 file: integer run ids become `run-` and 16 hex
/// digits (what they always displayed as), and every record's checksum is
/// checked under the old scheme and rewritten under the new one. Nothing is
/// changed unless every record passes.
fn migrate_v1(connection: &mut Connection, path: &str) -> Result<(), StoreError> {
    let refuse = |what: String| {
        StoreError::Corrupt(format!(
            "{what}, found while upgrading {path} to the current schema; nothing was changed: restore the file from a backup, or move it aside and start a new one"
        ))
    };
    let old_sum = |run_id: i64, key: &str, iteration: i64, output: &[u8]| {
        let place = fnv1a(format!("{run_id}/{key}/{iteration}").as_bytes(), 0);
        fnv1a(output, place) as i64
    };
    let text_id = |run_id: i64| RunId::from_u64(run_id as u64).to_string();
    let transaction = connection.transaction().map_err(io)?;
    {
        let mut runs = Vec::new();
        let mut statement = transaction
            .prepare("SELECT run_id, chain, fingerprint, input, input_checksum, status FROM runs")
            .map_err(io)?;
        let rows = statement
            .query_map([], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, i64>(2)?,
                    row.get::<_, Vec<u8>>(3)?,
                    row.get::<_, i64>(4)?,
                    row.get::<_, String>(5)?,
                ))
            })
            .map_err(io)?;
        for row in rows {
            let (id, chain, fingerprint, input, sum, status) = row.map_err(io)?;
            if old_sum(id, "<input>", 0, &input) != sum {
                return Err(refuse(format!(
                    "the input of run {} is corrupt",
                    text_id(id)
                )));
            }
            runs.push((id, chain, fingerprint, input, status));
        }
        let mut steps = Vec::new();
        let mut statement = transaction
            .prepare("SELECT run_id, key, iteration, output, checksum FROM steps")
            .map_err(io)?;
        let rows = statement
            .query_map([], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, i64>(2)?,
                    row.get::<_, Vec<u8>>(3)?,
                    row.get::<_, i64>(4)?,
                ))
            })
            .map_err(io)?;
        for row in rows {
            let (id, key, iteration, output, sum) = row.map_err(io)?;
            if old_sum(id, &key, iteration, &output) != sum {
                return Err(refuse(format!(
                    "the output of step `{key}` of run {} is corrupt",
                    text_id(id)
                )));
            }
            steps.push((id, key, iteration, output));
        }
        transaction
            .execute_batch(
                "ALTER TABLE runs RENAME TO runs_v1; ALTER TABLE steps RENAME TO steps_v1;",
            )
            .map_err(io)?;
        transaction.execute_batch(CREATE).map_err(io)?;
        let now = crate::ids::unix_ms() as i64;
        for (id, chain, fingerprint, input, status) in runs {
            let run_id = text_id(id);
            let units = steps.iter().filter(|step| step.0 == id).count() as i64;
            transaction
                .execute(
                    "INSERT INTO runs (run_id, chain, fingerprint, input, input_checksum, status, started_ms, updated_ms, units)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8)",
                    params![run_id, chain, fingerprint, input, checksum(&run_id, "<input>", 0, &input), status, now, units],
                )
                .map_err(io)?;
        }
        for (id, key, iteration, output) in steps {
            let run_id = text_id(id);
            let sum = checksum(&run_id, &key, iteration, &output);
            transaction
                .execute(
                    "INSERT INTO steps (run_id, key, iteration, output, checksum) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![run_id, key, iteration, output, sum],
                )
                .map_err(io)?;
        }
        transaction
            // Cache entries are only a saving: they are dropped, not converted.
            .execute_batch("DROP TABLE runs_v1; DROP TABLE steps_v1; DELETE FROM cache;")
            .map_err(io)?;
    }
    transaction
        .execute_batch(&format!("PRAGMA user_version = {VERSION};"))
        .map_err(io)?;
    transaction.commit().map_err(io)
}
