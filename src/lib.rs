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

pub use prompt_chain_macros::{chain, prompt, step};
pub use prompt_chain_runtime::*;

#[doc(hidden)]
pub use prompt_chain_runtime::__private;

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

/// Everything a chain definition usually needs.
pub mod prelude {
    pub use crate::{
        ChainError, Event, EventKind, ExecutionReport, LanguageModel, Loop, Outcome, Runtime,
        ScriptedModel, ScriptedReply, Step, StepCx, StepError, StepResult, chain, prompt, step,
    };
}

/// The README's code blocks, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
