//! The client unique message id, `UNIQ_KEY` (protocol.md §5.1; Java
//! `MessageClientIDSetter.createUniqID()`).
//!
//! Raw layout, big-endian, written as **uppercase** hex:
//!
//! | bytes | field |
//! |---|---|
//! | 4 or 16 | IP of the client host (IPv4 or IPv6) |
//! | 2 | process id, low 16 bits |
//! | 4 | a 32-bit value fixed per process (Java: the class loader's hash; here a random number) |
//! | 4 | milliseconds since the start of the current month, as a **wrapping `u32`** |
//! | 2 | low 16 bits of a process-wide counter |
//!
//! An id is therefore 32 hex characters for an IPv4 host and 56 for an IPv6 host.
//!
//! # Differences from Java, on purpose
//!
//! * **The month starts in UTC.** Java takes the month start in the JVM's local time
//!   zone. Nothing decodes the time field exactly (Java's `getNearlyTimeFromID` is
//!   "nearly"), and UTC keeps this crate free of time-zone data. Ids stay unique either
//!   way; only the absolute meaning of the time field differs by the zone offset.
//! * **A large backwards clock step re-anchors the month.** Java keeps its cached
//!   month start when the clock goes back, so a step back of more than 1,000,000 ms
//!   across a month boundary gives a time field near 2^32. [`UniqIdGenerator`]
//!   recomputes the month window in that case. Small steps back (within
//!   1,000,000 ms) give 0, as in Java ([`time_in_month`]).
//!
//! The formatting is a pure function ([`format_uniq_id`]) of the precomputed prefix
//! (IP, pid, hash), the time in month and the counter. IP detection is the producer's
//! job. The only global state is the process-wide counter ([`next_counter`]): ids from
//! several producers in one process must not collide, so they share it (it is
//! lock-free: one `fetch_add`).

use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::{IdError, be_bytes, decode_id_hex, push_hex_upper, split_ip};

/// Length of an id for an IPv4 host, in hex characters.
pub const UNIQ_ID_LEN_V4: usize = 32;
/// Length of an id for an IPv6 host, in hex characters.
pub const UNIQ_ID_LEN_V6: usize = 56;

/// A backwards step of the clock up to this many milliseconds before the month
/// start gives a time field of 0 (Java's rule).
pub const CLOCK_STEP_TOLERANCE_MS: u64 = 1_000_000;

const MS_PER_DAY: u64 = 86_400_000;

/// The fixed, per-process first part of every id: hex of IP, pid and hash.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UniqIdPrefix {
    /// 20 (IPv4) or 44 (IPv6) uppercase hex characters.
    hex: String,
}

impl UniqIdPrefix {
    /// Precomputes the prefix for a host address, a process id (only its low 16
    /// bits are used, like Java's `(short) pid`) and a per-process 32-bit hash.
    pub fn new(ip: IpAddr, pid: u32, hash: u32) -> Self {
        let mut hex = String::with_capacity(UNIQ_ID_LEN_V6);
        match ip {
            IpAddr::V4(v4) => push_hex_upper(&mut hex, &v4.octets()),
            IpAddr::V6(v6) => push_hex_upper(&mut hex, &v6.octets()),
        }
        // Truncation to the low 16 bits is the documented behaviour.
        push_hex_upper(&mut hex, &(pid as u16).to_be_bytes());
        push_hex_upper(&mut hex, &hash.to_be_bytes());
        Self { hex }
    }

    /// The prefix as uppercase hex (20 or 44 characters).
    pub fn as_str(&self) -> &str {
        &self.hex
    }

    /// Length of the full ids built with this prefix: 32 (IPv4) or 56 (IPv6).
    pub fn id_len(&self) -> usize {
        // 4 hex digits of counter and 8 of time follow the prefix.
        self.hex.len().saturating_add(12)
    }
}

/// Appends an id to `out`: the prefix, then the time in month and the counter as
/// uppercase hex.
pub fn write_uniq_id(prefix: &UniqIdPrefix, time_in_month_ms: u32, counter: u16, out: &mut String) {
    out.reserve(prefix.id_len());
    out.push_str(&prefix.hex);
    push_hex_upper(out, &time_in_month_ms.to_be_bytes());
    push_hex_upper(out, &counter.to_be_bytes());
}

