use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::Key;

/// A point in time: nanoseconds since the Unix epoch, made unique and monotonic by a hybrid
/// logical clock. Commit timestamps and snapshot (read) timestamps are both `Timestamp`s.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug, Serialize, Deserialize,
)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// Before every commit.
    pub const ZERO: Timestamp = Timestamp(0);
    /// After every commit.
    pub const MAX: Timestamp = Timestamp(u64::MAX);

    /// The next timestamp (saturating).
    pub fn next(self) -> Timestamp {
        Timestamp(self.0.saturating_add(1))
    }

    /// `self` moved on by `nanos` (saturating).
    pub fn saturating_add_nanos(self, nanos: u64) -> Timestamp {
        Timestamp(self.0.saturating_add(nanos))
    }

    /// `self` moved back by `nanos` (saturating at zero).
    pub fn saturating_sub_nanos(self, nanos: u64) -> Timestamp {
        Timestamp(self.0.saturating_sub(nanos))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:09}",
            self.0 / 1_000_000_000,
            self.0 % 1_000_000_000
        )
    }
}

/// Identifies a transaction for logs and idempotence; chosen by the query processor.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug, Serialize, Deserialize,
)]
pub struct TxnId(pub u64);

/// Names one journal among several. The first version runs exactly one, `JournalId(0)`.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug, Serialize, Deserialize,
)]
pub struct JournalId(pub u32);

/// A journal position: the byte offset of a record in the journal's logical log (segments laid
/// end to end). Positions only grow; the position after the last durable record is the tail.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug, Serialize, Deserialize,
)]
pub struct Position(pub u64);

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One change in a write set: the key's new value (its post-image), or `None` for a delete.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Write {
    /// The key written.
    pub key: Key,
    /// The full new value, or `None` to delete the key (a tombstone).
    pub value: Option<Bytes>,
}

/// A committed transaction as the journal stores it and storage applies it: the whole write
/// set at one commit timestamp. Records in one journal are in `commit_ts` order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitRecord {
    /// The transaction that committed.
    pub txn_id: TxnId,
    /// When it committed; all its writes become visible at exactly this timestamp.
    pub commit_ts: Timestamp,
    /// Its writes, each key at most once, sorted by key.
    pub writes: Vec<Write>,
}
