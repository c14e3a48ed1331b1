//! PostgreSQL's data types as Cairn implements them: what a column can hold, how values look
//! in text and binary on the wire, how they order inside keys, and how they convert.
//!
//! | SQL type | [`DataType`] | [`Value`] | OID |
//! |---|---|---|---|
//! | boolean | `Bool` | `Bool(bool)` | 16 |
//! | smallint / integer / bigint | `Int2` / `Int4` / `Int8` | `Int2(i16)` / `Int4(i32)` / `Int8(i64)` | 21 / 23 / 20 |
//! | real / double precision | `Float4` / `Float8` | `Float4(f32)` / `Float8(f64)` | 700 / 701 |
//! | numeric(p, s) | `Numeric { precision, scale }` | `Numeric(Numeric)` | 1700 |
//! | text / varchar(n) / char(n) | `Text` / `Varchar(n)` / `Char(n)` | `Text(String)` | 25 / 1043 / 1042 |
//! | bytea | `Bytea` | `Bytea(Vec<u8>)` | 17 |
//! | date | `Date` | `Date(days since 2000-01-01)` | 1082 |
//! | timestamp / timestamptz | `Timestamp` / `TimestampTz` | µs since 2000-01-01 00:00 (UTC for tz) | 1114 / 1184 |
//! | uuid | `Uuid` | `Uuid([u8; 16])` | 2950 |
//! | interval | `Interval` | `Interval(months, days, µs)` | 1186 |
//! | json / jsonb | `Json` / `Jsonb` | `Json(text)` / `Jsonb(json::Json)` | 114 / 3802 |
//! | T[] (one dimension) | `Array(T)` | `Array(Vec<Value>)` | 1007 (int4[]) ... |
//!
//! Dates and timestamps count from PostgreSQL's epoch (2000-01-01), as its binary format does.
//! `char(n)` values are held without their trailing blanks (insignificant to `bpchar`
//! comparison), so that equality, ordering and keys are byte-wise; output pads them back
//! ([`text::format_text_typed`]). See [`cast`] for lengths and the cast contexts.
//! `Unknown` is the type of a quoted literal or parameter whose type is not yet inferred.
//!
//! Submodules: [`numeric`] (arbitrary-scale decimal), [`datetime`] (calendar arithmetic,
//! date and timestamp text formats), [`text`] (input and output functions),
//! [`binary`] (binary wire format), [`cast`] (conversions with PostgreSQL's rules), [`ops`]
//! (comparison and arithmetic), [`keycode`] (order-preserving key encoding), [`row`] (row
//! encoding in storage).

pub mod array;
pub mod binary;
pub mod cast;
pub mod datetime;
pub mod interval;
pub mod json;
pub mod keycode;
pub mod numeric;
pub mod ops;
pub mod row;
pub mod text;
pub mod timezone;
pub mod to_char;

use std::fmt;

use serde::{Deserialize, Serialize};
use sqlparser::ast;

pub use numeric::Numeric;

use crate::error::{SqlError, SqlResult, SqlState};

/// A column or expression type.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DataType {
    /// boolean
    Bool,
    /// smallint
    Int2,
    /// integer
    Int4,
    /// bigint
    Int8,
    /// real
    Float4,
    /// double precision
    Float8,
    /// numeric, optionally with precision and scale
    Numeric {
        /// Total significant digits allowed (1..=1000), if constrained.
        precision: Option<u16>,
        /// Digits after the decimal point, if constrained.
        scale: Option<u16>,
    },
    /// text
    Text,
    /// character varying, optionally with a maximum length in characters
    Varchar(Option<u32>),
    /// character (blank-padded), with its length in characters (default 1)
    Char(Option<u32>),
    /// bytea
    Bytea,
    /// date
    Date,
    /// timestamp without time zone
    Timestamp,
    /// timestamp with time zone
    TimestampTz,
    /// uuid
    Uuid,
    /// interval
    Interval,
    /// json (text, validated)
    Json,
    /// jsonb (parsed, normalized)
    Jsonb,
    /// a one-dimensional array of the element type
    Array(Box<DataType>),
    /// oid: an object identifier (unsigned 32 bits on the wire; held as a bigint value)
    Oid,
    /// int2vector: an array of smallints written space-separated (the system catalogs'
    /// column lists, such as `pg_index.indkey`); it converts to smallint[] implicitly
    Int2Vector,
    /// not yet known: an untyped literal or parameter
    Unknown,
}

