//! Order-preserving key encoding for primary-key (and later index) columns.
//!
//! Keys are compared as bytes by storage, so the encoding of values must sort as the values
//! do ([`super::ops::total_cmp`]), and a tuple of columns must sort column by column. Both
//! follow from two properties of each value's encoding: *order preservation* (byte order =
//! value order for values of one type) and *prefix freedom* (no encoding is a prefix of
//! another of the same type), so concatenations compare lexicographically by column.
//!
//! Every value starts with a presence byte: `0x01` for a value, `0x02` for NULL (NULLs sort
//! last, as PostgreSQL orders them ascending). Then, by type:
//!
//! | type | encoding |
//! |---|---|
//! | bool | `0x00` / `0x01` |
//! | int2, int4, int8, date, timestamp(tz) | [ordered varint](encode_ordered_int): 1–9 bytes, width-independent (`5::int2` and `5::int8` encode alike) |
//! | float4 / float8 | IEEE bits, sign bit flipped for positives and all bits for negatives; `-0` as `0`, NaN canonical (after `+Infinity`) |
//! | numeric | class byte (`-Inf` < negative < zero < positive < `+Inf` < NaN), then for non-zero finite values the base-10000 weight as an ordered varint and each digit as big-endian `digit + 1` in two bytes, then `0x0000`; negative values invert those bytes. The display scale is not encoded: `1.0` and `1.00` are the same key |
//! | text, varchar, char, bytea | bytes with `0x00` escaped as `0x00 0xFF`, then `0x00 0x01` |
//! | uuid | 16 bytes |
//!
//! Decoding needs the column types and never panics: malformed keys are XX001 errors.

use super::{DataType, Numeric, Value};
use crate::error::{SqlError, SqlResult, SqlState};

use super::numeric::NumericKind;

const PRESENT: u8 = 0x01;
const NULL: u8 = 0x02;

const NUM_NEG_INF: u8 = 0x01;
const NUM_NEG: u8 = 0x02;
const NUM_ZERO: u8 = 0x03;
const NUM_POS: u8 = 0x04;
const NUM_POS_INF: u8 = 0x05;
const NUM_NAN: u8 = 0x06;

/// The middle tag of the ordered varint: non-negative values of `n` bytes use `0x88 + n`,
/// negative values `0x87 − n`.
const INT_ZERO_TAG: u8 = 0x88;

fn corrupt(what: &str) -> SqlError {
    SqlError::new(SqlState::DATA_CORRUPTED, format!("corrupt key: {what}"))
}

/// Appends an order-preserving, self-delimiting encoding of `v`: a tag byte giving sign and
/// length, then the low `n` bytes of `v` big-endian, where `n` (0..=8) is the fewest bytes
/// that hold `v` (or `!v` for negatives). Small magnitudes take one or two bytes.
pub fn encode_ordered_int(v: i64, out: &mut Vec<u8>) {
    let magnitude = if v < 0 { !v } else { v } as u64;
    let n = (8 - magnitude.leading_zeros() as usize / 8).min(8);
    if v < 0 {
        out.push(INT_ZERO_TAG - 1 - n as u8);
    } else {
        out.push(INT_ZERO_TAG + n as u8);
    }
    out.extend_from_slice(&v.to_be_bytes()[8 - n..]);
}

fn take<'a>(input: &mut &'a [u8], n: usize, what: &str) -> SqlResult<&'a [u8]> {
    if input.len() < n {
        return Err(corrupt(&format!("truncated {what}")));
    }
    let (head, rest) = input.split_at(n);
    *input = rest;
    Ok(head)
}

/// Reads a value written by [`encode_ordered_int`].
pub fn decode_ordered_int(input: &mut &[u8]) -> SqlResult<i64> {
    let tag = take(input, 1, "integer")?[0];
    let (negative, n) = if tag >= INT_ZERO_TAG {
        (false, usize::from(tag - INT_ZERO_TAG))
    } else {
        (true, usize::from(INT_ZERO_TAG - 1 - tag))
    };
    if n > 8 {
        return Err(corrupt("bad integer tag"));
    }
    let bytes = take(input, n, "integer")?;
    let mut buf = if negative { [0xFF; 8] } else { [0; 8] };
    buf[8 - n..].copy_from_slice(bytes);
    let v = i64::from_be_bytes(buf);
    let magnitude = if v < 0 { !v } else { v } as u64;
    if (v < 0) != negative || 8 - magnitude.leading_zeros() as usize / 8 != n {
        return Err(corrupt("non-canonical integer"));
    }
    Ok(v)
}

