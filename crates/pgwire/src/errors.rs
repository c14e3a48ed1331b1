//! The one place errors become wire messages.
//!
//! Everything a client can be told went wrong is a [`SqlError`]: the SQL layer already chose
//! its SQLSTATE (see `cairn_sql::error`), and the errors this crate raises itself — protocol
//! violations, authentication failures, shutdown — are built as `SqlError`s too, with the
//! constructors below. [`error_response`] is then the only function that turns an error into
//! an ErrorResponse, and [`notice_response`] the only one for notices.

use cairn_sql::{Notice, SqlError, SqlState};
use pgwire::messages::response::{ErrorResponse, NoticeResponse};

/// How bad an error is, as the ErrorResponse's severity field says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Severity {
    /// The statement failed; the session continues.
    Error,
    /// The session ends; the connection is closed after the message.
    Fatal,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "ERROR",
            Severity::Fatal => "FATAL",
        }
    }
}

/// The ErrorResponse for `error`: severity (localised and not), SQLSTATE, message, and the
/// detail and hint when present.
pub(crate) fn error_response(error: &SqlError, severity: Severity) -> ErrorResponse {
    let mut fields = vec![
        (b'S', severity.as_str().to_owned()),
        (b'V', severity.as_str().to_owned()),
        (b'C', error.state.code().to_owned()),
        (b'M', cstring(&error.message)),
    ];
    if let Some(detail) = &error.detail {
        fields.push((b'D', cstring(detail)));
    }
    if let Some(hint) = &error.hint {
        fields.push((b'H', cstring(hint)));
    }
    if let Some(position) = error.position {
        fields.push((b'P', cstring(&position.to_string())));
    }
    if let Some(context) = &error.context {
        fields.push((b'W', cstring(context)));
    }
    ErrorResponse::new(fields)
}

/// The NoticeResponse for a notice the SQL layer raised.
pub(crate) fn notice_response(notice: &Notice) -> NoticeResponse {
    NoticeResponse::new(vec![
        (b'S', notice.severity.to_owned()),
        (b'V', notice.severity.to_owned()),
        (b'C', notice.code.to_owned()),
        (b'M', cstring(&notice.message)),
    ])
}

/// 08P01: the client broke the protocol.
pub(crate) fn protocol_violation(message: impl Into<String>) -> SqlError {
    SqlError::new(SqlState::PROTOCOL_VIOLATION, message)
}

/// 57P01: the server is shutting down.
pub(crate) fn admin_shutdown() -> SqlError {
    SqlError::new(
        SqlState::ADMIN_SHUTDOWN,
        "terminating connection due to administrator command",
    )
}

/// 28P01: wrong password.
pub(crate) fn password_failed(user: &str) -> SqlError {
    SqlError::new(
        SqlState::INVALID_PASSWORD,
        format!("password authentication failed for user \"{user}\""),
    )
}

/// A string for a NUL-terminated field: PostgreSQL text never holds NUL, but a message can
/// quote client input, and an embedded NUL would end the field early and desynchronise the
/// client.
pub(crate) fn cstring(s: &str) -> String {
    if s.contains('\0') {
        s.replace('\0', "\\0")
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_response_carries_sqlstate_message_detail_and_hint() {
        let error = SqlError::new(SqlState::SERIALIZATION_FAILURE, "could not serialize")
            .with_detail("a detail")
            .with_hint("Retry the whole transaction.");
        let response = error_response(&error, Severity::Error);
        assert_eq!(
            response.fields,
            vec![
                (b'S', "ERROR".to_owned()),
                (b'V', "ERROR".to_owned()),
                (b'C', "40001".to_owned()),
                (b'M', "could not serialize".to_owned()),
                (b'D', "a detail".to_owned()),
                (b'H', "Retry the whole transaction.".to_owned()),
            ]
        );
    }

    #[test]
    fn protocol_errors_go_through_the_same_mapping() {
        let response = error_response(&protocol_violation("bad"), Severity::Fatal);
        assert_eq!(
            response.fields,
            vec![
                (b'S', "FATAL".to_owned()),
                (b'V', "FATAL".to_owned()),
                (b'C', "08P01".to_owned()),
                (b'M', "bad".to_owned()),
            ]
        );
        let response = error_response(&admin_shutdown(), Severity::Fatal);
        assert_eq!(response.fields[2], (b'C', "57P01".to_owned()));
    }

    #[test]
    fn nul_bytes_cannot_end_a_field_early() {
        let error = SqlError::syntax("bad input \"a\0b\"");
        let response = error_response(&error, Severity::Error);
        assert!(response.fields.iter().all(|(_, v)| !v.contains('\0')));
    }
}
