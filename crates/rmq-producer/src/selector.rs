//! Queue selectors: pick the queue a message goes to from an argument the caller
//! supplies (Java `MessageQueueSelector`).
//!
//! A selector is how ordered messages work: every message with the same argument
//! (an order id, a user id) lands on the same queue, and a queue is consumed in
//! order. [`JavaHashSelector`] computes exactly what Java's `SelectMessageQueueByHash`
//! computes (protocol.md section 16), so Rust and Java producers sending the same keys
//! to the same topic keep one order per key.
//!
//! ```
//! use rmq_producer::selector::{JavaHashSelector, QueueSelector, SelectorArg};
//! use rmq_protocol::message::{Message, MessageQueue};
//!
//! let queues: Vec<MessageQueue> =
//!     (0..4).map(|id| MessageQueue::new("Orders", "broker-a", id)).collect();
//! let msg = Message::new("Orders", "paid");
//! let arg = SelectorArg::from("order-12345");
//! // "order-12345".hashCode() = 478832884; 478832884 % 4 = 0.
//! assert_eq!(JavaHashSelector.select(&queues, &msg, &arg), Some(0));
//! ```
//!
//! The queue list must be in the order Java builds it (the route's order, as
//! `topicRouteData2TopicPublishInfo` produces it) for the same key to give the same
//! queue; the producer passes its route's list unchanged.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};

use rmq_protocol::message::{Message, MessageQueue};

/// The argument a [`QueueSelector`] picks a queue from: a string key or a number,
/// hashed the way Java hashes the corresponding object.
///
/// `From` conversions make call sites short: `"order-1".into()`,
/// `String::from(..).into()`, `42i32.into()` (a Java `Integer`), `42i64.into()` (a
/// Java `Long`). An integer literal without a suffix is an `i32`, like in Java.
///
/// ```
/// use rmq_producer::selector::SelectorArg;
///
/// assert_eq!(SelectorArg::from("hello").java_hash_code(), 99162322);
/// assert_eq!(SelectorArg::from(-7).java_hash_code(), -7); // Integer.hashCode()
/// assert_eq!(SelectorArg::from(-7i64).java_hash_code(), 6); // Long.hashCode()
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SelectorArg {
    /// A string key; hashes like `java.lang.String`.
    Str(String),
    /// A 32-bit number; hashes like `java.lang.Integer` (the value itself).
    Int(i32),
    /// A 64-bit number; hashes like `java.lang.Long` (`(int)(v ^ (v >>> 32))`).
    Long(i64),
}

impl SelectorArg {
    /// The value Java's `hashCode()` returns for the corresponding Java object.
    ///
    /// ```
    /// use rmq_producer::selector::SelectorArg;
    ///
    /// assert_eq!(SelectorArg::from("order-7").java_hash_code(), "order-7".chars()
    ///     .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32)));
    /// assert_eq!(SelectorArg::from(42).java_hash_code(), 42);
    /// assert_eq!(SelectorArg::from(1i64 << 32).java_hash_code(), 1);
    /// ```
    pub fn java_hash_code(&self) -> i32 {
        match self {
            Self::Str(s) => java_string_hash(s),
            Self::Int(v) => *v,
            Self::Long(v) => java_long_hash(*v),
        }
    }
}

impl From<&str> for SelectorArg {
    fn from(s: &str) -> Self {
        Self::Str(s.to_owned())
    }
}

impl From<String> for SelectorArg {
    fn from(s: String) -> Self {
        Self::Str(s)
    }
}

impl From<&String> for SelectorArg {
    fn from(s: &String) -> Self {
        Self::Str(s.clone())
    }
}

impl From<i32> for SelectorArg {
    fn from(v: i32) -> Self {
        Self::Int(v)
    }
}

impl From<i64> for SelectorArg {
    fn from(v: i64) -> Self {
        Self::Long(v)
    }
}

impl fmt::Display for SelectorArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Str(s) => write!(f, "{s:?}"),
            Self::Int(v) => write!(f, "{v}"),
            Self::Long(v) => write!(f, "{v}L"),
        }
    }
}

/// Java's `String.hashCode()`: `h = 31 * h + c` over the string's **UTF-16 code
/// units**, in wrapping 32-bit signed arithmetic. Characters outside the Basic
/// Multilingual Plane count as their two surrogates, as in Java.
///
/// ```
/// use rmq_producer::selector::java_string_hash;
///
/// assert_eq!(java_string_hash("hello"), 99162322);
/// assert_eq!(java_string_hash(""), 0);
/// assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
/// assert_eq!(java_string_hash("\u{1F600}"), 1772899); // surrogates D83D DE00
/// ```
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

