//! COPY's data formats: text, CSV and binary, read (COPY FROM STDIN) and written (COPY TO
//! STDOUT) as PostgreSQL 15 does, with its option checks and its errors (22P04 for the
//! data's shape, the type's own error for a value, each with the input line as CONTEXT).
//!
//! The wire carries the bytes: the connection collects a COPY FROM's CopyData (up to 1 GiB)
//! and the statement reads rows from them one at a time, inserting each before reading the
//! next (`CopyReader`); COPY TO's rows go out one CopyData each
//! ([`CopyFormat::encode_row`]).
//!
//! Shortcut: COPY FROM's data is held whole until CopyDone (not streamed into the
//! transaction as it arrives), and the transaction's own limits bound it.

use sqlparser::ast;

use crate::error::{SqlError, SqlResult, SqlState};
use crate::types::timezone::TimeZone;
use crate::types::{binary, text, DataType, Value};

/// The signature that starts binary COPY data.
const BINARY_SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

/// Which of COPY's formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyKind {
    /// Tab-separated lines with backslash escapes.
    Text,
    /// Comma-separated values with quoting.
    Csv,
    /// PostgreSQL's binary tuples.
    Binary,
}

/// Which columns CSV output quotes whatever their value (FORCE_QUOTE).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
enum ForceQuote {
    #[default]
    None,
    All,
    Columns(Vec<usize>),
}

/// A COPY statement's format and options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopyFormat {
    /// The format.
    pub kind: CopyKind,
    delimiter: u8,
    null: String,
    header: bool,
    quote: u8,
    escape: u8,
    force_quote: ForceQuote,
    /// Positions (in the copied columns) whose unquoted NULL string is an empty string.
    force_not_null: Vec<usize>,
    /// Positions whose quoted NULL string is NULL too.
    force_null: Vec<usize>,
}

fn conflicting() -> SqlError {
    SqlError::syntax("conflicting or redundant options")
}

fn bad_copy(message: impl Into<String>) -> SqlError {
    SqlError::new(SqlState::BAD_COPY_FILE_FORMAT, message)
}

fn single_byte(c: char, what: &str) -> SqlResult<u8> {
    u8::try_from(u32::from(c))
        .ok()
        .filter(u8::is_ascii)
        .ok_or_else(|| {
            SqlError::unsupported(format!("COPY {what} must be a single one-byte character"))
        })
}

