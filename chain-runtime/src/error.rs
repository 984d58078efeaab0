//! Errors: what a step returns ([`StepError`]) and what a run reports ([`ChainError`]).

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::llm::LlmError;

/// A boxed error from user code; the only place the runtime erases error types.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// What a step returns: its typed output, or a [`StepError`].
pub type StepResult<T> = Result<T, StepError>;

/// The error a step returns.
///
/// Any `std::error::Error + Send + Sync + 'static` converts into it with `?`, so a
/// step body can use `?` on I/O, parsing or model errors alike. Whether the
/// runtime may retry it is decided by [`StepError::is_retryable`]: explicit marks
/// first ([`StepError::permanent`], [`StepError::transient`]), then the model
/// error's own classification, then "retryable".
pub struct StepError {
    source: BoxError,
    retryable: Option<bool>,
}

impl StepError {
    /// Wraps any error.
    pub fn new(error: impl Into<BoxError>) -> Self {
        Self {
            source: error.into(),
            retryable: None,
        }
    }

    /// An error from a plain message.
    pub fn msg(message: impl fmt::Display) -> Self {
        Self::new(message.to_string())
    }

    /// Marks the error as final: the runtime will not retry the step.
    #[must_use]
    pub fn permanent(mut self) -> Self {
        self.retryable = Some(false);
        self
    }

    /// Marks the error as transient: the runtime may retry the step.
    #[must_use]
    pub fn transient(mut self) -> Self {
        self.retryable = Some(true);
        self
    }

    /// Whether a retry may succeed where this attempt failed.
    pub fn is_retryable(&self) -> bool {
        if let Some(retryable) = self.retryable {
            return retryable;
        }
        if let Some(llm) = self.source.downcast_ref::<LlmError>() {
            return llm.is_retryable();
        }
        if let Some(chain) = self.source.downcast_ref::<ChainError>() {
            return chain.kind().is_retryable();
        }
        true
    }

    /// The wrapped error.
    pub fn source_ref(&self) -> &(dyn StdError + Send + Sync + 'static) {
        &*self.source
    }

    /// Looks for an error of type `E` in the wrapped error.
    pub fn downcast_ref<E: StdError + 'static>(&self) -> Option<&E> {
        self.source.downcast_ref::<E>()
    }

    /// Unwraps into the boxed source error.
    pub fn into_source(self) -> BoxError {
        self.source
    }
}

impl<E> From<E> for StepError
where
    E: StdError + Send + Sync + 'static,
{
    fn from(error: E) -> Self {
        Self::new(error)
    }
}

impl fmt::Debug for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StepError")
            .field("source", &self.source)
            .field("retryable", &self.retryable)
            .finish()
    }
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.source, f)
    }
}

/// Why a step, and so its run, failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FailureKind {
    /// The step returned an error.
    #[error("{source}")]
    Failed {
        /// The step's error.
        #[source]
        source: BoxError,
        /// Whether a retry may succeed, as the step's error said
        /// ([`StepError::is_retryable`]).
        retryable: bool,
    },
    /// The step's output was rejected by a validation hook.
    #[error("output rejected by validation: {message}")]
    Validation {
        /// What the validator said.
        message: String,
    },
    /// The step panicked; the panic was caught and the process goes on.
    #[error("the step panicked: {message}")]
    Panicked {
        /// The panic payload, when it was a string.
        message: String,
    },
    /// An attempt ran longer than the step's timeout.
    #[error("the attempt timed out after {after:?}")]
    TimedOut {
        /// The timeout that elapsed.
        after: Duration,
    },
    /// The checkpoint store failed, or holds something this run cannot use.
    #[error("checkpoint: {0}")]
    Checkpoint(#[source] crate::store::StoreError),
    /// The run to resume was started by a different definition of the chain.
    #[error(
        "run {run_id} was started by a different definition of chain `{chain}` (fingerprint {stored:016x}, now {current:016x}); resume it with the code that started it, or start a new run"
    )]
    DefinitionChanged {
        /// The run.
        run_id: crate::ids::RunId,
        /// The chain.
        chain: String,
        /// The fingerprint stored with the run.
        stored: u64,
        /// The fingerprint of the chain now.
        current: u64,
    },
    /// A named run was started again with another input than the one it
    /// recorded.
    #[error(
        "run {run_id} exists with another input; a named run always runs on the input it started with: give new work a new run id"
    )]
    InputChanged {
        /// The run.
        run_id: crate::ids::RunId,
    },
    /// On re-execution, a step made a call (a sub-chain) that differs from
    /// the one the journal recorded at the same address: steps must make
    /// their calls in the same order, with the same inputs, every time.
    #[error(
        "on replay, call #{ordinal} of step `{step}` is {now}, but the journal recorded {recorded} at that address; a step must make its calls in the same order with the same inputs on every execution (start a new run to change them)"
    )]
    ReplayMismatch {
        /// The step making the call.
        step: &'static str,
        /// Which call of the step, from 0.
        ordinal: u32,
        /// The call the journal holds.
        recorded: String,
        /// The call made now.
        now: String,
    },
    /// The step went past its `deadline` (all attempts and backoff together).
    #[error("the step went past its deadline of {after:?} over all its attempts")]
    StepDeadline {
        /// The deadline.
        after: Duration,
    },
    /// The run went past the runtime's `run_deadline`; its steps in flight were cancelled.
    #[error("the run went past its deadline of {after:?}")]
    DeadlineExceeded {
        /// The deadline.
        after: Duration,
    },
    /// The run waits for input from outside (human steps): not a failure;
    /// the run is suspended in its store until an answer resumes it.
    #[error("the run waits for {}", crate::human::waiting_keys(waiting))]
    Suspended {
        /// What it waits for.
        waiting: Vec<crate::human::Waiting>,
    },
    /// Nobody answered a human step before its `wait` ran out, and the step
    /// has no `fallback`.
    #[error("nobody answered `{key}` within its wait of {wait:?}")]
    Unanswered {
        /// The key.
        key: &'static str,
        /// The step's `wait`.
        wait: Duration,
    },
    /// A broken runtime invariant: a bug in prompt-chain, reported instead of a panic.
    #[error("internal error in prompt-chain: {message}")]
    Internal {
        /// What went wrong.
        message: String,
    },
}

