//! Execution: runs a [`Plan`] inside a transaction of the core and produces rows.
//!
//! Rows are read from storage through the transaction (so they include its own writes),
//! decoded, filtered, locked if asked, then aggregated, projected, sorted and limited in
//! memory: the shape of OLTP statements, which touch few rows. A full scan reads the table in
//! pages, checking for cancellation between pages.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::Arc;

use bytes::Bytes;
use cairn_qp::Transaction;
use cairn_types::{Key, KeyRange};

use crate::catalog::TableDesc;
use crate::error::{SqlError, SqlResult, SqlState};
use crate::expr::{
    truth, AggCall, AggFunc, EvalContext, Expr, Frame, FrameBound, FrameUnits, SubqueryRows,
};
use crate::memory::{row_bytes, MemoryBudget};
use crate::plan::{
    Access, Aggregation, ConflictAction, ConflictTarget, InsertSource, JoinKind, JoinStep, Plan,
    Scan, SelectPlan, Series, SortKey, UpdatePlan,
};
use crate::sequence::StatementSequences;
use crate::types::ops::{self, ArithOp, GroupKey};
use crate::types::timezone::TimeZone;
use crate::types::{cast, keycode, row as rowcode, text, DataType, Value};

/// Rows read per storage request in a scan.
const SCAN_PAGE: usize = 512;
/// Rows of work per unit of tokio's cooperative budget (see [`ExecContext::checkpoint`]).
const ROWS_PER_BUDGET_UNIT: usize = 32;
/// An index nested loop with more left rows than this first tries reading the right table
/// whole (see [`join`]).
const LOOKUPS_BEFORE_PROBING: usize = 256;
/// How many rows of the right table read in full cost about one key lookup (measured: a
/// lookup about 3 µs, a scanned row about 0.6 µs).
const ROWS_READ_PER_LOOKUP: usize = 4;
/// Keys longer than this are refused (PostgreSQL's btree refuses entries over ~2.7 kB).
const MAX_KEY_BYTES: usize = 8_192;
/// Rows whose encoding is longer than this are refused.
const MAX_ROW_BYTES: usize = 64 * 1024 * 1024;
/// Result rows up to which ORDER BY sorts on the statement's own thread (about a
/// millisecond's work); more go to tokio's blocking pool (`sort_rows`).
const SORT_IN_PLACE_ROWS: usize = 10_000;

/// What a statement needs besides its plan.
#[derive(Clone, Copy)]
pub struct ExecContext<'a> {
    /// Parameter values.
    pub params: &'a [Value],
    /// The transaction's start, µs since 2000-01-01 (now()).
    pub now_micros: i64,
    /// The session's `TimeZone`.
    pub zone: &'a TimeZone,
    /// The sequences the statement calls (values are reserved before each row).
    pub sequences: &'a StatementSequences<'a>,
    /// Set when the client asked to cancel.
    pub cancel: &'a AtomicBool,
    /// A source of unique row ids for tables without a primary key.
    pub next_row_id: &'a (dyn Fn() -> i64 + Send + Sync),
    /// random(): a number in [0, 1) from the session's seeded source.
    pub random: &'a (dyn Fn() -> f64 + Send + Sync),
    /// setseed(x): reseeds that source.
    pub reseed: &'a (dyn Fn(f64) + Send + Sync),
    /// Rows of the built-in `cairn_conflicts` view.
    pub conflicts: &'a crate::session::ConflictLog,
    /// The statement's subqueries' rows (filled by [`run`] before the statement runs).
    pub subqueries: &'a [SubqueryRows],
    /// What the statement may keep in memory; every operator charges the rows it keeps.
    pub memory: &'a MemoryBudget,
    /// The statement's subquery plans (correlated ones run from these, per row).
    pub subquery_plans: &'a [SelectPlan],
    /// Correlated subqueries' rows for the row being evaluated.
    pub correlated: &'a [(usize, SubqueryRows)],
    /// The current rows of the queries around a correlated subquery, innermost last.
    pub outer: &'a [Vec<Value>],
    /// Working tables of the recursive WITH queries being iterated, by id.
    pub working: &'a [(usize, Vec<Vec<Value>>)],
    /// Correlated subqueries run as hash lookups (built once per statement).
    pub decorrelation: &'a DecorrelationCache,
    /// The data a COPY FROM STDIN statement reads (empty for other statements).
    pub copy_data: &'a [u8],
    /// The session running the statement.
    pub session: &'a crate::expr::SessionInfo<'a>,
    /// The system catalog at the statement's snapshot, if it reads it.
    pub system: Option<&'a crate::system::SystemCatalog>,
    /// Set when the statement runs alone in its transaction (autocommit): work over a
    /// table's existing rows may then commit in bounded batches of its own (see
    /// [`crate::alter`]).
    pub batches: Option<&'a cairn_qp::Database>,
}

impl ExecContext<'_> {
    pub(crate) fn eval(&self) -> EvalContext<'_> {
        EvalContext {
            params: self.params,
            now_micros: self.now_micros,
            zone: self.zone,
            subqueries: self.subqueries,
            correlated: self.correlated,
            outer: self.outer,
            random: self.random,
            reseed: self.reseed,
            sequences: self.sequences,
            session: self.session,
            system: self.system,
        }
    }

    pub(crate) fn check_cancel(&self) -> SqlResult<()> {
        if self.cancel.load(AtomicOrdering::Acquire) {
            return Err(SqlError::new(
                SqlState::QUERY_CANCELED,
                "canceling statement due to user request",
            ));
        }
        Ok(())
    }

    /// [`check_cancel`](Self::check_cancel) after `rows` rows of work, and a point where a
    /// long statement lets the other connections on its thread run: a connection thread
    /// polls one task at a time, so a statement that never waits on I/O would hold them all
    /// until it ends. The work is charged to tokio's cooperative budget (128 units a poll,
    /// one per [`ROWS_PER_BUDGET_UNIT`] rows), which yields once it is spent: after about
    /// 4,000 rows, by count rather than time so that a simulated run replays alike. Short
    /// statements pay a few counter decrements.
    pub(crate) async fn checkpoint(&self, rows: usize) -> SqlResult<()> {
        for _ in 0..rows.div_ceil(ROWS_PER_BUDGET_UNIT).max(1) {
            tokio::task::coop::consume_budget().await;
        }
        self.check_cancel()
    }
}

/// A statement's rows and command tag.
pub struct Produced {
    /// Rows (empty for statements without results).
    pub rows: Vec<Vec<Value>>,
    /// CommandComplete tag.
    pub tag: String,
}

pub(crate) fn core(e: cairn_types::Error) -> SqlError {
    SqlError::from_core(e, |k| k.to_string())
}

/// Runs a data statement (SELECT, INSERT, UPDATE, DELETE).
pub async fn run(txn: &mut Transaction, plan: &Plan, ctx: &ExecContext<'_>) -> SqlResult<Produced> {
    // Uncorrelated subqueries run first, in order (an inner one before the one holding it).
    let mut results: Vec<SubqueryRows> = Vec::new();
    for subquery in plan.subqueries() {
        if subquery.correlated {
            // Runs per row of the query around it (see `correlated_rows`).
            results.push(SubqueryRows::new(vec![], None));
            continue;
        }
        let rows = {
            let with_earlier = ExecContext {
                subqueries: &results,
                subquery_plans: plan.subqueries(),
                ..*ctx
            };
            Box::pin(select_rows(txn, subquery, &with_earlier)).await?
        };
        let column_type = subquery.columns.first().map(|c| c.data_type.clone());
        results.push(SubqueryRows::new(rows, column_type));
    }
    let ctx = &ExecContext {
        subqueries: &results,
        subquery_plans: plan.subqueries(),
        ..*ctx
    };
    // Data-modifying WITH queries run first, once each, in order; the statement reads their
    // RETURNING rows.
    if let Plan::With { ctes, main } = plan {
        let mut working = ctx.working.to_vec();
        for (id, _, cte) in ctes {
            let with_earlier = ExecContext {
                working: &working,
                ..*ctx
            };
            let produced = Box::pin(run_statement(txn, cte, &with_earlier)).await?;
            working.push((*id, produced.rows));
        }
        let ctx = &ExecContext {
            working: &working,
            ..*ctx
        };
        let produced = Box::pin(run_statement(txn, main, ctx)).await?;
        txn.check_limits().map_err(core)?;
        return Ok(produced);
    }
    let produced = run_statement(txn, plan, ctx).await?;
    if plan.write_kind().is_some() {
        txn.check_limits().map_err(core)?;
    }
    Ok(produced)
}

async fn run_statement(
    txn: &mut Transaction,
    plan: &Plan,
    ctx: &ExecContext<'_>,
) -> SqlResult<Produced> {
    match plan {
        Plan::Select(select) => {
            let rows = select_rows(txn, select, ctx).await?;
            let tag = format!("SELECT {}", rows.len());
            Ok(Produced { rows, tag })
        }
        Plan::CopyOut { query, .. } => {
            let produced = Box::pin(run_statement(txn, query, ctx)).await?;
            let tag = format!("COPY {}", produced.rows.len());
            Ok(Produced { tag, ..produced })
        }
        Plan::AlterTable { table, actions } => {
            crate::alter::alter_table(txn, table, actions, ctx).await
        }
        Plan::CreateIndex {
            table,
            index,
            if_not_exists,
            generated,
            ..
        } => crate::alter::create_index(txn, table, index, generated, *if_not_exists, ctx).await,
        Plan::DropIndex { names, if_exists } => {
            crate::alter::drop_index(txn, names, *if_exists, ctx).await
        }
        Plan::Insert(insert) => {
            let sources: Vec<Vec<Value>> = match &insert.source {
                InsertSource::Values(rows) => {
                    let mut out = Vec::with_capacity(rows.len());
                    for row in rows {
                        ctx.sequences.top_up(txn).await?;
                        let mut values = Vec::with_capacity(row.len());
                        for (expr, &target) in row.iter().zip(&insert.targets) {
                            values.push(match expr {
                                Some(e) => e.eval(&[], &ctx.eval())?,
                                None => default_value(insert.defaults[target].as_ref(), ctx)?,
                            });
                        }
                        out.push(values);
                    }
                    out
                }
                InsertSource::Query(query) => Box::pin(select_rows(txn, query, ctx)).await?,
                // Read row by row below.
                InsertSource::Copy(_) => Vec::new(),
            };
            let copy_columns: Vec<(String, DataType)> = insert
                .targets
                .iter()
                .map(|&t| {
                    let column = &insert.table.columns[t];
                    (column.name.clone(), column.data_type.clone())
                })
                .collect();
            let copy_table = crate::plan::visible_name(&insert.table.name);
            let mut copy_reader = match &insert.source {
                InsertSource::Copy(format) => {
                    Some(format.reader(ctx.copy_data, &copy_columns, &copy_table, ctx.zone))
                }
                _ => None,
            };
            let mut sources = sources.into_iter();
            let table = &insert.table;
            let mut returned = Vec::new();
            let mut affected = 0usize;
            // Keys this statement wrote: ON CONFLICT DO UPDATE may not meet one again.
            let mut written: HashSet<Key> = HashSet::new();
            // New rows whose foreign keys are checked once all are written (as PostgreSQL
            // checks at the statement's end: a row may reference one inserted after it).
            let mut to_check: Vec<Vec<Value>> = Vec::new();
            loop {
                let source = match copy_reader.as_mut() {
                    Some(reader) => match reader.next_row() {
                        Some(row) => row?,
                        None => break,
                    },
                    None => match sources.next() {
                        Some(row) => row,
                        None => break,
                    },
                };
                // A COPY row's error names its line, as PostgreSQL's CONTEXT does.
                let in_context = |e: SqlError| match &copy_reader {
                    Some(reader) => e.with_context(reader.context()),
                    None => e,
                };
                let stored = async {
                ctx.checkpoint(1).await?;
                ctx.sequences.top_up(txn).await?;
                let mut row: Vec<Value> = Vec::with_capacity(table.columns.len());
                for (i, column) in table.columns.iter().enumerate() {
                    row.push(match insert.targets.iter().position(|&t| t == i) {
                        Some(p) => source[p].clone(),
                        None if column.dropped || column.generated.is_some() => Value::Null,
                        None if column.hidden => Value::Int8((ctx.next_row_id)()),
                        None => default_value(insert.defaults[i].as_ref(), ctx)?,
                    });
                }
                let row = conform_row(table, row, ctx.zone)?;
                check_row(table, &insert.checks, &row, ctx)?;
                let mut key = checked_key(table, &row)?;
                let mut existing = txn.get(&key).await.map_err(core)?;
                if insert.on_conflict.is_some() {
                    // The row the target key says conflicts, if another than the primary
                    // key's (a unique index's entry names its row).
                    let watched: Vec<usize> = match insert.conflict_target {
                        ConflictTarget::PrimaryKey => vec![],
                        ConflictTarget::Index(index) => vec![index],
                        ConflictTarget::Any if existing.is_some() => vec![],
                        ConflictTarget::Any => (0..table.indexes.len())
                            .filter(|&i| table.indexes[i].unique)
                            .collect(),
                    };
                    if matches!(insert.conflict_target, ConflictTarget::Index(_)) {
                        existing = None;
                    }
                    for index in watched {
                        let (entry_key, _) = table.index_entry(&table.indexes[index], &row);
                        if let Some(entry) = txn.get(&entry_key).await.map_err(core)? {
                            let row_key = table.row_key_from_entry(&entry);
                            if let Some(bytes) = txn.get(&row_key).await.map_err(core)? {
                                key = row_key;
                                existing = Some(bytes);
                                break;
                            }
                        }
                    }
                }
                let stored = match (existing, &insert.on_conflict) {
                    (None, _) => {
                        add_index_entries(txn, table, &row, ctx.zone).await?;
                        txn.put(key.clone(), encode(&row)?);
                        if !table.foreign_keys.is_empty() {
                            to_check.push(row.clone());
                        }
                        written.insert(key);
                        row
                    }
                    (Some(_), None) => return Err(duplicate_key(table, &row, ctx.zone)),
                    (Some(_), Some(ConflictAction::Nothing)) => return Ok(None),
                    (
                        Some(bytes),
                        Some(ConflictAction::Update {
                            assignments,
                            filter,
                        }),
                    ) => {
                        if written.contains(&key) {
                            return Err(SqlError::new(
                                SqlState::CARDINALITY_VIOLATION,
                                "ON CONFLICT DO UPDATE command cannot affect row a second time",
                            )
                            .with_hint("Ensure that no rows proposed for insertion within the same command have duplicate constrained values."));
                        }
                        let checks = &insert.checks;
                        match upsert(
                            txn,
                            table,
                            &key,
                            &bytes,
                            row,
                            assignments,
                            filter,
                            checks,
                            ctx,
                        )
                        .await?
                        {
                            Some((new_key, new)) => {
                                written.insert(new_key);
                                new
                            }
                            None => return Ok(None),
                        }
                    }
                };
                Ok(Some(stored))
                }
                .await
                .map_err(in_context)?;
                let Some(stored) = stored else { continue };
                affected += 1;
                if let Some((exprs, _)) = &insert.returning {
                    returned.push(project(exprs, &stored, ctx)?);
                }
            }
            for row in &to_check {
                check_references(txn, table, row, ctx.zone).await?;
            }
            let tag = match insert.source {
                InsertSource::Copy(_) => format!("COPY {affected}"),
                _ => format!("INSERT 0 {affected}"),
            };
            Ok(Produced {
                rows: returned,
                tag,
            })
        }
        Plan::Update(update) => {
            let table = &update.scan.table;
            let mut returned = Vec::new();
            // Every new row is computed before any is written: a subquery in SET reads the
            // table as the statement found it, as in PostgreSQL.
            let mut changes = Vec::new();
            let rows = match &update.from {
                Some(from) => {
                    // A row the join finds twice changes once (PostgreSQL leaves which
                    // match wins unspecified).
                    let mut seen = HashSet::new();
                    for (key, old, values) in joined(txn, table, from, ctx).await? {
                        if !seen.insert(key.clone()) {
                            continue;
                        }
                        let mut new = old.clone();
                        for ((index, _), value) in update.assignments.iter().zip(values) {
                            new[*index] = value;
                        }
                        changes.push((key, old, new));
                    }
                    Vec::new()
                }
                None => {
                    let rows = scan_rows(txn, &update.scan, ctx).await?;
                    filter_keyed_rows(txn, rows, &update.row_filter, ctx).await?
                }
            };
            let correlated = correlated_in(update.assignments.iter().map(|(_, e)| e), ctx);
            for (old_key, old) in rows {
                ctx.checkpoint(1).await?;
                ctx.sequences.top_up(txn).await?;
                let results = correlated_rows(txn, &correlated, &old, ctx).await?;
                let row_ctx = ExecContext {
                    correlated: &results,
                    ..*ctx
                };
                let mut new = old.clone();
                for (index, expr) in &update.assignments {
                    new[*index] = expr.eval(&old, &row_ctx.eval())?;
                }
                changes.push((old_key, old, new));
            }
            let count = changes.len();
            let additive = additive_assignments(update);
            let mut changed = Vec::new();
            for (old_key, old, new) in changes {
                let new = conform_row(table, new, ctx.zone)?;
                check_row(table, &update.checks, &new, ctx)?;
                let new_key = checked_key(table, &new)?;
                if new_key != old_key {
                    if txn.get(&new_key).await.map_err(core)?.is_some() {
                        return Err(duplicate_key(table, &new, ctx.zone));
                    }
                    txn.delete(old_key);
                }
                remove_index_entries(txn, table, &old);
                add_index_entries(txn, table, &new, ctx.zone).await?;
                match &additive {
                    Some(additive) => {
                        let mut deltas = Vec::with_capacity(additive.len());
                        for (column, op, added) in additive {
                            deltas.push((*column, *op, added.eval(&old, &ctx.eval())?));
                        }
                        let rebase = rebase_additive(table.clone(), old.clone(), deltas);
                        txn.put_rebasable(new_key, encode(&new)?, rebase);
                    }
                    None => txn.put(new_key, encode(&new)?),
                }
                if let Some((exprs, _)) = &update.returning {
                    returned.push(project(exprs, &new, ctx)?);
                }
                if !table.foreign_keys.is_empty() || !table.referenced_by.is_empty() {
                    changed.push((old, new));
                }
            }
            // References are checked once every row is written, as PostgreSQL checks them
            // at the statement's end (a statement may move a parent and its children).
            for (old, new) in &changed {
                check_references(txn, table, new, ctx.zone).await?;
                on_parent_change(txn, table, old, Some(new), ctx).await?;
            }
            Ok(Produced {
                rows: returned,
                tag: format!("UPDATE {count}"),
            })
        }
        Plan::Delete(delete) => {
            let rows = match &delete.using {
                Some(using) => {
                    let mut seen = HashSet::new();
                    joined(txn, &delete.scan.table, using, ctx)
                        .await?
                        .into_iter()
                        .filter(|(key, _, _)| seen.insert(key.clone()))
                        .map(|(key, row, _)| (key, row))
                        .collect()
                }
                None => {
                    let rows = scan_rows(txn, &delete.scan, ctx).await?;
                    filter_keyed_rows(txn, rows, &delete.row_filter, ctx).await?
                }
            };
            let mut returned = Vec::new();
            let count = rows.len();
            for (key, old) in &rows {
                remove_index_entries(txn, &delete.scan.table, old);
                txn.delete(key.clone());
                if let Some((exprs, _)) = &delete.returning {
                    returned.push(project(exprs, old, ctx)?);
                }
            }
            // What references the deleted rows is settled once all are gone, as PostgreSQL
            // does at the statement's end (a statement may delete a parent and its children).
            for (_, old) in &rows {
                on_parent_change(txn, &delete.scan.table, old, None, ctx).await?;
            }
            Ok(Produced {
                rows: returned,
                tag: format!("DELETE {count}"),
            })
        }
        _ => Err(SqlError::internal("not a data statement")),
    }
}

