//! Statement planning: turns one parsed statement into a [`Plan`], reading the catalog at the
//! transaction's snapshot. Expression binding is in `plan.rs`; this file decides what each
//! statement does and how each table is read.

use std::ops::Range;
use std::sync::Arc;

use cairn_qp::Transaction;
use sqlparser::ast;

use crate::catalog::{self, ColumnDesc, TableDesc};
use crate::catalog::{ForeignKey, Identity, IndexDesc, RefAction};
use crate::copy::CopyFormat;
use crate::error::{SqlError, SqlResult, SqlState};
use crate::expr::{CmpOp, Expr, Func};
use crate::plan::{
    column_refs, common_type, ident_name, sort_direction, table_name, visible_name, Access,
    Aggregation, AlterAction, Binder, ConflictAction, ConflictTarget, CursorMove, DeletePlan,
    HashKeys, IndexBuild, InsertPlan, InsertSource, JoinKind, JoinStep, JoinedRows, Plan,
    RecursiveUnion, Scan, Scope, ScopeTable, SelectPlan, Series, SetFunction, SetOperation,
    SetOperator, SortKey, TxnModes, UpdatePlan,
};
use crate::sequence::{self, SequenceDesc, SequenceSettings, SequenceUse};
use crate::types::interval::parse_interval;
use crate::types::timezone::TimeZone;
use crate::types::{ops, DataType};
use crate::Column;

/// Plans `statement`; returns the plan, the parameter types (declared or inferred) and the
/// sequences it calls.
pub async fn plan(
    txn: &mut Transaction,
    statement: &Statement,
    declared: &[Option<DataType>],
    zone: TimeZone,
    search_path: &[String],
) -> SqlResult<Planned> {
    let mut binder = Binder::new(declared, zone);
    binder.search_path = search_path.to_vec();
    let mut plan = match statement {
        Statement::Sql(statement) => plan_statement(txn, statement, &mut binder).await?,
        Statement::AlterSequence(alter) => plan_alter_sequence(txn, alter, &binder).await?,
        Statement::SetConstraints => Plan::SetConstraints,
        Statement::Fetch {
            name,
            direction,
            rows,
        } => Plan::Fetch {
            name: name.clone(),
            direction: *direction,
            rows: *rows,
        },
    };
    let subqueries: Vec<SelectPlan> = binder.subqueries.drain(..).map(|(_, plan)| plan).collect();
    // EXPLAIN shows the statement's subqueries with it; with data-modifying WITH queries
    // they belong to the statement, which runs them all before anything else.
    fn main_statement(plan: &mut Plan) -> &mut Plan {
        match plan {
            Plan::Explain(inner) => main_statement(inner),
            Plan::With { main, .. } => main_statement(main),
            Plan::CopyOut { query, .. } | Plan::DeclareCursor { query, .. } => {
                main_statement(query)
            }
            other => other,
        }
    }
    let target = main_statement(&mut plan);
    match target {
        Plan::Select(select) => select.subqueries = subqueries,
        Plan::Update(update) => update.subqueries = subqueries,
        Plan::Delete(delete) => delete.subqueries = subqueries,
        Plan::Insert(insert) => insert.subqueries = subqueries,
        Plan::Explain(_) => {}
        _ if subqueries.is_empty() => {}
        _ => {
            return Err(SqlError::unsupported(
                "subqueries are not supported in this statement yet",
            ))
        }
    }
    let sequences = std::mem::take(&mut binder.sequences);
    Ok(Planned {
        plan,
        params: binder.finish_params(),
        sequences,
        system_catalog: binder.system_catalog,
    })
}

/// A planned statement and what running it needs.
pub struct Planned {
    /// The plan.
    pub plan: Plan,
    /// Its parameters' types.
    pub params: Vec<DataType>,
    /// The sequences it calls by name.
    pub sequences: Vec<SequenceUse>,
    /// Whether it reads the system catalog ([`crate::system`]), loaded before it runs.
    pub system_catalog: bool,
}

async fn plan_statement(
    txn: &mut Transaction,
    statement: &ast::Statement,
    binder: &mut Binder,
) -> SqlResult<Plan> {
    use ast::Statement as S;
    Ok(match statement {
        S::Query(query) if has_data_modifying_with(query) => {
            Box::pin(plan_data_modifying_with(txn, query, binder)).await?
        }
        S::Query(query) => Plan::Select(Box::new(plan_query(txn, query, binder).await?)),
        S::Insert(insert) => Plan::Insert(Box::new(plan_insert(txn, insert, binder).await?)),
        S::Copy {
            source,
            to,
            target,
            options,
            legacy_options,
            values,
        } => {
            if !values.is_empty() {
                return Err(SqlError::unsupported(
                    "COPY data inside the statement text is not supported; send it with the COPY protocol",
                ));
            }
            match (to, target) {
                (false, ast::CopyTarget::Stdin) | (true, ast::CopyTarget::Stdout) => {}
                _ => {
                    return Err(SqlError::unsupported(
                        "COPY to or from a file or program on the server is not supported",
                    )
                    .with_hint("Use COPY ... FROM STDIN or TO STDOUT, or psql's \\copy."))
                }
            }
            if *to {
                Box::pin(plan_copy_to(txn, source, options, legacy_options, binder)).await?
            } else {
                let ast::CopySource::Table {
                    table_name,
                    columns,
                } = source
                else {
                    return Err(SqlError::syntax("syntax error at or near \"FROM\""));
                };
                let format = |names: &[String]| {
                    CopyFormat::from_options(options, legacy_options, false, names)
                };
                Plan::Insert(Box::new(
                    plan_copy_from(txn, table_name, columns, format, binder).await?,
                ))
            }
        }
        S::Update(update) => Plan::Update(Box::new(plan_update(txn, update, binder).await?)),
        S::Delete(delete) => Plan::Delete(Box::new(plan_delete(txn, delete, binder).await?)),
        S::CreateTable(create) => plan_create_table(txn, create, binder).await?,
        S::CreateIndex(create) => {
            if create.predicate.is_some() {
                return Err(SqlError::unsupported(
                    "partial indexes are not supported yet",
                ));
            }
            if let Some(using) = &create.using {
                // A hash index serves equalities, which the ordered index serves too.
                let method = using.to_string().to_lowercase();
                if !matches!(method.as_str(), "btree" | "hash") {
                    return Err(SqlError::unsupported(format!(
                        "index access method \"{method}\" is not supported yet"
                    )));
                }
            }
            let name = existing_relation(txn, binder, &create.table_name).await?;
            let table = require_writable(txn, &name).await?;
            refuse_view(&table)?;
            let mut key = Vec::new();
            // An expression is indexed through a hidden column that every write computes
            // (shared by the indexes on the same expression).
            let mut generated: Vec<ColumnDesc> = Vec::new();
            let scope = Scope::table(table.clone(), table.name.clone());
            for column in &create.columns {
                let expr = match &column.column.expr {
                    ast::Expr::Nested(inner) => inner.as_ref(),
                    expr => expr,
                };
                let index = match expr {
                    ast::Expr::Identifier(_) => index_column(&table.columns, expr)?,
                    _ => {
                        let bound = binder.bind(expr, &scope)?;
                        check_index_expression(&bound)?;
                        let ty = output_type(&bound);
                        if matches!(ty, DataType::Interval | DataType::Json) {
                            return Err(SqlError::unsupported(format!(
                                "indexes on {} expressions are not supported yet",
                                ty
                            )));
                        }
                        let sql = expr.to_string();
                        let existing = table.columns.iter().chain(&generated).position(|c| {
                            c.generated.as_deref() == Some(sql.as_str()) && !c.dropped
                        });
                        match existing {
                            Some(position) => position,
                            None => {
                                let mut hidden = ColumnDesc::new(sql.clone(), ty);
                                hidden.hidden = true;
                                hidden.generated = Some(sql);
                                generated.push(hidden);
                                table.columns.len() + generated.len() - 1
                            }
                        }
                    }
                };
                if !key.contains(&index) {
                    key.push(index);
                }
            }
            if !generated.is_empty() && (create.r#async || create.concurrently) {
                return Err(SqlError::unsupported(
                    "CREATE INDEX ASYNC / CONCURRENTLY on expressions is not supported yet",
                ));
            }
            let named = |i: usize| match table.columns.get(i) {
                Some(column) => column.name.clone(),
                None => generated[i - table.columns.len()].name.clone(),
            };
            let name = match &create.name {
                Some(name) => table_name(name)?,
                None => {
                    // PostgreSQL names an expression part "expr".
                    let names: Vec<String> = key
                        .iter()
                        .map(|&i| {
                            match i < table.columns.len() && table.columns[i].generated.is_none() {
                                true => named(i),
                                false => "expr".to_string(),
                            }
                        })
                        .collect();
                    format!("{}_{}_idx", table.name, names.join("_"))
                }
            };
            let id = table.next_index_id().ok_or_else(|| {
                SqlError::new(
                    SqlState::PROGRAM_LIMIT_EXCEEDED,
                    "too many indexes on one table",
                )
            })?;
            let mut include = Vec::with_capacity(create.include.len());
            for column in &create.include {
                let name = ident_name(column);
                let index = visible_column(&table.columns, &name).ok_or_else(|| {
                    SqlError::new(
                        SqlState::UNDEFINED_COLUMN,
                        format!("column \"{name}\" does not exist"),
                    )
                })?;
                include.push(index);
            }
            Plan::CreateIndex {
                table,
                index: IndexDesc {
                    id,
                    name,
                    columns: key,
                    include,
                    unique: create.unique,
                    building: create.r#async || create.concurrently,
                },
                if_not_exists: create.if_not_exists,
                generated,
                build: match (create.r#async, create.concurrently) {
                    (true, _) => IndexBuild::Async,
                    (false, true) => IndexBuild::Concurrently,
                    (false, false) => IndexBuild::InStatement,
                },
            }
        }
        S::Drop {
            object_type,
            if_exists,
            names,
            cascade,
            ..
        } => {
            use ast::ObjectType as O;
            let kind = match object_type {
                O::Table => "TABLE",
                O::Sequence => "SEQUENCE",
                O::View => "VIEW",
                O::Index => "INDEX",
                O::Schema => "SCHEMA",
                other => {
                    return Err(SqlError::unsupported(format!(
                        "DROP {other} is not supported yet"
                    )))
                }
            };
            if *cascade && kind != "TABLE" {
                return Err(SqlError::unsupported(format!(
                    "DROP {kind} ... CASCADE is not supported yet"
                )));
            }
            let mut resolved = Vec::with_capacity(names.len());
            for name in names {
                resolved.push(match object_type {
                    O::Table | O::Sequence | O::View => {
                        existing_relation(txn, binder, name).await?
                    }
                    _ => table_name(name)?,
                });
            }
            let names = resolved;
            let if_exists = *if_exists;
            match object_type {
                O::Table => Plan::DropTable {
                    names,
                    if_exists,
                    cascade: *cascade,
                },
                O::Sequence => Plan::DropSequence { names, if_exists },
                O::View => Plan::DropView { names, if_exists },
                O::Index => Plan::DropIndex { names, if_exists },
                _ => Plan::DropSchema { names, if_exists },
            }
        }
        S::CreateView(view) => {
            if view.materialized || view.temporary {
                return Err(SqlError::unsupported(
                    "materialized and temporary views are not supported yet",
                ));
            }
            // OR REPLACE replaces the view search_path finds, as PostgreSQL does.
            let existing = existing_relation(txn, binder, &view.name).await?;
            let name =
                match view.or_replace && catalog::lookup_view(txn, &existing).await?.is_some() {
                    true => existing,
                    false => new_relation(txn, binder, &view.name).await?,
                };
            let plan = Box::pin(plan_query(txn, &view.query, binder)).await?;
            // Planned only to check it and name its columns: the view runs where it is read.
            binder.subqueries.clear();
            binder.sequences.clear();
            let mut columns: Vec<String> = plan.columns.iter().map(|c| c.name.clone()).collect();
            if view.columns.len() > columns.len() {
                return Err(SqlError::syntax(
                    "CREATE VIEW specifies more column names than columns",
                ));
            }
            for (column, given) in columns.iter_mut().zip(&view.columns) {
                *column = ident_name(&given.name);
            }
            if let Some(duplicate) = columns
                .iter()
                .enumerate()
                .find(|(i, c)| columns[..*i].contains(c))
                .map(|(_, c)| c)
            {
                return Err(SqlError::new(
                    SqlState::DUPLICATE_COLUMN,
                    format!("column \"{duplicate}\" specified more than once"),
                ));
            }
            Plan::CreateView {
                desc: catalog::ViewDesc {
                    name,
                    sql: view.query.to_string(),
                    columns,
                },
                or_replace: view.or_replace,
            }
        }
        S::AlterTable(alter) => Box::pin(plan_alter_table(txn, alter, binder)).await?,
        S::CreateSchema {
            schema_name,
            if_not_exists,
            ..
        } => {
            let name = match schema_name {
                ast::SchemaName::Simple(name) | ast::SchemaName::NamedAuthorization(name, _) => {
                    table_name(name)?
                }
                ast::SchemaName::UnnamedAuthorization(user) => ident_name(user),
            };
            if name.contains('.') {
                return Err(SqlError::syntax(format!("improper schema name: {name}")));
            }
            Plan::CreateSchema {
                name,
                if_not_exists: *if_not_exists,
            }
        }
        S::Comment {
            object_type,
            object_name,
            comment,
            ..
        } => {
            let kind = match object_type {
                ast::CommentObject::Table => "table",
                ast::CommentObject::Column => "column",
                ast::CommentObject::View => "view",
                ast::CommentObject::Sequence => "sequence",
                ast::CommentObject::Index => "index",
                ast::CommentObject::Schema => "schema",
                other => {
                    return Err(SqlError::unsupported(format!(
                        "COMMENT ON {other} is not supported yet"
                    )))
                }
            };
            let name = match kind {
                "column" => {
                    let parts: Vec<String> = object_name
                        .0
                        .iter()
                        .map(|p| p.to_string())
                        .map(
                            |p| match p.strip_prefix('"').and_then(|p| p.strip_suffix('"')) {
                                Some(quoted) => quoted.to_string(),
                                None => p.to_lowercase(),
                            },
                        )
                        .collect();
                    let [table @ .., column] = parts.as_slice() else {
                        return Err(SqlError::syntax("column name must be qualified"));
                    };
                    let table = match table {
                        [t] => unqualified_relation(txn, binder, t.clone()).await?,
                        [s, t] if s == "public" => t.clone(),
                        [s, t] => format!("{s}.{t}"),
                        _ => return Err(SqlError::syntax("column name must be qualified")),
                    };
                    let desc = catalog::require(txn, &table).await?;
                    if desc
                        .column_index(column)
                        .is_none_or(|i| desc.columns[i].hidden)
                    {
                        return Err(SqlError::new(
                            SqlState::UNDEFINED_COLUMN,
                            format!("column \"{column}\" of relation \"{table}\" does not exist"),
                        ));
                    }
                    format!("{table}.{column}")
                }
                _ => existing_relation(txn, binder, object_name).await?,
            };
            Plan::Comment {
                kind,
                name,
                text: comment.clone(),
            }
        }
        S::Truncate(truncate) => {
            if truncate
                .cascade
                .as_ref()
                .is_some_and(|c| matches!(c, ast::CascadeOption::Cascade))
            {
                return Err(SqlError::unsupported(
                    "TRUNCATE ... CASCADE is not supported yet",
                ));
            }
            let mut names = Vec::with_capacity(truncate.table_names.len());
            for target in &truncate.table_names {
                names.push(existing_relation(txn, binder, &target.name).await?);
            }
            Plan::Truncate {
                names,
                restart_identity: matches!(
                    truncate.identity,
                    Some(ast::TruncateIdentityOption::Restart)
                ),
            }
        }
        S::CreateSequence {
            temporary,
            if_not_exists,
            name,
            data_type,
            sequence_options,
            owned_by,
        } => {
            if *temporary {
                return Err(SqlError::unsupported(
                    "temporary sequences are not supported yet",
                ));
            }
            let data_type = match data_type {
                Some(ty) => DataType::from_ast(ty)?,
                None => DataType::Int8,
            };
            let name = new_relation(txn, binder, name).await?;
            let mut desc = sequence_desc(name, data_type, sequence_options)?;
            desc.owned_by = match owned_by {
                None => None,
                Some(target) if target.to_string().eq_ignore_ascii_case("none") => None,
                Some(target) => match target.0.as_slice() {
                    [table, column] => Some((
                        table.to_string().to_lowercase(),
                        column.to_string().to_lowercase(),
                    )),
                    _ => {
                        return Err(SqlError::syntax(format!(
                            "invalid OWNED BY option {target}: name a table's column"
                        )))
                    }
                },
            };
            Plan::CreateSequence {
                desc,
                if_not_exists: *if_not_exists,
            }
        }
        S::StartTransaction {
            modes, statements, ..
        } if statements.is_empty() => Plan::Begin(txn_modes(modes)?),
        S::Commit { chain: false, .. } => Plan::Commit,
        S::Rollback {
            chain: false,
            savepoint: None,
        } => Plan::Rollback,
        S::Rollback {
            chain: false,
            savepoint: Some(name),
        } => Plan::RollbackToSavepoint(ident_name(name)),
        S::Savepoint { name } => Plan::Savepoint(ident_name(name)),
        S::ReleaseSavepoint { name } => Plan::ReleaseSavepoint(ident_name(name)),
        S::Set(set) => plan_set(set)?,
        S::ShowVariable { variable } => {
            let name = variable
                .iter()
                .map(ident_name)
                .collect::<Vec<_>>()
                .join(" ");
            Plan::Show(normalize_parameter(&name))
        }
        S::Explain {
            statement,
            analyze: false,
            ..
        } => Plan::Explain(Box::new(
            Box::pin(plan_statement(txn, statement, binder)).await?,
        )),
        S::Discard { object_type } => match object_type {
            ast::DiscardObject::ALL => Plan::DiscardAll,
            ast::DiscardObject::PLANS => Plan::DiscardPlans,
            // Cairn keeps no sequence caches or temporary tables per session to drop.
            ast::DiscardObject::SEQUENCES => Plan::NoOp("DISCARD SEQUENCES"),
            ast::DiscardObject::TEMP => Plan::NoOp("DISCARD TEMP"),
        },
        S::Declare { stmts } => {
            let [declare] = stmts.as_slice() else {
                return Err(SqlError::syntax("DECLARE declares one cursor"));
            };
            let (Some(ast::DeclareType::Cursor), Some(query), [name]) = (
                &declare.declare_type,
                &declare.for_query,
                declare.names.as_slice(),
            ) else {
                return Err(SqlError::syntax("DECLARE needs CURSOR ... FOR a query"));
            };
            if declare.binary == Some(true) {
                return Err(SqlError::unsupported(
                    "binary cursors are not supported yet",
                ));
            }
            let select = plan_query(txn, query, binder).await?;
            let locks = select.scan.as_ref().is_some_and(|scan| scan.lock)
                || select.joins.iter().any(|join| join.scan.lock);
            if declare.hold == Some(true) && locks {
                return Err(SqlError::unsupported(
                    "DECLARE CURSOR WITH HOLD ... FOR UPDATE is not supported",
                )
                .with_detail("Holdable cursors must be READ ONLY."));
            }
            Plan::DeclareCursor {
                name: ident_name(name),
                query: Box::new(Plan::Select(Box::new(select))),
                hold: declare.hold == Some(true),
                no_scroll: declare.scroll == Some(false),
            }
        }
        S::Fetch {
            name,
            direction,
            into,
            ..
        } => {
            if into.is_some() {
                return Err(SqlError::unsupported("FETCH ... INTO is not supported"));
            }
            Plan::Fetch {
                name: ident_name(name),
                direction: cursor_move(direction)?,
                rows: true,
            }
        }
        S::Prepare {
            name,
            data_types,
            statement,
        } => Plan::Prepare {
            name: ident_name(name),
            types: data_types
                .iter()
                .map(DataType::from_ast)
                .collect::<SqlResult<_>>()?,
            statement: statement.clone(),
        },
        S::Execute {
            name: Some(name),
            parameters,
            immediate: false,
            into,
            using,
            ..
        } if into.is_empty() && using.is_empty() => Plan::Execute {
            name: table_name(name)?,
            arguments: parameters.clone(),
        },
        S::LISTEN { channel } => Plan::Listen(Some(ident_name(channel)), true),
        S::UNLISTEN { channel } if channel.value == "*" && channel.quote_style.is_none() => {
            Plan::Listen(None, false)
        }
        S::UNLISTEN { channel } => Plan::Listen(Some(ident_name(channel)), false),
        S::NOTIFY { channel, payload } => Plan::Notify {
            channel: ident_name(channel),
            payload: payload.clone().unwrap_or_default(),
        },
        S::Close { cursor } => Plan::CloseCursor(match cursor {
            ast::CloseCursor::All => None,
            ast::CloseCursor::Specific { name } => Some(ident_name(name)),
        }),
        S::Deallocate { name, .. } => {
            if name.quote_style.is_none() && name.value.eq_ignore_ascii_case("all") {
                Plan::Deallocate(None)
            } else {
                Plan::Deallocate(Some(name.value.clone()))
            }
        }
        // Storage collects old versions and keeps no planner statistics: nothing to do.
        S::Vacuum(_) => Plan::NoOp("VACUUM"),
        S::Analyze(_) => Plan::NoOp("ANALYZE"),
        S::Reset(reset) => match &reset.reset {
            ast::Reset::ConfigurationParameter(name) => {
                Plan::Reset(normalize_parameter(&name.to_string()))
            }
            ast::Reset::ALL => Plan::Reset("all".into()),
            ast::Reset::SessionAuthorization => Plan::NoOp("RESET"),
        },
        other => {
            let text = other.to_string();
            let head: String = text
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ");
            return Err(SqlError::unsupported(format!(
                "{head} is not supported yet"
            )));
        }
    })
}

/// Maps PostgreSQL's alternative parameter spellings to one name.
pub fn normalize_parameter(name: &str) -> String {
    match name.to_lowercase().as_str() {
        "transaction isolation level" => "transaction_isolation".into(),
        "time zone" => "timezone".into(),
        // sqlparser splits `SHOW a.b` (a custom setting) into two words.
        other => match other.split_once(' ') {
            Some((class, setting)) if !setting.contains(' ') && other != "all" => {
                format!("{class}.{setting}")
            }
            _ => other.to_string(),
        },
    }
}

fn txn_modes(modes: &[ast::TransactionMode]) -> SqlResult<TxnModes> {
    let mut result = TxnModes::default();
    for mode in modes {
        match mode {
            ast::TransactionMode::IsolationLevel(level) => {
                result.isolation = Some(match level {
                    ast::TransactionIsolationLevel::ReadUncommitted => "read uncommitted",
                    ast::TransactionIsolationLevel::ReadCommitted => "read committed",
                    ast::TransactionIsolationLevel::RepeatableRead => "repeatable read",
                    ast::TransactionIsolationLevel::Serializable => "serializable",
                    ast::TransactionIsolationLevel::Snapshot => "repeatable read",
                })
            }
            ast::TransactionMode::AccessMode(access) => {
                result.read_only = Some(matches!(access, ast::TransactionAccessMode::ReadOnly))
            }
        }
    }
    Ok(result)
}

fn set_value(expr: &ast::Expr) -> SqlResult<Option<String>> {
    Ok(Some(match expr {
        ast::Expr::Identifier(ident)
            if ident.quote_style.is_none() && ident.value.eq_ignore_ascii_case("default") =>
        {
            return Ok(None)
        }
        ast::Expr::Identifier(ident) => ident.value.clone(),
        ast::Expr::Value(v) => match &v.value {
            ast::Value::SingleQuotedString(s) | ast::Value::DoubleQuotedString(s) => s.clone(),
            ast::Value::Number(n, _) => n.to_string(),
            ast::Value::Boolean(b) => {
                if *b {
                    "on".into()
                } else {
                    "off".into()
                }
            }
            other => other.to_string(),
        },
        ast::Expr::UnaryOp {
            op: ast::UnaryOperator::Minus,
            expr,
        } => format!("-{}", set_value(expr)?.unwrap_or_default()),
        other => other.to_string(),
    }))
}

/// `SET TIME ZONE value`: a zone name or number as for `SET TimeZone`, `LOCAL` or
/// `DEFAULT`, or an interval (`INTERVAL '+05:30' HOUR TO MINUTE`), which becomes the fixed
/// offset PostgreSQL names `<+05:30>-05:30`.
fn time_zone_value(expr: &ast::Expr) -> SqlResult<Option<String>> {
    match expr {
        ast::Expr::Identifier(ident)
            if ident.quote_style.is_none() && ident.value.eq_ignore_ascii_case("local") =>
        {
            Ok(None)
        }
        ast::Expr::Interval(interval) => {
            let text = match interval.value.as_ref() {
                ast::Expr::Value(v) => match &v.value {
                    ast::Value::SingleQuotedString(s) => s.clone(),
                    other => other.to_string(),
                },
                other => other.to_string(),
            };
            let unit = interval.leading_field.as_ref().map(|f| f.to_string());
            let parsed = match unit.as_deref() {
                // A bare number with a unit: `INTERVAL '5' HOUR`.
                Some(unit) if text.trim().parse::<f64>().is_ok() => {
                    parse_interval(&format!("{text} {unit}"))?
                }
                _ => parse_interval(&text)?,
            };
            if parsed.months != 0 || parsed.days != 0 {
                return Err(SqlError::new(
                    SqlState::INVALID_PARAMETER_VALUE,
                    format!("invalid interval value for time zone: {text}"),
                ));
            }
            let seconds = i32::try_from(parsed.micros / 1_000_000).unwrap_or(i32::MAX);
            Ok(Some(TimeZone::fixed(seconds).name().to_string()))
        }
        other => set_value(other),
    }
}

