//! The storage seam: MVCC versions `key@commit_ts`, served as of a timestamp (DESIGN §1, §4).
//!
//! Contract, for every implementation:
//! - A read at `ts` ([`Storage::get`], [`Storage::scan`]) answers with the newest version of
//!   each key whose `commit_ts <= ts`, and only once storage is *complete* to `ts`: it has
//!   applied every record with `commit_ts <= ts` from every journal, which it knows from a
//!   later record or a heartbeat. Until then it waits; past its read timeout it fails with
//!   [`crate::Error::Unavailable`]. It never answers stale.
//! - A read below the GC horizon fails with [`crate::Error::TooOld`].
//! - A point read also reports the `commit_ts` of the key's newest version that storage has
//!   applied ([`GetResponse::newest_ts`]), which may be after `ts`: a transaction that
//!   writes a key changed after its snapshot can then fail at once instead of at commit.
//! - [`Storage::apply`] takes events in `commit_ts` order (the crossbar's promise) and makes
//!   each record's writes visible at exactly its `commit_ts`, all or nothing. Records at or
//!   before the applied position of their journal are skipped, so replay is idempotent.
//! - The applied positions are stored atomically with the data they cover; after a restart
//!   storage resumes from them (see [`Storage::status`]).

use serde::{Deserialize, Serialize};

use crate::seam::{round_trip, round_trip_result, BoxFuture};
use crate::{CommitRecord, JournalId, Key, KeyRange, Position, Result, Timestamp};
use bytes::Bytes;

/// Read one key as of `ts`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetRequest {
    /// The key.
    pub key: Key,
    /// The snapshot timestamp.
    pub ts: Timestamp,
}

/// The value of a key at a snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetResponse {
    /// The newest value at or before the snapshot; `None` if absent or deleted.
    pub value: Option<Bytes>,
    /// The `commit_ts` of the newest version of the key applied when it was read, at, before
    /// or after the snapshot; `None` if storage holds no version of it. A version after the
    /// snapshot is committed, so a writer whose conflicts are checked from the snapshot will
    /// fail at commit. Storage may report older than it holds only for versions after the
    /// snapshot, and only if it never reports one that it does not hold; it never reports
    /// older than the version `value` came from (a query processor moving a transaction to a
    /// newer snapshot relies on that to know a key unchanged since an earlier one).
    pub newest_ts: Option<Timestamp>,
}

/// Read the keys of a range as of `ts`, in key order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanRequest {
    /// The keys wanted.
    pub range: KeyRange,
    /// The snapshot timestamp.
    pub ts: Timestamp,
    /// At most this many rows (live keys; deleted keys do not count).
    pub limit: u32,
}

/// Rows of a range at a snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanResponse {
    /// Live keys and their values, in key order.
    pub rows: Vec<(Key, Bytes)>,
    /// Set when the limit cut the scan short: continue from this key (inclusive).
    pub resume: Option<Key>,
}

/// One event from the crossbar.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApplyEvent {
    /// A committed transaction to make visible.
    Record {
        /// The journal it came from.
        journal: JournalId,
        /// The position just after it in that journal.
        next: Position,
        /// The transaction.
        record: CommitRecord,
    },
    /// Every journal has passed `ts`: storage is complete to it once earlier events applied.
    Heartbeat(Timestamp),
}

/// Apply events in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyRequest {
    /// In `commit_ts` order, heartbeats among them.
    pub events: Vec<ApplyEvent>,
}

/// Where storage stands after applying.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyResponse {
    /// Storage is complete to this timestamp.
    pub complete_ts: Timestamp,
}

/// Ask for storage's positions.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StatusRequest {}

/// Storage's positions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusResponse {
    /// Per journal, the position after the last record applied: resume reading there.
    pub applied: Vec<(JournalId, Position)>,
    /// Per journal, the applied position that is durable on disk: the journal may drop what
    /// lies before it.
    pub checkpointed: Vec<(JournalId, Position)>,
    /// Reads at or below this need no waiting.
    pub complete_ts: Timestamp,
    /// Reads below this are refused as too old.
    pub gc_horizon: Timestamp,
}

