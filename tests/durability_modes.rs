//! Durability modes: `sync` writes each output before the next step reads
//! it, `batched` within its delay, `exit` when the run ends (completes,
//! fails, suspends or is cancelled). Each mode gives the same answers; a
//! failed deferred write fails the run with a typed error; a per-run mode
//! reaches its sub-chains. (The crash test runs in every mode: tests/crash.rs.)

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use prompt_chain::prelude::*;
use prompt_chain::{
    FailureKind, RunId,
    llm::BoxFuture,
    store::{
        CheckpointStore, Claim, Durability, Lease, MemoryStore, NewRun, RunQuery, RunSummary,
        Saved, SavedRun, StoreError, StoredStatus,
    },
};

/// How many units run `run_id` has in the store right now.
async fn saved_units(cx: &StepCx) -> StepResult<usize> {
    let store = cx
        .runtime()
        .store()
        .ok_or_else(|| StepError::msg("no store"))?;
    let run = store.load_run(cx.run_id()).await?;
    Ok(run.map_or(0, |run| run.steps.len()))
}

#[step]
async fn first(_cx: &StepCx, n: &u32) -> StepResult<u32> {
    Ok(n + 1)
}

/// Reports how many of its run's units were in the store when it started,
/// and (after `pause`) when it ended.
#[step]
async fn second(cx: &StepCx, a: &u32, pause_ms: &u64) -> StepResult<(u32, usize, usize)> {
    let at_start = saved_units(cx).await?;
    tokio::time::sleep(Duration::from_millis(*pause_ms)).await;
    let at_end = saved_units(cx).await?;
    Ok((a * 10, at_start, at_end))
}

#[step]
async fn third(cx: &StepCx, b: &(u32, usize, usize)) -> StepResult<u32> {
    if cx
        .dep::<Arc<AtomicBool>>()
        .is_some_and(|fail| fail.load(Ordering::SeqCst))
    {
        return Err(StepError::msg("asked to fail"));
    }
    Ok(b.0 + 1)
}

#[chain]
async fn probe(n: u32, pause_ms: u64) -> u32 {
    step!(a = first(n));
    step!(b = second(a, pause_ms));
    step!(c = third(b));
    c
}

fn runtime(store: impl CheckpointStore, mode: Durability) -> Runtime {
    Runtime::builder()
        .checkpoints(store)
        .durability(mode)
        .build()
}

async fn stored(rt: &Runtime, run_id: RunId) -> SavedRun {
    rt.store()
        .expect("a store")
        .load_run(run_id)
        .await
        .expect("readable")
        .expect("recorded")
}

