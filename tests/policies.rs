//! Step policies under paused time: re-ask with the validator's message,
//! fallbacks, budgets, concurrency and rate limits, run deadlines, and a
//! chaos test where every run ends and every token is accounted for.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prompt_chain::llm::ScriptedReply;
use prompt_chain::prelude::*;
use prompt_chain::{
    FailureKind,
    llm::{BoxFuture, ChatRequest, Completion, FinishReason, LlmError, Usage},
    policy::RunBudget,
};
use tokio::time::Instant;

const MS: Duration = Duration::from_millis(1);

/// Re-ask: the validator rejects twice, the step sees why each time.
#[step]
async fn draft(cx: &StepCx, topic: &str) -> StepResult<String> {
    let seen = cx.require::<Arc<Mutex<Vec<Option<String>>>>>()?;
    seen.lock()
        .expect("lock")
        .push(cx.feedback().map(str::to_owned));
    let prompt = match cx.feedback() {
        Some(feedback) => format!("Write about {topic}. Last time: {feedback}"),
        None => format!("Write about {topic}."),
    };
    Ok(cx.llm().text(prompt).await?)
}

fn long_enough(text: &String) -> Result<(), String> {
    if text.len() >= 10 {
        Ok(())
    } else {
        Err(format!(
            "`{text}` is too short; write at least 10 characters"
        ))
    }
}

#[chain]
async fn writer(topic: String) -> String {
    step!(
        text = draft(topic),
        validate = long_enough,
        reask = 2,
        retry = 1
    );
    text
}

#[tokio::test(start_paused = true)]
async fn a_rejected_output_is_reasked_with_the_validators_message() {
    let seen: Arc<Mutex<Vec<Option<String>>>> = Arc::new(Mutex::new(Vec::new()));
    let model = ScriptedModel::new().on_step(
        "draft",
        ScriptedReply::sequence([
            "tiny".into(),
            ScriptedReply::error("overloaded", true),
            "short".into(),
            "long enough now".into(),
        ]),
    );
    let rt = Runtime::builder()
        .model(model.clone())
        .dependency(Arc::clone(&seen))
        .backoff(MS, MS)
        .build();
    let outcome = writer::execute(
        &rt,
        writer::Input {
            topic: "rust".into(),
        },
    )
    .await;
    assert_eq!(
        outcome.result.expect("the third output passes").text,
        "long enough now"
    );
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 4);
    assert_eq!(seen[0], None);
    assert_eq!(
        seen[1].as_deref(),
        Some("`tiny` is too short; write at least 10 characters")
    );
    // A transport retry carries no feedback: transport errors never reach a prompt.
    assert_eq!(seen[2], None);
    assert_eq!(
        seen[3].as_deref(),
        Some("`short` is too short; write at least 10 characters")
    );
    assert!(
        model.calls()[3]
            .prompt()
            .contains("Last time: `short` is too short")
    );
    let record = outcome.report.step("draft").expect("recorded");
    assert_eq!((record.reasks, record.attempts), (2, 4));

    // Out of re-asks: the validation failure stands.
    let rt = Runtime::builder()
        .model(ScriptedModel::new().on_step("draft", "no"))
        .dependency(Arc::new(Mutex::new(Vec::<Option<String>>::new())))
        .build();
    let error = writer::run(&rt, writer::Input { topic: "x".into() })
        .await
        .expect_err("always short");
    assert!(matches!(error.kind(), FailureKind::Validation { .. }));
    assert_eq!(error.attempt(), 3);
}

/// Fallbacks: another model, then a typed default.
#[step]
async fn answer(cx: &StepCx, question: &str) -> StepResult<String> {
    Ok(cx.llm().text(question.to_owned()).await?)
}

fn canned() -> String {
    "Sorry, we cannot answer right now.".to_owned()
}

#[chain]
async fn helpdesk(question: String) -> String {
    step!(
        reply = answer(question),
        retry = 1,
        fallback_model = "backup",
        fallback = canned
    );
    reply
}

