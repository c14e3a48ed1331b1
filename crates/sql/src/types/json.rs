//! `json` and `jsonb`. A `json` value is its text, validated and kept as written (as
//! PostgreSQL keeps it); a `jsonb` value is parsed: object keys unique (the last of duplicates
//! wins) and ordered as PostgreSQL orders them (shorter keys first, then bytewise), numbers
//! exact (`numeric`), and printed as PostgreSQL prints it (`{"a": 1, "b": [1, 2]}`).

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use super::Numeric;
use crate::error::{SqlError, SqlResult, SqlState};

/// A parsed JSON document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Json {
    /// null
    Null,
    /// true / false
    Bool(bool),
    /// a number, exact
    Number(Numeric),
    /// a string
    String(String),
    /// an array
    Array(Vec<Json>),
    /// an object: for jsonb, keys unique and in jsonb order
    Object(Vec<(String, Json)>),
}

/// How deeply arrays and objects may nest.
const MAX_DEPTH: usize = 200;

fn invalid(kind: &str, input: &str, detail: &str) -> SqlError {
    SqlError::new(
        SqlState::INVALID_TEXT_REPRESENTATION,
        format!("invalid input syntax for type {kind}"),
    )
    .with_detail(format!("{detail} (in \"{}\")", truncate(input)))
}

fn truncate(input: &str) -> String {
    input.chars().take(60).collect()
}

/// Parses JSON text (RFC 8259, as PostgreSQL accepts it); `kind` names the type in errors.
pub fn parse(input: &str, kind: &str) -> SqlResult<Json> {
    let mut parser = Parser {
        text: input,
        at: 0,
        kind,
        depth: 0,
    };
    let value = parser.value()?;
    parser.skip_space();
    if parser.at != input.len() {
        return Err(parser.error("Expected end of input, but found more."));
    }
    Ok(value)
}

/// The top-level members of a JSON text, as PostgreSQL's `json` operators see them: for an
/// object, each key with the exact text of its value; for an array, each element's text.
pub fn raw_members(input: &str) -> SqlResult<Vec<(Option<String>, &str)>> {
    let mut parser = Parser {
        text: input,
        at: 0,
        kind: "json",
        depth: 0,
    };
    parser.skip_space();
    let mut members = Vec::new();
    let (open, close) = match parser.peek() {
        Some(b'{') => (b'{', b'}'),
        Some(b'[') => (b'[', b']'),
        _ => return Ok(members),
    };
    parser.at += 1;
    parser.skip_space();
    if parser.peek() == Some(close) {
        return Ok(members);
    }
    loop {
        parser.skip_space();
        let key = if open == b'{' {
            let key = parser.string()?;
            parser.skip_space();
            parser.expect(b':')?;
            parser.skip_space();
            Some(key)
        } else {
            None
        };
        let start = parser.at;
        parser.value()?;
        members.push((key, &input[start..parser.at]));
        parser.skip_space();
        match parser.next() {
            Some(b',') => {}
            Some(c) if c == close => return Ok(members),
            _ => return Err(parser.error("Expected \",\" or the end of the container.")),
        }
    }
}

struct Parser<'a> {
    text: &'a str,
    at: usize,
    kind: &'a str,
    depth: usize,
}

