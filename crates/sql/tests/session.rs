//! The SQL layer through sessions on a real embedded core (no wire protocol): statements,
//! transactions, and what two sessions see of each other.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed check

use std::sync::Arc;

use cairn_embedded::{Embedded, Options};
use cairn_sql::types::text::format_text_typed;
use cairn_sql::{Engine, Session, SqlResult, TxStatus, Value};

async fn engine(dir: &std::path::Path) -> (Embedded, Arc<Engine>) {
    let db = Embedded::open(Options::new(dir)).await.unwrap();
    let engine = Engine::new(db.database().clone());
    (db, engine)
}

/// Runs `sql` and renders each result like psql's unaligned output: rows as `a|b`, then the tag.
async fn run(session: &mut Session, sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    for result in session.simple_query(sql).await {
        match result {
            Ok(outcome) => {
                let types: Vec<_> = outcome
                    .columns
                    .iter()
                    .flatten()
                    .map(|c| c.data_type.clone())
                    .collect();
                for row in outcome.rows {
                    let cells: Vec<String> = row
                        .iter()
                        .zip(&types)
                        .map(|(v, t)| {
                            if v.is_null() {
                                "NULL".into()
                            } else {
                                format_text_typed(v, t, &session.time_zone())
                            }
                        })
                        .collect();
                    out.push(cells.join("|"));
                }
                out.push(outcome.tag);
            }
            Err(e) => out.push(format!("ERROR {}: {}", e.state.code(), e.message)),
        }
    }
    out
}

fn one(result: Vec<SqlResult<cairn_sql::Outcome>>) -> Vec<Vec<Value>> {
    result.into_iter().next().unwrap().unwrap().rows
}

#[tokio::test]
async fn statements_run_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, engine) = engine(dir.path()).await;
    let mut s = Session::new(engine, "postgres", "postgres");
    assert_eq!(
        run(
            &mut s,
            "CREATE TABLE t (id int PRIMARY KEY, name text, n numeric(6,2))"
        )
        .await,
        ["CREATE TABLE"]
    );
    assert_eq!(
        run(&mut s, "INSERT INTO t VALUES (1, 'a', 1.5), (2, 'b', NULL)").await,
        ["INSERT 0 2"]
    );
    assert_eq!(
        run(&mut s, "SELECT * FROM t ORDER BY id DESC").await,
        ["2|b|NULL", "1|a|1.50", "SELECT 2"]
    );
    assert_eq!(
        run(&mut s, "SELECT count(*), sum(n) FROM t").await,
        ["2|1.50", "SELECT 1"]
    );
    assert_eq!(
        run(&mut s, "UPDATE t SET n = n * 2 WHERE id = 1 RETURNING n").await,
        ["3.00", "UPDATE 1"]
    );
    assert_eq!(
        run(&mut s, "SELECT 1 / 0").await,
        ["ERROR 22012: division by zero"]
    );
    assert_eq!(
        run(&mut s, "INSERT INTO t VALUES (1, 'dup', 0)").await[0],
        "ERROR 23505: duplicate key value violates unique constraint \"t_pkey\""
    );
    assert_eq!(
        run(&mut s, "EXPLAIN SELECT * FROM t WHERE id = 1").await[0],
        "Point Lookup on t using t_pkey (id = 1)"
    );
    assert_eq!(
        run(&mut s, "EXPLAIN SELECT * FROM t WHERE id > 1").await[0],
        "Range Scan on t using t_pkey (id > 1)"
    );
    assert!(
        run(&mut s, "EXPLAIN SELECT * FROM t WHERE name = 'a'").await[0]
            .starts_with("Full Scan on t")
    );
}