/// Java's `Long.hashCode()`: `(int)(value ^ (value >>> 32))`.
///
/// ```
/// use rmq_producer::selector::java_long_hash;
///
/// assert_eq!(java_long_hash(7), 7);
/// assert_eq!(java_long_hash(-1), 0); // 0xFFFFFFFF ^ 0xFFFFFFFF
/// assert_eq!(java_long_hash(1 << 32), 1);
/// ```
pub fn java_long_hash(v: i64) -> i32 {
    let bits = v as u64;
    // Truncation to the low 32 bits is the point.
    (bits ^ (bits >> 32)) as u32 as i32
}

/// Picks the index of the queue a message is sent to.
///
/// Implementations must be cheap and must not block: they run on the send path for
/// every message. Returning `None` (or an index out of range) fails the send with
/// an error instead of sending to an arbitrary queue. `queues` is never reordered by
/// the producer; with the default retry rule for selector sends, a retry goes to the
/// same queue or the send fails, so that order is kept.
///
/// ```
/// use rmq_producer::selector::{QueueSelector, SelectorArg};
/// use rmq_protocol::message::{Message, MessageQueue};
///
/// /// Sends everything to the last queue.
/// #[derive(Debug)]
/// struct Last;
///
/// impl QueueSelector for Last {
///     fn select(&self, queues: &[MessageQueue], _: &Message, _: &SelectorArg) -> Option<usize> {
///         queues.len().checked_sub(1)
///     }
/// }
///
/// let queues = vec![MessageQueue::new("T", "b", 0), MessageQueue::new("T", "b", 1)];
/// assert_eq!(Last.select(&queues, &Message::new("T", "x"), &1.into()), Some(1));
/// assert_eq!(Last.select(&[], &Message::new("T", "x"), &1.into()), None);
/// ```
pub trait QueueSelector: Send + Sync + fmt::Debug {
    /// The index in `queues` of the queue for `msg`, or `None` if none fits (for
    /// example, `queues` is empty).
    fn select(&self, queues: &[MessageQueue], msg: &Message, arg: &SelectorArg) -> Option<usize>;
}

/// Java's `SelectMessageQueueByHash`: `abs(arg.hashCode() % queues.len())`.
///
/// The remainder is Java's signed remainder, taken **before** the absolute value
/// (so a hash of `i32::MIN` works), and the hash is [`SelectorArg::java_hash_code`].
/// Given the same queue list, a key lands on the same queue as with a Java producer.
/// `None` when there are no queues.
#[derive(Clone, Copy, Debug, Default)]
pub struct JavaHashSelector;

impl JavaHashSelector {
    /// The index Java picks for `hash` among `len` queues, `None` when `len` is 0 (or
    /// does not fit an `i32`, which Java's list sizes cannot exceed).
    ///
    /// ```
    /// use rmq_producer::selector::JavaHashSelector;
    ///
    /// assert_eq!(JavaHashSelector::index_for_hash(10, 4), Some(2));
    /// assert_eq!(JavaHashSelector::index_for_hash(-10, 4), Some(2)); // abs(-10 % 4)
    /// assert_eq!(JavaHashSelector::index_for_hash(i32::MIN, 3), Some(2));
    /// assert_eq!(JavaHashSelector::index_for_hash(5, 0), None);
    /// ```
    pub fn index_for_hash(hash: i32, len: usize) -> Option<usize> {
        let len = i32::try_from(len).ok().filter(|&n| n > 0)?;
        // `checked_rem` only fails for len == 0 or MIN % -1, both excluded above.
        let value = hash.checked_rem(len)?;
        usize::try_from(value.unsigned_abs()).ok()
    }
}

impl QueueSelector for JavaHashSelector {
    fn select(&self, queues: &[MessageQueue], _msg: &Message, arg: &SelectorArg) -> Option<usize> {
        Self::index_for_hash(arg.java_hash_code(), queues.len())
    }
}

/// A uniformly random queue for every message, ignoring the argument (Java
/// `SelectMessageQueueByRandom`).
///
/// Lock-free (one atomic add per pick). Each selector has its own generator, seeded
/// randomly by [`RandomSelector::new`] or fixed by [`RandomSelector::with_seed`] for
/// reproducible tests. Not cryptographic.
pub struct RandomSelector {
    source: rmq_remoting::RandomSource,
}

