//! Prints the benchmark figures, each as a ratio measured in the same run:
//!
//! ```text
//! cargo run --release -p prompt-chain-bench                    # everything but compile time
//! cargo run --release -p prompt-chain-bench -- overhead        # one section
//! cargo run --release -p prompt-chain-bench -- scale 100000    # one scale point
//! cargo run --release -p prompt-chain-bench -- durable 1000     # durable runs at scale
//! cargo run --release -p prompt-chain-bench -- compile-time    # build time of generated chains
//! ```
//!
//! Figures are printed, never asserted: machines here are shared and noisy.
//! See BENCHMARKS.md for the numbers and the machine they came from.

mod compile_time;
mod durable;
mod suspended;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use prompt_chain::{Runtime, events::Event};
use prompt_chain_bench::{
    SleepModel, diamond, diamond_by_hand, fan_out, fan_out_by_hand, hand5, hand50, map_asks,
    map_by_hand, review_llm, review_shape, review_shape_by_hand, seq5, seq50,
};

/// Median time per iteration of `body`, over `trials` trials of about `budget` each.
fn time_per_iteration<F, Fut>(
    tokio: &tokio::runtime::Runtime,
    trials: usize,
    budget: Duration,
    mut body: F,
) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    // Calibrate: how many iterations fit the budget.
    let mut iterations = 1u64;
    loop {
        let start = Instant::now();
        tokio.block_on(async {
            for _ in 0..iterations {
                body().await;
            }
        });
        if start.elapsed() >= budget / 4 || iterations >= 1 << 24 {
            break;
        }
        iterations *= 2;
    }
    let iterations = (iterations * 4).max(1);
    let mut samples: Vec<Duration> = (0..trials)
        .map(|_| {
            let start = Instant::now();
            tokio.block_on(async {
                for _ in 0..iterations {
                    body().await;
                }
            });
            start.elapsed() / iterations as u32
        })
        .collect();
    samples.sort();
    samples[samples.len() / 2]
}

fn ns(d: Duration) -> f64 {
    d.as_secs_f64() * 1e9
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a tokio runtime")
}

fn bare_runtime() -> Runtime {
    Runtime::builder()
        .history(0)
        .measure_output_size(false)
        .build()
}

fn overhead() {
    println!("## 1. Executor overhead (zero-latency steps, one thread)\n");
    let tokio = current_thread();
    let bare = bare_runtime();
    let default = Runtime::default();
    let budget = Duration::from_millis(400);
    let hand_5 = time_per_iteration(&tokio, 7, budget, || async {
        std::hint::black_box(hand5(1).await.ok());
    });
    let chain_5_bare = time_per_iteration(&tokio, 7, budget, || async {
        std::hint::black_box(seq5::run(&bare, seq5::Input { n0: 1 }).await.ok());
    });
    let chain_5 = time_per_iteration(&tokio, 7, budget, || async {
        std::hint::black_box(seq5::run(&default, seq5::Input { n0: 1 }).await.ok());
    });
    let hand_50 = time_per_iteration(&tokio, 7, budget, || async {
        std::hint::black_box(hand50(1).await.ok());
    });
    let chain_50_bare = time_per_iteration(&tokio, 7, budget, || async {
        std::hint::black_box(seq50::run(&bare, seq50::Input { n0: 1 }).await.ok());
    });
    let chain_50 = time_per_iteration(&tokio, 7, budget, || async {
        std::hint::black_box(seq50::run(&default, seq50::Input { n0: 1 }).await.ok());
    });
    println!(
        "| chain | hand-written | chain, bare runtime | chain, default runtime | ns/step bare | ns/step default | ratio bare/hand |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (name, steps, hand, bare_time, default_time) in [
        ("5 steps", 5.0, hand_5, chain_5_bare, chain_5),
        ("50 steps", 50.0, hand_50, chain_50_bare, chain_50),
    ] {
        println!(
            "| {name} | {:.0} ns | {:.0} ns | {:.0} ns | {:.0} | {:.0} | {:.1}× |",
            ns(hand),
            ns(bare_time),
            ns(default_time),
            (ns(bare_time) - ns(hand)) / steps,
            (ns(default_time) - ns(hand)) / steps,
            ns(bare_time) / ns(hand).max(1.0),
        );
    }
    println!(
        "\nA step that itself takes 1 µs (a cheap parse): chain 5 steps costs {:.2}× the hand-written version.\n",
        (ns(chain_5_bare) + 5000.0) / (ns(hand_5) + 5000.0)
    );
}