#[tokio::test]
async fn a_failed_block_refuses_statements_until_rollback() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, engine) = engine(dir.path()).await;
    let mut s = Session::new(engine, "postgres", "postgres");
    run(&mut s, "CREATE TABLE t (id int PRIMARY KEY)").await;
    run(&mut s, "BEGIN; INSERT INTO t VALUES (1)").await;
    assert_eq!(s.transaction_status(), TxStatus::InBlock);
    assert_eq!(
        run(&mut s, "SELECT nosuch FROM t").await,
        ["ERROR 42703: column \"nosuch\" does not exist"]
    );
    assert_eq!(s.transaction_status(), TxStatus::Failed);
    assert_eq!(run(&mut s, "SELECT 1").await[0], "ERROR 25P02: current transaction is aborted, commands ignored until end of transaction block");
    assert_eq!(run(&mut s, "ROLLBACK").await, ["ROLLBACK"]);
    assert_eq!(
        run(&mut s, "SELECT count(*) FROM t").await,
        ["0", "SELECT 1"]
    );
}

#[tokio::test]
async fn concurrent_sessions_lost_update_is_a_serialization_failure() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, engine) = engine(dir.path()).await;
    let mut a = Session::new(engine.clone(), "postgres", "postgres");
    let mut b = Session::new(engine, "postgres", "postgres");
    run(
        &mut a,
        "CREATE TABLE c (id int PRIMARY KEY, v int); INSERT INTO c VALUES (1, 0)",
    )
    .await;
    run(&mut a, "BEGIN").await;
    run(&mut b, "BEGIN").await;
    assert_eq!(
        one(a.simple_query("SELECT v FROM c WHERE id = 1").await),
        [[Value::Int4(0)]]
    );
    assert_eq!(
        one(b.simple_query("SELECT v FROM c WHERE id = 1").await),
        [[Value::Int4(0)]]
    );
    run(&mut a, "UPDATE c SET v = 1 WHERE id = 1").await;
    run(&mut b, "UPDATE c SET v = 2 WHERE id = 1").await;
    assert_eq!(run(&mut a, "COMMIT").await, ["COMMIT"]);
    let refused = run(&mut b, "COMMIT").await;
    assert!(
        refused[0].starts_with("ERROR 40001: could not serialize access"),
        "{refused:?}"
    );
    assert!(
        refused[0].contains("table \"c\", key (id)=(1)"),
        "{refused:?}"
    );
    assert_eq!(
        run(
            &mut b,
            "SELECT table_name, key, kind, at IS NOT NULL FROM cairn_conflicts"
        )
        .await,
        ["c|(id)=(1)|data|t", "SELECT 1"],
        "the conflict is listed in the view"
    );
    assert!(run(&mut b, "DELETE FROM cairn_conflicts").await[0].starts_with("ERROR 42809"));
    assert_eq!(b.transaction_status(), TxStatus::Idle);
    assert_eq!(run(&mut b, "SELECT v FROM c").await, ["1", "SELECT 1"]);
}

#[tokio::test]
async fn a_schema_change_after_the_snapshot_is_a_schema_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, engine) = engine(dir.path()).await;
    let mut a = Session::new(engine.clone(), "postgres", "postgres");
    let mut b = Session::new(engine, "postgres", "postgres");
    run(&mut a, "CREATE TABLE s (id int PRIMARY KEY)").await;
    run(&mut a, "BEGIN; INSERT INTO s VALUES (1)").await;
    run(&mut b, "DROP TABLE s").await;
    let refused = run(&mut a, "COMMIT").await;
    assert!(refused[0].starts_with("ERROR 40001"), "{refused:?}");
    assert!(refused[0].contains("schema conflict"), "{refused:?}");
}

#[tokio::test]
async fn read_committed_statements_see_commits_made_between_them() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, engine) = engine(dir.path()).await;
    let mut rc = Session::new(engine.clone(), "postgres", "postgres");
    let mut rr = Session::new(engine.clone(), "postgres", "postgres");
    let mut writer = Session::new(engine, "postgres", "postgres");
    run(
        &mut writer,
        "CREATE TABLE v (id int PRIMARY KEY, n int); INSERT INTO v VALUES (1, 0)",
    )
    .await;
    run(&mut rc, "BEGIN ISOLATION LEVEL READ COMMITTED").await;
    run(&mut rr, "BEGIN ISOLATION LEVEL REPEATABLE READ").await;
    assert_eq!(run(&mut rc, "SELECT n FROM v").await, ["0", "SELECT 1"]);
    assert_eq!(run(&mut rr, "SELECT n FROM v").await, ["0", "SELECT 1"]);
    run(&mut writer, "UPDATE v SET n = 1").await;
    assert_eq!(
        run(&mut rc, "SELECT n FROM v").await,
        ["1", "SELECT 1"],
        "a new statement, a new snapshot"
    );
    assert_eq!(
        run(&mut rr, "SELECT n FROM v").await,
        ["0", "SELECT 1"],
        "one snapshot per transaction"
    );
    // A write after the concurrent commit is still checked from the transaction's start.
    run(&mut rc, "UPDATE v SET n = n + 10").await;
    let refused = run(&mut rc, "COMMIT").await;
    assert!(refused[0].starts_with("ERROR 40001"), "{refused:?}");
    run(&mut rr, "ROLLBACK").await;
}

