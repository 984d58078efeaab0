//! Named runs attach instead of running twice; stores list their runs; a
//! dropped run is recorded as cancelled; files of the earlier schema are
//! upgraded on open.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use prompt_chain::prelude::*;
use prompt_chain::store::{
    CheckpointStore, MemoryStore, RunQuery, SqliteStore, StoreError, StoredStatus,
};
use prompt_chain::{FailureKind, RunId};

/// Where steps count their executions: in memory, and in a file shared by
/// processes.
#[derive(Debug, Default)]
struct Executions {
    count: AtomicUsize,
    file: Option<PathBuf>,
}

impl Executions {
    fn record(&self, cx: &StepCx) -> std::io::Result<()> {
        self.count.fetch_add(1, Ordering::SeqCst);
        if let Some(path) = &self.file {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?;
            writeln!(file, "{} {} {}", cx.run_id(), cx.key(), std::process::id())?;
        }
        Ok(())
    }
}

#[step]
async fn draft(cx: &StepCx, ticket: &str) -> StepResult<String> {
    cx.require::<Arc<Executions>>()?.record(cx)?;
    tokio::time::sleep(Duration::from_millis(30)).await;
    Ok(format!("draft for {ticket}"))
}

#[step]
async fn polish(cx: &StepCx, text: &str) -> StepResult<String> {
    cx.require::<Arc<Executions>>()?.record(cx)?;
    tokio::time::sleep(Duration::from_millis(20)).await;
    Ok(text.to_uppercase())
}

#[chain]
async fn reply(ticket: String) -> String {
    step!(text = draft(ticket));
    step!(polished = polish(text));
    polished
}

fn runtime(store: impl CheckpointStore, executions: &Arc<Executions>) -> Runtime {
    Runtime::builder()
        .checkpoints(store)
        .dependency(Arc::clone(executions))
        .build()
}

async fn twenty_starts(rt: &Runtime) -> Vec<String> {
    let id = RunId::named("T-1001").expect("a valid name");
    let starts = (0..20).map(|_| {
        let rt = rt.clone();
        tokio::spawn(async move {
            reply::execute_as(
                &rt,
                id,
                reply::Input {
                    ticket: "T-1001".into(),
                },
            )
            .await
            .result
            .map(|out| out.polished)
        })
    });
    let mut results = Vec::new();
    for start in starts.collect::<Vec<_>>() {
        results.push(start.await.expect("joined").expect("every start completes"));
    }
    results
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_starts_of_a_named_run_execute_each_unit_once() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    for store in ["memory", "sqlite"] {
        let executions = Arc::new(Executions::default());
        let rt = match store {
            "memory" => runtime(MemoryStore::new(), &executions),
            _ => runtime(
                SqliteStore::open(dir.path().join("runs.db")).expect("opens"),
                &executions,
            ),
        };
        let results = twenty_starts(&rt).await;
        assert_eq!(results.len(), 20);
        assert!(
            results.iter().all(|r| r == "DRAFT FOR T-1001"),
            "{results:?}"
        );
        assert_eq!(
            executions.count.load(Ordering::SeqCst),
            2,
            "each of the two steps ran once ({store})"
        );
        // Starting it once more attaches to the finished run: nothing runs.
        let again = twenty_starts(&rt).await;
        assert_eq!(again, results);
        assert_eq!(executions.count.load(Ordering::SeqCst), 2);
    }
}

/// The child of the two-process test: ten concurrent starts of one named
/// run on a shared SQLite file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by `two_processes_share_one_named_run` as a child process"]
async fn named_run_child() {
    let (Ok(db), Ok(log)) = (std::env::var("NAMED_DB"), std::env::var("NAMED_LOG")) else {
        return;
    };
    let executions = Arc::new(Executions {
        count: AtomicUsize::new(0),
        file: Some(log.into()),
    });
    let rt = runtime(SqliteStore::open(&db).expect("opens"), &executions);
    let id = RunId::named("T-2002").expect("a valid name");
    let starts: Vec<_> = (0..10)
        .map(|_| {
            let rt = rt.clone();
            tokio::spawn(async move {
                reply::execute_as(
                    &rt,
                    id,
                    reply::Input {
                        ticket: "T-2002".into(),
                    },
                )
                .await
            })
        })
        .collect();
    for start in starts {
        let outcome = start.await.expect("joined");
        println!("RESULT {}", outcome.result.expect("completes").polished);
    }
}

