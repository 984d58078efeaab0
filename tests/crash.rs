//! The crash test: a real child process runs a chain against the SQLite
//! store and is killed with SIGKILL at seeded random moments (during parallel
//! steps, inside a route, in the middle of a map step), then resumed, until
//! every run completes. Checked: each run's output equals an uncrashed run's;
//! no step (and no element of a map step) runs again once its output was
//! checkpointed (sub-chain calls included: one step calls a sub-chain three
//! times), so a resumed map runs only its missing elements; no step runs
//! twice in one process.
//!
//! The same test runs in each durability mode, with that mode's guarantee
//! checked besides: in every mode what a kill leaves is closed under the
//! chain's dataflow (a unit is never saved without the units it read);
//! `sync` loses only units in flight; `exit` saves nothing of a run that
//! has not ended (its completed sub-chain runs aside).
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
    store::{Durability, MemoryStore, SqliteStore},
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

/// The durability mode named `name` (the sync default for any other name).
fn mode(name: &str) -> Durability {
    match name {
        "batched" => Durability::batched(Duration::from_millis(20)),
        "exit" => Durability::Exit,
        _ => Durability::Sync,
    }
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
        .durability(mode(&std::env::var("CRASH_MODE").unwrap_or_default()))
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

/// The units each unit of `crashy` reads (a map element: the list;
/// `f` reads the map, whose first element stands for it), for
/// the prefix check: a unit in the store needs every unit it read there.
fn inputs_of(unit: &str) -> &'static [&'static str] {
    match unit {
        "c" => &["a", "b"],
        "d" | "g" | "words" => &["c"],
        "e" => &["c", "d"],
        // A map's elements are its units (it has no unit of its own).
        "f" => &["e", "a", "g", "words", "marked#0"],
        element if element.starts_with("marked#") => &["words"],
        _ => &[],
    }
}

/// What a kill left of a top-level run that is not closed under the
/// dataflow: a saved unit missing one of its inputs (`e` reads `d` only on
/// the left lane, so `d` counts when saved).
fn unclosed(saved: &BTreeSet<String>) -> Option<String> {
    saved.iter().find_map(|unit| {
        inputs_of(unit)
            .iter()
            .filter(|input| !(unit == "e" && **input == "d"))
            .find(|input| !saved.contains(**input))
            .map(|input| format!("`{unit}` is saved without its input `{input}`"))
    })
}

/// How much a test in one mode must see before it stops.
struct Goal {
    kills: u32,
    runs: usize,
    /// Kills land up to this long after a child starts: in the exit mode a
    /// run completes only in a child that lives through all of it.
    window_ms: u64,
    /// Kills inside parallel steps, a route, sub-chain calls and a map.
    coverage: bool,
}

/// What the kills of one mode's test saw.
#[derive(Default)]
struct Seen {
    kills: u32,
    processes: u32,
    runs: usize,
    in_flight_at_kills: Vec<BTreeSet<String>>,
    mid_map_kills: u32,
    /// Kills after which the run's own units were saved, not all of them.
    partial_saves: u32,
}

