//! Background jobs: index builds that write the entries of a table's existing rows in
//! bounded batches while writers carry on (CREATE INDEX ASYNC, CREATE INDEX CONCURRENTLY).
//!
//! The statement commits the index's definition marked `building`, and a job record. From
//! then on every writer keeps the index's entries for the rows it writes (a writer that
//! planned with the old definition fails its commit with a schema conflict), and the job
//! writes entries for the rows that were there: each batch is one transaction that reads a
//! page of rows and writes their entries. A writer that changes or deletes one of those rows
//! meanwhile writes (deletes) that row's old entry key too, so the two conflict at commit and
//! the batch retries (with a smaller page) rather than leave a stale entry; a writer inserting
//! a value a unique entry already names conflicts the same way. The last batch clears
//! `building` in its transaction; from then on queries read the index. A duplicate found by a
//! unique index's back-fill fails the job, and the index goes with all its entries, so no
//! half-built index is ever read.
//!
//! Job records are catalog keys: `cairn_jobs` shows them at the reader's snapshot, and a
//! restarted server resumes the jobs still running from the last committed batch.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cairn_qp::Transaction;
use cairn_types::{Key, KeyRange};
use serde::{Deserialize, Serialize};

use crate::catalog::{self, ColumnDesc, TableDesc, CATALOG_PREFIX};
use crate::error::{SqlError, SqlResult, SqlState};
use crate::exec;
use crate::session::Engine;
use crate::types::timezone::TimeZone;
use crate::types::{DataType, Value};

/// The id of the built-in `cairn_jobs` view (no rows in storage).
pub const JOBS_VIEW_ID: u32 = u32::MAX - 1;
/// The name of the view of background jobs.
pub const JOBS_VIEW: &str = "cairn_jobs";

/// Rows a batch reads at most; a batch that conflicts retries with half as many.
const MAX_BATCH: usize = 512;
/// How long a conflicted batch waits before its retry, at most.
const MAX_BACKOFF: Duration = Duration::from_millis(50);

/// A background job, as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobDesc {
    /// Never reused.
    pub id: u64,
    /// The table whose rows it reads.
    pub table: String,
    /// That table's id when the job last ran (TRUNCATE gives it a new one, with no rows).
    pub table_id: u32,
    /// The index it builds.
    pub index: String,
    /// Running, completed or failed.
    pub state: JobState,
    /// Rows back-filled so far.
    pub rows_done: u64,
    /// Rows the table had when the job started.
    pub rows_total: Option<u64>,
    /// The key of the last row back-filled: the next batch starts after it.
    pub resume_after: Option<Vec<u8>>,
    /// Why it failed.
    pub error: Option<JobError>,
}

/// What a failed job reports: the error its statement would have returned.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobError {
    /// SQLSTATE.
    pub code: String,
    /// The message.
    pub message: String,
    /// The detail, if any.
    pub detail: Option<String>,
}

/// Where a job is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobState {
    /// Back-filling.
    Running,
    /// Done: the index is in use.
    Completed,
    /// Stopped by an error: the index is gone.
    Failed,
}

impl JobState {
    fn name(self) -> &'static str {
        match self {
            JobState::Running => "running",
            JobState::Completed => "completed",
            JobState::Failed => "failed",
        }
    }
}

impl JobError {
    /// The error a statement waiting for the job returns.
    pub fn to_sql_error(&self) -> SqlError {
        let error = SqlError::new(SqlState(state_code(&self.code)), self.message.clone());
        match &self.detail {
            Some(detail) => error.with_detail(detail.clone()),
            None => error,
        }
    }
}

/// A stored SQLSTATE as the static code errors carry (unknown ones as XX000).
fn state_code(code: &str) -> &'static str {
    const KNOWN: [&str; 6] = ["23505", "23502", "42P01", "42704", "40001", "57014"];
    KNOWN.into_iter().find(|k| *k == code).unwrap_or("XX000")
}

fn job_key(id: u64) -> Key {
    let mut key = jobs_prefix();
    key.extend_from_slice(&id.to_be_bytes());
    Key::from(key)
}

fn jobs_prefix() -> Vec<u8> {
    let mut key = vec![CATALOG_PREFIX];
    key.extend_from_slice(b"j/");
    key
}

fn next_job_id_key() -> Key {
    let mut key = vec![CATALOG_PREFIX];
    key.extend_from_slice(b"next_job_id");
    Key::from(key)
}

