//! Anthropic's Messages API.

use std::time::Duration;

use serde_json::{Value, json};

use super::http::{Timeouts, client, decode, read_sse, send};
use crate::llm::secret::ApiKey;
use crate::llm::{
    BoxFuture, ChatRequest, Completion, DeltaSink, FinishReason, LanguageModel, LlmError, Role,
    ToolCall, Usage,
};

/// A Claude model through Anthropic's Messages API, plain or streamed.
#[derive(Clone)]
pub struct Anthropic {
    client: reqwest::Client,
    timeouts: Timeouts,
    base_url: String,
    model: String,
    api_key: ApiKey,
    stream: bool,
    max_tokens: u32,
}

impl std::fmt::Debug for Anthropic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Anthropic")
            .field("base_url", &super::http::redact_url(&self.base_url))
            .field("model", &self.model)
            .field("api_key", &self.api_key)
            .field("stream", &self.stream)
            .finish()
    }
}

/// The API version sent in `anthropic-version`.
const API_VERSION: &str = "2023-06-01";

impl Anthropic {
    /// `model` (for example `claude-sonnet-4-5`) with `api_key`.
    pub fn new(model: impl Into<String>, api_key: impl Into<ApiKey>) -> Self {
        Self {
            client: client(Timeouts::default(), false),
            timeouts: Timeouts::default(),
            base_url: "https://api.anthropic.com".to_owned(),
            model: model.into(),
            api_key: api_key.into(),
            stream: false,
            max_tokens: 4096,
        }
    }

    /// Another endpoint (a proxy, a test server).
    #[must_use]
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into().trim_end_matches('/').to_owned();
        self
    }

    /// Streams replies (SSE).
    #[must_use]
    pub fn streaming(mut self, stream: bool) -> Self {
        self.stream = stream;
        self.client = client(self.timeouts, stream);
        self
    }

    /// `max_tokens` when the request sets none (Anthropic requires one; default 4096).
    #[must_use]
    pub fn default_max_tokens(mut self, max_tokens: u32) -> Self {
        self.max_tokens = max_tokens;
        self
    }

    /// How long a reply may take (default 120 s): a plain reply as a
    /// whole, a streamed one until it starts; a stream then runs as long as
    /// it keeps sending (see [`idle_timeout`](Self::idle_timeout)).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.request = timeout;
        self.client = client(self.timeouts, self.stream);
        self
    }

    /// How long a stream may send nothing before it is cut (default 60 s);
    /// the error keeps the text received so far.
    #[must_use]
    pub fn idle_timeout(mut self, idle: Duration) -> Self {
        self.timeouts.idle = idle;
        self
    }

    fn body(&self, request: &ChatRequest) -> Value {
        let mut system: Vec<&str> = request
            .messages
            .iter()
            .filter(|m| m.role == Role::System)
            .map(|m| m.content.as_str())
            .collect();
        let schema_hint;
        if let Some(schema) = &request.response_schema {
            // No response_format here: the schema goes into the instructions.
            schema_hint = format!(
                "Answer with only a JSON value that follows this JSON schema:\n{}",
                schema.schema
            );
            system.push(&schema_hint);
        }
        let mut body = json!({
            "model": self.model,
            "max_tokens": request.max_tokens.unwrap_or(self.max_tokens),
            "messages": messages(request),
        });
        if !request.tools.is_empty() {
            let tools: Vec<Value> = request
                .tools
                .iter()
                .map(|tool| {
                    json!({
                        "name": tool.name,
                        "description": tool.description,
                        "input_schema": tool.parameters,
                    })
                })
                .collect();
            body["tools"] = json!(tools);
        }
        if !system.is_empty() {
            body["system"] = json!(system.join("\n\n"));
        }
        if let Some(temperature) = request.temperature {
            body["temperature"] = json!(temperature);
        }
        // Anthropic's API takes no seed.
        if !request.stop.is_empty() {
            body["stop_sequences"] = json!(request.stop);
        }
        if self.stream {
            body["stream"] = json!(true);
        }
        body
    }

    async fn call(&self, request: &ChatRequest) -> Result<Completion, LlmError> {
        let http = self
            .client
            .post(super::http::endpoint(&self.base_url, "/v1/messages"))
            .header("x-api-key", self.api_key.expose())
            .header("anthropic-version", API_VERSION);
        let body = serde_json::to_vec(&self.body(request)).unwrap_or_default();
        let response = send(
            http,
            body,
            Some(self.api_key.expose()),
            self.timeouts,
            self.stream,
        )
        .await?;
        if self.stream {
            return read_stream(response, self.timeouts, request.on_delta.as_ref()).await;
        }
        let text = response
            .text()
            .await
            .map_err(|e| super::http::transport(e, String::new(), self.timeouts.request))?;
        let value = decode(&text)?;
        let Some(blocks) = value["content"].as_array() else {
            return Err(LlmError::Decode {
                message: "no `content` in the reply".to_owned(),
                body: text.chars().take(2000).collect(),
            });
        };
        let content: String = blocks.iter().filter_map(|b| b["text"].as_str()).collect();
        let tool_calls = blocks
            .iter()
            .filter(|block| block["type"] == "tool_use")
            .map(|block| ToolCall {
                id: block["id"].as_str().unwrap_or_default().to_owned(),
                name: block["name"].as_str().unwrap_or_default().to_owned(),
                arguments: block["input"].to_string(),
            })
            .collect();
        stop(value["stop_reason"].as_str())?;
        if let Some(sink) = &request.on_delta {
            sink.send(&content);
        }
        Ok(Completion {
            tool_calls,
            text: content,
            finish_reason: finish_reason(value["stop_reason"].as_str()),
            usage: usage(&value["usage"], Usage::default())?,
        })
    }
}