impl FailureKind {
    /// Whether retrying the step could help.
    pub fn is_retryable(&self) -> bool {
        match self {
            FailureKind::Failed { retryable, .. } => *retryable,
            FailureKind::TimedOut { .. }
            | FailureKind::StepDeadline { .. }
            | FailureKind::DeadlineExceeded { .. } => true,
            FailureKind::Validation { .. }
            | FailureKind::Panicked { .. }
            | FailureKind::Checkpoint(_)
            | FailureKind::DefinitionChanged { .. }
            | FailureKind::ReplayMismatch { .. }
            | FailureKind::InputChanged { .. }
            | FailureKind::Suspended { .. }
            | FailureKind::Unanswered { .. }
            | FailureKind::Internal { .. } => false,
        }
    }
}

/// The error of a failed run: which step failed, on which attempt, what had been
/// computed by then, and why.
///
/// `completed()` holds every key that had a value when the run stopped (chain
/// inputs included) as JSON, so a failure can be logged or inspected without
/// re-running anything.
pub struct ChainError {
    inner: Box<Inner>,
}

struct Inner {
    chain: &'static str,
    step: Option<&'static str>,
    key: Option<&'static str>,
    index: Option<usize>,
    attempt: u32,
    /// For a map step, the item that failed (from 0).
    item: Option<usize>,
    completed: Map<String, Value>,
    kind: FailureKind,
}

impl ChainError {
    /// An error of step `index` of `chain`.
    pub fn step_failed(
        chain: &'static str,
        step: &'static str,
        key: &'static str,
        index: usize,
        attempt: u32,
        kind: FailureKind,
    ) -> Self {
        Self {
            inner: Box::new(Inner {
                chain,
                step: Some(step),
                key: Some(key),
                index: Some(index),
                attempt,
                item: None,
                completed: Map::new(),
                kind,
            }),
        }
    }

    /// An error of the run itself, not of one step.
    pub fn run_failed(chain: &'static str, kind: FailureKind) -> Self {
        Self {
            inner: Box::new(Inner {
                chain,
                step: None,
                key: None,
                index: None,
                attempt: 0,
                item: None,
                completed: Map::new(),
                kind,
            }),
        }
    }

    /// Adds completed outputs (the run's context when it failed) to those
    /// the error already holds (a map step's finished items).
    #[must_use]
    pub fn with_completed(mut self, completed: Map<String, Value>) -> Self {
        self.inner.completed.extend(completed);
        self
    }

    /// Marks the error as that of item `item` (from 0) of a map step.
    #[must_use]
    pub fn with_item(mut self, item: usize) -> Self {
        self.inner.item = Some(item);
        self
    }

    /// For a failed map step, the item that failed (from 0): the
    /// outermost map on the failure's path (a mapped sub-chain's element,
    /// not a map inside it).
    pub fn item(&self) -> Option<usize> {
        self.item_with_key().map(|(item, _)| item)
    }

