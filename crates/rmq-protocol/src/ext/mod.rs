//! `extFields`: the string map that carries typed headers on the wire.
//!
//! Typed headers (see [`crate::header`]) are converted to and from this map by
//! hand. The map keeps insertion order, because the binary fast encoding of the
//! V2 send header writes its keys in a fixed order (`a` … `n`) and byte-exact
//! golden vectors depend on it. Inserting an existing key replaces its value in
//! place, so a decoded map with duplicate keys keeps the last value (as Java does).

mod wire;

use std::borrow::Cow;
use std::fmt;

use crate::ordered_map::OrderedMap;
use crate::value::FieldValue;

pub use wire::WireWriter;
pub(crate) use wire::{WireFields, check as check_wire};

/// An insertion-ordered string map with map semantics (one value per key); values are
/// [`FieldValue`]s (short ones inline).
///
/// Lookups are linear: headers carry a handful of fields, where a scan of a small
/// vector beats hashing.
///
/// A map is held either as a vector of entries, or, with the same behaviour, as the
/// entries' wire form in shared bytes: fields decoded from a frame, or written by a
/// [`WireWriter`] (no vector per header). Changing such a map (other than
/// [`take`](Self::take)) first turns it into a vector.
#[derive(Clone, Default)]
pub struct ExtFields {
    repr: Repr,
}

#[derive(Clone)]
enum Repr {
    Map(OrderedMap<Cow<'static, str>>),
    Wire(WireFields),
}

impl Default for Repr {
    fn default() -> Self {
        Self::Map(OrderedMap::new())
    }
}

/// Where a typed header writes its fields: an [`ExtFields`] map, or a [`WireWriter`]
/// that lays them out as the binary header carries them.
pub trait FieldSink {
    /// Adds `key` = `value`.
    fn put_str(&mut self, key: &'static str, value: &str);

    /// Adds `key` = `value` (a map keeps a clone of the value: no copy of a shared one).
    fn put_value(&mut self, key: &'static str, value: &FieldValue) {
        self.put_str(key, value);
    }

    /// Adds `key` = `value` in decimal.
    fn put_i64(&mut self, key: &'static str, value: i64) {
        self.put_str(key, &FieldValue::from_i64(value));
    }
}

impl FieldSink for ExtFields {
    fn put_str(&mut self, key: &'static str, value: &str) {
        self.insert(key, value);
    }

    fn put_value(&mut self, key: &'static str, value: &FieldValue) {
        self.insert(key, value.clone());
    }

    fn put_i64(&mut self, key: &'static str, value: i64) {
        self.insert(key, FieldValue::from_i64(value));
    }
}

impl ExtFields {
    /// An empty map.
    pub const fn new() -> Self {
        Self {
            repr: Repr::Map(OrderedMap::new()),
        }
    }

    /// An empty map with room for `n` entries.
    pub fn with_capacity(n: usize) -> Self {
        Self {
            repr: Repr::Map(OrderedMap::with_capacity(n)),
        }
    }

    pub(crate) fn from_wire(wire: WireFields) -> Self {
        Self {
            repr: Repr::Wire(wire),
        }
    }

    /// The entries in wire form, when the map holds them so and none was taken.
    pub(crate) fn wire_bytes(&self) -> Option<&[u8]> {
        match &self.repr {
            Repr::Wire(w) => w.whole(),
            Repr::Map(_) => None,
        }
    }

    /// Whether the map holds its entries in wire form (no vector of its own).
    pub fn is_wire_form(&self) -> bool {
        matches!(self.repr, Repr::Wire(_))
    }

