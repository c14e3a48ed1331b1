//! One-dimensional arrays of the scalar types, as PostgreSQL writes and reads them:
//! `{1,2,NULL}` in text (elements quoted when they need it), the `array_send` binary format,
//! and element-wise comparison (a NULL element sorts after every value, and two NULL
//! elements are equal, as in PostgreSQL's array comparison). Subscripts start at 1.

use std::cmp::Ordering;

use super::timezone::TimeZone;
use super::{binary, ops, text, DataType, Value};
use crate::error::{SqlError, SqlResult, SqlState};

/// The array type OID for an element type (`int4` → `_int4`), if PostgreSQL has one Cairn
/// supports.
pub fn array_oid(element: &DataType) -> u32 {
    match element {
        DataType::Bool => 1000,
        DataType::Bytea => 1001,
        DataType::Int2 => 1005,
        DataType::Int2Vector => 1006,
        DataType::Oid => 1028,
        DataType::Int4 => 1007,
        DataType::Text | DataType::Unknown => 1009,
        DataType::Char(_) => 1014,
        DataType::Varchar(_) => 1015,
        DataType::Int8 => 1016,
        DataType::Float4 => 1021,
        DataType::Float8 => 1022,
        DataType::Timestamp => 1115,
        DataType::Date => 1182,
        DataType::TimestampTz => 1185,
        DataType::Interval => 1187,
        DataType::Json => 199,
        DataType::Jsonb => 3807,
        DataType::Numeric { .. } => 1231,
        DataType::Uuid => 2951,
        DataType::Array(_) => 0,
    }
}

/// The element type of an array type OID.
pub fn element_of_oid(oid: u32) -> Option<DataType> {
    Some(match oid {
        1000 => DataType::Bool,
        1001 => DataType::Bytea,
        1005 => DataType::Int2,
        1028 => DataType::Oid,
        1007 => DataType::Int4,
        1009 => DataType::Text,
        1014 => DataType::Char(None),
        1015 => DataType::Varchar(None),
        1016 => DataType::Int8,
        1021 => DataType::Float4,
        1022 => DataType::Float8,
        1115 => DataType::Timestamp,
        1182 => DataType::Date,
        1185 => DataType::TimestampTz,
        1187 => DataType::Interval,
        199 => DataType::Json,
        3807 => DataType::Jsonb,
        1231 => DataType::Numeric {
            precision: None,
            scale: None,
        },
        2951 => DataType::Uuid,
        _ => return None,
    })
}

fn malformed(input: &str, detail: &str) -> SqlError {
    SqlError::new(
        SqlState::INVALID_TEXT_REPRESENTATION,
        format!("malformed array literal: \"{input}\""),
    )
    .with_detail(detail.to_string())
}

/// `array_in` for one dimension: `{a,"b c",NULL}`; each element read as `element`.
pub fn parse_array(input: &str, element: &DataType, zone: &TimeZone) -> SqlResult<Vec<Value>> {
    let body = input.trim().strip_prefix('{').ok_or_else(|| {
        malformed(
            input,
            "Array value must start with \"{\" or dimension information.",
        )
    })?;
    let body = body
        .strip_suffix('}')
        .ok_or_else(|| malformed(input, "Unexpected end of input."))?;
    let mut values = Vec::new();
    if body.trim().is_empty() {
        return Ok(values);
    }
    let mut chars = body.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut item = String::new();
        let quoted = chars.peek() == Some(&'"');
        if quoted {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => item.push(
                        chars
                            .next()
                            .ok_or_else(|| malformed(input, "Unexpected end of input."))?,
                    ),
                    Some(c) => item.push(c),
                    None => return Err(malformed(input, "Unexpected end of input.")),
                }
            }
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                if matches!(c, '{' | '}' | '"') {
                    return Err(malformed(
                        input,
                        "Multidimensional arrays are not supported; unexpected \"{\", \"}\" or quote.",
                    ));
                }
                chars.next();
                if c == '\\' {
                    item.push(
                        chars
                            .next()
                            .ok_or_else(|| malformed(input, "Unexpected end of input."))?,
                    );
                } else {
                    item.push(c);
                }
            }
            let trimmed = item.trim_end().to_string();
            if trimmed.is_empty() {
                return Err(malformed(input, "Unexpected \",\" character."));
            }
            item = trimmed;
        }
        values.push(if !quoted && item.eq_ignore_ascii_case("null") {
            Value::Null
        } else {
            text::parse_text(element, &item, zone)?
        });
        match chars.next() {
            None => return Ok(values),
            Some(',') => {}
            Some(_) => return Err(malformed(input, "Unexpected array element.")),
        }
    }
}

