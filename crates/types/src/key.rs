use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// A key in the ordered key space: rows and index entries alike (DESIGN §4).
///
/// Keys compare as byte strings. Cloning is cheap (reference counted).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Key(pub Bytes);

impl Key {
    /// A key holding a copy of `bytes`.
    pub fn copy_from(bytes: &[u8]) -> Self {
        Key(Bytes::copy_from_slice(bytes))
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The smallest key greater than every key that starts with `self`, or `None` if there is
    /// none (the key is empty or all 0xFF).
    pub fn prefix_successor(&self) -> Option<Key> {
        let mut bytes = self.0.to_vec();
        while let Some(last) = bytes.pop() {
            if last < u8::MAX {
                bytes.push(last + 1);
                return Some(Key(bytes.into()));
            }
        }
        None
    }
}

impl From<&str> for Key {
    fn from(s: &str) -> Self {
        Key::copy_from(s.as_bytes())
    }
}

impl From<&[u8]> for Key {
    fn from(s: &[u8]) -> Self {
        Key::copy_from(s)
    }
}

impl From<String> for Key {
    fn from(s: String) -> Self {
        Key(s.into_bytes().into())
    }
}

impl From<Vec<u8>> for Key {
    fn from(v: Vec<u8>) -> Self {
        Key(v.into())
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Printable keys print as text, others as hex, so conflict messages stay readable.
impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let printable = self.0.iter().all(|b| b.is_ascii_graphic() || *b == b' ');
        if printable && !self.0.is_empty() {
            write!(f, "{:?}", String::from_utf8_lossy(&self.0))
        } else {
            f.write_str("0x")?;
            self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
        }
    }
}

/// A half-open range of keys `[start, end)`; `end: None` means "to the end of the key space".
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct KeyRange {
    /// First key in the range (inclusive).
    pub start: Key,
    /// First key after the range (exclusive); `None` for unbounded.
    pub end: Option<Key>,
}

impl KeyRange {
    /// Every key.
    pub fn all() -> Self {
        KeyRange::default()
    }

    /// Every key that starts with `prefix`.
    pub fn prefix(prefix: impl Into<Key>) -> Self {
        let start = prefix.into();
        let end = start.prefix_successor();
        KeyRange { start, end }
    }

    /// `[start, end)`.
    pub fn between(start: impl Into<Key>, end: impl Into<Key>) -> Self {
        KeyRange {
            start: start.into(),
            end: Some(end.into()),
        }
    }

    /// Whether `key` lies in the range.
    pub fn contains(&self, key: &Key) -> bool {
        *key >= self.start && self.end.as_ref().is_none_or(|end| key < end)
    }

    /// Whether the range holds no key at all.
    pub fn is_empty(&self) -> bool {
        self.end.as_ref().is_some_and(|end| *end <= self.start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_range_holds_exactly_the_keys_with_the_prefix() {
        let range = KeyRange::prefix("ab");
        assert!(range.contains(&"ab".into()));
        assert!(range.contains(&"ab\u{7f}zz".into()));
        assert!(!range.contains(&"ac".into()));
        assert!(!range.contains(&"aa\u{7f}".into()));
        let all_ff = KeyRange::prefix(Key::from(vec![0xFF, 0xFF]));
        assert_eq!(all_ff.end, None);
        assert_eq!(
            KeyRange::prefix(Key::from(vec![1, 0xFF])).end,
            Some(Key::from(vec![2]))
        );
    }

    #[test]
    fn keys_print_as_text_or_hex() {
        assert_eq!(Key::from("acct/7").to_string(), "\"acct/7\"");
        assert_eq!(Key::from(vec![0, 1, 0xab]).to_string(), "0x0001ab");
    }
}
