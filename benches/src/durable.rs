//! Section 8: durable runs at scale. The code-review chain (5 model calls of
//! 50 ms each) at N concurrent runs, with a `SqliteStore` and without one,
//! side by side: checkpointed steps per second and the wall-time ratio.

use std::time::{Duration, Instant};

use prompt_chain::Runtime;
use prompt_chain::store::{Durability, SqliteStore};
use prompt_chain_bench::{SleepModel, review_llm};

/// Runs `n` code reviews at once on `rt`; returns the wall time and how many completed.
fn run_all(rt: &Runtime, n: usize) -> (Duration, usize) {
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let start = Instant::now();
    let completed = tokio.block_on(async {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let rt = rt.clone();
                tokio::spawn(async move {
                    let input = review_llm::Input {
                        diff: format!("diff {i}"),
                    };
                    review_llm::run(&rt, input).await.is_ok()
                })
            })
            .collect();
        let mut completed = 0;
        for handle in handles {
            completed += usize::from(matches!(handle.await, Ok(true)));
        }
        completed
    });
    (start.elapsed(), completed)
}

fn runtime() -> prompt_chain::RuntimeBuilder {
    Runtime::builder()
        .model(SleepModel {
            latency: Duration::from_millis(50),
        })
        .history(0)
}

/// Runs `n` reviews durably in `mode` on a fresh SQLite file.
fn durable(n: usize, mode: Durability) -> (Duration, usize) {
    let db = std::env::temp_dir().join(format!(
        "prompt-chain-bench-durable-{}-{n}.db",
        std::process::id()
    ));
    let store = SqliteStore::open(&db).expect("a SQLite store");
    let measured = run_all(&runtime().checkpoints(store).durability(mode).build(), n);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    measured
}

/// Prints the section for each number of concurrent runs.
pub(crate) fn run(points: &[usize]) {
    println!(
        "## 8. Durable runs at scale (code-review chain, 5 model calls of 50 ms, SqliteStore, 2 worker threads)\n"
    );
    println!(
        "Each cell: wall time, checkpointed steps/s, wall time over the same runs with no store.\n"
    );
    println!("| concurrent runs | no store | `Sync` (default) | `batched(10ms)` | `Exit` |");
    println!("|---|---|---|---|---|");
    let modes = [
        Durability::Sync,
        Durability::batched(Duration::from_millis(10)),
        Durability::Exit,
    ];
    for &n in points {
        let (bare, bare_done) = run_all(&runtime().build(), n);
        let mut cells = Vec::new();
        for mode in modes {
            let (wall, done) = durable(n, mode);
            cells.push(format!(
                "{:.2} s, {:.0}/s, {:.2}×",
                wall.as_secs_f64(),
                (done * 5) as f64 / wall.as_secs_f64(),
                wall.as_secs_f64() / bare.as_secs_f64(),
            ));
            if done != n {
                cells.push(format!("({done} of {n} completed)"));
            }
        }
        println!(
            "| {n} | {:.2} s | {} |",
            bare.as_secs_f64(),
            cells.join(" | ")
        );
        if bare_done != n {
            println!("  ({bare_done} of {n} runs without a store completed)");
        }
    }
    println!();
}
