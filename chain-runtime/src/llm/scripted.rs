//! A deterministic model for tests and offline examples.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::{BoxFuture, ChatRequest, Completion, FinishReason, LanguageModel, LlmError, Usage};

type ReplyFn = dyn Fn(&ChatRequest, usize) -> Result<Completion, LlmError> + Send + Sync;

/// One scripted answer: a text, a computed text, a sequence, or a failure,
/// optionally after a delay (which honours `tokio::time::pause`).
#[derive(Clone)]
pub struct ScriptedReply {
    reply: Arc<ReplyFn>,
    sequence: Arc<[ScriptedReply]>,
    latency: Option<Duration>,
    hang: bool,
}

impl ScriptedReply {
    /// A reply computed from the request and the rule's call number (from
    /// 0): a whole [`Completion`] (its finish reason and usage too), or an
    /// error, such as a failure for one input among many.
    pub fn from_completion_fn(
        f: impl Fn(&ChatRequest, usize) -> Result<Completion, LlmError> + Send + Sync + 'static,
    ) -> Self {
        Self {
            reply: Arc::new(f),
            sequence: Arc::new([]),
            latency: None,
            hang: false,
        }
    }

    /// The reply that answers call number `call` (0-based) of its rule.
    fn for_call(&self, call: usize) -> &ScriptedReply {
        match self.sequence.get(call).or(self.sequence.last()) {
            Some(reply) => reply.for_call(0),
            None => self,
        }
    }

    /// Always this text.
    pub fn text(text: impl Into<String>) -> Self {
        let text = text.into();
        Self::from_completion_fn(move |request, _| Ok(completion(request, text.clone())))
    }

    /// A text computed from the request (for replies that depend on the input).
    pub fn from_fn(f: impl Fn(&ChatRequest) -> String + Send + Sync + 'static) -> Self {
        Self::from_completion_fn(move |request, _| Ok(completion(request, f(request))))
    }

    /// The first call gets the first reply, the second the second, and so on;
    /// the last one repeats.
    pub fn sequence(replies: impl IntoIterator<Item = ScriptedReply>) -> Self {
        let mut reply = Self::error("empty reply sequence", false);
        reply.sequence = replies.into_iter().collect();
        reply
    }

    /// A failure; `retryable` says whether the runtime may try again.
    pub fn error(message: impl Into<String>, retryable: bool) -> Self {
        let message = message.into();
        Self::from_completion_fn(move |_, _| {
            Err(LlmError::Scripted {
                message: message.clone(),
                retryable,
            })
        })
    }

    /// A reply cut off at the token limit (`finish_reason = length`).
    pub fn truncated(partial: impl Into<String>) -> Self {
        let partial = partial.into();
        Self::from_completion_fn(move |request, _| {
            let mut out = completion(request, partial.clone());
            out.finish_reason = FinishReason::Length;
            Ok(out)
        })
    }

    /// A turn asking for tool calls: `(tool name, arguments)`, with ids
    /// `call_0`, `call_1`, … (`finish_reason = tool_calls`). Arguments are
    /// sent as written: a JSON value, or a string taken as the raw argument
    /// text (to script malformed arguments).
    pub fn tool_calls<N: Into<String>>(
        calls: impl IntoIterator<Item = (N, serde_json::Value)>,
    ) -> Self {
        let calls: Vec<super::ToolCall> = calls
            .into_iter()
            .enumerate()
            .map(|(i, (name, arguments))| super::ToolCall {
                id: format!("call_{i}"),
                name: name.into(),
                arguments: match arguments {
                    serde_json::Value::String(raw) => raw,
                    other => other.to_string(),
                },
            })
            .collect();
        Self::from_completion_fn(move |request, _| {
            let mut out = completion(request, String::new());
            out.tool_calls.clone_from(&calls);
            out.finish_reason = FinishReason::ToolCalls;
            Ok(out)
        })
    }

    /// A model that never answers (for timeout tests).
    pub fn hang() -> Self {
        let mut reply = Self::text("");
        reply.hang = true;
        reply
    }

    /// Answers after `latency` (virtual time under `tokio::time::pause`).
    #[must_use]
    pub fn after(mut self, latency: Duration) -> Self {
        self.latency = Some(latency);
        self
    }
}

impl fmt::Debug for ScriptedReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScriptedReply")
            .field("latency", &self.latency)
            .field("hang", &self.hang)
            .finish_non_exhaustive()
    }
}

impl From<&str> for ScriptedReply {
    fn from(text: &str) -> Self {
        Self::text(text)
    }
}

impl From<String> for ScriptedReply {
    fn from(text: String) -> Self {
        Self::text(text)
    }
}

