//! [`Llm`]: a step's handle on a model. It fills in the step's identity,
//! enforces the run's budget and the runtime's call limits, counts tokens and
//! cost into the step's record, and parses replies (with bounded re-asks).

use std::sync::Arc;

use serde::de::DeserializeOwned;
use tracing::Instrument;

use tokio::sync::OwnedSemaphorePermit;

use super::StepCx;
use super::detach::DetachOnDrop;
use super::run_state::RunShared;
use crate::limits::InFlightCall;
use crate::llm::{
    ChatRequest, Completion, FinishReason, LanguageModel, LlmError, Message, Role, parse_reply,
};
use crate::report::ReaskReason;
use crate::tools::Tool;

/// A step's handle on a model: fills in the step's identity, counts tokens
/// into the run's report, and parses replies.
#[derive(Debug)]
pub struct Llm<'a> {
    pub(super) cx: &'a StepCx,
    pub(super) model: Option<&'a Arc<dyn LanguageModel>>,
    name: Option<&'a str>,
    options: CallOptions,
    /// The tools the model may call (see [`Llm::tool`]).
    pub(super) tools: Vec<Arc<dyn Tool>>,
    /// Model turns a tool conversation may take.
    pub(super) max_turns: u32,
}

/// Sampling settings for the calls made through one [`Llm`] handle.
#[derive(Debug, Clone, Default)]
struct CallOptions {
    max_tokens: Option<u32>,
    temperature: Option<f32>,
    seed: Option<u64>,
    stop: Vec<String>,
}

impl<'a> Llm<'a> {
    pub(crate) fn new(
        cx: &'a StepCx,
        model: Option<&'a Arc<dyn LanguageModel>>,
        name: Option<&'a str>,
    ) -> Self {
        Self {
            cx,
            model,
            name,
            options: CallOptions::default(),
            tools: Vec::new(),
            max_turns: super::tool_loop::DEFAULT_MAX_TURNS,
        }
    }

    /// Lets the model call `tool` (a `#[tool]` function's `Tool`, or any
    /// [`Tool`]); may be given several times. [`text`](Llm::text),
    /// [`json`](Llm::json) and [`structured`](Llm::structured) then run the
    /// model/tool loop: the calls of one model turn run at once, a tool's
    /// error or malformed arguments go back to the model as that call's
    /// result, and the answer is the first reply that calls no tool. Each
    /// turn and each call is recorded, so a resumed or retried step does not
    /// call a completed tool again.
    #[must_use]
    pub fn tool(mut self, tool: impl Tool) -> Self {
        self.tools.push(Arc::new(tool));
        self
    }

    /// The most model turns a tool conversation may take (default 8); past
    /// it the call fails with [`LlmError::ToolTurns`].
    #[must_use]
    pub fn max_turns(mut self, max_turns: u32) -> Self {
        self.max_turns = max_turns.max(1);
        self
    }

    /// The most tokens each reply may have (this handle's calls). Without
    /// it: the step's `max_tokens = N` option, then the provider's default
    /// (`OpenAiCompatible`: 2048, `Anthropic`: 4096).
    #[must_use]
    pub fn max_tokens(mut self, max_tokens: u32) -> Self {
        self.options.max_tokens = Some(max_tokens);
        self
    }

    /// The sampling temperature.
    #[must_use]
    pub fn temperature(mut self, temperature: f32) -> Self {
        self.options.temperature = Some(temperature);
        self
    }

