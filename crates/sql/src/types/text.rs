//! PostgreSQL's text input and output functions (`int4in`, `float8out`, `byteain`...).
//!
//! [`parse_text`] turns the text a client sent (a quoted literal, a text-format parameter,
//! a `COPY` field) into a [`Value`] of the given type; [`format_text`] prints a value as
//! PostgreSQL's output function does with its default settings (`DateStyle = ISO`,
//! `extra_float_digits = 1`, `bytea_output = hex`). Both take the session's [`TimeZone`],
//! which `timestamptz` is read and printed in. Error messages and SQLSTATEs are
//! PostgreSQL's, byte for byte.
//!
//! Strings of type `char(n)` are kept without their trailing blanks (see [`super::cast`]);
//! [`format_text_typed`] pads them back to `n` as `bpcharout` shows them.

use super::{datetime, timezone::TimeZone, DataType, Numeric, Value};
use crate::error::{SqlError, SqlResult, SqlState};

fn invalid_syntax(type_name: &str, input: &str) -> SqlError {
    SqlError::new(
        SqlState::INVALID_TEXT_REPRESENTATION,
        format!("invalid input syntax for type {type_name}: \"{input}\""),
    )
}

/// Parses `input` as a value of type `ty` with PostgreSQL's input function for that type.
/// `Unknown` yields text. Length limits of `varchar(n)`/`char(n)` and numeric type modifiers
/// are not applied here (that is [`super::cast`]'s job), but `char(n)` input loses its
/// trailing blanks.
pub fn parse_text(ty: &DataType, input: &str, zone: &TimeZone) -> SqlResult<Value> {
    Ok(match ty {
        DataType::Bool => Value::Bool(parse_bool(input)?),
        DataType::Int2 => {
            let v = parse_int(input, "smallint")?;
            Value::Int2(i16::try_from(v).map_err(|_| int_range(input, "smallint"))?)
        }
        DataType::Int4 => {
            let v = parse_int(input, "integer")?;
            Value::Int4(i32::try_from(v).map_err(|_| int_range(input, "integer"))?)
        }
        DataType::Int8 => Value::Int8(parse_int(input, "bigint")?),
        DataType::Oid => {
            let v = parse_int(input, "oid")?;
            match v {
                0..=0xFFFF_FFFF => Value::Int8(v),
                -0x8000_0000..=-1 => Value::Int8(v + 0x1_0000_0000),
                _ => {
                    return Err(SqlError::new(
                        SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
                        format!("value \"{input}\" is out of range for type oid"),
                    ))
                }
            }
        }
        DataType::Float4 => Value::Float4(parse_float4(input)?),
        DataType::Float8 => Value::Float8(parse_float8(input)?),
        DataType::Numeric { .. } => Value::Numeric(Numeric::parse(input)?),
        DataType::Text | DataType::Varchar(_) | DataType::Unknown => Value::Text(input.to_string()),
        DataType::Char(_) => Value::Text(input.trim_end_matches(' ').to_string()),
        DataType::Bytea => Value::Bytea(parse_bytea(input)?),
        DataType::Date => Value::Date(datetime::parse_date(input)?),
        DataType::Timestamp => Value::Timestamp(datetime::parse_timestamp(input, None)?),
        DataType::TimestampTz => Value::TimestampTz(datetime::parse_timestamp(input, Some(zone))?),
        DataType::Uuid => Value::Uuid(parse_uuid(input)?),
        DataType::Interval => Value::Interval(super::interval::parse_interval(input)?),
        DataType::Json => {
            super::json::parse(input, "json")?;
            Value::Json(input.to_string())
        }
        DataType::Jsonb => Value::Jsonb(super::json::parse(input, "json")?.normalized()),
        DataType::Array(element) => Value::Array(super::array::parse_array(input, element, zone)?),
        DataType::Int2Vector => Value::Array(
            input
                .split_ascii_whitespace()
                .map(|n| parse_text(&DataType::Int2, n, zone))
                .collect::<SqlResult<_>>()?,
        ),
    })
}

