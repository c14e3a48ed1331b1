//! ALTER TABLE: changes a table's definition, in the statement's transaction, so that other
//! transactions see the old definition or the new one, never a mix (a transaction that used
//! the old one fails at commit with a schema conflict).
//!
//! Most changes touch the definition only. ADD COLUMN leaves the rows as they are: a row
//! written before it is shorter than the new definition, and reads give the added column the
//! value its DEFAULT had when it was added (PostgreSQL's "missing value"). DROP COLUMN keeps the
//! column's place in the rows' layout, hidden and nameless. SET NOT NULL reads the rows to
//! check them. ALTER COLUMN TYPE and ADD PRIMARY KEY rewrite every row: in bounded batches
//! under a new table id when the statement runs alone in its transaction (see
//! [`rewrite_rows`]), else within the transaction and its limits.

use std::sync::Arc;

use cairn_qp::Transaction;
use cairn_types::{Key, KeyRange};

use crate::catalog::{self, IndexDesc, TableDesc};
use crate::error::{SqlError, SqlResult, SqlState};
use crate::exec::{self, ExecContext, Produced};
use crate::plan::AlterAction;
use crate::planner::choose_access;
use crate::sequence;
use crate::types::{cast, Value};

fn undefined_column(table: &TableDesc, column: &str) -> SqlError {
    SqlError::new(
        SqlState::UNDEFINED_COLUMN,
        format!(
            "column \"{column}\" of relation \"{}\" does not exist",
            table.name
        ),
    )
}

/// The visible column named `name`.
fn column_index(table: &TableDesc, name: &str) -> SqlResult<usize> {
    table
        .column_index(name)
        .filter(|&i| !table.columns[i].hidden)
        .ok_or_else(|| undefined_column(table, name))
}

fn contains_nulls(table: &TableDesc, column: &str) -> SqlError {
    SqlError::new(
        SqlState::NOT_NULL_VIOLATION,
        format!(
            "column \"{column}\" of relation \"{}\" contains null values",
            table.name
        ),
    )
}

/// The table's rows, with their keys. What DDL concludes from them (an index built, a
/// constraint checked) depends on them all: a row another transaction commits meanwhile makes
/// this transaction's commit fail (and a write after this commit fails on the changed
/// definition), so the two never both take effect.
async fn rows(
    txn: &mut Transaction,
    table: &TableDesc,
    ctx: &ExecContext<'_>,
) -> SqlResult<Vec<(cairn_types::Key, Vec<Value>)>> {
    txn.validate_range(table.all_rows());
    let scan = choose_access(Arc::new(table.clone()), None, false);
    exec::scan_rows(txn, &scan, ctx).await
}

/// The table's definition now, which must be the one `statement` was planned with (a
/// prepared statement run after another changed it is refused: 40001, retry).
async fn current_definition(
    txn: &mut Transaction,
    planned: &TableDesc,
    statement: &str,
) -> SqlResult<TableDesc> {
    match catalog::lookup(txn, &planned.name).await? {
        Some(current) if *current == *planned => Ok((*current).clone()),
        _ => Err(SqlError::new(
            SqlState::SERIALIZATION_FAILURE,
            format!(
                "table \"{}\" changed while {statement} was planned",
                planned.name
            ),
        )
        .with_hint("Retry the statement.")),
    }
}