    fn map_mut(&mut self) -> &mut OrderedMap<Cow<'static, str>> {
        if let Repr::Wire(w) = &self.repr {
            let mut map = OrderedMap::with_capacity(w.len());
            for (k, v) in w.iter() {
                map.insert(intern(k), FieldValue::from(v));
            }
            self.repr = Repr::Map(map);
        }
        match &mut self.repr {
            Repr::Map(m) => m,
            Repr::Wire(_) => unreachable!("turned into a map above"),
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Map(m) => m.len(),
            Repr::Wire(w) => w.len(),
        }
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value for `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        match &self.repr {
            Repr::Map(m) => m.get(key),
            Repr::Wire(w) => w.get(key),
        }
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Inserts or replaces `key`. A replaced entry keeps its position.
    pub fn insert(&mut self, key: impl Into<Cow<'static, str>>, value: impl Into<FieldValue>) {
        self.map_mut().insert(key.into(), value.into());
    }

    /// Inserts `key` only when `value` is `Some` (Java omits null fields).
    pub fn insert_opt(&mut self, key: &'static str, value: Option<impl Into<FieldValue>>) {
        if let Some(v) = value {
            self.insert(key, v);
        }
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        self.take(key).map(FieldValue::into_string)
    }

    /// Removes `key`, returning its value as stored: no allocation for an inline
    /// value (what [`remove`](Self::remove) costs to make a `String`).
    pub fn take(&mut self, key: &str) -> Option<FieldValue> {
        match &mut self.repr {
            Repr::Map(m) => m.take(key),
            Repr::Wire(w) => w.take(key),
        }
    }

    /// Iterates over `(key, value)` in insertion order.
    pub fn iter(&self) -> Iter<'_> {
        match &self.repr {
            Repr::Map(m) => Iter(IterInner::Map(m.entries().iter())),
            Repr::Wire(w) => Iter(IterInner::Wire(w.iter())),
        }
    }

    /// Removes every entry, keeping the allocation.
    pub fn clear(&mut self) {
        match &mut self.repr {
            Repr::Map(m) => m.clear(),
            Repr::Wire(_) => self.repr = Repr::default(),
        }
    }
}

/// The iterator of [`ExtFields::iter`]: `(key, value)` in insertion order.
pub struct Iter<'a>(IterInner<'a>);

enum IterInner<'a> {
    Map(std::slice::Iter<'a, (Cow<'static, str>, FieldValue)>),
    Wire(wire::WireIter<'a>),
}

impl fmt::Debug for Iter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter")
            .field("left", &self.len())
            .finish_non_exhaustive()
    }
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.0 {
            IterInner::Map(it) => it.next().map(|(k, v)| (k.as_ref(), v.as_str())),
            IterInner::Wire(it) => it.next(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.0 {
            IterInner::Map(it) => it.size_hint(),
            IterInner::Wire(it) => it.size_hint(),
        }
    }
}

impl ExactSizeIterator for Iter<'_> {}

/// Equal when both hold the same entries in the same order, whatever their form.
impl PartialEq for ExtFields {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for ExtFields {}

/// Keys that arrive on every send response (and the V2 send request's keys), so
/// decoding can borrow them instead of allocating a `String` per key.
const KNOWN_KEYS: &[&str] = &[
    "msgId",
    "queueId",
    "queueOffset",
    "transactionId",
    "MSG_REGION",
    "TRACE_ON",
    "batchUniqId",
    "recallHandle",
    "delayTime",
    "a",
    "b",
    "c",
    "d",
    "e",
    "f",
    "g",
    "h",
    "i",
    "j",
    "k",
    "l",
    "m",
    "n",
];

/// `key` as a map key: borrowed when it is a known key, allocated otherwise.
pub(crate) fn intern(key: &str) -> Cow<'static, str> {
    match known_key(key) {
        Some(k) => Cow::Borrowed(k),
        None => Cow::Owned(key.to_owned()),
    }
}

/// The static copy of `key` if it is a known key.
pub(crate) fn known_key(key: &str) -> Option<&'static str> {
    KNOWN_KEYS.iter().find(|k| **k == key).copied()
}

impl fmt::Debug for ExtFields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: Into<Cow<'static, str>>, V: Into<FieldValue>> FromIterator<(K, V)> for ExtFields {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut m = Self::new();
        for (k, v) in iter {
            m.insert(k, v);
        }
        m
    }
}

impl<K: Into<Cow<'static, str>>, V: Into<FieldValue>> Extend<(K, V)> for ExtFields {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_replaces_in_place() {
        let mut m = ExtFields::new();
        m.insert("a", "1");
        m.insert("b", "2");
        m.insert("a", "3");
        assert_eq!(m.iter().collect::<Vec<_>>(), vec![("a", "3"), ("b", "2")]);
        assert_eq!(m.remove("a").as_deref(), Some("3"));
        assert_eq!(m.len(), 1);
        assert!(!m.contains_key("a"));
    }

    #[test]
    fn known_keys_are_borrowed_and_others_owned() {
        assert!(matches!(intern("msgId"), Cow::Borrowed("msgId")));
        assert!(matches!(intern("a"), Cow::Borrowed("a")));
        assert!(matches!(intern("custom"), Cow::Owned(ref k) if k == "custom"));
    }
}
