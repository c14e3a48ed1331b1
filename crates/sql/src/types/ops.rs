//! Comparison, hashing and arithmetic on values, with PostgreSQL's type rules.
//!
//! * **Comparison** ([`compare`]) promotes across numeric types as PostgreSQL's operator
//!   resolution does: integers compare exactly with each other and with `numeric`; anything
//!   compared with a float is compared as `double precision`. Floats order NaN above every
//!   number and equal to itself, and `-0 = 0`. Strings compare byte-wise (the C collation).
//!   Dates compare with timestamps at midnight. A `timestamp` or `date` meeting a
//!   `timestamptz` is first cast to the moment it names in the session's time zone (the
//!   binder inserts that cast for comparisons, IN, ANY/ALL and subtraction).
//! * **Sorting and grouping** ([`total_cmp`], [`hash_key`]): a total order with NULLs last,
//!   and a hash consistent with equality across integer and numeric types (`1 = 1.0`).
//! * **Arithmetic** ([`arith_result_type`], [`arith`], [`negate`]): result types
//!   and overflow, division-by-zero and range errors as in PostgreSQL.

use std::cmp::Ordering;
use std::hash::{Hash, Hasher};

use super::cast::{base_type_name, TWO_POW_63};
use super::datetime::{
    DATE_INFINITY, DATE_MAX, DATE_MIN, DATE_NEG_INFINITY, TIMESTAMP_INFINITY,
    TIMESTAMP_NEG_INFINITY, USECS_PER_DAY,
};
use super::numeric::NumericKind;
use super::timezone::TimeZone;
use super::{DataType, Numeric, Value};
use crate::error::{SqlError, SqlResult, SqlState};

/// A binary arithmetic operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArithOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Mod,
}

impl ArithOp {
    /// The operator's SQL spelling.
    pub fn symbol(self) -> &'static str {
        match self {
            ArithOp::Add => "+",
            ArithOp::Sub => "-",
            ArithOp::Mul => "*",
            ArithOp::Div => "/",
            ArithOp::Mod => "%",
        }
    }
}

fn no_operator(op: &str, left: &DataType, right: &DataType) -> SqlError {
    SqlError::new(
        SqlState::UNDEFINED_FUNCTION,
        format!("operator does not exist: {} {op} {}", base_type_name(left), base_type_name(right)),
    )
    .with_hint(
        "No operator matches the given name and argument types. You might need to add explicit type casts.",
    )
}

fn not_unique(op: &str, left: &DataType, right: &DataType) -> SqlError {
    SqlError::new(
        SqlState("42725"),
        format!(
            "operator is not unique: {} {op} {}",
            base_type_name(left),
            base_type_name(right)
        ),
    )
    .with_hint(
        "Could not choose a best candidate operator. You might need to add explicit type casts.",
    )
}

// ---- comparison -----------------------------------------------------------------------

/// Orders floats as PostgreSQL does: NaN equals NaN and is above everything; `-0 = 0`.
pub fn float_cmp(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

/// Numbers in the form they are compared in.
enum Num {
    Int(i64),
    Numeric(Numeric),
    Float(f64),
}

fn as_num(v: &Value) -> Option<Num> {
    Some(match v {
        Value::Int2(i) => Num::Int(i64::from(*i)),
        Value::Int4(i) => Num::Int(i64::from(*i)),
        Value::Int8(i) => Num::Int(*i),
        Value::Float4(f) => Num::Float(f64::from(*f)),
        Value::Float8(f) => Num::Float(*f),
        Value::Numeric(n) => Num::Numeric(n.clone()),
        _ => return None,
    })
}

fn num_to_f64(n: &Num) -> f64 {
    match n {
        Num::Int(i) => *i as f64,
        Num::Numeric(n) => n.to_f64(),
        Num::Float(f) => *f,
    }
}

fn num_to_numeric(n: Num) -> Numeric {
    match n {
        Num::Int(i) => Numeric::from_i64(i),
        Num::Numeric(n) => n,
        Num::Float(f) => Numeric::from_f64(f),
    }
}

fn compare_numbers(a: Num, b: Num) -> Ordering {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => x.cmp(&y),
        (a @ Num::Float(_), b) | (a, b @ Num::Float(_)) => {
            float_cmp(num_to_f64(&a), num_to_f64(&b))
        }
        (a, b) => num_to_numeric(a).cmp(&num_to_numeric(b)),
    }
}

/// A date, timestamp or timestamptz as µs since 2000-01-01 (wide enough for every date).
fn as_instant(v: &Value) -> Option<i128> {
    Some(match v {
        Value::Date(DATE_INFINITY) => i128::MAX,
        Value::Date(DATE_NEG_INFINITY) => i128::MIN,
        Value::Date(d) => i128::from(*d) * i128::from(USECS_PER_DAY),
        Value::Timestamp(TIMESTAMP_INFINITY) | Value::TimestampTz(TIMESTAMP_INFINITY) => i128::MAX,
        Value::Timestamp(TIMESTAMP_NEG_INFINITY) | Value::TimestampTz(TIMESTAMP_NEG_INFINITY) => {
            i128::MIN
        }
        Value::Timestamp(t) | Value::TimestampTz(t) => i128::from(*t),
        _ => return None,
    })
}