/// Applies `actions` to the table `planned` (as read when the statement was planned).
pub async fn alter_table(
    txn: &mut Transaction,
    planned: &TableDesc,
    actions: &[AlterAction],
    ctx: &ExecContext<'_>,
) -> SqlResult<Produced> {
    let mut desc = current_definition(txn, planned, "ALTER TABLE").await?;
    let old_name = desc.name.clone();
    // What a view may read by name: it must still plan afterwards.
    let reshaping = actions.iter().find(|a| {
        matches!(
            a,
            AlterAction::DropColumn { .. }
                | AlterAction::RenameColumn { .. }
                | AlterAction::RenameTable { .. }
                | AlterAction::SetType { .. }
        )
    });
    let views = match reshaping {
        Some(_) => crate::planner::working_views(txn, ctx.zone).await?,
        None => vec![],
    };
    // A rewrite commits in batches only when nothing after it in the transaction reads the
    // table (its rows would not be in the transaction's snapshot).
    let batches = ctx.batches.filter(|_| actions.len() == 1);
    for action in actions {
        match action {
            AlterAction::AddColumn {
                column,
                default,
                volatile,
                if_not_exists,
            } => {
                if desc.column_index(&column.name).is_some() {
                    if *if_not_exists {
                        continue;
                    }
                    return Err(SqlError::new(
                        SqlState::DUPLICATE_COLUMN,
                        format!(
                            "column \"{}\" of relation \"{}\" already exists",
                            column.name, desc.name
                        ),
                    ));
                }
                let has_rows = !rows(txn, &desc, ctx).await?.is_empty();
                if *volatile && has_rows {
                    return Err(SqlError::unsupported(
                        "ADD COLUMN with a default that differs per row (nextval, random) on a table with rows is not supported yet",
                    ));
                }
                let missing = match default {
                    // No row needs it (and a sequence would need values reserved first).
                    Some(_) if !has_rows => Value::Null,
                    Some(expr) => cast::assignment_cast(
                        expr.eval(&[], &ctx.eval())?,
                        &column.data_type,
                        &column.name,
                        ctx.zone,
                    )?,
                    None => Value::Null,
                };
                if !column.nullable && missing.is_null() && has_rows {
                    return Err(contains_nulls(&desc, &column.name));
                }
                let mut column = column.clone();
                column.missing = Some(missing);
                desc.columns.push(column);
            }
            AlterAction::DropColumn { name, if_exists } => {
                let Some(index) = desc.column_index(name).filter(|&i| !desc.columns[i].hidden)
                else {
                    if *if_exists {
                        continue;
                    }
                    return Err(undefined_column(&desc, name));
                };
                if desc.primary_key.contains(&index) {
                    return Err(SqlError::unsupported(format!(
                        "dropping column \"{name}\" of the primary key is not supported"
                    )));
                }
                // Its foreign keys and checks go with it, as in PostgreSQL.
                let (gone_keys, kept_keys): (Vec<_>, Vec<_>) =
                    std::mem::take(&mut desc.foreign_keys)
                        .into_iter()
                        .partition(|fk| fk.columns.contains(&index));
                desc.foreign_keys = kept_keys;
                for fk in gone_keys {
                    if !desc.foreign_keys.iter().any(|f| f.parent == fk.parent) {
                        if fk.parent == desc.name {
                            desc.referenced_by.retain(|c| *c != fk.parent);
                        } else {
                            forget_child(txn, &fk.parent, &desc.name).await?;
                        }
                    }
                }
                desc.checks
                    .retain(|(_, condition)| !names_word(condition, name));
                if desc.visible_columns().count() == 1 {
                    return Err(SqlError::unsupported(
                        "dropping a table's last column is not supported",
                    ));
                }
                for owned in sequence::owned_by(txn, &desc).await? {
                    if owned.owned_by.as_ref().is_some_and(|(_, c)| c == name) {
                        sequence::drop(txn, &owned);
                    }
                }
                // Indexes on the column, or on expressions reading it, go with it, as in
                // PostgreSQL (with the hidden columns of those expressions).
                let mut gone_columns = vec![index];
                for (generated, expr) in crate::planner::bind_generated(&desc)? {
                    let mut reads = false;
                    expr.walk(&mut |node| {
                        reads |= matches!(node, crate::expr::Expr::Column { index: i, .. } if *i == index);
                    });
                    if reads {
                        gone_columns.push(generated);
                    }
                }
                let (dropped, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut desc.indexes)
                    .into_iter()
                    .partition(|i| i.columns.iter().any(|c| gone_columns.contains(c)));
                desc.indexes = kept;
                for gone in &dropped {
                    delete_entries(txn, &desc, gone).await?;
                    catalog::set_index_owner(txn, &gone.name, None);
                }
                for column in gone_columns {
                    mark_dropped(&mut desc, column);
                }
            }
            AlterAction::AddCheck {
                name,
                sql,
                condition,
                only_column,
            } => {
                let name = match name {
                    Some(name) => name.clone(),
                    None => {
                        let stem = match only_column {
                            Some(column) => format!("{}_{column}_check", desc.name),
                            None => format!("{}_check", desc.name),
                        };
                        let mut candidate = stem.clone();
                        let mut n = 0;
                        while desc.checks.iter().any(|(c, _)| *c == candidate) {
                            n += 1;
                            candidate = format!("{stem}{n}");
                        }
                        candidate
                    }
                };
                check_constraint_name(&desc, &name)?;
                for (_, row) in rows(txn, &desc, ctx).await? {
                    if crate::expr::truth(&condition.eval(&row, &ctx.eval())?)? == Some(false) {
                        return Err(SqlError::new(
                            SqlState("23514"),
                            format!(
                                "check constraint \"{name}\" of relation \"{}\" is violated by some row",
                                desc.name
                            ),
                        ));
                    }
                }
                desc.checks.push((name, sql.clone()));
            }
            AlterAction::AddUnique { name, columns } => {
                let name = name.clone().unwrap_or_else(|| {
                    let names: Vec<&str> = columns
                        .iter()
                        .map(|&i| desc.columns[i].name.as_str())
                        .collect();
                    format!("{}_{}_key", desc.name, names.join("_"))
                });
                let id = desc.next_index_id().ok_or_else(|| {
                    SqlError::new(
                        SqlState::PROGRAM_LIMIT_EXCEEDED,
                        "too many indexes on one table",
                    )
                })?;
                let index = IndexDesc {
                    id,
                    name,
                    columns: columns.clone(),
                    include: vec![],
                    unique: true,
                    building: false,
                };
                check_index_name(txn, &index.name).await?;
                build_index(txn, &desc, &index, ctx).await?;
                catalog::set_index_owner(txn, &index.name, Some(&desc.name));
                desc.indexes.push(index);
            }
            AlterAction::AddPrimaryKey { columns, name } => {
                let row_id = match desc.primary_key.as_slice() {
                    [only] if desc.columns[*only].hidden => *only,
                    _ => {
                        return Err(SqlError::new(
                            SqlState::INVALID_TABLE_DEFINITION,
                            format!(
                                "multiple primary keys for table \"{}\" are not allowed",
                                desc.name
                            ),
                        ))
                    }
                };
                let key_name = name
                    .clone()
                    .unwrap_or_else(|| format!("{}_pkey", desc.name));
                check_constraint_name(&desc, &key_name)?;
                check_index_name(txn, &key_name).await?;
                let old = desc.clone();
                for &i in columns {
                    desc.columns[i].nullable = false;
                }
                desc.primary_key = columns.clone();
                desc.primary_key_constraint = name.clone();
                mark_dropped(&mut desc, row_id);
                let key_name = desc.primary_key_name();
                let change = |mut row: Vec<Value>| {
                    if let Some(&i) = columns.iter().find(|&&i| row[i].is_null()) {
                        return Err(contains_nulls(&old, &old.columns[i].name));
                    }
                    row[row_id] = Value::Null;
                    Ok(row)
                };
                let new_shape = desc.clone();
                let duplicate = |row: &[Value]| {
                    index_build_error(&key_name, exec::duplicate_key(&new_shape, row, ctx.zone))
                };
                rewrite_rows(txn, &old, &mut desc, ctx, batches, change, duplicate).await?;
            }
            AlterAction::AddForeignKey(fk) => {
                check_constraint_name(&desc, &fk.name)?;
                desc.foreign_keys.push(fk.clone());
                link_foreign_keys(txn, &mut desc).await?;
                // Every row must meet it now; each parent row named joins the conflict set.
                let only = TableDesc {
                    foreign_keys: vec![fk.clone()],
                    ..desc.clone()
                };
                for (_, row) in rows(txn, &desc, ctx).await? {
                    ctx.check_cancel()?;
                    exec::check_references(txn, &only, &row, ctx.zone).await?;
                }
            }
            AlterAction::DropConstraint { name, if_exists } => {
                if let Some(position) = desc.checks.iter().position(|(c, _)| c == name) {
                    desc.checks.remove(position);
                } else if let Some(position) =
                    desc.foreign_keys.iter().position(|f| f.name == *name)
                {
                    let fk = desc.foreign_keys.remove(position);
                    if !desc.foreign_keys.iter().any(|f| f.parent == fk.parent) {
                        if fk.parent == desc.name {
                            desc.referenced_by.retain(|c| *c != fk.parent);
                        } else {
                            forget_child(txn, &fk.parent, &desc.name).await?;
                        }
                    }
                } else if let Some(position) = desc.indexes.iter().position(|i| i.name == *name) {
                    let index = desc.indexes.remove(position);
                    delete_entries(txn, &desc, &index).await?;
                    catalog::set_index_owner(txn, name, None);
                    drop_unused_generated(&mut desc);
                } else if *name == desc.primary_key_name() {
                    return Err(SqlError::unsupported(
                        "dropping a table's primary key is not supported",
                    ));
                } else if !*if_exists {
                    return Err(SqlError::new(
                        SqlState::UNDEFINED_OBJECT,
                        format!(
                            "constraint \"{name}\" of relation \"{}\" does not exist",
                            desc.name
                        ),
                    ));
                }
            }
            AlterAction::RenameColumn { from, to } => {
                let index = column_index(&desc, from)?;
                // Index expressions are kept as SQL text, which names the column.
                for (_, expr) in crate::planner::bind_generated(&desc)? {
                    let mut reads = false;
                    expr.walk(&mut |node| {
                        reads |= matches!(node, crate::expr::Expr::Column { index: i, .. } if *i == index);
                    });
                    if reads {
                        return Err(SqlError::unsupported(format!(
                            "renaming column \"{from}\", which an index expression reads, is not supported yet; drop the index first"
                        )));
                    }
                }
                if desc.column_index(to).is_some() {
                    return Err(SqlError::new(
                        SqlState::DUPLICATE_COLUMN,
                        format!(
                            "column \"{to}\" of relation \"{}\" already exists",
                            desc.name
                        ),
                    ));
                }
                for mut owned in sequence::owned_by(txn, &desc).await? {
                    if let Some((_, column)) = owned.owned_by.as_mut().filter(|(_, c)| c == from) {
                        *column = to.clone();
                        sequence::put(txn, &owned)?;
                    }
                }
                desc.columns[index].name = to.clone();
            }
            AlterAction::RenameTable { to }
                if !desc.foreign_keys.is_empty() || !desc.referenced_by.is_empty() =>
            {
                return Err(SqlError::unsupported(format!(
                    "renaming table \"{}\", which has or is referenced by foreign keys, to \"{to}\" is not supported yet",
                    desc.name
                )));
            }
            AlterAction::RenameTable { .. } if desc.indexes.iter().any(|i| i.building) => {
                return Err(SqlError::new(
                    SqlState("55006"),
                    format!(
                        "cannot rename table \"{}\" while an index on it is being built (see cairn_jobs)",
                        desc.name
                    ),
                ));
            }
            AlterAction::RenameTable { to } => {
                if catalog::lookup(txn, to).await?.is_some()
                    || sequence::lookup(txn, to).await?.is_some()
                    || catalog::lookup_view(txn, to).await?.is_some()
                {
                    return Err(SqlError::new(
                        SqlState::DUPLICATE_TABLE,
                        format!("relation \"{to}\" already exists"),
                    ));
                }
                for mut owned in sequence::owned_by(txn, &desc).await? {
                    if let Some((table, _)) = owned.owned_by.as_mut() {
                        *table = to.clone();
                        sequence::put(txn, &owned)?;
                    }
                }
                for index in &desc.indexes {
                    catalog::set_index_owner(txn, &index.name, Some(to));
                }
                // The primary key keeps its name, as in PostgreSQL.
                desc.primary_key_constraint = Some(desc.primary_key_name());
                desc.name = to.clone();
            }
            AlterAction::SetDefault { column, default } => {
                let index = column_index(&desc, column)?;
                desc.columns[index].default = default.clone();
            }
            AlterAction::SetNotNull { column, not_null } => {
                let index = column_index(&desc, column)?;
                if !*not_null && desc.primary_key.contains(&index) {
                    return Err(SqlError::new(
                        SqlState("42P16"),
                        format!("column \"{column}\" is in a primary key"),
                    ));
                }
                if *not_null
                    && rows(txn, &desc, ctx)
                        .await?
                        .iter()
                        .any(|(_, row)| row[index].is_null())
                {
                    return Err(contains_nulls(&desc, column));
                }
                desc.columns[index].nullable = !*not_null;
            }
            AlterAction::SetType {
                column,
                data_type,
                using,
            } => {
                if !views.is_empty() {
                    // A view reading the column would change under its readers: refused, as
                    // in PostgreSQL. Whether one does: it no longer plans with the column
                    // hidden.
                    let mut probe = desc.clone();
                    probe.columns[*column].name = format!("........altering.{column}........");
                    probe.columns[*column].hidden = true;
                    catalog::put(txn, &probe)?;
                    let reader = crate::planner::broken_view(txn, ctx.zone, &views).await?;
                    catalog::put(txn, &desc)?;
                    if let Some(view) = reader {
                        return Err(breaks_view(&old_name, Some(action), &view, planned));
                    }
                }
                let old = desc.clone();
                desc.columns[*column].data_type = data_type.clone();
                // Every row again, under its key (which changes with a key column's type).
                let column_name = &old.columns[*column].name;
                let change = |mut row: Vec<Value>| {
                    let value = match using {
                        Some(expr) => expr.eval(&row, &ctx.eval())?,
                        None => row[*column].clone(),
                    };
                    row[*column] = match value {
                        Value::Null => Value::Null,
                        value => cast::assignment_cast(value, data_type, column_name, ctx.zone)?,
                    };
                    Ok(row)
                };
                let new_shape = desc.clone();
                let duplicate = |row: &[Value]| exec::duplicate_key(&new_shape, row, ctx.zone);
                rewrite_rows(txn, &old, &mut desc, ctx, batches, change, duplicate).await?;
            }
        }
    }
    if desc.name != old_name {
        catalog::drop(txn, &old_name);
    }
    catalog::put(txn, &desc)?;
    if let Some(view) = crate::planner::broken_view(txn, ctx.zone, &views).await? {
        return Err(breaks_view(&old_name, reshaping, &view, planned));
    }
    Ok(Produced {
        rows: vec![],
        tag: "ALTER TABLE".into(),
    })
}

