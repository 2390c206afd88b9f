//! [`FieldValue`]: the value type of [`ExtFields`](crate::ExtFields) and
//! [`Properties`](crate::message::properties::Properties).
//!
//! Nearly every header value is short: numbers, flags, queue ids, offsets, the 32-hex
//! message ids, most topic and group names. Keeping those inline instead of in a
//! `String` of their own removes a heap allocation per field per request and per
//! response on the send path (issue #9: no allocation per send beyond the body and the
//! result).

use std::borrow::{Borrow, Cow};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

use bytes::Bytes;

/// Bytes stored inline (a 32-hex message id and the longest `i64` fit).
pub const INLINE_CAPACITY: usize = 38;

/// A string value: up to [`INLINE_CAPACITY`] bytes inline, longer ones on the heap
/// (an owned `String`, or a shared `Arc<str>` from [`FieldValue::shared`] whose clones
/// cost no allocation). Derefs to `str`; compares, hashes and prints as its text.
///
/// ```
/// use rmq_protocol::FieldValue;
/// let id = FieldValue::from("7F0000011F9C18B4AAC2178EFA4F0000");
/// assert!(id.is_inline());
/// assert_eq!(&*id, "7F0000011F9C18B4AAC2178EFA4F0000");
/// assert_eq!(FieldValue::from_i64(-42), "-42");
/// assert!(!FieldValue::from("x".repeat(100)).is_inline());
/// ```
#[derive(Clone)]
pub struct FieldValue(Repr);

#[derive(Clone)]
enum Repr {
    Inline {
        len: u8,
        buf: [u8; INLINE_CAPACITY],
    },
    Heap(String),
    Shared(Arc<str>),
    /// A slice of shared bytes (a header arena, a received frame) that was checked to
    /// be UTF-8 when the value was made.
    Bytes(Bytes),
}

impl FieldValue {
    /// The empty value.
    pub const fn new() -> Self {
        Self(Repr::Inline {
            len: 0,
            buf: [0; INLINE_CAPACITY],
        })
    }

    /// `v` in decimal, as `i64::to_string` writes it (no allocation).
    pub fn from_i64(v: i64) -> Self {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        let mut n = v.unsigned_abs();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let mut buf = [0u8; INLINE_CAPACITY];
        let mut len = 0;
        if v < 0 {
            buf[0] = b'-';
            len = 1;
        }
        let d = &digits[i..];
        buf[len..len + d.len()].copy_from_slice(d);
        len += d.len();
        Self(Repr::Inline {
            len: len as u8,
            buf,
        })
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Inline { len, buf } => {
                let bytes = &buf[..usize::from(*len)];
                debug_assert!(std::str::from_utf8(bytes).is_ok());
                // SAFETY: an inline value is only ever filled by `inline` (a copy of a
                // whole `&str` of exactly `len` bytes) or `from_i64` (ASCII digits and
                // `-`), and never mutated afterwards, so `buf[..len]` is valid UTF-8.
                // Validating here instead cost ~11 % of a batch send's instructions
                // (callgrind): every property and header access went through it.
                #[allow(unsafe_code)]
                unsafe {
                    std::str::from_utf8_unchecked(bytes)
                }
            }
            Repr::Heap(s) => s,
            Repr::Shared(s) => s,
            Repr::Bytes(b) => {
                debug_assert!(std::str::from_utf8(b).is_ok());
                // SAFETY: `Repr::Bytes` is only made by `from_utf8_bytes`, which
                // checks that the bytes are UTF-8; `Bytes` never changes.
                #[allow(unsafe_code)]
                unsafe {
                    std::str::from_utf8_unchecked(b)
                }
            }
        }
    }

    /// `bytes` as a value without copying them when they are longer than the inline
    /// capacity (the value then shares `bytes`' buffer: one reference count, no
    /// allocation). Fails when `bytes` are not UTF-8.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use rmq_protocol::FieldValue;
    /// let long = Bytes::from("k".repeat(50));
    /// let v = FieldValue::from_utf8_bytes(long.clone()).unwrap();
    /// assert_eq!(&*v, "k".repeat(50));
    /// assert!(!v.is_inline());
    /// assert!(FieldValue::from_utf8_bytes(Bytes::from_static(b"\xff")).is_err());
    /// ```
    pub fn from_utf8_bytes(bytes: Bytes) -> Result<Self, std::str::Utf8Error> {
        let text = std::str::from_utf8(&bytes)?;
        if let Some(inline) = Self::inline(text) {
            return Ok(inline);
        }
        Ok(Self(Repr::Bytes(bytes)))
    }

    /// `s` inline when it fits, else in one shared allocation that every clone of the
    /// value shares (for a long value cloned into each attempt of a send, such as the
    /// encoded properties).
    ///
    /// ```
    /// use rmq_protocol::FieldValue;
    /// let long = FieldValue::shared(&"p".repeat(60));
    /// let copy = long.clone(); // no allocation: the text is shared
    /// assert_eq!(copy, long);
    /// assert!(FieldValue::shared("short").is_inline());
    /// ```
    pub fn shared(s: &str) -> Self {
        Self::inline(s).unwrap_or_else(|| Self(Repr::Shared(Arc::from(s))))
    }

    /// Whether the text is stored inline (no heap allocation).
    pub fn is_inline(&self) -> bool {
        matches!(self.0, Repr::Inline { .. })
    }

    /// The text as a `String` (allocates for an inline value).
    pub fn into_string(self) -> String {
        match self.0 {
            Repr::Heap(s) => s,
            Repr::Inline { .. } | Repr::Shared(_) | Repr::Bytes(_) => self.as_str().to_owned(),
        }
    }

    fn inline(s: &str) -> Option<Self> {
        (s.len() <= INLINE_CAPACITY).then(|| {
            let mut buf = [0u8; INLINE_CAPACITY];
            buf[..s.len()].copy_from_slice(s.as_bytes());
            Self(Repr::Inline {
                len: s.len() as u8,
                buf,
            })
        })
    }
}

