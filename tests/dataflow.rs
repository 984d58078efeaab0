//! The dataflow runtime's behaviour, under `tokio::time::pause()` so durations
//! are exact and nothing really sleeps.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use prompt_chain::Step;
use prompt_chain::prelude::*;
use prompt_chain::{FailureKind, llm::ScriptedReply, report::StepStatus};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

const MS: Duration = Duration::from_millis(1);

/// A step that asks the model and returns its reply.
#[step]
async fn ask(cx: &StepCx, topic: &str) -> StepResult<String> {
    Ok(cx
        .llm()
        .text(format!("{} about {topic}", cx.step()))
        .await?)
}

#[step]
async fn left(cx: &StepCx, topic: &str) -> StepResult<String> {
    Ok(cx.llm().text(format!("left: {topic}")).await?)
}

#[step]
async fn right(cx: &StepCx, topic: &str) -> StepResult<String> {
    Ok(cx.llm().text(format!("right: {topic}")).await?)
}

#[step]
async fn join(cx: &StepCx, a: &str, b: &str) -> StepResult<String> {
    let reply = cx.llm().text(format!("join: {a} + {b}")).await?;
    Ok(format!("{reply}[{a}|{b}]"))
}

#[chain]
async fn diamond(topic: String) -> String {
    step!(root = ask(topic));
    step!(l = left(root));
    step!(r = right(root));
    step!(both = join(l, r));
    both
}

fn diamond_model(root: u64, l: u64, r: u64, j: u64) -> ScriptedModel {
    ScriptedModel::new()
        .on_step("ask", ScriptedReply::text("ROOT").after(MS * root as u32))
        .on_step("left", ScriptedReply::text("L").after(MS * l as u32))
        .on_step("right", ScriptedReply::text("R").after(MS * r as u32))
        .on_step("join", ScriptedReply::text("J").after(MS * j as u32))
}

#[tokio::test(start_paused = true)]
async fn diamond_wall_time_is_its_critical_path() {
    let rt = Runtime::builder()
        .model(diamond_model(100, 300, 200, 50))
        .build();
    let start = Instant::now();
    let outcome = diamond::execute(
        &rt,
        diamond::Input {
            topic: "rust".into(),
        },
    )
    .await;
    let elapsed = start.elapsed();
    let outputs = outcome.result.expect("diamond runs");
    assert_eq!(outputs.both, "J[L|R]");
    assert_eq!(outputs.root, "ROOT");
    // root 100 → max(left 300, right 200) → join 50 = 450 ms; a sequential run takes 650.
    assert_eq!(elapsed, MS * 450);
    assert_eq!(outcome.report.duration, MS * 450);
    assert_eq!(outcome.report.sequential_time(), MS * 650);
    assert_eq!(outcome.report.overlapping(), vec![("left", "right")]);
}

#[tokio::test(start_paused = true)]
async fn a_step_starts_when_its_last_input_arrives() {
    let rt = Runtime::builder()
        .model(diamond_model(100, 300, 200, 50))
        .build();
    let report = diamond::execute(&rt, diamond::Input { topic: "x".into() })
        .await
        .report;
    let at = |name: &str| {
        let step = report.step(name).expect("step in report");
        (
            step.started_at.expect("started"),
            step.finished_at.expect("finished"),
        )
    };
    assert_eq!(at("ask"), (Duration::ZERO, MS * 100));
    assert_eq!(at("left"), (MS * 100, MS * 400));
    assert_eq!(at("right"), (MS * 100, MS * 300));
    // `join` waits for the later of its inputs, not for a whole "level".
    assert_eq!(at("join"), (MS * 400, MS * 450));
    for step in &report.steps {
        assert_eq!(step.status, StepStatus::Succeeded);
        assert_eq!(step.attempts, 1);
        assert!(step.usage.total() > 0, "tokens are accounted per step");
    }
}

/// A wide fan-out with uneven branches: a level-by-level scheduler would wait
/// for the slowest branch before starting any follow-up; dataflow does not.
#[step]
async fn slow_branch(cx: &StepCx, topic: &str) -> StepResult<String> {
    Ok(cx.llm().text(format!("slow {topic}")).await?)
}