fn plan_set(set: &ast::Set) -> SqlResult<Plan> {
    Ok(match set {
        ast::Set::SingleAssignment {
            variable,
            values,
            scope,
            ..
        } => {
            let name = normalize_parameter(&variable.to_string());
            let mut parts = Vec::new();
            let mut default = false;
            for value in values {
                match set_value(value)? {
                    Some(v) => parts.push(v),
                    None => default = true,
                }
            }
            let value = (!default).then(|| parts.join(", "));
            if matches!(scope, Some(ast::ContextModifier::Local)) {
                Plan::SetLocal { name, value }
            } else {
                Plan::Set { name, value }
            }
        }
        ast::Set::SetTimeZone { value, local } => {
            let (name, value) = ("timezone".to_string(), time_zone_value(value)?);
            match local {
                true => Plan::SetLocal { name, value },
                false => Plan::Set { name, value },
            }
        }
        ast::Set::SetNames { charset_name, .. } => Plan::Set {
            name: "client_encoding".into(),
            value: Some(charset_name.value.clone()),
        },
        ast::Set::SetNamesDefault {} => Plan::Set {
            name: "client_encoding".into(),
            value: None,
        },
        ast::Set::SetTransaction {
            modes,
            snapshot: None,
            session,
        } => Plan::SetTransaction {
            modes: txn_modes(modes)?,
            session: *session,
        },
        other => return Err(SqlError::unsupported(format!("{other} is not supported"))),
    })
}

/// A sequence of `data_type` with CREATE SEQUENCE's (or an identity column's) options
/// applied and checked as PostgreSQL checks them.
fn sequence_desc(
    name: String,
    data_type: DataType,
    options: &[ast::SequenceOptions],
) -> SqlResult<SequenceDesc> {
    let mut settings = SequenceSettings::default();
    for option in options {
        read_sequence_option(option, &mut settings)?;
    }
    SequenceDesc::new(name, data_type).with_settings(&settings, true)
}

/// A sequence option's integer.
fn sequence_number(expr: &ast::Expr) -> SqlResult<i64> {
    let text = expr.to_string().replace(' ', "");
    text.parse::<i64>()
        .map_err(|_| SqlError::syntax(format!("a sequence option must be an integer, not {expr}")))
}

fn read_sequence_option(
    option: &ast::SequenceOptions,
    settings: &mut SequenceSettings,
) -> SqlResult<()> {
    use ast::SequenceOptions as O;
    match option {
        O::IncrementBy(e, _) => settings.increment = Some(sequence_number(e)?),
        O::MinValue(e) => settings.min = Some(e.as_ref().map(sequence_number).transpose()?),
        O::MaxValue(e) => settings.max = Some(e.as_ref().map(sequence_number).transpose()?),
        O::StartWith(e, _) => settings.start = Some(sequence_number(e)?),
        O::Cache(e) => settings.cache = Some(sequence_number(e)?),
        // sqlparser's flag is NO: `Cycle(true)` is NO CYCLE.
        O::Cycle(no) => settings.cycle = Some(!no),
    }
    Ok(())
}

/// ALTER SEQUENCE, which sqlparser does not read.
#[derive(Clone, Debug, Default)]
pub struct AlterSequence {
    if_exists: bool,
    name: String,
    /// AS type.
    data_type: Option<DataType>,
    settings: SequenceSettings,
    /// RESTART (`Some(None)`: from START) or RESTART WITH n.
    restart: Option<Option<i64>>,
    /// OWNED BY table.column (`Some(None)`: OWNED BY NONE).
    owned_by: Option<Option<(String, String)>>,
}

impl std::fmt::Display for AlterSequence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ALTER SEQUENCE {}", self.name)
    }
}

/// A statement: as sqlparser reads it, or one Cairn reads itself.
// sqlparser's statement is as large unwrapped as here; boxing it would add a move for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Statement {
    /// What sqlparser parsed.
    Sql(ast::Statement),
    /// ALTER SEQUENCE.
    AlterSequence(AlterSequence),
    /// SET CONSTRAINTS ... { DEFERRED | IMMEDIATE }.
    SetConstraints,
    /// FETCH or MOVE (`rows`: false) on a cursor.
    Fetch {
        /// The cursor.
        name: String,
        /// How far, which way.
        direction: CursorMove,
        /// FETCH returns the rows; MOVE only moves.
        rows: bool,
    },
}

impl std::fmt::Display for Statement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Statement::Sql(statement) => statement.fmt(f),
            Statement::AlterSequence(alter) => alter.fmt(f),
            Statement::SetConstraints => f.write_str("SET CONSTRAINTS"),
            Statement::Fetch { name, rows, .. } => {
                write!(f, "{} {name}", if *rows { "FETCH" } else { "MOVE" })
            }
        }
    }
}

/// Reads `ALTER SEQUENCE [IF EXISTS] name option...`; `None` if `sql` is not one.
pub(crate) fn parse_alter_sequence(sql: &str) -> Option<SqlResult<AlterSequence>> {
    use sqlparser::keywords::Keyword as K;
    use sqlparser::tokenizer::Token;
    let dialect = sqlparser::dialect::PostgreSqlDialect {};
    let mut parser = sqlparser::parser::Parser::new(&dialect)
        .try_with_sql(sql)
        .ok()?;
    if !parser.parse_keywords(&[K::ALTER, K::SEQUENCE]) {
        return None;
    }
    let read = |parser: &mut sqlparser::parser::Parser| -> Result<SqlResult<AlterSequence>, sqlparser::parser::ParserError> {
        let mut alter = AlterSequence {
            if_exists: parser.parse_keywords(&[K::IF, K::EXISTS]),
            ..AlterSequence::default()
        };
        let name = parser.parse_object_name(false)?;
        alter.name = match table_name(&name) {
            Ok(name) => name,
            Err(e) => return Ok(Err(e)),
        };
        let number = |parser: &mut sqlparser::parser::Parser| -> Result<SqlResult<i64>, sqlparser::parser::ParserError> {
            Ok(sequence_number(&parser.parse_number()?))
        };
        // Each option at most once; at least one.
        let mut seen: Vec<String> = Vec::new();
        loop {
            let word = |n: usize, parser: &sqlparser::parser::Parser| match &parser.peek_nth_token_ref(n).token {
                Token::Word(w) => w.value.to_lowercase(),
                _ => String::new(),
            };
            let option = match word(0, parser).as_str() {
                "no" => word(1, parser),
                "restart" | "owned" | "owner" | "as" | "increment" | "minvalue" | "maxvalue"
                | "start" | "cache" | "cycle" => word(0, parser),
                _ => String::new(),
            };
            if !option.is_empty() {
                if seen.contains(&option) {
                    return Ok(Err(SqlError::syntax("conflicting or redundant options")));
                }
                seen.push(option);
            }
            let settings = &mut alter.settings;
            let value = if parser.consume_token(&Token::SemiColon) || parser.peek_token_ref().token == Token::EOF {
                if parser.peek_token_ref().token != Token::EOF {
                    return Ok(Err(SqlError::unsupported(
                        "ALTER SEQUENCE must be the only statement in its query string",
                    )));
                }
                if seen.is_empty() {
                    return Ok(Err(SqlError::syntax("syntax error at end of input")));
                }
                break;
            } else if parser.parse_keyword(K::AS) {
                match DataType::from_ast(&parser.parse_data_type()?) {
                    Ok(ty) => alter.data_type = Some(ty),
                    Err(e) => return Ok(Err(e)),
                }
                Ok(())
            } else if parser.parse_keyword(K::INCREMENT) {
                let _ = parser.parse_keyword(K::BY);
                number(parser)?.map(|n| settings.increment = Some(n))
            } else if parser.parse_keywords(&[K::NO, K::MINVALUE]) {
                settings.min = Some(None);
                Ok(())
            } else if parser.parse_keywords(&[K::NO, K::MAXVALUE]) {
                settings.max = Some(None);
                Ok(())
            } else if parser.parse_keywords(&[K::NO, K::CYCLE]) {
                settings.cycle = Some(false);
                Ok(())
            } else if parser.parse_keyword(K::MINVALUE) {
                number(parser)?.map(|n| settings.min = Some(Some(n)))
            } else if parser.parse_keyword(K::MAXVALUE) {
                number(parser)?.map(|n| settings.max = Some(Some(n)))
            } else if parser.parse_keyword(K::CYCLE) {
                settings.cycle = Some(true);
                Ok(())
            } else if parser.parse_keyword(K::START) {
                let _ = parser.parse_keyword(K::WITH);
                number(parser)?.map(|n| settings.start = Some(n))
            } else if parser.parse_keyword(K::CACHE) {
                number(parser)?.map(|n| settings.cache = Some(n))
            } else if parser.parse_keyword(K::RESTART) {
                let with = parser.parse_keyword(K::WITH);
                let numeric = matches!(
                    parser.peek_token_ref().token,
                    Token::Number(..) | Token::Minus | Token::Plus
                );
                if with || numeric {
                    number(parser)?.map(|n| alter.restart = Some(Some(n)))
                } else {
                    alter.restart = Some(None);
                    Ok(())
                }
            } else if parser.parse_keywords(&[K::OWNED, K::BY]) {
                if parser.parse_keyword(K::NONE) {
                    alter.owned_by = Some(None);
                    Ok(())
                } else {
                    let target = parser.parse_object_name(false)?;
                    let parts: Vec<String> = target
                        .0
                        .iter()
                        .map(|part| match part {
                            ast::ObjectNamePart::Identifier(ident) => ident_name(ident),
                            other => other.to_string(),
                        })
                        .collect();
                    match parts.as_slice() {
                        [table, column] => {
                            alter.owned_by = Some(Some((table.clone(), column.clone())));
                            Ok(())
                        }
                        [schema, table, column] => {
                            let table = if schema == "public" {
                                table.clone()
                            } else {
                                format!("{schema}.{table}")
                            };
                            alter.owned_by = Some(Some((table, column.clone())));
                            Ok(())
                        }
                        _ => Err(SqlError::syntax(format!(
                            "invalid OWNED BY option {target}: name a table's column"
                        ))),
                    }
                }
            } else if parser.parse_keywords(&[K::OWNER, K::TO]) {
                // There is one role; ownership changes nothing.
                parser.parse_identifier()?;
                Ok(())
            } else if parser.parse_keyword(K::RENAME) || parser.parse_keyword(K::SET) {
                Err(SqlError::unsupported(
                    "ALTER SEQUENCE ... RENAME and SET are not supported yet",
                ))
            } else {
                let next = parser.peek_token_ref();
                let at = next.span.start;
                Err(
                    SqlError::syntax(format!("syntax error at or near \"{}\"", next.token))
                        .at(at.line, at.column)
                        .locate_in(sql),
                )
            };
            if let Err(e) = value {
                return Ok(Err(e));
            }
        }
        Ok(Ok(alter))
    };
    Some(match read(&mut parser) {
        Ok(result) => result,
        Err(e) => Err(crate::session::syntax_error(e, sql)),
    })
}

/// A FOREIGN KEY of table `table` over its columns `key` (the referenced columns are
/// checked against the parent's primary key when the table is created).
fn foreign_key(
    table: &str,
    columns: &[ColumnDesc],
    fk: &ast::ForeignKeyConstraint,
    key: Vec<usize>,
    parent: String,
) -> SqlResult<ForeignKey> {
    if matches!(
        fk.match_kind,
        Some(ast::ConstraintReferenceMatchKind::Full | ast::ConstraintReferenceMatchKind::Partial)
    ) {
        return Err(SqlError::unsupported(
            "foreign keys with MATCH FULL or MATCH PARTIAL are not supported yet",
        ));
    }
    // DEFERRABLE [INITIALLY DEFERRED] is accepted (ORMs declare every foreign key so) but
    // checked at each statement's end, not at commit: stricter, never looser.
    if fk
        .characteristics
        .as_ref()
        .is_some_and(|c| c.enforced == Some(false))
    {
        return Err(SqlError::unsupported(
            "NOT ENFORCED foreign keys are not supported yet",
        ));
    }
    let action = |a: &Option<ast::ReferentialAction>| match a {
        None | Some(ast::ReferentialAction::NoAction | ast::ReferentialAction::Restrict) => {
            RefAction::NoAction
        }
        Some(ast::ReferentialAction::Cascade) => RefAction::Cascade,
        Some(ast::ReferentialAction::SetNull) => RefAction::SetNull,
        Some(ast::ReferentialAction::SetDefault) => RefAction::SetDefault,
    };
    let names: Vec<&str> = key.iter().map(|&i| columns[i].name.as_str()).collect();
    Ok(ForeignKey {
        name: fk
            .name
            .as_ref()
            .map(ident_name)
            .unwrap_or_else(|| format!("{table}_{}_fkey", names.join("_"))),
        columns: key,
        parent,
        referenced: fk.referred_columns.iter().map(ident_name).collect(),
        on_delete: action(&fk.on_delete),
        on_update: action(&fk.on_update),
    })
}

/// The positions of the columns a FOREIGN KEY constraint names.
fn foreign_key_columns(
    columns: &[ColumnDesc],
    fk: &ast::ForeignKeyConstraint,
) -> SqlResult<Vec<usize>> {
    let mut key = Vec::with_capacity(fk.columns.len());
    for column in &fk.columns {
        let name = ident_name(column);
        let index = visible_column(columns, &name).ok_or_else(|| {
            SqlError::new(
                SqlState::UNDEFINED_COLUMN,
                format!("column \"{name}\" referenced in foreign key constraint does not exist"),
            )
        })?;
        key.push(index);
    }
    Ok(key)
}

/// The position of the column a user can name `name` (not a hidden or dropped one).
fn visible_column(columns: &[ColumnDesc], name: &str) -> Option<usize> {
    columns.iter().position(|c| c.name == name && !c.hidden)
}

/// The column an index or UNIQUE constraint names by name (an index's expressions are bound
/// by CREATE INDEX's planning, which indexes them through generated columns).
fn index_column(columns: &[ColumnDesc], expr: &ast::Expr) -> SqlResult<usize> {
    let ast::Expr::Identifier(ident) = expr else {
        return Err(SqlError::unsupported(
            "indexes on expressions are not supported yet",
        ));
    };
    let name = ident_name(ident);
    let index = visible_column(columns, &name).ok_or_else(|| {
        SqlError::new(
            SqlState::UNDEFINED_COLUMN,
            format!("column \"{name}\" does not exist"),
        )
    })?;
    // Equal intervals ('1 day', '24 hours') have different keys: an index would tell them
    // apart where comparison does not.
    let interval = |ty: &DataType| matches!(ty, DataType::Interval);
    match &columns[index].data_type {
        DataType::Array(element) if interval(element) => {}
        ty if !interval(ty) => return Ok(index),
        _ => {}
    }
    Err(SqlError::unsupported(format!(
        "indexes on interval column \"{name}\" are not supported yet"
    )))
}

/// `serial`, `bigserial`, `smallserial` (and `serial4`...): the integer type they stand for.
fn serial_type(data_type: &ast::DataType) -> Option<DataType> {
    let ast::DataType::Custom(name, modifiers) = data_type else {
        return None;
    };
    if !modifiers.is_empty() {
        return None;
    }
    match name.to_string().to_lowercase().trim_matches('"') {
        "serial" | "serial4" => Some(DataType::Int4),
        "bigserial" | "serial8" => Some(DataType::Int8),
        "smallserial" | "serial2" => Some(DataType::Int2),
        _ => None,
    }
}

async fn plan_create_table(
    txn: &mut Transaction,
    create: &ast::CreateTable,
    binder: &mut Binder,
) -> SqlResult<Plan> {
    if create.query.is_some() {
        return Err(SqlError::unsupported(
            "CREATE TABLE ... AS is not supported yet",
        ));
    }
    if create.temporary {
        return Err(SqlError::unsupported(
            "temporary tables are not supported yet",
        ));
    }
    let name = new_relation(txn, binder, &create.name).await?;
    let mut columns: Vec<ColumnDesc> = Vec::new();
    let mut sequences: Vec<SequenceDesc> = Vec::new();
    // UNIQUE constraints: (name given, columns).
    let mut uniques: Vec<(Option<String>, Vec<usize>)> = Vec::new();
    // CHECK constraints: (name, or empty to name after the table, condition).
    let mut checks: Vec<(String, ast::Expr)> = Vec::new();
    // FOREIGN KEY constraints, with this table's columns.
    let mut foreign_keys: Vec<(ast::ForeignKeyConstraint, Vec<usize>)> = Vec::new();
    // SERIAL and IDENTITY columns draw from a sequence named as PostgreSQL names it.
    let mut owned_sequence = |column: &mut ColumnDesc, options: &[ast::SequenceOptions]| {
        let sequence_name = format!("{name}_{}_seq", column.name);
        let mut desc = sequence_desc(sequence_name.clone(), column.data_type.clone(), options)
            .map_err(|e| match column.data_type {
                DataType::Int2 | DataType::Int4 | DataType::Int8 => e,
                _ => SqlError::new(
                    SqlState::INVALID_PARAMETER_VALUE,
                    format!(
                        "identity column type must be smallint, integer, or bigint (column \"{}\")",
                        column.name
                    ),
                ),
            })?;
        desc.owned_by = Some((name.clone(), column.name.clone()));
        column.default = Some(format!("nextval('{sequence_name}')"));
        column.nullable = false;
        sequences.push(desc);
        Ok::<(), SqlError>(())
    };
    let mut primary_key: Option<Vec<usize>> = None;
    let mut primary_key_constraint: Option<String> = None;
    let multiple_keys = || {
        SqlError::new(
            SqlState::INVALID_TABLE_DEFINITION,
            format!("multiple primary keys for table \"{name}\" are not allowed"),
        )
    };
    for def in &create.columns {
        let column_name = ident_name(&def.name);
        if columns.iter().any(|c| c.name == column_name) {
            return Err(SqlError::new(
                SqlState::DUPLICATE_COLUMN,
                format!("column \"{column_name}\" specified more than once"),
            ));
        }
        let serial = serial_type(&def.data_type);
        let data_type = match &serial {
            Some(ty) => ty.clone(),
            None => DataType::from_ast(&def.data_type)?,
        };
        let mut column = ColumnDesc::new(column_name.clone(), data_type);
        if serial.is_some() {
            owned_sequence(&mut column, &[])?;
        }
        for option in &def.options {
            match &option.option {
                ast::ColumnOption::Null => column.nullable = true,
                ast::ColumnOption::NotNull => column.nullable = false,
                ast::ColumnOption::Default(expr) => {
                    // Check it binds now; store the text, bound again when used.
                    let bound = binder.bind(expr, &Scope::empty()).map_err(|e| {
                        if e.state == SqlState::UNDEFINED_COLUMN {
                            SqlError::new(
                                SqlState::INVALID_COLUMN_DEFINITION,
                                "cannot use column reference in DEFAULT expression",
                            )
                        } else {
                            e
                        }
                    })?;
                    binder.coerce_for_column(bound, &column)?;
                    column.default = Some(expr.to_string());
                }
                ast::ColumnOption::PrimaryKey(pk) => {
                    if primary_key.is_some() {
                        return Err(multiple_keys());
                    }
                    primary_key = Some(vec![columns.len()]);
                    primary_key_constraint =
                        pk.name.as_ref().or(option.name.as_ref()).map(ident_name);
                }
                ast::ColumnOption::Unique(unique) => {
                    uniques.push((unique.name.as_ref().map(ident_name), vec![columns.len()]));
                }
                ast::ColumnOption::ForeignKey(fk) => {
                    foreign_keys.push((fk.clone(), vec![columns.len()]));
                }
                ast::ColumnOption::Check(check) => {
                    let name = check
                        .name
                        .as_ref()
                        .map(ident_name)
                        .unwrap_or_else(|| format!("{name}_{}_check", column.name));
                    checks.push((name, (*check.expr).clone()));
                }
                ast::ColumnOption::Generated {
                    generated_as: kind @ (ast::GeneratedAs::Always | ast::GeneratedAs::ByDefault),
                    sequence_options,
                    generation_expr: None,
                    ..
                } => {
                    if column.identity.is_some() || serial.is_some() {
                        return Err(SqlError::syntax(format!(
                            "multiple identity specifications for column \"{}\" of table \"{name}\"",
                            column.name
                        )));
                    }
                    if column.default.is_some() {
                        return Err(SqlError::syntax(format!(
                            "both default and identity specified for column \"{}\" of table \"{name}\"",
                            column.name
                        )));
                    }
                    owned_sequence(&mut column, sequence_options.as_deref().unwrap_or(&[]))?;
                    column.identity = Some(match kind {
                        ast::GeneratedAs::Always => Identity::Always,
                        _ => Identity::ByDefault,
                    });
                }
                other => {
                    return Err(SqlError::unsupported(format!(
                        "column constraint {other} is not supported yet"
                    )))
                }
            }
        }
        columns.push(column);
    }
    for constraint in &create.constraints {
        match constraint {
            ast::TableConstraint::ForeignKey(fk) => {
                foreign_keys.push((fk.clone(), foreign_key_columns(&columns, fk)?));
            }
            ast::TableConstraint::Check(check) => {
                let given = check.name.as_ref().map(ident_name);
                checks.push((given.unwrap_or_default(), (*check.expr).clone()));
            }
            ast::TableConstraint::Unique(unique) => {
                let mut key = Vec::new();
                for column in &unique.columns {
                    let index = index_column(&columns, &column.column.expr)?;
                    if !key.contains(&index) {
                        key.push(index);
                    }
                }
                uniques.push((unique.name.as_ref().map(ident_name), key));
            }
            ast::TableConstraint::PrimaryKey(pk) => {
                if primary_key.is_some() {
                    return Err(multiple_keys());
                }
                let mut key = Vec::new();
                for column in &pk.columns {
                    let ast::Expr::Identifier(ident) = &column.column.expr else {
                        return Err(SqlError::unsupported(
                            "primary keys on expressions are not supported",
                        ));
                    };
                    let column_name = ident_name(ident);
                    let index = columns
                        .iter()
                        .position(|c| c.name == column_name)
                        .ok_or_else(|| {
                            SqlError::new(
                                SqlState::UNDEFINED_COLUMN,
                                format!("column \"{column_name}\" named in key does not exist"),
                            )
                        })?;
                    if key.contains(&index) {
                        return Err(SqlError::new(
                            SqlState::DUPLICATE_COLUMN,
                            format!(
                                "column \"{column_name}\" appears twice in primary key constraint"
                            ),
                        ));
                    }
                    key.push(index);
                }
                primary_key = Some(key);
                primary_key_constraint = pk.name.as_ref().map(ident_name);
            }
            other => {
                return Err(SqlError::unsupported(format!(
                    "table constraint {other} is not supported yet"
                )))
            }
        }
    }
    if columns.is_empty() {
        return Err(SqlError::unsupported(
            "tables without columns are not supported",
        ));
    }
    let primary_key = match primary_key {
        Some(key) => {
            for &i in &key {
                columns[i].nullable = false;
            }
            key
        }
        None => {
            columns.push(ColumnDesc {
                nullable: false,
                hidden: true,
                ..ColumnDesc::new("rowid", DataType::Int8)
            });
            vec![columns.len() - 1]
        }
    };
    let mut indexes: Vec<IndexDesc> = Vec::with_capacity(uniques.len());
    for (given, key) in uniques {
        let index_name = given.unwrap_or_else(|| {
            let names: Vec<&str> = key.iter().map(|&i| columns[i].name.as_str()).collect();
            format!("{name}_{}_key", names.join("_"))
        });
        if indexes.iter().any(|i: &IndexDesc| i.name == index_name) {
            return Err(SqlError::new(
                SqlState::DUPLICATE_TABLE,
                format!("relation \"{index_name}\" already exists"),
            ));
        }
        indexes.push(IndexDesc {
            id: u8::try_from(indexes.len() + 2)
                .map_err(|_| SqlError::new(SqlState::PROGRAM_LIMIT_EXCEEDED, "too many indexes"))?,
            name: index_name,
            columns: key,
            include: vec![],
            unique: true,
            building: false,
        });
    }
    let mut stored_checks: Vec<(String, String)> = Vec::with_capacity(checks.len());
    for (given, expr) in checks {
        let only_column = check_condition(binder, &columns, &name, &expr)?;
        let mut check_name = given;
        if check_name.is_empty() {
            let stem = match &only_column {
                Some(column) => format!("{name}_{column}_check"),
                None => format!("{name}_check"),
            };
            check_name = stem.clone();
            let mut n = 0;
            while stored_checks.iter().any(|(c, _)| *c == check_name) {
                n += 1;
                check_name = format!("{stem}{n}");
            }
        }
        if stored_checks.iter().any(|(c, _)| *c == check_name) {
            return Err(SqlError::new(
                SqlState("42710"),
                format!("constraint \"{check_name}\" for relation \"{name}\" already exists"),
            ));
        }
        stored_checks.push((check_name, expr.to_string()));
    }
    let mut keys = Vec::with_capacity(foreign_keys.len());
    for (fk, key) in foreign_keys {
        // A reference to the table itself names the table being made.
        let parent = match fk.foreign_table == create.name {
            true => name.clone(),
            false => existing_relation(txn, binder, &fk.foreign_table).await?,
        };
        keys.push(foreign_key(&name, &columns, &fk, key, parent)?);
    }
    let desc = TableDesc {
        id: 0,
        primary_key_constraint: primary_key_constraint.filter(|n| *n != format!("{name}_pkey")),
        name,
        columns,
        primary_key,
        indexes,
        checks: stored_checks,
        foreign_keys: keys,
        referenced_by: vec![],
    };
    Ok(Plan::CreateTable {
        desc,
        if_not_exists: create.if_not_exists,
        sequences,
    })
}

/// A relation's stored name in `schema` (`public`'s go unqualified).
fn in_schema(schema: &str, name: &str) -> String {
    match schema {
        "public" => name.to_string(),
        _ => format!("{schema}.{name}"),
    }
}

/// Whether a table, view or sequence is stored under `name`.
async fn is_relation(txn: &mut Transaction, name: &str) -> SqlResult<bool> {
    Ok(catalog::lookup(txn, name).await?.is_some()
        || catalog::lookup_view(txn, name).await?.is_some()
        || sequence::lookup(txn, name).await?.is_some())
}

/// The stored name of the existing relation (table, view or sequence) `name` names: a
/// qualified name as written; an unqualified one in the first schema of search_path that
/// has a relation so named, else as written (so that "does not exist" names it so).
pub(crate) async fn existing_relation(
    txn: &mut Transaction,
    binder: &Binder,
    name: &ast::ObjectName,
) -> SqlResult<String> {
    let plain = table_name(name)?;
    match name.0.len() {
        1 => unqualified_relation(txn, binder, plain).await,
        _ => Ok(plain),
    }
}

