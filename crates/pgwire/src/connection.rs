//! One client connection: startup, then the query loop over one [`Session`].
//!
//! ```text
//!   Query ─────────────────▶ Session::simple_query ──▶ per statement: RowDescription,
//!                                                      DataRow*, CommandComplete | Error
//!                                                    ─▶ ReadyForQuery(I|T|E)
//!   Parse(name, sql, oids) ─▶ Session::prepare ──────▶ statements[name]
//!   Bind(portal, name, ..) ─▶ decode parameters ─────▶ portals[portal] (Ready)
//!   Describe S|P ──────────▶ ParameterDescription, RowDescription | NoData
//!   Execute(portal, n) ────▶ Session::execute (first time; rows kept in the portal)
//!                           ─▶ DataRow × ≤ n, then PortalSuspended or CommandComplete
//!   Sync ──────────────────▶ ReadyForQuery; an error earlier in the batch made us skip to here
//!   (COPY FROM STDIN) ─────▶ CopyInResponse; CopyData* until CopyDone ─▶ Session::copy_from
//!                              (CopyFail or another message ends it with an error)
//!   (COPY TO STDOUT) ──────▶ CopyOutResponse, CopyData per row, CopyDone, CommandComplete
//!   (idle) ────────────────◀ NotificationResponse for the session's LISTENs, only outside a
//!                              transaction
//! ```
//!
//! Invariants:
//! - After an error in an extended-protocol message, everything up to the next Sync is
//!   discarded; Sync ends the skipping and answers ReadyForQuery.
//! - ReadyForQuery always reports the session's own transaction status.
//! - Portals live until closed, rebound (the unnamed one), or the session is idle at a Sync
//!   or after a simple query (PostgreSQL drops portals at transaction end).
//! - However the connection ends — Terminate, EOF, a protocol violation, shutdown, or the
//!   task being aborted — the session is closed (its transaction rolled back): `Drop` does it.
//!
//! Shortcut: a portal's rows are materialised by its first Execute (the Session API returns
//! whole results); later Executes page through them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use cairn_sql::types::timezone::TimeZone;
use cairn_sql::types::{binary, text};
use cairn_sql::{
    Column, DataType, Engine, Outcome, Prepared, Session, SqlError, SqlResult, SqlState, TxStatus,
    Value,
};
use cairn_types::clock::{timeout, Clock};
use pgwire::messages::copy::{CopyData, CopyDone, CopyInResponse, CopyOutResponse};
use pgwire::messages::data::{FieldDescription, NoData, ParameterDescription, RowDescription};
use pgwire::messages::extendedquery::{
    BindComplete, CloseComplete, ParseComplete, PortalSuspended,
};
use pgwire::messages::response::{
    CommandComplete, EmptyQueryResponse, NotificationResponse, ReadyForQuery, TransactionStatus,
};
use pgwire::messages::startup::{BackendKeyData, ParameterStatus, SecretKey};
use pgwire::messages::PgWireBackendMessage as Backend;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

use crate::errors::{admin_shutdown, cstring, notice_response, protocol_violation, Severity};
use crate::frontend::{Frontend, Target};
use crate::registry::{Registration, Registry};
use crate::spin::{Connections, Polling};
use crate::startup::{startup, Credential};
use crate::wire::{Stop, Wire};

/// How long a client has to finish startup and authentication (PostgreSQL's
/// `authentication_timeout`).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// The most COPY FROM STDIN data one statement takes: a transaction's byte limit.
const MAX_COPY_BYTES: usize = 1 << 30;

/// The parameters reported at startup, before the session's own values are applied.
const REPORTED_PARAMETERS: &[(&str, &str)] = &[
    ("application_name", ""),
    ("client_encoding", "UTF8"),
    ("DateStyle", "ISO, MDY"),
    ("default_transaction_read_only", "off"),
    ("in_hot_standby", "off"),
    ("integer_datetimes", "on"),
    ("IntervalStyle", "postgres"),
    ("is_superuser", "on"),
    ("scram_iterations", "4096"),
    ("server_encoding", "UTF8"),
    ("server_version", "16.4"),
    ("session_authorization", "postgres"),
    ("standard_conforming_strings", "on"),
    ("TimeZone", "UTC"),
];

/// What every connection shares.
pub(crate) struct Shared {
    pub(crate) engine: Arc<Engine>,
    pub(crate) credential: Option<Credential>,
    pub(crate) registry: Arc<Registry>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) connections: Connections,
}

