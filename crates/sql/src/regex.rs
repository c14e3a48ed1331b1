//! PostgreSQL's pattern matching beyond LIKE: POSIX regular expressions (`~`, `~*`, `!~`,
//! `!~*`, `regexp_replace`) and `SIMILAR TO`, on `regex-lite` (already built for the wire
//! layer, so no new compile cost). Patterns are compiled once per statement in practice: the
//! last few compiled patterns are cached per thread.

use std::cell::RefCell;

use regex_lite::Regex;

use crate::error::{SqlError, SqlResult, SqlState};

thread_local! {
    static CACHE: RefCell<Vec<(String, Regex)>> = const { RefCell::new(Vec::new()) };
}

const CACHED: usize = 8;

/// `pattern` compiled (case-insensitively if asked); 2201B for an invalid one.
pub fn compile(pattern: &str, case_insensitive: bool) -> SqlResult<Regex> {
    // As in PostgreSQL's default mode, `.` matches a newline too.
    let source = if case_insensitive {
        format!("(?si){pattern}")
    } else {
        format!("(?s){pattern}")
    };
    if let Some(found) = CACHE.with(|c| {
        c.borrow()
            .iter()
            .find(|(s, _)| *s == source)
            .map(|(_, r)| r.clone())
    }) {
        return Ok(found);
    }
    let regex = Regex::new(&source).map_err(|e| {
        SqlError::new(
            SqlState("2201B"),
            format!("invalid regular expression: {e}"),
        )
    })?;
    CACHE.with(|c| {
        let mut cache = c.borrow_mut();
        if cache.len() >= CACHED {
            cache.remove(0);
        }
        cache.push((source, regex.clone()));
    });
    Ok(regex)
}

/// A SIMILAR TO pattern as an anchored regular expression (PostgreSQL's similar_escape):
/// `%` is `.*`, `_` is `.`, the escape character (default `\`) quotes the next one, and the
/// regular-expression operators SIMILAR TO shares (`| * + ? { } ( ) [ ]`) keep their meaning.
pub fn similar_to_regex(pattern: &str, escape: Option<char>) -> String {
    let escape = escape.or(Some('\\'));
    let mut out = String::from("^(?:");
    let mut chars = pattern.chars();
    let mut in_brackets = false;
    while let Some(c) = chars.next() {
        if Some(c) == escape {
            if let Some(next) = chars.next() {
                out.push_str(&regex_lite::escape(&next.to_string()));
            }
            continue;
        }
        if in_brackets {
            if c == ']' {
                in_brackets = false;
            }
            out.push(c);
            continue;
        }
        match c {
            '%' => out.push_str(".*"),
            '_' => out.push('.'),
            '[' => {
                in_brackets = true;
                out.push(c);
            }
            '|' | '*' | '+' | '?' | '{' | '}' | '(' | ')' => out.push(c),
            other => out.push_str(&regex_lite::escape(&other.to_string())),
        }
    }
    out.push_str(")$");
    out
}

/// A `regexp_replace` replacement in PostgreSQL's syntax (`\1` a group, `\&` the whole
/// match, `\\` a backslash) in regex-lite's (`${1}`, `${0}`, `$$` for a dollar).
pub fn replacement(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(d @ '1'..='9') => out.push_str(&format!("${{{d}}}")),
                Some('&') => out.push_str("${0}"),
                Some(other) => out.push(other),
                None => out.push('\\'),
            },
            '$' => out.push_str("$$"),
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similar_to_translates_as_postgresql() {
        let matches = |value: &str, pattern: &str| {
            compile(&similar_to_regex(pattern, None), false)
                .unwrap()
                .is_match(value)
        };
        assert!(matches("abc", "abc"));
        assert!(matches("abc", "a%"));
        assert!(!matches("abc", "b%"));
        assert!(matches("abc", "%(b|d)%"));
        assert!(matches("a.c", "a.c"));
        assert!(!matches("abc", "a.c"));
        assert!(matches("aaa", "a{3}"));
        assert!(matches("50%", "50\\%"));
        assert!(matches("b", "[a-c]"));
    }

    #[test]
    fn replacements_read_backreferences() {
        let re = compile("(\\w+) (\\w+)", false).unwrap();
        assert_eq!(
            re.replace("hello world", replacement("\\2 \\1").as_str()),
            "world hello"
        );
        assert_eq!(replacement("$5 & \\\\"), "$$5 & \\");
    }
}
