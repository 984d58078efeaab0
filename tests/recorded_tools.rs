//! Tool calls as a real server sent them: llama.cpp's llama-server with
//! Qwen2.5-Coder-0.5B-Instruct (tests/payloads/llama-server-tools/README.md
//! says how they were captured). Each recorded body is replayed verbatim by
//! an in-process server — the streams cut into small pieces at arbitrary
//! bytes — and the providers must read exactly what the server meant: ids
//! without a `call_`/`toolu_` prefix, arguments pretty-printed or compact,
//! `content: ""` beside tool calls, usage with cached prompt tokens (which
//! Anthropic's format counts apart), and a tool loop whose follow-up request
//! has the shape that server accepted.

#[allow(dead_code)]
#[path = "support/fake_server.rs"]
mod fake_server;

use fake_server::{FakeServer, Reply};
use prompt_chain::llm::{
    Anthropic, ChatRequest, Completion, FinishReason, LanguageModel, OpenAiCompatible, ToolSpec,
};
use prompt_chain::prelude::*;
use serde_json::{Value, json};

fn payload(name: &str) -> String {
    let path = format!(
        "{}/tests/payloads/llama-server-tools/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{path}: {error}"))
}

fn recorded(name: &str) -> Value {
    serde_json::from_str(&payload(name)).expect("recorded JSON")
}

/// A recorded JSON body with the server's content type.
fn body(case: &str) -> Reply {
    Reply::Full(
        200,
        vec![("content-type", "application/json; charset=utf-8".to_owned())],
        payload(&format!("{case}.response.json")),
    )
}

/// A recorded event stream, verbatim, in pieces of `piece` bytes.
fn stream(case: &str, piece: usize) -> Reply {
    let bytes = payload(&format!("{case}.sse.txt")).into_bytes();
    Reply::Bytes(bytes.chunks(piece).map(<[u8]>::to_vec).collect())
}

/// The request a case sent, as our types: its messages and tools.
fn request(case: &str) -> ChatRequest {
    let sent = recorded(&format!("{case}.request.json"));
    let mut request = ChatRequest::user(
        sent["messages"]
            .as_array()
            .and_then(|messages| messages.iter().rev().find(|m| m["role"] == "user"))
            .and_then(|m| m["content"].as_str())
            .unwrap_or("What is the weather in Paris?"),
    );
    request.tools = sent["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .map(|tool| {
            let function = if tool["function"].is_object() {
                &tool["function"]
            } else {
                tool
            };
            ToolSpec {
                name: function["name"].as_str().expect("name").to_owned(),
                description: function["description"].as_str().unwrap_or("").to_owned(),
                parameters: if function["parameters"].is_object() {
                    function["parameters"].clone()
                } else {
                    function["input_schema"].clone()
                },
            }
        })
        .collect();
    request
}

/// (name, arguments as JSON) of each call, in order.
fn calls(completion: &Completion) -> Vec<(String, Value)> {
    completion
        .tool_calls
        .iter()
        .map(|call| {
            let arguments = serde_json::from_str(&call.arguments)
                .unwrap_or_else(|error| panic!("arguments {:?}: {error}", call.arguments));
            (call.name.clone(), arguments)
        })
        .collect()
}

/// A call: its name and its arguments as JSON.
type Call = (String, Value);