/// [`existing_relation`] for an unqualified name.
async fn unqualified_relation(
    txn: &mut Transaction,
    binder: &Binder,
    name: String,
) -> SqlResult<String> {
    if binder.search_path == ["public"] {
        return Ok(name);
    }
    for schema in &binder.search_path {
        let candidate = in_schema(schema, &name);
        if is_relation(txn, &candidate).await? {
            return Ok(candidate);
        }
    }
    // Found nowhere: a name that is not found, in the first schema (never public's unless
    // the path has it).
    let first = match binder.search_path.iter().any(|s| s == "public") {
        true => "public",
        false => binder
            .search_path
            .first()
            .map_or("pg_catalog", String::as_str),
    };
    Ok(in_schema(first, &name))
}

/// The stored name of the relation CREATE makes as `name`: an unqualified one goes to the
/// first schema of search_path that exists (3F000 if none does).
async fn new_relation(
    txn: &mut Transaction,
    binder: &Binder,
    name: &ast::ObjectName,
) -> SqlResult<String> {
    let plain = table_name(name)?;
    if name.0.len() > 1 {
        return Ok(plain);
    }
    for schema in &binder.search_path {
        if catalog::schema_exists(txn, schema).await? {
            return Ok(in_schema(schema, &plain));
        }
    }
    Err(SqlError::new(
        SqlState("3F000"),
        "no schema has been selected to create in",
    ))
}

/// Resolves a FROM list of at most one plain table.
async fn from_table(
    txn: &mut Transaction,
    from: &[ast::TableWithJoins],
    binder: &Binder,
) -> SqlResult<Option<(Arc<TableDesc>, String)>> {
    match from {
        [] => Ok(None),
        [single] if single.joins.is_empty() => match &single.relation {
            ast::TableFactor::Table {
                name,
                alias,
                args: None,
                ..
            } => {
                let name = existing_relation(txn, binder, name).await?;
                let table = require_writable(txn, &name).await?;
                let visible = match alias {
                    Some(alias) => {
                        if !alias.columns.is_empty() {
                            return Err(SqlError::unsupported(
                                "column aliases in FROM are not supported yet",
                            ));
                        }
                        ident_name(&alias.name)
                    }
                    None => visible_name(&table.name),
                };
                Ok(Some((table, visible)))
            }
            other => Err(SqlError::unsupported(format!(
                "FROM {other} is not supported yet"
            ))),
        },
        _ => Err(SqlError::unsupported("joins are not supported yet")),
    }
}

/// The tables of a FROM clause, as one scope, and for each table after the first how it is
/// joined: its kind and its ON condition (unbound). Commas are cross joins.
async fn from_clause(
    txn: &mut Transaction,
    from: &[ast::TableWithJoins],
    binder: &mut Binder,
) -> SqlResult<(Scope, Vec<(JoinKind, Option<ast::Expr>)>)> {
    let mut scope = Scope::empty();
    let mut joins = Vec::new();
    // SELECT * order, per FROM item, only needed once a USING or NATURAL join reorders it.
    let mut star = Vec::new();
    let mut reordered = false;
    for (n, item) in from.iter().enumerate() {
        let (table, name, derived) = relation(txn, &item.relation, &scope, binder).await?;
        scope.push(table, name, derived)?;
        let item_start = scope.tables().len() - 1;
        let mut item_star = visible_positions(&scope.tables()[item_start]);
        if n > 0 {
            joins.push((JoinKind::Inner, None));
        }
        for join in &item.joins {
            let (table, name, derived) = relation(txn, &join.relation, &scope, binder).await?;
            scope.push(table, name, derived)?;
            let right = scope.tables().len() - 1;
            let right_star = visible_positions(&scope.tables()[right]);
            use ast::JoinOperator as J;
            let (kind, constraint) = match &join.join_operator {
                J::Join(c) | J::Inner(c) => (JoinKind::Inner, c),
                J::Left(c) | J::LeftOuter(c) => (JoinKind::Left, c),
                J::Right(c) | J::RightOuter(c) => (JoinKind::Right, c),
                J::FullOuter(c) => (JoinKind::Full, c),
                J::CrossJoin(c) => (JoinKind::Inner, c),
                other => {
                    return Err(SqlError::unsupported(format!(
                        "join {other:?} is not supported"
                    )))
                }
            };
            let using_or_natural = matches!(
                constraint,
                ast::JoinConstraint::Using(_) | ast::JoinConstraint::Natural
            );
            let using: Option<Vec<String>> = match constraint {
                ast::JoinConstraint::Using(names) => {
                    Some(names.iter().map(table_name).collect::<SqlResult<_>>()?)
                }
                ast::JoinConstraint::Natural => {
                    Some(natural_columns(&scope, &item_star, &scope.tables()[right]))
                }
                _ => None,
            };
            let on = match (constraint, using) {
                (ast::JoinConstraint::On(on), _) => Some(on.clone()),
                (_, Some(columns)) => {
                    reordered = true;
                    let (on, merged) = using_join(&mut scope, &item_star, right, kind, &columns)?;
                    let rest = |positions: &[usize]| -> Vec<usize> {
                        positions
                            .iter()
                            .copied()
                            .filter(|p| scope.unqualified_visible(*p) && !merged.contains(p))
                            .collect()
                    };
                    let mut order = merged.clone();
                    order.extend(rest(&item_star));
                    order.extend(rest(&right_star));
                    item_star = order;
                    on
                }
                _ => None,
            };
            if !using_or_natural {
                item_star.extend(right_star);
            }
            if on.is_none() && kind != JoinKind::Inner && !using_or_natural {
                return Err(SqlError::syntax(
                    "syntax error: an outer join needs an ON condition",
                ));
            }
            joins.push((kind, on));
        }
        star.extend(item_star);
    }
    if reordered {
        scope.set_star(star);
    }
    Ok((scope, joins))
}

/// The order to join a comma-separated FROM list in, as indexes into it, when it differs
/// from the written one. The rule: start with the first table; then take the first table
/// (in written order) that a WHERE equality links to those already taken, or the next
/// written table if none is linked. So `FROM a, b, c WHERE a.x = c.x AND c.y = b.y` joins
/// a, c, b: every step has an equality to hash or look up on, where the written order would
/// pair every row of a with every row of b. Only plain tables and non-LATERAL subqueries,
/// without explicit JOINs, are moved; links are read from qualified names (`a.x`).
fn join_order(select: &ast::Select) -> Option<Vec<usize>> {
    let from = &select.from;
    if from.len() < 3 {
        return None;
    }
    let mut names = Vec::with_capacity(from.len());
    for item in from {
        if !item.joins.is_empty() {
            return None;
        }
        let name = match &item.relation {
            ast::TableFactor::Table {
                name,
                alias,
                args: None,
                ..
            } => match alias {
                Some(alias) => ident_name(&alias.name),
                None => table_name(name).ok()?,
            },
            ast::TableFactor::Derived {
                lateral: false,
                alias: Some(alias),
                ..
            } => ident_name(&alias.name),
            _ => return None,
        };
        names.push(name);
    }
    // Which FROM items each WHERE equality links.
    let mut links: Vec<Vec<usize>> = Vec::new();
    let mut pending = select.selection.iter().collect::<Vec<_>>();
    while let Some(expr) = pending.pop() {
        match expr {
            ast::Expr::BinaryOp {
                left,
                op: ast::BinaryOperator::And,
                right,
            } => pending.extend([left.as_ref(), right.as_ref()]),
            ast::Expr::Nested(inner) => pending.push(inner),
            ast::Expr::BinaryOp {
                left,
                op: ast::BinaryOperator::Eq,
                right,
            } => {
                let side = |e: &ast::Expr| match e {
                    ast::Expr::CompoundIdentifier(parts) if parts.len() == 2 => {
                        let qualifier = ident_name(&parts[0]);
                        names.iter().position(|n| *n == qualifier)
                    }
                    _ => None,
                };
                if let (Some(l), Some(r)) = (side(left), side(right)) {
                    if l != r {
                        links.push(vec![l, r]);
                    }
                }
            }
            _ => {}
        }
    }
    let mut order = vec![0];
    while order.len() < from.len() {
        let linked = (0..from.len()).filter(|i| !order.contains(i)).find(|&i| {
            links
                .iter()
                .any(|link| link.contains(&i) && link.iter().any(|j| order.contains(j)))
        });
        let next = linked.or_else(|| (0..from.len()).find(|i| !order.contains(i)))?;
        order.push(next);
    }
    (order.iter().enumerate().any(|(k, &i)| k != i)).then_some(order)
}

/// A view's query, planned where the view is read: on its own, seeing none of the WITH
/// queries or enclosing queries of the statement that reads it.
pub(crate) async fn plan_view(
    txn: &mut Transaction,
    view: &catalog::ViewDesc,
    binder: &mut Binder,
) -> SqlResult<SelectPlan> {
    let dialect = sqlparser::dialect::PostgreSqlDialect {};
    let query = sqlparser::parser::Parser::new(&dialect)
        .try_with_sql(&view.sql)
        .and_then(|mut p| p.parse_query())
        .map_err(|e| {
            SqlError::internal(format!(
                "stored query of view \"{}\" does not parse: {e}",
                view.name
            ))
        })?;
    // Views nested deeper than this are refused as if they looped (each level plans a query).
    const MAX_VIEW_DEPTH: usize = 8;
    if binder.views.contains(&view.name) || binder.views.len() >= MAX_VIEW_DEPTH {
        return Err(SqlError::new(
            SqlState("42P17"),
            format!(
                "infinite recursion detected in rules for relation \"{}\"",
                view.name
            ),
        ));
    }
    let ctes = std::mem::take(&mut binder.ctes);
    let outer = std::mem::take(&mut binder.outer);
    binder.views.push(view.name.clone());
    let planned = Box::pin(plan_query(txn, &query, binder)).await;
    binder.views.pop();
    binder.ctes = ctes;
    binder.outer = outer;
    let mut plan = planned?;
    for (column, name) in plan.columns.iter_mut().zip(&view.columns) {
        column.name = name.clone();
    }
    Ok(plan)
}

/// The views that plan now, with their column counts: what a statement dropping or
/// renaming something must not break, since a view keeps its SQL text and is planned where
/// it is read (see [`broken_view`]).
pub async fn working_views(
    txn: &mut Transaction,
    zone: &TimeZone,
) -> SqlResult<Vec<(catalog::ViewDesc, usize)>> {
    let mut working = Vec::new();
    for view in catalog::all_views(txn).await? {
        if let Some(columns) = view_width(txn, &view, zone).await? {
            working.push((view, columns));
        }
    }
    Ok(working)
}

/// The first view of `before` (still there) that no longer plans, or plans to another
/// number of columns.
pub async fn broken_view(
    txn: &mut Transaction,
    zone: &TimeZone,
    before: &[(catalog::ViewDesc, usize)],
) -> SqlResult<Option<String>> {
    for (view, columns) in before {
        if catalog::lookup_view(txn, &view.name).await?.is_none() {
            continue;
        }
        if view_width(txn, view, zone).await? != Some(*columns) {
            return Ok(Some(view.name.clone()));
        }
    }
    Ok(None)
}

/// Plans `view` in the transaction (its reads validated at commit), for CREATE VIEW.
pub async fn plan_stored_view(
    txn: &mut Transaction,
    view: &catalog::ViewDesc,
    zone: &TimeZone,
    search_path: &[String],
) -> SqlResult<()> {
    let mut binder = Binder::new(&[], zone.clone());
    binder.search_path = search_path.to_vec();
    match plan_view(txn, view, &mut binder).await {
        // A view reading itself is refused where it is read, as in PostgreSQL.
        Err(e) if e.state != SqlState("42P17") => Err(e),
        _ => Ok(()),
    }
}

/// How many columns `view` has when planned now; `None` if it does not plan because
/// something it names is missing or changed (errors of class 42).
async fn view_width(
    txn: &mut Transaction,
    view: &catalog::ViewDesc,
    zone: &TimeZone,
) -> SqlResult<Option<usize>> {
    let mut binder = Binder::new(&[], zone.clone());
    match plan_view(txn, view, &mut binder).await {
        Ok(plan) => Ok(Some(plan.columns.len())),
        Err(e) if e.state.0.starts_with("42") => Ok(None),
        Err(e) => Err(e),
    }
}

/// The row positions of a table's columns that `SELECT *` shows.
fn visible_positions(entry: &ScopeTable) -> Vec<usize> {
    entry
        .table
        .visible_columns()
        .map(|i| entry.offset + i)
        .collect()
}

/// NATURAL JOIN's columns: the names the left side (`left` row positions) and the right
/// table have in common, in the left side's order.
fn natural_columns(scope: &Scope, left: &[usize], right: &ScopeTable) -> Vec<String> {
    left.iter()
        .filter(|p| scope.unqualified_visible(**p))
        .filter_map(|&p| scope.column_at(p))
        .map(|(t, i)| t.table.columns[i].name.clone())
        .filter(|name| {
            right
                .table
                .column_index(name)
                .is_some_and(|i| !right.table.columns[i].hidden)
        })
        .collect()
}

/// JOIN ... USING (columns): the equivalent ON condition, and the row positions of the merged
/// columns (taken from the side whose value survives the join). The other side's columns are
/// merged away, so an unqualified name means the merged column.
fn using_join(
    scope: &mut Scope,
    left: &[usize],
    right: usize,
    kind: JoinKind,
    columns: &[String],
) -> SqlResult<(Option<ast::Expr>, Vec<usize>)> {
    let qualified = |table: &str, column: &str| {
        ast::Expr::CompoundIdentifier(vec![
            ast::Ident::with_quote('"', table),
            ast::Ident::with_quote('"', column),
        ])
    };
    let mut on: Option<ast::Expr> = None;
    let mut merged = Vec::new();
    for (k, column) in columns.iter().enumerate() {
        if columns[..k].contains(column) {
            return Err(SqlError::new(
                SqlState("42701"),
                format!("column name \"{column}\" appears more than once in USING clause"),
            ));
        }
        let mut found = left.iter().copied().filter(|&p| {
            scope.unqualified_visible(p)
                && scope
                    .column_at(p)
                    .is_some_and(|(t, i)| t.table.columns[i].name == *column)
        });
        let Some(left_pos) = found.next() else {
            return Err(SqlError::new(
                SqlState::UNDEFINED_COLUMN,
                format!(
                    "column \"{column}\" specified in USING clause does not exist in left table"
                ),
            ));
        };
        if found.next().is_some() {
            return Err(SqlError::new(
                SqlState::AMBIGUOUS_COLUMN,
                format!("common column name \"{column}\" appears more than once in left table"),
            ));
        }
        let right_entry = &scope.tables()[right];
        let Some(right_index) = right_entry
            .table
            .column_index(column)
            .filter(|&i| !right_entry.table.columns[i].hidden)
        else {
            return Err(SqlError::new(
                SqlState::UNDEFINED_COLUMN,
                format!(
                    "column \"{column}\" specified in USING clause does not exist in right table"
                ),
            ));
        };
        let right_pos = right_entry.offset + right_index;
        if scope.coalesced(left_pos, column).is_some() {
            return Err(SqlError::unsupported(format!(
                "joining USING (\"{column}\") on the merged column of a FULL JOIN is not supported; write the ON condition"
            )));
        }
        let left_name = scope
            .column_at(left_pos)
            .map(|(t, _)| t.name.clone())
            .unwrap_or_default();
        let condition = ast::Expr::BinaryOp {
            left: Box::new(qualified(&left_name, column)),
            op: ast::BinaryOperator::Eq,
            right: Box::new(qualified(&right_entry.name, column)),
        };
        on = Some(match on {
            None => condition,
            Some(earlier) => ast::Expr::BinaryOp {
                left: Box::new(earlier),
                op: ast::BinaryOperator::And,
                right: Box::new(condition),
            },
        });
        let (kept, dropped) = if kind == JoinKind::Right {
            (right_pos, left_pos)
        } else {
            (left_pos, right_pos)
        };
        scope.merge_away(dropped);
        if kind == JoinKind::Full {
            // Either side may be the padded one: the merged column is the one not NULL.
            scope.coalesce(left_pos, right_pos);
        }
        merged.push(kept);
    }
    Ok((on, merged))
}

/// One table of a FROM clause: the table, the name it goes by, and for a derived table (a
/// subquery or a WITH query) the plan producing its rows. A LATERAL subquery may read the
/// columns of `before` (the FROM items to its left); it is then correlated and runs per row.
async fn relation(
    txn: &mut Transaction,
    factor: &ast::TableFactor,
    before: &Scope,
    binder: &mut Binder,
) -> SqlResult<(Arc<TableDesc>, String, Option<Arc<SelectPlan>>)> {
    let alias_name = |alias: &Option<ast::TableAlias>| -> SqlResult<Option<String>> {
        Ok(alias.as_ref().map(|alias| ident_name(&alias.name)))
    };
    match factor {
        ast::TableFactor::Table {
            name,
            alias,
            args: None,
            ..
        } => {
            let table_name = table_name(name)?;
            // Inside a recursive WITH query's recursive term, its name reads the working table.
            let working = (name.0.len() == 1)
                .then(|| {
                    binder
                        .working_tables
                        .iter_mut()
                        .rev()
                        .find(|(n, _, _, _)| *n == table_name)
                })
                .flatten();
            if let Some((_, id, columns, used)) = working {
                *used = true;
                let mut plan = values_tree(vec![], columns);
                plan.projection = column_refs(columns);
                plan.working_table = Some(*id);
                let visible = alias_name(alias)?.unwrap_or_else(|| table_name.clone());
                let table = with_column_aliases(derived_table(&plan, &visible), &visible, alias)?;
                return Ok((table, visible, Some(Arc::new(plan))));
            }
            // A WITH query of that name hides a table (the innermost WITH first).
            let cte = (name.0.len() == 1)
                .then(|| {
                    binder
                        .ctes
                        .iter()
                        .rev()
                        .find(|(n, _, _, _)| *n == table_name)
                        .map(|(_, q, columns, recursive)| (q.clone(), columns.clone(), *recursive))
                })
                .flatten();
            if let Some((query, cte_alias, recursive)) = cte {
                let plan = match recursive {
                    true => recursive_cte(txn, &query, &table_name, &cte_alias, binder).await?,
                    false => None,
                };
                let plan = match plan {
                    Some(plan) => plan,
                    None => Box::pin(plan_query(txn, &query, binder)).await?,
                };
                let visible = alias_name(alias)?.unwrap_or_else(|| table_name.clone());
                let table = with_column_aliases(
                    derived_table(&plan, &visible),
                    &table_name,
                    &Some(cte_alias),
                )?;
                let table = with_column_aliases(table, &visible, alias)?;
                return Ok((table, visible, Some(Arc::new(plan))));
            }
            // Not a WITH query: a relation, looked for along search_path.
            let table_name = match name.0.len() {
                1 => unqualified_relation(txn, binder, table_name).await?,
                _ => table_name,
            };
            let stored = match name.0.len() <= 2 {
                true => catalog::lookup(txn, &table_name).await?,
                false => None,
            };
            if name.0.len() <= 2 && stored.is_none() {
                if let Some(view) = catalog::lookup_view(txn, &table_name).await? {
                    let plan = plan_view(txn, &view, binder).await?;
                    let visible = alias_name(alias)?.unwrap_or_else(|| visible_name(&view.name));
                    let table =
                        with_column_aliases(derived_table(&plan, &visible), &visible, alias)?;
                    return Ok((table, visible, Some(Arc::new(plan))));
                }
            }
            // A stored table is not read again (a statement's every table was read twice).
            let table = match stored {
                Some(table) => table,
                None => catalog::require(txn, &table_name).await?,
            };
            binder.system_catalog |= crate::system::tables::is_system(&table);
            let visible = alias_name(alias)?.unwrap_or_else(|| visible_name(&table.name));
            let table = with_column_aliases(table, &visible, alias)?;
            Ok((table, visible, None))
        }
        ast::TableFactor::Table {
            name,
            alias,
            args: Some(ast::TableFunctionArgs { args, .. }),
            with_ordinality,
            ..
        }
        | ast::TableFactor::Function {
            name,
            alias,
            args,
            with_ordinality,
            ..
        } => {
            let function = table_name(name)?;
            let exprs = args
                .iter()
                .map(|arg| match arg {
                    ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(expr)) => Ok(expr),
                    other => Err(SqlError::unsupported(format!(
                        "argument {other} of {function} is not supported"
                    ))),
                })
                .collect::<SqlResult<Vec<_>>>()?;
            table_function(&function, &exprs, *with_ordinality, alias, before, binder)
        }
        ast::TableFactor::UNNEST {
            alias,
            array_exprs,
            with_offset: false,
            with_ordinality,
            ..
        } => {
            let exprs: Vec<&ast::Expr> = array_exprs.iter().collect();
            table_function("unnest", &exprs, *with_ordinality, alias, before, binder)
        }
        ast::TableFactor::Derived {
            lateral,
            subquery,
            alias,
            ..
        } => {
            let Some(visible) = alias_name(alias)? else {
                return Err(SqlError::syntax("subquery in FROM must have an alias"));
            };
            // With nothing to its left, LATERAL changes nothing.
            let plan = match *lateral && !before.tables().is_empty() {
                true => plan_correlatable(txn, subquery, before, binder).await?,
                false => Box::pin(plan_query(txn, subquery, binder)).await?,
            };
            let table = with_column_aliases(derived_table(&plan, &visible), &visible, alias)?;
            Ok((table, visible, Some(Arc::new(plan))))
        }
        other => Err(SqlError::unsupported(format!(
            "FROM {other} is not supported yet"
        ))),
    }
}

/// The INSERT / UPDATE / DELETE a query body is, if it is one.
fn data_modifying(body: &ast::SetExpr) -> Option<&ast::Statement> {
    match body {
        ast::SetExpr::Insert(statement)
        | ast::SetExpr::Update(statement)
        | ast::SetExpr::Delete(statement) => Some(statement),
        _ => None,
    }
}

/// Whether `query` is or has (in its WITH clause) an INSERT / UPDATE / DELETE.
fn has_data_modifying_with(query: &ast::Query) -> bool {
    data_modifying(&query.body).is_some()
        || query
            .with
            .iter()
            .flat_map(|with| &with.cte_tables)
            .any(|cte| data_modifying(&cte.query.body).is_some())
}

/// A statement with data-modifying WITH queries (or a WITH in front of INSERT / UPDATE /
/// DELETE): the data-modifying ones are planned here, to run once each before the
/// statement; the others are ordinary WITH queries.
async fn plan_data_modifying_with(
    txn: &mut Transaction,
    query: &ast::Query,
    binder: &mut Binder,
) -> SqlResult<Plan> {
    let (outer_ctes, outer_working) = (binder.ctes.len(), binder.working_tables.len());
    let planned = plan_data_modifying_with_inner(txn, query, binder).await;
    binder.ctes.truncate(outer_ctes);
    binder.working_tables.truncate(outer_working);
    let (ctes, main) = planned?;
    // Every part sees the snapshot from before the statement in PostgreSQL; here the
    // statement would see the WITH queries' writes, so reading a table they write is refused.
    let written: Vec<u32> = ctes
        .iter()
        .flat_map(|(_, _, plan)| match plan {
            Plan::Insert(insert) => Some(insert.table.id),
            Plan::Update(update) => Some(update.scan.table.id),
            Plan::Delete(delete) => Some(delete.scan.table.id),
            _ => None,
        })
        .collect();
    let main_reads = match &main {
        Plan::Insert(insert) => match &insert.source {
            InsertSource::Query(query) => Plan::Select(query.clone()).tables(),
            InsertSource::Values(_) | InsertSource::Copy(_) => vec![],
        },
        other => other.tables(),
    };
    let later_reads = ctes
        .iter()
        .skip(1)
        .flat_map(|(_, _, plan)| plan.tables().into_iter().skip(1));
    if let Some(table) = main_reads
        .iter()
        .cloned()
        .chain(later_reads)
        .find(|t| written.contains(&t.id))
    {
        return Err(SqlError::unsupported(format!(
            "a statement cannot yet read table \"{}\", which one of its data-modifying WITH queries changes",
            table.name
        )));
    }
    Ok(Plan::With {
        ctes,
        main: Box::new(main),
    })
}

#[allow(clippy::type_complexity)]
async fn plan_data_modifying_with_inner(
    txn: &mut Transaction,
    query: &ast::Query,
    binder: &mut Binder,
) -> SqlResult<(Vec<(usize, String, Plan)>, Plan)> {
    let mut ctes = Vec::new();
    if let Some(with) = &query.with {
        for cte in &with.cte_tables {
            let name = ident_name(&cte.alias.name);
            let Some(statement) = data_modifying(&cte.query.body) else {
                binder.ctes.push((
                    name,
                    (*cte.query).clone(),
                    cte.alias.clone(),
                    with.recursive,
                ));
                continue;
            };
            let plan = Box::pin(plan_statement(txn, statement, binder)).await?;
            let id = binder.next_working_table;
            binder.next_working_table += 1;
            if let Some(columns) = plan.columns() {
                let columns = match &cte.alias.columns[..] {
                    [] => columns,
                    aliases => columns
                        .into_iter()
                        .enumerate()
                        .map(|(i, c)| Column {
                            name: aliases.get(i).map_or(c.name, |a| ident_name(&a.name)),
                            data_type: c.data_type,
                        })
                        .collect(),
                };
                binder
                    .working_tables
                    .push((name.clone(), id, columns, true));
            }
            ctes.push((id, name, plan));
        }
    }
    let main = match data_modifying(&query.body) {
        Some(statement) => Box::pin(plan_statement(txn, statement, binder)).await?,
        None => Plan::Select(Box::new(plan_query_body(txn, query, binder).await?)),
    };
    Ok((ctes, main))
}

