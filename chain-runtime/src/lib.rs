//! Runtime of [prompt-chain](https://docs.rs/prompt-chain): the dataflow
//! executor behind `#[chain]`, the [`StepCx`] steps receive, the [`Runtime`]
//! that holds models and dependencies, errors, reports, and the scripted model.
//!
//! Use it through the `prompt-chain` facade crate; the macros there generate the
//! code that drives this crate.
//!
//! The public API is in modules: [`llm`] (models, requests, errors, the
//! scripted model, providers), [`store`] (checkpoint stores), [`report`]
//! (what a run did), [`events`] (what happens as it happens), [`policy`]
//! (retries, budgets, validation hooks) and [`definition`] (a chain as data);
//! the types a chain author writes every day are at the root.

#[cfg(feature = "cli")]
pub mod cli;
mod context;
pub mod definition;
mod error;
pub mod eval;
pub mod events;
mod executor;
mod future;
pub mod human;
mod ids;
mod limits;
pub mod llm;
mod looping;
pub mod report;
mod retry;
mod runtime;
mod step;
pub mod store;
pub mod testing;
pub mod tools;
mod validate;

#[doc(hidden)]
pub mod __private;

/// Retries, budgets and validation hooks: the policies a [`Runtime`] applies
/// to every step.
pub mod policy {
    pub use crate::limits::RunBudget;
    pub use crate::retry::{Backoff, RetryContext, RetryPolicy};
    pub use crate::validate::{StepOutput, Validate};
}

pub use context::{Llm, StepCx};
pub use error::{BoxError, ChainError, FailureKind, StepError, StepResult};
pub use ids::{InvalidRunId, RunId};
pub use looping::{ItemError, Loop, LoopStop};
pub use report::Outcome;
pub use runtime::{Runtime, RuntimeBuilder};
#[cfg(feature = "structured")]
pub use schemars;
pub use step::Step;
