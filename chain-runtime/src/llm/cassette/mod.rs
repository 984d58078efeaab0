//! Cassettes: a chain's model calls recorded once against a real model and
//! replayed offline, in `cargo test`, with no network.
//!
//! A cassette is a JSON Lines file, one model call per line, diffable in a
//! review: the step that asked, the model, the request, and the reply (its
//! text, tool calls, finish reason, usage, and the pieces a streamed reply
//! arrived in) or the failure. API keys are never written: requests carry
//! none, and the values of the process's `*_API_KEY` / `*_TOKEN`
//! variables are blanked out of every line before it is written.
//!
//! [`Cassette::record`] wraps a real model in a [`RecordingModel`];
//! [`Cassette::replay`] reads a cassette into [`ReplayModel`]s, which answer
//! a request from the recorded call with the same stable hash (the step and
//! the request's JSON). A request with no recording is a loud error naming
//! the step and showing the closest recorded request as a diff. Identical
//! requests are answered in the order they were recorded (the last answer
//! repeats).
//!
//! ```no_run
//! # use prompt_chain_runtime::llm::{Cassette, ScriptedModel};
//! # fn real_model() -> ScriptedModel { ScriptedModel::new() }
//! # fn main() -> Result<(), prompt_chain_runtime::llm::LlmError> {
//! let path = "tests/cassettes/router.jsonl";
//! // PROMPT_CHAIN_RECORD=1 records against the real model; otherwise replays.
//! let model = Cassette::from_env(path, real_model)?;
//! let rt = prompt_chain_runtime::Runtime::builder().shared_model(model).build();
//! # Ok(())
//! # }
//! ```

mod record;
mod replay;

use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use record::RecordingModel;
pub use replay::ReplayModel;

use super::{ChatRequest, Completion, LanguageModel, LlmError};

/// The format of a cassette's lines; a line of another version is refused.
const VERSION: u32 = 1;

/// The environment variable that makes [`Cassette::from_env`] record.
pub const RECORD_ENV: &str = "PROMPT_CHAIN_RECORD";

/// Whether `PROMPT_CHAIN_RECORD` asks to record (set, not empty, not `0`).
pub fn recording_requested() -> bool {
    std::env::var(RECORD_ENV).is_ok_and(|value| records(&value))
}

/// Whether a value of `PROMPT_CHAIN_RECORD` asks to record.
pub(crate) fn records(value: &str) -> bool {
    let value = value.trim();
    !value.is_empty() && value != "0"
}

/// One recorded model call: a line of a cassette.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Entry {
    /// The line format's version.
    v: u32,
    /// The request's stable hash (written for readers; recomputed on load).
    hash: String,
    /// The step that made the call, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    step: Option<String>,
    /// The model's name.
    model: String,
    /// The request as sent.
    request: serde_json::Value,
    /// The reply, for a call that succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reply: Option<Completion>,
    /// The pieces a streamed reply arrived in (empty when not streamed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    deltas: Vec<String>,
    /// The failure, for a call that failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<RecordedError>,
}

/// A failed call, as recorded.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RecordedError {
    message: String,
    retryable: bool,
}

impl Entry {
    /// What a replay answers with.
    fn answer(&self) -> Result<Completion, LlmError> {
        match (&self.reply, &self.error) {
            (Some(reply), _) => Ok(reply.clone()),
            (None, Some(error)) => Err(LlmError::Recorded {
                message: error.message.clone(),
                retryable: error.retryable,
            }),
            (None, None) => Err(LlmError::Cassette {
                message: format!(
                    "the cassette's call of {} has neither a reply nor an error",
                    describe_step(self.step.as_deref())
                ),
            }),
        }
    }
}

/// A request as a cassette keys it: its JSON (the fields a provider sees).
fn request_json(request: &ChatRequest) -> serde_json::Value {
    serde_json::to_value(request).unwrap_or(serde_json::Value::Null)
}

/// The stable hash of a call: the step's name and the request's JSON.
fn hash_of(step: Option<&str>, request: &serde_json::Value) -> String {
    let text = request.to_string();
    let seed = crate::ids::fnv1a(step.unwrap_or("").as_bytes(), 0);
    format!("{:016x}", crate::ids::fnv1a(text.as_bytes(), seed))
}

/// "step `name`", or what a call outside any step is.
fn describe_step(step: Option<&str>) -> String {
    match step {
        Some(step) => format!("step `{step}`"),
        None => "a call made outside any step".to_owned(),
    }
}

/// Opens cassettes for recording or replay.
#[derive(Debug, Clone, Copy)]
pub struct Cassette;

impl Cassette {
    /// Records every call `model` answers into a new cassette at `path`
    /// (replacing one that is there; missing directories are created).
    pub fn record(
        path: impl AsRef<Path>,
        model: impl LanguageModel,
    ) -> Result<RecordingModel, LlmError> {
        RecordingModel::create(path.as_ref(), Arc::new(model))
    }

    /// Reads the cassette at `path` and answers as its only model. A
    /// cassette of several models (a runtime with named models) is replayed
    /// with [`Cassette::replay_named`].
    pub fn replay(path: impl AsRef<Path>) -> Result<ReplayModel, LlmError> {
        ReplayModel::open(path.as_ref(), None)
    }

    /// Reads the cassette at `path` and answers the calls recorded for the
    /// model named `model`.
    pub fn replay_named(path: impl AsRef<Path>, model: &str) -> Result<ReplayModel, LlmError> {
        ReplayModel::open(path.as_ref(), Some(model))
    }

    /// Records against the model `real` builds when the environment variable
    /// `PROMPT_CHAIN_RECORD` is set (to anything but `0`), and replays the
    /// cassette otherwise — so re-recording is one variable, and tests never
    /// touch the network by default.
    pub fn from_env<M: LanguageModel>(
        path: impl AsRef<Path>,
        real: impl FnOnce() -> M,
    ) -> Result<Arc<dyn LanguageModel>, LlmError> {
        Ok(if recording_requested() {
            Arc::new(Self::record(path, real())?)
        } else {
            Arc::new(Self::replay(path)?)
        })
    }
}

/// A cassette path for messages.
fn shown(path: &Path) -> String {
    path.display().to_string()
}

/// An I/O failure on a cassette, as a model error.
fn io_error(what: &str, path: &Path, error: impl std::fmt::Display) -> LlmError {
    LlmError::Cassette {
        message: format!("could not {what} the cassette {}: {error}", shown(path)),
    }
}

#[cfg(test)]
mod tests;
