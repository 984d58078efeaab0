//! The runs tool: the `prompt-chain` binary against a store written by a
//! test chain (list, show, export, size, gc, vacuum, its errors), and a
//! user's tool with the chain registered (resume, fork, graph, html).

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use prompt_chain::cli::Cli;
use prompt_chain::prelude::*;
use prompt_chain::store::{CheckpointStore, NewRun, SqliteStore, StoredStatus};
use prompt_chain::{RunId, report::RunStatus};

#[step]
async fn fetch(_cx: &StepCx, topic: &str) -> StepResult<String> {
    Ok(format!("notes on {topic}"))
}

#[step]
async fn split(_cx: &StepCx, notes: &str) -> StepResult<Vec<String>> {
    Ok(notes.split(' ').map(str::to_owned).collect())
}

#[step]
async fn shout(_cx: &StepCx, word: &str) -> StepResult<String> {
    Ok(word.to_uppercase())
}

/// Fails while the `Arc<AtomicBool>` dependency is set.
#[step]
async fn finish(cx: &StepCx, loud: &[String], _heading: &str) -> StepResult<String> {
    if cx
        .dep::<Arc<AtomicBool>>()
        .is_some_and(|fail| fail.load(Ordering::SeqCst))
    {
        return Err(StepError::msg("the summary service is down"));
    }
    Ok(loud.join("-"))
}

#[chain]
async fn tidy(word: String) -> String {
    step!(loud = shout(word));
    loud
}

#[step]
async fn title(cx: &StepCx, topic: &str) -> StepResult<String> {
    tidy(cx, topic.to_owned()).await
}

#[chain]
async fn digest(topic: String) -> String {
    step!(notes = fetch(topic));
    step!(words = split(notes));
    step!(loud = shout(each words), concurrency = 2);
    step!(heading = title(topic));
    step!(summary = finish(loud, heading));
    summary
}

fn runtime(store: SqliteStore, fail: &Arc<AtomicBool>) -> Runtime {
    Runtime::builder()
        .checkpoints(store)
        .dependency(Arc::clone(fail))
        .build()
}

/// A store with a completed run, a failed run and a run left running.
async fn written_store(path: &Path, fail: &Arc<AtomicBool>) -> (RunId, RunId, RunId) {
    let rt = runtime(SqliteStore::open(path).expect("open"), fail);
    let done = digest::execute(
        &rt,
        digest::Input {
            topic: "rust".into(),
        },
    )
    .await;
    assert_eq!(done.result.expect("completes").summary, "NOTES-ON-RUST");
    fail.store(true, Ordering::SeqCst);
    let failed = digest::execute(
        &rt,
        digest::Input {
            topic: "sql".into(),
        },
    )
    .await;
    assert!(failed.result.is_err());
    fail.store(false, Ordering::SeqCst);
    let running = RunId::named("left-running").expect("id");
    rt.store()
        .expect("store")
        .start_run(NewRun {
            run_id: running,
            parent: None,
            chain: "digest",
            fingerprint: digest::definition().fingerprint,
            input: br#"{"topic":"go"}"#,
            started_unix_ms: 0,
            lease: None,
        })
        .await
        .expect("recorded");
    (done.report.run_id, failed.report.run_id, running)
}