/// Serves one connection until it ends. Never panics on client input; every way out closes
/// the session.
pub(crate) async fn run<S>(
    stream: S,
    peer: SocketAddr,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let mut wire = Wire::new(stream).among(&shared.connections);
    let started = tokio::select! {
        biased;
        result = timeout(
            shared.clock.as_ref(),
            STARTUP_TIMEOUT,
            startup(&mut wire, peer, shared.credential.as_ref(), &shared.registry),
        ) => Some(result),
        () = shutting_down(&mut shutdown) => None,
    };
    let accepted = match started {
        None => return wire.fatal(&admin_shutdown()).await,
        Some(None) => {
            let error = SqlError::new(
                SqlState::QUERY_CANCELED,
                "canceling authentication due to timeout",
            );
            return wire.fatal(&error).await;
        }
        Some(Some(Err(Stop::Fatal(error)))) => {
            tracing::info!(%peer, %error, "connection refused");
            return wire.fatal(&error).await;
        }
        Some(Some(Err(Stop::Closed)) | Some(Ok(None))) => return,
        Some(Some(Ok(Some(accepted)))) => accepted,
    };

    let mut session = Session::new(shared.engine.clone(), &accepted.user, &accepted.database);
    for (name, value) in &accepted.settings {
        if let Err(error) = session.set_startup_parameter(name, value) {
            tracing::info!(%peer, %error, "connection refused: startup parameter");
            session.close();
            return wire.fatal(&error).await;
        }
    }
    let busy = Arc::new(AtomicBool::new(false));
    let registration = shared
        .registry
        .register(session.cancel_token(), busy.clone());
    tracing::debug!(%peer, pid = registration.pid, "session started");
    session.set_backend_pid(registration.pid);
    let notifications = session.take_notifications();
    let mut connection = Connection {
        notifications,
        held_notifications: Vec::new(),
        wire,
        session,
        statements: HashMap::new(),
        portals: HashMap::new(),
        skipping: false,
        busy,
        scratch: Vec::new(),
        registration,
    };
    connection.greet();
    match connection.serve(&mut shutdown).await {
        Ok(()) | Err(Stop::Closed) => {}
        Err(Stop::Fatal(error)) => {
            tracing::info!(%peer, %error, "connection closed");
            connection.wire.fatal(&error).await;
        }
    }
}

/// Resolves once the server is shutting down (or gone).
async fn shutting_down(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|down| *down).await;
}

/// A prepared statement as the protocol sees it.
struct Statement {
    name: String,
    /// `None` for an empty query string.
    prepared: Option<Arc<Prepared>>,
    param_types: Vec<DataType>,
}

impl Statement {
    fn columns(&self) -> &[Column] {
        self.prepared
            .as_ref()
            .map(|p| p.columns.as_slice())
            .unwrap_or(&[])
    }
}

enum PortalState {
    /// Bound, not executed yet.
    Ready,
    /// Executed; rows not yet sent remain.
    Streaming {
        tag: String,
        columns: Vec<Column>,
        rows: std::vec::IntoIter<Vec<Value>>,
        suspended: bool,
    },
    /// Finished. `rerun_tag` answers a further Execute of a row-returning portal (no more
    /// rows); other portals cannot run again.
    Done { rerun_tag: Option<String> },
}

struct Portal {
    statement: Arc<Statement>,
    params: Vec<Value>,
    result_formats: Vec<i16>,
    state: PortalState,
}

/// A failed message: an ordinary error reported to the client, or the end of the connection.
enum Failure {
    Sql(SqlError),
    Stop(Stop),
}

impl From<SqlError> for Failure {
    fn from(error: SqlError) -> Self {
        Failure::Sql(error)
    }
}

impl From<Stop> for Failure {
    fn from(stop: Stop) -> Self {
        Failure::Stop(stop)
    }
}

impl From<std::io::Error> for Failure {
    fn from(error: std::io::Error) -> Self {
        Failure::Stop(error.into())
    }
}

struct Connection<S> {
    wire: Wire<S>,
    session: Session,
    statements: HashMap<String, Arc<Statement>>,
    portals: HashMap<String, Portal>,
    /// Discarding extended-protocol messages until Sync, after an error.
    skipping: bool,
    /// True while the session runs a statement (cancel requests are honoured only then).
    busy: Arc<AtomicBool>,
    /// Reused buffer for binary-encoding one value.
    scratch: Vec<u8>,
    registration: Registration,
    /// NOTIFYs for channels the session listens to; sent when it is outside a transaction.
    notifications: Option<tokio::sync::mpsc::UnboundedReceiver<cairn_sql::Notification>>,
    /// Notifications that arrived during a transaction, held until it ends.
    held_notifications: Vec<cairn_sql::Notification>,
}

