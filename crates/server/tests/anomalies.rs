//! The Hermitage anomaly catalogue (<https://github.com/ept/hermitage>, PostgreSQL's cases as
//! the reference), driven step by step over the wire against the real binary at READ
//! COMMITTED, REPEATABLE READ and SERIALIZABLE.
//!
//! Cairn never blocks: writes are buffered until COMMIT, where a conflicting transaction fails
//! with 40001 (first committer wins). So where Hermitage shows PostgreSQL blocking a statement
//! and then aborting it, here the statement succeeds and the COMMIT fails; a statement that
//! writes a row a commit changed after the snapshot (once storage holds that change) fails at
//! once with 40001, as PostgreSQL's does when it stops waiting. Everything
//! PostgreSQL prevents at a level is prevented here at that level; READ COMMITTED also
//! prevents lost updates (stronger than PostgreSQL); write skew (G2-item) and anti-dependency
//! cycles (G2) commit at REPEATABLE READ and fail at SERIALIZABLE.
//!
//! Every test uses Hermitage's table, reset before each level:
//! `test (id int PRIMARY KEY, value int)` holding `(1, 10), (2, 20)`.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed check

mod common;

use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Level {
    ReadCommitted,
    RepeatableRead,
    Serializable,
}

use Level::{ReadCommitted, RepeatableRead, Serializable};

const ALL_LEVELS: [Level; 3] = [ReadCommitted, RepeatableRead, Serializable];

impl Level {
    fn sql(self) -> &'static str {
        match self {
            ReadCommitted => "READ COMMITTED",
            RepeatableRead => "REPEATABLE READ",
            Serializable => "SERIALIZABLE",
        }
    }
}

/// Rows of `test` as `(id, value)`, ordered by id.
type Rows = Vec<(i32, i32)>;

/// One session, named for failure messages.
struct Session {
    name: &'static str,
    level: Level,
    client: Client,
}

impl Session {
    async fn begin(&self) {
        self.client
            .batch_execute(&format!("BEGIN ISOLATION LEVEL {}", self.level.sql()))
            .await
            .unwrap_or_else(|e| panic!("{} at {:?}: BEGIN: {e}", self.name, self.level));
    }

    /// A query whose result columns are `id, value`; rows sorted by id.
    async fn rows(&self, sql: &str) -> Rows {
        let rows = self
            .client
            .query(sql, &[])
            .await
            .unwrap_or_else(|e| panic!("{} at {:?}: {sql}: {e}", self.name, self.level));
        let mut rows: Rows = rows
            .iter()
            .map(|row| (row.get::<_, i32>(0), row.get::<_, i32>(1)))
            .collect();
        rows.sort_unstable();
        rows
    }

    /// Asserts what a query returns.
    async fn reads(&self, sql: &str, expected: &[(i32, i32)]) {
        let rows = self.rows(sql).await;
        assert_eq!(
            rows, expected,
            "{} at {:?}: {sql} returned the wrong rows",
            self.name, self.level
        );
    }

    /// Runs a write statement and asserts how many rows it affected.
    async fn writes(&self, sql: &str, affected: u64) {
        let count = self
            .client
            .execute(sql, &[])
            .await
            .unwrap_or_else(|e| panic!("{} at {:?}: {sql}: {e}", self.name, self.level));
        assert_eq!(
            count, affected,
            "{} at {:?}: {sql} affected the wrong number of rows",
            self.name, self.level
        );
    }

    async fn commits(&self) {
        self.client
            .batch_execute("COMMIT")
            .await
            .unwrap_or_else(|e| panic!("{} at {:?}: COMMIT failed: {e}", self.name, self.level));
    }

    /// Asserts that COMMIT fails with 40001 (and that the block is over afterwards).
    async fn commit_fails(&self) {
        match self.client.batch_execute("COMMIT").await {
            Ok(()) => panic!(
                "{} at {:?}: COMMIT succeeded, expected 40001",
                self.name, self.level
            ),
            Err(error) => {
                let db = error
                    .as_db_error()
                    .unwrap_or_else(|| panic!("{}: not a server error: {error}", self.name));
                assert_eq!(
                    db.code(),
                    &SqlState::T_R_SERIALIZATION_FAILURE,
                    "{} at {:?}: {db:?}",
                    self.name,
                    self.level
                );
            }
        }
        // The failed COMMIT ended the block: a new statement runs in autocommit.
        self.client.batch_execute("SELECT 1").await.unwrap();
    }