/// Whether values of the two types can be compared (`=`, `<`, ...).
pub fn comparable(left: &DataType, right: &DataType) -> bool {
    let datetime = |t: &DataType| {
        matches!(
            t,
            DataType::Date | DataType::Timestamp | DataType::TimestampTz
        )
    };
    *left == DataType::Unknown
        || *right == DataType::Unknown
        || (left.is_numeric() && right.is_numeric())
        || (left.is_text() && right.is_text())
        || (datetime(left) && datetime(right))
        || std::mem::discriminant(left) == std::mem::discriminant(right)
}

/// Compares two values as SQL's `<`/`=`/`>` do: `None` if either is NULL; 42883
/// `operator does not exist: integer = text` for types that do not compare.
pub fn compare(a: &Value, b: &Value) -> SqlResult<Option<Ordering>> {
    // Same-type fast paths (sorting and grouping compare mostly these).
    match (a, b) {
        (Value::Null, _) | (_, Value::Null) => return Ok(None),
        (Value::Int4(x), Value::Int4(y)) => return Ok(Some(x.cmp(y))),
        (Value::Int8(x), Value::Int8(y)) => return Ok(Some(x.cmp(y))),
        (Value::Numeric(x), Value::Numeric(y)) => return Ok(Some(x.cmp(y))),
        (Value::Float8(x), Value::Float8(y)) => return Ok(Some(float_cmp(*x, *y))),
        _ => {}
    }
    if let (Some(x), Some(y)) = (as_num(a), as_num(b)) {
        return Ok(Some(compare_numbers(x, y)));
    }
    if let (Some(x), Some(y)) = (as_instant(a), as_instant(b)) {
        return Ok(Some(x.cmp(&y)));
    }
    Ok(Some(match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Text(x), Value::Text(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Value::Bytea(x), Value::Bytea(y)) => x.cmp(y),
        (Value::Uuid(x), Value::Uuid(y)) => x.cmp(y),
        (Value::Interval(x), Value::Interval(y)) => x.cmp_span(y),
        (Value::Array(x), Value::Array(y)) => super::array::compare_arrays(x, y),
        (Value::Jsonb(x), Value::Jsonb(y)) => x.compare(y),
        _ => {
            let (l, r) = (a.data_type(), b.data_type());
            return Err(no_operator("=", &l, &r));
        }
    }))
}

/// Rank of a value's type family, to order values that do not compare.
fn family_rank(v: &Value) -> u8 {
    match v {
        Value::Bool(_) => 0,
        Value::Int2(_)
        | Value::Int4(_)
        | Value::Int8(_)
        | Value::Float4(_)
        | Value::Float8(_)
        | Value::Numeric(_) => 1,
        Value::Text(_) => 2,
        Value::Bytea(_) => 3,
        Value::Date(_) | Value::Timestamp(_) | Value::TimestampTz(_) => 4,
        Value::Uuid(_) => 5,
        Value::Interval(_) => 6,
        Value::Array(_) => 7,
        Value::Json(_) | Value::Jsonb(_) => 8,
        Value::Null => 9,
    }
}

/// A total order for `ORDER BY`, `DISTINCT` and `GROUP BY`: [`compare`]'s order, with
/// NULLs after every value (PostgreSQL's default for ascending order) and values of types
/// that do not compare ordered by type family.
pub fn total_cmp(a: &Value, b: &Value) -> Ordering {
    match (a.is_null(), b.is_null()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        _ => {}
    }
    match compare(a, b) {
        Ok(Some(o)) => o,
        _ => family_rank(a).cmp(&family_rank(b)),
    }
}

/// Feeds `value` to `state` so that values [`total_cmp`] finds equal hash equal (for hash
/// aggregation and `DISTINCT`). Integers, integral numerics and integral floats hash as the
/// same integer; dates hash as their midnight timestamp. One PostgreSQL quirk is not
/// covered: a fractional `numeric` equals a float it converts to (`0.5 = 0.5::float8`) yet
/// hashes apart from it; grouping keys share one type, so this does not arise there.
pub fn hash_key(value: &Value, state: &mut impl Hasher) {
    fn int(i: i64, state: &mut impl Hasher) {
        1u8.hash(state);
        i.hash(state);
    }
    fn float(f: f64, state: &mut impl Hasher) {
        if f.is_nan() {
            3u8.hash(state);
        } else if f.fract() == 0.0 && (-TWO_POW_63..TWO_POW_63).contains(&f) {
            int(f as i64, state);
        } else {
            2u8.hash(state);
            f.to_bits().hash(state);
        }
    }
    match value {
        Value::Null => 0u8.hash(state),
        Value::Int2(i) => int(i64::from(*i), state),
        Value::Int4(i) => int(i64::from(*i), state),
        Value::Int8(i) => int(*i, state),
        Value::Float4(f) => float(f64::from(*f), state),
        Value::Float8(f) => float(*f, state),
        Value::Numeric(n) => match n.kind() {
            NumericKind::NaN => 3u8.hash(state),
            NumericKind::PosInf | NumericKind::NegInf => float(n.to_f64(), state),
            NumericKind::Finite => match n.is_integral().then(|| n.to_i64()).flatten() {
                Some(i) => int(i, state),
                None => {
                    4u8.hash(state);
                    n.hash(state);
                }
            },
        },
        Value::Text(s) => {
            5u8.hash(state);
            s.hash(state);
        }
        Value::Bytea(b) => {
            6u8.hash(state);
            b.hash(state);
        }
        Value::Bool(b) => {
            7u8.hash(state);
            b.hash(state);
        }
        Value::Date(_) | Value::Timestamp(_) | Value::TimestampTz(_) => {
            8u8.hash(state);
            as_instant(value).hash(state);
        }
        Value::Uuid(u) => {
            9u8.hash(state);
            u.hash(state);
        }
        Value::Interval(i) => {
            10u8.hash(state);
            i.span().hash(state);
        }
        Value::Json(text) => {
            12u8.hash(state);
            text.hash(state);
        }
        Value::Jsonb(json) => {
            13u8.hash(state);
            json.hash_into(state);
        }
        Value::Array(values) => {
            11u8.hash(state);
            values.len().hash(state);
            for value in values {
                hash_key(value, state);
            }
        }
    }
}