impl CopyFormat {
    /// The format a COPY statement's options describe, checked as PostgreSQL checks them.
    /// `to` is COPY TO; `columns` are the copied columns' names (FORCE_* name them).
    pub(crate) fn from_options(
        options: &[ast::CopyOption],
        legacy: &[ast::CopyLegacyOption],
        to: bool,
        columns: &[String],
    ) -> SqlResult<CopyFormat> {
        #[derive(Default)]
        struct Given {
            kind: Option<CopyKind>,
            delimiter: Option<char>,
            null: Option<String>,
            header: Option<bool>,
            quote: Option<char>,
            escape: Option<char>,
            force_quote: Option<Vec<ast::Ident>>,
            force_not_null: Option<Vec<ast::Ident>>,
            force_null: Option<Vec<ast::Ident>>,
        }
        fn set<T>(slot: &mut Option<T>, value: T) -> SqlResult<()> {
            if slot.replace(value).is_some() {
                return Err(conflicting());
            }
            Ok(())
        }
        let mut given = Given::default();
        let mut freeze = None;
        for option in options {
            use ast::CopyOption as O;
            match option {
                O::Format(name) => {
                    let kind = match name.value.to_lowercase().as_str() {
                        "text" => CopyKind::Text,
                        "csv" => CopyKind::Csv,
                        "binary" => CopyKind::Binary,
                        other => {
                            return Err(SqlError::new(
                                SqlState::INVALID_PARAMETER_VALUE,
                                format!("COPY format \"{other}\" not recognized"),
                            ))
                        }
                    };
                    set(&mut given.kind, kind)?;
                }
                // Rows are visible when the COPY commits either way.
                O::Freeze(on) => set(&mut freeze, *on)?,
                O::Delimiter(c) => set(&mut given.delimiter, *c)?,
                O::Null(s) => set(&mut given.null, s.clone())?,
                O::Header(on) => set(&mut given.header, *on)?,
                O::Quote(c) => set(&mut given.quote, *c)?,
                O::Escape(c) => set(&mut given.escape, *c)?,
                O::ForceQuote(columns) => set(&mut given.force_quote, columns.clone())?,
                O::ForceNotNull(columns) => set(&mut given.force_not_null, columns.clone())?,
                O::ForceNull(columns) => set(&mut given.force_null, columns.clone())?,
                O::Encoding(name) => {
                    let name = name.to_lowercase().replace(['-', '_'], "");
                    if name != "utf8" && name != "unicode" {
                        return Err(SqlError::unsupported(format!(
                            "COPY encoding \"{name}\" is not supported; the database encoding is UTF8"
                        )));
                    }
                }
            }
        }
        for option in legacy {
            use ast::CopyLegacyOption as L;
            match option {
                L::Binary => set(&mut given.kind, CopyKind::Binary)?,
                L::Delimiter(c) => set(&mut given.delimiter, *c)?,
                L::Null(s) => set(&mut given.null, s.clone())?,
                L::Header => set(&mut given.header, true)?,
                L::Csv(csv_options) => {
                    set(&mut given.kind, CopyKind::Csv)?;
                    for csv_option in csv_options {
                        use ast::CopyLegacyCsvOption as C;
                        match csv_option {
                            C::Header => set(&mut given.header, true)?,
                            C::Quote(c) => set(&mut given.quote, *c)?,
                            C::Escape(c) => set(&mut given.escape, *c)?,
                            C::ForceQuote(columns) => set(&mut given.force_quote, columns.clone())?,
                            C::ForceNotNull(columns) => {
                                set(&mut given.force_not_null, columns.clone())?
                            }
                        }
                    }
                }
                other => {
                    return Err(SqlError::syntax(format!(
                        "syntax error at or near \"{other}\""
                    )))
                }
            }
        }

        let kind = given.kind.unwrap_or(CopyKind::Text);
        let csv = kind == CopyKind::Csv;
        if kind == CopyKind::Binary {
            for (is_given, what) in [
                (given.delimiter.is_some(), "DELIMITER"),
                (given.null.is_some(), "NULL"),
            ] {
                if is_given {
                    return Err(SqlError::syntax(format!(
                        "cannot specify {what} in BINARY mode"
                    )));
                }
            }
            if given.header.is_some() {
                return Err(SqlError::unsupported(
                    "cannot specify HEADER in BINARY mode",
                ));
            }
        }
        let delimiter = match given.delimiter {
            Some(c) => single_byte(c, "delimiter")?,
            None if csv => b',',
            None => b'\t',
        };
        let null = given
            .null
            .unwrap_or_else(|| if csv { String::new() } else { "\\N".into() });
        let invalid = |message: String| SqlError::new(SqlState::INVALID_PARAMETER_VALUE, message);
        if delimiter == b'\n' || delimiter == b'\r' {
            return Err(invalid(
                "COPY delimiter cannot be newline or carriage return".into(),
            ));
        }
        if null.contains(['\n', '\r']) {
            return Err(invalid(
                "COPY null representation cannot use newline or carriage return".into(),
            ));
        }
        if kind == CopyKind::Text && b"\\.abcdefghijklmnopqrstuvwxyz0123456789".contains(&delimiter)
        {
            return Err(invalid(format!(
                "COPY delimiter cannot be \"{}\"",
                delimiter as char
            )));
        }
        let csv_only = |is_given: bool, what: &str| {
            if is_given && !csv {
                Err(SqlError::unsupported(format!(
                    "COPY {what} available only in CSV mode"
                )))
            } else {
                Ok(())
            }
        };
        csv_only(given.quote.is_some(), "quote")?;
        csv_only(given.escape.is_some(), "escape")?;
        csv_only(given.force_quote.is_some(), "force quote")?;
        csv_only(given.force_not_null.is_some(), "force not null")?;
        csv_only(given.force_null.is_some(), "force null")?;
        let quote = match given.quote {
            Some(c) => single_byte(c, "quote")?,
            None => b'"',
        };
        let escape = match given.escape {
            Some(c) => single_byte(c, "escape")?,
            None => quote,
        };
        if csv && delimiter == quote {
            return Err(invalid("COPY delimiter and quote must be different".into()));
        }
        if null.as_bytes().contains(&delimiter) {
            return Err(invalid(
                "COPY delimiter must not appear in the NULL specification".into(),
            ));
        }
        if csv && null.as_bytes().contains(&quote) {
            return Err(invalid(
                "CSV quote character must not appear in the NULL specification".into(),
            ));
        }
        let only = |is_given: bool, what: &str, direction: &str| {
            if is_given {
                Err(SqlError::unsupported(format!(
                    "COPY {what} only available using COPY {direction}"
                )))
            } else {
                Ok(())
            }
        };
        only(given.force_quote.is_some() && !to, "force quote", "TO")?;
        only(
            given.force_not_null.is_some() && to,
            "force not null",
            "FROM",
        )?;
        only(given.force_null.is_some() && to, "force null", "FROM")?;
        let positions = |names: Option<Vec<ast::Ident>>, what: &str| -> SqlResult<Vec<usize>> {
            let mut positions = Vec::new();
            for name in names.unwrap_or_default() {
                let name = crate::plan::ident_name(&name);
                match columns.iter().position(|c| *c == name) {
                    Some(p) => positions.push(p),
                    None => {
                        return Err(SqlError::new(
                            SqlState("42P10"),
                            format!("{what} column \"{name}\" not referenced by COPY"),
                        ))
                    }
                }
            }
            Ok(positions)
        };
        let force_quote = match given.force_quote {
            None => ForceQuote::None,
            // sqlparser reads FORCE_QUOTE * as a column named "*".
            Some(names) if names.len() == 1 && names[0].value == "*" => ForceQuote::All,
            Some(names) => ForceQuote::Columns(positions(Some(names), "FORCE_QUOTE")?),
        };
        Ok(CopyFormat {
            kind,
            delimiter,
            null,
            header: given.header.unwrap_or(false),
            quote,
            escape,
            force_quote,
            force_not_null: positions(given.force_not_null, "FORCE_NOT_NULL")?,
            force_null: positions(given.force_null, "FORCE_NULL")?,
        })
    }

