//! Binding and planning: from the parser's AST to a [`Plan`] whose names are resolved against
//! the catalog, whose expressions are typed, and whose table access is chosen.
//!
//! Access paths, for OLTP: conjuncts of the WHERE clause that fix the primary key's columns
//! with `=` to constants or parameters make a **point lookup**; a prefix of them, optionally
//! followed by `<`, `<=`, `>`, `>=` bounds on the next key column, makes a **range scan**;
//! anything else is a **full scan** of the table. The whole WHERE clause is still applied to
//! every row read, so an access path only ever narrows what is read, never what matches.

use std::sync::Arc;

use sqlparser::ast;

use crate::catalog::{ColumnDesc, ForeignKey, IndexDesc, TableDesc, ViewDesc};
use crate::copy::CopyFormat;
use crate::error::{SqlError, SqlResult, SqlState};
use crate::expr::{
    AggCall, AggFunc, ArrayFunc, CmpOp, Expr, Frame, FrameBound, FrameUnits, Func, JsonFunc,
    RegexFunc, SubqueryUse, WindowCall, WindowFunc,
};
use crate::sequence::{self, SequenceDesc, SequenceSettings, SequenceUse};
use crate::types::ops::{self, ArithOp};
use crate::types::timezone::TimeZone;
use crate::types::{cast, text, DataType, Numeric, Value};
use crate::Column;

/// A planned statement.
#[derive(Clone, Debug)]
pub enum Plan {
    /// SELECT.
    Select(Box<SelectPlan>),
    /// INSERT.
    Insert(Box<InsertPlan>),
    /// UPDATE.
    Update(Box<UpdatePlan>),
    /// DELETE.
    Delete(Box<DeletePlan>),
    /// DECLARE name CURSOR [WITH HOLD] FOR query: the query's rows, kept for FETCH.
    DeclareCursor {
        /// The cursor's name.
        name: String,
        /// The query.
        query: Box<Plan>,
        /// WITH HOLD: it outlives the transaction.
        hold: bool,
        /// NO SCROLL: it only moves forward.
        no_scroll: bool,
    },
    /// FETCH / MOVE [direction] [FROM] name.
    Fetch {
        /// The cursor.
        name: String,
        /// Which rows, from where the cursor is.
        direction: CursorMove,
        /// FETCH (the rows) or MOVE (only the count).
        rows: bool,
    },
    /// CLOSE name, or CLOSE ALL (`None`).
    CloseCursor(Option<String>),
    /// PREPARE name [(types)] AS statement: planned when it runs, kept by the session.
    Prepare {
        /// Its name (shared with the protocol's prepared statements).
        name: String,
        /// The declared parameter types.
        types: Vec<DataType>,
        /// The statement.
        statement: Box<ast::Statement>,
    },
    /// EXECUTE name [(arguments)]: the arguments are constant expressions.
    Execute {
        /// The prepared statement.
        name: String,
        /// Its arguments, as written.
        arguments: Vec<ast::Expr>,
    },
    /// LISTEN channel (`true`), UNLISTEN channel | * (`None`).
    Listen(Option<String>, bool),
    /// NOTIFY channel [, payload].
    Notify {
        /// The channel.
        channel: String,
        /// The payload ('' if none).
        payload: String,
    },
    /// COPY ... TO STDOUT: a query's rows, written in a COPY format.
    CopyOut {
        /// The query.
        query: Box<Plan>,
        /// How its rows are written.
        format: CopyFormat,
    },
    /// CREATE TABLE.
    CreateTable {
        /// The definition (its id is allocated at execution).
        desc: TableDesc,
        /// IF NOT EXISTS.
        if_not_exists: bool,
        /// The sequences its SERIAL and IDENTITY columns draw from, created with it.
        sequences: Vec<SequenceDesc>,
    },
    /// DROP TABLE.
    DropTable {
        /// Tables to drop.
        names: Vec<String>,
        /// IF EXISTS.
        if_exists: bool,
        /// CASCADE: other tables' foreign keys to them, and views reading them, go too.
        cascade: bool,
    },
    /// TRUNCATE.
    Truncate {
        /// Tables to empty.
        names: Vec<String>,
        /// RESTART IDENTITY: their SERIAL and IDENTITY sequences start again.
        restart_identity: bool,
    },
    /// ALTER TABLE: its actions, applied in order.
    AlterTable {
        /// The table as planned (the actions' expressions are bound over its columns).
        table: Arc<TableDesc>,
        /// What to change.
        actions: Vec<AlterAction>,
    },
    /// CREATE [UNIQUE] INDEX.
    CreateIndex {
        /// The table as planned.
        table: Arc<TableDesc>,
        /// The index.
        index: IndexDesc,
        /// IF NOT EXISTS.
        if_not_exists: bool,
        /// Hidden columns to add for its expressions (computed for every row).
        generated: Vec<ColumnDesc>,
        /// Where its entries for the rows there are written.
        build: IndexBuild,
    },
    /// DROP INDEX.
    DropIndex {
        /// Indexes to drop.
        names: Vec<String>,
        /// IF EXISTS.
        if_exists: bool,
    },
    /// CREATE [OR REPLACE] VIEW.
    CreateView {
        /// The view (its query was planned to check it).
        desc: ViewDesc,
        /// OR REPLACE.
        or_replace: bool,
    },
    /// DROP VIEW.
    DropView {
        /// Views to drop.
        names: Vec<String>,
        /// IF EXISTS.
        if_exists: bool,
    },
    /// CREATE SCHEMA.
    CreateSchema {
        /// Its name.
        name: String,
        /// IF NOT EXISTS.
        if_not_exists: bool,
    },
    /// DROP SCHEMA.
    DropSchema {
        /// Schemas to drop.
        names: Vec<String>,
        /// IF EXISTS.
        if_exists: bool,
    },
    /// COMMENT ON.
    Comment {
        /// What kind of object (`table`, `column`...).
        kind: &'static str,
        /// Its name (`table.column` for a column).
        name: String,
        /// The comment, or none to remove it.
        text: Option<String>,
    },
    /// CREATE SEQUENCE.
    CreateSequence {
        /// The definition (its id is allocated at execution).
        desc: SequenceDesc,
        /// IF NOT EXISTS.
        if_not_exists: bool,
    },
    /// ALTER SEQUENCE.
    AlterSequence {
        /// Its name.
        name: String,
        /// IF EXISTS.
        if_exists: bool,
        /// AS type.
        data_type: Option<DataType>,
        /// Options given.
        settings: SequenceSettings,
        /// RESTART (`Some(None)`: from START) or RESTART WITH n.
        restart: Option<Option<i64>>,
        /// OWNED BY table.column (`Some(None)`: NONE).
        owned_by: Option<Option<(String, String)>>,
    },
    /// DROP SEQUENCE.
    DropSequence {
        /// Sequences to drop.
        names: Vec<String>,
        /// IF EXISTS.
        if_exists: bool,
    },
    /// BEGIN / START TRANSACTION.
    Begin(TxnModes),
    /// COMMIT / END.
    Commit,
    /// ROLLBACK / ABORT.
    Rollback,
    /// SAVEPOINT name.
    Savepoint(String),
    /// RELEASE [SAVEPOINT] name.
    ReleaseSavepoint(String),
    /// ROLLBACK TO [SAVEPOINT] name.
    RollbackToSavepoint(String),
    /// SET TRANSACTION / SET SESSION CHARACTERISTICS AS TRANSACTION.
    SetTransaction {
        /// The modes.
        modes: TxnModes,
        /// SESSION CHARACTERISTICS (the default for later transactions).
        session: bool,
    },
    /// SET name = value (None: DEFAULT) / RESET name.
    Set {
        /// Parameter name, lower case.
        name: String,
        /// New value, or `None` to reset.
        value: Option<String>,
    },
    /// SET LOCAL name = value: until the end of the transaction block.
    SetLocal {
        /// Parameter name, lower case.
        name: String,
        /// New value, or `None` for the default.
        value: Option<String>,
    },
    /// RESET name / RESET ALL (`all`).
    Reset(String),
    /// SHOW name / SHOW ALL.
    Show(String),
    /// EXPLAIN.
    Explain(Box<Plan>),
    /// A statement with data-modifying WITH queries: each runs once, in order, before
    /// `main`; its RETURNING rows become the working table `id` that references read.
    With {
        /// (working table id, name, INSERT / UPDATE / DELETE plan)
        ctes: Vec<(usize, String, Plan)>,
        /// The statement.
        main: Box<Plan>,
    },
    /// DISCARD ALL and other statements accepted as no-ops, with their tag.
    NoOp(&'static str),
    /// DEALLOCATE name, or DEALLOCATE ALL (`None`).
    Deallocate(Option<String>),
    /// DISCARD ALL: settings back to the session's start, prepared statements and advisory
    /// locks gone.
    DiscardAll,
    /// DISCARD PLANS: the plans the session keeps for simple-protocol text shapes go.
    DiscardPlans,
    /// SET CONSTRAINTS: accepted (constraints are checked at each statement's end).
    SetConstraints,
}

/// BEGIN's modes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TxnModes {
    /// ISOLATION LEVEL, as SHOW transaction_isolation prints it.
    pub isolation: Option<&'static str>,
    /// READ ONLY (true) / READ WRITE (false).
    pub read_only: Option<bool>,
}

/// How a scan reaches its rows.
#[derive(Clone, Debug)]
pub enum Access {
    /// Every primary-key column fixed by equality: at most one row.
    Point(Vec<Expr>),
    /// A prefix of the key fixed, and optional bounds on the next key column.
    Range {
        /// Values of the leading key columns.
        prefix: Vec<Expr>,
        /// Lower bound on the next column: (value, inclusive).
        lower: Option<(Expr, bool)>,
        /// Upper bound on the next column: (value, inclusive).
        upper: Option<(Expr, bool)>,
    },
    /// A secondary index's entries: a prefix of its columns fixed, optional bounds on the
    /// next; each entry's row is then read by its primary key.
    Index {
        /// Position in the table's indexes.
        index: usize,
        /// Values of the leading indexed columns.
        prefix: Vec<Expr>,
        /// Lower bound on the next indexed column: (value, inclusive).
        lower: Option<(Expr, bool)>,
        /// Upper bound on the next indexed column: (value, inclusive).
        upper: Option<(Expr, bool)>,
    },
    /// Every row of the table.
    Full,
}

/// Reading rows of one table.
#[derive(Clone, Debug)]
pub struct Scan {
    /// The table.
    pub table: Arc<TableDesc>,
    /// How rows are reached.
    pub access: Access,
    /// Rows must satisfy this (the whole WHERE clause).
    pub filter: Option<Expr>,
    /// SELECT ... FOR UPDATE / FOR SHARE: rows read join the conflict set.
    pub lock: bool,
    /// A derived table (subquery in FROM, or a WITH query): its rows come from this plan,
    /// computed when the scan runs; `table` then only describes its columns.
    pub derived: Option<Arc<SelectPlan>>,
}

/// Which set operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetOperator {
    /// Rows of either.
    Union,
    /// Rows of both.
    Intersect,
    /// Rows of the left not in the right.
    Except,
}

impl SetOperator {
    /// SQL spelling.
    pub fn name(self) -> &'static str {
        match self {
            SetOperator::Union => "UNION",
            SetOperator::Intersect => "INTERSECT",
            SetOperator::Except => "EXCEPT",
        }
    }
}

/// A set operation of two queries.
#[derive(Clone, Debug)]
pub struct SetOperation {
    /// Which.
    pub operator: SetOperator,
    /// ALL: keep duplicates (with multiplicities); otherwise distinct rows.
    pub all: bool,
    /// Left query.
    pub left: SelectPlan,
    /// Right query.
    pub right: SelectPlan,
    /// The result's column types (both sides' values are cast to them).
    pub types: Vec<DataType>,
}

/// How rows of the left side find their partners on the right.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JoinKind {
    /// Only matching pairs.
    Inner,
    /// Every left row, with NULLs when nothing matches.
    Left,
    /// Every right row, with NULLs when nothing matches.
    Right,
    /// Both.
    Full,
}

/// Joining one more table.
#[derive(Clone, Debug)]
pub struct JoinStep {
    /// Which rows survive.
    pub kind: JoinKind,
    /// The right table (read in full unless `lookup` is set).
    pub scan: Scan,
    /// The join condition over the joined row (`None`: every pair, a cross join).
    pub on: Option<Expr>,
    /// For an index nested loop: the right table's primary-key values, computed from each
    /// left row (every key column is fixed by an equality with the left side).
    pub lookup: Option<Vec<Expr>>,
    /// For a hash join: equality keys of the ON condition and the rest of it (which then
    /// replaces `on`).
    pub hash: Option<HashKeys>,
    /// Columns of the left side (where the right table's columns start).
    pub left_width: usize,
}

/// The keys a hash join matches on: `left[i] = right[i]` for every i.
#[derive(Clone, Debug)]
pub struct HashKeys {
    /// Over the left (accumulated) row.
    pub left: Vec<Expr>,
    /// Over the right table's row alone.
    pub right: Vec<Expr>,
    /// The rest of the ON condition, over the joined row, checked on each pair found.
    pub residual: Option<Expr>,
}

/// Grouping and aggregates.
#[derive(Clone, Debug)]
pub struct Aggregation {
    /// GROUP BY expressions over the input row.
    pub group_by: Vec<Expr>,
    /// Aggregate calls: function, argument (over the input row), DISTINCT.
    pub aggregates: Vec<AggCall>,
    /// HAVING, over the aggregated row.
    pub having: Option<Expr>,
}

/// An ORDER BY key.
#[derive(Clone, Debug)]
pub struct SortKey {
    /// Over the same row as the projection.
    pub expr: Expr,
    /// DESC.
    pub descending: bool,
    /// NULLS FIRST.
    pub nulls_first: bool,
}

/// SELECT.
#[derive(Clone, Debug)]
pub struct SelectPlan {
    /// The (first) table read, or `None` for SELECT without FROM (one empty row).
    pub scan: Option<Scan>,
    /// Further tables joined to it, left to right; the WHERE clause applies to the joined
    /// rows (`filter`).
    pub joins: Vec<JoinStep>,
    /// With joins: the whole WHERE clause, over the joined row.
    pub filter: Option<Expr>,
    /// UNION / INTERSECT / EXCEPT: the rows come from it instead of a scan.
    pub set_operation: Option<Box<SetOperation>>,
    /// At the top of a statement: the statement's uncorrelated subqueries, in the order they
    /// must run ([`Expr::Subquery`] refers to them by position).
    pub subqueries: Vec<SelectPlan>,
    /// GROUP BY / aggregates, if any.
    pub aggregation: Option<Aggregation>,
    /// Output expressions (over the input row, or the aggregated row).
    pub projection: Vec<Expr>,
    /// Output columns.
    pub columns: Vec<Column>,
    /// DISTINCT.
    pub distinct: bool,
    /// Window function calls: computed after grouping, appended to each row (the projection
    /// reads them as columns after the row's own).
    pub windows: Vec<WindowCall>,
    /// DISTINCT ON (...): keep the first row (in ORDER BY order) of each group of equal
    /// values of these expressions (over the same row as the projection).
    pub distinct_on: Vec<Expr>,
    /// ORDER BY.
    pub order_by: Vec<SortKey>,
    /// LIMIT (row-independent).
    pub limit: Option<Expr>,
    /// OFFSET (row-independent).
    pub offset: Option<Expr>,
    /// `generate_series(...)` in FROM: the rows come from it instead of a scan.
    pub series: Option<Series>,
    /// A set-returning function in FROM over one argument (`unnest(array)`,
    /// `jsonb_each(doc)`, ...): its rows instead of a scan.
    pub set_function: Option<(SetFunction, Expr)>,
    /// WITH ORDINALITY on that function: each row ends with its number (bigint, from 1).
    pub ordinality: bool,
    /// Further set-returning functions of a select list, zipped beside that one (row i of
    /// each; NULL where one has fewer rows), as PostgreSQL runs several in one select list.
    pub zipped: Vec<(SetFunction, Expr)>,
    /// As a subquery: it reads the current row of a query around it ([`Expr::Outer`]), so
    /// it runs once per such row rather than once before the statement.
    pub correlated: bool,
    /// As a correlated subquery: the row positions (and names) of the query immediately
    /// around it that it reads, itself or through subqueries of its own.
    pub outer_columns: Vec<(usize, String)>,
    /// A recursive WITH query: the rows come from iterating it.
    pub recursive: Option<Box<RecursiveUnion>>,
    /// Inside a recursive WITH query's recursive term: the rows are the working table (the
    /// previous iteration's new rows) of the recursive query with this id.
    pub working_table: Option<usize>,
}

/// `WITH RECURSIVE t AS (anchor UNION [ALL] step)`: the anchor's rows, then the step run
/// again and again over the rows the previous run added (its references to `t` read those),
/// until it adds none. Without ALL, rows already produced are not added again.
#[derive(Clone, Debug)]
pub struct RecursiveUnion {
    /// The non-recursive term.
    pub anchor: SelectPlan,
    /// The recursive term.
    pub step: SelectPlan,
    /// UNION ALL.
    pub all: bool,
    /// Which working table the step's references to the query read.
    pub id: usize,
    /// Column types (the anchor's); the step's rows are cast to them.
    pub types: Vec<DataType>,
}

