//! Tools a model may call from inside a step: `#[tool]` on an
//! `async fn(cx: &ToolCx, args...) -> StepResult<T>` (name, description and
//! the arguments' JSON Schema come from the code), or the [`Tool`] trait by
//! hand. A step hands them to its model with
//! `cx.llm().tool(search::Tool).tool(lookup::Tool).text(prompt)`, which runs
//! the model/tool loop: each turn's calls run at once, a tool's error or
//! malformed arguments go back to the model as that call's result, and every
//! turn and every call is a recorded unit of the step, so a resumed or
//! retried step restores the calls that completed instead of making them
//! again.

use std::fmt;
use std::ops::Deref;

use serde_json::Value;

use crate::context::StepCx;
use crate::error::{BoxError, StepError};
use crate::future::BoxFuture;
use crate::llm::ToolSpec;

/// A tool a model may call. `#[tool]` implements it for an `async fn`; by
/// hand, return the JSON Schema of the arguments from
/// [`parameters`](Tool::parameters) and parse them in [`call`](Tool::call).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a tool",
    label = "expected a tool here",
    note = "mark an `async fn(cx: &ToolCx, ...)` with `#[tool]` and pass its `Tool` (for a function `lookup`: `lookup::Tool`), or implement `prompt_chain::tools::Tool`"
)]
pub trait Tool: Send + Sync + 'static {
    /// The name the model calls it by (letters, digits, `_`, `-`).
    fn name(&self) -> &str;

    /// What it does, for the model to decide when to call it.
    fn description(&self) -> &str;

    /// The JSON Schema of its arguments: an object.
    fn parameters(&self) -> Value;

    /// Runs one call on the model's `arguments` (JSON text) and returns the
    /// result as JSON. An [`ToolError::Arguments`] or a failure goes back
    /// to the model as the call's result; the step goes on.
    fn call<'a>(
        &'a self,
        cx: &'a ToolCx,
        arguments: &'a str,
    ) -> BoxFuture<'a, Result<Value, ToolError>>;

    /// What the model is sent about this tool.
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: self.name().to_owned(),
            description: self.description().to_owned(),
            parameters: self.parameters(),
        }
    }
}

impl fmt::Debug for dyn Tool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tool({})", self.name())
    }
}

/// Why a tool call did not produce a result; the model is told, and may
/// call again.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ToolError {
    /// The model's arguments were not valid JSON for the tool.
    #[error("invalid arguments: {0}")]
    Arguments(String),
    /// The tool failed.
    #[error("{0}")]
    Failed(BoxError),
    /// The tool's result could not be serialized.
    #[error("the result could not be serialized: {0}")]
    Encode(String),
}

impl ToolError {
    /// Arguments that did not deserialize.
    pub fn arguments(error: impl fmt::Display) -> Self {
        Self::Arguments(error.to_string())
    }

    /// A failure of the tool itself.
    pub fn failed(error: StepError) -> Self {
        Self::Failed(error.into_source())
    }
}

/// What a tool call runs in: its step's [`StepCx`] (dependencies, models,
/// the run) and the call's own identity.
#[derive(Debug, Clone)]
pub struct ToolCx {
    step: StepCx,
    tool: String,
    address: String,
}

impl ToolCx {
    pub(crate) fn new(step: StepCx, tool: &str, address: String) -> Self {
        Self {
            step,
            tool: tool.to_owned(),
            address,
        }
    }

    /// The tool being called.
    pub fn tool(&self) -> &str {
        &self.tool
    }

    /// A key naming this call, the same on every replay of its step:
    /// `run-…/key/iteration/call`. A service that deduplicates requests by
    /// it applies a retried call's side effect once.
    pub fn idempotency_key(&self) -> String {
        format!("{}/{}", self.step.idempotency_key(), self.address)
    }

    /// The step the call belongs to.
    pub fn step_cx(&self) -> &StepCx {
        &self.step
    }
}

/// A tool reaches what its step reaches: `cx.require::<Db>()`, `cx.llm()`.
impl Deref for ToolCx {
    type Target = StepCx;

    fn deref(&self) -> &StepCx {
        &self.step
    }
}
