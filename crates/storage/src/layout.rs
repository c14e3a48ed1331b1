//! The byte layout of the two keyspaces: how a version `key@commit_ts` and the bookkeeping in
//! `meta` become fjall keys and values, and back. Everything that knows the bytes lives here;
//! the rest of the crate speaks in [`Key`]s, [`Timestamp`]s and [`MetaKey`]s.
//!
//! A version key is `escape(user key) ‖ terminator ‖ !commit_ts`:
//!
//! - *Escaping* makes the encoding of a user key *prefix-free* while keeping byte order: every
//!   `0x00` becomes `0x00 0xFF`, and the key ends with the terminator `0x00 0x01`. Inside an
//!   encoded key a `0x00` is always followed by `0xFF` or `0x01`, so no encoded key is a prefix
//!   of another, and `a < b` as byte strings exactly when `enc(a) < enc(b)`. (Without it, the
//!   versions of `"a"` and `"a\0…"` would interleave.)
//! - The timestamp is stored as the bitwise NOT of `commit_ts`, 8 bytes big-endian, so the
//!   versions of one key sort newest first and "the newest version at or before `ts`" is the
//!   first entry at or after `enc(key) ‖ !ts`.
//!
//! A version value is one tag byte, [`TAG_TOMBSTONE`] or [`TAG_VALUE`], then the row bytes.

use std::ops::Bound;

use bytes::Bytes;
use cairn_types::{Error, JournalId, Key, Position, Result, Timestamp};

/// Replaces a `0x00` byte of a user key: `0x00 0xFF`.
const ESCAPED_ZERO: [u8; 2] = [0x00, 0xFF];
/// Ends every encoded user key: `0x00 0x01`, smaller than any escaped byte that may follow.
const TERMINATOR: [u8; 2] = [0x00, 0x01];
/// Bytes of the inverted commit timestamp after the encoded user key.
const TS_LEN: usize = 8;

/// The longest key fjall stores (it asserts on longer ones, including range bounds).
pub(crate) const MAX_FJALL_KEY: usize = u16::MAX as usize;

/// Tag byte of a version value that deletes the key.
pub(crate) const TAG_TOMBSTONE: u8 = 0;
/// Tag byte of a version value that holds a row.
pub(crate) const TAG_VALUE: u8 = 1;

/// Appends the escaped, terminated encoding of `key` to `out`.
pub(crate) fn encode_key_into(key: &[u8], out: &mut Vec<u8>) {
    out.reserve(key.len() + TERMINATOR.len() + TS_LEN);
    for &byte in key {
        if byte == 0x00 {
            out.extend_from_slice(&ESCAPED_ZERO);
        } else {
            out.push(byte);
        }
    }
    out.extend_from_slice(&TERMINATOR);
}

/// The escaped, terminated encoding of `key`: the prefix shared by all its versions.
pub(crate) fn encode_key(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_key_into(key, &mut out);
    out
}

/// The fjall key of the version of `key` committed at `commit_ts`.
pub(crate) fn version_key(key: &[u8], commit_ts: Timestamp) -> Vec<u8> {
    let mut out = encode_key(key);
    push_ts(&mut out, commit_ts);
    out
}

/// The fjall key of a version of the key whose encoding is `encoded`.
pub(crate) fn version_key_of_encoded(encoded: &[u8], commit_ts: Timestamp) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded.len() + TS_LEN);
    out.extend_from_slice(encoded);
    push_ts(&mut out, commit_ts);
    out
}

fn push_ts(out: &mut Vec<u8>, ts: Timestamp) {
    out.extend_from_slice(&(!ts.0).to_be_bytes());
}

/// The smallest fjall key after every version of the key encoded as `encoded`: the
/// terminator's last byte `0x01` becomes `0x02`, which no escaped byte can start with, so
/// this is exactly where the next user key's versions begin.
pub(crate) fn after_versions_of(encoded: &[u8]) -> Vec<u8> {
    let mut out = encoded.to_vec();
    if let Some(last) = out.last_mut() {
        *last = last.saturating_add(1);
    }
    out
}