/// A set-returning function of one argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetFunction {
    /// unnest(array): one row per element
    Unnest,
    /// jsonb_each / jsonb_each_text: (key, value) per member
    JsonbEach {
        /// values as text
        text: bool,
    },
    /// jsonb_object_keys: one row per key
    JsonbObjectKeys,
    /// jsonb_array_elements / _text: one row per element
    JsonbArrayElements {
        /// values as text
        text: bool,
    },
    /// generate_subscripts(array, 1): 1 to the array's length (no rows for NULL); 0 to
    /// length - 1 for an int2vector, whose subscripts count from 0
    Subscripts {
        /// The argument is an int2vector.
        from_zero: bool,
    },
}

impl SetFunction {
    /// How many columns its rows have.
    pub fn width(self) -> usize {
        match self {
            SetFunction::JsonbEach { .. } => 2,
            _ => 1,
        }
    }
}

/// `generate_series(start, stop [, step])`: one row per value from `start` towards `stop`.
#[derive(Clone, Debug)]
pub struct Series {
    /// First value.
    pub start: Expr,
    /// Last value (inclusive, if reached exactly).
    pub stop: Expr,
    /// Increment (1 if absent); negative counts down, zero is an error.
    pub step: Option<Expr>,
    /// integer, bigint, numeric, or timestamp(tz) with an interval step.
    pub data_type: DataType,
}

/// How FETCH moves a cursor (positions: 0 before the first row, 1..=n on a row, n + 1
/// after the last).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CursorMove {
    /// FORWARD n (NEXT, n, ALL: `None`).
    Forward(Option<u64>),
    /// BACKWARD n (PRIOR, BACKWARD ALL: `None`).
    Backward(Option<u64>),
    /// ABSOLUTE n (FIRST, LAST; negative counts from the end).
    Absolute(i64),
    /// RELATIVE n.
    Relative(i64),
}

/// Where INSERT's rows come from.
#[derive(Clone, Debug)]
pub enum InsertSource {
    /// VALUES rows; `None` is DEFAULT.
    Values(Vec<Vec<Option<Expr>>>),
    /// INSERT ... SELECT.
    Query(Box<SelectPlan>),
    /// COPY ... FROM STDIN: the rows the COPY data holds, in this format.
    Copy(CopyFormat),
}

/// INSERT.
#[derive(Clone, Debug)]
pub struct InsertPlan {
    /// The table.
    pub table: Arc<TableDesc>,
    /// For each source column, the table column it fills.
    pub targets: Vec<usize>,
    /// The rows.
    pub source: InsertSource,
    /// Default expression per table column (`None`: NULL, or a generated row id).
    pub defaults: Vec<Option<Expr>>,
    /// RETURNING expressions over the new row, and their columns.
    pub returning: Option<(Vec<Expr>, Vec<Column>)>,
    /// ON CONFLICT: what to do with a row whose key is taken.
    pub on_conflict: Option<ConflictAction>,
    /// Which key ON CONFLICT is about.
    pub conflict_target: ConflictTarget,
    /// The table's CHECK constraints, bound over its row: (name, condition).
    pub checks: Vec<(String, Expr)>,
    /// Subqueries of its VALUES, SELECT or ON CONFLICT clause.
    pub subqueries: Vec<SelectPlan>,
}

/// One change of ALTER TABLE.
#[derive(Clone, Debug)]
pub enum AlterAction {
    /// ADD COLUMN: rows already there take the default's value now (not rewritten).
    AddColumn {
        /// The column.
        column: ColumnDesc,
        /// Its DEFAULT, bound (evaluated once for the rows already there).
        default: Option<Expr>,
        /// The default differs per row (nextval, random): refused on a table with rows.
        volatile: bool,
        /// IF NOT EXISTS.
        if_not_exists: bool,
    },
    /// DROP COLUMN.
    DropColumn {
        /// Its name.
        name: String,
        /// IF EXISTS.
        if_exists: bool,
    },
    /// RENAME COLUMN.
    RenameColumn {
        /// From.
        from: String,
        /// To.
        to: String,
    },
    /// RENAME TO.
    RenameTable {
        /// The new name.
        to: String,
    },
    /// ALTER COLUMN SET DEFAULT / DROP DEFAULT.
    SetDefault {
        /// The column.
        column: String,
        /// The DEFAULT as SQL text, or none.
        default: Option<String>,
    },
    /// ALTER COLUMN SET NOT NULL / DROP NOT NULL.
    SetNotNull {
        /// The column.
        column: String,
        /// SET (true) or DROP (false).
        not_null: bool,
    },
    /// ADD [CONSTRAINT name] CHECK (...): checked against the rows there.
    AddCheck {
        /// Its name (else named after the table, and the one column it reads).
        name: Option<String>,
        /// The condition as SQL text (stored).
        sql: String,
        /// The condition, bound over the table's row.
        condition: Expr,
        /// The one column it reads, if one.
        only_column: Option<String>,
    },
    /// ADD [CONSTRAINT name] UNIQUE (...): an index built over the rows there.
    AddUnique {
        /// Its name (else `<table>_<columns>_key`).
        name: Option<String>,
        /// The columns.
        columns: Vec<usize>,
    },
    /// ADD PRIMARY KEY (...) to a table made without one: every row rewritten under its new
    /// key (the hidden row id is dropped).
    AddPrimaryKey {
        /// The key's columns, in key order.
        columns: Vec<usize>,
        /// The constraint's name, if given (else `<table>_pkey`).
        name: Option<String>,
    },
    /// ADD [CONSTRAINT name] FOREIGN KEY ... REFERENCES: checked against the rows there.
    AddForeignKey(ForeignKey),
    /// DROP CONSTRAINT (a CHECK, a FOREIGN KEY, or a UNIQUE constraint's index).
    DropConstraint {
        /// Its name.
        name: String,
        /// IF EXISTS.
        if_exists: bool,
    },
    /// ALTER COLUMN TYPE [USING]: every row rewritten.
    SetType {
        /// The column's position.
        column: usize,
        /// The new type.
        data_type: DataType,
        /// USING, over the old row (else the column cast as on assignment).
        using: Option<Expr>,
    },
}

/// How CREATE INDEX writes the entries of the rows already there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IndexBuild {
    /// In the statement's transaction (plain CREATE INDEX).
    InStatement,
    /// By a background job, the statement waiting for it (CREATE INDEX CONCURRENTLY).
    Concurrently,
    /// By a background job, the statement returning its id at once (CREATE INDEX ASYNC).
    Async,
}

/// The key INSERT ... ON CONFLICT watches.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ConflictTarget {
    /// The primary key.
    PrimaryKey,
    /// The unique index at this position of the table's indexes.
    Index(usize),
    /// Any of them (DO NOTHING without a target).
    Any,
}

/// INSERT ... ON CONFLICT's action.
#[derive(Clone, Debug)]
pub enum ConflictAction {
    /// DO NOTHING: the row is skipped.
    Nothing,
    /// DO UPDATE SET ... [WHERE ...]: over the existing row followed by the proposed one
    /// (`excluded`).
    Update {
        /// (column index, new value).
        assignments: Vec<(usize, Expr)>,
        /// WHERE: rows where it is not true are left alone.
        filter: Option<Expr>,
    },
}

/// UPDATE.
#[derive(Clone, Debug)]
pub struct UpdatePlan {
    /// The statement's uncorrelated subqueries (see [`SelectPlan::subqueries`]).
    pub subqueries: Vec<SelectPlan>,
    /// Rows to change.
    pub scan: Scan,
    /// WHERE conjuncts with correlated subqueries, checked per scanned row.
    pub row_filter: Option<Expr>,
    /// (column index, new value over the old row; may hold correlated subqueries).
    pub assignments: Vec<(usize, Expr)>,
    /// RETURNING over the new row.
    pub returning: Option<(Vec<Expr>, Vec<Column>)>,
    /// The table's CHECK constraints, bound over its row: (name, condition).
    pub checks: Vec<(String, Expr)>,
    /// UPDATE ... FROM: a query over the table joined with the FROM items, yielding each
    /// row to change (the table's visible columns) and its new values (one per assignment,
    /// in order); the rows then come from it instead of `scan`.
    pub from: Option<Box<JoinedRows>>,
}

/// UPDATE ... FROM / DELETE ... USING: the target table's rows found by a join.
#[derive(Clone, Debug)]
pub struct JoinedRows {
    /// The query: the table's visible columns, then any new values.
    pub query: SelectPlan,
    /// The table columns the leading outputs are.
    pub columns: Vec<usize>,
}

/// DELETE.
#[derive(Clone, Debug)]
pub struct DeletePlan {
    /// The statement's uncorrelated subqueries (see [`SelectPlan::subqueries`]).
    pub subqueries: Vec<SelectPlan>,
    /// Rows to delete.
    pub scan: Scan,
    /// DELETE ... USING: the rows to delete, found by a join (instead of `scan`).
    pub using: Option<Box<JoinedRows>>,
    /// WHERE conjuncts with correlated subqueries, checked per scanned row.
    pub row_filter: Option<Expr>,
    /// RETURNING over the deleted row.
    pub returning: Option<(Vec<Expr>, Vec<Column>)>,
}

impl Plan {
    /// The result columns, if the statement returns rows.
    pub fn columns(&self) -> Option<Vec<Column>> {
        match self {
            Plan::Select(select) => Some(select.columns.clone()),
            Plan::Insert(insert) => insert.returning.as_ref().map(|(_, c)| c.clone()),
            Plan::Update(update) => update.returning.as_ref().map(|(_, c)| c.clone()),
            Plan::Delete(delete) => delete.returning.as_ref().map(|(_, c)| c.clone()),
            Plan::Show(name) if name == "all" => Some(vec![
                column("name", DataType::Text),
                column("setting", DataType::Text),
                column("description", DataType::Text),
            ]),
            Plan::Show(name) => Some(vec![column(name, DataType::Text)]),
            Plan::Explain(_) => Some(vec![column("QUERY PLAN", DataType::Text)]),
            Plan::With { main, .. } => main.columns(),
            Plan::CreateIndex {
                build: IndexBuild::Async,
                ..
            } => Some(vec![column("job_id", DataType::Int8)]),
            _ => None,
        }
    }

    /// The tables the plan was bound against (to check they have not changed before reuse).
    pub fn tables(&self) -> Vec<Arc<TableDesc>> {
        match self {
            Plan::Select(select) => select.tables(),
            Plan::Insert(insert) => {
                let mut tables = vec![insert.table.clone()];
                if let InsertSource::Query(query) = &insert.source {
                    tables.extend(query.tables());
                }
                tables
            }
            Plan::Update(update) => std::iter::once(update.scan.table.clone())
                .chain(update.subqueries.iter().flat_map(SelectPlan::tables))
                .collect(),
            Plan::Delete(delete) => std::iter::once(delete.scan.table.clone())
                .chain(delete.subqueries.iter().flat_map(SelectPlan::tables))
                .collect(),
            Plan::Explain(inner)
            | Plan::CopyOut { query: inner, .. }
            | Plan::DeclareCursor { query: inner, .. } => inner.tables(),
            Plan::With { ctes, main } => ctes
                .iter()
                .flat_map(|(_, _, plan)| plan.tables())
                .chain(main.tables())
                .collect(),
            _ => vec![],
        }
    }

    /// The statement's uncorrelated subqueries, in the order they run.
    pub fn subqueries(&self) -> &[SelectPlan] {
        match self {
            Plan::Select(select) => &select.subqueries,
            Plan::Update(update) => &update.subqueries,
            Plan::Delete(delete) => &delete.subqueries,
            Plan::Insert(insert) => &insert.subqueries,
            Plan::With { main, .. }
            | Plan::CopyOut { query: main, .. }
            | Plan::DeclareCursor { query: main, .. } => main.subqueries(),
            _ => &[],
        }
    }

    /// Whether the statement writes (refused in READ ONLY transactions), and its name.
    pub fn write_kind(&self) -> Option<&'static str> {
        match self {
            Plan::Insert(insert) if matches!(insert.source, InsertSource::Copy(_)) => {
                Some("COPY FROM")
            }
            Plan::Insert(_) => Some("INSERT"),
            Plan::CopyOut { query, .. } => query.write_kind(),
            Plan::Update(_) => Some("UPDATE"),
            Plan::Delete(_) => Some("DELETE"),
            Plan::CreateTable { .. } => Some("CREATE TABLE"),
            Plan::With { ctes, main } => main
                .write_kind()
                .or_else(|| ctes.first().and_then(|(_, _, plan)| plan.write_kind())),
            Plan::DropTable { .. } => Some("DROP TABLE"),
            Plan::CreateSequence { .. } => Some("CREATE SEQUENCE"),
            Plan::AlterSequence { .. } => Some("ALTER SEQUENCE"),
            Plan::Truncate { .. } => Some("TRUNCATE TABLE"),
            Plan::AlterTable { .. } => Some("ALTER TABLE"),
            Plan::CreateIndex { .. } => Some("CREATE INDEX"),
            Plan::DropIndex { .. } => Some("DROP INDEX"),
            Plan::CreateView { .. } => Some("CREATE VIEW"),
            Plan::CreateSchema { .. } => Some("CREATE SCHEMA"),
            Plan::DropSchema { .. } => Some("DROP SCHEMA"),
            Plan::Comment { .. } => Some("COMMENT"),
            Plan::DropView { .. } => Some("DROP VIEW"),
            Plan::DropSequence { .. } => Some("DROP SEQUENCE"),
            Plan::Select(select)
                if select.scan.as_ref().is_some_and(|s| s.lock)
                    || select.joins.iter().any(|j| j.scan.lock) =>
            {
                Some("SELECT FOR UPDATE")
            }
            _ => None,
        }
    }
}

impl SelectPlan {
    fn tables(&self) -> Vec<Arc<TableDesc>> {
        let scans = self.scan.iter().chain(self.joins.iter().map(|j| &j.scan));
        let mut tables: Vec<Arc<TableDesc>> = Vec::new();
        for scan in scans {
            match &scan.derived {
                Some(derived) => tables.extend(derived.tables()),
                None => tables.push(scan.table.clone()),
            }
        }
        if let Some(set) = &self.set_operation {
            tables.extend(set.left.tables());
            tables.extend(set.right.tables());
        }
        for subquery in &self.subqueries {
            tables.extend(subquery.tables());
        }
        tables
    }
}

fn column(name: &str, data_type: DataType) -> Column {
    Column {
        name: name.to_string(),
        data_type,
    }
}

/// Normalises an identifier: unquoted ones fold to lower case.
pub fn ident_name(ident: &ast::Ident) -> String {
    if ident.quote_style.is_some() {
        ident.value.clone()
    } else {
        ident.value.to_lowercase()
    }
}

/// The table named by `name` (optionally qualified by the `public` schema).
pub fn table_name(name: &ast::ObjectName) -> SqlResult<String> {
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|part| match part {
            ast::ObjectNamePart::Identifier(ident) => Ok(ident_name(ident)),
            ast::ObjectNamePart::Function(_) => {
                Err(SqlError::syntax(format!("invalid name {name}")))
            }
        })
        .collect::<SqlResult<_>>()?;
    match parts.as_slice() {
        [table] => Ok(table.clone()),
        [schema, table] if schema == "public" => Ok(table.clone()),
        // Objects of other schemas go by their qualified name (see `visible_name`).
        [schema, table] => Ok(format!("{schema}.{table}")),
        _ => Err(SqlError::syntax(format!("improper qualified name: {name}"))),
    }
}

/// The name a table of `name` (`s.t` in schema `s`) goes by in a query without an alias.
pub fn visible_name(name: &str) -> String {
    name.rsplit('.').next().unwrap_or(name).to_string()
}

/// The schema a qualified name (`s.t`) names, if not `public`.
pub fn schema_of(name: &str) -> Option<&str> {
    name.rsplit_once('.').map(|(schema, _)| schema)
}

fn units_name(units: FrameUnits) -> &'static str {
    match units {
        FrameUnits::Rows => "ROWS",
        FrameUnits::Range => "RANGE",
        FrameUnits::Groups => "GROUPS",
    }
}

/// Where a column name was found in a scope.
enum Resolution<'s> {
    /// The qualifier names no table of the scope.
    NoTable,
    /// No (visible) column of that name.
    NoColumn,
    /// In this table, at this position of it.
    Found(&'s ScopeTable, usize),
    /// In more than one table.
    Ambiguous,
}

/// What the binder resolves names against: the tables of a FROM clause, each under its name
/// or alias, their columns laid end to end in one row.
#[derive(Clone, Default)]
pub struct Scope {
    tables: Vec<ScopeTable>,
    /// Row positions an unqualified name skips: the side of a JOIN ... USING column that the
    /// merged column does not come from, with how many tables the scope had by then.
    merged_away: Vec<(usize, usize)>,
    /// Once a FROM clause has a USING or NATURAL join, or its tables are joined in another
    /// order than written, the row positions `SELECT *` shows, in PostgreSQL's order (the
    /// written one, each join's merged columns first).
    star: Option<Vec<usize>>,
    /// FULL JOIN ... USING columns: the merged column is whichever side is not NULL, so the
    /// left side's position stands for `COALESCE(left, right)`: (left, right, how many
    /// tables the scope had by then).
    coalesced: Vec<(usize, usize, usize)>,
}

/// One table of a [`Scope`].
#[derive(Clone)]
pub struct ScopeTable {
    /// The table.
    pub table: Arc<TableDesc>,
    /// The name it is visible under (its alias, if it has one).
    pub name: String,
    /// Where its columns start in the row.
    pub offset: usize,
    /// For a derived table, the query that produces its rows.
    pub derived: Option<Arc<SelectPlan>>,
}

impl Scope {
    /// A scope without columns (SELECT without FROM, VALUES, defaults).
    pub fn empty() -> Self {
        Scope::default()
    }

