//! Bound expressions: what the binder makes of SQL expressions once names are resolved to
//! column positions and every node has a type, and how they evaluate against a row.

use std::cmp::Ordering;
use std::collections::HashSet;
use std::fmt;

use crate::error::{SqlError, SqlResult, SqlState};
use crate::sequence::StatementSequences;
use crate::types::json::{self, Json};
use crate::types::ops::{self, ArithOp, GroupKey};
use crate::types::timezone::{format_offset, TimeZone};
use crate::types::{cast, datetime, text, DataType, Value};

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    /// `=`
    Eq,
    /// `<>`
    NotEq,
    /// `<`
    Lt,
    /// `<=`
    LtEq,
    /// `>`
    Gt,
    /// `>=`
    GtEq,
}

impl CmpOp {
    fn holds(self, ordering: Ordering) -> bool {
        match self {
            CmpOp::Eq => ordering == Ordering::Equal,
            CmpOp::NotEq => ordering != Ordering::Equal,
            CmpOp::Lt => ordering == Ordering::Less,
            CmpOp::LtEq => ordering != Ordering::Greater,
            CmpOp::Gt => ordering == Ordering::Greater,
            CmpOp::GtEq => ordering != Ordering::Less,
        }
    }

    /// The operator with its operands swapped (`a < b` ⇔ `b > a`).
    pub fn flipped(self) -> CmpOp {
        match self {
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::LtEq => CmpOp::GtEq,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::GtEq => CmpOp::LtEq,
            other => other,
        }
    }

    /// SQL spelling.
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::NotEq => "<>",
            CmpOp::Lt => "<",
            CmpOp::LtEq => "<=",
            CmpOp::Gt => ">",
            CmpOp::GtEq => ">=",
        }
    }
}

/// Regular expressions: `~` and friends, SIMILAR TO, regexp_replace, regexp_like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegexFunc {
    /// `value ~ pattern` (`~*` case-insensitive; negated for `!~`, `!~*`)
    Match {
        /// `~*`
        case_insensitive: bool,
        /// `!~`
        negated: bool,
    },
    /// `value [NOT] SIMILAR TO pattern [ESCAPE e]` (the escape as a third argument)
    Similar {
        /// NOT SIMILAR TO
        negated: bool,
    },
    /// regexp_replace(value, pattern, replacement [, flags])
    Replace,
    /// regexp_like(value, pattern [, flags])
    Like,
}

/// json / jsonb operators and functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JsonFunc {
    /// `->`: a member (by key) or element (by index), as json / jsonb
    Get,
    /// `->>`: the same as text
    GetText,
    /// `#>`: the value at a path (text[])
    Path,
    /// `#>>`: the same as text
    PathText,
    /// `@>` (jsonb)
    Contains,
    /// `<@` (jsonb)
    ContainedBy,
    /// `?` (jsonb)
    HasKey,
    /// `?|` (jsonb)
    HasAnyKey,
    /// `?&` (jsonb)
    HasAllKeys,
    /// jsonb_build_object / json_build_object
    BuildObject,
    /// row_to_json / to_json of a whole row: json in the compact form `{"a":1,"b":"x"}`
    RowObject,
    /// jsonb_build_array / json_build_array
    BuildArray,
    /// to_jsonb / to_json
    From,
    /// jsonb_typeof / json_typeof
    TypeOf,
    /// jsonb_array_length / json_array_length
    ArrayLength,
    /// `jsonb || jsonb`: objects merged (the right wins), arrays concatenated
    Concat,
    /// `jsonb - text` (a key, or string elements) / `jsonb - int` (an element)
    Remove,
    /// jsonb_set(target, path, value [, create_missing])
    Set,
}

/// Array constructors, subscripts, quantified comparisons and functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArrayFunc {
    /// `ARRAY[a, b, ...]`
    Make,
    /// `a[i]` (from 1; NULL outside)
    Subscript,
    /// `x op ANY (array)`: the comparison in the third argument (text).
    Any,
    /// `x op ALL (array)`
    All,
    /// array_length(a, 1), array_upper(a, 1)
    Length,
    /// array_lower(a, 1)
    Lower,
    /// cardinality(a)
    Cardinality,
    /// array_position(a, x)
    Position,
    /// array_append(a, x)
    Append,
    /// array_prepend(x, a)
    Prepend,
    /// array_cat(a, b)
    Cat,
    /// array_remove(a, x)
    Remove,
    /// array_to_string(a, delimiter [, null_text])
    ToString,
    /// string_to_array(s, delimiter [, null_text])
    FromString,
    /// `a @> b`: every element of b is in a
    Contains,
    /// `a && b`: a common element
    Overlaps,
}

/// A built-in scalar function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Func {
    /// A function on the system catalogs ([`crate::system::functions`]).
    Catalog(crate::system::functions::CatalogFunc),
    /// set_config(name, value, is_local): SET, applied when the statement succeeds
    SetConfig,
    /// coalesce(a, b, ...)
    Coalesce,
    /// nullif(a, b)
    NullIf,
    /// lower(text)
    Lower,
    /// upper(text)
    Upper,
    /// length(text) / char_length
    Length,
    /// abs(number)
    Abs,
    /// sign(x): -1, 0 or 1 in x's type (NaN stays NaN).
    Sign,
    /// to_char(timestamp | date | number, template)
    ToChar,
    /// setseed(x), x in [-1, 1]
    SetSeed,
    /// A regular-expression match or function (see [`RegexFunc`]).
    Regex(RegexFunc),
    /// An array function (see [`ArrayFunc`]).
    Array(ArrayFunc),
    /// A json / jsonb operator or function (see [`JsonFunc`]).
    Json(JsonFunc),
    /// now() / current_timestamp: the transaction's start
    Now,
    /// version()
    Version,
    /// current_user, session_user, user, current_role.
    CurrentUser,
    /// current_database(), current_catalog.
    CurrentDatabase,
    /// current_schema().
    CurrentSchema,
    /// current_schemas(include_implicit).
    CurrentSchemas,
    /// pg_backend_pid().
    BackendPid,
    /// current_setting(name [, missing_ok]).
    CurrentSetting,
    /// pg_[try_]advisory_[xact_]lock[_shared](key | key1, key2).
    AdvisoryLock {
        /// `_shared`.
        shared: bool,
        /// `_xact_`: held until the transaction ends.
        xact: bool,
        /// Not `try_`: wait while another session holds it.
        wait: bool,
    },
    /// pg_advisory_unlock[_shared](key | key1, key2).
    AdvisoryUnlock {
        /// `_shared`.
        shared: bool,
    },
    /// pg_advisory_unlock_all().
    AdvisoryUnlockAll,
    /// pg_sleep(seconds).
    Sleep,
    /// pg_cancel_backend(pid).
    CancelBackend,
    /// pg_notify(channel, payload).
    Notify,
    /// greatest(...)
    Greatest,
    /// least(...)
    Least,
    /// replace(text, from, to)
    Replace,
    /// split_part(text, delimiter, n)
    SplitPart,
    /// left(text, n)
    Left,
    /// right(text, n)
    Right,
    /// lpad(text, length [, fill])
    Lpad,
    /// rpad(text, length [, fill])
    Rpad,
    /// btrim(text [, characters]) / TRIM(BOTH ...)
    Btrim,
    /// ltrim(text [, characters]) / TRIM(LEADING ...)
    Ltrim,
    /// rtrim(text [, characters]) / TRIM(TRAILING ...)
    Rtrim,
    /// substr(text, start [, count]) / SUBSTRING(text FROM start FOR count)
    Substr,
    /// strpos(text, needle) / POSITION(needle IN text)
    Strpos,
    /// repeat(text, n)
    Repeat,
    /// reverse(text)
    Reverse,
    /// concat(...): NULLs ignored
    Concat,
    /// concat_ws(separator, ...): NULLs ignored, NULL separator gives NULL
    ConcatWs,
    /// format(fmt, ...): %s, %I, %L and %%, optionally with an argument position (%2$s)
    Format,
    /// random(): uniform in [0, 1)
    Random,
    /// gen_random_uuid(): a version 4 UUID from the session's seeded source
    GenRandomUuid,
    /// nextval(sequence)
    NextVal,
    /// currval(sequence)
    CurrVal,
    /// setval(sequence, value [, is_called])
    SetVal,
    /// lastval()
    LastVal,
    /// round(x [, scale])
    Round,
    /// trunc(x [, scale])
    Trunc,
    /// ceil(x) / ceiling(x)
    Ceil,
    /// floor(x)
    Floor,
    /// mod(a, b)
    Mod,
    /// power(a, b)
    Power,
    /// sqrt(x)
    Sqrt,
    /// current_date: the transaction's start, as a date in the session's time zone
    CurrentDate,
    /// timezone(zone, x) / x AT TIME ZONE zone: a timestamptz's wall-clock time in `zone`,
    /// or the moment a timestamp's wall-clock time names there.
    AtTimeZone,
    /// extract(field FROM x) (numeric) / date_part('field', x) (double precision)
    Extract,
    /// age(a, b) / age(a): calendar difference as an interval.
    Age,
    /// date_trunc('field', x)
    DateTrunc,
    /// make_date(year, month, day)
    MakeDate,
}

/// An aggregate function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AggFunc {
    /// count(*)
    CountStar,
    /// count(expr)
    Count,
    /// sum(expr)
    Sum,
    /// avg(expr)
    Avg,
    /// min(expr)
    Min,
    /// max(expr)
    Max,
    /// string_agg(text, delimiter)
    StringAgg,
    /// bool_and(bool) / every(bool)
    BoolAnd,
    /// bool_or(bool)
    BoolOr,
    /// array_agg(expr): every value, NULLs included
    ArrayAgg,
    /// jsonb_agg(expr)
    JsonbAgg,
    /// json_agg(expr)
    JsonAgg,
    /// jsonb_object_agg(key, value)
    JsonbObjectAgg,
    /// json_object_agg(key, value)
    JsonObjectAgg,
}

/// A window function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowFunc {
    /// row_number()
    RowNumber,
    /// rank()
    Rank,
    /// dense_rank()
    DenseRank,
    /// percent_rank(): (rank - 1) / (partition rows - 1)
    PercentRank,
    /// cume_dist(): rows up to the last peer / partition rows
    CumeDist,
    /// ntile(buckets)
    Ntile,
    /// lag(x [, offset [, default]])
    Lag,
    /// lead(x [, offset [, default]])
    Lead,
    /// first_value(x)
    FirstValue,
    /// last_value(x)
    LastValue,
    /// nth_value(x, n): the frame's nth row
    NthValue,
    /// An aggregate over the window frame.
    Aggregate(AggFunc),
}

/// One window function call: computed over the rows of its partition, in its order, and
/// appended to each row before the projection.
#[derive(Clone, Debug, PartialEq)]
pub struct WindowCall {
    /// Which function.
    pub func: WindowFunc,
    /// Its arguments.
    pub args: Vec<Expr>,
    /// PARTITION BY.
    pub partition_by: Vec<Expr>,
    /// ORDER BY within the partition: (expression, descending, nulls first).
    pub order_by: Vec<(Expr, bool, bool)>,
    /// The frame (aggregates, first_value, last_value, nth_value); PostgreSQL's default is
    /// `RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW`.
    pub frame: Frame,
}

/// A window frame: which rows of the partition, around the current one, a call sees.
#[derive(Clone, Debug, PartialEq)]
pub struct Frame {
    /// How offsets count.
    pub units: FrameUnits,
    /// First row.
    pub start: FrameBound,
    /// Last row.
    pub end: FrameBound,
}

impl Default for Frame {
    fn default() -> Self {
        Frame {
            units: FrameUnits::Range,
            start: FrameBound::UnboundedPreceding,
            end: FrameBound::CurrentRow,
        }
    }
}

/// ROWS counts rows, GROUPS counts peer groups, RANGE (without offsets) extends to peers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameUnits {
    /// ROWS
    Rows,
    /// RANGE
    Range,
    /// GROUPS
    Groups,
}

/// One end of a frame; offsets are row-independent expressions (constants, parameters).
#[derive(Clone, Debug, PartialEq)]
pub enum FrameBound {
    /// UNBOUNDED PRECEDING
    UnboundedPreceding,
    /// n PRECEDING
    Preceding(Expr),
    /// CURRENT ROW
    CurrentRow,
    /// n FOLLOWING
    Following(Expr),
    /// UNBOUNDED FOLLOWING
    UnboundedFollowing,
}

/// One aggregate call of a query.
#[derive(Clone, Debug, PartialEq)]
pub struct AggCall {
    /// Which aggregate.
    pub func: AggFunc,
    /// Its argument (none for count(*)).
    pub arg: Option<Expr>,
    /// DISTINCT: each distinct non-null value once.
    pub distinct: bool,
    /// FILTER (WHERE ...): only rows where it is true.
    pub filter: Option<Expr>,
    /// The second argument: string_agg's delimiter, json_object_agg's value.
    pub second: Option<Expr>,
    /// ORDER BY inside the call: the order its inputs are fed in (expression, descending,
    /// nulls first).
    pub order_by: Vec<(Expr, bool, bool)>,
}