impl RandomSelector {
    /// A selector with a random seed.
    ///
    /// ```
    /// use rmq_producer::selector::{QueueSelector, RandomSelector};
    /// use rmq_protocol::message::{Message, MessageQueue};
    ///
    /// let queues: Vec<_> = (0..4).map(|i| MessageQueue::new("T", "b", i)).collect();
    /// let pick = RandomSelector::new().select(&queues, &Message::new("T", "x"), &0.into());
    /// assert!(pick.is_some_and(|i| i < 4));
    /// ```
    pub fn new() -> Self {
        Self {
            source: rmq_remoting::RandomSource::from_entropy(),
        }
    }

    /// A selector whose sequence of picks is fixed by `seed`.
    ///
    /// ```
    /// use rmq_producer::selector::{QueueSelector, RandomSelector};
    /// use rmq_protocol::message::{Message, MessageQueue};
    ///
    /// let queues: Vec<_> = (0..8).map(|i| MessageQueue::new("T", "b", i)).collect();
    /// let picks = |s: &RandomSelector| -> Vec<_> {
    ///     (0..16).map(|_| s.select(&queues, &Message::new("T", "x"), &0.into())).collect()
    /// };
    /// // The same seed replays the same picks (for reproducible tests).
    /// assert_eq!(picks(&RandomSelector::with_seed(7)), picks(&RandomSelector::with_seed(7)));
    /// ```
    pub fn with_seed(seed: u64) -> Self {
        Self {
            source: rmq_remoting::RandomSource::seeded(seed),
        }
    }
}

impl Default for RandomSelector {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for RandomSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RandomSelector").finish_non_exhaustive()
    }
}

impl QueueSelector for RandomSelector {
    fn select(&self, queues: &[MessageQueue], _msg: &Message, _arg: &SelectorArg) -> Option<usize> {
        if queues.is_empty() {
            return None;
        }
        // Multiply-shift maps 64 random bits onto 0..len without a division.
        let len = queues.len() as u128;
        usize::try_from((u128::from(self.source.next_u64()) * len) >> 64).ok()
    }
}

/// The queues in turn, ignoring the argument: message *n* goes to queue
/// `n % queues.len()`. Spreads load evenly when every message is alike.
#[derive(Default)]
pub struct RoundRobinSelector {
    next: AtomicUsize,
}

impl RoundRobinSelector {
    /// A selector starting at queue 0.
    ///
    /// ```
    /// use rmq_producer::selector::{QueueSelector, RoundRobinSelector};
    /// use rmq_protocol::message::{Message, MessageQueue};
    ///
    /// let queues: Vec<_> = (0..3).map(|i| MessageQueue::new("T", "b", i)).collect();
    /// let rr = RoundRobinSelector::new();
    /// let picks: Vec<_> = (0..4).map(|_| rr.select(&queues, &Message::new("T", "x"), &0.into())).collect();
    /// assert_eq!(picks, [Some(0), Some(1), Some(2), Some(0)]);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }
}

impl fmt::Debug for RoundRobinSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoundRobinSelector")
            .field("next", &self.next.load(Ordering::Relaxed))
            .finish()
    }
}

impl QueueSelector for RoundRobinSelector {
    fn select(&self, queues: &[MessageQueue], _msg: &Message, _arg: &SelectorArg) -> Option<usize> {
        if queues.is_empty() {
            return None;
        }
        Some(self.next.fetch_add(1, Ordering::Relaxed) % queues.len())
    }
}

/// A [`QueueSelector`] made from a closure.
///
/// ```
/// use rmq_producer::selector::{FnSelector, QueueSelector, SelectorArg};
/// use rmq_protocol::message::{Message, MessageQueue};
///
/// let by_int = FnSelector::new(|queues: &[MessageQueue], _: &Message, arg: &SelectorArg| {
///     match arg {
///         SelectorArg::Int(v) => Some(v.unsigned_abs() as usize % queues.len().max(1)),
///         _ => None,
///     }
/// });
/// let queues = vec![MessageQueue::new("T", "b", 0), MessageQueue::new("T", "b", 1)];
/// assert_eq!(by_int.select(&queues, &Message::new("T", "x"), &3.into()), Some(1));
/// ```
pub struct FnSelector<F> {
    f: F,
}

