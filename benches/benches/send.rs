//! The producer's send path against the in-memory fake cluster, on a
//! single-threaded runtime, with heap allocations counted by a counting global
//! allocator: sync (1 in flight), 64 in flight, one-way, and a batch of 64.
//!
//! Run: `cargo bench -p rmq-benches --bench send`. The allocation counts are printed
//! before criterion runs; they include the fake broker's own work (it runs in the
//! same process), so they are an upper bound of the client's. Results:
//! docs/benchmarks.md.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rmq_producer::{Message, Producer};
use rmq_remoting::MemoryNetwork;
use rmq_testkit::fake::{FakeCluster, Transport};
use tokio::runtime::{Builder, Runtime};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY: delegates to the system allocator; only counts.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(layout.size() as u64, Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const TOPIC: &str = "BenchTopic";

fn setup(rt: &Runtime) -> (FakeCluster, Producer) {
    rt.block_on(async {
        let cluster = FakeCluster::builder()
            .brokers(["broker-a", "broker-b"])
            .transport(Transport::Memory(MemoryNetwork::new()))
            .topic(TOPIC, 4)
            .build()
            .await
            .unwrap();
        let producer = Producer::builder("bench_group")
            .namesrv(cluster.name_server_addr())
            .connector(cluster.connector())
            .build()
            .await
            .unwrap();
        producer
            .send(Message::new(TOPIC, vec![b'x'; 128]))
            .await
            .unwrap(); // warm routes and connections
        (cluster, producer)
    })
}

fn count<F: FnOnce()>(label: &str, sends: u64, f: F) {
    let (a0, b0) = (ALLOCS.load(Relaxed), BYTES.load(Relaxed));
    f();
    let (a, b) = (ALLOCS.load(Relaxed) - a0, BYTES.load(Relaxed) - b0);
    println!(
        "allocations {label}: {:.1} per send, {:.0} bytes per send",
        a as f64 / sends as f64,
        b as f64 / sends as f64
    );
}

fn sends(c: &mut Criterion) {
    let rt = Builder::new_current_thread().enable_all().build().unwrap();
    let (_cluster, producer) = setup(&rt);
    let body = bytes::Bytes::from(vec![b'x'; 128]);
    let one = |p: &Producer| {
        let p = p.clone();
        let body = body.clone();
        async move { p.send(Message::new(TOPIC, body)).await.unwrap() }
    };
    count("sync (1 in flight)", 1000, || {
        rt.block_on(async {
            for _ in 0..1000 {
                one(&producer).await;
            }
        })
    });
    count("64 in flight", 64 * 50, || {
        rt.block_on(async {
            for _ in 0..50 {
                let tasks: Vec<_> = (0..64).map(|_| tokio::spawn(one(&producer))).collect();
                for t in tasks {
                    t.await.unwrap();
                }
            }
        })
    });
    count("one-way", 1000, || {
        rt.block_on(async {
            for _ in 0..1000 {
                producer
                    .send_oneway(Message::new(TOPIC, body.clone()))
                    .await
                    .unwrap();
            }
        })
    });
    count("batch of 64 (per message)", 64 * 50, || {
        rt.block_on(async {
            for _ in 0..50 {
                let batch = (0..64).map(|_| Message::new(TOPIC, body.clone())).collect();
                for r in producer.send_batch(batch).await {
                    r.unwrap();
                }
            }
        })
    });

    let mut g = c.benchmark_group("producer_send_memory");
    g.throughput(Throughput::Elements(1));
    g.bench_function("sync_1_in_flight", |b| {
        b.to_async(&rt).iter(|| one(&producer))
    });
    g.throughput(Throughput::Elements(64));
    g.bench_function("64_in_flight", |b| {
        b.to_async(&rt).iter(|| async {
            let tasks: Vec<_> = (0..64).map(|_| tokio::spawn(one(&producer))).collect();
            for t in tasks {
                t.await.unwrap();
            }
        })
    });
    g.throughput(Throughput::Elements(1));
    g.bench_function("oneway", |b| {
        b.to_async(&rt)
            .iter(|| producer.send_oneway(Message::new(TOPIC, body.clone())))
    });
    g.throughput(Throughput::Elements(64));
    g.bench_function("batch_64", |b| {
        b.to_async(&rt).iter(|| async {
            let batch = (0..64).map(|_| Message::new(TOPIC, body.clone())).collect();
            producer.send_batch(batch).await
        })
    });
    g.finish();
}

criterion_group!(benches, sends);
criterion_main!(benches);
