//! Conversions between types, with PostgreSQL's rules for which casts exist, in which
//! contexts they apply, and what they do at the edges.
//!
//! PostgreSQL has three cast contexts, each allowing more than the one before:
//!
//! * **implicit** ([`can_cast_implicitly`]): applied silently inside expressions: the numeric
//!   promotions `int2 → int4 → int8 → numeric → float4 → float8`, among the string types,
//!   `date → timestamp → timestamptz`, and an untyped literal (`Unknown`) to anything.
//! * **assignment** ([`can_cast_assignment`], [`assignment_cast`], [`assignment_cast_from`]): also applied when storing
//!   into a column: narrowing numeric casts (with range checks), `timestamptz → timestamp →
//!   date`, and any type to a string type through its output function.
//! * **explicit** ([`can_cast_explicitly`], [`cast`] with `explicit`): only on `CAST`/`::`:
//!   additionally `bool ↔ integer` and a string to any type through its input function.
//!
//! # Strings with a length
//!
//! A value too long for `varchar(n)`/`char(n)` is an error (22001) on assignment unless
//! everything past `n` characters is blanks, which are cut; an explicit cast silently
//! truncates. Values of `char(n)` are stored **without trailing blanks**: trailing blanks are
//! insignificant to `bpchar` comparison, so stripping them makes equality, ordering and keys
//! byte-wise, and [`super::text::format_text_typed`] pads them back on output.

use super::datetime::{
    DATE_INFINITY, DATE_NEG_INFINITY, TIMESTAMP_END, TIMESTAMP_INFINITY, TIMESTAMP_MIN,
    TIMESTAMP_NEG_INFINITY, USECS_PER_DAY,
};
use super::numeric::NumericKind;
use super::text::{format_text, parse_float4, parse_float8, parse_text};
use super::timezone::TimeZone;
use super::{DataType, Numeric, Value};
use crate::error::{SqlError, SqlResult, SqlState};

/// The type's name without modifiers, as PostgreSQL's `format_type_be` prints it in cast
/// errors (`character varying`, not `character varying(3)`).
pub fn base_type_name(ty: &DataType) -> &'static str {
    match ty {
        DataType::Bool => "boolean",
        DataType::Int2 => "smallint",
        DataType::Int4 => "integer",
        DataType::Int8 => "bigint",
        DataType::Float4 => "real",
        DataType::Float8 => "double precision",
        DataType::Numeric { .. } => "numeric",
        DataType::Text => "text",
        DataType::Varchar(_) => "character varying",
        DataType::Char(_) => "character",
        DataType::Bytea => "bytea",
        DataType::Date => "date",
        DataType::Timestamp => "timestamp without time zone",
        DataType::TimestampTz => "timestamp with time zone",
        DataType::Uuid => "uuid",
        DataType::Interval => "interval",
        DataType::Array(_) => "array",
        DataType::Int2Vector => "int2vector",
        DataType::Oid => "oid",
        DataType::Json => "json",
        DataType::Jsonb => "jsonb",
        DataType::Unknown => "unknown",
    }
}

fn same_base(a: &DataType, b: &DataType) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

/// Rank of a numeric type in the implicit promotion chain.
fn numeric_rank(ty: &DataType) -> Option<u8> {
    Some(match ty {
        DataType::Int2 => 0,
        DataType::Int4 => 1,
        // Between integer and bigint: an integer compares as an oid, an oid as a bigint.
        DataType::Oid => 2,
        DataType::Int8 => 3,
        DataType::Numeric { .. } => 4,
        DataType::Float4 => 5,
        DataType::Float8 => 6,
        _ => return None,
    })
}

fn datetime_rank(ty: &DataType) -> Option<u8> {
    Some(match ty {
        DataType::Date => 0,
        DataType::Timestamp => 1,
        DataType::TimestampTz => 2,
        _ => return None,
    })
}

