//! The context of a failed run: every key that had a value, as JSON.

use serde::Serialize;
use serde_json::{Map, Value};

use super::slot::Slot;
use crate::error::ChainError;

/// A key's value for the error context, if it has one.
#[doc(hidden)]
pub trait ContextValue {
    /// The value as JSON, or `None` while it has none.
    fn context_json(&self) -> Option<Value>;
}

impl<T: Serialize> ContextValue for Slot<T> {
    fn context_json(&self) -> Option<Value> {
        let value = self.get()?;
        Some(
            serde_json::to_value(value)
                .unwrap_or_else(|error| Value::String(format!("(not serializable: {error})"))),
        )
    }
}

/// Attaches every key that has a value to a run's error, as JSON.
pub fn with_completed(error: ChainError, keys: &[(&'static str, &dyn ContextValue)]) -> ChainError {
    let mut completed = Map::new();
    for (key, value) in keys {
        if let Some(json) = value.context_json() {
            completed.insert((*key).to_owned(), json);
        }
    }
    error.with_completed(completed)
}
