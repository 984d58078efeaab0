//! The crash test: a real child process runs a chain against the SQLite
//! store and is killed with SIGKILL at seeded random moments (during parallel
//! steps, inside a route, in the middle of a map step), then resumed, until
//! every run completes. Checked: each run's output equals an uncrashed run's;
//! no step (and no element of a map step) runs again once its output was
//! checkpointed (sub-chain calls included: one step calls a sub-chain three
//! times), so a resumed map runs only its missing elements; no step runs
//! twice in one process.
//!
//! The child is this test binary itself, running the ignored test
//! `crash_child` (it does nothing unless the parent starts it).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use prompt_chain::prelude::*;
use prompt_chain::{
    RunId,
    store::{MemoryStore, SqliteStore},
};
use serde::{Deserialize, Serialize};

#[path = "support/call_log.rs"]
mod call_log;
use call_log::{CallLog, exit_or_kill, splitmix, unit};

fn mix(seed: u64, salt: &str) -> u64 {
    let mut h = seed ^ 0x9E37_79B9_7F4A_7C15;
    for b in salt.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^ (h >> 29)
}

/// A step's body: log the call, take 5–34 ms, return a value from its inputs.
async fn work(cx: &StepCx, seed: u64, input: &str) -> StepResult<String> {
    cx.require::<CallLog>()?.record(cx)?;
    tokio::time::sleep(Duration::from_millis(5 + mix(seed, &unit(cx)) % 30)).await;
    Ok(format!("{}({input})", cx.key()))
}

#[step]
async fn part_a(cx: &StepCx, seed: &u64) -> StepResult<String> {
    work(cx, *seed, "a").await
}

#[step]
async fn part_b(cx: &StepCx, seed: &u64) -> StepResult<String> {
    work(cx, *seed, "b").await
}