/// An expression with names resolved and types known.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// A column of the input row.
    Column {
        /// Position in the input row.
        index: usize,
        /// Name, for EXPLAIN and messages.
        name: String,
        /// Type.
        ty: DataType,
    },
    /// A constant.
    Literal(Value, DataType),
    /// A parameter `$n` (0-based index).
    Param {
        /// 0-based.
        index: usize,
        /// Its (inferred) type.
        ty: DataType,
    },
    /// `-x`
    Neg(Box<Expr>, DataType),
    /// `NOT x`
    Not(Box<Expr>),
    /// Arithmetic.
    Arith(ArithOp, Box<Expr>, Box<Expr>, DataType),
    /// Comparison.
    Cmp(CmpOp, Box<Expr>, Box<Expr>),
    /// `AND`
    And(Box<Expr>, Box<Expr>),
    /// `OR`
    Or(Box<Expr>, Box<Expr>),
    /// `||`
    Concat(Box<Expr>, Box<Expr>),
    /// `[NOT] LIKE` / `ILIKE`
    Like {
        /// The string.
        expr: Box<Expr>,
        /// The pattern.
        pattern: Box<Expr>,
        /// NOT LIKE.
        negated: bool,
        /// ILIKE.
        case_insensitive: bool,
        /// The escape character (backslash unless ESCAPE says otherwise; `None`: ESCAPE '').
        escape: Option<char>,
    },
    /// `IS [NOT] NULL`
    IsNull(Box<Expr>, bool),
    /// `x [NOT] IN (a, b, ...)`
    InList(Box<Expr>, Vec<Expr>, bool),
    /// `CAST(x AS t)` / `x::t`, or an implicit coercion.
    Cast(Box<Expr>, DataType),
    /// `CASE [operand] WHEN ... THEN ... [ELSE ...] END`
    Case {
        /// `CASE x WHEN ...`: compared to each WHEN.
        operand: Option<Box<Expr>>,
        /// (condition or value, result)
        whens: Vec<(Expr, Expr)>,
        /// ELSE result.
        otherwise: Option<Box<Expr>>,
        /// Result type.
        ty: DataType,
    },
    /// A scalar function call.
    Func(Func, Vec<Expr>, DataType),
    /// A window function call, as bound before it is turned into a column of the row
    /// (see `WindowCall`); never evaluated.
    Window {
        /// Position in the plan's window list.
        index: usize,
        /// Result type.
        ty: DataType,
        /// Display name.
        name: String,
    },
    /// An uncorrelated subquery, computed once before the statement runs.
    Subquery {
        /// Position in the statement's subquery list.
        index: usize,
        /// How its rows are used.
        usage: SubqueryUse,
        /// Result type.
        ty: DataType,
        /// It reads columns of the query around it, so it runs again for each of that
        /// query's rows instead of once before the statement.
        correlated: bool,
    },
    /// A column of an enclosing query's current row, read by a correlated subquery.
    Outer {
        /// 0: the query immediately around the subquery, 1: the one around that, ...
        level: usize,
        /// Position in that query's row.
        index: usize,
        /// Name, for EXPLAIN and messages.
        name: String,
        /// Type.
        ty: DataType,
    },
    /// An aggregate call, as bound before the aggregation rewrite turns it into an
    /// [`Expr::AggRef`]; never evaluated.
    Aggregate {
        /// Position in the plan's aggregate list.
        index: usize,
        /// Result type.
        ty: DataType,
        /// Display name, as written (`count(*)`).
        name: String,
    },
    /// The result of aggregate number `index` (in an aggregated row, after the group keys).
    AggRef {
        /// Position in the aggregated row.
        index: usize,
        /// Type.
        ty: DataType,
        /// Display name.
        name: String,
    },
}

/// What an expression may need besides the row.
pub struct EvalContext<'a> {
    /// Parameter values.
    pub params: &'a [Value],
    /// now(): the transaction's start, µs since 2000-01-01 UTC.
    pub now_micros: i64,
    /// The session's `TimeZone`.
    pub zone: &'a TimeZone,
    /// The rows of the statement's subqueries, computed before it runs.
    pub subqueries: &'a [SubqueryRows],
    /// The rows of correlated subqueries, computed for the row being evaluated, by index.
    pub correlated: &'a [(usize, SubqueryRows)],
    /// The current rows of the enclosing queries, innermost last (for [`Expr::Outer`]).
    pub outer: &'a [Vec<Value>],
    /// random(): a number in [0, 1) from the session's seeded source.
    pub random: &'a (dyn Fn() -> f64 + Send + Sync),
    /// setseed(x): reseeds that source.
    pub reseed: &'a (dyn Fn(f64) + Send + Sync),
    /// The sequences the statement calls.
    pub sequences: &'a StatementSequences<'a>,
    /// Who and where the session is (current_user, current_schema, current_setting...).
    pub session: &'a SessionInfo<'a>,
    /// The system catalog, for the functions that look things up in it.
    pub system: Option<&'a crate::system::SystemCatalog>,
}

/// An advisory lock's key from its arguments: one bigint, or two integers (`None` if one is
/// NULL: the call returns NULL, as a strict function does).
fn advisory_key(values: &[Value]) -> Option<crate::advisory::LockKey> {
    use crate::advisory::LockKey;
    let int = |v: &Value| match v {
        Value::Int2(n) => Some(i64::from(*n)),
        Value::Int4(n) => Some(i64::from(*n)),
        Value::Int8(n) => Some(*n),
        _ => None,
    };
    match values {
        [one] => int(one).map(LockKey::Single),
        [a, b] => Some(LockKey::Pair(
            i32::try_from(int(a)?).ok()?,
            i32::try_from(int(b)?).ok()?,
        )),
        _ => None,
    }
}

/// What functions can ask of the session running a statement.
#[derive(Clone, Copy, Debug)]
pub struct SessionInfo<'a> {
    /// The user it connected as.
    pub user: &'a str,
    /// The database it connected to.
    pub database: &'a str,
    /// Its backend process id (BackendKeyData).
    pub pid: i32,
    /// Its schemas to search, in order.
    pub search_path: &'a [String],
    /// Its settings by canonical name.
    pub settings: &'a std::collections::BTreeMap<String, String>,
    /// The advisory lock table, the session's id in it, and the session's flag that it has
    /// used the table (set by every advisory lock call).
    pub advisory: Option<(
        &'a crate::advisory::AdvisoryLocks,
        u64,
        &'a std::sync::atomic::AtomicBool,
    )>,
    /// What pg_sleep has slept of the statement.
    pub sleep: Option<&'a SleepCredit>,
    /// pg_notify's notifications, sent (or held for COMMIT) when the statement succeeds.
    pub notify: Option<&'a std::sync::Mutex<Vec<(String, String)>>>,
    /// Every session's cancel token by backend pid (pg_cancel_backend).
    pub backends:
        Option<&'a std::sync::Mutex<std::collections::HashMap<i32, crate::session::CancelToken>>>,
    /// The session's open cursors (pg_cursors): name, WITH HOLD, SCROLL.
    pub cursors: &'a [(String, bool, bool)],
    /// set_config's settings, applied when the statement succeeds.
    pub set_config: Option<&'a std::sync::Mutex<Vec<ConfigChange>>>,
}

/// pg_sleep within synchronous evaluation: a call the statement has not slept for yet fails
/// with an error [`is_would_sleep`] recognises; the session undoes the attempt, sleeps, adds
/// the time here and runs the statement again, whose calls then draw on the credit in order.
#[derive(Debug, Default)]
pub struct SleepCredit(std::sync::Mutex<SleepState>);

#[derive(Debug, Default)]
struct SleepState {
    /// Slept for the statement so far.
    credit: std::time::Duration,
    /// Drawn by this attempt's calls so far.
    used: std::time::Duration,
    /// What the failed attempt needs slept.
    needed: std::time::Duration,
}

const WOULD_SLEEP: SqlState = SqlState("55P0S");

/// A pg_sleep call that the session must sleep for before the statement runs again.
pub fn is_would_sleep(error: &SqlError) -> bool {
    error.state == WOULD_SLEEP
}

impl SleepCredit {
    fn state(&self) -> std::sync::MutexGuard<'_, SleepState> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new statement: nothing slept yet.
    pub fn reset(&self) {
        *self.state() = SleepState::default();
    }

    /// A new attempt of the statement: its calls draw on the credit from the start.
    pub fn begin_attempt(&self) {
        self.state().used = std::time::Duration::ZERO;
    }

    /// How long the failed attempt needs slept.
    pub fn needed(&self) -> std::time::Duration {
        self.state().needed
    }

    /// The session slept `slept`.
    pub fn credit(&self, slept: std::time::Duration) {
        let mut state = self.state();
        state.credit += slept;
        state.needed = std::time::Duration::ZERO;
    }

    /// One pg_sleep call of `wanted`: drawn from the credit, or an error asking for the rest.
    fn sleep(&self, wanted: std::time::Duration) -> SqlResult<()> {
        let mut state = self.state();
        let available = state.credit.saturating_sub(state.used);
        if available >= wanted {
            state.used += wanted;
            return Ok(());
        }
        state.needed = wanted - available;
        Err(SqlError::new(WOULD_SLEEP, "pg_sleep"))
    }
}

/// A setting set_config makes: name, value, and whether it is LOCAL to the transaction.
pub type ConfigChange = (String, String, bool);

impl SessionInfo<'_> {
    /// A session with nothing set (index expressions, which must not depend on one).
    pub const NONE: SessionInfo<'static> = SessionInfo {
        user: "",
        database: "",
        pid: 0,
        search_path: &[],
        settings: &EMPTY_SETTINGS,
        advisory: None,
        sleep: None,
        notify: None,
        backends: None,
        cursors: &[],
        set_config: None,
    };
}

static EMPTY_SETTINGS: std::collections::BTreeMap<String, String> =
    std::collections::BTreeMap::new();

/// An uncorrelated subquery's rows, computed once before its statement, with a hash set of
/// its first column for `IN` when it has more than a few rows.
pub struct SubqueryRows {
    /// The rows.
    pub rows: Vec<Vec<Value>>,
    /// First-column values (not NULL), their type, and whether a NULL was among them.
    distinct_first: Option<(HashSet<GroupKey>, DataType, bool)>,
}

impl SubqueryRows {
    /// Rows whose first column has type `first_type`.
    pub fn new(rows: Vec<Vec<Value>>, first_type: Option<DataType>) -> Self {
        // Below this many rows a scan costs no more than hashing.
        const HASH_FROM: usize = 16;
        let distinct_first = first_type.filter(|_| rows.len() >= HASH_FROM).map(|ty| {
            let mut saw_null = false;
            let mut set = HashSet::with_capacity(rows.len());
            for row in &rows {
                match row.first() {
                    Some(Value::Null) | None => saw_null = true,
                    Some(value) => {
                        set.insert(GroupKey(vec![value.clone()]));
                    }
                }
            }
            (set, ty, saw_null)
        });
        SubqueryRows {
            rows,
            distinct_first,
        }
    }

    /// `value IN (subquery)` by the hash set, if there is one and `value`'s type hashes
    /// alike: true, false, or NULL (no match but a NULL among the rows).
    fn hashed_in(&self, value: &Value) -> Option<Option<bool>> {
        let (set, ty, saw_null) = self.distinct_first.as_ref()?;
        if !ops::hash_alike(&value.data_type(), ty) {
            return None;
        }
        Some(if set.contains(&GroupKey(vec![value.clone()])) {
            Some(true)
        } else if *saw_null {
            None
        } else {
            Some(false)
        })
    }
}

/// How a subquery's rows are used.
#[derive(Clone, Debug, PartialEq)]
pub enum SubqueryUse {
    /// `(SELECT x ...)`: its one value (NULL if no row; more than one row is an error).
    Scalar,
    /// `ARRAY(SELECT x ...)`: its values as an array (empty if no row).
    Array,
    /// `[NOT] EXISTS (SELECT ...)`.
    Exists {
        /// NOT EXISTS.
        negated: bool,
    },
    /// `x op ANY (SELECT y ...)` / `x op ALL (SELECT y ...)`.
    Quantified {
        /// The left operand.
        value: Box<Expr>,
        /// The comparison.
        op: CmpOp,
        /// ALL (every row) rather than ANY (some row).
        all: bool,
    },
    /// `x [NOT] IN (SELECT y ...)`.
    In {
        /// The value looked for.
        value: Box<Expr>,
        /// NOT IN.
        negated: bool,
    },
}

impl Expr {
    /// The expression's type.
    pub fn ty(&self) -> DataType {
        match self {
            Expr::Column { ty, .. }
            | Expr::Outer { ty, .. }
            | Expr::Param { ty, .. }
            | Expr::AggRef { ty, .. }
            | Expr::Aggregate { ty, .. }
            | Expr::Window { ty, .. }
            | Expr::Subquery { ty, .. } => ty.clone(),
            Expr::Literal(_, ty)
            | Expr::Neg(_, ty)
            | Expr::Arith(_, _, _, ty)
            | Expr::Cast(_, ty)
            | Expr::Case { ty, .. }
            | Expr::Func(_, _, ty) => ty.clone(),
            Expr::Not(_)
            | Expr::Cmp(..)
            | Expr::And(..)
            | Expr::Or(..)
            | Expr::Like { .. }
            | Expr::IsNull(..)
            | Expr::InList(..) => DataType::Bool,
            Expr::Concat(..) => DataType::Text,
        }
    }