/// `text` cut after each space or punctuation mark (at most 8 characters a
/// piece), as a provider's stream cuts a reply into tokens.
fn pieces(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = rest
            .char_indices()
            .skip(1)
            .take(8)
            .find(|(_, c)| c.is_whitespace() || matches!(c, ',' | ':' | '{' | '}' | '"'))
            .map_or_else(
                || rest.char_indices().nth(8).map_or(rest.len(), |(at, _)| at),
                |(at, _)| at,
            );
        let (piece, tail) = rest.split_at(end);
        rest = tail;
        Some(piece)
    })
}

/// Rough token count: about four characters a token, as tokenizers average on English.
fn estimate_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

fn completion(request: &ChatRequest, text: String) -> Completion {
    let input_tokens = request
        .messages
        .iter()
        .map(|m| estimate_tokens(&m.content))
        .sum();
    Completion {
        tool_calls: Vec::new(),
        usage: Usage::new(input_tokens, estimate_tokens(&text)),
        text,
        finish_reason: FinishReason::Stop,
    }
}

#[derive(Debug, Clone)]
enum Matcher {
    Step(String),
    PromptContains(String),
    Any,
}

impl Matcher {
    fn matches(&self, request: &ChatRequest) -> bool {
        match self {
            Matcher::Step(step) => request.step == Some(step.as_str()),
            Matcher::PromptContains(needle) => request.prompt().contains(needle.as_str()),
            Matcher::Any => true,
        }
    }

    /// How specific the rule is: lower wins.
    fn rank(&self) -> u8 {
        match self {
            Matcher::Step(_) => 0,
            Matcher::PromptContains(_) => 1,
            Matcher::Any => 2,
        }
    }

    fn describe(&self) -> String {
        match self {
            Matcher::Step(step) => format!("step `{step}`"),
            Matcher::PromptContains(needle) => format!("prompts containing {needle:?}"),
            Matcher::Any => "any prompt".to_owned(),
        }
    }
}

#[derive(Debug, Clone)]
struct Rule {
    matcher: Matcher,
    reply: ScriptedReply,
    calls: Arc<AtomicUsize>,
}

/// A deterministic [`LanguageModel`]: replies are looked up by the calling
/// step's name, else by a substring of the prompt, else `otherwise` (the
/// most specific rule wins, whatever the order they were added in; among
/// rules of one kind, the first added); a request no rule matches is a
/// clear [`LlmError::NoScript`].
///
/// Clones share their rules' call counters and the call log, so a test can keep
/// a clone and inspect [`ScriptedModel::calls`] after the run. The log keeps
/// the last 10,000 requests ([`ScriptedModel::log_capacity`]); the counts
/// ([`ScriptedModel::call_count`], [`ScriptedModel::calls_for`]) stay exact.
///
/// ```
/// # use prompt_chain_runtime as prompt_chain; // the facade crate, as users depend on it
/// use prompt_chain::llm::{ScriptedModel, ScriptedReply};
/// use std::time::Duration;
///
/// let model = ScriptedModel::new()
///     .on_step("classify", "billing")
///     .on_prompt("refund", ScriptedReply::text("We refunded you.").after(Duration::from_millis(50)))
///     .otherwise("I don't know.");
/// ```
#[derive(Debug, Clone)]
pub struct ScriptedModel {
    name: String,
    rules: Vec<Rule>,
    latency: Duration,
    log: Arc<Mutex<CallLog>>,
}

/// The requests a scripted model received: the most recent ones, and exact
/// counts of all of them.
#[derive(Debug)]
struct CallLog {
    recent: std::collections::VecDeque<ChatRequest>,
    capacity: usize,
    total: usize,
    per_step: std::collections::HashMap<&'static str, usize>,
}

impl Default for CallLog {
    fn default() -> Self {
        Self {
            recent: std::collections::VecDeque::new(),
            capacity: 10_000,
            total: 0,
            per_step: std::collections::HashMap::new(),
        }
    }
}

impl CallLog {
    fn push(&mut self, request: &ChatRequest) {
        self.total += 1;
        if let Some(step) = request.step {
            *self.per_step.entry(step).or_default() += 1;
        }
        if self.capacity == 0 {
            return;
        }
        if self.recent.len() == self.capacity {
            self.recent.pop_front();
        }
        self.recent.push_back(request.clone());
    }
}

impl Default for ScriptedModel {
    fn default() -> Self {
        Self::new()
    }
}

impl ScriptedModel {
    /// A model with no rules yet.
    pub fn new() -> Self {
        Self {
            name: "scripted".to_owned(),
            rules: Vec::new(),
            latency: Duration::ZERO,
            log: Arc::default(),
        }
    }

    fn rule(mut self, matcher: Matcher, reply: ScriptedReply) -> Self {
        self.rules.push(Rule {
            matcher,
            reply,
            calls: Arc::default(),
        });
        self
    }

    /// Replies to calls made by the step with this name (its function's name).
    #[must_use]
    pub fn on_step(self, step: impl Into<String>, reply: impl Into<ScriptedReply>) -> Self {
        self.rule(Matcher::Step(step.into()), reply.into())
    }

