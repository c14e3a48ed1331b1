//! PostgreSQL's binary wire format (`typsend`/`typreceive`), used for parameters and
//! results whose format code is 1.
//!
//! | type | bytes |
//! |---|---|
//! | bool | 1 (0 or 1) |
//! | int2 / int4 / int8 | 2 / 4 / 8, big-endian two's complement |
//! | float4 / float8 | IEEE 754, big-endian |
//! | numeric | `ndigits i16, weight i16, sign u16, dscale u16`, then `ndigits` base-10000 `i16` digits; sign 0x0000 +, 0x4000 −, 0xC000 NaN, 0xD000 +Infinity, 0xF000 −Infinity |
//! | text / varchar / char | UTF-8 bytes (no terminator) |
//! | bytea | raw bytes |
//! | date | i32 days since 2000-01-01 |
//! | timestamp / timestamptz | i64 µs since 2000-01-01 00:00 (UTC) |
//! | uuid | 16 bytes |
//!
//! Decoding never panics: malformed input is 22P03 "incorrect binary data format" (or
//! 22021 for text that is not UTF-8).

use super::timezone::TimeZone;
use super::{DataType, Numeric, Value};
use crate::error::{SqlError, SqlResult, SqlState};

use super::numeric::NumericKind;

const NUMERIC_POS: u16 = 0x0000;
const NUMERIC_NEG: u16 = 0x4000;
const NUMERIC_NAN: u16 = 0xC000;
const NUMERIC_PINF: u16 = 0xD000;
const NUMERIC_NINF: u16 = 0xF000;

fn bad_format() -> SqlError {
    SqlError::new(
        SqlState::INVALID_BINARY_REPRESENTATION,
        "incorrect binary data format",
    )
}

fn fixed<const N: usize>(bytes: &[u8]) -> SqlResult<[u8; N]> {
    <[u8; N]>::try_from(bytes).map_err(|_| bad_format())
}

/// Decodes a binary-format value of type `ty` (an `Unknown` parameter is read as text).
pub fn decode_binary(ty: &DataType, bytes: &[u8]) -> SqlResult<Value> {
    Ok(match ty {
        DataType::Bool => match fixed::<1>(bytes)?[0] {
            0 => Value::Bool(false),
            _ => Value::Bool(true),
        },
        DataType::Int2 => Value::Int2(i16::from_be_bytes(fixed(bytes)?)),
        DataType::Int4 => Value::Int4(i32::from_be_bytes(fixed(bytes)?)),
        DataType::Int8 => Value::Int8(i64::from_be_bytes(fixed(bytes)?)),
        DataType::Oid => Value::Int8(i64::from(u32::from_be_bytes(fixed(bytes)?))),
        DataType::Float4 => Value::Float4(f32::from_be_bytes(fixed(bytes)?)),
        DataType::Float8 => Value::Float8(f64::from_be_bytes(fixed(bytes)?)),
        DataType::Numeric { .. } => Value::Numeric(decode_numeric(bytes)?),
        DataType::Text | DataType::Varchar(_) | DataType::Char(_) | DataType::Unknown => {
            let s = std::str::from_utf8(bytes).map_err(|e| {
                let at = e.valid_up_to();
                let bad: Vec<String> = bytes[at..]
                    .iter()
                    .take(e.error_len().unwrap_or(1).max(1))
                    .map(|b| format!("0x{b:02x}"))
                    .collect();
                SqlError::new(
                    SqlState::CHARACTER_NOT_IN_REPERTOIRE,
                    format!(
                        "invalid byte sequence for encoding \"UTF8\": {}",
                        bad.join(" ")
                    ),
                )
            })?;
            if matches!(ty, DataType::Char(_)) {
                Value::Text(s.trim_end_matches(' ').to_string())
            } else {
                Value::Text(s.to_string())
            }
        }
        DataType::Bytea => Value::Bytea(bytes.to_vec()),
        DataType::Date => Value::Date(i32::from_be_bytes(fixed(bytes)?)),
        DataType::Timestamp => Value::Timestamp(i64::from_be_bytes(fixed(bytes)?)),
        DataType::TimestampTz => Value::TimestampTz(i64::from_be_bytes(fixed(bytes)?)),
        DataType::Uuid => Value::Uuid(fixed(bytes)?),
        DataType::Array(element) => Value::Array(super::array::decode_array(bytes, element)?),
        DataType::Int2Vector => Value::Array(super::array::decode_array(bytes, &DataType::Int2)?),
        DataType::Json | DataType::Jsonb => {
            // jsonb's binary form is a version byte (1) and the text.
            let text = match (ty, bytes.split_first()) {
                (DataType::Jsonb, Some((1, rest))) => rest,
                (DataType::Jsonb, _) => {
                    return Err(SqlError::new(
                        SqlState::INVALID_BINARY_REPRESENTATION,
                        "unsupported jsonb version number",
                    ))
                }
                _ => bytes,
            };
            let text = std::str::from_utf8(text).map_err(|_| bad_format())?;
            // Text-like types: no time zone is involved.
            super::text::parse_text(ty, text, &TimeZone::utc())?
        }
        DataType::Interval => {
            let raw: [u8; 16] = fixed(bytes)?;
            let mut micros = [0u8; 8];
            micros.copy_from_slice(&raw[..8]);
            let mut days = [0u8; 4];
            days.copy_from_slice(&raw[8..12]);
            let mut months = [0u8; 4];
            months.copy_from_slice(&raw[12..]);
            Value::Interval(super::interval::Interval {
                micros: i64::from_be_bytes(micros),
                days: i32::from_be_bytes(days),
                months: i32::from_be_bytes(months),
            })
        }
    })
}