#[tokio::test(start_paused = true)]
async fn each_mode_writes_when_it_says_and_answers_the_same() {
    let input = || probe::Input { n: 1, pause_ms: 50 };
    let mut answers = Vec::new();
    for (mode, seen_at_start, seen_at_end) in [
        (Durability::Sync, 1, 1),
        (Durability::batched(Duration::from_millis(10)), 0, 1),
        (Durability::Exit, 0, 0),
    ] {
        let rt = runtime(MemoryStore::new(), mode);
        let outcome = probe::execute(&rt, input()).await;
        let output = outcome.result.expect("completes");
        let (c, a, (_, at_start, at_end)) = (output.c, output.a, output.b);
        assert_eq!(
            (at_start, at_end),
            (seen_at_start, seen_at_end),
            "{mode:?}: units of the run in the store when `second` started and ended"
        );
        answers.push((c, a));
        let run = stored(&rt, outcome.report.run_id).await;
        assert_eq!(run.status, StoredStatus::Completed, "{mode:?}");
        assert_eq!(
            run.steps.len(),
            3,
            "{mode:?}: every unit written by the end"
        );
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
}

#[tokio::test]
async fn exit_mode_writes_a_failed_run_so_resume_skips_what_finished() {
    let fail = Arc::new(AtomicBool::new(true));
    let rt = Runtime::builder()
        .checkpoints(MemoryStore::new())
        .durability(Durability::Exit)
        .dependency(Arc::clone(&fail))
        .build();
    let outcome = probe::execute(&rt, probe::Input { n: 1, pause_ms: 0 }).await;
    let error = outcome.result.expect_err("`third` fails");
    assert_eq!(error.step(), Some("third"));
    let run_id = outcome.report.run_id;
    let run = stored(&rt, run_id).await;
    assert_eq!(run.status, StoredStatus::Failed);
    assert_eq!(
        run.steps.len(),
        2,
        "`a` and `b` written when the run failed"
    );

    fail.store(false, Ordering::SeqCst);
    let resumed = probe::resume(&rt, run_id).await;
    let (_, at_start, _) = resumed.result.expect("completes").b;
    assert_eq!(
        at_start, 0,
        "`second`'s output was restored, not recomputed"
    );
    assert_eq!(
        resumed.report.steps_run(),
        ["third"],
        "only `third` ran again"
    );
    // Each start's outcome is kept beside the run: the failure, then the end.
    let outcomes: Vec<prompt_chain::report::RunOutcome> = rt
        .store()
        .expect("store")
        .outcomes(run_id)
        .await
        .expect("readable")
        .iter()
        .map(|bytes| serde_json::from_slice(bytes).expect("an outcome"))
        .collect();
    assert_eq!(outcomes.len(), 2);
    assert_eq!(outcomes[0].status, "failed");
    assert!(
        outcomes[0]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("asked to fail")),
        "{:?}",
        outcomes[0].error
    );
    assert_eq!(outcomes[1].status, "completed");
    assert_eq!(outcomes[1].steps.len(), 3);
    assert_eq!(outcomes[1].steps[0].status, "restored");
    assert_eq!(outcomes[1].steps[2].status, "succeeded");
}

#[tokio::test(start_paused = true)]
async fn a_dropped_run_in_exit_mode_writes_what_it_finished() {
    let rt = runtime(MemoryStore::new(), Durability::Exit);
    let run_id = RunId::new();
    let run = probe::execute_as(
        &rt,
        run_id,
        probe::Input {
            n: 1,
            pause_ms: 60_000,
        },
    );
    let dropped = tokio::time::timeout(Duration::from_millis(10), run).await;
    assert!(dropped.is_err(), "the run was still in `second`");
    tokio::task::yield_now().await;
    let run = stored(&rt, run_id).await;
    assert_eq!(run.status, StoredStatus::Cancelled);
    assert_eq!(
        run.steps.len(),
        1,
        "`a` was written when the run was dropped"
    );
}

/// A sub-chain reports how many of its own units were in the store before
/// its last step.
#[chain]
async fn inner_probe(n: u32, pause_ms: u64) -> (u32, usize, usize) {
    step!(a = first(n));
    step!(b = second(a, pause_ms));
    b
}

#[step]
async fn call_inner(cx: &StepCx, n: &u32) -> StepResult<usize> {
    let (_, at_start, _) = inner_probe(cx, *n, 0).await?;
    Ok(at_start)
}

#[chain]
async fn outer(n: u32) -> usize {
    step!(seen = call_inner(n));
    seen
}

#[tokio::test(start_paused = true)]
async fn a_per_run_mode_reaches_sub_chains() {
    let rt = runtime(MemoryStore::new(), Durability::Sync);
    let synced = outer::run(&rt, outer::Input { n: 0 }).await;
    assert_eq!(synced.expect("completes"), 1, "sync: `a` saved before `b`");
    let exiting = rt.with_durability(Durability::Exit);
    let deferred = outer::execute(&exiting, outer::Input { n: 0 }).await;
    assert_eq!(
        deferred.result.expect("completes").seen,
        0,
        "exit: the sub-chain's units wait for its end"
    );
    let sub_runs = rt
        .store()
        .expect("store")
        .list_runs(&RunQuery::all().with_sub_runs())
        .await
        .expect("listing");
    assert!(
        sub_runs
            .iter()
            .all(|run| run.status == StoredStatus::Completed && run.units > 0),
        "{sub_runs:?}"
    );
}