/// The assignments of an `UPDATE t SET n = n + x [, ...] WHERE <primary key> = ...` whose new
/// row is a function of the stored one that the statement shows nobody: (column, `+` or `-`,
/// what is added) for each, or `None` for any other UPDATE. Each assignment adds a value that
/// does not depend on the row to an integer column that no key, index, constraint, generated
/// column or the WHERE clause reads, and the statement returns nothing of the row. Its
/// writes can then be recomputed over a newer version of the row when the commit conflicts
/// on it ([`cairn_qp::Transaction::put_rebasable`]), as if the statement had run then.
fn additive_assignments(update: &UpdatePlan) -> Option<Vec<(usize, ArithOp, &Expr)>> {
    let table = &update.scan.table;
    let plain = update.from.is_none()
        && update.row_filter.is_none()
        && update.returning.is_none()
        && update.checks.is_empty()
        && update.subqueries.is_empty()
        && matches!(update.scan.access, Access::Point(_))
        && !update.scan.lock
        && update.scan.derived.is_none()
        && !table.is_built_in()
        && table.foreign_keys.is_empty()
        && table.referenced_by.is_empty()
        && table.columns.iter().all(|c| c.generated.is_none());
    if !plain {
        return None;
    }
    let is_column =
        |expr: &Expr, column: usize| matches!(expr, Expr::Column { index, .. } if *index == column);
    let mut additive = Vec::with_capacity(update.assignments.len());
    for (column, expr) in &update.assignments {
        let ty = &table.columns[*column].data_type;
        let indexed = table.primary_key.contains(column)
            || table
                .indexes
                .iter()
                .any(|index| index.columns.contains(column) || index.include.contains(column));
        if indexed
            || !matches!(ty, DataType::Int2 | DataType::Int4 | DataType::Int8)
            || expr.ty() != *ty
        {
            return None;
        }
        let (op, added) = match expr {
            Expr::Arith(op @ (ArithOp::Add | ArithOp::Sub), left, right, _)
                if is_column(left, *column) =>
            {
                (*op, &**right)
            }
            Expr::Arith(ArithOp::Add, left, right, _) if is_column(right, *column) => {
                (ArithOp::Add, &**left)
            }
            _ => return None,
        };
        if !added.is_row_independent() {
            return None;
        }
        additive.push((*column, op, added));
    }
    let mut filter_reads_them = false;
    if let Some(filter) = &update.scan.filter {
        filter.walk(&mut |e| {
            if let Expr::Column { index, .. } = e {
                filter_reads_them |= additive.iter().any(|(column, _, _)| column == index);
            }
        });
    }
    (!filter_reads_them).then_some(additive)
}

/// Recomputes an additive UPDATE's row (see [`additive_assignments`]) over a newer stored
/// version of it: the deltas added to that version's columns, provided every other column is
/// still as the statement found it in `base` (what its WHERE clause saw).
fn rebase_additive(
    table: Arc<TableDesc>,
    base: Vec<Value>,
    deltas: Vec<(usize, ArithOp, Value)>,
) -> cairn_qp::Rebase {
    Arc::new(move |stored: &Bytes| {
        let mut row = decode_table_row(&table, stored).ok()?;
        let added = |i: usize| deltas.iter().any(|(column, _, _)| *column == i);
        let others_unchanged = row.len() == base.len()
            && row
                .iter()
                .zip(&base)
                .enumerate()
                .all(|(i, (now, then))| added(i) || now == then);
        if !others_unchanged {
            return None;
        }
        for (column, op, delta) in &deltas {
            let ty = table.columns[*column].data_type.clone();
            let sum = ops::arith(*op, &row[*column], delta, &TimeZone::utc()).ok()?;
            if !sum.is_null() && sum.data_type() != ty {
                return None;
            }
            row[*column] = sum;
        }
        encode(&row).ok()
    })
}

/// ON CONFLICT DO UPDATE for the row stored under `key` (`stored`) and the row an INSERT
/// proposed (`excluded`): the updated row and its key, or `None` when the WHERE clause
/// leaves the row alone.
#[allow(clippy::too_many_arguments)]
async fn upsert(
    txn: &mut Transaction,
    table: &TableDesc,
    key: &Key,
    stored: &[u8],
    excluded: Vec<Value>,
    assignments: &[(usize, Expr)],
    filter: &Option<Expr>,
    checks: &[(String, Expr)],
    ctx: &ExecContext<'_>,
) -> SqlResult<Option<(Key, Vec<Value>)>> {
    let old = decode_table_row(table, stored)?;
    let mut both = old.clone();
    both.extend(excluded);
    if let Some(filter) = filter {
        if truth(&filter.eval(&both, &ctx.eval())?)? != Some(true) {
            return Ok(None);
        }
    }
    let mut new = old;
    for (index, expr) in assignments {
        new[*index] = expr.eval(&both, &ctx.eval())?;
    }
    let new = conform_row(table, new, ctx.zone)?;
    check_row(table, checks, &new, ctx)?;
    let new_key = checked_key(table, &new)?;
    if new_key != *key {
        if txn.get(&new_key).await.map_err(core)?.is_some() {
            return Err(duplicate_key(table, &new, ctx.zone));
        }
        txn.delete(key.clone());
    }
    let old = &both[..table.columns.len()];
    remove_index_entries(txn, table, old);
    add_index_entries(txn, table, &new, ctx.zone).await?;
    txn.put(new_key.clone(), encode(&new)?);
    check_references(txn, table, &new, ctx.zone).await?;
    on_parent_change(txn, table, old, Some(&new), ctx).await?;
    Ok(Some((new_key, new)))
}

/// The rows of `table` a join found (UPDATE ... FROM, DELETE ... USING): each row's key, the
/// row, and the values the query computed after its columns.
async fn joined(
    txn: &mut Transaction,
    table: &TableDesc,
    from: &crate::plan::JoinedRows,
    ctx: &ExecContext<'_>,
) -> SqlResult<Vec<(Key, Vec<Value>, Vec<Value>)>> {
    let rows = Box::pin(select_rows(txn, &from.query, ctx)).await?;
    let mut out = Vec::with_capacity(rows.len());
    for mut projected in rows {
        let extra = projected.split_off(from.columns.len());
        let mut row = vec![Value::Null; table.columns.len()];
        for (&column, value) in from.columns.iter().zip(projected) {
            row[column] = value;
        }
        out.push((table.key_of_row(&row), row, extra));
    }
    Ok(out)
}

/// Refuses a row a CHECK constraint finds false (23514; NULL passes, as in PostgreSQL).
pub(crate) fn check_row(
    table: &TableDesc,
    checks: &[(String, Expr)],
    row: &[Value],
    ctx: &ExecContext<'_>,
) -> SqlResult<()> {
    for (name, condition) in checks {
        if truth(&condition.eval(row, &ctx.eval())?)? == Some(false) {
            return Err(SqlError::new(
                SqlState("23514"),
                format!(
                    "new row for relation \"{}\" violates check constraint \"{name}\"",
                    table.name
                ),
            )
            .with_detail(format!(
                "Failing row contains ({}).",
                describe_row(table, row, ctx.zone)
            )));
        }
    }
    Ok(())
}

/// Writes `row`'s entries in every index of `table`; a unique index whose key is taken
/// refuses the row (23505).
pub(crate) async fn add_index_entries(
    txn: &mut Transaction,
    table: &TableDesc,
    row: &[Value],
    zone: &TimeZone,
) -> SqlResult<()> {
    for index in &table.indexes {
        let (key, value) = table.index_entry(index, row);
        if index.unique && txn.get(&key).await.map_err(core)?.is_some() {
            return Err(SqlError::new(
                SqlState::UNIQUE_VIOLATION,
                format!(
                    "duplicate key value violates unique constraint \"{}\"",
                    index.name
                ),
            )
            .with_detail(format!(
                "Key ({})=({}) already exists.",
                key_names(table, &index.columns),
                key_text(table, &index.columns, row, zone)
            )));
        }
        txn.put(key, value);
    }
    Ok(())
}

/// Deletes `row`'s entries from every index of `table`.
pub(crate) fn remove_index_entries(txn: &mut Transaction, table: &TableDesc, row: &[Value]) {
    for index in &table.indexes {
        txn.delete(table.index_entry(index, row).0);
    }
}

fn default_value(default: Option<&Expr>, ctx: &ExecContext<'_>) -> SqlResult<Value> {
    match default {
        Some(e) => e.eval(&[], &ctx.eval()),
        None => Ok(Value::Null),
    }
}

pub(crate) fn encode(row: &[Value]) -> SqlResult<Bytes> {
    let bytes = rowcode::encode_row(row);
    if bytes.len() > MAX_ROW_BYTES {
        return Err(SqlError::new(
            SqlState::PROGRAM_LIMIT_EXCEEDED,
            format!(
                "row is too big: size {}, maximum size {MAX_ROW_BYTES}",
                bytes.len()
            ),
        ));
    }
    Ok(Bytes::from(bytes))
}

pub(crate) fn checked_key(table: &TableDesc, row: &[Value]) -> SqlResult<Key> {
    let key = table.key_of_row(row);
    if key.as_bytes().len() > MAX_KEY_BYTES {
        return Err(SqlError::new(
            SqlState::PROGRAM_LIMIT_EXCEEDED,
            format!(
                "index row size {} exceeds maximum {MAX_KEY_BYTES} for index \"{}\"",
                key.as_bytes().len(),
                table.primary_key_name()
            ),
        ));
    }
    Ok(key)
}

/// Applies column types (assignment casts) and NOT NULL to a full row.
/// Computes `row`'s generated columns (what indexes on expressions index) from its other
/// columns, in UTC (index expressions do not depend on the session).
fn fill_generated(table: &TableDesc, row: &mut [Value]) -> SqlResult<()> {
    let generated = crate::planner::bind_generated(table)?;
    if generated.is_empty() {
        return Ok(());
    }
    let utc = TimeZone::utc();
    let sequences = StatementSequences::none();
    let ctx = crate::expr::EvalContext {
        params: &[],
        now_micros: 0,
        zone: &utc,
        subqueries: &[],
        correlated: &[],
        outer: &[],
        random: &|| 0.0,
        reseed: &|_| {},
        sequences: &sequences,
        session: &crate::expr::SessionInfo::NONE,
        system: None,
    };
    for (i, expr) in generated {
        let value = expr.eval(row, &ctx)?;
        row[i] = match value {
            Value::Null => Value::Null,
            value => cast::cast(value, &table.columns[i].data_type, false, &utc)?,
        };
    }
    Ok(())
}

pub(crate) fn conform_row(
    table: &TableDesc,
    row: Vec<Value>,
    zone: &TimeZone,
) -> SqlResult<Vec<Value>> {
    let mut row = conform_columns(table, row, zone)?;
    fill_generated(table, &mut row)?;
    Ok(row)
}

fn conform_columns(table: &TableDesc, row: Vec<Value>, zone: &TimeZone) -> SqlResult<Vec<Value>> {
    let mut out = Vec::with_capacity(row.len());
    for (value, column) in row.into_iter().zip(&table.columns) {
        let value = if value.is_null() {
            value
        } else {
            cast::assignment_cast(value, &column.data_type, &column.name, zone)?
        };
        out.push(value);
    }
    for (value, column) in out.iter().zip(&table.columns) {
        if value.is_null() && !column.nullable {
            return Err(SqlError::new(
                SqlState::NOT_NULL_VIOLATION,
                format!(
                    "null value in column \"{}\" of relation \"{}\" violates not-null constraint",
                    column.name, table.name
                ),
            )
            .with_detail(format!(
                "Failing row contains ({}).",
                describe_row(table, &out, zone)
            )));
        }
    }
    Ok(out)
}

