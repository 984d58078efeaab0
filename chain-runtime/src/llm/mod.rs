//! Language models: the [`LanguageModel`] trait, chat requests and
//! completions, token usage, the errors a model call can end with, the
//! deterministic [`ScriptedModel`] and (feature `providers`) the HTTP clients.
//!
//! A step reaches a model through [`StepCx::llm`](crate::StepCx::llm), which
//! meters each call into the run's report; this module holds no run state.

mod cassette;
mod error;
mod json;
mod partial;
mod pricing;
#[cfg(feature = "providers")]
mod providers;
mod scripted;
mod secret;
mod tools;

use std::ops::Add;

use serde::{Deserialize, Serialize};

pub use crate::future::BoxFuture;
pub use cassette::{Cassette, RECORD_ENV, RecordingModel, ReplayModel, recording_requested};
pub use error::LlmError;
pub use json::{extract_json, parse_reply};
pub use partial::partial_json;
pub(crate) use pricing::add_cost;
pub use pricing::{Price, PriceTable};
#[cfg(feature = "providers")]
pub use providers::{
    Anthropic, ModelConfigError, OpenAiCompatible, model_from_env, model_from_vars,
};
pub use scripted::{ScriptedModel, ScriptedReply};
pub use secret::ApiKey;
pub use tools::{ToolCall, ToolSpec};

/// A chat model: messages in, one completion out.
///
/// Object-safe, so a [`Runtime`](crate::Runtime) holds models as
/// `Arc<dyn LanguageModel>`; the deterministic [`ScriptedModel`] and the HTTP
/// providers implement it alike.
pub trait LanguageModel: Send + Sync + std::fmt::Debug + 'static {
    /// A name for reports and errors (for example `openai:gpt-4o-mini`).
    fn name(&self) -> &str;

    /// Sends one request and returns the completion.
    fn complete<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<Completion, LlmError>>;
}

/// A shared model is a model (to wrap one, for example in a cassette).
impl<M: LanguageModel + ?Sized> LanguageModel for std::sync::Arc<M> {
    fn name(&self) -> &str {
        (**self).name()
    }

    fn complete<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<Completion, LlmError>> {
        (**self).complete(request)
    }
}

#[cfg(test)]
const _: Option<&dyn LanguageModel> = None;

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions for the model.
    System,
    /// The user's turn.
    User,
    /// The model's turn.
    Assistant,
    /// A tool's result, answering one of the model's tool calls.
    Tool,
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Who said it.
    pub role: Role,
    /// What was said (a tool's result, for [`Role::Tool`]).
    pub content: String,
    /// The tools the model asked to call in this turn ([`Role::Assistant`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// The call a [`Role::Tool`] message answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl Message {
    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Self {
            role: Role::System,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }

    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }

    /// The model's turn asking for `calls` (with the text it said, if any).
    pub fn tool_calls(content: impl Into<String>, calls: Vec<ToolCall>) -> Self {
        Self {
            tool_calls: calls,
            ..Self::assistant(content)
        }
    }

    /// A tool's result for the call `call_id`.
    pub fn tool_result(call_id: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: Role::Tool,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: Some(call_id.into()),
        }
    }

    /// An assistant message.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self {
            role: Role::Assistant,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }
}

/// A request to a chat model.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ChatRequest {
    /// The conversation so far.
    pub messages: Vec<Message>,
    /// Upper bound on generated tokens.
    pub max_tokens: Option<u32>,
    /// Sampling temperature.
    pub temperature: Option<f32>,
    /// A seed for sampling, where the provider supports one.
    pub seed: Option<u64>,
    /// Sequences that end the reply when generated.
    pub stop: Vec<String>,
    /// A JSON schema the reply must follow (structured output), if any.
    pub response_schema: Option<ResponseSchema>,
    /// The tools the model may call.
    pub tools: Vec<ToolSpec>,
    /// Where a provider sends the reply's text as it arrives, if anyone
    /// listens (filled in by [`Llm`](crate::Llm) when the runtime streams
    /// tokens).
    #[serde(skip)]
    pub on_delta: Option<DeltaSink>,
    /// The step making the call, filled in by [`Llm`](crate::Llm); scripted models match on it.
    #[serde(skip)]
    pub step: Option<&'static str>,
}

/// Receives a reply's text piece by piece, as a provider reads it.
#[derive(Clone)]
pub struct DeltaSink {
    send: std::sync::Arc<dyn Fn(&str) + Send + Sync>,
    restart: Option<std::sync::Arc<dyn Fn() + Send + Sync>>,
}

impl DeltaSink {
    /// A sink calling `f` with each piece.
    pub fn new(f: impl Fn(&str) + Send + Sync + 'static) -> Self {
        Self {
            send: std::sync::Arc::new(f),
            restart: None,
        }
    }

    /// Also calls `restart` before each new model call (a re-ask, a tool
    /// loop's next turn), so text is gathered per reply.
    #[must_use]
    pub(crate) fn with_restart(mut self, restart: impl Fn() + Send + Sync + 'static) -> Self {
        self.restart = Some(std::sync::Arc::new(restart));
        self
    }

    /// Sends one piece (empty pieces are dropped).
    pub fn send(&self, piece: &str) {
        if !piece.is_empty() {
            (self.send)(piece);
        }
    }