    /// The columns of `table`, reachable as `name.column` too.
    pub fn table(table: Arc<TableDesc>, name: String) -> Self {
        let mut scope = Scope::empty();
        scope.tables.push(ScopeTable {
            table,
            name,
            offset: 0,
            derived: None,
        });
        scope
    }

    /// Adds a table after the others (a join); its columns follow theirs in the row.
    pub fn push(
        &mut self,
        table: Arc<TableDesc>,
        name: String,
        derived: Option<Arc<SelectPlan>>,
    ) -> SqlResult<()> {
        if self.tables.iter().any(|t| t.name == name) {
            return Err(SqlError::new(
                SqlState("42712"),
                format!("table name \"{name}\" specified more than once"),
            ));
        }
        let offset = self.width();
        self.tables.push(ScopeTable {
            table,
            name,
            offset,
            derived,
        });
        Ok(())
    }

    /// The number of columns in a row of this scope.
    pub fn width(&self) -> usize {
        self.tables
            .last()
            .map_or(0, |t| t.offset + t.table.columns.len())
    }

    /// The first `n` tables only.
    pub fn prefix(scope: &Scope, n: usize) -> Scope {
        Scope {
            tables: scope.tables.iter().take(n).cloned().collect(),
            merged_away: scope
                .merged_away
                .iter()
                .copied()
                .filter(|&(_, tables)| tables <= n)
                .collect(),
            star: None,
            coalesced: scope
                .coalesced
                .iter()
                .copied()
                .filter(|&(_, _, tables)| tables <= n)
                .collect(),
        }
    }

    /// Makes row position `left`, unqualified or in `SELECT *`, mean `COALESCE(left, right)`
    /// (a FULL JOIN ... USING column).
    pub fn coalesce(&mut self, left: usize, right: usize) {
        self.coalesced.push((left, right, self.tables.len()));
    }

    /// The merged column a FULL JOIN ... USING made of row position `index`, if it did:
    /// `COALESCE(left, right)` named `name`.
    pub fn coalesced(&self, index: usize, name: &str) -> Option<Expr> {
        let &(left, right, _) = self.coalesced.iter().find(|&&(l, _, _)| l == index)?;
        let column = |position: usize| {
            let (table, i) = self.column_at(position)?;
            Some(Expr::Column {
                index: position,
                name: name.to_string(),
                ty: table.table.columns[i].data_type.clone(),
            })
        };
        let (left, right) = (column(left)?, column(right)?);
        let ty = common_type([left.ty(), right.ty()].into_iter()).ok()?;
        Some(Expr::Func(Func::Coalesce, vec![left, right], ty))
    }

    /// Makes an unqualified `name` skip row position `index` (merged away by USING).
    pub fn merge_away(&mut self, index: usize) {
        self.merged_away.push((index, self.tables.len()));
    }

    /// Sets the columns and order of `SELECT *`.
    pub fn set_star(&mut self, positions: Vec<usize>) {
        self.star = Some(positions);
    }

    /// The row positions `SELECT *` shows, if a USING or NATURAL join chose them.
    pub fn star(&self) -> Option<&[usize]> {
        self.star.as_deref()
    }

    /// The table holding row position `index`, and the column's index in that table.
    pub fn column_at(&self, index: usize) -> Option<(&ScopeTable, usize)> {
        self.tables
            .iter()
            .rev()
            .find(|t| t.offset <= index)
            .map(|t| (t, index - t.offset))
    }

    /// Whether an unqualified name may resolve to row position `index`.
    pub fn unqualified_visible(&self, index: usize) -> bool {
        !self.merged_away.iter().any(|&(i, _)| i == index)
    }

    /// The tables, in FROM order.
    pub fn tables(&self) -> &[ScopeTable] {
        &self.tables
    }
}

/// Binds expressions: resolves names, infers parameter types, checks types.
pub struct Binder {
    /// Parameter types so far (index = $n - 1); `Unknown` until inferred.
    pub params: Vec<DataType>,
    /// Subqueries planned ahead of binding (their planning reads the catalog, which binding
    /// cannot), by the address of their AST node.
    pub subqueries: Vec<(usize, SelectPlan)>,
    /// WITH queries in scope, innermost last: a FROM reference to one plans it there. The
    /// flag: from a WITH RECURSIVE.
    pub ctes: Vec<(String, ast::Query, ast::TableAlias, bool)>,
    /// Aggregate calls met while binding (when allowed).
    pub aggregates: Vec<AggCall>,
    /// Window calls met while binding (when allowed).
    pub windows: Vec<WindowCall>,
    /// Inside a window call's arguments or specification.
    in_window: bool,
    allow_aggregates: bool,
    /// The scopes of the queries around the subquery being planned, outermost first: a
    /// name not found in its own scope is looked up there (a correlated reference).
    pub outer: Vec<Scope>,
    /// The outermost position in `outer` a name was found at since this was last reset.
    pub outer_hit: Option<usize>,
    /// Every outer reference bound so far: (position in `outer`, row position there, name).
    pub outer_references: Vec<(usize, usize, String)>,
    /// Recursive WITH queries being planned, innermost last: (name, working table id, its
    /// columns, whether the recursive term referred to it).
    pub working_tables: Vec<(String, usize, Vec<Column>, bool)>,
    /// Working table ids handed out so far.
    pub next_working_table: usize,
    /// The WINDOW clause of the SELECT being bound.
    pub named_windows: Vec<(String, ast::NamedWindowExpr)>,
    /// The session's time zone: a `timestamptz` literal without an offset is read in it
    /// when the statement is planned, as PostgreSQL does.
    pub zone: TimeZone,
    /// The sequences the statement calls by a literal name (nextval, currval, setval), with
    /// how many nextval calls per row.
    pub sequences: Vec<SequenceUse>,
    /// Views being planned inside each other, outermost first (a view that reads itself
    /// would never end).
    pub views: Vec<String>,
    /// The schemas an unqualified relation name is looked for in, in order (the session's
    /// `search_path`); CREATE puts one in the first that exists.
    pub search_path: Vec<String>,
    /// The statement reads the system catalog (a `pg_catalog` relation, or a function that
    /// looks something up in it): it is loaded before the statement runs.
    pub system_catalog: bool,
}

impl Binder {
    /// A binder with the parameter types the client declared, in the session's time zone.
    pub fn new(declared: &[Option<DataType>], zone: TimeZone) -> Self {
        let params = declared
            .iter()
            .map(|t| t.clone().unwrap_or(DataType::Unknown))
            .collect();
        Binder {
            params,
            subqueries: Vec::new(),
            ctes: Vec::new(),
            aggregates: Vec::new(),
            windows: Vec::new(),
            in_window: false,
            outer: Vec::new(),
            outer_hit: None,
            outer_references: Vec::new(),
            working_tables: Vec::new(),
            next_working_table: 0,
            named_windows: Vec::new(),
            allow_aggregates: false,
            zone,
            search_path: vec!["public".into()],
            sequences: Vec::new(),
            views: Vec::new(),
            system_catalog: false,
        }
    }