/// A WITH RECURSIVE query of the form `anchor UNION [ALL] step` whose step refers to it:
/// planned as a [`RecursiveUnion`]. `None` if it is not of that form (then it is an ordinary
/// WITH query, as in PostgreSQL).
async fn recursive_cte(
    txn: &mut Transaction,
    query: &ast::Query,
    name: &str,
    cte_alias: &ast::TableAlias,
    binder: &mut Binder,
) -> SqlResult<Option<SelectPlan>> {
    let ast::SetExpr::SetOperation {
        left,
        op: ast::SetOperator::Union,
        set_quantifier,
        right,
    } = query.body.as_ref()
    else {
        return Ok(None);
    };
    let all = match set_quantifier {
        ast::SetQuantifier::All => true,
        ast::SetQuantifier::None | ast::SetQuantifier::Distinct => false,
        other => {
            return Err(SqlError::unsupported(format!(
                "UNION {other} is not supported"
            )))
        }
    };
    let term = |body: &ast::SetExpr| ast::Query {
        with: query.with.clone(),
        body: Box::new(body.clone()),
        order_by: None,
        limit_clause: None,
        fetch: None,
        locks: vec![],
        for_clause: None,
        settings: None,
        format_clause: None,
        pipe_operators: vec![],
    };
    let anchor = Box::pin(plan_query(txn, &term(left), binder)).await?;
    let named = with_column_aliases(derived_table(&anchor, name), name, &Some(cte_alias.clone()))?;
    let columns: Vec<Column> = named
        .columns
        .iter()
        .map(|c| Column {
            name: c.name.clone(),
            data_type: c.data_type.clone(),
        })
        .collect();
    let id = binder.next_working_table;
    binder.next_working_table += 1;
    binder
        .working_tables
        .push((name.to_string(), id, columns.clone(), false));
    let step = Box::pin(plan_query(txn, &term(right), binder)).await;
    let (_, _, _, used) = binder
        .working_tables
        .pop()
        .unwrap_or_else(|| unreachable!("pushed above"));
    let step = step?;
    if !used {
        return Ok(None);
    }
    if query.order_by.is_some() || query.limit_clause.is_some() {
        return Err(SqlError::unsupported(
            "ORDER BY / LIMIT in a recursive query is not supported",
        ));
    }
    if step.columns.len() != columns.len() {
        return Err(SqlError::syntax(
            "each UNION query must have the same number of columns",
        ));
    }
    let mut plan = values_tree(vec![], &columns);
    plan.projection = column_refs(&columns);
    plan.recursive = Some(Box::new(RecursiveUnion {
        types: columns.iter().map(|c| c.data_type.clone()).collect(),
        anchor,
        step,
        all,
        id,
    }));
    Ok(Some(plan))
}

/// A set-returning function in FROM (`generate_series`, `unnest`) as a derived table named
/// by its alias. It may read the columns of the items to its left (`before`: functions in
/// FROM are implicitly LATERAL); then it runs per row.
fn table_function(
    function: &str,
    args: &[&ast::Expr],
    with_ordinality: bool,
    alias: &Option<ast::TableAlias>,
    before: &Scope,
    binder: &mut Binder,
) -> SqlResult<(Arc<TableDesc>, String, Option<Arc<SelectPlan>>)> {
    let function = function.strip_prefix("pg_catalog.").unwrap_or(function);
    let set_function = match function {
        ZIPPED_SET_FUNCTIONS => None,
        _ => set_function_named(function)?,
    };
    let lateral = !before.tables().is_empty();
    let entered = lateral.then(|| enter_outer(binder, before));
    let plan = match set_function {
        _ if function == ZIPPED_SET_FUNCTIONS => zipped_plan(args, binder),
        // unnest(a, b, ...): the arrays side by side.
        Some(SetFunction::Unnest) if args.len() > 1 => args
            .iter()
            .map(|arg| set_function_plan(function, SetFunction::Unnest, &[arg], binder))
            .collect::<SqlResult<Vec<_>>>()
            .map(zip_plans),
        Some(set_function) => set_function_plan(function, set_function, args, binder),
        None => series_plan(args, binder),
    };
    let correlated = entered.is_some_and(|entered| leave_outer(binder, entered));
    let mut plan = plan?;
    plan.correlated = correlated;
    if with_ordinality {
        if plan.set_function.is_none() {
            return Err(SqlError::unsupported(format!(
                "WITH ORDINALITY on {function} is not supported yet"
            )));
        }
        plan.ordinality = true;
        let ordinality = Column {
            name: "ordinality".into(),
            data_type: DataType::Int8,
        };
        plan.projection.push(Expr::Column {
            index: plan.columns.len(),
            name: ordinality.name.clone(),
            ty: DataType::Int8,
        });
        plan.columns.push(ordinality);
    }
    // A one-column function's column takes the alias's name, as in PostgreSQL.
    let visible = match alias {
        Some(alias) => ident_name(&alias.name),
        None => function.to_string(),
    };
    let mut table = derived_table(&plan, &visible);
    // jsonb_array_elements' column is `value`, but like PostgreSQL's whole-row reference the
    // alias reads it too: with an alias, the column takes the alias's name.
    let named_column = matches!(set_function, Some(SetFunction::JsonbEach { .. }))
        || (matches!(set_function, Some(SetFunction::JsonbArrayElements { .. }))
            && alias.is_none());
    if let ([only], false) = (&mut Arc::make_mut(&mut table).columns[..], named_column) {
        only.name = visible.clone();
    }
    let table = with_column_aliases(table, &visible, alias)?;
    Ok((table, visible, Some(Arc::new(plan))))
}

/// The set-returning function `name` names: `None` for generate_series (planned apart).
fn set_function_named(name: &str) -> SqlResult<Option<SetFunction>> {
    Ok(match name {
        "generate_series" => None,
        "unnest" => Some(SetFunction::Unnest),
        "jsonb_each" => Some(SetFunction::JsonbEach { text: false }),
        "jsonb_each_text" => Some(SetFunction::JsonbEach { text: true }),
        "jsonb_object_keys" => Some(SetFunction::JsonbObjectKeys),
        "jsonb_array_elements" => Some(SetFunction::JsonbArrayElements { text: false }),
        "jsonb_array_elements_text" => Some(SetFunction::JsonbArrayElements { text: true }),
        "generate_subscripts" => Some(SetFunction::Subscripts { from_zero: false }),
        // No table is partitioned: a relation's only ancestor is itself (unnest of a
        // one-element array of it).
        "pg_partition_ancestors" => Some(SetFunction::Unnest),
        _ => {
            return Err(SqlError::new(
                SqlState::UNDEFINED_FUNCTION,
                format!("function {name} does not exist as a table function"),
            ))
        }
    })
}

/// The name of the table function a select list with several set-returning calls becomes:
/// its arguments are the calls, zipped (a name no identifier can spell).
const ZIPPED_SET_FUNCTIONS: &str = "?zipped set functions?";

/// Several set-returning calls of one select list, zipped, as a derived table with each
/// call's columns in turn.
fn zipped_plan(args: &[&ast::Expr], binder: &mut Binder) -> SqlResult<SelectPlan> {
    let mut plans = Vec::with_capacity(args.len());
    for call in args {
        let ast::Expr::Function(call) = call else {
            return Err(SqlError::internal("a zipped set function is not a call"));
        };
        let name = table_name(&call.name)?;
        let name = name
            .strip_prefix("pg_catalog.")
            .unwrap_or(&name)
            .to_string();
        let Some(function) = set_function_named(&name)? else {
            return Err(SqlError::unsupported(format!(
                "{name} beside another set-returning function in a select list is not supported yet"
            )));
        };
        let call_args: Vec<&ast::Expr> = match &call.args {
            ast::FunctionArguments::List(list) => list
                .args
                .iter()
                .map(|arg| match arg {
                    ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(expr)) => Ok(expr),
                    other => Err(SqlError::unsupported(format!(
                        "argument {other} of {name} is not supported"
                    ))),
                })
                .collect::<SqlResult<_>>()?,
            _ => Vec::new(),
        };
        plans.push(set_function_plan(&name, function, &call_args, binder)?);
    }
    Ok(zip_plans(plans))
}

/// Set-returning function plans side by side: one plan with each one's columns in turn.
fn zip_plans(plans: Vec<SelectPlan>) -> SelectPlan {
    let columns: Vec<Column> = plans
        .iter()
        .flat_map(|p| p.columns.iter().cloned())
        .collect();
    let mut functions = plans.into_iter().filter_map(|p| p.set_function);
    let mut plan = values_tree(vec![], &columns);
    plan.projection = column_refs(&columns);
    plan.set_function = functions.next();
    plan.zipped = functions.collect();
    plan
}

/// A set-returning function of one argument (`unnest(array)`, `jsonb_each(doc)`, ...) as a
/// derived table.
fn set_function_plan(
    name: &str,
    function: SetFunction,
    args: &[&ast::Expr],
    binder: &mut Binder,
) -> SqlResult<SelectPlan> {
    if let SetFunction::Subscripts { .. } = function {
        return subscripts_plan(args, binder);
    }
    let [expr] = args else {
        return Err(SqlError::unsupported(format!(
            "{name} takes one argument here"
        )));
    };
    let arg = binder.bind(expr, &Scope::empty())?;
    let arg = match name {
        "pg_partition_ancestors" => {
            let mut args = vec![arg];
            let relation = binder
                .catalog_function(name, &mut args)?
                .ok_or_else(|| SqlError::internal("pg_partition_ancestors is not bound"))?;
            Expr::Func(
                crate::expr::Func::Array(crate::expr::ArrayFunc::Make),
                vec![relation],
                DataType::Array(Box::new(DataType::Oid)),
            )
        }
        _ => arg,
    };
    let wanted = match function {
        SetFunction::Unnest => match arg.ty() {
            DataType::Array(_) => arg.ty(),
            DataType::Int2Vector => DataType::Array(Box::new(DataType::Int2)),
            _ => DataType::Array(Box::new(DataType::Text)),
        },
        _ => DataType::Jsonb,
    };
    let arg = binder.coerce(arg, &wanted)?;
    if arg.ty() != wanted {
        return Err(SqlError::new(
            SqlState::UNDEFINED_FUNCTION,
            format!("function {name}({}) does not exist", arg.ty()),
        ));
    }
    let column = |name: &str, data_type: DataType| Column {
        name: name.into(),
        data_type,
    };
    let value_type = |text: bool| {
        if text {
            DataType::Text
        } else {
            DataType::Jsonb
        }
    };
    let columns = match function {
        SetFunction::Unnest => match arg.ty() {
            DataType::Array(element) => vec![column("unnest", *element)],
            _ => vec![column("unnest", DataType::Text)],
        },
        SetFunction::JsonbEach { text } => {
            vec![
                column("key", DataType::Text),
                column("value", value_type(text)),
            ]
        }
        SetFunction::JsonbObjectKeys => vec![column(name, DataType::Text)],
        SetFunction::Subscripts { .. } => vec![column(name, DataType::Int4)],
        SetFunction::JsonbArrayElements { text } => vec![column("value", value_type(text))],
    };
    let mut plan = values_tree(vec![], &columns);
    plan.projection = column_refs(&columns);
    plan.set_function = Some((function, arg));
    Ok(plan)
}

/// `generate_subscripts(array, dim)`: arrays here have one dimension, so dimension 1 numbers
/// the elements and any other gives no rows (the argument becomes NULL).
fn subscripts_plan(args: &[&ast::Expr], binder: &mut Binder) -> SqlResult<SelectPlan> {
    let [array, dimension] = args else {
        return Err(SqlError::unsupported(
            "generate_subscripts takes an array and a dimension here",
        ));
    };
    let array = binder.bind(array, &Scope::empty())?;
    let from_zero = array.ty() == DataType::Int2Vector;
    let array = match array.ty() {
        DataType::Int2Vector => {
            Expr::Cast(Box::new(array), DataType::Array(Box::new(DataType::Int2)))
        }
        _ => array,
    };
    let dimension = binder.bind(dimension, &Scope::empty())?;
    let dimension = binder.coerce(dimension, &DataType::Int4)?;
    let array_type = array.ty();
    if !matches!(array_type, DataType::Array(_)) || dimension.ty() != DataType::Int4 {
        return Err(SqlError::new(
            SqlState::UNDEFINED_FUNCTION,
            format!(
                "function generate_subscripts({array_type}, {}) does not exist",
                dimension.ty()
            ),
        ));
    }
    let first_dimension = Expr::Cmp(
        crate::expr::CmpOp::Eq,
        Box::new(dimension),
        Box::new(Expr::Literal(crate::types::Value::Int4(1), DataType::Int4)),
    );
    let arg = Expr::Case {
        operand: None,
        whens: vec![(first_dimension, array)],
        otherwise: None,
        ty: array_type,
    };
    let columns = vec![Column {
        name: "generate_subscripts".into(),
        data_type: DataType::Int4,
    }];
    let mut plan = values_tree(vec![], &columns);
    plan.projection = column_refs(&columns);
    plan.set_function = Some((SetFunction::Subscripts { from_zero }, arg));
    Ok(plan)
}

