//! The crash test for human steps: child processes start runs that suspend
//! on a question, answer them, and resume them, and are killed with SIGKILL
//! at seeded random moments (while a run suspends, while an answer is
//! recorded, while the answered run resumes). Checked: every run completes
//! with the output of the one answer the store recorded (each answer is
//! applied exactly once, whichever process gave it); no step runs again
//! once its output was checkpointed; none runs twice in one process.
//!
//! The child is this test binary itself, running the ignored test
//! `human_child` (it does nothing unless the parent starts it).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use prompt_chain::human::AnswerError;
use prompt_chain::prelude::*;
use prompt_chain::schemars::JsonSchema;
use prompt_chain::{RunId, store::SqliteStore};
use serde::{Deserialize, Serialize};

#[path = "support/call_log.rs"]
mod call_log;
use call_log::{CallLog, exit_or_kill, splitmix};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(crate = "prompt_chain::schemars")]
struct Approval {
    approved: bool,
    note: String,
}

async fn work(cx: &StepCx, millis: u64, value: String) -> StepResult<String> {
    cx.require::<CallLog>()?.record(cx)?;
    tokio::time::sleep(Duration::from_millis(millis)).await;
    Ok(value)
}

#[step]
async fn plan(cx: &StepCx, ticket: &str) -> StepResult<String> {
    work(cx, 15, format!("plan({ticket})")).await
}

#[step]
async fn acknowledge(cx: &StepCx, ticket: &str) -> StepResult<String> {
    work(cx, 25, format!("ack({ticket})")).await
}

#[step]
async fn settle(cx: &StepCx, plan: &str, approval: &Approval, ack: &str) -> StepResult<String> {
    let verdict = if approval.approved { "yes" } else { "no" };
    work(cx, 20, format!("{plan}+{ack}+{verdict}:{}", approval.note)).await
}

#[step]
async fn notify(cx: &StepCx, settled: &str) -> StepResult<String> {
    work(cx, 15, format!("sent({settled})")).await
}

#[chain]
async fn refund(ticket: String) -> String {
    step!(planned = plan(ticket));
    step!(approval: Approval = human(planned), wait = 48h);
    step!(ack = acknowledge(ticket));
    step!(settled = settle(planned, approval, ack));
    step!(sent = notify(settled));
    sent
}

/// The child: start a run, answer one, or resume one; then exit.
#[tokio::test]
#[ignore = "run by `answers_apply_exactly_once_across_kills` as a child process"]
async fn human_child() {
    let (Ok(db), Ok(calls), Ok(process), Ok(mode)) = (
        std::env::var("HUMAN_DB"),
        std::env::var("HUMAN_CALLS"),
        std::env::var("HUMAN_PROCESS"),
        std::env::var("HUMAN_MODE"),
    ) else {
        return;
    };
    let process: u32 = process.parse().expect("process number");
    let rt = Runtime::builder()
        .checkpoints(SqliteStore::open(&db).expect("open the store"))
        .lease(Duration::from_millis(300))
        .dependency(CallLog {
            path: calls.into(),
            process,
        })
        .build();
    let run = || RunId::named(&std::env::var("HUMAN_RUN").expect("run")).expect("run id");
    let outcome = match mode.as_str() {
        "start" => {
            let input = refund::Input {
                ticket: std::env::var("HUMAN_TICKET").expect("ticket"),
            };
            refund::execute_as(&rt, run(), input).await
        }
        "answer" => {
            let approval = Approval {
                approved: process.is_multiple_of(2),
                note: format!("by process {process}"),
            };
            match refund::answer::approval(&rt, run(), approval).await {
                Ok(outcome) => outcome,
                // Answered by an earlier (killed) process: resume instead.
                Err(AnswerError::AlreadyAnswered { .. }) => refund::resume(&rt, run()).await,
                Err(error) => panic!("the answer was refused: {error}"),
            }
        }
        _ => refund::resume(&rt, run()).await,
    };
    match outcome.result {
        Ok(_) => {}
        Err(error) if error.is_suspension() => {}
        Err(error) => panic!("the run failed: {error}"),
    }
}

/// A unit's recorded bytes.
fn recorded(db: &Path, run: &str, key: &str) -> Option<Vec<u8>> {
    let connection = rusqlite::Connection::open(db).ok()?;
    connection
        .query_row(
            "SELECT output FROM steps WHERE run_id = ?1 AND key = ?2 AND iteration = 0",
            [run, key],
            |row| row.get::<_, Vec<u8>>(0),
        )
        .ok()
}

/// The status of a run.
fn status(db: &Path, run: &str) -> Option<String> {
    let connection = rusqlite::Connection::open(db).ok()?;
    connection
        .query_row("SELECT status FROM runs WHERE run_id = ?1", [run], |row| {
            row.get::<_, String>(0)
        })
        .ok()
}