impl Parser<'_> {
    fn error(&self, detail: &str) -> SqlError {
        if self.at >= self.text.len() {
            return invalid(self.kind, self.text, "The input string ended unexpectedly.");
        }
        invalid(self.kind, self.text, detail)
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek();
        self.at += usize::from(c.is_some());
        c
    }

    fn skip_space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn expect(&mut self, wanted: u8) -> SqlResult<()> {
        match self.next() {
            Some(c) if c == wanted => Ok(()),
            _ => Err(self.error(&format!("Expected \"{}\".", wanted as char))),
        }
    }

    fn value(&mut self) -> SqlResult<Json> {
        self.skip_space();
        self.depth += 1;
        // Parsing and every walk over a document recurse per level: bound the nesting well
        // inside a worker thread's stack.
        if self.depth > MAX_DEPTH {
            return Err(SqlError::new(
                SqlState("54001"),
                "stack depth limit exceeded",
            ));
        }
        let value = match self.peek() {
            Some(b'{') => {
                self.at += 1;
                let mut members = Vec::new();
                self.skip_space();
                if self.peek() == Some(b'}') {
                    self.at += 1;
                } else {
                    loop {
                        self.skip_space();
                        let key = self.string()?;
                        self.skip_space();
                        self.expect(b':')?;
                        let value = self.value()?;
                        members.push((key, value));
                        self.skip_space();
                        match self.next() {
                            Some(b',') => {}
                            Some(b'}') => break,
                            _ => return Err(self.error("Expected \",\" or \"}\".")),
                        }
                    }
                }
                Json::Object(members)
            }
            Some(b'[') => {
                self.at += 1;
                let mut items = Vec::new();
                self.skip_space();
                if self.peek() == Some(b']') {
                    self.at += 1;
                } else {
                    loop {
                        items.push(self.value()?);
                        self.skip_space();
                        match self.next() {
                            Some(b',') => {}
                            Some(b']') => break,
                            _ => return Err(self.error("Expected \",\" or \"]\".")),
                        }
                    }
                }
                Json::Array(items)
            }
            Some(b'"') => Json::String(self.string()?),
            Some(b't') => self.word("true", Json::Bool(true))?,
            Some(b'f') => self.word("false", Json::Bool(false))?,
            Some(b'n') => self.word("null", Json::Null)?,
            Some(b'-' | b'0'..=b'9') => self.number()?,
            Some(_) => return Err(self.error("Token is invalid.")),
            None => return Err(self.error("The input string ended unexpectedly.")),
        };
        self.depth -= 1;
        Ok(value)
    }

    fn word(&mut self, word: &str, value: Json) -> SqlResult<Json> {
        if self.text[self.at..].starts_with(word) {
            self.at += word.len();
            Ok(value)
        } else {
            Err(self.error("Token is invalid."))
        }
    }

    fn number(&mut self) -> SqlResult<Json> {
        let start = self.at;
        let bytes = self.text.as_bytes();
        let digits = |p: &mut usize| {
            let from = *p;
            while bytes.get(*p).is_some_and(u8::is_ascii_digit) {
                *p += 1;
            }
            *p > from
        };
        let mut p = self.at;
        if bytes.get(p) == Some(&b'-') {
            p += 1;
        }
        let leading_zero = bytes.get(p) == Some(&b'0');
        if !digits(&mut p) || (leading_zero && p - start > 1 + usize::from(bytes[start] == b'-')) {
            return Err(self.error("Token is invalid."));
        }
        if bytes.get(p) == Some(&b'.') {
            p += 1;
            if !digits(&mut p) {
                return Err(self.error("Token is invalid."));
            }
        }
        if matches!(bytes.get(p), Some(b'e' | b'E')) {
            p += 1;
            if matches!(bytes.get(p), Some(b'+' | b'-')) {
                p += 1;
            }
            if !digits(&mut p) {
                return Err(self.error("Token is invalid."));
            }
        }
        self.at = p;
        Ok(Json::Number(Numeric::parse(&self.text[start..p])?))
    }

    fn string(&mut self) -> SqlResult<String> {
        self.expect(b'"')?;
        let mut out = String::new();
        loop {
            let rest = &self.text[self.at..];
            let Some(c) = rest.chars().next() else {
                return Err(self.error("The input string ended unexpectedly."));
            };
            self.at += c.len_utf8();
            match c {
                '"' => return Ok(out),
                '\\' => {
                    let escaped = self
                        .next()
                        .ok_or_else(|| self.error("The input string ended unexpectedly."))?;
                    out.push(match escaped {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode_escape()?,
                        _ => return Err(self.error("Escape sequence is invalid.")),
                    });
                }
                c if (c as u32) < 0x20 => {
                    return Err(self.error("Character with value 0x00-0x1F must be escaped."))
                }
                c => out.push(c),
            }
        }
    }

    fn unicode_escape(&mut self) -> SqlResult<char> {
        let unit = |p: &mut Self| -> SqlResult<u32> {
            let hex = p
                .text
                .get(p.at..p.at + 4)
                .ok_or_else(|| p.error("\"\\u\" must be followed by four hexadecimal digits."))?;
            let v = u32::from_str_radix(hex, 16)
                .map_err(|_| p.error("\"\\u\" must be followed by four hexadecimal digits."))?;
            p.at += 4;
            Ok(v)
        };
        let first = unit(self)?;
        if first == 0 {
            return Err(
                SqlError::new(SqlState("22P05"), "unsupported Unicode escape sequence")
                    .with_detail("\\u0000 cannot be converted to text."),
            );
        }
        let code = if (0xD800..0xDC00).contains(&first) {
            if !self.text[self.at..].starts_with("\\u") {
                return Err(self.error("Unicode high surrogate must not follow a high surrogate."));
            }
            self.at += 2;
            let second = unit(self)?;
            0x10000 + ((first - 0xD800) << 10) + (second.wrapping_sub(0xDC00) & 0x3FF)
        } else {
            first
        };
        char::from_u32(code)
            .ok_or_else(|| self.error("Unicode low surrogate must follow a high surrogate."))
    }
}