fn encode_escaped(bytes: &[u8], out: &mut Vec<u8>) {
    for b in bytes {
        out.push(*b);
        if *b == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0x00, 0x01]);
}

fn decode_escaped(input: &mut &[u8]) -> SqlResult<Vec<u8>> {
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        match input.get(i) {
            None => return Err(corrupt("unterminated string")),
            Some(0) => match input.get(i + 1) {
                Some(0xFF) => {
                    out.push(0);
                    i += 2;
                }
                Some(0x01) => {
                    *input = &input[i + 2..];
                    return Ok(out);
                }
                _ => return Err(corrupt("bad string escape")),
            },
            Some(b) => {
                out.push(*b);
                i += 1;
            }
        }
    }
}

fn float_key(bits: u64, sign: u64) -> u64 {
    if bits & sign != 0 {
        !bits
    } else {
        bits | sign
    }
}

fn float_unkey(key: u64, sign: u64) -> u64 {
    if key & sign != 0 {
        key & !sign
    } else {
        !key
    }
}

fn encode_numeric(n: &Numeric, out: &mut Vec<u8>) {
    let class = match n.kind() {
        NumericKind::NaN => NUM_NAN,
        NumericKind::PosInf => NUM_POS_INF,
        NumericKind::NegInf => NUM_NEG_INF,
        NumericKind::Finite if n.is_zero() => NUM_ZERO,
        NumericKind::Finite if n.is_negative() => NUM_NEG,
        NumericKind::Finite => NUM_POS,
    };
    out.push(class);
    if class != NUM_POS && class != NUM_NEG {
        return;
    }
    let start = out.len();
    encode_ordered_int(i64::from(n.weight()), out);
    for d in n.digits() {
        out.extend_from_slice(&(d + 1).to_be_bytes());
    }
    out.extend_from_slice(&[0, 0]);
    if class == NUM_NEG {
        for b in &mut out[start..] {
            *b = !*b;
        }
    }
}

fn decode_numeric(input: &mut &[u8]) -> SqlResult<Numeric> {
    let class = take(input, 1, "numeric")?[0];
    let negative = match class {
        NUM_NAN => return Ok(Numeric::nan()),
        NUM_POS_INF => return Ok(Numeric::infinity(false)),
        NUM_NEG_INF => return Ok(Numeric::infinity(true)),
        NUM_ZERO => return Ok(Numeric::zero()),
        NUM_POS => false,
        NUM_NEG => true,
        _ => return Err(corrupt("bad numeric class")),
    };
    let flip = |b: u8| if negative { !b } else { b };
    // The weight's varint: undo the inversion on a copy of its bytes.
    let tag = flip(*input.first().ok_or_else(|| corrupt("truncated numeric"))?);
    let len = 1 + if tag >= INT_ZERO_TAG {
        usize::from(tag - INT_ZERO_TAG)
    } else {
        usize::from(INT_ZERO_TAG - 1 - tag)
    };
    let raw: Vec<u8> = take(input, len.min(9), "numeric weight")?
        .iter()
        .map(|b| flip(*b))
        .collect();
    let weight = decode_ordered_int(&mut raw.as_slice())?;
    let weight = i32::try_from(weight).map_err(|_| corrupt("numeric weight"))?;
    let mut digits = Vec::new();
    loop {
        let pair = take(input, 2, "numeric digits")?;
        let d = u16::from_be_bytes([flip(pair[0]), flip(pair[1])]);
        if d == 0 {
            break;
        }
        if d > 10_000 {
            return Err(corrupt("bad numeric digit"));
        }
        digits.push(d - 1);
    }
    if digits.first() == Some(&0) || digits.last() == Some(&0) || digits.is_empty() {
        return Err(corrupt("unnormalised numeric"));
    }
    // The display scale is not in the key: use the smallest one that shows every digit.
    let low_weight = i64::from(weight) - digits.len() as i64 + 1;
    let mut dscale = (-low_weight * 4).max(0);
    if dscale > 0 {
        if let Some(last) = digits.last() {
            let mut last = *last;
            while last % 10 == 0 {
                last /= 10;
                dscale -= 1;
            }
        }
    }
    let dscale = u16::try_from(dscale).map_err(|_| corrupt("numeric scale"))?;
    Numeric::from_parts(negative, weight, dscale, digits).map_err(|_| corrupt("numeric"))
}

