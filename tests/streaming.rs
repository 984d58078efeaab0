//! Streaming to the caller: with `RuntimeBuilder::stream_tokens(true)`, a
//! run's event stream carries each model reply's text as it arrives
//! (`TokenDelta`, concatenating to the reply) and, for structured replies,
//! the JSON so far (`PartialOutput`, read typed as `Partial<T>`, before the
//! final value); `cx.progress(..)` publishes a step's own progress.

#[allow(dead_code)]
#[path = "support/fake_server.rs"]
mod fake_server;

use fake_server::{FakeServer, Reply};
use prompt_chain::events::{Event, EventKind, Partial};
use prompt_chain::llm::{OpenAiCompatible, ScriptedReply};
use prompt_chain::prelude::*;
use prompt_chain::schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(crate = "prompt_chain::schemars")]
struct Summary {
    title: String,
    points: Vec<String>,
}

#[step]
async fn write(cx: &StepCx, topic: &str) -> StepResult<String> {
    Ok(cx.llm().text(format!("Write about {topic}")).await?)
}

#[step]
async fn summarize(cx: &StepCx, draft: &str) -> StepResult<Summary> {
    for part in 1..=3 {
        cx.progress(format!("reading part {part} of 3"));
    }
    Ok(cx.llm().structured(format!("Summarize: {draft}")).await?)
}

#[chain]
async fn article(topic: String) -> Summary {
    step!(draft = write(topic));
    step!(summary = summarize(draft));
    summary
}

const DRAFT: &str = "Rust chains are checked by the compiler, so a typo in a key is a build error, not a 3 a.m. page.";

fn model() -> ScriptedModel {
    ScriptedModel::new()
        .on_step("write", ScriptedReply::text(DRAFT))
        .on_step(
            "summarize",
            ScriptedReply::text(
                r#"{"title": "Typed chains", "points": ["compile-time wiring", "no string keys", "fewer outages"]}"#,
            ),
        )
}

async fn events_of(rt: &Runtime) -> (Vec<Event>, Summary) {
    let input = article::Input {
        topic: "typed chains".into(),
    };
    let (mut stream, run) = article::execute_with_events(rt, input);
    let outcome = run.await;
    let mut events = Vec::new();
    while let Some(event) = stream.next().await {
        events.push(event);
    }
    (events, outcome.result.expect("completed").summary)
}

fn deltas(events: &[Event], of: &str) -> String {
    events
        .iter()
        .filter_map(|event| match &event.kind {
            EventKind::TokenDelta { step, text, .. } if *step == of => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn token_deltas_concatenate_to_each_reply_and_partials_come_before_the_value() {
    let rt = Runtime::builder()
        .model(model())
        .stream_tokens(true)
        .build();
    let (events, summary) = events_of(&rt).await;
    assert_eq!(deltas(&events, "write"), DRAFT);
    let pieces = events
        .iter()
        .filter(|e| matches!(&e.kind, EventKind::TokenDelta { step: "write", .. }))
        .count();
    assert!(pieces > 5, "the reply came in pieces: {pieces}");

    // Partial outputs, typed, growing, all before the step finished.
    let finished = events
        .iter()
        .position(|e| {
            matches!(
                &e.kind,
                EventKind::StepFinished {
                    step: "summarize",
                    ..
                }
            )
        })
        .expect("the step finished");
    let partials: Vec<(usize, Partial<Summary>)> = events
        .iter()
        .enumerate()
        .filter_map(|(at, event)| Partial::<Summary>::of(event, "summarize").map(|p| (at, p)))
        .collect();
    assert!(partials.len() >= 3, "{}", partials.len());
    assert!(partials.iter().all(|(at, _)| *at < finished));
    let first_title = partials
        .iter()
        .find_map(|(_, p)| p.field("title").and_then(|t| t.as_str()).map(str::to_owned))
        .expect("the title arrives early");
    assert!("Typed chains".starts_with(&first_title), "{first_title}");
    let points: Vec<usize> = partials
        .iter()
        .map(|(_, p)| {
            p.field("points")
                .and_then(|v| v.as_array())
                .map_or(0, Vec::len)
        })
        .collect();
    assert!(points.windows(2).all(|w| w[0] <= w[1]), "{points:?}");
    assert_eq!(partials.first().and_then(|(_, p)| p.complete()), None);
    assert_eq!(
        partials.last().and_then(|(_, p)| p.complete()),
        Some(summary)
    );

    // The step's own progress, in order.
    let progress: Vec<&str> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Progress { message, .. } => Some(message.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        progress,
        [
            "reading part 1 of 3",
            "reading part 2 of 3",
            "reading part 3 of 3"
        ]
    );
}

#[tokio::test]
async fn without_stream_tokens_no_deltas_are_sent() {
    let rt = Runtime::builder().model(model()).build();
    let (events, _) = events_of(&rt).await;
    assert!(!events.iter().any(|e| matches!(
        e.kind,
        EventKind::TokenDelta { .. } | EventKind::PartialOutput { .. }
    )));
    assert!(
        events
            .iter()
            .any(|e| matches!(e.kind, EventKind::Progress { .. }))
    );
}

#[tokio::test]
async fn a_streaming_provider_sends_its_deltas_as_they_arrive() {
    let chunk = |text: &str| {
        format!(
            "data: {}\n\n",
            json!({"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}]})
        )
    };
    let stream = vec![
        chunk("Rust "),
        chunk("chains "),
        chunk("are typed."),
        format!(
            "data: {}\n\n",
            json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 5, "completion_tokens": 4}})
        ),
        "data: [DONE]\n\n".to_owned(),
    ];
    let server = FakeServer::start(vec![Reply::Stream(stream, false)]).await;
    let model = OpenAiCompatible::new(server.url.clone(), "gpt-test").streaming(true);
    let rt = Runtime::builder().model(model).stream_tokens(true).build();
    let (mut events, run) = write_only::execute_with_events(
        &rt,
        write_only::Input {
            topic: "typing".into(),
        },
    );
    let outcome = run.await;
    assert_eq!(
        outcome.result.expect("written").draft,
        "Rust chains are typed."
    );
    let mut pieces = Vec::new();
    while let Some(event) = events.next().await {
        if let EventKind::TokenDelta { text, .. } = event.kind {
            pieces.push(text);
        }
    }
    assert_eq!(pieces, ["Rust ", "chains ", "are typed."]);
}

#[chain]
async fn write_only(topic: String) -> String {
    step!(draft = write(topic));
    draft
}
