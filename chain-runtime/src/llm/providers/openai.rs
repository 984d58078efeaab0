//! OpenAI-compatible chat completions.

use std::time::Duration;

use serde_json::{Value, json};

use super::http::{Timeouts, client, decode, read_sse, send};
use crate::llm::secret::ApiKey;
use crate::llm::{
    BoxFuture, ChatRequest, Completion, DeltaSink, FinishReason, LanguageModel, LlmError, Message,
    Role, ToolCall, Usage,
};

/// A chat model behind an OpenAI-compatible `/chat/completions` endpoint:
/// OpenAI itself, vLLM, Ollama (`http://localhost:11434/v1`), llama.cpp's
/// server, LM Studio. Plain or streamed (SSE).
#[derive(Clone)]
pub struct OpenAiCompatible {
    client: reqwest::Client,
    timeouts: Timeouts,
    base_url: String,
    model: String,
    name: String,
    api_key: Option<ApiKey>,
    stream: bool,
    max_tokens: Option<u32>,
}

impl std::fmt::Debug for OpenAiCompatible {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiCompatible")
            .field("base_url", &super::http::redact_url(&self.base_url))
            .field("model", &self.model)
            .field("api_key", &self.api_key)
            .field("stream", &self.stream)
            .finish()
    }
}

impl OpenAiCompatible {
    /// `model` at `base_url` (for example `https://api.openai.com/v1`).
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        let model = model.into();
        Self {
            client: client(Timeouts::default(), false),
            timeouts: Timeouts::default(),
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            name: model.clone(),
            model,
            api_key: None,
            stream: false,
            max_tokens: Some(2048),
        }
    }

    /// OpenAI's API.
    pub fn openai(model: impl Into<String>, api_key: impl Into<ApiKey>) -> Self {
        Self::new("https://api.openai.com/v1", model).api_key(api_key)
    }

    /// The key sent as `Authorization: Bearer`.
    #[must_use]
    pub fn api_key(mut self, key: impl Into<ApiKey>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// Streams replies (SSE) instead of waiting for the whole body.
    #[must_use]
    pub fn streaming(mut self, stream: bool) -> Self {
        self.stream = stream;
        self.client = client(self.timeouts, stream);
        self
    }

    /// `max_tokens` when neither the call nor its step sets one (default
    /// 2048; `None` sends none, leaving it to the server: a small local model
    /// may then write until its context is full).
    #[must_use]
    pub fn default_max_tokens(mut self, max_tokens: Option<u32>) -> Self {
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
        let messages: Vec<Value> = request.messages.iter().map(message).collect();
        let mut body = json!({ "model": self.model, "messages": messages });
        if !request.tools.is_empty() {
            let tools: Vec<Value> = request
                .tools
                .iter()
                .map(|tool| {
                    json!({
                        "type": "function",
                        "function": {
                            "name": tool.name,
                            "description": tool.description,
                            "parameters": tool.parameters,
                        },
                    })
                })
                .collect();
            body["tools"] = json!(tools);
        }
        if let Some(max) = request.max_tokens.or(self.max_tokens) {
            body["max_tokens"] = json!(max);
        }
        if let Some(seed) = request.seed {
            body["seed"] = json!(seed);
        }
        if !request.stop.is_empty() {
            body["stop"] = json!(request.stop);
        }
        if let Some(temperature) = request.temperature {
            body["temperature"] = json!(temperature);
        }
        if let Some(schema) = &request.response_schema {
            body["response_format"] = json!({
                "type": "json_schema",
                "json_schema": { "name": schema.name, "schema": schema.schema, "strict": false },
            });
        }
        if self.stream {
            body["stream"] = json!(true);
            body["stream_options"] = json!({ "include_usage": true });
        }
        body
    }

    async fn call(&self, request: &ChatRequest) -> Result<Completion, LlmError> {
        let mut http = self
            .client
            .post(super::http::endpoint(&self.base_url, "/chat/completions"));
        if let Some(key) = &self.api_key {
            http = http.bearer_auth(key.expose());
        }
        let body = serde_json::to_vec(&self.body(request)).unwrap_or_default();
        let response = send(
            http,
            body,
            self.api_key.as_ref().map(ApiKey::expose),
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
        let choice = &value["choices"][0];
        let tool_calls = tool_calls(&choice["message"]["tool_calls"]);
        let content = match choice["message"]["content"].as_str() {
            // A turn that only calls tools may send no content at all.
            None if !tool_calls.is_empty() => Some(""),
            content => content,
        };
        let Some(content) = content else {
            if choice["message"]["refusal"].is_string() {
                return Err(LlmError::Refused {
                    reason: choice["message"]["refusal"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                });
            }
            return Err(LlmError::Decode {
                message: "no `choices[0].message.content` in the reply".to_owned(),
                body: text.chars().take(2000).collect(),
            });
        };
        if let Some(sink) = &request.on_delta {
            sink.send(content);
        }
        Ok(Completion {
            tool_calls,
            text: content.to_owned(),
            finish_reason: finish_reason(choice["finish_reason"].as_str()),
            usage: usage(&value["usage"])?,
        })
    }
}

/// One message as the endpoint takes it: a tool's result answers its call
/// by id; a turn that called tools lists them (with `null` content when it
/// said nothing).
fn message(message: &Message) -> Value {
    if message.role == Role::Tool {
        return json!({
            "role": "tool",
            "tool_call_id": message.tool_call_id,
            "content": message.content,
        });
    }
    if message.tool_calls.is_empty() {
        return json!({ "role": message.role, "content": message.content });
    }
    let calls: Vec<Value> = message
        .tool_calls
        .iter()
        .map(|call| {
            json!({
                "id": call.id,
                "type": "function",
                "function": { "name": call.name, "arguments": call.arguments },
            })
        })
        .collect();
    let content = if message.content.is_empty() {
        Value::Null
    } else {
        json!(message.content)
    };
    json!({ "role": message.role, "content": content, "tool_calls": calls })
}

/// `message.tool_calls` of a reply. Arguments are a JSON text; a server
/// that sends them as an object gets them written back as text.
fn tool_calls(calls: &Value) -> Vec<ToolCall> {
    let Some(calls) = calls.as_array() else {
        return Vec::new();
    };
    calls
        .iter()
        .enumerate()
        .map(|(i, call)| ToolCall {
            id: call["id"]
                .as_str()
                .map_or_else(|| format!("call_{i}"), str::to_owned),
            name: call["function"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            arguments: arguments_text(&call["function"]["arguments"]),
        })
        .collect()
}

/// Arguments as JSON text, however the server sent them.
fn arguments_text(arguments: &Value) -> String {
    match arguments {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Tool calls arriving in pieces (`delta.tool_calls`, keyed by `index`):
/// the id and name come once, the arguments in fragments.
#[derive(Default)]
struct StreamedCalls(Vec<ToolCall>);

impl StreamedCalls {
    fn add(&mut self, deltas: &Value) {
        let Some(deltas) = deltas.as_array() else {
            return;
        };
        for (position, delta) in deltas.iter().enumerate() {
            let index = delta["index"]
                .as_u64()
                .map_or(position, |i| usize::try_from(i).unwrap_or(usize::MAX));
            // Indices are small and dense; a wild one is capped, not allocated.
            let index = index.min(self.0.len());
            if index == self.0.len() {
                self.0.push(ToolCall {
                    id: format!("call_{index}"),
                    name: String::new(),
                    arguments: String::new(),
                });
            }
            let call = &mut self.0[index];
            if let Some(id) = delta["id"].as_str() {
                id.clone_into(&mut call.id);
            }
            if let Some(name) = delta["function"]["name"].as_str() {
                call.name.push_str(name);
            }
            call.arguments
                .push_str(&arguments_text(&delta["function"]["arguments"]));
        }
    }
}

fn finish_reason(reason: Option<&str>) -> FinishReason {
    match reason {
        Some("stop") => FinishReason::Stop,
        Some("length") => FinishReason::Length,
        Some("content_filter") => FinishReason::ContentFilter,
        Some("tool_calls" | "function_call") => FinishReason::ToolCalls,
        _ => FinishReason::Other,
    }
}

/// Usage as OpenAI reports it: `prompt_tokens` includes the tokens served
/// from the prompt cache (`prompt_tokens_details.cached_tokens`).
fn usage(value: &Value) -> Result<Usage, LlmError> {
    let cached = Usage::count(
        &value["prompt_tokens_details"]["cached_tokens"],
        "cached_tokens",
    )?;
    Ok(Usage::new(
        Usage::count(&value["prompt_tokens"], "prompt_tokens")?,
        Usage::count(&value["completion_tokens"], "completion_tokens")?,
    )
    .with_cache(cached, 0))
}

/// An `error` object sent inside a stream, classified like an HTTP error of
/// its code (a stream's own status was 200).
fn stream_error(error: &Value, data: &str, partial: &str) -> LlmError {
    let body = super::http::error_body(data, None);
    let code = error["code"].as_u64().and_then(|c| u16::try_from(c).ok());
    let kind = error["type"].as_str().unwrap_or_default();
    match (code, kind) {
        (Some(429), _) | (_, "rate_limit_error" | "rate_limit_exceeded") => LlmError::RateLimited {
            status: 429,
            retry_after: None,
            body,
        },
        (Some(400 | 404 | 413 | 422), _)
        | (_, "invalid_request_error" | "exceed_context_size_error") => LlmError::BadRequest {
            status: code.unwrap_or(400),
            body,
        },
        (Some(status), _) if status >= 500 => LlmError::Overloaded { status, body },
        _ => LlmError::Transport {
            message: format!("the server reported an error mid-stream: {body}"),
            partial: partial.to_owned(),
            usage: Usage::default(),
        },
    }
}

async fn read_stream(
    response: reqwest::Response,
    timeouts: Timeouts,
    sink: Option<&DeltaSink>,
) -> Result<Completion, LlmError> {
    let mut partial = String::new();
    let mut finish = None;
    let mut tokens = Usage::default();
    let mut done = false;
    let mut calls = StreamedCalls::default();
    read_sse(response, &mut partial, timeouts, |_, data, text| {
        if data == "[DONE]" {
            done = true;
            return Ok(false);
        }
        let chunk = decode(data)?;
        // Servers report a failure inside the stream as an `error` object.
        if chunk["error"].is_object() {
            return Err(stream_error(&chunk["error"], data, text));
        }
        if let Some(delta) = chunk["choices"][0]["delta"]["content"].as_str() {
            text.push_str(delta);
            if let Some(sink) = sink {
                sink.send(delta);
            }
        }
        calls.add(&chunk["choices"][0]["delta"]["tool_calls"]);
        if let Some(reason) = chunk["choices"][0]["finish_reason"].as_str() {
            finish = Some(finish_reason(Some(reason)));
        }
        if chunk["usage"].is_object() {
            tokens = usage(&chunk["usage"])?;
        }
        Ok(true)
    })
    .await?;
    if !done && finish.is_none() {
        return Err(LlmError::Transport {
            message: "the stream ended before the reply was finished".to_owned(),
            partial,
            usage: tokens,
        });
    }
    Ok(Completion {
        tool_calls: calls.0,
        text: partial,
        finish_reason: finish.unwrap_or(FinishReason::Stop),
        usage: tokens,
    })
}

impl LanguageModel for OpenAiCompatible {
    fn name(&self) -> &str {
        &self.name
    }

    fn complete<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<Completion, LlmError>> {
        Box::pin(self.call(request))
    }
}