/// The error for an ALTER TABLE of `table` whose `action` would break view `view`, which
/// reads the table by name (a view keeps its SQL text). PostgreSQL's where it refuses too.
fn breaks_view(
    table: &str,
    action: Option<&AlterAction>,
    view: &str,
    planned: &TableDesc,
) -> SqlError {
    match action {
        Some(AlterAction::DropColumn { name, .. }) => SqlError::new(
            SqlState("2BP01"),
            format!("cannot drop column {name} of table {table} because other objects depend on it"),
        )
        .with_detail(format!("view {view} depends on column {name} of table {table}"))
        .with_hint("Use DROP ... CASCADE to drop the dependent objects too."),
        Some(AlterAction::SetType { column, .. }) => SqlError::new(
            SqlState::FEATURE_NOT_SUPPORTED,
            "cannot alter type of a column used by a view or rule",
        )
        .with_detail(format!(
            "view {view} depends on column \"{}\"",
            planned.columns[*column].name
        )),
        _ => SqlError::unsupported(format!(
            "renaming table {table} or its columns while view {view} reads them is not supported yet; drop the view and create it again afterwards"
        )),
    }
}

/// Rows a rewrite in batches writes per transaction, at most (fewer when the transaction row
/// limit would not hold them with their index entries).
const REWRITE_BATCH: usize = 1024;