/// Appends the key encoding of `value` (see the module docs).
pub fn encode_key_value(value: &Value, out: &mut Vec<u8>) {
    if value.is_null() {
        out.push(NULL);
        return;
    }
    out.push(PRESENT);
    match value {
        Value::Null => {}
        Value::Bool(b) => out.push(u8::from(*b)),
        Value::Int2(i) => encode_ordered_int(i64::from(*i), out),
        Value::Int4(i) => encode_ordered_int(i64::from(*i), out),
        Value::Int8(i) => encode_ordered_int(*i, out),
        Value::Date(d) => encode_ordered_int(i64::from(*d), out),
        Value::Timestamp(t) | Value::TimestampTz(t) => encode_ordered_int(*t, out),
        Value::Float4(f) => {
            let f = if f.is_nan() {
                f32::NAN
            } else if *f == 0.0 {
                0.0
            } else {
                *f
            };
            let key = float_key(u64::from(f.to_bits()), 1 << 31) as u32;
            out.extend_from_slice(&key.to_be_bytes());
        }
        Value::Float8(f) => {
            let f = if f.is_nan() {
                f64::NAN
            } else if *f == 0.0 {
                0.0
            } else {
                *f
            };
            out.extend_from_slice(&float_key(f.to_bits(), 1 << 63).to_be_bytes());
        }
        Value::Numeric(n) => encode_numeric(n, out),
        Value::Text(s) => encode_escaped(s.as_bytes(), out),
        Value::Bytea(b) => encode_escaped(b, out),
        Value::Uuid(u) => out.extend_from_slice(u),
        Value::Json(text) => encode_escaped(text.as_bytes(), out),
        Value::Jsonb(json) => encode_escaped(json.to_key_text().as_bytes(), out),
        Value::Array(values) => {
            // Each element after a 1, then a 0: a prefix sorts first, as PostgreSQL orders.
            for value in values {
                out.push(1);
                encode_key_value(value, out);
            }
            out.push(0);
        }
        Value::Interval(i) => {
            // By span first (PostgreSQL's order), then the fields, so the key decodes.
            let span = (i.span() as u128) ^ (1 << 127);
            out.extend_from_slice(&span.to_be_bytes());
            encode_ordered_int(i64::from(i.months), out);
            encode_ordered_int(i64::from(i.days), out);
            encode_ordered_int(i.micros, out);
        }
    }
}

/// The key encoding of a tuple of values.
pub fn encode_key(values: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for v in values {
        encode_key_value(v, &mut out);
    }
    out
}