    /// A sampling seed, for providers that take one (OpenAI-compatible).
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.options.seed = Some(seed);
        self
    }

    /// A sequence that ends the reply when generated (may be given several times).
    #[must_use]
    pub fn stop(mut self, sequence: impl Into<String>) -> Self {
        self.options.stop.push(sequence.into());
        self
    }

    /// Fills what the request leaves unset from this handle and the step.
    fn apply(&self, request: &mut ChatRequest) {
        let step_max = self
            .cx
            .run
            .chain
            .steps
            .get(self.cx.index)
            .and_then(|step| step.options.max_tokens);
        request.max_tokens = request.max_tokens.or(self.options.max_tokens).or(step_max);
        request.temperature = request.temperature.or(self.options.temperature);
        request.seed = request.seed.or(self.options.seed);
        if request.stop.is_empty() {
            request.stop.clone_from(&self.options.stop);
        }
    }

    /// Sends a request as this step and returns the whole completion (with
    /// tools: the first reply that calls none).
    pub async fn complete(&self, mut request: ChatRequest) -> Result<Completion, LlmError> {
        if request.on_delta.is_none() {
            request.on_delta = self.cx.delta_sink(false);
        }
        self.exchange(request, &mut None).await.0
    }

    /// [`Llm::complete`], handing the request back (for a re-ask) instead
    /// of cloning it for every call.
    pub(super) async fn send(
        &self,
        mut request: ChatRequest,
    ) -> (Result<Completion, LlmError>, ChatRequest) {
        let Some(model) = self.model else {
            let error = LlmError::NoModel {
                name: self.name.map(str::to_owned),
            };
            return (Err(error), request);
        };
        request.step = Some(self.cx.step());
        self.apply(&mut request);
        if let Some(sink) = &request.on_delta {
            sink.restart();
        }
        let runtime = self.cx.runtime();
        if let Some(budget) = runtime.limits().run_budget() {
            let spent = &self.cx.run.spent;
            if let Some(max) = budget.max_tokens
                && spent.tokens() >= max
            {
                let error = LlmError::BudgetExceeded {
                    what: "tokens",
                    limit: max as f64,
                    spent: spent.tokens() as f64,
                };
                return (Err(error), request);
            }
            if let Some(max) = budget.max_cost_usd
                && spent.cost_usd() >= max
            {
                let error = LlmError::BudgetExceeded {
                    what: "US dollars",
                    limit: max,
                    spent: spent.cost_usd(),
                };
                return (Err(error), request);
            }
        }
        let (permit, waited) = match runtime.limits().calls() {
            // Boxed: only runtimes with limits pay for the waiting state.
            Some(limits) => Box::pin(limits.acquire()).await,
            None => (None, std::time::Duration::ZERO),
        };
        if !waited.is_zero() {
            self.cx.add_limit_wait(waited);
        }
        self.cx
            .run
            .record(self.cx.index, |record| record.model_calls += 1);
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
        // The call runs in place; if this step is cancelled while the call
        // is in flight (a sibling failed, an attempt timed out), the call
        // moves to a task of its own and runs to its end: the provider bills
        // the tokens either way, so the call counts them, and a failed run
        // waits a grace period for such calls (see
        // `RuntimeBuilder::in_flight_grace`).
        let call = DetachedCall {
            model: Arc::clone(model),
            run: Arc::clone(&self.cx.run),
            index: self.cx.index,
            unit: self.cx.iteration,
            in_flight: self.cx.run.spent.call_started(),
            permit,
        };
        DetachOnDrop::new(call.run(request).instrument(span)).await
    }

    /// Sends one user message and returns the reply's text.
    ///
    /// A reply cut off at the token limit is shown to the model, which is
    /// asked to answer again more briefly, up to
    /// [`RuntimeBuilder::reask_budget`](crate::RuntimeBuilder::reask_budget)
    /// times (default 2); after that the error is [`LlmError::Truncated`]
    /// with the partial text. To accept a cut-off reply, call
    /// [`Llm::complete`] and read its `finish_reason`.
    pub async fn text(&self, prompt: impl Into<String>) -> Result<String, LlmError> {
        let mut request = ChatRequest::user(prompt);
        request.on_delta = self.cx.delta_sink(false);
        self.with_reasks(request, |text| Ok(text.to_owned())).await
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
        let mut request = ChatRequest::user(prompt);
        request.on_delta = self.cx.delta_sink(true);
        self.with_reasks(request, parse_reply::<T>).await
    }

    /// Like [`Llm::json`], and sends `T`'s JSON schema (schemars) so providers
    /// that support structured output (OpenAI's `response_format`) enforce it;
    /// others get the schema in the prompt.
    #[cfg(feature = "structured")]
    pub async fn structured<T: DeserializeOwned + schemars::JsonSchema>(
        &self,
        prompt: impl Into<String>,
    ) -> Result<T, LlmError> {
        let schema = schemars::schema_for!(T);
        let mut request = ChatRequest::user(prompt);
        request.on_delta = self.cx.delta_sink(true);
        request.response_schema = Some(crate::llm::ResponseSchema {
            name: schema_name::<T>(),
            schema: serde_json::to_value(&schema).unwrap_or_default(),
        });
        self.with_reasks(request, parse_reply::<T>).await
    }

    /// Sends `request` and turns the reply into `T` with `parse`. A reply
    /// that `parse` rejects as invalid JSON, or that is cut off at the token
    /// limit, is shown to the model with what was wrong and asked for again,
    /// up to the runtime's re-ask budget; each re-ask is logged in the step's
    /// record (an [`AttemptKind::ModelReask`](crate::report::AttemptKind))
    /// and sent as a [`ModelReasked`](crate::events::EventKind::ModelReasked) event.
    async fn with_reasks<T>(
        &self,
        mut request: ChatRequest,
        parse: impl Fn(&str) -> Result<T, LlmError>,
    ) -> Result<T, LlmError> {
        let budget = self.cx.runtime().policies().reask_budget();
        let mut asked = 0;
        let mut conversation = None;
        loop {
            let started_at = self.cx.run.elapsed();
            let (completion, sent) = self.exchange(request, &mut conversation).await;
            request = sent;
            let completion = completion?;
            let (reason, error, raw) = match completion.finish_reason {
                FinishReason::Length => (
                    ReaskReason::CutOff,
                    "the reply was cut off at the token limit".to_owned(),
                    completion.text,
                ),
                _ => match parse(&checked_text(completion)?) {
                    Ok(value) => return Ok(value),
                    Err(LlmError::Parse { error, raw, .. }) => {
                        (ReaskReason::InvalidJson, error, raw)
                    }
                    Err(other) => return Err(other),
                },
            };
            if asked >= budget {
                return Err(match reason {
                    ReaskReason::CutOff => LlmError::Truncated {
                        partial: raw,
                        reasks: asked,
                    },
                    _ => LlmError::Parse {
                        error,
                        raw,
                        reasks: asked,
                    },
                });
            }
            asked += 1;
            self.cx.model_reasked(started_at, asked, reason, &error);
            tracing::debug!(reask = asked, %reason, %error, "asking the model again");
            match reason {
                // The cut-off text is not shown again: a model that ran on
                // tends to run on from its own rambling, and the conversation
                // would grow toward the context limit. The prompt is asked
                // afresh, with a request to be brief.
                ReaskReason::CutOff => {
                    if let Some(last) = request
                        .messages
                        .iter_mut()
                        .rev()
                        .find(|m| m.role == Role::User)
                        && !last.content.ends_with(BRIEFLY)
                    {
                        last.content.push_str(BRIEFLY);
                    }
                }
                ReaskReason::InvalidJson => {
                    request.messages.push(Message::assistant(raw));
                    request.messages.push(Message::user(format!(
                        "That reply is not valid JSON for the requested format: {error}. \
                         Answer again with only the JSON."
                    )));
                }
            }
        }
    }
}