    /// A write of a row that a commit after the snapshot changed: it fails at once with 40001
    /// if storage already holds that change, else it succeeds (affecting `affected` rows) and
    /// the COMMIT fails. Either way the transaction ends aborted. `surely_early`: storage is
    /// known to hold the change (a read after that commit waited for it).
    async fn write_aborts(&self, sql: &str, affected: u64, surely_early: bool) {
        match self.client.execute(sql, &[]).await {
            Ok(count) => {
                assert!(
                    !surely_early,
                    "{} at {:?}: {sql} succeeded, expected 40001",
                    self.name, self.level
                );
                assert_eq!(count, affected, "{} at {:?}: {sql}", self.name, self.level);
                self.commit_fails().await;
            }
            Err(error) => {
                let code = error.code();
                assert_eq!(
                    code,
                    Some(&SqlState::T_R_SERIALIZATION_FAILURE),
                    "{} at {:?}: {sql}: {error}",
                    self.name,
                    self.level
                );
                // As in PostgreSQL, COMMIT ends the failed block (as a rollback).
                self.client.batch_execute("COMMIT").await.unwrap();
                self.client.batch_execute("SELECT 1").await.unwrap();
            }
        }
    }

    async fn rolls_back(&self) {
        self.client.batch_execute("ROLLBACK").await.unwrap();
    }
}

/// A server with Hermitage's table.
struct Hermitage {
    server: common::Server,
}

impl Hermitage {
    async fn start() -> Hermitage {
        let server = common::Server::start().await;
        server
            .connect()
            .await
            .batch_execute("CREATE TABLE test (id int PRIMARY KEY, value int)")
            .await
            .unwrap();
        Hermitage { server }
    }

    /// Resets the table to `(1, 10), (2, 20)` and opens `N` sessions at `level` (not yet in a
    /// transaction).
    async fn sessions<const N: usize>(&self, level: Level) -> [Session; N] {
        self.server
            .connect()
            .await
            .batch_execute("DELETE FROM test; INSERT INTO test VALUES (1, 10), (2, 20)")
            .await
            .unwrap();
        let mut sessions = Vec::with_capacity(N);
        for name in ["T1", "T2", "T3"].into_iter().take(N) {
            sessions.push(Session {
                name,
                level,
                client: self.server.connect().await,
            });
        }
        match sessions.try_into() {
            Ok(sessions) => sessions,
            Err(_) => unreachable!("exactly N sessions"),
        }
    }

    /// Asserts the committed contents of the table, read by a fresh session.
    async fn contains(&self, level: Level, expected: &[(i32, i32)]) {
        let client = self.server.connect().await;
        let rows = client
            .query("SELECT id, value FROM test", &[])
            .await
            .unwrap();
        let mut rows: Rows = rows
            .iter()
            .map(|row| (row.get::<_, i32>(0), row.get::<_, i32>(1)))
            .collect();
        rows.sort_unstable();
        assert_eq!(rows, expected, "final table contents at {level:?}");
    }
}

const ALL: &str = "SELECT id, value FROM test";

/// G0: two transactions writing the same rows. PostgreSQL blocks T2 and (at every level)
/// keeps T1's and T2's writes from interleaving; Cairn lets T2 write row 1 (T1 has not
/// committed) and fails T2's write of row 2, which T1 committed meanwhile, so only T1's
/// writes survive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g0_dirty_write_second_writer_aborts_at_every_level() {
    let db = Hermitage::start().await;
    for level in ALL_LEVELS {
        let [t1, t2] = db.sessions(level).await;
        t1.begin().await;
        t2.begin().await;
        t1.writes("UPDATE test SET value = 11 WHERE id = 1", 1)
            .await;
        t2.writes("UPDATE test SET value = 12 WHERE id = 1", 1)
            .await; // PostgreSQL blocks
        t1.writes("UPDATE test SET value = 21 WHERE id = 2", 1)
            .await;
        t1.commits().await;
        t1.reads(ALL, &[(1, 11), (2, 21)]).await; // storage holds T1's commit
        t2.write_aborts("UPDATE test SET value = 22 WHERE id = 2", 1, true)
            .await;
        db.contains(level, &[(1, 11), (2, 21)]).await;
    }
}