#[step]
async fn fast_branch(cx: &StepCx, topic: &str) -> StepResult<String> {
    Ok(cx.llm().text(format!("fast {topic}")).await?)
}

#[step]
async fn follow_up(cx: &StepCx, fast: &str) -> StepResult<String> {
    Ok(cx.llm().text(format!("follow {fast}")).await?)
}

#[step]
async fn gather(_cx: &StepCx, slow: &str, follow: &str) -> StepResult<String> {
    Ok(format!("{slow}+{follow}"))
}

#[chain]
async fn uneven(topic: String) -> String {
    step!(slow = slow_branch(topic));
    step!(fast = fast_branch(topic));
    step!(followed = follow_up(fast));
    step!(all = gather(slow, followed));
    all
}

#[tokio::test(start_paused = true)]
async fn uneven_branches_do_not_wait_for_a_level() {
    let model = ScriptedModel::new()
        .on_step("slow_branch", ScriptedReply::text("S").after(MS * 500))
        .on_step("fast_branch", ScriptedReply::text("F").after(MS * 100))
        .on_step("follow_up", ScriptedReply::text("U").after(MS * 300));
    let rt = Runtime::builder().model(model).build();
    let start = Instant::now();
    let out = uneven::run(&rt, uneven::Input { topic: "t".into() }).await;
    assert_eq!(out.expect("runs"), "S+U");
    // Critical path: max(500, 100 + 300) = 500; by levels it would be 500 + 300.
    assert_eq!(start.elapsed(), MS * 500);
}

/// Order of dependent steps: each step sees its predecessor's output.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Trace(Vec<String>);

#[step]
async fn first(_cx: &StepCx, seed: &str) -> StepResult<Trace> {
    Ok(Trace(vec![format!("first({seed})")]))
}

#[step]
async fn second(_cx: &StepCx, trace: &Trace) -> StepResult<Trace> {
    let mut trace = trace.clone();
    trace.0.push("second".into());
    Ok(trace)
}

#[step]
async fn third(_cx: &StepCx, trace: Trace) -> StepResult<Trace> {
    let mut trace = trace;
    trace.0.push("third".into());
    Ok(trace)
}

#[chain]
async fn sequence(seed: String) -> Trace {
    // Declared out of order on purpose: the graph, not the text, decides.
    step!(c = third(b));
    step!(a = first(seed));
    step!(b = second(a));
    c
}

#[tokio::test]
async fn dependent_steps_run_in_dependency_order() {
    let rt = Runtime::default();
    let outcome = sequence::execute(&rt, sequence::Input { seed: "s".into() }).await;
    let outputs = outcome.result.expect("runs");
    assert_eq!(outputs.c.0, vec!["first(s)", "second", "third"]);
    assert_eq!(outputs.a.0, vec!["first(s)"]);
    // Indices in the report are declaration order.
    let names: Vec<&str> = outcome.report.steps.iter().map(|s| s.name).collect();
    assert_eq!(names, vec!["third", "first", "second"]);
    let start = |n: &str| outcome.report.step(n).and_then(|s| s.started_at);
    assert!(start("first") <= start("second") && start("second") <= start("third"));
}

/// Validation: a per-step hook and a runtime-wide one.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Changes {
    files: Vec<String>,
}

#[step]
async fn extract(cx: &StepCx, diff: &str) -> StepResult<Changes> {
    Ok(cx.llm().json(format!("list the files in {diff}")).await?)
}

#[step]
async fn summarize(_cx: &StepCx, changes: &Changes) -> StepResult<String> {
    Ok(changes.files.join(", "))
}

fn has_files(changes: &Changes) -> Result<(), String> {
    if changes.files.is_empty() {
        Err("the change touches no file".into())
    } else {
        Ok(())
    }
}

#[chain]
async fn review(diff: String) -> String {
    step!(changes = extract(diff), validate = has_files);
    step!(summary = summarize(changes));
    summary
}

