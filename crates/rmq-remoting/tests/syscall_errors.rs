//! Row C11 of the reliability matrix: syscall errors on send and receive (EPIPE,
//! ECONNRESET, EAGAIN storms). The matrix suggests libfiu's `fiu-run`; it is not on
//! the build machines, so the same errors are injected one layer up, in the stream
//! the connector hands to the transport: `poll_write` / `poll_read` return exactly
//! what a socket returns after those syscalls fail (`BrokenPipe`, `ConnectionReset`,
//! or `Pending` for EAGAIN — tokio turns EAGAIN into "not ready, wait for the next
//! readiness event"). Pass criterion: each maps to a transport error with the right
//! delivery classification, the connection is replaced, and nothing busy-loops
//! (polls are counted: a storm of N spurious wake-ups costs about N polls, and an
//! EAGAIN that never clears costs a handful, not a spin).

mod common;

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use common::{after, call_ok, finish, memory_cluster, pool, send};
use rmq_remoting::{BoxFuture, BoxStream, Connector, Delivery, RemotingError};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What the next syscalls on the connector's streams return.
#[derive(Debug, Default)]
struct Faults {
    /// The next `poll_write` fails with this (once).
    write_error: Mutex<Option<io::ErrorKind>>,
    /// The next `poll_read` fails with this (and every later one: a reset socket stays
    /// reset).
    read_error: Mutex<Option<io::ErrorKind>>,
    /// Reads return EAGAIN (`Pending`, readiness consumed, no wake-up) until cleared.
    read_eagain: AtomicBool,
    /// The reader parked by `read_eagain`, woken when it is cleared.
    parked: Mutex<Option<Waker>>,
    /// This many reads return EAGAIN with a spurious readiness event right after
    /// (`Pending` + an immediate wake-up): an EAGAIN storm.
    read_storm: AtomicUsize,
    /// The same for writes.
    write_storm: AtomicUsize,
    read_polls: AtomicUsize,
    write_polls: AtomicUsize,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Faults {
    fn clear_eagain(&self) {
        self.read_eagain.store(false, Ordering::SeqCst);
        if let Some(w) = lock(&self.parked).take() {
            w.wake();
        }
    }

    fn reads(&self) -> usize {
        self.read_polls.load(Ordering::SeqCst)
    }

    fn writes(&self) -> usize {
        self.write_polls.load(Ordering::SeqCst)
    }
}

/// Takes one unit of a storm counter, if any is left.
fn take_one(n: &AtomicUsize) -> bool {
    n.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1))
        .is_ok()
}

struct FaultyStream {
    inner: BoxStream,
    faults: Arc<Faults>,
}

impl AsyncRead for FaultyStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let f = self.faults.clone();
        f.read_polls.fetch_add(1, Ordering::SeqCst);
        if let Some(kind) = *lock(&f.read_error) {
            return Poll::Ready(Err(io::Error::from(kind)));
        }
        if f.read_eagain.load(Ordering::SeqCst) {
            *lock(&f.parked) = Some(cx.waker().clone());
            return Poll::Pending;
        }
        if take_one(&f.read_storm) {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for FaultyStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let f = self.faults.clone();
        f.write_polls.fetch_add(1, Ordering::SeqCst);
        if let Some(kind) = lock(&f.write_error).take() {
            return Poll::Ready(Err(io::Error::from(kind)));
        }
        if take_one(&f.write_storm) {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Wraps every stream of an inner connector in a [`FaultyStream`] sharing one
/// [`Faults`].
#[derive(Debug)]
struct FaultyConnector {
    inner: Arc<dyn Connector>,
    faults: Arc<Faults>,
    dials: AtomicUsize,
}

impl Connector for FaultyConnector {
    fn connect<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, io::Result<BoxStream>> {
        self.dials.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            let inner = self.inner.connect(addr).await?;
            Ok(Box::new(FaultyStream {
                inner,
                faults: self.faults.clone(),
            }) as BoxStream)
        })
    }
}

async fn setup() -> (
    rmq_testkit::fake::FakeCluster,
    rmq_remoting::Pool,
    Arc<FaultyConnector>,
    String,
) {
    let (cluster, net) = memory_cluster(&["broker-a"]).await;
    let addr = cluster.brokers()[0].addr().to_owned();
    let connector = Arc::new(FaultyConnector {
        inner: Arc::new(net),
        faults: Arc::default(),
        dials: AtomicUsize::new(0),
    });
    let pool = pool(connector.clone());
    (cluster, pool, connector, addr)
}

const DEADLINE: Duration = Duration::from_secs(3);