#[step]
async fn combine(cx: &StepCx, seed: &u64, a: &str, b: &str) -> StepResult<String> {
    work(cx, *seed, &format!("{a}+{b}")).await
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Lane {
    Left,
    Right,
}

#[step]
async fn pick(cx: &StepCx, seed: &u64) -> StepResult<Lane> {
    cx.require::<CallLog>()?.record(cx)?;
    tokio::time::sleep(Duration::from_millis(5 + mix(*seed, "lane") % 10)).await;
    Ok(if seed.is_multiple_of(2) {
        Lane::Left
    } else {
        Lane::Right
    })
}

#[step]
async fn left_one(cx: &StepCx, seed: &u64, c: &str) -> StepResult<String> {
    work(cx, *seed, c).await
}

#[step]
async fn left_two(cx: &StepCx, seed: &u64, d: &str) -> StepResult<String> {
    work(cx, *seed, d).await
}

#[step]
async fn right_one(cx: &StepCx, seed: &u64, c: &str) -> StepResult<String> {
    work(cx, *seed, c).await
}

#[step]
async fn last(
    cx: &StepCx,
    seed: &u64,
    e: &str,
    a: &str,
    g: &str,
    marked: &[String],
) -> StepResult<String> {
    work(cx, *seed, &format!("{e}|{a}|{g}|{}", marked.join(","))).await
}

/// The list a map step runs over: known only when `c` is.
#[step]
async fn split_words(cx: &StepCx, seed: &u64, c: &str) -> StepResult<Vec<String>> {
    let base = work(cx, *seed, c).await?;
    let n = 4 + (mix(*seed, "words") % 5) as usize;
    Ok((0..n).map(|i| format!("{}:{i}", base.len())).collect())
}

/// One element of the map.
#[step]
async fn mark(cx: &StepCx, word: &str, seed: &u64) -> StepResult<String> {
    work(cx, *seed, word).await
}

/// A sub-chain, called three times by one step of `crashy`.
#[chain]
async fn tag(seed: u64, word: String) -> String {
    step!(tagged = tag_word(seed, word));
    tagged
}

#[step]
async fn tag_word(cx: &StepCx, seed: &u64, word: &str) -> StepResult<String> {
    work(cx, *seed, word).await
}

/// Calls `tag` on three words in turn: three units, three sub-runs.
#[step]
async fn fan(cx: &StepCx, seed: &u64, c: &str) -> StepResult<String> {
    cx.require::<CallLog>()?.record(cx)?;
    let mut tags = Vec::new();
    for word in ["x", "y", "z"] {
        tags.push(tag(cx, *seed, format!("{word}:{}", c.len())).await?);
    }
    Ok(tags.join(","))
}

#[chain]
async fn crashy(seed: u64) -> String {
    step!(a = part_a(seed));
    step!(b = part_b(seed));
    step!(c = combine(seed, a, b));
    step!(lane = pick(seed));
    route!(lane {
        Lane::Left => {
            step!(d = left_one(seed, c));
            step!(e = left_two(seed, d));
        }
        Lane::Right => step!(e = right_one(seed, c)),
    });
    step!(g = fan(seed, c));
    step!(words = split_words(seed, c));
    step!(marked = mark(each words, seed), concurrency = 3);
    step!(f = last(seed, e, a, g, marked));
    f
}

/// The child: start (or resume) one run, then exit. Started by the parent.
#[tokio::test]
#[ignore = "run by `crash_test_kills_and_resumes` as a child process"]
async fn crash_child() {
    let (Ok(db), Ok(calls), Ok(process)) = (
        std::env::var("CRASH_DB"),
        std::env::var("CRASH_CALLS"),
        std::env::var("CRASH_PROCESS"),
    ) else {
        return;
    };
    let log = CallLog {
        path: calls.into(),
        process: process.parse().expect("process number"),
    };
    // A short lease: a killed owner's run can be resumed 300 ms later.
    let rt = Runtime::builder()
        .checkpoints(SqliteStore::open(&db).expect("open the store"))
        .lease(Duration::from_millis(300))
        .dependency(log)
        .build();
    let outcome = match std::env::var("CRASH_RUN") {
        Ok(run) => crashy::resume(&rt, RunId::named(&run).expect("run id")).await,
        Err(_) => {
            let seed = std::env::var("CRASH_SEED")
                .expect("seed")
                .parse()
                .expect("seed");
            crashy::execute(&rt, crashy::Input { seed }).await
        }
    };
    outcome.result.expect("the run completes");
}

/// Which steps of `run` are checkpointed in the database.
fn checkpointed(db: &Path, run: &str) -> BTreeSet<String> {
    checkpointed_everywhere(db)
        .into_iter()
        .filter(|(r, _)| r == run)
        .map(|(_, key)| key)
        .collect()
}

/// Every (run, unit) checkpointed in the database, sub-chain runs included:
/// a step's key, or `key#i` for element `i` of a map step (saved as
/// iteration `i + 1`; this chain has no loops).
fn checkpointed_everywhere(db: &Path) -> BTreeSet<(String, String)> {
    let Ok(connection) = rusqlite::Connection::open(db) else {
        return BTreeSet::new();
    };
    let Ok(mut statement) = connection.prepare("SELECT run_id, key, iteration FROM steps") else {
        return BTreeSet::new();
    };
    statement
        .query_map([], |row| {
            let key = row.get::<_, String>(1)?;
            let unit = match row.get::<_, i64>(2)? {
                0 => key,
                iteration => format!("{key}#{}", iteration - 1),
            };
            Ok((row.get::<_, String>(0)?, unit))
        })
        .map(|rows| rows.filter_map(Result::ok).collect())
        .unwrap_or_default()
}

/// Whether a kill landed with map elements in flight and others saved.
fn mid_map(in_flight: &BTreeSet<String>, saved: &BTreeSet<String>) -> bool {
    let element = |unit: &String| unit.starts_with("marked#");
    in_flight.iter().any(element) && saved.iter().any(element)
}

/// The top-level runs in the database, with their status.
fn runs(db: &Path) -> Vec<(String, String)> {
    let Ok(connection) = rusqlite::Connection::open(db) else {
        return Vec::new();
    };
    let Ok(mut statement) =
        connection.prepare("SELECT run_id, status FROM runs WHERE parent_id IS NULL")
    else {
        return Vec::new();
    };
    statement
        .query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })
        .map(|rows| rows.filter_map(Result::ok).collect())
        .unwrap_or_default()
}

