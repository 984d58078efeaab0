//! Tool calls over the providers' wire formats, against in-process HTTP
//! servers sending the payload shapes the APIs document (OpenAI
//! `tool_calls`, plain and as streamed deltas; Anthropic `tool_use` blocks,
//! plain and as `input_json_delta`s), and a whole chain whose step runs the
//! model/tool loop over each provider. What a real server sent is replayed in
//! `recorded_tools.rs`, and a real model calls tools in `real_tools.rs`.

#[allow(dead_code)]
#[path = "support/fake_server.rs"]
mod fake_server;

use fake_server::{FakeServer, Reply, json};
use prompt_chain::llm::{
    Anthropic, ChatRequest, FinishReason, LanguageModel, OpenAiCompatible, PriceTable, ToolCall,
    ToolSpec,
};
use prompt_chain::prelude::*;
use serde_json::json as j;

/// Looks a customer up by id.
#[tool]
async fn lookup_account(_cx: &ToolCx, customer: String) -> StepResult<String> {
    Ok(format!("{customer}: plan pro"))
}

#[step]
async fn answer(cx: &StepCx, question: &str) -> StepResult<String> {
    Ok(cx.llm().tool(lookup_account::Tool).text(question).await?)
}

#[chain]
async fn desk(question: String) -> String {
    step!(reply = answer(question));
    reply
}

fn with_tool() -> ChatRequest {
    let mut request = ChatRequest::user("Which plan is C-7 on?");
    request.tools = vec![ToolSpec {
        name: "lookup_account".into(),
        description: "Looks a customer up by id.".into(),
        parameters: j!({"type": "object", "properties": {"customer": {"type": "string"}}, "required": ["customer"]}),
    }];
    request
}

fn call(id: &str, name: &str, arguments: &str) -> ToolCall {
    ToolCall {
        id: id.into(),
        name: name.into(),
        arguments: arguments.into(),
    }
}

fn openai_tool_reply() -> Reply {
    json(
        200,
        j!({
            "id": "chatcmpl-abc", "object": "chat.completion", "model": "gpt-test",
            "choices": [{
                "index": 0,
                "message": {
                    "role": "assistant", "content": null, "refusal": null,
                    "tool_calls": [{"id": "call_abc123", "type": "function",
                        "function": {"name": "lookup_account", "arguments": "{\"customer\":\"C-7\"}"}}]
                },
                "logprobs": null, "finish_reason": "tool_calls"
            }],
            "usage": {"prompt_tokens": 82, "completion_tokens": 17, "total_tokens": 99}
        }),
    )
}

fn openai_text_reply(text: &str) -> Reply {
    json(
        200,
        j!({
            "id": "chatcmpl-def",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 120, "completion_tokens": 6, "total_tokens": 126}
        }),
    )
}

fn sse(chunks: &[serde_json::Value]) -> Vec<String> {
    let mut events: Vec<String> = chunks.iter().map(|c| format!("data: {c}\n\n")).collect();
    events.push("data: [DONE]\n\n".to_owned());
    events
}

#[tokio::test]
async fn openai_sends_tools_and_reads_tool_calls_plain_and_streamed() {
    let streamed = sse(&[
        j!({"choices": [{"index": 0, "delta": {"role": "assistant", "content": null, "tool_calls": [
            {"index": 0, "id": "call_a", "type": "function", "function": {"name": "lookup_account", "arguments": ""}}]}, "finish_reason": null}]}),
        j!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{\"custo"}}]}, "finish_reason": null}]}),
        j!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "mer\":\"C-7\"}"}}]}, "finish_reason": null}]}),
        j!({"choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 1, "id": "call_b", "type": "function", "function": {"name": "lookup_account", "arguments": ""}}]}, "finish_reason": null}]}),
        j!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 1, "function": {"arguments": "{\"customer\":\"C-8\"}"}}]}, "finish_reason": null}]}),
        j!({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}),
        j!({"choices": [], "usage": {"prompt_tokens": 82, "completion_tokens": 30}}),
    ]);
    let server = FakeServer::start(vec![openai_tool_reply(), Reply::Stream(streamed, false)]).await;
    let plain = OpenAiCompatible::new(server.url.clone(), "gpt-test");
    let completion = plain.complete(&with_tool()).await.expect("a tool call");
    assert_eq!(completion.finish_reason, FinishReason::ToolCalls);
    assert_eq!(completion.text, "");
    assert_eq!(
        completion.tool_calls,
        [call(
            "call_abc123",
            "lookup_account",
            r#"{"customer":"C-7"}"#
        )]
    );
    let sent = &server.received()[0].body;
    assert_eq!(
        sent["tools"],
        j!([{"type": "function", "function": {
            "name": "lookup_account",
            "description": "Looks a customer up by id.",
            "parameters": {"type": "object", "properties": {"customer": {"type": "string"}}, "required": ["customer"]}
        }}])
    );

    let streaming = OpenAiCompatible::new(server.url.clone(), "gpt-test").streaming(true);
    let completion = streaming
        .complete(&with_tool())
        .await
        .expect("streamed calls");
    assert_eq!(completion.finish_reason, FinishReason::ToolCalls);
    assert_eq!(
        completion.tool_calls,
        [
            call("call_a", "lookup_account", r#"{"customer":"C-7"}"#),
            call("call_b", "lookup_account", r#"{"customer":"C-8"}"#)
        ]
    );
    assert_eq!(completion.usage.output_tokens, 30);
}

#[tokio::test]
async fn a_chain_runs_the_tool_loop_over_openai_and_sends_the_results_back() {
    let server = FakeServer::start(vec![
        openai_tool_reply(),
        openai_text_reply("C-7 is on the pro plan."),
    ])
    .await;
    let model = OpenAiCompatible::new(server.url.clone(), "gpt-test");
    // $1 per million tokens in and out: the tool-calling turn cost 99 µ$.
    let prices = PriceTable::new().model("gpt-test", 1.0, 1.0);
    let rt = Runtime::builder().model(model).prices(prices).build();
    let input = desk::Input {
        question: "Which plan is C-7 on?".into(),
    };
    let outcome = desk::execute(&rt, input).await;
    assert_eq!(
        outcome.result.expect("answered").reply,
        "C-7 is on the pro plan."
    );
    let step = outcome.report.step("reply").expect("recorded");
    assert_eq!(step.tool_calls.len(), 1);
    let call = &step.tool_calls[0];
    assert_eq!(
        (call.turn_usage.input_tokens, call.turn_usage.output_tokens),
        (82, 17)
    );
    let cost = call.turn_cost_usd.expect("priced");
    assert!((cost - 99e-6).abs() < 1e-9, "{cost}");
    assert_eq!(
        (step.usage.input_tokens, step.usage.output_tokens),
        (202, 23),
        "both turns are counted"
    );
    let second = &server.received()[1].body;
    assert_eq!(
        second["messages"],
        j!([
            {"role": "user", "content": "Which plan is C-7 on?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_abc123", "type": "function",
                "function": {"name": "lookup_account", "arguments": "{\"customer\":\"C-7\"}"}}]},
            {"role": "tool", "tool_call_id": "call_abc123", "content": "\"C-7: plan pro\""}
        ])
    );
    assert_eq!(second["tools"][0]["function"]["name"], "lookup_account");
}

