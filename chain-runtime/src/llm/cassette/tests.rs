use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::Cassette;
use crate::llm::{
    ChatRequest, DeltaSink, FinishReason, LanguageModel, LlmError, ScriptedModel, ScriptedReply,
};

/// A fresh cassette path under the system's temporary folder.
fn path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "prompt-chain-cassette-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir.join("nested").join(format!("{name}.jsonl"))
}

fn asked(step: &'static str, prompt: &str) -> ChatRequest {
    let mut request = ChatRequest::user(prompt);
    request.step = Some(step);
    request
}

fn scripted() -> ScriptedModel {
    ScriptedModel::new()
        .named("openai-compatible:smol")
        .on_step("classify", "billing")
        .on_step(
            "flaky",
            ScriptedReply::sequence([
                ScriptedReply::error("503 from upstream", true),
                ScriptedReply::text("second time lucky"),
            ]),
        )
        .otherwise(ScriptedReply::from_fn(|request| {
            format!("echo: {}", request.prompt())
        }))
}

#[tokio::test]
async fn a_recorded_call_replays_its_reply_usage_and_stream_pieces() {
    let file = path("roundtrip");
    let recorder = Cassette::record(&file, scripted()).expect("recording");
    let live = recorder
        .complete(&asked("classify", "My invoice is wrong"))
        .await
        .expect("a reply");
    let mut streamed = asked("summarise", "a long text");
    let pieces = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&pieces);
    streamed.on_delta = Some(DeltaSink::new(move |piece| {
        seen.lock().expect("lock").push(piece.to_owned())
    }));
    let live_stream = recorder.complete(&streamed).await.expect("a reply");
    let live_pieces = pieces.lock().expect("lock").clone();
    assert!(
        live_pieces.len() > 1,
        "the scripted model streams in pieces"
    );

    let replay = Cassette::replay(&file).expect("a cassette");
    assert_eq!(replay.name(), "openai-compatible:smol");
    assert_eq!(replay.len(), 2);
    let again = replay
        .complete(&asked("classify", "My invoice is wrong"))
        .await
        .expect("replayed");
    assert_eq!(again, live);
    assert_eq!(again.finish_reason, FinishReason::Stop);
    pieces.lock().expect("lock").clear();
    let again_stream = replay.complete(&streamed).await.expect("replayed");
    assert_eq!(again_stream, live_stream);
    assert_eq!(*pieces.lock().expect("lock"), live_pieces);
}

#[tokio::test]
async fn a_failure_is_recorded_and_identical_requests_replay_in_order() {
    let file = path("order");
    let recorder = Cassette::record(&file, scripted()).expect("recording");
    let first = recorder.complete(&asked("flaky", "go")).await;
    let second = recorder.complete(&asked("flaky", "go")).await;
    assert!(first.is_err() && second.is_ok());

    let replay = Cassette::replay(&file).expect("a cassette");
    match replay.complete(&asked("flaky", "go")).await {
        Err(LlmError::Recorded { message, retryable }) => {
            assert!(message.contains("503 from upstream"), "{message}");
            assert!(retryable);
        }
        other => panic!("expected the recorded failure, got {other:?}"),
    }
    let text = |r: Result<crate::llm::Completion, LlmError>| r.expect("replayed").text;
    assert_eq!(
        text(replay.complete(&asked("flaky", "go")).await),
        "second time lucky"
    );
    // Past the recordings, the last answer repeats.
    assert_eq!(
        text(replay.complete(&asked("flaky", "go")).await),
        "second time lucky"
    );
}

#[tokio::test]
async fn a_changed_prompt_is_a_miss_naming_the_step_with_the_closest_request_as_a_diff() {
    let file = path("miss");
    let recorder = Cassette::record(&file, scripted()).expect("recording");
    recorder
        .complete(&asked("classify", "My invoice is wrong"))
        .await
        .expect("a reply");
    recorder
        .complete(&asked("reply", "Write a reply"))
        .await
        .expect("a reply");
    let replay = Cassette::replay(&file).expect("a cassette");
    let error = replay
        .complete(&asked("classify", "My invoice is very wrong"))
        .await
        .expect_err("a miss");
    assert!(!error.is_retryable());
    let message = error.to_string();
    assert!(message.contains("for step `classify`"), "{message}");
    assert!(
        message.contains("closest recorded call (step `classify`, line 1)"),
        "{message}"
    );
    assert!(
        message.contains("-      \"content\": \"My invoice is wrong\""),
        "{message}"
    );
    assert!(
        message.contains("+      \"content\": \"My invoice is very wrong\""),
        "{message}"
    );
    assert!(message.contains("PROMPT_CHAIN_RECORD=1"), "{message}");
}

