//! [`Properties`]: the map kept in its wire text form while every entry can be
//! written, so a message holds one small string and encoding it is a copy.

use std::fmt;
use std::hash::{Hash, Hasher};

use super::{NAME_VALUE_SEPARATOR, PROPERTY_SEPARATOR, has_separator};
use crate::ordered_map::OrderedMap;
use crate::value::FieldValue;

/// Bytes reserved per entry by [`Properties::with_capacity`]: `WAIT=true` takes 10,
/// a `UNIQ_KEY` 42, a short tag 10 to 20.
const ENTRY_HINT: usize = 16;

/// Entries the text form keeps the bounds of; a map with more keeps a vector.
const INDEXED: usize = 6;

/// An insertion-ordered string map with one value per key.
///
/// Inserting an existing key replaces its value in place, so a decoded text with a
/// duplicate key keeps the last value (as Java's `HashMap` does). Lookups are linear:
/// messages carry a handful of properties.
///
/// While every entry can be encoded (a non-empty name, no `0x01` / `0x02` in name or
/// value), there are at most six and the text is at most 255 bytes (a message's usual
/// properties take 50 to 120), the map is stored as its 5.2+ text form
/// (`name 0x01 value 0x02` per entry) with each entry's bounds: a message with `WAIT`
/// and a `UNIQ_KEY` holds one 64-byte string instead of a vector of entries, a lookup
/// compares names without scanning the text, and
/// [`encode_properties`](super::encode_properties) copies it. The map itself accepts
/// any strings: past six entries or 255 bytes, or once an entry that cannot be encoded
/// is inserted,
/// it keeps its entries as a vector, behaving the same, and
/// [`encode_properties`](super::encode_properties) refuses what cannot be encoded with
/// the entry's error. [`Message`](crate::message::Message)'s setters check earlier.
#[derive(Clone)]
pub struct Properties {
    repr: Repr,
}

#[derive(Clone)]
enum Repr {
    /// Entries that can all be encoded, names unique.
    Text(Text),
    /// Any entries.
    Map(OrderedMap<FieldValue>),
}

/// The wire text of up to [`INDEXED`] entries and where each one's parts end.
#[derive(Clone)]
struct Text {
    text: String,
    /// Per entry: the offset of its `0x01` and the offset just past its `0x02`.
    bounds: [(u8, u8); INDEXED],
    len: u8,
}

/// Whether an entry can live in the text form.
fn text_ok(key: &str, value: &str) -> bool {
    !key.is_empty() && !has_separator(key) && !has_separator(value)
}

impl Text {
    const fn new() -> Self {
        Self {
            text: String::new(),
            bounds: [(0, 0); INDEXED],
            len: 0,
        }
    }

    fn with_capacity(bytes: usize) -> Self {
        Self {
            text: String::with_capacity(bytes),
            ..Self::new()
        }
    }

    fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Where entry `i` starts.
    fn start(&self, i: usize) -> usize {
        if i == 0 {
            0
        } else {
            usize::from(self.bounds[i - 1].1)
        }
    }

    /// Entry `i`'s name and value (`i < len`). The separators are ASCII, so every
    /// bound is a char boundary.
    fn entry(&self, i: usize) -> (&str, &str) {
        let (sep, end) = self.bounds[i];
        let (sep, end) = (usize::from(sep), usize::from(end));
        let name = self.text.get(self.start(i)..sep).unwrap_or_default();
        let value = self.text.get(sep + 1..end - 1).unwrap_or_default();
        (name, value)
    }

    fn position(&self, key: &str) -> Option<usize> {
        (0..self.len()).find(|&i| {
            let (sep, start) = (usize::from(self.bounds[i].0), self.start(i));
            sep - start == key.len() && self.text.as_bytes()[start..sep] == *key.as_bytes()
        })
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.position(key).map(|i| self.entry(i).1)
    }

    /// Inserts or replaces an entry that can be encoded; `Err` when it does not fit
    /// (no bound left, or the text would outgrow the offsets).
    fn try_insert(&mut self, key: &str, value: &str) -> Result<Option<String>, ()> {
        if let Some(i) = self.position(key) {
            let old = self.entry(i).1;
            let grown = self.text.len() - old.len() + value.len();
            if grown > usize::from(u8::MAX) {
                return Err(());
            }
            let previous = old.to_owned();
            let (sep, end) = self.bounds[i];
            let (from, to) = (usize::from(sep) + 1, usize::from(end) - 1);
            self.text.replace_range(from..to, value);
            self.shift(i, to, from + value.len());
            return Ok(Some(previous));
        }
        let len = self.len();
        let grown = self.text.len() + key.len() + value.len() + 2;
        if len == INDEXED || grown > usize::from(u8::MAX) {
            return Err(());
        }
        self.text.reserve(key.len() + value.len() + 2);
        self.text.push_str(key);
        let sep = self.text.len();
        self.text.push(NAME_VALUE_SEPARATOR);
        self.text.push_str(value);
        self.text.push(PROPERTY_SEPARATOR);
        // Both fit: checked against `grown` above.
        self.bounds[len] = (
            u8::try_from(sep).unwrap_or(u8::MAX),
            u8::try_from(self.text.len()).unwrap_or(u8::MAX),
        );
        self.len += 1;
        Ok(None)
    }

