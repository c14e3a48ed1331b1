//! The journal seam: an ordered, durable log of committed transactions (DESIGN §1, §3).
//!
//! Contract, for every implementation:
//! - [`Journal::append`] takes effect in the order of the *calls*, not of the polls of the
//!   returned futures: a writer that calls `append(a)` then `append(b)` gets `a` before `b` in
//!   the log even if it awaits them in the other order. This is what lets the adjudicator
//!   choose commit timestamps under its lock and await durability outside it, while concurrent
//!   appends share one fsync (group commit).
//! - An append's future resolves `Ok` only once the record is durable (fsync'd, or held by a
//!   majority of replicas). A record is never half visible: readers see whole records only.
//! - Records are in strictly increasing `commit_ts` order; an append that would break the order
//!   is refused.
//! - Heartbeats ([`Entry::Heartbeat`]) are promises "no later record has `commit_ts <= ts`".
//!   They are ordered with records but not stored; readers see them as the watermark.
//!   A quiet heartbeat ([`Entry::QuietHeartbeat`]) is the same promise, but the journal may
//!   publish it without counting it as news: a read waiting past an earlier watermark may
//!   keep waiting (it sees the heartbeat once woken for something else). Only for a caller
//!   that delivers the promise to storage itself and wakes the readers when it cannot (the
//!   embedded database: a read waiting for completeness).
//! - Writers are fenced by epoch: after [`Journal::fence`] with epoch `e`, appends carrying an
//!   epoch below `e` are refused.
//! - [`Journal::read`] returns durable records from a position, waiting (long poll) when there
//!   is nothing new.

use serde::{Deserialize, Serialize};

use crate::seam::{round_trip, round_trip_result, BoxFuture};
use crate::{CommitRecord, Position, Result, Timestamp};

/// A fencing epoch: a writer's right to append.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug, Serialize, Deserialize,
)]
pub struct Epoch(pub u64);

/// What can be appended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Entry {
    /// A committed transaction (stored durably).
    Commit(CommitRecord),
    /// A promise that no later record will have `commit_ts <= ts` (not stored).
    Heartbeat(Timestamp),
    /// A heartbeat whose publication need not wake readers waiting for news (see the module
    /// documentation).
    QuietHeartbeat(Timestamp),
}

/// Append one entry as the writer holding `epoch`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendRequest {
    /// The writer's epoch; refused if below the journal's current epoch.
    pub epoch: Epoch,
    /// What to append.
    pub entry: Entry,
}

/// Where an appended entry landed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendResponse {
    /// The position just after the entry (for a heartbeat, the tail when it was published).
    pub end: Position,
}

/// Read durable records starting at `from`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadRequest {
    /// Position of the first record wanted (a record boundary, such as a previous `next`).
    pub from: Position,
    /// At most this many records.
    pub max_records: u32,
    /// If there is no record at `from` and the watermark is not above this, wait until there
    /// is one or it is. Pass the previous response's watermark to long-poll.
    pub wait_past: Option<Timestamp>,
}

/// A record read from the journal, with where it lies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PositionedRecord {
    /// Where the record starts.
    pub position: Position,
    /// Where the next record starts.
    pub next: Position,
    /// The record.
    pub record: CommitRecord,
}

/// Records read, and how far the reader may now assume completeness.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadResponse {
    /// Records in log order.
    pub records: Vec<PositionedRecord>,
    /// Where to read next.
    pub next: Position,
    /// No record at or after `next` has `commit_ts <= watermark`.
    pub watermark: Timestamp,
}

/// Take over as writer with `epoch`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FenceRequest {
    /// Must be greater than the journal's current epoch.
    pub epoch: Epoch,
}

/// What a new writer needs to continue the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FenceResponse {
    /// The durable tail.
    pub tail: Position,
    /// Every record so far, and every heartbeat this journal still remembers, is at or below
    /// this: the new writer must append above it.
    pub high_ts: Timestamp,
}

