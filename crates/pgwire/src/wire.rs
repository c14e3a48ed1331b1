//! A connection's byte stream: a read buffer decoded by [`crate::frontend`], and a write
//! buffer that backend messages are encoded into and that is flushed when the client will
//! wait for it (ReadyForQuery, Flush, before blocking on a read) or when it grows large.

use std::future::Future;
use std::io;
use std::task::Poll;

use bytes::{BufMut, BytesMut};
use cairn_sql::SqlError;
use pgwire::messages::PgWireBackendMessage;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::errors::{error_response, protocol_violation, Severity};
use crate::frontend::{self, Frontend, Startup};
use crate::spin::{Connections, Member, Polling, Waiting};

/// Output is written out once this much is buffered, so large results stream.
const FLUSH_THRESHOLD: usize = 64 * 1024;

/// Why a connection ends.
#[derive(Debug)]
pub(crate) enum Stop {
    /// Tell the client this (severity FATAL), then close.
    Fatal(SqlError),
    /// The client went away, or said Terminate: just close.
    Closed,
}

impl From<io::Error> for Stop {
    fn from(error: io::Error) -> Self {
        tracing::debug!(%error, "connection I/O failed");
        Stop::Closed
    }
}

/// The buffered stream of one connection.
pub(crate) struct Wire<S> {
    stream: S,
    input: BytesMut,
    output: BytesMut,
    /// This connection among the server's, when it may poll for input (see `spin`).
    member: Option<Member>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Wire<S> {
    pub(crate) fn new(stream: S) -> Self {
        Wire {
            stream,
            input: BytesMut::with_capacity(8 * 1024),
            output: BytesMut::with_capacity(8 * 1024),
            member: None,
        }
    }

    /// Counts the connection among `connections`, and lets it poll for input before
    /// sleeping on it when it is the only one with anything to do (see `spin`).
    pub(crate) fn among(mut self, connections: &Connections) -> Self {
        self.member = Some(connections.open());
        self
    }

    /// Queues a backend message.
    pub(crate) fn send(&mut self, message: PgWireBackendMessage) {
        let before = self.output.len();
        if let Err(error) = message.encode(&mut self.output) {
            // Only a message over PostgreSQL's size limits fails to encode (a command tag
            // longer than 30000 bytes, say): drop what was half-written and say so instead.
            self.output.truncate(before);
            tracing::error!(%error, "could not encode a backend message");
            let error = SqlError::internal(format!("could not encode a response: {error}"));
            self.send_error(&error, Severity::Error);
        }
    }

    /// Queues an ErrorResponse.
    pub(crate) fn send_error(&mut self, error: &SqlError, severity: Severity) {
        let response = error_response(error, severity);
        let before = self.output.len();
        if PgWireBackendMessage::ErrorResponse(response)
            .encode(&mut self.output)
            .is_err()
        {
            self.output.truncate(before);
        }
    }

    /// Queues raw bytes (a single-byte SSL or GSS refusal).
    pub(crate) fn send_byte(&mut self, byte: u8) {
        self.output.put_u8(byte);
    }

    /// The output buffer, for messages encoded in place (DataRow).
    pub(crate) fn output(&mut self) -> &mut BytesMut {
        &mut self.output
    }

    /// Writes out everything queued.
    pub(crate) async fn flush(&mut self) -> io::Result<()> {
        if !self.output.is_empty() {
            self.stream.write_all(&self.output).await?;
            self.output.clear();
        }
        self.stream.flush().await
    }

    /// Writes out queued output if there is a lot of it.
    pub(crate) async fn flush_if_large(&mut self) -> io::Result<()> {
        if self.output.len() >= FLUSH_THRESHOLD {
            self.flush().await?;
        }
        Ok(())
    }

    /// The next startup-phase message.
    pub(crate) async fn read_startup(&mut self) -> Result<Startup, Stop> {
        loop {
            if let Some(message) = frontend::decode_startup(&mut self.input).map_err(Stop::Fatal)? {
                return Ok(message);
            }
            self.fill(Polling::Allowed).await?;
        }
    }

    /// The next message after startup if it is wholly buffered.
    pub(crate) fn try_message(&mut self) -> Result<Option<Frontend>, Stop> {
        frontend::decode(&mut self.input).map_err(Stop::Fatal)
    }

    /// Reads more input. Cancel-safe: nothing read is lost if the future is dropped.
    ///
    /// A connection that may poll (`poll` and the rules of `spin`) polls the socket between
    /// yields to its thread's other tasks until input comes or the poll ends, and only then
    /// sleeps on it: a client that answers within microseconds then finds the thread
    /// running, not asleep on a CPU that takes tens of microseconds to wake.
    pub(crate) async fn fill(&mut self, poll: Polling) -> Result<(), Stop> {
        let mut waiting = self.member.as_ref().map(|member| member.wait(poll));
        while waiting.as_mut().is_some_and(Waiting::poll_again) {
            if let Some(read) = poll_once(self.stream.read_buf(&mut self.input)).await {
                return self.filled(read?);
            }
            tokio::task::yield_now().await;
        }
        let read = self.stream.read_buf(&mut self.input).await?;
        self.filled(read)
    }

    /// What `read` bytes of input (0: end of stream) mean for the connection.
    fn filled(&self, read: usize) -> Result<(), Stop> {
        if read == 0 {
            if self.input.is_empty() {
                return Err(Stop::Closed);
            }
            return Err(Stop::Fatal(protocol_violation(
                "unexpected EOF within a message",
            )));
        }
        Ok(())
    }

    /// Sends a FATAL error and flushes, ignoring failures (the connection is ending anyway).
    pub(crate) async fn fatal(&mut self, error: &SqlError) {
        self.send_error(error, Severity::Fatal);
        let _ = self.flush().await;
        let _ = self.stream.shutdown().await;
    }
}

/// `future`'s output if it is ready at its first poll; dropped otherwise.
async fn poll_once<F: Future>(future: F) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    std::future::poll_fn(|cx| {
        Poll::Ready(match future.as_mut().poll(cx) {
            Poll::Ready(output) => Some(output),
            Poll::Pending => None,
        })
    })
    .await
}