/// `array_out`: `{1,2,NULL}`, `{"a b",c}`.
pub fn format_array(values: &[Value], zone: &TimeZone) -> String {
    let mut out = String::from("{");
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        if value.is_null() {
            out.push_str("NULL");
            continue;
        }
        let item = text::format_text(value, zone);
        let needs_quotes = item.is_empty()
            || item.eq_ignore_ascii_case("null")
            || item
                .chars()
                .any(|c| matches!(c, '{' | '}' | ',' | '"' | '\\') || c.is_whitespace());
        if needs_quotes {
            out.push('"');
            for c in item.chars() {
                if c == '"' || c == '\\' {
                    out.push('\\');
                }
                out.push(c);
            }
            out.push('"');
        } else {
            out.push_str(&item);
        }
    }
    out.push('}');
    out
}

/// `array_send`: dimensions, a null flag, the element type, then each element.
pub fn encode_array(values: &[Value], element: &DataType, out: &mut Vec<u8>) {
    let ndim: i32 = if values.is_empty() { 0 } else { 1 };
    out.extend_from_slice(&ndim.to_be_bytes());
    out.extend_from_slice(&i32::from(values.iter().any(Value::is_null)).to_be_bytes());
    out.extend_from_slice(&element.oid().to_be_bytes());
    if values.is_empty() {
        return;
    }
    let len = i32::try_from(values.len()).unwrap_or(i32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&1i32.to_be_bytes());
    for value in values {
        if value.is_null() {
            out.extend_from_slice(&(-1i32).to_be_bytes());
            continue;
        }
        let mut item = Vec::new();
        binary::encode_binary_typed(value, element, &mut item);
        let len = i32::try_from(item.len()).unwrap_or(i32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&item);
    }
}

/// `array_recv` for one dimension.
pub fn decode_array(bytes: &[u8], element: &DataType) -> SqlResult<Vec<Value>> {
    let bad = || {
        SqlError::new(
            SqlState::INVALID_BINARY_REPRESENTATION,
            "insufficient data left in message",
        )
    };
    let mut rest = bytes;
    let int = |rest: &mut &[u8]| -> SqlResult<i32> {
        let (head, tail) = rest.split_at_checked(4).ok_or_else(bad)?;
        *rest = tail;
        Ok(i32::from_be_bytes([head[0], head[1], head[2], head[3]]))
    };
    let ndim = int(&mut rest)?;
    let _has_null = int(&mut rest)?;
    let _element_oid = int(&mut rest)?;
    match ndim {
        0 => return Ok(vec![]),
        1 => {}
        _ => {
            return Err(SqlError::unsupported(
                "multidimensional arrays are not supported",
            ))
        }
    }
    let len = usize::try_from(int(&mut rest)?).map_err(|_| bad())?;
    let _lower_bound = int(&mut rest)?;
    let mut values = Vec::with_capacity(len.min(1 << 16));
    for _ in 0..len {
        let item_len = int(&mut rest)?;
        if item_len < 0 {
            values.push(Value::Null);
            continue;
        }
        let item_len = usize::try_from(item_len).map_err(|_| bad())?;
        let (item, tail) = rest.split_at_checked(item_len).ok_or_else(bad)?;
        values.push(binary::decode_binary(element, item)?);
        rest = tail;
    }
    Ok(values)
}

/// Element-wise order: the first unequal element decides (a NULL element after any value),
/// then the shorter array first.
pub fn compare_arrays(a: &[Value], b: &[Value]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let order = ops::total_cmp(x, y);
        if order != Ordering::Equal {
            return order;
        }
    }
    a.len().cmp(&b.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trips_with_quoting() {
        let values = parse_array(r#"{1, 2 ,NULL,"3"}"#, &DataType::Int4, &TimeZone::utc()).unwrap();
        assert_eq!(
            values,
            [Value::Int4(1), Value::Int4(2), Value::Null, Value::Int4(3)]
        );
        assert_eq!(format_array(&values, &TimeZone::utc()), "{1,2,NULL,3}");
        let texts = parse_array(
            r#"{a,"b c","","NULL","q\"x",d\,e}"#,
            &DataType::Text,
            &TimeZone::utc(),
        )
        .unwrap();
        assert_eq!(
            format_array(&texts, &TimeZone::utc()),
            r#"{a,"b c","","NULL","q\"x","d,e"}"#
        );
        assert!(parse_array("{1,2", &DataType::Int4, &TimeZone::utc()).is_err());
        assert!(parse_array("{1,,2}", &DataType::Int4, &TimeZone::utc()).is_err());
        assert!(parse_array("{{1}}", &DataType::Int4, &TimeZone::utc()).is_err());
        assert_eq!(
            parse_array("{}", &DataType::Int4, &TimeZone::utc()).unwrap(),
            []
        );
    }

    #[test]
    fn binary_round_trips() {
        let values = vec![
            Value::Text("a".into()),
            Value::Null,
            Value::Text("bc".into()),
        ];
        let mut out = Vec::new();
        encode_array(&values, &DataType::Text, &mut out);
        assert_eq!(decode_array(&out, &DataType::Text).unwrap(), values);
        let mut empty = Vec::new();
        encode_array(&[], &DataType::Int4, &mut empty);
        assert_eq!(decode_array(&empty, &DataType::Int4).unwrap(), []);
    }
}