/// Ask for the journal's state.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StatusRequest {}

/// The journal's state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusResponse {
    /// The current writer epoch (zero before any fence).
    pub epoch: Epoch,
    /// The first position still kept (earlier ones were truncated).
    pub start: Position,
    /// The position after the last durable record.
    pub tail: Position,
    /// The watermark: no record at or after `tail` will have `commit_ts <= watermark`.
    pub watermark: Timestamp,
}

/// Drop records before `before` (storage has checkpointed them).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TruncateRequest {
    /// Records wholly before this position may be dropped; the journal may keep more.
    pub before: Position,
}

/// What is kept after truncation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TruncateResponse {
    /// The first position still kept.
    pub start: Position,
}

/// The journal seam. See the module documentation for the contract.
pub trait Journal: Send + Sync + 'static {
    /// Appends an entry. Takes effect in call order; resolves once durable. Await the future
    /// promptly: an implementation may do the writing when it is first polled (a file
    /// journal does when it was idle), and until then the entry need not become durable.
    fn append(&self, request: AppendRequest) -> BoxFuture<'static, Result<AppendResponse>>;
    /// Reads durable records.
    fn read(&self, request: ReadRequest) -> BoxFuture<'_, Result<ReadResponse>>;
    /// Makes `epoch` the only one allowed to append.
    fn fence(&self, request: FenceRequest) -> BoxFuture<'_, Result<FenceResponse>>;
    /// Reports positions and epoch.
    fn status(&self, request: StatusRequest) -> BoxFuture<'_, Result<StatusResponse>>;
    /// Drops a checkpointed prefix.
    fn truncate(&self, request: TruncateRequest) -> BoxFuture<'_, Result<TruncateResponse>>;
}

/// A journal reached through the wire encoding: every request and response is serialised and
/// deserialised, as it would be between processes.
pub struct Loopback<J>(pub J);

impl<J: Journal> Journal for Loopback<J> {
    fn append(&self, request: AppendRequest) -> BoxFuture<'static, Result<AppendResponse>> {
        // Encode now, not when polled: call order is the contract.
        let pending = round_trip(&request).map(|request| self.0.append(request));
        Box::pin(async move { round_trip_result(pending?.await) })
    }

    fn read(&self, request: ReadRequest) -> BoxFuture<'_, Result<ReadResponse>> {
        Box::pin(async move { round_trip_result(self.0.read(round_trip(&request)?).await) })
    }

    fn fence(&self, request: FenceRequest) -> BoxFuture<'_, Result<FenceResponse>> {
        Box::pin(async move { round_trip_result(self.0.fence(round_trip(&request)?).await) })
    }

    fn status(&self, request: StatusRequest) -> BoxFuture<'_, Result<StatusResponse>> {
        Box::pin(async move { round_trip_result(self.0.status(round_trip(&request)?).await) })
    }

    fn truncate(&self, request: TruncateRequest) -> BoxFuture<'_, Result<TruncateResponse>> {
        Box::pin(async move { round_trip_result(self.0.truncate(round_trip(&request)?).await) })
    }
}

impl<J: Journal + ?Sized> Journal for std::sync::Arc<J> {
    fn append(&self, request: AppendRequest) -> BoxFuture<'static, Result<AppendResponse>> {
        (**self).append(request)
    }
    fn read(&self, request: ReadRequest) -> BoxFuture<'_, Result<ReadResponse>> {
        (**self).read(request)
    }
    fn fence(&self, request: FenceRequest) -> BoxFuture<'_, Result<FenceResponse>> {
        (**self).fence(request)
    }
    fn status(&self, request: StatusRequest) -> BoxFuture<'_, Result<StatusResponse>> {
        (**self).status(request)
    }
    fn truncate(&self, request: TruncateRequest) -> BoxFuture<'_, Result<TruncateResponse>> {
        (**self).truncate(request)
    }
}
