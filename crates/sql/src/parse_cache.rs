//! A session's cache of parsed statements, keyed by their text with the literals blanked out.
//!
//! Clients that do not prepare statements (pgbench's simple protocol, ORMs that interpolate
//! values client-side) send the same statements again and again with different numbers and
//! strings in them, and parsing was a quarter of the CPU such a statement costs. The cache
//! keeps the syntax tree of each recent text *shape* and answers a text of that shape by
//! copying the tree and putting the new literals into it.
//!
//! Why the copy equals what the parser would build from the new text:
//! - The key is the text, token by token, with the characters of each number and
//!   single-quoted string literal replaced by a placeholder (newlines kept), so two texts
//!   with one key have the same non-literal tokens, the same literal kinds, and every token
//!   at the same line and column (the tree records positions).
//! - The parser sees only tokens, and a literal's characters decide no token around it (the
//!   tokenizer looks back only at words and periods). So the parser runs the same way on
//!   both texts, except for what it makes of the literals' contents.
//! - A tree is cached only if every literal token became exactly one [`ValueWithSpan`] of
//!   its own, whose value is the token's: then nothing else in the tree came from a
//!   literal's contents (a literal the parser reads as a length, as in `varchar(10)`, or as
//!   a name, as the alias in `'a' 'b'`, keeps its text out of the cache).
//! - Where the parser tries one reading and falls back to another, a number's contents can
//!   decide which succeeds (`varchar(1.5) "x"` is a call, `varchar(100) "x"` a typed
//!   string): the key says whether each number reads as a 64-bit integer, the only test
//!   the parser applies to a number's contents.
//!
//! Debug builds check every answer from the cache against a fresh parse.

use std::collections::{HashMap, VecDeque};
use std::ops::ControlFlow;

use sqlparser::ast::{Statement, Value, ValueWithSpan, VisitMut, VisitorMut};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer};

/// How many text shapes a session keeps (oldest dropped first).
const CAPACITY: usize = 64;
/// Longer texts (bulk INSERTs, scripts) are parsed each time: they rarely repeat.
const MAX_TEXT_BYTES: usize = 4096;

/// Parsed statements by text shape; see the module documentation. Each shape may also carry
/// something its user works out from the tree (the session keeps a plan), dropped with it.
pub(crate) struct ParseCache<Extra = ()> {
    trees: HashMap<String, Cached<Extra>>,
    /// Keys in insertion order, for eviction.
    order: VecDeque<String>,
}

struct Cached<Extra> {
    statements: Vec<Statement>,
    extra: Option<Extra>,
}

impl<Extra> Default for ParseCache<Extra> {
    fn default() -> Self {
        ParseCache {
            trees: HashMap::new(),
            order: VecDeque::new(),
        }
    }
}

/// A text's shape: its cache key, its literals, and its tokens until a parse takes them.
pub(crate) struct Shape {
    key: String,
    literals: Vec<Literal>,
    tokens: Vec<TokenWithSpan>,
    /// The parse found the shape in the cache: a text of this shape parsed before.
    seen_before: bool,
}

impl Shape {
    /// The shape of `sql`; `None` for a text the cache does not keep (too long, holding a
    /// NUL, or not tokenizable: the parser says why).
    pub(crate) fn of(sql: &str) -> Option<Shape> {
        if sql.len() > MAX_TEXT_BYTES || sql.contains('\0') {
            return None;
        }
        let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql)
            .with_unescape(true)
            .tokenize_with_location()
            .ok()?;
        let (key, literals) = shape(sql, &tokens);
        Some(Shape {
            key,
            literals,
            tokens,
            seen_before: false,
        })
    }

    /// Whether a text of this shape was parsed (and its tree kept) before this one.
    pub(crate) fn seen_before(&self) -> bool {
        self.seen_before
    }

    /// The literals' values, in text order.
    pub(crate) fn literals(&self) -> impl ExactSizeIterator<Item = &Value> {
        self.literals.iter().map(|literal| &literal.value)
    }
}