/// A value of some [`DataType`]. `Text` holds text, varchar and char values alike.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// boolean
    Bool(bool),
    /// smallint
    Int2(i16),
    /// integer
    Int4(i32),
    /// bigint
    Int8(i64),
    /// real
    Float4(f32),
    /// double precision
    Float8(f64),
    /// numeric
    Numeric(Numeric),
    /// text, varchar, char
    Text(String),
    /// bytea
    Bytea(Vec<u8>),
    /// date: days since 2000-01-01
    Date(i32),
    /// timestamp: microseconds since 2000-01-01 00:00:00
    Timestamp(i64),
    /// timestamptz: microseconds since 2000-01-01 00:00:00 UTC
    TimestampTz(i64),
    /// uuid
    Uuid([u8; 16]),
    /// interval
    Interval(interval::Interval),
    /// an array (one dimension, subscripts from 1)
    Array(Vec<Value>),
    /// json: the document's text as written
    Json(String),
    /// jsonb
    Jsonb(json::Json),
}

impl DataType {
    /// PostgreSQL's type OID.
    pub fn oid(&self) -> u32 {
        match self {
            DataType::Bool => 16,
            DataType::Bytea => 17,
            DataType::Int8 => 20,
            DataType::Int2 => 21,
            DataType::Int4 => 23,
            DataType::Text => 25,
            DataType::Float4 => 700,
            DataType::Float8 => 701,
            DataType::Unknown => 705,
            DataType::Char(_) => 1042,
            DataType::Varchar(_) => 1043,
            DataType::Date => 1082,
            DataType::Timestamp => 1114,
            DataType::TimestampTz => 1184,
            DataType::Numeric { .. } => 1700,
            DataType::Uuid => 2950,
            DataType::Interval => 1186,
            DataType::Json => 114,
            DataType::Jsonb => 3802,
            DataType::Array(element) => array::array_oid(element),
            DataType::Int2Vector => 22,
            DataType::Oid => 26,
        }
    }

    /// The type with this OID, unconstrained; `None` for OIDs Cairn does not support.
    pub fn from_oid(oid: u32) -> Option<DataType> {
        Some(match oid {
            16 => DataType::Bool,
            17 => DataType::Bytea,
            20 => DataType::Int8,
            21 => DataType::Int2,
            23 => DataType::Int4,
            25 => DataType::Text,
            700 => DataType::Float4,
            701 => DataType::Float8,
            705 => DataType::Unknown,
            1042 => DataType::Char(None),
            1043 => DataType::Varchar(None),
            1082 => DataType::Date,
            1114 => DataType::Timestamp,
            1184 => DataType::TimestampTz,
            1700 => DataType::Numeric {
                precision: None,
                scale: None,
            },
            2950 => DataType::Uuid,
            1186 => DataType::Interval,
            114 => DataType::Json,
            3802 => DataType::Jsonb,
            22 => DataType::Int2Vector,
            26 => DataType::Oid,
            other => DataType::Array(Box::new(array::element_of_oid(other)?)),
        })
    }

    /// The size PostgreSQL reports in RowDescription (`typlen`): bytes, or -1 if variable.
    pub fn type_size(&self) -> i16 {
        match self {
            DataType::Bool => 1,
            DataType::Int2 => 2,
            DataType::Int4 | DataType::Float4 | DataType::Date | DataType::Oid => 4,
            DataType::Int8 | DataType::Float8 | DataType::Timestamp | DataType::TimestampTz => 8,
            DataType::Uuid | DataType::Interval => 16,
            DataType::Unknown => -2,
            _ => -1,
        }
    }

    /// The type modifier PostgreSQL reports in RowDescription (`atttypmod`), or -1.
    pub fn type_modifier(&self) -> i32 {
        match self {
            DataType::Varchar(Some(n)) | DataType::Char(Some(n)) => {
                i32::try_from(*n).unwrap_or(i32::MAX - 4) + 4
            }
            DataType::Numeric {
                precision: Some(p),
                scale,
            } => ((i32::from(*p) << 16) | i32::from(scale.unwrap_or(0))) + 4,
            _ => -1,
        }
    }

    /// Whether values of this type are numbers (for arithmetic and comparison promotion).
    pub fn is_numeric(&self) -> bool {
        matches!(
            self,
            DataType::Int2
                | DataType::Int4
                | DataType::Int8
                | DataType::Oid
                | DataType::Float4
                | DataType::Float8
                | DataType::Numeric { .. }
        )
    }