/// `numeric_recv`.
fn decode_numeric(bytes: &[u8]) -> SqlResult<Numeric> {
    let header = bytes.get(..8).ok_or_else(bad_format)?;
    let ndigits = i16::from_be_bytes([header[0], header[1]]);
    let weight = i16::from_be_bytes([header[2], header[3]]);
    let sign = u16::from_be_bytes([header[4], header[5]]);
    let dscale = u16::from_be_bytes([header[6], header[7]]);
    let ndigits = usize::try_from(ndigits).map_err(|_| bad_format())?;
    let body = &bytes[8..];
    if body.len() != ndigits * 2 {
        return Err(bad_format());
    }
    let invalid = |what: &str| {
        SqlError::new(
            SqlState::INVALID_BINARY_REPRESENTATION,
            format!("invalid {what} in external \"numeric\" value"),
        )
    };
    match sign {
        NUMERIC_NAN => return Ok(Numeric::nan()),
        NUMERIC_PINF => return Ok(Numeric::infinity(false)),
        NUMERIC_NINF => return Ok(Numeric::infinity(true)),
        NUMERIC_POS | NUMERIC_NEG => {}
        _ => return Err(invalid("sign")),
    }
    if dscale > super::numeric::MAX_DSCALE {
        return Err(invalid("scale"));
    }
    let mut digits = Vec::with_capacity(ndigits);
    for pair in body.chunks_exact(2) {
        let d = i16::from_be_bytes([pair[0], pair[1]]);
        let d = u16::try_from(d)
            .ok()
            .filter(|d| *d < 10_000)
            .ok_or_else(|| invalid("digit"))?;
        digits.push(d);
    }
    Numeric::from_parts(sign == NUMERIC_NEG, i32::from(weight), dscale, digits)
}

/// Appends the binary format of `value` (nothing for NULL: the caller writes length −1).
pub fn encode_binary(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => {}
        Value::Bool(b) => out.push(u8::from(*b)),
        Value::Int2(v) => out.extend_from_slice(&v.to_be_bytes()),
        Value::Int4(v) => out.extend_from_slice(&v.to_be_bytes()),
        Value::Int8(v) => out.extend_from_slice(&v.to_be_bytes()),
        Value::Float4(v) => out.extend_from_slice(&v.to_be_bytes()),
        Value::Float8(v) => out.extend_from_slice(&v.to_be_bytes()),
        Value::Numeric(n) => encode_numeric(n, out),
        Value::Text(s) => out.extend_from_slice(s.as_bytes()),
        Value::Bytea(b) => out.extend_from_slice(b),
        Value::Date(d) => out.extend_from_slice(&d.to_be_bytes()),
        Value::Timestamp(t) | Value::TimestampTz(t) => out.extend_from_slice(&t.to_be_bytes()),
        Value::Uuid(u) => out.extend_from_slice(u),
        Value::Interval(i) => {
            out.extend_from_slice(&i.micros.to_be_bytes());
            out.extend_from_slice(&i.days.to_be_bytes());
            out.extend_from_slice(&i.months.to_be_bytes());
        }
        Value::Json(text) => out.extend_from_slice(text.as_bytes()),
        Value::Jsonb(json) => {
            out.push(1);
            out.extend_from_slice(json.to_text().as_bytes());
        }
        Value::Array(values) => {
            let element = match value.data_type() {
                DataType::Array(element) => *element,
                _ => DataType::Unknown,
            };
            super::array::encode_array(values, &element, out)
        }
    }
}

