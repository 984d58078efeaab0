//! Durable runs: resume without re-running finished steps, keep route
//! decisions, resume inside sub-chains and loops, refuse a changed chain, and
//! never load a record that does not read back intact.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use prompt_chain::prelude::*;
use prompt_chain::{
    FailureKind, RunId,
    llm::BoxFuture,
    report::{RunStatus, StepStatus},
    store::{
        CheckpointStore, Claim, Lease, MemoryStore, NewRun, RunQuery, RunSummary, Saved, SavedRun,
        SqliteStore, StoreError, StoredStatus,
    },
};
use serde::{Deserialize, Serialize};

/// Counts calls per step, and fails a step on demand.
#[derive(Default)]
struct Probe {
    calls: std::sync::Mutex<Vec<String>>,
    fail_finish: AtomicBool,
    attempts: AtomicU32,
}

impl Probe {
    fn call(&self, cx: &StepCx) {
        self.calls.lock().expect("lock").push(cx.step().to_owned());
    }

    fn count(&self, step: &str) -> usize {
        self.calls
            .lock()
            .expect("lock")
            .iter()
            .filter(|s| *s == step)
            .count()
    }
}

#[step]
async fn fetch(cx: &StepCx, id: &u32) -> StepResult<String> {
    cx.require::<Arc<Probe>>()?.call(cx);
    Ok(format!("doc-{id}"))
}

#[step]
async fn summarize(cx: &StepCx, doc: &str) -> StepResult<String> {
    cx.require::<Arc<Probe>>()?.call(cx);
    Ok(format!("summary of {doc}"))
}

#[step]
async fn keywords(cx: &StepCx, doc: &str) -> StepResult<Vec<String>> {
    cx.require::<Arc<Probe>>()?.call(cx);
    Ok(vec![doc.to_uppercase()])
}

#[step]
async fn finish(cx: &StepCx, summary: &str, words: &[String]) -> StepResult<String> {
    let probe = cx.require::<Arc<Probe>>()?;
    probe.call(cx);
    if probe.fail_finish.load(Ordering::SeqCst) {
        return Err(StepError::msg("the publisher is down").permanent());
    }
    Ok(format!("{summary} [{}]", words.join(",")))
}

#[chain]
async fn pipeline(id: u32) -> String {
    step!(doc = fetch(id));
    step!(summary = summarize(doc));
    step!(words = keywords(doc));
    step!(published = finish(summary, words));
    published
}

fn runtime(store: impl CheckpointStore, probe: &Arc<Probe>) -> Runtime {
    Runtime::builder()
        .checkpoints(store)
        .dependency(Arc::clone(probe))
        .build()
}

#[tokio::test]
async fn a_failed_run_resumes_without_rerunning_finished_steps() {
    let probe = Arc::new(Probe::default());
    probe.fail_finish.store(true, Ordering::SeqCst);
    let rt = runtime(MemoryStore::new(), &probe);
    let failed = pipeline::execute(&rt, pipeline::Input { id: 7 }).await;
    assert!(failed.result.is_err());
    let run_id = failed.report.run_id;
    assert_eq!(probe.count("fetch"), 1);
    assert_eq!(probe.count("finish"), 1);

    probe.fail_finish.store(false, Ordering::SeqCst);
    let resumed = pipeline::resume(&rt, run_id).await;
    let out = resumed.result.expect("the resumed run completes");
    assert_eq!(out.published, "summary of doc-7 [DOC-7]");
    assert_eq!(resumed.report.run_id, run_id, "the same run, resumed");
    // Finished steps were restored, not run again; only the failed one ran.
    assert_eq!(
        (
            probe.count("fetch"),
            probe.count("summarize"),
            probe.count("keywords")
        ),
        (1, 1, 1)
    );
    assert_eq!(probe.count("finish"), 2);
    let status = |name: &str| resumed.report.step(name).map(|s| s.status);
    assert_eq!(status("fetch"), Some(StepStatus::Restored));
    assert_eq!(status("keywords"), Some(StepStatus::Restored));
    assert_eq!(status("finish"), Some(StepStatus::Succeeded));
    assert_eq!(resumed.report.steps_completed, 4);

    // Resuming a completed run restores everything and runs nothing.
    let again = pipeline::resume(&rt, run_id).await;
    assert_eq!(again.result.expect("completed").published, out.published);
    assert_eq!(probe.count("finish"), 2);
}