#[tokio::test]
async fn transaction_limits_are_54000_naming_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = Options::new(dir.path());
    options.limits = cairn_qp::Limits {
        max_rows: 3,
        max_bytes: 10_000,
        ..options.limits
    };
    let db = Embedded::open(options).await.unwrap();
    let mut s = Session::new(Engine::new(db.database().clone()), "postgres", "postgres");
    run(&mut s, "CREATE TABLE l (id int PRIMARY KEY, t text)").await;
    let refused = run(
        &mut s,
        "INSERT INTO l VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd')",
    )
    .await;
    assert!(
        refused[0].starts_with("ERROR 54000: transaction exceeds the limit on rows written"),
        "{refused:?}"
    );
    assert_eq!(
        run(&mut s, "SELECT count(*) FROM l").await,
        ["0", "SELECT 1"],
        "nothing of it committed"
    );
    let big = format!("INSERT INTO l VALUES (1, '{}')", "x".repeat(20_000));
    assert!(run(&mut s, &big).await[0]
        .starts_with("ERROR 54000: transaction exceeds the limit on bytes written"));
    assert_eq!(
        run(&mut s, "INSERT INTO l VALUES (1, 'a'), (2, 'b')").await,
        ["INSERT 0 2"]
    );
}

#[tokio::test]
async fn deferrable_and_weak_row_locks_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, engine) = engine(dir.path()).await;
    let mut s = Session::new(engine, "postgres", "postgres");
    assert_eq!(
        run(
            &mut s,
            "BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY DEFERRABLE"
        )
        .await,
        ["BEGIN"]
    );
    assert_eq!(run(&mut s, "COMMIT").await, ["COMMIT"]);
    assert_eq!(
        run(
            &mut s,
            "START TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ WRITE, NOT DEFERRABLE"
        )
        .await,
        ["BEGIN"]
    );
    run(&mut s, "CREATE TABLE w (k int PRIMARY KEY)").await;
    assert_eq!(
        run(&mut s, "SELECT k FROM w FOR NO KEY UPDATE").await,
        ["SELECT 0"]
    );
    assert_eq!(
        run(&mut s, "SELECT k FROM w FOR KEY SHARE").await,
        ["SELECT 0"]
    );
    assert_eq!(run(&mut s, "COMMIT").await, ["COMMIT"]);
    // Quoted text is left alone, spacing included, even in a statement that is rewritten.
    assert_eq!(
        run(&mut s, "SELECT 'for key share deferrable'").await,
        ["for key share deferrable", "SELECT 1"]
    );
    assert_eq!(
        run(&mut s, "SELECT 'a  for key share' FROM w FOR KEY SHARE").await,
        ["SELECT 0"]
    );
    run(&mut s, "INSERT INTO w VALUES (1)").await;
    assert_eq!(
        run(&mut s, "SELECT 'a  for key share' FROM w FOR   KEY SHARE").await,
        ["a  for key share", "SELECT 1"]
    );
}