/// A store whose writes of outputs fail while `broken` is set.
struct BrokenDisk {
    store: MemoryStore,
    broken: AtomicBool,
}

impl CheckpointStore for BrokenDisk {
    fn start_run<'a>(&'a self, run: NewRun<'a>) -> BoxFuture<'a, Result<(), StoreError>> {
        self.store.start_run(run)
    }
    fn claim_run<'a>(
        &'a self,
        run_id: RunId,
        lease: Lease<'a>,
        now: u64,
    ) -> BoxFuture<'a, Result<Claim, StoreError>> {
        self.store.claim_run(run_id, lease, now)
    }
    fn load_run(&self, run_id: RunId) -> BoxFuture<'_, Result<Option<SavedRun>, StoreError>> {
        self.store.load_run(run_id)
    }
    fn list_runs<'a>(
        &'a self,
        query: &'a RunQuery,
    ) -> BoxFuture<'a, Result<Vec<RunSummary>, StoreError>> {
        self.store.list_runs(query)
    }
    fn save_step<'a>(
        &'a self,
        run_id: RunId,
        key: &'a str,
        iteration: u32,
        output: &'a [u8],
    ) -> BoxFuture<'a, Result<Saved, StoreError>> {
        if self.broken.load(Ordering::SeqCst) {
            return Box::pin(async { Err(StoreError::Io("No space left on device".into())) });
        }
        self.store.save_step(run_id, key, iteration, output)
    }
    fn finish_run(
        &self,
        run_id: RunId,
        status: StoredStatus,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        self.store.finish_run(run_id, status)
    }
    fn cache_get<'a>(
        &'a self,
        key: &'a str,
        now: u64,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        self.store.cache_get(key, now)
    }
    fn cache_put<'a>(
        &'a self,
        key: &'a str,
        output: &'a [u8],
        expires: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.store.cache_put(key, output, expires)
    }
}

fn broken_disk() -> Arc<BrokenDisk> {
    Arc::new(BrokenDisk {
        store: MemoryStore::new(),
        broken: AtomicBool::new(true),
    })
}

fn is_disk_full(kind: &FailureKind) -> bool {
    matches!(kind, FailureKind::Checkpoint(StoreError::Io(m)) if m.contains("No space"))
}

#[tokio::test(start_paused = true)]
async fn a_failed_deferred_write_fails_the_run_instead_of_returning_an_unsaved_answer() {
    for mode in [
        Durability::Exit,
        Durability::batched(Duration::from_millis(10)),
    ] {
        let disk = broken_disk();
        let rt = runtime(Arc::clone(&disk), mode);
        let outcome = probe::execute(&rt, probe::Input { n: 1, pause_ms: 50 }).await;
        let error = outcome
            .result
            .expect_err("the outputs could not be written");
        assert!(is_disk_full(error.root_cause().kind()), "{mode:?}: {error}");
        assert_eq!(
            outcome.report.status,
            prompt_chain::report::RunStatus::Failed,
            "{mode:?}"
        );
        let run = stored(&rt, outcome.report.run_id).await;
        assert_eq!(run.status, StoredStatus::Failed, "{mode:?}");

        // The disk has room again: the run resumes from its input.
        disk.broken.store(false, Ordering::SeqCst);
        let resumed = probe::resume(&rt, outcome.report.run_id).await;
        assert_eq!(resumed.result.expect("completes").c, 21, "{mode:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn batched_mode_fails_the_next_unit_after_a_failed_background_write() {
    let disk = broken_disk();
    let rt = runtime(
        Arc::clone(&disk),
        Durability::batched(Duration::from_millis(10)),
    );
    // `second` pauses 50 ms: the background write of `a` fails meanwhile,
    // and `second`'s own output is refused with that error.
    let outcome = probe::execute(&rt, probe::Input { n: 1, pause_ms: 50 }).await;
    let error = outcome.result.expect_err("the write of `a` failed");
    assert_eq!(error.step(), Some("second"), "{error}");
    assert!(is_disk_full(error.kind()), "{error}");
}
