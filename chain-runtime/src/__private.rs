//! Support for the code the macros generate. Not a public API: it may change
//! in any release.

pub use crate::events::EventSink;
pub use crate::executor::{
    Branch, ContextValue, FromElement, FromKey, KeyType, MapSource, RunCx, RunDeadline, RunOptions,
    Slot, join_steps, join_steps_within, with_completed,
};
pub use serde;
pub use serde_json;

/// A `#[tool]`'s parameters as the model sees them: the JSON Schema of its
/// `Args`, without the `$schema` marker.
#[cfg(feature = "structured")]
pub fn tool_parameters<A: schemars::JsonSchema>() -> serde_json::Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(A)).unwrap_or_default();
    if let Some(object) = schema.as_object_mut() {
        object.remove("$schema");
    }
    schema
}

/// A `#[tool]`'s arguments from the model's JSON text (an empty text is no
/// arguments); what does not deserialize goes back to the model.
pub fn tool_arguments<A: serde::de::DeserializeOwned>(
    arguments: &str,
) -> Result<A, crate::tools::ToolError> {
    let arguments = if arguments.trim().is_empty() {
        "{}"
    } else {
        arguments
    };
    serde_json::from_str(arguments).map_err(crate::tools::ToolError::arguments)
}

/// A `#[tool]`'s result as JSON.
pub fn tool_result<T: serde::Serialize>(
    value: &T,
) -> Result<serde_json::Value, crate::tools::ToolError> {
    serde_json::to_value(value).map_err(|error| crate::tools::ToolError::Encode(error.to_string()))
}

/// The condition of a loop with `max` but no `until`: run every iteration.
pub fn never<T>(_: &T) -> bool {
    false
}

/// The fallback of a step with no `fallback = ...`.
pub fn no_fallback<T>() -> Option<fn() -> T> {
    None
}

/// The cache key of a map step's elements with no `cache = ...`.
pub fn no_item_hash<E>() -> Option<fn(&E) -> u64> {
    None
}

/// A human step's payload: its inputs as a JSON object keyed by input key.
#[derive(Debug, Default)]
pub struct Payload(serde_json::Map<String, serde_json::Value>);

impl Payload {
    /// An empty payload.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds input `key`.
    #[must_use]
    pub fn with<T: serde::Serialize + ?Sized>(mut self, key: &str, value: &T) -> Self {
        let value = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
        self.0.insert(key.to_owned(), value);
        self
    }

    /// The payload.
    pub fn finish(self) -> serde_json::Value {
        serde_json::Value::Object(self.0)
    }
}

/// The JSON Schema of a human step's answer type.
#[cfg(feature = "structured")]
pub fn answer_schema<A: schemars::JsonSchema>() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(A)).unwrap_or(serde_json::Value::Null)
}

/// The JSON Schema of a human step's answer type (`null`: the `structured`
/// feature is off).
#[cfg(not(feature = "structured"))]
pub fn answer_schema<A>() -> serde_json::Value {
    serde_json::Value::Null
}

/// The hook of a step with no `validate = ...`.
pub fn no_validation<T>(_: &T) -> Result<(), String> {
    Ok(())
}

/// Hashes a step's inputs for the step-result cache (their JSON, in order).
#[derive(Debug, Clone, Copy)]
pub struct InputHash(u64);

impl InputHash {
    /// An empty hash.
    pub fn new() -> Self {
        Self(0)
    }

    /// Adds one input.
    #[must_use]
    pub fn feed<T: serde::Serialize + ?Sized>(self, value: &T) -> Self {
        let bytes = serde_json::to_vec(value).unwrap_or_default();
        Self(crate::ids::fnv1a(
            &bytes,
            self.0.rotate_left(5) ^ bytes.len() as u64,
        ))
    }

    /// The hash.
    pub fn finish(self) -> u64 {
        self.0
    }
}

impl Default for InputHash {
    fn default() -> Self {
        Self::new()
    }
}

/// Reads the input of a run to resume from the runtime's checkpoint store.
pub async fn load_input<I: serde::de::DeserializeOwned, O>(
    runtime: &crate::Runtime,
    chain: &'static crate::definition::ChainDef,
    run_id: crate::RunId,
) -> Result<I, crate::Outcome<O>> {
    crate::executor::load_input(runtime, chain, run_id).await
}
