//! `numeric`: PostgreSQL's arbitrary-precision decimal.
//!
//! # Representation
//!
//! A finite value is a sign, a vector of base-10000 digits (most significant first) and the
//! weight of the first digit, exactly as PostgreSQL stores it (`NBASE = 10000`):
//!
//! ```text
//!   value = ± Σ digits[i] × 10000^(weight − i)
//!   12345.678  =  [1, 2345, 6780], weight 1, dscale 3
//! ```
//!
//! Digits are kept normalised: no leading or trailing zero digits, and zero has no digits
//! (weight 0, positive). Besides the digits every value carries its *display scale*
//! (`dscale`): how many decimal places it prints with. `1.5` and `1.50` are equal (they have
//! the same digits) but print differently. Equality, ordering and hashing ignore the display
//! scale. No non-zero decimal digit ever lies beyond the display scale.
//!
//! Special values are NaN, `Infinity` and `-Infinity` (PostgreSQL 14+). NaN equals itself and
//! sorts above everything, `Infinity` included, as in PostgreSQL.
//!
//! Arithmetic follows PostgreSQL's result-scale rules: sums keep the larger scale, products
//! add the scales, and quotients get `select_div_scale`'s scale (at least 16 significant
//! digits), rounded half away from zero.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

use serde::{Deserialize, Serialize};

use crate::error::{SqlError, SqlResult, SqlState};

/// The base of a digit.
const NBASE: u32 = 10_000;
/// Decimal digits per base-10000 digit.
const DEC_DIGITS: i32 = 4;
/// PostgreSQL's largest weight (the storage format keeps it in 16 bits).
const MAX_WEIGHT: i32 = i16::MAX as i32;
/// PostgreSQL's largest display scale (`NUMERIC_DSCALE_MAX`).
pub const MAX_DSCALE: u16 = 0x3FFF;
/// The largest display scale an operation picks by itself (`NUMERIC_MAX_DISPLAY_SCALE`).
const MAX_DISPLAY_SCALE: i32 = 1000;
/// Minimum significant digits of a quotient (`NUMERIC_MIN_SIG_DIGITS`).
const MIN_SIG_DIGITS: i32 = 16;

/// Which kind of numeric a value is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NumericKind {
    /// An ordinary number.
    Finite,
    /// `NaN`.
    NaN,
    /// `Infinity`.
    PosInf,
    /// `-Infinity`.
    NegInf,
}

/// An arbitrary-precision decimal number with a display scale; see the module docs.
#[derive(Clone, Serialize, Deserialize)]
pub struct Numeric {
    kind: NumericKind,
    negative: bool,
    weight: i32,
    dscale: u16,
    digits: Vec<u16>,
}

impl Numeric {
    /// Bytes its digits take on the heap (for memory accounting).
    pub fn heap_bytes(&self) -> usize {
        self.digits.len() * std::mem::size_of::<u16>()
    }
}

fn overflow_format() -> SqlError {
    SqlError::new(
        SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
        "value overflows numeric format",
    )
}

fn division_by_zero() -> SqlError {
    SqlError::new(SqlState::DIVISION_BY_ZERO, "division by zero")
}

impl Numeric {
    /// Zero with display scale 0.
    pub fn zero() -> Numeric {
        Numeric {
            kind: NumericKind::Finite,
            negative: false,
            weight: 0,
            dscale: 0,
            digits: vec![],
        }
    }

    /// `NaN`.
    pub fn nan() -> Numeric {
        Numeric {
            kind: NumericKind::NaN,
            ..Numeric::zero()
        }
    }

    /// `Infinity` or, if `negative`, `-Infinity`.
    pub fn infinity(negative: bool) -> Numeric {
        let kind = if negative {
            NumericKind::NegInf
        } else {
            NumericKind::PosInf
        };
        Numeric {
            kind,
            ..Numeric::zero()
        }
    }

    /// Which kind of value this is.
    pub fn kind(&self) -> NumericKind {
        self.kind
    }

    /// Whether this is NaN.
    pub fn is_nan(&self) -> bool {
        self.kind == NumericKind::NaN
    }

    /// Whether this is `Infinity` or `-Infinity`.
    pub fn is_infinite(&self) -> bool {
        matches!(self.kind, NumericKind::PosInf | NumericKind::NegInf)
    }

    /// Whether this is a finite zero.
    pub fn is_zero(&self) -> bool {
        self.kind == NumericKind::Finite && self.digits.is_empty()
    }

    /// Whether this is below zero (`-Infinity` included).
    pub fn is_negative(&self) -> bool {
        match self.kind {
            NumericKind::Finite => self.negative,
            NumericKind::NegInf => true,
            _ => false,
        }
    }

    /// The display scale: decimal places printed.
    pub fn dscale(&self) -> u16 {
        self.dscale
    }

    /// The weight of the first base-10000 digit (0 for zero and special values).
    pub fn weight(&self) -> i32 {
        self.weight
    }

    /// The base-10000 digits, most significant first, without leading or trailing zeros.
    pub fn digits(&self) -> &[u16] {
        &self.digits
    }

    /// Whether the value has no fractional part (false for special values).
    pub fn is_integral(&self) -> bool {
        self.kind == NumericKind::Finite
            && (self.digits.is_empty() || self.weight - self.digits.len() as i32 + 1 >= 0)
    }

    /// Builds a finite value from PostgreSQL's parts (base-10000 digits, most significant
    /// first, with the weight of the first). Digits must each be below 10000; they are
    /// normalised, and digits beyond `dscale` are truncated away as `numeric_recv` does.
    pub fn from_parts(
        negative: bool,
        weight: i32,
        dscale: u16,
        digits: Vec<u16>,
    ) -> SqlResult<Numeric> {
        if digits.iter().any(|d| u32::from(*d) >= NBASE) {
            return Err(SqlError::new(
                SqlState::INVALID_BINARY_REPRESENTATION,
                "invalid digit in external \"numeric\" value",
            ));
        }
        let n = Numeric {
            kind: NumericKind::Finite,
            negative,
            weight,
            dscale,
            digits,
        }
        .normalized();
        let n = n.trunc_to_scale(i32::from(dscale));
        n.check_limits()
    }

    fn normalized(mut self) -> Numeric {
        let lead = self.digits.iter().take_while(|d| **d == 0).count();
        if lead > 0 {
            self.digits.drain(..lead);
            self.weight -= lead as i32;
        }
        while self.digits.last() == Some(&0) {
            self.digits.pop();
        }
        if self.digits.is_empty() {
            self.weight = 0;
            self.negative = false;
        }
        self
    }

