//! Row encoding in storage: the values of a row's columns, self-describing and compact.
//!
//! ```text
//!   row   = version:u8 (= 1)  count:varint  value*
//!   value = tag:u8 payload
//! ```
//!
//! | tag | value | payload |
//! |---|---|---|
//! | 0 | NULL | – |
//! | 1 / 2 | false / true | – |
//! | 3 / 4 / 5 | int2 / int4 / int8 | zigzag varint |
//! | 6 / 7 | float4 / float8 | IEEE bits, little-endian |
//! | 8 | numeric | kind:u8 (0 +, 1 −, 2 NaN, 3 +Inf, 4 −Inf); finite: weight zigzag varint, dscale varint, ndigits varint, base-10000 digits u16 LE |
//! | 9 / 10 | text / bytea | length varint, bytes |
//! | 11 / 12 / 13 | date / timestamp / timestamptz | zigzag varint |
//! | 14 | uuid | 16 bytes |
//!
//! Varints are LEB128. Values carry their own type, so decoding needs no schema; the
//! catalog's column types say how to read them (`char(n)`'s padding, for example). The
//! leading version byte leaves room to change the format: a decoder must reject versions
//! it does not know. Decoding never panics and never allocates more than the input's
//! size: malformed rows are XX001 errors.

use super::numeric::NumericKind;
use super::{Numeric, Value};
use crate::error::{SqlError, SqlResult, SqlState};

/// The current format version (the row's first byte).
pub const ROW_FORMAT_VERSION: u8 = 1;

fn corrupt(what: &str) -> SqlError {
    SqlError::new(SqlState::DATA_CORRUPTED, format!("corrupt row: {what}"))
}

fn put_varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_zigzag(v: i64, out: &mut Vec<u8>) {
    put_varint(((v << 1) ^ (v >> 63)) as u64, out);
}

/// Encodes a row's values.
pub fn encode_row(values: &[Value]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + values.len() * 5);
    out.push(ROW_FORMAT_VERSION);
    put_varint(values.len() as u64, &mut out);
    for v in values {
        encode_value(v, &mut out);
    }
    out
}

fn encode_value(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Null => out.push(0),
        Value::Bool(false) => out.push(1),
        Value::Bool(true) => out.push(2),
        Value::Int2(i) => {
            out.push(3);
            put_zigzag(i64::from(*i), out);
        }
        Value::Int4(i) => {
            out.push(4);
            put_zigzag(i64::from(*i), out);
        }
        Value::Int8(i) => {
            out.push(5);
            put_zigzag(*i, out);
        }
        Value::Float4(f) => {
            out.push(6);
            out.extend_from_slice(&f.to_bits().to_le_bytes());
        }
        Value::Float8(f) => {
            out.push(7);
            out.extend_from_slice(&f.to_bits().to_le_bytes());
        }
        Value::Numeric(n) => {
            out.push(8);
            match n.kind() {
                NumericKind::NaN => out.push(2),
                NumericKind::PosInf => out.push(3),
                NumericKind::NegInf => out.push(4),
                NumericKind::Finite => {
                    out.push(u8::from(n.is_negative()));
                    put_zigzag(i64::from(n.weight()), out);
                    put_varint(u64::from(n.dscale()), out);
                    put_varint(n.digits().len() as u64, out);
                    for d in n.digits() {
                        out.extend_from_slice(&d.to_le_bytes());
                    }
                }
            }
        }
        Value::Text(s) => {
            out.push(9);
            put_varint(s.len() as u64, out);
            out.extend_from_slice(s.as_bytes());
        }
        Value::Bytea(b) => {
            out.push(10);
            put_varint(b.len() as u64, out);
            out.extend_from_slice(b);
        }
        Value::Date(d) => {
            out.push(11);
            put_zigzag(i64::from(*d), out);
        }
        Value::Timestamp(t) => {
            out.push(12);
            put_zigzag(*t, out);
        }
        Value::TimestampTz(t) => {
            out.push(13);
            put_zigzag(*t, out);
        }
        Value::Uuid(u) => {
            out.push(14);
            out.extend_from_slice(u);
        }
        Value::Json(text) => {
            out.push(17);
            put_varint(text.len() as u64, out);
            out.extend_from_slice(text.as_bytes());
        }
        Value::Jsonb(json) => {
            let text = json.to_text();
            out.push(18);
            put_varint(text.len() as u64, out);
            out.extend_from_slice(text.as_bytes());
        }
        Value::Array(values) => {
            out.push(16);
            put_varint(values.len() as u64, out);
            for value in values {
                encode_value(value, out);
            }
        }
        Value::Interval(i) => {
            out.push(15);
            put_zigzag(i64::from(i.months), out);
            put_zigzag(i64::from(i.days), out);
            put_zigzag(i.micros, out);
        }
    }
}