impl<F> FnSelector<F>
where
    F: Fn(&[MessageQueue], &Message, &SelectorArg) -> Option<usize> + Send + Sync,
{
    /// Wraps `f`.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use rmq_producer::SendOptions;
    /// use rmq_producer::selector::{FnSelector, QueueSelector, SelectorArg};
    /// use rmq_protocol::message::{Message, MessageQueue};
    ///
    /// // Small tenants by number, one queue each; the rest share the last queue.
    /// let by_tenant = FnSelector::new(|queues: &[MessageQueue], _: &Message, arg: &SelectorArg| {
    ///     let SelectorArg::Int(tenant) = arg else { return None };
    ///     queues.len().checked_sub(1).map(|last| (tenant.unsigned_abs() as usize).min(last))
    /// });
    /// let queues: Vec<_> = (0..4).map(|i| MessageQueue::new("T", "b", i)).collect();
    /// let msg = Message::new("T", "x");
    /// assert_eq!(by_tenant.select(&queues, &msg, &SelectorArg::Int(2)), Some(2));
    /// assert_eq!(by_tenant.select(&queues, &msg, &SelectorArg::Int(12)), Some(3));
    /// assert_eq!(by_tenant.select(&queues, &msg, &"no number".into()), None);
    /// // As a send's target:
    /// let options = SendOptions::default().selector(Arc::new(by_tenant), SelectorArg::Int(12));
    /// # let _ = options;
    /// ```
    pub fn new(f: F) -> Self {
        Self { f }
    }
}

impl<F> fmt::Debug for FnSelector<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnSelector").finish_non_exhaustive()
    }
}