    /// Whether values of this type are character strings.
    pub fn is_text(&self) -> bool {
        matches!(
            self,
            DataType::Text | DataType::Varchar(_) | DataType::Char(_)
        )
    }

    /// The type named by a SQL type name in a column definition or cast.
    pub fn from_ast(data_type: &ast::DataType) -> SqlResult<DataType> {
        use ast::DataType as A;
        // PostgreSQL names the types `varchar` and `char` in these messages.
        let length = |len: &Option<ast::CharacterLength>, name: &str| -> SqlResult<Option<u32>> {
            match len {
                None | Some(ast::CharacterLength::Max) => Ok(None),
                Some(ast::CharacterLength::IntegerLength { length, .. }) => {
                    let invalid = |m: String| SqlError::new(SqlState::INVALID_PARAMETER_VALUE, m);
                    if *length == 0 {
                        return Err(invalid(format!(
                            "length for type {name} must be at least 1"
                        )));
                    }
                    if *length > 10_485_760 {
                        return Err(invalid(format!(
                            "length for type {name} cannot exceed 10485760"
                        )));
                    }
                    Ok(Some(*length as u32))
                }
            }
        };
        Ok(match data_type {
            A::Bool | A::Boolean => DataType::Bool,
            A::SmallInt(_) | A::Int2(_) => DataType::Int2,
            A::Int(_) | A::Integer(_) | A::Int4(_) => DataType::Int4,
            A::BigInt(_) | A::Int8(_) => DataType::Int8,
            A::Real | A::Float4 => DataType::Float4,
            A::Double(_) | A::DoublePrecision | A::Float8 => DataType::Float8,
            A::Float(info) => match float_precision(info) {
                None => DataType::Float8,
                Some(0) => {
                    return Err(SqlError::new(
                        SqlState::INVALID_PARAMETER_VALUE,
                        "precision for type float must be at least 1 bit",
                    ))
                }
                Some(p) if p <= 24 => DataType::Float4,
                Some(p) if p <= 53 => DataType::Float8,
                Some(_) => {
                    return Err(SqlError::new(
                        SqlState::INVALID_PARAMETER_VALUE,
                        "precision for type float must be less than 54 bits",
                    ))
                }
            },
            A::Numeric(info) | A::Decimal(info) | A::Dec(info) => numeric_type(info)?,
            A::Text | A::String(_) => DataType::Text,
            A::Varchar(len) | A::CharacterVarying(len) | A::CharVarying(len) => {
                DataType::Varchar(length(len, "varchar")?)
            }
            A::Char(len) | A::Character(len) => {
                DataType::Char(Some(length(len, "char")?.unwrap_or(1)))
            }
            A::Bytea => DataType::Bytea,
            A::Date => DataType::Date,
            A::Timestamp(_, tz) => match tz {
                ast::TimezoneInfo::WithTimeZone | ast::TimezoneInfo::Tz => DataType::TimestampTz,
                _ => DataType::Timestamp,
            },
            A::Uuid => DataType::Uuid,
            A::Interval { .. } => DataType::Interval,
            A::JSON => DataType::Json,
            A::JSONB => DataType::Jsonb,
            A::Array(ast::ArrayElemTypeDef::SquareBracket(element, _))
            | A::Array(ast::ArrayElemTypeDef::AngleBracket(element))
            | A::Array(ast::ArrayElemTypeDef::Parenthesis(element)) => {
                let element = DataType::from_ast(element)?;
                if matches!(element, DataType::Array(_)) {
                    return Err(SqlError::unsupported(
                        "multidimensional arrays are not supported",
                    ));
                }
                DataType::Array(Box::new(element))
            }
            A::Custom(name, modifiers) => {
                let name = name.to_string().to_lowercase();
                if let Some(bare) = name.strip_prefix("pg_catalog.") {
                    // `pg_catalog.text`: the built-in type by its own name.
                    if modifiers.is_empty() && bare != "\"char\"" {
                        use sqlparser::{dialect::PostgreSqlDialect, parser::Parser};
                        let parsed = Parser::new(&PostgreSqlDialect {})
                            .try_with_sql(bare)
                            .and_then(|mut parser| parser.parse_data_type());
                        if let Ok(parsed) = parsed {
                            return DataType::from_ast(&parsed);
                        }
                    }
                }
                let name = name.strip_prefix("pg_catalog.").unwrap_or(&name);
                // `"char"` (quoted) is PostgreSQL's one-byte type, not character(n).
                if name == "\"char\"" {
                    return Ok(DataType::Char(Some(1)));
                }
                let name = name.trim_matches('"');
                match (name, modifiers.len()) {
                    ("oid", 0) => DataType::Oid,
                    ("name", 0) => DataType::Text,
                    ("int2", 0) => DataType::Int2,
                    ("int4", 0) | ("int", 0) | ("integer", 0) => DataType::Int4,
                    ("int8", 0) => DataType::Int8,
                    ("float4", 0) => DataType::Float4,
                    ("float8", 0) => DataType::Float8,
                    ("bool", 0) => DataType::Bool,
                    ("bpchar", 0) => DataType::Char(None),
                    ("timestamptz", 0) => DataType::TimestampTz,
                    ("serial", _) | ("bigserial", _) | ("smallserial", _) => {
                        return Err(SqlError::unsupported(format!(
                            "type {name} is not supported yet (sequences come later)"
                        )))
                    }
                    _ => {
                        return Err(SqlError::new(
                            SqlState::UNDEFINED_OBJECT,
                            format!("type \"{name}\" does not exist"),
                        ))
                    }
                }
            }
            other => {
                return Err(SqlError::unsupported(format!(
                    "type {other} is not supported"
                )));
            }
        })
    }
}

