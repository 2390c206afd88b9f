//! Queue selection micro-benchmarks: `select_index` over 3 brokers × 8 queues with
//! the default strategy (all healthy; one broker isolated; all isolated), one
//! `on_result`, and selection + report from 8 threads sharing one strategy.
//!
//! Run: `cargo bench -p rmq-fault --bench select`.

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use rmq_fault::{AttemptReport, FaultStrategy, LatencyFaultStrategy, Outcome, select_index};

const THREADS: usize = 8;

fn queues() -> Vec<String> {
    ["broker-a", "broker-b", "broker-c"]
        .iter()
        .flat_map(|b| std::iter::repeat_n(b.to_string(), 8))
        .collect()
}

fn isolate(strategy: &LatencyFaultStrategy, broker: &str, now: Instant) {
    let report = AttemptReport::new(Duration::from_millis(1), Outcome::ConnectError);
    strategy.on_result(broker, report, now);
}

fn bench_select(c: &mut Criterion) {
    let q = queues();
    let now = Instant::now();
    let mut group = c.benchmark_group("select_index/3x8");

    let cases: [(&str, &[&str]); 3] = [
        ("healthy", &[]),
        ("one_isolated", &["broker-b"]),
        ("all_isolated", &["broker-a", "broker-b", "broker-c"]),
    ];
    for (name, isolated) in cases {
        let strategy = LatencyFaultStrategy::default();
        for broker in isolated {
            isolate(&strategy, broker, now);
        }
        let mut start = 0u32;
        group.bench_function(name, |b| {
            b.iter(|| {
                start = start.wrapping_add(1);
                black_box(select_index(
                    q.len(),
                    black_box(start),
                    |i| q[i].as_str(),
                    &strategy,
                    None,
                    now,
                ))
            })
        });
    }
    group.finish();

    let strategy = LatencyFaultStrategy::default();
    c.bench_function("on_result/success", |b| {
        b.iter(|| {
            strategy.on_result(
                black_box("broker-a"),
                AttemptReport::success(Duration::from_millis(3)),
                now,
            )
        })
    });
}

/// Each of 8 threads selects a queue and reports a result, `iters` times;
/// the time is the slowest thread's.
fn bench_contention(c: &mut Criterion) {
    let q = Arc::new(queues());
    let now = Instant::now();
    c.bench_function("select+report/8_threads", |b| {
        b.iter_custom(|iters| {
            let strategy: Arc<dyn FaultStrategy> = Arc::new(LatencyFaultStrategy::default());
            strategy.on_result(
                "broker-b",
                AttemptReport::new(Duration::ZERO, Outcome::ConnectError),
                now,
            );
            let barrier = Arc::new(Barrier::new(THREADS));
            let workers: Vec<_> = (0..THREADS)
                .map(|t| {
                    let (q, strategy, barrier) =
                        (Arc::clone(&q), Arc::clone(&strategy), Arc::clone(&barrier));
                    thread::spawn(move || {
                        barrier.wait();
                        let began = Instant::now();
                        for i in 0..iters {
                            let start = (i as u32).wrapping_mul(7).wrapping_add(t as u32);
                            let pick = select_index(
                                q.len(),
                                start,
                                |i| q[i].as_str(),
                                &*strategy,
                                None,
                                now,
                            );
                            if let Some(index) = pick {
                                let report = AttemptReport::success(Duration::from_millis(2));
                                strategy.on_result(&q[index], report, now);
                            }
                        }
                        began.elapsed()
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().unwrap_or_default())
                .max()
                .unwrap_or_default()
        })
    });
}

criterion_group!(benches, bench_select, bench_contention);
criterion_main!(benches);