    /// Binds `expr` in `scope`.
    pub fn bind(&mut self, expr: &ast::Expr, scope: &Scope) -> SqlResult<Expr> {
        use ast::Expr as A;
        Ok(match expr {
            A::Identifier(ident) => self.column(scope, None, ident)?,
            A::CompoundIdentifier(parts) => match parts.as_slice() {
                [table, column] => self.column(scope, Some(table), column)?,
                // A schema-qualified table is named by its own name in the query.
                [_schema, table, column] => self.column(scope, Some(table), column)?,
                _ => {
                    return Err(SqlError::new(
                        SqlState::UNDEFINED_COLUMN,
                        format!("column reference \"{expr}\" is not supported"),
                    ))
                }
            },
            A::Value(value) => match &value.value {
                ast::Value::Placeholder(p) => placeholder(self, p)?,
                other => literal(other)?,
            },
            A::Array(array) => {
                let elements = array
                    .elem
                    .iter()
                    .map(|e| self.bind(e, scope))
                    .collect::<SqlResult<Vec<_>>>()?;
                let element = common_type(elements.iter().map(Expr::ty))?;
                let element = if element == DataType::Unknown {
                    DataType::Text
                } else {
                    element
                };
                if matches!(element, DataType::Array(_)) {
                    return Err(SqlError::unsupported(
                        "multidimensional arrays are not supported",
                    ));
                }
                let elements = elements
                    .into_iter()
                    .map(|e| self.coerce(e, &element))
                    .collect::<SqlResult<Vec<_>>>()?;
                Expr::Func(
                    Func::Array(ArrayFunc::Make),
                    elements,
                    DataType::Array(Box::new(element)),
                )
            }
            A::CompoundFieldAccess { root, access_chain } => {
                let mut value = self.bind(root, scope)?;
                for access in access_chain {
                    let ast::AccessExpr::Subscript(ast::Subscript::Index { index }) = access else {
                        return Err(SqlError::unsupported(format!(
                            "{access} is not supported (only array subscripts)"
                        )));
                    };
                    // int2vector subscripts count from 0.
                    let from_zero = value.ty() == DataType::Int2Vector;
                    if from_zero {
                        value =
                            Expr::Cast(Box::new(value), DataType::Array(Box::new(DataType::Int2)));
                    }
                    let DataType::Array(element) = value.ty() else {
                        return Err(SqlError::new(
                            SqlState::DATATYPE_MISMATCH,
                            format!(
                                "cannot subscript type {} because it does not support subscripting",
                                value.ty()
                            ),
                        ));
                    };
                    let index = self.bind(index, scope)?;
                    let index = self.coerce(index, &DataType::Int4)?;
                    if !matches!(index.ty(), DataType::Int2 | DataType::Int4 | DataType::Int8) {
                        return Err(SqlError::new(
                            SqlState::DATATYPE_MISMATCH,
                            "array subscript must have type integer",
                        ));
                    }
                    let index = match from_zero {
                        true => Expr::Arith(
                            crate::types::ops::ArithOp::Add,
                            Box::new(index),
                            Box::new(Expr::Literal(Value::Int4(1), DataType::Int4)),
                            DataType::Int4,
                        ),
                        false => index,
                    };
                    value = Expr::Func(
                        Func::Array(ArrayFunc::Subscript),
                        vec![value, index],
                        *element,
                    );
                }
                value
            }
            A::Interval(interval) => {
                let text = match interval.value.as_ref() {
                    A::Value(v) => string_value(&v.value),
                    _ => None,
                }
                .ok_or_else(|| SqlError::syntax("expected a string after INTERVAL"))?;
                if interval.last_field.is_some() {
                    return Err(SqlError::unsupported(
                        "INTERVAL ... TO ... field ranges are not supported yet",
                    ));
                }
                // `INTERVAL '3' DAY`: a bare number counts the leading field.
                let text = match &interval.leading_field {
                    Some(field) if text.trim().parse::<f64>().is_ok() => {
                        format!("{text} {field}")
                    }
                    _ => text,
                };
                Expr::Literal(
                    Value::Interval(crate::types::interval::parse_interval(&text)?),
                    DataType::Interval,
                )
            }
            A::TypedString(typed) => {
                let ty = DataType::from_ast(&typed.data_type)?;
                let text = string_value(&typed.value.value).ok_or_else(|| {
                    SqlError::syntax(format!("expected a string after {}", typed.data_type))
                })?;
                Expr::Literal(text::parse_text(&ty, &text, &self.zone)?, ty)
            }
            A::Nested(inner) => self.bind(inner, scope)?,
            A::UnaryOp { op, expr } => {
                let inner = self.bind(expr, scope)?;
                match op {
                    ast::UnaryOperator::Not => {
                        let inner = self.coerce(inner, &DataType::Bool)?;
                        Expr::Not(Box::new(inner))
                    }
                    ast::UnaryOperator::Minus => {
                        if let Expr::Literal(value, ty) = &inner {
                            if ty.is_numeric() {
                                return Ok(Expr::Literal(ops::negate(value)?, ty.clone()));
                            }
                        }
                        let inner = match inner.ty() {
                            DataType::Interval => inner,
                            _ => self.numeric_operand(inner)?,
                        };
                        let ty = inner.ty();
                        Expr::Neg(Box::new(inner), ty)
                    }
                    ast::UnaryOperator::Plus => self.numeric_operand(inner)?,
                    other => {
                        return Err(SqlError::unsupported(format!(
                            "operator {other} is not supported"
                        )))
                    }
                }
            }
            A::BinaryOp { left, op, right } => self.binary(left, op, right, scope)?,
            A::IsNull(e) => Expr::IsNull(Box::new(self.bind(e, scope)?), false),
            A::IsNotNull(e) => Expr::IsNull(Box::new(self.bind(e, scope)?), true),
            A::IsTrue(e) | A::IsNotTrue(e) | A::IsFalse(e) | A::IsNotFalse(e) => {
                let inner = self.bind(e, scope)?;
                let inner = self.coerce(inner, &DataType::Bool)?;
                let want = matches!(expr, A::IsTrue(_) | A::IsNotFalse(_));
                let negate = matches!(expr, A::IsNotTrue(_) | A::IsNotFalse(_));
                // x IS TRUE = coalesce(x = true, false); IS NOT TRUE is its negation.
                let test = Expr::Func(
                    Func::Coalesce,
                    vec![
                        Expr::Cmp(
                            CmpOp::Eq,
                            Box::new(inner),
                            Box::new(Expr::Literal(Value::Bool(want), DataType::Bool)),
                        ),
                        Expr::Literal(Value::Bool(false), DataType::Bool),
                    ],
                    DataType::Bool,
                );
                if negate ^ !want {
                    Expr::Not(Box::new(test))
                } else {
                    test
                }
            }
            A::IsDistinctFrom(a, b) | A::IsNotDistinctFrom(a, b) => {
                let (a, b) = (self.bind(a, scope)?, self.bind(b, scope)?);
                let (a, b) = self.comparable(a, b, "IS DISTINCT FROM")?;
                // Not distinct: both NULL, or equal.
                let both_null = Expr::And(
                    Box::new(Expr::IsNull(Box::new(a.clone()), false)),
                    Box::new(Expr::IsNull(Box::new(b.clone()), false)),
                );
                let equal = Expr::Func(
                    Func::Coalesce,
                    vec![
                        Expr::Cmp(CmpOp::Eq, Box::new(a), Box::new(b)),
                        Expr::Literal(Value::Bool(false), DataType::Bool),
                    ],
                    DataType::Bool,
                );
                let not_distinct = Expr::Or(Box::new(both_null), Box::new(equal));
                if matches!(expr, A::IsDistinctFrom(..)) {
                    Expr::Not(Box::new(not_distinct))
                } else {
                    not_distinct
                }
            }
            A::InList {
                expr,
                list,
                negated,
            } => {
                let mut value = self.bind(expr, scope)?;
                let mut items = Vec::with_capacity(list.len());
                for item in list {
                    let item = self.bind(item, scope)?;
                    let (v, i) = self.comparable(value, item, "IN")?;
                    value = v;
                    items.push(i);
                }
                Expr::InList(Box::new(value), items, *negated)
            }
            A::Between {
                expr,
                negated,
                low,
                high,
            } => {
                let value = self.bind(expr, scope)?;
                let low = self.bind(low, scope)?;
                let (v, low) = self.comparable(value, low, "BETWEEN")?;
                let high = self.bind(high, scope)?;
                let (v, high) = self.comparable(v, high, "BETWEEN")?;
                let within = Expr::And(
                    Box::new(Expr::Cmp(CmpOp::GtEq, Box::new(v.clone()), Box::new(low))),
                    Box::new(Expr::Cmp(CmpOp::LtEq, Box::new(v), Box::new(high))),
                );
                if *negated {
                    Expr::Not(Box::new(within))
                } else {
                    within
                }
            }
            A::Like {
                negated,
                expr: value,
                pattern,
                escape_char,
                any: false,
            } => self.like(value, pattern, escape_char, *negated, false, scope)?,
            A::ILike {
                negated,
                expr: value,
                pattern,
                escape_char,
                any: false,
            } => self.like(value, pattern, escape_char, *negated, true, scope)?,
            A::SimilarTo {
                negated,
                expr: value,
                pattern,
                escape_char,
            } => {
                let mut args = vec![self.bind(value, scope)?, self.bind(pattern, scope)?];
                if let Some(escape) = escape_char {
                    args.push(self.bind(escape, scope)?);
                }
                let args = args
                    .into_iter()
                    .map(|arg| self.text_operand(arg))
                    .collect::<SqlResult<Vec<_>>>()?;
                if args.iter().any(|a| !a.ty().is_text()) {
                    return Err(operator_error("~", &args[0].ty(), &args[1].ty()));
                }
                Expr::Func(
                    Func::Regex(RegexFunc::Similar { negated: *negated }),
                    args,
                    DataType::Bool,
                )
            }
            A::Cast {
                kind: ast::CastKind::Cast | ast::CastKind::DoubleColon,
                expr,
                data_type,
                format: None,
            } if crate::system::functions::reg_kind(data_type).is_some() => {
                let inner = self.bind(expr, scope)?;
                self.reg_cast(data_type, inner)?
            }
            A::Cast {
                kind: ast::CastKind::Cast | ast::CastKind::DoubleColon,
                expr,
                data_type,
                format: None,
            } => {
                let ty = DataType::from_ast(data_type)?;
                match self.bind(expr, scope)? {
                    Expr::Literal(Value::Text(s), DataType::Unknown) => Expr::Literal(
                        cast::cast(
                            text::parse_text(&ty, &s, &self.zone)?,
                            &ty,
                            true,
                            &self.zone,
                        )?,
                        ty,
                    ),
                    Expr::Literal(Value::Null, _) => Expr::Literal(Value::Null, ty),
                    Expr::Param {
                        index,
                        ty: DataType::Unknown,
                    } => {
                        // As PostgreSQL: `$1::varchar(3)` is a varchar parameter cast to
                        // varchar(3), so a longer value is truncated, not refused.
                        let unbounded = match &ty {
                            DataType::Varchar(Some(_)) => DataType::Varchar(None),
                            DataType::Numeric {
                                precision: Some(_), ..
                            } => DataType::Numeric {
                                precision: None,
                                scale: None,
                            },
                            ty => ty.clone(),
                        };
                        self.params[index] = unbounded.clone();
                        let param = Expr::Param {
                            index,
                            ty: unbounded.clone(),
                        };
                        if unbounded == ty {
                            param
                        } else {
                            Expr::Cast(Box::new(param), ty)
                        }
                    }
                    inner => Expr::Cast(Box::new(inner), ty),
                }
            }
            A::Subquery(query) => {
                let (index, plan) = self.subquery(query)?;
                if plan.columns.len() != 1 {
                    return Err(SqlError::syntax("subquery must return only one column"));
                }
                let ty = plan.columns[0].data_type.clone();
                Expr::Subquery {
                    index,
                    correlated: self.subqueries[index].1.correlated,
                    usage: SubqueryUse::Scalar,
                    ty,
                }
            }
            A::Exists { subquery, negated } => {
                let (index, _) = self.subquery(subquery)?;
                Expr::Subquery {
                    index,
                    correlated: self.subqueries[index].1.correlated,
                    usage: SubqueryUse::Exists { negated: *negated },
                    ty: DataType::Bool,
                }
            }
            A::AnyOp {
                left,
                compare_op,
                right,
                ..
            }
            | A::AllOp {
                left,
                compare_op,
                right,
            } => {
                let all = matches!(expr, A::AllOp { .. });
                let ast::Expr::Subquery(query) = right.as_ref() else {
                    return self.quantified_array(left, compare_op, right, all, scope);
                };
                let op = match compare_op {
                    ast::BinaryOperator::Eq => CmpOp::Eq,
                    ast::BinaryOperator::NotEq => CmpOp::NotEq,
                    ast::BinaryOperator::Lt => CmpOp::Lt,
                    ast::BinaryOperator::LtEq => CmpOp::LtEq,
                    ast::BinaryOperator::Gt => CmpOp::Gt,
                    ast::BinaryOperator::GtEq => CmpOp::GtEq,
                    other => {
                        return Err(SqlError::unsupported(format!(
                            "{other} ANY/ALL is not supported"
                        )))
                    }
                };
                let (index, plan) = self.subquery(query)?;
                if plan.columns.len() != 1 {
                    return Err(SqlError::syntax("subquery has too many columns"));
                }
                let column_type = plan.columns[0].data_type.clone();
                let value = self.bind(left, scope)?;
                let value = self.coerce(value, &column_type)?;
                let (value, as_moments) =
                    self.comparable_to_elements(value, &column_type, op.symbol())?;
                if as_moments {
                    self.subquery_as_moments(index)?;
                }
                Expr::Subquery {
                    index,
                    correlated: self.subqueries[index].1.correlated,
                    usage: SubqueryUse::Quantified {
                        value: Box::new(value),
                        op,
                        all,
                    },
                    ty: DataType::Bool,
                }
            }
            A::InSubquery {
                expr: value,
                subquery,
                negated,
            } => {
                let (index, plan) = self.subquery(subquery)?;
                if plan.columns.len() != 1 {
                    return Err(SqlError::syntax("subquery has too many columns"));
                }
                let column_type = plan.columns[0].data_type.clone();
                let value = self.bind(value, scope)?;
                let value = self.coerce(value, &column_type)?;
                let (value, as_moments) = self.comparable_to_elements(value, &column_type, "=")?;
                if as_moments {
                    self.subquery_as_moments(index)?;
                }
                Expr::Subquery {
                    index,
                    correlated: self.subqueries[index].1.correlated,
                    usage: SubqueryUse::In {
                        value: Box::new(value),
                        negated: *negated,
                    },
                    ty: DataType::Bool,
                }
            }
            A::Case {
                operand,
                conditions,
                else_result,
                ..
            } => self.case(operand, conditions, else_result, scope)?,
            A::Function(function) => self.function(function, scope)?,
            A::AtTimeZone {
                timestamp,
                time_zone,
            } => {
                let args = vec![self.bind(time_zone, scope)?, self.bind(timestamp, scope)?];
                self.scalar_function("timezone", args)?
            }
            A::Extract {
                field, expr: value, ..
            } => {
                let value = self.bind(value, scope)?;
                let value = if value.ty() == DataType::Unknown {
                    self.coerce(value, &DataType::Timestamp)?
                } else {
                    value
                };
                if !matches!(
                    value.ty(),
                    DataType::Date
                        | DataType::Timestamp
                        | DataType::TimestampTz
                        | DataType::Interval
                ) {
                    return Err(no_function("extract", &[DataType::Text, value.ty()]));
                }
                let field = field.to_string().to_lowercase();
                Expr::Func(
                    Func::Extract,
                    vec![Expr::Literal(Value::Text(field), DataType::Text), value],
                    DataType::Numeric {
                        precision: None,
                        scale: None,
                    },
                )
            }
            A::Substring {
                expr: text,
                substring_from,
                substring_for,
                ..
            } => {
                let text = self.bind(text, scope)?;
                let text = self.text_operand(text)?;
                let from = match substring_from {
                    Some(from) => self.bind(from, scope)?,
                    None => Expr::Literal(Value::Int4(1), DataType::Int4),
                };
                let from = self.coerce(from, &DataType::Int4)?;
                let mut args = vec![text, from];
                if let Some(count) = substring_for {
                    let count = self.bind(count, scope)?;
                    args.push(self.coerce(count, &DataType::Int4)?);
                }
                Expr::Func(Func::Substr, args, DataType::Text)
            }
            A::Position { expr: needle, r#in } => {
                let needle = self.bind(needle, scope)?;
                let needle = self.text_operand(needle)?;
                let haystack = self.bind(r#in, scope)?;
                let haystack = self.text_operand(haystack)?;
                Expr::Func(Func::Strpos, vec![haystack, needle], DataType::Int4)
            }
            A::Trim {
                trim_where,
                trim_what,
                expr: text,
                trim_characters,
            } => {
                if trim_characters.is_some() {
                    return Err(SqlError::unsupported(
                        "TRIM with a character list is not supported",
                    ));
                }
                let func = match trim_where {
                    Some(ast::TrimWhereField::Leading) => Func::Ltrim,
                    Some(ast::TrimWhereField::Trailing) => Func::Rtrim,
                    _ => Func::Btrim,
                };
                let text = self.bind(text, scope)?;
                let mut args = vec![self.text_operand(text)?];
                if let Some(what) = trim_what {
                    let what = self.bind(what, scope)?;
                    args.push(self.text_operand(what)?);
                }
                Expr::Func(func, args, DataType::Text)
            }
            A::Ceil {
                expr: value,
                field: ast::CeilFloorKind::DateTimeField(ast::DateTimeField::NoDateTime),
            }
            | A::Floor {
                expr: value,
                field: ast::CeilFloorKind::DateTimeField(ast::DateTimeField::NoDateTime),
            } => {
                let func = if matches!(expr, A::Ceil { .. }) {
                    Func::Ceil
                } else {
                    Func::Floor
                };
                let value = self.bind(value, scope)?;
                let value = if value.ty() == DataType::Unknown {
                    self.coerce(value, &DataType::Float8)?
                } else {
                    value
                };
                let ty = match value.ty() {
                    DataType::Numeric { .. } => DataType::Numeric {
                        precision: None,
                        scale: None,
                    },
                    t if t.is_numeric() => DataType::Float8,
                    other => {
                        return Err(no_function(
                            if func == Func::Ceil { "ceil" } else { "floor" },
                            &[other],
                        ))
                    }
                };
                Expr::Func(func, vec![value], ty)
            }
            A::Collate { expr, collation } => {
                // Text compares byte-wise here, which is the C collation's order: the
                // default collation is C, and C and POSIX are accepted as names of it.
                let name = collation.to_string();
                let name = name.strip_prefix("pg_catalog.").unwrap_or(&name);
                if !matches!(
                    name,
                    "default" | "\"default\"" | "\"C\"" | "\"POSIX\"" | "C" | "POSIX"
                ) {
                    return Err(SqlError::new(
                        SqlState::UNDEFINED_OBJECT,
                        format!("collation {name} for encoding \"UTF8\" does not exist"),
                    ));
                }
                self.bind(expr, scope)?
            }
            other => {
                return Err(SqlError::unsupported(format!(
                    "expression {other} is not supported yet"
                )))
            }
        })
    }

    fn like(
        &mut self,
        value: &ast::Expr,
        pattern: &ast::Expr,
        escape_char: &Option<Box<ast::Expr>>,
        negated: bool,
        case_insensitive: bool,
        scope: &Scope,
    ) -> SqlResult<Expr> {
        let escape = match escape_char.as_deref() {
            None => Some('\\'),
            Some(ast::Expr::Value(v)) => match string_value(&v.value) {
                Some(text) if text.is_empty() => None,
                Some(text) if text.chars().count() == 1 => text.chars().next(),
                _ => {
                    return Err(SqlError::new(
                        SqlState::INVALID_ESCAPE_SEQUENCE,
                        "invalid escape string",
                    )
                    .with_hint("Escape string must be empty or one character."))
                }
            },
            Some(_) => return Err(SqlError::unsupported("ESCAPE must be a string literal")),
        };
        let value = self.bind(value, scope)?;
        let value = self.coerce(value, &DataType::Text)?;
        let pattern = self.bind(pattern, scope)?;
        let pattern = self.coerce(pattern, &DataType::Text)?;
        if !value.ty().is_text() || !pattern.ty().is_text() {
            return Err(operator_error("~~", &value.ty(), &pattern.ty()));
        }
        Ok(Expr::Like {
            expr: Box::new(value),
            pattern: Box::new(pattern),
            negated,
            case_insensitive,
            escape,
        })
    }

    fn column(
        &mut self,
        scope: &Scope,
        qualifier: Option<&ast::Ident>,
        ident: &ast::Ident,
    ) -> SqlResult<Expr> {
        let name = ident_name(ident);
        let (line, column) = (ident.span.start.line, ident.span.start.column);
        let missing = || {
            match qualifier {
                Some(q) => SqlError::new(
                    SqlState::UNDEFINED_COLUMN,
                    format!("column {}.{name} does not exist", ident_name(q)),
                ),
                None => SqlError::new(
                    SqlState::UNDEFINED_COLUMN,
                    format!("column \"{name}\" does not exist"),
                ),
            }
            .at(line, column)
        };
        let ambiguous = || {
            SqlError::new(
                SqlState::AMBIGUOUS_COLUMN,
                format!("column reference \"{name}\" is ambiguous"),
            )
            .at(line, column)
        };
        let (table, index) = match Self::resolve(scope, qualifier, &name) {
            Resolution::Found(table, index) => (table, index),
            Resolution::Ambiguous => return Err(ambiguous()),
            Resolution::NoColumn if qualifier.is_some() => return Err(missing()),
            unresolved => {
                // A column of an enclosing query (the innermost that has it) makes a
                // correlated reference.
                for position in (0..self.outer.len()).rev() {
                    match Self::resolve(&self.outer[position], qualifier, &name) {
                        Resolution::Found(table, index) => {
                            self.outer_hit =
                                Some(self.outer_hit.map_or(position, |p| p.min(position)));
                            // As written, for PostgreSQL's grouping error.
                            let written = match qualifier {
                                Some(q) => format!("{}.{name}", ident_name(q)),
                                None => name.clone(),
                            };
                            self.outer_references
                                .push((position, table.offset + index, written));
                            return Ok(Expr::Outer {
                                level: self.outer.len() - 1 - position,
                                index: table.offset + index,
                                name: format!("{}.{name}", table.name),
                                ty: table.table.columns[index].data_type.clone(),
                            });
                        }
                        Resolution::Ambiguous => return Err(ambiguous()),
                        Resolution::NoColumn if qualifier.is_some() => return Err(missing()),
                        _ => {}
                    }
                }
                // SQL's value functions written without parentheses.
                if qualifier.is_none() && ident.quote_style.is_none() {
                    let func = match name.as_str() {
                        "current_role" | "current_user" | "session_user" | "user" => {
                            Some(Func::CurrentUser)
                        }
                        "current_catalog" => Some(Func::CurrentDatabase),
                        "current_schema" => Some(Func::CurrentSchema),
                        _ => None,
                    };
                    if let Some(func) = func {
                        return Ok(Expr::Func(func, vec![], DataType::Text));
                    }
                }
                return Err(match (unresolved, qualifier) {
                    (Resolution::NoTable, Some(q)) => SqlError::new(
                        SqlState::UNDEFINED_TABLE,
                        format!("missing FROM-clause entry for table \"{}\"", ident_name(q)),
                    ),
                    _ => missing(),
                });
            }
        };
        if qualifier.is_none() {
            if let Some(merged) = scope.coalesced(table.offset + index, &name) {
                return Ok(merged);
            }
        }
        let display = if scope.tables.len() > 1 {
            format!("{}.{name}", table.name)
        } else {
            name
        };
        Ok(Expr::Column {
            index: table.offset + index,
            name: display,
            ty: table.table.columns[index].data_type.clone(),
        })
    }

    /// Where `qualifier.name` is in `scope`.
    fn resolve<'s>(scope: &'s Scope, qualifier: Option<&ast::Ident>, name: &str) -> Resolution<'s> {
        let candidates: Vec<&ScopeTable> = match qualifier {
            Some(q) => {
                let wanted = ident_name(q);
                let found: Vec<&ScopeTable> =
                    scope.tables.iter().filter(|t| t.name == wanted).collect();
                if found.is_empty() {
                    return Resolution::NoTable;
                }
                found
            }
            None => scope.tables.iter().collect(),
        };
        let mut matches = candidates.into_iter().filter_map(|t| {
            t.table
                .column_index(name)
                .filter(|&i| !t.table.columns[i].hidden)
                .filter(|&i| qualifier.is_some() || scope.unqualified_visible(t.offset + i))
                .map(|i| (t, i))
        });
        match (matches.next(), matches.next()) {
            (None, _) => Resolution::NoColumn,
            (Some((table, index)), None) => Resolution::Found(table, index),
            (Some(_), Some(_)) => Resolution::Ambiguous,
        }
    }

    fn binary(
        &mut self,
        left: &ast::Expr,
        op: &ast::BinaryOperator,
        right: &ast::Expr,
        scope: &Scope,
    ) -> SqlResult<Expr> {
        use ast::BinaryOperator as B;
        if let B::PGCustomBinaryOperator(parts) = op {
            // OPERATOR(pg_catalog.~): the built-in operator, named explicitly.
            let symbol = match parts.as_slice() {
                [symbol] => Some(symbol.as_str()),
                [schema, symbol] if schema == "pg_catalog" => Some(symbol.as_str()),
                _ => None,
            };
            let plain = match symbol {
                Some("=") => Some(B::Eq),
                Some("<>" | "!=") => Some(B::NotEq),
                Some("<") => Some(B::Lt),
                Some("<=") => Some(B::LtEq),
                Some(">") => Some(B::Gt),
                Some(">=") => Some(B::GtEq),
                Some("+") => Some(B::Plus),
                Some("-") => Some(B::Minus),
                Some("*") => Some(B::Multiply),
                Some("/") => Some(B::Divide),
                Some("%") => Some(B::Modulo),
                Some("||") => Some(B::StringConcat),
                Some("~") => Some(B::PGRegexMatch),
                Some("~*") => Some(B::PGRegexIMatch),
                Some("!~") => Some(B::PGRegexNotMatch),
                Some("!~*") => Some(B::PGRegexNotIMatch),
                _ => None,
            };
            return match plain {
                Some(plain) => self.binary(left, &plain, right, scope),
                None => Err(SqlError::new(
                    SqlState::UNDEFINED_FUNCTION,
                    format!("operator does not exist: {op}"),
                )),
            };
        }
        let (l, r) = (self.bind(left, scope)?, self.bind(right, scope)?);
        let cmp = |op| -> Option<CmpOp> { Some(op) };
        let comparison = match op {
            B::Eq => cmp(CmpOp::Eq),
            B::NotEq => cmp(CmpOp::NotEq),
            B::Lt => cmp(CmpOp::Lt),
            B::LtEq => cmp(CmpOp::LtEq),
            B::Gt => cmp(CmpOp::Gt),
            B::GtEq => cmp(CmpOp::GtEq),
            _ => None,
        };
        if let Some(cmp_op) = comparison {
            let (l, r) = self.comparable(l, r, cmp_op.symbol())?;
            return Ok(Expr::Cmp(cmp_op, Box::new(l), Box::new(r)));
        }
        let json = match op {
            B::Arrow => Some(JsonFunc::Get),
            B::LongArrow => Some(JsonFunc::GetText),
            B::HashArrow => Some(JsonFunc::Path),
            B::HashLongArrow => Some(JsonFunc::PathText),
            B::AtArrow => Some(JsonFunc::Contains),
            B::ArrowAt => Some(JsonFunc::ContainedBy),
            B::Question => Some(JsonFunc::HasKey),
            B::QuestionPipe => Some(JsonFunc::HasAnyKey),
            B::QuestionAnd => Some(JsonFunc::HasAllKeys),
            _ => None,
        };
        let arrays = matches!(l.ty(), DataType::Array(_)) || matches!(r.ty(), DataType::Array(_));
        if arrays && matches!(op, B::AtArrow | B::ArrowAt | B::PGOverlap | B::StringConcat) {
            return self.array_operator(op, l, r);
        }
        if let Some(func) = json {
            return self.json_operator(func, op, l, r);
        }
        // jsonb || jsonb and jsonb - key / index.
        let jsonb = l.ty() == DataType::Jsonb || r.ty() == DataType::Jsonb;
        if jsonb && matches!(op, B::StringConcat) {
            let l = self.coerce(l, &DataType::Jsonb)?;
            let r = self.coerce(r, &DataType::Jsonb)?;
            if l.ty() != DataType::Jsonb || r.ty() != DataType::Jsonb {
                return Err(operator_error("||", &l.ty(), &r.ty()));
            }
            return Ok(Expr::Func(
                Func::Json(JsonFunc::Concat),
                vec![l, r],
                DataType::Jsonb,
            ));
        }
        if l.ty() == DataType::Jsonb && matches!(op, B::Minus) {
            let r = self.text_operand(r)?;
            let fits = r.ty().is_text()
                || matches!(r.ty(), DataType::Int2 | DataType::Int4 | DataType::Int8);
            if !fits {
                return Err(operator_error("-", &l.ty(), &r.ty()));
            }
            return Ok(Expr::Func(
                Func::Json(JsonFunc::Remove),
                vec![l, r],
                DataType::Jsonb,
            ));
        }
        let regex = match op {
            B::PGRegexMatch => Some((false, false)),
            B::PGRegexIMatch => Some((true, false)),
            B::PGRegexNotMatch => Some((false, true)),
            B::PGRegexNotIMatch => Some((true, true)),
            _ => None,
        };
        if let Some((case_insensitive, negated)) = regex {
            let l = self.text_operand(l)?;
            let r = self.text_operand(r)?;
            if !l.ty().is_text() || !r.ty().is_text() {
                return Err(operator_error(&op.to_string(), &l.ty(), &r.ty()));
            }
            return Ok(Expr::Func(
                Func::Regex(RegexFunc::Match {
                    case_insensitive,
                    negated,
                }),
                vec![l, r],
                DataType::Bool,
            ));
        }
        let arith = match op {
            B::Plus => Some(ArithOp::Add),
            B::Minus => Some(ArithOp::Sub),
            B::Multiply => Some(ArithOp::Mul),
            B::Divide => Some(ArithOp::Div),
            B::Modulo => Some(ArithOp::Mod),
            _ => None,
        };
        if let Some(arith_op) = arith {
            let (l, r) = self.interval_operands(arith_op, l, r)?;
            let (l, r) = self.unify_unknown(l, r)?;
            let ty = ops::arith_result_type(arith_op, &l.ty(), &r.ty())?;
            return Ok(Expr::Arith(arith_op, Box::new(l), Box::new(r), ty));
        }
        match op {
            B::And | B::Or => {
                let what = if matches!(op, B::And) { "AND" } else { "OR" };
                let l = self.boolean(l, what)?;
                let r = self.boolean(r, what)?;
                Ok(if matches!(op, B::And) {
                    Expr::And(Box::new(l), Box::new(r))
                } else {
                    Expr::Or(Box::new(l), Box::new(r))
                })
            }
            B::StringConcat => {
                let l = self.text_operand(l)?;
                let r = self.text_operand(r)?;
                Ok(Expr::Concat(Box::new(l), Box::new(r)))
            }
            other => Err(SqlError::unsupported(format!(
                "operator {other} is not supported yet"
            ))),
        }
    }

    fn text_operand(&mut self, e: Expr) -> SqlResult<Expr> {
        match e.ty() {
            DataType::Unknown => self.coerce(e, &DataType::Text),
            _ => Ok(e),
        }
    }

    fn numeric_operand(&mut self, e: Expr) -> SqlResult<Expr> {
        let e = if e.ty() == DataType::Unknown {
            self.coerce(
                e,
                &DataType::Numeric {
                    precision: None,
                    scale: None,
                },
            )?
        } else {
            e
        };
        if !e.ty().is_numeric() {
            return Err(SqlError::new(
                SqlState::UNDEFINED_FUNCTION,
                format!("operator does not exist: - {}", e.ty()),
            ));
        }
        Ok(e)
    }

    /// Gives unknown-typed operands the other side's type (text if both are unknown).
    /// Types an untyped operand as PostgreSQL's operators do around dates and intervals:
    /// `timestamp + '1 day'` and `now() - '1 hour'` read the literal as an interval,
    /// `interval * '2'` as double precision.
    fn interval_operands(&mut self, op: ArithOp, l: Expr, r: Expr) -> SqlResult<(Expr, Expr)> {
        use DataType as T;
        let instant = |t: &T| matches!(t, T::Date | T::Timestamp | T::TimestampTz);
        match (l.ty(), r.ty()) {
            // (`timestamp - 'literal'` reads a timestamp, as PostgreSQL does.)
            (t, T::Unknown) if op == ArithOp::Add && instant(&t) => {
                Ok((l, self.coerce(r, &T::Interval)?))
            }
            (T::Unknown, t) if op == ArithOp::Add && instant(&t) => {
                Ok((self.coerce(l, &T::Interval)?, r))
            }
            (T::Interval, T::Unknown) if matches!(op, ArithOp::Mul | ArithOp::Div) => {
                Ok((l, self.coerce(r, &T::Float8)?))
            }
            (T::Unknown, T::Interval) if op == ArithOp::Mul => Ok((self.coerce(l, &T::Float8)?, r)),
            // timestamptz minus a date or timestamp: both as moments in the session's zone.
            (T::TimestampTz, T::Date | T::Timestamp) if op == ArithOp::Sub => {
                Ok((l, Expr::Cast(Box::new(r), T::TimestampTz)))
            }
            (T::Date | T::Timestamp, T::TimestampTz) if op == ArithOp::Sub => {
                Ok((Expr::Cast(Box::new(l), T::TimestampTz), r))
            }
            _ => Ok((l, r)),
        }
    }

    /// [`Self::comparable`] for a value against elements computed elsewhere (an array's, a
    /// subquery's column) of type `element`: the value as it compares, and whether the
    /// elements must be read as timestamptz (a date or timestamp meeting a timestamptz).
    fn comparable_to_elements(
        &mut self,
        value: Expr,
        element: &DataType,
        op: &str,
    ) -> SqlResult<(Expr, bool)> {
        let probe = Expr::Literal(Value::Null, element.clone());
        let (value, probe) = self.comparable(value, probe, op)?;
        Ok((value, matches!(probe, Expr::Cast(..))))
    }

    /// Makes subquery `index` yield its one column as timestamptz (see
    /// [`Self::comparable_to_elements`]).
    fn subquery_as_moments(&mut self, index: usize) -> SqlResult<()> {
        let Some((_, plan)) = self.subqueries.get_mut(index) else {
            return Err(SqlError::internal("subquery index"));
        };
        if plan.set_operation.is_some() || plan.recursive.is_some() || plan.projection.len() != 1 {
            return Err(SqlError::unsupported(
                "comparing timestamptz with the date or timestamp rows of a set operation; cast them to timestamptz",
            ));
        }
        let column = plan.projection.remove(0);
        plan.projection
            .push(Expr::Cast(Box::new(column), DataType::TimestampTz));
        plan.columns[0].data_type = DataType::TimestampTz;
        Ok(())
    }

    fn unify_unknown(&mut self, l: Expr, r: Expr) -> SqlResult<(Expr, Expr)> {
        match (l.ty(), r.ty()) {
            (DataType::Unknown, DataType::Unknown) => Ok((
                self.coerce(l, &DataType::Text)?,
                self.coerce(r, &DataType::Text)?,
            )),
            (DataType::Unknown, ty) => Ok((self.coerce(l, &ty)?, r)),
            (ty, DataType::Unknown) => {
                let r = self.coerce(r, &ty)?;
                Ok((l, r))
            }
            _ => Ok((l, r)),
        }
    }

    /// Makes two operands comparable, or fails with 42883 as PostgreSQL does.
    pub fn comparable(&mut self, l: Expr, r: Expr, op: &str) -> SqlResult<(Expr, Expr)> {
        let (l, r) = self.unify_unknown(l, r)?;
        let (lt, rt) = (l.ty(), r.ty());
        let compatible = lt == rt
            || (lt.is_numeric() && rt.is_numeric())
            || (lt.is_text() && rt.is_text())
            || (matches!(
                lt,
                DataType::Date | DataType::Timestamp | DataType::TimestampTz
            ) && matches!(
                rt,
                DataType::Date | DataType::Timestamp | DataType::TimestampTz
            ));
        if !compatible {
            return Err(operator_error(op, &lt, &rt));
        }
        // A date or timestamp meets a timestamptz as the moment it names in the session's
        // time zone (a cast evaluated when the statement runs).
        let to_moment = |e: Expr| match e.ty() {
            DataType::Date | DataType::Timestamp => Expr::Cast(Box::new(e), DataType::TimestampTz),
            _ => e,
        };
        Ok(match (&lt, &rt) {
            (DataType::TimestampTz, DataType::Date | DataType::Timestamp) => (l, to_moment(r)),
            (DataType::Date | DataType::Timestamp, DataType::TimestampTz) => (to_moment(l), r),
            _ => (l, r),
        })
    }

    /// `e` as a condition of `what` (WHERE, JOIN/ON, FILTER, AND, OR): boolean, or 42804.
    pub fn boolean(&mut self, e: Expr, what: &str) -> SqlResult<Expr> {
        let e = self.coerce(e, &DataType::Bool)?;
        if e.ty() != DataType::Bool {
            return Err(SqlError::new(
                SqlState::DATATYPE_MISMATCH,
                format!(
                    "argument of {what} must be type boolean, not type {}",
                    e.ty()
                ),
            ));
        }
        Ok(e)
    }

    /// Converts `e` to `ty` where PostgreSQL would do so implicitly: unknown literals and
    /// parameters take the type; other types need an implicit cast.
    pub fn coerce(&mut self, e: Expr, ty: &DataType) -> SqlResult<Expr> {
        if *ty == DataType::Unknown {
            return Ok(e);
        }
        match e {
            Expr::Literal(Value::Text(s), DataType::Unknown) => Ok(Expr::Literal(
                text::parse_text(ty, &s, &self.zone)?,
                ty.clone(),
            )),
            Expr::Literal(Value::Null, _) => Ok(Expr::Literal(Value::Null, ty.clone())),
            Expr::Param {
                index,
                ty: DataType::Unknown,
            } => {
                self.params[index] = ty.clone();
                Ok(Expr::Param {
                    index,
                    ty: ty.clone(),
                })
            }
            e if e.ty() == *ty => Ok(e),
            e if cast::can_cast_implicitly(&e.ty(), ty) => Ok(Expr::Cast(Box::new(e), ty.clone())),
            e => Ok(e),
        }
    }

    /// Like [`Binder::coerce`] for a value stored into a column: allows assignment casts
    /// (checked at execution) and refuses what PostgreSQL refuses (42804).
    pub fn coerce_for_column(&mut self, e: Expr, column: &ColumnDesc) -> SqlResult<Expr> {
        let e = self.coerce(e, &column.data_type)?;
        let from = e.ty();
        let allowed =
            from == DataType::Unknown || cast::can_cast_assignment(&from, &column.data_type);
        if !allowed {
            return Err(cast::assignment_mismatch(
                &from,
                &column.data_type,
                &column.name,
            ));
        }
        Ok(e)
    }

    fn case(
        &mut self,
        operand: &Option<Box<ast::Expr>>,
        conditions: &[ast::CaseWhen],
        else_result: &Option<Box<ast::Expr>>,
        scope: &Scope,
    ) -> SqlResult<Expr> {
        let mut operand = match operand {
            Some(o) => Some(self.bind(o, scope)?),
            None => None,
        };
        let mut whens = Vec::new();
        let mut results = Vec::new();
        for when in conditions {
            let condition = self.bind(&when.condition, scope)?;
            let condition = match operand.take() {
                Some(o) => {
                    let (o, c) = self.comparable(o, condition, "=")?;
                    operand = Some(o);
                    c
                }
                None => self.coerce(condition, &DataType::Bool)?,
            };
            whens.push(condition);
            results.push(self.bind(&when.result, scope)?);
        }
        let otherwise = match else_result {
            Some(e) => Some(self.bind(e, scope)?),
            None => None,
        };
        let ty = common_type(results.iter().chain(otherwise.iter()).map(Expr::ty))?;
        let mut coerced = Vec::new();
        for (w, r) in whens.into_iter().zip(results) {
            coerced.push((w, self.coerce(r, &ty)?));
        }
        let otherwise = match otherwise {
            Some(o) => Some(Box::new(self.coerce(o, &ty)?)),
            None => None,
        };
        Ok(Expr::Case {
            operand: operand.map(Box::new),
            whens: coerced,
            otherwise,
            ty,
        })
    }

    fn function(&mut self, function: &ast::Function, scope: &Scope) -> SqlResult<Expr> {
        let name = function
            .name
            .0
            .last()
            .and_then(|part| match part {
                ast::ObjectNamePart::Identifier(ident) => Some(ident_name(ident)),
                ast::ObjectNamePart::Function(_) => None,
            })
            .unwrap_or_default();
        if let Some(over) = &function.over {
            return self.window(&name, function, over, scope);
        }
        let mut order_clause: &[ast::OrderByExpr] = &[];
        let (args, distinct, star) = match &function.args {
            ast::FunctionArguments::None => (vec![], false, false),
            ast::FunctionArguments::Subquery(query) if name == "array" => {
                let (index, plan) = self.subquery(query)?;
                let [column] = plan.columns.as_slice() else {
                    return Err(SqlError::syntax("subquery must return only one column"));
                };
                let ty = DataType::Array(Box::new(match &column.data_type {
                    DataType::Unknown => DataType::Text,
                    other => other.clone(),
                }));
                return Ok(Expr::Subquery {
                    index,
                    correlated: self.subqueries[index].1.correlated,
                    usage: SubqueryUse::Array,
                    ty,
                });
            }
            ast::FunctionArguments::Subquery(_) => {
                return Err(SqlError::unsupported("subqueries are not supported yet"))
            }
            ast::FunctionArguments::List(list) => {
                let distinct = matches!(
                    list.duplicate_treatment,
                    Some(ast::DuplicateTreatment::Distinct)
                );
                for clause in &list.clauses {
                    match clause {
                        ast::FunctionArgumentClause::OrderBy(items) => order_clause = items,
                        other => {
                            return Err(SqlError::unsupported(format!(
                                "{other} in a function call is not supported"
                            )))
                        }
                    }
                }
                let mut args = Vec::new();
                let mut star = false;
                for arg in &list.args {
                    match arg {
                        ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => args.push(e),
                        ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Wildcard) => star = true,
                        _ => {
                            return Err(SqlError::unsupported(format!(
                                "argument form in {function} is not supported"
                            )))
                        }
                    }
                }
                (args, distinct, star)
            }
        };
        let aggregate = match name.as_str() {
            "count" if star => Some(AggFunc::CountStar),
            "count" => Some(AggFunc::Count),
            "sum" => Some(AggFunc::Sum),
            "avg" => Some(AggFunc::Avg),
            "min" => Some(AggFunc::Min),
            "max" => Some(AggFunc::Max),
            "string_agg" => Some(AggFunc::StringAgg),
            "bool_and" | "every" => Some(AggFunc::BoolAnd),
            "bool_or" => Some(AggFunc::BoolOr),
            "array_agg" => Some(AggFunc::ArrayAgg),
            "jsonb_agg" => Some(AggFunc::JsonbAgg),
            "json_agg" => Some(AggFunc::JsonAgg),
            "jsonb_object_agg" => Some(AggFunc::JsonbObjectAgg),
            "json_object_agg" => Some(AggFunc::JsonObjectAgg),
            _ => None,
        };
        if aggregate.is_none() && !order_clause.is_empty() {
            return Err(SqlError::new(
                SqlState("42809"),
                format!("ORDER BY specified, but {name} is not an aggregate function"),
            ));
        }
        if aggregate.is_none() && function.filter.is_some() {
            return Err(SqlError::new(
                SqlState("42809"),
                format!("FILTER specified, but {name} is not an aggregate function"),
            ));
        }
        if let Some(agg) = aggregate {
            if !self.allow_aggregates {
                return Err(SqlError::new(
                    SqlState::GROUPING_ERROR,
                    format!("aggregate functions are not allowed in {}", "this context"),
                ));
            }
            let arity = match agg {
                AggFunc::CountStar => 0,
                AggFunc::StringAgg | AggFunc::JsonbObjectAgg | AggFunc::JsonObjectAgg => 2,
                _ => 1,
            };
            if args.len() != arity {
                return Err(no_function(&name, &[]));
            }
            // Aggregates do not nest.
            self.allow_aggregates = false;
            let arg = match (args.first(), agg) {
                (Some(a), AggFunc::JsonbAgg) => Some(self.bind_row_reference(a, scope, true)?),
                (Some(a), AggFunc::JsonAgg) => Some(self.bind_row_reference(a, scope, false)?),
                (Some(a), _) => Some(self.bind(a, scope)?),
                (None, _) => None,
            };
            let second = match args.get(1) {
                Some(d) if agg == AggFunc::StringAgg => {
                    let d = self.bind(d, scope)?;
                    Some(self.text_operand(d)?)
                }
                Some(value) => {
                    let value = self.bind(value, scope)?;
                    Some(self.coerce(value, &DataType::Text)?)
                }
                None => None,
            };
            let filter = match &function.filter {
                Some(f) => {
                    let f = self.bind(f, scope)?;
                    Some(self.boolean(f, "FILTER")?)
                }
                None => None,
            };
            let mut order_by = Vec::with_capacity(order_clause.len());
            for item in order_clause {
                let (descending, nulls_first) = sort_direction(&item.options)?;
                order_by.push((self.bind(&item.expr, scope)?, descending, nulls_first));
            }
            self.allow_aggregates = true;
            let arg = match arg {
                Some(a) if a.ty() == DataType::Unknown => {
                    let target = if matches!(agg, AggFunc::BoolAnd | AggFunc::BoolOr) {
                        DataType::Bool
                    } else {
                        DataType::Text
                    };
                    Some(self.coerce(a, &target)?)
                }
                other => other,
            };
            let ty = aggregate_type(agg, arg.as_ref().map(Expr::ty).as_ref())?;
            let index = self.aggregates.len();
            self.aggregates.push(AggCall {
                func: agg,
                arg,
                distinct,
                filter,
                second,
                order_by,
            });
            return Ok(Expr::Aggregate {
                index,
                ty,
                name: function.to_string(),
            });
        }
        if star || distinct {
            return Err(SqlError::syntax(format!(
                "{name}(*) or DISTINCT is only allowed with aggregates"
            )));
        }
        let row_aware = matches!(name.as_str(), "to_jsonb" | "to_json" | "row_to_json");
        let mut bound = args
            .iter()
            .map(|a| match row_aware {
                true => self.bind_row_reference(a, scope, name == "to_jsonb"),
                false => self.bind(a, scope),
            })
            .collect::<SqlResult<Vec<_>>>()?;
        if row_aware {
            // A whole row is already the object; so is a built object for to_json(b).
            let built = matches!(
                bound.as_slice(),
                [Expr::Func(
                    Func::Json(JsonFunc::RowObject | JsonFunc::BuildObject),
                    _,
                    _
                )]
            );
            if built || name == "row_to_json" {
                return match bound.pop() {
                    Some(row) if bound.is_empty() && (built || row.ty() == DataType::Json) => {
                        Ok(row)
                    }
                    _ => Err(no_function(&name, &[])),
                };
            }
        }
        self.scalar_function(&name, bound)
    }

    /// An advisory lock function's key arguments: one bigint or two integers (parameters are
    /// typed so).
    fn advisory_key_args(&mut self, name: &str, bound: Vec<Expr>) -> SqlResult<Vec<Expr>> {
        let key_type = if bound.len() == 1 {
            DataType::Int8
        } else {
            DataType::Int4
        };
        // Only integers that convert implicitly (no bigint into the pair form, no numeric).
        let types: Vec<DataType> = bound.iter().map(Expr::ty).collect();
        if types
            .iter()
            .any(|ty| *ty != DataType::Unknown && !cast::can_cast_implicitly(ty, &key_type))
        {
            return Err(no_function(name, &types));
        }
        bound
            .into_iter()
            .map(|arg| self.coerce(arg, &key_type))
            .collect()
    }

    /// A call of the built-in scalar function `name` (lower case) with bound arguments.
    fn scalar_function(&mut self, name: &str, mut bound: Vec<Expr>) -> SqlResult<Expr> {
        let name = name.to_string();
        if let Some(call) = self.catalog_function(&name, &mut bound)? {
            return Ok(call);
        }
        let types: Vec<DataType> = bound.iter().map(Expr::ty).collect();
        if let Some(call) = self.array_function(&name, &mut bound, &types)? {
            return Ok(call);
        }
        if let Some(call) = self.json_function(&name, &mut bound)? {
            return Ok(call);
        }
        if let ("pg_typeof", [ty]) = (name.as_str(), types.as_slice()) {
            // Known when binding: the name, as PostgreSQL's regtype output prints it.
            let name = match ty {
                DataType::Array(element) => format!("{}[]", pg_typeof_name(element)),
                other => pg_typeof_name(other),
            };
            return Ok(Expr::Literal(Value::Text(name), DataType::Text));
        }
        let (func, ty) = match (name.as_str(), bound.len()) {
            ("coalesce" | "greatest" | "least", n) if n > 0 => {
                let ty = common_type(types.iter().cloned())?;
                let func = match name.as_str() {
                    "coalesce" => Func::Coalesce,
                    "greatest" => Func::Greatest,
                    _ => Func::Least,
                };
                (func, ty)
            }
            ("nullif", 2) => {
                let (first, second) = (bound.remove(0), bound.remove(0));
                let (a, b) = self.comparable(first, second, "=")?;
                let ty = a.ty();
                bound = vec![a, b];
                (Func::NullIf, ty)
            }
            ("lower" | "upper", 1) => (
                if name == "lower" {
                    Func::Lower
                } else {
                    Func::Upper
                },
                DataType::Text,
            ),
            ("length" | "char_length" | "character_length", 1) => (Func::Length, DataType::Int4),
            ("abs", 1) if types[0].is_numeric() || types[0] == DataType::Unknown => {
                let ty = if types[0] == DataType::Unknown {
                    DataType::Float8
                } else {
                    types[0].clone()
                };
                (Func::Abs, ty)
            }
            ("sign", 1) if types[0].is_numeric() || types[0] == DataType::Unknown => {
                let ty = match types[0] {
                    DataType::Numeric { .. } => types[0].clone(),
                    _ => DataType::Float8,
                };
                (Func::Sign, ty)
            }
            ("now" | "current_timestamp" | "transaction_timestamp" | "statement_timestamp", 0) => {
                (Func::Now, DataType::TimestampTz)
            }
            ("version", 0) => (Func::Version, DataType::Text),
            ("current_user" | "session_user" | "user" | "current_role", 0) => {
                (Func::CurrentUser, DataType::Text)
            }
            ("current_database" | "current_catalog", 0) => (Func::CurrentDatabase, DataType::Text),
            ("current_schema", 0) => (Func::CurrentSchema, DataType::Text),
            ("current_schemas", 1) => (
                Func::CurrentSchemas,
                DataType::Array(Box::new(DataType::Text)),
            ),
            ("pg_backend_pid", 0) => (Func::BackendPid, DataType::Int4),
            (
                name @ ("pg_advisory_lock"
                | "pg_advisory_lock_shared"
                | "pg_advisory_xact_lock"
                | "pg_advisory_xact_lock_shared"
                | "pg_try_advisory_lock"
                | "pg_try_advisory_lock_shared"
                | "pg_try_advisory_xact_lock"
                | "pg_try_advisory_xact_lock_shared"),
                1 | 2,
            ) => {
                bound = self.advisory_key_args(name, bound)?;
                let wait = !name.starts_with("pg_try_");
                let func = Func::AdvisoryLock {
                    shared: name.ends_with("_shared"),
                    xact: name.contains("_xact_"),
                    wait,
                };
                // pg_advisory_lock returns void: an empty text here.
                (func, if wait { DataType::Text } else { DataType::Bool })
            }
            (name @ ("pg_advisory_unlock" | "pg_advisory_unlock_shared"), 1 | 2) => {
                bound = self.advisory_key_args(name, bound)?;
                let func = Func::AdvisoryUnlock {
                    shared: name.ends_with("_shared"),
                };
                (func, DataType::Bool)
            }
            ("pg_advisory_unlock_all", 0) => (Func::AdvisoryUnlockAll, DataType::Text),
            ("pg_sleep", 1) => {
                bound = bound
                    .into_iter()
                    .map(|arg| self.coerce(arg, &DataType::Float8))
                    .collect::<SqlResult<_>>()?;
                (Func::Sleep, DataType::Text)
            }
            ("pg_notify", 2) => {
                bound = bound
                    .into_iter()
                    .map(|arg| self.coerce(arg, &DataType::Text))
                    .collect::<SqlResult<_>>()?;
                (Func::Notify, DataType::Text)
            }
            ("set_config", 3) => {
                let types = [DataType::Text, DataType::Text, DataType::Bool];
                bound = bound
                    .into_iter()
                    .zip(&types)
                    .map(|(arg, ty)| self.coerce(arg, ty))
                    .collect::<SqlResult<_>>()?;
                (Func::SetConfig, DataType::Text)
            }
            ("pg_cancel_backend", 1) => {
                bound = bound
                    .into_iter()
                    .map(|arg| self.coerce(arg, &DataType::Int4))
                    .collect::<SqlResult<_>>()?;
                (Func::CancelBackend, DataType::Bool)
            }
            ("current_setting", 1 | 2) => (Func::CurrentSetting, DataType::Text),
            ("replace", 3) => (Func::Replace, DataType::Text),
            ("split_part", 3) => (Func::SplitPart, DataType::Text),
            ("left", 2) => (Func::Left, DataType::Text),
            ("right", 2) => (Func::Right, DataType::Text),
            ("lpad", 2 | 3) => (Func::Lpad, DataType::Text),
            ("rpad", 2 | 3) => (Func::Rpad, DataType::Text),
            ("btrim", 1 | 2) => (Func::Btrim, DataType::Text),
            ("ltrim", 1 | 2) => (Func::Ltrim, DataType::Text),
            ("rtrim", 1 | 2) => (Func::Rtrim, DataType::Text),
            ("substr" | "substring", 2 | 3) => (Func::Substr, DataType::Text),
            ("strpos", 2) => (Func::Strpos, DataType::Int4),
            ("repeat", 2) => (Func::Repeat, DataType::Text),
            ("reverse", 1) => (Func::Reverse, DataType::Text),
            ("concat", _) => (Func::Concat, DataType::Text),
            ("concat_ws", n) if n > 0 => (Func::ConcatWs, DataType::Text),
            ("random", 0) => (Func::Random, DataType::Float8),
            ("gen_random_uuid", 0) => (Func::GenRandomUuid, DataType::Uuid),
            ("lastval", 0) => (Func::LastVal, DataType::Int8),
            ("nextval" | "currval", 1) | ("setval", 2 | 3) => {
                let func = match name.as_str() {
                    "nextval" => Func::NextVal,
                    "currval" => Func::CurrVal,
                    _ => Func::SetVal,
                };
                if let Some(Expr::Literal(Value::Text(text), _)) = bound.first() {
                    let sequence = sequence::parse_name(text);
                    let per_row = u64::from(func == Func::NextVal);
                    match self.sequences.iter_mut().find(|u| u.name == sequence) {
                        Some(usage) => usage.per_row += per_row,
                        None => self.sequences.push(SequenceUse {
                            name: sequence,
                            per_row,
                        }),
                    }
                }
                (func, DataType::Int8)
            }
            ("format", 1..) => (Func::Format, DataType::Text),
            ("round" | "trunc", 1) | ("ceil" | "ceiling" | "floor", 1) => {
                let func = match name.as_str() {
                    "round" => Func::Round,
                    "trunc" => Func::Trunc,
                    "floor" => Func::Floor,
                    _ => Func::Ceil,
                };
                let ty = match &types[0] {
                    DataType::Numeric { .. } => DataType::Numeric {
                        precision: None,
                        scale: None,
                    },
                    t if t.is_numeric() || *t == DataType::Unknown => DataType::Float8,
                    _ => return Err(no_function(&name, &types)),
                };
                (func, ty)
            }
            ("round" | "trunc", 2) => {
                let func = if name == "round" {
                    Func::Round
                } else {
                    Func::Trunc
                };
                (
                    func,
                    DataType::Numeric {
                        precision: None,
                        scale: None,
                    },
                )
            }
            ("mod", 2) => {
                let (a, b) = (bound.remove(0), bound.remove(0));
                let (a, b) = self.comparable(a, b, "%")?;
                let ty = ops::arith_result_type(ArithOp::Mod, &a.ty(), &b.ty())?;
                bound = vec![a, b];
                (Func::Mod, ty)
            }
            ("power" | "pow", 2) => (Func::Power, DataType::Float8),
            ("current_date", 0) => (Func::CurrentDate, DataType::Date),
            ("date_part", 2) => (Func::Extract, DataType::Float8),
            ("age", 1 | 2) => (Func::Age, DataType::Interval),
            ("to_char", 2) => (Func::ToChar, DataType::Text),
            ("setseed", 1) => (Func::SetSeed, DataType::Text),
            ("regexp_replace", 3 | 4) => (Func::Regex(RegexFunc::Replace), DataType::Text),
            ("regexp_like", 2 | 3) => (Func::Regex(RegexFunc::Like), DataType::Bool),
            ("date_trunc", 2) => {
                let ty = match &types[1] {
                    DataType::TimestampTz => DataType::TimestampTz,
                    DataType::Timestamp | DataType::Date | DataType::Unknown => DataType::Timestamp,
                    _ => return Err(no_function(&name, &types)),
                };
                (Func::DateTrunc, ty)
            }
            ("make_date", 3) => (Func::MakeDate, DataType::Date),
            ("timezone", 2) => {
                // An untyped literal is read as timestamptz, PostgreSQL's preferred type.
                let ty = match &types[1] {
                    DataType::TimestampTz | DataType::Unknown => DataType::Timestamp,
                    DataType::Timestamp => DataType::TimestampTz,
                    _ => return Err(no_function(&name, &types)),
                };
                (Func::AtTimeZone, ty)
            }
            ("sqrt", 1) => match types[0] {
                DataType::Numeric { .. } => (Func::Sqrt, types[0].clone()),
                _ => (Func::Sqrt, DataType::Float8),
            },
            _ => return Err(no_function(&name, &types)),
        };
        let mut coerced = Vec::with_capacity(bound.len());
        for (position, arg) in bound.into_iter().enumerate() {
            let integer_position = match func {
                Func::MakeDate => true,
                Func::SplitPart => position == 2,
                Func::Left | Func::Right | Func::Lpad | Func::Rpad | Func::Repeat => position == 1,
                Func::Substr => position >= 1,
                Func::Round | Func::Trunc => position == 1,
                _ => false,
            };
            coerced.push(match func {
                _ if integer_position => {
                    let arg = self.coerce(arg, &DataType::Int4)?;
                    if !matches!(arg.ty(), DataType::Int2 | DataType::Int4 | DataType::Int8) {
                        return Err(no_function(&name, &types));
                    }
                    arg
                }
                Func::Lower
                | Func::Upper
                | Func::Length
                | Func::Replace
                | Func::SplitPart
                | Func::Left
                | Func::Right
                | Func::Lpad
                | Func::Rpad
                | Func::Btrim
                | Func::Ltrim
                | Func::Rtrim
                | Func::Substr
                | Func::Strpos
                | Func::Repeat
                | Func::Reverse => {
                    let arg = self.text_operand(arg)?;
                    if !arg.ty().is_text() {
                        return Err(no_function(&name, &types));
                    }
                    arg
                }
                Func::Concat | Func::ConcatWs | Func::Format => self.text_operand(arg)?,
                Func::AtTimeZone if position == 0 => {
                    let arg = self.text_operand(arg)?;
                    if !arg.ty().is_text() {
                        return Err(no_function(&name, &types));
                    }
                    arg
                }
                Func::AtTimeZone if arg.ty() == DataType::Unknown => {
                    self.coerce(arg, &DataType::TimestampTz)?
                }
                Func::AtTimeZone => arg,
                Func::Extract | Func::DateTrunc if position == 0 => {
                    let arg = self.text_operand(arg)?;
                    if !arg.ty().is_text() {
                        return Err(no_function(&name, &types));
                    }
                    arg
                }
                Func::Extract | Func::DateTrunc => {
                    let arg = if arg.ty() == DataType::Unknown {
                        let target = if func == Func::DateTrunc {
                            ty.clone()
                        } else {
                            DataType::Timestamp
                        };
                        self.coerce(arg, &target)?
                    } else {
                        arg
                    };
                    let instant = matches!(
                        arg.ty(),
                        DataType::Date | DataType::Timestamp | DataType::TimestampTz
                    );
                    let interval = func == Func::Extract && arg.ty() == DataType::Interval;
                    if !(instant || interval) {
                        return Err(no_function(&name, &types));
                    }
                    arg
                }
                Func::Regex(_) => {
                    let arg = self.text_operand(arg)?;
                    if !arg.ty().is_text() {
                        return Err(no_function(&name, &types));
                    }
                    arg
                }
                Func::ToChar if position == 1 => {
                    let arg = self.text_operand(arg)?;
                    if !arg.ty().is_text() {
                        return Err(no_function(&name, &types));
                    }
                    arg
                }
                Func::ToChar => {
                    let arg = match arg.ty() {
                        DataType::Unknown => self.coerce(arg, &DataType::Timestamp)?,
                        _ => arg,
                    };
                    let fits = arg.ty().is_numeric()
                        || matches!(
                            arg.ty(),
                            DataType::Date
                                | DataType::Timestamp
                                | DataType::TimestampTz
                                | DataType::Interval
                        );
                    if !fits {
                        return Err(no_function(&name, &types));
                    }
                    arg
                }
                Func::Age => {
                    let arg = self.coerce(arg, &DataType::Timestamp)?;
                    if !matches!(
                        arg.ty(),
                        DataType::Date | DataType::Timestamp | DataType::TimestampTz
                    ) {
                        return Err(no_function(&name, &types));
                    }
                    arg
                }
                Func::Round | Func::Trunc
                    if ty.is_numeric() && matches!(ty, DataType::Numeric { .. }) =>
                {
                    self.coerce(arg, &ty)?
                }
                Func::Round | Func::Trunc | Func::Ceil | Func::Floor | Func::Power | Func::Sqrt => {
                    let target = if matches!(ty, DataType::Numeric { .. }) {
                        ty.clone()
                    } else {
                        DataType::Float8
                    };
                    let arg = if arg.ty() == DataType::Unknown {
                        self.coerce(arg, &target)?
                    } else {
                        arg
                    };
                    if !arg.ty().is_numeric() {
                        return Err(no_function(&name, &types));
                    }
                    arg
                }
                Func::Coalesce | Func::Greatest | Func::Least | Func::Abs | Func::Sign => {
                    self.coerce(arg, &ty)?
                }
                _ => arg,
            });
        }
        for arg in &coerced {
            if matches!(func, Func::Lower | Func::Upper | Func::Length) && !arg.ty().is_text() {
                return Err(no_function(&name, &[arg.ty()]));
            }
        }
        Ok(Expr::Func(func, coerced, ty))
    }

    fn window(
        &mut self,
        name: &str,
        function: &ast::Function,
        over: &ast::WindowType,
        scope: &Scope,
    ) -> SqlResult<Expr> {
        if !self.allow_aggregates {
            return Err(SqlError::new(
                SqlState("42P20"),
                "window functions are not allowed here",
            ));
        }
        let spec = match over {
            ast::WindowType::WindowSpec(spec) => self.resolve_window(spec, 0)?,
            ast::WindowType::NamedWindow(name) => self.named_window(name, 0)?,
        };
        let spec = &spec;
        let args: Vec<&ast::Expr> = match &function.args {
            ast::FunctionArguments::List(list) => list
                .args
                .iter()
                .filter_map(|a| match a {
                    ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => Some(e),
                    _ => None,
                })
                .collect(),
            _ => vec![],
        };
        let star = matches!(&function.args, ast::FunctionArguments::List(list)
            if list.args.iter().any(|a| matches!(a, ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Wildcard))));
        // Window calls do not nest; an aggregate inside one is over the groups.
        if self.in_window {
            return Err(SqlError::new(
                SqlState("42P20"),
                "window function calls cannot be nested",
            ));
        }
        self.in_window = true;
        let bound_spec = self.window_parts(&args, spec, scope);
        self.in_window = false;
        let (mut bound, partition_by, order_by) = bound_spec?;
        let types: Vec<DataType> = bound.iter().map(Expr::ty).collect();
        let frame = match &spec.window_frame {
            Some(frame) => self.frame(frame, &order_by)?,
            None => Frame::default(),
        };

        let (func, ty) = match (name, bound.len()) {
            ("row_number", 0) => (WindowFunc::RowNumber, DataType::Int8),
            ("rank", 0) => (WindowFunc::Rank, DataType::Int8),
            ("dense_rank", 0) => (WindowFunc::DenseRank, DataType::Int8),
            ("percent_rank", 0) => (WindowFunc::PercentRank, DataType::Float8),
            ("cume_dist", 0) => (WindowFunc::CumeDist, DataType::Float8),
            ("ntile", 1) => {
                bound[0] = self.coerce(bound[0].clone(), &DataType::Int4)?;
                (WindowFunc::Ntile, DataType::Int4)
            }
            ("lag" | "lead", 1..=3) => {
                let func = if name == "lag" {
                    WindowFunc::Lag
                } else {
                    WindowFunc::Lead
                };
                if let Some(offset) = bound.get(1).cloned() {
                    bound[1] = self.coerce(offset, &DataType::Int8)?;
                }
                if let Some(default) = bound.get(2).cloned() {
                    bound[2] = self.coerce(default, &types[0])?;
                }
                (func, types[0].clone())
            }
            ("first_value", 1) => (WindowFunc::FirstValue, types[0].clone()),
            ("last_value", 1) => (WindowFunc::LastValue, types[0].clone()),
            ("nth_value", 2) => {
                bound[1] = self.coerce(bound[1].clone(), &DataType::Int4)?;
                if bound[1].ty() != DataType::Int4 {
                    return Err(no_function(name, &types));
                }
                (WindowFunc::NthValue, types[0].clone())
            }
            ("count", 0) if star => (WindowFunc::Aggregate(AggFunc::CountStar), DataType::Int8),
            ("count" | "sum" | "avg" | "min" | "max", 1) => {
                let agg = match name {
                    "count" => AggFunc::Count,
                    "sum" => AggFunc::Sum,
                    "avg" => AggFunc::Avg,
                    "min" => AggFunc::Min,
                    _ => AggFunc::Max,
                };
                (
                    WindowFunc::Aggregate(agg),
                    aggregate_type(agg, types.first())?,
                )
            }
            _ => return Err(no_function(name, &types)),
        };
        if frame.units == FrameUnits::Groups && order_by.is_empty() {
            return Err(SqlError::new(
                SqlState("42P20"),
                "GROUPS mode requires an ORDER BY clause",
            ));
        }
        let index = self.windows.len();
        self.windows.push(WindowCall {
            func,
            args: bound,
            partition_by,
            order_by,
            frame,
        });
        Ok(Expr::Window {
            index,
            ty,
            name: function.to_string(),
        })
    }

    /// A json / jsonb operator: the left side a document, the right a key, index, path,
    /// key list or document as the operator needs.
    fn json_operator(
        &mut self,
        func: JsonFunc,
        op: &ast::BinaryOperator,
        l: Expr,
        r: Expr,
    ) -> SqlResult<Expr> {
        let text_array = DataType::Array(Box::new(DataType::Text));
        let jsonb_only = matches!(
            func,
            JsonFunc::Contains
                | JsonFunc::ContainedBy
                | JsonFunc::HasKey
                | JsonFunc::HasAnyKey
                | JsonFunc::HasAllKeys
        );
        let l = match l.ty() {
            DataType::Unknown => self.coerce(l, &DataType::Jsonb)?,
            _ => l,
        };
        let document = match l.ty() {
            DataType::Json if !jsonb_only => DataType::Json,
            DataType::Jsonb => DataType::Jsonb,
            other => return Err(operator_error(&op.to_string(), &other, &r.ty())),
        };
        let r = match (func, r.ty()) {
            (JsonFunc::Get | JsonFunc::GetText | JsonFunc::HasKey, DataType::Unknown) => {
                self.coerce(r, &DataType::Text)?
            }
            (
                JsonFunc::Path | JsonFunc::PathText | JsonFunc::HasAnyKey | JsonFunc::HasAllKeys,
                DataType::Unknown,
            ) => self.coerce(r, &text_array)?,
            (JsonFunc::Contains | JsonFunc::ContainedBy, DataType::Unknown) => {
                self.coerce(r, &DataType::Jsonb)?
            }
            _ => r,
        };
        let fits = match func {
            JsonFunc::Get | JsonFunc::GetText => {
                r.ty().is_text()
                    || matches!(r.ty(), DataType::Int2 | DataType::Int4 | DataType::Int8)
            }
            JsonFunc::HasKey => r.ty().is_text(),
            JsonFunc::Contains | JsonFunc::ContainedBy => r.ty() == DataType::Jsonb,
            _ => r.ty() == text_array,
        };
        if !fits {
            return Err(operator_error(&op.to_string(), &l.ty(), &r.ty()));
        }
        let ty = match func {
            JsonFunc::Get | JsonFunc::Path => document,
            JsonFunc::GetText | JsonFunc::PathText => DataType::Text,
            _ => DataType::Bool,
        };
        Ok(Expr::Func(Func::Json(func), vec![l, r], ty))
    }

    /// json / jsonb functions, bound; `None` if `name` is not one.
    fn json_function(&mut self, name: &str, bound: &mut Vec<Expr>) -> SqlResult<Option<Expr>> {
        let (func, ty) = match (name, bound.len()) {
            ("jsonb_build_object", _) => (JsonFunc::BuildObject, DataType::Jsonb),
            ("json_build_object", _) => (JsonFunc::BuildObject, DataType::Json),
            ("jsonb_build_array", _) => (JsonFunc::BuildArray, DataType::Jsonb),
            ("json_build_array", _) => (JsonFunc::BuildArray, DataType::Json),
            ("to_jsonb", 1) => (JsonFunc::From, DataType::Jsonb),
            ("to_json" | "array_to_json", 1) => (JsonFunc::From, DataType::Json),
            ("jsonb_typeof", 1) => (JsonFunc::TypeOf, DataType::Text),
            ("json_typeof", 1) => (JsonFunc::TypeOf, DataType::Text),
            ("jsonb_array_length", 1) => (JsonFunc::ArrayLength, DataType::Int4),
            ("jsonb_set", 3 | 4) => (JsonFunc::Set, DataType::Jsonb),
            ("json_array_length", 1) => (JsonFunc::ArrayLength, DataType::Int4),
            _ => return Ok(None),
        };
        let document = if name.starts_with("jsonb") {
            DataType::Jsonb
        } else {
            DataType::Json
        };
        let mut args = Vec::with_capacity(bound.len());
        for arg in std::mem::take(bound) {
            let arg = match (func, arg.ty()) {
                (JsonFunc::Set, _) => {
                    let target = match args.len() {
                        1 => DataType::Array(Box::new(DataType::Text)),
                        3 => DataType::Bool,
                        _ => DataType::Jsonb,
                    };
                    let arg = self.coerce(arg, &target)?;
                    if arg.ty() != target {
                        return Err(no_function(name, &[arg.ty()]));
                    }
                    arg
                }
                (JsonFunc::TypeOf | JsonFunc::ArrayLength, _) => {
                    let arg = self.coerce(arg, &document)?;
                    if arg.ty() != document {
                        return Err(no_function(name, &[arg.ty()]));
                    }
                    arg
                }
                // Untyped literals in builders are text, as in PostgreSQL.
                (_, DataType::Unknown) => self.coerce(arg, &DataType::Text)?,
                _ => arg,
            };
            args.push(arg);
        }
        Ok(Some(Expr::Func(Func::Json(func), args, ty)))
    }

    /// `@>`, `<@`, `&&` and `||` with an array on at least one side.
    fn array_operator(&mut self, op: &ast::BinaryOperator, l: Expr, r: Expr) -> SqlResult<Expr> {
        use ast::BinaryOperator as B;
        // An untyped side takes the array's type.
        let (l, r) = match (l.ty(), r.ty()) {
            (DataType::Unknown, ty @ DataType::Array(_)) => (self.coerce(l, &ty)?, r),
            (ty @ DataType::Array(_), DataType::Unknown) => {
                let r = self.coerce(r, &ty)?;
                (l, r)
            }
            _ => (l, r),
        };
        let refuse = |l: &Expr, r: &Expr| operator_error(&op.to_string(), &l.ty(), &r.ty());
        match (op, l.ty(), r.ty()) {
            (B::AtArrow | B::ArrowAt | B::PGOverlap, DataType::Array(a), DataType::Array(b)) => {
                let (probe_l, probe_r) = (
                    Expr::Literal(Value::Null, (*a).clone()),
                    Expr::Literal(Value::Null, (*b).clone()),
                );
                self.comparable(probe_l, probe_r, &op.to_string())?;
                let (func, args) = match op {
                    B::AtArrow => (ArrayFunc::Contains, vec![l, r]),
                    B::ArrowAt => (ArrayFunc::Contains, vec![r, l]),
                    _ => (ArrayFunc::Overlaps, vec![l, r]),
                };
                Ok(Expr::Func(Func::Array(func), args, DataType::Bool))
            }
            (B::StringConcat, DataType::Array(a), DataType::Array(b)) if a == b => {
                let ty = DataType::Array(a);
                Ok(Expr::Func(Func::Array(ArrayFunc::Cat), vec![l, r], ty))
            }
            (B::StringConcat, DataType::Array(element), _) => {
                let r = self.coerce(r, &element)?;
                if r.ty() != *element {
                    return Err(refuse(&l, &r));
                }
                Ok(Expr::Func(
                    Func::Array(ArrayFunc::Append),
                    vec![l, r],
                    DataType::Array(element),
                ))
            }
            (B::StringConcat, _, DataType::Array(element)) => {
                let l = self.coerce(l, &element)?;
                if l.ty() != *element {
                    return Err(refuse(&l, &r));
                }
                Ok(Expr::Func(
                    Func::Array(ArrayFunc::Prepend),
                    vec![l, r],
                    DataType::Array(element),
                ))
            }
            _ => Err(refuse(&l, &r)),
        }
    }

    /// An argument that may name a FROM item as a whole row (`to_jsonb(t)`,
    /// `jsonb_agg(t)`, `row_to_json(t)`): the row as an object of its visible columns
    /// (jsonb, or json in row_to_json's compact form); anything else binds as usual.
    fn bind_row_reference(&mut self, e: &ast::Expr, scope: &Scope, jsonb: bool) -> SqlResult<Expr> {
        let ast::Expr::Identifier(ident) = e else {
            return self.bind(e, scope);
        };
        let name = ident_name(ident);
        let is_column = scope
            .tables
            .iter()
            .any(|t| t.table.column_index(&name).is_some());
        let Some(table) = scope
            .tables
            .iter()
            .find(|t| t.name == name)
            .filter(|_| !is_column)
        else {
            return self.bind(e, scope);
        };
        let mut args = Vec::new();
        for (i, column) in table.table.columns.iter().enumerate() {
            if column.hidden {
                continue;
            }
            args.push(Expr::Literal(
                Value::Text(column.name.clone()),
                DataType::Text,
            ));
            args.push(Expr::Column {
                index: table.offset + i,
                name: format!("{}.{}", table.name, column.name),
                ty: column.data_type.clone(),
            });
        }
        Ok(if jsonb {
            Expr::Func(Func::Json(JsonFunc::BuildObject), args, DataType::Jsonb)
        } else {
            Expr::Func(Func::Json(JsonFunc::RowObject), args, DataType::Json)
        })
    }

    /// `value op ANY (array)` / `value op ALL (array)`.
    fn quantified_array(
        &mut self,
        left: &ast::Expr,
        compare_op: &ast::BinaryOperator,
        right: &ast::Expr,
        all: bool,
        scope: &Scope,
    ) -> SqlResult<Expr> {
        let op = match compare_op {
            ast::BinaryOperator::Eq => "=",
            ast::BinaryOperator::NotEq => "<>",
            ast::BinaryOperator::Lt => "<",
            ast::BinaryOperator::LtEq => "<=",
            ast::BinaryOperator::Gt => ">",
            ast::BinaryOperator::GtEq => ">=",
            other => {
                return Err(SqlError::unsupported(format!(
                    "{other} ANY/ALL is not supported"
                )))
            }
        };
        let value = self.bind(left, scope)?;
        let array = self.bind(right, scope)?;
        // An untyped array ('{1,2}' or $1) takes the other side's type.
        let (value, array) = match (value.ty(), array.ty()) {
            (DataType::Unknown, DataType::Unknown) => {
                let value = self.coerce(value, &DataType::Text)?;
                (
                    value,
                    self.coerce(array, &DataType::Array(Box::new(DataType::Text)))?,
                )
            }
            (ty, DataType::Unknown) => (value, self.coerce(array, &DataType::Array(Box::new(ty)))?),
            (DataType::Unknown, DataType::Array(element)) => (self.coerce(value, &element)?, array),
            _ => (value, array),
        };
        let DataType::Array(element) = array.ty() else {
            return Err(SqlError::new(
                SqlState("42809"),
                "op ANY/ALL (array) requires array on right side",
            ));
        };
        let (value, as_moments) = self.comparable_to_elements(value, &element, op)?;
        let array = match as_moments {
            true => Expr::Cast(
                Box::new(array),
                DataType::Array(Box::new(DataType::TimestampTz)),
            ),
            false => array,
        };
        Ok(Expr::Func(
            Func::Array(if all { ArrayFunc::All } else { ArrayFunc::Any }),
            vec![
                value,
                array,
                Expr::Literal(Value::Text(op.into()), DataType::Text),
            ],
            DataType::Bool,
        ))
    }

    /// The array functions, bound; `None` if `name` is not one.
    fn array_function(
        &mut self,
        name: &str,
        bound: &mut Vec<Expr>,
        types: &[DataType],
    ) -> SqlResult<Option<Expr>> {
        let func = match (name, bound.len()) {
            ("array_length" | "array_upper", 2) => ArrayFunc::Length,
            ("array_lower", 2) => ArrayFunc::Lower,
            ("cardinality", 1) => ArrayFunc::Cardinality,
            ("array_position", 2) => ArrayFunc::Position,
            ("array_append", 2) => ArrayFunc::Append,
            ("array_prepend", 2) => ArrayFunc::Prepend,
            ("array_cat", 2) => ArrayFunc::Cat,
            ("array_remove", 2) => ArrayFunc::Remove,
            ("array_to_string", 2 | 3) => ArrayFunc::ToString,
            ("string_to_array", 2 | 3) => ArrayFunc::FromString,
            _ => return Ok(None),
        };
        let args = std::mem::take(bound);
        // Which argument is the array; the element type comes from it (or from the element
        // argument when the array is an untyped literal).
        let array_at = usize::from(func == ArrayFunc::Prepend);
        let element = match types.get(array_at) {
            Some(DataType::Array(element)) => (**element).clone(),
            _ => match (func, types.get(1 - array_at)) {
                (
                    ArrayFunc::Position
                    | ArrayFunc::Append
                    | ArrayFunc::Prepend
                    | ArrayFunc::Remove,
                    Some(ty),
                ) if *ty != DataType::Unknown => ty.clone(),
                _ => DataType::Text,
            },
        };
        let array_type = DataType::Array(Box::new(element.clone()));
        let mut coerced = Vec::with_capacity(args.len());
        for (position, arg) in args.into_iter().enumerate() {
            let target = match (func, position) {
                (ArrayFunc::FromString, _) => DataType::Text,
                (ArrayFunc::ToString, 0) => array_type.clone(),
                (ArrayFunc::ToString, _) => DataType::Text,
                (ArrayFunc::Length | ArrayFunc::Lower, 1) => DataType::Int4,
                (ArrayFunc::Cat, _) => array_type.clone(),
                (_, p) if p == array_at => array_type.clone(),
                _ => element.clone(),
            };
            let arg = self.coerce(arg, &target)?;
            let fits = match (&target, arg.ty()) {
                (DataType::Array(_), DataType::Array(_)) => true,
                (DataType::Array(_), _) => false,
                (DataType::Int4, ty) => {
                    matches!(ty, DataType::Int2 | DataType::Int4 | DataType::Int8)
                }
                (DataType::Text, ty) => ty.is_text(),
                _ => true,
            };
            if !fits {
                return Err(no_function(name, types));
            }
            coerced.push(arg);
        }
        let ty = match func {
            ArrayFunc::Length | ArrayFunc::Lower | ArrayFunc::Cardinality | ArrayFunc::Position => {
                DataType::Int4
            }
            ArrayFunc::ToString => DataType::Text,
            ArrayFunc::FromString => DataType::Array(Box::new(DataType::Text)),
            _ => array_type,
        };
        Ok(Some(Expr::Func(Func::Array(func), coerced, ty)))
    }

    /// The window a `WINDOW name AS ...` definition of the current SELECT names.
    fn named_window(&self, name: &ast::Ident, depth: usize) -> SqlResult<ast::WindowSpec> {
        let wanted = ident_name(name);
        let Some((_, definition)) = self.named_windows.iter().find(|(n, _)| *n == wanted) else {
            return Err(SqlError::new(
                SqlState::UNDEFINED_OBJECT,
                format!("window \"{wanted}\" does not exist"),
            ));
        };
        if depth > self.named_windows.len() {
            return Err(SqlError::new(
                SqlState("42P20"),
                format!("window \"{wanted}\" refers to itself"),
            ));
        }
        match definition.clone() {
            ast::NamedWindowExpr::NamedWindow(other) => self.named_window(&other, depth + 1),
            ast::NamedWindowExpr::WindowSpec(spec) => self.resolve_window(&spec, depth + 1),
        }
    }

    /// `spec` with the window it is based on (`OVER (w ORDER BY ...)`) merged in, under
    /// PostgreSQL's rules: it may add ORDER BY and a frame, nothing else.
    fn resolve_window(&self, spec: &ast::WindowSpec, depth: usize) -> SqlResult<ast::WindowSpec> {
        let Some(base_name) = &spec.window_name else {
            return Ok(spec.clone());
        };
        let base = self.named_window(base_name, depth + 1)?;
        let refuse = |message: String| Err(SqlError::new(SqlState("42P20"), message));
        let name = ident_name(base_name);
        if !spec.partition_by.is_empty() {
            return refuse(format!(
                "cannot override PARTITION BY clause of window \"{name}\""
            ));
        }
        if !spec.order_by.is_empty() && !base.order_by.is_empty() {
            return refuse(format!(
                "cannot override ORDER BY clause of window \"{name}\""
            ));
        }
        if base.window_frame.is_some() {
            return refuse(format!(
                "cannot copy window \"{name}\" because it has a frame clause"
            ));
        }
        Ok(ast::WindowSpec {
            window_name: None,
            partition_by: base.partition_by,
            order_by: if spec.order_by.is_empty() {
                base.order_by
            } else {
                spec.order_by.clone()
            },
            window_frame: spec.window_frame.clone(),
        })
    }

    /// A frame clause, checked as PostgreSQL checks it (42P20 for impossible bounds).
    fn frame(
        &mut self,
        frame: &ast::WindowFrame,
        order_by: &[(Expr, bool, bool)],
    ) -> SqlResult<Frame> {
        let units = match frame.units {
            ast::WindowFrameUnits::Rows => FrameUnits::Rows,
            ast::WindowFrameUnits::Range => FrameUnits::Range,
            ast::WindowFrameUnits::Groups => FrameUnits::Groups,
        };
        let mut bound = |b: &ast::WindowFrameBound, what: &str| -> SqlResult<FrameBound> {
            let offset = |binder: &mut Binder, e: &ast::Expr| -> SqlResult<Expr> {
                if units == FrameUnits::Range {
                    // The offset is a distance in the one ORDER BY key's terms: a number for
                    // numbers, an interval for dates and timestamps.
                    let [(key, _, _)] = order_by else {
                        return Err(SqlError::new(
                            SqlState("42P20"),
                            "RANGE with offset PRECEDING/FOLLOWING requires exactly one ORDER BY column",
                        ));
                    };
                    let key_type = key.ty();
                    let distance = match key_type {
                        DataType::Date | DataType::Timestamp | DataType::TimestampTz => {
                            DataType::Interval
                        }
                        ref t if t.is_numeric() => key_type.clone(),
                        ref other => {
                            return Err(SqlError::unsupported(format!(
                                "RANGE with offset PRECEDING/FOLLOWING is not supported for column type {other}"
                            )))
                        }
                    };
                    let bound = binder.bind(e, &Scope::empty())?;
                    let bound = binder.coerce(bound, &distance)?;
                    let fits = bound.ty() == distance
                        || (distance.is_numeric() && bound.ty().is_numeric());
                    if !fits {
                        return Err(SqlError::new(
                            SqlState::DATATYPE_MISMATCH,
                            format!(
                                "RANGE with offset PRECEDING/FOLLOWING is not supported for column type {key_type} and offset type {}",
                                bound.ty()
                            ),
                        ));
                    }
                    return Ok(bound);
                }
                let bound = binder.bind(e, &Scope::empty())?;
                let bound = binder.coerce(bound, &DataType::Int8)?;
                if !matches!(bound.ty(), DataType::Int2 | DataType::Int4 | DataType::Int8) {
                    return Err(SqlError::new(
                        SqlState::DATATYPE_MISMATCH,
                        format!(
                            "argument of {what} must be type bigint, not type {}",
                            bound.ty()
                        ),
                    ));
                }
                Ok(bound)
            };
            Ok(match b {
                ast::WindowFrameBound::CurrentRow => FrameBound::CurrentRow,
                ast::WindowFrameBound::Preceding(None) => FrameBound::UnboundedPreceding,
                ast::WindowFrameBound::Following(None) => FrameBound::UnboundedFollowing,
                ast::WindowFrameBound::Preceding(Some(e)) => {
                    FrameBound::Preceding(offset(self, e)?)
                }
                ast::WindowFrameBound::Following(Some(e)) => {
                    FrameBound::Following(offset(self, e)?)
                }
            })
        };
        let start = bound(&frame.start_bound, units_name(units))?;
        let end = match &frame.end_bound {
            Some(end) => bound(end, units_name(units))?,
            None => FrameBound::CurrentRow,
        };
        let invalid = |message: &str| Err(SqlError::new(SqlState("42P20"), message.to_string()));
        match (&start, &end) {
            (FrameBound::UnboundedFollowing, _) => {
                invalid("frame start cannot be UNBOUNDED FOLLOWING")
            }
            (_, FrameBound::UnboundedPreceding) => {
                invalid("frame end cannot be UNBOUNDED PRECEDING")
            }
            (FrameBound::CurrentRow, FrameBound::Preceding(_)) => {
                invalid("frame starting from current row cannot have preceding rows")
            }
            (FrameBound::Following(_), FrameBound::Preceding(_) | FrameBound::CurrentRow) => {
                invalid("frame starting from following row cannot have preceding rows")
            }
            _ => Ok(Frame { units, start, end }),
        }
    }

    /// A window call's arguments, PARTITION BY and ORDER BY, bound.
    #[allow(clippy::type_complexity)]
    fn window_parts(
        &mut self,
        args: &[&ast::Expr],
        spec: &ast::WindowSpec,
        scope: &Scope,
    ) -> SqlResult<(Vec<Expr>, Vec<Expr>, Vec<(Expr, bool, bool)>)> {
        let mut bound = Vec::with_capacity(args.len());
        for arg in args {
            bound.push(self.bind(arg, scope)?);
        }
        let mut partition_by = Vec::new();
        for e in &spec.partition_by {
            partition_by.push(self.bind(e, scope)?);
        }
        let mut order_by = Vec::new();
        for item in &spec.order_by {
            let (descending, nulls_first) = sort_direction(&item.options)?;
            order_by.push((self.bind(&item.expr, scope)?, descending, nulls_first));
        }
        Ok((bound, partition_by, order_by))
    }

    /// Binds an expression in a context where aggregates are allowed (select list, HAVING,
    /// ORDER BY of a SELECT).
    pub fn bind_allowing_aggregates(&mut self, expr: &ast::Expr, scope: &Scope) -> SqlResult<Expr> {
        self.allow_aggregates = true;
        let bound = self.bind(expr, scope);
        self.allow_aggregates = false;
        bound
    }

    /// The pre-planned subquery for `query`: its position and plan.
    fn subquery(&self, query: &ast::Query) -> SqlResult<(usize, &SelectPlan)> {
        let address = query as *const ast::Query as usize;
        self.subqueries
            .iter()
            .enumerate()
            .find(|(_, (a, _))| *a == address)
            .map(|(i, (_, plan))| (i, plan))
            .ok_or_else(|| {
                SqlError::unsupported("subqueries are not supported in this position yet")
            })
    }

    /// Gives every parameter never inferred the type text.
    pub fn finish_params(&mut self) -> Vec<DataType> {
        self.params
            .iter()
            .map(|t| {
                if *t == DataType::Unknown {
                    DataType::Text
                } else {
                    t.clone()
                }
            })
            .collect()
    }
}