    /// The outermost map element on the failure's path, with its map's key.
    fn item_with_key(&self) -> Option<(usize, Option<&'static str>)> {
        let mut current = self;
        loop {
            if let Some(item) = current.inner.item {
                return Some((item, current.inner.key));
            }
            match &current.inner.kind {
                FailureKind::Failed { source, .. } => current = source.downcast_ref()?,
                _ => return None,
            }
        }
    }

    /// Name of the chain whose run failed.
    pub fn chain(&self) -> &'static str {
        self.inner.chain
    }

    /// Name of the failed step (its function), if a step failed.
    pub fn step(&self) -> Option<&'static str> {
        self.inner.step
    }

    /// Key the failed step was to write.
    pub fn key(&self) -> Option<&'static str> {
        self.inner.key
    }

    /// Index of the failed step in declaration order (0-based).
    pub fn index(&self) -> Option<usize> {
        self.inner.index
    }

    /// The attempt that failed last (1-based; 0 when no step ran).
    pub fn attempt(&self) -> u32 {
        self.inner.attempt
    }

    /// Every key that had a value when the run stopped, as JSON.
    pub fn completed(&self) -> &Map<String, Value> {
        &self.inner.completed
    }

    /// Why the step failed.
    pub fn kind(&self) -> &FailureKind {
        &self.inner.kind
    }

    /// Whether retrying could help (see [`FailureKind::is_retryable`]).
    pub fn is_retryable(&self) -> bool {
        self.inner.kind.is_retryable()
    }

    /// The path from this chain down to the step that failed first, through
    /// sub-chains: `["support_router", "technical_support", "search_kb"]`.
    pub fn path(&self) -> Vec<&'static str> {
        let mut path = vec![self.inner.chain];
        let mut current = self;
        while let Some(step) = current.inner.step {
            path.push(step);
            let FailureKind::Failed { source, .. } = &current.inner.kind else {
                break;
            };
            let Some(inner) = source.downcast_ref::<ChainError>() else {
                break;
            };
            if inner.inner.chain != step {
                path.push(inner.inner.chain);
            }
            current = inner;
        }
        path
    }

    /// The model error that ended the run, if a model call did (looked up
    /// through sub-chains): to tell a rate limit from a reply that never
    /// parsed without matching on text.
    pub fn llm_error(&self) -> Option<&crate::llm::LlmError> {
        match &self.root_cause().inner.kind {
            FailureKind::Failed { source, .. } => source.downcast_ref(),
            _ => None,
        }
    }

    /// The innermost chain error: for a failure inside a sub-chain, the sub-chain's
    /// own error (recursively); otherwise `self`.
    pub fn root_cause(&self) -> &ChainError {
        let mut current = self;
        while let FailureKind::Failed { source, .. } = &current.inner.kind {
            match source.downcast_ref::<ChainError>() {
                Some(inner) => current = inner,
                None => break,
            }
        }
        current
    }
}

impl fmt::Debug for ChainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChainError")
            .field("chain", &self.inner.chain)
            .field("step", &self.inner.step)
            .field("key", &self.inner.key)
            .field("index", &self.inner.index)
            .field("attempt", &self.inner.attempt)
            .field("item", &self.inner.item)
            .field("completed", &self.inner.completed)
            .field("kind", &self.inner.kind)
            .finish()
    }
}

impl fmt::Display for ChainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let root = self.root_cause();
        if root.is_suspension() {
            return write!(
                f,
                "chain `{}` is suspended: {}",
                root.inner.chain, root.inner.kind
            );
        }
        match (root.inner.step, root.inner.index) {
            (Some(_), Some(index)) => match (root.inner.item, self.item_with_key()) {
                (Some(item), _) => write!(
                    f,
                    "step `{}` (#{index}) failed on item {item}, attempt {}: {}",
                    self.path().join(" › "),
                    root.inner.attempt,
                    root.inner.kind
                ),
                (None, Some((item, key))) => write!(
                    f,
                    "step `{}` (#{index}) failed on attempt {} (in item {item} of `{}`): {}",
                    self.path().join(" › "),
                    root.inner.attempt,
                    key.unwrap_or("?"),
                    root.inner.kind
                ),
                (None, None) => write!(
                    f,
                    "step `{}` (#{index}) failed on attempt {}: {}",
                    self.path().join(" › "),
                    root.inner.attempt,
                    root.inner.kind
                ),
            },
            _ => write!(
                f,
                "chain `{}` failed: {}",
                self.path().join(" › "),
                root.inner.kind
            ),
        }
    }
}

impl StdError for ChainError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match &self.inner.kind {
            FailureKind::Failed { source, .. } => Some(&**source),
            _ => None,
        }
    }
}