/// `generate_series(start, stop [, step])` over integers or numerics, as a derived table.
fn series_plan(args: &[&ast::Expr], binder: &mut Binder) -> SqlResult<SelectPlan> {
    let mut bound = Vec::with_capacity(args.len());
    for expr in args {
        bound.push(binder.bind(expr, &Scope::empty())?);
    }
    if !(2..=3).contains(&bound.len()) {
        return Err(SqlError::new(
            SqlState::UNDEFINED_FUNCTION,
            format!(
                "function generate_series({}) does not exist",
                bound
                    .iter()
                    .map(|e| e.ty().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    // Timestamps step by an interval: generate_series(start, stop, step interval).
    let instants = bound.iter().take(2).map(Expr::ty).collect::<Vec<_>>();
    if bound.len() == 3
        && instants.iter().any(|t| {
            matches!(
                t,
                DataType::Timestamp | DataType::TimestampTz | DataType::Date
            )
        })
    {
        // Dates go to the timestamptz variant, as PostgreSQL resolves them.
        let data_type = match common_type(instants.into_iter())? {
            DataType::Timestamp => DataType::Timestamp,
            _ => DataType::TimestampTz,
        };
        let mut bound = bound.into_iter();
        let (Some(start), Some(stop), Some(step)) = (bound.next(), bound.next(), bound.next())
        else {
            unreachable!("three arguments were checked above");
        };
        let start = binder.coerce(start, &data_type)?;
        let stop = binder.coerce(stop, &data_type)?;
        let step = binder.coerce(step, &DataType::Interval)?;
        if start.ty() != data_type || stop.ty() != data_type || step.ty() != DataType::Interval {
            return Err(SqlError::new(
                SqlState::UNDEFINED_FUNCTION,
                format!(
                    "function generate_series({}, {}, {}) does not exist",
                    start.ty(),
                    stop.ty(),
                    step.ty()
                ),
            ));
        }
        let columns = vec![Column {
            name: "generate_series".into(),
            data_type: data_type.clone(),
        }];
        let mut plan = values_tree(vec![], &columns);
        plan.projection = column_refs(&columns);
        plan.series = Some(Series {
            start,
            stop,
            step: Some(step),
            data_type,
        });
        return Ok(plan);
    }
    let data_type = match common_type(bound.iter().map(Expr::ty))? {
        DataType::Int2 | DataType::Int4 => DataType::Int4,
        DataType::Int8 => DataType::Int8,
        DataType::Numeric { .. } | DataType::Float4 | DataType::Float8 => DataType::Numeric {
            precision: None,
            scale: None,
        },
        DataType::Unknown => DataType::Int4,
        other => {
            return Err(SqlError::new(
                SqlState::UNDEFINED_FUNCTION,
                format!("function generate_series({other}, ...) does not exist"),
            ))
        }
    };
    let mut bound = bound
        .into_iter()
        .map(|e| binder.coerce(e, &data_type))
        .collect::<SqlResult<Vec<_>>>()?
        .into_iter();
    let (Some(start), Some(stop)) = (bound.next(), bound.next()) else {
        unreachable!("two or three arguments were checked above");
    };
    let columns = vec![Column {
        name: "generate_series".into(),
        data_type: data_type.clone(),
    }];
    let mut plan = values_tree(vec![], &columns);
    plan.projection = column_refs(&columns);
    plan.series = Some(Series {
        start,
        stop,
        step: bound.next(),
        data_type,
    });
    Ok(plan)
}

/// Renames the first columns of a FROM item as its alias lists them (`AS t (a, b)`); the
/// columns not listed keep their names.
fn with_column_aliases(
    table: Arc<TableDesc>,
    visible: &str,
    alias: &Option<ast::TableAlias>,
) -> SqlResult<Arc<TableDesc>> {
    let Some(alias) = alias.as_ref().filter(|a| !a.columns.is_empty()) else {
        return Ok(table);
    };
    let positions: Vec<usize> = table.visible_columns().collect();
    if alias.columns.len() > positions.len() {
        return Err(SqlError::new(
            SqlState::INVALID_COLUMN_REFERENCE,
            format!(
                "table \"{visible}\" has {} columns available but {} columns specified",
                positions.len(),
                alias.columns.len()
            ),
        ));
    }
    let mut renamed = (*table).clone();
    for (column, &position) in alias.columns.iter().zip(&positions) {
        renamed.columns[position].name = ident_name(&column.name);
    }
    Ok(Arc::new(renamed))
}

/// The columns of a derived table named `name`, as a table description (no rows in storage).
fn derived_table(plan: &SelectPlan, name: &str) -> Arc<TableDesc> {
    table_of_columns(&plan.columns, name)
}

/// Output columns as a table description (no rows in storage), for a scope over them.
fn table_of_columns(columns: &[Column], name: &str) -> Arc<TableDesc> {
    Arc::new(TableDesc::without_storage(
        catalog::DERIVED_TABLE_ID,
        name,
        columns
            .iter()
            .map(|c| ColumnDesc::new(c.name.clone(), c.data_type.clone()))
            .collect(),
    ))
}

/// Whether every column `expr` reads lies in `columns` (and it reads no aggregate).
fn reads_only(expr: &Expr, columns: &Range<usize>) -> bool {
    let mut ok = true;
    expr.walk(&mut |node| match node {
        Expr::Column { index, .. } if !columns.contains(index) => ok = false,
        Expr::Aggregate { .. } | Expr::AggRef { .. } | Expr::Window { .. } => ok = false,
        Expr::Subquery {
            correlated: true, ..
        } => ok = false,
        _ => {}
    });
    ok
}

/// A WHERE clause split for a scan: the conjuncts without correlated subqueries (the scan's
/// filter, which may choose its access path), and those with them, which run per row after
/// the scan.
fn split_correlated(filter: Option<Expr>) -> (Option<Expr>, Option<Expr>) {
    let (correlated, plain): (Vec<&Expr>, Vec<&Expr>) = filter
        .as_ref()
        .map(conjuncts)
        .unwrap_or_default()
        .into_iter()
        .partition(|c| has_correlated(c));
    let and = |parts: Vec<&Expr>| {
        parts
            .into_iter()
            .cloned()
            .reduce(|a, b| Expr::And(Box::new(a), Box::new(b)))
    };
    (and(plain), and(correlated))
}

/// Whether `expr` holds a correlated subquery (which runs per row, so only where the
/// executor evaluates per row: WHERE, the select list without grouping, and UPDATE's SET).
fn has_correlated(expr: &Expr) -> bool {
    let mut found = false;
    expr.walk(&mut |node| {
        if let Expr::Subquery {
            correlated: true, ..
        } = node
        {
            found = true;
        }
    });
    found
}

/// `expr` with its column positions moved down by `by` (to read a row that starts there).
fn shift_columns(expr: Expr, by: usize) -> Expr {
    match expr {
        Expr::Column { index, name, ty } => Expr::Column {
            index: index - by,
            name,
            ty,
        },
        other => other
            .map_children(&mut |child| Ok(shift_columns(child, by)))
            .unwrap_or_else(|_| unreachable!("shifting columns cannot fail")),
    }
}

/// The conjuncts of `filter` that read only `columns`, AND-ed and shifted to read a row made
/// of those columns alone (or `None`).
fn conjunction_over(filter: &Expr, columns: Range<usize>) -> Option<Expr> {
    // A conjunct that reads no column (`random() < 0.5`) stays with the joined row: pushed
    // into every scan it would be evaluated once per table.
    let reads_a_column = |e: &Expr| {
        let mut found = false;
        e.walk(&mut |node| found |= matches!(node, Expr::Column { .. }));
        found
    };
    conjuncts(filter)
        .into_iter()
        .filter(|c| reads_only(c, &columns) && reads_a_column(c))
        .map(|c| shift_columns(c.clone(), columns.start))
        .reduce(|a, b| Expr::And(Box::new(a), Box::new(b)))
}

/// The equalities of `on` between an expression over the left side and one over `right`
/// alone, as (left keys, right keys shifted to the right row): a hash join builds a table on
/// the right keys and probes it with the left ones. Only pairs whose types hash alike.
fn hash_keys(on: &Expr, right: &ScopeTable) -> Option<HashKeys> {
    let left_side = 0..right.offset;
    let right_side = right.offset..right.offset + right.table.columns.len();
    let mut keys = HashKeys {
        left: vec![],
        right: vec![],
        residual: None,
    };
    let mut rest = Vec::new();
    for conjunct in conjuncts(on) {
        let pair = match conjunct {
            Expr::Cmp(CmpOp::Eq, a, b) => {
                if reads_only(a, &left_side) && reads_only(b, &right_side) {
                    Some((a, b))
                } else if reads_only(b, &left_side) && reads_only(a, &right_side) {
                    Some((b, a))
                } else {
                    None
                }
            }
            _ => None,
        };
        match pair {
            Some((l, r))
                if !l.is_row_independent()
                    && !r.is_row_independent()
                    && ops::hash_alike(&l.ty(), &r.ty()) =>
            {
                keys.left.push(l.as_ref().clone());
                keys.right
                    .push(shift_columns(r.as_ref().clone(), right.offset));
            }
            _ => rest.push(conjunct.clone()),
        }
    }
    keys.residual = rest
        .into_iter()
        .reduce(|a, b| Expr::And(Box::new(a), Box::new(b)));
    (!keys.left.is_empty()).then_some(keys)
}

/// If `on` fixes every primary-key column of `right` with an equality to an expression over
/// the left side only, those expressions in key order: the join can look each left row's
/// partner up by key instead of reading the whole right table.
fn key_lookup(on: &Expr, right: &crate::plan::ScopeTable) -> Option<Vec<Expr>> {
    if right.table.primary_key.is_empty() || right.derived.is_some() {
        return None;
    }
    let parts = conjuncts(on);
    let left_only = |e: &Expr| {
        let mut ok = true;
        e.walk(&mut |node| match node {
            Expr::Column { index, .. } if *index >= right.offset => ok = false,
            Expr::Aggregate { .. } | Expr::AggRef { .. } => ok = false,
            _ => {}
        });
        ok
    };
    let integer = |t: &DataType| matches!(t, DataType::Int2 | DataType::Int4 | DataType::Int8);
    right
        .table
        .primary_key
        .iter()
        .map(|&key_column| {
            let index = right.offset + key_column;
            let ty = &right.table.columns[key_column].data_type;
            parts.iter().find_map(|c| {
                let Expr::Cmp(CmpOp::Eq, l, r) = c else {
                    return None;
                };
                let value = match (l.as_ref(), r.as_ref()) {
                    (Expr::Column { index: i, .. }, other) if *i == index => other,
                    (other, Expr::Column { index: i, .. }) if *i == index => other,
                    _ => return None,
                };
                let same_type = value.ty() == *ty || (integer(&value.ty()) && integer(ty));
                (left_only(value) && same_type).then(|| value.clone())
            })
        })
        .collect()
}

fn limit_expr(binder: &mut Binder, expr: &ast::Expr, what: &str) -> SqlResult<Expr> {
    let bound = binder.bind(expr, &Scope::empty())?;
    let bound = binder.coerce(bound, &DataType::Int8)?;
    if !bound.ty().is_numeric() {
        return Err(SqlError::new(
            SqlState::DATATYPE_MISMATCH,
            format!(
                "argument of {what} must be type bigint, not type {}",
                bound.ty()
            ),
        ));
    }
    Ok(bound)
}

/// Plans, ahead of binding, the subqueries inside `exprs` (binding cannot read the catalog).
/// With `correlation`, a subquery may read columns of `outer` (the query around it) and is
/// marked correlated; without, such a reference fails saying correlation is not supported
/// there.
async fn plan_subqueries<'a>(
    txn: &mut Transaction,
    exprs: impl IntoIterator<Item = &'a ast::Expr>,
    outer: &Scope,
    correlation: bool,
    binder: &mut Binder,
) -> SqlResult<()> {
    let mut found = Vec::new();
    for expr in exprs {
        find_subqueries(expr, &mut found);
    }
    for query in found {
        let plan = if correlation {
            plan_correlatable(txn, query, outer, binder).await?
        } else {
            Box::pin(plan_query(txn, query, binder))
                .await
                .map_err(|e| refers_outward(e, outer))?
        };
        binder
            .subqueries
            .push((query as *const ast::Query as usize, plan));
    }
    Ok(())
}

/// Plans `query` where names it does not have resolve to `outer` (or further out); if one
/// does, the plan is marked correlated.
async fn plan_correlatable(
    txn: &mut Transaction,
    query: &ast::Query,
    outer: &Scope,
    binder: &mut Binder,
) -> SqlResult<SelectPlan> {
    let entered = enter_outer(binder, outer);
    let references_before = binder.outer_references.len();
    let planned = Box::pin(plan_query(txn, query, binder)).await;
    let correlated = leave_outer(binder, entered);
    let mut plan = planned?;
    plan.correlated = correlated;
    let (level, _) = entered;
    for (position, index, name) in &binder.outer_references[references_before..] {
        if *position == level && !plan.outer_columns.iter().any(|(i, _)| i == index) {
            plan.outer_columns.push((*index, name.clone()));
        }
    }
    Ok(plan)
}

/// Makes `outer` the innermost scope names may resolve to; returns what [`leave_outer`] needs.
fn enter_outer(binder: &mut Binder, outer: &Scope) -> (usize, Option<usize>) {
    binder.outer.push(outer.clone());
    (binder.outer.len() - 1, binder.outer_hit.take())
}

/// Undoes [`enter_outer`]; whether a name resolved to `outer` or further out since.
fn leave_outer(binder: &mut Binder, (enclosing, hits_before): (usize, Option<usize>)) -> bool {
    binder.outer.pop();
    let hit = binder.outer_hit;
    // Reaching past `outer` makes the query around this one correlated too.
    binder.outer_hit = match (hits_before, hit.filter(|&p| p < enclosing)) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    hit.is_some()
}

/// A subquery's unknown table or column that the outer query has means a correlated subquery,
/// which Cairn does not run yet: say so rather than claim the name does not exist.
fn refers_outward(error: SqlError, outer: &Scope) -> SqlError {
    let Some(name) = error.message.split('"').nth(1) else {
        return error;
    };
    let outer_has = match error.state {
        SqlState::UNDEFINED_TABLE => outer.tables().iter().any(|t| t.name == name),
        SqlState::UNDEFINED_COLUMN => outer
            .tables()
            .iter()
            .any(|t| t.table.column_index(name).is_some()),
        _ => false,
    };
    if outer_has {
        SqlError::unsupported(format!(
            "correlated subqueries are not supported yet (the subquery refers to \"{name}\" of the outer query)"
        ))
    } else {
        error
    }
}

/// The subqueries directly inside `expr` (not those inside them: planning them finds those).
fn find_subqueries<'a>(expr: &'a ast::Expr, found: &mut Vec<&'a ast::Query>) {
    use ast::Expr as A;
    match expr {
        A::Subquery(query)
        | A::Exists {
            subquery: query, ..
        } => found.push(query),
        A::InSubquery { expr, subquery, .. } => {
            find_subqueries(expr, found);
            found.push(subquery);
        }
        A::AnyOp { left, right, .. } | A::AllOp { left, right, .. } => {
            find_subqueries(left, found);
            find_subqueries(right, found);
        }
        A::BinaryOp { left, right, .. } => {
            find_subqueries(left, found);
            find_subqueries(right, found);
        }
        A::UnaryOp { expr, .. }
        | A::Nested(expr)
        | A::IsNull(expr)
        | A::IsNotNull(expr)
        | A::IsTrue(expr)
        | A::IsNotTrue(expr)
        | A::IsFalse(expr)
        | A::IsNotFalse(expr)
        | A::Cast { expr, .. } => find_subqueries(expr, found),
        A::IsDistinctFrom(a, b) | A::IsNotDistinctFrom(a, b) => {
            find_subqueries(a, found);
            find_subqueries(b, found);
        }
        A::InList { expr, list, .. } => {
            find_subqueries(expr, found);
            list.iter().for_each(|e| find_subqueries(e, found));
        }
        A::Between {
            expr, low, high, ..
        } => {
            for e in [expr, low, high] {
                find_subqueries(e, found);
            }
        }
        A::Like { expr, pattern, .. } | A::ILike { expr, pattern, .. } => {
            find_subqueries(expr, found);
            find_subqueries(pattern, found);
        }
        A::Case {
            operand,
            conditions,
            else_result,
            ..
        } => {
            if let Some(o) = operand {
                find_subqueries(o, found);
            }
            for c in conditions {
                find_subqueries(&c.condition, found);
                find_subqueries(&c.result, found);
            }
            if let Some(e) = else_result {
                find_subqueries(e, found);
            }
        }
        A::Function(function) => match &function.args {
            ast::FunctionArguments::List(list) => {
                for arg in &list.args {
                    if let ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) = arg {
                        find_subqueries(e, found);
                    }
                }
            }
            ast::FunctionArguments::Subquery(query) => found.push(query),
            ast::FunctionArguments::None => {}
        },
        A::Collate { expr, .. } => find_subqueries(expr, found),
        _ => {}
    }
}

/// What follows a query's body: ORDER BY, LIMIT/OFFSET and row locks.
#[derive(Clone, Copy, Default)]
struct QueryTail<'a> {
    order_by: Option<&'a ast::OrderBy>,
    limit_clause: Option<&'a ast::LimitClause>,
    locks: &'a [ast::LockClause],
}

/// Plans a query (SELECT, VALUES, or a set operation of them).
pub async fn plan_query(
    txn: &mut Transaction,
    query: &ast::Query,
    binder: &mut Binder,
) -> SqlResult<SelectPlan> {
    let outer_ctes = binder.ctes.len();
    if has_data_modifying_with(query) {
        return Err(SqlError::unsupported(
            "WITH clause containing a data-modifying statement must be at the top level",
        ));
    }
    if let Some(with) = &query.with {
        for cte in &with.cte_tables {
            binder.ctes.push((
                ident_name(&cte.alias.name),
                (*cte.query).clone(),
                cte.alias.clone(),
                with.recursive,
            ));
        }
    }
    let planned = plan_query_body(txn, query, binder).await;
    binder.ctes.truncate(outer_ctes);
    planned
}

async fn plan_query_body(
    txn: &mut Transaction,
    query: &ast::Query,
    binder: &mut Binder,
) -> SqlResult<SelectPlan> {
    if query.fetch.is_some() {
        return Err(SqlError::unsupported("FETCH FIRST is not supported yet"));
    }
    let tail = QueryTail {
        order_by: query.order_by.as_ref(),
        limit_clause: query.limit_clause.as_ref(),
        locks: &query.locks,
    };
    match query.body.as_ref() {
        ast::SetExpr::Select(select) => plan_select(txn, select, tail, binder).await,
        ast::SetExpr::Values(values) => plan_values(values, Some(query), binder),
        ast::SetExpr::Query(inner) if query.order_by.is_none() && query.limit_clause.is_none() => {
            Box::pin(plan_query(txn, inner, binder)).await
        }
        ast::SetExpr::SetOperation {
            left,
            op,
            set_quantifier,
            right,
        } => {
            if !query.locks.is_empty() {
                return Err(SqlError::unsupported(
                    "FOR UPDATE is not allowed with UNION/INTERSECT/EXCEPT",
                ));
            }
            plan_set_operation(txn, left, *op, *set_quantifier, right, tail, binder).await
        }
        other => Err(SqlError::unsupported(format!(
            "{other} is not supported yet"
        ))),
    }
}

/// One side of a set operation.
async fn plan_set_side(
    txn: &mut Transaction,
    side: &ast::SetExpr,
    binder: &mut Binder,
) -> SqlResult<SelectPlan> {
    match side {
        ast::SetExpr::Select(select) => {
            Box::pin(plan_select(txn, select, QueryTail::default(), binder)).await
        }
        ast::SetExpr::Query(query) => Box::pin(plan_query(txn, query, binder)).await,
        ast::SetExpr::SetOperation {
            left,
            op,
            set_quantifier,
            right,
        } => {
            Box::pin(plan_set_operation(
                txn,
                left,
                *op,
                *set_quantifier,
                right,
                QueryTail::default(),
                binder,
            ))
            .await
        }
        ast::SetExpr::Values(values) => plan_values(values, None, binder),
        other => Err(SqlError::unsupported(format!(
            "{other} as a side of UNION/INTERSECT/EXCEPT is not supported yet"
        ))),
    }
}

/// UNION, INTERSECT or EXCEPT [ALL], with ORDER BY and LIMIT over the result.
async fn plan_set_operation(
    txn: &mut Transaction,
    left: &ast::SetExpr,
    op: ast::SetOperator,
    quantifier: ast::SetQuantifier,
    right: &ast::SetExpr,
    tail: QueryTail<'_>,
    binder: &mut Binder,
) -> SqlResult<SelectPlan> {
    let operator = match op {
        ast::SetOperator::Union => SetOperator::Union,
        ast::SetOperator::Intersect => SetOperator::Intersect,
        ast::SetOperator::Except => SetOperator::Except,
        other => return Err(SqlError::unsupported(format!("{other} is not supported"))),
    };
    let all = match quantifier {
        ast::SetQuantifier::All => true,
        ast::SetQuantifier::Distinct | ast::SetQuantifier::None => false,
        other => return Err(SqlError::unsupported(format!("{other} is not supported"))),
    };
    let left = plan_set_side(txn, left, binder).await?;
    let right = plan_set_side(txn, right, binder).await?;
    if left.columns.len() != right.columns.len() {
        return Err(SqlError::syntax(format!(
            "each {} query must have the same number of columns",
            operator.name()
        )));
    }
    // A bare NULL or quoted literal in a side's select list takes the other side's type.
    let side_type = |side: &SelectPlan, i: usize| match side.projection.get(i).map(Expr::ty) {
        Some(DataType::Unknown) => DataType::Unknown,
        _ => side.columns[i].data_type.clone(),
    };
    let mut columns = Vec::with_capacity(left.columns.len());
    for (i, l) in left.columns.iter().enumerate() {
        let (lt, rt) = (side_type(&left, i), side_type(&right, i));
        let ty = common_type([lt.clone(), rt.clone()].into_iter()).map_err(|_| {
            SqlError::new(
                SqlState::DATATYPE_MISMATCH,
                format!("{} types {lt} and {rt} cannot be matched", operator.name()),
            )
        })?;
        columns.push(Column {
            name: l.name.clone(),
            data_type: ty,
        });
    }
    // ORDER BY and LIMIT see the result's columns, by name or position.
    let scope = Scope::table(table_of_columns(&columns, ""), String::new());
    let projection = column_refs(&columns);
    let mut order_by = Vec::new();
    if let Some(order) = tail.order_by {
        let ast::OrderByKind::Expressions(exprs) = &order.kind else {
            return Err(SqlError::unsupported("ORDER BY ALL is not supported"));
        };
        for item in exprs {
            let expr = match &item.expr {
                ast::Expr::Value(v) if matches!(v.value, ast::Value::Number(..)) => {
                    output_position(&v.value, &projection)?
                }
                other => binder.bind(other, &scope)?,
            };
            let (descending, nulls_first) = sort_direction(&item.options)?;
            order_by.push(SortKey {
                expr,
                descending,
                nulls_first,
            });
        }
    }
    let (limit, offset) = limit_and_offset(binder, tail.limit_clause)?;
    let types = columns.iter().map(|c| c.data_type.clone()).collect();
    Ok(SelectPlan {
        scan: None,
        joins: vec![],
        filter: None,
        subqueries: vec![],
        set_operation: Some(Box::new(SetOperation {
            operator,
            all,
            left,
            right,
            types,
        })),
        aggregation: None,
        projection,
        columns,
        distinct: false,
        distinct_on: vec![],
        windows: vec![],
        order_by,
        limit,
        offset,
        series: None,
        set_function: None,
        ordinality: false,
        zipped: Vec::new(),
        correlated: false,
        outer_columns: Vec::new(),
        recursive: None,
        working_table: None,
    })
}

/// `ORDER BY n`: the n-th output expression (42P10 if there is none).
fn output_position(number: &ast::Value, projection: &[Expr]) -> SqlResult<Expr> {
    let n: usize = number.to_string().parse().unwrap_or(0);
    projection.get(n.wrapping_sub(1)).cloned().ok_or_else(|| {
        SqlError::new(
            SqlState::INVALID_COLUMN_REFERENCE,
            format!("ORDER BY position {n} is not in select list"),
        )
    })
}

/// LIMIT and OFFSET, bound.
fn limit_and_offset(
    binder: &mut Binder,
    clause: Option<&ast::LimitClause>,
) -> SqlResult<(Option<Expr>, Option<Expr>)> {
    match clause {
        None => Ok((None, None)),
        Some(ast::LimitClause::LimitOffset {
            limit,
            offset,
            limit_by,
        }) => {
            if !limit_by.is_empty() {
                return Err(SqlError::unsupported("LIMIT BY is not supported"));
            }
            let limit = match limit {
                Some(l) => Some(limit_expr(binder, l, "LIMIT")?),
                None => None,
            };
            let offset = match offset {
                Some(o) => Some(limit_expr(binder, &o.value, "OFFSET")?),
                None => None,
            };
            Ok((limit, offset))
        }
        Some(ast::LimitClause::OffsetCommaLimit { .. }) => {
            Err(SqlError::syntax("LIMIT #,# syntax is not supported"))
        }
    }
}

/// Plans a SELECT with what follows it.
async fn plan_select(
    txn: &mut Transaction,
    select: &ast::Select,
    query: QueryTail<'_>,
    binder: &mut Binder,
) -> SqlResult<SelectPlan> {
    // Its WINDOW clause is visible to its own window calls only.
    let definitions = select
        .named_window
        .iter()
        .map(|ast::NamedWindowDefinition(name, definition)| (ident_name(name), definition.clone()))
        .collect();
    let enclosing = std::mem::replace(&mut binder.named_windows, definitions);
    let rewritten = select_list_set_function(select)?;
    let planned = plan_select_body(txn, rewritten.as_ref().unwrap_or(select), query, binder).await;
    binder.named_windows = enclosing;
    let plan = planned?;
    if rewritten.is_some() && (plan.aggregation.is_some() || !plan.windows.is_empty()) {
        return Err(SqlError::unsupported(
            "set-returning functions in the select list of a grouped or windowed query are not supported",
        )
        .with_hint("Call the function in FROM over a derived table of the grouped rows."));
    }
    Ok(plan)
}

/// Set-returning functions of one column, as the select list may call them.
const SELECT_LIST_SET_FUNCTIONS: &[&str] = &[
    "generate_series",
    "generate_subscripts",
    "unnest",
    "jsonb_array_elements",
    "jsonb_array_elements_text",
    "jsonb_object_keys",
];

/// A select list calling a set-returning function (`SELECT id, unnest(tags) FROM t`) yields
/// one row per value for each row, which is a LATERAL call in FROM:
/// `SELECT id, f.v AS unnest FROM t, LATERAL unnest(tags) AS f(v)`. Returns that rewrite, or
/// `None` when the select list calls none. One such call per select list (PostgreSQL zips
/// several), and not beside `*` (which would show the function's column).
fn select_list_set_function(select: &ast::Select) -> SqlResult<Option<ast::Select>> {
    // Names no unquoted identifier can spell, so that the user's names never meet them.
    const ALIAS: &str = "?set function?";
    let column = |i: usize| format!("?value{i}?");
    // Most select lists hold none: then nothing is copied.
    let holds_one = select.projection.iter().any(|item| match item {
        ast::SelectItem::UnnamedExpr(expr) | ast::SelectItem::ExprWithAlias { expr, .. } => {
            holds_set_function(expr)
        }
        _ => false,
    });
    if !holds_one {
        return Ok(None);
    }
    let mut select = select.clone();
    let mut calls: Vec<ast::Function> = Vec::new();
    let mut wildcard = false;
    for item in &mut select.projection {
        let (expr, name) = match item {
            ast::SelectItem::UnnamedExpr(expr) => {
                let name = output_name(expr);
                (expr, Some(name))
            }
            ast::SelectItem::ExprWithAlias { expr, .. } => (expr, None),
            _ => {
                wildcard = true;
                continue;
            }
        };
        let before = calls.len();
        loop {
            let replacement = ast::Expr::CompoundIdentifier(vec![
                ast::Ident::new(ALIAS),
                ast::Ident::new(column(calls.len())),
            ]);
            match take_set_function(expr, replacement) {
                Some(found) => calls.push(found),
                None => break,
            }
        }
        if calls.len() == before {
            continue;
        }
        if let Some(name) = name {
            *item = ast::SelectItem::ExprWithAlias {
                expr: expr.clone(),
                alias: ast::Ident::with_quote('"', name),
            };
        }
    }
    if calls.is_empty() {
        return Ok(None);
    }
    if wildcard {
        return Err(SqlError::unsupported(
            "a set-returning function beside * in a select list is not supported",
        ));
    }
    let columns = (0..calls.len())
        .map(|i| ast::TableAliasColumnDef::from_name(column(i)))
        .collect();
    // One call is a LATERAL call of it; several are zipped (see `zipped_plan`).
    let (name, args) = match calls.len() {
        1 => {
            let function = calls.remove(0);
            let args = match function.args {
                ast::FunctionArguments::List(list) => list.args,
                ast::FunctionArguments::None => Vec::new(),
                ast::FunctionArguments::Subquery(_) => {
                    return Err(SqlError::unsupported(format!(
                        "{} over a subquery is not supported",
                        function.name
                    )))
                }
            };
            (function.name, args)
        }
        _ => (
            ast::ObjectName::from(vec![ast::Ident::new(ZIPPED_SET_FUNCTIONS)]),
            calls
                .into_iter()
                .map(|call| {
                    ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(ast::Expr::Function(call)))
                })
                .collect(),
        ),
    };
    let relation = ast::TableFactor::Function {
        lateral: true,
        name,
        args,
        with_ordinality: false,
        alias: Some(ast::TableAlias {
            explicit: true,
            name: ast::Ident::new(ALIAS),
            columns,
            at: None,
        }),
    };
    select.from.push(ast::TableWithJoins {
        relation,
        joins: Vec::new(),
    });
    Ok(Some(select))
}

/// Whether [`take_set_function`] would find a call in `expr` (looked for without copying).
fn holds_set_function(expr: &ast::Expr) -> bool {
    match expr {
        ast::Expr::Function(function) => is_select_list_set_function(function),
        ast::Expr::Cast { expr, .. }
        | ast::Expr::Nested(expr)
        | ast::Expr::UnaryOp { expr, .. } => holds_set_function(expr),
        ast::Expr::BinaryOp { left, right, .. } => {
            holds_set_function(left) || holds_set_function(right)
        }
        _ => false,
    }
}

/// A plain (no OVER, no FILTER) call of a set-returning function a select list may hold.
fn is_select_list_set_function(function: &ast::Function) -> bool {
    let plain = function.over.is_none() && function.filter.is_none();
    plain && SELECT_LIST_SET_FUNCTIONS.contains(&function.name.to_string().to_lowercase().as_str())
}

/// Replaces the set-returning call in `expr` (itself, or inside casts, parentheses and
/// operators) with `replacement`, and returns the call.
fn take_set_function(expr: &mut ast::Expr, replacement: ast::Expr) -> Option<ast::Function> {
    match expr {
        ast::Expr::Function(function) => {
            if !is_select_list_set_function(function) {
                return None;
            }
            match std::mem::replace(expr, replacement) {
                ast::Expr::Function(function) => Some(function),
                _ => None,
            }
        }
        ast::Expr::Cast { expr, .. } | ast::Expr::Nested(expr) => {
            take_set_function(expr, replacement)
        }
        ast::Expr::UnaryOp { expr, .. } => take_set_function(expr, replacement),
        ast::Expr::BinaryOp { left, right, .. } => take_set_function(left, replacement.clone())
            .or_else(|| take_set_function(right, replacement)),
        _ => None,
    }
}