/// Formats an id: a pure function of its parts.
///
/// ```
/// use rmq_protocol::id::uniq::{UniqIdPrefix, format_uniq_id};
/// let prefix = UniqIdPrefix::new("192.168.0.1".parse()?, 12345, 0x1B6D3586);
/// assert_eq!(format_uniq_id(&prefix, 100_000_000, 1), "C0A8000130391B6D358605F5E1000001");
/// # Ok::<(), std::net::AddrParseError>(())
/// ```
pub fn format_uniq_id(prefix: &UniqIdPrefix, time_in_month_ms: u32, counter: u16) -> String {
    let mut out = String::with_capacity(prefix.id_len());
    write_uniq_id(prefix, time_in_month_ms, counter, &mut out);
    out
}

/// `(year, month 1..=12, day 1..=31)` of a day number counted from 1970-01-01
/// (Howard Hinnant's `civil_from_days`, for non-negative day numbers).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

fn is_leap(year: u64) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The current month in day numbers: (first day of this month, first day of the next).
fn month_window_days(now_ms: u64) -> (u64, u64) {
    // now_ms / MS_PER_DAY < 2^38, far below where the arithmetic below could overflow.
    let today = now_ms / MS_PER_DAY;
    let (year, month, day) = civil_from_days(today);
    let start = today - (day - 1);
    (start, start + days_in_month(year, month))
}

/// The current UTC month of `now_ms` (epoch milliseconds): `(start of this month,
/// start of the next month)`, both in epoch milliseconds. The end saturates at
/// `u64::MAX` for times too close to it.
pub fn month_window_utc(now_ms: u64) -> (u64, u64) {
    let (start, next) = month_window_days(now_ms);
    (
        start.saturating_mul(MS_PER_DAY),
        next.saturating_mul(MS_PER_DAY),
    )
}

/// The id's time field: `now_ms - month_start_ms` as a wrapping `u32` (it passes
/// 2^31 about 24.8 days into a month and must not be read as signed).
///
/// Java's rule for a clock step: a value in (−1,000,000, 0) ms, read as a signed
/// 32-bit number, becomes 0. Other values wrap.
pub fn time_in_month(now_ms: u64, month_start_ms: u64) -> u32 {
    // Wrapping to 32 bits is the wire format.
    let diff = now_ms.wrapping_sub(month_start_ms) as u32;
    let signed = diff as i32;
    if signed < 0 && signed > -(CLOCK_STEP_TOLERANCE_MS as i32) {
        0
    } else {
        diff
    }
}

/// The one process-wide id counter (Java: `MessageClientIDSetter`'s static
/// `AtomicInteger`). See the module documentation for why it is global.
static UNIQ_COUNTER: AtomicU32 = AtomicU32::new(0);

/// Takes the next value of the process-wide counter (low 16 bits). Lock-free.
pub fn next_counter() -> u16 {
    // The id keeps the low 16 bits; the counter itself wraps at 2^32.
    UNIQ_COUNTER.fetch_add(1, Ordering::Relaxed) as u16
}

/// Generates ids for one process prefix, caching the current month window.
///
/// Lock-free and `Sync`: share one generator (or several) between threads. The counter
/// is process-wide, so ids from different generators in one process differ too
/// (as long as fewer than 65,536 ids are made in one millisecond).
#[derive(Debug)]
pub struct UniqIdGenerator {
    prefix: UniqIdPrefix,
    /// The cached month window as day numbers: start in the high 32 bits, next month
    /// start in the low 32 bits. 0 means "not computed yet" (the window `[0, 0)` is
    /// empty, so every time recomputes it).
    window: AtomicU64,
}

impl UniqIdGenerator {
    /// A generator for `prefix`.
    pub fn new(prefix: UniqIdPrefix) -> Self {
        Self {
            prefix,
            window: AtomicU64::new(0),
        }
    }

    /// The prefix.
    pub fn prefix(&self) -> &UniqIdPrefix {
        &self.prefix
    }

