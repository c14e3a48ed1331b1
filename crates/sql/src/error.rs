//! SQL errors with PostgreSQL's SQLSTATE codes.
//!
//! Every error a client can see is a [`SqlError`]: a five-character SQLSTATE, a message, and
//! optionally a detail and a hint, as in PostgreSQL's ErrorResponse. The one mapping from the
//! transactional core's internal errors ([`cairn_types::Error`]) to SQLSTATEs is
//! [`SqlError::from_core`]; the wire layer only serialises what it is given.

use std::fmt;

use cairn_types::{ConflictKind, Error as CoreError};

/// A SQLSTATE code (see PostgreSQL's Appendix A). Only the codes Cairn raises are named.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SqlState(pub &'static str);

#[allow(missing_docs)] // each constant is named exactly as in PostgreSQL's errcodes.txt
impl SqlState {
    pub const SUCCESSFUL_COMPLETION: SqlState = SqlState("00000");
    pub const WARNING: SqlState = SqlState("01000");
    pub const NO_ACTIVE_SQL_TRANSACTION: SqlState = SqlState("25P01");
    pub const ACTIVE_SQL_TRANSACTION: SqlState = SqlState("25001");
    pub const CONNECTION_EXCEPTION: SqlState = SqlState("08000");
    pub const PROTOCOL_VIOLATION: SqlState = SqlState("08P01");
    pub const TRANSACTION_RESOLUTION_UNKNOWN: SqlState = SqlState("08007");
    pub const FEATURE_NOT_SUPPORTED: SqlState = SqlState("0A000");
    pub const CARDINALITY_VIOLATION: SqlState = SqlState("21000");
    pub const DATA_EXCEPTION: SqlState = SqlState("22000");
    pub const STRING_DATA_RIGHT_TRUNCATION: SqlState = SqlState("22001");
    pub const NUMERIC_VALUE_OUT_OF_RANGE: SqlState = SqlState("22003");
    pub const NULL_VALUE_NOT_ALLOWED: SqlState = SqlState("22004");
    pub const INVALID_DATETIME_FORMAT: SqlState = SqlState("22007");
    pub const DATETIME_FIELD_OVERFLOW: SqlState = SqlState("22008");
    pub const DIVISION_BY_ZERO: SqlState = SqlState("22012");
    pub const INVALID_PARAMETER_VALUE: SqlState = SqlState("22023");
    pub const INVALID_TEXT_REPRESENTATION: SqlState = SqlState("22P02");
    pub const INVALID_BINARY_REPRESENTATION: SqlState = SqlState("22P03");
    pub const BAD_COPY_FILE_FORMAT: SqlState = SqlState("22P04");
    pub const CHARACTER_NOT_IN_REPERTOIRE: SqlState = SqlState("22021");
    pub const INVALID_ESCAPE_SEQUENCE: SqlState = SqlState("22025");
    pub const NOT_NULL_VIOLATION: SqlState = SqlState("23502");
    pub const UNIQUE_VIOLATION: SqlState = SqlState("23505");
    pub const INVALID_TRANSACTION_STATE: SqlState = SqlState("25000");
    pub const READ_ONLY_SQL_TRANSACTION: SqlState = SqlState("25006");
    pub const IN_FAILED_SQL_TRANSACTION: SqlState = SqlState("25P02");
    pub const INVALID_AUTHORIZATION_SPECIFICATION: SqlState = SqlState("28000");
    pub const INVALID_PASSWORD: SqlState = SqlState("28P01");
    pub const SERIALIZATION_FAILURE: SqlState = SqlState("40001");
    pub const SYNTAX_ERROR: SqlState = SqlState("42601");
    pub const INSUFFICIENT_PRIVILEGE: SqlState = SqlState("42501");
    pub const UNDEFINED_COLUMN: SqlState = SqlState("42703");
    pub const UNDEFINED_FUNCTION: SqlState = SqlState("42883");
    pub const UNDEFINED_TABLE: SqlState = SqlState("42P01");
    pub const UNDEFINED_PARAMETER: SqlState = SqlState("42P02");
    pub const UNDEFINED_OBJECT: SqlState = SqlState("42704");
    pub const DUPLICATE_COLUMN: SqlState = SqlState("42701");
    pub const DUPLICATE_TABLE: SqlState = SqlState("42P07");
    pub const DUPLICATE_PREPARED_STATEMENT: SqlState = SqlState("42P05");
    pub const AMBIGUOUS_COLUMN: SqlState = SqlState("42702");
    pub const INVALID_COLUMN_REFERENCE: SqlState = SqlState("42P10");
    pub const DATATYPE_MISMATCH: SqlState = SqlState("42804");
    pub const CANNOT_COERCE: SqlState = SqlState("42846");
    pub const GROUPING_ERROR: SqlState = SqlState("42803");
    pub const INVALID_COLUMN_DEFINITION: SqlState = SqlState("42611");
    pub const INVALID_TABLE_DEFINITION: SqlState = SqlState("42P16");
    pub const UNDEFINED_PREPARED_STATEMENT: SqlState = SqlState("26000");
    pub const INVALID_CURSOR_NAME: SqlState = SqlState("34000");
    pub const INVALID_CATALOG_NAME: SqlState = SqlState("3D000");
    pub const PROGRAM_LIMIT_EXCEEDED: SqlState = SqlState("54000");
    /// out_of_memory: a statement passed its memory budget.
    pub const OUT_OF_MEMORY: SqlState = SqlState("53200");
    pub const QUERY_CANCELED: SqlState = SqlState("57014");
    pub const ADMIN_SHUTDOWN: SqlState = SqlState("57P01");
    pub const CANNOT_CONNECT_NOW: SqlState = SqlState("57P03");
    pub const DATA_CORRUPTED: SqlState = SqlState("XX001");
    pub const INTERNAL_ERROR: SqlState = SqlState("XX000");