#[tokio::test(start_paused = true)]
async fn fallbacks_answer_when_retries_are_spent() {
    let events = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&events);
    let rt = Runtime::builder()
        .model(ScriptedModel::new().otherwise(ScriptedReply::error("quota exhausted", false)))
        .named_model(
            "backup",
            ScriptedModel::new()
                .named("backup")
                .otherwise("from the backup model"),
        )
        .observer(move |event: &prompt_chain::events::Event| {
            if let prompt_chain::events::EventKind::StepFallback { fallback, .. } = &event.kind {
                log.lock().expect("lock").push(fallback.clone());
            }
        })
        .build();
    let outcome = helpdesk::execute(
        &rt,
        helpdesk::Input {
            question: "why?".into(),
        },
    )
    .await;
    assert_eq!(
        outcome.result.expect("the backup answers").reply,
        "from the backup model"
    );
    assert_eq!(
        outcome
            .report
            .step("answer")
            .and_then(|s| s.fallback.clone())
            .as_deref(),
        Some("model:backup")
    );

    let rt = Runtime::builder()
        .model(ScriptedModel::new().otherwise(ScriptedReply::error("down", true)))
        .named_model(
            "backup",
            ScriptedModel::new().otherwise(ScriptedReply::error("down too", true)),
        )
        .backoff(MS, MS)
        .build();
    let outcome = helpdesk::execute(
        &rt,
        helpdesk::Input {
            question: "why?".into(),
        },
    )
    .await;
    assert_eq!(outcome.result.expect("the default answers").reply, canned());
    assert_eq!(
        outcome
            .report
            .step("answer")
            .and_then(|s| s.fallback.clone())
            .as_deref(),
        Some("default")
    );
    assert_eq!(*events.lock().expect("lock"), ["model:backup"]);
}

/// Budgets stop a call before it is made.
#[chain]
async fn two_questions(first: String, second: String) -> String {
    step!(a = answer(first));
    step!(b = answer_after(a, second));
    b
}

#[step]
async fn answer_after(cx: &StepCx, previous: &str, question: &str) -> StepResult<String> {
    Ok(cx.llm().text(format!("{previous} then {question}")).await?)
}

#[tokio::test]
async fn a_spent_budget_stops_the_next_call_before_it_is_made() {
    let model = ScriptedModel::new().otherwise("a long answer that costs many tokens indeed");
    let rt = Runtime::builder()
        .model(model.clone())
        .run_budget(RunBudget {
            max_tokens: Some(10),
            max_cost_usd: None,
        })
        .build();
    let error = two_questions::run(
        &rt,
        two_questions::Input {
            first: "q1".into(),
            second: "q2".into(),
        },
    )
    .await
    .expect_err("the budget is spent after the first call");
    assert_eq!(error.step(), Some("answer_after"));
    let source = std::error::Error::source(&error).and_then(|s| s.downcast_ref::<LlmError>());
    assert!(
        matches!(
            source,
            Some(LlmError::BudgetExceeded { what: "tokens", .. })
        ),
        "{error}"
    );
    assert_eq!(model.calls().len(), 1, "the second call was never made");
    assert!(!error.is_retryable());
}

/// A model that counts how many calls are in flight.
#[derive(Debug, Default)]
struct Gauge {
    now: AtomicUsize,
    peak: AtomicUsize,
}

#[derive(Debug, Clone)]
struct GaugedModel(Arc<Gauge>);

impl prompt_chain::llm::LanguageModel for GaugedModel {
    fn name(&self) -> &str {
        "gauged"
    }
    fn complete<'a>(&'a self, _: &'a ChatRequest) -> BoxFuture<'a, Result<Completion, LlmError>> {
        Box::pin(async move {
            let now = self.0.now.fetch_add(1, Ordering::SeqCst) + 1;
            self.0.peak.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(MS * 100).await;
            self.0.now.fetch_sub(1, Ordering::SeqCst);
            Ok(Completion {
                tool_calls: Vec::new(),
                text: "ok".into(),
                finish_reason: FinishReason::Stop,
                usage: Usage::default(),
            })
        })
    }
}

#[chain]
async fn six_at_once(q: String) -> String {
    step!(a = answer(q));
    step!(b = answer(q));
    step!(c = answer(q));
    step!(d = answer(q));
    step!(e = answer(q));
    step!(f = answer(q));
    step!(all = join6(a, b, c, d, e, f));
    all
}

#[step]
async fn join6(
    _cx: &StepCx,
    a: &str,
    b: &str,
    c: &str,
    d: &str,
    e: &str,
    f: &str,
) -> StepResult<String> {
    Ok([a, b, c, d, e, f].concat())
}