    /// Whether the data is binary (the format code of CopyIn/CopyOutResponse).
    pub fn is_binary(&self) -> bool {
        self.kind == CopyKind::Binary
    }

    // ---- COPY TO ----------------------------------------------------------------------

    /// What goes out before the rows: the header line, or the binary signature.
    pub fn start(&self, names: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        match self.kind {
            CopyKind::Binary => {
                out.extend_from_slice(BINARY_SIGNATURE);
                out.extend_from_slice(&0i32.to_be_bytes()); // flags
                out.extend_from_slice(&0i32.to_be_bytes()); // header extension length
            }
            _ if self.header => {
                for (i, name) in names.iter().enumerate() {
                    if i > 0 {
                        out.push(self.delimiter);
                    }
                    match self.kind {
                        CopyKind::Csv => self.put_csv(name, false, names.len() == 1, &mut out),
                        _ => self.put_text(name, &mut out),
                    }
                }
                out.push(b'\n');
            }
            _ => {}
        }
        out
    }

    /// What goes out after the rows: the binary trailer.
    pub fn end(&self) -> Vec<u8> {
        match self.kind {
            CopyKind::Binary => (-1i16).to_be_bytes().to_vec(),
            _ => Vec::new(),
        }
    }

    /// Appends one row, typed by `types`, to `out`.
    pub fn encode_row(
        &self,
        row: &[Value],
        types: &[DataType],
        zone: &TimeZone,
        out: &mut Vec<u8>,
    ) {
        let type_of = |i: usize| types.get(i).filter(|t| **t != DataType::Unknown);
        if self.kind == CopyKind::Binary {
            let count = i16::try_from(row.len()).unwrap_or(i16::MAX);
            out.extend_from_slice(&count.to_be_bytes());
            let mut field = Vec::new();
            for (i, value) in row.iter().enumerate() {
                if value.is_null() {
                    out.extend_from_slice(&(-1i32).to_be_bytes());
                    continue;
                }
                field.clear();
                match type_of(i) {
                    Some(ty) => binary::encode_binary_typed(value, ty, &mut field),
                    None => binary::encode_binary(value, &mut field),
                }
                let length = i32::try_from(field.len()).unwrap_or(i32::MAX);
                out.extend_from_slice(&length.to_be_bytes());
                out.extend_from_slice(&field);
            }
            return;
        }
        for (i, value) in row.iter().enumerate() {
            if i > 0 {
                out.push(self.delimiter);
            }
            if value.is_null() {
                out.extend_from_slice(self.null.as_bytes());
                continue;
            }
            let formatted = match type_of(i) {
                Some(ty) => text::format_text_typed(value, ty, zone),
                None => text::format_text(value, zone),
            };
            if self.kind == CopyKind::Csv {
                let forced = match &self.force_quote {
                    ForceQuote::None => false,
                    ForceQuote::All => true,
                    ForceQuote::Columns(columns) => columns.contains(&i),
                };
                self.put_csv(&formatted, forced, row.len() == 1, out);
            } else {
                self.put_text(&formatted, out);
            }
        }
        out.push(b'\n');
    }