async fn plan_select_body(
    txn: &mut Transaction,
    select: &ast::Select,
    query: QueryTail<'_>,
    binder: &mut Binder,
) -> SqlResult<SelectPlan> {
    let order = join_order(select);
    let reordered: Vec<ast::TableWithJoins>;
    let from = match &order {
        Some(order) => {
            reordered = order.iter().map(|&i| select.from[i].clone()).collect();
            &reordered
        }
        None => &select.from,
    };
    let (mut scope, join_specs) = from_clause(txn, from, binder).await?;
    if let Some(order) = &order {
        // SELECT * keeps the written order.
        let mut star = Vec::new();
        for written in 0..order.len() {
            if let Some(placed) = order.iter().position(|&i| i == written) {
                star.extend(visible_positions(&scope.tables()[placed]));
            }
        }
        scope.set_star(star);
    }
    let scope = scope;
    let projected = select.projection.iter().filter_map(|item| match item {
        ast::SelectItem::UnnamedExpr(e) | ast::SelectItem::ExprWithAlias { expr: e, .. } => Some(e),
        _ => None,
    });
    let ons = join_specs.iter().filter_map(|(_, on)| on.as_ref());
    let order_keys = query.order_by.iter().flat_map(|order| match &order.kind {
        ast::OrderByKind::Expressions(exprs) => exprs.iter().map(|e| &e.expr).collect(),
        _ => Vec::new(),
    });
    plan_subqueries(
        txn,
        select
            .selection
            .iter()
            .chain(projected)
            .chain(select.having.iter())
            .chain(ons)
            .chain(order_keys),
        &scope,
        true,
        binder,
    )
    .await?;
    // Every lock mode puts the rows read into the conflict set (optimistic locking: nothing
    // waits, so NOWAIT changes nothing, and SKIP LOCKED skips nothing because other
    // transactions' locks are not visible before they commit).
    let lock = !query.locks.is_empty();
    if lock && scope.tables().is_empty() {
        return Err(SqlError::unsupported("FOR UPDATE needs a FROM clause"));
    }
    let filter = where_clause(binder, &select.selection, &scope)?;
    // A table's rows may be filtered by the WHERE conjuncts that concern it alone, before the
    // join, unless an outer join pads it with NULLs: the padded rows must meet the whole
    // clause (`WHERE t.x IS NULL` keeps them).
    let kinds: Vec<JoinKind> = join_specs.iter().map(|(kind, _)| *kind).collect();
    let nulls_later = |from: usize| {
        kinds[from..]
            .iter()
            .any(|k| matches!(k, JoinKind::Right | JoinKind::Full))
    };
    let pushed_down = |table: &ScopeTable, nullable: bool| -> Option<Expr> {
        let filter = filter.as_ref().filter(|_| !nullable)?;
        conjunction_over(
            filter,
            table.offset..table.offset + table.table.columns.len(),
        )
    };
    let mut joins = Vec::with_capacity(join_specs.len());
    // WHERE conjuncts that became join conditions (they need not be checked again).
    let mut joining: Vec<Expr> = Vec::new();
    for (k, (kind, on)) in join_specs.into_iter().enumerate() {
        // ON sees the tables up to and including the one it joins.
        let visible = Scope::prefix(&scope, k + 2);
        let mut on = match on {
            Some(on) => {
                let bound = binder.bind(&on, &visible)?;
                Some(binder.boolean(bound, "JOIN/ON")?)
            }
            None => None,
        };
        let right = &scope.tables()[k + 1];
        // An inner join also joins on the WHERE conjuncts that read its table and the
        // tables before it (`FROM a, b WHERE a.x = b.y` hashes on them), unless a later
        // outer join pads those tables with NULLs, which the WHERE clause must then see.
        if kind == JoinKind::Inner && !nulls_later(k + 1) {
            let end = right.offset + right.table.columns.len();
            // Conjuncts over the joined table alone already filter its scan.
            let reads_both_sides = |c: &Expr| {
                let (mut left, mut right_side) = (false, false);
                c.walk(&mut |node| {
                    if let Expr::Column { index, .. } = node {
                        left |= *index < right.offset;
                        right_side |= *index >= right.offset;
                    }
                });
                left && right_side
            };
            for conjunct in filter.as_ref().map(conjuncts).unwrap_or_default() {
                if reads_only(conjunct, &(0..end)) && reads_both_sides(conjunct) {
                    joining.push(conjunct.clone());
                    on = Some(match on {
                        Some(on) => Expr::And(Box::new(on), Box::new(conjunct.clone())),
                        None => conjunct.clone(),
                    });
                }
            }
        }
        let lateral = right.derived.as_ref().is_some_and(|d| d.correlated);
        if lateral && matches!(kind, JoinKind::Right | JoinKind::Full) {
            return Err(SqlError::new(
                SqlState("42P10"),
                format!(
                    "invalid reference to FROM-clause entry in LATERAL item \"{}\"",
                    right.name
                ),
            )
            .with_detail(
                "The combining JOIN type must be INNER or LEFT for a LATERAL reference.",
            ));
        }
        let lookup = match kind {
            JoinKind::Inner | JoinKind::Left => on.as_ref().and_then(|on| key_lookup(on, right)),
            JoinKind::Right | JoinKind::Full => None,
        };
        // With a lookup too, the executor may still hash-join when the left side is large.
        let hash = on
            .as_ref()
            .filter(|_| !lateral)
            .and_then(|on| hash_keys(on, right));
        let nullable = matches!(kind, JoinKind::Left | JoinKind::Full) || nulls_later(k + 1);
        let own = pushed_down(right, nullable);
        let mut scan = choose_access(right.table.clone(), own, lock);
        scan.derived = right.derived.clone();
        joins.push(JoinStep {
            kind,
            scan,
            on,
            lookup,
            hash,
            left_width: right.offset,
        });
    }

    // Projection, with aggregates allowed.
    let mut projection = Vec::new();
    let mut columns = Vec::new();
    for item in &select.projection {
        match item {
            ast::SelectItem::Wildcard(_) | ast::SelectItem::QualifiedWildcard(..) => {
                if scope.tables().is_empty() {
                    return Err(SqlError::syntax(
                        "SELECT * with no tables specified is not valid",
                    ));
                }
                let only = match item {
                    ast::SelectItem::QualifiedWildcard(
                        ast::SelectItemQualifiedWildcardKind::ObjectName(name),
                        _,
                    ) => {
                        let wanted = table_name(name)?;
                        if !scope.tables().iter().any(|t| t.name == wanted) {
                            return Err(SqlError::new(
                                SqlState::UNDEFINED_TABLE,
                                format!("missing FROM-clause entry for table \"{wanted}\""),
                            ));
                        }
                        Some(wanted)
                    }
                    _ => None,
                };
                let positions: Vec<usize> = match (&only, scope.star()) {
                    (None, Some(star)) => star.to_vec(),
                    _ => scope
                        .tables()
                        .iter()
                        .filter(|entry| only.as_ref().is_none_or(|o| *o == entry.name))
                        .flat_map(visible_positions)
                        .collect(),
                };
                for position in positions {
                    let Some((entry, i)) = scope.column_at(position) else {
                        continue;
                    };
                    let column = &entry.table.columns[i];
                    let merged = only
                        .is_none()
                        .then(|| scope.coalesced(position, &column.name))
                        .flatten();
                    let expr = merged.unwrap_or_else(|| Expr::Column {
                        index: position,
                        name: column.name.clone(),
                        ty: column.data_type.clone(),
                    });
                    columns.push(Column {
                        name: column.name.clone(),
                        data_type: expr.ty(),
                    });
                    projection.push(expr);
                }
            }
            ast::SelectItem::UnnamedExpr(expr) => {
                let bound = binder.bind_allowing_aggregates(expr, &scope)?;
                columns.push(Column {
                    name: output_name(expr),
                    data_type: output_type(&bound),
                });
                projection.push(bound);
            }
            ast::SelectItem::ExprWithAlias { expr, alias } => {
                let bound = binder.bind_allowing_aggregates(expr, &scope)?;
                columns.push(Column {
                    name: ident_name(alias),
                    data_type: output_type(&bound),
                });
                projection.push(bound);
            }
            other => {
                return Err(SqlError::unsupported(format!(
                    "select item {other} is not supported"
                )))
            }
        }
    }
    let distinct = match &select.distinct {
        None | Some(ast::Distinct::All) => false,
        Some(ast::Distinct::Distinct) => true,
        Some(ast::Distinct::On(_)) => false,
    };
    let mut distinct_on = Vec::new();
    if let Some(ast::Distinct::On(exprs)) = &select.distinct {
        for expr in exprs {
            distinct_on.push(binder.bind_allowing_aggregates(expr, &scope)?);
        }
    }

    // ORDER BY: output ordinals and names first, else expressions over the input.
    let mut order_by = Vec::new();
    if let Some(order) = query.order_by {
        let ast::OrderByKind::Expressions(exprs) = &order.kind else {
            return Err(SqlError::unsupported("ORDER BY ALL is not supported"));
        };
        for item in exprs {
            let expr = match &item.expr {
                ast::Expr::Value(v) if matches!(v.value, ast::Value::Number(..)) => {
                    output_position(&v.value, &projection)?
                }
                ast::Expr::Identifier(ident)
                    if columns
                        .iter()
                        .filter(|c| c.name == ident_name(ident))
                        .count()
                        == 1
                        && !select
                            .projection
                            .iter()
                            .any(|p| matches!(p, ast::SelectItem::Wildcard(_))) =>
                {
                    let index = columns
                        .iter()
                        .position(|c| c.name == ident_name(ident))
                        .unwrap_or(0);
                    projection[index].clone()
                }
                other => binder.bind_allowing_aggregates(other, &scope)?,
            };
            let (descending, nulls_first) = sort_direction(&item.options)?;
            order_by.push(SortKey {
                expr,
                descending,
                nulls_first,
            });
        }
    }

    // GROUP BY and HAVING.
    let group_by = match &select.group_by {
        ast::GroupByExpr::Expressions(exprs, modifiers) if modifiers.is_empty() => {
            let mut bound = Vec::new();
            for expr in exprs {
                bound.push(match expr {
                    ast::Expr::Value(v) if matches!(v.value, ast::Value::Number(..)) => {
                        let n: usize = v.value.to_string().parse().unwrap_or(0);
                        projection.get(n.wrapping_sub(1)).cloned().ok_or_else(|| {
                            SqlError::new(
                                SqlState::INVALID_COLUMN_REFERENCE,
                                format!("GROUP BY position {n} is not in select list"),
                            )
                        })?
                    }
                    other => binder.bind(other, &scope)?,
                });
            }
            bound
        }
        _ => {
            return Err(SqlError::unsupported(
                "GROUP BY ALL, ROLLUP, CUBE and GROUPING SETS are not supported",
            ))
        }
    };
    let group_by = with_dependent_columns(group_by, &scope);
    let having = match &select.having {
        Some(h) => {
            let bound = binder.bind_allowing_aggregates(h, &scope)?;
            Some(binder.coerce(bound, &DataType::Bool)?)
        }
        None => None,
    };
    let aggregated = !group_by.is_empty() || !binder.aggregates.is_empty() || having.is_some();
    let aggregation = if aggregated {
        let groups = group_by.len();
        let rewrite = |e: Expr| rewrite_aggregated(e, &group_by, groups);
        projection = projection
            .into_iter()
            .map(rewrite)
            .collect::<SqlResult<_>>()?;
        for key in &mut order_by {
            key.expr = rewrite_aggregated(key.expr.clone(), &group_by, groups)?;
        }
        distinct_on = distinct_on
            .into_iter()
            .map(|e| rewrite_aggregated(e, &group_by, groups))
            .collect::<SqlResult<_>>()?;
        let having = match having {
            Some(h) => Some(rewrite_aggregated(h, &group_by, groups)?),
            None => None,
        };
        Some(Aggregation {
            group_by: group_by.clone(),
            aggregates: std::mem::take(&mut binder.aggregates),
            having,
        })
    } else {
        None
    };

    // Window calls become columns after the row's own (the grouped row's, if grouped).
    let mut windows = std::mem::take(&mut binder.windows);
    if !windows.is_empty() {
        let base = match &aggregation {
            Some(a) => {
                let groups = a.group_by.len();
                for call in &mut windows {
                    let rewrite = |e: Expr| rewrite_aggregated(e, &a.group_by, groups);
                    call.args = std::mem::take(&mut call.args)
                        .into_iter()
                        .map(rewrite)
                        .collect::<SqlResult<_>>()?;
                    call.partition_by = std::mem::take(&mut call.partition_by)
                        .into_iter()
                        .map(rewrite)
                        .collect::<SqlResult<_>>()?;
                    for key in &mut call.order_by {
                        key.0 = rewrite_aggregated(key.0.clone(), &a.group_by, groups)?;
                    }
                }
                groups + a.aggregates.len()
            }
            None => scope.width(),
        };
        let to_column = |e: Expr| window_to_column(e, base);
        projection = projection
            .into_iter()
            .map(to_column)
            .collect::<SqlResult<_>>()?;
        for key in &mut order_by {
            key.expr = window_to_column(key.expr.clone(), base)?;
        }
        distinct_on = distinct_on
            .into_iter()
            .map(|e| window_to_column(e, base))
            .collect::<SqlResult<_>>()?;
    }
    let (limit, offset) = limit_and_offset(binder, query.limit_clause)?;
    // As in PostgreSQL, ORDER BY must start with the DISTINCT ON expressions (in any order),
    // so that "the first row of each group" is well defined.
    if !distinct_on.is_empty() && !order_by.is_empty() {
        let leading = distinct_on.len().min(order_by.len());
        if order_by[..leading]
            .iter()
            .any(|key| !distinct_on.contains(&key.expr))
        {
            return Err(SqlError::new(
                SqlState::INVALID_COLUMN_REFERENCE,
                "SELECT DISTINCT ON expressions must match initial ORDER BY expressions",
            ));
        }
    }

    let first_own = scope
        .tables()
        .first()
        .and_then(|first| pushed_down(first, nulls_later(0)));
    // The conjuncts that became join conditions are not checked again after the joins.
    let filter = if joining.is_empty() {
        filter
    } else {
        filter.as_ref().map(conjuncts).and_then(|parts| {
            parts
                .into_iter()
                .filter(|c| !joining.contains(c))
                .cloned()
                .reduce(|a, b| Expr::And(Box::new(a), Box::new(b)))
        })
    };
    // With joins, the first table's scan takes the conjuncts that concern it alone (for its
    // access path), and the rest of the WHERE clause (what did not become a join condition)
    // applies to the joined rows.
    let (mut scan, filter) = match scope.tables().first() {
        // No FROM: WHERE decides whether the one row is there.
        None => (None, filter),
        Some(first) if joins.is_empty() => {
            let (plain, after) = split_correlated(filter);
            (Some(choose_access(first.table.clone(), plain, lock)), after)
        }
        Some(first) => (
            Some(choose_access(first.table.clone(), first_own, lock)),
            filter,
        ),
    };
    if let (Some(scan), Some(first)) = (scan.as_mut(), scope.tables().first()) {
        scan.derived = first.derived.clone();
    }
    let correlated_where_unsupported = joins
        .iter()
        .any(|j| j.on.as_ref().is_some_and(has_correlated))
        || aggregation.as_ref().is_some_and(|a| {
            a.group_by.iter().any(has_correlated)
                || a.having.as_ref().is_some_and(has_correlated)
                || a.aggregates
                    .iter()
                    .any(|c| c.arg.as_ref().is_some_and(has_correlated))
        })
        || windows.iter().any(|w| {
            w.args
                .iter()
                .chain(&w.partition_by)
                .chain(w.order_by.iter().map(|(e, _, _)| e))
                .any(has_correlated)
        });
    if correlated_where_unsupported {
        return Err(SqlError::unsupported(
            "correlated subqueries are supported in WHERE, in the select list and in ORDER BY, not in JOIN/ON, GROUP BY, HAVING or the arguments of aggregate and window functions",
        ));
    }
    if let Some(aggregation) = &aggregation {
        // After grouping, a correlated subquery sees the group's row: it may read the
        // grouped columns only.
        let mut subqueries = Vec::new();
        for expr in projection.iter().chain(order_by.iter().map(|k| &k.expr)) {
            expr.walk(&mut |node| {
                if let Expr::Subquery {
                    index,
                    correlated: true,
                    ..
                } = node
                {
                    subqueries.push(*index);
                }
            });
        }
        for index in subqueries {
            let Some((_, plan)) = binder.subqueries.get(index) else {
                continue;
            };
            let ungrouped = plan.outer_columns.iter().find(|(position, _)| {
                !aggregation
                    .group_by
                    .iter()
                    .any(|g| matches!(g, Expr::Column { index, .. } if index == position))
            });
            if let Some((_, name)) = ungrouped {
                return Err(SqlError::new(
                    SqlState::GROUPING_ERROR,
                    format!("subquery uses ungrouped column \"{name}\" from outer query"),
                ));
            }
        }
    }
    let mut plan = SelectPlan {
        scan,
        joins,
        filter,
        set_operation: None,
        subqueries: vec![],
        aggregation,
        projection,
        columns,
        distinct,
        distinct_on,
        windows,
        order_by,
        limit,
        offset,
        series: None,
        set_function: None,
        ordinality: false,
        zipped: Vec::new(),
        correlated: false,
        outer_columns: Vec::new(),
        recursive: None,
        working_table: None,
    };
    use_key_order(&mut plan);
    Ok(plan)
}

/// Drops ORDER BY where the scan reads rows in that order already (its primary key's or
/// index's, ascending with NULLs last, after the columns its equalities fix), so that a
/// LIMIT stops the scan early. With a LIMIT and no better access than the whole table, an
/// index in that order is read instead of sorting every row.
fn use_key_order(select: &mut SelectPlan) {
    let plain = !select.order_by.is_empty()
        && select.joins.is_empty()
        && select.filter.is_none()
        && select.aggregation.is_none()
        && select.windows.is_empty()
        && !select.distinct
        && select.distinct_on.is_empty();
    let Some(scan) = select
        .scan
        .as_mut()
        .filter(|s| plain && s.derived.is_none())
    else {
        return;
    };
    // Keys sort by their encoding; where that is not the type's comparison order (jsonb,
    // interval spans, blank-padded char), the sort stays.
    fn key_order_is_sort_order(ty: &DataType) -> bool {
        match ty {
            DataType::Json | DataType::Jsonb | DataType::Interval | DataType::Char(_) => false,
            DataType::Array(element) => key_order_is_sort_order(element),
            _ => true,
        }
    }
    let mut wanted = Vec::with_capacity(select.order_by.len());
    for key in &select.order_by {
        match key.expr {
            Expr::Column { index, ref ty, .. }
                if !key.descending && !key.nulls_first && key_order_is_sort_order(ty) =>
            {
                wanted.push(index)
            }
            _ => return,
        }
    }
    let table = &scan.table;
    // Entries sort by the indexed columns, then the primary key (which a unique entry
    // omits only where the indexed values are unique).
    let entry_order = |index: &IndexDesc| -> Vec<usize> {
        index
            .columns
            .iter()
            .chain(&table.primary_key)
            .copied()
            .collect()
    };
    let in_order = match &scan.access {
        Access::Point(_) => true,
        Access::Full => follows(&wanted, &table.primary_key, 0),
        Access::Range { prefix, .. } => follows(&wanted, &table.primary_key, prefix.len()),
        Access::Index { index, prefix, .. } => {
            follows(&wanted, &entry_order(&table.indexes[*index]), prefix.len())
        }
    };
    if in_order {
        select.order_by.clear();
        return;
    }
    if select.limit.is_none() || !matches!(scan.access, Access::Full) {
        return;
    }
    if let Some(index) = table
        .indexes
        .iter()
        .position(|i| !i.building && follows(&wanted, &entry_order(i), 0))
    {
        scan.access = Access::Index {
            index,
            prefix: vec![],
            lower: None,
            upper: None,
        };
        select.order_by.clear();
    }
}

/// Whether rows in the order of the `key` columns, the first `fixed` of them held equal,
/// are in the order of the `wanted` columns: each is fixed or the next key column.
fn follows(wanted: &[usize], key: &[usize], fixed: usize) -> bool {
    let fixed_columns = &key[..fixed.min(key.len())];
    let mut next = fixed;
    for column in wanted {
        if fixed_columns.contains(column) {
            continue;
        }
        if key.get(next) != Some(column) {
            return false;
        }
        next += 1;
    }
    true
}

/// Window call `i` is read as column `base + i` of the row.
fn window_to_column(expr: Expr, base: usize) -> SqlResult<Expr> {
    match expr {
        Expr::Window { index, ty, name } => Ok(Expr::Column {
            index: base + index,
            name,
            ty,
        }),
        other => other.map_children(&mut |child| window_to_column(child, base)),
    }
}

/// GROUP BY a table's primary key determines the table's other columns (PostgreSQL's
/// functional dependency): they join the group keys, so the select list may read them.
fn with_dependent_columns(mut group_by: Vec<Expr>, scope: &Scope) -> Vec<Expr> {
    let grouped = |group_by: &[Expr], column: usize| {
        group_by
            .iter()
            .any(|g| matches!(g, Expr::Column { index, .. } if *index == column))
    };
    for table in scope.tables() {
        let key = &table.table.primary_key;
        if table.derived.is_some()
            || key.is_empty()
            || !key.iter().all(|&c| grouped(&group_by, table.offset + c))
        {
            continue;
        }
        for (i, column) in table.table.columns.iter().enumerate() {
            let index = table.offset + i;
            if !column.dropped && !grouped(&group_by, index) {
                group_by.push(Expr::Column {
                    index,
                    name: column.name.clone(),
                    ty: column.data_type.clone(),
                });
            }
        }
    }
    group_by
}

/// After grouping, expressions see the aggregated row: group keys, then aggregate results.
fn rewrite_aggregated(expr: Expr, group_by: &[Expr], groups: usize) -> SqlResult<Expr> {
    let same = |g: &Expr| match (g, &expr) {
        (Expr::Column { index: a, .. }, Expr::Column { index: b, .. }) => a == b,
        _ => *g == expr,
    };
    if let Some(i) = group_by.iter().position(same) {
        return Ok(Expr::AggRef {
            index: i,
            ty: expr.ty(),
            name: expr.to_string(),
        });
    }
    match expr {
        Expr::Aggregate { index, ty, name } => Ok(Expr::AggRef { index: groups + index, ty, name }),
        Expr::Column { name, .. } => Err(SqlError::new(
            SqlState::GROUPING_ERROR,
            format!("column \"{name}\" must appear in the GROUP BY clause or be used in an aggregate function"),
        )),
        other => other.map_children(&mut |child| rewrite_aggregated(child, group_by, groups)),
    }
}

fn output_type(expr: &Expr) -> DataType {
    match expr.ty() {
        DataType::Unknown => DataType::Text,
        ty => ty,
    }
}

/// The column name PostgreSQL gives an unaliased select-list expression.
fn output_name(expr: &ast::Expr) -> String {
    match expr {
        ast::Expr::Identifier(ident) => ident_name(ident),
        ast::Expr::CompoundIdentifier(parts) => parts.last().map(ident_name).unwrap_or_default(),
        ast::Expr::Function(f) => f
            .name
            .0
            .last()
            .map(|p| match p {
                ast::ObjectNamePart::Identifier(i) => ident_name(i),
                ast::ObjectNamePart::Function(f) => ident_name(&f.name),
            })
            .unwrap_or_else(|| "?column?".into()),
        ast::Expr::Cast {
            expr, data_type, ..
        } => match expr.as_ref() {
            ast::Expr::Identifier(_)
            | ast::Expr::CompoundIdentifier(_)
            | ast::Expr::Function(_)
            | ast::Expr::Array(_) => output_name(expr),
            _ if crate::system::functions::reg_kind(data_type).is_some() => {
                let name = data_type.to_string().to_lowercase();
                name.strip_prefix("pg_catalog.")
                    .unwrap_or(&name)
                    .to_string()
            }
            _ => match DataType::from_ast(data_type) {
                Ok(ty) => short_type_name(&ty),
                Err(_) => "?column?".into(),
            },
        },
        ast::Expr::Nested(inner) => output_name(inner),
        ast::Expr::Case { .. } => "case".into(),
        ast::Expr::Exists { .. } => "exists".into(),
        ast::Expr::Interval(_) => "interval".into(),
        ast::Expr::Array(_) => "array".into(),
        ast::Expr::CompoundFieldAccess { root, .. } => output_name(root),
        ast::Expr::Extract { .. } => "extract".into(),
        ast::Expr::TypedString(typed) => match DataType::from_ast(&typed.data_type) {
            Ok(ty) => short_type_name(&ty),
            Err(_) => "?column?".into(),
        },
        ast::Expr::AtTimeZone { .. } => "timezone".into(),
        // SQL-syntax functions are named after the function PostgreSQL calls.
        ast::Expr::Position { .. } => "position".into(),
        ast::Expr::Substring { .. } => "substring".into(),
        ast::Expr::Overlay { .. } => "overlay".into(),
        ast::Expr::Ceil { .. } => "ceil".into(),
        ast::Expr::Floor { .. } => "floor".into(),
        ast::Expr::Trim { trim_where, .. } => match trim_where {
            Some(ast::TrimWhereField::Leading) => "ltrim",
            Some(ast::TrimWhereField::Trailing) => "rtrim",
            _ => "btrim",
        }
        .into(),
        // A scalar subquery is named after its one column, as in PostgreSQL.
        ast::Expr::Subquery(query) => match query.body.as_ref() {
            ast::SetExpr::Select(select) => match select.projection.first() {
                Some(ast::SelectItem::ExprWithAlias { alias, .. }) => ident_name(alias),
                Some(ast::SelectItem::UnnamedExpr(inner)) => output_name(inner),
                _ => "?column?".into(),
            },
            _ => "?column?".into(),
        },
        _ => "?column?".into(),
    }
}

/// PostgreSQL's internal type name, used to name `'x'::type` columns.
fn short_type_name(ty: &DataType) -> String {
    match ty {
        DataType::Int2Vector => "int2vector",
        DataType::Oid => "oid",
        DataType::Bool => "bool",
        DataType::Int2 => "int2",
        DataType::Int4 => "int4",
        DataType::Int8 => "int8",
        DataType::Float4 => "float4",
        DataType::Float8 => "float8",
        DataType::Numeric { .. } => "numeric",
        DataType::Text => "text",
        DataType::Varchar(_) => "varchar",
        DataType::Char(_) => "bpchar",
        DataType::Bytea => "bytea",
        DataType::Date => "date",
        DataType::Timestamp => "timestamp",
        DataType::TimestampTz => "timestamptz",
        DataType::Uuid => "uuid",
        DataType::Interval => "interval",
        DataType::Json => "json",
        DataType::Jsonb => "jsonb",
        DataType::Array(element) => return short_type_name(element),
        DataType::Unknown => "unknown",
    }
    .into()
}

fn plan_values(
    values: &ast::Values,
    query: Option<&ast::Query>,
    binder: &mut Binder,
) -> SqlResult<SelectPlan> {
    if query.is_some_and(|q| q.order_by.is_some() || q.limit_clause.is_some()) {
        return Err(SqlError::unsupported(
            "ORDER BY and LIMIT on VALUES are not supported yet",
        ));
    }
    let mut rows = Vec::with_capacity(values.rows.len());
    for row in &values.rows {
        let bound: Vec<Expr> = row
            .content
            .iter()
            .map(|e| binder.bind(e, &Scope::empty()))
            .collect::<SqlResult<_>>()?;
        if rows
            .first()
            .is_some_and(|first: &Vec<Expr>| first.len() != bound.len())
        {
            return Err(SqlError::syntax("VALUES lists must all be the same length"));
        }
        rows.push(bound);
    }
    let width = rows.first().map_or(0, Vec::len);
    // Every row's column i takes the type all rows' column i share, as PostgreSQL resolves it.
    let mut columns = Vec::with_capacity(width);
    for i in 0..width {
        let data_type = common_type(rows.iter().map(|r| r[i].ty())).map_err(|e| {
            SqlError::new(SqlState::DATATYPE_MISMATCH, format!("VALUES {}", e.message))
        })?;
        for row in &mut rows {
            row[i] = binder.coerce(row[i].clone(), &data_type)?;
        }
        columns.push(Column {
            name: format!("column{}", i + 1),
            data_type,
        });
    }
    Ok(values_tree(rows, &columns))
}

/// The rows of a VALUES list as a balanced tree of UNION ALLs of one-row selects (balanced so
/// that long lists do not recurse deeply).
fn values_tree(mut rows: Vec<Vec<Expr>>, columns: &[Column]) -> SelectPlan {
    let mut plan = SelectPlan {
        joins: vec![],
        filter: None,
        set_operation: None,
        subqueries: vec![],
        scan: None,
        aggregation: None,
        projection: vec![],
        columns: columns.to_vec(),
        distinct: false,
        distinct_on: vec![],
        windows: vec![],
        order_by: vec![],
        limit: None,
        offset: None,
        series: None,
        set_function: None,
        ordinality: false,
        zipped: Vec::new(),
        correlated: false,
        outer_columns: Vec::new(),
        recursive: None,
        working_table: None,
    };
    if rows.len() <= 1 {
        plan.projection = rows.pop().unwrap_or_default();
        return plan;
    }
    let right = rows.split_off(rows.len() / 2);
    plan.projection = column_refs(columns);
    plan.set_operation = Some(Box::new(SetOperation {
        operator: SetOperator::Union,
        all: true,
        left: values_tree(rows, columns),
        right: values_tree(right, columns),
        types: columns.iter().map(|c| c.data_type.clone()).collect(),
    }));
    plan
}

fn returning(
    binder: &mut Binder,
    items: &Option<Vec<ast::SelectItem>>,
    table: &Arc<TableDesc>,
    scope: &Scope,
) -> SqlResult<Option<(Vec<Expr>, Vec<Column>)>> {
    let Some(items) = items else { return Ok(None) };
    let mut exprs = Vec::new();
    let mut columns = Vec::new();
    for item in items {
        match item {
            ast::SelectItem::Wildcard(_) | ast::SelectItem::QualifiedWildcard(..) => {
                for i in table.visible_columns() {
                    let c = &table.columns[i];
                    exprs.push(Expr::Column {
                        index: i,
                        name: c.name.clone(),
                        ty: c.data_type.clone(),
                    });
                    columns.push(Column {
                        name: c.name.clone(),
                        data_type: c.data_type.clone(),
                    });
                }
            }
            ast::SelectItem::UnnamedExpr(expr) => {
                let bound = binder.bind(expr, scope)?;
                columns.push(Column {
                    name: output_name(expr),
                    data_type: output_type(&bound),
                });
                exprs.push(bound);
            }
            ast::SelectItem::ExprWithAlias { expr, alias } => {
                let bound = binder.bind(expr, scope)?;
                columns.push(Column {
                    name: ident_name(alias),
                    data_type: output_type(&bound),
                });
                exprs.push(bound);
            }
            other => {
                return Err(SqlError::unsupported(format!(
                    "RETURNING {other} is not supported"
                )))
            }
        }
    }
    Ok(Some((exprs, columns)))
}

/// Binds the DEFAULT expression of each column `needed` marks (the others get none, so that
/// a sequence only they call is not reserved for nothing).
pub fn bind_defaults(
    binder: &mut Binder,
    table: &TableDesc,
    needed: impl Fn(usize) -> bool,
) -> SqlResult<Vec<Option<Expr>>> {
    let dialect = sqlparser::dialect::PostgreSqlDialect {};
    table
        .columns
        .iter()
        .enumerate()
        .map(|(i, column)| match &column.default {
            Some(_) if !needed(i) => Ok(None),
            None => Ok(None),
            Some(text) => {
                let expr = sqlparser::parser::Parser::new(&dialect)
                    .try_with_sql(text)
                    .and_then(|mut p| p.parse_expr())
                    .map_err(|e| {
                        SqlError::internal(format!(
                            "stored DEFAULT of column \"{}\" does not parse: {e}",
                            column.name
                        ))
                    })?;
                let bound = binder.bind(&expr, &Scope::empty())?;
                Ok(Some(binder.coerce_for_column(bound, column)?))
            }
        })
        .collect()
}

/// A table's generated columns (the hidden ones indexes on expressions read), bound over
/// its row: (position, expression). Bound in UTC: index expressions may not depend on the
/// session (see [`check_index_expression`]).
pub fn bind_generated(table: &TableDesc) -> SqlResult<Vec<(usize, Expr)>> {
    if !table
        .columns
        .iter()
        .any(|c| c.generated.is_some() && !c.dropped)
    {
        return Ok(vec![]);
    }
    let dialect = sqlparser::dialect::PostgreSqlDialect {};
    let scope = Scope::table(Arc::new(table.clone()), table.name.clone());
    let mut binder = Binder::new(&[], TimeZone::utc());
    let mut bound = Vec::new();
    for (i, column) in table.columns.iter().enumerate() {
        let Some(text) = column.generated.as_ref().filter(|_| !column.dropped) else {
            continue;
        };
        let expr = sqlparser::parser::Parser::new(&dialect)
            .try_with_sql(text)
            .and_then(|mut p| p.parse_expr())
            .map_err(|e| {
                SqlError::internal(format!(
                    "stored index expression {text} does not parse: {e}"
                ))
            })?;
        bound.push((i, binder.bind(&expr, &scope)?));
    }
    Ok(bound)
}

/// `filter` reading the table's generated columns where it computes their expressions, so
/// that an index on an expression serves `WHERE lower(email) = $1`.
fn with_generated_columns(table: &TableDesc, filter: Expr) -> Expr {
    fn replace(expr: Expr, table: &TableDesc, generated: &[(usize, Expr)]) -> Expr {
        if let Some((i, _)) = generated.iter().find(|(_, g)| *g == expr) {
            let column = &table.columns[*i];
            return Expr::Column {
                index: *i,
                name: column.name.clone(),
                ty: column.data_type.clone(),
            };
        }
        let original = expr.clone();
        expr.map_children(&mut |child| Ok(replace(child, table, generated)))
            .unwrap_or(original)
    }
    match bind_generated(table) {
        Ok(generated) if !generated.is_empty() => replace(filter, table, &generated),
        _ => filter,
    }
}