/// A route's decision is kept: the classifier does not run again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Lane {
    Fast,
    Slow,
}

#[step]
async fn triage(cx: &StepCx, _id: &u32) -> StepResult<Lane> {
    let probe = cx.require::<Arc<Probe>>()?;
    probe.call(cx);
    // A flaky classifier: it would answer differently on a second call.
    Ok(if probe.count("triage") == 1 {
        Lane::Slow
    } else {
        Lane::Fast
    })
}

#[step]
async fn slow_path(cx: &StepCx, id: &u32) -> StepResult<String> {
    let probe = cx.require::<Arc<Probe>>()?;
    probe.call(cx);
    if probe.attempts.fetch_add(1, Ordering::SeqCst) == 0 {
        return Err(StepError::msg("slow path failed once").permanent());
    }
    Ok(format!("slow {id}"))
}

#[step]
async fn fast_path(cx: &StepCx, id: &u32) -> StepResult<String> {
    cx.require::<Arc<Probe>>()?.call(cx);
    Ok(format!("fast {id}"))
}

#[chain]
async fn lanes(id: u32) -> String {
    step!(lane = triage(id));
    route!(lane {
        Lane::Fast => step!(done = fast_path(id)),
        Lane::Slow => step!(done = slow_path(id)),
    });
    done
}

#[tokio::test]
async fn a_resumed_run_keeps_its_route_decision() {
    let probe = Arc::new(Probe::default());
    let rt = runtime(MemoryStore::new(), &probe);
    let failed = lanes::execute(&rt, lanes::Input { id: 1 }).await;
    assert!(failed.result.is_err());
    let resumed = lanes::resume(&rt, failed.report.run_id).await;
    assert_eq!(resumed.result.expect("completes").done, "slow 1");
    assert_eq!(
        probe.count("triage"),
        1,
        "the decision was restored, not re-made"
    );
    assert_eq!(probe.count("fast_path"), 0);
    assert_eq!(resumed.report.route_taken("lane"), Some("Lane::Slow"));
}

/// Sub-chains resume where they stopped.
#[chain]
async fn outer(id: u32) -> String {
    step!(inner = pipeline(id));
    step!(wrapped = wrap(inner));
    wrapped
}

#[step]
async fn wrap(_cx: &StepCx, text: &str) -> StepResult<String> {
    Ok(format!("<{text}>"))
}

#[tokio::test]
async fn resuming_a_parent_resumes_its_sub_chain() {
    let probe = Arc::new(Probe::default());
    probe.fail_finish.store(true, Ordering::SeqCst);
    let rt = runtime(MemoryStore::new(), &probe);
    let failed = outer::execute(&rt, outer::Input { id: 3 }).await;
    let error = failed.result.expect_err("the sub-chain fails");
    assert_eq!(error.path(), ["outer", "pipeline", "finish"]);
    probe.fail_finish.store(false, Ordering::SeqCst);
    let resumed = outer::resume(&rt, failed.report.run_id).await;
    assert_eq!(
        resumed.result.expect("completes").wrapped,
        "<summary of doc-3 [DOC-3]>"
    );
    assert_eq!(
        probe.count("fetch"),
        1,
        "the sub-chain's finished steps were restored"
    );
    assert_eq!(probe.count("finish"), 2);
}

/// Loops continue after their last saved iteration.
#[step]
async fn grow(cx: &StepCx, n: &u64) -> StepResult<u64> {
    let probe = cx.require::<Arc<Probe>>()?;
    probe.call(cx);
    if cx.iteration() == 3 && probe.attempts.fetch_add(1, Ordering::SeqCst) == 0 {
        return Err(StepError::msg("round three failed once").permanent());
    }
    Ok(n * 10)
}