impl<F> QueueSelector for FnSelector<F>
where
    F: Fn(&[MessageQueue], &Message, &SelectorArg) -> Option<usize> + Send + Sync,
{
    fn select(&self, queues: &[MessageQueue], msg: &Message, arg: &SelectorArg) -> Option<usize> {
        (self.f)(queues, msg, arg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queues(n: i32) -> Vec<MessageQueue> {
        (0..n)
            .map(|id| MessageQueue::new("T", format!("broker-{}", id % 2), id))
            .collect()
    }

    fn msg() -> Message {
        Message::new("T", "body")
    }

    /// Values printed by OpenJDK 17: `s.hashCode()` and `Math.abs(s.hashCode() % n)`
    /// for n = 1, 2, 3, 4, 7, 8, 16.
    const JAVA: [(&str, i32, [usize; 7]); 13] = [
        ("hello", 99162322, [0, 0, 1, 2, 0, 2, 2]),
        ("", 0, [0, 0, 0, 0, 0, 0, 0]),
        ("polygenelubricants", i32::MIN, [0, 0, 2, 0, 2, 0, 0]),
        ("\u{1F600}", 1772899, [0, 1, 1, 3, 2, 3, 3]),
        ("a\u{1F600}b", 57849694, [0, 0, 1, 2, 0, 6, 14]),
        ("Aa", 2112, [0, 0, 0, 0, 5, 0, 0]),
        ("BB", 2112, [0, 0, 0, 0, 5, 0, 0]),
        ("order-12345", 478832884, [0, 0, 1, 0, 5, 4, 4]),
        ("zzzzzzzzzz", -1580979136, [0, 0, 1, 0, 2, 0, 0]),
        ("日本語", 25921943, [0, 1, 2, 3, 5, 7, 7]),
        ("é", 233, [0, 1, 2, 1, 2, 1, 9]),
        ("TopicTest", -1902610879, [0, 1, 1, 3, 1, 7, 15]),
        ("€\u{1D11E}", 9810198, [0, 0, 0, 2, 6, 6, 6]),
    ];
    const SIZES: [i32; 7] = [1, 2, 3, 4, 7, 8, 16];

    #[test]
    fn string_hash_matches_java() {
        for (s, hash, _) in JAVA {
            assert_eq!(java_string_hash(s), hash, "{s:?}");
            assert_eq!(SelectorArg::from(s).java_hash_code(), hash);
        }
        // Surrogate pairs are hashed as two units, not as one code point.
        assert_ne!(java_string_hash("\u{1F600}"), 0x1F600);
        assert_eq!(
            java_string_hash("\u{1F600}"),
            31 * 0xD83D + 0xDE00,
            "high then low surrogate"
        );
    }

    #[test]
    fn hash_selector_matches_java() {
        for (s, _, expected) in JAVA {
            for (n, want) in SIZES.into_iter().zip(expected) {
                let got = JavaHashSelector.select(&queues(n), &msg(), &s.into());
                assert_eq!(got, Some(want), "{s:?} among {n}");
            }
        }
    }

    #[test]
    fn remainder_before_abs() {
        // abs first would overflow for i32::MIN (Math.abs(MIN) == MIN) and then give
        // a negative remainder; Java takes the remainder first.
        assert_eq!(JavaHashSelector::index_for_hash(i32::MIN, 3), Some(2));
        assert_eq!(JavaHashSelector::index_for_hash(i32::MIN, 7), Some(2));
        assert_eq!(JavaHashSelector::index_for_hash(-1, 4), Some(1));
        assert_eq!(JavaHashSelector::index_for_hash(-5, 4), Some(1));
        assert_eq!(JavaHashSelector::index_for_hash(i32::MAX, 1), Some(0));
        assert_eq!(JavaHashSelector::index_for_hash(5, 0), None);
        assert_eq!(JavaHashSelector.select(&[], &msg(), &"k".into()), None);
        for h in [i32::MIN, i32::MIN + 1, -1, 0, 1, i32::MAX] {
            for n in 1..40usize {
                let i = JavaHashSelector::index_for_hash(h, n).unwrap();
                assert!(i < n);
            }
        }
    }

    #[test]
    fn number_args_hash_like_java_boxes() {
        // Integer.valueOf(-7).hashCode() = -7; Long.valueOf(-7L).hashCode() = 6;
        // Long.valueOf(1L << 40).hashCode() = 256;
        // Long.valueOf(123456789012345L).hashCode() = -2045923535 (OpenJDK 17).
        assert_eq!(SelectorArg::from(-7).java_hash_code(), -7);
        assert_eq!(SelectorArg::from(-7i64).java_hash_code(), 6);
        assert_eq!(java_long_hash(1 << 40), 256);
        assert_eq!(java_long_hash(123_456_789_012_345), -2_045_923_535);
        assert_eq!(
            JavaHashSelector.select(&queues(4), &msg(), &SelectorArg::Int(-7)),
            Some(3)
        );
    }

    #[test]
    fn arg_conversions_and_display() {
        let owned = String::from("k");
        assert_eq!(SelectorArg::from(&owned), SelectorArg::Str("k".into()));
        assert_eq!(SelectorArg::from(owned), SelectorArg::Str("k".into()));
        assert_eq!(SelectorArg::from("k").to_string(), "\"k\"");
        assert_eq!(SelectorArg::from(3).to_string(), "3");
        assert_eq!(SelectorArg::from(3i64).to_string(), "3L");
    }

    #[test]
    fn random_is_in_range_spread_and_seeded() {
        let qs = queues(5);
        let a = RandomSelector::with_seed(42);
        let b = RandomSelector::with_seed(42);
        let mut counts = [0usize; 5];
        for _ in 0..5000 {
            let i = a.select(&qs, &msg(), &0.into()).unwrap();
            assert_eq!(
                b.select(&qs, &msg(), &0.into()),
                Some(i),
                "same seed, same picks"
            );
            counts[i] += 1;
        }
        assert!(
            counts.iter().all(|&c| (800..1200).contains(&c)),
            "{counts:?}"
        );
        assert_eq!(a.select(&[], &msg(), &0.into()), None);
        assert_eq!(a.select(&qs[..1], &msg(), &0.into()), Some(0));
        // Unseeded selectors differ (2^-64 chance of a false failure per pick).
        let (x, y) = (RandomSelector::new(), RandomSelector::default());
        assert_ne!(x.source.next_u64(), y.source.next_u64());
        assert_eq!(format!("{x:?}"), "RandomSelector { .. }");
    }

    #[test]
    fn round_robin_cycles() {
        let rr = RoundRobinSelector::new();
        let qs = queues(3);
        let picks: Vec<_> = (0..7)
            .map(|_| rr.select(&qs, &msg(), &0.into()).unwrap())
            .collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2, 0]);
        assert_eq!(rr.select(&[], &msg(), &0.into()), None);
        assert_eq!(format!("{rr:?}"), "RoundRobinSelector { next: 7 }");
    }

    #[test]
    fn selectors_are_object_safe_and_shareable() {
        let all: Vec<std::sync::Arc<dyn QueueSelector>> = vec![
            std::sync::Arc::new(JavaHashSelector),
            std::sync::Arc::new(RandomSelector::with_seed(1)),
            std::sync::Arc::new(RoundRobinSelector::new()),
            std::sync::Arc::new(FnSelector::new(
                |_: &[MessageQueue], _: &Message, _: &SelectorArg| Some(0),
            )),
        ];
        for s in &all {
            let i = s.select(&queues(2), &msg(), &"x".into()).unwrap();
            assert!(i < 2, "{s:?}");
        }
    }
}
