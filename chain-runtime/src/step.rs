//! The [`Step`] trait: what `#[step]` and `#[chain]` implement for each function.

use std::future::Future;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::context::StepCx;
use crate::error::StepResult;

/// A unit of work with a typed input and a typed output.
///
/// `#[step]` implements it for a marker type in the module generated beside the
/// function (`my_step::Step`), and `#[chain]` does the same for a chain, so any
/// step or chain can be called on its own with a typed input:
///
/// ```text
/// let out = extract_changes::call(&cx, extract_changes::Input { diff: "...".into() }).await?;
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a step",
    label = "not a step",
    note = "annotate the function with `#[step]` (or `#[chain]`), or give its output key a type: `step!(key: Type = function(...))`"
)]
pub trait Step {
    /// The step's inputs: one field per parameter (after the `&StepCx`).
    type Input: Serialize + DeserializeOwned + Send + 'static;
    /// The value the step produces.
    type Output: Serialize + DeserializeOwned + Send + Sync + 'static;
    /// The step's name (its function's name).
    const NAME: &'static str;

    /// Runs the step once with `input`.
    fn call(
        cx: &StepCx,
        input: Self::Input,
    ) -> impl Future<Output = StepResult<Self::Output>> + Send + '_;
}
