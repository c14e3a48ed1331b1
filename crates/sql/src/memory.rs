//! A statement's memory budget.
//!
//! Execution materialises rows in memory (scans, join outputs, hash tables, groups, sort
//! buffers). Every operator charges what it keeps to the statement's [`MemoryBudget`] and
//! gives it back when it drops its input; once what is held passes the limit
//! (`cairn.statement_memory_limit`, default 256MB) the statement fails with SQLSTATE 53200
//! and the session and server carry on. Sizes are estimates (values, vectors and their heap
//! data, not allocator overhead).

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::{SqlError, SqlResult, SqlState};
use crate::types::Value;

/// The setting that bounds one statement's working memory.
pub const SETTING: &str = "cairn.statement_memory_limit";
/// Its default: 256 MB.
pub const DEFAULT_LIMIT: usize = 256 * 1024 * 1024;

/// Memory charged by one statement, against its limit.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: usize,
    used: AtomicUsize,
}

impl MemoryBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Self {
        MemoryBudget {
            limit,
            used: AtomicUsize::new(0),
        }
    }

    /// Records `bytes` more kept for `what`; 53200 once the total passes the limit.
    pub fn charge(&self, bytes: usize, what: &str) -> SqlResult<()> {
        let used = self.used.fetch_add(bytes, Ordering::Relaxed) + bytes;
        if used <= self.limit {
            return Ok(());
        }
        Err(SqlError::new(
            SqlState::OUT_OF_MEMORY,
            "out of memory",
        )
        .with_detail(format!(
            "The statement needed more than {} of working memory ({what}).",
            format_bytes(self.limit)
        ))
        .with_hint(format!(
            "Make the query keep fewer rows (a narrower WHERE, fewer columns, LIMIT), or raise {SETTING}."
        )))
    }

    /// What is charged now: give [`MemoryBudget::reset_to`] it to drop everything charged
    /// after this point at once (a subquery's rows once it has been evaluated).
    pub fn mark(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Gives back everything charged since `mark`.
    pub fn reset_to(&self, mark: usize) {
        let _ = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                Some(used.min(mark))
            });
    }

    /// Bytes that may still be charged before the limit.
    pub fn available(&self) -> usize {
        self.limit.saturating_sub(self.used.load(Ordering::Relaxed))
    }

    /// Gives back `bytes` charged earlier (their rows were dropped).
    pub fn release(&self, bytes: usize) {
        // Never below zero, even if an estimate differs between charge and release.
        let _ = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                Some(used.saturating_sub(bytes))
            });
    }

    /// Gives back what `rows` were charged, as they are dropped.
    pub fn release_rows(&self, rows: &[Vec<Value>]) {
        self.release(rows.iter().map(|row| row_bytes(row)).sum());
    }

    /// Charges one row.
    pub fn charge_row(&self, row: &[Value], what: &str) -> SqlResult<()> {
        self.charge(row_bytes(row), what)
    }
}

/// Approximate bytes a row takes in memory: the vector, its values, and their heap data.
pub fn row_bytes(row: &[Value]) -> usize {
    std::mem::size_of::<Vec<Value>>() + row.iter().map(value_bytes).sum::<usize>()
}

fn value_bytes(value: &Value) -> usize {
    std::mem::size_of::<Value>()
        + match value {
            Value::Text(s) | Value::Json(s) => s.len(),
            Value::Bytea(b) => b.len(),
            Value::Numeric(n) => n.heap_bytes(),
            Value::Array(items) => items.iter().map(value_bytes).sum(),
            Value::Jsonb(json) => json.heap_bytes(),
            _ => 0,
        }
}

/// Parses a memory setting as PostgreSQL does (`64MB`, `1GB`, `512kB`; a bare number is kB).
pub fn parse_limit(value: &str) -> Option<usize> {
    let value = value.trim();
    let digits_end = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(digits_end);
    let number: usize = number.parse().ok()?;
    let unit_bytes: usize = match unit.trim() {
        "B" => 1,
        "" | "kB" => 1024,
        "MB" => 1024 * 1024,
        "GB" => 1024 * 1024 * 1024,
        "TB" => 1024 * 1024 * 1024 * 1024,
        _ => return None,
    };
    number.checked_mul(unit_bytes).filter(|&bytes| bytes > 0)
}

/// Bytes as PostgreSQL shows memory settings (the largest unit that divides them).
pub fn format_bytes(bytes: usize) -> String {
    const UNITS: [(&str, usize); 4] = [
        ("TB", 1 << 40),
        ("GB", 1 << 30),
        ("MB", 1 << 20),
        ("kB", 1 << 10),
    ];
    for (unit, size) in UNITS {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
    }
    format!("{bytes}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_and_print_as_postgresql_writes_them() {
        assert_eq!(parse_limit("64MB"), Some(64 << 20));
        assert_eq!(parse_limit("1GB"), Some(1 << 30));
        assert_eq!(parse_limit("512"), Some(512 << 10));
        assert_eq!(parse_limit("0"), None);
        assert_eq!(parse_limit("12 parsecs"), None);
        assert_eq!(format_bytes(256 << 20), "256MB");
        assert_eq!(format_bytes(1536), "1536B");
    }

    #[test]
    fn passing_the_limit_is_53200_and_says_what_needed_it() {
        let budget = MemoryBudget::new(1000);
        assert!(budget.charge(600, "sort").is_ok());
        let error = budget.charge(600, "sort").unwrap_err();
        assert_eq!(error.state, SqlState::OUT_OF_MEMORY);
        assert!(error.detail.unwrap_or_default().contains("sort"));
    }

    #[test]
    fn released_memory_can_be_charged_again() {
        let budget = MemoryBudget::new(1000);
        let rows = vec![vec![Value::Int4(1); 10]];
        let bytes = row_bytes(&rows[0]);
        assert!(bytes < 1000);
        for _ in 0..10 {
            budget.charge_row(&rows[0], "scan").unwrap();
            budget.release_rows(&rows);
        }
        budget.release(10_000);
        assert!(budget.charge(1000, "scan").is_ok());
    }
}