    fn check_limits(self) -> SqlResult<Numeric> {
        if self.kind == NumericKind::Finite && !self.digits.is_empty() && self.weight > MAX_WEIGHT {
            return Err(overflow_format());
        }
        if self.dscale > MAX_DSCALE {
            return Err(overflow_format());
        }
        Ok(self)
    }

    // ---- decimal-digit view -------------------------------------------------------------

    /// The magnitude as decimal digits (no leading zeros; empty for zero) and the power of
    /// ten of the last one: `|value| = digits × 10^exp`.
    fn to_decimal(&self) -> (Vec<u8>, i64) {
        let mut out = Vec::with_capacity(self.digits.len() * 4);
        for d in &self.digits {
            let d = *d;
            out.extend_from_slice(&[
                (d / 1000) as u8,
                (d / 100 % 10) as u8,
                (d / 10 % 10) as u8,
                (d % 10) as u8,
            ]);
        }
        let mut exp = (i64::from(self.weight) - self.digits.len() as i64 + 1) * 4;
        while out.last() == Some(&0) {
            out.pop();
            exp += 1;
        }
        let lead = out.iter().take_while(|d| **d == 0).count();
        out.drain(..lead);
        if out.is_empty() {
            exp = 0;
        }
        (out, exp)
    }

    /// Builds a finite value from decimal digits (`|value| = digits × 10^exp`).
    fn from_decimal(negative: bool, digits: &[u8], exp: i64, dscale: u16) -> SqlResult<Numeric> {
        Numeric::from_decimal_unchecked(negative, digits, exp, dscale).check_limits()
    }

    /// [`Numeric::from_decimal`] without the format's limits (for intermediate results).
    fn from_decimal_unchecked(negative: bool, digits: &[u8], exp: i64, dscale: u16) -> Numeric {
        let q = exp.div_euclid(4);
        let r = exp.rem_euclid(4) as usize;
        let lead = (4 - (digits.len() + r) % 4) % 4;
        let mut all = vec![0u8; lead];
        all.extend_from_slice(digits);
        all.extend(std::iter::repeat_n(0, r));
        let groups: Vec<u16> = all
            .chunks(4)
            .map(|c| c.iter().fold(0u16, |acc, d| acc * 10 + u16::from(*d)))
            .collect();
        let weight =
            (q + groups.len() as i64 - 1).clamp(i64::from(i32::MIN / 2), i64::from(i32::MAX / 2));
        Numeric {
            kind: NumericKind::Finite,
            negative,
            weight: weight as i32,
            dscale,
            digits: groups,
        }
        .normalized()
    }

    // ---- text --------------------------------------------------------------------------

