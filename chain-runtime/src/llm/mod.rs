//! Language models: the [`LanguageModel`] trait, chat requests and completions,
//! and the [`Llm`] handle a step gets from [`StepCx::llm`](crate::StepCx::llm).

mod json;
#[cfg(feature = "providers")]
mod providers;
mod scripted;
mod secret;

use std::future::Future;
use std::ops::Add;
use std::pin::Pin;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use crate::context::StepCx;

pub use json::extract_json;
#[cfg(feature = "providers")]
pub use providers::{
    Anthropic, ModelConfigError, OpenAiCompatible, model_from_env, model_from_vars,
};
pub use scripted::{ScriptedModel, ScriptedReply};
pub use secret::ApiKey;

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
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ChatRequest {
    /// The conversation so far.
    pub messages: Vec<Message>,
    /// Upper bound on generated tokens.
    pub max_tokens: Option<u32>,
    /// Sampling temperature.
    pub temperature: Option<f32>,
    /// A JSON schema the reply must follow (structured output), if any.
    pub response_schema: Option<ResponseSchema>,
    /// The step making the call, filled in by [`Llm`]; scripted models match on it.
    #[serde(skip)]
    pub step: Option<&'static str>,
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
    /// The provider refused, or its content filter stopped the reply.
    #[error("the model refused or its content filter stopped the reply ({reason})")]
    Refused {
        /// The provider's stop reason.
        reason: String,
    },
    /// Too many requests; try again after `retry_after` (from `Retry-After`
    /// or `retry-after-ms`) if the provider said.
    #[error("rate limited (HTTP {status}){}: {body}", match .retry_after { Some(after) => format!(", retry after {after:?}"), None => String::new() })]
    RateLimited {
        /// The HTTP status.
        status: u16,
        /// How long the provider asked to wait.
        retry_after: Option<std::time::Duration>,
        /// The response body.
        body: String,
    },
    /// The account's quota or credit is used up: retrying will not help.
    #[error("quota exhausted (HTTP {status}): {body}")]
    QuotaExhausted {
        /// The HTTP status.
        status: u16,
        /// The response body.
        body: String,
    },
    /// The provider is overloaded or failing (5xx, 529).
    #[error("the provider is overloaded or failing (HTTP {status}): {body}")]
    Overloaded {
        /// The HTTP status.
        status: u16,
        /// The response body.
        body: String,
    },
    /// The API key was refused.
    #[error("authentication failed (HTTP {status}): {body}")]
    Auth {
        /// The HTTP status.
        status: u16,
        /// The response body.
        body: String,
    },
    /// The provider rejected the request as malformed.
    #[error("bad request (HTTP {status}): {body}")]
    BadRequest {
        /// The HTTP status.
        status: u16,
        /// The response body.
        body: String,
    },
    /// Any other HTTP error.
    #[error("HTTP {status}: {body}")]
    Http {
        /// The HTTP status.
        status: u16,
        /// The response body.
        body: String,
    },
    /// The request did not get an answer in time.
    #[error("the model call timed out")]
    Timeout,
    /// The connection failed or broke (a stream cut mid-way included).
    #[error("connection to the model failed: {message}")]
    Transport {
        /// What failed.
        message: String,
        /// Text received before the failure, if any.
        partial: String,
    },
    /// The run's budget is spent; the call was not made.
    #[error("the run's budget of {limit} {what} is spent ({spent} so far); the call was not made")]
    BudgetExceeded {
        /// Tokens or US dollars.
        what: &'static str,
        /// The cap.
        limit: f64,
        /// What the run had spent.
        spent: f64,
    },
    /// The provider answered with something that is not its documented format.
    #[error("the provider's response could not be read: {message}")]
    Decode {
        /// What was wrong.
        message: String,
        /// The response body.
        body: String,
    },
}

