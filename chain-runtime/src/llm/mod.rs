//! Language models: the [`LanguageModel`] trait, chat requests and completions,
//! and the [`Llm`] handle a step gets from [`StepCx::llm`](crate::StepCx::llm).

mod json;
mod scripted;

use std::future::Future;
use std::ops::Add;
use std::pin::Pin;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use crate::context::StepCx;

pub use json::extract_json;
pub use scripted::{ScriptedModel, ScriptedReply};

/// A boxed, `Send` future: what object-safe async traits return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

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
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Who said it.
    pub role: Role,
    /// What was said.
    pub content: String,
}

impl Message {
    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Self {
            role: Role::System,
            content: content.into(),
        }
    }

    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: content.into(),
        }
    }

    /// An assistant message.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self {
            role: Role::Assistant,
            content: content.into(),
        }
    }
}

/// A request to a chat model.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChatRequest {
    /// The conversation so far.
    pub messages: Vec<Message>,
    /// Upper bound on generated tokens.
    pub max_tokens: Option<u32>,
    /// Sampling temperature.
    pub temperature: Option<f32>,
    /// The step making the call, filled in by [`Llm`]; scripted models match on it.
    #[serde(skip)]
    pub step: Option<&'static str>,
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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens in the prompt.
    pub input_tokens: u64,
    /// Tokens generated.
    pub output_tokens: u64,
}

impl Usage {
    /// Input plus output tokens.
    pub fn total(&self) -> u64 {
        self.input_tokens + self.output_tokens
    }
}

impl Add for Usage {
    type Output = Usage;

    fn add(self, other: Usage) -> Usage {
        Usage {
            input_tokens: self.input_tokens + other.input_tokens,
            output_tokens: self.output_tokens + other.output_tokens,
        }
    }
}

/// A model's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Completion {
    /// The generated text.
    pub text: String,
    /// Why generation stopped.
    pub finish_reason: FinishReason,
    /// Tokens used.
    pub usage: Usage,
}

/// What can go wrong talking to a model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LlmError {
    /// The runtime has no model under that name.
    #[error(
        "no language model {}is configured; add one with `Runtime::builder().model(...)`",
        match .name { Some(name) => format!("named `{name}` "), None => String::new() }
    )]
    NoModel {
        /// The name asked for, `None` for the default model.
        name: Option<String>,
    },
    /// A scripted model has no reply for this request.
    #[error(
        "the scripted model has no reply for {}; the prompt starts with {prompt_start:?}; scripted so far: {known}",
        match .step { Some(step) => format!("step `{step}`"), None => "a call made outside any step".to_owned() }
    )]
    NoScript {
        /// The step that asked.
        step: Option<String>,
        /// The first characters of the prompt.
        prompt_start: String,
        /// The scripts the model has, described.
        known: String,
    },
    /// A failure injected by a scripted model (tests of error handling).
    #[error("scripted failure: {message}")]
    Scripted {
        /// What the script said.
        message: String,
        /// Whether a retry may succeed.
        retryable: bool,
    },
    /// The reply was not the JSON the step asked for.
    #[error("the model's reply is not valid JSON for the expected type: {error}")]
    Parse {
        /// The parser's message.
        error: String,
        /// The reply as the model sent it.
        raw: String,
    },
    /// The model stopped at its token limit, so the reply is cut off.
    #[error("the model's reply was cut off at the token limit")]
    Truncated {
        /// The partial reply.
        partial: String,
    },
}

impl LlmError {
    /// Whether a retry may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            LlmError::Scripted { retryable, .. } => *retryable,
            LlmError::Parse { .. } | LlmError::Truncated { .. } => true,
            LlmError::NoModel { .. } | LlmError::NoScript { .. } => false,
        }
    }
}

/// A step's handle on a model: fills in the step's identity, counts tokens
/// into the run's report, and parses replies.
#[derive(Debug)]
pub struct Llm<'a> {
    cx: &'a StepCx,
    model: Option<&'a Arc<dyn LanguageModel>>,
    name: Option<&'a str>,
}

impl<'a> Llm<'a> {
    pub(crate) fn new(
        cx: &'a StepCx,
        model: Option<&'a Arc<dyn LanguageModel>>,
        name: Option<&'a str>,
    ) -> Self {
        Self { cx, model, name }
    }

    /// Sends a request as this step and returns the whole completion.
    pub async fn complete(&self, mut request: ChatRequest) -> Result<Completion, LlmError> {
        let model = self.model.ok_or_else(|| LlmError::NoModel {
            name: self.name.map(str::to_owned),
        })?;
        request.step = Some(self.cx.step());
        // Attributes follow the OpenTelemetry GenAI semantic conventions.
        let span = tracing::info_span!(
            "gen_ai.chat",
            otel.name = %format_args!("chat {}", model.name()),
            gen_ai.operation.name = "chat",
            gen_ai.request.model = model.name(),
            gen_ai.request.max_tokens = request.max_tokens,
            gen_ai.usage.input_tokens = tracing::field::Empty,
            gen_ai.usage.output_tokens = tracing::field::Empty,
            gen_ai.response.finish_reasons = tracing::field::Empty,
        );
        let completion = model.complete(&request).instrument(span.clone()).await?;
        span.record("gen_ai.usage.input_tokens", completion.usage.input_tokens);
        span.record("gen_ai.usage.output_tokens", completion.usage.output_tokens);
        span.record(
            "gen_ai.response.finish_reasons",
            tracing::field::debug(completion.finish_reason),
        );
        let cost = self
            .cx
            .runtime()
            .prices()
            .and_then(|prices| prices.cost(model.name(), completion.usage));
        self.cx.add_usage(completion.usage, cost);
        Ok(completion)
    }

    /// Sends one user message and returns the reply's text.
    pub async fn text(&self, prompt: impl Into<String>) -> Result<String, LlmError> {
        let completion = self.complete(ChatRequest::user(prompt)).await?;
        if completion.finish_reason == FinishReason::Length {
            return Err(LlmError::Truncated {
                partial: completion.text,
            });
        }
        Ok(completion.text)
    }

    /// Sends one user message and parses the reply as JSON into `T`.
    ///
    /// Code fences and prose around the JSON are tolerated; a reply that still
    /// does not parse is an [`LlmError::Parse`] carrying the raw reply.
    pub async fn json<T: DeserializeOwned>(
        &self,
        prompt: impl Into<String>,
    ) -> Result<T, LlmError> {
        let text = self.text(prompt).await?;
        parse_reply(&text)
    }
}

/// Parses a model reply into `T`, tolerating code fences and surrounding prose.
pub fn parse_reply<T: DeserializeOwned>(reply: &str) -> Result<T, LlmError> {
    let candidate = extract_json(reply).unwrap_or(reply.trim());
    serde_json::from_str(candidate).map_err(|error| LlmError::Parse {
        error: error.to_string(),
        raw: reply.to_owned(),
    })
}