/// jsonb's key order: shorter keys first, then bytewise.
fn key_order(a: &str, b: &str) -> Ordering {
    a.len()
        .cmp(&b.len())
        .then_with(|| a.as_bytes().cmp(b.as_bytes()))
}

impl Json {
    /// As jsonb holds it: every object's keys unique (the last wins) and in jsonb order.
    pub fn normalized(self) -> Json {
        match self {
            Json::Array(items) => Json::Array(items.into_iter().map(Json::normalized).collect()),
            Json::Object(members) => {
                let mut unique: Vec<(String, Json)> = Vec::with_capacity(members.len());
                for (key, value) in members {
                    let value = value.normalized();
                    match unique.iter_mut().find(|(k, _)| *k == key) {
                        Some(slot) => slot.1 = value,
                        None => unique.push((key, value)),
                    }
                }
                unique.sort_by(|(a, _), (b, _)| key_order(a, b));
                Json::Object(unique)
            }
            other => other,
        }
    }

    /// Approximate bytes held on the heap (for memory accounting).
    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of::<Json>()
            + match self {
                Json::String(s) => s.len(),
                Json::Number(n) => n.heap_bytes(),
                Json::Array(items) => items.iter().map(Json::heap_bytes).sum(),
                Json::Object(members) => {
                    members.iter().map(|(k, v)| k.len() + v.heap_bytes()).sum()
                }
                _ => 0,
            }
    }

    /// Hashes so that documents [`Json::compare`] finds equal hash equal (numbers by value).
    pub fn hash_into(&self, state: &mut impl std::hash::Hasher) {
        use std::hash::Hash;
        match self {
            Json::Null => 0u8.hash(state),
            Json::Bool(b) => (1u8, b).hash(state),
            Json::Number(n) => {
                2u8.hash(state);
                super::ops::hash_key(&super::Value::Numeric(n.clone()), state);
            }
            Json::String(s) => (3u8, s).hash(state),
            Json::Array(items) => {
                (4u8, items.len()).hash(state);
                items.iter().for_each(|item| item.hash_into(state));
            }
            Json::Object(members) => {
                (5u8, members.len()).hash(state);
                for (key, value) in members {
                    key.hash(state);
                    value.hash_into(state);
                }
            }
        }
    }

    /// jsonb's text form: `{"a": 1, "b": [1, 2]}`.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, ": ", ", ");
        out
    }

    /// The text used in keys: jsonb text with numbers without trailing fraction zeros, so
    /// that documents equal as jsonb (`1` and `1.0`) have equal keys.
    pub fn to_key_text(&self) -> String {
        let canonical = self.canonical_numbers();
        canonical.to_text()
    }

    fn canonical_numbers(&self) -> Json {
        match self {
            Json::Number(n) => {
                let text = n.to_string();
                let trimmed = match text.contains('.') {
                    true => text.trim_end_matches('0').trim_end_matches('.').to_string(),
                    false => text,
                };
                Json::Number(Numeric::parse(&trimmed).unwrap_or_else(|_| n.clone()))
            }
            Json::Array(items) => Json::Array(items.iter().map(Json::canonical_numbers).collect()),
            Json::Object(members) => Json::Object(
                members
                    .iter()
                    .map(|(k, v)| (k.clone(), v.canonical_numbers()))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    /// row_to_json's form: `{"a":1,"b":[1,2]}`.
    pub fn to_compact_text(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, ":", ",");
        out
    }

    /// The form json_build_object and json_agg produce for `json`: `{"a" : 1}`, `[1, 2]`.
    pub fn to_json_text(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, " : ", ", ");
        out
    }

    fn write(&self, out: &mut String, colon: &str, comma: &str) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Number(n) => out.push_str(&n.to_string()),
            Json::String(s) => write_string(s, out),
            Json::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(comma);
                    }
                    item.write(out, colon, comma);
                }
                out.push(']');
            }
            Json::Object(members) => {
                out.push('{');
                for (i, (key, value)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push_str(comma);
                    }
                    write_string(key, out);
                    out.push_str(colon);
                    value.write(out, colon, comma);
                }
                out.push('}');
            }
        }
    }

    /// `jsonb_typeof`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "boolean",
            Json::Number(_) => "number",
            Json::String(_) => "string",
            Json::Array(_) => "array",
            Json::Object(_) => "object",
        }
    }

    /// `-> 'key'`.
    pub fn member(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(members) => members.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// `-> n` (from 0; negative counts from the end).
    pub fn element(&self, index: i64) -> Option<&Json> {
        match self {
            Json::Array(items) => {
                let len = i64::try_from(items.len()).ok()?;
                let index = if index < 0 { len + index } else { index };
                usize::try_from(index).ok().and_then(|i| items.get(i))
            }
            _ => None,
        }
    }

    /// `->>`'s text: a string unquoted, null as SQL NULL, anything else as jsonb text.
    pub fn as_text(&self) -> Option<String> {
        match self {
            Json::Null => None,
            Json::String(s) => Some(s.clone()),
            other => Some(other.to_text()),
        }
    }

    /// `@>`: every member or element of `other` is found in `self`, recursively (a scalar
    /// array contains a scalar, as in PostgreSQL).
    pub fn contains(&self, other: &Json) -> bool {
        match (self, other) {
            (Json::Object(mine), Json::Object(theirs)) => theirs
                .iter()
                .all(|(key, value)| mine.iter().any(|(k, v)| k == key && v.contains(value))),
            (Json::Array(mine), Json::Array(theirs)) => theirs
                .iter()
                .all(|wanted| mine.iter().any(|item| item.contains(wanted))),
            (Json::Array(mine), scalar) if !matches!(scalar, Json::Object(_)) => {
                mine.iter().any(|item| item == scalar)
            }
            (a, b) => a == b,
        }
    }

    /// `?`: a top-level key, or a string element of a top-level array.
    pub fn has_key(&self, key: &str) -> bool {
        match self {
            Json::Object(members) => members.iter().any(|(k, _)| k == key),
            Json::Array(items) => items
                .iter()
                .any(|item| *item == Json::String(key.to_string())),
            Json::String(s) => s == key,
            _ => false,
        }
    }

    /// jsonb order: by type (null < string < number < boolean < array < object, as
    /// PostgreSQL's jsonb btree), then by value.
    pub fn compare(&self, other: &Json) -> Ordering {
        let rank = |j: &Json| match j {
            Json::Null => 0,
            Json::String(_) => 1,
            Json::Number(_) => 2,
            Json::Bool(_) => 3,
            Json::Array(_) => 4,
            Json::Object(_) => 5,
        };
        match (self, other) {
            (Json::String(a), Json::String(b)) => a.cmp(b),
            (Json::Number(a), Json::Number(b)) => a.cmp(b),
            (Json::Bool(a), Json::Bool(b)) => a.cmp(b),
            (Json::Array(a), Json::Array(b)) => a.len().cmp(&b.len()).then_with(|| {
                a.iter()
                    .zip(b)
                    .map(|(x, y)| x.compare(y))
                    .find(|o| *o != Ordering::Equal)
                    .unwrap_or(Ordering::Equal)
            }),
            (Json::Object(a), Json::Object(b)) => a.len().cmp(&b.len()).then_with(|| {
                a.iter()
                    .zip(b)
                    .map(|((ka, va), (kb, vb))| key_order(ka, kb).then_with(|| va.compare(vb)))
                    .find(|o| *o != Ordering::Equal)
                    .unwrap_or(Ordering::Equal)
            }),
            (a, b) => rank(a).cmp(&rank(b)),
        }
    }
}