impl LlmError {
    /// Whether a retry may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            LlmError::Scripted { retryable, .. } => *retryable,
            LlmError::Parse { .. }
            | LlmError::Truncated { .. }
            | LlmError::RateLimited { .. }
            | LlmError::Overloaded { .. }
            | LlmError::Timeout
            | LlmError::Transport { .. }
            | LlmError::Decode { .. } => true,
            LlmError::Http { status, .. } => *status >= 500,
            LlmError::NoModel { .. }
            | LlmError::NoScript { .. }
            | LlmError::Refused { .. }
            | LlmError::QuotaExhausted { .. }
            | LlmError::BudgetExceeded { .. }
            | LlmError::Auth { .. }
            | LlmError::BadRequest { .. } => false,
        }
    }

    /// How long the provider asked to wait before a retry, if it said.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            LlmError::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
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
        let runtime = &self.cx.runtime().inner;
        if let Some(budget) = runtime.run_budget {
            let spent = &self.cx.run.spent;
            if let Some(max) = budget.max_tokens
                && spent.tokens() >= max
            {
                return Err(LlmError::BudgetExceeded {
                    what: "tokens",
                    limit: max as f64,
                    spent: spent.tokens() as f64,
                });
            }
            if let Some(max) = budget.max_cost_usd
                && spent.cost_usd() >= max
            {
                return Err(LlmError::BudgetExceeded {
                    what: "US dollars",
                    limit: max,
                    spent: spent.cost_usd(),
                });
            }
        }
        let (_permit, waited) = match &runtime.call_limits {
            // Boxed: only runtimes with limits pay for the waiting state.
            Some(limits) => Box::pin(limits.acquire()).await,
            None => (None, std::time::Duration::ZERO),
        };
        if !waited.is_zero() {
            self.cx.add_limit_wait(waited);
        }
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
        self.cx.run.spent.add(completion.usage.total(), cost);
        Ok(completion)
    }

    /// Sends one user message and returns the reply's text.
    pub async fn text(&self, prompt: impl Into<String>) -> Result<String, LlmError> {
        let completion = self.complete(ChatRequest::user(prompt)).await?;
        checked_text(completion)
    }

    /// Sends one user message and parses the reply as JSON into `T`.
    ///
    /// Code fences and prose around the JSON are tolerated. A reply that still
    /// does not parse is shown to the model with the parser's error and asked
    /// for again, up to [`RuntimeBuilder::reask_budget`](crate::RuntimeBuilder::reask_budget)
    /// times (default 2); after that the [`LlmError::Parse`] carries the raw reply.
    pub async fn json<T: DeserializeOwned>(
        &self,
        prompt: impl Into<String>,
    ) -> Result<T, LlmError> {
        self.parse_with_reask(ChatRequest::user(prompt)).await
    }

    /// Like [`Llm::json`], and sends `T`'s JSON schema (schemars) so providers
    /// that support structured output (OpenAI's `response_format`) enforce it;
    /// others get the schema in the prompt.
    pub async fn structured<T: DeserializeOwned + schemars::JsonSchema>(
        &self,
        prompt: impl Into<String>,
    ) -> Result<T, LlmError> {
        let schema = schemars::schema_for!(T);
        let mut request = ChatRequest::user(prompt);
        request.response_schema = Some(ResponseSchema {
            name: schema_name::<T>(),
            schema: serde_json::to_value(&schema).unwrap_or_default(),
        });
        self.parse_with_reask(request).await
    }

    async fn parse_with_reask<T: DeserializeOwned>(
        &self,
        mut request: ChatRequest,
    ) -> Result<T, LlmError> {
        let budget = self.cx.runtime().inner.reask_budget;
        let mut asked = 0;
        loop {
            let text = checked_text(self.complete(request.clone()).await?)?;
            match parse_reply::<T>(&text) {
                Ok(value) => return Ok(value),
                Err(LlmError::Parse { error, raw }) if asked < budget => {
                    asked += 1;
                    tracing::debug!(attempt = asked, %error, "re-asking for valid JSON");
                    request.messages.push(Message::assistant(raw));
                    request.messages.push(Message::user(format!(
                        "That reply is not valid JSON for the requested format: {error}. Answer again with only the JSON."
                    )));
                }
                Err(error) => return Err(error),
            }
        }
    }
}

/// A schema name providers accept (letters, digits, `_`, `-`).
fn schema_name<T: schemars::JsonSchema>() -> String {
    let name: String = T::schema_name()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() {
        "reply".to_owned()
    } else {
        name
    }
}

/// The completion's text, or the error its finish reason means.
fn checked_text(completion: Completion) -> Result<String, LlmError> {
    match completion.finish_reason {
        FinishReason::Length => Err(LlmError::Truncated {
            partial: completion.text,
        }),
        FinishReason::ContentFilter => Err(LlmError::Refused {
            reason: "content_filter".to_owned(),
        }),
        _ => Ok(completion.text),
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
