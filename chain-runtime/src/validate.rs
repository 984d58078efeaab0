//! Validation hooks: runtime-wide checks that see every step's output.

use std::any::Any;
use std::fmt;

use serde::Serialize;
use serde_json::Value;

/// A runtime-wide check run on every step's output, after the step's own
/// `validate = ...` hook. A rejection stops the run with
/// [`FailureKind::Validation`](crate::FailureKind::Validation).
///
/// Closures `Fn(&StepOutput<'_>) -> Result<(), String>` implement it.
pub trait Validate: Send + Sync + 'static {
    /// Accepts the output, or says what is wrong with it.
    fn validate(&self, output: &StepOutput<'_>) -> Result<(), String>;
}

impl<F> Validate for F
where
    F: Fn(&StepOutput<'_>) -> Result<(), String> + Send + Sync + 'static,
{
    fn validate(&self, output: &StepOutput<'_>) -> Result<(), String> {
        self(output)
    }
}

#[cfg(test)]
const _: Option<&dyn Validate> = None;

/// A step's output as runtime-wide hooks see it: typed access by downcast, or
/// JSON (serialized only when a hook asks).
pub struct StepOutput<'a> {
    pub(crate) chain: &'static str,
    pub(crate) step: &'static str,
    pub(crate) key: &'static str,
    pub(crate) attempt: u32,
    pub(crate) value: &'a dyn OutputValue,
}

impl StepOutput<'_> {
    /// The chain the step belongs to.
    pub fn chain(&self) -> &'static str {
        self.chain
    }

    /// The step's name.
    pub fn step(&self) -> &'static str {
        self.step
    }

    /// The key the output is stored under.
    pub fn key(&self) -> &'static str {
        self.key
    }

    /// The attempt that produced it.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The value, if it is a `T`.
    pub fn downcast_ref<T: 'static>(&self) -> Option<&T> {
        self.value.as_any().downcast_ref::<T>()
    }

    /// The value as JSON.
    pub fn to_json(&self) -> Result<Value, serde_json::Error> {
        self.value.to_json()
    }
}

impl fmt::Debug for StepOutput<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StepOutput")
            .field("chain", &self.chain)
            .field("step", &self.step)
            .field("key", &self.key)
            .field("attempt", &self.attempt)
            .finish_non_exhaustive()
    }
}

/// A typed value seen through a type-erased lens: `Any` plus JSON on demand.
pub(crate) trait OutputValue: Send + Sync {
    fn as_any(&self) -> &dyn Any;
    fn to_json(&self) -> Result<Value, serde_json::Error>;
}

impl<T: Serialize + Send + Sync + 'static> OutputValue for T {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn to_json(&self) -> Result<Value, serde_json::Error> {
        serde_json::to_value(self)
    }
}