    /// Parses PostgreSQL's text form: `12.340`, `-1e3`, `.5`, `NaN`, `Infinity`, `-inf`,
    /// surrounded by optional whitespace. Errors are `numeric_in`'s.
    pub fn parse(input: &str) -> SqlResult<Numeric> {
        let syntax = || {
            SqlError::new(
                SqlState::INVALID_TEXT_REPRESENTATION,
                format!("invalid input syntax for type numeric: \"{input}\""),
            )
        };
        let s = input.trim_matches(|c: char| c.is_ascii_whitespace());
        let lower = s.to_ascii_lowercase();
        match lower.as_str() {
            "nan" => return Ok(Numeric::nan()),
            "infinity" | "+infinity" | "inf" | "+inf" => return Ok(Numeric::infinity(false)),
            "-infinity" | "-inf" => return Ok(Numeric::infinity(true)),
            _ => {}
        }
        let bytes = s.as_bytes();
        let mut i = 0;
        let mut negative = false;
        if i < bytes.len() && (bytes[i] == b'+' || bytes[i] == b'-') {
            negative = bytes[i] == b'-';
            i += 1;
        }
        let mut digits = Vec::new();
        let mut frac_digits: i64 = 0;
        let mut seen_point = false;
        let mut any_digit = false;
        while i < bytes.len() {
            match bytes[i] {
                b'0'..=b'9' => {
                    any_digit = true;
                    digits.push(bytes[i] - b'0');
                    if seen_point {
                        frac_digits += 1;
                    }
                }
                b'.' if !seen_point => seen_point = true,
                _ => break,
            }
            i += 1;
        }
        if !any_digit {
            return Err(syntax());
        }
        let mut exponent: i64 = 0;
        if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
            i += 1;
            let mut exp_negative = false;
            if i < bytes.len() && (bytes[i] == b'+' || bytes[i] == b'-') {
                exp_negative = bytes[i] == b'-';
                i += 1;
            }
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                exponent = exponent
                    .saturating_mul(10)
                    .saturating_add(i64::from(bytes[i] - b'0'));
                i += 1;
            }
            if i == start {
                return Err(syntax());
            }
            if exponent > i64::from(i32::MAX / 2) {
                return Err(overflow_format());
            }
            if exp_negative {
                exponent = -exponent;
            }
        }
        if i != bytes.len() {
            return Err(syntax());
        }
        let dscale = (frac_digits - exponent).max(0);
        if dscale > i64::from(MAX_DSCALE) {
            return Err(overflow_format());
        }
        let lead = digits.iter().take_while(|d| **d == 0).count();
        Numeric::from_decimal(
            negative,
            &digits[lead..],
            exponent - frac_digits,
            dscale as u16,
        )
    }

    /// The decimal digits of `|self|` written with exactly `scale` decimal places
    /// (finite values only).
    fn write_decimal(&self, out: &mut String, scale: u16) {
        let (digits, exp) = self.to_decimal();
        // Integer part: digits with place >= 0.
        let int_len = digits.len() as i64 + exp; // number of digits before the point
        if int_len <= 0 {
            out.push('0');
        } else {
            for k in 0..int_len {
                let d = if (k as usize) < digits.len() {
                    digits[k as usize]
                } else {
                    0
                };
                out.push(char::from(b'0' + d));
            }
        }
        if scale > 0 {
            out.push('.');
            for k in 0..i64::from(scale) {
                // Place of fractional digit k is -(k+1); index in digits: int_len + k.
                let idx = int_len + k;
                let d = if idx >= 0 && (idx as usize) < digits.len() {
                    digits[idx as usize]
                } else {
                    0
                };
                out.push(char::from(b'0' + d));
            }
        }
    }

    /// The square root, to PostgreSQL's result scale (at least 16 significant digits, at
    /// least the argument's scale); `None` for a negative argument. NaN and +Infinity are
    /// their own roots.
    pub fn sqrt(&self) -> Option<Numeric> {
        match self.kind() {
            NumericKind::NaN | NumericKind::PosInf => return Some(self.clone()),
            NumericKind::NegInf => return None,
            NumericKind::Finite => {}
        }
        if self.is_negative() {
            return None;
        }
        // As numeric_sqrt: sweight = (weight + 1) * DEC_DIGITS / 2 - 1.
        let sweight = (self.weight + 1) * 4 / 2 - 1;
        let rscale = (16 - sweight).max(i32::from(self.dscale)).clamp(0, 1000);
        if self.is_zero() {
            return Some(Numeric::zero().round_to_scale(rscale));
        }
        // Newton's iteration from the float estimate, a few digits beyond the result scale;
        // each step doubles the correct digits, so a handful of steps reach 1000 digits.
        let work = rscale + 8;
        let two = Numeric::from_i64(2);
        let mut x = Numeric::from_f64(self.to_f64().sqrt());
        if x.is_zero() || !x.is_finite_value() {
            x = Numeric::from_i64(1);
        }
        for _ in 0..64 {
            let next = x
                .add(&self.div_to_scale(&x, work).ok()?)
                .ok()?
                .div_to_scale(&two, work)
                .ok()?;
            if next == x {
                break;
            }
            x = next;
        }
        Some(x.round_to_scale(rscale))
    }

    fn is_finite_value(&self) -> bool {
        self.kind() == NumericKind::Finite
    }

    // ---- rounding ----------------------------------------------------------------------

    /// Rounds to `scale` decimal places (negative: to tens, hundreds...), half away from
    /// zero, as PostgreSQL's `round(numeric, int)`. The result's display scale is
    /// `max(scale, 0)`. Special values are returned unchanged.
    pub fn round_to_scale(&self, scale: i32) -> Numeric {
        self.rescale(scale, true)
    }

    /// Truncates toward zero to `scale` decimal places, as `trunc(numeric, int)`.
    pub fn trunc_to_scale(&self, scale: i32) -> Numeric {
        self.rescale(scale, false)
    }

    fn rescale(&self, scale: i32, round: bool) -> Numeric {
        if self.kind != NumericKind::Finite {
            return self.clone();
        }
        let dscale = scale.clamp(0, i32::from(MAX_DSCALE)) as u16;
        let (mut digits, exp) = self.to_decimal();
        let target = -i64::from(scale);
        if exp >= target || digits.is_empty() {
            let mut n = self.clone();
            n.dscale = dscale;
            return n;
        }
        let drop = (target - exp) as usize;
        let round_up = if drop > digits.len() {
            digits.clear();
            false
        } else {
            let first_dropped = digits[digits.len() - drop];
            digits.truncate(digits.len() - drop);
            round && first_dropped >= 5
        };
        if round_up {
            let mut carry = true;
            for d in digits.iter_mut().rev() {
                if *d == 9 {
                    *d = 0;
                } else {
                    *d += 1;
                    carry = false;
                    break;
                }
            }
            if carry {
                digits.insert(0, 1);
            }
        }
        // Rounding can only carry into one more digit; the weight limit is checked by callers
        // that produce values for the outside world.
        Numeric::from_decimal_unchecked(self.negative, &digits, target, dscale)
    }

    /// Applies a `numeric(precision, scale)` type modifier: rounds to `scale` places and
    /// fails with 22003 "numeric field overflow" if the integer part has more than
    /// `precision − scale` digits. NaN passes; infinities fail.
    pub fn apply_typmod(&self, precision: u16, scale: u16) -> SqlResult<Numeric> {
        let overflow = |detail: String| {
            SqlError::new(
                SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
                "numeric field overflow",
            )
            .with_detail(detail)
        };
        match self.kind {
            NumericKind::NaN => return Ok(self.clone()),
            NumericKind::PosInf | NumericKind::NegInf => {
                return Err(overflow(format!(
                "A field with precision {precision}, scale {scale} cannot hold an infinite value."
            )))
            }
            NumericKind::Finite => {}
        }
        let rounded = self.round_to_scale(i32::from(scale));
        let max_digits = i64::from(precision) - i64::from(scale);
        let (digits, exp) = rounded.to_decimal();
        let int_digits = digits.len() as i64 + exp;
        if !digits.is_empty() && int_digits > max_digits {
            // PostgreSQL prints 10^0 as 1 (and 10^-1 for numeric(1,2)).
            let bound = if max_digits != 0 {
                format!("10^{max_digits}")
            } else {
                "1".to_string()
            };
            return Err(overflow(format!(
                "A field with precision {precision}, scale {scale} must round to an absolute value less than {bound}."
            )));
        }
        Ok(rounded)
    }

    /// The same value printed with a different display scale (no rounding: only for scales
    /// at least as large as the digits need).
    fn with_dscale(mut self, dscale: u16) -> Numeric {
        if self.kind == NumericKind::Finite {
            self.dscale = dscale;
        }
        self
    }

    // ---- conversions -------------------------------------------------------------------

    /// The integer `value` (display scale 0).
    pub fn from_i64(value: i64) -> Numeric {
        Numeric::from_i128(i128::from(value))
    }

    /// The integer `value` (display scale 0).
    pub fn from_i128(value: i128) -> Numeric {
        let negative = value < 0;
        let mut mag = value.unsigned_abs();
        let mut digits = Vec::new();
        while mag > 0 {
            digits.push((mag % u128::from(NBASE)) as u16);
            mag /= u128::from(NBASE);
        }
        let weight = digits.len() as i32 - 1;
        digits.reverse();
        Numeric {
            kind: NumericKind::Finite,
            negative,
            weight,
            dscale: 0,
            digits,
        }
        .normalized()
    }

    /// Rounds half away from zero to an integer; `None` if that does not fit in an `i64` or
    /// the value is not finite.
    pub fn to_i64(&self) -> Option<i64> {
        self.to_i128().and_then(|v| i64::try_from(v).ok())
    }

    /// Rounds half away from zero to an integer; `None` if that does not fit in an `i128` or
    /// the value is not finite.
    pub fn to_i128(&self) -> Option<i128> {
        if self.kind != NumericKind::Finite {
            return None;
        }
        let r = self.round_to_scale(0);
        if r.digits.is_empty() {
            return Some(0);
        }
        if r.weight > 9 {
            return None;
        }
        let mut acc: i128 = 0;
        for i in 0..=r.weight {
            let d = r.digits.get(i as usize).copied().unwrap_or(0);
            acc = acc
                .checked_mul(i128::from(NBASE))?
                .checked_add(i128::from(d))?;
        }
        Some(if r.negative { -acc } else { acc })
    }

    /// The nearest `f64` (infinities when out of range, as `strtod`), NaN for NaN.
    pub fn to_f64(&self) -> f64 {
        match self.kind {
            NumericKind::NaN => f64::NAN,
            NumericKind::PosInf => f64::INFINITY,
            NumericKind::NegInf => f64::NEG_INFINITY,
            NumericKind::Finite => {
                let (digits, exp) = self.to_decimal();
                if digits.is_empty() {
                    return 0.0;
                }
                let mut s = String::with_capacity(digits.len() + 24);
                if self.negative {
                    s.push('-');
                }
                s.extend(digits.iter().map(|d| char::from(b'0' + d)));
                s.push('e');
                s.push_str(&exp.to_string());
                s.parse::<f64>().unwrap_or(f64::NAN)
            }
        }
    }

    /// The value of a `double precision`, as PostgreSQL converts it: printed with 15
    /// significant digits (`%.15g`) and read back. NaN and infinities map to themselves.
    pub fn from_f64(value: f64) -> Numeric {
        Numeric::from_float_digits(value, 15)
    }

    /// The value of a `real`, as PostgreSQL converts it (6 significant digits).
    pub fn from_f32(value: f32) -> Numeric {
        Numeric::from_float_digits(f64::from(value), 6)
    }

    fn from_float_digits(value: f64, significant: usize) -> Numeric {
        if value.is_nan() {
            return Numeric::nan();
        }
        if value.is_infinite() {
            return Numeric::infinity(value < 0.0);
        }
        // `{:.Ne}` rounds the exact binary value correctly, as printf's %g does.
        let s = format!("{:.*e}", significant - 1, value);
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let exp: i64 = exp.parse().unwrap_or(0);
        let negative = mantissa.starts_with('-');
        let mut digits: Vec<u8> = mantissa
            .bytes()
            .filter(u8::is_ascii_digit)
            .map(|b| b - b'0')
            .collect();
        while digits.len() > 1 && digits.last() == Some(&0) {
            digits.pop();
        }
        // value = d.ddd × 10^exp = digits × 10^(exp − (len − 1))
        let e = exp - (digits.len() as i64 - 1);
        let dscale = (-e).max(0) as u16;
        let lead = digits.iter().take_while(|d| **d == 0).count();
        Numeric::from_decimal(negative, &digits[lead..], e, dscale)
            .unwrap_or_else(|_| Numeric::nan())
    }

    // ---- arithmetic --------------------------------------------------------------------

    /// `self + other`, with the larger display scale.
    pub fn add(&self, other: &Numeric) -> SqlResult<Numeric> {
        if let Some(special) = special_add(self, other, false) {
            return Ok(special);
        }
        let dscale = self.dscale.max(other.dscale);
        Ok(add_signed(self, self.negative, other, other.negative).with_dscale(dscale))
            .and_then(Numeric::check_limits)
    }

    /// `self − other`, with the larger display scale.
    pub fn sub(&self, other: &Numeric) -> SqlResult<Numeric> {
        if let Some(special) = special_add(self, other, true) {
            return Ok(special);
        }
        let dscale = self.dscale.max(other.dscale);
        Ok(add_signed(self, self.negative, other, !other.negative).with_dscale(dscale))
            .and_then(Numeric::check_limits)
    }

    /// `self × other`; the display scale is the sum of the operands'.
    pub fn mul(&self, other: &Numeric) -> SqlResult<Numeric> {
        match (self.kind, other.kind) {
            (NumericKind::NaN, _) | (_, NumericKind::NaN) => return Ok(Numeric::nan()),
            (NumericKind::Finite, NumericKind::Finite) => {}
            _ => {
                if self.is_zero() || other.is_zero() {
                    return Ok(Numeric::nan());
                }
                return Ok(Numeric::infinity(self.is_negative() != other.is_negative()));
            }
        }
        let dscale = u32::from(self.dscale) + u32::from(other.dscale);
        if dscale > u32::from(MAX_DSCALE) {
            return Err(overflow_format());
        }
        if self.is_zero() || other.is_zero() {
            return Ok(Numeric::zero().with_dscale(dscale as u16));
        }
        let a = &self.digits;
        let b = &other.digits;
        let mut acc = vec![0u64; a.len() + b.len()];
        for (i, x) in a.iter().enumerate() {
            for (j, y) in b.iter().enumerate() {
                acc[i + j + 1] += u64::from(*x) * u64::from(*y);
            }
            // Propagate occasionally to keep the accumulators small.
            if i % 1000 == 999 {
                carry_u64(&mut acc);
            }
        }
        carry_u64(&mut acc);
        let digits = acc.into_iter().map(|d| d as u16).collect();
        Numeric {
            kind: NumericKind::Finite,
            negative: self.negative != other.negative,
            weight: self.weight + other.weight + 1,
            dscale: dscale as u16,
            digits,
        }
        .normalized()
        .check_limits()
    }

    /// `self ÷ other`, rounded to PostgreSQL's `select_div_scale` scale; 22012 on zero.
    pub fn div(&self, other: &Numeric) -> SqlResult<Numeric> {
        match (self.kind, other.kind) {
            (NumericKind::NaN, _) | (_, NumericKind::NaN) => return Ok(Numeric::nan()),
            (NumericKind::Finite, NumericKind::Finite) => {}
            (NumericKind::Finite, _) => return Ok(Numeric::zero()),
            (_, NumericKind::Finite) => {
                if other.is_zero() {
                    return Err(division_by_zero());
                }
                return Ok(Numeric::infinity(self.is_negative() != other.is_negative()));
            }
            _ => return Ok(Numeric::nan()),
        }
        if other.is_zero() {
            return Err(division_by_zero());
        }
        let rscale = select_div_scale(self, other);
        self.div_to_scale(other, rscale)
    }

    /// `self ÷ other` rounded half away from zero to `rscale` decimal places (finite,
    /// non-zero divisor).
    pub fn div_to_scale(&self, other: &Numeric, rscale: i32) -> SqlResult<Numeric> {
        if other.is_zero() {
            return Err(division_by_zero());
        }
        if self.is_zero() {
            return Ok(Numeric::zero().with_dscale(rscale.max(0) as u16));
        }
        // |a| = A × 10000^la, |b| = B × 10000^lb; compute Q = ⌊A × 10000^(la − lb + g) / B⌋
        // with g fractional base-10000 digits, enough for rscale + 1 decimal places.
        let la = self.weight - self.digits.len() as i32 + 1;
        let lb = other.weight - other.digits.len() as i32 + 1;
        let g = (rscale + 1 + DEC_DIGITS - 1).div_euclid(DEC_DIGITS).max(0);
        let shift = la - lb + g;
        let mut a = to_le(&self.digits);
        let mut b = to_le(&other.digits);
        if shift >= 0 {
            a.splice(0..0, std::iter::repeat_n(0u32, shift as usize));
        } else {
            b.splice(0..0, std::iter::repeat_n(0u32, (-shift) as usize));
        }
        let (q, _) = divmod_le(&a, &b);
        let mut digits: Vec<u16> = q.iter().rev().map(|d| *d as u16).collect();
        if digits.is_empty() {
            digits.push(0);
        }
        let weight = digits.len() as i32 - 1 - g;
        let truncated = Numeric {
            kind: NumericKind::Finite,
            negative: self.negative != other.negative,
            weight,
            dscale: 0,
            digits,
        }
        .normalized();
        truncated.round_to_scale(rscale).check_limits()
    }

    /// `self mod other` (sign of the dividend, as `numeric_mod`); 22012 on zero.
    pub fn rem(&self, other: &Numeric) -> SqlResult<Numeric> {
        match (self.kind, other.kind) {
            (NumericKind::NaN, _) | (_, NumericKind::NaN) => return Ok(Numeric::nan()),
            (NumericKind::Finite, NumericKind::Finite) => {}
            (NumericKind::Finite, _) => return Ok(self.clone()),
            (_, NumericKind::Finite) => {
                if other.is_zero() {
                    return Err(division_by_zero());
                }
                return Ok(Numeric::nan());
            }
            _ => return Ok(Numeric::nan()),
        }
        if other.is_zero() {
            return Err(division_by_zero());
        }
        let dscale = self.dscale.max(other.dscale);
        if self.is_zero() {
            return Ok(Numeric::zero().with_dscale(dscale));
        }
        let la = self.weight - self.digits.len() as i32 + 1;
        let lb = other.weight - other.digits.len() as i32 + 1;
        let low = la.min(lb);
        let mut a = to_le(&self.digits);
        let mut b = to_le(&other.digits);
        a.splice(0..0, std::iter::repeat_n(0u32, (la - low) as usize));
        b.splice(0..0, std::iter::repeat_n(0u32, (lb - low) as usize));
        let (_, r) = divmod_le(&a, &b);
        let digits: Vec<u16> = r.iter().rev().map(|d| *d as u16).collect();
        let weight = digits.len() as i32 - 1 + low;
        Ok(Numeric {
            kind: NumericKind::Finite,
            negative: self.negative,
            weight,
            dscale,
            digits,
        }
        .normalized())
    }

    /// `−self`.
    pub fn neg(&self) -> Numeric {
        let mut n = self.clone();
        match n.kind {
            NumericKind::Finite => {
                if !n.digits.is_empty() {
                    n.negative = !n.negative;
                }
            }
            NumericKind::PosInf => n.kind = NumericKind::NegInf,
            NumericKind::NegInf => n.kind = NumericKind::PosInf,
            NumericKind::NaN => {}
        }
        n
    }

    /// `|self|`.
    pub fn abs(&self) -> Numeric {
        if self.is_negative() {
            self.neg()
        } else {
            self.clone()
        }
    }
}

