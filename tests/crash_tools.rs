//! The crash test for tool calls: child processes run a step whose model
//! calls tools over three turns (three calls at once, then two, then the
//! answer), and are killed with SIGKILL at seeded random moments, mostly
//! while tools run; the next process resumes the run. Checked: every run
//! completes with the answer its calls' results make; no tool call runs
//! again once its result was recorded; none runs twice in one process.
//!
//! The child is this test binary itself, running the ignored test
//! `tools_child` (it does nothing unless the parent starts it).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use prompt_chain::llm::{
    ChatRequest, Completion, FinishReason, Role, ScriptedReply, ToolCall, Usage,
};
use prompt_chain::prelude::*;
use prompt_chain::{RunId, store::SqliteStore};

#[allow(dead_code)]
#[path = "support/call_log.rs"]
mod call_log;
use call_log::{exit_or_kill, splitmix};

/// Where each tool call is logged: `run address process`.
#[derive(Debug, Clone)]
struct ToolLog {
    path: PathBuf,
    process: u32,
}

/// Doubles `n`, slowly (20–60 ms), logging the call first.
#[tool]
async fn double(cx: &ToolCx, n: u64) -> StepResult<u64> {
    let log = cx.require::<ToolLog>()?;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log.path)?;
    // The key ends with the call's address within the step.
    writeln!(
        file,
        "{} {} {}",
        cx.run_id(),
        cx.idempotency_key(),
        log.process
    )?;
    drop(file);
    tokio::time::sleep(Duration::from_millis(20 + splitmix(n) % 40)).await;
    Ok(n * 2)
}

#[step]
async fn compute(cx: &StepCx, seed: &u64) -> StepResult<String> {
    Ok(cx
        .llm()
        .tool(double::Tool)
        .text(format!("seed {seed}"))
        .await?)
}

#[chain]
async fn toolish(seed: u64) -> String {
    step!(answer = compute(seed));
    answer
}

/// The results sent back so far.
fn results(request: &ChatRequest) -> Vec<String> {
    request
        .messages
        .iter()
        .filter(|m| m.role == Role::Tool)
        .map(|m| m.content.clone())
        .collect()
}

/// Turn by turn, from what the model was sent (so a resumed run, whose
/// early turns are restored, gets the same replies): three calls, then two
/// more, then the answer listing every result.
fn turn(request: &ChatRequest, _: usize) -> Result<Completion, prompt_chain::llm::LlmError> {
    let seed: u64 = request
        .prompt()
        .trim_start_matches("seed ")
        .parse()
        .unwrap_or(0);
    let done = results(request);
    let calls = |from: u64, n: u64| -> Vec<ToolCall> {
        (0..n)
            .map(|i| ToolCall {
                id: format!("c{}", from + i),
                name: "double".into(),
                arguments: format!("{{\"n\": {}}}", seed * 10 + from + i),
            })
            .collect()
    };
    let (text, tool_calls) = match done.len() {
        0 => (String::new(), calls(0, 3)),
        3 => (String::new(), calls(3, 2)),
        _ => (done.join("+"), Vec::new()),
    };
    Ok(Completion {
        finish_reason: if tool_calls.is_empty() {
            FinishReason::Stop
        } else {
            FinishReason::ToolCalls
        },
        tool_calls,
        text,
        usage: Usage::new(10, 5),
    })
}

/// The child: start or resume one run, then exit.
#[tokio::test]
#[ignore = "run by `tool_calls_run_once_across_kills` as a child process"]
async fn tools_child() {
    let (Ok(db), Ok(log), Ok(process), Ok(run), Ok(seed)) = (
        std::env::var("TOOLS_DB"),
        std::env::var("TOOLS_LOG"),
        std::env::var("TOOLS_PROCESS"),
        std::env::var("TOOLS_RUN"),
        std::env::var("TOOLS_SEED"),
    ) else {
        return;
    };
    let rt = Runtime::builder()
        .model(ScriptedModel::new().on_step("compute", ScriptedReply::from_completion_fn(turn)))
        .checkpoints(SqliteStore::open(&db).expect("open the store"))
        .lease(Duration::from_millis(300))
        .dependency(ToolLog {
            path: log.into(),
            process: process.parse().expect("process number"),
        })
        .build();
    let input = toolish::Input {
        seed: seed.parse().expect("seed"),
    };
    let outcome = toolish::execute_as(&rt, RunId::named(&run).expect("run id"), input).await;
    outcome.result.expect("the run completes");
}

