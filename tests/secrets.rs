//! API keys never reach logs, errors, events, reports or Debug output: a
//! canary key is sent to a server, and searched for everywhere else. (Its
//! own test binary: it installs a TRACE subscriber.)

#[allow(dead_code)]
#[path = "support/fake_server.rs"]
mod fake_server;

use std::sync::{Arc, Mutex};

use fake_server::{FakeServer, json};
use prompt_chain::llm::{Anthropic, OpenAiCompatible};
use prompt_chain::prelude::*;

const CANARY: &str = "sk-CANARY-7c1e5d90";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[step]
async fn ask(cx: &StepCx, question: &str) -> StepResult<String> {
    Ok(cx.llm().text(question.to_owned()).await?)
}

#[chain]
async fn qa(question: String) -> String {
    step!(answer = ask(question), retry = 1);
    answer
}

#[tokio::test]
async fn the_api_key_never_leaks() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = FakeServer::start(vec![
        json(500, serde_json::json!({"error": "temporarily broken"})),
        json(
            401,
            serde_json::json!({"error": {"message": "Incorrect API key provided"}}),
        ),
    ])
    .await;
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    let rt = Runtime::builder()
        .model(OpenAiCompatible::new(server.url.clone(), "gpt-test").api_key(CANARY))
        .named_model(
            "claude",
            Anthropic::new("claude-test", CANARY).base_url(server.url.clone()),
        )
        .observer(move |event: &prompt_chain::events::Event| {
            sink.lock()
                .expect("lock")
                .push(serde_json::to_string(event).expect("json"));
        })
        .backoff(
            std::time::Duration::from_millis(1),
            std::time::Duration::from_millis(2),
        )
        .build();
    let outcome = qa::execute(
        &rt,
        qa::Input {
            question: "why?".into(),
        },
    )
    .await;
    let error = outcome.result.expect_err("the key is refused");

    // The key was really sent...
    assert_eq!(
        server.received()[0].header("authorization"),
        Some(&*format!("Bearer {CANARY}"))
    );
    // ...and appears nowhere else.
    let logs = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8");
    assert!(
        logs.contains("step failed"),
        "the failure was logged:\n{logs}"
    );
    for (what, text) in [
        ("logs", logs),
        ("error", error.to_string()),
        ("error (Debug)", format!("{error:?}")),
        ("report", outcome.report.to_json()),
        ("events", events.lock().expect("lock").join("\n")),
        ("runtime (Debug)", format!("{rt:?}")),
        (
            "model (Debug)",
            format!(
                "{:?}",
                OpenAiCompatible::new("http://x", "m").api_key(CANARY)
            ),
        ),
        (
            "anthropic (Debug)",
            format!("{:?}", Anthropic::new("m", CANARY)),
        ),
        (
            "key (Debug, Display)",
            format!(
                "{:?} {}",
                prompt_chain::llm::ApiKey::new(CANARY),
                prompt_chain::llm::ApiKey::new(CANARY)
            ),
        ),
    ] {
        assert!(
            !text.contains(CANARY),
            "the key leaked into the {what}:\n{text}"
        );
        assert!(
            !text.contains("7c1e5d90"),
            "part of the key leaked into the {what}"
        );
    }
}
