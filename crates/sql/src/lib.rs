//! Cairn's SQL layer: PostgreSQL's dialect and semantics over the transactional core.
//!
//! One statement's path:
//!
//! ```text
//!  SQL text ──parse (sqlparser, PostgreSQL dialect)──► AST
//!     ──plan (planner.rs, plan.rs: names → catalog at read_ts, types, access path)──► Plan
//!     ──execute (exec.rs: uncorrelated subqueries first, then point lookup / range scan /
//!                full scan through the Transaction, joins, filter, aggregate, window
//!                functions, set operations, sort, limit; writes buffered as row
//!                post-images)──► rows
//!     ──session (session.rs: autocommit or block, COMMIT → adjudicator)──► Outcome or SqlError
//! ```
//!
//! - Rows live under `0x01 <table id> 0x01 <primary key>` keys, encoded so that key order is
//!   the primary key's order (`types::keycode`); a table without a primary key gets a hidden
//!   `rowid` column. The catalog lives in the same store (`catalog.rs`), so DDL is
//!   transactional.
//! - Every error a client sees is a [`SqlError`] with PostgreSQL's SQLSTATE; internal errors of
//!   the core are mapped in exactly one place, [`SqlError::from_core`].
//! - Types, their text and binary forms, casts and operators follow PostgreSQL 15 (`types`).
//!
//! Joins (INNER, LEFT, RIGHT, FULL, CROSS, with ON) run left-deep: a primary-key lookup per
//! left row when the ON condition fixes the right table's key, else a nested loop over the
//! right table read once.
//!
//! UNION, INTERSECT and EXCEPT (with ALL) resolve column types across their sides and take
//! ORDER BY / LIMIT over the result.
//!
//! Uncorrelated subqueries (scalar, IN / NOT IN, EXISTS) are planned ahead of binding and run
//! once before their statement, like PostgreSQL's initplans.
//!
//! Derived tables (subqueries in FROM) and non-recursive WITH queries are planned where they
//! are referenced and computed when their scan runs.
//!
//! Window functions run after grouping, over their partitions in their order, with
//! PostgreSQL's default frame; their values become extra columns of each row.
//!
//! Shortcuts, each to be lifted by a later issue: no JOIN ... USING / NATURAL, correlated
//! subqueries, LATERAL, WITH RECURSIVE or window frame clauses, no hash join; no secondary indexes, sequences or constraints beyond
//! NOT NULL and the primary key;
//! the time zone is UTC.

mod catalog;
pub mod error;
mod exec;
mod expr;
mod memory;
mod plan;
mod planner;
mod session;
pub mod types;

pub use error::{SqlError, SqlResult, SqlState};
pub use session::{CancelToken, Column, Engine, Notice, Outcome, Prepared, Session, TxStatus};
pub use types::{DataType, Value};

/// The PostgreSQL version Cairn reports to clients (`server_version`).
pub const SERVER_VERSION: &str = "16.4";
/// `server_version_num`.
pub const SERVER_VERSION_NUM: &str = "160004";

/// What `version()` returns: PostgreSQL's format, naming Cairn.
pub fn version_string() -> String {
    format!(
        "PostgreSQL {SERVER_VERSION} (Cairn {}) on {}, compiled by rustc",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH
    )
}