/// G1a: T2 never sees a write of T1, which then aborts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g1a_aborted_read_is_never_visible_at_any_level() {
    let db = Hermitage::start().await;
    for level in ALL_LEVELS {
        let [t1, t2] = db.sessions(level).await;
        t1.begin().await;
        t2.begin().await;
        t1.writes("UPDATE test SET value = 101 WHERE id = 1", 1)
            .await;
        t2.reads(ALL, &[(1, 10), (2, 20)]).await;
        t1.rolls_back().await;
        t2.reads(ALL, &[(1, 10), (2, 20)]).await;
        t2.commits().await;
        db.contains(level, &[(1, 10), (2, 20)]).await;
    }
}

/// G1b: T2 never sees T1's intermediate value 101, only (at READ COMMITTED, after T1
/// commits) its final 11.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g1b_intermediate_read_is_never_visible_at_any_level() {
    let db = Hermitage::start().await;
    for level in ALL_LEVELS {
        let [t1, t2] = db.sessions(level).await;
        t1.begin().await;
        t2.begin().await;
        t1.writes("UPDATE test SET value = 101 WHERE id = 1", 1)
            .await;
        t2.reads(ALL, &[(1, 10), (2, 20)]).await;
        t1.writes("UPDATE test SET value = 11 WHERE id = 1", 1)
            .await;
        t1.commits().await;
        let after = if level == ReadCommitted {
            [(1, 11), (2, 20)] // a fresh snapshot: T1's final value
        } else {
            [(1, 10), (2, 20)] // the transaction's snapshot
        };
        t2.reads(ALL, &after).await;
        t2.commits().await;
        db.contains(level, &[(1, 11), (2, 20)]).await;
    }
}

/// G1c: each transaction reads the row the other writes; neither sees the other's
/// uncommitted write. Below SERIALIZABLE both commit (the two anti-dependencies form a G2
/// cycle, which those levels allow); at SERIALIZABLE the second committer read a row the
/// first overwrote, and fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g1c_circular_information_flow_never_visible_and_serializable_aborts_the_cycle() {
    let db = Hermitage::start().await;
    for level in ALL_LEVELS {
        let [t1, t2] = db.sessions(level).await;
        t1.begin().await;
        t2.begin().await;
        t1.writes("UPDATE test SET value = 11 WHERE id = 1", 1)
            .await;
        t2.writes("UPDATE test SET value = 22 WHERE id = 2", 1)
            .await;
        t1.reads("SELECT id, value FROM test WHERE id = 2", &[(2, 20)])
            .await;
        t2.reads("SELECT id, value FROM test WHERE id = 1", &[(1, 10)])
            .await;
        t1.commits().await;
        if level == Serializable {
            t2.commit_fails().await;
            db.contains(level, &[(1, 11), (2, 20)]).await;
        } else {
            t2.commits().await;
            db.contains(level, &[(1, 11), (2, 22)]).await;
        }
    }
}

/// OTV: T3 must not see part of T1 and part of T2. PostgreSQL blocks T2 behind T1; Cairn
/// fails T2's write of row 2 (T1 committed T2's rows after T2 began), so T3 sees T1's writes
/// whole at every read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otv_observed_transaction_never_vanishes_at_any_level() {
    let db = Hermitage::start().await;
    for level in ALL_LEVELS {
        let [t1, t2, t3] = db.sessions(level).await;
        t1.begin().await;
        t2.begin().await;
        t3.begin().await;
        t1.writes("UPDATE test SET value = 11 WHERE id = 1", 1)
            .await;
        t1.writes("UPDATE test SET value = 19 WHERE id = 2", 1)
            .await;
        t2.writes("UPDATE test SET value = 12 WHERE id = 1", 1)
            .await; // PostgreSQL blocks
        t1.commits().await;
        t3.reads("SELECT id, value FROM test WHERE id = 1", &[(1, 11)])
            .await;
        // T3's first read was after T1's commit: storage holds it.
        t2.write_aborts("UPDATE test SET value = 18 WHERE id = 2", 1, true)
            .await;
        t3.reads("SELECT id, value FROM test WHERE id = 2", &[(2, 19)])
            .await;
        t3.reads("SELECT id, value FROM test WHERE id = 2", &[(2, 19)])
            .await;
        t3.reads("SELECT id, value FROM test WHERE id = 1", &[(1, 11)])
            .await;
        t3.commits().await;
        db.contains(level, &[(1, 11), (2, 19)]).await;
    }
}