/// `boolin`: `t`/`true`/`yes`/`on`/`1` and `f`/`false`/`no`/`off`/`0`, any unambiguous
/// prefix of the words, in any case, surrounded by optional whitespace.
pub fn parse_bool(input: &str) -> SqlResult<bool> {
    let s = input
        .trim_matches(|c: char| c.is_ascii_whitespace())
        .to_ascii_lowercase();
    let prefix_of = |word: &str, min: usize| s.len() >= min && word.starts_with(s.as_str());
    let v = match s.as_bytes().first() {
        Some(b't') if prefix_of("true", 1) => Some(true),
        Some(b'y') if prefix_of("yes", 1) => Some(true),
        Some(b'f') if prefix_of("false", 1) => Some(false),
        Some(b'n') if prefix_of("no", 1) => Some(false),
        Some(b'o') if prefix_of("on", 2) => Some(true),
        Some(b'o') if prefix_of("off", 2) => Some(false),
        Some(b'1') if s.len() == 1 => Some(true),
        Some(b'0') if s.len() == 1 => Some(false),
        _ => None,
    };
    v.ok_or_else(|| invalid_syntax("boolean", input))
}

fn int_range(input: &str, type_name: &str) -> SqlError {
    SqlError::new(
        SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
        format!("value \"{input}\" is out of range for type {type_name}"),
    )
}

/// `int8in` and friends: optional whitespace, sign, decimal digits, whitespace. The caller
/// narrows to the type's range (the error names `type_name` either way).
fn parse_int(input: &str, type_name: &str) -> SqlResult<i64> {
    let s = input.trim_matches(|c: char| c.is_ascii_whitespace());
    let (negative, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid_syntax(type_name, input));
    }
    let mut acc: i64 = 0;
    for b in digits.bytes() {
        let d = i64::from(b - b'0');
        // Accumulate negatively so that i64::MIN parses.
        acc = acc
            .checked_mul(10)
            .and_then(|a| a.checked_sub(d))
            .ok_or_else(|| int_range(input, type_name))?;
    }
    if negative {
        Ok(acc)
    } else {
        acc.checked_neg().ok_or_else(|| int_range(input, type_name))
    }
}

