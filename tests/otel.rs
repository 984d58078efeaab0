//! With feature `otel`, runs export their spans to OpenTelemetry: the run,
//! each step attempt, and each model call with GenAI attributes.
#![cfg(feature = "otel")]

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use prompt_chain::prelude::*;
use tracing_subscriber::layer::SubscriberExt;

#[step]
async fn answer(cx: &StepCx, question: &str) -> StepResult<String> {
    Ok(cx.llm().text(format!("answer: {question}")).await?)
}

#[chain]
async fn qa(question: String) -> String {
    step!(reply = answer(question));
    reply
}

#[tokio::test]
async fn spans_reach_an_opentelemetry_exporter() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry().with(prompt_chain::otel::layer(
        provider.tracer("prompt-chain-test"),
    ));
    let _guard = tracing::subscriber::set_default(subscriber);
    let rt = Runtime::builder()
        .model(ScriptedModel::new().named("gpt-test").otherwise("42"))
        .build();
    let reply = qa::run(
        &rt,
        qa::Input {
            question: "why?".into(),
        },
    )
    .await;
    assert_eq!(reply.expect("runs"), "42");
    provider.force_flush().expect("flush");
    let spans = exporter.get_finished_spans().expect("spans");
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_ref()).collect();
    assert!(names.contains(&"prompt_chain.run"), "{names:?}");
    assert!(names.contains(&"prompt_chain.step"), "{names:?}");
    let chat = spans
        .iter()
        .find(|s| s.name == "chat gpt-test")
        .expect("the model call's span is named after the GenAI operation and model");
    let attribute = |key: &str| {
        chat.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.to_string())
    };
    assert_eq!(attribute("gen_ai.operation.name").as_deref(), Some("chat"));
    assert_eq!(
        attribute("gen_ai.request.model").as_deref(),
        Some("gpt-test")
    );
    assert!(attribute("gen_ai.usage.input_tokens").is_some());
    assert!(attribute("gen_ai.usage.output_tokens").is_some());
    // The model call is a child of the step attempt, which is a child of the run.
    let step = spans
        .iter()
        .find(|s| s.name == "prompt_chain.step")
        .expect("step span");
    let run = spans
        .iter()
        .find(|s| s.name == "prompt_chain.run")
        .expect("run span");
    assert_eq!(chat.parent_span_id, step.span_context.span_id());
    assert_eq!(step.parent_span_id, run.span_context.span_id());
}