    /// Whether the expression refers to no column of the row (constants and parameters only).
    pub fn is_row_independent(&self) -> bool {
        let mut independent = true;
        self.walk(&mut |e| {
            if matches!(
                e,
                Expr::Column { .. }
                    | Expr::AggRef { .. }
                    | Expr::Aggregate { .. }
                    | Expr::Window { .. }
            ) {
                independent = false;
            }
        });
        independent
    }

    /// Calls `f` on this node and every node below it.
    pub fn walk(&self, f: &mut impl FnMut(&Expr)) {
        f(self);
        match self {
            Expr::Column { .. }
            | Expr::Outer { .. }
            | Expr::Literal(..)
            | Expr::Param { .. }
            | Expr::AggRef { .. }
            | Expr::Aggregate { .. }
            | Expr::Window { .. } => {}
            Expr::Neg(e, _) | Expr::Not(e) | Expr::IsNull(e, _) | Expr::Cast(e, _) => e.walk(f),
            Expr::Arith(_, a, b, _)
            | Expr::Cmp(_, a, b)
            | Expr::And(a, b)
            | Expr::Or(a, b)
            | Expr::Concat(a, b) => {
                a.walk(f);
                b.walk(f);
            }
            Expr::Like { expr, pattern, .. } => {
                expr.walk(f);
                pattern.walk(f);
            }
            Expr::InList(e, list, _) => {
                e.walk(f);
                list.iter().for_each(|x| x.walk(f));
            }
            Expr::Case {
                operand,
                whens,
                otherwise,
                ..
            } => {
                if let Some(o) = operand {
                    o.walk(f);
                }
                for (w, t) in whens {
                    w.walk(f);
                    t.walk(f);
                }
                if let Some(o) = otherwise {
                    o.walk(f);
                }
            }
            Expr::Func(_, args, _) => args.iter().for_each(|x| x.walk(f)),
            Expr::Subquery { usage, .. } => match usage {
                SubqueryUse::In { value, .. } | SubqueryUse::Quantified { value, .. } => {
                    value.walk(f)
                }
                _ => {}
            },
        }
    }

    /// Rebuilds the expression with `f` applied to each direct child.
    pub fn map_children(self, f: &mut impl FnMut(Expr) -> SqlResult<Expr>) -> SqlResult<Expr> {
        #[allow(clippy::boxed_local)] // the children are boxed already; keep their boxes
        fn b(e: Box<Expr>, f: &mut impl FnMut(Expr) -> SqlResult<Expr>) -> SqlResult<Box<Expr>> {
            Ok(Box::new(f(*e)?))
        }
        Ok(match self {
            leaf @ (Expr::Column { .. }
            | Expr::Outer { .. }
            | Expr::Literal(..)
            | Expr::Param { .. }
            | Expr::AggRef { .. }
            | Expr::Aggregate { .. }
            | Expr::Window { .. }) => leaf,
            Expr::Neg(e, ty) => Expr::Neg(b(e, f)?, ty),
            Expr::Not(e) => Expr::Not(b(e, f)?),
            Expr::IsNull(e, n) => Expr::IsNull(b(e, f)?, n),
            Expr::Cast(e, ty) => Expr::Cast(b(e, f)?, ty),
            Expr::Arith(op, x, y, ty) => Expr::Arith(op, b(x, f)?, b(y, f)?, ty),
            Expr::Cmp(op, x, y) => Expr::Cmp(op, b(x, f)?, b(y, f)?),
            Expr::And(x, y) => Expr::And(b(x, f)?, b(y, f)?),
            Expr::Or(x, y) => Expr::Or(b(x, f)?, b(y, f)?),
            Expr::Concat(x, y) => Expr::Concat(b(x, f)?, b(y, f)?),
            Expr::Like {
                expr,
                pattern,
                negated,
                case_insensitive,
                escape,
            } => Expr::Like {
                expr: b(expr, f)?,
                pattern: b(pattern, f)?,
                negated,
                case_insensitive,
                escape,
            },
            Expr::InList(e, list, n) => {
                let e = b(e, f)?;
                let list = list
                    .into_iter()
                    .map(&mut *f)
                    .collect::<SqlResult<Vec<_>>>()?;
                Expr::InList(e, list, n)
            }
            Expr::Case {
                operand,
                whens,
                otherwise,
                ty,
            } => {
                let operand = match operand {
                    Some(o) => Some(b(o, f)?),
                    None => None,
                };
                let mut mapped = Vec::with_capacity(whens.len());
                for (w, t) in whens {
                    mapped.push((f(w)?, f(t)?));
                }
                let otherwise = match otherwise {
                    Some(o) => Some(b(o, f)?),
                    None => None,
                };
                Expr::Case {
                    operand,
                    whens: mapped,
                    otherwise,
                    ty,
                }
            }
            Expr::Func(func, args, ty) => Expr::Func(
                func,
                args.into_iter()
                    .map(&mut *f)
                    .collect::<SqlResult<Vec<_>>>()?,
                ty,
            ),
            Expr::Subquery {
                index,
                usage,
                ty,
                correlated,
            } => {
                let usage = match usage {
                    SubqueryUse::In { value, negated } => SubqueryUse::In {
                        value: b(value, f)?,
                        negated,
                    },
                    SubqueryUse::Quantified { value, op, all } => SubqueryUse::Quantified {
                        value: b(value, f)?,
                        op,
                        all,
                    },
                    other => other,
                };
                Expr::Subquery {
                    index,
                    usage,
                    ty,
                    correlated,
                }
            }
        })
    }

    /// Evaluates against `row`.
    pub fn eval(&self, row: &[Value], ctx: &EvalContext<'_>) -> SqlResult<Value> {
        Ok(match self {
            Expr::Column { index, .. } | Expr::AggRef { index, .. } => row
                .get(*index)
                .cloned()
                .ok_or_else(|| SqlError::internal(format!("column {index} missing from row")))?,
            Expr::Literal(value, _) => value.clone(),
            Expr::Outer { level, index, .. } => ctx
                .outer
                .len()
                .checked_sub(level + 1)
                .and_then(|depth| ctx.outer.get(depth))
                .and_then(|row| row.get(*index))
                .cloned()
                .ok_or_else(|| {
                    SqlError::internal(format!("outer column {index} at level {level} missing"))
                })?,
            Expr::Aggregate { .. } => {
                return Err(SqlError::new(
                    SqlState::GROUPING_ERROR,
                    "aggregate functions are not allowed here",
                ))
            }
            Expr::Window { .. } => {
                return Err(SqlError::new(
                    SqlState("42P20"),
                    "window functions are not allowed here",
                ))
            }
            Expr::Param { index, .. } => ctx.params.get(*index).cloned().ok_or_else(|| {
                SqlError::new(
                    SqlState::UNDEFINED_PARAMETER,
                    format!("there is no parameter ${}", index + 1),
                )
            })?,
            Expr::Neg(e, _) => ops::negate(&e.eval(row, ctx)?)?,
            Expr::Not(e) => match truth(&e.eval(row, ctx)?)? {
                Some(b) => Value::Bool(!b),
                None => Value::Null,
            },
            Expr::Arith(op, a, b, _) => {
                ops::arith(*op, &a.eval(row, ctx)?, &b.eval(row, ctx)?, ctx.zone)?
            }
            Expr::Cmp(op, a, b) => match ops::compare(&a.eval(row, ctx)?, &b.eval(row, ctx)?)? {
                Some(ordering) => Value::Bool(op.holds(ordering)),
                None => Value::Null,
            },
            Expr::And(a, b) => {
                let left = truth(&a.eval(row, ctx)?)?;
                if left == Some(false) {
                    return Ok(Value::Bool(false));
                }
                match (left, truth(&b.eval(row, ctx)?)?) {
                    (_, Some(false)) => Value::Bool(false),
                    (Some(true), Some(true)) => Value::Bool(true),
                    _ => Value::Null,
                }
            }
            Expr::Or(a, b) => {
                let left = truth(&a.eval(row, ctx)?)?;
                if left == Some(true) {
                    return Ok(Value::Bool(true));
                }
                match (left, truth(&b.eval(row, ctx)?)?) {
                    (_, Some(true)) => Value::Bool(true),
                    (Some(false), Some(false)) => Value::Bool(false),
                    _ => Value::Null,
                }
            }
            Expr::Concat(a, b) => {
                let (a, b) = (a.eval(row, ctx)?, b.eval(row, ctx)?);
                if a.is_null() || b.is_null() {
                    Value::Null
                } else {
                    Value::Text(format!(
                        "{}{}",
                        as_text(&a, ctx.zone),
                        as_text(&b, ctx.zone)
                    ))
                }
            }
            Expr::Like {
                expr,
                pattern,
                negated,
                case_insensitive,
                escape,
            } => {
                let (value, pattern) = (expr.eval(row, ctx)?, pattern.eval(row, ctx)?);
                if value.is_null() || pattern.is_null() {
                    Value::Null
                } else {
                    let (mut value, mut pattern) =
                        (as_text(&value, ctx.zone), as_text(&pattern, ctx.zone));
                    if *case_insensitive {
                        value = value.to_lowercase();
                        pattern = pattern.to_lowercase();
                    }
                    Value::Bool(like(&value, &pattern, *escape)? != *negated)
                }
            }
            Expr::IsNull(e, negated) => Value::Bool(e.eval(row, ctx)?.is_null() != *negated),
            Expr::InList(e, list, negated) => {
                let value = e.eval(row, ctx)?;
                if value.is_null() {
                    return Ok(Value::Null);
                }
                let items = list.iter().map(|item| item.eval(row, ctx));
                negate_if(quantified(&value, items, CmpOp::Eq, false)?, *negated)
            }
            Expr::Cast(e, ty) => cast::cast(e.eval(row, ctx)?, ty, true, ctx.zone)?,
            Expr::Case {
                operand,
                whens,
                otherwise,
                ..
            } => {
                let operand = match operand {
                    Some(o) => Some(o.eval(row, ctx)?),
                    None => None,
                };
                for (when, then) in whens {
                    let hit = match &operand {
                        Some(value) => {
                            ops::compare(value, &when.eval(row, ctx)?)? == Some(Ordering::Equal)
                        }
                        None => truth(&when.eval(row, ctx)?)? == Some(true),
                    };
                    if hit {
                        return then.eval(row, ctx);
                    }
                }
                match otherwise {
                    Some(e) => e.eval(row, ctx)?,
                    None => Value::Null,
                }
            }
            Expr::Func(func, args, ty) => eval_func(*func, args, ty, row, ctx)?,
            Expr::Subquery {
                index,
                usage,
                correlated,
                ..
            } => {
                let computed = if *correlated {
                    ctx.correlated
                        .iter()
                        .find(|(i, _)| i == index)
                        .map(|(_, rows)| rows)
                } else {
                    ctx.subqueries.get(*index)
                };
                let computed = computed.ok_or_else(|| {
                    SqlError::internal(format!("subquery {index} was not computed"))
                })?;
                let rows = &computed.rows;
                match usage {
                    SubqueryUse::Scalar => {
                        match rows.as_slice() {
                            [] => Value::Null,
                            [row] => row.first().cloned().unwrap_or(Value::Null),
                            _ => return Err(SqlError::new(
                                SqlState::CARDINALITY_VIOLATION,
                                "more than one row returned by a subquery used as an expression",
                            )),
                        }
                    }
                    SubqueryUse::Array => Value::Array(
                        rows.iter()
                            .map(|r| r.first().cloned().unwrap_or(Value::Null))
                            .collect(),
                    ),
                    SubqueryUse::Exists { negated } => Value::Bool(rows.is_empty() == *negated),
                    SubqueryUse::Quantified { value, op, all } => {
                        let value = value.eval(row, ctx)?;
                        quantified(&value, first_column(rows), *op, *all)?
                    }
                    SubqueryUse::In { value, negated } => {
                        let value = value.eval(row, ctx)?;
                        if value.is_null() {
                            return Ok(if rows.is_empty() {
                                Value::Bool(*negated)
                            } else {
                                Value::Null
                            });
                        }
                        if let Some(found) = computed.hashed_in(&value) {
                            return Ok(match found {
                                Some(found) => Value::Bool(found != *negated),
                                None => Value::Null,
                            });
                        }
                        negate_if(
                            quantified(&value, first_column(rows), CmpOp::Eq, false)?,
                            *negated,
                        )
                    }
                }
            }
        })
    }
}

