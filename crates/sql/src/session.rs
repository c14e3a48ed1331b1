//! Sessions: one per client connection, holding its transaction state and settings.
//!
//! ```text
//!            BEGIN                         error
//!   Idle ───────────► InBlock ────────────────────► Failed
//!    ▲  ◄─────────────  │  COMMIT / ROLLBACK          │ ROLLBACK (or COMMIT,
//!    │                  │                             │  which rolls back)
//!    └──────────────────┴─────────────────────────────┘
//! ```
//!
//! Outside a block every statement is its own transaction (autocommit). Inside one, the core
//! transaction begins at the first statement (where PostgreSQL takes its snapshot), all
//! statements read at its `read_ts`, and COMMIT sends the buffered writes to the adjudicator.
//! An error inside a block discards its writes and leaves the block failed: further statements
//! get 25P02 until ROLLBACK. A conflict at COMMIT is 40001, naming the table, and ends the block.
//! Several statements in one simple-query message run as one implicit transaction, as in
//! PostgreSQL.
//!
//! Isolation: REPEATABLE READ (the default) is strong snapshot isolation; SERIALIZABLE adds
//! validation of everything read (keys, and the key ranges scans covered) at commit, so write
//! skew and phantoms become 40001; READ COMMITTED (and READ UNCOMMITTED, as in PostgreSQL)
//! reads each statement from a fresh snapshot, while writes are still checked at commit against
//! everything committed since the transaction's first statement, so a concurrent update of the
//! same row is never silently lost. Unlike PostgreSQL's READ COMMITTED, which makes the second
//! writer wait and then re-evaluates its row, Cairn never waits: the second committer gets
//! 40001 and retries.
//!
//! Statements are parsed and planned once per prepared statement; before each execution the
//! plan's tables are looked up again at the transaction's snapshot (which also makes them part
//! of what the commit validates), and a changed table means planning again.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use cairn_qp::{Database, Transaction};
use cairn_types::{Conflict, ConflictKind, Error as CoreError};
use sqlparser::ast;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

use crate::catalog::{self, CATALOG_PREFIX};
use crate::copy::CopyFormat;
use crate::error::{SqlError, SqlResult, SqlState};
use crate::exec::{self, ExecContext};
use crate::memory::{self, MemoryBudget};
use crate::parse_cache::{ParseCache, Shape};
use crate::plan::{IndexBuild, InsertSource, Plan, TxnModes};
use crate::planner::{self, Statement};
use crate::sequence::{self, SequenceCache, SequenceUse, SessionSequences, StatementSequences};
use crate::types::timezone::TimeZone;
use crate::types::{DataType, Value};

mod shape_plans;
use shape_plans::ShapePlan;

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01).
const POSTGRES_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// What every session shares: the transactional core.
pub struct Engine {
    pub(crate) db: Database,
    /// Recent conflicts, for the `cairn_conflicts` view.
    pub(crate) conflicts: ConflictLog,
    /// Fault injection for tests: abort the process right after committing a transaction with
    /// this idempotency key, before replying (environment CAIRN_FAULT_CRASH_AFTER_COMMIT_KEY).
    crash_after_commit_with_key: Option<String>,
    /// Sessions opened so far: seeds each session's retry jitter, so runs can be replayed.
    sessions: std::sync::atomic::AtomicU64,
    /// Sequence values this process has reserved, shared by its sessions.
    pub(crate) sequences: SequenceCache,
    /// Advisory locks, shared by its sessions.
    pub(crate) advisory: crate::advisory::AdvisoryLocks,
    /// Each session's cancel token by backend pid (pg_cancel_backend).
    pub(crate) backends: Mutex<std::collections::HashMap<i32, CancelToken>>,
    /// LISTEN: per channel, the sessions listening and where their notifications go.
    listeners: Mutex<
        std::collections::HashMap<String, std::collections::HashMap<u64, NotificationSender>>,
    >,
    /// The runtime the engine was made on, if any: see [`Engine::spawn_background`].
    background: Option<tokio::runtime::Handle>,
}

/// A NOTIFY as a listening session receives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    /// The notifying session's backend pid.
    pub pid: i32,
    /// The channel.
    pub channel: String,
    /// The payload ('' if none).
    pub payload: String,
}

type NotificationSender = tokio::sync::mpsc::UnboundedSender<Notification>;

impl Engine {
    fn listeners(
        &self,
    ) -> std::sync::MutexGuard<
        '_,
        std::collections::HashMap<String, std::collections::HashMap<u64, NotificationSender>>,
    > {
        self.listeners.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Engine {
    /// Restarts the background jobs (index builds) a stopped server left running.
    pub async fn resume_jobs(self: &Arc<Self>) -> SqlResult<()> {
        crate::jobs::resume(self).await
    }

    /// An engine over the transactional core.
    pub fn new(db: Database) -> Arc<Engine> {
        Arc::new(Engine {
            // Catalog commits are watched so that a plan's tables need not be read again
            // while nothing in the catalog changed (see `run_in_transaction`).
            db: db.watching(&[catalog::CATALOG_PREFIX]),
            crash_after_commit_with_key: std::env::var("CAIRN_FAULT_CRASH_AFTER_COMMIT_KEY").ok(),
            conflicts: ConflictLog::default(),
            sessions: std::sync::atomic::AtomicU64::new(1),
            sequences: SequenceCache::default(),
            advisory: crate::advisory::AdvisoryLocks::default(),
            backends: Mutex::default(),
            listeners: Mutex::default(),
            background: tokio::runtime::Handle::try_current().ok(),
        })
    }

    /// Runs `task` on the runtime the engine was made on (the server's multi-threaded one),
    /// not on the caller's: a connection thread runs its connections one poll at a time, and
    /// what must happen while one of its statements computes (a statement timeout firing, a
    /// background job) cannot wait for that statement to await.
    pub(crate) fn spawn_background<F>(&self, task: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match &self.background {
            Some(runtime) => runtime.spawn(task),
            None => tokio::spawn(task),
        }
    }
}

/// One conflict, as the `cairn_conflicts` view shows it.
#[derive(Clone, Debug)]
pub(crate) struct ConflictEntry {
    /// When it was reported, µs since 2000-01-01 UTC.
    pub at_micros: i64,
    /// The table, if known.
    pub table: Option<String>,
    /// The key, described.
    pub key: String,
    /// Data or schema.
    pub kind: ConflictKind,
}

/// The most recent conflicts reported to clients (a bounded ring), so hot keys can be found.
#[derive(Default)]
pub(crate) struct ConflictLog(Mutex<std::collections::VecDeque<ConflictEntry>>);

/// How many conflicts the log keeps.
const CONFLICT_LOG_CAPACITY: usize = 1_000;

impl ConflictLog {
    fn record(&self, entry: ConflictEntry) {
        let mut log = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if log.len() == CONFLICT_LOG_CAPACITY {
            log.pop_front();
        }
        log.push_back(entry);
    }

    /// The view's rows: time, table, key, kind; oldest first.
    pub(crate) fn rows(&self) -> Vec<Vec<Value>> {
        let log = self.0.lock().unwrap_or_else(|p| p.into_inner());
        log.iter()
            .map(|e| {
                vec![
                    Value::TimestampTz(e.at_micros),
                    e.table.clone().map_or(Value::Null, Value::Text),
                    Value::Text(e.key.clone()),
                    Value::Text(match e.kind {
                        ConflictKind::Data => "data".into(),
                        ConflictKind::Schema => "schema".into(),
                    }),
                ]
            })
            .collect()
    }
}

fn micros_since_2000(ts: cairn_types::Timestamp) -> i64 {
    i64::try_from(ts.0 / 1_000).unwrap_or(i64::MAX) - POSTGRES_EPOCH_MICROS
}

/// Transaction state, as ReadyForQuery reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxStatus {
    /// 'I': not in a transaction block.
    Idle,
    /// 'T': in a transaction block.
    InBlock,
    /// 'E': in a failed transaction block (statements refused until ROLLBACK).
    Failed,
}

/// A result column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    /// Its name.
    pub name: String,
    /// Its type.
    pub data_type: DataType,
}

/// A NoticeResponse to send before the statement's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    /// Severity: "NOTICE" or "WARNING".
    pub severity: &'static str,
    /// SQLSTATE.
    pub code: &'static str,
    /// Message.
    pub message: String,
}

/// A parsed and planned statement, ready to execute many times with different parameters.
pub struct Prepared {
    /// The parameters' types, inferred where the client left them unspecified.
    pub param_types: Vec<DataType>,
    /// The result columns (empty for statements that return no rows).
    pub columns: Vec<Column>,
    sql: Arc<str>,
    statement: Option<Statement>,
    declared: Vec<Option<DataType>>,
    plan: Mutex<Arc<Plan>>,
    /// The sequences the plan calls, resolved when it runs.
    sequences: Mutex<Arc<Vec<SequenceUse>>>,
    /// The plan reads the system catalog: it is loaded before each run.
    system_catalog: bool,
    /// The latest snapshot at which the plan's tables were read and found as planned.
    validated_at: AtomicU64,
    /// A simple-protocol shape's plan (`shape_plans`): made again from a text, never
    /// re-planned with its parameters, once the catalog changed.
    shaped: bool,
}

impl Prepared {
    /// The SQL text it was prepared from (for the simple protocol, the whole query string).
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// Whether the statement is empty (EmptyQueryResponse).
    pub fn is_empty(&self) -> bool {
        self.statement.is_none()
    }

    fn plan(&self) -> Arc<Plan> {
        self.plan.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// What executing a statement produced.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// The CommandComplete tag, e.g. `INSERT 0 3`, `SELECT 2`, `BEGIN`; empty for an empty
    /// query (EmptyQueryResponse).
    pub tag: String,
    /// Result columns, if the statement returns rows (SELECT, RETURNING, SHOW, EXPLAIN).
    pub columns: Option<Vec<Column>>,
    /// Result rows.
    pub rows: Vec<Vec<Value>>,
    /// Notices raised while executing.
    pub notices: Vec<Notice>,
    /// Session parameters whose reported value changed (for ParameterStatus).
    pub parameter_changes: Vec<(String, String)>,
    /// The session's time zone when the statement finished, which its rows print in (a
    /// later `SET TimeZone` in the same simple query does not change them).
    pub time_zone: TimeZone,
    /// A COPY: the data to ask for (FROM STDIN: send it to [`Session::copy_from`]), or the
    /// format `rows` go out in (TO STDOUT).
    pub copy: Option<CopyTransfer>,
    /// Prepared statements the connection is to forget (DEALLOCATE, DISCARD ALL): one by
    /// name, or all (`Some(None)`).
    pub deallocate: Option<Option<String>>,
}

/// The COPY protocol exchange a statement starts.
#[derive(Clone, Debug)]
pub struct CopyTransfer {
    /// FROM STDIN (the client sends data) or TO STDOUT (the server does).
    pub incoming: bool,
    /// The data's format.
    pub format: CopyFormat,
    /// The copied columns.
    pub columns: Vec<Column>,
}

/// Cancels the statement a session is running (CancelRequest).
#[derive(Clone, Debug, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// Asks the running statement to stop with 57014.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Release);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Block {
    /// Autocommit.
    None,
    /// BEGIN ... (the core transaction starts at the first statement).
    Open,
    /// Several statements of one simple query.
    Implicit,
    /// An error happened in the block.
    Failed,
}

/// One client's session.
pub struct Session {
    engine: Arc<Engine>,
    jitter: Jitter,
    /// random()'s source, seeded like `jitter` (so a replayed run draws the same numbers).
    random: std::sync::Mutex<Jitter>,
    /// [`Session::search_path`]'s last answer: every statement asks, the setting rarely
    /// changes.
    parsed_search_path: SettingMemo<Arc<[String]>>,
    /// [`Session::time_zone`]'s last answer: a zone named by other than UTC is otherwise
    /// found in a process-wide map under a lock, for every statement.
    looked_up_time_zone: SettingMemo<TimeZone>,
    cancel: CancelToken,
    txn: Option<Transaction>,
    block: Block,
    block_modes: TxnModes,
    settings: BTreeMap<String, String>,
    /// Values SET LOCAL replaced (`None`: the parameter was unset), restored at block end.
    local_saved: BTreeMap<String, Option<String>>,
    /// Values that settings changed in the open transaction block had when it began,
    /// restored if it rolls back (as PostgreSQL undoes SET with the transaction).
    block_start: BTreeMap<String, Option<String>>,
    /// currval / lastval.
    sequence_state: Mutex<SessionSequences>,
    /// The index build job the running statement recorded, started once it commits.
    pending_job: Option<(u64, IndexBuild)>,
    /// The open block's savepoints, oldest first.
    savepoints: Vec<Savepoint>,
    /// The settings as the session started (defaults and startup parameters): what
    /// DISCARD ALL restores.
    startup_settings: BTreeMap<String, String>,
    /// Unique among the process's sessions: whose advisory locks are whose.
    session_id: u64,
    /// Set by the first advisory lock call: until then the session has nothing in the
    /// process's lock table, and its statements skip the table's (shared) lock entirely.
    advisory_used: AtomicBool,
    /// Simple-protocol texts' syntax trees by shape (literals blanked out), with the
    /// shape's plan once learnt.
    parse_cache: ParseCache<ShapePlan>,
    /// Simple-protocol statements that ran their shape's plan (see [`Session::shape_plan_runs`]).
    shape_plan_runs: u64,
    /// Where NOTIFYs on the channels this session listens to arrive (the connection takes
    /// the receiving end).
    notify_sender: NotificationSender,
    notify_receiver: Option<tokio::sync::mpsc::UnboundedReceiver<Notification>>,
    /// LISTEN / UNLISTEN (`None`: all) of the open block, applied when it commits.
    pending_listens: Vec<(Option<String>, bool)>,
    /// NOTIFYs of the open block, sent when it commits (each channel and payload once).
    pending_notifies: Vec<(String, String)>,
    /// pg_notify calls of the running statement attempt.
    notify_queue: Mutex<Vec<(String, String)>>,
    /// set_config's settings from the running statement (name, value, local).
    set_config_queue: Mutex<Vec<crate::expr::ConfigChange>>,
    /// Open cursors (DECLARE), by name.
    cursors: std::collections::HashMap<String, Cursor>,
    /// Statements prepared with SQL's PREPARE, by name.
    sql_prepared: std::collections::HashMap<String, Arc<Prepared>>,
    /// The names of the connection's prepared statements (DEALLOCATE checks them).
    prepared_names: std::collections::HashSet<String>,
    /// What pg_sleep has slept of the running statement (see [`crate::expr::SleepCredit`]).
    sleep: crate::expr::SleepCredit,
    /// The user the session connected as.
    user: String,
    /// The database it connected to.
    database: String,
    /// Its backend process id, as the connection announced it.
    backend_pid: i32,
    /// A COPY FROM STDIN waiting for its data: the statement and its parameters.
    pending_copy: Option<(Arc<Prepared>, Vec<Value>)>,
    /// The data of the COPY FROM STDIN that is running.
    copy_data: Option<bytes::Bytes>,
}

/// A SAVEPOINT: the block's writes and settings when it was set.
/// A cursor: its query's rows, taken when it was declared, and where FETCH is.
///
/// Shortcut: the rows are computed whole at DECLARE (within the statement's memory limit),
/// not as FETCH asks for them.
struct Cursor {
    columns: Vec<Column>,
    rows: Vec<Vec<Value>>,
    /// 0 before the first row, 1..=n on a row, n + 1 after the last.
    position: usize,
    /// WITH HOLD: it stays open after its transaction commits.
    hold: bool,
    /// Declared in the open transaction block: a rollback closes it even WITH HOLD.
    uncommitted: bool,
    /// NO SCROLL: moving backward is refused.
    no_scroll: bool,
}

