//! Header fields kept in the layout the binary header gives them on the wire
//! (`keyLen i16 | key | valueLen i32 | value` per entry), inside shared [`Bytes`].
//!
//! A received response's fields are a slice of its frame (binary header) or of the
//! connection's decode arena (JSON header), and a request's fields are written into
//! the producer's header arena, so neither needs a vector of its own: no allocation
//! per request or response for its header (issue #9), and a request's fields take
//! their wire size in memory while it waits for its answer (about 200 bytes, where a
//! vector of 14 entries took 896).

use bytes::{BufMut, Bytes, BytesMut};

use super::{ExtFields, FieldSink};
use crate::value::FieldValue;

/// At most this many entries are kept in wire form (one bit per entry marks it taken).
pub(crate) const MAX_ENTRIES: usize = 32;

/// Entries in wire form. Invariants, checked when made: every entry is well formed,
/// keys and values are UTF-8, keys are non-empty and distinct, at most
/// [`MAX_ENTRIES`] entries.
#[derive(Clone)]
pub(crate) struct WireFields {
    bytes: Bytes,
    count: u8,
    /// Entries removed by [`take`](Self::take), one bit per entry index.
    taken: u32,
}

/// Splits the first entry off `buf`: `(key, value, rest)`, or `None` when it is
/// malformed (truncated, negative length).
fn split_entry(buf: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let (key_len, rest) = buf.split_first_chunk::<2>()?;
    let key_len = usize::try_from(i16::from_be_bytes(*key_len)).ok()?;
    let (key, rest) = rest.split_at_checked(key_len)?;
    let (value_len, rest) = rest.split_first_chunk::<4>()?;
    let value_len = usize::try_from(i32::from_be_bytes(*value_len)).ok()?;
    let (value, rest) = rest.split_at_checked(value_len)?;
    Some((key, value, rest))
}

/// The `(key, value)` entries of `buf`, up to the first malformed one (bytes this
/// module checked or wrote have none).
fn entries(mut buf: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    std::iter::from_fn(move || {
        let (key, value, rest) = split_entry(buf)?;
        buf = rest;
        Some((key, value))
    })
}

/// The text of bytes a [`WireFields`] holds.
fn text(b: &[u8]) -> &str {
    debug_assert!(std::str::from_utf8(b).is_ok());
    // SAFETY: a `WireFields` is made only from bytes `check` validated as UTF-8
    // entry by entry, or written by `WireWriter` from `&str`s; `Bytes` never changes,
    // and `split_entry` cuts at the same entry boundaries every time.
    #[allow(unsafe_code)]
    unsafe {
        std::str::from_utf8_unchecked(b)
    }
}

/// Whether a received ext section can stay in wire form: `Some(entries)` when every
/// entry is well formed with a non-empty UTF-8 key and value, keys are distinct and
/// there are at most [`MAX_ENTRIES`]. `None` means "decode it into a map" (which
/// drops empty entries as Java's nulls, keeps the last of duplicate keys, or
/// reports what is malformed).
pub(crate) fn check(mut buf: &[u8]) -> Option<u8> {
    let mut keys: [&[u8]; MAX_ENTRIES] = [&[]; MAX_ENTRIES];
    let mut n = 0;
    while !buf.is_empty() {
        let (key, value, rest) = split_entry(buf)?;
        if key.is_empty() || value.is_empty() || n == MAX_ENTRIES {
            return None;
        }
        std::str::from_utf8(key).ok()?;
        std::str::from_utf8(value).ok()?;
        if keys[..n].contains(&key) {
            return None;
        }
        keys[n] = key;
        n += 1;
        buf = rest;
    }
    u8::try_from(n).ok()
}

impl WireFields {
    /// `bytes` that [`check`] accepted with `count` entries.
    pub(crate) fn from_checked(bytes: Bytes, count: u8) -> Self {
        debug_assert_eq!(check(&bytes), Some(count));
        Self {
            bytes,
            count,
            taken: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        usize::from(self.count) - self.taken.count_ones() as usize
    }

    pub(crate) fn iter(&self) -> WireIter<'_> {
        WireIter {
            rest: &self.bytes,
            index: 0,
            taken: self.taken,
            left: self.len(),
        }
    }

    /// The entry index and value of `key`.
    fn find(&self, key: &str) -> Option<(usize, &str)> {
        entries(&self.bytes)
            .enumerate()
            .find(|(index, (k, _))| *k == key.as_bytes() && self.taken & (1 << index) == 0)
            .map(|(index, (_, v))| (index, text(v)))
    }

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.find(key).map(|(_, v)| v)
    }

    /// Removes `key`, returning its value (inline when short; a long value is copied
    /// so that it does not keep the whole frame or arena chunk alive).
    pub(crate) fn take(&mut self, key: &str) -> Option<FieldValue> {
        let (index, value) = self.find(key)?;
        let value = FieldValue::from(value);
        self.taken |= 1 << index;
        Some(value)
    }

    /// The encoded entries, when none was taken (an encoder copies them as they are).
    pub(crate) fn whole(&self) -> Option<&[u8]> {
        (self.taken == 0).then_some(&self.bytes[..])
    }
}

