//! Runtime of [prompt-chain](https://docs.rs/prompt-chain): the dataflow
//! executor behind `#[chain]`, the [`StepCx`] steps receive, the [`Runtime`]
//! that holds models and dependencies, errors, reports, and the scripted model.
//!
//! Use it through the `prompt-chain` facade crate; the macros there generate the
//! code that drives this crate.

mod checkpoint;
mod context;
mod definition;
mod error;
mod events;
mod executor;
mod ids;
mod limits;
mod llm;
mod looping;
mod pricing;
mod report;
mod retry;
mod runtime;
mod slot;
#[cfg(feature = "sqlite")]
mod sqlite;
mod step;
mod timeline;
mod validate;

#[doc(hidden)]
pub mod __private;

pub use checkpoint::{CheckpointStore, MemoryStore, NewRun, SavedRun, StoreError, StoredStatus};
pub use context::{RunOptions, StepCx};
pub use definition::{ArmDef, ChainDef, ChainGraph, RouteDef, StepDef, StepOptions};
pub use error::{BoxError, ChainError, FailureKind, StepError, StepResult};
pub use events::{Event, EventKind, EventStream, Observer};
pub use ids::RunId;
pub use limits::RunBudget;
#[cfg(feature = "providers")]
pub use llm::{Anthropic, ModelConfigError, OpenAiCompatible, model_from_env, model_from_vars};
pub use llm::{
    ApiKey, BoxFuture, ChatRequest, Completion, FinishReason, LanguageModel, Llm, LlmError,
    Message, ResponseSchema, Role, ScriptedModel, ScriptedReply, Usage, extract_json, parse_reply,
};
pub use looping::{Loop, LoopStop};
pub use pricing::{Price, PriceTable};
pub use report::{
    AttemptOutcome, AttemptRecord, ExecutionReport, IterationRecord, Outcome, RouteRecord,
    RunStatus, StepRecord, StepStatus,
};
pub use retry::{Backoff, RetryContext, RetryPolicy};
pub use runtime::{Runtime, RuntimeBuilder};
pub use schemars;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;
pub use step::Step;
pub use timeline::html_timeline;
pub use validate::{StepOutput, Validate};
