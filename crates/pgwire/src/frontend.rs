//! Decoding what clients send: the startup packets and the typed messages after them.
//!
//! Every frontend message but the first is `type byte, i32 length (counting itself), body`.
//! The first message has no type byte: `i32 length, i32 code, body`, where the code is a
//! protocol version (StartupMessage) or one of three magic numbers (SSLRequest,
//! GSSENCRequest, CancelRequest).
//!
//! The decoder works on a growing read buffer and returns `Ok(None)` until a whole message is
//! there. It checks the type byte as soon as it arrives and the length as soon as the four
//! length bytes arrive, so garbage is refused without waiting for a gigabyte that will never
//! come. A body is parsed only within its declared length, every read is bounds-checked, and
//! a body must be consumed exactly: a field running past the end or bytes left over both mean
//! the declared length was wrong. Each of these is a protocol violation (08P01) that ends the
//! connection. Text that is not UTF-8 is not a framing problem: it becomes
//! [`Frontend::Invalid`], answered with an ordinary ERROR (22021) while the connection lives
//! on, as in PostgreSQL.
//!
//! This decoder replaces pgwire's own frontend codec, which trusts lengths and counts in ways
//! that panic or misparse on hostile input (see the crate documentation).

use bytes::{Buf, Bytes, BytesMut};
use cairn_sql::{SqlError, SqlState};

use crate::errors::protocol_violation;

/// PostgreSQL's limit on a startup packet.
const MAX_STARTUP_LENGTH: usize = 10_000;
/// PostgreSQL's limit on the messages that carry SQL text or data (1 GiB - 1).
const MAX_LARGE_MESSAGE: usize = 0x3fff_ffff;
/// PostgreSQL's limit on every other message.
const MAX_SMALL_MESSAGE: usize = 10_000;
/// PostgreSQL's limit on an authentication message (`PG_MAX_AUTH_TOKEN_LENGTH`).
const MAX_AUTH_MESSAGE: usize = 65_535;

const SSL_REQUEST_CODE: u32 = 80_877_103;
const GSSENC_REQUEST_CODE: u32 = 80_877_104;
const CANCEL_REQUEST_CODE: u32 = 80_877_102;

/// The first message on a connection.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Startup {
    /// SSLRequest: the client asks for TLS.
    Ssl,
    /// GSSENCRequest: the client asks for GSSAPI encryption.
    Gss,
    /// CancelRequest, on a connection of its own.
    Cancel {
        /// The process id from BackendKeyData.
        pid: i32,
        /// The secret key from BackendKeyData (4 bytes in protocol 3.0).
        secret: Bytes,
    },
    /// StartupMessage.
    Start {
        /// Protocol major version (3).
        major: u16,
        /// Protocol minor version.
        minor: u16,
        /// Name/value pairs, in the order sent.
        params: Vec<(String, String)>,
    },
}

/// Describe and Close name either a prepared statement or a portal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// 'S'
    Statement,
    /// 'P'
    Portal,
}