fn describe_row(table: &TableDesc, row: &[Value], zone: &TimeZone) -> String {
    table
        .visible_columns()
        .map(|i| match &row[i] {
            Value::Null => "null".to_string(),
            v => text::format_text_typed(v, &table.columns[i].data_type, zone),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn duplicate_key(table: &TableDesc, row: &[Value], zone: &TimeZone) -> SqlError {
    SqlError::new(
        SqlState::UNIQUE_VIOLATION,
        format!(
            "duplicate key value violates unique constraint \"{}\"",
            table.primary_key_name()
        ),
    )
    .with_detail(format!(
        "Key ({})=({}) already exists.",
        key_names(table, &table.primary_key),
        key_text(table, &table.primary_key, row, zone)
    ))
}

fn project(exprs: &[Expr], row: &[Value], ctx: &ExecContext<'_>) -> SqlResult<Vec<Value>> {
    exprs.iter().map(|e| e.eval(row, &ctx.eval())).collect()
}

/// Evaluates a row-independent expression to a value of the column's type, for key bounds.
fn key_value(expr: &Expr, ty: &DataType, ctx: &ExecContext<'_>) -> SqlResult<Value> {
    let value = expr.eval(&[], &ctx.eval())?;
    if value.is_null() || value.data_type() == *ty || !matches!(ty, DataType::Numeric { .. }) {
        Ok(value)
    } else {
        cast::cast(value, ty, false, ctx.zone)
    }
}

/// Reads the rows a scan selects, with their keys: filtered, and locked if asked.
pub async fn scan_rows(
    txn: &mut Transaction,
    scan: &Scan,
    ctx: &ExecContext<'_>,
) -> SqlResult<Vec<(Key, Vec<Value>)>> {
    scan_rows_limited(txn, scan, ctx, usize::MAX).await
}

async fn scan_rows_limited(
    txn: &mut Transaction,
    scan: &Scan,
    ctx: &ExecContext<'_>,
    limit: usize,
) -> SqlResult<Vec<(Key, Vec<Value>)>> {
    let mut cursor = ScanCursor::open(txn, scan, ctx, limit).await?;
    let mut out = Vec::new();
    while out.len() < limit {
        match cursor.next_page(txn, ctx, limit - out.len()).await? {
            Some(page) => out.extend(page),
            None => break,
        }
    }
    Ok(out)
}

/// A scan read a page at a time: rows decoded, filtered by the scan's filter, charged to the
/// memory budget and (FOR UPDATE) locked as each page is read.
struct ScanCursor<'s> {
    scan: &'s Scan,
    state: CursorState,
}

enum CursorState {
    /// Keys still to read.
    Range(KeyRange),
    /// Index entries still to read: each names its row by primary key.
    Entries(KeyRange),
    /// Rows computed whole (a point lookup, a derived table, a built-in view).
    Rows(Vec<(Key, Vec<Value>)>),
    Done,
}

impl<'s> ScanCursor<'s> {
    /// `want`: at most how many rows the reader will take (a derived table without a filter
    /// need not compute more: `WITH RECURSIVE ... SELECT ... LIMIT n` stops its recursion).
    async fn open(
        txn: &mut Transaction,
        scan: &'s Scan,
        ctx: &ExecContext<'_>,
        want: usize,
    ) -> SqlResult<ScanCursor<'s>> {
        let table = &scan.table;
        let rows = |rows: Vec<Vec<Value>>| {
            CursorState::Rows(rows.into_iter().map(|row| (Key::default(), row)).collect())
        };
        let state = if let Some(derived) = &scan.derived {
            let want = if scan.filter.is_none() {
                want
            } else {
                usize::MAX
            };
            let derived_rows = Box::pin(select_rows_wanting(txn, derived, ctx, want)).await?;
            // Charged as the derived query's result; the page charges what it keeps.
            ctx.memory.release_rows(&derived_rows);
            rows(derived_rows)
        } else if table.id == crate::catalog::CONFLICTS_VIEW_ID {
            rows(ctx.conflicts.rows())
        } else if table.id == crate::jobs::JOBS_VIEW_ID {
            rows(crate::jobs::view_rows(txn).await?)
        } else if let Some(system_rows) = ctx
            .system
            .and_then(|system| crate::system::tables::rows(table, system))
        {
            rows(system_rows)
        } else {
            match &scan.access {
                Access::Point(values) => {
                    let key_type = |i: usize| &table.columns[table.primary_key[i]].data_type;
                    let mut pk = Vec::with_capacity(values.len());
                    for (i, expr) in values.iter().enumerate() {
                        pk.push(key_value(expr, key_type(i), ctx)?);
                    }
                    if pk.iter().any(Value::is_null) {
                        CursorState::Done // `key = NULL` matches nothing
                    } else {
                        let key = table.row_key(&pk.iter().collect::<Vec<_>>());
                        match txn.get(&key).await.map_err(core)? {
                            Some(bytes) => {
                                CursorState::Rows(vec![(key, decode_table_row(table, &bytes)?)])
                            }
                            None => CursorState::Done,
                        }
                    }
                }
                Access::Range { .. } => match key_range(scan, ctx)? {
                    Some(range) => CursorState::Range(range),
                    None => CursorState::Done,
                },
                Access::Index { .. } => match key_range(scan, ctx)? {
                    Some(range) => CursorState::Entries(range),
                    None => CursorState::Done,
                },
                Access::Full => CursorState::Range(table.all_rows()),
            }
        };
        Ok(ScanCursor { scan, state })
    }

    /// The next page of at most `limit` kept rows, or `None` at the end.
    async fn next_page(
        &mut self,
        txn: &mut Transaction,
        ctx: &ExecContext<'_>,
        limit: usize,
    ) -> SqlResult<Option<Vec<(Key, Vec<Value>)>>> {
        ctx.checkpoint(limit.min(SCAN_PAGE)).await?;
        let mut out = Vec::new();
        match std::mem::replace(&mut self.state, CursorState::Done) {
            CursorState::Done => return Ok(None),
            CursorState::Rows(rows) => {
                for (key, row) in rows {
                    if out.len() >= limit {
                        break;
                    }
                    self.keep(key, row, ctx, &mut out)?;
                }
            }
            CursorState::Entries(mut range) => {
                // A page of entries, then each entry's row by its primary key.
                let page = txn.scan(&range, SCAN_PAGE).await.map_err(core)?;
                let full = page.len() == SCAN_PAGE;
                let mut last = None;
                let mut stopped = false;
                for (entry_key, entry) in page {
                    last = Some(entry_key);
                    let key = self.scan.table.row_key_from_entry(&entry);
                    if let Some(bytes) = txn.get(&key).await.map_err(core)? {
                        let row = decode_table_row(&self.scan.table, &bytes)?;
                        self.keep(key, row, ctx, &mut out)?;
                    }
                    if out.len() >= limit {
                        stopped = true;
                        break;
                    }
                }
                if let (true, Some(last)) = (full || stopped, last) {
                    range.start = key_after(&last);
                    self.state = CursorState::Entries(range);
                }
            }
            CursorState::Range(mut range) => {
                if range.is_empty() {
                    return Ok(None);
                }
                let page = txn.scan(&range, SCAN_PAGE).await.map_err(core)?;
                let full = page.len() == SCAN_PAGE;
                let mut last = None;
                let mut stopped = false;
                for (key, bytes) in page {
                    let row = decode_table_row(&self.scan.table, &bytes)?;
                    last = Some(key.clone());
                    self.keep(key, row, ctx, &mut out)?;
                    if out.len() >= limit {
                        stopped = true;
                        break;
                    }
                }
                if let (true, Some(last)) = (full || stopped, last) {
                    range.start = key_after(&last);
                    self.state = CursorState::Range(range);
                }
            }
        }
        if self.scan.lock {
            for (key, _) in &out {
                txn.lock(key.clone());
            }
        }
        Ok(Some(out))
    }

    fn keep(
        &self,
        key: Key,
        row: Vec<Value>,
        ctx: &ExecContext<'_>,
        out: &mut Vec<(Key, Vec<Value>)>,
    ) -> SqlResult<()> {
        let matches = match &self.scan.filter {
            Some(filter) => truth(&filter.eval(&row, &ctx.eval())?)? == Some(true),
            None => true,
        };
        if matches {
            ctx.memory
                .charge(row_bytes(&row) + key.as_bytes().len(), "rows read")?;
            out.push((key, row));
        }
        Ok(())
    }
}

/// The first key after `key` (where a scan that stopped at `key` goes on).
pub(crate) fn key_after(key: &Key) -> Key {
    let mut next = key.as_bytes().to_vec();
    next.push(0);
    Key::from(next)
}

pub(crate) fn decode_table_row(table: &TableDesc, bytes: &[u8]) -> SqlResult<Vec<Value>> {
    let mut row = rowcode::decode_row(bytes)?;
    // Rows written before ALTER TABLE ADD COLUMN end early: the added columns hold what the
    // column said they do.
    if row.len() < table.columns.len() {
        let added = &table.columns[row.len()..];
        if added.iter().all(|c| c.missing.is_some() || c.dropped) {
            row.extend(
                added
                    .iter()
                    .map(|c| c.missing.clone().unwrap_or(Value::Null)),
            );
        }
    }
    if row.len() != table.columns.len() {
        return Err(SqlError::new(
            SqlState::DATA_CORRUPTED,
            format!(
                "row of table \"{}\" has {} columns, expected {}",
                table.name,
                row.len(),
                table.columns.len()
            ),
        ));
    }
    Ok(row)
}

/// The keys a range access reads, or `None` if a bound is NULL (nothing matches).
fn key_range(scan: &Scan, ctx: &ExecContext<'_>) -> SqlResult<Option<KeyRange>> {
    let table = &scan.table;
    match &scan.access {
        Access::Range {
            prefix,
            lower,
            upper,
        } => {
            let types: Vec<&DataType> = table
                .primary_key
                .iter()
                .map(|&i| &table.columns[i].data_type)
                .collect();
            bounded_range(table.rows_prefix(), &types, prefix, lower, upper, ctx)
        }
        Access::Index {
            index,
            prefix,
            lower,
            upper,
        } => {
            let index = &table.indexes[*index];
            let types: Vec<&DataType> = index
                .columns
                .iter()
                .map(|&i| &table.columns[i].data_type)
                .collect();
            bounded_range(table.index_prefix(index), &types, prefix, lower, upper, ctx)
        }
        _ => Ok(Some(table.all_rows())),
    }
}

/// The keys under `base` whose leading values (of `types`) equal `prefix`'s and whose next
/// value lies within `lower` and `upper`; `None` if a bound is NULL (nothing matches).
fn bounded_range(
    base: Vec<u8>,
    types: &[&DataType],
    prefix: &[Expr],
    lower: &Option<(Expr, bool)>,
    upper: &Option<(Expr, bool)>,
    ctx: &ExecContext<'_>,
) -> SqlResult<Option<KeyRange>> {
    let key_type = |i: usize| types[i];
    let mut start = base;
    for (i, expr) in prefix.iter().enumerate() {
        let value = key_value(expr, key_type(i), ctx)?;
        if value.is_null() {
            return Ok(None);
        }
        keycode::encode_key_value(&value, &mut start);
    }
    let base = start.clone();
    let next_type = key_type(prefix.len().min(types.len() - 1)).clone();
    let mut end: Option<Vec<u8>> = Key::from(base.clone())
        .prefix_successor()
        .map(|k| k.as_bytes().to_vec());
    if let Some((expr, inclusive)) = lower {
        let value = key_value(expr, &next_type, ctx)?;
        if value.is_null() {
            return Ok(None);
        }
        let mut bound = base.clone();
        keycode::encode_key_value(&value, &mut bound);
        start = if *inclusive {
            bound
        } else {
            Key::from(bound)
                .prefix_successor()
                .map(|k| k.as_bytes().to_vec())
                .unwrap_or_default()
        };
    }
    if let Some((expr, inclusive)) = upper {
        let value = key_value(expr, &next_type, ctx)?;
        if value.is_null() {
            return Ok(None);
        }
        let mut bound = base.clone();
        keycode::encode_key_value(&value, &mut bound);
        end = if *inclusive {
            Key::from(bound)
                .prefix_successor()
                .map(|k| k.as_bytes().to_vec())
        } else {
            Some(bound)
        };
    }
    Ok(Some(KeyRange {
        start: Key::from(start),
        end: end.map(Key::from),
    }))
}

/// One aggregate's running state.
#[derive(Clone)]
enum Accumulator {
    Count(i64),
    Sum(Option<Value>, DataType),
    Avg(Option<Value>, i64, DataType),
    MinMax(Option<Value>, bool),
    /// The text so far, and the delimiter to put before the next value.
    StringAgg(Option<String>, Option<Value>),
    /// bool_and (true) / bool_or (false).
    Bool(Option<bool>, bool),
    /// array_agg: the values so far (`None` before the first row).
    ArrayAgg(Option<Vec<Value>>),
    /// jsonb_agg: the values so far as JSON.
    JsonbAgg(Option<Vec<crate::types::json::Json>>),
    /// json_agg: the values so far as json text, and whether they are arrays or rows
    /// (which PostgreSQL puts on lines of their own).
    JsonAgg(Option<Vec<String>>, bool),
    /// json_object_agg / jsonb_object_agg (`true`): the members so far (values already
    /// json or jsonb), and the value to pair with the next key.
    ObjectAgg(Option<Vec<(String, Value)>>, Option<Value>, bool),
}

impl Accumulator {
    fn new(func: AggFunc, arg: Option<&Expr>) -> Self {
        let arg_ty = arg.map(Expr::ty).unwrap_or(DataType::Int8);
        match func {
            AggFunc::CountStar | AggFunc::Count => Accumulator::Count(0),
            AggFunc::Sum => Accumulator::Sum(None, sum_type(&arg_ty)),
            AggFunc::Avg => Accumulator::Avg(None, 0, avg_type(&arg_ty)),
            AggFunc::Min => Accumulator::MinMax(None, false),
            AggFunc::Max => Accumulator::MinMax(None, true),
            AggFunc::StringAgg => Accumulator::StringAgg(None, None),
            AggFunc::BoolAnd => Accumulator::Bool(None, true),
            AggFunc::BoolOr => Accumulator::Bool(None, false),
            AggFunc::ArrayAgg => Accumulator::ArrayAgg(None),
            AggFunc::JsonbAgg => Accumulator::JsonbAgg(None),
            AggFunc::JsonObjectAgg => Accumulator::ObjectAgg(None, None, false),
            AggFunc::JsonbObjectAgg => Accumulator::ObjectAgg(None, None, true),
            AggFunc::JsonAgg => {
                use crate::expr::{Func, JsonFunc};
                let row = matches!(arg, Some(Expr::Func(Func::Json(JsonFunc::RowObject), ..)));
                Accumulator::JsonAgg(None, row || matches!(arg_ty, DataType::Array(_)))
            }
        }
    }

    fn add(&mut self, value: Option<Value>, zone: &TimeZone) -> SqlResult<()> {
        match (self, value) {
            (Accumulator::Count(n), None) => *n += 1,
            (Accumulator::ArrayAgg(items), Some(v)) => items.get_or_insert_with(Vec::new).push(v),
            (Accumulator::JsonbAgg(items), Some(v)) => items
                .get_or_insert_with(Vec::new)
                .push(crate::expr::to_json(&v, zone)?),
            (Accumulator::JsonAgg(items, _), Some(v)) => items
                .get_or_insert_with(Vec::new)
                .push(crate::expr::json_text(&v, zone)?),
            (Accumulator::ObjectAgg(members, value, jsonb), Some(key)) => {
                if key.is_null() {
                    return Err(SqlError::new(
                        SqlState::INVALID_PARAMETER_VALUE,
                        "field name must not be null",
                    ));
                }
                let key = text::format_text(&key, zone);
                let value = value.take().unwrap_or(Value::Null);
                let value = if *jsonb {
                    Value::Jsonb(crate::expr::to_json(&value, zone)?)
                } else {
                    Value::Json(crate::expr::json_text(&value, zone)?)
                };
                members.get_or_insert_with(Vec::new).push((key, value));
            }
            (_, Some(Value::Null)) => {}
            (Accumulator::Count(n), Some(_)) => *n += 1,
            (Accumulator::Sum(total, ty), Some(v)) => {
                let v = cast::cast(v, ty, false, zone)?;
                *total = Some(match total.take() {
                    None => v,
                    Some(t) => ops::arith(ArithOp::Add, &t, &v, zone)?,
                });
            }
            (Accumulator::Avg(total, count, ty), Some(v)) => {
                let v = cast::cast(v, ty, false, zone)?;
                *total = Some(match total.take() {
                    None => v,
                    Some(t) => ops::arith(ArithOp::Add, &t, &v, zone)?,
                });
                *count += 1;
            }
            (Accumulator::StringAgg(text, delimiter), Some(v)) => {
                let piece = match v {
                    Value::Text(t) => t,
                    other => text::format_text(&other, zone),
                };
                *text = Some(match text.take() {
                    None => piece,
                    Some(mut so_far) => {
                        if let Some(Value::Text(d)) = delimiter {
                            so_far.push_str(d);
                        }
                        so_far.push_str(&piece);
                        so_far
                    }
                });
            }
            (Accumulator::Bool(state, is_and), Some(Value::Bool(b))) => {
                *state = Some(match *state {
                    None => b,
                    Some(s) if *is_and => s && b,
                    Some(s) => s || b,
                });
            }
            (Accumulator::Bool(..), Some(_)) => {
                return Err(SqlError::internal("bool_and/bool_or of a non-boolean"));
            }
            (Accumulator::MinMax(best, is_max), Some(v)) => {
                let replace = match best {
                    None => true,
                    Some(b) => {
                        let ordering = ops::compare(&v, b)?.unwrap_or(Ordering::Equal);
                        if *is_max {
                            ordering == Ordering::Greater
                        } else {
                            ordering == Ordering::Less
                        }
                    }
                };
                if replace {
                    *best = Some(v);
                }
            }
            (_, None) => {}
        }
        Ok(())
    }

    fn finish(self) -> SqlResult<Value> {
        Ok(match self {
            Accumulator::Count(n) => Value::Int8(n),
            Accumulator::Sum(total, _) => total.unwrap_or(Value::Null),
            Accumulator::Avg(None, _, _) => Value::Null,
            Accumulator::Avg(Some(total), count, ty) => {
                let count = match ty {
                    DataType::Interval => Value::Int8(count),
                    _ => cast::cast_to_number(Value::Int8(count), &ty)?,
                };
                // Numbers or intervals: no time zone is involved.
                ops::arith(ArithOp::Div, &total, &count, &TimeZone::utc())?
            }
            Accumulator::MinMax(best, _) => best.unwrap_or(Value::Null),
            Accumulator::StringAgg(text, _) => text.map_or(Value::Null, Value::Text),
            Accumulator::Bool(state, _) => state.map_or(Value::Null, Value::Bool),
            Accumulator::ArrayAgg(items) => items.map_or(Value::Null, Value::Array),
            Accumulator::JsonbAgg(items) => items.map_or(Value::Null, |items| {
                Value::Jsonb(crate::types::json::Json::Array(items).normalized())
            }),
            Accumulator::JsonAgg(items, structured) => items.map_or(Value::Null, |items| {
                let separator = if structured { ", \n " } else { ", " };
                Value::Json(format!("[{}]", items.join(separator)))
            }),
            Accumulator::ObjectAgg(None, ..) => Value::Null,
            Accumulator::ObjectAgg(Some(members), _, true) => {
                use crate::types::json::Json;
                let object = members
                    .into_iter()
                    .map(|(key, value)| match value {
                        Value::Jsonb(json) => (key, json),
                        _ => (key, Json::Null),
                    })
                    .collect();
                Value::Jsonb(Json::Object(object).normalized())
            }
            Accumulator::ObjectAgg(Some(members), _, false) => {
                let mut out = String::from("{ ");
                for (n, (key, value)) in members.iter().enumerate() {
                    if n > 0 {
                        out.push_str(", ");
                    }
                    crate::types::json::write_string(key, &mut out);
                    out.push_str(" : ");
                    if let Value::Json(text) = value {
                        out.push_str(text);
                    }
                }
                out.push_str(" }");
                Value::Json(out)
            }
        })
    }
}

fn sum_type(arg: &DataType) -> DataType {
    match arg {
        DataType::Int2 | DataType::Int4 => DataType::Int8,
        DataType::Interval => DataType::Interval,
        DataType::Float4 => DataType::Float4,
        DataType::Float8 => DataType::Float8,
        _ => DataType::Numeric {
            precision: None,
            scale: None,
        },
    }
}

fn avg_type(arg: &DataType) -> DataType {
    match arg {
        DataType::Float4 | DataType::Float8 => DataType::Float8,
        DataType::Interval => DataType::Interval,
        _ => DataType::Numeric {
            precision: None,
            scale: None,
        },
    }
}

/// GROUP BY and aggregates, fed rows a page at a time. Groups come out in the order they
/// were first seen.
struct Aggregator<'p> {
    aggregation: &'p Aggregation,
    /// Per group: the accumulators, and for DISTINCT calls the values seen.
    groups: HashMap<GroupKey, (Vec<Accumulator>, Vec<HashSet<GroupKey>>)>,
    order: Vec<GroupKey>,
}

impl<'p> Aggregator<'p> {
    fn new(aggregation: &'p Aggregation) -> Self {
        Aggregator {
            aggregation,
            groups: HashMap::new(),
            order: Vec::new(),
        }
    }

    /// Whether some call orders its input (`string_agg(x, ',' ORDER BY y)`): those need every
    /// row at once.
    fn needs_all_rows(aggregation: &Aggregation) -> bool {
        aggregation
            .aggregates
            .iter()
            .any(|call| !call.order_by.is_empty())
    }

    /// Adds `row` to its group (created if new) for the calls without their own ORDER BY;
    /// returns the group's key.
    fn feed(&mut self, row: &[Value], ctx: &ExecContext<'_>) -> SqlResult<GroupKey> {
        let aggregation = self.aggregation;
        let key: Vec<Value> = aggregation
            .group_by
            .iter()
            .map(|g| g.eval(row, &ctx.eval()))
            .collect::<SqlResult<_>>()?;
        let key = GroupKey(key);
        if !self.groups.contains_key(&key) {
            ctx.memory.charge(
                2 * row_bytes(&key.0)
                    + aggregation.aggregates.len() * std::mem::size_of::<Accumulator>(),
                "aggregation groups",
            )?;
            self.order.push(GroupKey(key.0.clone()));
            self.groups.insert(
                GroupKey(key.0.clone()),
                (
                    Self::accumulators(aggregation),
                    (0..aggregation.aggregates.len())
                        .map(|_| HashSet::new())
                        .collect(),
                ),
            );
        }
        if let Some((accumulators, seen)) = self.groups.get_mut(&key) {
            for (i, call) in aggregation.aggregates.iter().enumerate() {
                if call.order_by.is_empty() {
                    feed_aggregate(call, &mut accumulators[i], &mut seen[i], row, ctx)?;
                }
            }
        }
        Ok(key)
    }