/// An index expression must give the same value for the same row whenever and by whomever it
/// is computed (PostgreSQL: IMMUTABLE functions only): no clock, randomness, sequences,
/// parameters, subqueries, aggregates, or time zone (timestamptz) in it.
fn check_index_expression(expr: &Expr) -> SqlResult<()> {
    let mut reason = None;
    expr.walk(&mut |node| {
        let volatile = matches!(
            node,
            Expr::Func(
                Func::Now
                    | Func::CurrentDate
                    | Func::Age
                    | Func::Random
                    | Func::SetSeed
                    | Func::GenRandomUuid
                    | Func::NextVal
                    | Func::CurrVal
                    | Func::SetVal
                    | Func::LastVal
                    | Func::CurrentUser
                    | Func::CurrentDatabase
                    | Func::CurrentSchema
                    | Func::CurrentSchemas
                    | Func::CurrentSetting
                    | Func::BackendPid
                    | Func::AdvisoryLock { .. }
                    | Func::AdvisoryUnlock { .. }
                    | Func::AdvisoryUnlockAll
                    | Func::Sleep
                    | Func::CancelBackend
                    | Func::Notify,
                ..
            ) | Expr::Param { .. }
                | Expr::Subquery { .. }
                | Expr::Outer { .. }
                | Expr::Aggregate { .. }
                | Expr::AggRef { .. }
                | Expr::Window { .. }
        );
        if volatile || node.ty() == DataType::TimestampTz {
            reason.get_or_insert(());
        }
    });
    match reason {
        None => Ok(()),
        Some(()) => Err(SqlError::new(
            SqlState("42P17"),
            "functions in index expression must be marked IMMUTABLE",
        )),
    }
}

/// A table's CHECK constraints, bound over its row.
pub fn bind_checks(binder: &mut Binder, table: &TableDesc) -> SqlResult<Vec<(String, Expr)>> {
    let dialect = sqlparser::dialect::PostgreSqlDialect {};
    let scope = Scope::table(Arc::new(table.clone()), table.name.clone());
    let mut checks = Vec::with_capacity(table.checks.len());
    for (name, text) in &table.checks {
        let expr = sqlparser::parser::Parser::new(&dialect)
            .try_with_sql(text)
            .and_then(|mut p| p.parse_expr())
            .map_err(|e| {
                SqlError::internal(format!("stored CHECK \"{name}\" does not parse: {e}"))
            })?;
        let bound = binder.bind(&expr, &scope)?;
        checks.push((name.clone(), binder.boolean(bound, "CHECK")?));
    }
    Ok(checks)
}

/// Checks a CHECK condition when it is declared: boolean, over the table's own columns (it is
/// stored as text and bound again where rows are written). Returns the one column it reads,
/// if it reads exactly one (PostgreSQL names the constraint after it).
fn check_condition(
    binder: &mut Binder,
    columns: &[ColumnDesc],
    table: &str,
    expr: &ast::Expr,
) -> SqlResult<Option<String>> {
    let desc = TableDesc::without_storage(catalog::DERIVED_TABLE_ID, table, columns.to_vec());
    let bound = binder.bind(expr, &Scope::table(Arc::new(desc), table.to_string()))?;
    let bound = binder.boolean(bound, "CHECK")?;
    let mut read = Vec::new();
    bound.walk(&mut |node| {
        if let Expr::Column { index, .. } = node {
            if !read.contains(index) {
                read.push(*index);
            }
        }
    });
    Ok(match read.as_slice() {
        [only] => Some(columns[*only].name.clone()),
        _ => None,
    })
}

/// The table column a column name in INSERT's list or UPDATE's SET names: its name and index.
/// The table columns a column list names (INSERT, COPY), each once (42701 otherwise).
fn target_columns(table: &TableDesc, columns: &[ast::ObjectName]) -> SqlResult<Vec<usize>> {
    let mut targets = Vec::new();
    for column in columns {
        let (column_name, index) = target_column(table, column)?;
        if targets.contains(&index) {
            return Err(SqlError::new(
                SqlState::DUPLICATE_COLUMN,
                format!("column \"{column_name}\" specified more than once"),
            ));
        }
        targets.push(index);
    }
    Ok(targets)
}

fn target_column(table: &TableDesc, column: &ast::ObjectName) -> SqlResult<(String, usize)> {
    let name = match column.0.last() {
        Some(ast::ObjectNamePart::Identifier(ident)) => ident_name(ident),
        Some(ast::ObjectNamePart::Function(f)) => ident_name(&f.name),
        None => String::new(),
    };
    let index = table
        .column_index(&name)
        .filter(|&i| !table.columns[i].hidden)
        .ok_or_else(|| {
            SqlError::new(
                SqlState::UNDEFINED_COLUMN,
                format!(
                    "column \"{name}\" of relation \"{}\" does not exist",
                    table.name
                ),
            )
        })?;
    Ok((name, index))
}

/// The table an INSERT, UPDATE or DELETE changes; a view is refused (0A000: Cairn does not
/// write through views yet), a missing name is 42P01.
async fn require_writable(txn: &mut Transaction, name: &str) -> SqlResult<Arc<TableDesc>> {
    if let Some(table) = catalog::lookup(txn, name).await? {
        return Ok(table);
    }
    if catalog::lookup_view(txn, name).await?.is_some() {
        return Err(SqlError::unsupported(format!(
            "cannot change view \"{name}\": writing through views is not supported yet"
        )));
    }
    catalog::require(txn, name).await
}

fn refuse_view(table: &TableDesc) -> SqlResult<()> {
    if table.is_built_in() {
        return Err(SqlError::new(
            SqlState("42809"),
            format!("cannot change view \"{}\"", table.name),
        ));
    }
    Ok(())
}

/// Reads `FETCH` / `MOVE [direction] [FROM | IN] cursor` (sqlparser needs FROM and reads no
/// signed counts); `None` if `sql` is not one.
pub(crate) fn parse_fetch(sql: &str) -> Option<SqlResult<Statement>> {
    use sqlparser::keywords::Keyword as K;
    use sqlparser::tokenizer::Token;
    let dialect = sqlparser::dialect::PostgreSqlDialect {};
    let mut parser = sqlparser::parser::Parser::new(&dialect)
        .try_with_sql(sql)
        .ok()?;
    let rows = match &parser.peek_token_ref().token {
        Token::Word(w) if w.value.eq_ignore_ascii_case("fetch") => true,
        Token::Word(w) if w.value.eq_ignore_ascii_case("move") => false,
        _ => return None,
    };
    let _ = parser.next_token();
    let read = |parser: &mut sqlparser::parser::Parser| -> Result<SqlResult<Statement>, sqlparser::parser::ParserError> {
        let count = |parser: &mut sqlparser::parser::Parser| -> Result<SqlResult<i64>, sqlparser::parser::ParserError> {
            let number = parser.parse_number()?;
            let text = number.to_string().replace(' ', "");
            // Counts are integers (int4), as PostgreSQL's grammar reads them.
            Ok(text
                .parse::<i32>()
                .map(i64::from)
                .map_err(|_| SqlError::syntax(format!("syntax error at or near \"{number}\""))))
        };
        // A count of 0 re-reads the current row.
        let forward = |n: i64| match n {
            0 => CursorMove::Relative(0),
            n if n < 0 => CursorMove::Backward(Some(n.unsigned_abs())),
            n => CursorMove::Forward(Some(n.unsigned_abs())),
        };
        let numeric = |parser: &sqlparser::parser::Parser| {
            matches!(
                parser.peek_token_ref().token,
                Token::Number(..) | Token::Minus | Token::Plus
            )
        };
        let direction = if parser.parse_keyword(K::NEXT) {
            CursorMove::Forward(Some(1))
        } else if parser.parse_keyword(K::PRIOR) {
            CursorMove::Backward(Some(1))
        } else if parser.parse_keyword(K::FIRST) {
            CursorMove::Absolute(1)
        } else if parser.parse_keyword(K::LAST) {
            CursorMove::Absolute(-1)
        } else if parser.parse_keyword(K::ABSOLUTE) {
            match count(parser)? {
                Ok(n) => CursorMove::Absolute(n),
                Err(e) => return Ok(Err(e)),
            }
        } else if parser.parse_keyword(K::RELATIVE) {
            match count(parser)? {
                Ok(n) => CursorMove::Relative(n),
                Err(e) => return Ok(Err(e)),
            }
        } else if parser.parse_keyword(K::ALL) {
            CursorMove::Forward(None)
        } else if parser.parse_keyword(K::FORWARD) {
            if parser.parse_keyword(K::ALL) {
                CursorMove::Forward(None)
            } else if numeric(parser) {
                match count(parser)? {
                    Ok(n) => forward(n),
                    Err(e) => return Ok(Err(e)),
                }
            } else {
                CursorMove::Forward(Some(1))
            }
        } else if parser.parse_keyword(K::BACKWARD) {
            if parser.parse_keyword(K::ALL) {
                CursorMove::Backward(None)
            } else if numeric(parser) {
                match count(parser)? {
                    Ok(n) => match forward(n) {
                        CursorMove::Forward(c) => CursorMove::Backward(c),
                        CursorMove::Backward(c) => CursorMove::Forward(c),
                        other => other,
                    },
                    Err(e) => return Ok(Err(e)),
                }
            } else {
                CursorMove::Backward(Some(1))
            }
        } else if numeric(parser) {
            match count(parser)? {
                Ok(n) => forward(n),
                Err(e) => return Ok(Err(e)),
            }
        } else {
            CursorMove::Forward(Some(1))
        };
        let _ = parser.parse_keyword(K::FROM) || parser.parse_keyword(K::IN);
        let name = ident_name(&parser.parse_identifier()?);
        let _ = parser.consume_token(&Token::SemiColon);
        if parser.peek_token_ref().token != Token::EOF {
            let next = parser.peek_token_ref();
            let at = next.span.start;
            return Ok(Err(SqlError::syntax(format!(
                "syntax error at or near \"{}\"",
                next.token
            ))
            .at(at.line, at.column)
            .locate_in(sql)));
        }
        Ok(Ok(Statement::Fetch {
            name,
            direction,
            rows,
        }))
    };
    Some(match read(&mut parser) {
        Ok(result) => result,
        Err(e) => Err(crate::session::syntax_error(e, sql)),
    })
}

/// FETCH's direction as a cursor movement.
fn cursor_move(direction: &ast::FetchDirection) -> SqlResult<CursorMove> {
    use ast::FetchDirection as D;
    let count = |value: &ast::ValueWithSpan| -> SqlResult<i64> {
        value
            .to_string()
            .parse::<i64>()
            .map_err(|_| SqlError::syntax(format!("syntax error at or near \"{value}\"")))
    };
    let forward = |n: i64| match n {
        n if n < 0 => CursorMove::Backward(Some(n.unsigned_abs())),
        n => CursorMove::Forward(Some(n.unsigned_abs())),
    };
    Ok(match direction {
        D::Next => CursorMove::Forward(Some(1)),
        D::Prior => CursorMove::Backward(Some(1)),
        D::First => CursorMove::Absolute(1),
        D::Last => CursorMove::Absolute(-1),
        D::Absolute { limit } => CursorMove::Absolute(count(limit)?),
        D::Relative { limit } => CursorMove::Relative(count(limit)?),
        D::Count { limit } => forward(count(limit)?),
        D::All | D::ForwardAll => CursorMove::Forward(None),
        D::Forward { limit: None } => CursorMove::Forward(Some(1)),
        D::Forward { limit: Some(limit) } => forward(count(limit)?),
        D::Backward { limit: None } => CursorMove::Backward(Some(1)),
        D::Backward { limit: Some(limit) } => match count(limit)? {
            n if n < 0 => CursorMove::Forward(Some(n.unsigned_abs())),
            n => CursorMove::Backward(Some(n.unsigned_abs())),
        },
        D::BackwardAll => CursorMove::Backward(None),
    })
}

/// ALTER SEQUENCE: the changes, applied to the sequence as it is when the statement runs.
async fn plan_alter_sequence(
    txn: &mut Transaction,
    alter: &AlterSequence,
    binder: &Binder,
) -> SqlResult<Plan> {
    let name = match alter.name.split_once('.') {
        Some(_) => alter.name.clone(),
        None => unqualified_relation(txn, binder, alter.name.clone()).await?,
    };
    Ok(Plan::AlterSequence {
        name,
        if_exists: alter.if_exists,
        data_type: alter.data_type.clone(),
        settings: alter.settings.clone(),
        restart: alter.restart,
        owned_by: alter.owned_by.clone(),
    })
}

/// COPY ... FROM STDIN: an INSERT of the rows the COPY data holds (read when it runs), into
/// the named columns or all of them; the others take their defaults.
async fn plan_copy_from(
    txn: &mut Transaction,
    name: &ast::ObjectName,
    columns: &[ast::Ident],
    format: impl FnOnce(&[String]) -> SqlResult<CopyFormat>,
    binder: &mut Binder,
) -> SqlResult<InsertPlan> {
    let name = existing_relation(txn, binder, name).await?;
    if catalog::lookup(txn, &name).await?.is_none()
        && catalog::lookup_view(txn, &name).await?.is_some()
    {
        return Err(SqlError::new(
            SqlState("42809"),
            format!("cannot copy to view \"{name}\""),
        ));
    }
    let table = require_writable(txn, &name).await?;
    refuse_view(&table)?;
    let targets: Vec<usize> = if columns.is_empty() {
        table.visible_columns().collect()
    } else {
        let names: Vec<ast::ObjectName> = columns
            .iter()
            .map(|c| ast::ObjectName(vec![ast::ObjectNamePart::Identifier(c.clone())]))
            .collect();
        target_columns(&table, &names)?
    };
    let names: Vec<String> = targets
        .iter()
        .map(|&t| table.columns[t].name.clone())
        .collect();
    let format = format(&names)?;
    let defaults = bind_defaults(binder, &table, |i| !targets.contains(&i))?;
    let checks = bind_checks(binder, &table)?;
    Ok(InsertPlan {
        table,
        targets,
        source: InsertSource::Copy(format),
        defaults,
        returning: None,
        on_conflict: None,
        conflict_target: ConflictTarget::PrimaryKey,
        checks,
        subqueries: vec![],
    })
}