/// Make the applied state durable, so the journal prefix it covers can be dropped.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CheckpointRequest {}

/// The positions now durable in storage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointResponse {
    /// Per journal, the durable applied position.
    pub checkpointed: Vec<(JournalId, Position)>,
}

/// Drop versions that no read at or after `horizon` can see.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcRequest {
    /// The new GC horizon; it never moves backwards (a lower one is ignored).
    pub horizon: Timestamp,
}

/// What GC did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcResponse {
    /// Versions (including tombstones) removed.
    pub versions_removed: u64,
    /// The horizon now in force.
    pub horizon: Timestamp,
}

/// The storage seam. See the module documentation for the contract.
pub trait Storage: Send + Sync + 'static {
    /// Reads one key at a snapshot (waits for completeness).
    fn get(&self, request: GetRequest) -> BoxFuture<'_, Result<GetResponse>>;
    /// Reads a range at a snapshot (waits for completeness).
    fn scan(&self, request: ScanRequest) -> BoxFuture<'_, Result<ScanResponse>>;
    /// Applies crossbar events in order.
    fn apply(&self, request: ApplyRequest) -> BoxFuture<'_, Result<ApplyResponse>>;
    /// Reports positions.
    fn status(&self, request: StatusRequest) -> BoxFuture<'_, Result<StatusResponse>>;
    /// Makes applied state durable.
    fn checkpoint(&self, request: CheckpointRequest) -> BoxFuture<'_, Result<CheckpointResponse>>;
    /// Garbage-collects old versions.
    fn gc(&self, request: GcRequest) -> BoxFuture<'_, Result<GcResponse>>;
}

/// Storage reached through the wire encoding both ways.
pub struct Loopback<S>(pub S);

impl<S: Storage> Storage for Loopback<S> {
    fn get(&self, request: GetRequest) -> BoxFuture<'_, Result<GetResponse>> {
        Box::pin(async move { round_trip_result(self.0.get(round_trip(&request)?).await) })
    }
    fn scan(&self, request: ScanRequest) -> BoxFuture<'_, Result<ScanResponse>> {
        Box::pin(async move { round_trip_result(self.0.scan(round_trip(&request)?).await) })
    }
    fn apply(&self, request: ApplyRequest) -> BoxFuture<'_, Result<ApplyResponse>> {
        Box::pin(async move { round_trip_result(self.0.apply(round_trip(&request)?).await) })
    }
    fn status(&self, request: StatusRequest) -> BoxFuture<'_, Result<StatusResponse>> {
        Box::pin(async move { round_trip_result(self.0.status(round_trip(&request)?).await) })
    }
    fn checkpoint(&self, request: CheckpointRequest) -> BoxFuture<'_, Result<CheckpointResponse>> {
        Box::pin(async move { round_trip_result(self.0.checkpoint(round_trip(&request)?).await) })
    }
    fn gc(&self, request: GcRequest) -> BoxFuture<'_, Result<GcResponse>> {
        Box::pin(async move { round_trip_result(self.0.gc(round_trip(&request)?).await) })
    }
}

impl<S: Storage + ?Sized> Storage for std::sync::Arc<S> {
    fn get(&self, request: GetRequest) -> BoxFuture<'_, Result<GetResponse>> {
        (**self).get(request)
    }
    fn scan(&self, request: ScanRequest) -> BoxFuture<'_, Result<ScanResponse>> {
        (**self).scan(request)
    }
    fn apply(&self, request: ApplyRequest) -> BoxFuture<'_, Result<ApplyResponse>> {
        (**self).apply(request)
    }
    fn status(&self, request: StatusRequest) -> BoxFuture<'_, Result<StatusResponse>> {
        (**self).status(request)
    }
    fn checkpoint(&self, request: CheckpointRequest) -> BoxFuture<'_, Result<CheckpointResponse>> {
        (**self).checkpoint(request)
    }
    fn gc(&self, request: GcRequest) -> BoxFuture<'_, Result<GcResponse>> {
        (**self).gc(request)
    }
}