fn observation() {
    println!("## 4. Observation cost (5-step chain, ratios to the bare runtime)\n");
    let tokio = current_thread();
    let budget = Duration::from_millis(400);
    let bare = bare_runtime();
    let events = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&events);
    let observed = Runtime::builder()
        .history(0)
        .measure_output_size(false)
        .observer(move |_: &Event| {
            counter.fetch_add(1, Ordering::Relaxed);
        })
        .build();
    let sized = Runtime::builder().history(0).build();
    let default = Runtime::default();
    let base = time_per_iteration(&tokio, 7, budget, || async {
        std::hint::black_box(seq5::run(&bare, seq5::Input { n0: 1 }).await.ok());
    });
    let with_sizes = time_per_iteration(&tokio, 7, budget, || async {
        std::hint::black_box(seq5::run(&sized, seq5::Input { n0: 1 }).await.ok());
    });
    let with_default = time_per_iteration(&tokio, 7, budget, || async {
        std::hint::black_box(seq5::run(&default, seq5::Input { n0: 1 }).await.ok());
    });
    let with_observer = time_per_iteration(&tokio, 7, budget, || async {
        std::hint::black_box(seq5::run(&observed, seq5::Input { n0: 1 }).await.ok());
    });
    let with_stream = time_per_iteration(&tokio, 7, budget, || async {
        let (mut stream, run) = seq5::execute_with_events(&bare, seq5::Input { n0: 1 });
        let outcome = run.await;
        while let Some(event) = stream.next().await {
            std::hint::black_box(event);
        }
        std::hint::black_box(outcome.result.ok());
    });
    let db = std::env::temp_dir().join(format!("prompt-chain-bench-{}.db", std::process::id()));
    let store = prompt_chain::store::SqliteStore::open(&db).expect("a SQLite store");
    let durable = Runtime::builder()
        .history(0)
        .measure_output_size(false)
        .checkpoints(store)
        .build();
    let sqlite_tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let with_sqlite = time_per_iteration(&sqlite_tokio, 3, budget, || async {
        std::hint::black_box(seq5::run(&durable, seq5::Input { n0: 1 }).await.ok());
    });
    let _ = std::fs::remove_file(&db);
    let subscriber = tracing_subscriber::fmt()
        .with_writer(std::io::sink)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let with_tracing = tracing::subscriber::with_default(subscriber, || {
        time_per_iteration(&tokio, 7, budget, || async {
            std::hint::black_box(seq5::run(&bare, seq5::Input { n0: 1 }).await.ok());
        })
    });
    println!("| configuration | per run | ratio |");
    println!("|---|---|---|");
    for (name, time) in [
        ("bare (no history, no output sizes)", base),
        ("+ output sizes", with_sizes),
        ("default runtime (+ history of 100 reports)", with_default),
        ("bare + an observer (every event)", with_observer),
        ("bare + an event stream, drained", with_stream),
        ("bare + tracing to a fmt subscriber (INFO)", with_tracing),
        (
            "bare + SQLite checkpoints (a synced commit per step)",
            with_sqlite,
        ),
    ] {
        println!(
            "| {name} | {:.0} ns | {:.2}× |",
            ns(time),
            ns(time) / ns(base)
        );
    }
    println!();
}

fn median_wall<F: Future<Output = u64>>(
    tokio: &tokio::runtime::Runtime,
    mut run: impl FnMut() -> F,
) -> Duration {
    let mut samples: Vec<Duration> = (0..7)
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(tokio.block_on(run()));
            start.elapsed()
        })
        .collect();
    samples.sort();
    samples[3]
}