    fn put_text(&self, value: &str, out: &mut Vec<u8>) {
        for &b in value.as_bytes() {
            let escaped = match b {
                b'\\' => Some(b'\\'),
                b'\n' => Some(b'n'),
                b'\r' => Some(b'r'),
                b'\t' => Some(b't'),
                0x08 => Some(b'b'),
                0x0c => Some(b'f'),
                0x0b => Some(b'v'),
                _ if b == self.delimiter => Some(b),
                _ => None,
            };
            match escaped {
                Some(e) => out.extend_from_slice(&[b'\\', e]),
                None => out.push(b),
            }
        }
    }

    fn put_csv(&self, value: &str, forced: bool, single_column: bool, out: &mut Vec<u8>) {
        let bytes = value.as_bytes();
        // A value equal to the NULL string is quoted so that it reads back as itself, as is
        // a lone column's `\.`, which would read as the end of the data.
        let quoted = forced
            || value == self.null
            || (single_column && value == "\\.")
            || bytes
                .iter()
                .any(|&b| b == self.delimiter || b == self.quote || b == b'\n' || b == b'\r');
        if !quoted {
            out.extend_from_slice(bytes);
            return;
        }
        out.push(self.quote);
        for &b in bytes {
            if b == self.quote || b == self.escape {
                out.push(self.escape);
            }
            out.push(b);
        }
        out.push(self.quote);
    }

    // ---- COPY FROM --------------------------------------------------------------------

    /// Reads `data` into rows of `columns` (name, type), in the columns' order, one at a
    /// time (see [`CopyReader`]).
    pub(crate) fn reader<'a>(
        &'a self,
        data: &'a [u8],
        columns: &'a [(String, DataType)],
        table: &'a str,
        zone: &'a TimeZone,
    ) -> CopyReader<'a> {
        CopyReader {
            format: self,
            columns,
            table,
            zone,
            source: match self.kind {
                CopyKind::Binary => Source::Binary(Binary { data, at: 0 }),
                _ => Source::Lines(Lines::new(data, self)),
            },
            line: 0,
            text: None,
            started: false,
        }
    }

    /// Every row of `data` (see [`CopyFormat::reader`]).
    #[cfg(test)]
    fn decode(
        &self,
        data: &[u8],
        columns: &[(String, DataType)],
        table: &str,
        zone: &TimeZone,
    ) -> SqlResult<Vec<Vec<Value>>> {
        let mut reader = self.reader(data, columns, table, zone);
        let mut rows = Vec::new();
        while let Some(row) = reader.next_row() {
            rows.push(row?);
        }
        Ok(rows)
    }

    /// A text or CSV line's row.
    fn line_row(&self, line: &[u8], reader: &CopyReader<'_>) -> SqlResult<Vec<Value>> {
        let columns = reader.columns;
        let fields = match self.kind {
            CopyKind::Csv => self.csv_fields(line),
            _ => Ok(self.text_fields(line)),
        }?;
        if fields.len() > columns.len() {
            return Err(bad_copy("extra data after last expected column"));
        }
        // Column by column, as PostgreSQL: a bad value before a missing one is reported.
        let mut fields = fields.into_iter();
        let mut row = Vec::with_capacity(columns.len());
        for (i, (name, ty)) in columns.iter().enumerate() {
            let Some(field) = fields.next() else {
                return Err(bad_copy(format!("missing data for column \"{name}\"")));
            };
            let field = match field {
                // Not matched against the NULL string: the text itself.
                Field::Null if self.force_not_null.contains(&i) => {
                    Field::Value(self.null.as_bytes().to_vec())
                }
                Field::Quoted(bytes)
                    if self.force_null.contains(&i) && bytes == self.null.as_bytes() =>
                {
                    Field::Null
                }
                other => other,
            };
            let bytes = match field {
                Field::Null => {
                    row.push(Value::Null);
                    continue;
                }
                Field::Value(bytes) | Field::Quoted(bytes) => bytes,
            };
            let text = std::str::from_utf8(&bytes)
                .ok()
                .filter(|text| !text.contains('\0'))
                .ok_or_else(|| {
                    let bad = match std::str::from_utf8(&bytes) {
                        Err(e) => bytes[e.valid_up_to()],
                        Ok(_) => 0,
                    };
                    SqlError::new(
                        SqlState::CHARACTER_NOT_IN_REPERTOIRE,
                        format!("invalid byte sequence for encoding \"UTF8\": 0x{bad:02x}"),
                    )
                })?;
            let value = text::parse_text(ty, text, reader.zone).map_err(|e| {
                e.with_context(format!(
                    "COPY {}, line {}, column {name}: \"{text}\"",
                    reader.table, reader.line
                ))
            })?;
            row.push(value);
        }
        Ok(row)
    }

    /// A text-format line's fields, de-escaped; a field spelled as the NULL string is NULL.
    fn text_fields(&self, line: &[u8]) -> Vec<Field> {
        let mut fields = Vec::new();
        let mut at = 0;
        loop {
            let start = at;
            let mut value = Vec::new();
            while at < line.len() && line[at] != self.delimiter {
                let b = line[at];
                at += 1;
                if b != b'\\' || at == line.len() {
                    value.push(b);
                    continue;
                }
                let c = line[at];
                at += 1;
                match c {
                    b'0'..=b'7' => {
                        let mut code = u32::from(c - b'0');
                        for _ in 0..2 {
                            match line.get(at) {
                                Some(&d @ b'0'..=b'7') => {
                                    code = code * 8 + u32::from(d - b'0');
                                    at += 1;
                                }
                                _ => break,
                            }
                        }
                        value.push((code & 0xff) as u8);
                    }
                    b'x' if line.get(at).is_some_and(u8::is_ascii_hexdigit) => {
                        let mut code = 0u8;
                        for _ in 0..2 {
                            match line.get(at).and_then(|d| (*d as char).to_digit(16)) {
                                Some(d) => {
                                    code = code * 16 + d as u8;
                                    at += 1;
                                }
                                None => break,
                            }
                        }
                        value.push(code);
                    }
                    b'b' => value.push(0x08),
                    b'f' => value.push(0x0c),
                    b'n' => value.push(b'\n'),
                    b'r' => value.push(b'\r'),
                    b't' => value.push(b'\t'),
                    b'v' => value.push(0x0b),
                    other => value.push(other),
                }
            }
            // The NULL string is matched against the field as written, before de-escaping.
            fields.push(if &line[start..at] == self.null.as_bytes() {
                Field::Null
            } else {
                Field::Value(value)
            });
            if at >= line.len() {
                return fields;
            }
            at += 1; // the delimiter
        }
    }

    /// A CSV record's fields: quotes may open and close anywhere in a field; an unquoted
    /// field spelled as the NULL string is NULL.
    fn csv_fields(&self, record: &[u8]) -> SqlResult<Vec<Field>> {
        let mut fields = Vec::new();
        let mut at = 0;
        loop {
            let start = at;
            let mut value = Vec::new();
            let mut quoted = false;
            let mut in_quote = false;
            while at < record.len() {
                let b = record[at];
                if in_quote {
                    if b == self.escape
                        && at + 1 < record.len()
                        && (record[at + 1] == self.quote || record[at + 1] == self.escape)
                        && (self.escape != self.quote || record[at + 1] == self.quote)
                    {
                        value.push(record[at + 1]);
                        at += 2;
                        continue;
                    }
                    if b == self.quote {
                        in_quote = false;
                    } else {
                        value.push(b);
                    }
                } else if b == self.delimiter {
                    break;
                } else if b == self.quote {
                    in_quote = true;
                    quoted = true;
                } else {
                    value.push(b);
                }
                at += 1;
            }
            if in_quote {
                return Err(bad_copy("unterminated CSV quoted field"));
            }
            fields.push(if !quoted && &record[start..at] == self.null.as_bytes() {
                Field::Null
            } else if quoted {
                Field::Quoted(value)
            } else {
                Field::Value(value)
            });
            if at >= record.len() {
                return Ok(fields);
            }
            at += 1;
        }
    }
}