/// PMP: a predicate read, then a concurrent insert matching a later predicate. READ
/// COMMITTED sees the new row (as in PostgreSQL); REPEATABLE READ and SERIALIZABLE keep the
/// snapshot. T1 is read-only, so it commits at every level.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pmp_predicate_many_preceders_visible_only_at_read_committed() {
    let db = Hermitage::start().await;
    for level in ALL_LEVELS {
        let [t1, t2] = db.sessions(level).await;
        t1.begin().await;
        t2.begin().await;
        t1.reads("SELECT id, value FROM test WHERE value = 30", &[])
            .await;
        t2.writes("INSERT INTO test (id, value) VALUES (3, 30)", 1)
            .await;
        t2.commits().await;
        let later: &[(i32, i32)] = if level == ReadCommitted {
            &[(3, 30)]
        } else {
            &[]
        };
        t1.reads("SELECT id, value FROM test WHERE value % 3 = 0", later)
            .await;
        t1.commits().await;
        db.contains(level, &[(1, 10), (2, 20), (3, 30)]).await;
    }
}

/// PMP for write predicates: T2 deletes by a predicate over rows T1 concurrently updates.
/// PostgreSQL's READ COMMITTED re-evaluates the row after T1 commits and deletes nothing;
/// its REPEATABLE READ fails. Cairn's T2 deletes row 2 in its snapshot and fails at COMMIT at
/// every level, so T1's update survives whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pmp_write_predicate_second_writer_aborts_at_commit_at_every_level() {
    let db = Hermitage::start().await;
    for level in ALL_LEVELS {
        let [t1, t2] = db.sessions(level).await;
        t1.begin().await;
        t2.begin().await;
        t1.writes("UPDATE test SET value = value + 10", 2).await;
        t2.writes("DELETE FROM test WHERE value = 20", 1).await; // PostgreSQL blocks
        t1.commits().await;
        // Row 2 is gone in T2's own view; READ COMMITTED sees T1's row 1 = 20 (as
        // PostgreSQL does), the snapshot levels do not.
        let seen: &[(i32, i32)] = if level == ReadCommitted {
            &[(1, 20)]
        } else {
            &[]
        };
        t2.reads("SELECT id, value FROM test WHERE value = 20", seen)
            .await;
        t2.commit_fails().await;
        db.contains(level, &[(1, 20), (2, 30)]).await;
    }
}

/// P4: two read-modify-writes of one row. PostgreSQL's READ COMMITTED loses T1's update;
/// Cairn refuses T2's COMMIT at every level.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p4_lost_update_second_writer_aborts_at_commit_at_every_level() {
    let db = Hermitage::start().await;
    for level in ALL_LEVELS {
        let [t1, t2] = db.sessions(level).await;
        t1.begin().await;
        t2.begin().await;
        t1.reads("SELECT id, value FROM test WHERE id = 1", &[(1, 10)])
            .await;
        t2.reads("SELECT id, value FROM test WHERE id = 1", &[(1, 10)])
            .await;
        t1.writes("UPDATE test SET value = 11 WHERE id = 1", 1)
            .await;
        t2.writes("UPDATE test SET value = 11 WHERE id = 1", 1)
            .await; // PostgreSQL blocks
        t1.commits().await;
        t2.commit_fails().await;
        db.contains(level, &[(1, 11), (2, 20)]).await;
    }
}

/// P4 where the second writer's UPDATE runs after the first committed: at READ COMMITTED the
/// UPDATE's own snapshot already sees 11, but the value T2 computed from came from its first
/// statement, so the write is still checked against everything committed since then and T2
/// fails at COMMIT (PostgreSQL's READ COMMITTED would overwrite 11 with 11 and lose T1's
/// update). The snapshot levels fail it too. T2's UPDATE itself fails if storage already
/// holds T1's commit when it reads the row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p4_lost_update_with_write_after_the_first_commit_aborts_at_every_level() {
    let db = Hermitage::start().await;
    for level in ALL_LEVELS {
        let [t1, t2] = db.sessions(level).await;
        t1.begin().await;
        t2.begin().await;
        t1.reads("SELECT id, value FROM test WHERE id = 1", &[(1, 10)])
            .await;
        t2.reads("SELECT id, value FROM test WHERE id = 1", &[(1, 10)])
            .await;
        t1.writes("UPDATE test SET value = 11 WHERE id = 1", 1)
            .await;
        t1.commits().await;
        t2.write_aborts("UPDATE test SET value = 11 WHERE id = 1", 1, false)
            .await;
        db.contains(level, &[(1, 11), (2, 20)]).await;
    }
}