#[tokio::test]
async fn joins_look_partners_up_by_key_when_the_condition_fixes_it() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, engine) = engine(dir.path()).await;
    let mut s = Session::new(engine, "postgres", "postgres");
    run(&mut s, "CREATE TABLE c (id int PRIMARY KEY, name text); CREATE TABLE o (id int PRIMARY KEY, cid int)").await;
    run(
        &mut s,
        "INSERT INTO c VALUES (1, 'a'), (2, 'b'); INSERT INTO o VALUES (10, 1), (11, 2), (12, 1)",
    )
    .await;
    let plan = run(
        &mut s,
        "EXPLAIN SELECT o.id, c.name FROM o JOIN c ON c.id = o.cid WHERE o.id = 12",
    )
    .await;
    assert_eq!(
        plan,
        [
            "Index Nested Loop Inner Join",
            "  Join Filter: (c.id = o.cid)",
            "  Filter: (o.id = 12)",
            "  ->  Point Lookup on c using c_pkey (id = o.cid)",
            "  ->  Point Lookup on o using o_pkey (id = 12)",
            "        Filter: (o.id = 12)",
            "EXPLAIN"
        ],
        "{plan:#?}"
    );
    assert_eq!(
        run(
            &mut s,
            "SELECT o.id, c.name FROM o JOIN c ON c.id = o.cid WHERE o.id = 12"
        )
        .await,
        ["12|a", "SELECT 1"]
    );
    let plan = run(
        &mut s,
        "EXPLAIN SELECT * FROM c LEFT JOIN o ON o.cid = c.id",
    )
    .await;
    assert_eq!(
        plan[0], "Hash Left Join",
        "o's key is not fixed by the condition, so o is hashed on cid: {plan:#?}"
    );
}

#[tokio::test]
async fn setseed_makes_random_repeat_its_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, engine) = engine(dir.path()).await;
    let mut s = Session::new(engine, "postgres", "postgres");
    const DRAW: &str = "SELECT random(), random()";
    run(&mut s, "SELECT setseed(0.25)").await;
    let first = run(&mut s, DRAW).await;
    run(&mut s, "SELECT setseed(0.25)").await;
    let again = run(&mut s, DRAW).await;
    assert_eq!(first, again, "the same seed gives the same numbers");
    run(&mut s, "SELECT setseed(-0.5)").await;
    assert_ne!(run(&mut s, DRAW).await, first, "another seed gives others");
    let refused = run(&mut s, "SELECT setseed(2)").await;
    assert!(refused[0].contains("22023"), "{refused:?}");
}

/// A session over a core whose transactions may write at most `max_rows` keys.
async fn limited(dir: &std::path::Path, max_rows: usize) -> (Embedded, Arc<Engine>) {
    let mut options = Options::new(dir);
    options.limits = cairn_qp::Limits {
        max_rows,
        ..options.limits
    };
    let db = Embedded::open(options).await.unwrap();
    let engine = Engine::new(db.database().clone());
    (db, engine)
}

/// Inserts rows 1 to 3,000 into `table`, `select` computing each from `g`, 500 per
/// statement.
async fn insert_3000(s: &mut Session, table: &str, select: &str) {
    for chunk in 0..6 {
        let insert = format!(
            "INSERT INTO {table} SELECT {select} FROM generate_series({}, {}) g",
            chunk * 500 + 1,
            chunk * 500 + 500
        );
        assert_eq!(run(s, &insert).await, ["INSERT 0 500"]);
    }
}