/// A recorded stream, the calls in it, and (input, output, cached) tokens.
type StreamCase = (&'static str, Vec<Call>, (u64, u64, u64));

fn paris() -> (String, Value) {
    ("get_weather".to_owned(), json!({"city": "Paris"}))
}

fn account() -> (String, Value) {
    (
        "lookup_account".to_owned(),
        json!({"customer_id": "C-1042"}),
    )
}

#[tokio::test]
async fn openai_reads_the_servers_tool_calls_exactly() {
    for case in [
        "a1-chat-single",
        "a2-chat-parallel",
        "c1-chat-followup",
        "c3-chat-followup-parallel",
    ] {
        let server = FakeServer::start(vec![body(case)]).await;
        let model = OpenAiCompatible::new(server.url.clone(), "qwen");
        let completion = model.complete(&request(case)).await.expect(case);
        let reply = recorded(&format!("{case}.response.json"));
        let message = &reply["choices"][0]["message"];
        let expected: Vec<(String, String, String)> = message["tool_calls"]
            .as_array()
            .expect("tool calls")
            .iter()
            .map(|call| {
                let text = |v: &Value| v.as_str().expect("a string").to_owned();
                (
                    text(&call["id"]),
                    text(&call["function"]["name"]),
                    text(&call["function"]["arguments"]),
                )
            })
            .collect();
        let got: Vec<(String, String, String)> = completion
            .tool_calls
            .iter()
            .map(|call| (call.id.clone(), call.name.clone(), call.arguments.clone()))
            .collect();
        assert_eq!(got, expected, "{case}: ids, names and arguments as sent");
        assert_eq!(completion.finish_reason, FinishReason::ToolCalls, "{case}");
        assert_eq!(completion.text, "", "{case}");
        let usage = &reply["usage"];
        assert_eq!(
            (
                completion.usage.input_tokens,
                completion.usage.output_tokens,
                completion.usage.cache_read_tokens
            ),
            (
                usage["prompt_tokens"].as_u64().expect("prompt"),
                usage["completion_tokens"].as_u64().expect("completion"),
                usage["prompt_tokens_details"]["cached_tokens"]
                    .as_u64()
                    .expect("cached"),
            ),
            "{case}: usage"
        );
    }
}

#[tokio::test]
async fn openai_reads_the_servers_streamed_tool_calls_in_any_pieces() {
    let cases: [StreamCase; 3] = [
        ("b1-chat-single-stream", vec![paris()], (266, 29, 265)),
        (
            "b2-chat-parallel-stream",
            vec![paris(), account()],
            (283, 43, 282),
        ),
        ("c2-chat-followup-stream", vec![paris()], (325, 21, 324)),
    ];
    for (case, expected, (input, output, cached)) in cases {
        for piece in [1, 7, 4096] {
            let server = FakeServer::start(vec![stream(case, piece)]).await;
            let model = OpenAiCompatible::new(server.url.clone(), "qwen").streaming(true);
            let completion = model.complete(&request(case)).await.expect(case);
            assert_eq!(
                calls(&completion),
                expected,
                "{case} in {piece}-byte pieces"
            );
            assert!(
                completion.tool_calls.iter().all(|call| call.id.len() == 32),
                "{case}: the server's 32-character ids"
            );
            assert_eq!(completion.finish_reason, FinishReason::ToolCalls, "{case}");
            assert_eq!(
                (
                    completion.usage.input_tokens,
                    completion.usage.output_tokens,
                    completion.usage.cache_read_tokens
                ),
                (input, output, cached),
                "{case}: usage from the last chunk"
            );
        }
    }
    // The pretty-printed arguments arrive as the model wrote them.
    let server = FakeServer::start(vec![stream("b1-chat-single-stream", 3)]).await;
    let model = OpenAiCompatible::new(server.url.clone(), "qwen").streaming(true);
    let completion = model
        .complete(&request("b1-chat-single-stream"))
        .await
        .expect("b1");
    assert_eq!(
        completion.tool_calls[0].arguments,
        "{\n    \"city\": \"Paris\"\n  }"
    );
    // A plain streamed answer from the same server, for comparison.
    let server = FakeServer::start(vec![stream("e4-chat-plain-stream", 5)]).await;
    let model = OpenAiCompatible::new(server.url.clone(), "qwen").streaming(true);
    let completion = model
        .complete(&ChatRequest::user("Hello"))
        .await
        .expect("e4");
    assert_eq!(completion.text, "Hello! How can I assist you today?");
    assert_eq!(completion.finish_reason, FinishReason::Stop);
    assert!(completion.tool_calls.is_empty());
}

#[tokio::test]
async fn a_model_that_writes_its_call_as_text_is_not_taken_for_a_call() {
    // With `tool_choice: "none"` the server returns the model's fenced JSON
    // as plain text: that is an answer, not a tool call.
    let server = FakeServer::start(vec![body("e1-chat-followup-toolchoice-none")]).await;
    let model = OpenAiCompatible::new(server.url.clone(), "qwen");
    let completion = model
        .complete(&request("e1-chat-followup-toolchoice-none"))
        .await
        .expect("e1");
    assert!(completion.tool_calls.is_empty());
    assert_eq!(completion.finish_reason, FinishReason::Stop);
    assert!(
        completion.text.starts_with("```json"),
        "{}",
        completion.text
    );
}

#[tokio::test]
async fn anthropic_reads_the_servers_tool_use_plain_and_streamed() {
    let plain: [(&str, Vec<(String, Value)>); 3] = [
        ("d1-messages-single", vec![paris()]),
        ("d3-messages-parallel", vec![paris(), account()]),
        ("d4-messages-followup", vec![paris()]),
    ];
    for (case, expected) in plain {
        let server = FakeServer::start(vec![body(case)]).await;
        let model = Anthropic::new("qwen", "any-key").base_url(server.url.clone());
        let completion = model.complete(&request(case)).await.expect(case);
        assert_eq!(calls(&completion), expected, "{case}");
        let reply = recorded(&format!("{case}.response.json"));
        let ids: Vec<&str> = reply["content"]
            .as_array()
            .expect("content")
            .iter()
            .filter_map(|block| block["id"].as_str())
            .collect();
        let got: Vec<&str> = completion
            .tool_calls
            .iter()
            .map(|c| c.id.as_str())
            .collect();
        assert_eq!(got, ids, "{case}: the server's ids");
        assert_eq!(completion.finish_reason, FinishReason::ToolCalls);
        // `input_tokens` counts only what the cache did not hold.
        let usage = &reply["usage"];
        let read = usage["cache_read_input_tokens"].as_u64().expect("read");
        let uncached = usage["input_tokens"].as_u64().expect("input");
        assert_eq!(completion.usage.input_tokens, uncached + read, "{case}");
        assert_eq!(completion.usage.cache_read_tokens, read, "{case}");
    }
    let streamed: [(&str, (u64, u64)); 3] = [
        ("d2-messages-single-stream", (266, 29)),
        ("d5-messages-followup-stream", (325, 21)),
        ("e3-messages-followup-toolchoice-none-stream", (325, 21)),
    ];
    for (case, (input, output)) in streamed {
        for piece in [1, 9, 4096] {
            let server = FakeServer::start(vec![stream(case, piece)]).await;
            let model = Anthropic::new("qwen", "any-key")
                .base_url(server.url.clone())
                .streaming(true);
            let completion = model.complete(&request(case)).await.expect(case);
            assert_eq!(
                calls(&completion),
                vec![paris()],
                "{case}, {piece}-byte pieces"
            );
            assert_eq!(completion.finish_reason, FinishReason::ToolCalls);
            assert_eq!(
                (
                    completion.usage.input_tokens,
                    completion.usage.output_tokens
                ),
                (input, output),
                "{case}: cached and uncached input, and the output count of `message_delta`"
            );
        }
    }
}

/// The weather in a city.
#[tool]
async fn get_weather(_cx: &ToolCx, city: String) -> StepResult<Value> {
    Ok(json!({"city": city, "temp_c": 18, "sky": "light rain"}))
}

/// Look up a customer account by its customer id.
#[tool]
async fn lookup_account(_cx: &ToolCx, customer_id: String) -> StepResult<Value> {
    Ok(json!({"customer_id": customer_id, "plan": "pro"}))
}

#[step]
async fn concierge(cx: &StepCx, question: &str) -> StepResult<String> {
    Ok(cx
        .llm()
        .tool(get_weather::Tool)
        .tool(lookup_account::Tool)
        .text(question)
        .await?)
}

#[chain]
async fn desk(question: String) -> String {
    step!(reply = concierge(question));
    reply
}

/// Everything about a JSON value but its strings and numbers.
fn shape(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, value)| (key.clone(), shape(value)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(shape).collect()),
        // The server took `content` as "", null or absent beside tool calls.
        Value::String(_) | Value::Null => Value::Null,
        other => other.clone(),
    }
}