/// Adds or subtracts infinities and NaN; `None` when both are finite.
fn special_add(a: &Numeric, b: &Numeric, subtract: bool) -> Option<Numeric> {
    use NumericKind::*;
    let b_kind = match (b.kind, subtract) {
        (PosInf, true) => NegInf,
        (NegInf, true) => PosInf,
        (k, _) => k,
    };
    match (a.kind, b_kind) {
        (Finite, Finite) => None,
        (NaN, _) | (_, NaN) => Some(Numeric::nan()),
        (PosInf, NegInf) | (NegInf, PosInf) => Some(Numeric::nan()),
        (PosInf, _) | (_, PosInf) => Some(Numeric::infinity(false)),
        (NegInf, _) | (_, NegInf) => Some(Numeric::infinity(true)),
    }
}

/// Little-endian u32 copy of big-endian base-10000 digits.
fn to_le(digits: &[u16]) -> Vec<u32> {
    digits.iter().rev().map(|d| u32::from(*d)).collect()
}

fn carry_u64(acc: &mut [u64]) {
    let mut carry = 0u64;
    for d in acc.iter_mut().rev() {
        let v = *d + carry;
        *d = v % u64::from(NBASE);
        carry = v / u64::from(NBASE);
    }
}

/// Compares little-endian magnitudes (which may have high zero limbs).
fn cmp_le(a: &[u32], b: &[u32]) -> Ordering {
    let trim = |x: &[u32]| x.iter().rposition(|d| *d != 0).map_or(0, |p| p + 1);
    let (la, lb) = (trim(a), trim(b));
    la.cmp(&lb)
        .then_with(|| a[..la].iter().rev().cmp(b[..lb].iter().rev()))
}