/// Runs the `prompt-chain` binary: (exit code, stdout, stderr).
fn binary(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_prompt-chain"))
        .args(args)
        .env_remove("PROMPT_CHAIN_STORE")
        .output()
        .expect("the binary runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_binary_lists_shows_exports_and_tidies_a_store() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("runs.db");
    let fail = Arc::new(AtomicBool::new(false));
    let (done, failed, running) = written_store(&db, &fail).await;
    let db = db.to_str().expect("a UTF-8 path");

    let (code, out, err) = binary(&["--store", db, "list"]);
    assert_eq!(code, 0, "{err}");
    for (id, status) in [
        (done, "completed"),
        (failed, "failed"),
        (running, "running"),
    ] {
        let line = out
            .lines()
            .find(|line| line.starts_with(&id.to_string()))
            .unwrap_or_else(|| panic!("run {id} listed:\n{out}"));
        assert!(line.contains("digest") && line.contains(status), "{line}");
    }
    assert!(!out.contains("\x1b["), "no colours when not on a terminal");
    let (_, only_failed, _) = binary(&["--store", db, "list", "--status", "failed"]);
    assert_eq!(only_failed.lines().count(), 2, "{only_failed}");
    let (_, with_subs, _) = binary(&["--store", db, "list", "--sub-runs"]);
    assert!(
        with_subs.contains("  ") && with_subs.contains("tidy"),
        "{with_subs}"
    );

    let (code, shown, err) = binary(&["--store", db, "show", &done.to_string()]);
    assert_eq!(code, 0, "{err}");
    for unit in ["notes", "words", "loud#0", "loud#2", "summary", "heading"] {
        assert!(shown.contains(unit), "unit `{unit}` shown:\n{shown}");
    }
    assert!(
        shown.contains("NOTES-ON-RUST") && shown.contains("1 sub-runs"),
        "{shown}"
    );

    // How the failed run ended: its error and its steps, from the store.
    let (code, shown, err) = binary(&["--store", db, "show", &failed.to_string()]);
    assert_eq!(code, 0, "{err}");
    assert!(shown.contains("start 1: failed after"), "{shown}");
    assert!(shown.contains("the summary service is down"), "{shown}");
    let summary_row = shown
        .lines()
        .find(|line| line.starts_with("summary "))
        .unwrap_or_else(|| panic!("a row for `summary`:\n{shown}"));
    assert!(summary_row.contains("failed"), "{summary_row}");
    assert!(
        out.lines()
            .next()
            .is_some_and(|header| header.contains("COST")),
        "{out}"
    );

    let (code, exported, err) = binary(&["--store", db, "export", &done.to_string()]);
    assert_eq!(code, 0, "{err}");
    let json: serde_json::Value = serde_json::from_str(&exported).expect("JSON");
    assert_eq!(json["status"], "completed");
    assert_eq!(json["input"]["topic"], "rust");
    let units = json["units"].as_array().expect("units");
    assert!(
        units
            .iter()
            .any(|unit| unit["key"] == "summary" && unit["output"] == "NOTES-ON-RUST")
    );
    assert_eq!(json["sub_runs"][0]["chain"], "tidy");
    assert_eq!(json["sub_runs"][0]["units"][0]["output"], "RUST");

    let (code, size, err) = binary(&["--store", db, "size"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        size.contains("runs       5"),
        "3 runs and 2 sub-runs:\n{size}"
    );

    // Retention: finished runs go (with their sub-runs), the running one stays.
    let (code, gc, err) = binary(&["--store", db, "gc", "--older-than", "0s"]);
    assert_eq!(code, 0, "{err}");
    assert!(gc.starts_with("deleted 2 runs (2 sub-runs"), "{gc}");
    let (_, left, _) = binary(&["--store", db, "list", "--sub-runs"]);
    assert_eq!(left.lines().count(), 2, "{left}");
    assert!(left.contains("left-running"), "{left}");
    let (code, vacuumed, err) = binary(&["--store", db, "vacuum"]);
    assert_eq!(code, 0, "{err}");
    assert!(vacuumed.starts_with("vacuumed: "), "{vacuumed}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_binary_says_what_is_wrong() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("runs.db");
    let fail = Arc::new(AtomicBool::new(false));
    let (done, _, _) = written_store(&db, &fail).await;
    let db = db.to_str().expect("a UTF-8 path");

    let (code, _, err) = binary(&["list"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("pass --store FILE or set PROMPT_CHAIN_STORE"),
        "{err}"
    );
    let (code, _, err) = binary(&["--store", "/nonexistent/runs.db", "list"]);
    assert_eq!(code, 1);
    assert!(err.contains("no store at /nonexistent/runs.db"), "{err}");
    let (code, _, err) = binary(&["--store", db, "show", "no-such-run"]);
    assert_eq!(code, 1);
    assert!(err.contains("has no run no-such-run"), "{err}");
    let (code, _, err) = binary(&["--store", db, "lsit"]);
    assert_eq!(code, 2);
    assert!(err.contains("list"), "suggests `list`: {err}");
    let (code, _, err) = binary(&["--store", db, "gc", "--older-than", "a week"]);
    assert_eq!(code, 1);
    assert!(err.contains("write 30d, 12h, 45m or 10s"), "{err}");
    // The bare binary knows no chains: it says how to register one.
    let (code, _, err) = binary(&["--store", db, "resume", &done.to_string()]);
    assert_eq!(code, 1);
    assert!(err.contains("Cli::new().chain(digest::entry())"), "{err}");
    let (code, help, _) = binary(&["--help"]);
    assert_eq!(code, 0);
    for command in [
        "list", "show", "export", "resume", "fork", "html", "graph", "gc", "vacuum", "size",
    ] {
        assert!(help.contains(command), "help lists `{command}`:\n{help}");
    }
}

/// The user's own tool: the chain registered, its runtime built around the store.
fn tool(fail: &Arc<AtomicBool>) -> Cli {
    let fail = Arc::clone(fail);
    Cli::new()
        .chain(digest::entry())
        .runtime(move |store| runtime(store, &fail))
}

async fn run_tool(cli: &Cli, args: &[&str]) -> (Result<(), String>, String) {
    let mut out = Vec::new();
    let result = cli
        .run_with(
            std::iter::once("runs").chain(args.iter().copied()),
            &mut out,
            false,
        )
        .await
        .map_err(|error| error.to_string());
    (result, String::from_utf8_lossy(&out).into_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_users_tool_resumes_forks_draws_and_writes_timelines() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("runs.db");
    let fail = Arc::new(AtomicBool::new(false));
    let (done, failed, _) = written_store(&path, &fail).await;
    let db = path.to_str().expect("a UTF-8 path");
    let cli = tool(&fail);

    // Resume the failed run: only `summary` runs again.
    let (result, out) = run_tool(&cli, &["--store", db, "resume", &failed.to_string()]).await;
    result.expect("resumed");
    assert!(out.contains("NOTES-ON-SQL"), "{out}");
    let store = SqliteStore::open(&path).expect("open");
    let run = store.load_run(failed).await.expect("read").expect("a run");
    assert_eq!(run.status, StoredStatus::Completed);
    let (result, shown) = run_tool(&cli, &["--store", db, "show", &failed.to_string()]).await;
    result.expect("shown");
    assert!(
        shown.contains("start 1: failed") && shown.contains("start 2: completed"),
        "each start's outcome:\n{shown}"
    );

    // Fork the completed run with other notes: `words`, `loud` and
    // `summary` read them and run again; `heading` does not.
    let (result, out) = run_tool(
        &cli,
        &[
            "--store",
            db,
            "fork",
            &done.to_string(),
            "--unit",
            "notes",
            "--value",
            "\"forked notes\"",
        ],
    )
    .await;
    result.expect("forked");
    assert!(out.contains("FORKED-NOTES"), "{out}");
    let fork_id = out
        .lines()
        .find_map(|line| line.strip_prefix(&format!("forked run {done} as ")))
        .expect("the fork's id");
    let fork_id = RunId::named(fork_id).expect("an id");
    let rt = runtime(SqliteStore::open(&path).expect("open"), &fail);
    let again = digest::resume(&rt, fork_id).await;
    assert_eq!(again.report.status, RunStatus::Completed);
    assert!(
        again.report.steps_run().is_empty(),
        "the fork completed: all restored"
    );
    let original = store.load_run(done).await.expect("read").expect("a run");
    assert!(
        String::from_utf8_lossy(&original.steps[&("summary".to_owned(), 0)])
            .contains("NOTES-ON-RUST"),
        "the original run is untouched"
    );

    // Fork one element of the map: the others and `words` stay.
    let (result, out) = run_tool(
        &cli,
        &[
            "--store",
            db,
            "fork",
            &done.to_string(),
            "--unit",
            "loud#1",
            "--value",
            "\"in\"",
        ],
    )
    .await;
    result.expect("forked");
    assert!(out.contains("\"NOTES-in-RUST\""), "{out}");

    // Mistakes in a fork are refused before anything is recorded.
    let (result, _) = run_tool(
        &cli,
        &[
            "--store",
            db,
            "fork",
            &done.to_string(),
            "--unit",
            "nope",
            "--value",
            "1",
        ],
    )
    .await;
    let error = result.expect_err("no such key");
    assert!(
        error.contains("no step key `nope`") && error.contains("notes, words"),
        "{error}"
    );
    let (result, _) = run_tool(
        &cli,
        &[
            "--store",
            db,
            "fork",
            &done.to_string(),
            "--unit",
            "notes",
            "--value",
            "not json",
        ],
    )
    .await;
    assert!(
        result
            .expect_err("bad JSON")
            .contains("--value is not JSON")
    );

    let (result, graph) = run_tool(&cli, &["graph", "digest"]).await;
    result.expect("drawn");
    assert!(
        graph.starts_with("flowchart") || graph.contains("flowchart"),
        "{graph}"
    );
    let (result, dot) = run_tool(&cli, &["graph", "digest", "--dot"]).await;
    result.expect("drawn");
    assert!(dot.contains("digraph"), "{dot}");

    let html = dir.path().join("timeline.html");
    let html_path = html.to_str().expect("UTF-8");
    let (result, _) = run_tool(
        &cli,
        &["--store", db, "html", &done.to_string(), "-o", html_path],
    )
    .await;
    result.expect("written");
    let page = std::fs::read_to_string(&html).expect("the page");
    assert!(
        page.contains("<html") && page.contains("digest"),
        "an HTML timeline"
    );
    // A run that is not complete is not run just to be drawn.
    let (result, _) = run_tool(
        &cli,
        &["--store", db, "html", "left-running", "-o", html_path],
    )
    .await;
    let error = result.expect_err("not completed");
    assert!(
        error.contains("is running") && error.contains("resume left-running --html"),
        "{error}"
    );
}
