//! The open questions of suspended runs, in one query: listing what 100,000
//! suspended runs wait for must not read 100,000 runs one by one.

use rusqlite::params;

use super::schema::checksum;
use super::{SqliteStore, io, parse_run_id};
use crate::store::{BoxFuture, OpenQuestion, StoreError, StoredStatus};

impl SqliteStore {
    /// [`CheckpointStore::open_questions`](crate::store::CheckpointStore::open_questions):
    /// units `?key` of suspended runs without a unit `key`, checksums checked.
    pub(super) fn open_questions_query(
        &self,
    ) -> BoxFuture<'static, Result<Vec<OpenQuestion>, StoreError>> {
        self.with(|connection| {
            // `?` is 0x3F and `@` 0x40: the range is every key starting with `?`.
            let mut statement = connection
                .prepare(
                    "SELECT q.run_id, q.key, q.output, q.checksum
                     FROM runs r JOIN steps q ON q.run_id = r.run_id
                     WHERE r.status = ?1 AND q.key >= '?' AND q.key < '@' AND q.iteration = 0
                       AND NOT EXISTS (SELECT 1 FROM steps a
                                       WHERE a.run_id = q.run_id AND a.key = substr(q.key, 2)
                                         AND a.iteration = 0)",
                )
                .map_err(io)?;
            let rows = statement
                .query_map(params![StoredStatus::Suspended.as_str()], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, Vec<u8>>(2)?,
                        row.get::<_, i64>(3)?,
                    ))
                })
                .map_err(io)?;
            let mut questions = Vec::new();
            for row in rows {
                let (id, key, output, sum) = row.map_err(io)?;
                if checksum(&id, &key, 0, &output) != sum {
                    return Err(StoreError::Corrupt(format!(
                        "the question `{key}` of run {id}"
                    )));
                }
                questions.push(OpenQuestion {
                    run_id: parse_run_id(&id)?,
                    question: output,
                });
            }
            Ok(questions)
        })
    }
}
