//! How each start of a run ended (`RunOutcome`s as JSON), kept in their
//! own table beside the run: written with the run's end (`batch.rs`), read
//! by the runs CLI, deleted with the run (`housekeeping.rs`).

use rusqlite::{Connection, params};

use super::io;
use crate::store::StoreError;

/// The outcomes of run `id`, oldest first.
pub(super) fn read(connection: &mut Connection, id: &str) -> Result<Vec<Vec<u8>>, StoreError> {
    let mut statement = connection
        .prepare_cached("SELECT outcome FROM outcomes WHERE run_id = ?1 ORDER BY rowid")
        .map_err(io)?;
    let rows = statement
        .query_map(params![id], |row| row.get::<_, Vec<u8>>(0))
        .map_err(io)?;
    rows.map(|row| row.map_err(io)).collect()
}