/// `b × q` for a single digit q, little-endian.
fn mul_small_le(b: &[u32], q: u32) -> Vec<u32> {
    let mut out = Vec::with_capacity(b.len() + 1);
    let mut carry = 0u32;
    for d in b {
        let v = d * q + carry;
        out.push(v % NBASE);
        carry = v / NBASE;
    }
    if carry > 0 {
        out.push(carry);
    }
    out
}

/// `a −= b` for little-endian magnitudes with `a ≥ b`.
fn sub_in_place_le(a: &mut [u32], b: &[u32]) {
    let mut borrow = 0i64;
    for (i, digit) in a.iter_mut().enumerate() {
        let mut v = i64::from(*digit) - borrow - i64::from(b.get(i).copied().unwrap_or(0));
        if v < 0 {
            v += i64::from(NBASE);
            borrow = 1;
        } else {
            borrow = 0;
        }
        *digit = v as u32;
    }
}

/// Long division of little-endian base-10000 magnitudes: `(⌊a / b⌋, a mod b)`. Each
/// quotient digit is found by binary search: simple and exact, quadratic like schoolbook.
fn divmod_le(a: &[u32], b: &[u32]) -> (Vec<u32>, Vec<u32>) {
    let mut quotient = vec![0u32; a.len()];
    let mut rem: Vec<u32> = Vec::with_capacity(b.len() + 1);
    for i in (0..a.len()).rev() {
        rem.insert(0, a[i]);
        let (mut lo, mut hi) = (0u32, NBASE - 1);
        while lo < hi {
            let mid = (lo + hi).div_ceil(2);
            if cmp_le(&mul_small_le(b, mid), &rem) == Ordering::Greater {
                hi = mid - 1;
            } else {
                lo = mid;
            }
        }
        if lo > 0 {
            sub_in_place_le(&mut rem, &mul_small_le(b, lo));
        }
        while rem.last() == Some(&0) {
            rem.pop();
        }
        quotient[i] = lo;
    }
    while quotient.last() == Some(&0) {
        quotient.pop();
    }
    (quotient, rem)
}