/// G-single: T1 reads row 1, T2 changes both rows and commits, T1 reads row 2. READ
/// COMMITTED sees T2's row 2 (read skew, as in PostgreSQL); the snapshot levels do not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g_single_read_skew_happens_only_at_read_committed() {
    let db = Hermitage::start().await;
    for level in ALL_LEVELS {
        let [t1, t2] = db.sessions(level).await;
        t1.begin().await;
        t2.begin().await;
        t1.reads("SELECT id, value FROM test WHERE id = 1", &[(1, 10)])
            .await;
        t2.reads("SELECT id, value FROM test WHERE id = 1", &[(1, 10)])
            .await;
        t2.reads("SELECT id, value FROM test WHERE id = 2", &[(2, 20)])
            .await;
        t2.writes("UPDATE test SET value = 12 WHERE id = 1", 1)
            .await;
        t2.writes("UPDATE test SET value = 18 WHERE id = 2", 1)
            .await;
        t2.commits().await;
        let second = if level == ReadCommitted { 18 } else { 20 };
        t1.reads("SELECT id, value FROM test WHERE id = 2", &[(2, second)])
            .await;
        t1.commits().await; // read-only: never fails
        db.contains(level, &[(1, 12), (2, 18)]).await;
    }
}

/// G-single with predicate dependencies: T1's second predicate read matches only T2's new
/// value, which READ COMMITTED sees and the snapshot levels do not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g_single_read_skew_over_predicates_happens_only_at_read_committed() {
    let db = Hermitage::start().await;
    for level in ALL_LEVELS {
        let [t1, t2] = db.sessions(level).await;
        t1.begin().await;
        t2.begin().await;
        t1.reads(
            "SELECT id, value FROM test WHERE value % 5 = 0",
            &[(1, 10), (2, 20)],
        )
        .await;
        t2.writes("UPDATE test SET value = 12 WHERE value = 10", 1)
            .await;
        t2.commits().await;
        let later: &[(i32, i32)] = if level == ReadCommitted {
            &[(1, 12)]
        } else {
            &[]
        };
        t1.reads("SELECT id, value FROM test WHERE value % 3 = 0", later)
            .await;
        t1.commits().await;
        db.contains(level, &[(1, 12), (2, 20)]).await;
    }
}

/// G-single where the second read is a write, after T2 committed: T1 deletes by a predicate
/// over a row T2 changed. At READ COMMITTED the fresh snapshot no longer matches (nothing
/// deleted, nothing to conflict); at the snapshot levels T1 deletes row 2 as of its snapshot
/// and fails at COMMIT (PostgreSQL fails the DELETE itself).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g_single_write_after_commit_aborts_at_snapshot_levels() {
    let db = Hermitage::start().await;
    for level in ALL_LEVELS {
        let [t1, t2] = db.sessions(level).await;
        t1.begin().await;
        t2.begin().await;
        t1.reads("SELECT id, value FROM test WHERE id = 1", &[(1, 10)])
            .await;
        t2.reads(ALL, &[(1, 10), (2, 20)]).await;
        t2.writes("UPDATE test SET value = 12 WHERE id = 1", 1)
            .await;
        t2.writes("UPDATE test SET value = 18 WHERE id = 2", 1)
            .await;
        t2.commits().await;
        if level == ReadCommitted {
            t1.writes("DELETE FROM test WHERE value = 20", 0).await;
            t1.commits().await;
        } else {
            t1.writes("DELETE FROM test WHERE value = 20", 1).await;
            t1.commit_fails().await;
        }
        db.contains(level, &[(1, 12), (2, 18)]).await;
    }
}