    /// Moves every bound at or past `old` by `new - old`: entry `i`'s end and every
    /// later entry's bounds (their text moved when entry `i`'s value changed size).
    fn shift(&mut self, i: usize, old: usize, new: usize) {
        let moved = |b: u8| {
            let b = usize::from(b);
            let b = if b >= old { b + new - old } else { b };
            // Within the text, which fits in u8 (checked by the caller).
            u8::try_from(b).unwrap_or(u8::MAX)
        };
        let len = self.len();
        for bound in &mut self.bounds[i..len] {
            *bound = (moved(bound.0), moved(bound.1));
        }
    }

    fn remove(&mut self, key: &str) -> Option<String> {
        let i = self.position(key)?;
        let previous = self.entry(i).1.to_owned();
        let (start, end) = (self.start(i), usize::from(self.bounds[i].1));
        self.text.replace_range(start..end, "");
        let len = self.len();
        self.bounds.copy_within(i + 1..len, i);
        self.len -= 1;
        // Later entries moved back by the removed entry's length (bounds fit in u8).
        let gone = u8::try_from(end - start).unwrap_or(0);
        for bound in &mut self.bounds[i..len - 1] {
            *bound = (bound.0 - gone, bound.1 - gone);
        }
        Some(previous)
    }

    fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        (0..self.len()).map(|i| self.entry(i))
    }

    fn clear(&mut self) {
        self.text.clear();
        self.len = 0;
    }
}

impl Properties {
    /// An empty map.
    pub const fn new() -> Self {
        Self {
            repr: Repr::Text(Text::new()),
        }
    }

    /// An empty map with room for about `n` entries of the usual size.
    pub fn with_capacity(n: usize) -> Self {
        Self {
            repr: Repr::Text(Text::with_capacity(n.saturating_mul(ENTRY_HINT))),
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Text(t) => t.len(),
            Repr::Map(m) => m.len(),
        }
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        match &self.repr {
            Repr::Text(t) => t.len() == 0,
            Repr::Map(m) => m.is_empty(),
        }
    }

    /// The value for `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        match &self.repr {
            Repr::Text(t) => t.get(key),
            Repr::Map(m) => m.get(key),
        }
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// How many of `wanted` are present, in one pass over the entries.
    pub(crate) fn count_keys(&self, wanted: &[&str]) -> usize {
        match &self.repr {
            Repr::Text(t) => t.iter().filter(|(k, _)| wanted.contains(k)).count(),
            Repr::Map(m) => m.iter().filter(|(k, _)| wanted.contains(k)).count(),
        }
    }

    /// The first entry that cannot be encoded, if any (none in the text form).
    pub(crate) fn first_unencodable(&self) -> Option<(&str, &str)> {
        match &self.repr {
            Repr::Text(_) => None,
            Repr::Map(m) => m.iter().find(|(k, v)| !text_ok(k, v)),
        }
    }

    /// Inserts or replaces `key`, returning the previous value. A replaced entry keeps
    /// its position. No check is made here; see [`check_encodable`](super::check_encodable).
    pub fn insert(
        &mut self,
        key: impl Into<FieldValue>,
        value: impl Into<FieldValue>,
    ) -> Option<String> {
        let (key, value) = (key.into(), value.into());
        if let Repr::Text(t) = &mut self.repr
            && text_ok(&key, &value)
            && let Ok(previous) = t.try_insert(&key, &value)
        {
            return previous;
        }
        self.map_mut()
            .insert(key, value)
            .map(FieldValue::into_string)
    }

    /// The vector form, switched to if the map is in text form.
    fn map_mut(&mut self) -> &mut OrderedMap<FieldValue> {
        if let Repr::Text(t) = &self.repr {
            let mut map = OrderedMap::with_capacity(t.len() + 1);
            for (k, v) in t.iter() {
                map.insert(FieldValue::from(k), FieldValue::from(v));
            }
            self.repr = Repr::Map(map);
        }
        match &mut self.repr {
            Repr::Map(m) => m,
            Repr::Text(_) => unreachable!("turned into a vector above"),
        }
    }

    /// Removes `key`, returning its value. The order of the others is kept.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        match &mut self.repr {
            Repr::Text(t) => t.remove(key),
            Repr::Map(m) => m.remove(key),
        }
    }

    /// Iterates over `(key, value)` in insertion order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        let len = self.len();
        let (text, map) = match &self.repr {
            Repr::Text(t) => (Some(t.iter()), None),
            Repr::Map(m) => (None, Some(m.iter())),
        };
        Iter {
            inner: text.into_iter().flatten().chain(map.into_iter().flatten()),
            left: len,
        }
    }

    /// Removes every entry, keeping the allocation.
    pub fn clear(&mut self) {
        match &mut self.repr {
            Repr::Text(t) => t.clear(),
            Repr::Map(m) => m.clear(),
        }
    }

    /// The 5.2+ text form when every entry can be encoded (then it is what
    /// [`encode_properties`](super::encode_properties) writes).
    pub(super) fn text(&self) -> Option<&str> {
        match &self.repr {
            Repr::Text(t) => Some(&t.text),
            Repr::Map(_) => None,
        }
    }
}