#[tokio::test]
async fn a_rewrite_alone_in_its_transaction_commits_in_batches_beyond_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    // 3,000 rows, each with an index entry: rewriting them in one transaction writes 12,000
    // keys (old rows and entries deleted, new ones written), far past this limit; a batch
    // of 1,024 rows with their entries would pass it too, so batches are smaller.
    let (_db, engine) = limited(dir.path(), 1_500).await;
    let mut s = Session::new(engine, "postgres", "postgres");
    run(&mut s, "CREATE TABLE t (id int PRIMARY KEY, v text, n int)").await;
    run(&mut s, "CREATE INDEX t_n ON t (n)").await;
    insert_3000(&mut s, "t", "g, (g * 2)::text, g % 100").await;

    // Inside a block the rewrite is the block's: refused by its limit, nothing changed.
    run(&mut s, "BEGIN").await;
    let refused = run(&mut s, "ALTER TABLE t ALTER COLUMN v TYPE int USING v::int").await;
    assert!(refused[0].starts_with("ERROR 54000"), "{refused:?}");
    run(&mut s, "ROLLBACK").await;

    // Alone, it commits its rows in batches and the new definition at the end.
    const T_SHAPE: &str = "SELECT count(*), sum(v), pg_typeof(min(v))::text FROM t";
    assert_eq!(
        run(&mut s, "ALTER TABLE t ALTER COLUMN v TYPE int USING v::int").await,
        ["ALTER TABLE"]
    );
    assert_eq!(
        run(&mut s, T_SHAPE).await,
        ["3000|9003000|integer", "SELECT 1"]
    );
    assert_eq!(
        run(&mut s, "SELECT count(*) FROM t WHERE n = 7").await,
        ["30", "SELECT 1"],
        "the index was rewritten with the rows"
    );
    assert_eq!(
        run(&mut s, "SELECT v FROM t WHERE id = 2999").await,
        ["5998", "SELECT 1"]
    );

    // A value that does not convert, in the last batch: the error, and the table as it was.
    let failed = run(
        &mut s,
        "ALTER TABLE t ALTER COLUMN v TYPE smallint USING (v * 10)",
    )
    .await;
    assert!(failed[0].starts_with("ERROR 22003"), "{failed:?}");
    assert_eq!(
        run(&mut s, T_SHAPE).await,
        ["3000|9003000|integer", "SELECT 1"]
    );

    // ADD PRIMARY KEY over a table without one: a duplicate far apart (in another batch)
    // fails it; without the duplicate it succeeds.
    run(&mut s, "CREATE TABLE k (a int, b text)").await;
    insert_3000(&mut s, "k", "g, 'r' || g").await;
    run(&mut s, "UPDATE k SET a = 1 WHERE a = 2900").await;
    let duplicate = run(&mut s, "ALTER TABLE k ADD PRIMARY KEY (a)").await;
    assert!(duplicate[0].starts_with("ERROR 23505"), "{duplicate:?}");
    run(&mut s, "UPDATE k SET a = 2900 WHERE b = 'r2900'").await;
    assert_eq!(
        run(&mut s, "ALTER TABLE k ADD PRIMARY KEY (a)").await,
        ["ALTER TABLE"]
    );
    assert_eq!(
        run(&mut s, "SELECT count(*), sum(a) FROM k").await,
        ["3000|4501500", "SELECT 1"]
    );
    assert_eq!(
        run(&mut s, "INSERT INTO k VALUES (5, 'again')").await,
        ["ERROR 23505: duplicate key value violates unique constraint \"k_pkey\""]
    );
}