/// A cursor over the encoded row.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> SqlResult<&'a [u8]> {
        if self.bytes.len() < n {
            return Err(corrupt("truncated"));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }
    fn byte(&mut self) -> SqlResult<u8> {
        Ok(self.take(1)?[0])
    }
    fn array<const N: usize>(&mut self) -> SqlResult<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn varint(&mut self) -> SqlResult<u64> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7F) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(corrupt("varint too long"))
    }
    fn zigzag(&mut self) -> SqlResult<i64> {
        let u = self.varint()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }
    /// A length no larger than what is left of the input.
    fn length(&mut self) -> SqlResult<usize> {
        let n = self.varint()?;
        usize::try_from(n)
            .ok()
            .filter(|n| *n <= self.bytes.len())
            .ok_or_else(|| corrupt("bad length"))
    }
}

/// Decodes a row written by [`encode_row`].
pub fn decode_row(bytes: &[u8]) -> SqlResult<Vec<Value>> {
    let mut r = Reader { bytes };
    let version = r.byte()?;
    if version != ROW_FORMAT_VERSION {
        return Err(corrupt(&format!("unknown format version {version}")));
    }
    let count = r.varint()?;
    // Every value takes at least one byte.
    let count = usize::try_from(count)
        .ok()
        .filter(|c| *c <= r.bytes.len())
        .ok_or_else(|| corrupt("bad column count"))?;
    let mut values = Vec::with_capacity(count);
    for _ in 0..count {
        values.push(decode_value(&mut r)?);
    }
    if !r.bytes.is_empty() {
        return Err(corrupt("trailing bytes"));
    }
    Ok(values)
}

fn narrow<T: TryFrom<i64>>(v: i64) -> SqlResult<T> {
    T::try_from(v).map_err(|_| corrupt("integer out of range"))
}