/// An iterator with its exact length.
struct Iter<I> {
    inner: I,
    left: usize,
}

impl<'a, I: Iterator<Item = (&'a str, &'a str)>> Iterator for Iter<I> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.inner.next()?;
        self.left = self.left.saturating_sub(1);
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl<'a, I: Iterator<Item = (&'a str, &'a str)>> ExactSizeIterator for Iter<I> {}

impl Default for Properties {
    fn default() -> Self {
        Self::new()
    }
}

/// Two maps are equal when they hold the same entries in the same order, whichever
/// form each is kept in.
impl PartialEq for Properties {
    fn eq(&self, other: &Self) -> bool {
        match (&self.repr, &other.repr) {
            (Repr::Text(a), Repr::Text(b)) => a.text == b.text,
            _ => self.iter().eq(other.iter()),
        }
    }
}

impl Eq for Properties {}

impl Hash for Properties {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_usize(self.len());
        for (k, v) in self.iter() {
            k.hash(state);
            v.hash(state);
        }
    }
}

impl fmt::Debug for Properties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: Into<FieldValue>, V: Into<FieldValue>> FromIterator<(K, V)> for Properties {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut m = Self::new();
        m.extend(iter);
        m
    }
}

impl<K: Into<FieldValue>, V: Into<FieldValue>> Extend<(K, V)> for Properties {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The vector form, for comparison.
    fn as_map(p: &Properties) -> Properties {
        let mut m = p.clone();
        m.map_mut();
        m
    }

    #[test]
    fn a_usual_message_is_one_small_string() {
        let mut p = Properties::with_capacity(4);
        p.insert("WAIT", "true");
        p.insert("UNIQ_KEY", "7F0000011F9C18B4AAC2178EFA4F0000");
        assert_eq!(
            p.text(),
            Some("WAIT\u{1}true\u{2}UNIQ_KEY\u{1}7F0000011F9C18B4AAC2178EFA4F0000\u{2}")
        );
        let Repr::Text(t) = &p.repr else {
            panic!("text form expected")
        };
        assert_eq!(t.text.capacity(), 64, "no reallocation for WAIT + UNIQ_KEY");
        assert_eq!(p.len(), 2);
        assert_eq!(p.iter().len(), 2);
    }

    #[test]
    fn replace_and_remove_edit_the_text_in_place() {
        let mut p: Properties = [("A", "1"), ("B", "22"), ("C", "333")]
            .into_iter()
            .collect();
        assert_eq!(p.insert("B", "x"), Some("22".into()));
        assert_eq!(p.text(), Some("A\u{1}1\u{2}B\u{1}x\u{2}C\u{1}333\u{2}"));
        assert_eq!(p.insert("A", ""), Some("1".into()));
        assert_eq!(p.get("A"), Some(""));
        assert_eq!(p.remove("B").as_deref(), Some("x"));
        assert_eq!(p.remove("B"), None);
        assert_eq!(p.text(), Some("A\u{1}\u{2}C\u{1}333\u{2}"));
        // A name that is a prefix or suffix of another is a different name.
        p.insert("C3", "v");
        p.insert("CC", "w");
        assert_eq!(p.get("C"), Some("333"));
        assert_eq!(p.get("C3"), Some("v"));
        assert_eq!(p.get("333"), None);
        p.clear();
        assert!(p.is_empty() && p.text() == Some(""));
    }