#[tokio::test(start_paused = true)]
async fn c11_epipe_on_write_is_a_not_sent_transport_error_and_the_connection_is_replaced() {
    let (cluster, pool, conn, addr) = setup().await;
    call_ok(&pool, &addr, "warm").await;
    assert_eq!(conn.dials.load(Ordering::SeqCst), 1);

    *lock(&conn.faults.write_error) = Some(io::ErrorKind::BrokenPipe);
    let e = pool
        .invoke_at(&addr, send("epipe"), after(DEADLINE))
        .await
        .unwrap_err();
    assert!(matches!(e, RemotingError::ConnectionClosed { .. }), "{e:?}");
    assert_eq!(
        e.delivery(),
        Delivery::NotSent,
        "EPIPE before any byte: {e}"
    );
    assert!(
        e.to_string().to_lowercase().contains("pipe"),
        "says what happened: {e}"
    );

    // The next call dials a new connection and succeeds.
    call_ok(&pool, &addr, "after epipe").await;
    assert_eq!(conn.dials.load(Ordering::SeqCst), 2);
    let stored = cluster.brokers()[0].messages_for(common::TOPIC);
    assert!(
        stored
            .iter()
            .all(|m| m.uniq_key.as_deref() != Some("epipe")),
        "a NotSent request was never stored"
    );
    finish(&pool, Some(&cluster)).await;
}

#[tokio::test(start_paused = true)]
async fn c11_econnreset_on_read_after_the_write_is_indeterminate_and_the_connection_is_replaced() {
    let (cluster, pool, conn, addr) = setup().await;
    call_ok(&pool, &addr, "warm").await;

    // The request is written whole; the read of its answer fails with ECONNRESET.
    *lock(&conn.faults.read_error) = Some(io::ErrorKind::ConnectionReset);
    let e = pool
        .invoke_at(&addr, send("reset"), after(DEADLINE))
        .await
        .unwrap_err();
    assert!(matches!(e, RemotingError::ConnectionClosed { .. }), "{e:?}");
    assert_eq!(
        e.delivery(),
        Delivery::Indeterminate,
        "written, then reset: {e}"
    );
    let reads_at_error = conn.faults.reads();

    *lock(&conn.faults.read_error) = None;
    call_ok(&pool, &addr, "after reset").await;
    assert_eq!(conn.dials.load(Ordering::SeqCst), 2, "a new connection");
    // The reset connection was not polled again and again after its error.
    assert!(
        conn.faults.reads() - reads_at_error < 20,
        "{} reads after the reset",
        conn.faults.reads() - reads_at_error
    );
    finish(&pool, Some(&cluster)).await;
}

/// EAGAIN that does not clear: the driver waits for readiness instead of spinning.
/// Real time, not paused: a spinning driver would keep a paused runtime from ever
/// advancing its clock, and the poll count below is the evidence either way.
#[tokio::test]
async fn c11_eagain_that_never_clears_costs_a_few_polls_not_a_busy_loop() {
    let (cluster, pool, conn, addr) = setup().await;
    call_ok(&pool, &addr, "warm").await;

    conn.faults.read_eagain.store(true, Ordering::SeqCst);
    let before = conn.faults.reads();
    let e = pool
        .invoke_at(
            &addr,
            send("eagain"),
            tokio::time::Instant::now() + Duration::from_millis(300),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, RemotingError::Timeout { .. }), "{e:?}");
    assert_eq!(e.delivery(), Delivery::Indeterminate);
    let polls = conn.faults.reads() - before;
    println!("EAGAIN for 300 ms: {polls} read polls");
    assert!(
        polls < 50,
        "{polls} read polls in 300 ms of EAGAIN: a busy loop"
    );

    // Readiness comes back: the late answer is read and dropped, the same connection
    // serves the next call.
    conn.faults.clear_eagain();
    call_ok(&pool, &addr, "after eagain").await;
    assert_eq!(
        conn.dials.load(Ordering::SeqCst),
        1,
        "the connection survived"
    );
    assert!(pool.stats().late_replies >= 1, "{:?}", pool.stats());
    finish(&pool, Some(&cluster)).await;
}

/// A storm of spurious readiness events (EAGAIN after each): every call still
/// completes, and the transport does not amplify the storm (about one poll per event).
#[tokio::test(start_paused = true)]
async fn c11_eagain_storms_on_read_and_write_are_ridden_out_without_amplification() {
    const STORM: usize = 10_000;
    let (cluster, pool, conn, addr) = setup().await;
    call_ok(&pool, &addr, "warm").await;

    let (reads, writes) = (conn.faults.reads(), conn.faults.writes());
    conn.faults.read_storm.store(STORM, Ordering::SeqCst);
    conn.faults.write_storm.store(STORM, Ordering::SeqCst);
    for i in 0..20 {
        call_ok(&pool, &addr, &format!("storm {i}")).await;
    }
    assert_eq!(
        conn.faults.read_storm.load(Ordering::SeqCst),
        0,
        "the storm ran"
    );
    assert_eq!(conn.faults.write_storm.load(Ordering::SeqCst), 0);
    let (r, w) = (conn.faults.reads() - reads, conn.faults.writes() - writes);
    println!("storm of {STORM} + {STORM}: {r} read polls, {w} write polls for 20 calls");
    assert!(
        r < STORM + 200,
        "{r} read polls for {STORM} spurious wake-ups"
    );
    assert!(
        w < STORM + 200,
        "{w} write polls for {STORM} spurious wake-ups"
    );
    assert_eq!(conn.dials.load(Ordering::SeqCst), 1, "no reconnect");
    assert_eq!(
        cluster.brokers()[0].messages_for(common::TOPIC).len(),
        21,
        "every request stored once"
    );
    finish(&pool, Some(&cluster)).await;
}
