//! Input from outside a run: a person (or another system) answering a human
//! step (`step!(approval: Approval = human(plan), wait = 48h)`).
//!
//! A run that reaches a human step with no answer records what it waits for
//! (a [`Waiting`]: key, prompt, payload, the answer's JSON Schema, deadline)
//! in its checkpoint store and ends `Suspended`, holding no task and no
//! memory. [`answer`] records an answer (the first one wins); the chain's
//! generated `answer::<key>` function does that with the answer's type
//! checked by the compiler, then resumes the run, which restores every unit
//! recorded before the suspension and continues from the human step.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{ChainError, FailureKind};
use crate::ids::{RunId, unix_ms};
use crate::runtime::Runtime;
use crate::store::{RunQuery, Saved, StoreError, StoredStatus};

/// What a suspended run waits for: one human step's question.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Waiting {
    /// The run.
    pub run_id: RunId,
    /// Its chain.
    pub chain: String,
    /// The key the answer goes under.
    pub key: String,
    /// What to ask (`prompt = "..."`, or a default naming the key).
    pub prompt: String,
    /// What to show with it: the step's inputs, as JSON (an object keyed by
    /// input key).
    pub payload: Value,
    /// The JSON Schema of the answer's type (`null` without the
    /// `structured` feature).
    pub schema: Value,
    /// When the run first asked, in milliseconds since the Unix epoch.
    pub asked_unix_ms: u64,
    /// When the question expires (`wait = D` after it was asked), if it does.
    pub deadline_unix_ms: Option<u64>,
}

impl Waiting {
    /// Whether the question expired at `now_unix_ms`.
    pub fn expired_at(&self, now_unix_ms: u64) -> bool {
        self.deadline_unix_ms
            .is_some_and(|deadline| now_unix_ms >= deadline)
    }
}

/// An answer to a human step, with who gave it.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer<T> {
    pub(crate) value: T,
    pub(crate) author: Option<String>,
}

impl<T> Answer<T> {
    /// An answer with no author recorded.
    pub fn new(value: T) -> Self {
        Self {
            value,
            author: None,
        }
    }

    /// Records who answered.
    #[must_use]
    pub fn by(mut self, author: impl Into<String>) -> Self {
        self.author = Some(author.into());
        self
    }
}

impl<T> From<T> for Answer<T> {
    fn from(value: T) -> Self {
        Self::new(value)
    }
}

/// What a generated `answer::<key>` function takes: the step's answer type
/// `T` itself, or an [`Answer<T>`] saying who answered.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an answer to this human step, which takes `{T}`",
    label = "expected `{T}` (or `Answer<{T}>`), found `{Self}`",
    note = "a human step's answer has the type written on its key: `step!(key: {T} = human(...))`"
)]
pub trait IntoAnswer<T> {
    /// The answer.
    fn into_answer(self) -> Answer<T>;
}

impl<T> IntoAnswer<T> for T {
    fn into_answer(self) -> Answer<T> {
        Answer::new(self)
    }
}

impl<T> IntoAnswer<T> for Answer<T> {
    fn into_answer(self) -> Answer<T> {
        self
    }
}

/// Who answered a human step, and when (recorded beside the answer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answered {
    /// Who answered, if the answer said.
    pub author: Option<String>,
    /// When the answer was recorded, in milliseconds since the Unix epoch.
    pub answered_unix_ms: u64,
}