/// Evaluates a regular-expression function (NULL if an argument is NULL).
fn eval_regex(func: RegexFunc, values: &[Value]) -> SqlResult<Value> {
    let text = |i: usize| match values.get(i) {
        Some(Value::Text(s)) => Some(s.as_str()),
        _ => None,
    };
    let (Some(value), Some(pattern)) = (text(0), text(1)) else {
        return Ok(Value::Null);
    };
    let flags = |i: usize| -> SqlResult<(bool, bool)> {
        let flags = text(i).unwrap_or("");
        if let Some(bad) = flags.chars().find(|c| !matches!(c, 'g' | 'i' | 'c')) {
            return Err(SqlError::new(
                SqlState::INVALID_PARAMETER_VALUE,
                format!("invalid regular expression option: \"{bad}\""),
            ));
        }
        Ok((flags.contains('g'), flags.contains('i')))
    };
    Ok(match func {
        RegexFunc::Match {
            case_insensitive,
            negated,
        } => Value::Bool(
            crate::regex::compile(pattern, case_insensitive)?.is_match(value) != negated,
        ),
        RegexFunc::Similar { negated } => {
            let escape = match values.get(2) {
                Some(Value::Text(e)) if e.chars().count() > 1 => {
                    return Err(SqlError::new(SqlState("22025"), "invalid escape string")
                        .with_hint("Escape string must be empty or one character."))
                }
                Some(Value::Text(e)) => e.chars().next(),
                _ => None,
            };
            let regex =
                crate::regex::compile(&crate::regex::similar_to_regex(pattern, escape), false)?;
            Value::Bool(regex.is_match(value) != negated)
        }
        RegexFunc::Replace => {
            let Some(replacement) = text(2) else {
                return Ok(Value::Null);
            };
            let (global, insensitive) = flags(3)?;
            let regex = crate::regex::compile(pattern, insensitive)?;
            let replacement = crate::regex::replacement(replacement);
            Value::Text(if global {
                regex.replace_all(value, replacement.as_str()).into_owned()
            } else {
                regex.replace(value, replacement.as_str()).into_owned()
            })
        }
        RegexFunc::Like => {
            let (_, insensitive) = flags(2)?;
            Value::Bool(crate::regex::compile(pattern, insensitive)?.is_match(value))
        }
    })
}

/// A json or jsonb value as a document (`None` for anything else, NULL included).
fn document(value: &Value) -> SqlResult<Option<Json>> {
    Ok(match value {
        Value::Jsonb(json) => Some(json.clone()),
        Value::Json(text) => Some(json::parse(text, "json")?),
        _ => None,
    })
}

/// A SQL value as JSON, as to_jsonb converts it (dates and timestamps as ISO 8601 strings,
/// `timestamptz` in the session's time zone `zone`).
pub fn to_json(value: &Value, zone: &TimeZone) -> SqlResult<Json> {
    Ok(match value {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int2(_) | Value::Int4(_) | Value::Int8(_) | Value::Numeric(_) => {
            match cast::cast_to_number(
                value.clone(),
                &DataType::Numeric {
                    precision: None,
                    scale: None,
                },
            )? {
                Value::Numeric(n) if n.is_nan() || n.is_infinite() => Json::String(n.to_string()),
                Value::Numeric(n) => Json::Number(n),
                _ => Json::Null,
            }
        }
        Value::Float4(_) | Value::Float8(_) => {
            let text = text::format_text(value, zone);
            match crate::types::Numeric::parse(&text) {
                Ok(n) if !n.is_nan() && !n.is_infinite() => Json::Number(n),
                _ => Json::String(text),
            }
        }
        Value::Timestamp(t) => {
            Json::String(datetime::format_timestamp(*t, None).replacen(' ', "T", 1))
        }
        Value::TimestampTz(t) => {
            let mut text = datetime::format_timestamp(zone.to_local(*t), None);
            if text.as_bytes()[0].is_ascii_digit() {
                // ISO 8601 (XSD), as PostgreSQL's JSON shows it: `T`, and `+HH:MM`
                // (before the era).
                let bc = text.ends_with(" BC");
                text.truncate(text.len() - if bc { 3 } else { 0 });
                text = text.replacen(' ', "T", 1);
                text.push_str(&format_offset(zone.offset_at(*t), true));
                if bc {
                    text.push_str(" BC");
                }
            }
            Json::String(text)
        }
        Value::Array(items) => Json::Array(
            items
                .iter()
                .map(|item| to_json(item, zone))
                .collect::<SqlResult<_>>()?,
        ),
        Value::Json(text) => json::parse(text, "json")?,
        Value::Jsonb(json) => json.clone(),
        other => Json::String(text::format_text(other, zone)),
    })
}

/// A value as `json` text, as PostgreSQL's `to_json` writes it: arrays and rows without
/// spaces (`[1,2]`, `{"a":1}`), a json value as written, a jsonb value in jsonb's text form.
pub fn json_text(value: &Value, zone: &TimeZone) -> SqlResult<String> {
    Ok(match value {
        Value::Json(text) => text.clone(),
        Value::Jsonb(json) => json.to_text(),
        Value::Array(items) => {
            let items = items
                .iter()
                .map(|item| json_text(item, zone))
                .collect::<SqlResult<Vec<_>>>()?;
            format!("[{}]", items.join(","))
        }
        other => to_json(other, zone)?.to_compact_text(),
    })
}

/// `{"key" : value, ...}` from alternating keys and values, with PostgreSQL's spacing for
/// json_build_object (`" : "`, `", "`) or row_to_json (`":"`, `","`).
fn json_object_text(
    pairs: &[Value],
    colon: &str,
    comma: &str,
    zone: &TimeZone,
) -> SqlResult<String> {
    let mut out = String::from("{");
    for (n, pair) in pairs.chunks(2).enumerate() {
        if n > 0 {
            out.push_str(comma);
        }
        json::write_string(&text::format_text(&pair[0], zone), &mut out);
        out.push_str(colon);
        match pair.get(1) {
            Some(value) => out.push_str(&json_text(value, zone)?),
            None => out.push_str("null"),
        }
    }
    out.push('}');
    Ok(out)
}

/// A document as a value of `ty` (json keeps PostgreSQL's json spacing).
fn json_value(json: Json, ty: &DataType) -> Value {
    match ty {
        DataType::Json => Value::Json(json.to_json_text()),
        _ => Value::Jsonb(json.normalized()),
    }
}

/// Evaluates a json / jsonb operator or function over its evaluated arguments.
fn eval_json(
    func: JsonFunc,
    values: Vec<Value>,
    ty: &DataType,
    zone: &TimeZone,
) -> SqlResult<Value> {
    let first = values.first().cloned().unwrap_or(Value::Null);
    let second = values.get(1).cloned().unwrap_or(Value::Null);
    let texts = |v: &Value| -> Vec<String> {
        match v {
            Value::Array(items) => items
                .iter()
                .filter_map(|item| match item {
                    Value::Text(s) => Some(s.clone()),
                    _ => None,
                })
                .collect(),
            _ => vec![],
        }
    };
    Ok(match func {
        JsonFunc::Get | JsonFunc::GetText => {
            // On json, the member's own text is kept as written.
            if let Value::Json(text) = &first {
                let members = json::raw_members(text)?;
                let found = match &second {
                    Value::Text(key) => members
                        .iter()
                        .rev()
                        .find(|(k, _)| k.as_deref() == Some(key.as_str()))
                        .map(|(_, raw)| *raw),
                    Value::Int4(_) | Value::Int2(_) | Value::Int8(_) => {
                        let len = i64::try_from(members.len()).unwrap_or(i64::MAX);
                        let index = match second {
                            Value::Int2(i) => i64::from(i),
                            Value::Int4(i) => i64::from(i),
                            Value::Int8(i) => i,
                            _ => 0,
                        };
                        let index = if index < 0 { len + index } else { index };
                        usize::try_from(index)
                            .ok()
                            .and_then(|i| members.get(i))
                            .filter(|(k, _)| k.is_none())
                            .map(|(_, raw)| *raw)
                    }
                    _ => None,
                };
                return Ok(match (found, func) {
                    (None, _) => Value::Null,
                    (Some(raw), JsonFunc::Get) => Value::Json(raw.to_string()),
                    (Some(raw), _) => match json::parse(raw, "json")? {
                        Json::String(s) => Value::Text(s),
                        Json::Null => Value::Null,
                        _ => Value::Text(raw.to_string()),
                    },
                });
            }
            let Some(doc) = document(&first)? else {
                return Ok(Value::Null);
            };
            let found = match &second {
                Value::Text(key) => doc.member(key),
                Value::Int2(i) => doc.element(i64::from(*i)),
                Value::Int4(i) => doc.element(i64::from(*i)),
                Value::Int8(i) => doc.element(*i),
                _ => None,
            };
            match (found, func) {
                (None, _) => Value::Null,
                (Some(found), JsonFunc::Get) => Value::Jsonb(found.clone()),
                (Some(found), _) => found.as_text().map_or(Value::Null, Value::Text),
            }
        }
        JsonFunc::Path | JsonFunc::PathText => {
            let Some(doc) = document(&first)? else {
                return Ok(Value::Null);
            };
            if second.is_null() {
                return Ok(Value::Null);
            }
            let mut at = Some(&doc);
            for step in texts(&second) {
                at = at.and_then(|node| match node {
                    Json::Array(_) => step.parse::<i64>().ok().and_then(|i| node.element(i)),
                    _ => node.member(&step),
                });
            }
            match (at, func) {
                (None, _) => Value::Null,
                (Some(found), JsonFunc::Path) => json_value(found.clone(), ty),
                (Some(found), _) => found.as_text().map_or(Value::Null, Value::Text),
            }
        }
        JsonFunc::Contains | JsonFunc::ContainedBy => match (document(&first)?, document(&second)?)
        {
            (Some(a), Some(b)) => Value::Bool(if func == JsonFunc::Contains {
                a.contains(&b)
            } else {
                b.contains(&a)
            }),
            _ => Value::Null,
        },
        JsonFunc::HasKey => match (document(&first)?, &second) {
            (Some(doc), Value::Text(key)) => Value::Bool(doc.has_key(key)),
            _ => Value::Null,
        },
        JsonFunc::HasAnyKey | JsonFunc::HasAllKeys => match document(&first)? {
            Some(doc) if !second.is_null() => {
                let keys = texts(&second);
                Value::Bool(if func == JsonFunc::HasAnyKey {
                    keys.iter().any(|k| doc.has_key(k))
                } else {
                    keys.iter().all(|k| doc.has_key(k))
                })
            }
            _ => Value::Null,
        },
        JsonFunc::BuildObject => {
            if !values.len().is_multiple_of(2) {
                let name = match ty {
                    DataType::Json => "json_build_object",
                    _ => "jsonb_build_object",
                };
                return Err(SqlError::new(
                    SqlState::INVALID_PARAMETER_VALUE,
                    "argument list must have even number of elements",
                )
                .with_hint(format!(
                    "The arguments of {name}() must consist of alternating keys and values."
                )));
            }
            if let Some(n) = values.chunks(2).position(|pair| pair[0].is_null()) {
                return Err(SqlError::new(
                    SqlState("22004"),
                    format!("argument {}: key must not be null", 2 * n + 1),
                ));
            }
            if *ty == DataType::Json {
                return Ok(Value::Json(json_object_text(&values, " : ", ", ", zone)?));
            }
            let mut members = Vec::with_capacity(values.len() / 2);
            for pair in values.chunks(2) {
                members.push((text::format_text(&pair[0], zone), to_json(&pair[1], zone)?));
            }
            Value::Jsonb(Json::Object(members).normalized())
        }
        JsonFunc::RowObject => Value::Json(json_object_text(&values, ":", ",", zone)?),
        JsonFunc::BuildArray if *ty == DataType::Json => {
            let items = values
                .iter()
                .map(|v| json_text(v, zone))
                .collect::<SqlResult<Vec<_>>>()?;
            Value::Json(format!("[{}]", items.join(", ")))
        }
        JsonFunc::BuildArray => Value::Jsonb(
            Json::Array(
                values
                    .iter()
                    .map(|v| to_json(v, zone))
                    .collect::<SqlResult<_>>()?,
            )
            .normalized(),
        ),
        JsonFunc::From if first.is_null() => Value::Null,
        JsonFunc::From if *ty == DataType::Json => Value::Json(json_text(&first, zone)?),
        JsonFunc::From => Value::Jsonb(to_json(&first, zone)?.normalized()),
        JsonFunc::TypeOf => match document(&first)? {
            Some(doc) => Value::Text(doc.type_name().to_string()),
            None => Value::Null,
        },
        JsonFunc::Concat => match (document(&first)?, document(&second)?) {
            (Some(a), Some(b)) => Value::Jsonb(
                match (a, b) {
                    (Json::Object(mut a), Json::Object(b)) => {
                        a.extend(b);
                        Json::Object(a)
                    }
                    (Json::Array(mut a), Json::Array(b)) => {
                        a.extend(b);
                        Json::Array(a)
                    }
                    (Json::Array(mut a), b) => {
                        a.push(b);
                        Json::Array(a)
                    }
                    (a, Json::Array(b)) => Json::Array(std::iter::once(a).chain(b).collect()),
                    (a, b) => Json::Array(vec![a, b]),
                }
                .normalized(),
            ),
            _ => Value::Null,
        },
        JsonFunc::Remove => match (document(&first)?, &second) {
            (Some(Json::Object(members)), Value::Text(key)) => Value::Jsonb(Json::Object(
                members.into_iter().filter(|(k, _)| k != key).collect(),
            )),
            (Some(Json::Array(items)), Value::Text(key)) => Value::Jsonb(Json::Array(
                items
                    .into_iter()
                    .filter(|item| *item != Json::String(key.clone()))
                    .collect(),
            )),
            (Some(Json::Array(mut items)), Value::Int4(_) | Value::Int2(_) | Value::Int8(_)) => {
                let len = i64::try_from(items.len()).unwrap_or(i64::MAX);
                let index = int_arg(&second)?;
                let index = if index < 0 { len + index } else { index };
                if let Some(i) = usize::try_from(index).ok().filter(|i| *i < items.len()) {
                    items.remove(i);
                }
                Value::Jsonb(Json::Array(items))
            }
            (Some(Json::Object(_)), _) => {
                return Err(SqlError::new(
                    SqlState::INVALID_PARAMETER_VALUE,
                    "cannot delete from object using integer index",
                ))
            }
            (Some(_), v) if !v.is_null() => {
                return Err(SqlError::new(
                    SqlState::INVALID_PARAMETER_VALUE,
                    "cannot delete from scalar",
                ))
            }
            _ => Value::Null,
        },
        JsonFunc::Set => {
            let (Some(mut doc), path, Some(new)) = (
                document(&first)?,
                texts(&second),
                document(values.get(2).unwrap_or(&Value::Null))?,
            ) else {
                return Ok(Value::Null);
            };
            if second.is_null() {
                return Ok(Value::Null);
            }
            let create = !matches!(values.get(3), Some(Value::Bool(false)));
            json_set(&mut doc, &path, new, create);
            Value::Jsonb(doc.normalized())
        }
        JsonFunc::ArrayLength => match document(&first)? {
            Some(Json::Array(items)) => Value::Int4(i32::try_from(items.len()).unwrap_or(i32::MAX)),
            Some(Json::Object(_)) => {
                return Err(SqlError::new(
                    SqlState::INVALID_PARAMETER_VALUE,
                    "cannot get array length of a non-array",
                ))
            }
            Some(_) => {
                return Err(SqlError::new(
                    SqlState::INVALID_PARAMETER_VALUE,
                    "cannot get array length of a scalar",
                ))
            }
            None => Value::Null,
        },
    })
}