/// `±|a| ± |b|` with the given signs, at the exact scale (display scale 0 for now).
fn add_signed(a: &Numeric, a_neg: bool, b: &Numeric, b_neg: bool) -> Numeric {
    if a.digits.is_empty() {
        let mut r = b.clone();
        r.negative = b_neg && !b.digits.is_empty();
        return r;
    }
    if b.digits.is_empty() {
        let mut r = a.clone();
        r.negative = a_neg && !a.digits.is_empty();
        return r;
    }
    let high = a.weight.max(b.weight) + 1;
    let low = (a.weight - a.digits.len() as i32 + 1).min(b.weight - b.digits.len() as i32 + 1);
    let len = (high - low + 1) as usize;
    let place = |n: &Numeric| -> Vec<i64> {
        let mut v = vec![0i64; len];
        for (i, d) in n.digits.iter().enumerate() {
            let w = n.weight - i as i32;
            v[(high - w) as usize] = i64::from(*d);
        }
        v
    };
    let (va, vb) = (place(a), place(b));
    let (mut res, negative) = if a_neg == b_neg {
        (
            va.iter().zip(&vb).map(|(x, y)| x + y).collect::<Vec<_>>(),
            a_neg,
        )
    } else {
        match cmp_abs(a, b) {
            Ordering::Equal => return Numeric::zero(),
            Ordering::Greater => (va.iter().zip(&vb).map(|(x, y)| x - y).collect(), a_neg),
            Ordering::Less => (vb.iter().zip(&va).map(|(x, y)| x - y).collect(), b_neg),
        }
    };
    let mut carry = 0i64;
    for d in res.iter_mut().rev() {
        let v = *d + carry;
        *d = v.rem_euclid(i64::from(NBASE));
        carry = v.div_euclid(i64::from(NBASE));
    }
    Numeric {
        kind: NumericKind::Finite,
        negative,
        weight: high,
        dscale: 0,
        digits: res.into_iter().map(|d| d as u16).collect(),
    }
    .normalized()
}

/// Compares magnitudes of finite values.
fn cmp_abs(a: &Numeric, b: &Numeric) -> Ordering {
    match (a.digits.is_empty(), b.digits.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Less,
        (false, true) => return Ordering::Greater,
        _ => {}
    }
    a.weight
        .cmp(&b.weight)
        .then_with(|| a.digits.cmp(&b.digits))
}

/// PostgreSQL's `select_div_scale`: enough places for at least 16 significant digits, and
/// never fewer than either operand's display scale.
fn select_div_scale(a: &Numeric, b: &Numeric) -> i32 {
    let (w1, f1) = a.digits.first().map_or((0, 0), |d| (a.weight, *d));
    let (w2, f2) = b.digits.first().map_or((0, 0), |d| (b.weight, *d));
    let mut qweight = w1 - w2;
    if f1 <= f2 {
        qweight -= 1;
    }
    let rscale = MIN_SIG_DIGITS - qweight * DEC_DIGITS;
    rscale
        .max(i32::from(a.dscale))
        .max(i32::from(b.dscale))
        .clamp(0, MAX_DISPLAY_SCALE)
}

impl PartialEq for Numeric {
    fn eq(&self, other: &Numeric) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Numeric {}

impl PartialOrd for Numeric {
    fn partial_cmp(&self, other: &Numeric) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Numeric order: `-Infinity` < negatives < 0 < positives < `Infinity` < NaN; the display
/// scale is ignored (`1.0 = 1.00`).
impl Ord for Numeric {
    fn cmp(&self, other: &Numeric) -> Ordering {
        fn rank(n: &Numeric) -> u8 {
            match n.kind {
                NumericKind::NegInf => 0,
                NumericKind::Finite if n.negative => 1,
                NumericKind::Finite if n.digits.is_empty() => 2,
                NumericKind::Finite => 3,
                NumericKind::PosInf => 4,
                NumericKind::NaN => 5,
            }
        }
        let (ra, rb) = (rank(self), rank(other));
        if ra != rb {
            return ra.cmp(&rb);
        }
        match ra {
            1 => cmp_abs(other, self),
            3 => cmp_abs(self, other),
            _ => Ordering::Equal,
        }
    }
}

impl Hash for Numeric {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.kind.hash(state);
        if self.kind == NumericKind::Finite {
            self.negative.hash(state);
            self.weight.hash(state);
            self.digits.hash(state);
        }
    }
}

/// PostgreSQL's output format: `-12.340`, `0.00`, `NaN`, `Infinity`.
impl fmt::Display for Numeric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            NumericKind::NaN => f.write_str("NaN"),
            NumericKind::PosInf => f.write_str("Infinity"),
            NumericKind::NegInf => f.write_str("-Infinity"),
            NumericKind::Finite => {
                let mut s = String::new();
                if self.negative {
                    s.push('-');
                }
                self.write_decimal(&mut s, self.dscale);
                f.write_str(&s)
            }
        }
    }
}

impl fmt::Debug for Numeric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Numeric({self})")
    }
}

impl std::str::FromStr for Numeric {
    type Err = SqlError;
    fn from_str(s: &str) -> SqlResult<Numeric> {
        Numeric::parse(s)
    }
}