#[tokio::test]
async fn a_chain_runs_both_recorded_calls_and_sends_results_the_server_accepted() {
    // Turn 1: the server's two parallel calls (streamed); turn 2: its plain
    // streamed text (the model never answered in text after a tool result).
    let server = FakeServer::start(vec![
        stream("b2-chat-parallel-stream", 11),
        stream("e4-chat-plain-stream", 11),
    ])
    .await;
    let model = OpenAiCompatible::new(server.url.clone(), "qwen").streaming(true);
    let rt = Runtime::builder().model(model).build();
    let question = "Get the weather in Paris, and look up the account of customer C-1042.";
    let outcome = desk::execute(
        &rt,
        desk::Input {
            question: question.into(),
        },
    )
    .await;
    assert_eq!(
        outcome.result.expect("answered").reply,
        "Hello! How can I assist you today?"
    );
    let step = outcome.report.step("reply").expect("recorded");
    let mut names: Vec<&str> = step.tool_calls.iter().map(|c| c.tool.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["get_weather", "lookup_account"], "both calls ran");
    // The follow-up has the shape of the one the real server answered
    // (assistant tool calls, then one `tool` message per call, in order).
    let ours = &server.received()[1].body["messages"];
    let theirs = recorded("c3-chat-followup-parallel.request.json");
    let theirs: Vec<&Value> = theirs["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|m| m["role"] != "system")
        .collect();
    let ours: Vec<Value> = ours
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| {
            let mut m = m.clone();
            if m["content"].is_null() {
                m["content"] = Value::String(String::new());
            }
            shape(&m)
        })
        .collect();
    let theirs: Vec<Value> = theirs.into_iter().map(shape).collect();
    assert_eq!(ours, theirs, "our follow-up, shaped like the accepted one");
    // Each result answers its call, in the order the server made them.
    let sent = &server.received()[1].body["messages"];
    for (index, call) in [(0, 2), (1, 3)] {
        assert_eq!(
            sent[call]["tool_call_id"],
            sent[1]["tool_calls"][index]["id"]
        );
    }
    assert!(
        sent[2]["content"]
            .as_str()
            .is_some_and(|c| c.contains("light rain")),
        "{}",
        sent[2]
    );
}
