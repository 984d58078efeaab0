//! Tracing spans for the run, each step attempt and each model call. In its
//! own test binary: `tracing` caches whether a call site is enabled, and a test
//! running without a subscriber on another thread could turn these off.

use std::sync::{Arc, Mutex};

use prompt_chain::llm::ScriptedReply;
use prompt_chain::prelude::*;

#[path = "support/desk.rs"]
mod desk_chain;

use desk_chain::{desk, model};

/// Spans for the run, each step attempt and each model call, with the
/// OpenTelemetry GenAI attribute names.
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

#[tokio::test(start_paused = true)]
async fn tracing_spans_follow_the_genai_conventions() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let rt = Runtime::builder()
        .model(model(ScriptedReply::text("done")))
        .build();
    desk::run(&rt, desk::Input { text: "x".into() })
        .await
        .expect("runs");
    let logs = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8");
    for needle in [
        "prompt_chain.run",
        "prompt_chain.step",
        "step=\"classify\"",
        "gen_ai.operation.name=\"chat\"",
        "gen_ai.request.model=\"scripted\"",
        "gen_ai.usage.input_tokens=",
        "gen_ai.usage.output_tokens=",
        "route taken",
        "run finished",
    ] {
        assert!(logs.contains(needle), "missing {needle} in:\n{logs}");
    }
}