#[tokio::test]
async fn a_rejected_output_stops_the_run_with_a_typed_error() {
    let model = ScriptedModel::new().on_step("extract", "```json\n{\"files\": []}\n```");
    let rt = Runtime::builder().model(model.clone()).build();
    let outcome = review::execute(&rt, review::Input { diff: "d".into() }).await;
    let error = outcome.result.expect_err("validation rejects");
    assert_eq!(error.step(), Some("extract"));
    assert_eq!(error.key(), Some("changes"));
    assert_eq!(error.index(), Some(0));
    assert_eq!(error.attempt(), 1);
    match error.kind() {
        FailureKind::Validation { message } => assert_eq!(message, "the change touches no file"),
        other => panic!("expected a validation failure, got {other:?}"),
    }
    // Nothing downstream ran.
    assert_eq!(model.calls().len(), 1);
    assert_eq!(
        outcome.report.step("summarize").map(|s| s.status),
        Some(StepStatus::Pending)
    );
    assert!(
        error.to_string().contains("the change touches no file"),
        "{error}"
    );
}

#[tokio::test]
async fn runtime_wide_hooks_see_every_output() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let model = ScriptedModel::new().on_step("extract", r#"{"files": ["a.rs", "secret.key"]}"#);
    let rt = Runtime::builder()
        .model(model)
        .validator(move |output: &prompt_chain::policy::StepOutput<'_>| {
            log.lock().expect("lock").push(output.key().to_owned());
            match output.downcast_ref::<Changes>() {
                Some(changes) if changes.files.iter().any(|f| f.ends_with(".key")) => {
                    Err(format!("{} touches a key file", output.step()))
                }
                _ => Ok(()),
            }
        })
        .build();
    let error = review::run(&rt, review::Input { diff: "d".into() })
        .await
        .expect_err("the hook rejects");
    assert!(
        matches!(error.kind(), FailureKind::Validation { message } if message == "extract touches a key file")
    );
    assert_eq!(*seen.lock().expect("lock"), vec!["changes"]);
}

/// A panic in a step becomes an error; the process and the runtime go on.
#[step]
async fn explode(_cx: &StepCx, topic: &str) -> StepResult<String> {
    if topic == "boom" {
        panic!("kaboom: {topic}");
    }
    Ok(topic.to_owned())
}

#[chain]
async fn fragile(topic: String) -> String {
    step!(root = ask(topic));
    step!(exploded = explode(topic));
    step!(both = join(root, exploded));
    both
}

#[tokio::test]
async fn a_panicking_step_becomes_a_chain_error() {
    let rt = Runtime::builder()
        .model(ScriptedModel::new().otherwise("ok"))
        .build();
    let error = fragile::run(
        &rt,
        fragile::Input {
            topic: "boom".into(),
        },
    )
    .await
    .expect_err("the panic is reported");
    assert_eq!(error.step(), Some("explode"));
    assert_eq!(error.index(), Some(1));
    assert!(matches!(error.kind(), FailureKind::Panicked { message } if message == "kaboom: boom"));
    // The same runtime keeps working.
    let fine = fragile::run(
        &rt,
        fragile::Input {
            topic: "fine".into(),
        },
    )
    .await;
    assert_eq!(fine.expect("runs"), "ok[ok|fine]");
}

/// The error carries what was computed before the failure.
#[step]
async fn fail_on(cx: &StepCx, a: &str, b: &str) -> StepResult<String> {
    Err(StepError::msg(format!("{} cannot combine {a} and {b}", cx.step())).permanent())
}

#[chain]
async fn doomed(topic: String) -> String {
    step!(l = left(topic));
    step!(r = right(topic));
    step!(combined = fail_on(l, r));
    step!(never = summarize_text(combined));
    never
}

#[step]
async fn summarize_text(_cx: &StepCx, text: &str) -> StepResult<String> {
    Ok(text.to_owned())
}