/// A message after startup.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Frontend {
    /// 'Q': a simple-protocol query string.
    Query(String),
    /// 'P'
    Parse {
        /// Statement name ("" = unnamed).
        name: String,
        /// SQL text.
        query: String,
        /// Parameter type OIDs the client specified (0 = infer).
        param_oids: Vec<u32>,
    },
    /// 'B'
    Bind {
        /// Portal name ("" = unnamed).
        portal: String,
        /// Statement name ("" = unnamed).
        statement: String,
        /// Parameter format codes (0 text, 1 binary): none, one for all, or one each.
        param_formats: Vec<i16>,
        /// Parameter values; `None` is NULL.
        params: Vec<Option<Bytes>>,
        /// Result column format codes: none, one for all, or one each.
        result_formats: Vec<i16>,
    },
    /// 'D'
    Describe(Target, String),
    /// 'E'
    Execute {
        /// Portal name.
        portal: String,
        /// Maximum rows to return; zero or less means all.
        max_rows: i32,
    },
    /// 'C'
    Close(Target, String),
    /// 'S'
    Sync,
    /// 'H'
    Flush,
    /// 'X'
    Terminate,
    /// 'p': a password, SASLInitialResponse or SASLResponse; only the authentication step
    /// knows which, so the body stays raw.
    Password(Bytes),
    /// 'd': COPY FROM STDIN data (ignored outside COPY, as PostgreSQL does).
    CopyData(Bytes),
    /// 'c': the end of COPY FROM STDIN data.
    CopyDone,
    /// 'f': the client abandons COPY FROM STDIN, with its reason.
    CopyFail(String),
    /// 'F': the fast-path function call interface.
    FunctionCall,
    /// A well-framed message with invalid content (text that is not UTF-8): answered with this
    /// ERROR, the connection continues. `extended` says whether it was an extended-protocol
    /// message (so that the rest of the batch is skipped until Sync).
    Invalid {
        /// The error to report.
        error: SqlError,
        /// Whether the message belonged to the extended protocol.
        extended: bool,
    },
}

impl Frontend {
    /// Whether the message belongs to the extended-query protocol (and is therefore skipped
    /// after an error until Sync).
    pub(crate) fn is_extended(&self) -> bool {
        match self {
            Frontend::Parse { .. }
            | Frontend::Bind { .. }
            | Frontend::Describe(..)
            | Frontend::Execute { .. }
            | Frontend::Close(..)
            | Frontend::Sync
            | Frontend::Flush => true,
            Frontend::Invalid { extended, .. } => *extended,
            _ => false,
        }
    }
}

/// Decodes the first message, or returns `Ok(None)` if it is not complete yet.
pub(crate) fn decode_startup(buf: &mut BytesMut) -> Result<Option<Startup>, SqlError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let declared = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let length = usize::try_from(declared).unwrap_or(0);
    if !(8..=MAX_STARTUP_LENGTH).contains(&length) {
        return Err(protocol_violation("invalid length of startup packet"));
    }
    if buf.len() < length {
        return Ok(None);
    }
    let mut packet = buf.split_to(length).freeze();
    packet.advance(4);
    let mut body = Reader::new(packet);
    let code = body.u32()?;
    let message = match code {
        SSL_REQUEST_CODE => {
            body.finish()?;
            Startup::Ssl
        }
        GSSENC_REQUEST_CODE => {
            body.finish()?;
            Startup::Gss
        }
        CANCEL_REQUEST_CODE => {
            let pid = body.i32()?;
            let secret = body.rest();
            if !(4..=256).contains(&secret.len()) {
                return Err(protocol_violation(
                    "invalid length of cancel request packet",
                ));
            }
            Startup::Cancel { pid, secret }
        }
        version => {
            let major = u16::try_from(version >> 16).unwrap_or(u16::MAX);
            let minor = u16::try_from(version & 0xffff).unwrap_or(u16::MAX);
            let mut params = Vec::new();
            loop {
                let name = body.cstring_bytes()?;
                if name.is_empty() {
                    break;
                }
                let value = body.cstring_bytes()?;
                let (Ok(name), Ok(value)) = (String::from_utf8(name), String::from_utf8(value))
                else {
                    return Err(SqlError::new(
                        SqlState::CHARACTER_NOT_IN_REPERTOIRE,
                        "invalid byte sequence for encoding \"UTF8\" in startup packet",
                    ));
                };
                params.push((name, value));
            }
            body.finish()?;
            Startup::Start {
                major,
                minor,
                params,
            }
        }
    };
    Ok(Some(message))
}