/// jsonb_set: replaces (or, with `create`, adds as the last step) the value at `path`.
fn json_set(doc: &mut Json, path: &[String], new: Json, create: bool) {
    let Some((step, rest)) = path.split_first() else {
        *doc = new;
        return;
    };
    match doc {
        Json::Object(members) => match members.iter_mut().find(|(k, _)| k == step) {
            Some((_, child)) => json_set(child, rest, new, create),
            None if create && rest.is_empty() => members.push((step.clone(), new)),
            None => {}
        },
        Json::Array(items) => {
            let Ok(index) = step.parse::<i64>() else {
                return;
            };
            let len = i64::try_from(items.len()).unwrap_or(i64::MAX);
            let at = if index < 0 { len + index } else { index };
            match usize::try_from(at).ok().filter(|i| *i < items.len()) {
                Some(i) => json_set(&mut items[i], rest, new, create),
                // Past either end: added there, as PostgreSQL does.
                None if create && rest.is_empty() => {
                    if at < 0 {
                        items.insert(0, new);
                    } else {
                        items.push(new);
                    }
                }
                None => {}
            }
        }
        _ => {}
    }
}

/// Evaluates an array function over its evaluated arguments.
fn eval_array(func: ArrayFunc, values: Vec<Value>, zone: &TimeZone) -> SqlResult<Value> {
    let mut args = values.into_iter();
    let mut next = || args.next().unwrap_or(Value::Null);
    let elements = |v: Value| match v {
        Value::Array(items) => Some(items),
        _ => None,
    };
    let int = |v: &Value| match v {
        Value::Int2(i) => Some(i64::from(*i)),
        Value::Int4(i) => Some(i64::from(*i)),
        Value::Int8(i) => Some(*i),
        _ => None,
    };
    let length = |items: &[Value]| Value::Int4(i32::try_from(items.len()).unwrap_or(i32::MAX));
    Ok(match func {
        ArrayFunc::Make => Value::Array(std::iter::from_fn(|| args.next()).collect()),
        ArrayFunc::Subscript => {
            let (array, index) = (next(), next());
            match (elements(array), int(&index)) {
                (Some(items), Some(i)) if i >= 1 => usize::try_from(i - 1)
                    .ok()
                    .and_then(|i| items.into_iter().nth(i))
                    .unwrap_or(Value::Null),
                _ => Value::Null,
            }
        }
        ArrayFunc::Any | ArrayFunc::All => {
            let (value, array, op) = (next(), next(), next());
            let Some(items) = elements(array) else {
                return Ok(Value::Null);
            };
            let op = match op {
                Value::Text(op) => op,
                _ => return Err(SqlError::internal("ANY/ALL without an operator")),
            };
            let op = match op.as_str() {
                "=" => CmpOp::Eq,
                "<>" => CmpOp::NotEq,
                "<" => CmpOp::Lt,
                "<=" => CmpOp::LtEq,
                ">" => CmpOp::Gt,
                _ => CmpOp::GtEq,
            };
            quantified(
                &value,
                items.into_iter().map(Ok),
                op,
                func == ArrayFunc::All,
            )?
        }
        ArrayFunc::Length | ArrayFunc::Lower => {
            let (array, dimension) = (next(), next());
            match (elements(array), int(&dimension)) {
                (Some(items), Some(1)) if !items.is_empty() => match func {
                    ArrayFunc::Lower => Value::Int4(1),
                    _ => length(&items),
                },
                _ => Value::Null,
            }
        }
        ArrayFunc::Cardinality => match elements(next()) {
            Some(items) => length(&items),
            None => Value::Null,
        },
        ArrayFunc::Position => {
            let (array, wanted) = (next(), next());
            match elements(array) {
                Some(items) => items
                    .iter()
                    .position(|item| ops::total_cmp(item, &wanted) == Ordering::Equal)
                    .map_or(Value::Null, |i| {
                        Value::Int4(i32::try_from(i + 1).unwrap_or(i32::MAX))
                    }),
                None => Value::Null,
            }
        }
        ArrayFunc::Append => {
            let (array, item) = (next(), next());
            let mut items = elements(array).unwrap_or_default();
            items.push(item);
            Value::Array(items)
        }
        ArrayFunc::Prepend => {
            let (item, array) = (next(), next());
            let mut items = vec![item];
            items.extend(elements(array).unwrap_or_default());
            Value::Array(items)
        }
        ArrayFunc::Cat => match (next(), next()) {
            (Value::Null, Value::Null) => Value::Null,
            (a, b) => {
                let mut items = elements(a).unwrap_or_default();
                items.extend(elements(b).unwrap_or_default());
                Value::Array(items)
            }
        },
        ArrayFunc::Remove => {
            let (array, unwanted) = (next(), next());
            match elements(array) {
                Some(items) => Value::Array(
                    items
                        .into_iter()
                        .filter(|item| ops::total_cmp(item, &unwanted) != Ordering::Equal)
                        .collect(),
                ),
                None => Value::Null,
            }
        }
        ArrayFunc::ToString => {
            let (array, delimiter, null_text) = (next(), next(), next());
            match (elements(array), delimiter) {
                (Some(items), Value::Text(delimiter)) => {
                    let pieces: Vec<String> = items
                        .iter()
                        .filter_map(|item| match (item, &null_text) {
                            (Value::Null, Value::Text(n)) => Some(n.clone()),
                            (Value::Null, _) => None,
                            (other, _) => Some(text::format_text(other, zone)),
                        })
                        .collect();
                    Value::Text(pieces.join(&delimiter))
                }
                _ => Value::Null,
            }
        }
        ArrayFunc::Contains | ArrayFunc::Overlaps => {
            let (Some(a), Some(b)) = (elements(next()), elements(next())) else {
                return Ok(Value::Null);
            };
            // NULL elements equal nothing.
            let found = |wanted: &Value| {
                !wanted.is_null()
                    && a.iter().any(|item| {
                        !item.is_null() && ops::total_cmp(item, wanted) == Ordering::Equal
                    })
            };
            Value::Bool(if func == ArrayFunc::Contains {
                b.iter().all(found)
            } else {
                b.iter().any(found)
            })
        }
        ArrayFunc::FromString => {
            let (input, delimiter, null_text) = (next(), next(), next());
            let Value::Text(input) = input else {
                return Ok(Value::Null);
            };
            let as_item = |piece: &str| match &null_text {
                Value::Text(n) if n == piece => Value::Null,
                _ => Value::Text(piece.to_string()),
            };
            Value::Array(match delimiter {
                _ if input.is_empty() => vec![],
                Value::Text(d) if d.is_empty() => vec![as_item(&input)],
                Value::Text(d) => input.split(d.as_str()).map(as_item).collect(),
                _ => input.chars().map(|c| as_item(&c.to_string())).collect(),
            })
        }
    })
}

/// `value op ANY (candidates)`, or with `all` `value op ALL (candidates)`: decided by the
/// first candidate that holds (ANY) or fails (ALL); else NULL if a comparison was NULL, else
/// false (ANY) or true (ALL). IN is `= ANY`.
fn quantified(
    value: &Value,
    candidates: impl IntoIterator<Item = SqlResult<Value>>,
    op: CmpOp,
    all: bool,
) -> SqlResult<Value> {
    let mut saw_null = false;
    for candidate in candidates {
        match ops::compare(value, &candidate?)? {
            Some(ordering) if op.holds(ordering) != all => return Ok(Value::Bool(!all)),
            Some(_) => {}
            None => saw_null = true,
        }
    }
    Ok(if saw_null {
        Value::Null
    } else {
        Value::Bool(all)
    })
}

/// NOT of a three-valued result when `negate` (NULL stays NULL).
fn negate_if(value: Value, negate: bool) -> Value {
    match (value, negate) {
        (Value::Bool(b), true) => Value::Bool(!b),
        (other, _) => other,
    }
}

/// Each subquery row's first value.
fn first_column(rows: &[Vec<Value>]) -> impl Iterator<Item = SqlResult<Value>> + '_ {
    rows.iter()
        .map(|row| Ok(row.first().cloned().unwrap_or(Value::Null)))
}

/// A boolean's truth: `Some(b)`, or `None` for NULL.
pub fn truth(value: &Value) -> SqlResult<Option<bool>> {
    match value {
        Value::Bool(b) => Ok(Some(*b)),
        Value::Null => Ok(None),
        other => Err(SqlError::new(
            SqlState::DATATYPE_MISMATCH,
            format!(
                "argument of WHERE must be type boolean, not type {}",
                other.data_type()
            ),
        )),
    }
}

/// PostgreSQL's format(): `%s` (NULL as empty), `%I` (quoted as an identifier when needed),
/// `%L` (quoted as a literal, NULL as NULL), `%%`; each optionally `%n$` to pick argument n,
/// `-` to left-justify and a width (digits, `*` for the next argument, `*n$` for argument n;
/// a negative width left-justifies).
fn format(template: &str, args: &[Value], zone: &TimeZone) -> SqlResult<String> {
    let invalid = |message: String| SqlError::new(SqlState::INVALID_PARAMETER_VALUE, message);
    let mut out = String::with_capacity(template.len());
    let mut chars = template.chars().peekable();
    let mut next_arg = 0;
    let digits = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>| {
        let mut found = String::new();
        while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
            found.push(d);
            chars.next();
        }
        found
    };
    let argument_number = |text: &str| -> SqlResult<usize> {
        match text.parse::<usize>() {
            Ok(n) if n > 0 => Ok(n - 1),
            _ => Err(invalid(
                "format specifies argument 0, but arguments are numbered from 1".into(),
            )),
        }
    };
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'%') {
            chars.next();
            out.push('%');
            continue;
        }
        // %[n$][-][width]type: a leading number is the position if a '$' follows, else the
        // width.
        let mut position = None;
        let mut width: Option<i64> = None;
        let leading = digits(&mut chars);
        if !leading.is_empty() {
            if chars.peek() == Some(&'$') {
                chars.next();
                position = Some(argument_number(&leading)?);
            } else {
                width = leading.parse().ok();
            }
        }
        let mut left = false;
        if width.is_none() {
            while chars.peek() == Some(&'-') {
                chars.next();
                left = true;
            }
            if chars.peek() == Some(&'*') {
                chars.next();
                let star = digits(&mut chars);
                let index = if star.is_empty() {
                    let index = next_arg;
                    next_arg += 1;
                    index
                } else if chars.next() == Some('$') {
                    argument_number(&star)?
                } else {
                    return Err(invalid("unterminated format() type specifier".into()));
                };
                let Some(value) = args.get(index) else {
                    return Err(invalid("too few arguments for format()".into()));
                };
                width = match value {
                    Value::Null => None,
                    other => Some(int_arg(other)?),
                };
            } else {
                let explicit = digits(&mut chars);
                if !explicit.is_empty() {
                    width = explicit.parse().ok();
                }
            }
        }
        let Some(kind) = chars.next() else {
            return Err(invalid("unterminated format() type specifier".into()));
        };
        if !matches!(kind, 's' | 'I' | 'L') {
            return Err(invalid(format!(
                "unrecognized format() type specifier \"{kind}\""
            )));
        }
        let index = position.unwrap_or(next_arg);
        next_arg = index + 1;
        let Some(value) = args.get(index) else {
            return Err(invalid("too few arguments for format()".into()));
        };
        let text = match (kind, value) {
            ('s', Value::Null) => String::new(),
            ('s', v) => as_text(v, zone),
            ('I', Value::Null) => {
                return Err(SqlError::new(
                    SqlState("22004"),
                    "null values cannot be formatted as an SQL identifier",
                ))
            }
            ('I', v) => quote_ident(&as_text(v, zone)),
            (_, Value::Null) => "NULL".to_string(),
            (_, v) => quote_literal(&as_text(v, zone)),
        };
        let (left, width) = match width {
            Some(w) if w < 0 => (true, w.unsigned_abs()),
            Some(w) => (left, w.unsigned_abs()),
            None => (left, 0),
        };
        let pad = usize::try_from(width)
            .unwrap_or(usize::MAX)
            .saturating_sub(text.chars().count());
        if pad > 1 << 30 {
            return Err(SqlError::new(
                SqlState::PROGRAM_LIMIT_EXCEEDED,
                "requested length too large",
            ));
        }
        if left {
            out.push_str(&text);
            out.extend(std::iter::repeat_n(' ', pad));
        } else {
            out.extend(std::iter::repeat_n(' ', pad));
            out.push_str(&text);
        }
    }
    Ok(out)
}