// ---- arithmetic -----------------------------------------------------------------------

fn int_rank(ty: &DataType) -> Option<u8> {
    match ty {
        DataType::Int2 => Some(2),
        DataType::Int4 => Some(4),
        DataType::Int8 => Some(8),
        _ => None,
    }
}

/// The type of `left op right`, as PostgreSQL's operator resolution picks it: the wider
/// integer (`int2 + int2` is `int2`), `numeric` if either side is, `double precision` if a
/// float meets anything but `real`; `date ± integer` is a date and `date − date` an
/// integer. An `Unknown` side (an untyped literal) takes the other side's type.
pub fn arith_result_type(op: ArithOp, left: &DataType, right: &DataType) -> SqlResult<DataType> {
    use DataType::*;
    let sym = op.symbol();
    match (left, right) {
        (Unknown, Unknown) => return Err(not_unique(sym, left, right)),
        (Date, Unknown) | (Unknown, Date) if op == ArithOp::Add => {
            return Err(not_unique(sym, left, right))
        }
        (Date, Unknown) if op == ArithOp::Sub => return Ok(Int4),
        (Unknown, other) | (other, Unknown) => return arith_result_type(op, other, other),
        _ => {}
    }
    if left.is_numeric() && right.is_numeric() {
        let float = matches!(left, Float4 | Float8) || matches!(right, Float4 | Float8);
        if op == ArithOp::Mod && float {
            return Err(no_operator(sym, left, right));
        }
        return Ok(match (left, right) {
            (Float4, Float4) => Float4,
            _ if float => Float8,
            (Numeric { .. }, _) | (_, Numeric { .. }) => Numeric {
                precision: None,
                scale: None,
            },
            _ => {
                if int_rank(left) >= int_rank(right) {
                    left.clone()
                } else {
                    right.clone()
                }
            }
        });
    }
    match (op, left, right) {
        (ArithOp::Add, Date, Int2 | Int4) | (ArithOp::Add, Int2 | Int4, Date) => Ok(Date),
        (ArithOp::Sub, Date, Int2 | Int4) => Ok(Date),
        (ArithOp::Sub, Date, Date) => Ok(Int4),
        (ArithOp::Sub, Timestamp | TimestampTz | Date, Timestamp | TimestampTz)
        | (ArithOp::Sub, Timestamp | TimestampTz, Date) => Ok(Interval),
        (ArithOp::Add, Timestamp | Date, Interval)
        | (ArithOp::Add, Interval, Timestamp | Date)
        | (ArithOp::Sub, Timestamp | Date, Interval) => Ok(Timestamp),
        (ArithOp::Add, TimestampTz, Interval)
        | (ArithOp::Add, Interval, TimestampTz)
        | (ArithOp::Sub, TimestampTz, Interval) => Ok(TimestampTz),
        (ArithOp::Add | ArithOp::Sub, Interval, Interval) => Ok(Interval),
        (ArithOp::Mul | ArithOp::Div, Interval, n) | (ArithOp::Mul, n, Interval)
            if n.is_numeric() =>
        {
            Ok(Interval)
        }
        _ => Err(no_operator(sym, left, right)),
    }
}

fn int_out_of_range(ty: &DataType) -> SqlError {
    SqlError::new(
        SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
        format!("{} out of range", base_type_name(ty)),
    )
}

fn division_by_zero() -> SqlError {
    SqlError::new(SqlState::DIVISION_BY_ZERO, "division by zero")
}

fn float_overflow() -> SqlError {
    SqlError::new(
        SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
        "value out of range: overflow",
    )
}

fn float_underflow() -> SqlError {
    SqlError::new(
        SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
        "value out of range: underflow",
    )
}

/// Integer arithmetic in i64 with the result checked against `ty`'s range.
fn int_arith(op: ArithOp, a: i64, b: i64, ty: &DataType) -> SqlResult<Value> {
    let (min, max) = match ty {
        DataType::Int2 => (i64::from(i16::MIN), i64::from(i16::MAX)),
        DataType::Int4 => (i64::from(i32::MIN), i64::from(i32::MAX)),
        _ => (i64::MIN, i64::MAX),
    };
    let r = match op {
        ArithOp::Add => a.checked_add(b),
        ArithOp::Sub => a.checked_sub(b),
        ArithOp::Mul => a.checked_mul(b),
        ArithOp::Div => {
            if b == 0 {
                return Err(division_by_zero());
            }
            a.checked_div(b)
        }
        ArithOp::Mod => {
            if b == 0 {
                return Err(division_by_zero());
            }
            // MIN % -1 is 0, as PostgreSQL special-cases it.
            Some(a.checked_rem(b).unwrap_or(0))
        }
    };
    let r = r
        .filter(|r| (min..=max).contains(r))
        .ok_or_else(|| int_out_of_range(ty))?;
    Ok(match ty {
        DataType::Int2 => Value::Int2(r as i16),
        DataType::Int4 => Value::Int4(r as i32),
        _ => Value::Int8(r),
    })
}