/// Decodes one message after startup, or returns `Ok(None)` if it is not complete yet.
pub(crate) fn decode(buf: &mut BytesMut) -> Result<Option<Frontend>, SqlError> {
    let Some(&kind) = buf.first() else {
        return Ok(None);
    };
    let limit = match kind {
        b'Q' | b'P' | b'B' | b'd' | b'F' => MAX_LARGE_MESSAGE,
        b'p' => MAX_AUTH_MESSAGE,
        b'D' | b'E' | b'C' | b'S' | b'H' | b'X' | b'c' | b'f' => MAX_SMALL_MESSAGE,
        other => {
            return Err(protocol_violation(format!(
                "invalid frontend message type {other}"
            )));
        }
    };
    if buf.len() < 5 {
        return Ok(None);
    }
    let declared = i32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]);
    let length = usize::try_from(declared).unwrap_or(0);
    if !(4..=limit).contains(&length) {
        return Err(protocol_violation(format!(
            "invalid message length {declared} for message type {}",
            char::from(kind)
        )));
    }
    if buf.len() < 1 + length {
        // Let the buffer grow as data arrives, but never reserve a hostile length up front.
        buf.reserve((1 + length - buf.len()).min(64 * 1024));
        return Ok(None);
    }
    let mut message = buf.split_to(1 + length).freeze();
    message.advance(5);
    parse_body(kind, Reader::new(message)).map(Some)
}

fn parse_body(kind: u8, mut body: Reader) -> Result<Frontend, SqlError> {
    let message = match kind {
        b'Q' => match body.cstring()? {
            Ok(sql) => Frontend::Query(sql),
            Err(error) => Frontend::Invalid {
                error,
                extended: false,
            },
        },
        b'P' => {
            let name = body.cstring()?;
            let query = body.cstring()?;
            let count = body.u16()?;
            let mut param_oids = Vec::with_capacity(usize::from(count).min(body.remaining() / 4));
            for _ in 0..count {
                param_oids.push(body.u32()?);
            }
            match (name, query) {
                (Ok(name), Ok(query)) => Frontend::Parse {
                    name,
                    query,
                    param_oids,
                },
                (Err(error), _) | (_, Err(error)) => Frontend::Invalid {
                    error,
                    extended: true,
                },
            }
        }
        b'B' => {
            let portal = body.cstring()?;
            let statement = body.cstring()?;
            let count = body.u16()?;
            let mut param_formats =
                Vec::with_capacity(usize::from(count).min(body.remaining() / 2));
            for _ in 0..count {
                param_formats.push(body.i16()?);
            }
            let count = body.u16()?;
            let mut params = Vec::with_capacity(usize::from(count).min(body.remaining() / 4));
            for _ in 0..count {
                let length = body.i32()?;
                if length == -1 {
                    params.push(None);
                } else {
                    let length = usize::try_from(length)
                        .map_err(|_| protocol_violation("invalid parameter length in Bind"))?;
                    params.push(Some(body.bytes(length)?));
                }
            }
            let count = body.u16()?;
            let mut result_formats =
                Vec::with_capacity(usize::from(count).min(body.remaining() / 2));
            for _ in 0..count {
                result_formats.push(body.i16()?);
            }
            match (portal, statement) {
                (Ok(portal), Ok(statement)) => Frontend::Bind {
                    portal,
                    statement,
                    param_formats,
                    params,
                    result_formats,
                },
                (Err(error), _) | (_, Err(error)) => Frontend::Invalid {
                    error,
                    extended: true,
                },
            }
        }
        b'D' | b'C' => {
            let target = match body.u8()? {
                b'S' => Target::Statement,
                b'P' => Target::Portal,
                other => {
                    return Err(protocol_violation(format!(
                        "invalid {} message subtype {other}",
                        if kind == b'D' { "DESCRIBE" } else { "CLOSE" }
                    )))
                }
            };
            match body.cstring()? {
                Ok(name) if kind == b'D' => Frontend::Describe(target, name),
                Ok(name) => Frontend::Close(target, name),
                Err(error) => Frontend::Invalid {
                    error,
                    extended: true,
                },
            }
        }
        b'E' => {
            let portal = body.cstring()?;
            let max_rows = body.i32()?;
            match portal {
                Ok(portal) => Frontend::Execute { portal, max_rows },
                Err(error) => Frontend::Invalid {
                    error,
                    extended: true,
                },
            }
        }
        b'S' => Frontend::Sync,
        b'H' => Frontend::Flush,
        b'X' => Frontend::Terminate,
        b'p' => Frontend::Password(body.rest()),
        b'd' => Frontend::CopyData(body.rest()),
        b'c' => Frontend::CopyDone,
        b'f' => {
            let reason = body.cstring_bytes()?;
            Frontend::CopyFail(String::from_utf8_lossy(&reason).into_owned())
        }
        b'F' => {
            let _ = body.rest();
            Frontend::FunctionCall
        }
        other => {
            return Err(protocol_violation(format!(
                "invalid frontend message type {other}"
            )))
        }
    };
    body.finish()?;
    Ok(message)
}