/// An identifier as SQL text: as `quote_ident` writes it, and quoted too when it is any of
/// sqlparser's keywords (a superset of PostgreSQL's reserved ones), so that the text parses
/// back to the same name here.
fn quote_ident(name: &str) -> String {
    let keyword = sqlparser::keywords::ALL_KEYWORDS
        .binary_search(&name.to_ascii_uppercase().as_str())
        .is_ok();
    match keyword {
        true => format!("\"{}\"", name.replace('"', "\"\"")),
        false => crate::system::quote_ident(name),
    }
}

/// A string as an SQL literal, with PostgreSQL's E'' form when it holds backslashes.
fn quote_literal(text: &str) -> String {
    let body = text.replace('\'', "''");
    if text.contains('\\') {
        format!("E'{}'", body.replace('\\', "\\\\"))
    } else {
        format!("'{body}'")
    }
}

fn as_text(value: &Value, zone: &TimeZone) -> String {
    match value {
        Value::Text(s) => s.clone(),
        other => text::format_text(other, zone),
    }
}

fn eval_func(
    func: Func,
    args: &[Expr],
    ty: &DataType,
    row: &[Value],
    ctx: &EvalContext<'_>,
) -> SqlResult<Value> {
    let values = args
        .iter()
        .map(|a| a.eval(row, ctx))
        .collect::<SqlResult<Vec<_>>>()?;
    let first = values.first().cloned().unwrap_or(Value::Null);
    Ok(match func {
        Func::Coalesce => {
            let found = values
                .into_iter()
                .find(|v| !v.is_null())
                .unwrap_or(Value::Null);
            coerce_result(found, ty, ctx.zone)?
        }
        Func::NullIf => {
            let second = values.get(1).cloned().unwrap_or(Value::Null);
            if ops::compare(&first, &second)? == Some(Ordering::Equal) {
                Value::Null
            } else {
                first
            }
        }
        Func::Lower | Func::Upper | Func::Length if first.is_null() => Value::Null,
        Func::Lower => Value::Text(as_text(&first, ctx.zone).to_lowercase()),
        Func::Upper => Value::Text(as_text(&first, ctx.zone).to_uppercase()),
        Func::Length => Value::Int4(
            i32::try_from(as_text(&first, ctx.zone).chars().count()).unwrap_or(i32::MAX),
        ),
        Func::Abs => {
            if first.is_null() {
                Value::Null
            } else if ops::compare(&first, &Value::Int4(0))? == Some(Ordering::Less) {
                ops::negate(&first)?
            } else {
                first
            }
        }
        Func::Array(func) => return eval_array(func, values, ctx.zone),
        Func::Regex(func) => return eval_regex(func, &values),
        Func::ToChar => {
            let template = match values.get(1) {
                Some(Value::Text(t)) => t.clone(),
                _ => return Ok(Value::Null),
            };
            use crate::types::to_char;
            match &first {
                Value::Null => Value::Null,
                Value::Timestamp(t) => Value::Text(to_char::format_timestamp(*t, None, &template)),
                Value::Interval(i) => Value::Text(to_char::format_interval(i, &template)),
                Value::TimestampTz(t) => Value::Text(to_char::format_timestamp(
                    ctx.zone.to_local(*t),
                    Some(ctx.zone.local_time_at(*t)),
                    &template,
                )),
                Value::Date(d) => Value::Text(to_char::format_timestamp(
                    i64::from(*d) * datetime::USECS_PER_DAY,
                    None,
                    &template,
                )),
                number => match cast::cast_to_number(
                    number.clone(),
                    &DataType::Numeric {
                        precision: None,
                        scale: None,
                    },
                )? {
                    Value::Numeric(n) => Value::Text(to_char::format_number(&n, &template)),
                    _ => Value::Null,
                },
            }
        }
        Func::Json(func) => return eval_json(func, values, ty, ctx.zone),
        Func::Catalog(func) => return crate::system::functions::eval(func, &values, ctx),
        Func::Sign => {
            let not_a_number = match &first {
                Value::Float8(f) => f.is_nan(),
                Value::Numeric(n) => n.is_nan(),
                _ => false,
            };
            if first.is_null() || not_a_number {
                first
            } else {
                let sign = match ops::compare(&first, &Value::Int4(0))? {
                    Some(Ordering::Less) => -1,
                    Some(Ordering::Greater) => 1,
                    _ => 0,
                };
                cast::cast_to_number(Value::Int4(sign), ty)?
            }
        }
        Func::Now => Value::TimestampTz(ctx.now_micros),
        Func::Random => Value::Float8((ctx.random)()),
        Func::GenRandomUuid => {
            // 3 × 53 random bits cover the 122 a version 4 UUID has.
            let mut bytes = [0u8; 16];
            let mut bits = 0u128;
            for _ in 0..3 {
                bits = (bits << 53) | ((ctx.random)() * (1u64 << 53) as f64) as u128;
            }
            bytes.copy_from_slice(&bits.to_be_bytes());
            bytes[6] = (bytes[6] & 0x0f) | 0x40;
            bytes[8] = (bytes[8] & 0x3f) | 0x80;
            Value::Uuid(bytes)
        }
        Func::NextVal if first.is_null() => Value::Null,
        Func::NextVal => Value::Int8(ctx.sequences.next(&as_text(&first, ctx.zone))?),
        Func::CurrVal if first.is_null() => Value::Null,
        Func::CurrVal => Value::Int8(ctx.sequences.current(&as_text(&first, ctx.zone))?),
        Func::LastVal => Value::Int8(ctx.sequences.last()?),
        Func::SetVal if values.iter().any(Value::is_null) => Value::Null,
        Func::SetVal => {
            let is_called = match values.get(2) {
                Some(Value::Bool(b)) => *b,
                _ => true,
            };
            let value = int_arg(&values[1])?;
            Value::Int8(
                ctx.sequences
                    .set(&as_text(&first, ctx.zone), value, is_called)?,
            )
        }
        Func::SetSeed => {
            let seed = float_arg(&first)?;
            if !(-1.0..=1.0).contains(&seed) {
                return Err(SqlError::new(
                    SqlState::INVALID_PARAMETER_VALUE,
                    format!("setseed parameter {seed} is out of allowed range [-1,1]"),
                ));
            }
            (ctx.reseed)(seed);
            Value::Text(String::new())
        }
        Func::AtTimeZone if first.is_null() => Value::Null,
        Func::AtTimeZone => {
            let name = as_text(&first, ctx.zone);
            let zone = TimeZone::named_at(&name).ok_or_else(|| {
                SqlError::new(
                    SqlState::INVALID_PARAMETER_VALUE,
                    format!("time zone \"{name}\" not recognized"),
                )
            })?;
            match &values[1] {
                Value::TimestampTz(t) => Value::Timestamp(zone.to_local(*t)),
                Value::Timestamp(t) => Value::TimestampTz(zone.to_utc(*t)),
                _ => Value::Null,
            }
        }
        Func::CurrentDate => Value::Date(
            i32::try_from(
                ctx.zone
                    .to_local(ctx.now_micros)
                    .div_euclid(datetime::USECS_PER_DAY),
            )
            .unwrap_or(i32::MAX),
        ),
        Func::Concat => {
            let mut out = String::new();
            for value in &values {
                if !value.is_null() {
                    out.push_str(&as_text(value, ctx.zone));
                }
            }
            Value::Text(out)
        }
        Func::ConcatWs if first.is_null() => Value::Null,
        Func::ConcatWs => {
            let separator = as_text(&first, ctx.zone);
            let pieces: Vec<String> = values[1..]
                .iter()
                .filter(|v| !v.is_null())
                .map(|v| as_text(v, ctx.zone))
                .collect();
            Value::Text(pieces.join(&separator))
        }
        Func::Format if first.is_null() => Value::Null,
        Func::Format => Value::Text(format(&as_text(&first, ctx.zone), &values[1..], ctx.zone)?),
        // GREATEST and LEAST skip NULLs; the functions below are strict.
        _ if !matches!(func, Func::Greatest | Func::Least) && values.iter().any(Value::is_null) => {
            Value::Null
        }
        Func::Replace => {
            let (s, from, to) = (
                as_text(&first, ctx.zone),
                as_text(&values[1], ctx.zone),
                as_text(&values[2], ctx.zone),
            );
            Value::Text(if from.is_empty() {
                s
            } else {
                s.replace(&from, &to)
            })
        }
        Func::SplitPart => {
            let (s, delimiter) = (as_text(&first, ctx.zone), as_text(&values[1], ctx.zone));
            let n = int_arg(&values[2])?;
            if n == 0 {
                return Err(SqlError::new(
                    SqlState::INVALID_PARAMETER_VALUE,
                    "field position must not be zero",
                ));
            }
            let parts: Vec<&str> = if delimiter.is_empty() {
                vec![s.as_str()]
            } else {
                s.split(delimiter.as_str()).collect()
            };
            let index = if n > 0 {
                usize::try_from(n - 1).ok()
            } else {
                parts
                    .len()
                    .checked_sub(usize::try_from(-n).unwrap_or(usize::MAX))
            };
            Value::Text(
                index
                    .and_then(|i| parts.get(i))
                    .map_or(String::new(), |p| (*p).to_string()),
            )
        }
        Func::Left | Func::Right => {
            let chars: Vec<char> = as_text(&first, ctx.zone).chars().collect();
            let n = int_arg(&values[1])?;
            let len = chars.len() as i64;
            let keep = if n >= 0 { n.min(len) } else { (len + n).max(0) } as usize;
            let taken: String = if func == Func::Left {
                chars[..keep].iter().collect()
            } else {
                chars[chars.len() - keep..].iter().collect()
            };
            Value::Text(taken)
        }
        Func::Lpad | Func::Rpad => {
            let chars: Vec<char> = as_text(&first, ctx.zone).chars().collect();
            let length = usize::try_from(int_arg(&values[1])?.max(0)).unwrap_or(0);
            let fill: Vec<char> = values
                .get(2)
                .map_or(" ".into(), |v| as_text(v, ctx.zone))
                .chars()
                .collect();
            // As PostgreSQL, no text past 1GB (a character may take 4 bytes).
            if length.saturating_mul(4) > 1 << 30 && length > chars.len() {
                return Err(SqlError::new(
                    SqlState::PROGRAM_LIMIT_EXCEEDED,
                    "requested length too large",
                ));
            }
            if chars.len() >= length || fill.is_empty() {
                return Ok(Value::Text(chars.iter().take(length).collect()));
            }
            let padding: String = fill.iter().cycle().take(length - chars.len()).collect();
            let text: String = chars.iter().collect();
            Value::Text(if func == Func::Lpad {
                padding + &text
            } else {
                text + &padding
            })
        }
        Func::Btrim | Func::Ltrim | Func::Rtrim => {
            let text = as_text(&first, ctx.zone);
            let set: Vec<char> = values
                .get(1)
                .map_or(" ".into(), |v| as_text(v, ctx.zone))
                .chars()
                .collect();
            let trimmed = match func {
                Func::Ltrim => text.trim_start_matches(set.as_slice()),
                Func::Rtrim => text.trim_end_matches(set.as_slice()),
                _ => text.trim_matches(set.as_slice()),
            };
            Value::Text(trimmed.to_string())
        }
        Func::Substr => {
            let chars: Vec<char> = as_text(&first, ctx.zone).chars().collect();
            let start = int_arg(&values[1])?;
            let end = match values.get(2) {
                Some(count) => {
                    let count = int_arg(count)?;
                    if count < 0 {
                        return Err(SqlError::new(
                            SqlState("22011"),
                            "negative substring length not allowed",
                        ));
                    }
                    start.saturating_add(count)
                }
                None => i64::MAX,
            };
            let from = usize::try_from(start.max(1) - 1)
                .unwrap_or(usize::MAX)
                .min(chars.len());
            let to = usize::try_from(end.max(1) - 1)
                .unwrap_or(usize::MAX)
                .min(chars.len());
            Value::Text(chars[from..to.max(from)].iter().collect())
        }
        Func::Strpos => {
            let (text, needle) = (as_text(&first, ctx.zone), as_text(&values[1], ctx.zone));
            let position = text
                .find(&needle)
                .map_or(0, |byte| text[..byte].chars().count() + 1);
            Value::Int4(i32::try_from(position).unwrap_or(i32::MAX))
        }
        Func::Repeat => {
            let n = usize::try_from(int_arg(&values[1])?.max(0)).unwrap_or(0);
            let text = as_text(&first, ctx.zone);
            if text.len().saturating_mul(n) > 1 << 30 {
                return Err(SqlError::new(
                    SqlState::PROGRAM_LIMIT_EXCEEDED,
                    "requested length too large",
                ));
            }
            Value::Text(text.repeat(n))
        }
        Func::Reverse => Value::Text(as_text(&first, ctx.zone).chars().rev().collect()),
        Func::Round | Func::Trunc | Func::Ceil | Func::Floor => {
            rounding(func, &first, values.get(1))?
        }
        Func::Age => {
            // Calendar differences are between wall-clock times.
            let instant = |v: &Value| match v {
                Value::Timestamp(t) => Some(*t),
                Value::TimestampTz(t) => Some(ctx.zone.to_local(*t)),
                Value::Date(d) => Some(i64::from(*d) * datetime::USECS_PER_DAY),
                _ => None,
            };
            // age(x) is age(current_date, x): from midnight of the transaction's day.
            let today = ctx.zone.to_local(ctx.now_micros);
            let midnight = today - today.rem_euclid(datetime::USECS_PER_DAY);
            let (later, earlier) = match values.as_slice() {
                [x] => (Some(midnight), instant(x)),
                [x, y] => (instant(x), instant(y)),
                _ => (None, None),
            };
            match (later, earlier) {
                (Some(a), Some(b)) => Value::Interval(crate::types::interval::Interval::age(a, b)?),
                _ => Value::Null,
            }
        }
        Func::Extract => {
            let field = as_text(&first, ctx.zone).to_lowercase();
            let text = match &values[1] {
                Value::Interval(i) => i.extract(&field).ok_or_else(|| {
                    SqlError::new(
                        SqlState::FEATURE_NOT_SUPPORTED,
                        format!("unit \"{field}\" not supported for type interval"),
                    )
                })?,
                other => extract(&field, other, ctx.zone)?,
            };
            let numeric = crate::types::Numeric::parse(&text)?;
            if *ty == DataType::Float8 {
                Value::Float8(numeric.to_f64())
            } else {
                Value::Numeric(numeric)
            }
        }
        Func::DateTrunc => {
            let field = as_text(&first, ctx.zone).to_lowercase();
            // A timestamptz is truncated on the session's wall clock.
            let (micros, with_tz) = match &values[1] {
                Value::Timestamp(m) => (*m, false),
                Value::TimestampTz(m) => (ctx.zone.to_local(*m), true),
                Value::Date(d) => (i64::from(*d) * datetime::USECS_PER_DAY, false),
                other => {
                    return Err(SqlError::internal(format!(
                        "date_trunc of {}",
                        other.data_type()
                    )))
                }
            };
            let days = micros.div_euclid(datetime::USECS_PER_DAY);
            let (year, month, _) = datetime::civil_from_days(days);
            let truncated = match field.as_str() {
                "year" => datetime::days_from_civil(year, 1, 1) * datetime::USECS_PER_DAY,
                "quarter" => {
                    datetime::days_from_civil(year, (month - 1) / 3 * 3 + 1, 1)
                        * datetime::USECS_PER_DAY
                }
                "month" => datetime::days_from_civil(year, month, 1) * datetime::USECS_PER_DAY,
                // Monday of the ISO week (2000-01-01 was a Saturday).
                "week" => (days - (days + 5).rem_euclid(7)) * datetime::USECS_PER_DAY,
                "decade" => {
                    datetime::days_from_civil(year - year.rem_euclid(10), 1, 1)
                        * datetime::USECS_PER_DAY
                }
                // Centuries and millennia start at years ending in 1 (2001), as in PostgreSQL.
                "century" | "millennium" if year > 0 => {
                    let span = if field == "century" { 100 } else { 1000 };
                    datetime::days_from_civil((year - 1) / span * span + 1, 1, 1)
                        * datetime::USECS_PER_DAY
                }
                "day" => days * datetime::USECS_PER_DAY,
                "hour" => micros.div_euclid(3_600_000_000) * 3_600_000_000,
                "minute" => micros.div_euclid(60_000_000) * 60_000_000,
                "second" => micros.div_euclid(1_000_000) * 1_000_000,
                "milliseconds" => micros.div_euclid(1_000) * 1_000,
                "microseconds" => micros,
                _ => {
                    return Err(SqlError::new(
                        SqlState::INVALID_PARAMETER_VALUE,
                        format!(
                            "unit \"{field}\" not recognized for type timestamp without time zone"
                        ),
                    ))
                }
            };
            let whole_days = !matches!(
                field.as_str(),
                "hour" | "minute" | "second" | "milliseconds" | "microseconds"
            );
            if with_tz && whole_days {
                // A new day may have another offset: read the wall-clock time back.
                Value::TimestampTz(ctx.zone.to_utc(truncated))
            } else if let (true, Value::TimestampTz(moment)) = (with_tz, &values[1]) {
                // Within the day, the offset stays: move the moment back by what was cut.
                Value::TimestampTz(moment - (micros - truncated))
            } else {
                Value::Timestamp(truncated)
            }
        }
        Func::MakeDate => {
            let (year, month, day) = (int_arg(&first)?, int_arg(&values[1])?, int_arg(&values[2])?);
            let astronomical = if year < 0 { year + 1 } else { year };
            let valid = (1..=12).contains(&month)
                && day >= 1
                && year != 0
                && day <= i64::from(datetime::days_in_month(astronomical, month as u32));
            if !valid {
                return Err(SqlError::new(
                    SqlState::DATETIME_FIELD_OVERFLOW,
                    format!("date field value out of range: {year}-{month:02}-{day:02}"),
                ));
            }
            let days = datetime::days_from_civil(astronomical, month as u32, day as u32);
            Value::Date(i32::try_from(days).map_err(|_| {
                SqlError::new(SqlState::DATETIME_FIELD_OVERFLOW, "date out of range")
            })?)
        }
        Func::Mod => ops::arith(ArithOp::Mod, &first, &values[1], ctx.zone)?,
        Func::Sqrt if matches!(first, Value::Numeric(_) | Value::Null) => match &first {
            Value::Numeric(n) => Value::Numeric(n.sqrt().ok_or_else(|| {
                SqlError::new(
                    SqlState("2201F"),
                    "cannot take square root of a negative number",
                )
            })?),
            _ => Value::Null,
        },
        Func::Power | Func::Sqrt => {
            let x = float_arg(&first)?;
            let result = if func == Func::Sqrt {
                if x < 0.0 {
                    return Err(SqlError::new(
                        SqlState("2201F"),
                        "cannot take square root of a negative number",
                    ));
                }
                x.sqrt()
            } else {
                let y = float_arg(&values[1])?;
                if x == 0.0 && y < 0.0 {
                    return Err(SqlError::new(
                        SqlState("2201F"),
                        "zero raised to a negative power is undefined",
                    ));
                }
                if x < 0.0 && y.fract() != 0.0 {
                    return Err(SqlError::new(
                        SqlState("2201F"),
                        "a negative number raised to a non-integer power yields a complex result",
                    ));
                }
                x.powf(y)
            };
            if result.is_infinite() {
                return Err(SqlError::new(
                    SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
                    "value out of range: overflow",
                ));
            }
            Value::Float8(result)
        }
        Func::Version => Value::Text(crate::version_string()),
        Func::CurrentUser => Value::Text(ctx.session.user.to_string()),
        Func::CurrentDatabase => Value::Text(ctx.session.database.to_string()),
        Func::CurrentSchema => match ctx.session.search_path.first() {
            Some(schema) => Value::Text(schema.clone()),
            None => Value::Null,
        },
        Func::CurrentSchemas => {
            let implicit = matches!(values.first(), Some(Value::Bool(true)));
            let schemas = implicit
                .then(|| "pg_catalog".to_string())
                .into_iter()
                .chain(ctx.session.search_path.iter().cloned())
                .map(Value::Text)
                .collect();
            Value::Array(schemas)
        }
        Func::BackendPid => Value::Int4(ctx.session.pid),
        Func::AdvisoryLock { shared, xact, wait } => {
            let Some(key) = advisory_key(&values) else {
                return Ok(Value::Null);
            };
            let Some((locks, session, used)) = ctx.session.advisory else {
                return Err(SqlError::unsupported(
                    "advisory locks are not available here",
                ));
            };
            used.store(true, std::sync::atomic::Ordering::Release);
            let taken = locks.acquire(session, key, shared, xact, wait)?;
            match wait {
                // void, which PostgreSQL sends as an empty text.
                true => Value::Text(String::new()),
                false => Value::Bool(taken),
            }
        }
        Func::AdvisoryUnlock { shared } => {
            let Some(key) = advisory_key(&values) else {
                return Ok(Value::Null);
            };
            let Some((locks, session, used)) = ctx.session.advisory else {
                return Err(SqlError::unsupported(
                    "advisory locks are not available here",
                ));
            };
            used.store(true, std::sync::atomic::Ordering::Release);
            Value::Bool(locks.release(session, key, shared))
        }
        Func::Sleep => {
            let seconds = match values.first() {
                Some(Value::Float8(f)) => *f,
                Some(Value::Null) | None => return Ok(Value::Null),
                Some(other) => match cast::cast(other.clone(), &DataType::Float8, false, ctx.zone)?
                {
                    Value::Float8(f) => f,
                    _ => return Ok(Value::Null),
                },
            };
            if seconds.is_finite() && seconds > 0.0 {
                let Some(credit) = ctx.session.sleep else {
                    return Err(SqlError::unsupported("pg_sleep is not available here"));
                };
                // A day at most per call, as the duration must fit.
                let wanted = std::time::Duration::from_secs_f64(seconds.min(86_400.0));
                credit.sleep(wanted)?;
            }
            Value::Text(String::new())
        }
        Func::SetConfig => {
            let (Some(Value::Text(name)), Some(value), Some(local)) =
                (values.first(), values.get(1), values.get(2))
            else {
                return Err(SqlError::new(
                    SqlState::NULL_VALUE_NOT_ALLOWED,
                    "SET requires parameter name",
                ));
            };
            let value = match value {
                Value::Text(value) => value.clone(),
                _ => String::new(),
            };
            let Some(queue) = ctx.session.set_config else {
                return Err(SqlError::unsupported("set_config is not available here"));
            };
            queue.lock().unwrap_or_else(|p| p.into_inner()).push((
                name.clone(),
                value.clone(),
                *local == Value::Bool(true),
            ));
            Value::Text(value)
        }
        Func::Notify => {
            let channel = match values.first() {
                Some(Value::Text(channel)) if !channel.is_empty() => channel.clone(),
                _ => {
                    return Err(SqlError::new(
                        SqlState::INVALID_PARAMETER_VALUE,
                        "channel name cannot be empty",
                    ))
                }
            };
            let payload = match values.get(1) {
                Some(Value::Text(payload)) => payload.clone(),
                _ => String::new(),
            };
            if payload.len() >= 8000 {
                return Err(SqlError::new(
                    SqlState::INVALID_PARAMETER_VALUE,
                    "payload string too long",
                ));
            }
            let Some(queue) = ctx.session.notify else {
                return Err(SqlError::unsupported("pg_notify is not available here"));
            };
            queue
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((channel, payload));
            Value::Text(String::new())
        }
        Func::CancelBackend => {
            let pid = match values.first() {
                Some(Value::Int4(pid)) => *pid,
                _ => return Ok(Value::Null),
            };
            let token = ctx.session.backends.and_then(|b| {
                b.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&pid)
                    .cloned()
            });
            match token {
                Some(token) => {
                    token.cancel();
                    Value::Bool(true)
                }
                None => Value::Bool(false),
            }
        }
        Func::AdvisoryUnlockAll => {
            if let Some((locks, session, used)) = ctx.session.advisory {
                used.store(true, std::sync::atomic::Ordering::Release);
                locks.release_all(session);
            }
            Value::Text(String::new())
        }
        Func::CurrentSetting => {
            let Some(Value::Text(name)) = values.first() else {
                return Ok(Value::Null);
            };
            let missing_ok = matches!(values.get(1), Some(Value::Bool(true)));
            let lower = name.to_lowercase();
            let found = ctx
                .session
                .settings
                .iter()
                .find(|(key, _)| key.to_lowercase() == lower)
                .map(|(_, value)| value.clone());
            match found {
                Some(value) => Value::Text(value),
                None if missing_ok => Value::Null,
                None => {
                    return Err(SqlError::new(
                        SqlState::UNDEFINED_OBJECT,
                        format!("unrecognized configuration parameter \"{name}\""),
                    ))
                }
            }
        }
        Func::Greatest | Func::Least => {
            let mut best: Option<Value> = None;
            for value in values.into_iter().filter(|v| !v.is_null()) {
                let value = coerce_result(value, ty, ctx.zone)?;
                best = Some(match best {
                    None => value,
                    Some(current) => {
                        let ordering = ops::total_cmp(&value, &current);
                        let better = if func == Func::Greatest {
                            ordering == Ordering::Greater
                        } else {
                            ordering == Ordering::Less
                        };
                        if better {
                            value
                        } else {
                            current
                        }
                    }
                });
            }
            best.unwrap_or(Value::Null)
        }
    })
}