/// Float arithmetic with `float8pl`/`float8mul`/`float8div`'s checks.
fn float_arith(op: ArithOp, a: f64, b: f64) -> SqlResult<f64> {
    let r = match op {
        ArithOp::Add => a + b,
        ArithOp::Sub => a - b,
        ArithOp::Mul => a * b,
        ArithOp::Div => {
            if b == 0.0 && !a.is_nan() {
                return Err(division_by_zero());
            }
            a / b
        }
        ArithOp::Mod => return Err(SqlError::internal("float modulo has no operator")),
    };
    check_float(op, a, b, r.is_infinite(), r == 0.0)?;
    Ok(r)
}

fn check_float(op: ArithOp, a: f64, b: f64, inf: bool, zero: bool) -> SqlResult<()> {
    if inf && !a.is_infinite() && !b.is_infinite() {
        return Err(float_overflow());
    }
    let underflow = match op {
        ArithOp::Mul => zero && a != 0.0 && b != 0.0,
        ArithOp::Div => zero && a != 0.0 && !b.is_infinite(),
        _ => false,
    };
    if underflow {
        return Err(float_underflow());
    }
    Ok(())
}

fn float4_arith(op: ArithOp, a: f32, b: f32) -> SqlResult<f32> {
    let r = match op {
        ArithOp::Add => a + b,
        ArithOp::Sub => a - b,
        ArithOp::Mul => a * b,
        ArithOp::Div => {
            if b == 0.0 && !a.is_nan() {
                return Err(division_by_zero());
            }
            a / b
        }
        ArithOp::Mod => return Err(SqlError::internal("float modulo has no operator")),
    };
    check_float(op, f64::from(a), f64::from(b), r.is_infinite(), r == 0.0)?;
    Ok(r)
}

fn numeric_arith(op: ArithOp, a: &Numeric, b: &Numeric) -> SqlResult<Numeric> {
    match op {
        ArithOp::Add => a.add(b),
        ArithOp::Sub => a.sub(b),
        ArithOp::Mul => a.mul(b),
        ArithOp::Div => a.div(b),
        ArithOp::Mod => a.rem(b),
    }
}

fn date_out_of_range() -> SqlError {
    SqlError::new(SqlState::DATETIME_FIELD_OVERFLOW, "date out of range")
}

fn date_plus(d: i32, n: i64) -> SqlResult<Value> {
    if d == DATE_INFINITY || d == DATE_NEG_INFINITY {
        return Ok(Value::Date(d));
    }
    let r = i64::from(d) + n;
    if r < i64::from(DATE_MIN) || r > i64::from(DATE_MAX) {
        return Err(date_out_of_range());
    }
    Ok(Value::Date(r as i32))
}

/// Evaluates `a op b`: NULL if either is NULL; errors as PostgreSQL's (22003 overflow,
/// 22012 division by zero, 42883 for types without the operator). Integer division
/// truncates toward zero. `zone` is the session's time zone: adding days or months to a
/// `timestamptz` steps its wall clock there (across daylight-saving changes).
pub fn arith(op: ArithOp, a: &Value, b: &Value, zone: &TimeZone) -> SqlResult<Value> {
    if a.is_null() || b.is_null() {
        return Ok(Value::Null);
    }
    let (lt, rt) = (a.data_type(), b.data_type());
    let ty = arith_result_type(op, &lt, &rt)?;
    if let (Some(x), Some(y)) = (as_num(a), as_num(b)) {
        return match ty {
            DataType::Int2 | DataType::Int4 | DataType::Int8 => match (x, y) {
                (Num::Int(x), Num::Int(y)) => int_arith(op, x, y, &ty),
                _ => Err(SqlError::internal("integer arithmetic on non-integers")),
            },
            DataType::Float4 => {
                let (x, y) = (num_to_f64(&x) as f32, num_to_f64(&y) as f32);
                Ok(Value::Float4(float4_arith(op, x, y)?))
            }
            DataType::Float8 => Ok(Value::Float8(float_arith(
                op,
                num_to_f64(&x),
                num_to_f64(&y),
            )?)),
            _ => Ok(Value::Numeric(numeric_arith(
                op,
                &num_to_numeric(x),
                &num_to_numeric(y),
            )?)),
        };
    }
    if let Some(value) = interval_arith(op, a, b, zone)? {
        return Ok(value);
    }
    match (op, a, b) {
        (ArithOp::Add, Value::Date(d), Value::Int2(_) | Value::Int4(_)) => date_plus(*d, int_of(b)),
        (ArithOp::Add, Value::Int2(_) | Value::Int4(_), Value::Date(d)) => date_plus(*d, int_of(a)),
        (ArithOp::Sub, Value::Date(d), Value::Int2(_) | Value::Int4(_)) => {
            date_plus(*d, -int_of(b))
        }
        (ArithOp::Sub, Value::Date(x), Value::Date(y)) => {
            let infinite = |d: i32| d == DATE_INFINITY || d == DATE_NEG_INFINITY;
            if infinite(*x) || infinite(*y) {
                return Err(SqlError::new(
                    SqlState::DATETIME_FIELD_OVERFLOW,
                    "cannot subtract infinite dates",
                ));
            }
            // Both within the date range: the difference fits in an i32.
            Ok(Value::Int4((i64::from(*x) - i64::from(*y)) as i32))
        }
        _ => Err(no_operator(op.symbol(), &lt, &rt)),
    }
}