/// One field of a text or CSV line.
enum Field {
    Null,
    Value(Vec<u8>),
    /// A CSV field with quotes (never the NULL string, unless FORCE_NULL).
    Quoted(Vec<u8>),
}

/// Splits text or CSV data into lines: a line ends at the first line ending's style (`\n`,
/// `\r\n` or `\r`), except where escaped (text) or quoted (CSV); `\.` ends the data.
struct Lines<'a> {
    data: &'a [u8],
    at: usize,
    format: &'a CopyFormat,
    /// The line ending seen first, which every line must use.
    ending: Option<&'static [u8]>,
    done: bool,
}

impl<'a> Lines<'a> {
    fn new(data: &'a [u8], format: &'a CopyFormat) -> Self {
        Lines {
            data,
            at: 0,
            format,
            ending: None,
            done: false,
        }
    }

    /// The next line without its ending.
    fn next_line(&mut self) -> Option<SqlResult<&'a [u8]>> {
        if self.done || self.at >= self.data.len() {
            return None;
        }
        let data = self.data;
        let start = self.at;
        let csv = self.format.kind == CopyKind::Csv;
        let mut in_quote = false;
        let mut i = start;
        while i < data.len() {
            let b = data[i];
            if csv {
                if in_quote {
                    if b == self.format.escape
                        && self.format.escape != self.format.quote
                        && i + 1 < data.len()
                    {
                        i += 2;
                        continue;
                    }
                    if b == self.format.quote {
                        in_quote = false;
                    }
                    i += 1;
                    continue;
                }
                if b == self.format.quote {
                    in_quote = true;
                    i += 1;
                    continue;
                }
                // `\.` alone on a line ends CSV data.
                if b == b'\\' && i == start && data.get(i + 1) == Some(&b'.') {
                    let after = &data[i + 2..];
                    if after.is_empty() || after.starts_with(b"\n") || after.starts_with(b"\r") {
                        self.done = true;
                        return None;
                    }
                }
            } else if b == b'\\' {
                match data.get(i + 1) {
                    // `\.` ends text data; what came before it on the line is a last line.
                    Some(b'.') => {
                        let after = &data[i + 2..];
                        if !(after.is_empty()
                            || after.starts_with(b"\n")
                            || after.starts_with(b"\r"))
                        {
                            self.done = true;
                            let error = bad_copy("end-of-copy marker corrupt");
                            return Some(Err(error));
                        }
                        let marker_ending: &[u8] = if after.starts_with(b"\r\n") {
                            b"\r\n"
                        } else if after.starts_with(b"\r") {
                            b"\r"
                        } else {
                            b"\n"
                        };
                        if !after.is_empty()
                            && self.ending.is_some_and(|ending| ending != marker_ending)
                        {
                            self.done = true;
                            let error = bad_copy(
                                "end-of-copy marker does not match previous newline style",
                            );
                            return Some(Err(error));
                        }
                        self.done = true;
                        return (i > start).then_some(Ok(&data[start..i]));
                    }
                    Some(_) => {
                        i += 2;
                        continue;
                    }
                    None => {
                        i += 1;
                        continue;
                    }
                }
            }
            if b == b'\n' || b == b'\r' {
                let ending: &'static [u8] = if b == b'\r' {
                    if data.get(i + 1) == Some(&b'\n') {
                        b"\r\n"
                    } else {
                        b"\r"
                    }
                } else {
                    b"\n"
                };
                let expected = *self.ending.get_or_insert(ending);
                if ending != expected {
                    self.done = true;
                    // The stray byte: a newline, or a carriage return.
                    let newline = b == b'\n' || expected == b"\r";
                    let (message, hint) = match (newline, csv) {
                        (true, false) => (
                            "literal newline found in data",
                            "Use \"\\n\" to represent newline.",
                        ),
                        (true, true) => (
                            "literal newline found in data",
                            "Use quoted CSV field to represent newline.",
                        ),
                        (false, false) => (
                            "literal carriage return found in data",
                            "Use \"\\r\" to represent carriage return.",
                        ),
                        (false, true) => (
                            "literal carriage return found in data",
                            "Use quoted CSV field to represent carriage return.",
                        ),
                    };
                    return Some(Err(bad_copy(message).with_hint(hint)));
                }
                self.at = i + ending.len();
                return Some(Ok(&data[start..i]));
            }
            i += 1;
        }
        // An unterminated quote runs to the end of the data: the field reports it.
        self.at = data.len();
        Some(Ok(&data[start..]))
    }
}