impl From<i64> for Numeric {
    fn from(v: i64) -> Numeric {
        Numeric::from_i64(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::SmallRng, Rng, SeedableRng};

    fn n(s: &str) -> Numeric {
        Numeric::parse(s).unwrap()
    }

    #[test]
    fn parse_and_format_keep_display_scale() {
        for (input, out) in [
            ("-1e3", "-1000"),
            ("12.340", "12.340"),
            ("1.5e-3", "0.0015"),
            ("nan", "NaN"),
            ("  inf ", "Infinity"),
            ("-infinity", "-Infinity"),
            (".5", "0.5"),
            ("5.", "5"),
            ("0.000", "0.000"),
            ("-0.00", "0.00"),
            ("+0012345.6789", "12345.6789"),
            ("1e-7", "0.0000001"),
            (
                "123456789012345678901234567890",
                "123456789012345678901234567890",
            ),
            ("0.00001000", "0.00001000"),
            ("1.23E+2", "123"),
        ] {
            assert_eq!(n(input).to_string(), out, "{input}");
        }
    }

    #[test]
    fn parse_rejects_bad_syntax_with_pg_message() {
        for bad in ["abc", "", "1e", "--1", "1.2.3", "1 2", ".", "e5", "+nan"] {
            let e = Numeric::parse(bad).unwrap_err();
            assert_eq!(e.state, SqlState::INVALID_TEXT_REPRESENTATION, "{bad}");
            assert_eq!(
                e.message,
                format!("invalid input syntax for type numeric: \"{bad}\"")
            );
        }
    }

    #[test]
    fn equality_ignores_display_scale() {
        assert_eq!(n("1.0"), n("1.00"));
        assert_eq!(n("0"), n("-0.000"));
        assert_ne!(n("1.0"), n("1.01"));
        assert_eq!(n("NaN"), n("NaN"));
        let hash = |x: &Numeric| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            x.hash(&mut h);
            h.finish()
        };
        assert_eq!(hash(&n("1.0")), hash(&n("1.0000")));
    }

    #[test]
    fn order_puts_nan_above_infinity() {
        let mut v: Vec<Numeric> = [
            "NaN",
            "1",
            "-Infinity",
            "Infinity",
            "-2.5",
            "0",
            "-2.25",
            "1.5",
            "100",
        ]
        .into_iter()
        .map(n)
        .collect();
        v.sort();
        let s: Vec<String> = v.iter().map(|x| x.to_string()).collect();
        assert_eq!(
            s,
            [
                "-Infinity",
                "-2.5",
                "-2.25",
                "0",
                "1",
                "1.5",
                "100",
                "Infinity",
                "NaN"
            ]
        );
    }

    /// Expected results from PostgreSQL 15.
    #[test]
    fn arithmetic_matches_postgres() {
        let cases: &[(&str, char, &str, &str)] = &[
            ("1", '/', "3", "0.33333333333333333333"),
            ("10", '/', "4", "2.5000000000000000"),
            ("2", '/', "3", "0.66666666666666666667"),
            ("1", '/', "7000", "0.00014285714285714286"),
            ("12345678", '/', "0.001", "12345678000.00000000"),
            (
                "1.0",
                '/',
                "3.00000000000000000000001",
                "0.33333333333333333333333",
            ),
            ("10.5", '%', "3", "1.5"),
            ("10", '%', "3.00", "1.00"),
            ("-7", '%', "3", "-1"),
            ("7.5", '%', "-2", "1.5"),
            ("1.50", '+', "2.1", "3.60"),
            ("1.5", '-', "1.5", "0.0"),
            ("0.1", '-', "0.35", "-0.25"),
            ("99999999", '+', "1", "100000000"),
            ("1.5", '*', "1.5", "2.25"),
            ("-1.50", '*', "2.0", "-3.000"),
            (
                "123456789.123",
                '*',
                "987654321.987",
                "121932631355968601.347401",
            ),
            ("0", '*', "1.25", "0.00"),
            ("-100", '/', "7", "-14.2857142857142857"),
            ("1e20", '/', "3", "33333333333333333333"),
            ("NaN", '+', "1", "NaN"),
            ("Infinity", '-', "Infinity", "NaN"),
            ("Infinity", '*', "-2", "-Infinity"),
            ("5", '/', "Infinity", "0"),
            // Random operands; results from PostgreSQL 15 (3000 such cases were compared).
            ("25e-1", '-', "40858588382567e-11", "-406.08588382567"),
            (
                "95749885582e6",
                '%',
                "49330674584760944e-12",
                "14599.255311707472",
            ),
            (
                "5144e-2",
                '/',
                "9541710065626668854553e9",
                "0.000000000000000000000000000005391067182528311931",
            ),
            (
                "-1501235066566e11",
                '/',
                "059085576578e13",
                "-0.25407809376019050414",
            ),
            (
                "-1069713635911420286e-12",
                '*',
                "-861402e5",
                "92145346540136925.720097200000",
            ),
            (
                "2644180245940859356535e-10",
                '*',
                "-7950765573748525e-13",
                "-210232572702124.92584566292319405360875",
            ),
            (
                "95596e-8",
                '%',
                "-262942066154980851331380e-14",
                "0.00095596000000",
            ),
            (
                "-63302251766689921274e-2",
                '/',
                "-4595829e15",
                "0.00013773848367006240",
            ),
            (
                "-74470173208652377e-1",
                '-',
                "-5633701400527810558000e14",
                "563370140052781055792552982679134762.3",
            ),
            (
                "4125472463303458409e6",
                '/',
                "-89e14",
                "-463536231.83184926",
            ),
            (
                "524214955112747e-7",
                '/',
                "-19705e12",
                "-0.0000000026603144131578127379",
            ),
            ("151817882426559469890e14", '%', "72371e-1", "2822.0"),
        ];
        for (a, op, b, want) in cases {
            let (a, b) = (n(a), n(b));
            let got = match op {
                '+' => a.add(&b),
                '-' => a.sub(&b),
                '*' => a.mul(&b),
                '/' => a.div(&b),
                '%' => a.rem(&b),
                _ => unreachable!(),
            }
            .unwrap();
            assert_eq!(got.to_string(), *want, "{a} {op} {b}");
        }
    }

    #[test]
    fn division_by_zero_is_22012() {
        assert_eq!(
            n("1").div(&n("0")).unwrap_err().state,
            SqlState::DIVISION_BY_ZERO
        );
        assert_eq!(
            n("1").rem(&n("0.0")).unwrap_err().state,
            SqlState::DIVISION_BY_ZERO
        );
        assert!(n("NaN").div(&n("0")).unwrap().is_nan());
    }