impl Default for FieldValue {
    fn default() -> Self {
        Self::new()
    }
}

impl Deref for FieldValue {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for FieldValue {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for FieldValue {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for FieldValue {
    fn from(s: &str) -> Self {
        Self::inline(s).unwrap_or_else(|| Self(Repr::Heap(s.to_owned())))
    }
}

impl From<&String> for FieldValue {
    fn from(s: &String) -> Self {
        Self::from(s.as_str())
    }
}

impl From<String> for FieldValue {
    /// Keeps the `String`'s buffer when the text is too long to inline.
    fn from(s: String) -> Self {
        Self::inline(&s).unwrap_or(Self(Repr::Heap(s)))
    }
}

impl From<Cow<'_, str>> for FieldValue {
    fn from(s: Cow<'_, str>) -> Self {
        match s {
            Cow::Borrowed(b) => Self::from(b),
            Cow::Owned(o) => Self::from(o),
        }
    }
}

impl From<Box<str>> for FieldValue {
    fn from(s: Box<str>) -> Self {
        Self::from(String::from(s))
    }
}

impl From<&FieldValue> for FieldValue {
    fn from(v: &FieldValue) -> Self {
        v.clone()
    }
}

impl From<&FieldValue> for String {
    fn from(v: &FieldValue) -> Self {
        v.as_str().to_owned()
    }
}

impl From<FieldValue> for String {
    fn from(v: FieldValue) -> Self {
        v.into_string()
    }
}

impl PartialEq for FieldValue {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for FieldValue {}

impl PartialEq<str> for FieldValue {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for FieldValue {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for FieldValue {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq<FieldValue> for str {
    fn eq(&self, other: &FieldValue) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<FieldValue> for &str {
    fn eq(&self, other: &FieldValue) -> bool {
        *self == other.as_str()
    }
}

impl PartialEq<FieldValue> for String {
    fn eq(&self, other: &FieldValue) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialOrd for FieldValue {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Ordered as the text (`str`'s byte order).
impl Ord for FieldValue {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for FieldValue {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Debug for FieldValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for FieldValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_written_like_to_string() {
        for v in [
            0,
            1,
            -1,
            9,
            10,
            42,
            -42,
            i64::MAX,
            i64::MIN,
            1_700_000_000_000,
        ] {
            let f = FieldValue::from_i64(v);
            assert_eq!(f.as_str(), v.to_string());
            assert!(f.is_inline());
        }
    }

    #[test]
    fn short_text_is_inline_long_text_on_the_heap_and_both_read_back() {
        let at_cap = "a".repeat(INLINE_CAPACITY);
        let over = "b".repeat(INLINE_CAPACITY + 1);
        assert!(FieldValue::from(at_cap.as_str()).is_inline());
        assert!(!FieldValue::from(over.as_str()).is_inline());
        assert_eq!(FieldValue::from(over.clone()).as_str(), over);
        assert_eq!(FieldValue::from(at_cap.clone()).into_string(), at_cap);
        assert_eq!(FieldValue::from("héllo"), "héllo");
        assert_eq!(FieldValue::new(), "");
        assert_eq!(format!("{:?}", FieldValue::from("q\"")), "\"q\\\"\"");
        assert_eq!(FieldValue::from(Cow::Borrowed("x")), FieldValue::from("x"));
    }
}