/// Checks the syntax `strtod` would accept for a decimal number (sign, digits with an
/// optional point, optional exponent); returns the text to parse and whether any mantissa
/// digit is non-zero. Special words are handled by the caller.
fn float_syntax(s: &str) -> Option<bool> {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let mut digits = 0;
    let mut nonzero = false;
    let mut point = false;
    while i < b.len() {
        match b[i] {
            b'0'..=b'9' => {
                digits += 1;
                nonzero |= b[i] != b'0';
            }
            b'.' if !point => point = true,
            _ => break,
        }
        i += 1;
    }
    if digits == 0 {
        return None;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    (i == b.len()).then_some(nonzero)
}

fn float_special(s: &str) -> Option<f64> {
    match s.to_ascii_lowercase().as_str() {
        "nan" | "+nan" | "-nan" => Some(f64::NAN),
        "infinity" | "+infinity" | "inf" | "+inf" => Some(f64::INFINITY),
        "-infinity" | "-inf" => Some(f64::NEG_INFINITY),
        _ => None,
    }
}

/// `float8in`: decimal or exponent notation, `NaN`, `Infinity`, `inf`, with optional
/// whitespace; values that overflow or underflow to zero are 22003 errors.
pub fn parse_float8(input: &str) -> SqlResult<f64> {
    let s = input.trim_matches(|c: char| c.is_ascii_whitespace());
    if let Some(v) = float_special(s) {
        return Ok(v);
    }
    let nonzero = float_syntax(s).ok_or_else(|| invalid_syntax("double precision", input))?;
    let v: f64 = s
        .parse()
        .map_err(|_| invalid_syntax("double precision", input))?;
    if v.is_infinite() || (v == 0.0 && nonzero) {
        return Err(SqlError::new(
            SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
            format!("\"{input}\" is out of range for type double precision"),
        ));
    }
    Ok(v)
}

/// `float4in`, as [`parse_float8`] for `real`.
pub fn parse_float4(input: &str) -> SqlResult<f32> {
    let s = input.trim_matches(|c: char| c.is_ascii_whitespace());
    if let Some(v) = float_special(s) {
        return Ok(v as f32);
    }
    let nonzero = float_syntax(s).ok_or_else(|| invalid_syntax("real", input))?;
    let v: f32 = s.parse().map_err(|_| invalid_syntax("real", input))?;
    if v.is_infinite() || (v == 0.0 && nonzero) {
        return Err(SqlError::new(
            SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
            format!("\"{input}\" is out of range for type real"),
        ));
    }
    Ok(v)
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// `byteain`: hex format (`\x0102`, whitespace allowed between bytes) or escape format
/// (`\\` for a backslash, `\ooo` octal, other bytes as themselves).
pub fn parse_bytea(input: &str) -> SqlResult<Vec<u8>> {
    let b = input.as_bytes();
    if let Some(hex) = input.strip_prefix("\\x") {
        let h = hex.as_bytes();
        let mut out = Vec::with_capacity(h.len() / 2);
        let mut i = 0;
        while i < h.len() {
            if matches!(h[i], b' ' | b'\n' | b'\t' | b'\r') {
                i += 1;
                continue;
            }
            let bad_digit = |c: u8| {
                let ch = hex
                    .get(i..)
                    .and_then(|t| t.chars().next())
                    .unwrap_or(char::from(c));
                SqlError::new(
                    SqlState::INVALID_PARAMETER_VALUE,
                    format!("invalid hexadecimal digit: \"{ch}\""),
                )
            };
            let hi = hex_value(h[i]).ok_or_else(|| bad_digit(h[i]))?;
            i += 1;
            let Some(&lo_c) = h.get(i) else {
                return Err(SqlError::new(
                    SqlState::INVALID_PARAMETER_VALUE,
                    "invalid hexadecimal data: odd number of digits",
                ));
            };
            let lo = hex_value(lo_c).ok_or_else(|| {
                let ch = hex.get(i..).and_then(|t| t.chars().next()).unwrap_or('?');
                SqlError::new(
                    SqlState::INVALID_PARAMETER_VALUE,
                    format!("invalid hexadecimal digit: \"{ch}\""),
                )
            })?;
            i += 1;
            out.push(hi << 4 | lo);
        }
        return Ok(out);
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
        } else if b.get(i + 1) == Some(&b'\\') {
            out.push(b'\\');
            i += 2;
        } else if let (Some(&d1 @ b'0'..=b'3'), Some(&d2 @ b'0'..=b'7'), Some(&d3 @ b'0'..=b'7')) =
            (b.get(i + 1), b.get(i + 2), b.get(i + 3))
        {
            out.push(((d1 - b'0') << 6) | ((d2 - b'0') << 3) | (d3 - b'0'));
            i += 4;
        } else {
            return Err(SqlError::new(
                SqlState::INVALID_TEXT_REPRESENTATION,
                "invalid input syntax for type bytea",
            ));
        }
    }
    Ok(out)
}

/// `uuid_in`: 32 hex digits, optionally in braces, with an optional hyphen after any group
/// of four digits.
pub fn parse_uuid(input: &str) -> SqlResult<[u8; 16]> {
    let err = || invalid_syntax("uuid", input);
    let b = input.as_bytes();
    let mut i = 0;
    let braces = b.first() == Some(&b'{');
    if braces {
        i += 1;
    }
    let mut out = [0u8; 16];
    for (k, byte) in out.iter_mut().enumerate() {
        let hi = b.get(i).copied().and_then(hex_value).ok_or_else(err)?;
        let lo = b.get(i + 1).copied().and_then(hex_value).ok_or_else(err)?;
        *byte = hi << 4 | lo;
        i += 2;
        if b.get(i) == Some(&b'-') && k % 2 == 1 && k < 15 {
            i += 1;
        }
    }
    if braces {
        if b.get(i) != Some(&b'}') {
            return Err(err());
        }
        i += 1;
    }
    if i != b.len() {
        return Err(err());
    }
    Ok(out)
}

/// PostgreSQL's text output for `value` (NULL prints as the empty string; callers send
/// NULL as a null field instead). `char(n)` values print unpadded: use
/// [`format_text_typed`] where the column type is known.
pub fn format_text(value: &Value, zone: &TimeZone) -> String {
    match value {
        Value::Null => String::new(),
        Value::Bool(b) => if *b { "t" } else { "f" }.to_string(),
        Value::Int2(v) => v.to_string(),
        Value::Int4(v) => v.to_string(),
        Value::Int8(v) => v.to_string(),
        Value::Float4(v) => format_float4(*v),
        Value::Float8(v) => format_float8(*v),
        Value::Numeric(n) => n.to_string(),
        Value::Text(s) => s.clone(),
        Value::Bytea(bytes) => format_bytea(bytes),
        Value::Date(d) => datetime::format_date(*d),
        Value::Timestamp(ts) => datetime::format_timestamp(*ts, None),
        Value::TimestampTz(ts) => datetime::format_timestamp(*ts, Some(zone)),
        Value::Uuid(u) => format_uuid(u),
        Value::Interval(i) => super::interval::format_interval(i),
        Value::Array(values) => super::array::format_array(values, zone),
        Value::Json(text) => text.clone(),
        Value::Jsonb(json) => json.to_text(),
    }
}

/// [`format_text`] for a value of column type `ty`: `char(n)` values are blank-padded to
/// `n` characters as `bpcharout` shows them.
pub fn format_text_typed(value: &Value, ty: &DataType, zone: &TimeZone) -> String {
    match (value, ty) {
        (Value::Text(s), DataType::Char(Some(n))) => {
            let len = s.chars().count();
            let n = *n as usize;
            if len >= n {
                s.clone()
            } else {
                let mut out = String::with_capacity(s.len() + n - len);
                out.push_str(s);
                out.extend(std::iter::repeat_n(' ', n - len));
                out
            }
        }
        (Value::Array(values), DataType::Int2Vector) => values
            .iter()
            .map(|v| format_text(v, zone))
            .collect::<Vec<_>>()
            .join(" "),
        _ => format_text(value, zone),
    }
}

/// `byteaout` in hex format: `\x0a0b`.
pub fn format_bytea(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(2 + bytes.len() * 2);
    out.push_str("\\x");
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 15)]));
    }
    out
}