/// extract's value as decimal text: integers for dates and whole-number fields, six decimals
/// for seconds and epochs of timestamps (PostgreSQL's numeric results). A `timestamptz`'s
/// fields are those of the session's wall clock in `zone`.
fn extract(field: &str, value: &Value, zone: &TimeZone) -> SqlResult<String> {
    if let Value::TimestampTz(m) = value {
        let offset = i64::from(zone.offset_at(*m));
        match field {
            "epoch" => return extract(field, &Value::Timestamp(*m), zone),
            "timezone" => return Ok(offset.to_string()),
            "timezone_hour" => return Ok((offset / 3600).to_string()),
            "timezone_minute" => return Ok((offset / 60 % 60).to_string()),
            _ => return extract(field, &Value::Timestamp(zone.to_local(*m)), zone),
        }
    }
    let (micros, is_date) = match value {
        Value::Timestamp(m) => (*m, false),
        Value::Date(d) => (i64::from(*d) * datetime::USECS_PER_DAY, true),
        other => {
            return Err(SqlError::internal(format!(
                "extract from {}",
                other.data_type()
            )))
        }
    };
    let days = micros.div_euclid(datetime::USECS_PER_DAY);
    let time = micros.rem_euclid(datetime::USECS_PER_DAY);
    let (year, month, day) = datetime::civil_from_days(days);
    let whole = |n: i64| Ok(n.to_string());
    let unsupported = || {
        SqlError::new(
            SqlState::INVALID_PARAMETER_VALUE,
            format!(
                "unit \"{field}\" not supported for type {}",
                if is_date {
                    "date"
                } else {
                    "timestamp without time zone"
                }
            ),
        )
    };
    match field {
        // 1 BC is year 0 inside, -1 to PostgreSQL.
        "year" => whole(if year > 0 { year } else { year - 1 }),
        "quarter" => whole(i64::from((month - 1) / 3 + 1)),
        "month" => whole(i64::from(month)),
        "day" => whole(i64::from(day)),
        "dow" => whole((days + 6).rem_euclid(7)),
        "isodow" => whole((days + 5).rem_euclid(7) + 1),
        "doy" => whole(days - datetime::days_from_civil(year, 1, 1) + 1),
        "hour" if !is_date => whole(time / 3_600_000_000),
        "minute" if !is_date => whole(time / 60_000_000 % 60),
        "second" if !is_date => {
            let micros = time % 60_000_000;
            Ok(format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000))
        }
        "milliseconds" if !is_date => {
            let micros = time % 60_000_000;
            Ok(format!("{}.{:03}", micros / 1_000, micros % 1_000))
        }
        "microseconds" if !is_date => whole(time % 60_000_000),
        "week" => whole(crate::types::to_char::iso_week(days).1),
        "isoyear" => whole(crate::types::to_char::iso_week(days).0),
        // PostgreSQL's rules, with BC years negative (year 0 is 1 BC).
        "decade" if year > 0 => whole(year / 10),
        "decade" => whole(-((8 - (year - 1)) / 10)),
        "century" if year > 0 => whole((year + 99) / 100),
        "century" => whole(-((99 - (year - 1)) / 100)),
        "millennium" if year > 0 => whole((year + 999) / 1000),
        "millennium" => whole(-((999 - (year - 1)) / 1000)),
        "julian" if is_date => whole(days + 2_451_545),
        "epoch" => {
            let since_1970 = micros - datetime::UNIX_EPOCH_DAYS * datetime::USECS_PER_DAY;
            if is_date {
                whole(since_1970.div_euclid(1_000_000))
            } else {
                let sign = if since_1970 < 0 { "-" } else { "" };
                let abs = since_1970.unsigned_abs();
                Ok(format!("{sign}{}.{:06}", abs / 1_000_000, abs % 1_000_000))
            }
        }
        _ => Err(unsupported()),
    }
}