/// G-single where the second read is a write, while T2 is still open: T1 deletes row 2 and
/// rolls back, T2's write of row 2 (which blocks in PostgreSQL) then commits at every level.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g_single_write_before_commit_then_rollback_lets_the_other_commit_at_every_level() {
    let db = Hermitage::start().await;
    for level in ALL_LEVELS {
        let [t1, t2] = db.sessions(level).await;
        t1.begin().await;
        t2.begin().await;
        t1.reads("SELECT id, value FROM test WHERE id = 1", &[(1, 10)])
            .await;
        t2.reads(ALL, &[(1, 10), (2, 20)]).await;
        t2.writes("UPDATE test SET value = 12 WHERE id = 1", 1)
            .await;
        t1.writes("DELETE FROM test WHERE value = 20", 1).await;
        t2.writes("UPDATE test SET value = 18 WHERE id = 2", 1)
            .await; // PostgreSQL blocks
        t1.rolls_back().await;
        t2.commits().await;
        db.contains(level, &[(1, 12), (2, 18)]).await;
    }
}

/// G2-item: each transaction reads both rows and writes a different one. Both commit below
/// SERIALIZABLE; at SERIALIZABLE the second committer read the row the first wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g2_item_write_skew_commits_at_repeatable_read_and_aborts_at_serializable() {
    let db = Hermitage::start().await;
    for level in ALL_LEVELS {
        let [t1, t2] = db.sessions(level).await;
        t1.begin().await;
        t2.begin().await;
        let both = "SELECT id, value FROM test WHERE id IN (1, 2)";
        t1.reads(both, &[(1, 10), (2, 20)]).await;
        t2.reads(both, &[(1, 10), (2, 20)]).await;
        t1.writes("UPDATE test SET value = 11 WHERE id = 1", 1)
            .await;
        t2.writes("UPDATE test SET value = 21 WHERE id = 2", 1)
            .await;
        t1.commits().await;
        if level == Serializable {
            t2.commit_fails().await;
            db.contains(level, &[(1, 11), (2, 20)]).await;
        } else {
            t2.commits().await;
            db.contains(level, &[(1, 11), (2, 21)]).await;
        }
    }
}

/// G2 over predicates: each transaction finds no row with `value % 3 = 0` and inserts one.
/// Both commit below SERIALIZABLE; at SERIALIZABLE the second committer's scan covered the
/// first's insert (a phantom), and it fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g2_anti_dependency_cycle_over_predicates_commits_at_repeatable_read_and_aborts_at_serializable(
) {
    let db = Hermitage::start().await;
    for level in ALL_LEVELS {
        let [t1, t2] = db.sessions(level).await;
        t1.begin().await;
        t2.begin().await;
        let multiples_of_three = "SELECT id, value FROM test WHERE value % 3 = 0";
        t1.reads(multiples_of_three, &[]).await;
        t2.reads(multiples_of_three, &[]).await;
        t1.writes("INSERT INTO test (id, value) VALUES (3, 30)", 1)
            .await;
        t2.writes("INSERT INTO test (id, value) VALUES (4, 42)", 1)
            .await;
        t1.commits().await;
        if level == Serializable {
            t2.commit_fails().await;
            db.contains(level, &[(1, 10), (2, 20), (3, 30)]).await;
        } else {
            t2.commits().await;
            db.contains(level, &[(1, 10), (2, 20), (3, 30), (4, 42)])
                .await;
        }
    }
}

/// G2 with two anti-dependency edges (Fekete et al.): T1 reads everything, T2 changes row 2
/// and commits, read-only T3 sees T2's change, then T1 writes row 1. Only SERIALIZABLE
/// refuses T1 (it read row 2, which T2 overwrote after T1's snapshot); T3, read-only,
/// commits at every level.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g2_two_anti_dependency_edges_commit_at_repeatable_read_and_abort_at_serializable() {
    let db = Hermitage::start().await;
    for level in ALL_LEVELS {
        let [t1, t2, t3] = db.sessions(level).await;
        t1.begin().await;
        t1.reads(ALL, &[(1, 10), (2, 20)]).await;
        t2.begin().await;
        t2.writes("UPDATE test SET value = value + 5 WHERE id = 2", 1)
            .await;
        t2.commits().await;
        t3.begin().await;
        t3.reads(ALL, &[(1, 10), (2, 25)]).await;
        t3.commits().await;
        t1.writes("UPDATE test SET value = 0 WHERE id = 1", 1).await;
        if level == Serializable {
            t1.commit_fails().await;
            db.contains(level, &[(1, 10), (2, 25)]).await;
        } else {
            t1.commits().await;
            db.contains(level, &[(1, 0), (2, 25)]).await;
        }
    }
}
