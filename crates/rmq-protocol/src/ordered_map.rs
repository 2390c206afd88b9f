//! The insertion-ordered string map behind [`ExtFields`](crate::ExtFields) and
//! [`Properties`](crate::message::properties::Properties): one value per key, a
//! replaced entry keeps its position, linear lookups (these maps hold a handful of
//! entries, where a scan beats hashing).

use crate::value::FieldValue;

/// An insertion-ordered map from `K` (any string-like key) to a [`FieldValue`].
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub(crate) struct OrderedMap<K> {
    entries: Vec<(K, FieldValue)>,
}

impl<K: AsRef<str>> OrderedMap<K> {
    pub(crate) const fn new() -> Self {
        Self {
            entries: Vec::new(),
        }
    }

    pub(crate) fn with_capacity(n: usize) -> Self {
        Self {
            entries: Vec::with_capacity(n),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k.as_ref() == key)
            .map(|(_, v)| v.as_str())
    }

    /// Inserts or replaces `key` in place, returning the previous value.
    pub(crate) fn insert(&mut self, key: K, value: FieldValue) -> Option<FieldValue> {
        match self
            .entries
            .iter_mut()
            .find(|(k, _)| k.as_ref() == key.as_ref())
        {
            Some(slot) => Some(std::mem::replace(&mut slot.1, value)),
            None => {
                self.entries.push((key, value));
                None
            }
        }
    }

    /// Removes `key`, keeping the order of the others.
    pub(crate) fn remove(&mut self, key: &str) -> Option<String> {
        self.take(key).map(FieldValue::into_string)
    }

    /// Removes `key`, returning its value as stored (no allocation).
    pub(crate) fn take(&mut self, key: &str) -> Option<FieldValue> {
        let idx = self.entries.iter().position(|(k, _)| k.as_ref() == key)?;
        Some(self.entries.remove(idx).1)
    }

    pub(crate) fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        self.entries.iter().map(|(k, v)| (k.as_ref(), v.as_str()))
    }

    pub(crate) fn entries(&self) -> &[(K, FieldValue)] {
        &self.entries
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }
}