    fn accumulators(aggregation: &Aggregation) -> Vec<Accumulator> {
        aggregation
            .aggregates
            .iter()
            .map(|call| Accumulator::new(call.func, call.arg.as_ref()))
            .collect()
    }

    /// The calls with their own ORDER BY, over every input row (`row_groups[n]` is row n's
    /// group, from [`Aggregator::feed`]).
    fn feed_ordered(
        &mut self,
        rows: &[Vec<Value>],
        row_groups: &[GroupKey],
        ctx: &ExecContext<'_>,
    ) -> SqlResult<()> {
        for (i, call) in self.aggregation.aggregates.iter().enumerate() {
            if call.order_by.is_empty() {
                continue;
            }
            let mut keyed = Vec::with_capacity(rows.len());
            for (n, row) in rows.iter().enumerate() {
                let key: Vec<Value> = call
                    .order_by
                    .iter()
                    .map(|(e, _, _)| e.eval(row, &ctx.eval()))
                    .collect::<SqlResult<_>>()?;
                keyed.push((key, n));
            }
            keyed.sort_by(|(a, _), (b, _)| {
                a.iter()
                    .zip(b)
                    .zip(&call.order_by)
                    .map(|((x, y), (_, descending, nulls_first))| {
                        key_order(x, y, *descending, *nulls_first)
                    })
                    .find(|o| *o != Ordering::Equal)
                    .unwrap_or(Ordering::Equal)
            });
            for (_, n) in keyed {
                let Some((accumulators, seen)) =
                    row_groups.get(n).and_then(|k| self.groups.get_mut(k))
                else {
                    continue;
                };
                feed_aggregate(call, &mut accumulators[i], &mut seen[i], &rows[n], ctx)?;
            }
        }
        Ok(())
    }

    /// One row per group (group keys, then aggregate values) that passes HAVING.
    fn finish(mut self, ctx: &ExecContext<'_>) -> SqlResult<Vec<Vec<Value>>> {
        // Aggregates without GROUP BY make one row even from no input.
        if self.aggregation.group_by.is_empty() && self.groups.is_empty() {
            self.order.push(GroupKey(vec![]));
            self.groups.insert(
                GroupKey(vec![]),
                (Self::accumulators(self.aggregation), vec![]),
            );
        }
        let mut out = Vec::with_capacity(self.order.len());
        for key in self.order {
            let Some((accumulators, _)) = self.groups.remove(&key) else {
                continue;
            };
            let mut row = key.0;
            for acc in accumulators {
                row.push(acc.finish()?);
            }
            if let Some(having) = &self.aggregation.having {
                if truth(&having.eval(&row, &ctx.eval())?)? != Some(true) {
                    continue;
                }
            }
            out.push(row);
        }
        Ok(out)
    }
}

/// Aggregates rows held whole (needed when a call orders its input).
fn aggregate(
    rows: &[Vec<Value>],
    aggregation: &Aggregation,
    ctx: &ExecContext<'_>,
) -> SqlResult<Vec<Vec<Value>>> {
    let mut aggregator = Aggregator::new(aggregation);
    let ordered = Aggregator::needs_all_rows(aggregation);
    let mut row_groups = Vec::with_capacity(if ordered { rows.len() } else { 0 });
    for row in rows {
        let key = aggregator.feed(row, ctx)?;
        if ordered {
            row_groups.push(key);
        }
    }
    if ordered {
        aggregator.feed_ordered(rows, &row_groups, ctx)?;
    }
    aggregator.finish(ctx)
}

/// Adds one input row to an aggregate call's accumulator, after its FILTER and DISTINCT.
fn feed_aggregate(
    call: &AggCall,
    acc: &mut Accumulator,
    seen: &mut HashSet<GroupKey>,
    row: &[Value],
    ctx: &ExecContext<'_>,
) -> SqlResult<()> {
    if let Some(filter) = &call.filter {
        if truth(&filter.eval(row, &ctx.eval())?)? != Some(true) {
            return Ok(());
        }
    }
    let value = match &call.arg {
        Some(e) => Some(e.eval(row, &ctx.eval())?),
        None => None,
    };
    if let (Accumulator::StringAgg(_, second) | Accumulator::ObjectAgg(_, second, _), Some(e)) =
        (&mut *acc, &call.second)
    {
        *second = Some(e.eval(row, &ctx.eval())?);
    }
    if call.distinct {
        if let Some(v) = &value {
            // Aggregates that keep NULLs (array_agg, json_agg) keep one distinct NULL too.
            let keeps_nulls = matches!(
                acc,
                Accumulator::ArrayAgg(_)
                    | Accumulator::JsonAgg(..)
                    | Accumulator::JsonbAgg(_)
                    | Accumulator::ObjectAgg(..)
            );
            if (v.is_null() && !keeps_nulls) || !seen.insert(GroupKey(vec![v.clone()])) {
                return Ok(());
            }
            ctx.memory
                .charge_row(std::slice::from_ref(v), "DISTINCT aggregate")?;
        }
    }
    // Aggregates that keep their inputs grow with them.
    if let (
        Accumulator::StringAgg(..)
        | Accumulator::ArrayAgg(_)
        | Accumulator::JsonAgg(..)
        | Accumulator::JsonbAgg(_)
        | Accumulator::ObjectAgg(..),
        Some(v),
    ) = (&*acc, &value)
    {
        ctx.memory
            .charge_row(std::slice::from_ref(v), "aggregate values")?;
    }
    acc.add(value, ctx.zone)
}

fn non_negative(
    expr: &Option<Expr>,
    ctx: &ExecContext<'_>,
    what: &str,
) -> SqlResult<Option<usize>> {
    let Some(expr) = expr else { return Ok(None) };
    match cast::cast(
        expr.eval(&[], &ctx.eval())?,
        &DataType::Int8,
        false,
        ctx.zone,
    )? {
        Value::Null => Ok(None),
        Value::Int8(n) if n >= 0 => Ok(Some(usize::try_from(n).unwrap_or(usize::MAX))),
        _ => Err(SqlError::new(
            if what == "LIMIT" {
                SqlState("2201W")
            } else {
                SqlState("2201X")
            },
            format!("{what} must not be negative"),
        )),
    }
}

/// Joins `left` rows with the rows of `step`'s table: by primary-key lookup per left row
/// when the ON condition fixes the right key, else by a nested loop over the right table read
/// once. Outer joins pad the missing side with NULLs.
/// The 1-based bucket of row `pos` of `rows` split into `buckets` as evenly as possible, the
/// first `rows % buckets` buckets one row larger (PostgreSQL's ntile).
fn ntile(pos: usize, rows: usize, buckets: usize) -> usize {
    let small = rows / buckets;
    let large_rows = (rows % buckets) * (small + 1);
    if pos < large_rows {
        pos / (small + 1) + 1
    } else {
        (rows % buckets) + (pos - large_rows) / small.max(1) + 1
    }
}

/// One join step's state across the pages of left rows it is given: the right table's rows,
/// read once (with a hash table on the join keys), or per-row key lookups.
struct JoinState<'s> {
    step: &'s JoinStep,
    /// The right side read whole; `None` while joining by key lookups.
    built: Option<BuiltSide>,
    /// Left rows joined so far, and when next to try reading the right side whole instead of
    /// looking rows up.
    left_rows: usize,
    probe_at: usize,
}

struct BuiltSide {
    rows: Vec<Vec<Value>>,
    /// Row positions by join-key values (`None`: no equality keys, every pair is tried).
    buckets: Option<HashMap<GroupKey, Vec<usize>>>,
    /// Which right rows found a partner (RIGHT / FULL joins pad the others at the end).
    matched: Vec<bool>,
    /// What the hash table was charged.
    table_bytes: usize,
}

impl<'s> JoinState<'s> {
    async fn new(
        txn: &mut Transaction,
        step: &'s JoinStep,
        ctx: &ExecContext<'_>,
    ) -> SqlResult<JoinState<'s>> {
        let built = match step.lookup {
            Some(_) => None,
            None if lateral_plan(step).is_some() => None,
            None => {
                let rows = scan_rows(txn, &step.scan, ctx)
                    .await?
                    .into_iter()
                    .map(|(key, row)| {
                        ctx.memory.release(key.as_bytes().len());
                        row
                    })
                    .collect();
                Some(BuiltSide::new(rows, step, ctx)?)
            }
        };
        Ok(JoinState {
            step,
            built,
            left_rows: 0,
            probe_at: LOOKUPS_BEFORE_PROBING,
        })
    }

    /// Joins one page of left rows (the padded rows of a LEFT / FULL join included).
    async fn join_page(
        &mut self,
        txn: &mut Transaction,
        left: Vec<Vec<Value>>,
        ctx: &ExecContext<'_>,
    ) -> SqlResult<Vec<Vec<Value>>> {
        self.left_rows += left.len();
        if self.built.is_none() && self.left_rows > self.probe_at {
            self.try_reading_right_whole(txn, ctx).await?;
        }
        match (&mut self.built, &self.step.lookup, lateral_plan(self.step)) {
            (Some(built), _, _) => built.join(left, self.step, ctx).await,
            (None, Some(lookup), _) => lookup_join(txn, left, self.step, lookup, ctx).await,
            (None, None, Some(plan)) => lateral_join(txn, left, self.step, plan, ctx).await,
            (None, None, None) => Err(SqlError::internal("join without a right side")),
        }
    }

    /// Many left rows: reading the right table once may cost less than a lookup per row.
    /// Read it, unfiltered, up to a few rows per left row so far; if it ends within that,
    /// hash-join from now on, else try again when the left side has doubled. Either way the
    /// work stays within a small factor of the cheaper plan's, without statistics. (Not for
    /// FOR UPDATE: that would lock every row read, not only the partners.)
    async fn try_reading_right_whole(
        &mut self,
        txn: &mut Transaction,
        ctx: &ExecContext<'_>,
    ) -> SqlResult<()> {
        self.probe_at = self.left_rows.saturating_mul(2);
        let step = self.step;
        if step.hash.is_none() || step.scan.lock || step.lookup.is_none() {
            return Ok(());
        }
        let budget = self.left_rows.saturating_mul(ROWS_READ_PER_LOOKUP);
        let mut unfiltered = step.scan.clone();
        unfiltered.filter = None;
        unfiltered.access = Access::Full;
        // Read until the table ends, the row budget is spent, or the rows would take more
        // than half the memory still free (then lookups are the way that fits).
        let free_at_start = ctx.memory.available();
        let mut cursor = ScanCursor::open(txn, &unfiltered, ctx, usize::MAX).await?;
        let mut probe = Vec::new();
        let mut complete = false;
        while probe.len() <= budget && ctx.memory.available() > free_at_start / 2 {
            match cursor.next_page(txn, ctx, SCAN_PAGE).await? {
                Some(page) => probe.extend(page),
                None => {
                    complete = true;
                    break;
                }
            }
        }
        let complete = complete && probe.len() <= budget;
        let mut right = Vec::with_capacity(if complete { probe.len() } else { 0 });
        for (key, row) in probe {
            let keep = complete
                && match &step.scan.filter {
                    Some(filter) => truth(&filter.eval(&row, &ctx.eval())?)? == Some(true),
                    None => true,
                };
            if keep {
                ctx.memory.release(key.as_bytes().len());
                right.push(row);
            } else {
                ctx.memory.release(row_bytes(&row) + key.as_bytes().len());
            }
        }
        if complete {
            self.built = Some(BuiltSide::new(right, step, ctx)?);
        }
        Ok(())
    }

    /// After the last page: a RIGHT / FULL join's right rows that found no partner, padded;
    /// and the memory of the right side given back.
    fn finish(&mut self, ctx: &ExecContext<'_>) -> SqlResult<Vec<Vec<Value>>> {
        let Some(built) = self.built.take() else {
            return Ok(vec![]);
        };
        let mut out = Vec::new();
        if matches!(self.step.kind, JoinKind::Right | JoinKind::Full) {
            for (candidate, matched) in built.rows.iter().zip(&built.matched) {
                if !matched {
                    let mut padded: Vec<Value> =
                        std::iter::repeat_n(Value::Null, self.step.left_width).collect();
                    padded.extend(candidate.iter().cloned());
                    ctx.memory.charge_row(&padded, "join")?;
                    out.push(padded);
                }
            }
        }
        ctx.memory.release(built.table_bytes);
        ctx.memory.release_rows(&built.rows);
        Ok(out)
    }
}

/// The values of `exprs` over `row`, as a hash key; `None` if one is NULL (matches nothing).
fn join_key(row: &[Value], exprs: &[Expr], ctx: &ExecContext<'_>) -> SqlResult<Option<GroupKey>> {
    let mut key = Vec::with_capacity(exprs.len());
    for expr in exprs {
        let value = expr.eval(row, &ctx.eval())?;
        if value.is_null() {
            return Ok(None);
        }
        key.push(value);
    }
    Ok(Some(GroupKey(key)))
}

impl BuiltSide {
    fn new(rows: Vec<Vec<Value>>, step: &JoinStep, ctx: &ExecContext<'_>) -> SqlResult<Self> {
        let mut table_bytes = 0;
        let buckets = match &step.hash {
            Some(hash) => {
                let mut buckets: HashMap<GroupKey, Vec<usize>> = HashMap::new();
                for (i, row) in rows.iter().enumerate() {
                    if let Some(key) = join_key(row, &hash.right, ctx)? {
                        let bytes = row_bytes(&key.0) + std::mem::size_of::<usize>();
                        ctx.memory.charge(bytes, "hash join table")?;
                        table_bytes += bytes;
                        buckets.entry(key).or_default().push(i);
                    }
                }
                Some(buckets)
            }
            None => None,
        };
        Ok(BuiltSide {
            matched: vec![false; rows.len()],
            rows,
            buckets,
            table_bytes,
        })
    }

    /// Joins `left` with these rows: by the hash table if the join has equality keys, else
    /// every pair.
    async fn join(
        &mut self,
        left: Vec<Vec<Value>>,
        step: &JoinStep,
        ctx: &ExecContext<'_>,
    ) -> SqlResult<Vec<Vec<Value>>> {
        let right_width = step.scan.table.columns.len();
        let keep_unmatched_left = matches!(step.kind, JoinKind::Left | JoinKind::Full);
        // A hash join's buckets hold only pairs whose keys are equal: the rest of ON remains.
        let (condition, left_keys) = match (&step.hash, &self.buckets) {
            (Some(hash), Some(_)) => (&hash.residual, Some(&hash.left)),
            _ => (&step.on, None),
        };
        let all_rows: Vec<usize> = match left_keys {
            Some(_) => vec![],
            None => (0..self.rows.len()).collect(),
        };
        let mut out = Vec::new();
        // Pairs compared since the last checkpoint: a join without equality keys compares
        // each left row with every right row.
        let mut compared = 0;
        for row in left {
            if compared >= SCAN_PAGE {
                ctx.checkpoint(compared).await?;
                compared = 0;
            }
            let candidates = match (left_keys, &self.buckets) {
                (Some(exprs), Some(buckets)) => match join_key(&row, exprs, ctx)? {
                    Some(key) => buckets.get(&key).map_or(&[][..], Vec::as_slice),
                    None => &[][..],
                },
                _ => &all_rows[..],
            };
            compared += candidates.len().max(1);
            let mut matched = false;
            for &i in candidates {
                let mut combined = row.clone();
                combined.extend(self.rows[i].iter().cloned());
                if join_condition_holds(condition, &combined, ctx)? {
                    matched = true;
                    self.matched[i] = true;
                    ctx.memory.charge_row(&combined, "join")?;
                    out.push(combined);
                }
            }
            if !matched && keep_unmatched_left {
                let mut padded = row;
                padded.extend(std::iter::repeat_n(Value::Null, right_width));
                ctx.memory.charge_row(&padded, "join")?;
                out.push(padded);
            }
        }
        Ok(out)
    }
}

/// The plan of a LATERAL subquery that reads the left side's columns, if the step joins one.
fn lateral_plan(step: &JoinStep) -> Option<&SelectPlan> {
    step.scan.derived.as_deref().filter(|plan| plan.correlated)
}

/// A LATERAL join: the subquery runs once per left row, with that row as its outer row.
async fn lateral_join(
    txn: &mut Transaction,
    left: Vec<Vec<Value>>,
    step: &JoinStep,
    plan: &SelectPlan,
    ctx: &ExecContext<'_>,
) -> SqlResult<Vec<Vec<Value>>> {
    let right_width = step.scan.table.columns.len();
    let keep_unmatched_left = step.kind == JoinKind::Left;
    let mut out = Vec::new();
    for row in left {
        ctx.checkpoint(1).await?;
        let mut outer = ctx.outer.to_vec();
        outer.push(row.clone());
        let inner_ctx = ExecContext {
            outer: &outer,
            correlated: &[],
            ..*ctx
        };
        let mark = ctx.memory.mark();
        let rights = Box::pin(select_rows(txn, plan, &inner_ctx)).await?;
        ctx.memory.reset_to(mark);
        let mut partners = Vec::with_capacity(rights.len());
        for right in rights {
            let keep = match &step.scan.filter {
                Some(filter) => truth(&filter.eval(&right, &ctx.eval())?)? == Some(true),
                None => true,
            };
            if keep {
                partners.push(right);
            }
        }
        join_row(
            row,
            partners,
            step,
            keep_unmatched_left,
            right_width,
            ctx,
            &mut out,
        )?;
    }
    Ok(out)
}

