//! What a model sees of a tool ([`ToolSpec`]) and what it asks of one
//! ([`ToolCall`]), as the providers send and receive them.

use serde::{Deserialize, Serialize};

/// A tool as the model sees it: its name, what it does, and the JSON Schema
/// of its arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// The name the model calls it by.
    pub name: String,
    /// What it does, for the model to decide when to call it.
    pub description: String,
    /// The JSON Schema of its arguments (an object).
    pub parameters: serde_json::Value,
}

/// One tool call the model asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The provider's id for the call; the result goes back under it.
    pub id: String,
    /// The tool's name.
    pub name: String,
    /// The arguments, as the JSON text the model wrote (possibly malformed:
    /// the tool reports that back to the model).
    pub arguments: String,
}