#[chain]
async fn growing(seed: u64) -> Loop<u64> {
    step!(grown = grow(seed), max = 4);
    grown
}

#[tokio::test]
async fn a_resumed_loop_continues_after_its_last_saved_iteration() {
    let probe = Arc::new(Probe::default());
    let rt = runtime(MemoryStore::new(), &probe);
    let failed = growing::execute(&rt, growing::Input { seed: 1 }).await;
    assert!(failed.result.is_err());
    assert_eq!(probe.count("grow"), 3, "rounds 1, 2, and the failed 3");
    let resumed = growing::resume(&rt, failed.report.run_id).await;
    let grown = resumed.result.expect("completes").grown;
    assert_eq!((grown.value, grown.iterations), (10_000, 4));
    assert_eq!(probe.count("grow"), 5, "rounds 3 and 4 only");
}

/// Resuming with a changed chain is refused.
mod v2 {
    use super::*;

    /// `pipeline` with another wiring (no keywords step).
    #[chain]
    pub(crate) async fn pipeline(id: u32) -> String {
        step!(doc = fetch(id));
        step!(summary = summarize(doc));
        summary
    }
}

#[tokio::test]
async fn resuming_with_a_changed_definition_is_a_typed_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("runs.db");
    let probe = Arc::new(Probe::default());
    probe.fail_finish.store(true, Ordering::SeqCst);
    let rt = runtime(SqliteStore::open(&path).expect("open"), &probe);
    let failed = pipeline::execute(&rt, pipeline::Input { id: 1 }).await;
    let run_id = failed.report.run_id;
    assert_ne!(
        pipeline::definition().fingerprint,
        v2::pipeline::definition().fingerprint
    );

    let rt = runtime(SqliteStore::open(&path).expect("reopen"), &probe);
    let outcome = v2::pipeline::resume(&rt, run_id).await;
    let error = outcome.result.expect_err("a changed definition is refused");
    assert!(
        matches!(error.kind(), FailureKind::DefinitionChanged { .. }),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .contains("different definition of chain `pipeline`"),
        "{error}"
    );
    assert_eq!(probe.count("fetch"), 1, "nothing ran");

    // The original definition resumes the same run.
    probe.fail_finish.store(false, Ordering::SeqCst);
    let resumed = pipeline::resume(&rt, run_id).await;
    assert_eq!(
        resumed.result.expect("same definition").published,
        "summary of doc-1 [DOC-1]"
    );
}

#[tokio::test]
async fn resuming_an_unknown_run_or_without_a_store_is_a_typed_error() {
    let probe = Arc::new(Probe::default());
    let rt = runtime(MemoryStore::new(), &probe);
    let outcome = pipeline::resume(&rt, RunId::from_u64(42)).await;
    let error = outcome.result.expect_err("unknown run");
    assert!(error.to_string().contains("has no run"), "{error}");
    assert_eq!(outcome.report.status, RunStatus::Failed);

    let bare = Runtime::default();
    let error = pipeline::resume(&bare, RunId::from_u64(42))
        .await
        .result
        .expect_err("no store");
    assert!(error.to_string().contains("no checkpoint store"), "{error}");
}

/// A store that fails writes: the run stops with a typed error; nothing
/// downstream ever sees an output that was not saved.
struct FailingWrites(MemoryStore);