/// Reads one value of type `ty` from the front of `input`, advancing it.
pub fn decode_key_value(ty: &DataType, input: &mut &[u8]) -> SqlResult<Value> {
    match take(input, 1, "value")?[0] {
        NULL => return Ok(Value::Null),
        PRESENT => {}
        _ => return Err(corrupt("bad presence byte")),
    }
    let narrow = |v: i64, what: &str| corrupt(&format!("{what} {v} out of range"));
    Ok(match ty {
        DataType::Bool => match take(input, 1, "bool")?[0] {
            0 => Value::Bool(false),
            1 => Value::Bool(true),
            _ => return Err(corrupt("bad bool")),
        },
        DataType::Int2 => {
            let v = decode_ordered_int(input)?;
            Value::Int2(i16::try_from(v).map_err(|_| narrow(v, "smallint"))?)
        }
        DataType::Int4 => {
            let v = decode_ordered_int(input)?;
            Value::Int4(i32::try_from(v).map_err(|_| narrow(v, "integer"))?)
        }
        DataType::Int8 | DataType::Oid => Value::Int8(decode_ordered_int(input)?),
        DataType::Date => {
            let v = decode_ordered_int(input)?;
            Value::Date(i32::try_from(v).map_err(|_| narrow(v, "date"))?)
        }
        DataType::Timestamp => Value::Timestamp(decode_ordered_int(input)?),
        DataType::TimestampTz => Value::TimestampTz(decode_ordered_int(input)?),
        DataType::Float4 => {
            let b = take(input, 4, "real")?;
            let key = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
            Value::Float4(f32::from_bits(float_unkey(u64::from(key), 1 << 31) as u32))
        }
        DataType::Float8 => {
            let b = take(input, 8, "double precision")?;
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            Value::Float8(f64::from_bits(float_unkey(u64::from_be_bytes(a), 1 << 63)))
        }
        DataType::Numeric { .. } => Value::Numeric(decode_numeric(input)?),
        DataType::Text | DataType::Varchar(_) | DataType::Char(_) | DataType::Unknown => {
            let bytes = decode_escaped(input)?;
            Value::Text(String::from_utf8(bytes).map_err(|_| corrupt("text is not UTF-8"))?)
        }
        DataType::Bytea => Value::Bytea(decode_escaped(input)?),
        DataType::Uuid => {
            let b = take(input, 16, "uuid")?;
            let mut u = [0u8; 16];
            u.copy_from_slice(b);
            Value::Uuid(u)
        }
        DataType::Json | DataType::Jsonb => {
            let bytes = decode_escaped(input)?;
            let text = String::from_utf8(bytes).map_err(|_| corrupt("json is not UTF-8"))?;
            super::text::parse_text(ty, &text, &super::timezone::TimeZone::utc())
                .map_err(|_| corrupt("stored json does not parse"))?
        }
        DataType::Int2Vector => {
            decode_key_value(&DataType::Array(Box::new(DataType::Int2)), input)?
        }
        DataType::Array(element) => {
            let mut values = Vec::new();
            while take(input, 1, "array")?[0] == 1 {
                values.push(decode_key_value(element, input)?);
            }
            Value::Array(values)
        }
        DataType::Interval => {
            take(input, 16, "interval")?;
            let field = |input: &mut &[u8]| -> SqlResult<i32> {
                let v = decode_ordered_int(input)?;
                i32::try_from(v).map_err(|_| narrow(v, "interval"))
            };
            let months = field(input)?;
            let days = field(input)?;
            Value::Interval(super::interval::Interval {
                months,
                days,
                micros: decode_ordered_int(input)?,
            })
        }
    })
}