/// Map steps: wall time over the ideal at 10 ms per call, and the cost per
/// element against `buffer_unordered` of the same calls at zero latency.
fn map_section() {
    println!("## Map steps (10,000 elements, concurrency 64, 2 worker threads)\n");
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("a tokio runtime");
    let texts: Vec<String> = (0..10_000).map(|i| format!("t{i}")).collect();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let latency = Duration::from_millis(10);
    // The map step and the hand-written stream on the same model, same run.
    let walls = |model: SleepModel| {
        let rt = Runtime::builder().model(model).build();
        let wall = median_wall(&tokio, || async {
            let input = map_asks::Input {
                texts: texts.clone(),
            };
            map_asks::run(&rt, input)
                .await
                .map_or(0, |v| v.len() as u64)
        });
        let hand = median_wall(&tokio, || async {
            map_by_hand(&model, &texts).await.len() as u64
        });
        (wall, hand)
    };
    let rounds = 10_000u32.div_ceil(64);
    let ideal = latency * rounds;
    let model = SleepModel { latency };
    // What one round of 64 calls takes on this timer, measured alone: tokio
    // rounds each sleep up to its next millisecond tick, so a "10 ms" call
    // takes 10–11 ms whoever makes it.
    let one_round = median_wall(&tokio, || async {
        map_by_hand(&model, &texts[..64]).await.len() as u64
    });
    let observed = one_round * rounds;
    let (wall, hand) = walls(model);
    println!(
        "One round of 64 calls alone: {:.2} ms, so ceil(N/c) rounds of the model's observed latency take {:.1} ms.\n",
        ms(one_round),
        ms(observed)
    );
    println!(
        "| 10 ms per call | wall | ideal ceil(N/c) × 10 ms | wall / ideal | wall / (ceil(N/c) × observed round) |"
    );
    println!("|---|---|---|---|---|");
    for (name, took) in [("map step", wall), ("`buffer_unordered(64)` by hand", hand)] {
        println!(
            "| {name} | {:.1} ms | {:.1} ms | {:.3} | {:.3} |",
            ms(took),
            ms(ideal),
            took.as_secs_f64() / ideal.as_secs_f64(),
            took.as_secs_f64() / observed.as_secs_f64()
        );
    }
    println!();
    let (wall, hand) = walls(SleepModel {
        latency: Duration::ZERO,
    });
    // An element not yet started has no future: its slot in the results,
    // its row in the report and its index in the waiting list.
    let slot = std::mem::size_of::<Option<Result<String, prompt_chain::ItemError>>>();
    let row = std::mem::size_of::<prompt_chain::report::ItemRecord>();
    let index = std::mem::size_of::<usize>();
    println!(
        "An element not yet started: {slot} bytes (its result slot, `String` output) + {row} (its report row) + {index} (its index) = {} bytes, no future.\n",
        slot + row + index
    );
    let per = |d: Duration| d.as_secs_f64() * 1e9 / 10_000.0;
    println!("| zero latency | per element | |");
    println!("|---|---|---|");
    println!("| map step | {:.0} ns | |", per(wall));
    println!("| `buffer_unordered(64)` by hand | {:.0} ns | |", per(hand));
    println!(
        "| ratio (same run) | {:.2}× | target ≤ 1.5× |\n",
        wall.as_secs_f64() / hand.as_secs_f64()
    );
}

fn wall_time() {
    println!("## 2. Dataflow wall time (real time, median of 7 runs, 2 worker threads)\n");
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("a tokio runtime");
    let rt = bare_runtime();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "| chain | critical path | chain wall | hand-written (`tokio::join!`) wall | chain / critical path | chain − hand-written | level-by-level would take |"
    );
    println!("|---|---|---|---|---|---|---|");
    let rows = [
        (
            "diamond",
            180,
            180,
            median_wall(&tokio, || async {
                diamond::run(&rt, diamond::Input { x: 1 })
                    .await
                    .unwrap_or(0)
            }),
            median_wall(&tokio, || diamond_by_hand(1)),
        ),
        (
            "code-review shape",
            230,
            230,
            median_wall(&tokio, || async {
                review_shape::run(&rt, review_shape::Input { diff: 1 })
                    .await
                    .unwrap_or(0)
            }),
            median_wall(&tokio, || review_shape_by_hand(1)),
        ),
        (
            "16 uneven branches + follow-ups",
            170,
            320,
            median_wall(&tokio, || async {
                fan_out::run(&rt, fan_out::Input { x: 1 })
                    .await
                    .unwrap_or(0)
            }),
            median_wall(&tokio, || fan_out_by_hand(1)),
        ),
    ];
    for (name, critical, by_levels, chain, hand) in rows {
        println!(
            "| {name} | {critical} ms | {:.2} ms | {:.2} ms | {:.4} | {:+.2} ms | {by_levels} ms |",
            ms(chain),
            ms(hand),
            ms(chain) / critical as f64,
            ms(chain) - ms(hand),
        );
    }
    println!(
        "\n(tokio's timer has 1 ms resolution: each sleep ends on the next millisecond tick, so every level of a path can add up to 1 ms, by hand or not.)\n"
    );
}

/// Resident set size in bytes, from /proc (Linux).
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * 4096)
}