/// Writes every row of `old` again as `change` makes it, under `desc` (whose keys and index
/// entries may differ from `old`'s); a new key met twice is `duplicate`'s error.
///
/// With `batches` (the statement runs alone in its transaction), the new rows go under a new
/// table id, in transactions of their own of [`REWRITE_BATCH`] rows each, read from `txn`'s
/// snapshot: no transaction holds the whole table, and no reader sees a new row before `txn`
/// commits the new definition (ids are never reused, so an abandoned rewrite's rows are
/// unreachable, like a dropped table's). `txn` validates the old rows, so a write to them
/// committed meanwhile makes its commit fail (40001) rather than be lost. Without `batches`,
/// `txn` deletes every old row and entry and writes the new ones under the same id.
async fn rewrite_rows(
    txn: &mut Transaction,
    old: &TableDesc,
    desc: &mut TableDesc,
    ctx: &ExecContext<'_>,
    batches: Option<&cairn_qp::Database>,
    mut change: impl FnMut(Vec<Value>) -> SqlResult<Vec<Value>>,
    duplicate: impl Fn(&[Value]) -> SqlError,
) -> SqlResult<()> {
    if let Some(db) = batches {
        desc.id = committed_table_id(db).await?;
        txn.validate_range(old.all_rows());
        // Each row writes its key and one entry per index: stay within the row limit.
        let keys_per_row = 1 + desc.indexes.len();
        let per_batch = REWRITE_BATCH.min((db.limits().max_rows / keys_per_row).max(1));
        let mut range = old.all_rows();
        loop {
            ctx.check_cancel()?;
            let page = txn.scan(&range, per_batch).await.map_err(exec::core)?;
            let mut batch = db.begin();
            for (_, bytes) in &page {
                let row = exec::decode_table_row(old, bytes)?;
                let new = exec::conform_row(desc, change(row)?, ctx.zone)?;
                write_new_row(&mut batch, desc, new, ctx, &duplicate).await?;
            }
            batch.commit().await.map_err(exec::core)?;
            match page.last() {
                Some((last, _)) if page.len() == per_batch => range.start = exec::key_after(last),
                _ => return Ok(()),
            }
        }
    }
    let mut rewritten = Vec::new();
    for (key, row) in rows(txn, old, ctx).await? {
        ctx.check_cancel()?;
        exec::remove_index_entries(txn, old, &row);
        txn.delete(key);
        rewritten.push(exec::conform_row(desc, change(row)?, ctx.zone)?);
    }
    for new in rewritten {
        write_new_row(txn, desc, new, ctx, &duplicate).await?;
    }
    Ok(())
}