    /// The five-character code.
    pub fn code(self) -> &'static str {
        self.0
    }
}

/// An error as the client sees it (ErrorResponse fields).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SqlError {
    /// The SQLSTATE.
    pub state: SqlState,
    /// The primary message: short, lower case, no trailing period (PostgreSQL's style).
    pub message: String,
    /// Secondary detail, if any.
    pub detail: Option<String>,
    /// A suggestion, if any.
    pub hint: Option<Box<str>>,
    /// Where in the query string the error is: a 1-based character position (field P), which
    /// psql turns into its `LINE 1: ...` marker.
    pub position: Option<u32>,
    /// The same place as the parser counts it (line, column; 1-based), until the session
    /// turns it into `position` against the query text.
    pub location: Option<(u32, u32)>,
    /// Where the error happened beyond the statement (field W), e.g. the COPY input line.
    pub context: Option<Box<str>>,
}

/// Result with [`SqlError`].
pub type SqlResult<T> = Result<T, SqlError>;

impl SqlError {
    /// An error with `state` and `message`.
    pub fn new(state: SqlState, message: impl Into<String>) -> Self {
        SqlError {
            state,
            message: message.into(),
            detail: None,
            hint: None,
            position: None,
            location: None,
            context: None,
        }
    }

    /// Adds a detail.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Adds a context line (field W), unless one is there already (the innermost wins).
    pub fn with_context(mut self, context: impl Into<String>) -> Self {
        if self.context.is_none() {
            self.context = Some(context.into().into_boxed_str());
        }
        self
    }

    /// Adds a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into().into_boxed_str());
        self
    }

    /// Marks where in the statement the error is (line and column, 1-based).
    pub fn at(mut self, line: u64, column: u64) -> Self {
        if line > 0 && column > 0 && self.location.is_none() {
            let clamp = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
            self.location = Some((clamp(line), clamp(column)));
        }
        self
    }

    /// Turns a `location` into the `position` PostgreSQL reports, counted in `sql`.
    pub fn locate_in(mut self, sql: &str) -> Self {
        if let (None, Some((line, column))) = (self.position, self.location) {
            let mut position = 0u32;
            for (n, text) in sql.split('\n').enumerate() {
                if n as u64 + 1 == u64::from(line) {
                    let within = text.chars().count().min(column.saturating_sub(1) as usize);
                    position += within as u32 + 1;
                    self.position = Some(position);
                    break;
                }
                position += text.chars().count() as u32 + 1;
            }
        }
        self
    }

    /// 42601.
    pub fn syntax(message: impl Into<String>) -> Self {
        SqlError::new(SqlState::SYNTAX_ERROR, message)
    }

    /// 0A000.
    pub fn unsupported(message: impl Into<String>) -> Self {
        SqlError::new(SqlState::FEATURE_NOT_SUPPORTED, message)
    }

    /// XX000.
    pub fn internal(message: impl Into<String>) -> Self {
        SqlError::new(SqlState::INTERNAL_ERROR, message)
    }

    /// The one mapping from a transactional-core error to what the client sees.
    /// `describe_key` names the table a conflicting key belongs to, for the message.
    pub fn from_core(error: CoreError, describe_key: impl Fn(&cairn_types::Key) -> String) -> Self {
        match error {
            CoreError::Conflict(conflict) => {
                let kind = match conflict.kind {
                    ConflictKind::Data => "data",
                    ConflictKind::Schema => "schema",
                };
                SqlError::new(
                    SqlState::SERIALIZATION_FAILURE,
                    format!(
                        "could not serialize access due to a concurrent update ({kind} conflict on {})",
                        describe_key(&conflict.key)
                    ),
                )
                .with_detail(match conflict.committed_ts {
                    Some(ts) => format!("Another transaction committed a change to it at {ts}."),
                    None => "Another transaction changed it concurrently, or the change is too old to check.".into(),
                })
                .with_hint("Retry the whole transaction.")
            }
            CoreError::TooOld(message) => SqlError::new(
                SqlState::SERIALIZATION_FAILURE,
                format!("snapshot too old: {message}"),
            )
            .with_hint("Retry the whole transaction."),
            CoreError::InvalidInput(message) => {
                SqlError::new(SqlState::PROGRAM_LIMIT_EXCEEDED, message)
            }
            CoreError::Unavailable(message) if message.starts_with("commit outcome unknown") => {
                SqlError::new(SqlState::TRANSACTION_RESOLUTION_UNKNOWN, message)
            }
            CoreError::Unavailable(message) => SqlError::new(SqlState::CANNOT_CONNECT_NOW, message),
            CoreError::Data(message) => SqlError::new(SqlState::DATA_CORRUPTED, message),
            CoreError::Internal(message) => SqlError::new(SqlState::INTERNAL_ERROR, message),
        }
    }
}

impl fmt::Display for SqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.state.0)
    }
}

impl std::error::Error for SqlError {}
