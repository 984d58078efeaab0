//! Testing chains: stubs that replace one step for one test, without
//! touching the chain.
//!
//! Every chain module has a `stub` module, typed by the chain's keys:
//! `my_chain::stub::classify(value)` makes step `classify` answer `value`,
//! `my_chain::stub::classify_with(|cx| ...)` makes it answer with a
//! function of its [`StepCx`] (fail its first attempt, count calls). Give
//! stubs to the runtime of the test
//! ([`RuntimeBuilder::stub`](crate::RuntimeBuilder::stub)); every other
//! step runs as written. A stubbed step still goes through its policies
//! (validation, retries, fallback) and its report row says it was stubbed
//! ([`StepRecord::stubbed`](crate::report::StepRecord::stubbed)). For a map
//! step the stub answers each element: the values are taken by the
//! element's position, the function sees the element's [`StepCx::item`].
//!
//! Recorded model replies for whole-chain tests are in
//! [`llm::Cassette`](crate::llm::Cassette); what a run did, for assertions,
//! in the [`report`](crate::report) (`report.step("classify")`,
//! `report.ran(..)`, `report.route_taken(..)`, `report.model_calls()`,
//! `report.overlapping()`).

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::context::StepCx;
use crate::error::{StepError, StepResult};

/// What a stub answers a step with, typed by the step's output.
pub(crate) type Answer<T> = dyn Fn(&StepCx) -> StepResult<T> + Send + Sync;

/// One step of one chain, replaced for the runtime it is given to. Made by
/// the chain's generated `stub` module, which checks the type.
#[derive(Clone)]
pub struct Stub {
    pub(crate) chain: &'static str,
    pub(crate) key: &'static str,
    /// An `Arc<Answer<T>>`, `T` the step's (or a map element's) output.
    answer: Arc<dyn Any + Send + Sync>,
}

impl fmt::Debug for Stub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stub")
            .field("chain", &self.chain)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Stub {
    /// Step `key` of chain `chain` answers with `f` instead of running its
    /// function. Prefer the chain's `stub::<key>_with`, which checks `T`.
    #[doc(hidden)]
    pub fn function<T: 'static>(
        chain: &'static str,
        key: &'static str,
        f: impl Fn(&StepCx) -> StepResult<T> + Send + Sync + 'static,
    ) -> Self {
        let answer: Arc<Answer<T>> = Arc::new(f);
        Self {
            chain,
            key,
            answer: Arc::new(answer),
        }
    }

    /// Step `key` of chain `chain` answers `value` (a copy of it on every
    /// attempt). Prefer the chain's `stub::<key>`, which checks `T`.
    #[doc(hidden)]
    pub fn output<T: Serialize + DeserializeOwned + 'static>(
        chain: &'static str,
        key: &'static str,
        value: T,
    ) -> Self {
        // A copy per attempt, through JSON: outputs need not be `Clone`.
        let json = serde_json::to_value(&value);
        Self::function(chain, key, move |_: &StepCx| match &json {
            Ok(json) => serde_json::from_value::<T>(json.clone()).map_err(StepError::from),
            Err(error) => Err(StepError::msg(format!(
                "the stubbed output does not serialize: {error}"
            ))),
        })
    }

    /// A map step `key` whose elements answer `values`, by position; an
    /// element past the end fails, saying so.
    #[doc(hidden)]
    pub fn outputs<T: Serialize + DeserializeOwned + 'static>(
        chain: &'static str,
        key: &'static str,
        values: Vec<T>,
    ) -> Self {
        let json: Vec<_> = values.iter().map(serde_json::to_value).collect();
        Self::function(chain, key, move |cx: &StepCx| {
            let position = cx.item().unwrap_or(0);
            match json.get(position) {
                Some(Ok(json)) => {
                    serde_json::from_value::<T>(json.clone()).map_err(StepError::from)
                }
                Some(Err(error)) => Err(StepError::msg(format!(
                    "the stubbed output does not serialize: {error}"
                ))),
                None => Err(StepError::msg(format!(
                    "the stub of `{key}` has {} values and no value for element {position}",
                    json.len()
                ))),
            }
        })
    }

    /// The answer for a step whose output is `T`; `None` if the stub was
    /// made for another type.
    pub(crate) fn answer<T: 'static>(&self) -> Option<Arc<Answer<T>>> {
        self.answer.downcast_ref::<Arc<Answer<T>>>().cloned()
    }
}