/// Where a [`CopyReader`] reads from.
enum Source<'a> {
    Lines(Lines<'a>),
    Binary(Binary<'a>),
}

/// Reads COPY data one row at a time, so that an error names the row's line, and rows
/// before it are processed first (as PostgreSQL does: their defaults, such as `nextval`, are
/// drawn).
pub(crate) struct CopyReader<'a> {
    format: &'a CopyFormat,
    columns: &'a [(String, DataType)],
    table: &'a str,
    zone: &'a TimeZone,
    source: Source<'a>,
    /// The line (text, CSV) or tuple (binary) last read, from 1.
    line: u64,
    /// That line's text (empty for binary).
    text: Option<&'a [u8]>,
    started: bool,
}

impl CopyReader<'_> {
    /// The next row, `None` at the end of the data.
    pub(crate) fn next_row(&mut self) -> Option<SqlResult<Vec<Value>>> {
        let row = match &mut self.source {
            Source::Binary(binary) => {
                if !self.started {
                    self.started = true;
                    if let Err(e) = binary.header() {
                        return Some(Err(e.with_context(format!("COPY {}, line 0", self.table))));
                    }
                }
                self.line += 1;
                binary
                    .row(self.columns, self.table, self.line)
                    .transpose()?
            }
            Source::Lines(lines) => {
                let mut line = lines.next_line()?;
                self.line += 1;
                if self.line == 1 && self.format.header {
                    line = lines.next_line()?;
                    self.line += 1;
                }
                match line {
                    Ok(text) => {
                        self.text = Some(text);
                        self.format.line_row(text, self)
                    }
                    // A line that could not be read is not shown (as in PostgreSQL).
                    Err(e) => {
                        self.text = None;
                        Err(e)
                    }
                }
            }
        };
        Some(row.map_err(|e| e.with_context(self.context())))
    }

    /// CONTEXT for an error in the row last read: `COPY t, line 3: "..."`.
    pub(crate) fn context(&self) -> String {
        match self.source {
            Source::Binary(_) => format!("COPY {}, line {}", self.table, self.line),
            Source::Lines(_) => match self.text {
                Some(text) => format!(
                    "COPY {}, line {}: \"{}\"",
                    self.table,
                    self.line,
                    String::from_utf8_lossy(text)
                ),
                None => format!("COPY {}, line {}", self.table, self.line),
            },
        }
    }
}