/// Added to the prompt when a reply was cut off at the token limit.
const BRIEFLY: &str = "\n\n(An earlier answer to this was cut off at the token limit: answer much more briefly, and finish your answer.)";

/// One model call, which counts its usage wherever it ends (in place, or on
/// a task of its own if its step was cancelled): the run it counts into, and
/// what it holds while in flight (the runtime's concurrency permit, the
/// run's count of calls in flight).
struct DetachedCall {
    model: Arc<dyn LanguageModel>,
    run: Arc<RunShared>,
    index: usize,
    /// The unit the call belongs to (a loop's iteration, a map's element).
    unit: u32,
    in_flight: InFlightCall,
    permit: Option<OwnedSemaphorePermit>,
}

impl DetachedCall {
    /// Makes the call and counts every token the provider reported (of a
    /// failed call too) into the step and the run's budget.
    async fn run(self, request: ChatRequest) -> (Result<Completion, LlmError>, ChatRequest) {
        let result = self.model.complete(&request).await;
        let usage = match &result {
            Ok(completion) => {
                let span = tracing::Span::current();
                span.record("gen_ai.usage.input_tokens", completion.usage.input_tokens);
                span.record("gen_ai.usage.output_tokens", completion.usage.output_tokens);
                span.record(
                    "gen_ai.response.finish_reasons",
                    tracing::field::debug(completion.finish_reason),
                );
                Some(completion.usage)
            }
            Err(error) => error.usage(),
        };
        if let Some(usage) = usage {
            let cost = self
                .run
                .runtime
                .prices()
                .and_then(|prices| prices.cost(self.model.name(), usage));
            self.run.count_usage(self.index, self.unit, usage, cost);
        }
        drop((self.permit, self.in_flight));
        (result, request)
    }
}

#[cfg(feature = "structured")]
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
            reasks: 0,
        }),
        FinishReason::ContentFilter => Err(LlmError::Refused {
            reason: "content_filter".to_owned(),
        }),
        _ => Ok(completion.text),
    }
}