/// Splits a version key into the encoded user key (terminator included) and the commit
/// timestamp, checking only the framing; [`decode_key`] checks the escaping.
pub(crate) fn split_version_key(bytes: &[u8]) -> Result<(&[u8], Timestamp)> {
    let Some(split) = bytes.len().checked_sub(TS_LEN) else {
        return Err(corrupt_key("shorter than a timestamp", bytes));
    };
    let (encoded, ts) = bytes.split_at(split);
    if !encoded.ends_with(&TERMINATOR) {
        return Err(corrupt_key("no key terminator before the timestamp", bytes));
    }
    let mut raw = [0u8; TS_LEN];
    raw.copy_from_slice(ts);
    Ok((encoded, Timestamp(!u64::from_be_bytes(raw))))
}

/// Decodes an encoded user key (as returned by [`split_version_key`]).
pub(crate) fn decode_key(encoded: &[u8]) -> Result<Key> {
    let mut out = Vec::with_capacity(encoded.len());
    let mut bytes = encoded.iter().copied();
    while let Some(byte) = bytes.next() {
        if byte != 0x00 {
            out.push(byte);
            continue;
        }
        match bytes.next() {
            Some(0xFF) => out.push(0x00),
            Some(0x01) if bytes.next().is_none() => return Ok(Key::from(out)),
            _ => return Err(corrupt_key("bad escape sequence", encoded)),
        }
    }
    Err(corrupt_key("no key terminator", encoded))
}

fn corrupt_key(what: &str, bytes: &[u8]) -> Error {
    Error::Data(format!(
        "version key {} in keyspace `versions`: {what}",
        Key::copy_from(bytes)
    ))
}

/// The lower fjall bound for the versions of keys `>= key` (encoded). Fjall refuses keys (and
/// bounds) longer than [`MAX_FJALL_KEY`]; for such a start, every stored key `>= enc(key)` is
/// exactly every stored key `> enc(key)[..MAX]`, because no stored key is that long.
pub(crate) fn lower_bound(encoded: Vec<u8>) -> Bound<Vec<u8>> {
    if encoded.len() <= MAX_FJALL_KEY {
        Bound::Included(encoded)
    } else {
        Bound::Excluded(encoded[..MAX_FJALL_KEY].to_vec())
    }
}

/// The upper fjall bound for the versions of keys `< key` (encoded). For a too-long bound,
/// every stored key `< enc(key)` is exactly every stored key `<= enc(key)[..MAX]`.
pub(crate) fn upper_bound(encoded: Vec<u8>) -> Bound<Vec<u8>> {
    if encoded.len() <= MAX_FJALL_KEY {
        Bound::Excluded(encoded)
    } else {
        Bound::Included(encoded[..MAX_FJALL_KEY].to_vec())
    }
}

/// Whether fjall bounds `(lower, upper)` may hold any key. Fjall (like `BTreeMap`) must not
/// be handed inverted bounds, which clamped or re-seeked bounds can produce.
pub(crate) fn bounds_may_hold_keys(lower: &Bound<Vec<u8>>, upper: &Bound<Vec<u8>>) -> bool {
    match (lower, upper) {
        (Bound::Unbounded, _) | (_, Bound::Unbounded) => true,
        (Bound::Included(lo), Bound::Included(hi)) => lo <= hi,
        (Bound::Included(lo) | Bound::Excluded(lo), Bound::Excluded(hi) | Bound::Included(hi)) => {
            lo < hi
        }
    }
}

/// The stored form of a version's value: tag byte, then the row.
pub(crate) fn encode_value(value: Option<&[u8]>) -> Vec<u8> {
    match value {
        None => vec![TAG_TOMBSTONE],
        Some(row) => {
            let mut out = Vec::with_capacity(1 + row.len());
            out.push(TAG_VALUE);
            out.extend_from_slice(row);
            out
        }
    }
}

/// Decodes a stored version value: `None` for a tombstone.
pub(crate) fn decode_value(stored: &[u8], version_key: &[u8]) -> Result<Option<Bytes>> {
    match stored.split_first() {
        Some((&TAG_VALUE, row)) => Ok(Some(Bytes::copy_from_slice(row))),
        Some((&TAG_TOMBSTONE, [])) => Ok(None),
        Some((tag, _)) => Err(Error::Data(format!(
            "version {} in keyspace `versions`: unknown value tag {tag} (or a tombstone with \
             bytes after it)",
            Key::copy_from(version_key)
        ))),
        None => Err(Error::Data(format!(
            "version {} in keyspace `versions`: empty value (no tag byte)",
            Key::copy_from(version_key)
        ))),
    }
}