/// Every recorded tool result: (run, address as in the log's key).
fn recorded_calls(db: &Path) -> BTreeSet<(String, String)> {
    let Ok(connection) = rusqlite::Connection::open(db) else {
        return BTreeSet::new();
    };
    let Ok(mut statement) = connection
        .prepare("SELECT run_id, key, iteration FROM steps WHERE key LIKE 'answer~%.%.%'")
    else {
        return BTreeSet::new();
    };
    statement
        .query_map([], |row| {
            let run = row.get::<_, String>(0)?;
            let key = row.get::<_, String>(1)?;
            let iteration = row.get::<_, i64>(2)?;
            // `run/answer/iteration/ordinal.turn.call`, as `idempotency_key`.
            let address = key.trim_start_matches("answer~");
            Ok((run.clone(), format!("{run}/answer/{iteration}/{address}")))
        })
        .map(|rows| rows.filter_map(Result::ok).collect())
        .unwrap_or_default()
}

fn output(db: &Path, run: &str) -> Option<String> {
    let connection = rusqlite::Connection::open(db).ok()?;
    let bytes: Vec<u8> = connection
        .query_row(
            "SELECT output FROM steps WHERE run_id = ?1 AND key = 'answer' AND iteration = 0",
            [run],
            |row| row.get(0),
        )
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[test]
fn tool_calls_run_once_across_kills() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("runs.db");
    let log = dir.path().join("tools.log");
    let exe = std::env::current_exe().expect("the test binary");
    let mut rng = 0x7001_u64;
    let mut next = |bound: u64| {
        rng = splitmix(rng);
        rng % bound
    };
    let mut process = 0u32;
    let (mut kills, mut mid_turn) = (0u32, 0u32);
    let mut recorded_seen_after: BTreeMap<(String, String), u32> = BTreeMap::new();
    let started = Instant::now();
    let mut runs: Vec<(String, u64)> = Vec::new();
    while (kills < 25 || runs.len() < 5) && started.elapsed() < Duration::from_secs(120) {
        let seed = runs.len() as u64 + 1;
        let run = format!("T-{seed}");
        loop {
            process += 1;
            let mut child = Command::new(&exe)
                .args([
                    "--ignored",
                    "--exact",
                    "tools_child",
                    "--test-threads=1",
                    "--quiet",
                ])
                .env("TOOLS_DB", &db)
                .env("TOOLS_LOG", &log)
                .env("TOOLS_PROCESS", process.to_string())
                .env("TOOLS_RUN", &run)
                .env("TOOLS_SEED", seed.to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn the child");
            // The child starts in ~10 ms and its tools take 20–60 ms a turn
            // (plus 300 ms for a killed owner's lease to run out).
            let exited = exit_or_kill(&mut child, Duration::from_millis(20 + next(400)));
            match exited {
                Some(exit) => assert!(exit.success(), "process {process} failed"),
                None => kills += 1,
            }
            let recorded = recorded_calls(&db);
            if exited.is_none() {
                // Killed between the calls of one turn: some of its calls
                // recorded, others not.
                let of_turn = |turn: &str| {
                    recorded
                        .iter()
                        .filter(|(r, key)| *r == run && key.contains(&format!("/{turn}.")))
                        .count()
                };
                if matches!(of_turn("0.0"), 1 | 2) || of_turn("0.1") == 1 {
                    mid_turn += 1;
                }
            }
            for call in recorded {
                recorded_seen_after.entry(call).or_insert(process);
            }
            if exited.is_some() {
                break;
            }
        }
        runs.push((run, seed));
    }

    // Every run answered with all five results, in order.
    for (run, seed) in &runs {
        let expected: Vec<String> = (0..5).map(|i| ((seed * 10 + i) * 2).to_string()).collect();
        assert_eq!(output(&db, run), Some(expected.join("+")), "run {run}");
    }
    // No call ran again once recorded; none ran twice in one process.
    let text = std::fs::read_to_string(&log).expect("the tool log");
    let mut per_process: BTreeMap<(String, u32), u32> = BTreeMap::new();
    let mut again = 0;
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let (Some(run), Some(key), Some(p)) = (
            parts.next().map(str::to_owned),
            parts.next().map(str::to_owned),
            parts.next().and_then(|p| p.parse::<u32>().ok()),
        ) else {
            panic!("malformed log line {line:?}");
        };
        if let Some(&seen_after) = recorded_seen_after.get(&(run.clone(), key.clone())) {
            assert!(
                p <= seen_after,
                "tool call {key} ran in process {p}, after process {seen_after} saw its result recorded"
            );
        }
        let count = per_process.entry((key, p)).or_default();
        *count += 1;
        again += u32::from(*count > 1);
    }
    assert_eq!(again, 0, "a tool call ran twice in one process");
    let calls = text.lines().count();
    println!(
        "{kills} kills ({mid_turn} between the calls of one turn) over {} runs and {process} processes; {calls} tool calls for {} needed",
        runs.len(),
        runs.len() * 5
    );
    assert!(kills >= 10, "only {kills} kills");
    assert!(mid_turn > 0, "no kill landed between the calls of one turn");
}
