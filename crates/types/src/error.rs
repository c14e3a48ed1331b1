use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Key, Timestamp};

/// Result with Cairn's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The error that crosses component seams: coarse in kind, rich in message.
///
/// It is serialisable because it travels back over the same seams as responses do. Each crate
/// may keep a detailed internal error; at the seam it becomes one of these.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Error {
    /// The transaction conflicts with another; retry the whole transaction.
    #[error("{0}")]
    Conflict(Conflict),
    /// The request's timestamp is older than what the component still keeps (GC horizon,
    /// adjudicator memory): start a new transaction.
    #[error("snapshot too old: {0}")]
    TooOld(String),
    /// The request itself is malformed or breaks a documented limit.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A component cannot answer now (timed out waiting, fenced, shutting down). Whether a
    /// commit that failed this way took effect is unknown unless the message says otherwise.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Stored data is damaged: a checksum failed, or a file is not what it should be.
    #[error("data corruption: {0}")]
    Data(String),
    /// An I/O failure or broken invariant inside a component.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The coarse kind of an [`Error`], for callers that decide by kind (retry, SQLSTATE).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// See [`Error::Conflict`].
    Conflict,
    /// See [`Error::TooOld`].
    TooOld,
    /// See [`Error::InvalidInput`].
    InvalidInput,
    /// See [`Error::Unavailable`].
    Unavailable,
    /// See [`Error::Data`].
    Data,
    /// See [`Error::Internal`].
    Internal,
}

impl Error {
    /// The coarse kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Conflict(_) => ErrorKind::Conflict,
            Error::TooOld(_) => ErrorKind::TooOld,
            Error::InvalidInput(_) => ErrorKind::InvalidInput,
            Error::Unavailable(_) => ErrorKind::Unavailable,
            Error::Data(_) => ErrorKind::Data,
            Error::Internal(_) => ErrorKind::Internal,
        }
    }

    /// Whether running the whole transaction again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self.kind(), ErrorKind::Conflict | ErrorKind::TooOld)
    }

    /// An internal error describing an I/O failure, naming what was being done.
    pub fn io(context: impl fmt::Display, err: std::io::Error) -> Self {
        Error::Internal(format!("{context}: {err}"))
    }
}

/// Why a commit was refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    /// Data or schema.
    pub kind: ConflictKind,
    /// A key that conflicted (the first found).
    pub key: Key,
    /// When the conflicting write committed, if it had; `None` when it is still pending or
    /// the adjudicator no longer remembers it exactly.
    pub committed_ts: Option<Timestamp>,
}

/// What kind of thing conflicted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConflictKind {
    /// A row or index key written by a concurrent transaction.
    Data,
    /// The catalog changed under the transaction.
    Schema,
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            ConflictKind::Data => "data",
            ConflictKind::Schema => "schema",
        };
        write!(f, "{kind} conflict on key {}", self.key)?;
        match self.committed_ts {
            Some(ts) => write!(f, " (written by a transaction that committed at {ts})")?,
            None => write!(f, " (written by a concurrent transaction)")?,
        }
        f.write_str("; retry the whole transaction")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflicts_and_too_old_are_retryable_others_are_not() {
        let conflict = Error::Conflict(Conflict {
            kind: ConflictKind::Data,
            key: "k".into(),
            committed_ts: Some(Timestamp(5)),
        });
        assert!(conflict.is_retryable());
        assert!(Error::TooOld("x".into()).is_retryable());
        assert!(!Error::Unavailable("x".into()).is_retryable());
        assert!(!Error::Data("x".into()).is_retryable());
        assert!(conflict.to_string().contains("retry the whole transaction"));
        assert!(conflict.to_string().contains("\"k\""));
    }
}