fn operator_error(op: &str, l: &DataType, r: &DataType) -> SqlError {
    SqlError::new(SqlState::UNDEFINED_FUNCTION, format!("operator does not exist: {l} {op} {r}"))
        .with_hint("No operator matches the given name and argument types. You might need to add explicit type casts.")
}

pub(crate) fn no_function(name: &str, types: &[DataType]) -> SqlError {
    let types: Vec<String> = types.iter().map(ToString::to_string).collect();
    SqlError::new(
        SqlState::UNDEFINED_FUNCTION,
        format!("function {name}({}) does not exist", types.join(", ")),
    )
    .with_hint("No function matches the given name and argument types. You might need to add explicit type casts.")
}

/// The type of an aggregate's result, PostgreSQL's rules.
fn aggregate_type(agg: AggFunc, arg: Option<&DataType>) -> SqlResult<DataType> {
    let numeric = DataType::Numeric {
        precision: None,
        scale: None,
    };
    Ok(match (agg, arg) {
        (AggFunc::CountStar | AggFunc::Count, _) => DataType::Int8,
        (AggFunc::Sum, Some(DataType::Int2 | DataType::Int4)) => DataType::Int8,
        (AggFunc::Sum, Some(DataType::Int8 | DataType::Numeric { .. })) => numeric,
        (AggFunc::Sum, Some(DataType::Float4)) => DataType::Float4,
        (AggFunc::Sum, Some(DataType::Float8)) => DataType::Float8,
        (
            AggFunc::Avg,
            Some(DataType::Int2 | DataType::Int4 | DataType::Int8 | DataType::Numeric { .. }),
        ) => numeric,
        (AggFunc::Avg, Some(DataType::Float4 | DataType::Float8)) => DataType::Float8,
        (AggFunc::Sum | AggFunc::Avg, Some(DataType::Interval)) => DataType::Interval,
        (AggFunc::ArrayAgg, Some(DataType::Array(_))) => {
            return Err(SqlError::unsupported(
                "array_agg of arrays (multidimensional arrays) is not supported",
            ))
        }
        (AggFunc::JsonbAgg, Some(_)) => DataType::Jsonb,
        (AggFunc::JsonAgg | AggFunc::JsonObjectAgg, Some(_)) => DataType::Json,
        (AggFunc::JsonbObjectAgg, Some(_)) => DataType::Jsonb,
        (AggFunc::ArrayAgg, Some(DataType::Unknown)) => DataType::Array(Box::new(DataType::Text)),
        (AggFunc::ArrayAgg, Some(ty)) => DataType::Array(Box::new(ty.clone())),
        (AggFunc::StringAgg, Some(ty)) if ty.is_text() => DataType::Text,
        (AggFunc::BoolAnd | AggFunc::BoolOr, Some(DataType::Bool)) => DataType::Bool,
        (AggFunc::Min | AggFunc::Max, Some(ty)) if *ty != DataType::Bytea => match ty {
            DataType::Varchar(_) | DataType::Char(_) => DataType::Text,
            DataType::Numeric { .. } => numeric,
            other => other.clone(),
        },
        (agg, arg) => {
            let name = format!("{agg:?}").to_lowercase();
            return Err(no_function(
                &name,
                &arg.cloned().into_iter().collect::<Vec<_>>(),
            ));
        }
    })
}