impl Session {
    /// The columns of the open cursor `name` (Describe of it as a portal), if there is one.
    pub fn cursor_columns(&self, name: &str) -> Option<Vec<Column>> {
        self.cursors.get(name).map(|cursor| cursor.columns.clone())
    }
}

impl Cursor {
    /// Moves as `direction` says; returns the rows passed over on the way (in the order met).
    fn fetch(&mut self, direction: crate::plan::CursorMove) -> SqlResult<Vec<Vec<Value>>> {
        use crate::plan::CursorMove as M;
        let n = self.rows.len();
        let backward = match direction {
            M::Backward(count) => count != Some(0),
            M::Relative(k) => k < 0,
            M::Absolute(k) => {
                let target = if k >= 0 {
                    usize::try_from(k).unwrap_or(usize::MAX)
                } else {
                    (n + 1).saturating_sub(usize::try_from(k.unsigned_abs()).unwrap_or(usize::MAX))
                };
                target < self.position
            }
            M::Forward(_) => false,
        };
        if backward && self.no_scroll {
            return Err(
                SqlError::new(SqlState("55000"), "cursor can only scan forward")
                    .with_hint("Declare it with SCROLL option to enable backward scan."),
            );
        }
        Ok(self.move_by(direction))
    }

    fn move_by(&mut self, direction: crate::plan::CursorMove) -> Vec<Vec<Value>> {
        use crate::plan::CursorMove as M;
        let n = self.rows.len();
        let row = |p: usize, rows: &[Vec<Value>]| (1..=n).contains(&p).then(|| rows[p - 1].clone());
        match direction {
            M::Forward(count) => {
                let count = count.map_or(usize::MAX, |c| usize::try_from(c).unwrap_or(usize::MAX));
                let end = self.position.saturating_add(count).min(n + 1);
                let out = (self.position + 1..=end.min(n))
                    .filter_map(|p| row(p, &self.rows))
                    .collect();
                self.position = end;
                out
            }
            M::Backward(count) => {
                let count = count.map_or(usize::MAX, |c| usize::try_from(c).unwrap_or(usize::MAX));
                let end = self.position.saturating_sub(count);
                let out = (end.max(1)..self.position)
                    .rev()
                    .filter_map(|p| row(p, &self.rows))
                    .collect();
                self.position = end;
                out
            }
            M::Absolute(k) => {
                let target = if k >= 0 {
                    usize::try_from(k).unwrap_or(usize::MAX).min(n + 1)
                } else {
                    (n + 1).saturating_sub(usize::try_from(k.unsigned_abs()).unwrap_or(usize::MAX))
                };
                self.position = target;
                row(target, &self.rows).into_iter().collect()
            }
            M::Relative(k) => {
                let target = if k >= 0 {
                    self.position
                        .saturating_add(usize::try_from(k).unwrap_or(usize::MAX))
                        .min(n + 1)
                } else {
                    self.position
                        .saturating_sub(usize::try_from(k.unsigned_abs()).unwrap_or(usize::MAX))
                };
                self.position = target;
                row(target, &self.rows).into_iter().collect()
            }
        }
    }
}

struct Savepoint {
    name: String,
    writes: cairn_qp::WriteMark,
    /// Where the transaction's advisory locks stood.
    advisory: usize,
    /// The cursors open then, and how many LISTENs and NOTIFYs were pending.
    cursors: Vec<String>,
    listens: usize,
    notifies: usize,
    settings: BTreeMap<String, String>,
    local_saved: BTreeMap<String, Option<String>>,
    block_start: BTreeMap<String, Option<String>>,
}

/// The parameter a transaction block sets (with SET LOCAL) to make its COMMIT idempotent.
pub const IDEMPOTENCY_KEY: &str = "cairn.idempotency_key";
/// How long a committed idempotency key is remembered: a retried COMMIT later than this
/// applies again.
const IDEMPOTENCY_RETENTION_MICROS: i64 = 24 * 3600 * 1_000_000;

/// Attempts of an autocommit statement whose commit conflicts, before 40001 reaches the client.
const MAX_AUTOCOMMIT_ATTEMPTS: u32 = 32;
/// Backoff between attempts: up to this many microseconds times 2^attempt ...
const RETRY_BASE_DELAY_MICROS: u64 = 50;
/// ... and never more than this.
const RETRY_MAX_DELAY_MICROS: u64 = 5_000;

/// A small seeded random source (xorshift64*) for retry jitter.
struct Jitter(u64);