    #[test]
    fn an_entry_that_cannot_be_encoded_switches_to_the_vector_form() {
        let mut p: Properties = [("A", "1"), ("B", "2")].into_iter().collect();
        assert_eq!(p.insert("", "empty name"), None);
        assert!(p.text().is_none());
        assert_eq!(
            p.iter().collect::<Vec<_>>(),
            [("A", "1"), ("B", "2"), ("", "empty name")]
        );
        let q: Properties = [("A", "1"), ("B", "2"), ("", "empty name")]
            .into_iter()
            .collect();
        assert_eq!(p, q);
        assert_eq!(p.insert("A", "a\u{1}b"), Some("1".into()));
        assert_eq!(p.get("A"), Some("a\u{1}b"));
    }

    #[test]
    fn a_seventh_entry_switches_to_the_vector_form() {
        let mut p = Properties::new();
        for (i, k) in ["A", "B", "C", "D", "E", "F"].into_iter().enumerate() {
            p.insert(k, "v".repeat(i));
        }
        assert!(p.text().is_some(), "six entries: text form");
        assert_eq!(p.insert("C", "longer value"), Some("vv".into()));
        assert_eq!(p.remove("A"), Some(String::new()));
        assert_eq!(p.get("F"), Some("vvvvv"));
        assert_eq!(p.get("C"), Some("longer value"));
        p.insert("A", "back");
        p.insert("G", "seventh");
        assert!(p.text().is_none(), "seven entries: vector form");
        assert_eq!(
            p.iter().map(|(k, _)| k).collect::<String>(),
            "BCDEFAG",
            "order kept across the switch"
        );
        assert_eq!(p.get("G"), Some("seventh"));
        // Past 255 bytes of text, too.
        let mut long: Properties = [("A", "a"), ("B", "b")].into_iter().collect();
        assert_eq!(long.insert("A", "x".repeat(248)), Some("a".into()));
        assert!(long.text().is_some(), "255 bytes: text form");
        long.insert("C", "c");
        assert!(long.text().is_none(), "259 bytes: vector form");
        assert_eq!(long.get("A").map(str::len), Some(248));
        assert_eq!(long.iter().map(|(k, _)| k).collect::<String>(), "ABC");
    }

    #[test]
    fn equal_maps_hash_alike_in_either_form() {
        use std::collections::hash_map::DefaultHasher;
        let hash = |p: &Properties| {
            let mut h = DefaultHasher::new();
            p.hash(&mut h);
            h.finish()
        };
        let p: Properties = [("K", "v"), ("L", "w")].into_iter().collect();
        assert_eq!(p, as_map(&p));
        assert_eq!(hash(&p), hash(&as_map(&p)));
        let reordered: Properties = [("L", "w"), ("K", "v")].into_iter().collect();
        assert_ne!(p, reordered);
    }

    /// An operation on both forms.
    #[derive(Debug, Clone)]
    enum Op {
        Insert(String, String),
        Remove(String),
        Clear,
    }

    fn op() -> impl Strategy<Value = Op> {
        // Names from a small set so that replacements and removals hit; separators
        // and empty strings now and then.
        // Up to 12 valid names: past the six the text form indexes.
        let name = "[abc\u{1}]{0,2}";
        let value = "[xé\u{1}\u{2}]{0,3}";
        prop_oneof![
            6 => (name, value).prop_map(|(k, v)| Op::Insert(k, v)),
            2 => name.prop_map(Op::Remove),
            1 => Just(Op::Clear),
        ]
    }

    proptest! {
        #[test]
        fn text_form_behaves_like_the_vector_form(ops in proptest::collection::vec(op(), 0..24)) {
            let mut text = Properties::new();
            let mut map = as_map(&Properties::new());
            for op in ops {
                match op {
                    Op::Insert(k, v) => prop_assert_eq!(
                        text.insert(k.as_str(), v.as_str()),
                        map.insert(k, v)
                    ),
                    Op::Remove(k) => prop_assert_eq!(text.remove(&k), map.remove(&k)),
                    Op::Clear => {
                        text.clear();
                        map.clear();
                    }
                }
                prop_assert_eq!(text.len(), map.len());
                prop_assert_eq!(text.iter().len(), map.iter().len());
                prop_assert_eq!(text.iter().collect::<Vec<_>>(), map.iter().collect::<Vec<_>>());
                for k in ["", "a", "b", "c", "ab", "ba", "cc", "a\u{1}"] {
                    prop_assert_eq!(text.get(k), map.get(k));
                }
                let mut a = String::new();
                let mut b = String::new();
                prop_assert_eq!(
                    super::super::encode_properties(&text, &mut a),
                    super::super::encode_properties(&map, &mut b)
                );
                prop_assert_eq!(a, b);
            }
        }
    }
}