/// An ORDER BY item's (descending, nulls first), with PostgreSQL's default of NULLS FIRST
/// exactly when descending. ORDER BY ... USING is refused rather than taken as ascending.
pub(crate) fn sort_direction(options: &ast::OrderByOptions) -> SqlResult<(bool, bool)> {
    if let Some(ast::OrderBySort::Using(_)) = options.sort {
        return Err(SqlError::unsupported("ORDER BY ... USING is not supported"));
    }
    let descending = matches!(options.sort, Some(ast::OrderBySort::Desc));
    Ok((descending, options.nulls_first.unwrap_or(descending)))
}

/// The columns of a query's output as references to its row, in order.
pub(crate) fn column_refs(columns: &[crate::Column]) -> Vec<Expr> {
    columns
        .iter()
        .enumerate()
        .map(|(index, c)| Expr::Column {
            index,
            name: c.name.clone(),
            ty: c.data_type.clone(),
        })
        .collect()
}

/// The type several expressions share (CASE, COALESCE), as PostgreSQL resolves it simply.
pub(crate) fn common_type(types: impl Iterator<Item = DataType>) -> SqlResult<DataType> {
    let mut result = DataType::Unknown;
    for ty in types {
        result = match (&result, &ty) {
            (DataType::Unknown, _) => ty,
            (_, DataType::Unknown) => result,
            (a, b) if a == b => result,
            (a, b) if a.is_text() && b.is_text() => DataType::Text,
            (a, b) if a.is_numeric() && b.is_numeric() => numeric_rank_max(a, b),
            (a, b) if cast::can_cast_implicitly(a, b) => ty,
            (a, b) if cast::can_cast_implicitly(b, a) => result,
            (a, b) => {
                return Err(SqlError::new(
                    SqlState::DATATYPE_MISMATCH,
                    format!("types {a} and {b} cannot be matched"),
                ))
            }
        };
    }
    Ok(if result == DataType::Unknown {
        DataType::Text
    } else {
        result
    })
}