#[test]
fn crash_test_kills_and_resumes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("runs.db");
    let calls = dir.path().join("calls.log");
    let exe = std::env::current_exe().expect("the test binary");
    let mut rng = 0x5EED_u64;
    let mut next = |bound: u64| {
        rng = splitmix(rng);
        rng % bound
    };
    let mut process = 0u32;
    let mut kills = 0u32;
    // For each kill: the steps started but not checkpointed when it landed.
    let mut in_flight_at_kills: Vec<BTreeSet<String>> = Vec::new();
    // Per run: for each step, the last process that ran before its checkpoint appeared.
    let mut checkpoint_seen_after: BTreeMap<(String, String), u32> = BTreeMap::new();
    let mut finals: BTreeMap<String, (u64, String)> = BTreeMap::new();
    let started = Instant::now();

    let mut seed = 100u64;
    let covered = |kills_in_flight: &[BTreeSet<String>]| {
        kills_in_flight
            .iter()
            .any(|s| s.contains("a") && s.contains("b"))
            && kills_in_flight
                .iter()
                .any(|s| s.contains("d") || s.contains("e"))
            && kills_in_flight.iter().any(|s| s.contains("g"))
    };
    // Kills that landed with some of a map's elements saved, others in flight.
    let mut mid_map_kills = 0u32;
    while (kills < 50 || finals.len() < 8 || !covered(&in_flight_at_kills) || mid_map_kills == 0)
        && started.elapsed() < Duration::from_secs(240)
    {
        seed += 1;
        let mut run: Option<String> = None;
        let known: BTreeSet<String> = runs(&db).into_iter().map(|(id, _)| id).collect();
        loop {
            process += 1;
            let mut command = Command::new(&exe);
            command
                .args([
                    "--ignored",
                    "--exact",
                    "crash_child",
                    "--test-threads=1",
                    "--quiet",
                ])
                .env("CRASH_DB", &db)
                .env("CRASH_CALLS", &calls)
                .env("CRASH_PROCESS", process.to_string())
                .env("CRASH_SEED", seed.to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            if let Some(id) = &run {
                command.env("CRASH_RUN", id);
            }
            let mut child = command.spawn().expect("spawn the child");
            // Kill somewhere between just started and after the end.
            let exited = exit_or_kill(&mut child, Duration::from_millis(5 + next(160)));
            let completed = match exited {
                Some(status) => {
                    assert!(
                        status.success(),
                        "the child failed by itself (process {process})"
                    );
                    true
                }
                None => {
                    kills += 1;
                    false
                }
            };
            if run.is_none() {
                run = runs(&db)
                    .into_iter()
                    .map(|(id, _)| id)
                    .find(|id| !known.contains(id));
            }
            let Some(id) = run.clone() else {
                continue; // killed before the run was recorded: start again
            };
            let saved = checkpointed(&db, &id);
            if !completed {
                let started_steps: BTreeSet<String> = std::fs::read_to_string(&calls)
                    .unwrap_or_default()
                    .lines()
                    .filter_map(|l| {
                        let mut parts = l.split_whitespace();
                        let (r, key, p) = (parts.next()?, parts.next()?, parts.next()?);
                        (r == id && p == process.to_string()).then(|| key.to_owned())
                    })
                    .collect();
                let in_flight = started_steps.difference(&saved).cloned().collect();
                if mid_map(&in_flight, &saved) {
                    mid_map_kills += 1;
                }
                in_flight_at_kills.push(in_flight);
            }
            for unit in checkpointed_everywhere(&db) {
                checkpoint_seen_after.entry(unit).or_insert(process);
            }
            if completed {
                finals.insert(id, (seed, String::new()));
                break;
            }
        }
    }

    // Every run completed with the same output as a run that never crashed.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio");
    let reference_log = CallLog {
        path: dir.path().join("reference.log"),
        process: 0,
    };
    let reference = Runtime::builder()
        .checkpoints(MemoryStore::new())
        .dependency(reference_log)
        .build();
    let store = Runtime::builder()
        .checkpoints(SqliteStore::open(&db).expect("open"))
        .dependency(CallLog {
            path: dir.path().join("after.log"),
            process: u32::MAX,
        })
        .build();
    for (id, (seed, _)) in &finals {
        let expected = runtime
            .block_on(crashy::run(&reference, crashy::Input { seed: *seed }))
            .expect("an uncrashed run");
        let run_id = RunId::named(id).expect("a run id");
        let resumed = runtime.block_on(crashy::resume(&store, run_id));
        assert_eq!(resumed.result.expect("restored").f, expected, "run {id}");
    }
    assert!(
        !dir.path().join("after.log").exists(),
        "restoring a completed run ran no step"
    );

    // No step ran again after its checkpoint; none ran twice in one process.
    let log = std::fs::read_to_string(&calls).expect("the call log");
    let mut per_process: BTreeMap<(String, String, u32), u32> = BTreeMap::new();
    for line in log.lines() {
        let mut parts = line.split_whitespace();
        let (Some(run), Some(key), Some(p)) = (
            parts.next().map(str::to_owned),
            parts.next(),
            parts.next().and_then(|p| p.parse::<u32>().ok()),
        ) else {
            panic!("malformed log line {line:?}");
        };
        *per_process
            .entry((run.clone(), key.to_owned(), p))
            .or_default() += 1;
        if let Some(&seen_after) = checkpoint_seen_after.get(&(run.clone(), key.to_owned())) {
            assert!(
                p <= seen_after,
                "step `{key}` of run {run} ran in process {p}, but its output was checkpointed by process {seen_after}"
            );
        }
    }
    assert!(
        per_process.values().all(|&n| n == 1),
        "a step ran twice in one process"
    );
    assert!(kills >= 50, "only {kills} kills");
    let parallel = in_flight_at_kills
        .iter()
        .filter(|s| s.contains("a") && s.contains("b"))
        .count();
    let route = in_flight_at_kills
        .iter()
        .filter(|s| s.contains("d") || s.contains("e"))
        .count();
    let sub_chains = in_flight_at_kills
        .iter()
        .filter(|s| s.contains("g"))
        .count();
    let maps = mid_map_kills;
    println!(
        "{kills} kills over {} runs and {process} processes; {parallel} during both parallel steps, {route} inside the route, {sub_chains} during sub-chain calls, {maps} in the middle of a map (some elements saved, others in flight)",
        finals.len()
    );
    assert!(maps > 0, "no kill landed while map elements were in flight");
    assert!(
        sub_chains > 0,
        "no kill landed while a step called its sub-chains"
    );
    assert!(
        parallel > 0,
        "no kill landed while both parallel steps were in flight"
    );
    assert!(route > 0, "no kill landed inside the route");
}