#[tokio::test]
async fn secrets_never_reach_the_cassette() {
    let file = path("secrets");
    let recorder = Cassette::record(&file, scripted())
        .expect("recording")
        .redact("sk-test-0123456789");
    recorder
        .complete(&asked("other", "my key is sk-test-0123456789"))
        .await
        .expect("a reply");
    let text = std::fs::read_to_string(&file).expect("the cassette");
    assert!(!text.contains("sk-test-0123456789"), "{text}");
    assert!(text.contains("my key is ***"), "{text}");
}

#[test]
fn a_broken_cassette_is_refused_with_its_line() {
    let file = path("broken");
    std::fs::create_dir_all(file.parent().expect("a folder")).expect("a folder");
    std::fs::write(&file, "\n{\"v\":1,\"hash\":\"x\"\n").expect("written");
    let message = Cassette::replay(&file).expect_err("refused").to_string();
    assert!(message.contains("line 2 of the cassette"), "{message}");

    std::fs::write(
        &file,
        "{\"v\":9,\"hash\":\"x\",\"model\":\"m\",\"request\":{}}\n",
    )
    .expect("written");
    let message = Cassette::replay(&file).expect_err("refused").to_string();
    assert!(message.contains("format version 9"), "{message}");

    let missing = path("missing");
    let message = Cassette::replay(&missing).expect_err("refused").to_string();
    assert!(
        message.contains("record it first with PROMPT_CHAIN_RECORD=1"),
        "{message}"
    );
}

#[tokio::test]
async fn a_cassette_of_two_models_replays_each_by_name() {
    let file = path("two");
    let fast = Cassette::record(&file, ScriptedModel::new().named("fast").otherwise("quick"))
        .expect("recording");
    fast.complete(&asked("a", "x")).await.expect("a reply");
    let slow = fast.also(ScriptedModel::new().named("slow").otherwise("careful"));
    slow.complete(&asked("b", "y")).await.expect("a reply");

    let message = Cassette::replay(&file).expect_err("ambiguous").to_string();
    assert!(
        message.contains("several models (`fast`, `slow`)"),
        "{message}"
    );
    let slow = Cassette::replay_named(&file, "slow").expect("a model");
    assert_eq!(
        slow.complete(&asked("b", "y"))
            .await
            .expect("replayed")
            .text,
        "careful"
    );
    assert!(Cassette::replay_named(&file, "medium").is_err());
}

#[tokio::test]
async fn a_tool_conversation_replays_turn_by_turn() {
    use crate::llm::{Message, ToolSpec};
    let file = path("tools");
    let model = ScriptedModel::new().on_step(
        "agent",
        ScriptedReply::sequence([
            ScriptedReply::tool_calls([(
                "lookup_account",
                serde_json::json!({"customer": "Dana"}),
            )]),
            ScriptedReply::text("Dana is on the Pro plan."),
        ]),
    );
    let recorder = Cassette::record(&file, model).expect("recording");
    let mut first = asked("agent", "Which plan is Dana on?");
    first.tools = vec![ToolSpec {
        name: "lookup_account".into(),
        description: "A customer's account".into(),
        parameters: serde_json::json!({"type": "object"}),
    }];
    let turn = recorder.complete(&first).await.expect("a tool call");
    assert_eq!(turn.tool_calls.len(), 1);
    let mut second = first.clone();
    second
        .messages
        .push(Message::tool_calls("", turn.tool_calls.clone()));
    second.messages.push(Message::tool_result(
        turn.tool_calls[0].id.clone(),
        r#"{"plan": "pro"}"#,
    ));
    let answer = recorder.complete(&second).await.expect("an answer");

    let replay = Cassette::replay(&file).expect("a cassette");
    assert_eq!(replay.complete(&first).await.expect("replayed"), turn);
    assert_eq!(replay.complete(&second).await.expect("replayed"), answer);
    // A different tool result is a different conversation: a miss.
    let mut other = first.clone();
    other
        .messages
        .push(Message::tool_calls("", turn.tool_calls.clone()));
    other.messages.push(Message::tool_result(
        turn.tool_calls[0].id.clone(),
        r#"{"plan": "free"}"#,
    ));
    let miss = replay
        .complete(&other)
        .await
        .expect_err("a miss")
        .to_string();
    assert!(miss.contains("plan"), "{miss}");
}