/// A JSON string literal with PostgreSQL's escapes.
pub fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jsonb(text: &str) -> String {
        parse(text, "jsonb").unwrap().normalized().to_text()
    }

    #[test]
    fn jsonb_normalizes_as_postgresql() {
        assert_eq!(
            jsonb(r#"{"bb": 1, "a": [1, 2.50, {"c": null}], "bb": true}"#),
            r#"{"a": [1, 2.50, {"c": null}], "bb": true}"#
        );
        assert_eq!(jsonb(r#" "a\"\u00e9\n" "#), r#""a\"é\n""#);
        assert_eq!(jsonb("1e3"), "1000");
        for bad in ["", "{", "[1,]", "01", "{'a': 1}", "tru", "\"\\x\"", "1 2"] {
            assert!(parse(bad, "json").is_err(), "{bad}");
        }
    }

    #[test]
    fn containment_and_keys() {
        let doc = parse(r#"{"a": [1, 2, 3], "b": {"c": "d"}}"#, "jsonb").unwrap();
        assert!(doc.contains(&parse(r#"{"a": [3, 1]}"#, "jsonb").unwrap()));
        assert!(doc.contains(&parse(r#"{"b": {}}"#, "jsonb").unwrap()));
        assert!(!doc.contains(&parse(r#"{"a": [4]}"#, "jsonb").unwrap()));
        assert!(doc.has_key("b") && !doc.has_key("c"));
    }

    #[test]
    fn raw_members_keep_the_text() {
        let members = raw_members(r#"{"a" :  [1,  2], "b": "x"}"#).unwrap();
        assert_eq!(members[0], (Some("a".to_string()), "[1,  2]"));
        assert_eq!(members[1], (Some("b".to_string()), r#""x""#));
    }
}
