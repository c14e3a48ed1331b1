//! Cairn's shared vocabulary.
//!
//! Every component (journal, storage, adjudicator, crossbar, query processor) depends on this
//! crate and on nothing else of Cairn's: it holds the nouns they exchange and the seams between
//! them.
//!
//! - [`Timestamp`], [`Key`], [`KeyRange`], [`Write`], [`CommitRecord`]: what a transaction is
//!   made of once it leaves the query processor.
//! - [`Error`]: the one error type that crosses seams, with a coarse [`ErrorKind`] and
//!   [`Error::is_retryable`].
//! - [`clock`]: the [`clock::Clock`] trait through which all time is read.
//! - [`journal`], [`storage`], [`adjudicator`]: each seam is a trait whose methods map one to
//!   one onto serialisable request and response messages, plus a `Loopback` wrapper that sends
//!   every message through the wire encoding both ways, so encoding bugs show without sockets.
//!
//! Invariants the types carry:
//! - Timestamps are nanoseconds since the Unix epoch, unique and monotonic per clock (hybrid
//!   logical); `Timestamp::ZERO` is before every commit.
//! - Keys compare as byte strings; a [`KeyRange`] is half-open `[start, end)`.
//! - A write set holds each key at most once; `value: None` is a delete (a tombstone).

pub mod adjudicator;
pub mod clock;
mod error;
pub mod journal;
mod key;
mod record;
pub mod seam;
pub mod storage;

pub use error::{Conflict, ConflictKind, Error, ErrorKind, Result};
pub use key::{Key, KeyRange};
pub use record::{CommitRecord, JournalId, Position, Timestamp, TxnId, Write};