    /// Replies to prompts that contain `needle`, from steps that have no
    /// [`on_step`](ScriptedModel::on_step) rule of their own.
    #[must_use]
    pub fn on_prompt(self, needle: impl Into<String>, reply: impl Into<ScriptedReply>) -> Self {
        self.rule(Matcher::PromptContains(needle.into()), reply.into())
    }

    /// Replies to anything no step or prompt rule matched.
    #[must_use]
    pub fn otherwise(self, reply: impl Into<ScriptedReply>) -> Self {
        self.rule(Matcher::Any, reply.into())
    }

    /// Delay of every reply that sets none of its own.
    #[must_use]
    pub fn latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// Renames the model (as shown in reports).
    #[must_use]
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// How many requests the log keeps (default 10,000; the oldest go
    /// first); 0 keeps none. Counts stay exact either way.
    #[must_use]
    pub fn log_capacity(self, capacity: usize) -> Self {
        self.log().capacity = capacity;
        self
    }

    /// The requests received, oldest first (the last
    /// [`log_capacity`](ScriptedModel::log_capacity) of them).
    pub fn calls(&self) -> Vec<ChatRequest> {
        self.log().recent.iter().cloned().collect()
    }

    /// How many requests were received in all.
    pub fn call_count(&self) -> usize {
        self.log().total
    }

    /// How many requests came from the step with this name.
    pub fn calls_for(&self, step: &str) -> usize {
        self.log().per_step.get(step).copied().unwrap_or(0)
    }

    fn log(&self) -> std::sync::MutexGuard<'_, CallLog> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl LanguageModel for ScriptedModel {
    fn name(&self) -> &str {
        &self.name
    }

    fn complete<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<Completion, LlmError>> {
        self.log().push(request);
        // The most specific rule wins: the calling step's, then a prompt
        // match, then `otherwise`; among rules of one kind, the first added.
        let rule = self
            .rules
            .iter()
            .filter(|rule| rule.matcher.matches(request))
            .min_by_key(|rule| rule.matcher.rank());
        Box::pin(async move {
            let Some(rule) = rule else {
                let known = if self.rules.is_empty() {
                    "nothing".to_owned()
                } else {
                    self.rules
                        .iter()
                        .map(|r| r.matcher.describe())
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                return Err(LlmError::NoScript {
                    step: request.step.map(str::to_owned),
                    prompt_start: request.prompt().chars().take(80).collect(),
                    known,
                });
            };
            let call = rule.calls.fetch_add(1, Ordering::Relaxed);
            let reply = rule.reply.for_call(call);
            let latency = reply.latency.unwrap_or(self.latency);
            if !latency.is_zero() {
                tokio::time::sleep(latency).await;
            }
            if reply.hang {
                std::future::pending::<()>().await;
            }
            let completion = (reply.reply)(request, call);
            // A listener gets the reply as a streaming provider sends it:
            // in pieces of a few characters.
            if let (Some(sink), Ok(completion)) = (&request.on_delta, &completion) {
                for piece in pieces(&completion.text) {
                    sink.send(piece);
                }
            }
            completion
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{ChatRequest, LanguageModel, ScriptedModel};

    #[tokio::test]
    async fn the_log_is_bounded_and_the_counts_stay_exact() {
        let model = ScriptedModel::new().otherwise("ok").log_capacity(3);
        for n in 0..10 {
            let mut request = ChatRequest::user(format!("call {n}"));
            request.step = Some(if n % 2 == 0 { "even" } else { "odd" });
            model.complete(&request).await.expect("answers");
        }
        let kept: Vec<String> = model
            .calls()
            .iter()
            .map(|r| r.prompt().to_owned())
            .collect();
        assert_eq!(kept, ["call 7", "call 8", "call 9"]);
        assert_eq!(model.call_count(), 10);
        assert_eq!(model.calls_for("even"), 5);
        assert_eq!(model.calls_for("odd"), 5);
    }

    /// A prompt rule added first does not take the calls of a step that
    /// has its own rule.
    #[tokio::test]
    async fn the_most_specific_rule_wins_whatever_the_order() {
        let model = ScriptedModel::new()
            .otherwise("fallback")
            .on_prompt("refund", "prompt rule")
            .on_step("classify", "step rule");
        let ask = |step: &'static str, prompt: &str| {
            let mut request = ChatRequest::user(prompt);
            request.step = Some(step);
            request
        };
        let reply = |request: ChatRequest| {
            let model = model.clone();
            async move { model.complete(&request).await.expect("answers").text }
        };
        assert_eq!(
            reply(ask("classify", "a refund, please")).await,
            "step rule"
        );
        assert_eq!(
            reply(ask("answer", "a refund, please")).await,
            "prompt rule"
        );
        assert_eq!(reply(ask("answer", "hello")).await, "fallback");
    }
}
