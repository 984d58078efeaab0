//! Recording an answer: the first one wins, and a question asked inside a
//! sub-chain is answered through its root run.

use serde::Serialize;

use super::{Answer, AnswerError, Answered, Reply, Waiting, author_unit, question_unit};
use crate::ids::{RunId, unix_ms};
use crate::runtime::Runtime;
use crate::store::{CheckpointStore, Saved, SavedRun, StoredStatus};

/// Records `answer` for human step `key` of run `run_id` of chain `chain`.
/// Exactly one of two concurrent answers is taken; the other gets
/// [`AnswerError::AlreadyAnswered`]. The run is not resumed here (the
/// generated `answer::<key>` function resumes it). A question asked inside
/// a sub-chain is [`AnswerError::Nested`]: see [`answer_within`].
pub async fn answer<A: Serialize>(
    runtime: &Runtime,
    chain: &'static str,
    run_id: RunId,
    key: &'static str,
    answer: Answer<A>,
) -> Result<(), AnswerError> {
    let store = runtime.store().ok_or(AnswerError::NoStore)?;
    let run = asking_run(store.as_ref(), run_id, chain).await?;
    if run.parent.is_some() {
        let (root_run_id, root_chain, _) = root_of(store.as_ref(), run_id, &run).await?;
        return Err(AnswerError::Nested {
            run_id,
            key,
            root_run_id,
            root_chain,
        });
    }
    record(store.as_ref(), run_id, &run, key, answer).await
}

/// Records `reply` for the question of run `run_id`, which was asked inside
/// a root run of chain `root_chain` (or is such a root run); returns the
/// root run, for the caller to resume. The generated
/// `<root_chain>::answer_within` calls this, then resumes the root run.
pub async fn answer_within<A: Serialize>(
    runtime: &Runtime,
    root_chain: &'static str,
    run_id: RunId,
    reply: Reply<A>,
) -> Result<RunId, AnswerError> {
    let store = runtime.store().ok_or(AnswerError::NoStore)?;
    let run = asking_run(store.as_ref(), run_id, reply.chain).await?;
    let (root_run_id, chain, status) = root_of(store.as_ref(), run_id, &run).await?;
    if chain != root_chain {
        return Err(AnswerError::WrongChain {
            run_id: root_run_id,
            chain,
            expected: root_chain,
        });
    }
    // A root that ended (another branch failed) waits for nothing.
    if matches!(status, StoredStatus::Completed | StoredStatus::Failed) {
        return Err(AnswerError::NotWaiting {
            run_id,
            key: reply.key,
        });
    }
    record(store.as_ref(), run_id, &run, reply.key, reply.answer).await?;
    Ok(root_run_id)
}

/// Run `run_id`, which must be a run of `chain`.
async fn asking_run(
    store: &dyn CheckpointStore,
    run_id: RunId,
    chain: &'static str,
) -> Result<SavedRun, AnswerError> {
    let run = store
        .load_run(run_id)
        .await?
        .ok_or(AnswerError::UnknownRun { run_id })?;
    if run.chain != chain {
        return Err(AnswerError::WrongChain {
            run_id,
            chain: run.chain,
            expected: chain,
        });
    }
    Ok(run)
}

/// The root of run `run_id` (`run` itself for a root run), its chain and
/// status, following the recorded parents.
async fn root_of(
    store: &dyn CheckpointStore,
    run_id: RunId,
    run: &SavedRun,
) -> Result<(RunId, String, StoredStatus), AnswerError> {
    let (mut id, mut parent) = (run_id, run.parent);
    let (mut chain, mut status) = (run.chain.clone(), run.status);
    // Bounded: a parent cycle can only come from a corrupted store.
    for _ in 0..64 {
        let Some(next) = parent else {
            return Ok((id, chain, status));
        };
        let saved = store
            .load_run(next)
            .await?
            .ok_or(AnswerError::UnknownRun { run_id: next })?;
        (id, parent, chain, status) = (next, saved.parent, saved.chain, saved.status);
    }
    Err(AnswerError::UnknownRun { run_id })
}

/// Records `answer` for `key` of stored run `run` (`run_id`).
async fn record<A: Serialize>(
    store: &dyn CheckpointStore,
    run_id: RunId,
    run: &SavedRun,
    key: &'static str,
    answer: Answer<A>,
) -> Result<(), AnswerError> {
    let question = run
        .steps
        .get(&(question_unit(key), 0))
        .and_then(|bytes| serde_json::from_slice::<Waiting>(bytes).ok());
    let Some(question) = question else {
        return Err(AnswerError::NotWaiting { run_id, key });
    };
    if run.steps.contains_key(&(key.to_owned(), 0)) {
        return Err(AnswerError::AlreadyAnswered { run_id, key });
    }
    if matches!(run.status, StoredStatus::Completed | StoredStatus::Failed) {
        return Err(AnswerError::NotWaiting { run_id, key });
    }
    let now = unix_ms();
    if question.expired_at(now) {
        return Err(AnswerError::Expired { run_id, key });
    }
    let value = serde_json::to_vec(&answer.value)
        .map_err(|error| AnswerError::Encode(error.to_string()))?;
    match store.save_step(run_id, key, 0, &value).await? {
        Saved::Recorded => {}
        _ => return Err(AnswerError::AlreadyAnswered { run_id, key }),
    }
    let answered = Answered {
        author: answer.author,
        answered_unix_ms: now,
    };
    if let Ok(bytes) = serde_json::to_vec(&answered) {
        // Who answered is a note beside the answer: losing it loses no answer.
        if let Err(error) = store.save_step(run_id, &author_unit(key), 0, &bytes).await {
            tracing::warn!(%run_id, key, %error, "could not record who answered");
        }
    }
    Ok(())
}
