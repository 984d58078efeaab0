//! Listing what suspended runs wait for, and who answered.

use std::collections::HashMap;

use serde::de::DeserializeOwned;

use super::{Answered, Waiting, author_unit};
use crate::ids::{RunId, unix_ms};
use crate::runtime::Runtime;
use crate::store::{RunQuery, StoreError, StoredStatus};

/// Every question suspended runs in `runtime`'s store wait for (of `chain`,
/// or of every chain), oldest first.
pub async fn waiting(runtime: &Runtime, chain: Option<&str>) -> Result<Vec<Waiting>, StoreError> {
    let store = runtime.store().ok_or(StoreError::NoStore)?;
    let mut query = RunQuery::all()
        .status(StoredStatus::Suspended)
        .with_sub_runs();
    if let Some(chain) = chain {
        query = query.chain(chain);
    }
    let suspended = store.list_runs(&query).await?;
    let mut questions = Vec::new();
    for summary in &suspended {
        let Some(run) = store.load_run(summary.run_id).await? else {
            continue;
        };
        for ((unit, iteration), bytes) in &run.steps {
            let Some(key) = unit.strip_prefix('?') else {
                continue;
            };
            if *iteration != 0 || run.steps.contains_key(&(key.to_owned(), 0)) {
                continue;
            }
            if let Some(question) = decode::<Waiting>(bytes) {
                questions.push(question);
            }
        }
    }
    // A sub-chain's question counts while its root run is suspended (a root
    // that failed on another branch waits for nothing). Listing by chain
    // lists the sub-chains' runs apart: their roots are looked up.
    let mut roots: HashMap<RunId, bool> = suspended
        .iter()
        .map(|summary| (summary.run_id, true))
        .collect();
    let mut kept = Vec::with_capacity(questions.len());
    for question in questions {
        let root = question.root_run_id();
        let live = match roots.get(&root) {
            Some(live) => *live,
            None => {
                let live = store
                    .load_run(root)
                    .await?
                    .is_some_and(|run| run.status == StoredStatus::Suspended);
                roots.insert(root, live);
                live
            }
        };
        if live {
            kept.push(question);
        }
    }
    let mut questions = kept;
    questions.sort_by_key(|question| (question.asked_unix_ms, question.key.clone()));
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

/// Who answered `key` of run `run_id`, if it was answered through [`answer`].
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