    /// The start of the month that `now_ms` is counted from.
    ///
    /// Like Java, the cached window is only replaced when `now_ms` reaches the next
    /// month, so a clock that steps back slightly keeps the month (and gets time 0).
    /// A step back of more than [`CLOCK_STEP_TOLERANCE_MS`] before the month start
    /// re-anchors the window instead.
    pub fn month_start(&self, now_ms: u64) -> u64 {
        // One atomic word holds both ends, so a reader never sees a torn window.
        let packed = self.window.load(Ordering::Relaxed);
        let start = (packed >> 32).saturating_mul(MS_PER_DAY);
        let next = (packed & 0xFFFF_FFFF).saturating_mul(MS_PER_DAY);
        let stale = now_ms >= next || now_ms.saturating_add(CLOCK_STEP_TOLERANCE_MS) <= start;
        if !stale {
            return start;
        }
        let (start_day, next_day) = month_window_days(now_ms);
        if let (Ok(s), Ok(n)) = (u32::try_from(start_day), u32::try_from(next_day)) {
            self.window
                .store((u64::from(s) << 32) | u64::from(n), Ordering::Relaxed);
        }
        start_day.saturating_mul(MS_PER_DAY)
    }

    /// The id for a message created at `now_ms` (epoch milliseconds), taking the next
    /// value of the process-wide counter.
    pub fn next(&self, now_ms: u64) -> String {
        let start = self.month_start(now_ms);
        format_uniq_id(&self.prefix, time_in_month(now_ms, start), next_counter())
    }

    /// Like [`next`](Self::next), as a [`FieldValue`](crate::FieldValue): inline (no
    /// allocation) for an IPv4 client, whose ids are 32 characters.
    pub fn next_value(&self, now_ms: u64) -> crate::FieldValue {
        let start = self.month_start(now_ms);
        let mut buf = [0u8; 64];
        let hex = self.prefix.hex.as_bytes();
        let n = hex.len();
        if n + 12 > buf.len() {
            return self.next(now_ms).into();
        }
        buf[..n].copy_from_slice(hex);
        let mut tail = [0u8; 6];
        tail[..4].copy_from_slice(&time_in_month(now_ms, start).to_be_bytes());
        tail[4..].copy_from_slice(&next_counter().to_be_bytes());
        for (i, b) in tail.iter().enumerate() {
            buf[n + 2 * i] = super::HEX_UPPER[usize::from(b >> 4)];
            buf[n + 2 * i + 1] = super::HEX_UPPER[usize::from(b & 0x0F)];
        }
        // ASCII hex only: always valid UTF-8
        std::str::from_utf8(&buf[..n + 12])
            .map(crate::FieldValue::from)
            .unwrap_or_default()
    }

    /// Like [`next`](Self::next), appending to `out`.
    pub fn next_into(&self, now_ms: u64, out: &mut String) {
        let start = self.month_start(now_ms);
        write_uniq_id(
            &self.prefix,
            time_in_month(now_ms, start),
            next_counter(),
            out,
        );
    }
}

/// The fields of a parsed `UNIQ_KEY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UniqIdParts {
    /// Host address (IPv4 for a 32-character id, IPv6 for a 56-character id).
    pub ip: IpAddr,
    /// Low 16 bits of the process id.
    pub pid: u16,
    /// The per-process hash.
    pub hash: u32,
    /// Milliseconds since the month start (unsigned).
    pub time_in_month: u32,
    /// Low 16 bits of the counter.
    pub counter: u16,
}

impl UniqIdParts {
    /// Formats these parts back into an id.
    pub fn format(&self) -> String {
        let prefix = UniqIdPrefix::new(self.ip, u32::from(self.pid), self.hash);
        format_uniq_id(&prefix, self.time_in_month, self.counter)
    }
}

