//! # prompt-chain
//!
//! LLM prompt chains whose wiring the compiler checks.
//!
//! A chain is a set of steps; each step is an ordinary `async fn` whose
//! parameters name the keys it needs and whose output is stored under a key.
//! `#[chain]` proves at compile time that every key a step needs is produced,
//! with the right type, and the runtime runs the chain as a dataflow graph: a
//! step starts the moment its last input exists.
//!
//! ```
//! use prompt_chain::prelude::*;
//!
//! #[step]
//! async fn shout(_cx: &StepCx, text: &str) -> StepResult<String> {
//!     Ok(text.to_uppercase())
//! }
//!
//! #[step]
//! async fn count(_cx: &StepCx, text: &str) -> StepResult<usize> {
//!     Ok(text.len())
//! }
//!
//! #[step]
//! async fn label(_cx: &StepCx, loud: &str, length: &usize) -> StepResult<String> {
//!     Ok(format!("{loud} ({length} chars)"))
//! }
//!
//! #[chain]
//! async fn describe(text: String) -> String {
//!     step!(loud = shout(text));
//!     step!(length = count(text));       // no edge to `loud`: runs alongside it
//!     step!(labelled = label(loud, length));
//!     labelled
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), ChainError> {
//! let rt = Runtime::default();
//! let out = describe::run(&rt, describe::Input { text: "hi".into() }).await?;
//! assert_eq!(out, "HI (2 chars)");
//! # Ok(())
//! # }
//! ```
//!
//! See the README for the `step!` grammar, the compile-time checks and the
//! examples.

//! ## Where things are
//!
//! - At the root: what a chain author writes — the macros, [`StepCx`],
//!   [`StepResult`], [`StepError`], [`Runtime`], [`ChainError`], [`Loop`],
//!   [`RunId`], [`Outcome`]. [`prelude`] imports the everyday part of it.
//! - [`llm`]: models, requests, completions, usage and prices, [`llm::LlmError`],
//!   the offline [`llm::ScriptedModel`], and the HTTP providers (feature `providers`).
//! - [`store`]: checkpoint stores for durable runs ([`store::MemoryStore`], and
//!   `SqliteStore` with feature `sqlite`).
//! - [`report`]: what a run did ([`report::ExecutionReport`]) and HTML timelines.
//! - [`events`]: what happens as it happens ([`events::Event`], observers, streams).
//! - [`policy`]: retry policies, run budgets, runtime-wide validation hooks.
//! - [`definition`]: a chain's declaration as data, and its Mermaid/DOT graph.
//! - [`human`]: human steps' questions, answers and the runs waiting for them.
//! - [`testing`]: stubs replacing one step for one test (each chain's
//!   `stub` module makes them); cassettes of recorded model calls are in [`llm`].
//! - [`tools`]: tools a model calls from a step (`#[tool]`, the [`tools::Tool`] trait).
//!
//! ## Features
//!
//! `sqlite` (the embedded store), `providers` (OpenAI-compatible and
//! Anthropic clients over HTTPS) and `structured` (`structured::<T>()` with
//! schemars) are on by default; `otel` (OpenTelemetry export) is off. With
//! `default-features = false` a crate gets the macros, the executor, the
//! scripted model and the memory store: nothing that opens a socket or
//! compiles C.

pub use prompt_chain_macros::{chain, prompt, step, tool};
#[cfg(feature = "structured")]
pub use prompt_chain_runtime::schemars;
pub use prompt_chain_runtime::{
    BoxError, ChainError, FailureKind, InvalidRunId, ItemError, Llm, Loop, LoopStop, Outcome,
    RunId, Runtime, RuntimeBuilder, Step, StepCx, StepError, StepResult, definition, eval, events,
    human, llm, policy, report, store, testing, tools,
};

#[doc(hidden)]
pub use prompt_chain_runtime::__private;
#[cfg(feature = "cli")]
pub use prompt_chain_runtime::cli;

/// Chooses a branch of a chain on a key's value:
/// `route!(category { Category::Billing => step!(reply = billing(ticket)), ... })`.
///
/// It only means something in the body of an `async fn` marked `#[chain]`,
/// which reads it (the compiler checks the match is exhaustive and every arm
/// produces the keys used later). Anywhere else it is a compile error saying
/// so.
#[macro_export]
macro_rules! route {
    ($($tokens:tt)*) => {
        ::core::compile_error!(
            "`route!` chooses a branch of a chain: it goes in the body of an `async fn` marked `#[chain]`, as `route!(key { Pattern => step!(...), ... })`"
        )
    };
}

/// Export to OpenTelemetry (feature `otel`): prompt-chain's spans (one per run,
/// per step attempt and per model call, the latter with the GenAI semantic
/// conventions' `gen_ai.*` attributes) through any OpenTelemetry tracer.
///
/// ```ignore
/// use tracing_subscriber::layer::SubscriberExt;
/// let subscriber = tracing_subscriber::registry().with(prompt_chain::otel::layer(tracer));
/// tracing::subscriber::set_global_default(subscriber)?;
/// ```
#[cfg(feature = "otel")]
pub mod otel {
    pub use opentelemetry;
    pub use tracing_opentelemetry;

    /// A `tracing` layer that sends spans to `tracer`.
    pub fn layer<S, T>(tracer: T) -> tracing_opentelemetry::OpenTelemetryLayer<S, T>
    where
        S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
        T: opentelemetry::trace::Tracer + 'static,
        T::Span: Send + Sync,
    {
        tracing_opentelemetry::layer().with_tracer(tracer)
    }
}

/// What writing and running a chain needs: the macros, the step context
/// and result, the runtime, the errors, loops and the offline scripted model.
pub mod prelude {
    pub use crate::llm::ScriptedModel;
    pub use crate::tools::ToolCx;
    pub use crate::{
        ChainError, Loop, Runtime, StepCx, StepError, StepResult, chain, prompt, route, step, tool,
    };
}

/// The README's code blocks, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