/// Appends `row` joined with each of its candidate `partners` that meets ON, or padded with
/// NULLs if none does and the join keeps unmatched left rows.
fn join_row(
    row: Vec<Value>,
    partners: Vec<Vec<Value>>,
    step: &JoinStep,
    keep_unmatched_left: bool,
    right_width: usize,
    ctx: &ExecContext<'_>,
    out: &mut Vec<Vec<Value>>,
) -> SqlResult<()> {
    let mut matched = false;
    for right in partners {
        let mut combined = row.clone();
        combined.extend(right);
        if join_condition_holds(&step.on, &combined, ctx)? {
            matched = true;
            ctx.memory.charge_row(&combined, "join")?;
            out.push(combined);
        }
    }
    if !matched && keep_unmatched_left {
        let mut padded = row;
        padded.extend(std::iter::repeat_n(Value::Null, right_width));
        ctx.memory.charge_row(&padded, "join")?;
        out.push(padded);
    }
    Ok(())
}

/// An index nested loop: each left row's partner looked up by the right table's key.
async fn lookup_join(
    txn: &mut Transaction,
    left: Vec<Vec<Value>>,
    step: &JoinStep,
    lookup: &[Expr],
    ctx: &ExecContext<'_>,
) -> SqlResult<Vec<Vec<Value>>> {
    let right_width = step.scan.table.columns.len();
    let keep_unmatched_left = matches!(step.kind, JoinKind::Left | JoinKind::Full);
    let mut out = Vec::new();
    for row in left {
        ctx.checkpoint(1).await?;
        let mut key = Vec::with_capacity(lookup.len());
        for expr in lookup {
            key.push(expr.eval(&row, &ctx.eval())?);
        }
        let point = Scan {
            derived: None,
            table: step.scan.table.clone(),
            access: Access::Point(
                key.into_iter()
                    .map(|v| {
                        let ty = v.data_type();
                        Expr::Literal(v, ty)
                    })
                    .collect(),
            ),
            filter: step.scan.filter.clone(),
            lock: step.scan.lock,
        };
        let mut partners = Vec::new();
        for (key, right) in scan_rows(txn, &point, ctx).await? {
            ctx.memory.release(row_bytes(&right) + key.as_bytes().len());
            partners.push(right);
        }
        join_row(
            row,
            partners,
            step,
            keep_unmatched_left,
            right_width,
            ctx,
            &mut out,
        )?;
    }
    Ok(out)
}

fn join_condition_holds(
    condition: &Option<Expr>,
    combined: &[Value],
    ctx: &ExecContext<'_>,
) -> SqlResult<bool> {
    match condition {
        Some(on) => Ok(truth(&on.eval(combined, &ctx.eval())?)? == Some(true)),
        None => Ok(true),
    }
}

/// The rows of a recursive WITH query: the anchor's, then the step's over the rows the last
/// round added, until a round adds none (without ALL, a row already produced is not added).
/// Runaway recursion ends at the memory budget or a cancel, as in PostgreSQL it ends at
/// work_mem's spill limits or a cancel.
async fn recursive_rows(
    txn: &mut Transaction,
    recursive: &crate::plan::RecursiveUnion,
    ctx: &ExecContext<'_>,
    want: usize,
) -> SqlResult<Vec<Vec<Value>>> {
    let conform = |rows: Vec<Vec<Value>>| conform_rows(rows, &recursive.types, ctx.zone);
    let mut seen: HashSet<GroupKey> = HashSet::new();
    let fresh = |rows: Vec<Vec<Value>>, seen: &mut HashSet<GroupKey>| -> Vec<Vec<Value>> {
        if recursive.all {
            return rows;
        }
        rows.into_iter()
            .filter(|row| seen.insert(GroupKey(row.clone())))
            .collect()
    };
    let anchor = conform(select_rows(txn, &recursive.anchor, ctx).await?)?;
    let mut working = fresh(anchor, &mut seen);
    let mut out = working.clone();
    // Rounds stop once the reader has what it wants (PostgreSQL's LIMIT idiom for
    // recursion that would not end by itself).
    while !working.is_empty() && out.len() < want {
        ctx.checkpoint(1).await?;
        let mut tables = ctx.working.to_vec();
        tables.push((recursive.id, std::mem::take(&mut working)));
        let round_ctx = ExecContext {
            working: &tables,
            ..*ctx
        };
        let added = conform(select_rows(txn, &recursive.step, &round_ctx).await?)?;
        working = fresh(added, &mut seen);
        for row in &working {
            ctx.memory.charge_row(row, "recursive query")?;
        }
        out.extend(working.iter().cloned());
    }
    Ok(out)
}

/// `rows` with each value cast to its column's type (text stays text for text-like types).
fn conform_rows(
    rows: Vec<Vec<Value>>,
    types: &[DataType],
    zone: &TimeZone,
) -> SqlResult<Vec<Vec<Value>>> {
    rows.into_iter()
        .map(|row| {
            row.into_iter()
                .zip(types)
                .map(|(v, ty)| {
                    if v.is_null()
                        || v.data_type() == *ty
                        || ty.is_text() && matches!(v, Value::Text(_))
                    {
                        Ok(v)
                    } else {
                        cast::cast(v, ty, false, zone)
                    }
                })
                .collect()
        })
        .collect()
}

/// The rows of UNION / INTERSECT / EXCEPT [ALL], both sides cast to the result's types.
async fn set_operation_rows(
    txn: &mut Transaction,
    set: &crate::plan::SetOperation,
    ctx: &ExecContext<'_>,
) -> SqlResult<Vec<Vec<Value>>> {
    use crate::plan::SetOperator;
    let conform = |rows: Vec<Vec<Value>>| conform_rows(rows, &set.types, ctx.zone);
    let left = conform(select_rows(txn, &set.left, ctx).await?)?;
    let right = conform(select_rows(txn, &set.right, ctx).await?)?;
    // Both sides were charged as result rows; the hash tables hold at most a copy of each.
    let sides_bytes: usize = left.iter().chain(&right).map(|row| row_bytes(row)).sum();
    ctx.memory.charge(sides_bytes, "set operation")?;
    // Multiplicity of each distinct row of the right side.
    let mut right_counts: HashMap<GroupKey, usize> = HashMap::new();
    if set.operator != SetOperator::Union {
        for row in &right {
            *right_counts.entry(GroupKey(row.clone())).or_default() += 1;
        }
    }
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    match set.operator {
        SetOperator::Union => {
            for row in left.into_iter().chain(right) {
                if set.all || seen.insert(GroupKey(row.clone())) {
                    out.push(row);
                }
            }
        }
        SetOperator::Intersect => {
            for row in left {
                let key = GroupKey(row.clone());
                let Some(count) = right_counts.get_mut(&key) else {
                    continue;
                };
                if set.all {
                    if *count > 0 {
                        *count -= 1;
                        out.push(row);
                    }
                } else if seen.insert(key) {
                    out.push(row);
                }
            }
        }
        SetOperator::Except => {
            for row in left {
                let key = GroupKey(row.clone());
                match right_counts.get_mut(&key) {
                    Some(count) if *count > 0 && set.all => *count -= 1,
                    Some(_) if !set.all => {}
                    _ => {
                        if set.all || seen.insert(key) {
                            out.push(row);
                        }
                    }
                }
            }
        }
    }
    ctx.memory.release(2 * sides_bytes);
    for row in &out {
        ctx.memory.charge_row(row, "set operation")?;
    }
    Ok(out)
}

/// Sorts result rows (sort keys, projected row) by their first `order_by.len()` keys. A
/// sort never yields, so a large one runs on tokio's blocking pool: on a connection thread it
/// would hold up the thread's other connections until it ends.
async fn sort_rows(
    rows: Vec<(Vec<Value>, Vec<Value>)>,
    order_by: &[SortKey],
) -> SqlResult<Vec<(Vec<Value>, Vec<Value>)>> {
    let order: Vec<(bool, bool)> = order_by
        .iter()
        .map(|key| (key.descending, key.nulls_first))
        .collect();
    let sort = move |mut rows: Vec<(Vec<Value>, Vec<Value>)>| {
        rows.sort_by(|(a, _), (b, _)| {
            a.iter()
                .zip(b)
                .zip(&order)
                .map(|((x, y), &(descending, nulls_first))| {
                    key_order(x, y, descending, nulls_first)
                })
                .find(|o| o.is_ne())
                .unwrap_or(Ordering::Equal)
        });
        rows
    };
    if rows.len() <= SORT_IN_PLACE_ROWS {
        return Ok(sort(rows));
    }
    tokio::task::spawn_blocking(move || sort(rows))
        .await
        .map_err(|e| SqlError::internal(format!("sorting the result rows failed: {e}")))
}

/// Orders two values as an ORDER BY key does.
fn key_order(x: &Value, y: &Value, descending: bool, nulls_first: bool) -> Ordering {
    match (x.is_null(), y.is_null()) {
        (true, true) => Ordering::Equal,
        (true, false) => {
            if nulls_first {
                Ordering::Less
            } else {
                Ordering::Greater
            }
        }
        (false, true) => {
            if nulls_first {
                Ordering::Greater
            } else {
                Ordering::Less
            }
        }
        (false, false) => {
            let o = ops::total_cmp(x, y);
            if descending {
                o.reverse()
            } else {
                o
            }
        }
    }
}

/// Appends each window call's value to every row. Each call sorts the rows by its partition
/// and order keys; frames are PostgreSQL's default (the partition up to the current row's last
/// peer when ordered, the whole partition otherwise). Aggregates over a frame accumulate as
/// the frame grows, one result per peer group.
fn compute_windows(
    rows: &mut [Vec<Value>],
    windows: &[crate::expr::WindowCall],
    ctx: &ExecContext<'_>,
) -> SqlResult<()> {
    use crate::expr::WindowFunc;
    let n = rows.len();
    let mut results: Vec<Vec<Value>> = vec![Vec::with_capacity(windows.len()); n];
    for call in windows {
        let mut keyed = Vec::with_capacity(n);
        for (i, row) in rows.iter().enumerate() {
            let partition = call
                .partition_by
                .iter()
                .map(|e| e.eval(row, &ctx.eval()))
                .collect::<SqlResult<Vec<_>>>()?;
            let order = call
                .order_by
                .iter()
                .map(|(e, _, _)| e.eval(row, &ctx.eval()))
                .collect::<SqlResult<Vec<_>>>()?;
            ctx.memory.charge(
                row_bytes(&partition) + row_bytes(&order) + std::mem::size_of::<Value>(),
                "window function",
            )?;
            keyed.push((partition, order, i));
        }
        keyed.sort_by(|(pa, oa, ia), (pb, ob, ib)| {
            for (x, y) in pa.iter().zip(pb) {
                let o = key_order(x, y, false, false);
                if o != Ordering::Equal {
                    return o;
                }
            }
            for ((x, y), (_, desc, nulls_first)) in oa.iter().zip(ob).zip(&call.order_by) {
                let o = key_order(x, y, *desc, *nulls_first);
                if o != Ordering::Equal {
                    return o;
                }
            }
            ia.cmp(ib)
        });
        let same = |a: &[Value], b: &[Value]| {
            a.iter()
                .zip(b)
                .all(|(x, y)| key_order(x, y, false, false) == Ordering::Equal)
        };
        // Row and group counts; RANGE distances are `range_offset`'s.
        let (start_offset, end_offset) = match call.frame.units {
            FrameUnits::Range => (0, 0),
            _ => (
                frame_offset(&call.frame.start, "starting", ctx)?,
                frame_offset(&call.frame.end, "ending", ctx)?,
            ),
        };
        let range_start = range_offset(&call.frame, &call.frame.start, "starting", ctx)?;
        let range_end = range_offset(&call.frame, &call.frame.end, "ending", ctx)?;
        let mut out = vec![Value::Null; n];
        let mut start = 0;
        while start < n {
            let mut end = start + 1;
            while end < n && same(&keyed[start].0, &keyed[end].0) {
                end += 1;
            }
            let part = &keyed[start..end];
            // Last peer position (in the partition) for each position.
            let mut last_peer = vec![0; part.len()];
            let mut first_peer = vec![0; part.len()];
            let mut group_start = 0;
            let mut dense = vec![0i64; part.len()];
            let mut groups = 0;
            for pos in 0..part.len() {
                if pos == 0 || !same(&part[pos - 1].1, &part[pos].1) {
                    group_start = pos;
                    groups += 1;
                }
                first_peer[pos] = group_start;
                dense[pos] = groups;
            }
            for pos in (0..part.len()).rev() {
                last_peer[pos] = if pos + 1 < part.len() && first_peer[pos + 1] == first_peer[pos] {
                    last_peer[pos + 1]
                } else {
                    pos
                };
            }
            let arg = |k: usize, pos: usize| -> SqlResult<Value> {
                match call.args.get(k) {
                    Some(e) => e.eval(&rows[part[pos].2], &ctx.eval()),
                    None => Ok(Value::Null),
                }
            };
            // First and last position of each peer group, by group number (dense rank - 1).
            let group_count = dense.last().copied().unwrap_or(0) as usize;
            let mut group_first = vec![0; group_count];
            let mut group_last = vec![0; group_count];
            for pos in 0..part.len() {
                let g = dense[pos] as usize - 1;
                group_first[g] = first_peer[pos];
                group_last[g] = last_peer[pos];
            }
            let bounds = FrameBounds {
                frame: &call.frame,
                start_offset,
                end_offset,
                range_start: range_start.clone(),
                range_end: range_end.clone(),
                keys: part
                    .iter()
                    .map(|(_, order, _)| order.first().cloned().unwrap_or(Value::Null))
                    .collect(),
                descending: call.order_by.first().is_some_and(|(_, d, _)| *d),
                nulls_first: call.order_by.first().is_some_and(|(_, _, n)| *n),
                first_peer: &first_peer,
                last_peer: &last_peer,
                dense: &dense,
                group_first: &group_first,
                group_last: &group_last,
                zone: ctx.zone,
            };
            // A window aggregate's state: with the frame starting at the partition's start,
            // rows 0..added are in it and it only grows; else it is rebuilt for each new frame.
            // The value for the last frame computed is reused while the frame stays the same.
            let running_frame = call.frame.start == FrameBound::UnboundedPreceding;
            let new_accumulator = || match call.func {
                WindowFunc::Aggregate(func) => Some(Accumulator::new(func, call.args.first())),
                _ => None,
            };
            let mut running = new_accumulator();
            let mut added = 0;
            let mut last_frame: Option<((usize, usize), Value)> = None;
            for pos in 0..part.len() {
                let frame = bounds.of(pos, part.len());
                let value = match call.func {
                    WindowFunc::RowNumber => Value::Int8(pos as i64 + 1),
                    WindowFunc::Rank => Value::Int8(first_peer[pos] as i64 + 1),
                    WindowFunc::DenseRank => Value::Int8(dense[pos]),
                    WindowFunc::PercentRank => Value::Float8(if part.len() > 1 {
                        first_peer[pos] as f64 / (part.len() - 1) as f64
                    } else {
                        0.0
                    }),
                    WindowFunc::CumeDist => {
                        Value::Float8((last_peer[pos] + 1) as f64 / part.len() as f64)
                    }
                    WindowFunc::Ntile => match arg(0, pos)? {
                        Value::Null => Value::Null,
                        Value::Int4(buckets) if buckets > 0 => {
                            Value::Int4(ntile(pos, part.len(), buckets as usize) as i32)
                        }
                        _ => {
                            return Err(SqlError::new(
                                SqlState("22014"),
                                "argument of ntile must be greater than zero",
                            ))
                        }
                    },
                    WindowFunc::Lag | WindowFunc::Lead => {
                        let offset = match call.args.get(1) {
                            Some(_) => match arg(1, pos)? {
                                Value::Int8(o) => o,
                                Value::Null => {
                                    return Err(SqlError::new(
                                        SqlState::INVALID_PARAMETER_VALUE,
                                        "offset must not be null",
                                    ))
                                }
                                other => cast_offset(other)?,
                            },
                            None => 1,
                        };
                        let target = if call.func == WindowFunc::Lag {
                            (pos as i64).saturating_sub(offset)
                        } else {
                            (pos as i64).saturating_add(offset)
                        };
                        if target >= 0 && (target as usize) < part.len() {
                            arg(0, target as usize)?
                        } else {
                            arg(2, pos)?
                        }
                    }
                    WindowFunc::FirstValue => match frame {
                        Some((first, _)) => arg(0, first)?,
                        None => Value::Null,
                    },
                    WindowFunc::LastValue => match frame {
                        Some((_, last)) => arg(0, last)?,
                        None => Value::Null,
                    },
                    WindowFunc::NthValue => match arg(1, pos)? {
                        Value::Null => Value::Null,
                        Value::Int4(n) if n > 0 => match (usize::try_from(n - 1), frame) {
                            (Ok(k), Some((first, last))) if first + k <= last => arg(0, first + k)?,
                            _ => Value::Null,
                        },
                        _ => {
                            return Err(SqlError::new(
                                SqlState("22016"),
                                "argument of nth_value must be greater than zero",
                            ))
                        }
                    },
                    WindowFunc::Aggregate(_) => {
                        let Some((first, last)) = frame else {
                            // No row in the frame: the aggregate of nothing.
                            out[part[pos].2] = match new_accumulator() {
                                Some(empty) => empty.finish()?,
                                None => Value::Null,
                            };
                            continue;
                        };
                        match &last_frame {
                            Some((seen, value)) if *seen == (first, last) => value.clone(),
                            _ => {
                                if !running_frame {
                                    running = new_accumulator();
                                    added = first;
                                }
                                let Some(acc) = running.as_mut() else {
                                    return Err(SqlError::internal("window aggregate state"));
                                };
                                while added <= last {
                                    let value = match call.args.first() {
                                        Some(_) => Some(arg(0, added)?),
                                        None => None,
                                    };
                                    acc.add(value, ctx.zone)?;
                                    added += 1;
                                }
                                let value = acc.clone().finish()?;
                                last_frame = Some(((first, last), value.clone()));
                                value
                            }
                        }
                    }
                };
                out[part[pos].2] = value;
            }
            start = end;
        }
        for (i, value) in out.into_iter().enumerate() {
            results[i].push(value);
        }
    }
    for (row, extra) in rows.iter_mut().zip(results) {
        row.extend(extra);
    }
    Ok(())
}