/// Iterates over the entries of a [`WireFields`] not taken, in wire order.
pub(crate) struct WireIter<'a> {
    rest: &'a [u8],
    index: u32,
    taken: u32,
    left: usize,
}

impl<'a> Iterator for WireIter<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (key, value, rest) = split_entry(self.rest)?;
            self.rest = rest;
            let index = self.index;
            self.index += 1;
            if self.taken & (1 << index) == 0 {
                self.left -= 1;
                return Some((text(key), text(value)));
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for WireIter<'_> {}

/// Writes header fields in wire form into an arena, for an [`ExtFields`] that needs no
/// vector: the arena's written bytes are split off as the fields' own [`Bytes`] (a
/// reference count on the arena's buffer, which is replaced only when full).
///
/// Keys must be distinct and non-empty to stay in wire form; a duplicate key (the
/// last value wins, as with [`ExtFields::insert`]), an empty key, more than 32
/// fields, or a key or value too long for the wire lengths turn the result into an
/// ordinary map with the same contents.
///
/// ```
/// use bytes::BytesMut;
/// use rmq_protocol::ext::{FieldSink, WireWriter};
/// let mut arena = BytesMut::with_capacity(4096);
/// let mut w = WireWriter::new(&mut arena);
/// w.put_str("a", "group");
/// w.put_i64("e", 3);
/// let fields = w.finish();
/// assert_eq!(fields.get("a"), Some("group"));
/// assert_eq!(fields.get("e"), Some("3"));
/// assert_eq!(fields.len(), 2);
/// ```
pub struct WireWriter<'a> {
    arena: &'a mut BytesMut,
    count: usize,
    /// Cheap filter over the keys written (by length and first and last byte): a
    /// new key is compared with earlier ones only when its bit is already set.
    seen: u64,
    /// Set when the fields cannot stay in wire form: they continue in this map.
    map: Option<ExtFields>,
}

impl std::fmt::Debug for WireWriter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WireWriter")
            .field("count", &self.count)
            .field("as_map", &self.map.is_some())
            .finish_non_exhaustive()
    }
}

fn key_bit(key: &str) -> u64 {
    let b = key.as_bytes();
    let mix = b.len()
        ^ (usize::from(b.first().copied().unwrap_or(0)) * 7)
        ^ (usize::from(b.last().copied().unwrap_or(0)) * 13);
    1 << (mix % 64)
}

impl<'a> WireWriter<'a> {
    /// A writer that starts at the beginning of `arena` (anything left in it is
    /// discarded; its spare capacity is used).
    pub fn new(arena: &'a mut BytesMut) -> Self {
        arena.clear();
        Self {
            arena,
            count: 0,
            seen: 0,
            map: None,
        }
    }

    /// The fields written.
    pub fn finish(self) -> ExtFields {
        let bytes = self.arena.split().freeze();
        match self.map {
            Some(map) => map,
            None => ExtFields::from_wire(WireFields {
                bytes,
                // at most MAX_ENTRIES (32): `put_str` switches to the map beyond
                count: self.count as u8,
                taken: 0,
            }),
        }
    }

    /// Moves what was written into a map, which takes every later field.
    fn switch_to_map(&mut self) -> &mut ExtFields {
        let arena = &mut *self.arena;
        self.map.get_or_insert_with(|| {
            let written = arena.split();
            let mut map = ExtFields::with_capacity(MAX_ENTRIES);
            for (k, v) in entries(&written) {
                map.insert(super::intern(text(k)), text(v));
            }
            map
        })
    }

    fn duplicate(&self, key: &str) -> bool {
        entries(self.arena).any(|(k, _)| k == key.as_bytes())
    }
}

impl WireWriter<'_> {
    /// Adds `key` = `value` (a decoder's keys are not `'static`).
    pub(crate) fn put(&mut self, key: &str, value: &str) {
        if let Some(map) = &mut self.map {
            map.insert(super::intern(key), value);
            return;
        }
        let bit = key_bit(key);
        let fits = !key.is_empty()
            && i16::try_from(key.len()).is_ok()
            && i32::try_from(value.len()).is_ok()
            && self.count < MAX_ENTRIES;
        if !fits || (self.seen & bit != 0 && self.duplicate(key)) {
            self.switch_to_map().insert(super::intern(key), value);
            return;
        }
        self.seen |= bit;
        self.count += 1;
        self.arena.reserve(6 + key.len() + value.len());
        // Both lengths were checked to fit above.
        self.arena.put_i16(key.len() as i16);
        self.arena.put_slice(key.as_bytes());
        self.arena.put_i32(value.len() as i32);
        self.arena.put_slice(value.as_bytes());
    }
}

impl FieldSink for WireWriter<'_> {
    fn put_str(&mut self, key: &'static str, value: &str) {
        self.put(key, value);
    }
}
