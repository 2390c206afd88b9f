//! [`RandomSource`]: the randomness of backoff jitter and of choices that spread clients
//! (first name server, round-robin start), seedable so that a test run can be replayed.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The splitmix64 increment (the golden ratio in 64 bits).
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// A cheap, shareable pseudo-random source (splitmix64 over one atomic word).
///
/// Clones share one sequence. [`RandomSource::default`] seeds from the operating
/// system; [`RandomSource::seeded`] makes the sequence a function of the seed, which is
/// what deterministic tests (the seeded chaos runs) need: with the same seed and the
/// same order of calls, the same numbers come out. Not for cryptography.
///
/// ```
/// use rmq_remoting::RandomSource;
/// let (a, b) = (RandomSource::seeded(7), RandomSource::seeded(7));
/// assert_eq!(a.next_u64(), b.next_u64());
/// assert!(a.below(10) < 10);
/// ```
#[derive(Clone)]
pub struct RandomSource {
    state: Arc<AtomicU64>,
}

impl RandomSource {
    /// A source whose sequence is a function of `seed`.
    pub fn seeded(seed: u64) -> Self {
        Self {
            state: Arc::new(AtomicU64::new(seed)),
        }
    }

    /// A source seeded from the operating system's randomness.
    pub fn from_entropy() -> Self {
        Self::seeded(Self::entropy_u64())
    }

    /// One number from the operating system's randomness, for a single draw that
    /// needs no sequence (nothing is allocated).
    pub fn entropy_u64() -> u64 {
        rand::random()
    }

    /// The next number of the sequence.
    pub fn next_u64(&self) -> u64 {
        let mut z = self
            .state
            .fetch_add(GAMMA, Ordering::Relaxed)
            .wrapping_add(GAMMA);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// An independent source for a sub-component, seeded from this one's next number
    /// and `stream` (so two sub-components never share a sequence).
    pub fn derive(&self, stream: u64) -> Self {
        Self::seeded(self.next_u64() ^ stream.wrapping_mul(GAMMA))
    }
}

impl Default for RandomSource {
    fn default() -> Self {
        Self::from_entropy()
    }
}

impl fmt::Debug for RandomSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RandomSource").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_seed_one_sequence_and_different_seeds_differ() {
        let (a, b, c) = (
            RandomSource::seeded(1),
            RandomSource::seeded(1),
            RandomSource::seeded(2),
        );
        let sa: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        let sb: Vec<u64> = (0..8).map(|_| b.next_u64()).collect();
        let sc: Vec<u64> = (0..8).map(|_| c.next_u64()).collect();
        assert_eq!(sa, sb);
        assert_ne!(sa, sc);
    }

    #[test]
    fn clones_share_a_sequence_and_derived_sources_do_not() {
        let a = RandomSource::seeded(9);
        let first = a.clone().next_u64();
        assert_ne!(a.next_u64(), first, "the clone advanced the shared state");
        let (x, y) = (a.derive(1), a.derive(1));
        assert_ne!(x.next_u64(), y.next_u64());
    }

    #[test]
    fn below_stays_in_range_and_spreads() {
        let r = RandomSource::seeded(3);
        let mut seen = [0u32; 4];
        for _ in 0..400 {
            let v = r.below(4);
            assert!(v < 4);
            seen[v as usize] += 1;
        }
        assert!(seen.iter().all(|&n| n > 50), "{seen:?}");
        assert_eq!(r.below(0), 0);
        assert_eq!(format!("{r:?}"), "RandomSource { .. }");
    }
}