/// A frame bound's offset (0 for bounds without one): not NULL, not negative.
fn frame_offset(bound: &FrameBound, which: &str, ctx: &ExecContext<'_>) -> SqlResult<usize> {
    let (FrameBound::Preceding(expr) | FrameBound::Following(expr)) = bound else {
        return Ok(0);
    };
    match cast::cast(
        expr.eval(&[], &ctx.eval())?,
        &DataType::Int8,
        false,
        ctx.zone,
    )? {
        Value::Null => Err(SqlError::new(
            SqlState("22004"),
            format!("frame {which} offset must not be null"),
        )),
        Value::Int8(n) if n >= 0 => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
        _ => Err(SqlError::new(
            SqlState("22013"),
            format!("frame {which} offset must not be negative"),
        )),
    }
}

/// A RANGE bound's distance (NULL: 22004; negative: 22013), or `None` for other bounds.
fn range_offset(
    frame: &Frame,
    bound: &FrameBound,
    which: &str,
    ctx: &ExecContext<'_>,
) -> SqlResult<Option<Value>> {
    let (FrameBound::Preceding(expr) | FrameBound::Following(expr)) = bound else {
        return Ok(None);
    };
    if frame.units != FrameUnits::Range {
        return Ok(None);
    }
    let value = expr.eval(&[], &ctx.eval())?;
    if value.is_null() {
        return Err(SqlError::new(
            SqlState("22004"),
            format!("frame {which} offset must not be null"),
        ));
    }
    let zero = match &value {
        Value::Interval(_) => Value::Interval(crate::types::interval::Interval::default()),
        _ => Value::Int4(0),
    };
    if ops::compare(&value, &zero)? == Some(Ordering::Less) {
        return Err(SqlError::new(
            SqlState("22013"),
            "invalid preceding or following size in window function",
        ));
    }
    Ok(Some(value))
}

/// Where a window frame starts and ends for each position of a partition.
struct FrameBounds<'f> {
    frame: &'f Frame,
    start_offset: usize,
    end_offset: usize,
    first_peer: &'f [usize],
    last_peer: &'f [usize],
    /// Peer group number of each position, from 1.
    dense: &'f [i64],
    group_first: &'f [usize],
    group_last: &'f [usize],
    /// For RANGE with offsets: the distances, and each position's ORDER BY key with the
    /// key's direction (descending, nulls first).
    range_start: Option<Value>,
    range_end: Option<Value>,
    keys: Vec<Value>,
    descending: bool,
    nulls_first: bool,
    /// The session's time zone (a timestamptz key ± an interval steps its wall clock).
    zone: &'f TimeZone,
}

impl FrameBounds<'_> {
    /// The frame of position `pos` in a partition of `len` rows, as first and last position;
    /// `None` if it holds no row.
    /// The first position whose key is not before `target` in the partition's order
    /// (`inclusive`: not after it, plus one); keys are sorted, so a binary search.
    fn key_boundary(&self, target: &Value, inclusive: bool) -> usize {
        self.keys.partition_point(|key| {
            if key.is_null() {
                return self.nulls_first;
            }
            let order = ops::total_cmp(key, target);
            let order = if self.descending {
                order.reverse()
            } else {
                order
            };
            order == Ordering::Less || (inclusive && order == Ordering::Equal)
        })
    }

    /// A RANGE offset bound of position `pos`: the position range's start (`end == false`)
    /// or one past its end.
    fn range_bound(
        &self,
        pos: usize,
        bound: &FrameBound,
        distance: &Value,
        end: bool,
    ) -> SqlResult<usize> {
        let current = &self.keys[pos];
        if current.is_null() {
            // NULL keys are peers of each other only.
            return Ok(if end {
                self.last_peer[pos] + 1
            } else {
                self.first_peer[pos]
            });
        }
        let toward_start = matches!(bound, FrameBound::Preceding(_)) != self.descending;
        let op = if toward_start {
            ArithOp::Sub
        } else {
            ArithOp::Add
        };
        let target = ops::arith(op, current, distance, self.zone)?;
        Ok(self.key_boundary(&target, end))
    }

    fn of(&self, pos: usize, len: usize) -> Option<(usize, usize)> {
        if let Some(frame) = self.range_frame(pos, len) {
            return frame;
        }
        let group = self.dense[pos] as usize - 1;
        let groups = self.group_first.len();
        let rows = self.frame.units == FrameUnits::Rows;
        // Positions as i128 so that offsets past either end need no care.
        let (pos_w, len_w) = (pos as i128, len as i128);
        let first: i128 = match &self.frame.start {
            FrameBound::UnboundedPreceding => 0,
            FrameBound::CurrentRow if rows => pos_w,
            FrameBound::CurrentRow => self.first_peer[pos] as i128,
            FrameBound::Preceding(_) if rows => pos_w - self.start_offset as i128,
            FrameBound::Preceding(_) => match group.checked_sub(self.start_offset) {
                Some(g) => self.group_first[g] as i128,
                None => 0,
            },
            FrameBound::Following(_) if rows => pos_w + self.start_offset as i128,
            FrameBound::Following(_) => match group.checked_add(self.start_offset) {
                Some(g) if g < groups => self.group_first[g] as i128,
                _ => len_w,
            },
            FrameBound::UnboundedFollowing => len_w,
        };
        let last: i128 = match &self.frame.end {
            FrameBound::UnboundedFollowing => len_w - 1,
            FrameBound::CurrentRow if rows => pos_w,
            FrameBound::CurrentRow => self.last_peer[pos] as i128,
            FrameBound::Following(_) if rows => pos_w + self.end_offset as i128,
            FrameBound::Following(_) => match group.checked_add(self.end_offset) {
                Some(g) if g < groups => self.group_last[g] as i128,
                _ => len_w - 1,
            },
            FrameBound::Preceding(_) if rows => pos_w - self.end_offset as i128,
            FrameBound::Preceding(_) => match group.checked_sub(self.end_offset) {
                Some(g) => self.group_last[g] as i128,
                None => -1,
            },
            FrameBound::UnboundedPreceding => -1,
        };
        let (first, last) = (first.max(0), last.min(len_w - 1));
        (first <= last).then_some((first as usize, last as usize))
    }

    /// The frame when a RANGE bound has an offset; `None` when neither has one.
    fn range_frame(&self, pos: usize, len: usize) -> Option<Option<(usize, usize)>> {
        if self.range_start.is_none() && self.range_end.is_none() {
            return None;
        }
        let first = match (&self.range_start, &self.frame.start) {
            (Some(distance), bound) => match self.range_bound(pos, bound, distance, false) {
                Ok(position) => position,
                Err(_) => return Some(None), // out of the type's range: no row
            },
            (None, FrameBound::CurrentRow) => self.first_peer[pos],
            (None, FrameBound::UnboundedFollowing) => len,
            (None, _) => 0,
        };
        let after_last = match (&self.range_end, &self.frame.end) {
            (Some(distance), bound) => match self.range_bound(pos, bound, distance, true) {
                Ok(position) => position,
                Err(_) => return Some(None),
            },
            (None, FrameBound::CurrentRow) => self.last_peer[pos] + 1,
            (None, FrameBound::UnboundedPreceding) => 0,
            (None, _) => len,
        };
        Some((first < after_last).then(|| (first, after_last - 1)))
    }
}

fn cast_offset(value: Value) -> SqlResult<i64> {
    match cast::cast_to_number(value, &DataType::Int8)? {
        Value::Int8(o) => Ok(o),
        _ => Err(SqlError::new(
            SqlState::INVALID_PARAMETER_VALUE,
            "offset must be an integer",
        )),
    }
}

/// Runs a SELECT.
pub async fn select_rows(
    txn: &mut Transaction,
    select: &SelectPlan,
    ctx: &ExecContext<'_>,
) -> SqlResult<Vec<Vec<Value>>> {
    select_rows_wanting(txn, select, ctx, usize::MAX).await
}