fn child(db: &Path, log: &Path) -> std::process::Child {
    Command::new(std::env::current_exe().expect("the test binary"))
        .args([
            "--ignored",
            "--exact",
            "named_run_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("NAMED_DB", db)
        .env("NAMED_LOG", log)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawns")
}

#[test]
fn two_processes_share_one_named_run() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (db, log) = (dir.path().join("runs.db"), dir.path().join("calls.log"));
    // The file exists before the children race to start the run.
    drop(SqliteStore::open(&db).expect("creates"));
    let children = [child(&db, &log), child(&db, &log)];
    let mut results = Vec::new();
    for child in children {
        let output = child.wait_with_output().expect("waits");
        assert!(output.status.success(), "a child failed");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        results.extend(
            stdout
                .lines()
                // The harness may print its own words in front on the line.
                .filter_map(|l| l.split_once("RESULT ").map(|(_, r)| r.to_owned())),
        );
    }
    assert_eq!(results.len(), 20, "{results:?}");
    assert!(
        results.iter().all(|r| r == "DRAFT FOR T-2002"),
        "{results:?}"
    );
    let calls = std::fs::read_to_string(&log).expect("the call log");
    let mut keys: Vec<&str> = calls.lines().filter_map(|l| l.split(' ').nth(1)).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["polished", "text"],
        "each unit ran once over both processes:\n{calls}"
    );
}