/// [`encode_binary`] for a value of column type `ty`: `char(n)` values are blank-padded to
/// `n` characters, as `bpcharsend` sends them.
pub fn encode_binary_typed(value: &Value, ty: &DataType, out: &mut Vec<u8>) {
    match (value, ty) {
        (Value::Text(_), DataType::Char(Some(_))) => out.extend_from_slice(
            super::text::format_text_typed(value, ty, &TimeZone::utc()).as_bytes(),
        ),
        (Value::Array(values), DataType::Array(element)) => {
            super::array::encode_array(values, element, out)
        }
        // An oid is 4 bytes on the wire.
        (Value::Int8(v), DataType::Oid) => {
            out.extend_from_slice(&u32::try_from(*v).unwrap_or(0).to_be_bytes())
        }
        (Value::Array(values), DataType::Int2Vector) => {
            super::array::encode_array(values, &DataType::Int2, out)
        }
        _ => encode_binary(value, out),
    }
}

/// `numeric_send`.
fn encode_numeric(n: &Numeric, out: &mut Vec<u8>) {
    let (sign, weight, digits): (u16, i32, &[u16]) = match n.kind() {
        NumericKind::NaN => (NUMERIC_NAN, 0, &[]),
        NumericKind::PosInf => (NUMERIC_PINF, 0, &[]),
        NumericKind::NegInf => (NUMERIC_NINF, 0, &[]),
        NumericKind::Finite => (
            if n.is_negative() {
                NUMERIC_NEG
            } else {
                NUMERIC_POS
            },
            n.weight(),
            n.digits(),
        ),
    };
    // Values are kept within PostgreSQL's limits (weight fits i16, at most 2^16 digits).
    out.extend_from_slice(&(digits.len() as i16).to_be_bytes());
    out.extend_from_slice(&(weight as i16).to_be_bytes());
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&n.dscale().to_be_bytes());
    for d in digits {
        out.extend_from_slice(&d.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::SmallRng, Rng, SeedableRng};

    fn random_value(rng: &mut SmallRng, ty: &DataType) -> Value {
        match ty {
            DataType::Bool => Value::Bool(rng.gen()),
            DataType::Int2 => Value::Int2(rng.gen()),
            DataType::Int4 => Value::Int4(rng.gen()),
            DataType::Int8 => Value::Int8(rng.gen()),
            DataType::Float4 => Value::Float4(f32::from_bits(rng.gen())),
            DataType::Float8 => Value::Float8(f64::from_bits(rng.gen())),
            DataType::Numeric { .. } => {
                let digits: String = (0..rng.gen_range(1..40))
                    .map(|_| char::from(b'0' + rng.gen_range(0..10)))
                    .collect();
                let text = format!(
                    "{}{}e{}",
                    if rng.gen() { "-" } else { "" },
                    digits,
                    rng.gen_range(-30..30)
                );
                Value::Numeric(Numeric::parse(&text).unwrap())
            }
            DataType::Text => Value::Text(
                (0..rng.gen_range(0..10))
                    .map(|_| rng.gen::<char>())
                    .collect(),
            ),
            DataType::Bytea => Value::Bytea((0..rng.gen_range(0..10)).map(|_| rng.gen()).collect()),
            DataType::Date => Value::Date(rng.gen()),
            DataType::Timestamp => Value::Timestamp(rng.gen()),
            DataType::TimestampTz => Value::TimestampTz(rng.gen()),
            DataType::Uuid => Value::Uuid(rng.gen()),
            DataType::Interval => Value::Interval(super::super::interval::Interval {
                months: rng.gen_range(-30..30),
                days: rng.gen_range(-40..40),
                micros: rng.gen_range(-100_000_000_000..100_000_000_000),
            }),
            _ => Value::Null,
        }
    }

    fn same(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Float4(x), Value::Float4(y)) => x.to_bits() == y.to_bits(),
            (Value::Float8(x), Value::Float8(y)) => x.to_bits() == y.to_bits(),
            (Value::Numeric(x), Value::Numeric(y)) => x == y && x.dscale() == y.dscale(),
            _ => a == b,
        }
    }

    const TYPES: [DataType; 14] = [
        DataType::Bool,
        DataType::Int2,
        DataType::Int4,
        DataType::Int8,
        DataType::Float4,
        DataType::Float8,
        DataType::Numeric {
            precision: None,
            scale: None,
        },
        DataType::Text,
        DataType::Bytea,
        DataType::Date,
        DataType::Timestamp,
        DataType::TimestampTz,
        DataType::Uuid,
        DataType::Interval,
    ];

    #[test]
    fn every_type_round_trips() {
        let mut rng = SmallRng::seed_from_u64(4);
        for ty in &TYPES {
            for _ in 0..500 {
                let v = random_value(&mut rng, ty);
                let mut buf = Vec::new();
                encode_binary(&v, &mut buf);
                let back = decode_binary(ty, &buf).unwrap();
                assert!(same(&v, &back), "{ty}: {v:?} -> {back:?}");
            }
        }
    }

    /// Bytes from PostgreSQL 15's `numeric_send`.
    #[test]
    fn numeric_matches_postgres_bytes() {
        let enc = |s: &str| {
            let mut buf = Vec::new();
            encode_numeric(&Numeric::parse(s).unwrap(), &mut buf);
            buf
        };
        // 12345.678: ndigits 3, weight 1, +, dscale 3, digits 1 2345 6780
        assert_eq!(
            enc("12345.678"),
            [0, 3, 0, 1, 0, 0, 0, 3, 0, 1, 0x09, 0x29, 0x1a, 0x7c]
        );
        // -0.0015: ndigits 1, weight -1, -, dscale 4, digit 15
        assert_eq!(enc("-0.0015"), [0, 1, 0xff, 0xff, 0x40, 0, 0, 4, 0, 15]);
        assert_eq!(enc("0.00"), [0, 0, 0, 0, 0, 0, 0, 2]);
        assert_eq!(enc("NaN"), [0, 0, 0, 0, 0xc0, 0, 0, 0]);
        assert_eq!(enc("-Infinity"), [0, 0, 0, 0, 0xf0, 0, 0, 0]);
        // numeric_recv accepts unnormalised digits (leading/trailing zeros).
        let v = decode_numeric(&[0, 3, 0, 1, 0, 0, 0, 1, 0, 0, 0, 5, 0x13, 0x88]).unwrap();
        assert_eq!(v.to_string(), "5.5");
    }

    #[test]
    fn char_values_are_sent_padded() {
        let mut buf = Vec::new();
        encode_binary_typed(
            &Value::Text("ab".into()),
            &DataType::Char(Some(4)),
            &mut buf,
        );
        assert_eq!(buf, b"ab  ");
        assert_eq!(
            decode_binary(&DataType::Char(Some(4)), b"ab  ").unwrap(),
            Value::Text("ab".into())
        );
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        let mut rng = SmallRng::seed_from_u64(5);
        for ty in &TYPES {
            for _ in 0..2000 {
                let len = rng.gen_range(0..24);
                let bytes: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
                if let Err(e) = decode_binary(ty, &bytes) {
                    assert!(
                        [
                            SqlState::INVALID_BINARY_REPRESENTATION,
                            SqlState::CHARACTER_NOT_IN_REPERTOIRE,
                            SqlState::NUMERIC_VALUE_OUT_OF_RANGE
                        ]
                        .contains(&e.state),
                        "{e}"
                    );
                }
            }
        }
        assert_eq!(
            decode_binary(&DataType::Int4, &[0, 1]).unwrap_err().message,
            "incorrect binary data format"
        );
        let e = decode_binary(&DataType::Text, b"a\xff").unwrap_err();
        assert_eq!(
            (e.state, e.message.as_str()),
            (
                SqlState::CHARACTER_NOT_IN_REPERTOIRE,
                "invalid byte sequence for encoding \"UTF8\": 0xff"
            )
        );
        let e = decode_binary(
            &DataType::Numeric {
                precision: None,
                scale: None,
            },
            &[0, 1, 0, 0, 0, 0, 0, 0, 0x27, 0x10],
        )
        .unwrap_err();
        assert_eq!(e.message, "invalid digit in external \"numeric\" value");
    }
}