fn float_precision(info: &ast::ExactNumberInfo) -> Option<u64> {
    match info {
        ast::ExactNumberInfo::None => None,
        ast::ExactNumberInfo::Precision(p) | ast::ExactNumberInfo::PrecisionAndScale(p, _) => {
            Some(*p)
        }
    }
}

fn numeric_type(info: &ast::ExactNumberInfo) -> SqlResult<DataType> {
    let check_precision = |p: u64| -> SqlResult<u16> {
        if !(1..=1000).contains(&p) {
            return Err(SqlError::new(
                SqlState::INVALID_PARAMETER_VALUE,
                format!("NUMERIC precision {p} must be between 1 and 1000"),
            ));
        }
        Ok(p as u16)
    };
    Ok(match info {
        ast::ExactNumberInfo::None => DataType::Numeric {
            precision: None,
            scale: None,
        },
        ast::ExactNumberInfo::Precision(p) => DataType::Numeric {
            precision: Some(check_precision(*p)?),
            scale: Some(0),
        },
        ast::ExactNumberInfo::PrecisionAndScale(p, s) => {
            let precision = check_precision(*p)?;
            if !(-1000..=1000).contains(s) {
                return Err(SqlError::new(
                    SqlState::INVALID_PARAMETER_VALUE,
                    format!("NUMERIC scale {s} must be between -1000 and 1000"),
                ));
            }
            // PostgreSQL 15 allows a negative scale (rounding to tens, hundreds...).
            let scale = u16::try_from(*s).map_err(|_| {
                SqlError::unsupported(format!("NUMERIC scale {s} is not supported (negative)"))
            })?;
            DataType::Numeric {
                precision: Some(precision),
                scale: Some(scale),
            }
        }
    })
}

/// PostgreSQL's name for the type, as `format_type` prints it (`character varying(10)`).
impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataType::Bool => f.write_str("boolean"),
            DataType::Int2 => f.write_str("smallint"),
            DataType::Int4 => f.write_str("integer"),
            DataType::Int8 => f.write_str("bigint"),
            DataType::Float4 => f.write_str("real"),
            DataType::Float8 => f.write_str("double precision"),
            DataType::Numeric {
                precision: Some(p),
                scale,
            } => {
                write!(f, "numeric({p},{})", scale.unwrap_or(0))
            }
            DataType::Numeric { .. } => f.write_str("numeric"),
            DataType::Text => f.write_str("text"),
            DataType::Varchar(Some(n)) => write!(f, "character varying({n})"),
            DataType::Varchar(None) => f.write_str("character varying"),
            DataType::Char(Some(n)) => write!(f, "character({n})"),
            DataType::Char(None) => f.write_str("character"),
            DataType::Bytea => f.write_str("bytea"),
            DataType::Date => f.write_str("date"),
            DataType::Timestamp => f.write_str("timestamp without time zone"),
            DataType::TimestampTz => f.write_str("timestamp with time zone"),
            DataType::Uuid => f.write_str("uuid"),
            DataType::Interval => f.write_str("interval"),
            DataType::Json => f.write_str("json"),
            DataType::Jsonb => f.write_str("jsonb"),
            DataType::Array(element) => write!(f, "{element}[]"),
            DataType::Int2Vector => f.write_str("int2vector"),
            DataType::Oid => f.write_str("oid"),
            DataType::Unknown => f.write_str("unknown"),
        }
    }
}

