//! Cairn's SQL layer: PostgreSQL's dialect and semantics over the transactional core.
//!
//! One statement's path:
//!
//! ```text
//!  SQL text ──parse (sqlparser, PostgreSQL dialect)──► AST
//!     ──plan (planner.rs, plan.rs: names → catalog at read_ts, types, access path)──► Plan
//!     ──execute (exec.rs: uncorrelated subqueries first, then point lookup / range scan /
//!                full scan through the Transaction page by page, joins, filter (correlated
//!                subqueries per row), aggregate, window functions, set operations, sort,
//!                limit; writes buffered as row post-images)──► rows
//!     ──session (session.rs: autocommit or block, COMMIT → adjudicator)──► Outcome or SqlError
//! ```
//!
//! - Rows live under `0x01 <table id> 0x01 <primary key>` keys, encoded so that key order is
//!   the primary key's order (`types::keycode`); a table without a primary key gets a hidden
//!   `rowid` column. The catalog lives in the same store (`catalog.rs`), so DDL is
//!   transactional.
//! - A session keeps the syntax trees of recent simple-protocol texts by shape (their number
//!   and string literals blanked out) and answers a text of a known shape by substituting its
//!   literals into a copy (`parse_cache.rs`): the same tree the parser would build, checked
//!   against the parser in debug builds. Each shape of a SELECT, INSERT, UPDATE or DELETE
//!   also keeps its statement planned with the literals as parameters, where that plan with
//!   a text's literals put in is the text's plan, and runs later texts of the shape with it
//!   (`session/shape_plans.rs`), planning nothing.
//! - Every error a client sees is a [`SqlError`] with PostgreSQL's SQLSTATE; internal errors of
//!   the core are mapped in exactly one place, [`SqlError::from_core`].
//! - Types, their text and binary forms, casts and operators follow PostgreSQL 15 (`types`).
//!
//! Joins (INNER, LEFT, RIGHT, FULL, CROSS; ON, USING, NATURAL) run left-deep in the order
//! written. Each step is an index nested loop when ON fixes the right table's primary key
//! (switching to a hash join when the left side is large and the right table small), a hash
//! join on ON's equalities, or a nested loop. WHERE conjuncts that concern one table filter
//! its scan unless an outer join pads that table with NULLs.
//!
//! Execution streams where it can: scan pages flow through the joins and WHERE into the
//! aggregation, which holds only its groups. Every operator charges what it holds to the
//! statement's memory budget (`memory.rs`); past it the statement fails with 53200.
//!
//! UNION, INTERSECT and EXCEPT (with ALL) resolve column types across their sides and take
//! ORDER BY / LIMIT over the result.
//!
//! Uncorrelated subqueries (scalar, IN / NOT IN, EXISTS, ANY / ALL) are planned ahead of
//! binding and run once before their statement, like PostgreSQL's initplans. Correlated ones
//! (reading a column of a query around them) run per row of that query, in WHERE and in
//! select lists without grouping.
//!
//! Correlated subqueries tied to their outer row only by equalities over one table are hashed
//! once per statement and looked up per outer row.
//!
//! Types beyond the scalar ones: `interval` (`types/interval.rs`), `json` / `jsonb`
//! (`types/json.rs`) and one-dimensional arrays of any of them (`types/array.rs`); pattern
//! matching with regular expressions and SIMILAR TO (`regex.rs`), `to_char`
//! (`types/to_char.rs`).
//!
//! Derived tables (subqueries in FROM), `generate_series` and WITH queries are planned where
//! they are referenced and computed when their scan runs. A WITH RECURSIVE query
//! `anchor UNION [ALL] step` runs the step over the previous round's new rows (its working
//! table) until a round adds none.
//!
//! Window functions run after grouping, over their partitions in their order, with frames
//! in ROWS, GROUPS or RANGE units (RANGE offsets in the ORDER BY key's terms) and named
//! windows; their values become extra columns of each row.
//!
//! Data-modifying WITH queries (INSERT / UPDATE / DELETE ... RETURNING) run once each, in
//! order, before their statement, which reads their RETURNING rows.
//!
//! The schema: secondary indexes whose entries are written with their rows, built in the
//! statement or online by a background job (`alter.rs`, `jobs.rs`); constraints (NOT NULL,
//! CHECK, UNIQUE, PRIMARY KEY, FOREIGN KEY, checked in `exec.rs`); sequences reserved per
//! process in blocks (`sequence.rs`); ALTER TABLE (`alter.rs`); views kept as SQL text and
//! planned where they are read.
//!
//! The system catalogs (`system/`): `pg_catalog` relations and the functions clients call on
//! them, computed from the catalog at the statement's snapshot when a statement uses them.
//! `regclass` & co. are casts (a number to the object's name, text to its OID) rather than
//! types of their own.
//!
//! Shortcuts, each to be lifted by a later issue: joins in the written order (but for the
//! comma-list rule), no correlated subqueries in ON or HAVING, no multidimensional arrays; a
//! statement may not read a table its data-modifying WITH changes (PostgreSQL reads the old
//! rows); sorts and window functions hold their rows (within the memory budget, no
//! spilling); `nextval('name')` and `"$user"` in search_path do not follow the path; no partial
//! indexes (INCLUDE is kept in the definition only); an index expression is bound again for
//! every row written (a cache of bound expressions would make writes to such tables cheaper).

mod advisory;
mod alter;
mod catalog;
pub mod copy;
pub mod error;
mod exec;
mod expr;
mod jobs;
mod memory;
mod parse_cache;
mod plan;
mod planner;
mod regex;
mod sequence;
mod session;
mod system;
pub mod types;

pub use error::{SqlError, SqlResult, SqlState};
pub use session::{
    CancelToken, Column, CopyTransfer, Engine, Notice, Notification, Outcome, Prepared, Session,
    TxStatus,
};
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