/// Starts runs in child processes in `mode` and kills them at random
/// moments, resuming each until it completes; then checks what every mode
/// guarantees (same outputs as uncrashed runs; nothing runs again once
/// saved; what a kill leaves is closed under the dataflow) and `check` on
/// what each kill left of its run.
fn crash_and_resume(
    mode: &str,
    goal: &Goal,
    check: impl Fn(&BTreeSet<String>) -> Result<(), String>,
) -> Seen {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("runs.db");
    let calls = dir.path().join("calls.log");
    let exe = std::env::current_exe().expect("the test binary");
    let mut rng = 0x5EED_u64 ^ mix(1, mode);
    let mut next = |bound: u64| {
        rng = splitmix(rng);
        rng % bound
    };
    let mut seen = Seen::default();
    // Per run: for each step, the last process that ran before its checkpoint appeared.
    let mut checkpoint_seen_after: BTreeMap<(String, String), u32> = BTreeMap::new();
    let mut finals: BTreeMap<String, u64> = BTreeMap::new();
    let started = Instant::now();

    let mut seed = 100u64;
    let covered = |seen: &Seen| {
        let kills_in_flight = &seen.in_flight_at_kills;
        !goal.coverage
            || (kills_in_flight
                .iter()
                .any(|s| s.contains("a") && s.contains("b"))
                && kills_in_flight
                    .iter()
                    .any(|s| s.contains("d") || s.contains("e"))
                && kills_in_flight.iter().any(|s| s.contains("g"))
                && seen.mid_map_kills > 0)
    };
    while (seen.kills < goal.kills || finals.len() < goal.runs || !covered(&seen))
        && started.elapsed() < Duration::from_secs(240)
    {
        seed += 1;
        let mut run: Option<String> = None;
        let known: BTreeSet<String> = runs(&db).into_iter().map(|(id, _)| id).collect();
        loop {
            assert!(
                started.elapsed() < Duration::from_secs(300),
                "mode {mode}: run of seed {seed} did not complete in 300 s ({} processes)",
                seen.processes
            );
            seen.processes += 1;
            let process = seen.processes;
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
                .env("CRASH_MODE", mode)
                .env("CRASH_PROCESS", process.to_string())
                .env("CRASH_SEED", seed.to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            if let Some(id) = &run {
                command.env("CRASH_RUN", id);
            }
            let mut child = command.spawn().expect("spawn the child");
            // Kill somewhere between just started and after the end.
            let exited = exit_or_kill(&mut child, Duration::from_millis(5 + next(goal.window_ms)));
            let completed = match exited {
                Some(status) => {
                    assert!(
                        status.success(),
                        "the child failed by itself (process {process}, mode {mode})"
                    );
                    true
                }
                None => {
                    seen.kills += 1;
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
            if let Some(broken) = unclosed(&saved) {
                panic!("mode {mode}, run {id} after process {process}: {broken}");
            }
            if !completed {
                if let Err(broken) = check(&saved) {
                    panic!("mode {mode}, run {id} killed in process {process}: {broken}");
                }
                if !saved.is_empty() && !saved.contains("f") {
                    seen.partial_saves += 1;
                }
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
                    seen.mid_map_kills += 1;
                }
                seen.in_flight_at_kills.push(in_flight);
            }
            for unit in checkpointed_everywhere(&db) {
                checkpoint_seen_after.entry(unit).or_insert(process);
            }
            if completed {
                finals.insert(id, seed);
                break;
            }
        }
    }
    seen.runs = finals.len();

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
    for (id, seed) in &finals {
        let expected = runtime
            .block_on(crashy::run(&reference, crashy::Input { seed: *seed }))
            .expect("an uncrashed run");
        let run_id = RunId::named(id).expect("a run id");
        let resumed = runtime.block_on(crashy::resume(&store, run_id));
        assert_eq!(
            resumed.result.expect("restored").f,
            expected,
            "run {id}, mode {mode}"
        );
    }
    assert!(
        !dir.path().join("after.log").exists(),
        "restoring a completed run ran no step (mode {mode})"
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
                "mode {mode}: step `{key}` of run {run} ran in process {p}, but its output was checkpointed by process {seen_after}"
            );
        }
    }
    assert!(
        per_process.values().all(|&n| n == 1),
        "a step ran twice in one process (mode {mode})"
    );
    assert!(seen.kills >= goal.kills, "only {} kills", seen.kills);
    assert!(seen.runs >= goal.runs, "only {} runs completed", seen.runs);
    seen
}

#[test]
fn crash_test_kills_and_resumes() {
    let goal = Goal {
        kills: 50,
        runs: 8,
        window_ms: 160,
        coverage: true,
    };
    let seen = crash_and_resume("sync", &goal, |_| Ok(()));
    let count = |f: &dyn Fn(&BTreeSet<String>) -> bool| {
        seen.in_flight_at_kills.iter().filter(|s| f(s)).count()
    };
    let parallel = count(&|s| s.contains("a") && s.contains("b"));
    let route = count(&|s| s.contains("d") || s.contains("e"));
    let sub_chains = count(&|s| s.contains("g"));
    let maps = seen.mid_map_kills;
    println!(
        "{} kills over {} runs and {} processes; {parallel} during both parallel steps, {route} inside the route, {sub_chains} during sub-chain calls, {maps} in the middle of a map (some elements saved, others in flight)",
        seen.kills, seen.runs, seen.processes
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

/// Batched: outputs reach the store within 20 ms, in order; a kill keeps a
/// prefix (checked for every kill by `crash_and_resume`), and some kills
/// land with part of a run saved.
#[test]
fn crash_test_batched_mode() {
    let goal = Goal {
        kills: 20,
        runs: 4,
        window_ms: 160,
        coverage: false,
    };
    let seen = crash_and_resume("batched", &goal, |_| Ok(()));
    println!(
        "batched: {} kills over {} runs, {} left part of their run saved",
        seen.kills, seen.runs, seen.partial_saves
    );
    assert!(
        seen.partial_saves > 0,
        "no kill left part of a run saved: nothing was written before the end"
    );
}

/// Exit: nothing of a run is written before it ends, so a kill leaves none
/// of its own units, or all of them (its sub-chains' completed runs are
/// theirs).
#[test]
fn crash_test_exit_mode() {
    // A run takes some 100 ms in a child: kills land within 300 ms, so
    // about a third of the children are killed and the rest complete.
    let goal = Goal {
        kills: 12,
        runs: 4,
        window_ms: 300,
        coverage: false,
    };
    let seen = crash_and_resume("exit", &goal, |saved| {
        // Empty, or the whole run (the kill landed after its end was written).
        if saved.is_empty() || saved.contains("f") {
            Ok(())
        } else {
            Err(format!("units saved before the run ended: {saved:?}"))
        }
    });
    println!("exit: {} kills over {} runs", seen.kills, seen.runs);
    assert_eq!(seen.partial_saves, 0);
}