/// Arithmetic with intervals (`timestamp ± interval`, `timestamp − timestamp`, `interval ×
/// number`...); `None` if neither side is an interval nor both instants.
fn interval_arith(op: ArithOp, a: &Value, b: &Value, zone: &TimeZone) -> SqlResult<Option<Value>> {
    use super::interval::Interval;
    let instant = |v: &Value| -> Option<i64> {
        match v {
            Value::Timestamp(t) | Value::TimestampTz(t) => Some(*t),
            Value::Date(d) => Some(i64::from(*d) * USECS_PER_DAY),
            _ => None,
        }
    };
    let infinite = |t: i64| t == TIMESTAMP_INFINITY || t == TIMESTAMP_NEG_INFINITY;
    let infinite_date =
        |v: &Value| matches!(v, Value::Date(d) if *d == DATE_INFINITY || *d == DATE_NEG_INFINITY);
    // The instant `t` moved by `interval`, in `t`'s type (a date becomes a timestamp).
    let shifted = |v: &Value, interval: &Interval| -> SqlResult<Value> {
        let t = instant(v).unwrap_or_default();
        let moved = if infinite(t) || infinite_date(v) {
            match v {
                Value::Date(d) if *d == DATE_INFINITY => TIMESTAMP_INFINITY,
                Value::Date(_) => TIMESTAMP_NEG_INFINITY,
                _ => t,
            }
        } else if let Value::TimestampTz(_) = v {
            interval.add_to_timestamptz(t, zone)?
        } else {
            interval.add_to_timestamp(t)?
        };
        Ok(match v {
            Value::TimestampTz(_) => Value::TimestampTz(moved),
            _ => Value::Timestamp(moved),
        })
    };
    let factor = |v: &Value| -> Option<f64> { as_num(v).map(|n| num_to_f64(&n)) };
    Ok(Some(match (op, a, b) {
        (ArithOp::Add, Value::Interval(x), Value::Interval(y)) => Value::Interval(x.add(y)?),
        (ArithOp::Sub, Value::Interval(x), Value::Interval(y)) => {
            Value::Interval(x.add(&y.neg()?)?)
        }
        (ArithOp::Add, t, Value::Interval(i)) | (ArithOp::Add, Value::Interval(i), t)
            if instant(t).is_some() =>
        {
            shifted(t, i)?
        }
        (ArithOp::Sub, t, Value::Interval(i)) if instant(t).is_some() => shifted(t, &i.neg()?)?,
        (ArithOp::Mul, Value::Interval(i), n) | (ArithOp::Mul, n, Value::Interval(i)) => {
            match factor(n) {
                Some(f) => Value::Interval(i.mul(f)?),
                None => return Ok(None),
            }
        }
        (ArithOp::Div, Value::Interval(i), n) => match factor(n) {
            Some(f) => Value::Interval(i.div(f)?),
            None => return Ok(None),
        },
        (ArithOp::Sub, x, y)
            if !matches!((x, y), (Value::Date(_), Value::Date(_)))
                && instant(x).is_some()
                && instant(y).is_some() =>
        {
            let (x, y) = (
                instant(x).unwrap_or_default(),
                instant(y).unwrap_or_default(),
            );
            if infinite(x) || infinite(y) || infinite_date(a) || infinite_date(b) {
                return Err(SqlError::new(
                    SqlState::DATETIME_FIELD_OVERFLOW,
                    "cannot subtract infinite timestamps",
                ));
            }
            Value::Interval(Interval::between(x, y)?)
        }
        _ => return Ok(None),
    }))
}

fn int_of(v: &Value) -> i64 {
    match v {
        Value::Int2(i) => i64::from(*i),
        Value::Int4(i) => i64::from(*i),
        Value::Int8(i) => *i,
        _ => 0,
    }
}

/// Unary minus: 22003 when the negation does not fit (`-(-32768::int2)`).
pub fn negate(v: &Value) -> SqlResult<Value> {
    Ok(match v {
        Value::Null => Value::Null,
        Value::Int2(i) => Value::Int2(i.checked_neg().ok_or_else(|| int_out_of_range(&DataType::Int2))?),
        Value::Int4(i) => Value::Int4(i.checked_neg().ok_or_else(|| int_out_of_range(&DataType::Int4))?),
        Value::Int8(i) => Value::Int8(i.checked_neg().ok_or_else(|| int_out_of_range(&DataType::Int8))?),
        Value::Float4(f) => Value::Float4(-f),
        Value::Float8(f) => Value::Float8(-f),
        Value::Numeric(n) => Value::Numeric(n.neg()),
        Value::Interval(i) => Value::Interval(i.neg()?),
        other => {
            return Err(SqlError::new(
                SqlState::UNDEFINED_FUNCTION,
                format!("operator does not exist: - {}", base_type_name(&other.data_type())),
            )
            .with_hint(
                "No operator matches the given name and argument type. You might need to add an explicit type cast.",
            ))
        }
    })
}