#[tokio::test(start_paused = true)]
async fn a_concurrency_cap_is_shared_by_every_run() {
    let gauge = Arc::new(Gauge::default());
    let rt = Runtime::builder()
        .model(GaugedModel(Arc::clone(&gauge)))
        .max_concurrent_model_calls(2)
        .build();
    let start = Instant::now();
    let (one, two) = tokio::join!(
        six_at_once::execute(&rt, six_at_once::Input { q: "1".into() }),
        six_at_once::execute(&rt, six_at_once::Input { q: "2".into() }),
    );
    assert!(one.result.is_ok() && two.result.is_ok());
    assert_eq!(
        gauge.peak.load(Ordering::SeqCst),
        2,
        "never more than two calls in flight"
    );
    // Twelve 100 ms calls, two at a time.
    assert_eq!(start.elapsed(), MS * 600);
    let waited: Duration = one.report.steps.iter().map(|s| s.limit_wait).sum();
    assert!(waited > Duration::ZERO, "queue time is recorded");
}

#[tokio::test(start_paused = true)]
async fn a_rate_limit_spaces_calls_out() {
    let rt = Runtime::builder()
        .model(ScriptedModel::new().otherwise("ok"))
        .rate_limit(2, Duration::from_secs(1))
        .build();
    let start = Instant::now();
    let outcome = six_at_once::execute(&rt, six_at_once::Input { q: "q".into() }).await;
    assert!(outcome.result.is_ok());
    // Two at once, then one every half second: the sixth starts at 2 s.
    assert_eq!(start.elapsed(), Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn a_run_deadline_stops_the_run_and_cancels_its_steps() {
    let rt = Runtime::builder()
        .model(ScriptedModel::new().otherwise(ScriptedReply::hang()))
        .run_deadline(Duration::from_secs(3))
        .build();
    let start = Instant::now();
    let error = six_at_once::run(&rt, six_at_once::Input { q: "q".into() })
        .await
        .expect_err("hangs");
    assert!(
        matches!(error.kind(), FailureKind::DeadlineExceeded { after } if *after == Duration::from_secs(3))
    );
    assert_eq!(start.elapsed(), Duration::from_secs(3));
}

/// Chaos: seeded faults of every kind; every run ends, typed, and the tokens
/// of every completed call are accounted for exactly.
#[derive(Debug)]
struct ChaosModel {
    seed: AtomicU64,
    tokens: AtomicU64,
}

impl prompt_chain::llm::LanguageModel for ChaosModel {
    fn name(&self) -> &str {
        "chaos"
    }
    fn complete<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<Completion, LlmError>> {
        let mut x = self.seed.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::SeqCst);
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        let roll = (x ^ (x >> 31)) % 100;
        let structured = request.prompt().starts_with("json:");
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(10 + roll)).await;
            let text = match roll {
                0..=9 => {
                    return Err(LlmError::RateLimited {
                        status: 429,
                        retry_after: Some(MS * 200),
                        body: String::new(),
                    });
                }
                10..=17 => {
                    return Err(LlmError::Overloaded {
                        status: 503,
                        body: String::new(),
                    });
                }
                18..=21 => {
                    std::future::pending::<()>().await;
                    unreachable!("a hung call never returns")
                }
                22..=24 => {
                    return Err(LlmError::QuotaExhausted {
                        status: 429,
                        body: String::new(),
                    });
                }
                25..=34 if structured => "not json at all".to_owned(),
                _ if structured => "{\"score\": 7}".to_owned(),
                _ => "fine".to_owned(),
            };
            let usage = Usage::new(5, 3);
            self.tokens.fetch_add(usage.total(), Ordering::SeqCst);
            Ok(Completion {
                tool_calls: Vec::new(),
                text,
                finish_reason: FinishReason::Stop,
                usage,
            })
        })
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Score {
    score: u32,
}

#[step]
async fn score(cx: &StepCx, text: &str) -> StepResult<Score> {
    Ok(cx.llm().json(format!("json: score {text}")).await?)
}

#[chain]
async fn chaotic(q: String) -> Score {
    step!(a = answer(q), retry = 3, timeout = 1s);
    step!(b = answer(q), retry = 3, timeout = 1s);
    step!(_s = score(a), retry = 2, timeout = 1s);
    step!(
        final_score = score(b),
        retry = 2,
        timeout = 1s,
        fallback = zero
    );
    final_score
}

fn zero() -> Score {
    Score { score: 0 }
}