/// `uuid_out`: lower-case, hyphenated 8-4-4-4-12.
pub fn format_uuid(u: &[u8; 16]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(36);
    for (i, b) in u.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 15)]));
    }
    out
}

/// Lays out decimal digits as PostgreSQL's float output does: plain notation for decimal
/// exponents in `-4..max_plain_exp`, else `d.ddde±XX`. `exp` is the power of ten of the
/// first digit.
fn layout_float(negative: bool, digits: &str, exp: i32, max_plain_exp: i32) -> String {
    let mut out = String::with_capacity(digits.len() + 8);
    if negative {
        out.push('-');
    }
    if exp < -4 || exp >= max_plain_exp {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", exp.unsigned_abs()));
    } else if exp < 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-exp - 1) as usize));
        out.push_str(digits);
    } else {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            out.push_str(digits);
            out.extend(std::iter::repeat_n('0', int_len - digits.len()));
        } else {
            out.push_str(&digits[..int_len]);
            out.push('.');
            out.push_str(&digits[int_len..]);
        }
    }
    out
}

/// Whether `s × 10^k = w × 2^f` exactly (s, w > 0).
fn dec_eq_bin(s: u64, k: i32, w: u64, f: i32) -> bool {
    if s == 0 || w == 0 {
        return s == w;
    }
    let a = s.trailing_zeros() as i32;
    let b = w.trailing_zeros() as i32;
    if a + k != b + f {
        return false;
    }
    let (s, w) = (u128::from(s >> a), u128::from(w >> b));
    let pow5 = |n: i32| 5u128.checked_pow(n.unsigned_abs());
    if k >= 0 {
        pow5(k).and_then(|p| s.checked_mul(p)) == Some(w)
    } else {
        pow5(k).and_then(|p| w.checked_mul(p)) == Some(s)
    }
}

/// A finite, positive float as `m × 2^e`, and whether the gap to the next lower float is
/// as wide as to the next higher one (false just above a power of two).
struct BinaryFloat {
    m: u64,
    e: i32,
    symmetric: bool,
}

impl BinaryFloat {
    fn of_f64(v: f64) -> BinaryFloat {
        let bits = v.to_bits();
        let exp = ((bits >> 52) & 0x7FF) as i32;
        let frac = bits & ((1 << 52) - 1);
        match exp {
            0 => BinaryFloat {
                m: frac,
                e: -1074,
                symmetric: true,
            },
            _ => BinaryFloat {
                m: frac | 1 << 52,
                e: exp - 1075,
                symmetric: frac != 0 || exp <= 1,
            },
        }
    }