/// Parses the body of a SASLInitialResponse: the mechanism and the client-first message.
pub(crate) fn parse_sasl_initial(body: Bytes) -> Result<(String, Bytes), SqlError> {
    let mut body = Reader::new(body);
    let mechanism = body
        .cstring()?
        .map_err(|_| protocol_violation("invalid SASL mechanism"))?;
    let length = body.i32()?;
    let data = if length == -1 {
        Bytes::new()
    } else {
        let length = usize::try_from(length)
            .map_err(|_| protocol_violation("invalid SASL initial response length"))?;
        body.bytes(length)?
    };
    body.finish()?;
    Ok((mechanism, data))
}

/// Bounds-checked reads over one message body. Every failure is "the declared length was
/// wrong", a protocol violation.
struct Reader {
    buf: Bytes,
}

impl Reader {
    fn new(buf: Bytes) -> Self {
        Reader { buf }
    }

    fn remaining(&self) -> usize {
        self.buf.len()
    }

    fn need(&self, n: usize) -> Result<(), SqlError> {
        if self.buf.len() < n {
            Err(protocol_violation("insufficient data left in message"))
        } else {
            Ok(())
        }
    }

    fn u8(&mut self) -> Result<u8, SqlError> {
        self.need(1)?;
        Ok(self.buf.get_u8())
    }

    fn i16(&mut self) -> Result<i16, SqlError> {
        self.need(2)?;
        Ok(self.buf.get_i16())
    }

    fn u16(&mut self) -> Result<u16, SqlError> {
        self.need(2)?;
        Ok(self.buf.get_u16())
    }

    fn i32(&mut self) -> Result<i32, SqlError> {
        self.need(4)?;
        Ok(self.buf.get_i32())
    }

    fn u32(&mut self) -> Result<u32, SqlError> {
        self.need(4)?;
        Ok(self.buf.get_u32())
    }

    fn bytes(&mut self, n: usize) -> Result<Bytes, SqlError> {
        self.need(n)?;
        Ok(self.buf.split_to(n))
    }

    fn rest(&mut self) -> Bytes {
        self.buf.split_off(0)
    }

    /// A NUL-terminated string's bytes, without the NUL.
    fn cstring_bytes(&mut self) -> Result<Vec<u8>, SqlError> {
        let Some(end) = self.buf.iter().position(|b| *b == 0) else {
            return Err(protocol_violation("invalid string in message"));
        };
        let bytes = self.buf.split_to(end).to_vec();
        self.buf.advance(1);
        Ok(bytes)
    }

    /// A NUL-terminated string. The outer error is a framing error (ends the connection); the
    /// inner one is invalid UTF-8 (an ordinary ERROR).
    fn cstring(&mut self) -> Result<Result<String, SqlError>, SqlError> {
        let bytes = self.cstring_bytes()?;
        Ok(String::from_utf8(bytes).map_err(|e| {
            let bad = e
                .as_bytes()
                .get(e.utf8_error().valid_up_to())
                .copied()
                .unwrap_or(0);
            SqlError::new(
                SqlState::CHARACTER_NOT_IN_REPERTOIRE,
                format!("invalid byte sequence for encoding \"UTF8\": 0x{bad:02x}"),
            )
        }))
    }