/// The conversation as the Messages API takes it: no system messages (they
/// go in `system`), a turn that called tools as `tool_use` blocks, and the
/// results of one turn's calls together in one user message of
/// `tool_result` blocks (a result starting `Error:` is marked `is_error`).
fn messages(request: &ChatRequest) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for message in request.messages.iter().filter(|m| m.role != Role::System) {
        match message.role {
            Role::Tool => {
                let block = json!({
                    "type": "tool_result",
                    "tool_use_id": message.tool_call_id,
                    "content": message.content,
                    "is_error": message.content.starts_with("Error: "),
                });
                let previous = out.last_mut().filter(|last| {
                    last["role"] == "user"
                        && last["content"]
                            .as_array()
                            .and_then(|blocks| blocks.first())
                            .is_some_and(|first| first["type"] == "tool_result")
                });
                match previous.and_then(|last| last["content"].as_array_mut()) {
                    Some(blocks) => blocks.push(block),
                    None => out.push(json!({ "role": "user", "content": [block] })),
                }
            }
            _ if !message.tool_calls.is_empty() => {
                let mut blocks = Vec::new();
                if !message.content.is_empty() {
                    blocks.push(json!({ "type": "text", "text": message.content }));
                }
                for call in &message.tool_calls {
                    // The API wants an object; arguments it sent are one.
                    let input: Value = serde_json::from_str(&call.arguments)
                        .ok()
                        .filter(Value::is_object)
                        .unwrap_or_else(|| json!({}));
                    blocks.push(json!({
                        "type": "tool_use",
                        "id": call.id,
                        "name": call.name,
                        "input": input,
                    }));
                }
                out.push(json!({ "role": "assistant", "content": blocks }));
            }
            _ => out.push(json!({ "role": message.role, "content": message.content })),
        }
    }
    out
}

/// Tool calls arriving in a stream: `content_block_start` names each
/// `tool_use` block (by index), `input_json_delta`s carry its input.
#[derive(Default)]
struct StreamedCalls(Vec<(u64, ToolCall)>);

impl StreamedCalls {
    fn start(&mut self, value: &Value) {
        let block = &value["content_block"];
        if block["type"] != "tool_use" {
            return;
        }
        let call = ToolCall {
            id: block["id"].as_str().unwrap_or_default().to_owned(),
            name: block["name"].as_str().unwrap_or_default().to_owned(),
            arguments: String::new(),
        };
        self.0
            .push((value["index"].as_u64().unwrap_or_default(), call));
    }

    fn delta(&mut self, value: &Value) {
        let Some(partial) = value["delta"]["partial_json"].as_str() else {
            return;
        };
        let index = value["index"].as_u64().unwrap_or_default();
        if let Some((_, call)) = self.0.iter_mut().find(|(at, _)| *at == index) {
            call.arguments.push_str(partial);
        }
    }

    fn finish(self) -> Vec<ToolCall> {
        self.0
            .into_iter()
            .map(|(_, mut call)| {
                // A tool that takes nothing streams no input at all.
                if call.arguments.is_empty() {
                    call.arguments.push_str("{}");
                }
                call
            })
            .collect()
    }
}