/// Whether PostgreSQL converts `from` to `to` implicitly inside expressions.
pub fn can_cast_implicitly(from: &DataType, to: &DataType) -> bool {
    if same_base(from, to) || *from == DataType::Unknown {
        return true;
    }
    if from.is_text() && to.is_text() {
        return true;
    }
    if *from == DataType::Int2Vector {
        return *to == DataType::Array(Box::new(DataType::Int2));
    }
    if let (Some(a), Some(b)) = (numeric_rank(from), numeric_rank(to)) {
        return a < b;
    }
    if let (Some(a), Some(b)) = (datetime_rank(from), datetime_rank(to)) {
        return a < b;
    }
    false
}

/// Whether PostgreSQL converts `from` to `to` when storing into a column of type `to`.
pub fn can_cast_assignment(from: &DataType, to: &DataType) -> bool {
    if can_cast_implicitly(from, to) || to.is_text() {
        return true;
    }
    if numeric_rank(from).is_some() && numeric_rank(to).is_some() {
        return true;
    }
    datetime_rank(from).is_some() && datetime_rank(to).is_some()
}

/// Whether `CAST(x AS to)` exists for `x` of type `from`.
pub fn can_cast_explicitly(from: &DataType, to: &DataType) -> bool {
    can_cast_assignment(from, to)
        || from.is_text()
        || matches!(
            (from, to),
            (DataType::Bool, DataType::Int4) | (DataType::Int4, DataType::Bool)
        )
}

fn cannot_cast(from: &DataType, to: &DataType) -> SqlError {
    SqlError::new(
        SqlState::CANNOT_COERCE,
        format!(
            "cannot cast type {} to {}",
            base_type_name(from),
            base_type_name(to)
        ),
    )
}

fn out_of_range(ty: &DataType) -> SqlError {
    SqlError::new(
        SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
        format!("{} out of range", base_type_name(ty)),
    )
}