/// A group key hashed and compared with SQL equality (1 = 1.0, NULLs group together).
pub struct GroupKey(pub Vec<Value>);

impl PartialEq for GroupKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len()
            && self
                .0
                .iter()
                .zip(&other.0)
                .all(|(a, b)| total_cmp(a, b) == Ordering::Equal)
    }
}

impl Eq for GroupKey {}

impl Hash for GroupKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for value in &self.0 {
            hash_key(value, state);
        }
    }
}

/// Whether equal values of these types always hash equal under [`hash_key`] (integers and
/// numerics hash by value; a fractional numeric and a float do not), so that a hash table
/// keyed by one finds the other.
pub fn hash_alike(a: &DataType, b: &DataType) -> bool {
    let exact = |t: &DataType| {
        matches!(
            t,
            DataType::Int2 | DataType::Int4 | DataType::Int8 | DataType::Numeric { .. }
        )
    };
    let text = |t: &DataType| matches!(t, DataType::Text | DataType::Varchar(_));
    a == b || (exact(a) && exact(b)) || (text(a) && text(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    // In UTC.
    fn arith(op: ArithOp, a: &Value, b: &Value) -> SqlResult<Value> {
        super::arith(op, a, b, &TimeZone::utc())
    }
    use rand::{rngs::SmallRng, Rng, SeedableRng};
    use std::collections::hash_map::DefaultHasher;

    fn num(s: &str) -> Value {
        Value::Numeric(Numeric::parse(s).unwrap())
    }
    fn text(s: &str) -> Value {
        Value::Text(s.into())
    }
    fn cmp(a: &Value, b: &Value) -> Option<Ordering> {
        compare(a, b).unwrap()
    }
    fn h(v: &Value) -> u64 {
        let mut s = DefaultHasher::new();
        hash_key(v, &mut s);
        s.finish()
    }

    #[test]
    fn null_compares_as_unknown() {
        assert_eq!(cmp(&Value::Null, &Value::Int4(1)), None);
        assert_eq!(cmp(&Value::Int4(1), &Value::Null), None);
    }

    /// PostgreSQL: 1 = 1.0::float8, 0.1::numeric = 0.1::float8, NaN = NaN, -0 = 0 are all
    /// true.
    #[test]
    fn numbers_compare_across_types() {
        assert_eq!(
            cmp(&Value::Int4(1), &Value::Float8(1.0)),
            Some(Ordering::Equal)
        );
        assert_eq!(cmp(&num("0.1"), &Value::Float8(0.1)), Some(Ordering::Equal));
        assert_eq!(
            cmp(&Value::Float8(f64::NAN), &Value::Float8(f64::NAN)),
            Some(Ordering::Equal)
        );
        assert_eq!(
            cmp(&Value::Float8(-0.0), &Value::Float8(0.0)),
            Some(Ordering::Equal)
        );
        assert_eq!(
            cmp(&Value::Float8(f64::NAN), &Value::Float8(f64::INFINITY)),
            Some(Ordering::Greater)
        );
        assert_eq!(
            cmp(&Value::Int2(3), &Value::Int8(2)),
            Some(Ordering::Greater)
        );
        assert_eq!(cmp(&num("1.00"), &Value::Int8(1)), Some(Ordering::Equal));
        assert_eq!(
            cmp(&num("9223372036854775808"), &Value::Int8(i64::MAX)),
            Some(Ordering::Greater)
        );
        assert_eq!(
            cmp(&Value::Float4(0.5), &Value::Float8(0.5)),
            Some(Ordering::Equal)
        );
    }

    #[test]
    fn strings_compare_bytewise_and_bools_false_first() {
        assert_eq!(cmp(&text("B"), &text("a")), Some(Ordering::Less));
        assert_eq!(cmp(&text("a"), &text("ab")), Some(Ordering::Less));
        assert_eq!(cmp(&text("é"), &text("z")), Some(Ordering::Greater));
        assert_eq!(
            cmp(&Value::Bool(false), &Value::Bool(true)),
            Some(Ordering::Less)
        );
    }

    #[test]
    fn dates_compare_with_timestamps() {
        assert_eq!(
            cmp(&Value::Date(1), &Value::Timestamp(USECS_PER_DAY)),
            Some(Ordering::Equal)
        );
        assert_eq!(
            cmp(&Value::Date(1), &Value::TimestampTz(USECS_PER_DAY + 1)),
            Some(Ordering::Less)
        );
        assert_eq!(
            cmp(
                &Value::Date(DATE_INFINITY),
                &Value::Timestamp(TIMESTAMP_INFINITY)
            ),
            Some(Ordering::Equal)
        );
        assert_eq!(
            cmp(
                &Value::Date(DATE_MAX),
                &Value::Timestamp(TIMESTAMP_INFINITY)
            ),
            Some(Ordering::Less)
        );
    }

    #[test]
    fn incomparable_types_fail_like_postgres() {
        let e = compare(&Value::Int4(1), &text("a")).unwrap_err();
        assert_eq!(e.state, SqlState::UNDEFINED_FUNCTION);
        assert_eq!(e.message, "operator does not exist: integer = text");
        assert!(!comparable(&DataType::Int4, &DataType::Text));
        assert!(comparable(&DataType::Int4, &DataType::Float8));
    }

    #[test]
    fn total_order_puts_nulls_last() {
        let mut v = [
            Value::Null,
            Value::Int4(2),
            Value::Float8(f64::NAN),
            num("1.5"),
            Value::Int8(-1),
        ];
        v.sort_by(total_cmp);
        assert_eq!(v[0], Value::Int8(-1));
        assert_eq!(v[1], num("1.5"));
        assert_eq!(v[2], Value::Int4(2));
        assert!(matches!(v[3], Value::Float8(f) if f.is_nan()));
        assert_eq!(v[4], Value::Null);
    }

    #[test]
    fn equal_numbers_hash_equal_across_types() {
        let one = h(&Value::Int4(1));
        for v in [
            Value::Int2(1),
            Value::Int8(1),
            num("1.0"),
            num("1.000"),
            Value::Float8(1.0),
            Value::Float4(1.0),
        ] {
            assert_eq!(h(&v), one, "{v:?}");
        }
        assert_eq!(h(&Value::Float8(-0.0)), h(&Value::Int4(0)));
        assert_eq!(h(&Value::Float8(f64::NAN)), h(&num("NaN")));
        assert_eq!(h(&num("2.50")), h(&num("2.5")));
        assert_ne!(h(&num("2.5")), h(&num("2.6")));
        assert_eq!(h(&Value::Date(2)), h(&Value::Timestamp(2 * USECS_PER_DAY)));
    }

    /// Random pairs of numbers of mixed types: equal under `total_cmp` implies equal hashes
    /// (floats kept integral so the documented numeric/float quirk does not arise).
    #[test]
    fn random_equal_values_hash_equal() {
        let mut rng = SmallRng::seed_from_u64(6);
        let make = |rng: &mut SmallRng, i: i64| -> Value {
            match rng.gen_range(0..5) {
                0 => Value::Int8(i),
                1 => Value::Int4(i as i32),
                2 => num(&format!("{i}.{}", "0".repeat(rng.gen_range(0..3)))),
                3 => Value::Float8(i as f64),
                _ => num(&format!("{i}.5")),
            }
        };
        for _ in 0..5000 {
            let (i, j) = (rng.gen_range(-5..5), rng.gen_range(-5..5));
            let (a, b) = (make(&mut rng, i), make(&mut rng, j));
            if total_cmp(&a, &b) == Ordering::Equal {
                assert_eq!(h(&a), h(&b), "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn result_types_follow_postgres() {
        use DataType::*;
        let numeric = Numeric {
            precision: None,
            scale: None,
        };
        let t = |op, l: &DataType, r: &DataType| arith_result_type(op, l, r).unwrap();
        assert_eq!(t(ArithOp::Add, &Int2, &Int2), Int2);
        assert_eq!(t(ArithOp::Mul, &Int8, &Int2), Int8);
        assert_eq!(t(ArithOp::Add, &Int4, &numeric), numeric);
        assert_eq!(t(ArithOp::Add, &Int2, &Float4), Float8);
        assert_eq!(t(ArithOp::Add, &numeric, &Float4), Float8);
        assert_eq!(t(ArithOp::Mul, &Float4, &Float4), Float4);
        assert_eq!(t(ArithOp::Add, &Date, &Int4), Date);
        assert_eq!(t(ArithOp::Sub, &Date, &Date), Int4);
        assert_eq!(t(ArithOp::Add, &Int4, &Unknown), Int4);
        assert_eq!(t(ArithOp::Add, &Unknown, &numeric), numeric);
        let e = arith_result_type(ArithOp::Add, &Unknown, &Unknown).unwrap_err();
        assert_eq!(e.message, "operator is not unique: unknown + unknown");
        let e = arith_result_type(ArithOp::Add, &Date, &Unknown).unwrap_err();
        assert_eq!(e.message, "operator is not unique: date + unknown");
        let e = arith_result_type(ArithOp::Mod, &Float8, &Int4).unwrap_err();
        assert_eq!(
            e.message,
            "operator does not exist: double precision % integer"
        );
        let e = arith_result_type(ArithOp::Add, &Text, &Int4).unwrap_err();
        assert_eq!(
            (e.state, e.message.as_str()),
            (
                SqlState::UNDEFINED_FUNCTION,
                "operator does not exist: text + integer"
            )
        );
        assert_eq!(
            arith_result_type(ArithOp::Mul, &Date, &Int4)
                .unwrap_err()
                .message,
            "operator does not exist: date * integer"
        );
        assert_eq!(
            arith_result_type(ArithOp::Sub, &Timestamp, &Timestamp).unwrap(),
            Interval
        );
        assert_eq!(
            arith_result_type(ArithOp::Add, &Date, &Interval).unwrap(),
            Timestamp
        );
        assert_eq!(
            arith_result_type(ArithOp::Sub, &TimestampTz, &Interval).unwrap(),
            TimestampTz
        );
        assert_eq!(
            arith_result_type(ArithOp::Mul, &Float8, &Interval).unwrap(),
            Interval
        );
        assert!(arith_result_type(ArithOp::Mul, &Interval, &Interval).is_err());
    }

    /// Results and errors from PostgreSQL 15.
    #[test]
    fn arithmetic_follows_postgres() {
        let ok = |op, a: Value, b: Value| arith(op, &a, &b).unwrap();
        let fail = |op, a: Value, b: Value| {
            let e = arith(op, &a, &b).unwrap_err();
            (e.state, e.message)
        };
        let range = SqlState::NUMERIC_VALUE_OUT_OF_RANGE;
        assert_eq!(ok(ArithOp::Add, Value::Int4(1), Value::Null), Value::Null);
        assert_eq!(
            ok(ArithOp::Div, Value::Int4(7), Value::Int4(-2)),
            Value::Int4(-3)
        );
        assert_eq!(
            ok(ArithOp::Mod, Value::Int4(-7), Value::Int4(2)),
            Value::Int4(-1)
        );
        assert_eq!(
            ok(ArithOp::Mod, Value::Int4(i32::MIN), Value::Int4(-1)),
            Value::Int4(0)
        );
        assert_eq!(ok(ArithOp::Add, Value::Int4(1), num("1.5")), num("2.5"));
        assert_eq!(
            ok(ArithOp::Div, Value::Int4(1), num("3")).to_string_pg(),
            "0.33333333333333333333"
        );
        assert_eq!(
            ok(ArithOp::Mul, Value::Int2(2), Value::Int8(3)),
            Value::Int8(6)
        );
        assert_eq!(
            ok(ArithOp::Add, Value::Float4(1.5), Value::Float4(1.0)),
            Value::Float4(2.5)
        );
        assert_eq!(
            ok(ArithOp::Mul, Value::Float8(1e-308), Value::Float8(1e-10)),
            Value::Float8(1e-318)
        );
        assert!(
            matches!(ok(ArithOp::Sub, Value::Float8(f64::INFINITY), Value::Float8(f64::INFINITY)), Value::Float8(f) if f.is_nan())
        );
        assert_eq!(
            fail(ArithOp::Add, Value::Int4(i32::MAX), Value::Int4(1)),
            (range, "integer out of range".into())
        );
        assert_eq!(
            fail(ArithOp::Div, Value::Int4(i32::MIN), Value::Int4(-1)),
            (range, "integer out of range".into())
        );
        assert_eq!(
            fail(ArithOp::Add, Value::Int2(i16::MAX), Value::Int2(1)),
            (range, "smallint out of range".into())
        );
        assert_eq!(
            fail(ArithOp::Mul, Value::Int8(i64::MAX), Value::Int8(2)),
            (range, "bigint out of range".into())
        );
        assert_eq!(
            fail(ArithOp::Mul, Value::Float8(1e308), Value::Float8(10.0)),
            (range, "value out of range: overflow".into())
        );
        assert_eq!(
            fail(ArithOp::Mul, Value::Float8(1e-308), Value::Float8(1e-308)),
            (range, "value out of range: underflow".into())
        );
        let zero = SqlState::DIVISION_BY_ZERO;
        assert_eq!(
            fail(ArithOp::Div, Value::Int4(1), Value::Int4(0)),
            (zero, "division by zero".into())
        );
        assert_eq!(
            fail(ArithOp::Mod, Value::Int4(5), Value::Int4(0)),
            (zero, "division by zero".into())
        );
        assert_eq!(
            fail(ArithOp::Div, Value::Float8(1.0), Value::Int4(0)),
            (zero, "division by zero".into())
        );
        assert_eq!(
            fail(ArithOp::Div, num("1"), num("0")),
            (zero, "division by zero".into())
        );
    }

    #[test]
    fn date_arithmetic_follows_postgres() {
        assert_eq!(
            arith(ArithOp::Add, &Value::Date(0), &Value::Int4(31)).unwrap(),
            Value::Date(31)
        );
        assert_eq!(
            arith(ArithOp::Add, &Value::Int2(1), &Value::Date(0)).unwrap(),
            Value::Date(1)
        );
        assert_eq!(
            arith(ArithOp::Sub, &Value::Date(0), &Value::Date(366)).unwrap(),
            Value::Int4(-366)
        );
        assert_eq!(
            arith(ArithOp::Add, &Value::Date(DATE_INFINITY), &Value::Int4(1)).unwrap(),
            Value::Date(DATE_INFINITY)
        );
        assert_eq!(
            arith(ArithOp::Add, &Value::Date(0), &Value::Int4(i32::MAX))
                .unwrap_err()
                .message,
            "date out of range"
        );
        assert_eq!(
            arith(ArithOp::Sub, &Value::Date(DATE_INFINITY), &Value::Date(0))
                .unwrap_err()
                .message,
            "cannot subtract infinite dates"
        );
    }

    #[test]
    fn negation_checks_range() {
        assert_eq!(negate(&Value::Int4(5)).unwrap(), Value::Int4(-5));
        assert_eq!(
            negate(&Value::Int2(i16::MIN)).unwrap_err().message,
            "smallint out of range"
        );
        assert_eq!(negate(&num("1.50")).unwrap().to_string_pg(), "-1.50");
        assert_eq!(
            negate(&text("a")).unwrap_err().message,
            "operator does not exist: - text"
        );
    }

    trait Pg {
        fn to_string_pg(&self) -> String;
    }
    impl Pg for Value {
        fn to_string_pg(&self) -> String {
            crate::types::text::format_text(self, &crate::types::timezone::TimeZone::utc())
        }
    }
}