#[tokio::test(start_paused = true)]
async fn chaos_every_run_ends_typed_and_every_token_is_counted() {
    let model = Arc::new(ChaosModel {
        seed: AtomicU64::new(42),
        tokens: AtomicU64::new(0),
    });
    let rt = Runtime::builder()
        .shared_model(model.clone())
        .backoff(MS * 50, Duration::from_secs(1))
        .reask_budget(1)
        .build();
    let runs: Vec<_> = (0..300)
        .map(|i| {
            let rt = rt.clone();
            tokio::spawn(async move {
                let run = chaotic::execute(&rt, chaotic::Input { q: format!("q{i}") });
                tokio::time::timeout(Duration::from_secs(600), run).await
            })
        })
        .collect();
    let (mut completed, mut failed, mut tokens) = (0, 0, 0);
    let mut kinds = std::collections::BTreeMap::new();
    for run in runs {
        let outcome = run.await.expect("no panic").expect("no run hangs");
        tokens += outcome.report.usage.total();
        match outcome.result {
            Ok(_) => completed += 1,
            Err(error) => {
                failed += 1;
                let kind = match error.kind() {
                    FailureKind::Failed { source, .. } => match source.downcast_ref::<LlmError>() {
                        Some(LlmError::QuotaExhausted { .. }) => "quota",
                        Some(LlmError::RateLimited { .. }) => "rate limited",
                        Some(LlmError::Overloaded { .. }) => "overloaded",
                        Some(LlmError::Parse { .. }) => "parse",
                        _ => "other step error",
                    },
                    FailureKind::TimedOut { .. } => "timeout",
                    other => panic!("an unexpected failure: {other}"),
                };
                *kinds.entry(kind).or_insert(0) += 1;
            }
        }
    }
    assert_eq!(completed + failed, 300);
    assert!(
        completed > 100 && failed > 10,
        "{completed} completed, {failed} failed: {kinds:?}"
    );
    assert_eq!(
        tokens,
        model.tokens.load(Ordering::SeqCst),
        "every completed call's tokens are in a report"
    );
}

/// A step deadline bounds all attempts and backoff together.
#[chain]
async fn patient(q: String) -> String {
    step!(reply = answer(q), retry = 10, timeout = 2s, deadline = 5s);
    reply
}

#[tokio::test(start_paused = true)]
async fn a_step_deadline_bounds_all_attempts() {
    let rt = Runtime::builder()
        .model(ScriptedModel::new().otherwise(ScriptedReply::hang()))
        .backoff(MS, MS)
        .build();
    let start = Instant::now();
    let error = patient::run(&rt, patient::Input { q: "q".into() })
        .await
        .expect_err("hangs");
    assert!(
        matches!(error.kind(), FailureKind::StepDeadline { after } if *after == Duration::from_secs(5)),
        "{error}"
    );
    assert_eq!(start.elapsed(), Duration::from_secs(5));
}

/// A custom retry policy decides delays (here: a fixed delay, two retries at most).
#[derive(Debug)]
struct Fixed(Duration);

impl prompt_chain::policy::RetryPolicy for Fixed {
    fn delay(&self, retry: &prompt_chain::policy::RetryContext<'_>) -> Option<Duration> {
        (retry.attempt <= 2).then_some(self.0)
    }
}

#[tokio::test(start_paused = true)]
async fn a_custom_retry_policy_decides_the_delays() {
    let model = ScriptedModel::new().otherwise(ScriptedReply::error("flaky", true));
    let rt = Runtime::builder()
        .model(model.clone())
        .default_retries(10)
        .retry_policy(Fixed(Duration::from_secs(3)))
        .build();
    let start = Instant::now();
    let error = helpdesk_plain::run(
        &rt,
        helpdesk_plain::Input {
            question: "q".into(),
        },
    )
    .await
    .expect_err("always flaky");
    assert_eq!(error.attempt(), 3, "the policy stopped after two retries");
    assert_eq!(start.elapsed(), Duration::from_secs(6));
    assert_eq!(model.calls().len(), 3);
}

#[chain]
async fn helpdesk_plain(question: String) -> String {
    step!(reply = answer(question));
    reply
}

#[tokio::test]
async fn a_cost_budget_stops_the_next_call_too() {
    let model = ScriptedModel::new()
        .named("priced")
        .otherwise("an answer of some length");
    let rt = Runtime::builder()
        .model(model.clone())
        .prices(prompt_chain::llm::PriceTable::new().model("priced", 1_000.0, 1_000.0))
        .run_budget(RunBudget {
            max_tokens: None,
            max_cost_usd: Some(0.001),
        })
        .build();
    let error = two_questions::run(
        &rt,
        two_questions::Input {
            first: "q1".into(),
            second: "q2".into(),
        },
    )
    .await
    .expect_err("the first call costs more than the budget");
    let source = std::error::Error::source(&error).and_then(|s| s.downcast_ref::<LlmError>());
    assert!(
        matches!(
            source,
            Some(LlmError::BudgetExceeded {
                what: "US dollars",
                ..
            })
        ),
        "{error}"
    );
    assert_eq!(model.calls().len(), 1);
}