/// Usage as Anthropic reports it: `input_tokens` excludes the tokens read
/// from (`cache_read_input_tokens`) and written to
/// (`cache_creation_input_tokens`) the prompt cache, so the three add up to
/// the prompt. Fields a report leaves out keep their value in `before` (a
/// stream's `message_delta` may repeat only some of them).
fn usage(value: &Value, before: Usage) -> Result<Usage, LlmError> {
    let field = |name: &str, old: u64| -> Result<u64, LlmError> {
        if value[name].is_null() {
            Ok(old)
        } else {
            Usage::count(&value[name], name)
        }
    };
    let read = field("cache_read_input_tokens", before.cache_read_tokens)?;
    let written = field("cache_creation_input_tokens", before.cache_write_tokens)?;
    let uncached = field("input_tokens", before.uncached_input_tokens())?;
    let output = field("output_tokens", before.output_tokens)?;
    let input = uncached.saturating_add(read).saturating_add(written);
    Ok(Usage::new(input, output).with_cache(read, written))
}

fn finish_reason(reason: Option<&str>) -> FinishReason {
    match reason {
        Some("end_turn" | "stop_sequence") => FinishReason::Stop,
        Some("max_tokens") => FinishReason::Length,
        Some("tool_use") => FinishReason::ToolCalls,
        Some("refusal") => FinishReason::ContentFilter,
        _ => FinishReason::Other,
    }
}

fn stop(reason: Option<&str>) -> Result<(), LlmError> {
    match reason {
        Some("refusal") => Err(LlmError::Refused {
            reason: "refusal".to_owned(),
        }),
        _ => Ok(()),
    }
}

async fn read_stream(
    response: reqwest::Response,
    timeouts: Timeouts,
    sink: Option<&DeltaSink>,
) -> Result<Completion, LlmError> {
    let mut partial = String::new();
    let mut usage = Usage::default();
    let mut reason: Option<String> = None;
    let mut finished = false;
    let mut failure: Option<LlmError> = None;
    let mut calls = StreamedCalls::default();
    read_sse(response, &mut partial, timeouts, |event, data, text| {
        let value = decode(data)?;
        match event.or(value["type"].as_str()) {
            Some("message_start") => {
                usage = self::usage(&value["message"]["usage"], usage)?;
            }
            Some("content_block_start") => calls.start(&value),
            Some("content_block_delta") => {
                if let Some(delta) = value["delta"]["text"].as_str() {
                    text.push_str(delta);
                    if let Some(sink) = sink {
                        sink.send(delta);
                    }
                }
                calls.delta(&value);
            }
            Some("message_delta") => {
                reason = value["delta"]["stop_reason"].as_str().map(str::to_owned);
                if value["usage"].is_object() {
                    usage = self::usage(&value["usage"], usage)?;
                }
            }
            Some("message_stop") => {
                finished = true;
                return Ok(false);
            }
            Some("error") => {
                let kind = value["error"]["type"].as_str().unwrap_or_default();
                let body = data.to_owned();
                failure = Some(match kind {
                    "overloaded_error" | "api_error" => LlmError::Overloaded { status: 529, body },
                    "rate_limit_error" => LlmError::RateLimited {
                        status: 429,
                        retry_after: None,
                        body,
                    },
                    _ => LlmError::Http { status: 500, body },
                });
                return Ok(false);
            }
            _ => {}
        }
        Ok(true)
    })
    .await
    .map_err(|mut error| {
        // A cut after `message_start` still reported its input tokens.
        if let LlmError::Transport { usage: kept, .. } | LlmError::Timeout { usage: kept, .. } =
            &mut error
        {
            *kept = usage;
        }
        error
    })?;
    if let Some(error) = failure {
        return Err(error);
    }
    if !finished {
        return Err(LlmError::Transport {
            message: "the stream ended before `message_stop`".to_owned(),
            partial,
            usage,
        });
    }
    stop(reason.as_deref())?;
    Ok(Completion {
        tool_calls: calls.finish(),
        text: partial,
        finish_reason: finish_reason(reason.as_deref()),
        usage,
    })
}

impl LanguageModel for Anthropic {
    fn name(&self) -> &str {
        &self.model
    }

    fn complete<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<Completion, LlmError>> {
        Box::pin(self.call(request))
    }
}
