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
//!
//! A human step inside a sub-chain (or inside each element of a mapped
//! sub-chain) suspends the sub-chain's run and, through the calling step,
//! the root run. Its question names the root ([`Waiting::within`]); answer it
//! through the root chain's generated `answer_within` with a [`Reply`] made
//! by the sub-chain's `reply::<key>`, which records the answer and resumes
//! the root run.

mod listing;
mod recording;

pub use listing::{answered, expired, waiting};
pub use recording::{answer, answer_within};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{ChainError, FailureKind};
use crate::ids::RunId;
use crate::store::StoreError;

/// What a suspended run waits for: one human step's question.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Waiting {
    /// The run that asked (a sub-chain's run for a human step inside a
    /// sub-chain: see [`within`](Self::within)).
    pub run_id: RunId,
    /// The chain that declares the human step.
    pub chain: String,
    /// For a question asked inside a sub-chain: the root run it suspended,
    /// the one to resume (`None` when the asking run is the root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within: Option<Within>,
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

/// The root run a question inside a sub-chain suspended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Within {
    /// The root run.
    pub run_id: RunId,
    /// Its chain: answer through this chain's generated `answer_within`.
    pub chain: String,
}

impl Waiting {
    /// The run an answer resumes: the root run.
    pub fn root_run_id(&self) -> RunId {
        self.within
            .as_ref()
            .map_or(self.run_id, |within| within.run_id)
    }

    /// The root run's chain.
    pub fn root_chain(&self) -> &str {
        self.within
            .as_ref()
            .map_or(&self.chain, |within| &within.chain)
    }

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

/// A typed answer to human step `key` of a sub-chain, made by the
/// sub-chain's generated `reply::<key>` and applied by the root chain's
/// `answer_within` (which resumes the root run).
#[derive(Debug, Clone, PartialEq)]
pub struct Reply<T> {
    chain: &'static str,
    key: &'static str,
    answer: Answer<T>,
}

impl<T> Reply<T> {
    /// The answer `answer` to human step `key` of chain `chain`. Generated
    /// code calls this with the step's type; not meant to be called by hand.
    #[doc(hidden)]
    pub fn new(chain: &'static str, key: &'static str, answer: Answer<T>) -> Self {
        Self { chain, key, answer }
    }

    /// Records who answered.
    #[must_use]
    pub fn by(mut self, author: impl Into<String>) -> Self {
        self.answer.author = Some(author.into());
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
    /// The question was asked inside a sub-chain: answering it resumes the
    /// root run, so it is answered through the root chain.
    #[error(
        "run {run_id} is a sub-chain's run inside run {root_run_id} of chain `{root_chain}`: answer it with `{root_chain}::answer_within(&runtime, {run_id}, <sub-chain>::reply::{key}(answer))`, which resumes the root run"
    )]
    Nested {
        /// The asking (sub-chain's) run.
        run_id: RunId,
        /// The key.
        key: &'static str,
        /// The root run.
        root_run_id: RunId,
        /// The root run's chain.
        root_chain: String,
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