#[tokio::test]
async fn the_error_context_holds_every_completed_key() {
    let model = ScriptedModel::new()
        .on_step("left", "L-out")
        .on_step("right", "R-out");
    let rt = Runtime::builder().model(model).default_retries(3).build();
    let error = doomed::run(&rt, doomed::Input { topic: "t".into() })
        .await
        .expect_err("fail_on fails");
    assert_eq!(error.chain(), "doomed");
    assert_eq!(error.step(), Some("fail_on"));
    assert_eq!(error.index(), Some(2));
    // Marked permanent: not retried despite the runtime's default of 3 retries.
    assert_eq!(error.attempt(), 1);
    let completed = error.completed();
    assert_eq!(completed.get("topic"), Some(&serde_json::json!("t")));
    assert_eq!(completed.get("l"), Some(&serde_json::json!("L-out")));
    assert_eq!(completed.get("r"), Some(&serde_json::json!("R-out")));
    assert!(!completed.contains_key("combined"));
    assert!(!completed.contains_key("never"));
    assert_eq!(
        error.to_string(),
        "step `doomed › fail_on` (#2) failed on attempt 1: fail_on cannot combine L-out and R-out"
    );
    assert!(std::error::Error::source(&error).is_some());
}

/// Retries with backoff, then success; and a timeout that ends an attempt.
#[chain]
async fn flaky(topic: String) -> String {
    step!(answer = ask(topic), retry = 2, timeout = 5s);
    answer
}

#[tokio::test(start_paused = true)]
async fn retryable_failures_are_retried_and_hangs_time_out() {
    let model = ScriptedModel::new().on_step(
        "ask",
        ScriptedReply::sequence([
            ScriptedReply::error("overloaded", true),
            ScriptedReply::hang(),
            ScriptedReply::text("finally"),
        ]),
    );
    let rt = Runtime::builder()
        .model(model.clone())
        .backoff(MS * 100, MS * 1000)
        .build();
    let start = Instant::now();
    let outcome = flaky::execute(&rt, flaky::Input { topic: "t".into() }).await;
    assert_eq!(
        outcome.result.expect("third attempt succeeds").answer,
        "finally"
    );
    assert_eq!(model.calls_for("ask"), 3);
    assert_eq!(outcome.report.step("ask").map(|s| s.attempts), Some(3));
    // One 5 s timeout plus two jittered backoffs of at most 100 ms and 200 ms.
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_secs(5) && elapsed <= Duration::from_millis(5300),
        "{elapsed:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn retries_stop_at_the_bound_and_final_errors_are_not_retried() {
    let model = ScriptedModel::new().on_step("ask", ScriptedReply::hang());
    let rt = Runtime::builder()
        .model(model.clone())
        .backoff(MS, MS)
        .build();
    let error = flaky::run(&rt, flaky::Input { topic: "t".into() })
        .await
        .expect_err("always hangs");
    assert_eq!(error.attempt(), 3);
    assert!(
        matches!(error.kind(), FailureKind::TimedOut { after } if *after == Duration::from_secs(5))
    );

    let model = ScriptedModel::new().on_step("ask", ScriptedReply::error("quota exhausted", false));
    let rt = Runtime::builder().model(model.clone()).build();
    let error = flaky::run(&rt, flaky::Input { topic: "t".into() })
        .await
        .expect_err("final error");
    assert_eq!(error.attempt(), 1);
    assert_eq!(model.calls_for("ask"), 1);
}