#[tokio::test]
async fn a_named_run_started_with_another_input_is_refused() {
    let executions = Arc::new(Executions::default());
    let rt = runtime(MemoryStore::new(), &executions);
    let id = RunId::named("T-3003").expect("a valid name");
    let first = reply::execute_as(&rt, id, reply::Input { ticket: "a".into() }).await;
    assert!(first.result.is_ok());
    let other = reply::execute_as(&rt, id, reply::Input { ticket: "b".into() }).await;
    let error = other.result.expect_err("another input");
    assert!(
        matches!(error.kind(), FailureKind::InputChanged { .. }),
        "{error}"
    );
    assert_eq!(executions.count.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn stores_list_runs_by_status_and_chain() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let stores: [Arc<dyn CheckpointStore>; 2] = [
        Arc::new(SqliteStore::open(dir.path().join("runs.db")).expect("opens")),
        Arc::new(MemoryStore::new()),
    ];
    for store in stores {
        let executions = Arc::new(Executions::default());
        let rt = runtime(Arc::clone(&store), &executions);
        for name in ["L-1", "L-2"] {
            let id = RunId::named(name).expect("a valid name");
            let outcome = reply::execute_as(
                &rt,
                id,
                reply::Input {
                    ticket: name.into(),
                },
            )
            .await;
            assert!(outcome.result.is_ok());
        }
        // A third run is dropped half way: it is recorded as cancelled.
        let third = reply::execute_as(
            &rt,
            RunId::named("L-3").expect("a valid name"),
            reply::Input {
                ticket: "L-3".into(),
            },
        );
        assert!(
            tokio::time::timeout(Duration::from_millis(10), third)
                .await
                .is_err()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        let listed = rt
            .store()
            .expect("a store")
            .list_runs(&RunQuery::all())
            .await;
        assert_eq!(listed.expect("lists").len(), 3);
        let done = store
            .list_runs(
                &RunQuery::all()
                    .status(StoredStatus::Completed)
                    .chain("reply"),
            )
            .await
            .expect("lists");
        let mut names: Vec<String> = done.iter().map(|r| r.run_id.to_string()).collect();
        names.sort();
        assert_eq!(names, ["L-1", "L-2"]);
        assert!(done.iter().all(|r| r.units == 2), "{done:?}");
        let cancelled = store
            .list_runs(&RunQuery::all().status(StoredStatus::Cancelled))
            .await
            .expect("lists");
        assert_eq!(
            cancelled.len(),
            1,
            "the dropped run is recorded as cancelled"
        );
        // Its lease was freed with it: resuming it does not wait for it.
        let resumed = tokio::time::timeout(
            Duration::from_secs(5),
            reply::resume(&rt, RunId::named("L-3").expect("a valid name")),
        )
        .await
        .expect("resumes without waiting for a lease");
        assert_eq!(resumed.result.expect("completes").polished, "DRAFT FOR L-3");
        let none = store
            .list_runs(&RunQuery::all().chain("no_such_chain"))
            .await
            .expect("lists");
        assert!(none.is_empty());
    }
}

/// Writes a store in the first schema (integer run ids), as the previous
/// release did, with one run whose first step was saved.
fn write_v1_store(path: &Path, run: u64, input: &[u8], fingerprint: u64) {
    let fnv = |bytes: &[u8], seed: u64| {
        let mut hash = seed ^ 0xcbf2_9ce4_8422_2325;
        for byte in bytes {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        hash
    };
    let sum = |run: i64, key: &str, iteration: i64, output: &[u8]| {
        fnv(
            output,
            fnv(format!("{run}/{key}/{iteration}").as_bytes(), 0),
        ) as i64
    };
    let connection = rusqlite::Connection::open(path).expect("opens");
    connection
        .execute_batch(
            "CREATE TABLE runs (run_id INTEGER PRIMARY KEY, chain TEXT NOT NULL, fingerprint INTEGER NOT NULL,
                                input BLOB NOT NULL, input_checksum INTEGER NOT NULL, status TEXT NOT NULL);
             CREATE TABLE steps (run_id INTEGER NOT NULL, key TEXT NOT NULL, iteration INTEGER NOT NULL,
                                 output BLOB NOT NULL, checksum INTEGER NOT NULL, PRIMARY KEY (run_id, key, iteration));
             CREATE TABLE cache (key TEXT PRIMARY KEY, output BLOB NOT NULL, checksum INTEGER NOT NULL, expires_at INTEGER NOT NULL);",
        )
        .expect("the old schema");
    let id = run as i64;
    connection
        .execute(
            "INSERT INTO runs VALUES (?1, 'reply', ?2, ?3, ?4, 'failed')",
            rusqlite::params![id, fingerprint as i64, input, sum(id, "<input>", 0, input)],
        )
        .expect("a run");
    let output = br#""draft for T-9""#;
    connection
        .execute(
            "INSERT INTO steps VALUES (?1, 'text', 0, ?2, ?3)",
            rusqlite::params![id, &output[..], sum(id, "text", 0, output)],
        )
        .expect("a step");
}

#[tokio::test]
async fn a_store_of_the_first_schema_is_upgraded_and_its_runs_resume() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("old.db");
    let input = serde_json::to_vec(&serde_json::json!({"ticket": "T-9"})).expect("json");
    write_v1_store(&path, 0xfeed, &input, reply::definition().fingerprint);
    let executions = Arc::new(Executions::default());
    let rt = runtime(SqliteStore::open(&path).expect("upgrades"), &executions);
    let resumed = reply::resume(&rt, RunId::from_u64(0xfeed)).await;
    assert_eq!(resumed.result.expect("resumes").polished, "DRAFT FOR T-9");
    assert_eq!(
        executions.count.load(Ordering::SeqCst),
        1,
        "the saved step was restored, only `polish` ran"
    );
    // A damaged old file is refused, untouched, with what to do.
    let broken = dir.path().join("broken.db");
    write_v1_store(&broken, 7, &input, 1);
    rusqlite::Connection::open(&broken)
        .expect("opens")
        .execute("UPDATE steps SET output = X'00'", [])
        .expect("damages");
    let error = SqliteStore::open(&broken).expect_err("refused");
    assert!(matches!(error, StoreError::Corrupt(_)), "{error}");
    assert!(error.to_string().contains("nothing was changed"), "{error}");
    // A file from a newer version is refused too.
    let newer = dir.path().join("newer.db");
    rusqlite::Connection::open(&newer)
        .expect("opens")
        .execute_batch("PRAGMA user_version = 99;")
        .expect("marks");
    let error = SqliteStore::open(&newer).expect_err("refused");
    assert!(error.to_string().contains("newer prompt-chain"), "{error}");
}