/// Writes a rewritten row and its index entries; a key already taken is `duplicate`'s error.
async fn write_new_row(
    txn: &mut Transaction,
    desc: &TableDesc,
    row: Vec<Value>,
    ctx: &ExecContext<'_>,
    duplicate: impl Fn(&[Value]) -> SqlError,
) -> SqlResult<()> {
    let key = exec::checked_key(desc, &row)?;
    if txn.get(&key).await.map_err(exec::core)?.is_some() {
        return Err(duplicate(&row));
    }
    exec::add_index_entries(txn, desc, &row, ctx.zone).await?;
    txn.put(key, exec::encode(&row)?);
    Ok(())
}

/// A new table id, its allocation committed at once so that no other table is given it
/// (the id of a transaction that rolls back is handed out again).
async fn committed_table_id(db: &cairn_qp::Database) -> SqlResult<u32> {
    let mut attempts = 0;
    loop {
        let mut txn = db.begin();
        let id = catalog::allocate_id(&mut txn).await?;
        match txn.commit().await.map_err(exec::core) {
            Ok(_) => return Ok(id),
            // Another CREATE drew from the counter meanwhile: draw again.
            Err(e) if e.state == SqlState::SERIALIZATION_FAILURE && attempts < 100 => {
                attempts += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Drops the hidden columns of index expressions no index reads any more.
fn drop_unused_generated(desc: &mut TableDesc) {
    let unused: Vec<usize> = (0..desc.columns.len())
        .filter(|&c| desc.columns[c].generated.is_some() && !desc.columns[c].dropped)
        .filter(|c| !desc.indexes.iter().any(|i| i.columns.contains(c)))
        .collect();
    for column in unused {
        mark_dropped(desc, column);
    }
}

/// Turns the column at `index` into a dropped one: hidden, its values ignored.
fn mark_dropped(desc: &mut TableDesc, index: usize) {
    let column = &mut desc.columns[index];
    column.name = format!("........dropped.{index}........");
    column.hidden = true;
    column.dropped = true;
    column.nullable = true;
    column.default = None;
    column.identity = None;
    column.generated = None;
}

/// 42710 if the table has a constraint (CHECK, FOREIGN KEY, UNIQUE, PRIMARY KEY) named `name`.
fn check_constraint_name(desc: &TableDesc, name: &str) -> SqlResult<()> {
    let has_key = desc.primary_key.iter().all(|&i| !desc.columns[i].hidden);
    let taken = desc.checks.iter().any(|(c, _)| c == name)
        || desc.foreign_keys.iter().any(|f| f.name == name)
        || desc.indexes.iter().any(|i| i.unique && i.name == name)
        || (has_key && desc.primary_key_name() == name);
    if taken {
        return Err(SqlError::new(
            SqlState("42710"),
            format!(
                "constraint \"{name}\" for relation \"{}\" already exists",
                desc.name
            ),
        ));
    }
    Ok(())
}

/// A unique violation met while building index `index_name` over existing rows, as
/// PostgreSQL reports it ("could not create unique index", "Key (...) is duplicated.").
fn index_build_error(index_name: &str, e: SqlError) -> SqlError {
    if e.state != SqlState::UNIQUE_VIOLATION {
        return e;
    }
    let error = SqlError::new(
        SqlState::UNIQUE_VIOLATION,
        format!("could not create unique index \"{index_name}\""),
    );
    match e.detail.as_deref() {
        Some(detail) => error.with_detail(detail.replace("already exists", "is duplicated")),
        None => error,
    }
}

/// Takes table `child` off `parent`'s list of referencing tables.
async fn forget_child(txn: &mut Transaction, parent: &str, child: &str) -> SqlResult<()> {
    if let Some(found) = catalog::lookup(txn, parent).await? {
        let mut parent = (*found).clone();
        parent.referenced_by.retain(|c| c != child);
        catalog::put(txn, &parent)?;
    }
    Ok(())
}

/// Deletes every entry of `index`.
pub(crate) async fn delete_entries(
    txn: &mut Transaction,
    table: &TableDesc,
    index: &IndexDesc,
) -> SqlResult<()> {
    const PAGE: usize = 512;
    let mut range = KeyRange::prefix(Key::from(table.index_prefix(index)));
    // An entry another transaction commits meanwhile would outlive the index (and meet a
    // later index given the same id): then this transaction fails instead.
    txn.validate_range(range.clone());
    let mut keys = Vec::new();
    loop {
        let page = txn.scan(&range, PAGE).await.map_err(exec::core)?;
        let full = page.len() == PAGE;
        let Some(last) = page.last().map(|(key, _)| key.clone()) else {
            break;
        };
        keys.extend(page.into_iter().map(|(key, _)| key));
        if !full {
            break;
        }
        range.start = exec::key_after(&last);
    }
    for key in keys {
        txn.delete(key);
    }
    Ok(())
}

/// CREATE [UNIQUE] INDEX: the definition and an entry for every row, in the statement's
/// transaction (a unique index over duplicate rows fails with 23505 and leaves nothing).
pub async fn create_index(
    txn: &mut Transaction,
    planned: &TableDesc,
    index: &IndexDesc,
    generated: &[crate::catalog::ColumnDesc],
    if_not_exists: bool,
    ctx: &ExecContext<'_>,
) -> SqlResult<Produced> {
    let produced = Produced {
        rows: vec![],
        tag: "CREATE INDEX".into(),
    };
    let Some(mut desc) = index_table(txn, planned, index, if_not_exists).await? else {
        return Ok(produced);
    };
    if !generated.is_empty() {
        // Every row gains the hidden columns, computed as each is written again.
        let old = desc.clone();
        desc.columns.extend(generated.iter().cloned());
        let width = desc.columns.len();
        let change = |mut row: Vec<Value>| {
            row.resize(width, Value::Null);
            Ok(row)
        };
        let duplicate = |row: &[Value]| exec::duplicate_key(&old, row, ctx.zone);
        // In the statement's transaction: the index is built from the rewritten rows next.
        rewrite_rows(txn, &old, &mut desc, ctx, None, change, duplicate).await?;
    }
    build_index(txn, &desc, index, ctx).await?;
    desc.indexes.push(index.clone());
    catalog::set_index_owner(txn, &index.name, Some(&desc.name));
    catalog::put(txn, &desc)?;
    Ok(produced)
}

/// CREATE INDEX ASYNC / CONCURRENTLY: the definition, marked building, and the job that
/// writes the entries of the rows there (see [`crate::jobs`]), started once this transaction
/// commits. `None` when IF NOT EXISTS found the name taken.
pub async fn begin_index_build(
    txn: &mut Transaction,
    planned: &TableDesc,
    index: &IndexDesc,
    if_not_exists: bool,
) -> SqlResult<Option<u64>> {
    let Some(mut desc) = index_table(txn, planned, index, if_not_exists).await? else {
        return Ok(None);
    };
    desc.indexes.push(IndexDesc {
        building: true,
        ..index.clone()
    });
    catalog::set_index_owner(txn, &index.name, Some(&desc.name));
    catalog::put(txn, &desc)?;
    crate::jobs::create(txn, &desc, &index.name).await.map(Some)
}

/// The definition of the table CREATE INDEX names, the index's name being free; `None` when
/// IF NOT EXISTS found it taken.
async fn index_table(
    txn: &mut Transaction,
    planned: &TableDesc,
    index: &IndexDesc,
    if_not_exists: bool,
) -> SqlResult<Option<TableDesc>> {
    if let Err(e) = check_index_name(txn, &index.name).await {
        if if_not_exists && e.state == SqlState::DUPLICATE_TABLE {
            return Ok(None);
        }
        return Err(e);
    }
    current_definition(txn, planned, "CREATE INDEX")
        .await
        .map(Some)
}

/// 42P07 if a table, sequence, view or index is named `name`.
async fn check_index_name(txn: &mut Transaction, name: &str) -> SqlResult<()> {
    let taken = catalog::index_owner(txn, name).await?.is_some()
        || catalog::lookup(txn, name).await?.is_some()
        || sequence::lookup(txn, name).await?.is_some()
        || catalog::lookup_view(txn, name).await?.is_some();
    if taken {
        return Err(SqlError::new(
            SqlState::DUPLICATE_TABLE,
            format!("relation \"{name}\" already exists"),
        ));
    }
    Ok(())
}

/// Writes an entry of `index` for every row of `desc` (a unique index over duplicate rows
/// fails with 23505, "could not create unique index").
async fn build_index(
    txn: &mut Transaction,
    desc: &TableDesc,
    index: &IndexDesc,
    ctx: &ExecContext<'_>,
) -> SqlResult<()> {
    let only = TableDesc {
        indexes: vec![index.clone()],
        ..desc.clone()
    };
    for (_, row) in rows(txn, desc, ctx).await? {
        ctx.check_cancel()?;
        exec::add_index_entries(txn, &only, &row, ctx.zone)
            .await
            .map_err(|e| index_build_error(&index.name, e))?;
    }
    Ok(())
}

/// DROP INDEX: the definition and every entry.
pub async fn drop_index(
    txn: &mut Transaction,
    names: &[String],
    if_exists: bool,
    _ctx: &ExecContext<'_>,
) -> SqlResult<Produced> {
    for name in names {
        let Some(owner) = catalog::index_owner(txn, name).await? else {
            if if_exists {
                continue;
            }
            return Err(SqlError::new(
                SqlState::UNDEFINED_OBJECT,
                format!("index \"{name}\" does not exist"),
            ));
        };
        let Some(table) = catalog::lookup(txn, &owner).await? else {
            catalog::set_index_owner(txn, name, None);
            continue;
        };
        let mut desc = (*table).clone();
        let Some(position) = desc.indexes.iter().position(|i| i.name == *name) else {
            catalog::set_index_owner(txn, name, None);
            continue;
        };
        let index = desc.indexes.remove(position);
        delete_entries(txn, &desc, &index).await?;
        catalog::set_index_owner(txn, name, None);
        drop_unused_generated(&mut desc);
        catalog::put(txn, &desc)?;
    }
    Ok(Produced {
        rows: vec![],
        tag: "DROP INDEX".into(),
    })
}

/// Checks a new table's foreign keys against their parents (which must exist and be
/// referenced by their primary key) and records the table in each parent's
/// `referenced_by`. A table referencing itself is its own parent.
pub async fn link_foreign_keys(txn: &mut Transaction, desc: &mut TableDesc) -> SqlResult<()> {
    for fk in desc.foreign_keys.clone() {
        let parent = if fk.parent == desc.name {
            desc.clone()
        } else {
            let found = catalog::lookup(txn, &fk.parent).await?;
            (*found.ok_or_else(|| catalog::undefined_table(&fk.parent))?).clone()
        };
        let key_names: Vec<&str> = parent
            .primary_key
            .iter()
            .map(|&i| parent.columns[i].name.as_str())
            .collect();
        let row_id = parent.primary_key.iter().any(|&i| parent.columns[i].hidden);
        let referenced_ok = fk.referenced.is_empty()
            || fk
                .referenced
                .iter()
                .map(String::as_str)
                .eq(key_names.iter().copied());
        if row_id || !referenced_ok {
            return Err(SqlError::new(
                SqlState("42830"),
                format!(
                    "there is no unique constraint matching given keys for referenced table \"{}\"",
                    fk.parent
                ),
            ));
        }
        if fk.columns.len() != parent.primary_key.len() {
            return Err(SqlError::new(
                SqlState("42830"),
                "number of referencing and referenced columns for foreign key disagree",
            ));
        }
        for (&child, &key) in fk.columns.iter().zip(&parent.primary_key) {
            let (from, to) = (
                &desc.columns[child].data_type,
                &parent.columns[key].data_type,
            );
            if !cast::can_cast_assignment(from, to) {
                return Err(SqlError::new(
                    SqlState::DATATYPE_MISMATCH,
                    format!(
                        "foreign key constraint \"{}\" cannot be implemented",
                        fk.name
                    ),
                ));
            }
        }
        if fk.parent == desc.name {
            if !desc.referenced_by.contains(&desc.name) {
                desc.referenced_by.push(desc.name.clone());
            }
        } else if !parent.referenced_by.contains(&desc.name) {
            let mut parent = parent;
            parent.referenced_by.push(desc.name.clone());
            catalog::put(txn, &parent)?;
        }
    }
    Ok(())
}

/// DROP TABLE ... CASCADE: the foreign keys of other tables that reference `desc` are
/// dropped (their tables stay). Returns what went, as PostgreSQL's notices name it.
pub async fn drop_referencing_keys(
    txn: &mut Transaction,
    desc: &TableDesc,
) -> SqlResult<Vec<String>> {
    let mut dropped = Vec::new();
    for child in desc.referenced_by.iter().filter(|c| **c != desc.name) {
        let Some(found) = catalog::lookup(txn, child).await? else {
            continue;
        };
        let mut child_desc = (*found).clone();
        let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut child_desc.foreign_keys)
            .into_iter()
            .partition(|fk| fk.parent == desc.name);
        child_desc.foreign_keys = kept;
        catalog::put(txn, &child_desc)?;
        dropped.extend(
            gone.iter()
                .map(|fk| format!("constraint {} on table {child}", fk.name)),
        );
    }
    let mut parent = desc.clone();
    parent.referenced_by.retain(|c| *c == desc.name);
    catalog::put(txn, &parent)?;
    Ok(dropped)
}

/// Before DROP TABLE: refused while another table references it (2BP01); its own foreign
/// keys are taken off their parents' lists.
pub async fn unlink_foreign_keys(txn: &mut Transaction, desc: &TableDesc) -> SqlResult<()> {
    if let Some(child) = desc.referenced_by.iter().find(|c| **c != desc.name) {
        return Err(SqlError::new(
            SqlState("2BP01"),
            format!(
                "cannot drop table {} because other objects depend on it",
                desc.name
            ),
        )
        .with_detail(format!(
            "a foreign key constraint on table {child} references table {}",
            desc.name
        ))
        .with_hint("Use DROP ... CASCADE to drop the dependent objects too."));
    }
    for fk in &desc.foreign_keys {
        if fk.parent != desc.name {
            forget_child(txn, &fk.parent, &desc.name).await?;
        }
    }
    Ok(())
}

/// Whether SQL text names `word` as an identifier (a whole word, outside string literals).
fn names_word(sql: &str, word: &str) -> bool {
    let mut outside_quotes = String::with_capacity(sql.len());
    for (i, part) in sql.split('\'').enumerate() {
        if i % 2 == 0 {
            outside_quotes.push_str(part);
            outside_quotes.push(' ');
        }
    }
    outside_quotes
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '"'))
        .any(|w| w == word || w.trim_matches('"') == word)
}