fn decode_value(r: &mut Reader<'_>) -> SqlResult<Value> {
    Ok(match r.byte()? {
        0 => Value::Null,
        1 => Value::Bool(false),
        2 => Value::Bool(true),
        3 => Value::Int2(narrow(r.zigzag()?)?),
        4 => Value::Int4(narrow(r.zigzag()?)?),
        5 => Value::Int8(r.zigzag()?),
        6 => Value::Float4(f32::from_bits(u32::from_le_bytes(r.array()?))),
        7 => Value::Float8(f64::from_bits(u64::from_le_bytes(r.array()?))),
        8 => Value::Numeric(match r.byte()? {
            2 => Numeric::nan(),
            3 => Numeric::infinity(false),
            4 => Numeric::infinity(true),
            sign @ (0 | 1) => {
                let weight: i32 = narrow(r.zigzag()?)?;
                let dscale = u16::try_from(r.varint()?).map_err(|_| corrupt("numeric scale"))?;
                let ndigits = r.length()?;
                let raw = r.take(
                    ndigits
                        .checked_mul(2)
                        .ok_or_else(|| corrupt("numeric length"))?,
                )?;
                let digits = raw
                    .chunks_exact(2)
                    .map(|p| u16::from_le_bytes([p[0], p[1]]))
                    .collect();
                Numeric::from_parts(sign == 1, weight, dscale, digits)
                    .map_err(|_| corrupt("numeric"))?
            }
            _ => return Err(corrupt("bad numeric kind")),
        }),
        9 => {
            let n = r.length()?;
            let s = std::str::from_utf8(r.take(n)?).map_err(|_| corrupt("text is not UTF-8"))?;
            Value::Text(s.to_string())
        }
        10 => {
            let n = r.length()?;
            Value::Bytea(r.take(n)?.to_vec())
        }
        11 => Value::Date(narrow(r.zigzag()?)?),
        12 => Value::Timestamp(r.zigzag()?),
        13 => Value::TimestampTz(r.zigzag()?),
        14 => Value::Uuid(r.array()?),
        16 => {
            let n = r.length()?;
            let mut values = Vec::with_capacity(n.min(1 << 16));
            for _ in 0..n {
                values.push(decode_value(r)?);
            }
            Value::Array(values)
        }
        tag @ (17 | 18) => {
            let n = r.length()?;
            let text = std::str::from_utf8(r.take(n)?).map_err(|_| corrupt("json is not UTF-8"))?;
            if tag == 17 {
                Value::Json(text.to_string())
            } else {
                Value::Jsonb(
                    super::json::parse(text, "jsonb")
                        .map_err(|_| corrupt("stored jsonb does not parse"))?,
                )
            }
        }
        15 => Value::Interval(super::interval::Interval {
            months: narrow(r.zigzag()?)?,
            days: narrow(r.zigzag()?)?,
            micros: r.zigzag()?,
        }),
        tag => return Err(corrupt(&format!("unknown value tag {tag}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::SmallRng, Rng, SeedableRng};

    fn random_value(rng: &mut SmallRng) -> Value {
        match rng.gen_range(0..16) {
            0 => Value::Null,
            1 => Value::Bool(rng.gen()),
            2 => Value::Int2(rng.gen()),
            3 => Value::Int4(rng.gen::<i32>() >> rng.gen_range(0..31)),
            4 => Value::Int8(rng.gen::<i64>() >> rng.gen_range(0..63)),
            5 => Value::Float4(f32::from_bits(rng.gen())),
            6 => Value::Float8(f64::from_bits(rng.gen())),
            7 => {
                let digits: String = (0..rng.gen_range(1..30))
                    .map(|_| char::from(b'0' + rng.gen_range(0..10)))
                    .collect();
                let text = format!(
                    "{}{digits}e{}",
                    if rng.gen() { "-" } else { "" },
                    rng.gen_range(-20..20)
                );
                Value::Numeric(Numeric::parse(&text).unwrap())
            }
            8 => Value::Numeric(
                Numeric::parse(["NaN", "Infinity", "-Infinity", "0.00"][rng.gen_range(0..4)])
                    .unwrap(),
            ),
            9 => Value::Text(
                (0..rng.gen_range(0..20))
                    .map(|_| rng.gen::<char>())
                    .collect(),
            ),
            10 => Value::Bytea((0..rng.gen_range(0..20)).map(|_| rng.gen()).collect()),
            11 => Value::Date(rng.gen()),
            12 => Value::Timestamp(rng.gen()),
            13 => Value::TimestampTz(rng.gen()),
            14 => Value::Interval(super::super::interval::Interval {
                months: rng.gen(),
                days: rng.gen(),
                micros: rng.gen(),
            }),
            _ => Value::Uuid(rng.gen()),
        }
    }

    /// Bit-exact equality (floats by bits, numerics with their display scale).
    fn identical(a: &[Value], b: &[Value]) -> bool {
        a.len() == b.len()
            && a.iter().zip(b).all(|(x, y)| match (x, y) {
                (Value::Float4(p), Value::Float4(q)) => p.to_bits() == q.to_bits(),
                (Value::Float8(p), Value::Float8(q)) => p.to_bits() == q.to_bits(),
                (Value::Numeric(p), Value::Numeric(q)) => p == q && p.dscale() == q.dscale(),
                _ => x == y,
            })
    }

    #[test]
    fn random_rows_round_trip() {
        let mut rng = SmallRng::seed_from_u64(11);
        for _ in 0..3000 {
            let row: Vec<Value> = (0..rng.gen_range(0..12))
                .map(|_| random_value(&mut rng))
                .collect();
            let bytes = encode_row(&row);
            assert_eq!(bytes[0], ROW_FORMAT_VERSION);
            assert!(identical(&decode_row(&bytes).unwrap(), &row), "{row:?}");
        }
    }

    #[test]
    fn small_values_are_compact() {
        let row = [
            Value::Int4(1),
            Value::Null,
            Value::Bool(true),
            Value::Text("ab".into()),
        ];
        assert_eq!(encode_row(&row), [1, 4, 4, 2, 0, 2, 9, 2, b'a', b'b']);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut rng = SmallRng::seed_from_u64(12);
        let good = encode_row(&[
            Value::Text("hello".into()),
            Value::Int8(-5),
            Value::Numeric(Numeric::parse("1.5").unwrap()),
        ]);
        for _ in 0..20_000 {
            let mut bytes = good.clone();
            match rng.gen_range(0..3) {
                0 => bytes.truncate(rng.gen_range(0..bytes.len())),
                1 => {
                    let i = rng.gen_range(0..bytes.len());
                    bytes[i] = rng.gen();
                }
                _ => bytes = (0..rng.gen_range(0..16)).map(|_| rng.gen()).collect(),
            }
            if let Err(e) = decode_row(&bytes) {
                assert_eq!(e.state, SqlState::DATA_CORRUPTED);
            }
        }
        assert_eq!(decode_row(&[]).unwrap_err().state, SqlState::DATA_CORRUPTED);
        assert!(decode_row(&[2, 0]).unwrap_err().message.contains("version"));
        assert!(decode_row(&[1, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F]).is_err());
    }
}