impl<Extra> ParseCache<Extra> {
    /// Parses `sql` as `Parser::parse_sql` with PostgreSQL's dialect would.
    #[cfg(test)]
    fn parse(&mut self, sql: &str) -> Result<Vec<Statement>, ParserError> {
        match Shape::of(sql) {
            Some(mut shape) => self.parse_shaped(sql, &mut shape),
            None => Parser::parse_sql(&PostgreSqlDialect {}, sql),
        }
    }

    /// [`ParseCache::parse`] of `sql`, whose shape is `shape` (its tokens are used up).
    pub(crate) fn parse_shaped(
        &mut self,
        sql: &str,
        shape: &mut Shape,
    ) -> Result<Vec<Statement>, ParserError> {
        if let Some(cached) = self.trees.get(&shape.key) {
            shape.seen_before = true;
            let mut statements = cached.statements.clone();
            // Filled trees hold every literal as a value of its own (checked when cached).
            let _ = statements.visit(&mut Literals::new(&shape.literals, Mode::Substitute));
            debug_assert_eq!(
                format!("{:?}", Ok::<_, ParserError>(&statements)),
                format!("{:?}", Parser::parse_sql(&PostgreSqlDialect {}, sql)),
                "the parse cache answered {sql:?} unlike the parser"
            );
            return Ok(statements);
        }
        let mut statements = Parser::new(&PostgreSqlDialect {})
            .with_tokens_with_locations(std::mem::take(&mut shape.tokens))
            .parse_statements()?;
        let mut check = Literals::new(&shape.literals, Mode::Check);
        let _ = statements.visit(&mut check);
        if check.all_found() {
            self.insert(shape.key.clone(), statements.clone());
        }
        Ok(statements)
    }

    /// `statement` (parsed from a text of `shape`, which the cache keeps) with each literal
    /// replaced by a parameter, `$1` for the first in the text and so on; `None` if the
    /// cache does not keep the shape (then a literal might not be a value of its own).
    pub(crate) fn parametrized(&self, shape: &Shape, statement: &Statement) -> Option<Statement> {
        if !self.trees.contains_key(&shape.key) {
            return None;
        }
        let mut statement = statement.clone();
        let _ = statement.visit(&mut Literals::new(&shape.literals, Mode::Parametrize));
        Some(statement)
    }

    /// What the user keeps for `shape`, if the cache keeps the shape.
    pub(crate) fn extra(&self, shape: &Shape) -> Option<&Extra> {
        self.trees.get(&shape.key)?.extra.as_ref()
    }

    /// Keeps `extra` with `shape` (if the cache keeps the shape), replacing what was there.
    pub(crate) fn set_extra(&mut self, shape: &Shape, extra: Option<Extra>) {
        if let Some(cached) = self.trees.get_mut(&shape.key) {
            cached.extra = extra;
        }
    }

    fn insert(&mut self, key: String, statements: Vec<Statement>) {
        if self.order.len() >= CAPACITY {
            if let Some(oldest) = self.order.pop_front() {
                self.trees.remove(&oldest);
            }
        }
        self.order.push_back(key.clone());
        let cached = Cached {
            statements,
            extra: None,
        };
        self.trees.insert(key, cached);
    }
}

/// A literal token: where it starts and ends, and the value the parser makes of it.
struct Literal {
    start: Location,
    end: Location,
    value: Value,
}

