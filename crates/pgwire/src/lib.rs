//! Cairn's front end: the PostgreSQL v3 wire protocol (DESIGN §1, "frontend").
//!
//! Every client — psql, a driver, an ORM, pgbench — talks to Cairn exactly as it would to
//! PostgreSQL 16. This crate accepts TCP connections, runs the startup handshake and
//! authentication, gives each connection one [`cairn_sql::Session`], and translates between
//! protocol messages and session calls. It knows nothing about SQL: statements, types and
//! transactions are the session's business; the wire layer only frames, encodes and orders.
//!
//! ```text
//!  TcpListener ── accept ──▶ one tokio task per connection (connection.rs), kept on one
//!                             of the connection threads (threads.rs); a lone connection
//!                             polls for input between transactions (spin.rs)
//!                               │
//!   bytes ─▶ frontend.rs ───────┤ decode: bounds-checked, length-exact, never panics
//!                               ▼
//!            startup.rs         SSL/GSS 'N', StartupMessage, role/database, trust|SCRAM
//!                               ▼
//!            connection.rs      Query → Session::simple_query
//!                               Parse/Bind/Describe/Execute/Close/Sync/Flush
//!                                 → Session::prepare / Session::execute, portals paged
//!                               ▼
//!   bytes ◀─ wire.rs ◀──────────┘ pgwire's backend message encoders; DataRow in place,
//!                                  values via cairn_sql::types::{text, binary}
//!
//!  CancelRequest (own connection) ─▶ registry.rs: (pid, secret) → CancelToken::cancel()
//!  errors of every kind ─▶ errors.rs: SqlError → ErrorResponse, the one mapping
//! ```
//!
//! # Invariants
//!
//! - Client input never panics the server and never affects another connection. A frame
//!   that cannot be right (unknown type, impossible length, a body that does not fill its
//!   declared length exactly, EOF inside a message, garbage before startup) is a protocol
//!   violation: the client gets FATAL 08P01 and the connection closes.
//! - Every error the client sees is a `SqlError` carrying its SQLSTATE; the SQL layer picks
//!   the code, this crate's own errors (08P01, 28000, 28P01, 3D000, 57P01) are built as
//!   `SqlError`s too, and `errors.rs` alone turns them into ErrorResponses.
//! - ReadyForQuery reports the session's transaction status (I/T/E). After an error in an
//!   extended-protocol message, messages are discarded until Sync.
//! - However a connection ends, its session is closed, rolling back an open transaction.
//! - Only the role `postgres` and the database `postgres` exist. Without a configured
//!   password only loopback clients are admitted (trust); with one, every client must pass
//!   SCRAM-SHA-256.
//!
//! # Shortcuts, and why
//!
//! - **Built on pgwire's messages, not its connection loop.** pgwire (0.42.1) supplies the
//!   backend message types and encoders and the server side of SCRAM-SHA-256
//!   ([`pgwire::api::auth::sasl::scram::ScramServerAuth`]). Its frontend decoder and its
//!   `process_socket` loop are not used: the decoder trusts lengths and counts (a short Bind
//!   or Parse panics on `get_u16` past the end; a wrong length misparses the next message),
//!   a decode error closes the socket without the 08P01 ErrorResponse, and the loop has no
//!   hook for shutdown (FATAL 57P01 to idle clients) or for one `&mut Session` per
//!   connection. The decoder here is small, bounds-checked everywhere, and fuzzed by its tests.
//! - No TLS yet: SSLRequest and GSSENCRequest are answered 'N'. SCRAM runs without channel
//!   binding.
//! - Protocol 3.0 only: a client asking for 3.2 gets NegotiateProtocolVersion (3.0), so
//!   cancel keys are 4 bytes.
//! - A portal's rows are materialised by its first Execute (the session returns whole
//!   results); Execute with a row limit then pages through them with PortalSuspended.
//! - Startup parameters (and `-c name=value` switches in `options`) go to
//!   `Session::set_startup_parameter`; what the session refuses ends the connection with its
//!   FATAL error, as in PostgreSQL. `replication` connections are refused.
//! - COPY and the function-call interface are not supported. There is no connection limit
//!   yet (PostgreSQL's `max_connections`); startup must finish within 60 s.
//! - Shutdown: stop accepting, let running statements finish, FATAL 57P01 to every connection
//!   once it waits for input; after 5 s cancel what still runs, after 5 s more abandon it.
//! - Each connection is a task on one of `ServerConfig::connection_threads` threads, each a
//!   single-threaded runtime, and stays there; a new connection goes to the thread serving
//!   the fewest. The session's futures must still be `Send` (the task is spawned from the
//!   accept loop).
//! - Cancel secrets and the SCRAM salt come from the standard library's randomly keyed
//!   SipHash (see `registry::random_u64`), because the workspace has no unseeded RNG.

mod connection;
mod errors;
mod frontend;
mod registry;
mod server;
mod spin;
mod startup;
mod threads;
mod wire;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

/// How the server is reached and who may connect.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The address the listener is bound to (for logs; the listener is passed to [`serve`]).
    pub listen: SocketAddr,
    /// The password of the `postgres` role. `None`: trust, and only loopback clients are
    /// admitted. `Some`: every client authenticates with SCRAM-SHA-256.
    pub password: Option<String>,
    /// How many threads serve connections (at least one): each runs its connections on a
    /// single-threaded runtime of its own (see `threads`).
    pub connection_threads: usize,
}

/// Serves PostgreSQL clients on `listener` until `shutdown` resolves.
///
/// Each accepted connection runs on its own task with its own [`cairn_sql::Session`]. When
/// `shutdown` resolves the listener is closed, statements already running finish, and every
/// connection that is (or becomes) idle gets FATAL 57P01 and is closed; statements still
/// running after a grace period are cancelled. Returns once every connection has ended.
pub async fn serve(
    listener: TcpListener,
    engine: Arc<cairn_sql::Engine>,
    config: ServerConfig,
    shutdown: impl Future<Output = ()>,
) {
    tracing::info!(listen = %config.listen, password = config.password.is_some(), "serving PostgreSQL clients");
    server::serve(listener, engine, config, shutdown).await
}