fn int_arg(value: &Value) -> SqlResult<i64> {
    match cast::cast_to_number(value.clone(), &DataType::Int8)? {
        Value::Int8(n) => Ok(n),
        _ => Err(SqlError::internal("integer argument expected")),
    }
}

fn float_arg(value: &Value) -> SqlResult<f64> {
    match cast::cast_to_number(value.clone(), &DataType::Float8)? {
        Value::Float8(x) => Ok(x),
        _ => Err(SqlError::internal("numeric argument expected")),
    }
}

/// round / trunc / ceil / floor: exact on numeric (half away from zero, as PostgreSQL), on
/// double precision round is half to even (rint).
fn rounding(func: Func, value: &Value, scale: Option<&Value>) -> SqlResult<Value> {
    let scale = match scale {
        Some(s) => i32::try_from(int_arg(s)?).unwrap_or(0),
        None => 0,
    };
    Ok(match value {
        Value::Numeric(n) => Value::Numeric(match func {
            Func::Round => n.round_to_scale(scale),
            Func::Trunc => n.trunc_to_scale(scale),
            _ => {
                let truncated = n.trunc_to_scale(0);
                let exact = truncated == *n;
                let up = func == Func::Ceil && !n.is_negative() && !exact;
                let down = func == Func::Floor && n.is_negative() && !exact;
                let one = crate::types::Numeric::from_i64(1);
                if up {
                    truncated.add(&one)?
                } else if down {
                    truncated.sub(&one)?
                } else {
                    truncated
                }
            }
        }),
        other => {
            let x = float_arg(other)?;
            Value::Float8(match func {
                Func::Round => {
                    let r = x.round();
                    // rint: halves go to the even neighbour.
                    if (x - x.trunc()).abs() == 0.5 {
                        2.0 * (x / 2.0).round()
                    } else {
                        r
                    }
                }
                Func::Trunc => x.trunc(),
                Func::Ceil => x.ceil(),
                _ => x.floor(),
            })
        }
    })
}

fn coerce_result(value: Value, ty: &DataType, zone: &TimeZone) -> SqlResult<Value> {
    if value.is_null() || *ty == DataType::Unknown || value.data_type() == *ty {
        Ok(value)
    } else {
        cast::cast(value, ty, false, zone)
    }
}

/// SQL LIKE with `%`, `_` and backslash escapes.
fn like(value: &str, pattern: &str, escape: Option<char>) -> SqlResult<bool> {
    let value: Vec<char> = value.chars().collect();
    let mut tokens = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        tokens.push(match c {
            '%' => LikeToken::Any,
            '_' => LikeToken::One,
            c if Some(c) == escape => match chars.next() {
                Some(escaped) => LikeToken::Char(escaped),
                None => {
                    return Err(SqlError::new(
                        SqlState::INVALID_ESCAPE_SEQUENCE,
                        "LIKE pattern must not end with escape character",
                    ))
                }
            },
            c => LikeToken::Char(c),
        });
    }
    // Dynamic programming over (token, char) positions: linear memory, no backtracking blowup.
    let mut matches = vec![false; value.len() + 1];
    matches[0] = true;
    for token in &tokens {
        let mut next = vec![false; value.len() + 1];
        match token {
            LikeToken::Any => {
                let mut reachable = false;
                for i in 0..=value.len() {
                    reachable |= matches[i];
                    next[i] = reachable;
                }
            }
            LikeToken::One => {
                next[1..=value.len()].copy_from_slice(&matches[..value.len()]);
            }
            LikeToken::Char(c) => {
                for i in 0..value.len() {
                    next[i + 1] = matches[i] && value[i] == *c;
                }
            }
        }
        matches = next;
    }
    Ok(matches[value.len()])
}

enum LikeToken {
    Any,
    One,
    Char(char),
}

/// EXPLAIN's rendering of an expression.
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Column { name, .. } | Expr::AggRef { name, .. } => f.write_str(name),
            Expr::Outer { name, .. } => f.write_str(name),
            Expr::Aggregate { name, .. } | Expr::Window { name, .. } => f.write_str(name),
            Expr::Literal(Value::Null, _) => f.write_str("NULL"),
            Expr::Literal(Value::Text(s), _) => write!(f, "'{s}'"),
            // EXPLAIN has no session at hand: a timestamptz constant shows in UTC.
            Expr::Literal(value, _) => f.write_str(&text::format_text(value, &TimeZone::utc())),
            Expr::Param { index, .. } => write!(f, "${}", index + 1),
            Expr::Neg(e, _) => write!(f, "(- {e})"),
            Expr::Not(e) => write!(f, "(NOT {e})"),
            Expr::Arith(op, a, b, _) => {
                let symbol = match op {
                    ArithOp::Add => "+",
                    ArithOp::Sub => "-",
                    ArithOp::Mul => "*",
                    ArithOp::Div => "/",
                    ArithOp::Mod => "%",
                };
                write!(f, "({a} {symbol} {b})")
            }
            Expr::Cmp(op, a, b) => write!(f, "({a} {} {b})", op.symbol()),
            Expr::And(a, b) => write!(f, "({a} AND {b})"),
            Expr::Or(a, b) => write!(f, "({a} OR {b})"),
            Expr::Concat(a, b) => write!(f, "({a} || {b})"),
            Expr::Like {
                expr,
                pattern,
                negated,
                case_insensitive,
                ..
            } => {
                let op = match (negated, case_insensitive) {
                    (false, false) => "~~",
                    (true, false) => "!~~",
                    (false, true) => "~~*",
                    (true, true) => "!~~*",
                };
                write!(f, "({expr} {op} {pattern})")
            }
            Expr::IsNull(e, false) => write!(f, "({e} IS NULL)"),
            Expr::IsNull(e, true) => write!(f, "({e} IS NOT NULL)"),
            Expr::InList(e, list, negated) => {
                let items: Vec<String> = list.iter().map(ToString::to_string).collect();
                let op = if *negated { "<> ALL" } else { "= ANY" };
                write!(f, "({e} {op} ({}))", items.join(", "))
            }
            Expr::Cast(e, ty) => write!(f, "({e})::{ty}"),
            Expr::Case { .. } => f.write_str("CASE ... END"),
            Expr::Subquery { index, usage, .. } => match usage {
                SubqueryUse::Scalar => write!(f, "(SubPlan {})", index + 1),
                SubqueryUse::Array => write!(f, "ARRAY(SubPlan {})", index + 1),
                SubqueryUse::Exists { negated: false } => {
                    write!(f, "EXISTS(SubPlan {})", index + 1)
                }
                SubqueryUse::Exists { negated: true } => {
                    write!(f, "NOT EXISTS(SubPlan {})", index + 1)
                }
                SubqueryUse::In { value, negated } => {
                    let op = if *negated { "<> ALL" } else { "= ANY" };
                    write!(f, "({value} {op} (SubPlan {}))", index + 1)
                }
                SubqueryUse::Quantified { value, op, all } => {
                    let quantifier = if *all { "ALL" } else { "ANY" };
                    write!(
                        f,
                        "({value} {} {quantifier} (SubPlan {}))",
                        op.symbol(),
                        index + 1
                    )
                }
            },
            Expr::Func(func, args, _) => {
                let args: Vec<String> = args.iter().map(ToString::to_string).collect();
                write!(
                    f,
                    "{}({})",
                    format!("{func:?}").to_lowercase(),
                    args.join(", ")
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_matches_wildcards_and_escapes() {
        assert!(like("hello", "h%o", Some('\\')).unwrap());
        assert!(like("hello", "h_llo", Some('\\')).unwrap());
        assert!(!like("hello", "h_lo", Some('\\')).unwrap());
        assert!(like("50%", "50\\%", Some('\\')).unwrap());
        assert!(!like("500", "50\\%", Some('\\')).unwrap());
        assert!(like("", "%", Some('\\')).unwrap());
        assert!(like("a%b", "a%%b", Some('\\')).unwrap());
        assert!(like("x", "\\", Some('\\')).is_err());
        assert!(like("50%", "50!%", Some('!')).unwrap(), "ESCAPE '!'");
        assert!(
            like("a\\b", "a\\b", None).unwrap(),
            "ESCAPE '' makes backslash ordinary"
        );
    }
}