impl CheckpointStore for FailingWrites {
    fn start_run<'a>(&'a self, run: NewRun<'a>) -> BoxFuture<'a, Result<(), StoreError>> {
        self.0.start_run(run)
    }
    fn claim_run<'a>(
        &'a self,
        run_id: RunId,
        lease: Lease<'a>,
        now: u64,
    ) -> BoxFuture<'a, Result<Claim, StoreError>> {
        self.0.claim_run(run_id, lease, now)
    }
    fn load_run(&self, run_id: RunId) -> BoxFuture<'_, Result<Option<SavedRun>, StoreError>> {
        self.0.load_run(run_id)
    }
    fn list_runs<'a>(
        &'a self,
        query: &'a RunQuery,
    ) -> BoxFuture<'a, Result<Vec<RunSummary>, StoreError>> {
        self.0.list_runs(query)
    }
    fn save_step<'a>(
        &'a self,
        _: RunId,
        _: &'a str,
        _: u32,
        _: &'a [u8],
    ) -> BoxFuture<'a, Result<Saved, StoreError>> {
        Box::pin(async { Err(StoreError::Io("disk full".into())) })
    }
    fn finish_run(
        &self,
        run_id: RunId,
        status: StoredStatus,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        self.0.finish_run(run_id, status)
    }
    fn cache_get<'a>(
        &'a self,
        key: &'a str,
        now: u64,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        self.0.cache_get(key, now)
    }
    fn cache_put<'a>(
        &'a self,
        key: &'a str,
        output: &'a [u8],
        expires: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.0.cache_put(key, output, expires)
    }
}

#[tokio::test]
async fn a_failing_store_stops_the_run_before_anyone_sees_the_output() {
    let probe = Arc::new(Probe::default());
    let rt = runtime(FailingWrites(MemoryStore::new()), &probe);
    let outcome = pipeline::execute(&rt, pipeline::Input { id: 1 }).await;
    let error = outcome.result.expect_err("saving fails");
    assert!(
        matches!(error.kind(), FailureKind::Checkpoint(StoreError::Io(m)) if m == "disk full"),
        "{error}"
    );
    assert_eq!(error.step(), Some("fetch"));
    assert_eq!(probe.count("summarize"), 0, "no step saw an unsaved output");
    assert!(error.completed().get("doc").is_none());
}

#[tokio::test]
async fn a_corrupt_record_is_never_loaded() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("runs.db");
    let probe = Arc::new(Probe::default());
    probe.fail_finish.store(true, Ordering::SeqCst);
    let rt = runtime(SqliteStore::open(&path).expect("open"), &probe);
    let run_id = pipeline::execute(&rt, pipeline::Input { id: 5 })
        .await
        .report
        .run_id;

    // Flip bytes of a saved output behind the store's back (bit rot, a torn
    // page, a hand edit): the checksum no longer matches.
    let db = rusqlite::Connection::open(&path).expect("open the file directly");
    let changed = db
        .execute(
            "UPDATE steps SET output = CAST('\"doc-666\"' AS BLOB) WHERE key = 'doc'",
            [],
        )
        .expect("update");
    assert_eq!(changed, 1);
    drop(db);

    probe.fail_finish.store(false, Ordering::SeqCst);
    let outcome = pipeline::resume(&rt, run_id).await;
    let error = outcome.result.expect_err("the corrupt record is refused");
    assert!(
        matches!(
            error.kind(),
            FailureKind::Checkpoint(StoreError::Corrupt(_))
        ),
        "{error}"
    );
    assert!(error.to_string().contains("step `doc`"), "{error}");
    assert_eq!(
        probe.count("summarize"),
        1,
        "nothing ran on the corrupt value"
    );
}

/// A record that is intact but does not read back as the step's type (the
/// type changed, the fingerprint did not) is refused too.
#[tokio::test]
async fn a_record_of_the_wrong_type_is_refused() {
    let store = MemoryStore::new();
    let id = RunId::from_u64(99);
    let input = serde_json::to_vec(&serde_json::json!({"id": 1})).expect("json");
    store
        .start_run(NewRun {
            run_id: id,
            chain: "pipeline",
            fingerprint: pipeline::definition().fingerprint,
            input: &input,
            parent: None,
            started_unix_ms: 0,
            lease: None,
        })
        .await
        .expect("start");
    store
        .save_step(id, "doc", 0, b"{\"not\": \"a string\"}")
        .await
        .expect("save");
    let probe = Arc::new(Probe::default());
    let rt = runtime(store, &probe);
    let error = pipeline::resume(&rt, id)
        .await
        .result
        .expect_err("wrong type");
    assert!(
        error.to_string().contains("does not read back as its type"),
        "{error}"
    );
    assert_eq!(probe.count("summarize"), 0);
}