    /// A new reply begins.
    pub(crate) fn restart(&self) {
        if let Some(restart) = &self.restart {
            restart();
        }
    }
}

impl std::fmt::Debug for DeltaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeltaSink")
    }
}

/// Two requests are equal whatever their sinks.
impl PartialEq for DeltaSink {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// A JSON schema for a structured reply.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResponseSchema {
    /// A name for the schema (providers require one).
    pub name: String,
    /// The schema.
    pub schema: serde_json::Value,
}

impl ChatRequest {
    /// A request with one user message.
    pub fn user(prompt: impl Into<String>) -> Self {
        Self {
            messages: vec![Message::user(prompt)],
            ..Self::default()
        }
    }

    /// Adds a system message in front.
    #[must_use]
    pub fn with_system(mut self, system: impl Into<String>) -> Self {
        self.messages.insert(0, Message::system(system));
        self
    }

    /// The text of the last user message (what a scripted reply usually keys on).
    pub fn prompt(&self) -> &str {
        self.messages
            .iter()
            .rev()
            .find(|m| m.role == Role::User)
            .map_or("", |m| m.content.as_str())
    }
}

/// Why the model stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// It finished its answer.
    Stop,
    /// It hit the token limit: the answer is cut off.
    Length,
    /// A content filter stopped it.
    ContentFilter,
    /// It asked to call a tool.
    ToolCalls,
    /// Anything else the provider said.
    Other,
}

/// Tokens used by one call (or summed over many).
///
/// `input_tokens` counts every prompt token the provider processed, those
/// served from its prompt cache included; `cache_read_tokens` and
/// `cache_write_tokens` say how many of them were read from or written to
/// the cache, which providers bill at their own prices (see
/// [`PriceTable::cache_prices`]). Build one with [`Usage::new`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Usage {
    /// Tokens in the prompt, cached ones included.
    pub input_tokens: u64,
    /// Tokens generated.
    pub output_tokens: u64,
    /// Of `input_tokens`, those read from the provider's prompt cache
    /// (OpenAI `cached_tokens`, Anthropic `cache_read_input_tokens`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_read_tokens: u64,
    /// Of `input_tokens`, those written to the provider's prompt cache
    /// (Anthropic `cache_creation_input_tokens`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_write_tokens: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Usage {
    /// `input_tokens` in, `output_tokens` out, nothing cached.
    pub fn new(input_tokens: u64, output_tokens: u64) -> Self {
        Self {
            input_tokens,
            output_tokens,
            cache_read_tokens: 0,
            cache_write_tokens: 0,
        }
    }

    /// The same, with `read` of the input tokens read from the prompt cache
    /// and `written` written to it (each at most the input tokens).
    #[must_use]
    pub fn with_cache(mut self, read: u64, written: u64) -> Self {
        self.cache_read_tokens = read.min(self.input_tokens);
        self.cache_write_tokens = written.min(self.input_tokens - self.cache_read_tokens);
        self
    }

    /// Input tokens neither read from nor written to the prompt cache.
    pub fn uncached_input_tokens(&self) -> u64 {
        self.input_tokens
            .saturating_sub(self.cache_read_tokens)
            .saturating_sub(self.cache_write_tokens)
    }

    /// Input plus output tokens.
    pub fn total(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }

    /// A token count read from a provider's JSON: a count above a trillion
    /// is not a count (a decode error); a negative, fractional or textual
    /// one is counted as 0 with a warning, never wrapped around.
    #[cfg(feature = "providers")]
    pub(crate) fn count(value: &serde_json::Value, field: &str) -> Result<u64, LlmError> {
        const ABSURD: u64 = 1_000_000_000_000;
        match value {
            serde_json::Value::Null => Ok(0),
            serde_json::Value::Number(n) if n.as_u64().is_some_and(|n| n <= ABSURD) => {
                Ok(n.as_u64().unwrap_or(0))
            }
            serde_json::Value::Number(n) if n.as_u64().is_some() => Err(LlmError::Decode {
                message: format!(
                    "the provider reported {n} {field}, which cannot be a token count"
                ),
                body: String::new(),
            }),
            other => {
                tracing::warn!(field, value = %other, "the provider's token count is not a count; counted as 0");
                Ok(0)
            }
        }
    }
}

impl Add for Usage {
    type Output = Usage;

    fn add(self, other: Usage) -> Usage {
        // Saturating: a total can only be wrong by staying at the top, never
        // by wrapping to a small number a budget would accept.
        Usage {
            input_tokens: self.input_tokens.saturating_add(other.input_tokens),
            output_tokens: self.output_tokens.saturating_add(other.output_tokens),
            cache_read_tokens: self
                .cache_read_tokens
                .saturating_add(other.cache_read_tokens),
            cache_write_tokens: self
                .cache_write_tokens
                .saturating_add(other.cache_write_tokens),
        }
    }
}

/// A model's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Completion {
    /// The generated text.
    pub text: String,
    /// The tools the model asks to call (its finish reason is then
    /// [`FinishReason::ToolCalls`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// Why generation stopped.
    pub finish_reason: FinishReason,
    /// Tokens used.
    pub usage: Usage,
}