/// What lives in keyspace `meta`. Values are big-endian `u64`s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MetaKey {
    /// `applied/<journal u32 BE>` → the position after the last record applied from it.
    Applied(JournalId),
    /// `gc_horizon` → the GC horizon in force.
    GcHorizon,
}

/// Prefix of the [`MetaKey::Applied`] keys.
pub(crate) const APPLIED_PREFIX: &[u8] = b"applied/";
const GC_HORIZON_KEY: &[u8] = b"gc_horizon";

impl MetaKey {
    /// The fjall key.
    pub(crate) fn encode(self) -> Vec<u8> {
        match self {
            MetaKey::Applied(journal) => {
                let mut out = APPLIED_PREFIX.to_vec();
                out.extend_from_slice(&journal.0.to_be_bytes());
                out
            }
            MetaKey::GcHorizon => GC_HORIZON_KEY.to_vec(),
        }
    }

    /// Decodes a fjall key of keyspace `meta`.
    pub(crate) fn decode(bytes: &[u8]) -> Result<MetaKey> {
        if bytes == GC_HORIZON_KEY {
            return Ok(MetaKey::GcHorizon);
        }
        let journal = bytes
            .strip_prefix(APPLIED_PREFIX)
            .and_then(|rest| <[u8; 4]>::try_from(rest).ok())
            .map(|raw| JournalId(u32::from_be_bytes(raw)));
        journal.map(MetaKey::Applied).ok_or_else(|| {
            Error::Data(format!(
                "unknown key {} in keyspace `meta`",
                Key::copy_from(bytes)
            ))
        })
    }
}

/// Encodes a `meta` value.
pub(crate) fn encode_u64(value: u64) -> [u8; 8] {
    value.to_be_bytes()
}

/// Decodes a `meta` value.
pub(crate) fn decode_u64(bytes: &[u8], key: MetaKey) -> Result<u64> {
    <[u8; 8]>::try_from(bytes)
        .map(u64::from_be_bytes)
        .map_err(|_| {
            Error::Data(format!(
                "value of {key:?} in keyspace `meta` is {} bytes, not 8",
                bytes.len()
            ))
        })
}