/// Why an answer was not taken. The run is left as it was.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnswerError {
    /// The runtime has no checkpoint store, so no run can be waiting.
    #[error(
        "this runtime has no checkpoint store, so no run waits for an answer; add one with `Runtime::builder().checkpoints(...)`"
    )]
    NoStore,
    /// The store has no such run.
    #[error("no run {run_id} in the checkpoint store")]
    UnknownRun {
        /// The run.
        run_id: RunId,
    },
    /// The run belongs to another chain.
    #[error("run {run_id} is a run of chain `{chain}`, not of `{expected}`")]
    WrongChain {
        /// The run.
        run_id: RunId,
        /// Its chain.
        chain: String,
        /// The chain whose answer function was called.
        expected: &'static str,
    },
    /// The run is not waiting for this key (it never reached the step, or
    /// it finished).
    #[error("run {run_id} is not waiting for `{key}`")]
    NotWaiting {
        /// The run.
        run_id: RunId,
        /// The key.
        key: &'static str,
    },
    /// The key was answered already (the first answer wins).
    #[error("`{key}` of run {run_id} was answered already; the first answer stands")]
    AlreadyAnswered {
        /// The run.
        run_id: RunId,
        /// The key.
        key: &'static str,
    },
    /// The question's deadline passed: resume the run (or sweep) to apply
    /// its fallback or fail it.
    #[error("the question `{key}` of run {run_id} expired (its `wait` ran out)")]
    Expired {
        /// The run.
        run_id: RunId,
        /// The key.
        key: &'static str,
    },
    /// The answer could not be serialized.
    #[error("the answer could not be serialized: {0}")]
    Encode(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ChainError {
    /// Whether this is a suspension (the run waits for answers), not a failure.
    pub fn is_suspension(&self) -> bool {
        matches!(self.kind(), FailureKind::Suspended { .. })
    }

    /// What a suspended run waits for (empty for a failure).
    pub fn waiting(&self) -> &[Waiting] {
        match self.kind() {
            FailureKind::Suspended { waiting } => waiting,
            _ => &[],
        }
    }

    /// Two suspensions of one run as one: every question of both.
    pub(crate) fn merge_suspension(self, other: ChainError) -> ChainError {
        let mut waiting = self.waiting().to_vec();
        waiting.extend_from_slice(other.waiting());
        ChainError::run_failed(self.chain(), FailureKind::Suspended { waiting })
    }
}

/// The keys of `waiting`, for a message: "`approval` (run T-1)".
pub(crate) fn waiting_keys(waiting: &[Waiting]) -> String {
    let keys: Vec<String> = waiting
        .iter()
        .map(|question| format!("`{}`", question.key))
        .collect();
    match keys.as_slice() {
        [] => "input".to_owned(),
        [one] => format!("an answer to {one}"),
        many => format!("answers to {}", many.join(", ")),
    }
}

/// The unit a question is recorded under: a name no key can have.
pub(crate) fn question_unit(key: &str) -> String {
    format!("?{key}")
}

/// The unit who answered is recorded under.
pub(crate) fn author_unit(key: &str) -> String {
    format!("!{key}")
}

/// Records `answer` for human step `key` of run `run_id` of chain `chain`.
/// Exactly one of two concurrent answers is taken; the other gets
/// [`AnswerError::AlreadyAnswered`]. The run is not resumed here (the
/// generated `answer::<key>` function resumes it).
pub async fn answer<A: Serialize>(
    runtime: &Runtime,
    chain: &'static str,
    run_id: RunId,
    key: &'static str,
    answer: Answer<A>,
) -> Result<(), AnswerError> {
    let store = runtime.store().ok_or(AnswerError::NoStore)?;
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

/// Every question suspended runs in `runtime`'s store wait for (of `chain`,
/// or of every chain), oldest first.
pub async fn waiting(runtime: &Runtime, chain: Option<&str>) -> Result<Vec<Waiting>, StoreError> {
    let store = runtime.store().ok_or(StoreError::NoStore)?;
    let mut query = RunQuery::all().status(StoredStatus::Suspended);
    if let Some(chain) = chain {
        query = query.chain(chain);
    }
    let mut questions = Vec::new();
    for summary in store.list_runs(&query).await? {
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
    questions.sort_by_key(|question| (question.asked_unix_ms, question.key.clone()));
    Ok(questions)
}

/// The suspended runs of `chain` with a question whose `wait` ran out.
pub async fn expired(runtime: &Runtime, chain: &str) -> Result<Vec<RunId>, StoreError> {
    let now = unix_ms();
    let mut runs: Vec<RunId> = waiting(runtime, Some(chain))
        .await?
        .into_iter()
        .filter(|question| question.expired_at(now))
        .map(|question| question.run_id)
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