// Two worker threads: the writer must run while the ALTER does, also when the ALTER's
// commits are written (and fsynced) in its own task, without yielding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_committed_during_a_batched_rewrite_is_never_lost() {
    let dir = tempfile::tempdir().unwrap();
    let (db, engine) = engine(dir.path()).await;
    let clock = db.database().clock().clone();
    let mut alter = Session::new(engine.clone(), "postgres", "postgres");
    run(&mut alter, "CREATE TABLE t (id int PRIMARY KEY, v int)").await;
    run(
        &mut alter,
        "INSERT INTO t SELECT g, 0 FROM generate_series(1, 20000) g",
    )
    .await;
    // A writer keeps incrementing row 1 (copied by the rewrite's first batch) while the
    // rewrite runs; every increment it saw commit must be in the table afterwards, whichever
    // way the ALTER ends (it fails with 40001 when a write to its rows committed meanwhile).
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (engine, done, clock) = (engine.clone(), done.clone(), clock.clone());
        tokio::spawn(async move {
            let mut s = Session::new(engine, "postgres", "postgres");
            let mut committed = 0i64;
            while !done.load(std::sync::atomic::Ordering::Acquire) {
                match run(&mut s, "UPDATE t SET v = v + 1 WHERE id = 1").await[0].as_str() {
                    "UPDATE 1" => committed += 1,
                    other => assert!(other.starts_with("ERROR 40001"), "{other}"),
                }
                clock.sleep(std::time::Duration::from_millis(2)).await;
            }
            committed
        })
    };
    clock.sleep(std::time::Duration::from_millis(20)).await;
    let outcome = run(&mut alter, "ALTER TABLE t ALTER COLUMN v TYPE bigint").await;
    done.store(true, std::sync::atomic::Ordering::Release);
    let committed = writer.await.unwrap();
    assert!(
        outcome == ["ALTER TABLE"] || outcome[0].starts_with("ERROR 40001"),
        "{outcome:?}"
    );
    assert!(committed > 0, "the writer ran during the rewrite");
    assert_eq!(
        run(&mut alter, "SELECT v FROM t WHERE id = 1").await,
        [committed.to_string(), "SELECT 1".into()],
        "ALTER: {outcome:?}"
    );
    if outcome == ["ALTER TABLE"] {
        // It finished between two of the writer's updates: the old type again, for below.
        assert_eq!(
            run(&mut alter, "ALTER TABLE t ALTER COLUMN v TYPE integer").await,
            ["ALTER TABLE"]
        );
    }
    // Once nobody writes, it goes through, and keeps what was written. A snapshot taken
    // before it still sees the old definition and every row; a later one the new.
    let mut before = Session::new(engine.clone(), "postgres", "postgres");
    run(&mut before, "BEGIN").await;
    let old_shape = [format!("integer|20000|{committed}"), "SELECT 1".into()];
    const SHAPE: &str = "SELECT pg_typeof(min(v))::text, count(*), sum(v) FROM t";
    assert_eq!(run(&mut before, SHAPE).await, old_shape);
    assert_eq!(
        run(&mut alter, "ALTER TABLE t ALTER COLUMN v TYPE bigint").await,
        ["ALTER TABLE"]
    );
    assert_eq!(run(&mut before, SHAPE).await, old_shape);
    run(&mut before, "COMMIT").await;
    assert_eq!(
        run(&mut before, SHAPE).await,
        [format!("bigint|20000|{committed}"), "SELECT 1".into()]
    );
}