/// The cache key of `sql` (see the module documentation) and its literals in text order.
fn shape(sql: &str, tokens: &[TokenWithSpan]) -> (String, Vec<Literal>) {
    let mut key = String::with_capacity(sql.len() + tokens.len());
    let mut literals = Vec::new();
    let starts = token_offsets(sql, tokens);
    for (i, token) in tokens.iter().enumerate() {
        let end = starts.get(i + 1).copied().unwrap_or(sql.len());
        let text = sql.get(starts[i]..end).unwrap_or_default();
        // A separator per token: the same characters split differently are another shape.
        key.push('\u{2}');
        let (kind, value) = match &token.token {
            // Where the parser reads a number as an integer (a type's length, an array
            // index), whether it can decides which of its tries succeeds: part of the shape.
            Token::Number(digits, long) => (
                match (digits.parse::<u64>().is_ok(), digits.parse::<i64>().is_ok()) {
                    (true, true) => 'I',
                    (true, false) => 'U',
                    (false, true) => 'i',
                    (false, false) => 'N',
                },
                Value::Number(digits.clone(), *long),
            ),
            Token::SingleQuotedString(text) => ('S', Value::SingleQuotedString(text.clone())),
            _ => {
                key.push_str(text);
                continue;
            }
        };
        key.push('\0');
        key.push(kind);
        key.extend(text.chars().map(|c| if c == '\n' { '\n' } else { '\u{1}' }));
        literals.push(Literal {
            start: token.span.start,
            end: token.span.end,
            value,
        });
    }
    (key, literals)
}

/// The byte offset in `sql` where each token starts. The tokenizer covers the whole text
/// (whitespace and comments are tokens too), so token `i` is `sql[starts[i]..starts[i + 1]]`.
fn token_offsets(sql: &str, tokens: &[TokenWithSpan]) -> Vec<usize> {
    let mut starts = Vec::with_capacity(tokens.len());
    let mut next = tokens.iter().map(|t| t.span.start).peekable();
    let (mut line, mut column) = (1, 1);
    for (offset, c) in sql.char_indices().chain([(sql.len(), '\0')]) {
        while next.peek() == Some(&Location { line, column }) {
            starts.push(offset);
            next.next();
        }
        if c == '\n' {
            (line, column) = (line + 1, 1);
        } else {
            column += 1;
        }
    }
    // The end-of-input token, if any, starts past the text.
    debug_assert!(
        starts.len() + 1 >= tokens.len(),
        "token starts out of step with {sql:?}"
    );
    starts.resize(tokens.len(), sql.len());
    starts
}

/// Visits a tree's values that came from literal tokens, matched by position: checks them
/// against the tokens before a tree is cached, replaces them with a new text's literals, or
/// replaces them with parameters.
struct Literals<'a> {
    literals: &'a [Literal],
    mode: Mode,
    /// How many times each literal was found as a value (checking only).
    found: Vec<u32>,
    /// A literal's value differed from its token's.
    mismatch: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Check,
    Substitute,
    Parametrize,
}

impl<'a> Literals<'a> {
    fn new(literals: &'a [Literal], mode: Mode) -> Self {
        Literals {
            literals,
            mode,
            found: vec![0; literals.len()],
            mismatch: false,
        }
    }

    fn all_found(&self) -> bool {
        !self.mismatch && self.found.iter().all(|&n| n == 1)
    }
}