fn scale(points: &[usize]) {
    println!("## 3. Scale (code-review chain, 5 model calls of 50 ms each, 2 worker threads)\n");
    println!("| concurrent runs | wall | steps/s | peak RSS | RSS per in-flight run |");
    println!("|---|---|---|---|---|");
    for &n in points {
        let tokio = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_time()
            .build()
            .expect("a tokio runtime");
        let rt = Runtime::builder()
            .model(SleepModel {
                latency: Duration::from_millis(50),
            })
            .history(0)
            .build();
        let baseline = rss_bytes();
        let peak = Arc::new(AtomicU64::new(baseline));
        let done = Arc::new(AtomicBool::new(false));
        let sampler = {
            let peak = Arc::clone(&peak);
            let done = Arc::clone(&done);
            std::thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    peak.fetch_max(rss_bytes(), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(2));
                }
            })
        };
        let start = Instant::now();
        let completed = tokio.block_on(async {
            let handles: Vec<_> = (0..n)
                .map(|i| {
                    let rt = rt.clone();
                    tokio::spawn(async move {
                        review_llm::run(
                            &rt,
                            review_llm::Input {
                                diff: format!("diff {i}"),
                            },
                        )
                        .await
                        .is_ok()
                    })
                })
                .collect();
            let mut completed = 0usize;
            for handle in handles {
                if matches!(handle.await, Ok(true)) {
                    completed += 1;
                }
            }
            completed
        });
        let wall = start.elapsed();
        done.store(true, Ordering::Relaxed);
        let _ = sampler.join();
        let peak = peak.load(Ordering::Relaxed).max(rss_bytes());
        println!(
            "| {n} | {:.2} s | {:.0} | {:.1} MiB | {:.1} KiB |",
            wall.as_secs_f64(),
            (completed * 5) as f64 / wall.as_secs_f64(),
            peak as f64 / (1024.0 * 1024.0),
            peak.saturating_sub(baseline) as f64 / 1024.0 / n as f64,
        );
        if completed != n {
            println!("  ({} of {n} runs failed)", n - completed);
        }
    }
    println!();
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    println!(
        "prompt-chain benchmarks: {} logical CPUs, {}\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        if cfg!(debug_assertions) {
            "DEBUG BUILD (use --release)"
        } else {
            "release build"
        }
    );
    match args.first().map(String::as_str) {
        None => {
            overhead();
            wall_time();
            scale(&[1_000, 10_000, 100_000]);
            observation();
            map_section();
        }
        Some("overhead") => overhead(),
        Some("wall") => wall_time(),
        Some("observation") => observation(),
        Some("map") => map_section(),
        Some("scale") => {
            let points: Vec<usize> = args[1..].iter().filter_map(|a| a.parse().ok()).collect();
            scale(if points.is_empty() {
                &[1_000, 10_000, 100_000]
            } else {
                &points
            });
        }
        Some("compile-time") => compile_time::run(),
        Some("durable") => {
            let points: Vec<usize> = args[1..].iter().filter_map(|a| a.parse().ok()).collect();
            durable::run(if points.is_empty() {
                &[100, 1_000, 10_000]
            } else {
                &points
            });
        }
        Some("suspended") => {
            let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
            suspended::run(n, rss_bytes);
        }
        Some("sizes") => {
            let rt = Runtime::default();
            let review = review_llm::run(
                &rt,
                review_llm::Input {
                    diff: String::new(),
                },
            );
            let five = seq5::run(&rt, seq5::Input { n0: 1 });
            println!(
                "future sizes: code-review chain {} bytes, 5-step chain {} bytes",
                std::mem::size_of_val(&review),
                std::mem::size_of_val(&five)
            );
        }
        Some("profile") => {
            // A fixed workload for `valgrind --tool=callgrind`: N runs of the 50-step chain.
            let n: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(200);
            let tokio = current_thread();
            let rt = bare_runtime();
            tokio.block_on(async {
                for _ in 0..n {
                    std::hint::black_box(seq50::run(&rt, seq50::Input { n0: 1 }).await.ok());
                }
            });
        }
        Some("profile-map") => {
            // A fixed workload for `valgrind --tool=callgrind`: one map step
            // over N elements at zero latency, or with `hand`, the same calls
            // through `buffer_unordered(64)`.
            let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10_000);
            let hand = args.get(2).is_some_and(|a| a == "hand");
            let tokio = current_thread();
            let model = SleepModel {
                latency: Duration::ZERO,
            };
            let texts: Vec<String> = (0..n).map(|i| format!("t{i}")).collect();
            let rt = Runtime::builder().model(model).build();
            tokio.block_on(async {
                if hand {
                    std::hint::black_box(map_by_hand(&model, &texts).await);
                } else {
                    let input = map_asks::Input { texts };
                    std::hint::black_box(map_asks::run(&rt, input).await.ok());
                }
            });
        }
        Some(other) => {
            eprintln!(
                "unknown section `{other}`: overhead, wall, scale [N...], observation, map, durable [N...], suspended [N], compile-time"
            );
            std::process::exit(2);
        }
    }
}