/// Converts `value` to type `to` as a cast does, applying `to`'s length or
/// precision/scale. `explicit` selects `CAST` semantics for over-long strings (truncate)
/// rather than assignment's (error 22001 unless only blanks are cut). A `Text` value is
/// converted with `to`'s input function, so this is also how an untyped literal gets its
/// type. Casts PostgreSQL does not have fail with 42846; context rules (which casts may
/// happen implicitly) are the caller's, see [`can_cast_implicitly`] and [`assignment_cast`].
/// `zone` is the session's time zone: `timestamptz` meets wall-clock types in it.
pub fn cast(value: Value, to: &DataType, explicit: bool, zone: &TimeZone) -> SqlResult<Value> {
    let from = value.data_type();
    let converted = match (value, to) {
        (Value::Null, _) => return Ok(Value::Null),
        (v, DataType::Unknown) => v,
        // From a string: the input function (text → text keeps the string).
        (Value::Text(s), t) if !t.is_text() => parse_text(t, &s, zone)?,
        (Value::Text(s), _) => Value::Text(s),

        // To a string: the output function (bool prints as true/false in casts).
        (Value::Bool(b), t) if t.is_text() => {
            Value::Text(if b { "true" } else { "false" }.to_string())
        }
        (v, t) if t.is_text() => Value::Text(format_text(&v, zone)),

        (Value::Bool(b), DataType::Bool) => Value::Bool(b),
        (Value::Int4(i), DataType::Bool) => Value::Bool(i != 0),
        (Value::Bool(b), DataType::Int4) => Value::Int4(i32::from(b)),

        (v, DataType::Int2 | DataType::Int4 | DataType::Int8) if v.data_type().is_numeric() => {
            let i = to_integer(&v, to)?;
            integer_value(i, to)?
        }
        (v, DataType::Oid) if v.data_type().is_numeric() => {
            let i = to_integer(&v, &DataType::Int8)?;
            integer_value(i, &DataType::Int8)?;
            // PostgreSQL reads a negative integer as the oid with the same 32 bits.
            match i {
                0..=0xFFFF_FFFF => Value::Int8(i),
                -0x8000_0000..=-1 => Value::Int8(i + 0x1_0000_0000),
                _ => {
                    return Err(SqlError::new(
                        SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
                        "OID out of range",
                    ))
                }
            }
        }
        (v, DataType::Float8) if v.data_type().is_numeric() => Value::Float8(to_f64(&v)?),
        (v, DataType::Float4) if v.data_type().is_numeric() => {
            let f = match v {
                Value::Float4(f) => f,
                Value::Numeric(n) => parse_float4(&n.to_string())?,
                other => narrow_f64(to_f64(&other)?)?,
            };
            Value::Float4(f)
        }
        (v, DataType::Numeric { .. }) if v.data_type().is_numeric() => Value::Numeric(match v {
            Value::Int2(i) => Numeric::from_i64(i64::from(i)),
            Value::Int4(i) => Numeric::from_i64(i64::from(i)),
            Value::Int8(i) => Numeric::from_i64(i),
            Value::Float4(f) => Numeric::from_f32(f),
            Value::Float8(f) => Numeric::from_f64(f),
            Value::Numeric(n) => n,
            _ => return Err(cannot_cast(&from, to)),
        }),

        (Value::Bytea(b), DataType::Bytea) => Value::Bytea(b),
        (Value::Uuid(u), DataType::Uuid) => Value::Uuid(u),
        (Value::Interval(i), DataType::Interval) => Value::Interval(i),
        (Value::Json(text), DataType::Json) => Value::Json(text),
        (Value::Jsonb(json), DataType::Jsonb) => Value::Jsonb(json),
        (Value::Json(text), DataType::Jsonb) => {
            Value::Jsonb(super::json::parse(&text, "json")?.normalized())
        }
        (Value::Jsonb(json), DataType::Json) => Value::Json(json.to_text()),
        (Value::Array(values), DataType::Array(element)) => Value::Array(
            values
                .into_iter()
                .map(|v| cast(v, element, explicit, zone))
                .collect::<SqlResult<_>>()?,
        ),

        (Value::Date(d), DataType::Date) => Value::Date(d),
        // A `timestamptz` is a moment; the other two are wall-clock readings, which the
        // session's time zone relates to moments.
        (Value::Timestamp(t), DataType::Date) => Value::Date(timestamp_to_date(t)?),
        (Value::TimestampTz(t), DataType::Date) => {
            Value::Date(timestamp_to_date(zone.to_local(t))?)
        }
        (Value::Date(d), DataType::Timestamp) => Value::Timestamp(date_to_timestamp(d)?),
        (Value::Date(d), DataType::TimestampTz) => {
            Value::TimestampTz(zone.to_utc(date_to_timestamp(d)?))
        }
        (Value::Timestamp(t), DataType::Timestamp) => Value::Timestamp(t),
        (Value::TimestampTz(t), DataType::Timestamp) => Value::Timestamp(zone.to_local(t)),
        (Value::TimestampTz(t), DataType::TimestampTz) => Value::TimestampTz(t),
        (Value::Timestamp(t), DataType::TimestampTz) => Value::TimestampTz(zone.to_utc(t)),
        _ => return Err(cannot_cast(&from, to)),
    };
    apply_type_modifier(converted, to, explicit)
}

/// [`cast`] to a number type (`bigint` for an offset, `numeric` for a sum), where the time
/// zone plays no part.
pub fn cast_to_number(value: Value, to: &DataType) -> SqlResult<Value> {
    debug_assert!(to.is_numeric());
    cast(value, to, false, &TimeZone::utc())
}

/// Applies the length of `varchar(n)`/`char(n)` or the precision and scale of
/// `numeric(p, s)` to a value already of `to`'s base type; strips `char` blanks.
pub fn apply_type_modifier(value: Value, to: &DataType, explicit: bool) -> SqlResult<Value> {
    match (value, to) {
        (Value::Text(s), DataType::Varchar(n)) => Ok(Value::Text(fit_length(s, *n, explicit, to)?)),
        (Value::Text(s), DataType::Char(n)) => {
            let mut s = fit_length(s, *n, explicit, to)?;
            let trimmed = s.trim_end_matches(' ').len();
            s.truncate(trimmed);
            Ok(Value::Text(s))
        }
        (
            Value::Numeric(n),
            DataType::Numeric {
                precision: Some(p),
                scale,
            },
        ) => Ok(Value::Numeric(n.apply_typmod(*p, scale.unwrap_or(0))?)),
        (v, _) => Ok(v),
    }
}