/// Binary COPY data: the signature, flags and header extension, then tuples until the
/// trailer (-1).
struct Binary<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Binary<'a> {
    fn take(&mut self, n: usize) -> SqlResult<&'a [u8]> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.data.len())
            .ok_or_else(|| bad_copy("unexpected EOF in COPY data"))?;
        let taken = &self.data[self.at..end];
        self.at = end;
        Ok(taken)
    }

    fn i16(&mut self) -> SqlResult<i16> {
        let bytes = self.take(2)?;
        Ok(i16::from_be_bytes([bytes[0], bytes[1]]))
    }

    fn i32(&mut self) -> SqlResult<i32> {
        let bytes = self.take(4)?;
        Ok(i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    fn header(&mut self) -> SqlResult<()> {
        let signature = self
            .take(BINARY_SIGNATURE.len())
            .map_err(|_| bad_copy("COPY file signature not recognized"))?;
        if signature != BINARY_SIGNATURE {
            return Err(bad_copy("COPY file signature not recognized"));
        }
        let flags = self
            .i32()
            .map_err(|_| bad_copy("invalid COPY file header (missing flags)"))?;
        if flags & (1 << 16) != 0 {
            return Err(bad_copy("invalid COPY file header (WITH OIDS)"));
        }
        if flags & !0xffff & !(1 << 16) != 0 {
            return Err(bad_copy("unrecognized critical flags in COPY file header"));
        }
        let extension = self
            .i32()
            .ok()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| bad_copy("invalid COPY file header (missing length)"))?;
        self.take(extension)
            .map_err(|_| bad_copy("invalid COPY file header (wrong length)"))?;
        Ok(())
    }

    /// The next tuple, `None` after the trailer.
    fn row(
        &mut self,
        columns: &[(String, DataType)],
        table: &str,
        line: u64,
    ) -> SqlResult<Option<Vec<Value>>> {
        // Data that stops where a tuple would start ends there (PostgreSQL accepts a missing
        // trailer).
        if self.data.len() - self.at < 2 {
            self.at = self.data.len();
            return Ok(None);
        }
        let count = self.i16()?;
        if count == -1 {
            if self.at < self.data.len() {
                return Err(bad_copy("received copy data after EOF marker"));
            }
            return Ok(None);
        }
        if usize::try_from(count).ok() != Some(columns.len()) {
            return Err(bad_copy(format!(
                "row field count is {count}, expected {}",
                columns.len()
            )));
        }
        let mut row = Vec::with_capacity(columns.len());
        for (name, ty) in columns {
            let at = || format!("COPY {table}, line {line}, column {name}");
            let length = self.i32().map_err(|e| e.with_context(at()))?;
            if length == -1 {
                row.push(Value::Null);
                continue;
            }
            let length = usize::try_from(length)
                .map_err(|_| bad_copy("invalid field size").with_context(at()))?;
            let bytes = self.take(length).map_err(|e| e.with_context(at()))?;
            let value = binary::decode_binary(ty, bytes).map_err(|e| e.with_context(at()))?;
            if matches!(&value, Value::Text(text) if text.contains('\0')) {
                return Err(SqlError::new(
                    SqlState::CHARACTER_NOT_IN_REPERTOIRE,
                    "invalid byte sequence for encoding \"UTF8\": 0x00",
                )
                .with_context(at()));
            }
            row.push(value);
        }
        Ok(Some(row))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format(options: Vec<ast::CopyOption>) -> CopyFormat {
        CopyFormat::from_options(&options, &[], false, &["a".into(), "b".into()])
            .expect("valid options")
    }

    fn read(format: &CopyFormat, data: &str) -> SqlResult<Vec<Vec<Value>>> {
        let columns = [
            ("a".to_string(), DataType::Int4),
            ("b".to_string(), DataType::Text),
        ];
        format.decode(data.as_bytes(), &columns, "t", &TimeZone::utc())
    }

    #[test]
    fn text_lines_unescape_and_stop_at_the_end_marker() {
        let text = format(vec![]);
        let rows = read(&text, "1\ta\\tb\n2\t\\N\n3\t\\\\N\n\\.\nignored").expect("rows");
        assert_eq!(
            rows,
            vec![
                vec![Value::Int4(1), Value::Text("a\tb".into())],
                vec![Value::Int4(2), Value::Null],
                vec![Value::Int4(3), Value::Text("\\N".into())],
            ]
        );
        let crlf = read(&text, "1\tx\r\n2\ty\r\n").expect("CRLF lines");
        assert_eq!(crlf.len(), 2);
        let mixed = read(&text, "1\tx\r\n2\ty\n").expect_err("mixed endings");
        assert_eq!(mixed.state, SqlState::BAD_COPY_FILE_FORMAT);
    }

    #[test]
    fn text_errors_name_the_line_and_column() {
        let text = format(vec![]);
        let extra = read(&text, "1\ta\n2\tb\tc\n").expect_err("extra column");
        assert_eq!(extra.state, SqlState::BAD_COPY_FILE_FORMAT);
        assert_eq!(
            extra.context.as_deref(),
            Some("COPY t, line 2: \"2\tb\tc\"")
        );
        let missing = read(&text, "1\n").expect_err("missing column");
        assert_eq!(missing.message, "missing data for column \"b\"");
        let bad = read(&text, "x\ta\n").expect_err("bad integer");
        assert_eq!(bad.state, SqlState::INVALID_TEXT_REPRESENTATION);
        assert_eq!(
            bad.context.as_deref(),
            Some("COPY t, line 1, column a: \"x\"")
        );
    }

    #[test]
    fn csv_quotes_delimiters_newlines_and_nulls() {
        let csv = format(vec![ast::CopyOption::Format("csv".into())]);
        let rows = read(&csv, "1,\"x,\"\"y\"\"\nz\"\n2,\n3,\"\"\n").expect("rows");
        assert_eq!(
            rows,
            vec![
                vec![Value::Int4(1), Value::Text("x,\"y\"\nz".into())],
                vec![Value::Int4(2), Value::Null],
                vec![Value::Int4(3), Value::Text(String::new())],
            ]
        );
        let open = read(&csv, "1,\"abc\n").expect_err("unterminated");
        assert_eq!(open.message, "unterminated CSV quoted field");
    }

    #[test]
    fn written_rows_read_back_the_same() {
        let types = [DataType::Int4, DataType::Text];
        let rows = vec![
            vec![
                Value::Int4(1),
                Value::Text("tab\there, \"quoted\"\nline\\".into()),
            ],
            vec![Value::Int4(2), Value::Null],
            vec![Value::Null, Value::Text(String::new())],
        ];
        for kind in ["text", "csv", "binary"] {
            let format = format(vec![ast::CopyOption::Format(kind.into())]);
            let mut data = format.start(&["a", "b"]);
            for row in &rows {
                format.encode_row(row, &types, &TimeZone::utc(), &mut data);
            }
            data.extend(format.end());
            let columns = [
                ("a".to_string(), DataType::Int4),
                ("b".to_string(), DataType::Text),
            ];
            let back = format
                .decode(&data, &columns, "t", &TimeZone::utc())
                .expect("reads back");
            assert_eq!(back, rows, "{kind}");
        }
    }

    #[test]
    fn options_are_checked_as_postgresql_checks_them() {
        let check = |options: Vec<ast::CopyOption>| {
            CopyFormat::from_options(&options, &[], false, &["a".into()]).map(|_| ())
        };
        let state = |options| check(options).expect_err("refused").state;
        use ast::CopyOption as O;
        assert_eq!(
            state(vec![O::Format("xml".into())]),
            SqlState::INVALID_PARAMETER_VALUE
        );
        assert_eq!(state(vec![O::Quote('\'')]), SqlState::FEATURE_NOT_SUPPORTED);
        assert_eq!(
            state(vec![O::Format("binary".into()), O::Delimiter(',')]),
            SqlState::SYNTAX_ERROR
        );
        assert_eq!(
            state(vec![O::Delimiter('a')]),
            SqlState::INVALID_PARAMETER_VALUE
        );
        assert_eq!(
            state(vec![O::Header(true), O::Header(false)]),
            SqlState::SYNTAX_ERROR
        );
        assert!(check(vec![
            O::Format("csv".into()),
            O::Delimiter(';'),
            O::Header(true)
        ])
        .is_ok());
    }
}