impl<S> Drop for Connection<S> {
    fn drop(&mut self) {
        self.session.close();
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Connection<S> {
    /// ParameterStatus for every reported parameter, BackendKeyData, ReadyForQuery.
    fn greet(&mut self) {
        let mut parameters: Vec<(String, String)> = REPORTED_PARAMETERS
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let mut set = |name: String, value: String| match parameters
            .iter_mut()
            .find(|(k, _)| k.eq_ignore_ascii_case(&name))
        {
            Some(entry) => entry.1 = value,
            None => parameters.push((name, value)),
        };
        for (name, value) in self.session.reported_parameters() {
            set(name, value);
        }
        for (name, value) in parameters {
            self.send_parameter(&name, &value);
        }
        self.wire.send(Backend::BackendKeyData(BackendKeyData::new(
            self.registration.pid,
            SecretKey::I32(self.registration.secret),
        )));
        self.ready_for_query();
    }

    async fn serve(&mut self, shutdown: &mut watch::Receiver<bool>) -> Result<(), Stop> {
        loop {
            let message = loop {
                if let Some(message) = self.wire.try_message()? {
                    break message;
                }
                self.send_notifications();
                self.wire.flush().await?;
                let notified = async {
                    match self.notifications.as_mut() {
                        Some(receiver) => receiver.recv().await,
                        None => std::future::pending().await,
                    }
                };
                // Inside a block, polling kept a lone client off this thread's CPU, so
                // every answer woke it on an idle one (see `spin`).
                let poll = match self.session.transaction_status() {
                    TxStatus::Idle => Polling::Allowed,
                    TxStatus::InBlock | TxStatus::Failed => Polling::Never,
                };
                tokio::select! {
                    biased;
                    filled = self.wire.fill(poll) => filled?,
                    () = shutting_down(shutdown) => return Err(Stop::Fatal(admin_shutdown())),
                    Some(notification) = notified => {
                        self.held_notifications.push(notification);
                        self.send_notifications();
                    }
                }
            };
            if self.skipping && !matches!(message, Frontend::Sync | Frontend::Terminate) {
                continue;
            }
            let extended = message.is_extended();
            match self.handle(message).await {
                Ok(()) => {}
                Err(Failure::Stop(stop)) => return Err(stop),
                Err(Failure::Sql(error)) => {
                    self.wire.send_error(&error, Severity::Error);
                    if extended {
                        self.skipping = true;
                    } else {
                        self.ready_for_query();
                    }
                }
            }
        }
    }

    async fn handle(&mut self, message: Frontend) -> Result<(), Failure> {
        match message {
            Frontend::Query(sql) => self.simple_query(&sql).await,
            Frontend::Parse {
                name,
                query,
                param_oids,
            } => self.parse(name, &query, &param_oids).await,
            Frontend::Bind {
                portal,
                statement,
                param_formats,
                params,
                result_formats,
            } => self.bind(portal, &statement, &param_formats, params, result_formats),
            Frontend::Describe(target, name) => self.describe(target, &name),
            Frontend::Execute { portal, max_rows } => self.execute(portal, max_rows).await,
            Frontend::Close(target, name) => {
                match target {
                    Target::Statement => {
                        self.session.statement_closed(&name);
                        self.statements.remove(&name).map(|_| ())
                    }
                    Target::Portal => self.portals.remove(&name).map(|_| ()),
                };
                self.wire.send(Backend::CloseComplete(CloseComplete::new()));
                Ok(())
            }
            Frontend::Sync => {
                self.skipping = false;
                if self.session.transaction_status() == TxStatus::Idle {
                    self.portals.clear();
                }
                self.ready_for_query();
                Ok(())
            }
            Frontend::Flush => Ok(self.wire.flush().await?),
            Frontend::Terminate => Err(Failure::Stop(Stop::Closed)),
            // COPY traffic outside COPY FROM STDIN is ignored, as PostgreSQL does.
            Frontend::CopyData(_) | Frontend::CopyDone | Frontend::CopyFail(_) => Ok(()),
            Frontend::FunctionCall => Err(Failure::Sql(SqlError::unsupported(
                "the fast-path function call interface is not supported",
            ))),
            Frontend::Password(_) => Err(Failure::Stop(Stop::Fatal(protocol_violation(
                "unexpected password message after authentication",
            )))),
            Frontend::Invalid { error, .. } => Err(Failure::Sql(error)),
        }
    }

    // ---- simple query -------------------------------------------------------------------

    async fn simple_query(&mut self, sql: &str) -> Result<(), Failure> {
        self.portals.remove("");
        self.statements.remove("");
        if is_empty_query(sql) {
            self.wire
                .send(Backend::EmptyQueryResponse(EmptyQueryResponse::new()));
        } else {
            self.busy.store(true, Ordering::Release);
            let results = self.session.simple_query(sql).await;
            self.busy.store(false, Ordering::Release);
            if results.is_empty() {
                self.wire
                    .send(Backend::EmptyQueryResponse(EmptyQueryResponse::new()));
            }
            for result in results {
                match result {
                    Ok(outcome) => self.send_simple_outcome(outcome).await?,
                    Err(error) => {
                        self.wire.send_error(&error, Severity::Error);
                        break;
                    }
                }
            }
        }
        if self.session.transaction_status() == TxStatus::Idle {
            self.portals.clear();
        }
        self.ready_for_query();
        Ok(())
    }

    async fn send_simple_outcome(&mut self, outcome: Outcome) -> Result<(), Failure> {
        let Some(outcome) = self.transfer(outcome).await? else {
            return Ok(());
        };
        self.send_side_effects(&outcome);
        if let Some(columns) = &outcome.columns {
            self.wire
                .send(Backend::RowDescription(row_description(columns, &[])));
            let zone = &outcome.time_zone;
            for row in &outcome.rows {
                if let Err(error) = put_data_row(
                    self.wire.output(),
                    row,
                    columns,
                    &[],
                    zone,
                    &mut self.scratch,
                ) {
                    // The statement ran; only this result cannot be sent.
                    self.wire.send_error(&error, Severity::Error);
                    return Ok(());
                }
                self.wire.flush_if_large().await?;
            }
        }
        self.send_complete(&outcome.tag);
        Ok(())
    }

    // ---- extended query -----------------------------------------------------------------

    async fn parse(&mut self, name: String, query: &str, oids: &[u32]) -> Result<(), Failure> {
        if !name.is_empty() && self.statements.contains_key(&name) {
            return Err(SqlError::new(
                SqlState::DUPLICATE_PREPARED_STATEMENT,
                format!("prepared statement \"{name}\" already exists"),
            )
            .into());
        }
        let specified = oids
            .iter()
            .map(|&oid| match oid {
                0 => Ok(None),
                oid => DataType::from_oid(oid).map(Some).ok_or_else(|| {
                    SqlError::unsupported(format!("parameter type with OID {oid} is not supported"))
                }),
            })
            .collect::<SqlResult<Vec<Option<DataType>>>>()?;
        let statement = if is_empty_query(query) {
            let param_types = specified
                .into_iter()
                .map(|t| t.unwrap_or(DataType::Unknown))
                .collect();
            Statement {
                name: name.clone(),
                prepared: None,
                param_types,
            }
        } else {
            self.busy.store(true, Ordering::Release);
            let prepared = self.session.prepare(query, &specified).await;
            self.busy.store(false, Ordering::Release);
            let prepared = prepared?;
            Statement {
                name: name.clone(),
                param_types: prepared.param_types.clone(),
                prepared: Some(prepared),
            }
        };
        if !name.is_empty() {
            self.session.statement_prepared(&name);
        }
        self.statements.insert(name, Arc::new(statement));
        self.wire.send(Backend::ParseComplete(ParseComplete::new()));
        Ok(())
    }

    fn bind(
        &mut self,
        portal: String,
        statement: &str,
        param_formats: &[i16],
        params: Vec<Option<Bytes>>,
        result_formats: Vec<i16>,
    ) -> Result<(), Failure> {
        let statement = self.statement(statement)?;
        if !portal.is_empty() && self.portals.contains_key(&portal) {
            return Err(SqlError::new(
                SqlState("42P03"),
                format!("portal \"{portal}\" already exists"),
            )
            .into());
        }
        let params = decode_params(&statement, param_formats, params, &self.session.time_zone())?;
        check_formats(&result_formats)?;
        let columns = statement.columns().len();
        if result_formats.len() > 1 && result_formats.len() != columns {
            return Err(protocol_violation(format!(
                "bind message has {} result formats but query has {columns} columns",
                result_formats.len()
            ))
            .into());
        }
        self.portals.insert(
            portal,
            Portal {
                statement,
                params,
                result_formats,
                state: PortalState::Ready,
            },
        );
        self.wire.send(Backend::BindComplete(BindComplete::new()));
        Ok(())
    }

    fn describe(&mut self, target: Target, name: &str) -> Result<(), Failure> {
        match target {
            Target::Statement => {
                let statement = self.statement(name)?;
                let types = statement
                    .param_types
                    .iter()
                    .map(|t| wire_type(t).oid())
                    .collect();
                self.wire
                    .send(Backend::ParameterDescription(ParameterDescription::new(
                        types,
                    )));
                self.send_description(statement.columns(), &[]);
            }
            Target::Portal => {
                // A cursor DECLAREd in SQL is a portal too (psycopg describes its named
                // cursors so).
                if !self.portals.contains_key(name) {
                    if let Some(columns) = self.session.cursor_columns(name) {
                        let description = match columns.is_empty() {
                            true => Backend::NoData(NoData::new()),
                            false => Backend::RowDescription(row_description(&columns, &[])),
                        };
                        self.wire.send(description);
                        return Ok(());
                    }
                }
                let portal = self.portal(name)?;
                let description = match &portal.state {
                    PortalState::Streaming { columns, .. } => {
                        Some(row_description(columns, &portal.result_formats))
                    }
                    _ if portal.statement.columns().is_empty() => None,
                    _ => Some(row_description(
                        portal.statement.columns(),
                        &portal.result_formats,
                    )),
                };
                match description {
                    Some(description) => self.wire.send(Backend::RowDescription(description)),
                    None => self.wire.send(Backend::NoData(NoData::new())),
                }
            }
        }
        Ok(())
    }

    async fn execute(&mut self, name: String, max_rows: i32) -> Result<(), Failure> {
        let Some(mut portal) = self.portals.remove(&name) else {
            return Err(missing_portal(&name).into());
        };
        let result = self.run_portal(&mut portal, &name, max_rows).await;
        self.portals.insert(name, portal);
        result
    }

    async fn run_portal(
        &mut self,
        portal: &mut Portal,
        name: &str,
        max_rows: i32,
    ) -> Result<(), Failure> {
        if let PortalState::Ready = portal.state {
            portal.state = PortalState::Done { rerun_tag: None };
            let Some(prepared) = portal.statement.prepared.clone().filter(|p| !p.is_empty()) else {
                self.wire
                    .send(Backend::EmptyQueryResponse(EmptyQueryResponse::new()));
                return Ok(());
            };
            let params = std::mem::take(&mut portal.params);
            self.busy.store(true, Ordering::Release);
            let outcome = self.session.execute(&prepared, params).await;
            self.busy.store(false, Ordering::Release);
            let Some(outcome) = self.transfer(outcome?).await? else {
                return Ok(());
            };
            self.send_side_effects(&outcome);
            match outcome.columns {
                None => {
                    self.send_complete(&outcome.tag);
                    return Ok(());
                }
                Some(columns) => {
                    portal.state = PortalState::Streaming {
                        tag: outcome.tag,
                        columns,
                        rows: outcome.rows.into_iter(),
                        suspended: false,
                    }
                }
            }
        }
        match &mut portal.state {
            PortalState::Streaming {
                tag,
                columns,
                rows,
                suspended,
            } => {
                let limit = usize::try_from(max_rows)
                    .ok()
                    .filter(|n| *n > 0)
                    .unwrap_or(usize::MAX);
                let mut sent = 0usize;
                let zone = self.session.time_zone();
                while sent < limit {
                    let Some(row) = rows.next() else { break };
                    if let Err(error) = put_data_row(
                        self.wire.output(),
                        &row,
                        columns,
                        &portal.result_formats,
                        &zone,
                        &mut self.scratch,
                    ) {
                        portal.state = PortalState::Done { rerun_tag: None };
                        return Err(error.into());
                    }
                    sent += 1;
                    self.wire.flush_if_large().await?;
                }
                if rows.len() > 0 {
                    *suspended = true;
                    self.wire
                        .send(Backend::PortalSuspended(PortalSuspended::new()));
                    return Ok(());
                }
                let tag = if *suspended {
                    with_row_count(tag, sent)
                } else {
                    tag.clone()
                };
                let rerun_tag = Some(with_row_count(&tag, 0));
                self.send_complete(&tag);
                portal.state = PortalState::Done { rerun_tag };
                Ok(())
            }
            PortalState::Done {
                rerun_tag: Some(tag),
            } => {
                let tag = tag.clone();
                self.send_complete(&tag);
                Ok(())
            }
            PortalState::Done { rerun_tag: None } | PortalState::Ready => Err(SqlError::new(
                SqlState("55000"),
                format!("portal \"{name}\" cannot be run"),
            )
            .into()),
        }
    }

    // ---- COPY -----------------------------------------------------------------------------

    /// Carries out what a statement asks of the connection: forgetting prepared statements,
    /// and the COPY it started: FROM STDIN takes the client's data and runs
    /// the statement over it (its outcome is returned to send); TO STDOUT sends the rows and
    /// the CommandComplete (`None` returned). Any other outcome is returned as it is.
    async fn transfer(&mut self, outcome: Outcome) -> Result<Option<Outcome>, Failure> {
        // DEALLOCATE and DISCARD ALL: the connection holds the prepared statements.
        match &outcome.deallocate {
            Some(None) => self.statements.clear(),
            Some(Some(name)) => {
                self.statements.remove(name);
            }
            None => {}
        }
        let Some(transfer) = outcome.copy.clone() else {
            return Ok(Some(outcome));
        };
        let binary = transfer.format.is_binary();
        let count = i16::try_from(transfer.columns.len()).unwrap_or(i16::MAX);
        let formats = vec![i16::from(binary); transfer.columns.len()];
        if transfer.incoming {
            self.wire.send(Backend::CopyInResponse(CopyInResponse::new(
                i8::from(binary),
                count,
                formats,
            )));
            let data = self.copy_data().await?;
            self.busy.store(true, Ordering::Release);
            let outcome = self.session.copy_from(data).await;
            self.busy.store(false, Ordering::Release);
            return Ok(Some(outcome?));
        }
        self.send_side_effects(&outcome);
        self.wire
            .send(Backend::CopyOutResponse(CopyOutResponse::new(
                i8::from(binary),
                count,
                formats,
            )));
        let names: Vec<&str> = transfer.columns.iter().map(|c| c.name.as_str()).collect();
        let types: Vec<DataType> = transfer
            .columns
            .iter()
            .map(|c| c.data_type.clone())
            .collect();
        // One CopyData per row, as PostgreSQL sends them (psycopg reads a row per message);
        // the binary signature rides in front of the first, where drivers look for it.
        let mut line = transfer.format.start(&names);
        if !binary && !line.is_empty() {
            self.send_copy_data(std::mem::take(&mut line));
        }
        for row in &outcome.rows {
            transfer
                .format
                .encode_row(row, &types, &outcome.time_zone, &mut line);
            self.send_copy_data(std::mem::take(&mut line));
            self.wire.flush_if_large().await?;
        }
        line.extend(transfer.format.end());
        if !line.is_empty() {
            self.send_copy_data(line);
        }
        self.wire.send(Backend::CopyDone(CopyDone::new()));
        self.send_complete(&outcome.tag);
        Ok(None)
    }

    fn send_copy_data(&mut self, data: Vec<u8>) {
        self.wire
            .send(Backend::CopyData(CopyData::new(Bytes::from(data))));
    }

    /// Reads COPY FROM STDIN data up to CopyDone. CopyFail, or any message COPY does not
    /// expect (Flush and Sync are ignored, as the protocol says), ends the COPY with an error.
    async fn copy_data(&mut self) -> Result<Bytes, Failure> {
        let mut data = BytesMut::new();
        let mut too_large = false;
        loop {
            let message = loop {
                if let Some(message) = self.wire.try_message()? {
                    break message;
                }
                self.wire.flush().await?;
                self.wire.fill(Polling::Allowed).await?;
            };
            match message {
                Frontend::CopyData(chunk) => {
                    // Past the limit the rest is read and dropped, so the error comes after
                    // CopyDone and the connection stays in step.
                    if data.len() + chunk.len() > MAX_COPY_BYTES {
                        too_large = true;
                        data = BytesMut::new();
                    } else if !too_large {
                        data.extend_from_slice(&chunk);
                    }
                }
                Frontend::CopyDone => break,
                Frontend::CopyFail(reason) => {
                    return Err(self.session.copy_failed(Some(&reason)).into())
                }
                Frontend::Flush | Frontend::Sync => {}
                Frontend::Terminate => {
                    self.session.copy_failed(None);
                    return Err(Failure::Stop(Stop::Closed));
                }
                _ => {
                    self.session.copy_failed(None);
                    return Err(protocol_violation(
                        "unexpected message type during COPY from stdin",
                    )
                    .into());
                }
            }
        }
        if too_large {
            self.session.copy_failed(None);
            return Err(SqlError::new(
                SqlState::PROGRAM_LIMIT_EXCEEDED,
                format!("COPY data is larger than {} MiB", MAX_COPY_BYTES >> 20),
            )
            .into());
        }
        Ok(data.freeze())
    }

    // ---- helpers --------------------------------------------------------------------------

    fn statement(&self, name: &str) -> SqlResult<Arc<Statement>> {
        self.statements.get(name).cloned().ok_or_else(|| {
            let message = if name.is_empty() {
                "unnamed prepared statement does not exist".to_owned()
            } else {
                format!("prepared statement \"{name}\" does not exist")
            };
            SqlError::new(SqlState::UNDEFINED_PREPARED_STATEMENT, message)
        })
    }

    fn portal(&self, name: &str) -> SqlResult<&Portal> {
        self.portals.get(name).ok_or_else(|| missing_portal(name))
    }

    /// Notices and parameter changes, sent ahead of a statement's result.
    fn send_side_effects(&mut self, outcome: &Outcome) {
        for notice in &outcome.notices {
            self.wire
                .send(Backend::NoticeResponse(notice_response(notice)));
        }
        for (name, value) in &outcome.parameter_changes {
            self.send_parameter(name, value);
        }
    }

    fn send_description(&mut self, columns: &[Column], formats: &[i16]) {
        if columns.is_empty() {
            self.wire.send(Backend::NoData(NoData::new()));
        } else {
            self.wire
                .send(Backend::RowDescription(row_description(columns, formats)));
        }
    }

    fn send_complete(&mut self, tag: &str) {
        self.wire
            .send(Backend::CommandComplete(CommandComplete::new(cstring(tag))));
    }

    fn send_parameter(&mut self, name: &str, value: &str) {
        self.wire
            .send(Backend::ParameterStatus(ParameterStatus::new(
                cstring(name),
                cstring(value),
            )));
    }

    /// NOTIFYs that arrived, sent now if the session is outside a transaction (PostgreSQL
    /// delivers them between transactions).
    fn send_notifications(&mut self) {
        if self.session.transaction_status() != TxStatus::Idle {
            return;
        }
        for notification in std::mem::take(&mut self.held_notifications) {
            self.send_notification(notification);
        }
        while let Some(notification) = self
            .notifications
            .as_mut()
            .and_then(|receiver| receiver.try_recv().ok())
        {
            self.send_notification(notification);
        }
    }

    fn send_notification(&mut self, notification: cairn_sql::Notification) {
        self.wire
            .send(Backend::NotificationResponse(NotificationResponse::new(
                notification.pid,
                notification.channel,
                notification.payload,
            )));
    }

    fn ready_for_query(&mut self) {
        self.send_notifications();
        let status = match self.session.transaction_status() {
            TxStatus::Idle => TransactionStatus::Idle,
            TxStatus::InBlock => TransactionStatus::Transaction,
            TxStatus::Failed => TransactionStatus::Error,
        };
        self.wire
            .send(Backend::ReadyForQuery(ReadyForQuery::new(status)));
    }
}

/// PostgreSQL's "empty query": nothing but whitespace and semicolons.
fn is_empty_query(sql: &str) -> bool {
    sql.chars().all(|c| c.is_whitespace() || c == ';')
}

fn missing_portal(name: &str) -> SqlError {
    let message = if name.is_empty() {
        "unnamed portal does not exist".to_owned()
    } else {
        format!("portal \"{name}\" does not exist")
    };
    SqlError::new(SqlState::INVALID_CURSOR_NAME, message)
}

/// The type a client is told about: an unresolved type is text, as in PostgreSQL.
fn wire_type(data_type: &DataType) -> &DataType {
    match data_type {
        DataType::Unknown => &DataType::Text,
        other => other,
    }
}

/// The format code of column or parameter `i`: none given means text, one means all.
fn format_code(formats: &[i16], i: usize) -> i16 {
    match formats {
        [] => 0,
        [only] => *only,
        many => many.get(i).copied().unwrap_or(0),
    }
}

fn check_formats(formats: &[i16]) -> SqlResult<()> {
    match formats.iter().find(|f| !matches!(f, 0 | 1)) {
        Some(bad) => Err(SqlError::new(
            SqlState::INVALID_PARAMETER_VALUE,
            format!("unsupported format code: {bad}"),
        )),
        None => Ok(()),
    }
}

/// A SELECT's tag with its row count replaced (for a portal run in several Executes, where
/// PostgreSQL counts the rows of the last one); other tags are kept.
fn with_row_count(tag: &str, rows: usize) -> String {
    if tag.starts_with("SELECT") {
        format!("SELECT {rows}")
    } else {
        tag.to_owned()
    }
}

fn row_description(columns: &[Column], formats: &[i16]) -> RowDescription {
    RowDescription::new(
        columns
            .iter()
            .enumerate()
            .map(|(i, column)| {
                let data_type = wire_type(&column.data_type);
                FieldDescription::new(
                    cstring(&column.name),
                    0,
                    0,
                    data_type.oid(),
                    data_type.type_size(),
                    data_type.type_modifier(),
                    format_code(formats, i),
                )
            })
            .collect(),
    )
}

/// Bind's parameters, decoded to the statement's parameter types (text `timestamptz`
/// without an offset in the session's time zone `zone`).
fn decode_params(
    statement: &Statement,
    formats: &[i16],
    values: Vec<Option<Bytes>>,
    zone: &TimeZone,
) -> SqlResult<Vec<Value>> {
    let types = &statement.param_types;
    if values.len() != types.len() {
        return Err(protocol_violation(format!(
            "bind message supplies {} parameters, but prepared statement \"{}\" requires {}",
            values.len(),
            statement.name,
            types.len()
        )));
    }
    if formats.len() > 1 && formats.len() != values.len() {
        return Err(protocol_violation(format!(
            "bind message has {} parameter formats but {} parameters",
            formats.len(),
            values.len()
        )));
    }
    check_formats(formats)?;
    values
        .into_iter()
        .zip(types)
        .enumerate()
        .map(|(i, (value, data_type))| {
            let Some(bytes) = value else {
                return Ok(Value::Null);
            };
            if format_code(formats, i) == 1 {
                return binary::decode_binary(data_type, &bytes);
            }
            let text = std::str::from_utf8(&bytes).map_err(|_| {
                SqlError::new(
                    SqlState::CHARACTER_NOT_IN_REPERTOIRE,
                    format!(
                        "invalid byte sequence for encoding \"UTF8\" in parameter ${}",
                        i + 1
                    ),
                )
            })?;
            text::parse_text(data_type, text, zone)
        })
        .collect()
}

/// Encodes a DataRow straight into the output buffer: each value in its column's format
/// (text through the types module's output functions, binary through its send functions),
/// NULL as length -1; `timestamptz` text in the session's time zone `zone`. On error
/// nothing is left behind.
fn put_data_row(
    out: &mut BytesMut,
    row: &[Value],
    columns: &[Column],
    formats: &[i16],
    zone: &TimeZone,
    scratch: &mut Vec<u8>,
) -> SqlResult<()> {
    let start = out.len();
    let result = put_data_row_fields(out, row, columns, formats, zone, scratch, start);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

fn put_data_row_fields(
    out: &mut BytesMut,
    row: &[Value],
    columns: &[Column],
    formats: &[i16],
    zone: &TimeZone,
    scratch: &mut Vec<u8>,
    start: usize,
) -> SqlResult<()> {
    let too_large = || {
        SqlError::new(
            SqlState::PROGRAM_LIMIT_EXCEEDED,
            "result row is too large to send",
        )
    };
    out.put_u8(b'D');
    out.put_i32(0); // patched below
    out.put_i16(i16::try_from(row.len()).map_err(|_| too_large())?);
    for (i, value) in row.iter().enumerate() {
        if value.is_null() {
            out.put_i32(-1);
            continue;
        }
        let field: &[u8] = if format_code(formats, i) == 1 {
            scratch.clear();
            // Typed, so char(n) goes out blank-padded as PostgreSQL sends it.
            match columns.get(i) {
                Some(column) => binary::encode_binary_typed(value, &column.data_type, scratch),
                None => binary::encode_binary(value, scratch),
            }
            scratch
        } else {
            let natural;
            let data_type = match columns.get(i) {
                Some(column) => wire_type(&column.data_type),
                None => {
                    natural = value.data_type();
                    wire_type(&natural)
                }
            };
            let text = text::format_text_typed(value, data_type, zone);
            out.put_i32(i32::try_from(text.len()).map_err(|_| too_large())?);
            out.put_slice(text.as_bytes());
            continue;
        };
        out.put_i32(i32::try_from(field.len()).map_err(|_| too_large())?);
        out.put_slice(field);
    }
    let length = i32::try_from(out.len() - start - 1).map_err(|_| too_large())?;
    out[start + 1..start + 5].copy_from_slice(&length.to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_codes_follow_the_protocol_rules() {
        assert_eq!(format_code(&[], 3), 0);
        assert_eq!(format_code(&[1], 3), 1);
        assert_eq!(format_code(&[0, 1], 1), 1);
        assert!(check_formats(&[0, 1]).is_ok());
        assert_eq!(
            check_formats(&[2]).unwrap_err().state,
            SqlState::INVALID_PARAMETER_VALUE
        );
    }

    #[test]
    fn empty_queries_are_whitespace_and_semicolons() {
        assert!(is_empty_query(""));
        assert!(is_empty_query(" ;\n;"));
        assert!(!is_empty_query("SELECT 1"));
    }

    #[test]
    fn select_tags_count_the_last_batch() {
        assert_eq!(with_row_count("SELECT 10", 3), "SELECT 3");
        assert_eq!(with_row_count("INSERT 0 3", 1), "INSERT 0 3");
    }

    #[test]
    fn data_rows_encode_nulls_and_patch_the_length() {
        let mut out = BytesMut::new();
        let columns = vec![Column {
            name: "a".into(),
            data_type: DataType::Int4,
        }];
        let utc = TimeZone::utc();
        put_data_row(
            &mut out,
            &[Value::Null],
            &columns,
            &[],
            &utc,
            &mut Vec::new(),
        )
        .unwrap();
        assert_eq!(&out[..], &[b'D', 0, 0, 0, 10, 0, 1, 0xff, 0xff, 0xff, 0xff]);
    }

    #[test]
    fn parameter_count_mismatch_is_a_protocol_violation() {
        let statement = Statement {
            name: "s".into(),
            prepared: None,
            param_types: vec![DataType::Int4],
        };
        let error = decode_params(&statement, &[], vec![], &TimeZone::utc()).unwrap_err();
        assert_eq!(error.state, SqlState::PROTOCOL_VIOLATION);
        let error = decode_params(&statement, &[0, 0], vec![None], &TimeZone::utc()).unwrap_err();
        assert_eq!(error.state, SqlState::PROTOCOL_VIOLATION);
        assert_eq!(
            decode_params(&statement, &[1], vec![None], &TimeZone::utc()).unwrap(),
            vec![Value::Null]
        );
    }

    #[test]
    fn unknown_parameters_arrive_as_text() {
        let statement = Statement {
            name: String::new(),
            prepared: None,
            param_types: vec![DataType::Unknown],
        };
        let values = decode_params(
            &statement,
            &[],
            vec![Some(Bytes::from_static(b"hi"))],
            &TimeZone::utc(),
        )
        .unwrap();
        assert_eq!(values, vec![Value::Text("hi".into())]);
        let error = decode_params(
            &statement,
            &[],
            vec![Some(Bytes::from_static(b"\xff"))],
            &TimeZone::utc(),
        )
        .unwrap_err();
        assert_eq!(error.state, SqlState::CHARACTER_NOT_IN_REPERTOIRE);
    }
}
