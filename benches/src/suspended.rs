//! Section 7: many runs suspended on a human step in one SQLite file. A
//! suspended run must hold no task and no memory in the process; listing
//! what they wait for and resuming one on its answer must stay quick.

use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use prompt_chain::prelude::*;
use prompt_chain::schemars::JsonSchema;
use prompt_chain::store::SqliteStore;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(crate = "prompt_chain::schemars")]
struct Approval {
    approved: bool,
}

#[step]
async fn plan(_cx: &StepCx, ticket: &str) -> StepResult<u32> {
    Ok(ticket.len() as u32 * 10)
}

#[step]
async fn settle(_cx: &StepCx, amount: &u32, approval: &Approval) -> StepResult<String> {
    Ok(format!("{amount}: {}", approval.approved))
}

#[chain]
async fn refund(ticket: String) -> String {
    step!(amount = plan(ticket));
    step!(approval: Approval = human(amount), prompt = "Refund it?", wait = 48h);
    step!(outcome = settle(amount, approval));
    outcome
}

/// Runs started at once while filling the file.
const IN_FLIGHT: usize = 64;

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Suspends `n` runs, then lists them, then answers some.
pub(crate) fn run(n: usize, rss: fn() -> u64) {
    println!("## 7. Suspended runs ({n} runs waiting on a human step, one SQLite file)\n");
    // The file lives on tmpfs when there is one: filling it is `n` × 4
    // durable writes, and what is measured here is holding, listing and
    // resuming, not the disk's fsync (`PROMPT_CHAIN_BENCH_DIR` puts it
    // elsewhere).
    let base = if let Some(dir) = std::env::var_os("PROMPT_CHAIN_BENCH_DIR") {
        std::path::PathBuf::from(dir)
    } else if std::path::Path::new("/dev/shm").is_dir() {
        std::path::PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!("prompt-chain-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(error) = std::fs::create_dir_all(&dir) {
        eprintln!("cannot create {}: {error}", dir.display());
        return;
    }
    let db = dir.join("runs.db");
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a tokio runtime");
    let store = SqliteStore::open(&db).expect("a SQLite store");
    let rt = Runtime::builder().checkpoints(store).history(0).build();
    tokio.block_on(async {
        // Warm up: one run suspended and answered, so the baseline has the
        // store's connection, statements and the allocator's arenas.
        let warm = refund::execute(&rt, input(0)).await.report.run_id;
        let _ = refund::answer::approval(&rt, warm, Approval { approved: true }).await;
        let before = rss();
        let filling = Instant::now();
        let mut rss_tenth = 0;
        let mut started = 0;
        let mut running = FuturesUnordered::new();
        let mut suspended = 0usize;
        while started < n || !running.is_empty() {
            while started < n && running.len() < IN_FLIGHT {
                started += 1;
                running.push(refund::execute(&rt, input(started)));
            }
            if let Some(outcome) = running.next().await
                && outcome.report.status == prompt_chain::report::RunStatus::Suspended
            {
                suspended += 1;
                if suspended == n / 10 {
                    rss_tenth = rss();
                }
            }
        }
        let filled = filling.elapsed();
        let after = rss();
        println!("| measure | value |");
        println!("|---|---|");
        println!(
            "| runs suspended | {suspended} in {:.1} s ({:.0} runs/s) |",
            filled.as_secs_f64(),
            suspended as f64 / filled.as_secs_f64()
        );
        println!(
            "| process RSS: before / at {} / at {suspended} suspended | {:.1} / {:.1} / {:.1} MiB |",
            n / 10,
            mib(before),
            mib(rss_tenth),
            mib(after)
        );
        println!(
            "| RSS growth from {} to {suspended} suspended runs | {:.1} MiB ({:.1} bytes per run) |",
            n / 10,
            mib(after.saturating_sub(rss_tenth)),
            after.saturating_sub(rss_tenth) as f64 / (suspended - n / 10).max(1) as f64
        );
        let listing = Instant::now();
        let waiting = rt.waiting().await.expect("listed");
        let listed = listing.elapsed();
        println!(
            "| list what they wait for (`rt.waiting()`) | {} questions in {:.0} ms |",
            waiting.len(),
            listed.as_secs_f64() * 1000.0
        );
        let answers = waiting.len().min(1_000);
        let mut slowest = Duration::ZERO;
        let answering = Instant::now();
        for question in waiting.iter().take(answers) {
            let one = Instant::now();
            let outcome = refund::answer::approval(&rt, question.run_id, Approval { approved: true })
                .await
                .expect("taken");
            assert!(outcome.result.is_ok(), "the run completes");
            slowest = slowest.max(one.elapsed());
        }
        let answered = answering.elapsed();
        println!(
            "| answer → run completed, one run at a time | {:.2} ms mean, {:.2} ms slowest (of {answers}) |",
            answered.as_secs_f64() * 1000.0 / answers.max(1) as f64,
            slowest.as_secs_f64() * 1000.0
        );
        println!("| RSS after answering | {:.1} MiB |", mib(rss()));
        let size = std::fs::metadata(&db).map_or(0, |meta| meta.len());
        println!(
            "| database file | {:.1} MiB ({:.0} bytes per run) |\n",
            mib(size),
            size as f64 / (suspended + 1) as f64
        );
    });
    drop(rt);
    let _ = std::fs::remove_dir_all(&dir);
}

fn input(i: usize) -> refund::Input {
    refund::Input {
        ticket: format!("T-{i}"),
    }
}