impl Value {
    /// Whether this is SQL NULL.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The natural type of the value (`Text` for any string; `Unknown` for NULL).
    pub fn data_type(&self) -> DataType {
        match self {
            Value::Null => DataType::Unknown,
            Value::Bool(_) => DataType::Bool,
            Value::Int2(_) => DataType::Int2,
            Value::Int4(_) => DataType::Int4,
            Value::Int8(_) => DataType::Int8,
            Value::Float4(_) => DataType::Float4,
            Value::Float8(_) => DataType::Float8,
            Value::Numeric(_) => DataType::Numeric {
                precision: None,
                scale: None,
            },
            Value::Text(_) => DataType::Text,
            Value::Bytea(_) => DataType::Bytea,
            Value::Date(_) => DataType::Date,
            Value::Timestamp(_) => DataType::Timestamp,
            Value::TimestampTz(_) => DataType::TimestampTz,
            Value::Uuid(_) => DataType::Uuid,
            Value::Interval(_) => DataType::Interval,
            Value::Json(_) => DataType::Json,
            Value::Jsonb(_) => DataType::Jsonb,
            Value::Array(values) => DataType::Array(Box::new(
                values
                    .iter()
                    .find(|v| !v.is_null())
                    .map_or(DataType::Unknown, Value::data_type),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::dialect::PostgreSqlDialect;
    use sqlparser::parser::Parser;

    fn parse(sql: &str) -> SqlResult<DataType> {
        let dialect = PostgreSqlDialect {};
        let ast = Parser::new(&dialect)
            .try_with_sql(sql)
            .unwrap()
            .parse_data_type()
            .unwrap();
        DataType::from_ast(&ast)
    }

    /// Names as PostgreSQL 15's `format_type` prints them.
    #[test]
    fn type_names_parse_and_print_like_postgres() {
        for (sql, name) in [
            ("int", "integer"),
            ("int2", "smallint"),
            ("bigint", "bigint"),
            ("float4", "real"),
            ("float(24)", "real"),
            ("float(25)", "double precision"),
            ("double precision", "double precision"),
            ("numeric", "numeric"),
            ("numeric(10)", "numeric(10,0)"),
            ("decimal(10,2)", "numeric(10,2)"),
            ("varchar(3)", "character varying(3)"),
            ("character varying", "character varying"),
            ("char", "character(1)"),
            ("char(5)", "character(5)"),
            ("text", "text"),
            ("bytea", "bytea"),
            ("date", "date"),
            ("timestamp", "timestamp without time zone"),
            ("timestamp with time zone", "timestamp with time zone"),
            ("timestamptz", "timestamp with time zone"),
            ("uuid", "uuid"),
            ("boolean", "boolean"),
        ] {
            assert_eq!(parse(sql).unwrap().to_string(), name, "{sql}");
        }
    }

    /// Messages from PostgreSQL 15's CREATE TABLE.
    #[test]
    fn bad_type_modifiers_fail_like_postgres() {
        for (sql, message) in [
            ("varchar(0)", "length for type varchar must be at least 1"),
            (
                "varchar(10485761)",
                "length for type varchar cannot exceed 10485760",
            ),
            ("char(0)", "length for type char must be at least 1"),
            (
                "numeric(0)",
                "NUMERIC precision 0 must be between 1 and 1000",
            ),
            (
                "numeric(1001)",
                "NUMERIC precision 1001 must be between 1 and 1000",
            ),
            (
                "float(54)",
                "precision for type float must be less than 54 bits",
            ),
            ("foo", "type \"foo\" does not exist"),
        ] {
            assert_eq!(parse(sql).unwrap_err().message, message, "{sql}");
        }
        assert_eq!(
            parse("numeric(5,6)").unwrap(),
            DataType::Numeric {
                precision: Some(5),
                scale: Some(6)
            }
        );
    }

    #[test]
    fn oids_and_modifiers_match_postgres() {
        assert_eq!(parse("varchar(10)").unwrap().type_modifier(), 14);
        assert_eq!(parse("numeric(10,2)").unwrap().type_modifier(), 655_366);
        assert_eq!(parse("text").unwrap().type_modifier(), -1);
        for ty in [
            DataType::Bool,
            DataType::Int8,
            DataType::Uuid,
            DataType::TimestampTz,
        ] {
            assert_eq!(DataType::from_oid(ty.oid()), Some(ty));
        }
    }
}