/// Decodes an applied position stored under `key`.
pub(crate) fn decode_position(bytes: &[u8], key: MetaKey) -> Result<Position> {
    decode_u64(bytes, key).map(Position)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small seeded generator (SplitMix64), so failures replay without a `rand` dependency.
    struct SplitMix(u64);

    impl SplitMix {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        /// Short keys over a tiny alphabet heavy in 0x00, 0x01 and 0xFF: the bytes escaping
        /// could get wrong, and many shared prefixes.
        fn key(&mut self) -> Vec<u8> {
            const ALPHABET: [u8; 5] = [0x00, 0x01, 0x02, 0x7F, 0xFF];
            let len = (self.next() % 6) as usize;
            (0..len)
                .map(|_| ALPHABET[(self.next() % 5) as usize])
                .collect()
        }
    }

    #[test]
    fn encoding_preserves_the_order_of_random_keys() {
        let mut rng = SplitMix(0x5EED);
        for _ in 0..20_000 {
            let (a, b) = (rng.key(), rng.key());
            assert_eq!(
                a.cmp(&b),
                encode_key(&a).cmp(&encode_key(&b)),
                "order of {:?} and {:?}",
                Key::from(a.clone()),
                Key::from(b.clone())
            );
        }
    }

    #[test]
    fn versions_of_different_keys_never_interleave() {
        // Order by (user key, newest first) must equal the order of the version keys, whatever
        // the timestamps: that is what makes versions of one key adjacent.
        let mut rng = SplitMix(42);
        for _ in 0..20_000 {
            let (a, b) = (rng.key(), rng.key());
            let (ta, tb) = (Timestamp(rng.next()), Timestamp(rng.next()));
            let expected = a.cmp(&b).then(tb.cmp(&ta));
            assert_eq!(expected, version_key(&a, ta).cmp(&version_key(&b, tb)));
        }
    }

    #[test]
    fn no_encoded_key_is_a_prefix_of_another() {
        let mut rng = SplitMix(7);
        for _ in 0..20_000 {
            let (a, b) = (rng.key(), rng.key());
            if a != b {
                assert!(
                    !encode_key(&b).starts_with(&encode_key(&a)),
                    "{a:?} prefixes {b:?}"
                );
            }
        }
        // The classic trap: "a" and "a\0" must not share a prefix of versions.
        assert!(!encode_key(b"a\0").starts_with(&encode_key(b"a")));
    }

    #[test]
    fn version_keys_round_trip() {
        let mut rng = SplitMix(1);
        for _ in 0..5_000 {
            let key = rng.key();
            let ts = Timestamp(rng.next());
            let stored = version_key(&key, ts);
            let (encoded, decoded_ts) = split_version_key(&stored).unwrap();
            assert_eq!(decoded_ts, ts);
            assert_eq!(encoded, encode_key(&key).as_slice());
            assert_eq!(decode_key(encoded).unwrap(), Key::from(key));
        }
    }

    #[test]
    fn newer_versions_sort_first_and_a_seek_at_ts_finds_the_latest_at_or_before_it() {
        let v10 = version_key(b"k", Timestamp(10));
        let v20 = version_key(b"k", Timestamp(20));
        assert!(v20 < v10);
        let seek_15 = version_key(b"k", Timestamp(15));
        assert!(v20 < seek_15 && seek_15 < v10);
        assert_eq!(
            version_key(b"k", Timestamp(20)),
            v20,
            "a seek at ts finds the version at ts"
        );
    }

    #[test]
    fn after_versions_of_is_between_a_key_and_its_successor() {
        let mut rng = SplitMix(99);
        for _ in 0..20_000 {
            let (a, b) = (rng.key(), rng.key());
            let after = after_versions_of(&encode_key(&a));
            assert!(version_key(&a, Timestamp::ZERO) < after);
            if b > a {
                assert!(after <= version_key(&b, Timestamp::MAX), "{a:?} then {b:?}");
            }
        }
    }

    #[test]
    fn damaged_keys_and_values_are_data_errors() {
        assert!(matches!(split_version_key(b"short"), Err(Error::Data(_))));
        assert!(matches!(
            split_version_key(b"no-terminator..."),
            Err(Error::Data(_))
        ));
        assert!(matches!(
            decode_key(&[b'a', 0x00, 0x02, 0x00, 0x01]),
            Err(Error::Data(_))
        ));
        assert!(matches!(
            decode_key(&[0x00, 0x01, b'x']),
            Err(Error::Data(_))
        ));
        assert!(matches!(decode_value(&[], b"k"), Err(Error::Data(_))));
        assert!(matches!(decode_value(&[7, 1], b"k"), Err(Error::Data(_))));
        assert!(matches!(
            decode_value(&[TAG_TOMBSTONE, 1], b"k"),
            Err(Error::Data(_))
        ));
        assert_eq!(decode_value(&[TAG_TOMBSTONE], b"k").unwrap(), None);
        assert_eq!(
            decode_value(&encode_value(Some(b"row")), b"k")
                .unwrap()
                .unwrap(),
            "row"
        );
        assert!(matches!(
            MetaKey::decode(b"applied/xx"),
            Err(Error::Data(_))
        ));
        assert!(matches!(
            decode_u64(&[1, 2], MetaKey::GcHorizon),
            Err(Error::Data(_))
        ));
    }

    #[test]
    fn meta_keys_round_trip() {
        for key in [
            MetaKey::GcHorizon,
            MetaKey::Applied(JournalId(0)),
            MetaKey::Applied(JournalId(u32::MAX)),
        ] {
            assert_eq!(MetaKey::decode(&key.encode()).unwrap(), key);
        }
    }

    #[test]
    fn bounds_for_keys_longer_than_fjall_allows_select_the_same_stored_keys() {
        let long = vec![b'x'; MAX_FJALL_KEY + 10];
        let stored_max = vec![b'x'; MAX_FJALL_KEY];
        // A stored key equal to the truncated bound is below the long key: excluded as start,
        // included as end.
        assert_eq!(
            lower_bound(long.clone()),
            Bound::Excluded(stored_max.clone())
        );
        assert_eq!(upper_bound(long), Bound::Included(stored_max));
        assert_eq!(lower_bound(b"ab".to_vec()), Bound::Included(b"ab".to_vec()));
        assert_eq!(upper_bound(b"ab".to_vec()), Bound::Excluded(b"ab".to_vec()));
    }
}