/// Dropping a run's future cancels its in-flight steps: nothing keeps running.
struct DropFlag(Arc<AtomicUsize>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[derive(Clone, Default)]
struct Probe {
    started: Arc<AtomicUsize>,
    dropped: Arc<AtomicUsize>,
}

#[step]
async fn wait_forever(cx: &StepCx, topic: &str) -> StepResult<String> {
    let probe = cx.require::<Probe>()?;
    probe.started.fetch_add(1, Ordering::SeqCst);
    let _flag = DropFlag(Arc::clone(&probe.dropped));
    std::future::pending::<()>().await;
    Ok(topic.to_owned())
}

#[chain]
async fn stuck(topic: String) -> String {
    step!(a = wait_forever(topic));
    step!(b = wait_forever(topic));
    step!(both = join(a, b));
    both
}

#[tokio::test(start_paused = true)]
async fn dropping_a_run_cancels_its_steps() {
    let probe = Probe::default();
    let rt = Runtime::builder().dependency(probe.clone()).build();
    let run = stuck::run(&rt, stuck::Input { topic: "t".into() });
    let timed = tokio::time::timeout(Duration::from_secs(1), run).await;
    assert!(timed.is_err(), "the run never finishes on its own");
    assert_eq!(
        probe.started.load(Ordering::SeqCst),
        2,
        "both steps were in flight at once"
    );
    assert_eq!(
        probe.dropped.load(Ordering::SeqCst),
        2,
        "both were dropped with the run"
    );
}

#[tokio::test]
async fn a_failing_step_cancels_its_in_flight_siblings() {
    let probe = Probe::default();
    let rt = Runtime::builder()
        .dependency(probe.clone())
        .model(ScriptedModel::new())
        .build();
    // `a` hangs while its sibling `b` fails at once (the model has no script).
    let error = stuck_with_failure::run(&rt, stuck_with_failure::Input { topic: "t".into() })
        .await
        .expect_err("`ask` has no script");
    assert_eq!(error.step(), Some("ask"));
    assert!(
        error.to_string().contains("no reply for step `ask`"),
        "{error}"
    );
    assert_eq!(probe.started.load(Ordering::SeqCst), 1);
    assert_eq!(
        probe.dropped.load(Ordering::SeqCst),
        1,
        "the hanging sibling was cancelled"
    );
}

/// The text timeline of a failed run shows the cancelled sibling as such.
#[tokio::test]
async fn a_failed_runs_timeline_shows_what_was_cancelled_and_what_never_started() {
    let rt = Runtime::builder()
        .dependency(Probe::default())
        .model(ScriptedModel::new())
        .build();
    let outcome =
        stuck_with_failure::execute(&rt, stuck_with_failure::Input { topic: "t".into() }).await;
    assert!(outcome.result.is_err());
    let timeline = outcome.report.timeline(20);
    let line = |step: &str| {
        timeline
            .lines()
            .find(|line| line.starts_with(step))
            .unwrap_or_default()
            .to_owned()
    };
    let cancelled = line("wait_forever");
    assert!(
        cancelled.contains("cancelled when the run stopped") && cancelled.contains('░'),
        "{timeline}"
    );
    assert!(line("join").contains("never started"), "{timeline}");
}

#[chain]
async fn stuck_with_failure(topic: String) -> String {
    step!(a = wait_forever(topic));
    step!(b = ask(topic));
    step!(both = join(a, b));
    both
}

/// A step can be called on its own with a typed input.
#[tokio::test]
async fn a_step_is_callable_alone_with_its_typed_input() {
    let rt = Runtime::builder()
        .model(ScriptedModel::new().on_step("extract", r#"{"files": ["x.rs"]}"#))
        .build();
    let cx = StepCx::detached(&rt, "extract");
    let changes = extract::call(
        &cx,
        extract::Input {
            diff: "+fn x()".into(),
        },
    )
    .await
    .expect("runs");
    assert_eq!(
        changes,
        Changes {
            files: vec!["x.rs".into()]
        }
    );
    let via_trait = <extract::Step as Step>::call(&cx, extract::Input { diff: "d".into() }).await;
    assert!(via_trait.is_ok());
    assert_eq!(<extract::Step as Step>::NAME, "extract");
}

/// A chain is a step of another chain; failures name the path.
#[chain]
async fn outer(topic: String) -> String {
    step!(inner_result = fragile(topic));
    step!(shouted = summarize_text(inner_result));
    shouted
}

#[tokio::test]
async fn a_chain_runs_as_a_step_and_failures_name_the_path() {
    let rt = Runtime::builder()
        .model(ScriptedModel::new().otherwise("ok"))
        .build();
    let out = outer::run(
        &rt,
        outer::Input {
            topic: "fine".into(),
        },
    )
    .await;
    assert_eq!(out.expect("runs"), "ok[ok|fine]");

    let error = outer::run(
        &rt,
        outer::Input {
            topic: "boom".into(),
        },
    )
    .await
    .expect_err("the inner step panics");
    assert_eq!(error.path(), vec!["outer", "fragile", "explode"]);
    assert_eq!(error.step(), Some("fragile"));
    assert_eq!(error.root_cause().step(), Some("explode"));
    assert!(
        error.to_string().starts_with(
            "step `outer › fragile › explode` (#1) failed on attempt 1: the step panicked"
        ),
        "{error}"
    );
}

/// Keys taken by value get a clone; the Output keeps every key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Counter {
    n: u32,
}

#[step]
async fn start_count(_cx: &StepCx) -> StepResult<Counter> {
    Ok(Counter { n: 1 })
}

#[step]
async fn bump(_cx: &StepCx, counter: Counter) -> StepResult<Counter> {
    Ok(Counter { n: counter.n + 1 })
}

#[chain]
async fn counting() -> Counter {
    step!(c0 = start_count());
    step!(c1 = bump(c0));
    step!(c2 = bump(c1));
    c2
}

#[tokio::test]
async fn owned_parameters_receive_clones_and_outputs_keep_every_key() {
    let outcome = counting::execute(&Runtime::default(), counting::Input {}).await;
    let out = outcome.result.expect("runs");
    assert_eq!((out.c0.n, out.c1.n, out.c2.n), (1, 2, 3));
    let json = serde_json::to_value(&out).expect("outputs serialize");
    assert_eq!(
        json,
        serde_json::json!({"c0": {"n": 1}, "c1": {"n": 2}, "c2": {"n": 3}})
    );
    let def = counting::definition();
    assert_eq!(def.steps.len(), 3);
    assert_eq!(def.steps[1].inputs, ["c0"]);
    assert_eq!(def.output, "c2");
}

/// Runs are `Send + 'static` futures: they can be spawned, many at once, on a
/// multi-threaded runtime sharing one `Runtime`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_are_send_and_run_concurrently_on_many_threads() {
    let rt = Runtime::builder().model(diamond_model(0, 0, 0, 0)).build();
    let handles: Vec<_> = (0..200)
        .map(|i| {
            let rt = rt.clone();
            tokio::spawn(async move {
                diamond::run(
                    &rt,
                    diamond::Input {
                        topic: format!("t{i}"),
                    },
                )
                .await
            })
        })
        .collect();
    for handle in handles {
        let out = handle.await.expect("the task does not panic");
        assert_eq!(out.expect("the run completes"), "J[L|R]");
    }
}

fn assert_send<T: Send>(_: &T) {}

#[test]
fn run_futures_and_outcomes_are_send() {
    let rt = Runtime::default();
    let future = diamond::execute(
        &rt,
        diamond::Input {
            topic: String::new(),
        },
    );
    assert_send(&future);
}

/// A permanent failure inside a sub-chain stays permanent for the parent: a
/// `retry` on the sub-chain's step does not run it again.
#[chain]
async fn retried_outer(topic: String) -> String {
    step!(inner = doomed(topic), retry = 3);
    inner
}

#[tokio::test]
async fn permanent_errors_inside_sub_chains_are_not_retried() {
    let model = ScriptedModel::new()
        .on_step("left", "L")
        .on_step("right", "R");
    let rt = Runtime::builder().model(model.clone()).build();
    let error = retried_outer::run(&rt, retried_outer::Input { topic: "t".into() })
        .await
        .expect_err("fail_on is permanent");
    assert_eq!(error.attempt(), 1);
    assert!(!error.is_retryable());
    assert_eq!(model.calls_for("left"), 1, "the sub-chain ran once");
    assert_eq!(error.path(), ["retried_outer", "doomed", "fail_on"]);
}

/// A provider's Retry-After is honoured: no retry before it has passed.
#[step]
async fn limited(cx: &StepCx, topic: &str) -> StepResult<String> {
    if cx.attempt() == 1 {
        return Err(prompt_chain::llm::LlmError::RateLimited {
            status: 429,
            retry_after: Some(Duration::from_secs(2)),
            body: String::new(),
        }
        .into());
    }
    Ok(topic.to_owned())
}

#[chain]
async fn rate_limited(topic: String) -> String {
    step!(out = limited(topic), retry = 1);
    out
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_a_floor_under_the_backoff() {
    let rt = Runtime::builder().backoff(MS, MS * 10).build();
    let outcome = rate_limited::execute(&rt, rate_limited::Input { topic: "t".into() }).await;
    assert_eq!(outcome.result.expect("the retry succeeds").out, "t");
    let log = &outcome
        .report
        .step("limited")
        .expect("recorded")
        .attempt_log;
    assert_eq!(log.len(), 2);
    assert!(
        log[1].started_at - log[0].finished_at >= Duration::from_secs(2),
        "{log:?}"
    );
}
