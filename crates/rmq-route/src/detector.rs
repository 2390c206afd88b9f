//! The asynchronous half of the latency-fault detector: reachability probes.
//!
//! Java 5.x's detector (`LatencyFaultToleranceImpl.startDetector`, protocol.md
//! section 11.3) probes an isolated broker's master with GET_MAX_OFFSET (30) for
//! `(some topic the producer publishes to, queueId 0)` and marks it reachable on
//! **any** SUCCESS answer. The fault strategy (`rmq-fault`) stays free of I/O and
//! tokio; the producer runs these probes on its own schedule and feeds the results
//! back into the strategy.
//!
//! ```no_run
//! # async fn demo(pool: rmq_remoting::Pool) {
//! use std::time::Duration;
//! use rmq_route::detector::probe_all;
//!
//! let targets = [("broker-a".to_owned(), "10.0.0.1:10911".to_owned())];
//! for (broker, reachable) in probe_all(&pool, &targets, "TopicTest", Duration::from_millis(200)).await {
//!     println!("{broker}: {reachable}");
//! }
//! # }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use rmq_protocol::header::get_max_offset::GetMaxOffsetRequestHeader;
use rmq_protocol::{RemotingCommand, RequestCode, ResponseCode};
use rmq_remoting::Invoke;
use tracing::trace;

/// Java's detector timeout (`detectTimeout`).
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_millis(200);

/// The probe request: GET_MAX_OFFSET for `(topic, queueId 0)`, `committed=true`, no
/// broker name, binary header. Change its serialize type before sending if needed.
pub fn probe_request(topic: &str) -> RemotingCommand {
    RemotingCommand::with_header(
        RequestCode::GET_MAX_OFFSET,
        &GetMaxOffsetRequestHeader::new(topic, 0),
    )
}

/// Probes the broker at `addr`: whether it answered the [`probe_request`] with
/// SUCCESS within `timeout`. Any other answer, a transport error or a timeout is
/// `false`.
pub async fn probe(invoke: &dyn Invoke, addr: &str, topic: &str, timeout: Duration) -> bool {
    match invoke.invoke(addr, probe_request(topic), timeout).await {
        Ok(response) => {
            let ok = response.response_code() == ResponseCode::SUCCESS;
            trace!(addr, code = response.code, ok, "probe answered");
            ok
        }
        Err(e) => {
            trace!(addr, error = %e, "probe failed");
            false
        }
    }
}

/// Probes every `(broker name, address)` target concurrently (each with its own
/// `timeout`, so the whole call takes about `timeout` at most) and returns
/// `(broker name, reachable)` in the order of `targets`.
pub async fn probe_all(
    invoke: &dyn Invoke,
    targets: &[(String, String)],
    topic: &str,
    timeout: Duration,
) -> Vec<(String, bool)> {
    let probes = targets
        .iter()
        .map(|(_, addr)| {
            Box::pin(probe(invoke, addr, topic, timeout))
                as Pin<Box<dyn Future<Output = bool> + Send + '_>>
        })
        .collect();
    let results = join_all(probes).await;
    targets
        .iter()
        .zip(results)
        .map(|((broker, _), ok)| (broker.clone(), ok))
        .collect()
}

/// Polls every future until all are done; results in input order.
async fn join_all<T>(futures: Vec<Pin<Box<dyn Future<Output = T> + Send + '_>>>) -> Vec<T> {
    let mut pending: Vec<Option<Pin<Box<dyn Future<Output = T> + Send + '_>>>> =
        futures.into_iter().map(Some).collect();
    let mut results: Vec<Option<T>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all_done = true;
        for (slot, result) in pending.iter_mut().zip(results.iter_mut()) {
            if let Some(fut) = slot {
                match fut.as_mut().poll(cx) {
                    Poll::Ready(v) => {
                        *result = Some(v);
                        *slot = None;
                    }
                    Poll::Pending => all_done = false,
                }
            }
        }
        if all_done {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    results.into_iter().flatten().collect()
}