impl VisitorMut for Literals<'_> {
    type Break = ();

    fn pre_visit_value(&mut self, value: &mut ValueWithSpan) -> ControlFlow<()> {
        let at = |l: &Location| (l.line, l.column);
        let Ok(i) = self
            .literals
            .binary_search_by_key(&at(&value.span.start), |l| at(&l.start))
        else {
            return ControlFlow::Continue(());
        };
        let literal = &self.literals[i];
        match self.mode {
            Mode::Substitute => value.value = literal.value.clone(),
            Mode::Parametrize => value.value = Value::Placeholder(format!("${}", i + 1)),
            Mode::Check if value.span.end == literal.end => {
                self.found[i] += 1;
                self.mismatch |= value.value != literal.value;
            }
            // A value that starts at a literal but spans more (adjacent strings joined).
            Mode::Check => self.mismatch = true,
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(cache: &mut ParseCache, sql: &str) -> Vec<Statement> {
        cache.parse(sql).expect("parses")
    }

    #[test]
    fn a_repeated_shape_is_answered_from_the_cache_with_its_own_literals() {
        let mut cache = ParseCache::<()>::default();
        let first = "SELECT abalance FROM pgbench_accounts WHERE aid = 12345 AND name = 'ab'";
        let second = "SELECT abalance FROM pgbench_accounts WHERE aid = 54321 AND name = 'cd'";
        parse(&mut cache, first);
        assert_eq!(cache.trees.len(), 1);
        let tree = parse(&mut cache, second);
        assert_eq!(
            cache.trees.len(),
            1,
            "the second text has the first's shape"
        );
        assert_eq!(
            tree,
            Parser::parse_sql(&PostgreSqlDialect {}, second).unwrap()
        );
        assert!(tree[0].to_string().contains("aid = 54321 AND name = 'cd'"));
    }

    #[test]
    fn literals_of_another_length_or_kind_are_another_shape() {
        let mut cache = ParseCache::<()>::default();
        parse(&mut cache, "SELECT 1 + 2");
        parse(&mut cache, "SELECT 10 + 2");
        parse(&mut cache, "SELECT '1' + 2");
        parse(&mut cache, "SELECT 1 +\n2");
        assert_eq!(cache.trees.len(), 4);
        // Which reading succeeds depends on whether the number is an integer.
        let call = parse(&mut cache, "SELECT varchar(1.5) \"x\"");
        let typed = parse(&mut cache, "SELECT varchar(100) \"x\"");
        assert_eq!(
            typed,
            Parser::parse_sql(&PostgreSqlDialect {}, "SELECT varchar(100) \"x\"").unwrap()
        );
        assert_ne!(call[0].to_string(), typed[0].to_string());
    }

    #[test]
    fn literals_the_parser_reads_as_more_than_values_are_never_cached() {
        let mut cache = ParseCache::<()>::default();
        // A type's length or precision, a string read as a column alias.
        for sql in [
            "SELECT CAST(x AS varchar(10)) FROM t",
            "SELECT 'a' 'b'",
            "CREATE TABLE t (c numeric(10, 2))",
        ] {
            parse(&mut cache, sql);
            assert!(cache.trees.is_empty(), "{sql} was cached");
        }
        let tree = parse(&mut cache, "SELECT CAST(x AS varchar(20)) FROM t");
        assert!(tree[0].to_string().contains("VARCHAR(20)"));
    }

    #[test]
    fn a_parametrized_statement_has_a_parameter_for_each_literal_in_text_order() {
        let mut cache = ParseCache::<()>::default();
        let sql = "UPDATE t SET b = b + -5, s = 'x' WHERE k = 12 AND c = CAST(x AS varchar(10))";
        let mut shape = Shape::of(sql).expect("shaped");
        let tree = cache.parse_shaped(sql, &mut shape).expect("parses");
        // varchar's length is no value: the shape is not kept, nor parametrized.
        assert!(cache.parametrized(&shape, &tree[0]).is_none());
        let sql = "UPDATE t SET b = b + -5, s = 'x' WHERE k = 12";
        let mut shape = Shape::of(sql).expect("shaped");
        let tree = cache.parse_shaped(sql, &mut shape).expect("parses");
        let parametrized = cache.parametrized(&shape, &tree[0]).expect("kept");
        assert_eq!(
            parametrized.to_string(),
            "UPDATE t SET b = b + -$1, s = $2 WHERE k = $3"
        );
    }

    #[test]
    fn the_cache_keeps_its_capacity() {
        let mut cache = ParseCache::<()>::default();
        for i in 0..CAPACITY + 10 {
            parse(&mut cache, &format!("SELECT c{i} FROM t WHERE k = 1"));
        }
        assert_eq!(cache.trees.len(), CAPACITY);
        assert_eq!(cache.order.len(), CAPACITY);
    }

    #[test]
    fn errors_and_odd_texts_are_parsed_as_the_parser_does() {
        let mut cache = ParseCache::<()>::default();
        for sql in [
            "SELECT FROM WHERE",
            "SELECT 'unterminated",
            "",
            ";",
            "SELECT é, 'é' -- x\n",
        ] {
            let ours = cache.parse(sql).map_err(|e| e.to_string());
            let theirs = Parser::parse_sql(&PostgreSqlDialect {}, sql).map_err(|e| e.to_string());
            assert_eq!(ours, theirs, "{sql:?}");
        }
    }
}