    fn of_f32(v: f32) -> BinaryFloat {
        let bits = v.to_bits();
        let exp = ((bits >> 23) & 0xFF) as i32;
        let frac = u64::from(bits & ((1 << 23) - 1));
        match exp {
            0 => BinaryFloat {
                m: frac,
                e: -149,
                symmetric: true,
            },
            _ => BinaryFloat {
                m: frac | 1 << 23,
                e: exp - 150,
                symmetric: frac != 0 || exp <= 1,
            },
        }
    }

    /// Whether `s × 10^k` is the lower bound of the values that read back as this float.
    fn is_lower_bound(&self, s: u64, k: i32) -> bool {
        if self.symmetric {
            dec_eq_bin(s, k, 2 * self.m - 1, self.e - 1)
        } else {
            dec_eq_bin(s, k, 4 * self.m - 1, self.e - 2)
        }
    }

    /// Whether `s × 10^k` is either bound (halfway to a neighbouring float).
    fn is_bound(&self, s: u64, k: i32) -> bool {
        dec_eq_bin(s, k, 2 * self.m + 1, self.e - 1) || self.is_lower_bound(s, k)
    }

    /// If the float lies exactly halfway between `s` and a neighbour `s ± 1` (units of
    /// `10^k`) and `s` is odd, the even neighbour, provided it reads back as this float.
    fn tie_to_even(&self, s: u64, k: i32, reads_back: &impl Fn(u64, i32) -> bool) -> u64 {
        if s.is_multiple_of(2) {
            return s;
        }
        // value = (s ± ½)·10^k  ⟺  m·2^(e+1) = (2s ± 1)·10^k
        let candidate = if dec_eq_bin(2 * s + 1, k, self.m, self.e + 1) {
            s + 1
        } else if dec_eq_bin(2 * s - 1, k, self.m, self.e + 1) {
            s - 1
        } else {
            return s;
        };
        if candidate > 0 && reads_back(candidate, k) && !self.is_bound(candidate, k) {
            candidate
        } else {
            s
        }
    }
}

/// `(digits, exponent of the last digit)` of Rust's `{:e}` output for a positive number.
fn sci_parts(sci: &str) -> (u64, i32) {
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let s = digits.parse::<u64>().unwrap_or(0);
    (s, exp - (digits.len() as i32 - 1))
}

fn strip_zeros(mut s: u64, mut k: i32) -> (u64, i32) {
    while s != 0 && s.is_multiple_of(10) {
        s /= 10;
        k += 1;
    }
    (s, k)
}

/// The digits PostgreSQL's Ryu-based output prints for a positive float: the fewest digits
/// strictly inside the interval of values that read back as the float (unlike Rust's
/// shortest form, the bounds themselves are excluded even when reading back would round to
/// even), rounded to nearest with ties to even.
///
/// Starts from Rust's shortest form and corrects the two cases where they differ, checked
/// with exact arithmetic: Rust's digits are a bound (then longer forms are tried, correctly
/// rounded by `exact`), or they are one side of an exact tie.
fn postgres_digits(
    f: &BinaryFloat,
    shortest: (u64, i32),
    exact: impl Fn(usize) -> (u64, i32),
    reads_back: impl Fn(u64, i32) -> bool,
    max_digits: usize,
) -> (u64, i32) {
    let (s, k) = shortest;
    if !f.is_bound(s, k) {
        return strip_zeros(f.tie_to_even(s, k, &reads_back), k);
    }
    let len = s.checked_ilog10().unwrap_or(0) as usize + 1;
    for n in len..=max_digits {
        let (c, kc) = exact(n);
        let c = f.tie_to_even(c, kc, &reads_back);
        if reads_back(c, kc) && !f.is_bound(c, kc) {
            return strip_zeros(c, kc);
        }
        if f.is_lower_bound(c, kc) && reads_back(c + 1, kc) && !f.is_bound(c + 1, kc) {
            return strip_zeros(c + 1, kc);
        }
    }
    (s, k)
}

fn layout_digits(negative: bool, (s, k): (u64, i32), max_plain_exp: i32) -> String {
    let digits = s.to_string();
    let exp = k + digits.len() as i32 - 1;
    layout_float(negative, &digits, exp, max_plain_exp)
}