/// Every (run, key) checkpointed.
fn checkpointed(db: &Path) -> BTreeSet<(String, String)> {
    let Ok(connection) = rusqlite::Connection::open(db) else {
        return BTreeSet::new();
    };
    let Ok(mut statement) = connection.prepare("SELECT run_id, key FROM steps WHERE iteration = 0")
    else {
        return BTreeSet::new();
    };
    statement
        .query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })
        .map(|rows| rows.filter_map(Result::ok).collect())
        .unwrap_or_default()
}

#[test]
fn answers_apply_exactly_once_across_kills() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("runs.db");
    let calls = dir.path().join("calls.log");
    let exe = std::env::current_exe().expect("the test binary");
    let mut rng = 0xA5_u64;
    let mut next = |bound: u64| {
        rng = splitmix(rng);
        rng % bound
    };
    let mut process = 0u32;
    let (mut kills, mut answer_kills) = (0u32, 0u32);
    let mut checkpoint_seen_after: BTreeMap<(String, String), u32> = BTreeMap::new();
    let started = Instant::now();
    let mut runs = Vec::new();
    let mut n = 0;
    while (kills < 30 || answer_kills < 8 || runs.len() < 6)
        && started.elapsed() < Duration::from_secs(180)
    {
        n += 1;
        let run = format!("R-{n}");
        // Start until suspended, then answer (or resume) until completed.
        let mut mode = "start";
        loop {
            process += 1;
            let mut child = Command::new(&exe)
                .args([
                    "--ignored",
                    "--exact",
                    "human_child",
                    "--test-threads=1",
                    "--quiet",
                ])
                .env("HUMAN_DB", &db)
                .env("HUMAN_CALLS", &calls)
                .env("HUMAN_PROCESS", process.to_string())
                .env("HUMAN_MODE", mode)
                .env("HUMAN_RUN", &run)
                .env("HUMAN_TICKET", format!("t{n}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn the child");
            match exit_or_kill(&mut child, Duration::from_millis(5 + next(120))) {
                Some(exit) => assert!(exit.success(), "process {process} ({mode}) failed"),
                None => {
                    kills += 1;
                    if mode != "start" {
                        answer_kills += 1;
                    }
                }
            }
            for unit in checkpointed(&db) {
                checkpoint_seen_after.entry(unit).or_insert(process);
            }
            match status(&db, &run).as_deref() {
                Some("completed") => break,
                // Waiting: answer it (an earlier answer may be recorded).
                Some("suspended") => mode = "answer",
                // Killed mid-run: start again attaches to the named run;
                // once answered, resuming finishes it.
                _ if recorded(&db, &run, "approval").is_some() => mode = "resume",
                _ if mode == "start" => {}
                _ => mode = "answer",
            }
        }
        runs.push(run);
    }

    // Every run completed on the answer its store recorded: exactly one.
    for run in &runs {
        let answer: Approval =
            serde_json::from_slice(&recorded(&db, run, "approval").expect("the recorded answer"))
                .expect("an approval");
        let sent: String = serde_json::from_slice(&recorded(&db, run, "sent").expect("the output"))
            .expect("a string");
        let verdict = if answer.approved { "yes" } else { "no" };
        assert!(
            sent.ends_with(&format!("+{verdict}:{})", answer.note)),
            "run {run} ended with {sent}, but its recorded answer is {answer:?}"
        );
    }
    // No step ran again after its checkpoint; none ran twice in one process.
    let log = std::fs::read_to_string(&calls).expect("the call log");
    let mut per_process: BTreeMap<(String, String, u32), u32> = BTreeMap::new();
    for line in log.lines() {
        let mut parts = line.split_whitespace();
        let (Some(run), Some(key), Some(p)) = (
            parts.next().map(str::to_owned),
            parts.next().map(str::to_owned),
            parts.next().and_then(|p| p.parse::<u32>().ok()),
        ) else {
            panic!("malformed log line {line:?}");
        };
        if let Some(&seen_after) = checkpoint_seen_after.get(&(run.clone(), key.clone())) {
            assert!(
                p <= seen_after,
                "step `{key}` of run {run} ran in process {p}, after process {seen_after} saw its checkpoint"
            );
        }
        *per_process.entry((run, key, p)).or_default() += 1;
    }
    assert!(
        per_process.values().all(|&n| n == 1),
        "a step ran twice in one process"
    );
    println!(
        "{kills} kills ({answer_kills} while answering or resuming) over {} runs and {process} processes",
        runs.len()
    );
    assert!(
        answer_kills > 0,
        "no kill landed while an answer was applied"
    );
}
