//! The adjudicator seam: optimistic conflict check at commit, and the choice of `commit_ts`
//! (DESIGN §1–§3).
//!
//! Contract, for every implementation:
//! - [`Adjudicator::commit`] refuses with [`crate::Error::Conflict`] when any key of the
//!   request's conflict set (its writes and its locks) was committed in `(read_ts, commit_ts]`
//!   or is held by another transaction's pending commit. Its `reads` and `read_ranges` are
//!   checked the same way but not recorded (SERIALIZABLE read-set validation). Otherwise it chooses `commit_ts`
//!   greater than `read_ts`, than its own commit point, and than every `commit_ts` it has seen
//!   on those keys, and at least the clock's `now().latest`; appends the whole transaction to
//!   its journal; and answers only once the append is durable.
//! - Its commit point never goes backwards, across restarts too: after a restart it will not
//!   accept a commit that could conflict with one made before the restart and that it can no
//!   longer check (such a commit gets a conflict, and the client retries).
//! - [`Adjudicator::heartbeat`] promises storage that nothing at or below the returned
//!   timestamp will commit any more, so idle storage still becomes complete.
//!
//! Several adjudicators, each owning a key range, will run the commit as a vote: each
//! participant answers a [`VoteRequest`] with a [`Vote`] (a proposed timestamp, keys held
//! pending), the leader takes the largest proposal and appends, then sends a [`Decision`]. The
//! first version has one adjudicator owning every key, which plays all roles in
//! [`Adjudicator::commit`]; the vote messages are fixed now so the wire format does not change.

use serde::{Deserialize, Serialize};

use crate::seam::{round_trip, round_trip_result, BoxFuture};
use crate::{Conflict, Key, Result, Timestamp, TxnId, Write};

/// Commit a transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitRequest {
    /// The transaction.
    pub txn_id: TxnId,
    /// Its snapshot: it saw every commit at or below this.
    pub read_ts: Timestamp,
    /// Its writes (post-images), each key once, sorted by key. Must not be empty.
    pub writes: Vec<Write>,
    /// Keys read with intent to write (`SELECT ... FOR UPDATE`): checked and held like writes,
    /// but not changed.
    pub locks: Vec<Key>,
    /// Keys whose value the transaction depends on but does not hold (the catalog entries of
    /// the tables it used): checked like writes, not recorded, so concurrent readers of the
    /// same key do not conflict with each other, only with a writer of it.
    pub reads: Vec<Key>,
    /// Key ranges the transaction scanned (SERIALIZABLE): a commit after `read_ts` of any key
    /// inside one, including a key that did not exist when scanned (a phantom), conflicts.
    /// Checked, not recorded, like `reads`.
    pub read_ranges: Vec<crate::KeyRange>,
}

/// A transaction committed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitResponse {
    /// Its commit timestamp; durable in the journal.
    pub commit_ts: Timestamp,
}

/// Ask for a heartbeat.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HeartbeatRequest {
    /// Append it as a quiet heartbeat ([`crate::journal::Entry::QuietHeartbeat`]): the
    /// caller delivers the promise to storage itself, or wakes the journal's readers.
    pub quiet: bool,
}

/// A heartbeat was published.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatResponse {
    /// Nothing at or below this will commit any more; the journal has published it (and woken
    /// its readers, unless the heartbeat was quiet).
    pub promised: Timestamp,
}

/// Ask for the adjudicator's state.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StatusRequest {}

/// The adjudicator's state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusResponse {
    /// Every commit so far is at or below this; the next is above.
    pub commit_point: Timestamp,
    /// Transactions with `read_ts` below this that write are refused: what they might conflict
    /// with is no longer remembered (restart or pruning).
    pub memory_floor: Timestamp,
    /// Keys whose last commit is remembered.
    pub remembered_keys: u64,
}

/// Phase one of a multi-adjudicator commit: may these keys commit after `read_ts`?
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteRequest {
    /// The transaction.
    pub txn_id: TxnId,
    /// Its snapshot.
    pub read_ts: Timestamp,
    /// The keys of its conflict set that this adjudicator owns.
    pub keys: Vec<Key>,
}

/// A participant's answer: hold the keys pending and propose a timestamp, or refuse.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Vote {
    /// The keys are held; the commit may take any `commit_ts >= proposed_ts`.
    Yes {
        /// The smallest commit timestamp this participant accepts.
        proposed_ts: Timestamp,
    },
    /// A key conflicts.
    No(Conflict),
}

/// Phase two: the leader's decision, sent to every participant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Decision {
    /// Durable in the leader's journal at this timestamp.
    Committed {
        /// The transaction.
        txn_id: TxnId,
        /// `max` of every proposal.
        commit_ts: Timestamp,
    },
    /// Refused by someone; release the keys.
    Aborted {
        /// The transaction.
        txn_id: TxnId,
    },
}

/// The adjudicator seam. See the module documentation for the contract.
pub trait Adjudicator: Send + Sync + 'static {
    /// Checks and commits a transaction; resolves once durable.
    fn commit(&self, request: CommitRequest) -> BoxFuture<'_, Result<CommitResponse>>;
    /// Publishes a heartbeat.
    fn heartbeat(&self, request: HeartbeatRequest) -> BoxFuture<'_, Result<HeartbeatResponse>>;
    /// Reports state.
    fn status(&self, request: StatusRequest) -> BoxFuture<'_, Result<StatusResponse>>;
}

/// An adjudicator reached through the wire encoding both ways.
pub struct Loopback<A>(pub A);

impl<A: Adjudicator> Adjudicator for Loopback<A> {
    fn commit(&self, request: CommitRequest) -> BoxFuture<'_, Result<CommitResponse>> {
        Box::pin(async move { round_trip_result(self.0.commit(round_trip(&request)?).await) })
    }
    fn heartbeat(&self, request: HeartbeatRequest) -> BoxFuture<'_, Result<HeartbeatResponse>> {
        Box::pin(async move { round_trip_result(self.0.heartbeat(round_trip(&request)?).await) })
    }
    fn status(&self, request: StatusRequest) -> BoxFuture<'_, Result<StatusResponse>> {
        Box::pin(async move { round_trip_result(self.0.status(round_trip(&request)?).await) })
    }
}

impl<A: Adjudicator + ?Sized> Adjudicator for std::sync::Arc<A> {
    fn commit(&self, request: CommitRequest) -> BoxFuture<'_, Result<CommitResponse>> {
        (**self).commit(request)
    }
    fn heartbeat(&self, request: HeartbeatRequest) -> BoxFuture<'_, Result<HeartbeatResponse>> {
        (**self).heartbeat(request)
    }
    fn status(&self, request: StatusRequest) -> BoxFuture<'_, Result<StatusResponse>> {
        (**self).status(request)
    }
}