/// [`select_rows`] for a reader that takes at most `want` rows.
async fn select_rows_wanting(
    txn: &mut Transaction,
    select: &SelectPlan,
    ctx: &ExecContext<'_>,
    want: usize,
) -> SqlResult<Vec<Vec<Value>>> {
    let limit = non_negative(&select.limit, ctx, "LIMIT")?;
    let offset = non_negative(&select.offset, ctx, "OFFSET")?.unwrap_or(0);
    // Stop reading early when nothing after the scan needs every row.
    let streaming = select.aggregation.is_none()
        && select.order_by.is_empty()
        && !select.distinct
        && select.distinct_on.is_empty()
        && select.windows.is_empty()
        && select.joins.is_empty()
        && select.filter.is_none();
    let read_limit = match (streaming, limit.unwrap_or(usize::MAX).min(want)) {
        (true, usize::MAX) => usize::MAX,
        (true, needed) => needed.saturating_add(offset),
        (false, _) => usize::MAX,
    };
    // Rows reach the aggregation page by page when it can take them so (nothing orders an
    // aggregate's input): then only the groups are held, not every joined row.
    let mut aggregator = select
        .aggregation
        .as_ref()
        .filter(|a| !Aggregator::needs_all_rows(a))
        .map(Aggregator::new);
    let mut input: Vec<Vec<Value>> = Vec::new();
    let mut sink = Sink {
        filter: &select.filter,
        aggregator: &mut aggregator,
        input: &mut input,
    };
    if let Some(set) = &select.set_operation {
        let rows = Box::pin(set_operation_rows(txn, set, ctx)).await?;
        sink.take(txn, rows, ctx).await?;
    } else if let Some(series) = &select.series {
        sink.take(txn, series_rows(series, ctx, read_limit)?, ctx)
            .await?;
    } else if let Some((function, arg)) = &select.set_function {
        let mut rows = set_function_rows(*function, arg.eval(&[], &ctx.eval())?)?;
        if !select.zipped.is_empty() {
            let mut widths = vec![function.width()];
            let mut each = vec![rows];
            for (function, arg) in &select.zipped {
                widths.push(function.width());
                each.push(set_function_rows(*function, arg.eval(&[], &ctx.eval())?)?);
            }
            let longest = each.iter().map(Vec::len).max().unwrap_or(0);
            rows = (0..longest)
                .map(|i| {
                    each.iter()
                        .zip(&widths)
                        .flat_map(|(rows, &width)| match rows.get(i) {
                            Some(row) => row.clone(),
                            None => vec![Value::Null; width],
                        })
                        .collect()
                })
                .collect();
        }
        if select.ordinality {
            for (n, row) in rows.iter_mut().enumerate() {
                row.push(Value::Int8(i64::try_from(n + 1).unwrap_or(i64::MAX)));
            }
        }
        for row in &rows {
            ctx.memory.charge_row(row, "set-returning function")?;
        }
        sink.take(txn, rows, ctx).await?;
    } else if let Some(recursive) = &select.recursive {
        let rows = Box::pin(recursive_rows(txn, recursive, ctx, read_limit)).await?;
        sink.take(txn, rows, ctx).await?;
    } else if let Some(id) = select.working_table {
        let rows = ctx
            .working
            .iter()
            .rev()
            .find(|(i, _)| *i == id)
            .map(|(_, rows)| rows.clone())
            .ok_or_else(|| SqlError::internal(format!("working table {id} is not set")))?;
        for row in &rows {
            ctx.memory.charge_row(row, "recursive query")?;
        }
        sink.take(txn, rows, ctx).await?;
    } else if let Some(scan) = &select.scan {
        let mut joins = Vec::with_capacity(select.joins.len());
        for step in &select.joins {
            joins.push(JoinState::new(txn, step, ctx).await?);
        }
        let mut cursor = ScanCursor::open(txn, scan, ctx, read_limit).await?;
        let mut remaining = read_limit;
        while remaining > 0 {
            let Some(page) = cursor.next_page(txn, ctx, remaining).await? else {
                break;
            };
            remaining = remaining.saturating_sub(page.len());
            let mut rows: Vec<Vec<Value>> = page
                .into_iter()
                .map(|(key, row)| {
                    ctx.memory.release(key.as_bytes().len());
                    row
                })
                .collect();
            for join in &mut joins {
                rows = join_through(join, txn, rows, ctx).await?;
            }
            sink.take(txn, rows, ctx).await?;
        }
        // RIGHT and FULL joins add their right rows that found no partner, which then go
        // through the joins after them.
        for i in 0..joins.len() {
            let mut rows = joins[i].finish(ctx)?;
            for join in &mut joins[i + 1..] {
                rows = join_through(join, txn, rows, ctx).await?;
            }
            sink.take(txn, rows, ctx).await?;
        }
    } else {
        sink.take(txn, vec![vec![]], ctx).await?;
    }
    let rows = match (&select.aggregation, aggregator) {
        (_, Some(aggregator)) => aggregator.finish(ctx)?,
        (Some(aggregation), None) => {
            let groups = aggregate(&input, aggregation, ctx)?;
            ctx.memory.release_rows(&input);
            groups
        }
        (None, None) => input,
    };
    let mut rows = rows;
    if !select.windows.is_empty() {
        compute_windows(&mut rows, &select.windows, ctx)?;
    }
    let mut produced: Vec<(Vec<Value>, Vec<Value>)> = Vec::with_capacity(rows.len());
    let correlated = correlated_in(
        select
            .projection
            .iter()
            .chain(select.order_by.iter().map(|k| &k.expr))
            .chain(&select.distinct_on),
        ctx,
    );
    // After grouping, correlated subqueries read the grouped columns where the scan had them.
    let group_columns: Vec<(usize, usize)> = match &select.aggregation {
        Some(aggregation) if !correlated.is_empty() => aggregation
            .group_by
            .iter()
            .enumerate()
            .filter_map(|(key, expr)| match expr {
                Expr::Column { index, .. } => Some((*index, key)),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    for (n, row) in rows.into_iter().enumerate() {
        // Projecting a large result is work like a scan's: let the thread's others run.
        if n % SCAN_PAGE == SCAN_PAGE - 1 {
            ctx.checkpoint(SCAN_PAGE).await?;
        }
        ctx.sequences.top_up(txn).await?;
        let row = &row;
        ctx.memory.release(row_bytes(row));
        let results = if group_columns.is_empty() {
            correlated_rows(txn, &correlated, row, ctx).await?
        } else {
            let width = group_columns
                .iter()
                .map(|&(at, _)| at + 1)
                .max()
                .unwrap_or(0);
            let mut scan_row = vec![Value::Null; width];
            for &(at, key) in &group_columns {
                scan_row[at] = row[key].clone();
            }
            correlated_rows(txn, &correlated, &scan_row, ctx).await?
        };
        let ctx = &ExecContext {
            correlated: &results,
            ..*ctx
        };
        let mut keys = select
            .order_by
            .iter()
            .map(|k| k.expr.eval(row, &ctx.eval()))
            .collect::<SqlResult<Vec<_>>>()?;
        // DISTINCT ON keys ride behind the sort keys (the sort compares only those).
        for expr in &select.distinct_on {
            keys.push(expr.eval(row, &ctx.eval())?);
        }
        let projected = project(&select.projection, row, ctx)?;
        ctx.memory
            .charge(row_bytes(&keys) + row_bytes(&projected), "result rows")?;
        produced.push((keys, projected));
    }
    if !select.order_by.is_empty() {
        produced = sort_rows(produced, &select.order_by).await?;
    }
    if !select.distinct_on.is_empty() {
        let sort_width = select.order_by.len();
        let mut seen = HashSet::new();
        produced.retain(|(keys, _)| seen.insert(GroupKey(keys[sort_width..].to_vec())));
    }
    let mut out: Vec<Vec<Value>> = produced.into_iter().map(|(_, row)| row).collect();
    if select.distinct {
        let mut seen = HashSet::new();
        out.retain(|row| seen.insert(GroupKey(row.clone())));
    }
    let out: Vec<Vec<Value>> = out
        .into_iter()
        .skip(offset)
        .take(limit.unwrap_or(usize::MAX))
        .collect();
    Ok(out)
}

/// The rows of a set-returning function of one argument (none for NULL).
fn set_function_rows(function: crate::plan::SetFunction, arg: Value) -> SqlResult<Vec<Vec<Value>>> {
    use crate::plan::SetFunction;
    use crate::types::json::Json;
    let as_value = |json: Json, text: bool| match (json, text) {
        (json, false) => Value::Jsonb(json),
        (json, true) => json.as_text().map_or(Value::Null, Value::Text),
    };
    let doc = match &arg {
        Value::Jsonb(json) => Some(json.clone()),
        _ => None,
    };
    Ok(match (function, arg, doc) {
        (SetFunction::Unnest, Value::Array(items), _) => {
            items.into_iter().map(|item| vec![item]).collect()
        }
        (SetFunction::Subscripts { from_zero }, Value::Array(items), _) => {
            let first = usize::from(!from_zero);
            (first..items.len() + first)
                .map(|i| vec![Value::Int4(i32::try_from(i).unwrap_or(i32::MAX))])
                .collect()
        }
        (SetFunction::JsonbEach { text }, _, Some(Json::Object(members))) => members
            .into_iter()
            .map(|(key, value)| vec![Value::Text(key), as_value(value, text)])
            .collect(),
        (SetFunction::JsonbObjectKeys, _, Some(Json::Object(members))) => members
            .into_iter()
            .map(|(key, _)| vec![Value::Text(key)])
            .collect(),
        (SetFunction::JsonbArrayElements { text }, _, Some(Json::Array(items))) => items
            .into_iter()
            .map(|item| vec![as_value(item, text)])
            .collect(),
        (SetFunction::JsonbEach { .. }, _, Some(_)) => {
            return Err(SqlError::new(
                SqlState::INVALID_PARAMETER_VALUE,
                "cannot call jsonb_each on a non-object",
            ))
        }
        (SetFunction::JsonbObjectKeys, _, Some(_)) => {
            return Err(SqlError::new(
                SqlState::INVALID_PARAMETER_VALUE,
                "cannot call jsonb_object_keys on a non-object",
            ))
        }
        (SetFunction::JsonbArrayElements { .. }, _, Some(Json::Object(_))) => {
            return Err(SqlError::new(
                SqlState::INVALID_PARAMETER_VALUE,
                "cannot extract elements from an object",
            ))
        }
        (SetFunction::JsonbArrayElements { .. }, _, Some(_)) => {
            return Err(SqlError::new(
                SqlState::INVALID_PARAMETER_VALUE,
                "cannot extract elements from a scalar",
            ))
        }
        _ => vec![],
    })
}

/// The rows of `generate_series`: from `start` by `step` while not past `stop` (none if an
/// argument is NULL). Integers are counted in i128 so that a series ending at the type's
/// limit stops there instead of overflowing.
fn series_rows(series: &Series, ctx: &ExecContext<'_>, limit: usize) -> SqlResult<Vec<Vec<Value>>> {
    let start = series.start.eval(&[], &ctx.eval())?;
    let stop = series.stop.eval(&[], &ctx.eval())?;
    let step = match &series.step {
        Some(step) => step.eval(&[], &ctx.eval())?,
        None => cast::cast(Value::Int4(1), &series.data_type, false, ctx.zone)?,
    };
    if start.is_null() || stop.is_null() || step.is_null() {
        return Ok(vec![]);
    }
    let zero = match &step {
        Value::Interval(_) => Value::Interval(crate::types::interval::Interval::default()),
        _ => cast::cast(Value::Int4(0), &series.data_type, false, ctx.zone)?,
    };
    let ascending = match ops::total_cmp(&step, &zero) {
        Ordering::Equal => {
            return Err(SqlError::new(
                SqlState::INVALID_PARAMETER_VALUE,
                "step size cannot equal zero",
            ))
        }
        order => order == Ordering::Greater,
    };
    let within = |value: &Value| match ops::total_cmp(value, &stop) {
        Ordering::Equal => true,
        Ordering::Less => ascending,
        Ordering::Greater => !ascending,
    };
    let as_wide = |value: &Value| match value {
        Value::Int4(v) => Some(i128::from(*v)),
        Value::Int8(v) => Some(i128::from(*v)),
        _ => None,
    };
    let mut out = Vec::new();
    if let (Some(mut at), Some(last), Some(by)) = (as_wide(&start), as_wide(&stop), as_wide(&step))
    {
        while out.len() < limit && (if ascending { at <= last } else { at >= last }) {
            if out.len() % SCAN_PAGE == 0 {
                ctx.check_cancel()?;
            }
            // Within [start, stop], so it fits the type.
            let row = vec![match series.data_type {
                DataType::Int4 => Value::Int4(at as i32),
                _ => Value::Int8(at as i64),
            }];
            ctx.memory.charge_row(&row, "generate_series")?;
            out.push(row);
            at += by;
        }
        return Ok(out);
    }
    let mut at = start;
    while out.len() < limit && within(&at) {
        if out.len() % SCAN_PAGE == 0 {
            ctx.check_cancel()?;
        }
        let next = ops::arith(ArithOp::Add, &at, &step, ctx.zone)?;
        ctx.memory
            .charge_row(std::slice::from_ref(&at), "generate_series")?;
        out.push(vec![at]);
        at = next;
    }
    Ok(out)
}

/// One join step over a page of rows; the page's memory is given back once joined.
async fn join_through(
    join: &mut JoinState<'_>,
    txn: &mut Transaction,
    rows: Vec<Vec<Value>>,
    ctx: &ExecContext<'_>,
) -> SqlResult<Vec<Vec<Value>>> {
    let left_bytes: usize = rows.iter().map(|row| row_bytes(row)).sum();
    let joined = join.join_page(txn, rows, ctx).await?;
    ctx.memory.release(left_bytes);
    Ok(joined)
}

/// Where the rows of a SELECT's FROM clause go once joined: through the WHERE clause, then
/// into the aggregation (page by page) or collected.
struct Sink<'a, 'p> {
    filter: &'p Option<Expr>,
    aggregator: &'a mut Option<Aggregator<'p>>,
    input: &'a mut Vec<Vec<Value>>,
}

impl Sink<'_, '_> {
    async fn take(
        &mut self,
        txn: &mut Transaction,
        rows: Vec<Vec<Value>>,
        ctx: &ExecContext<'_>,
    ) -> SqlResult<()> {
        let rows = filter_rows(txn, rows, self.filter, ctx).await?;
        match self.aggregator.as_mut() {
            Some(aggregator) => {
                for row in &rows {
                    aggregator.feed(row, ctx)?;
                }
                ctx.memory.release_rows(&rows);
            }
            None => self.input.extend(rows),
        }
        Ok(())
    }
}

/// The rows that satisfy `filter` (all if none); the memory of the others is given back.
async fn filter_rows(
    txn: &mut Transaction,
    rows: Vec<Vec<Value>>,
    filter: &Option<Expr>,
    ctx: &ExecContext<'_>,
) -> SqlResult<Vec<Vec<Value>>> {
    let Some(filter) = filter else {
        return Ok(rows);
    };
    let correlated = correlated_in([filter], ctx);
    let mut kept = Vec::with_capacity(rows.len());
    for row in rows {
        let results = correlated_rows(txn, &correlated, &row, ctx).await?;
        let row_ctx = ExecContext {
            correlated: &results,
            ..*ctx
        };
        if truth(&filter.eval(&row, &row_ctx.eval())?)? == Some(true) {
            kept.push(row);
        } else {
            ctx.memory.release(row_bytes(&row));
        }
    }
    Ok(kept)
}

/// [`filter_rows`] for rows read with their keys (the rows an UPDATE or DELETE changes).
async fn filter_keyed_rows(
    txn: &mut Transaction,
    rows: Vec<(Key, Vec<Value>)>,
    filter: &Option<Expr>,
    ctx: &ExecContext<'_>,
) -> SqlResult<Vec<(Key, Vec<Value>)>> {
    let Some(filter) = filter else {
        return Ok(rows);
    };
    let correlated = correlated_in([filter], ctx);
    let mut kept = Vec::with_capacity(rows.len());
    for (key, row) in rows {
        ctx.checkpoint(1).await?;
        let results = correlated_rows(txn, &correlated, &row, ctx).await?;
        let row_ctx = ExecContext {
            correlated: &results,
            ..*ctx
        };
        if truth(&filter.eval(&row, &row_ctx.eval())?)? == Some(true) {
            kept.push((key, row));
        } else {
            ctx.memory.release(row_bytes(&row) + key.as_bytes().len());
        }
    }
    Ok(kept)
}

/// The correlated subqueries `exprs` use (by index in the statement's list).
fn correlated_in<'e>(
    exprs: impl IntoIterator<Item = &'e Expr>,
    ctx: &ExecContext<'_>,
) -> Vec<usize> {
    let mut found = Vec::new();
    for expr in exprs {
        expr.walk(&mut |node| {
            if let Expr::Subquery {
                index,
                correlated: true,
                ..
            } = node
            {
                if !found.contains(index) && *index < ctx.subquery_plans.len() {
                    found.push(*index);
                }
            }
        });
    }
    found
}

/// Runs each correlated subquery in `indexes` with `row` as the current row of the query
/// around it, as PostgreSQL runs a SubPlan per row.
async fn correlated_rows(
    txn: &mut Transaction,
    indexes: &[usize],
    row: &[Value],
    ctx: &ExecContext<'_>,
) -> SqlResult<Vec<(usize, SubqueryRows)>> {
    if indexes.is_empty() {
        return Ok(vec![]);
    }
    let mut outer = ctx.outer.to_vec();
    outer.push(row.to_vec());
    let inner_ctx = ExecContext {
        outer: &outer,
        correlated: &[],
        ..*ctx
    };
    let mut results = Vec::with_capacity(indexes.len());
    for &index in indexes {
        let plan = &ctx.subquery_plans[index];
        let column_type = plan.columns.first().map(|c| c.data_type.clone());
        if let Some(table) = decorrelated(txn, index, plan, ctx).await? {
            let rows = table.lookup(&inner_ctx)?;
            results.push((index, SubqueryRows::new(rows, column_type)));
            continue;
        }
        // Whatever the run held is dropped with it; only its result rows live on, briefly.
        let mark = ctx.memory.mark();
        let rows = Box::pin(select_rows(txn, plan, &inner_ctx)).await?;
        ctx.memory.reset_to(mark);
        results.push((index, SubqueryRows::new(rows, column_type)));
    }
    Ok(results)
}

/// A correlated subquery tied to its outer row only by equalities (`WHERE inner.k =
/// outer.x AND ...` over one table): read once, its rows grouped by the inner side of those
/// equalities, then each outer row looks its rows up by the outer side. This turns
/// `EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id)` from a scan per customer
/// into one scan and a hash lookup per customer (a hash semi-join).
pub struct Decorrelated {
    /// The outer side of each equality, over the outer row (as `Expr::Outer` level 0).
    outer_keys: Vec<Expr>,
    /// The subquery's projected rows by the values of the inner side.
    rows: HashMap<GroupKey, Vec<Vec<Value>>>,
    /// The subquery's OFFSET and LIMIT, applied to each outer row's rows.
    offset: usize,
    limit: Option<usize>,
}

/// Per statement: each correlated subquery's [`Decorrelated`] table once built, or `None`
/// once found not to qualify.
#[derive(Default)]
pub struct DecorrelationCache(
    std::sync::Mutex<HashMap<usize, Option<std::sync::Arc<Decorrelated>>>>,
);

impl Decorrelated {
    fn lookup(&self, outer_ctx: &ExecContext<'_>) -> SqlResult<Vec<Vec<Value>>> {
        let mut key = Vec::with_capacity(self.outer_keys.len());
        for expr in &self.outer_keys {
            let value = expr.eval(&[], &outer_ctx.eval())?;
            if value.is_null() {
                return Ok(vec![]);
            }
            key.push(value);
        }
        Ok(self
            .rows
            .get(&GroupKey(key))
            .map(|rows| {
                rows.iter()
                    .skip(self.offset)
                    .take(self.limit.unwrap_or(usize::MAX))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }
}

/// The subquery's [`Decorrelated`] table, built on first use; `None` if it does not qualify.
async fn decorrelated(
    txn: &mut Transaction,
    index: usize,
    plan: &SelectPlan,
    ctx: &ExecContext<'_>,
) -> SqlResult<Option<std::sync::Arc<Decorrelated>>> {
    let cached = ctx
        .decorrelation
        .0
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&index)
        .cloned();
    if let Some(known) = cached {
        return Ok(known);
    }
    let built = match equi_correlation(plan) {
        None => None,
        Some((scan, inner_keys, outer_keys)) => {
            // Page by page: only the keys and projections are kept.
            let mut rows: HashMap<GroupKey, Vec<Vec<Value>>> = HashMap::new();
            let mut cursor = ScanCursor::open(txn, &scan, ctx, usize::MAX).await?;
            while let Some(page) = cursor.next_page(txn, ctx, SCAN_PAGE).await? {
                for (row_key, row) in page {
                    ctx.memory
                        .release(row_bytes(&row) + row_key.as_bytes().len());
                    let mut key = Vec::with_capacity(inner_keys.len());
                    for expr in &inner_keys {
                        key.push(expr.eval(&row, &ctx.eval())?);
                    }
                    if key.iter().any(Value::is_null) {
                        continue; // `NULL = x` matches nothing
                    }
                    let projected = project(&plan.projection, &row, ctx)?;
                    ctx.memory.charge(
                        row_bytes(&projected) + row_bytes(&key),
                        "correlated subquery",
                    )?;
                    rows.entry(GroupKey(key)).or_default().push(projected);
                }
            }
            Some(std::sync::Arc::new(Decorrelated {
                outer_keys,
                rows,
                offset: non_negative(&plan.offset, ctx, "OFFSET")?.unwrap_or(0),
                limit: non_negative(&plan.limit, ctx, "LIMIT")?,
            }))
        }
    };
    ctx.decorrelation
        .0
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(index, built.clone());
    Ok(built)
}

/// If `plan` reads one table (no joins, grouping, ordering or limits) and its only outer
/// references are in WHERE equalities `inner = outer` with hash-compatible types: the scan
/// without those equalities, and their inner and outer sides.
fn equi_correlation(plan: &SelectPlan) -> Option<(Scan, Vec<Expr>, Vec<Expr>)> {
    let scan = plan.scan.as_ref()?;
    let simple = scan.derived.is_none()
        && !scan.lock
        && matches!(scan.access, Access::Full)
        && plan.joins.is_empty()
        && plan.filter.is_none()
        && plan.set_operation.is_none()
        && plan.series.is_none()
        && plan.set_function.is_none()
        && plan.recursive.is_none()
        && plan.working_table.is_none()
        && plan.aggregation.is_none()
        && plan.windows.is_empty()
        && !plan.distinct
        && plan.distinct_on.is_empty()
        && plan.order_by.is_empty();
    if !simple {
        return None;
    }
    let reads_outer = |e: &Expr| {
        let mut found = false;
        e.walk(&mut |node| {
            if matches!(node, Expr::Outer { .. } | Expr::Subquery { .. }) {
                found = true;
            }
        });
        found
    };
    let only_outer_level0 = |e: &Expr| {
        let mut ok = true;
        e.walk(&mut |node| match node {
            Expr::Outer { level: 0, .. } | Expr::Literal(..) | Expr::Param { .. } => {}
            Expr::Column { .. }
            | Expr::Outer { .. }
            | Expr::Subquery { .. }
            | Expr::Aggregate { .. }
            | Expr::AggRef { .. }
            | Expr::Window { .. } => ok = false,
            _ => {}
        });
        ok
    };
    // LIMIT / OFFSET apply per outer row: fine when they are constants (rows keep scan order).
    if plan
        .projection
        .iter()
        .chain(&plan.limit)
        .chain(&plan.offset)
        .any(reads_outer)
    {
        return None;
    }
    fn conjuncts(e: &Expr, out: &mut Vec<Expr>) {
        match e {
            Expr::And(a, b) => {
                conjuncts(a, out);
                conjuncts(b, out);
            }
            other => out.push(other.clone()),
        }
    }
    let mut parts = Vec::new();
    if let Some(filter) = &scan.filter {
        conjuncts(filter, &mut parts);
    }
    let (mut inner_keys, mut outer_keys, mut rest) = (vec![], vec![], vec![]);
    for part in parts {
        if !reads_outer(&part) {
            rest.push(part);
            continue;
        }
        let Expr::Cmp(crate::expr::CmpOp::Eq, a, b) = &part else {
            return None;
        };
        let (inner, outer) = if !reads_outer(a) && only_outer_level0(b) {
            (a, b)
        } else if !reads_outer(b) && only_outer_level0(a) {
            (b, a)
        } else {
            return None;
        };
        if inner.is_row_independent() || !ops::hash_alike(&inner.ty(), &outer.ty()) {
            return None;
        }
        inner_keys.push(inner.as_ref().clone());
        outer_keys.push(outer.as_ref().clone());
    }
    if inner_keys.is_empty() {
        return None;
    }
    let mut unfiltered = scan.clone();
    unfiltered.filter = rest
        .into_iter()
        .reduce(|a, b| Expr::And(Box::new(a), Box::new(b)));
    Some((unfiltered, inner_keys, outer_keys))
}

/// EXPLAIN's text for a plan.
pub fn explain(plan: &Plan) -> Vec<String> {
    let mut lines = Vec::new();
    match plan {
        Plan::Select(select) => explain_select(select, &mut lines, 0),
        Plan::Insert(insert) => {
            lines.push(format!("Insert on {}", insert.table.name));
            if let InsertSource::Query(query) = &insert.source {
                explain_select(query, &mut lines, 1);
            } else {
                lines.push("  ->  Values".into());
            }
        }
        Plan::Update(update) => {
            lines.push(format!("Update on {}", update.scan.table.name));
            explain_scan(&update.scan, &mut lines, 1);
        }
        Plan::Delete(delete) => {
            lines.push(format!("Delete on {}", delete.scan.table.name));
            explain_scan(&delete.scan, &mut lines, 1);
        }
        Plan::Explain(inner) => return explain(inner),
        Plan::With { ctes, main } => {
            for (_, name, cte) in ctes {
                lines.push(format!("CTE {name}"));
                lines.extend(explain(cte).into_iter().map(|line| format!("  {line}")));
            }
            lines.extend(explain(main));
        }
        other => lines.push(format!("Utility statement ({})", utility_name(other))),
    }
    // Subqueries after the statement, numbered as expressions name them (SubPlan n).
    for (n, subquery) in plan.subqueries().iter().enumerate() {
        let how = match (subquery.correlated, equi_correlation(subquery)) {
            (false, _) => "run once".to_string(),
            (true, Some((_, inner, _))) => {
                let keys: Vec<String> = inner.iter().map(ToString::to_string).collect();
                format!("correlated, hashed on {}", keys.join(", "))
            }
            (true, None) => "correlated, run per row".to_string(),
        };
        lines.push(format!("SubPlan {} ({how})", n + 1));
        explain_select(subquery, &mut lines, 1);
    }
    lines
}

fn utility_name(plan: &Plan) -> &'static str {
    match plan {
        Plan::CreateTable { .. } => "CREATE TABLE",
        Plan::DropTable { .. } => "DROP TABLE",
        Plan::Begin(_) => "BEGIN",
        Plan::Commit => "COMMIT",
        Plan::Rollback | Plan::RollbackToSavepoint(_) => "ROLLBACK",
        Plan::Savepoint(_) => "SAVEPOINT",
        Plan::ReleaseSavepoint(_) => "RELEASE",
        Plan::Set { .. } | Plan::SetLocal { .. } | Plan::SetTransaction { .. } => "SET",
        Plan::Reset(_) => "RESET",
        Plan::Show(_) => "SHOW",
        _ => "other",
    }
}

fn indent(depth: usize) -> String {
    if depth == 0 {
        String::new()
    } else {
        format!("{}->  ", "      ".repeat(depth - 1) + "  ")
    }
}

fn explain_select(select: &SelectPlan, lines: &mut Vec<String>, mut depth: usize) {
    if select.limit.is_some() || select.offset.is_some() {
        lines.push(format!("{}Limit", indent(depth)));
        depth += 1;
    }
    if select.distinct {
        lines.push(format!("{}Unique", indent(depth)));
        depth += 1;
    }
    if !select.order_by.is_empty() {
        let keys: Vec<String> = select
            .order_by
            .iter()
            .map(|k| format!("{}{}", k.expr, if k.descending { " DESC" } else { "" }))
            .collect();
        lines.push(format!("{}Sort (key: {})", indent(depth), keys.join(", ")));
        depth += 1;
    }
    if let Some(aggregation) = &select.aggregation {
        if aggregation.group_by.is_empty() {
            lines.push(format!("{}Aggregate", indent(depth)));
        } else {
            let keys: Vec<String> = aggregation
                .group_by
                .iter()
                .map(ToString::to_string)
                .collect();
            lines.push(format!(
                "{}HashAggregate (group key: {})",
                indent(depth),
                keys.join(", ")
            ));
        }
        depth += 1;
    }
    // Joins nest left-deep: the last join is the outermost node, and the WHERE clause
    // filters what it produces.
    for (n, step) in select.joins.iter().rev().enumerate() {
        let kind = match step.kind {
            crate::plan::JoinKind::Inner => "Inner",
            crate::plan::JoinKind::Left => "Left",
            crate::plan::JoinKind::Right => "Right",
            crate::plan::JoinKind::Full => "Full",
        };
        let method = match (&step.lookup, &step.hash) {
            (Some(_), _) => "Index Nested Loop",
            (None, Some(_)) => "Hash",
            (None, None) => "Nested Loop",
        };
        lines.push(format!("{}{method} {kind} Join", indent(depth)));
        let detail = " ".repeat(indent(depth).len() + 2);
        let hash = step.hash.as_ref().filter(|_| step.lookup.is_none());
        if let Some(hash) = hash {
            // The right keys read the right row alone: name them by their columns.
            let conditions: Vec<String> = hash
                .left
                .iter()
                .zip(&hash.right)
                .map(|(l, r)| format!("{l} = {r}"))
                .collect();
            lines.push(format!("{detail}Hash Cond: {}", conditions.join(" AND ")));
        }
        let condition = match hash {
            Some(hash) => &hash.residual,
            None => &step.on,
        };
        if let Some(on) = condition {
            lines.push(format!("{detail}Join Filter: {on}"));
        }
        // Worth saying unless the left side is one row by key.
        let first_join_after_point = n + 1 == select.joins.len()
            && select
                .scan
                .as_ref()
                .is_some_and(|scan| matches!(scan.access, Access::Point(_)));
        if step.lookup.is_some()
            && step.hash.is_some()
            && !step.scan.lock
            && !first_join_after_point
        {
            lines.push(format!(
                "{detail}Hash Join instead: past {LOOKUPS_BEFORE_PROBING} left rows, if {} has at most {ROWS_READ_PER_LOOKUP} rows per left row",
                step.scan.table.name
            ));
        }
        if let (0, Some(filter)) = (n, &select.filter) {
            lines.push(format!("{detail}Filter: {filter}"));
        }
        depth += 1;
        match &step.lookup {
            Some(values) => {
                let table = &step.scan.table;
                let conditions: Vec<String> = values
                    .iter()
                    .zip(&table.primary_key)
                    .map(|(v, &i)| format!("{} = {v}", table.columns[i].name))
                    .collect();
                lines.push(format!(
                    "{}Point Lookup on {} using {} ({})",
                    indent(depth),
                    table.name,
                    table.primary_key_name(),
                    conditions.join(" AND ")
                ));
                if let Some(filter) = &step.scan.filter {
                    let pad = " ".repeat(indent(depth).len() + 2);
                    lines.push(format!("{pad}Filter: {filter}"));
                }
            }
            None if step.hash.is_some() => {
                lines.push(format!("{}Hash", indent(depth)));
                explain_scan(&step.scan, lines, depth + 1);
            }
            None => explain_scan(&step.scan, lines, depth),
        }
    }
    if let Some(set) = &select.set_operation {
        use crate::plan::SetOperator;
        let name = match (set.operator, set.all) {
            (SetOperator::Union, true) => "Append",
            (SetOperator::Union, false) => "Union",
            (SetOperator::Intersect, true) => "Intersect All",
            (SetOperator::Intersect, false) => "Intersect",
            (SetOperator::Except, true) => "Except All",
            (SetOperator::Except, false) => "Except",
        };
        lines.push(format!("{}{name}", indent(depth)));
        explain_select(&set.left, lines, depth + 1);
        explain_select(&set.right, lines, depth + 1);
        return;
    }
    if let Some(recursive) = &select.recursive {
        let all = if recursive.all { " All" } else { "" };
        lines.push(format!("{}Recursive Union{all}", indent(depth)));
        explain_select(&recursive.anchor, lines, depth + 1);
        explain_select(&recursive.step, lines, depth + 1);
        return;
    }
    if select.working_table.is_some() {
        lines.push(format!("{}WorkTable Scan", indent(depth)));
        return;
    }
    if let (true, Some(filter), Some(_)) = (select.joins.is_empty(), &select.filter, &select.scan) {
        // Conditions that run after the scan (correlated subqueries).
        lines.push(format!("{}Filter", indent(depth)));
        lines.push(format!(
            "{}Filter: {filter}",
            " ".repeat(indent(depth).len() + 2)
        ));
        depth += 1;
    }
    match (&select.scan, &select.series) {
        (Some(scan), _) => explain_scan(scan, lines, depth),
        (None, Some(_)) => lines.push(format!("{}Function Scan on generate_series", indent(depth))),
        (None, None) if select.set_function.is_some() => {
            lines.push(format!("{}Function Scan", indent(depth)))
        }
        (None, None) => lines.push(format!("{}Result", indent(depth))),
    }
}

/// `col = v AND next >= lo AND next < hi` for a key prefix and bounds over `columns`.
fn bound_conditions(
    table: &TableDesc,
    columns: &[usize],
    prefix: &[Expr],
    lower: &Option<(Expr, bool)>,
    upper: &Option<(Expr, bool)>,
) -> String {
    let name = |i: usize| table.columns[columns[i]].name.clone();
    let mut conditions: Vec<String> = prefix
        .iter()
        .enumerate()
        .map(|(i, v)| format!("{} = {v}", name(i)))
        .collect();
    let next = name(prefix.len().min(columns.len() - 1));
    if let Some((v, inclusive)) = lower {
        let op = if *inclusive { ">=" } else { ">" };
        conditions.push(format!("{next} {op} {v}"));
    }
    if let Some((v, inclusive)) = upper {
        let op = if *inclusive { "<=" } else { "<" };
        conditions.push(format!("{next} {op} {v}"));
    }
    conditions.join(" AND ")
}

fn explain_scan(scan: &Scan, lines: &mut Vec<String>, depth: usize) {
    let table = &scan.table;
    let key_name = |i: usize| table.columns[table.primary_key[i]].name.clone();
    let head = match &scan.access {
        Access::Index {
            index,
            prefix,
            lower,
            upper,
        } => {
            let index = &table.indexes[*index];
            let conditions = bound_conditions(table, &index.columns, prefix, lower, upper);
            match conditions.is_empty() {
                // Every entry, for its order.
                true => format!("Index Scan on {} using {}", table.name, index.name),
                false => format!(
                    "Index Scan on {} using {} ({conditions})",
                    table.name, index.name
                ),
            }
        }
        Access::Point(values) => {
            let conditions: Vec<String> = values
                .iter()
                .enumerate()
                .map(|(i, v)| format!("{} = {v}", key_name(i)))
                .collect();
            format!(
                "Point Lookup on {} using {} ({})",
                table.name,
                table.primary_key_name(),
                conditions.join(" AND ")
            )
        }
        Access::Range {
            prefix,
            lower,
            upper,
        } => {
            format!(
                "Range Scan on {} using {} ({})",
                table.name,
                table.primary_key_name(),
                bound_conditions(table, &table.primary_key, prefix, lower, upper)
            )
        }
        Access::Full if scan.derived.is_some() => format!("Subquery Scan on {}", table.name),
        Access::Full => format!("Full Scan on {}", table.name),
    };
    lines.push(format!(
        "{}{head}{}",
        indent(depth),
        if scan.lock { " FOR UPDATE" } else { "" }
    ));
    if let Some(filter) = &scan.filter {
        let pad = if depth == 0 {
            "  ".to_string()
        } else {
            " ".repeat(indent(depth).len() + 2)
        };
        lines.push(format!("{pad}Filter: {filter}"));
    }
    if let Some(derived) = &scan.derived {
        explain_select(derived, lines, depth + 1);
    }
}

/// A written row's foreign keys: each whose columns are all set must name a row of its parent
/// (23503 if none does), and that row's key joins the transaction's conflict set, so that a
/// concurrent transaction deleting it cannot also commit.
pub(crate) async fn check_references(
    txn: &mut Transaction,
    table: &TableDesc,
    row: &[Value],
    zone: &TimeZone,
) -> SqlResult<()> {
    for fk in &table.foreign_keys {
        let values: Vec<&Value> = fk.columns.iter().map(|&c| &row[c]).collect();
        if values.iter().any(|v| v.is_null()) {
            continue;
        }
        let parent = match fk.parent == table.name {
            true => std::sync::Arc::new(table.clone()),
            false => crate::catalog::require(txn, &fk.parent).await?,
        };
        let mut key_values = Vec::with_capacity(values.len());
        for (value, &k) in values.iter().zip(&parent.primary_key) {
            key_values.push(cast::cast(
                (*value).clone(),
                &parent.columns[k].data_type,
                false,
                zone,
            )?);
        }
        let key = parent.row_key(&key_values.iter().collect::<Vec<_>>());
        if txn.get(&key).await.map_err(core)?.is_none() {
            return Err(SqlError::new(
                SqlState("23503"),
                format!(
                    "insert or update on table \"{}\" violates foreign key constraint \"{}\"",
                    table.name, fk.name
                ),
            )
            .with_detail(format!(
                "Key ({})=({}) is not present in table \"{}\".",
                key_names(table, &fk.columns),
                key_text(table, &fk.columns, row, zone),
                fk.parent
            )));
        }
        txn.lock(key);
    }
    Ok(())
}

pub(crate) fn key_names(table: &TableDesc, columns: &[usize]) -> String {
    let names: Vec<&str> = columns
        .iter()
        .map(|&i| table.columns[i].name.as_str())
        .collect();
    names.join(", ")
}

pub(crate) fn key_text(
    table: &TableDesc,
    columns: &[usize],
    row: &[Value],
    zone: &TimeZone,
) -> String {
    let values: Vec<String> = columns
        .iter()
        .map(|&i| text::format_text_typed(&row[i], &table.columns[i].data_type, zone))
        .collect();
    values.join(", ")
}

/// The DEFAULT values of `table`'s `columns` (for ON DELETE / ON UPDATE SET DEFAULT).
fn column_defaults(
    table: &TableDesc,
    columns: &[usize],
    ctx: &ExecContext<'_>,
) -> SqlResult<Vec<Value>> {
    let mut binder = crate::plan::Binder::new(&[], ctx.zone.clone());
    let defaults = crate::planner::bind_defaults(&mut binder, table, |i| columns.contains(&i))?;
    if !binder.sequences.is_empty() {
        return Err(SqlError::unsupported(
            "ON DELETE / ON UPDATE SET DEFAULT of a column whose default calls nextval is not supported yet",
        ));
    }
    columns
        .iter()
        .map(|&c| default_value(defaults[c].as_ref(), ctx))
        .collect()
}

/// After a row of `table` is deleted (`new` `None`) or its primary key changes to `new`'s:
/// what each referencing table's ON DELETE / ON UPDATE says — refuse while referenced (NO
/// ACTION, RESTRICT), follow (CASCADE), or forget the parent (SET NULL, SET DEFAULT).
pub(crate) async fn on_parent_change(
    txn: &mut Transaction,
    table: &TableDesc,
    old: &[Value],
    new: Option<&[Value]>,
    ctx: &ExecContext<'_>,
) -> SqlResult<()> {
    use crate::catalog::RefAction;
    if table.referenced_by.is_empty() {
        return Ok(());
    }
    let old_key: Vec<Value> = table.primary_key.iter().map(|&i| old[i].clone()).collect();
    if let Some(new) = new {
        if table.primary_key.iter().all(|&i| new[i] == old[i]) {
            return Ok(());
        }
    }
    for child_name in &table.referenced_by {
        let child = match *child_name == table.name {
            true => std::sync::Arc::new(table.clone()),
            false => match crate::catalog::lookup(txn, child_name).await? {
                Some(child) => child,
                None => continue,
            },
        };
        for fk in child.foreign_keys.iter().filter(|f| f.parent == table.name) {
            let mut filter: Option<Expr> = None;
            // The old key in the child's column types.
            let mut child_key = Vec::with_capacity(old_key.len());
            for (&c, value) in fk.columns.iter().zip(&old_key) {
                let ty = child.columns[c].data_type.clone();
                let value = cast::cast(value.clone(), &ty, false, ctx.zone)?;
                child_key.push(value.clone());
                let condition = Expr::Cmp(
                    crate::expr::CmpOp::Eq,
                    Box::new(Expr::Column {
                        index: c,
                        name: child.columns[c].name.clone(),
                        ty: ty.clone(),
                    }),
                    Box::new(Expr::Literal(value, ty)),
                );
                filter = Some(match filter {
                    None => condition,
                    Some(earlier) => Expr::And(Box::new(earlier), Box::new(condition)),
                });
            }
            let scan = crate::planner::choose_access(child.clone(), filter, false);
            let rows = scan_rows(txn, &scan, ctx).await?;
            if rows.is_empty() {
                continue;
            }
            let action = match new {
                Some(_) => fk.on_update,
                None => fk.on_delete,
            };
            let still_referenced = || {
                SqlError::new(
                    SqlState("23503"),
                    format!(
                        "update or delete on table \"{}\" violates foreign key constraint \"{}\" on table \"{}\"",
                        table.name, fk.name, child.name
                    ),
                )
                .with_detail(format!(
                    "Key ({})=({}) is still referenced from table \"{}\".",
                    key_names(table, &table.primary_key),
                    key_text(table, &table.primary_key, old, ctx.zone),
                    child.name
                ))
            };
            match action {
                RefAction::NoAction => {
                    // Unless the statement wrote a row with the old key again.
                    let key: Vec<&Value> = old_key.iter().collect();
                    if txn.get(&table.row_key(&key)).await.map_err(core)?.is_none() {
                        return Err(still_referenced());
                    }
                }
                RefAction::Cascade if new.is_none() => {
                    for (key, row) in rows {
                        remove_index_entries(txn, &child, &row);
                        txn.delete(key);
                        Box::pin(on_parent_change(txn, &child, &row, None, ctx)).await?;
                    }
                }
                RefAction::Cascade | RefAction::SetNull | RefAction::SetDefault => {
                    let defaults = match action {
                        RefAction::SetDefault => column_defaults(&child, &fk.columns, ctx)?,
                        _ => vec![],
                    };
                    // Defaults naming the row that goes leave it referenced, as in PostgreSQL.
                    if action == RefAction::SetDefault && defaults == child_key {
                        return Err(still_referenced());
                    }
                    for (key, row) in rows {
                        let mut changed = row.clone();
                        for (position, &c) in fk.columns.iter().enumerate() {
                            changed[c] = match (action, new) {
                                (RefAction::Cascade, Some(new)) => cast::cast(
                                    new[table.primary_key[position]].clone(),
                                    &child.columns[c].data_type,
                                    false,
                                    ctx.zone,
                                )?,
                                (RefAction::SetDefault, _) => defaults[position].clone(),
                                _ => Value::Null,
                            };
                        }
                        let changed = conform_row(&child, changed, ctx.zone)?;
                        if action == RefAction::SetDefault {
                            // As PostgreSQL: the default must name a parent row too.
                            check_references(txn, &child, &changed, ctx.zone).await?;
                        }
                        let changed_key = checked_key(&child, &changed)?;
                        remove_index_entries(txn, &child, &row);
                        if changed_key != key {
                            txn.delete(key);
                        }
                        add_index_entries(txn, &child, &changed, ctx.zone).await?;
                        txn.put(changed_key, encode(&changed)?);
                        Box::pin(on_parent_change(txn, &child, &row, Some(&changed), ctx)).await?;
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
    use std::sync::Arc;

    use super::*;
    use crate::types::DataType;

    /// On a single-threaded runtime (a connection thread) another task gets the thread while
    /// a large sort runs; a small one sorts at once.
    #[tokio::test]
    async fn a_large_sort_lets_the_other_tasks_on_its_thread_run() {
        let descending = [SortKey {
            expr: Expr::Column {
                index: 0,
                name: "n".into(),
                ty: DataType::Int8,
            },
            descending: true,
            nulls_first: false,
        }];
        for (rows, yields) in [(SORT_IN_PLACE_ROWS, false), (SORT_IN_PLACE_ROWS * 4, true)] {
            let unsorted = (0..rows as i64)
                .map(|n| (vec![Value::Int8(n)], vec![]))
                .collect();
            let ran = Arc::new(AtomicBool::new(false));
            let other = tokio::spawn({
                let ran = ran.clone();
                async move { ran.store(true, AtomicOrdering::SeqCst) }
            });
            let sorted = sort_rows(unsorted, &descending).await.unwrap();
            assert_eq!(ran.load(AtomicOrdering::SeqCst), yields, "{rows} rows");
            let first: Vec<_> = sorted
                .iter()
                .take(2)
                .map(|(keys, _)| keys[0].clone())
                .collect();
            let top = rows as i64 - 1;
            assert_eq!(first, [Value::Int8(top), Value::Int8(top - 1)]);
            other.await.unwrap();
        }
    }
}