fn anthropic_tool_reply() -> Reply {
    json(
        200,
        j!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-test",
            "content": [
                {"type": "text", "text": "Let me look that up."},
                {"type": "tool_use", "id": "toolu_01", "name": "lookup_account", "input": {"customer": "C-7"}}
            ],
            "stop_reason": "tool_use", "stop_sequence": null,
            "usage": {"input_tokens": 50, "output_tokens": 20}
        }),
    )
}

fn anthropic_text_reply(text: &str) -> Reply {
    json(
        200,
        j!({
            "id": "msg_2", "type": "message", "role": "assistant",
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 90, "output_tokens": 8}
        }),
    )
}

fn event(name: &str, data: serde_json::Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

#[tokio::test]
async fn anthropic_sends_tools_and_reads_tool_use_plain_and_streamed() {
    let streamed = vec![
        event(
            "message_start",
            j!({"type": "message_start", "message": {"usage": {"input_tokens": 50, "output_tokens": 1}}}),
        ),
        event(
            "content_block_start",
            j!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        event(
            "content_block_delta",
            j!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Let me look."}}),
        ),
        event(
            "content_block_stop",
            j!({"type": "content_block_stop", "index": 0}),
        ),
        event(
            "content_block_start",
            j!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_01", "name": "lookup_account", "input": {}}}),
        ),
        event(
            "content_block_delta",
            j!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": ""}}),
        ),
        event(
            "content_block_delta",
            j!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"customer\": \"C"}}),
        ),
        event(
            "content_block_delta",
            j!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "-7\"}"}}),
        ),
        event(
            "content_block_stop",
            j!({"type": "content_block_stop", "index": 1}),
        ),
        event(
            "message_delta",
            j!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null}, "usage": {"output_tokens": 30}}),
        ),
        event("message_stop", j!({"type": "message_stop"})),
    ];
    let server =
        FakeServer::start(vec![anthropic_tool_reply(), Reply::Stream(streamed, false)]).await;
    let plain = Anthropic::new("claude-test", "sk-ant-test").base_url(server.url.clone());
    let completion = plain.complete(&with_tool()).await.expect("a tool call");
    assert_eq!(completion.finish_reason, FinishReason::ToolCalls);
    assert_eq!(completion.text, "Let me look that up.");
    assert_eq!(
        completion.tool_calls,
        [call("toolu_01", "lookup_account", r#"{"customer":"C-7"}"#)]
    );
    assert_eq!(
        server.received()[0].body["tools"],
        j!([{"name": "lookup_account", "description": "Looks a customer up by id.",
            "input_schema": {"type": "object", "properties": {"customer": {"type": "string"}}, "required": ["customer"]}}])
    );

    let streaming = Anthropic::new("claude-test", "sk-ant-test")
        .base_url(server.url.clone())
        .streaming(true);
    let completion = streaming.complete(&with_tool()).await.expect("streamed");
    assert_eq!(completion.finish_reason, FinishReason::ToolCalls);
    assert_eq!(completion.text, "Let me look.");
    assert_eq!(
        completion.tool_calls,
        [call("toolu_01", "lookup_account", r#"{"customer": "C-7"}"#)]
    );
}

#[tokio::test]
async fn a_chain_runs_the_tool_loop_over_anthropic_with_results_in_one_user_turn() {
    let server =
        FakeServer::start(vec![anthropic_tool_reply(), anthropic_text_reply("Pro.")]).await;
    let model = Anthropic::new("claude-test", "sk-ant-test").base_url(server.url.clone());
    let rt = Runtime::builder().model(model).build();
    let input = desk::Input {
        question: "Which plan is C-7 on?".into(),
    };
    let outcome = desk::execute(&rt, input).await;
    assert_eq!(outcome.result.expect("answered").reply, "Pro.");
    let second = &server.received()[1].body;
    assert_eq!(
        second["messages"],
        j!([
            {"role": "user", "content": "Which plan is C-7 on?"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Let me look that up."},
                {"type": "tool_use", "id": "toolu_01", "name": "lookup_account", "input": {"customer": "C-7"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01", "content": "\"C-7: plan pro\"", "is_error": false}
            ]}
        ])
    );
}