fn fit_length(s: String, limit: Option<u32>, explicit: bool, ty: &DataType) -> SqlResult<String> {
    let Some(limit) = limit else { return Ok(s) };
    let limit = limit as usize;
    let Some((cut, _)) = s.char_indices().nth(limit) else {
        return Ok(s);
    };
    if explicit || s[cut..].bytes().all(|b| b == b' ') {
        let mut s = s;
        s.truncate(cut);
        return Ok(s);
    }
    Err(SqlError::new(
        SqlState::STRING_DATA_RIGHT_TRUNCATION,
        format!("value too long for type {ty}"),
    ))
}

/// A numeric value rounded to an integer the way PostgreSQL's casts do: floats with
/// `rint` (half to even), numerics half away from zero.
fn to_integer(v: &Value, to: &DataType) -> SqlResult<i64> {
    Ok(match v {
        Value::Int2(i) => i64::from(*i),
        Value::Int4(i) => i64::from(*i),
        Value::Int8(i) => *i,
        Value::Float4(f) => float_to_i64(f64::from(*f), to)?,
        Value::Float8(f) => float_to_i64(*f, to)?,
        Value::Numeric(n) => match n.kind() {
            NumericKind::NaN => {
                return Err(SqlError::unsupported(format!(
                    "cannot convert NaN to {}",
                    base_type_name(to)
                )))
            }
            NumericKind::PosInf | NumericKind::NegInf => {
                return Err(SqlError::unsupported(format!(
                    "cannot convert infinity to {}",
                    base_type_name(to)
                )))
            }
            NumericKind::Finite => n.to_i64().ok_or_else(|| out_of_range(to))?,
        },
        _ => return Err(cannot_cast(&v.data_type(), to)),
    })
}

/// 2^63: the first float above every `i64`.
pub(crate) const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;

fn float_to_i64(f: f64, to: &DataType) -> SqlResult<i64> {
    let r = f.round_ties_even();
    // i64::MIN is exactly representable; i64::MAX + 1 = 2^63 is the first value out.
    if !(-TWO_POW_63..TWO_POW_63).contains(&r) {
        return Err(out_of_range(to));
    }
    Ok(r as i64)
}

fn integer_value(i: i64, to: &DataType) -> SqlResult<Value> {
    Ok(match to {
        DataType::Int2 => Value::Int2(i16::try_from(i).map_err(|_| out_of_range(to))?),
        DataType::Int4 => Value::Int4(i32::try_from(i).map_err(|_| out_of_range(to))?),
        _ => Value::Int8(i),
    })
}