impl Jitter {
    fn new(seed: u64) -> Self {
        Jitter(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..bound` (0 if `bound` is 0).
    fn below(&mut self, bound: u64) -> u64 {
        let r = self.next();
        if bound == 0 {
            0
        } else {
            r % bound
        }
    }

    /// A number in `[0, 1)` with 53 random bits (random()).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Parameters reported with ParameterStatus, under their canonical names.
const REPORTED: &[&str] = &[
    "application_name",
    "client_encoding",
    "DateStyle",
    "default_transaction_read_only",
    "in_hot_standby",
    "integer_datetimes",
    "IntervalStyle",
    "is_superuser",
    "server_encoding",
    "server_version",
    "session_authorization",
    "standard_conforming_strings",
    "TimeZone",
];

/// Parameters a client may read but not set.
const READ_ONLY: &[&str] = &[
    "server_version",
    "server_version_num",
    "server_encoding",
    "integer_datetimes",
    "in_hot_standby",
    "is_superuser",
    "max_identifier_length",
    "transaction_isolation",
    "transaction_read_only",
];

fn canonical(name: &str) -> String {
    match name {
        "datestyle" => "DateStyle".into(),
        "timezone" => "TimeZone".into(),
        "intervalstyle" => "IntervalStyle".into(),
        other => other.to_string(),
    }
}

fn default_settings(user: &str) -> BTreeMap<String, String> {
    [
        ("application_name", ""),
        ("bytea_output", "hex"),
        (memory::SETTING, "256MB"),
        ("client_encoding", "UTF8"),
        ("client_min_messages", "notice"),
        ("DateStyle", "ISO, MDY"),
        ("default_table_access_method", "heap"),
        ("default_transaction_deferrable", "off"),
        ("jit", "off"),
        ("default_transaction_isolation", "repeatable read"),
        ("default_transaction_read_only", "off"),
        ("extra_float_digits", "1"),
        ("idle_in_transaction_session_timeout", "0"),
        ("in_hot_standby", "off"),
        ("integer_datetimes", "on"),
        ("IntervalStyle", "postgres"),
        ("is_superuser", "on"),
        ("lock_timeout", "0"),
        ("max_identifier_length", "63"),
        ("search_path", "\"$user\", public"),
        ("server_encoding", "UTF8"),
        ("server_version", crate::SERVER_VERSION),
        ("server_version_num", crate::SERVER_VERSION_NUM),
        ("session_authorization", user),
        ("standard_conforming_strings", "on"),
        ("statement_timeout", "0"),
        ("TimeZone", "UTC"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// 2BP01: dropping `kind` `name` would break view `view`, which reads it.
/// The NOTICE for an object DROP ... CASCADE drops with the one named.
fn cascade_notice(object: &str) -> Notice {
    Notice {
        severity: "NOTICE",
        code: "00000",
        message: format!("drop cascades to {object}"),
    }
}

fn depended_on(kind: &str, name: &str, view: &str) -> SqlError {
    SqlError::new(
        SqlState("2BP01"),
        format!("cannot drop {kind} {name} because other objects depend on it"),
    )
    .with_detail(format!("view {view} depends on {kind} {name}"))
    .with_hint("Use DROP ... CASCADE to drop the dependent objects too.")
}

/// `SET CONSTRAINTS { ALL | name [, ...] } { DEFERRED | IMMEDIATE }`, which sqlparser does
/// not read; `None` if `sql` is not one.
fn parse_set_constraints(sql: &str) -> Option<SqlResult<()>> {
    let words: Vec<String> = bare_words(sql)
        .iter()
        .map(|&(a, b)| sql[a..b].to_lowercase())
        .collect();
    if words.first()? != "set" || words.get(1)? != "constraints" {
        return None;
    }
    let text = sql.trim().trim_end_matches(';').trim_end();
    let lower = text.to_lowercase();
    let valid = (lower.ends_with("deferred") || lower.ends_with("immediate"))
        && words.len() >= 4
        && !text.contains(';');
    Some(match valid {
        true => Ok(()),
        false => Err(SqlError::syntax(format!(
            "syntax error at or near \"{}\"",
            words.get(2).map_or("", String::as_str)
        ))),
    })
}

fn is_copy_from(statement: &Statement) -> bool {
    matches!(
        statement,
        Statement::Sql(ast::Statement::Copy { to: false, .. })
    )
}

/// Parses SQL text into statements with PostgreSQL's dialect; errors are 42601.
pub(crate) fn parse(sql: &str) -> SqlResult<Vec<Statement>> {
    parse_with(sql, None)
}

/// [`parse`], answering from `cache` what sqlparser would parse when it can.
fn parse_with(
    sql: &str,
    cache: Option<(&mut ParseCache<ShapePlan>, &mut Shape)>,
) -> SqlResult<Vec<Statement>> {
    // The statements Cairn reads itself are tried only when their keyword is in the text:
    // each try tokenizes the whole statement, which every other statement would pay for.
    // sqlparser has no ALTER SEQUENCE: Cairn reads it itself (a whole query string of one).
    if mentions(sql, "sequence") {
        if let Some(alter) = planner::parse_alter_sequence(sql) {
            return Ok(vec![Statement::AlterSequence(alter?)]);
        }
    }
    if mentions(sql, "constraints") {
        if let Some(set) = parse_set_constraints(sql) {
            return set.map(|()| vec![Statement::SetConstraints]);
        }
    }
    if mentions(sql, "fetch") || mentions(sql, "move") {
        if let Some(fetch) = planner::parse_fetch(sql) {
            return fetch.map(|statement| vec![statement]);
        }
    }
    parse_sql(sql, cache).map(|statements| statements.into_iter().map(Statement::Sql).collect())
}

/// Whether `word` occurs in `sql`, in any case (anywhere: a cheap test before a real parse).
fn mentions(sql: &str, word: &str) -> bool {
    sql.as_bytes()
        .windows(word.len())
        .any(|window| window.eq_ignore_ascii_case(word.as_bytes()))
}

/// [`parse`] by sqlparser.
fn parse_sql(
    sql: &str,
    cache: Option<(&mut ParseCache<ShapePlan>, &mut Shape)>,
) -> SqlResult<Vec<ast::Statement>> {
    let parsed = match cache {
        Some((cache, shape)) => cache.parse_shaped(sql, shape),
        None => Parser::parse_sql(&PostgreSqlDialect {}, sql),
    };
    // sqlparser lacks some PostgreSQL spellings whose meaning Cairn has anyway; only a
    // statement that failed to parse is rewritten, so string literals in statements that
    // parse are never touched.
    let parsed = match parsed {
        Err(_) => match rewrite_unparsed(sql) {
            Some(rewritten) => Parser::parse_sql(&PostgreSqlDialect {}, &rewritten).or(parsed),
            None => parsed,
        },
        ok => ok,
    };
    parsed.map_err(|e| syntax_error(e, sql))
}

/// A sqlparser error as PostgreSQL reports a syntax error (42601 at the offending token).
pub(crate) fn syntax_error(e: sqlparser::parser::ParserError, sql: &str) -> SqlError {
    {
        let message = e.to_string();
        let message = message
            .strip_prefix("sql parser error: ")
            .unwrap_or(&message)
            .to_string();
        // sqlparser says "Expected: X, found: Y at Line: L, Column: C".
        let (found, location) = match message.rsplit_once("found: ") {
            Some((_, rest)) => match rest.split_once(" at Line: ") {
                Some((token, place)) => {
                    let mut numbers = place
                        .split(", Column: ")
                        .map(|n| n.trim().parse::<u64>().unwrap_or(0));
                    (
                        Some(token.trim().to_string()),
                        Some((numbers.next().unwrap_or(0), numbers.next().unwrap_or(0))),
                    )
                }
                None => (Some(rest.trim().to_string()), None),
            },
            None => (None, None),
        };
        match found {
            Some(token) if token == "EOF" => {
                let mut error = SqlError::syntax("syntax error at end of input");
                error.position = Some(sql.chars().count() as u32 + 1);
                error
            }
            Some(token) => {
                let error = SqlError::syntax(format!("syntax error at or near \"{token}\""));
                match location {
                    Some((line, column)) => error.at(line, column).locate_in(sql),
                    None => error,
                }
            }
            None => SqlError::syntax(format!("syntax error: {message}")),
        }
    }
}

/// Rewrites what sqlparser cannot parse into what it can, with the same meaning in Cairn:
/// - `FOR NO KEY UPDATE` → `FOR UPDATE`, `FOR KEY SHARE` → `FOR SHARE` (under optimistic
///   concurrency every row lock puts the row into the conflict set);
/// - `[NOT] DEFERRABLE` in BEGIN / START TRANSACTION / SET TRANSACTION is dropped: it only
///   makes PostgreSQL wait for a snapshot where a SERIALIZABLE READ ONLY transaction cannot
///   fail, and in Cairn read-only transactions never fail;
/// - COPY's boolean options spelled `on` / `off` (pgbench's `freeze on`) → `true` / `false`,
///   and `FORCE_QUOTE *` → `FORCE_QUOTE ("*")`;
/// - PostgreSQL's VACUUM and ANALYZE options and table lists → `VACUUM` / `ANALYZE` (both
///   do nothing in Cairn: storage collects old versions itself and there are no statistics).
///
/// `None` if there is nothing to rewrite.
fn rewrite_unparsed(sql: &str) -> Option<String> {
    if let Some(reordered) = reorder_sequence_options(sql) {
        return Some(reordered);
    }
    let words = bare_words(sql);
    if let Some(&(start, end)) = words.first() {
        let first = sql[start..end].to_lowercase();
        if (first == "vacuum" || first == "analyze" || first == "analyse") && !sql.contains(';') {
            return Some(
                if first == "vacuum" {
                    "VACUUM"
                } else {
                    "ANALYZE"
                }
                .into(),
            );
        }
    }
    let lower: Vec<String> = words
        .iter()
        .map(|&(a, b)| sql[a..b].to_lowercase())
        .collect();
    let word = |i: usize| lower.get(i).map(String::as_str);
    let is_transaction_statement = matches!(word(0), Some("begin" | "start" | "set"));
    // Byte ranges of the original text to replace, and with what.
    let mut cuts: Vec<(usize, usize, &str)> = Vec::new();
    let mut i = 0;
    while i < words.len() {
        if word(i) == Some("for")
            && word(i + 1) == Some("no")
            && word(i + 2) == Some("key")
            && word(i + 3) == Some("update")
        {
            cuts.push((words[i + 1].0, words[i + 3].0, ""));
            i += 4;
        } else if word(i) == Some("for")
            && word(i + 1) == Some("key")
            && word(i + 2) == Some("share")
        {
            cuts.push((words[i + 1].0, words[i + 2].0, ""));
            i += 3;
        } else if is_transaction_statement
            && word(i) == Some("not")
            && word(i + 1) == Some("deferrable")
        {
            cuts.push((words[i].0, words[i + 1].1, ""));
            i += 2;
        } else if is_transaction_statement && word(i) == Some("deferrable") {
            cuts.push((words[i].0, words[i].1, ""));
            i += 1;
        } else if word(0) == Some("copy") && word(i) == Some("force_quote") {
            // `FORCE_QUOTE *`: sqlparser wants a column list; `("*")` stands for all.
            let after = words[i].1;
            let gap = sql[after..].len() - sql[after..].trim_start().len();
            if sql[after + gap..].starts_with('*') {
                cuts.push((after + gap, after + gap + 1, "(\"*\")"));
            }
            i += 1;
        } else if word(0) == Some("copy")
            && matches!(word(i), Some("freeze" | "header"))
            && matches!(word(i + 1), Some("on" | "off"))
        {
            let spelled = if word(i + 1) == Some("on") {
                "true"
            } else {
                "false"
            };
            cuts.push((words[i + 1].0, words[i + 1].1, spelled));
            i += 2;
        } else {
            i += 1;
        }
    }
    if cuts.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(sql.len());
    let mut at = 0;
    for (start, end, replacement) in cuts {
        out.push_str(&sql[at..start]);
        out.push_str(replacement);
        at = end;
    }
    out.push_str(&sql[at..]);
    // A comma left before a dropped trailing mode, or doubled, would not parse.
    Some(
        out.replace(", ,", ",")
            .replace(",;", ";")
            .trim_end()
            .trim_end_matches(',')
            .to_string(),
    )
}

/// Sequence options (CREATE SEQUENCE, `AS IDENTITY (...)`) in the order sqlparser reads
/// them (INCREMENT, MINVALUE, MAXVALUE, START, CACHE, CYCLE); PostgreSQL takes any order, and
/// pg_dump writes START first. `None` if every run of options is in that order already.
fn reorder_sequence_options(sql: &str) -> Option<String> {
    let words = bare_words(sql);
    let lower: Vec<String> = words
        .iter()
        .map(|&(a, b)| sql[a..b].to_lowercase())
        .collect();
    let word = |i: usize| lower.get(i).map(String::as_str);
    let is_number = |i: usize| word(i).is_some_and(|w| w.bytes().all(|b| b.is_ascii_digit()));
    // The option starting at word `i`: its rank and how many words it spans.
    let option = |i: usize| -> Option<(u8, usize)> {
        let with_value = |rank: u8, filler: &str| {
            let skip = usize::from(word(i + 1) == Some(filler));
            is_number(i + 1 + skip).then_some((rank, 2 + skip))
        };
        match word(i)? {
            "increment" => with_value(0, "by"),
            "minvalue" => with_value(1, ""),
            "maxvalue" => with_value(2, ""),
            "start" => with_value(3, "with"),
            "cache" => with_value(4, ""),
            "cycle" => Some((5, 1)),
            "no" => match word(i + 1)? {
                "minvalue" => Some((1, 2)),
                "maxvalue" => Some((2, 2)),
                "cycle" => Some((5, 2)),
                _ => None,
            },
            _ => None,
        }
    };
    let mut out = String::with_capacity(sql.len());
    let mut copied = 0;
    let mut changed = false;
    let mut i = 0;
    while i < words.len() {
        // A run of options separated by blanks (and a value's minus sign) only.
        let mut run: Vec<(u8, usize, usize)> = Vec::new();
        let mut j = i;
        while let Some((rank, span)) = option(j) {
            let (start, end) = (words[j].0, words[j + span - 1].1);
            if let Some(&(_, _, previous_end)) = run.last() {
                if !sql[previous_end..start].trim().is_empty() {
                    break;
                }
            }
            run.push((rank, start, end));
            j += span;
        }
        if run.len() > 1 && run.windows(2).any(|w| w[0].0 > w[1].0) {
            let mut sorted = run.clone();
            sorted.sort_by_key(|&(rank, _, _)| rank);
            out.push_str(&sql[copied..run[0].1]);
            let clauses: Vec<&str> = sorted.iter().map(|&(_, a, b)| &sql[a..b]).collect();
            out.push_str(&clauses.join(" "));
            copied = run[run.len() - 1].2;
            changed = true;
        }
        i = if run.is_empty() { i + 1 } else { j };
    }
    out.push_str(&sql[copied..]);
    changed.then_some(out)
}

/// Byte ranges of the words of `sql` outside quotes and comments (letters, digits, `_`).
fn bare_words(sql: &str) -> Vec<(usize, usize)> {
    let bytes = sql.as_bytes();
    let mut words = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            quote @ (b'\'' | b'"') => {
                i += 1;
                while i < bytes.len() {
                    if bytes[i] == quote {
                        if bytes.get(i + 1) == Some(&quote) {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b if b.is_ascii_alphanumeric() || b == b'_' => {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                words.push((start, i));
            }
            _ => i += 1,
        }
    }
    words
}

fn is_transaction_control(statement: &Statement) -> bool {
    let Statement::Sql(statement) = statement else {
        return false;
    };
    matches!(
        statement,
        ast::Statement::StartTransaction { .. }
            | ast::Statement::Commit { .. }
            | ast::Statement::Rollback { .. }
            | ast::Statement::Savepoint { .. }
            | ast::Statement::ReleaseSavepoint { .. }
    )
}

/// What IF [NOT] EXISTS guards against happened: with the clause, `tag` and a NOTICE
/// "..., skipping" (SQLSTATE 00000 for a missing object, as PostgreSQL sends it; the error's
/// own for one that exists); without it, the error.
fn skip_or_fail(skip: bool, tag: &str, state: SqlState, message: String) -> SqlResult<Outcome> {
    if !skip {
        return Err(SqlError::new(state, message));
    }
    let code = match state {
        SqlState::UNDEFINED_TABLE => "00000",
        other => other.code(),
    };
    Ok(Outcome {
        tag: tag.into(),
        notices: vec![Notice {
            severity: "NOTICE",
            code,
            message: format!("{message}, skipping"),
        }],
        ..Outcome::default()
    })
}

fn missing_cursor(name: &str) -> SqlError {
    SqlError::new(
        SqlState::INVALID_CURSOR_NAME,
        format!("cursor \"{name}\" does not exist"),
    )
}

fn warning(code: &'static str, message: &str) -> Notice {
    Notice {
        severity: "WARNING",
        code,
        message: message.to_string(),
    }
}

impl Session {
    /// A session for `user` on `database`.
    pub fn new(engine: Arc<Engine>, user: &str, database: &str) -> Session {
        let seed = engine.sessions.fetch_add(1, Ordering::Relaxed);
        let (notify_sender, notify_receiver) = tokio::sync::mpsc::unbounded_channel();
        Session {
            notify_sender,
            notify_receiver: Some(notify_receiver),
            pending_listens: Vec::new(),
            pending_notifies: Vec::new(),
            notify_queue: Mutex::default(),
            set_config_queue: Mutex::default(),
            cursors: std::collections::HashMap::new(),
            session_id: seed,
            advisory_used: AtomicBool::new(false),
            parse_cache: ParseCache::default(),
            shape_plan_runs: 0,
            prepared_names: std::collections::HashSet::new(),
            sql_prepared: std::collections::HashMap::new(),
            sleep: crate::expr::SleepCredit::default(),
            engine,
            jitter: Jitter::new(seed),
            random: std::sync::Mutex::new(Jitter::new(!seed)),
            parsed_search_path: SettingMemo::default(),
            looked_up_time_zone: SettingMemo::default(),
            cancel: CancelToken::default(),
            txn: None,
            block: Block::None,
            block_modes: TxnModes::default(),
            settings: default_settings(user),
            local_saved: BTreeMap::new(),
            block_start: BTreeMap::new(),
            sequence_state: Mutex::default(),
            pending_job: None,
            savepoints: Vec::new(),
            pending_copy: None,
            copy_data: None,
            startup_settings: default_settings(user),
            user: user.to_string(),
            database: database.to_string(),
            backend_pid: 0,
        }
    }

    /// Runs `f` on the process's advisory lock table, if this session ever used it.
    fn with_advisory<T>(
        &self,
        f: impl FnOnce(&crate::advisory::AdvisoryLocks, u64) -> T,
    ) -> Option<T> {
        self.advisory_used
            .load(Ordering::Acquire)
            .then(|| f(&self.engine.advisory, self.session_id))
    }

    /// The receiving end of this session's notifications (LISTEN); `None` once taken.
    pub fn take_notifications(
        &mut self,
    ) -> Option<tokio::sync::mpsc::UnboundedReceiver<Notification>> {
        self.notify_receiver.take()
    }

    /// LISTEN (`listen`) or UNLISTEN `channel` (`None`: every channel).
    fn apply_listen(&mut self, channel: Option<String>, listen: bool) {
        let mut listeners = self.engine.listeners();
        match (channel, listen) {
            (Some(channel), true) => {
                listeners
                    .entry(channel)
                    .or_default()
                    .insert(self.session_id, self.notify_sender.clone());
            }
            (Some(channel), false) => {
                if let Some(sessions) = listeners.get_mut(&channel) {
                    sessions.remove(&self.session_id);
                    if sessions.is_empty() {
                        listeners.remove(&channel);
                    }
                }
            }
            (None, _) => {
                listeners.retain(|_, sessions| {
                    sessions.remove(&self.session_id);
                    !sessions.is_empty()
                });
            }
        }
    }

    /// Delivers committed NOTIFYs to the sessions listening on their channels.
    fn send_notifies(&self, notifies: Vec<(String, String)>) {
        if notifies.is_empty() {
            return;
        }
        let listeners = self.engine.listeners();
        for (channel, payload) in notifies {
            for sender in listeners.get(&channel).into_iter().flat_map(|s| s.values()) {
                let _ = sender.send(Notification {
                    pid: self.backend_pid,
                    channel: channel.clone(),
                    payload: payload.clone(),
                });
            }
        }
    }

    /// The connection prepared a statement under `name` (Parse).
    pub fn statement_prepared(&mut self, name: &str) {
        self.prepared_names.insert(name.to_string());
    }

    /// The connection closed its prepared statement `name` (Close).
    pub fn statement_closed(&mut self, name: &str) {
        self.prepared_names.remove(name);
    }

    /// Sets the backend process id the connection announced (pg_backend_pid()).
    pub fn set_backend_pid(&mut self, pid: i32) {
        self.backend_pid = pid;
        self.engine
            .backends
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(pid, self.cancel.clone());
    }

    /// Runs a simple-protocol query string: every statement in it, in order, stopping at the
    /// first error (the error is the last element). An empty string gives an empty vector.
    pub async fn simple_query(&mut self, sql: &str) -> Vec<SqlResult<Outcome>> {
        let original = sql;
        let mut shape = Shape::of(sql);
        if let Some(shape) = shape.as_mut() {
            if let Some(result) = self.run_shaped(sql, shape).await {
                return vec![result];
            }
        }
        let cache = shape.as_mut().map(|shape| (&mut self.parse_cache, shape));
        let statements = match parse_with(sql, cache) {
            Ok(statements) => statements,
            Err(e) => {
                self.fail_block();
                return vec![Err(e)];
            }
        };
        if let (Some(shape), [statement]) = (shape.as_mut(), statements.as_slice()) {
            // A shape is planned with parameters once it comes again: one-off texts are not.
            if shape.seen_before() && shape_plans::keeps_plan(statement) {
                self.learn_shape(shape, statement).await;
                if let Some(result) = self.run_shaped(sql, shape).await {
                    return vec![result];
                }
            }
        }
        if statements.len() > 1 && statements.iter().any(is_copy_from) {
            self.fail_block();
            return vec![Err(SqlError::unsupported(
                "COPY FROM STDIN must be the only statement in its query string",
            ))];
        }
        let implicit = statements.len() > 1
            && self.block == Block::None
            && !statements.iter().any(is_transaction_control);
        if implicit {
            self.block = Block::Implicit;
        }
        let mut results = Vec::with_capacity(statements.len());
        // Each statement keeps the whole query string: a statement's own text is not kept
        // apart, and printing its tree again cost as much as a quick statement's planning.
        let text: Arc<str> = Arc::from(original);
        for statement in statements {
            let outcome = match self
                .prepare_statement(text.clone(), Some(statement), &[])
                .await
            {
                Ok(prepared) => self
                    .execute(&prepared, Vec::new())
                    .await
                    .map(|outcome| Outcome {
                        time_zone: self.time_zone(),
                        ..outcome
                    }),
                Err(e) => {
                    self.fail_block();
                    Err(e)
                }
            };
            let outcome = outcome.map_err(|e| e.locate_in(original));
            let failed = outcome.is_err();
            results.push(outcome);
            if failed {
                break;
            }
        }
        if implicit {
            let failed = results.last().is_some_and(|r| r.is_err());
            if failed {
                self.txn = None;
            } else if let Err(e) = self.commit_transaction().await {
                results.push(Err(e));
            }
            self.block = Block::None;
            self.txn = None;
        }
        results
    }

    /// Parses and plans one statement (extended protocol Parse). `param_types` are the types
    /// the client specified (`None` or `Unknown` = infer).
    pub async fn prepare(
        &mut self,
        sql: &str,
        param_types: &[Option<DataType>],
    ) -> SqlResult<Arc<Prepared>> {
        let mut statements = parse(sql)?;
        if statements.len() > 1 {
            return Err(SqlError::syntax(
                "cannot insert multiple commands into a prepared statement",
            ));
        }
        let statement = statements.pop();
        self.prepare_statement(Arc::from(sql), statement, param_types)
            .await
    }

    async fn prepare_statement(
        &mut self,
        sql: Arc<str>,
        statement: Option<Statement>,
        param_types: &[Option<DataType>],
    ) -> SqlResult<Arc<Prepared>> {
        let declared: Vec<Option<DataType>> = param_types
            .iter()
            .map(|t| t.clone().filter(|t| *t != DataType::Unknown))
            .collect();
        let Some(stmt) = &statement else {
            return Ok(Arc::new(Prepared {
                param_types: vec![],
                columns: vec![],
                sql,
                statement,
                declared,
                plan: Mutex::new(Arc::new(Plan::NoOp(""))),
                sequences: Mutex::default(),
                system_catalog: false,
                validated_at: AtomicU64::new(0),
                shaped: false,
            }));
        };
        let (planned, planned_at) = self.plan_with_snapshot(stmt, &declared).await?;
        Ok(Arc::new(self.new_prepared(
            sql, statement, declared, planned, planned_at, false,
        )))
    }

    /// A prepared statement of `planned`, found good at `planned_at`.
    fn new_prepared(
        &self,
        sql: Arc<str>,
        statement: Option<Statement>,
        declared: Vec<Option<DataType>>,
        planned: planner::Planned,
        planned_at: cairn_types::Timestamp,
        shaped: bool,
    ) -> Prepared {
        let planner::Planned {
            plan,
            params,
            sequences,
            system_catalog,
        } = planned;
        Prepared {
            param_types: params,
            // FETCH returns its cursor's columns (Describe tells them).
            columns: match &plan {
                Plan::Fetch {
                    name, rows: true, ..
                } => self
                    .cursors
                    .get(name)
                    .map(|cursor| cursor.columns.clone())
                    .unwrap_or_default(),
                plan => plan.columns().unwrap_or_default(),
            },
            sql,
            statement,
            declared,
            plan: Mutex::new(Arc::new(plan)),
            sequences: Mutex::new(Arc::new(sequences)),
            system_catalog,
            validated_at: AtomicU64::new(planned_at.0),
            shaped,
        }
    }

    /// Plans in the session's transaction if one is open, else at a fresh snapshot.
    async fn plan_with_snapshot(
        &mut self,
        statement: &Statement,
        declared: &[Option<DataType>],
    ) -> SqlResult<(planner::Planned, cairn_types::Timestamp)> {
        let zone = self.time_zone();
        let search_path = self.search_path();
        match self.txn.as_mut() {
            Some(txn) => {
                let planned = planner::plan(txn, statement, declared, zone, &search_path).await?;
                // Its own catalog writes are not the catalog's: check again at every run.
                let at = match txn.has_written_watched() {
                    true => cairn_types::Timestamp::ZERO,
                    false => txn.read_ts(),
                };
                Ok((planned, at))
            }
            None => {
                let mut txn = self.engine.db.begin();
                let planned =
                    planner::plan(&mut txn, statement, declared, zone, &search_path).await?;
                Ok((planned, txn.read_ts()))
            }
        }
    }

    /// Executes a prepared statement with parameter values (already decoded to the types in
    /// `prepared.param_types`).
    pub async fn execute(
        &mut self,
        prepared: &Arc<Prepared>,
        params: Vec<Value>,
    ) -> SqlResult<Outcome> {
        self.cancel.0.store(false, Ordering::Release);
        let Some(statement) = &prepared.statement else {
            return Ok(Outcome::default());
        };
        if self.block == Block::Failed && !is_transaction_control(statement) {
            return Err(SqlError::new(
                SqlState::IN_FAILED_SQL_TRANSACTION,
                "current transaction is aborted, commands ignored until end of transaction block",
            ));
        }
        if params.len() != prepared.param_types.len() {
            return Err(SqlError::new(
                SqlState::PROTOCOL_VIOLATION,
                format!(
                    "bind message supplies {} parameters, but prepared statement requires {}",
                    params.len(),
                    prepared.param_types.len()
                ),
            ));
        }
        let plan = prepared.plan();
        self.sleep.reset();
        // statement_timeout: a timer cancels the statement, which then says why.
        let timer = self.statement_timeout().map(|limit| {
            let (cancel, clock) = (self.cancel.clone(), self.engine.db.clock().clone());
            let fired = Arc::new(AtomicBool::new(false));
            let flag = fired.clone();
            let task = self.engine.spawn_background(async move {
                clock.sleep(limit).await;
                flag.store(true, Ordering::Release);
                cancel.cancel();
            });
            (task, fired)
        });
        if timer.is_some() {
            // On an engine made on this very runtime (tests), the timer starts in this
            // worker's next-task slot, which no other worker may take: let it arm its sleep
            // now, or a statement that never waits would keep it from ever firing.
            tokio::task::yield_now().await;
        }
        let result = match plan.as_ref() {
            Plan::Insert(insert) if self.copy_data.is_none() => match &insert.source {
                InsertSource::Copy(format) => {
                    self.await_copy(prepared, params, &insert.table, &insert.targets, format)
                }
                _ => self.run(prepared, statement, plan.clone(), &params).await,
            },
            _ => self.run(prepared, statement, plan.clone(), &params).await,
        };
        let result = match timer {
            Some((task, fired)) => {
                task.abort();
                match result {
                    Err(e)
                        if e.state == SqlState::QUERY_CANCELED && fired.load(Ordering::Acquire) =>
                    {
                        Err(SqlError::new(
                            SqlState::QUERY_CANCELED,
                            "canceling statement due to statement timeout",
                        ))
                    }
                    other => other,
                }
            }
            None => result,
        };
        if result
            .as_ref()
            .is_err_and(|e| !shape_plans::is_stale_shape_plan(e))
        {
            self.fail_block();
        }
        result
    }

    /// The statement_timeout setting, if one is set (0 is none).
    fn statement_timeout(&self) -> Option<std::time::Duration> {
        self.duration_setting("statement_timeout")
    }

    /// A setting in milliseconds or with a unit (`100`, `1.5s`, `2min`); `None` if unset or 0.
    fn duration_setting(&self, name: &str) -> Option<std::time::Duration> {
        let millis = parse_millis(self.settings.get(name)?)?;
        (millis >= 1.0).then(|| std::time::Duration::from_micros((millis * 1000.0) as u64))
    }

    /// Runs COPY FROM STDIN's insert over `data`, the CopyData the client sent after the
    /// CopyInResponse that [`Session::execute`] asked for.
    pub async fn copy_from(&mut self, data: bytes::Bytes) -> SqlResult<Outcome> {
        let Some((prepared, params)) = self.pending_copy.take() else {
            return Err(SqlError::new(
                SqlState::PROTOCOL_VIOLATION,
                "unexpected COPY data: no COPY FROM STDIN is running",
            ));
        };
        self.copy_data = Some(data);
        let result = self.execute(&prepared, params).await;
        self.copy_data = None;
        result
    }

    /// Ends a COPY FROM STDIN without running it: the client sent CopyFail (`Some` message)
    /// or broke the protocol. The block fails as after any error.
    pub fn copy_failed(&mut self, message: Option<&str>) -> SqlError {
        self.pending_copy = None;
        self.fail_block();
        match message {
            Some(message) => SqlError::new(
                SqlState::QUERY_CANCELED,
                format!("COPY from stdin failed: {message}"),
            ),
            None => SqlError::new(
                SqlState::PROTOCOL_VIOLATION,
                "COPY from stdin ended without CopyDone",
            ),
        }
    }

    /// COPY FROM STDIN before its data: checked as the statement would be, then remembered
    /// until the data arrives.
    fn await_copy(
        &mut self,
        prepared: &Arc<Prepared>,
        params: Vec<Value>,
        table: &catalog::TableDesc,
        targets: &[usize],
        format: &CopyFormat,
    ) -> SqlResult<Outcome> {
        if self.read_only() {
            return Err(SqlError::new(
                SqlState::READ_ONLY_SQL_TRANSACTION,
                "cannot execute COPY FROM in a read-only transaction",
            ));
        }
        self.pending_copy = Some((prepared.clone(), params));
        let columns = targets
            .iter()
            .map(|&t| Column {
                name: table.columns[t].name.clone(),
                data_type: table.columns[t].data_type.clone(),
            })
            .collect();
        Ok(Outcome {
            copy: Some(CopyTransfer {
                incoming: true,
                format: format.clone(),
                columns,
            }),
            ..Outcome::default()
        })
    }

    /// Runs a planned statement: session and transaction control here, the rest in a
    /// transaction (autocommit's own, retried on conflict, or the open block's).
    async fn run(
        &mut self,
        prepared: &Prepared,
        statement: &Statement,
        plan: Arc<Plan>,
        params: &[Value],
    ) -> SqlResult<Outcome> {
        self.with_advisory(|locks, session| locks.begin_statement(session));
        let clock = self.engine.db.clock().clone();
        // When the statement began waiting for an advisory lock (lock_timeout counts from it).
        let mut waiting_since: Option<u64> = None;
        let lock_timeout = self.duration_setting("lock_timeout");
        let result = loop {
            // An advisory lock another session holds: undo the attempt (its locks, its
            // writes), wait for a release, run it again.
            let mark = self.txn.as_ref().map(Transaction::mark);
            self.with_advisory(|locks, session| locks.begin_attempt(session));
            self.sleep.begin_attempt();
            self.notify_queue
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clear();
            self.set_config_queue
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clear();
            let engine = self.engine.clone();
            let released = engine.advisory.released();
            // Boxed: the statement's future is large, and inlined here it would be copied
            // through this frame (deep recursion below needs the stack).
            let result = Box::pin(self.run_once(prepared, statement, plan.clone(), params)).await;
            match &result {
                Err(e) if crate::expr::is_would_sleep(e) => {
                    // pg_sleep: undo the attempt, sleep, run again with the time credited.
                    self.with_advisory(|locks, session| locks.undo_attempt(session));
                    if let Err(e) = self.undo_writes(mark.as_ref()) {
                        break Err(e);
                    }
                    let needed = self.sleep.needed();
                    let clock = self.engine.db.clock().clone();
                    let start = clock.monotonic_nanos();
                    loop {
                        if self.cancel.0.load(Ordering::Acquire) {
                            break;
                        }
                        let slept = clock.monotonic_nanos().saturating_sub(start);
                        let left = needed.saturating_sub(std::time::Duration::from_nanos(slept));
                        if left.is_zero() {
                            break;
                        }
                        clock
                            .sleep(left.min(std::time::Duration::from_millis(10)))
                            .await;
                    }
                    if self.cancel.0.load(Ordering::Acquire) {
                        break Err(SqlError::new(
                            SqlState::QUERY_CANCELED,
                            "canceling statement due to user request",
                        ));
                    }
                    self.sleep.credit(needed);
                }
                Err(e) if crate::advisory::is_would_block(e) => {
                    let began = *waiting_since.get_or_insert_with(|| clock.monotonic_nanos());
                    self.with_advisory(|locks, session| locks.undo_attempt(session));
                    if let Err(e) = self.undo_writes(mark.as_ref()) {
                        break Err(e);
                    }
                    let nap = self
                        .engine
                        .db
                        .clock()
                        .sleep(std::time::Duration::from_millis(20));
                    tokio::select! {
                        () = released => {}
                        () = nap => {}
                    }
                    if self.cancel.0.load(Ordering::Acquire) {
                        self.with_advisory(|locks, session| locks.stop_waiting(session));
                        break Err(SqlError::new(
                            SqlState::QUERY_CANCELED,
                            "canceling statement due to user request",
                        ));
                    }
                    let waited = std::time::Duration::from_nanos(
                        clock.monotonic_nanos().saturating_sub(began),
                    );
                    if lock_timeout.is_some_and(|limit| waited >= limit) {
                        self.with_advisory(|locks, session| locks.stop_waiting(session));
                        break Err(SqlError::new(
                            SqlState("55P03"),
                            "canceling statement due to lock timeout",
                        ));
                    }
                }
                _ => {
                    self.with_advisory(|locks, session| locks.keep(session));
                    break result;
                }
            }
        };
        // The statement's mark is spent; a savepoint's may still be rolled back to.
        if let (Some(txn), true) = (self.txn.as_mut(), self.savepoints.is_empty()) {
            txn.forget_marks();
        }
        // set_config: the statement's settings, as SET / SET LOCAL would make them.
        let configured = std::mem::take(
            &mut *self
                .set_config_queue
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        );
        let mut result = result;
        for (name, value, local) in configured {
            let Ok(outcome) = &mut result else {
                break;
            };
            let changed = match local {
                true => self.set_local(&name, Some(&value)),
                false => self.set(&name, Some(&value)),
            };
            match changed {
                Ok(changed) => outcome.parameter_changes.extend(changed.parameter_changes),
                Err(e) => result = Err(e),
            }
        }
        // pg_notify: sent with the statement's transaction, or held for its block's COMMIT.
        let notified =
            std::mem::take(&mut *self.notify_queue.lock().unwrap_or_else(|p| p.into_inner()));
        if result.is_ok() {
            for notify in notified {
                match self.block {
                    Block::Open => {
                        if !self.pending_notifies.contains(&notify) {
                            self.pending_notifies.push(notify);
                        }
                    }
                    _ => self.send_notifies(vec![notify]),
                }
            }
        }
        // Outside a transaction block the statement's transaction has ended.
        if self.block == Block::None {
            self.with_advisory(|locks, session| locks.release_xact(session));
        }
        result
    }

    async fn run_once(
        &mut self,
        prepared: &Prepared,
        statement: &Statement,
        plan: Arc<Plan>,
        params: &[Value],
    ) -> SqlResult<Outcome> {
        match plan.as_ref() {
            Plan::Begin(modes) => self.begin(modes),
            Plan::Commit => self.commit().await,
            Plan::Rollback => Ok(self.rollback()),
            Plan::Savepoint(name) => self.savepoint(name),
            Plan::ReleaseSavepoint(name) => self.release_savepoint(name),
            Plan::RollbackToSavepoint(name) => self.rollback_to_savepoint(name),
            Plan::SetTransaction { modes, session } => self.set_transaction(modes, *session),
            Plan::Set { name, value } if name == IDEMPOTENCY_KEY => {
                let _ = value;
                Err(SqlError::new(SqlState::INVALID_PARAMETER_VALUE, format!("{IDEMPOTENCY_KEY} can only be set with SET LOCAL inside a transaction block")))
            }
            Plan::Set { name, value } => self.set(name, value.as_deref()),
            Plan::SetLocal { name, value } => self.set_local(name, value.as_deref()),
            Plan::Reset(name) => self.set(name, None).map(|outcome| Outcome {
                tag: "RESET".into(),
                ..outcome
            }),
            Plan::Show(name) => self.show(name),
            Plan::Fetch {
                name,
                direction,
                rows: fetch,
            } => {
                let cursor = self
                    .cursors
                    .get_mut(name)
                    .ok_or_else(|| missing_cursor(name))?;
                let rows = cursor.fetch(*direction)?;
                Ok(match fetch {
                    true => Outcome {
                        tag: format!("FETCH {}", rows.len()),
                        columns: Some(cursor.columns.clone()),
                        rows,
                        ..Outcome::default()
                    },
                    false => Outcome {
                        tag: format!("MOVE {}", rows.len()),
                        ..Outcome::default()
                    },
                })
            }
            Plan::Prepare {
                name,
                types,
                statement,
            } => {
                // As PostgreSQL: SELECT, VALUES, INSERT, UPDATE and DELETE only.
                if !matches!(
                    **statement,
                    ast::Statement::Query(_)
                        | ast::Statement::Insert(_)
                        | ast::Statement::Update(_)
                        | ast::Statement::Delete(_)
                ) {
                    let word = statement.to_string();
                    let word = word.split_whitespace().next().unwrap_or_default();
                    return Err(SqlError::syntax(format!(
                        "syntax error at or near \"{word}\""
                    )));
                }
                if self.prepared_names.contains(name) {
                    return Err(SqlError::new(
                        SqlState::DUPLICATE_PREPARED_STATEMENT,
                        format!("prepared statement \"{name}\" already exists"),
                    ));
                }
                let declared: Vec<Option<DataType>> = types.iter().cloned().map(Some).collect();
                let inner = Statement::Sql((**statement).clone());
                let prepared = Box::pin(self.prepare_statement(
                    statement.to_string().into(),
                    Some(inner),
                    &declared,
                ))
                .await?;
                self.prepared_names.insert(name.clone());
                self.sql_prepared.insert(name.clone(), prepared);
                Ok(Outcome {
                    tag: "PREPARE".into(),
                    ..Outcome::default()
                })
            }
            Plan::Execute { name, arguments } => {
                let Some(target) = self.sql_prepared.get(name).cloned() else {
                    return Err(SqlError::new(
                        SqlState::UNDEFINED_PREPARED_STATEMENT,
                        format!("prepared statement \"{name}\" does not exist"),
                    ));
                };
                if arguments.len() != target.param_types.len() {
                    return Err(SqlError::syntax(format!(
                        "wrong number of parameters for prepared statement \"{name}\""
                    ))
                    .with_detail(format!(
                        "Expected {} parameters but got {}.",
                        target.param_types.len(),
                        arguments.len()
                    )));
                }
                // The arguments are constants: computed by a SELECT of them, then typed.
                let mut params = Vec::with_capacity(arguments.len());
                if !arguments.is_empty() {
                    let list: Vec<String> = arguments
                        .iter()
                        .zip(&target.param_types)
                        .map(|(argument, ty)| format!("CAST(({argument}) AS {ty})"))
                        .collect();
                    let sql = format!("SELECT {}", list.join(", "));
                    let statement = parse(&sql)?.pop();
                    let select =
                        Box::pin(self.prepare_statement(sql.into(), statement, &[])).await?;
                    let outcome = Box::pin(self.execute(&select, Vec::new())).await?;
                    params = outcome.rows.into_iter().next().unwrap_or_default();
                }
                Box::pin(self.execute(&target, params)).await
            }
            Plan::Listen(channel, listen) => {
                // In a block it takes effect at COMMIT.
                match self.block {
                    Block::Open => self.pending_listens.push((channel.clone(), *listen)),
                    _ => self.apply_listen(channel.clone(), *listen),
                }
                Ok(Outcome {
                    tag: if *listen { "LISTEN" } else { "UNLISTEN" }.into(),
                    ..Outcome::default()
                })
            }
            Plan::Notify { channel, payload } => {
                if payload.len() >= 8000 {
                    return Err(SqlError::new(
                        SqlState::INVALID_PARAMETER_VALUE,
                        "payload string too long",
                    ));
                }
                let notify = (channel.clone(), payload.clone());
                match self.block {
                    Block::Open => {
                        if !self.pending_notifies.contains(&notify) {
                            self.pending_notifies.push(notify);
                        }
                    }
                    _ => self.send_notifies(vec![notify]),
                }
                Ok(Outcome {
                    tag: "NOTIFY".into(),
                    ..Outcome::default()
                })
            }
            Plan::CloseCursor(name) => {
                match name {
                    Some(name) => {
                        self.cursors
                            .remove(name)
                            .ok_or_else(|| missing_cursor(name))?;
                    }
                    None => self.cursors.clear(),
                }
                Ok(Outcome {
                    tag: if name.is_some() {
                        "CLOSE CURSOR"
                    } else {
                        "CLOSE CURSOR ALL"
                    }
                    .into(),
                    ..Outcome::default()
                })
            }
            Plan::Deallocate(name) => {
                match name {
                    Some(name) if !self.prepared_names.remove(name) => {
                        self.sql_prepared.remove(name);
                        return Err(SqlError::new(
                            SqlState::UNDEFINED_PREPARED_STATEMENT,
                            format!("prepared statement \"{name}\" does not exist"),
                        ));
                    }
                    Some(name) => {
                        self.sql_prepared.remove(name);
                    }
                    None => {
                        self.prepared_names.clear();
                        self.sql_prepared.clear();
                    }
                }
                Ok(Outcome {
                    tag: if name.is_some() {
                        "DEALLOCATE"
                    } else {
                        "DEALLOCATE ALL"
                    }
                    .into(),
                    deallocate: Some(name.clone()),
                    ..Outcome::default()
                })
            }
            Plan::DiscardAll => {
                if self.block != Block::None {
                    return Err(SqlError::new(
                        SqlState::ACTIVE_SQL_TRANSACTION,
                        "DISCARD ALL cannot run inside a transaction block",
                    ));
                }
                let mut parameter_changes = Vec::new();
                for (key, value) in self.startup_settings.clone() {
                    if self.settings.get(&key) != Some(&value) && REPORTED.contains(&key.as_str()) {
                        parameter_changes.push((key.clone(), value.clone()));
                    }
                }
                self.settings = self.startup_settings.clone();
                self.prepared_names.clear();
                self.sql_prepared.clear();
                self.cursors.clear();
                self.parse_cache = ParseCache::default();
                self.apply_listen(None, false);
                self.with_advisory(|locks, session| locks.release_all(session));
                Ok(Outcome {
                    tag: "DISCARD ALL".into(),
                    deallocate: Some(None),
                    parameter_changes,
                    ..Outcome::default()
                })
            }
            Plan::DiscardPlans => {
                self.parse_cache = ParseCache::default();
                Ok(Outcome {
                    tag: "DISCARD PLANS".into(),
                    ..Outcome::default()
                })
            }
            Plan::SetConstraints => {
                // Constraints are checked at each statement's end whatever is asked (never
                // later than PostgreSQL checks them).
                let notices = match self.block {
                    Block::Open => vec![],
                    _ => vec![warning(
                        "25P01",
                        "SET CONSTRAINTS can only be used in transaction blocks",
                    )],
                };
                Ok(Outcome {
                    tag: "SET CONSTRAINTS".into(),
                    notices,
                    ..Outcome::default()
                })
            }
            Plan::NoOp(tag) => Ok(Outcome {
                tag: (*tag).to_string(),
                ..Outcome::default()
            }),
            Plan::Explain(inner) => {
                let rows = exec::explain(inner)
                    .into_iter()
                    .map(|line| vec![Value::Text(line)])
                    .collect();
                Ok(Outcome {
                    tag: "EXPLAIN".into(),
                    columns: plan.columns(),
                    rows,
                    ..Outcome::default()
                })
            }
            _ if self.block == Block::None => {
                self.run_with_retry(prepared, statement, plan, params).await
            }
            _ => {
                self.run_in_transaction(prepared, statement, plan, params)
                    .await
            }
        }
    }

    /// After an error: a block becomes failed (its writes are gone); autocommit forgets its
    /// transaction.
    /// Ends a transaction block, whatever its outcome: SET LOCAL values go back.
    /// Ends the transaction block: SET LOCAL values go back, and on rollback (`committed`
    /// false) every setting the block changed does. Returns the reported parameters whose
    /// value changed back (for ParameterStatus).
    fn end_block(&mut self, committed: bool) -> Vec<(String, String)> {
        let listens = std::mem::take(&mut self.pending_listens);
        let notifies = std::mem::take(&mut self.pending_notifies);
        if committed {
            for (channel, listen) in listens {
                self.apply_listen(channel, listen);
            }
            self.send_notifies(notifies);
        }
        // Cursors end with their transaction, unless WITH HOLD and it committed.
        self.cursors
            .retain(|_, cursor| cursor.hold && (committed || !cursor.uncommitted));
        for cursor in self.cursors.values_mut() {
            cursor.uncommitted = false;
        }
        self.txn = None;
        self.savepoints.clear();
        self.block = Block::None;
        self.block_modes = TxnModes::default();
        let local = std::mem::take(&mut self.local_saved);
        let started = std::mem::take(&mut self.block_start);
        let restore = if committed {
            local
        } else {
            // The block's start values win over what SET LOCAL saw.
            let mut all = local;
            all.extend(started);
            all
        };
        let mut changes = Vec::new();
        for (key, value) in restore {
            let before = match value {
                Some(value) => self.settings.insert(key.clone(), value),
                None => self.settings.remove(&key),
            };
            let after = self.settings.get(&key);
            if before.as_ref() != after && REPORTED.contains(&key.as_str()) {
                changes.push((key.clone(), after.cloned().unwrap_or_default()));
            }
        }
        changes
    }

    /// Notes a setting's value before the open transaction block first changes it.
    fn remember_block_start(&mut self, key: &str) {
        if self.block == Block::Open && !self.block_start.contains_key(key) {
            let value = self.settings.get(key).cloned();
            self.block_start.insert(key.to_string(), value);
        }
    }

    fn set_local(&mut self, name: &str, value: Option<&str>) -> SqlResult<Outcome> {
        if self.block != Block::Open {
            let notice = warning("25P01", "SET LOCAL can only be used in transaction blocks");
            return Ok(Outcome {
                tag: "SET".into(),
                notices: vec![notice],
                ..Outcome::default()
            });
        }
        let key = canonical(name);
        let previous = self.settings.get(&key).cloned();
        if name == IDEMPOTENCY_KEY {
            match value {
                Some(v) if !v.is_empty() && v.len() <= 256 => {
                    self.settings.insert(key.clone(), v.to_string());
                }
                _ => {
                    return Err(SqlError::new(
                        SqlState::INVALID_PARAMETER_VALUE,
                        format!("{IDEMPOTENCY_KEY} must be between 1 and 256 characters"),
                    ))
                }
            }
            self.local_saved.entry(key).or_insert(previous);
            return Ok(Outcome {
                tag: "SET".into(),
                ..Outcome::default()
            });
        }
        let outcome = self.set(name, value)?;
        self.local_saved.entry(key).or_insert(previous);
        Ok(outcome)
    }

    fn fail_block(&mut self) {
        // With a savepoint set, ROLLBACK TO may bring the block back: its writes stay.
        // Without one the transaction is over, and so are its advisory locks.
        // (With a savepoint, the locks taken since the newest one go: its subtransaction
        // is over.)
        match self.savepoints.last() {
            None => {
                self.txn = None;
                self.with_advisory(|locks, session| locks.release_xact(session));
            }
            Some(savepoint) => {
                let mark = savepoint.advisory;
                self.with_advisory(|locks, session| locks.release_xact_after(session, mark));
            }
        }
        if matches!(self.block, Block::Open | Block::Implicit) {
            self.block = if self.block == Block::Open {
                Block::Failed
            } else {
                Block::Implicit
            };
        }
    }

    /// Runs an autocommit statement, retrying it from scratch (new snapshot, new plan check)
    /// when its commit conflicts: nothing of it has reached the client yet (results are sent
    /// only after the commit), and the retry recomputes every write from what it reads, so
    /// nothing is applied blindly twice. Bounded attempts, exponential backoff with jitter.
    async fn run_with_retry(
        &mut self,
        prepared: &Prepared,
        statement: &Statement,
        plan: Arc<Plan>,
        params: &[Value],
    ) -> SqlResult<Outcome> {
        let mut attempt = 0;
        loop {
            let result = self
                .run_in_transaction(prepared, statement, plan.clone(), params)
                .await;
            match result {
                Err(e)
                    if e.state == SqlState::SERIALIZATION_FAILURE
                        && attempt + 1 < MAX_AUTOCOMMIT_ATTEMPTS =>
                {
                    self.txn = None;
                    attempt += 1;
                    let ceiling =
                        (RETRY_BASE_DELAY_MICROS << attempt.min(16)).min(RETRY_MAX_DELAY_MICROS);
                    let delay = self.jitter.below(ceiling) + 1;
                    self.engine
                        .db
                        .clock()
                        .sleep(std::time::Duration::from_micros(delay))
                        .await;
                }
                other => return other,
            }
        }
    }

    async fn run_in_transaction(
        &mut self,
        prepared: &Prepared,
        statement: &Statement,
        mut plan: Arc<Plan>,
        params: &[Value],
    ) -> SqlResult<Outcome> {
        let read_only = self.read_only();
        if let (Some(kind), true) = (plan.write_kind(), read_only) {
            return Err(SqlError::new(
                SqlState::READ_ONLY_SQL_TRANSACTION,
                format!("cannot execute {kind} in a read-only transaction"),
            ));
        }
        let mut txn = match self.txn.take() {
            Some(mut txn) => {
                // READ COMMITTED: every statement reads from a fresh snapshot.
                if matches!(
                    self.isolation().as_str(),
                    "read committed" | "read uncommitted"
                ) {
                    txn.refresh_snapshot();
                }
                txn
            }
            None => self.engine.db.begin_with(self.core_isolation()),
        };
        let result = async {
            // The plan's tables, read at this snapshot: unchanged, or plan again. Nothing to
            // read while no catalog commit came between the snapshot the plan was last found
            // good at and this one; a writer still has its commit check the tables.
            let validated_at =
                cairn_types::Timestamp(prepared.validated_at.load(Ordering::Acquire));
            let own_ddl = txn.has_written_watched();
            let unchanged = !own_ddl
                && validated_at != cairn_types::Timestamp::ZERO
                && self
                    .engine
                    .db
                    .watch()
                    .unchanged_since(validated_at.min(txn.read_ts()));
            if prepared.shaped && !unchanged {
                return Err(shape_plans::stale_shape_plan());
            }
            let mut stale = false;
            for table in plan.tables() {
                if table.is_built_in() {
                    continue;
                }
                if unchanged {
                    txn.validate_read(catalog::table_key(&table.name));
                    continue;
                }
                match catalog::lookup(&mut txn, &table.name).await? {
                    Some(current) if current == table => {}
                    _ => stale = true,
                }
            }
            if stale {
                let planner::Planned {
                    plan: replanned,
                    params: types,
                    sequences,
                    ..
                } = planner::plan(
                    &mut txn,
                    statement,
                    &prepared.declared,
                    self.time_zone(),
                    &self.search_path(),
                )
                .await?;
                *prepared.sequences.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(sequences);
                if types != prepared.param_types
                    || replanned.columns().unwrap_or_default() != prepared.columns
                {
                    return Err(SqlError::new(
                        SqlState::FEATURE_NOT_SUPPORTED,
                        "cached plan must not change result type",
                    ));
                }
                plan = Arc::new(replanned);
                *prepared.plan.lock().unwrap_or_else(|p| p.into_inner()) = plan.clone();
            }
            // The plan is good at this snapshot (unless the transaction's own DDL shaped it).
            if !own_ddl {
                prepared
                    .validated_at
                    .store(txn.read_ts().0, Ordering::Release);
            }
            let sequences = prepared
                .sequences
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            let outcome = self
                .run_plan(&mut txn, &plan, &sequences, prepared.system_catalog, params)
                .await?;
            // A row this statement wrote or locked was changed by a commit after the
            // snapshot: the commit is certain to fail, so fail now, as PostgreSQL does at
            // REPEATABLE READ, and spare the client the rest of the transaction.
            match txn.overtaken_write() {
                Some(conflict) => Err(self.conflict_error(conflict).await),
                None => Ok(outcome),
            }
        }
        .await;
        let job = self.pending_job.take();
        match result {
            Ok(outcome) => {
                self.txn = Some(txn);
                if self.block == Block::None {
                    self.commit_transaction().await?;
                }
                match job {
                    Some((id, build)) => self.start_job(id, build, outcome).await,
                    None => Ok(outcome),
                }
            }
            Err(e) => {
                // Kept for ROLLBACK TO SAVEPOINT, which drops the failed statement's writes,
                // and for a block's statement that waits for an advisory lock.
                let waits = crate::advisory::is_would_block(&e) && self.block != Block::None;
                // A shape's stale plan: the statement runs again, planned as written.
                let again = shape_plans::is_stale_shape_plan(&e) && self.block != Block::None;
                if !self.savepoints.is_empty() || waits || again {
                    self.txn = Some(txn);
                }
                Err(e)
            }
        }
    }

    /// Starts index build job `id`, its definition committed: CREATE INDEX ASYNC returns
    /// at once (with the job's id), CONCURRENTLY once the job ends, with its error if it
    /// failed. A cancel stops the wait, not the job.
    async fn start_job(
        &mut self,
        id: u64,
        build: IndexBuild,
        outcome: Outcome,
    ) -> SqlResult<Outcome> {
        let job = crate::jobs::spawn(self.engine.clone(), id);
        if build == IndexBuild::Async {
            return Ok(outcome);
        }
        while !job.is_finished() {
            if self.cancel.0.load(Ordering::Acquire) {
                return Err(SqlError::new(
                    SqlState::QUERY_CANCELED,
                    "canceling statement due to user request",
                )
                .with_detail(format!(
                    "The index build goes on in the background as job {id} (see cairn_jobs)."
                )));
            }
            self.engine
                .db
                .clock()
                .sleep(std::time::Duration::from_millis(5))
                .await;
        }
        let mut reader = self.engine.db.begin();
        match crate::jobs::load(&mut reader, id).await? {
            Some(crate::jobs::JobDesc {
                error: Some(error), ..
            }) => Err(error.to_sql_error()),
            _ => Ok(outcome),
        }
    }

    async fn run_plan(
        &mut self,
        txn: &mut Transaction,
        plan: &Plan,
        sequences: &[SequenceUse],
        system_catalog: bool,
        params: &[Value],
    ) -> SqlResult<Outcome> {
        match plan {
            Plan::DeclareCursor {
                name,
                query,
                hold,
                no_scroll,
            } => {
                if !hold && self.block == Block::None {
                    return Err(SqlError::new(
                        SqlState::NO_ACTIVE_SQL_TRANSACTION,
                        "DECLARE CURSOR can only be used in transaction blocks",
                    ));
                }
                if self.cursors.contains_key(name) {
                    return Err(SqlError::new(
                        SqlState("42P03"),
                        format!("cursor \"{name}\" already exists"),
                    ));
                }
                let outcome =
                    Box::pin(self.run_plan(txn, query, sequences, system_catalog, params)).await?;
                let cursor = Cursor {
                    columns: query.columns().unwrap_or_default(),
                    rows: outcome.rows,
                    position: 0,
                    hold: *hold,
                    uncommitted: self.block != Block::None,
                    no_scroll: *no_scroll,
                };
                self.cursors.insert(name.clone(), cursor);
                Ok(Outcome {
                    tag: "DECLARE CURSOR".into(),
                    ..Outcome::default()
                })
            }
            Plan::CreateIndex {
                table,
                index,
                if_not_exists,
                build,
                ..
            } if *build != IndexBuild::InStatement => {
                if self.block != Block::None {
                    let how = match build {
                        IndexBuild::Async => "ASYNC",
                        _ => "CONCURRENTLY",
                    };
                    return Err(SqlError::new(
                        SqlState::ACTIVE_SQL_TRANSACTION,
                        format!("CREATE INDEX {how} cannot run inside a transaction block"),
                    ));
                }
                let job =
                    crate::alter::begin_index_build(txn, table, index, *if_not_exists).await?;
                let Some(id) = job else {
                    return Ok(Outcome {
                        tag: "CREATE INDEX".into(),
                        columns: plan.columns(),
                        notices: vec![Notice {
                            severity: "NOTICE",
                            code: "42P07",
                            message: format!(
                                "relation \"{}\" already exists, skipping",
                                index.name
                            ),
                        }],
                        ..Outcome::default()
                    });
                };
                self.pending_job = Some((id, *build));
                let rows = match build {
                    IndexBuild::Async => {
                        vec![vec![Value::Int8(i64::try_from(id).unwrap_or(i64::MAX))]]
                    }
                    _ => vec![],
                };
                Ok(Outcome {
                    tag: "CREATE INDEX".into(),
                    columns: plan.columns(),
                    rows,
                    ..Outcome::default()
                })
            }
            Plan::CreateSequence {
                desc,
                if_not_exists,
            } => {
                if relation_exists(txn, &desc.name).await? {
                    let message = format!("relation \"{}\" already exists", desc.name);
                    return skip_or_fail(
                        *if_not_exists,
                        "CREATE SEQUENCE",
                        SqlState::DUPLICATE_TABLE,
                        message,
                    );
                }
                if let Some((table, column)) = &desc.owned_by {
                    let owner = catalog::require(txn, table).await?;
                    if owner.column_index(column).is_none() {
                        return Err(SqlError::new(
                            SqlState::UNDEFINED_COLUMN,
                            format!("column \"{column}\" of relation \"{table}\" does not exist"),
                        ));
                    }
                }
                sequence::create(txn, desc.clone()).await?;
                Ok(Outcome {
                    tag: "CREATE SEQUENCE".into(),
                    ..Outcome::default()
                })
            }
            Plan::Truncate {
                names,
                restart_identity,
            } => {
                for name in names {
                    let table = catalog::lookup(txn, name)
                        .await?
                        .ok_or_else(|| catalog::undefined_table(name))?;
                    if let Some(child) = table.referenced_by.iter().find(|c| **c != table.name) {
                        return Err(SqlError::unsupported(format!(
                            "cannot truncate a table referenced in a foreign key constraint (table \"{child}\" references \"{name}\")"
                        )));
                    }
                    // The table starts over under a new id: its rows become unreachable at
                    // once, whatever their number, and a concurrent writer that read the old
                    // definition fails with a schema conflict.
                    catalog::renumber(txn, &table).await?;
                    if *restart_identity {
                        for owned in sequence::owned_by_table(txn, &table).await? {
                            sequence::restart(txn, &owned);
                            self.engine.sequences.forget(owned.id);
                        }
                    }
                }
                Ok(Outcome {
                    tag: "TRUNCATE TABLE".into(),
                    ..Outcome::default()
                })
            }
            Plan::CreateSchema {
                name,
                if_not_exists,
            } => {
                if catalog::schema_exists(txn, name).await? {
                    let message = format!("schema \"{name}\" already exists");
                    return skip_or_fail(
                        *if_not_exists,
                        "CREATE SCHEMA",
                        SqlState("42P06"),
                        message,
                    );
                }
                catalog::set_schema(txn, name, true);
                Ok(Outcome {
                    tag: "CREATE SCHEMA".into(),
                    ..Outcome::default()
                })
            }
            Plan::DropSchema { names, if_exists } => {
                let mut notices = Vec::new();
                for name in names {
                    if name == "public" || !catalog::schema_exists(txn, name).await? {
                        if *if_exists && name != "public" {
                            notices.push(Notice {
                                severity: "NOTICE",
                                code: "00000",
                                message: format!("schema \"{name}\" does not exist, skipping"),
                            });
                            continue;
                        }
                        return Err(match name.as_str() {
                            "public" => {
                                SqlError::unsupported("dropping schema public is not supported")
                            }
                            _ => SqlError::new(
                                SqlState("3F000"),
                                format!("schema \"{name}\" does not exist"),
                            ),
                        });
                    }
                    if catalog::schema_in_use(txn, name).await? {
                        return Err(SqlError::new(
                            SqlState("2BP01"),
                            format!("cannot drop schema {name} because other objects depend on it"),
                        )
                        .with_hint("Use DROP ... CASCADE to drop the dependent objects too."));
                    }
                    catalog::set_schema(txn, name, false);
                }
                Ok(Outcome {
                    tag: "DROP SCHEMA".into(),
                    notices,
                    ..Outcome::default()
                })
            }
            Plan::Comment { kind, name, text } => {
                let exists = match *kind {
                    "table" => catalog::lookup(txn, name).await?.is_some(),
                    "view" => catalog::lookup_view(txn, name).await?.is_some(),
                    "sequence" => sequence::lookup(txn, name).await?.is_some(),
                    "index" => catalog::index_owner(txn, name).await?.is_some(),
                    "schema" => catalog::schema_exists(txn, name).await?,
                    _ => true, // a column: checked when planned
                };
                if !exists {
                    return Err(match *kind {
                        "schema" => SqlError::new(
                            SqlState("3F000"),
                            format!("schema \"{name}\" does not exist"),
                        ),
                        _ => catalog::undefined_table(name),
                    });
                }
                catalog::set_comment(txn, kind, name, text.as_deref());
                Ok(Outcome {
                    tag: "COMMENT".into(),
                    ..Outcome::default()
                })
            }
            Plan::CreateView { desc, or_replace } => {
                let replacing = catalog::lookup_view(txn, &desc.name).await?.is_some();
                if !(replacing && *or_replace) && relation_exists(txn, &desc.name).await? {
                    return Err(SqlError::new(
                        SqlState::DUPLICATE_TABLE,
                        format!("relation \"{}\" already exists", desc.name),
                    ));
                }
                let zone = self.time_zone();
                let views = match replacing {
                    true => planner::working_views(txn, &zone).await?,
                    false => vec![],
                };
                catalog::put_view(txn, desc)?;
                // Planned again in this transaction, so that what it read is validated at
                // commit: a table dropped or altered meanwhile makes the commit fail.
                planner::plan_stored_view(txn, desc, &zone, &self.search_path()).await?;
                if let Some(dependent) = planner::broken_view(txn, &zone, &views).await? {
                    return Err(SqlError::new(
                        SqlState("42P16"),
                        format!(
                            "cannot change view \"{}\": view {dependent} depends on its columns",
                            desc.name
                        ),
                    ));
                }
                Ok(Outcome {
                    tag: "CREATE VIEW".into(),
                    ..Outcome::default()
                })
            }
            Plan::DropView { names, if_exists } => {
                let mut notices = Vec::new();
                let zone = self.time_zone();
                let views = planner::working_views(txn, &zone).await?;
                for name in names {
                    if catalog::lookup_view(txn, name).await?.is_some() {
                        catalog::drop_view(txn, name);
                    } else if *if_exists {
                        notices.push(Notice {
                            severity: "NOTICE",
                            code: "00000",
                            message: format!("view \"{name}\" does not exist, skipping"),
                        });
                    } else {
                        return Err(SqlError::new(
                            SqlState::UNDEFINED_TABLE,
                            format!("view \"{name}\" does not exist"),
                        ));
                    }
                }
                if let Some(dependent) = planner::broken_view(txn, &zone, &views).await? {
                    return Err(depended_on("view", &names.join(", "), &dependent));
                }
                Ok(Outcome {
                    tag: "DROP VIEW".into(),
                    notices,
                    ..Outcome::default()
                })
            }
            Plan::AlterSequence {
                name,
                if_exists,
                data_type,
                settings,
                restart,
                owned_by,
            } => {
                let Some(current) = sequence::lookup(txn, name).await? else {
                    let message = format!("relation \"{name}\" does not exist");
                    return skip_or_fail(
                        *if_exists,
                        "ALTER SEQUENCE",
                        SqlState::UNDEFINED_TABLE,
                        message,
                    );
                };
                let mut desc = (*current).clone();
                if let Some(ty) = data_type {
                    // Bounds at the old type's limits follow the type, as in PostgreSQL.
                    if desc.max == sequence::type_max(&desc.data_type) {
                        desc.max = sequence::type_max(ty);
                    }
                    if desc.min == sequence::type_min(&desc.data_type) {
                        desc.min = sequence::type_min(ty);
                    }
                    desc.data_type = ty.clone();
                }
                let mut desc = desc.with_settings(settings, false)?;
                // The values already handed out must fit the new bounds (PostgreSQL checks
                // its last value the same way).
                if restart.is_none() {
                    if let Some((next, increment)) = self.engine.sequences.next_reserved(desc.id) {
                        let last = next - i128::from(increment);
                        let (min, max) = (i128::from(desc.min), i128::from(desc.max));
                        if last > max || last < min {
                            let bound = if last > max {
                                format!("cannot be greater than MAXVALUE ({max})")
                            } else {
                                format!("cannot be less than MINVALUE ({min})")
                            };
                            return Err(SqlError::new(
                                SqlState::INVALID_PARAMETER_VALUE,
                                format!("RESTART value ({last}) {bound}"),
                            ));
                        }
                    }
                }
                if let Some(owner) = owned_by {
                    // An identity column's sequence belongs to it for good.
                    if let Some((table, column)) = &current.owned_by {
                        if let Some(owner_table) = catalog::lookup(txn, table).await? {
                            let identity = owner_table
                                .column_index(column)
                                .is_some_and(|i| owner_table.columns[i].identity.is_some());
                            if identity {
                                return Err(SqlError::new(
                                    SqlState::FEATURE_NOT_SUPPORTED,
                                    "cannot change ownership of identity sequence",
                                )
                                .with_detail(format!(
                                    "Sequence \"{name}\" is linked to table \"{table}\"."
                                )));
                            }
                        }
                    }
                    if let Some((table, column)) = owner {
                        let table_desc = catalog::require(txn, table).await?;
                        if table_desc.column_index(column).is_none() {
                            return Err(SqlError::new(
                                SqlState::UNDEFINED_COLUMN,
                                format!(
                                    "column \"{column}\" of relation \"{table}\" does not exist"
                                ),
                            ));
                        }
                    }
                    desc.owned_by = owner.clone();
                }
                sequence::put(txn, &desc)?;
                if let Some(restart) = restart {
                    let from = restart.unwrap_or(desc.start);
                    if from < desc.min {
                        return Err(SqlError::new(
                            SqlState::INVALID_PARAMETER_VALUE,
                            format!(
                                "RESTART value ({from}) cannot be less than MINVALUE ({})",
                                desc.min
                            ),
                        ));
                    }
                    if from > desc.max {
                        return Err(SqlError::new(
                            SqlState::INVALID_PARAMETER_VALUE,
                            format!(
                                "RESTART value ({from}) cannot be greater than MAXVALUE ({})",
                                desc.max
                            ),
                        ));
                    }
                    sequence::restart(
                        txn,
                        &sequence::SequenceDesc {
                            start: from,
                            ..desc.clone()
                        },
                    );
                }
                // Values this process reserved under the old definition are not handed out;
                // without RESTART the sequence goes on from the last value it gave, by the new
                // increment (as in PostgreSQL), rather than past the reserved block.
                if restart.is_none() {
                    if let Some((next, increment)) = self.engine.sequences.next_reserved(desc.id) {
                        let next = next - i128::from(increment) + i128::from(desc.increment);
                        sequence::set_next(txn, desc.id, next);
                    }
                }
                self.engine.sequences.forget(desc.id);
                Ok(Outcome {
                    tag: "ALTER SEQUENCE".into(),
                    ..Outcome::default()
                })
            }
            Plan::DropSequence { names, if_exists } => {
                let mut notices = Vec::new();
                for name in names {
                    match sequence::lookup(txn, name).await? {
                        Some(desc) => {
                            // A SERIAL or IDENTITY column still draws from it.
                            if let Some((table, column)) = &desc.owned_by {
                                if let Some(owner) = catalog::lookup(txn, table).await? {
                                    let owned = sequence::owned_by(txn, &owner).await?;
                                    if owned.iter().any(|o| o.id == desc.id) {
                                        return Err(SqlError::new(
                                            SqlState("2BP01"),
                                            format!(
                                                "cannot drop sequence {name} because other objects depend on it"
                                            ),
                                        )
                                        .with_detail(format!(
                                            "default value for column {column} of table {table} depends on sequence {name}"
                                        ))
                                        .with_hint("Use DROP ... CASCADE to drop the dependent objects too."));
                                    }
                                }
                            }
                            sequence::drop(txn, &desc);
                            self.engine.sequences.forget(desc.id);
                        }
                        None if *if_exists => notices.push(Notice {
                            severity: "NOTICE",
                            code: "00000",
                            message: format!("sequence \"{name}\" does not exist, skipping"),
                        }),
                        None => {
                            return Err(SqlError::new(
                                SqlState::UNDEFINED_TABLE,
                                format!("sequence \"{name}\" does not exist"),
                            ))
                        }
                    }
                }
                Ok(Outcome {
                    tag: "DROP SEQUENCE".into(),
                    notices,
                    ..Outcome::default()
                })
            }
            Plan::CreateTable {
                desc,
                if_not_exists,
                sequences,
            } => {
                if relation_exists(txn, &desc.name).await? {
                    let message = format!("relation \"{}\" already exists", desc.name);
                    return skip_or_fail(
                        *if_not_exists,
                        "CREATE TABLE",
                        SqlState::DUPLICATE_TABLE,
                        message,
                    );
                }
                for index in &desc.indexes {
                    if relation_exists(txn, &index.name).await?
                        || catalog::index_owner(txn, &index.name).await?.is_some()
                    {
                        return Err(SqlError::new(
                            SqlState::DUPLICATE_TABLE,
                            format!("relation \"{}\" already exists", index.name),
                        ));
                    }
                    catalog::set_index_owner(txn, &index.name, Some(&desc.name));
                }
                for owned in sequences {
                    if relation_exists(txn, &owned.name).await? {
                        return Err(SqlError::new(
                            SqlState::DUPLICATE_TABLE,
                            format!("relation \"{}\" already exists", owned.name),
                        ));
                    }
                    sequence::create(txn, owned.clone()).await?;
                }
                let mut desc = desc.clone();
                crate::alter::link_foreign_keys(txn, &mut desc).await?;
                catalog::create(txn, desc).await?;
                Ok(Outcome {
                    tag: "CREATE TABLE".into(),
                    ..Outcome::default()
                })
            }
            Plan::DropTable {
                names,
                if_exists,
                cascade,
            } => {
                let mut notices = Vec::new();
                let zone = self.time_zone();
                let views = planner::working_views(txn, &zone).await?;
                for name in names {
                    if catalog::lookup(txn, name).await?.is_none() {
                        if *if_exists {
                            notices.push(Notice {
                                severity: "NOTICE",
                                code: "00000",
                                message: format!("table \"{name}\" does not exist, skipping"),
                            });
                            continue;
                        }
                        return Err(SqlError::new(
                            SqlState::UNDEFINED_TABLE,
                            format!("table \"{name}\" does not exist"),
                        ));
                    }
                    // The sequences its columns own (SERIAL, IDENTITY, OWNED BY) go with it.
                    if let Some(mut table) = catalog::lookup(txn, name).await? {
                        if *cascade {
                            for dropped in crate::alter::drop_referencing_keys(txn, &table).await? {
                                notices.push(cascade_notice(&dropped));
                            }
                            table = catalog::lookup(txn, name)
                                .await?
                                .ok_or_else(|| catalog::undefined_table(name))?;
                        }
                        crate::alter::unlink_foreign_keys(txn, &table).await?;
                        for owned in sequence::owned_by_table(txn, &table).await? {
                            sequence::drop(txn, &owned);
                            self.engine.sequences.forget(owned.id);
                        }
                        for index in &table.indexes {
                            catalog::set_index_owner(txn, &index.name, None);
                        }
                    }
                    catalog::drop(txn, name);
                }
                while let Some(dependent) = planner::broken_view(txn, &zone, &views).await? {
                    if !*cascade {
                        return Err(depended_on("table", &names.join(", "), &dependent));
                    }
                    catalog::drop_view(txn, &dependent);
                    notices.push(cascade_notice(&format!("view {dependent}")));
                }
                Ok(Outcome {
                    tag: "DROP TABLE".into(),
                    notices,
                    ..Outcome::default()
                })
            }
            _ => {
                let clock = self.engine.db.clock().clone();
                let next_row_id = move || i64::try_from(clock.now().latest.0).unwrap_or(i64::MAX);
                let now_micros = i64::try_from(txn.read_ts().0 / 1_000).unwrap_or(i64::MAX)
                    - POSTGRES_EPOCH_MICROS;
                let random = || {
                    let mut source = self.random.lock().unwrap_or_else(|p| p.into_inner());
                    source.unit()
                };
                // setseed(x): the same seed gives the same random() sequence afterwards.
                let reseed = |seed: f64| {
                    let mut source = self.random.lock().unwrap_or_else(|p| p.into_inner());
                    *source = Jitter::new(seed.to_bits());
                };
                let decorrelation = exec::DecorrelationCache::default();
                let memory = MemoryBudget::new(
                    self.settings
                        .get(memory::SETTING)
                        .and_then(|v| memory::parse_limit(v))
                        .unwrap_or(memory::DEFAULT_LIMIT),
                );
                let zone = self.time_zone();
                let statement_sequences = match sequences.is_empty() {
                    true => StatementSequences::none(),
                    false => {
                        StatementSequences::resolve(
                            &self.engine.db,
                            &self.engine.sequences,
                            &self.sequence_state,
                            txn,
                            sequences,
                        )
                        .await?
                    }
                };
                let copy_data = self.copy_data.clone().unwrap_or_default();
                // current_schema() names the first schema on the path that exists.
                let mut search_path = self.search_path();
                if search_path.iter().any(|schema| schema != "public") {
                    let mut existing = Vec::with_capacity(search_path.len());
                    for schema in search_path.iter() {
                        if schema == "public" || catalog::schema_exists(txn, schema).await? {
                            existing.push(schema.clone());
                        }
                    }
                    search_path = existing.into();
                }
                // pg_cursors' rows: only a statement reading the system catalog needs them.
                let cursors: Vec<(String, bool, bool)> = match system_catalog {
                    true => self
                        .cursors
                        .iter()
                        .map(|(name, cursor)| (name.clone(), cursor.hold, !cursor.no_scroll))
                        .collect(),
                    false => Vec::new(),
                };
                let session = crate::expr::SessionInfo {
                    cursors: &cursors,
                    user: &self.user,
                    database: &self.database,
                    pid: self.backend_pid,
                    search_path: &search_path,
                    settings: &self.settings,
                    advisory: Some((&self.engine.advisory, self.session_id, &self.advisory_used)),
                    sleep: Some(&self.sleep),
                    notify: Some(&self.notify_queue),
                    set_config: Some(&self.set_config_queue),
                    backends: Some(&self.engine.backends),
                };
                let system = match system_catalog {
                    true => Some(crate::system::SystemCatalog::load_complete(txn, &session).await?),
                    false => None,
                };
                let ctx = ExecContext {
                    system: system.as_deref(),
                    batches: (self.block == Block::None).then_some(&self.engine.db),
                    copy_data: &copy_data,
                    session: &session,
                    zone: &zone,
                    sequences: &statement_sequences,
                    memory: &memory,
                    subquery_plans: &[],
                    correlated: &[],
                    outer: &[],
                    working: &[],
                    decorrelation: &decorrelation,
                    random: &random,
                    reseed: &reseed,
                    subqueries: &[],
                    conflicts: &self.engine.conflicts,
                    params,
                    now_micros,
                    cancel: &self.cancel.0,
                    next_row_id: &next_row_id,
                };
                let produced = exec::run(txn, plan, &ctx).await?;
                statement_sequences.finish(txn).await?;
                let copy = match plan {
                    Plan::CopyOut { query, format } => Some(CopyTransfer {
                        incoming: false,
                        format: format.clone(),
                        columns: query.columns().unwrap_or_default(),
                    }),
                    _ => None,
                };
                Ok(Outcome {
                    tag: produced.tag,
                    columns: plan.columns(),
                    rows: produced.rows,
                    copy,
                    ..Outcome::default()
                })
            }
        }
    }

    fn read_only(&self) -> bool {
        match self.block_modes.read_only {
            Some(read_only) if self.block == Block::Open => read_only,
            _ => self
                .settings
                .get("default_transaction_read_only")
                .is_some_and(|v| v == "on"),
        }
    }

    /// Commits the open core transaction, if any; a conflict names the table.
    async fn commit_transaction(&mut self) -> SqlResult<()> {
        let Some(txn) = self.txn.take() else {
            return Ok(());
        };
        match txn.commit().await {
            Ok(_) => Ok(()),
            Err(CoreError::Conflict(conflict)) => Err(self.conflict_error(conflict).await),
            Err(other) => Err(SqlError::from_core(other, |k| k.to_string())),
        }
    }

    /// What the client sees of a write conflict (40001, naming the table and row), recorded
    /// for `cairn_conflicts`.
    async fn conflict_error(&self, mut conflict: Conflict) -> SqlError {
        if conflict.key.as_bytes().first() == Some(&CATALOG_PREFIX) {
            conflict.kind = ConflictKind::Schema;
        }
        let reader = self.engine.db.begin();
        let described = catalog::describe_key(&reader, &conflict.key).await;
        self.engine.conflicts.record(ConflictEntry {
            at_micros: micros_since_2000(self.engine.db.clock().now().latest),
            table: described.table.clone(),
            key: described.key.clone(),
            kind: conflict.kind,
        });
        let text = described.to_string();
        SqlError::from_core(CoreError::Conflict(conflict), |_| text.clone())
    }

    /// COMMIT of a block that set an idempotency key: if a transaction with the key already
    /// committed within the retention window, report success without applying anything;
    /// otherwise commit with a record of the key written in the same transaction, so the key
    /// and the data become durable together (and two attempts racing conflict on the key).
    async fn commit_idempotent(&mut self, key: &str) -> SqlResult<Outcome> {
        let record_key = catalog::idempotency_key(key);
        let mut txn = match self.txn.take() {
            Some(txn) => txn,
            None => self.engine.db.begin_with(self.core_isolation()),
        };
        let now = micros_since_2000(self.engine.db.clock().now().latest);
        if let Some(record) = txn
            .get(&record_key)
            .await
            .map_err(|e| SqlError::from_core(e, |k| k.to_string()))?
        {
            let committed_at = record
                .as_ref()
                .try_into()
                .map(i64::from_be_bytes)
                .unwrap_or(i64::MIN);
            if now.saturating_sub(committed_at) <= IDEMPOTENCY_RETENTION_MICROS {
                let notice = Notice {
                    severity: "NOTICE",
                    code: "00000",
                    message: format!("a transaction with idempotency key \"{key}\" already committed; nothing was applied again"),
                };
                return Ok(Outcome {
                    tag: "COMMIT".into(),
                    notices: vec![notice],
                    ..Outcome::default()
                });
            }
        }
        txn.put(
            record_key,
            bytes::Bytes::copy_from_slice(&now.to_be_bytes()),
        );
        self.txn = Some(txn);
        self.commit_transaction().await?;
        if self.engine.crash_after_commit_with_key.as_deref() == Some(key) {
            // Test hook (CAIRN_FAULT_CRASH_AFTER_COMMIT_KEY): die after the commit is durable
            // and before the client hears of it, exactly the case idempotency keys exist for.
            std::process::abort();
        }
        Ok(Outcome {
            tag: "COMMIT".into(),
            ..Outcome::default()
        })
    }

    fn begin(&mut self, modes: &TxnModes) -> SqlResult<Outcome> {
        if matches!(self.block, Block::Open | Block::Failed) {
            let notice = warning("25001", "there is already a transaction in progress");
            return Ok(Outcome {
                tag: "BEGIN".into(),
                notices: vec![notice],
                ..Outcome::default()
            });
        }
        self.block = Block::Open;
        self.block_modes = modes.clone();
        self.txn = None;
        Ok(Outcome {
            tag: "BEGIN".into(),
            ..Outcome::default()
        })
    }

    async fn commit(&mut self) -> SqlResult<Outcome> {
        match self.block {
            Block::None | Block::Implicit => {
                let notice = warning("25P01", "there is no transaction in progress");
                Ok(Outcome {
                    tag: "COMMIT".into(),
                    notices: vec![notice],
                    ..Outcome::default()
                })
            }
            Block::Failed => Ok(self.rollback()),
            Block::Open => {
                let idempotency_key = self.settings.get(IDEMPOTENCY_KEY).cloned();
                let result = match idempotency_key {
                    Some(key) => self.commit_idempotent(&key).await,
                    None => self.commit_transaction().await.map(|()| Outcome {
                        tag: "COMMIT".into(),
                        ..Outcome::default()
                    }),
                };
                // A commit that fails rolls the block back, settings included.
                let changes = self.end_block(result.is_ok());
                result.map(|outcome| Outcome {
                    parameter_changes: changes,
                    ..outcome
                })
            }
        }
    }

    /// 25P01 outside a transaction block, 25P02 in a failed one.
    fn require_open_block(&self, statement: &str) -> SqlResult<()> {
        match self.block {
            Block::Open => Ok(()),
            Block::Failed => Err(SqlError::new(
                SqlState::IN_FAILED_SQL_TRANSACTION,
                "current transaction is aborted, commands ignored until end of transaction block",
            )),
            Block::None | Block::Implicit => Err(SqlError::new(
                SqlState::NO_ACTIVE_SQL_TRANSACTION,
                format!("{statement} can only be used in transaction blocks"),
            )),
        }
    }

    fn savepoint(&mut self, name: &str) -> SqlResult<Outcome> {
        self.require_open_block("SAVEPOINT")?;
        let isolation = self.core_isolation();
        let engine = self.engine.clone();
        let txn = self
            .txn
            .get_or_insert_with(|| engine.db.begin_with(isolation));
        let writes = txn.mark();
        self.savepoints.push(Savepoint {
            name: name.to_string(),
            writes,
            advisory: self
                .with_advisory(|locks, session| locks.xact_mark(session))
                .unwrap_or(0),
            cursors: self.cursors.keys().cloned().collect(),
            listens: self.pending_listens.len(),
            notifies: self.pending_notifies.len(),
            settings: self.settings.clone(),
            local_saved: self.local_saved.clone(),
            block_start: self.block_start.clone(),
        });
        Ok(Outcome {
            tag: "SAVEPOINT".into(),
            ..Outcome::default()
        })
    }

    /// The position of the newest savepoint named `name` (3B001 if none).
    fn find_savepoint(&self, name: &str) -> SqlResult<usize> {
        self.savepoints
            .iter()
            .rposition(|s| s.name == name)
            .ok_or_else(|| {
                SqlError::new(
                    SqlState("3B001"),
                    format!("savepoint \"{name}\" does not exist"),
                )
            })
    }

    fn release_savepoint(&mut self, name: &str) -> SqlResult<Outcome> {
        self.require_open_block("RELEASE SAVEPOINT")?;
        let position = self.find_savepoint(name)?;
        // It and every savepoint set after it go; their writes stay.
        self.savepoints.truncate(position);
        Ok(Outcome {
            tag: "RELEASE".into(),
            ..Outcome::default()
        })
    }

    /// Undoes an attempt's writes back to `mark` (the transaction began with the attempt if
    /// there is none).
    fn undo_writes(&mut self, mark: Option<&cairn_qp::WriteMark>) -> SqlResult<()> {
        match (self.txn.as_mut(), mark) {
            (Some(txn), Some(mark)) => txn.rollback_to(mark).map_err(crate::exec::core),
            _ => {
                self.txn = None;
                Ok(())
            }
        }
    }

    fn rollback_to_savepoint(&mut self, name: &str) -> SqlResult<Outcome> {
        if matches!(self.block, Block::None | Block::Implicit) {
            return Err(SqlError::new(
                SqlState::NO_ACTIVE_SQL_TRANSACTION,
                "ROLLBACK TO SAVEPOINT can only be used in transaction blocks",
            ));
        }
        let position = self.find_savepoint(name)?;
        // Savepoints set after it go; it stays, to be rolled back to again.
        self.savepoints.truncate(position + 1);
        let savepoint = &self.savepoints[position];
        if let Some(txn) = self.txn.as_mut() {
            txn.rollback_to(&savepoint.writes)
                .map_err(crate::exec::core)?;
        }
        let mark = savepoint.advisory;
        self.with_advisory(|locks, session| locks.release_xact_after(session, mark));
        // Cursors declared, and LISTEN / NOTIFY asked, since the savepoint are undone.
        let (open, listens, notifies) = (
            savepoint.cursors.clone(),
            savepoint.listens,
            savepoint.notifies,
        );
        self.cursors.retain(|name, _| open.contains(name));
        self.pending_listens.truncate(listens);
        self.pending_notifies.truncate(notifies);
        let settings = savepoint.settings.clone();
        self.local_saved = savepoint.local_saved.clone();
        self.block_start = savepoint.block_start.clone();
        let mut parameter_changes = Vec::new();
        for key in REPORTED {
            let after = settings.get(*key);
            if self.settings.get(*key) != after {
                parameter_changes.push((key.to_string(), after.cloned().unwrap_or_default()));
            }
        }
        self.settings = settings;
        self.block = Block::Open;
        Ok(Outcome {
            tag: "ROLLBACK".into(),
            parameter_changes,
            ..Outcome::default()
        })
    }

    fn rollback(&mut self) -> Outcome {
        let notices = if matches!(self.block, Block::None | Block::Implicit) {
            vec![warning("25P01", "there is no transaction in progress")]
        } else {
            vec![]
        };
        let parameter_changes = self.end_block(false);
        Outcome {
            tag: "ROLLBACK".into(),
            notices,
            parameter_changes,
            ..Outcome::default()
        }
    }

    fn set_transaction(&mut self, modes: &TxnModes, session: bool) -> SqlResult<Outcome> {
        if session {
            if let Some(isolation) = modes.isolation {
                self.settings
                    .insert("default_transaction_isolation".into(), isolation.into());
            }
            if let Some(read_only) = modes.read_only {
                self.settings.insert(
                    "default_transaction_read_only".into(),
                    if read_only { "on" } else { "off" }.into(),
                );
            }
            return Ok(Outcome {
                tag: "SET".into(),
                ..Outcome::default()
            });
        }
        if self.block != Block::Open {
            let notice = warning(
                "25P01",
                "SET TRANSACTION can only be used in transaction blocks",
            );
            return Ok(Outcome {
                tag: "SET".into(),
                notices: vec![notice],
                ..Outcome::default()
            });
        }
        if self.txn.is_some() && modes.isolation.is_some() {
            return Err(SqlError::new(
                SqlState::ACTIVE_SQL_TRANSACTION,
                "SET TRANSACTION ISOLATION LEVEL must be called before any query",
            ));
        }
        if modes.isolation.is_some() {
            self.block_modes.isolation = modes.isolation;
        }
        if modes.read_only.is_some() {
            self.block_modes.read_only = modes.read_only;
        }
        Ok(Outcome {
            tag: "SET".into(),
            ..Outcome::default()
        })
    }

    fn set(&mut self, name: &str, value: Option<&str>) -> SqlResult<Outcome> {
        if name == "all" && value.is_none() {
            // RESET ALL: every settable parameter back to its default.
            let defaults = default_settings("postgres");
            let mut parameter_changes = Vec::new();
            for (key, default) in defaults {
                if READ_ONLY.contains(&key.as_str()) || key == "session_authorization" {
                    continue;
                }
                if self.settings.get(&key) != Some(&default) {
                    self.remember_block_start(&key);
                    if REPORTED.contains(&key.as_str()) {
                        parameter_changes.push((key.clone(), default.clone()));
                    }
                    self.settings.insert(key, default);
                }
            }
            return Ok(Outcome {
                tag: "RESET".into(),
                parameter_changes,
                ..Outcome::default()
            });
        }
        let key = canonical(name);
        if READ_ONLY.contains(&key.as_str()) {
            return Err(SqlError::new(
                SqlState("55P02"),
                format!("parameter \"{name}\" cannot be changed"),
            ));
        }
        let known = self.settings.contains_key(&key) || key.contains('.');
        if !known {
            return Err(SqlError::new(
                SqlState::UNDEFINED_OBJECT,
                format!("unrecognized configuration parameter \"{name}\""),
            ));
        }
        let value = match value {
            None => default_settings("postgres")
                .get(&key)
                .cloned()
                .unwrap_or_default(),
            Some(v) => validate_setting(&key, v)?,
        };
        let changed = self.settings.get(&key) != Some(&value);
        self.remember_block_start(&key);
        self.settings.insert(key.clone(), value.clone());
        let parameter_changes = if changed && REPORTED.contains(&key.as_str()) {
            vec![(key, value)]
        } else {
            vec![]
        };
        Ok(Outcome {
            tag: "SET".into(),
            parameter_changes,
            ..Outcome::default()
        })
    }

    fn show(&self, name: &str) -> SqlResult<Outcome> {
        if name == "all" {
            let mut rows: Vec<Vec<Value>> = self
                .settings
                .iter()
                .map(|(k, v)| {
                    vec![
                        Value::Text(k.clone()),
                        Value::Text(v.clone()),
                        Value::Text(String::new()),
                    ]
                })
                .collect();
            for (k, v) in [
                ("transaction_isolation", self.isolation()),
                ("transaction_read_only", self.read_only_text()),
            ] {
                rows.push(vec![
                    Value::Text(k.into()),
                    Value::Text(v),
                    Value::Text(String::new()),
                ]);
            }
            rows.sort_by(|a, b| crate::types::ops::total_cmp(&a[0], &b[0]));
            let columns = Plan::Show("all".into()).columns();
            return Ok(Outcome {
                tag: "SHOW".into(),
                columns,
                rows,
                ..Outcome::default()
            });
        }
        let value = self.parameter(name).ok_or_else(|| {
            SqlError::new(
                SqlState::UNDEFINED_OBJECT,
                format!("unrecognized configuration parameter \"{name}\""),
            )
        })?;
        let columns = Some(vec![Column {
            name: canonical(name),
            data_type: DataType::Text,
        }]);
        Ok(Outcome {
            tag: "SHOW".into(),
            columns,
            rows: vec![vec![Value::Text(value)]],
            ..Outcome::default()
        })
    }

    /// The core's isolation for the next transaction this session starts.
    fn core_isolation(&self) -> cairn_qp::Isolation {
        if self.isolation() == "serializable" {
            cairn_qp::Isolation::Serializable
        } else {
            cairn_qp::Isolation::Snapshot
        }
    }

    fn isolation(&self) -> String {
        match self.block_modes.isolation {
            Some(level) if self.block == Block::Open => level.to_string(),
            _ => self
                .settings
                .get("default_transaction_isolation")
                .cloned()
                .unwrap_or_else(|| "repeatable read".into()),
        }
    }

    fn read_only_text(&self) -> String {
        if self.read_only() { "on" } else { "off" }.into()
    }

    /// The transaction state for ReadyForQuery.
    pub fn transaction_status(&self) -> TxStatus {
        match self.block {
            Block::None | Block::Implicit => TxStatus::Idle,
            Block::Open => TxStatus::InBlock,
            Block::Failed => TxStatus::Failed,
        }
    }

    /// The value of a session parameter (as SHOW prints it), if it exists.
    pub fn parameter(&self, name: &str) -> Option<String> {
        let key = canonical(&planner::normalize_parameter(name));
        match key.as_str() {
            "transaction_isolation" => Some(self.isolation()),
            "transaction_read_only" => Some(self.read_only_text()),
            _ => self.settings.get(&key).cloned(),
        }
    }

    /// How many simple-protocol statements ran the plan kept for their text's shape instead
    /// of being planned (see `session/shape_plans.rs`).
    pub fn shape_plan_runs(&self) -> u64 {
        self.shape_plan_runs
    }

    /// The session's `TimeZone` setting.
    pub fn time_zone(&self) -> TimeZone {
        let Some(setting) = self.settings.get("TimeZone") else {
            return TimeZone::utc();
        };
        self.looked_up_time_zone.get(setting, |name| {
            TimeZone::named(name).unwrap_or_else(TimeZone::utc)
        })
    }

    /// The schemas of the session's `search_path`, in order: quoted names as written, others
    /// folded to lower case. `"$user"` (a schema named after the user) and the system schemas
    /// are not followed.
    pub fn search_path(&self) -> Arc<[String]> {
        let setting = self
            .settings
            .get("search_path")
            .map_or("public", String::as_str);
        self.parsed_search_path.get(setting, |setting| {
            setting
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(
                    |s| match s.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
                        Some(quoted) => quoted.to_string(),
                        None => s.to_lowercase(),
                    },
                )
                .filter(|s| !matches!(s.as_str(), "$user" | "pg_catalog" | "pg_temp"))
                .collect()
        })
    }

    /// The parameters reported to the client at startup with ParameterStatus, and their values.
    pub fn reported_parameters(&self) -> Vec<(String, String)> {
        REPORTED
            .iter()
            .filter_map(|name| {
                self.settings
                    .get(*name)
                    .map(|v| (name.to_string(), v.clone()))
            })
            .collect()
    }

    /// Sets a parameter from the startup message (application_name, client_encoding, ...);
    /// unknown or invalid ones are errors, as PostgreSQL's FATAL at startup.
    pub fn set_startup_parameter(&mut self, name: &str, value: &str) -> SqlResult<()> {
        let key = canonical(&name.to_lowercase());
        if matches!(
            key.as_str(),
            "user" | "database" | "replication" | "options"
        ) {
            return Ok(());
        }
        self.set(&key, Some(value))?;
        // What RESET ALL and DISCARD ALL go back to.
        self.startup_settings = self.settings.clone();
        Ok(())
    }

    /// A token another task can use to cancel this session's running statement.
    pub fn cancel_token(&self) -> CancelToken {
        self.cancel.clone()
    }

    /// Called when the client goes away: rolls back any open transaction.
    pub fn close(&mut self) {
        self.end_block(false);
        self.apply_listen(None, false);
        self.with_advisory(|locks, session| locks.release_session(session));
        self.engine
            .backends
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.backend_pid);
    }
}

fn isolation_name(value: &str) -> SqlResult<&'static str> {
    Ok(match value.to_lowercase().as_str() {
        "read uncommitted" => "read uncommitted",
        "read committed" => "read committed",
        "repeatable read" => "repeatable read",
        "serializable" => "serializable",
        _ => {
            return Err(SqlError::new(
                SqlState::INVALID_PARAMETER_VALUE,
                format!(
                    "invalid value for parameter \"default_transaction_isolation\": \"{value}\""
                ),
            ))
        }
    })
}

/// What a setting's text was last turned into, for values every statement asks for and a
/// `SET` rarely changes: worked out again only when the text differs.
struct SettingMemo<T>(std::sync::Mutex<Option<(String, T)>>);

impl<T> Default for SettingMemo<T> {
    fn default() -> Self {
        SettingMemo(std::sync::Mutex::new(None))
    }
}

impl<T: Clone> SettingMemo<T> {
    fn get(&self, text: &str, work_out: impl FnOnce(&str) -> T) -> T {
        let mut memo = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((memo_text, value)) = &*memo {
            if memo_text == text {
                return value.clone();
            }
        }
        let value = work_out(text);
        *memo = Some((text.to_string(), value.clone()));
        value
    }
}

/// A time setting in milliseconds: a number with an optional unit (us, ms, s, min, h, d;
/// none is ms), as PostgreSQL reads it.
fn parse_millis(text: &str) -> Option<f64> {
    // Without allocating: every statement reads statement_timeout through here. Units are
    // case-sensitive, as in PostgreSQL.
    const UNITS: [(&str, f64); 7] = [
        ("", 1.0),
        ("ms", 1.0),
        ("us", 0.001),
        ("s", 1000.0),
        ("min", 60_000.0),
        ("h", 3_600_000.0),
        ("d", 86_400_000.0),
    ];
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.' && c != '-' && c != '+')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let unit = unit.trim();
    let (_, factor) = UNITS.iter().find(|(name, _)| unit == *name)?;
    Some(number * factor)
}

/// Milliseconds as SHOW prints a time setting: in the largest unit that divides them.
fn format_millis(millis: i64) -> String {
    if millis == 0 {
        return "0".into();
    }
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("min", 60_000),
        ("s", 1000),
    ] {
        if millis % size == 0 {
            return format!("{}{unit}", millis / size);
        }
    }
    format!("{millis}ms")
}

fn validate_setting(key: &str, value: &str) -> SqlResult<String> {
    let invalid = || {
        SqlError::new(
            SqlState::INVALID_PARAMETER_VALUE,
            format!("invalid value for parameter \"{key}\": \"{value}\""),
        )
    };
    Ok(match key {
        "statement_timeout" | "lock_timeout" | "idle_in_transaction_session_timeout" => {
            let millis = parse_millis(value).ok_or_else(invalid)?.round();
            if !(0.0..=f64::from(i32::MAX)).contains(&millis) {
                return Err(SqlError::new(
                    SqlState::INVALID_PARAMETER_VALUE,
                    format!(
                        "{millis} ms is outside the valid range for parameter \"{key}\" (0 .. 2147483647)"
                    ),
                ));
            }
            format_millis(millis as i64)
        }
        // asyncpg sends `'utf-8'`, quotes included.
        "client_encoding" => match value
            .trim_matches('\'')
            .to_uppercase()
            .replace(['-', '_'], "")
            .as_str()
        {
            "UTF8" | "UNICODE" => "UTF8".into(),
            // What psql asks for under the C locale: no conversion, bytes pass as they are.
            "SQLASCII" => "SQL_ASCII".into(),
            _ => {
                return Err(SqlError::unsupported(format!(
                    "encoding \"{value}\" is not supported: Cairn speaks UTF8 only"
                )))
            }
        },
        // Reported as the tz database spells the name (`america/new_york` is
        // `America/New_York`).
        "TimeZone" => match TimeZone::named(value) {
            Some(zone) => zone.name().to_string(),
            None => return Err(invalid()),
        },
        "DateStyle" => {
            let upper = value.to_uppercase();
            if upper.contains("ISO") || upper == "MDY" {
                "ISO, MDY".into()
            } else {
                return Err(invalid().with_hint("Cairn supports only DateStyle ISO for now."));
            }
        }
        "bytea_output" if value != "hex" => return Err(invalid()),
        memory::SETTING => match memory::parse_limit(value) {
            Some(bytes) => memory::format_bytes(bytes),
            None => {
                return Err(
                    invalid().with_hint("A size such as 64MB or 1GB; a bare number is kilobytes.")
                )
            }
        },
        "default_transaction_read_only" | "standard_conforming_strings" => match value
            .to_lowercase()
            .as_str()
        {
            "on" | "true" | "1" | "yes" => "on".into(),
            "off" | "false" | "0" | "no" if key != "standard_conforming_strings" => "off".into(),
            _ => return Err(invalid()),
        },
        "default_transaction_isolation" => isolation_name(value)?.to_string(),
        _ => value.to_string(),
    })
}

/// Whether a table, sequence or view (one namespace, as PostgreSQL's relations) is named
/// `name`.
/// 3F000 if `name` (`s.t`) is in a schema that does not exist.
async fn require_schema(txn: &mut Transaction, name: &str) -> SqlResult<()> {
    if let Some(schema) = crate::plan::schema_of(name) {
        if !catalog::schema_exists(txn, schema).await? {
            return Err(SqlError::new(
                SqlState("3F000"),
                format!("schema \"{schema}\" does not exist"),
            ));
        }
    }
    Ok(())
}

async fn relation_exists(txn: &mut Transaction, name: &str) -> SqlResult<bool> {
    require_schema(txn, name).await?;
    Ok(catalog::lookup(txn, name).await?.is_some()
        || sequence::lookup(txn, name).await?.is_some()
        || catalog::lookup_view(txn, name).await?.is_some()
        || catalog::index_owner(txn, name).await?.is_some())
}