/// The step-result cache: same inputs, same model → no second call.
#[step]
async fn expensive(cx: &StepCx, question: &str) -> StepResult<String> {
    Ok(cx.llm().text(format!("answer {question}")).await?)
}

#[chain]
async fn cached(question: String) -> String {
    step!(answer = expensive(question), cache = 1h);
    answer
}

#[tokio::test]
async fn cached_steps_are_not_called_again_for_the_same_inputs() {
    let model = ScriptedModel::new().otherwise("42");
    let rt = Runtime::builder()
        .model(model.clone())
        .checkpoints(MemoryStore::new())
        .build();
    let first = cached::execute(
        &rt,
        cached::Input {
            question: "why?".into(),
        },
    )
    .await;
    assert_eq!(first.result.expect("runs").answer, "42");
    let second = cached::execute(
        &rt,
        cached::Input {
            question: "why?".into(),
        },
    )
    .await;
    assert_eq!(second.result.expect("cached").answer, "42");
    assert_eq!(
        second.report.step("expensive").map(|s| s.status),
        Some(StepStatus::Cached)
    );
    assert_eq!(model.calls().len(), 1);
    let other = cached::execute(
        &rt,
        cached::Input {
            question: "how?".into(),
        },
    )
    .await;
    assert_eq!(
        other.report.step("expensive").map(|s| s.status),
        Some(StepStatus::Succeeded)
    );
    assert_eq!(model.calls().len(), 2);
}

#[tokio::test]
async fn expired_cache_entries_are_not_served() {
    for store in [
        Box::new(MemoryStore::new()) as Box<dyn CheckpointStore>,
        Box::new(
            SqliteStore::open(tempfile::tempdir().expect("dir").keep().join("c.db")).expect("open"),
        ),
    ] {
        store.cache_put("k", b"\"v\"", 1_000).await.expect("put");
        assert_eq!(
            store.cache_get("k", 999).await.expect("get").as_deref(),
            Some(&b"\"v\""[..])
        );
        assert_eq!(store.cache_get("k", 1_000).await.expect("get"), None);
    }
}

#[tokio::test]
async fn steps_get_an_idempotency_key_per_unit() {
    let cx = StepCx::detached(&Runtime::default(), "send_email");
    let key = cx.idempotency_key();
    assert!(key.starts_with(&cx.run_id().to_string()), "{key}");
    assert!(key.ends_with("/send_email/1"), "{key}");
}

/// A database another process holds locked: runs waiting on it wait at the
/// same time (each up to the store's lock timeout), not one after another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_database_fails_waiting_runs_together_not_in_turn() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("runs.db");
    let store = SqliteStore::open(&path)
        .expect("open")
        .lock_timeout(Duration::from_millis(400));
    let locker = rusqlite::Connection::open(&path).expect("a second connection");
    locker.execute_batch("BEGIN EXCLUSIVE;").expect("locks");
    let probe = Arc::new(Probe::default());
    let rt = runtime(store, &probe);
    let started = std::time::Instant::now();
    let runs: Vec<_> = (0..10)
        .map(|id| {
            let rt = rt.clone();
            tokio::spawn(async move { pipeline::execute(&rt, pipeline::Input { id }).await })
        })
        .collect();
    for run in runs {
        let outcome = run.await.expect("joined");
        let error = outcome.result.expect_err("the store stays locked");
        assert!(
            matches!(error.kind(), FailureKind::Checkpoint(StoreError::Busy(_))),
            "{error}"
        );
    }
    // One after another, ten runs would take at least 4 s.
    let waited = started.elapsed();
    assert!(waited < Duration::from_millis(2500), "{waited:?}");
    assert_eq!(
        probe.count("fetch"),
        0,
        "no step ran on a store it could not write"
    );
    locker.execute_batch("ROLLBACK;").expect("unlocks");
}