/// Texts of one shape (the same text but for its number and string literals) run the plan
/// kept for the shape with their own literals as its parameters: each gives what planning
/// it as written gives, and a text is planned as written wherever the kept plan would not
/// be its plan.
#[tokio::test]
async fn texts_of_one_shape_run_one_plan_with_their_own_literals() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, engine) = engine(dir.path()).await;
    let mut s = Session::new(engine.clone(), "postgres", "postgres");
    let mut other = Session::new(engine, "postgres", "postgres");
    run(
        &mut s,
        "CREATE TABLE t (k int PRIMARY KEY, v varchar(3), b bigint, d date)",
    )
    .await;
    run(
        &mut s,
        "INSERT INTO t VALUES (1, 'ab', 10, '2020-01-01'), (2, 'cd', 20, '2021-02-03')",
    )
    .await;
    // (text, its output, whether it ran its shape's plan). A shape's first text is planned
    // as written; from its second on, the shape's plan runs where it is the text's plan.
    let script: &[(&str, &[&str], bool)] = &[
        ("SELECT b FROM t WHERE k = 1", &["10", "SELECT 1"], false),
        ("SELECT b FROM t WHERE k = 2", &["20", "SELECT 1"], true),
        ("SELECT b FROM t WHERE k = 3", &["SELECT 0"], true),
        (
            "SELECT k + 1, -k, -3 FROM t WHERE k = 1",
            &["2|-1|-3", "SELECT 1"],
            false,
        ),
        (
            "SELECT k + 7, -k, -4 FROM t WHERE k = 2",
            &["9|-2|-4", "SELECT 1"],
            true,
        ),
        ("UPDATE t SET b = b + -5 WHERE k = 1", &["UPDATE 1"], false),
        ("UPDATE t SET b = b + -6 WHERE k = 2", &["UPDATE 1"], true),
        (
            "SELECT k, b FROM t WHERE k > 0",
            &["1|5", "2|14", "SELECT 2"],
            false,
        ),
        (
            "SELECT k FROM t WHERE d = '2021-02-03'",
            &["2", "SELECT 1"],
            false,
        ),
        (
            "SELECT k FROM t WHERE d = '2020-01-01'",
            &["1", "SELECT 1"],
            true,
        ),
        (
            "SELECT k FROM t WHERE d = 'garbage!!!'",
            &["ERROR 22007: invalid input syntax for type date: \"garbage!!!\""],
            false,
        ),
        // A string read as a type with a length: planned as written (a cast to it would
        // truncate, and the kept plan cannot tell).
        ("SELECT k FROM t WHERE v = 'cd'", &["2", "SELECT 1"], false),
        ("SELECT k FROM t WHERE v = 'ab'", &["1", "SELECT 1"], false),
        ("SELECT 'abcdef'::varchar(3)", &["abc", "SELECT 1"], false),
        ("SELECT 'ghijkl'::varchar(3)", &["ghi", "SELECT 1"], false),
        // A column position, not a value.
        (
            "SELECT k FROM t ORDER BY 1 DESC",
            &["2", "1", "SELECT 2"],
            false,
        ),
        (
            "SELECT k FROM t ORDER BY 2 DESC",
            &["ERROR 42P10: ORDER BY position 2 is not in select list"],
            false,
        ),
        // The same number of digits, typed int4 or int8: each type has its own plan.
        ("SELECT 2147483647 + 0", &["2147483647", "SELECT 1"], false),
        (
            "SELECT 2147483647 + 1",
            &["ERROR 22003: integer out of range"],
            true,
        ),
        ("SELECT 3147483647 + 1", &["3147483648", "SELECT 1"], true),
        ("SELECT 1.5 + 1", &["2.5", "SELECT 1"], false),
        ("SELECT 2.5 + 1", &["3.5", "SELECT 1"], true),
    ];
    for (sql, output, shaped) in script {
        let before = s.shape_plan_runs();
        assert_eq!(run(&mut s, sql).await, *output, "{sql}");
        assert_eq!(s.shape_plan_runs() - before, u64::from(*shaped), "{sql}");
    }

    // A column added by another session: the next text of the shape sees it.
    let select = |k: i32| format!("SELECT * FROM t WHERE k = {k}");
    run(&mut s, &select(2)).await;
    assert_eq!(
        run(&mut s, &select(1)).await,
        ["1|ab|5|2020-01-01", "SELECT 1"]
    );
    run(&mut other, "ALTER TABLE t ADD COLUMN e int DEFAULT 7").await;
    assert_eq!(
        run(&mut s, &select(2)).await,
        ["2|cd|14|2021-02-03|7", "SELECT 1"]
    );
    // A table that the search path now finds first.
    run(&mut s, "CREATE SCHEMA first").await;
    run(&mut s, "SET search_path = first, public").await;
    assert_eq!(
        run(&mut s, "SELECT b FROM t WHERE k = 1").await,
        ["5", "SELECT 1"]
    );
    run(
        &mut other,
        "CREATE TABLE first.t (k int PRIMARY KEY, b int)",
    )
    .await;
    run(&mut other, "INSERT INTO first.t VALUES (1, 99)").await;
    assert_eq!(
        run(&mut s, "SELECT b FROM t WHERE k = 1").await,
        ["99", "SELECT 1"]
    );
    run(&mut s, "SET search_path = public").await;
    assert_eq!(
        run(&mut s, "SELECT b FROM t WHERE k = 1").await,
        ["5", "SELECT 1"]
    );
    // The block's own schema change: its statements are planned as written.
    let runs = s.shape_plan_runs();
    assert_eq!(
        run(&mut s, "BEGIN; ALTER TABLE t DROP COLUMN e").await,
        ["BEGIN", "ALTER TABLE"]
    );
    assert_eq!(
        run(&mut s, &select(1)).await,
        ["1|ab|5|2020-01-01", "SELECT 1"]
    );
    assert_eq!(s.shape_plan_runs(), runs);
    run(&mut s, "COMMIT").await;
    assert_eq!(
        run(&mut s, &select(2)).await,
        ["2|cd|14|2021-02-03", "SELECT 1"]
    );
    assert_eq!(s.shape_plan_runs(), runs + 1);
    assert_eq!(run(&mut s, "DISCARD PLANS").await, ["DISCARD PLANS"]);
    assert_eq!(
        run(&mut s, &select(1)).await,
        ["1|ab|5|2020-01-01", "SELECT 1"]
    );
}