    #[test]
    fn round_half_away_from_zero() {
        assert_eq!(n("2.5").round_to_scale(0).to_string(), "3");
        assert_eq!(n("-2.5").round_to_scale(0).to_string(), "-3");
        assert_eq!(n("1234.5678").round_to_scale(-2).to_string(), "1200");
        assert_eq!(n("0.5").round_to_scale(0).to_string(), "1");
        assert_eq!(n("9.995").round_to_scale(2).to_string(), "10.00");
        assert_eq!(n("0.004").round_to_scale(2).to_string(), "0.00");
        assert_eq!(n("1.5").round_to_scale(3).to_string(), "1.500");
        assert_eq!(n("-1.7").trunc_to_scale(0).to_string(), "-1");
    }

    #[test]
    fn typmod_rounds_and_reports_overflow_like_postgres() {
        assert_eq!(
            n("123.456").apply_typmod(5, 2).unwrap().to_string(),
            "123.46"
        );
        assert_eq!(n("0.5").apply_typmod(1, 1).unwrap().to_string(), "0.5");
        assert_eq!(n("1").apply_typmod(5, 2).unwrap().to_string(), "1.00");
        let e = n("999.995").apply_typmod(5, 2).unwrap_err();
        assert_eq!(e.state, SqlState::NUMERIC_VALUE_OUT_OF_RANGE);
        assert_eq!(e.message, "numeric field overflow");
        assert_eq!(
            e.detail.as_deref(),
            Some(
                "A field with precision 5, scale 2 must round to an absolute value less than 10^3."
            )
        );
        let e = n("5").apply_typmod(1, 1).unwrap_err();
        assert_eq!(
            e.detail.as_deref(),
            Some("A field with precision 1, scale 1 must round to an absolute value less than 1.")
        );
        let e = n("inf").apply_typmod(5, 2).unwrap_err();
        assert_eq!(
            e.detail.as_deref(),
            Some("A field with precision 5, scale 2 cannot hold an infinite value.")
        );
        assert!(n("NaN").apply_typmod(3, 1).unwrap().is_nan());
        // PostgreSQL 15 allows a scale above the precision: numeric(2,3) holds |x| < 0.1.
        assert_eq!(n("0.0123").apply_typmod(2, 3).unwrap().to_string(), "0.012");
        let e = n("0.1").apply_typmod(2, 3).unwrap_err();
        assert_eq!(
            e.detail.as_deref(),
            Some("A field with precision 2, scale 3 must round to an absolute value less than 10^-1.")
        );
    }

    #[test]
    fn float_conversions_match_postgres() {
        assert_eq!(Numeric::from_f64(0.1).to_string(), "0.1");
        assert_eq!(Numeric::from_f64(1.5e-5).to_string(), "0.000015");
        assert_eq!(
            Numeric::from_f64(123456789.123).to_string(),
            "123456789.123"
        );
        assert_eq!(
            Numeric::from_f64(1e100).to_string(),
            format!("1{}", "0".repeat(100))
        );
        assert_eq!(Numeric::from_f32(0.1).to_string(), "0.1");
        assert_eq!(Numeric::from_f64(f64::NAN).to_string(), "NaN");
        assert_eq!(
            Numeric::from_f64(f64::NEG_INFINITY).to_string(),
            "-Infinity"
        );
        assert_eq!(n("0.1").to_f64(), 0.1);
        assert_eq!(n("-1e400").to_f64(), f64::NEG_INFINITY);
    }

    #[test]
    fn integer_conversions_round_half_away() {
        assert_eq!(n("2.5").to_i64(), Some(3));
        assert_eq!(n("-2.5").to_i64(), Some(-3));
        assert_eq!(n("9223372036854775807").to_i64(), Some(i64::MAX));
        assert_eq!(n("9223372036854775808").to_i64(), None);
        assert_eq!(n("-9223372036854775808").to_i64(), Some(i64::MIN));
        assert_eq!(n("NaN").to_i64(), None);
        for v in [0, 1, -1, 9999, 10000, -10001, i64::MAX, i64::MIN] {
            assert_eq!(Numeric::from_i64(v).to_i64(), Some(v));
            assert_eq!(Numeric::from_i64(v).to_string(), v.to_string());
        }
    }

    /// Random integers scaled by powers of ten: the decimal arithmetic must agree with i128
    /// arithmetic on the scaled integers.
    #[test]
    fn random_arithmetic_agrees_with_integer_arithmetic() {
        let mut rng = SmallRng::seed_from_u64(7);
        for _ in 0..2000 {
            let a: i64 = rng.gen_range(-1_000_000_000_000..1_000_000_000_000);
            let b: i64 = rng.gen_range(-1_000_000_000..1_000_000_000);
            let sa: u32 = rng.gen_range(0..6);
            let sb: u32 = rng.gen_range(0..6);
            let na = Numeric::from_i64(a)
                .div_to_scale(&Numeric::from_i64(10i64.pow(sa)), sa as i32)
                .unwrap();
            let nb = Numeric::from_i64(b)
                .div_to_scale(&Numeric::from_i64(10i64.pow(sb)), sb as i32)
                .unwrap();
            assert_eq!(na.dscale(), sa as u16);
            // Work at the common scale s: a × 10^(s − sa), b × 10^(s − sb).
            let s = sa.max(sb);
            let ia = i128::from(a) * 10i128.pow(s - sa);
            let ib = i128::from(b) * 10i128.pow(s - sb);
            let scale = |x: i128, s: u32| {
                Numeric::from_i128(x)
                    .div_to_scale(&Numeric::from_i128(10i128.pow(s)), s as i32)
                    .unwrap()
            };
            assert_eq!(na.add(&nb).unwrap(), scale(ia + ib, s));
            assert_eq!(na.sub(&nb).unwrap(), scale(ia - ib, s));
            assert_eq!(na.mul(&nb).unwrap(), scale(ia * ib, 2 * s));
            if b != 0 {
                assert_eq!(na.rem(&nb).unwrap(), scale(ia % ib, s));
                // Quotient truncated to 0 places agrees with integer division.
                let q = na.div_to_scale(&nb, 30).unwrap().trunc_to_scale(0);
                assert_eq!(q, Numeric::from_i128(ia / ib), "{na} / {nb}");
            }
            // Text round trip.
            assert_eq!(
                Numeric::parse(&na.to_string()).unwrap().to_string(),
                na.to_string()
            );
        }
    }
}