fn to_f64(v: &Value) -> SqlResult<f64> {
    Ok(match v {
        Value::Int2(i) => f64::from(*i),
        Value::Int4(i) => f64::from(*i),
        Value::Int8(i) => *i as f64,
        Value::Float4(f) => f64::from(*f),
        Value::Float8(f) => *f,
        // As `numeric_float8`: print, then read with `float8in` (and its range errors).
        Value::Numeric(n) => parse_float8(&n.to_string())?,
        other => return Err(cannot_cast(&other.data_type(), &DataType::Float8)),
    })
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

/// `float8 → float4` (`dtof`): overflow and underflow to zero are errors.
fn narrow_f64(f: f64) -> SqlResult<f32> {
    let r = f as f32;
    if r.is_infinite() && f.is_finite() {
        return Err(float_overflow());
    }
    if r == 0.0 && f != 0.0 {
        return Err(float_underflow());
    }
    Ok(r)
}

fn timestamp_to_date(t: i64) -> SqlResult<i32> {
    Ok(match t {
        TIMESTAMP_INFINITY => DATE_INFINITY,
        TIMESTAMP_NEG_INFINITY => DATE_NEG_INFINITY,
        // Every finite timestamp's day is a valid date.
        _ => t.div_euclid(USECS_PER_DAY) as i32,
    })
}

fn date_to_timestamp(d: i32) -> SqlResult<i64> {
    Ok(match d {
        DATE_INFINITY => TIMESTAMP_INFINITY,
        DATE_NEG_INFINITY => TIMESTAMP_NEG_INFINITY,
        _ => {
            let t = i64::from(d).checked_mul(USECS_PER_DAY).unwrap_or(i64::MAX);
            if !(TIMESTAMP_MIN..TIMESTAMP_END).contains(&t) {
                return Err(SqlError::new(
                    SqlState::DATETIME_FIELD_OVERFLOW,
                    "date out of range for timestamp",
                ));
            }
            t
        }
    })
}

/// Converts `value` for storing into `column` of type `to` (an `INSERT` or `UPDATE`
/// target), judging the cast by the value's own type ([`Value::data_type`]): casts
/// PostgreSQL does not apply on assignment fail as it does, with 42804 `column "x" is of
/// type integer but expression is of type boolean`. Over-long strings are 22001 unless only
/// blanks are cut. A quoted literal must already have been typed (see [`parse_text`]); use
/// [`assignment_cast_from`] when the static type is known and may be `Unknown`.
pub fn assignment_cast(
    value: Value,
    to: &DataType,
    column: &str,
    zone: &TimeZone,
) -> SqlResult<Value> {
    let from = value.data_type();
    assignment_cast_from(value, &from, to, column, zone)
}

/// [`assignment_cast`] for a value whose static type is `from` (`Unknown` for an untyped
/// literal or parameter, which converts through `to`'s input function).
pub fn assignment_cast_from(
    value: Value,
    from: &DataType,
    to: &DataType,
    column: &str,
    zone: &TimeZone,
) -> SqlResult<Value> {
    if !value.is_null() && !can_cast_assignment(from, to) {
        return Err(assignment_mismatch(from, to, column));
    }
    cast(value, to, false, zone)
}

/// 42804 `column "x" is of type integer but expression is of type boolean`, with
/// PostgreSQL's hint (type names without modifiers, as PostgreSQL prints them).
pub fn assignment_mismatch(from: &DataType, to: &DataType, column: &str) -> SqlError {
    SqlError::new(
        SqlState::DATATYPE_MISMATCH,
        format!(
            "column \"{column}\" is of type {} but expression is of type {}",
            base_type_name(to),
            base_type_name(from)
        ),
    )
    .with_hint("You will need to rewrite or cast the expression.")
}

#[cfg(test)]
mod tests {
    use super::*;

    // The functions under test, in UTC.
    fn cast(v: Value, to: &DataType, explicit: bool) -> SqlResult<Value> {
        super::cast(v, to, explicit, &TimeZone::utc())
    }
    fn assignment_cast(v: Value, to: &DataType, column: &str) -> SqlResult<Value> {
        super::assignment_cast(v, to, column, &TimeZone::utc())
    }
    fn assignment_cast_from(
        v: Value,
        from: &DataType,
        to: &DataType,
        column: &str,
    ) -> SqlResult<Value> {
        super::assignment_cast_from(v, from, to, column, &TimeZone::utc())
    }

    fn num(s: &str) -> Value {
        Value::Numeric(Numeric::parse(s).unwrap())
    }
    fn text(s: &str) -> Value {
        Value::Text(s.into())
    }
    fn numeric(p: u16, s: u16) -> DataType {
        DataType::Numeric {
            precision: Some(p),
            scale: Some(s),
        }
    }
    fn err(v: Value, to: &DataType, explicit: bool) -> (SqlState, String) {
        let e = cast(v, to, explicit).unwrap_err();
        (e.state, e.message)
    }

    #[test]
    fn null_casts_to_null() {
        assert_eq!(
            cast(Value::Null, &DataType::Int4, true).unwrap(),
            Value::Null
        );
        assert_eq!(
            assignment_cast(Value::Null, &DataType::Uuid, "u").unwrap(),
            Value::Null
        );
    }

    #[test]
    fn integer_narrowing_checks_range() {
        assert_eq!(
            cast(Value::Int8(7), &DataType::Int2, false).unwrap(),
            Value::Int2(7)
        );
        let range = SqlState::NUMERIC_VALUE_OUT_OF_RANGE;
        assert_eq!(
            err(Value::Int4(40000), &DataType::Int2, false),
            (range, "smallint out of range".into())
        );
        assert_eq!(
            err(num("2147483648"), &DataType::Int4, false),
            (range, "integer out of range".into())
        );
        assert_eq!(
            err(Value::Float8(3e9), &DataType::Int4, false),
            (range, "integer out of range".into())
        );
        assert_eq!(
            err(num("1e20"), &DataType::Int8, false),
            (range, "bigint out of range".into())
        );
        assert_eq!(
            err(Value::Float8(f64::NAN), &DataType::Int8, false),
            (range, "bigint out of range".into())
        );
    }

    /// PostgreSQL: 2.5::float8::int = 2, 3.5::float8::int = 4, 2.5::numeric::int = 3.
    #[test]
    fn floats_round_half_even_numerics_half_away() {
        assert_eq!(
            cast(Value::Float8(2.5), &DataType::Int4, false).unwrap(),
            Value::Int4(2)
        );
        assert_eq!(
            cast(Value::Float8(3.5), &DataType::Int4, false).unwrap(),
            Value::Int4(4)
        );
        assert_eq!(
            cast(Value::Float8(-2.5), &DataType::Int4, false).unwrap(),
            Value::Int4(-2)
        );
        assert_eq!(
            cast(Value::Float4(0.5), &DataType::Int2, false).unwrap(),
            Value::Int2(0)
        );
        assert_eq!(
            cast(num("2.5"), &DataType::Int4, false).unwrap(),
            Value::Int4(3)
        );
        assert_eq!(
            cast(num("-2.5"), &DataType::Int4, false).unwrap(),
            Value::Int4(-3)
        );
        assert_eq!(
            err(num("NaN"), &DataType::Int4, true),
            (
                SqlState::FEATURE_NOT_SUPPORTED,
                "cannot convert NaN to integer".into()
            )
        );
        assert_eq!(
            err(num("-inf"), &DataType::Int8, true).1,
            "cannot convert infinity to bigint"
        );
    }

    #[test]
    fn numeric_typmod_applies_on_cast() {
        assert_eq!(
            cast(num("123.456"), &numeric(5, 2), false).unwrap(),
            num("123.46")
        );
        assert_eq!(
            cast(Value::Int4(1), &numeric(5, 2), false)
                .unwrap()
                .to_string_pg(),
            "1.00"
        );
        let e = cast(num("999.995"), &numeric(5, 2), false).unwrap_err();
        assert_eq!(e.message, "numeric field overflow");
        assert_eq!(
            cast(text("1.5"), &numeric(3, 0), true)
                .unwrap()
                .to_string_pg(),
            "2"
        );
        assert_eq!(
            cast(
                Value::Float8(0.1),
                &DataType::Numeric {
                    precision: None,
                    scale: None
                },
                false
            )
            .unwrap()
            .to_string_pg(),
            "0.1"
        );
    }

    #[test]
    fn float_narrowing_reports_overflow_and_underflow() {
        assert_eq!(
            err(Value::Float8(1e300), &DataType::Float4, false),
            (
                SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
                "value out of range: overflow".into()
            )
        );
        assert_eq!(
            err(Value::Float8(1e-300), &DataType::Float4, false).1,
            "value out of range: underflow"
        );
        assert_eq!(
            cast(Value::Float8(f64::INFINITY), &DataType::Float4, false).unwrap(),
            Value::Float4(f32::INFINITY)
        );
        assert_eq!(
            cast(Value::Int8(1 << 40), &DataType::Float8, false).unwrap(),
            Value::Float8(1099511627776.0)
        );
        // numeric → float goes through text, with float8in's errors (PostgreSQL 15).
        assert_eq!(
            err(num("1e40"), &DataType::Float4, false).1,
            "\"10000000000000000000000000000000000000000\" is out of range for type real"
        );
        assert_eq!(
            err(num("1e-50"), &DataType::Float4, false).1,
            format!("\"0.{}1\" is out of range for type real", "0".repeat(49))
        );
        assert_eq!(
            cast(num("0.1"), &DataType::Float4, false).unwrap(),
            Value::Float4(0.1)
        );
        assert!(matches!(
            cast(num("NaN"), &DataType::Float8, false).unwrap(),
            Value::Float8(f) if f.is_nan()
        ));
    }

    /// PostgreSQL: 'abcd' into varchar(3) fails on INSERT; 'abc   ' is cut; ::varchar(3)
    /// truncates.
    #[test]
    fn string_lengths_follow_postgres() {
        let v3 = DataType::Varchar(Some(3));
        let c3 = DataType::Char(Some(3));
        assert_eq!(
            err(text("abcd"), &v3, false),
            (
                SqlState::STRING_DATA_RIGHT_TRUNCATION,
                "value too long for type character varying(3)".into()
            )
        );
        assert_eq!(
            err(text("abcd"), &c3, false).1,
            "value too long for type character(3)"
        );
        assert_eq!(cast(text("abc   "), &v3, false).unwrap(), text("abc"));
        assert_eq!(cast(text("abcd"), &v3, true).unwrap(), text("abc"));
        assert_eq!(cast(text("abcd"), &c3, true).unwrap(), text("abc"));
        assert_eq!(cast(text("ab   "), &c3, false).unwrap(), text("ab"));
        assert_eq!(cast(text("ab "), &v3, false).unwrap(), text("ab "));
        assert_eq!(cast(text("héllo"), &v3, true).unwrap(), text("hél"));
        assert_eq!(
            err(Value::Int4(12345), &v3, false).1,
            "value too long for type character varying(3)"
        );
    }

    #[test]
    fn to_text_uses_output_functions_and_bool_words() {
        assert_eq!(
            cast(Value::Bool(true), &DataType::Text, true).unwrap(),
            text("true")
        );
        assert_eq!(
            cast(num("1.50"), &DataType::Text, true).unwrap(),
            text("1.50")
        );
        assert_eq!(
            cast(Value::Date(0), &DataType::Varchar(None), false).unwrap(),
            text("2000-01-01")
        );
        assert_eq!(
            cast(Value::Bytea(vec![1]), &DataType::Text, true).unwrap(),
            text("\\x01")
        );
    }

    #[test]
    fn text_uses_input_functions() {
        assert_eq!(
            cast(text(" 42 "), &DataType::Int4, true).unwrap(),
            Value::Int4(42)
        );
        assert_eq!(
            cast(text("t"), &DataType::Bool, true).unwrap(),
            Value::Bool(true)
        );
        assert_eq!(
            err(text("x"), &DataType::Uuid, true),
            (
                SqlState::INVALID_TEXT_REPRESENTATION,
                "invalid input syntax for type uuid: \"x\"".into()
            )
        );
    }

    #[test]
    fn bool_and_integer_cast_explicitly_only() {
        assert_eq!(
            cast(Value::Int4(5), &DataType::Bool, true).unwrap(),
            Value::Bool(true)
        );
        assert_eq!(
            cast(Value::Int4(0), &DataType::Bool, true).unwrap(),
            Value::Bool(false)
        );
        assert_eq!(
            cast(Value::Bool(true), &DataType::Int4, true).unwrap(),
            Value::Int4(1)
        );
        assert_eq!(
            err(Value::Int8(1), &DataType::Bool, true),
            (
                SqlState::CANNOT_COERCE,
                "cannot cast type bigint to boolean".into()
            )
        );
        assert!(can_cast_explicitly(&DataType::Bool, &DataType::Int4));
        assert!(!can_cast_assignment(&DataType::Bool, &DataType::Int4));
        assert!(!can_cast_explicitly(&DataType::Int8, &DataType::Bool));
    }

    #[test]
    fn dates_and_timestamps_convert() {
        let day = USECS_PER_DAY;
        assert_eq!(
            cast(Value::Date(1), &DataType::Timestamp, false).unwrap(),
            Value::Timestamp(day)
        );
        assert_eq!(
            cast(Value::Timestamp(-1), &DataType::Date, false).unwrap(),
            Value::Date(-1)
        );
        assert_eq!(
            cast(Value::Timestamp(5), &DataType::TimestampTz, false).unwrap(),
            Value::TimestampTz(5)
        );
        assert_eq!(
            cast(Value::Date(DATE_INFINITY), &DataType::TimestampTz, false).unwrap(),
            Value::TimestampTz(TIMESTAMP_INFINITY)
        );
        assert_eq!(
            err(
                Value::Date(super::super::datetime::DATE_MAX),
                &DataType::Timestamp,
                false
            )
            .1,
            "date out of range for timestamp"
        );
    }

    #[test]
    fn implicit_cast_table() {
        use DataType::*;
        let num = Numeric {
            precision: None,
            scale: None,
        };
        for (from, to) in [
            (Int2, Int4),
            (Int4, Int8),
            (Int8, num.clone()),
            (num.clone(), Float4),
            (Float4, Float8),
            (Int2, Float8),
            (Text, Varchar(Some(3))),
            (Char(Some(1)), Text),
            (Date, Timestamp),
            (Timestamp, TimestampTz),
            (Unknown, Uuid),
            (Varchar(Some(2)), Varchar(Some(9))),
        ] {
            assert!(can_cast_implicitly(&from, &to), "{from} -> {to}");
        }
        for (from, to) in [
            (Int4, Int2),
            (Float8, num.clone()),
            (Float8, Float4),
            (Int4, Text),
            (Text, Int4),
            (Bool, Int4),
            (TimestampTz, Timestamp),
            (Uuid, Text),
        ] {
            assert!(!can_cast_implicitly(&from, &to), "{from} -> {to}");
        }
    }

    /// Messages from PostgreSQL 15's INSERT.
    #[test]
    fn assignment_refuses_what_postgres_refuses() {
        let e = assignment_cast(Value::Bool(true), &DataType::Int4, "i").unwrap_err();
        assert_eq!(e.state, SqlState::DATATYPE_MISMATCH);
        assert_eq!(
            e.message,
            "column \"i\" is of type integer but expression is of type boolean"
        );
        assert_eq!(
            e.hint.as_deref(),
            Some("You will need to rewrite or cast the expression.")
        );
        let e = assignment_cast(text("1"), &DataType::Int4, "i").unwrap_err();
        assert_eq!(
            e.message,
            "column \"i\" is of type integer but expression is of type text"
        );
        let e = assignment_cast(Value::Int4(1), &DataType::Bool, "b").unwrap_err();
        assert_eq!(
            e.message,
            "column \"b\" is of type boolean but expression is of type integer"
        );
        // Allowed on assignment:
        assert_eq!(
            assignment_cast_from(text("1"), &DataType::Unknown, &DataType::Int4, "i").unwrap(),
            Value::Int4(1)
        );
        assert_eq!(
            assignment_cast(num("2.5"), &DataType::Int4, "i").unwrap(),
            Value::Int4(3)
        );
        assert_eq!(
            assignment_cast(Value::Bool(true), &DataType::Text, "t").unwrap(),
            text("true")
        );
        assert_eq!(
            assignment_cast(Value::Timestamp(USECS_PER_DAY + 5), &DataType::Date, "d").unwrap(),
            Value::Date(1)
        );
        let e = assignment_cast(Value::Int4(40000), &DataType::Int2, "s").unwrap_err();
        assert_eq!(e.message, "smallint out of range");
    }

    trait Pg {
        fn to_string_pg(&self) -> String;
    }
    impl Pg for Value {
        fn to_string_pg(&self) -> String {
            format_text(self, &TimeZone::utc())
        }
    }
}