fn core(e: cairn_types::Error) -> SqlError {
    SqlError::from_core(e, |k| k.to_string())
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> SqlError {
    SqlError::new(
        SqlState::DATA_CORRUPTED,
        format!("job record {what} is damaged: {e}"),
    )
}

/// Records a new running job building `index` of `table`, in the transaction; returns its id.
pub async fn create(txn: &mut Transaction, table: &TableDesc, index: &str) -> SqlResult<u64> {
    let counter = next_job_id_key();
    let id = match txn.get(&counter).await.map_err(core)? {
        None => 1,
        Some(bytes) => {
            let raw: [u8; 8] = bytes
                .as_ref()
                .try_into()
                .map_err(|_| corrupt("next_job_id", "not 8 bytes"))?;
            u64::from_be_bytes(raw)
        }
    };
    txn.put(counter, Bytes::copy_from_slice(&(id + 1).to_be_bytes()));
    put(
        txn,
        &JobDesc {
            id,
            table: table.name.clone(),
            table_id: table.id,
            index: index.to_string(),
            state: JobState::Running,
            rows_done: 0,
            rows_total: None,
            resume_after: None,
            error: None,
        },
    )?;
    Ok(id)
}

fn put(txn: &mut Transaction, job: &JobDesc) -> SqlResult<()> {
    let encoded = postcard::to_allocvec(job)
        .map_err(|e| SqlError::internal(format!("encoding job record: {e}")))?;
    txn.put(job_key(job.id), Bytes::from(encoded));
    Ok(())
}

/// Job `id` at the transaction's snapshot (a validated read: a batch and a failure racing
/// on one job cannot both commit).
pub async fn load(txn: &mut Transaction, id: u64) -> SqlResult<Option<JobDesc>> {
    let key = job_key(id);
    let found = txn.get(&key).await.map_err(core)?;
    txn.validate_read(key);
    found
        .map(|bytes| postcard::from_bytes(&bytes).map_err(|e| corrupt(&id.to_string(), e)))
        .transpose()
}

/// Every job at the transaction's snapshot, oldest first.
pub async fn all(txn: &mut Transaction) -> SqlResult<Vec<JobDesc>> {
    const PAGE: usize = 256;
    let mut range = KeyRange::prefix(Key::from(jobs_prefix()));
    let mut jobs = Vec::new();
    loop {
        let page = txn.scan(&range, PAGE).await.map_err(core)?;
        let full = page.len() == PAGE;
        for (key, bytes) in &page {
            jobs.push(postcard::from_bytes(bytes).map_err(|e| corrupt(&format!("{key:?}"), e))?);
        }
        match page.last() {
            Some((last, _)) if full => range.start = exec::key_after(last),
            _ => return Ok(jobs),
        }
    }
}

/// The built-in view of background jobs: one row per job, at the reader's snapshot.
pub fn jobs_view() -> TableDesc {
    let column = |name: &str, data_type: DataType| ColumnDesc::new(name, data_type);
    TableDesc::without_storage(
        JOBS_VIEW_ID,
        JOBS_VIEW,
        vec![
            column("job_id", DataType::Int8),
            column("kind", DataType::Text),
            column("table_name", DataType::Text),
            column("object_name", DataType::Text),
            column("state", DataType::Text),
            column("rows_done", DataType::Int8),
            column("rows_total", DataType::Int8),
            column("error", DataType::Text),
        ],
    )
}

/// The rows of `cairn_jobs`.
pub async fn view_rows(txn: &mut Transaction) -> SqlResult<Vec<Vec<Value>>> {
    let int = |n: u64| Value::Int8(i64::try_from(n).unwrap_or(i64::MAX));
    Ok(all(txn)
        .await?
        .into_iter()
        .map(|job| {
            vec![
                int(job.id),
                Value::Text("CREATE INDEX".into()),
                Value::Text(job.table),
                Value::Text(job.index),
                Value::Text(job.state.name().into()),
                int(job.rows_done),
                job.rows_total.map_or(Value::Null, int),
                job.error.map_or(Value::Null, |e| Value::Text(e.message)),
            ]
        })
        .collect())
}

/// Starts running job `id` in the background.
pub fn spawn(engine: Arc<Engine>, id: u64) -> tokio::task::JoinHandle<()> {
    engine
        .clone()
        .spawn_background(async move { run(&engine, id).await })
}

/// Starts every job a stopped server left running.
pub async fn resume(engine: &Arc<Engine>) -> SqlResult<()> {
    let mut txn = engine.db.begin();
    for job in all(&mut txn).await? {
        if job.state == JobState::Running {
            tracing::info!(job = job.id, index = %job.index, "resuming index build");
            spawn(engine.clone(), job.id);
        }
    }
    Ok(())
}

/// Runs job `id` to its end: batch after batch; a conflicted batch retries smaller, any other
/// error fails the job.
async fn run(engine: &Engine, id: u64) {
    let mut batch = MAX_BATCH;
    let mut attempt: u32 = 0;
    loop {
        match step(engine, id, batch).await {
            Ok(true) => return,
            Ok(false) => {
                attempt = 0;
                batch = (batch * 2).min(MAX_BATCH);
            }
            Err(e) if e.state == SqlState::SERIALIZATION_FAILURE => {
                attempt = attempt.saturating_add(1);
                batch = (batch / 2).max(1);
                let wait = (Duration::from_millis(1) * attempt).min(MAX_BACKOFF);
                engine.db.clock().sleep(wait).await;
            }
            Err(e) => {
                fail(engine, id, &e).await;
                return;
            }
        }
    }
}

/// One batch: entries for up to `batch` rows after the last batch's, committed with the
/// job's progress; the last one also puts the index in use. `Ok(true)` once the job is over.
async fn step(engine: &Engine, id: u64, batch: usize) -> SqlResult<bool> {
    let mut txn = engine.db.begin();
    let Some(mut job) = load(&mut txn, id).await? else {
        return Ok(true);
    };
    if job.state != JobState::Running {
        return Ok(true);
    }
    let gone = || {
        SqlError::new(
            SqlState::UNDEFINED_OBJECT,
            format!(
                "index \"{}\" of table \"{}\" was dropped or renamed while it was being built",
                job.index, job.table
            ),
        )
    };
    let Some(table) = catalog::lookup(&mut txn, &job.table).await? else {
        return Err(gone());
    };
    let Some(position) = table
        .indexes
        .iter()
        .position(|i| i.name == job.index && i.building)
    else {
        return Err(gone());
    };
    if table.id != job.table_id {
        // Emptied by TRUNCATE (its entries went with its old id): start again.
        job.table_id = table.id;
        job.resume_after = None;
        job.rows_done = 0;
        job.rows_total = None;
    }
    if job.rows_total.is_none() {
        job.rows_total = Some(count_rows(&mut txn, &table).await?);
    }
    let index = &table.indexes[position];
    let mut range = table.all_rows();
    if let Some(after) = &job.resume_after {
        range.start = exec::key_after(&Key::from(after.clone()));
    }
    let page = txn.scan(&range, batch).await.map_err(core)?;
    let last = match page.len() == batch {
        true => page.last().map(|(key, _)| key.clone()),
        false => None,
    };
    let zone = TimeZone::utc();
    for (_, bytes) in &page {
        let row = exec::decode_table_row(&table, bytes)?;
        let (entry, names_row) = table.index_entry(index, &row);
        if index.unique {
            // A writer may have written this row's entry already; another row's is a duplicate.
            if let Some(existing) = txn.get(&entry).await.map_err(core)? {
                if existing != names_row {
                    return Err(SqlError::new(
                        SqlState::UNIQUE_VIOLATION,
                        format!("could not create unique index \"{}\"", index.name),
                    )
                    .with_detail(format!(
                        "Key ({})=({}) is duplicated.",
                        exec::key_names(&table, &index.columns),
                        exec::key_text(&table, &index.columns, &row, &zone)
                    )));
                }
            }
        }
        txn.put(entry, names_row);
    }
    job.rows_done += page.len() as u64;
    let finished = last.is_none();
    match &last {
        Some(key) => job.resume_after = Some(key.as_bytes().to_vec()),
        None => {
            let mut desc = (*table).clone();
            desc.indexes[position].building = false;
            catalog::put(&mut txn, &desc)?;
            job.state = JobState::Completed;
            job.resume_after = None;
        }
    }
    put(&mut txn, &job)?;
    txn.commit().await.map_err(core)?;
    if finished {
        tracing::info!(job = id, index = %job.index, rows = job.rows_done, "index built");
    }
    Ok(finished)
}

/// How many rows `table` has at the transaction's snapshot.
async fn count_rows(txn: &mut Transaction, table: &TableDesc) -> SqlResult<u64> {
    const PAGE: usize = 1024;
    let mut range = table.all_rows();
    let mut count = 0u64;
    loop {
        let page = txn.scan(&range, PAGE).await.map_err(core)?;
        count += page.len() as u64;
        match page.last() {
            Some((last, _)) if page.len() == PAGE => range.start = exec::key_after(last),
            _ => return Ok(count),
        }
    }
}

/// Ends job `id` with `error`: the index and its entries go (if still there), in the
/// transaction that records the failure.
async fn fail(engine: &Engine, id: u64, error: &SqlError) {
    tracing::warn!(job = id, %error.message, "index build failed");
    for _ in 0..100 {
        match record_failure(engine, id, error).await {
            Ok(()) => return,
            Err(e) if e.state == SqlState::SERIALIZATION_FAILURE => {
                engine.db.clock().sleep(MAX_BACKOFF).await;
            }
            Err(e) => {
                tracing::error!(job = id, %e.message, "recording an index build's failure");
                return;
            }
        }
    }
}

async fn record_failure(engine: &Engine, id: u64, error: &SqlError) -> SqlResult<()> {
    let mut txn = engine.db.begin();
    let Some(mut job) = load(&mut txn, id).await? else {
        return Ok(());
    };
    if job.state != JobState::Running {
        return Ok(());
    }
    if let Some(table) = catalog::lookup(&mut txn, &job.table).await? {
        if let Some(position) = table
            .indexes
            .iter()
            .position(|i| i.name == job.index && i.building)
        {
            let mut desc = (*table).clone();
            let index = desc.indexes.remove(position);
            crate::alter::delete_entries(&mut txn, &desc, &index).await?;
            catalog::set_index_owner(&mut txn, &index.name, None);
            catalog::put(&mut txn, &desc)?;
        }
    }
    job.state = JobState::Failed;
    job.resume_after = None;
    job.error = Some(JobError {
        code: error.state.0.to_string(),
        message: error.message.clone(),
        detail: error.detail.clone(),
    });
    put(&mut txn, &job)?;
    txn.commit().await.map_err(core)?;
    Ok(())
}
