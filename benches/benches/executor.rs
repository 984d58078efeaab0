//! Executor overhead: chains of zero-latency steps against the same work as
//! plain async calls. `cargo bench -p prompt-chain-bench`.

use criterion::{Criterion, criterion_main};
use prompt_chain::Runtime;
use prompt_chain_bench::{hand5, hand50, seq5, seq50};

fn overhead(c: &mut Criterion) {
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a tokio runtime");
    let default_rt = Runtime::default();
    let bare_rt = Runtime::builder()
        .history(0)
        .measure_output_size(false)
        .build();

    let mut group = c.benchmark_group("sequential");
    group.bench_function("hand-written 5 steps", |b| {
        b.to_async(&tokio)
            .iter(|| async { hand5(1).await.expect("runs") });
    });
    group.bench_function("chain 5 steps (bare runtime)", |b| {
        b.to_async(&tokio).iter(|| async {
            seq5::run(&bare_rt, seq5::Input { n0: 1 })
                .await
                .expect("runs")
        });
    });
    group.bench_function("chain 5 steps (default runtime)", |b| {
        b.to_async(&tokio).iter(|| async {
            seq5::run(&default_rt, seq5::Input { n0: 1 })
                .await
                .expect("runs")
        });
    });
    group.bench_function("hand-written 50 steps", |b| {
        b.to_async(&tokio)
            .iter(|| async { hand50(1).await.expect("runs") });
    });
    group.bench_function("chain 50 steps (bare runtime)", |b| {
        b.to_async(&tokio).iter(|| async {
            seq50::run(&bare_rt, seq50::Input { n0: 1 })
                .await
                .expect("runs")
        });
    });
    group.bench_function("chain 50 steps (default runtime)", |b| {
        b.to_async(&tokio).iter(|| async {
            seq50::run(&default_rt, seq50::Input { n0: 1 })
                .await
                .expect("runs")
        });
    });
    group.finish();
}

// criterion_group! generates an undocumented `pub fn benches`.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::overhead);
}

criterion_main!(group::benches);