/// `float8out` with `extra_float_digits = 1`: the shortest text that reads back exactly,
/// digit for digit as PostgreSQL prints it.
pub fn format_float8(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let a = v.abs();
    let digits = postgres_digits(
        &BinaryFloat::of_f64(a),
        sci_parts(&format!("{a:e}")),
        |n| sci_parts(&format!("{:.*e}", n - 1, a)),
        |s, k| format!("{s}e{k}").parse::<f64>().is_ok_and(|x| x == a),
        17,
    );
    layout_digits(v < 0.0, digits, 15)
}

/// `float4out` with `extra_float_digits = 1`.
pub fn format_float4(v: f32) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let a = v.abs();
    let digits = postgres_digits(
        &BinaryFloat::of_f32(a),
        sci_parts(&format!("{a:e}")),
        |n| sci_parts(&format!("{:.*e}", n - 1, a)),
        |s, k| format!("{s}e{k}").parse::<f32>().is_ok_and(|x| x == a),
        9,
    );
    layout_digits(v < 0.0, digits, 6)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc() -> TimeZone {
        TimeZone::utc()
    }
    use rand::{rngs::SmallRng, Rng, SeedableRng};

    fn err(ty: DataType, input: &str) -> (SqlState, String) {
        let e = parse_text(&ty, input, &utc()).unwrap_err();
        (e.state, e.message)
    }

    #[test]
    fn bools_accept_postgres_spellings() {
        for (s, v) in [
            ("t", true),
            ("TRUE", true),
            ("tr", true),
            (" yes ", true),
            ("on", true),
            ("1", true),
            ("f", false),
            ("fal", false),
            ("No", false),
            ("of", false),
            ("off", false),
            ("0", false),
        ] {
            assert_eq!(parse_bool(s).unwrap(), v, "{s}");
        }
        for s in ["o", "x", "", "10", "truex", "onn"] {
            assert_eq!(
                err(DataType::Bool, s),
                (
                    SqlState::INVALID_TEXT_REPRESENTATION,
                    format!("invalid input syntax for type boolean: \"{s}\"")
                )
            );
        }
    }

    #[test]
    fn integers_parse_with_postgres_errors() {
        assert_eq!(
            parse_text(&DataType::Int4, " 12 ", &utc()).unwrap(),
            Value::Int4(12)
        );
        assert_eq!(
            parse_text(&DataType::Int2, "+5", &utc()).unwrap(),
            Value::Int2(5)
        );
        assert_eq!(
            parse_text(&DataType::Int2, "-32768", &utc()).unwrap(),
            Value::Int2(i16::MIN)
        );
        assert_eq!(
            parse_text(&DataType::Int8, "-9223372036854775808", &utc()).unwrap(),
            Value::Int8(i64::MIN)
        );
        assert_eq!(
            err(DataType::Int4, "abc"),
            (
                SqlState::INVALID_TEXT_REPRESENTATION,
                "invalid input syntax for type integer: \"abc\"".into()
            )
        );
        assert_eq!(
            err(DataType::Int4, ""),
            (
                SqlState::INVALID_TEXT_REPRESENTATION,
                "invalid input syntax for type integer: \"\"".into()
            )
        );
        assert_eq!(
            err(DataType::Int4, "99999999999"),
            (
                SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
                "value \"99999999999\" is out of range for type integer".into()
            )
        );
        assert_eq!(
            err(DataType::Int2, "32768").1,
            "value \"32768\" is out of range for type smallint"
        );
        assert_eq!(
            err(DataType::Int8, "9223372036854775808").1,
            "value \"9223372036854775808\" is out of range for type bigint"
        );
        assert_eq!(
            err(DataType::Int8, "1.5").1,
            "invalid input syntax for type bigint: \"1.5\""
        );
    }

    #[test]
    fn floats_parse_with_postgres_errors() {
        assert_eq!(parse_float8(" 1.5e3 ").unwrap(), 1500.0);
        assert!(parse_float8("NaN").unwrap().is_nan());
        assert_eq!(parse_float8("-Infinity").unwrap(), f64::NEG_INFINITY);
        assert_eq!(parse_float8("inf").unwrap(), f64::INFINITY);
        assert_eq!(parse_float8(".5").unwrap(), 0.5);
        assert_eq!(parse_float8("0e-500").unwrap(), 0.0);
        assert_eq!(
            err(DataType::Float8, "1e400"),
            (
                SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
                "\"1e400\" is out of range for type double precision".into()
            )
        );
        assert_eq!(
            err(DataType::Float8, "1e-400").1,
            "\"1e-400\" is out of range for type double precision"
        );
        assert_eq!(
            err(DataType::Float8, "abc").1,
            "invalid input syntax for type double precision: \"abc\""
        );
        assert_eq!(
            err(DataType::Float4, "1e39").1,
            "\"1e39\" is out of range for type real"
        );
        assert_eq!(
            err(DataType::Float4, "x").1,
            "invalid input syntax for type real: \"x\""
        );
    }

    /// Expected strings from PostgreSQL 15 (extra_float_digits = 1).
    #[test]
    fn floats_print_like_postgres() {
        for (v, want) in [
            (1e15, "1e+15"),
            (1e14, "100000000000000"),
            (123456789012345680.0, "1.2345678901234568e+17"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1e100, "1e+100"),
            (-0.0, "-0"),
            (0.0, "0"),
            (0.1, "0.1"),
            (-1.5, "-1.5"),
            (1.0 / 3.0, "0.3333333333333333"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (1e23, "9.999999999999999e+22"),
            (9007199254740993.0, "9.007199254740992e+15"),
            (f64::from_bits(3), "1.5e-323"),
        ] {
            assert_eq!(format_float8(v), want);
        }
        for (v, want) in [
            ("1.5", "1.5"),
            ("1e6", "1e+06"),
            ("1e7", "1e+07"),
            ("1e-5", "1e-05"),
            ("0.1", "0.1"),
            ("3.4e38", "3.4e+38"),
            ("1234567.0", "1.234567e+06"),
            ("12345678.0", "1.2345678e+07"),
            ("123456.0", "123456"),
            ("99999.5", "99999.5"),
            ("1e5", "100000"),
            // Where PostgreSQL's Ryu and Rust's shortest form disagree: a bound of the
            // rounding interval (9e9 reads back as this float, PostgreSQL does not print it)
            // and exact ties (PostgreSQL rounds to even).
            ("9e9", "8.999999e+09"),
            ("6e10", "6.0000002e+10"),
            ("5.3e9", "5.2999997e+09"),
            ("513555.625", "513555.62"),
            ("-1175498.25", "-1.1754982e+06"),
            ("39308607.6", "3.9308608e+07"),
            ("16777216.0", "1.6777216e+07"),
        ] {
            let v = parse_float4(v).unwrap();
            assert_eq!(format_float4(v), want);
        }
    }

    #[test]
    fn random_floats_round_trip_through_text() {
        let mut rng = SmallRng::seed_from_u64(3);
        for _ in 0..20_000 {
            let v = f64::from_bits(rng.gen());
            if v.is_nan() {
                continue;
            }
            let text = format_float8(v);
            assert_eq!(
                parse_float8(&text).unwrap().to_bits(),
                v.to_bits(),
                "{text}"
            );
            let f = f32::from_bits(rng.gen());
            if f.is_nan() {
                continue;
            }
            let text = format_float4(f);
            assert_eq!(
                parse_float4(&text).unwrap().to_bits(),
                f.to_bits(),
                "{text}"
            );
        }
    }

    #[test]
    fn bytea_hex_and_escape_input() {
        assert_eq!(parse_bytea("\\x0102").unwrap(), vec![1, 2]);
        assert_eq!(parse_bytea("\\x 01 0A").unwrap(), vec![1, 10]);
        assert_eq!(
            parse_bytea("abc\\\\d\\001").unwrap(),
            b"abc\\d\x01".to_vec()
        );
        assert_eq!(format_bytea(b"abc\\d\x01"), "\\x6162635c6401");
        assert_eq!(format_bytea(&[]), "\\x");
        let e = parse_bytea("\\x0g").unwrap_err();
        assert_eq!(
            (e.state, e.message.as_str()),
            (
                SqlState::INVALID_PARAMETER_VALUE,
                "invalid hexadecimal digit: \"g\""
            )
        );
        let e = parse_bytea("\\x012").unwrap_err();
        assert_eq!(e.message, "invalid hexadecimal data: odd number of digits");
        let e = parse_bytea("a\\9").unwrap_err();
        assert_eq!(
            (e.state, e.message.as_str()),
            (
                SqlState::INVALID_TEXT_REPRESENTATION,
                "invalid input syntax for type bytea"
            )
        );
    }

    #[test]
    fn uuids_accept_postgres_forms() {
        let want = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11";
        for s in [
            "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
            "A0EEBC999C0B4EF8BB6D6BB9BD380A11",
            "a0eebc99-9c0b4ef8-bb6d6bb9-bd380a11",
            "a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11",
        ] {
            assert_eq!(format_uuid(&parse_uuid(s).unwrap()), want, "{s}");
        }
        for s in [
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a111",
            "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11-",
            "-a0eebc999c0b4ef8bb6d6bb9bd380a11",
            " a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        ] {
            assert_eq!(
                err(DataType::Uuid, s),
                (
                    SqlState::INVALID_TEXT_REPRESENTATION,
                    format!("invalid input syntax for type uuid: \"{s}\"")
                )
            );
        }
    }

    /// Random strings over the characters each input function cares about: parsing
    /// returns a value or an error, never panics, and what parses prints and re-parses to
    /// the same value.
    #[test]
    fn random_input_never_panics() {
        let mut rng = SmallRng::seed_from_u64(13);
        let alphabet: Vec<char> = "0123456789+-.:eE xXTZtrufalsonyBCADinfINFa\\{}\u{e9}/\t"
            .chars()
            .collect();
        let types = [
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
            DataType::Bytea,
            DataType::Date,
            DataType::Timestamp,
            DataType::TimestampTz,
            DataType::Uuid,
        ];
        for _ in 0..100_000 {
            let len = rng.gen_range(0..30);
            let s: String = (0..len)
                .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
                .collect();
            let ty = &types[rng.gen_range(0..types.len())];
            if let Ok(v) = parse_text(ty, &s, &utc()) {
                let text = format_text(&v, &utc());
                let again = parse_text(ty, &text, &utc()).unwrap();
                assert_eq!(format_text(&again, &utc()), text, "{ty}: {s:?}");
            }
        }
    }

    #[test]
    fn char_values_are_stored_unpadded_and_printed_padded() {
        let v = parse_text(&DataType::Char(Some(5)), "ab  ", &utc()).unwrap();
        assert_eq!(v, Value::Text("ab".into()));
        assert_eq!(
            format_text_typed(&v, &DataType::Char(Some(5)), &utc()),
            "ab   "
        );
        assert_eq!(
            format_text_typed(&v, &DataType::Varchar(Some(5)), &utc()),
            "ab"
        );
        assert_eq!(format_text(&v, &utc()), "ab");
    }

    #[test]
    fn values_round_trip_through_text() {
        let cases = [
            (DataType::Bool, Value::Bool(true)),
            (DataType::Int2, Value::Int2(-7)),
            (DataType::Int4, Value::Int4(i32::MIN)),
            (DataType::Int8, Value::Int8(i64::MAX)),
            (
                DataType::Numeric {
                    precision: None,
                    scale: None,
                },
                Value::Numeric(Numeric::parse("-12.340").unwrap()),
            ),
            (DataType::Text, Value::Text("héllo".into())),
            (DataType::Bytea, Value::Bytea(vec![0, 255, 10])),
            (DataType::Date, Value::Date(-1)),
            (DataType::Timestamp, Value::Timestamp(1)),
            (DataType::TimestampTz, Value::TimestampTz(-86_400_000_001)),
            (DataType::Uuid, Value::Uuid([7; 16])),
        ];
        for (ty, v) in cases {
            let text = format_text(&v, &utc());
            assert_eq!(parse_text(&ty, &text, &utc()).unwrap(), v, "{text}");
        }
        assert_eq!(format_text(&Value::Bool(false), &utc()), "f");
        assert_eq!(format_text(&Value::Date(0), &utc()), "2000-01-01");
        assert_eq!(
            format_text(&Value::TimestampTz(0), &utc()),
            "2000-01-01 00:00:00+00"
        );
    }
}