fn numeric_rank_max(a: &DataType, b: &DataType) -> DataType {
    let rank = |t: &DataType| match t {
        DataType::Int2 => 0,
        DataType::Int4 => 1,
        DataType::Int8 => 2,
        DataType::Numeric { .. } => 3,
        DataType::Float4 => 4,
        _ => 5,
    };
    let top = if rank(a) >= rank(b) { a } else { b };
    match top {
        DataType::Numeric { .. } => DataType::Numeric {
            precision: None,
            scale: None,
        },
        other => other.clone(),
    }
}

fn string_value(value: &ast::Value) -> Option<String> {
    match value {
        ast::Value::SingleQuotedString(s)
        | ast::Value::EscapedStringLiteral(s)
        | ast::Value::DoubleQuotedString(s)
        | ast::Value::NationalStringLiteral(s) => Some(s.clone()),
        ast::Value::DollarQuotedString(d) => Some(d.value.clone()),
        _ => None,
    }
}

pub(crate) fn literal(value: &ast::Value) -> SqlResult<Expr> {
    if let Some(s) = string_value(value) {
        return Ok(Expr::Literal(Value::Text(s), DataType::Unknown));
    }
    Ok(match value {
        ast::Value::Number(digits, _) => {
            let digits = digits.to_string();
            if let Ok(n) = digits.parse::<i32>() {
                Expr::Literal(Value::Int4(n), DataType::Int4)
            } else if let Ok(n) = digits.parse::<i64>() {
                Expr::Literal(Value::Int8(n), DataType::Int8)
            } else {
                let ty = DataType::Numeric {
                    precision: None,
                    scale: None,
                };
                Expr::Literal(Value::Numeric(Numeric::parse(&digits)?), ty)
            }
        }
        ast::Value::Boolean(b) => Expr::Literal(Value::Bool(*b), DataType::Bool),
        ast::Value::Null => Expr::Literal(Value::Null, DataType::Unknown),
        ast::Value::HexStringLiteral(hex) => Expr::Literal(
            Value::Bytea(text::parse_bytea(&format!("\\x{hex}"))?),
            DataType::Bytea,
        ),
        ast::Value::Placeholder(p) => {
            return Err(SqlError::internal(format!(
                "placeholder {p} reached literal binding"
            )))
        }
        other => {
            return Err(SqlError::unsupported(format!(
                "literal {other} is not supported"
            )))
        }
    })
}

/// Binds a placeholder `$n`.
fn placeholder(binder: &mut Binder, p: &str) -> SqlResult<Expr> {
    let n: usize = p
        .strip_prefix('$')
        .and_then(|n| n.parse().ok())
        .filter(|n| *n >= 1 && *n <= 65_535)
        .ok_or_else(|| SqlError::syntax(format!("invalid parameter reference {p}")))?;
    if binder.params.len() < n {
        binder.params.resize(n, DataType::Unknown);
    }
    Ok(Expr::Param {
        index: n - 1,
        ty: binder.params[n - 1].clone(),
    })
}

/// A type's name as `pg_typeof` prints it (without modifiers).
fn pg_typeof_name(ty: &DataType) -> String {
    crate::types::cast::base_type_name(ty).to_string()
}