/// Decodes a key made of one value per type in `types`, which must use all of `bytes`.
pub fn decode_key_values(types: &[DataType], bytes: &[u8]) -> SqlResult<Vec<Value>> {
    let mut input = bytes;
    let mut values = Vec::with_capacity(types.len());
    for ty in types {
        values.push(decode_key_value(ty, &mut input)?);
    }
    if !input.is_empty() {
        return Err(corrupt("trailing bytes"));
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::super::ops::total_cmp;
    use super::*;
    use rand::{rngs::SmallRng, Rng, SeedableRng};
    use std::cmp::Ordering;

    fn numeric_type() -> DataType {
        DataType::Numeric {
            precision: None,
            scale: None,
        }
    }

    /// Random values biased toward edge cases: small magnitudes, extremes, shared prefixes.
    fn random_value(rng: &mut SmallRng, ty: &DataType) -> Value {
        let small: i64 = rng.gen_range(-300..300);
        let wide = |rng: &mut SmallRng| -> i64 {
            match rng.gen_range(0..4) {
                0 => small,
                1 => rng.gen::<i64>() >> rng.gen_range(0..63),
                2 => [i64::MIN, i64::MAX, 0, -1, 255, 256, -256, -257][rng.gen_range(0..8)],
                _ => rng.gen(),
            }
        };
        match ty {
            DataType::Bool => Value::Bool(rng.gen()),
            DataType::Int2 => Value::Int2(wide(rng) as i16),
            DataType::Int4 => Value::Int4(wide(rng) as i32),
            DataType::Int8 => Value::Int8(wide(rng)),
            DataType::Date => Value::Date(wide(rng) as i32),
            DataType::Timestamp => Value::Timestamp(wide(rng)),
            DataType::TimestampTz => Value::TimestampTz(wide(rng)),
            DataType::Float4 => Value::Float4(match rng.gen_range(0..4) {
                0 => small as f32 / 8.0,
                1 => [
                    f32::NAN,
                    f32::INFINITY,
                    f32::NEG_INFINITY,
                    -0.0,
                    0.0,
                    f32::MIN_POSITIVE,
                ][rng.gen_range(0..6)],
                _ => f32::from_bits(rng.gen()),
            }),
            DataType::Float8 => Value::Float8(match rng.gen_range(0..4) {
                0 => small as f64 / 8.0,
                1 => [
                    f64::NAN,
                    -f64::NAN,
                    f64::INFINITY,
                    f64::NEG_INFINITY,
                    -0.0,
                    0.0,
                    5e-324,
                ][rng.gen_range(0..7)],
                _ => f64::from_bits(rng.gen()),
            }),
            DataType::Numeric { .. } => {
                if rng.gen_range(0..10) == 0 {
                    return Value::Numeric(
                        Numeric::parse(
                            ["NaN", "Infinity", "-Infinity", "0", "-0.000"][rng.gen_range(0..5)],
                        )
                        .unwrap(),
                    );
                }
                let digits: String = (0..rng.gen_range(1..12))
                    .map(|_| char::from(b'0' + rng.gen_range(0..10)))
                    .collect();
                let zeros = "0".repeat(rng.gen_range(0..3));
                let text = format!(
                    "{}{digits}{zeros}e{}",
                    if rng.gen() { "-" } else { "" },
                    rng.gen_range(-12..12)
                );
                Value::Numeric(Numeric::parse(&text).unwrap())
            }
            DataType::Text => {
                let alphabet = ['\0', 'a', 'b', 'é', '\u{1}', 'z', '\u{ff}'];
                Value::Text(
                    (0..rng.gen_range(0..5))
                        .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
                        .collect(),
                )
            }
            DataType::Bytea => Value::Bytea(
                (0..rng.gen_range(0..5))
                    .map(|_| [0u8, 1, 0xFF, 0x7F][rng.gen_range(0..4)])
                    .collect(),
            ),
            DataType::Uuid => Value::Uuid(if rng.gen() {
                [rng.gen_range(0..2); 16]
            } else {
                rng.gen()
            }),
            DataType::Interval => Value::Interval(super::super::interval::Interval {
                months: rng.gen_range(-30..30),
                days: rng.gen_range(-40..40),
                micros: rng.gen_range(-100_000_000_000..100_000_000_000),
            }),
            _ => Value::Null,
        }
    }

    fn all_types() -> Vec<DataType> {
        vec![
            DataType::Bool,
            DataType::Int2,
            DataType::Int4,
            DataType::Int8,
            DataType::Float4,
            DataType::Float8,
            numeric_type(),
            DataType::Text,
            DataType::Bytea,
            DataType::Date,
            DataType::Timestamp,
            DataType::TimestampTz,
            DataType::Uuid,
            DataType::Interval,
        ]
    }

    #[test]
    fn ordered_ints_are_compact_and_ordered() {
        let enc = |v: i64| {
            let mut out = Vec::new();
            encode_ordered_int(v, &mut out);
            out
        };
        assert_eq!(enc(0), [0x88]);
        assert_eq!(enc(1), [0x89, 1]);
        assert_eq!(enc(-1), [0x87]);
        assert_eq!(enc(256), [0x8A, 1, 0]);
        assert_eq!(enc(i64::MAX).len(), 9);
        let mut vals = vec![
            i64::MIN,
            i64::MIN + 1,
            -65537,
            -65536,
            -257,
            -256,
            -255,
            -1,
            0,
            1,
            255,
            256,
            65535,
            i64::MAX,
        ];
        vals.sort();
        for w in vals.windows(2) {
            assert!(enc(w[0]) < enc(w[1]), "{} {}", w[0], w[1]);
            assert_eq!(decode_ordered_int(&mut enc(w[0]).as_slice()).unwrap(), w[0]);
        }
    }

    #[test]
    fn equal_values_encode_identically() {
        let n = |s: &str| encode_key(&[Value::Numeric(Numeric::parse(s).unwrap())]);
        assert_eq!(n("1.0"), n("1.00"));
        assert_eq!(n("0"), n("-0.000"));
        assert_eq!(
            encode_key(&[Value::Float8(-0.0)]),
            encode_key(&[Value::Float8(0.0)])
        );
        assert_eq!(
            encode_key(&[Value::Float8(-f64::NAN)]),
            encode_key(&[Value::Float8(f64::NAN)])
        );
        assert_eq!(encode_key(&[Value::Int2(5)]), encode_key(&[Value::Int8(5)]));
    }

    /// For random values of each type: byte order of encodings = `total_cmp` order, no
    /// encoding is a proper prefix of another, and decoding gives back an equal value.
    #[test]
    fn byte_order_matches_value_order_for_every_type() {
        let mut rng = SmallRng::seed_from_u64(8);
        for ty in all_types() {
            let mut values: Vec<Value> = (0..300).map(|_| random_value(&mut rng, &ty)).collect();
            values.push(Value::Null);
            let encoded: Vec<Vec<u8>> = values
                .iter()
                .map(|v| encode_key(std::slice::from_ref(v)))
                .collect();
            for (i, a) in values.iter().enumerate() {
                let back = decode_key_values(std::slice::from_ref(&ty), &encoded[i]).unwrap();
                assert_eq!(
                    total_cmp(&back[0], a),
                    Ordering::Equal,
                    "{ty}: {a:?} -> {back:?}"
                );
                for (j, b) in values.iter().enumerate() {
                    let (ea, eb) = (&encoded[i], &encoded[j]);
                    assert_eq!(ea.cmp(eb), total_cmp(a, b), "{ty}: {a:?} vs {b:?}");
                    if ea != eb {
                        assert!(!eb.starts_with(ea), "{ty}: {a:?} prefix of {b:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn tuples_order_column_by_column() {
        let mut rng = SmallRng::seed_from_u64(9);
        let types = [
            DataType::Text,
            numeric_type(),
            DataType::Int4,
            DataType::Bytea,
        ];
        let tuples: Vec<Vec<Value>> = (0..400)
            .map(|_| types.iter().map(|t| random_value(&mut rng, t)).collect())
            .collect();
        let encoded: Vec<Vec<u8>> = tuples.iter().map(|t| encode_key(t)).collect();
        for (i, a) in tuples.iter().enumerate() {
            let back = decode_key_values(&types, &encoded[i]).unwrap();
            assert_eq!(back.len(), types.len());
            for (j, b) in tuples.iter().enumerate() {
                let want = a
                    .iter()
                    .zip(b)
                    .map(|(x, y)| total_cmp(x, y))
                    .find(|o| o.is_ne())
                    .unwrap_or(Ordering::Equal);
                assert_eq!(encoded[i].cmp(&encoded[j]), want, "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn garbage_keys_are_errors_not_panics() {
        let mut rng = SmallRng::seed_from_u64(10);
        let types = all_types();
        for _ in 0..20_000 {
            let len = rng.gen_range(0..20);
            let bytes: Vec<u8> = (0..len)
                .map(|_| [0u8, 1, 2, 0x88, 0xFF, rng.gen()][rng.gen_range(0..6)])
                .collect();
            let ty = &types[rng.gen_range(0..types.len())];
            if let Err(e) = decode_key_values(std::slice::from_ref(ty), &bytes) {
                assert_eq!(e.state, SqlState::DATA_CORRUPTED);
            }
        }
        assert!(
            decode_key_values(&[DataType::Int4], &[0x01, 0x90, 0, 0, 0, 0, 1, 0, 0, 0]).is_err()
        );
        assert!(decode_key_values(&[DataType::Int4], &[0x01, 0x88, 0x00]).is_err());
        assert!(decode_key_values(&[DataType::Int4], &[0x01, 0x8D, 1, 0, 0, 0, 0]).is_err());
    }
}
