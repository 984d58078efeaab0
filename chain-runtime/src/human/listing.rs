//! Listing what suspended runs wait for, and who answered.

use std::collections::HashSet;

use serde::de::DeserializeOwned;

use super::{Answered, Waiting, author_unit};
use crate::ids::{RunId, unix_ms};
use crate::runtime::Runtime;
use crate::store::{RunQuery, StoreError, StoredStatus};

/// Every question suspended runs in `runtime`'s store wait for (of `chain`,
/// or of every chain), oldest first.
pub async fn waiting(runtime: &Runtime, chain: Option<&str>) -> Result<Vec<Waiting>, StoreError> {
    let store = runtime.store().ok_or(StoreError::NoStore)?;
    let open = store.open_questions().await?;
    // The asking runs are suspended; a sub-chain's question also needs its
    // root run suspended (a root that failed on another branch waits for
    // nothing), looked up once for all of them.
    let mut live: HashSet<RunId> = open.iter().map(|open| open.run_id).collect();
    let mut questions = Vec::with_capacity(open.len());
    for open in open {
        let run_id = open.run_id;
        match serde_json::from_slice::<Waiting>(&open.question) {
            Ok(question) if chain.is_none_or(|chain| question.chain == chain) => {
                questions.push(question);
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%run_id, %error, "an unreadable question is not listed"),
        }
    }
    if questions
        .iter()
        .any(|question| !live.contains(&question.root_run_id()))
    {
        let roots = RunQuery::all().status(StoredStatus::Suspended);
        live.extend(store.list_runs(&roots).await?.iter().map(|run| run.run_id));
        questions.retain(|question| live.contains(&question.root_run_id()));
    }
    questions.sort_by(|a, b| {
        (a.asked_unix_ms, &a.key, a.run_id).cmp(&(b.asked_unix_ms, &b.key, b.run_id))
    });
    Ok(questions)
}

/// The suspended root runs of `chain` with a question whose `wait` ran out
/// (asked by the run itself or inside one of its sub-chains).
pub async fn expired(runtime: &Runtime, chain: &str) -> Result<Vec<RunId>, StoreError> {
    let now = unix_ms();
    let mut runs: Vec<RunId> = waiting(runtime, None)
        .await?
        .into_iter()
        .filter(|question| question.root_chain() == chain && question.expired_at(now))
        .map(|question| question.root_run_id())
        .collect();
    runs.sort();
    runs.dedup();
    Ok(runs)
}

/// Who answered `key` of run `run_id`, if it was answered through
/// [`answer`](super::answer) or [`answer_within`](super::answer_within).
pub async fn answered(
    runtime: &Runtime,
    run_id: RunId,
    key: &str,
) -> Result<Option<Answered>, StoreError> {
    let store = runtime.store().ok_or(StoreError::NoStore)?;
    let Some(run) = store.load_run(run_id).await? else {
        return Err(StoreError::NotFound { run_id });
    };
    Ok(run
        .steps
        .get(&(author_unit(key), 0))
        .and_then(|bytes| decode(bytes)))
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    serde_json::from_slice(bytes).ok()
}
