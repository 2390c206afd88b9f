//! `extFields`: the string map that carries typed headers on the wire.
//!
//! Typed headers (see [`crate::header`]) are converted to and from this map by
//! hand. The map keeps insertion order, because the binary fast encoding of the
//! V2 send header writes its keys in a fixed order (`a` … `n`) and byte-exact
//! golden vectors depend on it. Inserting an existing key replaces its value in
//! place, so a decoded map with duplicate keys keeps the last value (as Java does).

use std::borrow::Cow;
use std::fmt;

use crate::ordered_map::OrderedMap;
use crate::value::FieldValue;

/// An insertion-ordered string map with map semantics (one value per key); values are
/// [`FieldValue`]s (short ones inline).
///
/// Lookups are linear: headers carry a handful of fields, where a scan of a small
/// vector beats hashing.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ExtFields {
    entries: OrderedMap<Cow<'static, str>>,
}

impl ExtFields {
    /// An empty map.
    pub const fn new() -> Self {
        Self {
            entries: OrderedMap::new(),
        }
    }

    /// An empty map with room for `n` entries.
    pub fn with_capacity(n: usize) -> Self {
        Self {
            entries: OrderedMap::with_capacity(n),
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The value for `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.get(key)
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Inserts or replaces `key`. A replaced entry keeps its position.
    pub fn insert(&mut self, key: impl Into<Cow<'static, str>>, value: impl Into<FieldValue>) {
        self.entries.insert(key.into(), value.into());
    }

    /// Inserts `key` only when `value` is `Some` (Java omits null fields).
    pub fn insert_opt(&mut self, key: &'static str, value: Option<impl Into<FieldValue>>) {
        if let Some(v) = value {
            self.insert(key, v);
        }
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        self.entries.remove(key)
    }

    /// Removes `key`, returning its value as stored: no allocation for an inline
    /// value (what [`remove`](Self::remove) costs to make a `String`).
    pub fn take(&mut self, key: &str) -> Option<FieldValue> {
        self.entries.take(key)
    }

    /// Iterates over `(key, value)` in insertion order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        self.entries.iter()
    }

    /// Removes every entry, keeping the allocation.
    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

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