/// COPY ... TO STDOUT: the rows of a query, or of a table's columns (as `SELECT`s them).
async fn plan_copy_to(
    txn: &mut Transaction,
    source: &ast::CopySource,
    options: &[ast::CopyOption],
    legacy_options: &[ast::CopyLegacyOption],
    binder: &mut Binder,
) -> SqlResult<Plan> {
    let query = match source {
        ast::CopySource::Query(query) => query.clone(),
        ast::CopySource::Table {
            table_name,
            columns,
        } => {
            let name = existing_relation(txn, binder, table_name).await?;
            if catalog::lookup(txn, &name).await?.is_none()
                && catalog::lookup_view(txn, &name).await?.is_some()
            {
                return Err(SqlError::new(
                    SqlState("42809"),
                    format!("cannot copy from view \"{name}\""),
                )
                .with_hint("Try the COPY (SELECT ...) TO variant."));
            }
            let list = if columns.is_empty() {
                "*".to_string()
            } else {
                columns
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let sql = format!("SELECT {list} FROM {table_name}");
            match crate::session::parse(&sql)?.pop() {
                Some(Statement::Sql(ast::Statement::Query(query))) => query,
                _ => return Err(SqlError::syntax("syntax error in COPY")),
            }
        }
    };
    let select = plan_query(txn, &query, binder).await?;
    let names: Vec<String> = select.columns.iter().map(|c| c.name.clone()).collect();
    let format = CopyFormat::from_options(options, legacy_options, true, &names)?;
    Ok(Plan::CopyOut {
        query: Box::new(Plan::Select(Box::new(select))),
        format,
    })
}

async fn plan_insert(
    txn: &mut Transaction,
    insert: &ast::Insert,
    binder: &mut Binder,
) -> SqlResult<InsertPlan> {
    let ast::TableObject::TableName(name) = &insert.table else {
        return Err(SqlError::unsupported(
            "INSERT INTO a table function is not supported",
        ));
    };
    let name = existing_relation(txn, binder, name).await?;
    let table = require_writable(txn, &name).await?;
    refuse_view(&table)?;
    let mut targets: Vec<usize> = if insert.columns.is_empty() {
        // Without a column list, the leading columns, as many as the rows give (the rest
        // take their defaults).
        let given = match insert.source.as_deref().map(|q| q.body.as_ref()) {
            Some(ast::SetExpr::Values(values)) => values.rows.first().map(|r| r.content.len()),
            _ => None,
        };
        let visible = table.visible_columns();
        match given {
            Some(n) => visible.take(n).collect(),
            None => visible.collect(),
        }
    } else {
        target_columns(&table, &insert.columns)?
    };
    let Some(source) = &insert.source else {
        return Err(SqlError::unsupported(
            "INSERT without VALUES or SELECT is not supported",
        ));
    };
    let source = match source.body.as_ref() {
        ast::SetExpr::Values(values)
            if source.order_by.is_none() && source.limit_clause.is_none() =>
        {
            let exprs = values.rows.iter().flat_map(|row| &row.content);
            plan_subqueries(txn, exprs, &Scope::empty(), false, binder).await?;
            let mut rows = Vec::with_capacity(values.rows.len());
            for row in &values.rows {
                if row.content.len() > targets.len() {
                    return Err(SqlError::syntax(
                        "INSERT has more expressions than target columns",
                    ));
                }
                if row.content.len() < targets.len() {
                    return Err(SqlError::syntax(
                        "INSERT has more target columns than expressions",
                    ));
                }
                let mut bound = Vec::with_capacity(row.content.len());
                for (expr, &target) in row.content.iter().zip(&targets) {
                    bound.push(match expr {
                        ast::Expr::Identifier(ident)
                            if ident.quote_style.is_none()
                                && ident.value.eq_ignore_ascii_case("default") =>
                        {
                            None
                        }
                        _ if table.columns[target].identity == Some(Identity::Always) => {
                            return Err(generated_always(&table.columns[target].name));
                        }
                        expr => {
                            let e = binder.bind(expr, &Scope::empty())?;
                            Some(binder.coerce_for_column(e, &table.columns[target])?)
                        }
                    });
                }
                rows.push(bound);
            }
            InsertSource::Values(rows)
        }
        _ => {
            let query = Box::pin(plan_query(txn, source, binder)).await?;
            if insert.columns.is_empty() && query.columns.len() < targets.len() {
                targets.truncate(query.columns.len());
            }
            if let Some(&target) = targets
                .iter()
                .find(|&&t| table.columns[t].identity == Some(Identity::Always))
            {
                return Err(generated_always(&table.columns[target].name));
            }
            if query.columns.len() != targets.len() {
                return Err(SqlError::syntax(if query.columns.len() > targets.len() {
                    "INSERT has more expressions than target columns"
                } else {
                    "INSERT has more target columns than expressions"
                }));
            }
            InsertSource::Query(Box::new(query))
        }
    };
    // A column's default is needed where no value is given: a column not in the list, or
    // one a VALUES row gives DEFAULT.
    let defaulted: Vec<usize> = match &source {
        InsertSource::Values(rows) => targets
            .iter()
            .enumerate()
            .filter(|(p, _)| rows.iter().any(|row| row[*p].is_none()))
            .map(|(_, &t)| t)
            .collect(),
        InsertSource::Query(_) | InsertSource::Copy(_) => Vec::new(),
    };
    let defaults = bind_defaults(binder, &table, |i| {
        !targets.contains(&i) || defaulted.contains(&i)
    })?;
    let visible = match &insert.table_alias {
        Some(alias) => ident_name(&alias.alias),
        None => visible_name(&table.name),
    };
    let scope = Scope::table(table.clone(), visible);
    let on_conflict = match &insert.on {
        None => None,
        Some(ast::OnInsert::OnConflict(on_conflict)) => {
            if let ast::OnConflictAction::DoUpdate(update) = &on_conflict.action {
                let exprs = update
                    .assignments
                    .iter()
                    .map(|a| &a.value)
                    .chain(update.selection.as_ref());
                plan_subqueries(txn, exprs, &Scope::empty(), false, binder)
                    .await
                    .map_err(|e| match e.state {
                        // A subquery reading the row or EXCLUDED.
                        SqlState::UNDEFINED_TABLE | SqlState::UNDEFINED_COLUMN => SqlError::unsupported(
                            "correlated subqueries in ON CONFLICT DO UPDATE are not supported yet",
                        ),
                        _ => e,
                    })?;
            }
            Some(plan_on_conflict(binder, &table, &scope, on_conflict)?)
        }
        Some(other) => {
            return Err(SqlError::unsupported(format!(
                "{other} is not supported; use ON CONFLICT"
            )))
        }
    };
    let returning = returning(binder, &insert.returning, &table, &scope)?;
    let checks = bind_checks(binder, &table)?;
    let (on_conflict, conflict_target) = match on_conflict {
        Some((action, target)) => (Some(action), target),
        None => (None, ConflictTarget::PrimaryKey),
    };
    Ok(InsertPlan {
        table,
        targets,
        source,
        defaults,
        returning,
        on_conflict,
        conflict_target,
        checks,
        subqueries: vec![],
    })
}

/// INSERT ... ON CONFLICT: the target is the primary key or a unique index (named by its
/// columns or constraint name; none: any of them, for DO NOTHING); DO UPDATE binds over the
/// table's row followed by `excluded`'s.
fn plan_on_conflict(
    binder: &mut Binder,
    table: &Arc<TableDesc>,
    scope: &Scope,
    on_conflict: &ast::OnConflict,
) -> SqlResult<(ConflictAction, ConflictTarget)> {
    let no_match = || {
        SqlError::new(
            SqlState("42P10"),
            "there is no unique or exclusion constraint matching the ON CONFLICT specification",
        )
    };
    let has_row_id = table.primary_key.iter().any(|&i| table.columns[i].hidden);
    let unique_sets: Vec<(Option<usize>, Vec<usize>)> = (!has_row_id)
        .then(|| (None, table.primary_key.clone()))
        .into_iter()
        .chain(
            table
                .indexes
                .iter()
                .enumerate()
                .filter(|(_, i)| i.unique && !i.building)
                .map(|(n, i)| (Some(n), i.columns.clone())),
        )
        .collect();
    let target = match &on_conflict.conflict_target {
        Some(ast::ConflictTarget::Columns(columns)) => {
            let mut named = Vec::with_capacity(columns.len());
            for column in columns {
                let index = table
                    .column_index(&ident_name(column))
                    .filter(|&i| !table.columns[i].hidden)
                    .ok_or_else(|| {
                        SqlError::new(
                            SqlState::UNDEFINED_COLUMN,
                            format!("column \"{}\" does not exist", ident_name(column)),
                        )
                    })?;
                if !named.contains(&index) {
                    named.push(index);
                }
            }
            named.sort_unstable();
            let matching = unique_sets.iter().find(|(_, columns)| {
                let mut columns = columns.clone();
                columns.sort_unstable();
                columns == named
            });
            match matching {
                Some((None, _)) => ConflictTarget::PrimaryKey,
                Some((Some(index), _)) => ConflictTarget::Index(*index),
                None => return Err(no_match()),
            }
        }
        Some(ast::ConflictTarget::OnConstraint(name)) => {
            let name = table_name(name)?;
            let index = table
                .indexes
                .iter()
                .position(|i| i.unique && !i.building && i.name == name);
            match index {
                _ if name == table.primary_key_name() && !has_row_id => ConflictTarget::PrimaryKey,
                Some(index) => ConflictTarget::Index(index),
                None => {
                    return Err(SqlError::new(
                        SqlState::UNDEFINED_OBJECT,
                        format!(
                            "constraint \"{name}\" for table \"{}\" does not exist",
                            table.name
                        ),
                    ))
                }
            }
        }
        None if matches!(on_conflict.action, ast::OnConflictAction::DoNothing) => {
            ConflictTarget::Any
        }
        None => {
            return Err(SqlError::syntax(
                "ON CONFLICT DO UPDATE requires inference specification or constraint name",
            )
            .with_hint("For example, ON CONFLICT (column_name)."))
        }
    };
    let update = match &on_conflict.action {
        ast::OnConflictAction::DoNothing => return Ok((ConflictAction::Nothing, target)),
        ast::OnConflictAction::DoUpdate(update) => update,
    };
    let mut both = scope.clone();
    both.push(table.clone(), "excluded".into(), None)?;
    let assignments = bind_assignments(binder, table, &update.assignments, &both)?;
    let filter = where_clause(binder, &update.selection, &both)?;
    Ok((
        ConflictAction::Update {
            assignments,
            filter,
        },
        target,
    ))
}

/// ALTER TABLE: each operation checked and bound against the table as it is now (the
/// executor applies them in order and checks what depends on the rows).
async fn plan_alter_table(
    txn: &mut Transaction,
    alter: &ast::AlterTable,
    binder: &mut Binder,
) -> SqlResult<Plan> {
    let name = existing_relation(txn, binder, &alter.name).await?;
    let table = match require_writable(txn, &name).await {
        Ok(table) => table,
        Err(e) if alter.if_exists && e.state == SqlState::UNDEFINED_TABLE => {
            return Ok(Plan::NoOp("ALTER TABLE"))
        }
        Err(e) => return Err(e),
    };
    refuse_view(&table)?;
    let planned = table.clone();
    // Each action is planned against the table as the actions before it leave it.
    let mut table = table;
    let column_of = |ident: &ast::Ident| ident_name(ident);
    let mut actions = Vec::with_capacity(alter.operations.len());
    use ast::AlterTableOperation as Op;
    for operation in &alter.operations {
        if let Some(done) = actions.last() {
            table = Arc::new(after_action(&table, done));
        }
        let scope = Scope::table(table.clone(), table.name.clone());
        actions.push(match operation {
            Op::AddColumn {
                if_not_exists,
                column_def,
                column_position: None,
                ..
            } => {
                if serial_type(&column_def.data_type).is_some() {
                    return Err(SqlError::unsupported(
                        "ADD COLUMN of a serial type is not supported yet",
                    ));
                }
                let mut column = ColumnDesc::new(
                    ident_name(&column_def.name),
                    DataType::from_ast(&column_def.data_type)?,
                );
                let mut default = None;
                for option in &column_def.options {
                    match &option.option {
                        ast::ColumnOption::Null => column.nullable = true,
                        ast::ColumnOption::NotNull => column.nullable = false,
                        ast::ColumnOption::Default(expr) => {
                            let bound = binder.bind(expr, &Scope::empty())?;
                            default = Some(binder.coerce_for_column(bound, &column)?);
                            column.default = Some(expr.to_string());
                        }
                        other => {
                            return Err(SqlError::unsupported(format!(
                                "ADD COLUMN with {other} is not supported yet"
                            )))
                        }
                    }
                }
                let mut volatile = false;
                if let Some(default) = &default {
                    default.walk(&mut |node| {
                        volatile |= matches!(
                            node,
                            Expr::Func(Func::NextVal | Func::Random | Func::GenRandomUuid, ..)
                        );
                    });
                }
                AlterAction::AddColumn {
                    column,
                    default,
                    volatile,
                    if_not_exists: *if_not_exists,
                }
            }
            Op::DropColumn {
                column_names,
                if_exists,
                drop_behavior,
                ..
            } => {
                // CASCADE: what depends on the column goes too. Its indexes, foreign keys and
                // checks go without it; a view reading the column is still refused (2BP01).
                let _ = drop_behavior;
                let [column] = column_names.as_slice() else {
                    return Err(SqlError::syntax("DROP COLUMN names one column"));
                };
                AlterAction::DropColumn {
                    name: column_of(column),
                    if_exists: *if_exists,
                }
            }
            Op::AddConstraint {
                not_valid: true, ..
            } => {
                return Err(SqlError::unsupported(
                    "ADD CONSTRAINT ... NOT VALID is not supported yet",
                ))
            }
            Op::AddConstraint {
                constraint: ast::TableConstraint::Check(check),
                ..
            } => {
                let only_column =
                    check_condition(binder, &table.columns, &table.name, &check.expr)?;
                let bound = binder.bind(&check.expr, &scope)?;
                AlterAction::AddCheck {
                    name: check.name.as_ref().map(ident_name),
                    sql: check.expr.to_string(),
                    condition: binder.boolean(bound, "CHECK")?,
                    only_column,
                }
            }
            Op::AddConstraint {
                constraint: ast::TableConstraint::Unique(unique),
                ..
            } => {
                let mut columns = Vec::new();
                for column in &unique.columns {
                    let index = index_column(&table.columns, &column.column.expr)?;
                    if !columns.contains(&index) {
                        columns.push(index);
                    }
                }
                AlterAction::AddUnique {
                    name: unique.name.as_ref().map(ident_name),
                    columns,
                }
            }
            Op::AddConstraint {
                constraint: ast::TableConstraint::PrimaryKey(pk),
                ..
            } => {
                let mut columns = Vec::with_capacity(pk.columns.len());
                for column in &pk.columns {
                    if let ast::Expr::Identifier(ident) = &column.column.expr {
                        let name = ident_name(ident);
                        if visible_column(&table.columns, &name).is_none() {
                            return Err(SqlError::new(
                                SqlState::UNDEFINED_COLUMN,
                                format!(
                                    "column \"{name}\" of relation \"{}\" does not exist",
                                    table.name
                                ),
                            ));
                        }
                    }
                    let index = index_column(&table.columns, &column.column.expr)?;
                    if columns.contains(&index) {
                        return Err(SqlError::new(
                            SqlState::DUPLICATE_COLUMN,
                            format!(
                                "column \"{}\" appears twice in primary key constraint",
                                table.columns[index].name
                            ),
                        ));
                    }
                    columns.push(index);
                }
                AlterAction::AddPrimaryKey {
                    columns,
                    name: pk.name.as_ref().map(ident_name),
                }
            }
            Op::AddConstraint {
                constraint: ast::TableConstraint::ForeignKey(fk),
                ..
            } => {
                let key = foreign_key_columns(&table.columns, fk)?;
                let parent = existing_relation(txn, binder, &fk.foreign_table).await?;
                let mut fk_desc = foreign_key(&table.name, &table.columns, fk, key, parent)?;
                if fk.name.is_none() {
                    // As PostgreSQL: a generated name taken already gets a number.
                    let stem = fk_desc.name.clone();
                    let mut n = 0;
                    while table.foreign_keys.iter().any(|f| f.name == fk_desc.name) {
                        n += 1;
                        fk_desc.name = format!("{stem}{n}");
                    }
                }
                AlterAction::AddForeignKey(fk_desc)
            }
            Op::DropConstraint {
                if_exists,
                name,
                drop_behavior,
            } => {
                if matches!(drop_behavior, Some(ast::DropBehavior::Cascade)) {
                    return Err(SqlError::unsupported(
                        "DROP CONSTRAINT ... CASCADE is not supported yet",
                    ));
                }
                AlterAction::DropConstraint {
                    name: ident_name(name),
                    if_exists: *if_exists,
                }
            }
            Op::RenameColumn {
                old_column_name,
                new_column_name,
            } => AlterAction::RenameColumn {
                from: column_of(old_column_name),
                to: column_of(new_column_name),
            },
            Op::RenameTable { table_name: to } => {
                let (ast::RenameTableNameKind::To(to) | ast::RenameTableNameKind::As(to)) = to;
                if to.0.len() > 1 {
                    return Err(SqlError::syntax(format!(
                        "syntax error at or near \".\" in RENAME TO {to}"
                    )));
                }
                // The table stays in its schema.
                let schema = crate::plan::schema_of(&table.name).unwrap_or("public");
                AlterAction::RenameTable {
                    to: in_schema(schema, &table_name(to)?),
                }
            }
            Op::AlterColumn { column_name, op } => {
                let column = column_of(column_name);
                let index = table
                    .column_index(&column)
                    .filter(|&i| !table.columns[i].hidden)
                    .ok_or_else(|| {
                        SqlError::new(
                            SqlState::UNDEFINED_COLUMN,
                            format!(
                                "column \"{column}\" of relation \"{}\" does not exist",
                                table.name
                            ),
                        )
                    })?;
                use ast::AlterColumnOperation as C;
                match op {
                    C::SetNotNull => AlterAction::SetNotNull {
                        column,
                        not_null: true,
                    },
                    C::DropNotNull => AlterAction::SetNotNull {
                        column,
                        not_null: false,
                    },
                    C::SetDefault { value } => {
                        let bound = binder.bind(value, &Scope::empty())?;
                        binder.coerce_for_column(bound, &table.columns[index])?;
                        AlterAction::SetDefault {
                            column,
                            default: Some(value.to_string()),
                        }
                    }
                    C::DropDefault => AlterAction::SetDefault {
                        column,
                        default: None,
                    },
                    C::SetDataType {
                        data_type, using, ..
                    } => {
                        let data_type = DataType::from_ast(data_type)?;
                        let from = table.columns[index].data_type.clone();
                        let using = match using {
                            Some(expr) => {
                                let bound = binder.bind(expr, &scope)?;
                                let target = ColumnDesc::new(column.clone(), data_type.clone());
                                Some(binder.coerce_for_column(bound, &target)?)
                            }
                            None if crate::types::cast::can_cast_assignment(&from, &data_type) => {
                                None
                            }
                            None => {
                                return Err(SqlError::new(
                                    SqlState::DATATYPE_MISMATCH,
                                    format!(
                                    "column \"{column}\" cannot be cast automatically to type {}",
                                    crate::types::cast::base_type_name(&data_type)
                                ),
                                )
                                .with_hint(format!(
                                    "You might need to specify \"USING {column}::{data_type}\"."
                                )))
                            }
                        };
                        AlterAction::SetType {
                            column: index,
                            data_type,
                            using,
                        }
                    }
                    other => {
                        return Err(SqlError::unsupported(format!(
                            "ALTER COLUMN ... {other} is not supported yet"
                        )))
                    }
                }
            }
            other => {
                return Err(SqlError::unsupported(format!(
                    "ALTER TABLE ... {other} is not supported yet"
                )))
            }
        });
    }
    Ok(Plan::AlterTable {
        table: planned,
        actions,
    })
}

/// `table` as `action` leaves it, as far as planning the next action of the same ALTER
/// TABLE needs (its columns' names, types, nullability and the primary key).
fn after_action(table: &TableDesc, action: &AlterAction) -> TableDesc {
    let mut table = table.clone();
    match action {
        AlterAction::AddColumn { column, .. } if table.column_index(&column.name).is_none() => {
            table.columns.push(column.clone())
        }
        AlterAction::DropColumn { name, .. } => {
            if let Some(index) = table.column_index(name) {
                let column = &mut table.columns[index];
                column.name = format!("........dropped.{index}........");
                column.hidden = true;
                column.dropped = true;
            }
        }
        AlterAction::RenameColumn { from, to } => {
            if let Some(index) = table.column_index(from) {
                table.columns[index].name = to.clone();
            }
        }
        AlterAction::SetType {
            column, data_type, ..
        } => table.columns[*column].data_type = data_type.clone(),
        AlterAction::SetNotNull { column, not_null } => {
            if let Some(index) = table.column_index(column) {
                table.columns[index].nullable = !*not_null;
            }
        }
        AlterAction::AddPrimaryKey { columns, name } => {
            table.primary_key = columns.clone();
            table.primary_key_constraint = name.clone();
        }
        _ => {}
    }
    table
}

/// 428C9: an INSERT giving a GENERATED ALWAYS identity column a value.
fn generated_always(column: &str) -> SqlError {
    SqlError::new(
        SqlState("428C9"),
        format!("cannot insert a non-DEFAULT value into column \"{column}\""),
    )
    .with_detail(format!(
        "Column \"{column}\" is an identity column defined as GENERATED ALWAYS."
    ))
}

/// SET column = value, ... of UPDATE or ON CONFLICT DO UPDATE, bound over `scope`: (column
/// index, value); DEFAULT is the column's default.
fn bind_assignments(
    binder: &mut Binder,
    table: &TableDesc,
    assignments: &[ast::Assignment],
    scope: &Scope,
) -> SqlResult<Vec<(usize, Expr)>> {
    let mut bound_assignments: Vec<(usize, Expr)> = Vec::with_capacity(assignments.len());
    for assignment in assignments {
        let ast::AssignmentTarget::ColumnName(column) = &assignment.target else {
            return Err(SqlError::unsupported(
                "tuple assignment is not supported yet",
            ));
        };
        let (column_name, index) = target_column(table, column)?;
        refuse_identity_update(table, index, &assignment.value)?;
        if bound_assignments.iter().any(|(i, _)| *i == index) {
            return Err(SqlError::syntax(format!(
                "multiple assignments to same column \"{column_name}\""
            )));
        }
        let value = match &assignment.value {
            ast::Expr::Identifier(ident)
                if ident.quote_style.is_none() && ident.value.eq_ignore_ascii_case("default") =>
            {
                let defaults = bind_defaults(binder, table, |i| i == index)?;
                defaults[index].clone().unwrap_or(Expr::Literal(
                    crate::types::Value::Null,
                    table.columns[index].data_type.clone(),
                ))
            }
            expr => {
                let bound = binder.bind(expr, scope)?;
                binder.coerce_for_column(bound, &table.columns[index])?
            }
        };
        bound_assignments.push((index, value));
    }
    Ok(bound_assignments)
}

/// 428C9: an UPDATE setting a GENERATED ALWAYS identity column to anything but DEFAULT.
fn refuse_identity_update(table: &TableDesc, index: usize, value: &ast::Expr) -> SqlResult<()> {
    let default = matches!(value, ast::Expr::Identifier(i)
        if i.quote_style.is_none() && i.value.eq_ignore_ascii_case("default"));
    let column = &table.columns[index];
    if column.identity == Some(Identity::Always) && !default {
        return Err(SqlError::new(
            SqlState("428C9"),
            format!("column \"{}\" can only be updated to DEFAULT", column.name),
        )
        .with_detail(format!(
            "Column \"{}\" is an identity column defined as GENERATED ALWAYS.",
            column.name
        )));
    }
    Ok(())
}

async fn single_table(
    txn: &mut Transaction,
    relation: &ast::TableWithJoins,
    binder: &Binder,
) -> SqlResult<(Arc<TableDesc>, String)> {
    from_table(txn, std::slice::from_ref(relation), binder)
        .await?
        .ok_or_else(|| SqlError::syntax("missing table"))
}

fn where_clause(
    binder: &mut Binder,
    selection: &Option<ast::Expr>,
    scope: &Scope,
) -> SqlResult<Option<Expr>> {
    match selection {
        Some(selection) => {
            let bound = binder.bind(selection, scope)?;
            Ok(Some(binder.boolean(bound, "WHERE")?))
        }
        None => Ok(None),
    }
}

async fn plan_update(
    txn: &mut Transaction,
    update: &ast::Update,
    binder: &mut Binder,
) -> SqlResult<UpdatePlan> {
    let (table, name) = single_table(txn, &update.table, binder).await?;
    refuse_view(&table)?;
    if let Some(from) = &update.from {
        let (ast::UpdateTableFromKind::BeforeSet(items)
        | ast::UpdateTableFromKind::AfterSet(items)) = from;
        return plan_update_from(txn, update, items, table, &name, binder).await;
    }
    let values = update.assignments.iter().map(|a| &a.value);
    let scope = Scope::table(table.clone(), name);
    plan_subqueries(
        txn,
        update.selection.iter().chain(values),
        &scope,
        true,
        binder,
    )
    .await?;
    let assignments = bind_assignments(binder, &table, &update.assignments, &scope)?;
    let (filter, row_filter) = split_correlated(where_clause(binder, &update.selection, &scope)?);
    let returning = returning(binder, &update.returning, &table, &scope)?;
    let checks = bind_checks(binder, &table)?;
    Ok(UpdatePlan {
        subqueries: vec![],
        scan: choose_access(table, filter, false),
        row_filter,
        assignments,
        returning,
        checks,
        from: None,
    })
}

/// The rows of `table` (seen as `name`) that a join with `items` under `selection` finds, as
/// a query yielding the table's visible columns and then `extra` expressions (written as SQL
/// and planned like any SELECT, so the join rules and subqueries apply).
#[allow(clippy::too_many_arguments)]
async fn joined_rows(
    txn: &mut Transaction,
    table: &TableDesc,
    name: &str,
    target: &ast::TableWithJoins,
    items: &[ast::TableWithJoins],
    selection: &Option<ast::Expr>,
    extra: &[&ast::Expr],
    binder: &mut Binder,
) -> SqlResult<JoinedRows> {
    if table.primary_key.iter().any(|&i| table.columns[i].hidden) {
        return Err(SqlError::unsupported(
            "UPDATE ... FROM and DELETE ... USING need a table with a primary key",
        ));
    }
    let columns: Vec<usize> = table.visible_columns().collect();
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let mut outputs: Vec<String> = columns
        .iter()
        .map(|&c| format!("{}.{}", quote(name), quote(&table.columns[c].name)))
        .collect();
    outputs.extend(extra.iter().map(|e| e.to_string()));
    let mut sql = format!("SELECT {} FROM {target}", outputs.join(", "));
    for item in items {
        sql.push_str(&format!(", {item}"));
    }
    if let Some(selection) = selection {
        sql.push_str(&format!(" WHERE {selection}"));
    }
    let dialect = sqlparser::dialect::PostgreSqlDialect {};
    let query = sqlparser::parser::Parser::new(&dialect)
        .try_with_sql(&sql)
        .and_then(|mut p| p.parse_query())
        .map_err(|e| SqlError::internal(format!("joined rows query does not parse: {e}")))?;
    let query = Box::pin(plan_query(txn, &query, binder)).await?;
    Ok(JoinedRows { query, columns })
}

/// RETURNING of UPDATE ... FROM / DELETE ... USING (`statement`; `from` the other tables),
/// which may name the target table's columns only for now: `*` (every table's columns in
/// PostgreSQL) and the other tables' columns are refused rather than answered differently.
async fn joined_returning(
    txn: &mut Transaction,
    binder: &mut Binder,
    items: &Option<Vec<ast::SelectItem>>,
    table: &Arc<TableDesc>,
    name: &str,
    from: &[ast::TableWithJoins],
    statement: &str,
) -> SqlResult<Option<(Vec<Expr>, Vec<Column>)>> {
    let Some(list) = items else { return Ok(None) };
    let unsupported = |what: &str| {
        SqlError::unsupported(format!(
            "RETURNING {what} in {statement} is not supported yet; name the target table's columns"
        ))
    };
    if list
        .iter()
        .any(|item| matches!(item, ast::SelectItem::Wildcard(_)))
    {
        return Err(unsupported("*"));
    }
    // The other tables are in scope so that a column name they share with the target is
    // ambiguous (42702), as in PostgreSQL.
    let mut scope = Scope::table(table.clone(), name.to_string());
    for item in from {
        let factors = std::iter::once(&item.relation).chain(item.joins.iter().map(|j| &j.relation));
        for factor in factors {
            let ast::TableFactor::Table {
                name: other_name,
                alias,
                args: None,
                ..
            } = factor
            else {
                return Err(unsupported("with a FROM item other than a table"));
            };
            let other_name = existing_relation(txn, binder, other_name).await?;
            let Some(other) = catalog::lookup(txn, &other_name).await? else {
                return Err(unsupported("with a FROM item other than a table"));
            };
            let visible = match alias {
                Some(alias) => ident_name(&alias.name),
                None => visible_name(&other.name),
            };
            scope.push(other, visible, None)?;
        }
    }
    let returning = returning(binder, items, table, &scope)?;
    let mut others = false;
    for expr in returning.iter().flat_map(|(exprs, _)| exprs) {
        expr.walk(&mut |node| {
            others |= matches!(node, Expr::Column { index, .. } if *index >= table.columns.len());
        });
    }
    if others {
        return Err(unsupported("of other tables' columns"));
    }
    Ok(returning)
}

/// UPDATE ... FROM: the rows to change and their new values from a join.
async fn plan_update_from(
    txn: &mut Transaction,
    update: &ast::Update,
    items: &[ast::TableWithJoins],
    table: Arc<TableDesc>,
    name: &str,
    binder: &mut Binder,
) -> SqlResult<UpdatePlan> {
    let mut assignments: Vec<(usize, Expr)> = Vec::new();
    let mut values = Vec::new();
    for assignment in &update.assignments {
        let ast::AssignmentTarget::ColumnName(column) = &assignment.target else {
            return Err(SqlError::unsupported(
                "tuple assignment is not supported yet",
            ));
        };
        let (column_name, index) = target_column(&table, column)?;
        refuse_identity_update(&table, index, &assignment.value)?;
        if assignments.iter().any(|(i, _)| *i == index) {
            return Err(SqlError::syntax(format!(
                "multiple assignments to same column \"{column_name}\""
            )));
        }
        if matches!(&assignment.value, ast::Expr::Identifier(i)
            if i.quote_style.is_none() && i.value.eq_ignore_ascii_case("default"))
        {
            return Err(SqlError::unsupported(
                "SET column = DEFAULT in UPDATE ... FROM is not supported yet",
            ));
        }
        // The value comes out of the join query, at its position after the columns.
        assignments.push((
            index,
            Expr::Literal(crate::types::Value::Null, DataType::Unknown),
        ));
        values.push(&assignment.value);
    }
    let from = joined_rows(
        txn,
        &table,
        name,
        &update.table,
        items,
        &update.selection,
        &values,
        binder,
    )
    .await?;
    let returning = joined_returning(
        txn,
        binder,
        &update.returning,
        &table,
        name,
        items,
        "UPDATE ... FROM",
    )
    .await?;
    let checks = bind_checks(binder, &table)?;
    Ok(UpdatePlan {
        subqueries: vec![],
        scan: choose_access(table, None, false),
        row_filter: None,
        assignments,
        returning,
        checks,
        from: Some(Box::new(from)),
    })
}

async fn plan_delete(
    txn: &mut Transaction,
    delete: &ast::Delete,
    binder: &mut Binder,
) -> SqlResult<DeletePlan> {
    let from = match &delete.from {
        ast::FromTable::WithFromKeyword(from) | ast::FromTable::WithoutKeyword(from) => from,
    };
    let [relation] = from.as_slice() else {
        return Err(SqlError::unsupported(
            "DELETE from several tables is not supported",
        ));
    };
    let (table, name) = single_table(txn, relation, binder).await?;
    refuse_view(&table)?;
    if let Some(items) = &delete.using {
        let using = joined_rows(
            txn,
            &table,
            &name,
            relation,
            items,
            &delete.selection,
            &[],
            binder,
        )
        .await?;
        let returning = joined_returning(
            txn,
            binder,
            &delete.returning,
            &table,
            &name,
            items,
            "DELETE ... USING",
        )
        .await?;
        return Ok(DeletePlan {
            subqueries: vec![],
            scan: choose_access(table, None, false),
            row_filter: None,
            returning,
            using: Some(Box::new(using)),
        });
    }
    let scope = Scope::table(table.clone(), name);
    plan_subqueries(txn, delete.selection.iter(), &scope, true, binder).await?;
    let (filter, row_filter) = split_correlated(where_clause(binder, &delete.selection, &scope)?);
    let returning = returning(binder, &delete.returning, &table, &scope)?;
    Ok(DeletePlan {
        subqueries: vec![],
        scan: choose_access(table, filter, false),
        row_filter,
        returning,
        using: None,
    })
}

/// Splits a predicate into its AND-ed conjuncts.
fn conjuncts(expr: &Expr) -> Vec<&Expr> {
    match expr {
        Expr::And(a, b) => {
            let mut all = conjuncts(a);
            all.extend(conjuncts(b));
            all
        }
        other => vec![other],
    }
}

/// If `conjunct` compares column `column` with a row-independent value of the column's own
/// type, the comparison (column on the left) and the value.
fn key_condition(conjunct: &Expr, column: usize, ty: &DataType) -> Option<(CmpOp, Expr)> {
    let Expr::Cmp(op, l, r) = conjunct else {
        return None;
    };
    // Integer keys encode the same whatever their width, so any integer bound will do.
    let integer = |t: &DataType| matches!(t, DataType::Int2 | DataType::Int4 | DataType::Int8);
    let usable =
        |e: &Expr| e.is_row_independent() && (e.ty() == *ty || (integer(&e.ty()) && integer(ty)));
    // jsonb keys are encoded in a canonical form, not in jsonb order: equality only.
    if matches!(ty, DataType::Jsonb | DataType::Json) && *op != CmpOp::Eq {
        return None;
    }
    match (l.as_ref(), r.as_ref()) {
        (Expr::Column { index, .. }, value) if *index == column && usable(value) => {
            Some((*op, value.clone()))
        }
        (value, Expr::Column { index, .. }) if *index == column && usable(value) => {
            Some((op.flipped(), value.clone()))
        }
        _ => None,
    }
}

/// Chooses how to read `table` for `filter` (see the module documentation of `plan.rs`).
pub fn choose_access(table: Arc<TableDesc>, filter: Option<Expr>, lock: bool) -> Scan {
    let filter = filter.map(|f| with_generated_columns(&table, f));
    let mut access = Access::Full;
    if table.primary_key.is_empty() {
        return Scan {
            table,
            access,
            filter,
            lock,
            derived: None,
        };
    }
    if let Some(filter) = &filter {
        let parts = conjuncts(filter);
        let mut prefix = Vec::new();
        for &key_column in &table.primary_key {
            let ty = &table.columns[key_column].data_type;
            let equal = parts
                .iter()
                .find_map(|c| match key_condition(c, key_column, ty) {
                    Some((CmpOp::Eq, value)) => Some(value),
                    _ => None,
                });
            match equal {
                Some(value) => prefix.push(value),
                None => {
                    let mut lower = None;
                    let mut upper = None;
                    for c in &parts {
                        match key_condition(c, key_column, ty) {
                            Some((CmpOp::Gt, v)) if lower.is_none() => lower = Some((v, false)),
                            Some((CmpOp::GtEq, v)) if lower.is_none() => lower = Some((v, true)),
                            Some((CmpOp::Lt, v)) if upper.is_none() => upper = Some((v, false)),
                            Some((CmpOp::LtEq, v)) if upper.is_none() => upper = Some((v, true)),
                            _ => {}
                        }
                    }
                    if !prefix.is_empty() || lower.is_some() || upper.is_some() {
                        access = Access::Range {
                            prefix: std::mem::take(&mut prefix),
                            lower,
                            upper,
                        };
                    }
                    break;
                }
            }
        }
        if prefix.len() == table.primary_key.len() {
            access = Access::Point(prefix);
        }
        // Without an equality on the primary key, a secondary index with one (the longest
        // fixed prefix wins), else one with bounds on its first column, beats reading more.
        let key_equality = match &access {
            Access::Point(_) => true,
            Access::Range { prefix, .. } => !prefix.is_empty(),
            _ => false,
        };
        if !key_equality {
            let mut best: Option<(usize, Access)> = None;
            // An index still being built has entries for some rows only.
            let ready = table
                .indexes
                .iter()
                .enumerate()
                .filter(|(_, i)| !i.building);
            for (position, index) in ready {
                let (prefix, lower, upper) = index_bounds(&table, &index.columns, &parts);
                let bounded = lower.is_some() || upper.is_some();
                let score = prefix.len() * 2 + usize::from(bounded);
                let usable = !prefix.is_empty() || (bounded && matches!(access, Access::Full));
                if usable && best.as_ref().is_none_or(|(s, _)| score > *s) {
                    best = Some((
                        score,
                        Access::Index {
                            index: position,
                            prefix,
                            lower,
                            upper,
                        },
                    ));
                }
            }
            if let Some((_, index_access)) = best {
                access = index_access;
            }
        }
    }
    Scan {
        table,
        access,
        filter,
        lock,
        derived: None,
    }
}

/// The leading equalities (values) a filter's conjuncts give `columns`, and bounds on the
/// next column.
#[allow(clippy::type_complexity)]
fn index_bounds(
    table: &TableDesc,
    columns: &[usize],
    parts: &[&Expr],
) -> (Vec<Expr>, Option<(Expr, bool)>, Option<(Expr, bool)>) {
    let mut prefix = Vec::new();
    for &column in columns {
        let ty = &table.columns[column].data_type;
        let equal = parts
            .iter()
            .find_map(|c| match key_condition(c, column, ty) {
                Some((CmpOp::Eq, value)) => Some(value),
                _ => None,
            });
        match equal {
            Some(value) => prefix.push(value),
            None => {
                let (mut lower, mut upper) = (None, None);
                for c in parts {
                    match key_condition(c, column, ty) {
                        Some((CmpOp::Gt, v)) if lower.is_none() => lower = Some((v, false)),
                        Some((CmpOp::GtEq, v)) if lower.is_none() => lower = Some((v, true)),
                        Some((CmpOp::Lt, v)) if upper.is_none() => upper = Some((v, false)),
                        Some((CmpOp::LtEq, v)) if upper.is_none() => upper = Some((v, true)),
                        _ => {}
                    }
                }
                return (prefix, lower, upper);
            }
        }
    }
    (prefix, None, None)
}