/// Parses a `UNIQ_KEY` of 32 (IPv4) or 56 (IPv6) hex characters (either case).
pub fn parse_uniq_id(id: &str) -> Result<UniqIdParts, IdError> {
    let mut raw = [0u8; 28];
    let n = decode_id_hex(id, &mut raw)?;
    let (ip, rest) = split_ip(&raw, n);
    Ok(UniqIdParts {
        ip,
        pid: u16::from_be_bytes(be_bytes(rest, 0)),
        hash: u32::from_be_bytes(be_bytes(rest, 2)),
        time_in_month: u32::from_be_bytes(be_bytes(rest, 6)),
        counter: u16::from_be_bytes(be_bytes(rest, 10)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::net::Ipv4Addr;

    const VECTOR: &str = "C0A8000130391B6D358605F5E1000001";

    /// Tests that draw tens of thousands of values from the process-wide 16-bit
    /// counter at one timestamp run one at a time: run together, their draws would
    /// wrap the counter under each other and collide (a test artefact, not a bug: a
    /// real process does not mint 65 536 ids in one millisecond).
    static COUNTER_HUNGRY: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn v4_prefix() -> UniqIdPrefix {
        UniqIdPrefix::new(
            IpAddr::V4(Ipv4Addr::new(192, 168, 0, 1)),
            12345,
            0x1B6D_3586,
        )
    }

    /// Epoch ms of `y-m-d 00:00:00 UTC`, computed independently of the code under test
    /// by counting days.
    fn utc_ms(y: u64, m: u64, d: u64) -> u64 {
        let mut days = 0;
        for year in 1970..y {
            days += if is_leap(year) { 366 } else { 365 };
        }
        for month in 1..m {
            days += days_in_month(y, month);
        }
        (days + d - 1) * MS_PER_DAY
    }

    #[test]
    fn derived_vector() {
        let prefix = v4_prefix();
        assert_eq!(prefix.as_str(), "C0A8000130391B6D3586");
        assert_eq!(format_uniq_id(&prefix, 100_000_000, 1), VECTOR);
        assert_eq!(prefix.id_len(), UNIQ_ID_LEN_V4);
    }

    #[test]
    fn pid_uses_low_16_bits() {
        let ip = IpAddr::V4(Ipv4Addr::new(192, 168, 0, 1));
        let a = UniqIdPrefix::new(ip, 0x0001_3039, 0x1B6D_3586);
        assert_eq!(a, v4_prefix());
        let unknown = UniqIdPrefix::new(ip, u32::MAX, 0);
        assert_eq!(unknown.as_str(), "C0A80001FFFF00000000");
    }

    #[test]
    fn ipv6_gives_56_uppercase_chars() {
        let ip: IpAddr = "2400:dd02:1008:15:2b2b:7d04:19d6:dd5e".parse().unwrap();
        let prefix = UniqIdPrefix::new(ip, 0x9EFC, 0x18B4_AAC2);
        let id = format_uniq_id(&prefix, 0x4621_2A7D, 0);
        // Real capture from a 5.2.0 client (protocol.md §5.1).
        assert_eq!(
            id,
            "2400DD02100800152B2B7D0419D6DD5E9EFC18B4AAC246212A7D0000"
        );
        assert_eq!(id.len(), UNIQ_ID_LEN_V6);
        assert_eq!(prefix.id_len(), UNIQ_ID_LEN_V6);
    }

    #[test]
    fn uppercase_only() {
        let prefix = UniqIdPrefix::new("::ffff:abcd:ef01".parse().unwrap(), 0xABCD, 0xDEAD_BEEF);
        let id = format_uniq_id(&prefix, 0xFACE_B00C, 0xBEEF);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()),
            "{id}"
        );
        assert!(id.ends_with("FACEB00CBEEF"), "{id}");
    }

    #[test]
    fn month_window_basic_and_year_end() {
        let start = utc_ms(2024, 12, 1);
        let next = utc_ms(2025, 1, 1);
        // 31 December 23:59:59.999 is still December.
        assert_eq!(month_window_utc(next - 1), (start, next));
        assert_eq!(month_window_utc(start), (start, next));
        // 1 January 00:00:00.000 starts the new month.
        assert_eq!(month_window_utc(next), (next, utc_ms(2025, 2, 1)));
        assert_eq!(month_window_utc(0), (0, 31 * MS_PER_DAY));
        // The known epoch values: 2025-01-01 = 1735689600000.
        assert_eq!(next, 1_735_689_600_000);
    }

    #[test]
    fn month_window_leap_february() {
        let feb = utc_ms(2024, 2, 1);
        let mar = utc_ms(2024, 3, 1);
        assert_eq!(mar - feb, 29 * MS_PER_DAY);
        let feb29 = utc_ms(2024, 2, 29) + 12 * 3_600_000;
        assert_eq!(month_window_utc(feb29), (feb, mar));
        assert_eq!(month_window_utc(mar), (mar, utc_ms(2024, 4, 1)));
        // Not leap: 2023, 2100. Leap: 2000.
        assert_eq!(
            month_window_utc(utc_ms(2023, 2, 10)).1,
            utc_ms(2023, 2, 1) + 28 * MS_PER_DAY
        );
        assert_eq!(
            month_window_utc(utc_ms(2100, 2, 10)).1,
            utc_ms(2100, 2, 1) + 28 * MS_PER_DAY
        );
        assert_eq!(
            month_window_utc(utc_ms(2000, 2, 10)).1,
            utc_ms(2000, 2, 1) + 29 * MS_PER_DAY
        );
    }

    #[test]
    fn month_window_every_day_for_decades() {
        // Walk day by day from 1970 to 2110: each window contains the day, starts on the
        // 1st and ends where the next month's window starts.
        let mut expected_start = 0;
        let mut day = 0;
        for y in 1970..2110 {
            for m in 1..=12 {
                let len = days_in_month(y, m);
                for _ in 0..len {
                    let now = day * MS_PER_DAY + 5;
                    let (s, n) = month_window_utc(now);
                    assert_eq!(s, expected_start, "{y}-{m}");
                    assert_eq!(n, expected_start + len * MS_PER_DAY, "{y}-{m}");
                    day += 1;
                }
                expected_start += len * MS_PER_DAY;
            }
        }
    }

    #[test]
    fn month_window_extremes_do_not_panic() {
        let (s, n) = month_window_utc(u64::MAX);
        assert!(s > u64::MAX - 31 * MS_PER_DAY, "{s}");
        assert_eq!(n, u64::MAX, "the end saturates");
        let g = UniqIdGenerator::new(v4_prefix());
        assert_eq!(g.next(u64::MAX).len(), 32);
    }

    #[test]
    fn time_in_month_wraps_unsigned() {
        let start = utc_ms(2025, 1, 1);
        assert_eq!(time_in_month(start, start), 0);
        assert_eq!(time_in_month(start + 100_000_000, start), 100_000_000);
        // Past 2^31 ms (~24.8 days): unsigned, not negative.
        let late = start + (1u64 << 31) + 5;
        assert_eq!(time_in_month(late, start), 0x8000_0005);
        // The last millisecond of a 31-day month.
        let last = start + 31 * MS_PER_DAY - 1;
        assert_eq!(time_in_month(last, start), 2_678_399_999);
        let id = format_uniq_id(&v4_prefix(), time_in_month(late, start), 7);
        assert_eq!(&id[20..], "800000050007");
    }

    #[test]
    fn time_in_month_small_negative_is_zero() {
        let start = utc_ms(2025, 3, 1);
        assert_eq!(time_in_month(start - 1, start), 0);
        assert_eq!(time_in_month(start - 999_999, start), 0);
        // At or beyond the tolerance the value wraps, as in Java.
        assert_eq!(
            time_in_month(start - 1_000_000, start),
            (-1_000_000i32) as u32
        );
    }

    #[test]
    fn generator_uses_cached_window_and_rolls_over() {
        let g = UniqIdGenerator::new(v4_prefix());
        let jan = utc_ms(2025, 1, 1);
        let feb = utc_ms(2025, 2, 1);
        assert_eq!(g.month_start(jan + 10), jan);
        assert_eq!(g.month_start(feb - 1), jan);
        assert_eq!(g.month_start(feb), feb);
        // A small clock step back keeps February: time 0.
        assert_eq!(g.month_start(feb - 10), feb);
        let parts = parse_uniq_id(&g.next(feb - 10)).unwrap();
        assert_eq!(parts.time_in_month, 0);
        // A large step back re-anchors to January.
        assert_eq!(g.month_start(feb - 2_000_000), jan);
        let parts = parse_uniq_id(&g.next(jan + 1234)).unwrap();
        assert_eq!(parts.time_in_month, 1234);
        assert_eq!(parts.ip, IpAddr::V4(Ipv4Addr::new(192, 168, 0, 1)));
        assert_eq!(parts.pid, 12345);
    }

    #[test]
    fn next_value_is_the_same_id_inline() {
        let g = UniqIdGenerator::new(v4_prefix());
        let jan = utc_ms(2025, 1, 1);
        let v = g.next_value(jan + 1234);
        assert!(v.is_inline(), "an IPv4 id is 32 characters");
        let (a, b) = (
            parse_uniq_id(&v).unwrap(),
            parse_uniq_id(&g.next(jan + 1234)).unwrap(),
        );
        assert_eq!(a.time_in_month, 1234);
        assert_eq!(
            (a.ip, a.pid, a.time_in_month),
            (b.ip, b.pid, b.time_in_month)
        );
        assert_eq!(v.len(), 32);
        assert_eq!(&v[..20], &g.next(jan)[..20], "same prefix");
        let v6 = UniqIdGenerator::new(UniqIdPrefix::new("::1".parse().unwrap(), 7, 9));
        let id = v6.next_value(jan + 5);
        assert_eq!(parse_uniq_id(&id).unwrap().time_in_month, 5);
        assert_eq!(id.len(), v6.next(jan).len());
    }

    #[test]
    fn generator_100k_unique() {
        let _serial = COUNTER_HUNGRY.lock().unwrap_or_else(|e| e.into_inner());
        let g = UniqIdGenerator::new(v4_prefix());
        let base = utc_ms(2025, 6, 13);
        let mut seen = HashSet::with_capacity(100_000);
        for i in 0..100_000u64 {
            // 10,000 ids per millisecond: only the counter separates them.
            let id = g.next(base + i / 10_000);
            assert_eq!(id.len(), 32);
            assert!(seen.insert(id), "duplicate at {i}");
        }
    }

    #[test]
    fn generators_share_the_process_counter() {
        let _serial = COUNTER_HUNGRY.lock().unwrap_or_else(|e| e.into_inner());
        let now = utc_ms(2025, 6, 13);
        let ids: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(move || {
                        // Each thread has its own generator with the same prefix.
                        let g = UniqIdGenerator::new(v4_prefix());
                        (0..10_000).map(|_| g.next(now)).collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        let unique: HashSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), 40_000);
    }

    #[test]
    fn parse_round_trip_v4_and_v6() {
        let parts = parse_uniq_id(VECTOR).unwrap();
        assert_eq!(
            parts,
            UniqIdParts {
                ip: IpAddr::V4(Ipv4Addr::new(192, 168, 0, 1)),
                pid: 12345,
                hash: 0x1B6D_3586,
                time_in_month: 100_000_000,
                counter: 1,
            }
        );
        assert_eq!(parts.format(), VECTOR);
        assert_eq!(parse_uniq_id(&VECTOR.to_lowercase()).unwrap(), parts);

        let v6 = "2400DD02100800152B2B7D0419D6DD5E9EFC18B4AAC246212A7D0000";
        let parts = parse_uniq_id(v6).unwrap();
        assert_eq!(
            parts.ip,
            "2400:dd02:1008:15:2b2b:7d04:19d6:dd5e"
                .parse::<IpAddr>()
                .unwrap()
        );
        assert_eq!(parts.pid, 0x9EFC);
        assert_eq!(parts.hash, 0x18B4_AAC2);
        assert_eq!(parts.time_in_month, 0x4621_2A7D);
        assert_eq!(parts.counter, 0);
        assert_eq!(parts.format(), v6);
    }

    #[test]
    fn parse_rejects_bad_ids() {
        for bad in [
            "",
            "C0A8",
            &VECTOR[..31],
            &format!("{VECTOR}0"),
            &"0".repeat(57),
        ] {
            assert!(
                matches!(parse_uniq_id(bad), Err(IdError::BadLength { .. })),
                "{bad:?}"
            );
        }
        let err = parse_uniq_id("C0A8000130391B6D358605F5E100000Z").unwrap_err();
        assert!(err.to_string().contains("'Z'"), "{err}");
    }
}