    fn finish(&self) -> Result<(), SqlError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(protocol_violation(
                "invalid message format: bytes left over after the message",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::BufMut;
    use rand::{Rng, SeedableRng};

    use super::*;

    fn message(kind: u8, body: &[u8]) -> BytesMut {
        let mut buf = BytesMut::new();
        buf.put_u8(kind);
        buf.put_i32(i32::try_from(body.len() + 4).unwrap());
        buf.put_slice(body);
        buf
    }

    fn startup_packet(code: u32, body: &[u8]) -> BytesMut {
        let mut buf = BytesMut::new();
        buf.put_i32(i32::try_from(body.len() + 8).unwrap());
        buf.put_u32(code);
        buf.put_slice(body);
        buf
    }

    #[test]
    fn startup_message_yields_version_and_parameters() {
        let mut buf = startup_packet(196_608, b"user\0postgres\0database\0postgres\0\0");
        let startup = decode_startup(&mut buf).unwrap().unwrap();
        assert_eq!(
            startup,
            Startup::Start {
                major: 3,
                minor: 0,
                params: vec![
                    ("user".into(), "postgres".into()),
                    ("database".into(), "postgres".into())
                ],
            }
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn startup_waits_for_the_whole_packet() {
        let full = startup_packet(196_608, b"user\0postgres\0\0");
        for cut in 0..full.len() {
            let mut part = BytesMut::from(&full[..cut]);
            assert_eq!(decode_startup(&mut part).unwrap(), None, "cut at {cut}");
        }
    }

    #[test]
    fn ssl_gss_and_cancel_requests_are_recognised() {
        assert_eq!(
            decode_startup(&mut startup_packet(SSL_REQUEST_CODE, b"")).unwrap(),
            Some(Startup::Ssl)
        );
        assert_eq!(
            decode_startup(&mut startup_packet(GSSENC_REQUEST_CODE, b"")).unwrap(),
            Some(Startup::Gss)
        );
        let cancel = decode_startup(&mut startup_packet(
            CANCEL_REQUEST_CODE,
            &[0, 0, 0, 7, 1, 2, 3, 4],
        ))
        .unwrap()
        .unwrap();
        assert_eq!(
            cancel,
            Startup::Cancel {
                pid: 7,
                secret: Bytes::from_static(&[1, 2, 3, 4])
            }
        );
    }

    #[test]
    fn garbage_before_startup_is_a_protocol_violation() {
        let mut buf = BytesMut::from(&b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..]);
        let error = decode_startup(&mut buf).unwrap_err();
        assert_eq!(error.state, SqlState::PROTOCOL_VIOLATION);
    }

    #[test]
    fn startup_parameters_without_terminator_are_refused() {
        let mut buf = startup_packet(196_608, b"user\0postgres");
        assert_eq!(
            decode_startup(&mut buf).unwrap_err().state,
            SqlState::PROTOCOL_VIOLATION
        );
    }

    #[test]
    fn query_message_decodes() {
        let mut buf = message(b'Q', b"SELECT 1\0");
        assert_eq!(
            decode(&mut buf).unwrap(),
            Some(Frontend::Query("SELECT 1".into()))
        );
    }

    #[test]
    fn bind_message_decodes_formats_and_nulls() {
        let mut body = Vec::new();
        body.extend_from_slice(b"p\0s\0");
        body.extend_from_slice(&[0, 1, 0, 1]); // one format: binary
        body.extend_from_slice(&[0, 2]); // two parameters
        body.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 42]);
        body.extend_from_slice(&(-1i32).to_be_bytes());
        body.extend_from_slice(&[0, 0]); // no result formats
        let mut buf = message(b'B', &body);
        assert_eq!(
            decode(&mut buf).unwrap(),
            Some(Frontend::Bind {
                portal: "p".into(),
                statement: "s".into(),
                param_formats: vec![1],
                params: vec![Some(Bytes::from_static(&[0, 0, 0, 42])), None],
                result_formats: vec![],
            })
        );
    }

    #[test]
    fn unknown_message_type_is_refused_at_once() {
        let mut buf = BytesMut::from(&b"?"[..]);
        assert_eq!(
            decode(&mut buf).unwrap_err().state,
            SqlState::PROTOCOL_VIOLATION
        );
    }

    #[test]
    fn lengths_below_four_or_above_the_limit_are_refused() {
        for length in [-1i32, 0, 3, 10_001] {
            let mut buf = BytesMut::new();
            buf.put_u8(b'S');
            buf.put_i32(length);
            assert_eq!(
                decode(&mut buf).unwrap_err().state,
                SqlState::PROTOCOL_VIOLATION,
                "{length}"
            );
        }
    }

    #[test]
    fn a_length_that_does_not_match_the_body_is_refused() {
        // Sync with a body; Execute whose declared length cuts its max_rows field.
        let mut buf = message(b'S', b"xx");
        assert_eq!(
            decode(&mut buf).unwrap_err().state,
            SqlState::PROTOCOL_VIOLATION
        );
        let mut buf = message(b'E', b"\0\0\0");
        assert_eq!(
            decode(&mut buf).unwrap_err().state,
            SqlState::PROTOCOL_VIOLATION
        );
        // Bind claiming more parameters than it carries.
        let mut buf = message(b'B', b"\0\0\0\0\0\x05");
        assert_eq!(
            decode(&mut buf).unwrap_err().state,
            SqlState::PROTOCOL_VIOLATION
        );
    }

    #[test]
    fn invalid_utf8_is_an_ordinary_error() {
        let mut buf = message(b'Q', b"SELECT '\xff'\0");
        match decode(&mut buf).unwrap() {
            Some(Frontend::Invalid {
                error,
                extended: false,
            }) => {
                assert_eq!(error.state, SqlState::CHARACTER_NOT_IN_REPERTOIRE)
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    /// Random bytes, random truncations and random corruptions of valid messages never panic
    /// the decoder, and it never reports more than was there.
    #[test]
    fn decoder_never_panics_on_random_input() {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(0x00ca_1215);
        let valid: Vec<BytesMut> = vec![
            message(b'Q', b"SELECT 1\0"),
            message(b'P', b"s\0SELECT $1\0\0\x01\0\0\0\x17"),
            message(
                b'B',
                b"\0\0\0\x01\0\x01\0\x01\0\0\0\x04\0\0\0\x01\0\x01\0\x01",
            ),
            message(b'D', b"S\0"),
            message(b'E', b"\0\0\0\0\x02"),
            message(b'C', b"P\0"),
            message(b'S', b""),
            message(b'p', b"SCRAM-SHA-256\0\0\0\0\x03abc"),
        ];
        for _ in 0..20_000 {
            let mut bytes = if rng.gen_bool(0.3) {
                let n = rng.gen_range(0..64);
                (0..n).map(|_| rng.gen::<u8>()).collect::<Vec<u8>>()
            } else {
                let mut v = valid[rng.gen_range(0..valid.len())].to_vec();
                for _ in 0..rng.gen_range(0..4) {
                    let i = rng.gen_range(0..v.len());
                    v[i] = rng.gen();
                }
                let keep = rng.gen_range(0..=v.len());
                v.truncate(keep);
                v
            };
            bytes.extend_from_slice(&[b'S', 0, 0, 0, 4]);
            let mut buf = BytesMut::from(&bytes[..]);
            while let Ok(Some(_)) = decode(&mut buf) {}
            let mut buf = BytesMut::from(&bytes[..]);
            while let Ok(Some(_)) = decode_startup(&mut buf) {}
            if let Ok(Some(Frontend::Password(body))) = decode(&mut BytesMut::from(&bytes[..])) {
                let _ = parse_sasl_initial(body);
            }
        }
    }
}
